/* lstm: the fused LSTM sequence op and its kernels (see lstm.h and docs/METHOD.md, "LSTM forward" and
 * "LSTM backward (BPTT)").
 *
 * Floating-point note: the gate loops call the branch-free sigmoid/tanh below. GCC only vectorises
 * their clamps (a select) when it may assume floating-point operations do not trap, hence the
 * `no-trapping-math` optimisation pragma for this file; we never enable FP exceptions, so it changes
 * no result, it only lets the select become a vector min/max. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "layers/lstm.h"

#include <cblas.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/fastmath.h"
#include "core/par.h"
#include "core/status.h"

/* ---- the layer's parameters -------------------------------------------------------------------- */

int lp_lstm_declare(lp_params *ps, const char *prefix, int H, int F) {
    char name[LP_PARAM_NAME_MAX];
    snprintf(name, sizeof name, "%s.w_ih", prefix);
    if (lp_params_declare(ps, name, 2, (const int[]){4 * H, F}) < 0) return -1;
    snprintf(name, sizeof name, "%s.w_hh", prefix);
    if (lp_params_declare(ps, name, 2, (const int[]){4 * H, H}) < 0) return -1;
    snprintf(name, sizeof name, "%s.b", prefix);
    return lp_params_declare(ps, name, 1, (const int[]){4 * H}) < 0 ? -1 : 0;
}

lp_lstm_weights lp_lstm_find(lp_params *ps, const char *prefix) {
    char name[LP_PARAM_NAME_MAX];
    lp_lstm_weights w;
    snprintf(name, sizeof name, "%s.w_ih", prefix);
    w.w_ih = lp_params_find(ps, name);
    snprintf(name, sizeof name, "%s.w_hh", prefix);
    w.w_hh = lp_params_find(ps, name);
    snprintf(name, sizeof name, "%s.b", prefix);
    w.b = lp_params_find(ps, name);
    return w;
}

/* ---- activations -------------------------------------------------------------------------------- */

/* e^x for any float: the argument is clamped to [-87, 88] (lp_exp_clamped in core/fastmath.h), written
 * so that NaN clamps to -87 (the comparisons are false) and the float->int conversion inside only sees
 * in-range values; NaN is passed through at the end, so a diverged run stays visibly NaN. */
static inline float fast_exp(float x0) {
    float x = x0 > -87.0f ? x0 : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    float e = lp_exp_clamped(x);
    return x0 == x0 ? e : x0;
}

static inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

/* tanh in two forms, both computed and one selected (so the loop vectorises):
 *   |x| < 0.875: x + x³·P(x²), P of degree 6 with P(0) = -1/3 exactly (a weighted minimax fit of
 *                (tanh x - x)/x³, coefficients rounded to float); x is exact and the x³ term at most a
 *                quarter of it, so the result keeps full relative accuracy down to 0;
 *   beyond:      sign(x)·(1 - 2/(e^{2|x|}+1)), where tanh rounds to ±1 in float at |x| ≈ 9.01.
 * Measured against tanh in double (2^16 points per 1/8 of x): within 1.04 ulp everywhere, correctly
 * rounded for 77-99% of x below 4 and all beyond, and unbiased: the mean signed error per 1/8 interval
 * is below 0.03 ulp. The backward pass takes tanh' = (1 - t)(1 + t) from these values and its gradients
 * are only as good as them. Two earlier versions were not: Eigen's [13/6] rational function clamped to
 * ±1 beyond 7.905 made tanh' 1% low for |x| in [6,7), 6% in [7,7.9) and 0 in [7.9,9); and the same
 * rational function below 0.625 was up to 3.9 ulp off and biased (-1.07 ulp on average in [0,0.25),
 * -0.45 in [0.25,0.5)), which at a trained checkpoint tripled the rounding error of the gradient of the
 * BiLSTM's backward direction against float64 (docs/RESULTS.md). */
