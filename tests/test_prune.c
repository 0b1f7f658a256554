/* test_prune: the model-independent mathematics of pruning — response statistics, eigen rates and the τ
 * search, unit criteria and selection — against ../shared/reference/pruning.txt (numpy/PyTorch, float64)
 * and against properties a wrong implementation would break.
 *
 * The reference unit vectors and responses are float32-representable (checked when the file was added),
 * so their float copies are exact and every comparison below is float64 arithmetic against float64
 * references: the tolerances are round-off of double sums (~1e-16 relative per operation). */
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
#include "core/rng.h"
#include "core/status.h"
#include "prune/criteria.h"
#include "prune/rates.h"
#include "prune/stats.h"
#include "tests/common/refdata.h"

/* max |got − want| / (atol + rtol·|want|) over n doubles, printing the worst index when > 1. */
static double cmp_d(const char *what, const double *got, const double *want, size_t n, double atol, double rtol) {
    double worst = 0;
    size_t wi = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]) / (atol + rtol * fabs(want[i]));
        if (!(e <= worst)) { /* also catches NaN */
            worst = isnan(e) ? INFINITY : e;
            wi = i;
        }
    }
    if (worst > 1) fprintf(stderr, "%s: worst at %zu: got %.17g want %.17g\n", what, wi, got[wi], want[wi]);
    return worst;
}
#define ASSERT_CLOSE_D(what, got, want, n, atol, rtol) assert_true(cmp_d((what), (got), (want), (n), (atol), (rtol)) <= 1.0)

/* Two-pass population mean/covariance in double of rows x [n,ld] (first h columns): the textbook formula
 * the accumulator must agree with. */
static void naive_cov(const float *x, int n, int ld, int h, double *mean, double *cov) {
    for (int j = 0; j < h; j++) {
        double s = 0;
        for (int r = 0; r < n; r++) s += x[(size_t)r * ld + j];
        mean[j] = s / n;
    }
    for (int i = 0; i < h; i++)
        for (int j = 0; j < h; j++) {
            double s = 0;
            for (int r = 0; r < n; r++) s += (x[(size_t)r * ld + i] - mean[i]) * (x[(size_t)r * ld + j] - mean[j]);
            cov[(size_t)i * h + j] = s / n;
        }
}

/* ---------------------------------------------------------------- reference case */

static void test_gm_scores_and_order_match_reference(void **state) {
    (void)state;
    lp_ref *ref = lp_ref_load("pruning.txt");
    const lp_ref_tensor *tu = lp_ref_get(ref, "unit_vectors");
    const lp_ref_tensor *ts = lp_ref_get(ref, "gm_score");
    const lp_ref_tensor *to = lp_ref_get(ref, "gm_order");
    const int h = tu->dims[0], d = tu->dims[1];
    float *u = lp_ref_floats(tu);
    double *score = malloc(sizeof(double) * h);
    int *order = malloc(sizeof(int) * h);
    lp_criteria_opts o;
    lp_criteria_opts_default(&o);
    assert_int_equal(o.criterion, LP_CRITERION_GM);
    assert_int_equal(lp_criteria_score(&o, u, h, d, score), LP_OK);
    /* Sum of 9 distances via a Gram matrix of 14-dim vectors: double round-off, far below 1e-10. */
    ASSERT_CLOSE_D("gm_score", score, ts->v, (size_t)h, 1e-12, 1e-10);
    assert_int_equal(lp_criteria_order(score, h, order), LP_OK);
    for (int j = 0; j < h; j++) assert_int_equal(order[j], (int)to->v[j]);
    /* Keep k: the h−k first of gm_order are pruned, the rest are returned in ascending index order. */
    for (int k = 1; k <= h; k++) {
        int kept[64];
        assert_int_equal(lp_criteria_select(score, h, k, kept), LP_OK);
        int pruned[64] = {0};
        for (int j = 0; j < h - k; j++) pruned[(int)to->v[j]] = 1;
        for (int j = 0, n = 0; j < h; j++)
            if (!pruned[j]) assert_int_equal(kept[n++], j);
    }
    int kept[64];
    assert_int_equal(lp_criteria_select(score, h, 0, kept), LP_ERR_ARG);     /* at least one unit kept */
    assert_int_equal(lp_criteria_select(score, h, h + 1, kept), LP_ERR_ARG);
    free(u);
    free(score);
    free(order);
    lp_ref_free(ref);
}

