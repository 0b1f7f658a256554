/* test_lm_train: LM training as a tool — the LM kind of task (tasks/lm_task.h) run by the one trainer
 * (train/trainer.h): the recipes and their learning-rate schedule, the lm.* model keys, checkpoint round
 * trip (lm/lm.h), the run directory, exact resume (a run interrupted after epoch k, or inside an epoch with
 * the carried state, and resumed ends with the same weights as an uninterrupted one, at one thread),
 * extending a finished run, fine-tuning from a checkpoint, the hooks' view of the task, and the giant-spike
 * report. Tiny models on a tiny generated corpus. */
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

#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/kv.h"
#include "lm/lm.h"
#include "tasks/lm_task.h"
#include "lm/ptb.h"
#include "optim/optim.h"
#include "train/trainer.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

/* The tiny Markov corpus (tests/common/markov_corpus.h) in PTB layout: 400 training sentences. */
static int setup_dir(void **state) {
    (void)state;
    if (lp_test_scratch_make("lm_train") != 0) return -1;
    lp_test_markov_write_ptb(lp_test_scratch_dir(), 400, 1);
    return 0;
}

/* A small run config: 2 layers of 12 and 10 units, dropout (so the dropout generator's state matters on
 * resume), SGD with momentum (so the optimizer buffer matters), lr decay after epoch 1. */
