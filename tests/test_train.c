/* test_train: the training loop end to end on a small synthetic YouTube-8M-format set — learning,
 * save/load, exact resume, the numeric guard, evaluation/prediction, checkpoint/config mismatches,
 * the bias parametrisation (--bias-init, --bias-lr-mult) and the giant-spike watch's report. */
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
#include "model/evaluate.h"
#include "model/runcfg.h"
#include "model/trainer.h"
#include "tests/common/scratch.h"
#include "tests/common/yt8m_set.h"

/* 240 short videos, 6 classes, small features: a few seconds of training learns them. */
static const lp_test_yt8m_set set = {.seed = 7, .videos = 240, .frames_max = 16, .rgb = 48, .audio = 16,
                                     .shuffle_buffer = 64};

static int setup(void **state) {
    (void)state;
    return lp_test_yt8m_setup("train", &set);
}

/* The configuration the tests share: paper model, width 16, Adam. */
static void base_cfg(lp_kv *kv, int epochs) {
    lp_test_yt8m_cfg(kv, &set, LP_TEST_YT8M_VALID, epochs, 3);
    lp_kv_set(kv, "model.dropout", "0.1");
    assert_int_equal(lp_runcfg_defaults(kv), LP_OK);
    assert_int_equal(lp_model_default_kv(kv, LP_MODEL_PAPER, 64, 16, 1, 6, 2, 0.1f), LP_OK);
}

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

static void test_training_learns(void **state) {
    (void)state;
    lp_kv cfg;
    base_cfg(&cfg, 1);
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
    base_cfg(&cfg, 12);
    lp_train_opts o = {.run_dir = lp_test_scratch_path("learn"), .quiet = 1};
    lp_train_result r1;
    lp_status s = lp_train(&cfg, &o, &r1);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(r1.epochs_done, 12);
    lp_eval_result e0, e1;
    assert_int_equal(eval_ckpt(lp_test_scratch_path("untrained.ckpt"), &e0), LP_OK);
    assert_int_equal(eval_ckpt(lp_test_scratch_path("learn/last.ckpt"), &e1), LP_OK);
    fprintf(stderr, "untrained: loss %.4f GAP %.4f; trained: loss %.4f GAP %.4f (best %.4f)\n", e0.loss, e0.m.gap, e1.loss,
            e1.m.gap, r1.best_gap);
    /* The planted structure is strong: training must lower the loss and raise GAP by a wide margin. */
    assert_true(e1.loss < 0.8 * e0.loss);
    assert_true(e1.m.gap > e0.m.gap + 0.2);
    /* The logs have one row per step and one per epoch (plus headers). */
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("learn/valid.tsv"), &buf, &len), LP_OK);
    int lines = 0;
    for (size_t i = 0; i < len; i++) lines += buf[i] == '\n';
    assert_int_equal(lines, 13);
    free(buf);
    assert_int_equal(access(lp_test_scratch_path("learn/best.ckpt"), R_OK), 0);
    assert_int_equal(access(lp_test_scratch_path("learn/config.txt"), R_OK), 0);
    lp_kv_free(&cfg);
}

/* Save → load gives identical predictions (bit for bit). */
static void test_save_load_identical_predictions(void **state) {
    (void)state;
    lp_kv cfg;
    base_cfg(&cfg, 1);
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

static int files_equal(const char *a, const char *b) {
    lp_ckpt ca, cb;
    if (lp_ckpt_load(&ca, a) != LP_OK || lp_ckpt_load(&cb, b) != LP_OK) return 0;
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

/* A run interrupted after epoch 2 and resumed ends with the same weights (and optimizer state) as an
 * uninterrupted run — byte for byte, at one thread (the Makefile runs tests with OPENBLAS_NUM_THREADS=1). */
static void test_resume_equals_uninterrupted(void **state) {
    (void)state;
    lp_kv cfg;
    lp_train_result r;
    base_cfg(&cfg, 4);
    lp_train_opts o = {.run_dir = lp_test_scratch_path("full"), .quiet = 1};
    assert_int_equal(lp_train(&cfg, &o, &r), LP_OK);
    lp_kv_free(&cfg);

    base_cfg(&cfg, 4);
    o.run_dir = lp_test_scratch_path("split");
    o.stop_after_epochs = 2;
    lp_status s0 = lp_train(&cfg, &o, &r);
    if (s0 != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s0, LP_OK);
    assert_int_equal(r.epochs_done, 2);
    lp_kv_free(&cfg);
    assert_false(files_equal(lp_test_scratch_path("full/last.ckpt"), lp_test_scratch_path("split/last.ckpt")));

    lp_kv_init(&cfg); /* the resumed run takes everything from the run directory */
    char split_dir[512];
    /* lp_test_scratch_path() recycles its buffers */
    snprintf(split_dir, sizeof split_dir, "%s", lp_test_scratch_path("split"));
    lp_train_opts ro = {.run_dir = split_dir, .quiet = 1, .resume = 1};
    lp_status s = lp_train(&cfg, &ro, &r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(r.epochs_done, 4);
    assert_true(files_equal(lp_test_scratch_path("full/last.ckpt"), lp_test_scratch_path("split/last.ckpt")));
    assert_true(files_equal(lp_test_scratch_path("full/best.ckpt"), lp_test_scratch_path("split/best.ckpt")));
    /* The logs of both runs are identical apart from the timing columns: compare the valid.tsv rows'
     * metric columns and the number of train.tsv rows. */
    char *a, *b;
    size_t la, lb;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("full/train.tsv"), &a, &la), LP_OK);
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("split/train.tsv"), &b, &lb), LP_OK);
    int na = 0, nb = 0;
    for (size_t i = 0; i < la; i++) na += a[i] == '\n';
    for (size_t i = 0; i < lb; i++) nb += b[i] == '\n';
    assert_int_equal(na, nb);
    free(a);
    free(b);
    /* Resuming a finished run is a clear error. */
    s = lp_train(&cfg, &ro, &r);
    if (s != LP_ERR_ARG) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "already trained"));
    lp_kv_free(&cfg);
}

