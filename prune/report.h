/* report: what a pruning run did and what it bought, for people (report.md), for programs
 * (report.json) and for plotting (spectra.csv, models.csv; spectra.png where gnuplot exists).
 *
 * Per unit group: units before/after, τ, rate, energy kept and the covariance spectrum. Per model
 * (baseline, pruned, fine-tuned, ...): parameters, FLOPs per frame, checkpoint bytes, measured inference
 * latency at batch 1 and batch N, and GAP@k, mAP, Hit@1, PERR on the evaluation data. */
#ifndef LP_PRUNE_REPORT_H
#define LP_PRUNE_REPORT_H
#include <stddef.h>
#include <stdio.h>

#include "core/kv.h"
#include "model/evaluate.h"
#include "model/model.h"
#include "prune/plan.h"

typedef struct {
    char label[32];          /* "baseline", "pruned", "fine-tuned" */
    char ckpt[512];          /* checkpoint path ("" if none) */
    size_t params;
    double flops_frame;
    size_t ckpt_bytes;
    double lat_b1_ms, lat_bn_ms;
    int lat_batch, lat_frames;
    int have_eval;
    lp_eval_result eval;
    int reference;           /* 1: not a model but the input-ignoring prior (metrics only) */
} lp_report_model;

/* Measure a model's row: sizes, latency (batch 1 and `lat_batch`, `lat_frames` frames, median of
 * `reps`), file size of `ckpt` (may be NULL) and, when `bc` is not NULL, the metrics on that data. */
lp_status lp_report_measure(lp_model *m, const char *label, const char *ckpt, const lp_batcher_config *bc, int top_k,
                            int lat_batch, int lat_frames, int reps, lp_report_model *row);

/* Write report.md, report.json, spectra.csv, models.csv (and spectra.png if gnuplot runs) into dir.
 * `plan` may be NULL (no pruning step); `info` adds free key/values
 * (schedule, data, ...) to both reports. */
lp_status lp_report_write(const char *dir, const lp_prune_plan *plan, const lp_report_model *rows, int n_rows,
                          const lp_kv *info);

/* Print a short table of the rows to a stream (the end of `pipeline`). */
void lp_report_print(FILE *f, const lp_report_model *rows, int n_rows, int top_k);

#endif