static void tiny_cfg(lp_kv *kv) {
    lp_kv_init(kv);
    assert_int_equal(lp_kv_set(kv, "data.dir", lp_test_scratch_dir()), LP_OK);
    assert_int_equal(lp_kv_set(kv, "lm.layers", "2"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "lm.units", "12,10"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "lm.dropout", "0.3"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.epochs", "3"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.batch", "4"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.bptt", "8"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.lr", "0.5"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.decay_after", "1"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.momentum", "0.5"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.log_every", "10"), LP_OK);
    assert_int_equal(lp_kv_set(kv, "train.seed", "7"), LP_OK);
}

/* lp_train with the LM kind; corpus NULL: read from data.dir. */
static lp_status train_lm(lp_kv *cfg, const lp_train_opts *o, const lp_ptb_corpus *corpus, lp_train_result *r) {
    const lp_task_kind kind = lp_lm_task_kind(corpus);
    return lp_train(&kind, cfg, o, r);
}

static double ppl_of(const lp_score *s) { return lp_score_get(s, "ppl"); }

static const char *run_path(const char *run, const char *file) {
    static char p[2][600];
    static int which;
    which ^= 1;
    snprintf(p[which], sizeof p[which], "%s/%s/%s", lp_test_scratch_dir(), run, file);
    return p[which];
}

/* Count lines of a file. */
static int count_lines(const char *path) {
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    int n = 0;
    for (size_t i = 0; i < len; i++) n += buf[i] == '\n';
    lp_free(buf);
    return n;
}

/* Every valid.tsv row without its last column (epoch, step, validation ppl and nll, test ppl and nll; not
 * the seconds), as one string. */
static void valid_ppl_columns(const char *path, char *out, size_t cap) {
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    size_t o = 0;
    int col = 0;
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        if (buf[i] == '\n') col = 0, out[o++] = '\n';
        else if (buf[i] == '\t') {
            if (++col < 6) out[o++] = '\t';
        } else if (col < 6) out[o++] = buf[i];
    }
    out[o] = '\0';
    lp_free(buf);
}

/* ---- recipes, schedule, keys ---- */

static void test_recipes_and_schedule(void **state) {
    (void)state;
    /* the recipes of Zaremba et al. (2014) as the issue states them */
    struct {
        const char *name, *units, *epochs, *bptt, *decay_after, *clip;
        double dropout, init, decay;
    } want[] = {
        {"small", "200", "13", "20", "4", "5", 0.0, 0.1, 0.5},
        {"medium", "650", "39", "35", "6", "5", 0.5, 0.05, 0.8},
        {"large", "1500", "55", "35", "14", "10", 0.65, 0.04, 1 / 1.15},
    };
    for (int i = 0; i < 3; i++) {
        lp_kv kv;
        lp_kv_init(&kv);
        assert_int_equal(lp_kv_set(&kv, "lm.units", "7"), LP_OK); /* replaced by the recipe */
        assert_int_equal(lp_lm_recipe_apply(&kv, want[i].name), LP_OK);
        assert_string_equal(lp_kv_get(&kv, "lm.units"), want[i].units);
        assert_string_equal(lp_kv_get(&kv, "lm.layers"), "2");
        assert_string_equal(lp_kv_get(&kv, "train.epochs"), want[i].epochs);
        assert_string_equal(lp_kv_get(&kv, "train.bptt"), want[i].bptt);
        assert_string_equal(lp_kv_get(&kv, "train.decay_after"), want[i].decay_after);
        assert_string_equal(lp_kv_get(&kv, "train.clip"), want[i].clip);
        assert_string_equal(lp_kv_get(&kv, "train.batch"), "20");
        assert_string_equal(lp_kv_get(&kv, "train.lr"), "1");
        /* parsed values: exact decimal strings, compared to double constants to 1e-15 relative */
        assert_true(fabs(lp_kv_get_double_or(&kv, "lm.dropout", -1) - want[i].dropout) < 1e-15);
        assert_true(fabs(lp_kv_get_double_or(&kv, "lm.init_scale", -1) - want[i].init) < 1e-15);
        assert_true(fabs(lp_kv_get_double_or(&kv, "train.lr_decay", -1) - want[i].decay) < 1e-15);
        lp_lm_config c;
        assert_int_equal(lp_lm_run_defaults(&kv), LP_OK);
        assert_int_equal(lp_lm_run_model_config(&kv, 10000, &c), LP_OK);
        assert_int_equal(c.layers, 2);
        assert_int_equal(c.hidden[0], atoi(want[i].units));
        assert_int_equal(c.hidden[1], atoi(want[i].units));
        assert_int_equal(c.embed, c.hidden[0]);
        lp_kv_free(&kv);
    }
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_lm_recipe_apply(&kv, "huge"), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "huge"));

    /* the kind reads a recipe's train.* keys as the trainer's settings: plain SGD, the clip, and the
     * per-epoch schedule lr_e = lr * decay^max(e - after, 0) for 1-based e: small 1,1,1,1,0.5,0.25,... */
    const lp_task_kind kind = lp_lm_task_kind(NULL);
    lp_train_settings ts;
    assert_int_equal(lp_lm_recipe_apply(&kv, "small"), LP_OK);
    assert_int_equal(lp_lm_run_defaults(&kv), LP_OK);
    assert_int_equal(kind.settings(&kind, &kv, &ts), LP_OK);
    assert_int_equal(ts.epochs, 13);
    assert_true(ts.clip == 5 && ts.optim.kind == LP_OPTIM_SGD && ts.optim.momentum == 0.0f);
    assert_true(ts.lr.per_epoch && ts.lr.base_lr == 1 && ts.lr.decay_rate == 0.5 && ts.lr.decay_after == 4);
    const float small[7] = {1, 1, 1, 1, 0.5f, 0.25f, 0.125f};
    for (int e = 1; e <= 7; e++) { /* 0-based epochs; the step does not matter */
        assert_true(lp_lr_schedule_at(&ts.lr, 0, e - 1) == small[e - 1]);
        assert_true(lp_lr_schedule_at(&ts.lr, 12345, e - 1) == small[e - 1]);
    }
    assert_int_equal(lp_lm_recipe_apply(&kv, "large"), LP_OK);
    assert_int_equal(kind.settings(&kind, &kv, &ts), LP_OK);
    assert_true(ts.clip == 10 && ts.lr.decay_after == 14);
    /* computed in double, rounded to float once: within float32 rounding of 1/1.15^2 */
    assert_true(fabs(lp_lr_schedule_at(&ts.lr, 0, 15) - 1 / (1.15 * 1.15)) < 1e-7);
    assert_true(lp_lr_schedule_at(&ts.lr, 0, 13) == 1.0f);
    lp_lr_schedule sch = {.base_lr = 0.3, .decay_rate = 0.5, .per_epoch = 1, .decay_after = 0};
    assert_true(lp_lr_schedule_at(&sch, 0, 0) == (float)0.15);
    /* a bad key is refused, naming it */
    assert_int_equal(lp_kv_set(&kv, "train.lr_decay", "0"), LP_OK);
    assert_int_equal(kind.settings(&kind, &kv, &ts), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "train.lr_decay"));
    lp_kv_free(&kv);
}

