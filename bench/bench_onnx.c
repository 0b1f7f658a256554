/* bench_onnx: the pruned model where people deploy it. For the paper model at the small shape (H = 256,
 * T = 100) and the big shape (H = 1024, T = 300), F = 1152, C = 3862, unpruned and pruned to mean rates
 * 0.3 / 0.5 / 0.7 by the uniform and the eigen rule (statistics of the random-initialised model on
 * synthetic data: only the sizes matter here), it measures in one run the batch-1 and batch-16 latency
 * of a forward pass in lstmprune (lp_model_latency) and in ONNX Runtime (the exported model,
 * scripts/ort/run.js, intra-op threads 1 and 2), and prints one table: milliseconds, the speed-up of each
 * pruned model over the unpruned one in ONNX Runtime against its FLOP reduction, and ours/ORT.
 *
 *     build/bench/bench_onnx [--shapes small,big] [--rates 0.3,0.5,0.7]
 *
 * Latency is the median of the repetitions after warm-up (both sides); every input has all T frames.
 * Run from the repository root (make bench does) with scripts/ort installed (make deps). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/blas_env.h"
#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/kv.h"
#include "core/rng.h"
#include "data/synth.h"
#include "deploy/onnx.h"
#include "model/evaluate.h"
#include "model/model.h"
#include "prune/plan.h"
#include "prune/surgery.h"
#include "tasks/video_task.h"

enum { F = 1152, C = 3862, MAX_ROWS = 16 };

typedef struct {
    const char *name;
    int H, T, reps1, reps16;
} shape;

static const shape shapes[] = {{"small", 256, 100, 60, 20}, {"big", 1024, 300, 10, 5}};

typedef struct {
    char model[32];
    size_t params;
    double flops;                /* per frame, recurrent layers */
    double ours[2][2], ort[2][2]; /* [threads-1][batch 1, 16] ms */
} row;

static char dir[256];

#define CHECK(x)                                                                                                   \
    do {                                                                                                           \
        if ((x) != LP_OK) {                                                                                        \
            fprintf(stderr, "bench_onnx: %s\n", lp_last_error());                                                  \
            exit(1);                                                                                               \
        }                                                                                                          \
    } while (0)

static const char *path(const char *fmt, const char *a) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    char name[256];
    snprintf(name, sizeof name, fmt, a);
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Random frames [b, T, F] and lengths = T, as scripts/ort/run.js reads them, in DIR/in_<b>. */
static void write_inputs(int b, int T) {
    char sub[32];
    snprintf(sub, sizeof sub, "in_%d", b);
    CHECK(lp_mkdirs(path("%s", sub)));
    size_t n = (size_t)b * T * F;
    float *x = malloc(n * sizeof *x);
    int *len = malloc((size_t)b * sizeof *len);
    lp_rng rng;
    lp_rng_init(&rng, 7, LP_RNG_STREAM_TEST);
    for (size_t i = 0; i < n; i++) x[i] = (float)(4.0 * lp_rng_uniform(&rng) - 2.0);
    for (int i = 0; i < b; i++) len[i] = T;
    char p[512];
    snprintf(p, sizeof p, "%s/frames.in", path("%s", sub));
    CHECK(lp_file_write_all(p, x, n * sizeof *x));
    snprintf(p, sizeof p, "%s/lengths.in", path("%s", sub));
    CHECK(lp_file_write_all(p, len, (size_t)b * sizeof *len));
    char list[256];
    int m = snprintf(list, sizeof list, "frames float32 %d,%d,%d frames.in\nlengths int32 %d lengths.in\n", b, T, F, b);
    snprintf(p, sizeof p, "%s/inputs.txt", path("%s", sub));
    CHECK(lp_file_write_all(p, list, (size_t)m));
    free(x);
    free(len);
}

/* ONNX Runtime's median latency of model.onnx on DIR/in_<b>, or NAN. */
static double ort_ms(const char *onnx, int b, int threads, int reps) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "node scripts/ort/run.js '%s' '%s/in_%d' --threads %d --repeat %d 2>&1", onnx, dir, b,
             threads, reps);
    FILE *p = popen(cmd, "r");
    if (!p) return NAN;
    char line[512];
    double ms = NAN;
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "latency_ms median %lf", &ms) != 1) fputs(line, stderr);
    pclose(p);
    return ms;
}

/* Save, export and time one model. */
static void measure(lp_task *t, const shape *s, const char *name, row *r) {
    lp_model *m = lp_video_task_model(t);
    snprintf(r->model, sizeof r->model, "%s", name);
    r->params = lp_model_numel(m);
    r->flops = lp_model_flops_per_frame(m);
    lp_ckpt c;
    lp_ckpt_init(&c);
    CHECK(lp_task_save(t, &c));
    char ckpt[512], onnx[512];
    snprintf(ckpt, sizeof ckpt, "%s/%s-%s.ckpt", dir, s->name, name);
    snprintf(onnx, sizeof onnx, "%s/%s-%s.onnx", dir, s->name, name);
    CHECK(lp_ckpt_save(&c, ckpt));
    lp_ckpt_free(&c);
    CHECK(lp_onnx_export(ckpt, onnx, NULL));
    const int saved = openblas_get_num_threads();
    for (int th = 1; th <= 2; th++) {
        openblas_set_num_threads(th);
        for (int k = 0; k < 2; k++) {
            const int b = k ? 16 : 1, reps = k ? s->reps16 : s->reps1;
            CHECK(lp_model_latency(m, b, s->T, reps, &r->ours[th - 1][k]));
            r->ort[th - 1][k] = ort_ms(onnx, b, th, reps);
        }
    }
    openblas_set_num_threads(saved);
    fprintf(stderr, "  %-12s %9zu params: ours %.1f/%.1f ms, ORT %.1f/%.1f ms (2 threads, batch 1/16)\n", name,
            r->params, r->ours[1][0], r->ours[1][1], r->ort[1][0], r->ort[1][1]);
}

