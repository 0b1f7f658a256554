/* test_lstm: the fused LSTM op (layers/lstm) against the PyTorch float64 references, its masking and
 * reverse (packed-sequence) semantics, central-difference gradient checks, and the inference path.
 *
 * Tolerances against the float64 references: the op runs in float32 (relative rounding 6e-8 per
 * operation, sums of F+H <= 9 products per gate, T <= 7 recurrent steps) and its sigmoid/tanh carry an
 * absolute error below 4e-7, so outputs and gradients of order 0.1..1 agree to ~1e-6. We allow
 * atol 2e-5 + rtol 1e-4, 10x above that, while any real bug (a gate order swap, a missing term, a wrong
 * mask) changes values by 1e-2 or more. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <cblas.h>
#include <stdio.h>

#include "core/ops.h"
#include "core/tape.h"
#include "layers/bilstm.h"
#include "core/fastmath.h"
#include "layers/lstm.h"
#include "layers/lstm_cell.h"
#include "check/gradcheck.h"
#include "tests/common/refdata.h"

#define ATOL 2e-5
#define RTOL 1e-4

/* A leaf over a float32 copy of reference tensor `name`, with a zeroed grad buffer when `grad`. */
static lp_tensor *ref_leaf(lp_tape *tp, const lp_ref *r, const char *name, int grad) {
    const lp_ref_tensor *rt = lp_ref_get(r, name);
    float *d = lp_ref_floats(rt);
    float *g = grad ? calloc(rt->n, sizeof(float)) : NULL;
    lp_tensor *t = lp_tape_view(tp, d, g, rt->ndim, rt->dims);
    assert_non_null(t);
    return t;
}

static void leaf_free(lp_tensor *t) {
    if (!t) return;
    free(t->data);
    free(t->grad);
}

/* Reverse pass with the output grads already seeded: a fresh scalar that nothing depends on is the
 * "loss" (its seed goes nowhere), so every node runs with exactly the seeds we set. */
static void backward_from_seeds(lp_tape *tp) {
    lp_tensor *seed = lp_tape_tensor(tp, 0, NULL, 1);
    assert_non_null(seed);
    seed->data[0] = 0;
    assert_int_equal(lp_tape_backward(tp, seed), LP_OK);
}

static void check(const lp_ref *r, const char *name, const float *got) {
    const lp_ref_tensor *want = lp_ref_get(r, name);
    LP_ASSERT_CLOSE(name, got, want->v, want->n, ATOL, RTOL);
}

/* lstm_layer.txt: given h0/c0, loss = sum(h_seq * dh_seq); outputs and every gradient. */
static void test_lstm_layer_reference(void **state) {
    (void)state;
    lp_ref *r = lp_ref_load("lstm_layer.txt");
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tensor *x = ref_leaf(&tp, r, "x", 1), *w_ih = ref_leaf(&tp, r, "w_ih", 1);
    lp_tensor *w_hh = ref_leaf(&tp, r, "w_hh", 1), *b = ref_leaf(&tp, r, "b", 1);
    lp_tensor *h0 = ref_leaf(&tp, r, "h0", 1), *c0 = ref_leaf(&tp, r, "c0", 1);
    lp_lstm_out o = lp_lstm(&tp, x, w_ih, w_hh, b, h0, c0, NULL, 0);
    assert_non_null(o.h_seq);
    assert_int_equal(tp.n_nodes, 1);
    assert_string_equal(tp.nodes[0].op->name, "lstm");
    check(r, "h_seq", o.h_seq->data);
    check(r, "h_T", o.h_last->data);
    check(r, "c_T", o.c_last->data);
    const lp_ref_tensor *dh = lp_ref_get(r, "dh_seq");
    double loss = 0;
    for (size_t i = 0; i < dh->n; i++) {
        o.h_seq->grad[i] = (float)dh->v[i];
        loss += (double)o.h_seq->data[i] * dh->v[i];
    }
    const lp_ref_tensor *want_loss = lp_ref_get(r, "loss");
    /* a sum of 72 products of order 0.1: float32 outputs with 1e-6 error give < 1e-4 */
    assert_true(fabs(loss - want_loss->v[0]) < 1e-4);
    backward_from_seeds(&tp);
    check(r, "grad_x", x->grad);
    check(r, "grad_w_ih", w_ih->grad);
    check(r, "grad_w_hh", w_hh->grad);
    check(r, "grad_b", b->grad);
    check(r, "grad_h0", h0->grad);
    check(r, "grad_c0", c0->grad);
    leaf_free(x), leaf_free(w_ih), leaf_free(w_hh), leaf_free(b), leaf_free(h0), leaf_free(c0);
    lp_tape_free(&tp);
    lp_ref_free(r);
}

