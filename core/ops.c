/* ops: forward kernels and backward functions of the primitive tape ops, see ops.h.
 *
 * Every kernel is a plain loop over contiguous float arrays (or one product, core/gemm.h); backward functions
 * read the saved inputs/outputs from the node and accumulate into the grads that exist (an input
 * without grad, e.g. a batch of features, is skipped). */
#include "core/ops.h"

#include "core/gemm.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* A shape error is a programmer error (LP_SHAPE_CHECK, core/tensor.h): the op and both shapes, then abort. */

/* Output tensor with the shape of `like`. */
static lp_tensor *tensor_like(lp_tape *tp, const lp_tensor *like, int need) {
    return lp_tape_tensor(tp, like->ndim, like->dims, need);
}

/* ---- matmul ------------------------------------------------------------------------------------ */

typedef struct {
    int M, N, K;
} mm_dims;

static mm_dims matmul_dims(const lp_tensor *a, const lp_tensor *b, int ta, int tb) {
    mm_dims d;
    LP_SHAPE_CHECK(b->ndim == 2, "lp_op_matmul", a, b);
    if (ta) {
        LP_SHAPE_CHECK(a->ndim == 2, "lp_op_matmul", a, b);
        d.K = a->dims[0];
        d.M = a->dims[1];
    } else {
        LP_SHAPE_CHECK(a->ndim >= 2, "lp_op_matmul", a, b);
        d.M = (int)lp_tensor_rows(a);
        d.K = lp_tensor_cols(a);
    }
    int bk = tb ? b->dims[1] : b->dims[0];
    d.N = tb ? b->dims[0] : b->dims[1];
    LP_SHAPE_CHECK(bk == d.K, "lp_op_matmul", a, b);
    return d;
}

/* Leading dimension of a row-major matrix with `cols` columns (BLAS wants >= 1 even when empty). */
static int ld(int cols) { return cols > 0 ? cols : 1; }

static void matmul_backward(lp_node *n) {
    lp_tensor *a = n->in[0], *b = n->in[1], *c = n->out[0];
    int ta = n->iarg[0], tb = n->iarg[1];
    mm_dims d = matmul_dims(a, b, ta, tb);
    const int M = d.M, N = d.N, K = d.K;
    if (M == 0 || N == 0 || K == 0) return;
    const float *dC = c->grad; /* [M,N] */
    if (a->grad) {
        if (!ta) /* dA [M,K] += dC · op(B)^T */
            lp_gemm(0, !tb, M, K, N, 1.0f, dC, ld(N), b->data, tb ? ld(K) : ld(N), 1.0f, a->grad, ld(K));
        else /* A is [K,M]: dA += (dC · op(B)^T)^T = op(B) · dC^T */
            lp_gemm(tb, 1, K, M, N, 1.0f, b->data, tb ? ld(K) : ld(N), dC, ld(N), 1.0f, a->grad, ld(M));
    }
    if (b->grad) {
        if (!tb) /* dB [K,N] += op(A)^T · dC */
            lp_gemm(!ta, 0, K, N, M, 1.0f, a->data, ta ? ld(M) : ld(K), dC, ld(N), 1.0f, b->grad, ld(N));
        else /* B is [N,K]: dB += (op(A)^T · dC)^T = dC^T · op(A) */
            lp_gemm(1, ta, N, K, M, 1.0f, dC, ld(N), a->data, ta ? ld(M) : ld(K), 1.0f, b->grad, ld(K));
    }
}

static const lp_op_desc matmul_op = {"matmul", matmul_backward};

