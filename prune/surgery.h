/* surgery: remove LSTM units for real — or zero them in place — consistently in every tensor they touch.
 *
 * Pruning step 4 (DESIGN.md §6, docs/METHOD.md "Surgery and ISS"). Unit j of a unit group g (one LSTM
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
 *   lp_surgery_shrink  build a NEW, smaller model of the same kind whose config has the kept numbers of
 *                      units, and copy the kept rows/columns of every tensor into it.
 * The two give the same outputs: a masked unit has zero pre-activations, so c_t = 0.5·c_{t−1} + 0 = 0
 * and h_j = 0 at every step, and its outgoing columns are zero as well; the shrunk model simply omits
 * these exact zeros. (Its own bias rows go away with it; whatever the bias did, it reached the rest of
 * the network only through h_j, which the zeroed outgoing columns cut.) Only the order of float sums
 * differs, so outputs agree to ~1e-6 (tests/test_surgery.c).
 *
 * Kept units are described by a plan: per group an ascending list of unit indices (k_g >= 1), so that
 * surviving units keep their order. Typical use with the criteria (prune/criteria.h):
 *
 *     lp_surgery_plan plan;
 *     LP_TRY(lp_surgery_plan_init(&plan, &m));               // keep-all lists, capacity H_g per group
 *     for (g ...) { LP_TRY(lp_criteria_select(score_g, H_g, k_g, plan.kept[g])); plan.n_kept[g] = k_g; }
 *     lp_model small;
 *     LP_TRY(lp_surgery_shrink(&m, &plan, &small));          // small.params->numel < m.params->numel
 *     LP_TRY(lp_surgery_gather(&m, &plan, &small, opt.m, small_m));   // optional: Adam moments too
 *     lp_surgery_plan_free(&plan);
 */
#ifndef LP_PRUNE_SURGERY_H
#define LP_PRUNE_SURGERY_H
#include <stddef.h>

#include "core/status.h"
#include "model/model.h"

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

/* ---- plans ---------------------------------------------------------------------------------------------- */

/* Kept units per group: n_kept[g] strictly ascending unit indices in [0, H_g) at kept[g], with
 * 1 <= n_kept[g] <= H_g. lp_surgery_plan_init allocates the lists (capacity H_g, owned, freed by
 * lp_surgery_plan_free); a caller may instead point kept[g] at its own arrays (a view: then never call
 * lp_surgery_plan_free on it). */
typedef struct {
    int n_groups;
    int n_kept[LP_MAX_GROUPS];
    int *kept[LP_MAX_GROUPS];
} lp_surgery_plan;

/* A plan for model m that keeps every unit. LP_ERR_NOMEM (nothing left allocated) on failure. */
lp_status lp_surgery_plan_init(lp_surgery_plan *p, const lp_model *m);
void lp_surgery_plan_free(lp_surgery_plan *p);

/* LP_OK, or LP_ERR_ARG with a message naming the group and the bad entry: wrong number of groups, a
 * missing or empty list, more than H_g entries, an index out of range, unsorted or duplicated indices.
 * Pure. */
lp_status lp_surgery_plan_check(const lp_model *m, const lp_surgery_plan *p);

/* Units kept / removed in total over all groups. */
int lp_surgery_plan_kept_total(const lp_surgery_plan *p);

/* ---- masking ------------------------------------------------------------------------------------------- */

/* Zero the footprint of every unit j of group g with keep[j] == 0 (keep has H_g entries). Gradients
 * are not touched. LP_ERR_ARG for a bad group index. Removing all units of a group is allowed here
 * (the model then ignores that group's input), though a plan can never ask for it. */
lp_status lp_surgery_mask(lp_model *m, int g, const unsigned char *keep);

/* Zero the footprint of unit j of group gr (0 <= j < gr->units; LP_CHECK) in place; gradients are not
 * touched. The building block of lp_surgery_mask, for any model described by lp_unit_group views (the
 * word-level LM's lm/lm_prune.c too). */
void lp_surgery_zero_unit(const lp_unit_group *gr, int j);

/* Mask every group down to the plan's kept units (checked as lp_surgery_plan_check). */
lp_status lp_surgery_mask_plan(lp_model *m, const lp_surgery_plan *p);

/* ---- shrinking ----------------------------------------------------------------------------------------- */

