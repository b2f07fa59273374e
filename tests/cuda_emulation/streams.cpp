/* Streams, events, graphs and memory of the emulated device, and the rules a GPU enforces that a
 * CPU run would not show.
 *
 * Work given to a stream runs in that stream's order. By default it runs at once (the eager
 * schedule). With DPTRAIN_EMULATE_DEFER=1 it waits until something forces it: a synchronizing call
 * (cudaMemcpy, cudaFree, cudaDeviceSynchronize), an event synchronized or queried, or a wait on an
 * event of another stream. That is the latest a GPU may run it, so a host that writes a pinned
 * buffer a queued copy still has to read, or reads a result before waiting for it, gets wrong
 * numbers here as it would on a GPU (sometimes). Two orders the data cannot show for one rank are
 * checked when the work is queued, whatever the schedule: an all-reduce must be ordered (by event
 * waits or host synchronization) after the work queued before it on the default stream, and the
 * optimizer after every all-reduce queued before it.
 *
 * While a graph is being captured, the capturing thread may not synchronize, allocate or free
 * (cudaStreamCaptureModeThreadLocal): such calls fail with cudaErrorStreamCaptureUnsupported and
 * the capture ends invalidated, as on a GPU. Other threads (the batch reader) may. */
#include "cuda_runtime.h"
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

struct CUstream_st {
    std::deque<std::function<void()>> pending;
    uint64_t queued = 0, done = 0;              /* work items given to the stream, and run */
    std::map<CUstream_st *, uint64_t> known;    /* items of other streams done before the next one here */
};
struct CUevent_st {
    CUstream_st *stream = nullptr;
    uint64_t at = 0; /* complete once stream->done reaches it */
};

static std::recursive_mutex device; /* one device: queueing and running work, one thread at a time */
static CUstream_st default_stream;
static std::vector<CUstream_st *> streams = {&default_stream};
static std::map<const char *, size_t, std::less<>> pinned; /* cudaMallocHost blocks: start, bytes */
static std::map<const char *, size_t, std::less<>> device_blocks; /* cudaMalloc blocks: start, bytes */
static emu_graph *recording;
static std::thread::id recording_thread;
static bool recording_invalidated;
static std::map<CUstream_st *, uint64_t> host_known;     /* items the host has seen done */
static std::map<CUstream_st *, uint64_t> last_allreduce; /* the last all-reduce queued on each stream */

static bool deferred(void)
{
    static const bool on = getenv("DPTRAIN_EMULATE_DEFER") && strcmp(getenv("DPTRAIN_EMULATE_DEFER"), "0");
    return on;
}

[[noreturn]] static void hazard(const char *what)
{
    fprintf(stderr, "CUDA emulation: %s\n", what);
    abort();
}

static CUstream_st *stream_of(cudaStream_t s) { return !s || s == cudaStreamPerThread ? &default_stream : s; }

static void run_until(CUstream_st *s, uint64_t at)
{
    while (s->done < at) {
        std::function<void()> f = std::move(s->pending.front());
        s->pending.pop_front();
        f();
        s->done++;
    }
}

/* Work for s from the capturing thread is recorded into the graph instead of queued. */
static bool captured(CUstream_st *s)
{
    return recording && s == &default_stream && std::this_thread::get_id() == recording_thread;
}

static thread_local cudaError_t last_error = cudaSuccess;
void emu_set_last_error(cudaError_t e) { last_error = e; }
cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

bool emu_capturing_here(void)
{
    return recording && std::this_thread::get_id() == recording_thread;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t, cudaStreamCaptureStatus *status)
{
    *status = emu_capturing_here() ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}

/* A call the capturing thread may not make while it captures: fails, and spoils the capture. */
static bool forbidden_in_capture(void)
{
    if (!recording || std::this_thread::get_id() != recording_thread)
        return false;
    recording_invalidated = true;
    return true;
}

/* Happens-before, as far as the calls made so far establish it: may work queued on s next assume
 * that the first `at` items of `other` are done? (Its own stream's items, a wait on an event of
 * other's, or the host having seen that event or synchronized.) */
static bool ordered_after(CUstream_st *s, CUstream_st *other, uint64_t at)
{
    return s == other || s->known[other] >= at || host_known[other] >= at;
}

