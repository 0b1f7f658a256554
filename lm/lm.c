/* lm: word-level LSTM language model — parameters, forward pass with carried state, perplexity evaluation
 * and one epoch of truncated-BPTT training (contract in lm/lm.h). The graph is built from the tape ops
 * of lm/lm_ops.h (embedding, softmax cross-entropy), layers/lstm.h (fused LSTM), layers/dense.h and
 * core/ops.h (dropout, the loss scaling). */
#include "lm/lm.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/gemm.h"
#include "core/log.h"
#include "core/ops.h"
#include "layers/dense.h"
#include "layers/lstm.h"
#include "lm/lm_ops.h"
#include "lm/ptb.h"

/* Arena blocks of the internal tapes: one PTB window of the medium model needs ~100 MB (logits and
 * their gradient are 2 x B*T*V floats); the arena merges blocks after the first step anyway. */
#define LM_TAPE_BLOCK ((size_t)32 << 20)

/* ---- config ---- */

void lp_lm_config_default(lp_lm_config *cfg, int vocab, int layers, int hidden) {
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab = vocab;
    cfg->embed = hidden;
    cfg->layers = layers;
    for (int l = 0; l < layers && l < LP_LM_MAX_LAYERS; l++) cfg->hidden[l] = hidden;
    cfg->tied = 0;
    cfg->dropout = 0.0f;
    cfg->init_scale = 0.1f;
}

lp_status lp_lm_config_check(const lp_lm_config *cfg) {
    if (cfg->vocab < 1) return lp_errorf(LP_ERR_ARG, "lm config: vocab must be >= 1, got %d", cfg->vocab);
    if (cfg->embed < 1) return lp_errorf(LP_ERR_ARG, "lm config: embed must be >= 1, got %d", cfg->embed);
    if (cfg->layers < 1 || cfg->layers > LP_LM_MAX_LAYERS)
        return lp_errorf(LP_ERR_ARG, "lm config: layers must be in [1, %d], got %d", LP_LM_MAX_LAYERS,
                         cfg->layers);
    for (int l = 0; l < cfg->layers; l++)
        if (cfg->hidden[l] < 1)
            return lp_errorf(LP_ERR_ARG, "lm config: layer %d has %d units (must be >= 1)", l + 1, cfg->hidden[l]);
    if (cfg->tied && cfg->embed != cfg->hidden[cfg->layers - 1])
        return lp_errorf(LP_ERR_ARG,
                         "lm config: tied embeddings need embed == units of the last layer, got %d and %d",
                         cfg->embed, cfg->hidden[cfg->layers - 1]);
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        return lp_errorf(LP_ERR_ARG, "lm config: dropout must be in [0, 1), got %g", (double)cfg->dropout);
    if (!(cfg->init_scale > 0.0f && isfinite(cfg->init_scale)))
        return lp_errorf(LP_ERR_ARG, "lm config: init_scale must be > 0, got %g", (double)cfg->init_scale);
    return LP_OK;
}

lp_status lp_lm_config_to_kv(const lp_lm_config *cfg, lp_kv *kv) {
    LP_TRY(lp_kv_set(kv, "model.kind", "lm"));
    LP_TRY(lp_kv_set_int(kv, "model.vocab", cfg->vocab));
    LP_TRY(lp_kv_set_int(kv, "model.embed", cfg->embed));
    LP_TRY(lp_kv_set_int(kv, "model.layers", cfg->layers));
    LP_TRY(lp_kv_set_int_list(kv, "model.units", cfg->layers < LP_LM_MAX_LAYERS ? cfg->layers : LP_LM_MAX_LAYERS,
                              cfg->hidden));
    LP_TRY(lp_kv_set_int(kv, "model.tied", cfg->tied));
    LP_TRY(lp_kv_set_double(kv, "model.dropout", cfg->dropout));
    LP_TRY(lp_kv_set_double(kv, "model.init_scale", cfg->init_scale));
    if (!cfg->vocab_digest) return LP_OK;
    return lp_kv_setf(kv, "model.vocab_digest", "%016llx", (unsigned long long)cfg->vocab_digest);
}

