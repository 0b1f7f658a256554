/* input_check: a model's batch checks, see input_check.h. */
#include "model/input_check.h"

lp_status lp_model_check_input(const lp_tensor *x, const int *lengths, const lp_tensor *labels, int input_dim,
                               int classes) {
    if (!x) return lp_errorf(LP_ERR_ARG, "model forward: no input");
    char s1[48], s2[48];
    if (x->ndim != 3 || x->dims[2] != input_dim)
        return lp_errorf(LP_ERR_SHAPE, "model forward: input is %s, the model wants [B, T, %d]",
                         lp_tensor_shape_str(x, s1, sizeof s1), input_dim);
    const int B = x->dims[0], T = x->dims[1];
    if (B < 1 || T < 1)
        return lp_errorf(LP_ERR_SHAPE, "model forward: input is %s, batch and time must be >= 1",
                         lp_tensor_shape_str(x, s1, sizeof s1));
    if (labels && (labels->ndim != 2 || labels->dims[0] != B || labels->dims[1] != classes))
        return lp_errorf(LP_ERR_SHAPE, "model forward: labels are %s, expected [%d, %d] for input %s",
                         lp_tensor_shape_str(labels, s1, sizeof s1), B, classes,
                         lp_tensor_shape_str(x, s2, sizeof s2));
    if (lengths)
        for (int b = 0; b < B; b++)
            if (lengths[b] < 0 || lengths[b] > T)
                return lp_errorf(LP_ERR_ARG, "model forward: length %d of sequence %d is outside [0, %d]", lengths[b],
                                 b, T);
    return LP_OK;
}
