/* test_ops: the tape ops — a gradient check for every op of the registry (core/ops and the ops of
 * layers/ and lm/), and for the primitive ops of core/ops.h values against naive double-precision loops,
 * accumulation, no-grad mode and NULL propagation, plus proof that the gradient checker rejects wrong
 * backward functions and ops missing from the registry.
 *
 * The registry (check/registry.c) lists every op by name with its case, each case in
 * check/<module>_case.c. test_every_op_has_gradcheck runs them all; an op left out of the
 * registry fails every gradient check of a graph that uses it (test_gradcheck_rejects_unlisted_op). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/ops.h"
#include "core/rng.h"
#include "core/tape.h"
#include "check/gradcheck.h"

/* ---- small helpers ------------------------------------------------------------------------------ */

static lp_tape new_tape(void) {
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 16), LP_OK);
    return tp;
}

/* ---- every op of the registry ------------------------------------------------------------------- */

/* Every op in the registry (check/registry.c) has a case, the case passes, and it really
 * recorded a node of that op; no op is listed twice. */
static void test_every_op_has_gradcheck(void **state) {
    (void)state;
    int failed = 0;
    assert_true(lp_gc_n_cases >= 19); /* the 13 ops of core/ops, 4 of layers/, 2 of lm/lm_ops */
    for (int i = 0; i < lp_gc_n_cases; i++) {
        const lp_gc_case *c = &lp_gc_cases[i];
        assert_ptr_equal(lp_gc_case_find(c->op), c); /* the first entry of its name is this one */
        assert_non_null(c->run);
        lp_gc_result res;
        lp_gc_result_init(&res);
        lp_status st = c->run(NULL, &res);
        lp_gc_result_print(stderr, c->op, &res);
        if (st != LP_OK) fprintf(stderr, "%-12s could not run: %s\n", c->op, lp_last_error());
        int recorded = lp_gc_ops_count(&res.ops, c->op);
        if (recorded == 0) fprintf(stderr, "%-12s FAIL the case recorded no %s node\n", c->op, c->op);
        if (st != LP_OK || !res.ok || recorded == 0 || res.n_checked == 0 || !(res.max_abs_grad > 0))
            failed++;
    }
    assert_int_equal(failed, 0);
}

/* A graph with an op that is not in the registry fails the check, however right its gradients: the op
 * below is tanh, with a correct backward, under a name the registry does not know. */
static void unlisted_backward(lp_node *n) {
    const lp_tensor *y = n->out[0];
    size_t len = lp_tensor_numel(y);
    for (size_t i = 0; i < len; i++)
        n->in[0]->grad[i] += y->grad[i] * ((1.0f - y->data[i]) * (1.0f + y->data[i]));
}

static const lp_op_desc unlisted_op = {"unlisted", unlisted_backward};

static int fwd_unlisted(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    (void)n_in;
    out[0] = lp_op_tanh(tp, in[0]);
    if (out[0] && tp->grad_enabled && tp->n_nodes > 0) tp->nodes[tp->n_nodes - 1].op = &unlisted_op;
    return out[0] ? 1 : 0;
}

static void test_gradcheck_rejects_unlisted_op(void **state) {
    (void)state;
    float x[12];
    int d[2] = {3, 4};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 2, d, -1, 1, 71)};
    lp_gc_result r;
    assert_int_equal(lp_gradcheck(fwd_unlisted, NULL, in, 1, NULL, &r), LP_OK);
    lp_gc_result_print(stderr, "unlisted(must FAIL)", &r);
    assert_false(r.ok);
    assert_true(r.worst_ratio <= 1.0); /* the gradients are right: only the registry fails it */
    assert_int_equal(lp_gc_ops_count(&r.ops, "unlisted"), 1);
    assert_non_null(strstr(r.msg, "unlisted"));
}

/* An LSTM cell written with primitive ops (the teaching cell of layers/): many ops in one graph, the
 * cell state used twice, two outputs. */
static int fwd_cell(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    int H = *(int *)u;
    lp_tensor *x = in[0], *h = in[1], *c = in[2], *w = in[3], *b = in[4]; /* w [4H, F+H], b [4H] */
    lp_tensor *xh[2] = {x, h};
    lp_tensor *gates = lp_op_bias_add(tp, lp_op_matmul(tp, lp_op_concat(tp, xh, 2), w, 0, 1), b);
    lp_tensor *g4[4];
    int sizes[4] = {H, H, H, H};
    lp_op_split(tp, gates, 4, sizes, g4);
    lp_tensor *i = lp_op_sigmoid(tp, g4[0]), *f = lp_op_sigmoid(tp, g4[1]);
    lp_tensor *g = lp_op_tanh(tp, g4[2]), *o = lp_op_sigmoid(tp, g4[3]);
    lp_tensor *c2 = lp_op_add(tp, lp_op_mul(tp, f, c), lp_op_mul(tp, i, g));
    lp_tensor *h2 = lp_op_mul(tp, o, lp_op_tanh(tp, c2));
    out[0] = h2;
    out[1] = c2;
    return h2 && c2 ? 2 : 0;
}

