/* test_train: the one trainer (train/trainer.h) end to end on both kinds of task — the video classifier
 * on a small synthetic YouTube-8M-format set and the word-level LM on a tiny generated PTB corpus:
 * learning and the run directory's formats, exact resume (after an epoch and after a mid-epoch
 * checkpoint; for the LM with its carried recurrent state), logs cut back on resume, best.ckpt selection
 * (GAP higher is better, perplexity lower is better), the numeric guard, the hooks, the LM's per-epoch
 * learning-rate schedule, the giant-spike watch, fine-tuning from a checkpoint, the bias
 * parametrisation and checkpoint/config mismatches.
 *
 * Bit-for-bit comparisons hold at one thread (the Makefile runs tests with OPENBLAS_NUM_THREADS=1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/log.h"
#include "lm/lm.h"
#include "lm/ptb.h"
#include "model/evaluate.h"
#include "model/runcfg.h"
#include "tasks/lm_task.h"
#include "tasks/video_task.h"
#include "train/trainer.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"
#include "tests/common/yt8m_set.h"

/* 240 short videos, 6 classes, small features: a few seconds of training learns them. */
static const lp_test_yt8m_set set = {.seed = 7, .videos = 240, .frames_max = 16, .rgb = 48, .audio = 16,
                                     .shuffle_buffer = 64};

#define VIDEO_STEPS_PER_EPOCH 11 /* the training split at train.batch 16 */

/* The synthetic video set in <scratch>/data and the tiny Markov corpus (400 training sentences) in
 * <scratch>/ptb. */
static int setup(void **state) {
    (void)state;
    if (lp_test_yt8m_setup("train", &set) != 0) return -1;
    const char *ptb = lp_test_scratch_path("ptb");
    if (lp_mkdirs(ptb) != LP_OK) return -1;
    lp_test_markov_write_ptb(ptb, 400, 1);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------------- */

/* "<scratch>/<run>" into buf (lp_train_opts.run_dir must outlive lp_test_scratch_path's ring). */
static const char *run_dir(const char *run, char *buf, size_t n) {
    snprintf(buf, n, "%s/%s", lp_test_scratch_dir(), run);
    return buf;
}

/* "<scratch>/<run>/<file>", in one of 4 static buffers used in turn. */
static const char *run_path(const char *run, const char *file) {
    static char p[4][700];
    static int which;
    which = (which + 1) % 4;
    snprintf(p[which], sizeof p[which], "%s/%s/%s", lp_test_scratch_dir(), run, file);
    return p[which];
}

static void train_ok(const lp_task_kind *kind, lp_kv *cfg, const lp_train_opts *o, lp_train_result *r) {
    lp_status s = lp_train(kind, cfg, o, r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
}

/* Append one line to a file (a row a crashed run wrote after its last checkpoint). */
static void append_line(const char *path, const char *line) {
    FILE *f = fopen(path, "a");
    assert_non_null(f);
    fprintf(f, "%s\n", line);
    fclose(f);
}

/* A TSV log read whole: the header's column names and every row's cells. */
#define TSV_COLS 16
typedef struct {
    char *text;
    int ncols, nrows;
    char *head[TSV_COLS];
    char *(*row)[TSV_COLS];
} tsv;

static void tsv_read(const char *path, tsv *t) {
    size_t len;
    memset(t, 0, sizeof *t);
    assert_int_equal(lp_file_read_all(path, &t->text, &len), LP_OK);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += t->text[i] == '\n';
    assert_true(len > 0 && t->text[len - 1] == '\n'); /* every row is complete */
    t->row = calloc((size_t)lines, sizeof *t->row);
    assert_non_null(t->row);
    int r = -1;
    for (char *line = t->text; *line; r++) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        char **dst = r < 0 ? t->head : t->row[r];
        int c = 0;
        for (char *p = line;;) {
            assert_true(c < TSV_COLS);
            dst[c++] = p;
            char *tab = strchr(p, '\t');
            if (!tab) break;
            *tab = '\0';
            p = tab + 1;
        }
        if (r < 0) t->ncols = c;
        else assert_int_equal(c, t->ncols);
        line = nl + 1;
    }
    t->nrows = r;
}

static void tsv_free(tsv *t) {
    free(t->text);
    free(t->row);
}

static int tsv_col(const tsv *t, const char *name) {
    for (int c = 0; c < t->ncols; c++)
        if (!strcmp(t->head[c], name)) return c;
    fprintf(stderr, "no column '%s'\n", name);
    fail();
    return -1;
}

static double tsv_num(const tsv *t, int r, const char *name) { return strtod(t->row[r][tsv_col(t, name)], NULL); }

/* The header line, tab-joined. */
static void tsv_header(const tsv *t, char *out, size_t n) {
    size_t o = 0;
    out[0] = '\0';
    for (int c = 0; c < t->ncols; c++) o += (size_t)snprintf(out + o, n - o, c ? "\t%s" : "%s", t->head[c]);
}

/* Two logs have the same rows, cell for cell, in the named columns (the timing columns vary). */
static void assert_same_columns(const char *path_a, const char *path_b, const char *const *cols, int n) {
    tsv a, b;
    tsv_read(path_a, &a);
    tsv_read(path_b, &b);
    assert_int_equal(a.nrows, b.nrows);
    for (int i = 0; i < n; i++) {
        int ca = tsv_col(&a, cols[i]), cb = tsv_col(&b, cols[i]);
        for (int r = 0; r < a.nrows; r++)
            if (strcmp(a.row[r][ca], b.row[r][cb])) {
                fprintf(stderr, "%s row %d column %s: %s vs %s\n", path_b, r + 1, cols[i], a.row[r][ca], b.row[r][cb]);
                fail();
            }
    }
    tsv_free(&a);
    tsv_free(&b);
}

static const char *const train_cols[] = {"step", "epoch", "batch", "loss", "grad_norm", "lr"};
static const char *const video_valid_cols[] = {"epoch", "step", "loss", "gap", "map", "hit1", "perr"};
static const char *const lm_valid_cols[] = {"epoch", "step", "ppl", "nll", "test_ppl", "test_nll"};

/* Every tensor of checkpoint a is in b with the same shape and bytes, and b has no other: parameters,
 * optimizer moments and (mid-epoch) the carried state. 0 otherwise, naming the first difference. */
static int same_tensors(const char *a, const char *b) {
    lp_ckpt ca, cb;
    assert_int_equal(lp_ckpt_load(&ca, a), LP_OK);
    assert_int_equal(lp_ckpt_load(&cb, b), LP_OK);
    int eq = ca.n == cb.n;
    for (int i = 0; eq && i < ca.n; i++) {
        const lp_ckpt_tensor *t = lp_ckpt_find(&cb, ca.t[i].name);
        eq = t && t->numel == ca.t[i].numel && memcmp(t->data, ca.t[i].data, t->numel * sizeof(float)) == 0;
        if (!eq) fprintf(stderr, "tensor %s differs\n", ca.t[i].name);
    }
    lp_ckpt_free(&ca);
    lp_ckpt_free(&cb);
    return eq;
}

/* A checkpoint's meta value (copied into buf). */
static const char *ckpt_meta(const char *path, const char *key, char *buf, size_t n) {
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, path), LP_OK);
    const char *v = lp_kv_get(&c.meta, key);
    if (!v) fprintf(stderr, "%s: no key %s\n", path, key);
    assert_non_null(v);
    snprintf(buf, n, "%s", v);
    lp_ckpt_free(&c);
    return buf;
}

static long long ckpt_int(const char *path, const char *key) {
    char v[64];
    return atoll(ckpt_meta(path, key, v, sizeof v));
}

/* What the library said through the log sink (core/log.h) while a probe was set. */
typedef struct {
    int n[3];            /* messages per level */
    char warn[4][400];   /* the first warnings */
    char info[4][200];   /* the first notices */
} log_probe;

static void record_log(void *user, lp_log_level level, const char *msg) {
    log_probe *p = user;
    if (level == LP_LOG_WARN && p->n[level] < 4) snprintf(p->warn[p->n[level]], sizeof p->warn[0], "%s", msg);
    if (level == LP_LOG_INFO && p->n[level] < 4) snprintf(p->info[p->n[level]], sizeof p->info[0], "%s", msg);
    p->n[level]++;
}

/* ---- the two kinds' configurations -------------------------------------------------------------- */

/* Video: paper model, width 16, Adam at lr 0.01, train.log_every 1 (the default). */
static void video_cfg(lp_kv *kv, int epochs) {
    lp_test_yt8m_cfg(kv, &set, LP_TEST_YT8M_VALID, epochs, 3);
    lp_kv_set(kv, "model.dropout", "0.1");
    assert_int_equal(lp_runcfg_defaults(kv), LP_OK);
    assert_int_equal(lp_model_default_kv(kv, LP_MODEL_PAPER, 64, 16, 1, 6, 2, 0.1f), LP_OK);
}

/* LM: 2 layers of 12 and 10 units, dropout (so the dropout generator's state matters on resume), SGD with
 * momentum (so the optimizer buffer matters), lr 0.5 halved from epoch 2 on, every step logged. */
