/* test_compat: the public code's training choices that `--compat reference` switches on (issue 25, items
 * 2 and 3), each on its own:
 *   - Keras's initialisers (model/init.h): orthogonality of the whole recurrent kernel, the Glorot limit
 *     and variance of the input and dense kernels, the biases;
 *   - repeat padding (data/batcher.h, lp_batch_model_lengths): the models read every one of the
 *     max_frames steps, so short videos score differently from mask padding, full-length ones the same,
 *     and a video's score does not depend on the other videos of its batch; the pruning statistics see
 *     every step;
 *   - train.dense_l2: its objective and exact gradient, and the step it adds in training;
 *   - the command line: `train --compat reference` gives other weights than a default run (it did not),
 *     records the preset's keys, and bad values of the new flags exit 2 naming the flag.
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
#include <cmocka.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/ops.h"
#include "model/evaluate.h"
#include "model/init.h"
#include "model/model.h"
#include "model/runcfg.h"
#include "prune/task.h"
#include "tasks/video_task.h"
#include "train/trainer.h"
#include "tests/common/scratch.h"
#include "tests/common/yt8m_set.h"

/* 120 videos of 6..16 frames: short and full-length ones at max_frames 12 */
static const lp_test_yt8m_set set = {.seed = 11, .videos = 120, .frames_max = 16, .rgb = 24, .audio = 8,
                                     .shuffle_buffer = 32};

static int setup(void **state) {
    (void)state;
    return lp_test_yt8m_setup("compat", &set);
}

/* ---- Keras's initialisers ------------------------------------------------------------------------- */

/* max |w| and the mean of w² over rows [r0, r1) of w. */
static void row_stats(const lp_tensor *w, int r0, int r1, double *maxabs, double *meansq) {
    const size_t c = (size_t)lp_tensor_cols(w);
    double m = 0, s = 0;
    for (size_t i = (size_t)r0 * c; i < (size_t)r1 * c; i++) {
        const double v = w->data[i];
        if (fabs(v) > m) m = fabs(v);
        s += v * v;
    }
    *maxabs = m;
    *meansq = s / (double)((size_t)(r1 - r0) * c);
}

/* Rows [r0, r1) of w are U(±limit): no |w| above it, the largest close to it, and E[w²] = limit²/3.
 * The relative sd of the mean of w² over n draws is sqrt(4/5)/sqrt(n) (<= 1.2% for the n >= 6,400 of
 * these tensors), so ±6% is 5 sd; PyTorch's ±1/sqrt(H) at these sizes is >= 16% away in variance. */
static void assert_glorot(const lp_tensor *w, int r0, int r1, int fan_in, int fan_out) {
    const double limit = sqrt(6.0 / (fan_in + fan_out));
    double m, ms;
    row_stats(w, r0, r1, &m, &ms);
    assert_true(m <= limit * (1 + 1e-6));
    assert_true(m >= 0.97 * limit);
    assert_true(fabs(ms / (limit * limit / 3) - 1) < 0.06);
}

/* max |(A^T A)_{ij} − δ_ij| over the column pairs of rows [r0, r1) of a [R,C] matrix, in double. */
static double gram_error(const lp_tensor *w, int r0, int r1) {
    const int C = lp_tensor_cols(w);
    double worst = 0;
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) {
            double s = 0;
            for (int r = r0; r < r1; r++) s += (double)w->data[(size_t)r * C + i] * w->data[(size_t)r * C + j];
            const double e = fabs(s - (i == j));
            if (e > worst) worst = e;
        }
    return worst;
}

/* Every LSTM group: w_ih Glorot over fan_in F and fan_out 4H; w_hh orthogonal as a whole (w_hh^T w_hh =
 * I_H to float32 rounding: entries ~1/sqrt(4H) rounded at 6e-8 relative, 4H-term sums, so 1e-5), and
 * NOT per gate (one gate's H x H block has B^T B ≈ I/4); b zero with forget-gate bias exactly 1. */
static void assert_keras_groups(const lp_model *m) {
    for (int g = 0; g < m->n_groups; g++) {
        const lp_unit_group *gr = &m->groups[g];
        const int H = gr->units;
        assert_glorot(gr->w_ih, 0, 4 * H, gr->input_dim, 4 * H);
        assert_true(gram_error(gr->w_hh, 0, 4 * H) < 1e-5);
        assert_true(gram_error(gr->w_hh, 0, H) > 0.3);
        for (int j = 0; j < 4 * H; j++) assert_true(gr->b->data[j] == (j >= H && j < 2 * H ? 1.0f : 0.0f));
    }
}

