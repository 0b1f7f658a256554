/* sensitivity: see sensitivity.h. */
#include "experiments/sensitivity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/blas_env.h"
#include "core/ckpt.h"
#include "core/dist.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/rundir.h"
#include "experiments/kinds.h"
#include "experiments/writer.h"
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
    o->max_cost = 0.01;
    o->stats_batches = 20;
}

double lp_sensitivity_suggest(const double *rates, const double *costs, int n, double max_cost) {
    double best = 0;
    for (int i = 0; i < n; i++) {
        if (!(costs[i] <= max_cost)) break; /* NaN counts as too much */
        best = rates[i];
    }
    return best;
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

/* One curve per group for gnuplot: (0, base) and (rates[i], y[g·n_rates + i]), and a dashed horizontal
 * line at `limit` titled `limit_title`. */
typedef struct {
    const char *title, *ylabel, *limit_title;
    int n_groups, n_rates;
    char (*group)[24]; /* [n_groups] names (read only) */
    const int *units;
    const double *rates, *y;
    double base, limit;
} curves;

/* sensitivity.gp and, where gnuplot runs, sensitivity.png (*plot = 1 then). */
static lp_status plot_curves(const char *dir, const curves *c, int *plot) {
    lp_writer w;
    *plot = 0;
    LP_TRY(lp_writer_open(&w, dir, "sensitivity.gp", LP_WRITER_TEXT));
    FILE *g = w.f;
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
    LP_TRY(lp_writer_commit(&w));
    static const char *const png[] = {"sensitivity.png"};
    lp_writer_plot p = {.dir = dir, .script = "sensitivity.gp", .png = png, .n = 1};
    *plot = 1;
    lp_writer_gnuplot(&p, plot);
    return LP_OK;
}

/* ---- the run ---- */

/* The split the analysis scores: validation, else test. */
static lp_status score_eval(lp_task *t, lp_score *sc) {
    LP_TRY(lp_task_score(t, LP_SPLIT_VALID, sc));
    if (sc->n == 0) LP_TRY(lp_task_score(t, LP_SPLIT_TEST, sc));
    if (sc->n == 0) return lp_errorf(LP_ERR_ARG, "sensitivity: no evaluation data (--data, or the checkpoint's validation data)");
    return LP_OK;
}

/* What the rate costs: an absolute drop for a figure where higher is better (GAP), a relative rise for
 * one where lower is (perplexity is multiplicative: 0.05 is 5% worse at any perplexity). */
static double cost_of(const lp_score *base, const lp_score *sc) {
    const double b = lp_score_primary(base), v = lp_score_primary(sc);
    return base->higher_better ? b - v : v / b - 1;
}

/* The scoring plan: a uniform plan at rate 0 scores every unit of every group and keeps everything; with
 * compensation it also holds each group's mean responses (statistics over training batches). */
static lp_status score_units(lp_task *t, const lp_sensitivity_opts *o, lp_prune_plan *plan) {
    lp_prune_opts po;
    lp_prune_opts_default(&po);
    po.rates.rule = LP_RATE_RULE_UNIFORM;
    po.rates.target_rate = 0;
    po.criterion = o->criterion;
    po.seed = o->seed;
    po.compensate = o->compensate;
    po.stats_batches = o->stats_batches;
    if (!o->compensate) return lp_prune_plan_make(t, NULL, &po, plan);
    if (!o->quiet) lp_log(LP_LOG_INFO, "sensitivity: response statistics for the compensation");
    lp_stats st[LP_MAX_GROUPS];
    LP_TRY(lp_prune_stats(t, o->stats_batches, LP_STATS_STEPS_ALL, st));
    lp_status s = lp_prune_plan_make(t, st, &po, plan);
    for (int g = 0; g < t->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

/* Group g alone keeps the k best-scored of its units (kept: room for H_g); the model so shrunk is scored.
 * The plan is left as it was (group g whole). */
static lp_status try_rate(lp_task *t, lp_prune_plan *plan, int g, int k, int *kept, lp_score *out) {
    lp_prune_group_plan *gp = &plan->g[g];
    LP_TRY(lp_criteria_select(gp->score, gp->h, k, kept));
    int *whole = gp->kept;
    gp->kept = kept;
    gp->k = k;
    lp_task *small;
    lp_status s = lp_surgery_shrink(t, plan, &small);
    gp->kept = whole;
    gp->k = gp->h;
    LP_TRY(s);
    s = score_eval(small, out);
    lp_task_free(small);
    return s;
}

static lp_status try_group(lp_task *t, lp_prune_plan *plan, int g, const lp_sensitivity_opts *o, lp_sensitivity_result *r) {
    const int h = r->units[g];
    double cost[LP_SENSITIVITY_MAX_RATES];
    int *kept = lp_malloc((size_t)h, sizeof *kept);
    if (!kept) return LP_ERR_NOMEM;
    lp_status s = LP_OK;
    for (int i = 0; i < r->n_rates && s == LP_OK; i++) {
        int k = h;
        s = lp_sensitivity_keep_count(h, r->rates[i], &k);
        if (s == LP_OK) s = try_rate(t, plan, g, k, kept, &r->score[g][i]);
        r->kept[g][i] = k;
        cost[i] = cost_of(&r->base, &r->score[g][i]);
        if (s == LP_OK && !o->quiet)
            lp_log(LP_LOG_INFO, "  %-10s rate %.2f: %4d of %4d units, %s %.4f (%s %+.4f)", r->group[g], r->rates[i], k, h,
                   t->ops->primary, lp_score_primary(&r->score[g][i]), r->base.higher_better ? "drop" : "rise", cost[i]);
    }
    if (s == LP_OK) r->suggested[g] = lp_sensitivity_suggest(r->rates, cost, r->n_rates, o->max_cost);
    lp_free(kept);
    return s;
}

static lp_status run_groups(lp_task *t, const lp_sensitivity_opts *o, lp_sensitivity_result *r) {
    lp_prune_plan plan;
    LP_TRY(score_eval(t, &r->base));
    LP_TRY(score_units(t, o, &plan));
    r->n_groups = t->n_groups;
    if (!o->quiet)
        lp_log(LP_LOG_INFO, "unpruned: %s %.4f (%lld %s); %d groups x %d rates", t->ops->primary, lp_score_primary(&r->base),
               (long long)r->base.examples, t->ops->count_name, r->n_groups, r->n_rates);
    lp_status s = LP_OK;
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) {
        snprintf(r->group[g], sizeof r->group[g], "%s", t->groups[g].name);
        r->units[g] = t->groups[g].units;
        r->fixed[g] = t->groups[g].fixed;
        if (!r->fixed[g]) s = try_group(t, &plan, g, o, r);
    }
    lp_prune_plan_free(&plan);
    return s;
}

/* ---- outputs ---- */

/* sensitivity.csv: group, units, rate, kept, the shown figures, and the cost of the rate. */
static lp_status write_csv(const lp_sensitivity_opts *o, const lp_task_ops *ops, const lp_sensitivity_result *r) {
    char name[32];
    lp_writer w;
    LP_TRY(lp_writer_open(&w, o->out_dir, "sensitivity.csv", LP_WRITER_CSV));
    lp_writer_cells(&w, "group\tunits\trate\tkept");
    lp_writer_cells(&w, ops->shown);
    lp_writer_cellsf(&w, "%s_%s", ops->primary, ops->higher_better ? "drop" : "rise");
    lp_writer_row(&w);
    for (int g = 0; g < r->n_groups; g++)
        for (int i = -1; i < (r->fixed[g] ? 0 : r->n_rates); i++) { /* i = -1: the unpruned group */
            const lp_score *sc = i < 0 ? &r->base : &r->score[g][i];
            lp_writer_cellsf(&w, "%s\t%d\t%.4f\t%d", r->group[g], r->units[g], i < 0 ? 0.0 : r->rates[i],
                             i < 0 ? r->units[g] : r->kept[g][i]);
            for (const char *p = ops->shown; lp_writer_next_name(&p, name, sizeof name);)
                lp_writer_cellsf(&w, "%.6f", lp_score_get(sc, name));
            lp_writer_cellsf(&w, "%.6f", i < 0 ? 0.0 : cost_of(&r->base, sc));
            lp_writer_row(&w);
        }
    return lp_writer_commit(&w);
}

/* curves.txt: each tried group's cost at every rate, the input of the sensitivity rate rule
 * (lp_sensitivity_curves_read). */
static lp_status write_curves(const lp_sensitivity_opts *o, const lp_task_ops *ops, const lp_sensitivity_result *r,
                              const char *ptitle) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, o->out_dir, "curves.txt", LP_WRITER_TEXT));
    FILE *f = w.f;
    fprintf(f, "# %s %s when one group alone is pruned at each rate (no fine-tuning); read by --rate-rule sensitivity\n",
            ptitle, ops->higher_better ? "drop" : "relative rise");
    fprintf(f, "rates = ");
    for (int i = 0; i < r->n_rates; i++) fprintf(f, "%s%.6g", i ? "," : "", r->rates[i]);
    fprintf(f, "\n");
    for (int g = 0; g < r->n_groups; g++) {
        if (r->fixed[g]) continue;
        fprintf(f, "%s = ", r->group[g]);
        for (int i = 0; i < r->n_rates; i++) fprintf(f, "%s%.8g", i ? "," : "", cost_of(&r->base, &r->score[g][i]));
        fprintf(f, "\n");
    }
    return lp_writer_commit(&w);
}

