/* Losses and metrics on the device: the gradient with respect to the logits, and the sums. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend_ops.h"
#include "cuda_check.h"
#include "net/metric_math.h"

/* ---- loss and metrics: one thread per row, sums by double atomics ---- */

__device__ float target_at(const int32_t *labels, const float *values, int64_t r, int64_t j, int64_t k)
{
    return metric_target(labels, values, r, j, k);
}

/* One block: each thread sums its rows (r = thread, thread + LOSS_THREADS, ...), then a fixed tree
 * adds the threads' sums, so the loss and metric sums come out the same in every run (atomics
 * would add in whatever order the rows finish). A batch is at most a few thousand rows. */
enum { LOSS_THREADS = 64 };
static_assert((LOSS_THREADS & (LOSS_THREADS - 1)) == 0, "the tree below halves LOSS_THREADS down to one");

/* launched with exactly LOSS_THREADS threads: part[][] is sized by it */
__global__ void __launch_bounds__(LOSS_THREADS) loss_kernel(double *acc, float *dz, const float *z, const float *y, const int32_t *labels,
                            const float *values, int64_t rows, int64_t k, int loss, int metric, int top_k,
                            float scale)
{
    __shared__ double part[3][LOSS_THREADS];
    double loss_sum = 0.0, metric_sum = 0.0, metric_den = 0.0;
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
        metric_row(metric, loss, top_k, yr, labels, values, r, k, &metric_sum, &metric_den);
        loss_sum += row;
    }
    part[0][threadIdx.x] = loss_sum;
    part[1][threadIdx.x] = metric_sum;
    part[2][threadIdx.x] = metric_den;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            part[0][threadIdx.x] += part[0][threadIdx.x + half];
            part[1][threadIdx.x] += part[1][threadIdx.x + half];
            part[2][threadIdx.x] += part[2][threadIdx.x + half];
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        acc[LOSS_ACC_LOSS] += part[0][0];
        acc[LOSS_ACC_METRIC] += part[1][0];
        acc[LOSS_ACC_METRIC_DEN] += part[2][0];
        acc[LOSS_ACC_ROWS] += (double)rows;
    }
}

void cuda_loss_forward_backward(double *acc, float *dz, const float *z, const float *y, struct loss_targets t,
                                int64_t rows, int64_t k, struct loss_params p, float grad_scale)
{
    loss_kernel<<<1, LOSS_THREADS>>>(acc, dz, z, y, t.labels, t.values, rows, k, (int)p.loss, (int)p.metric,
                                     p.metric_k, grad_scale);
    LAUNCH_CHECK();
}
