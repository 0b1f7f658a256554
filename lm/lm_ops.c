/* lm_ops: embedding lookup and softmax cross-entropy tape ops (contract and equations in lm/lm_ops.h).
 *
 * The softmax loops are written so that GCC vectorises them at -O3 without -ffast-math: the exp is a
 * branch-free polynomial, its argument is clamped in a loop of its own, and the row sums keep 8
 * independent partial results. */
#include "lm/lm_ops.h"

#include <math.h>
#include <string.h>

#include "core/fastmath.h"
#include "core/status.h"

/* ---- exp for x <= 0: lp_exp_clamped (core/fastmath.h) ---------------------------------------------- */

/* The clamp is a separate loop: with -ftrapping-math (the default) GCC will not if-convert a select
 * whose result feeds further float arithmetic, so clamp-and-polynomial in one loop stays scalar. Rows
 * are processed in chunks of EXP_CHUNK through a small stack buffer. The argument is z − max <= 0 or
 * z − lse <= 0 (give or take a rounding), so only the lower end needs the clamp. */
enum { EXP_CHUNK = 512 };

/* t[j] = max((z[j] − a) − b, −87.3): two shifts, so that a large row maximum a is subtracted exactly
 * before the small log-sum b (see row_logsum). */
static void shifted_clamped(float *restrict t, const float *restrict z, float a, float b, int n) {
    for (int j = 0; j < n; j++) {
        float x = (z[j] - a) - b;
        t[j] = x > -87.3f ? x : -87.3f;
    }
}

float lp_op_exp_neg(float x) { return lp_exp_clamped(x > -87.3f ? x : -87.3f); }

/* ---- embedding ----------------------------------------------------------------------------------- */

typedef struct {
    int32_t *ids;
    size_t n;
} emb_ctx;

static void embedding_backward(lp_node *node) {
    lp_tensor *table = node->in[0];
    const emb_ctx *k = node->ctx;
    const int E = table->dims[1];
    const float *dy = node->out[0]->grad;
    // dy is [n,E]; dW[ids[i], :] += dy[i, :]
    for (size_t i = 0; i < k->n; i++) {
        float *dw = table->grad + (size_t)k->ids[i] * (size_t)E;
        const float *g = dy + i * (size_t)E;
        for (int e = 0; e < E; e++) dw[e] += g[e];
    }
}

static const lp_op_desc embedding_op = {"embedding", embedding_backward};

lp_tensor *lp_op_embedding(lp_tape *tp, lp_tensor *table, const int32_t *ids, int B, int T) {
    if (!table) return NULL;
    LP_CHECK(table->ndim == 2 && B >= 1 && T >= 1 && ids != NULL);
    const int V = table->dims[0], E = table->dims[1];
    const size_t n = (size_t)B * (size_t)T;
    for (size_t i = 0; i < n; i++) LP_CHECK(ids[i] >= 0 && ids[i] < V);
    int need = lp_tape_wants_grad(tp, &table, 1);
    lp_tensor *y = lp_tape_tensor(tp, 3, (const int[]){B, T, E}, need);
    if (!y) return NULL;
    // y is [B*T,E]: row i = table row ids[i]
    for (size_t i = 0; i < n; i++)
        memcpy(y->data + i * (size_t)E, table->data + (size_t)ids[i] * (size_t)E, (size_t)E * sizeof(float));
    if (need) {
        emb_ctx *k = lp_tape_alloc(tp, 1, sizeof *k);
        int32_t *saved = lp_tape_alloc(tp, n, sizeof *saved);
        if (!k || !saved) return NULL;
        memcpy(saved, ids, n * sizeof *saved);
        k->ids = saved;
        k->n = n;
        lp_node *node = lp_tape_record(tp, &embedding_op, &table, 1, &y, 1);
        if (!node) return NULL;
        node->ctx = k;
    }
    return y;
}

/* ---- softmax cross-entropy ----------------------------------------------------------------------- */

/* log Σ_j exp(z_j) of one row of V logits, stably, as two parts: *m = max_j z_j and the return value
 * log Σ exp(z_j − m) in [0, log V]. Kept apart so that exp(z_j − lse) = exp((z_j − m) − logsum) stays
 * accurate even when the logits are large (a float lse = 10000.x would carry only 3 decimals). */
