/* report: see report.h. */
#include "experiments/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/json.h"

/* The next name of a tab-separated list into buf; 0 at the end. */
static int next_name(const char **list, char *buf, size_t n) {
    const char *p = *list;
    if (!*p) return 0;
    size_t len = strcspn(p, "\t");
    snprintf(buf, n, "%.*s", (int)len, p);
    *list = p + len + (p[len] == '\t');
    return 1;
}

/* The test split's figures, or the validation split's when there is no test data. */
static lp_status score_eval(lp_task *t, lp_status (*fn)(lp_task *, lp_split, lp_score *), lp_score *sc) {
    memset(sc, 0, sizeof *sc);
    LP_TRY(fn(t, LP_SPLIT_TEST, sc));
    if (sc->n == 0) LP_TRY(fn(t, LP_SPLIT_VALID, sc));
    return LP_OK;
}

lp_status lp_report_measure(lp_task *t, const char *label, const char *ckpt, int eval, int lat_batch, int lat_steps,
                            int reps, lp_report_model *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->label, sizeof row->label, "%s", label);
    if (ckpt) snprintf(row->ckpt, sizeof row->ckpt, "%s", ckpt);
    row->params = t->params->numel;
    row->flops_step = t->ops->flops_per_step(t);
    struct stat st;
    if (ckpt && stat(ckpt, &st) == 0) row->ckpt_bytes = (size_t)st.st_size;
    row->lat_batch = lat_batch;
    row->lat_steps = lat_steps;
    LP_TRY(t->ops->latency(t, 1, lat_steps, reps, &row->lat_b1_ms));
    LP_TRY(t->ops->latency(t, lat_batch, lat_steps, reps, &row->lat_bn_ms));
    return eval ? score_eval(t, lp_task_score, &row->score) : LP_OK;
}

lp_status lp_report_reference(lp_task *t, lp_report_model *row, int *have) {
    memset(row, 0, sizeof *row);
    *have = 0;
    if (!t->ops->reference) return LP_OK;
    snprintf(row->label, sizeof row->label, "prior (no input)");
    row->reference = 1;
    LP_TRY(score_eval(t, t->ops->reference, &row->score));
    *have = row->score.n > 0;
    return LP_OK;
}

static double cum_energy(const double *eig, int h, int k) {
    double tot = 0, part = 0;
    for (int i = 0; i < h; i++) {
        tot += eig[i];
        if (i < k) part += eig[i];
    }
    return tot > 0 ? part / tot : 1.0;
}

/* JSON numbers with 8 significant digits (null when not finite). */
static void json_num(FILE *f, double v) { lp_json_num(f, v, 8); }

/* ", \"gap\": 0.5, ..." — the shown figures, then (with all) the others and the count of examples. */
static void json_figures(FILE *f, const lp_task *t, const lp_score *sc, int all) {
    if (!sc->n) return;
    char name[32];
    for (const char *p = t->ops->shown; next_name(&p, name, sizeof name);) fprintf(f, ", \"%s\": %.6f", name, lp_score_get(sc, name));
    if (!all) return;
    for (int i = 0; i < sc->n; i++)
        if (!strstr(t->ops->shown, sc->name[i])) fprintf(f, ", \"%s\": %.6f", sc->name[i], sc->value[i]);
    fprintf(f, ", \"%s\": %lld", t->ops->count_name, (long long)sc->examples);
}

