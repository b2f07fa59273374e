#include "data/sklearn_split.h"

#define MT_N 624
#define MT_M 397

struct mt19937 {
    uint32_t s[MT_N];
    int i;
};

static void mt_seed(struct mt19937 *mt, uint32_t seed)
{
    mt->s[0] = seed;
    for (int i = 1; i < MT_N; i++)
        mt->s[i] = 1812433253u * (mt->s[i - 1] ^ (mt->s[i - 1] >> 30)) + (uint32_t)i;
    mt->i = MT_N;
}

static uint32_t mt_next(struct mt19937 *mt)
{
    if (mt->i >= MT_N) {
        for (int k = 0; k < MT_N; k++) {
            uint32_t y = (mt->s[k] & 0x80000000u) | (mt->s[(k + 1) % MT_N] & 0x7fffffffu);
            mt->s[k] = mt->s[(k + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        mt->i = 0;
    }
    uint32_t y = mt->s[mt->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* numpy's legacy random_interval for max < 2^32 */
static uint64_t mt_interval(struct mt19937 *mt, uint64_t max)
{
    if (max == 0)
        return 0;
    uint64_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    uint64_t v;
    while ((v = (mt_next(mt) & mask)) > max)
        ;
    return v;
}

void sklearn_permutation(uint64_t *perm, int64_t n, uint32_t seed)
{
    struct mt19937 mt;
    mt_seed(&mt, seed);
    for (int64_t i = 0; i < n; i++)
        perm[i] = (uint64_t)i;
    for (int64_t i = n - 1; i >= 1; i--) {
        uint64_t j = mt_interval(&mt, (uint64_t)i);
        uint64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