static void test_gradcheck_primitive_lstm_cell(void **state) {
    (void)state;
    enum { B = 3, F = 4, H = 5 };
    float x[B * F], h[B * H], c[B * H], w[4 * H * (F + H)], b[4 * H];
    int dx[2] = {B, F}, dh[2] = {B, H}, dw[2] = {4 * H, F + H}, db[1] = {4 * H};
    lp_gc_input in[5] = {lp_gc_input_uniform("x", x, 2, dx, -1, 1, 201),
                         lp_gc_input_uniform("h", h, 2, dh, -1, 1, 202),
                         lp_gc_input_uniform("c", c, 2, dh, -1, 1, 203),
                         lp_gc_input_uniform("w", w, 2, dw, -0.5, 0.5, 204),
                         lp_gc_input_uniform("b", b, 1, db, -0.5, 0.5, 205)};
    int hh = H;
    lp_gc_result r;
    assert_int_equal(lp_gradcheck(fwd_cell, &hh, in, 5, NULL, &r), LP_OK);
    lp_gc_result_print(stderr, "lstm-cell", &r);
    assert_true(r.ok);
    assert_int_equal(lp_gc_ops_count(&r.ops, "split"), 1);
    assert_int_equal(lp_gc_ops_count(&r.ops, "sigmoid"), 3);
    assert_int_equal(lp_gc_ops_count(&r.ops, "mul"), 3);
    assert_int_equal(r.n_checked, (size_t)(B * F + 2 * B * H + 4 * H * (F + H) + 4 * H));
    /* A random subset is honoured: at most 10 elements of each input. */
    lp_gc_opts o;
    lp_gc_opts_default(&o);
    o.max_per_input = 10;
    assert_int_equal(lp_gradcheck(fwd_cell, &hh, in, 5, &o, &r), LP_OK);
    assert_true(r.ok);
    assert_int_equal(r.n_checked, 10 + 10 + 10 + 10 + 10);
}

/* ---- the checker rejects wrong backward functions ------------------------------------------------- */

/* Each mutant runs the real op, then points the recorded node at a descriptor with a broken backward. */
static void bw_tanh_sign(lp_node *n) {
    size_t len = lp_tensor_numel(n->in[0]);
    for (size_t i = 0; i < len; i++)
        n->in[0]->grad[i] -= n->out[0]->grad[i] * (1 - n->out[0]->data[i] * n->out[0]->data[i]);
}

static void bw_bce_no_mean(lp_node *n) { /* forgets the 1/B */
    size_t len = lp_tensor_numel(n->in[0]);
    for (size_t i = 0; i < len; i++)
        n->in[0]->grad[i] += n->out[0]->grad[0] * (lp_sigmoidf(n->in[0]->data[i]) - n->in[1]->data[i]);
}

static void bw_mean_t_sum(lp_node *n) { /* forgets the 1/T */
    lp_tensor *x = n->in[0];
    int B = x->dims[0], T = x->dims[1], F = x->dims[2];
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < F; j++) x->grad[((size_t)b * T + t) * F + j] += n->out[0]->grad[(size_t)b * F + j];
}

static void bw_mul_assign(lp_node *n) { /* = instead of += */
    size_t len = lp_tensor_numel(n->in[0]);
    for (size_t i = 0; i < len; i++) {
        n->in[0]->grad[i] = n->out[0]->grad[i] * n->in[1]->data[i];
        n->in[1]->grad[i] = n->out[0]->grad[i] * n->in[0]->data[i];
    }
}

static void bw_matmul_tb_ignored(lp_node *n) { /* square A·B^T, but dB computed as for A·B */
    lp_tensor *a = n->in[0], *b = n->in[1], *c = n->out[0];
    int S = a->dims[0];
    for (int i = 0; i < S; i++)
        for (int j = 0; j < S; j++)
            for (int k = 0; k < S; k++) {
                a->grad[i * S + k] += c->grad[i * S + j] * b->data[j * S + k]; /* dA correct */
                b->grad[k * S + j] += a->data[i * S + k] * c->grad[i * S + j]; /* dB transposed: wrong */
            }
}

static void bw_add_first_only(lp_node *n) { /* drops the second input's gradient */
    size_t len = lp_tensor_numel(n->in[0]);
    for (size_t i = 0; i < len; i++) n->in[0]->grad[i] += n->out[0]->grad[i];
}

