/* tensor: shape helpers, the uniform fill of model initialisation and the shape-check failure. */
#include "core/tensor.h"

#include <stdio.h>

#include "core/log.h"
#include "core/status.h"

int lp_tensor_same_shape(const lp_tensor *a, const lp_tensor *b) {
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

const char *lp_tensor_shape_str(const lp_tensor *t, char *buf, size_t len) {
    size_t off = 0;
    off += (size_t)snprintf(buf + off, len - off, "[");
    for (int i = 0; i < t->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ", %d" : "%d", t->dims[i]);
    if (off < len) snprintf(buf + off, len - off, "]");
    return buf;
}

void lp_tensor_fill_uniform(lp_tensor *t, float bound, lp_rng *r) {
    size_t n = lp_tensor_numel(t);
    for (size_t i = 0; i < n; i++) t->data[i] = (float)((2.0 * lp_rng_uniform(r) - 1.0) * bound);
}

void lp_shape_fail(const char *op, const lp_tensor *a, const lp_tensor *b, const char *file, int line,
                   const char *expr) {
    char sa[64], sb[64];
    lp_log(LP_LOG_FATAL, "%s: shapes %s and %s do not agree", op, lp_tensor_shape_str(a, sa, sizeof sa),
           b ? lp_tensor_shape_str(b, sb, sizeof sb) : "-");
    lp_check_failed(file, line, expr);
}
