/* blas_env: see blas_env.h. */
#include "core/blas_env.h"

#include <cblas.h>
#include <stdlib.h>
#include <unistd.h>

/* Each variable, its value, and a variable whose presence means the user chose already. */
static const struct {
    const char *name, *value, *unless;
} SETTINGS[] = {
    {"OPENBLAS_THREAD_TIMEOUT", LP_BLAS_THREAD_TIMEOUT, NULL},
    {"GOMP_SPINCOUNT", LP_GOMP_SPINCOUNT, "OMP_WAIT_POLICY"},
};

void lp_blas_env_apply(char **argv) {
    int set = 0;
    for (size_t i = 0; i < sizeof SETTINGS / sizeof SETTINGS[0]; i++) {
        if (getenv(SETTINGS[i].name) || (SETTINGS[i].unless && getenv(SETTINGS[i].unless))) continue;
        set += setenv(SETTINGS[i].name, SETTINGS[i].value, 1) == 0;
    }
    if (set) execv("/proc/self/exe", argv); /* returns only on failure: continue with the defaults */
}

void lp_blas_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}
