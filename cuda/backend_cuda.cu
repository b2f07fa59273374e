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
#include "cuda_check.h"
#include "fast_divide.h"
#include "gemm.h"
#include "nvml_probe.h"
#include "errors.h"
#include "rng.h"

#ifndef DPTRAIN_CUDA_ARCHS /* set by cuda/CMakeLists.txt from CMAKE_CUDA_ARCHITECTURES */
#define DPTRAIN_CUDA_ARCHS "(unknown)"
#endif

/* rng.h's dropout domain, as a plain constant for device code */
static const uint32_t DROPOUT_DOMAIN = RNG_DOMAIN_DROPOUT;

/* ---- memory ---- */

static void *cuda_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess)
        dp_die(DP_EXIT_INTERNAL, "CUDA: out of device memory allocating %zu bytes for %s (%s)", bytes, what,
               cudaGetErrorString(e));
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 256));
    return p;
}

static void cuda_free(void *p) { if (p) CUDA_CHECK(cudaFree(p)); }
static void cuda_upload(void *dst, const void *src, size_t bytes) { if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice)); }
static void cuda_download(void *dst, const void *src, size_t bytes) { if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost)); }
static void cuda_zero(void *p, size_t bytes) { if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0)); }
static void cuda_synchronize(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

/* ---- input pipeline: pinned host buffers, copies in stream order, fences per buffer ---- */

static void *cuda_host_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 256);
    if (e != cudaSuccess)
        dp_die(DP_EXIT_INTERNAL, "CUDA: cannot allocate %zu bytes of pinned host memory for %s (%s)", bytes, what,
               cudaGetErrorString(e));
    memset(p, 0, bytes ? bytes : 256);
    return p;
}

static void cuda_host_free(void *p) { if (p) CUDA_CHECK(cudaFreeHost(p)); }

/* A batch upload from host slot 0 or 1: host to device on a copy stream of its own, into a device
 * staging buffer for that slot, so the copy of batch i+1 runs while the kernels of step i do;
 * then, in the kernels' order, device to device to where the model reads it (microseconds at
 * device bandwidth; the model's buffers, and a recorded graph, keep their addresses). */
static cudaStream_t copy_stream;
static cudaEvent_t staged[2], consumed[2]; /* copy done; staging buffer read by the kernels' stream */
static char *staging[2];
static size_t staging_bytes[2];

static size_t staging_offset(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

static void cuda_upload_batch_async(int slot, const struct host_copy *copies, int ncopies)
{
    if (!copy_stream) {
        CUDA_CHECK(cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking));
        for (int i = 0; i < 2; i++) {
            CUDA_CHECK(cudaEventCreateWithFlags(&staged[i], cudaEventDisableTiming));
            CUDA_CHECK(cudaEventCreateWithFlags(&consumed[i], cudaEventDisableTiming));
        }
    }
    size_t total = 0;
    for (int i = 0; i < ncopies; i++)
        total += staging_offset(copies[i].bytes);
    if (total > staging_bytes[slot]) { /* cudaFree waits for the device: no copy still reads it */
        if (staging[slot])
            CUDA_CHECK(cudaFree(staging[slot]));
        CUDA_CHECK(cudaMalloc(&staging[slot], total));
        staging_bytes[slot] = total;
    }
    /* Overwrite the slot's staging buffer only once the previous device copies from it are done
     * (an event never recorded is no wait). */
    CUDA_CHECK(cudaStreamWaitEvent(copy_stream, consumed[slot], 0));
    size_t at = 0;
    for (int i = 0; i < ncopies; i++) {
        if (copies[i].bytes)
            CUDA_CHECK(cudaMemcpyAsync(staging[slot] + at, copies[i].src, copies[i].bytes, cudaMemcpyHostToDevice,
                                       copy_stream));
        at += staging_offset(copies[i].bytes);
    }
    CUDA_CHECK(cudaEventRecord(staged[slot], copy_stream));
    CUDA_CHECK(cudaStreamWaitEvent(0, staged[slot], 0));
    at = 0;
    for (int i = 0; i < ncopies; i++) {
        if (copies[i].bytes)
            CUDA_CHECK(cudaMemcpyAsync(copies[i].dst, staging[slot] + at, copies[i].bytes, cudaMemcpyDeviceToDevice, 0));
        at += staging_offset(copies[i].bytes);
    }
    CUDA_CHECK(cudaEventRecord(consumed[slot], 0));
}

