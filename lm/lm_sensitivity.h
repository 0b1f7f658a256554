/* lm_sensitivity: the sensitivity analysis of experiments/sensitivity.h for the word-level LM — prune ONE LSTM
 * layer at a time at a range of rates (every other layer whole), without fine-tuning, and measure the
 * validation perplexity.
 *
 * For layer l and rate r the layer keeps k = H_l − round(r·H_l) units (at least one; the uniform rule of
 * prune/rates.h), chosen by a criterion (prune/criteria.h, gm by default) scored once on the unpruned
 * weights, so the kept sets of one layer are nested as r grows. The units are removed by
 * lp_lm_prune_shrink (lm/lm_prune.h) and the smaller model is evaluated as lm-eval does (lp_lm_evaluate:
 * B streams, windows of T, the state carried across windows). With compensate, the removed units' mean
 * responses (statistics over training windows) are first folded into the biases that read them. A tied
 * model's last layer feeds the embedding table and is never pruned (lm_prune.h): it is listed, not tried.
 *
 * Cost of a rate: the relative perplexity rise ppl / ppl_unpruned − 1 (perplexity is multiplicative,
 * so 0.05 means 5% worse at any perplexity). Suggested rate of a layer: the largest tested rate whose rise
 * stays within max_rise at it and at every smaller tested rate (lp_sensitivity_suggest).
 *
 * Output directory: sensitivity.csv (layer, units, rate, kept, valid_ppl, ppl_rise), sensitivity.md (the
 * table and the suggestions), suggested.txt ("layer = rate" lines and an lm.units line of the resulting
 * sizes), sensitivity.gp and sensitivity.png where gnuplot runs. */
#ifndef LP_LM_SENSITIVITY_H
#define LP_LM_SENSITIVITY_H
#include <stdint.h>

#include "lm/lm.h"
#include "lm/ptb.h"
#include "prune/criteria.h"
#include "experiments/sensitivity.h"

typedef struct {
    const char *checkpoint;  /* the trained LM */
    const char *out_dir;
    const char *data_dir;    /* NULL: the checkpoint's data.dir */
    double rates[LP_SENSITIVITY_MAX_RATES];
    int n_rates;             /* each in (0,1), any order */
    lp_criterion criterion;  /* default gm */
    uint64_t seed;           /* random criterion */
    double max_rise;         /* default 0.05: relative validation-perplexity rise a suggested rate may cost */
    int compensate;          /* 1: mean compensation, from statistics over stats_windows training windows */
    int stats_windows;       /* default 0 = one epoch (as lm-prune) */
    int stats_batch, stats_bptt; /* 20, 35 */
    int eval_batch, eval_bptt;   /* 20, 35 */
    int threads;             /* OpenBLAS threads (1) */
    int quiet;
} lp_lm_sensitivity_opts;

void lp_lm_sensitivity_opts_default(lp_lm_sensitivity_opts *o); /* rates 0.1,0.3,0.5,0.7,0.9 */

typedef struct {
    int n_groups, n_rates;
    char group[LP_LM_MAX_LAYERS][24];
    int units[LP_LM_MAX_LAYERS];
    int prunable[LP_LM_MAX_LAYERS];                  /* 0: the last layer of a tied model (not tried) */
    double rates[LP_SENSITIVITY_MAX_RATES];          /* sorted ascending */
    double base_ppl;                                 /* the unpruned model's validation perplexity */
    double ppl[LP_LM_MAX_LAYERS][LP_SENSITIVITY_MAX_RATES]; /* NaN for a layer not tried */
    int kept[LP_LM_MAX_LAYERS][LP_SENSITIVITY_MAX_RATES];
    double suggested[LP_LM_MAX_LAYERS];              /* rate (0 = do not prune this layer) */
    int plot;                                        /* 1 if sensitivity.png was written */
} lp_lm_sensitivity_result;

/* Run the analysis and write the outputs. `corpus` may be NULL (loaded from the data directory); res may
 * be NULL. Errors: LP_ERR_ARG (options, a vocabulary other than the checkpoint's), LP_ERR_IO /
 * LP_ERR_FORMAT (checkpoint, data, outputs), LP_ERR_NOMEM. */
lp_status lp_lm_sensitivity_run(const lp_lm_sensitivity_opts *o, const lp_ptb_corpus *corpus,
                                lp_lm_sensitivity_result *res);

#endif
