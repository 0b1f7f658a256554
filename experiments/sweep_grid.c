/* sweep_grid: the configuration and the grid of a sweep (sweep.h) — a configuration resolved (compat
 * preset, the task's defaults), the grid lists (grid.<what>, grid.<schedule>.<what>) made into cells,
 * and the check that an output directory holds a sweep of the same set-up. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/dist.h"
#include "core/rundir.h"
#include "experiments/compat.h"
#include "experiments/sweep_int.h"
#include "experiments/writer.h"

#define MAX_ITEMS LP_SWEEP_MAX_ITEMS
#define ITEM_LEN 32

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Split a comma-separated list into trimmed items. */
static lp_status split_list(const char *key, const char *v, char items[][ITEM_LEN], int *n) {
    *n = 0;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        const char *e = p;
        while (*e && *e != ',') e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
        if (t > p) {
            if (*n >= MAX_ITEMS) return lp_errorf(LP_ERR_ARG, "%s: more than %d items", key, MAX_ITEMS);
            if ((size_t)(t - p) >= ITEM_LEN) return lp_errorf(LP_ERR_ARG, "%s: item '%.*s' is too long", key, (int)(t - p), p);
            memcpy(items[*n], p, (size_t)(t - p));
            items[*n][t - p] = 0;
            (*n)++;
        }
        p = *e ? e + 1 : e;
    }
    return LP_OK;
}

/* The list under grid.<sched>.<what> if present, else grid.<what>, else the single default. */
static lp_status grid_list(const lp_kv *kv, const char *sched, const char *what, const char *dflt, char items[][ITEM_LEN],
                           int *n) {
    char key[96];
    const char *v = NULL;
    if (sched) {
        snprintf(key, sizeof key, "grid.%s.%s", sched, what);
        v = lp_kv_get(kv, key);
    }
    if (!v) {
        snprintf(key, sizeof key, "grid.%s", what);
        v = lp_kv_get(kv, key);
    }
    if (!v) {
        *n = 0;
        if (!dflt) return LP_OK;
        snprintf(items[0], ITEM_LEN, "%s", dflt);
        *n = 1;
        return LP_OK;
    }
    LP_TRY(split_list(key, v, items, n));
    if (*n == 0) return lp_errorf(LP_ERR_ARG, "%s is empty", key);
    return LP_OK;
}

static lp_status parse_rate(const char *key, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0 && v < 1))
        return lp_errorf(LP_ERR_ARG, "%s: '%s' is not a pruning rate in [0, 1)", key, s);
    *out = v;
    return LP_OK;
}

/* ---- the resolved configuration ---- */

/* config copied into out (initialised here), with its compat preset applied. */
static lp_status copy_compat(const lp_kv *config, lp_kv *out) {
    lp_kv_init(out);
    LP_TRY(lp_kv_merge(out, config));
    const char *compat = lp_kv_get(out, "compat");
    return compat ? lp_compat_apply(out, compat, NULL) : LP_OK;
}

/* The task's defaults fill what the configuration leaves out (for the video task also the model.* keys
 * from the shorthand model.arch/hidden/...). */
lp_status lp_sweep_resolve(const lp_task_kind *kind, const lp_kv *config, lp_kv *out) {
    LP_TRY(copy_compat(config, out));
    return kind->defaults(kind, out);
}

static int is_grid_key(const char *k) { return starts_with(k, "grid.") || starts_with(k, "sweep."); }

/* ---- cells ---- */

static lp_status add_cell(lp_sweep_cell **cells, int *n, int *cap, const lp_sweep_cell *c) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*cells)[i].name, c->name)) {
            if ((*cells)[i].target_rate != c->target_rate || (*cells)[i].iss_lambda != c->iss_lambda)
                return lp_errorf(LP_ERR_ARG, "grid: two cells would both be named %s (rates are named with 2 decimals)", c->name);
            return LP_OK; /* a list naming the same cell twice */
        }
    if (*n == *cap) {
        int nc = *cap ? 2 * *cap : 16;
        lp_sweep_cell *p = lp_realloc(*cells, (size_t)nc, sizeof *p);
        if (!p) return LP_ERR_NOMEM;
        *cells = p;
        *cap = nc;
    }
    (*cells)[(*n)++] = *c;
    return LP_OK;
}

