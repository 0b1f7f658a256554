/* pipeline: see pipeline.h. */
#include "experiments/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/dist.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/rundir.h"
#include "experiments/sensitivity.h"
#include "model/runcfg.h"
#include "prune/iss.h"
#include "prune/surgery.h"
#include "train/trainer.h"

const char *lp_schedule_name(lp_schedule s) {
    static const char *n[] = {"oneshot", "iterative", "soft", "iss"};
    return s >= 0 && s <= LP_SCHED_ISS ? n[s] : "?";
}

lp_status lp_schedule_parse(const char *s, lp_schedule *out) {
    for (int i = 0; i <= LP_SCHED_ISS; i++)
        if (!strcmp(s, lp_schedule_name((lp_schedule)i))) {
            *out = (lp_schedule)i;
            return LP_OK;
        }
    return lp_errorf(LP_ERR_ARG, "unknown schedule '%s' (oneshot, iterative, soft or iss)", s);
}

void lp_pipeline_opts_default(lp_pipeline_opts *o) {
    memset(o, 0, sizeof *o);
    lp_prune_opts_default(&o->prune);
    o->schedule = LP_SCHED_ONESHOT;
    o->iterative_steps = 3;
    o->finetune_epochs = 5;
    o->prune_every = 50;
    o->iss_lambda = 1.0;
    o->iss_threshold = 1e-6;
    o->iss_method = LP_ISS_PROX;
    o->lat_batch = 160;
    o->lat_frames = 300;
    o->lat_reps = 5;
}

static lp_status kv_int(const lp_kv *kv, const char *key, long long lo, int *out) {
    if (!lp_kv_get(kv, key)) return LP_OK;
    long long v;
    LP_TRY(lp_kv_get_int(kv, key, &v));
    if (v < lo || v > 1000000000LL) return lp_errorf(LP_ERR_ARG, "%s = %lld is out of range (>= %lld)", key, v, lo);
    *out = (int)v;
    return LP_OK;
}

static lp_status kv_num(const lp_kv *kv, const char *key, double lo, double hi, double *out) {
    if (!lp_kv_get(kv, key)) return LP_OK;
    double v;
    LP_TRY(lp_kv_get_double(kv, key, &v));
    if (!(v >= lo && v <= hi)) return lp_errorf(LP_ERR_ARG, "%s = %g is out of range [%g, %g]", key, v, lo, hi);
    *out = v;
    return LP_OK;
}

/* prune.rates / prune.units / prune.rates_from (one of them) make the rule `given`; prune.sensitivity
 * points the sensitivity rule at an earlier analysis. */
static lp_status given_from_kv(const lp_kv *kv, lp_pipeline_opts *o) {
    static const char *const keys[] = {"prune.rates", "prune.units", "prune.rates_from"};
    const char *v[3], *which = NULL;
    int n = 0;
    for (int i = 0; i < 3; i++)
        if ((v[i] = lp_kv_get(kv, keys[i])) && *v[i]) n++, which = keys[i];
    if (n > 1) return lp_errorf(LP_ERR_ARG, "give one of --rates, --units and --rates-from (prune.rates, prune.units, prune.rates_from)");
    o->given_rates = v[0] && *v[0] ? v[0] : NULL;
    o->given_units = v[1] && *v[1] ? v[1] : NULL;
    o->rates_from = v[2] && *v[2] ? v[2] : NULL;
    o->sensitivity_dir = lp_kv_get(kv, "prune.sensitivity");
    const char *rule = lp_kv_get(kv, "prune.rule");
    if (n == 1) {
        if (rule && strcmp(rule, "given") != 0)
            return lp_errorf(LP_ERR_ARG, "%s gives the rates of every group: it does not go with --rate-rule %s", which, rule);
        o->prune.rates.rule = LP_RATE_RULE_GIVEN;
    } else if (o->prune.rates.rule == LP_RATE_RULE_GIVEN) {
        return lp_errorf(LP_ERR_ARG, "--rate-rule given needs --rates, --units or --rates-from");
    }
    return LP_OK;
}

