/* test_ptb_sweep: the language-model experiment as a sweep configuration (`task = lm`), end to end through
 * the binary ($LP_BIN): baseline training, oneshot cells of two methods, an ISS cell fine-tuning the
 * baseline with the group lasso, the results table and plot script, and resuming — the PTB experiment
 * without Python (scripts/ptb.sh runs the full-size configuration, experiments/ptb_small.conf). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/fileio.h"
#include "core/kv.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

static char out_buf[1 << 16];

/* Run "$LP_BIN args" in the scratch directory, output captured into out_buf; returns the exit code. */
static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "OPENBLAS_NUM_THREADS=1", fmt, ap);
    va_end(ap);
    return rc;
}

/* A 2×16 LM, two epochs; oneshot eigen+gm and uniform+l2 at rate 0.5; ISS from the baseline. */
static const char *const config =
    "task = lm\nlm.layers = 2\nlm.units = 16\ndata.dir = ptb\n"
    "train.epochs = 2\ntrain.batch = 4\ntrain.bptt = 10\ntrain.momentum = 0.5\ntrain.seed = 1\ntrain.threads = 1\n"
    "train.test_every = 0\n"
    "prune.stats_batches = 20\nprune.finetune_epochs = 1\nprune.finetune_lr = 0.1\nfinetune.train.decay_after = 1\n"
    "prune.iss_method = subgradient\nprune.iss_from = baseline\nprune.iss_threshold = 0.05\n"
    "iss.train.epochs = 1\niss.train.lr = 0.5\n"
    "prune.latency_batch = 4\nprune.latency_frames = 10\nprune.latency_reps = 1\n"
    "grid.methods = eigen:gm,uniform:l2\ngrid.rate = 0.5\ngrid.iss_lambda = 0.15\nsweep.out = out\n";

static int setup(void **state) {
    (void)state;
    if (lp_test_scratch_make("ptb_sweep") != 0) return -1;
    if (lp_mkdirs(lp_test_scratch_path("ptb")) != LP_OK) return -1;
    lp_test_markov_write_ptb(lp_test_scratch_path("ptb"), 1600, 5);
    return lp_file_write_all(lp_test_scratch_path("sweep.conf"), config, strlen(config)) == LP_OK ? 0 : -1;
}

/* The value of column `col` in the row of results.csv whose first field is `cell` (into buf). */
static const char *field(const char *csv, const char *cell, const char *col, char *buf, size_t n) {
    const char *nl = strchr(csv, '\n');
    int want = -1, i = 0;
    for (const char *p = csv; p < nl; i++) {
        size_t len = strcspn(p, ",\n");
        if (strlen(col) == len && !strncmp(p, col, len)) want = i;
        p += len + (p[len] == ',');
    }
    assert_true(want >= 0);
    char key[80];
    snprintf(key, sizeof key, "\n%s,", cell);
    const char *row = strstr(csv, key);
    assert_non_null(row);
    row++;
    for (i = 0; i < want; i++) row += strcspn(row, ",\n") + 1;
    size_t len = strcspn(row, ",\n");
    snprintf(buf, n, "%.*s", (int)len, row);
    return buf;
}

static char *read_text(const char *name) {
    char *text;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path(name), &text, &len), LP_OK);
    return text;
}

/* Cells run one at a time (--max-cells 1 stops like a killed sweep), then the rest; the table has the
 * LM's columns, the pruned models are smaller, fine-tuning helps, ISS removed units. */
static void test_sweep_runs_and_resumes(void **state) {
    (void)state;
    assert_int_equal(run("sweep sweep.conf --max-cells 1 --quiet"), 0);
    assert_non_null(strstr(out_buf, "1 of 3 cells finished"));
    assert_int_equal(run("sweep sweep.conf --quiet"), 0);
    assert_non_null(strstr(out_buf, "3 of 3 cells finished (2 run now, 1 were finished already)"));
    char *csv = read_text("out/results.csv");
    assert_non_null(strstr(csv, "flops_per_word,checkpoint_bytes,ppl_pruned,ppl_finetuned,compensate"));
    char a[64], b[64], c[64];
    const double base = atof(field(csv, "baseline", "ppl_finetuned", a, sizeof a));
    assert_true(base > 1 && base < 15); /* 30 words: a trained model is far better than guessing them */
    const char *cells[] = {"oneshot-eigen-gm-r0.50", "oneshot-uniform-l2-r0.50"};
    for (int i = 0; i < 2; i++) {
        assert_string_equal(field(csv, cells[i], "mean_rate", a, sizeof a), "0.5000"); /* 16 of 32 units */
        assert_true(atol(field(csv, cells[i], "parameters", a, sizeof a)) < atol(field(csv, "baseline", "parameters", b, sizeof b)));
        const double pruned = atof(field(csv, cells[i], "ppl_pruned", a, sizeof a));
        const double tuned = atof(field(csv, cells[i], "ppl_finetuned", b, sizeof b));
        assert_true(tuned > 1 && tuned < pruned); /* one epoch of fine-tuning recovers part of the loss */
    }
    assert_string_equal(field(csv, "iss-lambda0.15", "schedule", a, sizeof a), "iss");
    assert_true(atof(field(csv, "iss-lambda0.15", "mean_rate", c, sizeof c)) > 0); /* units went */
    char *md = read_text("out/results.md");
    assert_non_null(strstr(md, "| ppl pruned | ppl fine-tuned |"));
    char *gp = read_text("out/plots.gp");
    assert_non_null(strstr(gp, "set output 'ppl_vs_rate.png'"));
    /* a rerun finds everything finished and writes the same table, timing columns aside */
    assert_int_equal(run("sweep sweep.conf --quiet"), 0);
    assert_non_null(strstr(out_buf, "(0 run now, 3 were finished already)"));
    char *again = read_text("out/results.csv");
    assert_string_equal(field(again, "iss-lambda0.15", "ppl_finetuned", a, sizeof a),
                        field(csv, "iss-lambda0.15", "ppl_finetuned", b, sizeof b));
    free(again);
    free(gp);
    free(md);
    free(csv);
}

/* A sweep directory remembers its configuration: another baseline setting is refused. */
static void test_changed_config_is_refused(void **state) {
    (void)state;
    assert_int_equal(run("sweep sweep.conf --set lm.units=12 --quiet"), 1);
    assert_non_null(strstr(out_buf, "holds a sweep with another configuration (lm.units"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sweep_runs_and_resumes),
        cmocka_unit_test(test_changed_config_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
