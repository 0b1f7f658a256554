/* sweep: run and resume (sweep.h) — one baseline trained and measured, then every cell of the grid run
 * as a pipeline in its own directory, each finished cell's row kept in its result.txt so that a rerun
 * skips it; and the latency re-measurement of a finished sweep. The configuration and the grid are in
 * sweep_grid.c, the outputs in sweep_out.c (sweep_int.h). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/blas_env.h"
#include "core/ckpt.h"
#include "core/clock.h"
#include "core/dist.h"
#include "core/fileio.h"
#include "core/log.h"
#include "core/rundir.h"
#include "experiments/report.h"
#include "experiments/sensitivity.h"
#include "experiments/sweep_int.h"
#include "experiments/writer.h"
#include "train/trainer.h"

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

/* rm -rf for a cell directory left by a killed run (no symlinks followed). */
static lp_status remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? LP_OK : lp_errorf(LP_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return lp_errorf(LP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        struct dirent *e;
        lp_status s = LP_OK;
        while (s == LP_OK && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[4096];
            s = remove_tree(lp_rundir_path(path, e->d_name, sub, sizeof sub));
        }
        closedir(d);
        LP_TRY(s);
        if (rmdir(path) != 0) return lp_errorf(LP_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return LP_OK;
    }
    if (unlink(path) != 0) return lp_errorf(LP_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return LP_OK;
}

/* ---- result rows ---- */

/* "<figure>_<suffix>" for each figure the task's tables show (score's values, "%.6f"). */
static lp_status set_metrics(lp_kv *row, const lp_task_ops *ops, const char *suffix, const lp_score *sc) {
    char name[32], key[64];
    for (const char *p = ops->shown; lp_writer_next_name(&p, name, sizeof name);) {
        snprintf(key, sizeof key, "%s_%s", name, suffix);
        LP_TRY(lp_kv_setf(row, key, "%.6f", lp_score_get(sc, name)));
    }
    return LP_OK;
}

static void units_string(const lp_task *t, char *buf, size_t n) {
    size_t off = 0;
    buf[0] = 0;
    for (int g = 0; g < t->n_groups && off < n; g++)
        off += (size_t)snprintf(buf + off, n - off, g ? "/%d" : "%d", t->groups[g].units);
}

/* The size/latency columns of a measured model. */
static lp_status set_model_cols(lp_kv *row, const lp_report_model *r, const lp_task *t) {
    char units[256], key[64];
    units_string(t, units, sizeof units);
    LP_TRY(lp_kv_set(row, "units", units));
    LP_TRY(lp_kv_setf(row, "parameters", "%zu", r->params));
    snprintf(key, sizeof key, "flops_per_%s", t->ops->step_name);
    LP_TRY(lp_kv_setf(row, key, "%.6g", r->flops_step));
    LP_TRY(lp_kv_setf(row, "checkpoint_bytes", "%zu", r->ckpt_bytes));
    LP_TRY(lp_kv_setf(row, "latency_ms_b1", "%.4f", r->lat_b1_ms));
    return lp_kv_setf(row, "latency_ms_bn", "%.4f", r->lat_bn_ms);
}

/* ---- the run ---- */

void lp_sweep_say(const sweep *sw, const char *fmt, ...) {
    if (sw->o->quiet) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lp_log(LP_LOG_INFO, "[sweep] %s", msg);
}

/* The model of checkpoint `path` as a task with the sweep's configuration over the checkpoint's. */
static lp_status open_task(const sweep *sw, const char *path, lp_task **t) {
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, path));
    lp_kv cfg;
    lp_kv_init(&cfg);
    lp_status s = lp_kv_merge(&cfg, &sw->cfg);
    if (s == LP_OK) s = sw->kind.open(&sw->kind, &cfg, &c, path, t);
    lp_kv_free(&cfg);
    lp_ckpt_free(&c);
    return s;
}

/* The result file of row i: 0 the baseline, 1 the prior (the task's reference), 2 + k cell k. */
static const char *row_path(const sweep *sw, int i, char *buf, size_t n) {
    if (i < 2) snprintf(buf, n, "%.3000s/cells/baseline/%s", sw->dir, i ? "prior.txt" : "result.txt");
    else snprintf(buf, n, "%.3000s/cells/%s/result.txt", sw->dir, sw->cells[i - 2].name);
    return buf;
}

