/* lm_task: the word-level language model (lm/lm.h) on its corpus (lm/ptb.h) as a task of prune/task.h.
 *
 *   responses  training windows of stats_batch streams × stats_bptt steps in order, the recurrent state
 *              carried across windows as in evaluation; every layer's h at every step
 *   score      perplexity ("ppl", lower is better) and mean NLL ("nll") of the split's token stream
 *              (lp_lm_evaluate with eval_batch streams, windows of eval_bptt)
 *   resized    the same configuration with other layer sizes; the embedding and softmax keep theirs
 *   save       the "model.*" keys (with the vocabulary's digest) and every tensor
 *   training   Zaremba's truncated BPTT (below)
 *
 * The last layer of a model with tied embeddings feeds the embedding table itself, so it is a fixed
 * group (prune/unit_group.h): never pruned. */
#ifndef LP_TASKS_LM_TASK_H
#define LP_TASKS_LM_TASK_H

#include "core/kv.h"
#include "lm/lm.h"
#include "lm/ptb.h"
#include "prune/task.h"

typedef struct {
    lp_task task;
    lp_lm lm;
    const lp_ptb_corpus *corpus;  /* borrowed (or own_corpus): must outlive the task */
    int stats_batch, stats_bptt;  /* responses (20, 35) */
    int eval_batch, eval_bptt;    /* score (20, 35) */
    /* training (train/trainer.h): B streams of the training text, windows of bptt steps in order, the
     * recurrent state carried (detached) from window to window and zeroed at an epoch's start */
    int batch, bptt;
    lp_ptb_batcher batcher;
    int window;                   /* the next window of the epoch */
    lp_lm_state state;
    int32_t *x, *y;               /* [batch, bptt]: the current window (next_batch) */
    int steps;                    /* its length (bptt, or less for an epoch's last window) */
    lp_ptb_corpus own_corpus;     /* loaded by the kind when it was given none */
} lp_lm_task;

/* Check a run's configuration (lp_lm_run_defaults filling the keys it lacks) before any data is read or
 * anything written: the model keys, data.max_words, the training keys (with the evaluation windows
 * train.eval_batch / train.eval_bptt that lm-eval, lm-prune and lm-sensitivity use) and, when present,
 * prune.stats_batch / prune.stats_bptt, each against the bound the run would apply later. LP_ERR_ARG whose message names the key (liblinear's check_parameter). */
lp_status lp_lm_run_check(const lp_kv *cfg);

/* A task that takes over *m (left empty) on `corpus` (borrowed; its vocabulary must be the model's:
 * lp_lm_vocab_check's LP_ERR_ARG when the model records a digest or its size differs). A model that records
 * no digest takes the corpus's, so that its checkpoints carry it. On error *m is freed and *out is NULL. */
lp_status lp_lm_task_new(lp_lm *m, const lp_ptb_corpus *corpus, lp_task **out);

/* The LM task inside t (t must be one: LP_CHECK). */
lp_lm_task *lp_lm_task_of(lp_task *t);

/* ---- runs: the language model as a kind of task for the trainer ---- */

/* A run is described by "key = value" configuration, written to RUN/config.txt and into every
 * checkpoint, so `--resume RUN` needs nothing retyped:
 *
 *   lm.recipe        small | medium | large | custom (informational: what the keys were taken from)
 *   lm.layers        stacked LSTM layers
 *   lm.units         units per layer, "650" (every layer) or "650,600" (one per layer)
 *   lm.embed         embedding size (0 = the units of layer 1)
 *   lm.tied          1: softmax weight = embedding table
 *   lm.dropout       non-recurrent dropout rate (Zaremba)
 *   lm.init_scale    every parameter uniform in ±init_scale
 *   data.dir         directory with ptb.train.txt, ptb.valid.txt, ptb.test.txt
 *   data.max_words   vocabulary cap (0 = every word of the training file: 10,000 on PTB)
 *   train.epochs, train.batch, train.bptt, train.lr, train.lr_decay, train.decay_after, train.clip,
 *   train.momentum, train.seed, train.threads, train.eval_batch, train.eval_bptt (0 = train.bptt),
 *   train.log_every, train.test_every (score the test set every N epochs and after the last; 0 = only
 *   after the last), train.save_every (also write last.ckpt every N windows inside an epoch),
 *   prune.stats_batch, prune.stats_bptt (streams and window of the pruning statistics: 20, 35)
 *
 * Training is Zaremba et al.'s (2014): plain SGD (momentum train.momentum) on the sum over a window's
 * steps of the batch-mean NLL, the gradient norm clipped at train.clip, lr_e = lr · lr_decay^max(e −
 * decay_after, 0) for 1-based epoch e. The recipes (SGD at lr 1, B 20, clip 5 unless said):
 *   small   2×200, dropout 0,    init 0.1,  bptt 20, 13 epochs, decay 0.5    after epoch 4
 *   medium  2×650, dropout 0.5,  init 0.05, bptt 35, 39 epochs, decay 0.8    after epoch 6
 *   large   2×1500, dropout 0.65, init 0.04, bptt 35, 55 epochs, decay 1/1.15 after epoch 14, clip 10
 *
 * Fine-tuning from a checkpoint (lp_train_opts.init_ckpt): the model (sizes, tying, init scale) comes
 * from it, and lm.* keys absent from the configuration are taken from it too (so a pruned model is
 * fine-tuned with its original dropout unless lm.dropout is given), as are data.dir and data.max_words.
 *
 *     lp_kv cfg;  lp_kv_init(&cfg);
 *     LP_TRY(lp_lm_recipe_apply(&cfg, "small"));
 *     lp_task_kind kind = lp_lm_task_kind(NULL);      // the corpus is read from data.dir
 *     lp_train_opts o = {.run_dir = "runs/ptb_small"};
 *     LP_TRY(lp_train(&kind, &cfg, &o, &r));           // r.last_test: test perplexity
 */
#define LP_LM_DEFAULT_DATA_DIR "../shared/data/ptb"

/* The kind; `corpus` (may be NULL: loaded from data.dir) must match the run's data.* keys and outlive
 * every task the kind opens. */
lp_task_kind lp_lm_task_kind(const lp_ptb_corpus *corpus);

/* Set every lm.* and train.* key of a recipe ("small", "medium", "large"), replacing earlier values;
 * LP_ERR_ARG naming the recipe otherwise. data.* keys are left alone. */
lp_status lp_lm_recipe_apply(lp_kv *kv, const char *recipe);

/* Fill every missing lm.*, data.* and train.* key: the small recipe's values, data.dir =
 * LP_LM_DEFAULT_DATA_DIR, data.max_words 0, train.momentum 0, train.seed 1, train.threads 1,
 * train.eval_batch 20, train.eval_bptt 0, train.log_every 100, train.save_every 0, train.test_every 1. */
lp_status lp_lm_run_defaults(lp_kv *kv);

/* The model config the lm.* keys describe, for a vocabulary of `vocab` words; and back. LP_ERR_ARG naming
 * the key when one is missing or malformed, or the config is invalid (lp_lm_config_check). */
lp_status lp_lm_run_model_config(const lp_kv *kv, int vocab, lp_lm_config *cfg);
lp_status lp_lm_run_model_to_kv(const lp_lm_config *cfg, lp_kv *kv);

/* Load the corpus named by data.dir / data.max_words. */
lp_status lp_lm_run_corpus(const lp_kv *kv, lp_ptb_corpus *c);

#endif
