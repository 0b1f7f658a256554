/* test_lm_prune: the pruning method on the word-level LM task (tasks/lm_task.h) and the experiment runner
 * on the LM kind — a shrunk tied LM (its last layer a fixed group) gives the same per-word log-likelihoods as
 * the masked one, mean compensation is exact for constant units with the fixed layer skipped, the shrink's
 * index maps and parameter count, statistics over carried windows and plans (eigen target rate, τ rule,
 * uniform, l2 selection checked independently, tied last layer left whole), the ISS penalty gradient against
 * central differences with the fixed layer left out of the penalty, the zeroing and the proximal step, ISS
 * driving unit groups to zero on a tiny model through the update hook (and the removal of exactly those
 * units); the pipeline (experiments/pipeline.h) end to end on a tiny corpus (eigen+gm with fine-tuning,
 * uniform+l2 with and without compensation, ISS), its report rows recomputed and found in report.md and
 * report.json; the sensitivity analysis (experiments/sensitivity.h) on an LM checkpoint, untied and tied; and
 * `lstmprune lm-prune` / `lm-sensitivity` ($LP_BIN) giving what the library gives. The generic functions on
 * the video classifiers' layouts (BiLSTM halves, a plain head) are tested in tests/test_surgery.c and
 * tests/test_iss.c, the runner on the video task in tests/test_pipeline.c and tests/test_sweep.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/kv.h"
#include "core/rng.h"
#include "core/tape.h"
#include "experiments/pipeline.h"
#include "experiments/sensitivity.h"
#include "lm/lm.h"
#include "tasks/lm_task.h"
#include "lm/ptb.h"
#include "prune/iss.h"
#include "prune/plan.h"
#include "prune/surgery.h"
#include "train/trainer.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

/* The tiny Markov corpus (tests/common/markov_corpus.h) in PTB layout: 500 training sentences. */
static int setup_dir(void **state) {
    (void)state;
    if (lp_test_scratch_make("lm_prune") != 0) return -1;
    lp_test_markov_write_ptb(lp_test_scratch_dir(), 500, 11);
    return 0;
}

static int32_t *random_ids(size_t n, int V, uint64_t seed) {
    int32_t *ids = lp_malloc(n, sizeof *ids);
    assert_non_null(ids);
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_TEST);
    for (size_t i = 0; i < n; i++) ids[i] = (int32_t)lp_rng_below(&r, (uint32_t)V);
    return ids;
}

/* A corpus of V words whose training split is ids[0..n) (valid and test empty): enough for the LM task's
 * statistics; surgery and ISS read no data at all (ids may be NULL). */
static lp_ptb_corpus corpus_of(int V, int32_t *ids, size_t n) {
    lp_ptb_corpus c;
    memset(&c, 0, sizeof c);
    c.vocab.size = V;
    c.ids[LP_PTB_TRAIN] = ids;
    c.n[LP_PTB_TRAIN] = n;
    return c;
}

/* The LM task that takes over *m (left empty) on corpus c. */
static lp_task *task_of(lp_lm *m, const lp_ptb_corpus *c) {
    lp_task *t;
    assert_int_equal(lp_lm_task_new(m, c, &t), LP_OK);
    return t;
}

static lp_lm *lm_of(lp_task *t) { return &lp_lm_task_of(t)->lm; }

/* k ascending units out of h, drawn at random. */
static void random_kept(int h, int k, lp_rng *r, int *kept) {
    int *perm = lp_malloc((size_t)h, sizeof *perm);
    assert_non_null(perm);
    for (int j = 0; j < h; j++) perm[j] = j;
    lp_rng_shuffle_int(r, perm, h);
    unsigned char *sel = lp_calloc((size_t)h, 1);
    for (int i = 0; i < k; i++) sel[perm[i]] = 1;
    for (int j = 0, i = 0; j < h; j++)
        if (sel[j]) kept[i++] = j;
    lp_free(sel);
    lp_free(perm);
}

/* Per-word NLLs of a model over ids: batch 3, windows of 7 with the state carried (several windows). */
enum { EV_B = 3, EV_T = 7 };
static double *word_nll(lp_task *t, const int32_t *ids, size_t n, size_t *count) {
    *count = (size_t)EV_B * (n / EV_B - 1);
    double *nll = lp_malloc(*count, sizeof *nll);
    assert_non_null(nll);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(lm_of(t), ids, n, EV_B, EV_T, nll, &ev), LP_OK);
    assert_int_equal(ev.targets, *count);
    return nll;
}

static size_t hand_numel(const lp_lm_config *c) {
    size_t n = (size_t)c->vocab * (size_t)c->embed + (size_t)c->vocab; /* embed.w, out.b */
    if (!c->tied) n += (size_t)c->vocab * (size_t)c->hidden[c->layers - 1];
    for (int l = 0; l < c->layers; l++) {
        const size_t H = (size_t)c->hidden[l], F = l ? (size_t)c->hidden[l - 1] : (size_t)c->embed;
        n += 4 * H * (F + H) + 4 * H;
    }
    return n;
}

/* Tolerance of masked vs shrunk per-word NLLs: both models compute the same real-valued function (the
 * removed units are exact zeros in the masked one), only the order of float32 sums in the GEMMs differs
 * (a few ulps of values ~1-10); NLLs are ~ln V ≈ 4, so 1e-5 absolute is ~25 float32 ulps, while a wrong
 * row or column moves NLLs by > 1e-3 here. */
#define NLL_TOL 1e-5

/* ---- surgery on the tied layout ---- */

/* A tied LM: 40 words, embedding 9, lstm1 10 units, lstm2 9 units (fixed: it feeds the embedding table
 * out.w = embed.w). Large weights (init 0.5) so that units matter and removing them shows. */
static lp_task *tied_lm(uint64_t seed, const lp_ptb_corpus *c) {
    lp_lm_config cfg;
    lp_lm_config_default(&cfg, 40, 2, 10);
    cfg.embed = 9;
    cfg.hidden[1] = 9;
    cfg.tied = 1;
    cfg.init_scale = 0.5f;
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &cfg, seed), LP_OK);
    return task_of(&m, c);
}

/* masked == shrunk on the tied LM: layer 1 keeps 5 random units of 10, the fixed layer 2 all 9; the per-word
 * NLLs over several carried windows agree (a masked unit's h stays exactly 0 across windows too), the
 * pruning changed them, and the fixed layer cannot lose units. */
static void test_masked_equals_shrunk_tied(void **state) {
    (void)state;
    const lp_ptb_corpus c = corpus_of(40, NULL, 0);
    lp_task *t = tied_lm(31, &c);
    assert_int_equal(t->n_groups, 2);
    assert_true(!t->groups[0].fixed && t->groups[1].fixed);
    assert_true(t->groups[1].consumer == lm_of(t)->embed_w); /* the tied table is the fixed layer's consumer */
    lp_rng r;
    lp_rng_init(&r, 32, LP_RNG_STREAM_TEST);
    int k0[10], k1[9], k[2] = {5, 9};
    random_kept(10, 5, &r, k0);
    for (int j = 0; j < 9; j++) k1[j] = j;
    int *kept[2] = {k0, k1};
    lp_prune_plan p;
    assert_int_equal(lp_prune_plan_from_kept(t, kept, k, &p), LP_OK);
    assert_true(p.g[1].fixed && !p.g[0].fixed);
    assert_true(fabs(p.rates.mean_rate - 0.5) < 1e-12); /* over the prunable layer only */
    const size_t n = 200;
    int32_t *ids = random_ids(n, 40, 33);
    size_t cnt;
    double *base = word_nll(t, ids, n, &cnt);
    lp_task *small;
    assert_int_equal(lp_surgery_shrink(t, &p, &small), LP_OK);
    const lp_lm *sl = lm_of(small);
    assert_true(sl->cfg.hidden[0] == 5 && sl->cfg.hidden[1] == 9 && sl->cfg.tied && sl->cfg.embed == 9);
    assert_true(small->groups[1].fixed);
    assert_int_equal(lp_lm_numel(sl), hand_numel(&sl->cfg));
    assert_int_equal(small->params->numel, lp_lm_numel(sl));
    assert_true(small->params->numel < t->params->numel);
    assert_int_equal(lp_surgery_mask(t, &p), LP_OK);
    double *masked = word_nll(t, ids, n, &cnt);
    double *shrunk = word_nll(small, ids, n, &cnt);
    double worst = 0, changed = 0;
    for (size_t i = 0; i < cnt; i++) {
        worst = fmax(worst, fabs(masked[i] - shrunk[i]));
        changed = fmax(changed, fabs(masked[i] - base[i]));
    }
    fprintf(stderr, "tied: max |masked - shrunk| per-word NLL = %.3g (pruning moved them by %.3g)\n", worst, changed);
    /* the removed units mattered: a surgery that kept the wrong units could not pass by accident */
    assert_true(changed > 1e-3);
    assert_true(worst <= NLL_TOL);
    lp_free(base), lp_free(masked), lp_free(shrunk);
    lp_task_free(small);

    /* the fixed last layer cannot lose units: refused, naming the group and the reason, by the plan from
     * kept lists and (for a plan edited afterwards) by every surgery entry point */
    int some[4] = {0, 1, 2, 3};
    kept[1] = some;
    k[1] = 4;
    lp_prune_plan q;
    assert_int_equal(lp_prune_plan_from_kept(t, kept, k, &q), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "group lstm2 is kept whole"));
    p.g[1].k = 4;
    assert_int_equal(lp_prune_plan_check(t, &p), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "group lstm2 is kept whole"));
    float *before = lp_malloc(t->params->numel, sizeof *before);
    memcpy(before, t->params->data, t->params->numel * sizeof *before);
    assert_int_equal(lp_surgery_mask(t, &p), LP_ERR_ARG);
    assert_int_equal(lp_surgery_shrink(t, &p, &small), LP_ERR_ARG);
    assert_null(small);
    assert_memory_equal(before, t->params->data, t->params->numel * sizeof *before);
    p.g[1].k = 9;
    lp_free(before);
    lp_free(ids);
    lp_prune_plan_free(&p);
    lp_task_free(t);
}

