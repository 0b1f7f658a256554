/* task: a prunable model with its data — the one interface between the pruning method (prune/), the
 * trainer and the experiment runner on one side, and the two tasks of the paper on the other:
 *
 *   video  the YouTube-8M classifiers (paper model, LSTM + mixture of experts)   tasks/video_task.h
 *   lm     the Penn Treebank word-level language model                           tasks/lm_task.h
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
#include <stddef.h>
#include <stdint.h>

#include "core/ckpt.h"
#include "core/params.h"
#include "core/gemm.h"
#include "core/kv.h"
#include "core/rng.h"
#include "core/status.h"
#include "core/tape.h"
#include "core/tensor.h"
#include "optim/optim.h"
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

/* ---- training ------------------------------------------------------------------------------------- */

/* What a run's train.* keys say, in the one form the trainer (train/trainer.h) uses. */
typedef struct {
    int64_t epochs;       /* >= 1 */
    int64_t log_every;    /* steps between train.tsv rows (0 = none) */
    int64_t save_every;   /* steps between mid-epoch last.ckpt writes (0 = only at epoch ends) */
    int test_every;       /* score the test split every N epochs and after the last; 0 = after the last
                           * only; < 0 = never */
    double clip;          /* global gradient-norm clip; <= 0: none */
    lp_optim_config optim;
    lp_lr_schedule lr;
    uint64_t seed;        /* the dropout generator's seed */
    int threads;          /* OpenBLAS threads (0 = the library's default) */
    lp_precision precision; /* the products: fp32 or bf16 (core/gemm.h); the trainer sets it */
} lp_train_settings;

/* The task's latency (ops->latency): under mpirun rank 0 measures while the other ranks wait without
 * spinning (core/dist.h lp_dist_barrier_idle), and every rank gets rank 0's figure; one process measures
 * as before. */
lp_status lp_task_latency(lp_task *t, int batch, int steps, int reps, double *ms);

/* The sequences [*first, *first + *n) of a batch of B that micro-batch `part` of `parts` takes: contiguous
 * blocks, B·part/parts to B·(part+1)/parts (a part may be empty when B < parts). */
void lp_task_share(int B, int part, int parts, int *first, int *n);

/* x·f on tp (x itself when f = 1, so that one whole batch is computed as before micro-batches existed);
 * NULL on NOMEM. */
lp_tensor *lp_task_scaled(lp_tape *tp, lp_tensor *x, float f);

/* One training batch through the model (on the trainer's tape). */
typedef struct {
    lp_tensor *loss;      /* scalar to log: mean BCE per video, mean NLL per word */
    lp_tensor *objective; /* what backward differentiates: loss, or a multiple of it */
    int64_t examples;     /* videos / predicted words */
} lp_task_batch;

/* ---- the operations ------------------------------------------------------------------------------- */

