/* lstm_case: the central-difference gradient check of the fused LSTM op (`lstm`), shared by
 * tests/test_ops.c (one case per op) and tests/test_lstm.c.
 *
 * Five small configurations are checked and merged into one result, each with every output of the op
 * (h_seq, h_last, c_last) projected on random weights, so every code path of the backward is covered:
 * forward direction from zero state; reverse direction; per-sequence lengths (including a length-0
 * and a full-length row); a given initial state h0/c0; and reverse + lengths + h0/c0 together. */
#include <string.h>

#include "core/alloc.h"
#include "layers/lstm.h"
#include "check/gradcheck.h"

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

/* Buffers of one check: x [B,T,F], w_ih [4H,F], w_hh [4H,H], b [4H], h0 [B,H], c0 [B,H], lengths [B]. */
typedef struct {
    float *v[6];
    int *lengths;
} lstm_bufs;

static void bufs_free(lstm_bufs *b) {
    for (int k = 0; k < 6; k++) lp_free(b->v[k]);
    lp_free(b->lengths);
}

lp_status lp_gc_check_lstm(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res) {
    const lp_gc_size z = lp_gc_size_or(size, (lp_gc_size){.batch = 3, .time = 5, .features = 4, .hidden = 3});
    const int B = z.batch, T = z.time, F = z.features, H = z.hidden;
    /* Inputs of order 1 (x in [-1,1], weights in [-0.6,0.6] a bit above PyTorch's 1/sqrt(H) bound) keep
     * the gates away from saturation, so the gradients are of order 0.1..1 and the default tolerances
     * of lp_gc_opts_default (rtol 1e-2, atol 1e-3, eps 1e-2) apply as justified in gradcheck.c. */
    const size_t n[6] = {(size_t)B * T * F, (size_t)4 * H * F, (size_t)4 * H * H, (size_t)4 * H, (size_t)B * H,
                         (size_t)B * H};
    static const double range[6] = {1.0, 0.6, 0.6, 0.6, 0.8, 0.8};
    lstm_bufs buf = {{NULL}, lp_malloc((size_t)B, sizeof(int))};
    int ok = buf.lengths != NULL;
    for (int k = 0; k < 6; k++) ok = (buf.v[k] = lp_malloc(n[k], sizeof(float))) && ok;
    if (!ok) {
        bufs_free(&buf);
        return lp_errorf(LP_ERR_NOMEM, "gradcheck lstm: out of memory");
    }
    for (int k = 0; k < 6; k++)
        lp_gc_fill_uniform(buf.v[k], n[k], -range[k], range[k], lp_gc_data_seed(size, 11, k));
    for (int b = 0; b < B; b++) /* full, partial, empty, ... */
        buf.lengths[b] = b % 3 == 0 ? T : b % 3 == 1 ? T / 2 : 0;
    lp_gc_input in[6] = {
        {"x", buf.v[0], 3, {B, T, F}, 0},  {"w_ih", buf.v[1], 2, {4 * H, F}, 0}, {"w_hh", buf.v[2], 2, {4 * H, H}, 0},
        {"b", buf.v[3], 1, {4 * H}, 0},    {"h0", buf.v[4], 2, {B, H}, 0},       {"c0", buf.v[5], 2, {B, H}, 0},
    };
    const lstm_case_cfg cfgs[] = {
        {0, NULL, 0},        /* forward, zero state */
        {1, NULL, 0},        /* reverse */
        {0, buf.lengths, 0}, /* lengths */
        {0, NULL, 1},        /* h0, c0 */
        {1, buf.lengths, 1}, /* all together */
    };
    lp_gc_result_init(res);
    res->size = z;
    lp_status st = LP_OK;
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0] && st == LP_OK; k++) {
        lp_gc_result r;
        st = lp_gradcheck(lstm_case_forward, (void *)&cfgs[k], in, cfgs[k].with_state ? 6 : 4, opts, &r);
        lp_gc_result_merge(res, &r);
    }
    bufs_free(&buf);
    return st;
}

lp_status lp_gc_case_lstm(const lp_gc_opts *opts, lp_gc_result *res) { return lp_gc_check_lstm(NULL, opts, res); }
