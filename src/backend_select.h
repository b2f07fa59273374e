/* Choosing the backend: "cpu", "cuda", or "auto" (cuda when built with CUDA and a GPU is visible). */
#ifndef DPTRAIN_BACKEND_SELECT_H
#define DPTRAIN_BACKEND_SELECT_H

#include "backend.h"
#include "errors.h"

/* Returns the backend, initialized for this rank (GPU local_rank % count), or NULL with err set. */
const struct backend *backend_select(const char *device, int local_rank, struct dp_error *err);

#endif
