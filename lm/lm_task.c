/* lm_task: the word-level LM as a prune/task.h task (contract in lm_task.h). */
#include "lm/lm_task.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

static const lp_task_ops lm_ops;

lp_lm_task *lp_lm_task_of(lp_task *t) {
    LP_CHECK(t && t->ops == &lm_ops);
    return (lp_lm_task *)t;
}

static void lm_task_free(lp_task *t) {
    lp_lm_task *l = (lp_lm_task *)t;
    lp_lm_free(&l->lm);
    lp_free(l);
}

lp_status lp_lm_task_new(lp_lm *m, const lp_ptb_corpus *corpus, lp_task **out) {
    *out = NULL;
    if (corpus->vocab.size != m->cfg.vocab) {
        lp_lm_free(m);
        return lp_errorf(LP_ERR_ARG, "the model has a vocabulary of %d words, the data %d", m->cfg.vocab, corpus->vocab.size);
    }
    lp_lm_task *l = lp_calloc(1, sizeof *l);
    if (!l) {
        lp_lm_free(m);
        return LP_ERR_NOMEM;
    }
    l->lm = *m; /* an LM points only into its heap blocks: it moves by value */
    memset(m, 0, sizeof *m);
    l->corpus = corpus;
    l->stats_batch = l->eval_batch = 20;
    l->stats_bptt = l->eval_bptt = 35;
    l->task = (lp_task){&lm_ops, &l->lm.params, l->lm.groups, l->lm.cfg.layers};
    *out = &l->task;
    return LP_OK;
}

/* ---- operations ---- */

static lp_status lm_responses(lp_task *t, int batches, lp_task_responses_fn fn, void *user) {
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
    for (int w = 0; w < W && s == LP_OK; w++) {
        lp_tape_reset(&tp);
        const int n = lp_ptb_batcher_window(&bt, w, x, y);
        lp_lm_out out;
        s = lp_lm_forward(&l->lm, &tp, x, NULL, B, n, &state, NULL, &out);
        lp_task_responses r = {.B = B, .T = n, .lengths = NULL}; /* every step of every stream is a response */
        for (int g = 0; g < t->n_groups && s == LP_OK; g++) r.h[g] = out.group_h[g];
        if (s == LP_OK) s = fn(user, &r);
        if (s != LP_OK) s = lp_error_wrap(s, "lm statistics: window %d", w + 1);
    }
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

static lp_status lm_save(const lp_task *t, lp_ckpt *c) { return lp_lm_add_to_ckpt(&((const lp_lm_task *)t)->lm, c); }

static const lp_task_ops lm_ops = {
    .name = "lm",
    .responses = lm_responses,
    .resized = lm_resized,
    .score = lm_score,
    .save = lm_save,
    .free = lm_task_free,
};
