/* video_task: the video classifiers as a prune/task.h task (contract in video_task.h). */
#include "tasks/video_task.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/dist.h"
#include "core/gemm.h"
#include "core/log.h"
#include "data/yt8m.h"
#include "model/evaluate.h"
#include "model/init.h"
#include "model/runcfg.h"

static const lp_task_ops video_ops;

lp_model *lp_video_task_model(lp_task *t) {
    LP_CHECK(lp_task_is_video(t));
    return &((lp_video_task *)t)->model;
}

lp_kv *lp_video_task_cfg(lp_task *t) {
    LP_CHECK(lp_task_is_video(t));
    return &((lp_video_task *)t)->cfg;
}

int lp_task_is_video(const lp_task *t) { return t && t->ops == &video_ops; }

static void video_free(lp_task *t) {
    lp_video_task *v = (lp_video_task *)t;
    lp_batcher_free(v->batcher);
    if (v->train_pats) lp_runcfg_free_patterns(v->train_pats, v->n_train_pats);
    lp_model_free(&v->model);
    lp_kv_free(&v->cfg);
    lp_free(v);
}

lp_status lp_video_task_new(lp_model *m, const lp_kv *cfg, lp_task **out) {
    *out = NULL;
    lp_video_task *v = lp_calloc(1, sizeof *v);
    if (!v) {
        lp_model_free(m);
        return LP_ERR_NOMEM;
    }
    lp_model_move(&v->model, m);
    lp_kv_init(&v->cfg);
    v->task = (lp_task){&video_ops, v->model.params, v->model.groups, v->model.n_groups};
    lp_status s = LP_OK;
    for (int i = 0; cfg && i < cfg->count && s == LP_OK; i++) s = lp_kv_set(&v->cfg, cfg->keys[i], cfg->vals[i]);
    if (s == LP_OK) s = lp_runcfg_defaults(&v->cfg);
    if (s != LP_OK) {
        video_free(&v->task);
        return s;
    }
    *out = &v->task;
    return LP_OK;
}

lp_status lp_video_task_load(const char *path, const lp_kv *overrides, lp_task **out) {
    *out = NULL;
    lp_model m;
    lp_kv meta;
    lp_kv_init(&meta);
    lp_status s = lp_model_load(&m, path, &meta);
    for (int i = 0; overrides && i < overrides->count && s == LP_OK; i++)
        s = lp_kv_set(&meta, overrides->keys[i], overrides->vals[i]);
    if (s == LP_OK) s = lp_video_task_new(&m, &meta, out);
    else lp_model_free(&m);
    lp_kv_free(&meta);
    return s;
}

/* ---- operations ---- */

typedef struct {
    lp_model *m;
    lp_task_responses_fn fn;
    void *user;
    int part, parts;
} resp_ctx;

/* The responses of the part's videos [first, first + n) of the batch. */
static lp_status responses_batch(resp_ctx *c, lp_tape *tp, const lp_batch *bt) {
    int first, n;
    lp_task_share(bt->B, c->part, c->parts, &first, &n);
    if (n == 0) return LP_OK;
    lp_tape_reset(tp);
    int dx[3] = {n, bt->T, bt->D};
    lp_tensor *x = lp_tape_view(tp, bt->x + (size_t)first * bt->T * bt->D, NULL, 3, dx);
    if (!x) return LP_ERR_NOMEM;
    lp_model_out out;
    const int *lengths = lp_batch_model_lengths(bt); /* NULL (repeat padding): every step is a response */
    if (lengths) lengths += first;
    LP_TRY(lp_model_forward(c->m, tp, x, lengths, NULL, NULL, &out));
    lp_task_responses r = {.B = n, .T = bt->T, .lengths = lengths};
    for (int g = 0; g < c->m->n_groups; g++) r.h[g] = out.group_h[g];
    return c->fn(c->user, &r);
}

