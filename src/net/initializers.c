#include "net/initializers.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>

#include "base/rng.h"

const char *const initializer_names[INIT_COUNT + 1] = {
    [INIT_DEFAULT] = "default",
    [INIT_GLOROT_UNIFORM] = "glorot_uniform", [INIT_GLOROT_NORMAL] = "glorot_normal",
    [INIT_HE_UNIFORM] = "he_uniform",         [INIT_HE_NORMAL] = "he_normal",
    [INIT_LECUN_UNIFORM] = "lecun_uniform",   [INIT_LECUN_NORMAL] = "lecun_normal",
    [INIT_ZEROS] = "zeros",                   [INIT_ONES] = "ones",
    [INIT_RANDOM_NORMAL] = "random_normal",   [INIT_RANDOM_UNIFORM] = "random_uniform",
    [INIT_TRUNCATED_NORMAL] = "truncated_normal", [INIT_CONSTANT] = "constant",
    [INIT_COUNT] = NULL,
};

/* Parameters apart in the counter space: parameter p's draws start at p * 2^40 */
#define PARAM_COUNTER_STRIDE (UINT64_C(1) << 40)
/* Attempts per element for the truncated normal (each gives two candidates; one is accepted with
 * probability 0.954) before falling back to the bound. */
#define TRUNCATED_ATTEMPTS 32
/* The standard deviation of a unit normal truncated to [-2, 2] */
#define TRUNCATED_STDDEV 0.87962566103423978

struct initializer initializer_default(enum initializer_kind kind)
{
    switch (kind) {
    case INIT_RANDOM_NORMAL:
    case INIT_TRUNCATED_NORMAL: return (struct initializer){kind, 0.0, 0.05};
    case INIT_RANDOM_UNIFORM: return (struct initializer){kind, -0.05, 0.05};
    default: return (struct initializer){kind, 0.0, 0.0};
    }
}

void initializer_arg_names(enum initializer_kind kind, const char *names[2])
{
    names[0] = names[1] = NULL;
    if (kind == INIT_RANDOM_NORMAL || kind == INIT_TRUNCATED_NORMAL) {
        names[0] = "mean";
        names[1] = "stddev";
    } else if (kind == INIT_RANDOM_UNIFORM) {
        names[0] = "minval";
        names[1] = "maxval";
    } else if (kind == INIT_CONSTANT) {
        names[0] = "value";
    }
}

/* A unit normal for element i, truncated to [-2, 2] when `truncated`: Box-Muller on the words of
 * the element's own blocks, so no element's draw depends on another's. */
static double unit_normal(uint64_t seed, uint32_t layer, uint64_t base, int64_t i, int truncated)
{
    uint32_t w[4];
    for (int t = 0; t < TRUNCATED_ATTEMPTS; t++) {
        rng_block(w, seed, RNG_DOMAIN_INIT, layer, base + (uint64_t)i * TRUNCATED_ATTEMPTS + (uint64_t)t);
        double u1 = ((double)w[0] + 1.0) / 4294967296.0, u2 = (double)w[1] / 4294967296.0; /* u1 in (0, 1] */
        double r = sqrt(-2.0 * log(u1));
        double z0 = r * cos(2.0 * M_PI * u2), z1 = r * sin(2.0 * M_PI * u2);
        if (!truncated || fabs(z0) <= 2.0)
            return z0;
        if (fabs(z1) <= 2.0)
            return z1;
    }
    return 0.0;
}

static void fill_uniform(float *out, int64_t n, double lo, double hi, uint64_t seed, uint32_t layer, uint64_t base)
{
    /* the words of consecutive blocks; glorot_uniform's kernels are the numbers dptrain always drew */
    rng_uniform_fill(out, (uint64_t)n, seed, RNG_DOMAIN_INIT, layer, base / 4);
    for (int64_t i = 0; i < n; i++)
        out[i] = lo == -hi ? (float)((2.0 * out[i] - 1.0) * hi) : (float)(lo + (hi - lo) * (double)out[i]);
}

void initializer_fill(const struct initializer *init, float *out, int64_t n, int64_t fan_in, int64_t fan_out,
                      uint64_t seed, uint32_t layer, uint32_t param)
{
    uint64_t base = (uint64_t)param * PARAM_COUNTER_STRIDE;
    double scale = 1.0, fan = (double)fan_in;
    switch (init->kind) {
    case INIT_GLOROT_UNIFORM: case INIT_GLOROT_NORMAL: fan = (double)(fan_in + fan_out) / 2.0; break;
    case INIT_HE_UNIFORM: case INIT_HE_NORMAL: scale = 2.0; break;
    default: break;
    }
    fan = fan < 1.0 ? 1.0 : fan;
    switch (init->kind) {
    case INIT_GLOROT_UNIFORM:
    case INIT_HE_UNIFORM:
    case INIT_LECUN_UNIFORM: {
        double limit = sqrt(3.0 * scale / fan);
        fill_uniform(out, n, -limit, limit, seed, layer, base);
        break;
    }
    case INIT_GLOROT_NORMAL:
    case INIT_HE_NORMAL:
    case INIT_LECUN_NORMAL: {
        double stddev = sqrt(scale / fan) / TRUNCATED_STDDEV;
        for (int64_t i = 0; i < n; i++)
            out[i] = (float)(stddev * unit_normal(seed, layer, base, i, 1));
        break;
    }
    case INIT_RANDOM_NORMAL:
    case INIT_TRUNCATED_NORMAL:
        for (int64_t i = 0; i < n; i++)
            out[i] = (float)(init->a + init->b * unit_normal(seed, layer, base, i, init->kind == INIT_TRUNCATED_NORMAL));
        break;
    case INIT_RANDOM_UNIFORM: fill_uniform(out, n, init->a, init->b, seed, layer, base); break;
    case INIT_ZEROS:
    case INIT_ONES:
    case INIT_CONSTANT: {
        float v = init->kind == INIT_ZEROS ? 0.0f : init->kind == INIT_ONES ? 1.0f : (float)init->a;
        for (int64_t i = 0; i < n; i++)
            out[i] = v;
        break;
    }
    default: break;
    }
}

void initializer_format(const struct initializer *init, char *buf, size_t len)
{
    const char *args[2];
    initializer_arg_names(init->kind, args);
    if (!args[0])
        snprintf(buf, len, "%s", initializer_names[init->kind]);
    else if (!args[1])
        snprintf(buf, len, "%s(%s=%.7g)", initializer_names[init->kind], args[0], init->a);
    else
        snprintf(buf, len, "%s(%s=%.7g, %s=%.7g)", initializer_names[init->kind], args[0], init->a, args[1], init->b);
}
