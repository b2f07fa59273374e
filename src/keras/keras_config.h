/* dptrain's model as Keras' configuration JSON: what `keras.models.load_model` needs to rebuild a
 * Sequential model (the layers with their Keras configs, the input shape, the compile settings).
 *
 * The input transform dptrain applies before the first layer becomes layers of the Keras model, so
 * that load_model(f).predict(raw_rows) equals `dptrain predict`: uint8 data's scaling to [0, 1] a
 * Rescaling(1/255) layer, and data.normalize = "standard" a Normalization layer holding the mean
 * and variance (Keras divides by sqrt(variance), dptrain by the standard deviation: the same).
 *
 * Two dialects: Keras 3's native one (config.json in a .keras file: every object with module and
 * registered_name, the compile settings inside as compile_config) and the legacy whole-model .h5
 * (model_config and training_config attributes: class_name and config only, the optimizer as
 * optimizer_config). Keys hold only what Keras 3 reads; keys whose defaults are right (Dense's
 * quantization_config, for one) are left out, so older Keras 3 releases take the files too. */
#ifndef DPTRAIN_KERAS_CONFIG_H
#define DPTRAIN_KERAS_CONFIG_H

#include <jansson.h>

#include "base/errors.h"
#include "data/normalize.h"
#include "job/jobfile.h"
#include "net/model.h"

enum keras_dialect { KERAS_NATIVE, KERAS_LEGACY_H5 };

/* What the Keras model holds beyond dptrain's layers: the input transform. */
struct keras_input {
    int uint8_scaled;                /* the data is uint8, scaled by 1/255 (a Rescaling layer) */
    const struct normalizer *norm;   /* NULL or kind NONE: no Normalization layer */
};

/* The Keras layer names of the model's extra input layers, in order, and how many (0 to 2). */
int keras_input_layer_names(const struct keras_input *in, const char *names[2]);

/* The Sequential model's config ({"class_name": "Sequential", "config": {...}}, with
 * compile_config in the native dialect). NULL with err (DP_EXIT_INPUT) when a setting has no Keras
 * equivalent (named: layer and option). */
json_t *keras_model_config(const struct job *job, const struct model *m, const struct keras_input *in,
                           enum keras_dialect dialect, struct dp_error *err);

/* The legacy .h5's training_config (loss, metrics, optimizer_config); NULL with err as above. */
json_t *keras_training_config(const struct job *job, struct dp_error *err);

/* The Keras model name for a job name (Keras refuses '/' in names). */
void keras_model_name(char *out, size_t len, const char *job_name);

#endif
