/* Matrix products of the CUDA backend: cuBLAS GEMMs in the chosen precision, and the Dense
 * products through cuBLASLt with fused epilogues (bias, and relu where asked, applied by the
 * forward GEMM; bias gradient computed by the weight-gradient GEMM; a relu layer's gradients by the
 * next layer's input-gradient GEMM), falling back to plain GEMMs plus kernels where cuBLASLt offers
 * no algorithm. Column-major views of row-major data, as in backend_cuda.cu.
 * STATUS: compiled in CI; not yet run on a GPU. */
#ifndef DPTRAIN_CUDA_GEMM_H
#define DPTRAIN_CUDA_GEMM_H

#include <cublas_v2.h>
#include <stdint.h>

/* Creates the handles (once). */
void gemm_init(void);

/* 0 fp32, 1 tf32 (inputs rounded to tf32 on tensor cores), 2 bf16 (inputs rounded to bf16,
 * fp32 accumulation; weights and optimizer state stay fp32). Returns the name. */
const char *gemm_set_precision(int precision);

/* C (m x n, ld ldc) = alpha op(A) op(B) + beta C, all fp32 in memory. */
void gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
          int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* Row-major z (rows, out) = x (rows, in) w (in, out) + b, then max(z, 0) when relu is 1. With
 * relu and relu_mask (gemm_relu_mask_bytes), also keeps which z > 0 there for
 * gemm_dense_input_grad_relu; returns 1 when it did. */
int gemm_dense_forward(float *z, void *relu_mask, const float *x, const float *w, const float *b, int64_t rows,
                       int64_t in, int64_t out, int relu);
size_t gemm_relu_mask_bytes(int64_t rows, int64_t out);

/* dw (in, out) = x^T dz and db (out) = column sums of dz (unless db is NULL); += with accumulate. */
void gemm_dense_weight_grad(float *dw, float *db, const float *dz, const float *x, int64_t rows, int64_t in,
                            int64_t out, int accumulate);

/* dx (rows, in) = (dz w^T) * [z > 0 of the layer below, from its relu mask], and db_below (in) =
 * (+= with accumulate) column sums of that dx, in one product (cuBLASLt DRELU_BGRAD). Returns 0,
 * having done nothing, where cuBLASLt offers no algorithm. */
int gemm_dense_input_grad_relu(float *dx, float *db_below, const float *dz, const float *w, const void *mask_below,
                               int64_t rows, int64_t in, int64_t out, int accumulate);

#endif
