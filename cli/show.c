/* show: the tables `prune`, `pipeline` and `lm-prune` print at their end (even with --quiet, which
 * silences progress only). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

void lp_cli_print_groups(const lp_pipeline_result *r) {
    printf("%-12s %7s %7s %7s %8s %12s\n", "group", "before", "after", "rate", "tau", "energy kept");
    for (int g = 0; g < r->n_groups; g++) {
        const lp_pipeline_group *pg = &r->groups[g];
        char tau[16] = "-", energy[16] = "-"; /* "-": no τ (uniform, sensitivity, given) or no spectrum */
        if (isfinite(pg->tau)) snprintf(tau, sizeof tau, "%.4f", pg->tau);
        if (isfinite(pg->energy_kept)) snprintf(energy, sizeof energy, "%.4f", pg->energy_kept);
        printf("%-12s %7d %7d %7.3f %8s %12s\n", pg->name, pg->before, pg->after, pg->rate, tau, energy);
    }
}

void lp_cli_print_models(const lp_task_ops *ops, const lp_report_model *rows, int n_rows) {
    char flops[32], name[32];
    snprintf(flops, sizeof flops, "FLOPs/%s", ops->step_name);
    printf("%-16s %10s %12s %10s %10s %10s", "model", "params", flops, "ckpt KB", "lat B=1", "lat B=N");
    for (const char *p = ops->shown; *p; p += *p == '\t') {
        size_t len = strcspn(p, "\t");
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        p += len;
        char title[64];
        lp_task_ops_figure_title(ops, NULL, name, title, sizeof title);
        printf(" %8s", title);
    }
    printf("\n");
    for (int i = 0; i < n_rows; i++) {
        const lp_report_model *r = &rows[i];
        if (r->reference) printf("%-16s %10s %12s %10s %10s %10s", r->label, "-", "-", "-", "-", "-");
        else
            printf("%-16s %10zu %12.4g %10.1f %8.2fms %8.2fms", r->label, r->params, r->flops_step, r->ckpt_bytes / 1024.0,
                   r->lat_b1_ms, r->lat_bn_ms);
        for (const char *p = ops->shown; r->score.n && *p; p += *p == '\t') {
            size_t len = strcspn(p, "\t");
            snprintf(name, sizeof name, "%.*s", (int)len, p);
            p += len;
            printf(" %8.4f", lp_score_get(&r->score, name));
        }
        printf("\n");
    }
}

/* An argument is quoted unless it consists of characters no shell treats specially. */
static int plain_arg(const char *a) {
    if (!*a) return 0;
    for (; *a; a++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%", *a)) return 0;
    return 1;
}

const char *lp_cli_command_line(int argc, char **argv, char *buf, size_t n) {
    size_t off = (size_t)snprintf(buf, n, "lstmprune");
    for (int i = 0; i < argc && off < n; i++) {
        const int q = !plain_arg(argv[i]);
        off += (size_t)snprintf(buf + off, n - off, q ? " '" : " ");
        for (const char *c = argv[i]; *c && off < n; c++) /* a quote inside quotes: close, escape, reopen */
            off += (size_t)snprintf(buf + off, n - off, *c == '\'' && q ? "'\\''" : "%c", *c);
        if (q && off < n) off += (size_t)snprintf(buf + off, n - off, "'");
    }
    return buf;
}
