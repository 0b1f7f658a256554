/* lm_train: training a word-level LM (lm/lm.h) on Penn Treebank as a tool — the classic recipes, a run
 * directory with logs and checkpoints, and exact resume. It is what `lstmprune lm-train` runs, and what
 * lm/lm_prune.h uses for fine-tuning and for the ISS baseline.
 *
 * A run is described by "key = value" configuration (core/kv.h), written to RUN/config.txt and into
 * every checkpoint, so `--resume RUN` needs nothing retyped:
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
 *   train.seed, train.threads (OpenBLAS threads, 0 = library default), train.eval_batch,
 *   train.eval_bptt (0 = train.bptt), train.log_every (windows between train.tsv rows), train.test_every
 *   (evaluate the test set every N epochs and after the last; 0 = only after the last), train.save_every
 *   (also write last.ckpt every N windows inside an epoch; 0 = only at epoch ends)
 *
 * Learning rate of epoch e (1-based), Zaremba et al. (2014):  lr_e = lr · lr_decay^max(e − decay_after, 0).
 *
 * The recipes (Zaremba et al. 2014; SGD at lr 1, B 20, gradient-norm clip 5 unless said):
 *   small   2×200, dropout 0,    init 0.1,  bptt 20, 13 epochs, decay 0.5    after epoch 4
 *   medium  2×650, dropout 0.5,  init 0.05, bptt 35, 39 epochs, decay 0.8    after epoch 6
 *   large   2×1500, dropout 0.65, init 0.04, bptt 35, 55 epochs, decay 1/1.15 after epoch 14, clip 10
 *
 * The run directory:
 *   config.txt   the resolved configuration (the lm.* keys describe the model actually trained: a pruned
 *                checkpoint given as init writes its own sizes there)
 *   train.tsv    epoch window windows lr nll ppl words_per_s elapsed_s — every train.log_every windows
 *   valid.tsv    epoch lr train_ppl valid_ppl test_ppl train_words_per_s train_s eval_s — every epoch
 *                (test_ppl is "nan" on epochs without a test evaluation)
 *   last.ckpt    parameters + optimizer state + training state, written after every epoch (and every
 *                train.save_every windows)
 *   best.ckpt    the parameters of the epoch with the lowest validation perplexity
 *
 * Exact resume: an epoch starts from a zero recurrent state and visits the windows in order, so the
 * training state at an epoch boundary is the parameters, the optimizer state (SGD momentum buffer if any,
 * step count), the dropout generator and the best validation perplexity; last.ckpt stores all of them.
 * At the same thread count, a run interrupted after epoch k and resumed ends with exactly the weights of
 * an uninterrupted one (tests/test_lm_train.c). With train.save_every = N, last.ckpt is also written after
 * every N windows, with the window count, the carried recurrent state (tensors state.h<l>, state.c<l>
 * [B,H_l]) and the partial epoch's NLL sum: a resume then continues at the next window, again exactly
 * (the medium and large recipes take 20-80 min per epoch on a 2-core machine). Without it, an
 * interruption inside an epoch loses that epoch's progress. Logs are cut back to the checkpoint on
 * resume, so they have no duplicate rows.
 *
 *     lp_kv cfg;  lp_kv_init(&cfg);
 *     LP_TRY(lp_lm_recipe_apply(&cfg, "small"));
 *     lp_lm_run_opts o = {.run_dir = "runs/ptb_small"};
 *     lp_lm_run_result r;
 *     LP_TRY(lp_lm_train_run(&cfg, &o, &r));          // r.test_ppl
 */
#ifndef LP_LM_TRAIN_H
#define LP_LM_TRAIN_H
#include <stdint.h>

#include "core/kv.h"
#include "core/status.h"
#include "lm/lm.h"
#include "lm/ptb.h"
#include "model/trainer.h"

#define LP_LM_DEFAULT_DATA_DIR "../shared/data/ptb"

