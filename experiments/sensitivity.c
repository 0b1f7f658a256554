/* sensitivity: see sensitivity.h. */
#include "experiments/sensitivity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "model/evaluate.h"
#include "model/runcfg.h"
#include "model/video_task.h"
#include "prune/plan.h"
#include "prune/rates.h"
#include "prune/surgery.h"

int lp_sensitivity_default_rates(double *rates) {
    static const double r[] = {0.1, 0.3, 0.5, 0.7, 0.9};
    memcpy(rates, r, sizeof r);
    return (int)(sizeof r / sizeof r[0]);
}

void lp_sensitivity_opts_default(lp_sensitivity_opts *o) {
    memset(o, 0, sizeof *o);
    o->n_rates = lp_sensitivity_default_rates(o->rates);
    o->criterion = LP_CRITERION_GM;
    o->seed = 1;
    o->max_drop = 0.01;
    o->stats_batches = 20;
}

double lp_sensitivity_suggest(const double *rates, const double *drops, int n, double max_drop) {
    double best = 0;
    for (int i = 0; i < n; i++) {
        if (!(drops[i] <= max_drop)) break; /* NaN counts as too much */
        best = rates[i];
    }
    return best;
}

static const char *path_in(const char *dir, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%.3000s/%.1000s", dir, name);
    return buf;
}

lp_status lp_sensitivity_keep_count(int h, double r, int *k) {
    lp_rate_group g;
    LP_TRY(lp_rate_group_from_eig(&g, NULL, h));
    lp_rates_opts ro;
    lp_rates_opts_default(&ro);
    ro.rule = LP_RATE_RULE_UNIFORM;
    ro.target_rate = r;
    lp_status s = lp_rates_assign(&g, 1, &ro, NULL);
    *k = g.k;
    lp_rate_group_free(&g);
    return s;
}

lp_status lp_sensitivity_rates(const double *rates, int n, double *sorted) {
    if (n < 1 || n > LP_SENSITIVITY_MAX_RATES)
        return lp_errorf(LP_ERR_ARG, "sensitivity: 1 to %d rates, got %d", LP_SENSITIVITY_MAX_RATES, n);
    for (int i = 0; i < n; i++)
        if (!(rates[i] > 0 && rates[i] < 1)) return lp_errorf(LP_ERR_ARG, "sensitivity: rate %g is not in (0, 1)", rates[i]);
    memcpy(sorted, rates, (size_t)n * sizeof *sorted);
    for (int i = 1; i < n; i++) /* insertion sort: a handful of rates */
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            double t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    return LP_OK;
}

lp_status lp_sensitivity_plot(const char *dir, const lp_sensitivity_curves *c, int *plot) {
    char path[4096];
    lp_atomic_file af;
    *plot = 0;
    LP_TRY(lp_atomic_open(&af, path_in(dir, "sensitivity.gp", path, sizeof path)));
    FILE *g = af.f;
    fprintf(g, "# `gnuplot sensitivity.gp` in this directory\nset terminal pngcairo size 900,560 noenhanced\n"
               "set output 'sensitivity.png'\nset grid\nset key outside right top\n");
    for (int k = 0; k < c->n_groups; k++) {
        fprintf(g, "$G%d << EOD\n0 %.6f\n", k, c->base);
        for (int i = 0; i < c->n_rates; i++) fprintf(g, "%.4f %.6f\n", c->rates[i], c->y[k * c->n_rates + i]);
        fprintf(g, "EOD\n");
    }
    fprintf(g, "set title '%s'\nset xlabel 'pruning rate of the group'\nset ylabel '%s'\nset xrange [0:1]\n", c->title,
            c->ylabel);
    fprintf(g, "plot ");
    for (int k = 0; k < c->n_groups; k++)
        fprintf(g, "%s$G%d using 1:2 with linespoints lw 2 title '%s (%d units)'", k ? ", " : "", k, c->group[k], c->units[k]);
    fprintf(g, ", %.6f with lines dt 2 lc rgb 'black' title '%s'\n", c->limit, c->limit_title);
    LP_TRY(lp_atomic_commit(&af));
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) return LP_OK;
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot sensitivity.gp >/dev/null 2>&1", dir);
    struct stat st;
    *plot = system(cmd) == 0 && stat(path_in(dir, "sensitivity.png", path, sizeof path), &st) == 0 && st.st_size > 0;
    return LP_OK;
}