/* model.vocab_digest when present (16 hex digits, nonzero); *d = 0 when absent. */
static lp_status digest_from_kv(const lp_kv *kv, uint64_t *d) {
    *d = 0;
    const char *v = lp_kv_get(kv, "model.vocab_digest");
    if (!v) return LP_OK;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 16);
    if (end - v != 16 || *end || errno || !x)
        return lp_errorf(LP_ERR_FORMAT, "model.vocab_digest = '%s' is not 16 hex digits", v);
    *d = (uint64_t)x;
    return LP_OK;
}

lp_status lp_lm_config_from_kv(lp_lm_config *cfg, const lp_kv *kv) {
    memset(cfg, 0, sizeof *cfg);
    const char *kind = lp_kv_get(kv, "model.kind");
    if (!kind || strcmp(kind, "lm") != 0)
        return lp_errorf(LP_ERR_FORMAT, "model.kind is '%s', expected 'lm'", kind ? kind : "(missing)");
    double d;
    LP_TRY(lp_kv_get_int_in(kv, "model.vocab", 1, 100000000, &cfg->vocab));
    LP_TRY(lp_kv_get_int_in(kv, "model.embed", 1, 1000000, &cfg->embed));
    LP_TRY(lp_kv_get_int_in(kv, "model.layers", 1, LP_LM_MAX_LAYERS, &cfg->layers));
    LP_TRY(lp_kv_get_int_in(kv, "model.tied", 0, 1, &cfg->tied));
    LP_TRY(lp_kv_get_double(kv, "model.dropout", &d));
    cfg->dropout = (float)d;
    LP_TRY(lp_kv_get_double(kv, "model.init_scale", &d));
    cfg->init_scale = (float)d;
    LP_TRY(lp_kv_get_int_list(kv, "model.units", cfg->layers, 1, 1000000, cfg->hidden));
    LP_TRY(digest_from_kv(kv, &cfg->vocab_digest));
    if (lp_lm_config_check(cfg) != LP_OK) return lp_error_wrap(LP_ERR_FORMAT, "model config");
    return LP_OK;
}

/* ---- parameters ---- */

lp_status lp_lm_declare(lp_params *ps, const lp_lm_config *cfg) {
    LP_TRY(lp_lm_config_check(cfg));
    const int V = cfg->vocab, E = cfg->embed, L = cfg->layers, HL = cfg->hidden[L - 1];
    int ok = lp_params_declare(ps, "embed.w", 2, (const int[]){V, E}) >= 0;
    for (int l = 0; ok && l < L; l++) {
        char name[24];
        snprintf(name, sizeof name, "lstm%d", l + 1);
        ok = lp_lstm_declare(ps, name, cfg->hidden[l], l ? cfg->hidden[l - 1] : E) == 0;
    }
    if (ok && !cfg->tied) ok = lp_params_declare(ps, "out.w", 2, (const int[]){V, HL}) >= 0;
    ok = ok && lp_params_declare(ps, "out.b", 1, (const int[]){V}) >= 0;
    return ok ? LP_OK : LP_ERR_NOMEM;
}

lp_status lp_lm_init(lp_lm *m, const lp_lm_config *cfg, uint64_t seed) {
    memset(m, 0, sizeof *m);
    LP_TRY(lp_lm_config_check(cfg));
    m->cfg = *cfg;
    lp_params_init(&m->params);
    const int E = cfg->embed, L = cfg->layers;
    for (int l = 0; l < L; l++) snprintf(m->groups[l].name, sizeof m->groups[l].name, "lstm%d", l + 1);
    lp_status s = lp_lm_declare(&m->params, cfg);
    if (s == LP_OK) s = lp_params_finalize(&m->params);
    if (s != LP_OK) {
        s = lp_error_wrap(s, "lm init");
        lp_lm_free(m);
        return s;
    }

    m->embed_w = lp_params_find(&m->params, "embed.w");
    m->out_w = cfg->tied ? m->embed_w : lp_params_find(&m->params, "out.w");
    m->out_b = lp_params_find(&m->params, "out.b");
    for (int l = 0; l < L; l++) {
        lp_unit_group *g = &m->groups[l];
        g->units = cfg->hidden[l];
        g->input_dim = l ? cfg->hidden[l - 1] : E;
        g->reverse = 0;
        g->fixed = cfg->tied && l == L - 1;
        lp_lstm_weights w = lp_lstm_find(&m->params, g->name);
        g->w_ih = w.w_ih, g->w_hh = w.w_hh, g->b = w.b;
        if (l + 1 < L) snprintf(g->consumer_name, sizeof g->consumer_name, "lstm%d.w_ih", l + 2);
        else snprintf(g->consumer_name, sizeof g->consumer_name, cfg->tied ? "embed.w" : "out.w");
        g->consumer = lp_params_find(&m->params, g->consumer_name);
        g->consumer_col0 = 0;
        LP_CHECK(g->w_ih && g->w_hh && g->b && g->consumer);
    }

    /* Zaremba: every parameter uniform in ±init_scale; declaration order = the whole block in order. */
    lp_rng r;
    lp_rng_init(&r, seed, LP_RNG_STREAM_INIT);
    for (int i = 0; i < m->params.count; i++) lp_tensor_fill_uniform(&m->params.items[i].t, cfg->init_scale, &r);
    return LP_OK;
}

