#include "net/activation.h"

const char *const activation_names[ACTIVATION_COUNT + 1] = {
    [ACTIVATION_LINEAR] = "linear", [ACTIVATION_RELU] = "relu",       [ACTIVATION_SIGMOID] = "sigmoid",
    [ACTIVATION_TANH] = "tanh",     [ACTIVATION_SOFTMAX] = "softmax", [ACTIVATION_COUNT] = 0,
};