static int fwd_mutant(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    /* Each named as the op it breaks, so the registry knows it and only the numbers can fail it. */
    static const lp_op_desc mutants[6] = {
        {"tanh", bw_tanh_sign}, {"bce_logits", bw_bce_no_mean},      {"mean_t", bw_mean_t_sum},
        {"mul", bw_mul_assign}, {"matmul", bw_matmul_tb_ignored}, {"add", bw_add_first_only},
    };
    int which = *(int *)u;
    switch (which) {
    case 0: out[0] = lp_op_tanh(tp, in[0]); break;
    case 1: out[0] = lp_op_bce_logits(tp, in[0], in[1]); break;
    case 2: out[0] = lp_op_mean_t(tp, in[0], NULL); break;
    case 3: out[0] = lp_op_mul(tp, in[0], in[1]); break;
    case 4: out[0] = lp_op_matmul(tp, in[0], in[1], 0, 1); break;
    default: out[0] = lp_op_add(tp, in[0], in[1]); break;
    }
    if (!out[0]) return 0;
    if (tp->grad_enabled && tp->n_nodes > 0) tp->nodes[tp->n_nodes - 1].op = &mutants[which];
    return 1;
}

static void test_gradcheck_rejects_wrong_backward(void **state) {
    (void)state;
    float a[36], b[36];
    int d2[2] = {3, 4}, dsq[2] = {4, 4}, d3[3] = {2, 3, 4};
    for (int which = 0; which < 6; which++) {
        lp_gc_input in[2];
        int n_in = 2;
        switch (which) {
        case 0: in[0] = lp_gc_input_uniform("x", a, 2, d2, -2, 2, 301); n_in = 1; break;
        case 1:
            in[0] = lp_gc_input_uniform("z", a, 2, d2, -3, 3, 302);
            in[1] = lp_gc_input_uniform("y", b, 2, d2, 0, 1, 303);
            in[1].no_grad = 1;
            break;
        case 2: in[0] = lp_gc_input_uniform("x", a, 3, d3, -1, 1, 304); n_in = 1; break;
        case 4:
            in[0] = lp_gc_input_uniform("a", a, 2, dsq, -1, 1, 305);
            in[1] = lp_gc_input_uniform("b", b, 2, dsq, -1, 1, 306);
            break;
        default:
            in[0] = lp_gc_input_uniform("a", a, 2, d2, -1, 1, 307);
            in[1] = lp_gc_input_uniform("b", b, 2, d2, -1, 1, 308);
            break;
        }
        lp_gc_result r;
        assert_int_equal(lp_gradcheck(fwd_mutant, &which, in, n_in, NULL, &r), LP_OK);
        char what[32];
        snprintf(what, sizeof what, "mutant%d(must FAIL)", which);
        lp_gc_result_print(stderr, what, &r);
        assert_false(r.ok);
        if (which == 3) { /* assignment: values right for a single use, accumulation wrong */
            assert_false(r.accumulate_ok);
        } else {
            assert_true(r.worst_ratio > 10); /* far outside, not borderline */
        }
    }
}

/* ---- values against naive double loops ------------------------------------------------------------ */

static void test_matmul_values(void **state) {
    (void)state;
    enum { M = 5, K = 7, N = 6 };
    float a[M * K], b[K * N];
    lp_gc_fill_uniform(a, M * K, -1, 1, 401);
    lp_gc_fill_uniform(b, K * N, -1, 1, 402);
    lp_tape tp = new_tape();
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int da[2] = {ta ? K : M, ta ? M : K}, db[2] = {tb ? N : K, tb ? K : N};
            lp_tensor *A = lp_tape_view(&tp, a, NULL, 2, da), *Bt = lp_tape_view(&tp, b, NULL, 2, db);
            lp_tensor *C = lp_op_matmul(&tp, A, Bt, ta, tb);
            assert_non_null(C);
            assert_int_equal(C->ndim, 2);
            assert_int_equal(C->dims[0], M);
            assert_int_equal(C->dims[1], N);
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0, sa = 0;
                    for (int k = 0; k < K; k++) {
                        double av = ta ? a[k * M + i] : a[i * K + k], bv = tb ? b[j * K + k] : b[k * N + j];
                        s += av * bv;
                        sa += fabs(av * bv);
                    }
                    /* float32 dot product of K=7 terms: error <= K * 2^-24 * sum|ab|; 1e-5 is safe, a
                     * wrong stride or transpose is off by O(1). */
                    assert_true(fabs(C->data[i * N + j] - s) <= 1e-5 * sa + 1e-7);
                }
        }
    /* Leading axes collapsed: x [2,3,K] · W^T with W [N,K] -> [2,3,N]. */
    float x[2 * 3 * K];
    lp_gc_fill_uniform(x, 2 * 3 * K, -1, 1, 403);
    int dx[3] = {2, 3, K}, dw[2] = {N, K};
    lp_tensor *X = lp_tape_view(&tp, x, NULL, 3, dx), *W = lp_tape_view(&tp, b, NULL, 2, dw);
    lp_tensor *Y = lp_op_matmul(&tp, X, W, 0, 1);
    assert_non_null(Y);
    assert_int_equal(Y->ndim, 3);
    assert_int_equal(Y->dims[0], 2);
    assert_int_equal(Y->dims[1], 3);
    assert_int_equal(Y->dims[2], N);
    for (int r = 0; r < 6; r++)
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int k = 0; k < K; k++) {
                s += (double)x[r * K + k] * b[j * K + k];
                sa += fabs((double)x[r * K + k] * b[j * K + k]);
            }
            assert_true(fabs(Y->data[r * N + j] - s) <= 1e-5 * sa + 1e-7); /* as above */
        }
    lp_tape_free(&tp);
}

