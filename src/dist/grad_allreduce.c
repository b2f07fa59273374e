#include "dist/grad_allreduce.h"

#include <stdlib.h>
#include <string.h>

#include "dist/comm.h"

#ifdef DPTRAIN_HAVE_NCCL
#include "nccl_comm.h"
#endif

int grad_allreduce_init(struct grad_allreduce *g, const struct backend *be, enum allreduce_kind kind,
                        double timeout, double bucket_mb, size_t floats, struct dp_error *err)
{
    memset(g, 0, sizeof *g);
    g->be = be;
    g->floats = floats;
    g->bucket_floats = (size_t)(bucket_mb * 1e6 / sizeof(float));
    int device = be->is_device;
    /* One rank has nothing to sum, unless NCCL is asked for by name: then a communicator of one
     * runs the real NCCL path (how it is tested on a single GPU). */
    if (comm_world.size == 1 && !(device && kind == ALLREDUCE_NCCL)) {
        g->kind = GRAD_ALLREDUCE_NONE, g->name = "none";
    } else if (!device) {
        if (kind == ALLREDUCE_NCCL)
            return dp_error_set(err, DP_EXIT_INPUT, "fit.allreduce = \"nccl\" needs the GPU backend (--device cuda)");
        g->kind = GRAD_ALLREDUCE_MPI, g->name = "mpi";
    } else if (kind == ALLREDUCE_MPI) {
        g->kind = GRAD_ALLREDUCE_MPI_STAGED, g->name = "mpi-staged";
        g->host = dp_malloc(floats * sizeof(float), "host copy of the gradients");
    } else {
#ifdef DPTRAIN_HAVE_NCCL
        char id[NCCL_COMM_ID_BYTES] = {0};
        if (comm_world.rank == 0 && nccl_comm_make_id(id, err) != 0)
            return -1;
        comm_bcast_bytes(id, sizeof id, 0);
        nccl_comm_set_timeout_handler(comm_lost_rank_exit);
        if (nccl_comm_init(id, comm_world.rank, comm_world.size, timeout, err) != 0)
            return -1;
        g->kind = GRAD_ALLREDUCE_NCCL, g->name = "nccl";
#else
        (void)timeout;
        return dp_error_set(err, DP_EXIT_INPUT,
                            "this dptrain was built without NCCL: set fit.allreduce = \"mpi\" for several GPU ranks");
#endif
    }
    return 0;
}

void grad_allreduce_begin(struct grad_allreduce *g, float *grads)
{
    g->grads = grads;
    g->unsent_end = g->floats;
    g->launches = 0;
}

/* Starts the sum of arena [first, unsent_end). */
static void launch(struct grad_allreduce *g, size_t first)
{
    size_t n = g->unsent_end - first;
    if (g->kind == GRAD_ALLREDUCE_MPI) {
        comm_iallreduce_sum_f32(&g->requests, g->grads + first, n);
#ifdef DPTRAIN_HAVE_NCCL
    } else if (g->kind == GRAD_ALLREDUCE_NCCL) {
        nccl_comm_allreduce_launch(g->grads + first, n);
#endif
    }
    g->unsent_end = first;
    g->launches++;
}

void grad_allreduce_ready(struct grad_allreduce *g, size_t first)
{
    if (g->bucket_floats == 0 || g->kind == GRAD_ALLREDUCE_NONE || g->kind == GRAD_ALLREDUCE_MPI_STAGED)
        return;
    if (first < g->unsent_end && g->unsent_end - first >= g->bucket_floats)
        launch(g, first);
    else if (g->kind == GRAD_ALLREDUCE_MPI)
        comm_requests_progress(&g->requests); /* MPI moves started sums only inside MPI calls */
}

void grad_allreduce_finish(struct grad_allreduce *g)
{
    if (g->kind == GRAD_ALLREDUCE_NONE)
        return;
    if (g->kind == GRAD_ALLREDUCE_MPI_STAGED) {
        g->be->download(g->host, g->grads, g->floats * sizeof(float));
        comm_allreduce_sum_f32(g->host, g->floats);
        g->be->upload(g->grads, g->host, g->floats * sizeof(float));
        g->launches = 1;
        return;
    }
    if (g->unsent_end > 0)
        launch(g, 0);
    if (g->kind == GRAD_ALLREDUCE_MPI)
        comm_requests_wait(&g->requests);
#ifdef DPTRAIN_HAVE_NCCL
    else if (g->kind == GRAD_ALLREDUCE_NCCL)
        nccl_comm_join();
#endif
}

void grad_allreduce_sum_f64(struct grad_allreduce *g, double *buf, size_t n)
{
    if (g->kind == GRAD_ALLREDUCE_MPI) {
        comm_allreduce_sum_f64(buf, n);
    } else if (g->kind == GRAD_ALLREDUCE_MPI_STAGED) {
        double *host = dp_malloc(n * sizeof(double), "host copy of sums");
        g->be->download(host, buf, n * sizeof(double));
        comm_allreduce_sum_f64(host, n);
        g->be->upload(buf, host, n * sizeof(double));
        free(host);
#ifdef DPTRAIN_HAVE_NCCL
    } else if (g->kind == GRAD_ALLREDUCE_NCCL) {
        nccl_comm_allreduce_f64_inline(buf, n);
#endif
    }
}

void grad_allreduce_sync(struct grad_allreduce *g)
{
#ifdef DPTRAIN_HAVE_NCCL
    if (g->kind == GRAD_ALLREDUCE_NCCL)
        nccl_comm_wait_all();
#else
    (void)g;
#endif
}

void grad_allreduce_free(struct grad_allreduce *g)
{
#ifdef DPTRAIN_HAVE_NCCL
    if (g->kind == GRAD_ALLREDUCE_NCCL)
        nccl_comm_destroy();
#endif
    free(g->host);
    comm_requests_free(&g->requests);
    memset(g, 0, sizeof *g);
}
