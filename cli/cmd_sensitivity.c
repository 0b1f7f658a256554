/* lstmprune sensitivity / lm-sensitivity: prune one unit group at a time at several rates, no fine-tuning,
 * and score the model (experiments/sensitivity.h: GAP for the video classifier, validation perplexity for
 * the language model; the checkpoint says which). lm-sensitivity is the same analysis with the language
 * model's flags (PTB directory, windows) and cost (relative perplexity rise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "model/runcfg.h"
#include "experiments/sensitivity.h"
#include "tasks/lm_task.h"

/* The flags both analyses have. */
typedef struct {
    const char *cmd; /* for messages */
    const char *ckpt, *out;
    int force;       /* --force: clear a non-empty --out */
    double *rates;   /* room for LP_SENSITIVITY_MAX_RATES */
    int *n_rates;
    lp_criterion *criterion;
    uint64_t *seed;
    int *compensate, *quiet;
    double *max;     /* --max-drop / --max-rise */
} common;

static int parse_num(const common *c, const char *flag, const char *v, double *out) {
    char *end;
    *out = strtod(v, &end);
    if (end == v || *end) {
        lp_cli_error(c->cmd, "--%s: '%s' is not a number", flag, v);
        return 2;
    }
    return 0;
}

static int parse_rates(const common *c, const char *value) {
    *c->n_rates = 0;
    const char *p = value;
    while (*p) {
        char *end;
        double r = strtod(p, &end);
        if (end == p || (*end && *end != ',') || !(r > 0 && r < 1)) {
            lp_cli_error(c->cmd, "--rates: '%s' is not a comma-separated list of rates in (0, 1)", value);
            return 2;
        }
        if (*c->n_rates == LP_SENSITIVITY_MAX_RATES) {
            lp_cli_error(c->cmd, "--rates: at most %d rates", LP_SENSITIVITY_MAX_RATES);
            return 2;
        }
        c->rates[(*c->n_rates)++] = r;
        p = *end ? end + 1 : end;
    }
    if (*c->n_rates == 0) {
        lp_cli_error(c->cmd, "--rates is empty");
        return 2;
    }
    return 0;
}

static int handle(void *user, const char *name, const char *value) {
    common *c = user;
    if (!strcmp(name, "checkpoint")) c->ckpt = value;
    else if (!strcmp(name, "out")) c->out = value;
    else if (!strcmp(name, "quiet")) *c->quiet = 1;
    else if (!strcmp(name, "force")) c->force = 1;
    else if (!strcmp(name, "rates")) return parse_rates(c, value);
    else if (!strcmp(name, "criterion")) {
        if (lp_criterion_parse(value, c->criterion) != LP_OK) {
            lp_cli_error(c->cmd, "--criterion: %s", lp_last_error());
            return 2;
        }
    } else if (!strcmp(name, "max-drop") || !strcmp(name, "max-rise")) {
        if (parse_num(c, name, value, c->max)) return 2;
        if (!(*c->max >= 0)) {
            lp_cli_error(c->cmd, "--%s must be >= 0", name);
            return 2;
        }
    } else if (!strcmp(name, "compensate")) {
        if (strcmp(value, "none") != 0 && strcmp(value, "mean") != 0) {
            lp_cli_error(c->cmd, "--compensate must be none or mean, got '%s'", value);
            return 2;
        }
        *c->compensate = !strcmp(value, "mean");
    } else if (!strcmp(name, "prune-seed") || !strcmp(name, "seed")) {
        char *end;
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end) {
            lp_cli_error(c->cmd, "--%s: '%s' is not an integer", name, value);
            return 2;
        }
        *c->seed = v;
    }
    return 0;
}