/* lstm_masked.txt: zero state, lengths; loss = sum(h_last * dh_last). */
static void test_lstm_masked_reference(void **state) {
    (void)state;
    lp_ref *r = lp_ref_load("lstm_masked.txt");
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tensor *x = ref_leaf(&tp, r, "x", 1), *w_ih = ref_leaf(&tp, r, "w_ih", 1);
    lp_tensor *w_hh = ref_leaf(&tp, r, "w_hh", 1), *b = ref_leaf(&tp, r, "b", 1);
    const lp_ref_tensor *lt = lp_ref_get(r, "lengths");
    int B = x->dims[0], T = x->dims[1], H = w_hh->dims[1];
    assert_int_equal((int)lt->n, B);
    int lengths[16];
    int has_short = 0;
    for (int i = 0; i < B; i++) {
        lengths[i] = (int)lt->v[i];
        has_short |= lengths[i] < T;
    }
    assert_true(has_short); /* the case must exercise padding */
    lp_lstm_out o = lp_lstm(&tp, x, w_ih, w_hh, b, NULL, NULL, lengths, 0);
    assert_non_null(o.h_seq);
    check(r, "h_seq", o.h_seq->data);
    check(r, "h_last", o.h_last->data);
    check(r, "c_last", o.c_last->data);
    /* padding outputs are exactly 0 */
    for (int i = 0; i < B; i++)
        for (int t = lengths[i]; t < T; t++)
            for (int j = 0; j < H; j++) assert_true(o.h_seq->data[((size_t)i * T + t) * H + j] == 0.0f);
    const lp_ref_tensor *dh = lp_ref_get(r, "dh_last");
    for (size_t i = 0; i < dh->n; i++) o.h_last->grad[i] = (float)dh->v[i];
    backward_from_seeds(&tp);
    check(r, "grad_x", x->grad);
    check(r, "grad_w_ih", w_ih->grad);
    check(r, "grad_w_hh", w_hh->grad);
    check(r, "grad_b", b->grad);
    /* no gradient reaches inputs at padding steps */
    for (int i = 0; i < B; i++)
        for (int t = lengths[i]; t < T; t++)
            for (int j = 0; j < x->dims[2]; j++) assert_true(x->grad[((size_t)i * T + t) * x->dims[2] + j] == 0.0f);
    leaf_free(x), leaf_free(w_ih), leaf_free(w_hh), leaf_free(b);
    lp_tape_free(&tp);
    lp_ref_free(r);
}

/* Central differences for forward, reverse, lengths, h0/c0 and all together (check/lstm_case.c). */
static void test_lstm_gradcheck(void **state) {
    (void)state;
    lp_gc_result res;
    assert_int_equal(lp_gc_case_lstm(NULL, &res), LP_OK);
    lp_gc_result_print(stderr, "lstm", &res);
    assert_true(res.ok);
    assert_true(res.accumulate_ok);
    assert_true(res.nograd_ok);
    assert_true(lp_gc_ops_count(&res.ops, "lstm") == 5); /* one LSTM node per configuration */
    assert_true(res.max_abs_grad > 0.1);         /* the check compared real gradients, not zeros */
    assert_true(res.n_checked > 500);
}

/* Packed-sequence semantics of reverse + lengths, checked against an independent construction: the
 * reverse run over sequence b with length L equals a forward run over its first L steps reversed in
 * time (x'[s] = x[L-1-s]), with outputs mapped back (h[t] = h'[L-1-t]) — for outputs, final state and
 * every gradient. */
