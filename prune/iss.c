/* iss: group-lasso penalty over unit footprints, norms, zeroing, the proximal step and the kept plan
 * (contract in iss.h, equations in docs/METHOD.md, "Surgery and ISS"). */
#include "prune/iss.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "prune/surgery.h"

static lp_status check_finite(double v, const char *what) {
    if (!(v >= 0) || !isfinite(v)) return lp_errorf(LP_ERR_ARG, "iss: %s must be finite and >= 0, got %g", what, v);
    return LP_OK;
}

static int max_units(const lp_task *t) {
    int h = 1;
    for (int g = 0; g < t->n_groups; g++) h = t->groups[g].units > h ? t->groups[g].units : h;
    return h;
}

/* Footprint sums of squares of group g's units, in row-major passes. The footprint of unit j (prune/
 * surgery.h) is its 4 gate rows of w_ih and w_hh, its 4 bias entries, column j of w_hh and column j of the
 * consumer. Walking a column of a wide consumer (the LM's out.w [V,H]) one unit at a time touches V cache
 * lines per unit; here the columns are summed while reading the matrices row by row. The 4 entries
 * w_hh[qH+j, j] lie in both a row and the column of unit j and are counted once (row sum + column sum −
 * those 4). ss [H] is accumulated in double. */
static void group_sumsq(const lp_unit_group *g, double *ss) {
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

lp_status lp_iss_norms(const lp_task *t, int g, double *norms) {
    if (g < 0 || g >= t->n_groups)
        return lp_errorf(LP_ERR_ARG, "iss: group %d does not exist (the model has %d)", g, t->n_groups);
    group_sumsq(&t->groups[g], norms);
    for (int j = 0; j < t->groups[g].units; j++) norms[j] = sqrt(norms[j]);
    return LP_OK;
}

/* ∂Ω/∂w = sc[j]·w for every element of footprint j, sc[j] = λ/||w_j||; w_hh[r, h] is in unit r mod H's
 * rows and in unit h's column (once when they are the same unit). */
static void group_penalty_grad(const lp_unit_group *g, const double *sc) {
    const int H = g->units, F = g->input_dim;
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

lp_status lp_iss_penalty(lp_task *t, double lambda, double *penalty) {
    *penalty = 0;
    LP_TRY(check_finite(lambda, "lambda"));
    if (lambda == 0) return LP_OK;
    LP_CHECK(t->params->grad != NULL);
    double *sc = lp_malloc((size_t)max_units(t), sizeof *sc);
    if (!sc) return LP_ERR_NOMEM;
    double total = 0;
    lp_status s = LP_OK;
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) {
        const lp_unit_group *gr = &t->groups[g];
        if (gr->fixed) continue;
        LP_CHECK(lp_iss_norms(t, g, sc) == LP_OK);
        // sc[j] = λ / ||w_j|| (0 for a zero footprint: subgradient 0, no division by zero)
        for (int j = 0; j < gr->units && s == LP_OK; j++) {
            if (!isfinite(sc[j])) s = lp_errorf(LP_ERR_NUMERIC, "iss: group %s unit %d: weight norm is %g", gr->name, j, sc[j]);
            total += sc[j];
            sc[j] = sc[j] > 0 ? lambda / sc[j] : 0;
        }
        if (s == LP_OK) group_penalty_grad(gr, sc);
    }
    lp_free(sc);
    if (s == LP_OK) *penalty = lambda * total;
    return s;
}

lp_status lp_iss_zero_below(lp_task *t, double threshold, int *zeroed) {
    if (zeroed) *zeroed = 0;
    LP_TRY(check_finite(threshold, "threshold"));
    double *norms = lp_malloc((size_t)max_units(t), sizeof *norms);
    if (!norms) return LP_ERR_NOMEM;
    int total = 0;
    for (int g = 0; g < t->n_groups; g++) {
        const lp_unit_group *gr = &t->groups[g];
        if (gr->fixed) continue;
        LP_CHECK(lp_iss_norms(t, g, norms) == LP_OK);
        int best = 0, alive = 0;
        for (int j = 0; j < gr->units; j++) {
            if (norms[j] > norms[best]) best = j;
            alive += norms[j] >= threshold;
        }
        for (int j = 0; j < gr->units; j++) {
            if (norms[j] >= threshold || (alive == 0 && j == best)) continue;
            if (norms[j] > 0) lp_surgery_zero_unit(gr, j);
            total++;
        }
    }
    lp_free(norms);
    if (zeroed) *zeroed = total;
    return LP_OK;
}

lp_status lp_iss_kept(const lp_task *t, double threshold, lp_prune_plan *p) {
    memset(p, 0, sizeof *p);
    LP_TRY(check_finite(threshold, "threshold"));
    int *kept[LP_MAX_GROUPS] = {0}, n_kept[LP_MAX_GROUPS] = {0};
    double *norms = lp_malloc((size_t)max_units(t), sizeof *norms);
    lp_status s = norms ? LP_OK : LP_ERR_NOMEM;
    for (int g = 0; g < t->n_groups && s == LP_OK; g++) {
        const lp_unit_group *gr = &t->groups[g];
        if (!(kept[g] = lp_malloc((size_t)gr->units, sizeof(int)))) {
            s = LP_ERR_NOMEM;
            break;
        }
        LP_CHECK(lp_iss_norms(t, g, norms) == LP_OK);
        int k = 0, best = 0;
        for (int j = 0; j < gr->units; j++) {
            if (gr->fixed || norms[j] >= threshold) kept[g][k++] = j;
            if (norms[j] > norms[best]) best = j;
        }
        if (k == 0) kept[g][k++] = best;
        n_kept[g] = k;
    }
    if (s == LP_OK) s = lp_prune_plan_from_kept(t, kept, n_kept, p);
    if (s == LP_OK) snprintf(p->method, sizeof p->method, "iss");
    for (int g = 0; g < t->n_groups; g++) lp_free(kept[g]);
    lp_free(norms);
    return s;
}

lp_status lp_iss_prox(lp_task *t, double step) {
    LP_TRY(check_finite(step, "proximal step"));
    lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
    for (int g = 0; g < t->n_groups; g++) {
        if (t->groups[g].fixed) continue;
        for (int j = 0; j < t->groups[g].units; j++) {
            int ns = lp_surgery_footprint(&t->groups[g], j, segs);
            double sq = 0;
            for (int k = 0; k < ns; k++)
                for (int e = 0; e < segs[k].n; e++) {
                    double w = segs[k].t->data[segs[k].start + (size_t)e * segs[k].stride];
                    sq += w * w;
                }
            double norm = sqrt(sq), f = norm > 0 ? 1.0 - step / norm : 0;
            float scale = f > 0 ? (float)f : 0.0f;
            for (int k = 0; k < ns; k++)
                for (int e = 0; e < segs[k].n; e++) segs[k].t->data[segs[k].start + (size_t)e * segs[k].stride] *= scale;
        }
    }
    return LP_OK;
}

lp_status lp_iss_grad_hook(void *user, lp_task *t, int64_t step, double *extra_loss) {
    (void)step;
    lp_iss_state *st = user;
    double pen;
    LP_TRY(lp_iss_penalty(t, st->lambda, &pen));
    st->last_penalty = pen;
    st->calls++;
    if (st->add_to_loss && extra_loss) *extra_loss += pen;
    return LP_OK;
}

lp_status lp_iss_update_hook(void *user, lp_task *t, int64_t step) {
    (void)step;
    lp_iss_state *st = user;
    if (st->lr > 0) LP_TRY(lp_iss_prox(t, st->lr * st->lambda));
    if (st->zero_threshold > 0) LP_TRY(lp_iss_zero_below(t, st->zero_threshold, &st->zeroed));
    return LP_OK;
}
