/* moe: the mixture-of-experts head and the probability cross-entropy, see moe.h.
 *
 * The mix kernel works class by class on the E+1 gate logits and E expert logits of one row; E is small
 * (2 in the starter code), so the softmax is recomputed on the fly (two passes over the gates) instead
 * of being stored, and the backward recomputes it from z in the same way. */
#include "layers/moe.h"

#include <math.h>
#include <stdio.h>

#include "core/ops.h"
#include "layers/dense.h"

/* Softmax normaliser of one class's gates: returns the max gate and writes 1/Σ exp(g_j − max).
 * Subtracting the max keeps exp() <= 1, so any finite logits work. */
static inline float gate_norm(const float *g, int E, float *inv_sum) {
    float m = g[0];
    for (int j = 1; j <= E; j++) m = fmaxf(m, g[j]);
    float s = 0.0f;
    for (int j = 0; j <= E; j++) s += expf(g[j] - m);
    *inv_sum = 1.0f / s; /* s >= 1 (the max term is exp(0)) */
    return m;
}

/* p of one class from its gates g [E+1] and experts x [E]. */
static inline float mix_one(const float *g, const float *x, int E, float m, float inv_sum) {
    float p = 0.0f;
    for (int e = 0; e < E; e++) p += expf(g[e] - m) * inv_sum * lp_sigmoidf(x[e]);
    return p;
}

void lp_moe_mix_forward(float *p, const float *z, size_t N, int C, int E) {
    const size_t K = (size_t)lp_moe_rows(C, E);
    for (size_t n = 0; n < N; n++) {
        const float *zr = z + n * K;
        float *pr = p + n * (size_t)C;
        for (int c = 0; c < C; c++) {
            const float *g = zr + lp_moe_gate_row(E, c, 0), *x = zr + lp_moe_expert_row(C, E, c, 0);
            float inv;
            float m = gate_norm(g, E, &inv);
            pr[c] = mix_one(g, x, E, m, inv);
        }
    }
}

void lp_moe_mix_backward(float *dz, const float *dp, const float *z, size_t N, int C, int E) {
    const size_t K = (size_t)lp_moe_rows(C, E);
    for (size_t n = 0; n < N; n++) {
        const float *zr = z + n * K;
        float *dzr = dz + n * K;
        for (int c = 0; c < C; c++) {
            const int gr = lp_moe_gate_row(E, c, 0), xr = lp_moe_expert_row(C, E, c, 0); /* experts after all gates */
            const float *g = zr + gr, *x = zr + xr;
            float *dg = dzr + gr, *dx = dzr + xr;
            const float d = dp[n * (size_t)C + c];
            float inv;
            float m = gate_norm(g, E, &inv);
            float p = mix_one(g, x, E, m, inv);
            for (int e = 0; e < E; e++) {
                float s = expf(g[e] - m) * inv, sg = lp_sigmoidf(x[e]);
                dg[e] += d * s * (sg - p);
                dx[e] += d * s * sg * (1.0f - sg);
            }
            dg[E] += d * (expf(g[E] - m) * inv) * (0.0f - p); /* the dummy expert predicts 0 */
        }
    }
}

/* ---- moe_mix ----------------------------------------------------------------------------------- */

static void moe_mix_backward(lp_node *n) {
    lp_tensor *z = n->in[0], *p = n->out[0];
    if (!z->grad) return;
    lp_moe_mix_backward(z->grad, p->grad, z->data, lp_tensor_rows(z), n->iarg[0], n->iarg[1]);
}

static const lp_op_desc moe_mix_op = {"moe_mix", moe_mix_backward};

lp_tensor *lp_op_moe_mix(lp_tape *tp, lp_tensor *z, int classes, int experts) {
    if (!z) return NULL;
    LP_CHECK(classes >= 1 && experts >= 1);
    LP_SHAPE_CHECK(z->ndim >= 1 && z->ndim <= LP_MAX_DIMS && lp_tensor_cols(z) == lp_moe_rows(classes, experts),
                   "lp_op_moe_mix", z, NULL);
    int dims[LP_MAX_DIMS];
    for (int i = 0; i < z->ndim; i++) dims[i] = z->dims[i];
    dims[z->ndim - 1] = classes; /* [..., C*(2E+1)] -> [..., C] */
    int need = lp_tape_wants_grad(tp, &z, 1);
    lp_tensor *p = lp_tape_tensor(tp, z->ndim, dims, need);
    if (!p) return NULL;
    lp_moe_mix_forward(p->data, z->data, lp_tensor_rows(z), classes, experts);
    if (need) {
        lp_node *n = lp_tape_record(tp, &moe_mix_op, &z, 1, &p, 1);
        if (!n) return NULL;
        n->iarg[0] = classes;
        n->iarg[1] = experts;
    }
    return p;
}

/* ---- bce_probs --------------------------------------------------------------------------------- */

static void bce_probs_backward(lp_node *n) {
    lp_tensor *p = n->in[0], *y = n->in[1];
    if (!p->grad) return;
    size_t len = lp_tensor_numel(p), B = lp_tensor_rows(p);
    const float g = n->out[0]->grad[0] / (float)B, eps = LP_MOE_EPS;
    const float *pp = p->data, *py = y->data;
    float *dp = p->grad;
    for (size_t i = 0; i < len; i++) dp[i] += g * ((1.0f - py[i]) / (1.0f - pp[i] + eps) - py[i] / (pp[i] + eps));
}

static const lp_op_desc bce_probs_op = {"bce_probs", bce_probs_backward};

lp_tensor *lp_op_bce_probs(lp_tape *tp, lp_tensor *p, lp_tensor *y) {
    if (!p || !y) return NULL;
    LP_SHAPE_CHECK(p->ndim >= 1 && lp_tensor_same_shape(p, y), "lp_op_bce_probs", p, y);
    size_t len = lp_tensor_numel(p), B = lp_tensor_rows(p);
    LP_CHECK(B >= 1);
    int need = lp_tape_wants_grad(tp, &p, 1); /* targets are constants */
    lp_tensor *loss = lp_tape_tensor(tp, 0, NULL, need);
    if (!loss) return NULL;
    const double eps = LP_MOE_EPS;
    const float *pp = p->data, *py = y->data;
    double s = 0;
    for (size_t i = 0; i < len; i++) {
        double pi = pp[i], yi = py[i];
        s -= yi * log(pi + eps) + (1.0 - yi) * log(1.0 - pi + eps);
    }
    loss->data[0] = (float)(s / (double)B);
    if (need) {
        lp_tensor *in[2] = {p, y};
        if (!lp_tape_record(tp, &bce_probs_op, in, 2, &loss, 1)) return NULL;
    }
    return loss;
}

/* ---- the head ---------------------------------------------------------------------------------- */

lp_tensor *lp_moe(lp_tape *tp, lp_tensor *h, lp_tensor *w, lp_tensor *b, int classes, int experts,
                  lp_tensor **z_out) {
    if (z_out) *z_out = NULL;
    if (!h || !w) return NULL;
    LP_CHECK(classes >= 1 && experts >= 1);
    LP_SHAPE_CHECK(w->ndim == 2 && w->dims[0] == lp_moe_rows(classes, experts), "lp_moe", h, w);
    lp_tensor *z = lp_dense(tp, h, w, b); // [B,D] · [C*(2E+1), D]^T + b -> [B, C*(2E+1)]
    if (z_out) *z_out = z;
    return lp_op_moe_mix(tp, z, classes, experts);
}
