/* sensitivity: how much each unit group can lose on its own — prune ONE group at a time at a range of
 * rates (every other group untouched), without fine-tuning, and score the model on the validation data
 * (else the test data). For any task (prune/task.h): the video classifier (GAP@k, mAP, Hit@1, PERR) and the
 * language model (perplexity); the checkpoint says which.
 *
 * For group g and rate r the group keeps k = H_g − round(r·H_g) units (at least one; the uniform rule of
 * prune/rates.h on that group alone), chosen by a criterion (prune/criteria.h; gm by default, scored
 * once on the unpruned weights, so the kept sets of one group are nested as r grows). The units are
 * removed by prune/surgery.h and the smaller model is scored; with compensate, the removed units' mean
 * responses (statistics over training batches) are first folded into the biases that read them
 * (docs/METHOD.md, "Mean compensation"). A group kept whole (prune/unit_group.h `fixed`) is listed, not
 * tried.
 *
 * Cost of a rate: for a figure where higher is better (GAP) the absolute drop from the unpruned model;
 * where lower is better (perplexity, multiplicative) the relative rise ppl / ppl_unpruned − 1. Suggested
 * rate of a group: the largest tested rate whose cost stays within max_cost at it and at every smaller
 * tested rate; requiring all smaller rates too keeps one lucky point past a cliff from being suggested.
 * 0 when even the smallest rate costs more.
 *
 * Output directory: sensitivity.csv (group, units, rate, kept, the task's figures, the cost),
 * sensitivity.md (the table and the suggestions), suggested.txt ("group = rate" lines and a model.units /
 * lm.units line of the resulting sizes: `prune --rates-from suggested.txt` prunes at them), curves.txt
 * (every group's cost per rate: the input of `--rate-rule sensitivity`, prune/rates.h), sensitivity.gp
 * and sensitivity.png where gnuplot runs. */
#ifndef LP_EXPERIMENTS_SENSITIVITY_H
#define LP_EXPERIMENTS_SENSITIVITY_H
#include <stdint.h>

#include "core/kv.h"
#include "prune/criteria.h"
#include "prune/rates.h"
#include "prune/task.h"

#define LP_SENSITIVITY_MAX_RATES LP_RATES_MAX_POINTS

typedef struct {
    const char *ckpt;       /* the trained model */
    const char *out_dir;
    const lp_kv *cfg;       /* overrides over the checkpoint's own keys (data, batch sizes; may be NULL) */
    double rates[LP_SENSITIVITY_MAX_RATES];
    int n_rates;            /* each in (0,1), ascending order not required */
    lp_criterion criterion; /* default gm */
    uint64_t seed;          /* random criterion */
    double max_cost;        /* the cost a suggested rate may have (default 0.01: GAP points) */
    int compensate;         /* 1: the removed units' mean responses go into the biases that read them */
    int stats_batches;      /* statistics batches for the compensation (default 20; 0 = an epoch) */
    int quiet;
} lp_sensitivity_opts;

void lp_sensitivity_opts_default(lp_sensitivity_opts *o); /* rates 0.1,0.3,0.5,0.7,0.9 */

typedef struct {
    int n_groups, n_rates;
    char group[LP_MAX_GROUPS][24];
    int units[LP_MAX_GROUPS];
    int fixed[LP_MAX_GROUPS];                          /* kept whole: not tried */
    double rates[LP_SENSITIVITY_MAX_RATES];            /* sorted ascending */
    lp_score base;                                     /* the unpruned model */
    lp_score score[LP_MAX_GROUPS][LP_SENSITIVITY_MAX_RATES];
    int kept[LP_MAX_GROUPS][LP_SENSITIVITY_MAX_RATES];
    double suggested[LP_MAX_GROUPS];                   /* rate (0 = do not prune this group) */
    int plot;                                          /* 1 if sensitivity.png was written */
} lp_sensitivity_result;

/* Run the analysis and write the outputs. res may be NULL (it is large: allocate it, do not put it on a
 * small stack). */
lp_status lp_sensitivity_run(const lp_sensitivity_opts *o, lp_sensitivity_result *res);

/* The cost curves of DIR/curves.txt (an analysis of this model's architecture) into curves[t->n_groups]
 * (a fixed group's is left empty). LP_ERR_IO / LP_ERR_FORMAT naming the file; LP_ERR_ARG when a group of
 * t has no curve there. */
lp_status lp_sensitivity_curves_read(const char *dir, const lp_task *t, lp_cost_curve *curves);

/* The suggestion rule alone (pure): rates [n] ascending, costs [n]; returns the suggested rate. */
double lp_sensitivity_suggest(const double *rates, const double *costs, int n, double max_cost);

/* The default rates 0.1, 0.3, 0.5, 0.7, 0.9 into rates[]; returns their count. */
int lp_sensitivity_default_rates(double *rates);

/* Check n rates (1 to LP_SENSITIVITY_MAX_RATES, each in (0,1)) and copy them to sorted[] ascending.
 * LP_ERR_ARG naming the bad value. */
lp_status lp_sensitivity_rates(const double *rates, int n, double *sorted);

/* Units kept by the uniform rule at rate r on a group of h units (prune/rates.h, so the rounding is the
 * one every other command uses: h − round(r·h), at least 1). */
lp_status lp_sensitivity_keep_count(int h, double r, int *k);

#endif
