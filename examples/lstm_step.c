/* lstm_step: one LSTM by hand — every number of the forward pass and of backpropagation through time
 * (BPTT) for a cell with 2 inputs and 3 units over 3 steps; then a central-difference check of every
 * weight's gradient; then the same weights through the library's fused op, to show that the library
 * computes exactly this.
 *
 * The cell (docs/METHOD.md, "LSTM forward"; gate order i, f, g, o as everywhere in the project):
 *
 *     a_t = W_ih x_t + W_hh h_{t-1} + b                  W_ih [4H,F], W_hh [4H,H], b [4H]
 *     i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)     a_q = rows [qH, (q+1)H) of a_t
 *     c_t = f ⊙ c_{t-1} + i ⊙ g          h_t = o ⊙ tanh(c_t)           h_0 = c_0 = 0
 *
 * and the loss L = Σ_t r_t·h_t for fixed vectors r_t (the random projection the gradient checker uses: a
 * gradient that mixes up two outputs cannot pass). BPTT ("LSTM backward (BPTT)") goes t = 3, 2, 1 with
 * the gradient carried from the step after: δh_t = r_t + δh, δc_t = δc + δh_t ⊙ o ⊙ (1 − tanh² c_t), the
 * gate and pre-activation gradients, then δh ← W_hhᵀ da, δc ← δc_t ⊙ f for the step before.
 *
 * The hand computation is in double, so that its difference from the library (float32) is the library's
 * rounding alone. docs/TUTORIAL.md follows these numbers; tests/examples_check.py recomputes every one of
 * them with numpy from the weights this program prints.
 *
 * Build and run, from the repository root after `make`:
 *     make examples && build/examples/lstm_step
 * or by hand:
 *     cc -std=c11 -O2 examples/lstm_step.c $(pkg-config --cflags --libs build/lstmprune.pc) -o lstm_step */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "core/tape.h"
#include "layers/lstm.h"

enum { F = 2, H = 3, T = 3, G = 4 * H };

static const char *const gate_name[4] = {"i", "f", "g", "o"};

/* The cell's parameters. Unit j of gate q is row q·H + j. */
typedef struct {
    double W_ih[G][F], W_hh[G][H], b[G];
} cell;

// Small weights so that no gate saturates; the forget bias is 1 (a common initialisation: the cell
// starts by remembering).
static const cell weights = {
    .W_ih = {{0.5, -0.3}, {0.2, 0.4}, {-0.6, 0.1},   // i
             {0.3, 0.2}, {-0.1, 0.5}, {0.4, -0.2},   // f
             {0.7, -0.4}, {-0.5, 0.6}, {0.2, 0.3},   // g
             {-0.2, 0.5}, {0.6, -0.1}, {0.1, 0.4}},  // o
    .W_hh = {{0.1, -0.2, 0.3}, {0.0, 0.2, -0.1}, {0.3, 0.1, 0.2},    // i
             {-0.2, 0.1, 0.0}, {0.2, -0.3, 0.1}, {0.1, 0.2, -0.2},   // f
             {0.4, 0.1, -0.3}, {-0.2, 0.3, 0.2}, {0.1, -0.4, 0.3},   // g
             {0.2, 0.0, -0.1}, {-0.3, 0.1, 0.2}, {0.0, 0.3, 0.1}},   // o
    .b = {0.1, -0.1, 0.0, 1.0, 1.0, 1.0, 0.0, 0.1, -0.1, 0.0, 0.2, -0.2},
};
static const double x[T + 1][F] = {{0, 0}, {1.0, -0.5}, {0.3, 0.8}, {-0.7, 0.2}};             // x[1..3]
static const double r[T + 1][H] = {{0, 0, 0}, {0.5, -1.0, 0.25}, {-0.5, 0.75, 1.0}, {1.0, 0.5, -0.75}};

/* The same parameters as one flat array (the layout the library keeps them in, core/params.h), for the
 * gradient check's loop over every weight: W_ih, then W_hh, then b. */
enum { NP = G * F + G * H + G };
typedef union {
    cell c;
    double flat[NP];
} cell_flat;
_Static_assert(sizeof(cell) == NP * sizeof(double), "cell is three arrays of doubles without padding");

/* The flat index of W_ih[row][col] (tensor 0), W_hh[row][col] (1) or b[row] (2). */
static int flat_index(int tensor, int row, int col) {
    return tensor == 0 ? row * F + col : tensor == 1 ? G * F + row * H + col : G * F + G * H + row;
}

