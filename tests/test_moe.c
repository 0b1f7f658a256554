/* test_moe: the mixture-of-experts head and probability cross-entropy (layers/moe) and the starter-code
 * LstmModel (model/lstm_moe).
 *
 * - mix values and the whole head against a direct double-precision formula written here with its own
 *   indexing (so a layout mistake in the kernel and in the lp_moe_*_row helpers cannot cancel out),
 *   including the dummy expert and extreme logits;
 * - bce_probs against a hand computation, including p = 0 and p = 1 where only ε keeps it finite;
 * - central-difference gradient checks of both ops (check/moe_case.c) and of the whole model
 *   (every parameter and the input, with lengths, with and without dropout);
 * - the model: group descriptions and parameter names that pruning relies on, initialisation,
 *   length masking (padding content is ignored; a row equals the same row run alone and truncated),
 *   a tiny model that learns with Adam, config kv round trip and clear errors. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/kv.h"
#include "core/ops.h"
#include "core/tape.h"
#include "layers/moe.h"
#include "model/lstm_moe.h"
#include "optim/optim.h"
#include "check/gradcheck.h"

/* p of class c from z (one row), straight from the definition, in double. */
static double mix_ref(const float *z, int C, int E, int c) {
    const float *g = z + c * (E + 1);         /* gates: class-major, E+1 per class (last = dummy) */
    const float *x = z + C * (E + 1) + c * E; /* experts after all gates, E per class */
    double m = g[0];
    for (int j = 1; j <= E; j++) m = g[j] > m ? g[j] : m;
    double den = 0, num = 0;
    for (int j = 0; j <= E; j++) den += exp((double)g[j] - m);
    for (int e = 0; e < E; e++) num += exp((double)g[e] - m) / (1.0 + exp(-(double)x[e]));
    return num / den;
}

static lp_tape new_tape(void) {
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 16), LP_OK);
    return tp;
}

/* ---- layers/moe ------------------------------------------------------------------------------- */

static void test_layout_helpers(void **state) {
    (void)state;
    assert_int_equal(lp_moe_rows(3862, 2), 3862 * 5);
    assert_int_equal(lp_moe_gate_row(2, 0, 0), 0);
    assert_int_equal(lp_moe_gate_row(2, 1, 2), 5);  /* class 1's dummy gate */
    assert_int_equal(lp_moe_expert_row(4, 2, 0, 0), 12); /* first expert row follows the 4*3 gate rows */
    assert_int_equal(lp_moe_expert_row(4, 2, 3, 1), 19); /* the last row */
}

