/* bench_dist: data-parallel training on this machine (core/dist.h, train/trainer.h), measured:
 *
 *   1. the cross-rank gradient sum alone: MPI_Allreduce (the fast reduction) and the ordered gather-and-sum
 *      (the exact one) of a gradient block the size of the paper model's at the small shape (H = 256:
 *      2.83 M floats) and at the paper's (H = 1024: 19.2 M), C = 3862; best of 10, ms and GB/s of
 *      gradient summed (4·n bytes / time);
 *   2. training steps at the shapes of bench_train, small (H = 256, B = 32, T = 100; 12 steps) and big
 *      (H = 1024, B = 160, T = 300; 3 steps), C = 3862, on synthetic YouTube-8M shards read by the real
 *      pipeline and the trainer of `lstmprune train`: 1 process × 2 threads against 2 ranks × 1 thread
 *      (fast and exact), ms per step and frames/s over the steps after the first, and the time per step
 *      rank 0 spends in the reduction (waiting for the other rank included).
 *
 * Started as one process (as `make bench` runs every benchmark), it runs part 2's single process itself,
 * then itself under `mpirun -np 2` (Open MPI's root-permission variables set, as the tests do) for the
 * rest; `--child DIR` is that run. docs/SCALING.md has the figures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/dist.h"
#include "core/kv.h"
#include "core/rundir.h"
#include "data/synth.h"
#include "tasks/video_task.h"
#include "train/trainer.h"

enum { C = 3862 };

/* The shapes of bench_train: small (12 steps) and the paper's (3 steps: ~20 s each on 2 cores). */
typedef struct {
    const char *name;
    int H, B, T, steps;
    double params; /* the paper model's at C = 3862 (lstmprune info): the floats reduced per step */
} shape;
static const shape shapes[] = {{"small", 256, 32, 100, 12, 2829590}, {"big", 1024, 160, 300, 3, 19171094}};
#define N_SHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* Per-step ms over steps 2..last from the elapsed_s column (the last) of RUN/train.tsv. */
static double step_ms(const char *run) {
    char path[4200], line[512];
    FILE *f = fopen(lp_rundir_path(run, "train.tsv", path, sizeof path), "r");
    if (!f) return -1;
    double first = -1, last = -1;
    int step = 0;
    while (fgets(line, sizeof line, f)) {
        char *tab = strrchr(line, '\t');
        if (!tab || sscanf(line, "%d", &step) != 1) continue;
        const double e = atof(tab + 1);
        if (step == 1) first = e;
        last = e;
    }
    fclose(f);
    return first < 0 || step < 2 ? -1 : 1e3 * (last - first) / (step - 1);
}

/* The shape's training steps of the paper model on its shards in DIR/<shape>, into a run directory
 * DIR/<shape>/run-TAG; *ms per step, *reduce_ms per step in the reduction. */
static int train_steps(const char *dir, const shape *sh, const char *tag, int threads, const char *reduce, double *ms,
                       double *reduce_ms) {
    char pat[4200], run[4200], hidden[16], batch[16];
    snprintf(pat, sizeof pat, "%s/%s/train*.tfrecord", dir, sh->name);
    snprintf(run, sizeof run, "%s/%s/run-%s", dir, sh->name, tag);
    snprintf(hidden, sizeof hidden, "%d", sh->H);
    snprintf(batch, sizeof batch, "%d", sh->B);
    lp_kv cfg;
    lp_kv_init(&cfg);
    const lp_task_kind kind = lp_video_task_kind;
    const char *keys[][2] = {{"data.train", pat},     {"data.classes", "3862"}, {"model.arch", "paper"},
                             {"model.hidden", hidden}, {"train.batch", batch},   {"train.epochs", "1"},
                             {"train.reduce", reduce}, {"train.lr", "0.0002"}};
    lp_status s = LP_OK;
    for (size_t i = 0; s == LP_OK && i < sizeof keys / sizeof keys[0]; i++) s = lp_kv_set(&cfg, keys[i][0], keys[i][1]);
    if (s == LP_OK) s = lp_kv_set_int(&cfg, "train.threads", threads);
    if (s == LP_OK) s = kind.defaults(&kind, &cfg);
    lp_train_opts o = {.run_dir = run, .quiet = 1};
    lp_train_result r;
    if (s == LP_OK) s = lp_train(&kind, &cfg, &o, &r);
    lp_kv_free(&cfg);
    if (s != LP_OK) {
        fprintf(stderr, "bench_dist: %s\n", lp_last_error());
        return 1;
    }
    *ms = step_ms(run);
    *reduce_ms = 1e3 * r.reduce_seconds / (double)(r.steps > 0 ? r.steps : 1);
    return *ms > 0 ? 0 : 1;
}