static cudaEvent_t host_fences[2];

static void cuda_host_fence_record(int slot)
{
    if (!host_fences[slot])
        CUDA_CHECK(cudaEventCreateWithFlags(&host_fences[slot], cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(host_fences[slot], 0));
}

static void cuda_host_fence_wait(int slot)
{
    if (host_fences[slot])
        CUDA_CHECK(cudaEventSynchronize(host_fences[slot]));
}

/* ---- step scalars in device memory, and graphs of a whole training step ---- */

struct step_scalars {
    uint32_t step;
    struct optimizer_step_params params;
};
static struct step_scalars *scalars_device, *scalars_staging; /* staging: 2 pinned slots */
static int scalars_live; /* set_step_scalars was called: kernels read the device copy */

static const uint32_t *device_step(void) { return scalars_live ? &scalars_device->step : NULL; }
static const struct optimizer_step_params *device_params(void)
{
    return scalars_live ? &scalars_device->params : NULL;
}

static void cuda_set_step_scalars(uint32_t step, const struct optimizer_step_params *p, int slot)
{
    if (!scalars_device) {
        CUDA_CHECK(cudaMalloc(&scalars_device, sizeof *scalars_device));
        CUDA_CHECK(cudaMallocHost(&scalars_staging, 2 * sizeof *scalars_staging));
    }
    scalars_staging[slot].step = step;
    scalars_staging[slot].params = *p;
    CUDA_CHECK(cudaMemcpyAsync(scalars_device, &scalars_staging[slot], sizeof *scalars_device, cudaMemcpyHostToDevice,
                               0));
    scalars_live = 1;
}

static cudaGraph_t capturing;

static int cuda_graph_begin(void)
{
    if (dp_env_flag("DPTRAIN_CUDA_SYNC", 0))
        return -1; /* synchronizing after every launch is not allowed while recording */
    CUDA_CHECK(cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeThreadLocal));
    return 0;
}

static void *cuda_graph_end(void)
{
    CUDA_CHECK(cudaStreamEndCapture(cudaStreamPerThread, &capturing));
    cudaGraphExec_t exec;
    CUDA_CHECK(cudaGraphInstantiate(&exec, capturing, 0));
    CUDA_CHECK(cudaGraphDestroy(capturing));
    return (void *)exec;
}

static void cuda_graph_launch(void *graph) { CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, cudaStreamPerThread)); }