/* What the forward pass computes at every step t = 1..T; index 0 holds the state h_0 = c_0 = 0. */
typedef struct {
    double a[T + 1][G], act[T + 1][G]; // pre-activations, and the activations i, f, g, o
    double c[T + 1][H], tc[T + 1][H], h[T + 1][H];
} trace;

static double sigmoid(double z) { return 1.0 / (1.0 + exp(-z)); }

/* The forward pass over the T steps; returns L = Σ_t r_t·h_t. */
static double forward(const cell *w, trace *tr) {
    double L = 0;
    memset(tr, 0, sizeof *tr);
    for (int t = 1; t <= T; t++) {
        for (int row = 0; row < G; row++) { // a_t = W_ih x_t + W_hh h_{t-1} + b
            double s = w->b[row];
            for (int k = 0; k < F; k++) s += w->W_ih[row][k] * x[t][k];
            for (int k = 0; k < H; k++) s += w->W_hh[row][k] * tr->h[t - 1][k];
            tr->a[t][row] = s;
            tr->act[t][row] = row / H == 2 ? tanh(s) : sigmoid(s); // g = tanh, the others σ
        }
        const double *i = tr->act[t], *f = tr->act[t] + H, *g = tr->act[t] + 2 * H, *o = tr->act[t] + 3 * H;
        for (int j = 0; j < H; j++) {
            tr->c[t][j] = f[j] * tr->c[t - 1][j] + i[j] * g[j];
            tr->tc[t][j] = tanh(tr->c[t][j]);
            tr->h[t][j] = o[j] * tr->tc[t][j];
            L += r[t][j] * tr->h[t][j];
        }
    }
    return L;
}

/* "W_hh.f[0][0]": the name of flat index k (gate block, unit, input). */
static void weight_name(int k, char *buf, size_t n) {
    if (k < G * F) {
        snprintf(buf, n, "W_ih.%s[%d][%d]", gate_name[k / F / H], k / F % H, k % F);
        return;
    }
    k -= G * F;
    if (k < G * H) snprintf(buf, n, "W_hh.%s[%d][%d]", gate_name[k / H / H], k / H % H, k % H);
    else snprintf(buf, n, "b.%s[%d]", gate_name[(k - G * H) / H], (k - G * H) % H);
}

/* The central difference (L(w + eps·e_k) − L(w − eps·e_k)) / (2·eps) for weight k. Its error is
 * eps²/6 · ∂³L/∂w_k³ (Taylor) plus the rounding of the two L values divided by 2·eps: ~1e-10 + ~1e-11
 * in double at eps = 1e-5. */
static double central_difference(const cell_flat *w, int k, double eps) {
    static trace scratch;
    cell_flat p = *w;
    p.flat[k] = w->flat[k] + eps;
    const double Lp = forward(&p.c, &scratch);
    p.flat[k] = w->flat[k] - eps;
    const double Lm = forward(&p.c, &scratch);
    return (Lp - Lm) / (2 * eps);
}

/* One number as %.6f, without the "-0.000000" of a tiny negative value. */
static void num(const char *sep, double v) { printf("%s%.6f", sep, fabs(v) < 5e-7 ? 0.0 : v); }

/* "t=1 a_i = [0.123456 -0.654321 0.000001]" (t = 0: no step prefix). */
static void show(int t, const char *name, const double *v, int n) {
    if (t > 0) printf("t=%d ", t);
    printf("%s = [", name);
    for (int k = 0; k < n; k++) num(k ? " " : "", v[k]);
    printf("]\n");
}

/* A [rows,cols] block on one line, rows separated by ';': "W_ih.i = [0.500000 -0.300000; ...]". */
static void show_rows(const char *name, const double *m, int rows, int cols) {
    printf("%s = [", name);
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < cols; k++) num(k ? " " : i ? "; " : "", m[i * cols + k]);
    printf("]\n");
}

/* The four gate blocks of a [4H, cols] matrix (or of a [4H] vector, cols = 1), one line each. */
static void show_gates(const char *name, const double *m, int cols) {
    char label[32];
    for (int q = 0; q < 4; q++) {
        snprintf(label, sizeof label, "%s.%s", name, gate_name[q]);
        if (cols == 1) show(0, label, m + q * H, H);
        else show_rows(label, m + q * H * cols, H, cols);
    }
}

static int fail(void) {
    fprintf(stderr, "lstm_step: %s\n", lp_last_error());
    return 1;
}

/* max |hand − library| over n values. */
static double max_diff(const double *hand, const float *lib, int n) {
    double m = 0;
    for (int k = 0; k < n; k++) m = fmax(m, fabs(hand[k] - (double)lib[k]));
    return m;
}