/* A comma-separated list of numbers into x (at most max); *n receives the count. */
static lp_status number_list(const char *what, const char *v, double *x, int max, int *n) {
    *n = 0;
    for (const char *p = v; *p;) {
        char *end;
        if (*n == max) return lp_errorf(LP_ERR_FORMAT, "%s: more than %d values", what, max);
        x[*n] = strtod(p, &end);
        if (end == p) return lp_errorf(LP_ERR_FORMAT, "%s: '%s' is not a list of numbers", what, v);
        (*n)++;
        while (*end == ' ' || *end == '\t') end++;
        if (*end && *end != ',') return lp_errorf(LP_ERR_FORMAT, "%s: '%s' is not a list of numbers", what, v);
        p = *end ? end + 1 : end;
    }
    return LP_OK;
}

lp_status lp_sensitivity_curves_read(const char *dir, const lp_task *t, lp_cost_curve *out) {
    char path[4096];
    lp_kv kv;
    lp_kv_init(&kv);
    lp_status s = lp_kv_read_file(&kv, lp_rundir_path(dir, "curves.txt", path, sizeof path));
    double rates[LP_RATES_MAX_POINTS];
    int nr = 0;
    const char *v = s == LP_OK ? lp_kv_get(&kv, "rates") : NULL;
    if (s == LP_OK && !v) s = lp_errorf(LP_ERR_FORMAT, "%s: no 'rates' line", path);
    if (s == LP_OK) s = number_list("rates", v, rates, LP_RATES_MAX_POINTS, &nr);
    for (int g = 0; s == LP_OK && g < t->n_groups; g++) {
        lp_cost_curve *c = &out[g];
        memset(c, 0, sizeof *c);
        if (t->groups[g].fixed) continue;
        if (!(v = lp_kv_get(&kv, t->groups[g].name))) {
            s = lp_errorf(LP_ERR_ARG, "%s has no curve for group %s: an analysis of another model?", path, t->groups[g].name);
            break;
        }
        s = number_list(t->groups[g].name, v, c->cost, LP_RATES_MAX_POINTS, &c->n);
        if (s == LP_OK && c->n != nr) s = lp_errorf(LP_ERR_FORMAT, "group %s: %d costs for %d rates", t->groups[g].name, c->n, nr);
        memcpy(c->rate, rates, sizeof rates);
        if (s == LP_OK) s = lp_cost_curve_check(c);
    }
    if (s != LP_OK && s != LP_ERR_NOMEM && !strstr(lp_last_error(), path)) s = lp_error_wrap(s, "%s", path);
    lp_kv_free(&kv);
    return s;
}

