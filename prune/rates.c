/* rates: eigen energy rule, τ search and uniform rule (contract and equations in rates.h and
 * docs/METHOD.md, "Pruning"). */
#include "prune/rates.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "core/alloc.h"
#include "core/log.h"

static const char *const rule_names[] = {"eigen", "uniform", "sensitivity", "given"};
#define N_RULES ((int)(sizeof rule_names / sizeof rule_names[0]))

lp_status lp_rate_rule_parse(const char *s, lp_rate_rule *out) {
    for (int i = 0; s && i < N_RULES; i++)
        if (strcmp(s, rule_names[i]) == 0) {
            *out = (lp_rate_rule)i;
            return LP_OK;
        }
    return lp_errorf(LP_ERR_ARG, "--rate-rule must be eigen, uniform, sensitivity or given, got '%s'", s ? s : "(null)");
}

const char *lp_rate_rule_name(lp_rate_rule r) { return (int)r >= 0 && (int)r < N_RULES ? rule_names[r] : "?"; }

lp_status lp_keep_count_parse(const char *s, lp_keep_count *out) {
    if (s && strcmp(s, "standard") == 0) { *out = LP_KEEP_COUNT_STANDARD; return LP_OK; }
    if (s && strcmp(s, "below") == 0) { *out = LP_KEEP_COUNT_BELOW; return LP_OK; }
    if (s && strcmp(s, "public") == 0) { *out = LP_KEEP_COUNT_PUBLIC; return LP_OK; }
    return lp_errorf(LP_ERR_ARG, "keep count must be standard, below or public, got '%s'", s ? s : "(null)");
}

const char *lp_keep_count_name(lp_keep_count c) {
    return c == LP_KEEP_COUNT_STANDARD ? "standard" : c == LP_KEEP_COUNT_BELOW ? "below"
                                                    : c == LP_KEEP_COUNT_PUBLIC ? "public" : "?";
}

lp_status lp_rates_eigenvalues(const double *cov, int h, double *eig, int *n_clamped) {
    if (h < 1) return lp_errorf(LP_ERR_ARG, "eigenvalues: H must be >= 1, got %d", h);
    const size_t hh = (size_t)h * (size_t)h;
    for (size_t i = 0; i < hh; i++)
        if (!isfinite(cov[i]))
            return lp_errorf(LP_ERR_NUMERIC, "eigenvalues: non-finite covariance entry at (%zu,%zu)", i / (size_t)h,
                             i % (size_t)h);
    double *a = lp_malloc(hh, sizeof(double)); /* dsyevd overwrites its input */
    if (!a) return lp_error_wrap(LP_ERR_NOMEM, "eigenvalues: H=%d", h);
    memcpy(a, cov, hh * sizeof(double));
    // Values only ('N'); the upper triangle is read. LAPACK returns them ascending.
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', h, a, h, eig);
    lp_free(a);
    if (info != 0)
        return lp_errorf(LP_ERR_NUMERIC, "eigenvalues: LAPACKE_dsyevd failed (info=%d) on a %dx%d matrix", (int)info,
                         h, h);
    for (int i = 0, j = h - 1; i < j; i++, j--) {
        double t = eig[i];
        eig[i] = eig[j];
        eig[j] = t;
    }
    // A covariance is PSD: negative values are round-off (|λ| ~ eps·λ1·H) and would make the energy
    // fractions non-monotone, so they become 0. They sit at the end of the descending order.
    int clamped = 0;
    for (int i = 0; i < h; i++)
        if (eig[i] < 0) {
            eig[i] = 0;
            clamped++;
        }
    if (n_clamped) *n_clamped = clamped;
    return LP_OK;
}

int lp_rates_keep_at_tau(const double *eig, int h, double tau, lp_keep_count count) {
    double e = 0;
    for (int i = 0; i < h; i++) e += eig[i];
    // The cumulative sum below adds in the same order as e, so C(H) == e exactly and τ = 1 always stops.
    const double thr = tau * e;
    double c = 0;
    int k = h;
    if (count == LP_KEEP_COUNT_PUBLIC) { /* #{k : C(k) > τE}: the steps after the energy is reached */
        k = 0;
        for (int i = 0; i < h; i++) k += (c += eig[i]) > thr;
        return k < 1 ? 1 : k;
    }
    for (int i = 0; i < h; i++) {
        c += eig[i];
        if (c >= thr) {
            k = i + 1;
            break;
        }
    }
    if (count == LP_KEEP_COUNT_BELOW) k -= 1; /* #{k : C(k) < τE} is one less than the first k reaching it */
    return k < 1 ? 1 : k > h ? h : k;
}

int lp_rates_keep_of_rate(int h, double r) {
    const int k = h - (int)llround(r * h);
    return k < 1 ? 1 : k;
}

