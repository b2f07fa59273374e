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
