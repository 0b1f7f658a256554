/* test_sweep: the ablation grid (prune/sweep), the sensitivity analysis (prune/sensitivity) and the
 * compatibility presets (prune/compat) on a tiny synthetic data set.
 *
 * A tiny grid (oneshot: eigen rule × {gm, l2} × rates {0.25, 0.5}; one soft cell; one ISS cell) runs
 * end to end and writes every output file. The same sweep is run again from the same seed, but stopped
 * after two cells (as a killed sweep would be) and left with a half-written cell directory, then rerun:
 * the baseline and the finished cells are not redone, the partial cell is, and its results.csv equals
 * the first run's except the timing columns. The sensitivity analysis on the sweep's
 * baseline is checked against an independent surgery + evaluation of one of its entries. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/fileio.h"
#include "model/evaluate.h"
#include "model/runcfg.h"
#include "tasks/video_task.h"
#include "experiments/compat.h"
#include "prune/criteria.h"
#include "prune/plan.h"
#include "experiments/sensitivity.h"
#include "prune/surgery.h"
#include "experiments/sweep.h"
#include "tests/common/scratch.h"
#include "tests/common/yt8m_set.h"

static const lp_test_yt8m_set set = {.seed = 21, .videos = 200, .frames_max = 12, .rgb = 24, .audio = 8,
                                     .shuffle_buffer = 32};

static int setup(void **state) {
    (void)state;
    return lp_test_yt8m_setup("sweep", &set);
}

/* The tiny grid: paper model H = 8 (BiLSTM 4 + 4, LSTM 8), 2 epochs, 1 fine-tuning epoch. */
static void tiny_config(lp_kv *kv) {
    lp_test_yt8m_cfg(kv, &set, LP_TEST_YT8M_VALID | LP_TEST_YT8M_TEST, 2, 3);
    lp_kv_set(kv, "model.arch", "paper");
    lp_kv_set(kv, "model.hidden", "8");
    lp_kv_set(kv, "prune.finetune_epochs", "1");
    lp_kv_set(kv, "prune.stats_batches", "4");
    lp_kv_set(kv, "prune.prune_every", "4");
    lp_kv_set(kv, "prune.iss_lambda", "0.02");
    lp_kv_set(kv, "prune.iss_threshold", "0.05");
    lp_kv_set(kv, "prune.latency_batch", "4");
    lp_kv_set(kv, "prune.latency_frames", "8");
    lp_kv_set(kv, "prune.latency_reps", "1");
    lp_kv_set(kv, "grid.schedule", "oneshot,soft");
    lp_kv_set(kv, "grid.rule", "eigen");
    lp_kv_set(kv, "grid.criterion", "gm,l2");
    lp_kv_set(kv, "grid.rate", "0.25,0.5");
    lp_kv_set(kv, "grid.soft.methods", "uniform:gm");
    lp_kv_set(kv, "grid.soft.rate", "0.5");
    lp_kv_set(kv, "grid.iss", "1");
}

#define N_TINY_CELLS 6

/* Not inlined: GCC 12 otherwise takes the returned buffer for the address of the local `buf` and warns
 * (-Wdangling-pointer) where the caller reads it. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static char *slurp(const char *path) {
    char *buf;
    size_t len;
    lp_status s = lp_file_read_all(path, &buf, &len);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    return buf;
}

/* results.csv without the timing columns (the last three, checked by name), one string. */
static char *csv_without_timing(const char *path, int *rows) {
    char *text = slurp(path);
    size_t n = strlen(text);
    char *out = malloc(n + 1);
    size_t o = 0;
    *rows = 0;
    int line = 0;
    for (char *p = text; *p;) {
        char *e = strchr(p, '\n');
        assert_non_null(e);
        *e = 0;
        /* cut after the 19th comma: columns 20..22 are latency_ms_b1, latency_ms_bn, seconds */
        int commas = 0;
        char *q = p;
        while (*q && commas < 19) commas += *q++ == ',';
        if (line == 0) assert_string_equal(q, "latency_ms_b1,latency_ms_bn,seconds");
        else assert_int_equal(commas, 19);
        memcpy(out + o, p, (size_t)(q - p));
        o += (size_t)(q - p);
        out[o++] = '\n';
        line++;
        p = e + 1;
    }
    out[o] = 0;
    *rows = line - 1;
    free(text);
    return out;
}