static lp_status video_responses(lp_task *t, int batches, int part, int parts, lp_task_responses_fn fn, void *user) {
    lp_video_task *v = (lp_video_task *)t;
    char **pats;
    int n;
    LP_TRY(lp_runcfg_patterns(&v->cfg, "train", &pats, &n));
    lp_batcher_config bc;
    lp_batcher *b = NULL;
    lp_tape tp;
    memset(&tp, 0, sizeof tp);
    lp_status s = lp_runcfg_batcher(&v->cfg, pats, n, 1, &bc);
    bc.epochs = 1;
    if (s == LP_OK) s = lp_batcher_new(&b, &bc);
    if (s == LP_OK) s = lp_tape_init(&tp, (size_t)64 << 20);
    lp_tape_set_grad(&tp, 0);
    resp_ctx c = {&v->model, fn, user, part, parts};
    const lp_batch *bt;
    lp_params *ps = v->model.params;
    lp_gemm_hold(ps->data, ps->numel); /* bf16: the weights converted once for the pass */
    for (int done = 0; s == LP_OK && (batches <= 0 || done < batches) && (s = lp_batcher_next(b, &bt)) == LP_OK; done++)
        s = responses_batch(&c, &tp, bt);
    lp_gemm_release(ps->data);
    if (s == LP_ERR_EOF) s = LP_OK;
    lp_tape_free(&tp);
    lp_batcher_free(b);
    lp_runcfg_free_patterns(pats, n);
    return s;
}

static lp_status video_resized(const lp_task *t, const int *units, lp_task **out) {
    const lp_video_task *v = (const lp_video_task *)t;
    char list[LP_MAX_GROUPS * 12 + 1];
    size_t len = 0;
    for (int g = 0; g < t->n_groups; g++) len += (size_t)snprintf(list + len, sizeof list - len, g ? ",%d" : "%d", units[g]);
    lp_kv kv;
    lp_kv_init(&kv);
    lp_model m;
    memset(&m, 0, sizeof m);
    lp_status s = lp_model_to_kv(&v->model, &kv);
    if (s == LP_OK) s = lp_kv_set(&kv, "model.units", list);
    if (s == LP_OK) s = lp_model_init_kv(&m, &kv, 0); /* the seed is irrelevant: surgery overwrites every tensor */
    lp_kv_free(&kv);
    if (s == LP_OK) s = lp_video_task_new(&m, &v->cfg, out);
    if (s == LP_OK) s = lp_model_to_kv(&((lp_video_task *)*out)->model, &((lp_video_task *)*out)->cfg);
    return s;
}

static const char *split_key(lp_split split) {
    return split == LP_SPLIT_TRAIN ? "train" : split == LP_SPLIT_VALID ? "valid" : "test";
}

/* An evaluation as a score: the figures in video_ops.figures order, GAP@k selecting. */
static void eval_score(const lp_eval_result *r, lp_score *out) {
    static const char *names[] = {"loss", "gap", "map", "hit1", "perr"};
    const double vals[] = {r->loss, r->m.gap, r->m.map, r->m.hit1, r->m.perr};
    out->n = 5;
    for (int i = 0; i < out->n; i++) out->name[i] = names[i], out->value[i] = vals[i];
    out->primary = 1;
    out->higher_better = 1;
    out->examples = r->videos;
    out->seconds = r->seconds;
}

static lp_status video_score(lp_task *t, lp_split split, lp_score *out) {
    lp_video_task *v = (lp_video_task *)t;
    char **pats;
    int n;
    LP_TRY(lp_runcfg_patterns(&v->cfg, split_key(split), &pats, &n));
    lp_batcher_config bc;
    lp_eval_result r;
    lp_status s = n == 0 ? LP_OK : lp_runcfg_batcher(&v->cfg, pats, n, 0, &bc);
    const int top_k = (int)lp_kv_get_int_or(&v->cfg, "train.top_k", 20);
    if (s == LP_OK && n > 0) s = lp_evaluate(&v->model, &bc, top_k, NULL, NULL, &r);
    lp_runcfg_free_patterns(pats, n);
    if (s != LP_OK || n == 0) return s; /* no data for this split: nothing scored (out->n = 0) */
    eval_score(&r, out);
    return LP_OK;
}