int lp_rates_round(int k, int h, int n) {
    if (n <= 1 || k >= h) return k;
    const int top = (h / n) * n; /* largest multiple of n that fits */
    if (top == 0) return h;      /* h < n: no multiple fits, keep the group whole */
    int m = ((k + n / 2) / n) * n; /* nearest multiple, ties (k = n/2 mod n with n even) upwards */
    if (m < n) m = n;
    if (m > top) m = top;
    return m;
}

lp_status lp_cost_curve_check(const lp_cost_curve *c) {
    if (c->n < 1 || c->n > LP_RATES_MAX_POINTS)
        return lp_errorf(LP_ERR_ARG, "cost curve: %d points (1 to %d)", c->n, LP_RATES_MAX_POINTS);
    for (int i = 0; i < c->n; i++) {
        if (!(c->rate[i] > 0 && c->rate[i] < 1) || (i > 0 && !(c->rate[i] > c->rate[i - 1])))
            return lp_errorf(LP_ERR_ARG, "cost curve: rate %g (point %d) is not in (0,1) or not ascending", c->rate[i], i);
        if (!isfinite(c->cost[i])) return lp_errorf(LP_ERR_ARG, "cost curve: cost at rate %g is not finite", c->rate[i]);
    }
    return LP_OK;
}

/* The envelope, from (0, 0), walked segment by segment: the first segment whose end exceeds θ holds the
 * answer (linear between its ends, whose start is <= θ). */
double lp_cost_curve_rate_at(const lp_cost_curve *c, double theta, double slope) {
    double r0 = 0, m = 0, e0 = 0; /* m: running maximum of the costs (at least 0) */
    for (int i = 0; i < c->n; i++) {
        const double r1 = c->rate[i];
        if (c->cost[i] > m) m = c->cost[i];
        const double e1 = m + slope * r1;
        if (e1 > theta) return e1 > e0 ? r0 + (r1 - r0) * (theta - e0) / (e1 - e0) : r0; /* e0 <= θ < e1 */
        r0 = r1;
        e0 = e1;
    }
    return r0;
}

/* The largest cost any group's envelope reaches; the slope that makes flat stretches rise (a millionth of
 * it per unit rate: far below any measured difference, yet every budget then has one answer). */
static double max_cost(const lp_rate_group *g, int n) {
    double m = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < g[i].curve->n; j++)
            if (g[i].curve->cost[j] > m) m = g[i].curve->cost[j];
    return m;
}

static double flat_slope(const lp_rate_group *g, int n) {
    const double m = max_cost(g, n);
    return 1e-6 * (m > 1e-12 ? m : 1e-12);
}

static lp_status group_set_eig(lp_rate_group *g, int h) {
    memset(g, 0, sizeof *g);
    if (h < 1) return lp_errorf(LP_ERR_ARG, "rate group: H must be >= 1, got %d", h);
    g->h = h;
    g->k = h;
    g->tau = NAN;
    g->energy_kept = NAN;
    return LP_OK;
}

static void group_energy(lp_rate_group *g) {
    double e = 0;
    for (int i = 0; i < g->h; i++) e += g->eig[i];
    g->energy = e;
}

lp_status lp_rate_group_from_cov(lp_rate_group *g, const double *cov, int h) {
    LP_TRY(group_set_eig(g, h));
    g->eig = lp_malloc((size_t)h, sizeof(double));
    if (!g->eig) return LP_ERR_NOMEM;
    lp_status st = lp_rates_eigenvalues(cov, h, g->eig, &g->n_clamped);
    if (st != LP_OK) {
        lp_rate_group_free(g);
        return st;
    }
    group_energy(g);
    return LP_OK;
}

lp_status lp_rate_group_from_eig(lp_rate_group *g, const double *eig, int h) {
    LP_TRY(group_set_eig(g, h));
    if (!eig) return LP_OK;
    for (int i = 0; i < h; i++)
        if (!(eig[i] >= 0) || !isfinite(eig[i]) || (i > 0 && eig[i] > eig[i - 1]))
            return lp_errorf(LP_ERR_ARG, "rate group: spectrum must be finite, >= 0 and descending (index %d: %g)", i,
                             eig[i]);
    g->eig = lp_malloc((size_t)h, sizeof(double));
    if (!g->eig) return LP_ERR_NOMEM;
    memcpy(g->eig, eig, (size_t)h * sizeof(double));
    group_energy(g);
    return LP_OK;
}

void lp_rate_group_free(lp_rate_group *g) {
    lp_free(g->eig);
    memset(g, 0, sizeof *g);
}

void lp_rates_opts_default(lp_rates_opts *o) {
    o->rule = LP_RATE_RULE_EIGEN;
    o->tau = 0.9;
    o->target_rate = -1;
    o->round_to = 0;
    o->count = LP_KEEP_COUNT_STANDARD;
    o->max_iter = 200;
}

