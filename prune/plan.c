/* plan: see plan.h. */
#include "prune/plan.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"

void lp_prune_opts_default(lp_prune_opts *o) {
    memset(o, 0, sizeof *o);
    lp_rates_opts_default(&o->rates);
    o->criterion = LP_CRITERION_GM;
    o->steps = LP_STATS_STEPS_ALL;
    o->stats_batches = 20;
    o->seed = 1;
}

/* ---- step 1: response statistics ---- */

static lp_status stats_batch(lp_model *m, lp_tape *tp, const lp_batch *bt, lp_stats_steps steps, lp_stats *st) {
    lp_tape_reset(tp);
    int dx[3] = {bt->B, bt->T, bt->D};
    lp_tensor *x = lp_tape_view(tp, bt->x, NULL, 3, dx);
    if (!x) return LP_ERR_NOMEM;
    lp_model_out out;
    LP_TRY(lp_model_forward(m, tp, x, bt->lengths, NULL, NULL, &out));
    for (int g = 0; g < m->n_groups; g++) {
        const lp_tensor *h = out.group_h[g];
        lp_stats_steps s = steps;
        /* The final state of a reverse direction is the one at t = 0. */
        if (s == LP_STATS_STEPS_LAST && m->groups[g].reverse) s = LP_STATS_STEPS_FIRST;
        LP_TRY(lp_stats_add_seq(&st[g], h->data, bt->B, bt->T, h->dims[2], bt->lengths, s));
    }
    return LP_OK;
}

lp_status lp_prune_stats(lp_model *m, const lp_batcher_config *bc, int batches, lp_stats_steps steps, lp_stats *st) {
    for (int g = 0; g < m->n_groups; g++) {
        lp_status s = lp_stats_init(&st[g], m->groups[g].units, 0);
        if (s != LP_OK) {
            for (int j = 0; j < g; j++) lp_stats_free(&st[j]);
            return s;
        }
    }
    lp_batcher_config c = *bc;
    c.epochs = 1;
    lp_batcher *b = NULL;
    lp_tape tp;
    lp_status s = lp_batcher_new(&b, &c);
    if (s == LP_OK) s = lp_tape_init(&tp, (size_t)64 << 20);
    else memset(&tp, 0, sizeof tp);
    lp_tape_set_grad(&tp, 0);
    const lp_batch *bt;
    int done = 0;
    while (s == LP_OK && (batches <= 0 || done < batches) && (s = lp_batcher_next(b, &bt)) == LP_OK) {
        s = stats_batch(m, &tp, bt, steps, st);
        done++;
    }
    if (s == LP_ERR_EOF) s = LP_OK;
    if (s == LP_OK && done == 0) s = lp_errorf(LP_ERR_ARG, "pruning statistics: the training data holds no batch");
    lp_tape_free(&tp);
    lp_batcher_free(b);
    if (s != LP_OK)
        for (int g = 0; g < m->n_groups; g++) lp_stats_free(&st[g]);
    return s;
}

/* ---- steps 2 and 3 ---- */

static lp_status group_alloc(lp_prune_group_plan *gp, const lp_unit_group *g) {
    memset(gp, 0, sizeof *gp);
    snprintf(gp->name, sizeof gp->name, "%s", g->name);
    gp->h = g->units;
    gp->score = lp_calloc((size_t)gp->h, sizeof(double));
    gp->kept = lp_calloc((size_t)gp->h, sizeof(int));
    return gp->score && gp->kept ? LP_OK : LP_ERR_NOMEM;
}

/* Score the units of group g and keep the k best. */
static lp_status select_units(const lp_unit_group *g, const lp_criteria_opts *co, lp_prune_group_plan *gp) {
    int h = g->units, f = g->input_dim, d = lp_criteria_unit_dim(f, h, 0);
    float *u = lp_malloc((size_t)h * (size_t)d, sizeof(float));
    if (!u) return LP_ERR_NOMEM;
    lp_status s = lp_criteria_unit_vectors(g->w_ih->data, g->w_hh->data, NULL, h, f, u);
    if (s == LP_OK) s = lp_criteria_score(co, u, h, d, gp->score);
    if (s == LP_OK) s = lp_criteria_select(gp->score, h, gp->k, gp->kept);
    lp_free(u);
    return s == LP_OK ? LP_OK : lp_error_wrap(s, "group %s", g->name);
}