/* Mean compensation on the tied LM: lstm1 units made to respond the same at every step (input and
 * recurrent rows zero, forget gate shut, nothing of their layer reads them back) are removed with their
 * means (from lp_prune_stats over the LM task's carried windows) folded into the biases that read them
 * (lstm2.b); the fixed layer keeps all its units and needs no bias of its consumer embed.w. The smaller
 * LM gives the unpruned per-word NLLs; without compensation it does not. */
static void test_compensate_constant_units_tied(void **state) {
    (void)state;
    const size_t n = 200;
    int32_t *ids = random_ids(n, 40, 42);
    const lp_ptb_corpus corpus = corpus_of(40, ids, n);
    lp_task *t = tied_lm(41, &corpus);
    lp_lm_task *lt = lp_lm_task_of(t);
    lt->stats_batch = 3, lt->stats_bptt = 7;
    int k[2] = {5, 9}, kept0[10], kept1[9];
    int *kept[2] = {kept0, kept1};
    for (int l = 0; l < 2; l++) {
        const lp_unit_group *g = &t->groups[l];
        const int H = g->units, F = g->input_dim;
        for (int j = 0, i = 0; j < H; j++) {
            if (j < k[l]) { /* keep the first k units, make the others constant */
                kept[l][i++] = j;
                continue;
            }
            for (int q = 0; q < 4; q++) {
                memset(g->w_ih->data + (size_t)(q * H + j) * F, 0, (size_t)F * sizeof(float));
                memset(g->w_hh->data + (size_t)(q * H + j) * H, 0, (size_t)H * sizeof(float));
            }
            for (int r = 0; r < 4 * H; r++) g->w_hh->data[(size_t)r * H + j] = 0;
            const float bq[4] = {2.0f, -100.0f, 1.0f + 0.1f * j, 1.5f};
            for (int q = 0; q < 4; q++) g->b->data[q * H + j] = bq[q];
        }
    }
    lp_stats st[2];
    assert_int_equal(lp_prune_stats(t, 0, LP_STATS_STEPS_ALL, st), LP_OK);
    lp_prune_plan p;
    assert_int_equal(lp_prune_plan_from_kept(t, kept, k, &p), LP_OK);
    for (int l = 0; l < 2; l++) {
        const size_t H = (size_t)t->groups[l].units; /* 10 and 9 */
        double *cov = lp_malloc(H * H, sizeof(double));
        p.g[l].mean = lp_malloc(H, sizeof(double));
        assert_int_equal(lp_stats_finish(&st[l], p.g[l].mean, cov), LP_OK);
        lp_free(cov);
        lp_stats_free(&st[l]);
    }
    lp_free(p.g[1].mean); /* the fixed layer loses nothing: its means are never needed */
    p.g[1].mean = NULL;
    size_t cnt;
    double *base = word_nll(t, ids, n, &cnt);
    lp_task *plain, *comp;
    assert_int_equal(lp_surgery_shrink(t, &p, &plain), LP_OK);
    p.opts.compensate = 1;
    assert_int_equal(lp_surgery_shrink(t, &p, &comp), LP_OK);
    double *a = word_nll(plain, ids, n, &cnt), *b = word_nll(comp, ids, n, &cnt);
    double worst = 0, moved = 0;
    for (size_t i = 0; i < cnt; i++) {
        worst = fmax(worst, fabs(b[i] - base[i]));
        moved = fmax(moved, fabs(a[i] - base[i]));
    }
    fprintf(stderr, "tied: compensated |NLL - unpruned| <= %.3g, uncompensated up to %.3g\n", worst, moved);
    assert_true(worst <= NLL_TOL);
    assert_true(moved > 1e-3);
    /* only lstm2.b (lstm1's reader) and lstm1.b (its own gates, whose constant units read nothing back)
     * may differ from the plain shrink; the tied table is the same */
    for (int i = 0; i < plain->params->count; i++) {
        const lp_param *x = &plain->params->items[i], *y = &comp->params->items[i];
        const int same = memcmp(x->t.data, y->t.data, lp_tensor_numel(&x->t) * sizeof(float)) == 0;
        if (strcmp(x->name, "lstm2.b") && strcmp(x->name, "lstm1.b")) assert_true(same);
    }
    assert_true(memcmp(lp_params_find(plain->params, "lstm2.b")->data, lp_params_find(comp->params, "lstm2.b")->data,
                       4 * 9 * sizeof(float)) != 0);
    lp_free(a), lp_free(b), lp_free(base), lp_free(ids);
    lp_task_free(plain), lp_task_free(comp), lp_task_free(t);
    lp_prune_plan_free(&p);
}

/* The index maps of the shrink on an untied LM (the only test that checks every gathered element's
 * source): w_hh rows and columns, the next layer's w_ih rows and columns, the columns of out.w. */
static void test_gather_maps_and_errors(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 13, 2, 6);
    c.embed = 4;
    c.hidden[1] = 5;
    const lp_ptb_corpus corpus = corpus_of(13, NULL, 0);
    lp_lm mm;
    assert_int_equal(lp_lm_init(&mm, &c, 41), LP_OK);
    lp_task *t = task_of(&mm, &corpus);
    const lp_lm *m = lm_of(t);
    int k1[3] = {1, 3, 4}, k2[2] = {0, 4};
    int *kept[2] = {k1, k2};
    int nk[2] = {3, 2};
    lp_prune_plan p;
    assert_int_equal(lp_prune_plan_from_kept(t, kept, nk, &p), LP_OK);
    assert_true(fabs(p.rates.mean_rate - (0.5 + 0.6) / 2) < 1e-12);
    lp_task *st;
    assert_int_equal(lp_surgery_shrink(t, &p, &st), LP_OK);
    const lp_lm *s = lm_of(st);
    /* gather of the index array: every target element names the source element it came from */
    float *src = lp_malloc(m->params.numel, sizeof *src), *dst = lp_malloc(s->params.numel, sizeof *dst);
    for (size_t i = 0; i < m->params.numel; i++) src[i] = (float)i; /* exact: numel < 2^24 */
    assert_int_equal(lp_surgery_gather(t, &p, st, src, dst), LP_OK);
    const size_t o_in = (size_t)(m->groups[0].w_hh->data - m->params.data), o_out = (size_t)(s->groups[0].w_hh->data - s->params.data);
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < 3; u++)
            for (int v = 0; v < 3; v++) {
                /* lstm1.w_hh [4H,H]: new (q*3+u, v) = old (q*6 + k1[u], k1[v]) */
                size_t want = o_in + (size_t)(q * 6 + k1[u]) * 6 + (size_t)k1[v];
                assert_true(dst[o_out + (size_t)(q * 3 + u) * 3 + (size_t)v] == (float)want);
            }
    /* lstm2.w_ih [4*5, 6] -> [4*2, 3]: rows by layer 2's kept, columns by layer 1's kept */
    const size_t i2 = (size_t)(m->groups[1].w_ih->data - m->params.data), o2 = (size_t)(s->groups[1].w_ih->data - s->params.data);
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < 2; u++)
            for (int v = 0; v < 3; v++)
                assert_true(dst[o2 + (size_t)(q * 2 + u) * 3 + (size_t)v] == (float)(i2 + (size_t)(q * 5 + k2[u]) * 6 + (size_t)k1[v]));
    /* out.w [V,5] -> [V,2] */
    const size_t iw = (size_t)(m->out_w->data - m->params.data), ow = (size_t)(s->out_w->data - s->params.data);
    for (int r = 0; r < 13; r++)
        for (int u = 0; u < 2; u++) assert_true(dst[ow + (size_t)r * 2 + (size_t)u] == (float)(iw + (size_t)r * 5 + (size_t)k2[u]));
    /* the embedding and out.b are copied whole */
    const size_t ie = (size_t)(m->embed_w->data - m->params.data), oe = (size_t)(s->embed_w->data - s->params.data);
    for (int i = 0; i < 13 * 4; i++) assert_true(dst[oe + (size_t)i] == (float)(ie + (size_t)i));
    /* the values are gathered the same way */
    assert_int_equal(lp_surgery_gather(t, &p, st, m->params.data, dst), LP_OK);
    assert_memory_equal(dst, s->params.data, s->params.numel * sizeof(float));
    assert_int_equal(lp_lm_numel(s), hand_numel(&s->cfg));
    /* a target not built with this plan is refused, naming the group */
    lp_lm om;
    assert_int_equal(lp_lm_init(&om, &c, 1), LP_OK);
    lp_task *other = task_of(&om, &corpus);
    assert_int_equal(lp_surgery_gather(t, &p, other, src, dst), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "lstm1"));
    lp_task_free(other);
    /* bad kept lists, naming the group */
    int bad1[3] = {3, 1, 4};
    kept[0] = bad1;
    lp_prune_plan q;
    assert_int_equal(lp_prune_plan_from_kept(t, kept, nk, &q), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "group lstm1: kept[1] = 1"));
    nk[0] = 0;
    assert_int_equal(lp_prune_plan_from_kept(t, kept, nk, &q), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "group lstm1"));
    lp_free(src);
    lp_free(dst);
    lp_task_free(st);
    lp_prune_plan_free(&p);
    lp_task_free(t);
}

/* ---- statistics and plans ---- */