/* Rewrite the text file at path without the lines that start with prefix. */
static void drop_lines(const char *path, const char *prefix) {
    char *text = slurp(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (char *line = text, *end; *line; line = end) {
        end = strchr(line, '\n');
        end = end ? end + 1 : line + strlen(line);
        if (strncmp(line, prefix, strlen(prefix)) != 0) fwrite(line, 1, (size_t)(end - line), f);
    }
    fclose(f);
    free(text);
}

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static void run_sweep(const lp_kv *cfg, const char *out, int max_cells, lp_sweep_summary *sum) {
    lp_sweep_opts o = {.quiet = 1, .max_cells = max_cells};
    lp_status s = lp_sweep_run(cfg, out, &o, sum);
    if (s != LP_OK) fprintf(stderr, "sweep: %s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
}

/* A csv field (0-based column) of the row whose first field is `cell`. */
static double csv_num(const char *csv, const char *cell, int col) {
    char key[80];
    snprintf(key, sizeof key, "\n%s,", cell);
    const char *p = strstr(csv, key);
    assert_non_null(p);
    p++;
    for (int c = 0; c < col; c++) {
        p = strchr(p, ',');
        assert_non_null(p);
        p++;
    }
    return strtod(p, NULL);
}

static void test_cells(void **state) {
    (void)state;
    lp_kv kv;
    tiny_config(&kv);
    lp_sweep_cell *cells;
    int n;
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_OK);
    assert_int_equal(n, N_TINY_CELLS);
    static const char *const want[] = {"oneshot-eigen-gm-r0.25", "oneshot-eigen-gm-r0.50", "oneshot-eigen-l2-r0.25",
                                       "oneshot-eigen-l2-r0.50", "soft-uniform-gm-r0.50", "iss-lambda0.02"};
    for (int i = 0; i < n; i++) assert_string_equal(cells[i].name, want[i]);
    assert_int_equal(cells[4].schedule, LP_SCHED_SOFT);
    assert_int_equal(cells[4].rule, LP_RATE_RULE_UNIFORM);
    assert_true(cells[5].schedule == LP_SCHED_ISS && cells[5].iss_lambda == 0.02);
    lp_free(cells);
    /* grid.methods replaces the product; the compat preset makes soft the default schedule */
    lp_kv_set(&kv, "grid.methods", "eigen:gm,uniform:l2,uniform:random");
    lp_kv_set(&kv, "grid.rate", "0.3");
    lp_kv_set(&kv, "grid.iss_lambda", "0.001,0.01");
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_OK);
    assert_int_equal(n, 3 + 1 + 2);
    assert_string_equal(cells[2].name, "oneshot-uniform-random-r0.30");
    assert_string_equal(cells[5].name, "iss-lambda0.01");
    lp_free(cells);
    /* grid.compensate doubles the oneshot cells; soft cells never compensate (one cell each) */
    lp_kv_set(&kv, "grid.compensate", "none,mean");
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_OK);
    assert_int_equal(n, 3 * 2 + 1 + 2);
    assert_string_equal(cells[0].name, "oneshot-eigen-gm-r0.30");
    assert_string_equal(cells[1].name, "oneshot-eigen-gm-r0.30-comp");
    assert_true(!cells[0].compensate && cells[1].compensate);
    assert_true(cells[6].schedule == LP_SCHED_SOFT && !cells[6].compensate);
    lp_free(cells);
    lp_kv_set(&kv, "grid.compensate", "none,median");
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "'median' is not none or mean"));
    lp_kv_free(&kv);
    lp_kv_init(&kv);
    lp_kv_set(&kv, "grid.rate", "0.5");
    lp_kv_set(&kv, "compat", "reference");
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(cells[0].name, "soft-eigen-gm-r0.50");
    lp_free(cells);
    /* errors name the key */
    lp_kv_set(&kv, "grid.rate", "0.5,1.5");
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "grid.rate"));
    lp_kv_set(&kv, "grid.rate", "0.5");
    lp_kv_set(&kv, "grid.criterion", "gm,median");
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_ERR_ARG);
    lp_kv_set(&kv, "compat", "tensorflow");
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_ERR_ARG);
    lp_kv_free(&kv);
}