lp_status lp_prune_plan_make(const lp_model *m, lp_stats *st, const lp_prune_opts *o, lp_prune_plan *p) {
    memset(p, 0, sizeof *p);
    p->opts = *o;
    p->n_groups = m->n_groups;
    LP_TRY(lp_rates_opts_check(&o->rates));
    if (!st && o->rates.rule == LP_RATE_RULE_EIGEN)
        return lp_errorf(LP_ERR_ARG, "the eigen rate rule needs response statistics");
    lp_rate_group rg[LP_MAX_GROUPS];
    memset(rg, 0, sizeof rg);
    lp_status s = LP_OK;
    for (int g = 0; g < m->n_groups && s == LP_OK; g++) {
        int h = m->groups[g].units;
        s = group_alloc(&p->g[g], &m->groups[g]);
        if (s != LP_OK) break;
        if (st) {
            double *mean = lp_malloc((size_t)h, sizeof(double)), *cov = lp_malloc((size_t)h * (size_t)h, sizeof(double));
            p->g[g].n_responses = lp_stats_count(&st[g]);
            s = mean && cov ? lp_stats_finish(&st[g], mean, cov) : LP_ERR_NOMEM;
            if (s == LP_OK) s = lp_rate_group_from_cov(&rg[g], cov, h);
            p->g[g].mean = mean; /* kept for surgery's compensation (freed with the plan) */
            lp_free(cov);
        } else {
            s = lp_rate_group_from_eig(&rg[g], NULL, h);
        }
    }
    if (s == LP_OK) s = lp_rates_assign(rg, m->n_groups, &o->rates, &p->rates);
    lp_rng rng;
    lp_rng_init(&rng, o->seed, LP_RNG_STREAM_PRUNE);
    lp_criteria_opts co;
    lp_criteria_opts_default(&co);
    co.criterion = o->criterion;
    co.rng = &rng;
    for (int g = 0; g < m->n_groups && s == LP_OK; g++) {
        lp_prune_group_plan *gp = &p->g[g];
        gp->k = rg[g].k;
        gp->tau = rg[g].tau;
        gp->rate = rg[g].rate;
        gp->energy_kept = rg[g].energy_kept;
        if (rg[g].eig) {
            gp->eig = lp_malloc((size_t)gp->h, sizeof(double));
            if (!gp->eig) s = LP_ERR_NOMEM;
            else memcpy(gp->eig, rg[g].eig, (size_t)gp->h * sizeof(double));
        }
        if (s == LP_OK) s = select_units(&m->groups[g], &co, gp);
    }
    for (int g = 0; g < m->n_groups; g++) lp_rate_group_free(&rg[g]);
    if (s != LP_OK) lp_prune_plan_free(p);
    return s;
}

lp_status lp_prune_plan_from_kept(const lp_model *m, int *const *kept, const int *n_kept, lp_prune_plan *p) {
    memset(p, 0, sizeof *p);
    lp_prune_opts_default(&p->opts);
    p->n_groups = m->n_groups;
    int total = 0, kept_total = 0;
    double rate_sum = 0;
    for (int g = 0; g < m->n_groups; g++) {
        lp_prune_group_plan *gp = &p->g[g];
        lp_status s = group_alloc(gp, &m->groups[g]);
        if (s != LP_OK) {
            lp_prune_plan_free(p);
            return s;
        }
        if (n_kept[g] < 1 || n_kept[g] > gp->h) {
            lp_prune_plan_free(p);
            return lp_errorf(LP_ERR_ARG, "group %s: %d kept units of %d", gp->name, n_kept[g], gp->h);
        }
        gp->k = n_kept[g];
        memcpy(gp->kept, kept[g], (size_t)gp->k * sizeof(int));
        gp->rate = 1.0 - (double)gp->k / gp->h;
        gp->tau = NAN;
        gp->energy_kept = NAN;
        total += gp->h;
        kept_total += gp->k;
        rate_sum += gp->rate;
    }
    p->rates.tau = NAN;
    p->rates.target_rate = -1;
    p->rates.mean_rate = rate_sum / m->n_groups;
    p->rates.kept = kept_total;
    p->rates.total = total;
    return LP_OK;
}

void lp_prune_plan_free(lp_prune_plan *p) {
    for (int g = 0; g < p->n_groups; g++) {
        lp_free(p->g[g].eig);
        lp_free(p->g[g].mean);
        lp_free(p->g[g].score);
        lp_free(p->g[g].kept);
    }
    memset(p, 0, sizeof *p);
}

lp_status lp_prune_plan_to_kv(const lp_prune_plan *p, const lp_model *before, lp_kv *kv) {
    char sizes[512] = "";
    size_t off = 0;
    for (int g = 0; g < p->n_groups && off < sizeof sizes; g++)
        off += (size_t)snprintf(sizes + off, sizeof sizes - off, "%s%s %d->%d", g ? ", " : "", p->g[g].name,
                                before->groups[g].units, p->g[g].k);
    LP_TRY(lp_kv_set(kv, "plan.summary", sizes));
    LP_TRY(lp_kv_set(kv, "plan.rule", lp_rate_rule_name(p->opts.rates.rule)));
    LP_TRY(lp_kv_set(kv, "plan.criterion", lp_criterion_name(p->opts.criterion)));
    LP_TRY(lp_kv_set(kv, "plan.stats_steps", lp_stats_steps_name(p->opts.steps)));
    LP_TRY(lp_kv_set(kv, "plan.compensate", p->opts.compensate ? "mean" : "none"));
    LP_TRY(lp_kv_set_double(kv, "plan.tau", p->rates.tau));
    LP_TRY(lp_kv_set_double(kv, "plan.target_rate", p->rates.target_rate));
    LP_TRY(lp_kv_set_double(kv, "plan.mean_rate", p->rates.mean_rate));
    return LP_OK;
}
