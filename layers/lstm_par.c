/* lstm_par: the threads of the LSTM recurrence (see lstm.h, "Threads"). The equations are in
 * layers/lstm.c; this file only decides which thread runs which batch rows through them. */
#include <cblas.h>

#include "core/gemm.h"
#include "core/par.h"
#include "layers/lstm.h"

/* ---- threads for the recurrence ---------------------------------------------------------------- *
 *
 * The batch rows are independent through the whole recurrence, so with n > 1 OpenBLAS threads and a
 * small per-step product (LSTM_SPLIT_MAX_MACS), or at any size in bf16, the rows are split into n
 * contiguous parts and each part runs all T steps (forward) or all BPTT steps (backward) in its own
 * thread, with OpenBLAS set to one thread meanwhile. Per step that replaces a small multi-threaded GEMM
 * (threads woken and joined T times per layer: at B=32, H=128 the product is [32,128]·[128,512]) and a
 * single-threaded gate loop by n independent single-threaded streams that meet once per layer. The big
 * GEMMs (input projection, weight gradients) stay multi-threaded (OpenBLAS's threads in fp32, oneDNN's
 * in bf16). Each row's arithmetic is the same whatever the split. The thread count is OpenBLAS's setting
 * (openblas_set_num_threads / OPENBLAS_NUM_THREADS: the one knob for the cores used), so the total
 * number of busy threads never exceeds it. It is changed and restored around the parallel part, which
 * assumes no other thread calls BLAS at that moment (nothing in this project does). */

#define LSTM_MAX_THREADS LP_PAR_MAX

/* In fp32, split only small recurrent products (multiply-adds per step for the whole batch). Each part's
 * sgemm packs W_hh again for its own product, which costs CPU time (docs/BENCHMARKS.md, "Constants chosen by
 * measurement"). Big products thread well inside OpenBLAS, so the split pays only where per-step
 * synchronisation dominates: B=32, H=256 is 8.4M multiply-adds, the paper's B=160, H=512 is 168M. */
#define LSTM_SPLIT_MAX_MACS 33554432.0 /* 2^25 */

typedef struct {
    float *gates, *h, *c, *h_seq, *cs, *dh, *dc;
    const lp_gemm_w *w_hh;                          /* converted once for all steps (core/gemm.h) */
    const float *b, *dh_seq, *c0, *cs_saved;        /* cs: forward writes it; cs_saved: backward reads */
    const int *lengths;
    int reverse, T, H, b0, b1;
} seq_part;

static void *forward_part(void *arg) {
    seq_part *p = arg;
    for (int s = 0; s < p->T; s++) {
        int t = p->reverse ? p->T - 1 - s : s;
        lp_lstm_step_forward(p->gates, p->h, p->c, p->h_seq, p->cs, p->w_hh, p->b, p->lengths, t, p->b0, p->b1,
                             p->T, p->H);
    }
    return NULL;
}

static void *backward_part(void *arg) {
    seq_part *p = arg;
    for (int s = p->T - 1; s >= 0; s--) { /* reverse of the forward processing order */
        int t = p->reverse ? p->T - 1 - s : s;
        lp_lstm_step_backward(p->gates, p->dh, p->dc, p->dh_seq, p->cs_saved, p->c0, p->w_hh, p->lengths,
                              p->reverse, t, p->b0, p->b1, p->T, p->H);
    }
    return NULL;
}

/* Run fn over `B` rows split into n contiguous parts, part 0 in this thread. Leaves OpenBLAS's thread
 * count alone: with n > 1 the caller has set it to one. `proto` holds everything but the row range. */
static void run_parts(void *(*fn)(void *), const seq_part *proto, int B, int n) {
    n = n < B ? n : B;
    n = n < LSTM_MAX_THREADS ? n : LSTM_MAX_THREADS;
    if (n <= 1) {
        seq_part p = *proto;
        p.b0 = 0, p.b1 = B;
        fn(&p);
        return;
    }
    seq_part parts[LSTM_MAX_THREADS];
    for (int i = 0; i < n; i++) {
        parts[i] = *proto;
        parts[i].b0 = (int)((long)B * i / n);
        parts[i].b1 = (int)((long)B * (i + 1) / n);
    }
    lp_par_run(fn, parts, sizeof parts[0], n);
}

