/* test_gemm: the library's matrix products (core/gemm.h) in both precisions.
 *
 *   - fp32 is OpenBLAS, bit for bit (every transpose, alpha, beta, leading dimensions, gemv);
 *   - bf16 rounding: round to nearest even, ties, NaN, infinities, the largest finite values;
 *   - a bf16 product equals the double-precision product of the bf16-rounded operands up to fp32
 *     accumulation (relative 1e-5 of Σ|a·b|): oneDNN really multiplies bf16 and accumulates in fp32, for
 *     every transpose, alpha, beta, strides, gemv and prepared weights;
 *   - the LSTM layer (forward and every gradient) in bf16 against fp32, with the relative error bounds
 *     the precision allows (stated below);
 *   - `--precision` on the command line: training in bf16 gives other weights and as good a model, the
 *     precision is recorded in the checkpoint, a bad name is a usage error.
 * The bf16 tests say so and are skipped where bf16 cannot run (no AVX512-BF16, or make DNNL=0). */
#include <cblas.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "check/gradcheck.h"
#include "core/alloc.h"
#include "core/ckpt.h"
#include "core/fileio.h"
#include "core/gemm.h"
#include "core/tape.h"
#include "layers/lstm.h"
#include "tests/common/bf16.h"
#include "tests/common/markov_corpus.h"
#include "tests/common/scratch.h"

/* ---- fp32: OpenBLAS bit for bit -------------------------------------------------------------------- */

static void test_fp32_is_openblas(void **state) {
    (void)state;
    enum { M = 7, N = 9, K = 11, LD = 13 };
    float a[LD * LD], b[LD * LD], c1[LD * LD], c2[LD * LD];
    lp_gc_fill_uniform(a, LD * LD, -1, 1, 1);
    lp_gc_fill_uniform(b, LD * LD, -1, 1, 2);
    assert_int_equal(lp_precision_set(LP_PRECISION_FP32), LP_OK);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            lp_gc_fill_uniform(c1, LD * LD, -1, 1, 3);
            memcpy(c2, c1, sizeof c1);
            lp_gemm(ta, tb, M, N, K, 0.7f, a, LD, b, LD, 0.3f, c1, LD);
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 0.7f,
                        a, LD, b, LD, 0.3f, c2, LD);
            assert_memory_equal(c1, c2, sizeof c1);
        }
    for (int ta = 0; ta < 2; ta++) {
        lp_gc_fill_uniform(c1, LD, -1, 1, 4);
        memcpy(c2, c1, sizeof c1);
        lp_gemv(ta, M, N, 1.5f, a, LD, b, 1.0f, c1);
        cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, M, N, 1.5f, a, LD, b, 1, 1.0f, c2, 1);
        assert_memory_equal(c1, c2, LD * sizeof(float));
    }
}

/* ---- bf16 rounding ---------------------------------------------------------------------------------- */

static float bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

static void test_bf16_rounding(void **state) {
    (void)state;
    assert_int_equal(lp_bf16_from_float(1.0f), 0x3f80);
    assert_int_equal(lp_bf16_from_float(-2.0f), 0xc000);
    assert_int_equal(lp_bf16_from_float(bits(0x3f808000u)), 0x3f80); /* a tie: to the even neighbour */
    assert_int_equal(lp_bf16_from_float(bits(0x3f818000u)), 0x3f82); /* a tie: up to the even one */
    assert_int_equal(lp_bf16_from_float(bits(0x3f808001u)), 0x3f81); /* above the tie: up */
    assert_int_equal(lp_bf16_from_float(bits(0x3f807fffu)), 0x3f80); /* below: down */
    assert_int_equal(lp_bf16_from_float(INFINITY), 0x7f80);
    assert_int_equal(lp_bf16_from_float(-INFINITY), 0xff80);
    assert_true(isnan(lp_bf16_to_float(lp_bf16_from_float(NAN))));
    assert_true(isnan(lp_bf16_to_float(lp_bf16_from_float(bits(0x7f800001u))))); /* a NaN never rounds to Inf */
    assert_int_equal(lp_bf16_from_float(bits(0x7f7fffffu)), 0x7f80);             /* FLT_MAX rounds to Inf */
    assert_int_equal(lp_bf16_from_float(0.0f), 0x0000);
    assert_int_equal(lp_bf16_from_float(-0.0f), 0x8000);
    for (float x = -3; x < 3; x += 0.01f) { /* within half a unit of the 8-bit significand */
        float r = lp_bf16_to_float(lp_bf16_from_float(x));
        assert_true(fabsf(r - x) <= fabsf(x) * 0x1p-8f);
    }
}

