/* NCCL for the gradient all-reduce: one communicator over all ranks, one GPU each. The caller
 * broadcasts the unique id over MPI (rank 0 makes it). The communicator is non-blocking, so every
 * wait polls for NCCL errors and gives up after a timeout with a message, instead of hanging when
 * another rank died. Declared for C; defined in nccl_comm.cu.
 * STATUS: compiled in CI; not yet run on a GPU. */
#ifndef DPTRAIN_NCCL_COMM_H
#define DPTRAIN_NCCL_COMM_H

#include <stddef.h>

#include "errors.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { NCCL_COMM_ID_BYTES = 128 };

/* Rank 0: a fresh unique id into id (NCCL_COMM_ID_BYTES). Returns 0, or -1 with err set. */
int nccl_comm_make_id(void *id, struct dp_error *err);

/* Every rank, with the same id: joins the communicator (waits at most timeout seconds). */
int nccl_comm_init(const void *id, int rank, int size, double timeout, struct dp_error *err);

/* In-place sum of n floats of device memory over all ranks, after the work already queued on
 * the default stream; returns when the sum is in place. Ends the job with a message on a NCCL
 * error or when it takes longer than the timeout. */
void nccl_comm_allreduce_sum_f32(float *dev, size_t n);

void nccl_comm_destroy(void);

#ifdef __cplusplus
}
#endif

#endif
