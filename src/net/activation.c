#include "net/activation.h"

#include <stddef.h>

const char *const activation_names[ACTIVATION_COUNT + 1] = {
    [ACTIVATION_LINEAR] = "linear",         [ACTIVATION_RELU] = "relu",
    [ACTIVATION_SIGMOID] = "sigmoid",       [ACTIVATION_TANH] = "tanh",
    [ACTIVATION_SOFTMAX] = "softmax",       [ACTIVATION_ELU] = "elu",
    [ACTIVATION_SELU] = "selu",             [ACTIVATION_LEAKY_RELU] = "leaky_relu",
    [ACTIVATION_GELU] = "gelu",             [ACTIVATION_SILU] = "silu",
    [ACTIVATION_SWISH] = "swish",           [ACTIVATION_SOFTPLUS] = "softplus",
    [ACTIVATION_SOFTSIGN] = "softsign",     [ACTIVATION_HARD_SIGMOID] = "hard_sigmoid",
    [ACTIVATION_EXPONENTIAL] = "exponential", [ACTIVATION_COUNT] = NULL,
};

float activation_default_param(enum activation act)
{
    switch (act) {
    case ACTIVATION_LEAKY_RELU: return 0.2f;
    case ACTIVATION_ELU: return 1.0f;
    default: return 0.0f;
    }
}

const char *activation_param_name(enum activation act)
{
    switch (act) {
    case ACTIVATION_LEAKY_RELU: return "negative_slope";
    case ACTIVATION_ELU: return "alpha";
    case ACTIVATION_GELU: return "approximate";
    default: return NULL;
    }
}