static void test_compat(void **state) {
    (void)state;
    lp_kv kv;
    lp_kv_init(&kv);
    lp_kv_set(&kv, "prune.stats_steps", "all"); /* explicit keys win over the preset */
    assert_int_equal(lp_compat_apply(&kv, "reference", NULL), LP_OK);
    assert_string_equal(lp_kv_get(&kv, "prune.stats_steps"), "all");
    assert_string_equal(lp_kv_get(&kv, "prune.schedule"), "soft");
    assert_string_equal(lp_kv_get(&kv, "prune.keep_count"), "public");
    assert_string_equal(lp_kv_get(&kv, "train.lr_decay"), "0.95");
    assert_string_equal(lp_kv_get(&kv, "data.padding"), "repeat");
    assert_string_equal(lp_kv_get(&kv, "compat"), "reference");
    lp_kv_free(&kv);
    lp_kv_init(&kv);
    assert_int_equal(lp_compat_apply(&kv, "reference", "train.,data."), LP_OK); /* what `train` applies */
    assert_null(lp_kv_get(&kv, "prune.schedule"));
    assert_string_equal(lp_kv_get(&kv, "train.weight_init"), "keras");
    assert_string_equal(lp_kv_get(&kv, "data.padding"), "repeat");
    assert_int_equal(lp_compat_apply(&kv, "nonsense", NULL), LP_ERR_ARG);
    lp_kv_free(&kv);
    lp_kv_init(&kv);
    lp_kv_set(&kv, "task", "lm"); /* a language-model sweep takes the pruning keys only */
    assert_int_equal(lp_compat_apply(&kv, "reference", NULL), LP_OK);
    assert_string_equal(lp_kv_get(&kv, "prune.keep_count"), "public");
    assert_null(lp_kv_get(&kv, "train.weight_init"));
    assert_null(lp_kv_get(&kv, "train.lr_decay"));
    lp_kv_free(&kv);
    lp_kv_init(&kv);
    assert_int_equal(lp_compat_apply(&kv, "ours", NULL), LP_OK);
    assert_int_equal(kv.count, 1); /* only the record of the preset */
    lp_kv_free(&kv);
}

