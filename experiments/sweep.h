/* sweep: the ablation grid of the paper from one configuration file — criteria × rate rules × target
 * rates × schedules, plus the ISS baseline — for either task, resumable, with one results table and plots.
 *
 * The configuration is "key = value" text (core/kv.h):
 *
 *   task = video | lm         the task (experiments/kinds.h; video when absent)
 *   model.*, data.*, train.*  the baseline's training run: for video (model/runcfg.h) instead of the full model.*
 *                             keys (model.kind, model.units, ...) a config may give model.arch (paper |
 *                             lstm), model.hidden, model.layers, model.experts, model.dropout like the
 *                             train flags; the input size comes from data.frame_features. For lm: the
 *                             lm.*, data.* and train.* keys of tasks/lm_task.h
 *   prune.*                   every cell's pipeline options (experiments/pipeline.h): stats_batches,
 *                             stats_steps, keep_count, round_to, finetune_epochs, finetune_lr,
 *                             prune_every, iss_lambda, iss_threshold, iss_method, latency_batch/frames/
 *                             reps, seed; and prune.iss_from = baseline (ISS cells start from the
 *                             baseline instead of from scratch)
 *   finetune.KEY, iss.KEY     KEY in the fine-tuning runs / the ISS training runs only
 *   compat = reference        a preset of experiments/compat.h applied first (explicit keys win)
 *   grid.schedule   = oneshot,soft         (default: prune.schedule, else oneshot; iterative works too)
 *   grid.rule       = eigen,uniform        (default: prune.rule, else eigen)
 *   grid.criterion  = gm,gm-exact,l2,l1,random   (default: prune.criterion, else gm)
 *   grid.methods    = eigen:gm,uniform:l2  rule:criterion pairs; replaces the rule × criterion product
 *   grid.rate       = 0.1,0.3,0.5,0.7      target mean pruning rates
 *   grid.SCHEDULE.rule / .criterion / .methods / .rate   the same lists for one schedule only (e.g.
 *                                          grid.soft.rate = 0.5 keeps the from-scratch cells few)
 *   grid.iss        = 1                    add the ISS baseline at prune.iss_lambda
 *   grid.iss_lambda = 0.001,0.01           one ISS cell per λ (implies grid.iss)
 *   sweep.out       = DIR                  output directory (a caller may override it)
 *
 * Cells, in this order: for each schedule, for each (rule, criterion), for each rate; then ISS cells.
 * A cell is named "<schedule>-<rule>-<criterion>-r<rate>" (e.g. oneshot-eigen-gm-r0.30) or
 * "iss-lambda<λ>".
 *
 * What runs: ONE baseline is trained into DIR/baseline (a normal training run) and measured; oneshot and
 * iterative cells prune that baseline (lp_pipeline_run with baseline_ckpt); soft and ISS cells train
 * from scratch, because that is what those schedules are (ISS from the baseline with prune.iss_from).
 * Each cell is a pipeline run in
 * DIR/cells/<name>/ (its report.md, checkpoints, ...), and its row is written last, atomically, to
 * DIR/cells/<name>/result.txt.
 *
 * Resuming: rerunning the same sweep skips every cell that has result.txt, deletes and redoes a cell
 * directory without it (a run killed mid-cell), and continues a baseline training run from its
 * last.ckpt. DIR/sweep.conf holds the resolved configuration; a rerun whose base keys (everything but
 * grid.* and sweep.*) differ is refused, so one table never mixes two set-ups. Grid keys may change:
 * new cells are run, finished ones kept.
 *
 * Outputs (rewritten after every run, also a partial one):
 *   results.csv   one row per model: the baseline, every cell (and the input-ignoring prior as a
 *                 reference); identity, target and achieved mean rate, kept units per group,
 *                 parameters, FLOPs per step (flops_per_frame / flops_per_word), checkpoint bytes, the
 *                 task's shown figures (gap, map, hit1, perr / ppl) pruned (before fine-tuning) and
 *                 fine-tuned, and — last, since they are the only columns that vary
 *                 between identical runs — latency at batch 1 and batch N and the cell's wall time;
 *   results.md    the same as one table, with the plots;
 *   spectra.csv   the baseline's response spectra per unit group;
 *   plots.gp      the gnuplot script (data inline), and where gnuplot runs: <primary>_vs_rate.png,
 *                 <primary>_vs_params.png, <primary>_vs_latency.png (gap_... or ppl_...), spectra.png,
 *                 curves.png (training curves of the baseline from baseline/train.tsv and valid.tsv).
 *
 * Determinism: the same configuration and seeds give the same results.csv except the timing columns
 * (training, pruning and evaluation are deterministic at a fixed thread count; tests/test_sweep.c,
 * tests/test_ptb_sweep.c). */
#ifndef LP_EXPERIMENTS_SWEEP_H
#define LP_EXPERIMENTS_SWEEP_H
#include "core/kv.h"
#include "experiments/pipeline.h"

typedef struct {
    char name[64];
    lp_schedule schedule;
    lp_rate_rule rule;
    lp_criterion criterion;
    double target_rate; /* the cell's target mean rate; < 0 for ISS cells */
    double iss_lambda;  /* ISS cells */
    int compensate;     /* oneshot and iterative cells: prune --compensate mean (name suffix "-comp") */
} lp_sweep_cell;

/* The cells of a configuration (compat preset applied to a copy). *cells is allocated (lp_free). */
lp_status lp_sweep_cells(const lp_kv *config, lp_sweep_cell **cells, int *n);

typedef struct {
    int quiet;      /* no progress lines (the trainer's progress line too) */
    int max_cells;  /* run at most this many cells in this invocation, then stop (0 = all); the
                       outputs are still written, from the finished cells */
} lp_sweep_opts;

typedef struct {
    int cells_total;    /* cells in the grid */
    int cells_done;     /* cells with a result at the end */
    int cells_run;      /* cells computed in this invocation */
    int cells_skipped;  /* cells found finished and skipped */
    int baseline_run;   /* 1 if the baseline was trained or measured in this invocation */
    int plots;          /* PNG files written */
    char out_dir[4096];
} lp_sweep_summary;

/* Run (or continue) the sweep described by `config` in `out_dir` (NULL: the config's sweep.out).
 * summary may be NULL. Errors name the cell. */
lp_status lp_sweep_run(const lp_kv *config, const char *out_dir, const lp_sweep_opts *o, lp_sweep_summary *summary);

/* Measure the latency of every finished model of the sweep in `out_dir` again (nothing is trained or
 * pruned): `rounds` interleaved rounds over all models (each a median of prune.latency_reps passes),
 * keeping each model's fastest round — on a shared machine the minimum is the least disturbed value.
 * Updates the latency columns of the result files and rewrites results.csv/md and the plots. */
lp_status lp_sweep_remeasure(const lp_kv *config, const char *out_dir, int rounds, const lp_sweep_opts *o,
                             lp_sweep_summary *summary);

#endif
