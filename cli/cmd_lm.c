/* lstmprune lm-train / lm-eval / lm-prune: the Penn Treebank language-model experiment (docs/CLI.md
 * "## PTB"). Training is the one trainer (train/trainer.h) on the LM task (tasks/lm_task.h), pruning the
 * one pipeline (experiments/pipeline.h); this file only maps flags to configuration keys and prints
 * results. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "core/kv.h"
#include "lm/lm.h"
#include "experiments/pipeline.h"
#include "tasks/lm_task.h"
#include "train/trainer.h"
#include "lm/ptb.h"
#include "model/runcfg.h"

/* ---- shared flags ---------------------------------------------------------------------------------- */

static const lp_arg lm_model_args[] = {
    {"layers", "lm.layers", LP_ARG_INT, 1, "N", "stacked LSTM layers", NULL},
    {"units", "lm.units", LP_ARG_STR, 0, "H[,H2..]", "units per layer: one size for every layer or one per layer", NULL},
    {"embed", "lm.embed", LP_ARG_INT, 0, "E", "embedding size (0 = units of layer 1)", NULL},
    {"tied", "lm.tied", LP_ARG_FLAG, 0, NULL, "tie the softmax weight to the embedding table (needs E = last layer's units)", NULL},
    {"dropout", "lm.dropout", LP_ARG_NUM, 0, "P", "non-recurrent dropout rate when training (Zaremba)", NULL},
    {"init-scale", "lm.init_scale", LP_ARG_NUM, 0, "S", "initial weights uniform in +-S", NULL},
};

static const lp_arg lm_train_args[] = {
    {"data", "data.dir", LP_ARG_STR, 0, "DIR", "directory with ptb.train.txt, ptb.valid.txt, ptb.test.txt", NULL},
    {"max-words", "data.max_words", LP_ARG_INT, 0, "N", "vocabulary cap (0 = every training word: 10,000 on PTB)", NULL},
    {"epochs", "train.epochs", LP_ARG_INT, 1, "N", "training epochs (with --resume: the new total)", NULL},
    {"batch", "train.batch", LP_ARG_INT, 1, "B", "parallel streams (batch size)", NULL},
    {"bptt", "train.bptt", LP_ARG_INT, 1, "T", "steps per truncated-BPTT window", NULL},
    {"lr", "train.lr", LP_ARG_NUM, 0, "LR", "SGD learning rate", NULL},
    {"lr-decay", "train.lr_decay", LP_ARG_NUM, 0, "R", "multiply the learning rate by R every epoch after --decay-after", NULL},
    {"decay-after", "train.decay_after", LP_ARG_INT, 0, "E", "epochs at the full learning rate", NULL},
    {"clip", "train.clip", LP_ARG_NUM, 0, "NORM", "clip the global gradient norm to NORM (0 = off)", NULL},
    {"momentum", "train.momentum", LP_ARG_NUM, 0, "M", "SGD momentum", NULL},
    {"seed", "train.seed", LP_ARG_INT, 0, "S", "seed of initialisation and dropout", NULL},
    {"threads", "train.threads", LP_ARG_INT, 0, "N", "OpenBLAS threads (0 = library default: all cores)", NULL},
    {"eval-batch", "train.eval_batch", LP_ARG_INT, 1, "B", "streams when evaluating perplexity", NULL},
    {"eval-bptt", "train.eval_bptt", LP_ARG_INT, 0, "T", "window when evaluating (0 = --bptt)", NULL},
    {"log-every", "train.log_every", LP_ARG_INT, 0, "N", "a train.tsv row every N windows", NULL},
    {"save-every", "train.save_every", LP_ARG_INT, 0, "N", "also write last.ckpt every N windows (exact resume inside an epoch; 0 = epoch ends only)", NULL},
    LP_ARG_MICRO_BATCHES,
    LP_ARG_REDUCE,
    LP_ARG_PRECISION,
    {"test-every", "train.test_every", LP_ARG_INT, 0, "N", "test perplexity every N epochs (0 = only after the last)", NULL},
};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static int set_threads(const lp_kv *kv) {
    lp_runcfg_apply_threads(kv);
    return 0;
}

/* ---- lm-train -------------------------------------------------------------------------------------- */

typedef struct {
    const char *out, *resume, *init, *recipe, *config;
    int quiet, force;
    long long stop_after;
} train_flags;

