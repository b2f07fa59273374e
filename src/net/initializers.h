/* Weight initializers with Keras' names and formulas. Every draw is counter-based: element i of
 * parameter p of layer L comes from (seed, RNG_DOMAIN_INIT, L, p * 2^40 + ...), so 1 and P ranks,
 * and a job that changes only other layers, start from the same weights.
 * The variance-scaling family (glorot, he, lecun) uses fan_in / fan_out as Keras does: the kernel's
 * second-to-last and last dimensions times its receptive field (kh * kw for conv2d). Its normal
 * variants draw a normal truncated at two standard deviations, scaled so the variance is right
 * (Keras' 0.87962566103423978 correction). */
#ifndef DPTRAIN_INITIALIZERS_H
#define DPTRAIN_INITIALIZERS_H

#include <stddef.h>
#include <stdint.h>

enum initializer_kind {
    INIT_DEFAULT,          /* the parameter's Keras default: glorot_uniform kernels, zero biases */
    INIT_GLOROT_UNIFORM,
    INIT_GLOROT_NORMAL,
    INIT_HE_UNIFORM,
    INIT_HE_NORMAL,
    INIT_LECUN_UNIFORM,
    INIT_LECUN_NORMAL,
    INIT_ZEROS,
    INIT_ONES,
    INIT_RANDOM_NORMAL,    /* mean, stddev (0, 0.05) */
    INIT_RANDOM_UNIFORM,   /* minval, maxval (-0.05, 0.05) */
    INIT_TRUNCATED_NORMAL, /* mean, stddev (0, 0.05), cut at two standard deviations */
    INIT_CONSTANT,         /* value (0) */
    INIT_COUNT
};

/* NULL-terminated; the names a job file may give start at initializer_names[1] */
extern const char *const initializer_names[INIT_COUNT + 1];

struct initializer {
    enum initializer_kind kind;
    double a, b; /* mean and stddev, minval and maxval, or value first */
};

/* Keras' default arguments for kind */
struct initializer initializer_default(enum initializer_kind kind);
/* The names of kind's two arguments ("mean", "stddev"), NULL where it takes none */
void initializer_arg_names(enum initializer_kind kind, const char *names[2]);

/* Fills out[0..n) for parameter `param` of layer `layer` (INIT_DEFAULT must be resolved first) */
void initializer_fill(const struct initializer *init, float *out, int64_t n, int64_t fan_in, int64_t fan_out,
                      uint64_t seed, uint32_t layer, uint32_t param);

/* "he_normal", "random_normal(mean=0, stddev=0.01)" */
void initializer_format(const struct initializer *init, char *buf, size_t len);

#endif
