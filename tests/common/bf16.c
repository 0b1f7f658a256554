/* bf16: see bf16.h. */
#include "tests/common/bf16.h"

#include <math.h>
#include <stdio.h>

#include "core/gemm.h"
#include "core/status.h"

int lp_test_bf16_ok(void) {
    if (lp_precision_bf16_available() == LP_OK) return 1;
    fprintf(stderr, "bf16 not covered here: %s\n", lp_last_error());
    return 0;
}

double lp_test_rel_err(const float *a, const float *b, size_t n) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), m += (double)b[i] * b[i];
    return sqrt(d / (m > 0 ? m : 1));
}