static void test_keras_init_statistics(void **state) {
    (void)state;
    /* paper model: F = 100, BiLSTM 32 + 32, LSTM 64, 100 classes (sizes where Glorot and PyTorch differ) */
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_model_default_kv(&kv, LP_MODEL_PAPER, 100, 64, 1, 100, 2, 0), LP_OK);
    lp_model m, again;
    assert_int_equal(lp_model_init_kv(&m, &kv, 5), LP_OK);
    assert_int_equal(lp_model_init_keras(&m, 5), LP_OK);
    assert_keras_groups(&m);
    assert_glorot(m.paper.out_w, 0, 100, 64, 100);
    for (int c = 0; c < 100; c++) assert_true(m.paper.out_b->data[c] == 0.0f);
    /* the same seed gives the same weights, another seed others */
    assert_int_equal(lp_model_init_kv(&again, &kv, 5), LP_OK);
    assert_int_equal(lp_model_init_keras(&again, 5), LP_OK);
    assert_memory_equal(m.params->data, again.params->data, m.params->numel * sizeof(float));
    assert_int_equal(lp_model_init_keras(&again, 6), LP_OK);
    assert_memory_not_equal(m.groups[0].w_hh->data, again.groups[0].w_hh->data, 16 * sizeof(float));
    lp_model_free(&again);
    lp_model_free(&m);
    lp_kv_free(&kv);

    /* LSTM + MoE: 2 layers of 64, 100 classes, 2 experts: the gate rows (300) and the expert rows (200)
     * of moe.w are two Glorot layers with their own limits (0.128 and 0.151) */
    lp_kv_init(&kv);
    assert_int_equal(lp_model_default_kv(&kv, LP_MODEL_LSTM, 100, 64, 2, 100, 2, 0), LP_OK);
    assert_int_equal(lp_model_init_kv(&m, &kv, 5), LP_OK);
    assert_int_equal(lp_model_init_keras(&m, 5), LP_OK);
    assert_keras_groups(&m);
    assert_glorot(m.lstm.moe_w, 0, 300, 64, 300);
    assert_glorot(m.lstm.moe_w, 300, 500, 64, 200);
    for (int i = 0; i < 500; i++) assert_true(m.lstm.moe_b->data[i] == 0.0f);
    lp_model_free(&m);
    lp_kv_free(&kv);

    /* a wide matrix gets orthonormal rows (Keras's transpose case) */
    float buf[6 * 20];
    int dims[2] = {6, 20};
    lp_tensor w = {.data = buf, .ndim = 2};
    memcpy(w.dims, dims, sizeof dims);
    lp_rng r;
    lp_rng_init(&r, 1, LP_RNG_STREAM_TEST);
    assert_int_equal(lp_init_orthogonal(&w, &r), LP_OK);
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            double s = 0;
            for (int k = 0; k < 20; k++) s += (double)buf[i * 20 + k] * buf[j * 20 + k];
            assert_true(fabs(s - (i == j)) < 1e-6);
        }
    lp_weight_init wi;
    assert_int_equal(lp_weight_init_parse("keras", &wi), LP_OK);
    assert_int_equal(wi, LP_WEIGHT_INIT_KERAS);
    assert_int_equal(lp_weight_init_parse("glorot", &wi), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "train.weight_init"));
}

/* ---- padding -------------------------------------------------------------------------------------- */

/* A fresh paper model (H = 8) and the run configuration that reads the set's validation split. */
static void video_setup(lp_kv *kv, lp_model *m, const char *padding, int max_frames, int eval_batch) {
    lp_test_yt8m_cfg(kv, &set, LP_TEST_YT8M_VALID, 1, 3);
    lp_kv_set(kv, "data.padding", padding);
    lp_kv_set_int(kv, "data.max_frames", max_frames);
    lp_kv_set_int(kv, "train.eval_batch", eval_batch);
    assert_int_equal(lp_runcfg_defaults(kv), LP_OK);
    assert_int_equal(lp_model_default_kv(kv, LP_MODEL_PAPER, set.rgb + set.audio, 8, 1, LP_TEST_YT8M_CLASSES, 2, 0),
                     LP_OK);
    assert_int_equal(lp_model_init_kv(m, kv, 3), LP_OK);
}

#define MAX_VIDEOS 128
typedef struct {
    int n;
    float p[MAX_VIDEOS][LP_TEST_YT8M_CLASSES];
} probs;

