/* The element-wise activations as scalar functions of the pre-activation z, shared by the CPU
 * backend and the CUDA kernels (compiled there as host and device code), so both compute Keras 3's
 * formulas the same way. Softmax works on rows and lives in the backends. */
#ifndef DPTRAIN_ACTIVATION_MATH_H
#define DPTRAIN_ACTIVATION_MATH_H

#include <math.h>

#include "net/activation.h"

#ifdef __CUDACC__
#define ACTIVATION_FN static __host__ __device__ inline
#else
#define ACTIVATION_FN static inline
#endif

/* keras.activations.selu */
#define SELU_ALPHA 1.67326324235437728481f
#define SELU_SCALE 1.05070098735548049342f
/* sqrt(2 / pi) and 1 / sqrt(2), for gelu */
#define GELU_TANH_SCALE 0.79788456080286535588f
#define GELU_RSQRT2 0.70710678118654752440f

ACTIVATION_FN float sigmoidf_(float z) { return 1.0f / (1.0f + expf(-z)); }

/* y = act(z) */
ACTIVATION_FN float activation_value(int act, float param, float z)
{
    switch (act) {
    case ACTIVATION_RELU: return z > 0.0f ? z : 0.0f;
    case ACTIVATION_SIGMOID: return sigmoidf_(z);
    case ACTIVATION_TANH: return tanhf(z);
    case ACTIVATION_ELU: return z > 0.0f ? z : param * expm1f(z);
    case ACTIVATION_SELU: return SELU_SCALE * (z > 0.0f ? z : SELU_ALPHA * expm1f(z));
    case ACTIVATION_LEAKY_RELU: return z > 0.0f ? z : param * z;
    case ACTIVATION_GELU:
        if (param != 0.0f)
            return 0.5f * z * (1.0f + tanhf(GELU_TANH_SCALE * (z + 0.044715f * z * z * z)));
        return 0.5f * z * (1.0f + erff(z * GELU_RSQRT2));
    case ACTIVATION_SILU:
    case ACTIVATION_SWISH: return z * sigmoidf_(z);
    /* log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|) */
    case ACTIVATION_SOFTPLUS: return fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z)));
    case ACTIVATION_SOFTSIGN: return z / (1.0f + fabsf(z));
    /* Keras 3: relu6(z + 3) / 6 */
    case ACTIVATION_HARD_SIGMOID: return fminf(fmaxf(z + 3.0f, 0.0f), 6.0f) / 6.0f;
    case ACTIVATION_EXPONENTIAL: return expf(z);
    default: return z;
    }
}

/* dy/dz at z, where y = act(z) (given, so that no function is computed twice) */
ACTIVATION_FN float activation_slope(int act, float param, float z, float y)
{
    switch (act) {
    case ACTIVATION_RELU: return z > 0.0f ? 1.0f : 0.0f;
    case ACTIVATION_SIGMOID: return y * (1.0f - y);
    case ACTIVATION_TANH: return 1.0f - y * y;
    case ACTIVATION_ELU: return z > 0.0f ? 1.0f : y + param;
    case ACTIVATION_SELU: return z > 0.0f ? SELU_SCALE : y + SELU_SCALE * SELU_ALPHA;
    case ACTIVATION_LEAKY_RELU: return z > 0.0f ? 1.0f : param;
    case ACTIVATION_GELU:
        if (param != 0.0f) {
            float u = GELU_TANH_SCALE * (z + 0.044715f * z * z * z);
            float t = tanhf(u);
            return 0.5f * (1.0f + t) + 0.5f * z * (1.0f - t * t) * GELU_TANH_SCALE * (1.0f + 3.0f * 0.044715f * z * z);
        }
        /* Phi(z) + z phi(z) */
        return 0.5f * (1.0f + erff(z * GELU_RSQRT2)) + z * 0.39894228040143267794f * expf(-0.5f * z * z);
    case ACTIVATION_SILU:
    case ACTIVATION_SWISH: {
        float s = sigmoidf_(z);
        return s * (1.0f + z * (1.0f - s));
    }
    case ACTIVATION_SOFTPLUS: return sigmoidf_(z);
    case ACTIVATION_SOFTSIGN: {
        float d = 1.0f + fabsf(z);
        return 1.0f / (d * d);
    }
    case ACTIVATION_HARD_SIGMOID: return z > -3.0f && z < 3.0f ? 1.0f / 6.0f : 0.0f;
    case ACTIVATION_EXPONENTIAL: return y;
    default: return 1.0f;
    }
}

#endif
