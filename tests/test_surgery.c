/* test_surgery: unit footprints, masking and physical removal of LSTM units (prune/surgery) on video tasks
 * (tasks/video_task.h) for the paper model (BiLSTM + 2 layers) and the starter-code LSTM+MoE model
 * (3 layers): the shrunk task computes what the masked one computes (scores, probabilities, every kept
 * unit's responses and the gradients), has exactly the hand-counted number of parameters, survives a
 * checkpoint round trip through the task's save, and bad plans are refused with a message naming the
 * group and the entry; mean compensation adds exactly the removed units' mean contributions to the
 * biases that read them, and is exact for units of constant response. The language model's layout (a
 * tied last layer, a fixed group) is tested in tests/test_lm_prune.c. */
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

#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/rng.h"
#include "core/tape.h"
#include "model/model.h"
#include "tasks/video_task.h"
#include "prune/plan.h"
#include "prune/surgery.h"
#include "check/gradcheck.h"

enum { F = 5, C = 4, E = 2, B = 3, T = 5 };
static const int lengths[B] = {5, 2, 4};

/* A model wrapped in a video task without data (surgery reads none). */
static lp_task *task_of(lp_model *m) {
    lp_task *t;
    assert_int_equal(lp_video_task_new(m, NULL, &t), LP_OK);
    return t;
}

static lp_model *model(lp_task *t) { return lp_video_task_model(t); }

/* paper: BiLSTM 6 + 4 → LSTM 7 → LSTM 5 → dense C;  lstm: LSTM 6 → 7 → 5 → MoE (E experts) */
static lp_task *build(lp_model_kind kind, uint64_t seed) {
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_model_default_kv(&kv, kind, F, 8, kind == LP_MODEL_PAPER ? 2 : 3, C, E, 0.0f), LP_OK);
    assert_int_equal(lp_kv_set(&kv, "model.units", kind == LP_MODEL_PAPER ? "6,4,7,5" : "6,7,5"), LP_OK);
    lp_model m;
    assert_int_equal(lp_model_init_kv(&m, &kv, seed), LP_OK);
    lp_kv_free(&kv);
    /* Larger weights than the init (±1/sqrt(H)), so that every unit matters visibly in the outputs. */
    for (size_t i = 0; i < m.params->numel; i++) m.params->data[i] *= 2.0f;
    return task_of(&m);
}

/* A second task with the same config and weights (built through the model's keys, not through the
 * task's resized operation that the surgery itself uses). */
static lp_task *clone(lp_task *src) {
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_model_to_kv(model(src), &kv), LP_OK);
    lp_model m;
    assert_int_equal(lp_model_init_kv(&m, &kv, 0), LP_OK);
    lp_kv_free(&kv);
    assert_int_equal(m.params->numel, src->params->numel);
    memcpy(m.params->data, src->params->data, src->params->numel * sizeof(float));
    return task_of(&m);
}

typedef struct {
    float scores[B * C], probs[B * C];
    float *h[LP_MAX_GROUPS]; /* [B,T,H_g] copies */
    int units[LP_MAX_GROUPS];
    int n_groups;
    double loss;
} run_out;

static void run_free(run_out *r) {
    for (int g = 0; g < r->n_groups; g++) free(r->h[g]);
}

