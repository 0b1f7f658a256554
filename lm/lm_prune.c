/* lm_prune: statistics, plan, masking, shrinking, ISS, report and the whole pruning job for the word-level
 * LM (contract in lm/lm_prune.h; the method in docs/METHOD.md "Pruning" and "Surgery and ISS"). */
#include "lm/lm_prune.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/clock.h"
#include "core/fileio.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/tape.h"
#include "lm/lm_train.h"
#include "model/runcfg.h"

#define LM_TAPE_BLOCK ((size_t)32 << 20)

/* ---- groups ---------------------------------------------------------------------------------------- */

void lp_lm_prune_groups(const lp_lm *m, lp_unit_group *groups) {
    memcpy(groups, m->groups, (size_t)m->cfg.layers * sizeof *groups);
}

static int is_prunable(const lp_lm *m, int l) { return !m->groups[l].fixed; }

/* ---- options and plans ----------------------------------------------------------------------------- */

void lp_lm_prune_opts_default(lp_lm_prune_opts *o) {
    memset(o, 0, sizeof *o);
    lp_rates_opts_default(&o->rates);
    o->criterion = LP_CRITERION_GM;
    o->stats_windows = 0;
    o->stats_batch = 20;
    o->stats_bptt = 35;
    o->seed = 1;
}

void lp_lm_prune_plan_free(lp_lm_prune_plan *p) {
    for (int l = 0; l < p->n_groups; l++) {
        lp_free(p->g[l].eig);
        lp_free(p->g[l].mean);
        lp_free(p->g[l].score);
        lp_free(p->g[l].kept);
    }
    memset(p, 0, sizeof *p);
}

static lp_status plan_start(const lp_lm *m, lp_lm_prune_plan *p) {
    p->n_groups = m->cfg.layers;
    for (int l = 0; l < m->cfg.layers; l++) {
        lp_lm_prune_group *g = &p->g[l];
        snprintf(g->name, sizeof g->name, "%s", m->groups[l].name);
        g->h = m->groups[l].units;
        g->k = g->h;
        g->prunable = is_prunable(m, l);
        g->tau = NAN;
        g->rate = 0;
        g->energy_kept = NAN;
        g->kept = lp_malloc((size_t)g->h, sizeof(int));
        if (!g->kept) return LP_ERR_NOMEM;
        for (int j = 0; j < g->h; j++) g->kept[j] = j;
    }
    if (m->cfg.tied)
        snprintf(p->note, sizeof p->note, "%s kept whole: with tied embeddings its units are embedding dimensions",
                 m->groups[m->cfg.layers - 1].name);
    return LP_OK;
}

/* The plan fits model m: one group per layer, sizes, ascending kept lists, tied layer whole. */
static lp_status plan_check(const lp_lm *m, const lp_lm_prune_plan *p) {
    if (p->n_groups != m->cfg.layers)
        return lp_errorf(LP_ERR_ARG, "lm prune: the plan has %d layers, the model %d", p->n_groups, m->cfg.layers);
    for (int l = 0; l < p->n_groups; l++) {
        const lp_lm_prune_group *g = &p->g[l];
        const int H = m->groups[l].units;
        if (g->h != H)
            return lp_errorf(LP_ERR_ARG, "lm prune: layer %s has %d units, the plan was made for %d", g->name, H, g->h);
        if (!g->kept || g->k < 1 || g->k > H)
            return lp_errorf(LP_ERR_ARG, "lm prune: layer %s: %d kept units (must be in [1, %d])", g->name, g->k, H);
        if (!is_prunable(m, l) && g->k != H)
            return lp_errorf(LP_ERR_ARG,
                             "lm prune: layer %s feeds the tied embedding table and cannot lose units (%d of %d kept)",
                             g->name, g->k, H);
        for (int i = 0; i < g->k; i++)
            if (g->kept[i] < 0 || g->kept[i] >= H || (i > 0 && g->kept[i] <= g->kept[i - 1]))
                return lp_errorf(LP_ERR_ARG, "lm prune: layer %s: kept[%d] = %d is out of range or not ascending", g->name,
                                 i, g->kept[i]);
    }
    return LP_OK;
}

lp_status lp_lm_prune_plan_from_kept(const lp_lm *m, int *const *kept, const int *n_kept, lp_lm_prune_plan *p) {
    memset(p, 0, sizeof *p);
    lp_lm_prune_opts_default(&p->opts);
    lp_status s = plan_start(m, p);
    double rate_sum = 0;
    int np = 0, total = 0, kept_total = 0;
    for (int l = 0; s == LP_OK && l < m->cfg.layers; l++) {
        lp_lm_prune_group *g = &p->g[l];
        if (n_kept[l] < 1 || n_kept[l] > g->h) {
            s = lp_errorf(LP_ERR_ARG, "lm prune: layer %s: %d kept units of %d", g->name, n_kept[l], g->h);
            break;
        }
        g->k = n_kept[l];
        memcpy(g->kept, kept[l], (size_t)g->k * sizeof(int));
        g->rate = 1.0 - (double)g->k / g->h;
        if (g->prunable) {
            rate_sum += g->rate;
            np++;
            total += g->h;
            kept_total += g->k;
        }
    }
    if (s == LP_OK) s = plan_check(m, p);
    if (s != LP_OK) {
        lp_lm_prune_plan_free(p);
        return s;
    }
    p->rates.tau = NAN;
    p->rates.target_rate = -1;
    p->rates.mean_rate = np ? rate_sum / np : 0;
    p->rates.kept = kept_total;
    p->rates.total = total;
    snprintf(p->method, sizeof p->method, "kept lists");
    return LP_OK;
}

/* ---- statistics ------------------------------------------------------------------------------------ */

