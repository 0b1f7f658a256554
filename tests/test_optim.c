/* test_optim: Adam against PyTorch (reference/adam.txt), SGD momentum and weight decay against
 * hand-computed steps, checkpoint-style state restore, global-norm clipping, NaN detection and the
 * exponential lr decay schedule, per-parameter learning rates (PyTorch's two LSTM biases). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <cblas.h>

#include "core/status.h"
#include "optim/optim.h"
#include "tests/common/refdata.h"

/* Adam, two steps, against PyTorch's float64 result. Parameters are O(1); each step moves them by about
 * lr = 0.01 and is a handful of float32 operations, so float32 vs float64 differ by a few ulp of 1
 * (~1e-7). atol 2e-6 is ~15 ulp; a wrong rule (no bias correction, eps inside the sqrt, AdamW-style decay,
 * a swapped β) moves parameters by >= 1e-4. */
static void test_adam_matches_pytorch(void **state) {
    (void)state;
    lp_ref *r = lp_ref_load("adam.txt");
    const lp_ref_tensor *hyp = lp_ref_get(r, "hyper_lr_beta1_beta2_eps");
    const lp_ref_tensor *p0 = lp_ref_get(r, "p0"), *p1 = lp_ref_get(r, "p1"), *p2 = lp_ref_get(r, "p2");
    float *p = lp_ref_floats(p0);
    float *g1 = lp_ref_floats(lp_ref_get(r, "g1"));
    float *g2 = lp_ref_floats(lp_ref_get(r, "g2"));
    size_t n = p0->n;

    lp_optim_config cfg = lp_optim_defaults(LP_OPTIM_ADAM);
    cfg.beta1 = (float)hyp->v[1];
    cfg.beta2 = (float)hyp->v[2];
    cfg.eps = (float)hyp->v[3];
    float lr = (float)hyp->v[0];
    lp_optim o;
    assert_int_equal(lp_optim_init(&o, n, &cfg), LP_OK);
    assert_int_equal(lp_optim_m_numel(&o), n);
    assert_int_equal(lp_optim_v_numel(&o), n);
    float *g1_copy = malloc(n * sizeof(float));
    memcpy(g1_copy, g1, n * sizeof(float));

    assert_int_equal(lp_optim_step(&o, p, g1, lr), LP_OK);
    assert_int_equal(o.t, 1);
    LP_ASSERT_CLOSE("adam p1", p, p1->v, n, 2e-6, 0);
    assert_memory_equal(g1, g1_copy, n * sizeof(float)); /* the gradient block is read-only */

    /* Save the state as a checkpoint would (m, v, t), continue in a fresh optimizer, and compare with
     * the original continuing: bit-identical, since resume must continue exactly. A third copy that
     * forgets t (t = 0) must differ: the bias correction depends on t. */
    float *pr = malloc(n * sizeof(float)), *pt = malloc(n * sizeof(float));
    memcpy(pr, p, n * sizeof(float));
    memcpy(pt, p, n * sizeof(float));
    lp_optim o2, o3;
    assert_int_equal(lp_optim_init(&o2, n, &cfg), LP_OK);
    assert_int_equal(lp_optim_init(&o3, n, &cfg), LP_OK);
    memcpy(o2.m, o.m, n * sizeof(float));
    memcpy(o2.v, o.v, n * sizeof(float));
    o2.t = o.t;
    memcpy(o3.m, o.m, n * sizeof(float));
    memcpy(o3.v, o.v, n * sizeof(float));

    assert_int_equal(lp_optim_step(&o, p, g2, lr), LP_OK);
    assert_int_equal(o.t, 2);
    LP_ASSERT_CLOSE("adam p2", p, p2->v, n, 2e-6, 0);
    assert_int_equal(lp_optim_step(&o2, pr, g2, lr), LP_OK);
    assert_memory_equal(p, pr, n * sizeof(float));
    assert_int_equal(lp_optim_step(&o3, pt, g2, lr), LP_OK);
    double maxdiff = 0;
    for (size_t i = 0; i < n; i++) maxdiff = fmax(maxdiff, fabs((double)pt[i] - p[i]));
    assert_true(maxdiff > 1e-4);

    /* reset: zero state and t. */
    lp_optim_reset(&o3);
    assert_int_equal(o3.t, 0);
    assert_true(o3.m[0] == 0.0f && o3.v[n - 1] == 0.0f);

    assert_int_equal(lp_optim_step(&o, p, g2, -1.0f), LP_ERR_ARG);
    assert_int_equal(o.t, 2);
    lp_optim_free(&o);
    lp_optim_free(&o2);
    lp_optim_free(&o3);
    free(pr);
    free(pt);
    free(g1_copy);
    free(p);
    free(g1);
    free(g2);
    lp_ref_free(r);
}

