/* iss: the ISS baseline — group lasso over LSTM units (Wen et al., "Learning intrinsic sparse structures
 * within long short-term memory", ICLR 2018), and the removal of the units it drives to zero.
 *
 * The "intrinsic sparse structure" of unit j of a group is exactly the unit's footprint of
 * prune/surgery.h: its 4 gate rows of w_ih and w_hh, its column of w_hh, its consumer column (next
 * layer's w_ih, out.w or moe.w) — and here also its 4 bias entries (a unit is only gone when its bias is
 * too; they are 4 numbers out of 4F + 8H + R). With w_{g,j} the vector of those weights, training adds
 *
 *     Ω(W) = λ · Σ_g Σ_j ||w_{g,j}||₂,      ∂Ω/∂w = λ · w / ||w_{g,j}||   for every element w of w_{g,j}
 *
 * (a subgradient of 0 when the whole group is zero). Groups overlap — w_hh[qH+j, k] belongs to unit j
 * (row) and unit k (column), a consumer column of group g lies in group g+1's rows — which is fine:
 * overlapping group lasso, each element receives the term of every group it is in. Norms are summed in
 * double. After training, units whose norm is below a threshold are removed by lp_surgery_shrink.
 *
 * Two ways to train with it, as trainer hooks (the state is an lp_iss_state):
 *   subgradient  lp_iss_grad_hook adds ∂Ω/∂w after backward (before clipping, so it is clipped with the
 *                data gradient), and lp_iss_update_hook zeroes the units whose norm fell below
 *                zero_threshold after every update (Wen et al.'s zeroing, which makes the sparsity exact);
 *   proximal     lp_iss_update_hook applies the group soft-thresholding operator with step lr·λ after
 *                every update (lp_iss_prox), which sets whole units exactly to zero — what a subgradient
 *                alone never does under Adam.
 * Then lp_iss_kept gives the plan that removes the units below a threshold, and prune/surgery.h removes
 * them. A fixed group (prune/unit_group.h) is left out of all of it. */
#ifndef LP_PRUNE_ISS_H
#define LP_PRUNE_ISS_H
#include <stdint.h>

#include "core/status.h"
#include "prune/plan.h"
#include "prune/task.h"

/* norms[j] = ||w_{g,j}||₂ for the H_g units of group g (double). LP_ERR_ARG for a bad group index. */
lp_status lp_iss_norms(const lp_task *t, int g, double *norms);

/* Add ∂Ω/∂w to the model's gradients (t->params->grad, +=) and return Ω = λ·Σ norms in *penalty.
 * λ >= 0 and finite (LP_ERR_ARG otherwise); λ = 0 returns 0 and changes nothing. LP_ERR_NUMERIC when a
 * norm is not finite (NaN/Inf weights), naming the group and unit; the gradients are then untouched
 * for that and later groups. */
lp_status lp_iss_penalty(lp_task *t, double lambda, double *penalty);

/* Zero (mask) every unit of a prunable group whose norm is below `threshold`; *zeroed (may be NULL) =
 * units at zero in total (including units already at zero). Never zeroes the last unit standing in a
 * group. */
lp_status lp_iss_zero_below(lp_task *t, double threshold, int *zeroed);

/* The plan (method "iss") keeping, in every prunable group, the units whose norm is >= threshold
 * (threshold >= 0, finite); when none is, the one with the largest norm (lowest index on ties) stays,
 * so a group never vanishes. Fixed groups are kept whole. */
lp_status lp_iss_kept(const lp_task *t, double threshold, lp_prune_plan *p);

/* Proximal step of the group lasso with step size `step` (= lr·λ): every unit's footprint is scaled by
 * max(0, 1 − step/‖footprint‖₂) (group soft-thresholding), which sets whole units exactly to zero. Units
 * are visited in group order; overlapping w_hh entries see the operators one after the other. */
lp_status lp_iss_prox(lp_task *t, double step);

/* The trainer hooks (train/trainer.h). */
typedef struct {
    double lambda;          /* λ */
    double lr;              /* > 0: proximal steps of lr·λ after every update (lp_iss_prox) */
    double zero_threshold;  /* > 0: zero the units below it after every update (lp_iss_zero_below) */
    int add_to_loss;        /* 1: the grad hook adds Ω to the logged loss */
    double last_penalty;    /* output: Ω at the last grad hook */
    int64_t calls;          /* output: grad hook calls */
    int zeroed;             /* output: units at zero after the last update hook */
} lp_iss_state;

/* After backward: add λ's subgradient (lp_iss_penalty); Ω goes to *extra_loss with add_to_loss. */
lp_status lp_iss_grad_hook(void *user, lp_task *t, int64_t step, double *extra_loss);
/* After the update: the proximal step (lr > 0), then the zeroing (zero_threshold > 0). */
lp_status lp_iss_update_hook(void *user, lp_task *t, int64_t step);

#endif