/* Forward (and, with labels, backward: gradients left in the params' grad) on a fixed batch. */
static void run(lp_task *t, const float *x, const float *labels, run_out *r) {
    lp_model *m = model(t);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tape_set_grad(&tp, labels != NULL);
    lp_tensor *tx = lp_tape_view(&tp, (float *)x, NULL, 3, (int[]){B, T, F});
    lp_tensor *ty = labels ? lp_tape_view(&tp, (float *)labels, NULL, 2, (int[]){B, C}) : NULL;
    lp_model_out o;
    assert_int_equal(lp_model_forward(m, &tp, tx, lengths, ty, NULL, &o), LP_OK);
    memcpy(r->scores, o.scores->data, sizeof r->scores);
    lp_model_probs(&o, r->probs);
    r->n_groups = m->n_groups;
    for (int g = 0; g < m->n_groups; g++) {
        const size_t n = lp_tensor_numel(o.group_h[g]);
        r->units[g] = m->groups[g].units;
        assert_int_equal(n, (size_t)B * T * r->units[g]);
        r->h[g] = malloc(n * sizeof(float));
        memcpy(r->h[g], o.group_h[g]->data, n * sizeof(float));
    }
    r->loss = 0;
    if (labels) {
        r->loss = o.loss->data[0];
        lp_params_zero_grad(m->params);
        assert_int_equal(lp_tape_backward(&tp, o.loss), LP_OK);
    }
    lp_tape_free(&tp);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

/* The plan keeping n_kept[g] units listed in kept[g] of every group (lp_prune_plan_from_kept). */
static void plan_of(const lp_task *t, int (*kept)[64], const int *n_kept, lp_prune_plan *p) {
    int *lists[LP_MAX_GROUPS];
    for (int g = 0; g < t->n_groups; g++) lists[g] = kept[g];
    assert_int_equal(lp_prune_plan_from_kept(t, lists, n_kept, p), LP_OK);
}

/* The plan that keeps every unit. */
static void plan_all(const lp_task *t, lp_prune_plan *p) {
    int kept[LP_MAX_GROUPS][64], n[LP_MAX_GROUPS];
    for (int g = 0; g < t->n_groups; g++) {
        n[g] = t->groups[g].units;
        for (int j = 0; j < n[g]; j++) kept[g][j] = j;
    }
    plan_of(t, kept, n, p);
}

/* ---- the footprint --------------------------------------------------------------------------------- */

/* Per group: every unit's footprint has 4F + 8H + R distinct elements, and the footprints of all units
 * of the group together cover exactly w_ih, w_hh, b and the group's consumer columns — nothing else
 * (every element of w_hh twice except its "diagonal" entries w_hh[qH+j, j], everything else once). */
static void check_footprints(lp_model_kind kind) {
    lp_task *t = build(kind, 3);
    const lp_params *ps = t->params;
    const size_t N = ps->numel;
    unsigned char *cover = calloc(N, 1), *mine = calloc(N, 1);
    for (int g = 0; g < t->n_groups; g++) {
        const lp_unit_group *gr = &t->groups[g];
        const int H = gr->units;
        memset(cover, 0, N);
        for (int j = 0; j < H; j++) {
            lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
            const int n = lp_surgery_footprint(gr, j, segs);
            memset(mine, 0, N);
            size_t count = 0;
            for (int s = 0; s < n; s++)
                for (int k = 0; k < segs[s].n; k++) {
                    const size_t at = (size_t)(segs[s].t->data - ps->data) + segs[s].start + (size_t)k * segs[s].stride;
                    assert_true(at < N);
                    assert_int_equal(mine[at], 0); /* listed once within the unit */
                    mine[at] = 1;
                    cover[at]++;
                    count++;
                }
            assert_int_equal(count, lp_surgery_footprint_numel(gr));
            assert_int_equal(count, (size_t)(4 * gr->input_dim + 8 * H + gr->consumer->dims[0]));
        }
        /* expected coverage, tensor by tensor */
        for (int i = 0; i < ps->count; i++) {
            const lp_param *p = &ps->items[i];
            const size_t n = lp_tensor_numel(&p->t);
            for (size_t e = 0; e < n; e++) {
                int want = 0;
                if (&p->t == gr->w_ih || &p->t == gr->b) want = 1;
                if (&p->t == gr->w_hh) {
                    const int r = (int)(e / (size_t)H), c = (int)(e % (size_t)H);
                    want = (r % H == c) ? 1 : 2; /* row of unit r mod H and column of unit c */
                }
                if (&p->t == gr->consumer) {
                    const int c = (int)(e % (size_t)p->t.dims[1]);
                    want += c >= gr->consumer_col0 && c < gr->consumer_col0 + H;
                }
                if (cover[p->offset + e] != want)
                    fail_msg("group %s: %s element %zu covered %d times, expected %d", gr->name, p->name, e,
                             cover[p->offset + e], want);
            }
        }
    }
    free(cover), free(mine);
    lp_task_free(t);
}

static void test_footprint_paper(void **state) {
    (void)state;
    check_footprints(LP_MODEL_PAPER);
}

static void test_footprint_lstm(void **state) {
    (void)state;
    check_footprints(LP_MODEL_LSTM);
}

/* ---- masked == shrunk ------------------------------------------------------------------------------------- */

/* Parameters of a model with the given units, counted by hand from model/paper.h and model/lstm_moe.h. */
static size_t hand_numel(lp_model_kind kind, const int *k, int G) {
    size_t n = 0;
    for (int g = 0; g < G; g++) {
        size_t in;
        if (kind == LP_MODEL_PAPER) in = g <= 1 ? F : g == 2 ? (size_t)(k[0] + k[1]) : (size_t)k[g - 1];
        else in = g == 0 ? F : (size_t)k[g - 1];
        n += 4 * (size_t)k[g] * (in + (size_t)k[g] + 1); /* w_ih, w_hh, b */
    }
    const size_t rows = kind == LP_MODEL_PAPER ? C : (size_t)C * (2 * E + 1); /* out.w or moe.w rows */
    return n + rows * ((size_t)k[G - 1] + 1);
}

/* Kept lists: mode 0 = random size in [1, H], 1 = keep 1, 2 = keep all; random subset, ascending. */
static void make_plan(lp_prune_plan *p, const lp_task *t, const int *mode, lp_rng *r) {
    int kept[LP_MAX_GROUPS][64], n_kept[LP_MAX_GROUPS];
    for (int g = 0; g < t->n_groups; g++) {
        const int H = t->groups[g].units;
        const int k = mode[g] == 1 ? 1 : mode[g] == 2 ? H : 1 + (int)lp_rng_below(r, (uint32_t)H);
        int idx[64];
        for (int j = 0; j < H; j++) idx[j] = j;
        lp_rng_shuffle_int(r, idx, H);
        unsigned char take[64] = {0};
        for (int i = 0; i < k; i++) take[idx[i]] = 1;
        int n = 0;
        for (int j = 0; j < H; j++)
            if (take[j]) kept[g][n++] = j;
        n_kept[g] = n;
    }
    plan_of(t, kept, n_kept, p);
}

static void check_masked_equals_shrunk(lp_model_kind kind) {
    lp_task *orig = build(kind, 7);
    for (size_t i = 0; i < orig->params->numel; i++) assert_true(orig->params->data[i] != 0.0f); /* zero count below */
    float x[B * T * F], labels[B * C];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 17);
    for (int i = 0; i < B * C; i++) labels[i] = (float)((i * 7 + 3) % 3 == 0);
    run_out ro;
    run(orig, x, NULL, &ro);

    lp_rng r;
    lp_rng_init(&r, 2024, LP_RNG_STREAM_TEST);
    /* Different sizes per group, including 1 unit and all units, every group shrunk at least once. */
    static const int modes[][LP_MAX_GROUPS] = {
        {0, 0, 0, 0}, {1, 2, 0, 1}, {2, 1, 1, 0}, {0, 1, 2, 2}, {1, 1, 1, 1}, {2, 2, 2, 2}, {0, 0, 0, 0},
    };
    const int n_trials = (int)(sizeof modes / sizeof modes[0]);
    double worst_out = 0, worst_h = 0, worst_grad = 0;
    for (int tr = 0; tr < n_trials; tr++) {
        lp_prune_plan plan;
        make_plan(&plan, orig, modes[tr], &r);
        const int G = orig->n_groups;
        int removed = 0;
        for (int g = 0; g < G; g++) removed += orig->groups[g].units - plan.g[g].k;

        lp_task *masked = clone(orig), *shrunk;
        assert_int_equal(lp_surgery_mask(masked, &plan), LP_OK);
        assert_int_equal(lp_surgery_shrink(orig, &plan, &shrunk), LP_OK);
        assert_true(lp_task_is_video(shrunk));
        assert_int_equal(model(shrunk)->kind, model(orig)->kind);
        assert_int_equal(shrunk->n_groups, G);
        for (int g = 0; g < G; g++) assert_int_equal(shrunk->groups[g].units, plan.g[g].k);

        /* Sizes: the hand formula; and the mask zeroed exactly the weights the shrink dropped. */
        int kk[LP_MAX_GROUPS];
        for (int g = 0; g < G; g++) kk[g] = plan.g[g].k;
        assert_int_equal(lp_model_numel(model(shrunk)), hand_numel(kind, kk, G));
        assert_int_equal(shrunk->params->numel, lp_model_numel(model(shrunk)));
        size_t zeros = 0;
        for (size_t i = 0; i < masked->params->numel; i++) zeros += masked->params->data[i] == 0.0f;
        assert_int_equal(zeros, orig->params->numel - shrunk->params->numel);

        run_out rm, rs;
        run(masked, x, labels, &rm);
        run(shrunk, x, labels, &rs);
        /* Removing units must change the model (else this test could not fail): scores move by far more
         * than the tolerance below. */
        if (removed > 0) assert_true(max_abs_diff(rm.scores, ro.scores, B * C) > 1e-3);
        worst_out = fmax(worst_out, max_abs_diff(rm.scores, rs.scores, B * C));
        worst_out = fmax(worst_out, max_abs_diff(rm.probs, rs.probs, B * C));
        worst_out = fmax(worst_out, fabs(rm.loss - rs.loss));
        for (int g = 0; g < G; g++) {
            const int H = orig->groups[g].units, k = plan.g[g].k;
            int i = 0;
            for (int j = 0; j < H; j++) {
                const int kept = i < k && plan.g[g].kept[i] == j;
                for (int bt = 0; bt < B * T; bt++) {
                    const float hm = rm.h[g][(size_t)bt * H + j];
                    if (kept) worst_h = fmax(worst_h, fabs((double)hm - rs.h[g][(size_t)bt * k + i]));
                    else assert_true(hm == 0.0f); /* a masked unit's state is exactly 0 (METHOD.md) */
                }
                i += kept;
            }
        }
        /* Gradients: the masked model's, gathered onto the kept weights, are the shrunk model's (the
         * removed units pass no gradient); this also exercises lp_surgery_gather on a non-value array
         * (what the optimizer's moments are too). */
        float *gathered = malloc(shrunk->params->numel * sizeof(float));
        assert_int_equal(lp_surgery_gather(orig, &plan, shrunk, masked->params->grad, gathered), LP_OK);
        worst_grad = fmax(worst_grad, max_abs_diff(gathered, shrunk->params->grad, shrunk->params->numel));
        double gmax = 0;
        for (size_t i2 = 0; i2 < shrunk->params->numel; i2++) gmax = fmax(gmax, fabs(shrunk->params->grad[i2]));
        assert_true(gmax > 1e-2); /* gradients of a size that makes the comparison meaningful */
        free(gathered);

        run_free(&rm), run_free(&rs);
        lp_task_free(masked), lp_task_free(shrunk);
        lp_prune_plan_free(&plan);
    }
    fprintf(stderr, "%s: masked vs shrunk over %d plans: outputs %.2e, responses %.2e, gradients %.2e\n",
            lp_model_kind_name(kind), n_trials, worst_out, worst_h, worst_grad);
    /* Same float32 arithmetic with the exact zeros left out: only the summation order inside the GEMMs
     * (different K, hence blocking) differs, ~1 ulp per term on values of order 1 over sums of <= 20
     * terms (~1e-6) — 1e-5 leaves a margin; a wrong row/column map moves values by >= 1e-2. */
    assert_true(worst_out < 1e-5);
    assert_true(worst_h < 1e-5);
    assert_true(worst_grad < 1e-5);
    run_free(&ro);
    lp_task_free(orig);
}

