/* Flatten: (H, W, C) -> (H*W*C). Rows are already contiguous in row-major order, so the layer
 * aliases its input and output buffers and does no work. */
#include "net/layers.h"

static int flatten_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                             const char *file, struct dp_error *err)
{
    (void)spec; (void)file; (void)err;
    out->rank = 1;
    out->dims[0] = shape_size(in);
    return 0;
}

static void flatten_declare_params(struct layer *l) { l->nparams = 0; }
static void flatten_init_params(const struct layer *l, float *a, uint64_t s) { (void)l; (void)a; (void)s; }
static void flatten_forward(struct layer *l, const struct pass_context *c) { (void)l; (void)c; }
static void flatten_backward(struct layer *l, const struct pass_context *c) { (void)l; (void)c; }

const struct layer_ops layer_flatten_ops = {
    .type_name = "flatten",
    .keras_name = "flatten",
    .keras_class = "Flatten",
    .out_shape = flatten_out_shape,
    .declare_params = flatten_declare_params,
    .init_params = flatten_init_params,
    .owns_buffers = 0,
    .forward = flatten_forward,
    .backward = flatten_backward,
};