lp_status lp_pipeline_opts_from_kv(const lp_kv *kv, lp_pipeline_opts *o) {
    const char *v;
    if ((v = lp_kv_get(kv, "prune.rule"))) LP_TRY(lp_rate_rule_parse(v, &o->prune.rates.rule));
    if ((v = lp_kv_get(kv, "prune.keep_count"))) LP_TRY(lp_keep_count_parse(v, &o->prune.rates.count));
    if ((v = lp_kv_get(kv, "prune.criterion"))) LP_TRY(lp_criterion_parse(v, &o->prune.criterion));
    if ((v = lp_kv_get(kv, "prune.stats_steps"))) LP_TRY(lp_stats_steps_parse(v, &o->prune.steps));
    if ((v = lp_kv_get(kv, "prune.schedule"))) LP_TRY(lp_schedule_parse(v, &o->schedule));
    if ((v = lp_kv_get(kv, "prune.iss_method"))) {
        if (strcmp(v, "prox") != 0 && strcmp(v, "subgradient") != 0)
            return lp_errorf(LP_ERR_ARG, "prune.iss_method must be prox or subgradient, got '%s'", v);
        o->iss_method = strcmp(v, "prox") ? LP_ISS_SUBGRADIENT : LP_ISS_PROX;
    }
    if ((v = lp_kv_get(kv, "prune.compensate"))) {
        if (strcmp(v, "none") != 0 && strcmp(v, "mean") != 0)
            return lp_errorf(LP_ERR_ARG, "--compensate must be none or mean, got '%s'", v);
        o->prune.compensate = strcmp(v, "mean") == 0;
    }
    LP_TRY(kv_num(kv, "prune.tau", 1e-9, 1, &o->prune.rates.tau));
    LP_TRY(kv_num(kv, "prune.target_rate", 0, 0.999, &o->prune.rates.target_rate));
    LP_TRY(kv_int(kv, "prune.round_to", 0, &o->prune.rates.round_to));
    LP_TRY(kv_int(kv, "prune.stats_batches", 0, &o->prune.stats_batches));
    if (lp_kv_get(kv, "prune.seed")) {
        long long sd;
        LP_TRY(lp_kv_get_int(kv, "prune.seed", &sd));
        o->prune.seed = (uint64_t)sd;
    }
    LP_TRY(kv_int(kv, "prune.steps", 1, &o->iterative_steps));
    LP_TRY(kv_int(kv, "prune.finetune_epochs", 0, &o->finetune_epochs));
    LP_TRY(kv_num(kv, "prune.finetune_lr", 0, 1e3, &o->finetune_lr));
    LP_TRY(kv_int(kv, "prune.prune_every", 1, &o->prune_every));
    LP_TRY(kv_num(kv, "prune.iss_lambda", 0, 1e6, &o->iss_lambda));
    LP_TRY(kv_num(kv, "prune.iss_threshold", 0, 1e6, &o->iss_threshold));
    LP_TRY(kv_int(kv, "prune.latency_batch", 1, &o->lat_batch));
    LP_TRY(kv_int(kv, "prune.latency_frames", 1, &o->lat_frames));
    LP_TRY(kv_int(kv, "prune.latency_reps", 1, &o->lat_reps));
    LP_TRY(given_from_kv(kv, o));
    /* fast runs split the statistics over the ranks; exact ones compute them whole on every rank, as one
     * process does */
    const char *reduce = lp_kv_get(kv, "train.reduce");
    o->prune.stats_split = !(reduce && !strcmp(reduce, "exact"));
    return lp_rates_opts_check(&o->prune.rates);
}

static lp_status kv_copy(lp_kv *dst, const lp_kv *src) {
    for (int i = 0; i < src->count; i++) LP_TRY(lp_kv_set(dst, src->keys[i], src->vals[i]));
    return LP_OK;
}

static void say(const lp_pipeline_opts *o, const char *fmt, const char *arg) {
    if (!o->quiet) lp_log(LP_LOG_INFO, fmt, arg);
}

/* cfg ← every "<prefix>KEY = v" of src as "KEY = v" (the run's settings for one kind of training run). */
static lp_status apply_prefixed(lp_kv *cfg, const lp_kv *src, const char *prefix) {
    const size_t n = strlen(prefix);
    for (int i = 0; i < src->count; i++)
        if (!strncmp(src->keys[i], prefix, n) && src->keys[i][n]) LP_TRY(lp_kv_set(cfg, src->keys[i] + n, src->vals[i]));
    return LP_OK;
}

/* A training run with `cfg` (copied) and the run's "<prefix>*" keys over it, optionally from `init`, for
 * `epochs` (0 = as configured) at `lr` (0 = as configured). */
static lp_status train_run(const lp_pipeline_opts *o, const lp_kv *cfg, const char *prefix, const char *run_dir,
                           const char *init, int epochs, double lr, const lp_train_hooks *hooks) {
    lp_kv c;
    lp_kv_init(&c);
    lp_status s = kv_copy(&c, cfg);
    if (s == LP_OK && epochs > 0) s = lp_kv_set_int(&c, "train.epochs", epochs);
    if (s == LP_OK && lr > 0) s = lp_kv_set_double(&c, "train.lr", lr);
    if (s == LP_OK && prefix) s = apply_prefixed(&c, o->cfg, prefix);
    lp_train_opts to = {0};
    to.run_dir = run_dir;
    to.init_ckpt = init;
    to.quiet = o->quiet;
    if (hooks) to.hooks = *hooks;
    lp_train_result r;
    if (s == LP_OK) s = lp_train(o->kind, &c, &to, &r);
    lp_kv_free(&c);
    return s;
}

static lp_status write_model(const lp_task *t, const lp_kv *cfg, const lp_prune_plan *plan, const char *path) {
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = kv_copy(&c.meta, cfg);
    if (s == LP_OK) s = lp_task_save(t, &c); /* overrides model.* with the new sizes */
    if (s == LP_OK && plan) s = lp_prune_plan_to_kv(plan, &c.meta);
    if (s == LP_OK) s = lp_ckpt_save(&c, path);
    lp_ckpt_free(&c);
    return s;
}

/* Save the task's model with the run configuration and the plan's plan.* keys. Under mpirun rank 0 writes
 * and every rank waits for the file (the next step reads it); a rank 0 that fails never arrives, and its
 * error ends the job (core/dist.h). */
static lp_status save_model(const lp_task *t, const lp_kv *cfg, const lp_prune_plan *plan, const char *path) {
    return lp_dist_written(lp_dist_lead() ? write_model(t, cfg, plan, path) : LP_OK);
}

/* The model of checkpoint `path` as a task, with configuration *cfg: the checkpoint's keys under `over`
 * (may be NULL), completed by the kind (its defaults, the model's keys). */
static lp_status open_ckpt(const lp_pipeline_opts *o, const char *path, const lp_kv *over, lp_kv *cfg, lp_task **t) {
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, path));
    lp_status s = kv_copy(cfg, &c.meta);
    if (s == LP_OK && over) s = kv_copy(cfg, over);
    if (s == LP_OK) s = o->kind->open(o->kind, cfg, &c, path, t);
    lp_ckpt_free(&c);
    return s;
}

/* The keys of checkpoint `path` into cfg. */
static lp_status ckpt_keys(const char *path, lp_kv *cfg) {
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, path));
    lp_status s = kv_copy(cfg, &c.meta);
    lp_ckpt_free(&c);
    return s;
}

