/* lstmprune trace: one video or one PTB sentence through a trained model, step by step and unit by unit,
 * beside the pruning plan `prune` would make with the same flags (experiments/trace.h). This file maps
 * flags to configuration keys, checks them, and prints what was written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "experiments/compat.h"
#include "experiments/kinds.h"
#include "experiments/pipeline.h"
#include "experiments/trace.h"
#include "lm/ptb.h"
#include "model/runcfg.h"

typedef struct {
    const char *ckpt, *out, *video, *split, *compat;
    long sentence;
    int quiet, force;
} trace_flags;

static int handle(void *user, const char *name, const char *value) {
    trace_flags *f = user;
    if (!strcmp(name, "checkpoint")) f->ckpt = value;
    else if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "video")) f->video = value;
    else if (!strcmp(name, "split")) f->split = value;
    else if (!strcmp(name, "compat")) f->compat = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "force")) f->force = 1;
    else if (!strcmp(name, "sentence")) {
        char *end;
        long v = strtol(value, &end, 10);
        if (*end || end == value || v < 1) {
            lp_cli_error("trace", "--sentence: '%s' is not a line number (1, 2, ...)", value);
            return 2;
        }
        f->sentence = v;
    }
    return 0;
}

static const lp_arg own[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "the trained model: a video classifier (paper, lstm) or a language model", NULL},
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory: gates.csv, units.csv, groups.csv, output.csv or steps.csv, trace.gp, heatmaps", NULL},
    LP_ARG_FORCE,
    {"video", NULL, LP_ARG_STR, 0, "ID", "video model: the id of the video to trace", NULL},
    {"data", "data.trace", LP_ARG_APPEND, 0, "GLOB|DIR", "video: shards that hold the video (repeatable); LM: the PTB directory", "LM: the checkpoint's data.dir"},
    {"sentence", NULL, LP_ARG_INT, 1, "N", "language model: trace line N (from 1) of the --split text", NULL},
    {"split", NULL, LP_ARG_STR, 0, "S", "language model: the text of the sentence: train, valid or test", "valid"},
    {"stats-data", "data.train", LP_ARG_APPEND, 0, "GLOB", "video: data for the response statistics (default: the checkpoint's training data)", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "print nothing but errors", NULL},
    {"compat", NULL, LP_ARG_STR, 0, "PRESET", "reference: the public TensorFlow code's statistics and eigenvalue counting (docs/REPRODUCING.md)", "ours"},
};

/* The shared flags that do nothing here: the training and evaluation splits and scores, and mean
 * compensation (it changes the kept units' weights, not which units are kept). */
static const char *const not_used[] = {"train", "valid", "eval-batch", "top-k", "compensate", NULL};

/* Whether one of the video data flags was given (key set in flags); its name into *name. */
static int video_flag_given(const lp_kv *flags, const char **name) {
    for (int i = 0; i < lp_args_data_n; i++) {
        const lp_arg *a = &lp_args_data[i];
        if (!strcmp(a->name, "threads") || !strcmp(a->name, "train") || !strcmp(a->name, "valid")) continue;
        if (lp_kv_get(flags, a->key)) {
            *name = a->name;
            return 1;
        }
    }
    return 0;
}

static int split_of(const char *s) {
    for (int i = 0; i < LP_PTB_SPLITS; i++)
        if (!strcmp(s, lp_ptb_split_name(i))) return i;
    return -1;
}

/* The kind-specific flags: what a video and a sentence need, and the flags that belong to the other task.
 * 0 or 2 (message printed). */
static int check_kind_flags(const trace_flags *f, const lp_kv *cfg, int lm) {
    const char *cmd = "trace", *flag;
    const char *data = lp_kv_get(cfg, "data.trace");
    if (!lm) {
        if (f->sentence || f->split) {
            lp_cli_error(cmd, "%s is a video model: --sentence and --split trace a language model (give --video ID)",
                         f->ckpt);
            return 2;
        }
        if (!f->video || !data) {
            lp_cli_error(cmd, "a video model needs --video ID and --data GLOB (the shards that hold the video)");
            return 2;
        }
        return 0;
    }
    if (f->video || lp_kv_get(cfg, "data.train")) {
        lp_cli_error(cmd, "%s is a language model: --video and --stats-data apply to video models (give --sentence N)",
                     f->ckpt);
        return 2;
    }
    if (video_flag_given(cfg, &flag)) {
        lp_cli_error(cmd, "--%s: %s is a language model; the flag applies to video data", flag, f->ckpt);
        return 2;
    }
    if (!f->sentence) {
        lp_cli_error(cmd, "a language model needs --sentence N (line N of the --split text)");
        return 2;
    }
    if (f->split && split_of(f->split) < 0) {
        lp_cli_error(cmd, "--split: '%s' is not train, valid or test", f->split);
        return 2;
    }
    if (data && strchr(data, ';')) {
        lp_cli_error(cmd, "--data: give one PTB directory, not '%s'", data);
        return 2;
    }
    return 0;
}