static void test_covariance_matches_reference_in_any_chunking(void **state) {
    (void)state;
    lp_ref *ref = lp_ref_load("pruning.txt");
    const lp_ref_tensor *tx = lp_ref_get(ref, "responses");
    const lp_ref_tensor *tc = lp_ref_get(ref, "covariance");
    const int n = tx->dims[0], h = tx->dims[1];
    float *x = lp_ref_floats(tx);
    double mean_ref[64], cov_naive[64 * 64];
    naive_cov(x, n, h, h, mean_ref, cov_naive);

    /* One shot: all rows in one chunk. */
    lp_stats one;
    assert_int_equal(lp_stats_init(&one, h, 4096), LP_OK);
    assert_int_equal(lp_stats_add(&one, x, n, h), LP_OK);
    assert_int_equal(lp_stats_count(&one), n);
    double mean1[64], cov1[64 * 64];
    assert_int_equal(lp_stats_finish(&one, mean1, cov1), LP_OK);
    /* 200 responses of size < 1, float64 sums: agreement to ~1e-15; 1e-12 leaves room for BLAS order. */
    ASSERT_CLOSE_D("covariance", cov1, tc->v, (size_t)h * h, 1e-13, 1e-12);
    ASSERT_CLOSE_D("mean", mean1, mean_ref, (size_t)h, 1e-14, 1e-12);

    /* Calls of sizes 1, 7, 50, 13, ... into a 17-row buffer: many folds (Chan merges of unequal chunks). */
    const int sizes[] = {1, 7, 50, 13, 3, 64, 29, 33};
    lp_stats ch;
    assert_int_equal(lp_stats_init(&ch, h, 17), LP_OK);
    int off = 0;
    for (int i = 0; off < n; i = (i + 1) % 8) {
        int m = sizes[i] < n - off ? sizes[i] : n - off;
        assert_int_equal(lp_stats_add(&ch, x + (size_t)off * h, m, h), LP_OK);
        off += m;
    }
    double mean2[64], cov2[64 * 64];
    assert_int_equal(lp_stats_finish(&ch, mean2, cov2), LP_OK);
    /* Different fold order than one shot: equal up to double round-off. */
    ASSERT_CLOSE_D("chunked covariance", cov2, cov1, (size_t)h * h, 1e-15, 1e-12);
    ASSERT_CLOSE_D("chunked mean", mean2, mean1, (size_t)h, 1e-15, 1e-12);

    /* Same 17-row buffer fed row by row: rows are buffered, so the folds and the result are identical. */
    lp_stats rows;
    assert_int_equal(lp_stats_init(&rows, h, 17), LP_OK);
    for (int r = 0; r < n; r++) assert_int_equal(lp_stats_add(&rows, x + (size_t)r * h, 1, h), LP_OK);
    double cov3[64 * 64];
    assert_int_equal(lp_stats_finish(&rows, NULL, cov3), LP_OK);
    assert_memory_equal(cov3, cov2, sizeof(double) * h * h);

    /* Merge (threads): two accumulators over a split of the rows equal the whole. */
    lp_stats a, b;
    assert_int_equal(lp_stats_init(&a, h, 23), LP_OK);
    assert_int_equal(lp_stats_init(&b, h, 11), LP_OK);
    assert_int_equal(lp_stats_add(&a, x, 71, h), LP_OK);
    assert_int_equal(lp_stats_add(&b, x + 71 * h, n - 71, h), LP_OK);
    assert_int_equal(lp_stats_merge(&a, &b), LP_OK);
    assert_int_equal(lp_stats_count(&a), n);
    double mean4[64], cov4[64 * 64];
    assert_int_equal(lp_stats_finish(&a, mean4, cov4), LP_OK);
    ASSERT_CLOSE_D("merged covariance", cov4, tc->v, (size_t)h * h, 1e-13, 1e-12);
    ASSERT_CLOSE_D("merged mean", mean4, mean_ref, (size_t)h, 1e-14, 1e-12);

    /* Packed (what a rank sends the others): merging the packed halves in order is merging the halves. */
    lp_stats p1, p2, m;
    assert_int_equal(lp_stats_init(&p1, h, 23), LP_OK);
    assert_int_equal(lp_stats_init(&p2, h, 11), LP_OK);
    assert_int_equal(lp_stats_init(&m, h, 0), LP_OK);
    assert_int_equal(lp_stats_add(&p1, x, 71, h), LP_OK);
    assert_int_equal(lp_stats_add(&p2, x + 71 * h, n - 71, h), LP_OK);
    double *pk = malloc(2 * lp_stats_packed_size(h) * sizeof(double));
    assert_non_null(pk);
    lp_stats_pack(&p1, pk);
    lp_stats_pack(&p2, pk + lp_stats_packed_size(h));
    assert_true(pk[0] == 71);
    assert_int_equal(lp_stats_merge_packed(&m, pk), LP_OK);
    assert_int_equal(lp_stats_merge_packed(&m, pk + lp_stats_packed_size(h)), LP_OK);
    double mean5[64], cov5[64 * 64];
    assert_int_equal(lp_stats_finish(&m, mean5, cov5), LP_OK);
    ASSERT_CLOSE_D("packed-merged covariance", cov5, tc->v, (size_t)h * h, 1e-13, 1e-12);
    ASSERT_CLOSE_D("packed-merged mean", mean5, mean_ref, (size_t)h, 1e-14, 1e-12);
    free(pk);
    lp_stats_free(&p1);
    lp_stats_free(&p2);
    lp_stats_free(&m);

    /* Reset forgets; finish on nothing is an error, not a division by zero. */
    lp_stats_reset(&a);
    assert_int_equal(lp_stats_finish(&a, mean4, cov4), LP_ERR_ARG);

    lp_stats_free(&one);
    lp_stats_free(&ch);
    lp_stats_free(&rows);
    lp_stats_free(&a);
    lp_stats_free(&b);
    free(x);
    lp_ref_free(ref);
}

static void test_eigenvalues_and_keep_counts_match_reference(void **state) {
    (void)state;
    lp_ref *ref = lp_ref_load("pruning.txt");
    const lp_ref_tensor *tc = lp_ref_get(ref, "covariance");
    const lp_ref_tensor *te = lp_ref_get(ref, "eigenvalues");
    const lp_ref_tensor *tt = lp_ref_get(ref, "taus");
    const lp_ref_tensor *tk = lp_ref_get(ref, "keep_at_tau");
    const int h = tc->dims[0];
    double eig[64];
    int clamped = -1;
    assert_int_equal(lp_rates_eigenvalues(tc->v, h, eig, &clamped), LP_OK);
    /* dsyevd is backward stable: |Δλ| <= ~H·eps·||C|| ~ 1e-15; 1e-12 absolute is generous but still
     * far below the smallest eigenvalue (2.7e-3), so wrong order or values fail. */
    ASSERT_CLOSE_D("eigenvalues", eig, te->v, (size_t)h, 1e-12, 1e-10);
    assert_int_equal(clamped, 0);
    for (int i = 1; i < h; i++) assert_true(eig[i - 1] >= eig[i]);
    for (size_t t = 0; t < tt->n; t++) {
        assert_int_equal(lp_rates_keep_at_tau(eig, h, tt->v[t], LP_KEEP_COUNT_STANDARD), (int)tk->v[t]);
        /* The "below" hook counts one fewer (never fewer than one unit). */
        int below = (int)tk->v[t] - 1;
        assert_int_equal(lp_rates_keep_at_tau(eig, h, tt->v[t], LP_KEEP_COUNT_BELOW), below < 1 ? 1 : below);
        /* The public code's count, #{k : C(k) > τE}: every k from the first reaching τ on, except that one
         * when it reaches τ exactly (no tie in this spectrum: C(k) = τE never holds to the last bit). */
        const int pub = h - (int)tk->v[t] + 1;
        assert_int_equal(lp_rates_keep_at_tau(eig, h, tt->v[t], LP_KEEP_COUNT_PUBLIC), pub < 1 ? 1 : pub > h ? h : pub);
    }
    /* Through a group: same spectrum, same k, energy_kept >= tau. */
    lp_rate_group g;
    assert_int_equal(lp_rate_group_from_cov(&g, tc->v, h), LP_OK);
    lp_rates_opts o;
    lp_rates_opts_default(&o);
    assert_true(o.tau == 0.9);
    for (size_t t = 0; t < tt->n; t++) {
        o.tau = tt->v[t];
        lp_rates_result res;
        assert_int_equal(lp_rates_assign(&g, 1, &o, &res), LP_OK);
        assert_int_equal(g.k, (int)tk->v[t]);
        assert_true(fabs(g.rate - (1.0 - tk->v[t] / h)) < 1e-15);
        assert_true(g.energy_kept >= tt->v[t]);
        assert_true(res.tau == tt->v[t]);
    }
    lp_rate_group_free(&g);
    lp_ref_free(ref);
}