/* open_ckpt with a configuration of its own (discarded). */
static lp_status load_task(const lp_pipeline_opts *o, const char *path, const lp_kv *over, lp_task **t) {
    lp_kv cfg;
    lp_kv_init(&cfg);
    lp_status s = open_ckpt(o, path, over, &cfg, t);
    lp_kv_free(&cfg);
    return s;
}

lp_status lp_pipeline_open(const lp_pipeline_opts *o, const char *path, lp_kv *cfg, lp_task **t) {
    return open_ckpt(o, path, o->cfg, cfg, t);
}

typedef struct state {
    lp_prune_opts po;    /* o->prune completed for the model: per-group sizes, the sensitivity curves */
    lp_cost_curve curves[LP_MAX_GROUPS];
    lp_task *before;     /* the unpruned model (the plan's reference) */
    char before_ckpt[4096];
    lp_prune_plan plan;  /* sizes before → after (composed over iterative steps) */
    int have_plan;
    char pruned_ckpt[4096];
    char final_ckpt[4096]; /* fine-tuned, or the pruned model without fine-tuning */
    lp_kv cfg;           /* the run configuration the pruned models carry */
} state;

/* ---- the rule's per-group input ---- */

/* The curves of the sensitivity rule: from o->sensitivity_dir, else measured on `ckpt` (the trained
 * model t) into OUT/sensitivity — or, with no ckpt (a soft run before training), an error. */
static lp_status sensitivity_curves(const lp_pipeline_opts *o, const lp_task *t, const char *ckpt, state *st) {
    char dir[4096];
    const char *from = o->sensitivity_dir;
    if (!from) {
        if (!ckpt) return lp_errorf(LP_ERR_ARG, "the sensitivity rule needs --sensitivity DIR: no trained model to measure on");
        from = lp_rundir_path(o->out_dir, "sensitivity", dir, sizeof dir);
        say(o, "== sensitivity analysis of the trained model into %s", from);
        lp_sensitivity_opts so;
        lp_sensitivity_opts_default(&so);
        so.ckpt = ckpt;
        so.out_dir = from;
        so.cfg = o->cfg;
        so.criterion = o->prune.criterion;
        so.seed = o->prune.seed;
        so.quiet = o->quiet;
        LP_TRY(lp_sensitivity_run(&so, NULL));
    }
    LP_TRY(lp_sensitivity_curves_read(from, t, st->curves));
    st->po.curves = st->curves;
    return LP_OK;
}

/* st->po: the options with what the rule needs of model t (ckpt: its checkpoint, or NULL when t is not
 * trained yet): per-group sizes for the given rule, the cost curves for the sensitivity rule. */
static lp_status method_for(const lp_pipeline_opts *o, const lp_task *t, const char *ckpt, state *st) {
    st->po = o->prune;
    if (o->prune.rates.rule == LP_RATE_RULE_SENSITIVITY) return sensitivity_curves(o, t, ckpt, st);
    if (o->prune.rates.rule != LP_RATE_RULE_GIVEN) return LP_OK;
    if (o->given_rates) return lp_prune_given_parse(t, o->given_rates, 0, st->po.given_k);
    if (o->given_units) return lp_prune_given_parse(t, o->given_units, 1, st->po.given_k);
    if (o->rates_from) return lp_prune_given_read(t, o->rates_from, st->po.given_k);
    return lp_errorf(LP_ERR_ARG, "the given rate rule needs --rates, --units or --rates-from");
}

lp_status lp_pipeline_plan(const lp_pipeline_opts *o, lp_task *t, const char *ckpt, lp_prune_plan *p) {
    memset(p, 0, sizeof *p);
    state *st = lp_calloc(1, sizeof *st); /* the rule's input: per-group sizes, the curves */
    if (!st) return LP_ERR_NOMEM;
    lp_status s = method_for(o, t, ckpt, st);
    if (s == LP_OK) s = lp_prune_plan_run(t, &st->po, p);
    if (s == LP_OK) p->opts.curves = NULL; /* they die with st */
    lp_free(st);
    return s;
}

/* The rule against the schedule: ISS keeps what passes its threshold; a soft run starts untrained, so
 * the sensitivity rule needs curves measured before. */
static lp_status rule_fits_schedule(const lp_pipeline_opts *o) {
    const lp_rate_rule rule = o->prune.rates.rule;
    if (o->schedule == LP_SCHED_ISS && (rule == LP_RATE_RULE_GIVEN || rule == LP_RATE_RULE_SENSITIVITY))
        return lp_errorf(LP_ERR_ARG, "the iss schedule keeps the units whose group norm passes its threshold: per-group "
                                     "rates and the %s rule do not apply to it", lp_rate_rule_name(rule));
    if (o->schedule == LP_SCHED_SOFT && rule == LP_RATE_RULE_SENSITIVITY && !o->sensitivity_dir)
        return lp_errorf(LP_ERR_ARG, "the soft schedule starts untrained: give --sensitivity DIR (an earlier "
                                     "`lstmprune sensitivity` of a trained model of this architecture)");
    return LP_OK;
}

