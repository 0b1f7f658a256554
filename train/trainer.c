/* trainer: the one training loop (contract in trainer.h). Per step:
 *   the task's next batch → per micro-batch: forward (loss) → zero grads → backward, summed in order (and
 *   across the ranks) → NaN guard → hooks.after_backward → gradient norm (+clip) → NaN guard → lr schedule
 *   → optimizer step → hooks.after_update → log
 * and per epoch: the task's epoch_end check → validation (and test) → valid.tsv → best.ckpt (if better)
 * → last.ckpt (best first: a run stopped between the two resumes from the epoch before and redoes it, so no
 * best epoch is lost). */
#include "train/trainer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/blas_env.h"
#include "core/ckpt.h"
#include "core/clock.h"
#include "core/crc32c.h"
#include "core/dist.h"
#include "core/fileio.h"
#include "core/gemm.h"
#include "core/log.h"
#include "core/rundir.h"
#include "model/runcfg.h"

/* Everything the loop carries between steps and across a resume. */
typedef struct {
    lp_kv *cfg;
    const lp_train_opts *o;
    lp_task *task;
    lp_train_settings ts;
    lp_optim opt;
    float *lr_scale;     /* per-parameter lr multipliers, or NULL */
    lp_rng drop_rng;
    int64_t step;        /* optimizer steps taken */
    int64_t epoch;       /* the epoch being trained (0-based) */
    int64_t batch;       /* steps taken in it */
    double best;         /* the best primary figure (-1 / +inf before any) */
    int64_t best_epoch;  /* 1-based; -1 = none */
    char best_key[48];   /* "state.best_<primary figure>" */
    FILE *train_log, *valid_log;
    double t_start;
    lp_grad_watch watch; /* giant gradient spikes (observed, reported; training unchanged) */
    /* micro-batches (train.micro_batches, train.reduce; docs/SCALING.md) */
    int parts;           /* K per step; this rank computes [part0, part1) */
    int part0, part1;
    int exact;           /* reduce = exact: the parts' gradients summed in part order on every rank */
    float *acc;          /* [numel] the parts' gradient sum (K > 1) */
    float *mine;         /* [part1 − part0][numel] this rank's part gradients (exact, several ranks) */
    double *part_loss;   /* [K] */
    double reduce_s;     /* wall time in the cross-rank sums of this call */
} trainer;

/* ---- checkpoints ------------------------------------------------------------------------------- */

static lp_status write_state(trainer *t, const char *name, int with_optimizer) {
    char path[4096];
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = lp_kv_merge(&c.meta, t->cfg);
    if (s == LP_OK) s = lp_task_save(t->task, &c);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.step", t->step);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.epoch", t->epoch);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.batch", t->batch);
    if (s == LP_OK) s = lp_kv_set_double(&c.meta, t->best_key, t->best);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.best_epoch", t->best_epoch);
    if (s == LP_OK) s = lp_kv_setf(&c.meta, "state.dropout_rng", "%llu,%llu", (unsigned long long)t->drop_rng.state,
                                   (unsigned long long)t->drop_rng.inc);
    if (s == LP_OK && with_optimizer) s = lp_optim_save_state(&t->opt, &c);
    if (s == LP_OK && with_optimizer && t->batch > 0 && t->task->ops->carry_save) s = t->task->ops->carry_save(t->task, &c);
    if (s == LP_OK) s = lp_ckpt_save(&c, lp_rundir_path(t->o->run_dir, name, path, sizeof path));
    lp_ckpt_free(&c);
    return s;
}

/* Rank 0 writes the run directory; under mpirun the others wait for each checkpoint (core/dist.h). */
static int writer(void) { return lp_dist_lead(); }

static lp_status save_state(trainer *t, const char *name, int with_optimizer) {
    /* what the ranks carried forward, each for its micro-batches, made whole before rank 0 saves it */
    if (with_optimizer && t->batch > 0 && lp_dist_size() > 1 && t->task->ops->carry_share)
        LP_TRY(t->task->ops->carry_share(t->task, t->parts));
    return lp_dist_written(lp_dist_lead() ? write_state(t, name, with_optimizer) : LP_OK);
}

