/* lstmprune eval / predict: score a checkpoint on data, or write Kaggle-format predictions.
 *
 * The data options default to those the checkpoint was trained with (its data.* keys), so
 * `lstmprune eval --checkpoint RUN/best.ckpt --data 'validate*.tfrecord'` needs nothing else. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/dist.h"
#include "core/fileio.h"
#include "model/evaluate.h"
#include "model/runcfg.h"

typedef struct {
    const char *ckpt, *out;
    int quiet, top;
} eval_flags;

static int handle(void *user, const char *name, const char *value) {
    eval_flags *f = user;
    if (!strcmp(name, "checkpoint")) f->ckpt = value;
    else if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "top")) {
        char *end;
        long v = strtol(value, &end, 10);
        if (*end || v < 1 || v > 100000) {
            lp_cli_error("predict", "--top: '%s' is not an integer in [1, 100000]", value);
            return 2;
        }
        f->top = (int)v;
    }
    return 0;
}

static const lp_arg own[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "model checkpoint", NULL},
    {"data", "data.eval", LP_ARG_APPEND, 0, "GLOB", "shards to evaluate (repeatable)", NULL},
    {"out", NULL, LP_ARG_STR, 0, "FILE", "eval: metrics as key = value lines; predict: the CSV", NULL},
    {"top", NULL, LP_ARG_INT, 1, "N", "predict: label/score pairs per video", "20"},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "print nothing but errors", NULL},
    LP_ARG_PRECISION_OR("the checkpoint's"),
};

/* Shared flags that would do nothing here, refused as unknown: --data names the shards, and evaluation
 * reads them in order (no shuffling). */
static const char *const not_used[] = {"train", "valid", "shuffle-buffer", NULL};
static const char *const not_used_eval[] = {"top", NULL}; /* eval writes no predictions */

/* ---- predict: one CSV line per video, top N classes by probability ---- */

typedef struct {
    FILE *f;
    int top;
    int *idx;
} pred_ctx;

static lp_status write_prediction(void *user, const char *id, const float *probs, int classes) {
    pred_ctx *p = user;
    int k = p->top < classes ? p->top : classes;
    /* Partial selection of the k largest (ties: lower class first), k is small. */
    for (int j = 0; j < k; j++) p->idx[j] = -1;
    for (int c = 0; c < classes; c++) {
        int pos = k;
        while (pos > 0 && (p->idx[pos - 1] < 0 || probs[c] > probs[p->idx[pos - 1]])) pos--;
        if (pos >= k) continue;
        memmove(p->idx + pos + 1, p->idx + pos, (size_t)(k - pos - 1) * sizeof(int));
        p->idx[pos] = c;
    }
    fprintf(p->f, "%s,", id);
    for (int j = 0; j < k; j++) fprintf(p->f, "%s%d %.6f", j ? " " : "", p->idx[j], (double)probs[p->idx[j]]);
    fputc('\n', p->f);
    return ferror(p->f) ? lp_errorf(LP_ERR_IO, "write failed") : LP_OK;
}