/* ---------------------------------------------------------------- statistics */

static void test_stats_sequence_helper_uses_exactly_the_valid_steps(void **state) {
    (void)state;
    enum { B = 4, T = 7, LD = 12, OFF = 3, H = 5 };
    const int lengths[B] = {7, 0, 3, 5};
    float seq[B * T * LD];
    lp_rng r;
    lp_rng_init(&r, 11, LP_RNG_STREAM_TEST);
    for (int i = 0; i < B * T * LD; i++) seq[i] = (float)lp_rng_normal(&r);
    /* Poison the padding of the group's columns: a helper reading past a length would see huge values. */
    for (int b = 0; b < B; b++)
        for (int t = lengths[b]; t < T; t++)
            for (int j = 0; j < H; j++) seq[((size_t)b * T + t) * LD + OFF + j] = 1e6f;
    for (lp_stats_steps mode = LP_STATS_STEPS_ALL; mode <= LP_STATS_STEPS_FIRST; mode++) {
        /* Naive: gather the selected rows with a double loop. */
        float rows[B * T * H];
        int n = 0;
        for (int b = 0; b < B; b++)
            for (int t = 0; t < lengths[b]; t++) {
                int take = mode == LP_STATS_STEPS_ALL || (mode == LP_STATS_STEPS_LAST && t == lengths[b] - 1) ||
                           (mode == LP_STATS_STEPS_FIRST && t == 0);
                if (!take) continue;
                for (int j = 0; j < H; j++) rows[n * H + j] = seq[((size_t)b * T + t) * LD + OFF + j];
                n++;
            }
        double mean_ref[H], cov_ref[H * H];
        naive_cov(rows, n, H, H, mean_ref, cov_ref);
        lp_stats s;
        assert_int_equal(lp_stats_init(&s, H, 4), LP_OK);
        assert_int_equal(lp_stats_add_seq(&s, seq + OFF, B, T, LD, lengths, mode), LP_OK);
        assert_int_equal(lp_stats_count(&s), n);
        double mean[H], cov[H * H];
        assert_int_equal(lp_stats_finish(&s, mean, cov), LP_OK);
        /* N(0,1) data, <= 15 rows: double round-off only. */
        ASSERT_CLOSE_D("seq mean", mean, mean_ref, H, 1e-13, 1e-12);
        ASSERT_CLOSE_D("seq cov", cov, cov_ref, H * H, 1e-13, 1e-12);
        lp_stats_free(&s);
    }
    /* NULL lengths: all T steps of every sequence. */
    lp_stats s;
    assert_int_equal(lp_stats_init(&s, H, 0), LP_OK);
    assert_int_equal(lp_stats_add_seq(&s, seq + OFF, B, T, LD, NULL, LP_STATS_STEPS_ALL), LP_OK);
    assert_int_equal(lp_stats_count(&s), B * T);
    /* A bad length is refused before anything is added. */
    const int bad[B] = {7, 8, 1, 1};
    lp_stats_reset(&s);
    assert_int_equal(lp_stats_add_seq(&s, seq + OFF, B, T, LD, bad, LP_STATS_STEPS_ALL), LP_ERR_ARG);
    assert_int_equal(lp_stats_count(&s), 0);
    /* NaN responses are reported, not averaged in. */
    seq[OFF + 2] = NAN;
    assert_int_equal(lp_stats_add_seq(&s, seq + OFF, B, T, LD, lengths, LP_STATS_STEPS_ALL), LP_ERR_NUMERIC);
    assert_non_null(strstr(lp_last_error(), "sequence 0"));
    lp_stats_free(&s);

    lp_stats_steps st;
    assert_int_equal(lp_stats_steps_parse("last", &st), LP_OK);
    assert_int_equal(st, LP_STATS_STEPS_LAST);
    assert_int_equal(lp_stats_steps_parse("most", &st), LP_ERR_ARG);
}

