/* test_lm_prune: pruning the word-level LM (lm/lm_prune.h) — a shrunk LM gives the same per-word
 * log-likelihoods as the masked one (untied, 3 layers, and tied), the shrink's index maps and parameter
 * count, statistics and plans (eigen target rate, uniform, l2 selection checked independently, tied last
 * layer left whole), the ISS penalty gradient against central differences, ISS driving unit groups to
 * zero on a tiny model (and the removal of exactly those units), and the whole job end to end on a tiny
 * corpus (eigen+gm, uniform+l2, ISS). */
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
#include "core/fileio.h"
#include "core/kv.h"
#include "core/rng.h"
#include "core/tape.h"
#include "lm/lm.h"
#include "lm/lm_prune.h"
#include "lm/lm_sensitivity.h"
#include "lm/lm_train.h"
#include "lm/ptb.h"
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
static double *word_nll(lp_lm *m, const int32_t *ids, size_t n, size_t *count) {
    *count = (size_t)EV_B * (n / EV_B - 1);
    double *nll = lp_malloc(*count, sizeof *nll);
    assert_non_null(nll);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(m, ids, n, EV_B, EV_T, nll, &ev), LP_OK);
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

/* masked == shrunk for the given model and kept counts (kept lists drawn at random). Returns the largest
 * |masked − shrunk| per-word NLL difference; also checks that pruning changed the NLLs. */
static double check_masked_equals_shrunk(lp_lm *m, const int *k, uint64_t seed) {
    const int L = m->cfg.layers;
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_TEST);
    int *kept[LP_LM_MAX_LAYERS];
    for (int l = 0; l < L; l++) {
        kept[l] = lp_malloc((size_t)k[l], sizeof(int));
        if (k[l] == m->cfg.hidden[l])
            for (int j = 0; j < k[l]; j++) kept[l][j] = j;
        else random_kept(m->cfg.hidden[l], k[l], &r, kept[l]);
    }
    lp_lm_prune_plan p;
    assert_int_equal(lp_lm_prune_plan_from_kept(m, kept, k, &p), LP_OK);
    const size_t n = 200;
    int32_t *ids = random_ids(n, m->cfg.vocab, seed + 1);
    size_t cnt;
    double *base = word_nll(m, ids, n, &cnt);
    lp_lm small;
    assert_int_equal(lp_lm_prune_shrink(m, &p, &small), LP_OK);
    for (int l = 0; l < L; l++) assert_int_equal(small.cfg.hidden[l], k[l]);
    assert_int_equal(lp_lm_numel(&small), hand_numel(&small.cfg));
    assert_true(lp_lm_numel(&small) < lp_lm_numel(m));
    assert_int_equal(lp_lm_prune_mask(m, &p), LP_OK);
    double *masked = word_nll(m, ids, n, &cnt);
    double *shrunk = word_nll(&small, ids, n, &cnt);
    double worst = 0, changed = 0;
    for (size_t i = 0; i < cnt; i++) {
        worst = fmax(worst, fabs(masked[i] - shrunk[i]));
        changed = fmax(changed, fabs(masked[i] - base[i]));
    }
    /* the removed units mattered: a surgery that kept the wrong units could not pass by accident */
    assert_true(changed > 1e-3);
    lp_free(base);
    lp_free(masked);
    lp_free(shrunk);
    lp_free(ids);
    lp_lm_free(&small);
    lp_lm_prune_plan_free(&p);
    for (int l = 0; l < L; l++) lp_free(kept[l]);
    return worst;
}

/* Tolerance of masked vs shrunk per-word NLLs: both models compute the same real-valued function (the
 * removed units are exact zeros in the masked one), only the order of float32 sums in the GEMMs differs
 * (a few ulps of values ~1-10); NLLs are ~ln V ≈ 4, so 1e-5 absolute is ~25 float32 ulps, while a wrong
 * row or column moves NLLs by > 1e-3 here. */
#define NLL_TOL 1e-5

static void test_masked_equals_shrunk_untied(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 40, 3, 10);
    c.embed = 9;
    c.hidden[1] = 8;
    c.hidden[2] = 7;
    c.init_scale = 0.5f; /* large weights: units matter, so removing them shows */
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &c, 21), LP_OK);
    const int k[3] = {6, 5, 4};
    double worst = check_masked_equals_shrunk(&m, k, 22);
    fprintf(stderr, "untied 3 layers: max |masked - shrunk| per-word NLL = %.3g\n", worst);
    assert_true(worst <= NLL_TOL);
    lp_lm_free(&m);
}

static void test_masked_equals_shrunk_tied(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 40, 2, 10);
    c.embed = 9;
    c.hidden[1] = 9;
    c.tied = 1;
    c.init_scale = 0.5f;
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &c, 31), LP_OK);
    const int k[2] = {5, 9};
    double worst = check_masked_equals_shrunk(&m, k, 32);
    fprintf(stderr, "tied: max |masked - shrunk| per-word NLL = %.3g\n", worst);
    assert_true(worst <= NLL_TOL);
    /* the tied last layer cannot lose units: refused, naming the reason */
    int all[10], some[4] = {0, 1, 2, 3};
    for (int j = 0; j < 10; j++) all[j] = j;
    int *kept[2] = {all, some};
    int nk[2] = {10, 4};
    lp_lm_prune_plan p;
    assert_int_equal(lp_lm_prune_plan_from_kept(&m, kept, nk, &p), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "tied"));
    lp_lm_free(&m);
}

