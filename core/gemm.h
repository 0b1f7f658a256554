/* gemm: every matrix product of the library — fp32 through OpenBLAS (the default, unchanged bit for bit),
 * or bf16 through oneDNN's matmul primitive (`--precision bf16`; docs/METHOD.md, "Precision").
 *
 * In bf16 both operands are rounded to bfloat16 (round to nearest even: 8 exponent bits like fp32, 8
 * significant bits instead of 24) and the products are accumulated in fp32 into an fp32 result, as on
 * the CPU's native bf16 dot-product instructions (AVX512-BF16). Everything else stays fp32: the
 * master weights, Adam, the loss, the gate nonlinearities, the cell state, the gradient reduction; the
 * pruning statistics stay in double. A weight used by many products (the recurrent W_hh, once per time
 * step) is converted once (lp_gemm_w).
 *
 * The precision is process-wide, set once by a command before it computes (lp_precision_set), like the
 * thread count. bf16 is refused — never emulated silently — where the CPU has no native bf16 or the
 * build has no oneDNN (make DNNL=0). oneDNN runs its own OpenMP threads: each product uses as many as
 * OpenBLAS's thread setting, the one knob for the cores used. */
#ifndef LP_CORE_GEMM_H
#define LP_CORE_GEMM_H
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum { LP_PRECISION_FP32 = 0, LP_PRECISION_BF16 = 1 } lp_precision;

/* "fp32" / "bf16", and parsing them (LP_ERR_ARG otherwise). */
const char *lp_precision_name(lp_precision p);
lp_status lp_precision_parse(const char *s, lp_precision *out);

/* Whether bf16 can run here: LP_OK, or LP_ERR_ARG saying why not (no oneDNN in this build; the CPU lacks
 * AVX512-BF16). */
lp_status lp_precision_bf16_available(void);

/* Set the process's precision (bf16: checked as above; nothing changes on error). */
lp_status lp_precision_set(lp_precision p);
lp_precision lp_precision_get(void);

/* C [M,N] = alpha·op(A)·op(B) + beta·C, row-major, op(X) = X or Xᵀ as ta/tb say: the cblas_sgemm
 * contract (A is [M,K] or [K,M] with leading dimension lda, ...), in the current precision. */
void lp_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
             float beta, float *C, int ldc);

/* y [M or N] = alpha·op(A)·x + beta·y with A [M,N] (lda): cblas_sgemv's contract. */
void lp_gemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x, float beta, float *y);

/* ---- a weight converted once for many products ------------------------------------------------- */

/* The recurrent weight W_hh is used by every time step of a sequence. In bf16 it is converted once, and
 * also laid out once in oneDNN's blocked format for the products that use it as op(B) = wᵀ (tb = 1: the
 * forward steps, h·W_hhᵀ) or w (tb = 0: the backward steps, dG·W_hh): a product with a plain-layout
 * weight repacks it first, which costs 3–20% of a small product and 4× of a one-row one
 * (docs/BENCHMARKS.md, "bf16 and the small shape"). The same product either way, up to the order of the
 * fp32 sums, only faster. */
typedef struct {
    const float *f32; /* the weight */
    uint16_t *bf16;   /* its bf16 copy, row-major (bf16 precision only; NULL in fp32) */
    void *packed;     /* the blocked copy for op(B) as `tb` says (bf16 only; NULL if oneDNN has none) */
    int rows, cols;   /* as stored, row-major */
    int tb;           /* the products it is prepared for: B = wᵀ (1) or w (0) */
    uint64_t hold_id; /* 0: bf16 and packed are its own; else they belong to that hold (lp_gemm_hold,
                       * below), and a product after its release is a programmer error (LP_CHECK) */
} lp_gemm_w;

/* Prepare w [rows, cols] for products that take it as op(B) with transpose flag tb (converted in bf16;
 * nothing copied in fp32; inside a held block, the hold's copy and layout, which it must not outlive).
 * Used with the other flag it still gives the right product, from the plain copy. LP_ERR_NOMEM on
 * failure. */
lp_status lp_gemm_w_init(lp_gemm_w *p, const float *w, int rows, int cols, int tb);
void lp_gemm_w_free(lp_gemm_w *p);

/* lp_gemm with B given as a prepared weight (ldb = its cols). */
void lp_gemm_pw(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const lp_gemm_w *B,
                float beta, float *C, int ldc);
/* lp_gemv with A given as a prepared weight. */
void lp_gemv_pw(int ta, float alpha, const lp_gemm_w *A, const float *x, float beta, float *y);

/* ---- a model's weights converted once for many passes ---------------------------------------------- */

/* In bf16, lp_gemm_hold(w, n) converts the n values at w (a model's parameter block) once; until the
 * matching lp_gemm_release(w), every product whose operand lies inside the block reads that copy instead
 * of converting its own, and a weight prepared inside it (lp_gemm_w_init) is laid out once for the whole
 * hold. The trainer holds its weights across each optimizer step's forward and backward passes, an
 * evaluation across its pass over the data: weights are converted once per optimizer step or per pass,
 * not once per product (docs/METHOD.md, "Precision"). The same numbers either way (a conversion is
 * exact and deterministic), only faster.
 *
 * The values must not change while held (the sanitizer builds check at the last release that every value
 * still rounds to its copy). Holds of the same block nest (a nested hold may name a leading part of it;
 * more than the held block is a programmer error, LP_CHECK).
 * Nothing happens in fp32, nor when the copy cannot be made (then each product converts its own, as
 * without a hold; the release is then a no-op too). Hold and release where no product runs on another
 * thread. The copy's memory is kept for the next hold of a block (at most LP_GEMM_HELD_MAX blocks). */
#define LP_GEMM_HELD_MAX 8
void lp_gemm_hold(const float *w, size_t n);
void lp_gemm_release(const float *w);

/* Values converted to bf16 so far by this process (products, preparations and holds): what a hold saves
 * is measurable. */
uint64_t lp_gemm_bf16_converted(void);

/* Round to bfloat16 (nearest even; NaN stays NaN) and back: what bf16 products see of a value. */
uint16_t lp_bf16_from_float(float x);
float lp_bf16_to_float(uint16_t b);

#endif
