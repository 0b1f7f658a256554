/* clock: wall time for throughput and latency figures (CLOCK_MONOTONIC; never clock(), which counts CPU
 * time of all threads). */
#ifndef LP_CLOCK_H
#define LP_CLOCK_H
#include <time.h>

/* Seconds since an arbitrary fixed point. */
static inline double lp_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