/* Mean compensation on the LM: units made to respond the same at every step (input and recurrent rows
 * zero, forget gate shut, nothing of their layer reads them back) are removed with their means (from
 * lp_lm_prune_stats) folded into the biases that read them: the smaller LM gives the unpruned per-word
 * NLLs; without compensation it does not. Untied (both layers pruned; the last feeds out.w / out.b) and
 * tied (the last layer is kept whole and needs no bias of embed.w). */
static void check_compensated_constant_units(int tied) {
    lp_lm_config c;
    lp_lm_config_default(&c, 40, 2, 10);
    c.embed = 9;
    c.hidden[1] = 9;
    c.tied = tied;
    c.init_scale = 0.5f;
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &c, 41), LP_OK);
    int k[2] = {5, tied ? 9 : 4}, kept0[10], kept1[10];
    int *kept[2] = {kept0, kept1};
    for (int l = 0; l < 2; l++) {
        const lp_unit_group *g = &m.groups[l];
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
    const size_t n = 200;
    int32_t *ids = random_ids(n, c.vocab, 42);
    lp_stats st[2];
    assert_int_equal(lp_lm_prune_stats(&m, ids, n, 3, 7, 0, st), LP_OK);
    lp_lm_prune_plan p;
    assert_int_equal(lp_lm_prune_plan_from_kept(&m, kept, k, &p), LP_OK);
    for (int l = 0; l < 2; l++) {
        const size_t H = (size_t)m.groups[l].units; /* 10 and 9 */
        double *cov = lp_malloc(H * H, sizeof(double));
        p.g[l].mean = lp_malloc(H, sizeof(double));
        assert_int_equal(lp_stats_finish(&st[l], p.g[l].mean, cov), LP_OK);
        lp_free(cov);
        lp_stats_free(&st[l]);
    }
    size_t cnt;
    double *base = word_nll(&m, ids, n, &cnt);
    lp_lm plain, comp;
    assert_int_equal(lp_lm_prune_shrink(&m, &p, &plain), LP_OK);
    p.opts.compensate = 1;
    assert_int_equal(lp_lm_prune_shrink(&m, &p, &comp), LP_OK);
    double *a = word_nll(&plain, ids, n, &cnt), *b = word_nll(&comp, ids, n, &cnt);
    double worst = 0, moved = 0;
    for (size_t i = 0; i < cnt; i++) {
        worst = fmax(worst, fabs(b[i] - base[i]));
        moved = fmax(moved, fabs(a[i] - base[i]));
    }
    fprintf(stderr, "%s: compensated |NLL - unpruned| <= %.3g, uncompensated up to %.3g\n", tied ? "tied" : "untied",
            worst, moved);
    assert_true(worst <= NLL_TOL);
    assert_true(moved > 1e-3);
    lp_free(a), lp_free(b), lp_free(base), lp_free(ids);
    lp_lm_free(&plain), lp_lm_free(&comp), lp_lm_free(&m);
    lp_lm_prune_plan_free(&p);
}

static void test_compensate_constant_units(void **state) {
    (void)state;
    check_compensated_constant_units(0);
    check_compensated_constant_units(1);
}

