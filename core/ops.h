/* ops: the primitive differentiable operations of the tape (core/tape.h).
 *
 * Each op computes its output right away into a new tensor in the tape's arena and, when one of its
 * inputs carries a gradient (lp_tape_wants_grad), records a node whose backward function *adds* (+=)
 * the input gradients. So a tensor used by two ops receives both contributions, and an op whose
 * inputs are all constants (or a tape with gradients disabled) records nothing and gives an output
 * without grad. Every op given a NULL input returns NULL (an earlier op failed; its message stays in
 * lp_last_error()), so a forward pass is written without checks and tested once at the end.
 *
 * Shapes: row-major, the last axis is the feature axis; sequences are [B,T,F] (batch-major). A shape
 * mismatch is a programmer error: the op prints both shapes and aborts (LP_CHECK), it does not return.
 *
 * Gradient flow per op is documented below; every op (each has its lp_op_desc in ops.c) is checked
 * against central differences in check/gradcheck.c by its case in check/ops_case.c, which
 * tests/test_ops.c runs. Each op's forward and backward equations are stated with it below. */
#ifndef LP_OPS_H
#define LP_OPS_H
#include <math.h>

#include "core/rng.h"
#include "core/status.h"
#include "core/tape.h"
#include "core/tensor.h"

/* C = op(A) · op(B), op(X) = X or X^T by the flags, through cblas_sgemm.
 *   A is [M,K] (trans_a = 0) or [K,M] (trans_a = 1); B is [K,N] (trans_b = 0) or [N,K] (trans_b = 1).
 *   With trans_a = 0, A may have more than two axes: its leading axes are collapsed into M and kept in
 *   the output, e.g. x [B,T,F] · W^T (W [N,F], trans_b = 1) -> [B,T,N]. B is always 2-D.
 * Backward (two more GEMMs): dA += dC · op(B)^T (transposed back when trans_a), dB += op(A)^T · dC
 * (transposed back when trans_b). */
lp_tensor *lp_op_matmul(lp_tape *tp, lp_tensor *a, lp_tensor *b, int trans_a, int trans_b);

/* y = a + b, same shape. da += dy, db += dy. */
lp_tensor *lp_op_add(lp_tape *tp, lp_tensor *a, lp_tensor *b);

/* y[..., j] = x[..., j] + b[j]; x is [..., N], b is [N]. dx += dy; db += dy summed over all rows. */
lp_tensor *lp_op_bias_add(lp_tape *tp, lp_tensor *x, lp_tensor *b);

/* y = a * b elementwise, same shape. da += dy * b, db += dy * a (a == b gives 2 a dy). */
lp_tensor *lp_op_mul(lp_tape *tp, lp_tensor *a, lp_tensor *b);

/* y = 1 / (1 + exp(-x)), computed without overflow for any x. dx += dy * y * (1 - y) (saved output). */
lp_tensor *lp_op_sigmoid(lp_tape *tp, lp_tensor *x);

/* y = tanh(x). dx += dy * (1 - y^2) (saved output). */
lp_tensor *lp_op_tanh(lp_tape *tp, lp_tensor *x);

/* Concatenation along the feature axis: k tensors [..., N_i] with equal leading axes -> [..., sum N_i],
 * 1 <= k <= LP_NODE_MAX_IN. dx_i += the matching column block of dy. */
lp_tensor *lp_op_concat(lp_tape *tp, lp_tensor *const *xs, int k);

/* The inverse of concat: x [..., F] -> k tensors out[i] = [..., sizes[i]] (sum of sizes = F,
 * 1 <= k <= LP_NODE_MAX_OUT), e.g. the gate blocks i, f, g, o of an LSTM pre-activation [B, 4H].
 * dx (column block i) += dout_i. Returns LP_OK, or LP_ERR_NOMEM with every out[i] = NULL when x is
 * NULL or memory ran out (so later ops propagate NULL). */
lp_status lp_op_split(lp_tape *tp, lp_tensor *x, int k, const int *sizes, lp_tensor **out);

/* One time step: x [B,T,F] -> y [B,F] = x[:, t, :], 0 <= t < T. dx[:, t, :] += dy. */
lp_tensor *lp_op_slice_t(lp_tape *tp, lp_tensor *x, int t);

/* Mean over time: x [B,T,F] -> y [B,F]. With lengths (B entries, each 1..T; copied, so the caller's
 * array may change afterwards) sequence b is averaged over its first lengths[b] steps only (padding is
 * ignored); NULL averages all T steps. dx[b, t, :] += dy[b, :] / len_b for t < len_b, 0 elsewhere. */
lp_tensor *lp_op_mean_t(lp_tape *tp, lp_tensor *x, const int *lengths);

/* Sum of all elements -> scalar (ndim 0), accumulated in double. dx += dy. */
lp_tensor *lp_op_sum(lp_tape *tp, lp_tensor *x);

/* Multi-label binary cross-entropy from logits, the training loss:
 *   z [B,C] logits (B = all leading axes), y [B,C] targets in [0,1] (same shape),
 *   loss = (1/B) sum_b sum_c  max(z,0) - z*y + log(1 + exp(-|z|))      (scalar)
 * which is exact and finite for any z (no epsilon, no log(0)). Accumulated in double.
 * dz += dloss * (sigmoid(z) - y) / B. Targets never receive a gradient. */
lp_tensor *lp_op_bce_logits(lp_tape *tp, lp_tensor *z, lp_tensor *y);

/* Inverted dropout with rate p in [0,1): y = x * m / (1 - p), m ~ Bernoulli(1 - p) drawn from `rng`
 * (the caller's LP_RNG_STREAM_DROPOUT generator; one lp_rng_u32 per element, in element order). The
 * mask is saved for backward: dx += dy * m / (1 - p).
 * Identity (returns x itself, draws nothing, records nothing) when p == 0 or the tape has gradients
 * disabled (inference). When gradients are enabled but x carries none (dropout on input features) the
 * mask is still applied; just no node is recorded. */
lp_tensor *lp_op_dropout(lp_tape *tp, lp_tensor *x, float p, lp_rng *rng);

/* Logistic function without overflow: exp is only taken of -|x| <= 0. Shared with the fused LSTM. */
static inline float lp_sigmoidf(float x) {
    float e = expf(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return x >= 0 ? r : e * r;
}

#endif
