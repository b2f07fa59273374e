/* Convolution (im2col + the dense products), max and average pooling, NHWC, on the device. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend_ops.h"
#include "cuda_check.h"
#include "fast_divide.h"

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

void cuda_conv2d_forward(float *z, float *cols, const float *x, const float *w, const float *b,
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

/* the GPU path is im2col + GEMM: it always keeps the patches */
int cuda_conv2d_uses_cols(const struct conv_geometry *g)
{
    (void)g;
    return 1;
}

void cuda_conv2d_backward(float *dx, float *dcols, float *dw, float *db, const float *dz, const float *cols,
                          const float *x, const float *w, const struct conv_geometry *g, int64_t rows, int accumulate)
{
    (void)x; /* the patches hold it */
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

/* The input cells the window at output (oh, ow) covers, padding left out */
__device__ static float window_cells(const struct conv_index *g, uint32_t oh, uint32_t ow)
{
    int32_t h0 = (int32_t)(oh * g->stride_h) - (int32_t)g->pad_top, w0 = (int32_t)(ow * g->stride_w) - (int32_t)g->pad_left;
    int32_t h1 = h0 + (int32_t)g->k_h, w1 = w0 + (int32_t)g->k_w;
    int32_t rows = (h1 < (int32_t)g->in_h ? h1 : (int32_t)g->in_h) - (h0 > 0 ? h0 : 0);
    int32_t cols = (w1 < (int32_t)g->in_w ? w1 : (int32_t)g->in_w) - (w0 > 0 ? w0 : 0);
    return (float)(rows * cols);
}

__global__ void avgpool_forward_kernel(float *y, const float *x, struct conv_index g, uint32_t n)
{
    GRID_STRIDE32(o, n) {
        uint32_t q, r, sample;
        uint32_t c = fast_divmod(o, g.by_out_c, &q), ow = fast_divmod(q, g.by_out_w, &r);
        uint32_t oh = fast_divmod(r, g.by_out_h, &sample);
        const float *xs = x + sample * g.in_h * g.in_w * g.in_c;
        float sum = 0.0f;
        for (uint32_t kh = 0; kh < g.k_h; kh++) {
            int32_t ih = (int32_t)(oh * g.stride_h + kh) - (int32_t)g.pad_top;
            if (ih < 0 || ih >= (int32_t)g.in_h)
                continue;
            for (uint32_t kw = 0; kw < g.k_w; kw++) {
                int32_t iw = (int32_t)(ow * g.stride_w + kw) - (int32_t)g.pad_left;
                if (iw >= 0 && iw < (int32_t)g.in_w)
                    sum += xs[(ih * (int32_t)g.in_w + iw) * (int32_t)g.in_c + (int32_t)c];
            }
        }
        y[o] = sum / window_cells(&g, oh, ow);
    }
}

/* Each input value gathers dy / cells from the windows over it, in the CPU's order */
__global__ void avgpool_backward_kernel(float *dx, const float *dy, struct conv_index g, uint32_t n)
{
    const uint32_t out = g.out_h * g.out_w * g.out_c;
    GRID_STRIDE32(i, n) {
        uint32_t q, r, sample, oh0, oh1, ow0, ow1;
        uint32_t c = fast_divmod(i, g.by_in_c, &q), iw = fast_divmod(q, g.by_in_w, &r);
        uint32_t ih = fast_divmod(r, g.by_in_h, &sample);
        windows_over(ih + g.pad_top, g.k_h, g.out_h, g.by_stride_h, &oh0, &oh1);
        windows_over(iw + g.pad_left, g.k_w, g.out_w, g.by_stride_w, &ow0, &ow1);
        float s = 0.0f;
        for (uint32_t oh = oh0; oh <= oh1; oh++)
            for (uint32_t ow = ow0; ow <= ow1; ow++)
                s += dy[sample * out + (oh * g.out_w + ow) * g.out_c + c] / window_cells(&g, oh, ow);
        dx[i] = s;
    }
}

void cuda_avgpool_forward(float *y, const float *x, const struct conv_geometry *g, int64_t rows)
{
    const struct launch_plan p = launch_plan_make(g, pooled_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.out);
        avgpool_forward_kernel<<<blocks_for(n), THREADS>>>(y + r * p.out, x + r * p.in, p.ix, n);
        LAUNCH_CHECK();
    }
}

void cuda_avgpool_backward(float *dx, const float *dy, const struct conv_geometry *g, int64_t rows)
{
    const struct launch_plan p = launch_plan_make(g, pooled_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.in);
        avgpool_backward_kernel<<<blocks_for(n), THREADS>>>(dx + r * p.in, dy + r * p.out, p.ix, n);
        LAUNCH_CHECK();
    }
}

void cuda_maxpool_forward(float *y, int32_t *argmax, const float *x, const struct conv_geometry *g, int64_t rows)
{
    const struct launch_plan p = launch_plan_make(g, pooled_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.out);
        maxpool_forward_kernel<<<blocks_for(n), THREADS>>>(y + r * p.out, argmax + r * p.out, x + r * p.in, p.ix, n);
        LAUNCH_CHECK();
    }
}

void cuda_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, const struct conv_geometry *g,
                           int64_t rows)
{
    const struct launch_plan p = launch_plan_make(g, pooled_per_sample(g));
    for (int64_t r = 0; r < rows; r += p.step) {
        uint32_t n = launch_values(&p, r, rows, p.in);
        maxpool_backward_kernel<<<blocks_for(n), THREADS>>>(dx + r * p.in, dy + r * p.out, argmax + r * p.out, p.ix, n);
        LAUNCH_CHECK();
    }
}

cudaError_t conv_kernel_attributes(cudaFuncAttributes *attr) { return cudaFuncGetAttributes(attr, im2col_kernel); }
