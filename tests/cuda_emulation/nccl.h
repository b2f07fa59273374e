/* NCCL for a communicator of ONE rank, emulated (the one-rank NCCL path is how dptrain's NCCL code
 * runs on a single GPU, tools/gpu-check.sh): the sum over one rank is the buffer itself. Several
 * ranks are refused, so nothing here can pass for a real all-reduce. */
#pragma once
#include "cuda_runtime.h"
typedef enum { ncclSuccess = 0, ncclInvalidUsage = 5, ncclInProgress = 7 } ncclResult_t;
typedef enum { ncclFloat32 = 7, ncclFloat64 = 8 } ncclDataType_t;
typedef enum { ncclSum = 0 } ncclRedOp_t;
typedef struct { char internal[128]; } ncclUniqueId;
typedef struct { int blocking; } ncclConfig_t;
#define NCCL_CONFIG_INITIALIZER {1}
typedef struct emu_nccl *ncclComm_t;
inline const char *ncclGetErrorString(ncclResult_t) { return "emulated NCCL error"; }
inline const char *ncclGetLastError(ncclComm_t) { return ""; }
inline ncclResult_t ncclGetUniqueId(ncclUniqueId *id) { memset(id, 7, sizeof *id); return ncclSuccess; }
inline ncclResult_t ncclCommInitRankConfig(ncclComm_t *c, int size, ncclUniqueId, int rank, ncclConfig_t *)
{
    if (size != 1 || rank != 0)
        return ncclInvalidUsage;
    *c = (ncclComm_t)0x50;
    return ncclSuccess;
}
inline ncclResult_t ncclCommGetAsyncError(ncclComm_t, ncclResult_t *r) { *r = ncclSuccess; return ncclSuccess; }
inline ncclResult_t ncclAllReduce(const void *send, void *recv, size_t n, ncclDataType_t type, ncclRedOp_t, ncclComm_t,
                                  cudaStream_t s)
{
    size_t bytes = n * (type == ncclFloat64 ? sizeof(double) : sizeof(float));
    emu_check_device(send, bytes, "ncclAllReduce send buffer", false);
    emu_check_device(recv, bytes, "ncclAllReduce receive buffer", false);
    emu_enqueue_allreduce(s, [=] {
        if (send != recv)
            memcpy(recv, send, bytes);
    });
    return ncclSuccess;
}
inline ncclResult_t ncclCommAbort(ncclComm_t) { return ncclSuccess; }
inline ncclResult_t ncclCommFinalize(ncclComm_t) { return ncclSuccess; }
inline ncclResult_t ncclCommDestroy(ncclComm_t) { return ncclSuccess; }