static void test_model_keys(void **state) {
    (void)state;
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_lm_run_defaults(&kv), LP_OK);
    assert_string_equal(lp_kv_get(&kv, "lm.recipe"), "custom"); /* defaults are the small recipe's values */
    assert_string_equal(lp_kv_get(&kv, "lm.units"), "200");
    assert_string_equal(lp_kv_get(&kv, "data.dir"), LP_LM_DEFAULT_DATA_DIR);
    lp_lm_config c;
    assert_int_equal(lp_kv_set(&kv, "lm.layers", "3"), LP_OK);
    assert_int_equal(lp_kv_set(&kv, "lm.units", "30,20,10"), LP_OK);
    assert_int_equal(lp_kv_set(&kv, "lm.embed", "16"), LP_OK);
    assert_int_equal(lp_lm_run_model_config(&kv, 99, &c), LP_OK);
    assert_int_equal(c.vocab, 99);
    assert_int_equal(c.hidden[0], 30);
    assert_int_equal(c.hidden[1], 20);
    assert_int_equal(c.hidden[2], 10);
    assert_int_equal(c.embed, 16);
    /* round trip through the keys */
    lp_kv back;
    lp_kv_init(&back);
    assert_int_equal(lp_lm_run_model_to_kv(&c, &back), LP_OK);
    assert_string_equal(lp_kv_get(&back, "lm.units"), "30,20,10");
    lp_lm_config c2;
    assert_int_equal(lp_lm_run_model_config(&back, 99, &c2), LP_OK);
    assert_memory_equal(&c, &c2, sizeof c);
    lp_kv_free(&back);
    /* errors name the key */
    assert_int_equal(lp_kv_set(&kv, "lm.units", "30,20"), LP_OK);
    assert_int_equal(lp_lm_run_model_config(&kv, 99, &c), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "lm.units"));
    assert_int_equal(lp_kv_set(&kv, "lm.units", "30,x,10"), LP_OK);
    assert_int_equal(lp_lm_run_model_config(&kv, 99, &c), LP_ERR_ARG);
    assert_int_equal(lp_kv_set(&kv, "lm.units", "30,20,10"), LP_OK);
    assert_int_equal(lp_kv_set(&kv, "lm.tied", "1"), LP_OK); /* embed 16 != last layer 10 */
    assert_int_equal(lp_lm_run_model_config(&kv, 99, &c), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "tied"));
    assert_int_equal(lp_kv_set(&kv, "lm.tied", "0"), LP_OK);
    assert_int_equal(lp_kv_set(&kv, "lm.dropout", "1.5"), LP_OK);
    assert_int_equal(lp_lm_run_model_config(&kv, 99, &c), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "lm.dropout"));
    lp_kv_free(&kv);
}

