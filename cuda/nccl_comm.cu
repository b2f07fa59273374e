#include "nccl_comm.h"

#include "cuda_check.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static ncclComm_t comm;
static cudaStream_t stream;
static cudaEvent_t grads_ready;
static double timeout_seconds = 600;
static void (*timeout_handler)(const char *what, double limit, const char *setting);

extern "C" void nccl_comm_set_timeout_handler(void (*handler)(const char *, double, const char *))
{
    timeout_handler = handler;
}

static_assert(sizeof(ncclUniqueId) == NCCL_COMM_ID_BYTES, "ncclUniqueId size");

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void nccl_die(const char *what, ncclResult_t r, const char *file, int line)
{
    const char *detail = comm ? ncclGetLastError(comm) : "";
    if (comm)
        ncclCommAbort(comm);
    comm = NULL;
    dp_die(DP_EXIT_INTERNAL, "NCCL: %s failed: %s%s%s (%s:%d)", what, ncclGetErrorString(r), detail && *detail ? ": " : "",
           detail ? detail : "", file, line);
}

/* Non-blocking calls return ncclInProgress; anything else but success is an error. */
#define NCCL_CALL(expr)                                                                                  \
    do {                                                                                                 \
        ncclResult_t r_ = (expr);                                                                        \
        if (r_ != ncclSuccess && r_ != ncclInProgress)                                                   \
            nccl_die(#expr, r_, __FILE__, __LINE__);                                                     \
    } while (0)

/* Waits until the communicator has no operation in progress (init) and, with done_event, until
 * that event has completed; NCCL errors and the timeout end the job. The first millisecond polls
 * at full speed (a step's sums are usually done by then), after that every 100 us, so a long wait
 * does not keep a CPU core busy. */
static void wait_for(const char *what, cudaEvent_t done_event)
{
    double start = now();
    for (;;) {
        ncclResult_t async = ncclSuccess;
        NCCL_CALL(ncclCommGetAsyncError(comm, &async));
        if (async != ncclSuccess && async != ncclInProgress)
            nccl_die(what, async, __FILE__, __LINE__);
        if (async == ncclSuccess) {
            if (!done_event)
                return;
            cudaError_t q = cudaEventQuery(done_event);
            if (q == cudaSuccess)
                return;
            if (q != cudaErrorNotReady)
                CUDA_CHECK(q);
        }
        double waited = now() - start;
        if (waited > timeout_seconds) {
            ncclCommAbort(comm);
            comm = NULL;
            char full[160];
            snprintf(full, sizeof full, "NCCL's %s", what);
            if (timeout_handler)
                timeout_handler(full, timeout_seconds, "fit.nccl_timeout");
            dp_die(DP_EXIT_RANK_LOST,
                   "NCCL: %s did not finish within %g s (fit.nccl_timeout): another rank failed, hangs or "
                   "never joined",
                   what, timeout_seconds);
        }
        if (waited < 1e-3) {
            sched_yield();
        } else {
            struct timespec nap = {0, 100000};
            nanosleep(&nap, NULL);
        }
    }
}

extern "C" int nccl_comm_make_id(void *id, struct dp_error *err)
{
    ncclUniqueId uid;
    ncclResult_t r = ncclGetUniqueId(&uid);
    if (r != ncclSuccess)
        return dp_error_set(err, DP_EXIT_INTERNAL, "NCCL: ncclGetUniqueId failed: %s", ncclGetErrorString(r));
    memcpy(id, &uid, sizeof uid);
    return 0;
}

extern "C" int nccl_comm_init(const void *id, int rank, int size, double timeout, struct dp_error *err)
{
    (void)err; /* failures end the job: the other ranks are waiting in the same call */
    timeout_seconds = timeout;
    ncclUniqueId uid;
    memcpy(&uid, id, sizeof uid);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&grads_ready, cudaEventDisableTiming));
    NCCL_CALL(ncclCommInitRankConfig(&comm, size, uid, rank, &config));
    wait_for("ncclCommInitRankConfig", NULL);
    return 0;
}

/* Each step's sums end with an event on NCCL's stream; two, so the host can wait for the previous
 * step's while the current one is queued. */
static cudaEvent_t reduced[2];
static int reduced_recorded[2];
static int current;

extern "C" void nccl_comm_allreduce_launch(float *dev, size_t n)
{
    if (n == 0)
        return;
    /* The gradients in [dev, dev + n) are complete when the work queued so far on the default
     * stream is. */
    CUDA_CHECK(cudaEventRecord(grads_ready, 0));
    CUDA_CHECK(cudaStreamWaitEvent(stream, grads_ready, 0));
    NCCL_CALL(ncclAllReduce(dev, dev, n, ncclFloat32, ncclSum, comm, stream));
    wait_for("queuing ncclAllReduce", NULL); /* a non-blocking communicator may still be queuing it */
}

extern "C" void nccl_comm_allreduce_f64_inline(double *dev, size_t n)
{
    static cudaEvent_t summed;
    if (n == 0)
        return;
    if (!summed)
        CUDA_CHECK(cudaEventCreateWithFlags(&summed, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(grads_ready, 0));
    CUDA_CHECK(cudaStreamWaitEvent(stream, grads_ready, 0));
    NCCL_CALL(ncclAllReduce(dev, dev, n, ncclFloat64, ncclSum, comm, stream));
    wait_for("queuing ncclAllReduce", NULL);
    CUDA_CHECK(cudaEventRecord(summed, stream));
    CUDA_CHECK(cudaStreamWaitEvent(0, summed, 0));
}

extern "C" void nccl_comm_join(void)
{
    for (int i = 0; i < 2; i++)
        if (!reduced[i])
            CUDA_CHECK(cudaEventCreateWithFlags(&reduced[i], cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(reduced[current], stream));
    CUDA_CHECK(cudaStreamWaitEvent(0, reduced[current], 0)); /* the optimizer waits on the GPU */
    reduced_recorded[current] = 1;
    current ^= 1;
    if (reduced_recorded[current])
        wait_for("ncclAllReduce (previous step)", reduced[current]);
}

extern "C" void nccl_comm_wait_all(void)
{
    if (reduced_recorded[current ^ 1])
        wait_for("ncclAllReduce", reduced[current ^ 1]);
}

extern "C" void nccl_comm_drain(void)
{
    static cudaEvent_t drained;
    if (!comm)
        return;
    if (!drained)
        CUDA_CHECK(cudaEventCreateWithFlags(&drained, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventRecord(drained, stream));
    wait_for("the sums queued on NCCL's stream", drained);
}

extern "C" void nccl_comm_destroy(void)
{
    if (!comm)
        return;
    nccl_comm_drain();
    NCCL_CALL(ncclCommFinalize(comm));
    wait_for("ncclCommFinalize", NULL);
    ncclCommDestroy(comm);
    comm = NULL;
    cudaStreamDestroy(stream);
    cudaEventDestroy(grads_ready);
    for (int i = 0; i < 2; i++) {
        if (reduced[i])
            cudaEventDestroy(reduced[i]);
        reduced[i] = NULL;
        reduced_recorded[i] = 0;
    }
}
