/* lstm_moe: the starter code's stacked-LSTM → mixture-of-experts video classifier, see lstm_moe.h. */
#include "model/lstm_moe.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "data/yt8m.h"
#include "layers/lstm.h"
#include "layers/moe.h"
#include "model/input_check.h"

void lp_lstm_moe_config_default(lp_lstm_moe_config *cfg, int input_dim, int hidden, int classes) {
    memset(cfg, 0, sizeof *cfg);
    cfg->input_dim = input_dim;
    cfg->n_groups = 2;
    cfg->units[0] = hidden;
    cfg->units[1] = hidden;
    cfg->classes = classes;
    cfg->experts = 2;
    cfg->dropout = 0.0f;
}

lp_status lp_lstm_moe_config_check(const lp_lstm_moe_config *cfg) {
    if (cfg->input_dim < 1) return lp_errorf(LP_ERR_ARG, "model: input_dim must be >= 1, got %d", cfg->input_dim);
    if (cfg->classes < 1) return lp_errorf(LP_ERR_ARG, "model: classes must be >= 1, got %d", cfg->classes);
    if (cfg->n_groups < 1 || cfg->n_groups > LP_MAX_GROUPS)
        return lp_errorf(LP_ERR_ARG, "model: n_groups (LSTM layers) must be in [1, %d], got %d", LP_MAX_GROUPS,
                         cfg->n_groups);
    for (int g = 0; g < cfg->n_groups; g++)
        if (cfg->units[g] < 1)
            return lp_errorf(LP_ERR_ARG, "model: layer %d (lstm%d) has %d units (must be >= 1)", g + 1, g + 1,
                             cfg->units[g]);
    if (cfg->experts < 1 || cfg->experts > LP_LSTM_MOE_MAX_EXPERTS)
        return lp_errorf(LP_ERR_ARG, "model: experts must be in [1, %d], got %d", LP_LSTM_MOE_MAX_EXPERTS,
                         cfg->experts);
    /* The head has C*(2E+1) rows; every shape is an int. */
    if ((long long)cfg->classes * (2LL * cfg->experts + 1) > INT_MAX)
        return lp_errorf(LP_ERR_ARG, "model: %d classes x %d experts gives a head of %lld rows (too large)",
                         cfg->classes, cfg->experts, (long long)cfg->classes * (2LL * cfg->experts + 1));
    if (cfg->classes > LP_YT8M_MAX_CLASSES)
        return lp_errorf(LP_ERR_ARG, "model: classes = %d exceeds the limit of %d classes (LP_YT8M_MAX_CLASSES)",
                         cfg->classes, LP_YT8M_MAX_CLASSES);
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return lp_errorf(LP_ERR_ARG, "model: dropout must be in [0, 1), got %g", (double)cfg->dropout);
    return LP_OK;
}

lp_status lp_lstm_moe_config_to_kv(const lp_lstm_moe_config *cfg, lp_kv *kv) {
    LP_TRY(lp_kv_set(kv, "model.kind", "lstm"));
    LP_TRY(lp_kv_set_int(kv, "model.input_dim", cfg->input_dim));
    LP_TRY(lp_kv_set_int(kv, "model.groups", cfg->n_groups));
    LP_TRY(lp_kv_set_int_list(kv, "model.units", cfg->n_groups, cfg->units));
    LP_TRY(lp_kv_set_int(kv, "model.classes", cfg->classes));
    LP_TRY(lp_kv_set_int(kv, "model.experts", cfg->experts));
    return lp_kv_set_double(kv, "model.dropout", cfg->dropout);
}

lp_status lp_lstm_moe_config_from_kv(lp_lstm_moe_config *cfg, const lp_kv *kv) {
    memset(cfg, 0, sizeof *cfg);
    const char *kind = lp_kv_get(kv, "model.kind");
    if (!kind || strcmp(kind, "lstm") != 0)
        return lp_errorf(LP_ERR_FORMAT, "model.kind is '%s', expected 'lstm'", kind ? kind : "(missing)");
    double d;
    LP_TRY(lp_kv_get_int_in(kv, "model.input_dim", 1, INT_MAX, &cfg->input_dim));
    LP_TRY(lp_kv_get_int_in(kv, "model.groups", 1, LP_MAX_GROUPS, &cfg->n_groups));
    LP_TRY(lp_kv_get_int_in(kv, "model.classes", 1, INT_MAX, &cfg->classes));
    LP_TRY(lp_kv_get_int_in(kv, "model.experts", 1, LP_LSTM_MOE_MAX_EXPERTS, &cfg->experts));
    LP_TRY(lp_kv_get_double(kv, "model.dropout", &d));
    cfg->dropout = (float)d;
    LP_TRY(lp_kv_get_int_list(kv, "model.units", cfg->n_groups, 1, 1000000, cfg->units));
    if (lp_lstm_moe_config_check(cfg) != LP_OK) return lp_error_wrap(LP_ERR_FORMAT, "model config");
    return LP_OK;
}

static int group_input_dim(const lp_lstm_moe_config *cfg, int g) { return g == 0 ? cfg->input_dim : cfg->units[g - 1]; }