/* What was written, per group: sizes, the units the plan removes. */
static void print_result(const trace_flags *f, const lp_trace_input *in, const lp_trace *tr, const lp_prune_plan *plan,
                         const lp_trace_files *files) {
    printf("%s through %s: %d steps, largest |h - the model's forward h| %.3g\n", in->what, f->ckpt, tr->T, tr->max_dh);
    printf("  %-12s %6s %6s  %s\n", "group", "units", "kept", "pruned units (the plan's)");
    for (int g = 0; g < tr->n_groups; g++) {
        const lp_prune_group_plan *gp = &plan->g[g];
        printf("  %-12s %6d %6d  ", tr->g[g].name, gp->h, gp->k);
        int shown = 0;
        for (int j = 0, i = 0; j < gp->h && shown < 16; j++) {
            if (i < gp->k && gp->kept[i] == j) {
                i++;
                continue;
            }
            printf("%s%d", shown++ ? " " : "", j);
        }
        printf("%s\n", gp->h - gp->k > shown ? " ..." : shown ? "" : "none");
    }
    if (in->ids) {
        printf("words: %s/steps.csv (each with the model's probability of the next word)\n", f->out);
    } else {
        printf("model output (top classes; * = a label of the video):");
        int top[5], k = 0;
        for (; k < 5 && k < tr->n_out; k++) { /* the k-th largest: the largest not taken yet */
            int best = -1;
            for (int c = 0; c < tr->n_out; c++) {
                int taken = 0;
                for (int q = 0; q < k; q++) taken |= top[q] == c;
                if (!taken && (best < 0 || tr->out[c] > tr->out[best])) best = c;
            }
            top[k] = best;
            printf(" %d%s %.4f", best, best < in->classes && in->labels[best] > 0.5f ? "*" : "", (double)tr->out[best]);
        }
        printf("\n  all classes: %s/output.csv (by probability, with the video's labels)\n", f->out);
    }
    printf("files: %s/gates.csv, units.csv, groups.csv, trace.gp", f->out);
    if (files->n_png) printf("; heatmaps: %d PNG%s (<group>.png)\n", files->n_png, files->n_png > 1 ? "s" : "");
    else if (files->gnuplot_failed) printf("; gnuplot failed (see %s/trace.log): no heatmaps\n", f->out);
    else printf("; gnuplot is not installed: the heatmaps were not drawn (`cd %s && gnuplot trace.gp` draws them)\n", f->out);
}