void lp_lm_free(lp_lm *m) {
    lp_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

size_t lp_lm_numel(const lp_lm *m) { return m->params.numel; }

double lp_lm_flops_per_word(const lp_lm *m) {
    const lp_lm_config *c = &m->cfg;
    double f = 0;
    for (int l = 0; l < c->layers; l++) {
        const double h = c->hidden[l], in = l ? c->hidden[l - 1] : c->embed;
        f += 2.0 * 4.0 * h * (in + h);
    }
    return f + 2.0 * c->vocab * c->hidden[c->layers - 1];
}

/* ---- checkpoints ---- */

lp_status lp_lm_add_to_ckpt(const lp_lm *m, lp_ckpt *c) {
    LP_TRY(lp_lm_config_to_kv(&m->cfg, &c->meta));
    for (int i = 0; i < m->params.count; i++)
        LP_TRY(lp_ckpt_add_tensor(c, m->params.items[i].name, &m->params.items[i].t));
    return LP_OK;
}

lp_status lp_lm_from_ckpt(lp_lm *m, const lp_ckpt *c, const char *path) {
    memset(m, 0, sizeof *m);
    lp_lm_config cfg;
    lp_status s = lp_lm_config_from_kv(&cfg, &c->meta);
    if (s != LP_OK) return lp_error_wrap(s, "%s", path);
    /* The tensors the meta describes, checked against the table before allocating: a crafted meta
     * (model.vocab = 999999 over a small table, valid CRCs) must not cost gigabytes. */
    lp_params ps;
    lp_params_init(&ps);
    s = lp_lm_declare(&ps, &cfg);
    if (s == LP_OK) s = lp_ckpt_check_params(c, &ps, path);
    lp_params_free(&ps);
    if (s != LP_OK) return s;
    LP_TRY(lp_lm_init(m, &cfg, 0)); /* the seed is irrelevant: every tensor is overwritten */
    for (int i = 0; i < m->params.count; i++) {
        s = lp_ckpt_copy_to(c, m->params.items[i].name, &m->params.items[i].t, path);
        if (s != LP_OK) {
            lp_lm_free(m);
            return s;
        }
    }
    return LP_OK;
}

lp_status lp_lm_vocab_check(const lp_lm_config *cfg, const lp_ptb_vocab *v, const char *model, const char *data) {
    if (cfg->vocab != v->size)
        return lp_errorf(LP_ERR_ARG, "%s has a vocabulary of %d words, the data %s %d: it was trained on other data",
                         model, cfg->vocab, data, v->size);
    if (!cfg->vocab_digest) {
        lp_log(LP_LOG_WARN, "warning: %s records no vocabulary digest (saved before model.vocab_digest existed): "
                            "cannot check that the words of %s have the ids it was trained with", model, data);
        return LP_OK;
    }
    const uint64_t d = lp_ptb_vocab_digest(v);
    if (d && d != cfg->vocab_digest) /* d = 0: data of ids alone, nothing to compare */
        return lp_errorf(LP_ERR_ARG,
                         "%s was trained on another vocabulary than that of %s (both %d words, but other words or "
                         "another order: digest %016llx, the data's %016llx); give the --data (and --max-words) "
                         "it was trained with", model, data, v->size, (unsigned long long)cfg->vocab_digest,
                         (unsigned long long)d);
    return LP_OK;
}

lp_status lp_lm_load(lp_lm *m, const char *path, lp_kv *meta) {
    memset(m, 0, sizeof *m);
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, path));
    lp_status s = lp_lm_from_ckpt(m, &c, path);
    for (int i = 0; s == LP_OK && meta && i < c.meta.count; i++) s = lp_kv_set(meta, c.meta.keys[i], c.meta.vals[i]);
    if (s != LP_OK) lp_lm_free(m);
    lp_ckpt_free(&c);
    return s;
}

