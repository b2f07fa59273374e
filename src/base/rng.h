/* Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * Every random draw in dptrain is a pure function of (seed, domain, c1, c2), so results never
 * depend on the number of ranks, on the order in which rows are processed, or on whether a run
 * was interrupted and resumed. The domains and what c1/c2 mean for each:
 *   RNG_DOMAIN_INIT      c1 = layer index           c2 = element block (weight init)
 *   RNG_DOMAIN_SHUFFLE   c1 = epoch                 c2 = draw index   (sample order)
 *   RNG_DOMAIN_DROPOUT   c1 = global step           c2 = sample * blocks_per_row + block; layer in domain
 *   RNG_DOMAIN_SYNTH_X/Y c1 = 0                     c2 = row * blocks_per_row + block (synthetic data)
 *   RNG_DOMAIN_SPLIT     c1 = 0                     c2 = draw index   (import test split)
 *   RNG_DOMAIN_AUGMENT   c1 = epoch                 c2 = global sample index; layer in domain */
#ifndef DPTRAIN_RNG_H
#define DPTRAIN_RNG_H

#include <stdint.h>

enum rng_domain {
    RNG_DOMAIN_INIT = 1,
    RNG_DOMAIN_SHUFFLE = 2,
    RNG_DOMAIN_DROPOUT = 3,
    RNG_DOMAIN_SYNTH_X = 4,
    RNG_DOMAIN_SYNTH_Y = 5,
    RNG_DOMAIN_SPLIT = 6,
    RNG_DOMAIN_AUGMENT = 7,
};

/* The raw generator: 10 rounds of Philox4x32 on a 128-bit counter with a 64-bit key. */
void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2]);

/* Four 32-bit words for (seed, domain, c1, c2). domain may carry a layer index in bits 8..31. */
void rng_block(uint32_t out[4], uint64_t seed, uint32_t domain, uint32_t c1, uint64_t c2);

/* Uniform float in [0, 1) from one 32-bit word (24 bits of mantissa). */
static inline float rng_u32_to_unit_float(uint32_t u)
{
    return (float)(u >> 8) * (1.0f / 16777216.0f);
}

/* Fills out[0..n) with U[0,1) floats: element i uses block i/4, word i%4. */
void rng_uniform_fill(float *out, uint64_t n, uint64_t seed, uint32_t domain, uint32_t c1,
                      uint64_t c2_base);

/* Fisher-Yates permutation of idx[0..n) (any starting content); draw d uses counter c2_base + d. */
void rng_shuffle_u64(uint64_t *idx, uint64_t n, uint64_t seed, uint32_t domain, uint32_t c1,
                     uint64_t c2_base);

#endif