static void test_gather_maps_and_errors(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 13, 2, 6);
    c.embed = 4;
    c.hidden[1] = 5;
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &c, 41), LP_OK);
    int k1[3] = {1, 3, 4}, k2[2] = {0, 4};
    int *kept[2] = {k1, k2};
    int nk[2] = {3, 2};
    lp_lm_prune_plan p;
    assert_int_equal(lp_lm_prune_plan_from_kept(&m, kept, nk, &p), LP_OK);
    assert_true(fabs(p.rates.mean_rate - (0.5 + 0.6) / 2) < 1e-12);
    lp_lm s;
    assert_int_equal(lp_lm_prune_shrink(&m, &p, &s), LP_OK);
    /* gather of the index array: every target element names the source element it came from */
    float *src = lp_malloc(m.params.numel, sizeof *src), *dst = lp_malloc(s.params.numel, sizeof *dst);
    for (size_t i = 0; i < m.params.numel; i++) src[i] = (float)i; /* exact: numel < 2^24 */
    assert_int_equal(lp_lm_prune_gather(&m, &p, &s, src, dst), LP_OK);
    const size_t o_in = (size_t)(m.groups[0].w_hh->data - m.params.data), o_out = (size_t)(s.groups[0].w_hh->data - s.params.data);
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < 3; u++)
            for (int v = 0; v < 3; v++) {
                /* lstm1.w_hh [4H,H]: new (q*3+u, v) = old (q*6 + k1[u], k1[v]) */
                size_t want = o_in + (size_t)(q * 6 + k1[u]) * 6 + (size_t)k1[v];
                assert_true(dst[o_out + (size_t)(q * 3 + u) * 3 + (size_t)v] == (float)want);
            }
    /* lstm2.w_ih [4*5, 6] -> [4*2, 3]: rows by layer 2's kept, columns by layer 1's kept */
    const size_t i2 = (size_t)(m.groups[1].w_ih->data - m.params.data), o2 = (size_t)(s.groups[1].w_ih->data - s.params.data);
    for (int q = 0; q < 4; q++)
        for (int u = 0; u < 2; u++)
            for (int v = 0; v < 3; v++)
                assert_true(dst[o2 + (size_t)(q * 2 + u) * 3 + (size_t)v] == (float)(i2 + (size_t)(q * 5 + k2[u]) * 6 + (size_t)k1[v]));
    /* out.w [V,5] -> [V,2] */
    const size_t iw = (size_t)(m.out_w->data - m.params.data), ow = (size_t)(s.out_w->data - s.params.data);
    for (int r = 0; r < 13; r++)
        for (int u = 0; u < 2; u++) assert_true(dst[ow + (size_t)r * 2 + (size_t)u] == (float)(iw + (size_t)r * 5 + (size_t)k2[u]));
    /* the values are gathered the same way */
    assert_int_equal(lp_lm_prune_gather(&m, &p, &s, m.params.data, dst), LP_OK);
    assert_memory_equal(dst, s.params.data, s.params.numel * sizeof(float));
    /* a target not built with this plan is refused */
    lp_lm other;
    assert_int_equal(lp_lm_init(&other, &c, 1), LP_OK);
    assert_int_not_equal(lp_lm_prune_gather(&m, &p, &other, src, dst), LP_OK);
    lp_lm_free(&other);
    /* bad kept lists */
    int bad1[3] = {3, 1, 4};
    kept[0] = bad1;
    lp_lm_prune_plan q;
    assert_int_equal(lp_lm_prune_plan_from_kept(&m, kept, nk, &q), LP_ERR_ARG);
    nk[0] = 0;
    assert_int_equal(lp_lm_prune_plan_from_kept(&m, kept, nk, &q), LP_ERR_ARG);
    lp_free(src);
    lp_free(dst);
    lp_lm_free(&s);
    lp_lm_prune_plan_free(&p);
    lp_lm_free(&m);
}

/* ---- statistics and plans ---- */

