/* paper: the BiLSTM → LSTM(s) → dense video classifier, see paper.h. */
#include "model/paper.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "data/yt8m.h"
#include "layers/bilstm.h"
#include "layers/dense.h"
#include "layers/lstm.h"
#include "model/input_check.h"

void lp_paper_config_default(lp_paper_config *cfg, int input_dim, int hidden, int classes) {
    memset(cfg, 0, sizeof *cfg);
    cfg->input_dim = input_dim;
    cfg->n_groups = 3;
    cfg->units[LP_PAPER_GROUP_FW] = (hidden + 1) / 2;
    cfg->units[LP_PAPER_GROUP_BW] = hidden / 2;
    cfg->units[2] = hidden;
    cfg->classes = classes;
    cfg->dropout = 0.0f;
}

lp_status lp_paper_config_check(const lp_paper_config *cfg) {
    if (cfg->input_dim < 1) return lp_errorf(LP_ERR_ARG, "model: input_dim must be >= 1, got %d", cfg->input_dim);
    if (cfg->classes < 1) return lp_errorf(LP_ERR_ARG, "model: classes must be >= 1, got %d", cfg->classes);
    if (cfg->classes > LP_YT8M_MAX_CLASSES)
        return lp_errorf(LP_ERR_ARG, "model: classes = %d exceeds the limit of %d classes (LP_YT8M_MAX_CLASSES)",
                         cfg->classes, LP_YT8M_MAX_CLASSES);
    if (cfg->n_groups < 3 || cfg->n_groups > LP_MAX_GROUPS)
        return lp_errorf(LP_ERR_ARG, "model: n_groups must be in [3, %d] (BiLSTM fw, bw and >= 1 LSTM layer), got %d",
                         LP_MAX_GROUPS, cfg->n_groups);
    for (int g = 0; g < cfg->n_groups; g++)
        if (cfg->units[g] < 1) return lp_errorf(LP_ERR_ARG, "model: group %d has %d units (must be >= 1)", g, cfg->units[g]);
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return lp_errorf(LP_ERR_ARG, "model: dropout must be in [0, 1), got %g", (double)cfg->dropout);
    return LP_OK;
}

lp_status lp_paper_config_to_kv(const lp_paper_config *cfg, lp_kv *kv) {
    LP_TRY(lp_kv_set(kv, "model.kind", "paper"));
    LP_TRY(lp_kv_set_int(kv, "model.input_dim", cfg->input_dim));
    LP_TRY(lp_kv_set_int(kv, "model.groups", cfg->n_groups));
    LP_TRY(lp_kv_set_int_list(kv, "model.units", cfg->n_groups, cfg->units));
    LP_TRY(lp_kv_set_int(kv, "model.classes", cfg->classes));
    return lp_kv_set_double(kv, "model.dropout", cfg->dropout);
}

lp_status lp_paper_config_from_kv(lp_paper_config *cfg, const lp_kv *kv) {
    memset(cfg, 0, sizeof *cfg);
    const char *kind = lp_kv_get(kv, "model.kind");
    if (!kind || strcmp(kind, "paper") != 0)
        return lp_errorf(LP_ERR_FORMAT, "model.kind is '%s', expected 'paper'", kind ? kind : "(missing)");
    double d;
    LP_TRY(lp_kv_get_int_in(kv, "model.input_dim", 1, INT_MAX, &cfg->input_dim));
    LP_TRY(lp_kv_get_int_in(kv, "model.groups", 3, LP_MAX_GROUPS, &cfg->n_groups));
    LP_TRY(lp_kv_get_int_in(kv, "model.classes", 1, INT_MAX, &cfg->classes));
    LP_TRY(lp_kv_get_double(kv, "model.dropout", &d));
    cfg->dropout = (float)d;
    LP_TRY(lp_kv_get_int_list(kv, "model.units", cfg->n_groups, 1, 1000000, cfg->units));
    if (lp_paper_config_check(cfg) != LP_OK) return lp_error_wrap(LP_ERR_FORMAT, "model config");
    return LP_OK;
}

static void group_name(int g, char *buf, size_t len) {
    if (g == LP_PAPER_GROUP_FW) snprintf(buf, len, "bilstm.fw");
    else if (g == LP_PAPER_GROUP_BW) snprintf(buf, len, "bilstm.bw");
    else snprintf(buf, len, "lstm%d", g); /* group 2 is the model's second layer */
}

/* Columns of group g's w_ih: the frame features for the BiLSTM, the BiLSTM output for layer 2, the
 * previous layer's units after that. */
static int group_input_dim(const lp_paper_config *cfg, int g) {
    if (g <= LP_PAPER_GROUP_BW) return cfg->input_dim;
    if (g == 2) return cfg->units[LP_PAPER_GROUP_FW] + cfg->units[LP_PAPER_GROUP_BW];
    return cfg->units[g - 1];
}

lp_status lp_paper_declare(lp_params *ps, const lp_paper_config *cfg) {
    LP_TRY(lp_paper_config_check(cfg));
    char prefix[24];
    const int G = cfg->n_groups, H_last = cfg->units[G - 1];
    for (int g = 0; g < G; g++) {
        group_name(g, prefix, sizeof prefix);
        if (lp_lstm_declare(ps, prefix, cfg->units[g], group_input_dim(cfg, g)) != 0) return LP_ERR_NOMEM;
    }
    if (lp_params_declare(ps, "out.w", 2, (const int[]){cfg->classes, H_last}) < 0 ||
        lp_params_declare(ps, "out.b", 1, (const int[]){cfg->classes}) < 0)
        return LP_ERR_NOMEM;
    return LP_OK;
}