static void cuda_graph_free(void *graph)
{
    if (graph)
        CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

/* ---- dense ---- */

static void cuda_dense_forward(float *z, const float *x, const float *w, const float *b, int64_t rows, int64_t in,
                               int64_t out, int relu)
{
    gemm_dense_forward(z, NULL, x, w, b, rows, in, out, relu);
}

static int cuda_dense_forward_relu_mask(float *z, void *mask, const float *x, const float *w, const float *b,
                                        int64_t rows, int64_t in, int64_t out)
{
    return gemm_dense_forward(z, mask, x, w, b, rows, in, out, 1);
}

static void cuda_dense_backward(float *dx, float *dw, float *db, const float *dz, const float *x, const float *w,
                                int64_t rows, int64_t in, int64_t out, int accumulate)
{
    gemm_dense_weight_grad(dw, db, dz, x, rows, in, out, accumulate);
    if (dx) /* dX^T (in x rows) = W (in x out) dZ^T (out x rows) */
        gemm(CUBLAS_OP_T, CUBLAS_OP_N, in, rows, out, 1.0f, w, out, dz, out, 0.0f, dx, in);
}

/* DPTRAIN_LT_DRELU=0 keeps the relu gradient in its own pass (to measure what the fusion gains):
 * without masks no layer fuses it. */
static size_t cuda_relu_mask_bytes(int64_t rows, int64_t out)
{
    return dp_env_flag("DPTRAIN_LT_DRELU", 1) ? gemm_relu_mask_bytes(rows, out) : 0;
}

/* ---- convolution and pooling (NHWC) ---- */

/* The index kernels count in 32 bits and divide with fast_divisor: conv_index is conv_geometry
 * with the divisors they need. A launch covers whole samples and fewer than 2^31 values (batches
 * beyond that take several launches); DPTRAIN_CUDA_LAUNCH_VALUES lowers the limit, so tests
 * cover the split. */
struct conv_index {
    uint32_t in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w, stride_h, stride_w, pad_top, pad_left, patch;
    struct fast_divisor by_in_c, by_in_w, by_in_h, by_out_c, by_out_w, by_out_h, by_k_w, by_stride_h, by_stride_w,
        by_patch;
};

static struct conv_index conv_index_make(const struct conv_geometry *g)
{
    struct conv_index x;
    x.in_h = (uint32_t)g->in_h, x.in_w = (uint32_t)g->in_w, x.in_c = (uint32_t)g->in_c;
    x.out_h = (uint32_t)g->out_h, x.out_w = (uint32_t)g->out_w, x.out_c = (uint32_t)g->out_c;
    x.k_h = (uint32_t)g->k_h, x.k_w = (uint32_t)g->k_w, x.stride_h = (uint32_t)g->stride_h;
    x.stride_w = (uint32_t)g->stride_w, x.pad_top = (uint32_t)g->pad_top, x.pad_left = (uint32_t)g->pad_left;
    x.patch = x.k_h * x.k_w * x.in_c;
    x.by_in_c = fast_divisor_make(x.in_c), x.by_in_w = fast_divisor_make(x.in_w);
    x.by_in_h = fast_divisor_make(x.in_h), x.by_out_c = fast_divisor_make(x.out_c);
    x.by_out_w = fast_divisor_make(x.out_w), x.by_out_h = fast_divisor_make(x.out_h);
    x.by_k_w = fast_divisor_make(x.k_w), x.by_stride_h = fast_divisor_make(x.stride_h);
    x.by_stride_w = fast_divisor_make(x.stride_w), x.by_patch = fast_divisor_make(x.patch);
    return x;
}

/* How many samples one launch takes, when a sample has `a` values on one side and `b` on the other. */
static int64_t samples_per_launch(int64_t a, int64_t b)
{
    static int64_t limit;
    if (!limit) {
        const char *v = getenv("DPTRAIN_CUDA_LAUNCH_VALUES");
        limit = v ? atoll(v) : 0;
        limit = limit > 0 && limit < INT32_MAX ? limit : INT32_MAX;
    }
    int64_t per_sample = a > b ? a : b;
    if (per_sample > limit)
        dp_die(DP_EXIT_INPUT, "CUDA: a sample of %lld values is more than convolution and pooling take on the GPU "
               "(%lld)", (long long)per_sample, (long long)limit);
    return limit / per_sample;
}

/* A layer's launches: its index geometry, the values per sample on the input side (in) and on the
 * other (out: im2col's columns, or pooling's outputs), and how many samples one launch takes. */
struct launch_plan {
    struct conv_index ix;
    int64_t in, out, step;
};

static struct launch_plan launch_plan_make(const struct conv_geometry *g, int64_t out)
{
    struct launch_plan p = {conv_index_make(g), g->in_h * g->in_w * g->in_c, out, 0};
    p.step = samples_per_launch(p.in, p.out);
    return p;
}

/* The values a launch from sample r covers, per_sample for each of its samples. */
static uint32_t launch_values(const struct launch_plan *p, int64_t r, int64_t rows, int64_t per_sample)
{
    return (uint32_t)((rows - r < p->step ? rows - r : p->step) * per_sample);
}

static int64_t cols_per_sample(const struct conv_geometry *g)
{
    return g->out_h * g->out_w * g->k_h * g->k_w * g->in_c;
}

static int64_t pooled_per_sample(const struct conv_geometry *g) { return g->out_h * g->out_w * g->out_c; }

/* cols holds rows * out_h * out_w patches of k_h * k_w * in_c values; padding reads as 0. */
__global__ void im2col_kernel(float *cols, const float *x, struct conv_index g, uint32_t n)
{
    GRID_STRIDE32(i, n) {
        uint32_t pix, kk, kh, q, sample;
        uint32_t c = fast_divmod(fast_divmod(i, g.by_patch, &pix), g.by_in_c, &kk);
        uint32_t kw = fast_divmod(kk, g.by_k_w, &kh);
        uint32_t ow = fast_divmod(pix, g.by_out_w, &q), oh = fast_divmod(q, g.by_out_h, &sample);
        int32_t ih = (int32_t)(oh * g.stride_h + kh) - (int32_t)g.pad_top;
        int32_t iw = (int32_t)(ow * g.stride_w + kw) - (int32_t)g.pad_left;
        cols[i] = ih < 0 || ih >= (int32_t)g.in_h || iw < 0 || iw >= (int32_t)g.in_w
                      ? 0.0f
                      : x[((sample * g.in_h + (uint32_t)ih) * g.in_w + (uint32_t)iw) * g.in_c + c];
    }
}

/* The output rows (or columns) [*first, *last] whose windows cover input row t - pad, t = i + pad:
 * those with o * stride <= t < o * stride + k. Visiting them upwards visits the window offsets
 * t - o * stride downwards, the CPU's order. */
__device__ void windows_over(uint32_t t, uint32_t k, uint32_t out, struct fast_divisor stride, uint32_t *first,
                             uint32_t *last)
{
    *first = t >= k ? fast_div(t - k + stride.d, stride) : 0; /* ceil((t - k + 1) / stride) */
    uint32_t hi = fast_div(t, stride);
    *last = hi < out - 1 ? hi : out - 1;
}

/* The backward passes of convolution and pooling gather: each input value's gradient sums what
 * the windows over it send back, in the CPU's order (windows in output order), so they are
 * deterministic, match the CPU's sums term by term, and write every value once (no atomics, no
 * zeroing pass). */
__global__ void col2im_kernel(float *dx, const float *dcols, struct conv_index g, uint32_t n)
{
    GRID_STRIDE32(i, n) {
        uint32_t q, r, sample, oh0, oh1, ow0, ow1;
        uint32_t c = fast_divmod(i, g.by_in_c, &q), iw = fast_divmod(q, g.by_in_w, &r);
        uint32_t ih = fast_divmod(r, g.by_in_h, &sample);
        uint32_t th = ih + g.pad_top, tw = iw + g.pad_left;
        windows_over(th, g.k_h, g.out_h, g.by_stride_h, &oh0, &oh1);
        windows_over(tw, g.k_w, g.out_w, g.by_stride_w, &ow0, &ow1);
        float s = 0.0f;
        for (uint32_t oh = oh0; oh <= oh1; oh++) {
            uint32_t kh = th - oh * g.stride_h;
            for (uint32_t ow = ow0; ow <= ow1; ow++) {
                uint32_t kw = tw - ow * g.stride_w;
                s += dcols[((sample * g.out_h + oh) * g.out_w + ow) * g.patch + (kh * g.k_w + kw) * g.in_c + c];
            }
        }
        dx[i] = s;
    }
}

static void cuda_conv2d_forward(float *z, float *cols, const float *x, const float *w, const float *b,
                                const struct conv_geometry *g, int64_t rows, int relu)
{
    const struct launch_plan p = launch_plan_make(g, cols_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.out);
        im2col_kernel<<<blocks_for(n), THREADS>>>(cols + r * p.out, x + r * p.in, p.ix, n);
        LAUNCH_CHECK();
    }
    cuda_dense_forward(z, cols, w, b, rows * g->out_h * g->out_w, g->k_h * g->k_w * g->in_c, g->out_c, relu);
}