lp_status lp_lm_prune_stats(lp_lm *m, const int32_t *ids, size_t n, int batch, int bptt, int windows, lp_stats *st) {
    const int L = m->cfg.layers;
    lp_ptb_batcher bt;
    LP_TRY(lp_ptb_batcher_init(&bt, ids, n, batch, bptt, 1));
    for (int l = 0; l < L; l++) memset(&st[l], 0, sizeof st[l]);
    lp_status s = LP_OK;
    for (int l = 0; l < L && s == LP_OK; l++) s = lp_stats_init(&st[l], m->cfg.hidden[l], 0);
    lp_lm_state state;
    memset(&state, 0, sizeof state);
    lp_tape tp;
    memset(&tp, 0, sizeof tp);
    int32_t *x = NULL, *y = NULL;
    if (s == LP_OK) s = lp_lm_state_init(&state, m, batch);
    if (s == LP_OK) s = lp_tape_init(&tp, LM_TAPE_BLOCK);
    if (s == LP_OK) {
        lp_tape_set_grad(&tp, 0);
        x = lp_malloc((size_t)batch * (size_t)bptt, sizeof *x);
        y = lp_malloc((size_t)batch * (size_t)bptt, sizeof *y);
        if (!x || !y) s = LP_ERR_NOMEM;
    }
    const int W = windows > 0 && windows < bt.windows ? windows : bt.windows;
    for (int w = 0; w < W && s == LP_OK; w++) {
        lp_tape_reset(&tp);
        const int t = lp_ptb_batcher_window(&bt, w, x, y);
        lp_lm_out out;
        s = lp_lm_forward(m, &tp, x, NULL, batch, t, &state, NULL, &out);
        // group_h[l] is [B,t,H_l]: every step of every stream is a response
        for (int l = 0; l < L && s == LP_OK; l++)
            s = lp_stats_add_seq(&st[l], out.group_h[l]->data, batch, t, m->cfg.hidden[l], NULL, LP_STATS_STEPS_ALL);
        if (s != LP_OK) s = lp_error_wrap(s, "lm prune statistics: window %d", w + 1);
    }
    lp_free(x);
    lp_free(y);
    lp_tape_free(&tp);
    lp_lm_state_free(&state);
    if (s != LP_OK)
        for (int l = 0; l < L; l++) lp_stats_free(&st[l]);
    return s;
}

/* ---- plan ------------------------------------------------------------------------------------------ */

lp_status lp_lm_prune_plan_make(const lp_lm *m, lp_stats *st, const lp_lm_prune_opts *o, lp_lm_prune_plan *p) {
    memset(p, 0, sizeof *p);
    LP_TRY(lp_rates_opts_check(&o->rates));
    const int L = m->cfg.layers;
    int np = 0, idx[LP_LM_MAX_LAYERS];
    for (int l = 0; l < L; l++)
        if (is_prunable(m, l)) idx[np++] = l;
    if (np == 0)
        return lp_errorf(LP_ERR_ARG, "lm prune: nothing to prune: the only LSTM layer feeds the tied embedding table");
    if (o->rates.rule == LP_RATE_RULE_EIGEN && !st)
        return lp_errorf(LP_ERR_ARG, "lm prune: the eigen rule needs response statistics");
    lp_status s = plan_start(m, p);
    p->opts = *o;
    snprintf(p->method, sizeof p->method, "%s+%s", lp_rate_rule_name(o->rates.rule), lp_criterion_name(o->criterion));
    lp_rate_group rg[LP_LM_MAX_LAYERS];
    memset(rg, 0, sizeof rg);
    double *cov = NULL;
    float *u = NULL;
    // Spectra of every layer (the tied one too, for the report); rate groups of the prunable ones.
    for (int l = 0; st && l < L && s == LP_OK; l++) {
        const int H = m->cfg.hidden[l];
        lp_free(cov);
        cov = lp_malloc((size_t)H * (size_t)H, sizeof *cov);
        p->g[l].eig = lp_malloc((size_t)H, sizeof(double));
        p->g[l].mean = lp_malloc((size_t)H, sizeof(double)); /* kept for compensation (freed with the plan) */
        if (!cov || !p->g[l].eig || !p->g[l].mean) {
            s = LP_ERR_NOMEM;
            break;
        }
        p->g[l].n_responses = lp_stats_count(&st[l]);
        s = lp_stats_finish(&st[l], p->g[l].mean, cov);
        if (s == LP_OK) s = lp_rates_eigenvalues(cov, H, p->g[l].eig, NULL);
        if (s != LP_OK) s = lp_error_wrap(s, "lm prune: layer %s", p->g[l].name);
    }
    for (int i = 0; i < np && s == LP_OK; i++) {
        const int l = idx[i];
        s = lp_rate_group_from_eig(&rg[i], st ? p->g[l].eig : NULL, m->cfg.hidden[l]);
    }
    if (s == LP_OK) s = lp_rates_assign(rg, np, &o->rates, &p->rates);
    for (int i = 0; i < np && s == LP_OK; i++) {
        lp_lm_prune_group *g = &p->g[idx[i]];
        g->k = rg[i].k;
        g->tau = rg[i].tau;
        g->rate = rg[i].rate;
        g->energy_kept = rg[i].energy_kept;
    }
    // Selection: score every unit of every layer (kept whole or not, for the report).
    lp_rng rng;
    lp_rng_init(&rng, o->seed, LP_RNG_STREAM_PRUNE);
    lp_criteria_opts co;
    lp_criteria_opts_default(&co);
    co.criterion = o->criterion;
    co.rng = &rng;
    for (int l = 0; l < L && s == LP_OK; l++) {
        const lp_unit_group *gr = &m->groups[l];
        lp_lm_prune_group *g = &p->g[l];
        const int H = gr->units, F = gr->input_dim, D = lp_criteria_unit_dim(F, H, 0);
        lp_free(u);
        u = lp_malloc((size_t)H * (size_t)D, sizeof *u);
        g->score = lp_malloc((size_t)H, sizeof(double));
        if (!u || !g->score) {
            s = LP_ERR_NOMEM;
            break;
        }
        s = lp_criteria_unit_vectors(gr->w_ih->data, gr->w_hh->data, NULL, H, F, u);
        if (s == LP_OK) s = lp_criteria_score(&co, u, H, D, g->score);
        if (s == LP_OK && g->prunable) s = lp_criteria_select(g->score, H, g->k, g->kept);
        if (s != LP_OK) s = lp_error_wrap(s, "lm prune: layer %s", g->name);
    }
    for (int i = 0; i < np; i++) lp_rate_group_free(&rg[i]);
    lp_free(cov);
    lp_free(u);
    if (s != LP_OK) lp_lm_prune_plan_free(p);
    return s;
}

/* ---- surgery --------------------------------------------------------------------------------------- */