static int train_handle(void *user, const char *name, const char *value) {
    train_flags *f = user;
    if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "resume")) f->resume = value;
    else if (!strcmp(name, "init")) f->init = value;
    else if (!strcmp(name, "recipe")) f->recipe = value;
    else if (!strcmp(name, "config")) f->config = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "force")) f->force = 1;
    else if (!strcmp(name, "stop-after-epochs")) {
        char *end;
        f->stop_after = strtoll(value, &end, 10);
        if (*end || f->stop_after < 1) {
            lp_cli_error("lm-train", "--stop-after-epochs: '%s' is not a positive integer", value);
            return 2;
        }
    }
    return 0;
}

static const lp_arg train_own[] = {
    {"recipe", NULL, LP_ARG_STR, 0, "NAME", "small (2x200), medium (2x650) or large (2x1500): Zaremba et al. 2014; "
                                            "explicit flags override its values", "small"},
    {"config", NULL, LP_ARG_STR, 0, "FILE", "read lm.*/data.*/train.* keys from FILE (e.g. experiments/ptb_small.conf); "
                                            "--recipe and explicit flags override it", NULL},
    {"out", NULL, LP_ARG_STR, 0, "DIR", "run directory (created): config.txt, train.tsv, valid.tsv, last.ckpt, best.ckpt", NULL},
    {"resume", NULL, LP_ARG_STR, 0, "DIR", "continue the run in DIR after its last finished epoch (--epochs may extend it)", NULL},
    LP_ARG_FORCE,
    {"init", NULL, LP_ARG_STR, 0, "CKPT", "start from the weights and sizes of CKPT (fine-tuning a pruned model)", NULL},
    {"stop-after-epochs", NULL, LP_ARG_INT, 1, "N", "stop after N epochs of this invocation (resume later)", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "no progress line and no per-epoch lines", NULL},
};

int lp_cmd_lm_train(int argc, char **argv) {
    const char *cmd = "lm-train";
    lp_arg table[64];
    int n = lp_args_join(table, 64, train_own, N_OF(train_own), lm_model_args, N_OF(lm_model_args));
    n = lp_args_join(table, 64, table, n, lm_train_args, N_OF(lm_train_args));
    lp_kv flags, cfg, defaults;
    lp_kv_init(&flags);
    lp_kv_init(&cfg);
    lp_kv_init(&defaults);
    lp_lm_run_defaults(&defaults);
    train_flags f = {0};
    int rc = lp_args_parse(cmd, argc, argv, table, n, &flags, train_handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune lm-train [--recipe small|medium|large] [options] --out DIR | --resume DIR\n\n"
               "Train a word-level LSTM language model on Penn Treebank (embedding -> stacked LSTM -> softmax,\n"
               "truncated BPTT, SGD). Defaults are the small recipe's.\n\n");
        lp_args_help(stdout, table, n, &defaults);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    lp_train_opts o = {0};
    o.quiet = f.quiet;
    o.stop_after_epochs = f.stop_after;
    if (f.resume) {
        for (int i = 0; i < flags.count; i++)
            if (strcmp(flags.keys[i], "train.epochs") != 0) {
                lp_cli_error(cmd, "with --resume only --epochs may be given (the run's config.txt has the rest)");
                rc = 2;
                goto out;
            }
        if (f.recipe || f.init || f.out || f.config || f.force) {
            lp_cli_error(cmd, "--resume cannot be combined with --config, --recipe, --init, --out or --force");
            rc = 2;
            goto out;
        }
        o.resume = 1;
        o.run_dir = f.resume;
        o.epochs_override = lp_kv_get_int_or(&flags, "train.epochs", 0);
    } else {
        if (!f.out) {
            lp_cli_error(cmd, "--out DIR is required (or --resume DIR)");
            rc = 2;
            goto out;
        }
        if (f.config && lp_kv_read_file(&cfg, f.config) != LP_OK) {
            lp_cli_error(cmd, "--config: %s", lp_last_error());
            rc = 2;
            goto out;
        }
        if (f.recipe && lp_lm_recipe_apply(&cfg, f.recipe) != LP_OK) {
            lp_cli_error(cmd, "--recipe: %s", lp_last_error());
            rc = 2;
            goto out;
        }
        if (f.init && (f.recipe || f.config)) {
            /* the checkpoint decides the sizes; a recipe or config only brings the training schedule */
            const char *model_keys[] = {"lm.layers", "lm.units", "lm.embed", "lm.tied", "lm.init_scale"};
            lp_kv tmp;
            lp_kv_init(&tmp);
            for (int i = 0; i < cfg.count; i++) {
                int skip = 0;
                for (int k = 0; k < N_OF(model_keys); k++) skip |= !strcmp(cfg.keys[i], model_keys[k]);
                if (!skip) lp_kv_set(&tmp, cfg.keys[i], cfg.vals[i]);
            }
            lp_kv_free(&cfg);
            cfg = tmp;
        }
        if (lp_kv_merge(&cfg, &flags) != LP_OK) {
            lp_cli_error(cmd, "%s", lp_last_error());
            rc = 1;
            goto out;
        }
        if (lp_lm_run_check(&cfg) != LP_OK || lp_train_check(&cfg) != LP_OK) { /* before the data or the run directory */
            rc = lp_args_check_failed(cmd, table, n);
            goto out;
        }
        if (!f.recipe && !lp_kv_get(&cfg, "lm.recipe")) lp_kv_set(&cfg, "lm.recipe", f.init ? "finetune" : "custom");
        if ((rc = lp_args_claim_out(cmd, f.out, f.force)) != 0) goto out;
        o.run_dir = f.out;
        o.init_ckpt = f.init;
    }
    lp_train_result res;
    const lp_task_kind kind = lp_lm_task_kind(NULL);
    lp_status s = lp_train(&kind, &cfg, &o, &res);
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    if (!o.quiet) {
        printf("trained %lld epochs in %.1f s; last epoch: train ppl %.2f, valid ppl %.2f", (long long)res.epochs_done,
               res.seconds, exp(res.last_loss), lp_score_get(&res.last_valid, "ppl"));
        if (res.last_test.n) printf(", test ppl %.2f", lp_score_get(&res.last_test, "ppl"));
        if (res.best.n) printf("; best valid ppl %.2f (epoch %lld)", lp_score_get(&res.best, "ppl"), (long long)res.best_epoch);
        printf("\nlargest gradient norm %.4g", res.max_grad_norm);
        if (res.spikes > 0)
            printf("; %lld giant gradient spike%s (over %.0f times the median of the windows before; above)",
                   (long long)res.spikes, res.spikes > 1 ? "s" : "", LP_GRAD_SPIKE_FACTOR);
        printf("\nrun directory: %s (best.ckpt, last.ckpt, train.tsv, valid.tsv)\n", o.run_dir);
    }
out:
    lp_kv_free(&flags);
    lp_kv_free(&cfg);
    lp_kv_free(&defaults);
    return rc;
}