static void test_shrink_paper(void **state) {
    (void)state;
    check_masked_equals_shrunk(LP_MODEL_PAPER);
}

static void test_shrink_lstm(void **state) {
    (void)state;
    check_masked_equals_shrunk(LP_MODEL_LSTM);
}

/* Keeping every unit copies the model exactly. */
static void test_shrink_keep_all_is_copy(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        lp_task *m = build((lp_model_kind)kind, 9), *s;
        lp_prune_plan plan;
        plan_all(m, &plan);
        assert_int_equal(lp_surgery_shrink(m, &plan, &s), LP_OK);
        assert_int_equal(s->params->numel, m->params->numel);
        assert_memory_equal(s->params->data, m->params->data, m->params->numel * sizeof(float));
        lp_prune_plan_free(&plan);
        lp_task_free(s), lp_task_free(m);
    }
}

/* The paper model's lstm2.w_ih loses columns from both BiLSTM halves: checked element by element. */
static void test_shrink_bilstm_consumer_columns(void **state) {
    (void)state;
    lp_task *m = build(LP_MODEL_PAPER, 5), *s;
    int kept[LP_MAX_GROUPS][64] = {{1, 4, 5}, {0, 3}, {0, 1, 2, 3, 4, 5, 6}, {0, 1, 2, 3, 4}};
    const int n_kept[LP_MAX_GROUPS] = {3, 2, 7, 5};
    lp_prune_plan plan;
    plan_of(m, kept, n_kept, &plan);
    assert_int_equal(lp_surgery_shrink(m, &plan, &s), LP_OK);
    const lp_tensor *a = lp_params_find(m->params, "lstm2.w_ih"), *b = lp_params_find(s->params, "lstm2.w_ih");
    assert_int_equal(a->dims[1], 10);
    assert_int_equal(b->dims[0], a->dims[0]); /* lstm2 kept all 7 units */
    assert_int_equal(b->dims[1], 5);
    static const int src_col[] = {1, 4, 5, 6 + 0, 6 + 3}; /* backward half starts at Hf = 6 */
    for (int r = 0; r < b->dims[0]; r++)
        for (int c = 0; c < 5; c++) assert_true(b->data[r * 5 + c] == a->data[r * 10 + src_col[c]]);
    assert_int_equal(s->groups[1].consumer_col0, 3);
    assert_true(s->groups[1].reverse && !s->groups[0].reverse);
    lp_prune_plan_free(&plan);
    lp_task_free(s), lp_task_free(m);
}

