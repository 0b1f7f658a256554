/* gemm: fp32 products through OpenBLAS, bf16 products through oneDNN (see gemm.h). */
#include "core/gemm.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "core/alloc.h"
#include "core/par.h"

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

/* The bits u of a float rounded to bf16: to nearest even (add just under half of the dropped part, plus
 * the kept part's lowest bit), a NaN stays a quiet NaN. Branch-free, so that the conversion loop below
 * vectorises. */
static inline uint16_t bf16_round(uint32_t u) {
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    const uint32_t quiet_nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

uint16_t lp_bf16_from_float(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return bf16_round(u);
}

float lp_bf16_to_float(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Rows [r0, r1) of a rows × cols conversion: src (leading dimension ld) into dst, packed (leading
 * dimension cols). bf16 only runs on CPUs with AVX512-BF16 (lp_precision_bf16_available), so this loop
 * may use AVX-512 whatever the build's baseline: 16 values per instruction instead of 4. */
#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
__attribute__((target("avx512f,avx512bw,avx512vl")))
#endif
static void to_bf16_rows(uint16_t *restrict dst, const float *restrict src, int r0, int r1, int cols, int ld) {
    for (int r = r0; r < r1; r++) {
        const float *s = src + (size_t)r * ld;
        uint16_t *d = dst + (size_t)r * cols;
        for (int c = 0; c < cols; c++) {
            uint32_t u;
            memcpy(&u, &s[c], sizeof u);
            d[c] = bf16_round(u);
        }
    }
}

typedef struct {
    uint16_t *dst;
    const float *src;
    int r0, r1, cols, ld;
} convert_part;

static void *convert_run(void *arg) {
    const convert_part *p = arg;
    to_bf16_rows(p->dst, p->src, p->r0, p->r1, p->cols, p->ld);
    return NULL;
}

/* rows × cols of src (leading dimension ld) into dst, packed (leading dimension cols). A large one (an
 * activation of a whole batch: 10⁸ values at the paper's shape) is split over OpenBLAS's threads, the
 * one knob for the cores used; inside the LSTM's row parts that is 1. */
#define CONVERT_SPLIT_MIN (1 << 20)
static atomic_uint_fast64_t converted; /* values, for lp_gemm_bf16_converted */
static void to_bf16(uint16_t *dst, const float *src, int rows, int cols, int ld) {
    atomic_fetch_add_explicit(&converted, (uint64_t)rows * (uint64_t)cols, memory_order_relaxed);
    int n = (size_t)rows * cols >= CONVERT_SPLIT_MIN ? openblas_get_num_threads() : 1;
    n = n < rows ? n : rows;
    n = n < LP_PAR_MAX ? n : LP_PAR_MAX;
    if (n <= 1) {
        to_bf16_rows(dst, src, 0, rows, cols, ld);
        return;
    }
    convert_part parts[LP_PAR_MAX];
    for (int i = 0; i < n; i++)
        parts[i] = (convert_part){dst, src, (int)((long)rows * i / n), (int)((long)rows * (i + 1) / n), cols, ld};
    lp_par_run(convert_run, parts, sizeof parts[0], n);
}

uint64_t lp_gemm_bf16_converted(void) { return atomic_load(&converted); }

/* ---- held blocks (gemm.h, lp_gemm_hold) --------------------------------------------------------------- */

#define HELD_PACKS_MAX 64
typedef struct {
    const float *f32;
    size_t n;
    uint16_t *bf16; /* its copy, room for cap values (kept for the block's next hold) */
    size_t cap;
    int depth;      /* holds not yet released; 0: free */
    uint64_t id;    /* which hold (a process-wide count): lp_gemm_w's borrowed from it check it is live */
    lp_gemm_w packs[HELD_PACKS_MAX]; /* the weights prepared inside it during this hold (their layouts) */
    int n_packs;
} held_block;

static held_block held[LP_GEMM_HELD_MAX];
static uint64_t holds; /* holds made so far: the next one's id */
static pthread_mutex_t packs_lock = PTHREAD_MUTEX_INITIALIZER; /* products on several threads prepare */

/* The held block holding all of x [rows, cols] (leading dimension ld), whose copy therefore has it in the
 * layout a product's operand takes (rows packed: ld = cols, or one row); NULL otherwise. */
static held_block *held_find(const float *x, int rows, int cols, int ld) {
    if (rows != 1 && ld != cols) return NULL;
    const uintptr_t p = (uintptr_t)x, len = ((size_t)rows * (size_t)cols) * sizeof(float);
    for (int i = 0; i < LP_GEMM_HELD_MAX; i++) {
        const held_block *h = &held[i];
        const uintptr_t b = (uintptr_t)h->f32;
        if (h->depth > 0 && p >= b && p - b + len <= h->n * sizeof(float)) return &held[i];
    }
    return NULL;
}

/* x's bf16 values from the held block h (x found in it by held_find). */
static uint16_t *held_copy(const held_block *h, const float *x) { return h->bf16 + (x - h->f32); }

#ifdef LP_NO_DNNL

lp_status lp_precision_bf16_available(void) {
    return lp_errorf(LP_ERR_ARG, "bf16 needs oneDNN, and this build has none (built with make DNNL=0)");
}

static void bf16_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, const lp_gemm_w *pw, float beta, float *C, int ldc) {
    (void)ta, (void)tb, (void)M, (void)N, (void)K, (void)alpha, (void)A, (void)lda, (void)B, (void)ldb, (void)pw;
    (void)beta, (void)C, (void)ldc;
    LP_CHECK(!"bf16 product in a build without oneDNN"); /* lp_precision_set refuses bf16 there */
}

static void *pack(const lp_gemm_w *p) {
    (void)p;
    return NULL;
}

static void pack_free(void *packed) { (void)packed; }

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

/* One matmul primitive per shape, strides, alpha, beta, thread count and weight layout, made once
 * (creating one costs far more than a small product) and kept for the process, up to CACHE_MAX of
 * them; beyond that a product makes its own and destroys it (videos of every length from 1 to 300
 * frames give many shapes, and memory stays bounded). A primitive keeps no scratch memory of its own
 * (user scratchpad mode): each thread passes its own, so the row parts of the LSTM (layers/lstm_par.c)
 * can run one primitive at the same time. */
typedef struct {
    int ta, tb, M, N, K, lda, ldb, ldc;
    int threads; /* oneDNN plans a primitive's work for the OpenMP thread count at its creation */
    float alpha, beta;
    int packed;                 /* B is a prepared weight in oneDNN's blocked layout, wmd */
    dnnl_memory_desc_t wmd;
    int slow;                   /* oneDNN could only offer its reference loops (see bf16_gemm) */
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
 * leaves them (or B blocked, a prepared weight); dst C [M,N] fp32 with its leading dimension. */
static void arg_descs(const cached *k, dnnl_memory_desc_t *d) {
    d[0] = k->ta ? desc(k->M, k->K, dnnl_bf16, 1, k->M) : desc(k->M, k->K, dnnl_bf16, k->K, 1);
    d[1] = k->packed ? k->wmd : k->tb ? desc(k->K, k->N, dnnl_bf16, 1, k->K) : desc(k->K, k->N, dnnl_bf16, k->N, 1);
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
    const char *impl = NULL;
    k->slow = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
              !strncmp(impl, "ref", 3);
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
            c->ldb == k->ldb && c->ldc == k->ldc && c->alpha == k->alpha && c->beta == k->beta &&
            c->packed == k->packed && c->threads == k->threads &&
            (!k->packed || dnnl_memory_desc_equal(&c->wmd, &k->wmd))) {
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
    void *buf[4]; /* A, B in bf16; the scratchpad; C made contiguous (below) */
    size_t cap[4];
    bound b[BOUND_MAX];
    int n_b;
} thread_state;

static void thread_free(void *p) {
    thread_state *t = p;
    for (int i = 0; i < t->n_b; i++)
        for (int j = 0; j < 4; j++) dnnl_memory_destroy(t->b[i].mem[j]);
    for (int j = 0; j < 4; j++) lp_free(t->buf[j]);
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
static void run(thread_state *t, const cached *k, int is_cached, const uint16_t *a, const void *b, float *c) {
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
    LP_CHECK(dnnl_memory_set_data_handle(m[0], (void *)a) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[1], (void *)b) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[2], c) == dnnl_success);
    LP_CHECK(dnnl_memory_set_data_handle(m[3], pad) == dnnl_success);
    const dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, m[0]}, {DNNL_ARG_WEIGHTS, m[1]}, {DNNL_ARG_DST, m[2]}, {DNNL_ARG_SCRATCHPAD, m[3]}};
    LP_CHECK(dnnl_primitive_execute(k->prim, t->stream, 4, args) == dnnl_success);
    LP_CHECK(dnnl_stream_wait(t->stream) == dnnl_success);
    if (temporary)
        for (int i = 0; i < 4; i++) dnnl_memory_destroy(own[i]);
}

