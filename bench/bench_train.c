/* bench_train: speed and memory of a whole training step of the paper model, the figures that
 * bench/torch_ref.py measures for PyTorch on the same shapes, so that `make bench` can print them side by
 * side (bench/table.py joins the two).
 *
 *   model: BiLSTM (H/2 per direction) → LSTM (H, last state) → dense C; sigmoid BCE; Adam lr 2e-4
 *   shapes: small  H=256,  B=32,  T=100        big  H=1024, B=160, T=300   (F=1152, C=3862 for both)
 *
 * Each shape runs in a forked child process, so ru_maxrss (peak RSS) is that shape's own, and does:
 *   1. sgemm: the machine's cblas_sgemm rate on a 2048³ product (best of 3), in this run;
 *   2. train, random data in memory (as torch_ref.py): warm-up step(s), then `steps` timed steps, each
 *      the trainer's step (train/trainer.c): forward with loss, zero grads, backward, gradient norm,
 *      Adam. Reported: best ms/step and B·T/step frames/s, the forward/backward/optimizer split, the
 *      GEMM GFLOP of a step (counted below) over the step time, and that rate as a fraction of sgemm;
 *   3. inference latency (model/evaluate.h lp_model_latency: no-grad forward, median after two warm-ups)
 *      at batch 1 and batch 160, T frames; then peak RSS (getrusage ru_maxrss);
 *   4. train with the data pipeline on: synthetic YouTube-8M shards (data/synth, T frames per video)
 *      in a temporary directory, read by data/batcher with its prefetch thread (prefetch 2, the
 *      trainer's defaults otherwise). The time lp_batcher_next() blocks is the data wait; its share of
 *      the wall time of the steps after the first (the first batch fills the shuffle buffer: start-up,
 *      reported apart) is the figure with the < 2% target.
 *
 * GEMM flops counted per step (2 per multiply-add), for each LSTM layer with input width Fin and H units
 * over the B·T rows: forward 2·BT·4H·(Fin+H); backward dW_ih 2·BT·4H·Fin, dW_hh and dh_{t-1} 2·BT·4H·H
 * each, and dX 2·BT·4H·Fin only for layers whose input needs a gradient (not the BiLSTM: the batch has
 * none, and neither PyTorch nor we compute it); dense: 3 × 2·B·C·H. The gate nonlinearities, the
 * cell update and Adam are not counted (they are O(BT·H) against O(BT·H·(F+H))).
 *
 * Threads: OpenBLAS uses --threads (default: OPENBLAS_NUM_THREADS, else all cores); nothing else runs
 * compute threads, except the batcher's prefetch thread in step 4 (it decodes while the GEMMs run).
 *
 * Output: human-readable lines, and per shape one `result: side=ours shape=... key=value ...` line.
 *
 *   bench_train [--shapes small,big] [--threads N] [--steps N] [--data-steps N] [--no-data] [--train-only]
 *
 * --train-only skips steps 3 and 4 (for profiling the training step); --H, --B, --T change the sizes of
 * the named shapes. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/gemm.h"
#include "core/blas_env.h"
#include "core/kv.h"
#include "core/rng.h"
#include "core/tape.h"
#include "data/batcher.h"
#include "data/synth.h"
#include "model/evaluate.h"
#include "model/model.h"
#include "optim/optim.h"

enum { F_IN = 1152, CLASSES = 3862 };

typedef struct {
    const char *name;
    int H, B, T;
    int warmup, steps;  /* training steps on random data */
    int reps1, reps160; /* inference repetitions at batch 1 / 160 (after lp_model_latency's two warm-ups) */
    int data_steps;     /* steps with the pipeline, after the first batch */
} shape;

static const shape SHAPES[] = {
    {"small", 256, 32, 100, 1, 5, 50, 3, 20},
    {"big", 1024, 160, 300, 1, 2, 10, 1, 1},
};
enum { N_SHAPES = sizeof SHAPES / sizeof SHAPES[0] };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static void fill(float *x, size_t n, float lo, float hi, lp_rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)lp_rng_uniform(r);
}