static void test_stats_and_plans(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 30, 2, 12);
    c.hidden[1] = 10;
    c.init_scale = 0.4f;
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &c, 51), LP_OK);
    const size_t n = 600;
    int32_t *ids = random_ids(n, 30, 52);
    lp_stats st[2];
    enum { B = 4, T = 9, W = 5 };
    assert_int_equal(lp_lm_prune_stats(&m, ids, n, B, T, W, st), LP_OK);
    assert_int_equal(lp_stats_count(&st[0]), W * B * T);
    assert_int_equal(lp_stats_count(&st[1]), W * B * T);
    /* the mean of layer 2's h, computed independently over the same windows (state carried) */
    {
        double mean[10] = {0}, got[10];
        lp_lm_state s;
        assert_int_equal(lp_lm_state_init(&s, &m, B), LP_OK);
        lp_tape tp;
        assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
        lp_tape_set_grad(&tp, 0);
        lp_ptb_batcher bt;
        assert_int_equal(lp_ptb_batcher_init(&bt, ids, n, B, T, 1), LP_OK);
        int32_t x[B * T], y[B * T];
        for (int w = 0; w < W; w++) {
            lp_tape_reset(&tp);
            int t = lp_ptb_batcher_window(&bt, w, x, y);
            lp_lm_out o;
            assert_int_equal(lp_lm_forward(&m, &tp, x, NULL, B, t, &s, NULL, &o), LP_OK);
            for (int i = 0; i < B * t; i++)
                for (int j = 0; j < 10; j++) mean[j] += o.group_h[1]->data[i * 10 + j] / (double)(W * B * T);
        }
        assert_int_equal(lp_stats_finish(&st[1], got, NULL), LP_OK);
        /* double sums of the same float values in another order: 1e-12 */
        for (int j = 0; j < 10; j++) assert_true(fabs(got[j] - mean[j]) < 1e-12);
        lp_tape_free(&tp);
        lp_lm_state_free(&s);
    }
    /* eigen rule with a target mean rate of 0.5: reached up to one unit of the smaller layer */
    lp_lm_prune_opts o;
    lp_lm_prune_opts_default(&o);
    o.rates.target_rate = 0.5;
    lp_lm_prune_plan p;
    assert_int_equal(lp_lm_prune_plan_make(&m, st, &o, &p), LP_OK);
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
    lp_lm_prune_plan_free(&p);
    /* the τ rule: the kept energy covers τ with the fewest units */
    o.rates.target_rate = -1;
    o.rates.tau = 0.8;
    assert_int_equal(lp_lm_prune_plan_make(&m, st, &o, &p), LP_OK);
    for (int l = 0; l < 2; l++) {
        double total = 0, before = 0;
        for (int j = 0; j < p.g[l].h; j++) total += p.g[l].eig[j];
        for (int j = 0; j < p.g[l].k - 1; j++) before += p.g[l].eig[j];
        assert_true(before < 0.8 * total && before + p.g[l].eig[p.g[l].k - 1] >= 0.8 * total * (1 - 1e-12));
    }
    lp_lm_prune_plan_free(&p);
    /* uniform + l2 without statistics: k = H - round(r H); kept = the largest unit-vector norms */
    o.rates.rule = LP_RATE_RULE_UNIFORM;
    o.rates.target_rate = 0.25;
    o.criterion = LP_CRITERION_L2;
    assert_int_equal(lp_lm_prune_plan_make(&m, NULL, &o, &p), LP_OK);
    assert_int_equal(p.g[0].k, 12 - 3);
    assert_int_equal(p.g[1].k, 10 - 3); /* round(2.5) = 3 */
    for (int l = 0; l < 2; l++) {
        const int H = p.g[l].h, F = m.groups[l].input_dim;
        double norm[12];
        for (int j = 0; j < H; j++) {
            double ss = 0;
            for (int q = 0; q < 4; q++) {
                for (int f = 0; f < F; f++) ss += pow(m.groups[l].w_ih->data[(size_t)(q * H + j) * F + f], 2);
                for (int h = 0; h < H; h++) ss += pow(m.groups[l].w_hh->data[(size_t)(q * H + j) * H + h], 2);
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
    lp_lm_prune_plan_free(&p);
    /* the eigen rule needs statistics */
    o.rates.rule = LP_RATE_RULE_EIGEN;
    assert_int_equal(lp_lm_prune_plan_make(&m, NULL, &o, &p), LP_ERR_ARG);
    for (int l = 0; l < 2; l++) lp_stats_free(&st[l]);
    lp_lm_free(&m);

    /* tied: the last layer is kept whole and said so; a single tied layer cannot be pruned */
    lp_lm_config_default(&c, 30, 2, 8);
    c.tied = 1;
    assert_int_equal(lp_lm_init(&m, &c, 53), LP_OK);
    assert_int_equal(lp_lm_prune_stats(&m, ids, n, B, T, W, st), LP_OK);
    lp_lm_prune_opts_default(&o);
    o.rates.target_rate = 0.5;
    assert_int_equal(lp_lm_prune_plan_make(&m, st, &o, &p), LP_OK);
    assert_int_equal(p.g[1].prunable, 0);
    assert_int_equal(p.g[1].k, 8);
    assert_int_equal(p.g[0].k, 4); /* the whole target falls on the one prunable layer */
    assert_non_null(strstr(p.note, "lstm2"));
    lp_lm_prune_plan_free(&p);
    for (int l = 0; l < 2; l++) lp_stats_free(&st[l]);
    lp_lm_free(&m);
    lp_lm_config_default(&c, 30, 1, 8);
    c.tied = 1;
    assert_int_equal(lp_lm_init(&m, &c, 54), LP_OK);
    o.rates.rule = LP_RATE_RULE_UNIFORM;
    assert_int_equal(lp_lm_prune_plan_make(&m, NULL, &o, &p), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "tied"));
    lp_lm_free(&m);
    lp_free(ids);
}

/* ---- ISS ---- */

static double penalty_of(lp_lm *m, double lambda) {
    double pen;
    lp_params_zero_grad(&m->params);
    assert_int_equal(lp_lm_iss_penalty(m, lambda, &pen), LP_OK);
    return pen;
}

static void test_iss_penalty_gradient(void **state) {
    (void)state;
    lp_lm_config c;
    lp_lm_config_default(&c, 11, 2, 5);
    c.embed = 4;
    c.hidden[1] = 4;
    c.tied = 1; /* the last layer is left out of the penalty */
    c.init_scale = 0.5f;
    lp_lm m;
    assert_int_equal(lp_lm_init(&m, &c, 61), LP_OK);
    const double lambda = 0.7;
    double pen = penalty_of(&m, lambda);
    /* Ω = λ Σ_j ||footprint_j|| of layer 1 only */
    double norms[5], sum = 0;
    assert_int_equal(lp_lm_iss_norms(&m, 0, norms), LP_OK);
    for (int j = 0; j < 5; j++) sum += norms[j];
    assert_true(fabs(pen - lambda * sum) <= 1e-12 * pen);
    /* the norms (computed in row-major passes) against the footprint of prune/surgery.h, element by element
     * (both double sums of the same squares, in another order: 1e-12 relative) */
    {
        lp_unit_group groups[2];
        lp_lm_prune_groups(&m, groups);
        lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
        for (int l = 0; l < 2; l++) {
            double nl[5];
            assert_int_equal(lp_lm_iss_norms(&m, l, nl), LP_OK);
            for (int j = 0; j < m.cfg.hidden[l]; j++) {
                const int ns = lp_surgery_footprint(&groups[l], j, segs);
                double ssq = 0;
                size_t cnt = 0;
                for (int q = 0; q < ns; q++)
                    for (int k = 0; k < segs[q].n; k++, cnt++) ssq += pow(segs[q].t->data[segs[q].start + (size_t)k * segs[q].stride], 2);
                assert_int_equal(cnt, lp_surgery_footprint_numel(&groups[l]));
                assert_true(fabs(nl[j] - sqrt(ssq)) <= 1e-12 * sqrt(ssq));
            }
        }
    }
    float *grad = lp_malloc(m.params.numel, sizeof *grad);
    memcpy(grad, m.params.grad, m.params.numel * sizeof *grad);
    /* central differences of Ω over every parameter (float32 steps of 1e-2; Ω in double): the error is
     * O(h²·curvature) ≈ 1e-4·λ/||w|| ≈ 1e-4, far below the gradient entries (~λ·|w|/||w|| ≈ 0.1) */
    double worst = 0;
    int nonzero = 0;
    for (size_t i = 0; i < m.params.numel; i++) {
        const float w0 = m.params.data[i];
        m.params.data[i] = w0 + 1e-2f;
        const float wp = m.params.data[i];
        double fp = penalty_of(&m, lambda);
        m.params.data[i] = w0 - 1e-2f;
        const float wm = m.params.data[i];
        double fm = penalty_of(&m, lambda);
        m.params.data[i] = w0;
        double num = (fp - fm) / ((double)wp - (double)wm);
        worst = fmax(worst, fabs(num - grad[i]));
        nonzero += grad[i] != 0;
    }
    fprintf(stderr, "iss penalty: worst |analytic - central difference| = %.3g over %zu parameters (%d non-zero)\n",
            worst, m.params.numel, nonzero);
    assert_true(worst < 1e-3);
    /* layer 1's footprints: its rows, w_hh, bias, and lstm2.w_ih's columns; nothing of the tied layer 2's
     * rows, of the embedding or of out.b */
    const size_t fp1 = 4 * 5 * 4 + 4 * 5 * 5 + 4 * 5 + 4 * 4 * 5;
    assert_int_equal(nonzero, (int)fp1);
    for (size_t i = 0; i < (size_t)(11 * 4); i++) assert_true(grad[i] == 0.0f);
    /* λ = 0: nothing; bad λ refused */
    assert_true(penalty_of(&m, 0) == 0);
    double p;
    assert_int_equal(lp_lm_iss_penalty(&m, -1, &p), LP_ERR_ARG);
    assert_int_equal(lp_lm_iss_penalty(&m, NAN, &p), LP_ERR_ARG);
    m.groups[0].w_hh->data[3] = NAN;
    assert_int_equal(lp_lm_iss_penalty(&m, 1, &p), LP_ERR_NUMERIC);
    lp_free(grad);
    lp_lm_free(&m);
}

/* Train a tiny LM on the Markov text with the ISS hooks; returns the units at exactly zero. */
static int iss_train(lp_lm *m, const int32_t *ids, size_t n, double lambda, double threshold, int epochs) {
    lp_optim opt;
    lp_optim_config oc = lp_optim_defaults(LP_OPTIM_SGD);
    assert_int_equal(lp_optim_init(&opt, m->params.numel, &oc), LP_OK);
    lp_lm_iss_state iss = {.lambda = lambda, .zero_threshold = threshold};
    lp_lm_train_opts to;
    lp_lm_train_opts_default(&to);
    to.batch = 4;
    to.bptt = 10;
    to.lr = 0.5f;
    to.grad_hook = lp_lm_iss_grad_hook;
    to.step_hook = lp_lm_iss_step_hook;
    to.hook_user = &iss;
    lp_lm_epoch_result er;
    for (int e = 0; e < epochs; e++) assert_int_equal(lp_lm_train_epoch(m, &opt, ids, n, &to, NULL, &er), LP_OK);
    assert_true(iss.calls == (int64_t)epochs * er.windows);
    lp_optim_free(&opt);
    int zero = 0;
    for (int l = 0; l < m->cfg.layers; l++) {
        double norms[16];
        assert_int_equal(lp_lm_iss_norms(m, l, norms), LP_OK);
        for (int j = 0; j < m->cfg.hidden[l]; j++) zero += norms[j] == 0.0;
    }
    assert_int_equal(zero, iss.zeroed);
    return zero;
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
    lp_lm_config c;
    lp_lm_config_default(&c, v.size, 2, 16);
    c.hidden[1] = 12;
    lp_lm m, ctrl;
    assert_int_equal(lp_lm_init(&m, &c, 72), LP_OK);
    assert_int_equal(lp_lm_init(&ctrl, &c, 72), LP_OK);
    const double thr = 0.02;
    /* control: without the penalty no unit gets near zero */
    assert_int_equal(iss_train(&ctrl, ids, n, 0.0, thr, 2), 0);
    /* with it, many do (the data needs few units: 30 words on a near-deterministic chain) */
    int zero = iss_train(&m, ids, n, 0.01, thr, 2);
    fprintf(stderr, "iss: %d of 28 units driven to zero\n", zero);
    assert_true(zero >= 7);
    /* removing exactly those units changes nothing: the ISS model is its own masked model */
    lp_lm_prune_plan p;
    assert_int_equal(lp_lm_iss_kept(&m, thr, &p), LP_OK);
    assert_string_equal(p.method, "iss");
    assert_int_equal(p.g[0].k + p.g[1].k, 28 - zero);
    assert_true(p.g[0].k >= 1 && p.g[1].k >= 1);
    lp_lm small;
    assert_int_equal(lp_lm_prune_shrink(&m, &p, &small), LP_OK);
    size_t cnt;
    double *a = word_nll(&m, ids, n, &cnt), *b = word_nll(&small, ids, n, &cnt);
    double worst = 0;
    for (size_t i = 0; i < cnt; i++) worst = fmax(worst, fabs(a[i] - b[i]));
    assert_true(worst <= NLL_TOL); /* tolerance: see NLL_TOL */
    lp_free(a);
    lp_free(b);
    lp_lm_free(&small);
    lp_lm_prune_plan_free(&p);
    lp_lm_free(&m);
    lp_lm_free(&ctrl);
    lp_free(ids);
    lp_ptb_vocab_free(&v);
}

/* ---- the whole job ---- */

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
    lp_lm_run_opts ro = {.run_dir = run, .quiet = 1};
    lp_lm_run_result rr;
    assert_int_equal(lp_lm_train_run(&cfg, &ro, &rr), LP_OK);
    lp_kv_free(&cfg);
    snprintf(ck, sizeof ck, "%s/best.ckpt", run);

    /* eigen + gm at a target rate of 0.5, one fine-tuning epoch */
    lp_lm_prune_job j;
    lp_lm_prune_job_default(&j);
    snprintf(out, sizeof out, "%s/eigen", lp_test_scratch_dir());
    j.checkpoint = ck;
    j.out_dir = out;
    j.quiet = 1;
    j.prune.rates.target_rate = 0.5;
    j.prune.stats_windows = 20;
    j.ft_epochs = 1;
    lp_lm_prune_result res;
    assert_int_equal(lp_lm_prune_run(&j, NULL, &res), LP_OK);
    assert_int_equal(res.n_rows, 3);
    assert_string_equal(res.rows[0].label, "baseline");
    assert_string_equal(res.rows[2].label, "fine-tuned");
    assert_int_equal(res.hidden_before[0] + res.hidden_before[1], 32);
    assert_int_equal(res.hidden_after[0] + res.hidden_after[1], 16); /* mean rate 0.5 over two layers of 16 */
    assert_true(res.rows[1].params < res.rows[0].params);
    assert_int_equal(res.rows[1].params, res.rows[2].params);
    /* the baseline row is best.ckpt: its validation perplexity as the training run measured it (there with
     * windows of 10, here of 35: the carried state makes that the same sum, in another float32 order) */
    assert_true(fabs(res.rows[0].valid_ppl - rr.best_valid_ppl) <= 1e-5 * rr.best_valid_ppl);
    for (int r = 0; r < 3; r++) assert_true(isfinite(res.rows[r].test_ppl) && res.rows[r].words_per_sec > 0);
    /* pruned.ckpt is a smaller LM that lm-eval/lm-train can load; the report's number is reproducible */
    snprintf(path, sizeof path, "%s/pruned.ckpt", out);
    lp_lm pm;
    lp_kv meta;
    lp_kv_init(&meta);
    assert_int_equal(lp_lm_load(&pm, path, &meta), LP_OK);
    assert_int_equal(pm.cfg.hidden[0], res.hidden_after[0]);
    assert_string_equal(lp_kv_get(&meta, "plan.method"), "eigen+gm");
    assert_string_equal(lp_kv_get(&meta, "data.dir"), lp_test_scratch_dir());
    lp_ptb_corpus corpus;
    assert_int_equal(lp_ptb_corpus_load(&corpus, lp_test_scratch_dir(), 0), LP_OK);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(&pm, corpus.ids[LP_PTB_TEST], corpus.n[LP_PTB_TEST], 20, 35, NULL, &ev), LP_OK);
    assert_true(ev.ppl == res.rows[1].test_ppl);
    lp_lm_free(&pm);
    lp_kv_free(&meta);
    /* report files */
    char *buf;
    size_t len;
    snprintf(path, sizeof path, "%s/report.json", out);
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "\"units_after\""));
    assert_non_null(strstr(buf, "\"fine-tuned\""));
    assert_non_null(strstr(buf, "\"spectrum\": ["));
    lp_free(buf);
    snprintf(path, sizeof path, "%s/report.md", out);
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "| lstm1 | 16 |"));
    lp_free(buf);
    snprintf(path, sizeof path, "%s/finetune/best.ckpt", out);
    assert_int_equal(access(path, F_OK), 0);

    /* uniform + l2 at 0.25, no fine-tuning (corpus given): 12 units per layer */
    lp_lm_prune_job_default(&j);
    snprintf(out, sizeof out, "%s/uniform", lp_test_scratch_dir());
    j.checkpoint = ck;
    j.out_dir = out;
    j.quiet = 1;
    j.prune.rates.rule = LP_RATE_RULE_UNIFORM;
    j.prune.rates.target_rate = 0.25;
    j.prune.criterion = LP_CRITERION_L2;
    j.ft_epochs = 0;
    assert_int_equal(lp_lm_prune_run(&j, &corpus, &res), LP_OK);
    assert_int_equal(res.n_rows, 2);
    assert_int_equal(res.hidden_after[0], 12);
    assert_int_equal(res.hidden_after[1], 12);
    const double plain_ppl = res.rows[1].test_ppl;
    /* the same with mean compensation: statistics gathered for it (the uniform rule needs none), the same
     * sizes, another perplexity, and the checkpoint and the report say so */
    snprintf(out, sizeof out, "%s/uniform_comp", lp_test_scratch_dir());
    j.out_dir = out;
    j.prune.compensate = 1;
    j.prune.stats_windows = 20;
    assert_int_equal(lp_lm_prune_run(&j, &corpus, &res), LP_OK);
    assert_true(res.hidden_after[0] == 12 && res.hidden_after[1] == 12);
    fprintf(stderr, "uniform l2 0.25: test ppl %.3f, with mean compensation %.3f\n", plain_ppl, res.rows[1].test_ppl);
    assert_true(isfinite(res.rows[1].test_ppl) && res.rows[1].test_ppl != plain_ppl);
    snprintf(path, sizeof path, "%s/pruned.ckpt", out);
    lp_kv_init(&meta);
    assert_int_equal(lp_lm_load(&pm, path, &meta), LP_OK);
    assert_string_equal(lp_kv_get(&meta, "plan.compensate"), "mean");
    lp_lm_free(&pm);
    lp_kv_free(&meta);
    snprintf(path, sizeof path, "%s/report.md", out);
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    assert_non_null(strstr(buf, "mean responses of the removed units"));
    lp_free(buf);

    /* ISS: a strong penalty for one epoch removes units */
    lp_lm_prune_job_default(&j);
    snprintf(out, sizeof out, "%s/iss", lp_test_scratch_dir());
    j.checkpoint = ck;
    j.out_dir = out;
    j.quiet = 1;
    j.iss_lambda = 0.015;
    j.iss_threshold = 0.02;
    j.iss_epochs = 1;
    j.iss_lr = 0.5;
    j.ft_epochs = 0;
    assert_int_equal(lp_lm_prune_run(&j, &corpus, &res), LP_OK);
    fprintf(stderr, "iss job: %d,%d -> %d,%d units\n", res.hidden_before[0], res.hidden_before[1], res.hidden_after[0],
            res.hidden_after[1]);
    assert_true(res.hidden_after[0] + res.hidden_after[1] < 32);
    /* bad jobs */
    j.iss_threshold = 0;
    assert_int_equal(lp_lm_prune_run(&j, &corpus, &res), LP_ERR_ARG);
    lp_ptb_corpus_free(&corpus);
}

