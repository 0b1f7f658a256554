/* plan: decide, for every unit group of a task's model, how many units to keep and which ones.
 *
 *   1. responses  a no-gradient pass over `stats_batches` training batches (the task's own batching:
 *                 videos, or the LM's windows with the state carried) accumulates each group's
 *                 hidden-state mean and covariance (prune/stats.h) over all valid steps, or only the
 *                 final state (`last`: t = len−1 forward, t = 0 for a reverse direction)
 *   2. rates      the covariance spectra give k_g per prunable group (prune/rates.h: energy τ,
 *                 target-rate search, uniform rule, rounding); a `fixed` group keeps all its units
 *   3. selection  each group's units are scored from their weights (prune/criteria.h: gm, gm-exact, l1,
 *                 l2, random) and the k_g best are kept (ascending index order)
 *
 * The plan is then carried out by prune/surgery.h. docs/METHOD.md has the equations. */
#ifndef LP_PRUNE_PLAN_H
#define LP_PRUNE_PLAN_H
#include <stdint.h>

#include "core/kv.h"
#include "prune/criteria.h"
#include "prune/rates.h"
#include "prune/stats.h"
#include "prune/task.h"

typedef struct {
    lp_rates_opts rates;     /* rule, tau, target_rate, round_to, count */
    lp_criterion criterion;
    lp_stats_steps steps;    /* all (default) or last */
    int stats_batches;       /* batches of training data for the statistics; 0 = one whole epoch */
    uint64_t seed;           /* random criterion (stream LP_RNG_STREAM_PRUNE) */
    int compensate;          /* 1: surgery adds each removed unit's mean response, through the weights that
                              * read it, to the biases of its readers (prune/surgery.h; needs statistics) */
    int stats_split;         /* under mpirun: each rank gathers the statistics of its share of every batch
                              * and the ranks merge them (lp_prune_stats_split); 0: every rank all of them */
    int given_k[LP_MAX_GROUPS];  /* rule given: units each group keeps, in the task's group order (0 = all;
                                  * lp_prune_given_parse / lp_prune_given_read fill it) */
    const lp_cost_curve *curves; /* rule sensitivity: [n_groups] cost curves of the model being pruned, in
                                  * its group order (borrowed; experiments/sensitivity.h measures them) */
} lp_prune_opts;

/* eigen rule, τ 0.9, gm, all steps, 20 batches, seed 1, no compensation. */
void lp_prune_opts_default(lp_prune_opts *o);

typedef struct {
    char name[24];
    int h, k;       /* units before / kept */
    int fixed;      /* 1: kept whole (lp_unit_group.fixed) */
    double tau, rate, energy_kept;
    int64_t n_responses;
    double *eig;    /* [h] covariance spectrum, descending (NULL when no statistics were gathered) */
    double *mean;   /* [h] mean response of each unit (NULL when no statistics were gathered) */
    double *var;    /* [h] variance of each unit's response: the covariance's diagonal (NULL likewise) */
    double *score;  /* [h] criterion score per unit (smallest pruned first; NULL for kept-list plans) */
    int *kept;      /* [k] kept unit indices, ascending */
} lp_prune_group_plan;

typedef struct {
    int n_groups;
    lp_prune_group_plan g[LP_MAX_GROUPS];
    lp_rates_result rates;   /* over the prunable groups */
    lp_prune_opts opts;
    char method[64];         /* "eigen+gm", "uniform+l2", "iss", "kept lists" */
    char note[160];          /* "" or why a group was left whole */
} lp_prune_plan;

/* Per-group rates or sizes, against t's unit groups, into keep[t->n_groups] (units kept; rule given).
 * spec is either NAME=V,NAME=V,... (group names as `lstmprune info` prints them; a group not named keeps
 * all its units) or V,V,... (one value per group, in the task's group order: model.units / lm.units).
 * units 0: each V is a rate in [0,1) (k = h − round(V·h), at least 1); units 1: a size in [1,h]. A group
 * kept whole (fixed) only takes rate 0 or its full size. LP_ERR_ARG naming the bad entry and the names. */
lp_status lp_prune_given_parse(const lp_task *t, const char *spec, int units, int *keep);

/* The rates of a `NAME = rate` file (lstmprune sensitivity's suggested.txt: its model.units / lm.units
 * line is skipped) into keep[] as lp_prune_given_parse does. LP_ERR_IO / LP_ERR_FORMAT naming the file,
 * LP_ERR_ARG naming a line that names no group. */
lp_status lp_prune_given_read(const lp_task *t, const char *path, int *keep);

/* Whether a plan with these options needs response statistics (eigen rule, compensation, or
 * statistics asked for). */
int lp_prune_opts_need_stats(const lp_prune_opts *o);

/* Step 1: statistics of every group of t over `batches` training batches (0 = one epoch). st must have
 * room for t->n_groups accumulators (initialised here; freed here on error). */
lp_status lp_prune_stats(lp_task *t, int batches, lp_stats_steps steps, lp_stats *st);
/* The same; with split under several ranks, rank r takes the sequences [B·r/N, B·(r+1)/N) of every batch
 * and the ranks' accumulators are merged in rank order (lp_stats_merge), so every rank ends with the same
 * statistics — those of one process up to rounding (the sums run in another order). */
lp_status lp_prune_stats_split(lp_task *t, int batches, lp_stats_steps steps, int split, lp_stats *st);

/* Steps 2 and 3 from gathered statistics (st may be NULL with the uniform rule: no spectra). LP_ERR_ARG:
 * bad options, the eigen rule without statistics, nothing prunable. */
lp_status lp_prune_plan_make(const lp_task *t, lp_stats *st, const lp_prune_opts *o, lp_prune_plan *p);

/* Steps 1 to 3: statistics (when the options need them), then the plan. */
lp_status lp_prune_plan_run(lp_task *t, const lp_prune_opts *o, lp_prune_plan *p);

/* A plan from given kept lists (ISS thresholds, iterative composition, tests): kept[g] (n_kept[g]
 * ascending indices in [0,H_g), 1 <= n_kept[g] <= H_g) is copied; a fixed group keeps every unit.
 * eig/score are left NULL. LP_ERR_ARG naming the group otherwise. */
lp_status lp_prune_plan_from_kept(const lp_task *t, int *const *kept, const int *n_kept, lp_prune_plan *p);

/* LP_OK, or LP_ERR_ARG naming the group and the bad entry: the plan does not fit t (group count,
 * sizes), a kept list is empty, too long, out of range or not ascending, or a fixed group loses units.
 * Pure. */
lp_status lp_prune_plan_check(const lp_task *t, const lp_prune_plan *p);

/* Units kept over all groups. */
int lp_prune_plan_kept_total(const lp_prune_plan *p);

void lp_prune_plan_free(lp_prune_plan *p);

/* "plan.*" keys describing the plan (rule, criterion, τ, per-group sizes), for checkpoints. */
lp_status lp_prune_plan_to_kv(const lp_prune_plan *p, lp_kv *kv);

#endif