lp_status lp_lm_prune_mask(lp_lm *m, const lp_lm_prune_plan *p) {
    LP_TRY(plan_check(m, p));
    lp_unit_group groups[LP_LM_MAX_LAYERS];
    lp_lm_prune_groups(m, groups);
    for (int l = 0; l < p->n_groups; l++) {
        int i = 0;
        for (int j = 0; j < groups[l].units; j++) {
            if (i < p->g[l].k && p->g[l].kept[i] == j) i++;
            else lp_surgery_zero_unit(&groups[l], j);
        }
    }
    return LP_OK;
}

lp_status lp_lm_prune_gather(const lp_lm *in, const lp_lm_prune_plan *p, const lp_lm *out, const float *src, float *dst) {
    LP_TRY(plan_check(in, p));
    if (out->cfg.layers != in->cfg.layers || out->cfg.vocab != in->cfg.vocab || out->cfg.embed != in->cfg.embed ||
        out->cfg.tied != in->cfg.tied || out->params.count != in->params.count)
        return lp_errorf(LP_ERR_ARG, "lm prune: the target model was not built from this model");
    lp_unit_group gi[LP_LM_MAX_LAYERS], go[LP_LM_MAX_LAYERS];
    lp_lm_prune_groups(in, gi);
    lp_lm_prune_groups(out, go);
    int *kept[LP_LM_MAX_LAYERS], n_kept[LP_LM_MAX_LAYERS];
    for (int l = 0; l < p->n_groups; l++) {
        kept[l] = p->g[l].kept;
        n_kept[l] = p->g[l].k;
    }
    return lp_surgery_gather_groups(&in->params, gi, &out->params, go, p->n_groups, kept, n_kept, src, dst);
}

/* in's weights with the removed units' means folded into their readers' biases, in a copy (*c). */
static lp_status compensated_copy(const lp_lm *in, const lp_lm_prune_plan *p, lp_lm *c) {
    LP_TRY(lp_lm_init(c, &in->cfg, 0));
    memcpy(c->params.data, in->params.data, in->params.numel * sizeof(float));
    lp_unit_group groups[LP_LM_MAX_LAYERS];
    lp_lm_prune_groups(c, groups);
    int *kept[LP_LM_MAX_LAYERS], n_kept[LP_LM_MAX_LAYERS];
    const double *mean[LP_LM_MAX_LAYERS];
    for (int l = 0; l < p->n_groups; l++) {
        kept[l] = p->g[l].kept;
        n_kept[l] = p->g[l].k;
        mean[l] = p->g[l].mean;
    }
    lp_status s = lp_surgery_compensate_groups(&c->params, groups, p->n_groups, kept, n_kept, mean);
    if (s != LP_OK) lp_lm_free(c);
    return s;
}

lp_status lp_lm_prune_shrink(const lp_lm *in, const lp_lm_prune_plan *p, lp_lm *out) {
    memset(out, 0, sizeof *out);
    LP_TRY(plan_check(in, p));
    lp_lm copy;
    if (p->opts.compensate) LP_TRY(compensated_copy(in, p, &copy));
    const lp_lm *src = p->opts.compensate ? &copy : in;
    lp_lm_config cfg = in->cfg;
    for (int l = 0; l < p->n_groups; l++) cfg.hidden[l] = p->g[l].k;
    lp_status s = lp_lm_init(out, &cfg, 0); /* the seed is irrelevant: every tensor is overwritten */
    if (s != LP_OK) s = lp_error_wrap(s, "lm prune: building the shrunk model");
    else if ((s = lp_lm_prune_gather(src, p, out, src->params.data, out->params.data)) != LP_OK) lp_lm_free(out);
    if (p->opts.compensate) lp_lm_free(&copy);
    return s;
}

/* ---- ISS ------------------------------------------------------------------------------------------- */

/* Footprint sums of squares of layer l's units, in row-major passes. The footprint of unit j (prune/
 * surgery.h) is its 4 gate rows of w_ih and w_hh, its 4 bias entries, column j of w_hh and column j of the
 * consumer. Walking a column of out.w one unit at a time touches V cache lines per unit (the slow part
 * of a per-unit loop over lp_surgery_footprint); here the columns are summed while reading the matrices
 * row by row. The 4 entries w_hh[qH+j, j] lie in both a row and the column of unit j and are counted once
 * (row sum + column sum − those 4). ss [H] is accumulated in double. */
static void layer_sumsq(const lp_lm *m, int l, double *ss) {
    const lp_unit_group *g = &m->groups[l];
    const int H = g->units, F = g->input_dim;
    for (int j = 0; j < H; j++) ss[j] = 0;
    for (int r = 0; r < 4 * H; r++) { // rows: w_ih [4H,F] and w_hh [4H,H] row r belongs to unit r mod H
        const float *a = g->w_ih->data + (size_t)r * F, *b = g->w_hh->data + (size_t)r * H;
        double acc = (double)g->b->data[r] * g->b->data[r];
        for (int f = 0; f < F; f++) acc += (double)a[f] * a[f];
        for (int h = 0; h < H; h++) acc += (double)b[h] * b[h];
        ss[r % H] += acc;
    }
    for (int r = 0; r < 4 * H; r++) { // columns of w_hh, without the unit's own 4 entries
        const float *b = g->w_hh->data + (size_t)r * H;
        for (int h = 0; h < H; h++)
            if (h != r % H) ss[h] += (double)b[h] * b[h];
    }
    const lp_tensor *c = g->consumer; // [R, Cc]: columns consumer_col0 + j
    const int R = c->dims[0], Cc = c->dims[1];
    for (int r = 0; r < R; r++) {
        const float *row = c->data + (size_t)r * Cc + g->consumer_col0;
        for (int j = 0; j < H; j++) ss[j] += (double)row[j] * row[j];
    }
}

lp_status lp_lm_iss_norms(const lp_lm *m, int l, double *norms) {
    if (l < 0 || l >= m->cfg.layers)
        return lp_errorf(LP_ERR_ARG, "iss: layer %d does not exist (the model has %d)", l, m->cfg.layers);
    layer_sumsq(m, l, norms);
    for (int j = 0; j < m->groups[l].units; j++) norms[j] = sqrt(norms[j]);
    return LP_OK;
}