/* SGD with momentum μ = 0.5, lr = 0.5, three steps, by hand (all values are binary fractions, so float32
 * is exact and the comparison is ==):
 *   p0 = 1,  g = 1, 2, -1
 *   step 1: buf = g1 = 1                     p = 1    - 0.5·1    =  0.5
 *   step 2: buf = 0.5·1 + 2 = 2.5            p = 0.5  - 0.5·2.5  = -0.75
 *   step 3: buf = 0.5·2.5 - 1 = 0.25         p = -0.75 - 0.5·0.25 = -0.875
 * A second element with p0 = -2 and g = 4, 0, 0:
 *   buf = 4, p = -4;  buf = 2, p = -5;  buf = 1, p = -5.5
 * Wrong rules fail: dampening (1-μ)·g gives p1 = 0.75; a zero-initialised buffer with (1-μ) too;
 * lr inside the buffer (buf = μ·buf + lr·g) gives p2 = -0.625. */
/* Above 2^18 elements Adam splits its loop over OpenBLAS's thread count: the same bits at 1, 2 and 3
 * threads (each element's update does not depend on the split), with weight decay on. */
static void test_adam_threads_same_bits(void **state) {
    (void)state;
    const size_t n = ((size_t)1 << 18) + 12345;
    float *p[3], *g = malloc(n * sizeof *g);
    assert_non_null(g);
    lp_optim_config cfg = lp_optim_defaults(LP_OPTIM_ADAM);
    cfg.weight_decay = 0.01f;
    const int saved = openblas_get_num_threads();
    for (int k = 0; k < 3; k++) {
        p[k] = malloc(n * sizeof *p[k]);
        assert_non_null(p[k]);
        for (size_t i = 0; i < n; i++) p[k][i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        lp_optim o;
        assert_int_equal(lp_optim_init(&o, n, &cfg), LP_OK);
        openblas_set_num_threads(k + 1);
        for (int step = 0; step < 3; step++) {
            for (size_t i = 0; i < n; i++) g[i] = (float)(((i + 7 * (size_t)step) * 40503u) % 997) / 997.0f - 0.5f;
            assert_int_equal(lp_optim_step(&o, p[k], g, 1e-3f), LP_OK);
        }
        lp_optim_free(&o);
    }
    openblas_set_num_threads(saved);
    int moved = 0;
    for (size_t i = 0; i < n; i += 997) moved += p[0][i] != (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    assert_true(moved > 200); /* the steps did change the parameters */
    assert_memory_equal(p[0], p[1], n * sizeof(float));
    assert_memory_equal(p[0], p[2], n * sizeof(float));
    for (int k = 0; k < 3; k++) free(p[k]);
    free(g);
}

static void test_sgd_momentum_three_steps(void **state) {
    (void)state;
    lp_optim_config cfg = lp_optim_defaults(LP_OPTIM_SGD);
    cfg.momentum = 0.5f;
    lp_optim o;
    assert_int_equal(lp_optim_init(&o, 2, &cfg), LP_OK);
    assert_non_null(o.m);
    assert_null(o.v);
    assert_int_equal(lp_optim_m_numel(&o), 2);
    assert_int_equal(lp_optim_v_numel(&o), 0);
    float p[2] = {1.0f, -2.0f};
    const float g[3][2] = {{1.0f, 4.0f}, {2.0f, 0.0f}, {-1.0f, 0.0f}};
    const float want_p[3][2] = {{0.5f, -4.0f}, {-0.75f, -5.0f}, {-0.875f, -5.5f}};
    const float want_buf[3][2] = {{1.0f, 4.0f}, {2.5f, 2.0f}, {0.25f, 1.0f}};
    for (int s = 0; s < 3; s++) {
        assert_int_equal(lp_optim_step(&o, p, g[s], 0.5f), LP_OK);
        for (int i = 0; i < 2; i++) {
            assert_true(p[i] == want_p[s][i]);
            assert_true(o.m[i] == want_buf[s][i]);
        }
    }
    assert_int_equal(o.t, 3);
    lp_optim_free(&o);

    /* μ = 0: plain SGD, no buffer. p = 1 - 0.25·2 = 0.5. */
    cfg.momentum = 0.0f;
    assert_int_equal(lp_optim_init(&o, 1, &cfg), LP_OK);
    assert_null(o.m);
    float q = 1.0f, gq = 2.0f;
    assert_int_equal(lp_optim_step(&o, &q, &gq, 0.25f), LP_OK);
    assert_true(q == 0.5f);
    lp_optim_free(&o);
}

/* Coupled L2: g' = g + wd·p enters the update (PyTorch weight_decay), the gradient block is unchanged. */
static void test_weight_decay(void **state) {
    (void)state;
    /* SGD, wd = 0.25, lr = 0.5, p = 2, g = 1: g' = 1.5, p = 2 - 0.75 = 1.25 (exact). */
    lp_optim_config cfg = lp_optim_defaults(LP_OPTIM_SGD);
    cfg.weight_decay = 0.25f;
    lp_optim o;
    assert_int_equal(lp_optim_init(&o, 1, &cfg), LP_OK);
    float p = 2.0f, g = 1.0f;
    assert_int_equal(lp_optim_step(&o, &p, &g, 0.5f), LP_OK);
    assert_true(p == 1.25f);
    assert_true(g == 1.0f);
    lp_optim_free(&o);

    /* SGD with momentum 0.5 and wd 0.25: step 1 buf = 1 + 0.5 = 1.5, p = 2 - 0.75 = 1.25;
     * step 2 (g = 0): buf = 0.75 + 0.3125 = 1.0625, p = 1.25 - 0.53125 = 0.71875 (exact). */
    cfg.momentum = 0.5f;
    assert_int_equal(lp_optim_init(&o, 1, &cfg), LP_OK);
    p = 2.0f;
    assert_int_equal(lp_optim_step(&o, &p, &g, 0.5f), LP_OK);
    float zero = 0.0f;
    assert_int_equal(lp_optim_step(&o, &p, &zero, 0.5f), LP_OK);
    assert_true(p == 0.71875f);
    lp_optim_free(&o);

    /* Adam with g = 0 and wd = 0.1 at p = 2 (and -4): g' = wd·p, so the first step is
     * p -= lr·g'/(|g'| + eps) = p - lr·sign(p)·(1 - eps/|g'|) -> 1.99 (and -3.99). Decoupled decay (AdamW)
     * would give 2 - lr·wd·2 = 1.998 instead, and no decay leaves p at 2. Tolerance 1e-6: float32
     * rounding of numbers near 2 (ulp 2.4e-7) plus the eps/|g'| = 5e-8 term. */
    lp_optim_config ac = lp_optim_defaults(LP_OPTIM_ADAM);
    ac.weight_decay = 0.1f;
    assert_int_equal(lp_optim_init(&o, 2, &ac), LP_OK);
    float pa[2] = {2.0f, -4.0f}, ga[2] = {0.0f, 0.0f};
    assert_int_equal(lp_optim_step(&o, pa, ga, 0.01f), LP_OK);
    assert_true(fabsf(pa[0] - 1.99f) < 1e-6f);
    assert_true(fabsf(pa[1] + 3.99f) < 1e-6f);
    assert_true(ga[0] == 0.0f && ga[1] == 0.0f);
    lp_optim_free(&o);
}

/* Per-parameter learning rates (lp_optim_set_lr_scale), as PyTorch's parameter groups:
 *  - Adam and SGD with momentum: an element with multiplier s moves exactly as in an optimizer of its own
 *    at lr·s (bit for bit: s is a power of two, so lr·s and the step size scale without rounding);
 *  - an all-ones scale is bit-identical to no scale (the plain loop);
 *  - PyTorch's two bias vectors: b1 and b2, each with its own Adam state and the same gradient, sum to a
 *    single b = b1 + b2 trained with multiplier 2 (to rounding: 100 steps of ~1e-3 stay within 2e-6);
 *    at multiplier 1 the single b is > 1e-2 away, so the check can fail. */
static void test_lr_scale(void **state) {
    (void)state;
    enum { N = 6, STEPS = 100 };
    const float scale[N] = {1.0f, 2.0f, 1.0f, 0.5f, 2.0f, 4.0f}, ones[N] = {1, 1, 1, 1, 1, 1};
    for (int kind = 0; kind < 2; kind++) {
        lp_optim_config cfg = lp_optim_defaults(kind ? LP_OPTIM_SGD : LP_OPTIM_ADAM);
        cfg.momentum = kind ? 0.5f : 0.0f;
        const float lr = kind ? 0.01f : 1e-3f;
        float p[N], pone[N], pplain[N], g[N];
        lp_optim o, oone, oplain, single[N];
        float ps[N];
        assert_int_equal(lp_optim_init(&o, N, &cfg), LP_OK);
        assert_int_equal(lp_optim_init(&oone, N, &cfg), LP_OK);
        assert_int_equal(lp_optim_init(&oplain, N, &cfg), LP_OK);
        lp_optim_set_lr_scale(&o, scale);
        lp_optim_set_lr_scale(&oone, ones);
        for (int i = 0; i < N; i++) {
            assert_int_equal(lp_optim_init(&single[i], 1, &cfg), LP_OK);
            p[i] = pone[i] = pplain[i] = ps[i] = 0.25f * (float)(i - 2);
        }
        for (int t = 0; t < STEPS; t++) {
            for (int i = 0; i < N; i++) g[i] = sinf(0.7f * (float)(t * N + i)) + 0.1f * (float)i;
            assert_int_equal(lp_optim_step(&o, p, g, lr), LP_OK);
            assert_int_equal(lp_optim_step(&oone, pone, g, lr), LP_OK);
            assert_int_equal(lp_optim_step(&oplain, pplain, g, lr), LP_OK);
            for (int i = 0; i < N; i++)
                assert_int_equal(lp_optim_step(&single[i], &ps[i], &g[i], lr * scale[i]), LP_OK);
        }
        assert_memory_equal(p, ps, sizeof p);
        assert_memory_equal(pone, pplain, sizeof p);
        assert_true(fabsf(p[1] - pplain[1]) > 1e-3f); /* the multiplier did act */
        lp_optim_free(&o);
        lp_optim_free(&oone);
        lp_optim_free(&oplain);
        for (int i = 0; i < N; i++) lp_optim_free(&single[i]);
    }

    /* Two bias vectors against one at twice the rate (Adam, no weight decay). */
    lp_optim_config cfg = lp_optim_defaults(LP_OPTIM_ADAM);
    float two[2 * N], one[N], slow[N], g2[2 * N], g1[N], mult2[N];
    lp_optim otwo, oone, oslow;
    assert_int_equal(lp_optim_init(&otwo, 2 * N, &cfg), LP_OK);
    assert_int_equal(lp_optim_init(&oone, N, &cfg), LP_OK);
    assert_int_equal(lp_optim_init(&oslow, N, &cfg), LP_OK);
    for (int i = 0; i < N; i++) {
        two[i] = 0.05f * (float)(i - 3);
        two[N + i] = -0.03f * (float)(i - 1);
        one[i] = slow[i] = two[i] + two[N + i];
        mult2[i] = 2.0f;
    }
    lp_optim_set_lr_scale(&oone, mult2);
    for (int t = 0; t < STEPS; t++) {
        for (int i = 0; i < N; i++) g1[i] = g2[i] = g2[N + i] = cosf(0.3f * (float)(t + 5 * i)) - 0.2f;
        assert_int_equal(lp_optim_step(&otwo, two, g2, 1e-3f), LP_OK);
        assert_int_equal(lp_optim_step(&oone, one, g1, 1e-3f), LP_OK);
        assert_int_equal(lp_optim_step(&oslow, slow, g1, 1e-3f), LP_OK);
    }
    for (int i = 0; i < N; i++) {
        assert_true(fabsf(one[i] - (two[i] + two[N + i])) < 2e-6f);
        assert_true(fabsf(slow[i] - (two[i] + two[N + i])) > 1e-2f);
    }
    lp_optim_free(&otwo);
    lp_optim_free(&oone);
    lp_optim_free(&oslow);
}

static void test_config_check(void **state) {
    (void)state;
    lp_optim_config c = lp_optim_defaults(LP_OPTIM_ADAM);
    assert_int_equal(lp_optim_check(&c), LP_OK);
    c.beta1 = 1.0f;
    assert_int_equal(lp_optim_check(&c), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "beta1"));
    c = lp_optim_defaults(LP_OPTIM_ADAM);
    c.eps = 0.0f;
    assert_int_equal(lp_optim_check(&c), LP_ERR_ARG);
    c = lp_optim_defaults(LP_OPTIM_SGD);
    c.weight_decay = -1.0f;
    assert_int_equal(lp_optim_check(&c), LP_ERR_ARG);
    c = lp_optim_defaults(LP_OPTIM_SGD);
    c.momentum = NAN;
    lp_optim o;
    assert_int_equal(lp_optim_init(&o, 4, &c), LP_ERR_ARG);
    lp_optim_free(&o); /* safe after a failed init */
}

/* Clipping: grads (3, 4, 0) have norm 5. */
static void test_clip_grad_norm(void **state) {
    (void)state;
    float g[3] = {3.0f, 4.0f, 0.0f};
    double norm = -1;
    /* max_norm 10 > 5: untouched, pre-clip norm 5 (exact in double). */
    assert_int_equal(lp_optim_clip_grad_norm(g, 3, 10.0f, &norm), LP_OK);
    assert_true(norm == 5.0);
    assert_true(g[0] == 3.0f && g[1] == 4.0f);
    /* max_norm 1: scale 1/(5 + 1e-6) -> (0.6, 0.8)·(1 - 2e-7). Tolerance 1e-6: float32 rounding of the
     * scale and products (ulp ~6e-8) plus the 1e-6 guard's 1.2e-7 shift; clipping to norm 1 without the
     * guard would also pass, which is fine, anything else is >= 1e-3 off. */
    assert_int_equal(lp_optim_clip_grad_norm(g, 3, 1.0f, &norm), LP_OK);
    assert_true(norm == 5.0); /* pre-clip norm is returned */
    assert_true(fabsf(g[0] - 0.6f) < 1e-6f);
    assert_true(fabsf(g[1] - 0.8f) < 1e-6f);
    assert_true(g[2] == 0.0f);
    double after;
    assert_int_equal(lp_optim_grad_norm(g, 3, &after), LP_OK);
    assert_true(after <= 1.0 && after > 1.0 - 1e-6);
    /* max_norm <= 0: report only. */
    float h[2] = {30.0f, 40.0f};
    assert_int_equal(lp_optim_clip_grad_norm(h, 2, 0.0f, &norm), LP_OK);
    assert_true(norm == 50.0 && h[0] == 30.0f && h[1] == 40.0f);
}

/* The spike watch: nothing flagged before LP_GRAD_WATCH_MIN norms; then a norm over factor × the median of
 * the window is flagged with its ratio, one just under it is not; the window slides, so after 256 steps
 * at a new level the same norm is judged against that level. */
static void test_grad_watch(void **state) {
    (void)state;
    lp_grad_watch w;
    lp_grad_watch_init(&w, 1e4);
    for (int i = 0; i < LP_GRAD_WATCH_MIN; i++) /* the first steps: never flagged, however large */
        assert_true(lp_grad_watch_add(&w, i == 5 ? 1e9 : 3.0 + 0.01 * i) == 0);
    for (int i = LP_GRAD_WATCH_MIN; i < LP_GRAD_WATCH_WINDOW; i++) assert_true(lp_grad_watch_add(&w, 2.0 + (i % 3)) == 0);
    /* the median of the window is 3 (values 2, 3, 4 in equal shares, plus the first steps at 3.0-3.3 and the
     * 1e9): 2.9e4 = 9,667× is not a spike, 3.3e4 = 11,000× is */
    assert_true(lp_grad_watch_add(&w, 2.9e4) == 0);
    double r = lp_grad_watch_add(&w, 3.3e4);
    assert_true(fabs(r - 1.1e4) < 1e-6);
    /* 256 steps at 300: the old level has left the window; 3.3e4 is now 110×, 3.3e6 is 11,000× */
    for (int i = 0; i < LP_GRAD_WATCH_WINDOW; i++) assert_true(lp_grad_watch_add(&w, 300.0) == 0);
    assert_true(lp_grad_watch_add(&w, 3.3e4) == 0);
    assert_true(fabs(lp_grad_watch_add(&w, 3.3e6) - 1.1e4) < 1e-6);
}

/* Double accumulation: 4M gradients of 0.1f. The norm is sqrt(n)·0.1f to ~1e-12 relative in double;
 * a float32 accumulator stalls once the running sum's ulp exceeds the addend (a ~20% error here). The
 * 1e-9 relative tolerance allows double rounding over 4M additions (<= n·2^-53 ~ 5e-10). */
static void test_grad_norm_accumulates_in_double(void **state) {
    (void)state;
    const size_t n = 4u << 20;
    float *g = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) g[i] = 0.1f;
    double norm;
    assert_int_equal(lp_optim_grad_norm(g, n, &norm), LP_OK);
    double want = sqrt((double)n) * (double)0.1f;
    assert_true(fabs(norm - want) / want < 1e-9);
    /* n not a multiple of the unrolling: 3 elements, 0.5 each -> sqrt(0.75). */
    assert_int_equal(lp_optim_grad_norm(g, 3, &norm), LP_OK);
    assert_true(fabs(norm - sqrt(3.0) * 0.1f) < 1e-12);
    free(g);
}

