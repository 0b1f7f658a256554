/* input_check: the checks every model's forward makes on a batch before it builds any node (model/paper.c,
 * model/lstm_moe.c). Bad shapes from a caller are errors with a message, not aborts. */
#ifndef LP_MODEL_INPUT_CHECK_H
#define LP_MODEL_INPUT_CHECK_H

#include "core/status.h"
#include "core/tensor.h"

/* x [B, T, input_dim] with B, T >= 1; labels (may be NULL) [B, classes]; lengths (may be NULL) B values in
 * [0, T]. LP_ERR_ARG or LP_ERR_SHAPE naming the offending shape or sequence otherwise. */
lp_status lp_model_check_input(const lp_tensor *x, const int *lengths, const lp_tensor *labels, int input_dim,
                               int classes);

#endif
