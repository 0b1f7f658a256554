/* criteria: which units of a group to prune — geometric-median (FPGM), exact geometric median, norms,
 * random — and the selection of the kept units.
 *
 * Pruning step 3 (docs/METHOD.md, "Pruning"). Every unit j of an LSTM group is described by one vector
 * u_j: its input and recurrent weights over the four gates, u_j = [W_ih rows j, H+j, 2H+j, 3H+j |
 * W_hh rows j, H+j, 2H+j, 3H+j], length D = 4(F+H) (the bias is left out by default, as the paper says
 * "input and recurrent weights"; it can be appended). A criterion gives every unit a score; the units
 * with the SMALLEST scores are pruned:
 *   gm        score_j = Σ_k ||u_j − u_k||₂ (FPGM, He et al. 2019): small = close to the geometric median
 *             of the group, hence best replaced by the others;
 *   gm-exact  score_j = ||u_j − m||₂, m the geometric median by Weiszfeld's iteration;
 *   l1, l2    score_j = ||u_j||₁ or ||u_j||₂ (small weights pruned);
 *   random    score_j uniform in [0,1) from a caller-owned lp_rng (stream LP_RNG_STREAM_PRUNE).
 * Scores are computed in double. The order is ascending score with ties broken by ascending index, so
 * the result is deterministic. Everything works on plain arrays; nothing knows about models.
 *
 *     float *u = ...[H*D];  LP_TRY(lp_criteria_unit_vectors(w_ih, w_hh, NULL, h, f, u));
 *     double *score = ...[H];  LP_TRY(lp_criteria_score(&opts, u, h, d, score));
 *     int *kept = ...[k];  LP_TRY(lp_criteria_select(score, h, k, kept));   // ascending unit indices
 */
#ifndef LP_PRUNE_CRITERIA_H
#define LP_PRUNE_CRITERIA_H

#include "core/rng.h"
#include "core/status.h"

typedef enum {
    LP_CRITERION_GM = 0,  /* sum of distances to the other units (default) */
    LP_CRITERION_GM_EXACT,/* distance to the Weiszfeld geometric median */
    LP_CRITERION_L1,
    LP_CRITERION_L2,
    LP_CRITERION_RANDOM
} lp_criterion;

/* "gm" | "gm-exact" | "l1" | "l2" | "random" */
lp_status lp_criterion_parse(const char *s, lp_criterion *out);
const char *lp_criterion_name(lp_criterion c);

typedef struct {
    lp_criterion criterion;
    double gm_tol;   /* gm-exact: stop when the median moves less than gm_tol·(1 + ||m||) (default 1e-10) */
    int gm_max_iter; /* gm-exact: Weiszfeld iterations at most (default 1000) */
    lp_rng *rng;     /* random: caller-owned, lp_rng_init(rng, seed, LP_RNG_STREAM_PRUNE); successive groups
                        continue the same stream, so one seed fixes the whole pruning */
} lp_criteria_opts;

void lp_criteria_opts_default(lp_criteria_opts *o);

/* Length of a unit vector: 4(F+H), plus 4 when the bias is included. */
int lp_criteria_unit_dim(int f, int h, int with_bias);

/* Build the unit vectors of one LSTM group. w_ih is [4H,F], w_hh is [4H,H], b is [4H] or NULL (gate
 * order i,f,g,o; any order gives the same vectors up to a permutation of coordinates, which no
 * criterion sees). u is [H, D]: row j = (w_ih[j], w_ih[H+j], w_ih[2H+j], w_ih[3H+j], w_hh[j], w_hh[H+j],
 * w_hh[2H+j], w_hh[3H+j], and if b: b[j], b[H+j], b[2H+j], b[3H+j]). */
lp_status lp_criteria_unit_vectors(const float *w_ih, const float *w_hh, const float *b, int h, int f, float *u);

/* Geometric median of the n rows of x [n,d] (double): argmin_m Σ_i ||x_i − m||₂, by Weiszfeld's
 * iteration from the centroid, with the Vardi–Zhang step when the iterate lands on a data point (the
 * plain update divides by zero there). Writes m [d] and the iterations used (iters may be NULL).
 * Returns LP_OK also when max_iter is reached (the iterate is then still a good approximation; compare
 * *iters with max_iter to know). */
lp_status lp_criteria_geometric_median(const double *x, int n, int d, double tol, int max_iter, double *m,
                                       int *iters);

/* Scores of the h units u [h,d] (float32 input, double arithmetic) into score [h]. LP_ERR_NUMERIC on
 * NaN/Inf weights; LP_ERR_ARG on a bad option (e.g. random without rng). */
lp_status lp_criteria_score(const lp_criteria_opts *o, const float *u, int h, int d, double *score);

/* order [h] = unit indices by ascending (score, index): order[0] is pruned first. */
lp_status lp_criteria_order(const double *score, int h, int *order);

/* The k units to keep (1 <= k <= h): all but the h−k first in lp_criteria_order, written to kept [k] in
 * ascending index order so that surgery preserves the order of the surviving units. */
lp_status lp_criteria_select(const double *score, int h, int k, int *kept);

#endif