static double sgemm_rate(int n, int reps) {
    float *a = lp_aligned((size_t)n * n, sizeof(float)), *b = lp_aligned((size_t)n * n, sizeof(float));
    float *c = lp_aligned((size_t)n * n, sizeof(float));
    double best = 1e30;
    if (a && b && c) {
        lp_rng r;
        lp_rng_init(&r, 1, LP_RNG_STREAM_TEST);
        fill(a, (size_t)n * n, -1, 1, &r);
        fill(b, (size_t)n * n, -1, 1, &r);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n); /* warm-up */
        for (int k = 0; k < reps; k++) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
    }
    lp_free(a), lp_free(b), lp_free(c);
    return best < 1e30 ? 2.0 * n * (double)n * n / best / 1e9 : 0;
}

/* The bf16 product rate on an n³ product (lp_gemm in bf16: oneDNN, B prepared once (converted and laid
 * out in oneDNN's blocked format, as W_hh is), A converted at each call as
 * every activation is), best of reps. */
static double bf16_rate(int n, int reps) {
    float *a = lp_aligned((size_t)n * n, sizeof(float)), *b = lp_aligned((size_t)n * n, sizeof(float));
    float *c = lp_aligned((size_t)n * n, sizeof(float));
    double best = 1e30;
    lp_gemm_w w = {0};
    lp_rng r;
    lp_rng_init(&r, 1, LP_RNG_STREAM_TEST);
    if (a && b) fill(a, (size_t)n * n, -1, 1, &r), fill(b, (size_t)n * n, -1, 1, &r);
    if (a && b && c && lp_gemm_w_init(&w, b, n, n, 0) == LP_OK) {
        lp_gemm_pw(0, 0, n, n, n, 1, a, n, &w, 0, c, n); /* warm-up (creates the primitive) */
        for (int k = 0; k < reps; k++) {
            double t0 = now();
            lp_gemm_pw(0, 0, n, n, n, 1, a, n, &w, 0, c, n);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
    }
    lp_gemm_w_free(&w);
    lp_free(a), lp_free(b), lp_free(c);
    return best < 1e30 ? 2.0 * n * (double)n * n / best / 1e9 : 0;
}

/* GEMM flops of one training step, as described at the top. */
static double step_gemm_flops(const lp_paper_config *c, int B, int T) {
    const double BT = (double)B * T;
    double fl = 0;
    for (int g = 0; g < c->n_groups; g++) {
        const double H = c->units[g];
        const double Fin = g <= LP_PAPER_GROUP_BW ? c->input_dim
                           : g == 2 ? (double)c->units[LP_PAPER_GROUP_FW] + c->units[LP_PAPER_GROUP_BW]
                                    : c->units[g - 1];
        const int input_grad = g >= 2;
        fl += 2 * BT * 4 * H * (Fin + H);                      /* forward */
        fl += 2 * BT * 4 * H * (Fin + 2 * H + (input_grad ? Fin : 0)); /* backward */
    }
    fl += 3 * 2.0 * B * c->classes * c->units[c->n_groups - 1];
    return fl;
}

typedef struct {
    double fwd, bwd, opt; /* seconds */
} step_times;

/* One training step exactly as train/trainer.c's train_step does it (without the hooks and the lr
 * schedule: a constant lr). */
static lp_status train_step(lp_model *m, lp_tape *tp, lp_optim *opt, float *x, const int *lengths, float *y, int B,
                            int T, step_times *st) {
    double t0 = now();
    lp_tape_reset(tp);
    lp_tensor *xt = lp_tape_view(tp, x, NULL, 3, (int[]){B, T, m->input_dim});
    lp_tensor *yt = lp_tape_view(tp, y, NULL, 2, (int[]){B, m->classes});
    if (!xt || !yt) return LP_ERR_NOMEM;
    lp_model_out out;
    lp_gemm_hold(m->params->data, m->params->numel); /* bf16: the weights converted once for the step */
    lp_status s = lp_model_forward(m, tp, xt, lengths, yt, NULL, &out);
    double t1 = now();
    lp_params_zero_grad(m->params);
    if (s == LP_OK) s = lp_tape_backward(tp, out.loss);
    lp_gemm_release(m->params->data);
    LP_TRY(s);
    double t2 = now(), norm;
    LP_TRY(lp_optim_clip_grad_norm(m->params->grad, m->params->numel, 0.0f, &norm));
    LP_TRY(lp_optim_step(opt, m->params->data, m->params->grad, 2e-4f));
    double t3 = now();
    st->fwd = t1 - t0, st->bwd = t2 - t1, st->opt = t3 - t2;
    return LP_OK;
}

static void die(const char *what) {
    fprintf(stderr, "bench_train: %s: %s\n", what, lp_last_error());
    exit(1);
}

typedef struct {
    double step_ms, wait_frac, first_ms, synth_s;
    int steps;
} data_result;

/* Step 4: training fed by the real pipeline on synthetic shards. */
static void run_data(const shape *s, lp_model *m, lp_optim *opt, int data_steps, data_result *r) {
    char dir[] = "/tmp/lp_bench_train_XXXXXX";
    if (!mkdtemp(dir)) die("mkdtemp");
    lp_synth_config sc;
    lp_synth_config_default(&sc, CLASSES, 1);
    sc.frames_min = sc.frames_max = s->T; /* full-length videos: the same work as the random batches */
    lp_synth_write_opts o;
    lp_synth_write_opts_default(&o);
    o.out_dir = dir;
    o.videos = (uint64_t)s->B * (uint64_t)(data_steps + 1);
    o.split[0] = 1, o.split[1] = o.split[2] = 0;
    o.shards = 4;
    double t0 = now();
    if (lp_synth_write(&sc, &o) != LP_OK) die("synth");
    r->synth_s = now() - t0;

    char pat[256];
    snprintf(pat, sizeof pat, "%s/train*.tfrecord", dir);
    const char *pats[] = {pat};
    lp_batcher_config bc;
    lp_batcher_config_default(&bc);
    bc.patterns = pats, bc.n_patterns = 1;
    bc.yt8m.classes = CLASSES;
    bc.batch_size = s->B;
    bc.max_frames = s->T;
    bc.fixed_frames = 1;
    bc.epochs = 1;
    bc.prefetch = 2; /* the trainer's default (model/runcfg.c) */
    lp_batcher *b;
    lp_tape tp;
    if (lp_batcher_new(&b, &bc) != LP_OK) die("batcher");
    if (lp_tape_init(&tp, (size_t)64 << 20) != LP_OK) die("tape");
    double wait = 0, total = 0, step_sum = 0;
    int n = 0;
    for (int k = 0;; k++) {
        const lp_batch *bt;
        double w0 = now();
        lp_status st = lp_batcher_next(b, &bt);
        double w1 = now();
        if (st == LP_ERR_EOF) break;
        if (st != LP_OK) die("batcher next");
        step_times tt;
        if (train_step(m, &tp, opt, bt->x, bt->lengths, bt->labels, bt->B, bt->T, &tt) != LP_OK) die("train step");
        double w2 = now();
        if (k == 0) { /* start-up: the shuffle buffer fills before the first batch */
            r->first_ms = 1e3 * (w1 - w0);
            continue;
        }
        wait += w1 - w0;
        total += w2 - w0;
        step_sum += w2 - w1;
        n++;
    }
    r->steps = n;
    r->wait_frac = total > 0 ? wait / total : 0;
    r->step_ms = n ? 1e3 * step_sum / n : 0;
    lp_tape_free(&tp);
    lp_batcher_free(b);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_train: could not remove %s\n", dir);
}

static int run_shape(const shape *s0, lp_precision prec, int threads, int steps, int data_steps, int train_only, int oH,
                     int oB, int oT) {
    shape sh = *s0, *s = &sh; /* --H/--B/--T override the named shape's sizes (profiling) */
    if (oH > 0) sh.H = oH;
    if (oB > 0) sh.B = oB;
    if (oT > 0) sh.T = oT;
    openblas_set_num_threads(threads);
    const int B = s->B, T = s->T;
    double sg = sgemm_rate(2048, 3);
    if (lp_precision_set(prec) != LP_OK) die("precision");
    double peak = prec == LP_PRECISION_BF16 ? bf16_rate(2048, 3) : sg; /* the rate of the step's own products */

    lp_kv kv;
    lp_kv_init(&kv);
    lp_model m;
    if (lp_model_default_kv(&kv, LP_MODEL_PAPER, F_IN, s->H, 1, CLASSES, 0, 0.0f) != LP_OK ||
        lp_model_init_kv(&m, &kv, 1) != LP_OK)
        die("model");
    lp_kv_free(&kv);
    lp_optim opt;
    lp_optim_config oc = lp_optim_defaults(LP_OPTIM_ADAM);
    if (lp_optim_init(&opt, m.params->numel, &oc) != LP_OK) die("optim");

    /* random data as torch_ref.py: x uniform in [-0.1, 0.1], ~0.1% positive labels */
    size_t nx = (size_t)B * T * F_IN, ny = (size_t)B * CLASSES;
    float *x = lp_aligned(nx, sizeof(float)), *y = lp_aligned(ny, sizeof(float));
    if (!x || !y) die("data");
    lp_rng r;
    lp_rng_init(&r, 3, LP_RNG_STREAM_TEST);
    fill(x, nx, -0.1f, 0.1f, &r);
    for (size_t i = 0; i < ny; i++) y[i] = lp_rng_uniform(&r) < 0.001 ? 1.0f : 0.0f;

    lp_tape tp;
    if (lp_tape_init(&tp, (size_t)64 << 20) != LP_OK) die("tape");
    step_times best = {0, 0, 0};
    double best_step = 1e30;
    for (int k = -s->warmup; k < steps; k++) {
        step_times tt;
        if (train_step(&m, &tp, &opt, x, NULL, y, B, T, &tt) != LP_OK) die("train step");
        double d = tt.fwd + tt.bwd + tt.opt;
        if (k >= 0 && d < best_step) best_step = d, best = tt;
    }
    const double arena_mb = (double)tp.arena.high_water / 1e6;
    lp_tape_free(&tp);
    lp_free(x);
    lp_free(y);

    double lat1 = 0, lat160 = 0;
    if (train_only) data_steps = 0;
    else if (lp_model_latency(&m, 1, T, s->reps1, &lat1) != LP_OK || lp_model_latency(&m, 160, T, s->reps160, &lat160) != LP_OK)
        die("latency");
    const double rss = peak_rss_mb();

    const double gflop = step_gemm_flops(&m.paper.cfg, B, T) / 1e9, gflops = gflop / best_step;
    printf("%s %s: H=%d B=%d T=%d F=%d C=%d, %zu parameters, OpenBLAS threads %d\n", s->name, lp_precision_name(prec),
           s->H, B, T, F_IN, CLASSES, m.params->numel, threads);
    printf("  sgemm 2048^3            %8.1f GFLOP/s\n", sg);
    if (prec == LP_PRECISION_BF16) printf("  bf16 matmul 2048^3      %8.1f GFLOP/s (oneDNN)\n", peak);
    printf("  train step (best of %d) %8.1f ms = forward %.1f + backward %.1f + norm/Adam %.1f; %.0f frames/s\n", steps,
           1e3 * best_step, 1e3 * best.fwd, 1e3 * best.bwd, 1e3 * best.opt, B * T / best_step);
    printf("  GEMM work               %8.1f GFLOP/step, %.1f GFLOP/s = %.0f%% of sgemm, %.0f%% of its precision's peak\n",
           gflop, gflops, 100 * gflops / sg, 100 * gflops / peak);
    printf("  inference latency       %8.2f ms at batch 1, %.1f ms at batch 160 (T=%d)\n", lat1, lat160, T);
    printf("  peak RSS                %8.0f MB (step arena high water %.0f MB, parameters+grads+Adam %.0f MB)\n", rss,
           arena_mb, 4.0 * 4 * (double)m.params->numel / 1e6);
    fflush(stdout);

    data_result dr = {0, 0, 0, 0, 0};
    if (data_steps > 0) {
        run_data(s, &m, &opt, data_steps, &dr);
        printf("  with the data pipeline  %8.1f ms/step over %d steps, waiting for data %.2f%% of the time "
               "(first batch %.0f ms; shards written in %.1f s)\n",
               dr.step_ms, dr.steps, 100 * dr.wait_frac, dr.first_ms, dr.synth_s);
    }
    printf("result: side=ours shape=%s precision=%s H=%d B=%d T=%d F=%d C=%d threads=%d steps=%d step_ms=%.1f "
           "frames_per_s=%.0f rss_mb=%.0f infer_b1_ms=%.2f infer_b160_ms=%.1f fwd_ms=%.1f bwd_ms=%.1f opt_ms=%.1f "
           "gemm_gflop=%.2f gflops=%.1f sgemm_gflops=%.1f sgemm_frac=%.3f peak_gflops=%.1f arena_mb=%.0f",
           s->name, lp_precision_name(prec), s->H, B, T, F_IN, CLASSES, threads, steps, 1e3 * best_step,
           B * T / best_step, rss, lat1, lat160, 1e3 * best.fwd, 1e3 * best.bwd, 1e3 * best.opt, gflop, gflops, sg,
           gflops / sg, peak, arena_mb);
    if (data_steps > 0)
        printf(" data_steps=%d data_step_ms=%.1f data_wait_frac=%.4f data_first_ms=%.0f", dr.steps, dr.step_ms,
               dr.wait_frac, dr.first_ms);
    printf("\n");
    fflush(stdout);
    lp_optim_free(&opt);
    lp_model_free(&m);
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: bench_train [--shapes small,big] [--precision fp32,bf16] [--threads N] [--steps N]\n"
                    "                   [--data-steps N] [--no-data] [--train-only] [--H n] [--B n] [--T n]\n");
    exit(2);
}