/* ---- bf16 products --------------------------------------------------------------------------------- */

static double q(float x) { return lp_bf16_to_float(lp_bf16_from_float(x)); }

/* C [M,N] (ldc) against the double product of the bf16-rounded operands. */
static void check_product(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                          int ldb, float beta, const float *C0, const float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double a = q(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]);
                double b = q(tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                s += a * b, mag += fabs(a * b);
            }
            double want = alpha * s + beta * C0[(size_t)i * ldc + j];
            double tol = 1e-5 * (fabs(alpha) * mag + fabs(beta * C0[(size_t)i * ldc + j])) + 1e-30;
            if (!(fabs(C[(size_t)i * ldc + j] - want) <= tol))
                fail_msg("ta %d tb %d (%d,%d): got %.9g want %.9g", ta, tb, i, j, C[(size_t)i * ldc + j], want);
        }
}

static void test_bf16_products(void **state) {
    (void)state;
    if (!lp_test_bf16_ok()) skip();
    enum { M = 19, N = 23, K = 67, LD = 80 };
    static float a[LD * LD], b[LD * LD], c0[LD * LD], c[LD * LD];
    lp_gc_fill_uniform(a, LD * LD, -2, 2, 11);
    lp_gc_fill_uniform(b, LD * LD, -2, 2, 12);
    lp_gc_fill_uniform(c0, LD * LD, -1, 1, 13);
    assert_int_equal(lp_precision_set(LP_PRECISION_BF16), LP_OK);
    static const float ab[3][2] = {{1.0f, 0.0f}, {0.5f, 1.0f}, {-1.25f, 0.75f}};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int s = 0; s < 3; s++) {
                memcpy(c, c0, sizeof c);
                lp_gemm(ta, tb, M, N, K, ab[s][0], a, LD, b, LD, ab[s][1], c, LD);
                check_product(ta, tb, M, N, K, ab[s][0], a, LD, b, LD, ab[s][1], c0, c, LD);
            }
    /* a prepared weight (B as stored [K,N] or [N,K]) and the matrix-vector products */
    for (int tb = 0; tb < 2; tb++) {
        lp_gemm_w w;
        assert_int_equal(lp_gemm_w_init(&w, b, tb ? N : K, tb ? K : N, tb), LP_OK);
        assert_non_null(w.bf16);
        assert_non_null(w.packed); /* oneDNN's blocked copy for op(B) as tb says (C strided: LD > N) */
        memcpy(c, c0, sizeof c);
        lp_gemm_pw(0, tb, M, N, K, 1.0f, a, LD, &w, 1.0f, c, LD);
        check_product(0, tb, M, N, K, 1.0f, a, LD, b, tb ? K : N, 1.0f, c0, c, LD);
        for (int ta = 0; ta < 2; ta++) { /* y = op(W)·x, as one row: x [1, in] */
            const int rows = w.rows, cols = w.cols, in = ta ? rows : cols, out = ta ? cols : rows;
            memcpy(c, c0, sizeof c);
            lp_gemv_pw(ta, 1.0f, &w, a, 1.0f, c);
            check_product(0, !ta, 1, out, in, 1.0f, a, in, b, cols, 1.0f, c0, c, out);
        }
        lp_gemm_w_free(&w);
    }
    assert_int_equal(lp_precision_set(LP_PRECISION_FP32), LP_OK);
}