static void test_checkpoint_round_trip(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 23, 2, 6);
    c.hidden[1] = 5;
    c.dropout = 0.25f;
    lp_lm m, back;
    assert_int_equal(lp_lm_init(&m, &c, 3), LP_OK);
    lp_ckpt ck;
    lp_ckpt_init(&ck);
    assert_int_equal(lp_lm_add_to_ckpt(&m, &ck), LP_OK);
    assert_int_equal(lp_kv_set(&ck.meta, "note", "x"), LP_OK);
    const char *path = run_path("ck", "m.ckpt");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/ck", lp_test_scratch_dir());
    assert_int_equal(lp_mkdirs(dir), LP_OK);
    assert_int_equal(lp_ckpt_save(&ck, path), LP_OK);
    lp_ckpt_free(&ck);
    lp_kv meta;
    lp_kv_init(&meta);
    assert_int_equal(lp_lm_load(&back, path, &meta), LP_OK);
    assert_string_equal(lp_kv_get(&meta, "note"), "x");
    assert_memory_equal(&back.cfg, &m.cfg, sizeof m.cfg);
    assert_int_equal(back.params.numel, m.params.numel);
    assert_memory_equal(back.params.data, m.params.data, m.params.numel * sizeof(float));
    lp_lm_free(&back);
    lp_kv_free(&meta);
    /* a checkpoint missing a tensor fails with a message naming it, leaving nothing allocated */
    lp_ckpt_init(&ck);
    assert_int_equal(lp_lm_config_to_kv(&m.cfg, &ck.meta), LP_OK);
    assert_int_equal(lp_ckpt_add_tensor(&ck, "embed.w", m.embed_w), LP_OK);
    assert_int_equal(lp_ckpt_save(&ck, path), LP_OK);
    lp_ckpt_free(&ck);
    assert_int_not_equal(lp_lm_load(&back, path, NULL), LP_OK);
    assert_non_null(strstr(lp_last_error(), "lstm1.w_ih"));
    assert_int_not_equal(lp_lm_load(&back, run_path("ck", "absent.ckpt"), NULL), LP_OK);
    lp_lm_free(&m);
}

/* ---- run directory and exact resume ---- */

static void load_params(const char *path, lp_lm *m) { assert_int_equal(lp_lm_load(m, path, NULL), LP_OK); }

/* The two checkpoints hold bit-identical parameters. */
static void assert_same_params(const char *path_a, const char *path_b) {
    lp_lm ma, mb;
    load_params(path_a, &ma);
    load_params(path_b, &mb);
    assert_int_equal(ma.params.numel, mb.params.numel);
    assert_memory_equal(ma.params.data, mb.params.data, ma.params.numel * sizeof(float));
    lp_lm_free(&ma);
    lp_lm_free(&mb);
}

