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
static pthread_key_t thread_key; /* the calling thread's state (below), freed when the thread ends */
static void thread_free(void *p);
static void engine_init(void) {
    LP_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success);
    LP_CHECK(pthread_key_create(&thread_key, thread_free) == 0);
}

/* One matmul primitive per shape, strides, alpha and beta, made once (creating one costs far more than a
 * small product) and kept for the process, up to CACHE_MAX of them; beyond that a product makes its own
 * and destroys it (videos of every length from 1 to 300 frames give many shapes, and memory stays
 * bounded). A primitive keeps no scratch memory of its own (user scratchpad mode): each thread passes its
 * own, so the row parts of the LSTM (layers/lstm_par.c) can run one primitive at the same time. */
typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    float alpha, beta;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t scratch; /* its scratchpad's layout */
} cached;

#define CACHE_MAX 4096
static cached *cache;
static int n_cached, cache_cap;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

/* A plain 2-D descriptor of `type` with row stride rs and column stride cs. */
static dnnl_memory_desc_t desc(int rows, int cols, dnnl_data_type_t type, int rs, int cs) {
    dnnl_memory_desc_t d;
    const dnnl_dims_t dims = {rows, cols}, strides = {rs, cs};
    LP_CHECK(dnnl_memory_desc_init_by_strides(&d, 2, dims, type, strides) == dnnl_success);
    return d;
}

/* The three argument descriptors: src op(A) [M,K] and weights op(B) [K,N] in bf16, packed as to_bf16
 * leaves them; dst C [M,N] fp32 with its leading dimension. */
static void arg_descs(const cached *k, dnnl_memory_desc_t *d) {
    d[0] = k->ta ? desc(k->M, k->K, dnnl_bf16, 1, k->M) : desc(k->M, k->K, dnnl_bf16, k->K, 1);
    d[1] = k->tb ? desc(k->K, k->N, dnnl_bf16, 1, k->K) : desc(k->K, k->N, dnnl_bf16, k->N, 1);
    d[2] = desc(k->M, k->N, dnnl_f32, k->ldc, 1);
}

/* Make k's primitive (k->prim, k->scratch). */
static void make(cached *k) {
    dnnl_memory_desc_t d[3];
    arg_descs(k, d);
    dnnl_matmul_desc_t md;
    LP_CHECK(dnnl_matmul_desc_init(&md, &d[0], &d[1], NULL, &d[2]) == dnnl_success);
    dnnl_primitive_attr_t attr;
    LP_CHECK(dnnl_primitive_attr_create(&attr) == dnnl_success);
    LP_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success);
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
    k->scratch = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    LP_CHECK(dnnl_primitive_create(&k->prim, pd) == dnnl_success);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
}

/* k's cached primitive, made now if new; 0 when it could not be cached (k->prim is then the caller's to
 * destroy). */
static int lookup(cached *k) {
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < n_cached; i++) {
        const cached *c = &cache[i];
        if (c->ta == k->ta && c->tb == k->tb && c->M == k->M && c->N == k->N && c->K == k->K && c->lda == k->lda &&
            c->ldb == k->ldb && c->ldc == k->ldc && c->alpha == k->alpha && c->beta == k->beta) {
            *k = *c;
            pthread_mutex_unlock(&cache_lock);
            return 1;
        }
    }
    make(k);
    if (n_cached == cache_cap && cache_cap < CACHE_MAX) {
        int cap = cache_cap ? 2 * cache_cap : 64;
        cached *grown = lp_realloc(cache, (size_t)cap, sizeof *grown);
        if (grown) cache = grown, cache_cap = cap;
    }
    const int kept = n_cached < cache_cap;
    if (kept) cache[n_cached++] = *k;
    pthread_mutex_unlock(&cache_lock);
    return kept;
}

/* ---- per-thread state ------------------------------------------------------------------------------ */

/* What one thread keeps between products: its stream, its scratch buffers (the bf16 operands and the
 * primitives' scratchpad), and the memory objects of the primitives it ran, pointed at each call's
 * buffers (made once: creating them at every call cost about as much as a small product). Freed when the
 * thread ends (the LSTM's row parts are threads started per layer). */
