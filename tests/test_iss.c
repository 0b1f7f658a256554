/* test_iss: the ISS group-lasso baseline (prune/iss) on video tasks (tasks/video_task.h): the penalty's
 * gradient against central differences of its value (double), zero groups (no NaN), argument errors, the
 * kept plan, and the whole baseline: training a tiny paper model with a large λ through the trainer's
 * hook (lp_iss_grad_hook) drives units below the threshold, and lp_iss_kept + lp_surgery_shrink give a
 * smaller model equal to the masked one. The LM's layout (a fixed tied layer left out of the penalty) and
 * the zeroing update hook are tested in tests/test_lm_prune.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/tape.h"
#include "model/model.h"
#include "model/runcfg.h"
#include "tasks/video_task.h"
#include "prune/iss.h"
#include "prune/surgery.h"
#include "train/trainer.h"
#include "check/gradcheck.h"
#include "tests/common/scratch.h"
#include "tests/common/yt8m_set.h"

static lp_model *model(lp_task *t) { return lp_video_task_model(t); }

/* A model of `kind` with the given units wrapped in a video task without data. */
static lp_task *build(lp_model_kind kind, const char *units, int F, int C, uint64_t seed) {
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_model_default_kv(&kv, kind, F, 4, 1, C, 2, 0.0f), LP_OK);
    assert_int_equal(lp_kv_set(&kv, "model.units", units), LP_OK);
    if (kind == LP_MODEL_PAPER) assert_int_equal(lp_kv_set_int(&kv, "model.groups", 2 + (strlen(units) - 3) / 2), LP_OK);
    else assert_int_equal(lp_kv_set_int(&kv, "model.groups", (long long)(strlen(units) + 1) / 2), LP_OK);
    lp_model m;
    assert_int_equal(lp_model_init_kv(&m, &kv, seed), LP_OK);
    lp_kv_free(&kv);
    lp_task *t;
    assert_int_equal(lp_video_task_new(&m, NULL, &t), LP_OK);
    return t;
}

/* Ω / λ = Σ_g Σ_j ||w_{g,j}|| from lp_iss_norms, in double. */
static double sum_norms(const lp_task *t) {
    double s = 0, norms[64];
    for (int g = 0; g < t->n_groups; g++) {
        assert_true(t->groups[g].units <= 64);
        assert_int_equal(lp_iss_norms(t, g, norms), LP_OK);
        for (int j = 0; j < t->groups[g].units; j++) s += norms[j];
    }
    return s;
}

/* ---- gradient ------------------------------------------------------------------------------------------ */

/* Every parameter: ∂Ω/∂w from lp_iss_penalty against (Ω(w+h) − Ω(w−h)) / (w+ − w−), where w± are the
 * float values actually stored and Ω is evaluated in double. The check covers the overlaps (w_hh entries
 * in two groups, consumer columns in the next group's rows) and the tensors in no group (out.b, moe.b:
 * gradient exactly 0). */
static void check_gradient(lp_model_kind kind, const char *units) {
    lp_task *t = build(kind, units, 4, 3, 5);
    lp_params *ps = t->params;
    const double lambda = 0.7;
    const size_t N = ps->numel;
    /* the penalty adds to existing gradients */
    float *g0 = malloc(N * sizeof(float));
    lp_gc_fill_uniform(g0, N, -1, 1, 3);
    memcpy(ps->grad, g0, N * sizeof(float));
    double pen;
    assert_int_equal(lp_iss_penalty(t, lambda, &pen), LP_OK);
    const double base = sum_norms(t);
    assert_true(fabs(pen - lambda * base) <= 1e-12 * pen); /* same double sums, same order */
    double worst = 0, gmax = 0;
    size_t zero_grad = 0;
    for (size_t i = 0; i < N; i++) {
        const double ana = (double)ps->grad[i] - (double)g0[i];
        float *w = &ps->data[i];
        const float w0 = *w;
        const float wp = w0 + 1e-3f, wm = w0 - 1e-3f;
        *w = wp;
        const double fp = sum_norms(t);
        *w = wm;
        const double fm = sum_norms(t);
        *w = w0;
        const double num = lambda * (fp - fm) / ((double)wp - (double)wm);
        /* Central differences of a norm: truncation h²/6·|∂³Ω| ≲ λ·h²/||w_g||² < 1e-6 for group norms of
         * order 1 (h = 1e-3); ana carries the float32 rounding of the gradient buffer (|g0| ≤ 1: ~6e-8).
         * A wrong factor, a missed overlap or a missing group is off by >= 1e-3. */
        const double err = fabs(num - ana) / (1e-6 + 1e-5 * fabs(num));
        worst = fmax(worst, err);
        gmax = fmax(gmax, fabs(num));
        zero_grad += ana == 0.0 && num == 0.0;
    }
    /* only the head bias is in no group: its gradient is 0 both ways */
    const lp_model *m = model(t);
    const lp_tensor *hb = m->kind == LP_MODEL_PAPER ? m->paper.out_b : m->lstm.moe_b;
    assert_int_equal(zero_grad, lp_tensor_numel(hb));
    fprintf(stderr, "%s: ISS gradient vs central differences over %zu weights: worst ratio %.3f (max |grad| %.3f)\n",
            lp_model_kind_name(kind), N, worst, gmax);
    assert_true(worst <= 1.0);
    assert_true(gmax > 0.05);
    free(g0);
    lp_task_free(t);
}

