/* iss: group-lasso penalty over unit footprints, norms and the kept plan (contract in iss.h, equations in
 * docs/METHOD.md, "Surgery and ISS"). */
#include "prune/iss.h"

#include <math.h>
#include <string.h>

#include "core/alloc.h"

/* ||w_{g,j}||₂ in double over the footprint segments. */
static double unit_norm(const lp_surgery_seg *segs, int n) {
    double ss = 0;
    for (int s = 0; s < n; s++) {
        const float *d = segs[s].t->data + segs[s].start;
        for (int k = 0; k < segs[s].n; k++) {
            const double w = d[(size_t)k * segs[s].stride];
            ss += w * w;
        }
    }
    return sqrt(ss);
}

lp_status lp_iss_norms(const lp_model *m, int g, double *norms) {
    if (g < 0 || g >= m->n_groups)
        return lp_errorf(LP_ERR_ARG, "iss: group %d does not exist (the model has %d)", g, m->n_groups);
    lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
    for (int j = 0; j < m->groups[g].units; j++) {
        const int n = lp_surgery_footprint(&m->groups[g], j, segs);
        norms[j] = unit_norm(segs, n);
    }
    return LP_OK;
}

lp_status lp_iss_penalty(lp_model *m, double lambda, double *penalty) {
    *penalty = 0;
    if (!(lambda >= 0) || !isfinite(lambda))
        return lp_errorf(LP_ERR_ARG, "iss: lambda must be finite and >= 0, got %g", lambda);
    if (lambda == 0) return LP_OK;
    LP_CHECK(m->params->grad != NULL);
    double total = 0;
    lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
    for (int g = 0; g < m->n_groups; g++) {
        const lp_unit_group *gr = &m->groups[g];
        for (int j = 0; j < gr->units; j++) {
            const int n = lp_surgery_footprint(gr, j, segs);
            const double norm = unit_norm(segs, n);
            if (!isfinite(norm))
                return lp_errorf(LP_ERR_NUMERIC, "iss: group %d (%s) unit %d: weight norm is %g", g, gr->name, j, norm);
            total += norm;
            if (norm == 0) continue; /* subgradient 0 at a zero group: no division by zero */
            const double scale = lambda / norm;
            for (int s = 0; s < n; s++) {
                const float *w = segs[s].t->data + segs[s].start;
                float *dw = segs[s].t->grad + segs[s].start;
                for (int k = 0; k < segs[s].n; k++) {
                    const size_t o = (size_t)k * segs[s].stride;
                    dw[o] += (float)(scale * w[o]);
                }
            }
        }
    }
    *penalty = lambda * total;
    return LP_OK;
}

lp_status lp_iss_kept(const lp_model *m, double threshold, lp_surgery_plan *plan) {
    if (!(threshold >= 0) || !isfinite(threshold))
        return lp_errorf(LP_ERR_ARG, "iss: threshold must be finite and >= 0, got %g", threshold);
    if (plan->n_groups != m->n_groups)
        return lp_errorf(LP_ERR_ARG, "iss: the plan has %d unit groups, the model %d (lp_surgery_plan_init first)",
                         plan->n_groups, m->n_groups);
    for (int g = 0; g < m->n_groups; g++)
        if (!plan->kept[g]) return lp_errorf(LP_ERR_ARG, "iss: the plan has no list for group %d", g);
    int hmax = 1;
    for (int g = 0; g < m->n_groups; g++) hmax = m->groups[g].units > hmax ? m->groups[g].units : hmax;
    double *norms = lp_malloc((size_t)hmax, sizeof(double));
    if (!norms) return LP_ERR_NOMEM;
    for (int g = 0; g < m->n_groups; g++) {
        const int H = m->groups[g].units;
        LP_CHECK(lp_iss_norms(m, g, norms) == LP_OK); /* g is in range */
        int k = 0, best = 0;
        for (int j = 0; j < H; j++) {
            if (norms[j] >= threshold) plan->kept[g][k++] = j;
            if (norms[j] > norms[best]) best = j;
        }
        if (k == 0) plan->kept[g][k++] = best;
        plan->n_kept[g] = k;
    }
    lp_free(norms);
    return LP_OK;
}

lp_status lp_iss_hook(void *user, lp_model *m, int64_t step, double *extra_loss) {
    (void)step;
    lp_iss_hook_state *st = user;
    double pen;
    LP_TRY(lp_iss_penalty(m, st->lambda, &pen));
    st->last_penalty = pen;
    st->calls++;
    *extra_loss += pen;
    return LP_OK;
}

lp_status lp_iss_prox(lp_model *m, double t) {
    if (!(t >= 0) || !isfinite(t)) return lp_errorf(LP_ERR_ARG, "iss: proximal step %g must be finite and >= 0", t);
    lp_surgery_seg segs[LP_SURGERY_MAX_SEGS];
    for (int g = 0; g < m->n_groups; g++)
        for (int j = 0; j < m->groups[g].units; j++) {
            int ns = lp_surgery_footprint(&m->groups[g], j, segs);
            double sq = 0;
            for (int k = 0; k < ns; k++)
                for (int e = 0; e < segs[k].n; e++) {
                    double w = segs[k].t->data[segs[k].start + (size_t)e * segs[k].stride];
                    sq += w * w;
                }
            double norm = sqrt(sq), f = norm > 0 ? 1.0 - t / norm : 0;
            float scale = f > 0 ? (float)f : 0.0f;
            for (int k = 0; k < ns; k++)
                for (int e = 0; e < segs[k].n; e++) segs[k].t->data[segs[k].start + (size_t)e * segs[k].stride] *= scale;
        }
    return LP_OK;
}

lp_status lp_iss_prox_hook(void *user, lp_model *m, int64_t step) {
    (void)step;
    const lp_iss_prox_state *st = user;
    return lp_iss_prox(m, st->lr * st->lambda);
}