/* A run that stops between writing best.ckpt and last.ckpt loses no best epoch: best.ckpt is written
 * first, so last.ckpt still holds the epoch before, and the resumed run redoes the epoch. The stop is a
 * failing best.ckpt write in epoch 3 (a directory in its place), and that epoch must improve on the best. */
static void test_stop_between_checkpoints(void **state) {
    (void)state;
    lp_kv cfg;
    lp_train_result r;
    char full[512], dir[512], best[600];
    snprintf(full, sizeof full, "%s", lp_test_scratch_path("bfull"));
    snprintf(dir, sizeof dir, "%s", lp_test_scratch_path("bsplit"));
    base_cfg(&cfg, 4);
    lp_train_opts o = {.run_dir = full, .quiet = 1};
    assert_int_equal(lp_train(&cfg, &o, &r), LP_OK);
    lp_kv_free(&cfg);
    base_cfg(&cfg, 4);
    o.run_dir = dir;
    o.stop_after_epochs = 2;
    assert_int_equal(lp_train(&cfg, &o, &r), LP_OK);
    lp_kv_free(&cfg);

    snprintf(best, sizeof best, "%s/best.ckpt", dir);
    assert_int_equal(lp_test_block_file(best), 0);
    lp_kv_init(&cfg);
    lp_train_opts ro = {.run_dir = dir, .quiet = 1, .resume = 1};
    lp_status s = lp_train(&cfg, &ro, &r);
    assert_int_equal(s, LP_ERR_IO); /* epoch 3 improved, and its best.ckpt could not be written */
    assert_non_null(strstr(lp_last_error(), "best.ckpt")); /* the error names the file */
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, lp_test_scratch_path("bsplit/last.ckpt")), LP_OK);
    assert_string_equal(lp_kv_get(&c.meta, "state.epoch"), "2"); /* last.ckpt not past the lost best */
    lp_ckpt_free(&c);

    assert_int_equal(lp_test_unblock_file(best), 0);
    s = lp_train(&cfg, &ro, &r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(r.epochs_done, 4);
    assert_true(files_equal(lp_test_scratch_path("bfull/best.ckpt"), lp_test_scratch_path("bsplit/best.ckpt")));
    assert_true(files_equal(lp_test_scratch_path("bfull/last.ckpt"), lp_test_scratch_path("bsplit/last.ckpt")));
    lp_kv_free(&cfg);
}

/* A NaN gradient stops training with a clear message; the last good checkpoint stays intact. */
static lp_status poison(void *user, lp_model *m, int64_t step, double *extra) {
    (void)extra;
    int64_t at = *(int64_t *)user;
    if (step == at) m->params->grad[3] = NAN;
    return LP_OK;
}

static void test_nan_guard_keeps_last_checkpoint(void **state) {
    (void)state;
    lp_kv cfg;
    lp_train_result r;
    base_cfg(&cfg, 3);
    int64_t at = 20; /* inside epoch 2 (11 steps per epoch) */
    lp_train_opts o = {.run_dir = lp_test_scratch_path("nan"), .quiet = 1};
    o.hooks.user = &at;
    o.hooks.after_backward = poison;
    lp_status s = lp_train(&cfg, &o, &r);
    assert_int_equal(s, LP_ERR_NUMERIC);
    assert_non_null(strstr(lp_last_error(), "step 21"));
    assert_non_null(strstr(lp_last_error(), "last.ckpt"));
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, lp_test_scratch_path("nan/last.ckpt")), LP_OK);
    assert_string_equal(lp_kv_get(&c.meta, "state.epoch"), "1"); /* written after epoch 1, not later */
    for (int i = 0; i < c.n; i++)
        for (size_t j = 0; j < c.t[i].numel; j++) assert_true(isfinite(c.t[i].data[j]));
    lp_ckpt_free(&c);
    lp_kv_free(&cfg);
}

/* The giant-spike watch (optim.h, lp_grad_watch) as the trainer reports it: a run's largest gradient norm
 * and its step are those of train.tsv; one step whose gradient a hook multiplies by 10^6 is the one spike
 * counted, with its norm 10^6 times the same step's norm in the run without the hook (the steps before it
 * are identical), also when clipping bounds the update (the watch sees the norm before clipping). */
