/* model: dispatch between the paper model and the starter-code LSTM+MoE model (see model.h). */
#include "model/model.h"

#include <math.h>
#include <string.h>

#include "core/ops.h"

const char *lp_model_kind_name(lp_model_kind k) { return k == LP_MODEL_LSTM ? "lstm" : "paper"; }

lp_status lp_model_kind_parse(const char *s, lp_model_kind *out) {
    if (!strcmp(s, "paper")) *out = LP_MODEL_PAPER;
    else if (!strcmp(s, "lstm")) *out = LP_MODEL_LSTM;
    else return lp_errorf(LP_ERR_ARG, "unknown model '%s' (expected paper or lstm)", s);
    return LP_OK;
}

static void bind(lp_model *m) {
    if (m->kind == LP_MODEL_PAPER) {
        m->params = &m->paper.params;
        m->groups = m->paper.groups;
        m->n_groups = m->paper.cfg.n_groups;
        m->input_dim = m->paper.cfg.input_dim;
        m->classes = m->paper.cfg.classes;
    } else {
        m->params = &m->lstm.params;
        m->groups = m->lstm.groups;
        m->n_groups = m->lstm.cfg.n_groups;
        m->input_dim = m->lstm.cfg.input_dim;
        m->classes = m->lstm.cfg.classes;
    }
}

lp_status lp_model_init_kv(lp_model *m, const lp_kv *kv, uint64_t seed) {
    memset(m, 0, sizeof *m);
    const char *kind = lp_kv_get(kv, "model.kind");
    if (!kind) return lp_errorf(LP_ERR_FORMAT, "config has no model.kind");
    LP_TRY(lp_model_kind_parse(kind, &m->kind));
    if (m->kind == LP_MODEL_PAPER) {
        lp_paper_config cfg;
        LP_TRY(lp_paper_config_from_kv(&cfg, kv));
        LP_TRY(lp_paper_init(&m->paper, &cfg, seed));
    } else {
        lp_lstm_moe_config cfg;
        LP_TRY(lp_lstm_moe_config_from_kv(&cfg, kv));
        LP_TRY(lp_lstm_moe_init(&m->lstm, &cfg, seed));
    }
    bind(m);
    return LP_OK;
}

lp_status lp_model_default_kv(lp_kv *kv, lp_model_kind kind, int input_dim, int hidden, int layers, int classes,
                              int experts, float dropout) {
    if (hidden < 1 || layers < 1) return lp_errorf(LP_ERR_ARG, "--hidden and --layers must be >= 1");
    if (kind == LP_MODEL_PAPER) {
        if (hidden < 2) return lp_errorf(LP_ERR_ARG, "--hidden must be >= 2 for the paper model (H/2 per direction)");
        lp_paper_config c;
        lp_paper_config_default(&c, input_dim, hidden, classes);
        if (2 + layers > LP_MAX_GROUPS)
            return lp_errorf(LP_ERR_ARG, "--layers: at most %d layers after the BiLSTM", LP_MAX_GROUPS - 2);
        c.n_groups = 2 + layers;
        for (int g = 2; g < c.n_groups; g++) c.units[g] = hidden;
        c.dropout = dropout;
        LP_TRY(lp_paper_config_check(&c));
        return lp_paper_config_to_kv(&c, kv);
    }
    lp_lstm_moe_config c;
    lp_lstm_moe_config_default(&c, input_dim, hidden, classes);
    if (layers > LP_MAX_GROUPS) return lp_errorf(LP_ERR_ARG, "--layers: at most %d layers", LP_MAX_GROUPS);
    c.n_groups = layers;
    for (int g = 0; g < layers; g++) c.units[g] = hidden;
    c.experts = experts;
    c.dropout = dropout;
    LP_TRY(lp_lstm_moe_config_check(&c));
    return lp_lstm_moe_config_to_kv(&c, kv);
}

lp_status lp_model_to_kv(const lp_model *m, lp_kv *kv) {
    return m->kind == LP_MODEL_PAPER ? lp_paper_config_to_kv(&m->paper.cfg, kv)
                                     : lp_lstm_moe_config_to_kv(&m->lstm.cfg, kv);
}

void lp_model_move(lp_model *dst, lp_model *src) {
    *dst = *src;
    if (dst->params) bind(dst);
    memset(src, 0, sizeof *src);
}

void lp_model_free(lp_model *m) {
    if (!m->params) return; /* empty (moved from, or never built) */
    if (m->kind == LP_MODEL_PAPER) lp_paper_free(&m->paper);
    else lp_lstm_moe_free(&m->lstm);
    memset(m, 0, sizeof *m);
}

lp_status lp_model_forward(lp_model *m, lp_tape *tp, lp_tensor *x, const int *lengths, lp_tensor *labels,
                           lp_rng *dropout_rng, lp_model_out *out) {
    memset(out, 0, sizeof *out);
    if (m->kind == LP_MODEL_PAPER) {
        lp_paper_out po;
        LP_TRY(lp_paper_forward(&m->paper, tp, x, lengths, labels, dropout_rng, &po));
        for (int g = 0; g < m->n_groups; g++) out->group_h[g] = po.group_h[g];
        out->scores = po.logits;
        out->scores_are_logits = 1;
        out->loss = po.loss;
    } else {
        lp_lstm_moe_out lo;
        LP_TRY(lp_lstm_moe_forward(&m->lstm, tp, x, lengths, labels, dropout_rng, &lo));
        for (int g = 0; g < m->n_groups; g++) out->group_h[g] = lo.group_h[g];
        out->scores = lo.probs;
        out->scores_are_logits = 0;
        out->loss = lo.loss;
    }
    return LP_OK;
}

