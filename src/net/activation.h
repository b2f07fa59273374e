/* Activation functions, applied element-wise (softmax: per row), with Keras 3's names and formulas.
 * Three take a parameter (struct layer_spec keeps it beside the activation): leaky_relu its
 * negative_slope, elu its alpha, gelu its approximate flag (1: the tanh approximation). */
#ifndef DPTRAIN_ACTIVATION_H
#define DPTRAIN_ACTIVATION_H

enum activation {
    ACTIVATION_LINEAR,
    ACTIVATION_RELU,
    ACTIVATION_SIGMOID,
    ACTIVATION_TANH,
    ACTIVATION_SOFTMAX,
    ACTIVATION_ELU,
    ACTIVATION_SELU,
    ACTIVATION_LEAKY_RELU,
    ACTIVATION_GELU,
    ACTIVATION_SILU,      /* x * sigmoid(x) */
    ACTIVATION_SWISH,     /* Keras' other name for silu */
    ACTIVATION_SOFTPLUS,
    ACTIVATION_SOFTSIGN,
    ACTIVATION_HARD_SIGMOID,
    ACTIVATION_EXPONENTIAL,
    ACTIVATION_COUNT
};

extern const char *const activation_names[ACTIVATION_COUNT + 1]; /* NULL-terminated */

/* The parameter an activation takes when the job file does not say (Keras' defaults for the
 * activation functions: leaky_relu 0.2, elu 1, gelu exact); 0 for the others. */
float activation_default_param(enum activation act);
/* The name of the activation's parameter ("negative_slope", "alpha", "approximate"), or NULL. */
const char *activation_param_name(enum activation act);

#endif