/* A held block (lp_gemm_hold): its values converted once; products whose operand lies inside it (as A or
 * as B, a prepared weight too) read that copy — bit for bit the numbers they gave converting their own —
 * and convert nothing else; holds nest; a release ends it; fp32 ignores it. The conversion counter shows
 * what was converted. */
static void test_bf16_hold(void **state) {
    (void)state;
    if (!lp_test_bf16_ok()) skip();
    enum { M = 7, N = 40, K = 24, OFF = 5, NW = OFF + 2 * N * K + 3 };
    static float block[NW], x[M * K], c_own[M * N], c[M * N], d_own[K * N], d[K * N];
    lp_gc_fill_uniform(block, NW, -2, 2, 21);
    lp_gc_fill_uniform(x, M * K, -2, 2, 22);
    const float *w = block + OFF;              /* W [N, K] at an odd offset */
    const float *v = block + OFF + N * K;      /* V [K, N] after it */
    assert_int_equal(lp_precision_set(LP_PRECISION_BF16), LP_OK);
    lp_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, c_own, N);    /* x·Wᵀ: B converted by the product */
    lp_gemm(1, 0, K, N, M, 1.0f, x, K, c_own, N, 0.0f, d_own, N); /* xᵀ·C */
    lp_gemm_w own;
    assert_int_equal(lp_gemm_w_init(&own, w, N, K, 1), LP_OK);
    assert_int_equal(own.hold_id, 0);
    float c_pw[M * N];
    lp_gemm_pw(0, 1, M, N, K, 1.0f, x, K, &own, 0.0f, c_pw, N);

    uint64_t n0 = lp_gemm_bf16_converted();
    lp_gemm_hold(block, NW);
    assert_int_equal(lp_gemm_bf16_converted() - n0, NW);          /* the block, once */
    lp_gemm_hold(block, NW);                                       /* nested: nothing converted */
    assert_int_equal(lp_gemm_bf16_converted() - n0, NW);
    n0 = lp_gemm_bf16_converted();
    lp_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, c, N);
    assert_int_equal(lp_gemm_bf16_converted() - n0, M * K);       /* only x */
    assert_memory_equal(c, c_own, sizeof c);
    n0 = lp_gemm_bf16_converted();
    float vt[N * M];                                               /* Vᵀ·? : V held as A, op(A) = Vᵀ [N, K] */
    lp_gemm(1, 1, N, M, K, 1.0f, v, N, x, K, 0.0f, vt, M);
    assert_int_equal(lp_gemm_bf16_converted() - n0, M * K);
    check_product(1, 1, N, M, K, 1.0f, v, N, x, K, 0.0f, vt, vt, M);
    lp_gemm(1, 0, K, N, M, 1.0f, x, K, c, N, 0.0f, d, N);       /* nothing held in it: both converted */
    assert_memory_equal(d, d_own, sizeof d);

    /* a weight prepared inside the hold: the held copy, laid out once for every preparation */
    n0 = lp_gemm_bf16_converted();
    lp_gemm_w p1, p2;
    assert_int_equal(lp_gemm_w_init(&p1, w, N, K, 1), LP_OK);
    assert_int_equal(lp_gemm_w_init(&p2, w, N, K, 1), LP_OK);
    assert_int_equal(lp_gemm_bf16_converted() - n0, 0);
    assert_true(p1.hold_id != 0);
    assert_ptr_equal(p1.packed, p2.packed);
    assert_int_equal(p1.packed == NULL, own.packed == NULL);
    lp_gemm_pw(0, 1, M, N, K, 1.0f, x, K, &p2, 0.0f, c, N);
    assert_memory_equal(c, c_pw, sizeof c);
    lp_gemm_w_free(&p1);
    lp_gemm_pw(0, 1, M, N, K, 1.0f, x, K, &p2, 0.0f, c, N);       /* p1 freed nothing p2 uses */
    assert_memory_equal(c, c_pw, sizeof c);
    lp_gemm_w_free(&p2);

    /* a strided operand cannot use the held copy's layout: converted, the same product */
    n0 = lp_gemm_bf16_converted();
    float cs[M * (N / 2)];
    lp_gemm(0, 1, M, N / 2, K / 2, 1.0f, x, K, w, K, 0.0f, cs, N / 2);
    assert_int_equal(lp_gemm_bf16_converted() - n0, M * (K / 2) + (N / 2) * (K / 2));
    check_product(0, 1, M, N / 2, K / 2, 1.0f, x, K, w, K, 0.0f, cs, cs, N / 2);

    lp_gemm_release(block); /* still held once */
    n0 = lp_gemm_bf16_converted();
    lp_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, c, N);
    assert_int_equal(lp_gemm_bf16_converted() - n0, M * K);
    lp_gemm_release(block); /* released: products convert their own again */
    lp_gemm_release(block); /* one too many: nothing */
    n0 = lp_gemm_bf16_converted();
    lp_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, c, N);
    assert_int_equal(lp_gemm_bf16_converted() - n0, M * K + N * K);
    assert_memory_equal(c, c_own, sizeof c);
    lp_gemm_w_free(&own);

    assert_int_equal(lp_precision_set(LP_PRECISION_FP32), LP_OK); /* fp32: a hold converts nothing */
    n0 = lp_gemm_bf16_converted();
    lp_gemm_hold(block, NW);
    lp_gemm(0, 1, M, N, K, 1.0f, x, K, w, K, 0.0f, c, N);
    lp_gemm_release(block);
    assert_int_equal(lp_gemm_bf16_converted() - n0, 0);
}