static void test_sweep_deterministic_and_resumable(void **state) {
    (void)state;
    lp_kv kv;
    tiny_config(&kv);
    lp_sweep_summary s1, s2, s3;
    run_sweep(&kv, lp_test_scratch_path("run1"), 0, &s1);
    assert_int_equal(s1.cells_total, N_TINY_CELLS);
    assert_int_equal(s1.cells_run, N_TINY_CELLS);
    assert_int_equal(s1.cells_done, N_TINY_CELLS);
    assert_int_equal(s1.baseline_run, 1);
    static const char *const files[] = {"results.csv", "results.md", "spectra.csv", "plots.gp", "sweep.conf",
                                        "baseline/best.ckpt", "baseline/train.tsv", "baseline/valid.tsv",
                                        "cells/baseline/result.txt", "cells/oneshot-eigen-gm-r0.50/report.md",
                                        "cells/soft-uniform-gm-r0.50/result.txt", "cells/iss-lambda0.02/result.txt"};
    char path[700];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", lp_test_scratch_path("run1"), files[i]);
        if (!exists(path)) fprintf(stderr, "missing %s\n", path);
        assert_true(exists(path));
    }
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        assert_int_equal(s1.plots, 5);
        static const char *const png[] = {"gap_vs_rate.png", "gap_vs_params.png", "gap_vs_latency.png", "spectra.png",
                                          "curves.png"};
        for (int i = 0; i < 5; i++) {
            snprintf(path, sizeof path, "%s/%s", lp_test_scratch_path("run1"), png[i]);
            assert_true(exists(path));
        }
    }
    int rows1, rows2;
    snprintf(path, sizeof path, "%s/results.csv", lp_test_scratch_path("run1"));
    char *csv1 = csv_without_timing(path, &rows1);
    assert_int_equal(rows1, 2 + N_TINY_CELLS); /* baseline, prior, cells */

    /* What the rows say: the pruned models are smaller; eigen rates hit the target within one unit per
     * group (groups of 4, 4, 8 units: 1/4 at most); the uniform rule at 0.5 halves every group. */
    double base_params = csv_num(csv1, "baseline", 7);
    for (int c = 0; c < 4; c++) {
        static const char *const nm[] = {"oneshot-eigen-gm-r0.25", "oneshot-eigen-gm-r0.50", "oneshot-eigen-l2-r0.25",
                                         "oneshot-eigen-l2-r0.50"};
        double target = csv_num(csv1, nm[c], 4), mean = csv_num(csv1, nm[c], 5);
        assert_true(fabs(mean - target) <= 0.25 + 1e-9);
        assert_true(csv_num(csv1, nm[c], 7) < base_params);
        double gap = csv_num(csv1, nm[c], 14);
        assert_true(gap >= 0 && gap <= 1);
    }
    assert_non_null(strstr(csv1, "\nsoft-uniform-gm-r0.50,soft,uniform,gm,0.50,0.5000,2/2/4,"));

    /* Killed after the baseline's last epoch, before it was marked trained: it is measured, not retrained
     * (a finished run cannot be resumed), and nothing else is redone. */
    snprintf(path, sizeof path, "%s/baseline/trained", lp_test_scratch_path("run1"));
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/cells/baseline/result.txt", lp_test_scratch_path("run1"));
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/baseline/valid.tsv", lp_test_scratch_path("run1"));
    char *valid_before = slurp(path);
    lp_sweep_summary s0;
    run_sweep(&kv, lp_test_scratch_path("run1"), 0, &s0);
    assert_int_equal(s0.baseline_run, 1);
    assert_int_equal(s0.cells_run, 0);
    assert_int_equal(s0.cells_skipped, N_TINY_CELLS);
    char *valid_after = slurp(path);
    assert_string_equal(valid_before, valid_after); /* no epoch was added */
    free(valid_before);
    free(valid_after);
    snprintf(path, sizeof path, "%s/results.csv", lp_test_scratch_path("run1"));
    char *csv1b = csv_without_timing(path, &rows1);
    assert_string_equal(csv1, csv1b);
    free(csv1b);

    /* The same sweep again, killed after two cells ... */
    run_sweep(&kv, lp_test_scratch_path("run2"), 2, &s2);
    assert_int_equal(s2.cells_run, 2);
    assert_int_equal(s2.cells_done, 2);
    snprintf(path, sizeof path, "%s/results.csv", lp_test_scratch_path("run2"));
    char *partial = csv_without_timing(path, &rows2);
    assert_int_equal(rows2, 2 + 2); /* the outputs are written from the finished cells */
    free(partial);
    /* make a finished cell recognisable: a skipped cell keeps its result file untouched */
    char r0[700], junk[700];
    snprintf(r0, sizeof r0, "%s/cells/oneshot-eigen-gm-r0.25/result.txt", lp_test_scratch_path("run2"));
    char *first = slurp(r0);
    FILE *f = fopen(r0, "w");
    assert_non_null(f);
    fputs(first, f);
    fputs("# marker\n", f);
    fclose(f);
    free(first);
    /* ... in the middle of the third cell */
    snprintf(junk, sizeof junk, "%s/cells/oneshot-eigen-l2-r0.25", lp_test_scratch_path("run2"));
    assert_int_equal(lp_mkdirs(junk), LP_OK);
    strcat(junk, "/half-written.ckpt");
    f = fopen(junk, "w");
    assert_non_null(f);
    fputs("x", f);
    fclose(f);
    /* ... and rerun: the baseline and the finished cells are not redone, the partial cell is */
    run_sweep(&kv, lp_test_scratch_path("run2"), 0, &s3);
    assert_int_equal(s3.baseline_run, 0);
    assert_int_equal(s3.cells_skipped, 2);
    assert_int_equal(s3.cells_run, N_TINY_CELLS - 2);
    assert_int_equal(s3.cells_done, N_TINY_CELLS);
    assert_int_equal(access(junk, F_OK), -1);
    char *again = slurp(r0);
    assert_non_null(strstr(again, "# marker"));
    free(again);
    /* the interrupted and resumed sweep gives the table of the uninterrupted one */
    char *csv2 = csv_without_timing(path, &rows2);
    assert_string_equal(csv1, csv2);

    /* Re-measuring the latency changes the timing columns only. */
    lp_sweep_summary s4;
    lp_sweep_opts oq = {.quiet = 1};
    assert_int_equal(lp_sweep_remeasure(&kv, lp_test_scratch_path("run2"), 1, &oq, &s4), LP_OK);
    assert_int_equal(s4.cells_done, N_TINY_CELLS);
    char *csv4 = csv_without_timing(path, &rows2);
    assert_string_equal(csv1, csv4);
    free(csv4);
    char *full = slurp(path);
    assert_true(csv_num(full, "baseline", 19) > 0 && csv_num(full, "iss-lambda0.02", 20) > 0);
    free(full);

    /* a rerun with another base configuration is refused (grid keys may change) */
    lp_kv_set(&kv, "train.lr", "0.02");
    lp_sweep_opts o = {.quiet = 1};
    assert_int_equal(lp_sweep_run(&kv, lp_test_scratch_path("run2"), &o, NULL), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "train.lr"));
    lp_kv_free(&kv);
    tiny_config(&kv);

    /* A sweep started by a version without the bias keys continues when they are at their defaults (what
     * that version did), and is refused when one is not. */
    snprintf(path, sizeof path, "%s/sweep.conf", lp_test_scratch_path("run2"));
    drop_lines(path, "train.bias_");
    lp_sweep_summary s5;
    run_sweep(&kv, lp_test_scratch_path("run2"), 0, &s5);
    assert_int_equal(s5.cells_skipped, N_TINY_CELLS);
    assert_int_equal(s5.cells_run, 0);
    char *conf = slurp(path);
    assert_non_null(strstr(conf, "train.bias_init = uniform")); /* written back complete */
    free(conf);
    drop_lines(path, "train.bias_");
    lp_kv_set(&kv, "train.bias_init", "pair");
    assert_int_equal(lp_sweep_run(&kv, lp_test_scratch_path("run2"), &o, NULL), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "train.bias_init = pair now; absent there, which means uniform"));
    free(csv1);
    free(csv2);
    lp_kv_free(&kv);
}