static void test_elementwise_values(void **state) {
    (void)state;
    enum { N = 12 };
    float a[N], b[3], c[N];
    lp_gc_fill_uniform(a, N, -3, 3, 501);
    lp_gc_fill_uniform(b, 3, -1, 1, 502);
    lp_gc_fill_uniform(c, N, -3, 3, 503);
    a[0] = 1000.0f; /* saturation: no overflow, no NaN */
    a[1] = -1000.0f;
    a[2] = 88.0f;
    a[3] = -104.0f;
    lp_tape tp = new_tape();
    int d[2] = {4, 3}, db[1] = {3};
    lp_tensor *A = lp_tape_view(&tp, a, NULL, 2, d), *Bb = lp_tape_view(&tp, b, NULL, 1, db),
              *Cc = lp_tape_view(&tp, c, NULL, 2, d);
    lp_tensor *add = lp_op_add(&tp, A, Cc), *mul = lp_op_mul(&tp, A, Cc), *ba = lp_op_bias_add(&tp, A, Bb);
    lp_tensor *sg = lp_op_sigmoid(&tp, A), *th = lp_op_tanh(&tp, A);
    assert_non_null(add);
    assert_non_null(mul);
    assert_non_null(ba);
    assert_non_null(sg);
    assert_non_null(th);
    for (int i = 0; i < N; i++) {
        double x = a[i];
        /* One float32 rounding each: 2^-24 relative (1e-6 relative + 1e-30 absolute is generous). */
        assert_true(fabs(add->data[i] - (x + c[i])) <= 1e-6 * fabs(x + c[i]) + 1e-30);
        assert_true(fabs(mul->data[i] - x * c[i]) <= 1e-6 * fabs(x * c[i]) + 1e-30);
        assert_true(fabs(ba->data[i] - (x + b[i % 3])) <= 1e-6 * fabs(x + b[i % 3]) + 1e-30);
        /* libm expf/tanhf are accurate to a few ulp; 1e-6 relative, 1e-30 absolute for the tiny
         * sigmoid(-104) ~ 7e-46 (subnormal or flushed to 0, never NaN). */
        double s = 1.0 / (1.0 + exp(-x));
        assert_true(isfinite(sg->data[i]) && sg->data[i] >= 0 && sg->data[i] <= 1);
        assert_true(fabs(sg->data[i] - s) <= 1e-6 * s + 1e-30);
        assert_true(fabs(th->data[i] - tanh(x)) <= 1e-6 * fabs(tanh(x)) + 1e-30);
    }
    assert_true(sg->data[0] == 1.0f && sg->data[1] == 0.0f);
    lp_tape_free(&tp);
}

/* tanh's backward near saturation: dx = (1 - y)(1 + y) of the float output y, to float rounding. With
 * y = 1 - δ the form 1 - y·y loses up to ~1e-4 of the result where δ² nears the float spacing below 1
 * (δ ~ 2e-4, x ~ 4.6), so a grid over x in [3.5, 6] tells the two apart. */
static void test_tanh_backward_near_saturation(void **state) {
    (void)state;
    enum { N = 2048 };
    static float x[N], g[N];
    for (int i = 0; i < N; i++) {
        x[i] = (i % 2 ? -1.0f : 1.0f) * (3.5f + 2.5f * (float)i / N);
        g[i] = 0.0f;
    }
    lp_tape tp = new_tape();
    int d[1] = {N};
    lp_tensor *X = lp_tape_view(&tp, x, g, 1, d);
    lp_tensor *Y = lp_op_tanh(&tp, X);
    assert_int_equal(lp_tape_backward(&tp, lp_op_sum(&tp, Y)), LP_OK);
    for (int i = 0; i < N; i++) {
        double y = Y->data[i], want = (1.0 - y) * (1.0 + y);
        assert_true(fabs(g[i] - want) <= 2e-7 * want);
    }
    lp_tape_free(&tp);
}

/* Reference BCE for one element in double. For |z| <= 30 the textbook form is accurate in double; for
 * larger |z| only the linear part survives (log1p(exp(-|z|)) < 1e-13). Written independently of the
 * op's form: -y log(s) - (1-y) log(1-s). */
