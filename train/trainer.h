/* trainer: the one training loop, for every task (prune/task.h) — behind `train`, `finetune`,
 * `lm-train` and the fine-tuning inside every pruning schedule.
 *
 * Per step:    task forward (loss) → backward → NaN guard → hooks.after_backward → gradient norm (+clip)
 *              → NaN guard → learning rate of the schedule → optimizer step → hooks.after_update → log
 * Per epoch:   the task's end-of-epoch check (warnings) → score the validation split (and the test split
 *              every test_every epochs) → valid.tsv → best.ckpt (if the primary figure improved) → last.ckpt
 *
 * Micro-batches and ranks (train.micro_batches K, train.reduce fast|exact; docs/METHOD.md "Micro-batches",
 * docs/SCALING.md): the step's batch is split into K blocks whose gradients are computed one by one and
 * summed in block order; under mpirun each rank computes its blocks and the sums go across the ranks
 * (MPI_Allreduce, or gathered and summed in block order: exact, the same weights for any number of
 * ranks). Rank 0 writes the run directory; every rank trains. K = 1 on one process is the loop above.
 *
 * A run directory holds:
 *   config.txt    the resolved configuration (model.*, data.*, train.* keys of the task)
 *   train.tsv     one row every train.log_every steps: step epoch batch loss grad_norm lr examples_per_s
 *                 elapsed_s (batch = step within the epoch, 1-based; loss = the step's loss as the task
 *                 logs it: mean BCE per video, mean NLL per word)
 *   valid.tsv     one row per epoch: epoch step <the task's figures on the validation split> [test_<the
 *                 figures on the test split>, with train.test_every] seconds
 *   last.ckpt     parameters, optimizer state and training state (written at the end of every epoch and
 *                 every train.save_every steps)
 *   best.ckpt     the parameters of the epoch with the best primary figure (GAP@k, perplexity), or the
 *                 last epoch's when there is no validation data
 *
 * Exact resume: last.ckpt stores the step, the position (epoch, step within it), the dropout generator,
 * the optimizer moments and step count, the best figure so far and what the task carries inside an
 * epoch (the LM's recurrent state). The task replays its deterministic data order up to the position,
 * so at the same thread count a resumed run ends with exactly the weights of an uninterrupted one.
 * Both logs are flushed and fsynced before every checkpoint and cut back to it on resume (rows after it are
 * recomputed), so the logs of a killed-and-resumed run are byte-identical to an uninterrupted run's except
 * for the timing columns: examples_per_s and elapsed_s of train.tsv, seconds of valid.tsv. Temporary
 * files of a write the kill interrupted are removed on resume (core/rundir.h). Whether a run directory may
 * be written (refusing a non-empty one without --force) is the caller's decision: lp_rundir_claim.
 *
 * Numeric guard: a NaN or Inf loss or gradient norm stops training with LP_ERR_NUMERIC and a message
 * naming the step; nothing is written after the last good checkpoint.
 *
 *     lp_train_opts o = {.run_dir = "runs/a"};
 *     lp_train_result r;
 *     LP_TRY(lp_train(&lp_video_task_kind, &cfg, &o, &r));   // or an LM kind (tasks/lm_task.h)
 */
#ifndef LP_TRAIN_TRAINER_H
#define LP_TRAIN_TRAINER_H
#include <stdint.h>

#include "core/kv.h"
#include "prune/task.h"

/* Hooks for the pruning schedules: group-lasso gradients, soft masks. */
typedef struct {
    void *user;
    /* After backward, before clipping and the optimizer step: may add to the gradients and report an
     * extra loss term (added to the logged loss; extra_loss may be NULL). */
    lp_status (*after_backward)(void *user, lp_task *t, int64_t step, double *extra_loss);
    /* After the optimizer step; `step` counts the steps taken. */
    lp_status (*after_update)(void *user, lp_task *t, int64_t step);
} lp_train_hooks;

typedef struct {
    const char *run_dir;       /* created if missing (not on a resume: lp_rundir_prepare_resume) */
    int resume;                /* continue from run_dir/last.ckpt (configuration from run_dir/config.txt) */
    const char *init_ckpt;     /* start from these weights and sizes (fine-tuning); NULL: fresh initialisation */
    int quiet;                 /* no progress or per-epoch lines (warnings still go to the log sink) */
    int64_t stop_after_epochs; /* stop (as if interrupted) after this many epochs of this call; 0 = no */
    int64_t stop_after_saves;  /* stop (as if interrupted) right after this many mid-epoch checkpoints; 0 = no */
    int64_t epochs_override;   /* with resume: train until this many epochs in total; 0 = as configured */
    lp_train_hooks hooks;
} lp_train_opts;

typedef struct {
    int64_t steps;          /* optimizer steps taken in total */
    int64_t epochs_done;    /* in total, including before a resume */
    double last_loss;       /* mean training loss of the last epoch (of this call) */
    lp_score last_valid;    /* the last validation score (n = 0 without validation data) */
    lp_score last_test;     /* the last test score (n = 0 if none in this call) */
    lp_score best;          /* the best validation score so far (n = 0 if none) */
    int64_t best_epoch;     /* 1-based; 0 = none */
    double seconds;
    double reduce_seconds;  /* of which in the cross-rank gradient sums (0 as one process) */
    /* Giant gradient spikes of this call (optim.h, lp_grad_watch: a norm over LP_GRAD_SPIKE_FACTOR times
     * the median of the previous 256 steps), and the largest norm seen and its step. */
    int64_t spikes;
    double max_grad_norm;
    int64_t max_grad_step;
} lp_train_result;

/* Train a task of `kind` as `cfg` says (keys it lacks get the kind's defaults; the model.* keys describe
 * the model unless init_ckpt or resume supply it). Errors: LP_ERR_IO / LP_ERR_FORMAT (data, checkpoints),
 * LP_ERR_ARG (configuration; "already trained for N epochs" on a finished resume), LP_ERR_NUMERIC,
 * LP_ERR_NOMEM. */
lp_status lp_train(const lp_task_kind *kind, lp_kv *cfg, const lp_train_opts *o, lp_train_result *res);

/* The micro-batch keys of cfg (train.micro_batches: at least the number of ranks; train.reduce: fast or
 * exact) and train.precision (fp32, or bf16 where it can run here): LP_OK or LP_ERR_ARG naming the key,
 * for the commands' checks before anything is written. */
lp_status lp_train_check(const lp_kv *cfg);

#endif