lp_tensor *lp_op_matmul(lp_tape *tp, lp_tensor *a, lp_tensor *b, int trans_a, int trans_b) {
    if (!a || !b) return NULL;
    int ta = trans_a != 0, tb = trans_b != 0;
    mm_dims d = matmul_dims(a, b, ta, tb);
    int dims[LP_MAX_DIMS], nd;
    if (ta) {
        dims[0] = d.M;
        dims[1] = d.N;
        nd = 2;
    } else { /* keep A's leading axes: [B,T,F] · [F,N] -> [B,T,N] */
        nd = a->ndim;
        for (int i = 0; i + 1 < nd; i++) dims[i] = a->dims[i];
        dims[nd - 1] = d.N;
    }
    lp_tensor *in[2] = {a, b};
    int need = lp_tape_wants_grad(tp, in, 2);
    lp_tensor *c = lp_tape_tensor(tp, nd, dims, need);
    if (!c) return NULL;
    if (d.M > 0 && d.N > 0) {
        if (d.K == 0)
            memset(c->data, 0, (size_t)d.M * (size_t)d.N * sizeof(float));
        else
            lp_gemm(ta, tb, d.M, d.N, d.K, 1.0f, a->data, ta ? ld(d.M) : ld(d.K), b->data, tb ? ld(d.K) : ld(d.N),
                    0.0f, c->data, ld(d.N));
    }
    if (need) {
        lp_node *n = lp_tape_record(tp, &matmul_op, in, 2, &c, 1);
        if (!n) return NULL;
        n->iarg[0] = ta;
        n->iarg[1] = tb;
    }
    return c;
}

/* ---- add, bias_add, mul ------------------------------------------------------------------------ */

static void add_backward(lp_node *n) {
    const float *dy = n->out[0]->grad;
    size_t len = lp_tensor_numel(n->out[0]);
    for (int k = 0; k < 2; k++) {
        float *dx = n->in[k]->grad;
        if (!dx) continue;
        for (size_t i = 0; i < len; i++) dx[i] += dy[i];
    }
}

static const lp_op_desc add_op = {"add", add_backward};

lp_tensor *lp_op_add(lp_tape *tp, lp_tensor *a, lp_tensor *b) {
    if (!a || !b) return NULL;
    LP_SHAPE_CHECK(lp_tensor_same_shape(a, b), "lp_op_add", a, b);
    lp_tensor *in[2] = {a, b};
    int need = lp_tape_wants_grad(tp, in, 2);
    lp_tensor *y = tensor_like(tp, a, need);
    if (!y) return NULL;
    size_t len = lp_tensor_numel(a);
    const float *pa = a->data, *pb = b->data;
    float *py = y->data;
    for (size_t i = 0; i < len; i++) py[i] = pa[i] + pb[i];
    if (need && !lp_tape_record(tp, &add_op, in, 2, &y, 1)) return NULL;
    return y;
}

static void bias_add_backward(lp_node *n) {
    lp_tensor *x = n->in[0], *b = n->in[1], *y = n->out[0];
    const float *dy = y->grad;
    size_t rows = lp_tensor_rows(y);
    int N = lp_tensor_cols(y);
    if (x->grad) {
        size_t len = lp_tensor_numel(y);
        float *dx = x->grad;
        for (size_t i = 0; i < len; i++) dx[i] += dy[i];
    }
    if (b->grad) { /* db[j] += sum over rows of dy[r, j]: row by row, so the inner loop is contiguous */
        float *db = b->grad;
        for (size_t r = 0; r < rows; r++) {
            const float *row = dy + r * (size_t)N;
            for (int j = 0; j < N; j++) db[j] += row[j];
        }
    }
}

static const lp_op_desc bias_add_op = {"bias_add", bias_add_backward};

lp_tensor *lp_op_bias_add(lp_tape *tp, lp_tensor *x, lp_tensor *b) {
    if (!x || !b) return NULL;
    LP_SHAPE_CHECK(x->ndim >= 1 && b->ndim == 1 && b->dims[0] == lp_tensor_cols(x), "lp_op_bias_add", x, b);
    lp_tensor *in[2] = {x, b};
    int need = lp_tape_wants_grad(tp, in, 2);
    lp_tensor *y = tensor_like(tp, x, need);
    if (!y) return NULL;
    size_t rows = lp_tensor_rows(x);
    int N = lp_tensor_cols(x);
    const float *pb = b->data;
    for (size_t r = 0; r < rows; r++) {
        const float *px = x->data + r * (size_t)N;
        float *py = y->data + r * (size_t)N;
        for (int j = 0; j < N; j++) py[j] = px[j] + pb[j];
    }
    if (need && !lp_tape_record(tp, &bias_add_op, in, 2, &y, 1)) return NULL;
    return y;
}