static lp_status keep_probs(void *user, const char *id, const float *p, int classes) {
    (void)id;
    probs *o = user;
    assert_true(o->n < MAX_VIDEOS && classes == LP_TEST_YT8M_CLASSES);
    memcpy(o->p[o->n++], p, sizeof o->p[0]);
    return LP_OK;
}

/* Every validation video's probabilities (in file order) and its real length after the frame cap. */
static void video_probs(const char *padding, int max_frames, int eval_batch, probs *out, int *lengths) {
    lp_kv kv;
    lp_model m;
    video_setup(&kv, &m, padding, max_frames, eval_batch);
    char **pats;
    int n;
    assert_int_equal(lp_runcfg_patterns(&kv, "valid", &pats, &n), LP_OK);
    lp_batcher_config bc;
    assert_int_equal(lp_runcfg_batcher(&kv, pats, n, 0, &bc), LP_OK);
    out->n = 0;
    lp_eval_result r;
    assert_int_equal(lp_evaluate(&m, &bc, 20, keep_probs, out, &r), LP_OK);
    if (lengths) { /* the lengths, from a batcher of its own */
        lp_batcher *b;
        const lp_batch *bt;
        int k = 0;
        assert_int_equal(lp_batcher_new(&b, &bc), LP_OK);
        while (lp_batcher_next(b, &bt) == LP_OK)
            for (int i = 0; i < bt->B; i++) lengths[k++] = bt->lengths[i];
        assert_int_equal(k, out->n);
        lp_batcher_free(b);
    }
    lp_runcfg_free_patterns(pats, n);
    lp_model_free(&m);
    lp_kv_free(&kv);
}

static double max_diff(const float *a, const float *b) {
    double d = 0;
    for (int c = 0; c < LP_TEST_YT8M_CLASSES; c++) d = fmax(d, fabs((double)a[c] - b[c]));
    return d;
}

/* At max_frames 12, the videos of 12..16 frames are full-length and the others (6..11) short. Mask and
 * repeat agree on the full-length ones (the same input and steps, but a GEMM over another number of rows
 * may round differently: 1e-6 on probabilities) and differ on the short ones, which under repeat read
 * their last frame again up to step 12 (differences of 1e-4 or more: the repeated frames move the
 * state). Repeat's scores at eval batch 1 and 7 are equal: no video depends on its batch. */
static void test_padding_modes(void **state) {
    (void)state;
    static probs mask, rep, rep1, rep7;
    static int len[MAX_VIDEOS];
    video_probs("mask", 12, 16, &mask, len);
    video_probs("repeat", 12, 16, &rep, NULL);
    video_probs("repeat", 12, 1, &rep1, NULL);
    video_probs("repeat", 12, 7, &rep7, NULL);
    assert_int_equal(mask.n, rep.n);
    int shorts = 0, fulls = 0;
    for (int v = 0; v < mask.n; v++) {
        const double d = max_diff(mask.p[v], rep.p[v]);
        if (len[v] == 12) {
            fulls++;
            assert_true(d < 1e-6);
        } else {
            shorts++;
            assert_true(len[v] < 12);
            assert_true(d > 1e-4);
        }
        assert_true(max_diff(rep1.p[v], rep7.p[v]) < 1e-6);
        assert_true(max_diff(rep1.p[v], rep.p[v]) < 1e-6);
    }
    assert_true(shorts >= 3 && fulls >= 3); /* both kinds are exercised */
}

typedef struct {
    int batches, with_lengths, T;
} resp_seen;

static lp_status see_responses(void *user, const lp_task_responses *r) {
    resp_seen *s = user;
    s->batches++;
    s->with_lengths += r->lengths != NULL;
    s->T = r->T;
    return LP_OK;
}

/* The pruning statistics read the batches as the model does: under repeat every one of the max_frames
 * steps is a response (no lengths, T = max_frames); under mask each video's own steps. */
static void test_padding_responses(void **state) {
    (void)state;
    const char *modes[2] = {"repeat", "mask"};
    for (int k = 0; k < 2; k++) {
        lp_kv kv;
        lp_model m;
        video_setup(&kv, &m, modes[k], 15, 16);
        lp_task *t;
        assert_int_equal(lp_video_task_new(&m, &kv, &t), LP_OK);
        resp_seen s = {0};
        assert_int_equal(lp_task_responses_run(t, 2, see_responses, &s), LP_OK);
        assert_int_equal(s.batches, 2);
        if (k == 0) {
            assert_int_equal(s.with_lengths, 0);
            assert_int_equal(s.T, 15);
        } else {
            assert_int_equal(s.with_lengths, 2);
        }
        lp_task_free(t);
        lp_kv_free(&kv);
    }
}