static void test_stats_and_plans(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 30, 2, 12);
    c.hidden[1] = 10;
    c.init_scale = 0.4f;
    const size_t n = 600;
    int32_t *ids = random_ids(n, 30, 52);
    const lp_ptb_corpus corpus = corpus_of(30, ids, n);
    lp_lm mm;
    assert_int_equal(lp_lm_init(&mm, &c, 51), LP_OK);
    lp_task *t = task_of(&mm, &corpus);
    lp_lm *m = lm_of(t);
    enum { B = 4, T = 9, W = 5 };
    lp_lm_task_of(t)->stats_batch = B;
    lp_lm_task_of(t)->stats_bptt = T;
    lp_stats st[2];
    assert_int_equal(lp_prune_stats(t, W, LP_STATS_STEPS_ALL, st), LP_OK);
    assert_int_equal(lp_stats_count(&st[0]), W * B * T);
    assert_int_equal(lp_stats_count(&st[1]), W * B * T);
    /* the mean of layer 2's h, computed independently over the same windows (state carried) */
    {
        double mean[10] = {0}, got[10];
        lp_lm_state s;
        assert_int_equal(lp_lm_state_init(&s, m, B), LP_OK);
        lp_tape tp;
        assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
        lp_tape_set_grad(&tp, 0);
        lp_ptb_batcher bt;
        assert_int_equal(lp_ptb_batcher_init(&bt, ids, n, B, T, 1), LP_OK);
        int32_t x[B * T], y[B * T];
        for (int w = 0; w < W; w++) {
            lp_tape_reset(&tp);
            int tl = lp_ptb_batcher_window(&bt, w, x, y);
            lp_lm_out o;
            assert_int_equal(lp_lm_forward(m, &tp, x, NULL, B, tl, &s, NULL, &o), LP_OK);
            for (int i = 0; i < B * tl; i++)
                for (int j = 0; j < 10; j++) mean[j] += o.group_h[1]->data[i * 10 + j] / (double)(W * B * T);
        }
        assert_int_equal(lp_stats_finish(&st[1], got, NULL), LP_OK);
        /* double sums of the same float values in another order: 1e-12 */
        for (int j = 0; j < 10; j++) assert_true(fabs(got[j] - mean[j]) < 1e-12);
        lp_tape_free(&tp);
        lp_lm_state_free(&s);
    }
    /* eigen rule with a target mean rate of 0.5: reached up to one unit of the smaller layer */
    lp_prune_opts o;
    lp_prune_opts_default(&o);
    o.rates.target_rate = 0.5;
    lp_prune_plan p;
    assert_int_equal(lp_prune_plan_make(t, st, &o, &p), LP_OK);
    assert_string_equal(p.method, "eigen+gm");
    assert_true(fabs(p.rates.mean_rate - 0.5) <= 1.0 / 10 + 1e-12);
    for (int l = 0; l < 2; l++) {
        assert_non_null(p.g[l].eig);
        assert_true(p.g[l].k >= 1 && p.g[l].k < p.g[l].h);
        assert_int_equal(p.g[l].n_responses, W * B * T);
        for (int j = 1; j < p.g[l].h; j++) assert_true(p.g[l].eig[j] <= p.g[l].eig[j - 1]);
        for (int i = 1; i < p.g[l].k; i++) assert_true(p.g[l].kept[i] > p.g[l].kept[i - 1]);
        assert_true(isfinite(p.g[l].tau) && p.g[l].energy_kept >= p.g[l].tau - 1e-12);
    }
    lp_prune_plan_free(&p);
    /* the τ rule: the kept energy covers τ with the fewest units */
    o.rates.target_rate = -1;
    o.rates.tau = 0.8;
    assert_int_equal(lp_prune_plan_make(t, st, &o, &p), LP_OK);
    for (int l = 0; l < 2; l++) {
        double total = 0, before = 0;
        for (int j = 0; j < p.g[l].h; j++) total += p.g[l].eig[j];
        for (int j = 0; j < p.g[l].k - 1; j++) before += p.g[l].eig[j];
        assert_true(before < 0.8 * total && before + p.g[l].eig[p.g[l].k - 1] >= 0.8 * total * (1 - 1e-12));
    }
    lp_prune_plan_free(&p);
    /* uniform + l2 without statistics: k = H - round(r H); kept = the largest unit-vector norms */
    o.rates.rule = LP_RATE_RULE_UNIFORM;
    o.rates.target_rate = 0.25;
    o.criterion = LP_CRITERION_L2;
    assert_int_equal(lp_prune_plan_make(t, NULL, &o, &p), LP_OK);
    assert_int_equal(p.g[0].k, 12 - 3);
    assert_int_equal(p.g[1].k, 10 - 3); /* round(2.5) = 3 */
    for (int l = 0; l < 2; l++) {
        const int H = p.g[l].h, F = t->groups[l].input_dim;
        double norm[12];
        for (int j = 0; j < H; j++) {
            double ss = 0;
            for (int q = 0; q < 4; q++) {
                for (int f = 0; f < F; f++) ss += pow(t->groups[l].w_ih->data[(size_t)(q * H + j) * F + f], 2);
                for (int h = 0; h < H; h++) ss += pow(t->groups[l].w_hh->data[(size_t)(q * H + j) * H + h], 2);
            }
            norm[j] = sqrt(ss);
        }
        /* every kept unit has a larger norm than every removed one */
        unsigned char in[12] = {0};
        for (int i = 0; i < p.g[l].k; i++) in[p.g[l].kept[i]] = 1;
        double min_kept = INFINITY, max_removed = 0;
        for (int j = 0; j < H; j++)
            if (in[j]) min_kept = fmin(min_kept, norm[j]);
            else max_removed = fmax(max_removed, norm[j]);
        assert_true(min_kept > max_removed);
    }
    lp_prune_plan_free(&p);
    /* the eigen rule needs statistics */
    o.rates.rule = LP_RATE_RULE_EIGEN;
    assert_int_equal(lp_prune_plan_make(t, NULL, &o, &p), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "statistics"));
    for (int l = 0; l < 2; l++) lp_stats_free(&st[l]);
    lp_task_free(t);

    /* tied: the last layer is kept whole and said so; a single tied layer cannot be pruned */
    lp_lm_config_default(&c, 30, 2, 8);
    c.tied = 1;
    assert_int_equal(lp_lm_init(&mm, &c, 53), LP_OK);
    t = task_of(&mm, &corpus);
    lp_lm_task_of(t)->stats_batch = B;
    lp_lm_task_of(t)->stats_bptt = T;
    assert_int_equal(lp_prune_stats(t, W, LP_STATS_STEPS_ALL, st), LP_OK);
    lp_prune_opts_default(&o);
    o.rates.target_rate = 0.5;
    assert_int_equal(lp_prune_plan_make(t, st, &o, &p), LP_OK);
    assert_int_equal(p.g[1].fixed, 1);
    assert_int_equal(p.g[0].fixed, 0);
    assert_int_equal(p.g[1].k, 8);
    assert_int_equal(p.g[0].k, 4); /* the whole target falls on the one prunable layer */
    assert_non_null(p.g[1].eig);   /* the fixed layer's spectrum is still there for the report */
    assert_non_null(strstr(p.note, "lstm2"));
    lp_prune_plan_free(&p);
    /* lp_prune_plan_run: the same statistics (stats_batches windows) and the same plan in one call */
    o.stats_batches = W;
    lp_prune_plan p2;
    assert_int_equal(lp_prune_plan_make(t, st, &o, &p), LP_OK);
    assert_int_equal(lp_prune_plan_run(t, &o, &p2), LP_OK);
    for (int l = 0; l < 2; l++) {
        assert_int_equal(p2.g[l].k, p.g[l].k);
        assert_memory_equal(p2.g[l].kept, p.g[l].kept, (size_t)p.g[l].k * sizeof(int));
        assert_int_equal(p2.g[l].n_responses, W * B * T);
    }
    lp_prune_plan_free(&p), lp_prune_plan_free(&p2);
    for (int l = 0; l < 2; l++) lp_stats_free(&st[l]);
    lp_task_free(t);
    lp_lm_config_default(&c, 30, 1, 8);
    c.tied = 1;
    assert_int_equal(lp_lm_init(&mm, &c, 54), LP_OK);
    t = task_of(&mm, &corpus);
    assert_true(t->groups[0].fixed);
    o.rates.rule = LP_RATE_RULE_UNIFORM;
    assert_int_equal(lp_prune_plan_make(t, NULL, &o, &p), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "kept whole"));
    lp_task_free(t);
    lp_free(ids);
}

/* ---- ISS ---- */

static double penalty_of(lp_task *t, double lambda) {
    double pen;
    lp_params_zero_grad(t->params);
    assert_int_equal(lp_iss_penalty(t, lambda, &pen), LP_OK);
    return pen;
}

/* A tied LM of 11 words, lstm1 5 units, lstm2 4 (fixed): the penalty's gradient against central
 * differences; the fixed layer is left out of it, of the zeroing, of the proximal step and of the kept
 * plan. (Argument errors and NaN weights: tests/test_iss.c.) */
