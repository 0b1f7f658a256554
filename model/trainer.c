/* trainer: see trainer.h. The loop, in order, per batch:
 *   forward (loss) → backward → hooks.after_backward → gradient norm (+clip) → NaN guard → lr schedule →
 *   optimizer step → hooks.after_update → zero grads → log
 * and per epoch: validation → best.ckpt (if better) → last.ckpt (best first: a run stopped between the two
 * resumes from the epoch before and redoes it, so no best epoch is lost). */
#include "model/trainer.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/rundir.h"
#include "model/evaluate.h"
#include "model/runcfg.h"
#include "model/video_task.h"
#include "optim/optim.h"

/* Everything the loop carries between steps and across a resume. */
typedef struct {
    lp_kv *cfg;
    const lp_train_opts *o;
    lp_task *task;   /* the video task around the model (hooks see it) */
    lp_model *model; /* inside task */
    lp_optim opt;
    float *lr_scale; /* per-parameter lr multipliers (train.bias_lr_mult != 1), else NULL */
    lp_lr_schedule lr;
    double clip;
    lp_rng drop_rng;
    int64_t step;
    lp_batcher_cursor cursor; /* next batch to train on */
    double best_gap;
    int64_t best_epoch;
    FILE *train_log, *valid_log;
    int64_t log_every, save_every, epochs;
    int top_k;
    double t_start, total_bytes;
    int tty;
    lp_grad_watch watch; /* giant gradient spikes (observed, reported; training unchanged) */
} trainer;

/* ---- checkpoints ------------------------------------------------------------------------------- */

static lp_status save_state(trainer *t, const char *name, int with_optimizer) {
    char path[4096];
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = lp_kv_merge(&c.meta, t->cfg);
    if (s == LP_OK) s = lp_model_add_to_ckpt(t->model, &c);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.step", t->step);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.epoch", t->cursor.epoch);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.batch", t->cursor.batch);
    if (s == LP_OK) s = lp_kv_set_double(&c.meta, "state.best_gap", t->best_gap);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.best_epoch", t->best_epoch);
    if (s == LP_OK) s = lp_kv_setf(&c.meta, "state.dropout_rng", "%llu,%llu", (unsigned long long)t->drop_rng.state,
                                   (unsigned long long)t->drop_rng.inc);
    if (s == LP_OK && with_optimizer) s = lp_optim_save_state(&t->opt, &c);
    if (s == LP_OK) s = lp_ckpt_save(&c, lp_rundir_path(t->o->run_dir, name, path, sizeof path));
    lp_ckpt_free(&c);
    return s;
}

static lp_status restore_state(trainer *t, const lp_ckpt *c, const char *path) {
    long long v;
    LP_TRY(lp_kv_get_int(&c->meta, "state.step", &v));
    t->step = v;
    LP_TRY(lp_kv_get_int(&c->meta, "state.epoch", &v));
    t->cursor.epoch = v;
    LP_TRY(lp_kv_get_int(&c->meta, "state.batch", &v));
    t->cursor.batch = v;
    LP_TRY(lp_kv_get_double(&c->meta, "state.best_gap", &t->best_gap));
    LP_TRY(lp_kv_get_int(&c->meta, "state.best_epoch", &v));
    t->best_epoch = v;
    const char *r = lp_kv_get(&c->meta, "state.dropout_rng");
    unsigned long long st, inc;
    if (!r || sscanf(r, "%llu,%llu", &st, &inc) != 2) return lp_errorf(LP_ERR_FORMAT, "%s: bad state.dropout_rng", path);
    t->drop_rng.state = st;
    t->drop_rng.inc = inc;
    return lp_optim_load_state(&t->opt, c, path);
}

/* ---- progress ---------------------------------------------------------------------------------- */

static double files_bytes(const lp_batcher *b) {
    double total = 0;
    for (int i = 0; i < lp_batcher_num_files(b); i++) {
        struct stat st;
        if (stat(lp_batcher_file(b, i), &st) == 0) total += (double)st.st_size;
    }
    return total;
}

/* ---- one step ---------------------------------------------------------------------------------- */

typedef struct {
    double loss, extra, grad_norm;
    float lr;
} step_info;

