#include "net/backend.h"

#include <omp.h>

#include "base/timeutil.h"

void openblas_set_num_threads(int);

void backend_set_threads(int64_t threads)
{
    if (threads > 0) {
        openblas_set_num_threads((int)threads);
        omp_set_num_threads((int)threads);
    }
}

double backend_clock(const struct backend *be)
{
    be->synchronize();
    return time_now();
}