lp_status lp_rates_opts_check(const lp_rates_opts *o) {
    if ((int)o->rule < 0 || (int)o->rule >= N_RULES) return lp_errorf(LP_ERR_ARG, "unknown rate rule %d", (int)o->rule);
    if (o->count != LP_KEEP_COUNT_STANDARD && o->count != LP_KEEP_COUNT_BELOW && o->count != LP_KEEP_COUNT_PUBLIC)
        return lp_errorf(LP_ERR_ARG, "unknown keep count %d", (int)o->count);
    if (o->target_rate >= 0 && !(o->target_rate < 1))
        return lp_errorf(LP_ERR_ARG, "--target-rate must be in [0,1), got %g", o->target_rate);
    if (o->target_rate < 0 && (o->rule == LP_RATE_RULE_UNIFORM || o->rule == LP_RATE_RULE_SENSITIVITY))
        return lp_errorf(LP_ERR_ARG, "--rate-rule %s needs --target-rate", lp_rate_rule_name(o->rule));
    if (o->target_rate >= 0 && o->rule == LP_RATE_RULE_GIVEN)
        return lp_errorf(LP_ERR_ARG, "per-group rates or sizes replace --target-rate: give one or the other");
    if (o->target_rate < 0 && !(o->tau > 0 && o->tau <= 1))
        return lp_errorf(LP_ERR_ARG, "--tau must be in (0,1], got %g", o->tau);
    if (o->round_to < 0) return lp_errorf(LP_ERR_ARG, "--round-to must be >= 0, got %d", o->round_to);
    if (o->max_iter < 1) return lp_errorf(LP_ERR_ARG, "τ search needs max_iter >= 1, got %d", o->max_iter);
    return LP_OK;
}

/* The budget of the sensitivity rule at search parameter p ∈ [0,1]: p = 0 the largest (every group at its
 * largest analysed rate), p = 1 none (nothing pruned). */
static double budget_at(const lp_rate_group *g, int n, double p) {
    return (1.0 - p) * (max_cost(g, n) + flat_slope(g, n));
}

/* The eigen rule's search runs over p ∈ [0,1] on which the mean rate never increases: p = τ, except for
 * the public count, whose rate grows with τ, where p = 1 − τ. The map is its own inverse. */
static double tau_of(double p, const lp_rates_opts *o) { return o->count == LP_KEEP_COUNT_PUBLIC ? 1.0 - p : p; }

/* k of every group at search parameter p (rounded); returns the mean rate over groups. The eigen rule
 * reads p as the energy τ = tau_of(p), the sensitivity rule as the budget budget_at(p): either way the
 * mean rate is non-increasing in p, which is all the search below needs. */
static double rates_at(lp_rate_group *g, int n, double p, const lp_rates_opts *o) {
    const int sens = o->rule == LP_RATE_RULE_SENSITIVITY;
    const double theta = sens ? budget_at(g, n, p) : 0, slope = sens ? flat_slope(g, n) : 0;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        int k;
        if (o->rule == LP_RATE_RULE_SENSITIVITY) {
            k = lp_rates_keep_of_rate(g[i].h, lp_cost_curve_rate_at(g[i].curve, theta, slope));
        } else {
            k = lp_rates_keep_at_tau(g[i].eig, g[i].h, tau_of(p, o), o->count);
        }
        g[i].k = lp_rates_round(k, g[i].h, o->round_to);
        sum += 1.0 - (double)g[i].k / g[i].h;
    }
    return sum / n;
}

/* Bisection on p ∈ [0,1] for the edge of a step of f = rates_at: on return above(lo) and !above(hi),
 * with above(p) = f(p) > r (strict) or f(p) >= r, and lo, hi adjacent doubles or max_iter steps apart.
 * Requires above(0) and !above(1). */
static void bracket(lp_rate_group *g, int n, const lp_rates_opts *o, double r, int strict, double *lo, double *hi) {
    double a = 0, b = 1;
    for (int it = 0; it < o->max_iter; it++) {
        const double mid = 0.5 * (a + b);
        if (mid <= a || mid >= b) break; /* adjacent doubles: the step edge is found */
        const double f = rates_at(g, n, mid, o);
        if (strict ? f > r : f >= r) a = mid;
        else b = mid;
    }
    *lo = a;
    *hi = b;
}

