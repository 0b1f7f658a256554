/* compat: see compat.h. */
#include "experiments/compat.h"

#include <string.h>

/* Each line mirrors a statement of the public code (docs/REPRODUCING.md §5 cites file and line). */
static const lp_compat_setting reference[] = {
    {"train.weight_init", "keras", "Keras's initialisers: Glorot input kernels, orthogonal recurrent kernels, forget bias 1"},
    {"train.eps", "1e-07", "Adam's epsilon as Keras's default"},
    {"train.lr_decay", "0.95", "ExponentialDecay(2e-4, decay_steps = 4,000,000, 0.95, staircase): its steps are optimizer steps"},
    {"train.lr_decay_steps", "4000000", "so the rate never decays in a 20-epoch run (24,306 steps per epoch)"},
    {"train.lr_staircase", "1", ""},
    {"data.padding", "repeat", "every video padded to 300 steps by repeating its last frame; the LSTMs read all of them"},
    {"data.max_frames", "300", "the first 300 frames"},
    {"data.l2norm", "1", "per-frame L2 normalisation"},
    {"prune.stats_steps", "last", "response statistics over the final state of each sequence only"},
    {"prune.schedule", "soft", "masks re-applied every prune.prune_every steps while training from scratch"},
    {"prune.prune_every", "200", "a pruning step every 200 training steps (FLAGS.step_prune)"},
    {"prune.keep_count", "public", "kept eigenvalues: #{k : C(k) > tau}, as np.sum(evlcs > keep_energy_rate)"},
};

const lp_compat_setting *lp_compat_settings(const char *preset, int *n) {
    if (preset && !strcmp(preset, "reference")) {
        *n = (int)(sizeof reference / sizeof reference[0]);
        return reference;
    }
    if (preset && !strcmp(preset, "ours")) {
        *n = 0;
        return reference; /* any non-NULL pointer: an empty preset */
    }
    *n = 0;
    return NULL;
}

/* Whether key starts with one of the comma-separated prefixes (NULL: every key). */
static int in_scope(const char *key, const char *prefixes) {
    if (!prefixes) return 1;
    for (const char *p = prefixes; *p;) {
        const size_t len = strcspn(p, ",");
        if (len > 0 && !strncmp(key, p, len)) return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* The public code trains a video classifier: its train.* and data.* choices mean nothing to the LM
 * (which refuses Keras's initialisers and decays its rate per epoch); its pruning choices apply to both. */
static int applies(const lp_kv *kv, const char *key) {
    const char *task = lp_kv_get(kv, "task");
    return !(task && !strcmp(task, "lm")) || !strncmp(key, "prune.", 6);
}

lp_status lp_compat_apply(lp_kv *kv, const char *preset, const char *prefix) {
    int n;
    const lp_compat_setting *s = lp_compat_settings(preset, &n);
    if (!s) return lp_errorf(LP_ERR_ARG, "unknown compatibility preset '%s' (reference or ours)", preset ? preset : "(null)");
    for (int i = 0; i < n; i++)
        if (in_scope(s[i].key, prefix) && applies(kv, s[i].key) && !lp_kv_get(kv, s[i].key))
            LP_TRY(lp_kv_set(kv, s[i].key, s[i].value));
    if (!lp_kv_get(kv, "compat")) LP_TRY(lp_kv_set(kv, "compat", preset));
    return LP_OK;
}