/* suggested.txt: per group, and the sizes a uniform-per-group prune at those rates gives. */
static lp_status write_suggested(const lp_sensitivity_opts *o, const lp_task_ops *ops, const lp_sensitivity_result *r,
                                 const char *ptitle) {
    char units[256] = "";
    lp_writer w;
    LP_TRY(lp_writer_open(&w, o->out_dir, "suggested.txt", LP_WRITER_TEXT));
    FILE *f = w.f;
    fprintf(f, "# largest tested rate per group whose %s %s stays <= %g (%sat it and at every smaller rate)\n", ptitle,
            ops->higher_better ? "drop" : "rise", o->max_cost, ops->higher_better ? "" : "relative; ");
    size_t off = 0;
    for (int g = 0; g < r->n_groups; g++) {
        int k;
        if (lp_sensitivity_keep_count(r->units[g], r->suggested[g], &k) != LP_OK) k = r->units[g];
        fprintf(f, "%s = %.4f%s\n", r->group[g], r->suggested[g], r->fixed[g] ? "  # kept whole: never pruned" : "");
        if (off < sizeof units) off += (size_t)snprintf(units + off, sizeof units - off, g ? ",%d" : "%d", k);
    }
    fprintf(f, "%s = %s\n", ops->units_key, units);
    return lp_writer_commit(&w);
}

