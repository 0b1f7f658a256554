/* bench_lstm: speed of one training step (forward + backward) of one fused LSTM layer at the paper's
 * frame-level sizes, compared with the machine's plain cblas_sgemm rate.
 *
 *   B=64 sequences, T=300 frames, F=1152 features (rgb+audio), H=512 units (one BiLSTM direction)
 *
 * GEMM flops counted (the elementwise gate work is not counted, it is ~1% of the flops):
 *   forward  2·B·T·4H·(F+H)   (input projection + recurrent product)
 *   backward twice that       (dX and dW_ih; dh_{t-1} and dW_hh)
 * The reference rate is cblas_sgemm on a 2048³ product. Both use OpenBLAS's default thread count (all
 * cores), so the ratio says how close the layer gets to the BLAS ceiling. Options: --steps N (3),
 * --B --T --F --H to change the sizes. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/blas_env.h"
#include "core/rng.h"
#include "core/tape.h"
#include "layers/lstm.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fill(float *x, size_t n, float scale, lp_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = scale * (float)(2.0 * lp_rng_uniform(r) - 1.0);
}

static double sgemm_rate(int n, int reps) {
    float *a = lp_aligned((size_t)n * n, sizeof(float)), *b = lp_aligned((size_t)n * n, sizeof(float));
    float *c = lp_aligned((size_t)n * n, sizeof(float));
    if (!a || !b || !c) return 0;
    lp_rng r;
    lp_rng_init(&r, 1, LP_RNG_STREAM_TEST);
    fill(a, (size_t)n * n, 1, &r);
    fill(b, (size_t)n * n, 1, &r);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); /* warm-up */
    double best = 1e30;
    for (int k = 0; k < reps; k++) {
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    lp_free(a), lp_free(b), lp_free(c);
    return 2.0 * n * (double)n * n / best / 1e9;
}

int main(int argc, char **argv) {
    lp_blas_env_apply(argv); /* as lstmprune does (core/blas_env.h) */
    int B = 64, T = 300, F = 1152, H = 512, steps = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--B")) B = v;
        else if (!strcmp(argv[i], "--T")) T = v;
        else if (!strcmp(argv[i], "--F")) F = v;
        else if (!strcmp(argv[i], "--H")) H = v;
        else if (!strcmp(argv[i], "--steps")) steps = v;
        else {
            fprintf(stderr, "usage: bench_lstm [--B n] [--T n] [--F n] [--H n] [--steps n]\n");
            return 2;
        }
    }
    if (B < 1 || T < 1 || F < 1 || H < 1 || steps < 1) {
        fprintf(stderr, "bench_lstm: sizes and steps must be positive\n");
        return 2;
    }
    printf("bench_lstm: B=%d T=%d F=%d H=%d, OpenBLAS threads=%d (%s)\n", B, T, F, H,
           openblas_get_num_threads(), openblas_get_config());

    size_t nx = (size_t)B * T * F, nwi = (size_t)4 * H * F, nwh = (size_t)4 * H * H;
    float *x = lp_aligned(nx, sizeof(float)), *gx = lp_aligned(nx, sizeof(float));
    float *w = lp_aligned(nwi + nwh + 4 * (size_t)H, sizeof(float));
    float *gw = lp_aligned(nwi + nwh + 4 * (size_t)H, sizeof(float));
    if (!x || !gx || !w || !gw) {
        fprintf(stderr, "bench_lstm: out of memory\n");
        return 1;
    }
    lp_rng r;
    lp_rng_init(&r, 7, LP_RNG_STREAM_TEST);
    fill(x, nx, 1.0f, &r);
    fill(w, nwi + nwh + 4 * (size_t)H, 1.0f / 22.6f, &r); /* ±1/sqrt(H), as PyTorch initialises */
    float *dseq = lp_aligned((size_t)B * T * H, sizeof(float));
    if (!dseq) return 1;
    fill(dseq, (size_t)B * T * H, 1.0f, &r);

    lp_tape tp;
    if (lp_tape_init(&tp, (size_t)64 << 20) != LP_OK) return 1;
    double fwd_best = 1e30, bwd_best = 1e30, step_best = 1e30;
    for (int s = 0; s <= steps; s++) { /* step 0 warms up (arena growth, page faults) */
        lp_tape_reset(&tp);
        double t0 = now();
        lp_tensor *tx = lp_tape_view(&tp, x, gx, 3, (int[]){B, T, F});
        lp_tensor *twi = lp_tape_view(&tp, w, gw, 2, (int[]){4 * H, F});
        lp_tensor *twh = lp_tape_view(&tp, w + nwi, gw + nwi, 2, (int[]){4 * H, H});
        lp_tensor *tb = lp_tape_view(&tp, w + nwi + nwh, gw + nwi + nwh, 1, (int[]){4 * H});
        lp_lstm_out o = lp_lstm(&tp, tx, twi, twh, tb, NULL, NULL, NULL, 0);
        if (!o.h_seq) {
            fprintf(stderr, "bench_lstm: %s\n", lp_last_error());
            return 1;
        }
        double t1 = now();
        memcpy(o.h_seq->grad, dseq, (size_t)B * T * H * sizeof(float)); /* loss = sum(h_seq * dseq) */
        lp_tensor *seed = lp_tape_tensor(&tp, 0, NULL, 1);
        if (!seed || lp_tape_backward(&tp, seed) != LP_OK) return 1;
        double t2 = now();
        if (s == 0) continue;
        if (t1 - t0 < fwd_best) fwd_best = t1 - t0;
        if (t2 - t1 < bwd_best) bwd_best = t2 - t1;
        if (t2 - t0 < step_best) step_best = t2 - t0;
    }
    double fflops = 2.0 * B * T * 4.0 * H * (F + H);
    double step_gf = 3.0 * fflops / step_best / 1e9;
    printf("lstm step (best of %d): forward %.3f s (%.1f GFLOP/s), backward %.3f s (%.1f GFLOP/s)\n", steps,
           fwd_best, fflops / fwd_best / 1e9, bwd_best, 2 * fflops / bwd_best / 1e9);
    printf("lstm step: %.3f s, %.0f frames/s, %.1f GFLOP/s (%.1f GFLOP counted), arena high water %.0f MB\n",
           step_best, (double)B * T / step_best, step_gf, 3.0 * fflops / 1e9, (double)tp.arena.high_water / 1e6);
    double peak = sgemm_rate(2048, 3);
    printf("cblas_sgemm 2048^3 (best of 3): %.1f GFLOP/s\n", peak);
    printf("ratio lstm step / sgemm: %.2f (target >= 0.50)\n", peak > 0 ? step_gf / peak : 0.0);
    lp_tape_free(&tp);
    lp_free(x), lp_free(gx), lp_free(w), lp_free(gw), lp_free(dseq);
    return 0;
}