static inline float fast_tanh(float x) {
    float ax = x < 0.0f ? -x : x;
    float big = 1.0f - 2.0f / (fast_exp(2.0f * ax) + 1.0f); /* NaN stays NaN; e^{2|x|} clamps at e^88 */
    big = x < 0.0f ? -big : big;
    float x2 = x * x; /* for |x| >= 0.875 the polynomial may overflow; it is not selected then */
    float p = -5.11516875e-4f;
    p = p * x2 + 2.73176027e-3f;
    p = p * x2 + -8.4205186e-3f;
    p = p * x2 + 2.17445754e-2f;
    p = p * x2 + -5.39509207e-2f;
    p = p * x2 + 1.33332506e-1f;
    p = p * x2 + -3.33333343e-1f;
    float small = x + (x * x2) * p;
    return ax < 0.875f ? small : big;
}

float lp_lstm_sigmoid(float x) { return fast_sigmoid(x); }
float lp_lstm_tanh(float x) { return fast_tanh(x); }

static inline int step_valid(const int *lengths, int b, int t) { return !lengths || t < lengths[b]; }

/* ---- kernels ------------------------------------------------------------------------------------- */

void lp_lstm_input_proj(float *gates, const float *x, const float *w_ih, int BT, int F, int H) {
    // gates [BT,4H] = x [BT,F] · w_ih^T [F,4H]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, BT, 4 * H, F, 1.0f, x, F, w_ih, F, 0.0f, gates,
                4 * H);
}

/* The fused gate loop for one batch row: bias, nonlinearities, cell update. g is the row's [4H] gates
 * (pre-activations in, activations out). Separate restrict pointers per gate let GCC vectorise. */
static void cell_forward_row(float *restrict gi, float *restrict gf, float *restrict gg, float *restrict go,
                             const float *restrict bias, int bstride, float *restrict h, float *restrict c,
                             float *restrict hout, int n) {
    if (bias) { /* bias [4][bstride]: the i, f, g, o blocks */
        for (int j = 0; j < n; j++) {
            gi[j] += bias[j];
            gf[j] += bias[bstride + j];
            gg[j] += bias[2 * bstride + j];
            go[j] += bias[3 * bstride + j];
        }
    }
    for (int j = 0; j < n; j++) {
        float i = fast_sigmoid(gi[j]), f = fast_sigmoid(gf[j]);
        float g = fast_tanh(gg[j]), o = fast_sigmoid(go[j]);
        float cn = f * c[j] + i * g;
        float hn = o * fast_tanh(cn);
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        c[j] = cn;
        h[j] = hn;
        hout[j] = hn;
    }
}

/* Forward of step t for batch rows [b0, b1) (a thread's share; see "threads" below). */
static void step_forward_rows(float *gates, float *h, float *c, float *h_seq, float *cs, const float *w_hh,
                              const float *b, const int *lengths, int t, int b0, int b1, int T, int H) {
    const int G = 4 * H, M = b1 - b0;
    float *grow = gates + ((size_t)b0 * T + t) * G;
    // gates rows (b,t) += h [M,H] · w_hh^T [H,4H]; the row stride T*4H steps over the other time steps.
    // One row (e.g. latency-bound inference of one sequence) is a matrix-vector product: sgemv reads W_hh
    // once, where sgemm would first copy it into its packed layout at every step.
    if (M == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, G, H, 1.0f, w_hh, H, h + (size_t)b0 * H, 1, 1.0f, grow, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, G, H, 1.0f, h + (size_t)b0 * H, H, w_hh, H, 1.0f,
                    grow, T * G);
    for (int bi = b0; bi < b1; bi++) {
        size_t row = (size_t)bi * T + t;
        float *hb = h + (size_t)bi * H, *cb = c + (size_t)bi * H;
        float *hout = h_seq + row * H;
        if (!step_valid(lengths, bi, t)) { /* padding: state unchanged, output 0, nothing to save */
            memset(hout, 0, (size_t)H * sizeof *hout);
            if (cs) memset(cs + row * H, 0, (size_t)H * sizeof *cs);
            continue;
        }
        float *g = gates + row * G;
        cell_forward_row(g, g + H, g + 2 * H, g + 3 * H, b, H, hb, cb, hout, H);
        if (cs) memcpy(cs + row * H, cb, (size_t)H * sizeof *cb);
    }
}