static lp_status restore_state(trainer *t, const lp_ckpt *c, const char *path) {
    long long v;
    LP_TRY(lp_kv_get_int(&c->meta, "state.step", &v));
    t->step = v;
    LP_TRY(lp_kv_get_int(&c->meta, "state.epoch", &v));
    t->epoch = v;
    LP_TRY(lp_kv_get_int(&c->meta, "state.batch", &v));
    t->batch = v;
    LP_TRY(lp_kv_get_double(&c->meta, t->best_key, &t->best));
    LP_TRY(lp_kv_get_int(&c->meta, "state.best_epoch", &v));
    t->best_epoch = v;
    const char *r = lp_kv_get(&c->meta, "state.dropout_rng");
    unsigned long long st, inc;
    if (!r || sscanf(r, "%llu,%llu", &st, &inc) != 2) return lp_errorf(LP_ERR_FORMAT, "%s: bad state.dropout_rng", path);
    t->drop_rng.state = st;
    t->drop_rng.inc = inc;
    LP_TRY(lp_optim_load_state(&t->opt, c, path));
    if (t->batch > 0 && t->task->ops->carry_load) LP_TRY(t->task->ops->carry_load(t->task, c, path));
    return LP_OK;
}

/* Both logs on the disk before a checkpoint: a kill right after it loses no row the checkpoint has seen
 * (a resume cuts the rows after it, so the logs match an uninterrupted run's). */
static lp_status sync_logs(trainer *t) {
    char path[4096];
    if (!writer()) return LP_OK;
    LP_TRY(lp_rundir_sync_log(t->train_log, lp_rundir_path(t->o->run_dir, "train.tsv", path, sizeof path)));
    return lp_rundir_sync_log(t->valid_log, lp_rundir_path(t->o->run_dir, "valid.tsv", path, sizeof path));
}

/* ---- one step ---------------------------------------------------------------------------------- */

typedef struct {
    double loss, extra, grad_norm;
    float lr;
    int64_t examples;
} step_info;

/* The tail of a stopping message: a checkpoint to go back to is named only when one was written (a run
 * that fails before its first save has none, and pointing at a missing file misleads). */
static const char *last_good(const trainer *t, char *buf, size_t n) {
    char path[4096];
    lp_rundir_path(t->o->run_dir, "last.ckpt", path, sizeof path);
    if (access(path, F_OK) == 0) snprintf(buf, n, "the last good checkpoint is %s", path);
    else snprintf(buf, n, "no checkpoint was written before it");
    return buf;
}

/* The gradient of micro-batch k into the parameters' gradient block (zero for an empty share), its loss
 * into *loss. Dropout: the trainer's generator for a whole batch; with micro-batches each part draws from
 * its own stream, fixed by the step and k, so that a part's masks do not depend on which rank runs it. */
static lp_status part_gradient(trainer *t, lp_tape *tp, int k, double *loss, int64_t *examples) {
    lp_tape_reset(tp);
    lp_rng part_rng, *rng = &t->drop_rng;
    if (t->parts > 1) {
        lp_rng_init(&part_rng, t->ts.seed ^ ((uint64_t)t->step * 0x9E3779B97F4A7C15ull), LP_RNG_STREAM_MICRO + (uint64_t)k);
        rng = &part_rng;
    }
    lp_task_batch b;
    LP_TRY(t->task->ops->train_forward(t->task, tp, rng, k, t->parts, &b));
    lp_params *ps = t->task->params;
    lp_params_zero_grad(ps);
    *loss = 0;
    *examples = b.examples;
    if (b.examples == 0) return LP_OK;
    *loss = b.loss->data[0];
    return lp_tape_backward(tp, b.objective);
}

