/* ops_case: the central-difference gradient checks of the primitive ops of core/ops, one case per op
 * (listed with every other op's case in check/registry.c and run by tests/test_ops.c).
 *
 * Each case merges several small configurations into one result: both transposes, leading axes and an
 * operand used twice for matmul; an input without gradient where an op has several (only the others
 * flow); saturated logits for bce_logits; lengths for mean_t; an output left unused for split. Inputs
 * are of order 1, so the default tolerances of lp_gc_opts_default apply as justified in gradcheck.c. */
#include "core/ops.h"
#include "core/rng.h"
#include "check/gradcheck.h"

/* Run one configuration and fold it into the case's result. */
static lp_status run_config(lp_gc_result *acc, const lp_gc_opts *opts, const char *what, lp_gc_forward_fn fwd, void *user,
                            lp_gc_input *in, int n_in) {
    lp_gc_result r;
    lp_status st = lp_gradcheck(fwd, user, in, n_in, opts, &r);
    lp_gc_result_merge(acc, &r);
    if (!r.ok || st != LP_OK) lp_gc_result_print(stderr, what, &r);
    return st;
}

typedef struct {
    int ta, tb, alias; /* alias: use input 0 as both operands (x · x^T) */
} mm_cfg;

static int fwd_matmul(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    const mm_cfg *c = u;
    out[0] = lp_op_matmul(tp, in[0], c->alias ? in[0] : in[1], c->ta, c->tb);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_matmul(const lp_gc_opts *opts, lp_gc_result *res) {
    enum { M = 3, K = 4, N = 5 };
    float a[60], b[60];
    lp_status st = LP_OK;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int da[2] = {ta ? K : M, ta ? M : K}, db[2] = {tb ? N : K, tb ? K : N};
            lp_gc_input in[2] = {lp_gc_input_uniform("a", a, 2, da, -1, 1, 11),
                                 lp_gc_input_uniform("b", b, 2, db, -1, 1, 12)};
            mm_cfg c = {ta, tb, 0};
            if (st == LP_OK) st = run_config(res, opts, "matmul", fwd_matmul, &c, in, 2);
        }
    { /* leading axes collapsed: x [2,3,4] · W^T, W [5,4] -> [2,3,5] */
        int dx[3] = {2, 3, K}, dw[2] = {N, K};
        lp_gc_input in[2] = {lp_gc_input_uniform("x", a, 3, dx, -1, 1, 13),
                             lp_gc_input_uniform("w", b, 2, dw, -1, 1, 14)};
        mm_cfg c = {0, 1, 0};
        if (st == LP_OK) st = run_config(res, opts, "matmul3d", fwd_matmul, &c, in, 2);
        in[0].no_grad = 1; /* features without grad: only dW flows */
        if (st == LP_OK) st = run_config(res, opts, "matmul-x", fwd_matmul, &c, in, 2);
    }
    { /* the same tensor as both operands: x · x^T, both GEMM contributions land in dx */
        int dx[2] = {M, K};
        lp_gc_input in[1] = {lp_gc_input_uniform("x", a, 2, dx, -1, 1, 15)};
        mm_cfg c = {0, 1, 1};
        if (st == LP_OK) st = run_config(res, opts, "matmul-xx", fwd_matmul, &c, in, 1);
    }
    return st;
}

typedef struct {
    int alias;
} ew_cfg;

static int fwd_add(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    out[0] = lp_op_add(tp, in[0], ((ew_cfg *)u)->alias ? in[0] : in[1]);
    return out[0] ? 1 : 0;
}

