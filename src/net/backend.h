/* The numeric backend: every operation on parameters, gradients and activations goes through this
 * table, so the CUDA backend (cuda/) plugs in without touching layers, model or trainer.
 *
 * Conventions, once for all backends:
 *  - Pointers are backend memory (host memory for the CPU backend, device memory for CUDA).
 *  - Matrices are row-major. A batch of activations is (rows, cols). A Dense kernel is (in, out),
 *    as Keras stores it, so z = x w + b.
 *  - Parameter gradients are WRITTEN (=) by the one backward operation that owns them each step,
 *    so no pass zeroes the arena first (on a GPU the weight-gradient GEMM then neither reads the
 *    old values nor needs a zeroing pass); with accumulate = 1 they are added (+=). Activation
 *    gradients are written.
 *  - Gradients are dL/dtheta (never negated). The loss scales its gradient by grad_scale, which the
 *    trainer sets to 1 / (rows of the GLOBAL batch), so summing gradients over ranks averages them.
 *  - Sizes are int64_t (seed_mlp has 4096 x 4096 kernels and 300 M rows). */
#ifndef DPTRAIN_BACKEND_H
#define DPTRAIN_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "net/activation.h"
#include "net/loss.h"
#include "net/optimizer.h"

struct dropout_key {
    uint64_t seed;
    uint32_t layer;
    uint32_t step; /* global optimizer step */
};

/* Geometry of a 2-D convolution or pooling over channels-last (NHWC) samples, as Keras lays them
 * out. Padding follows TensorFlow: "same" gives out = ceil(in / stride) and pads
 * max((out - 1) * stride + k - in, 0) in total, the smaller half on top/left. */
struct conv_geometry {
    int64_t in_h, in_w, in_c;
    int64_t out_h, out_w, out_c;
    int64_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
};

/* How many input cells (rows or columns) the window at output position o covers along one axis:
 * the window starts at o * stride - pad and is clipped to [0, in). */
static inline int64_t conv_window_cells(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t in)
{
    int64_t start = o * stride - pad, end = start + k;
    return (end < in ? end : in) - (start > 0 ? start : 0);
}

/* One copy of a batch upload: from a host_alloc buffer to backend memory. */
struct host_copy {
    void *dst;
    const void *src;
    size_t bytes;
};

struct backend {
    const char *name;
    int is_device; /* memory apart from the host's and work queued asynchronously (CUDA); 0 for the CPU */

