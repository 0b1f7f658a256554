/* bench_dist: the cross-rank gradient sum alone (core/dist.h), on this machine: MPI_Allreduce (the fast
 * reduction) and the ordered gather-and-sum (the exact one) of a gradient block the size of the paper
 * model's at the small shape (H = 256: 2.83 M floats) and at the paper's (H = 1024: 19.2 M), C = 3862.
 * Reported: the best of 10 repetitions, ms per step and the rate in GB/s of gradient summed
 * (4·n bytes / time). docs/SCALING.md uses these figures for its network model.
 *
 * Started as one process (as `make bench` runs every benchmark), it runs itself under `mpirun -np 2`
 * (Open MPI's root-permission variables set, as the tests do); `--child` is that run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/dist.h"

static int child(int *argc, char ***argv) {
    if (lp_dist_init(argc, argv) != LP_OK || lp_dist_size() < 2) {
        fprintf(stderr, "bench_dist --child: not under mpirun with 2+ ranks\n");
        return 1;
    }
    static const struct {
        const char *name;
        size_t n;
    } sizes[] = {{"small (H=256)", 2829590}, {"paper (H=1024)", 19171094}}; /* C = 3862: lstmprune info */
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const size_t n = sizes[s].n;
        const int K = lp_dist_size();
        float *g = lp_aligned(n, sizeof(float)), *out = lp_aligned(n, sizeof(float));
        if (!g || !out) return 1;
        for (size_t i = 0; i < n; i++) g[i] = (float)(i % 97) * 1e-3f;
        double best_fast = 1e30, best_exact = 1e30;
        for (int rep = 0; rep < 10; rep++) {
            lp_dist_barrier();
            double t0 = lp_now_s();
            if (lp_dist_sum_float(g, n) != LP_OK) return 1;
            double t1 = lp_now_s();
            lp_dist_barrier();
            double t2 = lp_now_s();
            if (lp_dist_ordered_sum(g, K, out, n, (size_t)1 << 22) != LP_OK) return 1;
            double t3 = lp_now_s();
            if (t1 - t0 < best_fast) best_fast = t1 - t0;
            if (t3 - t2 < best_exact) best_exact = t3 - t2;
        }
        if (lp_dist_rank() == 0)
            printf("%d ranks, %-15s %6.2f MB: fast (MPI_Allreduce) %7.2f ms = %5.2f GB/s; exact (ordered) %7.2f ms = "
                   "%5.2f GB/s\n",
                   K, sizes[s].name, 4.0 * n / 1e6, 1e3 * best_fast, 4.0 * n / best_fast / 1e9, 1e3 * best_exact,
                   4.0 * n / best_exact / 1e9);
        lp_free(g);
        lp_free(out);
    }
    lp_dist_finalize();
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--child")) return child(&argc, &argv);
    char self[4096], cmd[8300];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return 1;
    self[len] = 0;
    snprintf(cmd, sizeof cmd, "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 %s --child", self);
    printf("bench_dist: the gradient sum across 2 ranks on this machine (shared memory), best of 10\n");
    fflush(stdout);
    return system(cmd) == 0 ? 0 : 1;
}
