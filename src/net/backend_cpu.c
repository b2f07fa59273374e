/* CPU backend: CBLAS (OpenBLAS) for matrix products, OpenMP loops for the rest. Kept simple and
 * without fast-math: it is the reference the GPU backend is tested against. */
#include "net/backend.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "net/activation_math.h"
#include "net/metric_math.h"
#include "net/conv_onednn.h"
#include "base/rng.h"

/* Loops shorter than this stay on one thread: OpenMP start-up costs more than they do. */
#define CPU_PARALLEL_MIN 32768

static void *cpu_alloc(size_t bytes, const char *what)
{
    /* 256-byte alignment, as the GPU arena uses, so views line up the same on both backends. */
    size_t rounded = (bytes + 255) / 256 * 256;
    void *p = aligned_alloc(256, rounded ? rounded : 256);
    if (!p)
        dp_die(DP_EXIT_INTERNAL, "out of memory allocating %zu bytes for %s", bytes, what);
    memset(p, 0, rounded);
    return p;
}

static void cpu_free(void *p) { free(p); }
static void cpu_copy(void *dst, const void *src, size_t bytes) { if (bytes) memmove(dst, src, bytes); }
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_synchronize(void) {}

/* C = alpha op(A) op(B) + beta C, row-major: oneDNN's sgemm for large products where the build
 * has it (seed_mlp's 4096x4096 layers 7% faster at 1 thread, 3% at 2, on the AVX-512 development
 * machine; DPTRAIN_GEMM=openblas keeps OpenBLAS), else OpenBLAS */