/* ---- sensitivity (one layer at a time) ---- */

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
    lp_lm_run_opts ro = {.run_dir = run, .quiet = 1};
    lp_lm_run_result rr;
    assert_int_equal(lp_lm_train_run(&cfg, &ro, &rr), LP_OK);
    assert_true(rr.best_valid_ppl < 15); /* learned: 30 words, uniform guessing is 30 */
    lp_kv_free(&cfg);
    return ck;
}

static double masked_valid_ppl(const char *ck, const lp_ptb_corpus *c, int layer, const int *kept, int k) {
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, ck, NULL), LP_OK);
    int *lists[LP_LM_MAX_LAYERS], n[LP_LM_MAX_LAYERS], all[LP_LM_MAX_LAYERS][64];
    for (int l = 0; l < m.cfg.layers; l++) {
        for (int j = 0; j < m.cfg.hidden[l]; j++) all[l][j] = j;
        lists[l] = l == layer ? (int *)kept : all[l];
        n[l] = l == layer ? k : m.cfg.hidden[l];
    }
    lp_lm_prune_plan p;
    assert_int_equal(lp_lm_prune_plan_from_kept(&m, lists, n, &p), LP_OK);
    assert_int_equal(lp_lm_prune_mask(&m, &p), LP_OK);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(&m, c->ids[LP_PTB_VALID], c->n[LP_PTB_VALID], 20, 35, NULL, &ev), LP_OK);
    lp_lm_prune_plan_free(&p);
    lp_lm_free(&m);
    return ev.ppl;
}

