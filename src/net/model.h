/* A Sequential model: layers over ONE parameter arena and ONE gradient arena (same layout), so
 * one all-reduce moves every gradient and one optimizer pass updates every weight.
 * The layout table (each tensor's offset, name and Keras shape) is built once from the spec and
 * drives allocation, views, initialization, checkpoints and the summary. */
#ifndef DPTRAIN_MODEL_H
#define DPTRAIN_MODEL_H

#include <stdint.h>
#include <stdio.h>

#include "net/backend.h"
#include "net/layers.h"
#include "net/loss.h"

struct model {
    const struct backend *be;
    int nlayers;
    struct layer *layers;
    struct shape input_shape;
    int64_t input_size;  /* features per sample */
    int64_t output_size; /* units of the last layer */

    size_t arena_floats; /* arena length, padding included */
    size_t nparams;      /* parameters (no padding), the moving statistics included */
    /* The runs of the arena the optimizer updates: all of it, except the tensors that are saved
     * but not learned (BatchNormalization's moving statistics) */
    struct arena_run { size_t offset, floats; } *trainable_runs;
    int ntrainable_runs;
    float *params;       /* (arena_floats) backend memory */
    float *grads;        /* (arena_floats) backend memory */

    int64_t max_rows;    /* activation buffers hold this many rows */
    float *input;        /* (max_rows, input_size) backend memory */
    float *loss_dz;      /* alias of the last layer's dy */
};

/* Builds layers, shapes and the layout; fails with a message naming file and line. Allocates
 * nothing on the backend yet. */
int model_build(struct model *m, const struct layer_spec *specs, int nspecs,
                const struct shape *input_shape, const char *file, struct dp_error *err);

/* Allocates arenas and activation buffers for batches of up to max_rows rows. */
void model_allocate(struct model *m, const struct backend *be, int64_t max_rows);

/* Initializes the weights (glorot_uniform kernels, zero biases) from seed, on the host, then
 * uploads. Identical on every rank by construction. */
void model_init_weights(struct model *m, uint64_t seed);

/* Marks the last layer's activation as fused with the loss when the loss computes dL/dz. */
void model_set_loss(struct model *m, enum loss_kind loss);

void model_forward(struct model *m, const struct pass_context *c);
/* Expects the loss gradient in the last layer's dy; accumulates into grads. */
void model_backward(struct model *m, const struct pass_context *c);
/* The kernel and bias regularizers' penalty at the current weights (Keras adds it to the loss that
 * evaluate and validation report, as training does each step). */
double model_penalty(const struct model *m);
/* A rank whose slice of the batch is empty: the collectives its layers' forward and backward would
 * make (synchronized BatchNormalization, and grads_final after each layer with parameters), in the
 * same order as model_forward and model_backward, so the other ranks are not left waiting. */
void model_collectives_without_rows(struct model *m, const struct pass_context *c);

void model_print_summary(const struct model *m, FILE *out);

void model_free(struct model *m);

#endif
