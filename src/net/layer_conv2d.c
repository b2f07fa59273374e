/* Conv2D over channels-last samples with the kernel in Keras' (kh, kw, in, out) layout, bias
 * (unless use_bias = false), activation: the backend's primitives (oneDNN on the CPU where built
 * with it, else im2col + GEMM, whose patches this layer then keeps). */
#include <stdio.h>

#include "net/layers.h"

/* TensorFlow's padding rule (see backend.h). */
int conv_geometry_make(struct conv_geometry *g, const struct shape *in, int64_t kh, int64_t kw, int64_t sh,
                       int64_t sw, int same, int64_t out_c, const char *what, const char *file, int line,
                       struct dp_error *err)
{
    if (in->rank != 3)
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: %s expects images (height, width, channels) but gets "
                            "%d dimensions per sample", file, line, what, in->rank);
    g->in_h = in->dims[0];
    g->in_w = in->dims[1];
    g->in_c = in->dims[2];
    g->k_h = kh;
    g->k_w = kw;
    g->stride_h = sh;
    g->stride_w = sw;
    if (same) {
        g->out_h = (g->in_h + sh - 1) / sh;
        g->out_w = (g->in_w + sw - 1) / sw;
        int64_t ph = (g->out_h - 1) * sh + kh - g->in_h, pw = (g->out_w - 1) * sw + kw - g->in_w;
        g->pad_top = ph > 0 ? ph / 2 : 0;
        g->pad_left = pw > 0 ? pw / 2 : 0;
    } else {
        if (kh > g->in_h || kw > g->in_w)
            return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: %s window %lldx%lld is larger than its %lldx%lld input "
                                "(use padding = \"same\" or a smaller window)", file, line, what, (long long)kh,
                                (long long)kw, (long long)g->in_h, (long long)g->in_w);
        g->out_h = (g->in_h - kh) / sh + 1;
        g->out_w = (g->in_w - kw) / sw + 1;
        g->pad_top = g->pad_left = 0;
    }
    g->out_c = out_c ? out_c : g->in_c;
    return 0;
}

static int conv2d_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                            const char *file, struct dp_error *err)
{
    struct conv_geometry g = {0};
    const typeof(spec->u.conv2d) *c = &spec->u.conv2d;
    if (conv_geometry_make(&g, in, c->kernel[0], c->kernel[1], c->strides[0], c->strides[1], c->same, c->filters,
                           "conv2d", file, spec->line, err) != 0)
        return -1;
    *out = (struct shape){3, {g.out_h, g.out_w, g.out_c}};
    return 0;
}

static void conv2d_declare_params(struct layer *l)
{
    const typeof(l->spec.u.conv2d) *c = &l->spec.u.conv2d;
    conv_geometry_make(&l->geom, &l->in_shape, c->kernel[0], c->kernel[1], c->strides[0], c->strides[1], c->same,
                       c->filters, "conv2d", "", 0, NULL);
    layer_declare_kernel_bias(l, (struct shape){4, {c->kernel[0], c->kernel[1], l->geom.in_c, c->filters}}, c->filters,
                              &c->weights);
}

/* Keras' fans for a kernel (kh, kw, in, out): receptive field kh*kw times in, and times out */
static void conv2d_init_params(const struct layer *l, float *host_arena, uint64_t seed)
{
    const struct conv_geometry *g = &l->geom;
    layer_init_kernel_bias(l, host_arena, seed, g->k_h * g->k_w * g->in_c, g->k_h * g->k_w * g->out_c,
                           &l->spec.u.conv2d.weights);
}

static void conv2d_allocate(struct layer *l, const struct backend *be, int64_t max_rows)
{
    if (!be->conv2d_uses_cols(&l->geom))
        return; /* oneDNN's primitives need no patches */
    size_t bytes = (size_t)(max_rows * l->geom.out_h * l->geom.out_w * l->geom.k_h * l->geom.k_w * l->geom.in_c) *
                   sizeof(float);
    l->cols = be->alloc(bytes, "conv2d patches");
    l->dcols = be->alloc(bytes, "conv2d patch gradients");
}

