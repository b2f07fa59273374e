/* Dropout (inverted): kept units are scaled by 1 / (1 - rate) in training; identity at evaluation.
 * Masks are keyed by (seed, step, layer, global sample), so they do not depend on rank count. */
#include <string.h>

#include "net/layers.h"

static int dropout_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                             const char *file, struct dp_error *err)
{
    (void)file; (void)err; (void)spec;
    *out = *in;
    return 0;
}

static void dropout_declare_params(struct layer *l) { l->nparams = 0; }
static void dropout_init_params(const struct layer *l, float *a, uint64_t s) { (void)l; (void)a; (void)s; }

static void dropout_forward(struct layer *l, const struct pass_context *c)
{
    if (!c->training || l->spec.u.dropout.rate == 0.0) {
        /* Identity: copy so the layer's y stays a buffer of its own. */
        c->be->activation_forward(l->y, l->x, c->rows, l->out_size, ACTIVATION_LINEAR, 0.0f);
        return;
    }
    struct dropout_key key = {c->seed, (uint32_t)l->index, c->step};
    c->be->dropout_forward(l->y, l->mask, l->x, c->sample_ids, c->rows, l->out_size,
                           (float)l->spec.u.dropout.rate, key);
}

static void dropout_backward(struct layer *l, const struct pass_context *c)
{
    if (!l->dx)
        return;
    if (!c->training || l->spec.u.dropout.rate == 0.0) {
        c->be->activation_backward(l->dx, l->dy, l->y, l->y, c->rows, l->out_size, ACTIVATION_LINEAR, 0.0f);
        return;
    }
    c->be->dropout_backward(l->dx, l->dy, l->mask, c->rows, l->out_size,
                            (float)l->spec.u.dropout.rate);
}

static const char *const dropout_keys[] = {"rate", NULL};

static int dropout_read(struct layer_spec *spec, struct layer_keys *k)
{
    return k->number(k, "rate", &spec->u.dropout.rate, 0.5, 0.0, 1.0, 1);
}

static int dropout_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    layer_setting_number(&out[0], "rate", spec->u.dropout.rate);
    return 1;
}

/* Masks for batches of max_rows rows: which units a step kept. */
static void dropout_allocate(struct layer *l, const struct backend *be, int64_t max_rows)
{
    l->mask = be->alloc((size_t)max_rows * (size_t)l->out_size, "dropout masks");
}

static void dropout_release(struct layer *l, const struct backend *be) { be->free(l->mask); }

const struct layer_ops layer_dropout_ops = {
    .type_name = "dropout",
    .keras_name = "dropout",
    .keras_class = "Dropout",
    .keys = dropout_keys,
    .read = dropout_read,
    .settings = dropout_settings,
    .allocate = dropout_allocate,
    .release = dropout_release,
    .out_shape = dropout_out_shape,
    .declare_params = dropout_declare_params,
    .init_params = dropout_init_params,
    .owns_buffers = 1,
    .forward = dropout_forward,
    .backward = dropout_backward,
};
