/* plan: see plan.h. */
#include "prune/plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/dist.h"
#include "core/kv.h"

void lp_prune_opts_default(lp_prune_opts *o) {
    memset(o, 0, sizeof *o);
    lp_rates_opts_default(&o->rates);
    o->criterion = LP_CRITERION_GM;
    o->steps = LP_STATS_STEPS_ALL;
    o->stats_batches = 20;
    o->seed = 1;
}

int lp_prune_opts_need_stats(const lp_prune_opts *o) {
    return o->rates.rule == LP_RATE_RULE_EIGEN || o->stats_batches > 0 || o->compensate;
}

/* ---- per-group rates or sizes (rule given) ---- */

static int group_index(const lp_task *t, const char *name) {
    for (int g = 0; g < t->n_groups; g++)
        if (!strcmp(t->groups[g].name, name)) return g;
    return -1;
}

/* "fw, bw, lstm2": the names a spec may use. */
static const char *group_names(const lp_task *t, char *buf, size_t n) {
    size_t off = 0;
    buf[0] = 0;
    for (int g = 0; g < t->n_groups && off < n; g++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s", g ? ", " : "", t->groups[g].name);
    return buf;
}

/* keep[g] from the value text v (a rate or a size) of group g. */
static lp_status given_value(const lp_task *t, int g, const char *v, int units, int *keep) {
    const lp_unit_group *gr = &t->groups[g];
    char *end;
    const double x = strtod(v, &end);
    while (*end == ' ' || *end == '\t') end++;
    if (end == v || *end) return lp_errorf(LP_ERR_ARG, "group %s: '%s' is not a number", gr->name, v);
    if (units) {
        if (!(x >= 1 && x <= gr->units) || x != floor(x))
            return lp_errorf(LP_ERR_ARG, "group %s: %s units to keep (a whole number in [1, %d])", gr->name, v, gr->units);
        keep[g] = (int)x;
    } else {
        if (!(x >= 0 && x < 1)) return lp_errorf(LP_ERR_ARG, "group %s: rate %s is not in [0, 1)", gr->name, v);
        keep[g] = lp_rates_keep_of_rate(gr->units, x);
    }
    if (gr->fixed && keep[g] != gr->units)
        return lp_errorf(LP_ERR_ARG, "group %s is kept whole (its units are also the dimensions of an input table): "
                                     "give it rate 0 or all %d units", gr->name, gr->units);
    return LP_OK;
}

lp_status lp_prune_given_parse(const lp_task *t, const char *spec, int units, int *keep) {
    char buf[1024], names[512];
    if (strlen(spec) >= sizeof buf) return lp_errorf(LP_ERR_ARG, "per-group values: the list is too long");
    snprintf(buf, sizeof buf, "%s", spec);
    for (int g = 0; g < t->n_groups; g++) keep[g] = t->groups[g].units;
    int n = 0, named = -1, seen[LP_MAX_GROUPS] = {0};
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save), n++) {
        while (*item == ' ' || *item == '\t') item++;
        char *eq = strchr(item, '=');
        if (named >= 0 && named != (eq != NULL))
            return lp_errorf(LP_ERR_ARG, "per-group values: mix of NAME=V and plain values in '%s'", spec);
        named = eq != NULL;
        int g = n;
        if (eq) {
            char *e = eq;
            while (e > item && (e[-1] == ' ' || e[-1] == '\t')) e--;
            *e = 0;
            if ((g = group_index(t, item)) < 0)
                return lp_errorf(LP_ERR_ARG, "per-group values: no unit group '%s' (the groups: %s)", item,
                                 group_names(t, names, sizeof names));
            if (seen[g]++) return lp_errorf(LP_ERR_ARG, "per-group values: group %s given twice", item);
        } else if (g >= t->n_groups) {
            return lp_errorf(LP_ERR_ARG, "per-group values: more values than the %d unit groups (%s)", t->n_groups,
                             group_names(t, names, sizeof names));
        }
        LP_TRY(given_value(t, g, eq ? eq + 1 : item, units, keep));
    }
    if (n == 0) return lp_errorf(LP_ERR_ARG, "per-group values: the list is empty");
    if (!named && n != t->n_groups)
        return lp_errorf(LP_ERR_ARG, "per-group values: %d values for %d unit groups (%s; or name them: NAME=V)", n,
                         t->n_groups, group_names(t, names, sizeof names));
    return LP_OK;
}