static void test_resume_equals_uninterrupted(void **state) {
    (void)state;
    char dir_a[600], dir_b[600];
    snprintf(dir_a, sizeof dir_a, "%s/run_a", lp_test_scratch_dir());
    snprintf(dir_b, sizeof dir_b, "%s/run_b", lp_test_scratch_dir());
    /* A: three epochs in one go */
    lp_kv cfg;
    tiny_cfg(&cfg);
    lp_train_opts o = {.run_dir = dir_a, .quiet = 1};
    lp_train_result ra;
    assert_int_equal(train_lm(&cfg, &o, NULL, &ra), LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(ra.epochs_done, 3);
    assert_true(isfinite(ppl_of(&ra.last_test)) && isfinite(ppl_of(&ra.last_valid)) && isfinite(ra.last_loss));
    assert_true(ppl_of(&ra.last_valid) < 30); /* learned something: 30 words, uniform guessing is 30 */
    assert_true(ppl_of(&ra.best) <= ppl_of(&ra.last_valid) && ra.best_epoch >= 1 && ra.best_epoch <= 3);
    assert_int_equal(count_lines(run_path("run_a", "valid.tsv")), 1 + 3);
    assert_int_equal(access(run_path("run_a", "config.txt"), F_OK), 0);
    assert_int_equal(access(run_path("run_a", "best.ckpt"), F_OK), 0);

    /* B: one epoch, "interrupted", then resumed for the rest */
    tiny_cfg(&cfg);
    o.run_dir = dir_b;
    o.stop_after_epochs = 1;
    lp_train_result rb;
    assert_int_equal(train_lm(&cfg, &o, NULL, &rb), LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(rb.epochs_done, 1);
    /* simulate a crash inside epoch 2: a stray train.tsv row of epoch 2 (step = the steps of epoch 1 + 10)
     * must disappear on resume */
    lp_ckpt c1;
    assert_int_equal(lp_ckpt_load(&c1, run_path("run_b", "last.ckpt")), LP_OK);
    const long long steps1 = lp_kv_get_int_or(&c1.meta, "state.step", -1);
    assert_true(steps1 == rb.steps && steps1 > 10);
    lp_ckpt_free(&c1);
    FILE *f = fopen(run_path("run_b", "train.tsv"), "a");
    assert_non_null(f);
    fprintf(f, "%lld\t2\t10\t0.5\t1\t2\t3\t4\n", steps1 + 10);
    fclose(f);
    lp_kv_init(&cfg); /* everything comes from run_b/config.txt */
    lp_train_opts orr = {.run_dir = dir_b, .resume = 1, .quiet = 1};
    assert_int_equal(train_lm(&cfg, &orr, NULL, &rb), LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(rb.epochs_done, 3);

    /* same thread count, same windows, same dropout draws, same momentum: bit-identical */
    assert_same_params(run_path("run_a", "last.ckpt"), run_path("run_b", "last.ckpt"));
    /* and the logs agree (timings aside), without duplicate rows */
    char va[4096], vb[4096];
    valid_ppl_columns(run_path("run_a", "valid.tsv"), va, sizeof va);
    valid_ppl_columns(run_path("run_b", "valid.tsv"), vb, sizeof vb);
    assert_string_equal(va, vb);
    assert_int_equal(count_lines(run_path("run_a", "train.tsv")), count_lines(run_path("run_b", "train.tsv")));
    assert_true(ppl_of(&ra.last_test) == ppl_of(&rb.last_test));
    assert_int_equal(ra.steps, rb.steps);

    /* a finished run cannot be resumed without more epochs; with more it continues */
    lp_kv_init(&cfg);
    assert_int_equal(train_lm(&cfg, &orr, NULL, &rb), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "already trained"));
    lp_kv_free(&cfg);
    lp_kv_init(&cfg);
    orr.epochs_override = 4;
    assert_int_equal(train_lm(&cfg, &orr, NULL, &rb), LP_OK);
    assert_int_equal(rb.epochs_done, 4);
    assert_string_equal(lp_kv_get(&cfg, "train.epochs"), "4");
    lp_kv_free(&cfg);
    assert_int_equal(count_lines(run_path("run_b", "valid.tsv")), 1 + 4);
    /* a different run config in the same directory does not mix in: resume reads config.txt only */
    lp_kv saved;
    lp_kv_init(&saved);
    assert_int_equal(lp_kv_read_file(&saved, run_path("run_b", "config.txt")), LP_OK);
    assert_string_equal(lp_kv_get(&saved, "lm.units"), "12,10");
    assert_string_equal(lp_kv_get(&saved, "train.momentum"), "0.5");
    lp_kv_free(&saved);
}

/* A run stopped between writing best.ckpt and last.ckpt loses no best epoch: best.ckpt is written first,
 * so last.ckpt still holds the epoch before and the resumed run redoes the epoch (the stop: a failing
 * best.ckpt write in epoch 2, which improves on epoch 1 in this tiny run). */
static void test_stop_between_checkpoints(void **state) {
    (void)state;
    char dir_a[600], dir_b[600], best[640];
    snprintf(dir_a, sizeof dir_a, "%s/stop_a", lp_test_scratch_dir());
    snprintf(dir_b, sizeof dir_b, "%s/stop_b", lp_test_scratch_dir());
    lp_kv cfg;
    lp_train_result r;
    tiny_cfg(&cfg);
    lp_train_opts o = {.run_dir = dir_a, .quiet = 1};
    assert_int_equal(train_lm(&cfg, &o, NULL, &r), LP_OK);
    lp_kv_free(&cfg);
    tiny_cfg(&cfg);
    o.run_dir = dir_b;
    o.stop_after_epochs = 1;
    assert_int_equal(train_lm(&cfg, &o, NULL, &r), LP_OK);
    lp_kv_free(&cfg);

    snprintf(best, sizeof best, "%s/best.ckpt", dir_b);
    assert_int_equal(lp_test_block_file(best), 0);
    lp_kv_init(&cfg);
    lp_train_opts orr = {.run_dir = dir_b, .resume = 1, .quiet = 1};
    assert_int_equal(train_lm(&cfg, &orr, NULL, &r), LP_ERR_IO);
    assert_non_null(strstr(lp_last_error(), "best.ckpt")); /* the error names the file it could not write */
    lp_kv_free(&cfg);
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, run_path("stop_b", "last.ckpt")), LP_OK);
    assert_string_equal(lp_kv_get(&c.meta, "state.epoch"), "1"); /* not past the lost best */
    lp_ckpt_free(&c);

    assert_int_equal(lp_test_unblock_file(best), 0);
    lp_kv_init(&cfg);
    lp_status s = train_lm(&cfg, &orr, NULL, &r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 3);
    assert_same_params(run_path("stop_a", "best.ckpt"), run_path("stop_b", "best.ckpt"));
}

