/* blas_env: the one OpenBLAS setting that only the environment can change, applied by re-executing.
 *
 * With more than one thread, OpenBLAS's idle worker threads spin (calling sched_yield) for about 2^28
 * cycles (~0.1 s) after each multi-threaded GEMM before they sleep. Between GEMMs this project runs
 * its own work — the gate loops, the optimiser, and at two threads the BiLSTM's two directions and the
 * LSTM's row parts as two single-threaded streams (layers/bilstm.h, layers/lstm.h "Threads") — so a
 * spinning worker takes a core from that work. OpenBLAS reads the spin time only from
 * OPENBLAS_THREAD_TIMEOUT (2^n cycles, n in [4, 30]) when the library is loaded, before main() runs:
 * no call can change it later. A spin of 2^20 cycles (~0.3 ms) trains as fast as the shortest spins
 * and keeps batch-1 inference, whose per-step GEMMs come a few microseconds apart, from waking a
 * sleeping worker at every step; PyTorch, which calls the same OpenBLAS from its own OpenMP threads, is
 * faster with the default, so bench/torch_ref.py keeps it: each side runs with its better setting
 * (the measurements: docs/BENCHMARKS.md, "Constants chosen by measurement").
 *
 * lp_blas_env_apply(argv) sets OPENBLAS_THREAD_TIMEOUT=20 and re-executes the program (execv of
 * /proc/self/exe with the same argv) when the variable is unset; when it is set (by the user or by the
 * re-executed process) it does nothing, so the user's own value always wins. If the re-exec fails the
 * program simply continues with the default. Call it first thing in main(). */
#ifndef LP_BLAS_ENV_H
#define LP_BLAS_ENV_H

/* The value set when the environment has none: workers spin 2^20 cycles (~0.3 ms), then sleep. */
#define LP_BLAS_THREAD_TIMEOUT "20"

void lp_blas_env_apply(char **argv);

/* OpenBLAS's thread count for the GEMMs that follow (n <= 0: leave it). Runs are deterministic at a
 * fixed count. */
void lp_blas_set_threads(int n);

#endif
