/* runcfg: see runcfg.h. */
#include "model/runcfg.h"

#include "core/gemm.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas_env.h"

static lp_status dflt(lp_kv *kv, const char *key, const char *val) {
    return lp_kv_get(kv, key) ? LP_OK : lp_kv_set(kv, key, val);
}

/* The built-in value of every data.* and train.* key a run may leave out. */
static const char *const defaults[][2] = {
        {"data.frame_features", "rgb:1024,audio:128"},
        {"data.video_features", "mean_rgb:1024,mean_audio:128"},
        {"data.level", "auto"},
        {"data.id_key", "id"},
        {"data.classes", "3862"},
        {"data.max_frames", "300"},
        {"data.padding", "mask"},
        {"data.l2norm", "1"},
        {"data.shuffle_buffer", "512"},
        {"data.skip_bad", "0"},
        {"data.prefetch", "2"},
        {"train.epochs", "20"},
        {"train.batch", "160"},
        {"train.optimizer", "adam"},
        {"train.lr", "0.0002"},
        {"train.beta1", "0.9"},
        {"train.beta2", "0.999"},
        {"train.eps", "1e-08"},
        {"train.momentum", "0"},
        {"train.weight_decay", "0"},
        {"train.clip", "0"},
        {"train.weight_init", "pytorch"},
        {"train.bias_init", "uniform"},
        {"train.bias_lr_mult", "1"},
        {"train.dense_l2", "0"},
        {"train.lr_decay", "1"},
        {"train.lr_decay_steps", "1000"},
        {"train.lr_staircase", "1"},
        {"train.seed", "1"},
        {"train.threads", "0"},
        {"train.save_every", "0"},
        {"train.eval_batch", "256"},
        {"train.log_every", "1"},
        {"train.top_k", "20"},
};

lp_status lp_runcfg_defaults(lp_kv *kv) {
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++) LP_TRY(dflt(kv, defaults[i][0], defaults[i][1]));
    return LP_OK;
}

const char *lp_runcfg_default(const char *key) {
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (!strcmp(defaults[i][0], key)) return defaults[i][1];
    return NULL;
}