static void lm_cfg(lp_kv *kv, int epochs) {
    lp_kv_init(kv);
    assert_int_equal(lp_kv_set(kv, "data.dir", lp_test_scratch_path("ptb")), LP_OK);
    assert_int_equal(lp_kv_set(kv, "lm.layers", "2"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "lm.units", "12,10"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "lm.dropout", "0.3"), LP_OK);
    assert_int_equal(lp_kv_set_int(kv, "train.epochs", epochs), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.batch", "4"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.bptt", "8"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.lr", "0.5"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.decay_after", "1"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.momentum", "0.5"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.log_every", "1"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.seed", "7"), LP_OK);
}

/* Training windows per LM epoch at lm_cfg's batch 4 and bptt 8: only full windows, (n/4 − 1) / 8. */
static int lm_windows(void) {
    lp_ptb_corpus c;
    assert_int_equal(lp_ptb_corpus_load(&c, lp_test_scratch_path("ptb"), 0), LP_OK);
    int w = (int)((c.n[LP_PTB_TRAIN] / 4 - 1) / 8);
    lp_ptb_corpus_free(&c);
    return w;
}

/* The uninterrupted reference runs the resume tests compare with, made once: video 4 epochs in
 * <scratch>/v_full, LM 3 epochs in <scratch>/lm_full. */
static void video_ref(void) {
    static int done;
    if (done) return;
    char dir[600];
    lp_kv cfg;
    lp_train_result r;
    video_cfg(&cfg, 4);
    lp_train_opts o = {.run_dir = run_dir("v_full", dir, sizeof dir), .quiet = 1};
    train_ok(&lp_video_task_kind, &cfg, &o, &r);
    assert_int_equal(r.epochs_done, 4);
    assert_int_equal(r.steps, 4 * VIDEO_STEPS_PER_EPOCH);
    lp_kv_free(&cfg);
    done = 1;
}

static lp_train_result lm_ref_result;

static void lm_ref(void) {
    static int done;
    if (done) return;
    char dir[600];
    lp_kv cfg;
    lp_task_kind lm = lp_lm_task_kind(NULL);
    lm_cfg(&cfg, 3);
    lp_train_opts o = {.run_dir = run_dir("lm_full", dir, sizeof dir), .quiet = 1};
    train_ok(&lm, &cfg, &o, &lm_ref_result);
    assert_int_equal(lm_ref_result.epochs_done, 3);
    assert_int_equal(lm_ref_result.steps, 3 * lm_windows());
    lp_kv_free(&cfg);
    done = 1;
}

/* ---- video: learning and the run directory ----------------------------------------------------- */

static lp_status eval_ckpt(const char *ckpt, lp_eval_result *r) {
    lp_model m;
    lp_kv meta;
    lp_kv_init(&meta);
    LP_TRY(lp_model_load(&m, ckpt, &meta));
    char **pats;
    int n;
    lp_batcher_config bc;
    LP_TRY(lp_runcfg_patterns(&meta, "valid", &pats, &n));
    lp_status s = lp_runcfg_batcher(&meta, pats, n, 0, &bc);
    if (s == LP_OK) s = lp_evaluate(&m, &bc, 20, NULL, NULL, r);
    lp_runcfg_free_patterns(pats, n);
    lp_model_free(&m);
    lp_kv_free(&meta);
    return s;
}

static void test_video_learns(void **state) {
    (void)state;
    lp_kv cfg;
    video_cfg(&cfg, 1);
    /* Untrained reference: the initial weights of the same seed, saved with the same config. */
    lp_model m0;
    assert_int_equal(lp_model_init_kv(&m0, &cfg, 3), LP_OK);
    lp_ckpt c0;
    lp_ckpt_init(&c0);
    assert_int_equal(lp_kv_merge(&c0.meta, &cfg), LP_OK);
    assert_int_equal(lp_model_add_to_ckpt(&m0, &c0), LP_OK);
    assert_int_equal(lp_ckpt_save(&c0, lp_test_scratch_path("untrained.ckpt")), LP_OK);
    lp_ckpt_free(&c0);
    lp_model_free(&m0);
    lp_kv_free(&cfg);
    video_cfg(&cfg, 12);
    char dir[600];
    lp_train_opts o = {.run_dir = run_dir("learn", dir, sizeof dir), .quiet = 1};
    lp_train_result r1;
    train_ok(&lp_video_task_kind, &cfg, &o, &r1);
    assert_int_equal(r1.epochs_done, 12);
    assert_int_equal(r1.steps, 12 * VIDEO_STEPS_PER_EPOCH);
    lp_eval_result e0, e1;
    assert_int_equal(eval_ckpt(lp_test_scratch_path("untrained.ckpt"), &e0), LP_OK);
    assert_int_equal(eval_ckpt(run_path("learn", "last.ckpt"), &e1), LP_OK);
    fprintf(stderr, "untrained: loss %.4f GAP %.4f; trained: loss %.4f GAP %.4f (best %.4f, epoch %lld)\n", e0.loss,
            e0.m.gap, e1.loss, e1.m.gap, lp_score_get(&r1.best, "gap"), (long long)r1.best_epoch);
    /* The planted structure is strong: training must lower the loss and raise GAP by a wide margin. */
    assert_true(e1.loss < 0.8 * e0.loss);
    assert_true(e1.m.gap > e0.m.gap + 0.2);
    /* The last validation score is that of the final weights: the same evaluation, the same numbers. */
    assert_int_equal(r1.last_valid.n, 5);
    assert_true(lp_score_get(&r1.last_valid, "gap") == e1.m.gap);
    assert_true(lp_score_get(&r1.last_valid, "loss") == e1.loss);
    assert_true(r1.last_valid.higher_better == 1 && !strcmp(r1.last_valid.name[r1.last_valid.primary], "gap"));
    assert_int_equal(r1.last_test.n, 0); /* video: the test split is not scored while training */

    /* The run directory's formats: train.tsv one row per step (train.log_every 1), valid.tsv one row per
     * epoch with the video figures and no test columns. */
    tsv t;
    char head[512];
    tsv_read(run_path("learn", "train.tsv"), &t);
    tsv_header(&t, head, sizeof head);
    assert_string_equal(head, "step\tepoch\tbatch\tloss\tgrad_norm\tlr\texamples_per_s\telapsed_s");
    assert_int_equal(t.nrows, 12 * VIDEO_STEPS_PER_EPOCH);
    for (int r = 0; r < t.nrows; r++) {
        assert_int_equal((int)tsv_num(&t, r, "step"), r + 1);
        assert_int_equal((int)tsv_num(&t, r, "epoch"), r / VIDEO_STEPS_PER_EPOCH + 1);
        assert_int_equal((int)tsv_num(&t, r, "batch"), r % VIDEO_STEPS_PER_EPOCH + 1);
        /* train.lr_decay 1: constant; "%.8g" of the float 0.01 is within 5e-9 relative of it */
        assert_true(fabs(tsv_num(&t, r, "lr") / (double)0.01f - 1) < 1e-8);
    }
    tsv_free(&t);
    tsv_read(run_path("learn", "valid.tsv"), &t);
    tsv_header(&t, head, sizeof head);
    assert_string_equal(head, "epoch\tstep\tloss\tgap\tmap\thit1\tperr\tseconds");
    assert_int_equal(t.nrows, 12);
    int best = 0;
    for (int r = 0; r < t.nrows; r++) {
        assert_int_equal((int)tsv_num(&t, r, "epoch"), r + 1);
        assert_int_equal((int)tsv_num(&t, r, "step"), (r + 1) * VIDEO_STEPS_PER_EPOCH);
        if (tsv_num(&t, r, "gap") > tsv_num(&t, best, "gap")) best = r;
    }
    /* the printed values are "%.6f": within 5e-7 of the doubles */
    assert_true(fabs(tsv_num(&t, 11, "gap") - e1.m.gap) <= 5e-7);
    assert_true(fabs(tsv_num(&t, best, "gap") - lp_score_get(&r1.best, "gap")) <= 5e-7);
    tsv_free(&t);
    assert_int_equal(access(run_path("learn", "best.ckpt"), R_OK), 0);
    assert_int_equal(access(run_path("learn", "config.txt"), R_OK), 0);
    lp_kv_free(&cfg);
}

/* Save → load gives identical predictions (bit for bit). */
static void test_save_load_identical_predictions(void **state) {
    (void)state;
    lp_kv cfg;
    video_cfg(&cfg, 1);
    lp_model m, back;
    assert_int_equal(lp_model_init_kv(&m, &cfg, 5), LP_OK);
    lp_ckpt c;
    lp_ckpt_init(&c);
    assert_int_equal(lp_model_add_to_ckpt(&m, &c), LP_OK);
    assert_int_equal(lp_ckpt_save(&c, lp_test_scratch_path("m.ckpt")), LP_OK);
    lp_ckpt_free(&c);
    assert_int_equal(lp_model_load(&back, lp_test_scratch_path("m.ckpt"), NULL), LP_OK);
    assert_int_equal(back.params->numel, m.params->numel);
    assert_memory_equal(back.params->data, m.params->data, m.params->numel * sizeof(float));
    lp_eval_result a, b;
    char **pats;
    int n;
    lp_batcher_config bc;
    assert_int_equal(lp_runcfg_patterns(&cfg, "valid", &pats, &n), LP_OK);
    assert_int_equal(lp_runcfg_batcher(&cfg, pats, n, 0, &bc), LP_OK);
    assert_int_equal(lp_evaluate(&m, &bc, 20, NULL, NULL, &a), LP_OK);
    assert_int_equal(lp_evaluate(&back, &bc, 20, NULL, NULL, &b), LP_OK);
    assert_true(a.loss == b.loss && a.m.gap == b.m.gap && a.m.map == b.m.map);
    lp_runcfg_free_patterns(pats, n);
    lp_model_free(&m);
    lp_model_free(&back);
    lp_kv_free(&cfg);
}

/* ---- video: exact resume ------------------------------------------------------------------------ */

/* A run interrupted after epoch 2 and resumed ends with the same weights and optimizer state as an
 * uninterrupted run, byte for byte; rows a crash wrote after the checkpoint are dropped from the logs,
 * which then equal the uninterrupted run's (timings aside). */
static void test_video_resume_after_epoch(void **state) {
    (void)state;
    video_ref();
    lp_kv cfg;
    lp_train_result r;
    char dir[600];
    video_cfg(&cfg, 4);
    lp_train_opts o = {.run_dir = run_dir("v_split", dir, sizeof dir), .quiet = 1, .stop_after_epochs = 2};
    train_ok(&lp_video_task_kind, &cfg, &o, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 2);
    assert_int_equal(r.steps, 2 * VIDEO_STEPS_PER_EPOCH);
    assert_int_equal(ckpt_int(run_path("v_split", "last.ckpt"), "state.epoch"), 2);
    assert_int_equal(ckpt_int(run_path("v_split", "last.ckpt"), "state.batch"), 0);
    assert_false(same_tensors(run_path("v_full", "last.ckpt"), run_path("v_split", "last.ckpt")));
    /* a crash inside epoch 3 after it logged a step, and after a valid.tsv row of epoch 3 */
    append_line(run_path("v_split", "train.tsv"), "23\t3\t1\t9.9\t9.9\t0.01\t1\t1");
    append_line(run_path("v_split", "valid.tsv"), "3\t33\t9.9\t0.5\t0.5\t0.5\t0.5\t1");

    lp_kv_init(&cfg); /* the resumed run takes everything from the run directory */
    lp_train_opts ro = {.run_dir = dir, .quiet = 1, .resume = 1};
    train_ok(&lp_video_task_kind, &cfg, &ro, &r);
    assert_int_equal(r.epochs_done, 4);
    assert_int_equal(r.steps, 4 * VIDEO_STEPS_PER_EPOCH);
    assert_true(same_tensors(run_path("v_full", "last.ckpt"), run_path("v_split", "last.ckpt")));
    assert_true(same_tensors(run_path("v_full", "best.ckpt"), run_path("v_split", "best.ckpt")));
    assert_same_columns(run_path("v_full", "train.tsv"), run_path("v_split", "train.tsv"), train_cols, 6);
    assert_same_columns(run_path("v_full", "valid.tsv"), run_path("v_split", "valid.tsv"), video_valid_cols, 7);
    /* Resuming a finished run is a clear error. */
    lp_status s = lp_train(&lp_video_task_kind, &cfg, &ro, &r);
    if (s != LP_ERR_ARG) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "already trained"));
    lp_kv_free(&cfg);
}

