/* lm_sensitivity: see lm_sensitivity.h. */
#include "lm/lm_sensitivity.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas_env.h"
#include "core/fileio.h"
#include "lm/lm_prune.h"
#include "lm/lm_task.h"
#include "model/runcfg.h"
#include "prune/surgery.h"

void lp_lm_sensitivity_opts_default(lp_lm_sensitivity_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_rates = lp_sensitivity_default_rates(o->rates);
    o->criterion = LP_CRITERION_GM;
    o->seed = 1;
    o->max_rise = 0.05;
    o->stats_batch = 20;
    o->stats_bptt = 35;
    o->eval_batch = 20;
    o->eval_bptt = 35;
    o->threads = 1;
}

/* What one run holds from start to end; run_free releases all of it. */
typedef struct {
    const lp_lm_sensitivity_opts *o;
    const lp_ptb_corpus *corpus; /* the caller's, or &own */
    lp_ptb_corpus own;
    lp_task *base;
    lp_kv meta;
    lp_prune_plan plan; /* every unit scored, every layer whole (k = H); the means with compensate */
    char data_dir[4096];
} sens_run;

static void run_free(sens_run *r) {
    lp_prune_plan_free(&r->plan);
    lp_task_free(r->base);
    lp_ptb_corpus_free(&r->own);
    lp_kv_free(&r->meta);
}

static lp_status valid_ppl(lp_task *t, double *ppl) {
    lp_score sc;
    LP_TRY(lp_task_score(t, LP_SPLIT_VALID, &sc));
    *ppl = lp_score_primary(&sc);
    return LP_OK;
}

/* The scoring plan: a uniform plan at rate 0 scores every unit of every layer and keeps everything; with
 * compensation it also holds each layer's mean responses (statistics over training windows). */
static lp_status score_units(sens_run *r) {
    const lp_lm_sensitivity_opts *o = r->o;
    lp_prune_opts po;
    lp_prune_opts_default(&po);
    po.stats_batches = o->stats_windows;
    po.rates.rule = LP_RATE_RULE_UNIFORM;
    po.rates.target_rate = 0;
    po.criterion = o->criterion;
    po.seed = o->seed;
    po.compensate = o->compensate;
    if (!o->compensate) return lp_prune_plan_make(r->base, NULL, &po, &r->plan);
    lp_stats st[LP_MAX_GROUPS];
    if (!o->quiet) fprintf(stderr, "lm-sensitivity: response statistics for the compensation\n");
    LP_TRY(lp_prune_stats(r->base, o->stats_windows, LP_STATS_STEPS_ALL, st));
    lp_status s = lp_prune_plan_make(r->base, st, &po, &r->plan);
    for (int l = 0; l < r->base->n_groups; l++) lp_stats_free(&st[l]);
    return s;
}

/* Layer l alone keeps the k best-scored of its units (kept: room for H_l); the model so shrunk is
 * evaluated. The plan is left as it was (layer l whole). */
static lp_status try_rate(sens_run *r, int l, int k, int *kept, double *ppl) {
    lp_prune_group_plan *g = &r->plan.g[l];
    LP_TRY(lp_criteria_select(g->score, g->h, k, kept));
    int *whole = g->kept;
    g->kept = kept;
    g->k = k;
    lp_task *small;
    lp_status s = lp_surgery_shrink(r->base, &r->plan, &small);
    g->kept = whole;
    g->k = g->h;
    LP_TRY(s);
    s = valid_ppl(small, ppl);
    lp_task_free(small);
    return s;
}

static lp_status try_layer(sens_run *r, int l, lp_lm_sensitivity_result *res) {
    const int H = res->units[l];
    double rise[LP_SENSITIVITY_MAX_RATES];
    int *kept = lp_malloc((size_t)H, sizeof *kept);
    if (!kept) return LP_ERR_NOMEM;
    lp_status s = LP_OK;
    for (int i = 0; i < res->n_rates && s == LP_OK; i++) {
        int k = H;
        s = lp_sensitivity_keep_count(H, res->rates[i], &k);
        if (s == LP_OK) s = try_rate(r, l, k, kept, &res->ppl[l][i]);
        res->kept[l][i] = k;
        rise[i] = res->ppl[l][i] / res->base_ppl - 1;
        if (s == LP_OK && !r->o->quiet)
            fprintf(stderr, "  %-8s rate %.2f: %5d of %5d units, valid ppl %.3f (%+.2f%%)\n", res->group[l], res->rates[i], k,
                    H, res->ppl[l][i], 100 * rise[i]);
    }
    if (s == LP_OK) res->suggested[l] = lp_sensitivity_suggest(res->rates, rise, res->n_rates, r->o->max_rise);
    lp_free(kept);
    return s;
}

