/* tape: reverse-mode automatic differentiation.
 *
 * An op computes its output right away (eager) and, when gradients are wanted, appends a node to the
 * tape: its inputs, outputs, saved state and a backward function. lp_tape_backward() seeds d(loss)=1
 * and runs the nodes' backward functions in reverse order; every backward *accumulates* (+=) into the
 * grad buffers of its inputs, so a tensor used twice receives both contributions.
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

/* Every op the tape knows. A test (tests/test_ops.c) runs a gradient check for each value below, so an
 * op cannot be added without a backward and a check. */
typedef enum {
    LP_OP_MATMUL,     /* core/ops.h */
    LP_OP_ADD,
    LP_OP_BIAS_ADD,
    LP_OP_MUL,
    LP_OP_SIGMOID,
    LP_OP_TANH,
    LP_OP_CONCAT,
    LP_OP_SPLIT,
    LP_OP_SLICE_T,
    LP_OP_MEAN_T,
    LP_OP_SUM,
    LP_OP_BCE_LOGITS,
    LP_OP_DROPOUT,
    LP_OP_LSTM,       /* layers/lstm.h: the fused sequence op */
    LP_OP_MOE_MIX,    /* layers/moe.h: mixture-of-experts probabilities from gate and expert logits */
    LP_OP_BCE_PROBS,  /* layers/moe.h: binary cross-entropy on probabilities (starter-code epsilon) */
    LP_OP_EMBEDDING,  /* lm/lm_ops.h: embedding lookup */
    LP_OP_SOFTMAX_XENT, /* lm/lm_ops.h: softmax cross-entropy with integer targets */
    LP_OP_BILSTM,     /* layers/bilstm.h: both directions of a bidirectional LSTM, fused */
    LP_OP_COUNT
} lp_op;

const char *lp_op_name(lp_op op);

typedef struct lp_node lp_node;
typedef void (*lp_backward_fn)(lp_node *node);

#define LP_NODE_MAX_IN 8
#define LP_NODE_MAX_OUT 4

struct lp_node {
    lp_op op;
    lp_backward_fn backward;
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

/* Append a node; `backward` must not be NULL (checked). Returns the node (for ctx/iarg) or NULL on
 * allocation failure. */
lp_node *lp_tape_record(lp_tape *tp, lp_op op, lp_backward_fn backward, lp_tensor *const *in, int n_in,
                        lp_tensor *const *out, int n_out);

/* Reverse pass from a scalar `loss`: sets loss->grad to 1 (adds 1) and runs every backward. */
lp_status lp_tape_backward(lp_tape *tp, lp_tensor *loss);

#endif