static char *read_out(const char *dir, const char *name) {
    char path[800];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *buf;
    size_t len;
    assert_int_equal(lp_file_read_all(path, &buf, &len), LP_OK);
    return buf;
}

/* Every point is the validation perplexity of the model with that layer's worst-scored units masked
 * (masked == shrunk), the kept sets are nested, the suggestion follows the rule, the files hold the
 * table, a rerun writes the same numbers, compensation changes them, a tied last layer is listed but
 * never tried, and bad options are refused. */
static void test_sensitivity(void **state) {
    (void)state;
    const char *ck = small_lm("sens_base", 0);
    char ckpt[700], out[600], out2[600];
    snprintf(ckpt, sizeof ckpt, "%s", ck);
    lp_ptb_corpus corpus;
    assert_int_equal(lp_ptb_corpus_load(&corpus, lp_test_scratch_dir(), 0), LP_OK);
    lp_lm_sensitivity_opts o;
    lp_lm_sensitivity_opts_default(&o);
    o.checkpoint = ckpt;
    snprintf(out, sizeof out, "%s/sens", lp_test_scratch_dir());
    o.out_dir = out;
    o.quiet = 1;
    o.n_rates = 3;
    o.rates[0] = 0.5, o.rates[1] = 0.25, o.rates[2] = 0.75; /* any order */
    o.max_rise = 0.02;
    lp_lm_sensitivity_result *r = lp_calloc(1, sizeof *r);
    assert_non_null(r);
    assert_int_equal(lp_lm_sensitivity_run(&o, &corpus, r), LP_OK);
    assert_int_equal(r->n_groups, 2);
    assert_true(r->rates[0] == 0.25 && r->rates[1] == 0.5 && r->rates[2] == 0.75);

    /* the same ranking lm-prune uses: gm scores on the unpruned weights */
    lp_lm m;
    assert_int_equal(lp_lm_load(&m, ckpt, NULL), LP_OK);
    lp_lm_prune_opts po;
    lp_lm_prune_opts_default(&po);
    po.rates.rule = LP_RATE_RULE_UNIFORM;
    po.rates.target_rate = 0;
    lp_lm_prune_plan scored;
    assert_int_equal(lp_lm_prune_plan_make(&m, NULL, &po, &scored), LP_OK);
    lp_lm_eval_result ev;
    assert_int_equal(lp_lm_evaluate(&m, corpus.ids[LP_PTB_VALID], corpus.n[LP_PTB_VALID], 20, 35, NULL, &ev), LP_OK);
    assert_true(r->base_ppl == ev.ppl);
    const int expect_k[3] = {12, 8, 4};
    for (int l = 0; l < 2; l++) {
        assert_true(r->prunable[l] && r->units[l] == 16);
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
            assert_true(fabs(r->ppl[l][i] - masked) <= 1e-5 * masked); /* float sums in another order */
            rise[i] = r->ppl[l][i] / r->base_ppl - 1;
        }
        assert_true(r->suggested[l] == lp_sensitivity_suggest(r->rates, rise, 3, o.max_rise));
    }
    fprintf(stderr, "lm sensitivity: base %.3f; lstm1 %.3f %.3f %.3f; lstm2 %.3f %.3f %.3f; suggested %.2f %.2f\n",
            r->base_ppl, r->ppl[0][0], r->ppl[0][1], r->ppl[0][2], r->ppl[1][0], r->ppl[1][1], r->ppl[1][2],
            r->suggested[0], r->suggested[1]);
    lp_lm_prune_plan_free(&scored);
    lp_lm_free(&m);

    /* files */
    char *csv = read_out(out, "sensitivity.csv");
    assert_memory_equal(csv, "layer,units,rate,kept,valid_ppl,ppl_rise\n", 41);
    char row[128];
    snprintf(row, sizeof row, "lstm2,16,0.5000,8,%.6f,", r->ppl[1][1]);
    assert_non_null(strstr(csv, row));
    char *sug = read_out(out, "suggested.txt");
    char line[64];
    int k0, k1;
    assert_int_equal(lp_sensitivity_keep_count(16, r->suggested[0], &k0), LP_OK);
    assert_int_equal(lp_sensitivity_keep_count(16, r->suggested[1], &k1), LP_OK);
    snprintf(line, sizeof line, "lm.units = %d,%d\n", k0, k1);
    assert_non_null(strstr(sug, line));
    char *md = read_out(out, "sensitivity.md");
    assert_non_null(strstr(md, "| lstm1 | 16 |"));
    lp_free(sug);
    lp_free(md);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) assert_int_equal(r->plot, 1);

    /* a rerun gives the same table; compensation gives another one, and says so */
    snprintf(out2, sizeof out2, "%s/sens_again", lp_test_scratch_dir());
    o.out_dir = out2;
    assert_int_equal(lp_lm_sensitivity_run(&o, NULL, NULL), LP_OK); /* corpus from the checkpoint's data.dir */
    char *csv2 = read_out(out2, "sensitivity.csv");
    assert_string_equal(csv, csv2);
    lp_free(csv2);
    const double plain = r->ppl[0][2];
    o.compensate = 1;
    o.stats_windows = 20;
    assert_int_equal(lp_lm_sensitivity_run(&o, &corpus, r), LP_OK);
    assert_true(isfinite(r->ppl[0][2]) && r->ppl[0][2] != plain);
    md = read_out(out2, "sensitivity.md");
    assert_non_null(strstr(md, "mean compensation"));
    lp_free(md);
    lp_free(csv);
    o.compensate = 0;

    /* tied: the last layer is listed, never tried */
    snprintf(ckpt, sizeof ckpt, "%s", small_lm("sens_tied", 1));
    assert_int_equal(lp_lm_sensitivity_run(&o, &corpus, r), LP_OK);
    assert_true(r->prunable[0] && !r->prunable[1]);
    assert_true(isfinite(r->ppl[0][0]) && isnan(r->ppl[1][0]) && r->suggested[1] == 0);
    csv = read_out(out2, "sensitivity.csv");
    assert_null(strstr(csv, "lstm2,16,0.2500"));
    assert_non_null(strstr(csv, "lstm2,16,0.0000,16,"));
    lp_free(csv);

    /* bad options */
    o.rates[1] = 1.0;
    assert_int_equal(lp_lm_sensitivity_run(&o, &corpus, r), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "rate 1 is not in (0, 1)"));
    o.rates[1] = 0.5;
    o.max_rise = -1;
    assert_int_equal(lp_lm_sensitivity_run(&o, &corpus, r), LP_ERR_ARG);
    lp_free(r);
    lp_ptb_corpus_free(&corpus);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_masked_equals_shrunk_untied),
        cmocka_unit_test(test_masked_equals_shrunk_tied),
        cmocka_unit_test(test_compensate_constant_units),
        cmocka_unit_test(test_gather_maps_and_errors),
        cmocka_unit_test(test_stats_and_plans),
        cmocka_unit_test(test_iss_penalty_gradient),
        cmocka_unit_test(test_iss_drives_groups_to_zero),
        cmocka_unit_test(test_pipeline_end_to_end),
        cmocka_unit_test(test_sensitivity),
    };
    return cmocka_run_group_tests(tests, setup_dir, lp_test_scratch_teardown);
}
