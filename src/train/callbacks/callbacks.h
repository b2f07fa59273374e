/* The fit loop's callbacks, in the spirit of Keras' fit callbacks: each is told when an epoch
 * begins, at each read-back point (the epoch's loss sums just agreed by the ranks, after step
 * `step`, counted from 0), when an epoch ends (its history row complete and the position counting
 * it) and when training ends normally. Each returns 0 to go on, TRAINER_STOPPED to stop after
 * checkpointing, or -1 with err set. They run in the order of fit_callbacks[]; a missing hook
 * does nothing. One file each: adding a callback is its file and its line in callbacks.c. */
#ifndef DPTRAIN_CALLBACKS_H
#define DPTRAIN_CALLBACKS_H

#include "train/fit_state.h"

struct fit_callback {
    const char *name;
    int (*epoch_begin)(struct fit_state *s, struct dp_error *err);
    int (*readback)(struct fit_state *s, int64_t step, struct dp_error *err);
    int (*epoch_end)(struct fit_state *s, const double *row, struct dp_error *err);
    int (*train_end)(struct fit_state *s, struct dp_error *err);
};

enum fit_event { FIT_EPOCH_BEGIN, FIT_READBACK, FIT_EPOCH_END, FIT_TRAIN_END };

/* Runs every callback's hook for the event in order, until one returns non-zero. */
int fit_callbacks_run(struct fit_state *s, enum fit_event event, int64_t step, const double *row,
                      struct dp_error *err);

/* The value of a monitor ("val_loss", "accuracy", ...) in a history row, and whether a value
 * improves on the best so far (NaN best: anything does; NaN value: nothing). */
double monitor_value(const char *monitor, const double *row);
int monitor_improved(enum monitor_mode mode, double value, double best, double min_delta);

extern const struct fit_callback callback_nan_guard, callback_progress, callback_history, callback_early_stopping,
    callback_reduce_lr, callback_checkpoint, callback_keras_export, callback_curves, callback_signal_stop;

#endif