static void mul_backward(lp_node *n) {
    lp_tensor *a = n->in[0], *b = n->in[1];
    const float *dy = n->out[0]->grad;
    size_t len = lp_tensor_numel(a);
    if (a->grad) {
        float *da = a->grad;
        const float *pb = b->data;
        for (size_t i = 0; i < len; i++) da[i] += dy[i] * pb[i];
    }
    if (b->grad) {
        float *db = b->grad;
        const float *pa = a->data;
        for (size_t i = 0; i < len; i++) db[i] += dy[i] * pa[i];
    }
}

static const lp_op_desc mul_op = {"mul", mul_backward};

lp_tensor *lp_op_mul(lp_tape *tp, lp_tensor *a, lp_tensor *b) {
    if (!a || !b) return NULL;
    LP_SHAPE_CHECK(lp_tensor_same_shape(a, b), "lp_op_mul", a, b);
    lp_tensor *in[2] = {a, b};
    int need = lp_tape_wants_grad(tp, in, 2);
    lp_tensor *y = tensor_like(tp, a, need);
    if (!y) return NULL;
    size_t len = lp_tensor_numel(a);
    const float *pa = a->data, *pb = b->data;
    float *py = y->data;
    for (size_t i = 0; i < len; i++) py[i] = pa[i] * pb[i];
    if (need && !lp_tape_record(tp, &mul_op, in, 2, &y, 1)) return NULL;
    return y;
}

/* ---- sigmoid, tanh (backward from the saved output) -------------------------------------------- */

static void sigmoid_backward(lp_node *n) {
    float *dx = n->in[0]->grad;
    const float *y = n->out[0]->data, *dy = n->out[0]->grad;
    size_t len = lp_tensor_numel(n->out[0]);
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] * y[i] * (1.0f - y[i]);
}

static const lp_op_desc sigmoid_op = {"sigmoid", sigmoid_backward};

lp_tensor *lp_op_sigmoid(lp_tape *tp, lp_tensor *x) {
    if (!x) return NULL;
    int need = lp_tape_wants_grad(tp, &x, 1);
    lp_tensor *y = tensor_like(tp, x, need);
    if (!y) return NULL;
    size_t len = lp_tensor_numel(x);
    const float *px = x->data;
    float *py = y->data;
    for (size_t i = 0; i < len; i++) py[i] = lp_sigmoidf(px[i]);
    if (need && !lp_tape_record(tp, &sigmoid_op, &x, 1, &y, 1)) return NULL;
    return y;
}

static void tanh_backward(lp_node *n) {
    float *dx = n->in[0]->grad;
    const float *y = n->out[0]->data, *dy = n->out[0]->grad;
    size_t len = lp_tensor_numel(n->out[0]);
    /* (1 - y)(1 + y), not 1 - y·y: near y = ±1 the square's rounding is a large part of the small
     * result (up to 9e-5 relative over all floats y, against 1e-7 for the product) */
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] * ((1.0f - y[i]) * (1.0f + y[i]));
}

static const lp_op_desc tanh_op = {"tanh", tanh_backward};

lp_tensor *lp_op_tanh(lp_tape *tp, lp_tensor *x) {
    if (!x) return NULL;
    int need = lp_tape_wants_grad(tp, &x, 1);
    lp_tensor *y = tensor_like(tp, x, need);
    if (!y) return NULL;
    size_t len = lp_tensor_numel(x);
    const float *px = x->data;
    float *py = y->data;
    for (size_t i = 0; i < len; i++) py[i] = tanhf(px[i]);
    if (need && !lp_tape_record(tp, &tanh_op, &x, 1, &y, 1)) return NULL;
    return y;
}

/* ---- concat / split along the feature axis ----------------------------------------------------- */

/* Both ops move column blocks between a wide tensor [rows, F] and narrow ones [rows, N_i]. */
static void concat_backward(lp_node *n) {
    lp_tensor *y = n->out[0];
    size_t rows = lp_tensor_rows(y);
    int F = lp_tensor_cols(y), off = 0;
    for (int k = 0; k < n->n_in; k++) {
        lp_tensor *x = n->in[k];
        int Nk = lp_tensor_cols(x);
        if (x->grad)
            for (size_t r = 0; r < rows; r++) {
                const float *src = y->grad + r * (size_t)F + off;
                float *dst = x->grad + r * (size_t)Nk;
                for (int j = 0; j < Nk; j++) dst[j] += src[j];
            }
        off += Nk;
    }
}