/* A resume keeps the valid.tsv rows of the finished epochs: rows are keyed by their first column, the
 * epoch; a key read from another column (at the recipes' lr 1, the lr column holds 1 too) would drop them. */
static void test_resume_keeps_valid_rows_at_lr_1(void **state) {
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/run_lr1", lp_test_scratch_dir());
    lp_kv cfg;
    tiny_cfg(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "train.lr", "1"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.epochs", "2"), LP_OK);
    lp_train_opts o = {.run_dir = dir, .quiet = 1, .stop_after_epochs = 1};
    lp_train_result r;
    assert_int_equal(train_lm(&cfg, &o, NULL, &r), LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(count_lines(run_path("run_lr1", "valid.tsv")), 1 + 1);
    lp_kv_init(&cfg);
    lp_train_opts orr = {.run_dir = dir, .resume = 1, .quiet = 1};
    assert_int_equal(train_lm(&cfg, &orr, NULL, &r), LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 2);
    assert_int_equal(count_lines(run_path("run_lr1", "valid.tsv")), 1 + 2); /* epoch 1's row kept */
}

/* Mid-epoch checkpoints (train.save_every, in steps): interrupted inside epoch 1 and again inside epoch 2
 * (right after the 2nd mid-epoch checkpoint of each call: steps 60, then 90 and 120 with ~106 steps per
 * epoch), resumed each time, the run ends with the weights of the uninterrupted run A of the previous test:
 * the carried recurrent state, the dropout generator and the momentum were restored at steps 60 and 120. */
static void test_mid_epoch_resume(void **state) {
    (void)state;
    char dir_c[600];
    snprintf(dir_c, sizeof dir_c, "%s/run_c", lp_test_scratch_dir());
    lp_kv cfg;
    tiny_cfg(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "train.save_every", "30"), LP_OK);
    lp_train_opts o = {.run_dir = dir_c, .quiet = 1, .stop_after_saves = 2};
    lp_train_result r;
    assert_int_equal(train_lm(&cfg, &o, NULL, &r), LP_OK); /* stops after step 60 of epoch 1 */
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 0);
    assert_int_equal(r.steps, 60);
    lp_kv meta;
    lp_kv_init(&meta);
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, run_path("run_c", "last.ckpt"), &meta), LP_OK);
    assert_string_equal(lp_kv_get(&meta, "state.step"), "60");
    assert_string_equal(lp_kv_get(&meta, "state.batch"), "60");
    assert_string_equal(lp_kv_get(&meta, "state.epoch"), "0");
    lp_kv_free(&meta);
    lp_lm_free(&m);
    lp_ckpt c;
    assert_int_equal(lp_ckpt_load(&c, run_path("run_c", "last.ckpt")), LP_OK);
    assert_non_null(lp_ckpt_find(&c, "state.h2")); /* the carried state of layer 2 [B, 10] */
    lp_ckpt_free(&c);
    /* stray rows written after the checkpoint (a crash at step 70) must go on resume */
    FILE *f = fopen(run_path("run_c", "train.tsv"), "a");
    assert_non_null(f);
    fprintf(f, "70\t1\t70\t0.5\t1\t2\t3\t4\n");
    fclose(f);
    lp_kv_init(&cfg);
    lp_train_opts orr = {.run_dir = dir_c, .resume = 1, .quiet = 1, .stop_after_saves = 2};
    assert_int_equal(train_lm(&cfg, &orr, NULL, &r), LP_OK); /* the rest of epoch 1, stops inside epoch 2 */
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 1);
    assert_int_equal(r.steps, 120);
    assert_int_equal(lp_ckpt_load(&c, run_path("run_c", "last.ckpt")), LP_OK);
    assert_string_equal(lp_kv_get(&c.meta, "state.epoch"), "1");
    assert_true(lp_kv_get_int_or(&c.meta, "state.batch", 0) > 0); /* inside epoch 2 */
    lp_ckpt_free(&c);
    lp_kv_init(&cfg);
    orr.stop_after_saves = 0;
    assert_int_equal(train_lm(&cfg, &orr, NULL, &r), LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, 3);
    /* bit-identical to the uninterrupted run */
    assert_same_params(run_path("run_a", "last.ckpt"), run_path("run_c", "last.ckpt"));
    assert_int_equal(count_lines(run_path("run_a", "train.tsv")), count_lines(run_path("run_c", "train.tsv")));
    char va[4096], vc[4096];
    valid_ppl_columns(run_path("run_a", "valid.tsv"), va, sizeof va);
    valid_ppl_columns(run_path("run_c", "valid.tsv"), vc, sizeof vc);
    assert_string_equal(va, vc);
}

