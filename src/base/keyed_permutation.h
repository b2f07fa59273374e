/* A keyed bijection of [0, n) computed one element at a time, in O(1) memory.
 *
 * Used where an explicit shuffled index array would grow with the data (the block order of a data
 * set with 10^12 rows). A balanced Feistel network over the smallest even number of bits that
 * covers n, made a permutation of [0, n) by cycle-walking (apply again until the value falls in
 * range; at most 4x the domain, so about 2-4 applications on average). The round function is
 * Philox (base/rng.h) on (seed, domain, c1, c2_base + round * 2^32 + half), so the permutation
 * is a pure function of its key like every other random draw in dptrain. The caller keeps the
 * counters [c2_base, c2_base + 2^35) free for it. */
#ifndef DPTRAIN_KEYED_PERMUTATION_H
#define DPTRAIN_KEYED_PERMUTATION_H

#include <stdint.h>

struct keyed_permutation {
    uint64_t n;
    unsigned half_bits;  /* each Feistel half; the domain is [0, 2^(2 * half_bits)) */
    uint64_t seed, c2_base;
    uint32_t domain, c1;
};

void keyed_permutation_init(struct keyed_permutation *p, uint64_t n, uint64_t seed, uint32_t domain,
                            uint32_t c1, uint64_t c2_base);
/* The element at position i (i < n). */
uint64_t keyed_permutation_forward(const struct keyed_permutation *p, uint64_t i);
/* The position of element v: keyed_permutation_forward(p, keyed_permutation_inverse(p, v)) == v. */
uint64_t keyed_permutation_inverse(const struct keyed_permutation *p, uint64_t v);

#endif