static void test_gradient_paper(void **state) {
    (void)state;
    check_gradient(LP_MODEL_PAPER, "3,2,4,3");
}

static void test_gradient_lstm(void **state) {
    (void)state;
    check_gradient(LP_MODEL_LSTM, "3,4,2");
}

/* ---- zero groups, errors ----------------------------------------------------------------------------------- */

static void test_zero_group_no_nan(void **state) {
    (void)state;
    lp_task *t = build(LP_MODEL_PAPER, "3,2,4,3", 4, 3, 8);
    lp_surgery_zero_unit(&t->groups[0], 1);
    for (int j = 0; j < 3; j++) lp_surgery_zero_unit(&t->groups[3], j); /* a whole group at zero */
    double norms[4];
    assert_int_equal(lp_iss_norms(t, 0, norms), LP_OK);
    assert_true(norms[0] > 0 && norms[1] == 0.0 && norms[2] > 0);
    assert_int_equal(lp_iss_norms(t, 3, norms), LP_OK);
    assert_true(norms[0] == 0.0 && norms[1] == 0.0 && norms[2] == 0.0);
    lp_params_zero_grad(t->params);
    double pen;
    assert_int_equal(lp_iss_penalty(t, 2.0, &pen), LP_OK);
    assert_true(isfinite(pen) && pen > 0);
    assert_true(fabs(pen - 2.0 * sum_norms(t)) <= 1e-12 * pen);
    for (size_t i = 0; i < t->params->numel; i++) assert_true(isfinite(t->params->grad[i]));
    /* every element of a zero group is a zero weight, so no group (its own or an overlapping one) pushes it */
    lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
    const int n = lp_surgery_footprint(&t->groups[0], 1, segs);
    for (int s = 0; s < n; s++)
        for (int k = 0; k < segs[s].n; k++) assert_true(segs[s].t->grad[segs[s].start + (size_t)k * segs[s].stride] == 0.0f);
    /* ... while a live unit's weights are pushed */
    assert_true(t->groups[0].w_ih->grad[0] != 0.0f);
    lp_task_free(t);
}

static void test_errors(void **state) {
    (void)state;
    lp_task *t = build(LP_MODEL_LSTM, "3,2", 4, 2, 1);
    double pen = 5, norms[8];
    assert_int_equal(lp_iss_penalty(t, -1.0, &pen), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "lambda"));
    assert_int_equal(lp_iss_penalty(t, NAN, &pen), LP_ERR_ARG);
    assert_int_equal(lp_iss_penalty(t, INFINITY, &pen), LP_ERR_ARG);
    /* λ = 0: nothing to add */
    lp_params_zero_grad(t->params);
    assert_int_equal(lp_iss_penalty(t, 0.0, &pen), LP_OK);
    assert_true(pen == 0.0);
    for (size_t i = 0; i < t->params->numel; i++) assert_true(t->params->grad[i] == 0.0f);
    assert_int_equal(lp_iss_norms(t, 2, norms), LP_ERR_ARG);
    assert_int_equal(lp_iss_norms(t, -1, norms), LP_ERR_ARG);
    lp_prune_plan p;
    assert_int_equal(lp_iss_kept(t, -0.5, &p), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "threshold"));
    assert_int_equal(lp_iss_kept(t, NAN, &p), LP_ERR_ARG);
    assert_int_equal(p.n_groups, 0); /* nothing held on error */
    int zeroed = 7;
    assert_int_equal(lp_iss_zero_below(t, -1.0, &zeroed), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "threshold"));
    /* a NaN weight is a numeric error naming the group and the unit (lstm2.w_hh [8,2]: element 3 is row
     * 1, column 1, both unit 1's); that group's gradients are left alone */
    t->groups[1].w_hh->data[3] = NAN;
    lp_params_zero_grad(t->params);
    assert_int_equal(lp_iss_penalty(t, 0.1, &pen), LP_ERR_NUMERIC);
    assert_non_null(strstr(lp_last_error(), "group lstm2 unit 1"));
    for (int i = 0; i < 8 * 2; i++) assert_true(t->groups[1].w_hh->grad[i] == 0.0f);
    lp_task_free(t);
}

