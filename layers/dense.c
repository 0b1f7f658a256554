/* dense: see dense.h. */
#include "layers/dense.h"

#include "core/ops.h"

lp_tensor *lp_dense(lp_tape *tp, lp_tensor *x, lp_tensor *w, lp_tensor *b) {
    if (!x || !w) return NULL;
    LP_CHECK(w->ndim == 2 && lp_tensor_cols(x) == w->dims[1]);
    lp_tensor *y = lp_op_matmul(tp, x, w, 0, 1); // [..., F] · [N,F]^T -> [..., N]
    return b ? lp_op_bias_add(tp, y, b) : y;
}
