/* stats: exact mean and covariance of response vectors (one accumulator per unit group).
 *
 * Pruning step 1 (docs/METHOD.md, "Pruning"): the eigen rate rule needs the covariance of the hidden
 * state h of a unit group over many responses. This accumulator takes float32 rows of dimension H (the
 * hidden states of a batch at all valid steps, or only at the last step), copies them into a bounded
 * double-precision chunk buffer and folds each full chunk into the running statistics with one
 * cblas_dsyrk (a GEMM of the chunk with itself) plus one rank-1 update — Chan, Golub & LeVeque's pairwise
 * formula, so every accumulated term is centred and the result does not suffer the cancellation of the
 * one-pass  Σxxᵀ − N·mean·meanᵀ  formula (see stats.c). Memory is chunk_rows·H + H² + H doubles,
 * whatever the number of responses.
 *
 * Because rows are buffered, where the caller splits its input into calls does not matter: the same
 * rows in the same order give bit-identical results. Accumulators can be merged (lp_stats_merge), so
 * threads can each own one and combine at the end.
 *
 * Typical use:
 *     lp_stats s;  LP_TRY(lp_stats_init(&s, H, 0));
 *     for each batch: LP_TRY(lp_stats_add_seq(&s, h_seq, B, T, ld, lengths, LP_STATS_STEPS_ALL));
 *     LP_TRY(lp_stats_finish(&s, mean, cov));       // mean [H], cov [H,H] (population, divide by N)
 *     lp_stats_free(&s);
 */
#ifndef LP_PRUNE_STATS_H
#define LP_PRUNE_STATS_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Which time steps of a sequence batch are responses. */
typedef enum {
    LP_STATS_STEPS_ALL = 0, /* every valid step t < lengths[b] (default of --stats-steps) */
    LP_STATS_STEPS_LAST,    /* only t = lengths[b]-1 (the public code's choice: the final state) */
    LP_STATS_STEPS_FIRST    /* only t = 0: the final state of a backward direction aligned to input time */
} lp_stats_steps;

/* "all" | "last" | "first" → enum; LP_ERR_ARG with a message otherwise. */
lp_status lp_stats_steps_parse(const char *s, lp_stats_steps *out);
const char *lp_stats_steps_name(lp_stats_steps s);

typedef struct {
    int h;          /* response dimension H (units in the group) */
    int chunk_rows; /* capacity of the chunk buffer in rows */
    int pending;    /* rows in buf not yet folded into the statistics */
    int64_t n;      /* responses folded so far */
    double *mean;   /* [H] mean of the folded responses */
    double *m2;     /* [H,H] Σ (x−mean)(x−mean)ᵀ of the folded responses; upper triangle only (row-major) */
    double *buf;    /* [chunk_rows,H] double copy of pending rows */
    double *work;   /* [H] scratch: the mean of the chunk being folded, then the shift of the mean */
} lp_stats;

/* Prepare an empty accumulator for H-dimensional responses. chunk_rows <= 0 picks a default that keeps
 * the buffer near 8 MB (64 to 16384 rows). LP_ERR_ARG if h < 1, LP_ERR_NOMEM on allocation failure. */
lp_status lp_stats_init(lp_stats *s, int h, int chunk_rows);
void lp_stats_free(lp_stats *s);
/* Forget everything accumulated (sizes and buffers are kept). */
void lp_stats_reset(lp_stats *s);

/* Total responses seen so far (folded + pending). */
int64_t lp_stats_count(const lp_stats *s);

/* Add n rows of a float32 matrix: x is [n, ld] with the H responses in the first H columns of each row
 * (ld >= H; ld > H selects a column block, e.g. one direction of a concatenated BiLSTM output when x
 * points at its first column). LP_ERR_NUMERIC (naming the row and column) on a NaN/Inf; rows before it
 * have been added. */
lp_status lp_stats_add(lp_stats *s, const float *x, int64_t n, int64_t ld);

/* Add the responses of a sequence batch: h_seq is [B,T,ld] (row (b,t) starts at h_seq + (b*T+t)*ld, the
 * H responses are its first H columns). lengths [B] gives the valid steps of each sequence (NULL: all T
 * valid); a sequence of length 0 contributes nothing. LP_ERR_ARG if a length is outside [0,T]. */
lp_status lp_stats_add_seq(lp_stats *s, const float *h_seq, int b, int t, int64_t ld, const int *lengths,
                           lp_stats_steps steps);

/* dst ← statistics of the union of dst's and src's responses (Chan's merge). Both must have the same H.
 * src's pending rows are folded first (hence non-const); src is otherwise unchanged. */
lp_status lp_stats_merge(lp_stats *dst, lp_stats *src);

/* An accumulator as 1 + H + H² doubles (count, mean, m2), to send to another process: the size, and the
 * packing (pending rows folded first, hence non-const). lp_stats_merge_packed merges such a packed
 * accumulator into dst exactly as lp_stats_merge would merge the original. */
size_t lp_stats_packed_size(int h);
void lp_stats_pack(lp_stats *s, double *out);
lp_status lp_stats_merge_packed(lp_stats *dst, const double *in);

/* Fold pending rows and write mean [H] and the population covariance
 *     cov = (1/N) Σ_n (x_n − mean)(x_n − mean)ᵀ      [H,H], full symmetric matrix, row-major.
 * Either output may be NULL. Accumulation may continue afterwards. LP_ERR_ARG if no response was added. */
lp_status lp_stats_finish(lp_stats *s, double *mean, double *cov);

#endif
