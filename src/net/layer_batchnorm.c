/* BatchNormalization over the last axis, with Keras' semantics: in training each channel is
 * normalized with the batch's mean and (biased) variance, y = gamma (x - mean) / sqrt(var + epsilon)
 * + beta, and the moving statistics move toward them (moving = moving * momentum + batch * (1 -
 * momentum)); evaluate and predict use the moving statistics. Weights in Keras' order: gamma (with
 * scale), beta (with center), moving_mean, moving_variance; the last two are saved, not learned.
 *
 * Synchronized (the default): the statistics are those of the GLOBAL batch. Each rank sums its
 * rows per channel, one all-reduce of 2 numbers per channel adds the ranks' sums, and backward does
 * the same for the sums its input gradient needs, so 1 and P ranks train the same model.
 * synchronized = false keeps each rank's statistics (Keras 3's default; faster, but the results
 * then depend on the rank count). */
#include "net/layers.h"

static int64_t channels(const struct layer *l) { return l->out_shape.dims[l->out_shape.rank - 1]; }

/* Parameter p's values and gradients (declared in order, so offsets are relative to the first) */
static float *param(const struct layer *l, int p) { return l->w + (l->param_offsets[p] - l->param_offsets[0]); }
static float *grad(const struct layer *l, int p) { return l->dw + (l->param_offsets[p] - l->param_offsets[0]); }

/* Indices of gamma, beta (-1 when not learned) and the moving statistics */
struct bn_params {
    int gamma, beta, mean, var;
};

static struct bn_params bn_params(const struct layer *l)
{
    struct bn_params p = {-1, -1, 0, 0};
    int n = 0;
    if (l->spec.u.batchnorm.scale)
        p.gamma = n++;
    if (l->spec.u.batchnorm.center)
        p.beta = n++;
    p.mean = n++;
    p.var = n;
    return p;
}

/* Keras' axis counts the batch as axis 0: the channels of an (H, W, C) sample are axis 3 or -1 */
static int batchnorm_out_shape(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                               const char *file, struct dp_error *err)
{
    int64_t axis = spec->u.batchnorm.axis;
    if (axis != -1 && axis != in->rank) {
        char shape[96];
        shape_format(shape, sizeof shape, in);
        if (axis < -1 || axis > in->rank)
            return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: batch_normalization: axis %lld does not exist in its "
                                "input %s", file, spec->line, (long long)axis, shape);
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: batch_normalization: axis %lld of its input %s is not the "
                            "last: only the last axis (-1, or %d here) is normalized", file, spec->line,
                            (long long)axis, shape, in->rank);
    }
    *out = *in;
    return 0;
}

static void batchnorm_declare_params(struct layer *l)
{
    static const char *const names[] = {"gamma", "beta", "moving_mean", "moving_variance"};
    struct bn_params p = bn_params(l);
    int n = 0;
    for (int i = 0; i < 4; i++) {
        if ((i == 0 && p.gamma < 0) || (i == 1 && p.beta < 0))
            continue;
        l->param_names[n] = names[i];
        l->param_shapes[n] = (struct shape){1, {channels(l)}};
        n++;
    }
    l->nparams = n;
    l->ntrainable = n - 2;
}

/* Keras' initializers: gamma ones, beta zeros, moving mean zeros, moving variance ones */
static void batchnorm_init_params(const struct layer *l, float *host_arena, uint64_t seed)
{
    (void)seed;
    struct bn_params p = bn_params(l);
    int64_t c = channels(l);
    for (int64_t j = 0; j < c; j++) {
        if (p.gamma >= 0)
            host_arena[l->param_offsets[p.gamma] + (size_t)j] = 1.0f;
        if (p.beta >= 0)
            host_arena[l->param_offsets[p.beta] + (size_t)j] = 0.0f;
        host_arena[l->param_offsets[p.mean] + (size_t)j] = 0.0f;
        host_arena[l->param_offsets[p.var] + (size_t)j] = 1.0f;
    }
}

static void batchnorm_allocate(struct layer *l, const struct backend *be, int64_t max_rows)
{
    (void)max_rows;
    l->stat = be->alloc((size_t)(2 * channels(l)) * sizeof(float), "batch statistics");
    l->sums = be->alloc((size_t)(2 * channels(l)) * sizeof(double), "batch sums");
}

static void batchnorm_release(struct layer *l, const struct backend *be)
{
    be->free(l->stat);
    be->free(l->sums);
}

/* Values per channel this rank has, and how many the statistics are over */
static int64_t local_values(const struct layer *l, const struct pass_context *c)
{
    return c->rows * (l->out_size / channels(l));
}

static int synchronized(const struct layer *l, const struct pass_context *c)
{
    return !l->spec.u.batchnorm.per_rank && c->sum_across_ranks;
}

static double values_counted(const struct layer *l, const struct pass_context *c)
{
    int64_t rows = synchronized(l, c) && c->global_rows > 0 ? c->global_rows : c->rows;
    return (double)(rows * (l->out_size / channels(l)));
}