/* Mid-epoch checkpoints (train.save_every 4, 11 steps per epoch): interrupted right after the 2nd save
 * (step 8, inside epoch 1), resumed and interrupted again after 3 more (step 20, inside epoch 2), then
 * resumed to the end, the run ends with the uninterrupted run's weights, and its logs are the same. */
static void test_video_resume_mid_epoch(void **state) {
    (void)state;
    video_ref();
    lp_kv cfg;
    lp_train_result r;
    char dir[600];
    video_cfg(&cfg, 4);
    lp_kv_set(&cfg, "train.save_every", "4");
    lp_train_opts o = {.run_dir = run_dir("v_mid", dir, sizeof dir), .quiet = 1, .stop_after_saves = 2};
    train_ok(&lp_video_task_kind, &cfg, &o, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.steps, 8);
    assert_int_equal(r.epochs_done, 0);
    const char *last = run_path("v_mid", "last.ckpt");
    assert_int_equal(ckpt_int(last, "state.step"), 8);
    assert_int_equal(ckpt_int(last, "state.epoch"), 0);
    assert_int_equal(ckpt_int(last, "state.batch"), 8);
    char v[64];
    assert_string_equal(ckpt_meta(last, "state.best_gap", v, sizeof v), "-1"); /* no validation yet */
    assert_int_equal(access(run_path("v_mid", "valid.tsv"), F_OK), 0); /* header only */
    tsv t;
    tsv_read(run_path("v_mid", "train.tsv"), &t);
    assert_int_equal(t.nrows, 8); /* stopped right after the save: nothing logged past it */
    tsv_free(&t);
    append_line(run_path("v_mid", "train.tsv"), "9\t1\t9\t9.9\t9.9\t0.01\t1\t1");

    lp_kv_init(&cfg);
    lp_train_opts ro = {.run_dir = dir, .quiet = 1, .resume = 1, .stop_after_saves = 3};
    train_ok(&lp_video_task_kind, &cfg, &ro, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.steps, 20); /* saves at steps 12, 16, 20 (the end of epoch 1 is not a mid-epoch save) */
    assert_int_equal(r.epochs_done, 1);
    assert_int_equal(ckpt_int(last, "state.epoch"), 1);
    assert_int_equal(ckpt_int(last, "state.batch"), 20 - VIDEO_STEPS_PER_EPOCH);

    lp_kv_init(&cfg);
    ro.stop_after_saves = 0;
    train_ok(&lp_video_task_kind, &cfg, &ro, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 4);
    assert_true(same_tensors(run_path("v_full", "last.ckpt"), last));
    assert_true(same_tensors(run_path("v_full", "best.ckpt"), run_path("v_mid", "best.ckpt")));
    assert_same_columns(run_path("v_full", "train.tsv"), run_path("v_mid", "train.tsv"), train_cols, 6);
    assert_same_columns(run_path("v_full", "valid.tsv"), run_path("v_mid", "valid.tsv"), video_valid_cols, 7);

    /* A save on an epoch's last step (train.save_every 11): the run stops before validating the epoch,
     * last.ckpt is at (epoch 0, batch 11), and the resume validates it and goes on. */
    video_cfg(&cfg, 4);
    lp_kv_set(&cfg, "train.save_every", "11");
    lp_train_opts oe = {.run_dir = run_dir("v_mid_end", dir, sizeof dir), .quiet = 1, .stop_after_saves = 1};
    train_ok(&lp_video_task_kind, &cfg, &oe, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.steps, VIDEO_STEPS_PER_EPOCH);
    assert_int_equal(r.epochs_done, 0);
    assert_int_equal(ckpt_int(run_path("v_mid_end", "last.ckpt"), "state.epoch"), 0);
    assert_int_equal(ckpt_int(run_path("v_mid_end", "last.ckpt"), "state.batch"), VIDEO_STEPS_PER_EPOCH);
    tsv_read(run_path("v_mid_end", "valid.tsv"), &t);
    assert_int_equal(t.nrows, 0);
    tsv_free(&t);
    lp_kv_init(&cfg);
    lp_train_opts re = {.run_dir = dir, .quiet = 1, .resume = 1};
    train_ok(&lp_video_task_kind, &cfg, &re, &r);
    lp_kv_free(&cfg);
    assert_true(same_tensors(run_path("v_full", "last.ckpt"), run_path("v_mid_end", "last.ckpt")));
    assert_same_columns(run_path("v_full", "valid.tsv"), run_path("v_mid_end", "valid.tsv"), video_valid_cols, 7);
}

/* A run that stops between writing best.ckpt and last.ckpt loses no best epoch: best.ckpt is written
 * first, so last.ckpt still holds the epoch before, and the resumed run redoes the epoch. The stop is a
 * failing best.ckpt write in epoch 3 (a directory in its place), and that epoch must improve on the best. */
static void test_stop_between_checkpoints(void **state) {
    (void)state;
    video_ref();
    lp_kv cfg;
    lp_train_result r;
    char dir[600], best[700];
    video_cfg(&cfg, 4);
    lp_train_opts o = {.run_dir = run_dir("v_bsplit", dir, sizeof dir), .quiet = 1, .stop_after_epochs = 2};
    train_ok(&lp_video_task_kind, &cfg, &o, &r);
    lp_kv_free(&cfg);

    snprintf(best, sizeof best, "%s/best.ckpt", dir);
    assert_int_equal(lp_test_block_file(best), 0);
    lp_kv_init(&cfg);
    lp_train_opts ro = {.run_dir = dir, .quiet = 1, .resume = 1};
    lp_status s = lp_train(&lp_video_task_kind, &cfg, &ro, &r);
    assert_int_equal(s, LP_ERR_IO); /* epoch 3 improved, and its best.ckpt could not be written */
    assert_non_null(strstr(lp_last_error(), "best.ckpt")); /* the error names the file */
    assert_int_equal(ckpt_int(run_path("v_bsplit", "last.ckpt"), "state.epoch"), 2); /* not past the lost best */

    assert_int_equal(lp_test_unblock_file(best), 0);
    lp_kv_free(&cfg);
    lp_kv_init(&cfg);
    train_ok(&lp_video_task_kind, &cfg, &ro, &r);
    assert_int_equal(r.epochs_done, 4);
    assert_true(same_tensors(run_path("v_full", "best.ckpt"), run_path("v_bsplit", "best.ckpt")));
    assert_true(same_tensors(run_path("v_full", "last.ckpt"), run_path("v_bsplit", "last.ckpt")));
    assert_same_columns(run_path("v_full", "valid.tsv"), run_path("v_bsplit", "valid.tsv"), video_valid_cols, 7);
    lp_kv_free(&cfg);
}

/* ---- best.ckpt: the epoch with the best primary figure, in the task's direction ------------------ */

/* After the run's last step, every parameter is negated: the last epoch's validation is far worse than
 * the epochs before, so neither "the last epoch" nor the wrong direction selects the best one. */
static lp_status wreck_at_end(void *user, lp_task *t, int64_t step) {
    if (step == *(const int64_t *)user)
        for (size_t i = 0; i < t->params->numel; i++) t->params->data[i] = -t->params->data[i];
    return LP_OK;
}

/* Train the run cfg describes (last_step steps in all) with the wreck after its last step, then check that
 * best.ckpt, r.best and r.best_epoch are the epoch valid.tsv shows best by `primary` (higher_better says
 * which way), that this is not the last (wrecked, worst) epoch, and that best.ckpt holds that epoch's
 * weights: its score, computed afresh by `rescore`, is the row's ("%.6f": within 5e-7). */
typedef double (*rescore_fn)(const char *ckpt);

