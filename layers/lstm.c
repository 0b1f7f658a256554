/* lstm: the fused LSTM sequence op and its kernels (see lstm.h and docs/METHOD.md, "LSTM forward" and
 * "LSTM backward (BPTT)"; docs/TUTORIAL.md walks through them with numbers).
 *
 * The equations are two functions, one batch row at a time: cell_forward_row (gates -> c_t, h_t) and
 * cell_backward_row (dh_t, dc_t -> the gate gradients and dc_{t-1}). Around them: the step functions
 * (one GEMM with W_hh per step, the padding rule), the weight gradients as three large GEMMs, and the
 * tape op. The speed work lives elsewhere: the vectorisable exp/sigmoid/tanh in core/fastmath.h, the
 * threads that split the batch rows in layers/lstm_par.c.
 *
 * Floating-point note: the gate loops call the branch-free sigmoid/tanh of core/fastmath.h. GCC only vectorises
 * their clamps (a select) when it may assume floating-point operations do not trap, hence the
 * `no-trapping-math` optimisation pragma for this file; we never enable FP exceptions, so it changes
 * no result, it only lets the select become a vector min/max. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#include "layers/lstm.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/fastmath.h"
#include "core/gemm.h"
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

static inline int step_valid(const int *lengths, int b, int t) { return !lengths || t < lengths[b]; }

/* ---- kernels ------------------------------------------------------------------------------------- */

void lp_lstm_input_proj(float *gates, const float *x, const float *w_ih, int BT, int F, int H) {
    // gates [BT,4H] = x [BT,F] · w_ih^T [F,4H]
    lp_gemm(0, 1, BT, 4 * H, F, 1.0f, x, F, w_ih, F, 0.0f, gates, 4 * H);
}

/* The forward equations for one batch row at one step (docs/METHOD.md, "LSTM forward"), a the row's
 * pre-activations x_t·W_ih^T + h_{t-1}·W_hh^T, in four blocks of n units:
 *
 *     i = σ(a_i + b_i)   f = σ(a_f + b_f)   g = tanh(a_g + b_g)   o = σ(a_o + b_o)
 *     c_t = f ⊙ c_{t-1} + i ⊙ g             h_t = o ⊙ tanh(c_t)
 *
 * gi..go hold a on entry and the activations i, f, g, o on return (saved for backward); c and h hold
 * c_{t-1}, h_{t-1} on entry and c_t, h_t on return; hout receives h_t too (the layer's output row).
 * Separate restrict pointers per gate let GCC vectorise the loop. */
static inline __attribute__((always_inline)) void
cell_forward_row(float *restrict gi, float *restrict gf, float *restrict gg, float *restrict go,
                 const float *restrict bias, int bstride, float *restrict h, float *restrict c, float *restrict hout,
                 int n) {
    if (bias) { /* bias [4][bstride]: the i, f, g, o blocks */
        for (int j = 0; j < n; j++) {
            gi[j] += bias[j];
            gf[j] += bias[bstride + j];
            gg[j] += bias[2 * bstride + j];
            go[j] += bias[3 * bstride + j];
        }
    }
    for (int j = 0; j < n; j++) {
        float i = lp_fast_sigmoid(gi[j]), f = lp_fast_sigmoid(gf[j]);
        float g = lp_fast_tanh(gg[j]), o = lp_fast_sigmoid(go[j]);
        float cn = f * c[j] + i * g;
        float hn = o * lp_fast_tanh(cn);
        gi[j] = i;
        gf[j] = f;
        gg[j] = g;
        go[j] = o;
        c[j] = cn;
        h[j] = hn;
        hout[j] = hn;
    }
}

