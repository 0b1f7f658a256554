/* tensor: a float32 view over memory someone else owns (the tape arena or a parameter block).
 *
 * Layout is row-major; the last dimension is the feature axis. Shapes used in the project:
 *   [B, F]      a batch of vectors
 *   [B, T, F]   a batch of sequences (batch-major, as the references and PyTorch batch_first)
 *   []          a scalar (ndim 0, one element)
 * `grad` has the same shape as `data` and is NULL when no gradient flows to the tensor. */
#ifndef LP_TENSOR_H
#define LP_TENSOR_H
#include <stddef.h>

#include "core/rng.h"

#define LP_MAX_DIMS 4

typedef struct lp_tensor {
    float *data;
    float *grad;
    int ndim;
    int dims[LP_MAX_DIMS];
} lp_tensor;

static inline size_t lp_tensor_numel(const lp_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->dims[i];
    return n;
}

/* Size of the last (feature) axis; 1 for a scalar. */
static inline int lp_tensor_cols(const lp_tensor *t) { return t->ndim ? t->dims[t->ndim - 1] : 1; }

/* Product of all axes but the last. */
static inline size_t lp_tensor_rows(const lp_tensor *t) {
    size_t n = 1;
    for (int i = 0; i + 1 < t->ndim; i++) n *= (size_t)t->dims[i];
    return n;
}

/* 1 when both tensors have the same shape. */
int lp_tensor_same_shape(const lp_tensor *a, const lp_tensor *b);

/* "[3, 6, 5]" into buf (for messages). */
const char *lp_tensor_shape_str(const lp_tensor *t, char *buf, size_t len);

/* Every element drawn from U(-bound, bound): (2u - 1)·bound in double, rounded once to float (the
 * initialisation of every model, with PyTorch's bounds for nn.LSTM and nn.Linear). */
void lp_tensor_fill_uniform(lp_tensor *t, float bound, lp_rng *r);

/* A shape mismatch inside an op is a programmer error: print the op and both shapes (b may be NULL),
 * then abort through lp_check_failed with file:line. LP_SHAPE_CHECK is always on. */
void lp_shape_fail(const char *op, const lp_tensor *a, const lp_tensor *b, const char *file, int line,
                   const char *expr);
#define LP_SHAPE_CHECK(cond, op, a, b) \
    do { if (!(cond)) lp_shape_fail((op), (a), (b), __FILE__, __LINE__, #cond); } while (0)

#endif