static void conv2d_release(struct layer *l, const struct backend *be)
{
    be->free(l->cols);
    be->free(l->dcols);
}

static void conv2d_forward(struct layer *l, const struct pass_context *c)
{
    enum activation act = l->spec.u.conv2d.activation;
    c->be->conv2d_forward(l->z, l->cols, l->x, l->w, l->b, &l->geom, c->rows, act == ACTIVATION_RELU);
    if (act != ACTIVATION_LINEAR && act != ACTIVATION_RELU)
        c->be->activation_forward(l->y, l->z, c->rows * l->geom.out_h * l->geom.out_w, l->geom.out_c, act,
                                  l->spec.u.conv2d.activation_param);
}

static void conv2d_backward(struct layer *l, const struct pass_context *c)
{
    enum activation act = l->spec.u.conv2d.activation;
    if (act != ACTIVATION_LINEAR)
        c->be->activation_backward(l->dy, l->dy, l->z, l->y, c->rows * l->geom.out_h * l->geom.out_w, l->geom.out_c,
                                   act, l->spec.u.conv2d.activation_param);
    c->be->conv2d_backward(l->dx, l->dcols, l->dw, l->db, l->dy, l->cols, l->x, l->w, &l->geom, c->rows, 0);
}

static const char *const conv2d_keys[] = {"filters", "kernel_size", "strides", "padding", "activation",
                                          ACTIVATION_PARAM_KEYS, WEIGHT_OPTION_KEYS, NULL};

static int conv2d_read(struct layer_spec *spec, struct layer_keys *k)
{
    if (k->integer(k, "filters", &spec->u.conv2d.filters, 0, 1, 1 << 20, 1) ||
        k->pair(k, "kernel_size", spec->u.conv2d.kernel, 0, 1) || k->pair(k, "strides", spec->u.conv2d.strides, 1, 0) ||
        k->choice(k, "padding", &spec->u.conv2d.same, 0, layer_padding_names) ||
        layer_read_activation(k, &spec->u.conv2d.activation, &spec->u.conv2d.activation_param) ||
        layer_read_weight_options(k, &spec->u.conv2d.weights))
        return -1;
    if (spec->u.conv2d.activation == ACTIVATION_SOFTMAX)
        return k->fail(k, "activation", "softmax is not supported on conv2d outputs");
    return 0;
}

static int conv2d_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    layer_setting_int(&out[0], "filters", spec->u.conv2d.filters, 1);
    layer_setting_pair(&out[1], "kernel_size", spec->u.conv2d.kernel);
    layer_setting_pair(&out[2], "strides", spec->u.conv2d.strides);
    layer_setting_text(&out[3], "padding", layer_padding_names[spec->u.conv2d.same]);
    layer_setting_activation(&out[4], spec->u.conv2d.activation, spec->u.conv2d.activation_param);
    layer_setting_weight_options(&out[5], &spec->u.conv2d.weights);
    return 5 + WEIGHT_OPTION_SETTINGS;
}

static enum activation conv2d_activation(const struct layer_spec *spec) { return spec->u.conv2d.activation; }
static float conv2d_activation_param(const struct layer_spec *spec) { return spec->u.conv2d.activation_param; }

const struct layer_ops layer_conv2d_ops = {
    .type_name = "conv2d",
    .keras_name = "conv2d",
    .keras_class = "Conv2D",
    .keys = conv2d_keys,
    .read = conv2d_read,
    .settings = conv2d_settings,
    .activation = conv2d_activation,
    .activation_param = conv2d_activation_param,
    .out_shape = conv2d_out_shape,
    .allocate = conv2d_allocate,
    .release = conv2d_release,
    .declare_params = conv2d_declare_params,
    .init_params = conv2d_init_params,
    .owns_buffers = 1,
    .forward = conv2d_forward,
    .backward = conv2d_backward,
};
