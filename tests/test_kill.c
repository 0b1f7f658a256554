/* test_kill: kill -9 the real binary ($LP_BIN) during training, resume it, and compare what it wrote with
 * an uninterrupted run: train.tsv and valid.tsv byte for byte except the timing columns (examples_per_s,
 * elapsed_s; seconds), last.ckpt and best.ckpt byte for byte. Plus the run-directory rules: a non-empty
 * --out is refused without --force, an empty log gets its header, stale temporary files go on resume,
 * and --resume of a missing directory creates nothing.
 *
 * A kill "during a checkpoint write" is made deterministic with a FIFO: the test creates the atomic
 * write's temporary file "<run>/<name>.tmp.<pid>" (core/fileio.h) as a FIFO with a 4 KiB buffer, so the
 * process blocks inside the write once 4 KiB of the checkpoint are out; only then is it killed. */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/blas_env.h"
#include "core/fileio.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

static char out_buf[1 << 14];

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Run "$LP_BIN args" in the scratch directory to its end; output in out_buf; the exit code. */
static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "", fmt, ap);
    va_end(ap);
    return rc;
}

static int exists(const char *rel) { return access(lp_test_scratch_path(rel), F_OK) == 0; }

/* Start "$LP_BIN args" (in the scratch directory) and SIGKILL it while it writes <run>/<target>: the
 * temporary file is a FIFO made once <run>/config.txt exists (a fresh run claims its directory first).
 * 1 killed mid-write; 0 if the process ended before (it wrote the file normally, or failed). */
static int kill_during_write(const char *args, const char *run_dir, const char *target) {
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char c, cmd[4096];
        close(go[1]);
        if (read(go[0], &c, 1) != 1) _exit(127);
        snprintf(cmd, sizeof cmd, "cd %s && exec %s %s >/dev/null 2>&1", lp_test_scratch_dir(), lp_test_bin(), args);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    close(go[0]);
    char cfg[512], fifo[512];
    snprintf(cfg, sizeof cfg, "%s/config.txt", run_dir);
    snprintf(fifo, sizeof fifo, "%s/%s.tmp.%ld", run_dir, target, (long)pid);
    int resume = exists(cfg), fd = -1, status = 0, killed = 0;
    if (!resume) assert_int_equal(write(go[1], "g", 1), 1);
    for (int i = 0; i < 20000 && !exists(cfg); i++) sleep_ms(1); /* the run has claimed its directory */
    if (mkfifo(lp_test_scratch_path(fifo), 0600) == 0) {
        fd = open(lp_test_scratch_path(fifo), O_RDONLY | O_NONBLOCK);
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_SETPIPE_SZ, 4096) >= 4096);
    }
    if (resume) assert_int_equal(write(go[1], "g", 1), 1);
    close(go[1]);
    for (int i = 0; fd >= 0 && i < 60000; i++) { /* a full pipe: the writer is blocked inside the write */
        int avail = 0;
        if (ioctl(fd, FIONREAD, &avail) == 0 && avail >= 4096) {
            kill(pid, SIGKILL);
            killed = 1;
            break;
        }
        if (waitpid(pid, &status, WNOHANG) == pid) {
            pid = 0;
            break;
        }
        sleep_ms(1);
    }
    if (pid) waitpid(pid, &status, 0);
    if (fd >= 0) close(fd);
    return killed;
}

/* The file with the tab-separated columns `drop` (1-based, a 0-terminated list; -1 = the last column)
 * removed from every line: the timing columns, which differ between any two runs. */