/* *finished = 1 when the run whose last checkpoint is `last` went through all its epochs. */
static lp_status run_finished(const char *last, int *finished) {
    lp_ckpt lc;
    LP_TRY(lp_ckpt_load(&lc, last));
    const lp_kv *m = &lc.meta;
    *finished = lp_kv_get_int_or(m, "state.epoch", 0) >= lp_kv_get_int_or(m, "train.epochs", 1) &&
                lp_kv_get_int_or(m, "state.batch", 0) == 0;
    lp_ckpt_free(&lc);
    return LP_OK;
}

/* Train the baseline into bdir, or continue a run that was killed (a finished run is not resumed: it was
 * killed after its last epoch, before the marker `trained` was written); then write the marker. */
static lp_status train_baseline(const sweep *sw, const char *bdir) {
    char marker[4096], last[4096];
    lp_rundir_path(bdir, "trained", marker, sizeof marker);
    if (file_exists(marker)) return LP_OK;
    lp_train_opts to = {.run_dir = bdir, .quiet = sw->o->quiet};
    lp_train_result tr;
    lp_kv c;
    lp_kv_init(&c);
    lp_status s;
    if (file_exists(lp_rundir_path(bdir, "last.ckpt", last, sizeof last))) {
        int finished;
        s = run_finished(last, &finished);
        if (s == LP_OK && !finished) {
            lp_sweep_say(sw, "continuing the baseline training in %s", bdir);
            to.resume = 1;
            s = lp_train(&sw->kind, &c, &to, &tr);
        }
    } else {
        lp_sweep_say(sw, "training the baseline into %s", bdir);
        s = lp_dist_written(lp_dist_lead() ? remove_tree(bdir) : LP_OK);
        if (s == LP_OK) s = lp_kv_merge(&c, &sw->cfg);
        if (s == LP_OK) s = lp_train(&sw->kind, &c, &to, &tr);
    }
    lp_kv_free(&c);
    if (s != LP_OK) return lp_error_wrap(s, "baseline");
    return lp_dist_written(lp_dist_lead() ? lp_file_write_all(marker, "done\n", 5) : LP_OK);
}

/* The columns of a measured model t: sizes and latency of fin, the figures of pr as "pruned" and of fin
 * as "fine-tuned" (the baseline is both), and the wall time since t0. */
static lp_status set_measured(lp_kv *row, const sweep *sw, const lp_task *t, const lp_report_model *pr,
                              const lp_report_model *fin, double t0) {
    LP_TRY(set_model_cols(row, fin, t));
    if (pr->score.n) LP_TRY(set_metrics(row, sw->ops, "pruned", &pr->score));
    if (fin->score.n) LP_TRY(set_metrics(row, sw->ops, "finetuned", &fin->score));
    return lp_kv_setf(row, "seconds", "%.1f", lp_now_s() - t0);
}

/* The baseline's row (and spectra.csv, from its responses). */
static lp_status baseline_row(const sweep *sw, lp_task *t, lp_kv *row) {
    lp_report_model r;
    double t0 = lp_now_s();
    LP_TRY(lp_report_measure(t, "baseline", sw->baseline_ckpt, 1, sw->popt.lat_batch, sw->popt.lat_frames,
                             sw->popt.lat_reps, &r));
    LP_TRY(lp_dist_written(lp_dist_lead() ? lp_sweep_write_spectra(sw, t) : LP_OK));
    lp_kv_set(row, "cell", "baseline");
    lp_kv_set(row, "schedule", "baseline");
    lp_kv_set(row, "target_rate", "0.00");
    lp_kv_set(row, "mean_rate", "0.0000");
    return set_measured(row, sw, t, &r, &r, t0);
}

/* The reference every model must beat (the video task's input-ignoring prior); *have = 0 without one. */
static lp_status prior_row(const sweep *sw, lp_task *t, lp_kv *prior, int *have) {
    lp_report_model ref;
    LP_TRY(lp_report_reference(t, &ref, have));
    if (!*have) return LP_OK;
    lp_kv_set(prior, "cell", "prior");
    lp_kv_set(prior, "schedule", "prior (no input)");
    LP_TRY(set_metrics(prior, sw->ops, "pruned", &ref.score));
    return set_metrics(prior, sw->ops, "finetuned", &ref.score);
}

