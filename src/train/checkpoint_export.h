/* dptrain export and fit's RUN_DIR/model.keras: a checkpoint's model written as a Keras file. */
#ifndef DPTRAIN_CHECKPOINT_EXPORT_H
#define DPTRAIN_CHECKPOINT_EXPORT_H

#include "base/errors.h"

/* Writes the model of a dptrain checkpoint (its job, weights, normalization and input transform)
 * to out (.keras or .h5, keras_model_write); -1 with err when it cannot (DP_EXIT_INPUT: a setting
 * Keras has no equivalent for, or a damaged checkpoint). */
int checkpoint_export_keras(const char *checkpoint, const char *out, struct dp_error *err);

#endif
