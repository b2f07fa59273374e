/* GlobalAveragePooling2D and GlobalMaxPooling2D: one value per channel over the whole (H, W)
 * plane, as pooling with a window of the whole plane; the output is (C), or (1, 1, C) with Keras'
 * keepdims. */
#include "net/layers.h"

static int global_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                            const char *file, struct dp_error *err)
{
    if (in->rank != 3)
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: %s expects (height, width, channels) samples but gets %d "
                            "dimensions", file, spec->line, layer_kind_names[spec->kind], in->rank);
    *out = spec->u.global_pool2d.keepdims ? (struct shape){3, {1, 1, in->dims[2]}} : (struct shape){1, {in->dims[2]}};
    return 0;
}

static void global_declare_params(struct layer *l)
{
    const struct shape *in = &l->in_shape;
    conv_geometry_make(&l->geom, in, in->dims[0], in->dims[1], in->dims[0], in->dims[1], 0, 0,
                       layer_kind_names[l->spec.kind], "", 0, NULL);
    l->nparams = 0;
}

static void global_init_params(const struct layer *l, float *a, uint64_t s) { (void)l; (void)a; (void)s; }

static void global_max_allocate(struct layer *l, const struct backend *be, int64_t max_rows)
{
    l->argmax = be->alloc((size_t)(max_rows * l->out_size) * sizeof(int32_t), "maxpool indices");
}

static void global_max_release(struct layer *l, const struct backend *be) { be->free(l->argmax); }

static void global_max_forward(struct layer *l, const struct pass_context *c)
{
    c->be->maxpool_forward(l->y, l->argmax, l->x, &l->geom, c->rows);
}

static void global_max_backward(struct layer *l, const struct pass_context *c)
{
    if (l->dx)
        c->be->maxpool_backward(l->dx, l->dy, l->argmax, &l->geom, c->rows);
}

static void global_avg_forward(struct layer *l, const struct pass_context *c)
{
    c->be->avgpool_forward(l->y, l->x, &l->geom, c->rows);
}

static void global_avg_backward(struct layer *l, const struct pass_context *c)
{
    if (l->dx)
        c->be->avgpool_backward(l->dx, l->dy, &l->geom, c->rows);
}

static const char *const global_keys[] = {"keepdims", NULL};

static int global_read(struct layer_spec *spec, struct layer_keys *k)
{
    return k->boolean(k, "keepdims", &spec->u.global_pool2d.keepdims, 0);
}

static int global_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    layer_setting_text(&out[0], "keepdims", spec->u.global_pool2d.keepdims ? "true" : "false");
    return 1;
}

const struct layer_ops layer_global_avgpool2d_ops = {
    .type_name = "global_average_pooling2d",
    .keras_name = "global_average_pooling2d",
    .keras_class = "GlobalAveragePooling2D",
    .keys = global_keys,
    .read = global_read,
    .settings = global_settings,
    .out_shape = global_out_shape,
    .declare_params = global_declare_params,
    .init_params = global_init_params,
    .owns_buffers = 1,
    .forward = global_avg_forward,
    .backward = global_avg_backward,
};

const struct layer_ops layer_global_maxpool2d_ops = {
    .type_name = "global_max_pooling2d",
    .keras_name = "global_max_pooling2d",
    .keras_class = "GlobalMaxPooling2D",
    .keys = global_keys,
    .read = global_read,
    .settings = global_settings,
    .out_shape = global_out_shape,
    .allocate = global_max_allocate,
    .release = global_max_release,
    .declare_params = global_declare_params,
    .init_params = global_init_params,
    .owns_buffers = 1,
    .forward = global_max_forward,
    .backward = global_max_backward,
};
