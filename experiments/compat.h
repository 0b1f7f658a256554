/* compat: named presets that switch our defaults to another implementation's behaviour, as plain
 * configuration keys (core/kv.h), so a preset is visible in every run's config.txt and checkpoint.
 *
 * Presets (docs/REPRODUCING.md, "Our defaults vs the public code", cites the public code's lines):
 *
 *   reference  the public TensorFlow code of the paper (model/mymodels.py, notebook.py, utils/):
 *                train.weight_init    = keras    Glorot input kernels, orthogonal recurrent kernels, zero
 *                                                biases with forget bias 1, Glorot dense (model/init.h)
 *                train.eps            = 1e-07    Keras's Adam epsilon
 *                train.lr_decay       = 0.95     ExponentialDecay(decay_steps = 4,000,000) counts optimizer
 *                train.lr_decay_steps = 4000000  steps, so the rate never decays in 20 epochs
 *                train.lr_staircase   = 1
 *                data.padding         = repeat   fixed 300 steps, the last frame repeated, all read
 *                data.max_frames      = 300      (our default too)
 *                data.l2norm          = 1        per-frame L2 normalisation (our default too)
 *                prune.stats_steps    = last     responses = the final hidden state of each sequence only
 *                prune.schedule       = soft     masks re-applied while training from scratch, no removal
 *                                                until the end (our surgery then drops the zeroed units,
 *                                                which changes no output)
 *                prune.prune_every    = 200      FLAGS.step_prune
 *                prune.keep_count     = public   kept eigenvalues counted as #{k : C(k) > τ·E}
 *                                                (prune/rates.h)
 *              The Dense layer's declared l2(0.005) is NOT set (train.dense_l2): the public train_step
 *              never adds model.losses to its loss, so that term has no effect there.
 *   ours       nothing (our defaults: PyTorch initialisers, mask padding, all valid steps, oneshot,
 *              standard count, as configured)
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

/* Set every key of `preset` that kv does not hold yet. With `prefix`, a comma-separated list of key
 * prefixes (e.g. "train.,data."), only keys that start with one of them are considered (the `train`
 * command has no pruning keys). A configuration with `task = lm` (a language-model sweep) takes only the
 * prune.* keys: the others are the video classifier's training. Records the preset itself as
 * "compat = NAME" (also only if absent). LP_ERR_ARG naming the preset when it is unknown. */
lp_status lp_compat_apply(lp_kv *kv, const char *preset, const char *prefix);

#endif
