#include "gemm.h"

#include <cublasLt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_check.h"

#define LT_CHECK(expr)                                                                                   \
    do {                                                                                                 \
        cublasStatus_t s_ = (expr);                                                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                 \
            dp_die(DP_EXIT_INTERNAL, "cuBLASLt: %s failed: %s (%s:%d)", #expr, cublasGetStatusString(s_),   \
                   __FILE__, __LINE__);                                                                  \
    } while (0)

static cublasHandle_t blas;
static cublasLtHandle_t lt;
static cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
static void *workspace;
static const size_t WORKSPACE_BYTES = 32u << 20;

void gemm_init(void)
{
    if (blas)
        return;
    CUBLAS_CHECK(cublasCreate(&blas));
    LT_CHECK(cublasLtCreate(&lt));
    CUDA_CHECK(cudaMalloc(&workspace, WORKSPACE_BYTES));
    /* Everything runs on the per-thread default stream (nvcc --default-stream per-thread), which
     * can be recorded into a CUDA graph; the libraries must be told so explicitly. */
    CUBLAS_CHECK(cublasSetStream(blas, cudaStreamPerThread));
    /* Then cuBLAS' workspace for the legacy API, so it never allocates behind our back (inside a
     * captured graph that would add memory nodes or fail). The stream first: cublasSetStream puts
     * the handle back on cuBLAS' own pool, so a workspace set before it is lost. */
    CUBLAS_CHECK(cublasSetWorkspace(blas, workspace, WORKSPACE_BYTES));
}

/* ---- plan cache: one cuBLASLt descriptor, layouts and checked algorithms per product shape ---- */

enum { CANDIDATES = 8 };

struct lt_plan {
    int used, epilogue;
    int64_t m, n, k, aux_ld;
    cublasOperation_t ta, tb;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo[CANDIDATES]; /* the heuristic's answers that cublasLtMatmulAlgoCheck passed */
    int algos, current;                    /* how many; the one in use (a refused one is skipped) */
    int supported;                         /* 0: no algorithm for this shape; the plain path */
};

enum { PLAN_SLOTS = 64 };
static struct lt_plan plans[PLAN_SLOTS];

/* Plans are made (descriptors, heuristic) and cleared only outside a stream capture: inside one,
 * a missing plan means the plain path for that product, never a library call that may allocate. */
static int capturing(void)
{
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(cudaStreamPerThread, &status));
    return status != cudaStreamCaptureStatusNone;
}

static void destroy_plan(struct lt_plan *p)
{
    cublasLtMatmulDescDestroy(p->desc);
    cublasLtMatrixLayoutDestroy(p->a);
    cublasLtMatrixLayoutDestroy(p->b);
    cublasLtMatrixLayoutDestroy(p->c);
}

static void clear_plans(void)
{
    DP_ASSERT(!capturing());
    for (int i = 0; i < PLAN_SLOTS; i++) {
        struct lt_plan *p = &plans[i];
        if (p->used && p->supported)
            destroy_plan(p);
        p->used = 0;
    }
}

const char *gemm_set_precision(int precision)
{
    static const cublasComputeType_t types[] = {CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32,
                                                CUBLAS_COMPUTE_32F_FAST_16BF};
    static const char *const names[] = {"fp32", "tf32", "bf16"};
    if (precision < 0 || precision > 2)
        precision = 1;
    if (compute != types[precision])
        clear_plans();
    compute = types[precision];
    return names[precision];
}

/* The pointers a product runs with: the heuristic is asked with these (cuBLASLt may pick by
 * their alignment), and every run sets them again. */
struct lt_operands {
    const void *bias, *aux;
};

static void set_operands(struct lt_plan *p, const struct lt_operands *o)
{
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &o->bias, sizeof o->bias));
    if (p->aux_ld)
        LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &o->aux, sizeof o->aux));
}

/* Asks the heuristic for up to CANDIDATES algorithms and keeps those cublasLtMatmulAlgoCheck
 * passes. Returns 1 with some, 0 when cuBLASLt has none for the shape (remembered: the plain
 * path from then on), -1 on any other failure (not remembered: asked again next time). */