lp_status lp_pipeline_check(const lp_pipeline_opts *o) {
    const lp_rate_rule rule = o->prune.rates.rule;
    LP_TRY(rule_fits_schedule(o));
    if (rule != LP_RATE_RULE_GIVEN && !(rule == LP_RATE_RULE_SENSITIVITY && o->sensitivity_dir)) return LP_OK;
    lp_kv cfg;
    lp_kv_init(&cfg);
    lp_task *t = NULL;
    lp_status s = o->baseline_ckpt ? open_ckpt(o, o->baseline_ckpt, o->cfg, &cfg, &t) : kv_copy(&cfg, o->cfg);
    if (s == LP_OK && !o->baseline_ckpt) s = o->kind->open(o->kind, &cfg, NULL, NULL, &t); /* a fresh model */
    state *st = s == LP_OK ? lp_calloc(1, sizeof *st) : NULL;
    if (s == LP_OK && !st) s = LP_ERR_NOMEM;
    if (s == LP_OK) s = method_for(o, t, NULL, st); /* reads, never measures: no checkpoint given */
    if (s != LP_OK && s != LP_ERR_NOMEM) s = LP_ERR_ARG;
    lp_free(st);
    lp_task_free(t);
    lp_kv_free(&cfg);
    return s;
}

/* ---- soft schedule: masks re-applied during training ---- */

typedef struct {
    const lp_pipeline_opts *o;
    state *st;
    int every, ready;
} soft_ctx;

static lp_status soft_hook(void *user, lp_task *t, int64_t step) {
    soft_ctx *c = user;
    if (step % c->every != 0) return LP_OK;
    if (!c->ready) LP_TRY(method_for(c->o, t, NULL, c->st)); /* the model's groups are known from here */
    c->ready = 1;
    lp_prune_plan plan;
    LP_TRY(lp_prune_plan_run(t, &c->st->po, &plan));
    lp_status s = lp_surgery_mask(t, &plan);
    lp_prune_plan_free(&plan);
    return s;
}

/* ---- the schedules ---- */


/* st->before from st->before_ckpt with the run configuration st->cfg (the baseline's keys under the
 * pipeline's own overrides: test/valid patterns, ...). From here on the products — the statistics, the
 * scoring of every model — run in the run's precision, as its training and fine-tuning do (a checkpoint
 * trained in bf16 is pruned and scored in bf16 unless the configuration says otherwise). */
static lp_status open_before(const lp_pipeline_opts *o, state *st) {
    LP_TRY(open_ckpt(o, st->before_ckpt, o->cfg, &st->cfg, &st->before));
    if (lp_runcfg_apply_precision(&st->cfg) != LP_OK) return lp_error_wrap(LP_ERR_ARG, "%s", st->before_ckpt);
    return LP_OK;
}

static lp_status baseline(const lp_pipeline_opts *o, state *st) {
    char path[4096];
    if (o->baseline_ckpt) {
        snprintf(st->before_ckpt, sizeof st->before_ckpt, "%s", o->baseline_ckpt);
    } else {
        say(o, "== training the baseline into %s/baseline", o->out_dir);
        LP_TRY(train_run(o, o->cfg, NULL, lp_rundir_path(o->out_dir, "baseline", path, sizeof path), NULL, 0, 0, NULL));
        snprintf(st->before_ckpt, sizeof st->before_ckpt, "%s/baseline/best.ckpt", o->out_dir);
    }
    return open_before(o, st);
}

static lp_status finetune(const lp_pipeline_opts *o, state *st, const char *pruned, const char *run_dir) {
    if (o->finetune_epochs <= 0) {
        snprintf(st->final_ckpt, sizeof st->final_ckpt, "%s", pruned);
        return LP_OK;
    }
    say(o, "== fine-tuning into %s", run_dir);
    LP_TRY(train_run(o, &st->cfg, "finetune.", run_dir, pruned, o->finetune_epochs, o->finetune_lr, NULL));
    snprintf(st->final_ckpt, sizeof st->final_ckpt, "%.4000s/best.ckpt", run_dir);
    return LP_OK;
}

/* The end of every schedule: remove the plan's units from st->before for real, save <out>/pruned.ckpt
 * (with the plan and the sizes before), then fine-tune it. */
static lp_status shrink_save_finetune(const lp_pipeline_opts *o, state *st) {
    lp_task *pruned;
    LP_TRY(lp_surgery_shrink(st->before, &st->plan, &pruned));
    lp_rundir_path(o->out_dir, "pruned.ckpt", st->pruned_ckpt, sizeof st->pruned_ckpt);
    lp_status s = save_model(pruned, &st->cfg, &st->plan, st->pruned_ckpt);
    lp_task_free(pruned);
    LP_TRY(s);
    char path[4096];
    return finetune(o, st, st->pruned_ckpt, lp_rundir_path(o->out_dir, "finetune", path, sizeof path));
}

static lp_status run_oneshot(const lp_pipeline_opts *o, state *st) {
    LP_TRY(baseline(o, st));
    say(o, "== pruning (%s)", lp_criterion_name(o->prune.criterion));
    LP_TRY(lp_pipeline_plan(o, st->before, st->before_ckpt, &st->plan));
    st->have_plan = 1;
    return shrink_save_finetune(o, st);
}

/* ---- iterative steps: targets in units of the original model ---- */

/* The rate against h0 that per-step target q would give on the current model: the rates alone
 * (prune/rates.h) on the spectra plan p already holds, so no statistics are gathered again. */
static lp_status rate_at(const lp_prune_plan *p, const lp_rates_opts *ro, double q, const int *h0, double *out) {
    lp_rate_group rg[LP_MAX_GROUPS];
    memset(rg, 0, sizeof rg);
    lp_rates_opts o = *ro;
    o.target_rate = q;
    int np = 0, idx[LP_MAX_GROUPS];
    lp_status s = LP_OK;
    for (int g = 0; g < p->n_groups && s == LP_OK; g++)
        if (!p->g[g].fixed) s = lp_rate_group_from_eig(&rg[np], p->g[g].eig, p->g[g].h), idx[np++] = g;
    if (s == LP_OK) s = lp_rates_assign(rg, np, &o, NULL);
    double sum = 0;
    for (int i = 0; i < np && s == LP_OK; i++) sum += 1.0 - (double)rg[i].k / h0[idx[i]];
    for (int i = 0; i < np; i++) lp_rate_group_free(&rg[i]);
    *out = np ? sum / np : 0;
    return s;
}