lp_status lp_prune_given_read(const lp_task *t, const char *path, int *keep) {
    lp_kv kv;
    lp_kv_init(&kv);
    lp_status s = lp_kv_read_file(&kv, path);
    char spec[1024];
    size_t off = 0;
    spec[0] = 0;
    for (int i = 0; s == LP_OK && i < kv.count; i++) {
        if (t->ops->units_key && !strcmp(kv.keys[i], t->ops->units_key)) continue; /* the sizes the rates give */
        if (group_index(t, kv.keys[i]) < 0) {
            char names[512];
            s = lp_errorf(LP_ERR_ARG, "%s: '%s' names no unit group of the model (the groups: %s)", path, kv.keys[i],
                          group_names(t, names, sizeof names));
        } else if (off < sizeof spec) {
            off += (size_t)snprintf(spec + off, sizeof spec - off, "%s%s=%s", off ? "," : "", kv.keys[i], kv.vals[i]);
        }
    }
    if (s == LP_OK && !spec[0]) s = lp_errorf(LP_ERR_ARG, "%s: no 'GROUP = rate' line", path);
    if (s == LP_OK && off >= sizeof spec) s = lp_errorf(LP_ERR_ARG, "%s: too many rates", path);
    if (s == LP_OK) s = lp_prune_given_parse(t, spec, 0, keep);
    if (s != LP_OK && s != LP_ERR_NOMEM && !strstr(lp_last_error(), path)) s = lp_error_wrap(s, "%s", path);
    lp_kv_free(&kv);
    return s;
}

/* ---- step 1: response statistics ---- */

typedef struct {
    const lp_task *t;
    lp_stats_steps steps;
    lp_stats *st;
    int batches;
} stats_ctx;

static lp_status add_responses(void *user, const lp_task_responses *r) {
    stats_ctx *c = user;
    for (int g = 0; g < c->t->n_groups; g++) {
        const lp_tensor *h = r->h[g];
        lp_stats_steps s = c->steps;
        /* The final state of a reverse direction is the one at t = 0. */
        if (s == LP_STATS_STEPS_LAST && c->t->groups[g].reverse) s = LP_STATS_STEPS_FIRST;
        LP_TRY(lp_stats_add_seq(&c->st[g], h->data, r->B, r->T, h->dims[2], r->lengths, s));
    }
    c->batches++;
    return LP_OK;
}

/* Every rank's accumulator of group g, merged in rank order into st (on every rank). */
static lp_status merge_ranks(lp_stats *st) {
    const size_t n = lp_stats_packed_size(st->h);
    const int h = st->h, ranks = lp_dist_size();
    double *mine = lp_malloc(n, sizeof *mine), *all = lp_malloc(n * (size_t)ranks, sizeof *all);
    lp_status s = mine && all ? LP_OK : LP_ERR_NOMEM;
    if (s == LP_OK) lp_stats_pack(st, mine);
    if (s == LP_OK) s = lp_dist_allgather_double(mine, n, all);
    if (s == LP_OK) {
        lp_stats_free(st);
        s = lp_stats_init(st, h, 0);
    }
    for (int r = 0; r < ranks && s == LP_OK; r++) s = lp_stats_merge_packed(st, all + (size_t)r * n);
    lp_free(mine);
    lp_free(all);
    return s;
}

