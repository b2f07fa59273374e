/* Layer kinds: a tagged-union spec (what the job file says) and a per-kind ops table (what the
 * model does with it). One file per kind: layer_dense.c, layer_dropout.c, layer_flatten.c. */
#ifndef DPTRAIN_LAYERS_H
#define DPTRAIN_LAYERS_H

#include <stdint.h>

#include "activation.h"
#include "backend.h"
#include "errors.h"

enum layer_kind { LAYER_KIND_DENSE, LAYER_KIND_DROPOUT, LAYER_KIND_FLATTEN, LAYER_KIND_COUNT };

#define SHAPE_MAX_RANK 4

/* Shape of one sample (the batch dimension is not included). */
struct shape {
    int rank;
    int64_t dims[SHAPE_MAX_RANK];
};
int64_t shape_size(const struct shape *s);
/* "(None, 30)"-style text for summaries. */
void shape_format(char *buf, size_t len, const struct shape *s);

struct layer_spec {
    enum layer_kind kind;
    int line;            /* job file line, for messages */
    union {
        struct { int64_t units; enum activation activation; } dense;
        struct { double rate; } dropout;
    } u;
};

#define LAYER_MAX_PARAMS 2

struct layer {
    struct layer_spec spec;
    int index;                 /* position in the model */
    char name[64];             /* Keras-style unique name: dense, dense_1, dropout, ... */
    struct shape in_shape, out_shape;
    int64_t in_size, out_size; /* features per sample */

    int nparams;                                    /* weight tensors: dense 2, others 0 */
    const char *param_names[LAYER_MAX_PARAMS];      /* "kernel", "bias" */
    struct shape param_shapes[LAYER_MAX_PARAMS];    /* Keras shapes: kernel (in, out), bias (out) */
    size_t param_offsets[LAYER_MAX_PARAMS];         /* floats into the arenas, 64-float aligned */

    /* Views into the arenas (backend memory) */
    float *w;  /* dense kernel (in, out) */
    float *b;  /* dense bias (out) */
    float *dw; /* (in, out) */
    float *db; /* (out) */

    /* Activations for a batch of up to max_rows rows (backend memory) */
    const float *x; /* (rows, in): the previous layer's y or the model input */
    float *z;       /* (rows, out): pre-activation (dense); == y when linear */
    float *y;       /* (rows, out) */
    float *dx;      /* (rows, in): the previous layer's dy; NULL for the first layer */
    float *dy;      /* (rows, out) */
    uint8_t *mask;  /* (rows, out): dropout keep mask */
    int loss_fused; /* the loss wrote dL/dz into dy (softmax/sigmoid + cross-entropy) */
};

/* What a forward/backward pass needs besides the layer itself. */
struct pass_context {
    const struct backend *be;
    int64_t rows;
    int training;               /* dropout on */
    uint64_t seed;
    uint32_t step;              /* global optimizer step (dropout key) */
    const int64_t *sample_ids;  /* (rows) global sample indices, backend memory */
};

struct layer_ops {
    const char *type_name;    /* job file type */
    const char *keras_name;   /* name prefix Keras uses: "dense" */
    /* Output shape from the input shape; fails with a clear message naming the line. */
    int (*out_shape)(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                     const char *file, struct dp_error *err);
    /* Declares the layer's weight tensors (names and Keras shapes). */
    void (*declare_params)(struct layer *l);
    /* Initializes weights in a host buffer laid out like the arena (glorot_uniform, zeros). */
    void (*init_params)(const struct layer *l, float *host_arena, uint64_t seed);
    /* Whether the layer needs its own y/z/dy buffers (flatten aliases its input). */
    int owns_buffers;
    void (*forward)(struct layer *l, const struct pass_context *c);
    void (*backward)(struct layer *l, const struct pass_context *c);
};

extern const struct layer_ops *const layer_ops_table[LAYER_KIND_COUNT];
extern const char *const layer_kind_names[LAYER_KIND_COUNT + 1];

extern const struct layer_ops layer_dense_ops;
extern const struct layer_ops layer_dropout_ops;
extern const struct layer_ops layer_flatten_ops;

#endif