/* The batch's gradient in the parameters' gradient block, on every rank: one part is the whole batch;
 * K parts are summed — here in part order (acc = g0, acc += g1, ...), across the ranks by MPI_Allreduce
 * (fast) or gathered and summed in part order (exact: the same additions as one process). The loss: the
 * parts' losses summed in part order (each known to one rank: the sum across ranks adds zeros, exactly). */
static lp_status batch_gradient(trainer *t, lp_tape *tp, step_info *si) {
    if (t->parts == 1) {
        double loss;
        LP_TRY(part_gradient(t, tp, 0, &loss, &si->examples));
        si->loss = loss;
        return LP_OK;
    }
    lp_params *ps = t->task->params;
    const size_t n = ps->numel;
    const int several = lp_dist_size() > 1;
    double ex = 0;
    memset(t->part_loss, 0, (size_t)t->parts * sizeof *t->part_loss);
    for (int k = t->part0; k < t->part1; k++) {
        int64_t e;
        LP_TRY(part_gradient(t, tp, k, &t->part_loss[k], &e));
        ex += (double)e;
        if (t->exact && several) memcpy(t->mine + (size_t)(k - t->part0) * n, ps->grad, n * sizeof(float));
        else if (k == t->part0) memcpy(t->acc, ps->grad, n * sizeof(float));
        else
            for (size_t i = 0; i < n; i++) t->acc[i] += ps->grad[i];
    }
    const double t0 = lp_now_s();
    if (t->exact && several) {
        LP_TRY(lp_dist_ordered_sum(t->mine, t->parts, ps->grad, n, (size_t)1 << 22));
    } else {
        memcpy(ps->grad, t->acc, n * sizeof(float));
        LP_TRY(lp_dist_sum_float(ps->grad, n));
    }
    LP_TRY(lp_dist_sum_double(t->part_loss, (size_t)t->parts));
    LP_TRY(lp_dist_sum_double(&ex, 1));
    t->reduce_s += lp_now_s() - t0;
    si->loss = 0;
    for (int k = 0; k < t->parts; k++) si->loss += t->part_loss[k];
    si->examples = (int64_t)ex;
    return LP_OK;
}

/* One optimizer step on the epoch's next batch; LP_ERR_EOF at the epoch's end (nothing done). */
static lp_status train_step(trainer *t, lp_tape *tp, step_info *si) {
    LP_TRY(t->task->ops->next_batch(t->task));
    lp_params *ps = t->task->params;
    lp_gemm_hold(ps->data, ps->numel); /* bf16: the weights converted once for all the step's passes */
    lp_status g = batch_gradient(t, tp, si);
    lp_gemm_release(ps->data);
    LP_TRY(g);
    char where[4200];
    if (!isfinite(si->loss))
        return lp_errorf(LP_ERR_NUMERIC, "step %lld: the loss is %g; stopping (%s)", (long long)t->step + 1, si->loss,
                         last_good(t, where, sizeof where));
    si->extra = 0;
    const lp_train_hooks *h = &t->o->hooks;
    if (h->after_backward) LP_TRY(h->after_backward(h->user, t->task, t->step, &si->extra));
    lp_status s = lp_optim_clip_grad_norm(ps->grad, ps->numel, (float)t->ts.clip, &si->grad_norm);
    if (s != LP_OK)
        return lp_error_wrap(s, "step %lld: non-finite gradient; stopping (%s)", (long long)t->step + 1,
                             last_good(t, where, sizeof where));
    si->lr = lp_lr_schedule_at(&t->ts.lr, t->step, t->epoch);
    LP_TRY(lp_optim_step(&t->opt, ps->data, ps->grad, si->lr));
    t->step++;
    t->batch++;
    if (h->after_update) LP_TRY(h->after_update(h->user, t->task, t->step));
    return LP_OK;
}

/* Record the step's gradient norm in the result; say so when it is a giant spike, which under Adam slows
 * the weights it hit for thousands of steps (optim.h, lp_grad_watch). */