void lp_lstm_step_forward(float *gates, float *h, float *c, float *h_seq, float *cs, const float *w_hh,
                          const float *b, const int *lengths, int t, int B, int T, int H) {
    step_forward_rows(gates, h, c, h_seq, cs, w_hh, b, lengths, t, 0, B, T, H);
}

/* Gradient of one valid batch row at one step; see docs/METHOD.md for the equations. gates holds the
 * activations i,f,g,o on entry and the pre-activation gradients on return. cnow is c_t (tanh(c_t) is
 * recomputed exactly as forward computed it); cprev is c_{t-1}, or NULL for a zero initial state.
 * tanh' = (1 - t)(1 + t), not 1 - t·t: near t = ±1 the square's rounding is a large part of the small
 * result (up to 9e-5 relative over all floats t, against 1e-7 for the product). */
static inline void cell_backward_row(float *restrict gi, float *restrict gf, float *restrict gg,
                                     float *restrict go, float *restrict dh, float *restrict dc,
                                     const float *restrict dhout, const float *restrict cprev,
                                     const float *restrict cnow, int H) {
    if (dhout) /* fold the output gradient into dh first so the main loop has no branch */
        for (int j = 0; j < H; j++) dh[j] += dhout[j];
    if (!cprev) { /* c_{t-1} = 0: no gradient through the forget gate */
        for (int j = 0; j < H; j++) {
            float tc = fast_tanh(cnow[j]);
            float i = gi[j], f = gf[j], g = gg[j], o = go[j];
            float dht = dh[j];
            float dct = dc[j] + dht * o * ((1.0f - tc) * (1.0f + tc));
            gi[j] = dct * g * i * (1.0f - i);
            gf[j] = dct * 0.0f * f * (1.0f - f); /* not 0: a NaN/Inf dct stays visible */
            gg[j] = dct * i * ((1.0f - g) * (1.0f + g));
            go[j] = dht * tc * o * (1.0f - o);
            dc[j] = dct * f;
            dh[j] = 0.0f;
        }
        return;
    }
    for (int j = 0; j < H; j++) {
        float tc = fast_tanh(cnow[j]);
        float i = gi[j], f = gf[j], g = gg[j], o = go[j];
        float dht = dh[j];
        float dct = dc[j] + dht * o * ((1.0f - tc) * (1.0f + tc));
        gi[j] = dct * g * i * (1.0f - i);
        gf[j] = dct * cprev[j] * f * (1.0f - f);
        gg[j] = dct * i * ((1.0f - g) * (1.0f + g));
        go[j] = dht * tc * o * (1.0f - o);
        dc[j] = dct * f;
        dh[j] = 0.0f; /* refilled by the GEMM dh += dG·W_hh below */
    }
}

/* Row of cs / h_seq that holds the state entering step t of sequence b (processing order: t-1 forward,
 * t+1 in reverse), or -1 when step t is the sequence's first processed step (the state is h0/c0). */
static inline long prev_row(int reverse, int b, int t, int len, int T) {
    if (!reverse) return t > 0 ? (long)b * T + t - 1 : -1;
    return t + 1 < len ? (long)b * T + t + 1 : -1;
}