static void test_finetune_from_checkpoint(void **state) {
    (void)state;
    /* train a model, then fine-tune from its checkpoint: sizes and dropout come from it, the schedule from
     * the new config; the first epoch starts from exactly the checkpoint's weights */
    char src[600], dst[600];
    snprintf(src, sizeof src, "%s/ft_src", lp_test_scratch_dir());
    snprintf(dst, sizeof dst, "%s/ft_dst", lp_test_scratch_dir());
    lp_kv cfg;
    tiny_cfg(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "train.epochs", "1"), LP_OK);
    lp_train_opts o = {.run_dir = src, .quiet = 1};
    lp_train_result r;
    assert_int_equal(train_lm(&cfg, &o, NULL, &r), LP_OK);
    lp_kv_free(&cfg);
    const char *ck = run_path("ft_src", "last.ckpt");
    lp_lm m0;
    load_params(ck, &m0);
    lp_ptb_corpus corpus;
    assert_int_equal(lp_ptb_corpus_load(&corpus, lp_test_scratch_dir(), 0), LP_OK);
    lp_lm_eval_result e0;
    assert_int_equal(lp_lm_evaluate(&m0, corpus.ids[LP_PTB_VALID], corpus.n[LP_PTB_VALID], 20, 8, NULL, &e0), LP_OK);

    lp_kv_init(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "data.dir", lp_test_scratch_dir()), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.epochs", "1"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.lr", "0"), LP_OK); /* lr 0: the weights must not move */
    assert_int_equal(lp_kv_set(&cfg, "train.bptt", "8"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.batch", "4"), LP_OK);
    lp_train_opts of = {.run_dir = dst, .quiet = 1, .init_ckpt = ck};
    assert_int_equal(train_lm(&cfg, &of, &corpus, &r), LP_OK);
    assert_string_equal(lp_kv_get(&cfg, "lm.units"), "12,10");       /* from the checkpoint */
    assert_true(fabs(lp_kv_get_double_or(&cfg, "lm.dropout", 0) - 0.3) < 1e-6); /* float32 0.3 */
    lp_lm m1;
    load_params(run_path("ft_dst", "last.ckpt"), &m1);
    assert_memory_equal(m0.params.data, m1.params.data, m0.params.numel * sizeof(float));
    /* valid.tsv evaluates with train.eval_batch 20 and window = bptt 8, as above */
    assert_true(fabs(ppl_of(&r.last_valid) - e0.ppl) <= 1e-9 * e0.ppl);
    lp_lm_free(&m1);
    lp_kv_free(&cfg);

    /* a vocabulary mismatch is refused: cap the vocabulary at 10 words */
    lp_kv_init(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "data.dir", lp_test_scratch_dir()), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "data.max_words", "10"), LP_OK);
    snprintf(dst, sizeof dst, "%s/ft_bad", lp_test_scratch_dir());
    lp_train_opts ob = {.run_dir = dst, .quiet = 1, .init_ckpt = ck};
    assert_int_equal(train_lm(&cfg, &ob, NULL, &r), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "vocabulary"));
    lp_kv_free(&cfg);
    lp_lm_free(&m0);
    lp_ptb_corpus_free(&corpus);
}

