/* gradcheck: central-difference gradient checker for tape ops and layers — run by the tests and by
 * `lstmprune gradcheck` (docs/TUTORIAL.md explains why it works).
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
 *   - which ops were on the tape (ops), so a test can prove that a case exercised the op it is filed
 *     under, and that every one of them has a gradient-check case in the op registry (below): a graph
 *     with an op missing there fails, so no op can be used in a checked graph without its own check.
 *
 * The forward function must be deterministic: the checker calls it 2 + 2*(checked elements) times.
 * Dropout, for example, must re-seed its lp_rng inside the forward function. */
#ifndef LP_GRADCHECK_H
#define LP_GRADCHECK_H
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
    int loss_float;        /* 1: accumulate L in float instead of double — only to show why the checker
                            * uses double: the difference L(x+eps) - L(x-eps) cancels most digits */
} lp_gc_opts;

#define LP_GC_MAX_OPS 32

/* How many nodes of each op a graph recorded, one entry per op descriptor (core/tape.h), in order of
 * first appearance. */
typedef struct {
    const lp_op_desc *op[LP_GC_MAX_OPS];
    int count[LP_GC_MAX_OPS];
    int n;
} lp_gc_ops;

/* Add every node of `tp` to *ops (start from a zeroed lp_gc_ops). */
void lp_gc_ops_add_tape(lp_gc_ops *ops, const lp_tape *tp);
/* Nodes of the op called `name` ("lstm", "matmul"). */
int lp_gc_ops_count(const lp_gc_ops *ops, const char *name);

/* Sizes of a layer check (see "the layer checks" below); 0 = the check's default. */
typedef struct {
    int batch, time, features, hidden, classes, experts;
    uint64_t seed; /* the data (inputs and weights); opts->seed draws the projection r */
} lp_gc_size;

/* The worst agreement found in one input tensor (merged by name over a check's configurations). */
#define LP_GC_MAX_TENSORS 16
typedef struct {
    char name[32];
    size_t n_checked;
    double worst_ratio;    /* as lp_gc_result.worst_ratio, over this tensor's elements */
    double worst_rel;
    double max_abs_grad;
} lp_gc_tensor_result;

typedef struct {
    int ok;                /* all elements within tolerance, accumulation and no-grad checks passed,
                            * every op in the registry */
    double worst_ratio;    /* max over elements of |num-ana| / (atol + rtol*max(|num|,|ana|)); <= 1 passes */
    double worst_rel;      /* max |num-ana| / max(|num|, |ana|, atol): the "relative error" to report */
    int worst_input;       /* where worst_ratio was found */
    size_t worst_index;
    double worst_num, worst_ana;
    size_t n_checked;      /* elements compared */
    double max_abs_grad;   /* largest |analytic| seen: a check whose gradients are all 0 proves little */
    int accumulate_ok;     /* second backward without zeroing gave 2x the gradient */
    int nograd_ok;         /* no nodes and no output grads with gradients disabled */
    lp_gc_ops ops;         /* nodes of each op recorded by one forward pass */
    lp_gc_tensor_result tensor[LP_GC_MAX_TENSORS]; /* per input tensor, in order of first appearance */
    int n_tensors;
    lp_gc_size size;       /* the sizes a layer check ran at (zero for an op's case) */
    char msg[256];         /* first problem found, "" when ok */
} lp_gc_result;

/* eps = 1e-2, rtol = 1e-2, atol = 1e-3, max_per_input = 0, seed = 1234, verbose = 0, loss_float = 0. */
void lp_gc_opts_default(lp_gc_opts *o);
/* *o, or the defaults when o is NULL (a case that tightens a tolerance scales the one it is given). */
lp_gc_opts lp_gc_opts_or_default(const lp_gc_opts *o);

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
/* The report of `lstmprune gradcheck`: the sizes (when a layer check set them), one line per input
 * tensor — elements checked, largest |gradient|, worst relative error, worst ratio to the threshold,
 * PASS/FAIL — the accumulation and no-grad checks, the ops recorded, and "<name>: PASS|FAIL". */
void lp_gc_result_report(FILE *f, const char *name, const lp_gc_result *r);

