/* prune_by_hand: the pruning method of this project, one step at a time, on a tiny trained LSTM layer.
 *
 * What it teaches: where the numbers of a pruning come from, with every one printed. A layer of H = 6
 * units reads sequences of 2 numbers and a dense head reads its final state h_T to answer two questions:
 * is the sum of the first inputs over the sequence positive, and of the second ones? Trained for a few
 * hundred steps, the layer is then pruned as prune/plan.c prunes every group (docs/METHOD.md, "Pruning"):
 *
 *   1. responses    the layer's hidden states h_t over a set of sequences, every step: X [N,H]
 *                   mean μ and covariance C = (X − 1μᵀ)ᵀ(X − 1μᵀ)/N        prune/stats.h  lp_stats_*
 *   2. rate         eigenvalues λ_1 ≥ … ≥ λ_H of C, energy E = Σλ; keep the smallest k with
 *                   Σ_{i≤k} λ_i ≥ τE                       prune/rates.h  lp_rates_eigenvalues, lp_rates_keep_at_tau
 *   3. which units  unit j as one vector u_j of its input and recurrent weights over the 4 gates,
 *                   score s_j = Σ_k ‖u_j − u_k‖ (close to the geometric median: best replaced by the
 *                   others); the H − k smallest go        prune/criteria.h  lp_criteria_unit_vectors, _score, _select
 *   4. surgery      masking zeroes each removed unit's footprint (its gate rows, its W_hh column, its
 *                   head column; prune/surgery.h lp_surgery_zero_unit); shrinking copies the kept rows and
 *                   columns into a layer of k units (done here by hand, as lp_surgery_shrink does for a
 *                   whole model): both give the same outputs, the shrunk layer is smaller and faster.
 *
 * Gate order i, f, g, o: unit j of gate q is row q·H + j of W_ih [4H,F], W_hh [4H,H] and b [4H]. Random
 * numbers come from core/rng.h with fixed seeds; a run prints the same on the same machine and BLAS
 * kernels. docs/TUTORIAL.md walks through the output; tests/examples_check.py recomputes the spectrum,
 * the keep count, the scores and the removed units with numpy from the printed numbers.
 *
 * Build and run, from the repository root after `make`:
 *     make examples && build/examples/prune_by_hand
 * or by hand:
 *     cc -std=c11 -O2 examples/prune_by_hand.c $(pkg-config --cflags --libs build/lstmprune.pc) -o prune_by_hand */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/ops.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/tape.h"
#include "layers/dense.h"
#include "layers/lstm.h"
#include "optim/optim.h"
#include "prune/criteria.h"
#include "prune/rates.h"
#include "prune/stats.h"
#include "prune/surgery.h"

enum { F = 2, H = 6, T = 10, C = 2, B = 32, STEPS = 300, N_SEQ = 256, D = 4 * (F + H), SHOWN = 4 };
static const float LR = 0.02f;
static const double TAU = 0.9; // the energy to keep (the default of `lstmprune prune`)
static const uint64_t SEED = 1;

static const char *const gate_name[4] = {"i", "f", "g", "o"};

/* One model: the LSTM layer (h units) and the dense head that reads its final state. */
typedef struct {
    lp_params ps;
    int h;
    lp_lstm_weights lstm;
    lp_tensor *out_w, *out_b; // [C,h], [C]
} net;

static int fail(void) {
    fprintf(stderr, "prune_by_hand: %s\n", lp_last_error());
    return 1;
}

static lp_status net_init(net *m, int h) {
    lp_params_init(&m->ps);
    m->h = h;
    if (lp_lstm_declare(&m->ps, "lstm", h, F) != 0 || lp_params_declare(&m->ps, "out.w", 2, (const int[]){C, h}) < 0 ||
        lp_params_declare(&m->ps, "out.b", 1, (const int[]){C}) < 0)
        return LP_ERR_NOMEM;
    LP_TRY(lp_params_finalize(&m->ps));
    m->lstm = lp_lstm_find(&m->ps, "lstm");
    m->out_w = lp_params_find(&m->ps, "out.w");
    m->out_b = lp_params_find(&m->ps, "out.b");
    return LP_OK;
}

