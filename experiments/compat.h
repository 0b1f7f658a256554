/* compat: named presets that switch our defaults to another implementation's behaviour, as plain
 * configuration keys (core/kv.h), so a preset is visible in every run's config.txt and checkpoint.
 *
 * Presets (docs/REPRODUCING.md and docs/METHOD.md, "Our defaults vs the public code"):
 *
 *   reference  the public TensorFlow code of the paper, as far as we know it:
 *                prune.stats_steps = last     responses = the final hidden state of each sequence only
 *                prune.schedule    = soft     masks re-applied while training from scratch, no removal
 *                                             until the end (our surgery then drops the zeroed units,
 *                                             which changes no output)
 *                prune.keep_count  = below    kept eigenvalues counted as #{k : C(k) < τ·E}
 *                                             (prune/rates.h; an unverified guess)
 *                train.lr_decay    = 1        no learning-rate decay
 *   ours       nothing (our defaults: all valid steps, oneshot, standard count, as configured)
 *
 * A preset only fills keys that are absent, so explicit flags and config lines win whatever their order:
 * `--compat reference --stats-steps all` keeps the statistics over all steps. */
#ifndef LP_EXPERIMENTS_COMPAT_H
#define LP_EXPERIMENTS_COMPAT_H
#include "core/kv.h"

typedef struct {
    const char *key, *value;
    const char *why; /* one line for --help and the docs */
} lp_compat_setting;

/* The settings of a preset ("reference", "ours"); *n receives their count. NULL for an unknown name. */
const lp_compat_setting *lp_compat_settings(const char *preset, int *n);

/* Set every key of `preset` that kv does not hold yet. With `prefix` (e.g. "train.") only keys that
 * start with it are considered (the `train` command has no pruning keys). Records the preset itself as
 * "compat = NAME" (also only if absent). LP_ERR_ARG naming the preset when it is unknown. */
lp_status lp_compat_apply(lp_kv *kv, const char *preset, const char *prefix);

#endif
