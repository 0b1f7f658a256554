/* rng: explicit-state random numbers (PCG32, O'Neill 2014) with separate streams.
 *
 * Every consumer owns an lp_rng seeded from the run seed and its own stream id, so that e.g. adding a
 * dropout layer does not change the weight initialisation or the shuffle order. The state is two
 * uint64s: it is saved in checkpoints so that a resumed run draws the same numbers. Never rand(). */
#ifndef LP_RNG_H
#define LP_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t state;
    uint64_t inc; /* odd; selects the stream */
} lp_rng;

/* Stream ids used by the project (any uint64 works; these keep the uses apart). */
enum {
    LP_RNG_STREAM_INIT = 1,    /* parameter initialisation */
    LP_RNG_STREAM_SHUFFLE = 2, /* file order and shuffle buffer */
    LP_RNG_STREAM_DROPOUT = 3, /* dropout masks */
    LP_RNG_STREAM_SYNTH = 4,   /* synthetic data generation */
    LP_RNG_STREAM_PRUNE = 5,   /* random pruning criterion */
    LP_RNG_STREAM_TEST = 6,    /* tests */
    LP_RNG_STREAM_INIT_BIAS2 = 7, /* the second LSTM bias draw of --bias-init pair */
    LP_RNG_STREAM_MICRO = 8       /* dropout of micro-batch k: stream 8 + k, the seed mixed with the step */
};

void lp_rng_init(lp_rng *r, uint64_t seed, uint64_t stream);
uint32_t lp_rng_u32(lp_rng *r);
uint64_t lp_rng_u64(lp_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
uint32_t lp_rng_below(lp_rng *r, uint32_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double lp_rng_uniform(lp_rng *r);
/* Standard normal (Box–Muller; no cached second value, so the state alone defines the sequence). */
double lp_rng_normal(lp_rng *r);
/* Fisher–Yates shuffle of n ints. */
void lp_rng_shuffle_int(lp_rng *r, int *a, int n);

#endif
