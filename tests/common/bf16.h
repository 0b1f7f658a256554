/* bf16: what the tests of the bf16 precision (core/gemm.h) share — whether bf16 can run here, and the
 * relative error of a bf16 result against the fp32 one (tests/test_bf16_layers.c). */
#ifndef LP_TEST_BF16_H
#define LP_TEST_BF16_H
#include <stddef.h>

/* 1 when bf16 can run here; otherwise 0, after printing "bf16 not covered here: <why>" to stderr (no
 * oneDNN in this build, or no AVX512-BF16): the caller skips. */
int lp_test_bf16_ok(void);

/* ||a - b|| / ||b|| (2-norms, in double) over n values; ||a - b|| when b is all zeros. */
double lp_test_rel_err(const float *a, const float *b, size_t n);

#endif