static void test_stats_robust_to_large_mean(void **state) {
    (void)state;
    /* Saturated-unit regime: mean 100, spread 1e-3. The one-pass formula Σxxᵀ/N − mean·meanᵀ loses
     * ~log10(1e4/1e-6) = 10 digits here (relative error ~1e-6); the centred accumulation keeps ~1e-11.
     * The reference is the two-pass formula on the same float32 values. */
    enum { N = 20000, H = 4 };
    float *x = malloc(sizeof(float) * N * H);
    lp_rng r;
    lp_rng_init(&r, 5, LP_RNG_STREAM_TEST);
    for (int i = 0; i < N; i++) {
        double z = lp_rng_normal(&r);
        for (int j = 0; j < H; j++) x[i * H + j] = (float)(100.0 + 1e-3 * (z * (j + 1) + 0.5 * lp_rng_normal(&r)));
    }
    double mean_ref[H], cov_ref[H * H], mean[H], cov[H * H];
    naive_cov(x, N, H, H, mean_ref, cov_ref);
    lp_stats s;
    assert_int_equal(lp_stats_init(&s, H, 333), LP_OK);
    assert_int_equal(lp_stats_add(&s, x, N, H), LP_OK);
    assert_int_equal(lp_stats_finish(&s, mean, cov), LP_OK);
    /* 1e-9 relative to entries of size ~1e-6: a one-pass implementation (error ~1e-6 relative) fails. */
    ASSERT_CLOSE_D("offset cov", cov, cov_ref, H * H, 1e-18, 1e-9);
    ASSERT_CLOSE_D("offset mean", mean, mean_ref, H, 0, 1e-14);
    lp_stats_free(&s);
    free(x);
}

/* ---------------------------------------------------------------- rates */

/* A descending spectrum λ_i = c·q^i + small floor, distinct per group. */
static void make_spectrum(double *eig, int h, double q, double c) {
    for (int i = 0; i < h; i++) eig[i] = c * pow(q, i) + 1e-4 / (i + 1);
}

static void test_target_rate_search_is_optimal_over_groups(void **state) {
    (void)state;
    enum { G = 3 };
    const int hs[G] = {16, 24, 40};
    const double qs[G] = {0.6, 0.85, 0.95};
    double eig[G][40];
    lp_rate_group g[G];
    for (int i = 0; i < G; i++) {
        make_spectrum(eig[i], hs[i], qs[i], 1.0 + i);
        assert_int_equal(lp_rate_group_from_eig(&g[i], eig[i], hs[i]), LP_OK);
    }
    /* All breakpoints τ = C_g(k)/E_g; the mean rate is constant on the intervals between them, so the
     * midpoints and the breakpoints themselves enumerate every reachable mean rate. */
    double bp[1 + 16 + 24 + 40];
    int nb = 0;
    bp[nb++] = 0;
    for (int i = 0; i < G; i++) {
        double e = 0, c = 0;
        for (int k = 0; k < hs[i]; k++) e += eig[i][k];
        for (int k = 0; k < hs[i]; k++) {
            c += eig[i][k];
            bp[nb++] = c / e > 1 ? 1 : c / e;
        }
    }
    for (int round_to = 0; round_to <= 4; round_to += 4) {
        double reach[2 * 81];
        int nr = 0;
        lp_rates_opts o;
        lp_rates_opts_default(&o);
        o.round_to = round_to;
        for (int i = 0; i < nb; i++)
            for (int j = 0; j < nb; j++) {
                double tau = i == j ? bp[i] : 0.5 * (bp[i] + bp[j]);
                if (!(tau > 0 && tau <= 1) || nr >= 2 * 81) continue;
                o.tau = tau;
                lp_rates_result res;
                assert_int_equal(lp_rates_assign(g, G, &o, &res), LP_OK);
                int seen = 0;
                for (int m = 0; m < nr; m++) seen |= fabs(reach[m] - res.mean_rate) < 1e-12;
                if (!seen) reach[nr++] = res.mean_rate;
            }
        assert_true(nr > (round_to ? 10 : 60)); /* the enumeration really produced many steps */
        const double targets[] = {0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99};
        for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
            o.target_rate = targets[t];
            lp_rates_result res;
            assert_int_equal(lp_rates_assign(g, G, &o, &res), LP_OK);
            double best = INFINITY;
            for (int m = 0; m < nr; m++)
                if (fabs(reach[m] - targets[t]) < best) best = fabs(reach[m] - targets[t]);
            /* The search returns a reachable mean rate as close to r as any (1e-12: float sums). */
            assert_true(fabs(fabs(res.mean_rate - targets[t]) - best) < 1e-12);
            double sum = 0;
            for (int i = 0; i < G; i++) {
                assert_true(g[i].k >= 1 && g[i].k <= g[i].h);
                if (round_to > 1) assert_true(g[i].k % round_to == 0 || g[i].k == g[i].h);
                assert_true(g[i].tau == res.tau);
                sum += g[i].rate;
            }
            assert_true(fabs(sum / G - res.mean_rate) < 1e-15);
            /* Without rounding, every step changes one group by one unit: within half the largest step. */
            if (round_to == 0 && targets[t] <= 0.9) assert_true(fabs(res.mean_rate - targets[t]) <= 0.5 / (G * 16) + 1e-12);
        }
    }
    for (int i = 0; i < G; i++) lp_rate_group_free(&g[i]);
}

