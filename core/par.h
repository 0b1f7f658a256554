/* par: run the parts of one job at the same time, one thread per part, and wait for all of them.
 *
 * The project's own threads (the LSTM's batch-row parts, the BiLSTM's two directions, Adam's ranges)
 * are short fork/join sections between BLAS calls: the caller decides how many parts (never more than
 * OpenBLAS's thread count, the one knob for the cores used) and prepares one argument per part; part 0
 * runs in the calling thread, the others in new threads. Each part must write its own memory. If a
 * thread cannot be created its part runs in the calling thread after the others, so the result is the
 * same, only slower. */
#ifndef LP_PAR_H
#define LP_PAR_H

#include <stddef.h>

/* The most parts one call runs (more are run by the caller, see above). */
#define LP_PAR_MAX 16

/* fn(args + i*stride) for i in [0, n), concurrently; returns when all have returned. n <= 1: fn(args). */
void lp_par_run(void *(*fn)(void *), void *args, size_t stride, int n);

#endif
