/* par: see par.h. */
#include "core/par.h"

#include <pthread.h>

void lp_par_run(void *(*fn)(void *), void *args, size_t stride, int n) {
    char *base = args;
    pthread_t th[LP_PAR_MAX];
    int started[LP_PAR_MAX] = {0};
    for (int i = 1; i < n && i < LP_PAR_MAX; i++)
        started[i] = pthread_create(&th[i], NULL, fn, base + (size_t)i * stride) == 0;
    fn(base);
    for (int i = 1; i < n; i++) {
        if (i < LP_PAR_MAX && started[i]) pthread_join(th[i], NULL);
        else fn(base + (size_t)i * stride); /* no thread: the same work, in this thread */
    }
}
