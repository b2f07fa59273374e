#include "net/layers.h"

#include <stdio.h>
#include <string.h>

const struct layer_ops *const layer_ops_table[LAYER_KIND_COUNT] = {
    [LAYER_KIND_DENSE] = &layer_dense_ops,
    [LAYER_KIND_DROPOUT] = &layer_dropout_ops,
    [LAYER_KIND_FLATTEN] = &layer_flatten_ops,
    [LAYER_KIND_CONV2D] = &layer_conv2d_ops,
    [LAYER_KIND_MAXPOOL2D] = &layer_maxpool2d_ops,
    [LAYER_KIND_ACTIVATION] = &layer_activation_ops,
    [LAYER_KIND_LEAKY_RELU] = &layer_leaky_relu_ops,
    [LAYER_KIND_ELU] = &layer_elu_ops,
    [LAYER_KIND_AVGPOOL2D] = &layer_avgpool2d_ops,
    [LAYER_KIND_GLOBAL_AVGPOOL2D] = &layer_global_avgpool2d_ops,
    [LAYER_KIND_GLOBAL_MAXPOOL2D] = &layer_global_maxpool2d_ops,
    [LAYER_KIND_RESHAPE] = &layer_reshape_ops,
    [LAYER_KIND_BATCHNORM] = &layer_batchnorm_ops,
};

const char *const layer_kind_names[LAYER_KIND_COUNT + 1] = {
    [LAYER_KIND_DENSE] = "dense", [LAYER_KIND_DROPOUT] = "dropout",
    [LAYER_KIND_FLATTEN] = "flatten", [LAYER_KIND_CONV2D] = "conv2d", [LAYER_KIND_MAXPOOL2D] = "maxpool2d",
    [LAYER_KIND_ACTIVATION] = "activation", [LAYER_KIND_LEAKY_RELU] = "leaky_relu", [LAYER_KIND_ELU] = "elu",
    [LAYER_KIND_AVGPOOL2D] = "average_pooling2d", [LAYER_KIND_GLOBAL_AVGPOOL2D] = "global_average_pooling2d",
    [LAYER_KIND_GLOBAL_MAXPOOL2D] = "global_max_pooling2d", [LAYER_KIND_RESHAPE] = "reshape",
    [LAYER_KIND_BATCHNORM] = "batch_normalization", [LAYER_KIND_COUNT] = 0,
};

void layer_setting_int(struct layer_setting *s, const char *name, int64_t v, int count)
{
    s->name = name;
    s->count = count;
    snprintf(s->value, sizeof s->value, "%lld", (long long)v);
}

void layer_setting_text(struct layer_setting *s, const char *name, const char *v)
{
    s->name = name;
    s->count = 0;
    snprintf(s->value, sizeof s->value, "%s", v);
}

void layer_setting_pair(struct layer_setting *s, const char *name, const int64_t v[2])
{
    s->name = name;
    s->count = 0;
    snprintf(s->value, sizeof s->value, "[%lld, %lld]", (long long)v[0], (long long)v[1]);
}

void layer_setting_number(struct layer_setting *s, const char *name, double v)
{
    s->name = name;
    s->count = 0;
    snprintf(s->value, sizeof s->value, "%.17g", v);
}

enum activation layer_activation(const struct layer_spec *spec)
{
    const struct layer_ops *ops = layer_ops_table[spec->kind];
    return ops->activation ? ops->activation(spec) : ACTIVATION_LINEAR;
}

float layer_activation_param(const struct layer_spec *spec)
{
    const struct layer_ops *ops = layer_ops_table[spec->kind];
    return ops->activation_param ? ops->activation_param(spec) : 0.0f;
}

int layer_read_activation(struct layer_keys *k, enum activation *act, float *param)
{
    int a;
    if (k->choice(k, "activation", &a, ACTIVATION_LINEAR, activation_names))
        return -1;
    *act = (enum activation)a;
    *param = activation_default_param(*act);
    static const char *const keys[] = {ACTIVATION_PARAM_KEYS};
    const char *own = activation_param_name(*act);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!k->has(k, keys[i]))
            continue;
        if (!own || strcmp(own, keys[i]) != 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "applies to activation \"%s\" only, not \"%s\"",
                     !strcmp(keys[i], "negative_slope") ? "leaky_relu" : !strcmp(keys[i], "alpha") ? "elu" : "gelu",
                     activation_names[*act]);
            return k->fail(k, keys[i], msg);
        }
        if (*act == ACTIVATION_GELU) {
            int approximate;
            if (k->boolean(k, keys[i], &approximate, 0))
                return -1;
            *param = (float)approximate;
        } else {
            double v;
            if (k->number(k, keys[i], &v, *param, 0.0, 1e6, 0))
                return -1;
            *param = (float)v;
        }
    }
    return 0;
}

