/* blas_env: see blas_env.h. */
#include "core/blas_env.h"

#include <stdlib.h>
#include <unistd.h>

void lp_blas_env_apply(char **argv) {
    if (getenv("OPENBLAS_THREAD_TIMEOUT")) return; /* the user's value, or already re-executed */
    if (setenv("OPENBLAS_THREAD_TIMEOUT", LP_BLAS_THREAD_TIMEOUT, 1) != 0) return;
    execv("/proc/self/exe", argv); /* returns only on failure: continue with OpenBLAS's default */
}
