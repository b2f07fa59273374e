/* A checkpoint's model as a whole-model Keras file: the checkpoint's job, input shape, weights
 * and normalization, rebuilt on the CPU backend and handed to keras/keras_model_file.c. */
#include "train/checkpoint_export.h"

#include <stdlib.h>

#include "keras/keras_model_file.h"
#include "net/backend.h"
#include "train/weights_file.h"

int checkpoint_export_keras(const char *checkpoint, const char *out, struct dp_error *err)
{
    struct checkpoint_input in;
    char *text = NULL;
    struct job job;
    if (checkpoint_read_input(checkpoint, &in, err) != 0 || checkpoint_read_job_text(checkpoint, &text, err) != 0)
        return -1;
    int rc = job_load_text(&job, checkpoint, text, err);
    free(text);
    if (rc != 0)
        return -1;
    if (!in.has_shape && job.layers[0].input_shape.rank > 0) {
        in.shape = job.layers[0].input_shape;
        in.has_shape = 1;
    }
    if (!in.has_shape) {
        job_free(&job);
        return dp_error_set(err, DP_EXIT_INPUT, "%s: an older checkpoint that does not record the input shape, and "
                            "its job gives no input_shape: add input_shape to the first layer and resume for a step, "
                            "or export a newer checkpoint", checkpoint);
    }
    struct model m;
    struct normalizer norm;
    normalizer_init_none(&norm, 0);
    rc = model_build(&m, job.layers, job.nlayers, &in.shape, checkpoint, err);
    if (rc == 0) {
        model_set_loss(&m, job.fit.loss);
        model_allocate(&m, &backend_cpu, 1);
        rc = weights_load(&m, checkpoint, err);
        if (rc == 0) {
            normalizer_free(&norm);
            rc = checkpoint_read_normalizer(checkpoint, &norm, m.input_size, err);
        }
        if (rc == 0) {
            struct keras_export e = {&job, &m, {in.uint8, &norm}, in.iterations};
            rc = keras_model_write(out, &e, err);
        }
        model_free(&m);
    }
    normalizer_free(&norm);
    job_free(&job);
    return rc;
}
