/* clock: the median timing of repeated calls (contract in clock.h). */
#include "core/clock.h"

#include <stdlib.h>

#include "core/alloc.h"

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

lp_status lp_time_median_ms(lp_status (*fn)(void *user), void *user, int warmups, int reps, double *ms) {
    if (reps < 1 || warmups < 0) return lp_errorf(LP_ERR_ARG, "timing: reps must be >= 1 and warm-ups >= 0");
    double *t = lp_malloc((size_t)reps, sizeof *t);
    if (!t) return LP_ERR_NOMEM;
    lp_status s = LP_OK;
    for (int r = -warmups; r < reps && s == LP_OK; r++) {
        const double t0 = lp_now_s();
        s = fn(user);
        if (r >= 0) t[r] = (lp_now_s() - t0) * 1e3;
    }
    if (s == LP_OK) {
        qsort(t, (size_t)reps, sizeof *t, cmp_double);
        *ms = t[reps / 2];
    }
    lp_free(t);
    return s;
}
