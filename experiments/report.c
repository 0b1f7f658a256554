/* report: see report.h. */
#include "experiments/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/rundir.h"
#include "experiments/writer.h"

/* The test split's figures, or the validation split's when there is no test data. */
static lp_status score_eval(lp_task *t, lp_status (*fn)(lp_task *, lp_split, lp_score *), lp_score *sc) {
    memset(sc, 0, sizeof *sc);
    LP_TRY(fn(t, LP_SPLIT_TEST, sc));
    if (sc->n == 0) LP_TRY(fn(t, LP_SPLIT_VALID, sc));
    return LP_OK;
}

/* Save c to a fresh temporary file and return its size (the file is removed). */
static lp_status measure_saved(const lp_ckpt *c, size_t *bytes) {
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%.4000s/lstmprune-bytes-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) return lp_errorf(LP_ERR_IO, "%s: cannot create a temporary file", path);
    close(fd);
    lp_status s = lp_ckpt_save(c, path);
    struct stat sb;
    if (s == LP_OK && stat(path, &sb) != 0) s = lp_errorf(LP_ERR_IO, "%s: cannot stat", path);
    if (s == LP_OK) *bytes = (size_t)sb.st_size;
    remove(path);
    return s;
}

/* 1 if `name` is one of t's parameters (not an optimizer moment or a carried state). */
static int is_param(const lp_task *t, const char *name) {
    for (int i = 0; i < t->params->count; i++)
        if (!strcmp(t->params->items[i].name, name)) return 1;
    return 0;
}

/* The bytes checkpoint `ckpt` would have without its optimizer state: a training run's last.ckpt also
 * holds Adam's moments (twice the weights), and comparing it with a weights-only pruned.ckpt would
 * overstate the shrink about threefold. A weights-only file is measured as it is; otherwise its meta and
 * parameter tensors are written to a temporary file (in TMPDIR or /tmp) and that is measured. A missing
 * file has 0 bytes. */
static lp_status weights_only_bytes(const lp_task *t, const char *ckpt, size_t *bytes) {
    *bytes = 0;
    struct stat sb;
    if (stat(ckpt, &sb) != 0) return LP_OK;
    lp_ckpt c, w;
    LP_TRY(lp_ckpt_load(&c, ckpt));
    lp_ckpt_init(&w);
    lp_status s = lp_kv_merge(&w.meta, &c.meta);
    for (int i = 0; i < c.n && s == LP_OK; i++)
        if (is_param(t, c.t[i].name)) s = lp_ckpt_add(&w, c.t[i].name, c.t[i].ndim, c.t[i].dims, c.t[i].data);
    if (s == LP_OK && w.n == c.n) *bytes = (size_t)sb.st_size;
    else if (s == LP_OK) s = measure_saved(&w, bytes);
    lp_ckpt_free(&w);
    lp_ckpt_free(&c);
    return s;
}

lp_status lp_report_measure(lp_task *t, const char *label, const char *ckpt, int eval, int lat_batch, int lat_steps,
                            int reps, lp_report_model *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->label, sizeof row->label, "%s", label);
    if (ckpt) snprintf(row->ckpt, sizeof row->ckpt, "%s", ckpt);
    row->params = t->params->numel;
    row->flops_step = t->ops->flops_per_step(t);
    if (ckpt) LP_TRY(weights_only_bytes(t, ckpt, &row->ckpt_bytes));
    row->lat_batch = lat_batch;
    row->lat_steps = lat_steps;
    LP_TRY(lp_task_latency(t, 1, lat_steps, reps, &row->lat_b1_ms));
    LP_TRY(lp_task_latency(t, lat_batch, lat_steps, reps, &row->lat_bn_ms));
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
    for (const char *p = t->ops->shown; lp_writer_next_name(&p, name, sizeof name);) fprintf(f, ", \"%s\": %.6f", name, lp_score_get(sc, name));
    if (!all) return;
    for (int i = 0; i < sc->n; i++)
        if (!strstr(t->ops->shown, sc->name[i])) fprintf(f, ", \"%s\": %.6f", sc->name[i], sc->value[i]);
    fprintf(f, ", \"%s\": %lld", t->ops->count_name, (long long)sc->examples);
}