lp_status lp_runcfg_patterns(const lp_kv *kv, const char *which, char ***pats, int *n) {
    *pats = NULL;
    *n = 0;
    char key[64];
    snprintf(key, sizeof key, "data.%s", which);
    const char *v = lp_kv_get(kv, key);
    if (!v || !*v) return LP_OK;
    char *copy = lp_strdup(v);
    if (!copy) return LP_ERR_NOMEM;
    int cap = 1;
    for (const char *p = v; *p; p++) cap += *p == ';';
    char **out = lp_calloc((size_t)cap, sizeof *out);
    if (!out) {
        lp_free(copy);
        return LP_ERR_NOMEM;
    }
    int k = 0;
    for (char *save = NULL, *tok = strtok_r(copy, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        while (*tok == ' ') tok++;
        if (*tok) out[k++] = lp_strdup(tok);
    }
    lp_free(copy);
    *pats = out;
    *n = k;
    return LP_OK;
}

void lp_runcfg_free_patterns(char **pats, int n) {
    for (int i = 0; i < n; i++) lp_free(pats[i]);
    lp_free(pats);
}

static lp_status get_int(const lp_kv *kv, const char *key, int *out) {
    long long v;
    LP_TRY(lp_kv_get_int(kv, key, &v));
    if (v < -2147483647LL || v > 2147483647LL) return lp_errorf(LP_ERR_ARG, "%s = %lld is out of range", key, v);
    *out = (int)v;
    return LP_OK;
}

lp_status lp_runcfg_batcher(const lp_kv *kv, char **pats, int n, int train, lp_batcher_config *bc) {
    lp_batcher_config_default(bc);
    bc->patterns = (const char *const *)pats;
    bc->n_patterns = n;
    LP_TRY(lp_yt8m_config_set(&bc->yt8m, lp_kv_get(kv, "data.frame_features"), lp_kv_get(kv, "data.video_features"),
                              lp_kv_get(kv, "data.id_key"), NULL));
    LP_TRY(lp_yt8m_level_parse(&bc->yt8m.level, lp_kv_get(kv, "data.level")));
    LP_TRY(get_int(kv, "data.classes", &bc->yt8m.classes));
    LP_TRY(get_int(kv, "data.skip_bad", &bc->yt8m.skip_bad));
    LP_TRY(get_int(kv, "data.max_frames", &bc->max_frames));
    // Not among the defaults (config.txt of existing runs stays as it was): absent means the default.
    long long mb = lp_kv_get_int_or(kv, "data.max_record_mb", (long long)(LP_YT8M_DEFAULT_MAX_RECORD >> 20));
    if (mb < 1 || mb > (long long)(LP_YT8M_MAX_RECORD_LIMIT >> 20))
        return lp_errorf(LP_ERR_ARG, "data.max_record_mb = %lld is outside [1, %d]", mb,
                         (int)(LP_YT8M_MAX_RECORD_LIMIT >> 20));
    bc->yt8m.max_record_bytes = (size_t)mb << 20;
    LP_TRY(get_int(kv, "data.l2norm", &bc->l2_normalize));
    LP_TRY(lp_pad_mode_parse(&bc->pad, lp_kv_get(kv, "data.padding")));
    bc->fixed_frames = bc->pad == LP_PAD_REPEAT; /* the public code's fixed T: no batch depends on another video */
    LP_TRY(get_int(kv, "data.prefetch", &bc->prefetch));
    long long seed;
    LP_TRY(lp_kv_get_int(kv, "train.seed", &seed));
    bc->seed = (uint64_t)seed;
    if (train) {
        bc->shuffle = 1;
        LP_TRY(get_int(kv, "data.shuffle_buffer", &bc->shuffle_buffer));
        LP_TRY(get_int(kv, "train.batch", &bc->batch_size));
        long long epochs;
        LP_TRY(lp_kv_get_int(kv, "train.epochs", &epochs));
        bc->epochs = epochs;
    } else {
        bc->shuffle = 0;
        bc->epochs = 1;
        LP_TRY(get_int(kv, "train.eval_batch", &bc->batch_size));
    }
    return lp_batcher_config_check(bc);
}

lp_status lp_runcfg_bias(const lp_kv *kv, int *pair, double *lr_mult) {
    const char *init = lp_kv_get(kv, "train.bias_init");
    if (!init) init = "uniform";
    if (!strcmp(init, "uniform")) *pair = 0;
    else if (!strcmp(init, "pair")) *pair = 1;
    else return lp_errorf(LP_ERR_ARG, "train.bias_init: unknown bias initialisation '%s' (uniform or pair)", init);
    *lr_mult = 1.0;
    if (lp_kv_get(kv, "train.bias_lr_mult")) LP_TRY(lp_kv_get_double(kv, "train.bias_lr_mult", lr_mult));
    if (!isfinite(*lr_mult) || *lr_mult <= 0.0)
        return lp_errorf(LP_ERR_ARG, "train.bias_lr_mult must be finite and > 0, got %g", *lr_mult);
    return LP_OK;
}

lp_status lp_runcfg_weight_init(const lp_kv *kv, lp_weight_init *out) {
    const char *v = lp_kv_get(kv, "train.weight_init");
    LP_TRY(lp_weight_init_parse(v ? v : "pytorch", out));
    const char *bias = lp_kv_get(kv, "train.bias_init");
    if (*out == LP_WEIGHT_INIT_KERAS && bias && !strcmp(bias, "pair"))
        return lp_errorf(LP_ERR_ARG, "train.bias_init = pair is PyTorch's two-bias draw; train.weight_init = keras "
                                     "starts every bias at 0 (forget gate 1): use train.bias_init = uniform");
    return LP_OK;
}

lp_status lp_runcfg_optim(const lp_kv *kv, lp_optim_config *oc, lp_lr_schedule *lr) {
    const char *kind = lp_kv_get(kv, "train.optimizer");
    if (!kind) kind = "adam";
    if (!strcmp(kind, "adam")) *oc = lp_optim_defaults(LP_OPTIM_ADAM);
    else if (!strcmp(kind, "sgd")) *oc = lp_optim_defaults(LP_OPTIM_SGD);
    else return lp_errorf(LP_ERR_ARG, "train.optimizer: unknown optimizer '%s' (adam or sgd)", kind);
    double v;
    LP_TRY(lp_kv_get_double(kv, "train.beta1", &v)); oc->beta1 = (float)v;
    LP_TRY(lp_kv_get_double(kv, "train.beta2", &v)); oc->beta2 = (float)v;
    LP_TRY(lp_kv_get_double(kv, "train.eps", &v)); oc->eps = (float)v;
    LP_TRY(lp_kv_get_double(kv, "train.momentum", &v)); oc->momentum = (float)v;
    LP_TRY(lp_kv_get_double(kv, "train.weight_decay", &v)); oc->weight_decay = (float)v;
    LP_TRY(lp_optim_check(oc));
    memset(lr, 0, sizeof *lr);
    /* float values, as the schedule has always used them (bit-identical learning rates) */
    LP_TRY(lp_kv_get_double(kv, "train.lr", &v)); lr->base_lr = (float)v;
    LP_TRY(lp_kv_get_double(kv, "train.lr_decay", &v)); lr->decay_rate = (float)v;
    long long steps, stair;
    LP_TRY(lp_kv_get_int(kv, "train.lr_decay_steps", &steps));
    LP_TRY(lp_kv_get_int(kv, "train.lr_staircase", &stair));
    lr->decay_steps = steps;
    lr->staircase = (int)stair;
    return lp_lr_schedule_check(lr);
}

void lp_runcfg_apply_threads(const lp_kv *kv) {
    long long t = lp_kv_get_int_or(kv, "train.threads", 0);
    if (t > 0 && t <= INT_MAX) lp_blas_set_threads((int)t);
}

lp_status lp_runcfg_precision(const lp_kv *kv, lp_precision *out) {
    const char *p = lp_kv_get(kv, "train.precision");
    if (lp_precision_parse(p ? p : "fp32", out) != LP_OK)
        return lp_errorf(LP_ERR_ARG, "train.precision = '%s' is not fp32 or bf16", p);
    return LP_OK;
}

lp_status lp_runcfg_apply_precision(const lp_kv *kv) {
    lp_precision p;
    LP_TRY(lp_runcfg_precision(kv, &p));
    if (lp_precision_set(p) != LP_OK) return lp_error_wrap(LP_ERR_ARG, "train.precision = bf16");
    return LP_OK;
}

/* key in [lo, hi] when present; whole numbers only where `integer` */
static lp_status check_range(const lp_kv *kv, const char *key, double lo, double hi, int lo_open, int integer) {
    if (!lp_kv_get(kv, key)) return LP_OK;
    double v;
    long long i;
    lp_status s = integer ? lp_kv_get_int(kv, key, &i) : lp_kv_get_double(kv, key, &v);
    if (s != LP_OK) return lp_errorf(LP_ERR_ARG, "%s = '%s' is not a %s", key, lp_kv_get(kv, key), integer ? "integer" : "number");
    if (integer) v = (double)i;
    if (!isfinite(v) || v < lo || v > hi || (lo_open && v == lo))
        return lp_errorf(LP_ERR_ARG, "%s = %s is outside %s%.15g, %.15g]", key, lp_kv_get(kv, key), lo_open ? "(" : "[", lo, hi);
    return LP_OK;
}

lp_status lp_runcfg_check(const lp_kv *kv) {
    /* the batcher's bounds (data/batcher.c), here under the keys that set them */
    LP_TRY(check_range(kv, "train.batch", 1, 1 << 20, 0, 1));
    LP_TRY(check_range(kv, "train.eval_batch", 1, 1 << 20, 0, 1));
    LP_TRY(check_range(kv, "data.max_frames", 1, 1 << 20, 0, 1));
    LP_TRY(check_range(kv, "data.shuffle_buffer", 1, 1 << 24, 0, 1));
    LP_TRY(check_range(kv, "data.prefetch", 0, 64, 0, 1));
    /* the optimizer's (optim/optim.c) */
    LP_TRY(check_range(kv, "train.lr", 0, INFINITY, 1, 0));
    LP_TRY(check_range(kv, "train.lr_decay", 0, 1, 1, 0));
    LP_TRY(check_range(kv, "train.bias_lr_mult", 0, INFINITY, 1, 0));
    /* the model's: a paper model of width H has an LSTM of H units, at most 10^6 (tasks/video_task.c) */
    LP_TRY(check_range(kv, "model.hidden", 1, 1000000, 0, 1));
    LP_TRY(check_range(kv, "model.dropout", 0, 1, 0, 0));
    /* the report's latency measurement (prune, pipeline): its input is batch x frames x features floats
     * and it keeps one time per repetition, so the batcher's bounds apply, and 10^6 repetitions */
    LP_TRY(check_range(kv, "prune.latency_batch", 1, 1 << 20, 0, 1));
    LP_TRY(check_range(kv, "prune.latency_frames", 1, 1 << 20, 0, 1));
    LP_TRY(check_range(kv, "prune.latency_reps", 1, 1000000, 0, 1));
    /* ISS removes the units whose group norm is below the threshold: 0 would remove none, ever */
    LP_TRY(check_range(kv, "prune.iss_threshold", 0, INFINITY, 1, 0));
    LP_TRY(check_range(kv, "train.eps", 0, INFINITY, 1, 0));
    LP_TRY(check_range(kv, "train.dense_l2", 0, INFINITY, 0, 0));
    lp_weight_init wi;
    LP_TRY(lp_runcfg_weight_init(kv, &wi));
    const char *pad = lp_kv_get(kv, "data.padding");
    lp_pad_mode pm;
    if (pad && lp_pad_mode_parse(&pm, pad) != LP_OK)
        return lp_errorf(LP_ERR_ARG, "data.padding = '%s' is neither mask nor repeat", pad);
    if (lp_kv_get(kv, "model.dropout") && lp_kv_get_double_or(kv, "model.dropout", 0) >= 1)
        return lp_errorf(LP_ERR_ARG, "model.dropout = %s is outside [0, 1)", lp_kv_get(kv, "model.dropout"));
    lp_precision prec; /* a name; whether bf16 can run here is checked where it is set */
    LP_TRY(lp_runcfg_precision(kv, &prec));
    return LP_OK;
}