/* ---- lm-eval --------------------------------------------------------------------------------------- */

typedef struct {
    const char *ckpt, *split;
} eval_flags;

static int eval_handle(void *user, const char *name, const char *value) {
    eval_flags *f = user;
    if (!strcmp(name, "checkpoint")) f->ckpt = value;
    else if (!strcmp(name, "split")) f->split = value;
    return 0;
}

static const lp_arg eval_args[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "LM checkpoint (best.ckpt, last.ckpt, pruned.ckpt, ...)", NULL},
    {"data", "data.dir", LP_ARG_STR, 0, "DIR", "PTB directory", "the checkpoint's data.dir, else " LP_LM_DEFAULT_DATA_DIR},
    {"split", NULL, LP_ARG_STR, 0, "S", "train, valid, test or all (comma-separated list)", "valid,test"},
    /* under the keys the LM run checks (lp_lm_run_check), so that their bounds are lm-train's */
    {"batch", "train.eval_batch", LP_ARG_INT, 1, "B", "parallel streams", "20"},
    {"bptt", "train.eval_bptt", LP_ARG_INT, 1, "T", "window length (the state is carried across windows)", "35"},
    {"threads", "train.threads", LP_ARG_INT, 0, "N", "OpenBLAS threads (0 = library default)", "1"},
    LP_ARG_PRECISION_OR("the checkpoint's"),
};

/* "valid,test" -> mask of splits; 0 on a bad name. */
static int parse_splits(const char *s) {
    int mask = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (!strcmp(tok, "all")) mask |= 7;
        else {
            int found = 0;
            for (int i = 0; i < LP_PTB_SPLITS; i++)
                if (!strcmp(tok, lp_ptb_split_name(i))) mask |= 1 << i, found = 1;
            if (!found) return 0;
        }
    }
    return mask;
}