lp_status lp_lm_iss_penalty(lp_lm *m, double lambda, double *penalty) {
    *penalty = 0;
    if (!(lambda >= 0) || !isfinite(lambda))
        return lp_errorf(LP_ERR_ARG, "iss: lambda must be finite and >= 0, got %g", lambda);
    if (lambda == 0) return LP_OK;
    int hmax = 1;
    for (int l = 0; l < m->cfg.layers; l++) hmax = m->cfg.hidden[l] > hmax ? m->cfg.hidden[l] : hmax;
    double *sc = lp_malloc((size_t)hmax, sizeof *sc);
    if (!sc) return LP_ERR_NOMEM;
    double total = 0;
    lp_status s = LP_OK;
    for (int l = 0; l < m->cfg.layers && s == LP_OK; l++) {
        if (!is_prunable(m, l)) continue;
        const lp_unit_group *g = &m->groups[l];
        const int H = g->units, F = g->input_dim;
        // sc[j] = λ / ||w_j|| (0 for a zero footprint: subgradient 0, no division by zero)
        LP_CHECK(lp_lm_iss_norms(m, l, sc) == LP_OK);
        for (int j = 0; j < H; j++) {
            if (!isfinite(sc[j])) {
                s = lp_errorf(LP_ERR_NUMERIC, "iss: layer %s unit %d: weight norm is %g", g->name, j, sc[j]);
                break;
            }
            total += sc[j];
            sc[j] = sc[j] > 0 ? lambda / sc[j] : 0;
        }
        if (s != LP_OK) break;
        // ∂Ω/∂w = λ w / ||w_j|| for every element of footprint j; w_hh[r, h] is in unit r mod H's rows and in
        // unit h's column (once when they are the same unit)
        for (int r = 0; r < 4 * H; r++) {
            const double rs = sc[r % H];
            const float *a = g->w_ih->data + (size_t)r * F, *b = g->w_hh->data + (size_t)r * H;
            float *da = g->w_ih->grad + (size_t)r * F, *db = g->w_hh->grad + (size_t)r * H;
            g->b->grad[r] += (float)(rs * g->b->data[r]);
            for (int f = 0; f < F; f++) da[f] += (float)(rs * a[f]);
            for (int h = 0; h < H; h++) db[h] += (float)((h == r % H ? rs : rs + sc[h]) * b[h]);
        }
        const lp_tensor *c = g->consumer;
        const int R = c->dims[0], Cc = c->dims[1];
        for (int r = 0; r < R; r++) {
            const float *row = c->data + (size_t)r * Cc + g->consumer_col0;
            float *drow = c->grad + (size_t)r * Cc + g->consumer_col0;
            for (int j = 0; j < H; j++) drow[j] += (float)(sc[j] * row[j]);
        }
    }
    lp_free(sc);
    if (s == LP_OK) *penalty = lambda * total;
    return s;
}

lp_status lp_lm_iss_zero_below(lp_lm *m, double threshold, int *zeroed) {
    if (zeroed) *zeroed = 0;
    if (!(threshold >= 0) || !isfinite(threshold))
        return lp_errorf(LP_ERR_ARG, "iss: threshold must be finite and >= 0, got %g", threshold);
    lp_unit_group groups[LP_LM_MAX_LAYERS];
    lp_lm_prune_groups(m, groups);
    int hmax = 1;
    for (int l = 0; l < m->cfg.layers; l++) hmax = m->cfg.hidden[l] > hmax ? m->cfg.hidden[l] : hmax;
    double *norms = lp_malloc((size_t)hmax, sizeof *norms);
    if (!norms) return LP_ERR_NOMEM;
    int total = 0;
    for (int l = 0; l < m->cfg.layers; l++) {
        if (!is_prunable(m, l)) continue;
        const int H = groups[l].units;
        LP_CHECK(lp_lm_iss_norms(m, l, norms) == LP_OK);
        int best = 0, alive = 0;
        for (int j = 0; j < H; j++) {
            if (norms[j] > norms[best]) best = j;
            alive += norms[j] >= threshold;
        }
        for (int j = 0; j < H; j++) {
            if (norms[j] >= threshold || (alive == 0 && j == best)) continue;
            if (norms[j] > 0) lp_surgery_zero_unit(&groups[l], j);
            total++;
        }
    }
    lp_free(norms);
    if (zeroed) *zeroed = total;
    return LP_OK;
}

lp_status lp_lm_iss_kept(const lp_lm *m, double threshold, lp_lm_prune_plan *p) {
    memset(p, 0, sizeof *p);
    if (!(threshold >= 0) || !isfinite(threshold))
        return lp_errorf(LP_ERR_ARG, "iss: threshold must be finite and >= 0, got %g", threshold);
    const int L = m->cfg.layers;
    int *kept[LP_LM_MAX_LAYERS] = {0}, n_kept[LP_LM_MAX_LAYERS] = {0};
    double *norms = NULL;
    lp_status s = LP_OK;
    for (int l = 0; l < L && s == LP_OK; l++) {
        const int H = m->cfg.hidden[l];
        kept[l] = lp_malloc((size_t)H, sizeof(int));
        lp_free(norms);
        norms = lp_malloc((size_t)H, sizeof *norms);
        if (!kept[l] || !norms) {
            s = LP_ERR_NOMEM;
            break;
        }
        LP_CHECK(lp_lm_iss_norms(m, l, norms) == LP_OK);
        int k = 0, best = 0;
        for (int j = 0; j < H; j++) {
            if (!is_prunable(m, l) || norms[j] >= threshold) kept[l][k++] = j;
            if (norms[j] > norms[best]) best = j;
        }
        if (k == 0) kept[l][k++] = best;
        n_kept[l] = k;
    }
    if (s == LP_OK) s = lp_lm_prune_plan_from_kept(m, kept, n_kept, p);
    if (s == LP_OK) snprintf(p->method, sizeof p->method, "iss");
    for (int l = 0; l < L; l++) lp_free(kept[l]);
    lp_free(norms);
    return s;
}

lp_status lp_lm_iss_grad_hook(void *user, lp_lm *m) {
    lp_lm_iss_state *st = user;
    double pen;
    LP_TRY(lp_lm_iss_penalty(m, st->lambda, &pen));
    st->last_penalty = pen;
    st->calls++;
    return LP_OK;
}

lp_status lp_lm_iss_step_hook(void *user, lp_lm *m) {
    lp_lm_iss_state *st = user;
    if (st->zero_threshold <= 0) return LP_OK;
    return lp_lm_iss_zero_below(m, st->zero_threshold, &st->zeroed);
}