static void learn(std::map<CUstream_st *, uint64_t> &known, CUstream_st *s, uint64_t at)
{
    known[s] = std::max(known[s], at);
}

/* The host waits for the first `at` items of s: they run, and the host has seen them done. */
static void host_wait(CUstream_st *s, uint64_t at)
{
    run_until(s, at);
    learn(host_known, s, at);
}

/* Everything queued runs, and the host has seen it done (the synchronizing calls). */
static void run_all(void)
{
    for (bool again = true; again;) {
        again = false;
        for (CUstream_st *s : streams) {
            again |= s->done < s->queued;
            host_wait(s, s->queued);
        }
    }
}

void emu_enqueue_on(cudaStream_t stream, std::function<void()> f, const char *kernel)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    CUstream_st *s = stream_of(stream);
    if (kernel && !strcmp(kernel, "optimizer_kernel"))
        for (auto [other, at] : last_allreduce)
            if (!ordered_after(s, other, at))
                hazard("the optimizer is queued without waiting for an all-reduce queued before it (a missing "
                       "cudaStreamWaitEvent: it would step with this rank's gradients alone)");
    if (captured(s)) {
        recording->ops.push_back(f);
        return;
    }
    s->pending.push_back(f);
    s->queued++;
    if (!deferred())
        run_until(s, s->queued);
}

void emu_enqueue_allreduce(cudaStream_t stream, std::function<void()> f)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    CUstream_st *s = stream_of(stream);
    if (!ordered_after(s, &default_stream, default_stream.queued))
        hazard("ncclAllReduce is queued without waiting for the work queued before it on the default stream (a "
               "missing cudaStreamWaitEvent: it would sum gradients not yet computed)");
    emu_enqueue_on(stream, f);
    last_allreduce[s] = s->queued;
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated: return "operation failed due to a previous error during capture";
    default: return "emulated error";
    }
}

/* ---- memory ---- */

cudaError_t emu_malloc(void **p, size_t n, bool is_pinned)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    size_t bytes = (n + 255) / 256 * 256;
    if (bytes == 0)
        bytes = 256;
    *p = aligned_alloc(256, bytes);
    memset(*p, 0xA5, bytes);
    if (is_pinned)
        pinned[(const char *)*p] = n;
    else
        device_blocks[(const char *)*p] = n ? n : 1;
    return cudaSuccess;
}

static bool in_blocks(const std::map<const char *, size_t, std::less<>> &blocks, const void *p, size_t n)
{
    auto it = blocks.upper_bound((const char *)p);
    if (it == blocks.begin())
        return false;
    --it;
    return (const char *)p >= it->first && (const char *)p + n <= it->first + it->second;
}

void emu_check_device(const void *p, size_t bytes, const char *who, bool null_ok)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if ((p || !null_ok) && !in_blocks(device_blocks, p, bytes ? bytes : 1)) {
        char what[256];
        snprintf(what, sizeof what, "%s: %p (%zu bytes) is not device memory%s", who, p, bytes,
                 in_blocks(pinned, p, 1) ? " (it is pinned host memory)" : "");
        hazard(what);
    }
}

/* A copy's direction must match where its ends live. */
static void check_copy(void *d, const void *s, size_t n, cudaMemcpyKind k, const char *who)
{
    char what[96];
    bool d_dev = k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToDevice;
    bool s_dev = k == cudaMemcpyDeviceToHost || k == cudaMemcpyDeviceToDevice;
    snprintf(what, sizeof what, "%s %s: destination", who, k == cudaMemcpyHostToDevice ? "HostToDevice" :
             k == cudaMemcpyDeviceToHost ? "DeviceToHost" : "DeviceToDevice");
    if (d_dev)
        emu_check_device(d, n, what, false);
    else if (in_blocks(device_blocks, d, 1))
        hazard((std::string(what) + " is device memory").c_str());
    what[strlen(what) - strlen("destination")] = 0;
    strcat(what, "source");
    if (s_dev)
        emu_check_device(s, n, what, false);
    else if (in_blocks(device_blocks, s, 1))
        hazard((std::string(what) + " is device memory").c_str());
}

/* Frees wait for the device, as cudaFree does: queued work may still use the block. */
static cudaError_t free_block(void *p)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    run_all();
    pinned.erase((const char *)p);
    device_blocks.erase((const char *)p);
    free(p);
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) { return free_block(p); }
cudaError_t cudaFreeHost(void *p) { return free_block(p); }