static void test_uniform_rule_round_to_and_min_one_unit(void **state) {
    (void)state;
    const int hs[3] = {10, 33, 100};
    lp_rate_group g[3];
    for (int i = 0; i < 3; i++) assert_int_equal(lp_rate_group_from_eig(&g[i], NULL, hs[i]), LP_OK);
    lp_rates_opts o;
    lp_rates_opts_default(&o);
    o.rule = LP_RATE_RULE_UNIFORM;
    o.target_rate = 0.3;
    lp_rates_result res;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_OK);
    /* k = H − round(r·H): 10−3, 33−round(9.9), 100−30. */
    assert_int_equal(g[0].k, 7);
    assert_int_equal(g[1].k, 23);
    assert_int_equal(g[2].k, 70);
    assert_true(isnan(res.tau) && isnan(g[0].tau));
    assert_int_equal(res.kept, 100);
    assert_int_equal(res.total, 143);
    o.target_rate = 0.99; /* 10 − round(9.9) = 0 → at least one unit */
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_OK);
    assert_int_equal(g[0].k, 1);
    assert_int_equal(g[2].k, 1);
    o.round_to = 8;
    o.target_rate = 0.5;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_OK);
    assert_int_equal(g[0].k, 8);  /* 5 → nearest multiple 8 (never below N) */
    assert_int_equal(g[1].k, 16); /* 33−17 = 16 */
    assert_int_equal(g[2].k, 48); /* 50 → 48 */
    /* The eigen rule needs spectra. */
    o.rule = LP_RATE_RULE_EIGEN;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_ERR_ARG);
    for (int i = 0; i < 3; i++) lp_rate_group_free(&g[i]);

    /* Rounding: nearest multiple, ties up, within [N, N·floor(H/N)]; k = H and H < N stay whole. */
    assert_int_equal(lp_rates_round(5, 100, 8), 8);
    assert_int_equal(lp_rates_round(11, 100, 8), 8);
    assert_int_equal(lp_rates_round(12, 100, 8), 16);
    assert_int_equal(lp_rates_round(13, 100, 8), 16);
    assert_int_equal(lp_rates_round(1, 100, 8), 8);
    assert_int_equal(lp_rates_round(99, 100, 8), 96);
    assert_int_equal(lp_rates_round(100, 100, 8), 100);
    assert_int_equal(lp_rates_round(3, 6, 8), 6);
    assert_int_equal(lp_rates_round(7, 20, 1), 7);
    for (int h = 1; h <= 40; h++)
        for (int n = 2; n <= 9; n++)
            for (int k = 2; k <= h; k++) assert_true(lp_rates_round(k, h, n) >= lp_rates_round(k - 1, h, n));

    /* Eigen rule: a rank-one spectrum keeps one unit at any τ < 1 and a zero spectrum keeps one. */
    double one[6] = {2, 0, 0, 0, 0, 0}, zero[6] = {0};
    assert_int_equal(lp_rates_keep_at_tau(one, 6, 0.999, LP_KEEP_COUNT_STANDARD), 1);
    assert_int_equal(lp_rates_keep_at_tau(one, 6, 1.0, LP_KEEP_COUNT_STANDARD), 1);
    assert_int_equal(lp_rates_keep_at_tau(zero, 6, 0.9, LP_KEEP_COUNT_STANDARD), 1);
    double flat[4] = {1, 1, 1, 1};
    assert_int_equal(lp_rates_keep_at_tau(flat, 4, 1.0, LP_KEEP_COUNT_STANDARD), 4);
    assert_int_equal(lp_rates_keep_at_tau(flat, 4, 0.5, LP_KEEP_COUNT_STANDARD), 2);
    assert_int_equal(lp_rates_keep_at_tau(flat, 4, 0.51, LP_KEEP_COUNT_STANDARD), 3);
    /* The public count inverts the direction: C = 1,2,3,4 of E = 4 above τE = 2, 2.04, 3.6; a rank-one
     * spectrum (C(k) = E for every k) keeps all six units at τ = 0.9, where the paper's rule keeps one. */
    assert_int_equal(lp_rates_keep_at_tau(flat, 4, 0.5, LP_KEEP_COUNT_PUBLIC), 2);
    assert_int_equal(lp_rates_keep_at_tau(flat, 4, 0.51, LP_KEEP_COUNT_PUBLIC), 2);
    assert_int_equal(lp_rates_keep_at_tau(flat, 4, 0.9, LP_KEEP_COUNT_PUBLIC), 1);
    assert_int_equal(lp_rates_keep_at_tau(one, 6, 0.9, LP_KEEP_COUNT_PUBLIC), 6);
    assert_int_equal(lp_rates_keep_at_tau(zero, 6, 0.9, LP_KEEP_COUNT_PUBLIC), 1);
    lp_keep_count kc;
    assert_int_equal(lp_keep_count_parse("public", &kc), LP_OK);
    assert_int_equal(kc, LP_KEEP_COUNT_PUBLIC);
    assert_string_equal(lp_keep_count_name(kc), "public");
    assert_int_equal(lp_keep_count_parse("above", &kc), LP_ERR_ARG);
    {
        /* The τ search under the public count (rate increasing in τ): two groups of 10 with a geometric
         * and a flat spectrum reach the target mean rate 0.5 as closely as the steps allow, and the τ it
         * reports gives those counts again. */
        double geo[10], fl[10];
        for (int i = 0; i < 10; i++) geo[i] = pow(0.5, i), fl[i] = 1;
        lp_rate_group gg[2];
        assert_int_equal(lp_rate_group_from_eig(&gg[0], geo, 10), LP_OK);
        assert_int_equal(lp_rate_group_from_eig(&gg[1], fl, 10), LP_OK);
        lp_rates_opts po;
        lp_rates_opts_default(&po);
        po.count = LP_KEEP_COUNT_PUBLIC;
        po.target_rate = 0.5;
        lp_rates_result pr;
        assert_int_equal(lp_rates_assign(gg, 2, &po, &pr), LP_OK);
        assert_true(fabs(pr.mean_rate - 0.5) <= 0.05 + 1e-12); /* steps of 1/20 in the mean */
        assert_true(pr.tau > 0 && pr.tau <= 1);
        for (int i = 0; i < 2; i++)
            assert_int_equal(lp_rates_keep_at_tau(gg[i].eig, 10, pr.tau, LP_KEEP_COUNT_PUBLIC), gg[i].k);
        /* and a larger τ prunes more: the public direction */
        po.target_rate = -1;
        po.tau = 0.5;
        assert_int_equal(lp_rates_assign(gg, 2, &po, &pr), LP_OK);
        const double r05 = pr.mean_rate;
        po.tau = 0.95;
        assert_int_equal(lp_rates_assign(gg, 2, &po, &pr), LP_OK);
        assert_true(pr.mean_rate > r05);
        for (int i = 0; i < 2; i++) lp_rate_group_free(&gg[i]);
    }

    /* Clamping: a covariance with a round-off negative eigenvalue (rank-deficient, perturbed). */
    double c[4] = {1, 1, 1, 1 - 1e-13}, e[2];
    int nc = 0;
    assert_int_equal(lp_rates_eigenvalues(c, 2, e, &nc), LP_OK);
    assert_int_equal(nc, 1);
    assert_true(e[1] == 0 && fabs(e[0] - 2) < 1e-12);
    double bad[4] = {1, NAN, NAN, 1};
    assert_int_equal(lp_rates_eigenvalues(bad, 2, e, &nc), LP_ERR_NUMERIC);

    /* Option checks. */
    lp_rates_opts_default(&o);
    o.tau = 0;
    assert_int_equal(lp_rates_opts_check(&o), LP_ERR_ARG);
    lp_rates_opts_default(&o);
    o.target_rate = 1.0;
    assert_int_equal(lp_rates_opts_check(&o), LP_ERR_ARG);
    lp_rates_opts_default(&o);
    o.rule = LP_RATE_RULE_UNIFORM;
    assert_int_equal(lp_rates_opts_check(&o), LP_ERR_ARG); /* uniform without a rate */
    lp_rate_rule rr;
    assert_int_equal(lp_rate_rule_parse("uniform", &rr), LP_OK);
    assert_int_equal(rr, LP_RATE_RULE_UNIFORM);
    assert_int_equal(lp_rate_rule_parse("eigenvalue", &rr), LP_ERR_ARG);
}