/* ---- report ---------------------------------------------------------------------------------------- */

lp_status lp_lm_report_measure(lp_lm *m, const char *label, const char *ckpt, const lp_ptb_corpus *corpus, int batch,
                               int bptt, lp_lm_report_row *row) {
    memset(row, 0, sizeof *row);
    snprintf(row->label, sizeof row->label, "%s", label);
    snprintf(row->ckpt, sizeof row->ckpt, "%s", ckpt ? ckpt : "");
    row->layers = m->cfg.layers;
    for (int l = 0; l < m->cfg.layers; l++) {
        row->hidden[l] = m->cfg.hidden[l];
        const size_t H = (size_t)m->cfg.hidden[l], F = (size_t)m->groups[l].input_dim;
        row->lstm_params += 4 * H * (F + H) + 4 * H;
    }
    row->params = lp_lm_numel(m);
    struct stat sb;
    if (ckpt && stat(ckpt, &sb) == 0) row->ckpt_bytes = (size_t)sb.st_size;
    row->valid_ppl = row->test_ppl = NAN;
    if (!corpus) return LP_OK;
    lp_lm_eval_result ev;
    LP_TRY(lp_lm_evaluate(m, corpus->ids[LP_PTB_VALID], corpus->n[LP_PTB_VALID], batch, bptt, NULL, &ev));
    row->valid_ppl = ev.ppl;
    LP_TRY(lp_lm_evaluate(m, corpus->ids[LP_PTB_TEST], corpus->n[LP_PTB_TEST], batch, bptt, NULL, &ev));
    row->test_ppl = ev.ppl;
    row->words_per_sec = ev.words_per_sec;
    return LP_OK;
}

static void sizes_str(const int *h, int n, char *buf, size_t len) {
    size_t off = 0;
    buf[0] = '\0';
    for (int l = 0; l < n && off < len; l++) off += (size_t)snprintf(buf + off, len - off, l ? ", %d" : "%d", h[l]);
}

/* JSON numbers with 10 significant digits (null when not finite). */
static void json_num(FILE *f, double v) { lp_json_num(f, v, 10); }

lp_status lp_lm_report_write(const char *dir, const lp_lm_prune_plan *plan, const lp_lm_report_row *rows, int n_rows,
                             const lp_kv *info) {
    char path[4096];
    lp_atomic_file af;
    // report.md
    snprintf(path, sizeof path, "%s/report.md", dir);
    LP_TRY(lp_atomic_open(&af, path));
    FILE *f = af.f;
    fprintf(f, "# Pruning report: word-level LSTM LM on Penn Treebank\n\n");
    if (info && info->count) {
        for (int i = 0; i < info->count; i++) fprintf(f, "- %s: %s\n", info->keys[i], info->vals[i]);
        fputc('\n', f);
    }
    if (plan) {
        fprintf(f, "## Plan (%s)\n\n", plan->method);
        if (isfinite(plan->rates.tau)) fprintf(f, "Energy τ = %.4f; ", plan->rates.tau);
        fprintf(f, "mean rate over prunable layers %.4f", plan->rates.mean_rate);
        if (plan->rates.target_rate >= 0) fprintf(f, " (target %.4f)", plan->rates.target_rate);
        fprintf(f, ".\n\n");
        if (plan->note[0]) fprintf(f, "Note: %s.\n\n", plan->note);
        fprintf(f, "| layer | units before | units after | rate | τ | energy kept | responses |\n");
        fprintf(f, "|---|---:|---:|---:|---:|---:|---:|\n");
        for (int l = 0; l < plan->n_groups; l++) {
            const lp_lm_prune_group *g = &plan->g[l];
            fprintf(f, "| %s%s | %d | %d | %.4f | ", g->name, g->prunable ? "" : " (tied, kept)", g->h, g->k, g->rate);
            if (isfinite(g->tau)) fprintf(f, "%.4f", g->tau);
            else fprintf(f, "–");
            fprintf(f, " | ");
            if (isfinite(g->energy_kept)) fprintf(f, "%.4f", g->energy_kept);
            else fprintf(f, "–");
            fprintf(f, " | %lld |\n", (long long)g->n_responses);
        }
        fputc('\n', f);
    }
    fprintf(f, "## Models\n\n");
    fprintf(f, "| model | hidden sizes | parameters | LSTM parameters | checkpoint bytes | valid ppl | test ppl | "
               "words/s (test eval) |\n");
    fprintf(f, "|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int r = 0; r < n_rows; r++) {
        char sz[128];
        sizes_str(rows[r].hidden, rows[r].layers, sz, sizeof sz);
        fprintf(f, "| %s | %s | %zu | %zu | %zu | %.2f | %.2f | %.0f |\n", rows[r].label, sz, rows[r].params,
                rows[r].lstm_params, rows[r].ckpt_bytes, rows[r].valid_ppl, rows[r].test_ppl, rows[r].words_per_sec);
    }
    LP_TRY(lp_atomic_commit(&af));

    // report.json
    snprintf(path, sizeof path, "%s/report.json", dir);
    LP_TRY(lp_atomic_open(&af, path));
    f = af.f;
    fprintf(f, "{\n  \"task\": \"ptb-lm\",\n  \"info\": {");
    for (int i = 0; info && i < info->count; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        lp_json_str(f, info->keys[i]);
        fprintf(f, ": ");
        lp_json_str(f, info->vals[i]);
    }
    fprintf(f, "\n  },\n  \"plan\": ");
    if (!plan) fprintf(f, "null");
    else {
        fprintf(f, "{\n    \"method\": ");
        lp_json_str(f, plan->method);
        fprintf(f, ",\n    \"note\": ");
        lp_json_str(f, plan->note);
        fprintf(f, ",\n    \"tau\": ");
        json_num(f, plan->rates.tau);
        fprintf(f, ",\n    \"mean_rate\": ");
        json_num(f, plan->rates.mean_rate);
        fprintf(f, ",\n    \"target_rate\": ");
        json_num(f, plan->rates.target_rate >= 0 ? plan->rates.target_rate : NAN);
        fprintf(f, ",\n    \"layers\": [");
        for (int l = 0; l < plan->n_groups; l++) {
            const lp_lm_prune_group *g = &plan->g[l];
            fprintf(f, "%s\n      {\"name\": ", l ? "," : "");
            lp_json_str(f, g->name);
            fprintf(f, ", \"units_before\": %d, \"units_after\": %d, \"prunable\": %s, \"rate\": ", g->h, g->k,
                    g->prunable ? "true" : "false");
            json_num(f, g->rate);
            fprintf(f, ", \"tau\": ");
            json_num(f, g->tau);
            fprintf(f, ", \"energy_kept\": ");
            json_num(f, g->energy_kept);
            fprintf(f, ", \"responses\": %lld, \"spectrum\": ", (long long)g->n_responses);
            if (!g->eig) fprintf(f, "null");
            else {
                fputc('[', f);
                for (int j = 0; j < g->h; j++) {
                    if (j) fputc(',', f);
                    json_num(f, g->eig[j]);
                }
                fputc(']', f);
            }
            fprintf(f, ", \"kept\": [");
            for (int j = 0; j < g->k; j++) fprintf(f, "%s%d", j ? "," : "", g->kept[j]);
            fprintf(f, "]}");
        }
        fprintf(f, "\n    ]\n  }");
    }
    fprintf(f, ",\n  \"models\": [");
    for (int r = 0; r < n_rows; r++) {
        const lp_lm_report_row *w = &rows[r];
        fprintf(f, "%s\n    {\"label\": ", r ? "," : "");
        lp_json_str(f, w->label);
        fprintf(f, ", \"checkpoint\": ");
        lp_json_str(f, w->ckpt);
        fprintf(f, ", \"hidden\": [");
        for (int l = 0; l < w->layers; l++) fprintf(f, "%s%d", l ? "," : "", w->hidden[l]);
        fprintf(f, "], \"params\": %zu, \"lstm_params\": %zu, \"ckpt_bytes\": %zu, \"valid_ppl\": ", w->params,
                w->lstm_params, w->ckpt_bytes);
        json_num(f, w->valid_ppl);
        fprintf(f, ", \"test_ppl\": ");
        json_num(f, w->test_ppl);
        fprintf(f, ", \"words_per_sec\": ");
        json_num(f, w->words_per_sec);
        fputc('}', f);
    }
    fprintf(f, "\n  ]\n}\n");
    return lp_atomic_commit(&af);
}