static void test_iss_penalty_gradient(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 11, 2, 5);
    c.embed = 4;
    c.hidden[1] = 4;
    c.tied = 1; /* the last layer is left out of the penalty */
    c.init_scale = 0.5f;
    const lp_ptb_corpus corpus = corpus_of(11, NULL, 0);
    lp_lm mm;
    assert_int_equal(lp_lm_init(&mm, &c, 61), LP_OK);
    lp_task *t = task_of(&mm, &corpus);
    lp_params *ps = t->params;
    assert_true(t->groups[1].fixed);
    const double lambda = 0.7;
    double pen = penalty_of(t, lambda);
    /* Ω = λ Σ_j ||footprint_j|| of layer 1 only */
    double norms[5], sum = 0;
    assert_int_equal(lp_iss_norms(t, 0, norms), LP_OK);
    for (int j = 0; j < 5; j++) sum += norms[j];
    assert_true(fabs(pen - lambda * sum) <= 1e-12 * pen);
    /* the norms (computed in row-major passes) against the footprint of prune/surgery.h, element by element
     * (both double sums of the same squares, in another order: 1e-12 relative); the fixed layer's too, whose
     * consumer is the embedding table */
    {
        lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
        for (int l = 0; l < 2; l++) {
            double nl[5];
            assert_int_equal(lp_iss_norms(t, l, nl), LP_OK);
            for (int j = 0; j < t->groups[l].units; j++) {
                const int ns = lp_surgery_footprint(&t->groups[l], j, segs);
                double ssq = 0;
                size_t cnt = 0;
                for (int q = 0; q < ns; q++)
                    for (int k = 0; k < segs[q].n; k++, cnt++) ssq += pow(segs[q].t->data[segs[q].start + (size_t)k * segs[q].stride], 2);
                assert_int_equal(cnt, lp_surgery_footprint_numel(&t->groups[l]));
                assert_true(fabs(nl[j] - sqrt(ssq)) <= 1e-12 * sqrt(ssq));
            }
        }
    }
    float *grad = lp_malloc(ps->numel, sizeof *grad);
    memcpy(grad, ps->grad, ps->numel * sizeof *grad);
    /* central differences of Ω over every parameter (float32 steps of 1e-2; Ω in double): the error is
     * O(h²·curvature) ≈ 1e-4·λ/||w|| ≈ 1e-4, far below the gradient entries (~λ·|w|/||w|| ≈ 0.1) */
    double worst = 0;
    int nonzero = 0;
    for (size_t i = 0; i < ps->numel; i++) {
        const float w0 = ps->data[i];
        ps->data[i] = w0 + 1e-2f;
        const float wp = ps->data[i];
        double fp = penalty_of(t, lambda);
        ps->data[i] = w0 - 1e-2f;
        const float wm = ps->data[i];
        double fm = penalty_of(t, lambda);
        ps->data[i] = w0;
        double num = (fp - fm) / ((double)wp - (double)wm);
        worst = fmax(worst, fabs(num - grad[i]));
        nonzero += grad[i] != 0;
    }
    fprintf(stderr, "iss penalty: worst |analytic - central difference| = %.3g over %zu parameters (%d non-zero)\n",
            worst, ps->numel, nonzero);
    assert_true(worst < 1e-3);
    /* layer 1's footprints: its rows, w_hh, bias, and lstm2.w_ih's columns; nothing of the tied layer 2's
     * rows, of the embedding or of out.b */
    const size_t fp1 = 4 * 5 * 4 + 4 * 5 * 5 + 4 * 5 + 4 * 4 * 5;
    assert_int_equal(nonzero, (int)fp1);
    for (size_t i = 0; i < (size_t)(11 * 4); i++) assert_true(grad[i] == 0.0f);
    /* λ = 0: nothing */
    assert_true(penalty_of(t, 0) == 0);
    lp_free(grad);

    /* The fixed layer is never removed: a threshold above every norm keeps it whole (and one unit of
     * layer 1, its largest), zeroing leaves its weights alone, and so does a proximal step larger than
     * every norm. */
    double n0[5], n1[4];
    assert_int_equal(lp_iss_norms(t, 0, n0), LP_OK);
    assert_int_equal(lp_iss_norms(t, 1, n1), LP_OK);
    int best = 0;
    for (int j = 1; j < 5; j++) best = n0[j] > n0[best] ? j : best;
    lp_prune_plan p;
    assert_int_equal(lp_iss_kept(t, 1e6, &p), LP_OK);
    assert_string_equal(p.method, "iss");
    assert_true(p.g[0].k == 1 && p.g[0].kept[0] == best);
    assert_true(p.g[1].k == 4 && p.g[1].fixed);
    lp_prune_plan_free(&p);
    const lp_unit_group *g1 = &t->groups[1];
    const size_t n_fixed = lp_tensor_numel(g1->w_ih) + lp_tensor_numel(g1->w_hh) + lp_tensor_numel(g1->b);
    float *fixed_before = lp_malloc(n_fixed + 11 * 4, sizeof(float));
    float *fb = fixed_before;
    memcpy(fb, g1->w_ih->data, lp_tensor_numel(g1->w_ih) * sizeof(float)), fb += lp_tensor_numel(g1->w_ih);
    memcpy(fb, g1->w_hh->data, lp_tensor_numel(g1->w_hh) * sizeof(float)), fb += lp_tensor_numel(g1->w_hh);
    memcpy(fb, g1->b->data, lp_tensor_numel(g1->b) * sizeof(float)), fb += lp_tensor_numel(g1->b);
    memcpy(fb, lm_of(t)->embed_w->data, 11 * 4 * sizeof(float));
    int zeroed;
    assert_int_equal(lp_iss_zero_below(t, 1e6, &zeroed), LP_OK);
    assert_int_equal(zeroed, 4); /* every unit of layer 1 but its largest */
    assert_int_equal(lp_iss_norms(t, 0, n0), LP_OK);
    for (int j = 0; j < 5; j++) assert_true(j == best ? n0[j] > 0 : n0[j] == 0.0);
    assert_int_equal(lp_iss_prox(t, 1e6), LP_OK);
    assert_int_equal(lp_iss_norms(t, 0, n0), LP_OK);
    for (int j = 0; j < 5; j++) assert_true(n0[j] == 0.0);
    /* layer 1's zeroing cleared the columns of lstm2.w_ih it owned; lstm2's rows, w_hh, bias and the table
     * are as they were, and its norms changed only by those columns */
    fb = fixed_before;
    const size_t F2 = (size_t)g1->input_dim, H2 = (size_t)g1->units;
    for (size_t r = 0; r < 4 * H2; r++)
        for (size_t f = 0; f < F2; f++) assert_true(g1->w_ih->data[r * F2 + f] == 0.0f);
    fb += lp_tensor_numel(g1->w_ih);
    assert_memory_equal(fb, g1->w_hh->data, lp_tensor_numel(g1->w_hh) * sizeof(float)), fb += lp_tensor_numel(g1->w_hh);
    assert_memory_equal(fb, g1->b->data, lp_tensor_numel(g1->b) * sizeof(float)), fb += lp_tensor_numel(g1->b);
    assert_memory_equal(fb, lm_of(t)->embed_w->data, 11 * 4 * sizeof(float));
    double n1_after[4];
    assert_int_equal(lp_iss_norms(t, 1, n1_after), LP_OK);
    for (int j = 0; j < 4; j++) assert_true(n1_after[j] > 0 && n1_after[j] <= n1[j]);
    lp_free(fixed_before);
    lp_task_free(t);
}

/* Train a tiny LM (2 layers of 16 and 12, init 0.1, seed 72) on `corpus` for `epochs` epochs with the ISS
 * trainer hooks (subgradient after backward, zeroing below threshold after every update) through the one
 * trainer (SGD at lr 0.5, B 4, windows of 10, clip 5, no decay, no dropout) into scratch/<name>; returns
 * the trained model as a task and the units at exactly zero. */
static lp_task *iss_train(const char *name, const lp_ptb_corpus *corpus, double lambda, double threshold, int epochs,
                          int *zero) {
    char run[600], ck[700];
    snprintf(run, sizeof run, "%s/%s", lp_test_scratch_dir(), name);
    snprintf(ck, sizeof ck, "%s/last.ckpt", run);
    lp_kv cfg;
    lp_kv_init(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "lm.units", "16,12"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "lm.init_scale", "0.1"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "lm.dropout", "0"), LP_OK);
    assert_int_equal(lp_kv_set_int(&cfg, "train.epochs", epochs), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.batch", "4"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.bptt", "10"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.lr", "0.5"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.lr_decay", "1"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.clip", "5"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.seed", "72"), LP_OK);
    lp_iss_state iss = {.lambda = lambda, .zero_threshold = threshold};
    const lp_task_kind kind = lp_lm_task_kind(corpus);
    lp_train_opts o = {.run_dir = run, .quiet = 1,
                       .hooks = {.user = &iss, .after_backward = lp_iss_grad_hook, .after_update = lp_iss_update_hook}};
    lp_train_result r;
    lp_status s = lp_train(&kind, &cfg, &o, &r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    lp_kv_free(&cfg);
    assert_int_equal(r.epochs_done, epochs);
    assert_true(iss.calls == r.steps && r.steps > 0); /* the grad hook ran once per step */
    assert_true(lambda == 0 ? iss.last_penalty == 0 : iss.last_penalty > 0);
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, ck, NULL), LP_OK);
    lp_task *t = task_of(&m, corpus);
    *zero = 0;
    for (int l = 0; l < t->n_groups; l++) {
        double norms[16];
        assert_int_equal(lp_iss_norms(t, l, norms), LP_OK);
        for (int j = 0; j < t->groups[l].units; j++) *zero += norms[j] == 0.0;
    }
    assert_int_equal(*zero, iss.zeroed); /* what the update hook counted after the last step */
    return t;
}