static void cuda_conv2d_backward(float *dx, float *dcols, float *dw, float *db, const float *dz, const float *cols,
                                 const float *w, const struct conv_geometry *g, int64_t rows, int accumulate)
{
    cuda_dense_backward(dx ? dcols : NULL, dw, db, dz, cols, w, rows * g->out_h * g->out_w,
                        g->k_h * g->k_w * g->in_c, g->out_c, accumulate);
    if (!dx)
        return;
    const struct launch_plan p = launch_plan_make(g, cols_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.in);
        col2im_kernel<<<blocks_for(n), THREADS>>>(dx + r * p.in, dcols + r * p.out, p.ix, n);
        LAUNCH_CHECK();
    }
}

/* argmax keeps the index of the winning value within its sample; padding never wins. */
__global__ void maxpool_forward_kernel(float *y, int32_t *argmax, const float *x, struct conv_index g, uint32_t n)
{
    GRID_STRIDE32(o, n) {
        uint32_t q, r, sample;
        uint32_t c = fast_divmod(o, g.by_out_c, &q), ow = fast_divmod(q, g.by_out_w, &r);
        uint32_t oh = fast_divmod(r, g.by_out_h, &sample);
        const float *xs = x + sample * g.in_h * g.in_w * g.in_c;
        float best = -INFINITY;
        int32_t where = -1;
        for (uint32_t kh = 0; kh < g.k_h; kh++) {
            int32_t ih = (int32_t)(oh * g.stride_h + kh) - (int32_t)g.pad_top;
            if (ih < 0 || ih >= (int32_t)g.in_h)
                continue;
            for (uint32_t kw = 0; kw < g.k_w; kw++) {
                int32_t iw = (int32_t)(ow * g.stride_w + kw) - (int32_t)g.pad_left;
                if (iw < 0 || iw >= (int32_t)g.in_w)
                    continue;
                int32_t i = (ih * (int32_t)g.in_w + iw) * (int32_t)g.in_c + (int32_t)c;
                float v = xs[i];
                if (where < 0 || v > best) {
                    best = v;
                    where = i;
                }
            }
        }
        y[o] = best;
        argmax[o] = where;
    }
}

