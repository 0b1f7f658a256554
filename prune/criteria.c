/* criteria: unit vectors, per-unit scores and the selection of kept units (contract in criteria.h,
 * equations in docs/METHOD.md, "Pruning"). */
#include "prune/criteria.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

static const char *const crit_names[] = {"gm", "gm-exact", "l1", "l2", "random"};

lp_status lp_criterion_parse(const char *s, lp_criterion *out) {
    for (int i = 0; i < (int)(sizeof crit_names / sizeof crit_names[0]); i++)
        if (s && strcmp(s, crit_names[i]) == 0) {
            *out = (lp_criterion)i;
            return LP_OK;
        }
    return lp_errorf(LP_ERR_ARG, "--criterion must be gm, gm-exact, l1, l2 or random, got '%s'", s ? s : "(null)");
}

const char *lp_criterion_name(lp_criterion c) {
    return (c >= LP_CRITERION_GM && c <= LP_CRITERION_RANDOM) ? crit_names[c] : "?";
}

void lp_criteria_opts_default(lp_criteria_opts *o) {
    o->criterion = LP_CRITERION_GM;
    o->gm_tol = 1e-10;
    o->gm_max_iter = 1000;
    o->rng = NULL;
}

int lp_criteria_unit_dim(int f, int h, int with_bias) { return 4 * (f + h) + (with_bias ? 4 : 0); }

lp_status lp_criteria_unit_vectors(const float *w_ih, const float *w_hh, const float *b, int h, int f, float *u) {
    if (h < 1 || f < 0) return lp_errorf(LP_ERR_ARG, "unit vectors: need H >= 1 and F >= 0, got H=%d F=%d", h, f);
    const size_t d = (size_t)lp_criteria_unit_dim(f, h, b != NULL);
    for (int j = 0; j < h; j++) {
        float *row = u + (size_t)j * d;
        // w_ih is [4H,F]: gate q of unit j is row q*H + j.
        for (int q = 0; q < 4; q++) memcpy(row + (size_t)q * f, w_ih + ((size_t)q * h + j) * f, (size_t)f * sizeof(float));
        row += (size_t)4 * f;
        // w_hh is [4H,H].
        for (int q = 0; q < 4; q++) memcpy(row + (size_t)q * h, w_hh + ((size_t)q * h + j) * h, (size_t)h * sizeof(float));
        row += (size_t)4 * h;
        if (b)
            for (int q = 0; q < 4; q++) row[q] = b[(size_t)q * h + j];
    }
    return LP_OK;
}