/* The per-step target (a rate of the current sizes) whose plan comes closest to `want`, a mean rate of
 * the original sizes h0. A target relative to the current sizes alone rounds at every step and the
 * errors add up (a 3-step run at 0.5 ended at 0.45); the mean rate against h0 is non-decreasing in the
 * per-step target, so bisection brackets `want` and the closer side wins. p's own target wins ties. */
static lp_status step_target(const lp_prune_plan *p, const lp_rates_opts *ro, const int *h0, double want, double *q) {
    double best = ro->target_rate, r_best, lo = 0, hi = 0.999, r_lo, r_hi;
    LP_TRY(rate_at(p, ro, best, h0, &r_best));
    LP_TRY(rate_at(p, ro, lo, h0, &r_lo));
    LP_TRY(rate_at(p, ro, hi, h0, &r_hi));
    for (int it = 0; it < 40 && r_lo < want && r_hi >= want; it++) {
        const double mid = 0.5 * (lo + hi);
        double r;
        LP_TRY(rate_at(p, ro, mid, h0, &r));
        if (r >= want) hi = mid, r_hi = r;
        else lo = mid, r_lo = r;
    }
    if (fabs(r_lo - want) < fabs(r_best - want)) best = lo, r_best = r_lo;
    if (fabs(r_hi - want) < fabs(r_best - want)) best = hi;
    *q = best;
    return LP_OK;
}

/* One iterative step's plan on the current model m: towards mean rate `want` of the original sizes h0,
 * starting from the per-step target po->rates.target_rate. The statistics are gathered once; the plan
 * is remade only when another per-step target comes closer. */
