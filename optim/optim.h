/* optim: the optimizers (Adam, SGD with momentum), L2 weight decay, global-norm gradient clipping and
 * the exponential learning-rate decay used for training.
 *
 * Everything works on one flat parameter block and one flat gradient block of `numel` floats (core/params.h
 * keeps a model's tensors contiguous in ps->data / ps->grad), so an optimizer step is one loop and the
 * optimizer state is two flat arrays plus a step counter that checkpoints save and restore as they are.
 *
 * A training step is, in order:
 *
 *     double norm;
 *     if (lp_optim_clip_grad_norm(ps.grad, ps.numel, max_norm, &norm) != LP_OK) stop: NaN/Inf gradients
 *     float lr = lp_lr_schedule_at(&sched, step);
 *     lp_optim_step(&opt, ps.data, ps.grad, lr);
 *
 * The update rules are PyTorch's (torch.optim.Adam / SGD, weight_decay as coupled L2), so results can be
 * compared with PyTorch step for step; the equations are in docs/METHOD.md ("Optimization"):
 *
 *   L2:    g' = g + wd·p                        (the gradient buffer itself is not modified)
 *   Adam:  m = β1·m + (1−β1)·g',  v = β2·v + (1−β2)·g'²,  t = t + 1
 *          p −= lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)
 *   SGD:   buf = g' on the first step, then buf = μ·buf + g';  p −= lr·buf     (μ = 0: p −= lr·g')
 *
 * Per-element arithmetic is float32 as in PyTorch; bias corrections are computed in double.
 * Non-finite gradients are not checked by lp_optim_step (it is a plain loop over millions of floats);
 * lp_optim_clip_grad_norm / lp_optim_grad_norm detect them first and return LP_ERR_NUMERIC. */
#ifndef LP_OPTIM_H
#define LP_OPTIM_H
#include <stddef.h>
#include <stdint.h>

#include "core/ckpt.h"
#include "core/status.h"

typedef enum {
    LP_OPTIM_ADAM = 0,
    LP_OPTIM_SGD = 1
} lp_optim_kind;

typedef struct {
    lp_optim_kind kind;
    float beta1, beta2, eps; /* Adam only (PyTorch defaults 0.9, 0.999, 1e-8) */
    float momentum;          /* SGD only: μ in [0,1); 0 = plain SGD without a buffer */
    float weight_decay;      /* coupled L2 coefficient wd >= 0 (both kinds); 0 = off */
} lp_optim_config;

typedef struct {
    lp_optim_config cfg;
    size_t numel;
    /* State, saved in checkpoints as flat tensors plus `t`:
     *   Adam: m = first moment [numel], v = second moment [numel]
     *   SGD:  m = momentum buffer [numel] (NULL when momentum is 0), v = NULL */
    float *m;
    float *v;
    int64_t t; /* steps taken so far (Adam's bias-correction exponent; SGD's first-step flag) */
    const float *lr_scale; /* NULL, or [numel] per-parameter learning-rate multipliers (borrowed; not state) */
} lp_optim;

/* Defaults for a kind: Adam β1 0.9, β2 0.999, eps 1e-8; SGD momentum 0; weight decay 0. */
lp_optim_config lp_optim_defaults(lp_optim_kind kind);

/* Parameter check (pure): LP_OK, or LP_ERR_ARG with a message naming the bad value
 * (β1, β2 in [0,1), eps > 0, momentum in [0,1), weight_decay >= 0, all finite). */
lp_status lp_optim_check(const lp_optim_config *cfg);

/* Check `cfg` and allocate zeroed state for `numel` parameters; t = 0. On failure `o` holds nothing to
 * free (lp_optim_free is still safe). To resume from a checkpoint, init and then lp_optim_load_state. */
lp_status lp_optim_init(lp_optim *o, size_t numel, const lp_optim_config *cfg);

/* The optimizer state in a checkpoint (core/ckpt.h), as both trainers save and resume it: meta key
 * "state.opt_t" = t, flat tensors "opt.m" [lp_optim_m_numel] and "opt.v" [lp_optim_v_numel], each only
 * when the array exists. save_state adds them to `c` (m and v are borrowed until lp_ckpt_save);
 * load_state reads them back into an `o` initialised with the same config and numel (the arrays it has
 * decide which tensors are read). LP_ERR_FORMAT / LP_ERR_SHAPE naming `path` (used only in messages)
 * when one is missing or has another size. */
lp_status lp_optim_save_state(const lp_optim *o, lp_ckpt *c);
lp_status lp_optim_load_state(lp_optim *o, const lp_ckpt *c, const char *path);

/* One update of params [numel] from grad [numel] with learning rate lr (from lp_lr_schedule_at). Increments
 * o->t. LP_ERR_ARG when lr is negative or not finite (nothing is changed then). */
