/* layers_case: the layer checks of `lstmprune gradcheck` that are not a single op's case — the LSTM built
 * from primitive ops (layers/lstm_cell.h), the dense layer, the mixture-of-experts head and the language
 * model's two ends (embedding in, softmax cross-entropy out) — plus the table of every layer check.
 *
 * Each builds its layer at the caller's sizes (lp_gc_size, defaults below) over the configurations that
 * cover its code paths, with inputs of order 1 and weights in about [-0.6, 0.6], so the gates and
 * sigmoids stay away from saturation, the gradients are of order 0.1..1 and the default tolerances of
 * lp_gc_opts_default apply as justified in gradcheck.c. */
#include <string.h>

#include "check/gradcheck.h"
#include "core/alloc.h"
#include "core/ops.h"
#include "core/rng.h"
#include "layers/dense.h"
#include "layers/lstm_cell.h"
#include "layers/moe.h"
#include "lm/lm_ops.h"

/* Up to 8 float buffers of one check, allocated together and freed together. */
typedef struct {
    float *v[8];
    int n;
} bufs;

/* Allocate buffer k of n[k] floats filled uniformly in [-range[k], range[k]] from the check's seeds. */
static lp_status bufs_alloc(bufs *b, int count, const size_t *n, const double *range, const lp_gc_size *size,
                            uint64_t seed) {
    memset(b, 0, sizeof *b);
    b->n = count;
    for (int k = 0; k < count; k++) {
        if (!(b->v[k] = lp_malloc(n[k], sizeof(float)))) return lp_errorf(LP_ERR_NOMEM, "gradcheck: out of memory");
        lp_gc_fill_uniform(b->v[k], n[k], -range[k], range[k], lp_gc_data_seed(size, seed, k));
    }
    return LP_OK;
}

static void bufs_free(bufs *b) {
    for (int k = 0; k < b->n; k++) lp_free(b->v[k]);
}

/* Run one configuration and fold it into the check's result. */
static lp_status run(lp_gc_result *res, lp_gc_forward_fn fwd, void *user, lp_gc_input *in, int n_in,
                     const lp_gc_opts *opts) {
    lp_gc_result r;
    lp_status st = lp_gradcheck(fwd, user, in, n_in, opts, &r);
    lp_gc_result_merge(res, &r);
    return st;
}

/* ---- lstm-cell: the LSTM from primitive ops ---------------------------------------------------- */

typedef struct {
    int reverse;
    const int *lengths;
    int with_state; /* inputs 4 and 5 are h0, c0 */
} cell_cfg;

static int cell_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const cell_cfg *c = user;
    (void)n_in;
    lp_lstm_weights w = {in[1], in[2], in[3]};
    lp_lstm_out o = lp_lstm_cell_seq(tp, in[0], &w, c->with_state ? in[4] : NULL, c->with_state ? in[5] : NULL,
                                     c->lengths, c->reverse);
    out[0] = o.h_seq, out[1] = o.h_last, out[2] = o.c_last;
    return o.h_seq ? 3 : 0;
}

lp_status lp_gc_check_lstm_cell(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res) {
    const lp_gc_size z = lp_gc_size_or(size, (lp_gc_size){.batch = 2, .time = 3, .features = 2, .hidden = 2});
    const int B = z.batch, T = z.time, F = z.features, H = z.hidden;
    const size_t n[6] = {(size_t)B * T * F, (size_t)4 * H * F, (size_t)4 * H * H, (size_t)4 * H, (size_t)B * H,
                         (size_t)B * H};
    static const double range[6] = {1, 0.6, 0.6, 0.6, 0.6, 0.6};
    bufs b;
    int *lengths = lp_malloc((size_t)B, sizeof(int));
    lp_status st = bufs_alloc(&b, 6, n, range, size, 61);
    if (st == LP_OK && !lengths) st = lp_errorf(LP_ERR_NOMEM, "gradcheck lstm-cell: out of memory");
    if (st == LP_OK) {
        for (int r = 0; r < B; r++) lengths[r] = r % 2 == 0 ? T : 1; /* full and length-1 rows */
        lp_gc_input in[6] = {{"x", b.v[0], 3, {B, T, F}, 0},     {"w_ih", b.v[1], 2, {4 * H, F}, 0},
                             {"w_hh", b.v[2], 2, {4 * H, H}, 0}, {"b", b.v[3], 1, {4 * H}, 0},
                             {"h0", b.v[4], 2, {B, H}, 0},       {"c0", b.v[5], 2, {B, H}, 0}};
        const cell_cfg cfgs[2] = {{0, NULL, 0}, {1, lengths, 1}}; /* plain; reverse + lengths + state */
        lp_gc_result_init(res);
        res->size = z;
        for (int k = 0; k < 2 && st == LP_OK; k++) st = run(res, cell_forward, (void *)&cfgs[k], in, 4 + 2 * k, opts);
    }
    lp_free(lengths);
    bufs_free(&b);
    return st;
}

