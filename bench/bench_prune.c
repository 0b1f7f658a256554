/* bench_prune: does removing units buy the speed its FLOPs promise?
 *
 * The paper model at H = 1024 (BiLSTM 512+512 → LSTM 1024 → 3862 classes, F = 1152) is pruned at mean
 * rates 0.3 and 0.5 (uniform rule, l2 selection: which units go does not matter for speed) by real
 * surgery, and the inference latency of the unpruned and pruned models is measured in the same run at
 * batch 1 and batch 160, T = 300 frames. Reported: FLOP reduction (before/after), measured speed-up, and
 * their ratio. Target (issue 5): speed-up >= 80% of the FLOP reduction.
 *
 * --precision bf16 measures the same in bf16 (core/gemm.h; fp32 by default). LP_BENCH_QUICK=1 uses
 * T = 60 and fewer repetitions (a smoke run). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas_env.h"
#include "core/gemm.h"
#include "model/evaluate.h"
#include "model/model.h"
#include "prune/plan.h"
#include "prune/surgery.h"
#include "tasks/video_task.h"

static int fail(const char *what) {
    fprintf(stderr, "bench_prune: %s: %s\n", what, lp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    lp_blas_env_apply(argv); /* as lstmprune does (core/blas_env.h) */
    lp_precision prec = LP_PRECISION_FP32;
    if (argc == 3 && !strcmp(argv[1], "--precision")) {
        if (lp_precision_parse(argv[2], &prec) != LP_OK || lp_precision_set(prec) != LP_OK) {
            fprintf(stderr, "bench_prune: --precision: %s\n", lp_last_error());
            return 2;
        }
    } else if (argc != 1) {
        fprintf(stderr, "usage: bench_prune [--precision fp32|bf16]\n");
        return 2;
    }
    int quick = getenv("LP_BENCH_QUICK") != NULL;
    int T = quick ? 60 : 300, reps1 = quick ? 5 : 9, repsN = quick ? 1 : 2;
    lp_kv kv;
    lp_kv_init(&kv);
    if (lp_model_default_kv(&kv, LP_MODEL_PAPER, 1152, 1024, 1, 3862, 2, 0) != LP_OK) return fail("config");
    lp_model base;
    lp_task *t;
    if (lp_model_init_kv(&base, &kv, 1) != LP_OK) return fail("init");
    if (lp_video_task_new(&base, &kv, &t) != LP_OK) return fail("task");
    const double rates[] = {0.0, 0.3, 0.5};
    double flops0 = 0, lat1_0 = 0, latN_0 = 0;
    printf("paper model H=1024, F=1152, C=3862, T=%d, %s (latency: median no-gradient forward)\n", T,
           lp_precision_name(prec));
    printf("%-6s %12s %14s %12s %12s %10s %10s %10s %8s\n", "rate", "params", "FLOPs/frame", "lat B=1 ms", "lat B=160 ms",
           "FLOP red.", "speedup1", "speedup160", "ratio");
    int ok = 1;
    for (int i = 0; i < 3; i++) {
        lp_task *small = t;
        if (rates[i] != 0) { /* the uniform rule and l2 selection need no statistics: no data */
            lp_prune_opts o;
            lp_prune_opts_default(&o);
            o.rates.rule = LP_RATE_RULE_UNIFORM;
            o.rates.target_rate = rates[i];
            o.criterion = LP_CRITERION_L2;
            lp_prune_plan plan;
            if (lp_prune_plan_make(t, NULL, &o, &plan) != LP_OK) return fail("plan");
            lp_status s = lp_surgery_shrink(t, &plan, &small);
            lp_prune_plan_free(&plan);
            if (s != LP_OK) return fail("shrink");
        }
        lp_model *m = lp_video_task_model(small);
        double l1, lN;
        if (lp_model_latency(m, 1, T, reps1, &l1) != LP_OK || lp_model_latency(m, 160, T, repsN, &lN) != LP_OK)
            return fail("latency");
        double fl = lp_model_flops_per_frame(m);
        if (i == 0) {
            flops0 = fl;
            lat1_0 = l1;
            latN_0 = lN;
            printf("%-6.2f %12zu %14.4g %12.2f %12.1f\n", rates[i], lp_model_numel(m), fl, l1, lN);
        } else {
            double red = flops0 / fl, s1 = lat1_0 / l1, sN = latN_0 / lN, ratio = sN / red;
            printf("%-6.2f %12zu %14.4g %12.2f %12.1f %10.2fx %9.2fx %9.2fx %8.2f\n", rates[i], lp_model_numel(m), fl, l1,
                   lN, red, s1, sN, ratio);
            if (ratio < 0.8) ok = 0;
        }
        if (small != t) lp_task_free(small);
    }
    printf("target: batch-160 speed-up >= 80%% of the FLOP reduction: %s\n", ok ? "met" : "NOT MET");
    lp_task_free(t);
    lp_kv_free(&kv);
    return 0;
}