static double bce_ref(double z, double y) {
    if (fabs(z) > 30) return z > 0 ? z * (1 - y) : -z * y;
    double s = 1.0 / (1.0 + exp(-z));
    return -y * log(s) - (1 - y) * log(1 - s);
}

static void test_bce_values(void **state) {
    (void)state;
    enum { B = 3, C = 4 };
    float z[B * C], y[B * C], g[B * C] = {0};
    lp_gc_fill_uniform(z, B * C, -5, 5, 601);
    lp_gc_fill_uniform(y, B * C, 0, 1, 602);
    /* Large logits with both hard targets: a naive log(sigmoid) would give inf or NaN here. */
    z[0] = 1000.0f, y[0] = 0.0f;
    z[1] = -1000.0f, y[1] = 1.0f;
    z[2] = 1000.0f, y[2] = 1.0f;
    z[3] = -1000.0f, y[3] = 0.0f;
    z[4] = 100.0f, y[4] = 0.25f;
    lp_tape tp = new_tape();
    int d[2] = {B, C};
    lp_tensor *Z = lp_tape_view(&tp, z, g, 2, d), *Y = lp_tape_view(&tp, y, NULL, 2, d);
    lp_tensor *L = lp_op_bce_logits(&tp, Z, Y);
    assert_non_null(L);
    assert_int_equal(L->ndim, 0);
    double want = 0;
    for (int i = 0; i < B * C; i++) want += bce_ref(z[i], y[i]);
    want /= B;
    assert_true(isfinite(L->data[0]));
    /* Terms up to 1000 summed in double and rounded once to float32: 1e-6 relative. */
    assert_true(fabs(L->data[0] - want) <= 1e-6 * fabs(want));
    assert_int_equal(lp_tape_backward(&tp, L), LP_OK);
    for (int i = 0; i < B * C; i++) {
        double s = 1.0 / (1.0 + exp(-(double)z[i]));
        double gi = (s - y[i]) / B;
        assert_true(isfinite(g[i]));
        assert_true(fabs(g[i] - gi) <= 1e-6); /* float32 sigmoid, |g| <= 1/B: 1e-6 absolute */
    }
    lp_tape_free(&tp);
}

static void test_shape_op_values(void **state) {
    (void)state;
    enum { B = 2, T = 4, F = 3 };
    float x[B * T * F], p[B * 2];
    for (int i = 0; i < B * T * F; i++) x[i] = (float)(i + 1); /* distinct values: a wrong index shows */
    for (int i = 0; i < B * 2; i++) p[i] = (float)(-i - 1);
    lp_tape tp = new_tape();
    int dx[3] = {B, T, F}, dp[3] = {B, 1, 2};
    lp_tensor *X = lp_tape_view(&tp, x, NULL, 3, dx), *P = lp_tape_view(&tp, p, NULL, 3, dp);

    /* slice_t */
    lp_tensor *s = lp_op_slice_t(&tp, X, 2);
    assert_non_null(s);
    assert_int_equal(s->ndim, 2);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < F; j++) assert_true(s->data[b * F + j] == x[(b * T + 2) * F + j]);

    /* mean_t, all steps and per-sequence lengths */
    int len[B] = {3, 1};
    lp_tensor *m = lp_op_mean_t(&tp, X, NULL), *ml = lp_op_mean_t(&tp, X, len);
    assert_non_null(m);
    assert_non_null(ml);
    for (int b = 0; b < B; b++)
        for (int j = 0; j < F; j++) {
            double sa = 0, sl = 0;
            for (int t = 0; t < T; t++) sa += x[(b * T + t) * F + j];
            for (int t = 0; t < len[b]; t++) sl += x[(b * T + t) * F + j];
            /* sums of small integers are exact in float; one rounding for the scale: 1e-6 relative */
            assert_true(fabs(m->data[b * F + j] - sa / T) <= 1e-6 * sa / T);
            assert_true(fabs(ml->data[b * F + j] - sl / len[b]) <= 1e-6 * sl / len[b]);
        }

    /* concat of 3-D tensors, then split back into the same blocks */
    lp_tensor *parts_in[2] = {X, P};
    int d1[3] = {B, 1, F};
    lp_tensor *X1 = lp_tape_view(&tp, x, NULL, 3, d1); /* first rows of x viewed as [B,1,F] */
    parts_in[0] = X1;
    lp_tensor *cat = lp_op_concat(&tp, parts_in, 2);
    assert_non_null(cat);
    assert_int_equal(cat->dims[2], F + 2);
    for (int b = 0; b < B; b++) {
        for (int j = 0; j < F; j++) assert_true(cat->data[b * (F + 2) + j] == x[b * F + j]);
        for (int j = 0; j < 2; j++) assert_true(cat->data[b * (F + 2) + F + j] == p[b * 2 + j]);
    }
    lp_tensor *back[2];
    int sizes[2] = {F, 2};
    assert_int_equal(lp_op_split(&tp, cat, 2, sizes, back), LP_OK);
    assert_memory_equal(back[0]->data, x, sizeof(float) * B * F);
    assert_memory_equal(back[1]->data, p, sizeof p);
    assert_int_equal(back[1]->dims[2], 2);

    /* sum (exact for these integers) */
    lp_tensor *sum = lp_op_sum(&tp, X);
    assert_non_null(sum);
    assert_int_equal(sum->ndim, 0);
    assert_true(sum->data[0] == (float)(B * T * F * (B * T * F + 1) / 2));
    lp_tape_free(&tp);
}