/* ---- state ---- */

lp_status lp_lm_state_init(lp_lm_state *s, const lp_lm *m, int batch) {
    memset(s, 0, sizeof *s);
    if (batch < 1) return lp_errorf(LP_ERR_ARG, "lm state: batch must be >= 1, got %d", batch);
    size_t total = 0;
    for (int l = 0; l < m->cfg.layers; l++) total += 2 * (size_t)batch * (size_t)m->cfg.hidden[l];
    s->block = lp_calloc(total, sizeof(float));
    if (!s->block) return LP_ERR_NOMEM;
    s->batch = batch;
    s->layers = m->cfg.layers;
    float *p = s->block;
    for (int l = 0; l < s->layers; l++) {
        size_t n = (size_t)batch * (size_t)m->cfg.hidden[l];
        s->hidden[l] = m->cfg.hidden[l];
        s->h[l] = p;
        s->c[l] = p + n;
        p += 2 * n;
    }
    return LP_OK;
}

void lp_lm_state_zero(lp_lm_state *s) {
    for (int l = 0; l < s->layers; l++) {
        size_t n = (size_t)s->batch * (size_t)s->hidden[l];
        memset(s->h[l], 0, n * sizeof(float));
        memset(s->c[l], 0, n * sizeof(float));
    }
}

void lp_lm_state_free(lp_lm_state *s) {
    lp_free(s->block);
    memset(s, 0, sizeof *s);
}

/* ---- forward ---- */

static lp_status check_ids(const int32_t *ids, size_t n, int V, const char *what) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= V)
            return lp_errorf(LP_ERR_ARG, "%s: id %d at position %zu is outside the vocabulary [0, %d)", what,
                             (int)ids[i], i, V);
    return LP_OK;
}

lp_status lp_lm_forward(lp_lm *m, lp_tape *tp, const int32_t *x, const int32_t *y, int B, int T,
                        lp_lm_state *state, lp_rng *dropout_rng, lp_lm_out *out) {
    memset(out, 0, sizeof *out);
    const lp_lm_config *cfg = &m->cfg;
    if (B < 1 || T < 1) return lp_errorf(LP_ERR_ARG, "lm forward: window [%d, %d] is empty", B, T);
    const size_t n = (size_t)B * (size_t)T;
    LP_TRY(check_ids(x, n, cfg->vocab, "lm forward: inputs"));
    if (y) LP_TRY(check_ids(y, n, cfg->vocab, "lm forward: targets"));
    if (state) {
        int same = state->batch == B && state->layers == cfg->layers;
        for (int l = 0; same && l < cfg->layers; l++) same = state->hidden[l] == cfg->hidden[l];
        if (!same)
            return lp_errorf(LP_ERR_SHAPE, "lm forward: the state was made for batch %d and %d layers, not for "
                                           "this model and batch %d", state->batch, state->layers, B);
    }
    const float p = dropout_rng ? cfg->dropout : 0.0f;

    out->embed = lp_op_embedding(tp, m->embed_w, x, B, T);
    // seq is [B,T,E], then [B,T,H_l]
    lp_tensor *seq = p > 0 ? lp_op_dropout(tp, out->embed, p, dropout_rng) : out->embed;
    if (!seq) return lp_error_wrap(LP_ERR_NOMEM, "lm forward: embedding");
    for (int l = 0; l < cfg->layers; l++) {
        const lp_unit_group *g = &m->groups[l];
        lp_tensor *h0 = NULL, *c0 = NULL;
        if (state) { /* leaf views without grad: the carried state is detached */
            const int dims[2] = {B, g->units};
            h0 = lp_tape_view(tp, state->h[l], NULL, 2, dims);
            c0 = lp_tape_view(tp, state->c[l], NULL, 2, dims);
            if (!h0 || !c0) return lp_error_wrap(LP_ERR_NOMEM, "lm forward: %s", g->name);
        }
        lp_lstm_out o = lp_lstm(tp, seq, g->w_ih, g->w_hh, g->b, h0, c0, NULL, 0);
        if (!o.h_seq) return lp_error_wrap(LP_ERR_NOMEM, "lm forward: %s", g->name);
        if (state) { /* the op copied h0/c0 at its start, so overwriting them now is safe */
            const size_t bytes = (size_t)B * (size_t)g->units * sizeof(float);
            memcpy(state->h[l], o.h_last->data, bytes);
            memcpy(state->c[l], o.c_last->data, bytes);
        }
        out->group_h[l] = o.h_seq;
        seq = p > 0 ? lp_op_dropout(tp, o.h_seq, p, dropout_rng) : o.h_seq;
        if (!seq) return lp_error_wrap(LP_ERR_NOMEM, "lm forward: dropout");
    }
    out->logits = lp_dense(tp, seq, m->out_w, m->out_b);
    if (!out->logits) return lp_error_wrap(LP_ERR_NOMEM, "lm forward: softmax layer");
    if (y) {
        out->loss = lp_op_softmax_xent(tp, out->logits, y);
        if (!out->loss) return lp_error_wrap(LP_ERR_NOMEM, "lm forward: loss");
    }
    return LP_OK;
}

