/* lstmprune prune / pipeline: the pruning method from the command line (experiments/pipeline.h). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/ckpt.h"
#include "experiments/compat.h"
#include "experiments/kinds.h"
#include "experiments/pipeline.h"
#include "model/runcfg.h"
#include "tasks/video_task.h"
#include "prune/surgery.h"
#include "train/trainer.h"

/* prune only: remove the units an ISS-trained checkpoint (train --iss-lambda) has zeroed. */
static const lp_arg prune_iss_arg[] = {
    {"iss-threshold", "prune.iss_threshold", LP_ARG_NUM, 0, "T",
     "instead of eigen/criterion: remove units whose ISS group norm is below T (for train --iss-lambda models)", NULL},
};

static const lp_arg pipeline_args[] = {
    {"schedule", "prune.schedule", LP_ARG_STR, 0, "S", "oneshot, iterative, soft or iss", "oneshot"},
    {"steps", "prune.steps", LP_ARG_INT, 1, "N", "iterative: pruning steps", "3"},
    {"finetune-epochs", "prune.finetune_epochs", LP_ARG_INT, 0, "N", "fine-tuning epochs after pruning (0 = none)", "5"},
    {"finetune-lr", "prune.finetune_lr", LP_ARG_NUM, 0, "LR", "fine-tuning learning rate (0 = the training lr)", "0"},
    {"prune-every", "prune.prune_every", LP_ARG_INT, 1, "N", "soft: optimizer steps between mask updates", "50"},
    {"iss-lambda", "prune.iss_lambda", LP_ARG_NUM, 0, "L", "iss: group-lasso strength (proximal: a unit shrinks by lr*L per step)", "1"},
    {"iss-threshold", "prune.iss_threshold", LP_ARG_NUM, 0, "T", "iss: remove units whose group norm is below T", "1e-06"},
    {"latency-batch", "prune.latency_batch", LP_ARG_INT, 1, "N", "batch size of the second latency measurement", "160"},
    {"latency-frames", "prune.latency_frames", LP_ARG_INT, 1, "T", "frames per video in the latency measurement", "300"},
    {"latency-reps", "prune.latency_reps", LP_ARG_INT, 1, "N", "repetitions (median) of the latency measurement", "5"},
    {"test", "data.test", LP_ARG_APPEND, 0, "GLOB", "evaluation shards for the report (default: --valid)", NULL},
};

typedef struct {
    const char *ckpt, *out, *baseline, *compat;
    int quiet, force;
} flags;

static int handle(void *user, const char *name, const char *value) {
    flags *f = user;
    if (!strcmp(name, "checkpoint")) f->ckpt = value;
    else if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "baseline")) f->baseline = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "force")) f->force = 1;
    else if (!strcmp(name, "compat")) f->compat = value;
    return 0;
}

static const lp_arg prune_own[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "the trained model to prune", NULL},
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory: pruned.ckpt and the report", NULL},
    LP_ARG_FORCE,
    {"data", "data.train", LP_ARG_APPEND, 0, "GLOB", "data for the response statistics (default: the checkpoint's training data)", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "print nothing but errors", NULL},
    {"compat", NULL, LP_ARG_STR, 0, "PRESET", "reference: the public TensorFlow code's statistics and eigenvalue counting (docs/REPRODUCING.md)", "ours"},
};

static const lp_arg pipeline_own[] = {
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory (baseline/, pruned.ckpt, finetune/, report.md ...)", NULL},
    LP_ARG_FORCE,
    {"baseline", NULL, LP_ARG_STR, 0, "CKPT", "prune this trained checkpoint instead of training a baseline", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "no progress output", NULL},
    {"compat", NULL, LP_ARG_STR, 0, "PRESET", "reference: the public TensorFlow code's behaviour (soft schedule, last-step statistics, ...; docs/REPRODUCING.md)", "ours"},
};

