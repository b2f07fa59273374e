/* Division by a number known before the launch, as a multiply-high, an add and a shift (the
 * round-up method of Granlund and Montgomery, as PyTorch's IntDivider does it). The kernels that
 * turn a flat index into image coordinates divide several times for every value they move, and a
 * 32-bit hardware division costs about 20 instructions (64-bit, several times that).
 * Exact for dividends below 2^31 and divisors from 1 to 2^31 - 1. Plain C, so host tests use it. */
#ifndef DPTRAIN_FAST_DIVIDE_H
#define DPTRAIN_FAST_DIVIDE_H

#include <stdint.h>

#ifdef __CUDACC__
#define FAST_DIVIDE_FN __host__ __device__ static inline
#else
#define FAST_DIVIDE_FN static inline
#endif

struct fast_divisor {
    uint32_t d, magic, shift;
};

static inline struct fast_divisor fast_divisor_make(uint32_t d)
{
    uint32_t shift = 0;
    while (((uint64_t)1 << shift) < d) /* the least shift with 2^shift >= d */
        shift++;
    /* magic = floor(2^32 (2^shift - d) / d) + 1, below 2^32 for d < 2^31 */
    uint64_t magic = (((uint64_t)1 << 32) * (((uint64_t)1 << shift) - d)) / d + 1;
    struct fast_divisor f = {d, (uint32_t)magic, shift};
    return f;
}

FAST_DIVIDE_FN uint32_t fast_div(uint32_t n, struct fast_divisor f)
{
#ifdef __CUDA_ARCH__
    uint32_t high = __umulhi(n, f.magic);
#else
    uint32_t high = (uint32_t)(((uint64_t)n * f.magic) >> 32);
#endif
    return (high + n) >> f.shift;
}

/* n / f.d into *quotient; returns n % f.d */
FAST_DIVIDE_FN uint32_t fast_divmod(uint32_t n, struct fast_divisor f, uint32_t *quotient)
{
    uint32_t q = fast_div(n, f);
    *quotient = q;
    return n - q * f.d;
}

#endif