static void batchnorm_forward(struct layer *l, const struct pass_context *c)
{
    const typeof(l->spec.u.batchnorm) *s = &l->spec.u.batchnorm;
    struct bn_params p = bn_params(l);
    int64_t n = local_values(l, c), ch = channels(l);
    const float *gamma = p.gamma >= 0 ? param(l, p.gamma) : NULL, *beta = p.beta >= 0 ? param(l, p.beta) : NULL;
    if (!c->training) {
        c->be->batchnorm_forward_infer(l->y, l->x, param(l, p.mean), param(l, p.var), gamma, beta, (float)s->epsilon,
                                       n, ch);
        return;
    }
    c->be->batchnorm_sums(l->sums, l->x, n, ch);
    if (synchronized(l, c))
        c->sum_across_ranks(c->sum_arg, l->sums, 2 * ch);
    c->be->batchnorm_forward_train(l->y, l->stat, param(l, p.mean), param(l, p.var), l->x, l->sums,
                                   values_counted(l, c), gamma, beta, (float)s->momentum, (float)s->epsilon, n, ch);
}

static void batchnorm_backward(struct layer *l, const struct pass_context *c)
{
    struct bn_params p = bn_params(l);
    int64_t n = local_values(l, c), ch = channels(l);
    c->be->batchnorm_backward_sums(l->sums, l->dy, l->x, l->stat, n, ch);
    /* this rank's share of dgamma and dbeta: the gradient all-reduce adds the ranks' */
    c->be->batchnorm_param_grads(p.gamma >= 0 ? grad(l, p.gamma) : NULL, p.beta >= 0 ? grad(l, p.beta) : NULL,
                                 l->sums, ch);
    /* the moving statistics are not learned: their gradients stay zero for the optimizer */
    c->be->zero(grad(l, p.mean), (size_t)ch * sizeof(float));
    c->be->zero(grad(l, p.var), (size_t)ch * sizeof(float));
    if (!l->dx)
        return;
    if (synchronized(l, c))
        c->sum_across_ranks(c->sum_arg, l->sums, 2 * ch);
    c->be->batchnorm_backward_dx(l->dx, l->dy, l->x, l->stat, p.gamma >= 0 ? param(l, p.gamma) : NULL, l->sums,
                                 values_counted(l, c), n, ch);
}

/* A rank without rows adds zeros to the sums, and takes the global statistics like the others
 * (its moving statistics stay those of every rank). */
static void batchnorm_collectives_without_rows(struct layer *l, const struct pass_context *c, int backward)
{
    if (!synchronized(l, c) || (backward && !l->dx))
        return;
    struct pass_context empty = *c;
    empty.rows = 0;
    if (backward)
        batchnorm_backward(l, &empty);
    else
        batchnorm_forward(l, &empty);
}

static const char *const batchnorm_keys[] = {"axis", "momentum", "epsilon", "center", "scale", "synchronized", NULL};

static int batchnorm_read(struct layer_spec *spec, struct layer_keys *k)
{
    typeof(spec->u.batchnorm) *s = &spec->u.batchnorm;
    int sync;
    if (k->integer(k, "axis", &s->axis, -1, -1000, 1000, 0) || k->number(k, "momentum", &s->momentum, 0.99, 0.0, 1.0, 0) ||
        k->number(k, "epsilon", &s->epsilon, 1e-3, 0.0, 1.0, 0) || k->boolean(k, "center", &s->center, 1) ||
        k->boolean(k, "scale", &s->scale, 1) || k->boolean(k, "synchronized", &sync, 1))
        return -1;
    if (!(s->epsilon > 0.0))
        return k->fail(k, "epsilon", "epsilon must be positive");
    s->per_rank = !sync;
    return 0;
}

static int batchnorm_settings(const struct layer_spec *spec, struct layer_setting *out)
{
    const typeof(spec->u.batchnorm) *s = &spec->u.batchnorm;
    layer_setting_number(&out[0], "momentum", s->momentum);
    layer_setting_number(&out[1], "epsilon", s->epsilon);
    layer_setting_text(&out[2], "center", s->center ? "true" : "false");
    layer_setting_text(&out[3], "scale", s->scale ? "true" : "false");
    layer_setting_text(&out[4], "synchronized", s->per_rank ? "false" : "true");
    return 5;
}

const struct layer_ops layer_batchnorm_ops = {
    .type_name = "batch_normalization",
    .keras_name = "batch_normalization",
    .keras_class = "BatchNormalization",
    .keys = batchnorm_keys,
    .read = batchnorm_read,
    .settings = batchnorm_settings,
    .out_shape = batchnorm_out_shape,
    .allocate = batchnorm_allocate,
    .release = batchnorm_release,
    .declare_params = batchnorm_declare_params,
    .init_params = batchnorm_init_params,
    .owns_buffers = 1,
    .forward = batchnorm_forward,
    .backward = batchnorm_backward,
    .collectives_without_rows = batchnorm_collectives_without_rows,
};
