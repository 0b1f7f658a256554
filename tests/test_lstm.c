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

#include "core/tape.h"
#include "layers/lstm.h"
#include "tests/common/gradcheck.h"
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
    assert_int_equal(tp.nodes[0].op, LP_OP_LSTM);
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

/* Central differences for forward, reverse, lengths, h0/c0 and all together (tests/common/lstm_case.c). */
static void test_lstm_gradcheck(void **state) {
    (void)state;
    lp_gc_result res;
    assert_int_equal(lp_test_lstm_gradcheck_case(&res), LP_OK);
    lp_gc_result_print(stderr, "lstm", &res);
    assert_true(res.ok);
    assert_true(res.accumulate_ok);
    assert_true(res.nograd_ok);
    assert_true(res.op_count[LP_OP_LSTM] == 5); /* one LSTM node per configuration */
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
        es = fmax(es, fabs(lp_lstm_sigmoid(xf) - s));
        et = fmax(et, fabs(lp_lstm_tanh(xf) - th));
    }
    for (float xf = 1e-20f; xf < 0.5f; xf *= 1.7f) rt = fmax(rt, fabs(lp_lstm_tanh(xf) - tanh(xf)) / tanh(xf));
    assert_true(es < 4e-7);
    assert_true(et < 4e-7);
    assert_true(rt < 1e-6);
    assert_true(lp_lstm_sigmoid(-200.0f) >= 0.0f && lp_lstm_sigmoid(200.0f) == 1.0f);
    assert_true(lp_lstm_tanh(-200.0f) >= -1.0f && lp_lstm_tanh(200.0f) <= 1.0f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lstm_activations),
        cmocka_unit_test(test_lstm_layer_reference),
        cmocka_unit_test(test_lstm_masked_reference),
        cmocka_unit_test(test_lstm_gradcheck),
        cmocka_unit_test(test_lstm_reverse_lengths_is_packed),
        cmocka_unit_test(test_lstm_inference_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