lp_status lp_optim_step(lp_optim *o, float *params, const float *grad, float lr);

/* Per-parameter learning rates (PyTorch's parameter groups): parameter i is updated with lr·scale[i].
 * `scale` [numel] is borrowed until the next call (NULL: every multiplier 1, the plain loops). A multiplier
 * of 2 on a vector b is exactly what PyTorch's two bias vectors b_ih + b_hh receive under Adam or SGD
 * without weight decay: both get the same gradient, so each moves by the same step and their sum by twice
 * it (docs/METHOD.md, "Bias parametrisation"). */
void lp_optim_set_lr_scale(lp_optim *o, const float *scale);

/* Number of floats in o->m and in o->v (0 when the array is NULL), for checkpoint code. */
size_t lp_optim_m_numel(const lp_optim *o);
size_t lp_optim_v_numel(const lp_optim *o);

/* Zero the state and set t = 0 (e.g. fine-tuning a pruned model starts a fresh optimizer). */
void lp_optim_reset(lp_optim *o);
void lp_optim_free(lp_optim *o);

/* Global L2 norm sqrt(Σ g²) over n gradients, accumulated in double (a float sum of millions of squares
 * loses digits). Writes the norm to *norm; LP_ERR_NUMERIC (with the index of the first bad value) when the
 * norm is NaN or Inf, so training can stop cleanly instead of corrupting the parameters. */
lp_status lp_optim_grad_norm(const float *grad, size_t n, double *norm);

/* Global-norm clipping as torch.nn.utils.clip_grad_norm_: computes the pre-clip norm (as above) and, when
 * norm > max_norm, scales every gradient by max_norm / (norm + 1e-6). max_norm <= 0 disables the scaling
 * (the norm is still computed and checked, which is useful for logging). *norm receives the pre-clip
 * norm. LP_ERR_NUMERIC when the norm is not finite; the gradients are then left untouched. */
lp_status lp_optim_clip_grad_norm(float *grad, size_t n, float max_norm, double *norm);

/* Watching for giant gradient spikes. One step whose gradient is 10⁴–10⁶ times the usual size can cost an
 * Adam run the rest of its training: v takes (1−β2)·g² at once, and √v, which divides every later step of
 * the weights it hit, then falls only 10× per ~4,600 steps at β2 = 0.999 (docs/RESULTS.md, "Replaying a
 * knock-back"). The watch keeps the last LP_GRAD_WATCH_WINDOW norms and flags a step whose norm exceeds
 * `factor` times their median; it observes only (training is unchanged). The trainer uses factor
 * LP_GRAD_SPIKE_FACTOR and reports flagged steps. */
#define LP_GRAD_WATCH_WINDOW 256
#define LP_GRAD_WATCH_MIN 32        /* steps seen before anything is flagged */
#define LP_GRAD_SPIKE_FACTOR 1e4
typedef struct {
    double factor;
    double hist[LP_GRAD_WATCH_WINDOW]; /* ring buffer of the last norms */
    int n, pos;                         /* norms held (<= window), next slot */
} lp_grad_watch;

void lp_grad_watch_init(lp_grad_watch *w, double factor);
/* Record one step's (pre-clip) norm. Returns norm / median of the norms before it when that ratio exceeds
 * the factor and at least LP_GRAD_WATCH_MIN norms were seen, else 0. The flagged norm enters the window
 * too (one spike barely moves a median of 256). */
double lp_grad_watch_add(lp_grad_watch *w, double norm);

/* Learning-rate schedules, in double, rounded to float at the end:
 *   per step (TensorFlow's exponential_decay, used by the paper's training code):
 *     staircase:  lr = base · rate^floor(step / decay_steps)
 *     smooth:     lr = base · rate^(step / decay_steps)
 *     decay_steps <= 0 or rate == 1 gives a constant lr = base. `step` counts optimizer steps from 0.
 *   per epoch (Zaremba et al. 2014, the PTB recipes), with decay_after >= 0:
 *     lr = base · rate^max(e − decay_after, 0)   for 1-based epoch e */
typedef struct {
    double base_lr;
    double decay_rate;   /* in (0,1]; 1 = no decay */
    int64_t decay_steps;
    int staircase;       /* nonzero: staircase */
    int per_epoch;       /* nonzero: the per-epoch rule */
    int decay_after;     /* per epoch: epochs at the base rate */
} lp_lr_schedule;

/* Parameter check (pure): base_lr > 0 and finite, decay_rate in (0,1]. */
lp_status lp_lr_schedule_check(const lp_lr_schedule *s);
/* The learning rate for optimizer step `step` (>= 0) of 0-based epoch `epoch`. */
float lp_lr_schedule_at(const lp_lr_schedule *s, int64_t step, int64_t epoch);

#endif