/* Backward of step t for batch rows [b0, b1). */
static void step_backward_rows(float *gates, float *dh, float *dc, const float *dh_seq, const float *cs,
                               const float *c0, const float *w_hh, const int *lengths, int reverse, int t, int b0,
                               int b1, int T, int H) {
    const int G = 4 * H, M = b1 - b0;
    for (int bi = b0; bi < b1; bi++) {
        size_t row = (size_t)bi * T + t;
        float *g = gates + row * G;
        if (!step_valid(lengths, bi, t)) { /* padding: gradients pass through the unchanged state */
            memset(g, 0, (size_t)G * sizeof *g);
            continue;
        }
        long pr = prev_row(reverse, bi, t, lengths ? lengths[bi] : T, T);
        const float *cprev = pr >= 0 ? cs + (size_t)pr * H : c0 ? c0 + (size_t)bi * H : NULL;
        cell_backward_row(g, g + H, g + 2 * H, g + 3 * H, dh + (size_t)bi * H, dc + (size_t)bi * H,
                          dh_seq ? dh_seq + row * H : NULL, cprev, cs + row * H, H);
    }
    // dh [M,H] += dG_t [M,4H] · w_hh [4H,H]; padding rows of dG_t are 0, so their dh passes unchanged
    const float *grow = gates + ((size_t)b0 * T + t) * G;
    if (M == 1) /* as in forward: a matrix-vector product, dh += w_hh^T · dG_t */
        cblas_sgemv(CblasRowMajor, CblasTrans, G, H, 1.0f, w_hh, H, grow, 1, 1.0f, dh + (size_t)b0 * H, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, H, G, 1.0f, grow, T * G, w_hh, H, 1.0f,
                    dh + (size_t)b0 * H, H);
}

void lp_lstm_step_backward(float *gates, float *dh, float *dc, const float *dh_seq, const float *cs,
                           const float *c0, const float *w_hh, const int *lengths, int reverse, int t, int B,
                           int T, int H) {
    step_backward_rows(gates, dh, dc, dh_seq, cs, c0, w_hh, lengths, reverse, t, 0, B, T, H);
}

void lp_lstm_weight_backward(float *dx, float *dw_ih, float *dw_hh, float *db, float *work, const float *dgates,
                             const float *x, const float *h_seq, const float *h0, const float *w_ih,
                             const int *lengths, int reverse, int B, int T, int F, int H) {
    const int G = 4 * H;
    const int BT = B * T;
    // dw_ih [4H,F] += dG^T [4H,BT] · x [BT,F]
    if (dw_ih)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, F, BT, 1.0f, dgates, G, x, F, 1.0f, dw_ih, F);
    if (dw_hh) {
        /* dw_hh [4H,H] += Σ_rows dG_row^T · h_{prev}. In processing order the state entering step t is
         * the output row next to it: row r-1 forward, r+1 in reverse. One GEMM pairs every row with that
         * neighbour, rows whose neighbour is not their predecessor (a sequence's first processed step,
         * where it is the neighbouring sequence's row, a padding row or nothing) included; the second
         * GEMM adds dG_first^T · (h0 - what the first GEMM paired them with). Padding rows have dG = 0. */
        if (BT > 1) {
            if (!reverse) // rows 1..BT-1 of dG with rows 0..BT-2 of h_seq
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, BT - 1, 1.0f, dgates + G, G, h_seq, H,
                            1.0f, dw_hh, H);
            else // rows 0..BT-2 of dG with rows 1..BT-1 of h_seq
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, BT - 1, 1.0f, dgates, G,
                            h_seq + H, H, 1.0f, dw_hh, H);
        }
        float *g0 = work, *d = work + (size_t)B * G; /* [B,4H] first-step dG, [B,H] correction */
        for (int bi = 0; bi < B; bi++) {
            const int len = lengths ? lengths[bi] : T;
            float *gr = g0 + (size_t)bi * G, *dr = d + (size_t)bi * H;
            if (len == 0) { /* no valid step: dG is 0 everywhere, nothing to correct */
                memset(gr, 0, (size_t)G * sizeof *gr);
                memset(dr, 0, (size_t)H * sizeof *dr);
                continue;
            }
            const long r = (long)bi * T + (reverse ? len - 1 : 0), p = reverse ? r + 1 : r - 1;
            memcpy(gr, dgates + (size_t)r * G, (size_t)G * sizeof *gr);
            const float *hp = p >= 0 && p < BT ? h_seq + (size_t)p * H : NULL;
            const float *hz = h0 ? h0 + (size_t)bi * H : NULL;
            for (int j = 0; j < H; j++) dr[j] = (hz ? hz[j] : 0.0f) - (hp ? hp[j] : 0.0f);
        }
        // dw_hh [4H,H] += g0^T [4H,B] · d [B,H]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, H, B, 1.0f, g0, G, d, H, 1.0f, dw_hh, H);
    }
    // dx [BT,F] += dG [BT,4H] · w_ih [4H,F]
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, BT, F, G, 1.0f, dgates, G, w_ih, F, 1.0f, dx, F);
    // db [4H] += column sums of dG
    if (db)
        for (int r = 0; r < BT; r++) {
            const float *row = dgates + (size_t)r * G;
            for (int j = 0; j < G; j++) db[j] += row[j];
        }
}

