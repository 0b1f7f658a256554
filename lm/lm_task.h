/* lm_task: the word-level language model (lm/lm.h) on its corpus (lm/ptb.h) as a task of prune/task.h.
 *
 *   responses  training windows of stats_batch streams × stats_bptt steps in order, the recurrent state
 *              carried across windows as in evaluation; every layer's h at every step
 *   score      perplexity ("ppl", lower is better) and mean NLL ("nll") of the split's token stream
 *              (lp_lm_evaluate with eval_batch streams, windows of eval_bptt)
 *   resized    the same configuration with other layer sizes; the embedding and softmax keep theirs
 *   save       the "model.*" keys and every tensor
 *
 * The last layer of a model with tied embeddings feeds the embedding table itself, so it is a fixed
 * group (prune/unit_group.h): never pruned. */
#ifndef LP_LM_TASK_H
#define LP_LM_TASK_H

#include "lm/lm.h"
#include "lm/ptb.h"
#include "prune/task.h"

typedef struct {
    lp_task task;
    lp_lm lm;
    const lp_ptb_corpus *corpus;  /* borrowed: must outlive the task */
    int stats_batch, stats_bptt;  /* responses (20, 35) */
    int eval_batch, eval_bptt;    /* score (20, 35) */
} lp_lm_task;

/* A task that takes over *m (left empty) on `corpus` (borrowed; its vocabulary must be the model's:
 * LP_ERR_ARG). On error *m is freed and *out is NULL. */
lp_status lp_lm_task_new(lp_lm *m, const lp_ptb_corpus *corpus, lp_task **out);

/* The LM task inside t (t must be one: LP_CHECK). */
lp_lm_task *lp_lm_task_of(lp_task *t);

#endif
