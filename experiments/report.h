/* report: what a pruning run did and what it bought, for people (report.md), for programs
 * (report.json) and for plotting (spectra.csv, models.csv; spectra.png where gnuplot exists).
 *
 * Per unit group: units before/after, τ, rate, energy kept and the covariance spectrum. Per model
 * (baseline, pruned, fine-tuned, ...): parameters, FLOPs per step, checkpoint bytes, measured inference
 * latency at batch 1 and batch N, and the task's figures on the evaluation data (GAP@k, mAP, Hit@1,
 * PERR for the video classifier; perplexity for the language model). */
#ifndef LP_EXPERIMENTS_REPORT_H
#define LP_EXPERIMENTS_REPORT_H
#include <stddef.h>
#include <stdio.h>

#include "core/kv.h"
#include "prune/plan.h"
#include "prune/task.h"

typedef struct {
    char label[32];          /* "baseline", "pruned", "fine-tuned" */
    char ckpt[512];          /* checkpoint path ("" if none) */
    int reference;           /* 1: not a model but the task's reference, e.g. the input-ignoring prior
                              * (figures only) */
    size_t params;
    double flops_step;       /* FLOPs per recurrent step (frame, word) */
    size_t ckpt_bytes;       /* weights-only bytes of ckpt (lp_report_measure) */
    double lat_b1_ms, lat_bn_ms;
    int lat_batch, lat_steps;
    lp_score score;          /* on the evaluation split; n = 0: not scored */
} lp_report_model;

/* Measure a model's row: sizes, latency (batch 1 and `lat_batch`, sequences of `lat_steps`, median of
 * `reps`), the bytes of `ckpt` (may be NULL) without optimizer state (a last.ckpt is counted as a weights-only
 * checkpoint of the same model, so every row compares weights with weights) and, with `eval`, the figures on the test split (on the
 * validation split when there is no test data; not scored when neither has data). */
lp_status lp_report_measure(lp_task *t, const char *label, const char *ckpt, int eval, int lat_batch, int lat_steps,
                            int reps, lp_report_model *row);

/* The task's reference row (label "prior (no input)" for the video task) scored like lp_report_measure
 * scores; *have = 0 when the task has none or no evaluation data. */
lp_status lp_report_reference(lp_task *t, lp_report_model *row, int *have);

/* Write report.md, report.json, spectra.csv, models.csv (and spectra.png if gnuplot runs) into dir.
 * `t` is any task of the rows' kind (names and titles of its figures); `plan` may be NULL (no pruning
 * step); `info` adds free key/values (schedule, data, ...) to both reports. */
lp_status lp_report_write(const char *dir, const lp_task *t, const lp_prune_plan *plan, const lp_report_model *rows,
                          int n_rows, const lp_kv *info);

#endif