static char *strip_columns(const char *rel, const int *drop) {
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(rel), &buf, &len), LP_OK);
    char *out = lp_malloc(len + 1, 1), *w = out;
    assert_non_null(out);
    for (char *line = buf; *line;) {
        char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
        int ncol = 1;
        for (char *p = line; p < end; p++) ncol += *p == '\t';
        int col = 1, first = 1;
        for (char *p = line; p <= end; col++) {
            char *q = memchr(p, '\t', (size_t)(end - p));
            if (!q) q = end;
            int skip = 0;
            for (const int *d = drop; *d; d++) skip |= *d == col || (*d == -1 && col == ncol);
            if (!skip) {
                if (!first) *w++ = '\t';
                memcpy(w, p, (size_t)(q - p));
                w += q - p;
                first = 0;
            }
            p = q + 1;
        }
        *w++ = '\n';
        line = nl ? nl + 1 : end;
    }
    *w = '\0';
    lp_free(buf);
    return out;
}

static void assert_same_file(const char *a, const char *b) {
    char *x, *y;
    size_t nx, ny;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(a), &x, &nx), LP_OK);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(b), &y, &ny), LP_OK);
    if (nx != ny || memcmp(x, y, nx)) fprintf(stderr, "%s and %s differ\n", a, b);
    assert_true(nx == ny && !memcmp(x, y, nx));
    lp_free(x);
    lp_free(y);
}

