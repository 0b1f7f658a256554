/* fastmath: the branch-free e^x shared by the LSTM gate loops (layers/lstm.c) and the softmax loops
 * (lm/lm_ops.c). Written so that a loop calling it is straight-line code GCC vectorises at -O3 without
 * -ffast-math; the callers clamp the argument first (each in the way its loop vectorises best). */
#ifndef LP_CORE_FASTMATH_H
#define LP_CORE_FASTMATH_H

#include <stdint.h>
#include <string.h>

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

#endif