/* Build `out`, a new model of in's kind and config except model.units = the plan's n_kept (made via
 * lp_model_to_kv → edit "model.units" → lp_model_init_kv, so its checkpoint records the new sizes),
 * and copy every tensor: kept gate rows (and kept columns of w_hh) of each group, kept input columns of
 * each consumer — at the consumer_col0 offsets of both models, so lstm2.w_ih of the paper model loses
 * columns from the forward and the backward halves — and every other tensor (out.b, moe.b) unchanged.
 * The plan is checked first (LP_ERR_ARG). On error `out` holds nothing to free. in is not modified. */
lp_status lp_surgery_shrink(const lp_model *in, const lp_surgery_plan *p, lp_model *out);

/* ---- mean compensation ----------------------------------------------------------------------------- */

/* Removing unit j drops its contribution w[:, j]·h_j from every sum that read it: the next layer's gate
 * pre-activations (consumer column consumer_col0 + j), the head's logits (out.w), and its own group's
 * gates at the next step (w_hh column j). Compensation replaces h_j by its mean response mean[g][j]
 * (prune/plan.h, from the statistics) and folds that constant into the bias of each sum:
 *
 *     consumer_b[r] += Σ_{j removed} consumer[r, col0 + j]·mean_j      ("<layer>.b" of the consumer)
 *     b_g[r]        += Σ_{j removed} w_hh[r, j]·mean_j                  (the group's own gate biases)
 *
 * in place, for the removed units of the plan (kept units untouched). Exact for a unit whose response is
 * the same at every step (except at a sequence's first step, where the recurrent input h_0 is 0);
 * otherwise the first-order correction of the mean. mean[g] has H_g entries per group. LP_ERR_ARG for
 * a bad plan, a missing mean or a consumer without such a bias (checked before anything changes). */
lp_status lp_surgery_compensate(lp_model *m, const lp_surgery_plan *p, const double *const *mean);

/* The same for any model whose unit groups are lp_unit_group views over the parameter block ps (the
 * word-level LM too): group g keeps the n_kept[g] ascending units kept[g] (checked by the caller); a
 * group that keeps all its units is left alone (and needs no means). */
lp_status lp_surgery_compensate_groups(lp_params *ps, const lp_unit_group *groups, int n_groups, int *const *kept,
                                       const int *n_kept, const double *const *mean);

/* lp_surgery_shrink of a copy of `in` compensated as above: `in` is not modified. */
lp_status lp_surgery_shrink_compensated(const lp_model *in, const lp_surgery_plan *p, const double *const *mean,
                                        lp_model *out);

/* Copy any per-parameter array laid out like in's parameter block (src: in->params->numel floats —
 * values, gradients, Adam's m or v) into out's layout (dst: out->params->numel floats) with the same
 * index maps as lp_surgery_shrink, which uses it for the values. `out` must have been built from `in`
 * with this plan (its kind, groups and sizes are checked: LP_ERR_ARG / LP_ERR_SHAPE otherwise). */
lp_status lp_surgery_gather(const lp_model *in, const lp_surgery_plan *p, const lp_model *out, const float *src,
                            float *dst);

/* The model-independent part of lp_surgery_gather, for any model whose LSTM unit groups are
 * lp_unit_group views over one lp_params block (the paper models here, the word-level LM in
 * lm/lm_prune.c). gin[n_groups] describe the source model (parameters pin), gout[n_groups] the target
 * (pout); group g keeps the n_kept[g] ascending units kept[g] (the caller has checked them against
 * gin). Each group renumbers its gate rows (w_ih, w_hh, b: gate q of new unit u is row q*k + u,
 * formerly q*H + kept[u]), the columns of w_hh, and its consumer's columns from consumer_col0; every
 * other tensor is copied unchanged. Tensors are matched by name. src / dst are laid out like pin / pout.
 * LP_ERR_ARG if a target group's size is not n_kept[g] or a target tensor has no source; LP_ERR_SHAPE
 * with the tensor's name if a group's tensors or consumer do not fit, or a source index would fall
 * outside its source tensor; LP_ERR_NOMEM. */
lp_status lp_surgery_gather_groups(const lp_params *pin, const lp_unit_group *gin, const lp_params *pout,
                                   const lp_unit_group *gout, int n_groups, int *const *kept, const int *n_kept,
                                   const float *src, float *dst);

#endif
