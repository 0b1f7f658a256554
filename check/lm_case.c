/* lm_case: the central-difference gradient checks of the language-model ops (lm/lm_ops.h) —
 * embedding and softmax_xent — shared by tests/test_ops.c (one case per op) and
 * tests/test_lm.c.
 *
 * Embedding: a [7,4] table looked up by [3,5] ids that repeat some rows (the scatter-add must sum them),
 * skip others (their gradient must stay 0) and include the first and last row.
 * Softmax cross-entropy: three configurations merged into one result — a plain [4,6] batch (V below the
 * 8-lane width of the reductions), [2,3,13] logits (leading axes collapsed into N = 6; lanes plus a tail)
 * with rows shifted by +100 and −100 (exp(100) overflows float32: a naive softmax gives Inf/NaN there),
 * and [5,19] logits where one logit dominates its row (softmax ≈ one-hot, gradient ≈ 0 but for the rest). */
#include <string.h>

#include "lm/lm_ops.h"
#include "check/gradcheck.h"

/* ---- embedding ---- */

typedef struct {
    const int32_t *ids;
    int B, T;
} emb_cfg;

static int emb_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const emb_cfg *c = user;
    (void)n_in;
    out[0] = lp_op_embedding(tp, in[0], c->ids, c->B, c->T);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_embedding(const lp_gc_opts *opts, lp_gc_result *res) {
    enum { V = 7, E = 4, B = 3, T = 5 };
    static const int32_t ids[B * T] = {0, 3, 3, 6, 1, /* row 3 twice */
                                       6, 6, 6, 0, 3, /* row 6 three more times */
                                       1, 5, 0, 3, 3};
    /* rows 2 and 4 are never used: their gradient must be exactly 0 */
    float table[V * E];
    lp_gc_fill_uniform(table, V * E, -1, 1, 31);
    lp_gc_input in[1] = {{"table", table, 2, {V, E}, 0}};
    emb_cfg c = {ids, B, T};
    /* The op is linear in the table and copies values exactly, so the difference quotient is exact up to
     * double rounding: tolerances 100x tighter than the given ones (atol 1e-5, rtol 1e-4 at the defaults)
     * still have margin. */
    lp_gc_opts o = lp_gc_opts_or_default(opts);
    o.atol *= 1e-2;
    o.rtol *= 1e-2;
    lp_gc_result_init(res);
    lp_gc_result r;
    lp_status st = lp_gradcheck(emb_forward, &c, in, 1, &o, &r);
    lp_gc_result_merge(res, &r);
    return st;
}

/* ---- softmax cross-entropy ---- */

typedef struct {
    const int32_t *targets;
} xent_cfg;

static int xent_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const xent_cfg *c = user;
    (void)n_in;
    out[0] = lp_op_softmax_xent(tp, in[0], c->targets);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_softmax_xent(const lp_gc_opts *opts, lp_gc_result *res) {
    /* Tolerances: the loss is O(1) and its gradients are (softmax - onehot)/N, of order 0.01..0.2. The
     * difference quotient carries float32 rounding of the loss (~6e-8 * few / 2eps ~ 1e-5 at eps 1e-2) and
     * a truncation error eps^2/6 * |f'''| with |f'''| <= 1/N for the softmax (~2e-6), so atol 5e-5 (20x
     * tighter than the default 1e-3, which would let a wrong 1/N factor on small gradients pass) and
     * rtol 1e-2; the given atol is scaled by 1/20. */
    lp_gc_opts o = lp_gc_opts_or_default(opts);
    o.atol *= 0.05;
    lp_gc_result_init(res);
    lp_gc_result r;
    lp_status st;

    { /* [4,6], V below the lane width */
        float z[4 * 6];
        lp_gc_fill_uniform(z, 4 * 6, -2, 2, 41);
        static const int32_t y[4] = {0, 5, 2, 2};
        xent_cfg c = {y};
        lp_gc_input in[1] = {{"logits", z, 2, {4, 6}, 0}};
        st = lp_gradcheck(xent_forward, &c, in, 1, &o, &r);
        lp_gc_result_merge(res, &r);
        if (st != LP_OK) return st;
    }
    { /* [2,3,13]: N = 6 rows, lanes + tail; rows 1 and 4 shifted by +100 and -100 */
        enum { N = 6, V = 13 };
        float z[N * V];
        lp_gc_fill_uniform(z, N * V, -3, 3, 42);
        for (int j = 0; j < V; j++) {
            z[1 * V + j] += 100.0f;
            z[4 * V + j] -= 100.0f;
        }
        static const int32_t y[N] = {12, 0, 7, 3, 12, 8};
        xent_cfg c = {y};
        lp_gc_input in[1] = {{"logits", z, 3, {2, 3, V}, 0}};
        st = lp_gradcheck(xent_forward, &c, in, 1, &o, &r);
        lp_gc_result_merge(res, &r);
        if (st != LP_OK) return st;
    }
    { /* [5,19]: one dominant logit per row, sometimes the target, sometimes not */
        enum { N = 5, V = 19 };
        float z[N * V];
        lp_gc_fill_uniform(z, N * V, -1, 1, 43);
        static const int32_t y[N] = {4, 18, 0, 9, 9};
        static const int dominant[N] = {4, 2, 0, 17, 9};
        for (int n = 0; n < N; n++) z[n * V + dominant[n]] += 8.0f;
        xent_cfg c = {y};
        lp_gc_input in[1] = {{"logits", z, 2, {N, V}, 0}};
        st = lp_gradcheck(xent_forward, &c, in, 1, &o, &r);
        lp_gc_result_merge(res, &r);
        if (st != LP_OK) return st;
    }
    return LP_OK;
}