static void test_lstm_reverse_lengths_is_packed(void **state) {
    (void)state;
    enum { B = 4, T = 6, F = 3, H = 5 };
    const int lengths[B] = {6, 3, 1, 0};
    float x[B * T * F], w_ih[4 * H * F], w_hh[4 * H * H], b[4 * H], h0[B * H], c0[B * H];
    float dseq[B * T * H], dlast[B * H], dclast[B * H];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 21);
    lp_gc_fill_uniform(w_ih, 4 * H * F, -0.5, 0.5, 22);
    lp_gc_fill_uniform(w_hh, 4 * H * H, -0.5, 0.5, 23);
    lp_gc_fill_uniform(b, 4 * H, -0.5, 0.5, 24);
    lp_gc_fill_uniform(h0, B * H, -0.5, 0.5, 25);
    lp_gc_fill_uniform(c0, B * H, -0.5, 0.5, 26);
    lp_gc_fill_uniform(dseq, B * T * H, -1, 1, 27);
    lp_gc_fill_uniform(dlast, B * H, -1, 1, 28);
    lp_gc_fill_uniform(dclast, B * H, -1, 1, 29);

    /* reverse, all rows at once */
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    float gx[B * T * F] = {0}, gwi[4 * H * F] = {0}, gwh[4 * H * H] = {0}, gb[4 * H] = {0}, gh0[B * H] = {0},
          gc0[B * H] = {0};
    lp_tensor *tx = lp_tape_view(&tp, x, gx, 3, (int[]){B, T, F});
    lp_tensor *twi = lp_tape_view(&tp, w_ih, gwi, 2, (int[]){4 * H, F});
    lp_tensor *twh = lp_tape_view(&tp, w_hh, gwh, 2, (int[]){4 * H, H});
    lp_tensor *tb = lp_tape_view(&tp, b, gb, 1, (int[]){4 * H});
    lp_tensor *th0 = lp_tape_view(&tp, h0, gh0, 2, (int[]){B, H});
    lp_tensor *tc0 = lp_tape_view(&tp, c0, gc0, 2, (int[]){B, H});
    lp_lstm_out o = lp_lstm(&tp, tx, twi, twh, tb, th0, tc0, lengths, 1);
    assert_non_null(o.h_seq);
    memcpy(o.h_seq->grad, dseq, sizeof dseq);
    memcpy(o.h_last->grad, dlast, sizeof dlast);
    memcpy(o.c_last->grad, dclast, sizeof dclast);
    backward_from_seeds(&tp);

    /* forward, one row at a time over the reversed valid prefix */
    float sum_gwi[4 * H * F] = {0}, sum_gwh[4 * H * H] = {0}, sum_gb[4 * H] = {0};
    for (int i = 0; i < B; i++) {
        const int L = lengths[i];
        if (L == 0) { /* nothing runs: state and gradients pass straight through */
            for (int j = 0; j < H; j++) {
                assert_true(o.h_last->data[i * H + j] == h0[i * H + j]);
                assert_true(o.c_last->data[i * H + j] == c0[i * H + j]);
                assert_true(gh0[i * H + j] == dlast[i * H + j]);
                assert_true(gc0[i * H + j] == dclast[i * H + j]);
            }
            continue;
        }
        lp_tape tq;
        assert_int_equal(lp_tape_init(&tq, 1 << 16), LP_OK);
        float xr[T * F], gxr[T * F] = {0}, g2wi[4 * H * F] = {0}, g2wh[4 * H * H] = {0}, g2b[4 * H] = {0};
        float g2h0[H] = {0}, g2c0[H] = {0};
        for (int s = 0; s < L; s++) memcpy(xr + s * F, x + ((size_t)i * T + (L - 1 - s)) * F, F * sizeof(float));
        lp_tensor *ux = lp_tape_view(&tq, xr, gxr, 3, (int[]){1, L, F});
        lp_tensor *uwi = lp_tape_view(&tq, w_ih, g2wi, 2, (int[]){4 * H, F});
        lp_tensor *uwh = lp_tape_view(&tq, w_hh, g2wh, 2, (int[]){4 * H, H});
        lp_tensor *ub = lp_tape_view(&tq, b, g2b, 1, (int[]){4 * H});
        lp_tensor *uh0 = lp_tape_view(&tq, h0 + i * H, g2h0, 2, (int[]){1, H});
        lp_tensor *uc0 = lp_tape_view(&tq, c0 + i * H, g2c0, 2, (int[]){1, H});
        lp_lstm_out q = lp_lstm(&tq, ux, uwi, uwh, ub, uh0, uc0, NULL, 0);
        assert_non_null(q.h_seq);
        for (int s = 0; s < L; s++)
            memcpy(q.h_seq->grad + s * H, dseq + ((size_t)i * T + (L - 1 - s)) * H, H * sizeof(float));
        memcpy(q.h_last->grad, dlast + i * H, H * sizeof(float));
        memcpy(q.c_last->grad, dclast + i * H, H * sizeof(float));
        backward_from_seeds(&tq);
        /* Same float operations in the same order per row, so the results agree to rounding (the GEMM
         * may block B=4 rows differently from B=1): 1e-6 absolute on values of order 0.1..1. */
        for (int s = 0; s < L; s++) {
            int t = L - 1 - s;
            for (int j = 0; j < H; j++) {
                assert_true(fabsf(o.h_seq->data[((size_t)i * T + t) * H + j] - q.h_seq->data[s * H + j]) < 1e-6f);
            }
            for (int j = 0; j < F; j++)
                assert_true(fabsf(gx[((size_t)i * T + t) * F + j] - gxr[s * F + j]) < 1e-6f);
        }
        for (int t = L; t < T; t++) { /* padding: zero output, zero input gradient */
            for (int j = 0; j < H; j++) assert_true(o.h_seq->data[((size_t)i * T + t) * H + j] == 0.0f);
            for (int j = 0; j < F; j++) assert_true(gx[((size_t)i * T + t) * F + j] == 0.0f);
        }
        for (int j = 0; j < H; j++) {
            assert_true(fabsf(o.h_last->data[i * H + j] - q.h_last->data[j]) < 1e-6f);
            assert_true(fabsf(o.c_last->data[i * H + j] - q.c_last->data[j]) < 1e-6f);
            assert_true(fabsf(gh0[i * H + j] - g2h0[j]) < 1e-6f);
            assert_true(fabsf(gc0[i * H + j] - g2c0[j]) < 1e-6f);
        }
        for (int j = 0; j < 4 * H * F; j++) sum_gwi[j] += g2wi[j];
        for (int j = 0; j < 4 * H * H; j++) sum_gwh[j] += g2wh[j];
        for (int j = 0; j < 4 * H; j++) sum_gb[j] += g2b[j];
        lp_tape_free(&tq);
    }
    /* weight gradients are sums over rows: summation order differs, 1e-5 on sums of a few terms ~1 */
    for (int j = 0; j < 4 * H * F; j++) assert_true(fabsf(gwi[j] - sum_gwi[j]) < 1e-5f);
    for (int j = 0; j < 4 * H * H; j++) assert_true(fabsf(gwh[j] - sum_gwh[j]) < 1e-5f);
    for (int j = 0; j < 4 * H; j++) assert_true(fabsf(gb[j] - sum_gb[j]) < 1e-5f);
    lp_tape_free(&tp);
}

/* Inference mode (no grads, no saved state, chunked gate loop for H > 256) gives the same outputs as the
 * training path, bit for bit: the same float operations in the same order. Also bad lengths are an
 * error, not a crash. */
static void test_lstm_inference_and_errors(void **state) {
    (void)state;
    enum { B = 2, T = 3, F = 4, H = 300 };
    float *x = malloc(B * T * F * sizeof(float)), *w_ih = malloc(4 * H * F * sizeof(float));
    float *w_hh = malloc((size_t)4 * H * H * sizeof(float)), *b = malloc(4 * H * sizeof(float));
    float *gw = calloc((size_t)4 * H * H, sizeof(float));
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 31);
    lp_gc_fill_uniform(w_ih, 4 * H * F, -0.3, 0.3, 32);
    lp_gc_fill_uniform(w_hh, (size_t)4 * H * H, -0.06, 0.06, 33);
    lp_gc_fill_uniform(b, 4 * H, -0.3, 0.3, 34);
    const int lengths[B] = {3, 2};
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tensor *tx = lp_tape_view(&tp, x, NULL, 3, (int[]){B, T, F});
    lp_tensor *twi = lp_tape_view(&tp, w_ih, NULL, 2, (int[]){4 * H, F});
    lp_tensor *twh = lp_tape_view(&tp, w_hh, gw, 2, (int[]){4 * H, H});
    lp_tensor *tb = lp_tape_view(&tp, b, NULL, 1, (int[]){4 * H});
    lp_lstm_out a = lp_lstm(&tp, tx, twi, twh, tb, NULL, NULL, lengths, 0);
    assert_non_null(a.h_seq);
    assert_non_null(a.h_seq->grad);
    lp_tape_set_grad(&tp, 0);
    lp_lstm_out c = lp_lstm(&tp, tx, twi, twh, tb, NULL, NULL, lengths, 0);
    assert_non_null(c.h_seq);
    assert_null(c.h_seq->grad);
    assert_int_equal(tp.n_nodes, 1); /* only the first call recorded a node */
    assert_memory_equal(a.h_seq->data, c.h_seq->data, B * T * H * sizeof(float));
    assert_memory_equal(a.h_last->data, c.h_last->data, B * H * sizeof(float));
    assert_memory_equal(a.c_last->data, c.c_last->data, B * H * sizeof(float));
    double norm = 0;
    for (int i = 0; i < B * T * H; i++) norm += fabs(a.h_seq->data[i]);
    assert_true(norm > 1.0); /* a non-trivial output */
    const int bad[B] = {3, 4};
    lp_lstm_out e = lp_lstm(&tp, tx, twi, twh, tb, NULL, NULL, bad, 0);
    assert_null(e.h_seq);
    assert_null(e.h_last);
    assert_non_null(strstr(lp_last_error(), "length 4"));
    lp_lstm_out n = lp_lstm(&tp, NULL, twi, twh, tb, NULL, NULL, NULL, 0);
    assert_null(n.h_seq);
    lp_tape_free(&tp);
    free(x), free(w_ih), free(w_hh), free(b), free(gw);
}

