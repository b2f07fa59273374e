/* The operations of the CUDA backend, one file per family, gathered into its table by
 * backend_cuda.cu: memory, input pipeline, step scalars and graphs (device_memory.cu), dense
 * products (backend_cuda.cu, over gemm.cu), convolution and pooling (conv_pool.cu), activations
 * and dropout (activations.cu), losses and metrics (loss.cu), optimizers (optimizer.cu).
 * Internal to cuda/: the rest of dptrain sees only struct backend (backend_cuda.h). */
#ifndef DPTRAIN_BACKEND_OPS_H
#define DPTRAIN_BACKEND_OPS_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "net/backend.h"

/* memory and streams (device_memory.cu) */
void *cuda_alloc(size_t bytes, const char *what);
void cuda_free(void *p);
void cuda_upload(void *dst, const void *src, size_t bytes);
void cuda_download(void *dst, const void *src, size_t bytes);
void cuda_zero(void *p, size_t bytes);
void cuda_synchronize(void);
void *cuda_host_alloc(size_t bytes, const char *what);
void cuda_host_free(void *p);
void cuda_upload_batch_async(int slot, const struct host_copy *copies, int ncopies);
void cuda_host_fence_record(int slot);
void cuda_host_fence_wait(int slot);
void cuda_set_step_scalars(uint32_t step, const struct optimizer_step_params *p, int slot);
/* The step and optimizer scalars in device memory for kernels to read (NULL before the first
 * set_step_scalars: kernels then use the values passed at launch). */
const uint32_t *device_step(void);
const struct optimizer_step_params *device_params(void);
int cuda_graph_begin(void);
void *cuda_graph_end(void);
void cuda_graph_launch(void *graph);
void cuda_graph_free(void *graph);

/* dense products (backend_cuda.cu) */
void cuda_dense_forward(float *z, const float *x, const float *w, const float *b, int64_t rows, int64_t in,
                        int64_t out, int relu);
int cuda_dense_forward_relu_mask(float *z, void *mask, const float *x, const float *w, const float *b,
                                 int64_t rows, int64_t in, int64_t out);
void cuda_dense_backward(float *dx, float *dw, float *db, const float *dz, const float *x, const float *w,
                         int64_t rows, int64_t in, int64_t out, int accumulate);
size_t cuda_relu_mask_bytes(int64_t rows, int64_t out);

/* convolution and pooling (conv_pool.cu) */
void cuda_conv2d_forward(float *z, float *cols, const float *x, const float *w, const float *b,
                         const struct conv_geometry *g, int64_t rows, int relu);
int cuda_conv2d_uses_cols(const struct conv_geometry *g);
void cuda_conv2d_backward(float *dx, float *dcols, float *dw, float *db, const float *dz, const float *cols,
                          const float *x, const float *w, const struct conv_geometry *g, int64_t rows, int accumulate);
void cuda_maxpool_forward(float *y, int32_t *argmax, const float *x, const struct conv_geometry *g, int64_t rows);
void cuda_maxpool_backward(float *dx, const float *dy, const int32_t *argmax, const struct conv_geometry *g,
                           int64_t rows);
void cuda_avgpool_forward(float *y, const float *x, const struct conv_geometry *g, int64_t rows);
void cuda_avgpool_backward(float *dx, const float *dy, const struct conv_geometry *g, int64_t rows);
void cuda_batchnorm_sums(double *sums, const float *x, int64_t n, int64_t c);
void cuda_batchnorm_forward_train(float *y, float *stat, float *moving_mean, float *moving_var, const float *x,
                                  const double *sums, double count, const float *gamma, const float *beta,
                                  float momentum, float epsilon, int64_t n, int64_t c);
void cuda_batchnorm_forward_infer(float *y, const float *x, const float *moving_mean, const float *moving_var,
                                  const float *gamma, const float *beta, float epsilon, int64_t n, int64_t c);
void cuda_batchnorm_backward_sums(double *sums, const float *dy, const float *x, const float *stat, int64_t n,
                                  int64_t c);
void cuda_batchnorm_param_grads(float *dgamma, float *dbeta, const double *sums, int64_t c);
void cuda_batchnorm_backward_dx(float *dx, const float *dy, const float *x, const float *stat, const float *gamma,
                                const double *sums, double count, int64_t n, int64_t c);
/* Whether this build has code for the current device (asked of one of its kernels). */
cudaError_t conv_kernel_attributes(cudaFuncAttributes *attr);

/* activations and dropout (activations.cu) */
void cuda_activation_forward(float *y, const float *z, int64_t rows, int64_t cols, enum activation act, float param);
void cuda_activation_backward(float *dz, const float *dy, const float *z, const float *y, int64_t rows, int64_t cols,
                              enum activation act, float param);
void cuda_dropout_forward(float *y, uint8_t *mask, const float *x, const int64_t *ids, int64_t rows,
                          int64_t cols, float rate, struct dropout_key key);
void cuda_dropout_backward(float *dx, const float *dy, const uint8_t *mask, int64_t rows, int64_t cols, float rate);

/* losses (loss.cu) and optimizers (optimizer.cu) */
void cuda_loss_forward_backward(double *acc, float *dz, const float *z, const float *y, struct loss_targets t,
                                int64_t rows, int64_t k, struct loss_params p, float grad_scale);
void cuda_regularize(float *g, const float *w, size_t n, float l1, float l2, double *acc, double rows);
void cuda_sum_squares(double *sumsq, const float *g, size_t n, int accumulate);
void cuda_clip_by_norm(float *g, size_t n, const double *sumsq, float clip);
void cuda_optimizer_step(float *w, const float *g, float *s0, float *s1, float *s2, size_t n,
                         struct optimizer_step_params p);

#endif