int main(int argc, char **argv) {
    lp_blas_env_apply(argv); /* as lstmprune does (core/blas_env.h) */
    char shapes[64] = "small,big", precs[64] = "";
    int threads = openblas_get_num_threads(), steps = 0, data_steps = -1, train_only = 0, oH = 0, oB = 0, oT = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-data") || !strcmp(a, "--train-only")) {
            data_steps = 0;
            train_only |= !strcmp(a, "--train-only");
            continue;
        }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--shapes")) snprintf(shapes, sizeof shapes, "%s", v);
        else if (!strcmp(a, "--precision")) snprintf(precs, sizeof precs, "%s", v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atoi(v);
        else if (!strcmp(a, "--data-steps")) data_steps = atoi(v);
        else if (!strcmp(a, "--H")) oH = atoi(v);
        else if (!strcmp(a, "--B")) oB = atoi(v);
        else if (!strcmp(a, "--T")) oT = atoi(v);
        else usage();
    }
    if (threads < 1 || steps < 0) usage();
    printf("bench_train: paper model training step, %d OpenBLAS threads (%s)\n", threads, openblas_get_config());
    fflush(stdout);
    if (!precs[0]) { /* both where bf16 runs */
        const int bf16 = lp_precision_bf16_available() == LP_OK;
        if (!bf16) printf("bench_train: fp32 only (%s)\n", lp_last_error());
        snprintf(precs, sizeof precs, "%s", bf16 ? "fp32,bf16" : "fp32");
    }
    lp_precision plist[2];
    int np = 0;
    for (char *tok = strtok(precs, ","); tok && np < 2; tok = strtok(NULL, ","))
        if (lp_precision_parse(tok, &plist[np++]) != LP_OK) usage();
    int ran = 0;
    for (char *tok = strtok(shapes, ","); tok; tok = strtok(NULL, ",")) {
        const shape *s = NULL;
        for (int k = 0; k < N_SHAPES; k++)
            if (!strcmp(tok, SHAPES[k].name)) s = &SHAPES[k];
        if (!s) {
            fprintf(stderr, "bench_train: unknown shape '%s' (small, big)\n", tok);
            return 2;
        }
        for (int k = 0; k < np; k++) { /* a child per shape and precision: its ru_maxrss is its own peak */
            pid_t pid = fork();
            if (pid < 0) {
                perror("bench_train: fork");
                return 1;
            }
            if (pid == 0)
                _exit(run_shape(s, plist[k], threads, steps ? steps : s->steps,
                                data_steps >= 0 ? data_steps : s->data_steps, train_only, oH, oB, oT));
            int status;
            if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench_train: shape %s %s failed\n", s->name, lp_precision_name(plist[k]));
                return 1;
            }
            ran++;
        }
    }
    return ran ? 0 : 2;
}