/* The activations over a dense grid against libm in double: the stated 4e-7 absolute bound, and full
 * relative accuracy near 0 for tanh (where 2*sigmoid(2x)-1 style formulas lose it). */
static void test_lstm_activations(void **state) {
    (void)state;
    double es = 0, et = 0, rt = 0;
    for (double v = -40; v <= 40; v += 1.0 / 1024) {
        float xf = (float)v;
        double s = 1.0 / (1.0 + exp(-(double)xf)), th = tanh((double)xf);
        es = fmax(es, fabs(lp_fast_sigmoid(xf) - s));
        et = fmax(et, fabs(lp_fast_tanh(xf) - th));
    }
    for (float xf = 1e-20f; xf < 0.5f; xf *= 1.7f) rt = fmax(rt, fabs(lp_fast_tanh(xf) - tanh(xf)) / tanh(xf));
    assert_true(es < 4e-7);
    assert_true(et < 4e-7);
    assert_true(rt < 1e-6);
    assert_true(lp_fast_sigmoid(-200.0f) >= 0.0f && lp_fast_sigmoid(200.0f) == 1.0f);
    assert_true(lp_fast_tanh(-200.0f) >= -1.0f && lp_fast_tanh(200.0f) <= 1.0f);
    assert_true(isnan(lp_fast_sigmoid(NAN)) && isnan(lp_fast_tanh(NAN))); /* divergence stays visible */
    assert_true(lp_fast_sigmoid(INFINITY) == 1.0f && lp_fast_sigmoid(-INFINITY) >= 0.0f);
}

/* The backward pass takes tanh' = (1 - t)(1 + t) from the float tanh t. Near saturation that is only as
 * good as t's last bits, so tanh must be within ~1.5 ulp there and the derivative unbiased: over each
 * unit interval of x in [1, 8) (and the mirrored one) the mean relative error of (1 - t)(1 + t) against
 * sech²(x) stays below 1e-3 and the worst below 0.2, and up to 8.9, where tanh in float is not yet ±1,
 * the derivative is not 0. (The rational function clamped at 7.905 was 1% low in [6, 7), 6% in [7, 8)
 * and 0 beyond 7.905.) Beyond 8 a float's spacing near 1 is itself most of sech². */
static void test_lstm_tanh_derivative_unbiased(void **state) {
    (void)state;
    double max_ulp = 0;
    for (int k = 1; k < 8; k++)
        for (int sign = -1; sign <= 1; sign += 2) {
            double sum = 0, worst = 0;
            long n = 0;
            for (double v = k; v < k + 1; v += 1.0 / 4096) {
                float xf = (float)(sign * v);
                double th = tanh((double)xf), d = 1.0 - th * th;
                float t = lp_fast_tanh(xf);
                double rel = ((1.0 - (double)t) * (1.0 + (double)t) - d) / d;
                sum += rel;
                worst = fmax(worst, fabs(rel));
                n++;
                double ulp = nextafterf(fabsf((float)th), 2.0f) - fabsf((float)th);
                max_ulp = fmax(max_ulp, fabs((double)t - th) / ulp);
            }
            assert_true(fabs(sum / (double)n) < 1e-3);
            assert_true(worst < 0.2);
        }
    assert_true(max_ulp < 2.0);
    for (float x = 7.9f; x < 8.9f; x += 1.0f / 64) {
        float t = lp_fast_tanh(x), tn = lp_fast_tanh(-x);
        assert_true((1.0f - t) * (1.0f + t) > 0.0f && (1.0f - tn) * (1.0f + tn) > 0.0f);
    }
}

/* tanh itself, against tanh in double, per 1/8 of x over [-9, 9] (4096 points each): never more than
 * 1.1 ulp off, and unbiased: the mean signed distance from the correctly rounded float, in ulp, within
 * 0.1 per interval (tanh' and every gradient are taken from these values, and a bias adds up over units
 * and steps where independent rounding errors cancel; the distance from the exact value is no measure
 * of bias near ±1, where the correctly rounded value itself sits 0.4 ulp to one side). Also odd to the
 * bit. The former rational function below |x| = 0.625 was up to 3.9 ulp off and -1.07 ulp on average
 * in [0, 0.25): it fails here. */
static void test_lstm_tanh_ulp_unbiased(void **state) {
    (void)state;
    for (int k = -72; k < 72; k++) {
        double sum = 0, worst = 0;
        int n = 0;
        for (int i = 0; i < 4096; i++) {
            float xf = (float)((k + (i + 0.5) / 4096.0) / 8.0);
            double th = tanh((double)xf);
            float rf = (float)th;
            double ulp = nextafterf(fabsf(rf), 2.0f) - fabsf(rf);
            float t = lp_fast_tanh(xf);
            sum += ((double)t - (double)rf) / ulp;
            worst = fmax(worst, fabs((double)t - th) / ulp);
            n++;
            assert_true(lp_fast_tanh(-xf) == -t);
        }
        if (fabs(sum / n) >= 0.1 || worst > 1.1)
            print_message("tanh on [%g, %g): mean %+.3f ulp, worst %.2f ulp\n", k / 8.0, (k + 1) / 8.0, sum / n, worst);
        assert_true(fabs(sum / n) < 0.1);
        assert_true(worst <= 1.1);
    }
}