/* The baseline's row (and the prior's, when there is one) into cdir. */
static lp_status write_baseline_rows(const char *cdir, const lp_kv *prior, const lp_kv *row, const char *result_path) {
    char path[4096];
    LP_TRY(lp_mkdirs(cdir));
    if (prior) LP_TRY(lp_kv_write_file(prior, lp_rundir_path(cdir, "prior.txt", path, sizeof path)));
    return lp_kv_write_file(row, result_path);
}

/* Measure the trained baseline (its row, the spectra, the task's reference row) into cdir. */
static lp_status measure_baseline(const sweep *sw, const char *cdir, const char *result_path) {
    lp_sweep_say(sw, "measuring the baseline");
    lp_task *t;
    LP_TRY(open_task(sw, sw->baseline_ckpt, &t));
    int have_ref = 0;
    lp_kv row, prior;
    lp_kv_init(&row);
    lp_kv_init(&prior);
    lp_status s = baseline_row(sw, t, &row);
    if (s == LP_OK) s = prior_row(sw, t, &prior, &have_ref);
    if (s == LP_OK) s = lp_dist_written(lp_dist_lead() ? write_baseline_rows(cdir, have_ref ? &prior : NULL, &row, result_path)
                                                      : LP_OK);
    lp_kv_free(&row);
    lp_kv_free(&prior);
    lp_task_free(t);
    return s;
}

/* Train (or continue) the baseline; then measure it and the input-ignoring prior. */
static lp_status run_baseline(const sweep *sw, lp_sweep_summary *sum) {
    char bdir[4096], path[4096], cdir[4096];
    if (file_exists(row_path(sw, 0, path, sizeof path))) return LP_OK;
    lp_rundir_path(sw->dir, "baseline", bdir, sizeof bdir);
    lp_rundir_path(sw->dir, "cells/baseline", cdir, sizeof cdir);
    sum->baseline_run = 1;
    LP_TRY(train_baseline(sw, bdir));
    lp_status s = measure_baseline(sw, cdir, path);
    return s == LP_OK ? LP_OK : lp_error_wrap(s, "baseline");
}

/* The pipeline options of cell c, run in cdir with the configuration cfg (a copy of the sweep's). */
static void cell_opts(const sweep *sw, const lp_sweep_cell *c, const char *cdir, lp_kv *cfg, lp_pipeline_opts *o) {
    *o = sw->popt;
    o->kind = &sw->kind;
    o->cfg = cfg;
    o->out_dir = cdir;
    o->quiet = sw->o->quiet;
    o->schedule = c->schedule;
    o->prune.rates.rule = c->rule;
    o->prune.criterion = c->criterion;
    o->prune.rates.target_rate = c->target_rate;
    /* oneshot and iterative prune the baseline; soft trains from scratch; ISS from scratch too, or from the
     * baseline with prune.iss_from = baseline (Wen et al.'s fine-tuning with the group lasso) */
    const char *iss_from = lp_kv_get(&sw->cfg, "prune.iss_from");
    const int from_base = c->schedule == LP_SCHED_ONESHOT || c->schedule == LP_SCHED_ITERATIVE ||
                          (c->schedule == LP_SCHED_ISS && iss_from && !strcmp(iss_from, "baseline"));
    o->baseline_ckpt = from_base ? sw->baseline_ckpt : NULL;
    if (c->schedule == LP_SCHED_ISS) o->iss_lambda = c->iss_lambda;
    o->prune.compensate = c->compensate; /* never for soft and ISS cells (schedule_compensate) */
}