/* Forward of step t for batch rows [b0, b1) (a thread's share: layers/lstm_par.c). */
LP_VECTOR_CLONES
void lp_lstm_step_forward(float *gates, float *h, float *c, float *h_seq, float *cs, const lp_gemm_w *w_hh,
                          const float *b, const int *lengths, int t, int b0, int b1, int T, int H) {
    const int G = 4 * H, M = b1 - b0;
    float *grow = gates + ((size_t)b0 * T + t) * G;
    // gates rows (b,t) += h [M,H] · w_hh^T [H,4H]; the row stride T*4H steps over the other time steps.
    // One row (e.g. latency-bound inference of one sequence) is a matrix-vector product: sgemv reads W_hh
    // once, where sgemm would first copy it into its packed layout at every step.
    if (M == 1)
        lp_gemv_pw(0, 1.0f, w_hh, h + (size_t)b0 * H, 1.0f, grow);
    else
        lp_gemm_pw(0, 1, M, G, H, 1.0f, h + (size_t)b0 * H, H, w_hh, 1.0f, grow, T * G);
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

/* The backward equations (BPTT) for one valid batch row at one step (docs/METHOD.md, "LSTM backward"):
 *
 *     dh  = dh_t (from step t+1) + dhout (the output's own gradient)
 *     dc  = dc_t (from step t+1) + dh ⊙ o ⊙ tanh'(c_t)
 *     da_i = dc ⊙ g ⊙ i(1-i)        da_f = dc ⊙ c_{t-1} ⊙ f(1-f)
 *     da_g = dc ⊙ i ⊙ tanh'(a_g)    da_o = dh ⊙ tanh(c_t) ⊙ o(1-o)
 *     dc_{t-1} = dc ⊙ f             (dh_{t-1} = da·W_hh: the caller's GEMM, so dh is left 0)
 *
 * gi..go hold the activations i, f, g, o on entry and da (the pre-activation gradients) on return. cnow
 * is c_t (tanh(c_t) is recomputed exactly as forward computed it); cprev is c_{t-1}, or NULL for a zero
 * initial state.
 * tanh' = (1 - t)(1 + t), not 1 - t·t: near t = ±1 the square's rounding is a large part of the small
 * result (up to 9e-5 relative over all floats t, against 1e-7 for the product). */
static inline __attribute__((always_inline)) void cell_backward_row_impl(
    float *restrict gi, float *restrict gf, float *restrict gg, float *restrict go, float *restrict dh,
    float *restrict dc, const float *restrict cprev, const float *restrict cnow, int H, const int have_cprev) {
    for (int j = 0; j < H; j++) {
        float tc = lp_fast_tanh(cnow[j]);
        float i = gi[j], f = gf[j], g = gg[j], o = go[j];
        float dht = dh[j];
        float dct = dc[j] + dht * o * ((1.0f - tc) * (1.0f + tc));
        gi[j] = dct * g * i * (1.0f - i);
        gf[j] = dct * (have_cprev ? cprev[j] : 0.0f) * f * (1.0f - f); /* 0 when c_{t-1} = 0; NaN stays NaN */
        gg[j] = dct * i * ((1.0f - g) * (1.0f + g));
        go[j] = dht * tc * o * (1.0f - o);
        dc[j] = dct * f;
        dh[j] = 0.0f; /* refilled by the GEMM dh += dG·W_hh below */
    }
}

static inline __attribute__((always_inline)) void
cell_backward_row(float *restrict gi, float *restrict gf, float *restrict gg, float *restrict go, float *restrict dh,
                  float *restrict dc, const float *restrict dhout, const float *restrict cprev,
                  const float *restrict cnow, int H) {
    if (dhout) /* fold the output gradient into dh first so the main loop has no branch */
        for (int j = 0; j < H; j++) dh[j] += dhout[j];
    /* the loop once per case, each with a constant have_cprev (a test inside the loop costs 13%) */
    if (cprev) cell_backward_row_impl(gi, gf, gg, go, dh, dc, cprev, cnow, H, 1);
    else cell_backward_row_impl(gi, gf, gg, go, dh, dc, NULL, cnow, H, 0);
}

/* Row of cs / h_seq that holds the state entering step t of sequence b (processing order: t-1 forward,
 * t+1 in reverse), or -1 when step t is the sequence's first processed step (the state is h0/c0). */
static inline long prev_row(int reverse, int b, int t, int len, int T) {
    if (!reverse) return t > 0 ? (long)b * T + t - 1 : -1;
    return t + 1 < len ? (long)b * T + t + 1 : -1;
}

/* Backward of step t for batch rows [b0, b1). */
LP_VECTOR_CLONES
void lp_lstm_step_backward(float *gates, float *dh, float *dc, const float *dh_seq, const float *cs,
                           const float *c0, const lp_gemm_w *w_hh, const int *lengths, int reverse, int t, int b0,
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
        lp_gemv_pw(1, 1.0f, w_hh, grow, 1.0f, dh + (size_t)b0 * H);
    else
        lp_gemm_pw(0, 0, M, H, G, 1.0f, grow, T * G, w_hh, 1.0f, dh + (size_t)b0 * H, H);
}

void lp_lstm_weight_backward(float *dx, float *dw_ih, float *dw_hh, float *db, float *work, const float *dgates,
                             const float *x, const float *h_seq, const float *h0, const float *w_ih,
                             const int *lengths, int reverse, int B, int T, int F, int H) {
    const int G = 4 * H;
    const int BT = B * T;
    // dw_ih [4H,F] += dG^T [4H,BT] · x [BT,F]
    if (dw_ih)
        lp_gemm(1, 0, G, F, BT, 1.0f, dgates, G, x, F, 1.0f, dw_ih, F);
    if (dw_hh) {
        /* dw_hh [4H,H] += Σ_rows dG_row^T · h_{prev}. In processing order the state entering step t is
         * the output row next to it: row r-1 forward, r+1 in reverse. One GEMM pairs every row with that
         * neighbour, rows whose neighbour is not their predecessor (a sequence's first processed step,
         * where it is the neighbouring sequence's row, a padding row or nothing) included; the second
         * GEMM adds dG_first^T · (h0 - what the first GEMM paired them with). Padding rows have dG = 0. */
        if (BT > 1) {
            if (!reverse) // rows 1..BT-1 of dG with rows 0..BT-2 of h_seq
                lp_gemm(1, 0, G, H, BT - 1, 1.0f, dgates + G, G, h_seq, H, 1.0f, dw_hh, H);
            else // rows 0..BT-2 of dG with rows 1..BT-1 of h_seq
                lp_gemm(1, 0, G, H, BT - 1, 1.0f, dgates, G, h_seq + H, H, 1.0f, dw_hh, H);
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
        lp_gemm(1, 0, G, H, B, 1.0f, g0, G, d, H, 1.0f, dw_hh, H);
    }
    // dx [BT,F] += dG [BT,4H] · w_ih [4H,F]
    if (dx)
        lp_gemm(0, 0, BT, F, G, 1.0f, dgates, G, w_ih, F, 1.0f, dx, F);
    // db [4H] += column sums of dG
    if (db)
        for (int r = 0; r < BT; r++) {
            const float *row = dgates + (size_t)r * G;
            for (int j = 0; j < G; j++) db[j] += row[j];
        }
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