/* n sequences x [n,T,F] uniform in [-1,1]; labels y [n,C]: y_c = 1 when Σ_t x_{t,c} > 0. */
static void make_data(lp_rng *r, float *x, float *y, int n) {
    for (int s = 0; s < n; s++) {
        double sum[C] = {0};
        for (int t = 0; t < T; t++)
            for (int k = 0; k < F; k++) sum[k] += x[(s * T + t) * F + k] = (float)(2 * lp_rng_uniform(r) - 1);
        for (int c = 0; c < C; c++) y[s * C + c] = sum[c] > 0;
    }
}

/* The model on n sequences: logits z [n,C] = h_T W_outᵀ + b_out. With y, returns the loss (mean over
 * sequences of the summed binary cross-entropy); else copies z and the responses h_seq [n,T,h] out. */
static lp_tensor *run(lp_tape *tp, const net *m, float *x, float *y, int n, float *z_out, float *h_out) {
    lp_tape_reset(tp);
    lp_tensor *tx = lp_tape_view(tp, x, NULL, 3, (const int[]){n, T, F});
    lp_lstm_out o = lp_lstm(tp, tx, m->lstm.w_ih, m->lstm.w_hh, m->lstm.b, NULL, NULL, NULL, 0);
    lp_tensor *z = lp_dense(tp, o.h_last, m->out_w, m->out_b); // [n,C]
    if (!z) return NULL;
    if (y) return lp_op_bce_logits(tp, z, lp_tape_view(tp, y, NULL, 2, (const int[]){n, C}));
    memcpy(z_out, z->data, (size_t)n * C * sizeof *z_out);
    memcpy(h_out, o.h_seq->data, (size_t)n * T * m->h * sizeof *h_out);
    return z;
}

/* STEPS steps of Adam on batches of B new sequences (a fresh optimizer), printing the batch loss. */
static lp_status train(net *m, lp_tape *tp, lp_rng *data) {
    static float x[B * T * F], y[B * C];
    lp_optim opt;
    const lp_optim_config oc = lp_optim_defaults(LP_OPTIM_ADAM);
    LP_TRY(lp_optim_init(&opt, m->ps.numel, &oc));
    lp_tape_set_grad(tp, 1);
    lp_status st = LP_OK;
    for (int step = 1; step <= STEPS && st == LP_OK; step++) {
        make_data(data, x, y, B);
        lp_tensor *loss = run(tp, m, x, y, B, NULL, NULL);
        lp_params_zero_grad(&m->ps);
        st = lp_tape_backward(tp, loss);
        if (st == LP_OK) st = lp_optim_step(&opt, m->ps.data, m->ps.grad, LR);
        if (st == LP_OK && (step == 1 || step % 100 == 0)) printf("step %3d  loss %.4f\n", step, loss->data[0]);
    }
    lp_optim_free(&opt);
    lp_tape_set_grad(tp, 0); // afterwards: inference only
    return st;
}

/* Fraction of the n·C answers right (logit > 0 means "yes"). */
static double accuracy(const float *z, const float *y, int n) {
    int right = 0;
    for (int k = 0; k < n * C; k++) right += (z[k] > 0) == (y[k] > 0.5f);
    return (double)right / (n * C);
}

/* Mean binary cross-entropy per sequence (summed over the C answers), in double. */
static double bce(const float *z, const float *y, int n) {
    double s = 0;
    for (int k = 0; k < n * C; k++) s += fmax(z[k], 0) - z[k] * y[k] + log1p(exp(-fabs(z[k])));
    return s / n;
}

/* One number: %.<digits>f without the "-0.000…" of a tiny negative value. */
static void num(const char *sep, double v, int digits) {
    printf("%s%.*f", sep, digits, fabs(v) < 0.5 * pow(10, -digits) ? 0.0 : v);
}

/* "name = [v v v]" */
static void show(const char *name, const double *v, int n, int digits) {
    printf("%s = [", name);
    for (int k = 0; k < n; k++) num(k ? " " : "", v[k], digits);
    printf("]\n");
}