/* ---- train.dense_l2 ------------------------------------------------------------------------------- */

/* The objective of one training batch and the gradients of every parameter, with dense L2 `l2`. */
static void batch_grads(float l2, double *loss, double *objective, float *grad, size_t *numel, lp_model *init) {
    lp_kv kv;
    lp_model m;
    video_setup(&kv, &m, "mask", 16, 16);
    if (l2 > 0) lp_kv_setf(&kv, "train.dense_l2", "%.9g", (double)l2);
    lp_task *t;
    assert_int_equal(lp_video_task_new(&m, &kv, &t), LP_OK);
    lp_model *tm = lp_video_task_model(t);
    if (init) assert_int_equal(lp_model_init_kv(init, &kv, 3), LP_OK);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, (size_t)8 << 20), LP_OK);
    assert_int_equal(t->ops->epoch_begin(t, 0, 0), LP_OK);
    lp_task_batch b;
    lp_rng drop;
    lp_rng_init(&drop, 1, LP_RNG_STREAM_DROPOUT);
    assert_int_equal(t->ops->next_batch(t), LP_OK);
    assert_int_equal(t->ops->train_forward(t, &tp, &drop, 0, 1, &b), LP_OK);
    *loss = b.loss->data[0];
    *objective = b.objective->data[0];
    lp_params_zero_grad(tm->params);
    assert_int_equal(lp_tape_backward(&tp, b.objective), LP_OK);
    *numel = tm->params->numel;
    memcpy(grad, tm->params->grad, *numel * sizeof(float));
    lp_tape_free(&tp);
    lp_task_free(t);
    lp_kv_free(&kv);
}

/* The objective gains exactly L·Σw² over out.w, its gradient exactly 2L·w on out.w and nothing
 * elsewhere; the logged loss is the loss without it. One SGD step with L moves out.w by −lr·2L·w0 more. */
static void test_dense_l2(void **state) {
    (void)state;
    static float g0[1 << 16], g1[1 << 16];
    double loss0, obj0, loss1, obj1;
    size_t n0, n1;
    lp_model w0;
    const float L = 0.25f;
    batch_grads(0, &loss0, &obj0, g0, &n0, &w0);
    batch_grads(L, &loss1, &obj1, g1, &n1, NULL);
    assert_true(n0 == n1 && n0 <= sizeof g0 / sizeof g0[0]);
    assert_true(loss0 == loss1 && obj0 == loss0);
    const lp_tensor *ow = w0.paper.out_w;
    const size_t off = (size_t)(ow->data - w0.params->data), nw = lp_tensor_numel(ow);
    double sq = 0;
    for (size_t i = 0; i < nw; i++) sq += (double)ow->data[i] * ow->data[i];
    assert_true(sq > 0.1);
    /* float32 objective: the penalty is added to a loss of ~4 in float, so 1e-6 relative */
    assert_true(fabs((obj1 - loss1) - L * sq) < 1e-6 * obj1);
    for (size_t i = 0; i < n0; i++) {
        if (i >= off && i < off + nw) /* 2L·w added to a float gradient: rounding of one addition */
            assert_true(fabs(((double)g1[i] - g0[i]) - 2.0 * L * ow->data[i - off]) < 1e-6);
        else
            assert_true(g1[i] == g0[i]);
    }

    /* training: one full-batch SGD step at lr 0.1 with and without L */
    lp_model out[2];
    for (int k = 0; k < 2; k++) {
        lp_kv kv;
        lp_model m;
        video_setup(&kv, &m, "mask", 16, 16);
        lp_model_free(&m);
        lp_kv_set(&kv, "train.optimizer", "sgd");
        lp_kv_set(&kv, "train.lr", "0.1");
        lp_kv_set(&kv, "train.batch", "1000");
        lp_kv_set(&kv, "train.dense_l2", k ? "0.25" : "0");
        char dir[600];
        snprintf(dir, sizeof dir, "%s/l2_%d", lp_test_scratch_dir(), k);
        lp_train_opts o = {.run_dir = dir, .quiet = 1};
        lp_train_result r;
        lp_status s = lp_train(&lp_video_task_kind, &kv, &o, &r);
        if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
        assert_int_equal(s, LP_OK);
        assert_int_equal(r.steps, 1);
        char p[700];
        snprintf(p, sizeof p, "%s/last.ckpt", dir);
        assert_int_equal(lp_model_load(&out[k], p, NULL), LP_OK);
        lp_kv_free(&kv);
    }
    for (size_t i = 0; i < n0; i++) {
        const double a = out[0].params->data[i], b = out[1].params->data[i];
        if (i >= off && i < off + nw) assert_true(fabs((b - a) + 0.1 * 2 * L * ow->data[i - off]) < 1e-6);
        else assert_true(a == b);
    }
    for (int k = 0; k < 2; k++) lp_model_free(&out[k]);
    lp_model_free(&w0);
}