static lp_status write_json(const char *path, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                            int n, const lp_kv *info) {
    lp_atomic_file af;
    LP_TRY(lp_atomic_open(&af, path));
    FILE *f = af.f;
    fprintf(f, "{\n  \"info\": {");
    for (int i = 0; info && i < info->count; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        lp_json_str(f, info->keys[i]);
        fprintf(f, ": ");
        lp_json_str(f, info->vals[i]);
    }
    fprintf(f, "\n  },\n  \"groups\": [");
    for (int g = 0; plan && g < plan->n_groups; g++) {
        const lp_prune_group_plan *gp = &plan->g[g];
        fprintf(f, "%s\n    {\"name\": ", g ? "," : "");
        lp_json_str(f, gp->name);
        fprintf(f, ", \"units_before\": %d, \"units_after\": %d, \"rate\": ", gp->h, gp->k);
        json_num(f, gp->rate);
        fprintf(f, ", \"tau\": ");
        json_num(f, gp->tau);
        fprintf(f, ", \"energy_kept\": ");
        json_num(f, gp->energy_kept);
        fprintf(f, ", \"responses\": %lld, \"kept\": [", (long long)gp->n_responses);
        for (int j = 0; j < gp->k; j++) fprintf(f, "%s%d", j ? ", " : "", gp->kept[j]);
        fprintf(f, "], \"spectrum\": [");
        for (int j = 0; gp->eig && j < gp->h; j++) {
            fprintf(f, "%s", j ? ", " : "");
            json_num(f, gp->eig[j]);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n  ],\n  \"models\": [");
    for (int i = 0; i < n; i++) {
        const lp_report_model *r = &rows[i];
        fprintf(f, "%s\n    {\"label\": ", i ? "," : "");
        lp_json_str(f, r->label);
        if (r->reference) {
            fprintf(f, ", \"reference\": true");
            json_figures(f, t, &r->score, 0);
            fprintf(f, "}");
            continue;
        }
        fprintf(f, ", \"checkpoint\": ");
        lp_json_str(f, r->ckpt);
        fprintf(f, ", \"parameters\": %zu, \"flops_per_%s\": %.6g, \"checkpoint_bytes\": %zu, ", r->params,
                t->ops->step_name, r->flops_step, r->ckpt_bytes);
        fprintf(f, "\"latency_ms_batch1\": %.4f, \"latency_ms_batchN\": %.4f, \"latency_batch\": %d, \"latency_%ss\": %d",
                r->lat_b1_ms, r->lat_bn_ms, r->lat_batch, t->ops->step_name, r->lat_steps);
        json_figures(f, t, &r->score, 1);
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    return lp_atomic_commit(&af);
}

static lp_status write_md(const char *path, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                          int n, const lp_kv *info, int have_plot) {
    lp_atomic_file af;
    LP_TRY(lp_atomic_open(&af, path));
    FILE *f = af.f;
    fprintf(f, "# lstmprune report\n\n");
    for (int i = 0; info && i < info->count; i++) fprintf(f, "- %s: %s\n", info->keys[i], info->vals[i]);
    if (plan) {
        fprintf(f, "\n## Unit groups\n\n");
        fprintf(f, "Rule %s, criterion %s, statistics over %s steps; τ = %.4f; mean rate %.4f (target %s); "
                   "%d of %d units kept.\n\n",
                lp_rate_rule_name(plan->opts.rates.rule), lp_criterion_name(plan->opts.criterion),
                lp_stats_steps_name(plan->opts.steps), plan->rates.tau, plan->rates.mean_rate,
                plan->rates.target_rate < 0 ? "none" : "set", plan->rates.kept, plan->rates.total);
        fprintf(f, "| group | units before | units after | rate | τ | energy kept | responses | top eigenvalues |\n");
        fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---|\n");
        for (int g = 0; g < plan->n_groups; g++) {
            const lp_prune_group_plan *gp = &plan->g[g];
            fprintf(f, "| %s | %d | %d | %.3f | %.4f | %.4f | %lld | ", gp->name, gp->h, gp->k, gp->rate,
                    gp->tau, gp->energy_kept, (long long)gp->n_responses);
            for (int j = 0; gp->eig && j < gp->h && j < 5; j++) fprintf(f, "%s%.3g", j ? ", " : "", gp->eig[j]);
            fprintf(f, " |\n");
        }
        fprintf(f, "\nThe full spectra are in spectra.csv%s.\n", have_plot ? " and spectra.png" : "");
        if (have_plot) fprintf(f, "\n![eigenvalue spectra](spectra.png)\n");
    }
    fprintf(f, "\n## Models\n\n");
    const char *sn = t->ops->step_name;
    char name[32], title[64];
    fprintf(f, "| model | parameters | FLOPs/%s | checkpoint bytes | latency B=1 (ms) | latency B=N (ms) |", sn);
    for (const char *p = t->ops->shown; next_name(&p, name, sizeof name);) {
        lp_task_ops_figure_title(t->ops, NULL, name, title, sizeof title);
        fprintf(f, " %s |", title);
    }
    fprintf(f, "\n|---|---:|---:|---:|---:|---:|");
    for (const char *p = t->ops->shown; next_name(&p, name, sizeof name);) fprintf(f, "---:|");
    fprintf(f, "\n");
    for (int i = 0; i < n; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) fprintf(f, "| %s | – | – | – | – | – |", r->label);
        else
            fprintf(f, "| %s | %zu | %.4g | %zu | %.3f | %.3f (N=%d) |", r->label, r->params, r->flops_step, r->ckpt_bytes,
                    r->lat_b1_ms, r->lat_bn_ms, r->lat_batch);
        for (const char *p = t->ops->shown; next_name(&p, name, sizeof name);)
            if (r->score.n) fprintf(f, " %.4f |", lp_score_get(&r->score, name));
            else fprintf(f, " – |");
        fprintf(f, "\n");
    }
    if (n > 0)
        fprintf(f, "\nLatency: median of repeated no-gradient forward passes over %d %ss per %s, measured on "
                   "this machine in this run.\n",
                rows[0].lat_steps, sn, t->ops->seq_name);
    return lp_atomic_commit(&af);
}