    void *(*alloc)(size_t bytes, const char *what); /* zero-filled */
    void (*free)(void *p);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*synchronize)(void);

    /* The input pipeline: host buffers the device can copy from without staging (pinned on CUDA),
     * a batch upload that returns at once, and per-buffer fences: before the host writes into a
     * buffer again it waits for the fence recorded after the last upload from it. The upload of
     * host slot 0 or 1 may run while the kernels queued before it do (CUDA: on a copy stream of
     * its own), but the kernels queued after it see the data. On the CPU these are malloc,
     * memcpy and no-ops. */
    void *(*host_alloc)(size_t bytes, const char *what); /* zero-filled */
    void (*host_free)(void *p);
    void (*upload_batch_async)(int slot, const struct host_copy *copies, int ncopies);
    void (*host_fence_record)(int slot); /* slot 0 or 1 */
    void (*host_fence_wait)(int slot);

    /* z (rows, out) = x (rows, in) w (in, out) + b (out), then max(z, 0) in place when relu is 1.
     * A relu layer keeps only its output (its gradient needs nothing else), and the GPU adds the
     * bias and applies relu in the product's epilogue (cuBLASLt RELU_BIAS) instead of two passes. */
    void (*dense_forward)(float *z, const float *x, const float *w, const float *b, int64_t rows,
                          int64_t in, int64_t out, int relu);
    /* dw (in, out) = x^T dz; db (out) = column sums of dz unless db is NULL (done already, see
     * dense_input_grad_relu); += both with accumulate; dx (rows, in) = dz w^T unless NULL */
    void (*dense_backward)(float *dx, float *dw, float *db, const float *dz, const float *x,
                           const float *w, int64_t rows, int64_t in, int64_t out, int accumulate);
    /* Optional (NULL on the CPU): a Dense relu layer's activation and bias gradients fused into the
     * products next to it (cuBLASLt RELU_AUX_BIAS and DRELU_BGRAD), where the layer above is a
     * Dense too. relu_mask_bytes is the size of the mask of (rows, out) outputs;
     * dense_forward_relu_mask is dense_forward with relu that also keeps which z > 0 in the mask;
     * dense_input_grad_relu is the layer above's dx = (dz w^T) * [mask of the layer below], with
     * db_below = (or += with accumulate) the column sums of that dx. Each returns 1 when done, 0
     * when not offered for these shapes (dense_forward_relu_mask then ran dense_forward and kept
     * no mask; dense_input_grad_relu did nothing). */
    size_t (*relu_mask_bytes)(int64_t rows, int64_t out);
    int (*dense_forward_relu_mask)(float *z, void *mask, const float *x, const float *w, const float *b,
                                   int64_t rows, int64_t in, int64_t out);
    int (*dense_input_grad_relu)(float *dx, float *db_below, const float *dz, const float *w, const void *mask_below,
                                 int64_t rows, int64_t in, int64_t out, int accumulate);

    /* Conv2D: the kernel is (k_h, k_w, in_c, out_c) as Keras stores it, data NHWC; z = conv(x, w) + b,
     * relu as for dense_forward. By im2col + GEMM (z = cols w + b), where cols (rows*out_h*out_w,
     * k_h*k_w*in_c) is scratch the caller keeps for backward, or by the CPU's oneDNN primitives,
     * which need none: conv2d_uses_cols says whether the caller allocates cols and dcols (else they
     * are NULL). */
    int (*conv2d_uses_cols)(const struct conv_geometry *g);
    void (*conv2d_forward)(float *z, float *cols, const float *x, const float *w, const float *b,
                           const struct conv_geometry *g, int64_t rows, int relu);
    /* dw = cols^T dz; db = column sums of dz (+= both with accumulate); dx = col2im(dz w^T) unless
     * dx is NULL (dcols scratch); x is the forward's input */
    void (*conv2d_backward)(float *dx, float *dcols, float *dw, float *db, const float *dz, const float *cols,
                            const float *x, const float *w, const struct conv_geometry *g, int64_t rows,
                            int accumulate);
    /* Max pooling (k_h x k_w windows, padding never wins); argmax keeps each output's input index */
    void (*maxpool_forward)(float *y, int32_t *argmax, const float *x, const struct conv_geometry *g, int64_t rows);
    /* dx = 0, then dx[argmax] += dy */
    void (*maxpool_backward)(float *dx, const float *dy, const int32_t *argmax, const struct conv_geometry *g,
                             int64_t rows);
    /* Average pooling: each output is the mean of its window's cells inside the input (padding is
     * not counted, as in TensorFlow and Keras); backward spreads each dy evenly over those cells. */
    void (*avgpool_forward)(float *y, const float *x, const struct conv_geometry *g, int64_t rows);
    void (*avgpool_backward)(float *dx, const float *dy, const struct conv_geometry *g, int64_t rows);

    /* BatchNormalization over the last axis of n values of c channels, (n, c) row-major (n = rows
     * times height times width). Sums are doubles in backend memory; `count` is how many values
     * they are over (all ranks' when synchronized).
     * batchnorm_sums: sums[j] = sum of x[:, j], sums[c + j] = sum of x[:, j]^2 */
    void (*batchnorm_sums)(double *sums, const float *x, int64_t n, int64_t c);
    /* Training: mean and (biased) variance from the sums, y = gamma (x - mean) / sqrt(var + epsilon)
     * + beta (gamma or beta NULL: 1 or 0); stat keeps mean (c) and 1 / sqrt(var + epsilon) (c) for
     * backward; the moving statistics move toward the batch's: m = m * momentum + b * (1 - momentum) */
    void (*batchnorm_forward_train)(float *y, float *stat, float *moving_mean, float *moving_var, const float *x,
                                    const double *sums, double count, const float *gamma, const float *beta,
                                    float momentum, float epsilon, int64_t n, int64_t c);
    /* Inference: y = gamma (x - moving_mean) / sqrt(moving_var + epsilon) + beta */
    void (*batchnorm_forward_infer)(float *y, const float *x, const float *moving_mean, const float *moving_var,
                                    const float *gamma, const float *beta, float epsilon, int64_t n, int64_t c);
    /* sums[j] = sum of dy[:, j], sums[c + j] = sum of dy[:, j] * xhat[:, j] (xhat from x and stat) */
    void (*batchnorm_backward_sums)(double *sums, const float *dy, const float *x, const float *stat, int64_t n,
                                    int64_t c);
    /* dbeta = sums[0..c), dgamma = sums[c..2c) (NULL: not learned), as floats */
    void (*batchnorm_param_grads)(float *dgamma, float *dbeta, const double *sums, int64_t c);
    /* dx = gamma / sqrt(var + eps) (dy - sums[j] / count - xhat sums[c + j] / count) */
    void (*batchnorm_backward_dx)(float *dx, const float *dy, const float *x, const float *stat, const float *gamma,
                                  const double *sums, double count, int64_t n, int64_t c);

    /* y = act(z), (rows, cols), with the activation's parameter (net/activation.h); y may alias z */
    void (*activation_forward)(float *y, const float *z, int64_t rows, int64_t cols,
                               enum activation act, float param);
    /* dz = dy * act'(z), from the pre-activation z and the output y (z may be y itself for linear,
     * relu, sigmoid, tanh and softmax, which need only y); dz may alias dy */
    void (*activation_backward)(float *dz, const float *dy, const float *z, const float *y, int64_t rows,
                                int64_t cols, enum activation act, float param);

    /* Inverted dropout: y = x * keep / (1 - rate). The keep decision for element j of the row
     * holding global sample s is drawn from (key.seed, RNG_DOMAIN_DROPOUT | layer << 8, key.step,
     * s * ceil(cols / 4) + j / 4), word j % 4, keep when its unit float >= rate. */
    void (*dropout_forward)(float *y, uint8_t *mask, const float *x, const int64_t *sample_ids,
                            int64_t rows, int64_t cols, float rate, struct dropout_key key);
    void (*dropout_backward)(float *dx, const float *dy, const uint8_t *mask, int64_t rows,
                             int64_t cols, float rate);

    /* Adds this batch's loss sum, metric sum and row count to acc[LOSS_ACC_COUNT] (doubles).
     * z: logits of the last layer, y: its output; dz (rows, k) receives dL/dz * grad_scale when
     * not NULL: for fused losses the gradient w.r.t. the logits, for mse w.r.t. y (the caller
     * then applies the activation's backward). */
    void (*loss_forward_backward)(double *acc, float *dz, const float *z, const float *y,
                                  struct loss_targets t, int64_t rows, int64_t k,
                                  struct loss_params p, float grad_scale);

    /* Keras' L1/L2 weight penalty on n weights (after the gradient all-reduce, so every rank adds the
     * same): g += l1 sign(w) + 2 l2 w, and acc[LOSS_ACC_LOSS] += rows * sum(l1 |w| + l2 w^2), so that
     * the loss reported (a mean over rows) includes the penalty as Keras reports it. */
    void (*regularize)(float *g, const float *w, size_t n, float l1, float l2, double *acc, double rows);

    /* Gradient clipping by norm (Keras' clipnorm and global_clipnorm): sumsq[0] = (or += with
     * accumulate) the sum of g^2, a double in backend memory; then g *= clip / max(sqrt(sumsq[0]),
     * clip). Both read the sum in stream order, so a recorded step clips by each step's norm. */
    void (*sum_squares)(double *sumsq, const float *g, size_t n, int accumulate);
    void (*clip_by_norm)(float *g, size_t n, const double *sumsq, float clip);

    /* One optimizer step over n parameters; state arrays as optimizer_state_arrays() says. */
    void (*optimizer_step)(float *w, const float *g, float *state0, float *state1, float *state2, size_t n,
                           struct optimizer_step_params p);

    /* Matrix-product precision: 0 fp32, 1 tf32, 2 bf16 (a backend without them computes fp32);
     * returns the name of what it will use. */
    const char *(*set_precision)(int precision);
    /* Device memory in use and in total, in MiB; -1 where there is no device. */
    int (*memory_info)(double *used_mb, double *total_mb);
    /* Device busy percent over the last sample period (NVML); -1 where not available. */
    int (*utilization)(double *percent);

    /* Replaying a training step as a CUDA graph. What changes from step to step (the step number
     * for dropout keys, the optimizer's effective rate) then comes from device memory, which
     * set_step_scalars fills (in stream order, from host staging `slot` 0 or 1, fenced like the
     * input batches) before dropout and the optimizer run. graph_begin starts recording the
     * backend calls that follow instead of running them (0, or -1 where graphs are not
     * available); graph_end returns the recorded step, graph_launch replays it. The CPU has no
     * graphs: set_step_scalars does nothing and graph_begin says -1. */
    void (*set_step_scalars)(uint32_t step, const struct optimizer_step_params *p, int slot);
    int (*graph_begin)(void);
    void *(*graph_end)(void);
    void (*graph_launch)(void *graph);
    void (*graph_free)(void *graph);

    /* Called first in a helper thread that will call this backend (the batch reader thread waits
     * on fences): CUDA makes the rank's device current in that thread too. */
    void (*bind_thread)(void);
};

extern const struct backend backend_cpu;
/* What the CPU backend computes with: "OpenBLAS 0.3.21 ... (kernel SkylakeX); oneDNN 2.6.3 ..." */
void backend_cpu_libraries(char *out, size_t len);

/* Applies fit.threads to the host's compute libraries, OpenBLAS and OpenMP (0: leave their
 * defaults). */
void backend_set_threads(int64_t threads);

/* The host clock (seconds) once `be` has finished all it was given: profiles time device work. */
double backend_clock(const struct backend *be);

#endif