void layer_setting_activation(struct layer_setting *s, enum activation act, float param)
{
    s->name = "activation";
    s->count = 0;
    const char *pname = activation_param_name(act);
    if (!pname)
        snprintf(s->value, sizeof s->value, "%s", activation_names[act]);
    else if (act == ACTIVATION_GELU)
        snprintf(s->value, sizeof s->value, "gelu(approximate=%s)", param != 0.0f ? "true" : "false");
    else
        snprintf(s->value, sizeof s->value, "%s(%s=%.7g)", activation_names[act], pname, (double)param);
}

int layer_read_weight_options(struct layer_keys *k, struct weight_options *w)
{
    static const char *const args[] = {"mean", "stddev", "minval", "maxval", "value", NULL};
    int use_bias;
    if (k->boolean(k, "use_bias", &use_bias, 1))
        return -1;
    w->no_bias = !use_bias;
    const char *keys[2] = {"kernel_initializer", "bias_initializer"};
    struct initializer *inits[2] = {&w->kernel, &w->bias};
    for (int p = 0; p < 2; p++) {
        int index = -1;
        double numbers[5];
        int given[5];
        if (k->named(k, keys[p], initializer_names + 1, &index, args, numbers, given))
            return -1;
        if (index < 0) {
            *inits[p] = (struct initializer){INIT_DEFAULT, 0, 0};
            continue;
        }
        enum initializer_kind kind = (enum initializer_kind)(index + 1);
        *inits[p] = initializer_default(kind);
        const char *own[2];
        initializer_arg_names(kind, own);
        for (int a = 0; args[a]; a++) {
            if (!given[a])
                continue;
            int slot = own[0] && !strcmp(own[0], args[a]) ? 0 : own[1] && !strcmp(own[1], args[a]) ? 1 : -1;
            if (slot < 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "%s does not take %s", initializer_names[kind], args[a]);
                return k->fail(k, keys[p], msg);
            }
            if (slot == 0)
                inits[p]->a = numbers[a];
            else
                inits[p]->b = numbers[a];
        }
        if ((kind == INIT_RANDOM_NORMAL || kind == INIT_TRUNCATED_NORMAL) && !(inits[p]->b > 0))
            return k->fail(k, keys[p], "stddev must be positive");
        if (kind == INIT_RANDOM_UNIFORM && !(inits[p]->a < inits[p]->b))
            return k->fail(k, keys[p], "minval must be less than maxval");
    }
    if (w->no_bias && k->has(k, "bias_initializer"))
        return k->fail(k, "bias_initializer", "use_bias = false: there is no bias to initialize");
    /* Keras 3's regularizers: "l1" and "l2" default to 0.01, l1_l2 (L1L2) to 0 and 0 */
    static const char *const reg_names[] = {"l1", "l2", "l1_l2", NULL};
    static const char *const reg_args[] = {"l1", "l2", NULL};
    const char *reg_keys[2] = {"kernel_regularizer", "bias_regularizer"};
    struct regularizer *regs[2] = {&w->kernel_reg, &w->bias_reg};
    for (int p = 0; p < 2; p++) {
        int index = -1, given[2];
        double numbers[2] = {0.0, 0.0};
        if (k->named(k, reg_keys[p], reg_names, &index, reg_args, numbers, given))
            return -1;
        *regs[p] = (struct regularizer){0, 0};
        if (index < 0)
            continue;
        if ((index == 0 && given[1]) || (index == 1 && given[0]))
            return k->fail(k, reg_keys[p], index == 0 ? "l1 does not take l2 (use l1_l2)" : "l2 does not take l1 (use l1_l2)");
        regs[p]->l1 = index == 1 ? 0.0 : given[0] ? numbers[0] : index == 0 ? 0.01 : 0.0;
        regs[p]->l2 = index == 0 ? 0.0 : given[1] ? numbers[1] : index == 1 ? 0.01 : 0.0;
        if (regs[p]->l1 < 0 || regs[p]->l2 < 0)
            return k->fail(k, reg_keys[p], "a penalty factor cannot be negative");
    }
    if (w->no_bias && k->has(k, "bias_regularizer"))
        return k->fail(k, "bias_regularizer", "use_bias = false: there is no bias to regularize");
    return 0;
}

