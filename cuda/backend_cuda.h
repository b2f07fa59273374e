/* The CUDA backend: the table of src/net/backend.h over device memory (cuBLAS for matrix products,
 * kernels for the rest). Declared for C; defined in backend_cuda.cu. */
#ifndef DPTRAIN_BACKEND_CUDA_H
#define DPTRAIN_BACKEND_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "net/backend.h"
#include "base/errors.h"

extern const struct backend backend_cuda;

/* "cpu, cuda for architectures ..., nccl": what this build has, for --version. */
const char *backend_cuda_build_info(void);

/* Number of visible CUDA devices (0 when there is no driver or no GPU). */
int backend_cuda_device_count(void);

/* Selects device local_rank % count and creates the cuBLAS handle; prints nothing. Fills name and
 * PCI bus id for the start-up line. Returns 0, or -1 with err set. */
int backend_cuda_init(int local_rank, char *name, size_t name_len, char *bus_id, size_t bus_len,
                      struct dp_error *err);

#ifdef __cplusplus
}
#endif

#endif