/* The rule:criterion pairs of schedule `sched`: grid.<sched>.methods / grid.methods if given, else every
 * pair of the rule and criterion lists (defaults prune.rule / prune.criterion, else eigen and gm). */
static lp_status schedule_methods(const lp_kv *kv, const char *sched, char meth[][ITEM_LEN], int *nm) {
    char rules[MAX_ITEMS][ITEM_LEN], crits[MAX_ITEMS][ITEM_LEN];
    int nr, nc;
    LP_TRY(grid_list(kv, sched, "methods", NULL, meth, nm));
    if (*nm > 0) return LP_OK;
    const char *dr = lp_kv_get(kv, "prune.rule"), *dc = lp_kv_get(kv, "prune.criterion");
    if (!dr && (lp_kv_get(kv, "prune.rates") || lp_kv_get(kv, "prune.units") || lp_kv_get(kv, "prune.rates_from")))
        dr = "given"; /* per-group rates in the configuration: what its cells prune at */
    LP_TRY(grid_list(kv, sched, "rule", dr ? dr : "eigen", rules, &nr));
    LP_TRY(grid_list(kv, sched, "criterion", dc ? dc : "gm", crits, &nc));
    for (int a = 0; a < nr; a++)
        for (int b = 0; b < nc; b++) {
            if (*nm >= MAX_ITEMS) return lp_errorf(LP_ERR_ARG, "grid: more than %d rule x criterion pairs", MAX_ITEMS);
            snprintf(meth[(*nm)++], ITEM_LEN, "%.14s:%.14s", rules[a], crits[b]);
        }
    return LP_OK;
}

/* The target rates of schedule `sched`: grid.<sched>.rate / grid.rate, else prune.target_rate. */
static lp_status schedule_rates(const lp_kv *kv, const char *sched, char rates[][ITEM_LEN], int *nrate) {
    LP_TRY(grid_list(kv, sched, "rate", NULL, rates, nrate));
    if (*nrate > 0) return LP_OK;
    const char *tr = lp_kv_get(kv, "prune.target_rate");
    if (!tr) return lp_errorf(LP_ERR_ARG, "grid.rate (the target pruning rates) is missing");
    snprintf(rates[0], ITEM_LEN, "%s", tr);
    *nrate = 1;
    return LP_OK;
}

/* The compensation settings of schedule `sched`: grid.<sched>.compensate / grid.compensate (none, mean),
 * else prune.compensate, else none; as 0/1 without repeats. Soft cells only ever run without: the
 * schedule removes units it has already driven to zero (docs/METHOD.md). */
static lp_status schedule_compensate(const lp_kv *kv, const char *sched, lp_schedule schedule, int *comp, int *nc) {
    char items[MAX_ITEMS][ITEM_LEN];
    int ni;
    const char *d = lp_kv_get(kv, "prune.compensate");
    LP_TRY(grid_list(kv, sched, "compensate", d ? d : "none", items, &ni));
    *nc = 0;
    for (int i = 0; i < ni; i++) {
        if (strcmp(items[i], "none") != 0 && strcmp(items[i], "mean") != 0)
            return lp_errorf(LP_ERR_ARG, "grid.compensate: '%s' is not none or mean", items[i]);
        int v = schedule != LP_SCHED_SOFT && !strcmp(items[i], "mean");
        int seen = 0;
        for (int k = 0; k < *nc; k++) seen |= comp[k] == v;
        if (!seen) comp[(*nc)++] = v;
    }
    return LP_OK;
}

/* Whether every method of the list is the given rule's (whose cells have no target rate). */
static int all_given(char meth[][ITEM_LEN], int nm) {
    for (int m = 0; m < nm; m++)
        if (strncmp(meth[m], "given:", 6) != 0) return 0;
    return 1;
}

