/* Losses and metrics on the device: the gradient with respect to the logits, and the sums. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend_ops.h"
#include "cuda_check.h"

/* ---- loss and metrics: one thread per row, sums by double atomics ---- */

__device__ float target_at(const int32_t *labels, const float *values, int64_t r, int64_t j, int64_t k)
{
    if (labels)
        return k == 1 ? (float)labels[r] : (labels[r] == j ? 1.0f : 0.0f);
    return values[r * k + j];
}

__device__ int64_t argmax_row(const float *v, int64_t k)
{
    int64_t b = 0;
    for (int64_t j = 1; j < k; j++)
        if (v[j] > v[b])
            b = j;
    return b;
}

/* One block: each thread sums its rows (r = thread, thread + LOSS_THREADS, ...), then a fixed tree
 * adds the threads' sums, so the loss and metric sums come out the same in every run (atomics
 * would add in whatever order the rows finish). A batch is at most a few thousand rows. */
enum { LOSS_THREADS = 64 };

__global__ void loss_kernel(double *acc, float *dz, const float *z, const float *y, const int32_t *labels,
                            const float *values, int64_t rows, int64_t k, int loss, int metric, float scale)
{
    __shared__ double part[2][LOSS_THREADS];
    double loss_sum = 0.0, metric_sum = 0.0;
    for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
        const float *zr = z + r * k, *yr = y + r * k;
        double row = 0.0;
        if (loss == LOSS_MSE) {
            for (int64_t j = 0; j < k; j++) {
                double d = (double)yr[j] - target_at(labels, values, r, j, k);
                row += d * d;
                if (dz)
                    dz[r * k + j] = (float)(2.0 * d / (double)k) * scale;
            }
            row /= (double)k;
        } else if (loss == LOSS_BINARY_CROSSENTROPY) {
            for (int64_t j = 0; j < k; j++) {
                double zz = zr[j], tt = target_at(labels, values, r, j, k);
                row += (zz > 0 ? zz : 0) - zz * tt + log1p(exp(-fabs(zz)));
                if (dz)
                    dz[r * k + j] = (float)(((double)yr[j] - tt) / (double)k) * scale;
            }
            row /= (double)k;
        } else {
            double mx = zr[0];
            for (int64_t j = 1; j < k; j++)
                mx = fmax(mx, (double)zr[j]);
            double se = 0.0;
            for (int64_t j = 0; j < k; j++)
                se += exp((double)zr[j] - mx);
            double lse = mx + log(se);
            for (int64_t j = 0; j < k; j++) {
                double tt = target_at(labels, values, r, j, k);
                if (tt != 0.0)
                    row += tt * (lse - zr[j]);
                if (dz)
                    dz[r * k + j] = (float)((double)yr[j] - tt) * scale;
            }
        }
        double m = 0.0;
        if (metric == METRIC_ACCURACY) {
            if (k == 1) {
                float pred = loss == LOSS_BINARY_CROSSENTROPY ? (yr[0] > 0.5f) : yr[0];
                m = pred == target_at(labels, values, r, 0, 1);
            } else if (labels) {
                m = argmax_row(yr, k) == labels[r];
            } else {
                m = argmax_row(yr, k) == argmax_row(values + r * k, k);
            }
        } else if (metric == METRIC_MAE) {
            for (int64_t j = 0; j < k; j++)
                m += fabs((double)yr[j] - target_at(labels, values, r, j, k));
            m /= (double)k;
        }
        loss_sum += row;
        metric_sum += m;
    }
    part[0][threadIdx.x] = loss_sum;
    part[1][threadIdx.x] = metric_sum;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            part[0][threadIdx.x] += part[0][threadIdx.x + half];
            part[1][threadIdx.x] += part[1][threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        acc[LOSS_ACC_LOSS] += part[0][0];
        acc[LOSS_ACC_METRIC] += part[1][0];
        acc[LOSS_ACC_ROWS] += (double)rows;
    }
}

void cuda_loss_forward_backward(double *acc, float *dz, const float *z, const float *y, struct loss_targets t,
                                int64_t rows, int64_t k, struct loss_params p, float grad_scale)
{
    loss_kernel<<<1, LOSS_THREADS>>>(acc, dz, z, y, t.labels, t.values, rows, k, (int)p.loss, (int)p.metric,
                                     grad_scale);
    LAUNCH_CHECK();
}
