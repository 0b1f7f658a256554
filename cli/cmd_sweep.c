/* lstmprune sweep: the ablation grid from one configuration file (experiments/sweep.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "core/alloc.h"
#include "experiments/compat.h"
#include "experiments/sweep.h"

typedef struct {
    const char *out, *compat;
    int quiet, list;
    long long max_cells, remeasure;
    lp_kv sets; /* --set key=value, applied over the file */
    int bad;
} flags;

static int handle(void *user, const char *name, const char *value) {
    flags *f = user;
    if (!strcmp(name, "out")) f->out = value;
    else if (!strcmp(name, "compat")) f->compat = value;
    else if (!strcmp(name, "quiet")) f->quiet = 1;
    else if (!strcmp(name, "list")) f->list = 1;
    else if (!strcmp(name, "max-cells")) {
        char *end;
        f->max_cells = strtoll(value, &end, 10);
        if (*end || f->max_cells < 1) {
            lp_cli_error("sweep", "--max-cells: '%s' is not a positive integer", value);
            return 2;
        }
    } else if (!strcmp(name, "remeasure-latency")) {
        char *end;
        f->remeasure = strtoll(value, &end, 10);
        if (*end || f->remeasure < 1 || f->remeasure > 1000) {
            lp_cli_error("sweep", "--remeasure-latency: '%s' is not a number of rounds (1..1000)", value);
            return 2;
        }
    } else if (!strcmp(name, "set")) {
        const char *eq = strchr(value, '=');
        char key[128];
        if (!eq || eq == value || (size_t)(eq - value) >= sizeof key) {
            lp_cli_error("sweep", "--set: '%s' is not key=value", value);
            return 2;
        }
        memcpy(key, value, (size_t)(eq - value));
        key[eq - value] = 0;
        while (eq[1] == ' ') eq++;
        for (char *k = key + strlen(key); k > key && k[-1] == ' '; k--) k[-1] = 0;
        if (lp_kv_set(&f->sets, key, eq + 1) != LP_OK) {
            lp_cli_error("sweep", "--set: %s", lp_last_error());
            return 2;
        }
    }
    return 0;
}

static const lp_arg table[] = {
    {"out", NULL, LP_ARG_STR, 0, "DIR", "output directory (default: sweep.out of the config)", NULL},
    {"set", NULL, LP_ARG_STR, 0, "KEY=VALUE", "override one config line (repeatable), e.g. --set train.epochs=2", NULL},
    {"compat", NULL, LP_ARG_STR, 0, "PRESET", "reference: the public TensorFlow code's behaviour (see docs/REPRODUCING.md); ours", "ours"},
    {"max-cells", NULL, LP_ARG_INT, 1, "N", "run at most N unfinished cells, then stop (rerun to continue)", NULL},
    {"remeasure-latency", NULL, LP_ARG_INT, 1, "ROUNDS", "only measure the latency of every finished model again (interleaved rounds, fastest kept)", NULL},
    {"list", NULL, LP_ARG_FLAG, 0, NULL, "print the grid's cells and whether they are finished, run nothing", NULL},
    {"quiet", NULL, LP_ARG_FLAG, 0, NULL, "no progress output", NULL},
};

int lp_cmd_sweep(int argc, char **argv) {
    const int n = (int)(sizeof table / sizeof table[0]);
    flags f;
    memset(&f, 0, sizeof f);
    lp_kv_init(&f.sets);
    lp_kv cfg, dummy;
    lp_kv_init(&cfg);
    lp_kv_init(&dummy);
    char **pos = NULL;
    int npos = 0;
    int rc = lp_args_parse("sweep", argc, argv, table, n, &dummy, handle, &f, &pos, &npos);
    if (rc == 1) {
        printf("usage: lstmprune sweep CONFIG [--out DIR] [--set KEY=VALUE ...] [--compat reference] [--max-cells N]\n\n"
               "Run the ablation grid of CONFIG (\"key = value\" lines: model.*, data.*, train.*, prune.* for the runs,\n"
               "grid.schedule/rule/criterion/methods/rate/compensate, grid.iss, grid.iss_lambda for the cells; see\n"
               "experiments/synth_small.conf and docs/REPRODUCING.md). One baseline is trained and every oneshot cell\n"
               "prunes it; soft and ISS cells train from scratch. Finished cells are skipped when the sweep is rerun.\n"
               "Writes DIR/results.csv, results.md, spectra.csv, plots.gp and PNG plots where gnuplot exists.\n\n");
        lp_args_help(stdout, table, n, NULL);
        rc = 0;
        goto out;
    }
    if (rc) goto out;
    if (npos != 1) {
        lp_cli_error("sweep", "expected one CONFIG file (see lstmprune sweep --help)");
        rc = 2;
        goto out;
    }
    lp_status s = lp_kv_read_file(&cfg, pos[0]);
    if (s == LP_OK) s = lp_kv_merge(&cfg, &f.sets);
    if (s == LP_OK && f.compat) {
        int nset;
        if (!lp_compat_settings(f.compat, &nset)) s = lp_errorf(LP_ERR_ARG, "--compat: unknown preset '%s' (reference or ours)", f.compat);
        else s = lp_kv_set(&cfg, "compat", f.compat);
    }
    if (s != LP_OK) {
        lp_cli_error("sweep", "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    if (f.list) {
        lp_sweep_cell *cells;
        int nc;
        if ((s = lp_sweep_cells(&cfg, &cells, &nc)) != LP_OK) {
            lp_cli_error("sweep", "%s", lp_last_error());
            rc = 1;
            goto out;
        }
        const char *dir = f.out ? f.out : lp_kv_get(&cfg, "sweep.out");
        for (int i = 0; i < nc; i++) {
            char path[4400];
            snprintf(path, sizeof path, "%s/cells/%s/result.txt", dir ? dir : ".", cells[i].name);
            FILE *t = dir ? fopen(path, "r") : NULL;
            printf("%-40s %s\n", cells[i].name, t ? "finished" : "to do");
            if (t) fclose(t);
        }
        lp_free(cells);
        goto out;
    }
    lp_sweep_opts o = {.quiet = f.quiet, .max_cells = (int)(f.max_cells > 1000000 ? 1000000 : f.max_cells)};
    lp_sweep_summary sum;
    s = f.remeasure ? lp_sweep_remeasure(&cfg, f.out, (int)f.remeasure, &o, &sum) : lp_sweep_run(&cfg, f.out, &o, &sum);
    if (s != LP_OK) {
        lp_cli_error("sweep", "%s", lp_last_error());
        rc = 1;
        goto out;
    }
    printf("%d of %d cells finished (%d run now, %d were finished already); %d plots\n", sum.cells_done, sum.cells_total,
           sum.cells_run, sum.cells_skipped, sum.plots);
    printf("results: %s/results.md, %s/results.csv\n", sum.out_dir, sum.out_dir);
    if (sum.cells_done < sum.cells_total) printf("(partial: rerun the same command to continue)\n");
out:
    lp_kv_free(&cfg);
    lp_kv_free(&dummy);
    lp_kv_free(&f.sets);
    return rc;
}