/* Wider layers (F = 96, BiLSTM 48 + 40 → LSTM 64, C = 40; lstm: 64 → 48 → MoE), where OpenBLAS blocks the
 * GEMMs differently for the full and the shrunk shapes: the difference stays at float32 rounding. */
static void test_shrink_wide(void **state) {
    (void)state;
    enum { WB = 4, WT = 9, WF = 96, WC = 40 };
    static const int wlen[WB] = {9, 4, 7, 1};
    float *x = malloc(sizeof(float) * WB * WT * WF);
    lp_gc_fill_uniform(x, WB * WT * WF, -1, 1, 33);
    for (int kind = 0; kind < 2; kind++) {
        lp_kv kv;
        lp_kv_init(&kv);
        assert_int_equal(lp_model_default_kv(&kv, (lp_model_kind)kind, WF, 64, 1 + kind, WC, E, 0.0f), LP_OK);
        assert_int_equal(lp_kv_set(&kv, "model.units", kind == LP_MODEL_PAPER ? "48,40,64" : "64,48"), LP_OK);
        lp_model mm;
        assert_int_equal(lp_model_init_kv(&mm, &kv, 13), LP_OK);
        lp_kv_free(&kv);
        lp_task *m = task_of(&mm);
        lp_rng r;
        lp_rng_init(&r, 99, LP_RNG_STREAM_TEST);
        static const int mode[LP_MAX_GROUPS] = {0, 0, 0};
        lp_prune_plan plan;
        make_plan(&plan, m, mode, &r);
        lp_task *masked = clone(m), *shrunk;
        assert_int_equal(lp_surgery_mask(masked, &plan), LP_OK);
        assert_int_equal(lp_surgery_shrink(m, &plan, &shrunk), LP_OK);
        float pm[WB * WC], ps[WB * WC];
        lp_task *ms[2] = {masked, shrunk};
        float *outs[2] = {pm, ps};
        for (int v = 0; v < 2; v++) {
            lp_tape tp;
            assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
            lp_tape_set_grad(&tp, 0);
            lp_model_out o;
            assert_int_equal(lp_model_forward(model(ms[v]), &tp, lp_tape_view(&tp, x, NULL, 3, (int[]){WB, WT, WF}), wlen,
                                              NULL, NULL, &o),
                             LP_OK);
            memcpy(outs[v], o.scores->data, sizeof pm);
            lp_tape_free(&tp);
        }
        const double d = max_abs_diff(pm, ps, WB * WC);
        fprintf(stderr, "%s wide: kept %d of %d units, max |masked - shrunk| scores %.2e\n",
                lp_model_kind_name((lp_model_kind)kind), lp_prune_plan_kept_total(&plan), kind ? 112 : 152, d);
        assert_true(d < 1e-5); /* as in check_masked_equals_shrunk: rounding of reordered float32 sums */
        lp_prune_plan_free(&plan);
        lp_task_free(m), lp_task_free(masked), lp_task_free(shrunk);
    }
    free(x);
}