static void watch_grad(trainer *t, const step_info *si, lp_train_result *res) {
    if (si->grad_norm > res->max_grad_norm) {
        res->max_grad_norm = si->grad_norm;
        res->max_grad_step = t->step;
    }
    double ratio = lp_grad_watch_add(&t->watch, si->grad_norm);
    if (ratio == 0) return;
    res->spikes++;
    char why[160] = " (--clip NORM bounds such steps)";
    if (t->ts.clip > 0 && si->grad_norm > t->ts.clip) {
        snprintf(why, sizeof why, "; clipped to norm %g", t->ts.clip);
    } else if (t->opt.cfg.kind == LP_OPTIM_ADAM) {
        /* √v falls by β2^(n/2): 10× after n = 2·ln 10 / −ln β2 steps */
        double n10 = 2.0 * log(10.0) / -log((double)t->opt.cfg.beta2);
        snprintf(why, sizeof why, "; Adam's sqrt(v) takes ~%.0f steps to fall 10x, the weights it hit learn slower "
                                  "until then (--clip NORM bounds such steps)", n10);
    }
    lp_log(LP_LOG_WARN, "step %lld: gradient norm %.3g, %.2g times the median of the steps before%s", (long long)t->step,
           si->grad_norm, ratio, why);
}

/* ---- logs and progress ------------------------------------------------------------------------- */

/* What the loop counts within one call (not saved: a resume starts it afresh). */
typedef struct {
    double epoch_loss;        /* sum of the step losses of the current epoch */
    int64_t epoch_steps;      /* steps of the current epoch */
    int64_t epochs_this_run;  /* epochs finished in this call (--stop-after-epochs) */
    int64_t epochs_to_run;    /* epochs this call started with ahead of it (progress) */
    int64_t examples_since;   /* examples since the last train.tsv line (throughput) */
    double last_t;            /* time of the last train.tsv line */
    int64_t saves;            /* mid-epoch checkpoints written in this call */
} loop_counts;

static void progress(trainer *t, const step_info *si, const loop_counts *lc, double rate) {
    if (t->o->quiet) return;
    double f = lc->epochs_to_run > 0
                   ? ((double)lc->epochs_this_run + t->task->ops->epoch_progress(t->task)) / (double)lc->epochs_to_run
                   : 0;
    double el = lp_now_s() - t->t_start;
    char eta[32];
    lp_rundir_fmt_duration(f > 1e-6 ? el * (1 - f) / f : -1, eta, sizeof eta);
    lp_log(LP_LOG_PROGRESS, "epoch %lld/%lld  step %lld  loss %.4f  lr %.4g  %.0f ex/s  ETA %s", (long long)t->epoch + 1,
           (long long)t->ts.epochs, (long long)t->step, si->loss + si->extra, (double)si->lr, rate, eta);
}

/* After one optimizer step: the train.tsv line (every log_every steps), the progress line, and last.ckpt
 * every save_every steps. LP_ERR_EOF: stop here (stop_after_saves). */
static lp_status after_step(trainer *t, const step_info *si, loop_counts *lc) {
    lc->epoch_loss += si->loss + si->extra;
    lc->epoch_steps++;
    lc->examples_since += si->examples;
    double now = lp_now_s(), rate = (double)lc->examples_since / fmax(now - lc->last_t, 1e-9);
    if (t->train_log && t->ts.log_every > 0 && t->step % t->ts.log_every == 0) {
        /* step epoch batch loss grad_norm lr examples_per_s elapsed_s (docs/FORMATS.md) */
        fprintf(t->train_log, "%lld\t%lld\t%lld\t%.6f\t%.6f\t%.8g\t%.1f\t%.2f\n", (long long)t->step,
                (long long)t->epoch + 1, (long long)t->batch, si->loss + si->extra, si->grad_norm, (double)si->lr, rate,
                now - t->t_start);
        lc->examples_since = 0;
        lc->last_t = now;
    }
    progress(t, si, lc, rate);
    if (t->ts.save_every <= 0 || t->step % t->ts.save_every != 0) return LP_OK;
    LP_TRY(sync_logs(t));
    LP_TRY(save_state(t, "last.ckpt", 1));
    lc->saves++;
    return t->o->stop_after_saves > 0 && lc->saves >= t->o->stop_after_saves ? LP_ERR_EOF : LP_OK;
}

