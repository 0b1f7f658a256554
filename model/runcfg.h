/* runcfg: the resolved configuration of a run as "key = value" text (core/kv.h), and its translation
 * into the structs of the data, model and optimisation modules.
 *
 * One flat namespace keeps a run reproducible and resumable: `train` writes every key (flags and
 * defaults alike) to RUN/config.txt and into each checkpoint, and `train --resume RUN/` reads them
 * back, so nothing depends on retyping the flags. Keys:
 *
 *   model.*   the architecture (model/model.h)
 *   data.*    train, valid (glob patterns separated by ';'), frame_features, video_features, level,
 *             id_key, classes, max_frames, padding (mask|repeat: data/batcher.h), l2norm, shuffle_buffer,
 *             skip_bad, prefetch
 *   train.*   epochs, batch, optimizer (adam|sgd), lr, beta1, beta2, eps, momentum, weight_decay, clip,
 *             weight_init (pytorch|keras), bias_init (uniform|pair), bias_lr_mult, dense_l2, lr_decay,
 *             lr_decay_steps, lr_staircase, seed, threads, save_every, eval_batch, log_every, top_k
 */
#ifndef LP_RUNCFG_H
#define LP_RUNCFG_H
#include "core/gemm.h"
#include "core/kv.h"
#include "data/batcher.h"
#include "model/init.h"
#include "optim/optim.h"

/* Defaults for every data.* and train.* key not already present (the paper's settings). */
lp_status lp_runcfg_defaults(lp_kv *kv);

/* The default lp_runcfg_defaults gives `key`, or NULL for a key without one. A key added in a later
 * version has the default that reproduces what earlier versions did without it. */
const char *lp_runcfg_default(const char *key);

/* Patterns: data.<which> split on ';' into *pats (caller frees with lp_runcfg_free_patterns). */
lp_status lp_runcfg_patterns(const lp_kv *kv, const char *which, char ***pats, int *n);
void lp_runcfg_free_patterns(char **pats, int n);

/* A batcher config for the given patterns from the data.* keys. `train` = 1: shuffled, seeded from
 * train.seed, batch train.batch; 0: evaluation order (no shuffle, batch train.eval_batch). The
 * patterns are borrowed. data.padding = repeat also fixes T at data.max_frames (fixed_frames), so that
 * a video's output does not depend on the others in its batch. */
lp_status lp_runcfg_batcher(const lp_kv *kv, char **pats, int n, int train, lp_batcher_config *bc);

lp_status lp_runcfg_optim(const lp_kv *kv, lp_optim_config *oc, lp_lr_schedule *lr);

/* The bias parametrisation (model/model.h): train.bias_init = uniform (one U(±1/sqrt(H)) draw, default)
 * or pair (the sum of two, as PyTorch's b_ih + b_hh; applies to a freshly initialised model only), and
 * train.bias_lr_mult (> 0, default 1) multiplying the learning rate of every LSTM bias. PyTorch's
 * nn.LSTM is exactly pair + 2 under Adam or SGD without weight decay. LP_ERR_ARG naming the key. */
lp_status lp_runcfg_bias(const lp_kv *kv, int *pair, double *lr_mult);

/* The initialisers of a fresh video model (model/init.h): train.weight_init = pytorch (default; also
 * when absent) or keras. Keras's zero biases leave nothing for train.bias_init = pair to add: that pair is
 * refused. LP_ERR_ARG naming the key. */
lp_status lp_runcfg_weight_init(const lp_kv *kv, lp_weight_init *out);

/* Check the ranges of the run's keys before anything is opened or written (liblinear's check_parameter):
 * batch sizes, frames, shuffle buffer, prefetch (the batcher's bounds), learning rate, decay, bias lr
 * multiplier, the model.hidden / model.dropout shorthand, the latency measurement (prune.latency_batch,
 * _frames, _reps) and prune.iss_threshold (> 0). Absent keys are not checked (a fine-tuning
 * run takes the model from its checkpoint). LP_ERR_ARG whose message starts with the key, so that the
 * command line can name its flag; reads nothing else. */
lp_status lp_runcfg_check(const lp_kv *kv);

/* Set OpenBLAS's thread count from train.threads (0 = leave the library's default). */
void lp_runcfg_apply_threads(const lp_kv *kv);

/* train.precision (fp32, the default, or bf16: core/gemm.h) as a value; LP_ERR_ARG naming the key. */
lp_status lp_runcfg_precision(const lp_kv *kv, lp_precision *out);
/* ... and set the process's precision to it: LP_ERR_ARG naming the key when it cannot run here. */
lp_status lp_runcfg_apply_precision(const lp_kv *kv);

#endif