static int fwd_mul(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    out[0] = lp_op_mul(tp, in[0], ((ew_cfg *)u)->alias ? in[0] : in[1]);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_add(const lp_gc_opts *opts, lp_gc_result *res) {
    float a[24], b[24];
    int d[3] = {2, 3, 4};
    lp_gc_input in[2] = {lp_gc_input_uniform("a", a, 3, d, -1, 1, 21),
                         lp_gc_input_uniform("b", b, 3, d, -1, 1, 22)};
    ew_cfg c0 = {0}, c1 = {1};
    lp_status st = run_config(res, opts, "add", fwd_add, &c0, in, 2);
    if (st == LP_OK) st = run_config(res, opts, "add-aa", fwd_add, &c1, in, 1);
    return st;
}

lp_status lp_gc_case_mul(const lp_gc_opts *opts, lp_gc_result *res) {
    float a[15], b[15];
    int d[2] = {3, 5};
    lp_gc_input in[2] = {lp_gc_input_uniform("a", a, 2, d, -2, 2, 31),
                         lp_gc_input_uniform("b", b, 2, d, -2, 2, 32)};
    ew_cfg c0 = {0}, c1 = {1};
    lp_status st = run_config(res, opts, "mul", fwd_mul, &c0, in, 2);
    if (st == LP_OK) st = run_config(res, opts, "mul-aa", fwd_mul, &c1, in, 1);
    return st;
}

static int fwd_bias_add(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    (void)n_in;
    out[0] = lp_op_bias_add(tp, in[0], in[1]);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_bias_add(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[24], b[4];
    int dx3[3] = {2, 3, 4}, dx2[2] = {6, 4}, db[1] = {4};
    lp_gc_input in[2] = {lp_gc_input_uniform("x", x, 3, dx3, -1, 1, 41),
                         lp_gc_input_uniform("b", b, 1, db, -1, 1, 42)};
    lp_status st = run_config(res, opts, "bias_add3d", fwd_bias_add, NULL, in, 2);
    in[0] = lp_gc_input_uniform("x", x, 2, dx2, -1, 1, 43);
    if (st == LP_OK) st = run_config(res, opts, "bias_add", fwd_bias_add, NULL, in, 2);
    in[0].no_grad = 1;
    if (st == LP_OK) st = run_config(res, opts, "bias_add-x", fwd_bias_add, NULL, in, 2);
    return st;
}

static int fwd_sigmoid(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    (void)n_in;
    out[0] = lp_op_sigmoid(tp, in[0]);
    return out[0] ? 1 : 0;
}

static int fwd_tanh(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    (void)n_in;
    out[0] = lp_op_tanh(tp, in[0]);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_sigmoid(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[24];
    int d[2] = {4, 6};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 2, d, -4, 4, 51)};
    return run_config(res, opts, "sigmoid", fwd_sigmoid, NULL, in, 1);
}

lp_status lp_gc_case_tanh(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[24];
    int d[2] = {4, 6};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 2, d, -3, 3, 61)};
    return run_config(res, opts, "tanh", fwd_tanh, NULL, in, 1);
}

static int fwd_concat(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    out[0] = lp_op_concat(tp, in, n_in);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_concat(const lp_gc_opts *opts, lp_gc_result *res) {
    float a[12], b[24], c[18];
    int da[3] = {2, 3, 2}, db[3] = {2, 3, 4}, dc[3] = {2, 3, 3};
    lp_gc_input in[3] = {lp_gc_input_uniform("a", a, 3, da, -1, 1, 71),
                         lp_gc_input_uniform("b", b, 3, db, -1, 1, 72),
                         lp_gc_input_uniform("c", c, 3, dc, -1, 1, 73)};
    lp_status st = run_config(res, opts, "concat", fwd_concat, NULL, in, 3);
    in[1].no_grad = 1; /* a constant block in the middle: the others still get theirs at the right offsets */
    if (st == LP_OK) st = run_config(res, opts, "concat-b", fwd_concat, NULL, in, 3);
    return st;
}

typedef struct {
    int k;
    int sizes[4];
    int skip; /* index of an output not returned (its grad stays 0), -1 for none */
} split_cfg;

static int fwd_split(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    const split_cfg *c = u;
    lp_tensor *parts[4];
    if (lp_op_split(tp, in[0], c->k, c->sizes, parts) != LP_OK) return 0;
    int n = 0;
    for (int i = 0; i < c->k; i++)
        if (i != c->skip) out[n++] = parts[i];
    return n;
}

lp_status lp_gc_case_split(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[54];
    int d3[3] = {2, 3, 9}, d2[2] = {3, 8};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 3, d3, -1, 1, 81)};
    split_cfg c3 = {3, {2, 4, 3, 0}, -1};
    lp_status st = run_config(res, opts, "split3", fwd_split, &c3, in, 1);
    c3.skip = 1;
    if (st == LP_OK) st = run_config(res, opts, "split3-skip", fwd_split, &c3, in, 1);
    in[0] = lp_gc_input_uniform("x", x, 2, d2, -1, 1, 82);
    split_cfg c4 = {4, {2, 2, 1, 3}, -1}; /* LSTM-style four gate blocks */
    if (st == LP_OK) st = run_config(res, opts, "split4", fwd_split, &c4, in, 1);
    return st;
}

