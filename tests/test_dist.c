/* test_dist: data-parallel training (train/trainer.h micro-batches, core/dist.h) with the real binary
 * ($LP_BIN), one process and under Open MPI's mpirun:
 *
 *   - exact reduction: one process with 4 micro-batches, 2 ranks and 4 ranks write byte-identical
 *     checkpoints (video task; and the LM, whose carried state each rank advances for its own streams);
 *     a run stopped on 2 ranks resumes on 4 and then on 1 to the uninterrupted run's bytes;
 *   - fast reduction (MPI_Allreduce): 2 ranks against one process with the same 2 micro-batches, the
 *     weights within a stated tolerance after 27 steps; micro-batches against the whole batch likewise;
 *   - a 2-rank LM run killed with kill -9 on one rank after a mid-epoch checkpoint, resumed under mpirun,
 *     ends with the uninterrupted run's checkpoint, byte for byte;
 *   - eval and predict under 2 and 3 ranks: the same metrics and CSV bytes as one process;
 *   - --shard-files: each rank reads its own files, and the epoch ends for all with the shortest share;
 *   - pipeline and lm-prune under 2 ranks (exact): the same pruned and fine-tuned checkpoints; a sweep
 *     (its cells dealt out to the ranks) stopped after one cell and continued: one process's checkpoints
 *     and table; in fast mode the statistics split over the ranks give one process's spectra (to 1e-5
 *     relative) and plan sizes;
 *   - refusals: fewer micro-batches than ranks, commands that run as one process.
 *
 * mpirun runs as root here (CI): OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM) are set for it; -np 4 oversubscribes
 * the 2 cores. */
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/ckpt.h"
#include "core/fileio.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

static char out_buf[1 << 15];

/* Open MPI's own allocations outlive MPI_Finalize: under `make asan` LeakSanitizer would report them for
 * every rank, so leak checks are off for the mpirun launches (the same code paths run single-process in
 * the other tests with them on). */
#define MPI_ENV                                                                                            \
    "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "      \
    "ASAN_OPTIONS=detect_leaks=0"

/* "<launch> $LP_BIN args" in the scratch directory; launch "" (one process) or "mpirun -np N". */
static int run(const char *launch, const char *fmt, ...) {
    char prefix[256];
    snprintf(prefix, sizeof prefix, "%s %s", MPI_ENV, launch);
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, prefix, fmt, ap);
    va_end(ap);
    if (rc != 0) fprintf(stderr, "%s: rc %d\n%s\n", launch, rc, out_buf);
    return rc;
}

static const char *video_flags = "--train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 5 "
                                 "--hidden 8 --batch 8 --epochs 3 --threads 1 --quiet";
static const char *lm_flags = "--data ptb --units 8 --epochs 2 --batch 4 --bptt 8 --threads 1 --quiet";

static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("dist") != 0) return -1;
    if (run("", "synth --out data --videos 120 --classes 5 --frames-min 4 --frames-max 10 --seed 3 --quiet") != 0)
        return -1;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ptb", lp_test_scratch_dir());
    if (lp_mkdirs(dir) != LP_OK) return -1;
    lp_test_markov_write_ptb(dir, 1500, 4);
    return 0;
}

/* Not inlined: GCC 12 otherwise takes the returned buffer for a local's address (-Wdangling-pointer). */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static char *slurp(const char *name, size_t *len) {
    char *buf;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(name), &buf, len), LP_OK);
    return buf;
}

static void same_bytes(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    if (na != nb || memcmp(x, y, na) != 0) fail_msg("%s and %s differ", a, b);
    free(x);
    free(y);
}

/* train.tsv without its timing columns (examples_per_s, elapsed_s: the last two). */
static char *untimed(const char *name) {
    size_t len;
    char *t = slurp(name, &len), *out = malloc(len + 1), *o = out;
    assert_non_null(out);
    for (char *line = t; *line;) {
        char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        int tabs = 0;
        for (char *p = line; p < end && tabs < 6; p++) {
            if (*p == '\t') tabs++;
            if (tabs < 6) *o++ = *p;
        }
        *o++ = '\n';
        line = *end ? end + 1 : end;
    }
    *o = 0;
    free(t);
    return out;
}

