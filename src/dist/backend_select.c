#include "dist/backend_select.h"

#include <stdio.h>
#include <string.h>


#ifdef DPTRAIN_HAVE_CUDA
#include "backend_cuda.h"
#endif

const struct backend *backend_select_gpu(int device, char *name, size_t name_len, char *bus_id, size_t bus_len,
                                         struct dp_error *err)
{
#ifdef DPTRAIN_HAVE_CUDA
    if (backend_cuda_init(device, name, name_len, bus_id, bus_len, err) != 0)
        return NULL;
    return &backend_cuda;
#else
    (void)device, (void)name, (void)name_len, (void)bus_id, (void)bus_len;
    dp_error_set(err, DP_EXIT_INPUT, "--device cuda: this dptrain was built without CUDA");
    return NULL;
#endif
}

const char *backend_build_info(void)
{
#ifdef DPTRAIN_HAVE_CUDA
    return backend_cuda_build_info();
#else
    return "cpu (built without CUDA)";
#endif
}

const struct backend *backend_select(const char *device, int local_rank, struct dp_error *err)
{
    if (!device || !strcmp(device, "auto")) {
#ifdef DPTRAIN_HAVE_CUDA
        if (backend_cuda_device_count() > 0)
            return backend_select("cuda", local_rank, err);
#endif
        return &backend_cpu;
    }
    if (!strcmp(device, "cpu"))
        return &backend_cpu;
    if (!strcmp(device, "cuda")) {
        char name[128], bus[32];
        const struct backend *be = backend_select_gpu(local_rank, name, sizeof name, bus, sizeof bus, err);
        if (be)
            fprintf(stderr, "dptrain: GPU %s (%s)\n", name, bus);
        return be;
    }
    dp_error_set(err, DP_EXIT_INPUT, "--device %s: expected cpu, cuda or auto", device);
    return NULL;
}