/* The sensitivity rule (issue 25): a group's rate at a cost budget walks the running maximum of its curve;
 * the budget shared by the groups is searched for the target mean rate; cheap groups lose more. */
static void test_sensitivity_rule(void **state) {
    (void)state;
    lp_cost_curve c = {.n = 3, .rate = {0.25, 0.5, 0.75}, .cost = {0.01, 0.04, 0.02}};
    assert_int_equal(lp_cost_curve_check(&c), LP_OK);
    const double theta[] = {0, 0.005, 0.01, 0.025, 0.04, 1};
    const double want[] = {0, 0.125, 0.25, 0.375, 0.75, 0.75}; /* the cost falling after 0.5 does not count */
    for (int i = 0; i < 6; i++) assert_true(fabs(lp_cost_curve_rate_at(&c, theta[i], 0) - want[i]) < 1e-12);
    double last = 0;
    for (double t = 0; t <= 0.05; t += 1e-4) { /* non-decreasing in the budget */
        const double r = lp_cost_curve_rate_at(&c, t, 1e-8);
        assert_true(r >= last && r <= 0.75);
        last = r;
    }
    /* Free pruning (costs <= 0): with a slope, a small budget buys a small rate, not the whole stretch. */
    lp_cost_curve fr = {.n = 2, .rate = {0.5, 0.9}, .cost = {-0.01, 0.0}};
    assert_true(lp_cost_curve_rate_at(&fr, 0, 0) == 0.9);
    assert_true(fabs(lp_cost_curve_rate_at(&fr, 0.3e-6, 1e-6) - 0.3) < 1e-9);
    lp_cost_curve bad = {.n = 2, .rate = {0.5, 0.4}, .cost = {0, 0}};
    assert_int_equal(lp_cost_curve_check(&bad), LP_ERR_ARG);

    /* Three groups of 20: cheap, expensive and in between. */
    lp_cost_curve curves[3] = {{.n = 4, .rate = {0.2, 0.4, 0.6, 0.8}, .cost = {0.001, 0.002, 0.004, 0.008}},
                               {.n = 4, .rate = {0.2, 0.4, 0.6, 0.8}, .cost = {0.01, 0.05, 0.1, 0.2}},
                               {.n = 4, .rate = {0.2, 0.4, 0.6, 0.8}, .cost = {0.004, 0.01, 0.03, 0.06}}};
    lp_rate_group g[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lp_rate_group_from_eig(&g[i], NULL, 20), LP_OK);
        g[i].curve = &curves[i];
    }
    lp_rates_opts o;
    lp_rates_opts_default(&o);
    o.rule = LP_RATE_RULE_SENSITIVITY;
    lp_rate_rule rr;
    assert_int_equal(lp_rate_rule_parse("sensitivity", &rr), LP_OK);
    assert_int_equal(rr, LP_RATE_RULE_SENSITIVITY);
    assert_int_equal(lp_rates_assign(g, 3, &o, NULL), LP_ERR_ARG); /* needs a target */
    lp_rates_result res;
    for (double r = 0.1; r < 0.8; r += 0.1) {
        o.target_rate = r;
        assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_OK);
        assert_true(fabs(res.mean_rate - r) <= 0.5 / 60 + 1e-12); /* a step moves one group by one unit */
        assert_true(isnan(res.tau) && res.budget >= 0);
        assert_true(g[0].k <= g[2].k && g[2].k <= g[1].k); /* the cheap group loses most */
        for (int i = 0; i < 3; i++) /* no group's rate costs more than the budget (up to one unit) */
            assert_true(g[i].rate <= lp_cost_curve_rate_at(&curves[i], res.budget, 0) + 0.05 + 1e-12);
    }
    o.target_rate = 0.9; /* beyond every analysed rate: all at their largest */
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_OK);
    assert_true(fabs(res.mean_rate - 0.8) < 1e-12);
    /* Equal curves that cost nothing: the target is split evenly. */
    lp_cost_curve zero = {.n = 2, .rate = {0.5, 0.9}, .cost = {0, -0.001}};
    g[0].curve = g[1].curve = g[2].curve = &zero;
    o.target_rate = 0.3;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_OK);
    assert_true(g[0].k == 14 && g[1].k == 14 && g[2].k == 14);
    g[1].curve = NULL;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_ERR_ARG);

    /* The given rule: the sizes as given; no target beside them. */
    o.rule = LP_RATE_RULE_GIVEN;
    o.target_rate = -1;
    g[0].want_k = 5, g[1].want_k = 20, g[2].want_k = 1;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_OK);
    assert_true(g[0].k == 5 && g[1].k == 20 && g[2].k == 1);
    assert_true(fabs(res.mean_rate - (0.75 + 0 + 0.95) / 3) < 1e-12);
    g[2].want_k = 0;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_ERR_ARG);
    g[2].want_k = 1;
    o.target_rate = 0.3;
    assert_int_equal(lp_rates_assign(g, 3, &o, &res), LP_ERR_ARG);
    for (int i = 0; i < 3; i++) lp_rate_group_free(&g[i]);
}

