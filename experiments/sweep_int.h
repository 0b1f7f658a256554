/* sweep_int: what the three parts of the sweep share (internal; experiments/sweep.h is the contract).
 *
 *   sweep_grid.c  the configuration and the grid: resolving a configuration, its cells, and the check
 *                 that an output directory holds a sweep of the same set-up
 *   sweep.c       run and resume: the baseline, the cells, the latency re-measurement (the public entry
 *                 points)
 *   sweep_out.c   the outputs: spectra.csv, results.csv, results.md, plots.gp and its PNGs
 *
 * A result row is a small kv (the columns of results.csv, every value already formatted), written to the
 * cell's result.txt and read back before it enters the table: a fresh run and a resumed one format the
 * table from the very same text, so they cannot differ. */
#ifndef LP_EXPERIMENTS_SWEEP_INT_H
#define LP_EXPERIMENTS_SWEEP_INT_H
#include "experiments/kinds.h"
#include "experiments/sweep.h"

#define LP_SWEEP_MAX_ITEMS 32   /* items of one grid list */
#define LP_SWEEP_MAX_COLUMNS 64 /* columns of results.csv */

/* One run (or re-measurement) of a sweep. */
typedef struct {
    lp_task_kind kind;     /* the `task` of the configuration */
    const lp_task_ops *ops;
    char primary[32];      /* the selecting figure ("gap", "ppl") */
    lp_kv cfg;             /* resolved configuration (base + grid keys) */
    const char *dir;
    const lp_sweep_opts *o;
    lp_pipeline_opts popt; /* from the prune.* keys */
    lp_sweep_cell *cells;
    int n_cells;
    lp_kv *rows;           /* rows[0] baseline, rows[1] prior, rows[2+i] cell i (count = 0 when missing) */
    int n_rows;
    char baseline_ckpt[4096];
    char sensitivity_dir[4096]; /* the baseline's sensitivity curves (cells of the sensitivity rule) */
    const char *columns[LP_SWEEP_MAX_COLUMNS]; /* results.csv, in order */
    char column_names[LP_SWEEP_MAX_COLUMNS][48];
    int n_columns;
} sweep;

/* ---- sweep_grid.c ---- */

/* config (copied into out, initialised here) → compat preset and the task's defaults. */
lp_status lp_sweep_resolve(const lp_task_kind *kind, const lp_kv *config, lp_kv *out);
/* The cells of a resolved configuration (*cells allocated; lp_free). */
lp_status lp_sweep_grid(const lp_kv *kv, lp_sweep_cell **cells, int *n);
/* Refuse an output directory whose sweep.conf has other base keys (all but grid.* and sweep.*); then
 * write the configuration there. */
lp_status lp_sweep_check_conf(const sweep *sw);

/* ---- sweep.c ---- */

/* A progress line "[sweep] ..." (nothing when quiet). */
#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
void lp_sweep_say(const sweep *sw, const char *fmt, ...);

/* ---- sweep_out.c ---- */

/* The columns of results.csv for the sweep's task. */
void lp_sweep_columns(sweep *sw);
/* spectra.csv: the response spectra of the baseline t per unit group. */
lp_status lp_sweep_write_spectra(const sweep *sw, lp_task *t);
/* results.csv, plots.gp (and its PNGs where gnuplot runs: *plots counts them) and results.md from the
 * rows; done of total cells are finished. */
lp_status lp_sweep_write_outputs(const sweep *sw, int done, int total, int *plots);

#endif
