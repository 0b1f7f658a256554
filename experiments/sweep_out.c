/* sweep_out: the outputs of a sweep (sweep.h), rewritten from the result rows after every run, also a
 * partial one — results.csv, results.md (the table and the plots), plots.gp with its data inline and,
 * where gnuplot runs, the PNGs — and spectra.csv, written when the baseline is measured. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/rundir.h"
#include "experiments/sweep_int.h"
#include "experiments/writer.h"
#include "prune/stats.h"

#define MAX_ITEMS LP_SWEEP_MAX_ITEMS

/* ---- rows and columns ---- */

static double row_num(const lp_kv *row, const char *key) {
    const char *v = lp_kv_get(row, key);
    if (!v || !*v) return NAN;
    char *end;
    double d = strtod(v, &end);
    return end == v ? NAN : d;
}

static const char *row_str(const lp_kv *row, const char *key) {
    const char *v = lp_kv_get(row, key);
    return v ? v : "";
}

static void add_column(sweep *sw, const char *fmt, const char *a, const char *b) {
    if (sw->n_columns == LP_SWEEP_MAX_COLUMNS) return;
    snprintf(sw->column_names[sw->n_columns], sizeof sw->column_names[0], fmt, a, b);
    sw->columns[sw->n_columns] = sw->column_names[sw->n_columns];
    sw->n_columns++;
}

/* The columns of results.csv: identity, rates, sizes, the task's shown figures pruned (right after the
 * units were removed) and fine-tuned, and last, since they are the only columns that vary between
 * identical runs, the timing. */
void lp_sweep_columns(sweep *sw) {
    static const char *const head[] = {"cell", "schedule", "rule", "criterion", "target_rate", "mean_rate", "units",
                                       "parameters"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) add_column(sw, "%s%s", head[i], "");
    add_column(sw, "flops_per_%s%s", sw->ops->step_name, "");
    add_column(sw, "%s%s", "checkpoint_bytes", "");
    const char *stage[] = {"pruned", "finetuned"};
    char name[32];
    for (int k = 0; k < 2; k++)
        for (const char *p = sw->ops->shown; lp_writer_next_name(&p, name, sizeof name);) add_column(sw, "%s_%s", name, stage[k]);
    add_column(sw, "%s%s", "compensate", "");
    add_column(sw, "%s%s", "latency_ms_b1", "");
    add_column(sw, "%s%s", "latency_ms_bn", "");
    add_column(sw, "%s%s", "seconds", "");
}

/* "<primary>_<suffix>" (gap_finetuned, ...). */
static const char *pkey(const sweep *sw, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "%s_%s", sw->primary, suffix);
    return buf;
}

/* The rows of one group's spectrum: its eigenvalues, each as a fraction of the total and cumulated. */
static lp_status spectrum_rows(lp_writer *w, lp_stats *st, const lp_unit_group *grp) {
    const int h = grp->units;
    double *cov = lp_malloc((size_t)h * (size_t)h, sizeof(double)), *eig = lp_malloc((size_t)h, sizeof(double));
    lp_status s = cov && eig ? lp_stats_finish(st, NULL, cov) : LP_ERR_NOMEM;
    if (s == LP_OK) s = lp_rates_eigenvalues(cov, h, eig, NULL);
    double tot = 0, cum = 0;
    for (int j = 0; s == LP_OK && j < h; j++) tot += eig[j];
    for (int j = 0; s == LP_OK && j < h; j++) {
        cum += eig[j];
        lp_writer_cellsf(w, "%s\t%d\t%d\t%.10g\t%.8f\t%.8f", grp->name, h, j + 1, eig[j], tot > 0 ? eig[j] / tot : 0,
                         tot > 0 ? cum / tot : 1);
        lp_writer_row(w);
    }
    lp_free(cov);
    lp_free(eig);
    return s;
}