static void report(const shape *sh, const char *what, double ms, double reduce_ms) {
    if (lp_dist_rank() != 0) return;
    printf("%-5s shape (H=%d B=%d T=%d), %-26s %8.1f ms/step  %7.0f frames/s", sh->name, sh->H, sh->B, sh->T, what, ms,
           sh->B * sh->T / (ms / 1e3));
    if (reduce_ms >= 0) printf("  reduction %.1f ms/step of %.1f MB", reduce_ms, 4.0 * sh->params / 1e6);
    printf("\n");
    fflush(stdout);
}

static int reduction_alone(void);

static int child(int *argc, char ***argv) {
    const char *dir = *argc > 2 ? (*argv)[2] : NULL;
    if (!dir || lp_dist_init(argc, argv) != LP_OK || lp_dist_size() < 2) {
        fprintf(stderr, "bench_dist --child DIR: not under mpirun with 2+ ranks\n");
        return 1;
    }
    if (reduction_alone() != 0) return 1;
    double ms, red;
    for (int i = 0; i < N_SHAPES; i++) {
        if (train_steps(dir, &shapes[i], "fast", 1, "fast", &ms, &red) != 0) return 1;
        report(&shapes[i], "2 ranks x 1 thread, fast", ms, red);
        if (train_steps(dir, &shapes[i], "exact", 1, "exact", &ms, &red) != 0) return 1;
        report(&shapes[i], "2 ranks x 1 thread, exact", ms, red);
    }
    lp_dist_finalize();
    return 0;
}

static int reduction_alone(void) {
    static const struct {
        const char *name;
        size_t n;
    } sizes[] = {{"small (H=256)", 2829590}, {"paper (H=1024)", 19171094}}; /* as shapes[] */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const size_t n = sizes[s].n;
        const int K = lp_dist_size();
        float *g = lp_aligned(n, sizeof(float)), *out = lp_aligned(n, sizeof(float));
        if (!g || !out) return 1;
        for (size_t i = 0; i < n; i++) g[i] = (float)(i % 97) * 1e-3f;
        double best_fast = 1e30, best_exact = 1e30;
        for (int rep = 0; rep < 10; rep++) {
            lp_dist_barrier();
            double t0 = lp_now_s();
            if (lp_dist_sum_float(g, n) != LP_OK) return 1;
            double t1 = lp_now_s();
            lp_dist_barrier();
            double t2 = lp_now_s();
            if (lp_dist_ordered_sum(g, K, out, n, (size_t)1 << 22) != LP_OK) return 1;
            double t3 = lp_now_s();
            if (t1 - t0 < best_fast) best_fast = t1 - t0;
            if (t3 - t2 < best_exact) best_exact = t3 - t2;
        }
        if (lp_dist_rank() == 0)
            printf("%d ranks, %-15s %6.2f MB: fast (MPI_Allreduce) %7.2f ms = %5.2f GB/s; exact (ordered) %7.2f ms = "
                   "%5.2f GB/s\n",
                   K, sizes[s].name, 4.0 * n / 1e6, 1e3 * best_fast, 4.0 * n / best_fast / 1e9, 1e3 * best_exact,
                   4.0 * n / best_exact / 1e9);
        lp_free(g);
        lp_free(out);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child")) return child(&argc, &argv);
    char self[4096], dir[] = "/tmp/lp_bench_dist_XXXXXX", cmd[8400];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0 || !mkdtemp(dir)) return 1;
    self[len] = 0;
    printf("bench_dist: data-parallel training on this machine (2 ranks share its cores and memory)\n");
    double ms, red;
    int rc = 0;
    for (int i = 0; rc == 0 && i < N_SHAPES; i++) { /* full-length synthetic videos of the shape */
        const shape *sh = &shapes[i];
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%s", dir, sh->name);
        lp_synth_config sc;
        lp_synth_config_default(&sc, C, 1);
        sc.frames_min = sc.frames_max = sh->T;
        lp_synth_write_opts o;
        lp_synth_write_opts_default(&o);
        o.out_dir = sub;
        o.videos = (uint64_t)sh->B * (uint64_t)sh->steps;
        o.split[0] = 1, o.split[1] = o.split[2] = 0;
        o.shards = 4;
        rc = lp_synth_write(&sc, &o) == LP_OK ? 0 : 1;
        if (rc == 0) rc = train_steps(dir, sh, "one", 2, "fast", &ms, &red);
        if (rc == 0) report(sh, "1 process x 2 threads", ms, -1);
    }
    fflush(stdout);
    snprintf(cmd, sizeof cmd, "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 %s --child %s", self,
             dir);
    if (rc == 0) rc = system(cmd) == 0 ? 0 : 1;
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) rc = 1;
    return rc;
}