/* ---- checkpoint round trip ---------------------------------------------------------------------------- */

/* The shrunk task saved with its own save operation and loaded as a video task again. */
static void test_shrunk_checkpoint_roundtrip(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        lp_task *m = build((lp_model_kind)kind, 21), *s, *back;
        lp_rng r;
        lp_rng_init(&r, 77 + (uint64_t)kind, LP_RNG_STREAM_TEST);
        static const int mode[LP_MAX_GROUPS] = {0, 1, 0, 0};
        lp_prune_plan plan;
        make_plan(&plan, m, mode, &r);
        assert_int_equal(lp_surgery_shrink(m, &plan, &s), LP_OK);
        char path[64];
        snprintf(path, sizeof path, "/tmp/lp_test_surgery_%d_%d.ckpt", (int)getpid(), kind);
        lp_ckpt c;
        lp_ckpt_init(&c);
        assert_int_equal(lp_task_save(s, &c), LP_OK);
        assert_int_equal(lp_ckpt_save(&c, path), LP_OK);
        lp_ckpt_free(&c);
        assert_int_equal(lp_video_task_load(path, NULL, &back), LP_OK);
        unlink(path);
        /* the checkpoint records the new sizes */
        char want[64];
        size_t len = 0;
        for (int g = 0; g < plan.n_groups; g++)
            len += (size_t)snprintf(want + len, sizeof want - len, g ? ",%d" : "%d", plan.g[g].k);
        assert_string_equal(lp_kv_get(lp_video_task_cfg(back), "model.units"), want);
        assert_int_equal(back->n_groups, s->n_groups);
        for (int g = 0; g < s->n_groups; g++) assert_int_equal(back->groups[g].units, s->groups[g].units);
        assert_int_equal(back->params->numel, s->params->numel);
        assert_memory_equal(back->params->data, s->params->data, s->params->numel * sizeof(float));
        float x[B * T * F];
        lp_gc_fill_uniform(x, B * T * F, -1, 1, 5);
        run_out a, b2;
        run(s, x, NULL, &a);
        run(back, x, NULL, &b2);
        /* same weights, same shapes, same code: bit-identical */
        assert_memory_equal(a.scores, b2.scores, sizeof a.scores);
        run_free(&a), run_free(&b2);
        lp_prune_plan_free(&plan);
        lp_task_free(back), lp_task_free(s), lp_task_free(m);
    }
}