static void check_best_selection(const lp_task_kind *kind, lp_kv *cfg, const char *run, int64_t last_step,
                                 const char *primary, int higher_better, rescore_fn rescore) {
    char dir[600];
    lp_train_result r;
    int64_t at = last_step;
    lp_train_opts o = {.run_dir = run_dir(run, dir, sizeof dir), .quiet = 1};
    o.hooks.user = &at;
    o.hooks.after_update = wreck_at_end;
    train_ok(kind, cfg, &o, &r);
    assert_int_equal(r.steps, last_step);
    tsv t;
    tsv_read(run_path(run, "valid.tsv"), &t);
    const int n = t.nrows;
    int best = 0, worst = 0;
    for (int i = 0; i < n; i++) {
        const double x = tsv_num(&t, i, primary), b = tsv_num(&t, best, primary), w = tsv_num(&t, worst, primary);
        if (higher_better ? x > b : x < b) best = i;
        if (higher_better ? x < w : x > w) worst = i;
        fprintf(stderr, "%s epoch %d: %s %s\n", run, i + 1, primary, t.row[i][tsv_col(&t, primary)]);
    }
    assert_true(best != n - 1 && best != worst);
    assert_int_equal(worst, n - 1); /* the wreck worked */
    assert_int_equal(r.best_epoch, best + 1);
    assert_int_equal(r.best.higher_better, higher_better);
    assert_true(fabs(lp_score_primary(&r.best) - tsv_num(&t, best, primary)) <= 5e-7); /* "%.6f" */
    assert_true(fabs(lp_score_primary(&r.last_valid) - tsv_num(&t, n - 1, primary)) <= 5e-7);
    const char *bc = run_path(run, "best.ckpt");
    assert_int_equal(ckpt_int(bc, "state.epoch"), best + 1);
    assert_int_equal(ckpt_int(bc, "state.best_epoch"), best + 1);
    assert_int_equal(ckpt_int(bc, "state.step"), (long long)tsv_num(&t, best, "step"));
    const double x = rescore(bc);
    fprintf(stderr, "%s best.ckpt rescored: %s %.6f (valid.tsv %s)\n", run, primary, x,
            t.row[best][tsv_col(&t, primary)]);
    assert_true(fabs(x - tsv_num(&t, best, primary)) <= 5e-7 + 1e-9 * fabs(x));
    tsv_free(&t);
}

static double video_rescore(const char *ckpt) {
    lp_task *t;
    lp_score sc;
    assert_int_equal(lp_video_task_load(ckpt, NULL, &t), LP_OK);
    assert_int_equal(lp_task_score(t, LP_SPLIT_VALID, &sc), LP_OK);
    lp_task_free(t);
    return lp_score_get(&sc, "gap");
}

/* The LM's validation perplexity with the run's eval_batch 20 and window = bptt 8. */
static double lm_rescore(const char *ckpt) {
    lp_lm m;
    lp_ptb_corpus c;
    lp_lm_eval_result e;
    assert_int_equal(lp_lm_load(&m, ckpt, NULL), LP_OK);
    assert_int_equal(lp_ptb_corpus_load(&c, lp_test_scratch_path("ptb"), 0), LP_OK);
    assert_int_equal(lp_lm_evaluate(&m, c.ids[LP_PTB_VALID], c.n[LP_PTB_VALID], 20, 8, NULL, &e), LP_OK);
    lp_ptb_corpus_free(&c);
    lp_lm_free(&m);
    return e.ppl;
}

static void test_best_checkpoint_video_gap_higher(void **state) {
    (void)state;
    lp_kv cfg;
    video_cfg(&cfg, 4);
    check_best_selection(&lp_video_task_kind, &cfg, "v_best", 4 * VIDEO_STEPS_PER_EPOCH, "gap", 1, video_rescore);
    lp_kv_free(&cfg);
}

static void test_best_checkpoint_lm_ppl_lower(void **state) {
    (void)state;
    lp_kv cfg;
    lm_cfg(&cfg, 3);
    lp_task_kind lm = lp_lm_task_kind(NULL);
    check_best_selection(&lm, &cfg, "lm_best", 3 * lm_windows(), "ppl", 0, lm_rescore);
    lp_kv_free(&cfg);
}

/* ---- the numeric guard -------------------------------------------------------------------------- */

/* A NaN gradient stops training with a clear message; the last good checkpoint stays intact. */
static lp_status poison(void *user, lp_task *t, int64_t step, double *extra) {
    (void)extra;
    if (step == *(const int64_t *)user) t->params->grad[3] = NAN;
    return LP_OK;
}

static void assert_finite_ckpt(const char *path) {
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, path), LP_OK);
    for (int i = 0; i < c.n; i++)
        for (size_t j = 0; j < c.t[i].numel; j++) assert_true(isfinite(c.t[i].data[j]));
    lp_ckpt_free(&c);
}

static void test_nan_guard_video(void **state) {
    (void)state;
    lp_kv cfg;
    lp_train_result r;
    char dir[600];
    video_cfg(&cfg, 3);
    int64_t at = 20; /* inside epoch 2 (11 steps per epoch) */
    lp_train_opts o = {.run_dir = run_dir("v_nan", dir, sizeof dir), .quiet = 1};
    o.hooks.user = &at;
    o.hooks.after_backward = poison;
    lp_status s = lp_train(&lp_video_task_kind, &cfg, &o, &r);
    assert_int_equal(s, LP_ERR_NUMERIC);
    assert_non_null(strstr(lp_last_error(), "step 21"));
    assert_non_null(strstr(lp_last_error(), "last.ckpt"));
    assert_int_equal(ckpt_int(run_path("v_nan", "last.ckpt"), "state.epoch"), 1); /* written after epoch 1, not later */
    assert_finite_ckpt(run_path("v_nan", "last.ckpt"));
    lp_kv_free(&cfg);
}

/* The LM with mid-epoch checkpoints every 5 steps: a NaN gradient at step W + 13 (inside epoch 2) stops
 * the run with last.ckpt at the save before it; resumed without the poison, the run ends exactly as the
 * uninterrupted one — the train.tsv rows the run logged between that save and the NaN are dropped. */
static void test_nan_guard_lm_then_resume(void **state) {
    (void)state;
    lm_ref();
    const int W = lm_windows();
    lp_kv cfg;
    lp_train_result r;
    char dir[600];
    lp_task_kind lm = lp_lm_task_kind(NULL);
    lm_cfg(&cfg, 3);
    lp_kv_set(&cfg, "train.save_every", "5");
    int64_t at = W + 12; /* 0-based: the hook's step counts the steps taken before */
    lp_train_opts o = {.run_dir = run_dir("lm_nan", dir, sizeof dir), .quiet = 1};
    o.hooks.user = &at;
    o.hooks.after_backward = poison;
    lp_status s = lp_train(&lm, &cfg, &o, &r);
    lp_kv_free(&cfg);
    assert_int_equal(s, LP_ERR_NUMERIC);
    char want[32];
    snprintf(want, sizeof want, "step %d:", W + 13);
    assert_non_null(strstr(lp_last_error(), want));
    const char *last = run_path("lm_nan", "last.ckpt");
    const int64_t saved = (W + 12) / 5 * 5;
    assert_int_equal(ckpt_int(last, "state.step"), saved);
    assert_int_equal(ckpt_int(last, "state.epoch"), saved / W);
    assert_int_equal(ckpt_int(last, "state.batch"), saved % W);
    assert_finite_ckpt(last);
    tsv t;
    tsv_read(run_path("lm_nan", "train.tsv"), &t);
    assert_true(t.nrows > saved); /* rows after the checkpoint, to be cut on resume */
    tsv_free(&t);

    lp_kv_init(&cfg);
    lp_train_opts ro = {.run_dir = dir, .quiet = 1, .resume = 1};
    train_ok(&lm, &cfg, &ro, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 3);
    assert_true(same_tensors(run_path("lm_full", "last.ckpt"), last));
    assert_same_columns(run_path("lm_full", "train.tsv"), run_path("lm_nan", "train.tsv"), train_cols, 6);
    assert_same_columns(run_path("lm_full", "valid.tsv"), run_path("lm_nan", "valid.tsv"), lm_valid_cols, 6);
}

/* ---- the hooks ---------------------------------------------------------------------------------- */

/* What the hooks saw: the task (its kind, its parameter block), the step numbers and their order, the
 * gradient norm before clipping, and the parameters after the last update. */
typedef struct {
    const char *kind;       /* the expected t->ops->name */
    double extra;           /* reported as extra loss at every step */
    int64_t backward_calls, update_calls;
    double norms[1024];
    float *params;          /* copy after the latest update */
    size_t numel;
} hook_probe;

static lp_status probe_backward(void *user, lp_task *t, int64_t step, double *extra) {
    hook_probe *p = user;
    assert_string_equal(t->ops->name, p->kind);
    assert_int_equal(lp_task_is_video(t), !strcmp(p->kind, "video"));
    if (!strcmp(p->kind, "lm")) assert_ptr_equal(&lp_lm_task_of(t)->lm.params, t->params);
    assert_int_equal(step, p->backward_calls);  /* steps taken before this one */
    assert_int_equal(p->update_calls, step);    /* the previous step's update came first */
    assert_true(p->backward_calls < 1024);
    assert_int_equal(lp_optim_grad_norm(t->params->grad, t->params->numel, &p->norms[p->backward_calls]), LP_OK);
    p->backward_calls++;
    *extra = p->extra;
    return LP_OK;
}

static lp_status probe_update(void *user, lp_task *t, int64_t step) {
    hook_probe *p = user;
    assert_string_equal(t->ops->name, p->kind);
    assert_int_equal(step, p->backward_calls); /* the steps taken, this one included */
    p->update_calls++;
    if (!p->params) {
        p->numel = t->params->numel;
        p->params = malloc(p->numel * sizeof(float));
        assert_non_null(p->params);
    }
    assert_int_equal(t->params->numel, p->numel);
    memcpy(p->params, t->params->data, p->numel * sizeof(float));
    return LP_OK;
}

