#include "base/rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void philox4x32_10(uint32_t out[4], const uint32_t ctr[4], const uint32_t key[2])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo32(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo32(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void rng_block(uint32_t out[4], uint64_t seed, uint32_t domain, uint32_t c1, uint64_t c2)
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    uint32_t ctr[4] = {(uint32_t)c2, (uint32_t)(c2 >> 32), c1, domain};
    philox4x32_10(out, ctr, key);
}

void rng_uniform_fill(float *out, uint64_t n, uint64_t seed, uint32_t domain, uint32_t c1,
                      uint64_t c2_base)
{
    uint32_t w[4];
    for (uint64_t i = 0; i < n; i += 4) {
        rng_block(w, seed, domain, c1, c2_base + i / 4);
        for (uint64_t j = 0; j < 4 && i + j < n; j++)
            out[i + j] = rng_u32_to_unit_float(w[j]);
    }
}

void rng_shuffle_u64(uint64_t *idx, uint64_t n, uint64_t seed, uint32_t domain, uint32_t c1,
                     uint64_t c2_base)
{
    uint32_t w[4];
    for (uint64_t i = n; i > 1; i--) {
        /* One block per draw: 64 random bits, mapped to [0, i) by a 128-bit multiply (Lemire). */
        rng_block(w, seed, domain, c1, c2_base + (n - i));
        uint64_t r = ((uint64_t)w[0] << 32) | w[1];
        uint64_t j = (uint64_t)(((unsigned __int128)r * i) >> 64);
        uint64_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}