static void regularizer_setting(struct layer_setting *s, const char *name, const struct regularizer *r)
{
    s->name = name;
    s->count = 0;
    if (r->l1 == 0 && r->l2 == 0)
        snprintf(s->value, sizeof s->value, "none");
    else
        snprintf(s->value, sizeof s->value, "l1_l2(l1=%.7g, l2=%.7g)", r->l1, r->l2);
}

static struct initializer resolved(struct initializer init, enum initializer_kind def)
{
    return init.kind == INIT_DEFAULT ? initializer_default(def) : init;
}

void layer_setting_weight_options(struct layer_setting *s, const struct weight_options *w)
{
    layer_setting_text(&s[0], "use_bias", w->no_bias ? "false" : "true");
    struct initializer kernel = resolved(w->kernel, INIT_GLOROT_UNIFORM), bias = resolved(w->bias, INIT_ZEROS);
    s[1].name = "kernel_initializer";
    s[1].count = 0;
    initializer_format(&kernel, s[1].value, sizeof s[1].value);
    s[2].name = "bias_initializer";
    s[2].count = 0;
    initializer_format(&bias, s[2].value, sizeof s[2].value);
    regularizer_setting(&s[3], "kernel_regularizer", &w->kernel_reg);
    regularizer_setting(&s[4], "bias_regularizer", &w->bias_reg);
}

void layer_declare_kernel_bias(struct layer *l, struct shape kernel_shape, int64_t out, const struct weight_options *w)
{
    l->nparams = w->no_bias ? 1 : 2;
    l->zero_bias = w->no_bias;
    l->param_names[0] = "kernel";
    l->param_shapes[0] = kernel_shape;
    l->regularizers[0] = w->kernel_reg;
    if (!w->no_bias) {
        l->param_names[1] = "bias";
        l->param_shapes[1] = (struct shape){1, {out}};
        l->regularizers[1] = w->bias_reg;
    }
}

void layer_init_kernel_bias(const struct layer *l, float *host_arena, uint64_t seed, int64_t fan_in, int64_t fan_out,
                            const struct weight_options *w)
{
    struct initializer kernel = resolved(w->kernel, INIT_GLOROT_UNIFORM), bias = resolved(w->bias, INIT_ZEROS);
    initializer_fill(&kernel, host_arena + l->param_offsets[0], shape_size(&l->param_shapes[0]), fan_in, fan_out, seed,
                     (uint32_t)l->index, 0);
    if (l->nparams > 1)
        initializer_fill(&bias, host_arena + l->param_offsets[1], shape_size(&l->param_shapes[1]), fan_in, fan_out,
                         seed, (uint32_t)l->index, 1);
}

int layer_settings_differ(const struct layer_spec *then, const struct layer_spec *now, char *what, size_t len)
{
    if (then->kind != now->kind) {
        snprintf(what, len, "is %s in the checkpoint but %s in the job", layer_kind_names[then->kind],
                 layer_kind_names[now->kind]);
        return 1;
    }
    struct layer_setting a[LAYER_MAX_SETTINGS], b[LAYER_MAX_SETTINGS];
    const struct layer_ops *ops = layer_ops_table[now->kind];
    int n = ops->settings ? ops->settings(then, a) : 0, nb = ops->settings ? ops->settings(now, b) : 0;
    DP_ASSERT(n == nb);
    for (int i = 0; i < n; i++) {
        if (!strcmp(a[i].value, b[i].value))
            continue;
        if (a[i].count)
            snprintf(what, len, "has %s %s in the checkpoint but %s in the job", a[i].value, a[i].name, b[i].value);
        else
            snprintf(what, len, "has %s %s in the checkpoint but %s in the job", a[i].name, a[i].value, b[i].value);
        return 1;
    }
    return 0;
}

const char *const layer_padding_names[3] = {"valid", "same", NULL};

int64_t shape_size(const struct shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

void shape_format(char *buf, size_t len, const struct shape *s)
{
    size_t used = (size_t)snprintf(buf, len, "(None");
    for (int i = 0; i < s->rank && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, ", %lld", (long long)s->dims[i]);
    if (used < len)
        snprintf(buf + used, len - used, ")");
}
