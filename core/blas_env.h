/* blas_env: the thread settings that only the environment can change, applied by re-executing.
 *
 * Idle worker threads spin for a while after each multi-threaded product before they sleep: OpenBLAS's
 * (calling sched_yield) for about 2^28 cycles (~0.1 s), and those of the OpenMP runtime that oneDNN
 * runs the bf16 products on (libgomp) for 300000 iterations of its wait loop. Between
 * products this project runs its own work — the gate loops, the optimiser, and at two threads the
 * BiLSTM's two directions and the LSTM's row parts as two single-threaded streams (layers/bilstm.h,
 * layers/lstm.h "Threads") — so a spinning worker takes a core from that work. Both libraries read their
 * spin time only from the environment when they are loaded, before main() runs: no call can change it
 * later.
 *
 *   OPENBLAS_THREAD_TIMEOUT=20  2^20 cycles (~0.3 ms): trains as fast as the shortest spins and keeps
 *                               batch-1 inference, whose per-step products come a few microseconds
 *                               apart, from waking a sleeping worker at every step;
 *   GOMP_SPINCOUNT=3000         a hundredth of libgomp's default, the same for the bf16 products
 *                               (the default made the small shape's bf16 step and its batch-1 inference
 *                               much slower; 0, sleep at once, makes batch-1 inference slower still).
 *                               Not set when the user set OMP_WAIT_POLICY (GOMP_SPINCOUNT would
 *                               override it).
 *
 * PyTorch, which calls the same OpenBLAS from its own OpenMP threads, is faster with the defaults, so
 * bench/torch_ref.py keeps them: each side runs with its better setting (the measurements:
 * docs/BENCHMARKS.md, "Constants chosen by measurement").
 *
 * lp_blas_env_apply(argv) sets each variable the environment lacks and, if it set any, re-executes the
 * program (execv of /proc/self/exe with the same argv); in the re-executed process (or when the user set
 * them all) it does nothing, so the user's own values always win. If the re-exec fails the program
 * simply continues with the defaults. Call it first thing in main(). */
#ifndef LP_BLAS_ENV_H
#define LP_BLAS_ENV_H

/* The values set when the environment has none: workers spin ~0.3 ms (OpenBLAS) or 3000 wait-loop
 * iterations (libgomp), then sleep. */
#define LP_BLAS_THREAD_TIMEOUT "20"
#define LP_GOMP_SPINCOUNT "3000"

void lp_blas_env_apply(char **argv);

/* OpenBLAS's thread count for the GEMMs that follow (n <= 0: leave it). Runs are deterministic at a
 * fixed count. */
void lp_blas_set_threads(int n);

#endif