/* ---- dropout -------------------------------------------------------------------------------------- */

static void test_dropout(void **state) {
    (void)state;
    enum { N = 100000 };
    static float x[N], g[N];
    lp_gc_fill_uniform(x, N, 0.5, 1.5, 701); /* never 0, so a zero output means "dropped" */
    lp_tape tp = new_tape();
    int d[2] = {100, 1000};
    lp_rng rng, rng0;
    lp_rng_init(&rng, 9, LP_RNG_STREAM_DROPOUT);
    rng0 = rng;

    /* p == 0 and inference: the very same tensor, no draw, no node */
    lp_tensor *X = lp_tape_view(&tp, x, g, 2, d);
    assert_ptr_equal(lp_op_dropout(&tp, X, 0.0f, &rng), X);
    lp_tape_set_grad(&tp, 0);
    lp_tensor *Xi = lp_tape_view(&tp, x, g, 2, d);
    assert_ptr_equal(lp_op_dropout(&tp, Xi, 0.4f, &rng), Xi);
    assert_int_equal(tp.n_nodes, 0);
    assert_memory_equal(&rng, &rng0, sizeof rng);
    lp_tape_set_grad(&tp, 1);

    /* training: rate, scaling, saved mask used by backward */
    const float p = 0.3f;
    lp_tensor *Y = lp_op_dropout(&tp, X, p, &rng);
    assert_non_null(Y);
    assert_int_equal(tp.n_nodes, 1);
    int dropped = 0;
    float s = (float)(1.0 / (1.0 - p));
    for (int i = 0; i < N; i++) {
        if (Y->data[i] == 0.0f)
            dropped++;
        else
            assert_true(Y->data[i] == x[i] * s); /* the same float product as the op: exact */
    }
    /* Binomial(N, 0.3): sd = sqrt(N p (1-p)) = 145; 7 sd = 1015 (a rate of p/2 or 1-p is far off). */
    assert_true(abs(dropped - (int)(p * N)) < 1015);
    lp_tensor *sum = lp_op_sum(&tp, Y);
    assert_int_equal(lp_tape_backward(&tp, sum), LP_OK);
    for (int i = 0; i < N; i++) assert_true(g[i] == (Y->data[i] == 0.0f ? 0.0f : s));

    /* same seed, same mask; another seed, another mask */
    lp_rng r1, r2;
    lp_rng_init(&r1, 9, LP_RNG_STREAM_DROPOUT);
    lp_rng_init(&r2, 10, LP_RNG_STREAM_DROPOUT);
    lp_tensor *Y1 = lp_op_dropout(&tp, X, p, &r1), *Y2 = lp_op_dropout(&tp, X, p, &r2);
    assert_memory_equal(Y1->data, Y->data, sizeof(float) * N);
    int differ = 0;
    for (int i = 0; i < N; i++) differ += (Y2->data[i] == 0.0f) != (Y->data[i] == 0.0f);
    assert_true(differ > N / 10); /* independent masks differ in 2p(1-p) = 42% of places */

    /* input without grad (features): the mask still applies in training, but no node */
    int before = tp.n_nodes;
    lp_tensor *Xc = lp_tape_view(&tp, x, NULL, 2, d);
    lp_tensor *Yc = lp_op_dropout(&tp, Xc, p, &r1);
    assert_ptr_not_equal(Yc, Xc);
    assert_null(Yc->grad);
    assert_int_equal(tp.n_nodes, before);
    int dc = 0;
    for (int i = 0; i < N; i++) dc += Yc->data[i] == 0.0f;
    assert_true(abs(dc - (int)(p * N)) < 1015); /* as above */
    lp_tape_free(&tp);
}

/* ---- accumulation, no-grad mode, NULL propagation --------------------------------------------------- */