/* Score a split into *sc and append its figures ("\t%.6f" each, or "\tnan" when not scored). */
static lp_status score_split(trainer *t, lp_split split, int want, lp_score *sc, char *row, size_t n) {
    memset(sc, 0, sizeof *sc);
    if (want) LP_TRY(lp_task_score(t->task, split, sc));
    const char *f = t->task->ops->figures;
    for (int i = 0; *f; i++) {
        size_t len = strlen(row);
        snprintf(row + len, n - len, i < sc->n ? "\t%.6f" : "\tnan", i < sc->n ? sc->value[i] : 0.0);
        f += strcspn(f, "\t");
        f += *f == '\t';
    }
    return LP_OK;
}

/* The end of an epoch's data: validation (and test) → valid.tsv → best.ckpt (if improved) → last.ckpt. */
static lp_status end_epoch(trainer *t, loop_counts *lc, lp_train_result *res) {
    const int64_t epoch = t->epoch; /* the epoch just finished */
    if (t->task->ops->epoch_end) t->task->ops->epoch_end(t->task, epoch);
    t->epoch = epoch + 1;
    t->batch = 0;
    res->last_loss = lc->epoch_steps ? lc->epoch_loss / (double)lc->epoch_steps : NAN;
    const double t0 = lp_now_s();
    const int te = t->ts.test_every;
    const int want_test = te >= 0 && (t->epoch == t->ts.epochs || (te > 0 && t->epoch % te == 0));
    char row[512];
    snprintf(row, sizeof row, "%lld\t%lld", (long long)t->epoch, (long long)t->step);
    LP_TRY(score_split(t, LP_SPLIT_VALID, 1, &res->last_valid, row, sizeof row));
    if (te >= 0) {
        lp_score ts;
        LP_TRY(score_split(t, LP_SPLIT_TEST, want_test, &ts, row, sizeof row));
        if (ts.n) res->last_test = ts;
    }
    const lp_score *v = &res->last_valid;
    if (v->n) { /* no validation data: no row */
        if (t->valid_log) fprintf(t->valid_log, "%s\t%.2f\n", row, lp_now_s() - t0);
        if (!t->o->quiet)
            lp_log(LP_LOG_INFO, "epoch %lld: valid %s %.4f (%lld examples)", (long long)t->epoch, v->name[v->primary],
                   lp_score_primary(v), (long long)v->examples);
    }
    const double x = lp_score_primary(v);
    /* no validation data: every epoch is the best so far; a NaN figure never is */
    const int improved = !v->n || (!isnan(x) && (v->higher_better ? x > t->best : x < t->best));
    if (improved) {
        if (v->n && !isnan(x)) t->best = x, res->best = *v;
        t->best_epoch = t->epoch;
    }
    LP_TRY(sync_logs(t));
    if (improved) LP_TRY(save_state(t, "best.ckpt", 0));
    LP_TRY(save_state(t, "last.ckpt", 1));
    res->epochs_done = t->epoch;
    lc->epochs_this_run++;
    lc->epoch_loss = 0;
    lc->epoch_steps = 0;
    return LP_OK;
}

