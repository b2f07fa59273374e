/* BatchNormalization on the device, channels last: per-channel sums in double (one block per
 * channel, a fixed tree over its threads, so the sums do not depend on timing), then element-wise
 * normalization and its gradient. The sums go through the caller (an all-reduce over ranks for
 * synchronized statistics) between the two halves of each pass. */
#include <cuda_runtime.h>
#include <math.h>

#include "backend_ops.h"
#include "block_sum.h"
#include "cuda_check.h"

enum { BN_THREADS = 256 };

/* Block j: sums[j] += over rows of a[i, j] (and of a * b, or a^2 when b is NULL) into sums[c + j].
 * With x and stat given, b is xhat = (x - mean) * inv_std. */
__global__ void channel_sums_kernel(double *sums, const float *a, const float *x, const float *stat, int64_t n,
                                    int64_t c)
{
    __shared__ double part[BN_THREADS];
    const int64_t j = blockIdx.x;
    double s0 = 0.0, s1 = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        double v = a[i * c + j];
        double w = x ? (double)((x[i * c + j] - stat[j]) * stat[c + j]) : v;
        s0 += v;
        s1 += v * w;
    }
    s0 = block_sum(s0, part);
    s1 = block_sum(s1, part);
    if (threadIdx.x == 0) {
        sums[j] = s0;
        sums[c + j] = s1;
    }
}

void cuda_batchnorm_sums(double *sums, const float *x, int64_t n, int64_t c)
{
    channel_sums_kernel<<<(unsigned)c, BN_THREADS>>>(sums, x, (const float *)0, (const float *)0, n, c);
    LAUNCH_CHECK();
}

/* One thread per channel: the batch's statistics and the moving ones */
__global__ void batch_statistics_kernel(float *stat, float *moving_mean, float *moving_var, const double *sums,
                                        double count, float momentum, float epsilon, int64_t c)
{
    GRID_STRIDE(j, c) {
        double mean = sums[j] / count, var = sums[c + j] / count - mean * mean;
        var = var > 0.0 ? var : 0.0;
        stat[j] = (float)mean;
        stat[c + j] = (float)(1.0 / sqrt(var + (double)epsilon));
        moving_mean[j] = moving_mean[j] * momentum + (float)mean * (1.0f - momentum);
        moving_var[j] = moving_var[j] * momentum + (float)var * (1.0f - momentum);
    }
}

__global__ void normalize_kernel(float *y, const float *x, const float *stat, const float *gamma, const float *beta,
                                 int64_t n, int64_t c)
{
    GRID_STRIDE(e, n * c) {
        int64_t j = e % c;
        float v = (x[e] - stat[j]) * stat[c + j];
        y[e] = (gamma ? gamma[j] : 1.0f) * v + (beta ? beta[j] : 0.0f);
    }
}

void cuda_batchnorm_forward_train(float *y, float *stat, float *moving_mean, float *moving_var, const float *x,
                                  const double *sums, double count, const float *gamma, const float *beta,
                                  float momentum, float epsilon, int64_t n, int64_t c)
{
    batch_statistics_kernel<<<blocks_for(c), THREADS>>>(stat, moving_mean, moving_var, sums, count, momentum, epsilon, c);
    LAUNCH_CHECK();
    normalize_kernel<<<blocks_for(n * c), THREADS>>>(y, x, stat, gamma, beta, n, c);
    LAUNCH_CHECK();
}

__global__ void normalize_moving_kernel(float *y, const float *x, const float *moving_mean, const float *moving_var,
                                        const float *gamma, const float *beta, float epsilon, int64_t n, int64_t c)
{
    GRID_STRIDE(e, n * c) {
        int64_t j = e % c;
        float inv = 1.0f / sqrtf(moving_var[j] + epsilon);
        y[e] = (gamma ? gamma[j] : 1.0f) * (x[e] - moving_mean[j]) * inv + (beta ? beta[j] : 0.0f);
    }
}

void cuda_batchnorm_forward_infer(float *y, const float *x, const float *moving_mean, const float *moving_var,
                                  const float *gamma, const float *beta, float epsilon, int64_t n, int64_t c)
{
    normalize_moving_kernel<<<blocks_for(n * c), THREADS>>>(y, x, moving_mean, moving_var, gamma, beta, epsilon, n, c);
    LAUNCH_CHECK();
}

void cuda_batchnorm_backward_sums(double *sums, const float *dy, const float *x, const float *stat, int64_t n,
                                  int64_t c)
{
    channel_sums_kernel<<<(unsigned)c, BN_THREADS>>>(sums, dy, x, stat, n, c);
    LAUNCH_CHECK();
}

__global__ void param_grads_kernel(float *dgamma, float *dbeta, const double *sums, int64_t c)
{
    GRID_STRIDE(j, c) {
        if (dbeta)
            dbeta[j] = (float)sums[j];
        if (dgamma)
            dgamma[j] = (float)sums[c + j];
    }
}

void cuda_batchnorm_param_grads(float *dgamma, float *dbeta, const double *sums, int64_t c)
{
    param_grads_kernel<<<blocks_for(c), THREADS>>>(dgamma, dbeta, sums, c);
    LAUNCH_CHECK();
}

__global__ void batchnorm_dx_kernel(float *dx, const float *dy, const float *x, const float *stat, const float *gamma,
                                    const double *sums, double count, int64_t n, int64_t c)
{
    GRID_STRIDE(e, n * c) {
        int64_t j = e % c;
        float xhat = (x[e] - stat[j]) * stat[c + j];
        float mean_dy = (float)(sums[j] / count), mean_dy_xhat = (float)(sums[c + j] / count);
        dx[e] = (gamma ? gamma[j] : 1.0f) * stat[c + j] * (dy[e] - mean_dy - xhat * mean_dy_xhat);
    }
}

void cuda_batchnorm_backward_dx(float *dx, const float *dy, const float *x, const float *stat, const float *gamma,
                                const double *sums, double count, int64_t n, int64_t c)
{
    batchnorm_dx_kernel<<<blocks_for(n * c), THREADS>>>(dx, dy, x, stat, gamma, sums, count, n, c);
    LAUNCH_CHECK();
}