__global__ void maxpool_backward_kernel(float *dx, const float *dy, const int32_t *argmax, struct conv_index g,
                                        uint32_t n)
{
    const uint32_t in = g.in_h * g.in_w * g.in_c, out = g.out_h * g.out_w * g.out_c;
    GRID_STRIDE32(i, n) {
        uint32_t q, r, sample, oh0, oh1, ow0, ow1;
        uint32_t c = fast_divmod(i, g.by_in_c, &q), iw = fast_divmod(q, g.by_in_w, &r);
        uint32_t ih = fast_divmod(r, g.by_in_h, &sample);
        const int32_t local = (int32_t)(i - sample * in);
        windows_over(ih + g.pad_top, g.k_h, g.out_h, g.by_stride_h, &oh0, &oh1);
        windows_over(iw + g.pad_left, g.k_w, g.out_w, g.by_stride_w, &ow0, &ow1);
        float s = 0.0f;
        for (uint32_t oh = oh0; oh <= oh1; oh++)
            for (uint32_t ow = ow0; ow <= ow1; ow++) {
                uint32_t o = sample * out + (oh * g.out_w + ow) * g.out_c + c;
                if (argmax[o] == local)
                    s += dy[o];
            }
        dx[i] = s;
    }
}

static void cuda_maxpool_forward(float *y, int32_t *argmax, const float *x, const struct conv_geometry *g, int64_t rows)
{
    const struct launch_plan p = launch_plan_make(g, pooled_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.out);
        maxpool_forward_kernel<<<blocks_for(n), THREADS>>>(y + r * p.out, argmax + r * p.out, x + r * p.in, p.ix, n);
        LAUNCH_CHECK();
    }
}

static void cuda_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, const struct conv_geometry *g,
                                  int64_t rows)
{
    const struct launch_plan p = launch_plan_make(g, pooled_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.in);
        maxpool_backward_kernel<<<blocks_for(n), THREADS>>>(dx + r * p.in, dy + r * p.out, argmax + r * p.out, p.ix, n);
        LAUNCH_CHECK();
    }
}

/* ---- activations ---- */