static void sgemm(char ta, char tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda,
                  const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    /* products under 2^30 multiply-adds stay with OpenBLAS: oneDNN's threads cost more than they
     * win there (2 threads: cancer_mlp 37% slower, mnist_cnn's dense layers 25%) */
    if ((double)m * (double)n * (double)k >= 1073741824.0 &&
        onednn_sgemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc) == 0)
        return;
    cblas_sgemm(CblasRowMajor, ta == 'N' ? CblasNoTrans : CblasTrans, tb == 'N' ? CblasNoTrans : CblasTrans,
                (blasint)m, (blasint)n, (blasint)k, alpha, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

static void cpu_dense_forward(float *z, const float *x, const float *w, const float *b, int64_t rows,
                              int64_t in, int64_t out, int relu)
{
    for (int64_t r = 0; r < rows; r++)
        memcpy(z + r * out, b, (size_t)out * sizeof(float));
    sgemm('N', 'N', rows, out, in, 1.0f, x, in, w, out, 1.0f, z, out);
    if (relu) {
        const int64_t n = rows * out;
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            z[i] = z[i] > 0.0f ? z[i] : 0.0f;
    }
}

static void cpu_dense_backward(float *dx, float *dw, float *db, const float *dz, const float *x,
                               const float *w, int64_t rows, int64_t in, int64_t out, int accumulate)
{
    sgemm('T', 'N', in, out, rows, 1.0f, x, in, dz, out, accumulate ? 1.0f : 0.0f, dw, out);
    if (db && !accumulate)
        memset(db, 0, (size_t)out * sizeof(float));
    for (int64_t r = 0; r < rows && db; r++) {
        const float *row = dz + r * out;
        for (int64_t j = 0; j < out; j++)
            db[j] += row[j];
    }
    if (dx)
        sgemm('N', 'T', rows, in, out, 1.0f, dz, out, w, out, 0.0f, dx, in);
}

/* im2col for NHWC: row (n, oh, ow) holds the patch in (kh, kw, c) order, zeros where padded. The
 * window's positions on one input row are adjacent in x, so each kernel row is one copy (with
 * zeros either side where it hangs over the padding), not one per position. */
static void im2col_nhwc(float *cols, const float *x, const struct conv_geometry *g, int64_t rows)
{
    const int64_t C = g->in_c, patch = g->k_h * g->k_w * C;
#pragma omp parallel for collapse(2) if (rows * g->out_h * g->out_w * patch > CPU_PARALLEL_MIN)
    for (int64_t n = 0; n < rows; n++)
        for (int64_t oh = 0; oh < g->out_h; oh++)
            for (int64_t ow = 0; ow < g->out_w; ow++) {
                float *dst = cols + ((n * g->out_h + oh) * g->out_w + ow) * patch;
                const int64_t iw0 = ow * g->stride_w - g->pad_left; /* the window's first column */
                const int64_t lo = iw0 < 0 ? -iw0 : 0;              /* kernel columns [lo, hi) are inside */
                const int64_t hi = iw0 + g->k_w > g->in_w ? g->in_w - iw0 : g->k_w;
                for (int64_t kh = 0; kh < g->k_h; kh++) {
                    const int64_t ih = oh * g->stride_h + kh - g->pad_top;
                    float *d = dst + kh * g->k_w * C;
                    if (ih < 0 || ih >= g->in_h || hi <= lo) {
                        memset(d, 0, (size_t)(g->k_w * C) * sizeof(float));
                        continue;
                    }
                    if (lo > 0)
                        memset(d, 0, (size_t)(lo * C) * sizeof(float));
                    memcpy(d + lo * C, x + ((n * g->in_h + ih) * g->in_w + iw0 + lo) * C,
                           (size_t)((hi - lo) * C) * sizeof(float));
                    if (hi < g->k_w)
                        memset(d + hi * C, 0, (size_t)((g->k_w - hi) * C) * sizeof(float));
                }
            }
}

/* The adjoint of im2col: dx = 0, then each patch element is added back where it came from. */
static void col2im_nhwc(float *dx, const float *dcols, const struct conv_geometry *g, int64_t rows)
{
    const int64_t patch = g->k_h * g->k_w * g->in_c;
    memset(dx, 0, (size_t)(rows * g->in_h * g->in_w * g->in_c) * sizeof(float));
#pragma omp parallel for if (rows * g->out_h * g->out_w * patch > CPU_PARALLEL_MIN)
    for (int64_t n = 0; n < rows; n++) /* samples are independent: no races across threads */
        for (int64_t oh = 0; oh < g->out_h; oh++)
            for (int64_t ow = 0; ow < g->out_w; ow++) {
                const float *src = dcols + ((n * g->out_h + oh) * g->out_w + ow) * patch;
                for (int64_t kh = 0; kh < g->k_h; kh++) {
                    int64_t ih = oh * g->stride_h + kh - g->pad_top;
                    if (ih < 0 || ih >= g->in_h)
                        continue;
                    for (int64_t kw = 0; kw < g->k_w; kw++) {
                        int64_t iw = ow * g->stride_w + kw - g->pad_left;
                        if (iw < 0 || iw >= g->in_w)
                            continue;
                        float *d = dx + ((n * g->in_h + ih) * g->in_w + iw) * g->in_c;
                        const float *sp = src + (kh * g->k_w + kw) * g->in_c;
                        for (int64_t c = 0; c < g->in_c; c++)
                            d[c] += sp[c];
                    }
                }
            }
}

/* oneDNN's primitives where the build has them (net/conv_onednn.h), im2col + GEMM otherwise */
static int cpu_conv2d_uses_cols(const struct conv_geometry *g)
{
    (void)g;
    return !conv_onednn_enabled();
}

/* im2col's scratch when the caller has none (oneDNN refused a shape it was expected to take) */
static float *fallback_cols(float **buf, size_t *have, const struct conv_geometry *g, int64_t rows)
{
    size_t need = (size_t)(rows * g->out_h * g->out_w * g->k_h * g->k_w * g->in_c) * sizeof(float);
    if (need > *have) {
        free(*buf);
        *buf = dp_malloc(need, "conv2d patches");
        *have = need;
    }
    return *buf;
}

static float *spare_cols, *spare_dcols;
static size_t spare_cols_bytes, spare_dcols_bytes;

static void cpu_conv2d_forward(float *z, float *cols, const float *x, const float *w, const float *b,
                               const struct conv_geometry *g, int64_t rows, int relu)
{
    if (conv_onednn_forward(z, x, w, b, g, rows, relu) == 0)
        return;
    if (!cols)
        cols = fallback_cols(&spare_cols, &spare_cols_bytes, g, rows);
    im2col_nhwc(cols, x, g, rows);
    cpu_dense_forward(z, cols, w, b, rows * g->out_h * g->out_w, g->k_h * g->k_w * g->in_c, g->out_c, relu);
}

static void cpu_conv2d_backward(float *dx, float *dcols, float *dw, float *db, const float *dz, const float *cols,
                                const float *x, const float *w, const struct conv_geometry *g, int64_t rows,
                                int accumulate)
{
    /* The input gradient is per sample: oneDNN's primitive. The weight gradient sums over the rank's
     * rows, and oneDNN's primitive sums them in an order that depends on how many there are (1 vs 2
     * ranks drifted to 1.6e-5 apart over e2e_batchnorm's training, 6e-7 with GEMM): it stays a GEMM
     * over the patches, as the im2col path computes it. */
    if (conv_onednn_enabled() && dx && conv_onednn_backward(dx, NULL, NULL, dz, x, w, g, rows, 0) == 0)
        dx = NULL;
    if (!cols || conv_onednn_enabled()) { /* oneDNN's forward kept no patches: made here */
        cols = fallback_cols(&spare_cols, &spare_cols_bytes, g, rows);
        im2col_nhwc((float *)cols, x, g, rows);
    }
    if (dx && !dcols)
        dcols = fallback_cols(&spare_dcols, &spare_dcols_bytes, g, rows);
    cpu_dense_backward(dx ? dcols : NULL, dw, db, dz, cols, w, rows * g->out_h * g->out_w,
                       g->k_h * g->k_w * g->in_c, g->out_c, accumulate);
    if (dx)
        col2im_nhwc(dx, dcols, g, rows);
}

static void cpu_maxpool_forward(float *y, int32_t *argmax, const float *x, const struct conv_geometry *g,
                                int64_t rows)
{
    const int64_t C = g->in_c, in_plane = g->in_h * g->in_w * C;
    /* Channels innermost: each window position is a contiguous run of C values (NHWC). The first
     * position in the window is copied, the others compared without branches (strictly greater
     * wins, so the first maximum in window order does; the channels' comparisons are vectorized). */
#pragma omp parallel for if (rows * g->out_h * g->out_w * C > CPU_PARALLEL_MIN)
    for (int64_t p = 0; p < rows * g->out_h; p++) {
        const int64_t n = p / g->out_h, oh = p % g->out_h;
        for (int64_t ow = 0; ow < g->out_w; ow++) {
            float *restrict best = y + ((n * g->out_h + oh) * g->out_w + ow) * C;
            int32_t *restrict where = argmax + ((n * g->out_h + oh) * g->out_w + ow) * C;
            int started = 0;
            for (int64_t kh = 0; kh < g->k_h; kh++) {
                const int64_t ih = oh * g->stride_h + kh - g->pad_top;
                if (ih < 0 || ih >= g->in_h)
                    continue;
                for (int64_t kw = 0; kw < g->k_w; kw++) {
                    const int64_t iw = ow * g->stride_w + kw - g->pad_left;
                    if (iw < 0 || iw >= g->in_w)
                        continue;
                    const int32_t base = (int32_t)((ih * g->in_w + iw) * C);
                    const float *restrict xv = x + n * in_plane + base;
                    if (!started) {
                        for (int64_t c = 0; c < C; c++) {
                            best[c] = xv[c];
                            where[c] = base + (int32_t)c;
                        }
                        started = 1;
                        continue;
                    }
                    for (int64_t c = 0; c < C; c++) { /* the index chosen by a mask: GCC vectorizes that */
                        const float v = xv[c], b = best[c];
                        const int32_t greater = -(int32_t)(v > b), w = where[c];
                        best[c] = v > b ? v : b;
                        where[c] = (w & ~greater) | ((base + (int32_t)c) & greater);
                    }
                }
            }
            for (int64_t c = 0; c < C && !started; c++) { /* a window over padding alone */
                best[c] = -INFINITY;
                where[c] = -1;
            }
        }
    }
}

static void cpu_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, const struct conv_geometry *g,
                                 int64_t rows)
{
    const int64_t in = g->in_h * g->in_w * g->in_c, out = g->out_h * g->out_w * g->out_c;
    memset(dx, 0, (size_t)(rows * in) * sizeof(float));
#pragma omp parallel for if (rows * out > CPU_PARALLEL_MIN)
    for (int64_t n = 0; n < rows; n++)
        for (int64_t o = 0; o < out; o++)
            dx[n * in + argmax[n * out + o]] += dy[n * out + o];
}