/* Fill a buffer with uniform values in [lo, hi) drawn from the test stream of `seed` (for cases). */
void lp_gc_fill_uniform(float *x, size_t n, double lo, double hi, uint64_t seed);
/* An input called `name` over buf (ndim axes `dims`), filled as lp_gc_fill_uniform does. */
lp_gc_input lp_gc_input_uniform(const char *name, float *buf, int ndim, const int *dims, double lo, double hi,
                                uint64_t seed);

/* ---- the op registry ----------------------------------------------------------------------------
 *
 * Every tape op of the library, by its descriptor's name, with its gradient-check case
 * (check/registry.c). A case builds small random instances of its op, runs lp_gradcheck on
 * each, merges the results into *res (which the caller has cleared with lp_gc_result_init) and returns
 * LP_OK when the check ran. The cases of a module's ops live in check/<module>_case.c;
 * tests/test_ops.c runs every case and checks that it recorded its op. `opts` (NULL: the defaults) gives
 * the step and tolerances; a case that knows its op needs tighter ones scales them (and says why). */
typedef lp_status (*lp_gc_case_fn)(const lp_gc_opts *opts, lp_gc_result *res);
typedef struct {
    const char *op;
    lp_gc_case_fn run;
} lp_gc_case;

extern const lp_gc_case lp_gc_cases[];
extern const int lp_gc_n_cases;

/* The registry entry of the op called `name`; NULL when there is none. */
const lp_gc_case *lp_gc_case_find(const char *name);

/* ---- the layer checks (what `lstmprune gradcheck --op NAME` runs) --------------------------------
 *
 * A layer check builds one layer at sizes the caller may choose and checks it over the configurations
 * that cover its code paths. Sizes left 0 take the check's default (small enough to run in well under a
 * second); `seed` 0 keeps the check's own data seeds. Which sizes a check reads is in its `sizes`. */

typedef lp_status (*lp_gc_check_fn)(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res);
typedef struct {
    const char *name;  /* "lstm", "lstm-cell", ... */
    const char *what;  /* one line: which function is checked and over which configurations */
    const char *sizes; /* the lp_gc_size fields it reads, as flags: "--batch --time --features --hidden" */
    lp_gc_check_fn run;
} lp_gc_check;

extern const lp_gc_check lp_gc_checks[];
extern const int lp_gc_n_checks;
/* The check called `name`; NULL when there is none. */
const lp_gc_check *lp_gc_check_find(const char *name);

/* The sizes a check runs at: size's non-zero fields, the defaults elsewhere. */
lp_gc_size lp_gc_size_or(const lp_gc_size *size, lp_gc_size defaults);
/* The data seed for a case's k-th buffer: size->seed * 1000 + k when a seed is given, else dflt + k. */
uint64_t lp_gc_data_seed(const lp_gc_size *size, uint64_t dflt, int k);

lp_status lp_gc_check_lstm(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_check_bilstm(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_check_lstm_cell(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_check_dense(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_check_moe(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_check_embedding(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res);

/* core/ops (check/ops_case.c) */
lp_status lp_gc_case_matmul(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_add(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_bias_add(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_mul(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_sigmoid(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_tanh(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_concat(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_split(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_slice_t(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_mean_t(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_sum(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_bce_logits(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_dropout(const lp_gc_opts *opts, lp_gc_result *res);
/* layers/lstm (check/lstm_case.c): five configurations (reverse, lengths, initial state). */
lp_status lp_gc_case_lstm(const lp_gc_opts *opts, lp_gc_result *res);
/* layers/bilstm (check/bilstm_case.c), run at the current OpenBLAS thread count. */
lp_status lp_gc_case_bilstm(const lp_gc_opts *opts, lp_gc_result *res);
/* layers/moe (check/moe_case.c) */
lp_status lp_gc_case_moe_mix(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_bce_probs(const lp_gc_opts *opts, lp_gc_result *res);
/* lm/lm_ops (check/lm_case.c) */
lp_status lp_gc_case_embedding(const lp_gc_opts *opts, lp_gc_result *res);
lp_status lp_gc_case_softmax_xent(const lp_gc_opts *opts, lp_gc_result *res);

#endif
