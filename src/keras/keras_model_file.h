/* Whole-model Keras files that `keras.models.load_model` opens, written from dptrain's model:
 *   FILE.keras  Keras 3's native zip: metadata.json, config.json (the model's config with its
 *               compile_config) and model.weights.h5 (/layers/<layer>/vars/<i>, /optimizer/vars,
 *               /vars), as Keras 3.16 writes them;
 *   FILE.h5     the legacy whole-model HDF5: model_config and training_config attributes, the
 *               weights under /model_weights in the legacy layout.
 * Optimizer slot variables are not written (Keras does not need them; dptrain's checkpoints keep
 * them): only the optimizer's iteration count and rate, which Keras' optimizer holds from the
 * start.
 * Read back: the input normalization of a .keras file's Normalization layer, for predicting and
 * evaluating with its weights (the weights themselves: weights_load). */
#ifndef DPTRAIN_KERAS_MODEL_FILE_H
#define DPTRAIN_KERAS_MODEL_FILE_H

#include <stdint.h>

#include "base/errors.h"
#include "data/normalize.h"
#include "job/jobfile.h"
#include "keras/keras_config.h"
#include "net/model.h"

struct keras_export {
    const struct job *job;
    const struct model *m;   /* weights in backend memory */
    struct keras_input input;
    int64_t iterations;      /* optimizer steps taken */
};

/* Writes path (.keras or .h5, by its name) whole or not at all; -1 with err otherwise. */
int keras_model_write(const char *path, const struct keras_export *e, struct dp_error *err);

/* The normalization of a .keras file's Normalization layer (kind NONE when it has none) for cols
 * features; -1 with err when the file is unreadable or its statistics have another length. */
int keras_file_read_normalizer(const char *path, struct normalizer *n, int64_t cols, struct dp_error *err);

#endif