static void test_iss_drives_groups_to_zero(void **state) {
    (void)state;
    size_t len;
    char *text = lp_test_markov_text(300, 71, &len);
    char path[512];
    snprintf(path, sizeof path, "%s/iss.txt", lp_test_scratch_dir());
    assert_int_equal(lp_file_write_all(path, text, len), LP_OK);
    lp_free(text);
    lp_ptb_vocab v;
    assert_int_equal(lp_ptb_vocab_build(&v, path, 0), LP_OK);
    int32_t *ids;
    size_t n;
    assert_int_equal(lp_ptb_tokens_load(&v, path, &ids, &n, NULL), LP_OK);
    /* the text is every split: the trainer scores validation and test after each epoch */
    lp_ptb_corpus corpus = corpus_of(v.size, ids, n);
    for (int sp = 1; sp < LP_PTB_SPLITS; sp++) corpus.ids[sp] = ids, corpus.n[sp] = n;
    const double thr = 0.02;
    int zero;
    /* control: without the penalty no unit gets near zero */
    lp_task *ctrl = iss_train("iss_ctrl", &corpus, 0.0, thr, 2, &zero);
    assert_int_equal(zero, 0);
    /* with it, many do (the data needs few units: 30 words on a near-deterministic chain) */
    lp_task *t = iss_train("iss_on", &corpus, 0.01, thr, 2, &zero);
    fprintf(stderr, "iss: %d of 28 units driven to zero\n", zero);
    assert_true(zero >= 7);
    /* removing exactly those units changes nothing: the ISS model is its own masked model */
    lp_prune_plan p;
    assert_int_equal(lp_iss_kept(t, thr, &p), LP_OK);
    assert_string_equal(p.method, "iss");
    assert_int_equal(p.g[0].k + p.g[1].k, 28 - zero);
    assert_true(p.g[0].k >= 1 && p.g[1].k >= 1);
    lp_task *small;
    assert_int_equal(lp_surgery_shrink(t, &p, &small), LP_OK);
    size_t cnt;
    double *x = word_nll(t, ids, n, &cnt), *y = word_nll(small, ids, n, &cnt);
    double worst = 0;
    for (size_t i = 0; i < cnt; i++) worst = fmax(worst, fabs(x[i] - y[i]));
    assert_true(worst <= NLL_TOL); /* tolerance: see NLL_TOL */
    lp_free(x);
    lp_free(y);
    lp_task_free(small);
    lp_prune_plan_free(&p);
    lp_task_free(t);
    lp_task_free(ctrl);
    lp_free(ids);
    lp_ptb_vocab_free(&v);
}

/* ---- the whole job: the pipeline (experiments/pipeline.h) with the LM kind ---- */

/* Pipeline options over `cfg` (initialised here) for pruning checkpoint `ck` into `out`: the evaluation
 * lm-eval and lm-prune use (20 streams, windows of 35, so the report's perplexities can be recomputed
 * below), one thread, a cheap latency measurement. */
static void lm_opts(lp_pipeline_opts *o, lp_kv *cfg, const lp_task_kind *kind, const char *ck, const char *out) {
    lp_kv_init(cfg);
    assert_int_equal(lp_kv_set(cfg, "train.eval_batch", "20"), LP_OK);
    assert_int_equal(lp_kv_set(cfg, "train.eval_bptt", "35"), LP_OK);
    assert_int_equal(lp_kv_set(cfg, "train.threads", "1"), LP_OK);
    lp_pipeline_opts_default(o);
    o->kind = kind;
    o->cfg = cfg;
    o->baseline_ckpt = ck;
    o->out_dir = out;
    o->quiet = 1;
    o->lat_batch = 4;
    o->lat_frames = 8;
    o->lat_reps = 1;
}

/* Perplexity and words of a checkpoint's LM on a split of the corpus (20 streams, windows of 35). */
static lp_lm_eval_result eval_ckpt(const char *path, const lp_ptb_corpus *c, int split) {
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, path, NULL), LP_OK);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(&m, c->ids[split], c->n[split], 20, 35, NULL, &ev), LP_OK);
    lp_lm_free(&m);
    return ev;
}

/* FLOPs per word of an LM with these sizes, counted by hand: 2 per multiply-add of the four gates' input
 * and recurrent GEMMs of every layer, and of the softmax layer. */
static double hand_flops(const lp_lm_config *c) {
    double f = 2.0 * c->vocab * c->hidden[c->layers - 1];
    for (int l = 0; l < c->layers; l++) f += 2.0 * 4 * c->hidden[l] * ((l ? c->hidden[l - 1] : c->embed) + c->hidden[l]);
    return f;
}

/* The file dir/name, NUL-terminated (lp_free). */
static char *read_out(const char *dir, const char *name) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    static char *buf; /* static: gcc's -Wdangling-pointer cannot tell a local's address from the buffer */
    size_t len;
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    return buf;
}

/* report.md has the row's line in its models table — "| label | parameters | FLOPs/word | checkpoint bytes
 * | latency B=1 | latency B=N (N=b) | ppl |" — with the row's numbers. */
static void check_md_row(const char *md, const lp_report_model *r) {
    char head[256], tail[64];
    snprintf(head, sizeof head, "\n| %s | %zu | %.4g | %zu | ", r->label, r->params, r->flops_step, r->ckpt_bytes);
    const char *p = strstr(md, head);
    assert_non_null(p);
    const char *eol = strchr(p + 1, '\n');
    snprintf(tail, sizeof tail, " %.4f |", lp_score_get(&r->score, "ppl"));
    const size_t tl = strlen(tail);
    assert_true(eol && (size_t)(eol - p) > tl && memcmp(eol - tl, tail, tl) == 0);
}

/* report.json's "models" entry for the row holds its parameters, ppl, nll and words. */
static void check_json_row(const char *js, const lp_report_model *r) {
    char key[64], obj[2048], want[128];
    snprintf(key, sizeof key, "{\"label\": \"%s\"", r->label);
    const char *p = strstr(js, key), *end = p ? strchr(p, '}') : NULL;
    assert_true(p && end && (size_t)(end - p) < sizeof obj);
    snprintf(obj, sizeof obj, "%.*s", (int)(end - p), p);
    snprintf(want, sizeof want, "\"parameters\": %zu,", r->params);
    assert_non_null(strstr(obj, want));
    snprintf(want, sizeof want, "\"ppl\": %.6f", lp_score_get(&r->score, "ppl"));
    assert_non_null(strstr(obj, want));
    snprintf(want, sizeof want, "\"nll\": %.6f", lp_score_get(&r->score, "nll"));
    assert_non_null(strstr(obj, want));
    snprintf(want, sizeof want, "\"words\": %lld", (long long)r->score.examples);
    assert_non_null(strstr(obj, want));
}

/* Run "$LP_BIN args" at one thread, stdout and stderr into the file `log`; returns the exit code. */
/* DIR_A/pruned.ckpt and DIR_B/pruned.ckpt hold the same tensors, bit for bit. */
static void same_pruned_weights(const char *dir_a, const char *dir_b) {
    char path[700];
    lp_ckpt a, b;
    snprintf(path, sizeof path, "%s/pruned.ckpt", dir_a);
    assert_int_equal(lp_ckpt_load(&a, path), LP_OK);
    snprintf(path, sizeof path, "%s/pruned.ckpt", dir_b);
    assert_int_equal(lp_ckpt_load(&b, path), LP_OK);
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        assert_string_equal(a.t[i].name, b.t[i].name);
        assert_int_equal(a.t[i].numel, b.t[i].numel);
        assert_memory_equal(a.t[i].data, b.t[i].data, a.t[i].numel * sizeof(float));
    }
    lp_ckpt_free(&a);
    lp_ckpt_free(&b);
}

static int run_bin(const char *args, const char *log) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "OPENBLAS_NUM_THREADS=1 %s %s >%s 2>&1", lp_test_bin(), args, log);
    const int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The pipeline on a trained LM: eigen + gm at mean rate 0.5 with fine-tuning, uniform + l2 at 0.25 (with
 * and without mean compensation, the corpus given to the kind), the ISS baseline; the sizes promised, the
 * report's rows recomputed independently and found in report.md / report.json, and lm-prune as a front end
 * over the same pipeline. */