/* ---- bad plans ---------------------------------------------------------------------------------------- */

static void expect_msg(const char *needle) {
    if (!strstr(lp_last_error(), needle)) fail_msg("message '%s' lacks '%s'", lp_last_error(), needle);
}

/* Every entry point refuses the plan with LP_ERR_ARG and a message holding `needle`, and changes nothing. */
static void expect_bad(lp_task *m, const lp_prune_plan *p, const char *needle) {
    assert_int_equal(lp_prune_plan_check(m, p), LP_ERR_ARG);
    expect_msg(needle);
    lp_task *out = m; /* any non-NULL value: the shrink must reset it */
    assert_int_equal(lp_surgery_shrink(m, p, &out), LP_ERR_ARG);
    expect_msg(needle);
    assert_null(out);
    lp_task *mm = clone(m);
    assert_int_equal(lp_surgery_mask(mm, p), LP_ERR_ARG);
    expect_msg(needle);
    assert_int_equal(lp_surgery_compensate(mm, p), LP_ERR_ARG);
    expect_msg(needle);
    /* nothing was masked or compensated */
    assert_memory_equal(mm->params->data, m->params->data, m->params->numel * sizeof(float));
    float *dst = malloc(m->params->numel * sizeof(float));
    assert_int_equal(lp_surgery_gather(m, p, mm, m->params->data, dst), LP_ERR_ARG);
    expect_msg(needle);
    free(dst);
    lp_task_free(mm);
}

static void test_bad_plans(void **state) {
    (void)state;
    lp_task *m = build(LP_MODEL_PAPER, 2); /* bilstm.fw 6, bilstm.bw 4, lstm2 7, lstm3 5 */
    lp_prune_plan p;
    plan_all(m, &p);
    assert_int_equal(lp_prune_plan_check(m, &p), LP_OK);

    int *k1 = p.g[1].kept;
    k1[0] = 2, k1[1] = 1, k1[2] = 2, p.g[1].k = 3; /* unsorted */
    expect_bad(m, &p, "group bilstm.bw: kept[1] = 1");
    expect_bad(m, &p, "not ascending");
    k1[0] = 1, k1[1] = 1; /* 1,1,2: duplicate */
    expect_bad(m, &p, "bilstm.bw: kept[1] = 1");
    k1[0] = 0, k1[1] = 1, k1[2] = 4; /* H = 4 */
    expect_bad(m, &p, "bilstm.bw: kept[2] = 4 is out of range");
    k1[0] = -1;
    expect_bad(m, &p, "bilstm.bw: kept[0] = -1 is out of range");
    k1[0] = 0, k1[2] = 2;
    assert_int_equal(lp_prune_plan_check(m, &p), LP_OK);
    p.g[3].k = 0;
    expect_bad(m, &p, "group lstm3: 0 kept units");
    p.g[3].k = 6; /* H = 5 */
    expect_bad(m, &p, "group lstm3: 6 kept units (must be in [1, 5])");
    p.g[3].k = 5;
    p.n_groups = 3;
    expect_bad(m, &p, "the plan has 3 unit groups, the model 4");
    p.n_groups = 4;
    int *keep = p.g[2].kept;
    p.g[2].kept = NULL;
    expect_bad(m, &p, "group lstm2");
    p.g[2].kept = keep;
    p.g[0].h = 5; /* a plan made for another model */
    expect_bad(m, &p, "group bilstm.fw has 6 units, the plan was made for 5");
    p.g[0].h = 6;
    assert_int_equal(lp_prune_plan_check(m, &p), LP_OK);
    /* lp_prune_plan_from_kept refuses bad lists with the group's name too */
    {
        int kept[LP_MAX_GROUPS][64] = {{0, 1, 2, 3, 4, 5}, {3, 1}, {0, 1, 2, 3, 4, 5, 6}, {0, 1, 2, 3, 4}};
        int *lists[LP_MAX_GROUPS] = {kept[0], kept[1], kept[2], kept[3]}, n[LP_MAX_GROUPS] = {6, 2, 7, 5};
        lp_prune_plan q;
        assert_int_equal(lp_prune_plan_from_kept(m, lists, n, &q), LP_ERR_ARG);
        expect_msg("bilstm.bw: kept[1] = 1");
        kept[1][0] = 1, kept[1][1] = 3;
        n[3] = 0;
        assert_int_equal(lp_prune_plan_from_kept(m, lists, n, &q), LP_ERR_ARG);
        expect_msg("lstm3");
    }

    /* gather into a model built from another plan */
    lp_task *s;
    p.g[2].k = 3;
    assert_int_equal(lp_surgery_shrink(m, &p, &s), LP_OK);
    p.g[2].k = 4;
    float *dst = malloc(s->params->numel * sizeof(float));
    assert_int_equal(lp_surgery_gather(m, &p, s, m->params->data, dst), LP_ERR_ARG);
    expect_msg("lstm2");
    /* ... or from another model */
    p.g[2].k = 3;
    lp_task *other = build(LP_MODEL_LSTM, 2);
    assert_int_equal(lp_surgery_gather(m, &p, other, m->params->data, dst), LP_ERR_ARG);
    expect_msg("not built from this model");
    lp_task_free(other);
    free(dst);
    lp_task_free(s);
    lp_prune_plan_free(&p);
    lp_task_free(m);
}