lp_status lp_sweep_write_spectra(const sweep *sw, lp_task *t) {
    lp_stats st[LP_MAX_GROUPS];
    LP_TRY(lp_prune_stats(t, sw->popt.prune.stats_batches, sw->popt.prune.steps, st));
    lp_writer w;
    lp_status s = lp_writer_open(&w, sw->dir, "spectra.csv", LP_WRITER_CSV);
    if (s == LP_OK) {
        lp_writer_cells(&w, "group\tunits\tindex\teigenvalue\tfraction\tcumulative");
        lp_writer_row(&w);
    }
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) s = spectrum_rows(&w, &st[g], &t->groups[g]);
    if (s == LP_OK) s = lp_writer_commit(&w);
    else if (w.f) lp_writer_abort(&w);
    for (int g = 0; g < t->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

/* ---- outputs ---- */

static lp_status write_csv(const sweep *sw) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, sw->dir, "results.csv", LP_WRITER_CSV));
    for (int c = 0; c < sw->n_columns; c++) lp_writer_cell(&w, sw->columns[c]);
    lp_writer_row(&w);
    for (int i = 0; i < sw->n_rows; i++) {
        if (sw->rows[i].count == 0) continue;
        for (int c = 0; c < sw->n_columns; c++) lp_writer_cell(&w, row_str(&sw->rows[i], sw->columns[c]));
        lp_writer_row(&w);
    }
    return lp_writer_commit(&w);
}

static const char *dash(const char *v) { return *v ? v : "–"; }

/* The plots a sweep draws, in the order of have_png[] everywhere below ("%s": the primary figure). */
static const char *const plot_fmt[5] = {"%s_vs_rate.png", "%s_vs_params.png", "%s_vs_latency.png", "spectra.png",
                                        "curves.png"};

static const char *plot_png(const sweep *sw, int i, char *buf, size_t n) {
    snprintf(buf, n, plot_fmt[i], sw->primary);
    return buf;
}

/* A figure's title ("GAP@20"), or with `shorter` the table's ("GAP"). */
static void title_of(const sweep *sw, const char *figure, int shorter, char *buf, size_t n) {
    lp_task_ops_figure_title(sw->ops, &sw->cfg, figure, buf, n);
    if (shorter) buf[strcspn(buf, "@")] = 0;
}

/* The header lines of results.md: what ran, on which data. */
static void md_header(FILE *f, const sweep *sw, int done, int total) {
    const lp_kv *c = &sw->cfg;
    const char *model = lp_kv_get(c, "model.kind"), *units = lp_kv_get(c, "model.units");
    const char *train = lp_kv_get(c, "data.train"), *ev = lp_kv_get(c, "data.test");
    if (!ev || !*ev) ev = lp_kv_get(c, "data.valid");
    if (!ev || !*ev) ev = lp_kv_get(c, "data.dir");
    fprintf(f, "# lstmprune sweep\n\n");
    fprintf(f, "- configuration: sweep.conf (model %s, units %s, classes %s)\n", model ? model : sw->kind.name,
            units ? units : row_str(c, "lm.units"), lp_kv_get(c, "data.classes") ? row_str(c, "data.classes") : "–");
    fprintf(f, "- training data: %s\n", train ? train : row_str(c, "data.dir"));
    fprintf(f, "- evaluation data: %s\n", ev && *ev ? ev : "(none)");
    fprintf(f, "- baseline: %s epoch(s), batch %s, lr %s; fine-tuning: %d epoch(s)%s\n", row_str(c, "train.epochs"),
            row_str(c, "train.batch"), row_str(c, "train.lr"), sw->popt.finetune_epochs,
            sw->popt.finetune_lr > 0 ? "" : " at the training lr");
    fprintf(f, "- statistics: %s steps, %d batches; kept-eigenvalue count: %s%s%s\n", lp_stats_steps_name(sw->popt.prune.steps),
            sw->popt.prune.stats_batches, lp_keep_count_name(sw->popt.prune.rates.count),
            lp_kv_get(c, "compat") ? "; compat preset: " : "", row_str(c, "compat"));
    fprintf(f, "- cells finished: %d of %d%s\n\n", done, total, done < total ? " (partial: rerun the sweep to continue)" : "");
}

/* A column of results.md's table: the rows' key and the header's title. */
typedef struct {
    char key[64], title[96];
} md_column;

static void md_add(md_column *c, int *n, const char *key, const char *title) {
    snprintf(c[*n].key, sizeof c[*n].key, "%s", key);
    snprintf(c[*n].title, sizeof c[*n].title, "%s", title);
    (*n)++;
}

/* The table's columns: identity and sizes, the primary figure pruned and fine-tuned, the other shown
 * figures fine-tuned, the latency. Returns how many. */