int lp_cmd_lm_eval(int argc, char **argv) {
    const char *cmd = "lm-eval";
    lp_kv flags, meta;
    lp_kv_init(&flags);
    lp_kv_init(&meta);
    eval_flags f = {NULL, "valid,test"};
    int rc = lp_args_parse(cmd, argc, argv, eval_args, N_OF(eval_args), &flags, eval_handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune lm-eval --checkpoint CKPT [options]\n\nPerplexity and words/s of an LM checkpoint.\n\n");
        lp_args_help(stdout, eval_args, N_OF(eval_args), NULL);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (!f.ckpt) {
        lp_cli_error(cmd, "--checkpoint CKPT is required");
        rc = 2;
        goto out;
    }
    int mask = parse_splits(f.split);
    if (!mask) {
        lp_cli_error(cmd, "--split: '%s' is not a list of train, valid, test, all", f.split);
        rc = 2;
        goto out;
    }
    if (lp_lm_run_check(&flags) != LP_OK) { /* a window of 1e9 steps would be a failed allocation later */
        rc = lp_args_check_failed(cmd, eval_args, N_OF(eval_args));
        goto out;
    }
    if (!lp_kv_get(&flags, "train.threads")) lp_kv_set(&flags, "train.threads", "1");
    set_threads(&flags);
    lp_lm m;
    lp_status s = lp_lm_load(&m, f.ckpt, &meta);
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    /* the products in the checkpoint's precision, unless --precision says (as eval) */
    const char *ckpt_prec = lp_kv_get(&meta, "train.precision");
    if ((!lp_kv_get(&flags, "train.precision") && ckpt_prec && lp_kv_set(&flags, "train.precision", ckpt_prec) != LP_OK) ||
        lp_runcfg_apply_precision(&flags) != LP_OK) {
        lp_cli_error(cmd, "--precision: %s", lp_last_error());
        lp_lm_free(&m);
        rc = 2;
        goto out;
    }
    lp_kv dk;
    lp_kv_init(&dk);
    const char *dir = lp_kv_get(&flags, "data.dir");
    if (!dir) dir = lp_kv_get(&meta, "data.dir");
    lp_kv_set(&dk, "data.dir", dir ? dir : LP_LM_DEFAULT_DATA_DIR);
    lp_kv_set(&dk, "data.max_words", lp_kv_get(&meta, "data.max_words") ? lp_kv_get(&meta, "data.max_words") : "0");
    lp_ptb_corpus c;
    s = lp_lm_run_corpus(&dk, &c);
    if (s == LP_OK) s = lp_lm_vocab_check(&m.cfg, &c.vocab, f.ckpt, lp_kv_get(&dk, "data.dir"));
    const int B = (int)lp_kv_get_int_or(&flags, "train.eval_batch", 20);
    const int T = (int)lp_kv_get_int_or(&flags, "train.eval_bptt", 35);
    if (s == LP_OK) {
        char units[128] = "";
        size_t off = 0;
        for (int l = 0; l < m.cfg.layers; l++)
            off += (size_t)snprintf(units + off, sizeof units - off, l ? ",%d" : "%d", m.cfg.hidden[l]);
        printf("%s: %d layers (%s units), embed %d%s, vocabulary %d, %zu parameters\n", f.ckpt, m.cfg.layers, units,
               m.cfg.embed, m.cfg.tied ? " (tied)" : "", m.cfg.vocab, lp_lm_numel(&m));
    }
    for (int i = 0; s == LP_OK && i < LP_PTB_SPLITS; i++) {
        if (!(mask & (1 << i))) continue;
        lp_lm_eval_result ev;
        s = lp_lm_evaluate(&m, c.ids[i], c.n[i], B, T, NULL, &ev);
        if (s == LP_OK)
            printf("%-5s perplexity %9.3f  (nll %.5f over %zu words, %.0f words/s, %.1f s)\n", lp_ptb_split_name(i),
                   ev.ppl, ev.nll, ev.targets, ev.words_per_sec, ev.seconds);
    }
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
    }
    lp_ptb_corpus_free(&c);
    lp_kv_free(&dk);
    lp_lm_free(&m);
out:
    lp_kv_free(&flags);
    lp_kv_free(&meta);
    return rc;
}

/* ---- lm-prune -------------------------------------------------------------------------------------- */

typedef struct {
    const char *ckpt, *out;
    int quiet, force;
} prune_flags;

