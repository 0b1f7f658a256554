/* clock: wall time for throughput and latency figures (CLOCK_MONOTONIC; never clock(), which counts CPU
 * time of all threads). */
#ifndef LP_CLOCK_H
#define LP_CLOCK_H
#include <time.h>

#include "core/status.h"

/* Seconds since an arbitrary fixed point. */
static inline double lp_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The median wall time in milliseconds of `reps` calls of fn(user), after `warmups` calls that are not
 * timed (caches, page faults, a tape's first growth); a call that fails stops with its status. LP_ERR_ARG
 * when reps < 1 or warmups < 0. */
lp_status lp_time_median_ms(lp_status (*fn)(void *user), void *user, int warmups, int reps, double *ms);

#endif
