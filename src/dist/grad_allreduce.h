/* Summing the gradient arena over ranks, once per step. Three ways:
 *   "mpi"         host memory (CPU backend): MPI_Iallreduce in place;
 *   "mpi-staged"  device memory with fit.allreduce = "mpi": a host copy, MPI, and back (lets
 *                 several ranks share one GPU, and needs no NCCL);
 *   "nccl"        device memory: ncclAllReduce on the GPU, on its own stream.
 * A single rank skips the all-reduce ("none"), unless fit.allreduce = "nccl" asks for NCCL by
 * name on a GPU: then a communicator of one runs the NCCL path (the single-GPU test of it).
 *
 * Buckets (fit.allreduce_bucket_mb, "mpi" and "nccl"): backward runs from the last layer to the
 * first, and the arena holds layers in order, so after each layer the gradients from its first
 * parameter to the end of the arena are final. Once at least a bucket's worth is final and not yet
 * sent, its sum starts while backward goes on (as PyTorch DDP does); the rest goes after backward.
 * 0 (the default): ONE all-reduce over the whole arena after backward. */
#ifndef DPTRAIN_GRAD_ALLREDUCE_H
#define DPTRAIN_GRAD_ALLREDUCE_H

#include <stddef.h>

#include "net/backend.h"
#include "dist/comm.h"
#include "base/errors.h"
#include "job/jobfile.h"

/* The way chosen (see above) */
enum grad_allreduce_kind { GRAD_ALLREDUCE_NONE, GRAD_ALLREDUCE_MPI, GRAD_ALLREDUCE_MPI_STAGED, GRAD_ALLREDUCE_NCCL };

struct grad_allreduce {
    enum grad_allreduce_kind kind;
    const char *name;       /* the kind as summary.json and the start-up line say it */
    const struct backend *be;
    size_t floats;
    size_t bucket_floats;   /* 0: everything after backward */
    float *host;            /* staging for "mpi-staged" */
    /* this step */
    float *grads;
    size_t unsent_end;      /* [0, unsent_end) of the arena is not being summed yet */
    int launches;           /* sums started this step */
    struct comm_requests requests;
};

/* Collective: every rank calls it with the same arguments. Returns 0, or -1 with err set (NCCL
 * asked for where dptrain was built without it). */
int grad_allreduce_init(struct grad_allreduce *g, const struct backend *be, enum allreduce_kind kind,
                        double timeout, double bucket_mb, size_t floats, struct dp_error *err);
/* A step's all-reduce: begin before backward, ready(first) each time the gradients from arena
 * offset `first` to the end are final, finish after backward (the sums are in place for what the
 * caller queues next: on a GPU in stream order, on the CPU on return). */
void grad_allreduce_begin(struct grad_allreduce *g, float *grads);
void grad_allreduce_ready(struct grad_allreduce *g, size_t first);
void grad_allreduce_finish(struct grad_allreduce *g);
/* Sums n doubles of backend memory over the ranks now, in place (in stream order on a GPU):
 * synchronized BatchNormalization's per-channel sums. Collective; nothing with one rank. */
void grad_allreduce_sum_f64(struct grad_allreduce *g, double *buf, size_t n);
/* Before the host reads device memory: waits for every sum started, with NCCL's timeout. */
void grad_allreduce_sync(struct grad_allreduce *g);
void grad_allreduce_free(struct grad_allreduce *g);

#endif