/* The class frequencies of (at most 200 batches of) the training data, given to every video. */
static lp_status video_reference(lp_task *t, lp_split split, lp_score *out) {
    lp_video_task *v = (lp_video_task *)t;
    char **ep, **tp;
    int en, tn;
    LP_TRY(lp_runcfg_patterns(&v->cfg, split_key(split), &ep, &en));
    lp_status s = lp_runcfg_patterns(&v->cfg, "train", &tp, &tn);
    if (s != LP_OK || en == 0 || tn == 0) {
        lp_runcfg_free_patterns(ep, en);
        if (s == LP_OK) lp_runcfg_free_patterns(tp, tn);
        return s;
    }
    lp_batcher_config ebc, tbc;
    lp_eval_result r;
    const int top_k = (int)lp_kv_get_int_or(&v->cfg, "train.top_k", 20);
    s = lp_runcfg_batcher(&v->cfg, ep, en, 0, &ebc);
    if (s == LP_OK) s = lp_runcfg_batcher(&v->cfg, tp, tn, 1, &tbc);
    if (s == LP_OK) s = lp_evaluate_prior(&tbc, 200, &ebc, top_k, &r);
    if (s == LP_OK) eval_score(&r, out);
    lp_runcfg_free_patterns(ep, en);
    lp_runcfg_free_patterns(tp, tn);
    return s;
}

