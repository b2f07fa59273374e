/* Reshape: the sample takes Keras' target_shape (one dimension may be -1, inferred from the size).
 * Rows stay contiguous in row-major order, so like flatten the layer aliases its input. */
#include <stdio.h>

#include "net/layers.h"

static int reshape_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                             const char *file, struct dp_error *err)
{
    *out = spec->u.reshape;
    int64_t known = 1, inferred = -1;
    for (int i = 0; i < out->rank; i++) {
        if (out->dims[i] == -1)
            inferred = i;
        else
            known *= out->dims[i];
    }
    int64_t size = shape_size(in);
    if (inferred >= 0 && known > 0 && size % known == 0)
        out->dims[inferred] = size / known;
    if (shape_size(out) != size || (inferred >= 0 && out->dims[inferred] < 1)) {
        char from[96], to[96];
        shape_format(from, sizeof from, in);
        shape_format(to, sizeof to, &spec->u.reshape);
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: reshape: target_shape %s does not hold the %lld values of "
                            "the input %s", file, spec->line, to, (long long)size, from);
    }
    return 0;
}

static void reshape_declare_params(struct layer *l) { l->nparams = 0; }
static void reshape_init_params(const struct layer *l, float *a, uint64_t s) { (void)l; (void)a; (void)s; }
static void reshape_forward(struct layer *l, const struct pass_context *c) { (void)l; (void)c; }
static void reshape_backward(struct layer *l, const struct pass_context *c) { (void)l; (void)c; }

static const char *const reshape_keys[] = {"target_shape", NULL};

static int reshape_read(struct layer_spec *spec, struct layer_keys *k)
{
    return k->shape(k, "target_shape", &spec->u.reshape);
}

static int reshape_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    char text[96];
    shape_format(text, sizeof text, &spec->u.reshape);
    layer_setting_text(&out[0], "target_shape", text);
    return 1;
}

const struct layer_ops layer_reshape_ops = {
    .type_name = "reshape",
    .keras_name = "reshape",
    .keras_class = "Reshape",
    .keys = reshape_keys,
    .read = reshape_read,
    .settings = reshape_settings,
    .out_shape = reshape_out_shape,
    .declare_params = reshape_declare_params,
    .init_params = reshape_init_params,
    .owns_buffers = 0,
    .forward = reshape_forward,
    .backward = reshape_backward,
};