/* The largest |a − b| over the tensors of two checkpoints with the same tensor names and sizes. */
static double max_diff(const char *a, const char *b) {
    lp_ckpt x, y;
    assert_int_equal(lp_ckpt_load(&x, lp_test_scratch_path(a)), LP_OK);
    assert_int_equal(lp_ckpt_load(&y, lp_test_scratch_path(b)), LP_OK);
    assert_int_equal(x.n, y.n);
    double m = 0;
    for (int i = 0; i < x.n; i++) {
        assert_string_equal(x.t[i].name, y.t[i].name);
        assert_int_equal(x.t[i].numel, y.t[i].numel);
        for (size_t j = 0; j < x.t[i].numel; j++) m = fmax(m, fabs((double)x.t[i].data[j] - (double)y.t[i].data[j]));
    }
    lp_ckpt_free(&x);
    lp_ckpt_free(&y);
    return m;
}

/* Exact reduction: the micro-batch gradients are summed in micro-batch order whatever the number of
 * ranks, so 1, 2 and 4 ranks write the same bytes (and the same logs but the timing columns). */
static void test_video_exact_is_rank_independent(void **state) {
    (void)state;
    assert_int_equal(run("", "train %s --micro-batches 4 --reduce exact --out ve1", video_flags), 0);
    assert_int_equal(run("mpirun -np 2", "train %s --micro-batches 4 --reduce exact --out ve2", video_flags), 0);
    assert_int_equal(run("mpirun -np 4", "train %s --micro-batches 4 --reduce exact --out ve4", video_flags), 0);
    for (int i = 0; i < 2; i++) {
        const char *run_dir = i ? "ve4" : "ve2";
        char a[64], b[64];
        snprintf(a, sizeof a, "ve1/last.ckpt");
        snprintf(b, sizeof b, "%s/last.ckpt", run_dir);
        same_bytes(a, b);
        snprintf(a, sizeof a, "ve1/best.ckpt");
        snprintf(b, sizeof b, "%s/best.ckpt", run_dir);
        same_bytes(a, b);
    }
    /* the logs, but for their timing columns */
    char *a = untimed("ve1/train.tsv"), *b = untimed("ve4/train.tsv");
    assert_string_equal(a, b);
    free(a);
    free(b);
    size_t len;
    char *cfg = slurp("ve2/config.txt", &len);
    assert_non_null(strstr(cfg, "train.micro_batches = 4\n"));
    assert_non_null(strstr(cfg, "train.reduce = exact\n"));
    free(cfg);
}

/* Exact mode makes a run independent of its rank count, so it can resume on another: 2 ranks stop after
 * an epoch, 4 ranks and then one process continue it; the end equals the uninterrupted run's bytes. */
static void test_resume_on_other_rank_counts(void **state) {
    (void)state;
    assert_int_equal(run("mpirun -np 2", "train %s --micro-batches 4 --reduce exact --stop-after-epochs 1 --out vr",
                         video_flags), 0);
    assert_int_equal(run("mpirun -np 4", "train --resume vr --stop-after-epochs 1 --quiet"), 0);
    assert_int_equal(run("", "train --resume vr --quiet"), 0);
    same_bytes("ve1/last.ckpt", "vr/last.ckpt");
    same_bytes("ve1/best.ckpt", "vr/best.ckpt");
}

/* Fast reduction (MPI_Allreduce, its own summation order): close to one process, not equal. And micro-
 * batches against the whole batch at once: the same gradient up to rounding. */
static void test_fast_is_close(void **state) {
    (void)state;
    assert_int_equal(run("", "train %s --micro-batches 2 --out vf1", video_flags), 0);
    assert_int_equal(run("mpirun -np 2", "train %s --out vf2", video_flags), 0); /* K = ranks = 2 */
    assert_int_equal(run("", "train %s --out vw", video_flags), 0);             /* the whole batch */
    const double d_ranks = max_diff("vf1/last.ckpt", "vf2/last.ckpt"), d_parts = max_diff("vf1/last.ckpt", "vw/last.ckpt");
    fprintf(stderr, "after 27 Adam steps: |2 ranks - 1 process| %.3g, |2 micro-batches - whole batch| %.3g\n", d_ranks,
            d_parts);
    assert_true(d_ranks <= 1e-5);
    assert_true(d_parts <= 1e-5);
    assert_true(d_parts > 0); /* another summation order: a test that could not tell them apart proves nothing */
}

/* The LM: exact over 1 and 2 ranks (each rank carries the state of its own streams and shares it before a
 * checkpoint); a 2-rank run killed on one rank after a mid-epoch checkpoint resumes to the same bytes. */
