/* tape: reverse-mode automatic differentiation.
 *
 * An op computes its output right away (eager) and, when gradients are wanted, appends a node to the
 * tape: its inputs, outputs, saved state and its op's descriptor (lp_op_desc: name and backward
 * function). lp_tape_backward() seeds d(loss)=1 and runs the nodes' backward functions in reverse
 * order; every backward *accumulates* (+=) into the grad buffers of its inputs, so a tensor used twice
 * receives both contributions.
 *
 * Memory: every tensor an op creates, its grad and its saved state live in the tape's arena, which
 * lp_tape_reset() recycles at the start of each step. Parameters live outside (core/params.h), so their
 * gradients survive the reset.
 *
 * Errors: shape mismatches are programmer errors (LP_CHECK). An op that cannot allocate returns NULL
 * with LP_ERR_NOMEM recorded, and every op given a NULL input returns NULL, so a forward pass can be
 * written without checks and the caller tests the final result once.
 *
 * A tensor takes part in differentiation when its grad is non-NULL. With gradients disabled
 * (lp_tape_set_grad(tp, 0), i.e. inference), ops allocate no grads and record no nodes. */
#ifndef LP_TAPE_H
#define LP_TAPE_H
#include <stddef.h>

#include "core/arena.h"
#include "core/status.h"
#include "core/tensor.h"

typedef struct lp_node lp_node;
/* Adds (+=) the gradients of the node's inputs from the gradients of its outputs. */
typedef void (*lp_backward_fn)(lp_node *node);

/* What the tape knows about an op. Each op defines its descriptor as a static constant in its own .c
 * file, next to its forward and backward functions, and every node it records points at it: an op on
 * any floor joins the tape by existing, and the tape names none. Tests list every op with its
 * gradient-check case in check/registry.c. */
typedef struct {
    const char *name;        /* "matmul", "tanh": for messages, and tests count nodes by it */
    lp_backward_fn backward; /* never NULL */
} lp_op_desc;

#define LP_NODE_MAX_IN 8
#define LP_NODE_MAX_OUT 4

struct lp_node {
    const lp_op_desc *op;
    lp_tensor *in[LP_NODE_MAX_IN];
    int n_in;
    lp_tensor *out[LP_NODE_MAX_OUT];
    int n_out;
    void *ctx;     /* op-specific saved state (in the tape arena) */
    int iarg[4];   /* small op parameters (axis sizes, flags) */
    float farg[2];
};

typedef struct {
    lp_arena arena;
    lp_node *nodes;
    int n_nodes, cap_nodes;
    int grad_enabled;
} lp_tape;

lp_status lp_tape_init(lp_tape *tp, size_t arena_block_bytes);
void lp_tape_free(lp_tape *tp);
/* Forget all nodes and arena memory (start of a step). */
void lp_tape_reset(lp_tape *tp);
void lp_tape_set_grad(lp_tape *tp, int enabled);

/* A new tensor in the arena. Its grad is allocated (zeroed) when `needs_grad` and gradients are
 * enabled. NULL on allocation failure. */
lp_tensor *lp_tape_tensor(lp_tape *tp, int ndim, const int *dims, int needs_grad);

/* A leaf tensor that views caller memory (e.g. a batch of inputs). `grad` may be NULL. */
lp_tensor *lp_tape_view(lp_tape *tp, float *data, float *grad, int ndim, const int *dims);

/* Scratch memory for an op's saved state. */
void *lp_tape_alloc(lp_tape *tp, size_t n, size_t size);

/* Does any input carry a gradient (and are gradients enabled)? Ops use this to decide whether their
 * output needs a grad and whether to record a node. */
int lp_tape_wants_grad(const lp_tape *tp, lp_tensor *const *in, int n_in);

/* Append a node of `op` (its backward must not be NULL; checked). Returns the node (for ctx/iarg) or
 * NULL on allocation failure. */
lp_node *lp_tape_record(lp_tape *tp, const lp_op_desc *op, lp_tensor *const *in, int n_in, lp_tensor *const *out,
                        int n_out);

/* Reverse pass from a scalar `loss`: sets loss->grad to 1 (adds 1) and runs every node's op->backward. */
lp_status lp_tape_backward(lp_tape *tp, lp_tensor *loss);

#endif