static lp_status step_plan(lp_task *m, lp_prune_opts po, const int *h0, double want, lp_prune_plan *plan) {
    lp_stats st[LP_MAX_GROUPS];
    const int need = lp_prune_opts_need_stats(&po);
    if (need) LP_TRY(lp_prune_stats_split(m, po.stats_batches, po.steps, po.stats_split, st));
    lp_status s = lp_prune_plan_make(m, need ? st : NULL, &po, plan);
    double q = po.rates.target_rate;
    if (s == LP_OK) s = step_target(plan, &po.rates, h0, want, &q);
    if (s == LP_OK && q != po.rates.target_rate) {
        lp_prune_plan_free(plan);
        po.rates.target_rate = q;
        s = lp_prune_plan_make(m, need ? st : NULL, &po, plan);
    }
    if (need)
        for (int g = 0; g < m->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

/* The sizes the rule (given or sensitivity) gives the unpruned model: where the iterative steps end. */
static lp_status final_sizes(state *st, int *final_k) {
    lp_prune_plan p;
    LP_TRY(lp_prune_plan_run(st->before, &st->po, &p));
    for (int g = 0; g < p.n_groups; g++) final_k[g] = p.g[g].k;
    lp_prune_plan_free(&p);
    return LP_OK;
}

/* Step i of n towards final sizes: group g keeps h0 − round((h0 − final)·i/n) of its original units. */
static void step_sizes(lp_prune_opts *po, const int *h0, const int *final_k, int i, int n, int n_groups) {
    po->rates.rule = LP_RATE_RULE_GIVEN;
    po->rates.target_rate = -1;
    for (int g = 0; g < n_groups; g++) po->given_k[g] = h0[g] - (int)llround((double)(h0[g] - final_k[g]) * i / n);
}

/* Iterative: step i prunes the current model towards mean rate r·i/N of the ORIGINAL sizes (step_plan),
 * or, under the given and sensitivity rules, towards the final sizes in equal steps of units (step_sizes);
 * the kept indices are composed so the final plan maps original units to survivors. */
static lp_status run_iterative(const lp_pipeline_opts *o, state *st) {
    LP_TRY(baseline(o, st));
    LP_TRY(method_for(o, st->before, st->before_ckpt, st));
    const double r = o->prune.rates.target_rate;
    const int by_units = st->po.rates.rule == LP_RATE_RULE_GIVEN || st->po.rates.rule == LP_RATE_RULE_SENSITIVITY;
    if (r < 0 && !by_units) return lp_errorf(LP_ERR_ARG, "the iterative schedule needs --target-rate");
    int final_k[LP_MAX_GROUPS];
    if (by_units) LP_TRY(final_sizes(st, final_k));
    int n_steps = o->iterative_steps;
    int *map[LP_MAX_GROUPS], nmap[LP_MAX_GROUPS], h0[LP_MAX_GROUPS];
    for (int g = 0; g < st->before->n_groups; g++) {
        h0[g] = nmap[g] = st->before->groups[g].units;
        map[g] = lp_malloc((size_t)nmap[g], sizeof(int));
        if (!map[g]) return LP_ERR_NOMEM;
        for (int j = 0; j < nmap[g]; j++) map[g][j] = j;
    }
    lp_status s = LP_OK;
    char cur[4096], path[4096], dir[4096];
    snprintf(cur, sizeof cur, "%s", st->before_ckpt);
    for (int i = 1; i <= n_steps && s == LP_OK; i++) {
        lp_task *m;
        s = load_task(o, cur, &st->cfg, &m);
        if (s != LP_OK) break;
        double done = r * (i - 1) / n_steps, want = r * i / n_steps;
        lp_prune_opts po = st->po;
        po.rates.target_rate = 1.0 - (1.0 - want) / (1.0 - done); /* the first guess, exact without rounding */
        po.seed = o->prune.seed + (uint64_t)i;
        if (by_units) step_sizes(&po, h0, final_k, i, n_steps, st->before->n_groups);
        lp_prune_plan plan;
        snprintf(dir, sizeof dir, "%s/step%d", o->out_dir, i);
        s = lp_mkdirs(dir);
        if (s == LP_OK) s = by_units ? lp_prune_plan_run(m, &po, &plan) : step_plan(m, po, h0, want, &plan);
        if (s == LP_OK) {
            lp_task *pruned;
            s = lp_surgery_shrink(m, &plan, &pruned);
            if (s == LP_OK) {
                s = save_model(pruned, &st->cfg, &plan, lp_rundir_path(dir, "pruned.ckpt", path, sizeof path));
                lp_task_free(pruned);
            }
            for (int g = 0; g < plan.n_groups && s == LP_OK; g++) {
                for (int j = 0; j < plan.g[g].k; j++) map[g][j] = map[g][plan.g[g].kept[j]];
                nmap[g] = plan.g[g].k;
            }
            if (i == 1) st->plan = plan, st->have_plan = 1; /* spectra of the original model */
            else lp_prune_plan_free(&plan);
        }
        lp_task_free(m);
        if (s == LP_OK) {
            char ft[4096];
            snprintf(st->pruned_ckpt, sizeof st->pruned_ckpt, "%s", path);
            s = finetune(o, st, st->pruned_ckpt, lp_rundir_path(dir, "finetune", ft, sizeof ft));
            snprintf(cur, sizeof cur, "%s", st->final_ckpt);
        }
    }
    /* The report's plan: original sizes → final sizes, with the original spectra. */
    for (int g = 0; s == LP_OK && g < st->plan.n_groups; g++) {
        lp_prune_group_plan *gp = &st->plan.g[g];
        gp->k = nmap[g];
        memcpy(gp->kept, map[g], (size_t)nmap[g] * sizeof(int));
        gp->rate = 1.0 - (double)gp->k / gp->h;
    }
    double rs = 0;
    for (int g = 0; g < st->plan.n_groups; g++) rs += st->plan.g[g].rate;
    if (st->plan.n_groups) st->plan.rates.mean_rate = rs / st->plan.n_groups;
    st->plan.rates.target_rate = r;
    st->plan.opts.rates.rule = o->prune.rates.rule; /* step 1's plan says `given` when the steps were sizes */
    for (int g = 0; g < st->before->n_groups; g++) lp_free(map[g]);
    return s;
}

static lp_status run_soft(const lp_pipeline_opts *o, state *st) {
    char path[4096];
    soft_ctx c = {o, st, o->prune_every > 0 ? o->prune_every : 50, 0};
    lp_train_hooks h = {0};
    h.user = &c;
    h.after_update = soft_hook;
    say(o, "== soft-pruning training into %s/soft", o->out_dir);
    LP_TRY(train_run(o, o->cfg, NULL, lp_rundir_path(o->out_dir, "soft", path, sizeof path), o->baseline_ckpt, 0, 0, &h));
    /* The last epoch's weights, masked by a plan on them, are the model to shrink. */
    snprintf(st->before_ckpt, sizeof st->before_ckpt, "%s/soft/last.ckpt", o->out_dir);
    LP_TRY(open_before(o, st));
    LP_TRY(method_for(o, st->before, NULL, st));
    LP_TRY(lp_prune_plan_run(st->before, &st->po, &st->plan));
    st->have_plan = 1;
    LP_TRY(lp_surgery_mask(st->before, &st->plan)); /* the "masked" model the public code ends with */
    return shrink_save_finetune(o, st);
}

/* ISS: training with the group-lasso term λ Σ_units ||footprint|| (prune/iss.h), from the baseline when one
 * is given, with the run's "iss.*" keys over the training settings; then the units whose norm is below
 * the threshold are removed. Two ways: proximal steps after each update (lp_iss_prox: whole units go
 * exactly to zero, what a subgradient alone never does under Adam), or Wen et al.'s subgradient with the
 * units below the threshold zeroed after each update. */
static lp_status run_iss(const lp_pipeline_opts *o, state *st) {
    char path[4096];
    lp_kv c; /* the ISS run's settings, for its learning rate */
    lp_kv_init(&c);
    lp_status s = kv_copy(&c, o->cfg);
    if (s == LP_OK) s = apply_prefixed(&c, o->cfg, "iss.");
    lp_iss_state iss = {.lambda = o->iss_lambda};
    const double lr = lp_kv_get_double_or(&c, "train.lr", 2e-4);
    if (o->iss_method == LP_ISS_PROX) iss.lr = lr;
    else iss.zero_threshold = o->iss_threshold;
    lp_kv_free(&c);
    LP_TRY(s);
    /* a threshold of 0 keeps every unit (every norm is >= 0), and training at lr 0 moves nothing */
    if (!(o->iss_threshold > 0)) return lp_errorf(LP_ERR_ARG, "the iss schedule needs --iss-threshold > 0");
    if (o->iss_lambda > 0 && !(lr > 0)) return lp_errorf(LP_ERR_ARG, "the iss schedule needs a learning rate > 0");
    lp_train_hooks h = {.user = &iss, .after_update = lp_iss_update_hook};
    if (o->iss_method == LP_ISS_SUBGRADIENT) h.after_backward = lp_iss_grad_hook;
    if (o->iss_lambda > 0) {
        say(o, "== training with the ISS group lasso into %s/iss", o->out_dir);
        /* from a baseline: its run's settings under the pipeline's; from scratch: the pipeline's */
        lp_kv run;
        lp_kv_init(&run);
        s = o->baseline_ckpt ? ckpt_keys(o->baseline_ckpt, &run) : LP_OK;
        if (s == LP_OK) s = kv_copy(&run, o->cfg);
        if (s == LP_OK) s = train_run(o, &run, "iss.", lp_rundir_path(o->out_dir, "iss", path, sizeof path), o->baseline_ckpt, 0, 0, &h);
        lp_kv_free(&run);
        LP_TRY(s);
        snprintf(st->before_ckpt, sizeof st->before_ckpt, "%s/iss/last.ckpt", o->out_dir);
    } else if (o->baseline_ckpt) {
        /* λ = 0: the checkpoint was trained with the group lasso already (train --iss-lambda); only remove
         * the units below the threshold. */
        snprintf(st->before_ckpt, sizeof st->before_ckpt, "%s", o->baseline_ckpt);
    } else {
        return lp_errorf(LP_ERR_ARG, "the iss schedule needs --iss-lambda > 0 (or a --baseline trained with it)");
    }
    LP_TRY(open_before(o, st));
    LP_TRY(lp_iss_kept(st->before, o->iss_threshold, &st->plan));
    st->have_plan = 1;
    return shrink_save_finetune(o, st);
}

/* ---- measuring and reporting ---- */

static lp_status measure(const lp_pipeline_opts *o, state *st, lp_pipeline_result *res) {
    const char *labels[3] = {o->schedule == LP_SCHED_ONESHOT || o->schedule == LP_SCHED_ITERATIVE ? "baseline"
                             : o->schedule == LP_SCHED_SOFT                                      ? "soft-trained"
                                                                                                 : "iss-trained",
                             "pruned", "fine-tuned"};
    const char *paths[3] = {st->before_ckpt, st->pruned_ckpt, st->final_ckpt};
    int rows = o->finetune_epochs > 0 ? 3 : 2;
    lp_status s = LP_OK;
    for (int i = 0; i < rows && s == LP_OK; i++) {
        lp_task *t = st->before;
        if (i > 0 && (s = load_task(o, paths[i], &st->cfg, &t)) != LP_OK) break;
        s = lp_report_measure(t, labels[i], paths[i], 1, o->lat_batch, o->lat_frames, o->lat_reps, &res->rows[i]);
        if (i > 0) lp_task_free(t);
        res->n_rows = i + 1;
    }
    /* The reference every model must beat (the video task's class prior, which ignores the input). */
    int have = 0;
    if (s == LP_OK) s = lp_report_reference(st->before, &res->rows[res->n_rows], &have);
    res->n_rows += have;
    return s;
}

/* "target": what the schedule aimed at — a mean rate, an energy τ, or, for ISS, nothing but the
 * threshold its rate follows from. */
static lp_status info_target(const lp_pipeline_opts *o, lp_kv *info) {
    if (o->schedule == LP_SCHED_ISS) return lp_kv_setf(info, "target", "none (ISS: threshold %g)", o->iss_threshold);
    if (o->prune.rates.rule == LP_RATE_RULE_GIVEN)
        return o->given_rates  ? lp_kv_setf(info, "target", "per-group rates %s", o->given_rates)
               : o->given_units ? lp_kv_setf(info, "target", "per-group sizes %s", o->given_units)
                                : lp_kv_setf(info, "target", "per-group rates of %s", o->rates_from);
    if (o->prune.rates.rule == LP_RATE_RULE_SENSITIVITY)
        return lp_kv_setf(info, "target", "mean rate %g, split by the sensitivity curves of %s%s", o->prune.rates.target_rate,
                          o->sensitivity_dir ? o->sensitivity_dir : o->out_dir, o->sensitivity_dir ? "" : "/sensitivity");
    if (o->prune.rates.target_rate >= 0) return lp_kv_setf(info, "target", "mean rate %g", o->prune.rates.target_rate);
    return lp_kv_setf(info, "target", "tau %g", o->prune.rates.tau);
}

/* Why the achieved mean rate is more than 0.01 from the target (nothing when it is not): the rates are
 * whole units, so a small group moves the mean in large steps. */
static lp_status info_miss(const lp_pipeline_opts *o, const state *st, lp_kv *info) {
    const double r = o->prune.rates.target_rate, miss = st->plan.rates.mean_rate - r;
    if (o->schedule == LP_SCHED_ISS || r < 0 || fabs(miss) <= 0.01) return LP_OK;
    const lp_rate_rule rule = o->prune.rates.rule;
    return lp_kv_setf(info, "target_missed_by", "%+.4f: %s", miss,
                      rule == LP_RATE_RULE_UNIFORM ? "the uniform rule rounds r x units to whole units in every group"
                      : rule == LP_RATE_RULE_SENSITIVITY
                          ? "no cost budget gives a mean rate nearer the target (whole units per group; no group goes "
                            "past its largest analysed rate)"
                          : "no energy threshold tau gives a mean rate nearer the target (whole units per group)");
}

/* The report's key/values (report.md lists them with '_' shown as ' '). */
static lp_status report_info(const lp_pipeline_opts *o, const state *st, lp_kv *info) {
    lp_status s = lp_kv_set(info, "schedule", lp_schedule_name(o->schedule));
    if (s == LP_OK && o->schedule != LP_SCHED_ISS) s = lp_kv_set(info, "rate_rule", lp_rate_rule_name(o->prune.rates.rule));
    if (s == LP_OK)
        s = lp_kv_set(info, "criterion", o->schedule == LP_SCHED_ISS ? "iss group lasso" : lp_criterion_name(o->prune.criterion));
    if (s == LP_OK && o->prune.compensate) s = lp_kv_set(info, "compensation", "mean responses of the removed units in the biases");
    if (s == LP_OK) s = info_target(o, info);
    if (s == LP_OK) s = lp_kv_setf(info, "achieved_mean_rate", "%.4f", st->plan.rates.mean_rate);
    if (s == LP_OK) s = info_miss(o, st, info);
    if (s == LP_OK && o->schedule == LP_SCHED_ISS) s = lp_kv_setf(info, "iss_lambda", "%g", o->iss_lambda);
    if (s == LP_OK && o->baseline_ckpt) s = lp_kv_set(info, "source_checkpoint", o->baseline_ckpt);
    if (s == LP_OK) s = lp_kv_set(info, "unpruned_model", st->before_ckpt);
    if (s == LP_OK) s = lp_kv_setf(info, "finetune_epochs", "%d", o->finetune_epochs);
    const char *ev = lp_kv_get(&st->cfg, "data.test");
    if (!ev || !*ev) ev = lp_kv_get(&st->cfg, "data.valid");
    if (!ev) ev = lp_kv_get(&st->cfg, "data.dir");
    if (s == LP_OK) s = lp_kv_set(info, "evaluation_data", ev ? ev : "(none)");
    return s;
}

/* DIR/command.txt and DIR/config.txt: what produced the directory, so that a report can be traced and
 * the run repeated (written first: a run that fails still says what it was asked to do). */
static lp_status record_run(const lp_pipeline_opts *o) {
    char path[4096];
    lp_status s = lp_rundir_write_command(o->out_dir, o->command);
    lp_kv c;
    lp_kv_init(&c);
    if (s == LP_OK) s = kv_copy(&c, o->cfg);
    if (s == LP_OK) s = lp_kv_set(&c, "prune.schedule", lp_schedule_name(o->schedule));
    if (o->schedule == LP_SCHED_ISS) { /* the threshold decides; rule, criterion and target play no part */
        if (s == LP_OK) s = lp_kv_setf(&c, "prune.iss_lambda", "%g", o->iss_lambda);
        if (s == LP_OK) s = lp_kv_setf(&c, "prune.iss_threshold", "%g", o->iss_threshold);
    } else {
        if (s == LP_OK) s = lp_kv_set(&c, "prune.rule", lp_rate_rule_name(o->prune.rates.rule));
        if (s == LP_OK) s = lp_kv_set(&c, "prune.criterion", lp_criterion_name(o->prune.criterion));
        if (s == LP_OK && o->prune.rates.target_rate >= 0) s = lp_kv_setf(&c, "prune.target_rate", "%g", o->prune.rates.target_rate);
        if (s == LP_OK && o->prune.rates.target_rate < 0 && o->prune.rates.rule == LP_RATE_RULE_EIGEN)
            s = lp_kv_setf(&c, "prune.tau", "%g", o->prune.rates.tau);
    }
    if (s == LP_OK) s = lp_kv_set_int(&c, "prune.finetune_epochs", o->finetune_epochs);
    if (s == LP_OK && o->baseline_ckpt) s = lp_kv_set(&c, "prune.checkpoint", o->baseline_ckpt);
    if (s == LP_OK) s = lp_kv_write_file(&c, lp_rundir_path(o->out_dir, "config.txt", path, sizeof path));
    lp_kv_free(&c);
    return s;
}

lp_status lp_pipeline_run(const lp_pipeline_opts *o, lp_pipeline_result *res) {
    memset(res, 0, sizeof *res);
    if (!o->kind) return lp_errorf(LP_ERR_ARG, "pipeline: no task kind");
    state st;
    memset(&st, 0, sizeof st);
    lp_kv_init(&st.cfg);
    if (o->prune.compensate && (o->schedule == LP_SCHED_SOFT || o->schedule == LP_SCHED_ISS))
        return lp_errorf(LP_ERR_ARG, "--compensate mean works with the oneshot and iterative schedules: the %s "
                                     "schedule has driven the removed units to zero before it removes them",
                         lp_schedule_name(o->schedule));
    LP_TRY(rule_fits_schedule(o));
    lp_status s = lp_mkdirs(o->out_dir);
    if (s == LP_OK && o->command && lp_dist_lead()) s = record_run(o);
    if (s == LP_OK) {
        switch (o->schedule) {
        case LP_SCHED_ONESHOT: s = run_oneshot(o, &st); break;
        case LP_SCHED_ITERATIVE: s = run_iterative(o, &st); break;
        case LP_SCHED_SOFT: s = run_soft(o, &st); break;
        case LP_SCHED_ISS: s = run_iss(o, &st); break;
        }
    }
    if (s == LP_OK) {
        say(o, "== measuring (latency, metrics) and writing %s/report.md", o->out_dir);
        s = measure(o, &st, res);
    }
    if (s == LP_OK) {
        res->mean_rate = st.plan.rates.mean_rate;
        res->tau = st.plan.rates.tau;
        res->n_groups = st.plan.n_groups;
        for (int g = 0; g < st.plan.n_groups; g++) {
            lp_pipeline_group *pg = &res->groups[g];
            snprintf(pg->name, sizeof pg->name, "%s", st.plan.g[g].name);
            pg->before = st.plan.g[g].h;
            pg->after = st.plan.g[g].k;
            pg->rate = st.plan.g[g].rate;
            pg->tau = st.plan.g[g].tau;
            pg->energy_kept = st.plan.g[g].energy_kept;
        }
        lp_kv info;
        lp_kv_init(&info);
        s = report_info(o, &st, &info);
        if (s == LP_OK && lp_dist_lead()) s = lp_report_write(o->out_dir, st.before, &st.plan, res->rows, res->n_rows, &info);
        lp_kv_free(&info);
    }
    if (st.have_plan) lp_prune_plan_free(&st.plan);
    lp_task_free(st.before);
    lp_kv_free(&st.cfg);
    return s;
}
