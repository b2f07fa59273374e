#include "dist/comm.h"

#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/errors.h"
#include "base/timeutil.h"

struct comm comm_world = {0, 1, 0};

#define MPI_CHECK(expr)                                                                              \
    do {                                                                                             \
        int mpi_rc_ = (expr);                                                                        \
        if (mpi_rc_ != MPI_SUCCESS) {                                                                \
            char mpi_msg_[MPI_MAX_ERROR_STRING];                                                     \
            int mpi_len_ = 0;                                                                        \
            MPI_Error_string(mpi_rc_, mpi_msg_, &mpi_len_);                                          \
            dp_die(DP_EXIT_INTERNAL, "MPI: %s failed: %s (%s:%d)", #expr, mpi_msg_, __FILE__, __LINE__); \
        }                                                                                            \
    } while (0)

/* Every rank's node, gathered at the start (for naming a lost rank), and a communicator of its own
 * for the roll call after a timeout, so its messages never meet the training's. */
#define NODE_NAME_BYTES 64
static char (*rank_nodes)[NODE_NAME_BYTES];
static MPI_Comm roll_comm = MPI_COMM_NULL;
static void gather_node_names(void);

static int launched_by_mpi(void)
{
    const char *force = getenv("DPTRAIN_MPI");
    if (force)
        return strcmp(force, "0") != 0;
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS", NULL};
    for (int i = 0; vars[i]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

static void abort_job(int code)
{
    if (comm_world.mpi && comm_world.size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

/* Rank and size from the launcher's environment, for messages before MPI is up (or when MPI_Init
 * itself fails). mpirun's own variables come first: inside an allocation every rank it starts sees
 * SLURM_PROCID=0. */
static void rank_from_environment(void)
{
    static const char *const pairs[][2] = {
        {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"}, {"PMI_RANK", "PMI_SIZE"}, {"SLURM_PROCID", "SLURM_NTASKS"}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        const char *r = getenv(pairs[i][0]), *n = getenv(pairs[i][1]);
        if (r && n && atoi(n) > 0) {
            dp_set_exit_hook(NULL, atoi(r), atoi(n));
            return;
        }
    }
}

void comm_init(int *argc, char ***argv)
{
    if (!launched_by_mpi())
        return;
    rank_from_environment();
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "dptrain: error: MPI_Init_thread failed\n");
        exit(DP_EXIT_INTERNAL);
    }
    comm_world.mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &comm_world.rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &comm_world.size));
    dp_set_exit_hook(abort_job, comm_world.rank, comm_world.size);
    if (comm_world.size > 1)
        gather_node_names();
    if (comm_world.rank != 0 && !freopen("/dev/null", "w", stdout))
        dp_warn("cannot silence stdout on rank %d", comm_world.rank);
}

void comm_finalize(void)
{
    if (roll_comm != MPI_COMM_NULL)
        MPI_Comm_free(&roll_comm);
    free(rank_nodes);
    rank_nodes = NULL;
    if (comm_world.mpi)
        MPI_Finalize();
}

/* MPI counts are int: longer buffers go in pieces. */
#define MPI_PIECE ((size_t)1 << 30)

/* The collective watchdog: 0 waits forever. */
static double collective_timeout;
static long long position_epoch = -1, position_step; /* where training is; -1: setting up */

void comm_set_collective_timeout(double seconds) { collective_timeout = seconds; }

void comm_set_position(long long epoch, long long step)
{
    position_epoch = epoch;
    position_step = step;
}

void comm_node_name(char *out, size_t len)
{
    const char *slurm = getenv("SLURMD_NODENAME");
    if (slurm && *slurm) {
        snprintf(out, len, "%s", slurm);
        return;
    }
    if (gethostname(out, len - 1) != 0)
        snprintf(out, len, "unknown");
    out[len - 1] = 0;
}

static void gather_node_names(void)
{
    char mine[NODE_NAME_BYTES] = {0};
    comm_node_name(mine, sizeof mine);
    rank_nodes = dp_calloc((size_t)comm_world.size, NODE_NAME_BYTES, "node names");
    MPI_CHECK(MPI_Allgather(mine, NODE_NAME_BYTES, MPI_CHAR, rank_nodes, NODE_NAME_BYTES, MPI_CHAR, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &roll_comm));
    MPI_Comm_set_errhandler(roll_comm, MPI_ERRORS_RETURN);
}

/* The roll call after a timeout: this rank sends its number to every other and listens for theirs.
 * The live ranks are stuck in the same collective, so each times out within about a step of the
 * others and answers; those not heard from within the grace period (a quarter of the timeout, 2 to
 * 30 s) are the lost ones. Errors are not fatal here (a send to a dead peer may fail), and the
 * requests stay pending: the job ends right after. */
static void roll_call(char *out, size_t len)
{
    static int me; /* the send buffer outlives this call */
    int P = comm_world.size, missing = P - 1;
    me = comm_world.rank;
    MPI_Request *recv = dp_calloc((size_t)P, sizeof *recv, "roll call"), send;
    int *answer = dp_calloc((size_t)P, sizeof *answer, "roll call");
    for (int r = 0; r < P; r++) {
        recv[r] = MPI_REQUEST_NULL;
        if (r == me)
            continue;
        if (MPI_Irecv(&answer[r], 1, MPI_INT, r, 0, roll_comm, &recv[r]) != MPI_SUCCESS)
            recv[r] = MPI_REQUEST_NULL;
        if (MPI_Isend(&me, 1, MPI_INT, r, 0, roll_comm, &send) == MPI_SUCCESS)
            MPI_Request_free(&send); /* completes on its own; nothing waits for it */
    }
    double grace = fmin(fmax(collective_timeout / 4, 2.0), 30.0), start = time_now();
    char *heard = dp_calloc((size_t)P, 1, "roll call");
    heard[me] = 1;
    while (missing > 0 && time_now() - start < grace) {
        for (int r = 0; r < P; r++) {
            int done = 0;
            if (!heard[r] && recv[r] != MPI_REQUEST_NULL && MPI_Test(&recv[r], &done, MPI_STATUS_IGNORE) == MPI_SUCCESS &&
                done) {
                heard[r] = 1;
                missing--;
            }
        }
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    size_t at = 0;
    int listed = 0;
    for (int r = 0; r < P && at + 1 < len; r++)
        if (!heard[r]) {
            if (listed++ == 8) {
                at += (size_t)snprintf(out + at, len - at, ", ...");
                break;
            }
            at += (size_t)snprintf(out + at, len - at, "%srank %d on %s", listed > 1 ? ", " : "", r, rank_nodes[r]);
        }
    if (!listed)
        snprintf(out, len, "every rank answers (they wait in different collectives: please report this)");
    else if (at + 1 < len)
        snprintf(out + at, len - at, " %s not answer (process, node or link gone)", listed == 1 ? "does" : "do");
}

void comm_lost_rank_exit(const char *what, double waited_limit, const char *setting)
{
    char where[64] = "setting up", lost[1024] = "";
    if (position_epoch >= 0)
        snprintf(where, sizeof where, "epoch %lld, step %lld", position_epoch, position_step);
    if (roll_comm != MPI_COMM_NULL)
        roll_call(lost, sizeof lost);
    fprintf(stderr, "dptrain: error: [rank %d/%d on %s] %s did not complete within %s = %g s (%s): %s; ending "
                    "the job (exit %d: requeue to resume from last.h5)\n",
            comm_world.rank, comm_world.size, rank_nodes ? rank_nodes[comm_world.rank] : "?", what, setting,
            waited_limit, where, lost[0] ? lost : "another rank stopped, hangs or died", DP_EXIT_RANK_LOST);
    fflush(stderr);
    abort_job(DP_EXIT_RANK_LOST);
    exit(DP_EXIT_RANK_LOST);
}

/* Waits for requests of a collective. With a timeout set, tests them instead of blocking in MPI:
 * for the first 100 ms at full speed, as MPI's own wait does (Open MPI moves a collective along only
 * inside MPI calls, so a rank that sleeps holds up the others: every step's sums stay as fast as
 * before), then with a 200 us nap between tests, so a long wait does not spin a core; past the
 * deadline the whole job ends, naming the collective, where training was and the ranks lost. */
static void wait_collective(MPI_Request *reqs, int n, const char *what)
{
    if (n == 0)
        return;
    if (collective_timeout <= 0) {
        MPI_CHECK(MPI_Waitall(n, reqs, MPI_STATUSES_IGNORE));
        return;
    }
    double start = time_now();
    for (;;) {
        int done = 0;
        MPI_CHECK(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE));
        if (done)
            return;
        double waited = time_now() - start;
        if (waited > collective_timeout)
            comm_lost_rank_exit(what, collective_timeout, "fit.collective_timeout");
        if (waited > 0.1) {
            struct timespec ts = {0, 200000};
            nanosleep(&ts, NULL);
        }
    }
}

void comm_allreduce_sum_f32(float *buf, size_t n)
{
    if (comm_world.size > 1)
        for (size_t at = 0; at < n; at += MPI_PIECE) {
            MPI_Request r;
            MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf + at, (int)(n - at < MPI_PIECE ? n - at : MPI_PIECE), MPI_FLOAT,
                                     MPI_SUM, MPI_COMM_WORLD, &r));
            wait_collective(&r, 1, "the gradient sum (MPI_Allreduce)");
        }
}

