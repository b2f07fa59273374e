/* NCCL for the gradient all-reduce: one communicator over all ranks, one GPU each. The caller
 * broadcasts the unique id over MPI (rank 0 makes it). The communicator is non-blocking, so every
 * wait polls for NCCL errors and gives up after a timeout with a message, instead of hanging when
 * another rank died. Declared for C; defined in nccl_comm.cu.
 * STATUS: compiled in CI; not yet run on a GPU. */
#ifndef DPTRAIN_NCCL_COMM_H
#define DPTRAIN_NCCL_COMM_H

#include <stddef.h>

#include "base/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { NCCL_COMM_ID_BYTES = 128 };

/* Rank 0: a fresh unique id into id (NCCL_COMM_ID_BYTES). Returns 0, or -1 with err set. */
int nccl_comm_make_id(void *id, struct dp_error *err);

/* Every rank, with the same id: joins the communicator (waits at most timeout seconds). */
int nccl_comm_init(const void *id, int rank, int size, double timeout, struct dp_error *err);

/* In-place sum of n floats of device memory over all ranks, started on NCCL's stream once the work
 * already queued on the default stream is done (a bucket of gradients whose layers have finished
 * backward). Returns when NCCL has queued it. */
void nccl_comm_allreduce_launch(float *dev, size_t n);

/* In-place sum of n doubles of device memory over all ranks, in the order of the default stream:
 * it starts when the work queued there is done, and work queued there later waits for it (the
 * per-channel sums of synchronized BatchNormalization, between a layer's two kernels). It runs on
 * NCCL's stream, so every NCCL operation of the communicator stays in one queue. */
void nccl_comm_allreduce_f64_inline(double *dev, size_t n);

/* After the last launch of a step: work queued on the default stream from now on waits (on the GPU)
 * for every launched sum. The host waits only for the PREVIOUS step's sums, so it stays a step ahead
 * of the GPU, and a sum that hangs (a rank died or stalls) is caught within the timeout. */
void nccl_comm_join(void);

/* Waits, with the timeout and error checks, for every sum launched so far (before the host reads
 * device memory). */
void nccl_comm_wait_all(void);

/* Waits, with the timeout, until everything queued on NCCL's stream has finished (nothing when
 * there is no communicator): before a device-wide wait or a free, which would otherwise wait
 * forever for a sum whose peer is gone. */
void nccl_comm_drain(void);

/* NCCL errors end the job with a message naming what was waited for. The timeout calls the
 * handler given here (the caller names the lost ranks and ends the job with DP_EXIT_RANK_LOST);
 * without one, it ends the job with that status itself. */
void nccl_comm_set_timeout_handler(void (*handler)(const char *what, double limit, const char *setting));

void nccl_comm_destroy(void);

#ifdef __cplusplus
}
#endif

#endif
