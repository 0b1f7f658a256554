/* test_metrics: GAP@20 / mAP / Hit@1 / PERR against reference/metrics.txt (numpy re-implementation of
 * the YouTube-8M starter code), invariance to batching and video order, hand cases (perfect predictions,
 * a video without labels, positives outside the top k, the score > 0 rule of PERR), the tie rule checked
 * against brute-force enumeration of orderings, the long-label-list path, and input errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/rng.h"
#include "core/status.h"
#include "eval/metrics.h"
#include "tests/common/refdata.h"

/* The metrics are ratios of integer counts accumulated in double; the only float32 effect is the
 * conversion of the reference scores, which keeps their order (distinct, well-separated scores). So the
 * results agree with the float64 reference to double rounding: 1e-12 absolute. */
#define EXACT_TOL 1e-12

static void finish(lp_metrics *m, lp_metrics_result *r) { assert_int_equal(lp_metrics_finish(m, r), LP_OK); }

static void assert_results_equal(const lp_metrics_result *a, const lp_metrics_result *b) {
    assert_true(fabs(a->gap - b->gap) < EXACT_TOL);
    assert_true(fabs(a->map - b->map) < EXACT_TOL);
    assert_true(fabs(a->hit1 - b->hit1) < EXACT_TOL);
    assert_true(fabs(a->perr - b->perr) < EXACT_TOL);
    assert_int_equal(a->n_videos, b->n_videos);
    assert_int_equal(a->n_positives, b->n_positives);
    assert_int_equal(a->map_classes, b->map_classes);
}

static void test_reference_case(void **state) {
    (void)state;
    lp_ref *ref = lp_ref_load("metrics.txt");
    const lp_ref_tensor *tp = lp_ref_get(ref, "predictions");
    const int B = tp->dims[0], C = tp->dims[1];
    float *pred = lp_ref_floats(tp);
    float *lab = lp_ref_floats(lp_ref_get(ref, "labels"));
    const double want_gap = lp_ref_get(ref, "gap_at_20")->v[0];
    const double want_hit = lp_ref_get(ref, "hit_at_1")->v[0];
    const double want_perr = lp_ref_get(ref, "perr")->v[0];
    const double want_map = lp_ref_get(ref, "map")->v[0];

    /* All at once. */
    lp_metrics m;
    assert_int_equal(lp_metrics_init(&m, C, 20), LP_OK);
    assert_int_equal(lp_metrics_add(&m, pred, lab, B), LP_OK);
    lp_metrics_result r;
    finish(&m, &r);
    assert_int_equal(r.n_videos, B);
    assert_true(fabs(r.gap - want_gap) < EXACT_TOL);
    assert_true(fabs(r.hit1 - want_hit) < EXACT_TOL);
    assert_true(fabs(r.perr - want_perr) < EXACT_TOL);
    assert_true(fabs(r.map - want_map) < EXACT_TOL);
    /* finish again (pool already sorted) gives the same. */
    lp_metrics_result r2;
    finish(&m, &r2);
    assert_results_equal(&r, &r2);

    /* Batches of 7 in reverse video order, through the label-list API: same numbers. */
    lp_metrics_reset(&m);
    int32_t *ids = malloc((size_t)C * sizeof *ids);
    for (int b = B - 1; b >= 0; b--) {
        int n = 0;
        for (int c = 0; c < C; c++)
            if (lab[(size_t)b * C + c] > 0) ids[n++] = c;
        assert_int_equal(lp_metrics_add_video(&m, pred + (size_t)b * C, ids, n), LP_OK);
    }
    finish(&m, &r2);
    assert_results_equal(&r, &r2);
    lp_metrics_reset(&m);
    for (int b0 = 0; b0 < B; b0 += 7) {
        int nb = B - b0 < 7 ? B - b0 : 7;
        assert_int_equal(lp_metrics_add(&m, pred + (size_t)b0 * C, lab + (size_t)b0 * C, nb), LP_OK);
    }
    finish(&m, &r2);
    assert_results_equal(&r, &r2);

    /* A different k changes GAP (guards against k being ignored): top 5 keeps fewer positives. */
    lp_metrics m5;
    assert_int_equal(lp_metrics_init(&m5, C, 5), LP_OK);
    assert_int_equal(lp_metrics_add(&m5, pred, lab, B), LP_OK);
    finish(&m5, &r2);
    assert_true(fabs(r2.gap - r.gap) > 1e-6);
    assert_true(fabs(r2.hit1 - r.hit1) < EXACT_TOL); /* Hit@1 and PERR do not depend on k */
    assert_true(fabs(r2.perr - r.perr) < EXACT_TOL);

    lp_metrics_free(&m5);
    lp_metrics_free(&m);
    free(ids);
    free(pred);
    free(lab);
    lp_ref_free(ref);
}