/* Set every lm.* and train.* key of a recipe ("small", "medium", "large"), replacing earlier values;
 * LP_ERR_ARG naming the recipe otherwise. data.* keys are left alone. */
lp_status lp_lm_recipe_apply(lp_kv *kv, const char *recipe);

/* Fill every missing lm.*, data.* and train.* key: the small recipe's values, data.dir =
 * LP_LM_DEFAULT_DATA_DIR, data.max_words 0, train.seed 1, train.threads 1, train.eval_batch 20,
 * train.eval_bptt 0, train.log_every 100, train.save_every 0, train.test_every 1. */
lp_status lp_lm_run_defaults(lp_kv *kv);

/* The model config the lm.* keys describe, for a vocabulary of `vocab` words. LP_ERR_ARG naming the key
 * when one is missing or malformed, or the config is invalid (lp_lm_config_check). */
lp_status lp_lm_run_model_config(const lp_kv *kv, int vocab, lp_lm_config *cfg);

/* Write the lm.* keys (layers, units, embed, tied, dropout, init_scale) of a model config. */
lp_status lp_lm_run_model_to_kv(const lp_lm_config *cfg, lp_kv *kv);

/* Learning rate of 1-based epoch `epoch` (formula above). */
double lp_lm_lr_at(double lr, double decay, int decay_after, int epoch);

/* Load the corpus named by data.dir / data.max_words. */
lp_status lp_lm_run_corpus(const lp_kv *kv, lp_ptb_corpus *c);

typedef struct {
    const char *run_dir;      /* created if missing */
    int resume;               /* continue from run_dir/last.ckpt (configuration from run_dir/config.txt) */
    const char *init_ckpt;    /* start from these weights and sizes (fine-tuning); NULL: fresh init */
    int quiet;                /* nothing on stderr but errors */
    int stop_after_epochs;    /* stop (as if interrupted) after this many epochs of this call; 0 = no */
    int stop_after_windows;   /* stop at the first mid-epoch checkpoint after this many windows of this
                               * call (tests of train.save_every); 0 = no */
    int epochs_override;      /* with resume: train until this many epochs in total; 0 = as configured */
    const lp_ptb_corpus *corpus; /* already loaded data (must match data.*); NULL: load from data.dir */
    lp_train_hooks hooks;     /* ISS penalty, masks (model/trainer.h); extra_loss is NULL for the LM */
} lp_lm_run_opts;

typedef struct {
    int epochs_done;          /* epochs completed in total (including before a resume) */
    double train_ppl;         /* last epoch's training perplexity (with dropout) */
    double valid_ppl;         /* last epoch's validation perplexity */
    double test_ppl;          /* last test evaluation (NaN if none in this call) */
    double best_valid_ppl;
    int best_epoch;
    double train_words_per_sec; /* last epoch */
    double seconds;           /* wall time of this call */
    /* Giant gradient spikes of this call's whole epochs (optim.h, lp_grad_watch: a window's pre-clip norm
     * over LP_GRAD_SPIKE_FACTOR times the median of the 256 windows before), and the largest norm. */
    int spikes;
    double max_grad_norm;
} lp_lm_run_result;

/* Train as configured (missing keys get lp_lm_run_defaults). With init_ckpt the model (sizes, tying,
 * init scale) comes from the checkpoint; lm.* keys absent from cfg are taken from it too (so a pruned
 * model is fine-tuned with its original dropout unless lm.dropout is given). The corpus vocabulary must
 * match the model's (LP_ERR_ARG). Errors: LP_ERR_IO / LP_ERR_FORMAT (data, checkpoints), LP_ERR_ARG
 * (configuration, "already trained for N epochs" on a finished resume), LP_ERR_NUMERIC (NaN/Inf
 * gradient: nothing is written after the last good checkpoint), LP_ERR_NOMEM. */
lp_status lp_lm_train_run(lp_kv *cfg, const lp_lm_run_opts *o, lp_lm_run_result *res);

#endif