lp_status lp_prune_stats_split(lp_task *t, int batches, lp_stats_steps steps, int split, lp_stats *st) {
    memset(st, 0, (size_t)t->n_groups * sizeof *st);
    lp_status s = LP_OK;
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) s = lp_stats_init(&st[g], t->groups[g].units, 0);
    stats_ctx c = {t, steps, st, 0};
    const int ranks = split ? lp_dist_size() : 1;
    if (s == LP_OK) s = lp_task_responses_part(t, batches, ranks > 1 ? lp_dist_rank() : 0, ranks, add_responses, &c);
    for (int g = 0; g < t->n_groups && s == LP_OK && ranks > 1; g++) s = merge_ranks(&st[g]);
    if (s == LP_OK && (ranks > 1 ? lp_stats_count(&st[0]) == 0 : c.batches == 0))
        s = lp_errorf(LP_ERR_ARG, "pruning statistics: the training data holds no batch");
    if (s != LP_OK)
        for (int g = 0; g < t->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

lp_status lp_prune_stats(lp_task *t, int batches, lp_stats_steps steps, lp_stats *st) {
    return lp_prune_stats_split(t, batches, steps, 0, st);
}

/* ---- plans ---- */

/* Every group keeps all its units until the rates say otherwise. */
static lp_status plan_start(const lp_task *t, lp_prune_plan *p) {
    p->n_groups = t->n_groups;
    for (int g = 0; g < t->n_groups; g++) {
        lp_prune_group_plan *gp = &p->g[g];
        const lp_unit_group *gr = &t->groups[g];
        snprintf(gp->name, sizeof gp->name, "%s", gr->name);
        gp->h = gp->k = gr->units;
        gp->fixed = gr->fixed;
        gp->tau = gp->energy_kept = NAN;
        if (!(gp->kept = lp_malloc((size_t)gp->h, sizeof(int)))) return LP_ERR_NOMEM;
        for (int j = 0; j < gp->h; j++) gp->kept[j] = j;
        if (gr->fixed)
            snprintf(p->note, sizeof p->note, "%s kept whole: its units are also the dimensions of an input table",
                     gr->name);
    }
    return LP_OK;
}

/* The spectrum and mean of every group (fixed ones too, for the report) from its statistics. */
static lp_status plan_spectra(lp_stats *st, lp_prune_plan *p) {
    lp_status s = LP_OK;
    for (int g = 0; g < p->n_groups && s == LP_OK; g++) {
        lp_prune_group_plan *gp = &p->g[g];
        const int h = gp->h;
        double *cov = lp_malloc((size_t)h * (size_t)h, sizeof *cov);
        gp->eig = lp_malloc((size_t)h, sizeof(double));
        gp->mean = lp_malloc((size_t)h, sizeof(double)); /* kept for compensation (freed with the plan) */
        gp->var = lp_malloc((size_t)h, sizeof(double)); /* for lstmprune trace's table of units */
        gp->n_responses = lp_stats_count(&st[g]);
        s = cov && gp->eig && gp->mean && gp->var ? lp_stats_finish(&st[g], gp->mean, cov) : LP_ERR_NOMEM;
        for (int j = 0; s == LP_OK && j < h; j++) gp->var[j] = cov[(size_t)j * (size_t)h + (size_t)j];
        if (s == LP_OK) s = lp_rates_eigenvalues(cov, h, gp->eig, NULL);
        if (s != LP_OK) s = lp_error_wrap(s, "group %s", gp->name);
        lp_free(cov);
    }
    return s;
}

/* Step 2: keep counts of the prunable groups (idx[0..np)) from their spectra. */
static lp_status plan_rates(const lp_prune_opts *o, const int *idx, int np, int have_eig, lp_prune_plan *p) {
    lp_rate_group rg[LP_MAX_GROUPS];
    memset(rg, 0, sizeof rg);
    lp_status s = LP_OK;
    for (int i = 0; i < np && s == LP_OK; i++) {
        s = lp_rate_group_from_eig(&rg[i], have_eig ? p->g[idx[i]].eig : NULL, p->g[idx[i]].h);
        rg[i].curve = o->curves ? &o->curves[idx[i]] : NULL;
        rg[i].want_k = o->given_k[idx[i]] ? o->given_k[idx[i]] : rg[i].h;
    }
    if (s == LP_OK) s = lp_rates_assign(rg, np, &o->rates, &p->rates);
    for (int i = 0; i < np && s == LP_OK; i++) {
        lp_prune_group_plan *gp = &p->g[idx[i]];
        gp->k = rg[i].k;
        gp->tau = rg[i].tau;
        gp->rate = rg[i].rate;
        gp->energy_kept = rg[i].energy_kept;
    }
    for (int i = 0; i < np; i++) lp_rate_group_free(&rg[i]);
    return s;
}

/* Step 3: score every unit of every group (fixed ones too, for the report) and keep the k best. */
static lp_status plan_select(const lp_task *t, const lp_prune_opts *o, lp_prune_plan *p) {
    lp_rng rng;
    lp_rng_init(&rng, o->seed, LP_RNG_STREAM_PRUNE);
    lp_criteria_opts co;
    lp_criteria_opts_default(&co);
    co.criterion = o->criterion;
    co.rng = &rng;
    lp_status s = LP_OK;
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) {
        const lp_unit_group *gr = &t->groups[g];
        lp_prune_group_plan *gp = &p->g[g];
        const int h = gr->units, f = gr->input_dim, d = lp_criteria_unit_dim(f, h, 0);
        float *u = lp_malloc((size_t)h * (size_t)d, sizeof *u);
        gp->score = lp_malloc((size_t)h, sizeof(double));
        s = u && gp->score ? lp_criteria_unit_vectors(gr->w_ih->data, gr->w_hh->data, NULL, h, f, u) : LP_ERR_NOMEM;
        if (s == LP_OK) s = lp_criteria_score(&co, u, h, d, gp->score);
        if (s == LP_OK && !gp->fixed) s = lp_criteria_select(gp->score, h, gp->k, gp->kept);
        if (s != LP_OK) s = lp_error_wrap(s, "group %s", gr->name);
        lp_free(u);
    }
    return s;
}

