/* At the end of training, the model as Keras 3 opens it: RUN_DIR/model.keras from last.h5 (the
 * final weights) and RUN_DIR/best.keras from best.h5, by rank 0 (keras/keras_model_file.h). A
 * model with a setting Keras cannot express (an activation parameter its names do not carry) is
 * said in a warning and training still succeeds; a failed write fails it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "dist/comm.h"
#include "train/checkpoint_export.h"
#include "train/callbacks/callbacks.h"

static int export_one(struct fit_state *s, const char *checkpoint, const char *name, struct dp_error *err)
{
    char out[4200];
    snprintf(out, sizeof out, "%s/%s", s->o->run_dir, name);
    struct dp_error e = {0};
    if (checkpoint_export_keras(checkpoint, out, &e) == 0) {
        if (!strcmp(name, "model.keras"))
            printf("Keras model: %s (keras.models.load_model opens it; best.keras beside it)\n", out);
        return 0;
    }
    if (e.code == DP_EXIT_INPUT) {
        dp_warn("%s not written: %s", out, e.msg);
        return 0;
    }
    *err = e;
    return -1;
}

static int keras_export_train_end(struct fit_state *s, struct dp_error *err)
{
    if (comm_world.rank != 0)
        return 0;
    if (export_one(s, s->path_last, "model.keras", err) != 0)
        return -1;
    return access(s->path_best, F_OK) == 0 ? export_one(s, s->path_best, "best.keras", err) : 0;
}

const struct fit_callback callback_keras_export = {.name = "keras export", .train_end = keras_export_train_end};
