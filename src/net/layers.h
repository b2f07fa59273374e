/* Layer kinds: a tagged-union spec (what the job file says) and a per-kind ops table (what the
 * model does with it). One file per kind (layer_dense.c, layer_dropout.c, layer_flatten.c,
 * layer_conv2d.c, layer_reshape.c; layer_pool2d.c for max and average pooling and their global
 * forms, layer_activation.c for the three activation layers) holds everything
 * about it: the job file keys it reads, its
 * settings for the resume check, its output shape, buffers, weights (Keras names and shapes),
 * forward and backward. A new kind: its file, its backend kernels, and its line in layers.c and
 * the enum below. */
#ifndef DPTRAIN_LAYERS_H
#define DPTRAIN_LAYERS_H

#include <stdint.h>

#include "net/activation.h"
#include "net/backend.h"
#include "net/initializers.h"
#include "base/errors.h"

enum layer_kind {
    LAYER_KIND_DENSE,
    LAYER_KIND_DROPOUT,
    LAYER_KIND_FLATTEN,
    LAYER_KIND_CONV2D,
    LAYER_KIND_MAXPOOL2D,
    LAYER_KIND_ACTIVATION,
    LAYER_KIND_LEAKY_RELU,
    LAYER_KIND_ELU,
    LAYER_KIND_AVGPOOL2D,
    LAYER_KIND_GLOBAL_AVGPOOL2D,
    LAYER_KIND_GLOBAL_MAXPOOL2D,
    LAYER_KIND_RESHAPE,
    LAYER_KIND_BATCHNORM,
    LAYER_KIND_COUNT
};

#define SHAPE_MAX_RANK 4

/* Shape of one sample (the batch dimension is not included). */
struct shape {
    int rank;
    int64_t dims[SHAPE_MAX_RANK];
};
int64_t shape_size(const struct shape *s);
/* "(None, 30)"-style text for summaries. */
void shape_format(char *buf, size_t len, const struct shape *s);

/* Keras' L1/L2 penalty on a weight tensor: l1 * sum |w| + l2 * sum w^2 (both 0: none) */
struct regularizer {
    double l1, l2;
};

/* Keras' use_bias, kernel_initializer, bias_initializer, kernel_regularizer and bias_regularizer of
 * dense and conv2d. All zero means Keras' defaults: a bias, glorot_uniform kernels, zero biases, no
 * penalty. */
struct weight_options {
    int no_bias;
    struct initializer kernel, bias; /* INIT_DEFAULT: glorot_uniform, zeros */
    struct regularizer kernel_reg, bias_reg;
};

struct layer_spec {
    enum layer_kind kind;
    int line;            /* job file line, for messages */
    struct shape input_shape; /* Keras' input_shape, first layer only: checked against the data (rank 0: none) */
    union {
        struct {
            int64_t units;
            enum activation activation;
            float activation_param;
            struct weight_options weights;
        } dense;
        struct { double rate; } dropout;
        struct {
            int64_t filters, kernel[2], strides[2];
            int same;            /* padding "same" (else "valid") */
            enum activation activation;
            float activation_param;
            struct weight_options weights;
        } conv2d;
        struct { int64_t pool[2], strides[2]; int same; } pool2d;  /* maxpool2d, average_pooling2d */
        struct { enum activation activation; float param; } activation; /* activation, leaky_relu, elu */
        struct { int keepdims; } global_pool2d;
        struct shape reshape;     /* target_shape, one dimension possibly -1 */
        struct {
            double momentum, epsilon;
            int center, scale;    /* beta, gamma learned (else 0 and 1) */
            int per_rank;         /* synchronized = false: each rank's own batch statistics */
            int64_t axis;         /* as given: -1, or the last axis counting the batch's (checked by shape) */
        } batchnorm;
    } u;
};

#define LAYER_MAX_PARAMS 4

struct layer {
    struct layer_spec spec;
    int index;                 /* position in the model */
    char name[64];             /* Keras-style unique name: dense, dense_1, dropout, ... */
    struct shape in_shape, out_shape;
    int64_t in_size, out_size; /* features per sample */

    int nparams;                                    /* weight tensors: dense 2, others 0 */
    int ntrainable;                                 /* the first ntrainable are learned; the rest (moving
                                                       statistics) only saved */
    struct regularizer regularizers[LAYER_MAX_PARAMS]; /* penalties on the learned ones */
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
    float *cols;    /* conv2d: (rows * out_h * out_w, kh * kw * in_c) im2col patches */
    float *dcols;   /* conv2d: same shape, gradient of the patches */
    int32_t *argmax; /* maxpool2d: (rows, out) index of the max within the input sample */
    float *stat;     /* batchnorm: the batch's mean and 1 / sqrt(var + epsilon) per channel */
    double *sums;    /* batchnorm: per-channel sums (2 per channel) */
    struct conv_geometry geom; /* conv2d / maxpool2d */
    int loss_fused; /* the loss wrote dL/dz into dy (softmax/sigmoid + cross-entropy) */
    /* use_bias = false: b is zeros and db scratch, kept out of the arenas (backend memory of the
     * model's own), so the products keep their bias epilogues */
    int zero_bias;