static void test_mix_values(void **state) {
    (void)state;
    lp_tape tp = new_tape();
    struct {
        int B, C, E;
        double lo, hi;
    } cases[] = {{3, 4, 2, -3, 3}, {2, 3, 1, -3, 3}, {2, 2, 4, -3, 3}, {2, 3, 2, -60, 60}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int B = cases[k].B, C = cases[k].C, E = cases[k].E, K = C * (2 * E + 1);
        float *z = malloc((size_t)B * K * sizeof *z);
        lp_gc_fill_uniform(z, (size_t)B * K, cases[k].lo, cases[k].hi, 400 + k);
        lp_tensor *zt = lp_tape_view(&tp, z, NULL, 2, (const int[]){B, K});
        lp_tensor *p = lp_op_moe_mix(&tp, zt, C, E);
        assert_non_null(p);
        assert_int_equal(p->ndim, 2);
        assert_int_equal(p->dims[0], B);
        assert_int_equal(p->dims[1], C);
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                double want = mix_ref(z + (size_t)b * K, C, E, c);
                /* float32 softmax/sigmoid of a handful of terms: relative rounding ~1e-7 per op on values
                 * in [0,1]; 2e-6 absolute is 10x that, while a layout or softmax error moves p by >1e-2. */
                assert_true(fabs(p->data[b * C + c] - want) <= 2e-6);
                assert_true(p->data[b * C + c] >= 0.0f && p->data[b * C + c] < 1.0f);
            }
        free(z);
    }

    /* The dummy expert: equal gates and saturated experts give p = E/(E+1), not 1 (a softmax over the
     * E real gates only would give 1). Experts at -50 give 0; the dummy gate at +50 alone gives ~0. */
    {
        enum { C = 2, E = 2, K = C * (2 * E + 1) };
        float z[K] = {0};
        for (int c = 0; c < C; c++)
            for (int e = 0; e < E; e++) z[C * (E + 1) + c * E + e] = c == 0 ? 50.0f : -50.0f;
        lp_tensor *p = lp_op_moe_mix(&tp, lp_tape_view(&tp, z, NULL, 2, (const int[]){1, K}), C, E);
        assert_non_null(p);
        assert_true(fabs(p->data[0] - 2.0 / 3.0) <= 1e-6); /* float32 of 2/3 */
        assert_true(p->data[1] >= 0.0f && p->data[1] <= 1e-20f);
        for (int e = 0; e < E; e++) z[C * (E + 1) + e] = 50.0f;
        z[E] = 50.0f; /* class 0: dummy gate dominates */
        p = lp_op_moe_mix(&tp, lp_tape_view(&tp, z, NULL, 2, (const int[]){1, K}), C, E);
        assert_true(p->data[0] >= 0.0f && p->data[0] <= 1e-20f);
    }
    /* Extreme logits stay finite (softmax with the max subtracted, overflow-free sigmoid). */
    {
        enum { C = 1, E = 2, K = 5 };
        float z[K] = {1e30f, -1e30f, 3e38f, 1e30f, -3e38f};
        lp_tensor *p = lp_op_moe_mix(&tp, lp_tape_view(&tp, z, NULL, 2, (const int[]){1, K}), C, E);
        assert_true(isfinite(p->data[0]) && p->data[0] >= 0.0f && p->data[0] <= 1.0f);
    }
    lp_tape_free(&tp);
}

/* lp_moe = matmul + bias + mix: the head against h·W^T + b then the formula, in double. */
static void test_head_values(void **state) {
    (void)state;
    enum { B = 3, D = 4, C = 3, E = 2, K = C * (2 * E + 1) };
    float h[B * D], w[K * D], bias[K];
    lp_gc_fill_uniform(h, B * D, -1, 1, 411);
    lp_gc_fill_uniform(w, K * D, -1, 1, 412);
    lp_gc_fill_uniform(bias, K, -1, 1, 413);
    lp_tape tp = new_tape();
    lp_tensor *z = NULL;
    lp_tensor *p = lp_moe(&tp, lp_tape_view(&tp, h, NULL, 2, (const int[]){B, D}),
                          lp_tape_view(&tp, w, NULL, 2, (const int[]){K, D}), lp_tape_view(&tp, bias, NULL, 1, (const int[]){K}),
                          C, E, &z);
    assert_non_null(p);
    assert_non_null(z);
    for (int b = 0; b < B; b++) {
        float zr[K];
        for (int r = 0; r < K; r++) {
            double s = bias[r];
            for (int d = 0; d < D; d++) s += (double)h[b * D + d] * w[r * D + d];
            zr[r] = (float)s;
            assert_true(fabs(z->data[b * K + r] - s) <= 1e-5); /* 4-term float32 dot products of O(1) values */
        }
        for (int c = 0; c < C; c++) assert_true(fabs(p->data[b * C + c] - mix_ref(zr, C, E, c)) <= 1e-5);
    }
    lp_tape_free(&tp);
}

