/* Checks for every CUDA and cuBLAS call (failures name the call, file and line and end the whole
 * job) and the launch helpers the kernels share. */
#ifndef DPTRAIN_CUDA_CHECK_H
#define DPTRAIN_CUDA_CHECK_H

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

#define CUDA_CHECK(expr)                                                                                 \
    do {                                                                                                 \
        cudaError_t e_ = (expr);                                                                         \
        if (e_ != cudaSuccess)                                                                           \
            dp_die(DP_EXIT_INTERNAL, "CUDA: %s failed: %s (%s:%d)", #expr, cudaGetErrorString(e_), __FILE__, \
                   __LINE__);                                                                            \
    } while (0)

#define CUBLAS_CHECK(expr)                                                                               \
    do {                                                                                                 \
        cublasStatus_t s_ = (expr);                                                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                 \
            dp_die(DP_EXIT_INTERNAL, "cuBLAS: %s failed: %s (%s:%d)", #expr, cublasGetStatusString(s_),     \
                   __FILE__, __LINE__);                                                                  \
    } while (0)

/* After every launch: launch errors now, and with DPTRAIN_CUDA_SYNC=1 also faults at the right line. */
static int debug_sync = -1; /* per translation unit: read once from the environment */
#define LAUNCH_CHECK()                                                                                   \
    do {                                                                                                 \
        CUDA_CHECK(cudaGetLastError());                                                                  \
        if (debug_sync < 0)                                                                              \
            debug_sync = dp_env_flag("DPTRAIN_CUDA_SYNC", 0);                                            \
        if (debug_sync)                                                                                  \
            CUDA_CHECK(cudaDeviceSynchronize());                                                         \
    } while (0)

static const int THREADS = 256;

static inline unsigned blocks_for(int64_t n)
{
    int64_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b > 65535 * 32 ? 65535 * 32 : (b < 1 ? 1 : b));
}

#define GRID_STRIDE(i, n) for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)gridDim.x * blockDim.x)
/* The same in 32 bits, for n below 2^31 (the index kernels of convolution and pooling) */
#define GRID_STRIDE32(i, n) \
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)

#endif