static void test_lm_exact_and_killed_rank(void **state) {
    (void)state;
    assert_int_equal(run("", "lm-train %s --micro-batches 2 --reduce exact --save-every 25 --out le1", lm_flags), 0);
    assert_int_equal(run("mpirun -np 2", "lm-train %s --micro-batches 2 --reduce exact --save-every 25 --out le2",
                         lm_flags), 0);
    same_bytes("le1/last.ckpt", "le2/last.ckpt");

    /* the same run, one rank killed once a mid-epoch last.ckpt is on the disk */
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd %s && %s exec mpirun -np 2 %s lm-train %s --micro-batches 2 --reduce exact "
                              "--save-every 25 --out lk >/dev/null 2>&1",
             lp_test_scratch_dir(), MPI_ENV, lp_test_bin(), lm_flags);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    struct timespec ms = {0, 1000000L};
    int killed = 0, status = 0;
    for (int i = 0; i < 60000 && !killed; i++) {
        if (access(lp_test_scratch_path("lk/last.ckpt"), F_OK) == 0) {
            char q[128], line[64];
            snprintf(q, sizeof q, "pgrep -P %ld -f lm-train", (long)pid); /* the ranks: mpirun's children */
            FILE *p = popen(q, "r");
            if (p && fgets(line, sizeof line, p)) killed = kill((pid_t)atol(line), SIGKILL) == 0;
            if (p) pclose(p);
        }
        if (!killed && waitpid(pid, &status, WNOHANG) == pid) break; /* finished before the kill: too fast */
        nanosleep(&ms, NULL);
    }
    assert_true(killed);
    waitpid(pid, &status, 0);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* the job ended with the killed rank */
    assert_int_equal(run("mpirun -np 2", "lm-train --resume lk --quiet"), 0);
    same_bytes("le1/last.ckpt", "lk/last.ckpt");
}

/* --shard-files: rank r reads the training files r, r+N, ...; the epoch ends for every rank when the rank
 * with the fewest batches runs out (no rank waits for a batch that will not come). 3 files over 2 ranks:
 * rank 1 has only file 1, batches of 5 videos (its half of 10). */
static void test_sharded_files(void **state) {
    (void)state;
    assert_int_equal(run("", "synth --out d3 --videos 200 --classes 5 --frames-min 4 --frames-max 10 --shards 3 "
                             "--seed 5 --quiet"), 0);
    assert_int_equal(run("", "inspect d3/train0001.tfrecord"), 0);
    int records = 0;
    const char *p = strstr(out_buf, "train0001.tfrecord: ");
    assert_non_null(p);
    assert_int_equal(sscanf(p, "train0001.tfrecord: %d records", &records), 1);
    assert_int_equal(run("mpirun -np 2", "train --train 'd3/train*.tfrecord' --classes 5 --hidden 8 --batch 10 --epochs 2 "
                                         "--threads 1 --shard-files --out sh --quiet"), 0);
    char *log = untimed("sh/train.tsv"), want[64];
    const int steps = (records + 4) / 5; /* the epoch of rank 1 */
    snprintf(want, sizeof want, "\n%d\t2\t%d\t", 2 * steps, steps); /* the last step: epoch 2, batch `steps` */
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want, "\n%d\t", 2 * steps + 1);
    assert_null(strstr(log, want));
    free(log);
    /* one file for two ranks: rank 1 would have nothing */
    assert_int_not_equal(run("mpirun -np 2", "train --train 'd3/train0000.tfrecord' --classes 5 --hidden 8 --batch 10 "
                                             "--epochs 1 --shard-files --out sh1 --quiet"), 0);
    assert_non_null(strstr(out_buf, "shard 1 of 2: the 1 file(s) of the data leave none for it"));
}

/* The pruning pipelines under mpirun (exact): the baseline and the fine-tuning are distributed, the
 * statistics, plan and surgery made by every rank alike, the files written by rank 0: the same pruned and
 * fine-tuned checkpoints as one process, for the video model and the LM. */
