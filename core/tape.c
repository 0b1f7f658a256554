/* tape: node list, arena tensors and the reverse pass. The ops themselves live elsewhere, each with its
 * descriptor (core/ops.c holds the primitive ones). */
#include "core/tape.h"

#include <string.h>

#include "core/alloc.h"

lp_status lp_tape_init(lp_tape *tp, size_t arena_block_bytes) {
    memset(tp, 0, sizeof *tp);
    lp_arena_init(&tp->arena, arena_block_bytes);
    tp->grad_enabled = 1;
    tp->cap_nodes = 256;
    tp->nodes = lp_malloc((size_t)tp->cap_nodes, sizeof *tp->nodes);
    return tp->nodes ? LP_OK : LP_ERR_NOMEM;
}

void lp_tape_free(lp_tape *tp) {
    lp_arena_free(&tp->arena);
    lp_free(tp->nodes);
    memset(tp, 0, sizeof *tp);
}

void lp_tape_reset(lp_tape *tp) {
    tp->n_nodes = 0;
    lp_arena_reset(&tp->arena);
}

void lp_tape_set_grad(lp_tape *tp, int enabled) { tp->grad_enabled = enabled; }

lp_tensor *lp_tape_tensor(lp_tape *tp, int ndim, const int *dims, int needs_grad) {
    LP_CHECK(ndim >= 0 && ndim <= LP_MAX_DIMS);
    lp_tensor *t = lp_arena_alloc(&tp->arena, 1, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        LP_CHECK(dims[i] >= 0);
        t->dims[i] = dims[i];
    }
    size_t n = lp_tensor_numel(t);
    t->data = lp_arena_alloc(&tp->arena, n, sizeof(float));
    if (!t->data) return NULL;
    if (needs_grad && tp->grad_enabled) {
        t->grad = lp_arena_zalloc(&tp->arena, n, sizeof(float));
        if (!t->grad) return NULL;
    }
    return t;
}

lp_tensor *lp_tape_view(lp_tape *tp, float *data, float *grad, int ndim, const int *dims) {
    LP_CHECK(ndim >= 0 && ndim <= LP_MAX_DIMS);
    lp_tensor *t = lp_arena_alloc(&tp->arena, 1, sizeof *t);
    if (!t) return NULL;
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->dims[i] = dims[i];
    t->data = data;
    t->grad = tp->grad_enabled ? grad : NULL;
    return t;
}

void *lp_tape_alloc(lp_tape *tp, size_t n, size_t size) { return lp_arena_alloc(&tp->arena, n, size); }

int lp_tape_wants_grad(const lp_tape *tp, lp_tensor *const *in, int n_in) {
    if (!tp->grad_enabled) return 0;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->grad) return 1;
    return 0;
}

lp_node *lp_tape_record(lp_tape *tp, const lp_op_desc *op, lp_tensor *const *in, int n_in, lp_tensor *const *out,
                        int n_out) {
    LP_CHECK(op != NULL && op->backward != NULL);
    LP_CHECK(n_in >= 0 && n_in <= LP_NODE_MAX_IN && n_out >= 1 && n_out <= LP_NODE_MAX_OUT);
    if (tp->n_nodes == tp->cap_nodes) {
        int cap = tp->cap_nodes * 2;
        lp_node *nodes = lp_realloc(tp->nodes, (size_t)cap, sizeof *nodes);
        if (!nodes) return NULL;
        tp->nodes = nodes;
        tp->cap_nodes = cap;
    }
    lp_node *n = &tp->nodes[tp->n_nodes++];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->n_in = n_in;
    n->n_out = n_out;
    for (int i = 0; i < n_in; i++) n->in[i] = in[i];
    for (int i = 0; i < n_out; i++) n->out[i] = out[i];
    return n;
}

lp_status lp_tape_backward(lp_tape *tp, lp_tensor *loss) {
    if (!loss) return lp_errorf(LP_ERR_ARG, "backward: loss is NULL (the forward pass failed: %s)",
                                lp_last_error());
    if (lp_tensor_numel(loss) != 1 || !loss->grad)
        return lp_errorf(LP_ERR_ARG, "backward: loss must be a scalar that depends on a parameter");
    loss->grad[0] += 1.0f;
    for (int i = tp->n_nodes - 1; i >= 0; i--) tp->nodes[i].op->backward(&tp->nodes[i]);
    return LP_OK;
}