/* What cell c is: schedule, rule, criterion, target rate and compensation (an ISS cell: its λ). */
static void cell_identity(lp_kv *row, const lp_sweep_cell *c) {
    lp_kv_set(row, "cell", c->name);
    lp_kv_set(row, "schedule", lp_schedule_name(c->schedule));
    if (c->schedule == LP_SCHED_ISS) {
        lp_kv_setf(row, "rule", "lambda=%g", c->iss_lambda);
        lp_kv_set(row, "criterion", "iss");
        return;
    }
    lp_kv_set(row, "rule", lp_rate_rule_name(c->rule));
    lp_kv_set(row, "criterion", lp_criterion_name(c->criterion));
    if (c->rule == LP_RATE_RULE_GIVEN) lp_kv_set(row, "target_rate", "-"); /* per-group rates, no mean target */
    else lp_kv_setf(row, "target_rate", "%.2f", c->target_rate);
    lp_kv_set(row, "compensate", c->compensate ? "mean" : "none");
}

/* The row of a finished cell from the pipeline's models: [1] pruned, [2] fine-tuned where there was
 * fine-tuning (else the pruned model is also the final one). */
static lp_status cell_row(const sweep *sw, const lp_sweep_cell *c, const lp_pipeline_opts *o, const lp_pipeline_result *res,
                          double t0, lp_kv *row) {
    if (res->n_rows < 2) return lp_errorf(LP_ERR_FORMAT, "the pipeline reported %d models", res->n_rows);
    const int tuned = o->finetune_epochs > 0 && res->n_rows > 2 && !res->rows[2].reference;
    const lp_report_model *pr = &res->rows[1], *fin = &res->rows[tuned ? 2 : 1];
    lp_task *m;
    LP_TRY(open_task(sw, fin->ckpt, &m));
    cell_identity(row, c);
    lp_status s = lp_kv_setf(row, "mean_rate", "%.4f", res->mean_rate);
    if (s == LP_OK) s = set_measured(row, sw, m, pr, fin, t0);
    lp_task_free(m);
    return s;
}

/* Run cell c afresh in cdir (whatever a killed run left there is removed) and write its row. */
static lp_status run_cell(const sweep *sw, const lp_sweep_cell *c, const char *cdir, const char *result_path) {
    LP_TRY(lp_dist_written(lp_dist_lead() ? remove_tree(cdir) : LP_OK));
    LP_TRY(lp_mkdirs(cdir));
    lp_pipeline_opts o;
    lp_pipeline_result res;
    lp_kv cfg, row;
    lp_kv_init(&cfg);
    lp_kv_init(&row);
    double t0 = lp_now_s();
    lp_status s = lp_kv_merge(&cfg, &sw->cfg);
    cell_opts(sw, c, cdir, &cfg, &o);
    if (s == LP_OK) s = lp_rates_opts_check(&o.prune.rates);
    if (s == LP_OK) s = lp_pipeline_run(&o, &res);
    if (s == LP_OK) s = cell_row(sw, c, &o, &res, t0, &row);
    if (s == LP_OK) s = lp_dist_written(lp_dist_lead() ? lp_kv_write_file(&row, result_path) : LP_OK);
    lp_kv_free(&row);
    lp_kv_free(&cfg);
    return s == LP_OK ? LP_OK : lp_error_wrap(s, "cell %s", c->name);
}

/* The model a row describes: the baseline's best.ckpt, or a cell's fine-tuned (else pruned) model. */
static void row_ckpt(const sweep *sw, const lp_sweep_cell *c, char *buf, size_t n) {
    if (!c) {
        snprintf(buf, n, "%s", sw->baseline_ckpt);
        return;
    }
    snprintf(buf, n, "%.3000s/cells/%s/finetune/best.ckpt", sw->dir, c->name);
    if (!file_exists(buf)) snprintf(buf, n, "%.3000s/cells/%s/pruned.ckpt", sw->dir, c->name);
}

/* What a run and a re-measurement both start with: the configuration (the task's defaults resolved), the
 * output directory (--out, else sweep.out), the pipeline options, the grid's cells and empty rows. */