static void cpu_avgpool_forward(float *y, const float *x, const struct conv_geometry *g, int64_t rows)
{
    const int64_t C = g->in_c, in_plane = g->in_h * g->in_w * C;
#pragma omp parallel for if (rows * g->out_h * g->out_w * C > CPU_PARALLEL_MIN)
    for (int64_t p = 0; p < rows * g->out_h; p++) {
        const int64_t n = p / g->out_h, oh = p % g->out_h;
        const int64_t ih0 = oh * g->stride_h - g->pad_top;
        for (int64_t ow = 0; ow < g->out_w; ow++) {
            float *restrict sum = y + ((n * g->out_h + oh) * g->out_w + ow) * C;
            const int64_t iw0 = ow * g->stride_w - g->pad_left;
            for (int64_t c = 0; c < C; c++)
                sum[c] = 0.0f;
            for (int64_t ih = ih0 < 0 ? 0 : ih0; ih < ih0 + g->k_h && ih < g->in_h; ih++)
                for (int64_t iw = iw0 < 0 ? 0 : iw0; iw < iw0 + g->k_w && iw < g->in_w; iw++) {
                    const float *restrict xv = x + n * in_plane + (ih * g->in_w + iw) * C;
                    for (int64_t c = 0; c < C; c++)
                        sum[c] += xv[c];
                }
            const float cells = (float)(conv_window_cells(oh, g->stride_h, g->pad_top, g->k_h, g->in_h) *
                                        conv_window_cells(ow, g->stride_w, g->pad_left, g->k_w, g->in_w));
            for (int64_t c = 0; c < C; c++)
                sum[c] /= cells;
        }
    }
}

