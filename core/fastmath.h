/* fastmath: the branch-free e^x shared by the LSTM gate loops (layers/lstm.c) and the softmax loops
 * (lm/lm_ops.c), and the LSTM's sigmoid and tanh built on it. Written so that a loop calling it is straight-line code GCC vectorises at -O3 without
 * -ffast-math; the callers clamp the argument first (each in the way its loop vectorises best). */
#ifndef LP_CORE_FASTMATH_H
#define LP_CORE_FASTMATH_H

#include <stdint.h>
#include <string.h>

/* LP_VECTOR_CLONES before a function with such loops builds it three times — AVX-512, AVX2 and the
 * build's baseline (x86-64-v2: 4 floats per instruction) — and the loader picks the widest the CPU has.
 * The results are the same bit for bit: the loops are element by element, and without -ffast-math, in
 * C11 mode, GCC never fuses a·b + c into one rounding (an FMA), whatever the instruction set. Only for
 * GCC on x86-64 without sanitizers (clang builds the fuzzers; ASan builds need no speed). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define LP_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LP_VECTOR_CLONES
#endif

/* e^x for x already clamped to [-87.3, 88] (so that 2^n below is a normal float): x = n·ln2 + r with
 * |r| <= ln2/2, e^r by a degree-7 polynomial with Cephes' coefficients, 2^n assembled in the exponent
 * bits. Relative error < 1e-7. The rounding of x/ln2 is an integer conversion of a positive number. */
static inline float lp_exp_clamped(float x) {
    int32_t n = (int32_t)(x * 1.44269504088896341f + 128.5f) - 128; /* round(x/ln2) */
    float nf = (float)n;
    float r = x - nf * 0.693359375f; /* ln2 split in two parts for an exact reduction */
    r = r - nf * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = (n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* ---- the LSTM's activations (the gate loops of layers/lstm.c) ---- */

/* e^x for any float: the argument is clamped to [-87, 88] (lp_exp_clamped in core/fastmath.h), written
 * so that NaN clamps to -87 (the comparisons are false) and the float->int conversion inside only sees
 * in-range values; NaN is passed through at the end, so a diverged run stays visibly NaN. */
static inline float lp_fast_exp(float x0) {
    float x = x0 > -87.0f ? x0 : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    float e = lp_exp_clamped(x);
    return x0 == x0 ? e : x0;
}

static inline float lp_fast_sigmoid(float x) { return 1.0f / (1.0f + lp_fast_exp(-x)); }

/* tanh in two forms, both computed and one selected (so the loop vectorises):
 *   |x| < 0.875: x + x³·P(x²), P of degree 6 with P(0) = -1/3 exactly (a weighted minimax fit of
 *                (tanh x - x)/x³, coefficients rounded to float); x is exact and the x³ term at most a
 *                quarter of it, so the result keeps full relative accuracy down to 0;
 *   beyond:      sign(x)·(1 - 2/(e^{2|x|}+1)), where tanh rounds to ±1 in float at |x| ≈ 9.01.
 * Measured against tanh in double (2^16 points per 1/8 of x): within 1.04 ulp everywhere, correctly
 * rounded for 77-99% of x below 4 and all beyond, and unbiased: the mean signed error per 1/8 interval
 * is below 0.03 ulp. The backward pass takes tanh' = (1 - t)(1 + t) from these values and its gradients
 * are only as good as them. Two earlier versions were not: Eigen's [13/6] rational function clamped to
 * ±1 beyond 7.905 made tanh' 1% low for |x| in [6,7), 6% in [7,7.9) and 0 in [7.9,9); and the same
 * rational function below 0.625 was up to 3.9 ulp off and biased (-1.07 ulp on average in [0,0.25),
 * -0.45 in [0.25,0.5)), which at a trained checkpoint tripled the rounding error of the gradient of the
 * BiLSTM's backward direction against float64 (docs/RESULTS.md). */
static inline float lp_fast_tanh(float x) {
    float ax = x < 0.0f ? -x : x;
    float big = 1.0f - 2.0f / (lp_fast_exp(2.0f * ax) + 1.0f); /* NaN stays NaN; e^{2|x|} clamps at e^88 */
    big = x < 0.0f ? -big : big;
    float x2 = x * x; /* for |x| >= 0.875 the polynomial may overflow; it is not selected then */
    float p = -5.11516875e-4f;
    p = p * x2 + 2.73176027e-3f;
    p = p * x2 + -8.4205186e-3f;
    p = p * x2 + 2.17445754e-2f;
    p = p * x2 + -5.39509207e-2f;
    p = p * x2 + 1.33332506e-1f;
    p = p * x2 + -3.33333343e-1f;
    float small = x + (x * x2) * p;
    return ax < 0.875f ? small : big;
}

#endif
