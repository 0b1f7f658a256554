/* sweep: see sweep.h.
 *
 * A result row is a small kv (the columns below, every value already formatted), written to the cell's
 * result.txt and read back before it enters the table: a fresh run and a resumed one format the table
 * from the very same text, so they cannot differ. */
#include "experiments/sweep.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/blas_env.h"
#include "core/ckpt.h"
#include "core/log.h"
#include "experiments/kinds.h"
#include "experiments/compat.h"
#include "experiments/report.h"
#include "prune/stats.h"
#include "train/trainer.h"

/* ---- small helpers ---- */

#define MAX_ITEMS 32
#define ITEM_LEN 32

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int file_exists(const char *path) { return access(path, F_OK) == 0; }

static const char *path_in(const char *dir, const char *name, char *buf, size_t n) {
    snprintf(buf, n, "%.3000s/%.1000s", dir, name);
    return buf;
}

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

static lp_status kv_copy(lp_kv *dst, const lp_kv *src) {
    for (int i = 0; i < src->count; i++) LP_TRY(lp_kv_set(dst, src->keys[i], src->vals[i]));
    return LP_OK;
}

/* rm -rf for a cell directory left by a killed run (no symlinks followed). */
static lp_status remove_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? LP_OK : lp_errorf(LP_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return lp_errorf(LP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        struct dirent *e;
        lp_status s = LP_OK;
        while (s == LP_OK && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[4096];
            s = remove_tree(path_in(path, e->d_name, sub, sizeof sub));
        }
        closedir(d);
        LP_TRY(s);
        if (rmdir(path) != 0) return lp_errorf(LP_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
        return LP_OK;
    }
    if (unlink(path) != 0) return lp_errorf(LP_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
    return LP_OK;
}

/* ---- the resolved configuration ---- */

/* config (copied) → compat preset, the task's defaults (for the video task also model.* keys from the
 * shorthand model.arch/hidden/...). */
static lp_status resolve_config(const lp_task_kind *kind, const lp_kv *config, lp_kv *out) {
    lp_kv_init(out);
    LP_TRY(kv_copy(out, config));
    const char *compat = lp_kv_get(out, "compat");
    if (compat) LP_TRY(lp_compat_apply(out, compat, NULL));
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

/* One cell per method x rate x compensation of a oneshot/iterative/soft schedule. */
static lp_status schedule_cells(const lp_kv *kv, const char *sched, lp_schedule schedule, lp_sweep_cell **cells,
                                int *n, int *cap) {
    char rates[MAX_ITEMS][ITEM_LEN], meth[MAX_ITEMS][ITEM_LEN];
    int nrate, nm, comp[MAX_ITEMS], ncomp;
    LP_TRY(schedule_methods(kv, sched, meth, &nm));
    LP_TRY(schedule_rates(kv, sched, rates, &nrate));
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
        for (int r = 0; r < nrate; r++) {
            LP_TRY(parse_rate("grid.rate", rates[r], &c.target_rate));
            for (int k = 0; k < ncomp; k++) {
                c.compensate = comp[k];
                snprintf(c.name, sizeof c.name, "%s-%s-%s-r%.2f%s", lp_schedule_name(c.schedule),
                         lp_rate_rule_name(c.rule), lp_criterion_name(c.criterion), c.target_rate,
                         c.compensate ? "-comp" : "");
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

static lp_status cells_of(const lp_kv *kv, lp_sweep_cell **cells, int *n_out) {
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
    lp_kv_init(&kv);
    lp_status s = kv_copy(&kv, config);
    const char *compat = lp_kv_get(&kv, "compat");
    if (s == LP_OK && compat) s = lp_compat_apply(&kv, compat, NULL);
    if (s == LP_OK) s = cells_of(&kv, cells, n);
    lp_kv_free(&kv);
    return s;
}

/* ---- rows ---- */

/* The next name of a tab-separated list into buf; 0 at the end. */
static int next_name(const char **list, char *buf, size_t n) {
    const char *p = *list;
    if (!*p) return 0;
    size_t len = strcspn(p, "\t");
    snprintf(buf, n, "%.*s", (int)len, p);
    *list = p + len + (p[len] == '\t');
    return 1;
}

/* "<figure>_<suffix>" for each figure the task's tables show (score's values, "%.6f"). */
static lp_status set_metrics(lp_kv *row, const lp_task_ops *ops, const char *suffix, const lp_score *sc) {
    char name[32], key[64];
    for (const char *p = ops->shown; next_name(&p, name, sizeof name);) {
        snprintf(key, sizeof key, "%s_%s", name, suffix);
        LP_TRY(lp_kv_setf(row, key, "%.6f", lp_score_get(sc, name)));
    }
    return LP_OK;
}

static void units_string(const lp_task *t, char *buf, size_t n) {
    size_t off = 0;
    buf[0] = 0;
    for (int g = 0; g < t->n_groups && off < n; g++)
        off += (size_t)snprintf(buf + off, n - off, g ? "/%d" : "%d", t->groups[g].units);
}

/* The size/latency columns of a measured model. */
static lp_status set_model_cols(lp_kv *row, const lp_report_model *r, const lp_task *t) {
    char units[256], key[64];
    units_string(t, units, sizeof units);
    LP_TRY(lp_kv_set(row, "units", units));
    LP_TRY(lp_kv_setf(row, "parameters", "%zu", r->params));
    snprintf(key, sizeof key, "flops_per_%s", t->ops->step_name);
    LP_TRY(lp_kv_setf(row, key, "%.6g", r->flops_step));
    LP_TRY(lp_kv_setf(row, "checkpoint_bytes", "%zu", r->ckpt_bytes));
    LP_TRY(lp_kv_setf(row, "latency_ms_b1", "%.4f", r->lat_b1_ms));
    return lp_kv_setf(row, "latency_ms_bn", "%.4f", r->lat_bn_ms);
}

static double row_num(const lp_kv *row, const char *key) {
    const char *v = lp_kv_get(row, key);
    if (!v || !*v) return NAN;
    char *end;
    double d = strtod(v, &end);
    return end == v ? NAN : d;
}

static const char *row_str(const lp_kv *row, const char *key) {
    const char *v = lp_kv_get(row, key);
    return v ? v : "";
}

/* ---- the run ---- */

#define MAX_COLUMNS 64

typedef struct {
    lp_task_kind kind;    /* the `task` of the configuration */
    const lp_task_ops *ops;
    char primary[32];     /* the selecting figure ("gap", "ppl") */
    lp_kv cfg;            /* resolved configuration (base + grid keys) */
    const char *dir;
    const lp_sweep_opts *o;
    lp_pipeline_opts popt;/* from the prune.* keys */
    lp_kv *rows;          /* rows[0] baseline, rows[1] prior, rows[2+i] cell i (count = 0 when missing) */
    int n_rows;
    char baseline_ckpt[4096];
    const char *columns[MAX_COLUMNS]; /* results.csv, in order */
    char column_names[MAX_COLUMNS][48];
    int n_columns;
} sweep;

static void add_column(sweep *sw, const char *fmt, const char *a, const char *b) {
    if (sw->n_columns == MAX_COLUMNS) return;
    snprintf(sw->column_names[sw->n_columns], sizeof sw->column_names[0], fmt, a, b);
    sw->columns[sw->n_columns] = sw->column_names[sw->n_columns];
    sw->n_columns++;
}

/* The columns of results.csv: identity, rates, sizes, the task's shown figures pruned (right after the
 * units were removed) and fine-tuned, and last, since they are the only columns that vary between
 * identical runs, the timing. */
static void build_columns(sweep *sw) {
    static const char *const head[] = {"cell", "schedule", "rule", "criterion", "target_rate", "mean_rate", "units",
                                       "parameters"};
    for (size_t i = 0; i < sizeof head / sizeof head[0]; i++) add_column(sw, "%s%s", head[i], "");
    add_column(sw, "flops_per_%s%s", sw->ops->step_name, "");
    add_column(sw, "%s%s", "checkpoint_bytes", "");
    const char *stage[] = {"pruned", "finetuned"};
    char name[32];
    for (int k = 0; k < 2; k++)
        for (const char *p = sw->ops->shown; next_name(&p, name, sizeof name);) add_column(sw, "%s_%s", name, stage[k]);
    add_column(sw, "%s%s", "compensate", "");
    add_column(sw, "%s%s", "latency_ms_b1", "");
    add_column(sw, "%s%s", "latency_ms_bn", "");
    add_column(sw, "%s%s", "seconds", "");
}

/* "<primary>_<suffix>" (gap_finetuned, ...). */
static const char *pkey(const sweep *sw, const char *suffix, char *buf, size_t n) {
    snprintf(buf, n, "%s_%s", sw->primary, suffix);
    return buf;
}

static void say(const sweep *sw, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void say(const sweep *sw, const char *fmt, ...) {
    if (sw->o->quiet) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lp_log(LP_LOG_INFO, "[sweep] %s", msg);
}

/* Refuse a directory holding a sweep with different base keys. A key the directory's sweep.conf lacks is
 * accepted at its built-in default: the sweep was started by a version without that key, which behaved
 * as the default does. */
static lp_status check_or_write_conf(sweep *sw) {
    char path[4096];
    path_in(sw->dir, "sweep.conf", path, sizeof path);
    if (file_exists(path)) {
        lp_kv old;
        lp_kv_init(&old);
        lp_status s = lp_kv_read_file(&old, path);
        for (int i = 0; s == LP_OK && i < old.count; i++) {
            if (is_grid_key(old.keys[i])) continue;
            const char *now = lp_kv_get(&sw->cfg, old.keys[i]);
            if (!now || strcmp(now, old.vals[i]))
                s = lp_errorf(LP_ERR_ARG,
                              "%s holds a sweep with another configuration (%s = %s there, %s now); use another output "
                              "directory or remove it",
                              sw->dir, old.keys[i], old.vals[i], now ? now : "(absent)");
        }
        lp_kv defaults; /* what an absent key means */
        lp_kv_init(&defaults);
        if (s == LP_OK) s = sw->kind.defaults(&sw->kind, &defaults);
        for (int i = 0; s == LP_OK && i < sw->cfg.count; i++) {
            const char *key = sw->cfg.keys[i], *dflt = lp_kv_get(&defaults, key);
            if (is_grid_key(key) || lp_kv_get(&old, key) || (dflt && !strcmp(dflt, sw->cfg.vals[i]))) continue;
            s = lp_errorf(LP_ERR_ARG,
                          "%s holds a sweep with another configuration (%s = %s now; absent there, which means %s); use "
                          "another output directory",
                          sw->dir, key, sw->cfg.vals[i], dflt ? dflt : "no value");
        }
        lp_kv_free(&defaults);
        lp_kv_free(&old);
        LP_TRY(s);
    }
    return lp_kv_write_file(&sw->cfg, path);
}

/* The model of checkpoint `path` as a task with the sweep's configuration over the checkpoint's. */
static lp_status open_task(const sweep *sw, const char *path, lp_task **t) {
    lp_ckpt c;
    LP_TRY(lp_ckpt_load(&c, path));
    lp_kv cfg;
    lp_kv_init(&cfg);
    lp_status s = kv_copy(&cfg, &sw->cfg);
    if (s == LP_OK) s = sw->kind.open(&sw->kind, &cfg, &c, path, t);
    lp_kv_free(&cfg);
    lp_ckpt_free(&c);
    return s;
}

/* spectra.csv: the baseline's response spectra (the statistics the eigen rule uses). */
static lp_status write_spectra(sweep *sw, lp_task *t) {
    lp_stats st[LP_MAX_GROUPS];
    LP_TRY(lp_prune_stats(t, sw->popt.prune.stats_batches, sw->popt.prune.steps, st));
    const lp_task *m = t;
    char path[4096];
    lp_atomic_file af;
    lp_status s = lp_atomic_open(&af, path_in(sw->dir, "spectra.csv", path, sizeof path));
    if (s == LP_OK) fprintf(af.f, "group,units,index,eigenvalue,fraction,cumulative\n");
    for (int g = 0; g < m->n_groups && s == LP_OK; g++) {
        int h = m->groups[g].units;
        double *cov = lp_malloc((size_t)h * (size_t)h, sizeof(double)), *eig = lp_malloc((size_t)h, sizeof(double));
        s = cov && eig ? lp_stats_finish(&st[g], NULL, cov) : LP_ERR_NOMEM;
        if (s == LP_OK) s = lp_rates_eigenvalues(cov, h, eig, NULL);
        if (s == LP_OK) {
            double tot = 0, cum = 0;
            for (int j = 0; j < h; j++) tot += eig[j];
            for (int j = 0; j < h; j++) {
                cum += eig[j];
                fprintf(af.f, "%s,%d,%d,%.10g,%.8f,%.8f\n", m->groups[g].name, h, j + 1, eig[j], tot > 0 ? eig[j] / tot : 0,
                        tot > 0 ? cum / tot : 1);
            }
        }
        lp_free(cov);
        lp_free(eig);
    }
    if (s == LP_OK) s = lp_atomic_commit(&af);
    else if (af.f) lp_atomic_abort(&af);
    for (int g = 0; g < m->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

/* Train the baseline into bdir, or continue a run that was killed (a finished run is not resumed: it was
 * killed after its last epoch, before the marker `trained` was written); then write the marker. */
static lp_status train_baseline(sweep *sw, const char *bdir) {
    char marker[4096], last[4096];
    path_in(bdir, "trained", marker, sizeof marker);
    if (file_exists(marker)) return LP_OK;
    lp_train_opts to = {.run_dir = bdir, .quiet = sw->o->quiet};
    lp_train_result tr;
    lp_kv c;
    lp_kv_init(&c);
    lp_status s;
    if (file_exists(path_in(bdir, "last.ckpt", last, sizeof last))) {
        lp_kv meta;
        lp_kv_init(&meta);
        lp_ckpt lc;
        s = lp_ckpt_load(&lc, last);
        if (s == LP_OK) s = lp_kv_merge(&meta, &lc.meta);
        if (s == LP_OK) lp_ckpt_free(&lc);
        int finished = s == LP_OK && lp_kv_get_int_or(&meta, "state.epoch", 0) >= lp_kv_get_int_or(&meta, "train.epochs", 1) &&
                       lp_kv_get_int_or(&meta, "state.batch", 0) == 0;
        lp_kv_free(&meta);
        if (s == LP_OK && !finished) {
            say(sw, "continuing the baseline training in %s", bdir);
            to.resume = 1;
            s = lp_train(&sw->kind, &c, &to, &tr);
        }
    } else {
        say(sw, "training the baseline into %s", bdir);
        s = remove_tree(bdir);
        if (s == LP_OK) s = kv_copy(&c, &sw->cfg);
        if (s == LP_OK) s = lp_train(&sw->kind, &c, &to, &tr);
    }
    lp_kv_free(&c);
    if (s != LP_OK) return lp_error_wrap(s, "baseline");
    return lp_file_write_all(marker, "done\n", 5);
}

/* Measure the trained baseline (its row, the spectra, the task's reference row) into cdir. */
static lp_status measure_baseline(sweep *sw, const char *cdir, const char *result_path) {
    say(sw, "measuring the baseline");
    lp_task *t;
    LP_TRY(open_task(sw, sw->baseline_ckpt, &t));
    char path[4096];
    lp_report_model r, ref;
    int have_ref = 0;
    double t0 = lp_now_s();
    lp_status s = lp_report_measure(t, "baseline", sw->baseline_ckpt, 1, sw->popt.lat_batch, sw->popt.lat_frames,
                                    sw->popt.lat_reps, &r);
    if (s == LP_OK) s = write_spectra(sw, t);
    lp_kv row, prior;
    lp_kv_init(&row);
    lp_kv_init(&prior);
    if (s == LP_OK) {
        lp_kv_set(&row, "cell", "baseline");
        lp_kv_set(&row, "schedule", "baseline");
        lp_kv_set(&row, "target_rate", "0.00");
        lp_kv_set(&row, "mean_rate", "0.0000");
        s = set_model_cols(&row, &r, t);
        if (s == LP_OK && r.score.n) s = set_metrics(&row, sw->ops, "pruned", &r.score);
        if (s == LP_OK && r.score.n) s = set_metrics(&row, sw->ops, "finetuned", &r.score);
        if (s == LP_OK) s = lp_kv_setf(&row, "seconds", "%.1f", lp_now_s() - t0);
    }
    /* the reference every model must beat (the video task's input-ignoring prior) */
    if (s == LP_OK) s = lp_report_reference(t, &ref, &have_ref);
    if (s == LP_OK && have_ref) {
        lp_kv_set(&prior, "cell", "prior");
        lp_kv_set(&prior, "schedule", "prior (no input)");
        s = set_metrics(&prior, sw->ops, "pruned", &ref.score);
        if (s == LP_OK) s = set_metrics(&prior, sw->ops, "finetuned", &ref.score);
    }
    if (s == LP_OK) s = lp_mkdirs(cdir);
    if (s == LP_OK && have_ref) s = lp_kv_write_file(&prior, path_in(cdir, "prior.txt", path, sizeof path));
    if (s == LP_OK) s = lp_kv_write_file(&row, result_path);
    lp_kv_free(&row);
    lp_kv_free(&prior);
    lp_task_free(t);
    return s;
}

/* Train (or continue) the baseline; then measure it and the input-ignoring prior. */
static lp_status run_baseline(sweep *sw, lp_sweep_summary *sum) {
    char bdir[4096], path[4096], cdir[4096];
    path_in(sw->dir, "baseline", bdir, sizeof bdir);
    path_in(bdir, "best.ckpt", sw->baseline_ckpt, sizeof sw->baseline_ckpt);
    path_in(sw->dir, "cells/baseline", cdir, sizeof cdir);
    path_in(cdir, "result.txt", path, sizeof path);
    if (file_exists(path)) return LP_OK;
    sum->baseline_run = 1;
    LP_TRY(train_baseline(sw, bdir));
    lp_status s = measure_baseline(sw, cdir, path);
    return s == LP_OK ? LP_OK : lp_error_wrap(s, "baseline");
}

static lp_status run_cell(sweep *sw, const lp_sweep_cell *c, const char *cdir, const char *result_path) {
    LP_TRY(remove_tree(cdir)); /* whatever a killed run left */
    LP_TRY(lp_mkdirs(cdir));
    lp_pipeline_opts o = sw->popt;
    lp_kv cfg;
    lp_kv_init(&cfg);
    lp_status s = kv_copy(&cfg, &sw->cfg);
    o.kind = &sw->kind;
    o.cfg = &cfg;
    o.out_dir = cdir;
    o.quiet = sw->o->quiet;
    o.schedule = c->schedule;
    o.prune.rates.rule = c->rule;
    o.prune.criterion = c->criterion;
    o.prune.rates.target_rate = c->target_rate;
    /* oneshot and iterative prune the baseline; soft trains from scratch; ISS from scratch too, or from the
     * baseline with prune.iss_from = baseline (Wen et al.'s fine-tuning with the group lasso) */
    const char *iss_from = lp_kv_get(&sw->cfg, "prune.iss_from");
    const int from_base = c->schedule == LP_SCHED_ONESHOT || c->schedule == LP_SCHED_ITERATIVE ||
                          (c->schedule == LP_SCHED_ISS && iss_from && !strcmp(iss_from, "baseline"));
    o.baseline_ckpt = from_base ? sw->baseline_ckpt : NULL;
    if (c->schedule == LP_SCHED_ISS) o.iss_lambda = c->iss_lambda;
    o.prune.compensate = c->compensate; /* never for soft and ISS cells (schedule_compensate) */
    lp_pipeline_result res;
    double t0 = lp_now_s();
    if (s == LP_OK) s = lp_rates_opts_check(&o.prune.rates);
    if (s == LP_OK) s = lp_pipeline_run(&o, &res);
    lp_kv row;
    lp_kv_init(&row);
    lp_task *m = NULL;
    if (s == LP_OK && res.n_rows < 2) s = lp_errorf(LP_ERR_FORMAT, "the pipeline reported %d models", res.n_rows);
    if (s == LP_OK) {
        const lp_report_model *pr = &res.rows[1], *fin = &res.rows[o.finetune_epochs > 0 && res.n_rows > 2 && !res.rows[2].reference ? 2 : 1];
        s = open_task(sw, fin->ckpt, &m);
        lp_kv_set(&row, "cell", c->name);
        lp_kv_set(&row, "schedule", lp_schedule_name(c->schedule));
        if (c->schedule != LP_SCHED_ISS) {
            lp_kv_set(&row, "rule", lp_rate_rule_name(c->rule));
            lp_kv_set(&row, "criterion", lp_criterion_name(c->criterion));
            lp_kv_setf(&row, "target_rate", "%.2f", c->target_rate);
            lp_kv_set(&row, "compensate", c->compensate ? "mean" : "none");
        } else {
            lp_kv_setf(&row, "rule", "lambda=%g", c->iss_lambda);
            lp_kv_set(&row, "criterion", "iss");
        }
        lp_kv_setf(&row, "mean_rate", "%.4f", res.mean_rate);
        if (s == LP_OK) s = set_model_cols(&row, fin, m);
        if (s == LP_OK && pr->score.n) s = set_metrics(&row, sw->ops, "pruned", &pr->score);
        if (s == LP_OK && fin->score.n) s = set_metrics(&row, sw->ops, "finetuned", &fin->score);
        if (s == LP_OK) s = lp_kv_setf(&row, "seconds", "%.1f", lp_now_s() - t0);
        if (s == LP_OK) s = lp_kv_write_file(&row, result_path);
    }
    lp_task_free(m);
    lp_kv_free(&row);
    lp_kv_free(&cfg);
    return s == LP_OK ? LP_OK : lp_error_wrap(s, "cell %s", c->name);
}

/* ---- outputs ---- */

static void csv_field(FILE *f, const char *v) {
    if (strpbrk(v, ",\"\n")) {
        fputc('"', f);
        for (; *v; v++) {
            if (*v == '"') fputc('"', f);
            fputc(*v, f);
        }
        fputc('"', f);
    } else {
        fputs(v, f);
    }
}

static lp_status write_csv(sweep *sw) {
    char path[4096];
    lp_atomic_file af;
    LP_TRY(lp_atomic_open(&af, path_in(sw->dir, "results.csv", path, sizeof path)));
    for (int c = 0; c < sw->n_columns; c++) fprintf(af.f, "%s%s", c ? "," : "", sw->columns[c]);
    fputc('\n', af.f);
    for (int i = 0; i < sw->n_rows; i++) {
        if (sw->rows[i].count == 0) continue;
        for (int c = 0; c < sw->n_columns; c++) {
            if (c) fputc(',', af.f);
            csv_field(af.f, row_str(&sw->rows[i], sw->columns[c]));
        }
        fputc('\n', af.f);
    }
    return lp_atomic_commit(&af);
}

static const char *dash(const char *v) { return *v ? v : "–"; }

/* The plots a sweep draws, in the order of have_png[] everywhere below ("%s": the primary figure). */
static const char *const plot_fmt[5] = {"%s_vs_rate.png", "%s_vs_params.png", "%s_vs_latency.png", "spectra.png",
                                        "curves.png"};

static const char *plot_png(const sweep *sw, int i, char *buf, size_t n) {
    snprintf(buf, n, plot_fmt[i], sw->primary);
    return buf;
}

/* A figure's title ("GAP@20"), or with `shorter` the table's ("GAP"). */
static void title_of(const sweep *sw, const char *figure, int shorter, char *buf, size_t n) {
    lp_task_ops_figure_title(sw->ops, &sw->cfg, figure, buf, n);
    if (shorter) buf[strcspn(buf, "@")] = 0;
}

/* The header lines of results.md: what ran, on which data. */
static void md_header(FILE *f, const sweep *sw, int done, int total) {
    const lp_kv *c = &sw->cfg;
    const char *model = lp_kv_get(c, "model.kind"), *units = lp_kv_get(c, "model.units");
    const char *train = lp_kv_get(c, "data.train"), *ev = lp_kv_get(c, "data.test");
    if (!ev || !*ev) ev = lp_kv_get(c, "data.valid");
    if (!ev || !*ev) ev = lp_kv_get(c, "data.dir");
    fprintf(f, "# lstmprune sweep\n\n");
    fprintf(f, "- configuration: sweep.conf (model %s, units %s, classes %s)\n", model ? model : sw->kind.name,
            units ? units : row_str(c, "lm.units"), lp_kv_get(c, "data.classes") ? row_str(c, "data.classes") : "–");
    fprintf(f, "- training data: %s\n", train ? train : row_str(c, "data.dir"));
    fprintf(f, "- evaluation data: %s\n", ev && *ev ? ev : "(none)");
    fprintf(f, "- baseline: %s epoch(s), batch %s, lr %s; fine-tuning: %d epoch(s)%s\n", row_str(c, "train.epochs"),
            row_str(c, "train.batch"), row_str(c, "train.lr"), sw->popt.finetune_epochs,
            sw->popt.finetune_lr > 0 ? "" : " at the training lr");
    fprintf(f, "- statistics: %s steps, %d batches; kept-eigenvalue count: %s%s%s\n", lp_stats_steps_name(sw->popt.prune.steps),
            sw->popt.prune.stats_batches, lp_keep_count_name(sw->popt.prune.rates.count),
            lp_kv_get(c, "compat") ? "; compat preset: " : "", row_str(c, "compat"));
    fprintf(f, "- cells finished: %d of %d%s\n\n", done, total, done < total ? " (partial: rerun the sweep to continue)" : "");
}

/* The table: the primary figure pruned and fine-tuned, then the other shown figures fine-tuned. */
static void md_table(FILE *f, const sweep *sw) {
    char title[64], name[32], key[64], key2[64];
    title_of(sw, sw->primary, 1, title, sizeof title);
    fprintf(f, "| cell | target | mean rate | units | params | FLOPs/%s | ckpt bytes | %s pruned | %s fine-tuned |",
            sw->ops->step_name, title, title);
    int others = 0;
    for (const char *p = sw->ops->shown; next_name(&p, name, sizeof name);) {
        if (!strcmp(name, sw->primary)) continue;
        title_of(sw, name, 0, title, sizeof title);
        fprintf(f, " %s%s |", title, others++ ? "" : " fine-tuned");
    }
    fprintf(f, " lat B=1 ms | lat B=N ms |\n|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for (int k = 0; k < others; k++) fprintf(f, "---:|");
    fprintf(f, "---:|---:|\n");
    char flops[48];
    snprintf(flops, sizeof flops, "flops_per_%s", sw->ops->step_name);
    for (int i = 0; i < sw->n_rows; i++) {
        const lp_kv *r = &sw->rows[i];
        if (r->count == 0) continue;
        fprintf(f, "| %s | %s | %s | %s | %s | %s | %s | %s | %s |", row_str(r, "cell"), dash(row_str(r, "target_rate")),
                dash(row_str(r, "mean_rate")), dash(row_str(r, "units")), dash(row_str(r, "parameters")),
                dash(row_str(r, flops)), dash(row_str(r, "checkpoint_bytes")),
                dash(row_str(r, pkey(sw, "pruned", key, sizeof key))), dash(row_str(r, pkey(sw, "finetuned", key2, sizeof key2))));
        for (const char *p = sw->ops->shown; next_name(&p, name, sizeof name);) {
            if (!strcmp(name, sw->primary)) continue;
            snprintf(key, sizeof key, "%s_finetuned", name);
            fprintf(f, " %s |", dash(row_str(r, key)));
        }
        fprintf(f, " %s | %s |\n", dash(row_str(r, "latency_ms_b1")), dash(row_str(r, "latency_ms_bn")));
    }
}

static lp_status write_md(sweep *sw, int done, int total, const int *have_png) {
    char path[4096];
    lp_atomic_file af;
    LP_TRY(lp_atomic_open(&af, path_in(sw->dir, "results.md", path, sizeof path)));
    FILE *f = af.f;
    md_header(f, sw, done, total);
    char titles[256] = "", title[64], name[32];
    for (const char *p = sw->ops->shown; next_name(&p, name, sizeof name);) {
        title_of(sw, name, 0, title, sizeof title);
        snprintf(titles + strlen(titles), sizeof titles - strlen(titles), "%s, ", title);
    }
    fprintf(f, "Metrics on the evaluation data: %s\"pruned\" right after the units were removed, "
               "\"fine-tuned\" after fine-tuning (the baseline and the prior show their own metrics in both). "
               "Rates are the target and the achieved mean over unit groups; units are per group (%s). Latency: median "
               "no-gradient forward pass, batch 1 and batch %d, %d %ss, measured on this machine during the sweep.\n\n",
            titles, sw->ops->groups_help, sw->popt.lat_batch, sw->popt.lat_frames, sw->ops->step_name);
    md_table(f, sw);
    char ptitle[64];
    title_of(sw, sw->primary, 1, ptitle, sizeof ptitle);
    const char *what[5] = {"vs pruning rate", "vs parameters", "vs measured latency", "eigenvalue spectra of the baseline",
                           "training curves of the baseline"};
    int any = 0;
    for (int i = 0; i < 5; i++)
        if (have_png[i]) {
            if (!any) fprintf(f, "\n## Plots\n");
            any = 1;
            fprintf(f, "\n![%s%s%s](%s)\n", i < 3 ? ptitle : "", i < 3 ? " " : "", what[i], plot_png(sw, i, path, sizeof path));
        }
    if (!any) fprintf(f, "\n(No plots: gnuplot is not installed. The numbers are in results.csv and spectra.csv.)\n");
    fprintf(f, "\nPer-cell reports: cells/<cell>/report.md.\n");
    return lp_atomic_commit(&af);
}

/* One plotted series: cells with the same schedule, rule and criterion, ordered by target rate. */
typedef struct {
    char title[96];
    int idx[MAX_ITEMS * 2];
    int n;
} series;

static int cmp_target(const void *a, const void *b, const sweep *sw) {
    double x = row_num(&sw->rows[*(const int *)a], "target_rate"), y = row_num(&sw->rows[*(const int *)b], "target_rate");
    return (x > y) - (x < y);
}

static void sort_series(series *se, const sweep *sw) {
    for (int i = 1; i < se->n; i++) /* insertion sort: a handful of points */
        for (int j = i; j > 0 && cmp_target(&se->idx[j - 1], &se->idx[j], sw) > 0; j--) {
            int t = se->idx[j];
            se->idx[j] = se->idx[j - 1];
            se->idx[j - 1] = t;
        }
}

static void block_row(FILE *g, const sweep *sw, const lp_kv *r) {
    char kp[64], kf[64];
    fprintf(g, "%s %s %s %s %s %s\n", row_str(r, "mean_rate"), dash(row_str(r, pkey(sw, "pruned", kp, sizeof kp))),
            dash(row_str(r, pkey(sw, "finetuned", kf, sizeof kf))), row_str(r, "parameters"), row_str(r, "latency_ms_bn"),
            row_str(r, "target_rate"));
}

/* Line style of a series: colour = criterion, dash = rate rule, point = schedule, width = compensation, so
 * a grid of 10+ series stays readable. */
static void series_style(const sweep *sw, const series *se, char *buf, size_t n) {
    static const char *const crit[] = {"gm", "gm-exact", "l2", "l1", "random"};
    static const char *const col[] = {"#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#7f7f7f", "#9467bd"};
    const lp_kv *r = &sw->rows[se->idx[0]];
    int c = 5;
    for (int i = 0; i < 5; i++)
        if (!strcmp(row_str(r, "criterion"), crit[i])) c = i;
    const char *sched = row_str(r, "schedule");
    int pt = !strcmp(sched, "oneshot") ? 7 : !strcmp(sched, "soft") ? 4 : 8;
    snprintf(buf, n, "lw %d lc rgb '%s' dt %d pt %d", !strcmp(row_str(r, "compensate"), "mean") ? 4 : 2, col[c],
             !strcmp(row_str(r, "rule"), "uniform") ? 2 : 1, pt);
}

/* "plot " and one curve per series ($Sk) plus the ISS points ($ISS), columns xcol:ycol of the data
 * blocks; returns the separator the caller puts before a further curve. */
static const char *plot_series(FILE *g, const sweep *sw, const series *se, int ns, int n_iss, int xcol, int ycol) {
    const char *sep = "", *next = ", \\\n     ";
    fprintf(g, "plot ");
    for (int k = 0; k < ns; k++) {
        char sty[96];
        series_style(sw, &se[k], sty, sizeof sty);
        fprintf(g, "%s$S%d using %d:%d with linespoints %s title '%s'", sep, k, xcol, ycol, sty, se[k].title);
        sep = next;
    }
    if (n_iss) {
        fprintf(g, "%s$ISS using %d:%d with points pt 9 ps 2 title 'ISS group lasso'", sep, xcol, ycol);
        sep = next;
    }
    return sep;
}

static int count_data_lines(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int c, lines = 0;
    while ((c = fgetc(f)) != EOF) lines += c == '\n';
    fclose(f);
    return lines > 0 ? lines - 1 : 0; /* minus the header */
}

/* Group the finished oneshot/soft rows into series (one per schedule + rule + criterion, sorted by rate);
 * returns how many, and the number of finished ISS rows in *n_iss. */
static int collect_series(sweep *sw, series *se, int *n_iss) {
    int ns = 0;
    *n_iss = 0;
    for (int i = 2; i < sw->n_rows; i++) {
        const lp_kv *r = &sw->rows[i];
        char key[64];
        if (r->count == 0 || !lp_kv_get(r, pkey(sw, "finetuned", key, sizeof key))) continue;
        if (!strcmp(row_str(r, "schedule"), "iss")) {
            (*n_iss)++;
            continue;
        }
        char title[96];
        snprintf(title, sizeof title, "%s %s %s%s", row_str(r, "schedule"), row_str(r, "rule"), row_str(r, "criterion"),
                 !strcmp(row_str(r, "compensate"), "mean") ? " +comp" : "");
        int k = 0;
        while (k < ns && strcmp(se[k].title, title)) k++;
        if (k == ns) {
            if (ns == MAX_ITEMS * 4) continue;
            snprintf(se[ns++].title, sizeof se[0].title, "%s", title);
        }
        if (se[k].n < MAX_ITEMS * 2) se[k].idx[se[k].n++] = i;
    }
    for (int k = 0; k < ns; k++) sort_series(&se[k], sw);
    return ns;
}

/* The data blocks $S0.. (one per series), $ISS and $BASE (with baseline_gap); returns 1 if the baseline
 * is finished. */
static int write_data_blocks(FILE *g, sweep *sw, const series *se, int ns, int n_iss) {
    const char *p = sw->primary;
    char kf[64];
    pkey(sw, "finetuned", kf, sizeof kf);
    for (int k = 0; k < ns; k++) {
        fprintf(g, "$S%d << EOD\n# mean_rate %s_pruned %s_finetuned parameters latency_bn target\n", k, p, p);
        for (int j = 0; j < se[k].n; j++) block_row(g, sw, &sw->rows[se[k].idx[j]]);
        fprintf(g, "EOD\n");
    }
    if (n_iss) {
        fprintf(g, "$ISS << EOD\n");
        for (int i = 2; i < sw->n_rows; i++)
            if (sw->rows[i].count && !strcmp(row_str(&sw->rows[i], "schedule"), "iss") && lp_kv_get(&sw->rows[i], kf))
                block_row(g, sw, &sw->rows[i]);
        fprintf(g, "EOD\n");
    }
    const lp_kv *base = &sw->rows[0];
    if (!(base->count && lp_kv_get(base, kf))) return 0;
    fprintf(g, "$BASE << EOD\n");
    block_row(g, sw, base);
    fprintf(g, "EOD\nbaseline_%s = %s\n", p, row_str(base, kf));
    return 1;
}

/* <primary>_vs_rate.png (before and after fine-tuning, two panels with one key), <primary>_vs_params.png and
 * <primary>_vs_latency.png (fine-tuned models). */
static void plot_primary(FILE *g, const sweep *sw, const series *se, int ns, int n_iss, int have_base) {
    char t[64], png[64];
    const char *p = sw->primary;
    title_of(sw, p, 0, t, sizeof t);
    fprintf(g, "\nset terminal pngcairo size 1500,600 noenhanced\nset output '%s'\n"
               "set multiplot title '%s vs mean pruning rate'\nset tmargin at screen 0.88\nset bmargin at screen 0.12\n",
            plot_png(sw, 0, png, sizeof png), t);
    for (int pass = 0; pass < 2; pass++) {
        fprintf(g, "set title '%s'\nset xlabel 'mean pruning rate over unit groups (achieved)'\nset ylabel '%s'\n",
                pass ? "after fine-tuning" : "pruned, before fine-tuning", t);
        fprintf(g, "%s", pass ? "set lmargin at screen 0.47\nset rmargin at screen 0.77\nset key at screen 0.79,0.88 left top samplen 3\n"
                              : "set lmargin at screen 0.06\nset rmargin at screen 0.36\nunset key\n");
        const char *sep = plot_series(g, sw, se, ns, n_iss, 1, pass ? 3 : 2);
        if (have_base) fprintf(g, "%sbaseline_%s with lines dt 2 lc rgb 'black' title 'baseline (unpruned)'", sep, p);
        fprintf(g, "\n");
    }
    fprintf(g, "unset multiplot\nset key outside right top\nset lmargin -1\nset rmargin -1\nset tmargin -1\nset bmargin -1\n"
               "set terminal pngcairo size 1200,520 noenhanced\n");
    for (int pass = 0; pass < 2; pass++) {
        fprintf(g, "\nset output '%s'\nset title '%s after fine-tuning vs %s'\nset xlabel '%s'\nset ylabel '%s'\n",
                plot_png(sw, pass ? 2 : 1, png, sizeof png), t, pass ? "measured latency" : "parameters",
                pass ? "latency of a no-gradient forward pass at batch N (ms, this machine)" : "parameters", t);
        const char *sep = plot_series(g, sw, se, ns, n_iss, pass ? 5 : 4, 3);
        if (have_base) fprintf(g, "%s$BASE using %d:3 with points pt 5 ps 2 lc rgb 'black' title 'baseline'", sep, pass ? 5 : 4);
        fprintf(g, "\n");
    }
}

/* spectra.png from spectra.csv (the baseline's eigenvalues per unit group); returns 1 if drawn. */
static int plot_spectra(FILE *g, const sweep *sw) {
    char spath[4096];
    FILE *sf = fopen(path_in(sw->dir, "spectra.csv", spath, sizeof spath), "r");
    if (!sf) return 0;
    char line[512], names[LP_MAX_GROUPS][32];
    int ng = 0, cur = -1;
    if (!fgets(line, sizeof line, sf)) line[0] = 0; /* header */
    while (fgets(line, sizeof line, sf)) {
        char name[32];
        int h, idx;
        double eig, frac, cum;
        if (sscanf(line, "%31[^,],%d,%d,%lf,%lf,%lf", name, &h, &idx, &eig, &frac, &cum) != 6) continue;
        if (cur < 0 || strcmp(names[cur], name)) {
            if (cur >= 0) fprintf(g, "EOD\n");
            if (ng == LP_MAX_GROUPS) break;
            cur = ng++;
            snprintf(names[cur], sizeof names[cur], "%s", name);
            fprintf(g, "$G%d << EOD\n# index fraction cumulative index/H\n", cur);
        }
        fprintf(g, "%d %.8g %.8f %.6f\n", idx, frac, cum, (double)idx / h);
    }
    if (cur >= 0) fprintf(g, "EOD\n");
    fclose(sf);
    if (ng == 0) return 0;
    fprintf(g, "\nset output 'spectra.png'\nset key inside right top\nset multiplot layout 1,2 title 'Response "
               "covariance spectra of the baseline per unit group'\n");
    fprintf(g, "set title 'eigenvalue / total energy'\nset xlabel 'eigenvalue index'\nset ylabel 'fraction of "
               "energy'\nset logscale y\nplot ");
    for (int k = 0; k < ng; k++)
        fprintf(g, "%s$G%d using 1:($2 > 0 ? $2 : 1/0) with linespoints title '%s'", k ? ", " : "", k, names[k]);
    fprintf(g, "\nunset logscale y\nset key inside right bottom\nset title 'cumulative energy'\n"
               "set xlabel 'fraction of the group''s units (k/H)'\n"
               "set ylabel 'energy kept'\nset yrange [0:1.02]\nplot ");
    for (int k = 0; k < ng; k++) fprintf(g, "%s$G%d using 4:3 with lines lw 2 title '%s'", k ? ", " : "", k, names[k]);
    fprintf(g, "\nset yrange [*:*]\nunset multiplot\nset key outside right top\n");
    return 1;
}

/* curves.png: the baseline's training loss per step and (up to three of) its shown figures on the
 * validation data per epoch (valid.tsv: epoch step <figures>...); returns 1 if drawn. */
static int plot_curves(FILE *g, const sweep *sw) {
    char tpath[4096], vpath[4096];
    int nt = count_data_lines(path_in(sw->dir, "baseline/train.tsv", tpath, sizeof tpath));
    int nv = count_data_lines(path_in(sw->dir, "baseline/valid.tsv", vpath, sizeof vpath));
    if (nt == 0) return 0;
    fprintf(g, "\nset output 'curves.png'\nset datafile separator '\\t'\nset key inside right top\n"
               "set multiplot layout 1,2 title 'Baseline training'\n");
    fprintf(g, "set title 'training loss per step'\nset xlabel 'optimizer step'\nset ylabel 'loss'\nset logscale y\n"
               "plot 'baseline/train.tsv' skip 1 using 1:4 with lines title 'loss'\nunset logscale y\n");
    if (nv > 0) {
        fprintf(g, "set key inside right bottom\nset title 'validation after each epoch'\nset xlabel 'epoch'\nset ylabel 'metric'\nplot ");
        char name[32], fig[32], t[64];
        int k = 0;
        for (const char *p = sw->ops->shown; k < 3 && next_name(&p, name, sizeof name); k++) {
            int col = 3; /* the figure's column in valid.tsv */
            for (const char *f = sw->ops->figures; next_name(&f, fig, sizeof fig) && strcmp(fig, name); col++) continue;
            title_of(sw, name, 0, t, sizeof t);
            fprintf(g, "%s%s skip 1 using 1:%d with linespoints%s title '%s'", k ? ", " : "", k ? "''" : "'baseline/valid.tsv'",
                    col, k < 2 ? " lw 2" : "", t);
        }
        fprintf(g, "\n");
    }
    fprintf(g, "unset multiplot\nset datafile separator whitespace\nset key outside right top\n");
    return 1;
}

/* Run gnuplot on plots.gp where it exists (a missing gnuplot is not an error: the CSV is the result);
 * have_png[i] stays 1 only for a PNG that was written. Returns how many were. */
static int draw_pngs(const sweep *sw, int *have_png) {
    char path[4096], png[64];
    int any = 0, drawn = 0;
    for (int i = 0; i < 5; i++) any |= have_png[i];
    if (!any || system("command -v gnuplot >/dev/null 2>&1") != 0) {
        for (int i = 0; i < 5; i++) have_png[i] = 0;
        return 0;
    }
    for (int i = 0; i < 5; i++)
        if (have_png[i]) remove(path_in(sw->dir, plot_png(sw, i, png, sizeof png), path, sizeof path));
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot plots.gp >/dev/null 2>plots.log", sw->dir);
    if (system(cmd) != 0) say(sw, "gnuplot reported errors (see %s/plots.log)", sw->dir);
    for (int i = 0; i < 5; i++) {
        struct stat st;
        if (have_png[i]) {
            have_png[i] = stat(path_in(sw->dir, plot_png(sw, i, png, sizeof png), path, sizeof path), &st) == 0 && st.st_size > 0;
            drawn += have_png[i];
        }
    }
    return drawn;
}

/* plots.gp (always) and the PNGs (where gnuplot runs). have_png[5] in the order of write_md; *drawn
 * counts the PNGs written. */
static lp_status write_plots(sweep *sw, int *have_png, int *drawn_out) {
    for (int i = 0; i < 5; i++) have_png[i] = 0;
    *drawn_out = 0;
    char path[4096];
    series *se = lp_calloc(MAX_ITEMS * 4, sizeof *se);
    if (!se) return LP_ERR_NOMEM;
    lp_atomic_file af;
    lp_status s = lp_atomic_open(&af, path_in(sw->dir, "plots.gp", path, sizeof path));
    if (s != LP_OK) {
        lp_free(se);
        return s;
    }
    FILE *g = af.f;
    fprintf(g, "# lstmprune sweep plots: `cd %s && gnuplot plots.gp` (data inline, from results.csv and spectra.csv)\n", sw->dir);
    fprintf(g, "set terminal pngcairo size 1200,520 noenhanced\nset grid\nset key outside right top\n");
    int n_iss, ns = collect_series(sw, se, &n_iss);
    int have_base = write_data_blocks(g, sw, se, ns, n_iss);
    if (ns > 0 || n_iss) {
        plot_primary(g, sw, se, ns, n_iss, have_base);
        have_png[0] = have_png[1] = have_png[2] = 1;
    }
    have_png[3] = plot_spectra(g, sw);
    have_png[4] = plot_curves(g, sw);
    lp_free(se);
    LP_TRY(lp_atomic_commit(&af));
    *drawn_out = draw_pngs(sw, have_png);
    return LP_OK;
}

static lp_status write_outputs(sweep *sw, int done, int total, int *plots) {
    int have_png[5] = {0};
    LP_TRY(write_csv(sw));
    LP_TRY(write_plots(sw, have_png, plots));
    return write_md(sw, done, total, have_png);
}

/* The model a row describes: the baseline's best.ckpt, or a cell's fine-tuned (else pruned) model. */
static void row_ckpt(const sweep *sw, const lp_sweep_cell *c, char *buf, size_t n) {
    if (!c) {
        snprintf(buf, n, "%s", sw->baseline_ckpt);
        return;
    }
    snprintf(buf, n, "%.3000s/cells/%s/finetune/best.ckpt", sw->dir, c->name);
    if (!file_exists(buf)) snprintf(buf, n, "%.3000s/cells/%s/pruned.ckpt", sw->dir, c->name);
}

/* What a run and a re-measurement both start with: the configuration (an included file resolved), the
 * output directory (--out, else sweep.out), the pipeline options and the grid's cells. */
static lp_status sweep_open(sweep *sw, const lp_kv *config, const char *out_dir, lp_sweep_summary *sum,
                            lp_sweep_cell **cells, int *n_cells) {
    LP_TRY(lp_task_kind_of(config, &sw->kind));
    sw->ops = sw->kind.ops;
    snprintf(sw->primary, sizeof sw->primary, "%s", sw->ops->primary);
    build_columns(sw);
    LP_TRY(resolve_config(&sw->kind, config, &sw->cfg));
    if (!out_dir) out_dir = lp_kv_get(&sw->cfg, "sweep.out");
    if (!out_dir || !*out_dir) return lp_errorf(LP_ERR_ARG, "no output directory (sweep.out or --out)");
    sw->dir = out_dir;
    snprintf(sum->out_dir, sizeof sum->out_dir, "%s", out_dir);
    lp_pipeline_opts_default(&sw->popt);
    LP_TRY(lp_pipeline_opts_from_kv(&sw->cfg, &sw->popt));
    return cells_of(&sw->cfg, cells, n_cells);
}

lp_status lp_sweep_run(const lp_kv *config, const char *out_dir, const lp_sweep_opts *o, lp_sweep_summary *summary) {
    lp_sweep_summary sum;
    memset(&sum, 0, sizeof sum);
    lp_sweep_opts dflt = {0};
    if (!o) o = &dflt;
    sweep sw;
    memset(&sw, 0, sizeof sw);
    sw.o = o;
    lp_sweep_cell *cells = NULL;
    int n_cells = 0;
    lp_status s = sweep_open(&sw, config, out_dir, &sum, &cells, &n_cells);
    if (s == LP_OK) out_dir = sw.dir;
    if (s == LP_OK && n_cells == 0) s = lp_errorf(LP_ERR_ARG, "the grid has no cells");
    if (s == LP_OK) s = lp_mkdirs(out_dir);
    if (s == LP_OK) s = check_or_write_conf(&sw);
    sum.cells_total = n_cells;
    if (s == LP_OK) {
        sw.n_rows = n_cells + 2;
        sw.rows = lp_calloc((size_t)sw.n_rows, sizeof *sw.rows);
        if (!sw.rows) s = LP_ERR_NOMEM;
        for (int i = 0; s == LP_OK && i < sw.n_rows; i++) lp_kv_init(&sw.rows[i]);
    }
    lp_blas_set_threads((int)lp_kv_get_int_or(&sw.cfg, "train.threads", 0));
    if (s == LP_OK) s = run_baseline(&sw, &sum);
    char path[4096], cdir[4096];
    if (s == LP_OK) {
        s = lp_kv_read_file(&sw.rows[0], path_in(out_dir, "cells/baseline/result.txt", path, sizeof path));
        if (s == LP_OK && file_exists(path_in(out_dir, "cells/baseline/prior.txt", path, sizeof path)))
            s = lp_kv_read_file(&sw.rows[1], path);
    }
    for (int i = 0; s == LP_OK && i < n_cells; i++) {
        snprintf(cdir, sizeof cdir, "%.3000s/cells/%s", out_dir, cells[i].name);
        path_in(cdir, "result.txt", path, sizeof path);
        if (file_exists(path)) {
            sum.cells_skipped++;
        } else {
            if (o->max_cells > 0 && sum.cells_run >= o->max_cells) continue;
            say(&sw, "cell %d/%d: %s", i + 1, n_cells, cells[i].name);
            s = run_cell(&sw, &cells[i], cdir, path);
            if (s != LP_OK) break;
            sum.cells_run++;
        }
        s = lp_kv_read_file(&sw.rows[2 + i], path);
        if (s == LP_OK) sum.cells_done++;
    }
    /* The table and plots, from whatever is finished (also after an error in a cell). */
    if (sw.rows && sw.rows[0].count) {
        char saved[1024];
        snprintf(saved, sizeof saved, "%s", lp_last_error());
        lp_status s2 = write_outputs(&sw, sum.cells_done, n_cells, &sum.plots);
        if (s != LP_OK) lp_errorf(s, "%s", saved); /* keep the cell's message */
        else s = s2;
    }
    if (s == LP_OK)
        say(&sw, "%d of %d cells done (%d run now, %d skipped as finished); %s/results.md", sum.cells_done, n_cells,
            sum.cells_run, sum.cells_skipped, out_dir);
    for (int i = 0; sw.rows && i < sw.n_rows; i++) lp_kv_free(&sw.rows[i]);
    lp_free(sw.rows);
    lp_free(cells);
    lp_kv_free(&sw.cfg);
    if (summary) *summary = sum;
    return s;
}

lp_status lp_sweep_remeasure(const lp_kv *config, const char *out_dir, int rounds, const lp_sweep_opts *o,
                             lp_sweep_summary *summary) {
    lp_sweep_summary sum;
    memset(&sum, 0, sizeof sum);
    lp_sweep_opts dflt = {0};
    if (!o) o = &dflt;
    if (rounds < 1) return lp_errorf(LP_ERR_ARG, "latency re-measurement: rounds must be >= 1");
    sweep sw;
    memset(&sw, 0, sizeof sw);
    sw.o = o;
    lp_sweep_cell *cells = NULL;
    int n_cells = 0;
    double *best = NULL;
    lp_status s = sweep_open(&sw, config, out_dir, &sum, &cells, &n_cells);
    if (s == LP_OK) out_dir = sw.dir;
    char path[4096], cpath[4096];
    if (s == LP_OK && !file_exists(path_in(out_dir, "cells/baseline/result.txt", path, sizeof path)))
        s = lp_errorf(LP_ERR_ARG, "%s: no finished baseline to measure", out_dir);
    if (s == LP_OK) s = check_or_write_conf(&sw);
    if (s == LP_OK) {
        sw.n_rows = n_cells + 2;
        sw.rows = lp_calloc((size_t)sw.n_rows, sizeof *sw.rows);
        best = lp_malloc((size_t)sw.n_rows * 2, sizeof(double));
        if (!sw.rows || !best) s = LP_ERR_NOMEM;
        for (int i = 0; s == LP_OK && i < sw.n_rows; i++) lp_kv_init(&sw.rows[i]);
    }
    lp_blas_set_threads((int)lp_kv_get_int_or(&sw.cfg, "train.threads", 0));
    path_in(path_in(out_dir, "baseline", cpath, sizeof cpath), "best.ckpt", sw.baseline_ckpt, sizeof sw.baseline_ckpt);
    /* rows: 0 baseline, 1 prior (not a model), 2+i cells */
    if (s == LP_OK) s = lp_kv_read_file(&sw.rows[0], path_in(out_dir, "cells/baseline/result.txt", path, sizeof path));
    if (s == LP_OK && file_exists(path_in(out_dir, "cells/baseline/prior.txt", path, sizeof path)))
        s = lp_kv_read_file(&sw.rows[1], path);
    for (int i = 0; s == LP_OK && i < n_cells; i++) {
        snprintf(path, sizeof path, "%.3000s/cells/%s/result.txt", out_dir, cells[i].name);
        if (file_exists(path)) {
            s = lp_kv_read_file(&sw.rows[2 + i], path);
            sum.cells_done++;
        }
    }
    for (int i = 0; best && i < 2 * sw.n_rows; i++) best[i] = INFINITY;
    for (int r = 0; s == LP_OK && r < rounds; r++) {
        say(&sw, "latency round %d of %d", r + 1, rounds);
        for (int i = 0; s == LP_OK && i < sw.n_rows; i++) {
            if (i == 1 || sw.rows[i].count == 0) continue;
            row_ckpt(&sw, i == 0 ? NULL : &cells[i - 2], cpath, sizeof cpath);
            lp_task *m;
            double b1 = INFINITY, bn = INFINITY;
            if ((s = open_task(&sw, cpath, &m)) != LP_OK) break;
            s = m->ops->latency(m, 1, sw.popt.lat_frames, sw.popt.lat_reps, &b1);
            if (s == LP_OK) s = m->ops->latency(m, sw.popt.lat_batch, sw.popt.lat_frames, sw.popt.lat_reps, &bn);
            lp_task_free(m);
            best[2 * i] = fmin(best[2 * i], b1);
            best[2 * i + 1] = fmin(best[2 * i + 1], bn);
        }
    }
    for (int i = 0; s == LP_OK && i < sw.n_rows; i++) {
        if (i == 1 || sw.rows[i].count == 0) continue;
        s = lp_kv_setf(&sw.rows[i], "latency_ms_b1", "%.4f", best[2 * i]);
        if (s == LP_OK) s = lp_kv_setf(&sw.rows[i], "latency_ms_bn", "%.4f", best[2 * i + 1]);
        if (s == LP_OK) {
            if (i == 0) path_in(out_dir, "cells/baseline/result.txt", path, sizeof path);
            else snprintf(path, sizeof path, "%.3000s/cells/%s/result.txt", out_dir, cells[i - 2].name);
            s = lp_kv_write_file(&sw.rows[i], path);
        }
    }
    sum.cells_total = n_cells;
    sum.cells_skipped = sum.cells_done;
    if (s == LP_OK) s = write_outputs(&sw, sum.cells_done, n_cells, &sum.plots);
    for (int i = 0; sw.rows && i < sw.n_rows; i++) lp_kv_free(&sw.rows[i]);
    lp_free(sw.rows);
    lp_free(best);
    lp_free(cells);
    lp_kv_free(&sw.cfg);
    if (summary) *summary = sum;
    return s;
}
