#include "base/keyed_permutation.h"

#include "base/rng.h"

#define FEISTEL_ROUNDS 6

void keyed_permutation_init(struct keyed_permutation *p, uint64_t n, uint64_t seed, uint32_t domain,
                            uint32_t c1, uint64_t c2_base)
{
    unsigned bits = 0;
    while (bits < 64 && n > 1 && ((n - 1) >> bits) != 0)
        bits++;
    p->n = n;
    p->half_bits = bits < 2 ? 1 : (bits + 1) / 2;
    p->seed = seed;
    p->domain = domain;
    p->c1 = c1;
    p->c2_base = c2_base;
}

static uint64_t round_function(const struct keyed_permutation *p, unsigned round, uint64_t half)
{
    uint32_t w[4];
    rng_block(w, p->seed, p->domain, p->c1, p->c2_base + ((uint64_t)round << 32) + half);
    return (((uint64_t)w[0] << 32) | w[1]) & ((UINT64_C(1) << p->half_bits) - 1);
}

static uint64_t feistel(const struct keyed_permutation *p, uint64_t x)
{
    uint64_t mask = (UINT64_C(1) << p->half_bits) - 1;
    uint64_t left = x >> p->half_bits, right = x & mask;
    for (unsigned r = 0; r < FEISTEL_ROUNDS; r++) {
        uint64_t next = left ^ round_function(p, r, right);
        left = right;
        right = next;
    }
    return (left << p->half_bits) | right;
}

static uint64_t feistel_inverse(const struct keyed_permutation *p, uint64_t y)
{
    uint64_t mask = (UINT64_C(1) << p->half_bits) - 1;
    uint64_t left = y >> p->half_bits, right = y & mask;
    for (unsigned r = FEISTEL_ROUNDS; r-- > 0;) {
        uint64_t prev = right ^ round_function(p, r, left);
        right = left;
        left = prev;
    }
    return (left << p->half_bits) | right;
}

/* Cycle-walking: the Feistel network permutes [0, 2^(2 * half_bits)); following its cycle from a
 * value below n until it lands below n again restricts it to a permutation of [0, n). */
uint64_t keyed_permutation_forward(const struct keyed_permutation *p, uint64_t i)
{
    if (p->n <= 1)
        return i;
    uint64_t x = feistel(p, i);
    while (x >= p->n)
        x = feistel(p, x);
    return x;
}

uint64_t keyed_permutation_inverse(const struct keyed_permutation *p, uint64_t v)
{
    if (p->n <= 1)
        return v;
    uint64_t x = feistel_inverse(p, v);
    while (x >= p->n)
        x = feistel_inverse(p, x);
    return x;
}
