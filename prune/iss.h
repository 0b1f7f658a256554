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
 * In the trainer (model/trainer.h):
 *
 *     lp_iss_hook_state iss = {.lambda = 1e-3};
 *     lp_train_opts o = {..., .hooks = {.user = &iss, .after_backward = lp_iss_hook}};
 *     LP_TRY(lp_train(&cfg, &o, &res));
 *     // then: lp_model_load, lp_surgery_plan_init(&plan, &m), lp_iss_kept(&m, threshold, &plan),
 *     //       lp_surgery_shrink(&m, &plan, &small), lp_surgery_plan_free(&plan)
 *
 * The hook runs after backward and before clipping, so the penalty's gradient is clipped with the
 * data gradient, and its value is added to the logged loss. */
#ifndef LP_PRUNE_ISS_H
#define LP_PRUNE_ISS_H
#include <stdint.h>

#include "core/status.h"
#include "model/model.h"
#include "prune/surgery.h"

/* norms[j] = ||w_{g,j}||₂ for the H_g units of group g (double). LP_ERR_ARG for a bad group index. */
lp_status lp_iss_norms(const lp_model *m, int g, double *norms);

/* Add ∂Ω/∂w to the model's gradients (m->params->grad, +=) and return Ω = λ·Σ norms in *penalty.
 * λ >= 0 and finite (LP_ERR_ARG otherwise); λ = 0 returns 0 and changes nothing. LP_ERR_NUMERIC when a
 * norm is not finite (NaN/Inf weights), naming the group and unit; the gradients are then untouched
 * for that and later units. */
lp_status lp_iss_penalty(lp_model *m, double lambda, double *penalty);

/* Fill `plan` — initialised for m by lp_surgery_plan_init (lists of capacity H_g) — with, in every
 * group, the units whose norm is >= threshold (threshold >= 0, finite); when none is, the one with the
 * largest norm (lowest index on ties) stays, so a group never vanishes. LP_ERR_ARG for a bad threshold
 * or a plan that does not belong to m (group count, missing list). */
lp_status lp_iss_kept(const lp_model *m, double threshold, lp_surgery_plan *plan);

/* after_backward hook for lp_train_hooks: user is an lp_iss_hook_state. Adds the penalty gradient and
 * adds Ω to *extra_loss. */
typedef struct {
    double lambda;       /* λ */
    double last_penalty; /* Ω at the last call (output) */
    int64_t calls;       /* number of calls (output) */
} lp_iss_hook_state;

lp_status lp_iss_hook(void *user, lp_model *m, int64_t step, double *extra_loss);

/* Proximal step of the group lasso with step size `t` (= lr·λ): every unit's footprint is scaled by
 * max(0, 1 − t/‖footprint‖₂) (group soft-thresholding), which sets whole units exactly to zero. Units
 * are visited in group order; overlapping w_hh entries see the operators one after the other. */
lp_status lp_iss_prox(lp_model *m, double t);

/* Trainer hook (lp_train_hooks.after_update) applying lp_iss_prox with t = lr·λ after every update. */
typedef struct {
    double lambda; /* λ */
    double lr;     /* the learning rate of the proximal step (the training lr) */
} lp_iss_prox_state;
lp_status lp_iss_prox_hook(void *user, lp_model *m, int64_t step);

#endif