static void test_bce_probs_values(void **state) {
    (void)state;
    enum { B = 2, C = 3 };
    /* Edges: p = 0 with y = 1 and p = 1 with y = 0 cost −log(ε) = 11.51 instead of +inf; p = 1 with
     * y = 1 and p = 0 with y = 0 cost −log(1 + ε), slightly NEGATIVE (the starter code's formula). */
    float p[B * C] = {0.0f, 1.0f, 0.3f, 1.0f, 0.0f, 0.7f};
    float y[B * C] = {1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 0.0f};
    float gp[B * C] = {0};
    const double eps = 1e-5;
    const double want = (-log(eps) - log(eps) - log(0.3 + eps) /* row 0 */
                         - log(1 + eps) - log(1 + eps) - log(1 - 0.7 + eps)) /* row 1 */
                        / B;
    lp_tape tp = new_tape();
    lp_tensor *pt = lp_tape_view(&tp, p, gp, 2, (const int[]){B, C});
    lp_tensor *yt = lp_tape_view(&tp, y, NULL, 2, (const int[]){B, C});
    lp_tensor *loss = lp_op_bce_probs(&tp, pt, yt);
    assert_non_null(loss);
    assert_int_equal(loss->ndim, 0);
    /* accumulated in double, rounded once to float32: relative 6e-8 of ~12.3 */
    assert_true(fabs(loss->data[0] - want) <= 1e-5 * fabs(want));
    assert_int_equal(lp_tape_backward(&tp, loss), LP_OK);
    /* dL/dp = (−y/(p+ε) + (1−y)/(1−p+ε)) / B; at the edges ±1/ε/B = ±5e4, finite. */
    const double dwant[B * C] = {-1 / eps / B, 1 / eps / B, -1 / (0.3 + eps) / B,
                                 -1 / (1 + eps) / B, 1 / (1 + eps) / B, 1 / (1 - 0.7 + eps) / B};
    for (int i = 0; i < B * C; i++) {
        assert_true(isfinite(gp[i]));
        assert_true(fabs(gp[i] - dwant[i]) <= 1e-5 * fabs(dwant[i])); /* float32 division: 1e-7 relative */
    }
    /* Against the logits loss: bce_probs(sigmoid(z)) ≈ bce_logits(z) where ε is negligible. */
    {
        float z[B * C], q[B * C], yy[B * C];
        lp_gc_fill_uniform(z, B * C, -2, 2, 421);
        for (int i = 0; i < B * C; i++) {
            q[i] = lp_sigmoidf(z[i]);
            yy[i] = (float)(i % 2);
        }
        lp_tensor *a = lp_op_bce_probs(&tp, lp_tape_view(&tp, q, NULL, 2, (const int[]){B, C}),
                                       lp_tape_view(&tp, yy, NULL, 2, (const int[]){B, C}));
        lp_tensor *l = lp_op_bce_logits(&tp, lp_tape_view(&tp, z, NULL, 2, (const int[]){B, C}),
                                        lp_tape_view(&tp, yy, NULL, 2, (const int[]){B, C}));
        /* ε shifts each log by at most ε/min(p,1-p) <= 1e-4 for p in [0.12, 0.88]; 6 terms / B = 2 */
        assert_true(fabs(a->data[0] - l->data[0]) <= 5e-4);
    }
    lp_tape_free(&tp);
}

static void check_case(const char *op, lp_gc_case_fn fn) {
    lp_gc_result r;
    lp_gc_result_init(&r);
    assert_int_equal(fn(NULL, &r), LP_OK);
    lp_gc_result_print(stderr, op, &r);
    assert_true(r.ok);
    assert_true(r.accumulate_ok && r.nograd_ok);
    assert_true(lp_gc_ops_count(&r.ops, op) > 0);
    assert_true(r.n_checked > 0 && r.max_abs_grad > 1e-2); /* gradients well above the absolute floor */
}

static void test_gradcheck_ops(void **state) {
    (void)state;
    check_case("moe_mix", lp_gc_case_moe_mix);
    check_case("bce_probs", lp_gc_case_bce_probs);
}

/* ---- model/lstm_moe --------------------------------------------------------------------------- */

static void small_config(lp_lstm_moe_config *cfg, int F, int C) {
    lp_lstm_moe_config_default(cfg, F, 4, C);
    cfg->units[1] = 3; /* layers of different widths, so a mixed-up size shows */
}