/* ---- the whole job --------------------------------------------------------------------------------- */

void lp_lm_prune_job_default(lp_lm_prune_job *j) {
    memset(j, 0, sizeof *j);
    lp_lm_prune_opts_default(&j->prune);
    j->prune.rates.tau = 0.9;
    j->iss_lambda = 0;
    j->iss_threshold = 1e-3;
    j->iss_lr = 0.1;
    j->iss_epochs = 2;
    j->ft_epochs = 2;
    j->ft_lr = 0.1;
    j->ft_decay = 0.5;
    j->eval_batch = 20;
    j->eval_bptt = 35;
    j->threads = 1;
}

/* The configuration of a training run (ISS or fine-tuning) derived from the checkpoint's run. */
static lp_status derived_cfg(const lp_kv *meta, const char *data_dir, int epochs, double lr, double decay,
                             int decay_after, int threads, const char *recipe, lp_kv *cfg) {
    lp_kv_init(cfg);
    LP_TRY(lp_kv_set(cfg, "lm.recipe", recipe));
    LP_TRY(lp_kv_set(cfg, "data.dir", data_dir));
    const char *mw = lp_kv_get(meta, "data.max_words");
    LP_TRY(lp_kv_set(cfg, "data.max_words", mw ? mw : "0"));
    const char *copy[] = {"train.batch", "train.bptt", "train.clip", "train.seed", "train.eval_batch", "train.eval_bptt",
                          "train.momentum"};
    for (size_t i = 0; i < sizeof copy / sizeof copy[0]; i++) {
        const char *v = lp_kv_get(meta, copy[i]);
        if (v) LP_TRY(lp_kv_set(cfg, copy[i], v));
    }
    LP_TRY(lp_kv_set_int(cfg, "train.epochs", epochs));
    LP_TRY(lp_kv_set_double(cfg, "train.lr", lr));
    LP_TRY(lp_kv_set_double(cfg, "train.lr_decay", decay));
    LP_TRY(lp_kv_set_int(cfg, "train.decay_after", decay_after));
    LP_TRY(lp_kv_set_int(cfg, "train.threads", threads));
    return lp_kv_set_int(cfg, "train.test_every", 0);
}

static lp_status check_job(const lp_lm_prune_job *j) {
    if (!j->checkpoint || !j->out_dir) return lp_errorf(LP_ERR_ARG, "lm prune: a checkpoint and an output directory are needed");
    if (!(j->iss_lambda >= 0) || !isfinite(j->iss_lambda))
        return lp_errorf(LP_ERR_ARG, "lm prune: --iss-lambda must be >= 0, got %g", j->iss_lambda);
    if (j->iss_lambda > 0 && (j->iss_epochs < 1 || !(j->iss_threshold > 0) || !(j->iss_lr > 0)))
        return lp_errorf(LP_ERR_ARG, "lm prune: ISS needs --iss-epochs >= 1, --iss-threshold > 0 and --iss-lr > 0");
    if (j->ft_epochs < 0 || (j->ft_epochs > 0 && (!(j->ft_lr > 0) || !(j->ft_decay > 0 && j->ft_decay <= 1))))
        return lp_errorf(LP_ERR_ARG, "lm prune: fine-tuning needs --finetune-lr > 0 and --finetune-decay in (0, 1]");
    return LP_OK;
}

/* What one lp_lm_prune_run holds from start to end; prune_run_free releases all of it. */
typedef struct {
    const lp_lm_prune_job *j;
    const lp_ptb_corpus *corpus; /* the caller's, or &own */
    lp_ptb_corpus own;
    lp_lm base;                  /* the checkpoint */
    lp_lm src;                   /* ISS only: the model after group-lasso training (have_src) */
    lp_lm small;                 /* the pruned model */
    int have_src, have_stats;
    lp_kv meta;                  /* the checkpoint's keys */
    lp_kv info;                  /* how the run was made, for the report */
    lp_lm_prune_plan plan;
    lp_stats st[LP_LM_MAX_LAYERS];
    char data_dir[4096], pruned_path[4096];
} prune_run;