static lp_status train_step(trainer *t, lp_tape *tp, const lp_batch *bt, step_info *si) {
    lp_tape_reset(tp);
    int dx[3] = {bt->B, bt->T, bt->D}, dl[2] = {bt->B, bt->classes};
    lp_tensor *x = lp_tape_view(tp, bt->x, NULL, 3, dx);
    lp_tensor *y = lp_tape_view(tp, bt->labels, NULL, 2, dl);
    if (!x || !y) return LP_ERR_NOMEM;
    lp_model_out out;
    LP_TRY(lp_model_forward(t->model, tp, x, bt->lengths, y, &t->drop_rng, &out));
    si->loss = out.loss->data[0];
    if (!isfinite(si->loss))
        return lp_errorf(LP_ERR_NUMERIC, "step %lld: the loss is %g; stopping (the last good checkpoint is %s/last.ckpt)",
                         (long long)t->step + 1, si->loss, t->o->run_dir);
    lp_params *ps = t->model->params;
    lp_params_zero_grad(ps);
    LP_TRY(lp_tape_backward(tp, out.loss));
    si->extra = 0;
    if (t->o->hooks.after_backward) LP_TRY(t->o->hooks.after_backward(t->o->hooks.user, t->task, t->step, &si->extra));
    lp_status s = lp_optim_clip_grad_norm(ps->grad, ps->numel, (float)t->clip, &si->grad_norm);
    if (s != LP_OK)
        return lp_error_wrap(s, "step %lld: non-finite gradient; stopping (the last good checkpoint is %s/last.ckpt)",
                             (long long)t->step + 1, t->o->run_dir);
    si->lr = lp_lr_schedule_at(&t->lr, t->step);
    LP_TRY(lp_optim_step(&t->opt, ps->data, ps->grad, si->lr));
    t->step++;
    if (t->o->hooks.after_update) LP_TRY(t->o->hooks.after_update(t->o->hooks.user, t->task, t->step));
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
    res->spikes++; /* a warning: written also with --quiet */
    fprintf(stderr, "%sstep %lld: gradient norm %.3g, %.2g times the median of the steps before", t->tty ? "\r" : "",
            (long long)t->step, si->grad_norm, ratio);
    if (t->clip > 0 && si->grad_norm > t->clip) {
        fprintf(stderr, "; clipped to norm %g\n", t->clip);
        return;
    }
    if (t->opt.cfg.kind == LP_OPTIM_ADAM) {
        /* √v falls by β2^(n/2): 10× after n = 2·ln 10 / −ln β2 steps */
        double n10 = 2.0 * log(10.0) / -log((double)t->opt.cfg.beta2);
        fprintf(stderr, "; Adam's sqrt(v) takes ~%.0f steps to fall 10x, the weights it hit learn slower until then", n10);
    }
    fprintf(stderr, " (--clip NORM bounds such steps)\n");
}

static void progress(trainer *t, const lp_batch *bt, const step_info *si, double rate, double frac_done) {
    if (!t->tty) return;
    double el = lp_now_s() - t->t_start;
    char eta[32];
    lp_rundir_fmt_duration(frac_done > 1e-6 ? el * (1 - frac_done) / frac_done : -1, eta, sizeof eta);
    fprintf(stderr, "\repoch %lld/%lld  step %lld  loss %.4f  %.0f ex/s  ETA %s   ", (long long)bt->pos.epoch + 1,
            (long long)t->epochs, (long long)t->step, si->loss + si->extra, rate, eta);
    fflush(stderr);
}

/* ---- validation --------------------------------------------------------------------------------- */

static lp_status validate(trainer *t, int64_t epoch, double *gap) {
    char **pats;
    int n;
    *gap = NAN;
    LP_TRY(lp_runcfg_patterns(t->cfg, "valid", &pats, &n));
    if (n == 0) return LP_OK;
    lp_batcher_config bc;
    lp_eval_result r;
    lp_status s = lp_runcfg_batcher(t->cfg, pats, n, 0, &bc);
    if (s == LP_OK) s = lp_evaluate(t->model, &bc, t->top_k, NULL, NULL, &r);
    lp_runcfg_free_patterns(pats, n);
    LP_TRY(s);
    *gap = r.m.gap;
    fprintf(t->valid_log, "%lld\t%lld\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\t%.2f\n", (long long)epoch + 1, (long long)t->step,
            r.loss, r.m.gap, r.m.map, r.m.hit1, r.m.perr, r.seconds);
    fflush(t->valid_log);
    if (!t->o->quiet)
        fprintf(stderr, "%sepoch %lld: valid loss %.4f  GAP@%d %.4f  mAP %.4f  Hit@1 %.4f  PERR %.4f  (%lld videos)\n",
                t->tty ? "\r" : "", (long long)epoch + 1, r.loss, t->top_k, r.m.gap, r.m.map, r.m.hit1, r.m.perr,
                (long long)r.videos);
    return LP_OK;
}

