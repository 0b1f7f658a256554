/* bilstm_case: the central-difference gradient check of the fused BiLSTM op (`bilstm`), shared by
 * tests/test_ops.c (one case per op) and tests/test_lstm.c (which runs it at several OpenBLAS thread
 * counts: the op takes a different path with two or more threads, see layers/bilstm.h "Threads").
 *
 * Two configurations with different unit counts per direction (Hf = H, Hb = H - 1: by default 3 and 2,
 * as after pruning), x
 * requiring a gradient (both directions add into dX), and every output of the layer (the concatenated
 * out and each direction's h_seq, h_last and c_last) projected on its own random weights:
 * per-sequence lengths (a full, a short, an empty and a length-1 row) with biases; and no lengths,
 * no biases. */
#include <string.h>

#include "core/alloc.h"
#include "layers/bilstm.h"
#include "check/gradcheck.h"

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

lp_status lp_gc_check_bilstm(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res) {
    const lp_gc_size z = lp_gc_size_or(size, (lp_gc_size){.batch = 4, .time = 5, .features = 4, .hidden = 3});
    const int B = z.batch, T = z.time, F = z.features, HF = z.hidden, HB = HF > 1 ? HF - 1 : 1;
    /* Inputs of order 1 and weights in [-0.6,0.6] keep the gates away from saturation, so gradients
     * are of order 0.1..1 and the default tolerances of lp_gc_opts_default (justified in gradcheck.c)
     * apply, as for the `lstm` case. */
    const size_t n[7] = {(size_t)B * T * F, (size_t)4 * HF * F, (size_t)4 * HF * HF, (size_t)4 * HF,
                         (size_t)4 * HB * F, (size_t)4 * HB * HB, (size_t)4 * HB};
    float *v[7] = {NULL};
    int *lengths = lp_malloc((size_t)B, sizeof(int));
    int ok = lengths != NULL;
    for (int k = 0; k < 7; k++) ok = (v[k] = lp_malloc(n[k], sizeof(float))) && ok;
    lp_status st = ok ? LP_OK : lp_errorf(LP_ERR_NOMEM, "gradcheck bilstm: out of memory");
    if (st == LP_OK) {
        for (int k = 0; k < 7; k++)
            lp_gc_fill_uniform(v[k], n[k], k ? -0.6 : -1.0, k ? 0.6 : 1.0, lp_gc_data_seed(size, 81, k));
        for (int b = 0; b < B; b++) /* a full, a short, an empty and a length-1 row, ... */
            lengths[b] = b % 4 == 0 ? T : b % 4 == 1 ? T / 2 : b % 4 == 2 ? 0 : 1;
        lp_gc_input with_b[7] = {{"x", v[0], 3, {B, T, F}, 0},          {"fw.w_ih", v[1], 2, {4 * HF, F}, 0},
                                 {"fw.w_hh", v[2], 2, {4 * HF, HF}, 0}, {"fw.b", v[3], 1, {4 * HF}, 0},
                                 {"bw.w_ih", v[4], 2, {4 * HB, F}, 0},  {"bw.w_hh", v[5], 2, {4 * HB, HB}, 0},
                                 {"bw.b", v[6], 1, {4 * HB}, 0}};
        lp_gc_input no_b[5] = {with_b[0], with_b[1], with_b[2], with_b[4], with_b[5]};
        lp_gc_result_init(res);
        res->size = z;
        const bilstm_case_cfg c1 = {lengths, 1}, c2 = {NULL, 0};
        lp_gc_result r;
        st = lp_gradcheck(bilstm_case_forward, (void *)&c1, with_b, 7, opts, &r);
        lp_gc_result_merge(res, &r);
        if (st == LP_OK) {
            st = lp_gradcheck(bilstm_case_forward, (void *)&c2, no_b, 5, opts, &r);
            lp_gc_result_merge(res, &r);
        }
    }
    for (int k = 0; k < 7; k++) lp_free(v[k]);
    lp_free(lengths);
    return st;
}

lp_status lp_gc_case_bilstm(const lp_gc_opts *opts, lp_gc_result *res) {
    return lp_gc_check_bilstm(NULL, opts, res);
}
