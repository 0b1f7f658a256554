/* plan: decide, for every unit group of a model, how many units to keep and which ones.
 *
 *   1. responses  a no-gradient pass over `stats_batches` training batches accumulates each group's
 *                 hidden-state mean and covariance (prune/stats.h) over all valid steps, or only the
 *                 final state (`last`: t = len−1 forward, t = 0 for the reverse direction)
 *   2. rates      the covariance spectra give k_g per group (prune/rates.h: energy τ, target-rate
 *                 search, uniform rule, rounding)
 *   3. selection  each group's units are scored from their weights (prune/criteria.h: gm, gm-exact, l1,
 *                 l2, random) and the k_g best are kept (ascending index order)
 *
 * The plan is then carried out by prune/surgery.h. docs/METHOD.md has the equations. */
#ifndef LP_PRUNE_PLAN_H
#define LP_PRUNE_PLAN_H
#include <stdint.h>

#include "core/kv.h"
#include "data/batcher.h"
#include "model/model.h"
#include "prune/criteria.h"
#include "prune/rates.h"
#include "prune/stats.h"

typedef struct {
    lp_rates_opts rates;     /* rule, tau, target_rate, round_to, count */
    lp_criterion criterion;
    lp_stats_steps steps;    /* all (default) or last */
    int stats_batches;       /* batches of training data for the statistics; 0 = one whole epoch */
    uint64_t seed;           /* random criterion */
    int compensate;          /* 1: surgery adds each removed unit's mean response, through the weights that
                              * read it, to the biases of its readers (prune/surgery.h; needs statistics) */
} lp_prune_opts;

void lp_prune_opts_default(lp_prune_opts *o);

typedef struct {
    char name[24];
    int h, k;
    double tau, rate, energy_kept;
    int64_t n_responses;
    double *eig;    /* [h] covariance spectrum, descending (NULL when no statistics were gathered) */
    double *mean;   /* [h] mean response of each unit (NULL when no statistics were gathered) */
    double *score;  /* [h] criterion score per unit (smallest pruned first) */
    int *kept;      /* [k] kept unit indices, ascending */
} lp_prune_group_plan;

typedef struct {
    int n_groups;
    lp_prune_group_plan g[LP_MAX_GROUPS];
    lp_rates_result rates;
    lp_prune_opts opts;
} lp_prune_plan;

/* Step 1: statistics of every group over the batches of `bc` (a training config; its epochs are
 * ignored: one pass at most). st must have room for m->n_groups accumulators (initialised here). */
lp_status lp_prune_stats(lp_model *m, const lp_batcher_config *bc, int batches, lp_stats_steps steps, lp_stats *st);

/* Steps 2 and 3 from gathered statistics (st may be NULL with the uniform rule: no spectra). */
lp_status lp_prune_plan_make(const lp_model *m, lp_stats *st, const lp_prune_opts *o, lp_prune_plan *p);

/* A plan from given kept lists (ISS thresholds, tests); eig/score left NULL. kept[g] is copied. */
lp_status lp_prune_plan_from_kept(const lp_model *m, int *const *kept, const int *n_kept, lp_prune_plan *p);

void lp_prune_plan_free(lp_prune_plan *p);

/* "plan.*" keys describing the plan (rule, criterion, τ, per-group sizes), for checkpoints. */
lp_status lp_prune_plan_to_kv(const lp_prune_plan *p, const lp_model *before, lp_kv *kv);

#endif
