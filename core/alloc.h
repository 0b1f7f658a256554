/* alloc: checked allocation. Sizes are multiplied with overflow checks; failures return NULL and
 * record LP_ERR_NOMEM with the requested size. Aligned allocations (64 bytes) suit SIMD and GEMM. */
#ifndef LP_ALLOC_H
#define LP_ALLOC_H
#include <stddef.h>

void *lp_malloc(size_t n, size_t size);  /* n*size bytes, overflow-checked; NULL + message on failure */
void *lp_calloc(size_t n, size_t size);  /* zeroed */
void *lp_realloc(void *p, size_t n, size_t size);
void *lp_aligned(size_t n, size_t size); /* 64-byte aligned, zeroed; free with lp_free */
void lp_free(void *p);
char *lp_strdup(const char *s);

/* Allocate-or-return-LP_ERR_NOMEM helper: `LP_ALLOC(p, n, sizeof *p);` in a function returning lp_status. */
#define LP_ALLOC(p, n, size) do { (p) = lp_malloc((n), (size)); if (!(p)) return LP_ERR_NOMEM; } while (0)

#endif