/* ---- setup --------------------------------------------------------------------------------------- */

static lp_status setup_model(trainer *t, lp_ckpt *resume_ckpt, const char *resume_path) {
    lp_kv *cfg = t->cfg;
    long long seed;
    LP_TRY(lp_kv_get_int(cfg, "train.seed", &seed));
    int pair_bias;
    double bias_lr_mult;
    LP_TRY(lp_runcfg_bias(cfg, &pair_bias, &bias_lr_mult));
    lp_model m;
    if (resume_ckpt) {
        LP_TRY(lp_model_from_ckpt(&m, resume_ckpt, resume_path));
    } else if (t->o->init_ckpt) {
        LP_TRY(lp_model_load(&m, t->o->init_ckpt, NULL));
    } else {
        LP_TRY(lp_model_init_kv(&m, cfg, (uint64_t)seed));
        if (pair_bias) lp_model_bias_pair_init(&m, (uint64_t)seed);
    }
    lp_status s = lp_model_to_kv(&m, cfg); /* the config records the (possibly pruned) sizes */
    if (s != LP_OK) {
        lp_model_free(&m);
        return s;
    }
    LP_TRY(lp_video_task_new(&m, cfg, &t->task));
    t->model = lp_video_task_model(t->task);
    long long classes;
    LP_TRY(lp_kv_get_int(cfg, "data.classes", &classes));
    if (classes != t->model->classes)
        return lp_errorf(LP_ERR_ARG, "data.classes = %lld but the model predicts %d classes", classes, t->model->classes);
    lp_optim_config oc;
    LP_TRY(lp_runcfg_optim(cfg, &oc, &t->lr));
    LP_TRY(lp_optim_init(&t->opt, t->model->params->numel, &oc));
    if (bias_lr_mult != 1.0) {
        if (!(t->lr_scale = lp_aligned(t->model->params->numel, sizeof(float)))) return LP_ERR_NOMEM;
        lp_model_bias_lr_scale(t->model, (float)bias_lr_mult, t->lr_scale);
        lp_optim_set_lr_scale(&t->opt, t->lr_scale);
    }
    lp_rng_init(&t->drop_rng, (uint64_t)seed, LP_RNG_STREAM_DROPOUT);
    t->best_gap = -1;
    t->best_epoch = -1;
    if (resume_ckpt) LP_TRY(restore_state(t, resume_ckpt, resume_path));
    return LP_OK;
}

/* Everything comes from the run (config.txt, last.ckpt); only the number of epochs may be extended. */
static lp_status load_resume(trainer *t, lp_ckpt *c, char *path, size_t n) {
    LP_TRY(lp_rundir_load_config(t->cfg, t->o->run_dir, t->o->epochs_override));
    lp_rundir_path(t->o->run_dir, "last.ckpt", path, n);
    return lp_ckpt_load(c, path);
}

/* ---- the loop ------------------------------------------------------------------------------------- */

/* What the loop counts between steps, within one invocation (not saved: a resume starts it afresh). */
typedef struct {
    double done_bytes;        /* data bytes of the epochs finished in this invocation (progress) */
    double epoch_loss;        /* sum of the step losses of the current epoch */
    int64_t epoch_batches;    /* steps of the current epoch */
    int64_t epochs_this_run;  /* epochs finished in this invocation (--stop-after-epochs) */
    int64_t examples_since;   /* examples since the last train.tsv line (throughput) */
    double last_t;            /* time of the last train.tsv line */
    int64_t cur_epoch;        /* the epoch of the last batch */
} loop_counts;

/* After one optimizer step: the cursor moves past the batch, the train.tsv line (every log_every steps),
 * the progress line, and last.ckpt every save_every steps. */
