/* Stops training when the loss becomes NaN or infinite, before anything reports it or writes a
 * checkpoint of such weights: the last good checkpoint stays as it was (exit 4). */
#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "train/callbacks/callbacks.h"

static int nan_guard_readback(struct fit_state *s, int64_t step, struct dp_error *err)
{
    double loss = s->loop.acc[LOSS_ACC_LOSS];
    if (isfinite(loss))
        return 0;
    if (s->o->tty)
        printf("\n");
    int have_last = access(s->path_last, F_OK) == 0;
    return dp_error_set(err, DP_EXIT_DIVERGED, "loss became %s at epoch %lld step %lld; training stopped (%s%s). Try "
                        "a lower learning rate.", isnan(loss) ? "NaN" : "infinite", (long long)s->loop.epoch + 1,
                        (long long)step + 1, have_last ? "the last good checkpoint is intact: " :
                        "no checkpoint was written yet", have_last ? s->path_last : "");
}

const struct fit_callback callback_nan_guard = {.name = "nan guard", .readback = nan_guard_readback};