/* Train from (t->epoch, t->batch) to the last epoch. */
static lp_status run_epochs(trainer *t, lp_train_result *res) {
    lp_tape tp;
    LP_TRY(lp_tape_init(&tp, (size_t)64 << 20));
    loop_counts lc = {.last_t = lp_now_s(), .epochs_to_run = t->ts.epochs - t->epoch};
    lp_status s = LP_OK;
    while (s == LP_OK && t->epoch < t->ts.epochs) {
        if ((s = t->task->ops->epoch_begin(t->task, t->epoch, t->batch)) != LP_OK) break;
        step_info si;
        while ((s = train_step(t, &tp, &si)) == LP_OK) {
            watch_grad(t, &si, res);
            if ((s = after_step(t, &si, &lc)) != LP_OK) break;
        }
        if (s == LP_ERR_EOF && t->batch == 0 && lc.epoch_steps == 0)
            s = lp_errorf(LP_ERR_ARG, "epoch %lld has no training batch: the training data has no records; refusing "
                                      "to train on nothing", (long long)t->epoch + 1);
        if (s != LP_ERR_EOF) break; /* an error */
        if (lc.saves > 0 && t->o->stop_after_saves > 0 && lc.saves >= t->o->stop_after_saves) { /* interrupted */
            s = LP_OK;
            break;
        }
        if ((s = end_epoch(t, &lc, res)) != LP_OK) break;
        if (t->o->stop_after_epochs > 0 && lc.epochs_this_run >= t->o->stop_after_epochs) break;
    }
    lp_tape_free(&tp);
    return s;
}

/* ---- setup --------------------------------------------------------------------------------------- */

/* The task, from last.ckpt (resume: configuration from config.txt too), the initial weights, or fresh. */
static lp_status open_task(const lp_task_kind *kind, trainer *t) {
    const lp_train_opts *o = t->o;
    char path[4096] = "";
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = LP_OK;
    if (o->resume) {
        s = lp_rundir_load_config(t->cfg, o->run_dir, o->epochs_override);
        if (s == LP_OK) s = lp_ckpt_load(&c, lp_rundir_path(o->run_dir, "last.ckpt", path, sizeof path));
    } else if (o->init_ckpt) {
        snprintf(path, sizeof path, "%s", o->init_ckpt);
        s = lp_ckpt_load(&c, path);
    }
    const lp_ckpt *from = o->resume || o->init_ckpt ? &c : NULL;
    if (s == LP_OK) s = kind->open(kind, t->cfg, from, path, &t->task);
    if (s == LP_OK) s = kind->settings(kind, t->cfg, &t->ts);
    if (s == LP_OK) s = lp_optim_init(&t->opt, t->task->params->numel, &t->ts.optim);
    if (s == LP_OK && t->task->ops->lr_scale) {
        if (!(t->lr_scale = lp_aligned(t->task->params->numel, sizeof(float)))) s = LP_ERR_NOMEM;
        else if (t->task->ops->lr_scale(t->task, t->lr_scale)) lp_optim_set_lr_scale(&t->opt, t->lr_scale);
    }
    lp_rng_init(&t->drop_rng, t->ts.seed, LP_RNG_STREAM_DROPOUT);
    if (s == LP_OK) {
        t->best = t->task->ops->higher_better ? -1 : INFINITY;
        t->best_epoch = -1;
        snprintf(t->best_key, sizeof t->best_key, "state.best_%s", t->task->ops->primary);
    }
    if (s == LP_OK && o->resume) s = restore_state(t, &c, path);
    lp_ckpt_free(&c);
    return s;
}

/* train.micro_batches K (0 or absent: one per rank) and train.reduce (fast, exact) of cfg. */
static lp_status parallel_parse(const lp_kv *cfg, int *parts, int *exact) {
    const int ranks = lp_dist_size();
    long long K = ranks;
    if (lp_kv_get(cfg, "train.micro_batches")) LP_TRY(lp_kv_get_int(cfg, "train.micro_batches", &K));
    if (K == 0) K = ranks;
    if (K < ranks || K > 65536)
        return lp_errorf(LP_ERR_ARG, "train.micro_batches = %lld: must be in [number of ranks (%d), 65536] (0 = one per "
                                     "rank)", K, ranks);
    const char *r = lp_kv_get(cfg, "train.reduce");
    if (r && strcmp(r, "fast") != 0 && strcmp(r, "exact") != 0)
        return lp_errorf(LP_ERR_ARG, "train.reduce must be fast or exact, got '%s'", r);
    *parts = (int)K;
    *exact = r && !strcmp(r, "exact");
    return LP_OK;
}