/* The logs (timing columns aside) and the checkpoints of two run directories are the same. */
static void assert_same_run(const char *a, const char *b) {
    static const int train_timing[] = {7, 8, 0}, valid_timing[] = {-1, 0};
    const char *logs[] = {"train.tsv", "valid.tsv"};
    for (int i = 0; i < 2; i++) {
        char pa[256], pb[256];
        snprintf(pa, sizeof pa, "%s/%s", a, logs[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, logs[i]);
        char *x = strip_columns(pa, i ? valid_timing : train_timing), *y = strip_columns(pb, i ? valid_timing : train_timing);
        if (strcmp(x, y)) fprintf(stderr, "%s differs from %s:\n%s---\n%s", pa, pb, x, y);
        assert_string_equal(x, y);
        assert_true(strlen(x) > 20); /* a header and rows */
        lp_free(x);
        lp_free(y);
    }
    const char *ckpts[] = {"last.ckpt", "best.ckpt"};
    for (int i = 0; i < 2; i++) {
        char pa[256], pb[256];
        snprintf(pa, sizeof pa, "%s/%s", a, ckpts[i]);
        snprintf(pb, sizeof pb, "%s/%s", b, ckpts[i]);
        assert_same_file(pa, pb);
    }
}

/* Kill `args --out run` during the best.ckpt write at the end of its first epoch (after mid-epoch
 * checkpoints), resume it and kill the resume during a last.ckpt write, resume to the end; compare with
 * `args --out ref` run uninterrupted. A kill that missed its write (the process was faster than the
 * FIFO) is retried in a fresh directory, so the test never depends on timing. */
static void kill_resume_compare(const char *cmd, const char *args, const char *run_dir, const char *ref_dir) {
    char full[2048];
    assert_int_equal(run("%s %s --out %s --quiet", cmd, args, ref_dir), 0);
    int killed = 0;
    for (int attempt = 0; attempt < 3 && !killed; attempt++) {
        snprintf(full, sizeof full, "%s %s --out %s --quiet --force", cmd, args, run_dir);
        killed = kill_during_write(full, run_dir, "best.ckpt");
    }
    assert_true(killed);
    char rel[256];
    snprintf(rel, sizeof rel, "%s/best.ckpt", run_dir);
    assert_false(exists(rel));
    snprintf(rel, sizeof rel, "%s/last.ckpt", run_dir); /* a mid-epoch checkpoint of epoch 1 */
    assert_true(exists(rel));
    snprintf(full, sizeof full, "%s --resume %s --quiet", cmd, run_dir);
    assert_true(kill_during_write(full, run_dir, "last.ckpt"));
    assert_int_equal(run("%s --resume %s --quiet", cmd, run_dir), 0);
    assert_same_run(run_dir, ref_dir);
}

static const char *video_args = "--train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 5 "
                                "--hidden 16 --batch 8 --epochs 3 --save-every 3 --log-every 1 --threads 1";

static void test_train_kill_resume(void **state) {
    (void)state;
    kill_resume_compare("train", video_args, "tk", "tref");
}

/* The first item: an LM run killed inside epoch 1 (its last.ckpt saved before any epoch ended)
 * must still write best.ckpt after the resume — the best perplexity so far starts at +inf. */
static void test_lm_train_kill_resume(void **state) {
    (void)state;
    kill_resume_compare("lm-train",
                        "--data ptb --units 16 --layers 2 --epochs 2 --batch 4 --bptt 5 --save-every 7 "
                        "--log-every 1 --threads 1",
                        "lk", "lref");
    assert_true(exists("lk/best.ckpt"));
}

static void test_finetune_kill_resume(void **state) {
    (void)state;
    assert_int_equal(run("train %s --out base --quiet", video_args), 0);
    kill_resume_compare("finetune",
                        "--init base/best.ckpt --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' "
                        "--classes 5 --batch 8 --epochs 2 --save-every 3 --log-every 1 --threads 1",
                        "fk", "fref");
}

/* A non-empty --out is refused (exit 2, nothing changed) unless --force, which starts over. */
static void test_refuse_non_empty_out(void **state) {
    (void)state;
    const char *cmds[] = {"train %s --out tref", "lm-train --data ptb --units 8 --epochs 1 --out lref",
                          "prune --checkpoint tref/best.ckpt --out tref --target-rate 0.5",
                          "pipeline %s --out tref", "sensitivity --checkpoint tref/best.ckpt --out tref",
                          "lm-prune --checkpoint lref/best.ckpt --out lref",
                          "lm-sensitivity --checkpoint lref/best.ckpt --out lref"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(run(cmds[i], video_args), 2);
        if (!strstr(out_buf, "is not empty")) fprintf(stderr, "%s: %s\n", cmds[i], out_buf);
        assert_non_null(strstr(out_buf, "is not empty: --resume"));
        assert_non_null(strstr(out_buf, "--force"));
    }
    assert_true(exists("tref/best.ckpt") && exists("lref/best.ckpt"));
    /* --force: a fresh run in the cleared directory — its logs are a new run's, not appended */
    assert_int_equal(mkdir(lp_test_scratch_path("forced"), 0700), 0);
    FILE *f = fopen(lp_test_scratch_path("forced/stray.txt"), "w");
    fclose(f);
    assert_int_equal(run("train %s --out forced", video_args), 2);
    /* a directory of other files is never emptied, --force or not */
    assert_int_equal(run("train %s --out forced --quiet --force", video_args), 2);
    assert_non_null(strstr(out_buf, "holds no lstmprune run or report"));
    assert_true(exists("forced/stray.txt"));
    f = fopen(lp_test_scratch_path("forced/config.txt"), "w"); /* an earlier run's */
    fclose(f);
    assert_int_equal(run("train %s --out forced --quiet --force", video_args), 0);
    assert_false(exists("forced/stray.txt"));
    assert_same_run("forced", "tref");
    assert_int_equal(run("train --resume forced --force"), 2);
}

/* A log left empty by a kill gets its header back on resume. */
static void test_empty_log_gets_header(void **state) {
    (void)state;
    assert_int_equal(run("train %s --epochs 1 --out eh --quiet", video_args), 0);
    FILE *f = fopen(lp_test_scratch_path("eh/valid.tsv"), "w"); /* emptied */
    fclose(f);
    assert_int_equal(run("train --resume eh --epochs 2 --quiet"), 0);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("eh/valid.tsv"), &buf, &len), LP_OK);
    assert_true(!strncmp(buf, "epoch\tstep\t", 11));
    assert_non_null(strstr(buf, "\n2\t"));
    lp_free(buf);
}

/* A temporary file of a dead process is removed on resume; a run killed before its first checkpoint is
 * refused with the way to start it over; --resume of a missing directory creates nothing. */