/* ---- prepared weights: oneDNN's blocked layout ------------------------------------------------------ */

/* A weight laid out for oneDNN's bf16 matmul: pairs of K interleaved for the dot-product instruction, in
 * tiles of the kernel's width. oneDNN's choice of tile width depends on K and N, and for small ones also
 * on M and the OpenMP thread count; pack() asks for one row and one thread, so a weight's layout never
 * depends on where it was prepared, and the primitive cache tells layouts apart (a primitive made for
 * one must never run on another). The products of every M and thread count accept it; where oneDNN
 * would run it only through its reference loops, the product uses the plain copy (bf16_gemm). */
typedef struct {
    dnnl_memory_desc_t md;
    void *data;
} packed_w;

static void pack_free(void *packed) {
    packed_w *q = packed;
    if (!q) return;
    lp_free(q->data);
    lp_free(q);
}

/* p's bf16 copy in the blocked layout for op(B) as p->tb says, or NULL when oneDNN offers none (or
 * memory runs out): the products then use the plain copy. */
static void *pack(const lp_gemm_w *p) {
    const int K = p->tb ? p->cols : p->rows, N = p->tb ? p->rows : p->cols;
    const dnnl_memory_desc_t plain = p->tb ? desc(K, N, dnnl_bf16, 1, p->cols) : desc(K, N, dnnl_bf16, p->cols, 1);
    dnnl_memory_desc_t src = desc(1, K, dnnl_bf16, K, 1), dst = desc(1, N, dnnl_f32, N, 1), any;
    const dnnl_dims_t dims = {K, N};
    LP_CHECK(dnnl_memory_desc_init_by_tag(&any, 2, dims, dnnl_bf16, dnnl_format_tag_any) == dnnl_success);
    thread_state *t = state();
    omp_set_num_threads(1); /* the layout as one thread would have it, wherever this runs */
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL, rpd = NULL;
    dnnl_primitive_t reorder = NULL;
    dnnl_memory_t from = NULL, to = NULL;
    packed_w *q = lp_calloc(1, sizeof *q);
    int ok = q && dnnl_matmul_desc_init(&md, &src, &any, NULL, &dst) == dnnl_success &&
             dnnl_primitive_desc_create(&pd, &md, NULL, engine, NULL) == dnnl_success;
    if (ok) {
        q->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
        omp_set_num_threads(openblas_get_num_threads()); /* the reorder's team: see bf16_gemm */
        ok = (q->data = lp_aligned(dnnl_memory_desc_get_size(&q->md), 1)) != NULL &&
             dnnl_reorder_primitive_desc_create(&rpd, &plain, engine, &q->md, engine, NULL) == dnnl_success &&
             dnnl_primitive_create(&reorder, rpd) == dnnl_success &&
             dnnl_memory_create(&from, &plain, engine, p->bf16) == dnnl_success &&
             dnnl_memory_create(&to, &q->md, engine, q->data) == dnnl_success;
    }
    if (ok) {
        const dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
        ok = dnnl_primitive_execute(reorder, t->stream, 2, args) == dnnl_success &&
             dnnl_stream_wait(t->stream) == dnnl_success;
    }
    dnnl_memory_destroy(from), dnnl_memory_destroy(to);
    dnnl_primitive_destroy(reorder);
    dnnl_primitive_desc_destroy(rpd), dnnl_primitive_desc_destroy(pd);
    if (!ok) pack_free(q), q = NULL;
    return q;
}

