/* Which device each rank trains on, and the start-up table that says so.
 *
 * One rank per GPU: rank r on a node uses visible device (node-local rank) mod (visible devices).
 * The node-local rank comes from mpirun (OMPI_COMM_WORLD_LOCAL_RANK), srun (SLURM_LOCALID) or MPI's
 * shared-memory communicator. When Slurm narrowed CUDA_VISIBLE_DEVICES to one device per rank
 * (--gpus-per-task) that device is used, with a warning: NCCL then cannot see the peer GPUs. More
 * ranks on a node than GPUs is refused unless the job asks for the MPI all-reduce (fit.allreduce =
 * "mpi"), which lets several ranks share a GPU. */
#ifndef DPTRAIN_BINDING_H
#define DPTRAIN_BINDING_H

#include "net/backend.h"
#include "base/errors.h"
#include "job/jobfile.h"

struct binding {
    char host[64];
    char visible[64];      /* CUDA_VISIBLE_DEVICES, or "unset" */
    char local_source[32]; /* where local_rank came from */
    char gpu[96];          /* device name, or "cpu" */
    char bus_id[32];       /* PCI bus id, or "-" */
    int rank, local_rank, device; /* device: index among the visible ones, -1 on CPU */
    int visible_count;     /* CUDA devices this rank sees */
};

/* Chooses and initializes the backend for this rank (collective: every rank calls it) and prints
 * the binding table on rank 0 when several ranks run or a GPU is used. `device` is "cpu", "cuda"
 * or "auto" (NULL: auto). Returns NULL with err set when the request cannot be met. */
const struct backend *binding_select(const char *device, enum allreduce_kind allreduce, struct binding *mine,
                                     struct dp_error *err);

/* The decision alone, over every rank's record (host, visible devices and count, launcher local
 * rank or -1): fills all[me].local_rank (node order when the launcher gave none) and .device (-1:
 * CPU); *isolated says each rank on the node sees a different single GPU. Returns 0, or -1 with err
 * set when the node has more ranks than GPUs and the all-reduce is not "mpi". */
int binding_plan(struct binding *all, int P, int me, int want_gpu, enum allreduce_kind allreduce, int *isolated,
                 struct dp_error *err);

#endif