/* "groups": per unit group the plan's sizes, rate, τ, energy kept, kept units and spectrum. */
static void json_groups(FILE *f, const lp_prune_plan *plan) {
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
}

/* "models": per model its checkpoint, sizes, latency and figures (a reference row: figures only). */
static void json_models(FILE *f, const lp_task *t, const lp_report_model *rows, int n) {
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
}

static lp_status write_json(const char *dir, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                            int n, const lp_kv *info) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "report.json", LP_WRITER_TEXT));
    FILE *f = w.f;
    fprintf(f, "{\n  \"info\": {");
    for (int i = 0; info && i < info->count; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        lp_json_str(f, info->keys[i]);
        fprintf(f, ": ");
        lp_json_str(f, info->vals[i]);
    }
    fprintf(f, "\n  },\n  \"groups\": [");
    json_groups(f, plan);
    fprintf(f, "\n  ],\n  \"models\": [");
    json_models(f, t, rows, n);
    fprintf(f, "\n  ]\n}\n");
    return lp_writer_commit(&w);
}

/* τ (or an energy fraction) with 4 decimals, or "–" where no spectrum decided the sizes (uniform rule, ISS,
 * kept lists). */
static void fmt_tau(double tau, char *buf, size_t n) {
    if (isfinite(tau)) snprintf(buf, n, "%.4f", tau);
    else snprintf(buf, n, "–");
}

/* "- key: value" lines; keys are config-style names, shown with '_' as ' '. */
static void md_info(FILE *f, const lp_kv *info) {
    for (int i = 0; info && i < info->count; i++) {
        fprintf(f, "- ");
        for (const char *k = info->keys[i]; *k; k++) fputc(*k == '_' ? ' ' : *k, f);
        fprintf(f, ": %s\n", info->vals[i]);
    }
}

/* What chose the kept units: a rate rule and criterion over response statistics, ISS's group norms or given
 * kept lists (plans made by lp_prune_plan_from_kept carry no rule, spectra or energy). */
static void md_plan_line(FILE *f, const lp_prune_plan *plan) {
    if (!strcmp(plan->method, "iss")) fprintf(f, "Units kept by ISS: group norm at or above the threshold; ");
    else if (!strcmp(plan->method, "kept lists")) fprintf(f, "Units kept as listed; ");
    else
        fprintf(f, "Rule %s, criterion %s, statistics over %s steps; ", lp_rate_rule_name(plan->opts.rates.rule),
                lp_criterion_name(plan->opts.criterion), lp_stats_steps_name(plan->opts.steps));
}

/* report.md's table of unit groups. */
static void md_groups(lp_writer *w, const lp_prune_plan *plan) {
    lp_writer_cells(w, "group\tunits before\tunits after\trate\tτ\tenergy kept\tresponses\ttop eigenvalues");
    lp_writer_row(w);
    lp_writer_align(w, "lrrrrrrl");
    for (int g = 0; g < plan->n_groups; g++) {
        const lp_prune_group_plan *gp = &plan->g[g];
        char top[128] = "";
        for (int j = 0, off = 0; gp->eig && j < gp->h && j < 5; j++)
            off += snprintf(top + off, sizeof top - (size_t)off, "%s%.3g", j ? ", " : "", gp->eig[j]);
        char tau[32], energy[32];
        fmt_tau(gp->tau, tau, sizeof tau);
        fmt_tau(gp->energy_kept, energy, sizeof energy);
        lp_writer_cellsf(w, "%s\t%d\t%d\t%.3f\t%s\t%s\t%lld\t%s", gp->name, gp->h, gp->k, gp->rate, tau, energy,
                         (long long)gp->n_responses, top);
        lp_writer_row(w);
    }
}