static const lp_op_desc concat_op = {"concat", concat_backward};

lp_tensor *lp_op_concat(lp_tape *tp, lp_tensor *const *xs, int k) {
    LP_CHECK(k >= 1 && k <= LP_NODE_MAX_IN);
    for (int i = 0; i < k; i++)
        if (!xs[i]) return NULL;
    const lp_tensor *x0 = xs[0];
    int F = 0;
    for (int i = 0; i < k; i++) {
        const lp_tensor *x = xs[i];
        int same = x->ndim == x0->ndim && x->ndim >= 1;
        for (int d = 0; same && d + 1 < x->ndim; d++) same = x->dims[d] == x0->dims[d];
        LP_SHAPE_CHECK(same, "lp_op_concat", x0, x);
        F += lp_tensor_cols(x);
    }
    int dims[LP_MAX_DIMS];
    for (int d = 0; d < x0->ndim; d++) dims[d] = x0->dims[d];
    dims[x0->ndim - 1] = F;
    int need = lp_tape_wants_grad(tp, xs, k);
    lp_tensor *y = lp_tape_tensor(tp, x0->ndim, dims, need);
    if (!y) return NULL;
    size_t rows = lp_tensor_rows(y);
    int off = 0;
    for (int i = 0; i < k; i++) {
        int Ni = lp_tensor_cols(xs[i]);
        for (size_t r = 0; r < rows; r++)
            memcpy(y->data + r * (size_t)F + off, xs[i]->data + r * (size_t)Ni, (size_t)Ni * sizeof(float));
        off += Ni;
    }
    if (need && !lp_tape_record(tp, &concat_op, xs, k, &y, 1)) return NULL;
    return y;
}

static void split_backward(lp_node *n) {
    lp_tensor *x = n->in[0];
    size_t rows = lp_tensor_rows(x);
    int F = lp_tensor_cols(x), off = 0;
    for (int k = 0; k < n->n_out; k++) {
        lp_tensor *y = n->out[k];
        int Nk = lp_tensor_cols(y);
        for (size_t r = 0; r < rows; r++) {
            const float *src = y->grad + r * (size_t)Nk;
            float *dst = x->grad + r * (size_t)F + off;
            for (int j = 0; j < Nk; j++) dst[j] += src[j];
        }
        off += Nk;
    }
}

static const lp_op_desc split_op = {"split", split_backward};

lp_status lp_op_split(lp_tape *tp, lp_tensor *x, int k, const int *sizes, lp_tensor **out) {
    LP_CHECK(k >= 1 && k <= LP_NODE_MAX_OUT);
    for (int i = 0; i < k; i++) out[i] = NULL;
    if (!x) return LP_ERR_NOMEM; /* the failing op upstream recorded the message */
    int F = 0;
    for (int i = 0; i < k; i++) {
        LP_CHECK(sizes[i] >= 0);
        F += sizes[i];
    }
    LP_SHAPE_CHECK(x->ndim >= 1 && F == lp_tensor_cols(x), "lp_op_split", x, NULL);
    int need = lp_tape_wants_grad(tp, &x, 1);
    int dims[LP_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) dims[d] = x->dims[d];
    size_t rows = lp_tensor_rows(x);
    int off = 0;
    for (int i = 0; i < k; i++) {
        dims[x->ndim - 1] = sizes[i];
        lp_tensor *y = lp_tape_tensor(tp, x->ndim, dims, need);
        if (!y) goto fail;
        for (size_t r = 0; r < rows; r++)
            memcpy(y->data + r * (size_t)sizes[i], x->data + r * (size_t)F + off, (size_t)sizes[i] * sizeof(float));
        off += sizes[i];
        out[i] = y;
    }
    if (need && !lp_tape_record(tp, &split_op, &x, 1, out, k)) goto fail;
    return LP_OK;
fail:
    for (int i = 0; i < k; i++) out[i] = NULL;
    return LP_ERR_NOMEM;
}

/* ---- time axis: slice_t, mean_t ---------------------------------------------------------------- */

static void slice_t_backward(lp_node *n) {
    lp_tensor *x = n->in[0], *y = n->out[0];
    int B = x->dims[0], T = x->dims[1], F = x->dims[2], t = n->iarg[0];
    for (int b = 0; b < B; b++) {
        float *dx = x->grad + ((size_t)b * T + t) * F;
        const float *dy = y->grad + (size_t)b * F;
        for (int j = 0; j < F; j++) dx[j] += dy[j];
    }
}