/* ---- the command line ----------------------------------------------------------------------------- */

static char out_buf[1 << 16];

static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "OPENBLAS_NUM_THREADS=1", fmt, ap);
    va_end(ap);
    return rc;
}

#define TRAIN_ARGS "train --train 'data/train*.tfrecord' --frame-features rgb:24,audio:8 --classes 6 --hidden 8 " \
                   "--epochs 1 --batch 16 --shuffle-buffer 32 --lr 0.01 --quiet"

/* A config.txt line "key = value" is present. */
static int has_line(const char *path, const char *line) {
    char *text;
    size_t len;
    if (lp_file_read_all(path, &text, &len) != LP_OK) return 0;
    int found = strstr(text, line) != NULL;
    lp_free(text);
    return found;
}

/* `train --compat reference` now trains another model than `train` (the issue: bit-identical weights),
 * and records the preset's keys; an explicit flag still wins over the preset. */
static void test_compat_train_differs(void **state) {
    (void)state;
    assert_int_equal(run(TRAIN_ARGS " --out ours"), 0);
    assert_int_equal(run(TRAIN_ARGS " --out ref --compat reference"), 0);
    assert_int_equal(run(TRAIN_ARGS " --out ref_pad --compat reference --padding mask --weight-init pytorch"), 0);
    const char *ref = lp_test_scratch_path("ref/config.txt");
    const char *lines[] = {"train.weight_init = keras", "train.eps = 1e-07", "train.lr_decay = 0.95",
                           "train.lr_decay_steps = 4000000", "data.padding = repeat", "data.max_frames = 300",
                           "compat = reference"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) assert_true(has_line(ref, lines[i]));
    assert_false(has_line(ref, "prune.")); /* train takes no pruning key */
    assert_true(has_line(lp_test_scratch_path("ours/config.txt"), "data.padding = mask"));
    assert_true(has_line(lp_test_scratch_path("ref_pad/config.txt"), "data.padding = mask"));
    assert_true(has_line(lp_test_scratch_path("ref_pad/config.txt"), "train.eps = 1e-07"));
    lp_model a, b, c;
    assert_int_equal(lp_model_load(&a, lp_test_scratch_path("ours/last.ckpt"), NULL), LP_OK);
    assert_int_equal(lp_model_load(&b, lp_test_scratch_path("ref/last.ckpt"), NULL), LP_OK);
    assert_int_equal(lp_model_load(&c, lp_test_scratch_path("ref_pad/last.ckpt"), NULL), LP_OK);
    assert_int_equal(a.params->numel, b.params->numel);
    size_t differ = 0, differ_c = 0;
    for (size_t i = 0; i < a.params->numel; i++) {
        differ += a.params->data[i] != b.params->data[i];
        differ_c += a.params->data[i] != c.params->data[i];
    }
    assert_true(differ > a.params->numel * 9 / 10); /* other initial weights: nearly every weight differs */
    assert_true(differ_c > 0);                      /* Adam's epsilon alone changes the steps */
    lp_model_free(&a);
    lp_model_free(&b);
    lp_model_free(&c);
}

/* Bad values of the new flags exit 2 with a message naming the flag, before any run directory is made. */
static void test_bad_flags(void **state) {
    (void)state;
    const struct {
        const char *args, *says;
    } bad[] = {
        {"--weight-init glorot", "--weight-init"},
        {"--weight-init keras --bias-init pair", "--bias-init"},
        {"--dense-l2 -1", "--dense-l2"},
        {"--dense-l2 abc", "--dense-l2"},
        {"--adam-eps 0", "--adam-eps"},
        {"--padding zeros", "--padding"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(run(TRAIN_ARGS " --out bad %s", bad[i].args), 2);
        if (!strstr(out_buf, bad[i].says)) fprintf(stderr, "%s: %s\n", bad[i].args, out_buf);
        assert_non_null(strstr(out_buf, bad[i].says));
    }
    assert_int_equal(run("lm-train --recipe small --dense-l2 0.1 --out bad"), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keras_init_statistics),
        cmocka_unit_test(test_padding_modes),
        cmocka_unit_test(test_padding_responses),
        cmocka_unit_test(test_dense_l2),
        cmocka_unit_test(test_compat_train_differs),
        cmocka_unit_test(test_bad_flags),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
