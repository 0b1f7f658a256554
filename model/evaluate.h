/* evaluate: run a model over a data set without gradients and score it with the YouTube-8M metrics
 * (eval/metrics.h). Also the engine of `predict`: a callback sees every video's probabilities. */
#ifndef LP_EVALUATE_H
#define LP_EVALUATE_H
#include <stdint.h>

#include "data/batcher.h"
#include "eval/metrics.h"
#include "model/model.h"

typedef struct {
    lp_metrics_result m;  /* GAP@k, mAP, Hit@1, PERR */
    double loss;          /* mean training loss per video */
    int64_t videos;
    int64_t labelled;     /* videos with at least one label (test shards have none) */
    double seconds;       /* wall time */
    uint64_t skipped;     /* bad records skipped (data.skip_bad) */
} lp_eval_result;

/* Called once per video, in data order (under mpirun on rank 0 only: the ranks share each batch's
 * probabilities, core/dist.h). Return non-OK to stop (the status is passed on). */
typedef lp_status (*lp_eval_video_fn)(void *user, const char *id, const float *probs, int classes);

/* Evaluate `m` on the batches of `bc` (use an evaluation config: no shuffle, one epoch). `fn` may be
 * NULL: then the scores are the point, and data without a single label (YouTube-8M's test shards) is
 * LP_ERR_FORMAT ("no labels; use predict") rather than metrics of 0 that look like a bad model. */
lp_status lp_evaluate(lp_model *m, const lp_batcher_config *bc, int top_k, lp_eval_video_fn fn, void *user,
                      lp_eval_result *out);

/* The reference a model must beat: a predictor that ignores its input and gives every video the class
 * frequencies of the training data (counted over at most `max_batches` batches of `train_bc`, 0 = all),
 * scored on `eval_bc`. */
lp_status lp_evaluate_prior(const lp_batcher_config *train_bc, int max_batches, const lp_batcher_config *eval_bc,
                            int top_k, lp_eval_result *out);

/* Inference latency: median wall time in milliseconds of a no-gradient forward pass over a random batch
 * [batch, frames, F] (lengths = frames), over `reps` repetitions after two warm-ups: the first reset of
 * the tape's arena merges the first pass's blocks into one new block (core/arena.h), so only the second
 * warm-up leaves the memory in the state every later pass finds (already touched, no page faults). */
lp_status lp_model_latency(lp_model *m, int batch, int frames, int reps, double *ms);

#endif
