/* kinds: see kinds.h. */
#include "experiments/kinds.h"

#include <string.h>

#include "core/ckpt.h"
#include "tasks/lm_task.h"
#include "tasks/video_task.h"

lp_status lp_task_kind_named(const char *name, lp_task_kind *out) {
    if (!strcmp(name, "video")) *out = lp_video_task_kind;
    else if (!strcmp(name, "lm")) *out = lp_lm_task_kind(NULL);
    else return lp_errorf(LP_ERR_ARG, "task = %s: unknown task (video or lm)", name);
    return LP_OK;
}

lp_status lp_task_kind_of(const lp_kv *cfg, lp_task_kind *out) {
    const char *name = lp_kv_get(cfg, "task");
    return lp_task_kind_named(name ? name : "video", out);
}

lp_status lp_task_kind_of_ckpt(const char *path, lp_task_kind *out) {
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, path));
    const char *kind = lp_kv_get(&c.meta, "model.kind");
    int lm = kind && !strcmp(kind, "lm");
    lp_ckpt_free(&c);
    return lp_task_kind_named(lm ? "lm" : "video", out);
}