static int choose_algorithms(struct lt_plan *p)
{
    cublasLtMatmulPreference_t pref;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    LT_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &WORKSPACE_BYTES,
                                                  sizeof WORKSPACE_BYTES));
    cublasLtMatmulHeuristicResult_t results[CANDIDATES];
    int found = 0;
    cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(lt, p->desc, p->a, p->b, p->c, p->c, pref, CANDIDATES, results, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    /* A probe that may fail inside the library can leave a non-sticky error behind, which the next
     * launch check would blame on an innocent kernel: cleared here (its answer is in st/found). */
    (void)cudaGetLastError();
    if (st != CUBLAS_STATUS_SUCCESS && st != CUBLAS_STATUS_NOT_SUPPORTED)
        return -1;
    p->algos = 0;
    for (int i = 0; st == CUBLAS_STATUS_SUCCESS && i < found && i < CANDIDATES; i++) {
        cublasLtMatmulHeuristicResult_t checked;
        if (cublasLtMatmulAlgoCheck(lt, p->desc, p->a, p->b, p->c, p->c, &results[i].algo, &checked) ==
            CUBLAS_STATUS_SUCCESS)
            p->algo[p->algos++] = results[i].algo;
        (void)cudaGetLastError();
    }
    return p->algos > 0;
}

/* DPTRAIN_LT_OFF=bias,relu_bias,relu_aux_bias,drelu_bgrad,bgrada (any of them): products with
 * these epilogues take the plain path, so tools/bench-gpu.sh can time each fusion against the
 * unfused kernels on the GPU. */
static int epilogue_off(int epilogue)
{
    static const struct {
        int epilogue;
        const char *name;
    } names[] = {{CUBLASLT_EPILOGUE_BIAS, "bias"},
                 {CUBLASLT_EPILOGUE_RELU_BIAS, "relu_bias"},
                 {CUBLASLT_EPILOGUE_RELU_AUX_BIAS, "relu_aux_bias"},
                 {CUBLASLT_EPILOGUE_DRELU_BGRAD, "drelu_bgrad"},
                 {CUBLASLT_EPILOGUE_BGRADA, "bgrada"}};
    const char *off = getenv("DPTRAIN_LT_OFF");
    if (!off || !*off)
        return 0;
    char list[256], name[32];
    snprintf(list, sizeof list, ",%s,", off);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].epilogue == epilogue) {
            snprintf(name, sizeof name, ",%s,", names[i].name);
            return strstr(list, name) != NULL;
        }
    return 0;
}

/* Column-major D (m x n) = op(A) op(B) (+ C with beta): A is (m x k), or (k x m) with ta = T
 * (BGRADA works only with a non-transposed A); B is (k x n), or (n x k) with tb = T. aux_ld: the
 * leading dimension in bits of the relu bit mask of the AUX epilogues (0 for the others). Returns
 * NULL where the plain path must do the product (no plan, and none may be made now). */
static struct lt_plan *plan_for(int epilogue, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                                int64_t k, int64_t aux_ld, const struct lt_operands *operands)
{
    struct lt_plan *free_slot = NULL;
    for (int i = 0; i < PLAN_SLOTS; i++) {
        struct lt_plan *p = &plans[i];
        if (p->used && p->epilogue == epilogue && p->m == m && p->n == n && p->k == k && p->ta == ta &&
            p->tb == tb && p->aux_ld == aux_ld)
            return p->supported ? p : NULL;
        if (!p->used && !free_slot)
            free_slot = p;
    }
    if (capturing() || epilogue_off(epilogue))
        return NULL;
    if (!free_slot) { /* more shapes than slots: start over */
        clear_plans();
        free_slot = &plans[0];
    }
    struct lt_plan *p = free_slot;
    *p = (struct lt_plan){1, epilogue, m, n, k, aux_ld, ta, tb};
    cublasLtEpilogue_t epi = (cublasLtEpilogue_t)epilogue;
    LT_CHECK(cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    if (aux_ld)
        LT_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &aux_ld, sizeof aux_ld));
    if (ta == CUBLAS_OP_N)
        LT_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, (uint64_t)m, (uint64_t)k, m));
    else
        LT_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, (uint64_t)k, (uint64_t)m, k));
    if (tb == CUBLAS_OP_N)
        LT_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, (uint64_t)k, (uint64_t)n, k));
    else
        LT_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, (uint64_t)n, (uint64_t)k, n));
    LT_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, (uint64_t)m, (uint64_t)n, m));
    set_operands(p, operands);
    int chosen = choose_algorithms(p);
    if (chosen > 0) {
        p->supported = 1;
        return p;
    }
    destroy_plan(p);
    p->supported = 0;
    if (chosen < 0)
        p->used = 0; /* a transient failure: ask again next time */
    return NULL;
}

/* Runs the product with the plan's current algorithm. One that cuBLASLt refuses at run time
 * (CUBLAS_STATUS_NOT_SUPPORTED) is dropped for the next; with none left the plan is marked
 * unsupported (descriptors kept until the next clear, which may not happen inside a capture) and
 * 0 returned: the caller does the product on the plain path. Returns 1 when it ran. */