/* Run fn in a forked child: it must die by abort (an LP_CHECK); `expect` is what its message says. */
static void expect_abort(void (*fn)(void), const char *expect) {
    printf("expected below: the child's \"%s\"\n", expect);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (lp_precision_set(LP_PRECISION_BF16) != LP_OK) _exit(3);
        fn();
        _exit(0); /* not caught */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static float abort_block[64];

#if defined(__SANITIZE_ADDRESS__)
static void write_while_held(void) {
    lp_gc_fill_uniform(abort_block, 64, -1, 1, 31);
    lp_gemm_hold(abort_block, 64);
    abort_block[17] = 1000.0f; /* a write while held */
    lp_gemm_release(abort_block);
}
#endif

static void use_after_release(void) {
    lp_gc_fill_uniform(abort_block, 64, -1, 1, 32);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
    lp_gemm_w w;
    lp_gemm_hold(abort_block, 64);
    if (lp_gemm_w_init(&w, abort_block, 8, 8, 1) != LP_OK) _exit(4);
    lp_gemm_release(abort_block);
    lp_gemm_pw(0, 1, 1, 8, 8, 1.0f, x, 8, &w, 0.0f, y, 8); /* borrows from a hold that has ended */
}

/* The sanitizer builds (make asan) check at a hold's release that nothing wrote to the held block: a
 * child process that writes to one it holds must abort at the release. Skipped in other builds, where
 * the check is compiled out. */
static void test_bf16_hold_write_caught(void **state) {
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    if (!lp_test_bf16_ok()) skip();
    expect_abort(write_while_held, "weights changed while held");
#else
    skip();
#endif
}

/* A weight prepared inside a hold borrows the hold's copies: used after the release, the product is
 * refused (an LP_CHECK in every build), never run on freed memory. */
static void test_bf16_hold_outlived(void **state) {
    (void)state;
    if (!lp_test_bf16_ok()) skip();
    expect_abort(use_after_release, "a weight prepared inside a hold, used after its release");
}

/* Prepared weights made under different thread counts, used by the same product. oneDNN chooses its
 * blocked layout by a heuristic that also looks at the OpenMP thread count (at 3 threads and H = 32 it
 * picks blocks of 32 columns for a one-row product, at 1 thread blocks of 64): a primitive made for
 * one weight's layout must not be run on the other's. Both must give the right product, at one row
 * (the batch-1 steps) and at several, forward (w [4H,H] as Wᵀ) and backward (w as W). */
static void test_bf16_prepared_thread_counts(void **state) {
    (void)state;
    if (!lp_test_bf16_ok()) skip();
    enum { H = 32, G = 4 * H, M = 4 };
    static float w[G * H], a[M * G], c0[M * G], c[M * G];
    lp_gc_fill_uniform(w, G * H, -1, 1, 21);
    lp_gc_fill_uniform(a, M * G, -1, 1, 22);
    lp_gc_fill_uniform(c0, M * G, -1, 1, 23);
    assert_int_equal(lp_precision_set(LP_PRECISION_BF16), LP_OK);
    const int saved = openblas_get_num_threads();
    for (int tb = 0; tb < 2; tb++) {
        const int K = tb ? H : G, N = tb ? G : H; /* forward: [M,H]·[H,4H]; backward: [M,4H]·[4H,H] */
        static const int made_at[3] = {3, 1, 2};
        lp_gemm_w pw[3];
        for (int i = 0; i < 3; i++) {
            openblas_set_num_threads(made_at[i]);
            assert_int_equal(lp_gemm_w_init(&pw[i], w, G, H, tb), LP_OK);
        }
        openblas_set_num_threads(1); /* the products run in a one-thread row part */
        for (int i = 0; i < 3; i++) {
            memcpy(c, c0, sizeof c);
            lp_gemv_pw(!tb, 1.0f, &pw[i], a, 1.0f, c); /* one row */
            check_product(0, tb, 1, N, K, 1.0f, a, K, w, H, 1.0f, c0, c, N);
            memcpy(c, c0, sizeof c);
            lp_gemm_pw(0, tb, M, N, K, 1.0f, a, K, &pw[i], 1.0f, c, N);
            check_product(0, tb, M, N, K, 1.0f, a, K, w, H, 1.0f, c0, c, N);
        }
        for (int i = 0; i < 3; i++) lp_gemm_w_free(&pw[i]);
    }
    openblas_set_num_threads(saved);
    assert_int_equal(lp_precision_set(LP_PRECISION_FP32), LP_OK);
}

/* ---- the LSTM layer in bf16 against fp32 ------------------------------------------------------------ */

enum { LB = 4, LT = 20, LF = 24, LH = 32, LMAX = 4 * LH * LH }; /* w_hh is the largest buffer */
_Static_assert(LB * LT * LF <= LMAX && 4 * LH * LF <= LMAX && LB * LT * LH <= LMAX, "buffers");

typedef struct {
    float out[3][LMAX];
    float grad[6][LMAX];
} lstm_run;

static void run_lstm(lp_precision p, lstm_run *r) {
    static float x[LB * LT * LF], wi[4 * LH * LF], wh[4 * LH * LH], bb[4 * LH], h0[LB * LH], c0[LB * LH];
    float *v[6] = {x, wi, wh, bb, h0, c0};
    const size_t n[6] = {LB * LT * LF, 4 * LH * LF, 4 * LH * LH, 4 * LH, LB * LH, LB * LH};
    const int dims[6][3] = {{LB, LT, LF}, {4 * LH, LF}, {4 * LH, LH}, {4 * LH}, {LB, LH}, {LB, LH}};
    const int nd[6] = {3, 2, 2, 1, 2, 2};
    static const double range[6] = {1, 0.3, 0.3, 0.3, 0.5, 0.5};
    for (int k = 0; k < 6; k++) lp_gc_fill_uniform(v[k], n[k], -range[k], range[k], 70 + (uint64_t)k);
    assert_int_equal(lp_precision_set(p), LP_OK);
    memset(r, 0, sizeof *r);
    lp_tape tp;
    assert_int_equal(lp_tape_init(&tp, 1 << 22), LP_OK);
    lp_tensor *in[6];
    for (int k = 0; k < 6; k++) in[k] = lp_tape_view(&tp, v[k], r->grad[k], nd[k], dims[k]);
    static const int lengths[LB] = {LT, 13, 1, 7};
    lp_lstm_out o = lp_lstm(&tp, in[0], in[1], in[2], in[3], in[4], in[5], lengths, 0);
    assert_non_null(o.h_seq);
    lp_tensor *outs[3] = {o.h_seq, o.h_last, o.c_last};
    for (int k = 0; k < 3; k++) { /* L = Σ out·r, fixed random r */
        size_t m = lp_tensor_numel(outs[k]);
        lp_gc_fill_uniform(outs[k]->grad, m, -1, 1, 90 + (uint64_t)k);
        memcpy(r->out[k], outs[k]->data, m * sizeof(float));
    }
    lp_tensor *seed = lp_tape_tensor(&tp, 0, NULL, 1);
    seed->data[0] = 0;
    assert_int_equal(lp_tape_backward(&tp, seed), LP_OK);
    lp_tape_free(&tp);
    assert_int_equal(lp_precision_set(LP_PRECISION_FP32), LP_OK);
}

/* bf16 keeps 8 significant bits: each rounded operand is off by at most 2^-8 (0.39%) relative, 1.6e-3 in
 * the root-mean-square sense, and a sum of K products of such operands by about 2.3e-3 (the argument is
 * in tests/test_bf16_layers.c, which covers the other layers the same way). Through 20
 * recurrent steps of gates of order 1 the outputs and gradients stay within 1% (relative, in the 2-norm);
 * measured here: 0.24-0.26% for the outputs, 0.08-0.30% for the gradients, the same with 1 and 2 threads.
 * A wrong product (a transpose, a missing beta) is off by 100%. */
static void test_lstm_bf16_vs_fp32(void **state) {
    (void)state;
    if (!lp_test_bf16_ok()) skip();
    static lstm_run f, h, h2;
    run_lstm(LP_PRECISION_FP32, &f);
    run_lstm(LP_PRECISION_BF16, &h);
    /* with 2 threads the recurrence runs in 2 row parts at the same time, sharing the cached primitives
     * (each thread its own scratchpad): the same numbers, bit for bit */
    const int saved = openblas_get_num_threads();
    openblas_set_num_threads(2);
    assert_true(lp_lstm_recur_parts(LB, LH, 2) == 2);
    /* a per-step product too large to split in fp32 (the paper's LSTM 2: B=160, H=1024) is split in
     * bf16, where the parts share one prepared W_hh */
    assert_int_equal(lp_lstm_recur_parts(160, 1024, 2), 1);
    assert_int_equal(lp_precision_set(LP_PRECISION_BF16), LP_OK);
    assert_int_equal(lp_lstm_recur_parts(160, 1024, 2), 2);
    assert_int_equal(lp_precision_set(LP_PRECISION_FP32), LP_OK);
    run_lstm(LP_PRECISION_BF16, &h2);
    openblas_set_num_threads(saved);
    assert_memory_equal(&h, &h2, sizeof h);
    static const char *names[9] = {"h_seq", "h_last", "c_last", "dx", "dw_ih", "dw_hh", "db", "dh0", "dc0"};
    const size_t n[9] = {LB * LT * LH, LB * LH, LB * LH, LB * LT * LF, 4 * LH * LF, 4 * LH * LH, 4 * LH, LB * LH, LB * LH};
    for (int k = 0; k < 9; k++) {
        const float *a = k < 3 ? h.out[k] : h.grad[k - 3], *b = k < 3 ? f.out[k] : f.grad[k - 3];
        double e = lp_test_rel_err(a, b, n[k]);
        fprintf(stderr, "lstm bf16 vs fp32: %-7s relative error %.2e\n", names[k], e);
        assert_true(e > 0);     /* bf16 really ran (fp32 would give 0) */
        assert_true(e < 1e-2);
    }
}

static void test_precision_names(void **state) {
    (void)state;
    lp_precision p;
    assert_int_equal(lp_precision_parse("bf16", &p), LP_OK);
    assert_int_equal(p, LP_PRECISION_BF16);
    assert_int_equal(lp_precision_parse("fp32", &p), LP_OK);
    assert_int_equal(p, LP_PRECISION_FP32);
    assert_int_equal(lp_precision_parse("fp16", &p), LP_ERR_ARG);
    assert_string_equal(lp_precision_name(LP_PRECISION_BF16), "bf16");
    /* where bf16 cannot run, setting it is refused and the precision stays fp32 */
    if (lp_precision_bf16_available() != LP_OK) {
        assert_int_equal(lp_precision_set(LP_PRECISION_BF16), LP_ERR_ARG);
        assert_int_equal(lp_precision_get(), LP_PRECISION_FP32);
    }
}

/* ---- --precision on the command line -------------------------------------------------------------- */

static char out_buf[1 << 16];

static int run(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = lp_test_runv(out_buf, sizeof out_buf, "OPENBLAS_NUM_THREADS=1", fmt, ap);
    va_end(ap);
    return rc;
}

/* The GAP@20 `eval` printed. */
static double gap(void) {
    const char *p = strstr(out_buf, "GAP@20 ");
    assert_non_null(p);
    return atof(p + 7);
}

/* train and eval in both precisions: bf16 really changes the products (other weights), and the model
 * is as good; a bad name is a usage error; where bf16 cannot run, asking for it is refused. */
static void test_precision_flag(void **state) {
    (void)state;
    assert_int_equal(lp_test_scratch_make("gemm"), 0);
    assert_int_equal(run("synth --out data --videos 200 --classes 6 --frames-min 5 --frames-max 20 --seed 3 --quiet"), 0);
    const char *train = "train --train 'data/train*.tfrecord' --valid 'data/validate*.tfrecord' --classes 6 --hidden 16 "
                        "--batch 16 --epochs 2 --quiet";
    assert_int_equal(run("%s --out fp32 --precision fp32", train), 0);
    assert_int_equal(run("train --train x --out bad --precision fp16"), 2);
    assert_non_null(strstr(out_buf, "--precision"));
    if (!lp_test_bf16_ok()) {
        assert_int_equal(run("%s --out bf16 --precision bf16", train), 2);
        assert_non_null(strstr(out_buf, "bf16"));
        lp_test_scratch_teardown(NULL);
        skip();
    }
    assert_int_equal(run("%s --out bf16 --precision bf16", train), 0);
    assert_int_equal(run("eval --checkpoint fp32/best.ckpt --data 'data/validate*.tfrecord'"), 0);
    const double g32 = gap();
    assert_int_equal(run("eval --checkpoint bf16/best.ckpt --data 'data/validate*.tfrecord'"), 0);
    const double g16 = gap();
    assert_int_equal(run("eval --checkpoint bf16/best.ckpt --data 'data/validate*.tfrecord' --precision fp32"), 0);
    const double g16_32 = gap();
    fprintf(stderr, "GAP@20: trained fp32 %.4f, trained bf16 %.4f (evaluated in fp32: %.4f)\n", g32, g16, g16_32);
    assert_true(fabs(g16 - g32) < 0.05 && fabs(g16_32 - g16) < 0.02);
    /* bf16 really ran: the trained weights differ from fp32's (same seed, same batches) */
    lp_ckpt a, b;
    assert_int_equal(lp_ckpt_load(&a, lp_test_scratch_path("fp32/last.ckpt")), LP_OK);
    assert_int_equal(lp_ckpt_load(&b, lp_test_scratch_path("bf16/last.ckpt")), LP_OK);
    const lp_ckpt_tensor *wa = lp_ckpt_find(&a, "lstm2.w_hh"), *wb = lp_ckpt_find(&b, "lstm2.w_hh");
    assert_non_null(wa);
    assert_non_null(wb);
    assert_int_equal(wa->numel, wb->numel);
    assert_memory_not_equal(wa->data, wb->data, wa->numel * sizeof(float));
    assert_string_equal(lp_kv_get(&b.meta, "train.precision"), "bf16");
    lp_ckpt_free(&a);
    lp_ckpt_free(&b);
    lp_test_scratch_teardown(NULL);
}

/* The number after `key` in out_buf (the first occurrence after `from`, or anywhere). */
static double number_after(const char *from, const char *key) {
    const char *p = strstr(from ? strstr(out_buf, from) : out_buf, key);
    assert_non_null(p);
    return atof(p + strlen(key));
}

/* The language model: lm-train in bf16, then lm-eval and lm-prune of its checkpoint run in the
 * checkpoint's precision unless told otherwise. lm-eval's default gives the training's own bf16 score and
 * --precision bf16's, and differs from --precision fp32 (the model is trained enough for bf16 to show
 * in the printed digits: 1.6e-4 in the NLL); lm-prune scores its baseline as lm-eval does in bf16. */
static void test_precision_lm(void **state) {
    (void)state;
    if (!lp_test_bf16_ok()) skip();
    assert_int_equal(lp_test_scratch_make("gemm_lm"), 0);
    assert_int_equal(mkdir(lp_test_scratch_path("ptb"), 0700), 0);
    lp_test_markov_write_ptb(lp_test_scratch_path("ptb"), 300, 5);
    assert_int_equal(run("lm-train --data ptb --out bf --units 32 --layers 2 --epochs 8 --batch 8 --bptt 10 "
                         "--decay-after 100 --precision bf16 --quiet"), 0);
    const char *eval = "lm-eval --checkpoint bf/best.ckpt --data ptb --bptt 10 --split test";
    assert_int_equal(run("%s", eval), 0);
    const double nll = number_after("test ", "(nll ");
    assert_int_equal(run("%s --precision bf16", eval), 0);
    const double nll_bf16 = number_after("test ", "(nll ");
    assert_int_equal(run("%s --precision fp32", eval), 0);
    const double nll_fp32 = number_after("test ", "(nll ");
    /* the training's last scoring of the test split (bf16, the same windows): valid.tsv's test_nll */
    char *tsv = NULL;
    size_t len = 0;
    assert_int_equal(lp_file_read_all(lp_test_scratch_path("bf/valid.tsv"), &tsv, &len), LP_OK);
    const char *last = tsv + len - 1;
    while (last > tsv && last[-1] != '\n') last--;
    double ep, step, ppl, vnll, tppl, tnll;
    assert_int_equal(sscanf(last, "%lf %lf %lf %lf %lf %lf", &ep, &step, &ppl, &vnll, &tppl, &tnll), 6);
    lp_free(tsv);
    fprintf(stderr, "lm-eval NLL: default %.5f, bf16 %.5f, fp32 %.5f; training's bf16 %.6f\n", nll, nll_bf16,
            nll_fp32, tnll);
    assert_true(nll == nll_bf16);
    assert_true(fabs(nll - tnll) <= 6e-6);
    assert_true(fabs(nll - nll_fp32) > 2e-5);
    assert_int_equal(run("lm-eval --checkpoint bf/best.ckpt --precision fp16"), 2);
    /* lm-prune without fine-tuning (no training sets the precision): the statistics and the baseline row
     * in the checkpoint's precision (the row's perplexity, 4 decimals) */
    assert_int_equal(run("lm-prune --checkpoint bf/best.ckpt --data ptb --out pr --target-rate 0.25 "
                         "--finetune-epochs 0 --quiet"), 0);
    const char *row = strstr(out_buf, "\nbaseline ");
    assert_non_null(row);
    const char *end = strchr(row + 1, '\n'), *p = end;
    assert_non_null(end);
    while (p > row && p[-1] != ' ') p--;
    const double base_nll = log(atof(p));
    fprintf(stderr, "lm-prune baseline NLL %.6f\n", base_nll);
    assert_true(fabs(base_nll - nll) <= 1e-5);
    assert_true(fabs(base_nll - nll_fp32) > 2e-5);
    lp_test_scratch_teardown(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32_is_openblas),
        cmocka_unit_test(test_bf16_rounding),
        cmocka_unit_test(test_bf16_products),
        cmocka_unit_test(test_bf16_prepared_thread_counts),
        cmocka_unit_test(test_bf16_hold),
        cmocka_unit_test(test_bf16_hold_write_caught),
        cmocka_unit_test(test_bf16_hold_outlived),
        cmocka_unit_test(test_lstm_bf16_vs_fp32),
        cmocka_unit_test(test_precision_names),
        cmocka_unit_test(test_precision_flag),
        cmocka_unit_test(test_precision_lm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