int lp_cmd_trace(int argc, char **argv) {
    const char *cmd = "trace";
    lp_arg table[96];
    int n = lp_args_join(table, 96, own, (int)(sizeof own / sizeof own[0]), lp_args_method, lp_args_method_n);
    n = lp_args_join(table, 96, table, n, lp_args_prune, lp_args_prune_n);
    n = lp_args_join(table, 96, table, n, lp_args_data, lp_args_data_n);
    n = lp_args_without(table, n, not_used);
    lp_kv cfg, tcfg;
    lp_kv_init(&cfg);
    lp_kv_init(&tcfg);
    trace_flags f = {0};
    lp_task *t = NULL;
    lp_trace_input in;
    lp_trace tr;
    lp_prune_plan plan;
    int have_in = 0, have_tr = 0, have_plan = 0;
    int rc = lp_args_parse(cmd, argc, argv, table, n, &cfg, handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune trace --checkpoint CKPT --out DIR (--video ID --data GLOB | --sentence N) [options]\n\n"
               "Look inside a trained model: for one video (video models) or one sentence (language models), the\n"
               "gates i, f, g, o, the cell state c and the output h of every unit group at every step (gates.csv),\n"
               "each unit's response statistics and whether the pruning plan removes it (units.csv, groups.csv:\n"
               "the plan `lstmprune prune` makes with the same flags), the model's output, and one heatmap per\n"
               "group (gnuplot). Runs as one process.\n\n");
        lp_args_help(stdout, table, n, NULL);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (!f.ckpt || !f.out) {
        lp_cli_error(cmd, "--checkpoint CKPT and --out DIR are required");
        rc = 2;
        goto out;
    }
    if (lp_runcfg_check(&cfg) != LP_OK) { /* flag ranges, before anything is read or written */
        rc = lp_args_check_failed(cmd, table, n);
        goto out;
    }
    lp_task_kind kind;
    if (lp_task_kind_of_ckpt(f.ckpt, &kind) != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    const int lm = !strcmp(kind.name, "lm");
    if ((rc = check_kind_flags(&f, &cfg, lm)) != 0) goto out;
    /* the keys the trace reads, recorded in DIR/config.txt with the rest */
    lp_status s = LP_OK;
    if (lm && lp_kv_get(&cfg, "data.trace")) s = lp_kv_set(&cfg, "data.dir", lp_kv_get(&cfg, "data.trace"));
    if (s == LP_OK && lm) s = lp_kv_set_int(&cfg, "trace.sentence", f.sentence);
    if (s == LP_OK && lm) s = lp_kv_set(&cfg, "trace.split", f.split ? f.split : "valid");
    if (s == LP_OK && !lm) s = lp_kv_set(&cfg, "trace.video", f.video);
    if (s == LP_OK && f.compat && lp_compat_apply(&cfg, f.compat, "prune.") != LP_OK) { /* explicit flags win */
        lp_cli_error(cmd, "--compat: %s", lp_last_error());
        rc = 2;
        goto out;
    }
    lp_pipeline_opts o;
    lp_pipeline_opts_default(&o);
    o.kind = &kind;
    o.cfg = &cfg;
    o.out_dir = f.out;
    o.baseline_ckpt = f.ckpt;
    o.quiet = f.quiet;
    if (s == LP_OK) s = lp_pipeline_opts_from_kv(&cfg, &o);
    o.schedule = LP_SCHED_ONESHOT;
    if (s == LP_OK) s = lp_pipeline_check(&o); /* per-group rates that do not fit the model */
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = s == LP_ERR_ARG ? 2 : 1;
        goto out;
    }
    lp_runcfg_apply_threads(&cfg);
    if (lp_pipeline_open(&o, f.ckpt, &tcfg, &t) != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    /* the sequence: a video id or a line that is not there is a usage error */
    if (lm) {
        s = lp_trace_lm_input(t, split_of(f.split ? f.split : "valid"), f.sentence, &in);
    } else {
        char **pats;
        int np;
        s = lp_runcfg_patterns(&cfg, "trace", &pats, &np);
        if (s == LP_OK) {
            s = lp_trace_video_input(t, pats, np, f.video, &in);
            lp_runcfg_free_patterns(pats, np);
        }
    }
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = s == LP_ERR_ARG ? 2 : 1;
        goto out;
    }
    have_in = 1;
    if ((rc = lp_args_claim_out(cmd, f.out, f.force)) != 0) goto out;
    s = lp_trace_run(t, &in, &tr);
    have_tr = s == LP_OK;
    if (s == LP_OK) s = lp_pipeline_plan(&o, t, f.ckpt, &plan);
    have_plan = have_tr && s == LP_OK;
    char cmdline[8192]; /* recorded in the output directory (command.txt) */
    lp_trace_files files;
    if (s == LP_OK)
        s = lp_trace_write(f.out, t, &in, &tr, &plan, &tcfg, lp_cli_command_line(argc, argv, cmdline, sizeof cmdline), &files);
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    if (!f.quiet) print_result(&f, &in, &tr, &plan, &files);
out:
    if (have_plan) lp_prune_plan_free(&plan);
    if (have_tr) lp_trace_free(&tr);
    if (have_in) lp_trace_input_free(&in);
    lp_task_free(t);
    lp_kv_free(&cfg);
    lp_kv_free(&tcfg);
    return rc;
}