/* ---- dense ------------------------------------------------------------------------------------- */

static int dense_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    (void)user;
    out[0] = lp_dense(tp, in[0], in[1], n_in > 2 ? in[2] : NULL);
    return out[0] ? 1 : 0;
}

lp_status lp_gc_check_dense(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res) {
    const lp_gc_size z = lp_gc_size_or(size, (lp_gc_size){.batch = 3, .time = 4, .features = 5, .hidden = 4});
    const int B = z.batch, T = z.time, F = z.features, N = z.hidden;
    const size_t n[3] = {(size_t)B * T * F, (size_t)N * F, (size_t)N};
    static const double range[3] = {1, 0.6, 0.6};
    bufs b;
    lp_status st = bufs_alloc(&b, 3, n, range, size, 91);
    if (st == LP_OK) {
        /* x [B,T,F] with a bias (leading axes kept), and x [B*T,F] without */
        lp_gc_input in[3] = {{"x", b.v[0], 3, {B, T, F}, 0}, {"w", b.v[1], 2, {N, F}, 0}, {"b", b.v[2], 1, {N}, 0}};
        lp_gc_result_init(res);
        res->size = z;
        st = run(res, dense_forward, NULL, in, 3, opts);
        in[0].ndim = 2, in[0].dims[0] = B * T, in[0].dims[1] = F;
        if (st == LP_OK) st = run(res, dense_forward, NULL, in, 2, opts);
    }
    bufs_free(&b);
    return st;
}

/* ---- moe: the mixture-of-experts head, alone and into its loss ---------------------------------- */

typedef struct {
    int classes, experts, loss;
} moe_cfg;

static int moe_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const moe_cfg *c = user;
    (void)n_in;
    lp_tensor *p = lp_moe(tp, in[0], in[1], in[2], c->classes, c->experts, NULL);
    out[0] = c->loss ? lp_op_bce_probs(tp, p, in[3]) : p;
    return out[0] ? 1 : 0;
}

lp_status lp_gc_check_moe(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res) {
    const lp_gc_size z = lp_gc_size_or(size, (lp_gc_size){.batch = 4, .features = 6, .classes = 5, .experts = 2});
    const int B = z.batch, D = z.features, C = z.classes, E = z.experts, R = lp_moe_rows(C, E);
    const size_t n[4] = {(size_t)B * D, (size_t)R * D, (size_t)R, (size_t)B * C};
    static const double range[4] = {1, 0.6, 0.6, 1};
    bufs b;
    lp_status st = bufs_alloc(&b, 4, n, range, size, 321);
    if (st == LP_OK) {
        for (size_t k = 0; k < n[3]; k++) b.v[3][k] = b.v[3][k] < 0 ? 0.0f : 1.0f; /* hard targets */
        lp_gc_input in[4] = {{"h", b.v[0], 2, {B, D}, 0},
                             {"w", b.v[1], 2, {R, D}, 0},
                             {"b", b.v[2], 1, {R}, 0},
                             {"y", b.v[3], 2, {B, C}, 1}};
        moe_cfg probs = {C, E, 0}, loss = {C, E, 1};
        lp_gc_result_init(res);
        res->size = z;
        st = run(res, moe_forward, &probs, in, 4, opts);
        if (st == LP_OK) st = run(res, moe_forward, &loss, in, 4, opts);
    }
    bufs_free(&b);
    return st;
}

/* ---- embedding: the language model's two ends -------------------------------------------------- */

typedef struct {
    const int32_t *ids, *targets;
    int B, T, loss;
} emb_cfg;