/* ---------------------------------------------------------------- criteria */

static void test_unit_vectors_layout(void **state) {
    (void)state;
    enum { H = 3, F = 2 };
    float w_ih[4 * H * F], w_hh[4 * H * H], b[4 * H];
    for (int i = 0; i < 4 * H * F; i++) w_ih[i] = (float)(1000 + i);
    for (int i = 0; i < 4 * H * H; i++) w_hh[i] = (float)(2000 + i);
    for (int i = 0; i < 4 * H; i++) b[i] = (float)(3000 + i);
    const int d = lp_criteria_unit_dim(F, H, 0), db = lp_criteria_unit_dim(F, H, 1);
    assert_int_equal(d, 4 * (F + H));
    assert_int_equal(db, d + 4);
    float u[H * (4 * (F + H) + 4)];
    assert_int_equal(lp_criteria_unit_vectors(w_ih, w_hh, NULL, H, F, u), LP_OK);
    for (int j = 0; j < H; j++)
        for (int q = 0; q < 4; q++) {
            for (int c = 0; c < F; c++) assert_true(u[j * d + q * F + c] == w_ih[(q * H + j) * F + c]);
            for (int c = 0; c < H; c++) assert_true(u[j * d + 4 * F + q * H + c] == w_hh[(q * H + j) * H + c]);
        }
    assert_int_equal(lp_criteria_unit_vectors(w_ih, w_hh, b, H, F, u), LP_OK);
    for (int j = 0; j < H; j++)
        for (int q = 0; q < 4; q++) assert_true(u[j * db + 4 * (F + H) + q] == b[q * H + j]);
}

static void test_gm_exact_known_medians(void **state) {
    (void)state;
    enum { D = 5 };
    const double off[D] = {0.5, -1, 2, 0, 3};
    double x[8 * D], m[D];
    int it;
    /* Symmetric points ±e_c around a centre: the median is the centre. */
    for (int i = 0; i < 2 * 3; i++) {
        for (int c = 0; c < D; c++) x[i * D + c] = off[c];
        x[i * D + i / 2] += (i % 2) ? -1.5 : 1.5;
    }
    assert_int_equal(lp_criteria_geometric_median(x, 6, D, 1e-12, 1000, m, &it), LP_OK);
    ASSERT_CLOSE_D("symmetric median", m, off, D, 1e-9, 0);
    /* Convex quadrilateral A(0,0) B(4,0) C(5,5) D(0,2): the median is the diagonals' crossing (4/3,4/3),
     * not the centroid (9/4,7/4). Embedded in 5 dimensions with an offset. */
    const double quad[4][2] = {{0, 0}, {4, 0}, {5, 5}, {0, 2}};
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < D; c++) x[i * D + c] = off[c] + (c < 2 ? quad[i][c] : 0);
    double want[D];
    for (int c = 0; c < D; c++) want[c] = off[c] + (c < 2 ? 4.0 / 3.0 : 0);
    assert_int_equal(lp_criteria_geometric_median(x, 4, D, 1e-13, 10000, m, &it), LP_OK);
    /* Weiszfeld converges linearly; at tol 1e-13 the iterate is within ~1e-9 of the optimum. */
    ASSERT_CLOSE_D("quadrilateral median", m, want, D, 1e-8, 0);
    assert_true(it < 10000);
    /* Obtuse triangle (angle at A > 120°): the median is the vertex A, a data point — the plain
     * Weiszfeld step would divide by zero there. Plus a duplicate of A (multiplicity 2). */
    const double tri[4][2] = {{0, 0}, {10, 1}, {-10, 1}, {0, 0}};
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < D; c++) x[i * D + c] = off[c] + (c < 2 ? tri[i][c] : 0);
    for (int n = 3; n <= 4; n++) {
        assert_int_equal(lp_criteria_geometric_median(x, n, D, 1e-13, 10000, m, &it), LP_OK);
        for (int c = 0; c < D; c++) assert_false(isnan(m[c]));
        ASSERT_CLOSE_D("vertex median", m, off, D, 1e-7, 0);
    }
    /* All points equal: the median is that point, at once. */
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < D; c++) x[i * D + c] = off[c];
    assert_int_equal(lp_criteria_geometric_median(x, 3, D, 1e-12, 100, m, &it), LP_OK);
    ASSERT_CLOSE_D("equal points", m, off, D, 1e-15, 1e-15);
    assert_int_equal(it, 1);

    /* gm-exact scores are the distances to that median: quadrilateral as 4 units of length 2. */
    float u[8];
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 2; c++) u[i * 2 + c] = (float)quad[i][c];
    lp_criteria_opts o;
    lp_criteria_opts_default(&o);
    o.criterion = LP_CRITERION_GM_EXACT;
    o.gm_tol = 1e-13;
    o.gm_max_iter = 10000;
    double score[4], dist[4];
    assert_int_equal(lp_criteria_score(&o, u, 4, 2, score), LP_OK);
    for (int i = 0; i < 4; i++) dist[i] = hypot(quad[i][0] - 4.0 / 3.0, quad[i][1] - 4.0 / 3.0);
    ASSERT_CLOSE_D("gm-exact scores", score, dist, 4, 1e-8, 0);
}

