/* Process group: one MPI rank per model replica. Without a launcher (no mpirun/srun) dptrain runs
 * as a single process and never initializes MPI, so it works where MPI is not set up.
 *
 * Every collective here is called by every rank in the same order. Rank 0 alone prints progress
 * and writes files (other ranks' stdout goes to /dev/null); every rank prints its own errors,
 * prefixed with its rank, and any fatal error aborts the whole job (MPI_Abort), so no rank waits
 * forever in a collective. */
#ifndef DPTRAIN_COMM_H
#define DPTRAIN_COMM_H

#include <stddef.h>
#include <stdint.h>

/* Which rank uses which device, and ranks per node, are src/dist/binding.c's. */
struct comm {
    int rank, size;
    int mpi; /* MPI was initialized */
};

extern struct comm comm_world;

/* Initializes MPI when launched by mpirun/srun (or DPTRAIN_MPI=1); otherwise size 1. */
void comm_init(int *argc, char ***argv);
void comm_finalize(void);

/* In place sums over all ranks (no-ops for one rank). */
void comm_allreduce_sum_f32(float *buf, size_t n);
void comm_allreduce_sum_f64(double *buf, size_t n);
void comm_allreduce_max_f64(double *buf, size_t n);
void comm_allreduce_min_f64(double *buf, size_t n);
void comm_bcast_bytes(void *buf, size_t bytes, int root);

/* Non-blocking in-place float sums (gradient buckets started while backward runs): each start
 * adds requests to r; progress lets MPI move them along between layers (Open MPI has no progress
 * thread); wait completes them all. */
struct comm_requests {
    void *reqs; /* MPI_Request[cap] */
    int count, cap;
};
void comm_iallreduce_sum_f32(struct comm_requests *r, float *buf, size_t n);
void comm_requests_progress(struct comm_requests *r);
void comm_requests_wait(struct comm_requests *r);
void comm_requests_free(struct comm_requests *r);
void comm_barrier(void);
/* Every rank's `bytes` bytes, in rank order, into all (size * bytes); a copy for one rank. */
void comm_allgather_bytes(const void *mine, void *all, size_t bytes);
/* Every rank's bytes (any length, each rank's own) concatenated in rank order into a malloc'd
 * buffer on every rank; *total its length. */
void *comm_allgatherv_bytes(const void *mine, size_t bytes, size_t *total);

/* Every collective waits at most this long (seconds; 0, the default: forever): past it, the rank
 * that waits ends the whole job with a message naming the collective and the context. */
void comm_set_collective_timeout(double seconds);
/* Where training is (epoch and step, from 1), for that message. */
void comm_set_position(long long epoch, long long step);
/* Ends the job after a wait on the other ranks took longer than `setting` (limit seconds) allows:
 * a roll call names the ranks (and nodes) that no longer answer, and the exit status is
 * DP_EXIT_RANK_LOST, so a batch script requeues and resumes from last.h5. */
void comm_lost_rank_exit(const char *what, double limit, const char *setting) __attribute__((__noreturn__));

/* This process's node: slurmd's name for it when there is one (several test nodes on one machine
 * may share a hostname but not SLURMD_NODENAME), else the hostname. */
void comm_node_name(char *out, size_t len);

/* Ends the whole job with code (MPI_Abort when several ranks run). */
void comm_abort(int code) __attribute__((__noreturn__));

#endif