/* ---- lstm_cell (primitive ops) equals the fused op ------------------------------------------------ */

typedef struct {
    int reverse;
    const int *lengths;
    int cell; /* 1: lp_lstm_cell_seq, 0: lp_lstm */
} seq_cfg;

static int seq_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const seq_cfg *cfg = user;
    (void)n_in;
    lp_lstm_weights w = {in[1], in[2], in[3]};
    lp_lstm_out o = cfg->cell ? lp_lstm_cell_seq(tp, in[0], &w, in[4], in[5], cfg->lengths, cfg->reverse)
                              : lp_lstm(tp, in[0], in[1], in[2], in[3], in[4], in[5], cfg->lengths, cfg->reverse);
    out[0] = o.h_seq, out[1] = o.h_last, out[2] = o.c_last;
    return o.h_seq ? 3 : 0;
}

enum { CB = 3, CT = 10, CF = 4, CH = 3 }; /* T = 10 > 8 exercises the concat tree of stack_time */
_Static_assert(CF >= CH && CB * CT >= 4 * CH, "x is the largest buffer of the case");

typedef struct {
    float v[6][CB * CT * CF > 4 * CH * CF ? CB * CT * CF : 4 * CH * CF]; /* x, w_ih, w_hh, b, h0, c0 */
    float g[6][CB * CT * CF > 4 * CH * CF ? CB * CT * CF : 4 * CH * CF];
    float out[3][CB * CT * CH];
    lp_gc_ops ops;
} seq_run;

/* Run one implementation with all six inputs differentiable and the outputs seeded with fixed
 * random gradients; keep outputs, input gradients and the ops used. */
static void run_seq(seq_run *r, const seq_cfg *cfg) {
    static const int dims[6][3] = {{CB, CT, CF}, {4 * CH, CF}, {4 * CH, CH}, {4 * CH}, {CB, CH}, {CB, CH}};
    static const int nd[6] = {3, 2, 2, 1, 2, 2};
    static const size_t n[6] = {CB * CT * CF, 4 * CH * CF, 4 * CH * CH, 4 * CH, CB * CH, CB * CH};
    memset(r, 0, sizeof *r);
    for (int k = 0; k < 6; k++) lp_gc_fill_uniform(r->v[k], n[k], -0.7, 0.7, 40 + (uint64_t)k);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tensor *in[6];
    for (int k = 0; k < 6; k++) in[k] = lp_tape_view(&tp, r->v[k], r->g[k], nd[k], dims[k]);
    lp_tensor *out[3];
    assert_int_equal(seq_forward((void *)cfg, &tp, in, 6, out), 3);
    lp_gc_ops_add_tape(&r->ops, &tp);
    const size_t on[3] = {CB * CT * CH, CB * CH, CB * CH};
    for (int k = 0; k < 3; k++) {
        float seed[CB * CT * CH];
        lp_gc_fill_uniform(seed, on[k], -1, 1, 50 + (uint64_t)k);
        for (size_t j = 0; j < on[k]; j++) out[k]->grad[j] += seed[j];
        memcpy(r->out[k], out[k]->data, on[k] * sizeof(float));
    }
    backward_from_seeds(&tp);
    lp_tape_free(&tp);
}

/* The composed cell and the fused op differ only in rounding: summation order (two matmuls + add vs
 * one accumulated GEMM) and the activations (libm expf/tanhf vs the fused op's approximations, < 4e-7
 * apart). Over 10 recurrent steps with values of order 1 that is ~1e-6; we allow 1e-5 absolute +
 * 1e-5 relative. A semantic difference (mask, direction, a gate) is >= 1e-2. */
static void test_lstm_cell_equals_fused(void **state) {
    (void)state;
    static const int lengths[CB] = {10, 4, 0};
    const seq_cfg cfgs[4][2] = {
        {{0, NULL, 1}, {0, NULL, 0}},
        {{1, NULL, 1}, {1, NULL, 0}},
        {{0, lengths, 1}, {0, lengths, 0}},
        {{1, lengths, 1}, {1, lengths, 0}},
    };
    static const char *names[6] = {"grad x", "grad w_ih", "grad w_hh", "grad b", "grad h0", "grad c0"};
    static const size_t n[6] = {CB * CT * CF, 4 * CH * CF, 4 * CH * CH, 4 * CH, CB * CH, CB * CH};
    static seq_run a, b;
    for (int k = 0; k < 4; k++) {
        run_seq(&a, &cfgs[k][0]);
        run_seq(&b, &cfgs[k][1]);
        /* the cell really is made of primitive ops, the fused version is one node */
        assert_int_equal(lp_gc_ops_count(&a.ops, "lstm"), 0);
        assert_true(lp_gc_ops_count(&a.ops, "sigmoid") == 3 * CT && lp_gc_ops_count(&a.ops, "split") == CT);
        assert_int_equal(lp_gc_ops_count(&b.ops, "lstm"), 1);
        double want[CB * CT * CF]; /* the largest of all outputs and inputs */
        const size_t on[3] = {CB * CT * CH, CB * CH, CB * CH};
        for (int o = 0; o < 3; o++) {
            for (size_t j = 0; j < on[o]; j++) want[j] = b.out[o][j];
            LP_ASSERT_CLOSE(o == 0 ? "h_seq" : o == 1 ? "h_last" : "c_last", a.out[o], want, on[o], 1e-5, 1e-5);
        }
        double gmax = 0;
        for (int i = 0; i < 6; i++) {
            for (size_t j = 0; j < n[i]; j++) {
                want[j] = b.g[i][j];
                gmax = fmax(gmax, fabs(want[j]));
            }
            LP_ASSERT_CLOSE(names[i], a.g[i], want, n[i], 1e-5, 1e-5);
        }
        assert_true(gmax > 0.1); /* real gradients were compared */
    }
}

