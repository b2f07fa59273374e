/* Activation functions, applied element-wise (softmax: per row). */
#ifndef DPTRAIN_ACTIVATION_H
#define DPTRAIN_ACTIVATION_H

enum activation {
    ACTIVATION_LINEAR,
    ACTIVATION_RELU,
    ACTIVATION_SIGMOID,
    ACTIVATION_TANH,
    ACTIVATION_SOFTMAX,
    ACTIVATION_COUNT
};

extern const char *const activation_names[ACTIVATION_COUNT + 1]; /* NULL-terminated */

#endif