lp_status lp_lstm_moe_declare(lp_params *ps, const lp_lstm_moe_config *cfg) {
    LP_TRY(lp_lstm_moe_config_check(cfg));
    const int G = cfg->n_groups, H_last = cfg->units[G - 1], R = lp_moe_rows(cfg->classes, cfg->experts);
    for (int g = 0; g < G; g++) {
        char name[24];
        snprintf(name, sizeof name, "lstm%d", g + 1);
        if (lp_lstm_declare(ps, name, cfg->units[g], group_input_dim(cfg, g)) != 0) return LP_ERR_NOMEM;
    }
    if (lp_params_declare(ps, "moe.w", 2, (const int[]){R, H_last}) < 0 ||
        lp_params_declare(ps, "moe.b", 1, (const int[]){R}) < 0)
        return LP_ERR_NOMEM;
    return LP_OK;
}

lp_status lp_lstm_moe_init(lp_lstm_moe *m, const lp_lstm_moe_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    LP_TRY(lp_lstm_moe_config_check(cfg));
    m->cfg = *cfg;
    lp_params_init(&m->params);
    const int G = cfg->n_groups, H_last = cfg->units[G - 1];
    for (int g = 0; g < G; g++) snprintf(m->groups[g].name, sizeof m->groups[g].name, "lstm%d", g + 1);
    lp_status s = lp_lstm_moe_declare(&m->params, cfg);
    if (s == LP_OK) s = lp_params_finalize(&m->params);
    if (s != LP_OK) goto fail;

    /* Views and group descriptions (stable from now on: the params block never moves). */
    for (int g = 0; g < G; g++) {
        lp_unit_group *gr = &m->groups[g];
        gr->units = cfg->units[g];
        gr->input_dim = group_input_dim(cfg, g);
        gr->reverse = 0;
        lp_lstm_weights w = lp_lstm_find(&m->params, gr->name);
        gr->w_ih = w.w_ih, gr->w_hh = w.w_hh, gr->b = w.b;
        if (g + 1 < G) snprintf(gr->consumer_name, sizeof gr->consumer_name, "lstm%d.w_ih", g + 2);
        else snprintf(gr->consumer_name, sizeof gr->consumer_name, "moe.w");
        gr->consumer = lp_params_find(&m->params, gr->consumer_name);
        gr->consumer_col0 = 0;
    }
    m->moe_w = lp_params_find(&m->params, "moe.w");
    m->moe_b = lp_params_find(&m->params, "moe.b");

    /* PyTorch-style initialisation, in declaration order, plus the starter code's forget bias. */
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_INIT);
    for (int g = 0; g < G; g++) {
        const int H = cfg->units[g];
        float bound = 1.0f / sqrtf((float)H);
        lp_tensor_fill_uniform(m->groups[g].w_ih, bound, &r);
        lp_tensor_fill_uniform(m->groups[g].w_hh, bound, &r);
        lp_tensor_fill_uniform(m->groups[g].b, bound, &r);
        for (int j = H; j < 2 * H; j++) m->groups[g].b->data[j] += LP_LSTM_MOE_FORGET_BIAS; /* gate order i,f,g,o */
    }
    float bound = 1.0f / sqrtf((float)H_last); /* nn.Linear: kaiming_uniform(a=sqrt(5)) = ±1/sqrt(fan_in) */
    lp_tensor_fill_uniform(m->moe_w, bound, &r);
    lp_tensor_fill_uniform(m->moe_b, bound, &r);
    return LP_OK;

fail:
    lp_params_free(&m->params);
    memset(m, 0, sizeof *m);
    return lp_error_wrap(s, "model init");
}

void lp_lstm_moe_free(lp_lstm_moe *m) {
    lp_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

size_t lp_lstm_moe_numel(const lp_lstm_moe *m) { return m->params.numel; }

lp_status lp_lstm_moe_forward(lp_lstm_moe *m, lp_tape *tp, lp_tensor *x, const int *lengths, lp_tensor *labels,
                              lp_rng *dropout_rng, lp_lstm_moe_out *out) {
    memset(out, 0, sizeof *out);
    const lp_lstm_moe_config *cfg = &m->cfg;
    LP_TRY(lp_model_check_input(x, lengths, labels, cfg->input_dim, cfg->classes));
    const float p = dropout_rng ? cfg->dropout : 0.0f;

    lp_tensor *seq = x, *h = NULL;
    for (int g = 0; g < cfg->n_groups; g++) {
        const lp_unit_group *gr = &m->groups[g];
        lp_lstm_out o = lp_lstm(tp, seq, gr->w_ih, gr->w_hh, gr->b, NULL, NULL, lengths, 0);
        if (!o.h_seq) return lp_error_wrap(LP_ERR_NOMEM, "model forward: %s", gr->name);
        out->group_h[g] = o.h_seq;
        h = o.h_last;
        if (g + 1 < cfg->n_groups) /* the next layer reads the whole sequence; the head only the state */
            seq = p > 0 ? lp_op_dropout(tp, o.h_seq, p, dropout_rng) : o.h_seq;
    }
    out->h_last = h;
    lp_tensor *hd = p > 0 ? lp_op_dropout(tp, h, p, dropout_rng) : h;
    out->probs = lp_moe(tp, hd, m->moe_w, m->moe_b, cfg->classes, cfg->experts, &out->moe_z);
    if (!out->probs) return lp_error_wrap(LP_ERR_NOMEM, "model forward: moe head");
    if (labels) {
        out->loss = lp_op_bce_probs(tp, out->probs, labels);
        if (!out->loss) return lp_error_wrap(LP_ERR_NOMEM, "model forward: loss");
    }
    return LP_OK;
}