/* Gradient check of the composed cell itself (the fused op has its own in test_lstm_gradcheck): the
 * library's `lstm-cell` check, plain and with reverse + lengths + h0/c0. */
static void test_lstm_cell_gradcheck(void **state) {
    (void)state;
    lp_gc_result res;
    assert_int_equal(lp_gc_check_lstm_cell(NULL, NULL, &res), LP_OK);
    lp_gc_result_print(stderr, "lstm_cell", &res);
    assert_true(res.ok);
    assert_true(res.max_abs_grad > 0.1);
    assert_int_equal(lp_gc_ops_count(&res.ops, "lstm"), 0); /* primitive ops only */
    assert_true(lp_gc_ops_count(&res.ops, "sigmoid") > 0);
}

/* ---- bilstm ------------------------------------------------------------------------------------------ */

typedef struct {
    const int *lengths;
} bi_cfg;

static int bi_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const bi_cfg *cfg = user;
    (void)n_in;
    lp_lstm_weights fw = {in[1], in[2], in[3]}, bw = {in[4], in[5], in[6]};
    lp_bilstm_out o = lp_bilstm(tp, in[0], &fw, &bw, cfg->lengths);
    out[0] = o.out;
    return o.out ? 1 : 0;
}

/* Different unit counts per direction (Hf=3, Hb=2): the output is [fw_t, bw_t] per step with the
 * reverse direction aligned to input time — equal, value for value, to the two LSTMs run on their own.
 * And central differences through the whole layer. */
static void test_bilstm_layout_and_gradcheck(void **state) {
    (void)state;
    enum { B = 3, T = 4, F = 3, HF = 3, HB = 2 };
    static const int lengths[B] = {4, 2, 1};
    float x[B * T * F], fwi[4 * HF * F], fwh[4 * HF * HF], fb[4 * HF], bwi[4 * HB * F], bwh[4 * HB * HB],
        bbias[4 * HB];
    lp_gc_fill_uniform(x, sizeof x / sizeof *x, -1, 1, 71);
    lp_gc_fill_uniform(fwi, sizeof fwi / sizeof *fwi, -0.6, 0.6, 72);
    lp_gc_fill_uniform(fwh, sizeof fwh / sizeof *fwh, -0.6, 0.6, 73);
    lp_gc_fill_uniform(fb, sizeof fb / sizeof *fb, -0.6, 0.6, 74);
    lp_gc_fill_uniform(bwi, sizeof bwi / sizeof *bwi, -0.6, 0.6, 75);
    lp_gc_fill_uniform(bwh, sizeof bwh / sizeof *bwh, -0.6, 0.6, 76);
    lp_gc_fill_uniform(bbias, sizeof bbias / sizeof *bbias, -0.6, 0.6, 77);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 16), LP_OK);
    lp_tape_set_grad(&tp, 0);
    lp_tensor *tx = lp_tape_view(&tp, x, NULL, 3, (int[]){B, T, F});
    lp_lstm_weights fw = {lp_tape_view(&tp, fwi, NULL, 2, (int[]){4 * HF, F}),
                          lp_tape_view(&tp, fwh, NULL, 2, (int[]){4 * HF, HF}),
                          lp_tape_view(&tp, fb, NULL, 1, (int[]){4 * HF})};
    lp_lstm_weights bw = {lp_tape_view(&tp, bwi, NULL, 2, (int[]){4 * HB, F}),
                          lp_tape_view(&tp, bwh, NULL, 2, (int[]){4 * HB, HB}),
                          lp_tape_view(&tp, bbias, NULL, 1, (int[]){4 * HB})};
    lp_bilstm_out o = lp_bilstm(&tp, tx, &fw, &bw, lengths);
    assert_non_null(o.out);
    assert_true(o.out->ndim == 3 && o.out->dims[2] == HF + HB);
    lp_lstm_out f = lp_lstm(&tp, tx, fw.w_ih, fw.w_hh, fw.b, NULL, NULL, lengths, 0);
    lp_lstm_out r = lp_lstm(&tp, tx, bw.w_ih, bw.w_hh, bw.b, NULL, NULL, lengths, 1);
    for (int i = 0; i < B * T; i++) {
        assert_memory_equal(o.out->data + i * (HF + HB), f.h_seq->data + i * HF, HF * sizeof(float));
        assert_memory_equal(o.out->data + i * (HF + HB) + HF, r.h_seq->data + i * HB, HB * sizeof(float));
    }
    /* aligned to input time: the backward half at t = 0 is the reverse LSTM's final state (it has read
     * the whole sequence), and the forward half at the last valid step is the forward final state */
    for (int j = 0; j < HB; j++) assert_true(o.out->data[HF + j] == r.h_last->data[j]);
    for (int j = 0; j < HF; j++) assert_true(o.out->data[(T - 1) * (HF + HB) + j] == f.h_last->data[j]);
    lp_tape_free(&tp);

    lp_gc_input in[7] = {{"x", x, 3, {B, T, F}, 0},          {"fw.w_ih", fwi, 2, {4 * HF, F}, 0},
                         {"fw.w_hh", fwh, 2, {4 * HF, HF}, 0}, {"fw.b", fb, 1, {4 * HF}, 0},
                         {"bw.w_ih", bwi, 2, {4 * HB, F}, 0},  {"bw.w_hh", bwh, 2, {4 * HB, HB}, 0},
                         {"bw.b", bbias, 1, {4 * HB}, 0}};
    bi_cfg cfg = {lengths};
    lp_gc_result res;
    assert_int_equal(lp_gradcheck(bi_forward, &cfg, in, 7, NULL, &res), LP_OK);
    lp_gc_result_print(stderr, "bilstm", &res);
    assert_true(res.ok);
    assert_int_equal(lp_gc_ops_count(&res.ops, "bilstm"), 1); /* one fused node, then the concatenation */
    assert_int_equal(lp_gc_ops_count(&res.ops, "lstm"), 0);
    assert_int_equal(lp_gc_ops_count(&res.ops, "concat"), 1);
    assert_true(res.max_abs_grad > 0.1);
}