/* ---- threads for the recurrence ---------------------------------------------------------------- *
 *
 * The batch rows are independent through the whole recurrence, so with n > 1 OpenBLAS threads and a
 * small per-step product (LSTM_SPLIT_MAX_MACS) the rows are split into n contiguous parts and each part runs all T steps (forward) or all BPTT steps
 * (backward) in its own thread, with OpenBLAS set to one thread meanwhile. Per step that replaces a
 * small multi-threaded GEMM (threads woken and joined T times per layer: at B=32, H=128 the product is
 * [32,128]·[128,512]) and a single-threaded gate loop by n independent single-threaded streams that meet
 * once per layer. The big GEMMs (input projection, weight gradients) stay multi-threaded in OpenBLAS.
 * Each row's arithmetic is the same whatever the split. The thread count is OpenBLAS's setting
 * (openblas_set_num_threads / OPENBLAS_NUM_THREADS: the one knob for the cores used), so the total
 * number of busy threads never exceeds it. It is changed and restored around the parallel part, which
 * assumes no other thread calls BLAS at that moment (nothing in this project does). */

#define LSTM_MAX_THREADS LP_PAR_MAX

/* Split only small recurrent products (multiply-adds per step for the whole batch). Each part packs
 * W_hh again for its own GEMM, which costs CPU time (docs/BENCHMARKS.md, "Constants chosen by
 * measurement"). Big products thread well inside OpenBLAS, so the split pays only where per-step
 * synchronisation dominates: B=32, H=256 is 8.4M multiply-adds, the paper's B=160, H=512 is 168M. */
#define LSTM_SPLIT_MAX_MACS 33554432.0 /* 2^25 */

typedef struct {
    float *gates, *h, *c, *h_seq, *cs, *dh, *dc;
    const float *w_hh, *b, *dh_seq, *c0, *cs_saved; /* cs: forward writes it; cs_saved: backward reads */
    const int *lengths;
    int reverse, T, H, b0, b1;
} seq_part;

static void *forward_part(void *arg) {
    seq_part *p = arg;
    for (int s = 0; s < p->T; s++) {
        int t = p->reverse ? p->T - 1 - s : s;
        step_forward_rows(p->gates, p->h, p->c, p->h_seq, p->cs, p->w_hh, p->b, p->lengths, t, p->b0, p->b1, p->T,
                          p->H);
    }
    return NULL;
}

