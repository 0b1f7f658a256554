/* gemm: fp32 products through OpenBLAS, bf16 products through oneDNN (see gemm.h). */
#include "core/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <string.h>

#include "core/alloc.h"

static lp_precision precision = LP_PRECISION_FP32;

const char *lp_precision_name(lp_precision p) { return p == LP_PRECISION_BF16 ? "bf16" : "fp32"; }

lp_status lp_precision_parse(const char *s, lp_precision *out) {
    if (s && !strcmp(s, "fp32")) *out = LP_PRECISION_FP32;
    else if (s && !strcmp(s, "bf16")) *out = LP_PRECISION_BF16;
    else return lp_errorf(LP_ERR_ARG, "precision '%s' is not fp32 or bf16", s ? s : "");
    return LP_OK;
}

lp_precision lp_precision_get(void) { return precision; }

/* ---- bfloat16 ------------------------------------------------------------------------------------ */

uint16_t lp_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* NaN: stays a (quiet) NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                                          /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float lp_bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* rows × cols of src (leading dimension ld) into dst, packed (leading dimension cols). */
static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld) {
    for (int r = 0; r < rows; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * cols;
        for (int c = 0; c < cols; c++) d[c] = lp_bf16_from_float(s[c]);
    }
}

#ifdef LP_NO_DNNL

lp_status lp_precision_bf16_available(void) {
    return lp_errorf(LP_ERR_ARG, "bf16 needs oneDNN, and this build has none (built with make DNNL=0)");
}

static void bf16_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      const uint16_t *Bh, int ldb, float beta, float *C, int ldc) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)Bh, (void)ldb;
    (void)beta, (void)C, (void)ldc;
    LP_CHECK(!"bf16 product in a build without oneDNN"); /* lp_precision_set refuses bf16 there */
}

#else /* oneDNN */

#include <dnnl.h>

/* oneDNN's OpenMP runtime (libgomp, which libdnnl uses): the thread count of the calling thread's next
 * parallel region. Declared here rather than through <omp.h>, which only GCC ships (clang builds the
 * fuzzers). */
extern void omp_set_num_threads(int n);

lp_status lp_precision_bf16_available(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512bf16"))
        return lp_errorf(LP_ERR_ARG, "bf16: this CPU has no native bf16 arithmetic (AVX512-BF16); oneDNN would "
                                     "emulate it slowly, so it is refused (use fp32)");
    return LP_OK;
}

static dnnl_engine_t engine;
static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static void engine_init(void) { LP_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success); }

/* One matmul primitive per shape, strides, alpha and beta, made once (creating one costs far more than a
 * small product) and kept for the process. */
typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    dnnl_primitive_t prim;
} cached;

#define CACHE_MAX 512
static cached cache[CACHE_MAX];
static int n_cached;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* A plain 2-D descriptor of `type` with row stride rs and column stride cs. */
static dnnl_memory_desc_t desc(int rows, int cols, dnnl_data_type_t type, int rs, int cs) {
    dnnl_memory_desc_t d;
    const dnnl_dims_t dims = {rows, cols}, strides = {rs, cs};
    LP_CHECK(dnnl_memory_desc_init_by_strides(&d, 2, dims, type, strides) == dnnl_success);
    return d;
}