static void test_norm_criteria_orders(void **state) {
    (void)state;
    /* a=(3,0) b=(2,2) c=(1,1) d=(0,3.5): l1 = 3,4,2,3.5 ; l2 = 3, 2.83, 1.41, 3.5 — different orders. */
    const float u[8] = {3, 0, 2, 2, 1, 1, 0, 3.5f};
    lp_criteria_opts o;
    lp_criteria_opts_default(&o);
    double score[4];
    int order[5];
    o.criterion = LP_CRITERION_L1;
    assert_int_equal(lp_criteria_score(&o, u, 4, 2, score), LP_OK);
    assert_int_equal(lp_criteria_order(score, 4, order), LP_OK);
    const int l1[4] = {2, 0, 3, 1};
    for (int i = 0; i < 4; i++) assert_int_equal(order[i], l1[i]);
    assert_true(score[1] == 4.0);
    o.criterion = LP_CRITERION_L2;
    assert_int_equal(lp_criteria_score(&o, u, 4, 2, score), LP_OK);
    assert_int_equal(lp_criteria_order(score, 4, order), LP_OK);
    const int l2[4] = {2, 1, 0, 3};
    for (int i = 0; i < 4; i++) assert_int_equal(order[i], l2[i]);
    assert_true(fabs(score[1] - sqrt(8.0)) < 1e-15);
    /* Ties are broken by index: equal scores keep index order, and the lower index is pruned first. */
    const double tied[5] = {1, 0.5, 1, 0.5, 1};
    assert_int_equal(lp_criteria_order(tied, 5, order), LP_OK);
    const int want[5] = {1, 3, 0, 2, 4};
    for (int i = 0; i < 5; i++) assert_int_equal(order[i], want[i]);
    int kept[3];
    assert_int_equal(lp_criteria_select(tied, 5, 2, kept), LP_OK);
    assert_int_equal(kept[0], 2);
    assert_int_equal(kept[1], 4);
    /* NaN weights are an error. */
    float un[4] = {1, NAN, 0, 0};
    assert_int_equal(lp_criteria_score(&o, un, 2, 2, score), LP_ERR_NUMERIC);
    lp_criterion cr;
    assert_int_equal(lp_criterion_parse("gm-exact", &cr), LP_OK);
    assert_int_equal(cr, LP_CRITERION_GM_EXACT);
    assert_string_equal(lp_criterion_name(LP_CRITERION_L2), "l2");
    assert_int_equal(lp_criterion_parse("fpgm", &cr), LP_ERR_ARG);
}

static void test_gm_prunes_planted_duplicate_first(void **state) {
    (void)state;
    /* Random units plus a copy of the most central one: the pair is the most replaceable, so the two
     * copies come first in the gm order (their scores are equal up to round-off). */
    enum { H = 12, D = 40 };
    float u[(H + 1) * D];
    lp_rng r;
    lp_rng_init(&r, 3, LP_RNG_STREAM_TEST);
    for (int i = 0; i < H * D; i++) u[i] = (float)lp_rng_normal(&r);
    lp_criteria_opts o;
    lp_criteria_opts_default(&o);
    double score[H + 1];
    int order[H + 1];
    assert_int_equal(lp_criteria_score(&o, u, H, D, score), LP_OK);
    assert_int_equal(lp_criteria_order(score, H, order), LP_OK);
    const int central = order[0];
    memcpy(u + H * D, u + central * D, sizeof(float) * D);
    assert_int_equal(lp_criteria_score(&o, u, H + 1, D, score), LP_OK);
    assert_int_equal(lp_criteria_order(score, H + 1, order), LP_OK);
    assert_true((order[0] == central && order[1] == H) || (order[0] == H && order[1] == central));
    /* Scores of exact duplicates agree to double round-off of the Gram matrix. */
    assert_true(fabs(score[central] - score[H]) < 1e-9 * score[H]);
}

static void test_random_criterion_reproducible_per_seed(void **state) {
    (void)state;
    enum { H = 50 };
    float u[H];
    memset(u, 0, sizeof u);
    lp_criteria_opts o;
    lp_criteria_opts_default(&o);
    o.criterion = LP_CRITERION_RANDOM;
    double s1[H], s2[H], s3[H], s4[H];
    assert_int_equal(lp_criteria_score(&o, u, H, 1, s1), LP_ERR_ARG); /* no rng */
    lp_rng a, b, c;
    lp_rng_init(&a, 77, LP_RNG_STREAM_PRUNE);
    lp_rng_init(&b, 77, LP_RNG_STREAM_PRUNE);
    lp_rng_init(&c, 78, LP_RNG_STREAM_PRUNE);
    o.rng = &a;
    assert_int_equal(lp_criteria_score(&o, u, H, 1, s1), LP_OK);
    assert_int_equal(lp_criteria_score(&o, u, H, 1, s4), LP_OK); /* the next group continues the stream */
    o.rng = &b;
    assert_int_equal(lp_criteria_score(&o, u, H, 1, s2), LP_OK);
    o.rng = &c;
    assert_int_equal(lp_criteria_score(&o, u, H, 1, s3), LP_OK);
    int k1[25], k2[25], k3[25], k4[25];
    assert_int_equal(lp_criteria_select(s1, H, 25, k1), LP_OK);
    assert_int_equal(lp_criteria_select(s2, H, 25, k2), LP_OK);
    assert_int_equal(lp_criteria_select(s3, H, 25, k3), LP_OK);
    assert_int_equal(lp_criteria_select(s4, H, 25, k4), LP_OK);
    assert_memory_equal(k1, k2, sizeof k1);
    assert_memory_not_equal(k1, k3, sizeof k1); /* C(50,25) choices: equal by chance ~1e-14 */
    assert_memory_not_equal(k1, k4, sizeof k1);
    for (int i = 1; i < 25; i++) assert_true(k1[i] > k1[i - 1]); /* ascending indices */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gm_scores_and_order_match_reference),
        cmocka_unit_test(test_covariance_matches_reference_in_any_chunking),
        cmocka_unit_test(test_eigenvalues_and_keep_counts_match_reference),
        cmocka_unit_test(test_stats_sequence_helper_uses_exactly_the_valid_steps),
        cmocka_unit_test(test_stats_robust_to_large_mean),
        cmocka_unit_test(test_target_rate_search_is_optimal_over_groups),
        cmocka_unit_test(test_uniform_rule_round_to_and_min_one_unit),
        cmocka_unit_test(test_sensitivity_rule),
        cmocka_unit_test(test_unit_vectors_layout),
        cmocka_unit_test(test_gm_exact_known_medians),
        cmocka_unit_test(test_norm_criteria_orders),
        cmocka_unit_test(test_gm_prunes_planted_duplicate_first),
        cmocka_unit_test(test_random_criterion_reproducible_per_seed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