static void test_pipelines_match_one_process(void **state) {
    (void)state;
    const char *pf = "pipeline --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 5 --hidden 8 "
                     "--batch 8 --epochs 2 --threads 1 --micro-batches 2 --reduce exact --target-rate 0.4 "
                     "--finetune-epochs 1 --latency-reps 1 --quiet";
    assert_int_equal(run("", "%s --out pp1", pf), 0);
    assert_int_equal(run("mpirun -np 2", "%s --out pp2", pf), 0);
    same_bytes("pp1/pruned.ckpt", "pp2/pruned.ckpt");
    same_bytes("pp1/finetune/best.ckpt", "pp2/finetune/best.ckpt");
    assert_int_equal(access(lp_test_scratch_path("pp2/report.md"), F_OK), 0);
    const char *lf = "lm-prune --checkpoint le1/best.ckpt --target-rate 0.3 --finetune-epochs 1 --micro-batches 2 "
                     "--reduce exact --quiet";
    assert_int_equal(run("", "%s --out lp1", lf), 0);
    assert_int_equal(run("mpirun -np 2", "%s --out lp2", lf), 0);
    same_bytes("lp1/pruned.ckpt", "lp2/pruned.ckpt");
    same_bytes("lp1/finetune/best.ckpt", "lp2/finetune/best.ckpt");
}

/* A pipeline in fast mode splits the pruning statistics over the ranks and merges them: the spectra equal
 * one process's up to rounding (the forward passes run over other blocks of rows: float32 differences of
 * ~1e-7), and the plan's sizes are the same. */
static void test_split_statistics(void **state) {
    (void)state;
    const char *pf = "pipeline --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 5 --hidden 8 "
                     "--batch 8 --epochs 2 --threads 1 --micro-batches 2 --target-rate 0.4 --finetune-epochs 0 "
                     "--latency-reps 1 --quiet";
    assert_int_equal(run("", "%s --out ps1", pf), 0);
    assert_int_equal(run("mpirun -np 2", "%s --out ps2", pf), 0);
    size_t na, nb;
    char *a = slurp("ps1/spectra.csv", &na), *b = slurp("ps2/spectra.csv", &nb);
    int rows = 0;
    const char *p = strchr(a, '\n'), *q = strchr(b, '\n'); /* past the headers */
    for (; p && q && p[1] && q[1]; p = strchr(p + 1, '\n'), q = strchr(q + 1, '\n'), rows++) {
        double x, y; /* group,index,eigenvalue,... */
        assert_int_equal(sscanf(p + 1, "%*[^,],%*d,%lf", &x), 1);
        assert_int_equal(sscanf(q + 1, "%*[^,],%*d,%lf", &y), 1);
        assert_true(fabs(x - y) <= 1e-5 * fmax(fabs(x), 1e-3)); /* float32 forwards over other row blocks */
    }
    assert_true(rows > 8);
    free(a);
    free(b);
    lp_ckpt c1, c2;
    assert_int_equal(lp_ckpt_load(&c1, lp_test_scratch_path("ps1/pruned.ckpt")), LP_OK);
    assert_int_equal(lp_ckpt_load(&c2, lp_test_scratch_path("ps2/pruned.ckpt")), LP_OK);
    assert_string_equal(lp_kv_get(&c1.meta, "model.units"), lp_kv_get(&c2.meta, "model.units"));
    lp_ckpt_free(&c1);
    lp_ckpt_free(&c2);
}

/* results.csv without the columns that are measured times (latency_ms_b1, latency_ms_bn, seconds: the
 * last three). */
static char *untimed_csv(const char *name) {
    size_t len;
    char *t = slurp(name, &len);
    for (char *line = t, *end; *line; line = end) {
        end = strchr(line, '\n');
        end = end ? end + 1 : line + strlen(line);
        char *cut = end;
        for (int k = 0; k < 3 && cut > line; k++) /* back over the last three fields */
            for (cut--; cut > line && *cut != ','; cut--) {}
        memset(cut, ' ', (size_t)(end - cut - 1));
    }
    return t;
}

/* A sweep under 2 ranks: the baseline trains on both, the cells are dealt out (each rank runs its own as
 * one process); stopped after one cell (--max-cells) and continued, it ends with one process's checkpoints
 * and table (but the timings). */