/* Shrink group g of m to `kept` (k units), all others whole, and evaluate; with the plan's means
 * (compensation), the removed units' mean responses go into the biases that read them first. */
static lp_status eval_pruned(const lp_task *t, int g, const int *kept, int k, const lp_prune_plan *all,
                             const lp_batcher_config *bc, int top_k, lp_metrics_result *out) {
    int *lists[LP_MAX_GROUPS], n_kept[LP_MAX_GROUPS];
    for (int i = 0; i < all->n_groups; i++) lists[i] = all->g[i].kept, n_kept[i] = all->g[i].k;
    lists[g] = (int *)kept;
    n_kept[g] = k;
    lp_prune_plan plan;
    LP_TRY(lp_prune_plan_from_kept(t, lists, n_kept, &plan));
    plan.opts.compensate = all->opts.compensate;
    lp_status s = LP_OK;
    for (int i = 0; i < plan.n_groups && s == LP_OK && all->g[i].mean; i++) {
        plan.g[i].mean = lp_malloc((size_t)plan.g[i].h, sizeof(double));
        if (!plan.g[i].mean) s = LP_ERR_NOMEM;
        else memcpy(plan.g[i].mean, all->g[i].mean, (size_t)plan.g[i].h * sizeof(double));
    }
    lp_task *small = NULL;
    if (s == LP_OK) s = lp_surgery_shrink(t, &plan, &small);
    lp_prune_plan_free(&plan);
    LP_TRY(s);
    lp_eval_result er;
    s = lp_evaluate(lp_video_task_model(small), bc, top_k, NULL, NULL, &er);
    if (s == LP_OK) *out = er.m;
    lp_task_free(small);
    return s;
}