    /* GPU only: a Dense relu layer under a Dense keeps a bit mask of z > 0 (backend
     * dense_forward_relu_mask), so the layer above computes this layer's dL/dz and bias gradient
     * in its dx product (dense_input_grad_relu). */
    struct layer *below;  /* the layer whose y is x; NULL for the first */
    void *relu_mask;      /* NULL where not fused */
    int relu_mask_valid;  /* the last forward wrote it */
    int dz_ready;         /* this step, the layer above wrote dL/dz into dy and added the bias gradient */
};

/* What a forward/backward pass needs besides the layer itself. */
struct pass_context {
    const struct backend *be;
    int64_t rows;
    int training;               /* dropout on */
    uint64_t seed;
    uint32_t step;              /* global optimizer step (dropout key) */
    const int64_t *sample_ids;  /* (rows) global sample indices, backend memory */
    /* Backward only, optional: called after each layer with parameters, with the arena offset of
     * its first parameter (gradients from there to the arena's end are final): all-reduce buckets. */
    void (*grads_final)(void *arg, size_t first_offset);
    void *grads_final_arg;
    /* Optional (bench --profile): each layer's forward and backward timed alone, the device
     * synchronized around it, and the seconds added to slot i of these arrays. */
    double *forward_seconds, *backward_seconds;
    /* Training over several ranks: sums n doubles of backend memory over them in place, and the
     * rows of the whole batch (synchronized BatchNormalization). NULL and 0 on one rank. */
    void (*sum_across_ranks)(void *arg, double *buf, int64_t n);
    void *sum_arg;
    int64_t global_rows;
};

/* How a layer kind reads its keys from the job file: the job file's schema (job/) hands these
 * readers over the layer's group, so the kind's file says which keys it takes, their defaults and
 * checks without knowing the file's format. Each returns 0, or -1 with the error set (naming the
 * file and line). A missing key takes the default, or is an error when `required`. */
struct layer_keys {
    int (*integer)(struct layer_keys *k, const char *key, int64_t *out, int64_t def, int64_t min, int64_t max,
                   int required);
    /* A number in [min, max) */
    int (*number)(struct layer_keys *k, const char *key, double *out, double def, double min, double max,
                  int required);
    /* One of `choices` (NULL-terminated; Keras' spellings accepted); *out its index */
    int (*choice)(struct layer_keys *k, const char *key, int *out, int def, const char *const *choices);
    /* n or [height, width], each in [1, 4096] */
    int (*pair)(struct layer_keys *k, const char *key, int64_t out[2], int64_t def, int required);
    /* true or false */
    int (*boolean)(struct layer_keys *k, const char *key, int *out, int def);
    /* A required shape like [7, 7, 16]; one dimension may be -1 (to be inferred) */
    int (*shape)(struct layer_keys *k, const char *key, struct shape *out);
    /* A name from `choices` (*index its index; unchanged when the key is absent), or a group with
     * `name` and any of the NULL-terminated number_keys: numbers[i] is set and given[i] = 1 for
     * each that is there. */
    int (*named)(struct layer_keys *k, const char *key, const char *const *choices, int *index,
                 const char *const *number_keys, double *numbers, int *given);
    int (*has)(struct layer_keys *k, const char *key);
    /* Fails naming the key's line: "file:line: key: message" */
    int (*fail)(struct layer_keys *k, const char *key, const char *message);
};

/* One setting of a layer as the job file gives it, for the resume check and its messages. */
#define LAYER_MAX_SETTINGS 12
struct layer_setting {
    const char *name;  /* "units", "activation", "strides" */
    char value[48];    /* "256", "relu", "[2, 2]" */
    int count;         /* said as "256 units" rather than "units 256" */
};