static int run(const char *cmd, int argc, char **argv, int predict) {
    lp_arg table[64];
    int n = lp_args_join(table, 64, own, (int)(sizeof own / sizeof own[0]), lp_args_data, lp_args_data_n);
    n = lp_args_without(table, n, not_used);
    if (!predict) n = lp_args_without(table, n, not_used_eval);
    lp_kv flags, cfg;
    lp_kv_init(&flags);
    lp_kv_init(&cfg);
    eval_flags f = {0};
    f.top = 20;
    lp_model m;
    int have_model = 0;
    int rc = lp_args_parse(cmd, argc, argv, table, n, &flags, handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune %s --checkpoint CKPT --data GLOB [--out FILE] [options]\n\n%s\n\n", cmd,
               predict ? "Write predictions in the Kaggle format: VideoId,LabelConfidencePairs (top N 'label score')."
                       : "Evaluate a checkpoint: GAP@k, mAP, Hit@1, PERR and the loss. Data options default to the "
                         "checkpoint's own.");
        lp_args_help(stdout, table, n, NULL);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (lp_runcfg_check(&flags) != LP_OK) { /* flag ranges, before anything is read or written */
        rc = lp_args_check_failed(cmd, table, n);
        goto out;
    }
    if (!f.ckpt || !lp_kv_get(&flags, "data.eval")) {
        lp_cli_error(cmd, "--checkpoint CKPT and --data GLOB are required");
        rc = 2;
        goto out;
    }
    if (predict && !f.out) {
        lp_cli_error(cmd, "--out FILE is required");
        rc = 2;
        goto out;
    }
    /* Config: the checkpoint's keys, then the flags, then defaults. */
    lp_status s = lp_model_load(&m, f.ckpt, &cfg);
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    have_model = 1;
    if (lp_kv_merge(&cfg, &flags) != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    lp_runcfg_defaults(&cfg);
    if (!lp_kv_get(&flags, "data.classes")) lp_kv_set_int(&cfg, "data.classes", m.classes);
    lp_runcfg_apply_threads(&cfg);
    if (lp_runcfg_apply_precision(&cfg) != LP_OK) { /* the checkpoint's run, unless --precision says */
        lp_cli_error(cmd, "--precision: %s", lp_last_error());
        rc = 2;
        goto out;
    }
    char **pats;
    int np;
    lp_batcher_config bc;
    lp_eval_result r;
    pred_ctx pc = {0};
    lp_atomic_file af = {0};
    s = lp_runcfg_patterns(&cfg, "eval", &pats, &np);
    if (s == LP_OK) s = lp_runcfg_batcher(&cfg, pats, np, 0, &bc);
    const int lead = lp_dist_rank() == 0; /* under mpirun rank 0 writes and prints (the ranks share the work) */
    if (s == LP_OK && predict && lead) {
        s = lp_atomic_open(&af, f.out);
        pc.f = af.f;
        pc.top = f.top;
        pc.idx = lp_malloc((size_t)f.top, sizeof(int));
        if (s == LP_OK && !pc.idx) s = LP_ERR_NOMEM;
        if (s == LP_OK) fprintf(af.f, "VideoId,LabelConfidencePairs\n");
    }
    if (s == LP_OK)
        s = lp_evaluate(&m, &bc, (int)lp_kv_get_int_or(&cfg, "train.top_k", 20), predict ? write_prediction : NULL, &pc, &r);
    if (predict && lead) {
        if (s == LP_OK) s = lp_atomic_commit(&af);
        else if (af.f) lp_atomic_abort(&af);
        lp_free(pc.idx);
    }
    lp_runcfg_free_patterns(pats, np);
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    int k = (int)lp_kv_get_int_or(&cfg, "train.top_k", 20);
    if (!lead) goto out;
    if (!f.quiet && r.labelled == 0) /* predict on test shards: scores of 0 would only mislead */
        printf("videos %lld, none labelled: no scores  (%.1f s)\n", (long long)r.videos, r.seconds);
    else if (!f.quiet)
        printf("videos %lld  loss %.4f  GAP@%d %.4f  mAP %.4f  Hit@1 %.4f  PERR %.4f  (%.1f s)\n", (long long)r.videos,
               r.loss, k, r.m.gap, r.m.map, r.m.hit1, r.m.perr, r.seconds);
    if (!f.quiet) {
        if (r.skipped) printf("skipped %llu bad records\n", (unsigned long long)r.skipped);
        if (predict) printf("predictions: %s\n", f.out);
    }
    if (!predict && f.out) {
        lp_kv mk;
        lp_kv_init(&mk);
        lp_kv_set(&mk, "checkpoint", f.ckpt);
        lp_kv_set_int(&mk, "videos", r.videos);
        lp_kv_set_int(&mk, "top_k", k);
        lp_kv_setf(&mk, "gap", "%.6f", r.m.gap);
        lp_kv_setf(&mk, "map", "%.6f", r.m.map);
        lp_kv_setf(&mk, "hit1", "%.6f", r.m.hit1);
        lp_kv_setf(&mk, "perr", "%.6f", r.m.perr);
        lp_kv_setf(&mk, "loss", "%.6f", r.loss);
        lp_kv_set_int(&mk, "skipped", (long long)r.skipped);
        s = lp_kv_write_file(&mk, f.out);
        lp_kv_free(&mk);
        if (s != LP_OK) {
            lp_cli_error(cmd, "%s", lp_last_error());
            rc = 1;
        }
    }
out:
    if (have_model) lp_model_free(&m);
    lp_kv_free(&flags);
    lp_kv_free(&cfg);
    return rc;
}

int lp_cmd_eval(int argc, char **argv) { return run("eval", argc, argv, 0); }
int lp_cmd_predict(int argc, char **argv) { return run("predict", argc, argv, 1); }
