/* dense: the fully connected layer y = x·W^T + b, as in PyTorch's nn.Linear.
 *
 * Built from two tape ops (core/ops.h): lp_op_matmul with W transposed, then lp_op_bias_add, so its
 * backward is theirs: dx += dy·W, dW += dy^T·x, db += column sums of dy. x may be [B,F] or [B,T,F]
 * (leading axes are kept). W is [N,F] (one row per output, the layout whose columns a pruned input unit
 * removes), b is [N] or NULL. */
#ifndef LP_DENSE_H
#define LP_DENSE_H

#include "core/tape.h"

/* y [..., N] = x [..., F] · w^T + b. NULL when an input is NULL or memory ran out. */
lp_tensor *lp_dense(lp_tape *tp, lp_tensor *x, lp_tensor *w, lp_tensor *b);

#endif
