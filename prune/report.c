/* report: see report.h. */
#include "prune/report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/fileio.h"
#include "core/json.h"

lp_status lp_report_measure(lp_model *m, const char *label, const char *ckpt, const lp_batcher_config *bc, int top_k,
                            int lat_batch, int lat_frames, int reps, lp_report_model *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->label, sizeof row->label, "%s", label);
    if (ckpt) snprintf(row->ckpt, sizeof row->ckpt, "%s", ckpt);
    row->params = lp_model_numel(m);
    row->flops_frame = lp_model_flops_per_frame(m);
    struct stat st;
    if (ckpt && stat(ckpt, &st) == 0) row->ckpt_bytes = (size_t)st.st_size;
    row->lat_batch = lat_batch;
    row->lat_frames = lat_frames;
    LP_TRY(lp_model_latency(m, 1, lat_frames, reps, &row->lat_b1_ms));
    LP_TRY(lp_model_latency(m, lat_batch, lat_frames, reps, &row->lat_bn_ms));
    if (bc) {
        LP_TRY(lp_evaluate(m, bc, top_k, NULL, NULL, &row->eval));
        row->have_eval = 1;
    }
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

static lp_status write_json(const char *path, const lp_prune_plan *plan, const lp_report_model *rows,
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
            fprintf(f, ", \"reference\": true, \"gap\": %.6f, \"map\": %.6f, \"hit1\": %.6f, \"perr\": %.6f}", r->eval.m.gap,
                    r->eval.m.map, r->eval.m.hit1, r->eval.m.perr);
            continue;
        }
        fprintf(f, ", \"checkpoint\": ");
        lp_json_str(f, r->ckpt);
        fprintf(f, ", \"parameters\": %zu, \"flops_per_frame\": %.6g, \"checkpoint_bytes\": %zu, ", r->params,
                r->flops_frame, r->ckpt_bytes);
        fprintf(f, "\"latency_ms_batch1\": %.4f, \"latency_ms_batchN\": %.4f, \"latency_batch\": %d, \"latency_frames\": %d",
                r->lat_b1_ms, r->lat_bn_ms, r->lat_batch, r->lat_frames);
        if (r->have_eval) {
            fprintf(f, ", \"gap\": %.6f, \"map\": %.6f, \"hit1\": %.6f, \"perr\": %.6f, \"loss\": %.6f, \"videos\": %lld",
                    r->eval.m.gap, r->eval.m.map, r->eval.m.hit1, r->eval.m.perr, r->eval.loss, (long long)r->eval.videos);
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    return lp_atomic_commit(&af);
}

static lp_status write_md(const char *path, const lp_prune_plan *plan, const lp_report_model *rows,
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
    fprintf(f, "| model | parameters | FLOPs/frame | checkpoint bytes | latency B=1 (ms) | latency B=N (ms) | GAP@20 | mAP | "
               "Hit@1 | PERR |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < n; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) fprintf(f, "| %s | – | – | – | – | – |", r->label);
        else
            fprintf(f, "| %s | %zu | %.4g | %zu | %.3f | %.3f (N=%d) |", r->label, r->params, r->flops_frame, r->ckpt_bytes,
                    r->lat_b1_ms, r->lat_bn_ms, r->lat_batch);
        if (r->have_eval) fprintf(f, " %.4f | %.4f | %.4f | %.4f |\n", r->eval.m.gap, r->eval.m.map, r->eval.m.hit1, r->eval.m.perr);
        else fprintf(f, " – | – | – | – |\n");
    }
    if (n > 0)
        fprintf(f, "\nLatency: median of repeated no-gradient forward passes over %d frames per video, measured on "
                   "this machine in this run.\n",
                rows[0].lat_frames);
    return lp_atomic_commit(&af);
}

static lp_status write_csvs(const char *dir, const lp_prune_plan *plan, const lp_report_model *rows, int n) {
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
    fprintf(af.f, "label,parameters,flops_per_frame,checkpoint_bytes,latency_ms_b1,latency_ms_bn,latency_batch,gap,map,hit1,perr\n");
    for (int i = 0; i < n; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) {
            fprintf(af.f, "%s,,,,,,,%.6f,%.6f,%.6f,%.6f\n", r->label, r->eval.m.gap, r->eval.m.map, r->eval.m.hit1, r->eval.m.perr);
            continue;
        }
        fprintf(af.f, "%s,%zu,%.6g,%zu,%.4f,%.4f,%d,", r->label, r->params, r->flops_frame, r->ckpt_bytes, r->lat_b1_ms,
                r->lat_bn_ms, r->lat_batch);
        if (r->have_eval) fprintf(af.f, "%.6f,%.6f,%.6f,%.6f\n", r->eval.m.gap, r->eval.m.map, r->eval.m.hit1, r->eval.m.perr);
        else fprintf(af.f, ",,,\n");
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

lp_status lp_report_write(const char *dir, const lp_prune_plan *plan, const lp_report_model *rows,
                          int n_rows, const lp_kv *info) {
    LP_TRY(lp_mkdirs(dir));
    LP_TRY(write_csvs(dir, plan, rows, n_rows));
    int have_plot = plot_spectra(dir, plan);
    char path[4096];
    snprintf(path, sizeof path, "%s/report.json", dir);
    LP_TRY(write_json(path, plan, rows, n_rows, info));
    snprintf(path, sizeof path, "%s/report.md", dir);
    return write_md(path, plan, rows, n_rows, info, have_plot);
}

void lp_report_print(FILE *f, const lp_report_model *rows, int n_rows, int top_k) {
    fprintf(f, "%-16s %10s %12s %10s %10s %10s %8s %8s %8s %8s\n", "model", "params", "FLOPs/frame", "ckpt KB", "lat B=1",
            "lat B=N", "GAP@k", "mAP", "Hit@1", "PERR");
    for (int i = 0; i < n_rows; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) fprintf(f, "%-16s %10s %12s %10s %10s %10s", r->label, "-", "-", "-", "-", "-");
        else
            fprintf(f, "%-16s %10zu %12.4g %10.1f %8.2fms %8.2fms", r->label, r->params, r->flops_frame, r->ckpt_bytes / 1024.0,
                    r->lat_b1_ms, r->lat_bn_ms);
        if (r->have_eval) fprintf(f, " %8.4f %8.4f %8.4f %8.4f\n", r->eval.m.gap, r->eval.m.map, r->eval.m.hit1, r->eval.m.perr);
        else fprintf(f, "\n");
    }
    (void)top_k;
}