static void test_accumulation(void **state) {
    (void)state;
    enum { N = 8, H = 3 };
    float x[N], g[N];
    lp_gc_fill_uniform(x, N, -2, 2, 801);
    for (int i = 0; i < N; i++) g[i] = 0.5f; /* a leaf grad that already holds something keeps it */
    lp_tape tp = new_tape();
    int d[1] = {N};
    lp_tensor *X = lp_tape_view(&tp, x, g, 1, d);
    /* x used by two different ops: L = sum(tanh(x) + sigmoid(x)) */
    lp_tensor *L = lp_op_sum(&tp, lp_op_add(&tp, lp_op_tanh(&tp, X), lp_op_sigmoid(&tp, X)));
    assert_int_equal(lp_tape_backward(&tp, L), LP_OK);
    for (int i = 0; i < N; i++) {
        double t = tanh(x[i]), s = 1 / (1 + exp(-(double)x[i]));
        double want = 0.5 + (1 - t * t) + s * (1 - s);
        assert_true(fabs(g[i] - want) <= 1e-6); /* float32 derivative terms of order 1 */
    }

    /* One weight matrix used at two time steps, like an RNN: dW = x1^T dy1 + x2^T dy2 = (x1+x2)^T 1 */
    lp_tape_reset(&tp);
    float w[H * N], gw[H * N] = {0}, x1[N], x2[N];
    lp_gc_fill_uniform(w, H * N, -1, 1, 802);
    lp_gc_fill_uniform(x1, N, -1, 1, 803);
    lp_gc_fill_uniform(x2, N, -1, 1, 804);
    int dw[2] = {H, N}, dxr[2] = {1, N};
    lp_tensor *W = lp_tape_view(&tp, w, gw, 2, dw);
    lp_tensor *X1 = lp_tape_view(&tp, x1, NULL, 2, dxr), *X2 = lp_tape_view(&tp, x2, NULL, 2, dxr);
    lp_tensor *L2 = lp_op_sum(&tp, lp_op_add(&tp, lp_op_matmul(&tp, X1, W, 0, 1), lp_op_matmul(&tp, X2, W, 0, 1)));
    assert_int_equal(lp_tape_backward(&tp, L2), LP_OK);
    for (int h = 0; h < H; h++)
        for (int j = 0; j < N; j++)
            assert_true(fabs(gw[h * N + j] - ((double)x1[j] + x2[j])) <= 1e-6); /* two float adds */
    lp_tape_free(&tp);
}

/* Calls every op once on a, b ([B,T,F] = [2,3,4]) and returns how many returned non-NULL. */
static int call_every_op(lp_tape *tp, lp_tensor *a, lp_tensor *b, lp_tensor *bias, lp_tensor *w,
                         lp_tensor **outs) {
    lp_rng rng;
    lp_rng_init(&rng, 1, LP_RNG_STREAM_DROPOUT);
    lp_tensor *ab[2] = {a, b}, *sp[2];
    int sizes[2] = {1, 3};
    int n = 0;
    outs[n++] = lp_op_matmul(tp, a, w, 0, 1);
    outs[n++] = lp_op_add(tp, a, b);
    outs[n++] = lp_op_bias_add(tp, a, bias);
    outs[n++] = lp_op_mul(tp, a, b);
    outs[n++] = lp_op_sigmoid(tp, a);
    outs[n++] = lp_op_tanh(tp, a);
    outs[n++] = lp_op_concat(tp, ab, 2);
    lp_op_split(tp, a, 2, sizes, sp);
    outs[n++] = sp[0];
    outs[n++] = sp[1];
    outs[n++] = lp_op_slice_t(tp, a, 1);
    outs[n++] = lp_op_mean_t(tp, a, NULL);
    outs[n++] = lp_op_sum(tp, a);
    outs[n++] = lp_op_bce_logits(tp, a, b);
    outs[n++] = lp_op_dropout(tp, a, 0.5f, &rng);
    int ok = 0;
    for (int i = 0; i < n; i++) ok += outs[i] != NULL;
    return ok;
}
enum { N_EVERY = 14 };