static int md_columns(const sweep *sw, md_column *c) {
    static const char *const head[][2] = {{"cell", "cell"},   {"target_rate", "target"}, {"mean_rate", "mean rate"},
                                          {"units", "units"}, {"parameters", "params"},  {"flops_per_", "FLOPs/"},
                                          {"checkpoint_bytes", "ckpt bytes"}};
    char key[64], title[96], t[64], name[32];
    int n = 0, others = 0;
    for (int i = 0; i < 7; i++) { /* "flops_per_" and "FLOPs/" name the task's step */
        const char *step = i == 5 ? sw->ops->step_name : "";
        snprintf(key, sizeof key, "%s%s", head[i][0], step);
        snprintf(title, sizeof title, "%s%s", head[i][1], step);
        md_add(c, &n, key, title);
    }
    title_of(sw, sw->primary, 1, t, sizeof t);
    snprintf(title, sizeof title, "%s pruned", t);
    md_add(c, &n, pkey(sw, "pruned", key, sizeof key), title);
    snprintf(title, sizeof title, "%s fine-tuned", t);
    md_add(c, &n, pkey(sw, "finetuned", key, sizeof key), title);
    for (const char *p = sw->ops->shown; lp_writer_next_name(&p, name, sizeof name);) {
        if (!strcmp(name, sw->primary)) continue;
        title_of(sw, name, 0, t, sizeof t);
        snprintf(key, sizeof key, "%s_finetuned", name);
        snprintf(title, sizeof title, "%s%s", t, others++ ? "" : " fine-tuned");
        md_add(c, &n, key, title);
    }
    md_add(c, &n, "latency_ms_b1", "lat B=1 ms");
    md_add(c, &n, "latency_ms_bn", "lat B=N ms");
    return n;
}

/* The table: one row per finished model, "–" where a value does not apply. */
static void md_table(lp_writer *w, const sweep *sw) {
    md_column c[LP_SWEEP_MAX_COLUMNS];
    const int n = md_columns(sw, c);
    for (int k = 0; k < n; k++) lp_writer_cell(w, c[k].title);
    lp_writer_row(w);
    lp_writer_align(w, "lrrlr");
    for (int i = 0; i < sw->n_rows; i++) {
        if (sw->rows[i].count == 0) continue;
        for (int k = 0; k < n; k++) lp_writer_cell(w, dash(row_str(&sw->rows[i], c[k].key)));
        lp_writer_row(w);
    }
}

/* The plots drawn (have_png[5]), or why there are none. */
static void md_plots(FILE *f, const sweep *sw, const int *have_png) {
    static const char *const what[5] = {"vs pruning rate", "vs parameters", "vs measured latency",
                                        "eigenvalue spectra of the baseline", "training curves of the baseline"};
    char ptitle[64], png[64];
    title_of(sw, sw->primary, 1, ptitle, sizeof ptitle);
    int any = 0;
    for (int i = 0; i < 5; i++)
        if (have_png[i]) {
            if (!any) fprintf(f, "\n## Plots\n");
            any = 1;
            fprintf(f, "\n![%s%s%s](%s)\n", i < 3 ? ptitle : "", i < 3 ? " " : "", what[i], plot_png(sw, i, png, sizeof png));
        }
    if (!any) fprintf(f, "\n(No plots: gnuplot is not installed. The numbers are in results.csv and spectra.csv.)\n");
}

static lp_status write_md(const sweep *sw, int done, int total, const int *have_png) {
    lp_writer w;
    LP_TRY(lp_writer_open(&w, sw->dir, "results.md", LP_WRITER_MD));
    FILE *f = w.f;
    md_header(f, sw, done, total);
    char titles[256] = "", title[64], name[32];
    for (const char *p = sw->ops->shown; lp_writer_next_name(&p, name, sizeof name);) {
        title_of(sw, name, 0, title, sizeof title);
        snprintf(titles + strlen(titles), sizeof titles - strlen(titles), "%s, ", title);
    }
    fprintf(f, "Metrics on the evaluation data: %s\"pruned\" right after the units were removed, "
               "\"fine-tuned\" after fine-tuning (the baseline and the prior show their own metrics in both). "
               "Rates are the target and the achieved mean over unit groups; units are per group (%s). Latency: median "
               "no-gradient forward pass, batch 1 and batch %d, %d %ss, measured on this machine during the sweep.\n\n",
            titles, sw->ops->groups_help, sw->popt.lat_batch, sw->popt.lat_frames, sw->ops->step_name);
    md_table(&w, sw);
    md_plots(f, sw, have_png);
    fprintf(f, "\nPer-cell reports: cells/<cell>/report.md.\n");
    return lp_writer_commit(&w);
}