static int run_plan(struct lt_plan *p, const struct lt_operands *operands, float beta, const float *a,
                    const float *b, float *c)
{
    const float alpha = 1.0f;
    set_operands(p, operands);
    while (p->current < p->algos) {
        cublasStatus_t st = cublasLtMatmul(lt, p->desc, &alpha, a, p->a, b, p->b, &beta, c, p->c, c, p->c,
                                           &p->algo[p->current], workspace, WORKSPACE_BYTES, cudaStreamPerThread);
        if (st == CUBLAS_STATUS_SUCCESS)
            return 1;
        if (st != CUBLAS_STATUS_NOT_SUPPORTED)
            dp_die(DP_EXIT_INTERNAL, "cuBLASLt: cublasLtMatmul (epilogue %d, %lld x %lld x %lld) failed: %s (%s:%d)",
                   p->epilogue, (long long)p->m, (long long)p->n, (long long)p->k, cublasGetStatusString(st),
                   __FILE__, __LINE__);
        p->current++;
    }
    p->supported = 0;
    return 0;
}

/* cuBLASLt's heuristic assumes 256-byte aligned matrices and vectors unless told otherwise; the
 * buffers here come from cudaMalloc or the 64-float aligned arenas, and anything else takes the
 * plain path. */
static int aligned(const void *p) { return ((uintptr_t)p & 255) == 0; }

/* ---- plain GEMM ---- */

void gemm(cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
          int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    CUBLAS_CHECK(cublasGemmEx(blas, ta, tb, (int)m, (int)n, (int)k, &alpha, a, CUDA_R_32F, (int)lda, b, CUDA_R_32F,
                              (int)ldb, &beta, c, CUDA_R_32F, (int)ldc, compute, CUBLAS_GEMM_DEFAULT));
}

__global__ void broadcast_bias_kernel(float *z, const float *b, int64_t rows, int64_t out)
{
    GRID_STRIDE(i, rows * out) z[i] = b[i % out];
}

/* db[j] = (or += with accumulate) sum over rows of dz[r][j]: one block per COLSUM_X columns, rows
 * split over the block's COLSUM_Y warps; launched with exactly (COLSUM_X, COLSUM_Y) threads, which
 * size part[][] */
enum { COLSUM_X = 32, COLSUM_Y = 8 };
static_assert(COLSUM_X == 32, "one warp per row of the block: threadIdx.x spans a warp");

__global__ void __launch_bounds__(COLSUM_X * COLSUM_Y) column_sums_kernel(float *db, const float *dz, int64_t rows,
                                                                           int64_t out, int accumulate)
{
    __shared__ float part[COLSUM_Y][COLSUM_X + 1];
    int64_t j = blockIdx.x * COLSUM_X + threadIdx.x;
    float s = 0.0f;
    if (j < out)
        for (int64_t r = threadIdx.y; r < rows; r += blockDim.y)
            s += dz[r * out + j];
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && j < out) {
        for (int y = 1; y < (int)blockDim.y; y++)
            s += part[y][threadIdx.x];
        db[j] = accumulate ? db[j] + s : s;
    }
}

__global__ void add_kernel(float *dst, const float *src, int64_t n)
{
    GRID_STRIDE(i, n) dst[i] += src[i];
}

/* ---- Dense products ---- */

__global__ void relu_in_place_kernel(float *z, int64_t n)
{
    GRID_STRIDE(i, n) z[i] = z[i] > 0.0f ? z[i] : 0.0f;
}

/* cuBLASLt's relu bit mask: a bit per value, its leading dimension a multiple of 128 bits. */
static int64_t relu_mask_ld(int64_t out) { return (out + 127) / 128 * 128; }

size_t gemm_relu_mask_bytes(int64_t rows, int64_t out) { return (size_t)(relu_mask_ld(out) / 8 * rows); }