lp_status lp_train_check(const lp_kv *cfg) {
    int parts, exact;
    LP_TRY(parallel_parse(cfg, &parts, &exact));
    lp_precision p; /* the run's products, where they can run (bf16: core/gemm.h) */
    LP_TRY(lp_runcfg_precision(cfg, &p));
    if (p == LP_PRECISION_BF16 && lp_precision_bf16_available() != LP_OK)
        return lp_error_wrap(LP_ERR_ARG, "train.precision = bf16");
    return LP_OK;
}

/* Micro-batches: checked, and recorded in the configuration when they change anything (K > 1), so
 * config.txt and the checkpoints say how the run summed its gradients; this rank's parts and the buffers
 * of the sum. */
static lp_status parallel_setup(trainer *t) {
    const int ranks = lp_dist_size();
    LP_TRY(parallel_parse(t->cfg, &t->parts, &t->exact));
    const long long K = t->parts;
    t->part0 = lp_dist_part_begin(t->parts, lp_dist_rank());
    t->part1 = lp_dist_part_begin(t->parts, lp_dist_rank() + 1);
    if (t->parts == 1) return LP_OK;
    LP_TRY(lp_kv_set_int(t->cfg, "train.micro_batches", K));
    LP_TRY(lp_kv_set(t->cfg, "train.reduce", t->exact ? "exact" : "fast"));
    const size_t n = t->task->params->numel, mine = (size_t)(t->part1 - t->part0);
    t->part_loss = lp_malloc((size_t)t->parts, sizeof *t->part_loss);
    t->acc = lp_aligned(n, sizeof(float));
    if (t->exact && ranks > 1) t->mine = lp_aligned(n * mine, sizeof(float));
    return t->part_loss && t->acc && (t->mine || !(t->exact && ranks > 1)) ? LP_OK : LP_ERR_NOMEM;
}

/* Every rank starts from the same parameters and position (the same seed or checkpoint; checked by their
 * CRC-32C, which costs one pass over the weights once per run). */
static lp_status same_start(const trainer *t) {
    if (lp_dist_size() == 1) return LP_OK;
    const lp_params *ps = t->task->params;
    const uint64_t crc = lp_crc32c_update(0, ps->data, ps->numel * sizeof(float));
    if (!lp_dist_same_u64(crc) || !lp_dist_same_u64((uint64_t)t->step))
        return lp_errorf(LP_ERR_ARG, "rank %d: the ranks start from different parameters or steps (a checkpoint that "
                                     "differs between the machines?)", lp_dist_rank());
    return LP_OK;
}

/* config.txt, the logs (cut back to the checkpoint on a resume) with their headers. */
static lp_status open_logs(trainer *t) {
    const lp_train_opts *o = t->o;
    char path[4096], header[512];
    LP_TRY(lp_kv_write_file(t->cfg, lp_rundir_path(o->run_dir, "config.txt", path, sizeof path)));
    /* train.tsv rows are keyed by step, valid.tsv rows by epoch: keep those last.ckpt had reached */
    if (o->resume) {
        LP_TRY(lp_rundir_truncate_tsv(lp_rundir_path(o->run_dir, "train.tsv", path, sizeof path), t->step, LLONG_MAX));
        LP_TRY(lp_rundir_truncate_tsv(lp_rundir_path(o->run_dir, "valid.tsv", path, sizeof path), t->epoch, LLONG_MAX));
    }
    LP_TRY(lp_rundir_open_log(o->run_dir, "train.tsv", "step\tepoch\tbatch\tloss\tgrad_norm\tlr\texamples_per_s\telapsed_s",
                              &t->train_log));
    const char *f = t->task->ops->figures;
    size_t n = (size_t)snprintf(header, sizeof header, "epoch\tstep\t%s", f);
    if (t->ts.test_every >= 0) /* test_<figure> columns */
        for (const char *p = f; *p && n < sizeof header; p += *p == '\t') {
            size_t len = strcspn(p, "\t");
            n += (size_t)snprintf(header + n, sizeof header - n, "\ttest_%.*s", (int)len, p);
            p += len;
        }
    snprintf(header + n, sizeof header - n, "\tseconds");
    return lp_rundir_open_log(o->run_dir, "valid.tsv", header, &t->valid_log);
}

