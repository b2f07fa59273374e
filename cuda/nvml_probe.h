/* GPU utilization through NVML when the driver's library is there (see nvml_probe.c). */
#ifndef DPTRAIN_NVML_PROBE_H
#define DPTRAIN_NVML_PROBE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Opens NVML for the device with this PCI bus id; 0, or -1 when NVML is not available. */
int nvml_probe_open(const char *pci_bus_id);
/* Percent of the last sample period in which a kernel ran; 0, or -1 when not available. */
int nvml_probe_utilization(double *percent);

#ifdef __cplusplus
}
#endif

#endif