static lp_status sweep_open(sweep *sw, const lp_kv *config, const char *out_dir, const lp_sweep_opts *o,
                            lp_sweep_summary *sum) {
    static const lp_sweep_opts dflt;
    memset(sw, 0, sizeof *sw);
    memset(sum, 0, sizeof *sum);
    sw->o = o ? o : &dflt;
    LP_TRY(lp_task_kind_of(config, &sw->kind));
    sw->ops = sw->kind.ops;
    snprintf(sw->primary, sizeof sw->primary, "%s", sw->ops->primary);
    lp_sweep_columns(sw);
    LP_TRY(lp_sweep_resolve(&sw->kind, config, &sw->cfg));
    if (!out_dir) out_dir = lp_kv_get(&sw->cfg, "sweep.out");
    if (!out_dir || !*out_dir) return lp_errorf(LP_ERR_ARG, "no output directory (sweep.out or --out)");
    sw->dir = out_dir;
    snprintf(sum->out_dir, sizeof sum->out_dir, "%s", out_dir);
    snprintf(sw->baseline_ckpt, sizeof sw->baseline_ckpt, "%.3000s/baseline/best.ckpt", out_dir);
    lp_pipeline_opts_default(&sw->popt);
    LP_TRY(lp_pipeline_opts_from_kv(&sw->cfg, &sw->popt));
    LP_TRY(lp_sweep_grid(&sw->cfg, &sw->cells, &sw->n_cells));
    sum->cells_total = sw->n_cells;
    sw->n_rows = sw->n_cells + 2;
    sw->rows = lp_calloc((size_t)sw->n_rows, sizeof *sw->rows);
    if (!sw->rows) return LP_ERR_NOMEM;
    for (int i = 0; i < sw->n_rows; i++) lp_kv_init(&sw->rows[i]);
    lp_blas_set_threads((int)lp_kv_get_int_or(&sw->cfg, "train.threads", 0));
    return LP_OK;
}

/* Free what sweep_open made; hand out the summary; return s. */
static lp_status sweep_close(sweep *sw, lp_status s, const lp_sweep_summary *sum, lp_sweep_summary *summary) {
    for (int i = 0; sw->rows && i < sw->n_rows; i++) lp_kv_free(&sw->rows[i]);
    lp_free(sw->rows);
    lp_free(sw->cells);
    lp_kv_free(&sw->cfg);
    if (summary) *summary = *sum;
    return s;
}

/* Row i from its file where that exists (*found = 1 then). */
static lp_status read_row(sweep *sw, int i, int *found) {
    char path[4096];
    *found = file_exists(row_path(sw, i, path, sizeof path));
    return *found ? lp_kv_read_file(&sw->rows[i], path) : LP_OK;
}

/* The baseline's row and, where the task has one, its reference row. */
static lp_status read_baseline(sweep *sw) {
    int found;
    LP_TRY(read_row(sw, 0, &found));
    if (!found) return lp_errorf(LP_ERR_ARG, "%s: no finished baseline", sw->dir);
    return read_row(sw, 1, &found);
}

static int any_rule(const sweep *sw, lp_rate_rule rule) {
    for (int i = 0; i < sw->n_cells; i++)
        if (sw->cells[i].schedule != LP_SCHED_ISS && sw->cells[i].rule == rule) return 1;
    return 0;
}

/* Cells of the given rule: their per-group rates fit the model (checked before the baseline trains). */
static lp_status check_given(const sweep *sw) {
    if (!any_rule(sw, LP_RATE_RULE_GIVEN)) return LP_OK;
    lp_pipeline_opts o = sw->popt;
    o.kind = &sw->kind;
    o.cfg = (lp_kv *)&sw->cfg;
    o.baseline_ckpt = NULL;
    o.prune.rates.rule = LP_RATE_RULE_GIVEN;
    o.prune.rates.target_rate = -1;
    return lp_pipeline_check(&o);
}

/* Cells of the sensitivity rule: the baseline's curves, from prune.sensitivity = DIR or measured once into
 * DIR/sensitivity (kept there: a resumed sweep reuses them). */
static lp_status baseline_sensitivity(sweep *sw) {
    if (!any_rule(sw, LP_RATE_RULE_SENSITIVITY) || sw->popt.sensitivity_dir) return LP_OK;
    char path[4096];
    lp_rundir_path(sw->dir, "sensitivity", sw->sensitivity_dir, sizeof sw->sensitivity_dir);
    sw->popt.sensitivity_dir = sw->sensitivity_dir;
    if (file_exists(lp_rundir_path(sw->sensitivity_dir, "curves.txt", path, sizeof path))) return LP_OK;
    lp_sweep_say(sw, "sensitivity analysis of the baseline into %s", sw->sensitivity_dir);
    lp_sensitivity_opts so;
    lp_sensitivity_opts_default(&so);
    so.ckpt = sw->baseline_ckpt;
    so.out_dir = sw->sensitivity_dir;
    so.cfg = &sw->cfg;
    so.criterion = sw->popt.prune.criterion;
    so.seed = sw->popt.prune.seed;
    so.quiet = sw->o->quiet;
    lp_status s = lp_sensitivity_run(&so, NULL);
    return s == LP_OK ? LP_OK : lp_error_wrap(s, "sensitivity of the baseline");
}

