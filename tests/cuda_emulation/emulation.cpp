/* Kernel grids, cuBLAS and cuBLASLt of the emulated device (see cuda_runtime.h for what this does
 * and does not check; streams.cpp runs the work in stream order). */
#include "cublasLt.h"
#include <barrier>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <cstdio>
#include <thread>
thread_local dim3 blockIdx, threadIdx, blockDim, gridDim;
static std::barrier<> *block_barrier;
void emu_sync_threads(void) { if (!block_barrier) { fprintf(stderr, "__syncthreads in a serial launch\n"); abort(); } block_barrier->arrive_and_wait(); }
void emu_run_grid(dim3 g, dim3 b, bool sync, std::function<void()> body)
{
    for (unsigned bz = 0; bz < g.z; bz++) for (unsigned by = 0; by < g.y; by++) for (unsigned bx = 0; bx < g.x; bx++) {
        if (!sync) {
            for (unsigned tz = 0; tz < b.z; tz++) for (unsigned ty = 0; ty < b.y; ty++) for (unsigned tx = 0; tx < b.x; tx++) {
                blockIdx = dim3(bx, by, bz); threadIdx = dim3(tx, ty, tz); blockDim = b; gridDim = g; body();
            }
            continue;
        }
        std::barrier<> bar(b.x * b.y * b.z);
        block_barrier = &bar;
        std::vector<std::thread> ts;
        for (unsigned tz = 0; tz < b.z; tz++) for (unsigned ty = 0; ty < b.y; ty++) for (unsigned tx = 0; tx < b.x; tx++)
            ts.emplace_back([=] { blockIdx = dim3(bx, by, bz); threadIdx = dim3(tx, ty, tz); blockDim = b; gridDim = g; body(); });
        for (auto &t : ts) t.join();
        block_barrier = nullptr;
    }
}

/* column-major op(X)[i][j] of X stored with leading dimension ld */
static float at(const float *x, int64_t ld, bool t, int64_t i, int64_t j) { return t ? x[j + i * ld] : x[i + j * ld]; }
/* An input as the tensor cores see it: tf32 keeps 10 mantissa bits, bf16 7 (rounded to nearest,
 * ties away from zero, as cvt.rna does); the products and sums stay fp32 or wider. */
static double as_input(float v, cublasComputeType_t compute)
{
    int drop = compute == CUBLAS_COMPUTE_32F_FAST_TF32 ? 13 : compute == CUBLAS_COMPUTE_32F_FAST_16BF ? 16 : 0;
    if (drop == 0 || !std::isfinite(v))
        return v;
    uint32_t bits;
    memcpy(&bits, &v, 4);
    bits = (bits + (1u << (drop - 1))) & ~((1u << drop) - 1);
    memcpy(&v, &bits, 4);
    return v;
}
/* The relu bit mask of the AUX epilogues: bit i + j * ld (ld in bits) for D's value (i, j). Its
 * layout on a GPU is cuBLASLt's own; dptrain only hands it from one product to another. */
static bool mask_bit(const void *aux, int64_t ld, int64_t i, int64_t j)
{
    uint64_t bit = (uint64_t)(i + j * ld);
    return ((const uint8_t *)aux)[bit / 8] >> (bit % 8) & 1;
}
static void set_mask_bit(void *aux, int64_t ld, int64_t i, int64_t j, bool on)
{
    uint64_t bit = (uint64_t)(i + j * ld);
    uint8_t &byte = ((uint8_t *)aux)[bit / 8];
    byte = on ? byte | (uint8_t)(1u << (bit % 8)) : byte & (uint8_t)~(1u << (bit % 8));
}
/* D = alpha op(A) op(B) + beta C in double from the inputs rounded for `compute`, then the epilogue as cuBLASLt documents it: BIAS adds
 * bias[i] (a vector along D's rows), RELU clamps at 0 (with AUX, keeping which values were > 0 in
 * the bit mask), DRELU zeroes the values whose mask bit is 0, BGRAD then writes D's row sums
 * (m) into bias, BGRADA writes the row sums of op(A) (m) into bias. */
