/* compat: see compat.h. */
#include "experiments/compat.h"

#include <string.h>

static const lp_compat_setting reference[] = {
    {"prune.stats_steps", "last", "response statistics over the final state of each sequence only"},
    {"prune.schedule", "soft", "masks re-applied every prune.prune_every steps while training from scratch"},
    {"prune.keep_count", "below", "kept eigenvalues: those whose cumulative energy is still below tau (a guess)"},
    {"train.lr_decay", "1", "no learning-rate decay"},
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

lp_status lp_compat_apply(lp_kv *kv, const char *preset, const char *prefix) {
    int n;
    const lp_compat_setting *s = lp_compat_settings(preset, &n);
    if (!s) return lp_errorf(LP_ERR_ARG, "unknown compatibility preset '%s' (reference or ours)", preset ? preset : "(null)");
    for (int i = 0; i < n; i++) {
        if (prefix && strncmp(s[i].key, prefix, strlen(prefix)) != 0) continue;
        if (!lp_kv_get(kv, s[i].key)) LP_TRY(lp_kv_set(kv, s[i].key, s[i].value));
    }
    if (!lp_kv_get(kv, "compat")) LP_TRY(lp_kv_set(kv, "compat", preset));
    return LP_OK;
}