/* prune: one oneshot step without fine-tuning, on an existing checkpoint. */
int lp_cmd_prune(int argc, char **argv) {
    lp_arg table[96];
    int n = lp_args_join(table, 96, prune_own, (int)(sizeof prune_own / sizeof prune_own[0]), lp_args_method,
                         lp_args_method_n);
    n = lp_args_join(table, 96, table, n, lp_args_prune, lp_args_prune_n);
    n = lp_args_join(table, 96, table, n, lp_args_data + 2, lp_args_data_n - 2); /* --train/--valid are not used */
    n = lp_args_join(table, 96, table, n, pipeline_args + 7, 4);                 /* latency flags and --test */
    n = lp_args_join(table, 96, table, n, prune_iss_arg, 1);
    lp_kv cfg;
    lp_kv_init(&cfg);
    flags f = {0};
    int rc = lp_args_parse("prune", argc, argv, table, n, &cfg, handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune prune --checkpoint CKPT --out DIR [--target-rate R | --tau T] [options]\n\n"
               "Remove LSTM units from a trained model: response statistics on training data, eigenvalue rates,\n"
               "geometric-median selection, surgery. Writes DIR/pruned.ckpt (a normal, smaller checkpoint for\n"
               "train/finetune/eval/predict/info) and DIR/report.md, report.json, spectra.csv.\n\n");
        lp_args_help(stdout, table, n, NULL);
        rc = 0;
    }
    if (rc == 0 && (!f.ckpt || !f.out) && argc > 1 && !(argc == 2 && !strcmp(argv[1], "--help"))) {
        lp_cli_error("prune", "--checkpoint CKPT and --out DIR are required");
        rc = 2;
    }
    if (rc == 0 && f.ckpt && lp_runcfg_check(&cfg) != LP_OK) /* flag ranges, before anything is read or written */
        rc = lp_args_check_failed("prune", table, n);
    if (rc || !f.ckpt) {
        lp_kv_free(&cfg);
        return rc;
    }
    lp_pipeline_opts o;
    lp_pipeline_opts_default(&o);
    lp_task_kind kind; /* the checkpoint's task */
    if (lp_task_kind_of_ckpt(f.ckpt, &kind) != LP_OK) {
        lp_cli_error("prune", "%s", lp_last_error());
        lp_kv_free(&cfg);
        return 1;
    }
    o.kind = &kind;
    o.out_dir = f.out;
    o.baseline_ckpt = f.ckpt;
    o.finetune_epochs = 0;
    o.quiet = f.quiet;
    char cmdline[8192]; /* recorded in the output directory (command.txt) */
    o.command = lp_cli_command_line(argc, argv, cmdline, sizeof cmdline);
    o.cfg = &cfg;
    lp_status s = f.compat ? lp_compat_apply(&cfg, f.compat, "prune.") : LP_OK; /* explicit flags win */
    if (s == LP_OK) s = lp_pipeline_opts_from_kv(&cfg, &o);
    if (s != LP_OK) { /* a bad option value: a usage error */
        lp_cli_error("prune", "%s", lp_last_error());
        lp_kv_free(&cfg);
        return 2;
    }
    o.schedule = LP_SCHED_ONESHOT; /* one step on a trained model, whatever a preset's schedule says */
    if (lp_kv_get(&cfg, "prune.iss_threshold")) {
        o.schedule = LP_SCHED_ISS;
        o.iss_lambda = 0; /* no training: threshold only */
    }
    if (lp_pipeline_check(&o) != LP_OK) { /* per-group rates that do not fit the model: a usage error */
        lp_cli_error("prune", "%s", lp_last_error());
        lp_kv_free(&cfg);
        return 2;
    }
    if ((rc = lp_args_claim_out("prune", f.out, f.force)) != 0) {
        lp_kv_free(&cfg);
        return rc;
    }
    lp_pipeline_result r;
    if (s == LP_OK) s = lp_pipeline_run(&o, &r);
    if (s != LP_OK) {
        lp_cli_error("prune", "%s", lp_last_error());
        lp_kv_free(&cfg);
        return 1;
    }
    {
        lp_cli_print_groups(&r);
        printf("\n");
        lp_cli_print_models(kind.ops, r.rows, r.n_rows);
        printf("mean pruning rate %.4f; pruned model: %s/pruned.ckpt; report: %s/report.md\n", r.mean_rate, f.out, f.out);
    }
    lp_kv_free(&cfg);
    return 0;
}