static void test_nan_and_inf_grads_are_numeric_errors(void **state) {
    (void)state;
    float g[5] = {1.0f, 2.0f, NAN, 3.0f, 4.0f};
    float copy[5];
    memcpy(copy, g, sizeof g);
    double norm = 0;
    assert_int_equal(lp_optim_clip_grad_norm(g, 5, 1.0f, &norm), LP_ERR_NUMERIC);
    assert_non_null(strstr(lp_last_error(), "gradient 2 of 5"));
    assert_int_equal(memcmp(g, copy, sizeof g), 0); /* not scaled */
    g[2] = -INFINITY;
    assert_int_equal(lp_optim_grad_norm(g, 5, &norm), LP_ERR_NUMERIC);
    /* Finite gradients whose squares overflow double are impossible for float32 (max 3.4e38, squared
     * 1.2e77), so finite input always gives a finite norm: */
    float big[2] = {3.0e38f, 3.0e38f};
    assert_int_equal(lp_optim_grad_norm(big, 2, &norm), LP_OK);
    assert_true(isfinite(norm) && norm > 4.2e38);
}

static void test_lr_schedule(void **state) {
    (void)state;
    /* Staircase, base 0.5, rate 0.5 every 10 steps: steps 0..9 -> 0.5, 10..19 -> 0.25, 25 -> 0.125.
     * All exact binary fractions, so ==. */
    lp_lr_schedule s = {.base_lr = 0.5f, .decay_rate = 0.5f, .decay_steps = 10, .staircase = 1};
    assert_int_equal(lp_lr_schedule_check(&s), LP_OK);
    assert_true(lp_lr_schedule_at(&s, 0, 0) == 0.5f);
    assert_true(lp_lr_schedule_at(&s, 9, 0) == 0.5f);
    assert_true(lp_lr_schedule_at(&s, 10, 0) == 0.25f);
    assert_true(lp_lr_schedule_at(&s, 19, 0) == 0.25f);
    assert_true(lp_lr_schedule_at(&s, 25, 0) == 0.125f);
    /* Smooth: step 5 -> 0.5·0.5^0.5, step 15 -> 0.5·0.5^1.5. Tolerance: float32 rounding of the result
     * (relative 6e-8), checked at 1e-7 relative. */
    s.staircase = 0;
    assert_true(fabs(lp_lr_schedule_at(&s, 5, 0) - 0.5 * sqrt(0.5)) < 1e-7 * 0.5);
    assert_true(fabs(lp_lr_schedule_at(&s, 15, 0) - 0.5 * pow(0.5, 1.5)) < 1e-7 * 0.5);
    assert_true(lp_lr_schedule_at(&s, 10, 0) == 0.25f);
    /* The paper-code setting: 0.95 every 4M examples / 160 per batch = 25000 steps; after 100000 steps
     * (4 decays) lr = 2e-4·0.95^4. */
    lp_lr_schedule p = {.base_lr = 2e-4f, .decay_rate = 0.95f, .decay_steps = 25000, .staircase = 1};
    assert_true(fabs(lp_lr_schedule_at(&p, 100000, 0) - 2e-4 * pow(0.95, 4)) < 1e-7 * 2e-4 * 2);
    assert_true(lp_lr_schedule_at(&p, 99999, 0) == lp_lr_schedule_at(&p, 75000, 0));
    /* Per epoch (Zaremba's PTB recipes): lr 1, × 0.5 after epoch 4 — epochs 1..4 at 1, epoch 5 at 0.5,
     * epoch 7 at 0.125, whatever the step; the medium recipe's 0.8 is computed in double from the base
     * (not from its float rounding), as (float)(1 · 0.8^k). */
    lp_lr_schedule z = {.base_lr = 1, .decay_rate = 0.5, .per_epoch = 1, .decay_after = 4};
    assert_int_equal(lp_lr_schedule_check(&z), LP_OK);
    assert_true(lp_lr_schedule_at(&z, 999, 3) == 1.0f);
    assert_true(lp_lr_schedule_at(&z, 0, 4) == 0.5f);
    assert_true(lp_lr_schedule_at(&z, 5, 6) == 0.125f);
    z.decay_rate = 0.8;
    assert_true(lp_lr_schedule_at(&z, 0, 6) == (float)pow(0.8, 3));
    z.decay_after = -1;
    assert_int_equal(lp_lr_schedule_check(&z), LP_ERR_ARG);
    /* No decay. */
    s.decay_steps = 0;
    assert_true(lp_lr_schedule_at(&s, 1000, 0) == 0.5f);
    s.decay_steps = 10;
    s.decay_rate = 1.0f;
    assert_true(lp_lr_schedule_at(&s, 1000, 0) == 0.5f);
    /* Checks. */
    s.decay_rate = 1.5f;
    assert_int_equal(lp_lr_schedule_check(&s), LP_ERR_ARG);
    s.decay_rate = 0.5f;
    s.base_lr = 0.0f;
    assert_int_equal(lp_lr_schedule_check(&s), LP_ERR_ARG);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adam_matches_pytorch),
        cmocka_unit_test(test_adam_threads_same_bits),
        cmocka_unit_test(test_sgd_momentum_three_steps),
        cmocka_unit_test(test_weight_decay),
        cmocka_unit_test(test_lr_scale),
        cmocka_unit_test(test_config_check),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_grad_watch),
        cmocka_unit_test(test_grad_norm_accumulates_in_double),
        cmocka_unit_test(test_nan_and_inf_grads_are_numeric_errors),
        cmocka_unit_test(test_lr_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