/* ---- mean compensation ----------------------------------------------------------------------------- */

/* The plan keeping the even units of each group (so every group loses some), with room for means. */
static void plan_even(const lp_task *t, lp_prune_plan *p) {
    int kept[LP_MAX_GROUPS][64], n[LP_MAX_GROUPS];
    for (int g = 0; g < t->n_groups; g++) {
        n[g] = 0;
        for (int j = 0; j < t->groups[g].units; j += 2) kept[g][n[g]++] = j;
    }
    plan_of(t, kept, n, p);
    for (int g = 0; g < t->n_groups; g++) {
        assert_null(p->g[g].mean); /* a kept-list plan has no statistics */
        p->g[g].mean = lp_calloc((size_t)t->groups[g].units, sizeof(double)); /* freed with the plan */
        assert_non_null(p->g[g].mean);
    }
}

static int kept_in(const lp_prune_plan *p, int g, int j) {
    for (int i = 0; i < p->g[g].k; i++)
        if (p->g[g].kept[i] == j) return 1;
    return 0;
}

/* The arithmetic: each consumer bias entry and each gate bias of the group grows by Σ over the removed
 * units of (weight reading the unit)·(its mean), and no other number changes. */
static void test_compensate_biases(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        lp_task *m = build((lp_model_kind)kind, 21), *c = clone(m);
        lp_prune_plan plan;
        plan_even(m, &plan);
        for (int g = 0; g < m->n_groups; g++)
            for (int j = 0; j < m->groups[g].units; j++) plan.g[g].mean[j] = 0.1 * (j + 1) - 0.3 * g;
        assert_int_equal(lp_surgery_compensate(c, &plan), LP_OK);
        const size_t N = m->params->numel;
        float *want = malloc(N * sizeof(float));
        memcpy(want, m->params->data, N * sizeof(float));
        for (int g = 0; g < m->n_groups; g++) { /* the expected biases, from m's weights */
            const lp_unit_group *gr = &m->groups[g];
            char name[LP_PARAM_NAME_MAX];
            snprintf(name, sizeof name, "%.*s.b", (int)(strrchr(gr->consumer_name, '.') - gr->consumer_name),
                     gr->consumer_name);
            const lp_tensor *cb = lp_params_find(m->params, name);
            assert_non_null(cb);
            const lp_tensor *reads[2] = {gr->consumer, gr->w_hh}, *bias[2] = {cb, gr->b};
            const int col0[2] = {gr->consumer_col0, 0};
            for (int k = 0; k < 2; k++) {
                const int R = reads[k]->dims[0], Cc = reads[k]->dims[1];
                float *wb = want + (bias[k]->data - m->params->data);
                for (int r = 0; r < R; r++) {
                    double acc = 0;
                    for (int j = 0; j < gr->units; j++)
                        if (!kept_in(&plan, g, j)) acc += (double)reads[k]->data[r * Cc + col0[k] + j] * plan.g[g].mean[j];
                    wb[r] = (float)((double)wb[r] + acc);
                }
            }
        }
        /* the same double sums rounded once to float: equal up to the float rounding of the addition */
        assert_true(max_abs_diff(want, c->params->data, N) < 1e-6);
        size_t changed = 0;
        for (size_t i = 0; i < N; i++) changed += want[i] != m->params->data[i];
        assert_true(changed > 0);
        /* a plan without means is refused before anything changes, naming the group */
        double *saved[LP_MAX_GROUPS];
        for (int g = 0; g < m->n_groups; g++) saved[g] = plan.g[g].mean, plan.g[g].mean = NULL;
        assert_int_equal(lp_surgery_compensate(c, &plan), LP_ERR_ARG);
        expect_msg("no mean responses for group");
        expect_msg(m->groups[0].name);
        assert_true(max_abs_diff(want, c->params->data, N) < 1e-6); /* refused: nothing changed */
        for (int g = 0; g < m->n_groups; g++) plan.g[g].mean = saved[g];
        const int last = m->n_groups - 1; /* only the last group lacks its means: still nothing changes */
        plan.g[last].mean = NULL;
        assert_int_equal(lp_surgery_compensate(c, &plan), LP_ERR_ARG);
        expect_msg(m->groups[last].name);
        assert_true(max_abs_diff(want, c->params->data, N) < 1e-6);
        /* and so is a shrink asked to compensate */
        plan.opts.compensate = 1;
        lp_task *s = m;
        assert_int_equal(lp_surgery_shrink(c, &plan, &s), LP_ERR_ARG);
        assert_null(s);
        plan.g[last].mean = saved[last];
        free(want);
        lp_prune_plan_free(&plan);
        lp_task_free(c), lp_task_free(m);
    }
}