/* One cell per shown figure of score sc with format fmt, `none` when it was not scored. */
static void figure_cells(lp_writer *w, const lp_task *t, const lp_score *sc, const char *fmt, const char *none) {
    char name[32];
    for (const char *p = t->ops->shown; lp_writer_next_name(&p, name, sizeof name);)
        if (sc->n) lp_writer_cellsf(w, fmt, lp_score_get(sc, name));
        else lp_writer_cell(w, none);
}

/* report.md's table of models: sizes, latency and the shown figures. */
static void md_models(lp_writer *w, const lp_task *t, const lp_report_model *rows, int n) {
    char name[32], title[64];
    lp_writer_cellsf(w, "model\tparameters\tFLOPs/%s\tcheckpoint bytes\tlatency B=1 (ms)\tlatency B=N (ms)",
                     t->ops->step_name);
    for (const char *p = t->ops->shown; lp_writer_next_name(&p, name, sizeof name);) {
        lp_task_ops_figure_title(t->ops, NULL, name, title, sizeof title);
        lp_writer_cell(w, title);
    }
    lp_writer_row(w);
    lp_writer_align(w, "lr");
    for (int i = 0; i < n; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) lp_writer_cellsf(w, "%s\t–\t–\t–\t–\t–", r->label);
        else
            lp_writer_cellsf(w, "%s\t%zu\t%.4g\t%zu\t%.3f\t%.3f (N=%d)", r->label, r->params, r->flops_step, r->ckpt_bytes,
                             r->lat_b1_ms, r->lat_bn_ms, r->lat_batch);
        figure_cells(w, t, &r->score, "%.4f", "–");
        lp_writer_row(w);
    }
}

static lp_status write_md(const char *dir, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                          int n, const lp_kv *info, int have_plot) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "report.md", LP_WRITER_MD));
    FILE *f = w.f;
    fprintf(f, "# lstmprune report\n\n");
    md_info(f, info);
    if (plan) {
        char tau[32], target[32] = "none";
        fmt_tau(plan->rates.tau, tau, sizeof tau);
        if (plan->rates.target_rate >= 0) snprintf(target, sizeof target, "%.4f", plan->rates.target_rate);
        fprintf(f, "\n## Unit groups\n\n");
        md_plan_line(f, plan);
        if (plan->opts.rates.rule == LP_RATE_RULE_SENSITIVITY && isfinite(plan->rates.budget))
            fprintf(f, "cost budget θ = %.4g (each group's largest rate costing at most θ alone); ", plan->rates.budget);
        fprintf(f, "τ = %s; mean rate %.4f (target %s); %d of %d units kept.\n\n", tau, plan->rates.mean_rate,
                target, plan->rates.kept, plan->rates.total);
        md_groups(&w, plan);
        if (plan->g[0].eig) fprintf(f, "\nThe full spectra are in spectra.csv%s.\n", have_plot ? " and spectra.png" : "");
        if (have_plot) fprintf(f, "\n![eigenvalue spectra](spectra.png)\n");
    }
    fprintf(f, "\n## Models\n\n");
    md_models(&w, t, rows, n);
    if (n > 0)
        fprintf(f, "\nLatency: median of repeated no-gradient forward passes over %d %ss per %s, measured on "
                   "this machine in this run.\n",
                rows[0].lat_steps, t->ops->step_name, t->ops->seq_name);
    return lp_writer_commit(&w);
}

/* spectra.csv: every group's eigenvalues, cumulative energy, and whether the unit rank was kept. */
static lp_status write_spectra(const char *dir, const lp_prune_plan *plan) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "spectra.csv", LP_WRITER_CSV));
    lp_writer_cells(&w, "group\tindex\teigenvalue\tcumulative_energy\tkept");
    lp_writer_row(&w);
    for (int g = 0; plan && g < plan->n_groups; g++) {
        const lp_prune_group_plan *gp = &plan->g[g];
        for (int j = 0; gp->eig && j < gp->h; j++) {
            lp_writer_cellsf(&w, "%s\t%d\t%.10g\t%.8f\t%d", gp->name, j + 1, gp->eig[j], cum_energy(gp->eig, gp->h, j + 1),
                             j < gp->k);
            lp_writer_row(&w);
        }
    }
    return lp_writer_commit(&w);
}

