/* Layers that only apply an activation to their input, as Keras has them: Activation (any of
 * net/activation.h's functions, softmax included), LeakyReLU (negative_slope, default 0.3 as
 * Keras' layer has it) and ELU (alpha, default 1). The input is the pre-activation, so nothing
 * else is kept for backward. */
#include "net/layers.h"

static int activation_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                                const char *file, struct dp_error *err)
{
    (void)spec; (void)file; (void)err;
    *out = *in;
    return 0;
}

static void activation_declare_params(struct layer *l) { l->nparams = 0; }
static void activation_init_params(const struct layer *l, float *a, uint64_t s) { (void)l; (void)a; (void)s; }

/* softmax is per row over the last axis, as in Keras */
static int64_t last_axis(const struct layer *l) { return l->out_shape.dims[l->out_shape.rank - 1]; }

static void activation_forward(struct layer *l, const struct pass_context *c)
{
    const typeof(l->spec.u.activation) *a = &l->spec.u.activation;
    int64_t cols = last_axis(l);
    c->be->activation_forward(l->y, l->x, c->rows * (l->out_size / cols), cols, a->activation, a->param);
}

static void activation_backward(struct layer *l, const struct pass_context *c)
{
    const typeof(l->spec.u.activation) *a = &l->spec.u.activation;
    int64_t cols = last_axis(l);
    if (l->dx)
        c->be->activation_backward(l->dx, l->dy, l->x, l->y, c->rows * (l->out_size / cols), cols, a->activation,
                                   a->param);
}

static enum activation activation_kind(const struct layer_spec *spec) { return spec->u.activation.activation; }
static float activation_param(const struct layer_spec *spec) { return spec->u.activation.param; }

static int activation_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    layer_setting_activation(&out[0], spec->u.activation.activation, spec->u.activation.param);
    return 1;
}

static const char *const activation_keys[] = {"activation", ACTIVATION_PARAM_KEYS, NULL};

static int activation_read(struct layer_spec *spec, struct layer_keys *k)
{
    if (!k->has(k, "activation"))
        return k->fail(k, "activation", "missing key 'activation'");
    return layer_read_activation(k, &spec->u.activation.activation, &spec->u.activation.param);
}

/* LeakyReLU and ELU: one activation, its parameter under its Keras key with the layer's default */
static int parameter_layer_read(struct layer_spec *spec, struct layer_keys *k, enum activation act, const char *key,
                                double def)
{
    double v;
    if (k->number(k, key, &v, def, 0.0, 1e6, 0))
        return -1;
    spec->u.activation.activation = act;
    spec->u.activation.param = (float)v;
    return 0;
}

static const char *const leaky_relu_keys[] = {"negative_slope", NULL};
static int leaky_relu_read(struct layer_spec *spec, struct layer_keys *k)
{
    return parameter_layer_read(spec, k, ACTIVATION_LEAKY_RELU, "negative_slope", 0.3);
}

static const char *const elu_keys[] = {"alpha", NULL};
static int elu_read(struct layer_spec *spec, struct layer_keys *k)
{
    return parameter_layer_read(spec, k, ACTIVATION_ELU, "alpha", 1.0);
}

#define ACTIVATION_LAYER_OPS(type_, keras_, class_, keys_, read_)                                              \
    {                                                                                                          \
        .type_name = type_, .keras_name = keras_, .keras_class = class_, .keys = keys_, .read = read_,         \
        .settings = activation_settings, .activation = activation_kind, .activation_param = activation_param, \
        .out_shape = activation_out_shape, .declare_params = activation_declare_params,                        \
        .init_params = activation_init_params, .owns_buffers = 1, .forward = activation_forward,               \
        .backward = activation_backward,                                                                       \
    }

const struct layer_ops layer_activation_ops =
    ACTIVATION_LAYER_OPS("activation", "activation", "Activation", activation_keys, activation_read);
const struct layer_ops layer_leaky_relu_ops =
    ACTIVATION_LAYER_OPS("leaky_relu", "leaky_re_lu", "LeakyReLU", leaky_relu_keys, leaky_relu_read);
const struct layer_ops layer_elu_ops = ACTIVATION_LAYER_OPS("elu", "elu", "ELU", elu_keys, elu_read);
