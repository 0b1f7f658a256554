/* refdata: reads the reference cases in ../shared/reference (*.txt) for tests.
 *
 * File format (written by PyTorch/numpy scripts, values in float64):
 *   # comment lines
 *   tensor NAME NDIM D1 ... Dn
 *   v v v ...           (prod(D) values, whitespace separated, any number of lines; 1 value if NDIM=0)
 * The root is $LP_SHARED (set by the Makefile) or ../shared. */
#ifndef LP_TEST_REFDATA_H
#define LP_TEST_REFDATA_H
#include <stddef.h>

typedef struct {
    char name[64];
    int ndim;
    int dims[4];
    size_t n;
    double *v;
} lp_ref_tensor;

typedef struct {
    lp_ref_tensor *t;
    int count;
} lp_ref;

/* Path of a file under the shared folder, e.g. lp_ref_path("reference/lstm_layer.txt"). Static buffer. */
const char *lp_ref_path(const char *rel);
/* Loads reference/<name>; aborts the test (with a message) when the file is missing or malformed. */
lp_ref *lp_ref_load(const char *name);
/* The tensor called `name`; aborts when absent. */
const lp_ref_tensor *lp_ref_get(const lp_ref *r, const char *name);
/* A float32 copy (caller frees). */
float *lp_ref_floats(const lp_ref_tensor *t);
void lp_ref_free(lp_ref *r);

/* Largest |a-b| / (atol + rtol*|b|) over n values; <= 1 means "within tolerance". Prints the worst
 * index when it exceeds 1. */
double lp_ref_compare(const char *what, const float *got, const double *want, size_t n, double atol,
                      double rtol);
/* cmocka assertion wrapper around lp_ref_compare. */
#define LP_ASSERT_CLOSE(what, got, want, n, atol, rtol) \
    assert_true(lp_ref_compare((what), (got), (want), (n), (atol), (rtol)) <= 1.0)

#endif
