/* dist: the processes of a data-parallel run — Open MPI underneath, one process without it.
 *
 * `mpirun -np N lstmprune train ...` (or `srun`) starts N copies of the program, the ranks 0..N-1. Each
 * computes its share of every training step (train/trainer.h: micro-batches) and the gradients are summed
 * across the ranks here. Started without a launcher, the program is rank 0 of 1 and never touches MPI: no
 * MPI environment is needed to run it, and every function below is then a plain local operation.
 *
 * What the ranks share is small: one contiguous gradient block per step (lp_dist_sum_float: MPI_Allreduce,
 * whose summation order MPI leaves to the implementation), or, for results that must not depend on how
 * many ranks there are, every micro-batch's gradient gathered and summed in micro-batch order
 * (lp_dist_ordered_sum: the same additions, in the same order, as one process summing its micro-batches).
 * docs/SCALING.md has the modes and their costs.
 *
 * Failure: a rank that fails calls lp_dist_abort, which ends every rank (MPI_Abort): a collective never
 * waits for a rank that has gone. */
#ifndef LP_CORE_DIST_H
#define LP_CORE_DIST_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Join the job when a launcher started this process (Open MPI's mpirun, or a PMI/PMIx launcher such as
 * srun: their environment variables say so); otherwise stay a single process. Call once, first thing in
 * main. LP_ERR_IO when a launcher is present but MPI cannot start. */
lp_status lp_dist_init(int *argc, char ***argv);
/* Leave the job (MPI_Finalize after a barrier); nothing without one. */
void lp_dist_finalize(void);
/* End every rank of the job with exit code `code` (MPI_Abort), or this process alone (exit). */
void lp_dist_abort(int code);

int lp_dist_rank(void); /* 0 without a job */
int lp_dist_size(void); /* 1 without a job */

/* Work alone for a while (solo = 1) and rejoin (solo = 0): in between this rank is rank 0 of 1 for every
 * function here, so that a whole task — a sweep's cell — runs on one rank as one process would, while
 * the other ranks run others. Rejoining needs every rank to rejoin (the next collective waits for all). */
void lp_dist_solo(int solo);
/* This process's rank and the job's size even while it works solo: for messages. */
int lp_dist_job_rank(void);
int lp_dist_job_size(void);

/* x[n] ← the element-wise sum over the ranks of x (in place; every rank gets the result). */
lp_status lp_dist_sum_float(float *x, size_t n);
lp_status lp_dist_sum_double(double *x, size_t n);

/* all[size·n] ← every rank's mine[n], in rank order (MPI_Allgather). */
lp_status lp_dist_allgather_double(const double *mine, size_t n, double *all);

/* The K micro-batch gradients g_0..g_{K-1} (each [n]) are spread over the ranks in blocks: rank r holds
 * g_k for k in [lp_dist_part_begin(K, r), lp_dist_part_begin(K, r + 1)) in mine (one after the other).
 * out[n] ← ((g_0 + g_1) + g_2) + ... + g_{K-1}, the same additions in the same order on every rank and for
 * any number of ranks (gathered in chunks of at most `chunk` floats per gradient, which bounds the memory
 * to K·chunk floats). mine may alias nothing in out. */
lp_status lp_dist_ordered_sum(const float *mine, int K, float *out, size_t n, size_t chunk);

/* x [rows][row_len] whose rows are split over K micro-batches as the tasks split a batch (micro-batch k:
 * rows [rows·k/K, rows·(k+1)/K)) and the micro-batches over the ranks as lp_dist_part_begin says: each
 * rank has brought its own rows up to date; afterwards every rank has all of them (MPI_Allgatherv). */
lp_status lp_dist_share_rows(float *x, int rows, size_t row_len, int K);

/* The first micro-batch of rank r when K micro-batches are split into lp_dist_size() contiguous blocks
 * (r = size: K). */
int lp_dist_part_begin(int K, int r);

/* 1 on rank 0, the rank that writes the files and prints the results of a command. */
int lp_dist_lead(void);
/* After a write only rank 0 makes (it passes its status, the others LP_OK): every rank waits for it, so
 * that any of them may read the file next. A rank 0 whose write failed returns its status at once; its
 * error then ends the job (lp_dist_abort) while the others wait here. */
lp_status lp_dist_written(lp_status s);

/* Every rank gets root's bytes. */
lp_status lp_dist_bcast(void *buf, size_t bytes, int root);
/* Wait for every rank. */
lp_status lp_dist_barrier(void);
/* The same, but without spinning: the wait polls every millisecond and sleeps in between, so that a rank
 * timing something alone (a latency measurement) does not share the cores with ranks busy-waiting. */
lp_status lp_dist_barrier_idle(void);
/* 1 if v is the same on every rank (a consistency check of decisions), else 0. */
int lp_dist_same_u64(uint64_t v);

#endif