#define SPIKE_STEP 40 /* 0-based, after the watch's LP_GRAD_WATCH_MIN steps (11 steps per epoch) */

static lp_status blow_up(void *user, lp_model *m, int64_t step, double *extra) {
    (void)user;
    (void)extra;
    if (step == SPIKE_STEP)
        for (size_t i = 0; i < m->params->numel; i++) m->params->grad[i] *= 1e6f;
    return LP_OK;
}

/* train.tsv's grad_norm column (row k = step k+1, train.log_every 1) into norms[0..*n). */
static void read_grad_norms(const char *path, double *norms, int cap, int *n) {
    char *text;
    size_t len;
    assert_int_equal(lp_file_read_all(path, &text, &len), LP_OK);
    *n = 0;
    char *line = strchr(text, '\n'); /* past the header */
    while (line && line[1] && *n < cap) {
        long long step, epoch, batch;
        double loss, norm;
        assert_int_equal(sscanf(line + 1, "%lld\t%lld\t%lld\t%lf\t%lf", &step, &epoch, &batch, &loss, &norm), 5);
        assert_int_equal(step, *n + 1);
        norms[(*n)++] = norm;
        line = strchr(line + 1, '\n');
    }
    free(text);
}

static void spike_run(const char *dir, int hook, const char *clip, lp_train_result *r) {
    lp_kv cfg;
    base_cfg(&cfg, 4);
    lp_kv_set(&cfg, "train.clip", clip);
    lp_train_opts o = {.run_dir = lp_test_scratch_path(dir), .quiet = 1};
    if (hook) o.hooks.after_backward = blow_up;
    lp_status s = lp_train(&cfg, &o, r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    lp_kv_free(&cfg);
}

static void test_spike_watch_reports(void **state) {
    (void)state;
    double plain[64], spiked[64];
    int np, ns;
    lp_train_result r;
    spike_run("calm", 0, "0", &r);
    read_grad_norms(lp_test_scratch_path("calm/train.tsv"), plain, 64, &np);
    assert_int_equal(np, 44);
    assert_int_equal(r.spikes, 0);
    int at = 0;
    for (int i = 1; i < np; i++)
        if (plain[i] > plain[at]) at = i;
    assert_int_equal(r.max_grad_step, at + 1);
    assert_true(fabs(r.max_grad_norm - plain[at]) <= 1e-6 * plain[at] + 1e-6);

    /* Without clipping, and clipped above every ordinary step (only the spike is clipped). */
    char clip[32];
    snprintf(clip, sizeof clip, "%g", 10 * plain[at]);
    const char *clips[] = {"0", clip}, *dirs[] = {"spike", "spike_clip"};
    for (int c = 0; c < 2; c++) {
        spike_run(dirs[c], 1, clips[c], &r);
        assert_int_equal(r.spikes, 1);
        assert_int_equal(r.max_grad_step, SPIKE_STEP + 1);
        char path[64];
        snprintf(path, sizeof path, "%s/train.tsv", dirs[c]);
        read_grad_norms(lp_test_scratch_path(path), spiked, 64, &ns);
        assert_int_equal(ns, 44);
        for (int i = 0; i < SPIKE_STEP; i++) assert_true(spiked[i] == plain[i]);
        assert_true(fabs(r.max_grad_norm / (1e6 * plain[SPIKE_STEP]) - 1) < 1e-5);
    }
}

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
    base_cfg(&cfg, 1);
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
        base_cfg(&cfg, 1);
        lp_kv_set(&cfg, "train.optimizer", "sgd");
        lp_kv_set(&cfg, "train.lr", k == 2 ? "1e-30" : "0.1"); /* 1e-30: no visible step */
        lp_kv_set(&cfg, "train.batch", "1000"); /* base_cfg's seed 3: the initial weights of `plain` */
        lp_kv_set(&cfg, "train.bias_lr_mult", k == 1 ? "2" : "1");
        lp_kv_set(&cfg, "train.bias_init", k == 2 ? "pair" : "uniform");
        lp_train_opts o = {.run_dir = lp_test_scratch_path(runs[k]), .quiet = 1};
        lp_train_result r;
        lp_status s = lp_train(&cfg, &o, &r);
        if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
        assert_int_equal(s, LP_OK);
        assert_int_equal(r.steps, 1);
        char path[512];
        snprintf(path, sizeof path, "%s/last.ckpt", runs[k]);
        load_params(lp_test_scratch_path(path), &out[k]);
        lp_kv_free(&cfg);
    }
    size_t moved = 0;
    base_cfg(&cfg, 1);
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
    base_cfg(&cfg, 1);
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
        cmocka_unit_test(test_training_learns),
        cmocka_unit_test(test_save_load_identical_predictions),
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_nan_guard_keeps_last_checkpoint),
        cmocka_unit_test(test_spike_watch_reports),
        cmocka_unit_test(test_stop_between_checkpoints),
        cmocka_unit_test(test_shape_mismatch_is_clear),
        cmocka_unit_test(test_bias_parametrisation),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
