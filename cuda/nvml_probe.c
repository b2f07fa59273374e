/* GPU utilization from NVML, loaded at run time (libnvidia-ml.so.1 comes with the driver, not the
 * toolkit, so dptrain neither links it nor needs its header). Only the few entry points used are
 * declared, with the types the NVML API documents. Without the library every query says "not
 * available" and training goes on.
 * STATUS: compiled in CI; not yet run on a GPU. */
#include "nvml_probe.h"

#include <dlfcn.h>
#include <stddef.h>

typedef int nvml_return;                     /* nvmlReturn_t: 0 is NVML_SUCCESS */
typedef struct nvml_device_opaque *nvml_device; /* nvmlDevice_t */
struct nvml_utilization {                    /* nvmlUtilization_t */
    unsigned int gpu, memory;
};

static nvml_return (*init_v2)(void);
static nvml_return (*by_bus_id)(const char *bus_id, nvml_device *device);
static nvml_return (*utilization_rates)(nvml_device device, struct nvml_utilization *u);
static nvml_device device;
static int state; /* 0 untried, 1 ready, -1 unavailable */

int nvml_probe_open(const char *pci_bus_id)
{
    if (state)
        return state > 0 ? 0 : -1;
    state = -1;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return -1;
    init_v2 = (nvml_return(*)(void))dlsym(lib, "nvmlInit_v2");
    by_bus_id = (nvml_return(*)(const char *, nvml_device *))dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    utilization_rates = (nvml_return(*)(nvml_device, struct nvml_utilization *))dlsym(lib, "nvmlDeviceGetUtilizationRates");
    if (!init_v2 || !by_bus_id || !utilization_rates || init_v2() != 0 || by_bus_id(pci_bus_id, &device) != 0)
        return -1;
    state = 1;
    return 0;
}

int nvml_probe_utilization(double *percent)
{
    struct nvml_utilization u;
    if (state <= 0 || utilization_rates(device, &u) != 0)
        return -1;
    *percent = (double)u.gpu;
    return 0;
}