static void test_pipeline_end_to_end(void **state) {
    (void)state;
    char run[600], out[600], ck[700], path[800];
    snprintf(run, sizeof run, "%s/base", lp_test_scratch_dir());
    lp_kv cfg;
    lp_kv_init(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "data.dir", lp_test_scratch_dir()), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "lm.units", "16"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.epochs", "2"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.batch", "4"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.bptt", "10"), LP_OK);
    const lp_task_kind kind = lp_lm_task_kind(NULL); /* the corpus read from each run's data.dir */
    lp_train_opts ro = {.run_dir = run, .quiet = 1};
    lp_train_result rr;
    assert_int_equal(lp_train(&kind, &cfg, &ro, &rr), LP_OK);
    lp_kv_free(&cfg);
    snprintf(ck, sizeof ck, "%s/best.ckpt", run);
    lp_ptb_corpus corpus;
    assert_int_equal(lp_ptb_corpus_load(&corpus, lp_test_scratch_dir(), 0), LP_OK);

    /* eigen + gm at a target rate of 0.5, statistics over 20 windows, one fine-tuning epoch at lr 0.1 */
    lp_pipeline_opts o;
    snprintf(out, sizeof out, "%s/eigen", lp_test_scratch_dir());
    lm_opts(&o, &cfg, &kind, ck, out);
    o.prune.rates.target_rate = 0.5;
    o.prune.stats_batches = 20;
    o.finetune_epochs = 1;
    o.finetune_lr = 0.1;
    assert_int_equal(lp_kv_set(&cfg, "finetune.train.decay_after", "1"), LP_OK); /* the baseline's is 4 */
    lp_pipeline_result res;
    lp_status s = lp_pipeline_run(&o, &res);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(res.n_rows, 3); /* the LM task has no reference row */
    assert_string_equal(res.rows[0].label, "baseline");
    assert_string_equal(res.rows[1].label, "pruned");
    assert_string_equal(res.rows[2].label, "fine-tuned");
    assert_int_equal(res.n_groups, 2);
    assert_int_equal(res.groups[0].before + res.groups[1].before, 32);
    assert_int_equal(res.groups[0].after + res.groups[1].after, 16); /* mean rate 0.5 over two layers of 16 */
    assert_true(fabs(res.mean_rate - 0.5) < 1e-12);
    assert_true(res.rows[1].params < res.rows[0].params);
    assert_int_equal(res.rows[1].params, res.rows[2].params);
    assert_true(res.rows[1].flops_step < res.rows[0].flops_step);
    /* the baseline row is best.ckpt: its validation perplexity as the training run measured it (there with
     * windows of 10, here of 35: the carried state makes that the same sum, in another float32 order) */
    assert_string_equal(res.rows[0].ckpt, ck);
    const double best_ppl = lp_score_get(&rr.best, "ppl");
    const lp_lm_eval_result bv = eval_ckpt(ck, &corpus, LP_PTB_VALID);
    assert_true(fabs(bv.ppl - best_ppl) <= 1e-5 * best_ppl);
    /* every row is scored on the test split, and is what lm-eval computes for its checkpoint (the same
     * model, data, batching and order: the same float sums, the same number); FLOPs/word by hand */
    const char *ckpts[3] = {ck, "pruned.ckpt", "finetune/best.ckpt"};
    for (int r = 0; r < 3; r++) {
        const lp_report_model *row = &res.rows[r];
        if (r) snprintf(path, sizeof path, "%s/%s", out, ckpts[r]);
        else snprintf(path, sizeof path, "%s", ck);
        assert_string_equal(row->ckpt, path);
        const lp_lm_eval_result ev = eval_ckpt(path, &corpus, LP_PTB_TEST);
        assert_true(row->score.n == 2 && !row->score.higher_better);
        assert_true(lp_score_get(&row->score, "ppl") == ev.ppl && lp_score_primary(&row->score) == ev.ppl);
        assert_true(lp_score_get(&row->score, "nll") == ev.nll);
        assert_int_equal(row->score.examples, (int64_t)ev.targets);
        assert_true(row->lat_b1_ms > 0 && row->lat_bn_ms > 0 && row->ckpt_bytes > 0);
        lp_lm m;
        assert_int_equal(lp_lm_load(&m, path, NULL), LP_OK);
        assert_true(row->flops_step == hand_flops(&m.cfg));
        assert_int_equal(row->params, lp_lm_numel(&m));
        lp_lm_free(&m);
    }
    /* fine-tuning improves the pruned model (the 2-epoch baseline is far from trained, so the pruned model is
     * about as good as it; one more epoch at lr 0.1 gains ~4 perplexity points here) */
    const double ppl_base = lp_score_get(&res.rows[0].score, "ppl"), ppl_pruned = lp_score_get(&res.rows[1].score, "ppl"),
                 ppl_ft = lp_score_get(&res.rows[2].score, "ppl");
    fprintf(stderr, "lm pipeline eigen 0.5: test ppl baseline %.3f, pruned %.3f, fine-tuned %.3f\n", ppl_base, ppl_pruned,
            ppl_ft);
    assert_true(ppl_ft < ppl_pruned - 1);
    /* the fine-tuning run: one epoch at lr 0.1 from pruned.ckpt, its "finetune." key, the baseline's batching */
    lp_kv rc;
    lp_kv_init(&rc);
    snprintf(path, sizeof path, "%s/finetune/config.txt", out);
    assert_int_equal(lp_kv_read_file(&rc, path), LP_OK);
    assert_true(lp_kv_get_int_or(&rc, "train.epochs", 0) == 1 && lp_kv_get_double_or(&rc, "train.lr", 0) == 0.1);
    assert_true(lp_kv_get_int_or(&rc, "train.batch", 0) == 4 && lp_kv_get_int_or(&rc, "train.bptt", 0) == 10);
    assert_int_equal(lp_kv_get_int_or(&rc, "train.decay_after", 0), 1);
    lp_kv_free(&rc);
    /* pruned.ckpt is a smaller LM that lm-eval/lm-train can load, with the plan and the run's data */
    snprintf(path, sizeof path, "%s/pruned.ckpt", out);
    lp_lm pm;
    lp_kv meta;
    lp_kv_init(&meta);
    assert_int_equal(lp_lm_load(&pm, path, &meta), LP_OK);
    for (int l = 0; l < 2; l++) assert_int_equal(pm.cfg.hidden[l], res.groups[l].after);
    assert_string_equal(lp_kv_get(&meta, "plan.rule"), "eigen");
    assert_string_equal(lp_kv_get(&meta, "plan.criterion"), "gm");
    assert_string_equal(lp_kv_get(&meta, "plan.compensate"), "none");
    assert_string_equal(lp_kv_get(&meta, "data.dir"), lp_test_scratch_dir());
    /* info reads it: kind, the pruned sizes, FLOPs per word as the LM computes them, the plan */
    char info[4096], line[128];
    assert_int_equal(lp_test_run(info, sizeof info, "", "info %s", path), 0);
    assert_non_null(strstr(info, "model        lm, vocabulary"));
    snprintf(line, sizeof line, "lstm1      %5d units", pm.cfg.hidden[0]);
    assert_non_null(strstr(info, line));
    snprintf(line, sizeof line, "FLOPs        %.4g per word", lp_lm_flops_per_word(&pm));
    assert_non_null(strstr(info, line));
    assert_non_null(strstr(info, "pruned       lstm1 16->"));
    lp_lm_free(&pm);
    lp_kv_free(&meta);
    /* report files: the groups, and every model's numbers */
    char *md = read_out(out, "report.md"), *js = read_out(out, "report.json"), *csv = read_out(out, "models.csv");
    char want[128];
    snprintf(want, sizeof want, "| lstm1 | 16 | %d |", res.groups[0].after);
    assert_non_null(strstr(md, want));
    assert_non_null(strstr(md, "| model | parameters | FLOPs/word | checkpoint bytes | latency B=1 (ms) | latency B=N (ms) | ppl |"));
    assert_non_null(strstr(js, "\"units_after\""));
    assert_non_null(strstr(js, "\"spectrum\": ["));
    assert_memory_equal(csv, "label,parameters,flops_per_word,", 32);
    for (int r = 0; r < 3; r++) {
        check_md_row(md, &res.rows[r]);
        check_json_row(js, &res.rows[r]);
    }
    lp_free(md), lp_free(js), lp_free(csv);
    lp_kv_free(&cfg);

    /* uniform + l2 at 0.25, no fine-tuning, the corpus given to the kind: 12 units per layer */
    const lp_task_kind given = lp_lm_task_kind(&corpus);
    char uni[600];
    snprintf(uni, sizeof uni, "%s/uniform", lp_test_scratch_dir());
    lm_opts(&o, &cfg, &given, ck, uni);
    o.prune.rates.rule = LP_RATE_RULE_UNIFORM;
    o.prune.rates.target_rate = 0.25;
    o.prune.criterion = LP_CRITERION_L2;
    o.finetune_epochs = 0;
    assert_int_equal(lp_pipeline_run(&o, &res), LP_OK);
    assert_int_equal(res.n_rows, 2);
    assert_true(res.groups[0].after == 12 && res.groups[1].after == 12);
    const double plain_ppl = lp_score_get(&res.rows[1].score, "ppl");
    /* the same with mean compensation: statistics gathered for it (the uniform rule needs none), the same
     * sizes, another perplexity, and the checkpoint and the report say so */
    snprintf(out, sizeof out, "%s/uniform_comp", lp_test_scratch_dir());
    o.out_dir = out;
    o.prune.compensate = 1;
    o.prune.stats_batches = 20;
    assert_int_equal(lp_pipeline_run(&o, &res), LP_OK);
    assert_true(res.groups[0].after == 12 && res.groups[1].after == 12);
    const double comp_ppl = lp_score_get(&res.rows[1].score, "ppl");
    fprintf(stderr, "uniform l2 0.25: test ppl %.3f, with mean compensation %.3f\n", plain_ppl, comp_ppl);
    assert_true(isfinite(comp_ppl) && comp_ppl != plain_ppl);
    snprintf(path, sizeof path, "%s/pruned.ckpt", out);
    lp_kv_init(&meta);
    assert_int_equal(lp_lm_load(&pm, path, &meta), LP_OK);
    assert_string_equal(lp_kv_get(&meta, "plan.compensate"), "mean");
    lp_lm_free(&pm);
    lp_kv_free(&meta);
    md = read_out(out, "report.md");
    assert_non_null(strstr(md, "mean responses of the removed units"));
    lp_free(md);
    lp_kv_free(&cfg);

    /* lm-prune is a front end over the same pipeline: its uniform l2 prune of the same checkpoint has the
     * same weights and the same test perplexity */
    char args[2400], log[700];
    snprintf(out, sizeof out, "%s/cli_uniform", lp_test_scratch_dir());
    snprintf(log, sizeof log, "%s/cli_uniform.log", lp_test_scratch_dir());
    snprintf(args, sizeof args, "lm-prune --checkpoint %s --out %s --rate-rule uniform --target-rate 0.25 --criterion l2 "
                                "--finetune-epochs 0 --quiet", ck, out);
    assert_int_equal(run_bin(args, log), 0);
    {
        same_pruned_weights(uni, out);
        js = read_out(out, "report.json");
        snprintf(want, sizeof want, "\"ppl\": %.6f", plain_ppl);
        assert_non_null(strstr(js, want));
        lp_free(js);
    }
    /* Per-group sizes (issue 25): the uniform prune's sizes given as --units, and as --rates by name, keep
     * the same units (same criterion), so the weights are the same. */
    {
        lp_ckpt u;
        snprintf(path, sizeof path, "%s/pruned.ckpt", uni);
        assert_int_equal(lp_ckpt_load(&u, path), LP_OK);
        char units[64];
        snprintf(units, sizeof units, "%s", lp_kv_get(&u.meta, "model.units"));
        assert_string_equal(lp_kv_get(&u.meta, "lm.units"), units); /* the run keys follow the pruned sizes */
        lp_ckpt_free(&u);
        snprintf(out, sizeof out, "%s/cli_units", lp_test_scratch_dir());
        snprintf(args, sizeof args, "lm-prune --checkpoint %s --out %s --units %s --criterion l2 --finetune-epochs 0 --quiet",
                 ck, out, units);
        assert_int_equal(run_bin(args, log), 0);
        same_pruned_weights(uni, out);
        snprintf(out, sizeof out, "%s/cli_rates", lp_test_scratch_dir());
        snprintf(args, sizeof args, "lm-prune --checkpoint %s --out %s --rates lstm1=0.25,lstm2=0.25 --criterion l2 "
                                    "--finetune-epochs 0 --quiet", ck, out);
        assert_int_equal(run_bin(args, log), 0);
        same_pruned_weights(uni, out);
        snprintf(args, sizeof args, "lm-prune --checkpoint %s --out %s/cli_bad --rates lstm3=0.25 --quiet", ck,
                 lp_test_scratch_dir());
        assert_int_equal(run_bin(args, log), 2);
    }

    /* ISS: a strong penalty for one epoch from the checkpoint (its batching; SGD at lr 0.5, no decay; the
     * subgradient and units zeroed below the threshold after every step, as lm-prune --iss-lambda trains)
     * removes exactly the units whose group norm ended below the threshold */
    snprintf(out, sizeof out, "%s/iss", lp_test_scratch_dir());
    lm_opts(&o, &cfg, &given, ck, out);
    const char *iss_keys[][2] = {{"iss.train.epochs", "1"}, {"iss.train.lr", "0.5"}, {"iss.train.lr_decay", "1"},
                                 {"iss.train.decay_after", "0"}, {"iss.train.test_every", "0"}};
    for (size_t i = 0; i < sizeof iss_keys / sizeof iss_keys[0]; i++)
        assert_int_equal(lp_kv_set(&cfg, iss_keys[i][0], iss_keys[i][1]), LP_OK);
    o.schedule = LP_SCHED_ISS;
    o.iss_method = LP_ISS_SUBGRADIENT;
    o.iss_lambda = 0.015;
    o.iss_threshold = 0.02;
    o.finetune_epochs = 0;
    s = lp_pipeline_run(&o, &res);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    fprintf(stderr, "iss pipeline: %d,%d -> %d,%d units\n", res.groups[0].before, res.groups[1].before,
            res.groups[0].after, res.groups[1].after);
    assert_int_equal(res.groups[0].before + res.groups[1].before, 32);
    assert_true(res.groups[0].after + res.groups[1].after < 32);
    assert_true(res.groups[0].after >= 1 && res.groups[1].after >= 1);
    snprintf(path, sizeof path, "%s/iss/last.ckpt", out);
    assert_string_equal(res.rows[0].label, "iss-trained");
    assert_string_equal(res.rows[0].ckpt, path);
    {
        /* the units at or above the threshold in the ISS-trained model (the largest one when none is: a
         * layer keeps a unit) are the pruned model's sizes; every other unit was zeroed after the last step,
         * so the smaller model gives the ISS model's per-word NLLs */
        lp_lm im;
        assert_int_equal(lp_lm_load(&im, path, NULL), LP_OK);
        lp_task *it = task_of(&im, &corpus);
        for (int l = 0; l < 2; l++) {
            double norms[16];
            int above = 0, zero = 0;
            assert_int_equal(lp_iss_norms(it, l, norms), LP_OK);
            for (int j = 0; j < 16; j++) above += norms[j] >= o.iss_threshold, zero += norms[j] == 0.0;
            const int keep = above ? above : 1;
            assert_int_equal(res.groups[l].after, keep);
            assert_int_equal(zero, 16 - keep);
        }
        snprintf(path, sizeof path, "%s/pruned.ckpt", out);
        lp_lm sm;
        assert_int_equal(lp_lm_load(&sm, path, NULL), LP_OK);
        assert_true(sm.cfg.hidden[0] == res.groups[0].after && sm.cfg.hidden[1] == res.groups[1].after);
        lp_task *st = task_of(&sm, &corpus);
        const size_t n = corpus.n[LP_PTB_VALID];
        size_t cnt;
        double *x = word_nll(it, corpus.ids[LP_PTB_VALID], n, &cnt), *y = word_nll(st, corpus.ids[LP_PTB_VALID], n, &cnt);
        double worst = 0;
        for (size_t i = 0; i < cnt; i++) worst = fmax(worst, fabs(x[i] - y[i]));
        assert_true(worst <= NLL_TOL); /* tolerance: see NLL_TOL */
        lp_free(x), lp_free(y);
        lp_task_free(st);
        lp_task_free(it);
    }
    /* the "iss." keys set the ISS run's training; the rest is the baseline's */
    lp_kv_init(&rc);
    snprintf(path, sizeof path, "%s/iss/config.txt", out);
    assert_int_equal(lp_kv_read_file(&rc, path), LP_OK);
    assert_true(lp_kv_get_int_or(&rc, "train.epochs", 0) == 1 && lp_kv_get_double_or(&rc, "train.lr", 0) == 0.5);
    assert_true(lp_kv_get_double_or(&rc, "train.lr_decay", 0) == 1 && lp_kv_get_int_or(&rc, "train.batch", 0) == 4);
    lp_kv_free(&rc);
    md = read_out(out, "report.md");
    assert_non_null(strstr(md, "iss group lasso"));
    lp_free(md);
    /* bad jobs: compensation does not apply to ISS (its removed units are zero already) */
    o.prune.compensate = 1;
    assert_int_equal(lp_pipeline_run(&o, &res), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "oneshot and iterative"));
    lp_kv_free(&cfg);
    lp_ptb_corpus_free(&corpus);
}