/* Whether t->best holds a figure (it starts at -1 for higher-is-better figures, +inf for the others). */
static int best_known(const trainer *t) {
    return t->best_epoch > 0 && isfinite(t->best) && !(t->task->ops->higher_better && t->best < 0);
}

lp_status lp_train(const lp_task_kind *kind, lp_kv *cfg, const lp_train_opts *o, lp_train_result *res) {
    memset(res, 0, sizeof *res);
    trainer t;
    memset(&t, 0, sizeof t);
    lp_grad_watch_init(&t.watch, LP_GRAD_SPIKE_FACTOR);
    t.cfg = cfg;
    t.o = o;
    t.t_start = lp_now_s();
    /* a resume creates nothing: a mistyped directory fails before any mkdir */
    lp_status s = !o->run_dir ? lp_errorf(LP_ERR_ARG, "train: no run directory")
                  : !writer() ? LP_OK
                  : o->resume ? lp_rundir_prepare_resume(o->run_dir)
                              : lp_mkdirs(o->run_dir);
    if (s == LP_OK) s = lp_dist_barrier(); /* the directory is ready before any rank reads it */
    if (s == LP_OK) s = open_task(kind, &t);
    if (s == LP_OK) s = parallel_setup(&t);
    if (s == LP_OK) s = same_start(&t);
    if (s == LP_OK) lp_blas_set_threads(t.ts.threads);
    if (s == LP_OK && lp_precision_set(t.ts.precision) != LP_OK) /* the run's products, as its threads */
        s = lp_error_wrap(LP_ERR_ARG, "train.precision = bf16");
    if (s == LP_OK && writer()) s = open_logs(&t);
    if (s == LP_OK && t.epoch >= t.ts.epochs)
        s = lp_errorf(LP_ERR_ARG, "%s: already trained for %lld epochs (train.epochs = %lld; give --epochs to extend)",
                      o->run_dir, (long long)t.epoch, (long long)t.ts.epochs);
    if (s == LP_OK) s = run_epochs(&t, res);
    res->steps = t.step;
    res->epochs_done = t.epoch;
    res->best_epoch = t.best_epoch > 0 ? t.best_epoch : 0;
    if (!res->best.n && t.task && best_known(&t)) { /* the best came before a resume: its primary figure */
        res->best.n = 1;
        res->best.name[0] = t.task->ops->primary;
        res->best.value[0] = t.best;
        res->best.higher_better = t.task->ops->higher_better;
    }
    res->seconds = lp_now_s() - t.t_start;
    res->reduce_seconds = t.reduce_s;
    if (s == LP_OK && lp_dist_size() > 1 && !o->quiet)
        lp_log(LP_LOG_INFO, "data-parallel: %d ranks, %d micro-batches per step, %s reduction of %.2f MB per step: "
                            "%.2f s of %.2f s in it", lp_dist_size(), t.parts, t.exact ? "exact" : "fast",
               (double)t.task->params->numel * sizeof(float) / 1e6, t.reduce_s, res->seconds);
    if (t.train_log) fclose(t.train_log);
    if (t.valid_log) fclose(t.valid_log);
    lp_task_free(t.task);
    lp_optim_free(&t.opt);
    lp_free(t.lr_scale);
    lp_free(t.acc);
    lp_free(t.mine);
    lp_free(t.part_loss);
    return s;
}
