/* Choosing the backend: "cpu", "cuda", or "auto" (cuda when built with CUDA and a GPU is visible). */
#ifndef DPTRAIN_BACKEND_SELECT_H
#define DPTRAIN_BACKEND_SELECT_H

#include "net/backend.h"
#include "base/errors.h"

/* Returns the backend, initialized for this rank (GPU local_rank % count), or NULL with err set. */
const struct backend *backend_select(const char *device, int local_rank, struct dp_error *err);

/* The CUDA backend on visible device `device`, with its name and PCI bus id; NULL with err set
 * when it cannot start (or dptrain was built without CUDA). */
const struct backend *backend_select_gpu(int device, char *name, size_t name_len, char *bus_id, size_t bus_len,
                                         struct dp_error *err);

/* What this dptrain was built with, for --version: "cpu" or the CUDA build's GPU architectures
 * and NCCL. */
const char *backend_build_info(void);

#endif