/* ---- sensitivity (one layer at a time): experiments/sensitivity.h on an LM checkpoint ---- */

/* A small LM (2 layers of 16) trained for 8 epochs (SGD, momentum 0.5) on the scratch corpus into
 * scratch/<name>, so that it has learned the chain and pruning costs something; returns best.ckpt's path
 * (static buffer). tied: the softmax tied to the embedding. */
static const char *small_lm(const char *name, int tied) {
    static char ck[700];
    char run[600];
    snprintf(run, sizeof run, "%s/%s", lp_test_scratch_dir(), name);
    snprintf(ck, sizeof ck, "%s/best.ckpt", run);
    if (access(ck, F_OK) == 0) return ck;
    lp_kv cfg;
    lp_kv_init(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "data.dir", lp_test_scratch_dir()), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "lm.units", "16"), LP_OK);
    if (tied) assert_int_equal(lp_kv_set(&cfg, "lm.tied", "1"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.epochs", "8"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.decay_after", "8"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.momentum", "0.5"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.batch", "4"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.bptt", "10"), LP_OK);
    const lp_task_kind kind = lp_lm_task_kind(NULL);
    lp_train_opts ro = {.run_dir = run, .quiet = 1};
    lp_train_result rr;
    assert_int_equal(lp_train(&kind, &cfg, &ro, &rr), LP_OK);
    assert_true(lp_score_get(&rr.best, "ppl") < 15); /* learned: 30 words, uniform guessing is 30 */
    lp_kv_free(&cfg);
    return ck;
}

static double masked_valid_ppl(const char *ck, const lp_ptb_corpus *c, int layer, const int *kept, int k) {
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, ck, NULL), LP_OK);
    lp_task *t = task_of(&m, c);
    int *lists[LP_LM_MAX_LAYERS], n[LP_LM_MAX_LAYERS], all[LP_LM_MAX_LAYERS][64];
    for (int l = 0; l < t->n_groups; l++) {
        for (int j = 0; j < t->groups[l].units; j++) all[l][j] = j;
        lists[l] = l == layer ? (int *)kept : all[l];
        n[l] = l == layer ? k : t->groups[l].units;
    }
    lp_prune_plan p;
    assert_int_equal(lp_prune_plan_from_kept(t, lists, n, &p), LP_OK);
    assert_int_equal(lp_surgery_mask(t, &p), LP_OK);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(lm_of(t), c->ids[LP_PTB_VALID], c->n[LP_PTB_VALID], 20, 35, NULL, &ev), LP_OK);
    lp_prune_plan_free(&p);
    lp_task_free(t);
    return ev.ppl;
}

static double ppl_of(const lp_score *s) { return lp_score_get(s, "ppl"); }

/* Every point is the validation perplexity of the model with that layer's worst-scored units masked
 * (masked == shrunk), the kept sets are nested, the suggestion follows the rule with the relative rise as
 * the cost, the files hold the table, a rerun and lm-sensitivity write the same numbers, compensation
 * changes them, a tied last layer is listed and marked but never tried, and bad options are refused. */
