/* rng: PCG32 (XSH-RR variant), see rng.h. */
#include "core/rng.h"

#include <math.h>

void lp_rng_init(lp_rng *r, uint64_t seed, uint64_t stream) {
    r->state = 0;
    r->inc = (stream << 1u) | 1u;
    (void)lp_rng_u32(r);
    r->state += seed;
    (void)lp_rng_u32(r);
}

uint32_t lp_rng_u32(lp_rng *r) {
    uint64_t old = r->state;
    r->state = old * 6364136223846793005ULL + r->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((32u - rot) & 31u));
}

uint64_t lp_rng_u64(lp_rng *r) {
    uint64_t hi = lp_rng_u32(r);
    return (hi << 32) | lp_rng_u32(r);
}

uint32_t lp_rng_below(lp_rng *r, uint32_t n) {
    uint32_t threshold = (uint32_t)(-n) % n; /* 2^32 mod n */
    for (;;) {
        uint32_t x = lp_rng_u32(r);
        if (x >= threshold) return x % n;
    }
}

double lp_rng_uniform(lp_rng *r) { return (double)(lp_rng_u64(r) >> 11) * 0x1.0p-53; }

double lp_rng_normal(lp_rng *r) {
    double u1 = lp_rng_uniform(r), u2 = lp_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

void lp_rng_shuffle_int(lp_rng *r, int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)lp_rng_below(r, (uint32_t)i + 1u);
        int t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}