/* The giant-spike watch in LM training (optim.h, lp_grad_watch): a calm run reports none and its largest
 * pre-clip norm; the same run with one window's gradient multiplied by 10^6 — in epoch 2, so only a watch
 * that spans epochs has seen the LP_GRAD_WATCH_MIN windows it needs — reports exactly one spike, with a
 * norm 10^6 times that window's in the calm run (the windows before it are identical). Clipping (5, the
 * recipes') bounds the step, not the report. */
#define LM_SPIKE_CALL 120 /* 0-based window of the run; ~106 windows per epoch here */
typedef struct {
    int calls, spike;
    double norms[400]; /* pre-clip norms, before any scaling */
} spike_probe;

static lp_status probe_grad(void *user, lp_task *t, int64_t step, double *extra_loss) {
    spike_probe *p = user;
    (void)extra_loss;
    assert_int_equal(step, p->calls);        /* the optimizer's steps so far */
    assert_string_equal(t->ops->name, "lm"); /* the hook sees the LM task */
    double n;
    LP_TRY(lp_optim_grad_norm(t->params->grad, t->params->numel, &n));
    if (p->calls < 400) p->norms[p->calls] = n;
    if (p->spike && p->calls == LM_SPIKE_CALL)
        for (size_t i = 0; i < t->params->numel; i++) t->params->grad[i] *= 1e6f;
    p->calls++;
    return LP_OK;
}

static void spike_run(const char *name, spike_probe *p, lp_train_result *r) {
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", lp_test_scratch_dir(), name);
    lp_kv cfg;
    tiny_cfg(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "train.epochs", "2"), LP_OK);
    lp_train_opts o = {.run_dir = dir, .quiet = 1, .hooks = {.user = p, .after_backward = probe_grad}};
    assert_int_equal(train_lm(&cfg, &o, NULL, r), LP_OK);
    assert_true(lp_kv_get_double_or(&cfg, "train.clip", 0) == 5);
    lp_kv_free(&cfg);
}

static void test_spike_watch_reports(void **state) {
    (void)state;
    static spike_probe calm, spiky;
    lp_train_result r;
    spike_run("calm", &calm, &r);
    assert_true(calm.calls > LM_SPIKE_CALL && calm.calls <= 400);
    const int per_epoch = calm.calls / 2;
    assert_true(LM_SPIKE_CALL >= per_epoch && LM_SPIKE_CALL - per_epoch < LP_GRAD_WATCH_MIN); /* epoch 2, early */
    assert_int_equal(r.spikes, 0);
    double top = 0;
    for (int i = 0; i < calm.calls; i++) top = fmax(top, calm.norms[i]);
    assert_true(fabs(r.max_grad_norm - top) <= 1e-12 * top);

    spiky.spike = 1;
    spike_run("spiky", &spiky, &r);
    assert_int_equal(spiky.calls, calm.calls);
    for (int i = 0; i <= LM_SPIKE_CALL; i++) assert_true(spiky.norms[i] == calm.norms[i]);
    assert_int_equal(r.spikes, 1);
    assert_true(fabs(r.max_grad_norm / (1e6 * calm.norms[LM_SPIKE_CALL]) - 1) < 1e-5);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipes_and_schedule),
        cmocka_unit_test(test_model_keys),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_stop_between_checkpoints),
        cmocka_unit_test(test_resume_keeps_valid_rows_at_lr_1),
        cmocka_unit_test(test_mid_epoch_resume),
        cmocka_unit_test(test_finetune_from_checkpoint),
        cmocka_unit_test(test_spike_watch_reports),
    };
    return cmocka_run_group_tests(tests, setup_dir, lp_test_scratch_teardown);
}