static lp_status write_outputs(const lp_sensitivity_opts *o, lp_sensitivity_result *r, int top_k) {
    char path[4096];
    lp_atomic_file af;
    LP_TRY(lp_mkdirs(o->out_dir));
    LP_TRY(lp_atomic_open(&af, path_in(o->out_dir, "sensitivity.csv", path, sizeof path)));
    fprintf(af.f, "group,units,rate,kept,gap,map,hit1,perr,gap_drop\n");
    for (int g = 0; g < r->n_groups; g++) {
        fprintf(af.f, "%s,%d,0.0000,%d,%.6f,%.6f,%.6f,%.6f,0.000000\n", r->group[g], r->units[g], r->units[g], r->base.gap,
                r->base.map, r->base.hit1, r->base.perr);
        for (int i = 0; i < r->n_rates; i++) {
            const lp_metrics_result *m = &r->m[g][i];
            fprintf(af.f, "%s,%d,%.4f,%d,%.6f,%.6f,%.6f,%.6f,%.6f\n", r->group[g], r->units[g], r->rates[i], r->kept[g][i], m->gap,
                    m->map, m->hit1, m->perr, r->base.gap - m->gap);
        }
    }
    LP_TRY(lp_atomic_commit(&af));

    /* suggested.txt: per group, and the sizes a uniform-per-group prune at those rates gives */
    LP_TRY(lp_atomic_open(&af, path_in(o->out_dir, "suggested.txt", path, sizeof path)));
    fprintf(af.f, "# largest tested rate per group whose GAP@%d drop stays <= %g (at it and at every smaller rate)\n", top_k,
            o->max_drop);
    char units[256] = "";
    size_t off = 0;
    for (int g = 0; g < r->n_groups; g++) {
        int k;
        if (lp_sensitivity_keep_count(r->units[g], r->suggested[g], &k) != LP_OK) k = r->units[g];
        fprintf(af.f, "%s = %.4f\n", r->group[g], r->suggested[g]);
        if (off < sizeof units) off += (size_t)snprintf(units + off, sizeof units - off, g ? ",%d" : "%d", k);
    }
    fprintf(af.f, "model.units = %s\n", units);
    LP_TRY(lp_atomic_commit(&af));

    /* the GAP curves */
    char title[160];
    snprintf(title, sizeof title, "Sensitivity: one unit group pruned at a time (%s, no fine-tuning)",
             lp_criterion_name(o->criterion));
    char ylabel[32];
    snprintf(ylabel, sizeof ylabel, "GAP@%d", top_k);
    double y[LP_MAX_GROUPS * LP_SENSITIVITY_MAX_RATES];
    for (int k = 0; k < r->n_groups; k++)
        for (int i = 0; i < r->n_rates; i++) y[k * r->n_rates + i] = r->m[k][i].gap;
    lp_sensitivity_curves c = {.title = title, .ylabel = ylabel, .limit_title = "baseline - max drop",
                               .n_groups = r->n_groups, .n_rates = r->n_rates, .group = r->group, .units = r->units,
                               .rates = r->rates, .y = y, .base = r->base.gap, .limit = r->base.gap - o->max_drop};
    LP_TRY(lp_sensitivity_plot(o->out_dir, &c, &r->plot));

    LP_TRY(lp_atomic_open(&af, path_in(o->out_dir, "sensitivity.md", path, sizeof path)));
    FILE *f = af.f;
    fprintf(f, "# lstmprune sensitivity\n\n- model: %s\n- criterion: %s%s; no fine-tuning; one group pruned at a time\n"
               "- unpruned: GAP@%d %.4f, mAP %.4f, Hit@1 %.4f, PERR %.4f\n\n",
            o->ckpt, lp_criterion_name(o->criterion), o->compensate ? ", mean compensation" : "", top_k, r->base.gap,
            r->base.map, r->base.hit1, r->base.perr);
    fprintf(f, "GAP@%d when only this group is pruned at the rate:\n\n| group | units |", top_k);
    for (int i = 0; i < r->n_rates; i++) fprintf(f, " r=%.2f |", r->rates[i]);
    fprintf(f, " suggested rate |\n|---|---:|");
    for (int i = 0; i <= r->n_rates; i++) fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int k = 0; k < r->n_groups; k++) {
        fprintf(f, "| %s | %d |", r->group[k], r->units[k]);
        for (int i = 0; i < r->n_rates; i++) fprintf(f, " %.4f |", r->m[k][i].gap);
        fprintf(f, " %.2f |\n", r->suggested[k]);
    }
    fprintf(f, "\nSuggested rate: the largest tested rate whose GAP drop stays within %g at it and at every smaller rate "
               "(suggested.txt has the resulting model.units). The groups interact, so pruning all of them at these "
               "rates together costs more than each drop alone; fine-tuning recovers part of it.\n",
            o->max_drop);
    if (r->plot) fprintf(f, "\n![sensitivity](sensitivity.png)\n");
    return lp_atomic_commit(&af);
}