/* Units whose response is the same at every step (input and recurrent rows zero, forget gate shut, so
 * c = σ(b_i)·tanh(b_g) from the first step on; nothing of the group reads them back): removed with
 * compensation (plan.opts.compensate, lp_surgery_shrink), the smaller model computes what the full one
 * does; removed without, it does not. */
static void test_compensate_constant_units_exact(void **state) {
    (void)state;
    for (int kind = 0; kind < 2; kind++) {
        lp_task *m = build((lp_model_kind)kind, 33);
        lp_prune_plan plan;
        plan_even(m, &plan);
        for (int g = 0; g < m->n_groups; g++) {
            const lp_unit_group *gr = &m->groups[g];
            const int H = gr->units, Fg = gr->input_dim;
            for (int j = 0; j < H; j++) {
                if (kept_in(&plan, g, j)) continue;
                for (int q = 0; q < 4; q++) {
                    memset(gr->w_ih->data + (size_t)(q * H + j) * Fg, 0, (size_t)Fg * sizeof(float));
                    memset(gr->w_hh->data + (size_t)(q * H + j) * H, 0, (size_t)H * sizeof(float));
                }
                for (int r = 0; r < 4 * H; r++) gr->w_hh->data[(size_t)r * H + j] = 0;
                const float bq[4] = {2.0f, -100.0f, 1.0f + 0.1f * j, 1.5f}; /* i, f (shut), g, o */
                for (int q = 0; q < 4; q++) gr->b->data[q * H + j] = bq[q];
            }
        }
        float x[B * T * F];
        lp_rng r;
        lp_rng_init(&r, 5, 0);
        for (int i = 0; i < B * T * F; i++) x[i] = (float)(lp_rng_uniform(&r) * 2.0 - 1.0);
        run_out full;
        run(m, x, NULL, &full);
        /* the mean response of each unit over the valid steps (the statistics' job, done by hand) */
        int valid = 0;
        for (int b = 0; b < B; b++) valid += lengths[b];
        for (int g = 0; g < m->n_groups; g++) {
            const int H = full.units[g];
            for (int b = 0; b < B; b++)
                for (int t = 0; t < lengths[b]; t++)
                    for (int j = 0; j < H; j++) plan.g[g].mean[j] += full.h[g][((size_t)b * T + t) * H + j] / valid;
        }
        lp_task *plain, *comp;
        assert_int_equal(lp_surgery_shrink(m, &plan, &plain), LP_OK);
        float before[4096];
        assert_true(m->params->numel <= 4096);
        memcpy(before, m->params->data, m->params->numel * sizeof(float));
        plan.opts.compensate = 1;
        assert_int_equal(lp_surgery_shrink(m, &plan, &comp), LP_OK);
        assert_memory_equal(before, m->params->data, m->params->numel * sizeof(float)); /* `in` untouched */
        run_out a, c;
        run(plain, x, NULL, &a);
        run(comp, x, NULL, &c);
        /* exact up to float32 rounding of the folded bias (a few ulps of probabilities <= 1) */
        assert_true(max_abs_diff(full.probs, c.probs, B * C) < 2e-6);
        assert_true(max_abs_diff(full.probs, a.probs, B * C) > 1e-2);
        run_free(&a), run_free(&c), run_free(&full);
        lp_prune_plan_free(&plan);
        lp_task_free(comp), lp_task_free(plain), lp_task_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_footprint_paper),
        cmocka_unit_test(test_footprint_lstm),
        cmocka_unit_test(test_shrink_paper),
        cmocka_unit_test(test_shrink_lstm),
        cmocka_unit_test(test_shrink_wide),
        cmocka_unit_test(test_shrink_keep_all_is_copy),
        cmocka_unit_test(test_shrink_bilstm_consumer_columns),
        cmocka_unit_test(test_shrunk_checkpoint_roundtrip),
        cmocka_unit_test(test_bad_plans),
        cmocka_unit_test(test_compensate_biases),
        cmocka_unit_test(test_compensate_constant_units_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