/* One plotted series: cells with the same schedule, rule and criterion, ordered by target rate. */
typedef struct {
    char title[96];
    int idx[MAX_ITEMS * 2];
    int n;
} series;

static int cmp_target(const void *a, const void *b, const sweep *sw) {
    double x = row_num(&sw->rows[*(const int *)a], "target_rate"), y = row_num(&sw->rows[*(const int *)b], "target_rate");
    return (x > y) - (x < y);
}

static void sort_series(series *se, const sweep *sw) {
    for (int i = 1; i < se->n; i++) /* insertion sort: a handful of points */
        for (int j = i; j > 0 && cmp_target(&se->idx[j - 1], &se->idx[j], sw) > 0; j--) {
            int t = se->idx[j];
            se->idx[j] = se->idx[j - 1];
            se->idx[j - 1] = t;
        }
}

static void block_row(FILE *g, const sweep *sw, const lp_kv *r) {
    char kp[64], kf[64];
    fprintf(g, "%s %s %s %s %s %s\n", row_str(r, "mean_rate"), dash(row_str(r, pkey(sw, "pruned", kp, sizeof kp))),
            dash(row_str(r, pkey(sw, "finetuned", kf, sizeof kf))), row_str(r, "parameters"), row_str(r, "latency_ms_bn"),
            row_str(r, "target_rate"));
}

/* Line style of a series: colour = criterion, dash = rate rule (ISS rows' "lambda=..." count as eigen), point = schedule, width = compensation, so
 * a grid of 10+ series stays readable. */
static void series_style(const sweep *sw, const series *se, char *buf, size_t n) {
    static const char *const crit[] = {"gm", "gm-exact", "l2", "l1", "random"};
    static const char *const col[] = {"#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#7f7f7f", "#9467bd"};
    const lp_kv *r = &sw->rows[se->idx[0]];
    int c = 5;
    for (int i = 0; i < 5; i++)
        if (!strcmp(row_str(r, "criterion"), crit[i])) c = i;
    const char *sched = row_str(r, "schedule");
    int pt = !strcmp(sched, "oneshot") ? 7 : !strcmp(sched, "soft") ? 4 : 8;
    lp_rate_rule rule = LP_RATE_RULE_EIGEN; /* dash: eigen solid, uniform dashed, sensitivity dotted, given dash-dot */
    lp_rate_rule_parse(row_str(r, "rule"), &rule);
    static const int dash[] = {1, 2, 3, 4};
    snprintf(buf, n, "lw %d lc rgb '%s' dt %d pt %d", !strcmp(row_str(r, "compensate"), "mean") ? 4 : 2, col[c],
             dash[rule], pt);
}

/* "plot " and one curve per series ($Sk) plus the ISS points ($ISS), columns xcol:ycol of the data
 * blocks; returns the separator the caller puts before a further curve. */
static const char *plot_series(FILE *g, const sweep *sw, const series *se, int ns, int n_iss, int xcol, int ycol) {
    const char *sep = "", *next = ", \\\n     ";
    fprintf(g, "plot ");
    for (int k = 0; k < ns; k++) {
        char sty[96];
        series_style(sw, &se[k], sty, sizeof sty);
        fprintf(g, "%s$S%d using %d:%d with linespoints %s title '%s'", sep, k, xcol, ycol, sty, se[k].title);
        sep = next;
    }
    if (n_iss) {
        fprintf(g, "%s$ISS using %d:%d with points pt 9 ps 2 title 'ISS group lasso'", sep, xcol, ycol);
        sep = next;
    }
    return sep;
}

static int count_data_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int c, lines = 0;
    while ((c = fgetc(f)) != EOF) lines += c == '\n';
    fclose(f);
    return lines > 0 ? lines - 1 : 0; /* minus the header */
}

/* Group the finished oneshot/soft rows into series (one per schedule + rule + criterion, sorted by rate);
 * returns how many, and the number of finished ISS rows in *n_iss. */