/* ---- evaluation ---- */

lp_status lp_lm_evaluate(lp_lm *m, const int32_t *ids, size_t n, int batch, int bptt, double *nll_out,
                         lp_lm_eval_result *res) {
    memset(res, 0, sizeof *res);
    lp_ptb_batcher bt;
    LP_TRY(lp_ptb_batcher_init(&bt, ids, n, batch, bptt, 0));
    /* only the tokens the batcher reads need to be valid */
    LP_TRY(check_ids(ids, (size_t)batch * bt.stream_len, m->cfg.vocab, "lm evaluate"));
    lp_status s;
    lp_lm_state st;
    LP_TRY(lp_lm_state_init(&st, m, batch));
    lp_tape tp;
    if ((s = lp_tape_init(&tp, LM_TAPE_BLOCK)) != LP_OK) {
        lp_lm_state_free(&st);
        return s;
    }
    lp_tape_set_grad(&tp, 0);
    int32_t *x = lp_malloc((size_t)batch * (size_t)bptt, sizeof *x);
    int32_t *y = lp_malloc((size_t)batch * (size_t)bptt, sizeof *y);
    if (!x || !y) {
        s = LP_ERR_NOMEM;
        goto done;
    }
    double t0 = lp_now_s(), total = 0;
    size_t done_targets = 0;
    lp_gemm_hold(m->params.data, m->params.numel); /* bf16: the weights converted once for the pass */
    for (int w = 0; w < bt.windows; w++) {
        lp_tape_reset(&tp);
        int t = lp_ptb_batcher_window(&bt, w, x, y);
        const size_t k = (size_t)batch * (size_t)t;
        lp_lm_out out;
        if ((s = lp_lm_forward(m, &tp, x, nll_out ? NULL : y, batch, t, &st, NULL, &out)) != LP_OK) break;
        if (nll_out) { /* per-word values, summed in the same order */
            double *r = nll_out + done_targets;
            lp_op_softmax_xent_rows(out.logits->data, y, k, m->cfg.vocab, r);
            for (size_t i = 0; i < k; i++) total += r[i];
        } else {
            total += (double)out.loss->data[0] * (double)k;
        }
        done_targets += k;
    }
    lp_gemm_release(m->params.data);
    if (s != LP_OK) goto done;
    res->seconds = lp_now_s() - t0;
    res->targets = done_targets;
    res->nll = total / (double)done_targets;
    res->ppl = exp(res->nll);
    res->words_per_sec = res->seconds > 0 ? (double)done_targets / res->seconds : 0;
    s = LP_OK;
done:
    lp_free(x);
    lp_free(y);
    lp_tape_free(&tp);
    lp_lm_state_free(&st);
    return s;
}