/* One cell per method x rate x compensation of a oneshot/iterative/soft schedule; a method of the given
 * rule (the per-group rates of prune.rates / prune.units / prune.rates_from) has one cell, no rate. */
static lp_status schedule_cells(const lp_kv *kv, const char *sched, lp_schedule schedule, lp_sweep_cell **cells,
                                int *n, int *cap) {
    char rates[MAX_ITEMS][ITEM_LEN], meth[MAX_ITEMS][ITEM_LEN];
    int nrate = 0, nm, comp[MAX_ITEMS], ncomp;
    LP_TRY(schedule_methods(kv, sched, meth, &nm));
    if (!all_given(meth, nm)) LP_TRY(schedule_rates(kv, sched, rates, &nrate));
    LP_TRY(schedule_compensate(kv, sched, schedule, comp, &ncomp));
    lp_sweep_cell c;
    memset(&c, 0, sizeof c);
    c.schedule = schedule;
    for (int m = 0; m < nm; m++) {
        char *colon = strchr(meth[m], ':');
        if (!colon) return lp_errorf(LP_ERR_ARG, "grid.methods: '%s' is not rule:criterion", meth[m]);
        *colon = 0;
        LP_TRY(lp_rate_rule_parse(meth[m], &c.rule));
        LP_TRY(lp_criterion_parse(colon + 1, &c.criterion));
        const int given = c.rule == LP_RATE_RULE_GIVEN; /* the per-group rates of prune.rates/units/rates_from */
        for (int r = 0; r < (given ? 1 : nrate); r++) {
            if (given) c.target_rate = -1;
            else LP_TRY(parse_rate("grid.rate", rates[r], &c.target_rate));
            for (int k = 0; k < ncomp; k++) {
                c.compensate = comp[k];
                char rate[16] = "";
                if (!given) snprintf(rate, sizeof rate, "-r%.2f", c.target_rate);
                snprintf(c.name, sizeof c.name, "%s-%s-%s%s%s", lp_schedule_name(c.schedule), lp_rate_rule_name(c.rule),
                         lp_criterion_name(c.criterion), rate, c.compensate ? "-comp" : "");
                LP_TRY(add_cell(cells, n, cap, &c));
            }
        }
    }
    return LP_OK;
}

/* ISS cells, one per grid.iss_lambda value (or prune.iss_lambda, else 0.001, when grid.iss = 1 or the
 * schedule list names iss). */
static lp_status iss_cells(const lp_kv *kv, int iss_listed, lp_sweep_cell **cells, int *n, int *cap) {
    const char *lam = lp_kv_get(kv, "grid.iss_lambda");
    if (!lam && !iss_listed && !lp_kv_get_int_or(kv, "grid.iss", 0)) return LP_OK;
    char lams[MAX_ITEMS][ITEM_LEN];
    int nl = 1;
    if (lam) LP_TRY(split_list("grid.iss_lambda", lam, lams, &nl));
    else snprintf(lams[0], ITEM_LEN, "%s", lp_kv_get(kv, "prune.iss_lambda") ? lp_kv_get(kv, "prune.iss_lambda") : "0.001");
    for (int i = 0; i < nl; i++) {
        lp_sweep_cell c;
        memset(&c, 0, sizeof c);
        c.schedule = LP_SCHED_ISS;
        c.rule = LP_RATE_RULE_EIGEN;
        c.criterion = LP_CRITERION_GM;
        c.target_rate = -1;
        char *end;
        c.iss_lambda = strtod(lams[i], &end);
        if (*end || !(c.iss_lambda >= 0) || !isfinite(c.iss_lambda))
            return lp_errorf(LP_ERR_ARG, "grid.iss_lambda: '%s' is not a non-negative number", lams[i]);
        snprintf(c.name, sizeof c.name, "iss-lambda%g", c.iss_lambda);
        LP_TRY(add_cell(cells, n, cap, &c));
    }
    return LP_OK;
}

