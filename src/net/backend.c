#include "net/backend.h"

#include "base/timeutil.h"

double backend_clock(const struct backend *be)
{
    be->synchronize();
    return time_now();
}