/* The parameters the hook saw after the last update are last.ckpt's, tensor by tensor. */
static void assert_probe_params_are(const hook_probe *p, const lp_params *names, const char *ckpt) {
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, ckpt), LP_OK);
    for (int i = 0; i < names->count; i++) {
        const lp_ckpt_tensor *ct = lp_ckpt_find(&c, names->items[i].name);
        assert_non_null(ct);
        assert_memory_equal(ct->data, p->params + names->items[i].offset, ct->numel * sizeof(float));
    }
    lp_ckpt_free(&c);
}

static void hooks_run(const lp_task_kind *kind, lp_kv *cfg, const char *run, hook_probe *p, lp_train_result *r,
                      int quiet) {
    char dir[600];
    lp_train_opts o = {.run_dir = run_dir(run, dir, sizeof dir), .quiet = quiet};
    o.hooks.user = p;
    o.hooks.after_backward = probe_backward;
    o.hooks.after_update = probe_update;
    train_ok(kind, cfg, &o, r);
    assert_int_equal(p->backward_calls, r->steps);
    assert_int_equal(p->update_calls, r->steps);
    /* the norm the hook saw is train.tsv's grad_norm ("%.6f"): after backward, before clipping */
    tsv t;
    tsv_read(run_path(run, "train.tsv"), &t);
    assert_int_equal(t.nrows, r->steps);
    for (int i = 0; i < t.nrows; i++)
        assert_true(fabs(tsv_num(&t, i, "grad_norm") - p->norms[i]) <= 5e-7 + 1e-7 * p->norms[i]);
    tsv_free(&t);
}

static void test_hooks_receive_the_task(void **state) {
    (void)state;
    lp_train_result r, rx;
    /* video, 1 epoch */
    lp_kv cfg;
    video_cfg(&cfg, 1);
    hook_probe pv = {.kind = "video"};
    hooks_run(&lp_video_task_kind, &cfg, "v_hooks", &pv, &r, 1);
    assert_int_equal(r.steps, VIDEO_STEPS_PER_EPOCH);
    lp_model mv;
    assert_int_equal(lp_model_load(&mv, run_path("v_hooks", "last.ckpt"), NULL), LP_OK);
    assert_int_equal(mv.params->numel, pv.numel);
    assert_probe_params_are(&pv, mv.params, run_path("v_hooks", "last.ckpt"));
    lp_model_free(&mv);
    free(pv.params);
    lp_kv_free(&cfg);

    /* LM, 1 epoch, with and without an extra loss term: it is added to every logged loss (train.tsv, the
     * epoch mean) and changes nothing else */
    lp_task_kind lm = lp_lm_task_kind(NULL);
    hook_probe pl = {.kind = "lm"}, px = {.kind = "lm", .extra = 0.25};
    log_probe lg;
    memset(&lg, 0, sizeof lg);
    lm_cfg(&cfg, 1);
    lp_log_set_sink(record_log, &lg);
    hooks_run(&lm, &cfg, "lm_hooks", &pl, &r, 0);
    lp_log_set_sink(NULL, NULL);
    lp_kv_free(&cfg);
    /* not quiet: a progress line per step and the epoch's validation as a notice, through the sink */
    assert_int_equal(lg.n[LP_LOG_PROGRESS], r.steps);
    assert_int_equal(lg.n[LP_LOG_INFO], 1);
    assert_non_null(strstr(lg.info[0], "epoch 1: valid ppl"));
    lm_cfg(&cfg, 1);
    hooks_run(&lm, &cfg, "lm_hooks_x", &px, &rx, 1);
    lp_kv_free(&cfg);
    assert_int_equal(r.steps, lm_windows());
    lp_lm ml;
    assert_int_equal(lp_lm_load(&ml, run_path("lm_hooks", "last.ckpt"), NULL), LP_OK);
    assert_probe_params_are(&pl, &ml.params, run_path("lm_hooks", "last.ckpt"));
    lp_lm_free(&ml);
    assert_true(same_tensors(run_path("lm_hooks", "last.ckpt"), run_path("lm_hooks_x", "last.ckpt")));
    assert_memory_equal(pl.norms, px.norms, (size_t)r.steps * sizeof(double));
    tsv a, b;
    tsv_read(run_path("lm_hooks", "train.tsv"), &a);
    tsv_read(run_path("lm_hooks_x", "train.tsv"), &b);
    /* each loss is printed "%.6f": the difference of two within 1e-6 (plus the double's rounding) */
    for (int i = 0; i < a.nrows; i++)
        assert_true(fabs(tsv_num(&b, i, "loss") - tsv_num(&a, i, "loss") - 0.25) <= 1.1e-6);
    tsv_free(&a);
    tsv_free(&b);
    assert_true(fabs(rx.last_loss - r.last_loss - 0.25) <= 1e-12);
    free(pl.params);
    free(px.params);
}

/* ---- the giant-spike watch ----------------------------------------------------------------------- */

/* The giant-spike watch (optim.h, lp_grad_watch) as the trainer reports it: a run's largest gradient norm
 * and its step are those of train.tsv; one step whose gradient a hook multiplies by 10^6 is the one spike
 * counted, with its norm 10^6 times the same step's norm in the run without the hook (the steps before it
 * are identical), also when clipping bounds the update (the watch sees the norm before clipping). The
 * spike is in epoch 4, 7 steps in: the watch, which needs LP_GRAD_WATCH_MIN (32) steps, spans epochs. */
#define SPIKE_STEP 40 /* 0-based */

static lp_status blow_up(void *user, lp_task *t, int64_t step, double *extra) {
    (void)user;
    (void)extra;
    if (step == SPIKE_STEP)
        for (size_t i = 0; i < t->params->numel; i++) t->params->grad[i] *= 1e6f;
    return LP_OK;
}

/* train.tsv's grad_norm column (row k = step k+1, train.log_every 1) into norms[0..*n). */
static void read_grad_norms(const char *path, double *norms, int cap, int *n) {
    tsv t;
    tsv_read(path, &t);
    assert_true(t.nrows <= cap);
    for (int r = 0; r < t.nrows; r++) {
        assert_int_equal((int)tsv_num(&t, r, "step"), r + 1);
        norms[r] = tsv_num(&t, r, "grad_norm");
    }
    *n = t.nrows;
    tsv_free(&t);
}

/* A quiet run with the log sink recording into *lp: only warnings come through. */
static void spike_run(const char *run, int hook, const char *clip, lp_train_result *r, log_probe *lp) {
    lp_kv cfg;
    char dir[600];
    video_cfg(&cfg, 4);
    lp_kv_set(&cfg, "train.clip", clip);
    lp_train_opts o = {.run_dir = run_dir(run, dir, sizeof dir), .quiet = 1};
    if (hook) o.hooks.after_backward = blow_up;
    memset(lp, 0, sizeof *lp);
    lp_log_set_sink(record_log, lp);
    lp_status s = lp_train(&lp_video_task_kind, &cfg, &o, r);
    lp_log_set_sink(NULL, NULL);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(lp->n[LP_LOG_PROGRESS], 0);
    assert_int_equal(lp->n[LP_LOG_INFO], 0);
    lp_kv_free(&cfg);
}

static void test_spike_watch_reports(void **state) {
    (void)state;
    assert_true(SPIKE_STEP >= LP_GRAD_WATCH_MIN && SPIKE_STEP - 3 * VIDEO_STEPS_PER_EPOCH < LP_GRAD_WATCH_MIN);
    double plain[64], spiked[64];
    int np, ns;
    lp_train_result r;
    log_probe lp;
    spike_run("calm", 0, "0", &r, &lp);
    read_grad_norms(run_path("calm", "train.tsv"), plain, 64, &np);
    assert_int_equal(np, 4 * VIDEO_STEPS_PER_EPOCH);
    assert_int_equal(r.spikes, 0);
    assert_int_equal(lp.n[LP_LOG_WARN], 0);
    int at = 0;
    for (int i = 1; i < np; i++)
        if (plain[i] > plain[at]) at = i;
    assert_int_equal(r.max_grad_step, at + 1);
    assert_true(fabs(r.max_grad_norm - plain[at]) <= 1e-6 * plain[at] + 1e-6);

    /* Without clipping, and clipped above every ordinary step (only the spike is clipped). */
    char clip[32];
    snprintf(clip, sizeof clip, "%g", 10 * plain[at]);
    const char *clips[] = {"0", clip}, *runs[] = {"spike", "spike_clip"};
    for (int c = 0; c < 2; c++) {
        spike_run(runs[c], 1, clips[c], &r, &lp);
        assert_int_equal(r.spikes, 1);
        /* one warning, through the sink, naming the step and what bounds it (quiet runs warn too) */
        assert_int_equal(lp.n[LP_LOG_WARN], 1);
        fprintf(stderr, "warning: %s\n", lp.warn[0]);
        assert_non_null(strstr(lp.warn[0], "step 41:"));
        assert_non_null(strstr(lp.warn[0], c == 0 ? "Adam's sqrt(v)" : "clipped to norm"));
        assert_int_equal(r.max_grad_step, SPIKE_STEP + 1);
        read_grad_norms(run_path(runs[c], "train.tsv"), spiked, 64, &ns);
        assert_int_equal(ns, 4 * VIDEO_STEPS_PER_EPOCH);
        for (int i = 0; i < SPIKE_STEP; i++) assert_true(spiked[i] == plain[i]);
        assert_true(fabs(r.max_grad_norm / (1e6 * plain[SPIKE_STEP]) - 1) < 1e-5);
    }
}

/* ---- the LM on the one trainer ------------------------------------------------------------------ */

/* The LM's run directory: train.tsv in the trainer's format, one row per window; valid.tsv with the
 * validation and test perplexity and NLL every epoch (train.test_every 1); the result's figures. */