int lp_lstm_recur_parts(int B, int H, int threads) {
    /* In bf16 the parts share one W_hh laid out once for all of them (core/gemm.h, lp_gemm_w): nothing
     * is packed per part, so the split pays at every size (the gate loops run in parallel too). */
    const int small = (double)B * 4.0 * H * H < LSTM_SPLIT_MAX_MACS;
    int n = small || lp_precision_get() == LP_PRECISION_BF16 ? threads : 1;
    n = n < B ? n : B;
    n = n < LSTM_MAX_THREADS ? n : LSTM_MAX_THREADS;
    return n > 1 ? n : 1;
}

/* Run fn over `B` rows split into parts (see above), OpenBLAS set to one thread meanwhile. */
static void run_rows(void *(*fn)(void *), const seq_part *proto, int B) {
    const int n = lp_lstm_recur_parts(B, proto->H, openblas_get_num_threads());
    if (n <= 1) {
        run_parts(fn, proto, B, 1);
        return;
    }
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
    run_parts(fn, proto, B, n);
    openblas_set_num_threads(saved);
}

/* W_hh [4H,H] for every step of a sequence, converted once in bf16 (core/gemm.h) for the forward steps'
 * h·W_hhᵀ (tb = 1) or the backward steps' dG·W_hh (tb = 0) — or, while the model's weights are held
 * (lp_gemm_hold), borrowed from the hold, which converted and laid it out once for all its passes. When
 * that copy cannot be allocated each product converts its own: the same product up to the order of the
 * fp32 sums, only slower. */
static lp_gemm_w prepare(const float *w_hh, int H, int tb) {
    lp_gemm_w w;
    if (lp_gemm_w_init(&w, w_hh, 4 * H, H, tb) != LP_OK) w.bf16 = NULL, w.packed = NULL;
    return w;
}

void lp_lstm_recur_forward(float *h_seq, float *h, float *c, float *gates, float *cs, const float *w_hh,
                           const float *b, const int *lengths, int reverse, int B, int T, int H, int parts) {
    lp_gemm_w w = prepare(w_hh, H, 1);
    seq_part p = {.gates = gates, .h = h, .c = c, .h_seq = h_seq, .cs = cs, .w_hh = &w, .b = b,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_parts(forward_part, &p, B, parts);
    lp_gemm_w_free(&w);
}

void lp_lstm_recur_backward(float *gates, float *dh, float *dc, const float *dh_seq, const float *cs,
                            const float *c0, const float *w_hh, const int *lengths, int reverse, int B, int T,
                            int H, int parts) {
    lp_gemm_w w = prepare(w_hh, H, 0);
    seq_part p = {.gates = gates, .dh = dh, .dc = dc, .cs_saved = cs, .w_hh = &w, .dh_seq = dh_seq, .c0 = c0,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_parts(backward_part, &p, B, parts);
    lp_gemm_w_free(&w);
}

void lp_lstm_forward_seq(float *h_seq, float *h, float *c, float *gates, float *cs, const float *x,
                         const float *w_ih, const float *w_hh, const float *b, const int *lengths, int reverse,
                         int B, int T, int F, int H) {
    lp_lstm_input_proj(gates, x, w_ih, B * T, F, H);
    lp_gemm_w w = prepare(w_hh, H, 1);
    seq_part p = {.gates = gates, .h = h, .c = c, .h_seq = h_seq, .cs = cs, .w_hh = &w, .b = b,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_rows(forward_part, &p, B);
    lp_gemm_w_free(&w);
}

void lp_lstm_backward_seq(float *dx, float *dw_ih, float *dw_hh, float *db, float *dh, float *dc, float *gates,
                          float *work, const float *dh_seq, const float *x, const float *h_seq, const float *cs,
                          const float *h0, const float *c0, const float *w_ih, const float *w_hh,
                          const int *lengths, int reverse, int B, int T, int F, int H) {
    lp_gemm_w w = prepare(w_hh, H, 0);
    seq_part p = {.gates = gates, .dh = dh, .dc = dc, .cs_saved = cs, .w_hh = &w, .dh_seq = dh_seq, .c0 = c0,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_rows(backward_part, &p, B);
    lp_gemm_w_free(&w);
    lp_lstm_weight_backward(dx, dw_ih, dw_hh, db, work, gates, x, h_seq, h0, w_ih, lengths, reverse, B, T, F, H);
}