int gemm_dense_forward(float *z, void *relu_mask, const float *x, const float *w, const float *b, int64_t rows,
                       int64_t in, int64_t out, int relu)
{
    /* col-major: Z^T (out x rows) = W^T (out x in) X^T (in x rows) + b, b along the out rows */
    int keep_mask = relu && relu_mask && aligned(relu_mask);
    int epilogue = keep_mask ? CUBLASLT_EPILOGUE_RELU_AUX_BIAS : relu ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
    const struct lt_operands operands = {b, keep_mask ? relu_mask : NULL};
    struct lt_plan *p = aligned(z) && aligned(x) && aligned(w) && aligned(b)
                            ? plan_for(epilogue, CUBLAS_OP_N, CUBLAS_OP_N, out, rows, in, keep_mask ? relu_mask_ld(out) : 0,
                                       &operands)
                            : NULL;
    if (p && run_plan(p, &operands, 0.0f, w, x, z))
        return keep_mask;
    if (keep_mask) /* no algorithm keeps the mask for this shape: without it */
        return gemm_dense_forward(z, NULL, x, w, b, rows, in, out, relu);
    broadcast_bias_kernel<<<blocks_for(rows * out), THREADS>>>(z, b, rows, out);
    LAUNCH_CHECK();
    gemm(CUBLAS_OP_N, CUBLAS_OP_N, out, rows, in, 1.0f, w, out, x, in, 1.0f, z, out);
    if (relu) {
        relu_in_place_kernel<<<blocks_for(rows * out), THREADS>>>(z, rows * out);
        LAUNCH_CHECK();
    }
    return 0;
}

/* Where an epilogue writes a bias gradient (it cannot add): straight into db, or, to accumulate,
 * into a scratch vector that bias_grad_finish adds. Training never accumulates, so the scratch
 * is never allocated while a graph is being captured. */
static float *bias_grad_target(float *db, int64_t n, int accumulate)
{
    static float *scratch;
    static int64_t len;
    if (!accumulate)
        return db;
    if (len < n) {
        if (scratch)
            CUDA_CHECK(cudaFree(scratch));
        CUDA_CHECK(cudaMalloc(&scratch, (size_t)n * sizeof(float)));
        len = n;
    }
    return scratch;
}

static void bias_grad_finish(float *db, const float *target, int64_t n)
{
    if (target == db)
        return;
    add_kernel<<<blocks_for(n), THREADS>>>(db, target, n);
    LAUNCH_CHECK();
}

void gemm_dense_weight_grad(float *dw, float *db, const float *dz, const float *x, int64_t rows, int64_t in,
                            int64_t out, int accumulate)
{
    /* dW^T (out x in) = (+=) dZ^T (out x rows) X (rows x in); the BGRADA epilogue reduces dZ^T over
     * its columns (the batch) into a bias gradient. Written (beta 0), the old dW is never read. */
    const float beta = accumulate ? 1.0f : 0.0f;
    if (db && aligned(dw) && aligned(dz) && aligned(x) && aligned(db)) {
        float *target = bias_grad_target(db, out, accumulate);
        const struct lt_operands operands = {target, NULL};
        struct lt_plan *p = plan_for(CUBLASLT_EPILOGUE_BGRADA, CUBLAS_OP_N, CUBLAS_OP_T, out, in, rows, 0, &operands);
        if (p && run_plan(p, &operands, beta, dz, x, dw)) {
            bias_grad_finish(db, target, out);
            return;
        }
    }
    gemm(CUBLAS_OP_N, CUBLAS_OP_T, out, in, rows, 1.0f, dz, out, x, in, beta, dw, out);
    if (!db)
        return;
    dim3 threads(COLSUM_X, COLSUM_Y);
    column_sums_kernel<<<(unsigned)((out + COLSUM_X - 1) / COLSUM_X), threads>>>(db, dz, rows, out, accumulate);
    LAUNCH_CHECK();
}

int gemm_dense_input_grad_relu(float *dx, float *db_below, const float *dz, const float *w, const void *mask_below,
                               int64_t rows, int64_t in, int64_t out, int accumulate)
{
    /* dX^T (in x rows) = W (in x out) dZ^T (out x rows), the product the layer below sees as dY^T;
     * DRELU_BGRAD zeroes it where that layer's mask (kept by RELU_AUX_BIAS on a Z^T of the same
     * shape) says z <= 0, and reduces the result over its columns (the batch) into the bias
     * gradient of the layer below. */
    if (!(aligned(dx) && aligned(dz) && aligned(w) && aligned(mask_below) && aligned(db_below)))
        return 0;
    float *target = bias_grad_target(db_below, in, accumulate);
    const struct lt_operands operands = {target, mask_below};
    struct lt_plan *p = plan_for(CUBLASLT_EPILOGUE_DRELU_BGRAD, CUBLAS_OP_T, CUBLAS_OP_N, in, rows, out,
                                 relu_mask_ld(in), &operands);
    if (!p || !run_plan(p, &operands, 0.0f, w, dz, dx))
        return 0;
    bias_grad_finish(db_below, target, in);
    return 1;
}