lp_tensor *lp_model_add_head_l2(lp_model *m, lp_tape *tp, lp_tensor *loss, float l2) {
    lp_tensor *w = m->kind == LP_MODEL_PAPER ? m->paper.out_w : m->lstm.moe_w; /* [C,H] or [C(2E+1),H] */
    float *c = lp_tape_alloc(tp, 1, sizeof *c);
    lp_tensor *coef = c ? lp_tape_view(tp, c, NULL, 0, NULL) : NULL; /* a constant: no gradient */
    if (!coef) return NULL;
    *c = l2;
    lp_tensor *sq = lp_op_sum(tp, lp_op_mul(tp, w, w)); /* Σw², scalar */
    return sq ? lp_op_add(tp, loss, lp_op_mul(tp, coef, sq)) : NULL;
}

void lp_model_probs(const lp_model_out *o, float *probs) {
    size_t n = lp_tensor_numel(o->scores);
    if (o->scores_are_logits)
        for (size_t i = 0; i < n; i++) probs[i] = lp_sigmoidf(o->scores->data[i]);
    else
        memcpy(probs, o->scores->data, n * sizeof(float));
}

void lp_model_bias_pair_init(lp_model *m, uint64_t seed) {
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_INIT_BIAS2);
    for (int g = 0; g < m->n_groups; g++) {
        lp_tensor *b = m->groups[g].b; /* [4H] */
        const float bound = 1.0f / sqrtf((float)m->groups[g].units); /* as the first draw (lp_paper_init) */
        size_t n = lp_tensor_numel(b);
        for (size_t i = 0; i < n; i++) b->data[i] += (float)((2.0 * lp_rng_uniform(&r) - 1.0) * bound);
    }
}

void lp_model_bias_lr_scale(const lp_model *m, float mult, float *scale) {
    const lp_params *ps = m->params;
    for (size_t i = 0; i < ps->numel; i++) scale[i] = 1.0f;
    for (int g = 0; g < m->n_groups; g++) {
        const lp_tensor *b = m->groups[g].b;
        size_t off = (size_t)(b->data - ps->data), n = lp_tensor_numel(b);
        for (size_t i = 0; i < n; i++) scale[off + i] = mult;
    }
}

size_t lp_model_numel(const lp_model *m) { return m->params->numel; }

double lp_model_flops_per_frame(const lp_model *m) {
    /* Each LSTM group: gates = W_ih x + W_hh h, i.e. 4H(F+H) multiply-adds, plus ~10H elementwise. */
    double f = 0;
    for (int g = 0; g < m->n_groups; g++) {
        double H = m->groups[g].units, F = m->groups[g].input_dim;
        f += 2.0 * 4.0 * H * (F + H) + 10.0 * H;
    }
    return f;
}

double lp_model_flops_head(const lp_model *m) {
    const lp_tensor *w = m->groups[m->n_groups - 1].consumer;
    return 2.0 * (double)w->dims[0] * (double)w->dims[1];
}

lp_status lp_model_add_to_ckpt(const lp_model *m, lp_ckpt *c) {
    LP_TRY(lp_model_to_kv(m, &c->meta));
    for (int i = 0; i < m->params->count; i++)
        LP_TRY(lp_ckpt_add_tensor(c, m->params->items[i].name, &m->params->items[i].t));
    return LP_OK;
}

/* The tensors the checkpoint's meta describes, checked against its tensor table without allocating
 * them: a crafted meta (huge sizes over a small table, valid CRCs) must not cost gigabytes. */
static lp_status check_ckpt_shapes(const lp_ckpt *c, const char *path) {
    const char *kind_s = lp_kv_get(&c->meta, "model.kind");
    lp_model_kind kind;
    if (!kind_s) return lp_errorf(LP_ERR_FORMAT, "config has no model.kind");
    LP_TRY(lp_model_kind_parse(kind_s, &kind));
    lp_params ps;
    lp_params_init(&ps);
    lp_status s;
    if (kind == LP_MODEL_PAPER) {
        lp_paper_config cfg;
        s = lp_paper_config_from_kv(&cfg, &c->meta);
        if (s == LP_OK) s = lp_paper_declare(&ps, &cfg);
    } else {
        lp_lstm_moe_config cfg;
        s = lp_lstm_moe_config_from_kv(&cfg, &c->meta);
        if (s == LP_OK) s = lp_lstm_moe_declare(&ps, &cfg);
    }
    if (s == LP_OK) s = lp_ckpt_check_params(c, &ps, path);
    lp_params_free(&ps);
    return s;
}

lp_status lp_model_from_ckpt(lp_model *m, const lp_ckpt *c, const char *path) {
    memset(m, 0, sizeof *m);
    LP_TRY(check_ckpt_shapes(c, path));
    lp_status s = lp_model_init_kv(m, &c->meta, 0);
    if (s != LP_OK) return lp_error_wrap(s, "%s", path);
    for (int i = 0; i < m->params->count; i++) {
        s = lp_ckpt_copy_to(c, m->params->items[i].name, &m->params->items[i].t, path);
        if (s != LP_OK) {
            lp_model_free(m);
            return s;
        }
    }
    return LP_OK;
}

lp_status lp_model_load(lp_model *m, const char *path, lp_kv *meta) {
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, path));
    lp_status s = lp_model_from_ckpt(m, &c, path);
    if (s == LP_OK && meta) s = lp_kv_merge(meta, &c.meta);
    lp_ckpt_free(&c);
    return s;
}