static void cpu_avgpool_backward(float *dx, const float *dy, const struct conv_geometry *g, int64_t rows)
{
    const int64_t C = g->in_c, in_plane = g->in_h * g->in_w * C;
    memset(dx, 0, (size_t)(rows * in_plane) * sizeof(float));
#pragma omp parallel for if (rows * g->out_h * g->out_w * C > CPU_PARALLEL_MIN)
    for (int64_t n = 0; n < rows; n++)
        for (int64_t oh = 0; oh < g->out_h; oh++)
            for (int64_t ow = 0; ow < g->out_w; ow++) {
                const int64_t ih0 = oh * g->stride_h - g->pad_top, iw0 = ow * g->stride_w - g->pad_left;
                const float cells = (float)(conv_window_cells(oh, g->stride_h, g->pad_top, g->k_h, g->in_h) *
                                            conv_window_cells(ow, g->stride_w, g->pad_left, g->k_w, g->in_w));
                const float *restrict d = dy + ((n * g->out_h + oh) * g->out_w + ow) * C;
                for (int64_t ih = ih0 < 0 ? 0 : ih0; ih < ih0 + g->k_h && ih < g->in_h; ih++)
                    for (int64_t iw = iw0 < 0 ? 0 : iw0; iw < iw0 + g->k_w && iw < g->in_w; iw++) {
                        float *restrict xv = dx + n * in_plane + (ih * g->in_w + iw) * C;
                        for (int64_t c = 0; c < C; c++)
                            xv[c] += d[c] / cells;
                    }
            }
}

/* BatchNormalization: channels are the last axis, so each row of c values feeds every channel
 * once; sums in double, rows in order, so they do not depend on the thread count. */
static void cpu_batchnorm_sums(double *sums, const float *x, int64_t n, int64_t c)
{
    for (int64_t j = 0; j < 2 * c; j++)
        sums[j] = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            const double v = x[i * c + j];
            sums[j] += v;
            sums[c + j] += v * v;
        }
}

static void cpu_batchnorm_forward_train(float *y, float *stat, float *moving_mean, float *moving_var, const float *x,
                                        const double *sums, double count, const float *gamma, const float *beta,
                                        float momentum, float epsilon, int64_t n, int64_t c)
{
    for (int64_t j = 0; j < c; j++) {
        double mean = sums[j] / count, var = sums[c + j] / count - mean * mean;
        var = var > 0.0 ? var : 0.0;
        stat[j] = (float)mean;
        stat[c + j] = (float)(1.0 / sqrt(var + (double)epsilon));
        moving_mean[j] = moving_mean[j] * momentum + (float)mean * (1.0f - momentum);
        moving_var[j] = moving_var[j] * momentum + (float)var * (1.0f - momentum);
    }
#pragma omp parallel for if (n * c > CPU_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            float v = (x[i * c + j] - stat[j]) * stat[c + j];
            y[i * c + j] = (gamma ? gamma[j] : 1.0f) * v + (beta ? beta[j] : 0.0f);
        }
}

