/* CUDA backend. Every CUDA and cuBLAS call is checked; failures name the call, file and line and
 * end the whole job. Row-major matrices are handed to column-major cuBLAS as their transposes:
 * a row-major (r, c) matrix is a column-major (c, r) one with leading dimension c.
 * STATUS: compiled in CI; not yet run on a GPU (no device was lent to the session that wrote it). */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "backend_ops.h"
#include "cuda_check.h"
#include "fast_divide.h"
#include "gemm.h"
#include "nvml_probe.h"
#include "base/errors.h"
#include "base/rng.h"

#ifndef DPTRAIN_CUDA_ARCHS /* set by cuda/CMakeLists.txt from CMAKE_CUDA_ARCHITECTURES */
#define DPTRAIN_CUDA_ARCHS "(unknown)"
#endif

/* ---- dense ---- */

void cuda_dense_forward(float *z, const float *x, const float *w, const float *b, int64_t rows, int64_t in,
                        int64_t out, int relu)
{
    gemm_dense_forward(z, NULL, x, w, b, rows, in, out, relu);
}

int cuda_dense_forward_relu_mask(float *z, void *mask, const float *x, const float *w, const float *b,
                                 int64_t rows, int64_t in, int64_t out)
{
    return gemm_dense_forward(z, mask, x, w, b, rows, in, out, 1);
}

void cuda_dense_backward(float *dx, float *dw, float *db, const float *dz, const float *x, const float *w,
                         int64_t rows, int64_t in, int64_t out, int accumulate)
{
    gemm_dense_weight_grad(dw, db, dz, x, rows, in, out, accumulate);
    if (dx) /* dX^T (in x rows) = W (in x out) dZ^T (out x rows) */
        gemm(CUBLAS_OP_T, CUBLAS_OP_N, in, rows, out, 1.0f, w, out, dz, out, 0.0f, dx, in);
}

/* DPTRAIN_LT_DRELU=0 keeps the relu gradient in its own pass (to measure what the fusion gains):
 * without masks no layer fuses it. */
size_t cuda_relu_mask_bytes(int64_t rows, int64_t out)
{
    return dp_env_flag("DPTRAIN_LT_DRELU", 1) ? gemm_relu_mask_bytes(rows, out) : 0;
}

static const char *cuda_set_precision(int precision) { return gemm_set_precision(precision); }

static int cuda_utilization(double *percent) { return nvml_probe_utilization(percent); }

static int cuda_memory_info(double *used_mb, double *total_mb)
{
    size_t free_bytes = 0, total = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    *used_mb = (double)(total - free_bytes) / (1024.0 * 1024.0);
    *total_mb = (double)total / (1024.0 * 1024.0);
    return 0;
}

extern "C" const char *backend_cuda_build_info(void)
{
#ifdef DPTRAIN_HAVE_NCCL
    return "cpu, cuda (CUDA architectures " DPTRAIN_CUDA_ARCHS "), nccl";
#else
    return "cpu, cuda (CUDA architectures " DPTRAIN_CUDA_ARCHS "), no nccl";
#endif
}

extern "C" int backend_cuda_device_count(void)
{
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError(); /* clear: no driver or no device */
        return 0;
    }
    return count;
}

/* The device this rank uses: a helper thread starts on device 0 unless told (cudaSetDevice is per
 * thread). */
static int bound_device = 0;

static void cuda_bind_thread(void) { CUDA_CHECK(cudaSetDevice(bound_device)); }

extern "C" int backend_cuda_init(int local_rank, char *name, size_t name_len, char *bus_id, size_t bus_len,
                                 struct dp_error *err)
{
    int count = backend_cuda_device_count();
    if (count < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "--device cuda: no CUDA device is visible");
    int dev = local_rank % count;
    CUDA_CHECK(cudaSetDevice(dev));
    bound_device = dev;
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    snprintf(name, name_len, "%s", prop.name);
    /* A build without code for this GPU would fail at its first kernel; say so here, with the fix. */
    cudaFuncAttributes attr;
    cudaError_t image = conv_kernel_attributes(&attr);
    if (image == cudaErrorNoKernelImageForDevice || image == cudaErrorInvalidDeviceFunction) {
        cudaGetLastError(); /* clear it */
        return dp_error_set(err, DP_EXIT_INPUT,
                            "--device cuda: this dptrain has no code for GPU %d (%s, compute capability %d.%d); it "
                            "was built for CUDA architectures %s: rebuild with -DCMAKE_CUDA_ARCHITECTURES=%d%d (or "
                            "=native on a GPU node)",
                            dev, prop.name, prop.major, prop.minor, DPTRAIN_CUDA_ARCHS, prop.major, prop.minor);
    }
    CUDA_CHECK(image);
    CUDA_CHECK(cudaDeviceGetPCIBusId(bus_id, (int)bus_len, dev));
    nvml_probe_open(bus_id); /* utilization figures when the driver's NVML is there */
    gemm_init();
    return 0;
}

extern "C" const struct backend backend_cuda = {
    "cuda",
    1, /* is_device */
    cuda_alloc,
    cuda_free,
    cuda_upload,
    cuda_download,
    cuda_zero,
    cuda_synchronize,
    cuda_host_alloc,
    cuda_host_free,
    cuda_upload_batch_async,
    cuda_host_fence_record,
    cuda_host_fence_wait,
    cuda_dense_forward,
    cuda_dense_backward,
    cuda_relu_mask_bytes,
    cuda_dense_forward_relu_mask,
    gemm_dense_input_grad_relu,
    cuda_conv2d_uses_cols,
    cuda_conv2d_forward,
    cuda_conv2d_backward,
    cuda_maxpool_forward,
    cuda_maxpool_backward,
    cuda_avgpool_forward,
    cuda_avgpool_backward,
    cuda_batchnorm_sums,
    cuda_batchnorm_forward_train,
    cuda_batchnorm_forward_infer,
    cuda_batchnorm_backward_sums,
    cuda_batchnorm_param_grads,
    cuda_batchnorm_backward_dx,
    cuda_activation_forward,
    cuda_activation_backward,
    cuda_dropout_forward,
    cuda_dropout_backward,
    cuda_loss_forward_backward,
    cuda_regularize,
    cuda_sum_squares,
    cuda_clip_by_norm,
    cuda_optimizer_step,
    cuda_set_precision,
    cuda_memory_info,
    cuda_utilization,
    cuda_set_step_scalars,
    cuda_graph_begin,
    cuda_graph_end,
    cuda_graph_launch,
    cuda_graph_free,
    cuda_bind_thread,
};