/* Perfect predictions give 1 for all four metrics: once with distinct scores (positives in (0.5, 1],
 * negatives in [0, 0.4)) and once with saturated 0/1 scores, where the tie rule must still give 1
 * (every tie group is all-positive or all-negative). Videos have 1..4 labels <= k. */
static void test_perfect_predictions(void **state) {
    (void)state;
    const int B = 50, C = 30;
    float *pred = calloc((size_t)B * C, sizeof(float)), *sat = calloc((size_t)B * C, sizeof(float));
    float *lab = calloc((size_t)B * C, sizeof(float));
    lp_rng rng;
    lp_rng_init(&rng, 7, LP_RNG_STREAM_INIT);
    for (int b = 0; b < B; b++) {
        int n = 1 + (int)lp_rng_below(&rng, 4);
        for (int j = 0; j < n; j++) lab[(size_t)b * C + lp_rng_below(&rng, (uint32_t)C)] = 1.0f;
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)b * C + c;
            pred[i] = lab[i] > 0 ? 0.5f + 0.5f * (float)lp_rng_uniform(&rng) : 0.4f * (float)lp_rng_uniform(&rng);
            sat[i] = lab[i];
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        lp_metrics m;
        assert_int_equal(lp_metrics_init(&m, C, 20), LP_OK);
        assert_int_equal(lp_metrics_add(&m, pass ? sat : pred, lab, B), LP_OK);
        lp_metrics_result r;
        finish(&m, &r);
        assert_true(fabs(r.gap - 1.0) < EXACT_TOL);
        assert_true(fabs(r.map - 1.0) < EXACT_TOL);
        assert_true(fabs(r.hit1 - 1.0) < EXACT_TOL);
        assert_true(fabs(r.perr - 1.0) < EXACT_TOL);
        lp_metrics_free(&m);
    }
    free(pred);
    free(sat);
    free(lab);
}

/* C = 3, k = 2. Video A: labels {0}, scores (0.9, 0.1, 0.2). Video B: no labels, scores (0.95, 0.5, 0.3).
 * Pool: A -> (0.9 +, c0), (0.2 -, c2); B -> (0.95 -, c0), (0.5 -, c1).
 * Sorted: 0.95-, 0.9+, 0.5-, 0.2-  ->  GAP = (1/1)·(1/2) = 0.5.
 * Hit@1 = (1 + 0)/2, PERR = (1 + 0)/2 (B counts as a video with precision 0, as in the starter code).
 * mAP: only class 0 has positives; its pool is 0.95-, 0.9+ -> AP 0.5; classes 1, 2 skipped. */
static void test_video_without_labels(void **state) {
    (void)state;
    const float pred[6] = {0.9f, 0.1f, 0.2f, 0.95f, 0.5f, 0.3f};
    const float lab[6] = {1, 0, 0, 0, 0, 0};
    lp_metrics m;
    assert_int_equal(lp_metrics_init(&m, 3, 2), LP_OK);
    assert_int_equal(lp_metrics_add(&m, pred, lab, 2), LP_OK);
    lp_metrics_result r;
    finish(&m, &r);
    assert_int_equal(r.n_videos, 2);
    assert_int_equal(r.n_positives, 1);
    assert_int_equal(r.map_classes, 1);
    assert_true(fabs(r.gap - 0.5) < EXACT_TOL);
    assert_true(fabs(r.hit1 - 0.5) < EXACT_TOL);
    assert_true(fabs(r.perr - 0.5) < EXACT_TOL);
    assert_true(fabs(r.map - 0.5) < EXACT_TOL);
    lp_metrics_free(&m);
}

/* Positives outside the top k still count in the denominators; PERR needs score > 0.
 * C = 4, k = 1. Video A: labels {0, 1}, scores (0.9, 0.1, 0.2, 0.3): pool (0.9 +).
 *   GAP = 1/2 (one of two positives retrieved, at rank 1). mAP: class 0 AP 1, class 1 AP 0 -> 0.5.
 *   PERR: top 2 are classes 0, 3 -> 1/2. Hit@1 = 1.
 * Then with video B: labels {2}, scores (-1, -2, 0, -3): its top 1 is class 2 (a positive with score 0),
 *   Hit@1 counts it (Hit@1 has no score rule), PERR does not. Pool adds (0 +, c2), all positives = 3:
 *   GAP = (1/1 + 2/2)/3 = 2/3; mAP = (1 + 0 + 1)/3; Hit@1 = 1; PERR = (0.5 + 0)/2. */
