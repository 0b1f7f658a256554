/* dist: see dist.h. */
#include "core/dist.h"

#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"

static int g_active, g_rank, g_size = 1;
static int g_world_rank, g_world_size = 1; /* the job's, kept while a rank works solo */

/* A launcher's environment: Open MPI's mpirun, or PMI / PMIx (srun, other MPIs' launchers). */
static int launched(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    return 0;
}

static lp_status mpi_check(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return LP_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return lp_errorf(LP_ERR_IO, "rank %d: %s failed: %.*s", g_rank, what, len, msg);
}

lp_status lp_dist_init(int *argc, char ***argv) {
    if (g_active || !launched()) return LP_OK;
    int provided;
    /* FUNNELED: only the main thread calls MPI (the batcher's prefetch thread and OpenBLAS never do) */
    LP_TRY(mpi_check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread"));
    g_active = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_world_rank = g_rank;
    g_world_size = g_size;
    /* errors come back as codes (turned into messages naming the rank), not as an abort inside MPI */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return LP_OK;
}

void lp_dist_finalize(void) {
    if (!g_active) return;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Finalize();
    g_active = 0;
}

void lp_dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    if (g_active && g_world_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int lp_dist_rank(void) { return g_rank; }
int lp_dist_size(void) { return g_size; }

int lp_dist_job_rank(void) { return g_world_rank; }
int lp_dist_job_size(void) { return g_world_size; }

void lp_dist_solo(int solo) {
    g_rank = solo ? 0 : g_world_rank;
    g_size = solo ? 1 : g_world_size;
}

int lp_dist_part_begin(int K, int r) { return (int)((int64_t)K * r / g_size); }

/* MPI counts are ints: large buffers go in slices of at most 2^30 elements. */
#define SLICE ((size_t)1 << 30)

/* x[n] (elements of `size` bytes, MPI type t) ← their sum over the ranks, in place. */
static lp_status sum_in_place(void *x, size_t n, size_t size, MPI_Datatype t) {
    if (g_size == 1) return LP_OK;
    for (size_t o = 0; o < n; o += SLICE) {
        const int c = (int)(n - o < SLICE ? n - o : SLICE);
        LP_TRY(mpi_check(MPI_Allreduce(MPI_IN_PLACE, (char *)x + o * size, c, t, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce"));
    }
    return LP_OK;
}

lp_status lp_dist_sum_float(float *x, size_t n) { return sum_in_place(x, n, sizeof *x, MPI_FLOAT); }
lp_status lp_dist_sum_double(double *x, size_t n) { return sum_in_place(x, n, sizeof *x, MPI_DOUBLE); }

lp_status lp_dist_allgather_double(const double *mine, size_t n, double *all) {
    if (g_size == 1) {
        memcpy(all, mine, n * sizeof *all);
        return LP_OK;
    }
    if (n > INT_MAX) return lp_errorf(LP_ERR_ARG, "allgather: %zu values are too many", n);
    return mpi_check(MPI_Allgather(mine, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD), "MPI_Allgather");
}

/* out[0..c) ← g_0 + g_1 + ... + g_{K-1} in that order, the g_k being c floats `stride` apart in g. */
static void sum_in_order(const float *g, int K, size_t stride, float *out, size_t c) {
    memcpy(out, g, c * sizeof *out);
    for (int k = 1; k < K; k++) {
        const float *gk = g + (size_t)k * stride;
        for (size_t i = 0; i < c; i++) out[i] += gk[i];
    }
}

lp_status lp_dist_ordered_sum(const float *mine, int K, float *out, size_t n, size_t chunk) {
    if (K < 1) return lp_errorf(LP_ERR_ARG, "ordered sum: %d micro-batches", K);
    if (g_size == 1) {
        sum_in_order(mine, K, n, out, n);
        return LP_OK;
    }
    if (chunk < 1 || chunk > n) chunk = n ? n : 1;
    if ((size_t)K * chunk > INT_MAX) chunk = (size_t)INT_MAX / (size_t)K;
    const int k0 = lp_dist_part_begin(K, g_rank), nmine = lp_dist_part_begin(K, g_rank + 1) - k0;
    float *send = lp_malloc((size_t)(nmine > 0 ? nmine : 1) * chunk, sizeof(float));
    float *recv = lp_malloc((size_t)K * chunk, sizeof(float));
    int *counts = lp_malloc((size_t)g_size, sizeof(int)), *displs = lp_malloc((size_t)g_size, sizeof(int));
    lp_status s = send && recv && counts && displs ? LP_OK : LP_ERR_NOMEM;
    for (size_t o = 0; s == LP_OK && o < n; o += chunk) {
        const size_t c = n - o < chunk ? n - o : chunk;
        for (int j = 0; j < nmine; j++) memcpy(send + (size_t)j * c, mine + (size_t)j * n + o, c * sizeof(float));
        for (int r = 0; r < g_size; r++) {
            const int b = lp_dist_part_begin(K, r);
            counts[r] = (lp_dist_part_begin(K, r + 1) - b) * (int)c;
            displs[r] = b * (int)c;
        }
        s = mpi_check(MPI_Allgatherv(send, nmine * (int)c, MPI_FLOAT, recv, counts, displs, MPI_FLOAT, MPI_COMM_WORLD),
                      "MPI_Allgatherv");
        if (s == LP_OK) sum_in_order(recv, K, c, out + o, c);
    }
    lp_free(send);
    lp_free(recv);
    lp_free(counts);
    lp_free(displs);
    return s;
}

lp_status lp_dist_share_rows(float *x, int rows, size_t row_len, int K) {
    if (g_size == 1) return LP_OK;
    if ((size_t)rows * row_len > INT_MAX) return lp_errorf(LP_ERR_ARG, "share rows: %d rows of %zu are too many", rows, row_len);
    int *counts = lp_malloc((size_t)g_size, sizeof(int)), *displs = lp_malloc((size_t)g_size, sizeof(int));
    lp_status s = counts && displs ? LP_OK : LP_ERR_NOMEM;
    for (int r = 0; s == LP_OK && r < g_size; r++) {
        const int a = (int)((int64_t)rows * lp_dist_part_begin(K, r) / K);
        const int b = (int)((int64_t)rows * lp_dist_part_begin(K, r + 1) / K);
        counts[r] = (b - a) * (int)row_len;
        displs[r] = a * (int)row_len;
    }
    if (s == LP_OK)
        s = mpi_check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, counts, displs, MPI_FLOAT, MPI_COMM_WORLD),
                      "MPI_Allgatherv");
    lp_free(counts);
    lp_free(displs);
    return s;
}

lp_status lp_dist_bcast(void *buf, size_t bytes, int root) {
    if (g_size == 1) return LP_OK;
    for (size_t o = 0; o < bytes; o += SLICE) {
        const int c = (int)(bytes - o < SLICE ? bytes - o : SLICE);
        LP_TRY(mpi_check(MPI_Bcast((char *)buf + o, c, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast"));
    }
    return LP_OK;
}

int lp_dist_lead(void) { return g_rank == 0; }

lp_status lp_dist_written(lp_status s) { return s != LP_OK ? s : lp_dist_barrier(); }

lp_status lp_dist_barrier(void) {
    if (g_size == 1) return LP_OK;
    return mpi_check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

lp_status lp_dist_barrier_idle(void) {
    if (g_size == 1) return LP_OK;
    MPI_Request req;
    LP_TRY(mpi_check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Ibarrier"));
    for (;;) {
        int done = 0;
        LP_TRY(mpi_check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "MPI_Test"));
        if (done) return LP_OK;
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
}

int lp_dist_same_u64(uint64_t v) {
    if (g_size == 1) return 1;
    unsigned long long lo = v, hi = v;
    if (MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UNSIGNED_LONG_LONG, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) return 0;
    if (MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UNSIGNED_LONG_LONG, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return 0;
    return lo == hi;
}
