/* trainer: the training loop behind `lstmprune train`, `finetune` and `pipeline`.
 *
 * A run directory holds:
 *   config.txt    the resolved configuration (model.*, data.*, train.*; see model/runcfg.h)
 *   train.tsv     one row per logged step: step epoch batch loss grad_norm lr examples_per_s elapsed_s
 *   valid.tsv     one row per epoch: epoch step loss gap map hit1 perr seconds
 *   last.ckpt     parameters + optimizer state + training state (written at the end of every epoch and
 *                 every train.save_every steps)
 *   best.ckpt     the parameters with the best validation GAP (or the last epoch's without validation)
 *
 * Exact resume: last.ckpt stores the step, the data cursor (epoch, batch within the epoch), the
 * dropout RNG state, the optimizer moments and step count, and the best validation GAP so far. The
 * batcher replays its deterministic order up to the cursor (data/batcher.h), so at the same thread
 * count a resumed run ends with exactly the weights of an uninterrupted one (tests/test_train.c).
 *
 * Numeric guard: a NaN or Inf loss or gradient norm stops training with LP_ERR_NUMERIC and a message
 * naming the step; nothing is written after the last good checkpoint. */
#ifndef LP_TRAINER_H
#define LP_TRAINER_H
#include <stdint.h>

#include "core/kv.h"
#include "model/model.h"
#include "prune/task.h"

/* Hooks for the pruning schedules (prune/): group-lasso gradients and soft masks. */
typedef struct {
    void *user;
    /* After backward, before clipping and the optimizer step: may add to the gradients and report an
     * extra loss term (added to the logged loss). */
    lp_status (*after_backward)(void *user, lp_task *t, int64_t step, double *extra_loss);
    /* After the optimizer step. */
    lp_status (*after_update)(void *user, lp_task *t, int64_t step);
} lp_train_hooks;

typedef struct {
    const char *run_dir;
    int resume;                /* continue from run_dir/last.ckpt (config from run_dir/config.txt) */
    const char *init_ckpt;     /* start from these weights (fine-tuning); NULL: fresh initialisation */
    int quiet;                 /* no progress line */
    int64_t stop_after_epochs; /* stop (as if interrupted) after this many epochs of this invocation; 0 = no */
    int64_t epochs_override;   /* with resume: train until this many epochs in total; 0 = as configured */
    lp_train_hooks hooks;
} lp_train_opts;

typedef struct {
    int64_t steps;        /* optimizer steps taken in total */
    int64_t epochs_done;
    double last_loss;     /* mean training loss of the last epoch */
    double best_gap;      /* best validation GAP (NaN without validation) */
    double seconds;
    /* Giant gradient spikes of this invocation (optim.h, lp_grad_watch: a norm over LP_GRAD_SPIKE_FACTOR
     * times the median of the previous 256 steps), and the largest norm seen and its step. */
    int64_t spikes;
    double max_grad_norm;
    int64_t max_grad_step;
} lp_train_result;

/* Train according to `cfg` (missing data.* / train.* keys get defaults; the model.* keys describe the
 * model unless init_ckpt or resume supply it). */
lp_status lp_train(lp_kv *cfg, const lp_train_opts *o, lp_train_result *res);

#endif