static void test_model_structure(void **state) {
    (void)state;
    lp_lstm_moe_config cfg;
    lp_lstm_moe_config_default(&cfg, 1152, 1024, 3862);
    assert_int_equal(cfg.n_groups, 2);
    assert_int_equal(cfg.units[0], 1024);
    assert_int_equal(cfg.units[1], 1024);
    assert_int_equal(cfg.experts, 2);
    assert_int_equal(lp_lstm_moe_config_check(&cfg), LP_OK);

    enum { F = 5, C = 3 };
    lp_lstm_moe_config_default(&cfg, F, 6, C);
    cfg.n_groups = 3;
    cfg.units[0] = 6, cfg.units[1] = 4, cfg.units[2] = 3, cfg.experts = 3;
    lp_lstm_moe m, m2, m3;
    assert_int_equal(lp_lstm_moe_init(&m, &cfg, 7), LP_OK);
    const int R = C * 7;
    size_t want = (size_t)(24 * 5 + 24 * 6 + 24) + (16 * 6 + 16 * 4 + 16) + (12 * 4 + 12 * 3 + 12) + (size_t)(R * 3 + R);
    assert_int_equal(lp_lstm_moe_numel(&m), want);
    static const char *names[] = {"lstm1", "lstm2", "lstm3"};
    static const char *consumers[] = {"lstm2.w_ih", "lstm3.w_ih", "moe.w"};
    const int in_dims[] = {5, 6, 4};
    for (int g = 0; g < 3; g++) {
        const lp_unit_group *gr = &m.groups[g];
        assert_string_equal(gr->name, names[g]);
        assert_string_equal(gr->consumer_name, consumers[g]);
        assert_int_equal(gr->units, cfg.units[g]);
        assert_int_equal(gr->input_dim, in_dims[g]);
        assert_int_equal(gr->reverse, 0);
        assert_int_equal(gr->consumer_col0, 0);
        assert_ptr_equal(gr->consumer, lp_params_find(&m.params, consumers[g]));
        char n[LP_PARAM_NAME_MAX];
        snprintf(n, sizeof n, "%s.w_ih", names[g]);
        assert_ptr_equal(gr->w_ih, lp_params_find(&m.params, n));
        snprintf(n, sizeof n, "%s.b", names[g]);
        assert_ptr_equal(gr->b, lp_params_find(&m.params, n));
        assert_int_equal(gr->w_ih->dims[0], 4 * cfg.units[g]);
        assert_int_equal(gr->w_ih->dims[1], in_dims[g]);
        assert_int_equal(gr->w_hh->dims[1], cfg.units[g]);
        /* the consumer has one column per unit of this group */
        assert_int_equal(gr->consumer->dims[1], cfg.units[g]);
        /* init: within ±1/sqrt(H) (+1 on the forget rows of b) */
        const int H = cfg.units[g];
        const float bound = 1.0f / sqrtf((float)H);
        for (size_t i = 0; i < lp_tensor_numel(gr->w_hh); i++) assert_true(fabsf(gr->w_hh->data[i]) <= bound);
        for (int j = 0; j < 4 * H; j++) {
            float v = gr->b->data[j] - (j >= H && j < 2 * H ? LP_LSTM_MOE_FORGET_BIAS : 0.0f);
            assert_true(fabsf(v) <= bound + 1e-6f);
        }
    }
    assert_ptr_equal(m.moe_w, lp_params_find(&m.params, "moe.w"));
    assert_int_equal(m.moe_w->dims[0], R);
    assert_int_equal(m.moe_w->dims[1], 3);
    assert_int_equal(m.moe_b->dims[0], R);
    assert_null(lp_params_find(&m.params, "out.w"));
    /* same seed -> same parameters; another seed -> different ones */
    assert_int_equal(lp_lstm_moe_init(&m2, &cfg, 7), LP_OK);
    assert_int_equal(lp_lstm_moe_init(&m3, &cfg, 8), LP_OK);
    assert_memory_equal(m.params.data, m2.params.data, want * sizeof(float));
    assert_true(memcmp(m.params.data, m3.params.data, want * sizeof(float)) != 0);
    lp_lstm_moe_free(&m);
    lp_lstm_moe_free(&m2);
    lp_lstm_moe_free(&m3);
}

/* Whole-model gradient check: input 0 is x, input 1 the flat parameter block (so every parameter is
 * checked with one input slot); the forward points the parameters' grads into the checker's buffer. */