static void video_figure_title(const lp_kv *cfg, const char *figure, char *buf, size_t n) {
    static const char *names[][2] = {{"gap", "GAP@%d"}, {"map", "mAP"}, {"hit1", "Hit@1"}, {"perr", "PERR"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(figure, names[i][0])) {
            snprintf(buf, n, names[i][1], cfg ? (int)lp_kv_get_int_or(cfg, "train.top_k", 20) : 20);
            return;
        }
    snprintf(buf, n, "%s", figure);
}

static double video_flops(const lp_task *t) { return lp_model_flops_per_frame(&((const lp_video_task *)t)->model); }

static lp_status video_latency(lp_task *t, int batch, int steps, int reps, double *ms) {
    return lp_model_latency(&((lp_video_task *)t)->model, batch, steps, reps, ms);
}

static lp_status video_save(const lp_task *t, lp_ckpt *c) {
    return lp_model_add_to_ckpt(&((const lp_video_task *)t)->model, c);
}

/* ---- training ---- */

/* data.shard_files under mpirun (docs/SCALING.md): rank r reads the training files r, r + N, ... and
 * batches of its share of train.batch, [B·r/N, B·(r+1)/N) videos; one micro-batch per rank. */
static lp_status shard_files(lp_video_task *v, lp_batcher_config *bc) {
    const int ranks = lp_dist_size(), r = lp_dist_rank();
    v->sharded = ranks > 1 && lp_kv_get_int_or(&v->cfg, "data.shard_files", 0) != 0;
    if (!v->sharded) return LP_OK;
    const long long K = lp_kv_get_int_or(&v->cfg, "train.micro_batches", 0);
    if (K != 0 && K != ranks)
        return lp_errorf(LP_ERR_ARG, "data.shard_files reads one micro-batch per rank: train.micro_batches must be %d "
                                     "(or 0), got %lld", ranks, K);
    const int B = bc->batch_size, first = (int)((int64_t)B * r / ranks), last = (int)((int64_t)B * (r + 1) / ranks);
    if (last == first) return lp_errorf(LP_ERR_ARG, "data.shard_files: train.batch = %d leaves rank %d no video", B, r);
    bc->batch_size = last - first;
    bc->shard = r;
    bc->n_shards = ranks;
    return LP_OK;
}

static lp_status video_epoch_begin(lp_task *t, int64_t epoch, int64_t step) {
    lp_video_task *v = (lp_video_task *)t;
    if (v->batcher) {
        lp_batcher_cursor at = lp_batcher_position(v->batcher);
        if (at.epoch == epoch && at.batch == step) { /* the batcher goes on into this epoch */
            v->label_max = -1;
            v->label_whole_epoch = step == 0;
            return LP_OK;
        }
        lp_batcher_free(v->batcher);
        v->batcher = NULL;
    }
    if (!v->train_pats) {
        LP_TRY(lp_runcfg_patterns(&v->cfg, "train", &v->train_pats, &v->n_train_pats));
        if (v->n_train_pats == 0) return lp_errorf(LP_ERR_ARG, "no training data (data.train / --train)");
    }
    lp_batcher_config bc;
    LP_TRY(lp_runcfg_batcher(&v->cfg, v->train_pats, v->n_train_pats, 1, &bc));
    LP_TRY(shard_files(v, &bc));
    v->label_max = -1;
    v->label_whole_epoch = step == 0;
    bc.start = (lp_batcher_cursor){epoch, step};
    LP_TRY(lp_batcher_new(&v->batcher, &bc));
    v->epoch_bytes = 0;
    for (int i = 0; i < lp_batcher_num_files(v->batcher); i++) {
        struct stat st;
        if (stat(lp_batcher_file(v->batcher, i), &st) == 0) v->epoch_bytes += (double)st.st_size;
    }
    return LP_OK;
}

/* The highest class with a positive label in a batch (labels [B,classes] multi-hot), or -1. */
static int batch_label_max(const lp_batch *bt, int above) {
    for (int b = 0; b < bt->B; b++)
        for (int c = bt->classes - 1; c > above; c--)
            if (bt->labels[(size_t)b * (size_t)bt->classes + (size_t)c] != 0.0f) {
                above = c;
                break;
            }
    return above;
}

/* The step's batch. Sharded, every rank reads its own files, and the epoch ends for all when it ends for
 * one (the others' remaining batches are left: no rank waits for a batch that will not come); the step's
 * global batch is the sum of the ranks' batches. */
static lp_status video_next_batch(lp_task *t) {
    lp_video_task *v = (lp_video_task *)t;
    lp_status s = lp_batcher_next(v->batcher, &v->cur);
    if (s != LP_OK && s != LP_ERR_EOF) return s;
    double have[2] = {s == LP_OK ? 0 : 1, s == LP_OK ? v->cur->B : 0}; /* ranks at the end, videos */
    if (v->sharded) LP_TRY(lp_dist_sum_double(have, 2));
    if (have[0] > 0) return LP_ERR_EOF;
    v->global_B = (int)have[1];
    v->label_max = batch_label_max(v->cur, v->label_max);
    return LP_OK;
}

/* The part's videos [first, first + n) of the batch: rows of x [n,T,D], labels [n,C] and lengths; the
 * model's mean loss over them counts n/B of the batch's. */
static lp_status video_train_forward(lp_task *t, lp_tape *tp, lp_rng *dropout, int part, int parts, lp_task_batch *out) {
    lp_video_task *v = (lp_video_task *)t;
    const lp_batch *bt = v->cur;
    int first = 0, n = bt->B; /* sharded: this rank's batch is its micro-batch */
    if (!v->sharded) lp_task_share(bt->B, part, parts, &first, &n);
    memset(out, 0, sizeof *out);
    if (n == 0) return LP_OK;
    int dx[3] = {n, bt->T, bt->D}, dl[2] = {n, bt->classes};
    lp_tensor *x = lp_tape_view(tp, bt->x + (size_t)first * bt->T * bt->D, NULL, 3, dx);
    lp_tensor *y = lp_tape_view(tp, bt->labels + (size_t)first * bt->classes, NULL, 2, dl);
    if (!x || !y) return LP_ERR_NOMEM;
    const int *lengths = lp_batch_model_lengths(bt);
    lp_model_out mo;
    LP_TRY(lp_model_forward(&v->model, tp, x, lengths ? lengths + first : NULL, y, dropout, &mo));
    const double l2 = lp_kv_get_double_or(&v->cfg, "train.dense_l2", 0); /* logged: the loss without it */
    const float share = (float)n / (float)v->global_B;
    /* each part adds share·L·Σw², so the parts add up to the batch's L·Σw² once */
    lp_tensor *objective = l2 > 0 ? lp_model_add_head_l2(&v->model, tp, mo.loss, (float)l2) : mo.loss;
    out->loss = lp_task_scaled(tp, mo.loss, share);
    out->objective = objective ? lp_task_scaled(tp, objective, share) : NULL;
    if (!out->loss || !out->objective) return lp_error_wrap(LP_ERR_NOMEM, "train: micro-batch %d", part);
    out->examples = n;
    return LP_OK;
}

static double video_epoch_progress(const lp_task *t) {
    const lp_video_task *v = (const lp_video_task *)t;
    return v->batcher && v->epoch_bytes > 0 ? (double)lp_batcher_get_stats(v->batcher).bytes / v->epoch_bytes : 0;
}

/* A model with far more classes than the data's labels reach is almost always a forgotten --classes (the
 * default is YouTube-8M's 3862): it trains, slowly and on mostly empty outputs, without any error. Checked
 * once, on the first epoch read whole; a data set whose labels really stop below half of its classes only
 * sees the warning. */
static void video_epoch_end(lp_task *t, int64_t epoch) {
    const lp_video_task *v = (const lp_video_task *)t;
    const int classes = v->model.classes, seen = v->label_max + 1;
    if (epoch != 0 || !v->label_whole_epoch || seen * 2 >= classes) return;
    if (seen == 0)
        lp_log(LP_LOG_WARN, "warning: the training data of epoch 1 has no positive label: there is nothing to learn");
    else
        lp_log(LP_LOG_WARN, "warning: the training labels of epoch 1 reach only class %d, but the model predicts %d "
                            "classes (data.classes = %d): is --classes missing?", v->label_max, classes, classes);
}

/* train.bias_lr_mult != 1: every LSTM bias learns at that multiple of the rate (model/model.h). */
static int video_lr_scale(const lp_task *t, float *scale) {
    const lp_video_task *v = (const lp_video_task *)t;
    int pair;
    double mult;
    if (lp_runcfg_bias(&v->cfg, &pair, &mult) != LP_OK || mult == 1.0) return 0;
    lp_model_bias_lr_scale(&v->model, (float)mult, scale);
    return 1;
}

static const lp_task_ops video_ops = {
    .name = "video",
    /* the method */
    .responses = video_responses, .resized = video_resized, .score = video_score, .save = video_save, .free = video_free,
    /* training: valid.tsv's figures, GAP@k selects */
    .figures = "loss\tgap\tmap\thit1\tperr", .primary = "gap", .higher_better = 1, .epoch_begin = video_epoch_begin,
    .next_batch = video_next_batch, .train_forward = video_train_forward, .epoch_progress = video_epoch_progress, .lr_scale = video_lr_scale,
    .epoch_end = video_epoch_end,
    /* measuring: the report's and the sweep's tables */
    .shown = "gap\tmap\thit1\tperr", .step_name = "frame", .seq_name = "video", .count_name = "videos",
    .groups_help = "BiLSTM fw/bw, LSTM 2, ... for the paper model", .units_key = "model.units",
    .figure_title = video_figure_title, .flops_per_step = video_flops, .latency = video_latency,
    .reference = video_reference,
};

/* ---- the kind ---- */

/* The run defaults, and the model.* keys of a configuration that gives only the shorthand model.arch
 * (paper | lstm), model.hidden, model.layers, model.experts, model.dropout (the sweep's configurations). */
static lp_status kind_defaults(const lp_task_kind *k, lp_kv *cfg) {
    (void)k;
    LP_TRY(lp_runcfg_defaults(cfg));
    if (lp_kv_get(cfg, "model.kind")) return LP_OK;
    lp_model_kind kind = LP_MODEL_PAPER;
    const char *arch = lp_kv_get(cfg, "model.arch");
    if (arch) LP_TRY(lp_model_kind_parse(arch, &kind));
    lp_yt8m_features f;
    LP_TRY(lp_yt8m_features_parse(&f, lp_kv_get(cfg, "data.frame_features")));
    long long hidden = lp_kv_get_int_or(cfg, "model.hidden", 1024);
    long long layers = lp_kv_get_int_or(cfg, "model.layers", kind == LP_MODEL_PAPER ? 1 : 2);
    long long experts = lp_kv_get_int_or(cfg, "model.experts", 2);
    long long classes = lp_kv_get_int_or(cfg, "data.classes", 3862);
    double dropout = lp_kv_get_double_or(cfg, "model.dropout", 0);
    if (hidden < 1 || hidden > 1000000 || layers < 1 || layers > 64 || experts < 1 || experts > 1024 || classes < 1 ||
        classes > 10000000)
        return lp_errorf(LP_ERR_ARG, "model.hidden, model.layers, model.experts or data.classes is out of range");
    return lp_model_default_kv(cfg, kind, f.dim, (int)hidden, (int)layers, (int)classes, (int)experts, (float)dropout);
}

/* The model: from checkpoint c, or fresh from the model.* keys and train.seed (with the initialisers of
 * train.weight_init and the bias parametrisation of train.bias_init). */
static lp_status kind_model(lp_kv *cfg, const lp_ckpt *c, const char *path, lp_model *m) {
    long long seed;
    int pair;
    double mult;
    lp_weight_init wi;
    LP_TRY(lp_kv_get_int(cfg, "train.seed", &seed));
    LP_TRY(lp_runcfg_bias(cfg, &pair, &mult));
    LP_TRY(lp_runcfg_weight_init(cfg, &wi));
    if (c) return lp_model_from_ckpt(m, c, path);
    LP_TRY(lp_model_init_kv(m, cfg, (uint64_t)seed));
    lp_status s = LP_OK;
    if (wi == LP_WEIGHT_INIT_KERAS) s = lp_model_init_keras(m, (uint64_t)seed);
    else if (pair) lp_model_bias_pair_init(m, (uint64_t)seed);
    if (s != LP_OK) lp_model_free(m);
    return s;
}

static lp_status kind_open(const lp_task_kind *k, lp_kv *cfg, const lp_ckpt *c, const char *path, lp_task **out) {
    *out = NULL;
    LP_TRY(kind_defaults(k, cfg));
    lp_model m;
    LP_TRY(kind_model(cfg, c, path, &m));
    long long classes = 0;
    lp_status s = lp_model_to_kv(&m, cfg); /* the config records the (possibly pruned) sizes */
    if (s == LP_OK) s = lp_kv_get_int(cfg, "data.classes", &classes);
    if (s == LP_OK && classes != m.classes)
        s = lp_errorf(LP_ERR_ARG, "data.classes = %lld but the model predicts %d classes", classes, m.classes);
    if (s != LP_OK) {
        lp_model_free(&m);
        return s;
    }
    return lp_video_task_new(&m, cfg, out);
}

static lp_status kind_settings(const lp_task_kind *k, const lp_kv *cfg, lp_train_settings *s) {
    (void)k;
    memset(s, 0, sizeof *s);
    long long v;
    LP_TRY(lp_kv_get_int(cfg, "train.epochs", &v));
    s->epochs = v;
    if (s->epochs < 1) return lp_errorf(LP_ERR_ARG, "train.epochs must be >= 1");
    LP_TRY(lp_kv_get_int(cfg, "train.log_every", &v));
    s->log_every = v;
    LP_TRY(lp_kv_get_int(cfg, "train.save_every", &v));
    s->save_every = v;
    LP_TRY(lp_kv_get_int(cfg, "train.seed", &v));
    s->seed = (uint64_t)v;
    LP_TRY(lp_kv_get_double(cfg, "train.clip", &s->clip));
    s->test_every = -1; /* the test split is scored by the pruning report, not while training */
    s->threads = (int)lp_kv_get_int_or(cfg, "train.threads", 0);
    LP_TRY(lp_runcfg_precision(cfg, &s->precision));
    return lp_runcfg_optim(cfg, &s->optim, &s->lr);
}

const lp_task_kind lp_video_task_kind = {
    .name = "video",
    .ops = &video_ops,
    .defaults = kind_defaults,
    .open = kind_open,
    .settings = kind_settings,
};
