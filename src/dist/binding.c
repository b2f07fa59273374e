#include "dist/binding.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dist/backend_select.h"
#include "dist/comm.h"

#ifdef DPTRAIN_HAVE_CUDA
#include "backend_cuda.h"
#endif

static int visible_cuda_devices(void)
{
#ifdef DPTRAIN_HAVE_CUDA
    return backend_cuda_device_count();
#else
    return 0;
#endif
}

/* The launcher's node-local rank: mpirun's first, because under mpirun inside an allocation every
 * rank sees SLURM_LOCALID=0. Returns -1 when neither is set. */
static int launcher_local_rank(char *source, size_t len)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v) {
            snprintf(source, len, "%s", vars[i]);
            return atoi(v);
        }
    }
    return -1;
}

static void print_table(const struct binding *all, int n)
{
    printf("Binding (%d rank%s):\n  %-5s %-16s %-36s %-22s %-6s %-28s %s\n", n, n == 1 ? "" : "s", "rank", "host",
           "local rank", "CUDA_VISIBLE_DEVICES", "device", "GPU", "PCI bus id");
    for (int r = 0; r < n; r++) {
        char local[64], dev[16];
        snprintf(local, sizeof local, "%d (%s)", all[r].local_rank, all[r].local_source);
        if (all[r].device >= 0)
            snprintf(dev, sizeof dev, "%d", all[r].device);
        else
            snprintf(dev, sizeof dev, "-");
        printf("  %-5d %-16s %-36s %-22s %-6s %-28s %s\n", r, all[r].host, local, all[r].visible, dev, all[r].gpu,
               all[r].bus_id);
    }
    fflush(stdout);
}

int binding_plan(struct binding *all, int P, int me, int want_gpu, enum allreduce_kind allreduce, int *isolated,
                 struct dp_error *err)
{
    struct binding *b = &all[me];
    /* Ranks on my node, my index among them (the fallback local rank), and whether they all see
     * different single devices (what --gpus-per-task does). */
    int on_node = 0, index_on_node = 0, distinct = 1;
    for (int r = 0; r < P; r++) {
        if (strcmp(all[r].host, b->host))
            continue;
        if (r < me)
            index_on_node++;
        on_node++;
        for (int q = 0; q < r; q++)
            if (!strcmp(all[q].host, b->host) && !strcmp(all[q].visible, all[r].visible))
                distinct = 0;
    }
    if (b->local_rank < 0 || b->local_rank >= on_node) {
        b->local_rank = index_on_node;
        snprintf(b->local_source, sizeof b->local_source, "node order");
    }
    *isolated = 0;
    b->device = -1;
    if (!want_gpu)
        return 0;
    int count = b->visible_count;
    if (count == 0)
        return dp_error_set(err, DP_EXIT_INPUT, "--device cuda: no CUDA device visible on %s (CUDA_VISIBLE_DEVICES=%s)",
                            b->host, b->visible);
    if (on_node > count) {
        if (count == 1 && distinct && strcmp(b->visible, "unset"))
            *isolated = 1;
        else if (allreduce != ALLREDUCE_MPI)
            return dp_error_set(err, DP_EXIT_INPUT,
                                "%d ranks on %s but %d visible GPU%s (CUDA_VISIBLE_DEVICES=%s): run one rank per "
                                "GPU, or set fit.allreduce = \"mpi\" to let ranks share a GPU",
                                on_node, b->host, count, count == 1 ? "" : "s", b->visible);
    }
    b->device = b->local_rank % count;
    return 0;
}

const struct backend *binding_select(const char *device, enum allreduce_kind allreduce, struct binding *mine,
                                     struct dp_error *err)
{
    if (!device)
        device = "auto";
    if (strcmp(device, "cpu") && strcmp(device, "cuda") && strcmp(device, "auto")) {
        dp_error_set(err, DP_EXIT_INPUT, "--device %s: expected cpu, cuda or auto", device);
        return NULL;
    }
    memset(mine, 0, sizeof *mine);
    int P = comm_world.size;
    mine->rank = comm_world.rank;
    mine->device = -1;
    comm_node_name(mine->host, sizeof mine->host);
    const char *cvd = getenv("CUDA_VISIBLE_DEVICES");
    snprintf(mine->visible, sizeof mine->visible, "%s", cvd ? cvd : "unset");
    mine->visible_count = strcmp(device, "cpu") ? visible_cuda_devices() : 0;
    mine->local_rank = launcher_local_rank(mine->local_source, sizeof mine->local_source);
    snprintf(mine->gpu, sizeof mine->gpu, "cpu");
    snprintf(mine->bus_id, sizeof mine->bus_id, "-");

    struct binding *all = dp_malloc((size_t)P * sizeof *all, "the binding table");
    comm_allgather_bytes(mine, all, sizeof *mine);
    int min_count = mine->visible_count;
    for (int r = 0; r < P; r++)
        if (all[r].visible_count < min_count)
            min_count = all[r].visible_count;
    int want_gpu = !strcmp(device, "cuda") || (!strcmp(device, "auto") && min_count > 0);
    int isolated = 0;
    const struct backend *be = NULL;
    if (binding_plan(all, P, mine->rank, want_gpu, allreduce, &isolated, err) == 0) {
        *mine = all[mine->rank];
        if (isolated && mine->local_rank == 0)
            dp_warn("%s: each rank sees one GPU (CUDA_VISIBLE_DEVICES=%s here), as --gpus-per-task does; NCCL "
                    "cannot use peer-to-peer or NVLink between them. Request --gres=gpu:N with "
                    "--ntasks-per-node=N instead", mine->host, mine->visible);
        if (mine->device < 0)
            be = backend_select("cpu", 0, err);
        else
            be = backend_select_gpu(mine->device, mine->gpu, sizeof mine->gpu, mine->bus_id, sizeof mine->bus_id,
                                    err);
    }
    if (be) {
        comm_allgather_bytes(mine, all, sizeof *mine);
        if (mine->rank == 0 && (P > 1 || want_gpu))
            print_table(all, P);
    }
    free(all);
    return be;
}