static void cpu_batchnorm_forward_infer(float *y, const float *x, const float *moving_mean, const float *moving_var,
                                        const float *gamma, const float *beta, float epsilon, int64_t n, int64_t c)
{
#pragma omp parallel for if (n * c > CPU_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            float inv = 1.0f / sqrtf(moving_var[j] + epsilon);
            y[i * c + j] = (gamma ? gamma[j] : 1.0f) * (x[i * c + j] - moving_mean[j]) * inv + (beta ? beta[j] : 0.0f);
        }
}

static void cpu_batchnorm_backward_sums(double *sums, const float *dy, const float *x, const float *stat, int64_t n,
                                        int64_t c)
{
    for (int64_t j = 0; j < 2 * c; j++)
        sums[j] = 0.0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            const double g = dy[i * c + j], xhat = (x[i * c + j] - stat[j]) * stat[c + j];
            sums[j] += g;
            sums[c + j] += g * xhat;
        }
}

static void cpu_batchnorm_param_grads(float *dgamma, float *dbeta, const double *sums, int64_t c)
{
    for (int64_t j = 0; j < c; j++) {
        if (dbeta)
            dbeta[j] = (float)sums[j];
        if (dgamma)
            dgamma[j] = (float)sums[c + j];
    }
}

static void cpu_batchnorm_backward_dx(float *dx, const float *dy, const float *x, const float *stat, const float *gamma,
                                      const double *sums, double count, int64_t n, int64_t c)
{
#pragma omp parallel for if (n * c > CPU_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            float xhat = (x[i * c + j] - stat[j]) * stat[c + j];
            float mean_dy = (float)(sums[j] / count), mean_dy_xhat = (float)(sums[c + j] / count);
            dx[i * c + j] = (gamma ? gamma[j] : 1.0f) * stat[c + j] * (dy[i * c + j] - mean_dy - xhat * mean_dy_xhat);
        }
}