static void test_positives_outside_top_k_and_perr_score_rule(void **state) {
    (void)state;
    const float pa[4] = {0.9f, 0.1f, 0.2f, 0.3f};
    const int32_t la[2] = {0, 1};
    lp_metrics m;
    assert_int_equal(lp_metrics_init(&m, 4, 1), LP_OK);
    assert_int_equal(lp_metrics_add_video(&m, pa, la, 2), LP_OK);
    lp_metrics_result r;
    finish(&m, &r);
    assert_true(fabs(r.gap - 0.5) < EXACT_TOL);
    assert_true(fabs(r.map - 0.5) < EXACT_TOL);
    assert_true(fabs(r.perr - 0.5) < EXACT_TOL);
    assert_true(fabs(r.hit1 - 1.0) < EXACT_TOL);
    const float pb[4] = {-1.0f, -2.0f, 0.0f, -3.0f};
    const int32_t lb[1] = {2};
    assert_int_equal(lp_metrics_add_video(&m, pb, lb, 1), LP_OK);
    finish(&m, &r);
    assert_true(fabs(r.gap - 2.0 / 3.0) < EXACT_TOL);
    assert_true(fabs(r.map - 2.0 / 3.0) < EXACT_TOL);
    assert_true(fabs(r.hit1 - 1.0) < EXACT_TOL);
    assert_true(fabs(r.perr - 0.25) < EXACT_TOL);
    lp_metrics_free(&m);
}

/* AP of a fixed order (no ties considered): the plain starter-code loop. */
static double ap_fixed(const float *score, const int *pos, const int *perm, int n, int total) {
    double s = 0;
    int hits = 0;
    for (int i = 0; i < n; i++)
        if (pos[perm[i]]) s += (double)++hits / (i + 1);
    (void)score;
    return s / total;
}

static int next_perm(int *a, int n) {
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1]) i--;
    if (i < 0) return 0;
    int j = n - 1;
    while (a[j] <= a[i]) j--;
    int t = a[i]; a[i] = a[j]; a[j] = t;
    for (int l = i + 1, r = n - 1; l < r; l++, r--) { t = a[l]; a[l] = a[r]; a[r] = t; }
    return 1;
}

/* The tie rule: lp_metrics_ap equals the average, over all n! orderings of the items, of the AP of that
 * ordering stably sorted by score (i.e. the mean of the starter code's shuffle-then-sort). n = 7 items
 * with scores from {0, 1, 2} and 4 positives, total positives 5 (one never retrieved). Several random
 * cases; 1e-12 covers double rounding of a mean over 5040 terms. Plus the smallest case by hand:
 * two tied items, one positive -> (1 + 1/2)/2 = 0.75. */
static void test_tie_rule_is_expected_ap(void **state) {
    (void)state;
    lp_metrics_pair two[2] = {{1.0f, 0u << 1 | 1u}, {1.0f, 1u << 1 | 0u}};
    assert_true(fabs(lp_metrics_ap(two, 2, 1) - 0.75) < EXACT_TOL);
    lp_rng rng;
    lp_rng_init(&rng, 3, LP_RNG_STREAM_INIT);
    for (int trial = 0; trial < 8; trial++) {
        enum { N = 7 };
        float score[N];
        int pos[N] = {1, 1, 1, 1, 0, 0, 0};
        for (int i = 0; i < N; i++) score[i] = (float)lp_rng_below(&rng, 3);
        int perm[N], sorted[N];
        for (int i = 0; i < N; i++) perm[i] = i;
        double sum = 0;
        int count = 0;
        do {
            /* stable sort of the permutation by score descending */
            int k = 0;
            for (int s = 2; s >= 0; s--)
                for (int i = 0; i < N; i++)
                    if (score[perm[i]] == (float)s) sorted[k++] = perm[i];
            sum += ap_fixed(score, pos, sorted, N, 5);
            count++;
        } while (next_perm(perm, N));
        assert_int_equal(count, 5040);
        lp_metrics_pair items[N];
        for (int i = 0; i < N; i++) {
            items[i].score = score[i];
            items[i].cls_pos = (uint32_t)i << 1 | (uint32_t)pos[i];
        }
        double got = lp_metrics_ap(items, N, 5);
        assert_true(fabs(got - sum / count) < EXACT_TOL);
    }
    assert_true(lp_metrics_ap(two, 2, 0) == 0.0); /* no positives at all */
}