/* Every unfinished cell (at most max_cells in this invocation), then every finished cell's row. Under
 * mpirun the cells to run are dealt out, the j-th to rank j mod N, and each rank runs its cells alone as
 * one process would (core/dist.h lp_dist_solo; its own cell directories); then the ranks meet and every
 * rank reads every row. */
static lp_status run_cells(sweep *sw, lp_sweep_summary *sum) {
    char path[4096], cdir[4096];
    const int ranks = lp_dist_size(), rank = lp_dist_rank();
    /* which cells are finished, decided before any rank starts one (a row another rank writes meanwhile
     * must not change this rank's deal) */
    char *finished = lp_calloc((size_t)sw->n_cells + 1, 1);
    if (!finished) return LP_ERR_NOMEM;
    for (int i = 0; i < sw->n_cells; i++) finished[i] = (char)file_exists(row_path(sw, 2 + i, path, sizeof path));
    lp_status s = lp_dist_barrier();
    int todo = 0; /* unfinished cells dealt so far: the same count on every rank */
    for (int i = 0; s == LP_OK && i < sw->n_cells; i++) {
        if (finished[i]) {
            sum->cells_skipped++;
            continue;
        }
        if (sw->o->max_cells > 0 && todo >= sw->o->max_cells) continue;
        if (todo++ % ranks != rank) continue;
        const lp_sweep_cell *c = &sw->cells[i];
        lp_sweep_say(sw, "cell %d/%d: %s%s", i + 1, sw->n_cells, c->name, ranks > 1 ? " (this rank alone)" : "");
        snprintf(cdir, sizeof cdir, "%.3000s/cells/%s", sw->dir, c->name);
        row_path(sw, 2 + i, path, sizeof path);
        lp_dist_solo(ranks > 1);
        s = run_cell(sw, c, cdir, path); /* a failed cell ends the job (its error, on this rank) */
        lp_dist_solo(0);
    }
    lp_free(finished);
    LP_TRY(s);
    sum->cells_run = todo;
    LP_TRY(lp_dist_barrier_idle()); /* every rank's rows are on the disk (a rank done early waits idle) */
    for (int i = 0; i < sw->n_cells; i++) {
        int found;
        LP_TRY(read_row(sw, 2 + i, &found));
        sum->cells_done += found;
    }
    return LP_OK;
}

/* The table and the plots from whatever is finished, also after an error in a cell (whose message is
 * kept); returns the first error. */
static lp_status write_outputs_after(sweep *sw, lp_sweep_summary *sum, lp_status s) {
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", lp_last_error());
    lp_status s2 = lp_dist_lead() ? lp_sweep_write_outputs(sw, sum->cells_done, sw->n_cells, &sum->plots) : LP_OK;
    if (s == LP_OK) return s2;
    lp_errorf(s, "%s", saved);
    return s;
}

lp_status lp_sweep_run(const lp_kv *config, const char *out_dir, const lp_sweep_opts *o, lp_sweep_summary *summary) {
    sweep sw;
    lp_sweep_summary sum;
    lp_status s = sweep_open(&sw, config, out_dir, o, &sum);
    if (s == LP_OK && sw.n_cells == 0) s = lp_errorf(LP_ERR_ARG, "the grid has no cells");
    if (s == LP_OK) s = lp_mkdirs(sw.dir);
    if (s == LP_OK) s = check_given(&sw);
    if (s == LP_OK) s = lp_sweep_check_conf(&sw);
    if (s == LP_OK) s = run_baseline(&sw, &sum);
    if (s == LP_OK) s = read_baseline(&sw);
    if (s == LP_OK) s = baseline_sensitivity(&sw);
    if (s == LP_OK) s = run_cells(&sw, &sum);
    if (sw.rows && sw.rows[0].count) s = write_outputs_after(&sw, &sum, s);
    if (s == LP_OK)
        lp_sweep_say(&sw, "%d of %d cells done (%d run now, %d skipped as finished); %s/results.md", sum.cells_done,
                     sw.n_cells, sum.cells_run, sum.cells_skipped, sw.dir);
    return sweep_close(&sw, s, &sum, summary);
}