/* prune.compensate = mean in a sweep: its oneshot cells compensate (and are named so), its soft and ISS
 * cells (which remove units they drove to zero) do not, and every cell finishes. */
static void test_sweep_compensate(void **state) {
    (void)state;
    lp_kv kv;
    tiny_config(&kv);
    lp_kv_set(&kv, "prune.compensate", "mean");
    lp_sweep_summary sum;
    run_sweep(&kv, lp_test_scratch_path("comp"), 0, &sum);
    assert_int_equal(sum.cells_done, N_TINY_CELLS);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) assert_int_equal(sum.plots, 5); /* "+comp" series draw */
    static const char *const cell[] = {"oneshot-eigen-gm-r0.50-comp", "soft-uniform-gm-r0.50", "iss-lambda0.02"};
    static const char *const want[] = {"mean", "none", "none"};
    for (int i = 0; i < 3; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/cells/%s/pruned.ckpt", lp_test_scratch_path("comp"), cell[i]);
        lp_ckpt c;
        assert_int_equal(lp_ckpt_load(&c, path), LP_OK);
        assert_string_equal(lp_kv_get(&c.meta, "plan.compensate"), want[i]);
        lp_ckpt_free(&c);
    }
    lp_kv_free(&kv);
}

/* The sensitivity and given rules in a sweep (issue 25): the baseline's curves are measured once into
 * OUT/sensitivity and reused on resume; the given cell has no target rate and prunes to the configured
 * sizes; per-group sizes that do not fit the model are refused before the baseline trains. */