/* C = alpha·op(A)·op(B) + beta·C in bf16: A and B converted here, or taken from a held block; B taken
 * from the prepared weight pw when given (its blocked copy when it was prepared for this tb, else its
 * plain one). */
static void bf16_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                      int ldb, const lp_gemm_w *pw, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) { /* an empty sum: C = beta·C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return;
    }
    const int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N; /* as stored */
    thread_state *t = state();
    const held_block *ha = held_find(A, ar, ac, lda);
    const uint16_t *a = ha ? held_copy(ha, A) : NULL;
    if (!a) {
        uint16_t *ah = scratch(t, 0, (size_t)ar * ac * sizeof(uint16_t));
        to_bf16(ah, A, ar, ac, lda);
        a = ah;
    }
    const packed_w *q = pw && pw->tb == (tb != 0) ? pw->packed : NULL;
    /* One row: its leading dimension is immaterial (oneDNN would take a one-row C with ldc > N for a
     * strided one). More rows with a blocked weight and a strided C (the LSTM's gate rows, T·4H apart):
     * oneDNN 2.6 has only its reference loops for that, 10³× slower, so C goes through a contiguous copy. */
    if (M == 1) ldc = N;
    float *c = C;
    if (q && ldc != N) {
        c = scratch(t, 3, (size_t)M * N * sizeof(float));
        if (beta != 0.0f)
            for (int i = 0; i < M; i++) memcpy(c + (size_t)i * N, C + (size_t)i * ldc, (size_t)N * sizeof *c);
    }
    /* this thread's OpenMP team, the one thread knob: set before the primitive is made, which plans its
     * work for that many threads (made under another count, it would keep using that one) */
    const int threads = openblas_get_num_threads();
    omp_set_num_threads(threads);
    cached k = {.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .threads = threads, .lda = ac, .ldb = bc,
                .ldc = c == C ? ldc : N, .alpha = alpha, .beta = beta, .packed = q != NULL};
    if (q) k.wmd = q->md;
    int is_cached = lookup(&k);
    if (k.packed && k.slow) { /* only reference loops for the blocked layout here: the plain copy */
        if (!is_cached) dnnl_primitive_destroy(k.prim);
        k = (cached){.ta = ta, .tb = tb, .M = M, .N = N, .K = K, .threads = threads, .lda = ac, .ldb = bc,
                     .ldc = k.ldc, .alpha = alpha, .beta = beta};
        q = NULL;
        is_cached = lookup(&k);
    }
    const held_block *hb = q || pw ? NULL : held_find(B, br, bc, ldb);
    const void *b = q ? q->data : pw ? (const void *)pw->bf16 : hb ? held_copy(hb, B) : NULL;
    if (!b) {
        uint16_t *bh = scratch(t, 1, (size_t)br * bc * sizeof(uint16_t));
        to_bf16(bh, B, br, bc, ldb);
        b = bh;
    }
    run(t, &k, is_cached, a, b, c);
    if (!is_cached) dnnl_primitive_destroy(k.prim);
    if (c != C)
        for (int i = 0; i < M; i++) memcpy(C + (size_t)i * ldc, c + (size_t)i * N, (size_t)N * sizeof *c);
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
    bf16_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, NULL, beta, C, ldc);
}

