/* The CUDA runtime calls dptrain uses, emulated on the CPU, so tests/cuda/test_cuda_backend.c can run
 * the kernels of cuda/ in a build without a GPU (tests/CMakeLists.txt: unit_cuda_emulated).
 *
 * What this checks: every kernel's index arithmetic and formulas (compiled from the real .cu files,
 * launches rewritten by launches_to_cpp.py), the layouts and transpositions handed to cuBLAS and
 * cuBLASLt, stream order, events and graph capture/replay, against the CPU backend; streams.cpp
 * also runs queued work as late as a GPU may (DPTRAIN_EMULATE_DEFER=1) and enforces the stream
 * order around all-reduces and what may not be called while capturing. What it cannot check:
 * real concurrency between GPU threads (threads of a block run one after another, except in
 * kernels with __syncthreads), cuBLASLt's epilogue semantics beyond our reading of its
 * documentation (emulation.cpp), the tensor cores' own order of sums (tf32/bf16 inputs are rounded
 * as they would be, then summed in double), NCCL between several ranks (nccl.h here
 * emulates a communicator of one), and anything about speed. The GPU test on a
 * real device (label gpu) stays the authority.
 *
 * Device memory is host memory here, so streams.cpp keeps a registry of device allocations and
 * checks what crosses the API: a copy's direction against where its source and destination live,
 * memsets, every pointer argument of a kernel launch, and the matrices, bias and mask handed to
 * cuBLAS, cuBLASLt and NCCL must lie in device memory (a host pointer there aborts with the call
 * named). What it cannot see: host code that reads or writes a device pointer directly (the
 * addresses are valid on the CPU), and pointers inside structs passed to a kernel by value. */
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <functional>
#include <tuple>
#include <type_traits>
#include <vector>
typedef enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorInvalidDeviceFunction = 98, cudaErrorNoKernelImageForDevice = 209,
               cudaErrorNotReady = 600, cudaErrorStreamCaptureUnsupported = 900,
               cudaErrorStreamCaptureInvalidated = 901, cudaErrorUnknown = 999 } cudaError_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2, cudaMemcpyDeviceToDevice = 3 };
enum cudaStreamCaptureMode { cudaStreamCaptureModeThreadLocal = 1 };
enum cudaStreamCaptureStatus { cudaStreamCaptureStatusNone = 0, cudaStreamCaptureStatusActive = 1 };
#define cudaEventDisableTiming 2
#define cudaEventBlockingSync 1
#define cudaStreamNonBlocking 1
struct dim3 { unsigned x, y, z; dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {} };
extern thread_local dim3 blockIdx, threadIdx, blockDim, gridDim;
typedef struct CUstream_st *cudaStream_t;
typedef struct CUevent_st *cudaEvent_t;
struct emu_graph { std::vector<std::function<void()>> ops; };
typedef emu_graph *cudaGraph_t;
typedef emu_graph *cudaGraphExec_t;
#define cudaStreamPerThread ((cudaStream_t)0x2)
struct cudaDeviceProp { char name[256]; int major, minor; };
struct cudaFuncAttributes { int binaryVersion, ptxVersion; };
#define __global__
#define __launch_bounds__(...)
#define __device__
#define __host__
#define __shared__ static
/* Work for the device, in the order of `stream` (streams.cpp); `kernel` names a kernel launch. */
void emu_enqueue_on(cudaStream_t stream, std::function<void()> f, const char *kernel = nullptr);
inline void emu_enqueue(std::function<void()> f) { emu_enqueue_on(cudaStreamPerThread, f); }
/* ncclAllReduce's work: it must run after everything queued before it on the default stream, and
 * the optimizer kernel after every all-reduce queued before it (streams.cpp checks both). */
void emu_enqueue_allreduce(cudaStream_t stream, std::function<void()> f);
void emu_sync_threads(void);
#define __syncthreads() emu_sync_threads()
inline float atomicAdd(float *a, float v) { float o = *a; *a += v; return o; }
inline double atomicAdd(double *a, double v) { double o = *a; *a += v; return o; }
inline unsigned __umulhi(unsigned a, unsigned b) { return (unsigned)(((unsigned long long)a * b) >> 32); }
const char *cudaGetErrorString(cudaError_t e);
cudaError_t emu_malloc(void **p, size_t n, bool pinned);
/* Aborts naming `who` unless [p, p + bytes) lies in one device allocation (NULL passes when
 * null_ok). */
