/* surgery: remove LSTM units for real — or zero them in place — consistently in every tensor they touch.
 *
 * Pruning step 4 (docs/METHOD.md, "Surgery and ISS"). Unit j of a unit group g (one LSTM
 * layer or BiLSTM direction with H units and F inputs, gate order i,f,g,o) *owns* its footprint:
 *
 *     w_ih [4H,F]  rows j, H+j, 2H+j, 3H+j        (its gates' input weights)
 *     w_hh [4H,H]  rows j, H+j, 2H+j, 3H+j        (its gates' recurrent weights)
 *     b    [4H]    entries j, H+j, 2H+j, 3H+j     (its gates' biases)
 *     w_hh [4H,H]  column j                        (how every gate of the group reads h_j)
 *     consumer     column consumer_col0 + j        (how the next layer / the head reads h_j:
 *                                                   next w_ih, out.w of the paper model, moe.w)
 *
 * 4F + 8H + R distinct floats, R = rows of the consumer (the 4 entries w_hh[qH+j, j] sit in both a row
 * and the column and are listed once). Footprints of different units overlap only at w_hh[qH+j, k]
 * (row of unit j, column of unit k) and, across groups, where a consumer's column of one group meets a
 * row of the next group's w_ih.
 *
 * Two ways to remove a set of units:
 *   lp_surgery_mask    zero every footprint weight of the removed units in place (the "masked model" of
 *                      the public TensorFlow code; also what the soft schedule re-applies);
 *   lp_surgery_shrink  build a NEW, smaller model of the same task whose groups have the kept numbers of
 *                      units (lp_task ops->resized), and copy the kept rows/columns of every tensor into it.
 * The two give the same outputs: a masked unit has zero pre-activations, so c_t = 0.5·c_{t−1} + 0 = 0
 * and h_j = 0 at every step, and its outgoing columns are zero as well; the shrunk model simply omits
 * these exact zeros. (Its own bias rows go away with it; whatever the bias did, it reached the rest of
 * the network only through h_j, which the zeroed outgoing columns cut.) Only the order of float sums
 * differs, so outputs agree to ~1e-6 (tests/test_surgery.c).
 *
 * Kept units are described by a plan (prune/plan.h): per group an ascending list of unit indices
 * (k_g >= 1), so that surviving units keep their order. A plan made by the method, or from kept lists:
 *
 *     lp_prune_plan plan;
 *     LP_TRY(lp_prune_plan_run(t, &opts, &plan));            // or lp_prune_plan_from_kept
 *     lp_task *small;
 *     LP_TRY(lp_surgery_shrink(t, &plan, &small));           // small->params->numel < t->params->numel
 *     LP_TRY(lp_surgery_gather(t, &plan, small, adam_m, small_m));   // optional: Adam moments too
 *     lp_task_free(small);
 *     lp_prune_plan_free(&plan);
 */
#ifndef LP_PRUNE_SURGERY_H
#define LP_PRUNE_SURGERY_H
#include <stddef.h>

#include "core/status.h"
#include "prune/plan.h"
#include "prune/task.h"
#include "prune/unit_group.h"

/* ---- footprint -------------------------------------------------------------------------------------- */

/* A run of n elements of one tensor: t->data[start + k*stride], k = 0..n-1 (and t->grad likewise). */
typedef struct {
    lp_tensor *t;
    size_t start, stride;
    int n;
} lp_surgery_seg;

/* 4 w_ih rows + 4 w_hh rows + 1 strided bias run + up to 5 pieces of the w_hh column + 1 consumer column */
#define LP_SURGERY_MAX_SEGS 15

/* Write the footprint of unit j (0 <= j < gr->units; LP_CHECK) of group `gr` as segments into
 * segs[LP_SURGERY_MAX_SEGS]; returns how many. Every element appears exactly once. */
int lp_surgery_footprint(const lp_unit_group *gr, int j, lp_surgery_seg *segs);

/* Elements in one unit's footprint: 4F + 8H + R (R = consumer rows). */
size_t lp_surgery_footprint_numel(const lp_unit_group *gr);

/* ---- masking ------------------------------------------------------------------------------------------- */

/* Zero the footprint of unit j of group gr (0 <= j < gr->units; LP_CHECK) in place; gradients are not
 * touched. */
void lp_surgery_zero_unit(const lp_unit_group *gr, int j);

/* Zero every unit the plan removes (the plan is checked first: LP_ERR_ARG). */
lp_status lp_surgery_mask(lp_task *t, const lp_prune_plan *p);

/* ---- shrinking ----------------------------------------------------------------------------------------- */

/* Build *out, a new task of in's kind whose groups have the plan's kept numbers of units, and copy every
 * tensor: kept gate rows (and kept columns of w_hh) of each group, kept input columns of each consumer —
 * at the consumer_col0 offsets of both models, so lstm2.w_ih of the paper model loses columns from the
 * forward and the backward halves — and every other tensor unchanged. With p->opts.compensate the
 * removed units' mean responses (p->g[g].mean) are first folded into the biases that read them, on a
 * copy (lp_surgery_compensate). The plan is checked first (LP_ERR_ARG). `in` is not modified; on error
 * *out is NULL. */
lp_status lp_surgery_shrink(const lp_task *in, const lp_prune_plan *p, lp_task **out);

/* Copy any per-parameter array laid out like in's parameter block (src: in->params->numel floats — values,
 * gradients, Adam's m or v) into out's layout (dst: out->params->numel floats) with the index maps of
 * lp_surgery_shrink. Each group renumbers its gate rows (w_ih, w_hh, b: gate q of new unit u is row
 * q*k + u, formerly q*H + kept[u]), the columns of w_hh, and its consumer's columns from consumer_col0;
 * every other tensor is copied unchanged. Tensors are matched by name. LP_ERR_ARG if out was not built
 * from in with this plan (group count, sizes, a tensor without source); LP_ERR_SHAPE naming the tensor
 * if a source index would fall outside its source tensor; LP_ERR_NOMEM. */
lp_status lp_surgery_gather(const lp_task *in, const lp_prune_plan *p, const lp_task *out, const float *src, float *dst);

/* ---- mean compensation ----------------------------------------------------------------------------- */

/* Removing unit j drops its contribution w[:, j]·h_j from every sum that read it: the next layer's gate
 * pre-activations (consumer column consumer_col0 + j), the head's logits (out.w), and its own group's
 * gates at the next step (w_hh column j). Compensation replaces h_j by its mean response p->g[g].mean[j]
 * (from the statistics) and folds that constant into the bias of each sum:
 *
 *     consumer_b[r] += Σ_{j removed} consumer[r, col0 + j]·mean_j      ("<layer>.b" of the consumer)
 *     b_g[r]        += Σ_{j removed} w_hh[r, j]·mean_j                  (the group's own gate biases)
 *
 * in place, for the removed units of the plan (kept units untouched). Exact for a unit whose response is
 * the same at every step (except at a sequence's first step, where the recurrent input h_0 is 0);
 * otherwise the first-order correction of the mean. A group that keeps all its units needs no means.
 * LP_ERR_ARG for a bad plan, a missing mean or a consumer without such a bias (checked before anything
 * changes). */
lp_status lp_surgery_compensate(lp_task *t, const lp_prune_plan *p);

#endif