static void test_sweep_sensitivity_and_given(void **state) {
    (void)state;
    lp_kv kv;
    tiny_config(&kv);
    lp_kv_set(&kv, "grid.schedule", "oneshot");
    lp_kv_set(&kv, "grid.methods", "sensitivity:gm,given:l2");
    lp_kv_set(&kv, "grid.rate", "0.5");
    lp_kv_set(&kv, "grid.iss", "0");
    lp_kv_set(&kv, "prune.units", "3,2,6");
    lp_sweep_cell *cells;
    int n;
    assert_int_equal(lp_sweep_cells(&kv, &cells, &n), LP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(cells[0].name, "oneshot-sensitivity-gm-r0.50");
    assert_string_equal(cells[1].name, "oneshot-given-l2");
    assert_true(cells[1].rule == LP_RATE_RULE_GIVEN && cells[1].target_rate < 0);
    lp_free(cells);
    lp_sweep_summary sum;
    run_sweep(&kv, lp_test_scratch_path("sg"), 0, &sum);
    assert_int_equal(sum.cells_done, 2);
    char path[700];
    snprintf(path, sizeof path, "%s/sensitivity/curves.txt", lp_test_scratch_path("sg"));
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    snprintf(path, sizeof path, "%s/results.csv", lp_test_scratch_path("sg"));
    char *csv = slurp(path);
    assert_non_null(strstr(csv, "\noneshot-given-l2,oneshot,given,l2,-,"));
    /* the sensitivity cell: within half the largest one-unit step (1/4 of a 4-unit group, over 3 groups) */
    const char *row = strstr(csv, "\noneshot-sensitivity-gm-r0.50,");
    assert_non_null(row);
    free(csv);
    lp_ckpt c;
    snprintf(path, sizeof path, "%s/cells/oneshot-given-l2/pruned.ckpt", lp_test_scratch_path("sg"));
    assert_int_equal(lp_ckpt_load(&c, path), LP_OK);
    assert_string_equal(lp_kv_get(&c.meta, "model.units"), "3,2,6");
    lp_ckpt_free(&c);
    snprintf(path, sizeof path, "%s/cells/oneshot-sensitivity-gm-r0.50/pruned.ckpt", lp_test_scratch_path("sg"));
    assert_int_equal(lp_ckpt_load(&c, path), LP_OK);
    double mean;
    assert_int_equal(lp_kv_get_double(&c.meta, "plan.mean_rate", &mean), LP_OK);
    assert_true(fabs(mean - 0.5) <= 0.5 * 0.25 / 3 + 1e-9);
    assert_string_equal(lp_kv_get(&c.meta, "plan.rule"), "sensitivity");
    lp_ckpt_free(&c);
    /* a resumed sweep with one more sensitivity cell reuses the curves */
    lp_kv_set(&kv, "grid.rate", "0.5,0.25");
    run_sweep(&kv, lp_test_scratch_path("sg"), 0, &sum);
    assert_true(sum.cells_done == 3 && sum.cells_run == 1);
    snprintf(path, sizeof path, "%s/sensitivity/curves.txt", lp_test_scratch_path("sg"));
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec && st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec);
    /* sizes that do not fit: refused before anything is trained */
    lp_kv_set(&kv, "prune.units", "3,2,9");
    lp_sweep_opts o = {.quiet = 1};
    assert_int_equal(lp_sweep_run(&kv, lp_test_scratch_path("sg_bad"), &o, NULL), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "group lstm2: 9 units to keep"));
    snprintf(path, sizeof path, "%s/baseline", lp_test_scratch_path("sg_bad"));
    assert_int_equal(access(path, F_OK), -1);
    lp_kv_free(&kv);
}