void lp_gemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x, float beta, float *y) {
    if (precision == LP_PRECISION_FP32) {
        cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y, 1);
        return;
    }
    /* y [1, out] = x [1, in] · op(A)ᵀ: a product with one row */
    bf16_gemm(0, !ta, 1, ta ? N : M, ta ? M : N, alpha, x, ta ? M : N, A, lda, NULL, beta, y, ta ? N : M);
}

/* p (w inside the held block h) with h's copy and the blocked layout made once for the hold: the first
 * product to prepare it lays it out, the others find it. 0 (p untouched) when h's table of layouts is
 * full: p is then prepared as without a hold. */
static int held_prepare(held_block *h, lp_gemm_w *p) {
    pthread_mutex_lock(&packs_lock);
    const lp_gemm_w *found = NULL;
    for (int i = 0; i < h->n_packs && !found; i++) {
        const lp_gemm_w *o = &h->packs[i];
        if (o->f32 == p->f32 && o->rows == p->rows && o->cols == p->cols && o->tb == p->tb) found = o;
    }
    if (!found && h->n_packs < HELD_PACKS_MAX) {
        lp_gemm_w *q = &h->packs[h->n_packs++];
        *q = *p;
        q->bf16 = held_copy(h, p->f32), q->hold_id = h->id;
        q->packed = pack(q);
        found = q;
    }
    if (found) *p = *found;
    pthread_mutex_unlock(&packs_lock);
    return found != NULL;
}

/* A prepared weight that borrows from a hold must not outlive it (a programmer error: LP_CHECK). */
static void check_live(const lp_gemm_w *p) {
    if (!p->hold_id) return;
    for (int i = 0; i < LP_GEMM_HELD_MAX; i++)
        if (held[i].depth > 0 && held[i].id == p->hold_id) return;
    lp_check_failed(__FILE__, __LINE__, "a weight prepared inside a hold, used after its release");
}

