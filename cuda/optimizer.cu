/* The optimizers on the device: one fused pass over the flat arena. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend_ops.h"
#include "cuda_check.h"

/* ---- optimizer: one fused pass over the flat arena ---- */

/* Keras 3's order, as the CPU backend: the gradient clipped, the weight decayed, then the update */
__global__ void optimizer_kernel(float *w, const float *g, float *s0, float *s1, int64_t n,
                                 struct optimizer_step_params p, const struct optimizer_step_params *p_on_device)
{
    if (p_on_device)
        p = *p_on_device;
    GRID_STRIDE(i, n) {
        float gi = p.clipvalue > 0.0f ? fminf(fmaxf(g[i], -p.clipvalue), p.clipvalue) : g[i];
        float wi = w[i] - w[i] * p.decay;
        if (p.kind == OPTIMIZER_SGD) {
            if (p.momentum > 0.0f) {
                float v = p.momentum * s0[i] - p.lr * gi;
                s0[i] = v;
                w[i] = wi + (p.nesterov ? p.momentum * v - p.lr * gi : v);
            } else {
                w[i] = wi - p.lr * gi;
            }
        } else if (p.kind == OPTIMIZER_ADAM || p.kind == OPTIMIZER_ADAMW) {
            float m = p.beta1 * s0[i] + (1.0f - p.beta1) * gi;
            float v = p.beta2 * s1[i] + (1.0f - p.beta2) * gi * gi;
            s0[i] = m;
            s1[i] = v;
            w[i] = wi - p.lr * m / (sqrtf(v) + p.epsilon);
        } else if (p.kind == OPTIMIZER_ADAGRAD) {
            float a = s0[i] + gi * gi;
            s0[i] = a;
            w[i] = wi - p.lr * gi / sqrtf(a + p.epsilon);
        } else {
            float v = p.rho * s0[i] + (1.0f - p.rho) * gi * gi;
            s0[i] = v;
            w[i] = wi - p.lr * gi / sqrtf(v + p.epsilon);
        }
    }
}

void cuda_optimizer_step(float *w, const float *g, float *s0, float *s1, size_t n, struct optimizer_step_params p)
{
    optimizer_kernel<<<blocks_for((int64_t)n), THREADS>>>(w, g, s0, s1, (int64_t)n, p, device_params());
    LAUNCH_CHECK();
}