struct layer_ops {
    const char *type_name;    /* job file type */
    const char *keras_name;   /* name prefix Keras uses: "dense" */
    const char *keras_class;  /* Keras' class name: "Dense" */
    const char *const *keys;  /* the job file keys it takes besides type and input_shape (NULL-terminated) */
    /* Reads the kind's keys into spec->u */
    int (*read)(struct layer_spec *spec, struct layer_keys *k);
    /* Every setting of spec, in job file order; returns how many (at most LAYER_MAX_SETTINGS) */
    int (*settings)(const struct layer_spec *spec, struct layer_setting *out);
    /* The activation applied to its output (LINEAR for kinds without one) and its parameter
     * (net/activation.h) */
    enum activation (*activation)(const struct layer_spec *spec);
    float (*activation_param)(const struct layer_spec *spec);
    /* Output shape from the input shape; fails with a clear message naming the line. */
    int (*out_shape)(const struct layer_spec *spec, const struct shape *in, struct shape *out,
                     const char *file, struct dp_error *err);
    /* Optional: extra buffers for batches of max_rows rows (NULL when none), and their release. */
    void (*allocate)(struct layer *l, const struct backend *be, int64_t max_rows);
    void (*release)(struct layer *l, const struct backend *be);
    /* Declares the layer's weight tensors (names and Keras shapes). */
    void (*declare_params)(struct layer *l);
    /* Initializes weights in a host buffer laid out like the arena (glorot_uniform, zeros). */
    void (*init_params)(const struct layer *l, float *host_arena, uint64_t seed);
    /* Whether the layer needs its own y/z/dy buffers (flatten aliases its input). */
    int owns_buffers;
    void (*forward)(struct layer *l, const struct pass_context *c);
    void (*backward)(struct layer *l, const struct pass_context *c);
    /* Optional: a rank whose slice of the batch is empty still takes part in the layer's
     * collectives (forward, then backward), so the other ranks do not wait for it. */
    void (*collectives_without_rows)(struct layer *l, const struct pass_context *c, int backward);
};

/* Helpers for the settings functions of the kinds */
void layer_setting_int(struct layer_setting *s, const char *name, int64_t v, int count);
void layer_setting_text(struct layer_setting *s, const char *name, const char *v);
void layer_setting_pair(struct layer_setting *s, const char *name, const int64_t v[2]);
void layer_setting_number(struct layer_setting *s, const char *name, double v);
/* The activation a layer applies (its kind's activation op), and its parameter */
enum activation layer_activation(const struct layer_spec *spec);
float layer_activation_param(const struct layer_spec *spec);
/* Reads `activation` (default linear) and the parameter keys of the activations that take one
 * (ACTIVATION_PARAM_KEYS: each refused for the other activations). */
int layer_read_activation(struct layer_keys *k, enum activation *act, float *param);
#define ACTIVATION_PARAM_KEYS "negative_slope", "alpha", "approximate"
/* The activation as a setting: "relu", "leaky_relu(negative_slope=0.1)", "gelu(approximate=true)" */
void layer_setting_activation(struct layer_setting *s, enum activation act, float param);
/* Reads use_bias, kernel_initializer, bias_initializer, kernel_regularizer and bias_regularizer
 * (WEIGHT_OPTION_KEYS) */
int layer_read_weight_options(struct layer_keys *k, struct weight_options *w);
#define WEIGHT_OPTION_KEYS "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer"
/* The five as settings (WEIGHT_OPTION_SETTINGS entries) */
#define WEIGHT_OPTION_SETTINGS 5
void layer_setting_weight_options(struct layer_setting *s, const struct weight_options *w);
/* Declares (kernel_shape, and bias (out) unless no_bias) and initializes them */
void layer_declare_kernel_bias(struct layer *l, struct shape kernel_shape, int64_t out, const struct weight_options *w);
void layer_init_kernel_bias(const struct layer *l, float *host_arena, uint64_t seed, int64_t fan_in, int64_t fan_out,
                            const struct weight_options *w);
/* The first setting that differs between two specs of layers; 0 when all agree. On a difference,
 * `what` says it: "has 256 units in the checkpoint but 128 in the job". */
int layer_settings_differ(const struct layer_spec *then, const struct layer_spec *now, char *what, size_t len);

/* Fills g for a kh x kw window with strides (sh, sw) over an (H, W, C) input; out_c 0 keeps C. */
int conv_geometry_make(struct conv_geometry *g, const struct shape *in, int64_t kh, int64_t kw, int64_t sh,
                       int64_t sw, int same, int64_t out_c, const char *what, const char *file, int line,
                       struct dp_error *err);

extern const struct layer_ops *const layer_ops_table[LAYER_KIND_COUNT];
extern const char *const layer_kind_names[LAYER_KIND_COUNT + 1];
/* Keras' padding names, by the `same` flag of conv2d and max pooling: "valid", "same" */
extern const char *const layer_padding_names[3];

extern const struct layer_ops layer_dense_ops;
extern const struct layer_ops layer_dropout_ops;
extern const struct layer_ops layer_flatten_ops;
extern const struct layer_ops layer_conv2d_ops;
extern const struct layer_ops layer_maxpool2d_ops;
extern const struct layer_ops layer_activation_ops;
extern const struct layer_ops layer_leaky_relu_ops;
extern const struct layer_ops layer_elu_ops;
extern const struct layer_ops layer_avgpool2d_ops;
extern const struct layer_ops layer_global_avgpool2d_ops;
extern const struct layer_ops layer_global_maxpool2d_ops;
extern const struct layer_ops layer_reshape_ops;
extern const struct layer_ops layer_batchnorm_ops;

#endif