typedef struct {
    lp_lstm_moe *m;
    const int *lengths;
    float *labels;
    int dropout_seed; /* 0: no dropout */
} model_gc;

static int model_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    model_gc *u = user;
    lp_params *ps = &u->m->params;
    LP_CHECK(in[1]->data == ps->data);
    for (int k = 0; k < ps->count; k++) ps->items[k].t.grad = in[1]->grad ? in[1]->grad + ps->items[k].offset : NULL;
    const int B = in[0]->dims[0], C = u->m->cfg.classes;
    lp_tensor *y = lp_tape_view(tp, u->labels, NULL, 2, (const int[]){B, C});
    lp_rng rng;
    lp_rng_init(&rng, (uint64_t)u->dropout_seed, LP_RNG_STREAM_DROPOUT); /* re-seeded: same mask every call */
    lp_lstm_moe_out o;
    if (lp_lstm_moe_forward(u->m, tp, in[0], u->lengths, y, u->dropout_seed ? &rng : NULL, &o) != LP_OK) return 0;
    out[0] = o.loss;
    out[1] = o.probs;
    return 2;
}

static void test_model_gradcheck(void **state) {
    (void)state;
    enum { B = 3, T = 5, F = 3, C = 3 };
    lp_lstm_moe_config cfg;
    small_config(&cfg, F, C);
    lp_lstm_moe m;
    assert_int_equal(lp_lstm_moe_init(&m, &cfg, 3), LP_OK);
    /* Weights a bit above the default init (±0.6) so gradients through both layers stay of order 0.1
     * (the same reasoning and default tolerances as check/lstm_case.c). */
    lp_gc_fill_uniform(m.params.data, m.params.numel, -0.6, 0.6, 431);
    float x[B * T * F], y[B * C] = {1, 0, 0, 0, 1, 1, 1, 1, 0};
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 432);
    static const int lengths[B] = {5, 2, 0}; /* full, partial, empty */
    lp_gc_input in[2] = {{"x", x, 3, {B, T, F}, 0}, {"params", m.params.data, 1, {(int)m.params.numel}, 0}};
    model_gc u = {&m, lengths, y, 0};
    const struct {
        const int *lengths;
        int dropout_seed;
        float dropout;
    } cfgs[] = {{NULL, 0, 0.0f}, {lengths, 0, 0.0f}, {lengths, 5, 0.3f}};
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        u.lengths = cfgs[k].lengths;
        u.dropout_seed = cfgs[k].dropout_seed;
        m.cfg.dropout = cfgs[k].dropout;
        lp_gc_result r;
        assert_int_equal(lp_gradcheck(model_forward, &u, in, 2, NULL, &r), LP_OK);
        lp_gc_result_print(stderr, "lstm_moe", &r);
        assert_true(r.ok);
        assert_true(r.max_abs_grad > 0.1);
        assert_int_equal(lp_gc_ops_count(&r.ops, "lstm"), 2);
        assert_int_equal(lp_gc_ops_count(&r.ops, "moe_mix"), 1);
        assert_int_equal(lp_gc_ops_count(&r.ops, "bce_probs"), 1);
        assert_int_equal(lp_gc_ops_count(&r.ops, "dropout"), cfgs[k].dropout > 0 ? 2 : 0);
        assert_int_equal(r.n_checked, (size_t)(B * T * F) + m.params.numel);
    }
    for (int k = 0; k < m.params.count; k++) /* back to the model's own grad block */
        m.params.items[k].t.grad = m.params.grad + m.params.items[k].offset;
    lp_lstm_moe_free(&m);
}