__global__ void activation_forward_kernel(float *y, const float *z, int64_t n, int act)
{
    GRID_STRIDE(i, n) {
        float v = z[i];
        switch (act) {
        case ACTIVATION_RELU: v = v > 0.0f ? v : 0.0f; break;
        case ACTIVATION_SIGMOID: v = 1.0f / (1.0f + expf(-v)); break;
        case ACTIVATION_TANH: v = tanhf(v); break;
        default: break;
        }
        y[i] = v;
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

__global__ void activation_backward_kernel(float *dz, const float *dy, const float *y, int64_t n, int act)
{
    GRID_STRIDE(i, n) {
        float g = dy[i], v = y[i];
        switch (act) {
        case ACTIVATION_RELU: g = v > 0.0f ? g : 0.0f; break;
        case ACTIVATION_SIGMOID: g = g * v * (1.0f - v); break;
        case ACTIVATION_TANH: g = g * (1.0f - v * v); break;
        default: break;
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

static void cuda_activation_forward(float *y, const float *z, int64_t rows, int64_t cols, enum activation act)
{
    if (act == ACTIVATION_SOFTMAX)
        softmax_rows_kernel<<<blocks_for(rows), THREADS>>>(y, z, rows, cols);
    else
        activation_forward_kernel<<<blocks_for(rows * cols), THREADS>>>(y, z, rows * cols, (int)act);
    LAUNCH_CHECK();
}

static void cuda_activation_backward(float *dz, const float *dy, const float *y, int64_t rows, int64_t cols,
                                     enum activation act)
{
    if (act == ACTIVATION_SOFTMAX)
        softmax_backward_kernel<<<blocks_for(rows), THREADS>>>(dz, dy, y, rows, cols);
    else
        activation_backward_kernel<<<blocks_for(rows * cols), THREADS>>>(dz, dy, y, rows * cols, (int)act);
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

static void cuda_dropout_forward(float *y, uint8_t *mask, const float *x, const int64_t *ids, int64_t rows,
                                 int64_t cols, float rate, struct dropout_key key)
{
    dropout_forward_kernel<<<blocks_for(rows * ((cols + 3) / 4)), THREADS>>>(
        y, mask, x, ids, rows, cols, rate, key.seed, DROPOUT_DOMAIN | (key.layer << 8), key.step, device_step());
    LAUNCH_CHECK();
}

static void cuda_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t rows, int64_t cols, float rate)
{
    dropout_backward_kernel<<<blocks_for(rows * cols), THREADS>>>(dx, dy, mask, rows * cols, 1.0f / (1.0f - rate));
    LAUNCH_CHECK();
}

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

static void cuda_loss_forward_backward(double *acc, float *dz, const float *z, const float *y, struct loss_targets t,
                                       int64_t rows, int64_t k, struct loss_params p, float grad_scale)
{
    loss_kernel<<<1, LOSS_THREADS>>>(acc, dz, z, y, t.labels, t.values, rows, k, (int)p.loss, (int)p.metric,
                                     grad_scale);
    LAUNCH_CHECK();
}

/* ---- optimizer: one fused pass over the flat arena ---- */

__global__ void optimizer_kernel(float *w, const float *g, float *s0, float *s1, int64_t n,
                                 struct optimizer_step_params p, const struct optimizer_step_params *p_on_device)
{
    if (p_on_device)
        p = *p_on_device;
    GRID_STRIDE(i, n) {
        float gi = g[i];
        if (p.kind == OPTIMIZER_SGD) {
            if (p.momentum > 0.0f) {
                float v = p.momentum * s0[i] - p.lr * gi;
                s0[i] = v;
                w[i] += p.nesterov ? p.momentum * v - p.lr * gi : v;
            } else {
                w[i] -= p.lr * gi;
            }
        } else if (p.kind == OPTIMIZER_ADAM) {
            float m = p.beta1 * s0[i] + (1.0f - p.beta1) * gi;
            float v = p.beta2 * s1[i] + (1.0f - p.beta2) * gi * gi;
            s0[i] = m;
            s1[i] = v;
            w[i] -= p.lr * m / (sqrtf(v) + p.epsilon);
        } else {
            float v = p.rho * s0[i] + (1.0f - p.rho) * gi * gi;
            s0[i] = v;
            w[i] -= p.lr * gi / sqrtf(v + p.epsilon);
        }
    }
}

static void cuda_optimizer_step(float *w, const float *g, float *s0, float *s1, size_t n, struct optimizer_step_params p)
{
    optimizer_kernel<<<blocks_for((int64_t)n), THREADS>>>(w, g, s0, s1, (int64_t)n, p, device_params());
    LAUNCH_CHECK();
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
    cudaError_t image = cudaFuncGetAttributes(&attr, im2col_kernel);
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
    cuda_conv2d_forward,
    cuda_conv2d_backward,
    cuda_maxpool_forward,
    cuda_maxpool_backward,
    cuda_activation_forward,
    cuda_activation_backward,
    cuda_dropout_forward,
    cuda_dropout_backward,
    cuda_loss_forward_backward,
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
