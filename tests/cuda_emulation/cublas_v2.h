#pragma once
#include "cuda_runtime.h"
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_ALLOC_FAILED = 3, CUBLAS_STATUS_INVALID_VALUE = 7,
               CUBLAS_STATUS_INTERNAL_ERROR = 14, CUBLAS_STATUS_NOT_SUPPORTED = 15 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_FAST_TF32 = 77, CUBLAS_COMPUTE_32F_FAST_16BF = 75 } cublasComputeType_t;
typedef enum { CUDA_R_32F = 0 } cudaDataType;
#define CUBLAS_GEMM_DEFAULT (-1)
typedef struct emu_blas *cublasHandle_t;
inline const char *cublasGetStatusString(cublasStatus_t) { return "emulated cuBLAS error"; }
inline cublasStatus_t cublasCreate(cublasHandle_t *h) { *h = (cublasHandle_t)0x20; return CUBLAS_STATUS_SUCCESS; }
/* As cuBLAS documents: cublasSetStream puts the handle back on cuBLAS' own workspace pool, so a
 * workspace set before it is lost; a GEMM without a workspace of ours would allocate from that pool,
 * which inside a stream capture adds memory nodes to the graph or fails: here it fails. */
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *, size_t);
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t);
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *a, cudaDataType, int lda, const void *b, cudaDataType,
                            int ldb, const void *beta, void *c, cudaDataType, int ldc, cublasComputeType_t, int);