/* Run the analysis and print its table: the suggested rate per group. */
static int run_and_show(const char *cmd, const lp_sensitivity_opts *o, lp_sensitivity_result *r) {
    if (lp_sensitivity_run(o, r) != LP_OK) {
        lp_cli_error(cmd, "%s", lp_last_error());
        return 1;
    }
    const int drop = r->base.higher_better;
    printf("%-12s %6s  suggested rate (%s %s <= %g%s)\n", "group", "units", r->base.name[r->base.primary],
           drop ? "drop" : "rise", drop ? o->max_cost : 100 * o->max_cost, drop ? "" : "%");
    for (int g = 0; g < r->n_groups; g++)
        if (r->fixed[g]) printf("%-12s %6d  kept whole: never pruned\n", r->group[g], r->units[g]);
        else printf("%-12s %6d  %.2f\n", r->group[g], r->units[g], r->suggested[g]);
    printf("unpruned %s %.4f; results: %s/sensitivity.md%s\n", r->base.name[r->base.primary], lp_score_primary(&r->base),
           o->out_dir, r->plot ? " (and sensitivity.png)" : "");
    return 0;
}

/* ---- sensitivity (video models) ---- */

static const lp_arg own[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "the trained model", NULL},
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory: sensitivity.csv/.md/.png, suggested.txt (for --rates-from), curves.txt (for --sensitivity)", NULL},
    LP_ARG_FORCE,
    {"rates", NULL, LP_ARG_STR, 0, "R,R,...", "pruning rates tried on each group", "0.1,0.3,0.5,0.7,0.9"},
    {"criterion", NULL, LP_ARG_STR, 0, "C", "unit selection: gm, gm-exact, l1, l2, random", "gm"},
    {"max-drop", NULL, LP_ARG_NUM, 0, "D", "largest GAP drop (absolute) a suggested rate may cost", "0.01"},
    {"prune-seed", NULL, LP_ARG_INT, 0, "S", "seed of the random criterion", "1"},
    {"compensate", NULL, LP_ARG_STR, 0, "MODE",
     "none, or mean: the removed units' mean responses (20 training batches) go into the biases that read them", "none"},
    {"data", "data.valid", LP_ARG_APPEND, 0, "GLOB", "evaluation shards (default: the checkpoint's validation data)", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "print nothing but errors", NULL},
};

int lp_cmd_sensitivity(int argc, char **argv) {
    lp_arg table[64];
    int n = lp_args_join(table, 64, own, (int)(sizeof own / sizeof own[0]), lp_args_data + 2, lp_args_data_n - 2);
    lp_sensitivity_opts o;
    lp_sensitivity_opts_default(&o);
    common c = {.cmd = "sensitivity", .rates = o.rates, .n_rates = &o.n_rates, .criterion = &o.criterion,
                .seed = &o.seed, .compensate = &o.compensate, .quiet = &o.quiet, .max = &o.max_cost};
    lp_kv cfg;
    lp_kv_init(&cfg);
    int rc = lp_args_parse("sensitivity", argc, argv, table, n, &cfg, handle, &c, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune sensitivity --checkpoint CKPT --out DIR [--rates 0.1,0.3,...] [--max-drop 0.01]\n\n"
               "Prune ONE unit group at a time at each rate (the others untouched), without fine-tuning, measure GAP on\n"
               "the validation data, and suggest per group the largest rate whose GAP drop stays within --max-drop.\n\n");
        lp_args_help(stdout, table, n, NULL);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (lp_runcfg_check(&cfg) != LP_OK) { /* flag ranges, before anything is read or written */
        rc = lp_args_check_failed("sensitivity", table, n);
        goto out;
    }
    if (!c.ckpt || !c.out) {
        lp_cli_error("sensitivity", "--checkpoint CKPT and --out DIR are required");
        rc = 2;
        goto out;
    }
    if ((rc = lp_args_claim_out("sensitivity", c.out, c.force)) != 0) goto out;
    o.ckpt = c.ckpt;
    o.out_dir = c.out;
    o.cfg = &cfg;
    lp_sensitivity_result *r = calloc(1, sizeof *r);
    if (!r) {
        lp_cli_error("sensitivity", "out of memory");
        rc = 1;
        goto out;
    }
    rc = run_and_show("sensitivity", &o, r);
    free(r);
out:
    lp_kv_free(&cfg);
    return rc;
}

/* ---- lm-sensitivity (the PTB language model) ---- */

