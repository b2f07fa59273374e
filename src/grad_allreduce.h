/* Summing the gradient arena over ranks, once per step. Three ways:
 *   "mpi"         host memory (CPU backend): MPI_Allreduce in place;
 *   "mpi-staged"  device memory with fit.allreduce = "mpi": a host copy, MPI, and back (lets
 *                 several ranks share one GPU, and needs no NCCL);
 *   "nccl"        device memory: one ncclAllReduce over the flat buffer, on the GPU.
 * A single rank skips the all-reduce ("none"), unless fit.allreduce = "nccl" asks for NCCL by
 * name on a GPU: then a communicator of one runs the NCCL path (the single-GPU test of it). */
#ifndef DPTRAIN_GRAD_ALLREDUCE_H
#define DPTRAIN_GRAD_ALLREDUCE_H

#include <stddef.h>

#include "backend.h"
#include "errors.h"
#include "jobfile.h"

struct grad_allreduce {
    const char *name;
    const struct backend *be;
    size_t floats;
    float *host; /* staging for "mpi-staged" */
};

/* Collective: every rank calls it with the same arguments. Returns 0, or -1 with err set (NCCL
 * asked for where dptrain was built without it). */
int grad_allreduce_init(struct grad_allreduce *g, const struct backend *be, enum allreduce_kind kind,
                        double timeout, size_t floats, struct dp_error *err);
void grad_allreduce_sum(struct grad_allreduce *g, float *grads);
void grad_allreduce_free(struct grad_allreduce *g);

#endif