/* Set OpenBLAS's thread count; returns 0 (and the test skips that count) if OpenBLAS refused it. */
static int set_threads(int n) {
    openblas_set_num_threads(n);
    return openblas_get_num_threads() == n;
}

/* Central differences through the fused op (every output, lengths, x with a gradient, Hf != Hb; see
 * check/bilstm_case.c) at 1, 2, 3 and 4 OpenBLAS threads: sequential, one stream per direction,
 * and row splits inside the directions (shares 2+1 and 2+2). */
static void test_bilstm_gradcheck_threads(void **state) {
    (void)state;
    const int saved = openblas_get_num_threads();
    for (int n = 1; n <= 4; n++) {
        if (!set_threads(n)) {
            fprintf(stderr, "bilstm gradcheck: OpenBLAS refused %d threads, skipped\n", n);
            continue;
        }
        lp_gc_result res;
        lp_status st = lp_gc_case_bilstm(NULL, &res);
        char what[48];
        snprintf(what, sizeof what, "bilstm op, %d thread(s)", n);
        lp_gc_result_print(stderr, what, &res);
        openblas_set_num_threads(saved);
        assert_int_equal(st, LP_OK);
        assert_true(res.ok);
        assert_int_equal(lp_gc_ops_count(&res.ops, "bilstm"), 2); /* one node per configuration */
        assert_int_equal(lp_gc_ops_count(&res.ops, "lstm"), 0);
        assert_true(res.max_abs_grad > 0.1);
    }
    openblas_set_num_threads(saved);
}

/* ---- bilstm: fused op against the former composition, and across thread counts ---------------------- */

enum { BI_T = 30, BI_F = 64, BI_HF = 32, BI_HB = 24, BI_NIN = 7, BI_NOUT = 7 };

/* One run: outputs (out, fw h_seq/h_last/c_last, bw h_seq/h_last/c_last) and the gradients of the
 * seven inputs (x, fw w_ih/w_hh/b, bw w_ih/w_hh/b). */
typedef struct {
    float *out[BI_NOUT], *grad[BI_NIN];
    size_t on[BI_NOUT], in_n[BI_NIN];
    lp_gc_ops ops;
} bi_run;

static void bi_run_free(bi_run *r) {
    for (int k = 0; k < BI_NOUT; k++) free(r->out[k]);
    for (int k = 0; k < BI_NIN; k++) free(r->grad[k]);
    memset(r, 0, sizeof *r);
}

/* Forward with `threads` OpenBLAS threads, either the fused op (`fused`) or the composition the layer
 * was before (two `lstm` nodes and a concat); every output seeded with fixed random gradients;
 * backward. Inputs and seeds depend only on B (and lengths), so two runs see the same numbers. */
static void bi_run_once(bi_run *r, int B, const int *lengths, int fused, int threads) {
    const int T = BI_T, F = BI_F, HF = BI_HF, HB = BI_HB;
    const int nd[BI_NIN] = {3, 2, 2, 1, 2, 2, 1};
    const int dims[BI_NIN][3] = {{B, T, F}, {4 * HF, F}, {4 * HF, HF}, {4 * HF}, {4 * HB, F}, {4 * HB, HB}, {4 * HB}};
    float *v[BI_NIN];
    memset(r, 0, sizeof *r);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 20), LP_OK);
    lp_tensor *in[BI_NIN];
    for (int k = 0; k < BI_NIN; k++) {
        size_t n = 1;
        for (int d = 0; d < nd[k]; d++) n *= (size_t)dims[k][d];
        r->in_n[k] = n;
        v[k] = malloc(n * sizeof(float));
        r->grad[k] = calloc(n, sizeof(float));
        assert_true(v[k] && r->grad[k]);
        lp_gc_fill_uniform(v[k], n, k == 0 ? -1.0 : -0.3, k == 0 ? 1.0 : 0.3, 90 + (uint64_t)k);
        in[k] = lp_tape_view(&tp, v[k], r->grad[k], nd[k], dims[k]);
    }
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(threads);
    lp_tensor *out[BI_NOUT];
    if (fused) {
        lp_lstm_weights fw = {in[1], in[2], in[3]}, bw = {in[4], in[5], in[6]};
        lp_bilstm_out o = lp_bilstm(&tp, in[0], &fw, &bw, lengths);
        lp_tensor *all[BI_NOUT] = {o.out, o.fw.h_seq, o.fw.h_last, o.fw.c_last, o.bw.h_seq, o.bw.h_last, o.bw.c_last};
        memcpy(out, all, sizeof out);
    } else {
        lp_lstm_out f = lp_lstm(&tp, in[0], in[1], in[2], in[3], NULL, NULL, lengths, 0);
        lp_lstm_out b = lp_lstm(&tp, in[0], in[4], in[5], in[6], NULL, NULL, lengths, 1);
        lp_tensor *both[2] = {f.h_seq, b.h_seq};
        lp_tensor *all[BI_NOUT] = {lp_op_concat(&tp, both, 2), f.h_seq, f.h_last, f.c_last, b.h_seq, b.h_last, b.c_last};
        memcpy(out, all, sizeof out);
    }
    lp_gc_ops_add_tape(&r->ops, &tp);
    for (int k = 0; k < BI_NOUT; k++) {
        assert_non_null(out[k]);
        assert_non_null(out[k]->grad);
        r->on[k] = lp_tensor_numel(out[k]);
        r->out[k] = malloc(r->on[k] * sizeof(float));
        assert_non_null(r->out[k]);
        memcpy(r->out[k], out[k]->data, r->on[k] * sizeof(float));
        lp_gc_fill_uniform(out[k]->grad, r->on[k], -1, 1, 110 + (uint64_t)k);
    }
    backward_from_seeds(&tp);
    openblas_set_num_threads(saved);
    lp_tape_free(&tp);
    for (int k = 0; k < BI_NIN; k++) free(v[k]);
}