static void test_lm_run_directory(void **state) {
    (void)state;
    lm_ref();
    const int W = lm_windows();
    const lp_train_result *r = &lm_ref_result;
    tsv t;
    char head[512];
    tsv_read(run_path("lm_full", "train.tsv"), &t);
    tsv_header(&t, head, sizeof head);
    assert_string_equal(head, "step\tepoch\tbatch\tloss\tgrad_norm\tlr\texamples_per_s\telapsed_s");
    assert_int_equal(t.nrows, 3 * W);
    for (int i = 0; i < t.nrows; i++) {
        assert_int_equal((int)tsv_num(&t, i, "step"), i + 1);
        assert_int_equal((int)tsv_num(&t, i, "epoch"), i / W + 1);
        assert_int_equal((int)tsv_num(&t, i, "batch"), i % W + 1);
        const double loss = tsv_num(&t, i, "loss");
        assert_true(loss > 0 && loss < 2 * log(32.0)); /* a mean NLL per word over ~32 words, not T times it */
    }
    tsv_free(&t);
    tsv_read(run_path("lm_full", "valid.tsv"), &t);
    tsv_header(&t, head, sizeof head);
    assert_string_equal(head, "epoch\tstep\tppl\tnll\ttest_ppl\ttest_nll\tseconds");
    assert_int_equal(t.nrows, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal((int)tsv_num(&t, i, "step"), (i + 1) * W);
        /* "%.6f" of ppl = exp(nll): 5e-7 absolute on nll is ppl · 5e-7 on ppl */
        const double ppl = tsv_num(&t, i, "ppl"), tppl = tsv_num(&t, i, "test_ppl");
        assert_true(fabs(ppl - exp(tsv_num(&t, i, "nll"))) <= 5e-7 + 6e-7 * ppl);
        assert_true(fabs(tppl - exp(tsv_num(&t, i, "test_nll"))) <= 5e-7 + 6e-7 * tppl);
    }
    assert_true(tsv_num(&t, 2, "ppl") < 30); /* learned something: 30 words, uniform guessing is 30 */
    assert_true(fabs(lp_score_get(&r->last_valid, "ppl") - tsv_num(&t, 2, "ppl")) <= 5e-7);
    assert_true(fabs(lp_score_get(&r->last_test, "ppl") - tsv_num(&t, 2, "test_ppl")) <= 5e-7);
    assert_true(fabs(lp_score_get(&r->last_test, "nll") - tsv_num(&t, 2, "test_nll")) <= 5e-7);
    tsv_free(&t);
    assert_int_equal(r->last_valid.higher_better, 0);
    assert_string_equal(r->last_valid.name[r->last_valid.primary], "ppl");
    assert_true(isfinite(r->last_loss) && r->last_loss > 0);
    /* config.txt holds the resolved configuration, the model's keys included */
    lp_kv saved;
    lp_kv_init(&saved);
    assert_int_equal(lp_kv_read_file(&saved, run_path("lm_full", "config.txt")), LP_OK);
    assert_string_equal(lp_kv_get(&saved, "lm.units"), "12,10");
    assert_string_equal(lp_kv_get(&saved, "train.momentum"), "0.5");
    assert_string_equal(lp_kv_get(&saved, "train.test_every"), "1");
    lp_kv_free(&saved);
}

/* Zaremba's schedule, lr_e = lr · decay^max(e − decay_after, 0) for 1-based epoch e, is train.tsv's lr
 * column (lr 0.7, decay 0.8 after epoch 2: 0.7, 0.7, 0.56, 0.448); train.tsv's loss is the window's mean
 * NLL and the objective T times it (the first row, recomputed from the initial weights without dropout);
 * train.test_every 0 scores the test split after the last epoch only. */
static void test_lm_lr_schedule_and_loss(void **state) {
    (void)state;
    const int W = lm_windows();
    lp_kv cfg;
    lp_train_result r;
    char dir[600];
    lp_task_kind lm = lp_lm_task_kind(NULL);
    lm_cfg(&cfg, 4);
    lp_kv_set(&cfg, "train.lr", "0.7");
    lp_kv_set(&cfg, "train.lr_decay", "0.8");
    lp_kv_set(&cfg, "train.decay_after", "2");
    lp_kv_set(&cfg, "lm.dropout", "0");
    lp_kv_set(&cfg, "train.test_every", "0");
    lp_train_opts o = {.run_dir = run_dir("lm_sched", dir, sizeof dir), .quiet = 1};
    train_ok(&lm, &cfg, &o, &r);
    tsv t;
    tsv_read(run_path("lm_sched", "train.tsv"), &t);
    assert_int_equal(t.nrows, 4 * W);
    for (int i = 0; i < t.nrows; i++) {
        const int e = (int)tsv_num(&t, i, "epoch");
        const float want = (float)(0.7 * pow(0.8, e > 2 ? e - 2 : 0));
        /* "%.8g" of a float: within 5e-9 relative of it (a float has 24 bits, 6e-8) */
        assert_true(fabs(tsv_num(&t, i, "lr") / want - 1) < 1e-8);
    }
    assert_true(tsv_num(&t, 0, "lr") == tsv_num(&t, 2 * W - 1, "lr"));
    assert_true(tsv_num(&t, 2 * W, "lr") < tsv_num(&t, 2 * W - 1, "lr"));
    /* the first window's mean NLL from the initial weights: the same model (lm.* keys, train.seed), the
     * first window of the 4 streams, the zero state */
    lp_ptb_corpus c;
    assert_int_equal(lp_ptb_corpus_load(&c, lp_test_scratch_path("ptb"), 0), LP_OK);
    lp_lm_config mc;
    assert_int_equal(lp_lm_run_model_config(&cfg, c.vocab.size, &mc), LP_OK);
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &mc, 7), LP_OK);
    lp_ptb_batcher bt;
    assert_int_equal(lp_ptb_batcher_init(&bt, c.ids[LP_PTB_TRAIN], c.n[LP_PTB_TRAIN], 4, 8, 1), LP_OK);
    assert_int_equal(bt.windows, W);
    int32_t x[32], y[32];
    assert_int_equal(lp_ptb_batcher_window(&bt, 0, x, y), 8);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_lm_out out;
    assert_int_equal(lp_lm_forward(&m, &tp, x, y, 4, 8, NULL, NULL, &out), LP_OK);
    fprintf(stderr, "lm: first window NLL %.6f, train.tsv %s\n", (double)out.loss->data[0],
            t.row[0][tsv_col(&t, "loss")]);
    assert_true(fabs(tsv_num(&t, 0, "loss") - out.loss->data[0]) <= 5e-7 + 1e-6 * out.loss->data[0]);
    /* and what is minimised is Zaremba's T · mean NLL: the first step's gradient norm (before the clip at
     * 5) is bptt 8 times that of the mean NLL. 1e-5 relative: the same float operations up to the order
     * in which the factor 8 enters. */
    lp_params_zero_grad(&m.params);
    assert_int_equal(lp_tape_backward(&tp, out.loss), LP_OK);
    double g;
    assert_int_equal(lp_optim_grad_norm(m.params.grad, m.params.numel, &g), LP_OK);
    fprintf(stderr, "lm: first window |grad mean NLL| %.6f x 8, train.tsv %s\n", g, t.row[0][tsv_col(&t, "grad_norm")]);
    assert_true(fabs(tsv_num(&t, 0, "grad_norm") - 8 * g) <= 5e-7 + 1e-5 * 8 * g);
    lp_tape_free(&tp);
    lp_lm_free(&m);
    lp_ptb_corpus_free(&c);
    tsv_free(&t);
    tsv_read(run_path("lm_sched", "valid.tsv"), &t);
    assert_int_equal(t.nrows, 4);
    for (int i = 0; i < 4; i++) {
        assert_true(isfinite(tsv_num(&t, i, "ppl")));
        assert_int_equal(isnan(tsv_num(&t, i, "test_ppl")), i < 3);
    }
    assert_true(fabs(lp_score_get(&r.last_test, "ppl") - tsv_num(&t, 3, "test_ppl")) <= 5e-7);
    tsv_free(&t);
    lp_kv_free(&cfg);
}

/* LM exact resume after an epoch: interrupted after epoch 1 (and a stray train.tsv row of epoch 2, as a
 * crash leaves), resumed from the run directory alone: the weights, momentum, logs (timings aside) and
 * test perplexity are the uninterrupted run's. A finished run needs more epochs to go on; with them it
 * continues. */
static void test_lm_resume_after_epoch(void **state) {
    (void)state;
    lm_ref();
    const int W = lm_windows();
    lp_kv cfg;
    lp_train_result r;
    char dir[600], row[128];
    lp_task_kind lm = lp_lm_task_kind(NULL);
    lm_cfg(&cfg, 3);
    lp_train_opts o = {.run_dir = run_dir("lm_split", dir, sizeof dir), .quiet = 1, .stop_after_epochs = 1};
    train_ok(&lm, &cfg, &o, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 1);
    assert_int_equal(r.steps, W);
    const char *last = run_path("lm_split", "last.ckpt");
    assert_int_equal(ckpt_int(last, "state.epoch"), 1);
    assert_int_equal(ckpt_int(last, "state.batch"), 0);
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, last), LP_OK);
    assert_null(lp_ckpt_find(&c, "state.h1")); /* at an epoch's end the state is zeroed anyway: not saved */
    assert_non_null(lp_ckpt_find(&c, "opt.m"));  /* the momentum buffer is */
    lp_ckpt_free(&c);
    snprintf(row, sizeof row, "%d\t2\t1\t0.5\t1\t0.25\t3\t4", W + 1);
    append_line(run_path("lm_split", "train.tsv"), row);

    lp_kv_init(&cfg); /* everything comes from lm_split/config.txt */
    lp_train_opts ro = {.run_dir = dir, .resume = 1, .quiet = 1};
    train_ok(&lm, &cfg, &ro, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 3);
    assert_true(same_tensors(run_path("lm_full", "last.ckpt"), last));
    assert_true(same_tensors(run_path("lm_full", "best.ckpt"), run_path("lm_split", "best.ckpt")));
    assert_same_columns(run_path("lm_full", "train.tsv"), run_path("lm_split", "train.tsv"), train_cols, 6);
    assert_same_columns(run_path("lm_full", "valid.tsv"), run_path("lm_split", "valid.tsv"), lm_valid_cols, 6);
    assert_true(lp_score_get(&r.last_test, "ppl") == lp_score_get(&lm_ref_result.last_test, "ppl"));
    assert_true(lp_score_primary(&r.best) == lp_score_primary(&lm_ref_result.best));
    assert_int_equal(r.best_epoch, lm_ref_result.best_epoch);

    /* a finished run cannot be resumed without more epochs; with more it continues */
    lp_kv_init(&cfg);
    assert_int_equal(lp_train(&lm, &cfg, &ro, &r), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "already trained"));
    lp_kv_free(&cfg);
    lp_kv_init(&cfg);
    ro.epochs_override = 4;
    train_ok(&lm, &cfg, &ro, &r);
    assert_int_equal(r.epochs_done, 4);
    assert_int_equal(r.steps, 4 * W);
    assert_string_equal(lp_kv_get(&cfg, "train.epochs"), "4");
    lp_kv_free(&cfg);
    tsv t;
    tsv_read(run_path("lm_split", "valid.tsv"), &t);
    assert_int_equal(t.nrows, 4);
    tsv_free(&t);
    tsv_read(run_path("lm_split", "train.tsv"), &t);
    assert_int_equal(t.nrows, 4 * W);
    tsv_free(&t);
}