static lp_status after_step(trainer *t, const lp_batcher *b, const lp_batch *bt, const step_info *si,
                            loop_counts *lc) {
    t->cursor = lp_batcher_position(b);
    lc->cur_epoch = bt->pos.epoch;
    lc->epoch_loss += si->loss + si->extra;
    lc->epoch_batches++;
    lc->examples_since += bt->B;
    double now = lp_now_s(), rate = lc->examples_since / fmax(now - lc->last_t, 1e-9);
    if (t->log_every > 0 && t->step % t->log_every == 0) {
        /* step epoch batch loss grad_norm lr examples_per_s elapsed_s (docs/FORMATS.md) */
        fprintf(t->train_log, "%lld\t%lld\t%lld\t%.6f\t%.6f\t%.8g\t%.1f\t%.2f\n", (long long)t->step,
                (long long)bt->pos.epoch + 1, (long long)bt->pos.batch + 1, si->loss + si->extra, si->grad_norm,
                (double)si->lr, rate, now - t->t_start);
        lc->examples_since = 0;
        lc->last_t = now;
    }
    double fb = (double)lp_batcher_get_stats(b).bytes;
    progress(t, bt, si, rate, t->total_bytes > 0 ? (lc->done_bytes + fb) / t->total_bytes : 0);
    if (t->save_every > 0 && t->step % t->save_every == 0) return save_state(t, "last.ckpt", 1);
    return LP_OK;
}

/* The batcher reached the end of an epoch: validate, write best.ckpt (if the validation GAP improved)
 * then last.ckpt, and set *stop when the run is over (all epochs, the data's end, or
 * --stop-after-epochs). */
static lp_status end_epoch(trainer *t, const lp_batcher *b, loop_counts *lc, lp_train_result *res, int *stop) {
    int64_t epoch = lc->cur_epoch; /* the epoch just finished */
    t->cursor = (lp_batcher_cursor){epoch + 1, 0};
    lc->cur_epoch = epoch + 1;
    fflush(t->train_log);
    res->last_loss = lc->epoch_batches ? lc->epoch_loss / (double)lc->epoch_batches : NAN;
    double gap;
    LP_TRY(validate(t, epoch, &gap));
    int improved = isnan(gap) || gap > t->best_gap;
    if (improved) {
        t->best_gap = isnan(gap) ? t->best_gap : gap;
        t->best_epoch = epoch + 1;
    }
    /* best.ckpt first: a run stopped between the two writes resumes from the previous epoch's
     * last.ckpt and redoes this epoch, so no best epoch is ever lost to a resume */
    if (improved) LP_TRY(save_state(t, "best.ckpt", 0));
    LP_TRY(save_state(t, "last.ckpt", 1));
    res->epochs_done = epoch + 1;
    lc->epochs_this_run++;
    lc->done_bytes += (double)lp_batcher_get_stats(b).bytes;
    lc->epoch_loss = 0;
    lc->epoch_batches = 0;
    *stop = lp_batcher_finished(b) || t->cursor.epoch >= t->epochs ||
            (t->o->stop_after_epochs > 0 && lc->epochs_this_run >= t->o->stop_after_epochs);
    return LP_OK;
}

/* Train from t->cursor to the last epoch: steps until the batcher reports an epoch's end, then end_epoch. */
static lp_status run_epochs(trainer *t, lp_train_result *res) {
    char **pats;
    int n;
    LP_TRY(lp_runcfg_patterns(t->cfg, "train", &pats, &n));
    if (n == 0) return lp_errorf(LP_ERR_ARG, "no training data (data.train / --train)");
    lp_batcher_config bc;
    lp_batcher *b = NULL;
    lp_tape tp;
    lp_status s = lp_runcfg_batcher(t->cfg, pats, n, 1, &bc);
    bc.start = t->cursor;
    if (s == LP_OK) s = lp_batcher_new(&b, &bc);
    if (s == LP_OK) s = lp_tape_init(&tp, (size_t)64 << 20);
    else memset(&tp, 0, sizeof tp);
    if (s != LP_OK) goto done;
    t->total_bytes = files_bytes(b) * (double)t->epochs;
    loop_counts lc = {.last_t = lp_now_s(), .cur_epoch = t->cursor.epoch};
    for (;;) {
        const lp_batch *bt;
        s = lp_batcher_next(b, &bt);
        if (s == LP_OK) {
            step_info si;
            if ((s = train_step(t, &tp, bt, &si)) != LP_OK) break;
            watch_grad(t, &si, res);
            if ((s = after_step(t, b, bt, &si, &lc)) != LP_OK) break;
            continue;
        }
        if (s != LP_ERR_EOF) break; /* a data error */
        int stop = 0;
        if ((s = end_epoch(t, b, &lc, res, &stop)) != LP_OK || stop) break;
    }
done:
    if (t->tty) fputc('\n', stderr);
    lp_tape_free(&tp);
    lp_batcher_free(b);
    lp_runcfg_free_patterns(pats, n);
    return s;
}