static lp_status write_csv_and_suggestions(const lp_lm_sensitivity_opts *o, const lp_lm_sensitivity_result *r) {
    char path[4096];
    lp_atomic_file af;
    snprintf(path, sizeof path, "%.4000s/sensitivity.csv", o->out_dir);
    LP_TRY(lp_atomic_open(&af, path));
    fprintf(af.f, "layer,units,rate,kept,valid_ppl,ppl_rise\n");
    for (int l = 0; l < r->n_groups; l++) {
        fprintf(af.f, "%s,%d,0.0000,%d,%.6f,0.000000\n", r->group[l], r->units[l], r->units[l], r->base_ppl);
        for (int i = 0; r->prunable[l] && i < r->n_rates; i++)
            fprintf(af.f, "%s,%d,%.4f,%d,%.6f,%.6f\n", r->group[l], r->units[l], r->rates[i], r->kept[l][i], r->ppl[l][i],
                    r->ppl[l][i] / r->base_ppl - 1);
    }
    LP_TRY(lp_atomic_commit(&af));

    snprintf(path, sizeof path, "%.4000s/suggested.txt", o->out_dir);
    LP_TRY(lp_atomic_open(&af, path));
    fprintf(af.f, "# largest tested rate per layer whose validation perplexity rise stays <= %g (relative; at it and at "
                  "every smaller rate)\n",
            o->max_rise);
    char units[256] = "";
    size_t off = 0;
    for (int l = 0; l < r->n_groups; l++) {
        int k;
        if (lp_sensitivity_keep_count(r->units[l], r->suggested[l], &k) != LP_OK) k = r->units[l];
        fprintf(af.f, "%s = %.4f%s\n", r->group[l], r->suggested[l], r->prunable[l] ? "" : "  # tied: never pruned");
        if (off < sizeof units) off += (size_t)snprintf(units + off, sizeof units - off, l ? ",%d" : "%d", k);
    }
    fprintf(af.f, "lm.units = %s\n", units);
    return lp_atomic_commit(&af);
}

static lp_status write_md(const lp_lm_sensitivity_opts *o, const lp_lm_sensitivity_result *r, const char *data_dir) {
    char path[4096];
    lp_atomic_file af;
    snprintf(path, sizeof path, "%.4000s/sensitivity.md", o->out_dir);
    LP_TRY(lp_atomic_open(&af, path));
    FILE *f = af.f;
    fprintf(f, "# lstmprune lm-sensitivity\n\n- model: %s\n- data: %s (validation split; batch %d, window %d)\n"
               "- criterion: %s%s; no fine-tuning; one layer pruned at a time\n- unpruned: validation perplexity %.3f\n\n",
            o->checkpoint, data_dir, o->eval_batch, o->eval_bptt, lp_criterion_name(o->criterion),
            o->compensate ? ", mean compensation" : "", r->base_ppl);
    fprintf(f, "Validation perplexity when only this layer is pruned at the rate:\n\n| layer | units |");
    for (int i = 0; i < r->n_rates; i++) fprintf(f, " r=%.2f |", r->rates[i]);
    fprintf(f, " suggested rate |\n|---|---:|");
    for (int i = 0; i <= r->n_rates; i++) fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int l = 0; l < r->n_groups; l++) {
        fprintf(f, "| %s | %d |", r->group[l], r->units[l]);
        for (int i = 0; i < r->n_rates; i++)
            if (r->prunable[l]) fprintf(f, " %.3f |", r->ppl[l][i]);
            else fprintf(f, " — |");
        if (r->prunable[l]) fprintf(f, " %.2f |\n", r->suggested[l]);
        else fprintf(f, " tied: never pruned |\n");
    }
    fprintf(f, "\nSuggested rate: the largest tested rate whose perplexity rise stays within %g%% of the unpruned "
               "perplexity at it and at every smaller rate (suggested.txt has the resulting lm.units). The layers interact, "
               "so pruning all of them at these rates together costs more than each rise alone; fine-tuning recovers "
               "part of it.\n",
            100 * o->max_rise);
    if (r->plot) fprintf(f, "\n![sensitivity](sensitivity.png)\n");
    return lp_atomic_commit(&af);
}