static void allreduce_f64(double *buf, size_t n, MPI_Op op)
{
    if (comm_world.size > 1)
        for (size_t at = 0; at < n; at += MPI_PIECE) {
            MPI_Request r;
            MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf + at, (int)(n - at < MPI_PIECE ? n - at : MPI_PIECE),
                                     MPI_DOUBLE, op, MPI_COMM_WORLD, &r));
            wait_collective(&r, 1, "an agreement of the ranks (MPI_Allreduce)");
        }
}

void comm_iallreduce_sum_f32(struct comm_requests *r, float *buf, size_t n)
{
    if (comm_world.size <= 1)
        return;
    for (size_t at = 0; at < n; at += MPI_PIECE) {
        if (r->count == r->cap) {
            r->cap = r->cap ? 2 * r->cap : 16;
            r->reqs = dp_realloc(r->reqs, (size_t)r->cap * sizeof(MPI_Request), "MPI requests");
        }
        MPI_Request *reqs = r->reqs;
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, buf + at, (int)(n - at < MPI_PIECE ? n - at : MPI_PIECE), MPI_FLOAT,
                                 MPI_SUM, MPI_COMM_WORLD, &reqs[r->count++]));
    }
}

void comm_requests_progress(struct comm_requests *r)
{
    int done = 0;
    if (r->count > 0)
        MPI_CHECK(MPI_Testall(r->count, r->reqs, &done, MPI_STATUSES_IGNORE));
    if (done)
        r->count = 0;
}