/* The curves of the groups tried, with the limit a suggested rate may cost. */
static lp_status write_plot(const lp_sensitivity_opts *o, const lp_task_ops *ops, lp_sensitivity_result *r,
                            const char *ptitle) {
    char group[LP_MAX_GROUPS][24], title[160];
    int units[LP_MAX_GROUPS], n = 0;
    double y[LP_MAX_GROUPS * LP_SENSITIVITY_MAX_RATES];
    for (int g = 0; g < r->n_groups; g++) {
        if (r->fixed[g]) continue;
        memcpy(group[n], r->group[g], sizeof group[n]);
        units[n] = r->units[g];
        for (int i = 0; i < r->n_rates; i++) y[n * r->n_rates + i] = lp_score_primary(&r->score[g][i]);
        n++;
    }
    snprintf(title, sizeof title, "Sensitivity: one unit group pruned at a time (%s, no fine-tuning)",
             lp_criterion_name(o->criterion));
    const double base = lp_score_primary(&r->base);
    curves c = {.title = title, .ylabel = ptitle, .limit_title = ops->higher_better ? "baseline - max drop" : "baseline + max rise",
                .n_groups = n, .n_rates = r->n_rates, .group = group, .units = units, .rates = r->rates, .y = y,
                .base = base, .limit = ops->higher_better ? base - o->max_cost : base * (1 + o->max_cost)};
    return plot_curves(o->out_dir, &c, &r->plot);
}

/* The table: the primary figure per group and rate, and the suggested rate. */
static void md_table(lp_writer *w, const lp_sensitivity_result *r) {
    lp_writer_cells(w, "group\tunits");
    for (int i = 0; i < r->n_rates; i++) lp_writer_cellsf(w, "r=%.2f", r->rates[i]);
    lp_writer_cell(w, "suggested rate");
    lp_writer_row(w);
    lp_writer_align(w, "lr");
    for (int g = 0; g < r->n_groups; g++) {
        lp_writer_cellsf(w, "%s\t%d", r->group[g], r->units[g]);
        for (int i = 0; i < r->n_rates; i++)
            if (r->fixed[g]) lp_writer_cell(w, "—");
            else lp_writer_cellsf(w, "%.4f", lp_score_primary(&r->score[g][i]));
        if (r->fixed[g]) lp_writer_cell(w, "kept whole");
        else lp_writer_cellsf(w, "%.2f", r->suggested[g]);
        lp_writer_row(w);
    }
}