static void softmax_row(float *y, const float *z, int64_t cols)
{
    float mx = z[0];
    for (int64_t j = 1; j < cols; j++)
        mx = z[j] > mx ? z[j] : mx;
    double sum = 0.0;
    for (int64_t j = 0; j < cols; j++) {
        y[j] = expf(z[j] - mx);
        sum += y[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < cols; j++)
        y[j] *= inv;
}

static void cpu_activation_forward(float *y, const float *z, int64_t rows, int64_t cols,
                                   enum activation act, float param)
{
    int64_t n = rows * cols;
    switch (act) {
    case ACTIVATION_LINEAR:
        if (y != z)
            memcpy(y, z, (size_t)n * sizeof(float));
        break;
    case ACTIVATION_RELU:
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            y[i] = z[i] > 0.0f ? z[i] : 0.0f;
        break;
    case ACTIVATION_SIGMOID:
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            y[i] = 1.0f / (1.0f + expf(-z[i]));
        break;
    case ACTIVATION_TANH:
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            y[i] = tanhf(z[i]);
        break;
    case ACTIVATION_SOFTMAX:
        for (int64_t r = 0; r < rows; r++)
            softmax_row(y + r * cols, z + r * cols, cols);
        break;
    default:
        DP_ASSERT(act < ACTIVATION_COUNT);
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            y[i] = activation_value(act, param, z[i]);
    }
}

static void cpu_activation_backward(float *dz, const float *dy, const float *z, const float *y, int64_t rows,
                                    int64_t cols, enum activation act, float param)
{
    int64_t n = rows * cols;
    switch (act) {
    case ACTIVATION_LINEAR:
        if (dz != dy)
            memcpy(dz, dy, (size_t)n * sizeof(float));
        break;
    case ACTIVATION_RELU:
        /* Both values loaded whatever the sign, so the compiler selects instead of branching
         * (relu's signs are a coin toss: mispredicted branches made this loop cost as much as a
         * convolution); dz may be dy itself, element for element. */
#pragma omp parallel for simd if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++) {
            const float g = dy[i], v = y[i];
            dz[i] = v > 0.0f ? g : 0.0f;
        }
        break;
    case ACTIVATION_SIGMOID:
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            dz[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case ACTIVATION_TANH:
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            dz[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case ACTIVATION_SOFTMAX:
        /* Jacobian-vector product: dz = y * (dy - sum(dy * y)) */
        for (int64_t r = 0; r < rows; r++) {
            const float *yr = y + r * cols, *dyr = dy + r * cols;
            float *dzr = dz + r * cols;
            double dot = 0.0;
            for (int64_t j = 0; j < cols; j++)
                dot += (double)dyr[j] * yr[j];
            for (int64_t j = 0; j < cols; j++)
                dzr[j] = yr[j] * (dyr[j] - (float)dot);
        }
        break;
    default:
        DP_ASSERT(act < ACTIVATION_COUNT);
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (int64_t i = 0; i < n; i++)
            dz[i] = dy[i] * activation_slope(act, param, z[i], y[i]);
    }
}

static void cpu_dropout_forward(float *y, uint8_t *mask, const float *x, const int64_t *sample_ids,
                                int64_t rows, int64_t cols, float rate, struct dropout_key key)
{
    const float scale = 1.0f / (1.0f - rate);
    const int64_t blocks = (cols + 3) / 4;
    const uint32_t domain = RNG_DOMAIN_DROPOUT | (key.layer << 8);
#pragma omp parallel for if (rows * cols > CPU_PARALLEL_MIN)
    for (int64_t r = 0; r < rows; r++) {
        uint32_t w[4];
        for (int64_t blk = 0; blk < blocks; blk++) {
            rng_block(w, key.seed, domain, key.step, (uint64_t)sample_ids[r] * blocks + blk);
            for (int64_t j = blk * 4; j < blk * 4 + 4 && j < cols; j++) {
                int keep = rng_u32_to_unit_float(w[j & 3]) >= rate;
                mask[r * cols + j] = (uint8_t)keep;
                y[r * cols + j] = keep ? x[r * cols + j] * scale : 0.0f;
            }
        }
    }
}

static void cpu_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t rows,
                                 int64_t cols, float rate)
{
    const float scale = 1.0f / (1.0f - rate);
    int64_t n = rows * cols;
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
    for (int64_t i = 0; i < n; i++)
        dx[i] = mask[i] ? dy[i] * scale : 0.0f;
}

/* Target value t[j] of row r, from labels (one-hot / 0-1) or from values. */
static inline float target_at(struct loss_targets t, int64_t r, int64_t j, int64_t k)
{
    return metric_target(t.labels, t.values, r, j, k);
}

static void cpu_loss_forward_backward(double *acc, float *dz, const float *z, const float *y,
                                      struct loss_targets t, int64_t rows, int64_t k,
                                      struct loss_params p, float grad_scale)
{
    double loss_sum = 0.0, metric_sum = 0.0, metric_den = 0.0;
    for (int64_t r = 0; r < rows; r++) {
        const float *zr = z + r * k, *yr = y + r * k;
        float *dzr = dz ? dz + r * k : NULL;
        double row_loss = 0.0;
        switch (p.loss) {
        case LOSS_MSE:
            for (int64_t j = 0; j < k; j++) {
                double d = (double)yr[j] - target_at(t, r, j, k);
                row_loss += d * d;
                if (dzr)
                    dzr[j] = (float)(2.0 * d / (double)k) * grad_scale;
            }
            row_loss /= (double)k;
            break;
        case LOSS_BINARY_CROSSENTROPY:
            /* From logits: max(z,0) - z t + log(1 + exp(-|z|)), mean over outputs. */
            for (int64_t j = 0; j < k; j++) {
                double zz = zr[j], tt = target_at(t, r, j, k);
                row_loss += (zz > 0 ? zz : 0) - zz * tt + log1p(exp(-fabs(zz)));
                if (dzr)
                    dzr[j] = (float)(((double)yr[j] - tt) / (double)k) * grad_scale;
            }
            row_loss /= (double)k;
            break;
        case LOSS_CATEGORICAL_CROSSENTROPY:
        case LOSS_SPARSE_CATEGORICAL_CROSSENTROPY: {
            /* -sum t log softmax(z) = sum t * (logsumexp(z) - z) */
            double mx = zr[0];
            for (int64_t j = 1; j < k; j++)
                mx = zr[j] > mx ? zr[j] : mx;
            double se = 0.0;
            for (int64_t j = 0; j < k; j++)
                se += exp((double)zr[j] - mx);
            double lse = mx + log(se);
            for (int64_t j = 0; j < k; j++) {
                double tt = target_at(t, r, j, k);
                if (tt != 0.0)
                    row_loss += tt * (lse - zr[j]);
                if (dzr)
                    dzr[j] = (float)((double)yr[j] - tt) * grad_scale;
            }
            break;
        }
        default: DP_ASSERT(!"unknown loss");
        }
        loss_sum += row_loss;

        metric_row(p.metric, p.loss, p.metric_k, yr, t.labels, t.values, r, k, &metric_sum, &metric_den);
    }
    acc[LOSS_ACC_LOSS] += loss_sum;
    acc[LOSS_ACC_METRIC] += metric_sum;
    acc[LOSS_ACC_METRIC_DEN] += metric_den;
    acc[LOSS_ACC_ROWS] += (double)rows;
}

static void cpu_regularize(float *g, const float *w, size_t n, float l1, float l2, double *acc, double rows)
{
    double penalty = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float v = w[i];
        g[i] += l1 * (float)((v > 0.0f) - (v < 0.0f)) + 2.0f * l2 * v;
        penalty += (double)l1 * fabs((double)v) + (double)l2 * (double)v * (double)v;
    }
    acc[LOSS_ACC_LOSS] += rows * penalty;
}