static bool is_pinned(const void *p, size_t n)
{
    auto it = pinned.upper_bound((const char *)p);
    if (it == pinned.begin())
        return false;
    --it;
    return (const char *)p + n <= it->first + it->second;
}

cudaError_t cudaMemset(void *p, int v, size_t n)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    emu_check_device(p, n, "cudaMemset", false);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    emu_enqueue([=] { memset(p, v, n); });
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s)
{
    emu_check_device(p, n, "cudaMemsetAsync", false);
    emu_enqueue_on(s, [=] { memset(p, v, n); });
    return cudaSuccess;
}

/* Returns when the copy is done, after the work queued before it on the default stream. */
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    check_copy(d, s, n, k, "cudaMemcpy");
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    host_wait(&default_stream, default_stream.queued);
    memcpy(d, s, n);
    return cudaSuccess;
}

/* From pinned memory the copy reads the host buffer when it runs; from pageable memory the
 * runtime stages the bytes before it returns, and a copy into pageable memory is synchronous. */
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t stream)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    check_copy(d, s, n, k, "cudaMemcpyAsync");
    if (k == cudaMemcpyHostToDevice && !is_pinned(s, n)) {
        std::shared_ptr<std::vector<char>> staged(new std::vector<char>((const char *)s, (const char *)s + n));
        emu_enqueue_on(stream, [=] { memcpy(d, staged->data(), n); });
        return cudaSuccess;
    }
    emu_enqueue_on(stream, [=] { memcpy(d, s, n); });
    if (k == cudaMemcpyDeviceToHost && !is_pinned(d, n) && !recording)
        host_wait(stream_of(stream), stream_of(stream)->queued);
    return cudaSuccess;
}

/* ---- events and streams ---- */

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, int)
{
    *e = new CUevent_st;
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t stream)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if (captured(stream_of(stream)))
        hazard("cudaEventRecord while capturing a graph is not emulated");
    e->stream = stream_of(stream);
    e->at = e->stream->queued;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    if (e->stream)
        host_wait(e->stream, e->at);
    return cudaSuccess;
}

/* Not ready while its work is queued (that work then runs, so a polling loop ends). */
cudaError_t cudaEventQuery(cudaEvent_t e)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    if (!e->stream)
        return cudaSuccess;
    if (e->stream->done >= e->at) {
        learn(host_known, e->stream, e->at);
        return cudaSuccess;
    }
    run_until(e->stream, e->at);
    return cudaErrorNotReady;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    *s = new CUstream_st;
    streams.push_back(*s);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    run_until(s, s->queued); /* queued work still completes */
    std::erase(streams, s);
    host_known.erase(s);
    last_allreduce.erase(s);
    for (CUstream_st *t : streams)
        t->known.erase(s);
    delete s;
    return cudaSuccess;
}

/* Work queued on s from now on runs after the work e stands for. */
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if (captured(stream_of(s)))
        hazard("cudaStreamWaitEvent while capturing a graph is not emulated");
    CUstream_st *other = e->stream;
    uint64_t at = e->at;
    if (other) {
        emu_enqueue_on(s, [other, at] { run_until(other, at); });
        learn(stream_of(s)->known, other, at);
    }
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    if (forbidden_in_capture())
        return cudaErrorStreamCaptureUnsupported;
    run_all();
    return cudaSuccess;
}

/* ---- graphs: the default stream's work of the capturing thread is recorded, not run ---- */

cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    recording = new emu_graph;
    recording_thread = std::this_thread::get_id();
    recording_invalidated = false;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *g)
{
    std::lock_guard<std::recursive_mutex> hold(device);
    *g = recording;
    recording = nullptr;
    if (getenv("DPTRAIN_EMULATE_STATS")) /* a graph's nodes are what a launch-bound step costs */
        fprintf(stderr, "CUDA emulation: captured a graph of %zu operations\n", (*g)->ops.size());
    if (recording_invalidated) {
        delete *g;
        *g = nullptr;
        return cudaErrorStreamCaptureInvalidated;
    }
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t g, cudaStream_t s)
{
    emu_enqueue_on(s, [ops = g->ops] {
        for (auto &f : ops)
            f();
    });
    return cudaSuccess;
}
