/* blas_env: see blas_env.h. */
#include "core/blas_env.h"

#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

void lp_blas_env_apply(char **argv) {
    if (getenv("OPENBLAS_THREAD_TIMEOUT")) return; /* the user's value, or already re-executed */
    if (setenv("OPENBLAS_THREAD_TIMEOUT", LP_BLAS_THREAD_TIMEOUT, 1) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: continue with OpenBLAS's default */
}

void lp_blas_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}
