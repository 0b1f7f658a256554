/* lstmprune train: train a video classifier (see train/trainer.h for the run directory). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/ckpt.h"
#include "model/runcfg.h"
#include "tasks/video_task.h"
#include "train/trainer.h"
#include "optim/optim.h"
#include "experiments/compat.h"
#include "prune/iss.h"

typedef struct {
    const char *out, *resume, *init, *compat;
    int quiet, force;
    long long stop_after;
} train_flags;

static int handle(void *user, const char *name, const char *value) {
    train_flags *f = user;
    if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "resume")) f->resume = value;
    else if (!strcmp(name, "init")) f->init = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "force")) f->force = 1;
    else if (!strcmp(name, "compat")) f->compat = value;
    else if (!strcmp(name, "stop-after-epochs")) {
        char *end;
        f->stop_after = strtoll(value, &end, 10);
        if (*end || f->stop_after < 1) {
            lp_cli_error("train", "--stop-after-epochs: '%s' is not a positive integer", value);
            return 2;
        }
    }
    return 0;
}

static const lp_arg own[] = {
    {"out", NULL, LP_ARG_STR, 0, "DIR", "run directory (created): config.txt, train.tsv, valid.tsv, last.ckpt, best.ckpt", NULL},
    {"resume", NULL, LP_ARG_STR, 0, "DIR", "continue the run in DIR exactly where its last.ckpt stopped (--epochs may extend it)", NULL},
    LP_ARG_FORCE,
    {"init", NULL, LP_ARG_STR, 0, "CKPT", "start from the weights (and sizes) of CKPT instead of a fresh model; data options default to CKPT's", NULL},
    {"stop-after-epochs", NULL, LP_ARG_INT, 1, "N", "stop after N epochs of this invocation (resume later)", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "no progress line", NULL},
    {"compat", NULL, LP_ARG_STR, 0, "PRESET", "reference: the public TensorFlow code's training settings (Keras initialisers, Adam eps 1e-7, lr x0.95 per 4M steps, repeat padding to 300 frames, L2-normalised frames; docs/REPRODUCING.md)", "ours"},
};

/* The data.* keys of checkpoint `path` that the command line left out, into cfg: the model was trained on
 * records read with those settings (classes, features, id key, frame cap, normalisation), so fine-tuning
 * reads them the same way, as eval, predict and prune do. The shard globs (data.train, data.valid,
 * data.test) are not taken: where the data is comes from this command line only. Before the defaults. */
static lp_status inherit_data(lp_kv *cfg, const char *path) {
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = lp_ckpt_load(&c, path);
    for (int i = 0; s == LP_OK && i < c.meta.count; i++) {
        const char *k = c.meta.keys[i];
        if (strncmp(k, "data.", 5) || lp_kv_get(cfg, k)) continue;
        if (!strcmp(k, "data.train") || !strcmp(k, "data.valid") || !strcmp(k, "data.test")) continue;
        s = lp_kv_set(cfg, k, c.meta.vals[i]);
    }
    lp_ckpt_free(&c);
    return s;
}

