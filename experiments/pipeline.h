/* pipeline: train → prune → fine-tune → report, with the four schedules of the paper and its baseline.
 *
 *   oneshot    train (or take --baseline CKPT) → statistics, rates, selection → remove the units → fine-tune
 *   iterative  the same in `iterative_steps` smaller steps, fine-tuning after each; step i prunes towards
 *              the mean rate r·i/N of the original sizes
 *   soft       the public code: train from scratch and every `prune_every` steps recompute the plan and
 *              zero the pruned units' weights (they may regrow); at the end remove them for real
 *   iss        the ISS baseline (Wen et al. 2018): train with the group-lasso penalty λ over the same unit
 *              groups (from --baseline CKPT when given), remove units whose group norm is below the
 *              threshold, fine-tune
 *
 * Rate rules (prune/rates.h): eigen and uniform from the options; given — per-group rates or sizes
 * (prune.rates, prune.units, or prune.rates_from = a sensitivity suggested.txt); sensitivity — per-group
 * rates for the target mean rate from the groups' sensitivity curves, read from prune.sensitivity = DIR
 * (an earlier `lstmprune sensitivity` of the model) or measured on the trained model into
 * OUT/sensitivity (oneshot and iterative; the soft schedule needs DIR, it starts untrained). The iterative
 * schedule reaches given or sensitivity sizes in N equal steps of units per group.
 *
 * Output directory: command.txt and config.txt (when the caller gives its command line), baseline/ (a
 * training run), pruned.ckpt, finetune/ (a training run), and the report
 * (experiments/report.h): report.md, report.json, spectra.csv, models.csv, spectra.png. Evaluation uses the
 * data.test patterns when set, else data.valid. */
#ifndef LP_EXPERIMENTS_PIPELINE_H
#define LP_EXPERIMENTS_PIPELINE_H
#include <stdio.h>

#include "core/kv.h"
#include "prune/plan.h"
#include "experiments/report.h"

typedef enum { LP_SCHED_ONESHOT = 0, LP_SCHED_ITERATIVE, LP_SCHED_SOFT, LP_SCHED_ISS } lp_schedule;

const char *lp_schedule_name(lp_schedule s);
lp_status lp_schedule_parse(const char *s, lp_schedule *out);

/* How the iss schedule trains with the group lasso (prune/iss.h). */
typedef enum {
    LP_ISS_PROX = 0,     /* proximal steps of lr·λ after every update (default) */
    LP_ISS_SUBGRADIENT   /* the penalty's subgradient, and the units below the threshold zeroed after every update */
} lp_iss_method;

typedef struct {
    const lp_task_kind *kind;  /* the task (tasks/video_task.h, tasks/lm_task.h) */
    const char *out_dir;
    lp_kv *cfg;                /* the run's keys: the baseline's training (model.*, data.*, train.* or the
                                * kind's own), prune.*, and "finetune.KEY" / "iss.KEY" keys that set KEY in
                                * the fine-tuning / ISS training runs */
    const char *baseline_ckpt; /* a trained model to prune instead of training one */
    lp_prune_opts prune;
    const char *given_rates;   /* prune.rates: "fw=0.3,bw=0.2" or "0.3,0.2,0.1" (rule given), or NULL */
    const char *given_units;   /* prune.units: sizes kept per group, same forms (rule given), or NULL */
    const char *rates_from;    /* prune.rates_from: a "GROUP = rate" file (rule given), or NULL */
    const char *sensitivity_dir; /* prune.sensitivity: curves.txt of an earlier analysis (rule sensitivity) */
    lp_schedule schedule;
    int iterative_steps;       /* default 3 */
    int finetune_epochs;       /* default 5; 0 = no fine-tuning */
    double finetune_lr;        /* <= 0: the training lr */
    int prune_every;           /* soft: optimizer steps between mask updates (default 50) */
    double iss_lambda;         /* iss: group-lasso strength λ; each step shrinks a unit by lr·λ (default 1) */
    double iss_threshold;      /* iss: remove units with group norm below this (default 1e-6: the exact zeros) */
    lp_iss_method iss_method;  /* iss: prox (default) or subgradient */
    int lat_batch, lat_frames, lat_reps; /* latency measurement (default 160, 300, 5) */
    const char *command;       /* the command line that started the run, or NULL: with it the output directory
                                * records command.txt (this line) and config.txt (the run's keys with the
                                * settings the run resolved: prune.schedule, prune.rule, prune.criterion, the
                                * target, prune.finetune_epochs, prune.checkpoint) */
    int quiet;
} lp_pipeline_opts;

void lp_pipeline_opts_default(lp_pipeline_opts *o);

/* Read the "prune.*" keys present in kv (others keep their value): rule, tau, target_rate, round_to,
 * rates, units, rates_from (any one of them: rule given), sensitivity, keep_count, criterion, stats_batches, stats_steps, seed, schedule, steps, finetune_epochs, finetune_lr,
 * prune_every, iss_lambda, iss_threshold, iss_method, latency_batch, latency_frames, latency_reps. Bad values are
 * LP_ERR_ARG naming the key. */
lp_status lp_pipeline_opts_from_kv(const lp_kv *kv, lp_pipeline_opts *o);
/* The strings kept in o (given_rates ... sensitivity_dir) point into kv: keep it alive with o. */

typedef struct {
    char name[24];
    int before, after;
    double rate, tau, energy_kept;
} lp_pipeline_group;

typedef struct {
    lp_report_model rows[5];
    int n_rows;
    double mean_rate;          /* achieved mean pruning rate over groups */
    double tau;                /* τ used by the eigen rule (NaN otherwise) */
    int n_groups;
    lp_pipeline_group groups[LP_MAX_GROUPS];
} lp_pipeline_result;

/* Check, before anything is trained or written, what the rule needs of the model the run will prune (the
 * baseline checkpoint, else a fresh model of o->cfg): the per-group rates or sizes name its groups and fit
 * them, a --sensitivity DIR has a curve for each group. LP_ERR_ARG naming the bad entry: a usage error. */
lp_status lp_pipeline_check(const lp_pipeline_opts *o);

lp_status lp_pipeline_run(const lp_pipeline_opts *o, lp_pipeline_result *res);

/* The model of checkpoint `path` as the pipeline opens it: the checkpoint's keys with o->cfg's set over
 * them go into cfg (caller-initialised; the task's completed configuration), and o->kind opens it. */
lp_status lp_pipeline_open(const lp_pipeline_opts *o, const char *path, lp_kv *cfg, lp_task **t);

/* The oneshot schedule's plan for the trained model t of checkpoint `ckpt`: o->prune completed with what
 * the rule needs of t (per-group rates or sizes; the sensitivity curves of o->sensitivity_dir, or
 * measured on ckpt into OUT/sensitivity), then statistics, rates and selection (lp_prune_plan_run). The
 * units `lstmprune prune` removes with the same options; `lstmprune trace` shows that plan. */
lp_status lp_pipeline_plan(const lp_pipeline_opts *o, lp_task *t, const char *ckpt, lp_prune_plan *p);

#endif