/* Padding content is ignored, and a sequence's result equals the same sequence run alone, truncated. */
static void test_model_lengths(void **state) {
    (void)state;
    enum { B = 3, T = 6, F = 3, C = 4 };
    lp_lstm_moe_config cfg;
    small_config(&cfg, F, C);
    lp_lstm_moe m;
    assert_int_equal(lp_lstm_moe_init(&m, &cfg, 11), LP_OK);
    float x[B * T * F], x2[B * T * F];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 441);
    const int lengths[B] = {6, 3, 1};
    memcpy(x2, x, sizeof x);
    for (int b = 0; b < B; b++)
        for (int t = lengths[b]; t < T; t++)
            for (int f = 0; f < F; f++) x2[(b * T + t) * F + f] = 100.0f; /* garbage padding */
    lp_tape tp = new_tape();
    lp_tape_set_grad(&tp, 0);
    lp_lstm_moe_out o1, o2;
    assert_int_equal(lp_lstm_moe_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (const int[]){B, T, F}), lengths,
                                         NULL, NULL, &o1),
                     LP_OK);
    assert_int_equal(lp_lstm_moe_forward(&m, &tp, lp_tape_view(&tp, x2, NULL, 3, (const int[]){B, T, F}), lengths,
                                         NULL, NULL, &o2),
                     LP_OK);
    assert_null(o1.loss);
    assert_memory_equal(o1.probs->data, o2.probs->data, B * C * sizeof(float));
    for (int b = 0; b < B; b++) {
        lp_lstm_moe_out o;
        const int L = lengths[b];
        assert_int_equal(lp_lstm_moe_forward(&m, &tp, lp_tape_view(&tp, x + b * T * F, NULL, 3, (const int[]){1, L, F}),
                                             NULL, NULL, NULL, &o),
                         LP_OK);
        /* same arithmetic on fewer rows; GEMM blocking may differ by a few ulps */
        for (int c = 0; c < C; c++) assert_true(fabsf(o.probs->data[c] - o1.probs->data[b * C + c]) <= 1e-6f);
        for (int j = 0; j < cfg.units[1]; j++)
            assert_true(fabsf(o.h_last->data[j] - o1.h_last->data[b * cfg.units[1] + j]) <= 1e-6f);
    }
    /* responses: [B,T,H_g] per group, zero at padding */
    for (int g = 0; g < 2; g++) {
        lp_tensor *h = o1.group_h[g];
        assert_int_equal(h->dims[2], cfg.units[g]);
        for (int j = 0; j < cfg.units[g]; j++) assert_true(h->data[(2 * T + 4) * cfg.units[g] + j] == 0.0f);
    }
    lp_tape_free(&tp);
    lp_lstm_moe_free(&m);
}

/* A tiny model fits a small fixed batch: 50 Adam steps reduce the loss a lot. Labels depend on the
 * sequence content through time (class c: the mean of feature c over the valid frames is positive). */
static void test_model_learns(void **state) {
    (void)state;
    enum { B = 12, T = 6, F = 4, C = 3, STEPS = 50 };
    lp_lstm_moe_config cfg;
    lp_lstm_moe_config_default(&cfg, F, 8, C);
    lp_lstm_moe m;
    assert_int_equal(lp_lstm_moe_init(&m, &cfg, 21), LP_OK);
    float x[B * T * F], y[B * C];
    int lengths[B];
    lp_gc_fill_uniform(x, B * T * F, -1, 1, 451);
    for (int b = 0; b < B; b++) {
        lengths[b] = 2 + b % (T - 1);
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int t = 0; t < lengths[b]; t++) s += x[(b * T + t) * F + c];
            y[b * C + c] = s > 0 ? 1.0f : 0.0f;
        }
    }
    lp_optim opt;
    lp_optim_config oc = lp_optim_defaults(LP_OPTIM_ADAM);
    assert_int_equal(lp_optim_init(&opt, m.params.numel, &oc), LP_OK);
    lp_tape tp = new_tape();
    float first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        lp_tape_reset(&tp);
        lp_params_zero_grad(&m.params);
        lp_lstm_moe_out o;
        assert_int_equal(lp_lstm_moe_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (const int[]){B, T, F}), lengths,
                                             lp_tape_view(&tp, y, NULL, 2, (const int[]){B, C}), NULL, &o),
                         LP_OK);
        assert_int_equal(lp_tape_backward(&tp, o.loss), LP_OK);
        double norm;
        assert_int_equal(lp_optim_grad_norm(m.params.grad, m.params.numel, &norm), LP_OK);
        assert_true(norm > 0);
        assert_int_equal(lp_optim_step(&opt, m.params.data, m.params.grad, 2e-2f), LP_OK);
        if (step == 0) first = o.loss->data[0];
        last = o.loss->data[0];
    }
    fprintf(stderr, "lstm_moe learns: loss %.4f -> %.4f after %d Adam steps\n", first, last, STEPS);
    /* Untrained, the loss is ~C·log 2 ≈ 2; it reaches ~0.05 (under 3% of the start) here. A wrong
     * gradient (sign, layout, missing 1/B) stalls or diverges; we ask for less than 20% of the start
     * (the subtler mistakes are the gradient checks' job). */
    assert_true(isfinite(last));
    assert_true(last < 0.2f * first);
    lp_tape_free(&tp);
    lp_optim_free(&opt);
    lp_lstm_moe_free(&m);
}