lp_status lp_criteria_geometric_median(const double *x, int n, int d, double tol, int max_iter, double *m,
                                       int *iters) {
    if (n < 1 || d < 1 || max_iter < 1 || !(tol >= 0))
        return lp_errorf(LP_ERR_ARG, "geometric median: bad arguments n=%d d=%d tol=%g max_iter=%d", n, d, tol,
                         max_iter);
    double *t = lp_malloc((size_t)d, sizeof(double)); /* Σ x_i/d_i, then T(m) */
    double *r = lp_malloc((size_t)d, sizeof(double)); /* R(m) = Σ (x_i − m)/d_i */
    if (!t || !r) {
        lp_free(t);
        lp_free(r);
        return LP_ERR_NOMEM;
    }
    // Start at the centroid (the minimiser of the squared distances: a good, cheap first guess).
    memset(m, 0, (size_t)d * sizeof(double));
    for (int i = 0; i < n; i++)
        for (int c = 0; c < d; c++) m[c] += x[(size_t)i * d + c];
    for (int c = 0; c < d; c++) m[c] /= n;
    int it = 0;
    while (it < max_iter) {
        it++;
        double mnorm = 0;
        for (int c = 0; c < d; c++) mnorm += m[c] * m[c];
        mnorm = sqrt(mnorm);
        // A point closer than this is "at" the iterate: 1/d_i would be meaningless (or infinite).
        const double at = 1e-14 * (1 + mnorm);
        double wsum = 0;
        int eta = 0;
        memset(t, 0, (size_t)d * sizeof(double));
        memset(r, 0, (size_t)d * sizeof(double));
        for (int i = 0; i < n; i++) {
            const double *xi = x + (size_t)i * d;
            double di = 0;
            for (int c = 0; c < d; c++) di += (xi[c] - m[c]) * (xi[c] - m[c]);
            di = sqrt(di);
            if (di <= at) {
                eta++;
                continue;
            }
            const double w = 1.0 / di;
            wsum += w;
            for (int c = 0; c < d; c++) {
                t[c] += w * xi[c];
                r[c] += w * (xi[c] - m[c]);
            }
        }
        if (wsum == 0) break; /* every point sits at m: m is the median */
        for (int c = 0; c < d; c++) t[c] /= wsum;
        // Weiszfeld: m' = T(m). On a data point (eta > 0) Vardi & Zhang (2000): m is optimal iff
        // ||R(m)|| <= eta; otherwise m' = (1 − eta/||R||) T(m) + (eta/||R||) m moves off the point.
        double lam = 0;
        if (eta > 0) {
            double rn = 0;
            for (int c = 0; c < d; c++) rn += r[c] * r[c];
            rn = sqrt(rn);
            if (rn <= eta) break;
            lam = eta / rn;
        }
        double step = 0, nn = 0;
        for (int c = 0; c < d; c++) {
            const double v = (1 - lam) * t[c] + lam * m[c];
            step += (v - m[c]) * (v - m[c]);
            nn += v * v;
            m[c] = v;
        }
        if (sqrt(step) <= tol * (1 + sqrt(nn))) break;
    }
    lp_free(t);
    lp_free(r);
    if (iters) *iters = it;
    return LP_OK;
}

/* u [h,d] float → x [h,d] double, refusing NaN/Inf (a diverged model must not be pruned silently). */
static lp_status to_double(const float *u, int h, int d, double **out) {
    const size_t n = (size_t)h * (size_t)d;
    double *x = lp_malloc(n, sizeof(double));
    if (!x) return lp_error_wrap(LP_ERR_NOMEM, "criteria: %d unit vectors of length %d", h, d);
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(u[i])) {
            lp_free(x);
            return lp_errorf(LP_ERR_NUMERIC, "criteria: non-finite weight %g in unit %zu, coordinate %zu",
                             (double)u[i], i / (size_t)d, i % (size_t)d);
        }
        x[i] = u[i];
    }
    *out = x;
    return LP_OK;
}

/* FPGM: score_j = Σ_k ||x_j − x_k||, from one Gram matrix. */
static lp_status score_gm(double *x, int h, int d, double *score) {
    // Distances do not change under a common shift; centring the rows first makes the Gram entries
    // (and so the cancellation in g_jj + g_kk − 2 g_jk) as small as the spread of the units allows.
    for (int c = 0; c < d; c++) {
        double mu = 0;
        for (int j = 0; j < h; j++) mu += x[(size_t)j * d + c];
        mu /= h;
        for (int j = 0; j < h; j++) x[(size_t)j * d + c] -= mu;
    }
    double *g = lp_calloc((size_t)h * (size_t)h, sizeof(double));
    if (!g) return lp_error_wrap(LP_ERR_NOMEM, "criteria: Gram matrix %dx%d", h, h);
    // g (upper) = x xᵀ: [h,d]·[d,h].
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, h, d, 1.0, x, d, 0.0, g, h);
    for (int j = 0; j < h; j++) score[j] = 0;
    for (int j = 0; j < h; j++)
        for (int k = j + 1; k < h; k++) {
            double d2 = g[(size_t)j * h + j] + g[(size_t)k * h + k] - 2 * g[(size_t)j * h + k];
            const double dist = d2 > 0 ? sqrt(d2) : 0; /* round-off can make a tiny d2 negative */
            score[j] += dist;
            score[k] += dist;
        }
    lp_free(g);
    return LP_OK;
}