static lp_status write_md(const lp_sensitivity_opts *o, const lp_task_ops *ops, const lp_kv *cfg,
                          const lp_sensitivity_result *r, const char *ptitle) {
    char name[32], title[64], pshort[64];
    lp_writer w;
    LP_TRY(lp_writer_open(&w, o->out_dir, "sensitivity.md", LP_WRITER_MD));
    FILE *f = w.f;
    fprintf(f, "# lstmprune sensitivity\n\n- model: %s\n- criterion: %s%s; no fine-tuning; one group pruned at a time\n"
               "- unpruned:",
            o->ckpt, lp_criterion_name(o->criterion), o->compensate ? ", mean compensation" : "");
    int k = 0;
    for (const char *p = ops->shown; lp_writer_next_name(&p, name, sizeof name); k++) {
        lp_task_ops_figure_title(ops, cfg, name, title, sizeof title);
        fprintf(f, "%s %s %.4f", k ? "," : "", title, lp_score_get(&r->base, name));
    }
    fprintf(f, "\n\n%s when only this group is pruned at the rate:\n\n", ptitle);
    md_table(&w, r);
    snprintf(pshort, sizeof pshort, "%s", ptitle);
    pshort[strcspn(pshort, "@")] = 0;
    fprintf(f, "\nSuggested rate: the largest tested rate whose %s %s stays within %g%s at it and at every smaller rate "
               "(suggested.txt has the resulting %s). The groups interact, so pruning all of them at these "
               "rates together costs more than each %s alone; fine-tuning recovers part of it.\n",
            pshort, ops->higher_better ? "drop" : "rise", ops->higher_better ? o->max_cost : 100 * o->max_cost,
            ops->higher_better ? "" : "%", ops->units_key, ops->higher_better ? "drop" : "rise");
    if (r->plot) fprintf(f, "\n![sensitivity](sensitivity.png)\n");
    return lp_writer_commit(&w);
}

static lp_status write_outputs(const lp_sensitivity_opts *o, const lp_task *t, const lp_kv *cfg, lp_sensitivity_result *r) {
    char ptitle[64];
    lp_task_ops_figure_title(t->ops, cfg, t->ops->primary, ptitle, sizeof ptitle);
    LP_TRY(lp_mkdirs(o->out_dir));
    LP_TRY(write_csv(o, t->ops, r));
    LP_TRY(write_suggested(o, t->ops, r, ptitle));
    LP_TRY(write_curves(o, t->ops, r, ptitle));
    LP_TRY(write_plot(o, t->ops, r, ptitle));
    return write_md(o, t->ops, cfg, r, ptitle);
}

/* The checkpoint's model as a task of its kind, with the checkpoint's keys and the overrides. */
static lp_status open_model(const lp_sensitivity_opts *o, lp_task_kind *kind, lp_kv *cfg, lp_task **t) {
    LP_TRY(lp_task_kind_of_ckpt(o->ckpt, kind));
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, o->ckpt));
    lp_status s = lp_kv_merge(cfg, &c.meta);
    if (s == LP_OK && o->cfg) s = lp_kv_merge(cfg, o->cfg);
    if (s == LP_OK) s = kind->open(kind, cfg, &c, o->ckpt, t);
    lp_ckpt_free(&c);
    return s;
}

lp_status lp_sensitivity_run(const lp_sensitivity_opts *o, lp_sensitivity_result *res_out) {
    double sorted[LP_SENSITIVITY_MAX_RATES];
    LP_TRY(lp_sensitivity_rates(o->rates, o->n_rates, sorted));
    if (!(o->max_cost >= 0)) return lp_errorf(LP_ERR_ARG, "sensitivity: the largest cost of a suggested rate must be >= 0");
    lp_sensitivity_result *r = res_out ? res_out : lp_calloc(1, sizeof *r);
    if (!r) return LP_ERR_NOMEM;
    memset(r, 0, sizeof *r);
    r->n_rates = o->n_rates;
    memcpy(r->rates, sorted, (size_t)o->n_rates * sizeof(double));
    lp_task_kind kind;
    lp_task *t = NULL;
    lp_kv cfg;
    lp_kv_init(&cfg);
    lp_status s = open_model(o, &kind, &cfg, &t);
    if (s == LP_OK) lp_blas_set_threads((int)lp_kv_get_int_or(&cfg, "train.threads", 0));
    if (s == LP_OK) s = run_groups(t, o, r);
    /* under mpirun rank 0 writes, and the others wait for the files (a pipeline reads curves.txt next) */
    if (s == LP_OK) s = lp_dist_written(lp_dist_lead() ? write_outputs(o, t, &cfg, r) : LP_OK);
    lp_task_free(t);
    lp_kv_free(&cfg);
    if (!res_out) lp_free(r);
    return s;
}
