/* MaxPooling2D and AveragePooling2D over channels-last samples (Keras' pool_size, strides defaulting
 * to the pool size, padding), and their global forms. Max pooling keeps the argmax of each window
 * for backward; average pooling divides by the cells inside the input, as Keras does with "same"
 * padding. GlobalAveragePooling2D and GlobalMaxPooling2D are the same pooling with one window over
 * the whole (H, W) plane; their output is (C), or (1, 1, C) with Keras' keepdims. */
#include "net/layers.h"

static int pool_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                          const char *file, struct dp_error *err)
{
    struct conv_geometry g = {0};
    const typeof(spec->u.pool2d) *p = &spec->u.pool2d;
    if (conv_geometry_make(&g, in, p->pool[0], p->pool[1], p->strides[0], p->strides[1], p->same, 0,
                           layer_kind_names[spec->kind], file, spec->line, err) != 0)
        return -1;
    *out = (struct shape){3, {g.out_h, g.out_w, g.out_c}};
    return 0;
}

static void pool_declare_params(struct layer *l)
{
    const typeof(l->spec.u.pool2d) *p = &l->spec.u.pool2d;
    conv_geometry_make(&l->geom, &l->in_shape, p->pool[0], p->pool[1], p->strides[0], p->strides[1], p->same, 0,
                       layer_kind_names[l->spec.kind], "", 0, NULL);
    l->nparams = 0;
}

static void pool_init_params(const struct layer *l, float *a, uint64_t s) { (void)l; (void)a; (void)s; }

static void maxpool_allocate(struct layer *l, const struct backend *be, int64_t max_rows)
{
    l->argmax = be->alloc((size_t)(max_rows * l->out_size) * sizeof(int32_t), "maxpool indices");
}

static void maxpool_release(struct layer *l, const struct backend *be) { be->free(l->argmax); }

static void maxpool_forward(struct layer *l, const struct pass_context *c)
{
    c->be->maxpool_forward(l->y, l->argmax, l->x, &l->geom, c->rows);
}

static void maxpool_backward(struct layer *l, const struct pass_context *c)
{
    if (l->dx)
        c->be->maxpool_backward(l->dx, l->dy, l->argmax, &l->geom, c->rows);
}

static void avgpool_forward(struct layer *l, const struct pass_context *c)
{
    c->be->avgpool_forward(l->y, l->x, &l->geom, c->rows);
}

static void avgpool_backward(struct layer *l, const struct pass_context *c)
{
    if (l->dx)
        c->be->avgpool_backward(l->dx, l->dy, &l->geom, c->rows);
}

static const char *const pool_keys[] = {"pool_size", "strides", "padding", NULL};

static int pool_read(struct layer_spec *spec, struct layer_keys *k)
{
    if (k->pair(k, "pool_size", spec->u.pool2d.pool, 2, 0) ||
        k->choice(k, "padding", &spec->u.pool2d.same, 0, layer_padding_names))
        return -1;
    /* Keras: strides default to the pool size */
    spec->u.pool2d.strides[0] = spec->u.pool2d.pool[0];
    spec->u.pool2d.strides[1] = spec->u.pool2d.pool[1];
    return k->has(k, "strides") ? k->pair(k, "strides", spec->u.pool2d.strides, 1, 0) : 0;
}

static int pool_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    layer_setting_pair(&out[0], "pool_size", spec->u.pool2d.pool);
    layer_setting_pair(&out[1], "strides", spec->u.pool2d.strides);
    layer_setting_text(&out[2], "padding", layer_padding_names[spec->u.pool2d.same]);
    return 3;
}

const struct layer_ops layer_maxpool2d_ops = {
    .type_name = "maxpool2d",
    .keras_name = "max_pooling2d",
    .keras_class = "MaxPooling2D",
    .keys = pool_keys,
    .read = pool_read,
    .settings = pool_settings,
    .out_shape = pool_out_shape,
    .allocate = maxpool_allocate,
    .release = maxpool_release,
    .declare_params = pool_declare_params,
    .init_params = pool_init_params,
    .owns_buffers = 1,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};

const struct layer_ops layer_avgpool2d_ops = {
    .type_name = "average_pooling2d",
    .keras_name = "average_pooling2d",
    .keras_class = "AveragePooling2D",
    .keys = pool_keys,
    .read = pool_read,
    .settings = pool_settings,
    .out_shape = pool_out_shape,
    .declare_params = pool_declare_params,
    .init_params = pool_init_params,
    .owns_buffers = 1,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

/* ---- the global forms ---- */

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
    .init_params = pool_init_params,
    .owns_buffers = 1,
    .forward = avgpool_forward,
    .backward = avgpool_backward,
};

const struct layer_ops layer_global_maxpool2d_ops = {
    .type_name = "global_max_pooling2d",
    .keras_name = "global_max_pooling2d",
    .keras_class = "GlobalMaxPooling2D",
    .keys = global_keys,
    .read = global_read,
    .settings = global_settings,
    .out_shape = global_out_shape,
    .allocate = maxpool_allocate,
    .release = maxpool_release,
    .declare_params = global_declare_params,
    .init_params = pool_init_params,
    .owns_buffers = 1,
    .forward = maxpool_forward,
    .backward = maxpool_backward,
};