int lp_cmd_train_like(const char *cmd, int argc, char **argv, int finetune) {
    lp_arg table[64];
    int n = lp_args_join(table, 64, own, (int)(sizeof own / sizeof own[0]), lp_args_data, lp_args_data_n);
    if (!finetune) n = lp_args_join(table, 64, table, n, lp_args_model, lp_args_model_n);
    n = lp_args_join(table, 64, table, n, lp_args_train, lp_args_train_n);
    lp_kv cfg, defaults;
    lp_kv_init(&cfg);
    lp_kv_init(&defaults);
    lp_runcfg_defaults(&defaults);
    train_flags f = {0};
    int rc = lp_args_parse(cmd, argc, argv, table, n, &cfg, handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune %s %s [options]\n\n", cmd,
               finetune ? "--init CKPT --train GLOB --out DIR" : "--train GLOB --out DIR | --resume DIR");
        printf(finetune ? "Fine-tune a (pruned) checkpoint: training that starts from its weights and sizes.\n\n"
                        : "Train a video classifier (paper defaults: Adam, lr 2e-4, batch 160, 20 epochs).\n\n");
        lp_args_help(stdout, table, n, &defaults);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    lp_train_opts o = {0};
    o.quiet = f.quiet;
    o.stop_after_epochs = f.stop_after;
    if (f.resume && (f.force || f.out)) {
        lp_cli_error(cmd, "--resume DIR continues a run: it takes neither --out nor --force");
        rc = 2;
        goto out;
    }
    if (f.resume) {
        o.resume = 1;
        o.run_dir = f.resume;
        o.epochs_override = lp_kv_get_int_or(&cfg, "train.epochs", 0);
        lp_kv_free(&cfg);
        lp_kv_init(&cfg);
    } else {
        if (!f.out) {
            lp_cli_error(cmd, "--out DIR is required (or --resume DIR)");
            rc = 2;
            goto out;
        }
        if (finetune && !f.init) {
            lp_cli_error(cmd, "--init CKPT is required");
            rc = 2;
            goto out;
        }
        if (!lp_kv_get(&cfg, "data.train")) {
            lp_cli_error(cmd, "--train GLOB is required");
            rc = 2;
            goto out;
        }
        if ((rc = lp_args_claim_out(cmd, f.out, f.force)) != 0) goto out;
        o.run_dir = f.out;
        o.init_ckpt = f.init;
        if (f.compat && lp_compat_apply(&cfg, f.compat, "train.,data.") != LP_OK) { /* before the defaults: flags win */
            lp_cli_error(cmd, "--compat: %s", lp_last_error());
            rc = 2;
            goto out;
        }
        if (f.init && inherit_data(&cfg, f.init) != LP_OK) {
            lp_cli_error(cmd, "%s", lp_last_error());
            rc = 1;
            goto out;
        }
        lp_runcfg_defaults(&cfg);
        if (!f.init && (rc = lp_args_model_kv(cmd, &cfg)) != 0) goto out;
        if (lp_runcfg_check(&cfg) != LP_OK || lp_train_check(&cfg) != LP_OK) { /* before the run directory is made */
            rc = lp_args_check_failed(cmd, table, n);
            goto out;
        }
    }
    /* ISS group lasso (also when resuming: the run's own config says whether it was on). */
    lp_kv run_cfg;
    lp_kv_init(&run_cfg);
    if (f.resume) {
        char p[4096];
        snprintf(p, sizeof p, "%s/config.txt", f.resume);
        (void)lp_kv_read_file(&run_cfg, p); /* a missing file is reported by lp_train */
    }
    const lp_kv *src = f.resume ? &run_cfg : &cfg;
    lp_iss_state iss = {.lambda = lp_kv_get_double_or(src, "train.iss_lambda", 0), .lr = lp_kv_get_double_or(src, "train.lr", 2e-4)};
    lp_kv_free(&run_cfg);
    if (iss.lambda > 0) {
        o.hooks.user = &iss;
        o.hooks.after_update = lp_iss_update_hook;
    }
    lp_train_result res;
    lp_status s = lp_train(&lp_video_task_kind, &cfg, &o, &res);
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    if (!o.quiet) {
        printf("trained %lld epochs, %lld steps in %.1f s; last epoch loss %.4f", (long long)res.epochs_done,
               (long long)res.steps, res.seconds, res.last_loss);
        if (res.best.n) printf("; best validation GAP %.4f", lp_score_get(&res.best, "gap"));
        if (res.max_grad_step > 0) printf("\nlargest gradient norm %.4g (step %lld)", res.max_grad_norm, (long long)res.max_grad_step);
        if (res.spikes > 0)
            printf("; %lld giant gradient spike%s (over %.0f times the median of the steps before; above)",
                   (long long)res.spikes, res.spikes > 1 ? "s" : "", LP_GRAD_SPIKE_FACTOR);
        printf("\nrun directory: %s (best.ckpt, last.ckpt, train.tsv, valid.tsv)\n", o.run_dir);
    }
out:
    lp_kv_free(&cfg);
    lp_kv_free(&defaults);
    return rc;
}

int lp_cmd_train(int argc, char **argv) { return lp_cmd_train_like("train", argc, argv, 0); }
int lp_cmd_finetune(int argc, char **argv) { return lp_cmd_train_like("finetune", argc, argv, 1); }