/* The search parameter whose mean rate is closest to target r (f non-increasing in p). */
static double search(lp_rate_group *g, int n, const lp_rates_opts *o, double r) {
    const double f0 = rates_at(g, n, 0.0, o); /* = f(0+): every group at its largest rate */
    double lo, hi;
    if (rates_at(g, n, 1.0, o) > r) return 1.0; /* even p = 1 prunes more than asked: the closest reachable */
    if (f0 <= r) {
        // The target is at or above the largest reachable rate: report the largest p that still gives it
        // (a τ near 0 would be correct but meaningless in a report).
        if (rates_at(g, n, 1.0, o) >= f0) return 1.0;
        bracket(g, n, o, f0, 0, &lo, &hi);
        return lo > 0 ? lo : hi;
    }
    // Bracket the first step with f ≤ r, then take the closer of the two neighbouring steps.
    bracket(g, n, o, r, 1, &lo, &hi);
    const double f_hi = rates_at(g, n, hi, o);
    const double f_lo = lo > 0 ? rates_at(g, n, lo, o) : INFINITY;
    return (fabs(f_lo - r) < fabs(f_hi - r)) ? lo : hi; /* ties: hi, which prunes less */
}

/* What a rule needs of every group: a spectrum (eigen), a valid curve (sensitivity), a keep count in
 * [1,h] (given). */
static lp_status check_groups(const lp_rate_group *g, int n, const lp_rates_opts *o) {
    for (int i = 0; i < n; i++) {
        if (o->rule == LP_RATE_RULE_EIGEN && !g[i].eig)
            return lp_errorf(LP_ERR_ARG, "rates: group %d has no spectrum (eigen rule)", i);
        if (o->rule == LP_RATE_RULE_SENSITIVITY) {
            if (!g[i].curve) return lp_errorf(LP_ERR_ARG, "rates: group %d has no sensitivity curve", i);
            const lp_status cs = lp_cost_curve_check(g[i].curve);
            if (cs != LP_OK) return lp_error_wrap(cs, "rates: group %d", i);
        }
        if (o->rule == LP_RATE_RULE_GIVEN && (g[i].want_k < 1 || g[i].want_k > g[i].h))
            return lp_errorf(LP_ERR_ARG, "rates: group %d: %d units to keep (must be in [1, %d])", i, g[i].want_k, g[i].h);
    }
    return LP_OK;
}

/* A group smaller than round_to has no multiple of it to shrink to and is kept whole (lp_rates_round):
 * `prune --round-to 1000` on a small model would prune nothing without a word. Said once per assignment. */
static void warn_round_to(const lp_rate_group *g, int n, const lp_rates_opts *o) {
    int whole = 0, smallest = 0;
    for (int i = 0; i < n; i++)
        if (o->round_to > 1 && g[i].h < o->round_to) {
            whole++;
            if (!smallest || g[i].h < smallest) smallest = g[i].h;
        }
    if (whole)
        lp_log(LP_LOG_WARN, "warning: --round-to %d is larger than %d of the %d unit groups (the smallest has %d "
                            "units): no multiple of it fits, so %s kept whole", o->round_to, whole, n, smallest,
               whole > 1 ? "they are" : "it is");
}

lp_status lp_rates_assign(lp_rate_group *g, int n, const lp_rates_opts *o, lp_rates_result *res) {
    LP_TRY(lp_rates_opts_check(o));
    if (n < 1) return lp_errorf(LP_ERR_ARG, "rates: no unit groups");
    LP_TRY(check_groups(g, n, o));
    double tau = NAN, budget = NAN;
    if (o->rule == LP_RATE_RULE_UNIFORM) {
        for (int i = 0; i < n; i++) {
            g[i].k = lp_rates_round(lp_rates_keep_of_rate(g[i].h, o->target_rate), g[i].h, o->round_to);
        }
    } else if (o->rule == LP_RATE_RULE_GIVEN) {
        for (int i = 0; i < n; i++) g[i].k = g[i].want_k; /* the user's sizes, exactly */
    } else {
        // f(p) = mean rate is non-increasing in p (k_g(p) and the rounding are non-decreasing).
        const int fixed_tau = o->rule == LP_RATE_RULE_EIGEN && o->target_rate < 0;
        const double p = fixed_tau ? tau_of(o->tau, o) : search(g, n, o, o->target_rate);
        rates_at(g, n, p, o);
        if (o->rule == LP_RATE_RULE_EIGEN) tau = tau_of(p, o);
        else budget = budget_at(g, n, p);
    }
    int kept = 0, total = 0;
    double sum = 0;
    for (int i = 0; i < n; i++) {
        g[i].tau = tau;
        g[i].rate = 1.0 - (double)g[i].k / g[i].h;
        if (g[i].eig) {
            double c = 0;
            for (int j = 0; j < g[i].k; j++) c += g[i].eig[j];
            g[i].energy_kept = g[i].energy > 0 ? c / g[i].energy : 1.0;
        } else {
            g[i].energy_kept = NAN;
        }
        kept += g[i].k;
        total += g[i].h;
        sum += g[i].rate;
    }
    warn_round_to(g, n, o);
    if (res) {
        res->tau = tau;
        res->budget = budget;
        res->mean_rate = sum / n;
        res->target_rate = o->target_rate;
        res->kept = kept;
        res->total = total;
    }
    return LP_OK;
}