static void matmul(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a, int64_t lda, const float *b,
                   int64_t ldb, float beta, const float *c, int64_t ldc, float *d, int64_t ldd, int epi, const float *bias,
                   cublasComputeType_t compute, void *aux = nullptr, int64_t aux_ld = 0)
{
    const bool relu_aux = epi == CUBLASLT_EPILOGUE_RELU_AUX_BIAS, drelu = (epi & CUBLASLT_EPILOGUE_DRELU) == CUBLASLT_EPILOGUE_DRELU;
    if ((relu_aux || drelu) && (!aux || aux_ld % 128 || aux_ld < m)) {
        fprintf(stderr, "cublasLtMatmul: the relu bit mask needs EPILOGUE_AUX_POINTER and an AUX_LD (%lld) divisible by 128 and >= %lld rows\n",
                (long long)aux_ld, (long long)m);
        abort();
    }
    /* op(A) by rows and op(B) by columns, contiguous, so the sums run over adjacent values */
    std::vector<double> rows_a(m * k), cols_b(n * k);
    for (int64_t i = 0; i < m; i++) for (int64_t p = 0; p < k; p++) rows_a[i * k + p] = as_input(at(a, lda, ta, i, p), compute);
    for (int64_t j = 0; j < n; j++) for (int64_t p = 0; p < k; p++) cols_b[j * k + p] = as_input(at(b, ldb, tb, p, j), compute);
    std::vector<float> out(m * n);
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = 0; i < m; i++) {
            const double *ra = &rows_a[i * k], *cb = &cols_b[j * k];
            double s = 0;
            for (int64_t p = 0; p < k; p++) s += ra[p] * cb[p];
            double v = alpha * s + (beta != 0 ? beta * c[i + j * ldc] : 0.0);
            if (drelu) {
                if (!mask_bit(aux, aux_ld, i, j)) v = 0;
                out[i + j * m] = (float)v;
                continue;
            }
            if (epi & CUBLASLT_EPILOGUE_BIAS) v += bias[i];
            if (relu_aux) set_mask_bit(aux, aux_ld, i, j, v > 0);
            if (epi & CUBLASLT_EPILOGUE_RELU) v = v > 0 ? v : 0;
            out[i + j * m] = (float)v;
        }
    if (epi == CUBLASLT_EPILOGUE_DRELU_BGRAD)
        for (int64_t i = 0; i < m; i++) { double s = 0; for (int64_t j = 0; j < n; j++) s += out[i + j * m]; ((float *)bias)[i] = (float)s; }
    if (epi == CUBLASLT_EPILOGUE_BGRADA)
        for (int64_t i = 0; i < m; i++) { double s = 0; for (int64_t p = 0; p < k; p++) s += at(a, lda, ta, i, p); ((float *)bias)[i] = (float)s; }
    for (int64_t j = 0; j < n; j++) for (int64_t i = 0; i < m; i++) d[i + j * ldd] = out[i + j * m];
}
static void *blas_workspace; /* the workspace cuBLAS uses: ours, or its own pool (NULL) */
cublasStatus_t cublasSetWorkspace(cublasHandle_t, void *w, size_t)
{
    blas_workspace = w;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t)
{
    blas_workspace = nullptr; /* cuBLAS: "resets the workspace to the default workspace pool" */
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                            const void *a, cudaDataType, int lda, const void *b, cudaDataType, int ldb, const void *beta, void *c,
                            cudaDataType, int ldc, cublasComputeType_t compute, int)
{
    if (!blas_workspace && emu_capturing_here()) {
        fprintf(stderr, "emulated cuBLAS: cublasGemmEx inside a stream capture would allocate from cuBLAS' pool "
                        "(no workspace of ours: was cublasSetStream called after cublasSetWorkspace?)\n");
        return CUBLAS_STATUS_ALLOC_FAILED;
    }
    emu_check_device(a, 4, "cublasGemmEx A", false);
    emu_check_device(b, 4, "cublasGemmEx B", false);
    emu_check_device(c, 4, "cublasGemmEx C", false);
    float al = *(const float *)alpha, be = *(const float *)beta;
    emu_enqueue([=] { matmul(ta == CUBLAS_OP_T, tb == CUBLAS_OP_T, m, n, k, al, (const float *)a, lda, (const float *)b, ldb, be,
                             (const float *)c, ldc, (float *)c, ldc, 1, nullptr, compute); });
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v, size_t)
{
    if (a == CUBLASLT_MATMUL_DESC_TRANSA) d->ta = *(const cublasOperation_t *)v;
    if (a == CUBLASLT_MATMUL_DESC_TRANSB) d->tb = *(const cublasOperation_t *)v;
    if (a == CUBLASLT_MATMUL_DESC_EPILOGUE) d->epi = *(const int *)v;
    if (a == CUBLASLT_MATMUL_DESC_BIAS_POINTER) d->bias = *(const float *const *)v;
    if (a == CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER) d->aux = *(void *const *)v;
    if (a == CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD) d->aux_ld = *(const int64_t *)v;
    return CUBLAS_STATUS_SUCCESS;
}
/* cuBLASLt's answers, and the ways real cuBLASLt may differ from one GPU or shape to another, on
 * request (tests/e2e/e2e_cuda_emulated.sh runs each):
 *   DPTRAIN_EMULATE_NO_LT=1            no algorithm for any product (the plain paths)
 *   DPTRAIN_EMULATE_LT_REFUSE=a,b      no algorithm for these epilogues (bias, relu_bias,
 *                                      relu_aux_bias, drelu_bgrad, bgrada): a partial support
 *   DPTRAIN_EMULATE_LT_RUN_REFUSE=a,b  algorithms offered and checked, then refused by cublasLtMatmul
 *                                      (CUBLAS_STATUS_NOT_SUPPORTED)
 *   DPTRAIN_EMULATE_LT_BAD_FIRST=1     the heuristic's first candidate fails cublasLtMatmulAlgoCheck,
 *                                      and cublasLtMatmul calls it an invalid value
 *   DPTRAIN_EMULATE_LT_TRANSIENT=1     the first question about each shape fails (an internal error)
 *   DPTRAIN_EMULATE_STALE_ERROR=1      the heuristic leaves a non-sticky CUDA error behind
 * Always: the heuristic answers only with the epilogue's bias and relu-mask pointers set (an answer
 * holds for the pointers it was given), and may not be asked during a stream capture. */