int main(void) {
    const cell *w = &weights;
    printf("== weights (gate blocks i, f, g, o; unit j of gate q is row q*%d + j), inputs x_t, loss weights r_t\n", H);
    show_gates("W_ih", &w->W_ih[0][0], F);
    show_gates("W_hh", &w->W_hh[0][0], H);
    show_gates("b", w->b, 1);
    char name[16];
    for (int t = 1; t <= T; t++) {
        snprintf(name, sizeof name, "x_%d", t);
        show(0, name, x[t], F);
    }
    for (int t = 1; t <= T; t++) {
        snprintf(name, sizeof name, "r_%d", t);
        show(0, name, r[t], H);
    }

    // ---- forward ----
    static trace tr;
    const double L = forward(w, &tr);
    for (int t = 1; t <= T; t++) {
        printf("== forward, step t = %d\n", t);
        for (int q = 0; q < 4; q++) {
            snprintf(name, sizeof name, "a_%s", gate_name[q]);
            show(t, name, tr.a[t] + q * H, H);
        }
        for (int q = 0; q < 4; q++) show(t, gate_name[q], tr.act[t] + q * H, H);
        show(t, "c", tr.c[t], H);
        show(t, "tanh_c", tr.tc[t], H);
        show(t, "h", tr.h[t], H);
    }
    printf("L = %.6f\n", L);

    // ---- BPTT: dh, dc carry the gradient w.r.t. the state after step t (0 after the last step) ----
    double dh[H] = {0}, dc[H] = {0}, dx[T + 1][F] = {{0}};
    static cell grad; // dL/dW_ih, dL/dW_hh, dL/db, summed over the steps (static: zero)
    for (int t = T; t >= 1; t--) {
        printf("== BPTT, step t = %d\n", t);
        const double *i = tr.act[t], *f = tr.act[t] + H, *g = tr.act[t] + 2 * H, *o = tr.act[t] + 3 * H;
        const double *tc = tr.tc[t];
        double dht[H], dct[H], d_i[H], d_f[H], d_g[H], d_o[H], da[G];
        for (int j = 0; j < H; j++) {
            dht[j] = dh[j] + r[t][j];                           // ∂L/∂h_t: this step's loss + later steps
            dct[j] = dc[j] + dht[j] * o[j] * (1 - tc[j] * tc[j]); // ∂L/∂c_t: through h_t and through c_{t+1}
            d_o[j] = dht[j] * tc[j];                            // h = o ⊙ tanh c
            d_i[j] = dct[j] * g[j];                             // c = f ⊙ c_prev + i ⊙ g
            d_f[j] = dct[j] * tr.c[t - 1][j];
            d_g[j] = dct[j] * i[j];
            da[j] = d_i[j] * i[j] * (1 - i[j]);         // σ' = σ(1 − σ)
            da[H + j] = d_f[j] * f[j] * (1 - f[j]);
            da[2 * H + j] = d_g[j] * (1 - g[j] * g[j]); // tanh' = 1 − tanh²
            da[3 * H + j] = d_o[j] * o[j] * (1 - o[j]);
        }
        // a_t = W_ih x_t + W_hh h_{t-1} + b: every weight's gradient is da times what it multiplied
        for (int row = 0; row < G; row++) {
            for (int k = 0; k < F; k++) grad.W_ih[row][k] += da[row] * x[t][k];
            for (int k = 0; k < H; k++) grad.W_hh[row][k] += da[row] * tr.h[t - 1][k];
            grad.b[row] += da[row];
        }
        double dh_prev[H] = {0}, dc_prev[H];
        for (int k = 0; k < F; k++) // dx_t = W_ihᵀ da
            for (int row = 0; row < G; row++) dx[t][k] += w->W_ih[row][k] * da[row];
        for (int k = 0; k < H; k++) // δh_{t-1} = W_hhᵀ da
            for (int row = 0; row < G; row++) dh_prev[k] += w->W_hh[row][k] * da[row];
        for (int j = 0; j < H; j++) dc_prev[j] = dct[j] * f[j];

        show(t, "dh", dht, H);
        show(t, "dc", dct, H);
        show(t, "di", d_i, H);
        show(t, "df", d_f, H);
        show(t, "dg", d_g, H);
        show(t, "do", d_o, H);
        for (int q = 0; q < 4; q++) {
            snprintf(name, sizeof name, "da_%s", gate_name[q]);
            show(t, name, da + q * H, H);
        }
        show(t, "dx", dx[t], F);
        show(t, "dh_prev", dh_prev, H);
        show(t, "dc_prev", dc_prev, H);
        for (int j = 0; j < H; j++) dh[j] = dh_prev[j], dc[j] = dc_prev[j];
    }
    printf("== gradients summed over the %d steps\n", T);
    show_gates("dW_ih", &grad.W_ih[0][0], F);
    show_gates("dW_hh", &grad.W_hh[0][0], H);
    show_gates("db", grad.b, 1);

    // ---- the gradient check: central differences of L, in double, for every weight ----
    const double eps = 1e-5;
    printf("== gradient check: (L(w + eps) - L(w - eps)) / (2 eps) against BPTT, in double, eps = %g\n", eps);
    const cell_flat wf = {.c = *w}, gf = {.c = grad};
    const int shown[3] = {flat_index(1, H, 0), flat_index(0, 2 * H + 1, 1), flat_index(2, 3 * H + 2, 0)};
    double worst = 0;
    for (int k = 0; k < NP; k++) {
        const double num = central_difference(&wf, k, eps);
        worst = fmax(worst, fabs(num - gf.flat[k]));
        for (int s = 0; s < 3; s++)
            if (k == shown[s]) {
                weight_name(k, name, sizeof name);
                printf("dL/d%s: BPTT %.9f, central difference %.9f\n", name, gf.flat[k], num);
            }
    }
    printf("all %d weights: max |central difference - BPTT| < 1e-8: %s\n", NP, worst < 1e-8 ? "yes" : "NO");

    // ---- the same through the library: the fused op lp_lstm on a tape, L = sum(h_seq ⊙ R) ----
    float wih[G * F], whh[G * H], bf[G], xf[T * F], rf[T * H];
    float gwih[G * F] = {0}, gwhh[G * H] = {0}, gb[G] = {0}, gx[T * F] = {0};
    for (int k = 0; k < G * F; k++) wih[k] = (float)w->W_ih[k / F][k % F];
    for (int k = 0; k < G * H; k++) whh[k] = (float)w->W_hh[k / H][k % H];
    for (int k = 0; k < G; k++) bf[k] = (float)w->b[k];
    for (int k = 0; k < T * F; k++) xf[k] = (float)x[1 + k / F][k % F];
    for (int k = 0; k < T * H; k++) rf[k] = (float)r[1 + k / H][k % H];
    lp_tape tape;
    if (lp_tape_init(&tape, 1 << 20) != LP_OK) return fail();
    lp_tensor *tx = lp_tape_view(&tape, xf, gx, 3, (const int[]){1, T, F}); // one sequence: B = 1
    lp_tensor *tw_ih = lp_tape_view(&tape, wih, gwih, 2, (const int[]){G, F});
    lp_tensor *tw_hh = lp_tape_view(&tape, whh, gwhh, 2, (const int[]){G, H});
    lp_tensor *tb = lp_tape_view(&tape, bf, gb, 1, (const int[]){G});
    lp_tensor *rt = lp_tape_view(&tape, rf, NULL, 3, (const int[]){1, T, H}); // a constant: no grad
    lp_lstm_out y = lp_lstm(&tape, tx, tw_ih, tw_hh, tb, NULL, NULL, NULL, 0);
    lp_tensor *loss = lp_op_sum(&tape, lp_op_mul(&tape, y.h_seq, rt));
    if (lp_tape_backward(&tape, loss) != LP_OK) return fail();

    double hs[T * H], gxd[T * F];
    for (int k = 0; k < T * H; k++) hs[k] = tr.h[1 + k / H][k % H];
    for (int k = 0; k < T * F; k++) gxd[k] = dx[1 + k / F][k % F];
    const double diff[6] = {
        max_diff(hs, y.h_seq->data, T * H), fabs(L - (double)loss->data[0]),
        max_diff(&grad.W_ih[0][0], gwih, G * F), max_diff(&grad.W_hh[0][0], gwhh, G * H),
        max_diff(grad.b, gb, G),             max_diff(gxd, gx, T * F),
    };
    const char *what[6] = {"h", "L", "dW_ih", "dW_hh", "db", "dx"};
    worst = 0;
    printf("== the library: lp_lstm (layers/lstm.h) on a tape, lp_tape_backward, float32\n");
    for (int k = 0; k < 6; k++) {
        printf("max |hand - library| %-5s = %.1e\n", what[k], diff[k]);
        worst = fmax(worst, diff[k]);
    }
    // float32 carries ~7 digits: values of order 1 after a few dozen operations differ by ~1e-7
    const int ok = worst < 1e-5;
    printf("library %s the hand computation: max |difference| %.1e %s 1e-5\n", ok ? "matches" : "DIFFERS FROM",
           worst, ok ? "<" : ">=");
    lp_tape_free(&tape);
    return ok ? 0 : 1;
}
