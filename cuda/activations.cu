/* Activations and dropout (the same Philox draws as the CPU backend) on the device. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend_ops.h"
#include "cuda_check.h"
#include "base/rng.h"
#include "net/activation_math.h"

/* rng.h's dropout domain, as a plain constant for device code */
static const uint32_t DROPOUT_DOMAIN = RNG_DOMAIN_DROPOUT;

/* ---- activations ---- */

__global__ void activation_forward_kernel(float *y, const float *z, int64_t n, int act, float param)
{
    GRID_STRIDE(i, n) {
        y[i] = activation_value(act, param, z[i]);
    }
}

__global__ void softmax_rows_kernel(float *y, const float *z, int64_t rows, int64_t cols)
{
    GRID_STRIDE(r, rows) {
        const float *zr = z + r * cols;
        float *yr = y + r * cols;
        float mx = zr[0];
        for (int64_t j = 1; j < cols; j++)
            mx = fmaxf(mx, zr[j]);
        double sum = 0.0;
        for (int64_t j = 0; j < cols; j++) {
            yr[j] = expf(zr[j] - mx);
            sum += yr[j];
        }
        float inv = (float)(1.0 / sum);
        for (int64_t j = 0; j < cols; j++)
            yr[j] *= inv;
    }
}

/* z is read only by the activations whose slope needs it (z may be y itself for the others) */
__global__ void activation_backward_kernel(float *dz, const float *dy, const float *z, const float *y, int64_t n,
                                           int act, float param)
{
    GRID_STRIDE(i, n) {
        float g = dy[i], v = y[i];
        switch (act) {
        case ACTIVATION_RELU: g = v > 0.0f ? g : 0.0f; break;
        case ACTIVATION_SIGMOID: g = g * v * (1.0f - v); break;
        case ACTIVATION_TANH: g = g * (1.0f - v * v); break;
        case ACTIVATION_LINEAR: break;
        default: g = g * activation_slope(act, param, z[i], v); break;
        }
        dz[i] = g;
    }
}

__global__ void softmax_backward_kernel(float *dz, const float *dy, const float *y, int64_t rows, int64_t cols)
{
    GRID_STRIDE(r, rows) {
        double dot = 0.0;
        for (int64_t j = 0; j < cols; j++)
            dot += (double)dy[r * cols + j] * y[r * cols + j];
        for (int64_t j = 0; j < cols; j++)
            dz[r * cols + j] = y[r * cols + j] * (dy[r * cols + j] - (float)dot);
    }
}

void cuda_activation_forward(float *y, const float *z, int64_t rows, int64_t cols, enum activation act, float param)
{
    if (act == ACTIVATION_SOFTMAX)
        softmax_rows_kernel<<<blocks_for(rows), THREADS>>>(y, z, rows, cols);
    else
        activation_forward_kernel<<<blocks_for(rows * cols), THREADS>>>(y, z, rows * cols, (int)act, param);
    LAUNCH_CHECK();
}

void cuda_activation_backward(float *dz, const float *dy, const float *z, const float *y, int64_t rows, int64_t cols,
                              enum activation act, float param)
{
    if (act == ACTIVATION_SOFTMAX)
        softmax_backward_kernel<<<blocks_for(rows), THREADS>>>(dz, dy, y, rows, cols);
    else
        activation_backward_kernel<<<blocks_for(rows * cols), THREADS>>>(dz, dy, z, y, rows * cols, (int)act, param);
    LAUNCH_CHECK();
}

/* ---- dropout: the same Philox draws as the CPU backend ---- */

__device__ void philox_device(uint32_t out[4], uint64_t seed, uint32_t domain, uint32_t c1, uint64_t c2)
{
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    uint32_t x0 = (uint32_t)c2, x1 = (uint32_t)(c2 >> 32), x2 = c1, x3 = domain;
    for (int round = 0; round < 10; round++) {
        uint32_t hi0 = __umulhi(0xD2511F53u, x0), lo0 = 0xD2511F53u * x0;
        uint32_t hi1 = __umulhi(0xCD9E8D57u, x2), lo1 = 0xCD9E8D57u * x2;
        uint32_t n0 = hi1 ^ x1 ^ k0, n2 = hi0 ^ x3 ^ k1;
        x0 = n0; x1 = lo1; x2 = n2; x3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = x0; out[1] = x1; out[2] = x2; out[3] = x3;
}

__global__ void dropout_forward_kernel(float *y, uint8_t *mask, const float *x, const int64_t *ids, int64_t rows,
                                       int64_t cols, float rate, uint64_t seed, uint32_t domain, uint32_t step,
                                       const uint32_t *step_on_device)
{
    if (step_on_device)
        step = *step_on_device;
    const int64_t blocks = (cols + 3) / 4;
    const float scale = 1.0f / (1.0f - rate);
    GRID_STRIDE(t, rows * blocks) {
        int64_t r = t / blocks, blk = t % blocks;
        uint32_t w[4];
        philox_device(w, seed, domain, step, (uint64_t)ids[r] * blocks + blk);
        for (int64_t j = blk * 4; j < blk * 4 + 4 && j < cols; j++) {
            int keep = (float)(w[j & 3] >> 8) * (1.0f / 16777216.0f) >= rate;
            mask[r * cols + j] = (uint8_t)keep;
            y[r * cols + j] = keep ? x[r * cols + j] * scale : 0.0f;
        }
    }
}

__global__ void dropout_backward_kernel(float *dx, const float *dy, const uint8_t *mask, int64_t n, float scale)
{
    GRID_STRIDE(i, n) dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

void cuda_dropout_forward(float *y, uint8_t *mask, const float *x, const int64_t *ids, int64_t rows,
                          int64_t cols, float rate, struct dropout_key key)
{
    dropout_forward_kernel<<<blocks_for(rows * ((cols + 3) / 4)), THREADS>>>(
        y, mask, x, ids, rows, cols, rate, key.seed, DROPOUT_DOMAIN | (key.layer << 8), key.step, device_step());
    LAUNCH_CHECK();
}

void cuda_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t rows, int64_t cols, float rate)
{
    dropout_backward_kernel<<<blocks_for(rows * cols), THREADS>>>(dx, dy, mask, rows * cols, 1.0f / (1.0f - rate));
    LAUNCH_CHECK();
}
