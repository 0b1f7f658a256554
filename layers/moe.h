/* moe: the mixture-of-experts classifier head of the YouTube-8M starter code (MoeModel) and its loss
 * (CrossEntropyLoss on probabilities), as tape ops.
 *
 * For an input h [B,D], C classes and E experts per class:
 *
 *     z = h·W^T + b                     W = "moe.w" [C*(2E+1), D], b = "moe.b" [C*(2E+1)]
 *     gates of class c:   g_c,j = z[c*(E+1) + j]             j = 0..E     (rows 0 .. C*(E+1)-1 of W)
 *     experts of class c: x_c,e = z[C*(E+1) + c*E + e]       e = 0..E-1   (rows C*(E+1) .. of W)
 *     s_c = softmax(g_c,0 .. g_c,E)                          over E+1 gates
 *     p_c = Σ_{e<E} s_c,e · σ(x_c,e)
 *
 * The last gate (j = E) is the starter code's "dummy" expert, which always predicts 0: it lets the head
 * put probability mass on "no class" without saturating an expert. p is in [0, 1).
 *
 * Gates and experts are the rows of ONE weight matrix with one bias (the starter code has two
 * fully-connected layers, the gates without bias; the extra gate bias is harmless and keeps the layout
 * uniform). The reason is pruning: removing hidden unit j of the layer that feeds the head removes
 * column j of a single consumer tensor, exactly as for a dense head.
 *
 * The head is built from two existing ops (lp_op_matmul with W transposed, lp_op_bias_add) and one
 * fused op, lp_op_moe_mix, below. Its backward (with v_c,j = σ(x_c,j) for j < E and v_c,E = 0):
 *
 *     dp/dx_c,e = s_c,e · σ(x_c,e) · (1 − σ(x_c,e))
 *     dp/dg_c,j = s_c,j · (v_c,j − p_c)                       (softmax Jacobian contracted with v)
 *
 * The loss, lp_op_bce_probs, is the starter code's CrossEntropyLoss (epsilon 10e-6 = 1e-5):
 *
 *     loss = (1/B) Σ_b Σ_c −( y·log(p + ε) + (1 − y)·log(1 − p + ε) )
 *     dp  += dloss · ( −y/(p + ε) + (1 − y)/(1 − p + ε) ) / B
 *
 * finite for every p in [0, 1] thanks to ε (unlike log(p)). Both ops accept any number of leading axes
 * (B = their product) and accumulate (+=) into the grads that exist; targets never receive a gradient. */
#ifndef LP_MOE_H
#define LP_MOE_H
#include <stddef.h>

#include "core/tape.h"

/* The starter code's epsilon (written `10e-6` there). */
#define LP_MOE_EPS 1e-5f

/* Rows of the head's weight matrix for C classes and E experts: C*(E+1) gates + C*E experts. */
static inline int lp_moe_rows(int classes, int experts) { return classes * (2 * experts + 1); }
/* Row (= column of z) of gate j (0..E, E = dummy) of class c. */
static inline int lp_moe_gate_row(int experts, int c, int j) { return c * (experts + 1) + j; }
/* Row (= column of z) of expert e (0..E-1) of class c. */
static inline int lp_moe_expert_row(int classes, int experts, int c, int e) {
    return classes * (experts + 1) + c * experts + e;
}

/* ---- tape ops --------------------------------------------------------------------------------- */

/* p [..., C] from z [..., C*(2E+1)] (layout above). classes >= 1, experts >= 1 and the last axis of z
 * must match (LP_CHECK: a programmer error). NULL when z is NULL or memory ran out. The backward
 * recomputes the softmax and sigmoids from z (saved input), so nothing extra is stored. */
lp_tensor *lp_op_moe_mix(lp_tape *tp, lp_tensor *z, int classes, int experts);

/* Scalar loss from probabilities p and targets y of the same shape (y in [0,1]; p in [0,1], values a
 * little outside stay finite as long as p > −ε and p < 1 + ε). Accumulated in double. */
lp_tensor *lp_op_bce_probs(lp_tape *tp, lp_tensor *p, lp_tensor *y);

/* The whole head: p [B,C] = mix(h [B,D] · w^T + b) with w [C*(2E+1), D], b [C*(2E+1)] or NULL.
 * `z_out`, when not NULL, receives the pre-mix tensor z (for inspection). NULL on failure. */
lp_tensor *lp_moe(lp_tape *tp, lp_tensor *h, lp_tensor *w, lp_tensor *b, int classes, int experts,
                  lp_tensor **z_out);

/* ---- kernels (plain float arrays; the ops above are these plus bookkeeping) -------------------- */

/* p [N,C] = mix(z [N, C*(2E+1)]). */
void lp_moe_mix_forward(float *p, const float *z, size_t N, int C, int E);

/* dz [N, C*(2E+1)] += dp [N,C] · ∂p/∂z, recomputed from z. Accumulates. */
void lp_moe_mix_backward(float *dz, const float *dp, const float *z, size_t N, int C, int E);

#endif