static void prune_run_free(prune_run *r) {
    if (r->have_stats)
        for (int l = 0; l < r->base.cfg.layers; l++) lp_stats_free(&r->st[l]);
    lp_lm_prune_plan_free(&r->plan);
    if (r->small.params.count) lp_lm_free(&r->small);
    if (r->have_src) lp_lm_free(&r->src);
    if (r->base.params.count) lp_lm_free(&r->base);
    lp_ptb_corpus_free(&r->own);
    lp_kv_free(&r->meta);
    lp_kv_free(&r->info);
}

lp_status lp_lm_prune_load_base(const char *checkpoint, const char *data_dir, lp_lm *m, lp_kv *meta, lp_ptb_corpus *own,
                                const lp_ptb_corpus **corpus, char *dir_out, size_t dir_len) {
    LP_TRY(lp_lm_load(m, checkpoint, meta));
    const char *dd = data_dir ? data_dir : lp_kv_get(meta, "data.dir");
    snprintf(dir_out, dir_len, "%s", dd ? dd : LP_LM_DEFAULT_DATA_DIR);
    if (!*corpus) {
        lp_kv dk;
        lp_kv_init(&dk);
        lp_kv_set(&dk, "data.dir", dir_out);
        const char *mw = lp_kv_get(meta, "data.max_words");
        lp_kv_set(&dk, "data.max_words", mw ? mw : "0");
        lp_status s = lp_lm_run_corpus(&dk, own);
        lp_kv_free(&dk);
        LP_TRY(s);
        *corpus = own;
    }
    if ((*corpus)->vocab.size != m->cfg.vocab)
        return lp_errorf(LP_ERR_ARG, "%s has a vocabulary of %d words, the data in %s %d", checkpoint, m->cfg.vocab,
                         dir_out, (*corpus)->vocab.size);
    return LP_OK;
}

/* ISS: group-lasso training from the checkpoint, zeroing small units after every step; the plan keeps
 * the units left non-zero. */
static lp_status plan_iss(prune_run *r) {
    const lp_lm_prune_job *j = r->j;
    char path[4096];
    lp_lm_iss_state iss = {.lambda = j->iss_lambda, .zero_threshold = j->iss_threshold};
    lp_kv cfg;
    lp_status s = derived_cfg(&r->meta, r->data_dir, j->iss_epochs, j->iss_lr, 1.0, 0, j->threads, "iss", &cfg);
    snprintf(path, sizeof path, "%s/iss", j->out_dir);
    lp_lm_run_opts ro = {.run_dir = path, .init_ckpt = j->checkpoint, .quiet = j->quiet, .corpus = r->corpus,
                         .grad_hook = lp_lm_iss_grad_hook, .step_hook = lp_lm_iss_step_hook, .hook_user = &iss};
    lp_lm_run_result rr;
    if (s == LP_OK && !j->quiet)
        fprintf(stderr, "lm-prune: ISS training, lambda %g, %d epochs at lr %g (%s)\n", j->iss_lambda, j->iss_epochs,
                j->iss_lr, path);
    if (s == LP_OK) s = lp_lm_train_run(&cfg, &ro, &rr);
    lp_kv_free(&cfg);
    LP_TRY(s);
    snprintf(path, sizeof path, "%s/iss/last.ckpt", j->out_dir);
    LP_TRY(lp_lm_load(&r->src, path, NULL));
    r->have_src = 1;
    LP_TRY(lp_lm_iss_kept(&r->src, j->iss_threshold, &r->plan));
    lp_kv_set_double(&r->info, "iss.lambda", j->iss_lambda);
    lp_kv_set_double(&r->info, "iss.threshold", j->iss_threshold);
    lp_kv_setf(&r->info, "iss.training", "%d epochs at lr %g from the checkpoint (%s/iss)", j->iss_epochs, j->iss_lr,
               j->out_dir);
    lp_kv_setf(&r->info, "iss.final_penalty", "%.6g", iss.last_penalty);
    return LP_OK;
}

/* A rate rule and a criterion: the eigen rule needs the response statistics of every layer first. */
static lp_status plan_criterion(prune_run *r) {
    const lp_lm_prune_job *j = r->j;
    const int need_stats = j->prune.rates.rule == LP_RATE_RULE_EIGEN || j->prune.compensate;
    if (need_stats) {
        if (!j->quiet)
            fprintf(stderr, "lm-prune: response statistics over %s training windows\n", j->prune.stats_windows ? "some" : "all");
        LP_TRY(lp_lm_prune_stats(&r->base, r->corpus->ids[LP_PTB_TRAIN], r->corpus->n[LP_PTB_TRAIN], j->prune.stats_batch,
                                 j->prune.stats_bptt, j->prune.stats_windows, r->st));
        r->have_stats = 1;
    }
    LP_TRY(lp_lm_prune_plan_make(&r->base, need_stats ? r->st : NULL, &j->prune, &r->plan));
    if (j->prune.compensate) LP_TRY(lp_kv_set(&r->info, "compensation", "mean responses of the removed units in the biases"));
    if (!need_stats) return lp_kv_set(&r->info, "statistics", "none (uniform rule)");
    char w[32] = "all";
    if (j->prune.stats_windows) snprintf(w, sizeof w, "the first %d", j->prune.stats_windows);
    return lp_kv_setf(&r->info, "statistics", "h of every layer at every step of %s training windows of %d x %d", w,
                      j->prune.stats_batch, j->prune.stats_bptt);
}

/* pruned.ckpt: the small model, its run keys (so lm-train --init and lm-eval find the data), the plan. */
static lp_status save_pruned(prune_run *r) {
    const char *copy[] = {"data.dir", "data.max_words", "lm.recipe", "train.batch", "train.bptt", "train.clip",
                          "train.seed", "train.eval_batch", "train.eval_bptt"};
    lp_ckpt c;
    lp_ckpt_init(&c);
    lp_status s = LP_OK;
    for (size_t i = 0; i < sizeof copy / sizeof copy[0] && s == LP_OK; i++) {
        const char *v = lp_kv_get(&r->meta, copy[i]);
        if (v) s = lp_kv_set(&c.meta, copy[i], v);
    }
    if (s == LP_OK) s = lp_kv_set(&c.meta, "data.dir", r->data_dir);
    if (s == LP_OK) s = lp_lm_run_model_to_kv(&r->small.cfg, &c.meta);
    if (s == LP_OK) s = lp_kv_set(&c.meta, "plan.method", r->plan.method);
    if (s == LP_OK) s = lp_kv_set(&c.meta, "plan.compensate", r->plan.opts.compensate ? "mean" : "none");
    if (s == LP_OK) s = lp_kv_set(&c.meta, "plan.source", r->j->checkpoint);
    if (s == LP_OK) s = lp_kv_set_double(&c.meta, "plan.tau", r->plan.rates.tau);
    if (s == LP_OK) s = lp_kv_set_double(&c.meta, "plan.mean_rate", r->plan.rates.mean_rate);
    if (s == LP_OK) s = lp_lm_add_to_ckpt(&r->small, &c);
    if (s == LP_OK) s = lp_ckpt_save(&c, r->pruned_path);
    lp_ckpt_free(&c);
    return s;
}

