/* The CUDA backend's memory, the input pipeline (pinned host buffers, copies in stream order,
 * fences per buffer), the step scalars kernels read from device memory, and graphs of a whole
 * training step. */
#include <cuda_runtime.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend_ops.h"
#include "cuda_check.h"
#ifdef DPTRAIN_HAVE_NCCL
#include "nccl_comm.h"
#endif

/* ---- memory ---- */

void *cuda_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 256);
    if (e != cudaSuccess)
        dp_die(DP_EXIT_INTERNAL, "CUDA: out of device memory allocating %zu bytes for %s (%s)", bytes, what,
               cudaGetErrorString(e));
    CUDA_CHECK(cudaMemset(p, 0, bytes ? bytes : 256));
    return p;
}

/* cudaFree and cudaDeviceSynchronize wait for the whole device, an NCCL sum included: NCCL's
 * queue is drained first, with its timeout, so neither hangs when a peer is gone (an error path
 * that frees, or a profiling step's wait, ends the job within fit.nccl_timeout instead). */
static void drain_collectives(void)
{
#ifdef DPTRAIN_HAVE_NCCL
    nccl_comm_drain();
#endif
}

void cuda_free(void *p)
{
    if (!p)
        return;
    drain_collectives();
    CUDA_CHECK(cudaFree(p));
}
void cuda_upload(void *dst, const void *src, size_t bytes) { if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice)); }
void cuda_download(void *dst, const void *src, size_t bytes) { if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost)); }
void cuda_zero(void *p, size_t bytes) { if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0)); }
void cuda_synchronize(void)
{
    drain_collectives();
    CUDA_CHECK(cudaDeviceSynchronize());
}

/* ---- input pipeline: pinned host buffers, copies in stream order, fences per buffer ---- */

void *cuda_host_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    cudaError_t e = cudaMallocHost(&p, bytes ? bytes : 256);
    if (e != cudaSuccess)
        dp_die(DP_EXIT_INTERNAL, "CUDA: cannot allocate %zu bytes of pinned host memory for %s (%s)", bytes, what,
               cudaGetErrorString(e));
    memset(p, 0, bytes ? bytes : 256);
    return p;
}

void cuda_host_free(void *p) { if (p) CUDA_CHECK(cudaFreeHost(p)); }

/* A batch upload from host slot 0 or 1: host to device on a copy stream of its own, into a device
 * staging buffer for that slot, so the copy of batch i+1 runs while the kernels of step i do;
 * then, in the kernels' order, device to device to where the model reads it (microseconds at
 * device bandwidth; the model's buffers, and a recorded graph, keep their addresses). */
static cudaStream_t copy_stream;
static cudaEvent_t staged[2], consumed[2]; /* copy done; staging buffer read by the kernels' stream */
static char *staging[2];
static size_t staging_bytes[2];

static size_t staging_offset(size_t bytes) { return (bytes + 255) & ~(size_t)255; }

void cuda_upload_batch_async(int slot, const struct host_copy *copies, int ncopies)
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

void cuda_host_fence_record(int slot)
{
    if (!host_fences[slot])
        /* blocking sync: the reader thread, which waits on it, sleeps instead of spinning a core */
        CUDA_CHECK(cudaEventCreateWithFlags(&host_fences[slot], cudaEventDisableTiming | cudaEventBlockingSync));
    CUDA_CHECK(cudaEventRecord(host_fences[slot], 0));
}

void cuda_host_fence_wait(int slot)
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

const uint32_t *device_step(void) { return scalars_live ? &scalars_device->step : NULL; }
const struct optimizer_step_params *device_params(void)
{
    return scalars_live ? &scalars_device->params : NULL;
}

void cuda_set_step_scalars(uint32_t step, const struct optimizer_step_params *p, int slot)
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

int cuda_graph_begin(void)
{
    if (dp_env_flag("DPTRAIN_CUDA_SYNC", 0))
        return -1; /* synchronizing after every launch is not allowed while recording */
    CUDA_CHECK(cudaStreamBeginCapture(cudaStreamPerThread, cudaStreamCaptureModeThreadLocal));
    return 0;
}

/* A captured step should not allocate: a library that allocates while it is captured (cuBLAS
 * without our workspace) adds memory nodes, which cost time on every replay. Said, once per graph. */
static void warn_memory_nodes(cudaGraph_t g)
{
    size_t n = 0, memory = 0;
    CUDA_CHECK(cudaGraphGetNodes(g, NULL, &n));
    cudaGraphNode_t *nodes = (cudaGraphNode_t *)dp_calloc(n ? n : 1, sizeof *nodes, "graph nodes");
    CUDA_CHECK(cudaGraphGetNodes(g, nodes, &n));
    for (size_t i = 0; i < n; i++) {
        cudaGraphNodeType type;
        CUDA_CHECK(cudaGraphNodeGetType(nodes[i], &type));
        memory += type == cudaGraphNodeTypeMemAlloc || type == cudaGraphNodeTypeMemFree;
    }
    free(nodes);
    if (memory)
        dp_warn("the CUDA graph of a training step has %zu memory-allocation node(s) among %zu: a library "
                "allocated while the step was captured", memory, n);
}

void *cuda_graph_end(void)
{
    CUDA_CHECK(cudaStreamEndCapture(cudaStreamPerThread, &capturing));
    warn_memory_nodes(capturing);
    cudaGraphExec_t exec;
    CUDA_CHECK(cudaGraphInstantiate(&exec, capturing, 0));
    CUDA_CHECK(cudaGraphDestroy(capturing));
    return (void *)exec;
}

void cuda_graph_launch(void *graph) { CUDA_CHECK(cudaGraphLaunch((cudaGraphExec_t)graph, cudaStreamPerThread)); }

void cuda_graph_free(void *graph)
{
    if (graph)
        CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}