static void show_f(const char *name, const float *v, int n) {
    printf("%s = [", name);
    for (int k = 0; k < n; k++) num(k ? " " : "", v[k], 6);
    printf("]\n");
}

/* A layer's weights, one line per row: "W_ih[q*h+j] (gate q, unit j)" as "<prefix>W_ih[ 7] f1 = [...]". */
static void show_layer(const char *prefix, const net *m) {
    char name[48];
    const int h = m->h;
    for (int row = 0; row < 4 * h; row++) {
        snprintf(name, sizeof name, "%sW_ih[%2d] %s%d", prefix, row, gate_name[row / h], row % h);
        show_f(name, m->lstm.w_ih->data + row * F, F);
    }
    for (int row = 0; row < 4 * h; row++) {
        snprintf(name, sizeof name, "%sW_hh[%2d] %s%d", prefix, row, gate_name[row / h], row % h);
        show_f(name, m->lstm.w_hh->data + row * h, h);
    }
    snprintf(name, sizeof name, "%sb", prefix);
    show_f(name, m->lstm.b->data, 4 * h);
    for (int c = 0; c < C; c++) {
        snprintf(name, sizeof name, "%sW_out[%d]", prefix, c);
        show_f(name, m->out_w->data + c * h, h);
    }
    snprintf(name, sizeof name, "%sb_out", prefix);
    show_f(name, m->out_b->data, C);
}

