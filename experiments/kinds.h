/* kinds: the tasks an experiment can name — `task = video` (the YouTube-8M classifiers, the default) or
 * `task = lm` (the Penn Treebank language model) in a configuration — so that the runner (pipeline,
 * sweep, sensitivity) is written once for both. */
#ifndef LP_EXPERIMENTS_KINDS_H
#define LP_EXPERIMENTS_KINDS_H

#include "core/kv.h"
#include "prune/task.h"

/* The kind called `name` ("video", "lm"); LP_ERR_ARG naming the known ones otherwise. An LM kind reads
 * its corpus from each run's data.dir. */
lp_status lp_task_kind_named(const char *name, lp_task_kind *out);

/* The kind a configuration names with its `task` key (video when absent). */
lp_status lp_task_kind_of(const lp_kv *cfg, lp_task_kind *out);

/* The kind of the model in checkpoint `path` (its model.kind key: lm, or a video model). */
lp_status lp_task_kind_of_ckpt(const char *path, lp_task_kind *out);

#endif