static void test_config_kv(void **state) {
    (void)state;
    lp_lstm_moe_config cfg, back;
    lp_lstm_moe_config_default(&cfg, 1152, 64, 3862);
    cfg.n_groups = 3;
    cfg.units[0] = 64, cfg.units[1] = 48, cfg.units[2] = 17;
    cfg.experts = 4;
    cfg.dropout = 0.25f;
    lp_kv kv;
    lp_kv_init(&kv);
    assert_int_equal(lp_lstm_moe_config_to_kv(&cfg, &kv), LP_OK);
    assert_string_equal(lp_kv_get(&kv, "model.kind"), "lstm");
    assert_string_equal(lp_kv_get(&kv, "model.units"), "64,48,17");
    assert_string_equal(lp_kv_get(&kv, "model.experts"), "4");
    assert_int_equal(lp_lstm_moe_config_from_kv(&back, &kv), LP_OK);
    assert_int_equal(back.input_dim, 1152);
    assert_int_equal(back.n_groups, 3);
    assert_int_equal(back.units[0], 64);
    assert_int_equal(back.units[1], 48);
    assert_int_equal(back.units[2], 17);
    assert_int_equal(back.classes, 3862);
    assert_int_equal(back.experts, 4);
    assert_true(back.dropout == 0.25f);
    /* the paper model's reader refuses it, and we refuse the paper model's config */
    lp_paper_config pc;
    assert_int_equal(lp_paper_config_from_kv(&pc, &kv), LP_ERR_FORMAT);
    lp_kv_set(&kv, "model.kind", "paper");
    assert_int_equal(lp_lstm_moe_config_from_kv(&back, &kv), LP_ERR_FORMAT);
    assert_non_null(strstr(lp_last_error(), "expected 'lstm'"));
    lp_kv_set(&kv, "model.kind", "lstm");

    struct {
        const char *key, *val, *needle;
    } bad[] = {
        {"model.units", "64,48", "model.units"},         /* fewer than model.groups */
        {"model.units", "64,,17", "model.units"},
        {"model.units", "64,48,0", "model.units"},
        {"model.units", "64,48,17,5", "model.units"},
        {"model.experts", "0", "model.experts"},
        {"model.experts", "two", "model.experts"},
        {"model.groups", "0", "model.groups"},
        {"model.groups", "9", "model.groups"},
        {"model.classes", "-3", "model.classes"},
        {"model.dropout", "1.5", "dropout"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lp_kv k2;
        lp_kv_init(&k2);
        assert_int_equal(lp_lstm_moe_config_to_kv(&cfg, &k2), LP_OK);
        lp_kv_set(&k2, bad[k].key, bad[k].val);
        assert_int_equal(lp_lstm_moe_config_from_kv(&back, &k2), LP_ERR_FORMAT);
        if (!strstr(lp_last_error(), bad[k].needle)) fail_msg("'%s' for %s = %s", lp_last_error(), bad[k].key, bad[k].val);
        lp_kv_free(&k2);
    }
    { /* a missing key is named */
        lp_kv k2;
        lp_kv_init(&k2);
        lp_kv_set(&k2, "model.kind", "lstm");
        lp_kv_set(&k2, "model.input_dim", "10");
        lp_kv_set(&k2, "model.groups", "2");
        lp_kv_set(&k2, "model.classes", "5");
        assert_int_equal(lp_lstm_moe_config_from_kv(&back, &k2), LP_ERR_FORMAT);
        assert_non_null(strstr(lp_last_error(), "model.experts"));
        lp_kv_free(&k2);
    }
    lp_kv_free(&kv);
}

static void test_config_errors(void **state) {
    (void)state;
    struct {
        int field, value;
        const char *needle;
    } bad[] = {
        {0, 0, "input_dim"}, {1, 0, "n_groups"}, {1, 9, "n_groups"}, {2, 0, "lstm2"},
        {3, 0, "classes"},   {4, 0, "experts"},  {4, 65, "experts"}, {5, 0, "dropout"},
        {6, 0, "too large"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lp_lstm_moe_config cfg;
        lp_lstm_moe_config_default(&cfg, 10, 8, 5);
        switch (bad[k].field) {
        case 0: cfg.input_dim = bad[k].value; break;
        case 1: cfg.n_groups = bad[k].value; break;
        case 2: cfg.units[1] = bad[k].value; break;
        case 3: cfg.classes = bad[k].value; break;
        case 4: cfg.experts = bad[k].value; break;
        case 5: cfg.dropout = 1.0f; break;
        case 6: cfg.classes = 100000000, cfg.experts = 20; break;
        }
        assert_int_equal(lp_lstm_moe_config_check(&cfg), LP_ERR_ARG);
        if (!strstr(lp_last_error(), bad[k].needle)) fail_msg("'%s' does not name '%s'", lp_last_error(), bad[k].needle);
        lp_lstm_moe m;
        assert_int_equal(lp_lstm_moe_init(&m, &cfg, 1), LP_ERR_ARG);
        assert_null(m.params.data);
    }

    /* forward: bad input, labels and lengths are runtime errors, not aborts */
    enum { B = 2, T = 3, F = 4, C = 2 };
    lp_lstm_moe_config cfg;
    lp_lstm_moe_config_default(&cfg, F, 3, C);
    lp_lstm_moe m;
    assert_int_equal(lp_lstm_moe_init(&m, &cfg, 1), LP_OK);
    float x[B * T * (F + 1)] = {0}, y[B * (C + 1)] = {0};
    lp_tape tp = new_tape();
    lp_lstm_moe_out o;
    assert_int_equal(lp_lstm_moe_forward(&m, &tp, lp_tape_view(&tp, x, NULL, 3, (const int[]){B, T, F + 1}), NULL, NULL,
                                         NULL, &o),
                     LP_ERR_SHAPE);
    assert_non_null(strstr(lp_last_error(), "[B, T, 4]"));
    lp_tensor *xt = lp_tape_view(&tp, x, NULL, 3, (const int[]){B, T, F});
    assert_int_equal(lp_lstm_moe_forward(&m, &tp, xt, NULL, lp_tape_view(&tp, y, NULL, 2, (const int[]){B, C + 1}),
                                         NULL, &o),
                     LP_ERR_SHAPE);
    assert_non_null(strstr(lp_last_error(), "labels"));
    const int bad_len[B] = {3, 4};
    assert_int_equal(lp_lstm_moe_forward(&m, &tp, xt, bad_len, NULL, NULL, &o), LP_ERR_ARG);
    assert_non_null(strstr(lp_last_error(), "length 4 of sequence 1"));
    assert_null(o.probs);
    lp_tape_free(&tp);
    lp_lstm_moe_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_helpers),  cmocka_unit_test(test_mix_values),
        cmocka_unit_test(test_head_values),     cmocka_unit_test(test_bce_probs_values),
        cmocka_unit_test(test_gradcheck_ops),   cmocka_unit_test(test_model_structure),
        cmocka_unit_test(test_model_gradcheck), cmocka_unit_test(test_model_lengths),
        cmocka_unit_test(test_model_learns),    cmocka_unit_test(test_config_kv),
        cmocka_unit_test(test_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
