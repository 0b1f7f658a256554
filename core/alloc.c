/* alloc: checked allocation wrappers. */
#include "core/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/status.h"

static int mul_overflows(size_t n, size_t size, size_t *out) {
    if (size != 0 && n > SIZE_MAX / size) return 1;
    *out = n * size;
    return 0;
}

void *lp_malloc(size_t n, size_t size) {
    size_t bytes;
    if (mul_overflows(n, size, &bytes)) {
        lp_errorf(LP_ERR_NOMEM, "allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *p = malloc(bytes ? bytes : 1);
    if (!p) lp_errorf(LP_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *lp_calloc(size_t n, size_t size) {
    void *p = lp_malloc(n, size);
    if (p) memset(p, 0, n * size);
    return p;
}

void *lp_realloc(void *p, size_t n, size_t size) {
    size_t bytes;
    if (mul_overflows(n, size, &bytes)) {
        lp_errorf(LP_ERR_NOMEM, "reallocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) lp_errorf(LP_ERR_NOMEM, "out of memory reallocating %zu bytes", bytes);
    return q;
}

void *lp_aligned(size_t n, size_t size) {
    size_t bytes;
    if (mul_overflows(n, size, &bytes) || bytes > SIZE_MAX - 64) {
        lp_errorf(LP_ERR_NOMEM, "aligned allocation of %zu x %zu bytes overflows", n, size);
        return NULL;
    }
    size_t rounded = (bytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!p) {
        lp_errorf(LP_ERR_NOMEM, "out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    memset(p, 0, rounded ? rounded : 64);
    return p;
}

void lp_free(void *p) { free(p); }

char *lp_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = lp_malloc(n, 1);
    if (d) memcpy(d, s, n);
    return d;
}