static int collect_series(const sweep *sw, series *se, int *n_iss) {
    int ns = 0;
    *n_iss = 0;
    for (int i = 2; i < sw->n_rows; i++) {
        const lp_kv *r = &sw->rows[i];
        char key[64];
        if (r->count == 0 || !lp_kv_get(r, pkey(sw, "finetuned", key, sizeof key))) continue;
        if (!strcmp(row_str(r, "schedule"), "iss")) {
            (*n_iss)++;
            continue;
        }
        char title[96];
        snprintf(title, sizeof title, "%s %s %s%s", row_str(r, "schedule"), row_str(r, "rule"), row_str(r, "criterion"),
                 !strcmp(row_str(r, "compensate"), "mean") ? " +comp" : "");
        int k = 0;
        while (k < ns && strcmp(se[k].title, title)) k++;
        if (k == ns) {
            if (ns == MAX_ITEMS * 4) continue;
            snprintf(se[ns++].title, sizeof se[0].title, "%s", title);
        }
        if (se[k].n < MAX_ITEMS * 2) se[k].idx[se[k].n++] = i;
    }
    for (int k = 0; k < ns; k++) sort_series(&se[k], sw);
    return ns;
}

/* The data blocks $S0.. (one per series), $ISS and $BASE (with baseline_gap); returns 1 if the baseline
 * is finished. */
static int write_data_blocks(FILE *g, const sweep *sw, const series *se, int ns, int n_iss) {
    const char *p = sw->primary;
    char kf[64];
    pkey(sw, "finetuned", kf, sizeof kf);
    for (int k = 0; k < ns; k++) {
        fprintf(g, "$S%d << EOD\n# mean_rate %s_pruned %s_finetuned parameters latency_bn target\n", k, p, p);
        for (int j = 0; j < se[k].n; j++) block_row(g, sw, &sw->rows[se[k].idx[j]]);
        fprintf(g, "EOD\n");
    }
    if (n_iss) {
        fprintf(g, "$ISS << EOD\n");
        for (int i = 2; i < sw->n_rows; i++)
            if (sw->rows[i].count && !strcmp(row_str(&sw->rows[i], "schedule"), "iss") && lp_kv_get(&sw->rows[i], kf))
                block_row(g, sw, &sw->rows[i]);
        fprintf(g, "EOD\n");
    }
    const lp_kv *base = &sw->rows[0];
    if (!(base->count && lp_kv_get(base, kf))) return 0;
    fprintf(g, "$BASE << EOD\n");
    block_row(g, sw, base);
    fprintf(g, "EOD\nbaseline_%s = %s\n", p, row_str(base, kf));
    return 1;
}

/* <primary>_vs_rate.png (before and after fine-tuning, two panels with one key), <primary>_vs_params.png and
 * <primary>_vs_latency.png (fine-tuned models). */
static void plot_primary(FILE *g, const sweep *sw, const series *se, int ns, int n_iss, int have_base) {
    char t[64], png[64];
    const char *p = sw->primary;
    title_of(sw, p, 0, t, sizeof t);
    fprintf(g, "\nset terminal pngcairo size 1500,600 noenhanced\nset output '%s'\n"
               "set multiplot title '%s vs mean pruning rate'\nset tmargin at screen 0.88\nset bmargin at screen 0.12\n",
            plot_png(sw, 0, png, sizeof png), t);
    for (int pass = 0; pass < 2; pass++) {
        fprintf(g, "set title '%s'\nset xlabel 'mean pruning rate over unit groups (achieved)'\nset ylabel '%s'\n",
                pass ? "after fine-tuning" : "pruned, before fine-tuning", t);
        fprintf(g, "%s", pass ? "set lmargin at screen 0.47\nset rmargin at screen 0.77\nset key at screen 0.79,0.88 left top samplen 3\n"
                              : "set lmargin at screen 0.06\nset rmargin at screen 0.36\nunset key\n");
        const char *sep = plot_series(g, sw, se, ns, n_iss, 1, pass ? 3 : 2);
        if (have_base) fprintf(g, "%sbaseline_%s with lines dt 2 lc rgb 'black' title 'baseline (unpruned)'", sep, p);
        fprintf(g, "\n");
    }
    fprintf(g, "unset multiplot\nset key outside right top\nset lmargin -1\nset rmargin -1\nset tmargin -1\nset bmargin -1\n"
               "set terminal pngcairo size 1200,520 noenhanced\n");
    for (int pass = 0; pass < 2; pass++) {
        fprintf(g, "\nset output '%s'\nset title '%s after fine-tuning vs %s'\nset xlabel '%s'\nset ylabel '%s'\n",
                plot_png(sw, pass ? 2 : 1, png, sizeof png), t, pass ? "measured latency" : "parameters",
                pass ? "latency of a no-gradient forward pass at batch N (ms, this machine)" : "parameters", t);
        const char *sep = plot_series(g, sw, se, ns, n_iss, pass ? 5 : 4, 3);
        if (have_base) fprintf(g, "%s$BASE using %d:3 with points pt 5 ps 2 lc rgb 'black' title 'baseline'", sep, pass ? 5 : 4);
        fprintf(g, "\n");
    }
}