static const lp_op_desc slice_t_op = {"slice_t", slice_t_backward};

lp_tensor *lp_op_slice_t(lp_tape *tp, lp_tensor *x, int t) {
    if (!x) return NULL;
    LP_SHAPE_CHECK(x->ndim == 3, "lp_op_slice_t", x, NULL);
    int B = x->dims[0], T = x->dims[1], F = x->dims[2];
    LP_CHECK(t >= 0 && t < T);
    int need = lp_tape_wants_grad(tp, &x, 1);
    int dims[2] = {B, F};
    lp_tensor *y = lp_tape_tensor(tp, 2, dims, need);
    if (!y) return NULL;
    for (int b = 0; b < B; b++)
        memcpy(y->data + (size_t)b * F, x->data + ((size_t)b * T + t) * F, (size_t)F * sizeof(float));
    if (need) {
        lp_node *n = lp_tape_record(tp, &slice_t_op, &x, 1, &y, 1);
        if (!n) return NULL;
        n->iarg[0] = t;
    }
    return y;
}

static void mean_t_backward(lp_node *n) {
    lp_tensor *x = n->in[0], *y = n->out[0];
    int B = x->dims[0], T = x->dims[1], F = x->dims[2];
    const int *len = n->ctx; /* NULL: all T steps */
    for (int b = 0; b < B; b++) {
        int L = len ? len[b] : T;
        float s = 1.0f / (float)L;
        const float *dy = y->grad + (size_t)b * F;
        for (int t = 0; t < L; t++) {
            float *dx = x->grad + ((size_t)b * T + t) * F;
            for (int j = 0; j < F; j++) dx[j] += dy[j] * s;
        }
    }
}

static const lp_op_desc mean_t_op = {"mean_t", mean_t_backward};

lp_tensor *lp_op_mean_t(lp_tape *tp, lp_tensor *x, const int *lengths) {
    if (!x) return NULL;
    LP_SHAPE_CHECK(x->ndim == 3, "lp_op_mean_t", x, NULL);
    int B = x->dims[0], T = x->dims[1], F = x->dims[2];
    if (lengths)
        for (int b = 0; b < B; b++) LP_CHECK(lengths[b] >= 1 && lengths[b] <= T);
    else
        LP_CHECK(T >= 1);
    int need = lp_tape_wants_grad(tp, &x, 1);
    int dims[2] = {B, F};
    lp_tensor *y = lp_tape_tensor(tp, 2, dims, need);
    if (!y) return NULL;
    for (int b = 0; b < B; b++) { /* add whole rows (contiguous), scale once */
        int L = lengths ? lengths[b] : T;
        float *py = y->data + (size_t)b * F;
        memset(py, 0, (size_t)F * sizeof(float));
        for (int t = 0; t < L; t++) {
            const float *px = x->data + ((size_t)b * T + t) * F;
            for (int j = 0; j < F; j++) py[j] += px[j];
        }
        float s = 1.0f / (float)L;
        for (int j = 0; j < F; j++) py[j] *= s;
    }
    if (need) {
        int *saved = NULL;
        if (lengths) {
            saved = lp_tape_alloc(tp, (size_t)B, sizeof *saved);
            if (!saved) return NULL;
            memcpy(saved, lengths, (size_t)B * sizeof *saved);
        }
        lp_node *n = lp_tape_record(tp, &mean_t_op, &x, 1, &y, 1);
        if (!n) return NULL;
        n->ctx = saved;
    }
    return y;
}

/* ---- sum, bce_logits (scalar results) ---------------------------------------------------------- */

static void sum_backward(lp_node *n) {
    float *dx = n->in[0]->grad;
    float g = n->out[0]->grad[0];
    size_t len = lp_tensor_numel(n->in[0]);
    for (size_t i = 0; i < len; i++) dx[i] += g;
}

static const lp_op_desc sum_op = {"sum", sum_backward};