void comm_requests_wait(struct comm_requests *r)
{
    wait_collective(r->reqs, r->count, "the gradient sum (MPI_Iallreduce)");
    r->count = 0;
}

void comm_requests_free(struct comm_requests *r)
{
    free(r->reqs);
    memset(r, 0, sizeof *r);
}

void comm_allreduce_sum_f64(double *buf, size_t n) { allreduce_f64(buf, n, MPI_SUM); }
void comm_allreduce_max_f64(double *buf, size_t n) { allreduce_f64(buf, n, MPI_MAX); }
void comm_allreduce_min_f64(double *buf, size_t n) { allreduce_f64(buf, n, MPI_MIN); }

void comm_bcast_bytes(void *buf, size_t bytes, int root)
{
    if (comm_world.size > 1) {
        MPI_Request r;
        MPI_CHECK(MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, MPI_COMM_WORLD, &r));
        wait_collective(&r, 1, "a broadcast from rank 0 (MPI_Bcast)");
    }
}

void comm_allgather_bytes(const void *mine, void *all, size_t bytes)
{
    if (comm_world.size > 1) {
        MPI_Request r;
        MPI_CHECK(MPI_Iallgather(mine, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, MPI_COMM_WORLD, &r));
        wait_collective(&r, 1, "a gathering of all ranks (MPI_Allgather)");
    } else
        memcpy(all, mine, bytes);
}

void *comm_allgatherv_bytes(const void *mine, size_t bytes, size_t *total)
{
    int size = comm_world.size > 1 ? comm_world.size : 1;
    uint64_t *sizes = dp_calloc((size_t)size, sizeof(uint64_t), "gathered sizes");
    uint64_t own = bytes;
    comm_allgather_bytes(&own, sizes, sizeof own);
    int *counts = dp_calloc((size_t)size, sizeof(int), "gathered sizes"), *displs = dp_calloc((size_t)size, sizeof(int), "gathered sizes");
    uint64_t sum = 0;
    for (int i = 0; i < size; i++) {
        if (sizes[i] > INT_MAX || sum + sizes[i] > INT_MAX)
            dp_die(DP_EXIT_INTERNAL, "gathering %llu bytes from the ranks: more than MPI's int counts take",
                   (unsigned long long)(sum + sizes[i]));
        counts[i] = (int)sizes[i];
        displs[i] = (int)sum;
        sum += sizes[i];
    }
    char *all = dp_malloc(sum ? (size_t)sum : 1, "gathered bytes");
    if (comm_world.size > 1) {
        MPI_Request r;
        MPI_CHECK(MPI_Iallgatherv(mine, (int)bytes, MPI_BYTE, all, counts, displs, MPI_BYTE, MPI_COMM_WORLD, &r));
        wait_collective(&r, 1, "a gathering of all ranks (MPI_Allgatherv)");
    } else if (bytes) {
        memcpy(all, mine, bytes);
    }
    free(sizes);
    free(counts);
    free(displs);
    *total = (size_t)sum;
    return all;
}

void comm_barrier(void)
{
    if (comm_world.size > 1) {
        MPI_Request r;
        MPI_CHECK(MPI_Ibarrier(MPI_COMM_WORLD, &r));
        wait_collective(&r, 1, "a barrier (MPI_Barrier)");
    }
}

void comm_abort(int code)
{
    abort_job(code);
    exit(code);
}

