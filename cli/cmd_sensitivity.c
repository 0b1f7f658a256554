/* lstmprune sensitivity: prune one unit group at a time at several rates, no fine-tuning, and measure
 * GAP (prune/sensitivity.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "prune/sensitivity.h"

typedef struct {
    lp_sensitivity_opts o;
} flags;

static int parse_num(const char *flag, const char *v, double *out) {
    char *end;
    *out = strtod(v, &end);
    if (end == v || *end) {
        lp_cli_error("sensitivity", "--%s: '%s' is not a number", flag, v);
        return 2;
    }
    return 0;
}

static int handle(void *user, const char *name, const char *value) {
    flags *f = user;
    if (!strcmp(name, "checkpoint")) f->o.ckpt = value;
    else if (!strcmp(name, "out")) f->o.out_dir = value;
    else if (!strcmp(name, "quiet")) f->o.quiet = 1;
    else if (!strcmp(name, "criterion")) {
        if (lp_criterion_parse(value, &f->o.criterion) != LP_OK) {
            lp_cli_error("sensitivity", "--criterion: %s", lp_last_error());
            return 2;
        }
    } else if (!strcmp(name, "max-drop")) {
        if (parse_num(name, value, &f->o.max_drop)) return 2;
        if (!(f->o.max_drop >= 0)) {
            lp_cli_error("sensitivity", "--max-drop must be >= 0");
            return 2;
        }
    } else if (!strcmp(name, "compensate")) {
        if (strcmp(value, "none") != 0 && strcmp(value, "mean") != 0) {
            lp_cli_error("sensitivity", "--compensate must be none or mean, got '%s'", value);
            return 2;
        }
        f->o.compensate = !strcmp(value, "mean");
    } else if (!strcmp(name, "prune-seed")) {
        char *end;
        unsigned long long v = strtoull(value, &end, 10);
        if (end == value || *end) {
            lp_cli_error("sensitivity", "--prune-seed: '%s' is not an integer", value);
            return 2;
        }
        f->o.seed = v;
    } else if (!strcmp(name, "rates")) {
        f->o.n_rates = 0;
        const char *p = value;
        while (*p) {
            char *end;
            double r = strtod(p, &end);
            if (end == p || (*end && *end != ',') || !(r > 0 && r < 1)) {
                lp_cli_error("sensitivity", "--rates: '%s' is not a comma-separated list of rates in (0, 1)", value);
                return 2;
            }
            if (f->o.n_rates == LP_SENSITIVITY_MAX_RATES) {
                lp_cli_error("sensitivity", "--rates: at most %d rates", LP_SENSITIVITY_MAX_RATES);
                return 2;
            }
            f->o.rates[f->o.n_rates++] = r;
            p = *end ? end + 1 : end;
        }
        if (f->o.n_rates == 0) {
            lp_cli_error("sensitivity", "--rates is empty");
            return 2;
        }
    }
    return 0;
}

static const lp_arg own[] = {
    {"checkpoint", NULL, LP_ARG_STR, 0, "CKPT", "the trained model", NULL},
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory: sensitivity.csv/.md/.png, suggested.txt", NULL},
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
    flags f;
    lp_sensitivity_opts_default(&f.o);
    lp_kv cfg;
    lp_kv_init(&cfg);
    int rc = lp_args_parse("sensitivity", argc, argv, table, n, &cfg, handle, &f, NULL, NULL);
    if (rc == 1) {
        printf("usage: lstmprune sensitivity --checkpoint CKPT --out DIR [--rates 0.1,0.3,...] [--max-drop 0.01]\n\n"
               "Prune ONE unit group at a time at each rate (the others untouched), without fine-tuning, measure GAP on\n"
               "the validation data, and suggest per group the largest rate whose GAP drop stays within --max-drop.\n\n");
        lp_args_help(stdout, table, n, NULL);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (!f.o.ckpt || !f.o.out_dir) {
        lp_cli_error("sensitivity", "--checkpoint CKPT and --out DIR are required");
        rc = 2;
        goto out;
    }
    f.o.cfg = &cfg;
    lp_sensitivity_result *r = calloc(1, sizeof *r);
    if (!r) {
        lp_cli_error("sensitivity", "out of memory");
        rc = 1;
        goto out;
    }
    if (lp_sensitivity_run(&f.o, r) != LP_OK) {
        lp_cli_error("sensitivity", "%s", lp_last_error());
        rc = 1;
    } else {
        printf("%-12s %6s  suggested rate (GAP drop <= %g)\n", "group", "units", f.o.max_drop);
        for (int g = 0; g < r->n_groups; g++) printf("%-12s %6d  %.2f\n", r->group[g], r->units[g], r->suggested[g]);
        printf("unpruned GAP %.4f; results: %s/sensitivity.md%s\n", r->base.gap, f.o.out_dir,
               r->plot ? " (and sensitivity.png)" : "");
    }
    free(r);
out:
    lp_kv_free(&cfg);
    return rc;
}
