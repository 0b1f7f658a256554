/* gradcheck: central-difference gradient checker for tape ops and layers (tests only).
 *
 * The caller describes the inputs (float buffers it owns, with shapes) and a forward function that,
 * given a fresh tape and one leaf tensor per input, builds the graph and returns its output tensor(s).
 * The checker forms the scalar
 *
 *     L = sum_k sum_j out_k[j] * r_k[j]        (r fixed, uniform in [-1,1], L accumulated in double)
 *
 * seeds every output's grad with r_k, runs lp_tape_backward() for the analytic gradient dL/dx, and
 * compares it with (L(x+eps) - L(x-eps)) / (x+ - x-) for every element of every input (or a random
 * subset of `max_per_input` elements), where x+ and x- are the float32 values actually stored, so the
 * step is exact and only the float32 forward passes carry rounding error.
 *
 * A random projection r (rather than sum(out)) makes every output element matter with a different
 * weight, so a backward that mixes up two output elements, flips a sign or drops a factor (1/B, 1/T)
 * cannot pass by symmetry.
 *
 * Besides the values, each run also checks:
 *   - accumulation: a second forward+backward without zeroing the leaf grads must give exactly twice
 *     the gradient (backward functions must add with +=, never assign);
 *   - no-grad mode: the same forward with gradients disabled records no node and gives no output grad;
 *   - which ops were on the tape (op_count), so a test can prove that a case exercised the op it is
 *     filed under.
 *
 * The forward function must be deterministic: the checker calls it 2 + 2*(checked elements) times.
 * Dropout, for example, must re-seed its lp_rng inside the forward function. */
#ifndef LP_TEST_GRADCHECK_H
#define LP_TEST_GRADCHECK_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/status.h"
#include "core/tape.h"

#define LP_GC_MAX_INPUTS 8
#define LP_GC_MAX_OUTPUTS 8

/* One input of the function under test. The checker perturbs `data` in place and restores it. */
typedef struct {
    const char *name;      /* for messages ("x", "w_ih") */
    float *data;           /* caller-owned values */
    int ndim;
    int dims[LP_MAX_DIMS];
    int no_grad;           /* 1: a constant (targets, ...): gets no grad and is not checked */
} lp_gc_input;

/* Build the graph on `tp` from the leaves in[0..n_in-1] (same order as the lp_gc_input array; leaves
 * of no_grad inputs have grad == NULL). Store the output tensors in out[] and return how many
 * (1..LP_GC_MAX_OUTPUTS); return 0 when an op failed (returned NULL). */
typedef int (*lp_gc_forward_fn)(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out);

typedef struct {
    /* Step and tolerances, see lp_gc_opts_default() for the values and why. An element passes when
     * |num - ana| <= atol + rtol * max(|num|, |ana|). */
    double eps, rtol, atol;
    int max_per_input;     /* check at most this many elements per input (random subset); 0 = all */
    uint64_t seed;         /* for r and for the subset */
    int verbose;           /* 1: print every failing element to stderr (the worst one is always kept) */
} lp_gc_opts;

typedef struct {
    int ok;                /* all elements within tolerance, accumulation and no-grad checks passed */
    double worst_ratio;    /* max over elements of |num-ana| / (atol + rtol*max(|num|,|ana|)); <= 1 passes */
    double worst_rel;      /* max |num-ana| / max(|num|, |ana|, atol): the "relative error" to report */
    int worst_input;       /* where worst_ratio was found */
    size_t worst_index;
    double worst_num, worst_ana;
    size_t n_checked;      /* elements compared */
    double max_abs_grad;   /* largest |analytic| seen: a check whose gradients are all 0 proves little */
    int accumulate_ok;     /* second backward without zeroing gave 2x the gradient */
    int nograd_ok;         /* no nodes and no output grads with gradients disabled */
    int op_count[LP_OP_COUNT]; /* nodes of each op recorded by one forward pass */
    char msg[256];         /* first problem found, "" when ok */
} lp_gc_result;

/* eps = 1e-2, rtol = 1e-2, atol = 1e-3, max_per_input = 0, seed = 1234, verbose = 0. */
void lp_gc_opts_default(lp_gc_opts *o);

/* Run the check (opts may be NULL for the defaults). Returns LP_OK when the check ran — whether it
 * passed is res->ok — or an error when it could not run (the forward failed, an output carries no
 * gradient, allocation failed); the message is in lp_last_error() and res->msg. */
lp_status lp_gradcheck(lp_gc_forward_fn fwd, void *user, lp_gc_input *in, int n_in, const lp_gc_opts *opts,
                       lp_gc_result *res);

/* Fold `r` into `acc` (a case made of several configurations reports the worst of them). Start from
 * an `acc` cleared by lp_gc_result_init(). */
void lp_gc_result_init(lp_gc_result *acc);
void lp_gc_result_merge(lp_gc_result *acc, const lp_gc_result *r);

/* One line: "<what>: ok|FAIL worst ratio .. rel .. (input i elem j: num .. ana ..) n=.. ops=..". */
void lp_gc_result_print(FILE *f, const char *what, const lp_gc_result *r);

/* Fill a buffer with uniform values in [lo, hi) drawn from the test stream of `seed` (for cases). */
void lp_gc_fill_uniform(float *x, size_t n, double lo, double hi, uint64_t seed);

/* The LP_OP_LSTM case of tests/test_ops.c. Defined by the lstm helper in tests/common/lstm_case.c
 * (it builds a small sequence through layers/lstm and runs lp_gradcheck, merging every configuration
 * it checks into *res). Returns LP_OK when the check ran. Not defined here on purpose: until the LSTM
 * layer exists, tests/test_ops.c fails on this slot. */
lp_status lp_test_lstm_gradcheck_case(lp_gc_result *res);
/* Cases of the ops defined outside core/ops (same contract), each next to its module:
 * tests/common/moe_case.c (layers/moe) and tests/common/lm_case.c (lm/lm_ops). */
lp_status lp_test_moe_mix_gradcheck_case(lp_gc_result *res);
lp_status lp_test_bce_probs_gradcheck_case(lp_gc_result *res);
lp_status lp_test_embedding_gradcheck_case(lp_gc_result *res);
lp_status lp_test_softmax_xent_gradcheck_case(lp_gc_result *res);
/* The LP_OP_BILSTM case (tests/common/bilstm_case.c, layers/bilstm), run at the current OpenBLAS thread
 * count. */
lp_status lp_test_bilstm_gradcheck_case(lp_gc_result *res);

#endif