static int fwd_slice_t(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    out[0] = lp_op_slice_t(tp, in[0], *(int *)u);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_slice_t(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[24];
    int d[3] = {2, 4, 3};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 3, d, -1, 1, 91)};
    lp_status st = LP_OK;
    int ts[3] = {0, 2, 3};
    for (int i = 0; i < 3 && st == LP_OK; i++) st = run_config(res, opts, "slice_t", fwd_slice_t, &ts[i], in, 1);
    return st;
}

static int fwd_mean_t(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    out[0] = lp_op_mean_t(tp, in[0], u);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_mean_t(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[30];
    int d[3] = {3, 5, 2};
    int lengths[3] = {5, 2, 3};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 3, d, -1, 1, 101)};
    lp_status st = run_config(res, opts, "mean_t", fwd_mean_t, NULL, in, 1);
    if (st == LP_OK) st = run_config(res, opts, "mean_t-len", fwd_mean_t, lengths, in, 1);
    return st;
}

static int fwd_sum(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    (void)n_in;
    out[0] = lp_op_sum(tp, in[0]);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_sum(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[20];
    int d[2] = {4, 5};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 2, d, -1, 1, 111)};
    return run_config(res, opts, "sum", fwd_sum, NULL, in, 1);
}

static int fwd_bce(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)u;
    (void)n_in;
    out[0] = lp_op_bce_logits(tp, in[0], in[1]);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_bce_logits(const lp_gc_opts *opts, lp_gc_result *res) {
    float z[24], y[24];
    int d[2] = {4, 6};
    lp_gc_input in[2] = {lp_gc_input_uniform("z", z, 2, d, -4, 4, 121),
                         lp_gc_input_uniform("y", y, 2, d, 0, 1, 122)};
    in[1].no_grad = 1;
    lp_status st = run_config(res, opts, "bce", fwd_bce, NULL, in, 2);
    /* Saturated logits with hard 0/1 targets (the stable form must stay smooth there). */
    in[0] = lp_gc_input_uniform("z", z, 2, d, -20, 20, 123);
    for (int i = 0; i < 24; i++) y[i] = (float)(i % 3 == 0);
    if (st == LP_OK) st = run_config(res, opts, "bce-sat", fwd_bce, NULL, in, 2);
    return st;
}

typedef struct {
    float p;
    uint64_t seed;
} drop_cfg;

static int fwd_dropout(void *u, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    const drop_cfg *c = u;
    lp_rng rng; /* re-seeded on every call: the checker needs the same mask in every pass */
    lp_rng_init(&rng, c->seed, LP_RNG_STREAM_DROPOUT);
    out[0] = lp_op_dropout(tp, in[0], c->p, &rng);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_dropout(const lp_gc_opts *opts, lp_gc_result *res) {
    float x[48];
    int d2[2] = {4, 10}, d3[3] = {2, 4, 6};
    lp_gc_input in[1] = {lp_gc_input_uniform("x", x, 2, d2, -1, 1, 131)};
    drop_cfg c = {0.3f, 7};
    lp_status st = run_config(res, opts, "dropout", fwd_dropout, &c, in, 1);
    in[0] = lp_gc_input_uniform("x", x, 3, d3, -1, 1, 132);
    drop_cfg c2 = {0.5f, 8};
    if (st == LP_OK) st = run_config(res, opts, "dropout3d", fwd_dropout, &c2, in, 1);
    return st;
}