lp_status lp_sweep_grid(const lp_kv *kv, lp_sweep_cell **cells, int *n_out) {
    char scheds[MAX_ITEMS][ITEM_LEN];
    int ns, n = 0, cap = 0, iss_listed = 0;
    *cells = NULL;
    *n_out = 0;
    const char *dsched = lp_kv_get(kv, "prune.schedule");
    lp_status s = grid_list(kv, NULL, "schedule", dsched ? dsched : "oneshot", scheds, &ns);
    for (int i = 0; i < ns && s == LP_OK; i++) {
        lp_schedule schedule;
        if ((s = lp_schedule_parse(scheds[i], &schedule)) != LP_OK) break;
        if (schedule == LP_SCHED_ISS) iss_listed = 1; /* ISS cells come from grid.iss / grid.iss_lambda */
        else s = schedule_cells(kv, scheds[i], schedule, cells, &n, &cap);
    }
    if (s == LP_OK) s = iss_cells(kv, iss_listed, cells, &n, &cap);
    if (s != LP_OK) {
        lp_free(*cells);
        *cells = NULL;
        return s;
    }
    *n_out = n;
    return LP_OK;
}

lp_status lp_sweep_cells(const lp_kv *config, lp_sweep_cell **cells, int *n) {
    lp_kv kv;
    lp_status s = copy_compat(config, &kv);
    if (s == LP_OK) s = lp_sweep_grid(&kv, cells, n);
    lp_kv_free(&kv);
    return s;
}

/* ---- an output directory's configuration ---- */

/* A base key of the directory's sweep.conf that has another value now (or none). */
static lp_status check_old_keys(const sweep *sw, const lp_kv *old) {
    for (int i = 0; i < old->count; i++) {
        if (is_grid_key(old->keys[i])) continue;
        const char *now = lp_kv_get(&sw->cfg, old->keys[i]);
        if (!now || strcmp(now, old->vals[i]))
            return lp_errorf(LP_ERR_ARG,
                             "%s holds a sweep with another configuration (%s = %s there, %s now); use another output "
                             "directory or remove it",
                             sw->dir, old->keys[i], old->vals[i], now ? now : "(absent)");
    }
    return LP_OK;
}

/* A base key set now that the directory's sweep.conf lacks is accepted at its built-in default: the sweep
 * was started by a version without that key, which behaved as the default does. */
static lp_status check_new_keys(const sweep *sw, const lp_kv *old) {
    lp_kv defaults; /* what an absent key means */
    lp_kv_init(&defaults);
    lp_status s = sw->kind.defaults(&sw->kind, &defaults);
    for (int i = 0; s == LP_OK && i < sw->cfg.count; i++) {
        const char *key = sw->cfg.keys[i], *dflt = lp_kv_get(&defaults, key);
        if (is_grid_key(key) || lp_kv_get(old, key) || (dflt && !strcmp(dflt, sw->cfg.vals[i]))) continue;
        s = lp_errorf(LP_ERR_ARG,
                      "%s holds a sweep with another configuration (%s = %s now; absent there, which means %s); use "
                      "another output directory",
                      sw->dir, key, sw->cfg.vals[i], dflt ? dflt : "no value");
    }
    lp_kv_free(&defaults);
    return s;
}

lp_status lp_sweep_check_conf(const sweep *sw) {
    char path[4096];
    lp_rundir_path(sw->dir, "sweep.conf", path, sizeof path);
    if (access(path, F_OK) == 0) {
        lp_kv old;
        lp_kv_init(&old);
        lp_status s = lp_kv_read_file(&old, path);
        if (s == LP_OK) s = check_old_keys(sw, &old);
        if (s == LP_OK) s = check_new_keys(sw, &old);
        lp_kv_free(&old);
        LP_TRY(s);
    }
    return lp_dist_written(lp_dist_lead() ? lp_kv_write_file(&sw->cfg, path) : LP_OK);
}