static void test_sensitivity(void **state) {
    (void)state;
    const char *ck = small_lm("sens_base", 0);
    char ckpt[700], out[600], out2[600];
    snprintf(ckpt, sizeof ckpt, "%s", ck);
    lp_ptb_corpus corpus;
    assert_int_equal(lp_ptb_corpus_load(&corpus, lp_test_scratch_dir(), 0), LP_OK);
    /* lm-sensitivity's evaluation: 20 streams, windows of 35, one thread */
    lp_kv cfg;
    lp_kv_init(&cfg);
    assert_int_equal(lp_kv_set(&cfg, "train.eval_batch", "20"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.eval_bptt", "35"), LP_OK);
    assert_int_equal(lp_kv_set(&cfg, "train.threads", "1"), LP_OK);
    lp_sensitivity_opts o;
    lp_sensitivity_opts_default(&o);
    o.ckpt = ckpt;
    o.cfg = &cfg;
    snprintf(out, sizeof out, "%s/sens", lp_test_scratch_dir());
    o.out_dir = out;
    o.quiet = 1;
    o.n_rates = 3;
    o.rates[0] = 0.5, o.rates[1] = 0.25, o.rates[2] = 0.75; /* any order */
    /* the cost for the LM is the relative perplexity rise; the rises here are ~0.3 at rate 0.25 and ~0.8 at
     * 0.5 for both layers, so 0.5 suggests 0.25 (an absolute rise, ~2.6 perplexity points, would suggest 0; a
     * drop, negative, 0.75) */
    o.max_cost = 0.5;
    lp_sensitivity_result *r = lp_calloc(1, sizeof *r);
    assert_non_null(r);
    lp_status s = lp_sensitivity_run(&o, r);
    if (s != LP_OK) fprintf(stderr, "%s\n", lp_last_error());
    assert_int_equal(s, LP_OK);
    assert_int_equal(r->n_groups, 2);
    assert_true(r->rates[0] == 0.25 && r->rates[1] == 0.5 && r->rates[2] == 0.75);

    /* the same ranking lm-prune uses: gm scores on the unpruned weights */
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, ckpt, NULL), LP_OK);
    lp_task *t = task_of(&m, &corpus);
    lp_prune_opts po;
    lp_prune_opts_default(&po);
    po.rates.rule = LP_RATE_RULE_UNIFORM;
    po.rates.target_rate = 0;
    lp_prune_plan scored;
    assert_int_equal(lp_prune_plan_make(t, NULL, &po, &scored), LP_OK);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(lm_of(t), corpus.ids[LP_PTB_VALID], corpus.n[LP_PTB_VALID], 20, 35, NULL, &ev), LP_OK);
    assert_true(ppl_of(&r->base) == ev.ppl && !r->base.higher_better);
    assert_int_equal(r->base.examples, (int64_t)ev.targets);
    /* the task's score is that evaluation (20 streams, windows of 35): the same sums, the same number */
    lp_score sc;
    assert_int_equal(lp_task_score(t, LP_SPLIT_VALID, &sc), LP_OK);
    assert_true(lp_score_get(&sc, "ppl") == ev.ppl && lp_score_primary(&sc) == ev.ppl && !sc.higher_better);
    const int expect_k[3] = {12, 8, 4};
    for (int l = 0; l < 2; l++) {
        assert_true(!r->fixed[l] && r->units[l] == 16);
        int prev[16], prev_k = 16;
        for (int j = 0; j < 16; j++) prev[j] = j;
        double rise[3];
        for (int i = 0; i < 3; i++) {
            const int k = expect_k[i];
            assert_int_equal(r->kept[l][i], k);
            int kept[16];
            assert_int_equal(lp_criteria_select(scored.g[l].score, 16, k, kept), LP_OK);
            for (int a = 0; a < k; a++) { /* nested: every unit kept at this rate was kept at the smaller one */
                int found = 0;
                for (int b = 0; b < prev_k; b++) found |= prev[b] == kept[a];
                assert_true(found);
            }
            memcpy(prev, kept, sizeof kept);
            prev_k = k;
            const double masked = masked_valid_ppl(ckpt, &corpus, l, kept, k);
            assert_true(fabs(ppl_of(&r->score[l][i]) - masked) <= 1e-5 * masked); /* float sums in another order */
            rise[i] = ppl_of(&r->score[l][i]) / ppl_of(&r->base) - 1;
        }
        assert_true(r->suggested[l] == lp_sensitivity_suggest(r->rates, rise, 3, o.max_cost));
        assert_true(r->suggested[l] == 0.25);
    }
    fprintf(stderr, "lm sensitivity: base %.3f; lstm1 %.3f %.3f %.3f; lstm2 %.3f %.3f %.3f; suggested %.2f %.2f\n",
            ppl_of(&r->base), ppl_of(&r->score[0][0]), ppl_of(&r->score[0][1]), ppl_of(&r->score[0][2]),
            ppl_of(&r->score[1][0]), ppl_of(&r->score[1][1]), ppl_of(&r->score[1][2]), r->suggested[0], r->suggested[1]);
    lp_prune_plan_free(&scored);
    lp_task_free(t);

    /* files */
    char *csv = read_out(out, "sensitivity.csv");
    assert_memory_equal(csv, "group,units,rate,kept,ppl,ppl_rise\n", 35);
    char row[128];
    snprintf(row, sizeof row, "\nlstm2,16,0.5000,8,%.6f,%.6f\n", ppl_of(&r->score[1][1]),
             ppl_of(&r->score[1][1]) / ppl_of(&r->base) - 1);
    assert_non_null(strstr(csv, row));
    snprintf(row, sizeof row, "\nlstm1,16,0.0000,16,%.6f,0.000000\n", ppl_of(&r->base));
    assert_non_null(strstr(csv, row));
    char *sug = read_out(out, "suggested.txt");
    char line[64];
    int k0, k1;
    assert_int_equal(lp_sensitivity_keep_count(16, r->suggested[0], &k0), LP_OK);
    assert_int_equal(lp_sensitivity_keep_count(16, r->suggested[1], &k1), LP_OK);
    snprintf(line, sizeof line, "lm.units = %d,%d\n", k0, k1);
    assert_non_null(strstr(sug, line));
    char *md = read_out(out, "sensitivity.md");
    snprintf(line, sizeof line, "| lstm1 | 16 | %.4f |", ppl_of(&r->score[0][0]));
    assert_non_null(strstr(md, line));
    lp_free(sug);
    lp_free(md);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) assert_int_equal(r->plot, 1);

    /* a rerun gives the same table, and so does lm-sensitivity with the same settings (a front end over
     * the same analysis); compensation gives another one, and says so */
    snprintf(out2, sizeof out2, "%s/sens_again", lp_test_scratch_dir());
    o.out_dir = out2;
    assert_int_equal(lp_sensitivity_run(&o, NULL), LP_OK);
    char *csv2 = read_out(out2, "sensitivity.csv");
    assert_string_equal(csv, csv2);
    lp_free(csv2);
    char args[2400], log[700], cli_out[600];
    snprintf(cli_out, sizeof cli_out, "%s/sens_cli", lp_test_scratch_dir());
    snprintf(log, sizeof log, "%s/sens_cli.log", lp_test_scratch_dir());
    snprintf(args, sizeof args, "lm-sensitivity --checkpoint %s --out %s --rates 0.5,0.25,0.75 --max-rise 0.5 --quiet",
             ckpt, cli_out);
    assert_int_equal(run_bin(args, log), 0);
    csv2 = read_out(cli_out, "sensitivity.csv");
    assert_string_equal(csv, csv2);
    lp_free(csv2);
    sug = read_out(cli_out, "suggested.txt");
    snprintf(line, sizeof line, "lm.units = %d,%d\n", k0, k1);
    assert_non_null(strstr(sug, line));
    lp_free(sug);
    const double plain = ppl_of(&r->score[0][2]);
    o.compensate = 1;
    o.stats_batches = 20;
    assert_int_equal(lp_sensitivity_run(&o, r), LP_OK);
    assert_true(isfinite(ppl_of(&r->score[0][2])) && ppl_of(&r->score[0][2]) != plain);
    md = read_out(out2, "sensitivity.md");
    assert_non_null(strstr(md, "mean compensation"));
    lp_free(md);
    lp_free(csv);
    o.compensate = 0;

    /* tied: the last layer is listed and marked kept whole, never tried */
    snprintf(ckpt, sizeof ckpt, "%s", small_lm("sens_tied", 1));
    assert_int_equal(lp_sensitivity_run(&o, r), LP_OK);
    assert_true(!r->fixed[0] && r->fixed[1]);
    assert_true(isfinite(ppl_of(&r->score[0][0])) && r->score[1][0].n == 0 && isnan(ppl_of(&r->score[1][0])));
    assert_true(r->suggested[1] == 0);
    csv = read_out(out2, "sensitivity.csv");
    assert_null(strstr(csv, "lstm2,16,0.2500"));
    assert_non_null(strstr(csv, "lstm2,16,0.0000,16,"));
    lp_free(csv);
    md = read_out(out2, "sensitivity.md");
    assert_non_null(strstr(md, "| lstm2 | 16 | — | — | — | kept whole |"));
    lp_free(md);
    sug = read_out(out2, "suggested.txt");
    assert_non_null(strstr(sug, "lstm2 = 0.0000  # kept whole: never pruned\n"));
    assert_int_equal(lp_sensitivity_keep_count(16, r->suggested[0], &k0), LP_OK);
    snprintf(line, sizeof line, "lm.units = %d,16\n", k0);
    assert_non_null(strstr(sug, line));
    lp_free(sug);

    /* bad options */
    o.rates[1] = 1.0;
    assert_int_equal(lp_sensitivity_run(&o, r), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "rate 1 is not in (0, 1)"));
    o.rates[1] = 0.5;
    o.max_cost = -1;
    assert_int_equal(lp_sensitivity_run(&o, r), LP_ERR_ARG);
    lp_free(r);
    lp_kv_free(&cfg);
    lp_ptb_corpus_free(&corpus);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masked_equals_shrunk_tied),
        cmocka_unit_test(test_compensate_constant_units_tied),
        cmocka_unit_test(test_gather_maps_and_errors),
        cmocka_unit_test(test_stats_and_plans),
        cmocka_unit_test(test_iss_penalty_gradient),
        cmocka_unit_test(test_iss_drives_groups_to_zero),
        cmocka_unit_test(test_pipeline_end_to_end),
        cmocka_unit_test(test_sensitivity),
    };
    return cmocka_run_group_tests(tests, setup_dir, lp_test_scratch_teardown);
}