/* Largest |a-b| / (1 + |b|) over every output and gradient of two runs (0: bit-identical values). */
static double bi_max_diff(const bi_run *a, const bi_run *b, int *bitwise) {
    double m = 0;
    *bitwise = 1;
    for (int k = 0; k < BI_NOUT + BI_NIN; k++) {
        const float *x = k < BI_NOUT ? a->out[k] : a->grad[k - BI_NOUT];
        const float *y = k < BI_NOUT ? b->out[k] : b->grad[k - BI_NOUT];
        size_t n = k < BI_NOUT ? a->on[k] : a->in_n[k - BI_NOUT];
        assert_int_equal(n, k < BI_NOUT ? b->on[k] : b->in_n[k - BI_NOUT]);
        if (memcmp(x, y, n * sizeof *x)) *bitwise = 0;
        for (size_t j = 0; j < n; j++) m = fmax(m, fabs((double)x[j] - y[j]) / (1.0 + fabs((double)y[j])));
    }
    return m;
}

/* The fused op computes exactly what the former composition (two `lstm` nodes + concat) computes,
 * outputs and all seven input gradients, bit for bit: at 1 thread it calls the same kernels in the same
 * order (dX summed reverse direction first, as the tape ran the two nodes); at 2 and 4 threads the
 * directions run at once, but each batch row's arithmetic is unchanged and OpenBLAS splits rows and
 * columns of its GEMMs (never the summed dimension), so the sums are the same. The sizes make
 * OpenBLAS really thread the big GEMMs (B*T*F*4H above its threshold), Hf != Hb, the lengths include
 * an empty and a full sequence, and B = 1 takes the matrix-vector path (and, at 4 threads, the
 * sequential order, since one row cannot be split). */
static void test_bilstm_equals_composition(void **state) {
    (void)state;
    static const int len8[8] = {BI_T, 7, 0, BI_T, 1, 19, BI_T - 1, 2};
    static const int len1[1] = {11};
    const struct {
        int B;
        const int *lengths;
    } cases[3] = {{8, len8}, {8, NULL}, {1, len1}};
    for (int c = 0; c < 3; c++) {
        const int B = cases[c].B;
        bi_run ref, r;
        bi_run_once(&ref, B, cases[c].lengths, 0, 1);
        assert_int_equal(lp_gc_ops_count(&ref.ops, "lstm"), 2);
        assert_int_equal(lp_gc_ops_count(&ref.ops, "bilstm"), 0);
        double gmax = 0;
        for (int k = 0; k < BI_NIN; k++)
            for (size_t j = 0; j < ref.in_n[k]; j++) gmax = fmax(gmax, fabs(ref.grad[k][j]));
        assert_true(gmax > 0.1); /* real gradients are compared */
        const int threads[4] = {1, 2, 4, 2};
        for (int i = 0; i < 4; i++) {
            if (!set_threads(threads[i])) continue;
            openblas_set_num_threads(1);
            /* i = 3: the composition at 2 threads (its own row split) against the fused op at 1 */
            const int fused = i < 3;
            bi_run_once(&r, B, cases[c].lengths, fused, threads[i]);
            assert_int_equal(lp_gc_ops_count(&r.ops, "bilstm"), fused ? 1 : 0);
            assert_int_equal(lp_gc_ops_count(&r.ops, "lstm"), fused ? 0 : 2);
            int bitwise;
            double d = bi_max_diff(&r, &ref, &bitwise);
            fprintf(stderr, "bilstm B=%d%s: %s at %d thread(s) vs composition at 1: max rel diff %.3g%s\n", B,
                    cases[c].lengths ? " lengths" : "", fused ? "fused" : "composition", threads[i], d,
                    bitwise ? " (bit-identical)" : "");
            assert_true(bitwise);
            bi_run_free(&r);
        }
        /* the same thread count twice: the same bits (no race, no order that depends on timing) */
        if (set_threads(2)) {
            openblas_set_num_threads(1);
            bi_run r2;
            bi_run_once(&r, B, cases[c].lengths, 1, 2);
            bi_run_once(&r2, B, cases[c].lengths, 1, 2);
            int bitwise;
            bi_max_diff(&r, &r2, &bitwise);
            assert_true(bitwise);
            bi_run_free(&r);
            bi_run_free(&r2);
        }
        openblas_set_num_threads(1);
        bi_run_free(&ref);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lstm_activations),
        cmocka_unit_test(test_lstm_tanh_derivative_unbiased),
        cmocka_unit_test(test_lstm_tanh_ulp_unbiased),
        cmocka_unit_test(test_lstm_layer_reference),
        cmocka_unit_test(test_lstm_masked_reference),
        cmocka_unit_test(test_lstm_gradcheck),
        cmocka_unit_test(test_lstm_reverse_lengths_is_packed),
        cmocka_unit_test(test_lstm_inference_and_errors),
        cmocka_unit_test(test_lstm_cell_equals_fused),
        cmocka_unit_test(test_lstm_cell_gradcheck),
        cmocka_unit_test(test_bilstm_layout_and_gradcheck),
        cmocka_unit_test(test_bilstm_gradcheck_threads),
        cmocka_unit_test(test_bilstm_equals_composition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