/* Top-k / top-1 ties: higher score first, then lower class index (numpy.argmax's rule). */
static void test_selection_ties_lower_class_first(void **state) {
    (void)state;
    const float flat[5] = {0.5f, 0.5f, 0.5f, 0.5f, 0.5f};
    lp_metrics m;
    assert_int_equal(lp_metrics_init(&m, 5, 2), LP_OK);
    int32_t l0 = 0, l4 = 4;
    assert_int_equal(lp_metrics_add_video(&m, flat, &l0, 1), LP_OK);
    lp_metrics_result r;
    finish(&m, &r);
    assert_true(r.hit1 == 1.0);
    /* Pool: the tied classes 0 (+) and 1 (-): expected AP (1 + 1/2)/2 = 0.75; class 0 alone gives mAP 1. */
    assert_true(fabs(r.gap - 0.75) < EXACT_TOL);
    assert_true(fabs(r.map - 1.0) < EXACT_TOL);
    lp_metrics_reset(&m);
    assert_int_equal(lp_metrics_add_video(&m, flat, &l4, 1), LP_OK);
    finish(&m, &r);
    assert_true(r.hit1 == 0.0);
    assert_true(r.gap == 0.0); /* class 4 is not in the top 2 (classes 0, 1) */
    lp_metrics_free(&m);
}

/* A video with more labels than the short insertion list (> 64): PERR through the full-sort path.
 * C = 200, labels = classes 0..99, score(c) = ((37 c) mod 200)/200, a permutation of distinct values.
 * The top 100 classes are those with (37 c mod 200) >= 100, so PERR = #{c < 100 : 37 c mod 200 >= 100}/100,
 * counted here directly (and 37·0 mod 200 = 0 is not > 0 anyway). */
static void test_many_labels_perr(void **state) {
    (void)state;
    enum { C = 200, L = 100 };
    float pred[C];
    int32_t labels[L];
    for (int c = 0; c < C; c++) pred[c] = (float)((37 * c) % C) / (float)C;
    int want = 0;
    for (int c = 0; c < L; c++) {
        labels[c] = c;
        want += (37 * c) % C >= C / 2;
    }
    lp_metrics m;
    assert_int_equal(lp_metrics_init(&m, C, 20), LP_OK);
    assert_int_equal(lp_metrics_add_video(&m, pred, labels, L), LP_OK);
    lp_metrics_result r;
    finish(&m, &r);
    assert_true(fabs(r.perr - (double)want / L) < EXACT_TOL);
    assert_true(want > 10 && want < 90); /* the case is not degenerate */
    lp_metrics_free(&m);
}

static void test_errors_and_duplicates(void **state) {
    (void)state;
    lp_metrics m;
    assert_int_equal(lp_metrics_init(&m, 0, 20), LP_ERR_ARG);
    lp_metrics_free(&m);
    assert_int_equal(lp_metrics_init(&m, 3, 0), LP_ERR_ARG);
    lp_metrics_free(&m);
    assert_int_equal(lp_metrics_init(&m, 3, 20), LP_OK);
    assert_int_equal(m.top_k, 3); /* clamped */
    float p[6] = {0.1f, 0.2f, 0.3f, 0.4f, NAN, 0.6f};
    float l[6] = {0, 0, 1, 1, 0, 0};
    assert_int_equal(lp_metrics_add(&m, p, l, 2), LP_ERR_NUMERIC);
    assert_non_null(strstr(lp_last_error(), "video 1 class 1"));
    assert_int_equal(m.n_videos, 0); /* nothing of the bad batch was added */
    int32_t bad = 3;
    assert_int_equal(lp_metrics_add_video(&m, p, &bad, 1), LP_ERR_ARG);
    assert_int_equal(m.n_videos, 0);
    /* Repeated labels count once: labels {2, 2} = one positive; top 1 is class 2 -> PERR 1, GAP 1. */
    int32_t dup[2] = {2, 2};
    assert_int_equal(lp_metrics_add_video(&m, p, dup, 2), LP_OK);
    lp_metrics_result r;
    finish(&m, &r);
    assert_int_equal(r.n_positives, 1);
    assert_true(fabs(r.perr - 1.0) < EXACT_TOL);
    assert_true(fabs(r.gap - 1.0) < EXACT_TOL);
    /* The scratch flags were cleared: a following video with no labels has no positives. */
    assert_int_equal(lp_metrics_add_video(&m, p, NULL, 0), LP_OK);
    finish(&m, &r);
    assert_int_equal(r.n_positives, 1);
    assert_true(fabs(r.hit1 - 0.5) < EXACT_TOL);
    lp_metrics_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_case),
        cmocka_unit_test(test_perfect_predictions),
        cmocka_unit_test(test_video_without_labels),
        cmocka_unit_test(test_positives_outside_top_k_and_perr_score_rule),
        cmocka_unit_test(test_tie_rule_is_expected_ap),
        cmocka_unit_test(test_selection_ties_lower_class_first),
        cmocka_unit_test(test_many_labels_perr),
        cmocka_unit_test(test_errors_and_duplicates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