/* The scoring plan with each group's mean responses: statistics over `batches` training batches. */
static lp_status plan_with_means(lp_task *t, int batches, const lp_prune_opts *po, lp_prune_plan *plan) {
    char **pats;
    int n;
    LP_TRY(lp_runcfg_patterns(lp_video_task_cfg(t), "train", &pats, &n));
    lp_runcfg_free_patterns(pats, n);
    if (n == 0) return lp_errorf(LP_ERR_ARG, "sensitivity: --compensate needs training data (data.train in the checkpoint)");
    lp_stats st[LP_MAX_GROUPS];
    LP_TRY(lp_prune_stats(t, batches, LP_STATS_STEPS_ALL, st));
    lp_status s = lp_prune_plan_make(t, st, po, plan);
    for (int g = 0; g < t->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

lp_status lp_sensitivity_run(const lp_sensitivity_opts *o, lp_sensitivity_result *res_out) {
    double sorted[LP_SENSITIVITY_MAX_RATES];
    LP_TRY(lp_sensitivity_rates(o->rates, o->n_rates, sorted));
    if (!(o->max_drop >= 0)) return lp_errorf(LP_ERR_ARG, "sensitivity: --max-drop must be >= 0");
    lp_sensitivity_result *r = res_out ? res_out : lp_calloc(1, sizeof *r);
    if (!r) return LP_ERR_NOMEM;
    memset(r, 0, sizeof *r);
    lp_task *t = NULL;
    lp_model *m = NULL;
    lp_kv cfg;
    lp_kv_init(&cfg);
    char **pats = NULL;
    int n_pats = 0;
    lp_prune_plan plan;
    int have_plan = 0;
    lp_status s = lp_video_task_load(o->ckpt, o->cfg, &t);
    if (s == LP_OK) {
        m = lp_video_task_model(t);
        s = lp_kv_merge(&cfg, lp_video_task_cfg(t));
    }
    if (s == LP_OK) s = lp_runcfg_patterns(&cfg, "valid", &pats, &n_pats);
    if (s == LP_OK && n_pats == 0) {
        lp_runcfg_free_patterns(pats, n_pats);
        s = lp_runcfg_patterns(&cfg, "test", &pats, &n_pats);
        if (s == LP_OK && n_pats == 0) s = lp_errorf(LP_ERR_ARG, "sensitivity: no evaluation data (--data GLOB, or data.valid in the checkpoint)");
    }
    lp_batcher_config bc;
    if (s == LP_OK) s = lp_runcfg_batcher(&cfg, pats, n_pats, 0, &bc);
    int top_k = (int)lp_kv_get_int_or(&cfg, "train.top_k", 20);
    lp_eval_result er;
    if (s == LP_OK) s = lp_evaluate(m, &bc, top_k, NULL, NULL, &er);
    if (s == LP_OK) {
        r->base = er.m;
        r->n_groups = m->n_groups;
        r->n_rates = o->n_rates;
        memcpy(r->rates, sorted, (size_t)o->n_rates * sizeof(double));
        /* Scores of every unit: a uniform plan at rate 0 scores all groups and keeps everything. */
        lp_prune_opts po;
        lp_prune_opts_default(&po);
        po.rates.rule = LP_RATE_RULE_UNIFORM;
        po.rates.target_rate = 0;
        po.criterion = o->criterion;
        po.seed = o->seed;
        po.compensate = o->compensate;
        s = o->compensate ? plan_with_means(t, o->stats_batches, &po, &plan) : lp_prune_plan_make(t, NULL, &po, &plan);
        have_plan = s == LP_OK;
    }
    if (!o->quiet && s == LP_OK)
        fprintf(stderr, "unpruned: GAP@%d %.4f (%lld videos); %d groups x %d rates\n", top_k, r->base.gap, (long long)er.videos,
                r->n_groups, r->n_rates);
    int *kept = NULL;
    for (int g = 0; s == LP_OK && g < m->n_groups; g++) {
        int h = m->groups[g].units;
        snprintf(r->group[g], sizeof r->group[g], "%s", m->groups[g].name);
        r->units[g] = h;
        kept = lp_malloc((size_t)h, sizeof(int));
        if (!kept) s = LP_ERR_NOMEM;
        double drops[LP_SENSITIVITY_MAX_RATES];
        for (int i = 0; s == LP_OK && i < r->n_rates; i++) {
            int k = h;
            s = lp_sensitivity_keep_count(h, r->rates[i], &k);
            if (s == LP_OK) s = lp_criteria_select(plan.g[g].score, h, k, kept);
            if (s == LP_OK) s = eval_pruned(t, g, kept, k, &plan, &bc, top_k, &r->m[g][i]);
            r->kept[g][i] = k;
            drops[i] = r->base.gap - r->m[g][i].gap;
            if (s == LP_OK && !o->quiet)
                fprintf(stderr, "  %-10s rate %.2f: %4d of %4d units, GAP@%d %.4f (drop %+.4f)\n", r->group[g], r->rates[i], k, h,
                        top_k, r->m[g][i].gap, drops[i]);
        }
        if (s == LP_OK) r->suggested[g] = lp_sensitivity_suggest(r->rates, drops, r->n_rates, o->max_drop);
        lp_free(kept);
        kept = NULL;
    }
    if (s == LP_OK) s = write_outputs(o, r, top_k);
    if (have_plan) lp_prune_plan_free(&plan);
    lp_runcfg_free_patterns(pats, n_pats);
    lp_task_free(t);
    lp_kv_free(&cfg);
    if (!res_out) lp_free(r);
    return s;
}