lp_tensor *lp_op_sum(lp_tape *tp, lp_tensor *x) {
    if (!x) return NULL;
    int need = lp_tape_wants_grad(tp, &x, 1);
    lp_tensor *y = lp_tape_tensor(tp, 0, NULL, need);
    if (!y) return NULL;
    size_t len = lp_tensor_numel(x);
    double s = 0;
    for (size_t i = 0; i < len; i++) s += x->data[i];
    y->data[0] = (float)s;
    if (need && !lp_tape_record(tp, &sum_op, &x, 1, &y, 1)) return NULL;
    return y;
}

static void bce_backward(lp_node *n) {
    lp_tensor *z = n->in[0], *y = n->in[1];
    float *dz = z->grad;
    size_t len = lp_tensor_numel(z), B = lp_tensor_rows(z);
    float g = n->out[0]->grad[0] / (float)B;
    const float *pz = z->data, *py = y->data;
    for (size_t i = 0; i < len; i++) dz[i] += g * (lp_sigmoidf(pz[i]) - py[i]);
}

static const lp_op_desc bce_logits_op = {"bce_logits", bce_backward};

lp_tensor *lp_op_bce_logits(lp_tape *tp, lp_tensor *z, lp_tensor *y) {
    if (!z || !y) return NULL;
    LP_SHAPE_CHECK(z->ndim >= 1 && lp_tensor_same_shape(z, y), "lp_op_bce_logits", z, y);
    size_t len = lp_tensor_numel(z), B = lp_tensor_rows(z);
    LP_CHECK(B >= 1);
    int need = lp_tape_wants_grad(tp, &z, 1); /* targets are constants */
    lp_tensor *loss = lp_tape_tensor(tp, 0, NULL, need);
    if (!loss) return NULL;
    const float *pz = z->data, *py = y->data;
    double s = 0;
    for (size_t i = 0; i < len; i++) { /* max(z,0) - z*y + log(1 + exp(-|z|)): exp never overflows */
        float v = pz[i];
        s += (double)(fmaxf(v, 0.0f) - v * py[i] + log1pf(expf(-fabsf(v))));
    }
    loss->data[0] = (float)(s / (double)B);
    if (need) {
        lp_tensor *in[2] = {z, y};
        if (!lp_tape_record(tp, &bce_logits_op, in, 2, &loss, 1)) return NULL;
    }
    return loss;
}

/* ---- dropout ----------------------------------------------------------------------------------- */

static void dropout_backward(lp_node *n) {
    float *dx = n->in[0]->grad;
    const float *dy = n->out[0]->grad;
    const uint8_t *m = n->ctx;
    float s = n->farg[0];
    size_t len = lp_tensor_numel(n->in[0]);
    for (size_t i = 0; i < len; i++) dx[i] += dy[i] * ((float)m[i] * s);
}

static const lp_op_desc dropout_op = {"dropout", dropout_backward};

lp_tensor *lp_op_dropout(lp_tape *tp, lp_tensor *x, float p, lp_rng *rng) {
    if (!x) return NULL;
    LP_CHECK(p >= 0.0f && p < 1.0f);
    if (p == 0.0f || !tp->grad_enabled) return x; /* inference: identity, nothing drawn */
    LP_CHECK(rng != NULL);
    int need = lp_tape_wants_grad(tp, &x, 1);
    lp_tensor *y = tensor_like(tp, x, need);
    if (!y) return NULL;
    size_t len = lp_tensor_numel(x);
    uint8_t *m = lp_tape_alloc(tp, len ? len : 1, 1); /* one byte per element: 4x less than a float mask */
    if (!m) return NULL;
    /* Keep with probability 1 - p: u >= p * 2^32 for a uniform 32-bit u. */
    double thr_d = (double)p * 4294967296.0;
    uint32_t thr = thr_d >= 4294967295.0 ? UINT32_MAX : (uint32_t)thr_d;
    for (size_t i = 0; i < len; i++) m[i] = lp_rng_u32(rng) >= thr;
    float s = (float)(1.0 / (1.0 - (double)p));
    const float *px = x->data;
    float *py = y->data;
    for (size_t i = 0; i < len; i++) py[i] = px[i] * ((float)m[i] * s);
    if (need) {
        lp_node *n = lp_tape_record(tp, &dropout_op, &x, 1, &y, 1);
        if (!n) return NULL;
        n->ctx = m;
        n->farg[0] = s;
    }
    return y;
}