lp_status lp_prune_plan_make(const lp_task *t, lp_stats *st, const lp_prune_opts *o, lp_prune_plan *p) {
    memset(p, 0, sizeof *p);
    LP_TRY(lp_rates_opts_check(&o->rates));
    int np = 0, idx[LP_MAX_GROUPS];
    for (int g = 0; g < t->n_groups; g++)
        if (!t->groups[g].fixed) idx[np++] = g;
    if (np == 0) return lp_errorf(LP_ERR_ARG, "nothing to prune: every unit group is kept whole");
    if (!st && o->rates.rule == LP_RATE_RULE_EIGEN)
        return lp_errorf(LP_ERR_ARG, "the eigen rate rule needs response statistics");
    if (!o->curves && o->rates.rule == LP_RATE_RULE_SENSITIVITY)
        return lp_errorf(LP_ERR_ARG, "the sensitivity rate rule needs the groups' sensitivity curves");
    p->opts = *o;
    snprintf(p->method, sizeof p->method, "%s+%s", lp_rate_rule_name(o->rates.rule), lp_criterion_name(o->criterion));
    lp_status s = plan_start(t, p);
    if (s == LP_OK && st) s = plan_spectra(st, p);
    if (s == LP_OK) s = plan_rates(o, idx, np, st != NULL, p);
    if (s == LP_OK) s = plan_select(t, o, p);
    if (s != LP_OK) lp_prune_plan_free(p);
    return s;
}