static void cpu_sum_squares(double *sumsq, const float *g, size_t n, int accumulate)
{
    double s = accumulate ? sumsq[0] : 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * (double)g[i];
    sumsq[0] = s;
}

static void cpu_clip_by_norm(float *g, size_t n, const double *sumsq, float clip)
{
    double norm = sqrt(sumsq[0]);
    float scale = (float)((double)clip / (norm > clip ? norm : (double)clip));
    for (size_t i = 0; i < n; i++)
        g[i] *= scale;
}

/* Keras 3's order: the gradient clipped, the weight decayed, then the update */
static inline float clipped(float g, float clipvalue)
{
    return clipvalue > 0.0f ? fminf(fmaxf(g, -clipvalue), clipvalue) : g;
}

static void cpu_optimizer_step(float *w, const float *g, float *s0, float *s1, float *s2, size_t n,
                               struct optimizer_step_params p)
{
    const float lr = p.lr, decay = p.decay, cv = p.clipvalue;
    switch (p.kind) {
    case OPTIMIZER_SGD:
        if (p.momentum > 0.0f) {
            const float mu = p.momentum;
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
            for (size_t i = 0; i < n; i++) {
                const float gi = clipped(g[i], cv), wi = w[i] - w[i] * decay;
                float v = mu * s0[i] - lr * gi;
                s0[i] = v;
                w[i] = wi + (p.nesterov ? mu * v - lr * gi : v);
            }
        } else {
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
            for (size_t i = 0; i < n; i++)
                w[i] = (w[i] - w[i] * decay) - lr * clipped(g[i], cv);
        }
        break;
    case OPTIMIZER_ADAM:
    case OPTIMIZER_ADAMW: {
        const float b1 = p.beta1, b2 = p.beta2, eps = p.epsilon;
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            const float gi = clipped(g[i], cv);
            float m = b1 * s0[i] + (1.0f - b1) * gi;
            float v = b2 * s1[i] + (1.0f - b2) * gi * gi;
            s0[i] = m;
            s1[i] = v;
            if (p.amsgrad) {
                v = v > s2[i] ? v : s2[i];
                s2[i] = v;
            }
            w[i] = (w[i] - w[i] * decay) - lr * m / (sqrtf(v) + eps);
        }
        break;
    }
    case OPTIMIZER_RMSPROP: {
        const float rho = p.rho, eps = p.epsilon;
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            const float gi = clipped(g[i], cv);
            float v = rho * s0[i] + (1.0f - rho) * gi * gi;
            s0[i] = v;
            w[i] = (w[i] - w[i] * decay) - lr * gi / sqrtf(v + eps);
        }
        break;
    }
    case OPTIMIZER_NADAM: {
        const float b1 = p.beta1, b2 = p.beta2, eps = p.epsilon;
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            const float gi = clipped(g[i], cv);
            float m = b1 * s0[i] + (1.0f - b1) * gi;
            float v = b2 * s1[i] + (1.0f - b2) * gi * gi;
            s0[i] = m;
            s1[i] = v;
            w[i] = (w[i] - w[i] * decay) - lr * (p.nadam_m * m + p.nadam_g * gi) / (sqrtf(v * p.nadam_v) + eps);
        }
        break;
    }
    case OPTIMIZER_ADAGRAD: {
        const float eps = p.epsilon;
#pragma omp parallel for if (n > CPU_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            const float gi = clipped(g[i], cv);
            float a = s0[i] + gi * gi;
            s0[i] = a;
            w[i] = (w[i] - w[i] * decay) - lr * gi / sqrtf(a + eps);
        }
        break;
    }
    default: DP_ASSERT(!"unknown optimizer");
    }
}

