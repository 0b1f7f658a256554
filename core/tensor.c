/* tensor: shape helpers. */
#include "core/tensor.h"

#include <stdio.h>

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
