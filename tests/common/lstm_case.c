/* lstm_case: the central-difference gradient check of the fused LSTM op (`lstm`), shared by
 * tests/test_ops.c (one case per op) and tests/test_lstm.c.
 *
 * Five small configurations are checked and merged into one result, each with every output of the op
 * (h_seq, h_last, c_last) projected on random weights, so every code path of the backward is covered:
 * forward direction from zero state; reverse direction; per-sequence lengths (including a length-0
 * and a full-length row); a given initial state h0/c0; and reverse + lengths + h0/c0 together. */
#include <string.h>

#include "layers/lstm.h"
#include "tests/common/gradcheck.h"

typedef struct {
    int reverse;
    const int *lengths;
    int with_state; /* inputs 4 and 5 are h0, c0 */
} lstm_case_cfg;

static int lstm_case_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const lstm_case_cfg *cfg = user;
    lp_tensor *h0 = NULL, *c0 = NULL;
    if (cfg->with_state) {
        LP_CHECK(n_in == 6);
        h0 = in[4];
        c0 = in[5];
    }
    lp_lstm_out o = lp_lstm(tp, in[0], in[1], in[2], in[3], h0, c0, cfg->lengths, cfg->reverse);
    out[0] = o.h_seq;
    out[1] = o.h_last;
    out[2] = o.c_last;
    return o.h_seq ? 3 : 0;
}

lp_status lp_test_lstm_gradcheck_case(lp_gc_result *res) {
    enum { B = 3, T = 5, F = 4, H = 3 };
    /* Inputs of order 1 (x in [-1,1], weights in [-0.6,0.6] a bit above PyTorch's 1/sqrt(H) bound) keep
     * the gates away from saturation, so the gradients are of order 0.1..1 and the default tolerances
     * of lp_gc_opts_default (rtol 1e-2, atol 1e-3, eps 1e-2) apply as justified in gradcheck.c. */
    float x[B * T * F], w_ih[4 * H * F], w_hh[4 * H * H], b[4 * H], h0[B * H], c0[B * H];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 11);
    lp_gc_fill_uniform(w_ih, 4 * H * F, -0.6, 0.6, 12);
    lp_gc_fill_uniform(w_hh, 4 * H * H, -0.6, 0.6, 13);
    lp_gc_fill_uniform(b, 4 * H, -0.6, 0.6, 14);
    lp_gc_fill_uniform(h0, B * H, -0.8, 0.8, 15);
    lp_gc_fill_uniform(c0, B * H, -0.8, 0.8, 16);
    static const int lengths[B] = {5, 2, 0}; /* full, partial, empty */
    lp_gc_input in[6] = {
        {"x", x, 3, {B, T, F}, 0},     {"w_ih", w_ih, 2, {4 * H, F}, 0}, {"w_hh", w_hh, 2, {4 * H, H}, 0},
        {"b", b, 1, {4 * H}, 0},       {"h0", h0, 2, {B, H}, 0},         {"c0", c0, 2, {B, H}, 0},
    };
    const lstm_case_cfg cfgs[] = {
        {0, NULL, 0},    /* forward, zero state */
        {1, NULL, 0},    /* reverse */
        {0, lengths, 0}, /* lengths */
        {0, NULL, 1},    /* h0, c0 */
        {1, lengths, 1}, /* all together */
    };
    lp_gc_result_init(res);
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        lp_gc_result r;
        lp_status st = lp_gradcheck(lstm_case_forward, (void *)&cfgs[k], in, cfgs[k].with_state ? 6 : 4, NULL, &r);
        lp_gc_result_merge(res, &r);
        if (st != LP_OK) return st;
    }
    return LP_OK;
}