static void *cpu_host_alloc(size_t bytes, const char *what) { return dp_calloc(1, bytes, what); }
static void cpu_fence(int slot) { (void)slot; }

static void cpu_upload_batch(int slot, const struct host_copy *copies, int ncopies)
{
    (void)slot;
    for (int i = 0; i < ncopies; i++)
        cpu_copy(copies[i].dst, copies[i].src, copies[i].bytes);
}

/* CBLAS computes in fp32 whatever is asked. */
static const char *cpu_set_precision(int precision)
{
    (void)precision;
    return "fp32";
}

static int cpu_memory_info(double *used_mb, double *total_mb)
{
    *used_mb = *total_mb = -1;
    return -1;
}

static int cpu_utilization(double *percent)
{
    *percent = -1;
    return -1;
}

/* Every step runs as called: no device scalars, no graphs. */
static void cpu_set_step_scalars(uint32_t step, const struct optimizer_step_params *p, int slot)
{
    (void)step, (void)p, (void)slot;
}
static int cpu_graph_begin(void) { return -1; }
static void *cpu_graph_end(void) { return NULL; }
static void cpu_graph_none(void *graph) { (void)graph; }
static void cpu_bind_thread(void) {}

const struct backend backend_cpu = {
    .name = "cpu",
    .is_device = 0,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .upload = cpu_copy,
    .download = cpu_copy,
    .zero = cpu_zero,
    .synchronize = cpu_synchronize,
    .host_alloc = cpu_host_alloc,
    .host_free = cpu_free,
    .upload_batch_async = cpu_upload_batch,
    .host_fence_record = cpu_fence,
    .host_fence_wait = cpu_fence,
    .dense_forward = cpu_dense_forward,
    .dense_backward = cpu_dense_backward,
    .conv2d_uses_cols = cpu_conv2d_uses_cols,
    .conv2d_forward = cpu_conv2d_forward,
    .conv2d_backward = cpu_conv2d_backward,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .batchnorm_sums = cpu_batchnorm_sums,
    .batchnorm_forward_train = cpu_batchnorm_forward_train,
    .batchnorm_forward_infer = cpu_batchnorm_forward_infer,
    .batchnorm_backward_sums = cpu_batchnorm_backward_sums,
    .batchnorm_param_grads = cpu_batchnorm_param_grads,
    .batchnorm_backward_dx = cpu_batchnorm_backward_dx,
    .activation_forward = cpu_activation_forward,
    .activation_backward = cpu_activation_backward,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .loss_forward_backward = cpu_loss_forward_backward,
    .regularize = cpu_regularize,
    .sum_squares = cpu_sum_squares,
    .clip_by_norm = cpu_clip_by_norm,
    .optimizer_step = cpu_optimizer_step,
    .set_precision = cpu_set_precision,
    .memory_info = cpu_memory_info,
    .utilization = cpu_utilization,
    .set_step_scalars = cpu_set_step_scalars,
    .graph_begin = cpu_graph_begin,
    .graph_end = cpu_graph_end,
    .graph_launch = cpu_graph_none,
    .graph_free = cpu_graph_none,
    .bind_thread = cpu_bind_thread,
};

void backend_cpu_libraries(char *out, size_t len)
{
    char conv[200];
    conv_onednn_describe(conv, sizeof conv);
    snprintf(out, len, "%s (kernel %s); convolutions: %s", openblas_get_config(), openblas_get_corename(),
             conv_onednn_enabled() ? conv : "im2col + GEMM");
}