int main(void) {
    // ---- a tiny trained layer ----
    net m;
    if (net_init(&m, H) != LP_OK) return fail();
    lp_rng init, data, held;
    lp_rng_init(&init, SEED, LP_RNG_STREAM_INIT);
    lp_rng_init(&data, SEED, LP_RNG_STREAM_SYNTH);     // training batches
    lp_rng_init(&held, SEED + 1, LP_RNG_STREAM_SYNTH); // held-out sequences, never trained on
    const float bound = 1.0f / sqrtf((float)H);
    for (int k = 0; k < m.ps.count; k++) lp_tensor_fill_uniform(&m.ps.items[k].t, bound, &init);
    lp_tape tape;
    if (lp_tape_init(&tape, 1 << 22) != LP_OK) return fail();
    printf("== training: LSTM %d -> %d units -> dense %d, %d steps of Adam (lr %g) on batches of %d new sequences "
           "of %d steps\n", F, H, C, STEPS, LR, B, T);
    if (train(&m, &tape, &data) != LP_OK) return fail();
    static float x[N_SEQ * T * F], y[N_SEQ * C];
    make_data(&held, x, y, N_SEQ);
    static float z0[N_SEQ * C], h0[N_SEQ * T * H];
    if (!run(&tape, &m, x, NULL, N_SEQ, z0, h0)) return fail();
    printf("held-out %d sequences: loss %.4f, accuracy %.4f\n", N_SEQ, bce(z0, y, N_SEQ), accuracy(z0, y, N_SEQ));
    printf("== the trained layer (row q*%d + j of W_ih and W_hh, entry q*%d + j of b: gate q of unit j; W_out[c]: "
           "class c)\n", H, H);
    show_layer("", &m);

    // ---- 1. responses: every h_t of every held-out sequence, their mean and covariance ----
    lp_stats st;
    static double mean[H], cov[H * H];
    if (lp_stats_init(&st, H, 0) != LP_OK || lp_stats_add_seq(&st, h0, N_SEQ, T, H, NULL, LP_STATS_STEPS_ALL) != LP_OK ||
        lp_stats_finish(&st, mean, cov) != LP_OK)
        return fail();
    printf("== 1. responses: N = %lld hidden states (%d sequences x %d steps) of %d units\n",
           (long long)lp_stats_count(&st), N_SEQ, T, H);
    lp_stats_free(&st);
    show("mean", mean, H, 8);
    char name[48];
    for (int j = 0; j < H; j++) {
        snprintf(name, sizeof name, "cov[%d]", j);
        show(name, cov + j * H, H, 8);
    }

    // ---- 2. the rate: spectrum, energy, keep count ----
    double eig[H], frac[H], energy = 0, cum = 0;
    int n_clamped;
    if (lp_rates_eigenvalues(cov, H, eig, &n_clamped) != LP_OK) return fail();
    for (int j = 0; j < H; j++) energy += eig[j];
    for (int j = 0; j < H; j++) frac[j] = (cum += eig[j]) / energy;
    const int k = lp_rates_keep_at_tau(eig, H, TAU, LP_KEEP_COUNT_STANDARD);
    printf("== 2. rate: eigenvalues of cov (descending; %d negative round-off values set to 0), energy E = sum = %.8f\n",
           n_clamped, energy);
    show("eig", eig, H, 8);
    show("energy fraction C(k)/E, k = 1..6", frac, H, 6);
    printf("tau = %.2f\n", TAU);
    printf("keep k = %d of %d units: the smallest k with C(k)/E >= tau (rate 1 - k/H = %.4f)\n", k, H, 1.0 - (double)k / H);

    // ---- 3. which units: unit vectors, distance sums, selection ----
    static float u[H * D];
    double score[H], dist[H * H];
    int order[H], kept[H];
    lp_criteria_opts co;
    lp_criteria_opts_default(&co); // gm: Σ_k ‖u_j − u_k‖
    if (lp_criteria_unit_vectors(m.lstm.w_ih->data, m.lstm.w_hh->data, NULL, H, F, u) != LP_OK ||
        lp_criteria_score(&co, u, H, D, score) != LP_OK || lp_criteria_order(score, H, order) != LP_OK ||
        lp_criteria_select(score, H, k, kept) != LP_OK)
        return fail();
    for (int j = 0; j < H; j++) // the distances the score sums (here in full, for reading)
        for (int l = 0; l < H; l++) {
            double s = 0;
            for (int c = 0; c < D; c++) s += ((double)u[j * D + c] - u[l * D + c]) * ((double)u[j * D + c] - u[l * D + c]);
            dist[j * H + l] = sqrt(s);
        }
    printf("== 3. which units: u_j = [W_ih rows j, %d+j, %d+j, %d+j | W_hh rows j, %d+j, %d+j, %d+j], %d numbers\n", H,
           2 * H, 3 * H, H, 2 * H, 3 * H, D);
    for (int j = 0; j < H; j++) {
        snprintf(name, sizeof name, "dist[%d]", j);
        show(name, dist + j * H, H, 6);
    }
    show("score (sum of distances)", score, H, 6);
    printf("order (smallest score first) = [");
    for (int j = 0; j < H; j++) printf(j ? " %d" : "%d", order[j]);
    printf("]\nremoved (the %d smallest) = [", H - k);
    for (int j = 0; j < H - k; j++) printf(j ? " %d" : "%d", order[j]);
    printf("]\nkept = [");
    for (int j = 0; j < k; j++) printf(j ? " %d" : "%d", kept[j]);
    printf("]\n");

    // ---- 4. surgery: a masked copy (library) and a shrunk layer of k units (the copy map by hand) ----
    net mk, sm;
    if (net_init(&mk, H) != LP_OK || net_init(&sm, k) != LP_OK) return fail();
    memcpy(mk.ps.data, m.ps.data, m.ps.numel * sizeof *m.ps.data);
    lp_unit_group gr = {.name = "lstm", .units = H, .input_dim = F, .w_ih = mk.lstm.w_ih, .w_hh = mk.lstm.w_hh,
                        .b = mk.lstm.b, .consumer = mk.out_w, .consumer_name = "out.w", .consumer_col0 = 0};
    for (int j = 0; j < H - k; j++) lp_surgery_zero_unit(&gr, order[j]);
    for (int q = 0; q < 4; q++)
        for (int a = 0; a < k; a++) { // new unit a is old unit kept[a]: row q·k + a ← row q·H + kept[a]
            const int to = q * k + a, from = q * H + kept[a];
            memcpy(sm.lstm.w_ih->data + to * F, m.lstm.w_ih->data + from * F, F * sizeof(float));
            for (int l = 0; l < k; l++) sm.lstm.w_hh->data[to * k + l] = m.lstm.w_hh->data[from * H + kept[l]];
            sm.lstm.b->data[to] = m.lstm.b->data[from];
        }
    for (int c = 0; c < C; c++)
        for (int a = 0; a < k; a++) sm.out_w->data[c * k + a] = m.out_w->data[c * H + kept[a]];
    memcpy(sm.out_b->data, m.out_b->data, C * sizeof(float));
    printf("== 4. surgery: parameters %zu -> %zu (4h(F+h+1) + C(h+1) with h = %d -> %d); the shrunk layer\n",
           m.ps.numel, sm.ps.numel, H, k);
    show_layer("small ", &sm);

    static float zm[N_SEQ * C], hm[N_SEQ * T * H], zs[N_SEQ * C], hs[N_SEQ * T * H];
    if (!run(&tape, &mk, x, NULL, N_SEQ, zm, hm) || !run(&tape, &sm, x, NULL, N_SEQ, zs, hs)) return fail();
    double d_z = 0, d_h = 0, gone = 0, moved = 0;
    for (int s = 0; s < N_SEQ * C; s++) d_z = fmax(d_z, fabs(zm[s] - zs[s])), moved = fmax(moved, fabs(z0[s] - zs[s]));
    for (int r = 0; r < N_SEQ * T; r++) {
        for (int a = 0; a < k; a++) d_h = fmax(d_h, fabs(hm[r * H + kept[a]] - hs[r * k + a]));
        for (int j = 0; j < H - k; j++) gone = fmax(gone, fabs(hm[r * H + order[j]]));
    }
    printf("== the outputs: unpruned, masked (removed units zeroed in place), shrunk (%d units)\n", k);
    for (int s = 0; s < SHOWN; s++)
        printf("sequence %d  labels [%.0f %.0f]  z unpruned [%.6f %.6f]  masked [%.6f %.6f]  shrunk [%.6f %.6f]\n", s,
               y[s * C], y[s * C + 1], z0[s * C], z0[s * C + 1], zm[s * C], zm[s * C + 1], zs[s * C], zs[s * C + 1]);
    printf("max |h masked| of the removed units, every step: %.1e (exactly 0: a = 0, so c = 0.5 c_prev = 0, h = 0)\n", gone);
    printf("max |h masked - h shrunk| of the kept units, every step: %.1e\n", d_h);
    printf("max |z masked - z shrunk|: %.1e (the same sums without the exact zeros; float rounding only)\n", d_z);
    printf("max |z unpruned - z shrunk|: %.4f (what the removal changed)\n", moved);
    printf("held-out loss %.4f -> %.4f, accuracy %.4f -> %.4f (no fine-tuning)\n", bce(z0, y, N_SEQ), bce(zs, y, N_SEQ),
           accuracy(z0, y, N_SEQ), accuracy(zs, y, N_SEQ));
    const int ok = gone == 0 && d_h < 1e-5 && d_z < 1e-5;
    printf("removal is exact: %s\n", ok ? "yes" : "NO");

    // ---- 5. fine-tuning: the shrunk model trained on (new) training batches, as the pipeline does ----
    printf("== 5. fine-tuning the shrunk model: %d steps of Adam (lr %g), the same kind of batches\n", STEPS, LR);
    if (train(&sm, &tape, &data) != LP_OK || !run(&tape, &sm, x, NULL, N_SEQ, zs, hs)) return fail();
    printf("held-out loss %.4f, accuracy %.4f with %d units (%.4f, %.4f with %d)\n", bce(zs, y, N_SEQ),
           accuracy(zs, y, N_SEQ), k, bce(z0, y, N_SEQ), accuracy(z0, y, N_SEQ), H);

    lp_tape_free(&tape);
    lp_params_free(&m.ps);
    lp_params_free(&mk.ps);
    lp_params_free(&sm.ps);
    return ok ? 0 : 1;
}