lp_status lp_paper_init(lp_paper *m, const lp_paper_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    LP_TRY(lp_paper_config_check(cfg));
    m->cfg = *cfg;
    lp_params_init(&m->params);
    const int G = cfg->n_groups, H_last = cfg->units[G - 1];
    lp_status s = lp_paper_declare(&m->params, cfg);
    if (s == LP_OK) s = lp_params_finalize(&m->params);
    if (s != LP_OK) goto fail;

    /* Views and group descriptions (stable from now on: the params block never moves). */
    for (int g = 0; g < G; g++) {
        lp_unit_group *gr = &m->groups[g];
        group_name(g, gr->name, sizeof gr->name);
        gr->units = cfg->units[g];
        gr->input_dim = group_input_dim(cfg, g);
        gr->reverse = g == LP_PAPER_GROUP_BW;
        lp_lstm_weights w = lp_lstm_find(&m->params, gr->name);
        gr->w_ih = w.w_ih, gr->w_hh = w.w_hh, gr->b = w.b;
        /* who reads this group's outputs */
        if (g <= LP_PAPER_GROUP_BW) {
            snprintf(gr->consumer_name, sizeof gr->consumer_name, "lstm2.w_ih");
            gr->consumer_col0 = g == LP_PAPER_GROUP_BW ? cfg->units[LP_PAPER_GROUP_FW] : 0;
        } else if (g + 1 < G) {
            snprintf(gr->consumer_name, sizeof gr->consumer_name, "lstm%d.w_ih", g + 1);
        } else {
            snprintf(gr->consumer_name, sizeof gr->consumer_name, "out.w");
        }
    }
    for (int g = 0; g < G; g++) m->groups[g].consumer = lp_params_find(&m->params, m->groups[g].consumer_name);
    m->out_w = lp_params_find(&m->params, "out.w");
    m->out_b = lp_params_find(&m->params, "out.b");

    /* PyTorch-style initialisation, in declaration order. */
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_INIT);
    for (int g = 0; g < G; g++) {
        float bound = 1.0f / sqrtf((float)cfg->units[g]);
        lp_tensor_fill_uniform(m->groups[g].w_ih, bound, &r);
        lp_tensor_fill_uniform(m->groups[g].w_hh, bound, &r);
        lp_tensor_fill_uniform(m->groups[g].b, bound, &r);
    }
    float bound = 1.0f / sqrtf((float)H_last); /* nn.Linear: kaiming_uniform(a=sqrt(5)) = ±1/sqrt(fan_in) */
    lp_tensor_fill_uniform(m->out_w, bound, &r);
    lp_tensor_fill_uniform(m->out_b, bound, &r);
    return LP_OK;

fail:
    lp_params_free(&m->params);
    memset(m, 0, sizeof *m);
    return lp_error_wrap(s, "model init");
}

void lp_paper_free(lp_paper *m) {
    lp_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

size_t lp_paper_numel(const lp_paper *m) { return m->params.numel; }

static lp_lstm_weights group_weights(const lp_unit_group *g) {
    lp_lstm_weights w = {g->w_ih, g->w_hh, g->b};
    return w;
}

lp_status lp_paper_forward(lp_paper *m, lp_tape *tp, lp_tensor *x, const int *lengths, lp_tensor *labels,
                           lp_rng *dropout_rng, lp_paper_out *out) {
    memset(out, 0, sizeof *out);
    const lp_paper_config *cfg = &m->cfg;
    LP_TRY(lp_model_check_input(x, lengths, labels, cfg->input_dim, cfg->classes));
    const float p = dropout_rng ? cfg->dropout : 0.0f;

    lp_lstm_weights fw = group_weights(&m->groups[LP_PAPER_GROUP_FW]);
    lp_lstm_weights bw = group_weights(&m->groups[LP_PAPER_GROUP_BW]);
    lp_bilstm_out l1 = lp_bilstm(tp, x, &fw, &bw, lengths);
    if (!l1.out) return lp_error_wrap(LP_ERR_NOMEM, "model forward: bilstm");
    out->group_h[LP_PAPER_GROUP_FW] = l1.fw.h_seq;
    out->group_h[LP_PAPER_GROUP_BW] = l1.bw.h_seq;
    out->layer1_out = l1.out;

    lp_tensor *seq = p > 0 ? lp_op_dropout(tp, l1.out, p, dropout_rng) : l1.out;
    lp_tensor *h = NULL;
    for (int g = 2; g < cfg->n_groups; g++) {
        const lp_unit_group *gr = &m->groups[g];
        lp_lstm_out o = lp_lstm(tp, seq, gr->w_ih, gr->w_hh, gr->b, NULL, NULL, lengths, 0);
        if (!o.h_seq) return lp_error_wrap(LP_ERR_NOMEM, "model forward: %s", gr->name);
        out->group_h[g] = o.h_seq;
        h = o.h_last;
        if (g + 1 < cfg->n_groups) /* the next layer reads the whole sequence; the last only its state */
            seq = p > 0 ? lp_op_dropout(tp, o.h_seq, p, dropout_rng) : o.h_seq;
    }
    out->h_last = h;
    lp_tensor *hd = p > 0 ? lp_op_dropout(tp, h, p, dropout_rng) : h;
    out->logits = lp_dense(tp, hd, m->out_w, m->out_b);
    if (!out->logits) return lp_error_wrap(LP_ERR_NOMEM, "model forward: dense");
    if (labels) {
        out->loss = lp_op_bce_logits(tp, out->logits, labels);
        if (!out->loss) return lp_error_wrap(LP_ERR_NOMEM, "model forward: loss");
    }
    return LP_OK;
}
