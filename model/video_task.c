/* video_task: the video classifiers as a prune/task.h task (contract in video_task.h). */
#include "model/video_task.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "model/evaluate.h"
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
} resp_ctx;

static lp_status responses_batch(resp_ctx *c, lp_tape *tp, const lp_batch *bt) {
    lp_tape_reset(tp);
    int dx[3] = {bt->B, bt->T, bt->D};
    lp_tensor *x = lp_tape_view(tp, bt->x, NULL, 3, dx);
    if (!x) return LP_ERR_NOMEM;
    lp_model_out out;
    LP_TRY(lp_model_forward(c->m, tp, x, bt->lengths, NULL, NULL, &out));
    lp_task_responses r = {.B = bt->B, .T = bt->T, .lengths = bt->lengths};
    for (int g = 0; g < c->m->n_groups; g++) r.h[g] = out.group_h[g];
    return c->fn(c->user, &r);
}

static lp_status video_responses(lp_task *t, int batches, lp_task_responses_fn fn, void *user) {
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
    resp_ctx c = {&v->model, fn, user};
    const lp_batch *bt;
    for (int done = 0; s == LP_OK && (batches <= 0 || done < batches) && (s = lp_batcher_next(b, &bt)) == LP_OK; done++)
        s = responses_batch(&c, &tp, bt);
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
    static const char *names[] = {"gap", "map", "hit1", "perr", "loss"};
    const double vals[] = {r.m.gap, r.m.map, r.m.hit1, r.m.perr, r.loss};
    out->n = 5;
    for (int i = 0; i < out->n; i++) out->name[i] = names[i], out->value[i] = vals[i];
    out->primary = 0;
    out->higher_better = 1;
    out->examples = r.videos;
    out->seconds = r.seconds;
    return LP_OK;
}

static lp_status video_save(const lp_task *t, lp_ckpt *c) {
    return lp_model_add_to_ckpt(&((const lp_video_task *)t)->model, c);
}

static const lp_task_ops video_ops = {
    .name = "video",
    .responses = video_responses,
    .resized = video_resized,
    .score = video_score,
    .save = video_save,
    .free = video_free,
};