static void test_suggest_rule(void **state) {
    (void)state;
    const double rates[] = {0.1, 0.3, 0.5, 0.7};
    const double d1[] = {0.001, 0.004, 0.02, 0.005}; /* a lucky point past the cliff is not suggested */
    assert_true(lp_sensitivity_suggest(rates, d1, 4, 0.01) == 0.3);
    const double d2[] = {0.05, 0, 0, 0};
    assert_true(lp_sensitivity_suggest(rates, d2, 4, 0.01) == 0);
    const double d3[] = {-0.01, 0.0, 0.01, 0.01}; /* <= is within */
    assert_true(lp_sensitivity_suggest(rates, d3, 4, 0.01) == 0.7);
    const double d4[] = {0.0, NAN, 0.0, 0.0};
    assert_true(lp_sensitivity_suggest(rates, d4, 4, 0.01) == 0.1);
}

/* Sensitivity on the sweep's baseline (run1, made by the test before): every entry is the GAP of the
 * model with only that group shrunk. One entry is recomputed independently here. */
static void test_sensitivity(void **state) {
    (void)state;
    char ckpt[600];
    snprintf(ckpt, sizeof ckpt, "%s/baseline/best.ckpt", lp_test_scratch_path("run1"));
    if (access(ckpt, F_OK) != 0) skip();
    lp_sensitivity_opts o;
    lp_sensitivity_opts_default(&o);
    o.ckpt = ckpt;
    o.out_dir = lp_test_scratch_path("sens");
    o.n_rates = 3;
    o.rates[0] = 0.75, o.rates[1] = 0.25, o.rates[2] = 0.5; /* sorted by the run */
    o.max_cost = 0.02; /* GAP points: the cost of a rate is the absolute drop for the video task */
    o.quiet = 1;
    lp_sensitivity_result *r = calloc(1, sizeof *r);
    lp_status s = lp_sensitivity_run(&o, r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(r->n_groups, 3);
    assert_true(r->rates[0] == 0.25 && r->rates[2] == 0.75);
    static const int h[3] = {4, 4, 8};
    for (int g = 0; g < 3; g++) {
        assert_int_equal(r->units[g], h[g]);
        double drops[3];
        for (int i = 0; i < 3; i++) {
            /* k = H − round(r·H), at least 1 */
            int want = h[g] - (int)lround(r->rates[i] * h[g]);
            assert_int_equal(r->kept[g][i], want < 1 ? 1 : want);
            drops[i] = lp_score_get(&r->base, "gap") - lp_score_get(&r->score[g][i], "gap");
        }
        assert_true(r->suggested[g] == lp_sensitivity_suggest(r->rates, drops, 3, o.max_cost));
    }
    /* Independent recomputation of group lstm2 at rate 0.5: gm scores from the weights, keep the 4 best,
     * shrink only that group, evaluate on the validation data the checkpoint names. */
    lp_model mm;
    lp_kv meta;
    lp_kv_init(&meta);
    assert_int_equal(lp_model_load(&mm, ckpt, &meta), LP_OK);
    lp_task *t;
    assert_int_equal(lp_video_task_new(&mm, &meta, &t), LP_OK);
    const lp_unit_group *gr = &t->groups[2];
    int d = lp_criteria_unit_dim(gr->input_dim, gr->units, 0);
    float *u = malloc((size_t)gr->units * (size_t)d * sizeof(float));
    double score[8];
    int kept[4];
    assert_int_equal(lp_criteria_unit_vectors(gr->w_ih->data, gr->w_hh->data, NULL, gr->units, gr->input_dim, u), LP_OK);
    lp_criteria_opts co;
    lp_criteria_opts_default(&co);
    assert_int_equal(lp_criteria_score(&co, u, gr->units, d, score), LP_OK);
    assert_int_equal(lp_criteria_select(score, gr->units, 4, kept), LP_OK);
    int all[LP_MAX_GROUPS][8], *lists[LP_MAX_GROUPS], n_kept[LP_MAX_GROUPS];
    for (int g = 0; g < t->n_groups; g++) {
        for (int j = 0; j < t->groups[g].units; j++) all[g][j] = j;
        lists[g] = g == 2 ? kept : all[g];
        n_kept[g] = g == 2 ? 4 : t->groups[g].units;
    }
    lp_prune_plan sp;
    assert_int_equal(lp_prune_plan_from_kept(t, lists, n_kept, &sp), LP_OK);
    lp_task *small;
    assert_int_equal(lp_surgery_shrink(t, &sp, &small), LP_OK);
    assert_int_equal(small->groups[0].units, 4);
    assert_int_equal(small->groups[2].units, 4);
    char **pats;
    int np;
    assert_int_equal(lp_runcfg_defaults(&meta), LP_OK);
    assert_int_equal(lp_runcfg_patterns(&meta, "valid", &pats, &np), LP_OK);
    lp_batcher_config bc;
    assert_int_equal(lp_runcfg_batcher(&meta, pats, np, 0, &bc), LP_OK);
    lp_eval_result er;
    assert_int_equal(lp_evaluate(lp_video_task_model(small), &bc, 20, NULL, NULL, &er), LP_OK);
    /* the same model on the same data in the same order: the same float sums, the same metric */
    assert_true(er.m.gap == lp_score_get(&r->score[2][1], "gap"));
    lp_runcfg_free_patterns(pats, np);
    lp_prune_plan_free(&sp);
    lp_task_free(small);
    lp_task_free(t);
    lp_kv_free(&meta);
    free(u);
    /* the files */
    static const char *const files[] = {"sens/sensitivity.csv", "sens/sensitivity.md", "sens/suggested.txt",
                                        "sens/sensitivity.gp"};
    for (int i = 0; i < 4; i++) assert_true(exists(lp_test_scratch_path(files[i])));
    int rows;
    char *csv = slurp(lp_test_scratch_path("sens/sensitivity.csv"));
    rows = 0;
    for (char *p = csv; *p; p++) rows += *p == '\n';
    assert_int_equal(rows, 1 + 3 * (1 + 3)); /* header; per group the unpruned row and 3 rates */
    free(csv);
    /* With compensation: the same units kept, the same unpruned score, some pruned scores changed, and the
     * report says so. */
    lp_sensitivity_result *rc = calloc(1, sizeof *rc);
    o.compensate = 1;
    o.out_dir = lp_test_scratch_path("sens_comp");
    s = lp_sensitivity_run(&o, rc);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_true(lp_score_get(&rc->base, "gap") == lp_score_get(&r->base, "gap"));
    int changed = 0;
    for (int g = 0; g < 3; g++)
        for (int i = 0; i < 3; i++) {
            assert_int_equal(rc->kept[g][i], r->kept[g][i]);
            changed += lp_score_get(&rc->score[g][i], "gap") != lp_score_get(&r->score[g][i], "gap");
        }
    assert_true(changed > 0);
    char *md = slurp(lp_test_scratch_path("sens_comp/sensitivity.md"));
    assert_non_null(strstr(md, "gm, mean compensation"));
    free(md);
    free(rc);
    o.compensate = 0;
    /* bad options */
    o.rates[0] = 1.0;
    assert_int_equal(lp_sensitivity_run(&o, r), LP_ERR_ARG);
    free(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cells),
        cmocka_unit_test(test_compat),
        cmocka_unit_test(test_suggest_rule),
        cmocka_unit_test(test_sweep_deterministic_and_resumable),
        cmocka_unit_test(test_sweep_compensate),
        cmocka_unit_test(test_sweep_sensitivity_and_given),
        cmocka_unit_test(test_sensitivity),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