/* Rewrite checkpoint `path` with every "state.h<l>"/"state.c<l>" tensor zeroed (zero = 1) or left out
 * (zero = 0). */
static void edit_carried_state(const char *path, int zero) {
    lp_ckpt c, n;
    assert_int_equal(lp_ckpt_load(&c, path), LP_OK);
    lp_ckpt_init(&n);
    assert_int_equal(lp_kv_merge(&n.meta, &c.meta), LP_OK);
    static float zeros[4096];
    int edited = 0;
    for (int i = 0; i < c.n; i++) {
        const lp_ckpt_tensor *t = &c.t[i];
        const int carried = !strncmp(t->name, "state.h", 7) || !strncmp(t->name, "state.c", 7);
        edited += carried;
        if (carried && !zero) continue;
        assert_true(!carried || t->numel <= 4096);
        assert_int_equal(lp_ckpt_add(&n, t->name, t->ndim, t->dims, carried ? zeros : t->data), LP_OK);
    }
    assert_int_equal(edited, 4);
    assert_int_equal(lp_ckpt_save(&n, path), LP_OK);
    lp_ckpt_free(&n);
    lp_ckpt_free(&c);
}

/* Stop `run` (lm_cfg, 3 epochs, train.save_every 30) right after its 2nd mid-epoch save, at step 60. */
static void lm_stop_at_60(const char *run, char *dir, size_t n) {
    lp_kv cfg;
    lp_train_result r;
    lp_task_kind lm = lp_lm_task_kind(NULL);
    lm_cfg(&cfg, 3);
    lp_kv_set(&cfg, "train.save_every", "30");
    lp_train_opts o = {.run_dir = run_dir(run, dir, n), .quiet = 1, .stop_after_saves = 2};
    train_ok(&lm, &cfg, &o, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.steps, 60);
    assert_int_equal(r.epochs_done, 0);
}

/* LM exact resume from mid-epoch checkpoints (train.save_every 30 windows, ~106 per epoch): interrupted
 * right after the save at window 60 of epoch 1, resumed and interrupted again two saves later (inside
 * epoch 2), then resumed to the end, the run ends with the uninterrupted run's weights. The carried
 * recurrent state is in last.ckpt and restored: the same resume with that state zeroed ends elsewhere,
 * and without it is refused. */
static void test_lm_resume_mid_epoch_carries_state(void **state) {
    (void)state;
    lm_ref();
    const int W = lm_windows();
    assert_true(W > 60 && W < 120 && W % 30 != 0); /* the saves below land inside epochs 1 and 2 */
    char dir[600], v[64], row[128];
    lp_kv cfg;
    lp_train_result r;
    lp_task_kind lm = lp_lm_task_kind(NULL);
    lm_stop_at_60("lm_mid", dir, sizeof dir);
    const char *last = run_path("lm_mid", "last.ckpt");
    assert_int_equal(ckpt_int(last, "state.step"), 60);
    assert_int_equal(ckpt_int(last, "state.epoch"), 0);
    assert_int_equal(ckpt_int(last, "state.batch"), 60);
    assert_string_equal(ckpt_meta(last, "state.best_ppl", v, sizeof v), "inf"); /* no validation yet */
    /* the carried state: state.h<l>, state.c<l> of [batch 4, H_l], not zero after 60 windows */
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, last), LP_OK);
    const char *names[] = {"state.h1", "state.c1", "state.h2", "state.c2"};
    const int H[] = {12, 12, 10, 10};
    for (int i = 0; i < 4; i++) {
        const lp_ckpt_tensor *t = lp_ckpt_find(&c, names[i]);
        assert_non_null(t);
        assert_int_equal(t->ndim, 2);
        assert_int_equal(t->dims[0], 4);
        assert_int_equal(t->dims[1], H[i]);
        double s = 0;
        for (size_t j = 0; j < t->numel; j++) s += fabs(t->data[j]);
        assert_true(s > 0.01 * (double)t->numel);
    }
    lp_ckpt_free(&c);
    snprintf(row, sizeof row, "61\t1\t61\t0.5\t1\t0.5\t3\t4");
    append_line(run_path("lm_mid", "train.tsv"), row);

    lp_kv_init(&cfg);
    lp_train_opts ro = {.run_dir = dir, .resume = 1, .quiet = 1, .stop_after_saves = 2};
    train_ok(&lm, &cfg, &ro, &r); /* the rest of epoch 1, then saves at 90 and 120 */
    lp_kv_free(&cfg);
    assert_int_equal(r.steps, 120);
    assert_int_equal(r.epochs_done, 1);
    assert_int_equal(ckpt_int(last, "state.epoch"), 1);
    assert_int_equal(ckpt_int(last, "state.batch"), 120 - W);
    lp_kv_init(&cfg);
    ro.stop_after_saves = 0;
    train_ok(&lm, &cfg, &ro, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 3);
    /* bit-identical: the carried state, dropout generator and momentum were restored at windows 60 and 30 */
    assert_true(same_tensors(run_path("lm_full", "last.ckpt"), last));
    assert_true(same_tensors(run_path("lm_full", "best.ckpt"), run_path("lm_mid", "best.ckpt")));
    assert_same_columns(run_path("lm_full", "train.tsv"), run_path("lm_mid", "train.tsv"), train_cols, 6);
    assert_same_columns(run_path("lm_full", "valid.tsv"), run_path("lm_mid", "valid.tsv"), lm_valid_cols, 6);

    /* A save on epoch 1's last window (train.save_every W): last.ckpt carries the state after it at
     * (epoch 0, batch W); the resume validates epoch 1 and starts epoch 2 from the zero state. */
    char dir_end[600];
    lm_cfg(&cfg, 3);
    lp_kv_set_int(&cfg, "train.save_every", W);
    lp_train_opts oe = {.run_dir = run_dir("lm_mid_end", dir_end, sizeof dir_end), .quiet = 1, .stop_after_saves = 1};
    train_ok(&lm, &cfg, &oe, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.steps, W);
    assert_int_equal(ckpt_int(run_path("lm_mid_end", "last.ckpt"), "state.batch"), W);
    lp_kv_init(&cfg);
    lp_train_opts re = {.run_dir = dir_end, .quiet = 1, .resume = 1};
    train_ok(&lm, &cfg, &re, &r);
    lp_kv_free(&cfg);
    assert_true(same_tensors(run_path("lm_full", "last.ckpt"), run_path("lm_mid_end", "last.ckpt")));
    assert_same_columns(run_path("lm_full", "valid.tsv"), run_path("lm_mid_end", "valid.tsv"), lm_valid_cols, 6);

    /* The controls: the same checkpoint at window 60 without its carried state is refused, naming the
     * tensor; with the state zeroed (what a resume that ignored it would start from) the run ends with
     * other weights — so the comparison above sees the carried state. */
    char dir_gone[600], dir_zero[600];
    lm_stop_at_60("lm_mid_gone", dir_gone, sizeof dir_gone);
    edit_carried_state(run_path("lm_mid_gone", "last.ckpt"), 0);
    lp_kv_init(&cfg);
    lp_train_opts rg = {.run_dir = dir_gone, .resume = 1, .quiet = 1};
    lp_status s = lp_train(&lm, &cfg, &rg, &r);
    lp_kv_free(&cfg);
    assert_int_equal(s, LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "state.h1"));
    lm_stop_at_60("lm_mid_zero", dir_zero, sizeof dir_zero);
    edit_carried_state(run_path("lm_mid_zero", "last.ckpt"), 1);
    lp_kv_init(&cfg);
    lp_train_opts rz = {.run_dir = dir_zero, .resume = 1, .quiet = 1};
    train_ok(&lm, &cfg, &rz, &r);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 3);
    assert_false(same_tensors(run_path("lm_full", "last.ckpt"), run_path("lm_mid_zero", "last.ckpt")));
}

/* Fine-tuning from a checkpoint (lp_train_opts.init_ckpt): the LM's sizes and dropout come from the
 * checkpoint, the schedule from the new configuration, and the run starts from exactly its weights (at lr
 * 0 they do not move, and the first validation is the checkpoint's perplexity). A vocabulary that does not
 * match the checkpoint's is refused. */