static int prune_handle(void *user, const char *name, const char *value) {
    prune_flags *f = user;
    if (!strcmp(name, "checkpoint")) f->ckpt = value;
    else if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "force")) f->force = 1;
    return 0;
}

static const lp_arg prune_head[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "the trained LM (e.g. RUN/best.ckpt of lm-train)", NULL},
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory (created): pruned.ckpt, finetune/, iss/, report.md, report.json", NULL},
    LP_ARG_FORCE,
    {"data", "data.dir", LP_ARG_STR, 0, "DIR", "PTB directory", "the checkpoint's data.dir"},
};

/* after the method's flags (cli/args.h lp_args_method) */
static const lp_arg prune_tail[] = {
    {"stats-windows", "prune.stats_batches", LP_ARG_INT, 0, "N", "training windows for the response statistics (0 = one epoch)", "0"},
    {"stats-batch", "prune.stats_batch", LP_ARG_INT, 1, "B", "streams for the statistics", "20"},
    {"stats-bptt", "prune.stats_bptt", LP_ARG_INT, 1, "T", "window length for the statistics", "35"},
    {"seed", "prune.seed", LP_ARG_INT, 0, "S", "seed of the random criterion", "1"},
    {"compensate", "prune.compensate", LP_ARG_STR, 0, "MODE",
     "none, or mean: the removed units' mean responses go into the biases that read them (not with ISS)", "none"},
    {"finetune-epochs", "prune.finetune_epochs", LP_ARG_INT, 0, "N", "fine-tuning epochs of the pruned model (0 = none)", "2"},
    {"finetune-lr", "prune.finetune_lr", LP_ARG_NUM, 0, "LR", "fine-tuning SGD learning rate of the first epoch", "0.1"},
    {"finetune-decay", "finetune.train.lr_decay", LP_ARG_NUM, 0, "R", "fine-tuning learning-rate factor per later epoch", "0.5"},
    {"iss-lambda", "prune.iss_lambda", LP_ARG_NUM, 0, "L", "ISS baseline instead: group-lasso strength (0 = off)", "0"},
    {"iss-threshold", "prune.iss_threshold", LP_ARG_NUM, 0, "E", "ISS: units with a smaller footprint norm are zeroed and removed", "0.001"},
    {"iss-epochs", "iss.train.epochs", LP_ARG_INT, 1, "N", "ISS: epochs of group-lasso training from the checkpoint", "2"},
    {"iss-lr", "iss.train.lr", LP_ARG_NUM, 0, "LR", "ISS: constant SGD learning rate of that training", "0.1"},
    {"eval-batch", "train.eval_batch", LP_ARG_INT, 1, "B", "streams for the report's perplexities", "20"},
    {"eval-bptt", "train.eval_bptt", LP_ARG_INT, 1, "T", "window for the report's perplexities", "35"},
    {"threads", "train.threads", LP_ARG_INT, 0, "N", "OpenBLAS threads (0 = library default)", "1"},
    LP_ARG_MICRO_BATCHES,
    LP_ARG_REDUCE,
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "only errors and the final table", NULL},
};