/* models.csv: the models table for programs. */
static lp_status write_models(const char *dir, const lp_task *t, const lp_report_model *rows, int n) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, dir, "models.csv", LP_WRITER_CSV));
    lp_writer_cellsf(&w, "label\tparameters\tflops_per_%s\tcheckpoint_bytes\tlatency_ms_b1\tlatency_ms_bn\tlatency_batch",
                     t->ops->step_name);
    lp_writer_cells(&w, t->ops->shown);
    lp_writer_row(&w);
    for (int i = 0; i < n; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) lp_writer_cellsf(&w, "%s\t\t\t\t\t\t", r->label); /* no sizes, no latency */
        else
            lp_writer_cellsf(&w, "%s\t%zu\t%.6g\t%zu\t%.4f\t%.4f\t%d", r->label, r->params, r->flops_step, r->ckpt_bytes,
                             r->lat_b1_ms, r->lat_bn_ms, r->lat_batch);
        figure_cells(&w, t, &r->score, "%.6f", "");
        lp_writer_row(&w);
    }
    return lp_writer_commit(&w);
}

/* spectra.png: normalised spectra (λ_i / Σλ, log scale) per group, drawn from spectra.csv by a script
 * that is removed after the run (the report's own files are the tables). Returns 1 if drawn. */
static int plot_spectra(const char *dir, const lp_prune_plan *plan) {
    lp_writer w;
    if (!plan || lp_writer_open(&w, dir, "spectra.gp", LP_WRITER_TEXT) != LP_OK) return 0;
    FILE *g = w.f;
    fprintf(g, "set terminal pngcairo size 900,560 noenhanced\nset output 'spectra.png'\nset datafile separator ','\n"
               "set logscale y\nset xlabel 'eigenvalue index'\nset ylabel 'fraction of energy'\nset key top right\n"
               "set title 'Response covariance spectra per unit group'\nplot ");
    int curves = 0;
    for (int gi = 0; gi < plan->n_groups; gi++) {
        if (!plan->g[gi].eig) continue;
        double tot = 0;
        for (int j = 0; j < plan->g[gi].h; j++) tot += plan->g[gi].eig[j];
        if (!(tot > 0)) continue;
        fprintf(g, "%s'spectra.csv' using ($2):(strcol(1) eq '%s' && $3 > 0 ? $3/%.10g : 1/0) with linespoints title '%s (keep %d/%d)'",
                curves++ ? ", " : "", plan->g[gi].name, tot, plan->g[gi].name, plan->g[gi].k, plan->g[gi].h);
    }
    fprintf(g, "\n");
    if (lp_writer_commit(&w) != LP_OK) return 0;
    static const char *const png[] = {"spectra.png"};
    lp_writer_plot p = {.dir = dir, .script = "spectra.gp", .png = png, .n = 1};
    int have = curves > 0;
    lp_writer_gnuplot(&p, &have);
    char path[4096];
    remove(lp_rundir_path(dir, "spectra.gp", path, sizeof path));
    return have;
}

lp_status lp_report_write(const char *dir, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                          int n_rows, const lp_kv *info) {
    LP_TRY(lp_mkdirs(dir));
    LP_TRY(write_spectra(dir, plan));
    LP_TRY(write_models(dir, t, rows, n_rows));
    int have_plot = plot_spectra(dir, plan);
    LP_TRY(write_json(dir, t, plan, rows, n_rows, info));
    return write_md(dir, t, plan, rows, n_rows, info, have_plot);
}