lp_status lp_prune_plan_run(lp_task *t, const lp_prune_opts *o, lp_prune_plan *p) {
    lp_stats st[LP_MAX_GROUPS];
    const int need = lp_prune_opts_need_stats(o);
    if (need) LP_TRY(lp_prune_stats_split(t, o->stats_batches, o->steps, o->stats_split, st));
    lp_status s = lp_prune_plan_make(t, need ? st : NULL, o, p);
    if (need)
        for (int g = 0; g < t->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

lp_status lp_prune_plan_from_kept(const lp_task *t, int *const *kept, const int *n_kept, lp_prune_plan *p) {
    memset(p, 0, sizeof *p);
    lp_prune_opts_default(&p->opts);
    snprintf(p->method, sizeof p->method, "kept lists");
    lp_status s = plan_start(t, p);
    double rate_sum = 0;
    int np = 0;
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) {
        lp_prune_group_plan *gp = &p->g[g];
        if (n_kept[g] < 1 || n_kept[g] > gp->h) {
            s = lp_errorf(LP_ERR_ARG, "group %s: %d kept units of %d", gp->name, n_kept[g], gp->h);
            break;
        }
        gp->k = n_kept[g];
        memcpy(gp->kept, kept[g], (size_t)gp->k * sizeof(int));
        gp->rate = 1.0 - (double)gp->k / gp->h;
        if (gp->fixed) continue;
        rate_sum += gp->rate;
        np++;
        p->rates.total += gp->h;
        p->rates.kept += gp->k;
    }
    if (s == LP_OK) s = lp_prune_plan_check(t, p);
    if (s != LP_OK) {
        lp_prune_plan_free(p);
        return s;
    }
    p->rates.tau = p->rates.budget = NAN;
    p->rates.target_rate = -1;
    p->rates.mean_rate = np ? rate_sum / np : 0;
    return LP_OK;
}

lp_status lp_prune_plan_check(const lp_task *t, const lp_prune_plan *p) {
    if (p->n_groups != t->n_groups)
        return lp_errorf(LP_ERR_ARG, "the plan has %d unit groups, the model %d", p->n_groups, t->n_groups);
    for (int g = 0; g < p->n_groups; g++) {
        const lp_prune_group_plan *gp = &p->g[g];
        const int h = t->groups[g].units;
        if (gp->h != h)
            return lp_errorf(LP_ERR_ARG, "group %s has %d units, the plan was made for %d", t->groups[g].name, h, gp->h);
        if (!gp->kept || gp->k < 1 || gp->k > h)
            return lp_errorf(LP_ERR_ARG, "group %s: %d kept units (must be in [1, %d])", gp->name, gp->k, h);
        if (t->groups[g].fixed && gp->k != h)
            return lp_errorf(LP_ERR_ARG, "group %s is kept whole and cannot lose units (%d of %d kept)", gp->name, gp->k,
                             h);
        for (int i = 0; i < gp->k; i++)
            if (gp->kept[i] < 0 || gp->kept[i] >= h || (i > 0 && gp->kept[i] <= gp->kept[i - 1]))
                return lp_errorf(LP_ERR_ARG, "group %s: kept[%d] = %d is out of range or not ascending", gp->name, i,
                                 gp->kept[i]);
    }
    return LP_OK;
}

int lp_prune_plan_kept_total(const lp_prune_plan *p) {
    int n = 0;
    for (int g = 0; g < p->n_groups; g++) n += p->g[g].k;
    return n;
}

void lp_prune_plan_free(lp_prune_plan *p) {
    for (int g = 0; g < p->n_groups; g++) {
        lp_free(p->g[g].eig);
        lp_free(p->g[g].mean);
        lp_free(p->g[g].var);
        lp_free(p->g[g].score);
        lp_free(p->g[g].kept);
    }
    memset(p, 0, sizeof *p);
}

lp_status lp_prune_plan_to_kv(const lp_prune_plan *p, lp_kv *kv) {
    char sizes[512] = "";
    size_t off = 0;
    for (int g = 0; g < p->n_groups && off < sizeof sizes; g++)
        off += (size_t)snprintf(sizes + off, sizeof sizes - off, "%s%s %d->%d", g ? ", " : "", p->g[g].name, p->g[g].h,
                                p->g[g].k);
    LP_TRY(lp_kv_set(kv, "plan.summary", sizes));
    LP_TRY(lp_kv_set(kv, "plan.rule", lp_rate_rule_name(p->opts.rates.rule)));
    LP_TRY(lp_kv_set(kv, "plan.criterion", lp_criterion_name(p->opts.criterion)));
    LP_TRY(lp_kv_set(kv, "plan.stats_steps", lp_stats_steps_name(p->opts.steps)));
    LP_TRY(lp_kv_set(kv, "plan.compensate", p->opts.compensate ? "mean" : "none"));
    LP_TRY(lp_kv_set_double(kv, "plan.tau", p->rates.tau));
    if (p->opts.rates.rule == LP_RATE_RULE_SENSITIVITY) LP_TRY(lp_kv_set_double(kv, "plan.budget", p->rates.budget));
    LP_TRY(lp_kv_set_double(kv, "plan.target_rate", p->rates.target_rate));
    LP_TRY(lp_kv_set_double(kv, "plan.mean_rate", p->rates.mean_rate));
    return LP_OK;
}
