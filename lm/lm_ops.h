/* lm_ops: the two tape ops a word-level language model needs beyond core/ops.h — the embedding lookup
 * (lp_op_embedding) and the softmax cross-entropy with integer targets (lp_op_softmax_xent).
 *
 * They follow the rules of core/ops.h: the output is computed right away in the tape's arena; when an
 * input carries a gradient a node is recorded whose backward *adds* (+=) into the input gradients; a NULL
 * input gives a NULL output; shape mismatches and out-of-range ids are programmer errors (LP_CHECK) —
 * lm/lm.h checks ids coming from data before they reach these ops. Integer arrays (ids, targets) are
 * constants: they are copied into the tape when a backward needs them and never receive a gradient.
 *
 * The equations:
 *
 *   embedding:  y[b,t,:] = W[ids[b,t], :]                       W [V,E], ids [B,T], y [B,T,E]
 *               dW[ids[b,t], :] += dy[b,t,:]                     (a row used k times gets k contributions)
 *
 *   softmax cross-entropy over N rows (all leading axes of the logits), z [N,V], targets y [N]:
 *               lse_n = m_n + log Σ_j exp(z[n,j] − m_n),  m_n = max_j z[n,j]     (no overflow for any z)
 *               loss  = (1/N) Σ_n (lse_n − z[n, y_n])                            (scalar, summed in double)
 *               dz[n,j] += dloss · (exp(z[n,j] − lse_n) − [j == y_n]) / N
 *
 * The softmax backward recomputes exp(z − lse) from the saved per-row max and log-sum instead of keeping
 * an [N,V] probability buffer (for PTB, N = 20·35 rows × V = 10,000 words: 28 MB saved per window). The
 * exp is a branch-free polynomial (Cephes' expf, relative error < 2e-7 on the range used, where
 * z − lse <= 0) that the compiler vectorises; exp below e^-87.3 is returned as ~1e-38 instead of 0,
 * which changes no sum. */
#ifndef LP_LM_OPS_H
#define LP_LM_OPS_H
#include <stddef.h>
#include <stdint.h>

#include "core/tape.h"

/* Embedding lookup: table [V,E], ids [B*T] (row-major [B,T], each in [0,V), checked) -> [B,T,E].
 * Backward scatter-adds dy into table->grad. NULL when table is NULL or memory ran out. */
lp_tensor *lp_op_embedding(lp_tape *tp, lp_tensor *table, const int32_t *ids, int B, int T);

/* Mean softmax cross-entropy: logits [..., V] (N = product of the leading axes >= 1 rows), targets [N]
 * (each in [0,V), checked) -> scalar. Backward as above. NULL when logits is NULL or memory ran out. */
lp_tensor *lp_op_softmax_xent(lp_tape *tp, lp_tensor *logits, const int32_t *targets);

/* The per-row negative log-likelihoods nll[n] = lse_n − z[n, y_n] of logits z [N,V] (plain kernel, no
 * tape): what the op averages, for comparing two models' log-likelihoods word by word. */
void lp_op_softmax_xent_rows(const float *z, const int32_t *targets, size_t N, int V, double *nll);

/* exp(x) for x <= 0 with the accuracy stated above (exposed for tests). */
float lp_op_exp_neg(float x);

#endif