lp_status lp_criteria_score(const lp_criteria_opts *o, const float *u, int h, int d, double *score) {
    if (h < 1 || d < 1) return lp_errorf(LP_ERR_ARG, "criteria: need H >= 1 and D >= 1, got H=%d D=%d", h, d);
    if (o->criterion == LP_CRITERION_RANDOM) {
        if (!o->rng) return lp_errorf(LP_ERR_ARG, "criterion random needs an rng (seeded, stream PRUNE)");
        for (int j = 0; j < h; j++) score[j] = lp_rng_uniform(o->rng);
        return LP_OK;
    }
    double *x = NULL;
    LP_TRY(to_double(u, h, d, &x));
    lp_status st = LP_OK;
    switch (o->criterion) {
    case LP_CRITERION_GM: st = score_gm(x, h, d, score); break;
    case LP_CRITERION_GM_EXACT: {
        double *m = lp_malloc((size_t)d, sizeof(double));
        if (!m) {
            st = LP_ERR_NOMEM;
            break;
        }
        st = lp_criteria_geometric_median(x, h, d, o->gm_tol, o->gm_max_iter, m, NULL);
        if (st == LP_OK)
            for (int j = 0; j < h; j++) {
                double s = 0;
                for (int c = 0; c < d; c++) s += (x[(size_t)j * d + c] - m[c]) * (x[(size_t)j * d + c] - m[c]);
                score[j] = sqrt(s);
            }
        lp_free(m);
        break;
    }
    case LP_CRITERION_L1:
    case LP_CRITERION_L2:
        for (int j = 0; j < h; j++) {
            const double *row = x + (size_t)j * d;
            double s = 0;
            if (o->criterion == LP_CRITERION_L1)
                for (int c = 0; c < d; c++) s += fabs(row[c]);
            else
                for (int c = 0; c < d; c++) s += row[c] * row[c];
            score[j] = o->criterion == LP_CRITERION_L1 ? s : sqrt(s);
        }
        break;
    default: st = lp_errorf(LP_ERR_ARG, "unknown criterion %d", (int)o->criterion);
    }
    lp_free(x);
    return st;
}

typedef struct {
    double s;
    int i;
} scored;

static int cmp_scored(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->s < y->s) return -1;
    if (x->s > y->s) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

lp_status lp_criteria_order(const double *score, int h, int *order) {
    if (h < 1) return lp_errorf(LP_ERR_ARG, "criteria: order of %d units", h);
    scored *v = lp_malloc((size_t)h, sizeof *v);
    if (!v) return LP_ERR_NOMEM;
    for (int j = 0; j < h; j++) {
        if (isnan(score[j])) {
            lp_free(v);
            return lp_errorf(LP_ERR_NUMERIC, "criteria: score of unit %d is NaN", j);
        }
        v[j].s = score[j];
        v[j].i = j;
    }
    qsort(v, (size_t)h, sizeof *v, cmp_scored);
    for (int j = 0; j < h; j++) order[j] = v[j].i;
    lp_free(v);
    return LP_OK;
}

lp_status lp_criteria_select(const double *score, int h, int k, int *kept) {
    if (k < 1 || k > h) return lp_errorf(LP_ERR_ARG, "criteria: keep %d of %d units (need 1 <= k <= H)", k, h);
    int *order = lp_malloc((size_t)h, sizeof(int));
    unsigned char *pruned = lp_calloc((size_t)h, 1);
    if (!order || !pruned) {
        lp_free(order);
        lp_free(pruned);
        return LP_ERR_NOMEM;
    }
    lp_status st = lp_criteria_order(score, h, order);
    if (st == LP_OK) {
        for (int j = 0; j < h - k; j++) pruned[order[j]] = 1;
        for (int j = 0, n = 0; j < h; j++)
            if (!pruned[j]) kept[n++] = j;
    }
    lp_free(order);
    lp_free(pruned);
    return st;
}
