/* rates: how many units each group keeps — the eigen energy rule, the τ search and the uniform rule.
 *
 * Pruning step 2 (docs/METHOD.md, "Pruning"). From a group's response covariance [H,H] we take the
 * eigenvalues λ1 ≥ … ≥ λH (LAPACKE_dsyevd) and keep the smallest k whose leading eigenvalues hold a
 * fraction τ of the energy Σλ; the group's pruning rate is 1 − k/H. With a target mean rate r, τ is
 * searched (one τ shared by all groups) so that the mean rate over the groups is as close to r as the
 * discrete keep counts allow: the spectra only decide how the pruning is split across the groups.
 * The uniform rule (ablation) gives every group the rate r. The sensitivity rule splits r by each
 * group's cost curve (what pruning that group alone at a rate costs, measured without fine-tuning:
 * experiments/sensitivity.h): one cost budget θ shared by all groups, each group takes the largest rate
 * whose cost stays within θ, and θ is searched so that the mean rate is r (Distiller's sensitivity
 * analysis → pruning schedule, as a rule). The given rule takes each group's keep count as it is given
 * (per-group rates or sizes from the user). At least one unit is always kept, and an optional round_to
 * N keeps the sizes multiples of N (not for given sizes).
 *
 * Everything here works on plain arrays; nothing knows about models.
 *
 *     lp_rate_group g[G];
 *     for each group: LP_TRY(lp_rate_group_from_cov(&g[i], cov_i, H_i));
 *     lp_rates_opts o; lp_rates_opts_default(&o); o.target_rate = 0.3;
 *     lp_rates_result res; LP_TRY(lp_rates_assign(g, G, &o, &res));   // fills g[i].k, .rate, .tau
 */
#ifndef LP_PRUNE_RATES_H
#define LP_PRUNE_RATES_H

#include "core/status.h"

typedef enum {
    LP_RATE_RULE_EIGEN = 0,   /* k from the spectrum: energy τ (default) */
    LP_RATE_RULE_UNIFORM,     /* every group the same rate r: k = H − round(r·H) */
    LP_RATE_RULE_SENSITIVITY, /* rates from the groups' cost curves: one shared cost budget θ */
    LP_RATE_RULE_GIVEN        /* k of every group given (lp_rate_group.want_k) */
} lp_rate_rule;

/* A group's sensitivity curve: cost[i] of pruning the group alone at rate[i] (ascending, in (0,1)); the
 * cost of rate 0 is 0. Costs are in the task's unit (a GAP drop, a relative perplexity rise); a negative
 * cost (the pruned model scored better) counts as 0. */
#define LP_RATES_MAX_POINTS 64
typedef struct {
    int n;
    double rate[LP_RATES_MAX_POINTS];
    double cost[LP_RATES_MAX_POINTS];
} lp_cost_curve;

/* LP_OK, or LP_ERR_ARG naming the bad point: 1..LP_RATES_MAX_POINTS points, rates ascending in (0,1),
 * costs finite. Pure. */
lp_status lp_cost_curve_check(const lp_cost_curve *c);

/* The rate the sensitivity rule gives a group at cost budget θ >= 0: the largest r in [0, rate[n-1]]
 * with env(r) <= θ, where env(r) = M(r) + slope·r and M is the running maximum of the curve (from
 * (0, 0), linear between the points; negative costs count as 0): a cost that falls again after a cliff
 * does not count. The tiny slope > 0 makes flat stretches rise, so a budget splits free (or equally
 * costly) pruning evenly over the groups instead of jumping to the end of the stretch. Non-decreasing
 * in θ, continuous for slope > 0. */
double lp_cost_curve_rate_at(const lp_cost_curve *c, double theta, double slope);

/* How kept eigenvalues are counted at a given τ (E = Σλ, C(k) = Σ_{i≤k} λi).
 * STANDARD: k = smallest k with C(k) ≥ τ·E — the rule of the paper and of the reference case.
 * BELOW: k = #{k : C(k) < τ·E}, the count of leading eigenvalues whose cumulative energy is still
 *        strictly below τ (one less than STANDARD except at exact ties): an earlier guess at the public
 *        code's counting, kept for comparison.
 * PUBLIC: k = #{k : C(k) > τ·E}, what the public TensorFlow code computes (notebook.py, cmpt_prune_rate:
 *        `keep_cells = np.sum(evlcs > FLAGS.keep_energy_rate)` over the descending normalised spectrum):
 *        the eigenvalues AFTER the energy τ is reached, so a higher τ keeps fewer units and a
 *        concentrated spectrum keeps almost all of them — the paper's direction inverted. The τ search
 *        (lp_rates_assign) follows the inverted direction.
 * All are then clamped to [1, H]. */
typedef enum {
    LP_KEEP_COUNT_STANDARD = 0,
    LP_KEEP_COUNT_BELOW,
    LP_KEEP_COUNT_PUBLIC
} lp_keep_count;