/* The data blocks $G0.. of spectra.csv, one per unit group (names[k]: group k's); returns how many. */
static int spectra_blocks(FILE *g, const sweep *sw, char names[][32]) {
    char spath[4096];
    FILE *sf = fopen(lp_rundir_path(sw->dir, "spectra.csv", spath, sizeof spath), "r");
    if (!sf) return 0;
    char line[512];
    int ng = 0, cur = -1;
    if (!fgets(line, sizeof line, sf)) line[0] = 0; /* header */
    while (fgets(line, sizeof line, sf)) {
        char name[32];
        int h, idx;
        double eig, frac, cum;
        if (sscanf(line, "%31[^,],%d,%d,%lf,%lf,%lf", name, &h, &idx, &eig, &frac, &cum) != 6) continue;
        if (cur < 0 || strcmp(names[cur], name)) {
            if (cur >= 0) fprintf(g, "EOD\n");
            if (ng == LP_MAX_GROUPS) break;
            cur = ng++;
            snprintf(names[cur], sizeof names[cur], "%s", name);
            fprintf(g, "$G%d << EOD\n# index fraction cumulative index/H\n", cur);
        }
        fprintf(g, "%d %.8g %.8f %.6f\n", idx, frac, cum, (double)idx / h);
    }
    if (cur >= 0) fprintf(g, "EOD\n");
    fclose(sf);
    return ng;
}

/* spectra.png from spectra.csv (the baseline's eigenvalues per unit group); returns 1 if drawn. */
static int plot_spectra(FILE *g, const sweep *sw) {
    char names[LP_MAX_GROUPS][32];
    const int ng = spectra_blocks(g, sw, names);
    if (ng == 0) return 0;
    fprintf(g, "\nset output 'spectra.png'\nset key inside right top\nset multiplot layout 1,2 title 'Response "
               "covariance spectra of the baseline per unit group'\n");
    fprintf(g, "set title 'eigenvalue / total energy'\nset xlabel 'eigenvalue index'\nset ylabel 'fraction of "
               "energy'\nset logscale y\nplot ");
    for (int k = 0; k < ng; k++)
        fprintf(g, "%s$G%d using 1:($2 > 0 ? $2 : 1/0) with linespoints title '%s'", k ? ", " : "", k, names[k]);
    fprintf(g, "\nunset logscale y\nset key inside right bottom\nset title 'cumulative energy'\n"
               "set xlabel 'fraction of the group''s units (k/H)'\n"
               "set ylabel 'energy kept'\nset yrange [0:1.02]\nplot ");
    for (int k = 0; k < ng; k++) fprintf(g, "%s$G%d using 4:3 with lines lw 2 title '%s'", k ? ", " : "", k, names[k]);
    fprintf(g, "\nset yrange [*:*]\nunset multiplot\nset key outside right top\n");
    return 1;
}

/* curves.png: the baseline's training loss per step and (up to three of) its shown figures on the
 * validation data per epoch (valid.tsv: epoch step <figures>...); returns 1 if drawn. */