static void test_lm_finetune_from_checkpoint(void **state) {
    (void)state;
    lm_ref();
    char dir[600], ck[700];
    lp_kv cfg;
    lp_train_result r;
    lp_task_kind lm = lp_lm_task_kind(NULL);
    snprintf(ck, sizeof ck, "%s", run_path("lm_full", "last.ckpt"));
    lp_kv_init(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "data.dir", lp_test_scratch_path("ptb")), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.epochs", "1"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.lr", "0"), LP_OK); /* lr 0: the weights must not move */
    assert_int_equal(lp_kv_set(&cfg, "train.bptt", "8"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.batch", "4"), LP_OK);
    lp_train_opts o = {.run_dir = run_dir("lm_ft", dir, sizeof dir), .quiet = 1, .init_ckpt = ck};
    train_ok(&lm, &cfg, &o, &r);
    assert_string_equal(lp_kv_get(&cfg, "lm.units"), "12,10");                 /* from the checkpoint */
    assert_true(fabs(lp_kv_get_double_or(&cfg, "lm.dropout", 0) - 0.3) < 1e-6); /* float32 0.3 */
    lp_lm m0, m1;
    assert_int_equal(lp_lm_load(&m0, ck, NULL), LP_OK);
    assert_int_equal(lp_lm_load(&m1, run_path("lm_ft", "last.ckpt"), NULL), LP_OK);
    assert_int_equal(m0.params.numel, m1.params.numel);
    assert_memory_equal(m0.params.data, m1.params.data, m0.params.numel * sizeof(float));
    assert_true(lp_score_primary(&r.last_valid) == lm_rescore(ck));
    lp_lm_free(&m0);
    lp_lm_free(&m1);
    lp_kv_free(&cfg);

    lp_kv_init(&cfg); /* cap the vocabulary at 10 words */
    assert_int_equal(lp_kv_set(&cfg, "data.dir", lp_test_scratch_path("ptb")), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "data.max_words", "10"), LP_OK);
    lp_train_opts ob = {.run_dir = run_dir("lm_ft_bad", dir, sizeof dir), .quiet = 1, .init_ckpt = ck};
    assert_int_equal(lp_train(&lm, &cfg, &ob, &r), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "vocabulary"));
    lp_kv_free(&cfg);
}

/* ---- video: the bias parametrisation and checkpoint mismatches ---------------------------------- */

/* The bias parametrisation (model/model.h): --bias-init pair adds a second U(±1/sqrt(H)) draw to every
 * LSTM bias and nothing else; --bias-lr-mult M multiplies exactly the LSTM biases' learning rate; bad
 * values are refused naming the key; and the trainer applies both (one full-batch SGD step: the
 * weights move as without the multiplier, bit for bit, the biases twice as far). */
static void load_params(const char *path, lp_model *m) {
    lp_status s = lp_model_load(m, path, NULL);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
}

static void test_bias_parametrisation(void **state) {
    (void)state;
    lp_kv cfg;
    video_cfg(&cfg, 1);
    lp_model plain, pair;
    assert_int_equal(lp_model_init_kv(&plain, &cfg, 3), LP_OK);
    assert_int_equal(lp_model_init_kv(&pair, &cfg, 3), LP_OK);
    lp_model_bias_pair_init(&pair, 3);
    const size_t n = plain.params->numel;
    float *is_bias = malloc(n * sizeof(float));
    assert_non_null(is_bias);
    lp_model_bias_lr_scale(&plain, 2.0f, is_bias);
    size_t nb = 0, expect = 0;
    for (int g = 0; g < plain.n_groups; g++) expect += 4 * (size_t)plain.groups[g].units;
    for (size_t i = 0; i < n; i++) {
        assert_true(is_bias[i] == 1.0f || is_bias[i] == 2.0f);
        nb += is_bias[i] == 2.0f;
        if (is_bias[i] == 1.0f) assert_true(pair.params->data[i] == plain.params->data[i]); /* weights untouched */
    }
    assert_int_equal(nb, expect); /* the multiplier covers exactly the b tensors of the groups */
    /* Per group: the added draw d is within ±1/sqrt(H), and E[d²·3H] = 1 for U(±1/sqrt(H)); the mean over
     * all biases within ±40% (its sd over these 128 draws is ~8%). */
    double sq = 0;
    for (int g = 0; g < plain.n_groups; g++) {
        const size_t off = (size_t)(plain.groups[g].b->data - plain.params->data);
        const int H = plain.groups[g].units;
        for (size_t i = off; i < off + 4 * (size_t)H; i++) {
            assert_true(is_bias[i] == 2.0f);
            double d = (double)pair.params->data[i] - plain.params->data[i];
            assert_true(fabs(d) <= 1.0 / sqrt((double)H) + 1e-6);
            sq += d * d * 3.0 * H;
        }
    }
    assert_true(sq / nb > 0.6 && sq / nb < 1.4);
    lp_model_free(&pair);

    /* bad values name the key */
    int p;
    double mult;
    lp_kv_set(&cfg, "train.bias_init", "twice");
    assert_int_equal(lp_runcfg_bias(&cfg, &p, &mult), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "train.bias_init"));
    lp_kv_set(&cfg, "train.bias_init", "pair");
    const char *bad[] = {"0", "-1", "nan", "inf", "two"};
    for (int i = 0; i < 5; i++) {
        lp_kv_set(&cfg, "train.bias_lr_mult", bad[i]);
        assert_int_not_equal(lp_runcfg_bias(&cfg, &p, &mult), LP_OK);
        assert_non_null(strstr(lp_last_error(), "train.bias_lr_mult"));
    }
    lp_kv_set(&cfg, "train.bias_lr_mult", "2");
    assert_int_equal(lp_runcfg_bias(&cfg, &p, &mult), LP_OK);
    assert_true(p == 1 && mult == 2.0);
    lp_kv_free(&cfg);

    /* The trainer: one full-batch plain SGD step at multiplier 1 and at 2 from the same initial weights;
     * and --bias-init pair at lr 1e-30 leaves exactly the pair initialisation. */
    const char *runs[3] = {"bias_m1", "bias_m2", "bias_pair"};
    lp_model out[3];
    for (int k = 0; k < 3; k++) {
        char dir[600];
        video_cfg(&cfg, 1);
        lp_kv_set(&cfg, "train.optimizer", "sgd");
        lp_kv_set(&cfg, "train.lr", k == 2 ? "1e-30" : "0.1"); /* 1e-30: no visible step */
        lp_kv_set(&cfg, "train.batch", "1000"); /* video_cfg's seed 3: the initial weights of `plain` */
        lp_kv_set(&cfg, "train.bias_lr_mult", k == 1 ? "2" : "1");
        lp_kv_set(&cfg, "train.bias_init", k == 2 ? "pair" : "uniform");
        lp_train_opts o = {.run_dir = run_dir(runs[k], dir, sizeof dir), .quiet = 1};
        lp_train_result r;
        train_ok(&lp_video_task_kind, &cfg, &o, &r);
        assert_int_equal(r.steps, 1);
        load_params(run_path(runs[k], "last.ckpt"), &out[k]);
        lp_kv_free(&cfg);
    }
    size_t moved = 0;
    video_cfg(&cfg, 1);
    assert_int_equal(lp_model_init_kv(&pair, &cfg, 3), LP_OK);
    lp_model_bias_pair_init(&pair, 3);
    assert_memory_equal(out[2].params->data, pair.params->data, n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        const float p0 = plain.params->data[i], a = out[0].params->data[i], b = out[1].params->data[i];
        if (is_bias[i] == 1.0f) {
            assert_true(a == b);
        } else {
            assert_true(fabs(((double)b - p0) - 2.0 * ((double)a - p0)) < 1e-6);
            moved += fabsf(a - p0) > 1e-5f;
        }
    }
    assert_true(moved > nb / 2);
    for (int k = 0; k < 3; k++) lp_model_free(&out[k]);
    lp_model_free(&pair);
    lp_model_free(&plain);
    free(is_bias);
    lp_kv_free(&cfg);
}

/* A checkpoint whose tensors do not match its config is a clear shape error, not a crash. */
static void test_shape_mismatch_is_clear(void **state) {
    (void)state;
    lp_kv cfg;
    video_cfg(&cfg, 1);
    lp_model m;
    assert_int_equal(lp_model_init_kv(&m, &cfg, 1), LP_OK);
    lp_ckpt c;
    lp_ckpt_init(&c);
    assert_int_equal(lp_model_add_to_ckpt(&m, &c), LP_OK);
    assert_int_equal(lp_kv_set(&c.meta, "model.units", "8,8,12"), LP_OK); /* config says smaller */
    assert_int_equal(lp_ckpt_save(&c, lp_test_scratch_path("bad.ckpt")), LP_OK);
    lp_ckpt_free(&c);
    lp_model back;
    lp_status s = lp_model_load(&back, lp_test_scratch_path("bad.ckpt"), NULL);
    fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_ERR_SHAPE);
    assert_non_null(strstr(lp_last_error(), "lstm2.w_ih"));
    assert_non_null(strstr(lp_last_error(), "bad.ckpt"));
    lp_model_free(&m);
    lp_kv_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_video_learns),
        cmocka_unit_test(test_save_load_identical_predictions),
        cmocka_unit_test(test_video_resume_after_epoch),
        cmocka_unit_test(test_video_resume_mid_epoch),
        cmocka_unit_test(test_stop_between_checkpoints),
        cmocka_unit_test(test_best_checkpoint_video_gap_higher),
        cmocka_unit_test(test_best_checkpoint_lm_ppl_lower),
        cmocka_unit_test(test_nan_guard_video),
        cmocka_unit_test(test_nan_guard_lm_then_resume),
        cmocka_unit_test(test_hooks_receive_the_task),
        cmocka_unit_test(test_spike_watch_reports),
        cmocka_unit_test(test_lm_run_directory),
        cmocka_unit_test(test_lm_lr_schedule_and_loss),
        cmocka_unit_test(test_lm_resume_after_epoch),
        cmocka_unit_test(test_lm_resume_mid_epoch_carries_state),
        cmocka_unit_test(test_lm_finetune_from_checkpoint),
        cmocka_unit_test(test_bias_parametrisation),
        cmocka_unit_test(test_shape_mismatch_is_clear),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