/* ---- the kept plan --------------------------------------------------------------------------------------- */

/* Units whose footprint is scaled down fall below the threshold, exactly those; a group entirely below
 * keeps its largest unit. */
static void test_kept_plan(void **state) {
    (void)state;
    lp_task *t = build(LP_MODEL_PAPER, "4,3,5,3", 4, 3, 2);
    /* scale units: fw 1 and 3 by 1e-3; every lstm3 unit by 1e-3, unit 2 of it by 2e-3 (the largest) */
    const struct { int g, j; float s; } small[] = {{0, 1, 1e-3f}, {0, 3, 1e-3f}, {3, 0, 1e-3f}, {3, 1, 1e-3f}, {3, 2, 2e-3f}};
    for (size_t u = 0; u < sizeof small / sizeof small[0]; u++) {
        lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
        const int n = lp_surgery_footprint(&t->groups[small[u].g], small[u].j, segs);
        for (int s = 0; s < n; s++)
            for (int k = 0; k < segs[s].n; k++) segs[s].t->data[segs[s].start + (size_t)k * segs[s].stride] *= small[u].s;
    }
    double norms[8], big_min = INFINITY, small_max = 0;
    for (int g = 0; g < t->n_groups; g++) {
        assert_int_equal(lp_iss_norms(t, g, norms), LP_OK);
        for (int j = 0; j < t->groups[g].units; j++) {
            int is_small = 0;
            for (size_t u = 0; u < sizeof small / sizeof small[0]; u++) is_small |= small[u].g == g && small[u].j == j;
            if (is_small) small_max = fmax(small_max, norms[j]);
            else big_min = fmin(big_min, norms[j]);
        }
    }
    /* overlaps leak a little of the neighbours into a scaled unit's norm, but the gap stays wide */
    assert_true(small_max * 10 < big_min);
    const double thr = sqrt(small_max * big_min);
    lp_prune_plan p;
    assert_int_equal(lp_iss_kept(t, thr, &p), LP_OK);
    assert_string_equal(p.method, "iss");
    assert_int_equal(p.n_groups, 4);
    assert_int_equal(p.g[0].k, 2);
    assert_int_equal(p.g[0].kept[0], 0);
    assert_int_equal(p.g[0].kept[1], 2);
    assert_int_equal(p.g[1].k, 3);
    assert_int_equal(p.g[2].k, 5);
    assert_int_equal(p.g[3].k, 1);
    assert_int_equal(p.g[3].kept[0], 2);
    assert_int_equal(lp_prune_plan_check(t, &p), LP_OK);
    lp_prune_plan_free(&p);
    /* threshold 0 keeps everything */
    assert_int_equal(lp_iss_kept(t, 0.0, &p), LP_OK);
    assert_int_equal(lp_prune_plan_kept_total(&p), 4 + 3 + 5 + 3);
    lp_prune_plan_free(&p);
    lp_task_free(t);
}

/* ---- the baseline end to end --------------------------------------------------------------------------- */

#define EPOCHS 12
static const lp_test_yt8m_set set = {.seed = 11, .videos = 160, .frames_max = 12, .rgb = 24, .audio = 8,
                                     .shuffle_buffer = 32};

static int setup(void **state) {
    (void)state;
    return lp_test_yt8m_setup("iss", &set);
}

/* Train the paper model (H = 16: BiLSTM 8 + 8, LSTM 16) with the ISS grad hook (the penalty added to the
 * logged loss, no proximal step, no zeroing); return the trained model as a task. */
static lp_task *train_with_iss(double lambda, const char *run, lp_iss_state *st) {
    lp_kv kv;
    lp_test_yt8m_cfg(&kv, &set, 0, EPOCHS, 4);
    assert_int_equal(lp_runcfg_defaults(&kv), LP_OK);
    assert_int_equal(lp_model_default_kv(&kv, LP_MODEL_PAPER, 32, 16, 1, 6, 2, 0.0f), LP_OK);
    memset(st, 0, sizeof *st);
    st->lambda = lambda;
    st->add_to_loss = 1;
    lp_train_opts o = {.run_dir = lp_test_scratch_path(run), .quiet = 1,
                       .hooks = {.user = st, .after_backward = lp_iss_grad_hook}};
    lp_train_result res;
    lp_status s = lp_train(&lp_video_task_kind, &kv, &o, &res);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(st->calls, res.steps); /* the hook ran once per step */
    lp_kv_free(&kv);
    char path[600];
    snprintf(path, sizeof path, "%s/last.ckpt", lp_test_scratch_path(run));
    lp_task *t;
    assert_int_equal(lp_video_task_load(path, NULL, &t), LP_OK);
    return t;
}