static int plot_curves(FILE *g, const sweep *sw) {
    char tpath[4096], vpath[4096];
    int nt = count_data_lines(lp_rundir_path(sw->dir, "baseline/train.tsv", tpath, sizeof tpath));
    int nv = count_data_lines(lp_rundir_path(sw->dir, "baseline/valid.tsv", vpath, sizeof vpath));
    if (nt == 0) return 0;
    fprintf(g, "\nset output 'curves.png'\nset datafile separator '\\t'\nset key inside right top\n"
               "set multiplot layout 1,2 title 'Baseline training'\n");
    fprintf(g, "set title 'training loss per step'\nset xlabel 'optimizer step'\nset ylabel 'loss'\nset logscale y\n"
               "plot 'baseline/train.tsv' skip 1 using 1:4 with lines title 'loss'\nunset logscale y\n");
    if (nv > 0) {
        fprintf(g, "set key inside right bottom\nset title 'validation after each epoch'\nset xlabel 'epoch'\nset ylabel 'metric'\nplot ");
        char name[32], fig[32], t[64];
        int k = 0;
        for (const char *p = sw->ops->shown; k < 3 && lp_writer_next_name(&p, name, sizeof name); k++) {
            int col = 3; /* the figure's column in valid.tsv */
            for (const char *f = sw->ops->figures; lp_writer_next_name(&f, fig, sizeof fig) && strcmp(fig, name); col++) continue;
            title_of(sw, name, 0, t, sizeof t);
            fprintf(g, "%s%s skip 1 using 1:%d with linespoints%s title '%s'", k ? ", " : "", k ? "''" : "'baseline/valid.tsv'",
                    col, k < 2 ? " lw 2" : "", t);
        }
        fprintf(g, "\n");
    }
    fprintf(g, "unset multiplot\nset datafile separator whitespace\nset key outside right top\n");
    return 1;
}

/* Run gnuplot on plots.gp where it exists (a missing gnuplot is not an error: the CSV is the result);
 * have_png[i] stays 1 only for a PNG that was written. Returns how many were. */
static int draw_pngs(const sweep *sw, int *have_png) {
    char names[5][64];
    const char *png[5];
    for (int i = 0; i < 5; i++) png[i] = plot_png(sw, i, names[i], sizeof names[i]);
    lp_writer_plot p = {.dir = sw->dir, .script = "plots.gp", .log = "plots.log", .png = png, .n = 5};
    if (lp_writer_gnuplot(&p, have_png)) lp_sweep_say(sw, "gnuplot reported errors (see %s/plots.log)", sw->dir);
    int drawn = 0;
    for (int i = 0; i < 5; i++) drawn += have_png[i];
    return drawn;
}

/* plots.gp (always) and the PNGs (where gnuplot runs). have_png[5] in the order of write_md; *drawn
 * counts the PNGs written. */
static lp_status write_plots(const sweep *sw, int *have_png, int *drawn_out) {
    for (int i = 0; i < 5; i++) have_png[i] = 0;
    *drawn_out = 0;
    series *se = lp_calloc(MAX_ITEMS * 4, sizeof *se);
    if (!se) return LP_ERR_NOMEM;
    lp_writer w;
    lp_status s = lp_writer_open(&w, sw->dir, "plots.gp", LP_WRITER_TEXT);
    if (s != LP_OK) {
        lp_free(se);
        return s;
    }
    FILE *g = w.f;
    fprintf(g, "# lstmprune sweep plots: `cd %s && gnuplot plots.gp` (data inline, from results.csv and spectra.csv)\n", sw->dir);
    fprintf(g, "set terminal pngcairo size 1200,520 noenhanced\nset grid\nset key outside right top\n");
    int n_iss, ns = collect_series(sw, se, &n_iss);
    int have_base = write_data_blocks(g, sw, se, ns, n_iss);
    if (ns > 0 || n_iss) {
        plot_primary(g, sw, se, ns, n_iss, have_base);
        have_png[0] = have_png[1] = have_png[2] = 1;
    }
    have_png[3] = plot_spectra(g, sw);
    have_png[4] = plot_curves(g, sw);
    lp_free(se);
    LP_TRY(lp_writer_commit(&w));
    *drawn_out = draw_pngs(sw, have_png);
    return LP_OK;
}

lp_status lp_sweep_write_outputs(const sweep *sw, int done, int total, int *plots) {
    int have_png[5] = {0};
    LP_TRY(write_csv(sw));
    LP_TRY(write_plots(sw, have_png, plots));
    return write_md(sw, done, total, have_png);
}