typedef struct {
    const char *name; /* "video", "lm" */
    /* Forward `batches` batches of training data (0 = one epoch) without gradients or dropout and call
     * fn with each batch's responses, in data order: of the sequences of micro-batch `part` of `parts`
     * of every batch (lp_task_share; parts = 1: all of them; an empty share is not passed to fn). */
    lp_status (*responses)(lp_task *t, int batches, int part, int parts, lp_task_responses_fn fn, void *user);
    /* A new task of t's kind, configuration and data whose model has units[g] units in group g (every
     * other size as in t; parameter values unspecified: surgery overwrites them). */
    lp_status (*resized)(const lp_task *t, const int *units, lp_task **out);
    /* Score the model on a split (no gradients). */
    lp_status (*score)(lp_task *t, lp_split split, lp_score *out);
    /* Add the model's configuration ("model.*" keys) and every parameter tensor (borrowed) to c. */
    lp_status (*save)(const lp_task *t, lp_ckpt *c);
    /* Release the task (and the task object itself). */
    void (*free)(lp_task *t);

    /* ---- training (train/trainer.h) ---- */
    const char *figures;  /* the score's figure names, tab-separated, in order (valid.tsv's columns) */
    const char *primary;  /* the figure that selects the best checkpoint */
    int higher_better;    /* of the primary figure */
    /* Start 0-based epoch `epoch` at its step `step` (the steps before it are skipped: a resume). */
    lp_status (*epoch_begin)(lp_task *t, int64_t epoch, int64_t step);
    /* Read the epoch's next training batch (one optimizer step's). LP_ERR_EOF when the epoch has none left. */
    lp_status (*next_batch)(lp_task *t);
    /* Micro-batch `part` of `parts` of the current batch forward on tp, with dropout from `dropout`: the
     * part's share of the batch's sequences (lp_task_share), its objective scaled so that the parts'
     * gradients add up to the whole batch's and its loss so that their losses add up to the batch's
     * (train/trainer.h). parts = 1: the whole batch, unscaled. An empty share: out->examples = 0 and no
     * tensors. */
    lp_status (*train_forward)(lp_task *t, lp_tape *tp, lp_rng *dropout, int part, int parts, lp_task_batch *out);
    /* Fraction of the current epoch done, in [0, 1] (progress lines). */
    double (*epoch_progress)(const lp_task *t);
    /* What the task carries from step to step inside an epoch (the LM's recurrent state), into and out of
     * a mid-epoch checkpoint. NULL: nothing. */
    lp_status (*carry_save)(const lp_task *t, lp_ckpt *c);
    lp_status (*carry_load)(lp_task *t, const lp_ckpt *c, const char *path);
    /* Under several ranks each has carried only its micro-batches' share forward: make it whole on every
     * rank (core/dist.h lp_dist_share_rows), before a checkpoint. NULL: nothing carried. */
    lp_status (*carry_share)(lp_task *t, int parts);
    /* Per-parameter learning-rate multipliers into scale [numel]; returns 0 when every one is 1 (scale
     * untouched). NULL: always 1. */
    int (*lr_scale)(const lp_task *t, float *scale);
    /* After the data of 0-based epoch `epoch` (before it is scored): a check of what the epoch read, whose
     * findings go to core/log.h as warnings (the video task: labels covering far fewer classes than the
     * model predicts, a forgotten --classes). Never fails training. NULL: nothing. */
    void (*epoch_end)(lp_task *t, int64_t epoch);

    /* ---- measuring (the pruning report, the sweep) ---- */
    const char *shown;        /* the figures a report's tables show, tab-separated ("gap\tmap\thit1\tperr") */
    const char *step_name;    /* what one recurrent step reads ("frame", "word") */
    const char *seq_name;     /* one input sequence ("video", "stream") */
    const char *count_name;   /* what a score counts ("videos", "words") */
    const char *groups_help;  /* what the unit groups are, for tables ("BiLSTM fw/bw, LSTM 2, ...") */
    const char *units_key;    /* the run-configuration key listing the group sizes ("model.units") */
    /* A figure's column title under run configuration cfg (may be NULL: the defaults), e.g. "GAP@20";
     * NULL: the figure's name. */
    void (*figure_title)(const lp_kv *cfg, const char *figure, char *buf, size_t n);
    /* Multiply-add FLOPs (2 per MAC) of the recurrent layers per step. */
    double (*flops_per_step)(const lp_task *t);
    /* Median wall time (ms) of `reps` no-gradient forward passes over a random batch of `batch`
     * sequences of `steps` steps (after warm-ups). */
    lp_status (*latency)(lp_task *t, int batch, int steps, int reps, double *ms);
    /* The reference a model must beat, scored on a split (video: the training class prior, which ignores
     * the input); NULL: none. Like score, out->n = 0 when the split has no data. */
    lp_status (*reference)(lp_task *t, lp_split split, lp_score *out);
} lp_task_ops;

/* A kind of task: how a run configuration becomes a task. `ctx` is the kind's own (e.g. a corpus already
 * loaded, so that a pruning job does not read it again for every fine-tuning run). */
typedef struct lp_task_kind lp_task_kind;
struct lp_task_kind {
    const char *name;
    const lp_task_ops *ops; /* the operations of every task the kind opens (names, figures) */
    void *ctx;
    /* Fill every key of cfg the kind needs and cfg lacks with its default. */
    lp_status (*defaults)(const lp_task_kind *k, lp_kv *cfg);
    /* A task for run configuration cfg: the model of checkpoint c (a resume, or the initial weights of
     * fine-tuning; its sizes win over cfg's) or, with c NULL, a fresh one from cfg's model keys and
     * train.seed. cfg is completed first (keys the kind takes from c, then the defaults) and receives
     * the model's keys. `path` names c in messages. */
    lp_status (*open)(const lp_task_kind *k, lp_kv *cfg, const lp_ckpt *c, const char *path, lp_task **out);
    /* The training settings of cfg's train.* keys (LP_ERR_ARG naming a bad key). */
    lp_status (*settings)(const lp_task_kind *k, const lp_kv *cfg, lp_train_settings *s);
};

struct lp_task {
    const lp_task_ops *ops;
    lp_params *params;     /* the model's parameters: one block (values, gradients) */
    lp_unit_group *groups; /* [n_groups] views into params */
    int n_groups;
};

/* Thin wrappers over t->ops (NULL-safe free). */
lp_status lp_task_responses_run(lp_task *t, int batches, lp_task_responses_fn fn, void *user);
/* The same over micro-batch `part` of `parts` of every batch (a rank's share of the statistics). */
lp_status lp_task_responses_part(lp_task *t, int batches, int part, int parts, lp_task_responses_fn fn, void *user);
lp_status lp_task_resized(const lp_task *t, const int *units, lp_task **out);
lp_status lp_task_score(lp_task *t, lp_split split, lp_score *out);
lp_status lp_task_save(const lp_task *t, lp_ckpt *c);
void lp_task_free(lp_task *t);

/* A figure's column title (ops->figure_title under cfg, which may be NULL; or its name). */
void lp_task_ops_figure_title(const lp_task_ops *ops, const lp_kv *cfg, const char *figure, char *buf, size_t n);

/* Units of every group into units[n_groups]; returns the total. */
int lp_task_units(const lp_task *t, int *units);

#endif