static void say_pruned(const prune_run *r, const lp_lm *from) {
    char a[128], b[128];
    sizes_str(from->cfg.hidden, from->cfg.layers, a, sizeof a);
    sizes_str(r->small.cfg.hidden, r->small.cfg.layers, b, sizeof b);
    fprintf(stderr, "lm-prune: %s: units %s -> %s, parameters %zu -> %zu (%s)\n", r->plan.method, a, b, lp_lm_numel(from),
            lp_lm_numel(&r->small), r->pruned_path);
    if (r->plan.note[0]) fprintf(stderr, "lm-prune: note: %s\n", r->plan.note);
}

/* Fine-tune pruned.ckpt with the job's schedule; measure the best validation epoch into *row. */
static lp_status finetune(prune_run *r, lp_lm_report_row *row) {
    const lp_lm_prune_job *j = r->j;
    char path[4096];
    lp_kv cfg;
    lp_status s = derived_cfg(&r->meta, r->data_dir, j->ft_epochs, j->ft_lr, j->ft_decay, 1, j->threads, "finetune", &cfg);
    snprintf(path, sizeof path, "%s/finetune", j->out_dir);
    lp_lm_run_opts ro = {.run_dir = path, .init_ckpt = r->pruned_path, .quiet = j->quiet, .corpus = r->corpus};
    lp_lm_run_result rr;
    if (s == LP_OK && !j->quiet)
        fprintf(stderr, "lm-prune: fine-tuning %d epochs from lr %g (x%g per epoch) in %s\n", j->ft_epochs, j->ft_lr,
                j->ft_decay, path);
    if (s == LP_OK) s = lp_lm_train_run(&cfg, &ro, &rr);
    lp_kv_free(&cfg);
    LP_TRY(s);
    snprintf(path, sizeof path, "%s/finetune/best.ckpt", j->out_dir);
    lp_lm ft;
    memset(&ft, 0, sizeof ft);
    s = lp_lm_load(&ft, path, NULL);
    if (s == LP_OK) s = lp_lm_report_measure(&ft, "fine-tuned", path, r->corpus, j->eval_batch, j->eval_bptt, row);
    if (s == LP_OK)
        lp_kv_setf(&r->info, "fine-tuning", "%d epochs, lr %g then x%g per epoch; best validation epoch kept", j->ft_epochs,
                   j->ft_lr, j->ft_decay);
    if (ft.params.count) lp_lm_free(&ft);
    return s;
}

/* baseline -> plan (ISS training, or statistics + criterion) -> shrink -> pruned.ckpt -> fine-tune ->
 * report.md; a row of measurements after each model. */
static lp_status prune_run_all(prune_run *r, lp_lm_prune_result *res) {
    const lp_lm_prune_job *j = r->j;
    LP_TRY(lp_lm_prune_load_base(j->checkpoint, j->data_dir, &r->base, &r->meta, &r->own, &r->corpus, r->data_dir,
                                 sizeof r->data_dir));
    if (!j->quiet) fprintf(stderr, "lm-prune: measuring the baseline\n");
    LP_TRY(lp_lm_report_measure(&r->base, "baseline", j->checkpoint, r->corpus, j->eval_batch, j->eval_bptt,
                                &res->rows[res->n_rows++]));
    LP_TRY(j->iss_lambda > 0 ? plan_iss(r) : plan_criterion(r));
    const lp_lm *from = r->have_src ? &r->src : &r->base;
    LP_TRY(lp_lm_prune_shrink(from, &r->plan, &r->small));
    snprintf(r->pruned_path, sizeof r->pruned_path, "%s/pruned.ckpt", j->out_dir);
    LP_TRY(save_pruned(r));
    if (!j->quiet) say_pruned(r, from);
    LP_TRY(lp_lm_report_measure(&r->small, "pruned", r->pruned_path, r->corpus, j->eval_batch, j->eval_bptt,
                                &res->rows[res->n_rows++]));
    if (j->ft_epochs > 0) LP_TRY(finetune(r, &res->rows[res->n_rows++]));
    lp_kv_set(&r->info, "checkpoint", j->checkpoint);
    lp_kv_set(&r->info, "data", r->data_dir);
    lp_kv_setf(&r->info, "evaluation", "batch %d, window %d, %d thread(s); words/s = test-set evaluation throughput",
               j->eval_batch, j->eval_bptt, j->threads);
    LP_TRY(lp_lm_report_write(j->out_dir, &r->plan, res->rows, res->n_rows, &r->info));
    res->layers = from->cfg.layers;
    for (int l = 0; l < res->layers; l++) {
        res->hidden_before[l] = from->cfg.hidden[l];
        res->hidden_after[l] = r->small.cfg.hidden[l];
    }
    return LP_OK;
}

lp_status lp_lm_prune_run(const lp_lm_prune_job *j, const lp_ptb_corpus *corpus, lp_lm_prune_result *res) {
    memset(res, 0, sizeof *res);
    const double t0 = lp_now_s();
    LP_TRY(check_job(j));
    LP_TRY(lp_mkdirs(j->out_dir));
    lp_runcfg_set_threads(j->threads);

    prune_run r;
    memset(&r, 0, sizeof r);
    r.j = j;
    r.corpus = corpus;
    lp_kv_init(&r.meta);
    lp_kv_init(&r.info);
    lp_status s = prune_run_all(&r, res);
    res->seconds = lp_now_s() - t0;
    prune_run_free(&r);
    return s;
}