void emu_check_device(const void *p, size_t bytes, const char *who, bool null_ok = true);
/* 1 on the thread that is recording a stream capture (the emulated libraries ask) */
bool emu_capturing_here(void);
/* Every pointer argument of a kernel launch must point into device memory. */
template <class T> inline void emu_check_kernel_arg(const T &v, const char *kernel)
{
    if constexpr (std::is_pointer_v<T>)
        emu_check_device((const void *)v, 1, kernel);
}
template <class... A> inline void emu_check_kernel_args(const char *kernel, const std::tuple<A...> &args)
{
    std::apply([&](const A &...a) { (emu_check_kernel_arg(a, kernel), ...); }, args);
}
template <class T> cudaError_t cudaMalloc(T **p, size_t n) { return emu_malloc((void **)p, n, false); }
template <class T> cudaError_t cudaMallocHost(T **p, size_t n) { return emu_malloc((void **)p, n, true); }
cudaError_t cudaFree(void *p);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemset(void *p, int v, size_t n);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s);
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t stream);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, int flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaDeviceSynchronize(void);
/* the literal 0 as a stream: the per-thread default stream (nvcc --default-stream per-thread) */
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, int) { return cudaMemcpyAsync(d, s, n, k, cudaStreamPerThread); }
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, int) { return cudaMemsetAsync(p, v, n, cudaStreamPerThread); }
inline cudaError_t cudaEventRecord(cudaEvent_t e, int = 0) { return cudaEventRecord(e, cudaStreamPerThread); }
inline cudaError_t cudaStreamWaitEvent(int, cudaEvent_t e, unsigned f) { return cudaStreamWaitEvent(cudaStreamPerThread, e, f); }
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode);
/* Active on the thread that records (the per-thread default stream is the only one captured). */
cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus *status);
cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g);
inline cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long) { *e = new emu_graph(*g); return cudaSuccess; }
inline cudaError_t cudaGraphDestroy(cudaGraph_t g) { delete g; return cudaSuccess; }
/* A graph's nodes: every recorded operation is a kernel node here; DPTRAIN_EMULATE_GRAPH_ALLOC=1
 * makes the last one a memory-allocation node, as a library allocating inside a capture would. */
typedef struct emu_graph_node *cudaGraphNode_t;
enum cudaGraphNodeType { cudaGraphNodeTypeKernel = 0, cudaGraphNodeTypeMemAlloc = 10, cudaGraphNodeTypeMemFree = 11 };
inline cudaError_t cudaGraphGetNodes(cudaGraph_t g, cudaGraphNode_t *nodes, size_t *n)
{
    if (nodes)
        for (size_t i = 0; i < *n && i < g->ops.size(); i++)
            nodes[i] = (cudaGraphNode_t)(uintptr_t)(i + 1 == g->ops.size() && getenv("DPTRAIN_EMULATE_GRAPH_ALLOC") ? 2 : 1);
    *n = g->ops.size();
    return cudaSuccess;
}
inline cudaError_t cudaGraphNodeGetType(cudaGraphNode_t node, cudaGraphNodeType *t)
{
    *t = (uintptr_t)node == 2 ? cudaGraphNodeTypeMemAlloc : cudaGraphNodeTypeKernel;
    return cudaSuccess;
}
inline cudaError_t cudaGraphExecDestroy(cudaGraphExec_t g) { delete g; return cudaSuccess; }
cudaError_t cudaGraphLaunch(cudaGraphExec_t g, cudaStream_t);
inline cudaError_t cudaGetDeviceCount(int *c) { *c = 1; return cudaSuccess; }
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) { strcpy(p->name, "CPU emulation"); p->major = 9; p->minor = 0; return cudaSuccess; }
/* DPTRAIN_EMULATE_NO_KERNEL_IMAGE=1 plays a GPU this build has no code for (CMAKE_CUDA_ARCHITECTURES). */
template <class F> cudaError_t cudaFuncGetAttributes(cudaFuncAttributes *a, F *)
{
    if (getenv("DPTRAIN_EMULATE_NO_KERNEL_IMAGE")) return cudaErrorNoKernelImageForDevice;
    a->binaryVersion = a->ptxVersion = 90;
    return cudaSuccess;
}
/* The last non-sticky error of this thread, returned and cleared by cudaGetLastError. The emulated
 * calls do not fail, but a library probe may leave one (DPTRAIN_EMULATE_STALE_ERROR: cuBLASLt's
 * algorithm heuristic does), as real libraries can: a later launch check must not blame its kernel. */
void emu_set_last_error(cudaError_t e);
cudaError_t cudaGetLastError(void);
inline cudaError_t cudaDeviceGetPCIBusId(char *b, int n, int) { snprintf(b, n, "emulated"); return cudaSuccess; }
inline cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = 1 << 30; *t = 2u << 30; return cudaSuccess; }
/* kernel<<<grid, block>>>(args) becomes EMU_LAUNCH(kernel, grid, block, args): arguments are
 * evaluated at launch, the threads run one after another (kernels with __syncthreads use real
 * threads, see emulation.cpp). */
void emu_run_grid(dim3 g, dim3 b, bool sync, std::function<void()> body);
#define EMU_LAUNCH(kernel, grid, block, ...)                                                        \
    do {                                                                                            \
        auto args_ = std::make_tuple(__VA_ARGS__);                                                  \
        dim3 g_(grid), b_(block);                                                                   \
        bool sync_ = !strcmp(#kernel, "column_sums_kernel") || !strcmp(#kernel, "loss_kernel") ||    \
                     !strcmp(#kernel, "channel_sums_kernel") || !strcmp(#kernel, "regularize_kernel") ||    \
                     !strcmp(#kernel, "sum_squares_kernel"); /* the kernels with __syncthreads */ \
        emu_check_kernel_args(#kernel, args_);                                                      \
        emu_enqueue_on(cudaStreamPerThread, [=] { emu_run_grid(g_, b_, sync_, [=] { std::apply(kernel, args_); }); }, \
                       #kernel);                                                                    \
    } while (0)
