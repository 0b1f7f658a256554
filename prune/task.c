/* task: the thin wrappers over a task's operations, and scores (contract in task.h). */
#include "prune/task.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dist.h"
#include "core/ops.h"

double lp_score_get(const lp_score *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name)) return s->value[i];
    return NAN;
}

double lp_score_primary(const lp_score *s) { return s->primary >= 0 && s->primary < s->n ? s->value[s->primary] : NAN; }

int lp_score_better(const lp_score *a, const lp_score *b) {
    const double x = lp_score_primary(a), y = lp_score_primary(b);
    if (isnan(x)) return 0;
    if (isnan(y)) return 1;
    return a->higher_better ? x > y : x < y;
}

lp_status lp_task_responses_run(lp_task *t, int batches, lp_task_responses_fn fn, void *user) {
    return t->ops->responses(t, batches, 0, 1, fn, user);
}

lp_status lp_task_responses_part(lp_task *t, int batches, int part, int parts, lp_task_responses_fn fn, void *user) {
    return t->ops->responses(t, batches, part, parts, fn, user);
}

lp_status lp_task_resized(const lp_task *t, const int *units, lp_task **out) { return t->ops->resized(t, units, out); }

lp_status lp_task_score(lp_task *t, lp_split split, lp_score *out) {
    memset(out, 0, sizeof *out);
    return t->ops->score(t, split, out);
}

lp_status lp_task_save(const lp_task *t, lp_ckpt *c) { return t->ops->save(t, c); }

void lp_task_free(lp_task *t) {
    if (t) t->ops->free(t);
}

void lp_task_ops_figure_title(const lp_task_ops *ops, const lp_kv *cfg, const char *figure, char *buf, size_t n) {
    if (ops->figure_title) ops->figure_title(cfg, figure, buf, n);
    else snprintf(buf, n, "%s", figure);
}

int lp_task_units(const lp_task *t, int *units) {
    int total = 0;
    for (int g = 0; g < t->n_groups; g++) total += units[g] = t->groups[g].units;
    return total;
}

void lp_task_share(int B, int part, int parts, int *first, int *n) {
    const int a = (int)((int64_t)B * part / parts), b = (int)((int64_t)B * (part + 1) / parts);
    *first = a;
    *n = b - a;
}

lp_tensor *lp_task_scaled(lp_tape *tp, lp_tensor *x, float f) {
    if (f == 1.0f) return x;
    float *v = lp_tape_alloc(tp, 1, sizeof *v);
    lp_tensor *c = v ? lp_tape_view(tp, v, NULL, 0, NULL) : NULL;
    if (!c) return NULL;
    *v = f;
    return lp_op_mul(tp, x, c);
}

lp_status lp_task_latency(lp_task *t, int batch, int steps, int reps, double *ms) {
    if (lp_dist_size() == 1) return t->ops->latency(t, batch, steps, reps, ms);
    if (lp_dist_lead()) LP_TRY(t->ops->latency(t, batch, steps, reps, ms)); /* a failure ends the job */
    LP_TRY(lp_dist_barrier_idle());
    return lp_dist_bcast(ms, sizeof *ms, 0);
}