static dnnl_primitive_t make(const cached *k) {
    /* src op(A) [M,K] and weights op(B) [K,N], bf16 and packed as to_bf16 left them; dst C [M,N] fp32 */
    dnnl_memory_desc_t a = k->ta ? desc(k->M, k->K, dnnl_bf16, 1, k->M) : desc(k->M, k->K, dnnl_bf16, k->K, 1);
    dnnl_memory_desc_t b = k->tb ? desc(k->K, k->N, dnnl_bf16, 1, k->K) : desc(k->K, k->N, dnnl_bf16, k->N, 1);
    dnnl_memory_desc_t c = desc(k->M, k->N, dnnl_f32, k->ldc, 1);
    dnnl_matmul_desc_t md;
    LP_CHECK(dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) == dnnl_success);
    dnnl_primitive_attr_t attr;
    LP_CHECK(dnnl_primitive_attr_create(&attr) == dnnl_success);
    if (k->alpha != 1.0f) LP_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha) == dnnl_success);
    if (k->beta != 0.0f) {
        dnnl_post_ops_t po;
        LP_CHECK(dnnl_post_ops_create(&po) == dnnl_success);
        LP_CHECK(dnnl_post_ops_append_sum(po, k->beta) == dnnl_success); /* C = product + beta·C */
        LP_CHECK(dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success);
        dnnl_post_ops_destroy(po);
    }
    dnnl_primitive_desc_t pd;
    LP_CHECK(dnnl_primitive_desc_create(&pd, &md, attr, engine, NULL) == dnnl_success);
    dnnl_primitive_t p;
    LP_CHECK(dnnl_primitive_create(&p, pd) == dnnl_success);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    return p;
}

static dnnl_primitive_t primitive(const cached *k) {
    pthread_once(&engine_once, engine_init);
    pthread_mutex_lock(&cache_lock);
    dnnl_primitive_t p = NULL;
    for (int i = 0; i < n_cached && !p; i++) {
        const cached *c = &cache[i];
        if (c->ta == k->ta && c->tb == k->tb && c->M == k->M && c->N == k->N && c->K == k->K && c->lda == k->lda &&
            c->ldb == k->ldb && c->ldc == k->ldc && c->alpha == k->alpha && c->beta == k->beta)
            p = c->prim;
    }
    if (!p) {
        p = make(k);
        if (n_cached < CACHE_MAX) {
            cache[n_cached] = *k;
            cache[n_cached++].prim = p;
        }
    }
    pthread_mutex_unlock(&cache_lock);
    return p;
}

/* A growing per-thread bf16 buffer (products run concurrently in the LSTM's row parts). */
static uint16_t *scratch(int which, size_t n) {
    static _Thread_local uint16_t *buf[2];
    static _Thread_local size_t cap[2];
    if (n > cap[which]) {
        lp_free(buf[which]);
        buf[which] = lp_malloc(n, sizeof(uint16_t));
        LP_CHECK(buf[which] != NULL);
        cap[which] = n;
    }
    return buf[which];
}

/* The memory objects of a primitive's three arguments, per thread (a memory object is not shared
 * between threads), made at the thread's first use of the primitive; each call only points them at its
 * buffers. Creating them at every call cost about as much as a small product. */
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t mem[3]; /* src, weights, dst */
} bound;

#define BOUND_MAX 64

static void make_mems(const cached *k, dnnl_memory_t *m) {
    dnnl_memory_desc_t d[3] = {
        k->ta ? desc(k->M, k->K, dnnl_bf16, 1, k->M) : desc(k->M, k->K, dnnl_bf16, k->K, 1),
        k->tb ? desc(k->K, k->N, dnnl_bf16, 1, k->K) : desc(k->K, k->N, dnnl_bf16, k->N, 1),
        desc(k->M, k->N, dnnl_f32, k->ldc, 1),
    };
    for (int i = 0; i < 3; i++) LP_CHECK(dnnl_memory_create(&m[i], &d[i], engine, DNNL_MEMORY_NONE) == dnnl_success);
}