static double row_logsum(const float *z, int V, float *m_out) {
    enum { L = 8 };
    float mx[L];
    for (int k = 0; k < L; k++) mx[k] = -INFINITY;
    int j = 0;
    for (; j + L <= V; j += L)
        for (int k = 0; k < L; k++) mx[k] = z[j + k] > mx[k] ? z[j + k] : mx[k];
    float m = -INFINITY;
    for (int k = 0; k < L; k++) m = mx[k] > m ? mx[k] : m;
    for (; j < V; j++) m = z[j] > m ? z[j] : m;
    /* Σ exp(z_j − m) with 8 partial sums (a single float sum cannot be reordered, so is not vectorised) */
    float t[EXP_CHUNK], acc[L] = {0};
    double s = 0;
    for (int j0 = 0; j0 < V; j0 += EXP_CHUNK) {
        const int c = V - j0 < EXP_CHUNK ? V - j0 : EXP_CHUNK;
        shifted_clamped(t, z + j0, m, 0.0f, c);
        int k0 = 0;
        for (; k0 + L <= c; k0 += L)
            for (int k = 0; k < L; k++) acc[k] += lp_exp_clamped(t[k0 + k]);
        for (; k0 < c; k0++) s += lp_exp_clamped(t[k0]);
    }
    for (int k = 0; k < L; k++) s += acc[k];
    *m_out = m;
    return log(s); /* s >= 1: the max term is exp(0) */
}

void lp_op_softmax_xent_rows(const float *z, const int32_t *targets, size_t N, int V, double *nll) {
    for (size_t n = 0; n < N; n++) {
        const float *zr = z + n * (size_t)V;
        LP_CHECK(targets[n] >= 0 && targets[n] < V);
        float m;
        double logsum = row_logsum(zr, V, &m);
        nll[n] = ((double)m - (double)zr[targets[n]]) + logsum;
    }
}

typedef struct {
    int32_t *targets; /* [N] */
    float *max;       /* [N] row maxima m_n */
    float *logsum;    /* [N] log Σ exp(z − m_n); lse_n = m_n + logsum_n */
} xent_ctx;

static void softmax_xent_backward(lp_node *node) {
    lp_tensor *z = node->in[0];
    const xent_ctx *k = node->ctx;
    const int V = lp_tensor_cols(z);
    const size_t N = lp_tensor_rows(z);
    const float s = node->out[0]->grad[0] / (float)N;
    // dz [N,V] += s · (exp(z − lse) − onehot(target))
    for (size_t n = 0; n < N; n++) {
        const float *zr = z->data + n * (size_t)V;
        float *dr = z->grad + n * (size_t)V;
        float t[EXP_CHUNK];
        for (int j0 = 0; j0 < V; j0 += EXP_CHUNK) {
            const int c = V - j0 < EXP_CHUNK ? V - j0 : EXP_CHUNK;
            shifted_clamped(t, zr + j0, k->max[n], k->logsum[n], c);
            float *restrict d = dr + j0;
            for (int j = 0; j < c; j++) d[j] += s * lp_exp_clamped(t[j]);
        }
        dr[k->targets[n]] -= s;
    }
}

static const lp_op_desc softmax_xent_op = {"softmax_xent", softmax_xent_backward};

lp_tensor *lp_op_softmax_xent(lp_tape *tp, lp_tensor *logits, const int32_t *targets) {
    if (!logits) return NULL;
    LP_CHECK(logits->ndim >= 2 && targets != NULL);
    const int V = lp_tensor_cols(logits);
    const size_t N = lp_tensor_rows(logits);
    LP_CHECK(V >= 1 && N >= 1);
    for (size_t n = 0; n < N; n++) LP_CHECK(targets[n] >= 0 && targets[n] < V);
    int need = lp_tape_wants_grad(tp, &logits, 1);
    lp_tensor *loss = lp_tape_tensor(tp, 0, NULL, need);
    if (!loss) return NULL;
    xent_ctx *k = NULL;
    if (need) {
        k = lp_tape_alloc(tp, 1, sizeof *k);
        if (!k) return NULL;
        k->targets = lp_tape_alloc(tp, N, sizeof *k->targets);
        k->max = lp_tape_alloc(tp, N, sizeof *k->max);
        k->logsum = lp_tape_alloc(tp, N, sizeof *k->logsum);
        if (!k->targets || !k->max || !k->logsum) return NULL;
        memcpy(k->targets, targets, N * sizeof *targets);
    }
    double total = 0;
    for (size_t n = 0; n < N; n++) {
        const float *zr = logits->data + n * (size_t)V;
        float m;
        double logsum = row_logsum(zr, V, &m);
        total += ((double)m - (double)zr[targets[n]]) + logsum;
        if (k) {
            k->max[n] = m;
            k->logsum[n] = (float)logsum;
        }
    }
    loss->data[0] = (float)(total / (double)N);
    if (need) {
        lp_node *node = lp_tape_record(tp, &softmax_xent_op, &logits, 1, &loss, 1);
        if (!node) return NULL;
        node->ctx = k;
    }
    return loss;
}
