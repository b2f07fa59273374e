/* A Keras model's configuration as a dptrain job file: `dptrain import keras`.
 *
 * Takes the JSON Keras writes for a Sequential model (config.json of a .keras file, or the
 * model_config attribute of a legacy whole-model .h5, with its training_config) and writes the job
 * file: the layers with their options, and the optimizer, loss and metric from the compile
 * configuration; the data section is left for the user. Whatever dptrain cannot train (a layer
 * kind, an option set to something other than its default, a Functional model) is refused with
 * one line naming the layer and the option. */
#ifndef DPTRAIN_KERAS_IMPORT_H
#define DPTRAIN_KERAS_IMPORT_H

#include "base/errors.h"

/* model_json: {"class_name": "Sequential", "config": {...}, "compile_config": {...}?} (Keras 3's
 * config.json) or the legacy model_config; training_json: the legacy training_config (NULL when
 * the compile configuration is inside model_json, or absent). source names the input in messages
 * and in the job's first comment. Returns the job file's text (malloc'ed), or NULL with err set. */
char *keras_config_to_job(const char *model_json, const char *training_json, const char *source,
                          struct dp_error *err);

#endif