static void test_sweep_matches_one_process(void **state) {
    (void)state;
    FILE *f = fopen(lp_test_scratch_path("sw.conf"), "w");
    assert_non_null(f);
    fprintf(f, "data.train = data/train*.tfrecord\ndata.valid = data/validate*.tfrecord\ndata.test = data/test*.tfrecord\n"
               "data.classes = 5\nmodel.arch = paper\nmodel.hidden = 8\ntrain.epochs = 2\ntrain.batch = 8\n"
               "train.threads = 1\ntrain.micro_batches = 2\ntrain.reduce = exact\nprune.finetune_epochs = 1\n"
               "prune.latency_reps = 1\nprune.latency_batch = 4\nprune.latency_frames = 8\ngrid.schedule = oneshot\n"
               "grid.methods = eigen:gm,sensitivity:gm\ngrid.rate = 0.5\n");
    fclose(f);
    assert_int_equal(run("", "sweep sw.conf --out s1 --quiet"), 0);
    assert_int_equal(run("mpirun -np 2", "sweep sw.conf --out s2 --max-cells 1 --quiet"), 0);
    assert_int_equal(run("mpirun -np 2", "sweep sw.conf --out s2 --quiet"), 0);
    static const char *const cells[] = {"oneshot-eigen-gm-r0.50", "oneshot-sensitivity-gm-r0.50"};
    for (int i = 0; i < 2; i++) {
        char a[128], b[128];
        snprintf(a, sizeof a, "s1/cells/%s/finetune/best.ckpt", cells[i]);
        snprintf(b, sizeof b, "s2/cells/%s/finetune/best.ckpt", cells[i]);
        same_bytes(a, b);
    }
    char *x = untimed_csv("s1/results.csv"), *y = untimed_csv("s2/results.csv");
    assert_string_equal(x, y);
    free(x);
    free(y);
}

/* The metrics line without its timing "(0.1 s)". */
static void untimed_line(char *buf) {
    char *p = strstr(buf, "  (");
    if (p) *p = 0;
}

/* eval and predict under mpirun: each rank computes its block of every batch's videos, the probabilities
 * are shared, rank 0 scores and writes: the same metrics line and the same CSV bytes as one process (also
 * with 3 ranks over batches of 7, whose blocks are uneven). */
static void test_eval_predict_match_one_process(void **state) {
    (void)state;
    static char one[sizeof out_buf], many[sizeof out_buf];
    assert_int_equal(run("", "eval --checkpoint ve1/best.ckpt --data 'data/validate*.tfrecord' --threads 1"), 0);
    snprintf(one, sizeof one, "%s", out_buf);
    untimed_line(one);
    assert_non_null(strstr(one, "GAP@20"));
    assert_int_equal(run("mpirun -np 2", "eval --checkpoint ve1/best.ckpt --data 'data/validate*.tfrecord' --threads 1"), 0);
    snprintf(many, sizeof many, "%s", out_buf);
    untimed_line(many);
    assert_string_equal(one, many);
    assert_int_equal(run("mpirun -np 3", "eval --checkpoint ve1/best.ckpt --data 'data/validate*.tfrecord' --threads 1 "
                                         "--eval-batch 7"), 0);
    snprintf(many, sizeof many, "%s", out_buf);
    untimed_line(many);
    assert_string_equal(one, many);
    assert_int_equal(run("", "predict --checkpoint ve1/best.ckpt --data 'data/test*.tfrecord' --top 5 --out p1.csv --quiet"), 0);
    assert_int_equal(run("mpirun -np 2", "predict --checkpoint ve1/best.ckpt --data 'data/test*.tfrecord' --top 5 "
                                         "--out p2.csv --quiet"), 0);
    same_bytes("p1.csv", "p2.csv");
}

static void test_refusals(void **state) {
    (void)state;
    assert_int_not_equal(run("mpirun -np 2", "train %s --micro-batches 1 --out r1", video_flags), 0);
    assert_non_null(strstr(out_buf, "train.micro_batches = 1: must be in [number of ranks (2), 65536]"));
    assert_int_not_equal(run("mpirun -np 2", "synth --out r0 --videos 10 --quiet"), 0);
    assert_non_null(strstr(out_buf, "runs as one process: start it without mpirun"));
    assert_int_equal(run("", "train %s --reduce sum --out r2", video_flags), 2);
    assert_non_null(strstr(out_buf, "--reduce"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_exact_is_rank_independent),
        cmocka_unit_test(test_resume_on_other_rank_counts),
        cmocka_unit_test(test_fast_is_close),
        cmocka_unit_test(test_lm_exact_and_killed_rank),
        cmocka_unit_test(test_eval_predict_match_one_process),
        cmocka_unit_test(test_sharded_files),
        cmocka_unit_test(test_pipelines_match_one_process),
        cmocka_unit_test(test_split_statistics),
        cmocka_unit_test(test_sweep_matches_one_process),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
