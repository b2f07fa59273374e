#include "backend_select.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef DPTRAIN_HAVE_CUDA
#include "backend_cuda.h"
#endif

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
#ifdef DPTRAIN_HAVE_CUDA
        char name[256], bus[64], host[256] = "";
        if (backend_cuda_init(local_rank, name, sizeof name, bus, sizeof bus, err) != 0)
            return NULL;
        gethostname(host, sizeof host - 1);
        fprintf(stderr, "dptrain: %s local rank %d: GPU %s (%s)\n", host, local_rank, name, bus);
        return &backend_cuda;
#else
        dp_error_set(err, DP_EXIT_INPUT, "--device cuda: this dptrain was built without CUDA");
        return NULL;
#endif
    }
    dp_error_set(err, DP_EXIT_INPUT, "--device %s: expected cpu, cuda or auto", device);
    return NULL;
}