lp_status lp_train(lp_kv *cfg, const lp_train_opts *o, lp_train_result *res) {
    memset(res, 0, sizeof *res);
    trainer t;
    memset(&t, 0, sizeof t);
    lp_grad_watch_init(&t.watch, LP_GRAD_SPIKE_FACTOR);
    t.cfg = cfg;
    t.o = o;
    t.t_start = lp_now_s();
    t.tty = !o->quiet && isatty(2);
    lp_ckpt rc;
    lp_ckpt_init(&rc);
    char rpath[4096] = "";
    lp_status s = lp_mkdirs(o->run_dir);
    if (s == LP_OK && o->resume) s = load_resume(&t, &rc, rpath, sizeof rpath);
    if (s == LP_OK) s = lp_runcfg_defaults(cfg);
    if (s == LP_OK) s = setup_model(&t, o->resume ? &rc : NULL, rpath);
    lp_ckpt_free(&rc);
    long long v = 0;
    if (s == LP_OK) s = lp_kv_get_int(cfg, "train.epochs", &v);
    t.epochs = v;
    if (s == LP_OK) s = lp_kv_get_int(cfg, "train.log_every", &v);
    t.log_every = v;
    if (s == LP_OK) s = lp_kv_get_int(cfg, "train.save_every", &v);
    t.save_every = v;
    if (s == LP_OK) s = lp_kv_get_int(cfg, "train.top_k", &v);
    t.top_k = (int)v;
    if (s == LP_OK) s = lp_kv_get_double(cfg, "train.clip", &t.clip);
    if (s == LP_OK && t.epochs < 1) s = lp_errorf(LP_ERR_ARG, "train.epochs must be >= 1");
    lp_runcfg_apply_threads(cfg);
    char path[4096];
    if (s == LP_OK) s = lp_kv_write_file(cfg, lp_rundir_path(o->run_dir, "config.txt", path, sizeof path));
    /* train.tsv rows are keyed by step, valid.tsv rows by epoch: keep those last.ckpt had reached */
    if (s == LP_OK && o->resume)
        s = lp_rundir_truncate_tsv(lp_rundir_path(o->run_dir, "train.tsv", path, sizeof path), t.step, LLONG_MAX);
    if (s == LP_OK && o->resume)
        s = lp_rundir_truncate_tsv(lp_rundir_path(o->run_dir, "valid.tsv", path, sizeof path), t.cursor.epoch, LLONG_MAX);
    if (s == LP_OK)
        s = lp_rundir_open_log(o->run_dir, "train.tsv",
                               "step\tepoch\tbatch\tloss\tgrad_norm\tlr\texamples_per_s\telapsed_s", &t.train_log);
    if (s == LP_OK)
        s = lp_rundir_open_log(o->run_dir, "valid.tsv", "epoch\tstep\tloss\tgap\tmap\thit1\tperr\tseconds", &t.valid_log);
    if (s == LP_OK && t.cursor.epoch >= t.epochs) s = lp_errorf(LP_ERR_ARG, "%s: already trained for %lld epochs (train.epochs = %lld)",
                                                               o->run_dir, (long long)t.cursor.epoch, (long long)t.epochs);
    if (s == LP_OK) s = run_epochs(&t, res);
    res->steps = t.step;
    res->best_gap = t.best_gap < 0 ? NAN : t.best_gap;
    res->seconds = lp_now_s() - t.t_start;
    if (t.train_log) fclose(t.train_log);
    if (t.valid_log) fclose(t.valid_log);
    lp_task_free(t.task);
    lp_optim_free(&t.opt);
    lp_free(t.lr_scale);
    return s;
}