static void *backward_part(void *arg) {
    seq_part *p = arg;
    for (int s = p->T - 1; s >= 0; s--) { /* reverse of the forward processing order */
        int t = p->reverse ? p->T - 1 - s : s;
        step_backward_rows(p->gates, p->dh, p->dc, p->dh_seq, p->cs_saved, p->c0, p->w_hh, p->lengths, p->reverse, t,
                           p->b0, p->b1, p->T, p->H);
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
    int n = (double)B * 4.0 * H * H < LSTM_SPLIT_MAX_MACS ? threads : 1;
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

void lp_lstm_recur_forward(float *h_seq, float *h, float *c, float *gates, float *cs, const float *w_hh,
                           const float *b, const int *lengths, int reverse, int B, int T, int H, int parts) {
    seq_part p = {.gates = gates, .h = h, .c = c, .h_seq = h_seq, .cs = cs, .w_hh = w_hh, .b = b,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_parts(forward_part, &p, B, parts);
}

void lp_lstm_recur_backward(float *gates, float *dh, float *dc, const float *dh_seq, const float *cs,
                            const float *c0, const float *w_hh, const int *lengths, int reverse, int B, int T,
                            int H, int parts) {
    seq_part p = {.gates = gates, .dh = dh, .dc = dc, .cs_saved = cs, .w_hh = w_hh, .dh_seq = dh_seq, .c0 = c0,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_parts(backward_part, &p, B, parts);
}

void lp_lstm_forward_seq(float *h_seq, float *h, float *c, float *gates, float *cs, const float *x,
                         const float *w_ih, const float *w_hh, const float *b, const int *lengths, int reverse,
                         int B, int T, int F, int H) {
    lp_lstm_input_proj(gates, x, w_ih, B * T, F, H);
    seq_part p = {.gates = gates, .h = h, .c = c, .h_seq = h_seq, .cs = cs, .w_hh = w_hh, .b = b,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_rows(forward_part, &p, B);
}

void lp_lstm_backward_seq(float *dx, float *dw_ih, float *dw_hh, float *db, float *dh, float *dc, float *gates,
                          float *work, const float *dh_seq, const float *x, const float *h_seq, const float *cs,
                          const float *h0, const float *c0, const float *w_ih, const float *w_hh,
                          const int *lengths, int reverse, int B, int T, int F, int H) {
    seq_part p = {.gates = gates, .dh = dh, .dc = dc, .cs_saved = cs, .w_hh = w_hh, .dh_seq = dh_seq, .c0 = c0,
                  .lengths = lengths, .reverse = reverse, .T = T, .H = H};
    run_rows(backward_part, &p, B);
    lp_lstm_weight_backward(dx, dw_ih, dw_hh, db, work, gates, x, h_seq, h0, w_ih, lengths, reverse, B, T, F, H);
}

/* ---- the tape op ---------------------------------------------------------------------------------- */

typedef struct {
    int B, T, F, H, reverse;
    int *lengths;                          /* [B] copy, or NULL */
    float *gates, *cs;                     /* saved by forward: activated gates [B,T,4H], c_t [B,T,H] */
    float *dh, *dc;                        /* [B,H] scratch for the backward state gradients */
    float *work;                           /* [B,5H] scratch for the dW_hh correction */
    float *h0, *c0;                        /* [B,H] copies of the initial state, or NULL (zeros): the
                                            * caller may overwrite its h0/c0 after the call (carried
                                            * state, lm/), and backward needs them */
    int used;                              /* backward ran (gates now hold dG) */
} lstm_ctx;

static void lstm_backward(lp_node *node) {
    lstm_ctx *k = node->ctx;
    LP_CHECK(!k->used); /* the saved gates were consumed by a previous backward */
    k->used = 1;
    lp_tensor *x = node->in[0], *w_ih = node->in[1], *w_hh = node->in[2], *b = node->in[3];
    lp_tensor *h0 = node->in[4], *c0 = node->in[5];
    lp_tensor *h_seq = node->out[0], *h_last = node->out[1], *c_last = node->out[2];
    size_t nBH = (size_t)k->B * k->H;
    memcpy(k->dh, h_last->grad, nBH * sizeof *k->dh);
    memcpy(k->dc, c_last->grad, nBH * sizeof *k->dc);
    lp_lstm_backward_seq(x->grad, w_ih->grad, w_hh->grad, b ? b->grad : NULL, k->dh, k->dc, k->gates, k->work,
                         h_seq->grad, x->data, h_seq->data, k->cs, k->h0, k->c0, w_ih->data, w_hh->data,
                         k->lengths, k->reverse, k->B, k->T, k->F, k->H);
    if (h0 && h0->grad)
        for (size_t i = 0; i < nBH; i++) h0->grad[i] += k->dh[i];
    if (c0 && c0->grad)
        for (size_t i = 0; i < nBH; i++) c0->grad[i] += k->dc[i];
}

static const lp_op_desc lstm_op = {"lstm", lstm_backward};

lp_lstm_out lp_lstm(lp_tape *tp, lp_tensor *x, lp_tensor *w_ih, lp_tensor *w_hh, lp_tensor *b, lp_tensor *h0,
                    lp_tensor *c0, const int *lengths, int reverse) {
    lp_lstm_out out = {NULL, NULL, NULL};
    if (!x || !w_ih || !w_hh) return out;
    LP_CHECK(x->ndim == 3 && w_ih->ndim == 2 && w_hh->ndim == 2);
    const int B = x->dims[0], T = x->dims[1], F = x->dims[2], H = w_hh->dims[1];
    LP_CHECK(B > 0 && T > 0 && H > 0);
    LP_CHECK(w_ih->dims[0] == 4 * H && w_ih->dims[1] == F && w_hh->dims[0] == 4 * H);
    LP_CHECK(!b || (b->ndim == 1 && b->dims[0] == 4 * H));
    LP_CHECK(!h0 || (h0->ndim == 2 && h0->dims[0] == B && h0->dims[1] == H));
    LP_CHECK(!c0 || (c0->ndim == 2 && c0->dims[0] == B && c0->dims[1] == H));
    if (lengths)
        for (int i = 0; i < B; i++)
            if (lengths[i] < 0 || lengths[i] > T) {
                lp_errorf(LP_ERR_ARG, "lstm: length %d of sequence %d is outside [0, %d]", lengths[i], i, T);
                return out;
            }

    lp_tensor *in[6] = {x, w_ih, w_hh, b, h0, c0};
    const int need = lp_tape_wants_grad(tp, in, 6);
    const size_t nBH = (size_t)B * H, nBTH = (size_t)B * T * H;
    lp_tensor *h_seq = lp_tape_tensor(tp, 3, (int[]){B, T, H}, need);
    lp_tensor *h_last = lp_tape_tensor(tp, 2, (int[]){B, H}, need);
    lp_tensor *c_last = lp_tape_tensor(tp, 2, (int[]){B, H}, need);
    float *gates = lp_tape_alloc(tp, nBTH * 4, sizeof(float));
    if (!h_seq || !h_last || !c_last || !gates) return out;
    float *cs = NULL;
    if (need) {
        cs = lp_tape_alloc(tp, nBTH, sizeof(float));
        if (!cs) return out;
    }
    /* h_last/c_last are the running state: start from h0/c0 (or zeros) */
    if (h0) memcpy(h_last->data, h0->data, nBH * sizeof(float));
    else memset(h_last->data, 0, nBH * sizeof(float));
    if (c0) memcpy(c_last->data, c0->data, nBH * sizeof(float));
    else memset(c_last->data, 0, nBH * sizeof(float));

    lp_lstm_forward_seq(h_seq->data, h_last->data, c_last->data, gates, cs, x->data, w_ih->data, w_hh->data,
                        b ? b->data : NULL, lengths, reverse, B, T, F, H);

    if (need) {
        lstm_ctx *k = lp_tape_alloc(tp, 1, sizeof *k);
        if (!k) return out;
        memset(k, 0, sizeof *k);
        k->B = B, k->T = T, k->F = F, k->H = H, k->reverse = reverse != 0;
        k->gates = gates, k->cs = cs;
        k->dh = lp_tape_alloc(tp, nBH, sizeof(float));
        k->dc = lp_tape_alloc(tp, nBH, sizeof(float));
        k->work = lp_tape_alloc(tp, 5 * nBH, sizeof(float));
        if (!k->dh || !k->dc || !k->work) return out;
        if (h0) {
            if (!(k->h0 = lp_tape_alloc(tp, nBH, sizeof(float)))) return out;
            memcpy(k->h0, h0->data, nBH * sizeof(float));
        }
        if (c0) {
            if (!(k->c0 = lp_tape_alloc(tp, nBH, sizeof(float)))) return out;
            memcpy(k->c0, c0->data, nBH * sizeof(float));
        }
        if (lengths) {
            k->lengths = lp_tape_alloc(tp, (size_t)B, sizeof(int));
            if (!k->lengths) return out;
            memcpy(k->lengths, lengths, (size_t)B * sizeof(int));
        }
        lp_tensor *outs[3] = {h_seq, h_last, c_last};
        lp_node *node = lp_tape_record(tp, &lstm_op, in, 6, outs, 3);
        if (!node) return out;
        node->ctx = k;
    }
    out.h_seq = h_seq;
    out.h_last = h_last;
    out.c_last = c_last;
    return out;
}
