#include "net/layers.h"

#include <stdio.h>
#include <string.h>

const struct layer_ops *const layer_ops_table[LAYER_KIND_COUNT] = {
    [LAYER_KIND_DENSE] = &layer_dense_ops,
    [LAYER_KIND_DROPOUT] = &layer_dropout_ops,
    [LAYER_KIND_FLATTEN] = &layer_flatten_ops,
    [LAYER_KIND_CONV2D] = &layer_conv2d_ops,
    [LAYER_KIND_MAXPOOL2D] = &layer_maxpool2d_ops,
};

const char *const layer_kind_names[LAYER_KIND_COUNT + 1] = {
    [LAYER_KIND_DENSE] = "dense", [LAYER_KIND_DROPOUT] = "dropout",
    [LAYER_KIND_FLATTEN] = "flatten", [LAYER_KIND_CONV2D] = "conv2d", [LAYER_KIND_MAXPOOL2D] = "maxpool2d",
    [LAYER_KIND_COUNT] = 0,
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
