/* Dense: z = x kernel + bias, y = activation(z). Kernel (in, out) as Keras stores it. */
#include <math.h>
#include <stdio.h>

#include "net/layers.h"

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
    layer_declare_kernel_bias(l, (struct shape){2, {l->in_size, l->out_size}}, l->out_size, &l->spec.u.dense.weights);
}

/* Keras' defaults: glorot_uniform kernel (fan_in = in, fan_out = out), zero bias */
static void dense_init_params(const struct layer *l, float *host_arena, uint64_t seed)
{
    layer_init_kernel_bias(l, host_arena, seed, l->in_size, l->out_size, &l->spec.u.dense.weights);
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

static const char *const dense_keys[] = {"units", "activation", ACTIVATION_PARAM_KEYS, WEIGHT_OPTION_KEYS, NULL};

static int dense_read(struct layer_spec *spec, struct layer_keys *k)
{
    return k->integer(k, "units", &spec->u.dense.units, 0, 1, INT64_C(1) << 24, 1) ||
           layer_read_activation(k, &spec->u.dense.activation, &spec->u.dense.activation_param) ||
           layer_read_weight_options(k, &spec->u.dense.weights) ? -1 : 0;
}

static int dense_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    layer_setting_int(&out[0], "units", spec->u.dense.units, 1);
    layer_setting_activation(&out[1], spec->u.dense.activation, spec->u.dense.activation_param);
    layer_setting_weight_options(&out[2], &spec->u.dense.weights);
    return 2 + WEIGHT_OPTION_SETTINGS;
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
