/* The optimizers on the device: one fused pass over the flat arena. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend_ops.h"
#include "block_sum.h"
#include "cuda_check.h"

/* ---- optimizer: one fused pass over the flat arena ---- */

/* Keras 3's order, as the CPU backend: the gradient clipped, the weight decayed, then the update */
__global__ void optimizer_kernel(float *w, const float *g, float *s0, float *s1, float *s2, int64_t n,
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
            if (p.amsgrad) {
                v = v > s2[i] ? v : s2[i];
                s2[i] = v;
            }
            w[i] = wi - p.lr * m / (sqrtf(v) + p.epsilon);
        } else if (p.kind == OPTIMIZER_NADAM) {
            float m = p.beta1 * s0[i] + (1.0f - p.beta1) * gi;
            float v = p.beta2 * s1[i] + (1.0f - p.beta2) * gi * gi;
            s0[i] = m;
            s1[i] = v;
            w[i] = wi - p.lr * (p.nadam_m * m + p.nadam_g * gi) / (sqrtf(v * p.nadam_v) + p.epsilon);
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

/* One block: each thread adds the penalty's gradient to its weights and sums its share of the
 * penalty, then a fixed tree adds the shares. */
enum { REG_THREADS = 256 };

__global__ void regularize_kernel(float *g, const float *w, int64_t n, float l1, float l2, double *acc, double rows)
{
    __shared__ double part[REG_THREADS];
    double penalty = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        float v = w[i];
        g[i] += l1 * (float)((v > 0.0f) - (v < 0.0f)) + 2.0f * l2 * v;
        penalty += (double)l1 * fabs((double)v) + (double)l2 * (double)v * (double)v;
    }
    penalty = block_sum(penalty, part);
    if (threadIdx.x == 0)
        acc[LOSS_ACC_LOSS] += rows * penalty;
}

void cuda_regularize(float *g, const float *w, size_t n, float l1, float l2, double *acc, double rows)
{
    regularize_kernel<<<1, REG_THREADS>>>(g, w, (int64_t)n, l1, l2, acc, rows);
    LAUNCH_CHECK();
}

/* One block, a fixed tree */
__global__ void sum_squares_kernel(double *sumsq, const float *g, int64_t n, int accumulate)
{
    __shared__ double part[REG_THREADS];
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        s += (double)g[i] * (double)g[i];
    s = block_sum(s, part);
    if (threadIdx.x == 0)
        sumsq[0] = (accumulate ? sumsq[0] : 0.0) + s;
}

void cuda_sum_squares(double *sumsq, const float *g, size_t n, int accumulate)
{
    sum_squares_kernel<<<1, REG_THREADS>>>(sumsq, g, (int64_t)n, accumulate);
    LAUNCH_CHECK();
}

__global__ void clip_by_norm_kernel(float *g, int64_t n, const double *sumsq, float clip)
{
    double norm = sqrt(sumsq[0]);
    float scale = (float)((double)clip / (norm > clip ? norm : (double)clip));
    GRID_STRIDE(i, n) {
        g[i] *= scale;
    }
}

void cuda_clip_by_norm(float *g, size_t n, const double *sumsq, float clip)
{
    clip_by_norm_kernel<<<blocks_for((int64_t)n), THREADS>>>(g, (int64_t)n, sumsq, clip);
    LAUNCH_CHECK();
}

void cuda_optimizer_step(float *w, const float *g, float *s0, float *s1, float *s2, size_t n,
                         struct optimizer_step_params p)
{
    optimizer_kernel<<<blocks_for((int64_t)n), THREADS>>>(w, g, s0, s1, s2, (int64_t)n, p, device_params());
    LAUNCH_CHECK();
}
