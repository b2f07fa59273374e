/* Dense: z = x kernel + bias, y = activation(z). Kernel (in, out) as Keras stores it. */
#include <math.h>
#include <stdio.h>

#include "net/layers.h"
#include "base/rng.h"

static int dense_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                           const char *file, struct dp_error *err)
{
    if (in->rank != 1)
        return dp_error_set(err, DP_EXIT_INPUT,
                            "%s:%d: dense expects a flat input but gets %d dimensions per sample; "
                            "put a flatten layer before it",
                            file, spec->line, in->rank);
    out->rank = 1;
    out->dims[0] = spec->u.dense.units;
    return 0;
}

static void dense_declare_params(struct layer *l)
{
    l->nparams = 2;
    l->param_names[0] = "kernel";
    l->param_shapes[0] = (struct shape){2, {l->in_size, l->out_size}};
    l->param_names[1] = "bias";
    l->param_shapes[1] = (struct shape){1, {l->out_size}};
}

/* glorot_uniform: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)); bias zero. */
static void dense_init_params(const struct layer *l, float *host_arena, uint64_t seed)
{
    float *kernel = host_arena + l->param_offsets[0];
    int64_t n = l->in_size * l->out_size;
    double limit = sqrt(6.0 / (double)(l->in_size + l->out_size));
    rng_uniform_fill(kernel, (uint64_t)n, seed, RNG_DOMAIN_INIT, (uint32_t)l->index, 0);
    for (int64_t i = 0; i < n; i++)
        kernel[i] = (float)((2.0 * kernel[i] - 1.0) * limit);
    float *bias = host_arena + l->param_offsets[1];
    for (int64_t i = 0; i < l->out_size; i++)
        bias[i] = 0.0f;
}

/* relu comes with the product (z is y for relu layers, model.c); other activations after it */
static void dense_forward(struct layer *l, const struct pass_context *c)
{
    enum activation act = l->spec.u.dense.activation;
    l->relu_mask_valid = 0;
    if (l->relu_mask)
        l->relu_mask_valid = c->be->dense_forward_relu_mask(l->z, l->relu_mask, l->x, l->w, l->b, c->rows,
                                                            l->in_size, l->out_size);
    else
        c->be->dense_forward(l->z, l->x, l->w, l->b, c->rows, l->in_size, l->out_size, act == ACTIVATION_RELU);
    if (act != ACTIVATION_LINEAR && act != ACTIVATION_RELU)
        c->be->activation_forward(l->y, l->z, c->rows, l->out_size, act, l->spec.u.dense.activation_param);
}

/* On entry dy holds dL/dy, or dL/dz already when the loss was fused with the activation or the
 * layer above computed it (dz_ready, with the bias gradient). */
static void dense_backward(struct layer *l, const struct pass_context *c)
{
    enum activation act = l->spec.u.dense.activation;
    int dz_ready = l->dz_ready;
    l->dz_ready = 0;
    if (!l->loss_fused && !dz_ready && act != ACTIVATION_LINEAR)
        c->be->activation_backward(l->dy, l->dy, l->z, l->y, c->rows, l->out_size, act,
                                   l->spec.u.dense.activation_param);
    float *dx = l->dx;
    struct layer *below = l->below;
    if (dx && below && below->relu_mask_valid &&
        c->be->dense_input_grad_relu(dx, below->db, l->dy, l->w, below->relu_mask, c->rows, l->in_size,
                                     l->out_size, 0)) {
        below->dz_ready = 1;
        dx = NULL;
    }
    c->be->dense_backward(dx, l->dw, dz_ready ? NULL : l->db, l->dy, l->x, l->w, c->rows, l->in_size,
                          l->out_size, 0);
}

static const char *const dense_keys[] = {"units", "activation", ACTIVATION_PARAM_KEYS, NULL};

static int dense_read(struct layer_spec *spec, struct layer_keys *k)
{
    return k->integer(k, "units", &spec->u.dense.units, 0, 1, INT64_C(1) << 24, 1) ||
           layer_read_activation(k, &spec->u.dense.activation, &spec->u.dense.activation_param) ? -1 : 0;
}

static int dense_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    layer_setting_int(&out[0], "units", spec->u.dense.units, 1);
    layer_setting_activation(&out[1], spec->u.dense.activation, spec->u.dense.activation_param);
    return 2;
}

static enum activation dense_activation(const struct layer_spec *spec) { return spec->u.dense.activation; }
static float dense_activation_param(const struct layer_spec *spec) { return spec->u.dense.activation_param; }

const struct layer_ops layer_dense_ops = {
    .type_name = "dense",
    .keras_name = "dense",
    .keras_class = "Dense",
    .keys = dense_keys,
    .read = dense_read,
    .settings = dense_settings,
    .activation = dense_activation,
    .activation_param = dense_activation_param,
    .out_shape = dense_out_shape,
    .declare_params = dense_declare_params,
    .init_params = dense_init_params,
    .owns_buffers = 1,
    .forward = dense_forward,
    .backward = dense_backward,
};