/* Perplexity curves of the layers tried. */
static lp_status write_plot(const lp_lm_sensitivity_opts *o, lp_lm_sensitivity_result *r) {
    char group[LP_LM_MAX_LAYERS][24];
    int units[LP_LM_MAX_LAYERS], n = 0;
    double y[LP_LM_MAX_LAYERS * LP_SENSITIVITY_MAX_RATES];
    for (int l = 0; l < r->n_groups; l++) {
        if (!r->prunable[l]) continue;
        memcpy(group[n], r->group[l], sizeof group[n]);
        units[n] = r->units[l];
        memcpy(&y[n * r->n_rates], r->ppl[l], (size_t)r->n_rates * sizeof(double));
        n++;
    }
    char title[128];
    snprintf(title, sizeof title, "Sensitivity: one LSTM layer pruned at a time (%s, no fine-tuning)",
             lp_criterion_name(o->criterion));
    lp_sensitivity_curves c = {.title = title, .ylabel = "validation perplexity", .limit_title = "baseline + max rise",
                               .n_groups = n, .n_rates = r->n_rates, .group = group, .units = units, .rates = r->rates,
                               .y = y, .base = r->base_ppl, .limit = r->base_ppl * (1 + o->max_rise)};
    return lp_sensitivity_plot(o->out_dir, &c, &r->plot);
}

static lp_status run_all(sens_run *r, lp_lm_sensitivity_result *res) {
    const lp_lm_sensitivity_opts *o = r->o;
    lp_lm base;
    LP_TRY(lp_lm_prune_load_base(o->checkpoint, o->data_dir, &base, &r->meta, &r->own, &r->corpus, r->data_dir,
                                 sizeof r->data_dir));
    LP_TRY(lp_lm_task_new(&base, r->corpus, &r->base));
    lp_lm_task *bt = lp_lm_task_of(r->base);
    bt->stats_batch = o->stats_batch, bt->stats_bptt = o->stats_bptt;
    bt->eval_batch = o->eval_batch, bt->eval_bptt = o->eval_bptt;
    LP_TRY(valid_ppl(r->base, &res->base_ppl));
    LP_TRY(score_units(r));
    res->n_groups = r->base->n_groups;
    if (!o->quiet)
        fprintf(stderr, "unpruned: validation perplexity %.3f; %d layers x %d rates\n", res->base_ppl, res->n_groups,
                res->n_rates);
    for (int l = 0; l < res->n_groups; l++) {
        snprintf(res->group[l], sizeof res->group[l], "%s", r->plan.g[l].name);
        res->units[l] = r->plan.g[l].h;
        res->prunable[l] = !r->plan.g[l].fixed;
        for (int i = 0; i < res->n_rates; i++) res->ppl[l][i] = NAN;
        if (res->prunable[l]) LP_TRY(try_layer(r, l, res));
    }
    LP_TRY(lp_mkdirs(o->out_dir));
    LP_TRY(write_csv_and_suggestions(o, res));
    LP_TRY(write_plot(o, res));
    return write_md(o, res, r->data_dir);
}

lp_status lp_lm_sensitivity_run(const lp_lm_sensitivity_opts *o, const lp_ptb_corpus *corpus,
                                lp_lm_sensitivity_result *res_out) {
    if (!o->checkpoint || !o->out_dir)
        return lp_errorf(LP_ERR_ARG, "lm sensitivity: a checkpoint and an output directory are needed");
    if (!(o->max_rise >= 0)) return lp_errorf(LP_ERR_ARG, "lm sensitivity: --max-rise must be >= 0");
    if (o->eval_batch < 1 || o->eval_bptt < 1 || o->stats_batch < 1 || o->stats_bptt < 1 || o->stats_windows < 0)
        return lp_errorf(LP_ERR_ARG, "lm sensitivity: batches and windows must be >= 1 (statistics windows >= 0)");
    lp_lm_sensitivity_result *res = res_out ? res_out : lp_calloc(1, sizeof *res);
    if (!res) return LP_ERR_NOMEM;
    memset(res, 0, sizeof *res);
    lp_status s = lp_sensitivity_rates(o->rates, o->n_rates, res->rates);
    res->n_rates = o->n_rates;
    lp_blas_set_threads(o->threads);
    sens_run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    r.corpus = corpus;
    lp_kv_init(&r.meta);
    if (s == LP_OK) s = run_all(&r, res);
    run_free(&r);
    if (!res_out) lp_free(res);
    return s;
}