static lp_status write_csvs(const char *dir, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                            int n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/spectra.csv", dir);
    lp_atomic_file af;
    LP_TRY(lp_atomic_open(&af, path));
    fprintf(af.f, "group,index,eigenvalue,cumulative_energy,kept\n");
    for (int g = 0; plan && g < plan->n_groups; g++) {
        const lp_prune_group_plan *gp = &plan->g[g];
        for (int j = 0; gp->eig && j < gp->h; j++)
            fprintf(af.f, "%s,%d,%.10g,%.8f,%d\n", gp->name, j + 1, gp->eig[j], cum_energy(gp->eig, gp->h, j + 1), j < gp->k);
    }
    LP_TRY(lp_atomic_commit(&af));
    snprintf(path, sizeof path, "%s/models.csv", dir);
    LP_TRY(lp_atomic_open(&af, path));
    char name[32];
    fprintf(af.f, "label,parameters,flops_per_%s,checkpoint_bytes,latency_ms_b1,latency_ms_bn,latency_batch", t->ops->step_name);
    for (const char *p = t->ops->shown; next_name(&p, name, sizeof name);) fprintf(af.f, ",%s", name);
    fprintf(af.f, "\n");
    for (int i = 0; i < n; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) fprintf(af.f, "%s,,,,,,", r->label);
        else
            fprintf(af.f, "%s,%zu,%.6g,%zu,%.4f,%.4f,%d", r->label, r->params, r->flops_step, r->ckpt_bytes, r->lat_b1_ms,
                    r->lat_bn_ms, r->lat_batch);
        for (const char *p = t->ops->shown; next_name(&p, name, sizeof name);)
            if (r->score.n) fprintf(af.f, ",%.6f", lp_score_get(&r->score, name));
            else fprintf(af.f, ",");
        fprintf(af.f, "\n");
    }
    return lp_atomic_commit(&af);
}

/* Normalised spectra (λ_i / Σλ, log scale) per group; returns 1 when the PNG was written. */
static int plot_spectra(const char *dir, const lp_prune_plan *plan) {
    if (!plan || system("command -v gnuplot >/dev/null 2>&1") != 0) return 0;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot 2>/dev/null", dir);
    FILE *g = popen(cmd, "w");
    if (!g) return 0;
    fprintf(g, "set terminal pngcairo size 900,560 noenhanced\nset output 'spectra.png'\nset datafile separator ','\n"
               "set logscale y\nset xlabel 'eigenvalue index'\nset ylabel 'fraction of energy'\nset key top right\n"
               "set title 'Response covariance spectra per unit group'\nplot ");
    int first = 1;
    for (int gi = 0; gi < plan->n_groups; gi++) {
        if (!plan->g[gi].eig) continue;
        double tot = 0;
        for (int j = 0; j < plan->g[gi].h; j++) tot += plan->g[gi].eig[j];
        if (!(tot > 0)) continue;
        fprintf(g, "%s'spectra.csv' using ($2):(strcol(1) eq '%s' && $3 > 0 ? $3/%.10g : 1/0) with linespoints title '%s (keep %d/%d)'",
                first ? "" : ", ", plan->g[gi].name, tot, plan->g[gi].name, plan->g[gi].k, plan->g[gi].h);
        first = 0;
    }
    fprintf(g, "\n");
    int rc = pclose(g);
    char png[4200];
    snprintf(png, sizeof png, "%s/spectra.png", dir);
    struct stat st;
    return !first && rc == 0 && stat(png, &st) == 0 && st.st_size > 0;
}

lp_status lp_report_write(const char *dir, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                          int n_rows, const lp_kv *info) {
    LP_TRY(lp_mkdirs(dir));
    LP_TRY(write_csvs(dir, t, plan, rows, n_rows));
    int have_plot = plot_spectra(dir, plan);
    char path[4096];
    snprintf(path, sizeof path, "%s/report.json", dir);
    LP_TRY(write_json(path, t, plan, rows, n_rows, info));
    snprintf(path, sizeof path, "%s/report.md", dir);
    return write_md(path, t, plan, rows, n_rows, info, have_plot);
}