lp_status lp_rate_rule_parse(const char *s, lp_rate_rule *out); /* "eigen" | "uniform" | "sensitivity" | "given" */
const char *lp_rate_rule_name(lp_rate_rule r);
lp_status lp_keep_count_parse(const char *s, lp_keep_count *out); /* "standard" | "below" | "public" */
const char *lp_keep_count_name(lp_keep_count c);

/* Eigenvalues of a symmetric matrix, descending. cov is [H,H] row-major (only read; copied for LAPACK).
 * Covariances are positive semi-definite, so negative eigenvalues can only be round-off: they are
 * clamped to 0 and counted in *n_clamped (may be NULL). LP_ERR_NUMERIC on NaN/Inf in cov or when LAPACK
 * does not converge; LP_ERR_NOMEM. */
lp_status lp_rates_eigenvalues(const double *cov, int h, double *eig, int *n_clamped);

/* Keep count at energy τ ∈ (0,1] for a descending spectrum eig [H] of non-negative values; always in
 * [1,H]. An all-zero spectrum (a group whose responses never vary) keeps 1. */
int lp_rates_keep_at_tau(const double *eig, int h, double tau, lp_keep_count count);

/* Units a group of h keeps at rate r ∈ [0,1): h − round(r·h), at least 1 (the uniform rule's count). */
int lp_rates_keep_of_rate(int h, double r);

/* Round a keep count to a multiple of n (n <= 1: unchanged). k = h (nothing pruned) stays h. Otherwise
 * the nearest multiple of n (ties upwards) within [n, n·floor(h/n)]; if h < n no multiple fits and the
 * group keeps all h units. Non-decreasing in k, so the τ search stays monotone. */
int lp_rates_round(int k, int h, int n);

/* One unit group's rate decision. */
typedef struct {
    int h;             /* units before pruning */
    int k;             /* units kept (1..h) */
    double tau;        /* energy fraction used (the shared τ); NAN under the uniform rule */
    double rate;       /* 1 − k/h */
    double energy;     /* Σλ (0 if no spectrum) */
    double energy_kept;/* Σ_{i≤k} λi / Σλ: the energy the kept count covers (1 if energy is 0; NAN if no spectrum) */
    double *eig;       /* [h] spectrum, descending, clamped ≥ 0; owned; NULL when built without one */
    int n_clamped;     /* negative round-off eigenvalues set to 0 */
    const lp_cost_curve *curve; /* sensitivity rule: the group's cost curve (borrowed; set by the caller) */
    int want_k;        /* given rule: units to keep, 1..h (set by the caller) */
} lp_rate_group;

/* A group from its response covariance [H,H]: computes and stores the spectrum; k = h until assigned. */
lp_status lp_rate_group_from_cov(lp_rate_group *g, const double *cov, int h);
/* A group from a known spectrum eig [H] (copied; must be descending and non-negative: LP_ERR_ARG
 * otherwise), or with eig = NULL a group without spectrum (only the uniform rule can size it). */
lp_status lp_rate_group_from_eig(lp_rate_group *g, const double *eig, int h);
void lp_rate_group_free(lp_rate_group *g);

typedef struct {
    lp_rate_rule rule;    /* eigen (default), uniform, sensitivity or given */
    double tau;           /* energy for the eigen rule when target_rate < 0 (default 0.9) */
    double target_rate;   /* < 0: use tau; else in [0,1): eigen → search τ; uniform → the rate of every group;
                           * sensitivity → search θ (required); given: ignored (must be < 0) */
    int round_to;         /* 0/1: none; N: keep sizes multiples of N (lp_rates_round) */
    lp_keep_count count;  /* standard (default) */
    int max_iter;         /* bisection steps of the τ search (default 200; τ resolution ≈ 2^-max_iter) */
} lp_rates_opts;

void lp_rates_opts_default(lp_rates_opts *o);
/* One message for a bad option set (a pure check, liblinear style); LP_OK if fine. */
lp_status lp_rates_opts_check(const lp_rates_opts *o);

typedef struct {
    double tau;         /* the τ finally used (eigen rule); NAN under the other rules */
    double budget;      /* the cost budget θ finally used (sensitivity rule); NAN under the other rules */
    double mean_rate;   /* achieved mean of the groups' rates */
    double target_rate; /* copy of the request (< 0 if none) */
    int kept;           /* Σ k over groups */
    int total;          /* Σ h over groups */
} lp_rates_result;

/* Decide k, rate and tau of every group (in place) by the options; res may be NULL.
 * Eigen rule with target_rate r: τ is bisected over (0,1]; the mean rate is a non-increasing step
 * function of τ, so the search brackets the first step at or below r and takes whichever of the two
 * neighbouring steps is closer to r (ties: the one pruning less). A target outside what any τ can reach
 * gives the nearest reachable mean rate. The sensitivity rule searches its budget θ the same way (the
 * mean rate is non-decreasing in θ); the largest reachable mean is the mean of the groups' largest
 * tested rates. LP_ERR_ARG on bad options, an eigen rule on a group without spectrum, a sensitivity
 * rule on a group without a valid curve, a given rule with want_k outside [1,h]. */
lp_status lp_rates_assign(lp_rate_group *groups, int n_groups, const lp_rates_opts *o, lp_rates_result *res);

#endif