#define BOUND_MAX 64
typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t mem[4]; /* src, weights, dst, scratchpad */
} bound;

typedef struct {
    dnnl_stream_t stream;
    void *buf[3]; /* A, B in bf16; the scratchpad */
    size_t cap[3];
    bound b[BOUND_MAX];
    int n_b;
} thread_state;

static void thread_free(void *p) {
    thread_state *t = p;
    for (int i = 0; i < t->n_b; i++)
        for (int j = 0; j < 4; j++) dnnl_memory_destroy(t->b[i].mem[j]);
    for (int j = 0; j < 3; j++) lp_free(t->buf[j]);
    if (t->stream) dnnl_stream_destroy(t->stream);
    lp_free(t);
}

static thread_state *state(void) {
    pthread_once(&engine_once, engine_init);
    thread_state *t = pthread_getspecific(thread_key);
    if (!t) {
        LP_CHECK((t = lp_calloc(1, sizeof *t)) != NULL);
        LP_CHECK(dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags) == dnnl_success);
        LP_CHECK(pthread_setspecific(thread_key, t) == 0);
    }
    return t;
}

/* The thread's buffer `which` with room for n bytes. */
static void *scratch(thread_state *t, int which, size_t n) {
    if (n > t->cap[which]) {
        lp_free(t->buf[which]);
        LP_CHECK((t->buf[which] = lp_malloc(n, 1)) != NULL);
        t->cap[which] = n;
    }
    return t->buf[which];
}

static void make_mems(const cached *k, dnnl_memory_t *m) {
    dnnl_memory_desc_t d[3];
    arg_descs(k, d);
    for (int i = 0; i < 3; i++) LP_CHECK(dnnl_memory_create(&m[i], &d[i], engine, DNNL_MEMORY_NONE) == dnnl_success);
    LP_CHECK(dnnl_memory_create(&m[3], &k->scratch, engine, DNNL_MEMORY_NONE) == dnnl_success);
}

/* Run k (cached: its memory objects are kept in the thread's table; else made for this call). */
static void run(thread_state *t, const cached *k, int is_cached, uint16_t *a, const uint16_t *b, float *c) {
    dnnl_memory_t own[4], *m = NULL;
    for (int i = 0; is_cached && i < t->n_b && !m; i++)
        if (t->b[i].prim == k->prim) m = t->b[i].mem;
    if (!m && is_cached && t->n_b < BOUND_MAX) {
        t->b[t->n_b].prim = k->prim;
        make_mems(k, t->b[t->n_b].mem);
        m = t->b[t->n_b++].mem;
    }
    const int temporary = !m;
    if (temporary) make_mems(k, m = own);
    void *pad = scratch(t, 2, dnnl_memory_desc_get_size(&k->scratch) + 1);
    LP_CHECK(dnnl_memory_set_data_handle(m[0], a) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[1], (void *)b) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[2], c) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[3], pad) == dnnl_success);
    const dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}, {DNNL_ARG_SCRATCHPAD, m[3]}};
    omp_set_num_threads(openblas_get_num_threads()); /* this thread's team: the one thread knob */
    LP_CHECK(dnnl_primitive_execute(k->prim, t->stream, 4, args) == dnnl_success);
    LP_CHECK(dnnl_stream_wait(t->stream) == dnnl_success);
    if (temporary)
        for (int i = 0; i < 4; i++) dnnl_memory_destroy(own[i]);
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
    thread_state *t = state();
    uint16_t *a = scratch(t, 0, (size_t)ar * ac * sizeof(uint16_t));
    to_bf16(a, A, ar, ac, lda);
    if (!Bh) {
        uint16_t *b = scratch(t, 1, (size_t)br * bc * sizeof(uint16_t));
        to_bf16(b, B, br, bc, ldb);
        Bh = b;
    }
    cached k = {ta, tb, M, N, K, ac, bc, ldc, alpha, beta, NULL, {0}};
    const int is_cached = lookup(&k);
    run(t, &k, is_cached, a, Bh, C);
    if (!is_cached) dnnl_primitive_destroy(k.prim);
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