static bool epilogue_listed(const char *var, int epi)
{
    static const struct { int epi; const char *name; } names[] = {
        {CUBLASLT_EPILOGUE_BIAS, "bias"}, {CUBLASLT_EPILOGUE_RELU_BIAS, "relu_bias"},
        {CUBLASLT_EPILOGUE_RELU_AUX_BIAS, "relu_aux_bias"}, {CUBLASLT_EPILOGUE_DRELU_BGRAD, "drelu_bgrad"},
        {CUBLASLT_EPILOGUE_BGRADA, "bgrada"}};
    const char *list = getenv(var);
    if (!list)
        return false;
    for (auto &n : names)
        if (n.epi == epi) {
            std::string padded = "," + std::string(list) + ",";
            return padded.find("," + std::string(n.name) + ",") != std::string::npos;
        }
    return false;
}
/* plans are made before a step is captured: a question during a capture is a bug */
static void refuse_in_capture(const char *call)
{
    if (emu_capturing_here()) {
        fprintf(stderr, "emulated cuBLASLt: %s during a stream capture (plans are made before)\n", call);
        abort();
    }
}
static bool uses_bias(int epi) { return (epi & CUBLASLT_EPILOGUE_BIAS) || epi == CUBLASLT_EPILOGUE_DRELU_BGRAD || epi == CUBLASLT_EPILOGUE_BGRADA; }
static bool uses_mask(int epi) { return epi == CUBLASLT_EPILOGUE_RELU_AUX_BIAS || (epi & CUBLASLT_EPILOGUE_DRELU) == CUBLASLT_EPILOGUE_DRELU; }
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t d, cublasLtMatrixLayout_t la, cublasLtMatrixLayout_t lb,
                                              cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t *results, int *found)
{
    refuse_in_capture("cublasLtMatmulAlgoGetHeuristic");
    if (getenv("DPTRAIN_EMULATE_STALE_ERROR")) /* a probe that leaves an error behind */
        emu_set_last_error(cudaErrorInvalidValue);
    *found = 0;
    if (getenv("DPTRAIN_EMULATE_LT_TRANSIENT")) {
        static std::set<std::tuple<int, uint64_t, uint64_t, uint64_t, uint64_t>> asked;
        if (asked.insert({d->epi, la->rows, la->cols, lb->rows, lb->cols}).second)
            return CUBLAS_STATUS_INTERNAL_ERROR;
    }
    if (getenv("DPTRAIN_EMULATE_NO_LT") || epilogue_listed("DPTRAIN_EMULATE_LT_REFUSE", d->epi) ||
        (d->epi == CUBLASLT_EPILOGUE_BGRADA && d->ta == CUBLAS_OP_T) || (uses_bias(d->epi) && !d->bias) ||
        (uses_mask(d->epi) && !d->aux))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    for (int i = 0; i < 3 && i < requested; i++)
        results[(*found)++] = cublasLtMatmulHeuristicResult_t{{i}, 0, CUBLAS_STATUS_SUCCESS, 1.0f, {0, 0, 0, 0}};
    return CUBLAS_STATUS_SUCCESS;
}
static bool bad_candidate(const cublasLtMatmulAlgo_t *algo) { return algo->candidate == 0 && getenv("DPTRAIN_EMULATE_LT_BAD_FIRST"); }
cublasStatus_t cublasLtMatmulAlgoCheck(cublasLtHandle_t, cublasLtMatmulDesc_t, cublasLtMatrixLayout_t, cublasLtMatrixLayout_t,
                                       cublasLtMatrixLayout_t, cublasLtMatrixLayout_t, const cublasLtMatmulAlgo_t *algo,
                                       cublasLtMatmulHeuristicResult_t *result)
{
    refuse_in_capture("cublasLtMatmulAlgoCheck");
    *result = cublasLtMatmulHeuristicResult_t{*algo, 0, CUBLAS_STATUS_SUCCESS, 1.0f, {0, 0, 0, 0}};
    return bad_candidate(algo) ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
}
/* DPTRAIN_EMULATE_STATS=1: at exit, how many products of each epilogue were queued (stderr), so a
 * test can tell which fused paths a run took; streams.cpp adds the size of each captured graph. */
