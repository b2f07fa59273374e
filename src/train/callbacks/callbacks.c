#include "train/callbacks/callbacks.h"

#include <math.h>
#include <string.h>

/* The order matters where one reads what another decided: the NaN guard before anything reports a
 * loss; early stopping and the plateau's rate update the position before the checkpoint stores
 * it; the checkpoint is on disk before the signal stop says so, and before the Keras export
 * reads it back. */
static const struct fit_callback *const fit_callbacks[] = {
    &callback_nan_guard,      &callback_progress,   &callback_history,    &callback_early_stopping,
    &callback_reduce_lr,      &callback_checkpoint, &callback_keras_export, &callback_curves,
    &callback_signal_stop,
};

int fit_callbacks_run(struct fit_state *s, enum fit_event event, int64_t step, const double *row,
                      struct dp_error *err)
{
    for (size_t i = 0; i < sizeof fit_callbacks / sizeof fit_callbacks[0]; i++) {
        const struct fit_callback *cb = fit_callbacks[i];
        int rc = 0;
        switch (event) {
        case FIT_EPOCH_BEGIN: rc = cb->epoch_begin ? cb->epoch_begin(s, err) : 0; break;
        case FIT_READBACK: rc = cb->readback ? cb->readback(s, step, err) : 0; break;
        case FIT_EPOCH_END: rc = cb->epoch_end ? cb->epoch_end(s, row, err) : 0; break;
        case FIT_TRAIN_END: rc = cb->train_end ? cb->train_end(s, err) : 0; break;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

double monitor_value(const char *monitor, const double *row)
{
    int val = !strncmp(monitor, "val_", 4);
    int loss = strstr(monitor, "loss") != NULL;
    return row[val ? (loss ? HISTORY_VAL_LOSS : HISTORY_VAL_METRIC) : (loss ? HISTORY_LOSS : HISTORY_METRIC)];
}

int monitor_improved(enum monitor_mode mode, double value, double best, double min_delta)
{
    if (isnan(value))
        return 0;
    if (isnan(best))
        return 1;
    return mode == MONITOR_MODE_MIN ? value < best - min_delta : value > best + min_delta;
}
