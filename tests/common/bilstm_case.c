/* bilstm_case: the central-difference gradient check of the fused BiLSTM op (`bilstm`), shared by
 * tests/test_ops.c (one case per op) and tests/test_lstm.c (which runs it at several OpenBLAS thread
 * counts: the op takes a different path with two or more threads, see layers/bilstm.h "Threads").
 *
 * Two configurations with different unit counts per direction (Hf = 3, Hb = 2, as after pruning), x
 * requiring a gradient (both directions add into dX), and every output of the layer (the concatenated
 * out and each direction's h_seq, h_last and c_last) projected on its own random weights:
 * per-sequence lengths (a full, a short, an empty and a length-1 row) with biases; and no lengths,
 * no biases. */
#include <string.h>

#include "layers/bilstm.h"
#include "tests/common/gradcheck.h"

typedef struct {
    const int *lengths;
    int bias; /* inputs are x, fw.w_ih, fw.w_hh, [fw.b], bw.w_ih, bw.w_hh, [bw.b] */
} bilstm_case_cfg;

static int bilstm_case_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const bilstm_case_cfg *cfg = user;
    LP_CHECK(n_in == (cfg->bias ? 7 : 5));
    lp_lstm_weights fw, bw;
    if (cfg->bias) {
        fw = (lp_lstm_weights){in[1], in[2], in[3]};
        bw = (lp_lstm_weights){in[4], in[5], in[6]};
    } else {
        fw = (lp_lstm_weights){in[1], in[2], NULL};
        bw = (lp_lstm_weights){in[3], in[4], NULL};
    }
    lp_bilstm_out o = lp_bilstm(tp, in[0], &fw, &bw, cfg->lengths);
    lp_tensor *all[7] = {o.out, o.fw.h_seq, o.fw.h_last, o.fw.c_last, o.bw.h_seq, o.bw.h_last, o.bw.c_last};
    for (int k = 0; k < 7; k++) {
        if (!all[k]) return 0;
        out[k] = all[k];
    }
    return 7;
}

lp_status lp_test_bilstm_gradcheck_case(lp_gc_result *res) {
    enum { B = 4, T = 5, F = 4, HF = 3, HB = 2 };
    static const int lengths[B] = {T, 2, 0, 1};
    /* Inputs of order 1 and weights in [-0.6,0.6] keep the gates away from saturation, so gradients
     * are of order 0.1..1 and the default tolerances of lp_gc_opts_default (justified in gradcheck.c)
     * apply, as for the `lstm` case. */
    float x[B * T * F], fwi[4 * HF * F], fwh[4 * HF * HF], fb[4 * HF], bwi[4 * HB * F], bwh[4 * HB * HB],
        bb[4 * HB];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 81);
    lp_gc_fill_uniform(fwi, 4 * HF * F, -0.6, 0.6, 82);
    lp_gc_fill_uniform(fwh, 4 * HF * HF, -0.6, 0.6, 83);
    lp_gc_fill_uniform(fb, 4 * HF, -0.6, 0.6, 84);
    lp_gc_fill_uniform(bwi, 4 * HB * F, -0.6, 0.6, 85);
    lp_gc_fill_uniform(bwh, 4 * HB * HB, -0.6, 0.6, 86);
    lp_gc_fill_uniform(bb, 4 * HB, -0.6, 0.6, 87);
    lp_gc_input with_b[7] = {{"x", x, 3, {B, T, F}, 0},          {"fw.w_ih", fwi, 2, {4 * HF, F}, 0},
                             {"fw.w_hh", fwh, 2, {4 * HF, HF}, 0}, {"fw.b", fb, 1, {4 * HF}, 0},
                             {"bw.w_ih", bwi, 2, {4 * HB, F}, 0},  {"bw.w_hh", bwh, 2, {4 * HB, HB}, 0},
                             {"bw.b", bb, 1, {4 * HB}, 0}};
    lp_gc_input no_b[5] = {with_b[0], with_b[1], with_b[2], with_b[4], with_b[5]};

    lp_gc_result_init(res);
    const bilstm_case_cfg c1 = {lengths, 1}, c2 = {NULL, 0};
    lp_gc_result r;
    lp_status st = lp_gradcheck(bilstm_case_forward, (void *)&c1, with_b, 7, NULL, &r);
    lp_gc_result_merge(res, &r);
    if (st != LP_OK) return st;
    st = lp_gradcheck(bilstm_case_forward, (void *)&c2, no_b, 5, NULL, &r);
    lp_gc_result_merge(res, &r);
    return st;
}