static std::map<int, long> epilogue_counts;
static void print_epilogue_counts(void)
{
    fprintf(stderr, "CUDA emulation: cuBLASLt epilogues queued:");
    for (auto [epi, count] : epilogue_counts) fprintf(stderr, " %d:%ld", epi, count);
    fprintf(stderr, "\n");
}
static void count_epilogue(int epi)
{
    static bool on = getenv("DPTRAIN_EMULATE_STATS") && atexit(print_epilogue_counts) == 0;
    if (on) epilogue_counts[epi]++;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t d, const void *alpha, const void *a, cublasLtMatrixLayout_t la,
                              const void *b, cublasLtMatrixLayout_t lb, const void *beta, const void *c, cublasLtMatrixLayout_t lc,
                              void *dout, cublasLtMatrixLayout_t ld, const cublasLtMatmulAlgo_t *algo, void *, size_t, cudaStream_t stream)
{
    if (bad_candidate(algo)) /* an algorithm the check rejects is not valid for this problem */
        return CUBLAS_STATUS_INVALID_VALUE;
    if (epilogue_listed("DPTRAIN_EMULATE_LT_RUN_REFUSE", d->epi))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    count_epilogue(d->epi);
    bool ta = d->ta == CUBLAS_OP_T, tb = d->tb == CUBLAS_OP_T;
    int64_t m = ld->rows, n = ld->cols, k = ta ? la->rows : la->cols;
    /* layouts must agree with the operation */
    if ((int64_t)(ta ? la->cols : la->rows) != m || (int64_t)(tb ? lb->cols : lb->rows) != k || (int64_t)(tb ? lb->rows : lb->cols) != n ||
        (int64_t)lc->rows != m || (int64_t)lc->cols != n) { fprintf(stderr, "cublasLtMatmul: layouts disagree\n"); abort(); }
    emu_check_device(a, 4, "cublasLtMatmul A", false);
    emu_check_device(b, 4, "cublasLtMatmul B", false);
    emu_check_device(c, 4, "cublasLtMatmul C", false);
    emu_check_device(dout, 4, "cublasLtMatmul D", false);
    if (uses_bias(d->epi))
        emu_check_device(d->bias, 4, "cublasLtMatmul bias", false);
    if (uses_mask(d->epi))
        emu_check_device(d->aux, 1, "cublasLtMatmul relu mask", false);
    float al = *(const float *)alpha, be = *(const float *)beta;
    emu_desc dd = *d;
    int64_t lda = la->ld, ldb = lb->ld, ldc = lc->ld, ldd = ld->ld;
    emu_enqueue_on(stream, [=] { matmul(ta, tb, m, n, k, al, (const float *)a, lda, (const float *)b, ldb, be, (const float *)c, ldc,
                                        (float *)dout, ldd, dd.epi, dd.bias, dd.compute, dd.aux, dd.aux_ld); });
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" int nvml_probe_open(const char *) { return -1; }
extern "C" int nvml_probe_utilization(double *) { return -1; }
