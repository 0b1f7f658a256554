/* moe_case: the central-difference gradient checks of the two ops of layers/moe — moe_mix and
 * bce_probs — shared by tests/test_ops.c (one case per op) and tests/test_moe.c.
 *
 * moe_mix: four configurations merged into one result: the starter code's E = 2; E = 1 (one real and
 * one dummy gate); E = 3 with three leading axes [2,2,K]; and gates spread over ±6 so the softmax is
 * far from uniform (one gate dominates) while the gradients stay well above the absolute floor.
 * bce_probs: probabilities in [0.2, 0.8] with 0/1 targets and with soft targets, and the chain
 * z -> moe_mix -> bce_probs at the probabilities the head really produces. */
#include <string.h>

#include "layers/moe.h"
#include "check/gradcheck.h"

typedef struct {
    int C, E;
} mix_cfg;

static int mix_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    const mix_cfg *c = user;
    out[0] = lp_op_moe_mix(tp, in[0], c->C, c->E);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_moe_mix(const lp_gc_opts *opts, lp_gc_result *res) {
    /* z of order 1 (or up to 6 in the last configuration): the outputs are sums of products of softmax
     * weights and sigmoids, smooth with derivatives of order <= 1, so the default tolerances of
     * lp_gc_opts_default (eps 1e-2, rtol 1e-2, atol 1e-3; see gradcheck.c) apply. */
    float z[2 * 2 * 3 * 7]; /* the largest configuration below */
    struct {
        mix_cfg c;
        int ndim, dims[3];
        double lo, hi;
        uint64_t seed;
    } cfgs[] = {
        {{3, 2}, 2, {4, 3 * 5}, -2, 2, 301},       /* starter code: E = 2 */
        {{4, 1}, 2, {3, 4 * 3}, -2, 2, 302},       /* E = 1 */
        {{3, 3}, 3, {2, 2, 3 * 7}, -2, 2, 303},    /* leading axes kept, E = 3 */
        {{2, 2}, 2, {3, 2 * 5}, -6, 6, 304},       /* peaked softmax */
    };
    lp_gc_result_init(res);
    for (size_t k = 0; k < sizeof cfgs / sizeof cfgs[0]; k++) {
        lp_gc_input in = {"z", z, cfgs[k].ndim, {0}, 0};
        size_t n = 1;
        for (int d = 0; d < cfgs[k].ndim; d++) {
            in.dims[d] = cfgs[k].dims[d];
            n *= (size_t)cfgs[k].dims[d];
        }
        LP_CHECK(n <= sizeof z / sizeof z[0]);
        lp_gc_fill_uniform(z, n, cfgs[k].lo, cfgs[k].hi, cfgs[k].seed);
        lp_gc_result r;
        lp_status st = lp_gradcheck(mix_forward, &cfgs[k].c, &in, 1, opts, &r);
        lp_gc_result_merge(res, &r);
        if (st != LP_OK) return st;
    }
    return LP_OK;
}

static int bce_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)user;
    (void)n_in;
    out[0] = lp_op_bce_probs(tp, in[0], in[1]);
    return out[0] ? 1 : 0;
}

static int chain_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)n_in;
    const mix_cfg *c = user;
    out[0] = lp_op_bce_probs(tp, lp_op_moe_mix(tp, in[0], c->C, c->E), in[1]);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_case_bce_probs(const lp_gc_opts *opts, lp_gc_result *res) {
    enum { B = 4, C = 5 };
    /* p in [0.2, 0.8]: the central difference of log(p + ε) is off by eps²/(3p²) relative, 8e-4 at
     * p = 0.2 with eps = 1e-2, well under rtol = 1e-2 (near p = 0 the loss is too curved for a 1e-2
     * step; the p = 0/1 edge is checked against the formula in tests/test_moe.c instead). */
    float p[B * C], y[B * C], z[B * C * 5], yc[B * C];
    lp_gc_fill_uniform(p, B * C, 0.2, 0.8, 311);
    lp_gc_fill_uniform(y, B * C, 0, 1, 312);
    for (int i = 0; i < B * C; i++) yc[i] = y[i] < 0.5f ? 0.0f : 1.0f; /* hard targets */
    lp_gc_input in[2] = {{"p", p, 2, {B, C}, 0}, {"y", yc, 2, {B, C}, 1}};
    lp_gc_result_init(res);
    lp_gc_result r;
    lp_status st = lp_gradcheck(bce_forward, NULL, in, 2, opts, &r);
    lp_gc_result_merge(res, &r);
    if (st != LP_OK) return st;

    in[1].data = y; /* soft targets in [0,1]: both terms of every element count */
    st = lp_gradcheck(bce_forward, NULL, in, 2, opts, &r);
    lp_gc_result_merge(res, &r);
    if (st != LP_OK) return st;

    /* The chain through the head (E = 2), with z of order 1 the head's p is in ~[0.1, 0.6]. */
    mix_cfg c = {C, 2};
    lp_gc_fill_uniform(z, B * C * 5, -1, 1, 313);
    lp_gc_input in2[2] = {{"z", z, 2, {B, C * 5}, 0}, {"y", yc, 2, {B, C}, 1}};
    st = lp_gradcheck(chain_forward, &c, in2, 2, opts, &r);
    lp_gc_result_merge(res, &r);
    return st;
}
