/* params: named parameter tensors in one contiguous block (values) and a second one (gradients).
 *
 * A model declares its tensors first, then finalises; after that the views are stable and the whole
 * parameter set is one flat array, so the optimizer, the gradient norm, checkpoint I/O and (later) an
 * MPI all-reduce are each one loop or one call (as in llm.c). */
#ifndef LP_PARAMS_H
#define LP_PARAMS_H
#include <stddef.h>

#include "core/status.h"
#include "core/tensor.h"

#define LP_PARAM_NAME_MAX 48
/* Parameters of one model at most (2^28 floats: 1 GiB of values, as much again for gradients and twice
 * that for Adam's moments). The largest real models here (Zaremba's large PTB LM, 66M) are well below;
 * a config or checkpoint asking for more is refused before anything is allocated. */
#define LP_PARAMS_MAX_NUMEL ((size_t)1 << 28)

typedef struct {
    char name[LP_PARAM_NAME_MAX];
    lp_tensor t;    /* t.data and t.grad point into the blocks below */
    size_t offset;  /* element offset in the blocks */
} lp_param;

typedef struct {
    lp_param *items;
    int count, cap;
    float *data;  /* numel floats, 64-byte aligned */
    float *grad;  /* numel floats */
    size_t numel;
    int finalized;
} lp_params;

void lp_params_init(lp_params *ps);
/* Declare a tensor; returns its index, or -1 (LP_ERR_ARG/NOMEM recorded) on a duplicate name or
 * allocation failure. Only before finalize. */
int lp_params_declare(lp_params *ps, const char *name, int ndim, const int *dims);
/* Allocate both blocks (zeroed) and point every tensor into them. LP_ERR_ARG naming the limit when the
 * declared tensors hold more than LP_PARAMS_MAX_NUMEL values. */
lp_status lp_params_finalize(lp_params *ps);
/* By name; NULL when absent. */
lp_tensor *lp_params_find(lp_params *ps, const char *name);
void lp_params_zero_grad(lp_params *ps);
void lp_params_free(lp_params *ps);

#endif