static void test_nograd_records_nothing(void **state) {
    (void)state;
    static float a[24], b[24], ga[24], gb[24], bias[4], gbias[4], w[20], gw[20];
    lp_gc_fill_uniform(a, 24, -1, 1, 901);
    lp_gc_fill_uniform(b, 24, 0, 1, 902);
    int d[3] = {2, 3, 4}, db[1] = {4}, dw[2] = {5, 4};
    lp_tensor *outs[N_EVERY];
    lp_tape tp = new_tape();

    /* gradients disabled: nothing recorded, no grad anywhere, dropout is the identity */
    lp_tape_set_grad(&tp, 0);
    lp_tensor *A = lp_tape_view(&tp, a, ga, 3, d), *B = lp_tape_view(&tp, b, gb, 3, d);
    lp_tensor *Bi = lp_tape_view(&tp, bias, gbias, 1, db), *W = lp_tape_view(&tp, w, gw, 2, dw);
    assert_int_equal(call_every_op(&tp, A, B, Bi, W, outs), N_EVERY);
    assert_int_equal(tp.n_nodes, 0);
    for (int i = 0; i < N_EVERY; i++) assert_null(outs[i]->grad);
    assert_ptr_equal(outs[N_EVERY - 1], A);

    /* gradients enabled but only constants: nothing recorded either */
    lp_tape_set_grad(&tp, 1);
    lp_tape_reset(&tp);
    A = lp_tape_view(&tp, a, NULL, 3, d);
    B = lp_tape_view(&tp, b, NULL, 3, d);
    Bi = lp_tape_view(&tp, bias, NULL, 1, db);
    W = lp_tape_view(&tp, w, NULL, 2, dw);
    assert_int_equal(call_every_op(&tp, A, B, Bi, W, outs), N_EVERY);
    assert_int_equal(tp.n_nodes, 0);
    for (int i = 0; i < N_EVERY; i++) assert_null(outs[i]->grad);

    /* with a grad-carrying input: one node per op call (split is one node with two outputs) */
    lp_tape_reset(&tp); /* the views above lived in the arena: make new ones */
    A = lp_tape_view(&tp, a, ga, 3, d);
    B = lp_tape_view(&tp, b, NULL, 3, d);
    Bi = lp_tape_view(&tp, bias, NULL, 1, db);
    W = lp_tape_view(&tp, w, NULL, 2, dw);
    assert_int_equal(call_every_op(&tp, A, B, Bi, W, outs), N_EVERY);
    assert_int_equal(tp.n_nodes, N_EVERY - 1);
    for (int i = 0; i < N_EVERY; i++) assert_non_null(outs[i]->grad);
    lp_gc_ops seen = {0}; /* every op of core/ops once: N_EVERY - 1 nodes of as many different ops */
    lp_gc_ops_add_tape(&seen, &tp);
    assert_int_equal(seen.n, N_EVERY - 1);
    for (int k = 0; k < seen.n; k++) assert_int_equal(seen.count[k], 1);
    lp_tape_free(&tp);
}

static void test_null_propagates(void **state) {
    (void)state;
    float a[24] = {0}, bias[4] = {0}, w[20] = {0};
    int d[3] = {2, 3, 4}, db[1] = {4}, dw[2] = {5, 4};
    lp_tape tp = new_tape();
    lp_tensor *A = lp_tape_view(&tp, a, NULL, 3, d), *Bi = lp_tape_view(&tp, bias, NULL, 1, db),
              *W = lp_tape_view(&tp, w, NULL, 2, dw);
    lp_errorf(LP_ERR_NOMEM, "upstream failure");
    /* NULL as the second operand (or the only one) */
    lp_tensor *ab[2] = {A, NULL};
    lp_rng rng;
    lp_rng_init(&rng, 1, LP_RNG_STREAM_DROPOUT);
    assert_null(lp_op_matmul(&tp, A, NULL, 0, 1));
    assert_null(lp_op_matmul(&tp, NULL, W, 0, 1));
    assert_null(lp_op_add(&tp, A, NULL));
    assert_null(lp_op_bias_add(&tp, A, NULL));
    assert_null(lp_op_bias_add(&tp, NULL, Bi));
    assert_null(lp_op_mul(&tp, NULL, A));
    assert_null(lp_op_sigmoid(&tp, NULL));
    assert_null(lp_op_tanh(&tp, NULL));
    assert_null(lp_op_concat(&tp, ab, 2));
    int sizes[2] = {1, 3};
    lp_tensor *sp[2] = {A, A};
    assert_int_equal(lp_op_split(&tp, NULL, 2, sizes, sp), LP_ERR_NOMEM);
    assert_null(sp[0]);
    assert_null(sp[1]);
    assert_null(lp_op_slice_t(&tp, NULL, 0));
    assert_null(lp_op_mean_t(&tp, NULL, NULL));
    assert_null(lp_op_sum(&tp, NULL));
    assert_null(lp_op_bce_logits(&tp, NULL, A));
    assert_null(lp_op_dropout(&tp, NULL, 0.5f, &rng));
    assert_string_equal(lp_last_error(), "upstream failure"); /* the original cause is kept */
    assert_int_equal(tp.n_nodes, 0);
    lp_tape_free(&tp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_op_has_gradcheck),
        cmocka_unit_test(test_gradcheck_primitive_lstm_cell),
        cmocka_unit_test(test_gradcheck_rejects_wrong_backward),
        cmocka_unit_test(test_gradcheck_rejects_unlisted_op),
        cmocka_unit_test(test_matmul_values),
        cmocka_unit_test(test_elementwise_values),
        cmocka_unit_test(test_tanh_backward_near_saturation),
        cmocka_unit_test(test_bce_values),
        cmocka_unit_test(test_shape_op_values),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_accumulation),
        cmocka_unit_test(test_nograd_records_nothing),
        cmocka_unit_test(test_null_propagates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