lp_status lp_gemm_w_init(lp_gemm_w *p, const float *w, int rows, int cols, int tb) {
    *p = (lp_gemm_w){.f32 = w, .rows = rows, .cols = cols, .tb = tb != 0};
    if (precision == LP_PRECISION_FP32) return LP_OK;
    held_block *h = held_find(w, rows, cols, cols);
    if (h && held_prepare(h, p)) return LP_OK;
    LP_ALLOC(p->bf16, (size_t)rows * cols, sizeof *p->bf16);
    to_bf16(p->bf16, w, rows, cols, cols);
    p->packed = pack(p);
    return LP_OK;
}

void lp_gemm_w_free(lp_gemm_w *p) {
    if (!p->hold_id) {
        pack_free(p->packed);
        lp_free(p->bf16);
    }
    p->bf16 = NULL, p->packed = NULL, p->hold_id = 0;
}

/* n values of w into dst, split over the threads like any large conversion. */
static void to_bf16_flat(uint16_t *dst, const float *w, size_t n) {
    const int cols = 4096;
    const size_t rows = n / cols, done = rows * cols;
    if (rows) to_bf16(dst, w, (int)rows, cols, cols);
    if (n > done) to_bf16(dst + done, w + done, 1, (int)(n - done), (int)(n - done));
}

void lp_gemm_hold(const float *w, size_t n) {
    if (precision == LP_PRECISION_FP32 || !w || n == 0 || n > (size_t)INT32_MAX * 4096) return;
    held_block *slot = NULL;
    for (int i = 0; i < LP_GEMM_HELD_MAX; i++) {
        held_block *h = &held[i];
        if (h->depth > 0 && h->f32 == w) { /* nested: the same block, or a leading part of it */
            LP_CHECK(n <= h->n);
            h->depth++;
            return;
        }
        /* a free slot, preferably the one this block had (its copy's memory) or one with room */
        if (h->depth == 0 && (!slot || h->f32 == w || (slot->f32 != w && h->cap >= n && slot->cap < n))) slot = h;
    }
    if (!slot) return; /* every slot held: products convert their own */
    if (slot->cap < n) {
        lp_free(slot->bf16);
        slot->bf16 = lp_malloc(n, sizeof *slot->bf16);
        slot->cap = slot->bf16 ? n : 0;
        if (!slot->bf16) return;
    }
    to_bf16_flat(slot->bf16, w, n);
    slot->f32 = w, slot->n = n, slot->depth = 1, slot->n_packs = 0, slot->id = ++holds;
}

/* The sanitizer builds (make asan, which runs every test) check that nothing wrote to a held block. */
#if defined(__SANITIZE_ADDRESS__)
static void check_unchanged(const held_block *h) {
    for (size_t i = 0; i < h->n; i++)
        if (h->bf16[i] != lp_bf16_from_float(h->f32[i])) lp_check_failed(__FILE__, __LINE__, "weights changed while held");
}
#else
static void check_unchanged(const held_block *h) { (void)h; }
#endif

void lp_gemm_release(const float *w) {
    for (int i = 0; i < LP_GEMM_HELD_MAX; i++) {
        held_block *h = &held[i];
        if (h->depth == 0 || h->f32 != w) continue;
        if (--h->depth == 0) {
            check_unchanged(h);
            for (int j = 0; j < h->n_packs; j++) pack_free(h->packs[j].packed);
            h->n_packs = 0;
        }
        return;
    }
}

void lp_gemm_pw(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const lp_gemm_w *B,
                float beta, float *C, int ldc) {
    check_live(B);
    if (!B->bf16) {
        lp_gemm(ta, tb, M, N, K, alpha, A, lda, B->f32, B->cols, beta, C, ldc);
        return;
    }
    bf16_gemm(ta, tb, M, N, K, alpha, A, lda, B->f32, B->cols, B, beta, C, ldc);
}

void lp_gemv_pw(int ta, float alpha, const lp_gemm_w *A, const float *x, float beta, float *y) {
    const int M = A->rows, N = A->cols;
    check_live(A);
    if (!A->bf16) {
        lp_gemv(ta, M, N, alpha, A->f32, N, x, beta, y);
        return;
    }
    bf16_gemm(0, !ta, 1, ta ? N : M, ta ? M : N, alpha, x, ta ? M : N, A->f32, N, A, beta, y, ta ? N : M);
}