static void print_table(const shape *s, const row *rows, int n) {
    printf("\n### %s shape: H = %d, T = %d, F = %d, C = %d (ms per forward pass, median)\n\n", s->name, s->H, s->T, F, C);
    printf("| model | parameters | FLOP reduction | ours 1t b1 | ORT 1t b1 | ours 2t b1 | ORT 2t b1 | ours 1t b16 | "
           "ORT 1t b16 | ours 2t b16 | ORT 2t b16 | ORT speed-up (2t b16) | ours/ORT (2t b16) |\n");
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        printf("| %s | %zu | %.2fx | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f | %.1f | %.1f | %.2fx | %.2f |\n", r->model,
               r->params, rows[0].flops / r->flops, r->ours[0][0], r->ort[0][0], r->ours[1][0], r->ort[1][0],
               r->ours[0][1], r->ort[0][1], r->ours[1][1], r->ort[1][1], rows[0].ort[1][1] / r->ort[1][1],
               r->ours[1][1] / r->ort[1][1]);
        printf("result: onnx shape=%s model=%s params=%zu flops=%.4g ours1_b1=%.3f ort1_b1=%.3f ours2_b1=%.3f "
               "ort2_b1=%.3f ours1_b16=%.3f ort1_b16=%.3f ours2_b16=%.3f ort2_b16=%.3f\n",
               s->name, r->model, r->params, r->flops, r->ours[0][0], r->ort[0][0], r->ours[1][0], r->ort[1][0],
               r->ours[0][1], r->ort[0][1], r->ours[1][1], r->ort[1][1]);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    lp_blas_env_apply(argv); /* ours as lstmprune runs (core/blas_env.h) */
    const char *want = "small,big", *rates_arg = "0.3,0.5,0.7";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--shapes")) want = argv[i + 1];
        else if (!strcmp(argv[i], "--rates")) rates_arg = argv[i + 1];
    }
    if (access("scripts/ort/node_modules/onnxruntime-node", F_OK) != 0) {
        fprintf(stderr, "bench_onnx: ONNX Runtime is not installed in scripts/ort (run: make deps)\n");
        return 1;
    }
    double rates[8];
    int n_rates = 0;
    for (const char *p = rates_arg; *p && n_rates < 8; p = strchr(p, ',') ? strchr(p, ',') + 1 : p + strlen(p))
        rates[n_rates++] = atof(p);
    snprintf(dir, sizeof dir, "/tmp/lp_bench_onnx_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    /* the data of the pruning statistics: 64 short synthetic videos in the real layout */
    lp_synth_config sc;
    lp_synth_config_default(&sc, C, 1);
    sc.frames_min = 30, sc.frames_max = 60;
    lp_synth_write_opts wo;
    lp_synth_write_opts_default(&wo);
    wo.out_dir = dir, wo.videos = 64, wo.split[0] = 1, wo.split[1] = 0, wo.split[2] = 0;
    CHECK(lp_synth_write(&sc, &wo));
    printf("bench_onnx: the paper model in lstmprune and in ONNX Runtime %s (scripts/ort)\n", "(onnxruntime-node)");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const shape *s = &shapes[si];
        if (!strstr(want, s->name)) continue;
        write_inputs(1, s->T);
        write_inputs(16, s->T);
        lp_kv cfg;
        lp_kv_init(&cfg);
        CHECK(lp_model_default_kv(&cfg, LP_MODEL_PAPER, F, s->H, 1, C, 0, 0));
        lp_kv_set(&cfg, "data.train", path("%s", "train*.tfrecord"));
        lp_kv_setf(&cfg, "data.classes", "%d", C);
        lp_kv_set(&cfg, "train.batch", "32");
        lp_model m;
        CHECK(lp_model_init_kv(&m, &cfg, 1));
        lp_task *t;
        CHECK(lp_video_task_new(&m, &cfg, &t));
        row rows[MAX_ROWS];
        int n = 0;
        fprintf(stderr, "bench_onnx: %s shape\n", s->name);
        measure(t, s, "unpruned", &rows[n++]);
        for (int rule = 0; rule < 2; rule++)
            for (int k = 0; k < n_rates && n < MAX_ROWS; k++) {
                lp_prune_opts po;
                lp_prune_opts_default(&po);
                po.rates.rule = rule ? LP_RATE_RULE_EIGEN : LP_RATE_RULE_UNIFORM;
                po.rates.target_rate = rates[k];
                po.stats_batches = 2;
                lp_prune_plan plan;
                CHECK(lp_prune_plan_run(t, &po, &plan));
                lp_task *small;
                CHECK(lp_surgery_shrink(t, &plan, &small));
                char name[32];
                snprintf(name, sizeof name, "%s %.1f", rule ? "eigen" : "uniform", rates[k]);
                measure(small, s, name, &rows[n++]);
                lp_task_free(small);
                lp_prune_plan_free(&plan);
            }
        print_table(s, rows, n);
        lp_task_free(t);
        lp_kv_free(&cfg);
    }
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_onnx: could not remove %s\n", dir);
    return 0;
}