int lp_cmd_lm_prune(int argc, char **argv) {
    const char *cmd = "lm-prune";
    lp_kv kv, cfg;
    lp_kv_init(&kv);
    lp_kv_init(&cfg);
    prune_flags f = {0};
    lp_arg table[64];
    int n = lp_args_join(table, 64, prune_head, N_OF(prune_head), lp_args_method, lp_args_method_n);
    n = lp_args_join(table, 64, table, n, prune_tail, N_OF(prune_tail));
    int rc = lp_args_parse(cmd, argc, argv, table, n, &kv, prune_handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune lm-prune --checkpoint CKPT --out DIR [options]\n\n"
               "Remove LSTM units of a trained PTB language model (eigen rates + geometric median by default, or the\n"
               "ISS group-lasso baseline), fine-tune the smaller model and write report.md / report.json: the\n"
               "pipeline of `lstmprune prune` on the language-model task.\n\n");
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
    const double lambda = lp_kv_get_double_or(&kv, "prune.iss_lambda", 0);
    if (lambda > 0 && (lp_kv_get(&kv, "prune.rule") || lp_kv_get(&kv, "prune.criterion") || lp_kv_get(&kv, "prune.tau") ||
                       lp_kv_get(&kv, "prune.target_rate"))) {
        lp_cli_error(cmd, "--iss-lambda selects the ISS baseline: its sizes come from the threshold, not from "
                          "--rate-rule/--criterion/--tau/--target-rate");
        rc = 2;
        goto out;
    }
    if (lp_kv_get(&kv, "prune.tau") && lp_kv_get(&kv, "prune.target_rate")) {
        lp_cli_error(cmd, "give --tau or --target-rate, not both");
        rc = 2;
        goto out;
    }
    if (lambda > 0 && lp_kv_get(&kv, "prune.compensate") && strcmp(lp_kv_get(&kv, "prune.compensate"), "none")) {
        lp_cli_error(cmd, "--compensate mean does not apply to ISS, which has driven the removed units to zero");
        rc = 2;
        goto out;
    }
    /* the pipeline's keys: the flags, then the training settings of the ISS and fine-tuning runs (Zaremba's
     * schedule: SGD, lr × decay per epoch after the first; ISS at a constant lr), evaluation as lm-eval */
    lp_status s = lp_kv_merge(&cfg, &kv);
    const char *set[][2] = {{"finetune.train.decay_after", "1"}, {"finetune.train.test_every", "0"},
                            {"iss.train.lr_decay", "1"},         {"iss.train.decay_after", "0"},
                            {"iss.train.test_every", "0"},       {"prune.iss_method", "subgradient"}};
    for (size_t i = 0; s == LP_OK && i < N_OF(set); i++) s = lp_kv_set(&cfg, set[i][0], set[i][1]);
    const char *dflt[][2] = {{"iss.train.epochs", "2"}, {"iss.train.lr", "0.1"}, {"finetune.train.lr_decay", "0.5"},
                             {"train.eval_batch", "20"}, {"train.eval_bptt", "35"}, {"train.threads", "1"}};
    for (size_t i = 0; s == LP_OK && i < N_OF(dflt); i++)
        if (!lp_kv_get(&cfg, dflt[i][0])) s = lp_kv_set(&cfg, dflt[i][0], dflt[i][1]);
    lp_pipeline_opts o;
    lp_pipeline_opts_default(&o);
    o.prune.stats_batches = 0; /* one epoch of windows */
    o.finetune_epochs = 2;
    o.finetune_lr = 0.1;
    o.iss_threshold = 1e-3;
    if (s == LP_OK) s = lp_pipeline_opts_from_kv(&cfg, &o);
    if (s == LP_OK && o.prune.rates.rule == LP_RATE_RULE_UNIFORM && o.prune.rates.target_rate < 0)
        s = lp_errorf(LP_ERR_ARG, "--rate-rule uniform needs --target-rate R");
    if (s != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 2;
        goto out;
    }
    if (lp_lm_run_check(&cfg) != LP_OK || lp_train_check(&cfg) != LP_OK) { /* before anything is written */
        rc = lp_args_check_failed(cmd, table, n);
        goto out;
    }
    const lp_task_kind kind = lp_lm_task_kind(NULL);
    o.kind = &kind;
    o.cfg = &cfg;
    o.out_dir = f.out;
    o.baseline_ckpt = f.ckpt;
    o.quiet = f.quiet;
    char cmdline[8192]; /* recorded in the output directory (command.txt) */
    o.command = lp_cli_command_line(argc, argv, cmdline, sizeof cmdline);
    if (lp_pipeline_check(&o) != LP_OK) { /* per-group rates that do not fit the model: a usage error */
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 2;
        goto out;
    }
    if ((rc = lp_args_claim_out(cmd, f.out, f.force)) != 0) goto out;
    o.lat_batch = (int)lp_kv_get_int_or(&cfg, "train.eval_batch", 20);
    o.lat_frames = (int)lp_kv_get_int_or(&cfg, "train.eval_bptt", 35);
    o.lat_reps = 3;
    if (lambda > 0) {
        o.schedule = LP_SCHED_ISS;
        o.iss_lambda = lambda;
    }
    lp_pipeline_result r;
    if (lp_pipeline_run(&o, &r) != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    lp_cli_print_groups(&r);
    printf("\n");
    lp_cli_print_models(kind.ops, r.rows, r.n_rows);
    printf("mean pruning rate %.4f; pruned model: %s/pruned.ckpt; report: %s/report.md\n", r.mean_rate, f.out, f.out);
out:
    lp_kv_free(&kv);
    lp_kv_free(&cfg);
    return rc;
}