int lp_cmd_pipeline(int argc, char **argv) {
    lp_arg table[128];
    int n = lp_args_join(table, 128, pipeline_own, (int)(sizeof pipeline_own / sizeof pipeline_own[0]), pipeline_args,
                         (int)(sizeof pipeline_args / sizeof pipeline_args[0]));
    n = lp_args_join(table, 128, table, n, lp_args_method, lp_args_method_n);
    n = lp_args_join(table, 128, table, n, lp_args_prune, lp_args_prune_n);
    n = lp_args_join(table, 128, table, n, lp_args_data, lp_args_data_n);
    n = lp_args_join(table, 128, table, n, lp_args_model, lp_args_model_n);
    n = lp_args_join(table, 128, table, n, lp_args_train, lp_args_train_n);
    lp_kv cfg, defaults;
    lp_kv_init(&cfg);
    lp_kv_init(&defaults);
    lp_runcfg_defaults(&defaults);
    flags f = {0};
    int rc = lp_args_parse("pipeline", argc, argv, table, n, &cfg, handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune pipeline --train GLOB --valid GLOB --out DIR [options]\n\n"
               "The main job: train the model (or take --baseline CKPT), prune it (eigen rates + geometric median by\n"
               "default), fine-tune, and report parameters, FLOPs, checkpoint bytes, measured latency, GAP@20, mAP,\n"
               "Hit@1 and PERR of the baseline, the pruned and the fine-tuned model (DIR/report.md).\n\n");
        lp_args_help(stdout, table, n, &defaults);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (lp_runcfg_check(&cfg) != LP_OK || lp_train_check(&cfg) != LP_OK) { /* before anything is read or written */
        rc = lp_args_check_failed("pipeline", table, n);
        goto out;
    }
    if (!f.out || (!lp_kv_get(&cfg, "data.train"))) {
        lp_cli_error("pipeline", "--train GLOB and --out DIR are required");
        rc = 2;
        goto out;
    }
    if (f.compat && lp_compat_apply(&cfg, f.compat, NULL) != LP_OK) { /* before the defaults: flags win */
        lp_cli_error("pipeline", "--compat: %s", lp_last_error());
        rc = 2;
        goto out;
    }
    /* With --baseline the data and model settings default to the baseline's own (its checkpoint). */
    if (!f.baseline) lp_runcfg_defaults(&cfg);
    if (!f.baseline && (rc = lp_args_model_kv("pipeline", &cfg)) != 0) goto out;
    lp_pipeline_opts o;
    lp_pipeline_opts_default(&o);
    lp_task_kind kind = lp_video_task_kind; /* or the baseline's task */
    if (f.baseline && lp_task_kind_of_ckpt(f.baseline, &kind) != LP_OK) {
        lp_cli_error("pipeline", "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    o.kind = &kind;
    o.out_dir = f.out;
    o.baseline_ckpt = f.baseline;
    o.quiet = f.quiet;
    char cmdline[8192]; /* recorded in the output directory (command.txt) */
    o.command = lp_cli_command_line(argc, argv, cmdline, sizeof cmdline);
    o.cfg = &cfg;
    lp_status s = lp_pipeline_opts_from_kv(&cfg, &o);
    if (s != LP_OK) { /* a bad option value: a usage error */
        lp_cli_error("pipeline", "%s", lp_last_error());
        rc = 2;
        goto out;
    }
    if (lp_pipeline_check(&o) != LP_OK) { /* before a baseline is trained for hours */
        lp_cli_error("pipeline", "%s", lp_last_error());
        rc = 2;
        goto out;
    }
    if ((rc = lp_args_claim_out("pipeline", f.out, f.force)) != 0) goto out;
    lp_runcfg_apply_threads(&cfg);
    lp_pipeline_result r;
    if (s == LP_OK) s = lp_pipeline_run(&o, &r);
    if (s != LP_OK) {
        lp_cli_error("pipeline", "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    { /* the result table is printed even with --quiet (which silences progress only) */
        printf("\n");
        lp_cli_print_groups(&r);
        printf("\n");
        lp_cli_print_models(kind.ops, r.rows, r.n_rows);
        printf("\nmean pruning rate %.4f; report: %s/report.md\n", r.mean_rate, f.out);
    }
out:
    lp_kv_free(&cfg);
    lp_kv_free(&defaults);
    return rc;
}
