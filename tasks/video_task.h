/* video_task: the YouTube-8M video classifiers (model/model.h: the paper model and the LSTM + mixture of
 * experts) as a task of prune/task.h — the model together with the run configuration that says where
 * its data is (data.train / data.valid / data.test patterns, features, batch sizes).
 *
 *   responses  training batches in the run's shuffled order (data.train, train.batch), no dropout;
 *              every group's hidden states with the videos' lengths
 *   score      GAP@k (train.top_k), mAP, Hit@1, PERR and the mean loss per video on data.<split>,
 *              in evaluation order (model/evaluate.h); "gap" selects (higher is better)
 *   resized    the same kind and configuration with other group sizes (model.units)
 *   save       the "model.*" keys and every tensor
 *   training   batches of data.train in the run's shuffled order (data/batcher.h), resumable at any
 *              (epoch, batch); the mean BCE per video; train.* keys as model/runcfg.h reads them; after
 *              the first epoch, a warning (core/log.h) when its labels reach under half of the model's
 *              classes (a forgotten --classes)
 *
 *     lp_task *t;
 *     LP_TRY(lp_video_task_load("run/best.ckpt", NULL, &t));   // the checkpoint's model and run keys
 *     lp_score sc;
 *     LP_TRY(lp_task_score(t, LP_SPLIT_VALID, &sc));           // lp_score_get(&sc, "gap")
 *     lp_task_free(t);
 */
#ifndef LP_TASKS_VIDEO_TASK_H
#define LP_TASKS_VIDEO_TASK_H

#include "core/kv.h"
#include "data/batcher.h"
#include "model/model.h"
#include "prune/task.h"

typedef struct {
    lp_task task;
    lp_model model;
    lp_kv cfg;              /* the run configuration: data.*, train.* (defaults filled in), model.* */
    /* training (train/trainer.h): the data.train batcher, kept across epochs */
    lp_batcher *batcher;
    char **train_pats;      /* the batcher's patterns (borrowed by it) */
    int n_train_pats;
    double epoch_bytes;     /* bytes of the training files: an epoch's progress */
    int label_max;          /* the highest label index in this epoch's training batches so far (-1: none) */
    int label_whole_epoch;  /* whether label_max covers the epoch from its first batch (not a resume) */
    const lp_batch *cur;    /* the step's batch (next_batch), valid until the next one is read */
    int sharded;            /* data.shard_files under several ranks: cur is this rank's own share */
    int global_B;           /* the step's batch over all ranks (sharded), else cur->B */
} lp_video_task;

/* The video classifiers as a kind of task for the trainer: run configurations with model.*, data.*,
 * train.* keys (model/runcfg.h; defaults: lp_runcfg_defaults). */
extern const lp_task_kind lp_video_task_kind;

/* A task that takes over model *m (left empty) with a copy of the run configuration cfg; data.* and
 * train.* keys it lacks get model/runcfg.h's defaults. On error *m is freed and *out is NULL. */
lp_status lp_video_task_new(lp_model *m, const lp_kv *cfg, lp_task **out);

/* The model of checkpoint `path` with the checkpoint's keys as configuration, `overrides` (may be NULL)
 * set over them. */
lp_status lp_video_task_load(const char *path, const lp_kv *overrides, lp_task **out);

/* The model and configuration inside a video task (t must be one: LP_CHECK). */
lp_model *lp_video_task_model(lp_task *t);
lp_kv *lp_video_task_cfg(lp_task *t);

/* Whether t is a video task. */
int lp_task_is_video(const lp_task *t);

#endif