static void test_resume_cleanup_and_typo(void **state) {
    (void)state;
    assert_int_equal(run("train %s --epochs 1 --out st --quiet", video_args), 0);
    pid_t dead = fork();
    if (dead == 0) _exit(0);
    waitpid(dead, NULL, 0);
    char tmp[128];
    snprintf(tmp, sizeof tmp, "st/last.ckpt.tmp.%ld", (long)dead);
    FILE *f = fopen(lp_test_scratch_path(tmp), "w");
    fputs("half a checkpoint", f);
    fclose(f);
    assert_int_equal(run("train --resume st --epochs 2 --quiet"), 0);
    assert_false(exists(tmp));
    /* killed before the first checkpoint: config.txt and logs, no last.ckpt */
    assert_int_equal(unlink(lp_test_scratch_path("st/last.ckpt")), 0);
    assert_int_equal(run("train --resume st --epochs 3"), 1);
    assert_non_null(strstr(out_buf, "no last.ckpt to resume from"));
    assert_non_null(strstr(out_buf, "--force"));
    assert_int_equal(run("train --resume typo/run"), 1);
    assert_non_null(strstr(out_buf, "no such run directory"));
    assert_false(exists("typo"));
    assert_int_equal(run("lm-train --resume typo/run"), 1);
    assert_false(exists("typo"));
}

/* sweep resumes by design: killed while its baseline writes best.ckpt, rerun, its baseline ends as an
 * uninterrupted sweep's. */
static void test_sweep_kill_resume(void **state) {
    (void)state;
    const char *conf = "data.train = data/train*.tfrecord\ndata.valid = data/validate*.tfrecord\n"
                       "data.classes = 5\ndata.frame_features = rgb:1024,audio:128\nmodel.hidden = 16\n"
                       "train.epochs = 2\ntrain.batch = 8\ntrain.save_every = 3\ntrain.threads = 1\n"
                       "prune.stats_batches = 2\nprune.finetune_epochs = 1\nprune.latency_batch = 4\n"
                       "prune.latency_frames = 4\nprune.latency_reps = 1\ngrid.methods = eigen:gm\n"
                       "grid.rate = 0.5\n";
    assert_int_equal(lp_file_write_all(lp_test_scratch_path("sw.conf"), conf, strlen(conf)), LP_OK);
    assert_int_equal(run("sweep sw.conf --out swref"), 0);
    int killed = 0;
    for (int attempt = 0; attempt < 3 && !killed; attempt++) {
        char rm[600];
        snprintf(rm, sizeof rm, "rm -rf %s", lp_test_scratch_path("swk"));
        assert_int_equal(system(rm), 0);
        killed = kill_during_write("sweep sw.conf --out swk", "swk/baseline", "best.ckpt");
    }
    assert_true(killed);
    assert_int_equal(run("sweep sw.conf --out swk"), 0);
    assert_same_run("swk/baseline", "swref/baseline");
}

static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("kill") != 0) return -1;
    setenv("OPENBLAS_THREAD_TIMEOUT", LP_BLAS_THREAD_TIMEOUT, 1); /* no self-re-execution (core/blas_env.h): */
    setenv("GOMP_SPINCOUNT", LP_GOMP_SPINCOUNT, 1);                 /* the pid killed is the trainer's */
    if (run("synth --out data --videos 120 --classes 5 --frames-min 4 --frames-max 10 --seed 2 --quiet") != 0) {
        fprintf(stderr, "%s\n", out_buf);
        return -1;
    }
    if (mkdir(lp_test_scratch_path("ptb"), 0700) != 0) return -1;
    lp_test_markov_write_ptb(lp_test_scratch_path("ptb"), 300, 1);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_kill_resume),    cmocka_unit_test(test_lm_train_kill_resume),
        cmocka_unit_test(test_finetune_kill_resume), cmocka_unit_test(test_refuse_non_empty_out),
        cmocka_unit_test(test_empty_log_gets_header), cmocka_unit_test(test_resume_cleanup_and_typo),
        cmocka_unit_test(test_sweep_kill_resume),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
