/* sensitivity: how much each unit group can lose on its own — prune ONE group at a time at a range of
 * rates (every other group untouched), without fine-tuning, and measure GAP on evaluation data.
 *
 * For group g and rate r the group keeps k = H_g − round(r·H_g) units (at least one; the uniform rule of
 * prune/rates.h on that group alone), chosen by a criterion (prune/criteria.h; gm by default, scored
 * once on the unpruned weights, so the kept sets of one group are nested as r grows). The units are
 * removed by prune/surgery.h and the smaller model is evaluated (model/evaluate.h); with compensate, the
 * removed units' mean responses (statistics over training batches) are first folded into the biases
 * that read them (docs/METHOD.md, "Mean compensation").
 *
 * Suggested rate of a group: the largest tested rate r such that the GAP drop (baseline GAP − GAP) stays
 * within max_drop at r and at every smaller tested rate. Requiring all smaller rates too keeps one lucky
 * point past a cliff from being suggested. 0 when even the smallest rate costs more than max_drop.
 *
 * Output directory: sensitivity.csv (group, units, rate, kept, gap, map, hit1, perr, gap_drop),
 * sensitivity.md (the table and the suggestions), suggested.txt ("group = rate" lines and a
 * model.units line of the resulting sizes), sensitivity.gp and sensitivity.png where gnuplot runs. */
#ifndef LP_EXPERIMENTS_SENSITIVITY_H
#define LP_EXPERIMENTS_SENSITIVITY_H
#include <stdint.h>

#include "core/kv.h"
#include "eval/metrics.h"
#include "model/model.h"
#include "prune/criteria.h"

#define LP_SENSITIVITY_MAX_RATES 64

typedef struct {
    const char *ckpt;       /* the trained model */
    const char *out_dir;
    const lp_kv *cfg;       /* data.* / train.* overrides over the checkpoint's own keys (may be NULL);
                               the evaluation data is data.valid (else data.test) */
    double rates[LP_SENSITIVITY_MAX_RATES];
    int n_rates;            /* each in (0,1), ascending order not required */
    lp_criterion criterion; /* default gm */
    uint64_t seed;          /* random criterion */
    double max_drop;        /* default 0.01 (GAP points, absolute) */
    int compensate;         /* 1: the removed units' mean responses go into the biases that read them
                               (prune/surgery.h), from statistics over stats_batches training batches */
    int stats_batches;      /* default 20 (0 = an epoch); only with compensate */
    int quiet;
} lp_sensitivity_opts;

void lp_sensitivity_opts_default(lp_sensitivity_opts *o); /* rates 0.1,0.3,0.5,0.7,0.9 */

typedef struct {
    int n_groups, n_rates;
    char group[LP_MAX_GROUPS][24];
    int units[LP_MAX_GROUPS];
    double rates[LP_SENSITIVITY_MAX_RATES];            /* sorted ascending */
    lp_metrics_result base;                            /* the unpruned model */
    lp_metrics_result m[LP_MAX_GROUPS][LP_SENSITIVITY_MAX_RATES];
    int kept[LP_MAX_GROUPS][LP_SENSITIVITY_MAX_RATES];
    double suggested[LP_MAX_GROUPS];             /* rate (0 = do not prune this group) */
    int plot;                                          /* 1 if sensitivity.png was written */
} lp_sensitivity_result;

/* Run the analysis and write the outputs. res may be NULL (it is large: allocate it, do not put it on a
 * small stack). */
lp_status lp_sensitivity_run(const lp_sensitivity_opts *o, lp_sensitivity_result *res);

/* The suggestion rule alone (pure): rates [n] ascending, drops [n]; returns the suggested rate. */
double lp_sensitivity_suggest(const double *rates, const double *drops, int n, double max_drop);

/* ---- shared with the language model's analysis (lm/lm_sensitivity.h) ---- */

/* The default rates 0.1, 0.3, 0.5, 0.7, 0.9 into rates[]; returns their count. */
int lp_sensitivity_default_rates(double *rates);

/* Check n rates (1 to LP_SENSITIVITY_MAX_RATES, each in (0,1)) and copy them to sorted[] ascending.
 * LP_ERR_ARG naming the bad value. */
lp_status lp_sensitivity_rates(const double *rates, int n, double *sorted);

/* Units kept by the uniform rule at rate r on a group of h units (prune/rates.h, so the rounding is the
 * one every other command uses: h − round(r·h), at least 1). */
lp_status lp_sensitivity_keep_count(int h, double r, int *k);

/* One curve per group for gnuplot: (0, base) and (rates[i], y[g·n_rates + i]), and a dashed horizontal
 * line at `limit` titled `limit_title`. Writes DIR/sensitivity.gp and, where gnuplot runs,
 * DIR/sensitivity.png; *plot = 1 when the PNG was written. */
typedef struct {
    const char *title, *ylabel, *limit_title;
    int n_groups, n_rates;
    char (*group)[24]; /* [n_groups] names (read only) */
    const int *units;
    const double *rates, *y;
    double base, limit;
} lp_sensitivity_curves;
lp_status lp_sensitivity_plot(const char *dir, const lp_sensitivity_curves *c, int *plot);

#endif