static const lp_arg lm_own[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "the trained LM (e.g. RUN/best.ckpt of lm-train)", NULL},
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory: sensitivity.csv/.md/.png, suggested.txt (for --rates-from), curves.txt (for --sensitivity)", NULL},
    LP_ARG_FORCE,
    {"data", "data.dir", LP_ARG_STR, 0, "DIR", "PTB directory", "the checkpoint's data.dir"},
    {"rates", NULL, LP_ARG_STR, 0, "R,R,...", "pruning rates tried on each layer", "0.1,0.3,0.5,0.7,0.9"},
    {"criterion", NULL, LP_ARG_STR, 0, "C", "unit selection: gm, gm-exact, l1, l2, random", "gm"},
    {"max-rise", NULL, LP_ARG_NUM, 0, "R", "largest relative validation-perplexity rise a suggested rate may cost", "0.05"},
    {"seed", NULL, LP_ARG_INT, 0, "S", "seed of the random criterion (as lm-prune's --seed)", "1"},
    {"compensate", NULL, LP_ARG_STR, 0, "MODE",
     "none, or mean: the removed units' mean responses go into the biases that read them", "none"},
    {"stats-windows", "prune.stats_batches", LP_ARG_INT, 0, "N", "with --compensate mean: training windows for the means (0 = one epoch)", "0"},
    {"eval-batch", "train.eval_batch", LP_ARG_INT, 1, "B", "streams when evaluating perplexity", "20"},
    {"eval-bptt", "train.eval_bptt", LP_ARG_INT, 1, "T", "window when evaluating perplexity", "35"},
    {"threads", "train.threads", LP_ARG_INT, 0, "N", "OpenBLAS threads (0 = library default)", "1"},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "print nothing but errors and the final table", NULL},
};

int lp_cmd_lm_sensitivity(int argc, char **argv) {
    const char *cmd = "lm-sensitivity";
    const int n = (int)(sizeof lm_own / sizeof lm_own[0]);
    lp_sensitivity_opts o;
    lp_sensitivity_opts_default(&o);
    o.max_cost = 0.05;
    common c = {.cmd = cmd, .rates = o.rates, .n_rates = &o.n_rates, .criterion = &o.criterion, .seed = &o.seed,
                .compensate = &o.compensate, .quiet = &o.quiet, .max = &o.max_cost};
    lp_kv kv;
    lp_kv_init(&kv);
    int rc = lp_args_parse(cmd, argc, argv, lm_own, n, &kv, handle, &c, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune lm-sensitivity --checkpoint CKPT --out DIR [--rates 0.1,0.3,...] [--max-rise 0.05]\n\n"
               "Prune ONE LSTM layer of a PTB language model at a time at each rate (the others whole), without\n"
               "fine-tuning, measure the validation perplexity, and suggest per layer the largest rate whose perplexity\n"
               "rise stays within --max-rise (relative: 0.05 = 5%%).\n\n");
        lp_args_help(stdout, lm_own, n, NULL);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (!c.ckpt || !c.out) {
        lp_cli_error(cmd, "--checkpoint CKPT and --out DIR are required");
        rc = 2;
        goto out;
    }
    if (lp_lm_run_check(&kv) != LP_OK) { /* the evaluation windows, before anything is written */
        rc = lp_args_check_failed(cmd, lm_own, n);
        goto out;
    }
    if ((rc = lp_args_claim_out(cmd, c.out, c.force)) != 0) goto out;
    o.ckpt = c.ckpt;
    o.out_dir = c.out;
    o.stats_batches = (int)lp_kv_get_int_or(&kv, "prune.stats_batches", 0);
    /* lm-eval's evaluation unless the flags say otherwise */
    const char *dflt[][2] = {{"train.eval_batch", "20"}, {"train.eval_bptt", "35"}, {"train.threads", "1"}};
    for (size_t i = 0; i < sizeof dflt / sizeof dflt[0]; i++)
        if (!lp_kv_get(&kv, dflt[i][0])) lp_kv_set(&kv, dflt[i][0], dflt[i][1]);
    o.cfg = &kv;
    lp_sensitivity_result *r = calloc(1, sizeof *r);
    if (!r) {
        lp_cli_error(cmd, "out of memory");
        rc = 1;
        goto out;
    }
    rc = run_and_show(cmd, &o, r);
    free(r);
out:
    lp_kv_free(&kv);
    return rc;
}