/* One round of latency measurements over every finished model (batch 1 and batch N), the fastest so far
 * kept in best[2i] and best[2i + 1] for row i. */
static lp_status measure_round(const sweep *sw, double *best) {
    char path[4096];
    for (int i = 0; i < sw->n_rows; i++) {
        if (i == 1 || sw->rows[i].count == 0) continue; /* row 1, the prior, is not a model */
        row_ckpt(sw, i == 0 ? NULL : &sw->cells[i - 2], path, sizeof path);
        lp_task *m;
        double b1 = INFINITY, bn = INFINITY;
        LP_TRY(open_task(sw, path, &m));
        lp_status s = lp_task_latency(m, 1, sw->popt.lat_frames, sw->popt.lat_reps, &b1);
        if (s == LP_OK) s = lp_task_latency(m, sw->popt.lat_batch, sw->popt.lat_frames, sw->popt.lat_reps, &bn);
        lp_task_free(m);
        LP_TRY(s);
        best[2 * i] = fmin(best[2 * i], b1);
        best[2 * i + 1] = fmin(best[2 * i + 1], bn);
    }
    return LP_OK;
}

/* The fastest latencies into the rows and their result files. */
static lp_status write_latency(sweep *sw, const double *best) {
    char path[4096];
    for (int i = 0; i < sw->n_rows; i++) {
        if (i == 1 || sw->rows[i].count == 0) continue;
        LP_TRY(lp_kv_setf(&sw->rows[i], "latency_ms_b1", "%.4f", best[2 * i]));
        LP_TRY(lp_kv_setf(&sw->rows[i], "latency_ms_bn", "%.4f", best[2 * i + 1]));
        LP_TRY(lp_kv_write_file(&sw->rows[i], row_path(sw, i, path, sizeof path)));
    }
    return LP_OK;
}

/* `rounds` interleaved rounds over all finished models, the fastest kept. */
static lp_status remeasure(sweep *sw, int rounds) {
    double *best = lp_malloc((size_t)sw->n_rows * 2, sizeof(double));
    if (!best) return LP_ERR_NOMEM;
    for (int i = 0; i < 2 * sw->n_rows; i++) best[i] = INFINITY;
    lp_status s = LP_OK;
    for (int r = 0; s == LP_OK && r < rounds; r++) {
        lp_sweep_say(sw, "latency round %d of %d", r + 1, rounds);
        s = measure_round(sw, best);
    }
    if (s == LP_OK) s = lp_dist_written(lp_dist_lead() ? write_latency(sw, best) : LP_OK);
    lp_free(best);
    return s;
}

lp_status lp_sweep_remeasure(const lp_kv *config, const char *out_dir, int rounds, const lp_sweep_opts *o,
                             lp_sweep_summary *summary) {
    if (rounds < 1) return lp_errorf(LP_ERR_ARG, "latency re-measurement: rounds must be >= 1");
    sweep sw;
    lp_sweep_summary sum;
    lp_status s = sweep_open(&sw, config, out_dir, o, &sum);
    if (s == LP_OK) s = read_baseline(&sw);
    if (s == LP_OK) s = lp_sweep_check_conf(&sw);
    for (int i = 2; s == LP_OK && i < sw.n_rows; i++) {
        int found;
        s = read_row(&sw, i, &found);
        sum.cells_done += found;
    }
    sum.cells_skipped = sum.cells_done;
    if (s == LP_OK) s = remeasure(&sw, rounds);
    if (s == LP_OK && lp_dist_lead()) s = lp_sweep_write_outputs(&sw, sum.cells_done, sw.n_cells, &sum.plots);
    return sweep_close(&sw, s, &sum, summary);
}