static void print_norms(const char *what, const lp_task *t) {
    double norms[64];
    for (int g = 0; g < t->n_groups; g++) {
        assert_int_equal(lp_iss_norms(t, g, norms), LP_OK);
        fprintf(stderr, "%s %-10s", what, t->groups[g].name);
        for (int j = 0; j < t->groups[g].units; j++) fprintf(stderr, " %.2g", norms[j]);
        fprintf(stderr, "\n");
    }
}

/* Apply a model to a fixed random batch (with lengths): probabilities [4*6]. */
static void probs_of(lp_task *t, float *probs) {
    enum { B = 4, T = 7, F = 32 };
    static const int lengths[B] = {7, 3, 5, 1};
    float x[B * T * F];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 12);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tape_set_grad(&tp, 0);
    lp_model_out o;
    assert_int_equal(lp_model_forward(model(t), &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){B, T, F}), lengths, NULL,
                                      NULL, &o),
                     LP_OK);
    lp_model_probs(&o, probs);
    lp_tape_free(&tp);
}

/* λ = 0.02 (the penalty starts near 1, the loss near 2.5) for 12 epochs of Adam at lr 0.01 leaves, in
 * this run, most BiLSTM units and a few LSTM-2 units with norms ~0.01 while live units are ~0.1–1.5;
 * without the penalty no unit comes near the threshold 0.05. */
static void test_training_drives_units_out(void **state) {
    (void)state;
    const double thr = 0.05;
    lp_iss_state st0, st;
    lp_task *plain = train_with_iss(0.0, "plain", &st0);
    lp_task *iss = train_with_iss(0.02, "iss", &st);
    print_norms("lambda=0   ", plain);
    print_norms("lambda=0.02", iss);
    assert_true(st0.last_penalty == 0.0 && st.last_penalty > 0);

    lp_prune_plan p0, p;
    assert_int_equal(lp_iss_kept(plain, thr, &p0), LP_OK);
    assert_int_equal(lp_iss_kept(iss, thr, &p), LP_OK);
    const int total = 8 + 8 + 16, kept = lp_prune_plan_kept_total(&p);
    fprintf(stderr, "kept at threshold %.2g: without ISS %d of %d, with ISS %d (%d, %d, %d)\n", thr,
            lp_prune_plan_kept_total(&p0), total, kept, p.g[0].k, p.g[1].k, p.g[2].k);
    assert_int_equal(lp_prune_plan_kept_total(&p0), total);
    assert_true(kept <= total - 4);

    /* Remove them: the shrunk model equals the masked one (tolerance as in tests/test_surgery.c: same
     * float32 arithmetic without the exact zeros, ~1e-6 at most). */
    lp_task *shrunk, *masked;
    assert_int_equal(lp_surgery_shrink(iss, &p, &shrunk), LP_OK);
    assert_true(shrunk->params->numel < iss->params->numel);
    assert_int_equal(lp_video_task_load(lp_test_scratch_path("iss/last.ckpt"), NULL, &masked), LP_OK);
    assert_memory_equal(masked->params->data, iss->params->data, iss->params->numel * sizeof(float));
    assert_int_equal(lp_surgery_mask(masked, &p), LP_OK);
    float pt[24], pm[24], ps[24];
    probs_of(iss, pt);
    probs_of(masked, pm);
    probs_of(shrunk, ps);
    double d_ms = 0, d_ts = 0;
    for (int i = 0; i < 24; i++) {
        d_ms = fmax(d_ms, fabs((double)pm[i] - ps[i]));
        d_ts = fmax(d_ts, fabs((double)pt[i] - ps[i]));
    }
    fprintf(stderr, "params %zu -> %zu; max |p_masked - p_shrunk| %.2e, max |p_trained - p_shrunk| %.2e\n",
            iss->params->numel, shrunk->params->numel, d_ms, d_ts);
    assert_true(d_ms < 1e-5);
    /* And what ISS is for: the units it drove out hardly mattered any more (in this run ~1e-5). */
    assert_true(d_ts < 1e-2);
    lp_task_free(masked), lp_task_free(shrunk);
    lp_prune_plan_free(&p0), lp_prune_plan_free(&p);
    lp_task_free(plain), lp_task_free(iss);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_paper),
        cmocka_unit_test(test_gradient_lstm),
        cmocka_unit_test(test_zero_group_no_nan),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_kept_plan),
        cmocka_unit_test(test_training_drives_units_out),
    };
    return cmocka_run_group_tests(tests, setup, lp_test_scratch_teardown);
}
