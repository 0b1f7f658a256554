/* task: a prunable model with its data — the one interface between the pruning method (prune/), the
 * trainer and the experiment runner on one side, and the two tasks of the paper on the other:
 *
 *   video  the YouTube-8M classifiers (paper model, LSTM + mixture of experts)   model/video_task.h
 *   lm     the Penn Treebank word-level language model                           lm/lm_task.h
 *
 * A task is its model's parameter block and unit groups (prune/unit_group.h) plus a table of
 * operations: run the model over training data and hand every group's responses to the statistics,
 * build the same model with other group sizes (what surgery fills), score it (GAP@k for video,
 * perplexity for the LM), save it. Everything above works on `lp_task *` and never asks which task
 * it has.
 *
 *     lp_task *t = ...;                           // lp_video_task_open / lp_lm_task_open
 *     lp_prune_plan plan;
 *     LP_TRY(lp_prune_plan_run(t, &opts, &plan)); // statistics → rates → selection (prune/plan.h)
 *     lp_task *small;
 *     LP_TRY(lp_surgery_shrink(t, &plan, &small)); // a smaller model of the same task (prune/surgery.h)
 *     lp_score sc;
 *     LP_TRY(lp_task_score(small, LP_SPLIT_TEST, &sc));
 *     lp_task_free(small);
 */
#ifndef LP_PRUNE_TASK_H
#define LP_PRUNE_TASK_H
#include <stdint.h>

#include "core/ckpt.h"
#include "core/params.h"
#include "core/status.h"
#include "core/tensor.h"
#include "prune/unit_group.h"

typedef struct lp_task lp_task;

typedef enum { LP_SPLIT_TRAIN = 0, LP_SPLIT_VALID, LP_SPLIT_TEST } lp_split;

/* ---- scores --------------------------------------------------------------------------------------- */

/* A model's figures on one split, by name: video "loss", "gap", "map", "hit1", "perr"; LM "nll", "ppl".
 * `primary` is the one that selects models (best checkpoint, sensitivity): GAP@k for video (higher is
 * better), perplexity for the LM (lower is better). */
#define LP_SCORE_MAX 8
typedef struct {
    int n;
    const char *name[LP_SCORE_MAX];
    double value[LP_SCORE_MAX];
    int primary;          /* index of the selecting figure */
    int higher_better;    /* 1: larger primary values are better */
    int64_t examples;     /* videos / predicted words */
    double seconds;       /* wall time */
} lp_score;

/* The value named `name`, or NaN. */
double lp_score_get(const lp_score *s, const char *name);
double lp_score_primary(const lp_score *s);
/* 1 if a is better than b by the primary figure (a NaN is never better). */
int lp_score_better(const lp_score *a, const lp_score *b);

/* ---- responses ------------------------------------------------------------------------------------ */

/* One batch of a no-gradient forward pass: every group's hidden states (before dropout). */
typedef struct {
    const lp_tensor *h[LP_MAX_GROUPS]; /* [B,T,H_g] (0 at padding steps) */
    int B, T;
    const int *lengths;                /* [B] valid steps, or NULL: all T steps are valid */
} lp_task_responses;

typedef lp_status (*lp_task_responses_fn)(void *user, const lp_task_responses *r);

/* ---- the operations ------------------------------------------------------------------------------- */

typedef struct {
    const char *name; /* "video", "lm" */
    /* Forward `batches` batches of training data (0 = one epoch) without gradients or dropout and call
     * fn with each batch's responses, in data order. */
    lp_status (*responses)(lp_task *t, int batches, lp_task_responses_fn fn, void *user);
    /* A new task of t's kind, configuration and data whose model has units[g] units in group g (every
     * other size as in t; parameter values unspecified: surgery overwrites them). */
    lp_status (*resized)(const lp_task *t, const int *units, lp_task **out);
    /* Score the model on a split (no gradients). */
    lp_status (*score)(lp_task *t, lp_split split, lp_score *out);
    /* Add the model's configuration ("model.*" keys) and every parameter tensor (borrowed) to c. */
    lp_status (*save)(const lp_task *t, lp_ckpt *c);
    /* Release the task (and the task object itself). */
    void (*free)(lp_task *t);
} lp_task_ops;

struct lp_task {
    const lp_task_ops *ops;
    lp_params *params;     /* the model's parameters: one block (values, gradients) */
    lp_unit_group *groups; /* [n_groups] views into params */
    int n_groups;
};

/* Thin wrappers over t->ops (NULL-safe free). */
lp_status lp_task_responses_run(lp_task *t, int batches, lp_task_responses_fn fn, void *user);
lp_status lp_task_resized(const lp_task *t, const int *units, lp_task **out);
lp_status lp_task_score(lp_task *t, lp_split split, lp_score *out);
lp_status lp_task_save(const lp_task *t, lp_ckpt *c);
void lp_task_free(lp_task *t);

/* Units of every group into units[n_groups]; returns the total. */
int lp_task_units(const lp_task *t, int *units);

#endif