/* ids -> embedding [B,T,E]; with `loss`, on through logits [B,T,V] = emb · table^T (tied output) into
 * the mean softmax cross-entropy of `targets`, the LM's whole path minus the LSTM. */
static int emb_forward(void *user, lp_tape *tp, lp_tensor *const *in, int n_in, lp_tensor **out) {
    const emb_cfg *c = user;
    (void)n_in;
    lp_tensor *e = lp_op_embedding(tp, in[0], c->ids, c->B, c->T);
    out[0] = c->loss ? lp_op_softmax_xent(tp, lp_op_matmul(tp, e, in[0], 0, 1), c->targets) : e;
    return out[0] ? 1 : 0;
}

lp_status lp_gc_check_embedding(const lp_gc_size *size, const lp_gc_opts *opts, lp_gc_result *res) {
    const lp_gc_size z = lp_gc_size_or(size, (lp_gc_size){.batch = 3, .time = 5, .features = 4, .classes = 7});
    const int B = z.batch, T = z.time, E = z.features, V = z.classes;
    const size_t n[1] = {(size_t)V * E};
    static const double range[1] = {1};
    bufs b;
    int32_t *ids = lp_malloc((size_t)B * T * 2, sizeof *ids);
    lp_status st = bufs_alloc(&b, 1, n, range, size, 31);
    if (st == LP_OK && !ids) st = lp_errorf(LP_ERR_NOMEM, "gradcheck embedding: out of memory");
    if (st == LP_OK) {
        lp_rng rng; /* ids and targets with repeats (the scatter-add must sum them) */
        lp_rng_init(&rng, lp_gc_data_seed(size, 31, 1), LP_RNG_STREAM_TEST);
        for (int k = 0; k < 2 * B * T; k++) ids[k] = (int32_t)lp_rng_below(&rng, (uint32_t)V);
        lp_gc_input in[1] = {{"table", b.v[0], 2, {V, E}, 0}};
        emb_cfg lookup = {ids, NULL, B, T, 0}, lm = {ids, ids + B * T, B, T, 1};
        lp_gc_result_init(res);
        res->size = z;
        st = run(res, emb_forward, &lookup, in, 1, opts);
        if (st == LP_OK) st = run(res, emb_forward, &lm, in, 1, opts);
    }
    if (st == LP_OK) { /* and the op's own case: fixed ids, tighter tolerances (check/lm_case.c) */
        lp_gc_result r;
        lp_gc_result_init(&r);
        st = lp_gc_case_embedding(opts, &r);
        lp_gc_result_merge(res, &r);
    }
    lp_free(ids);
    bufs_free(&b);
    return st;
}

/* ---- the table ---------------------------------------------------------------------------------- */

const lp_gc_check lp_gc_checks[] = {
    {"lstm", "the fused LSTM op lp_lstm (layers/lstm.c): forward, reverse, lengths, h0/c0, all together",
     "--batch --time --features --hidden", lp_gc_check_lstm},
    {"bilstm", "the fused BiLSTM op lp_bilstm (layers/bilstm.c), Hb = H-1: lengths with biases, neither",
     "--batch --time --features --hidden", lp_gc_check_bilstm},
    {"lstm-cell", "the LSTM from primitive ops lp_lstm_cell_seq (layers/lstm_cell.c): plain; reverse+lengths+h0/c0",
     "--batch --time --features --hidden", lp_gc_check_lstm_cell},
    {"dense", "the dense layer lp_dense (layers/dense.c): [B,T,F] with bias, [B*T,F] without",
     "--batch --time --features --hidden", lp_gc_check_dense},
    {"moe", "the mixture-of-experts head lp_moe (layers/moe.c): probabilities, and into lp_op_bce_probs",
     "--batch --features --classes --experts", lp_gc_check_moe},
    {"embedding", "the LM's ends (lm/lm_ops.c): embedding lookup; lookup -> tied logits -> softmax_xent; the op's own case",
     "--batch --time --features --classes", lp_gc_check_embedding},
};

const int lp_gc_n_checks = (int)(sizeof lp_gc_checks / sizeof lp_gc_checks[0]);

const lp_gc_check *lp_gc_check_find(const char *name) {
    for (int i = 0; i < lp_gc_n_checks; i++)
        if (strcmp(lp_gc_checks[i].name, name) == 0) return &lp_gc_checks[i];
    return NULL;
}