static void run(dnnl_primitive_t p, const cached *k, uint16_t *a, const uint16_t *b, float *c) {
    static _Thread_local bound tl[BOUND_MAX];
    static _Thread_local int n_tl;
    static _Thread_local dnnl_stream_t s; /* a stream is not shared between threads either */
    if (!s) LP_CHECK(dnnl_stream_create(&s, engine, dnnl_stream_default_flags) == dnnl_success);
    dnnl_memory_t own[3], *m = NULL;
    for (int i = 0; i < n_tl && !m; i++)
        if (tl[i].prim == p) m = tl[i].mem;
    if (!m && n_tl < BOUND_MAX) {
        tl[n_tl].prim = p;
        make_mems(k, tl[n_tl].mem);
        m = tl[n_tl++].mem;
    }
    const int temporary = !m; /* more primitives than BOUND_MAX in this thread: objects for this call */
    if (temporary) make_mems(k, m = own);
    LP_CHECK(dnnl_memory_set_data_handle(m[0], a) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[1], (void *)b) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[2], c) == dnnl_success);
    const dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}};
    omp_set_num_threads(openblas_get_num_threads()); /* this thread's team: the one thread knob */
    LP_CHECK(dnnl_primitive_execute(p, s, 3, args) == dnnl_success);
    LP_CHECK(dnnl_stream_wait(s) == dnnl_success);
    if (temporary)
        for (int i = 0; i < 3; i++) dnnl_memory_destroy(own[i]);
}

/* C = alpha·op(A)·op(B) + beta·C in bf16: A converted here, B converted here unless Bh (its packed bf16
 * copy) is given. */
static void bf16_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      const uint16_t *Bh, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) { /* an empty sum: C = beta·C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N; /* as stored */
    uint16_t *a = scratch(0, (size_t)ar * ac);
    to_bf16(a, A, ar, ac, lda);
    if (!Bh) {
        uint16_t *b = scratch(1, (size_t)br * bc);
        to_bf16(b, B, br, bc, ldb);
        Bh = b;
    }
    const cached k = {ta, tb, M, N, K, ac, bc, ldc, alpha, beta, NULL};
    run(primitive(&k), &k, a, Bh, C);
}

#endif /* oneDNN */

lp_status lp_precision_set(lp_precision p) {
    if (p == LP_PRECISION_BF16) LP_TRY(lp_precision_bf16_available());
    precision = p;
    return LP_OK;
}

/* ---- the products ---------------------------------------------------------------------------------- */

void lp_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc) {
    if (precision == LP_PRECISION_FP32) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
                    lda, B, ldb, beta, C, ldc);
        return;
    }
    bf16_gemm(ta, tb, M, N, K, alpha, A, lda, B, NULL, ldb, beta, C, ldc);
}

void lp_gemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x, float beta, float *y) {
    if (precision == LP_PRECISION_FP32) {
        cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
        return;
    }
    /* y [1, out] = x [1, in] · op(A)ᵀ: a product with one row */
    bf16_gemm(0, !ta, 1, ta ? N : M, ta ? M : N, alpha, x, ta ? M : N, A, NULL, lda, beta, y, ta ? N : M);
}

lp_status lp_gemm_w_init(lp_gemm_w *p, const float *w, int rows, int cols) {
    p->f32 = w, p->bf16 = NULL, p->rows = rows, p->cols = cols;
    if (precision == LP_PRECISION_FP32) return LP_OK;
    LP_ALLOC(p->bf16, (size_t)rows * cols, sizeof *p->bf16);
    to_bf16(p->bf16, w, rows, cols, cols);
    return LP_OK;
}

void lp_gemm_w_free(lp_gemm_w *p) {
    lp_free(p->bf16);
    p->bf16 = NULL;
}

void lp_gemm_pw(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const lp_gemm_w *B,
                float beta, float *C, int ldc) {
    if (!B->bf16) {
        lp_gemm(ta, tb, M, N, K, alpha, A, lda, B->f32, B->cols, beta, C, ldc);
        return;
    }
    bf16_gemm(ta, tb, M, N, K, alpha, A, lda, B->f32, B->bf16, B->cols, beta, C, ldc);
}

void lp_gemv_pw(int ta, float alpha, const lp_gemm_w *A, const float *x, float beta, float *y) {
    const int M = A->rows, N = A->cols;
    if (!A->bf16) {
        lp_gemv(ta, M, N, alpha, A->f32, N, x, beta, y);
        return;
    }
    bf16_gemm(0, !ta, 1, ta ? N : M, ta ? M : N, alpha, x, ta ? M : N, A->f32, A->bf16, N, beta, y, ta ? N : M);
}
