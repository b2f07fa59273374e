#include "keras/keras_config.h"

#include <ctype.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Building one layer's config: the dialect, and where a refusal points */
struct builder {
    enum keras_dialect dialect;
    const char *source; /* the job file */
    const char *layer;  /* the layer's name, for messages */
    struct dp_error *err;
};

static int refuse(const struct builder *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(const struct builder *b, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return dp_error_set(b->err, DP_EXIT_INPUT, "%s: layer %s: %s: Keras has no equivalent", b->source, b->layer, why);
}

/* {"module": ..., "class_name": ..., "config": ..., "registered_name": null} (native) or
 * {"class_name": ..., "config": ...} (legacy); takes config's reference */
static json_t *keras_object(enum keras_dialect d, const char *module, const char *cls, json_t *config)
{
    json_t *o = json_object();
    if (d == KERAS_NATIVE)
        json_object_set_new(o, "module", json_string(module));
    json_object_set_new(o, "class_name", json_string(cls));
    json_object_set_new(o, "config", config);
    if (d == KERAS_NATIVE)
        json_object_set_new(o, "registered_name", json_null());
    return o;
}

static json_t *int_pair(const int64_t v[2])
{
    return json_pack("[I, I]", (json_int_t)v[0], (json_int_t)v[1]);
}

/* "he_normal" -> "HeNormal" */
static void camel_case(char *out, size_t len, const char *snake)
{
    size_t n = 0;
    for (int up = 1; *snake && n + 1 < len; snake++) {
        if (*snake == '_') {
            up = 1;
            continue;
        }
        out[n++] = up ? (char)toupper((unsigned char)*snake) : *snake;
        up = 0;
    }
    out[n] = 0;
}

/* Keras' float32 dtype policy (written with module in both dialects, as Keras 3 does) */
static json_t *float32_policy(void)
{
    return keras_object(KERAS_NATIVE, "keras", "DTypePolicy", json_pack("{s:s}", "name", "float32"));
}

/* Every layer's config starts with name, trainable and the dtype policy */
static json_t *layer_base(const char *name)
{
    return json_pack("{s:s, s:b, s:o}", "name", name, "trainable", 1, "dtype", float32_policy());
}

static json_t *initializer(const struct builder *b, const struct initializer *init, int is_bias)
{
    enum initializer_kind kind = init->kind;
    if (kind == INIT_DEFAULT)
        kind = is_bias ? INIT_ZEROS : INIT_GLOROT_UNIFORM;
    char cls[64];
    camel_case(cls, sizeof cls, initializer_names[kind]);
    json_t *cfg = json_object();
    const char *args[2];
    initializer_arg_names(kind, args);
    for (int i = 0; i < 2; i++)
        if (args[i])
            json_object_set_new(cfg, args[i], json_real(i == 0 ? init->a : init->b));
    /* the random ones take a seed: none (Keras draws its own; the trained weights come with the file) */
    if (kind != INIT_ZEROS && kind != INIT_ONES && kind != INIT_CONSTANT)
        json_object_set_new(cfg, "seed", json_null());
    return keras_object(b->dialect, "keras.initializers", cls, cfg);
}

static json_t *regularizer(const struct builder *b, const struct regularizer *r)
{
    if (r->l1 == 0 && r->l2 == 0)
        return json_null();
    if (r->l1 == 0)
        return keras_object(b->dialect, "keras.regularizers", "L2", json_pack("{s:f}", "l2", r->l2));
    if (r->l2 == 0)
        return keras_object(b->dialect, "keras.regularizers", "L1", json_pack("{s:f}", "l1", r->l1));
    return keras_object(b->dialect, "keras.regularizers", "L1L2", json_pack("{s:f, s:f}", "l1", r->l1, "l2", r->l2));
}

/* An activation as Keras' string: only with the parameter Keras' function takes by default */
static int activation(const struct builder *b, json_t *cfg, enum activation act, float param)
{
    if (param != activation_default_param(act))
        return refuse(b, "activation %s with %s = %g (Keras' \"%s\" takes %g)", activation_names[act],
                      activation_param_name(act), param, activation_names[act], activation_default_param(act));
    json_object_set_new(cfg, "activation", json_string(activation_names[act]));
    return 0;
}

static void weight_options(const struct builder *b, json_t *cfg, const struct weight_options *w)
{
    json_object_set_new(cfg, "use_bias", json_boolean(!w->no_bias));
    json_object_set_new(cfg, "kernel_initializer", initializer(b, &w->kernel, 0));
    json_object_set_new(cfg, "bias_initializer", initializer(b, &w->bias, 1));
    json_object_set_new(cfg, "kernel_regularizer", regularizer(b, &w->kernel_reg));
    json_object_set_new(cfg, "bias_regularizer", regularizer(b, &w->bias_reg));
    json_object_set_new(cfg, "kernel_constraint", json_null());
    json_object_set_new(cfg, "bias_constraint", json_null());
}

static json_t *constant_initializer(const struct builder *b, int ones)
{
    return keras_object(b->dialect, "keras.initializers", ones ? "Ones" : "Zeros", json_object());
}

/* One of dptrain's layers: its class name into *cls, its config returned (NULL: refused) */
static json_t *layer_config(const struct builder *b, const struct layer *l, const char **cls)
{
    const struct layer_spec *s = &l->spec;
    json_t *cfg = layer_base(l->name);
    int rc = 0;
    switch (s->kind) {
    case LAYER_KIND_DENSE:
        *cls = "Dense";
        json_object_set_new(cfg, "units", json_integer(s->u.dense.units));
        rc = activation(b, cfg, s->u.dense.activation, s->u.dense.activation_param);
        weight_options(b, cfg, &s->u.dense.weights);
        break;
    case LAYER_KIND_CONV2D:
        *cls = "Conv2D";
        json_object_set_new(cfg, "filters", json_integer(s->u.conv2d.filters));
        json_object_set_new(cfg, "kernel_size", int_pair(s->u.conv2d.kernel));
        json_object_set_new(cfg, "strides", int_pair(s->u.conv2d.strides));
        json_object_set_new(cfg, "padding", json_string(s->u.conv2d.same ? "same" : "valid"));
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
        json_object_set_new(cfg, "dilation_rate", json_pack("[i, i]", 1, 1));
        json_object_set_new(cfg, "groups", json_integer(1));
        rc = activation(b, cfg, s->u.conv2d.activation, s->u.conv2d.activation_param);
        weight_options(b, cfg, &s->u.conv2d.weights);
        json_object_set_new(cfg, "activity_regularizer", json_null());
        break;
    case LAYER_KIND_MAXPOOL2D:
    case LAYER_KIND_AVGPOOL2D:
        *cls = s->kind == LAYER_KIND_MAXPOOL2D ? "MaxPooling2D" : "AveragePooling2D";
        json_object_set_new(cfg, "pool_size", int_pair(s->u.pool2d.pool));
        json_object_set_new(cfg, "padding", json_string(s->u.pool2d.same ? "same" : "valid"));
        json_object_set_new(cfg, "strides", int_pair(s->u.pool2d.strides));
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
        break;
    case LAYER_KIND_GLOBAL_AVGPOOL2D:
    case LAYER_KIND_GLOBAL_MAXPOOL2D:
        *cls = s->kind == LAYER_KIND_GLOBAL_AVGPOOL2D ? "GlobalAveragePooling2D" : "GlobalMaxPooling2D";
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
        json_object_set_new(cfg, "keepdims", json_boolean(s->u.global_pool2d.keepdims));
        break;
    case LAYER_KIND_DROPOUT:
        *cls = "Dropout";
        json_object_set_new(cfg, "rate", json_real(s->u.dropout.rate));
        json_object_set_new(cfg, "seed", json_null());
        json_object_set_new(cfg, "noise_shape", json_null());
        break;
    case LAYER_KIND_FLATTEN:
        *cls = "Flatten";
        json_object_set_new(cfg, "data_format", json_string("channels_last"));
        break;
    case LAYER_KIND_ACTIVATION:
        *cls = "Activation";
        rc = activation(b, cfg, s->u.activation.activation, s->u.activation.param);
        break;
    case LAYER_KIND_LEAKY_RELU:
        *cls = "LeakyReLU";
        json_object_set_new(cfg, "negative_slope", json_real(s->u.activation.param));
        break;
    case LAYER_KIND_ELU:
        *cls = "ELU";
        json_object_set_new(cfg, "alpha", json_real(s->u.activation.param));
        break;
    case LAYER_KIND_RESHAPE: {
        *cls = "Reshape";
        json_t *shape = json_array();
        for (int i = 0; i < s->u.reshape.rank; i++)
            json_array_append_new(shape, json_integer(s->u.reshape.dims[i]));
        json_object_set_new(cfg, "target_shape", shape);
        break;
    }
    case LAYER_KIND_BATCHNORM:
        *cls = "BatchNormalization";
        json_object_set_new(cfg, "axis", json_integer(s->u.batchnorm.axis));
        json_object_set_new(cfg, "momentum", json_real(s->u.batchnorm.momentum));
        json_object_set_new(cfg, "epsilon", json_real(s->u.batchnorm.epsilon));
        json_object_set_new(cfg, "center", json_boolean(s->u.batchnorm.center));
        json_object_set_new(cfg, "scale", json_boolean(s->u.batchnorm.scale));
        json_object_set_new(cfg, "beta_initializer", constant_initializer(b, 0));
        json_object_set_new(cfg, "gamma_initializer", constant_initializer(b, 1));
        json_object_set_new(cfg, "moving_mean_initializer", constant_initializer(b, 0));
        json_object_set_new(cfg, "moving_variance_initializer", constant_initializer(b, 1));
        json_object_set_new(cfg, "beta_regularizer", json_null());
        json_object_set_new(cfg, "gamma_regularizer", json_null());
        json_object_set_new(cfg, "beta_constraint", json_null());
        json_object_set_new(cfg, "gamma_constraint", json_null());
        /* Keras' synchronized concerns its own distribution strategies; with the trained
         * statistics in the file, inference is the same either way */
        json_object_set_new(cfg, "synchronized", json_false());
        break;
    default:
        rc = refuse(b, "layer kind %d", (int)s->kind);
    }
    if (rc != 0) {
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

/* [null, d0, d1, ...] */
static json_t *batch_shape(const struct shape *s)
{
    json_t *a = json_array();
    json_array_append_new(a, json_null());
    for (int i = 0; i < s->rank; i++)
        json_array_append_new(a, json_integer(s->dims[i]));
    return a;
}

/* Appends {"class_name", "config", "build_config"?} to layers. Keras records the input shape of
 * the layers that have a build step of their own (weights or shape checks); so does this. */
static void append_layer(json_t *layers, const struct builder *b, const char *cls, json_t *cfg,
                         const struct shape *in_shape)
{
    static const char *const built[] = {"Dense", "Conv2D", "BatchNormalization", "Flatten", "Reshape", "Normalization"};
    int has_build = 0;
    for (size_t i = 0; i < sizeof built / sizeof built[0]; i++)
        has_build |= !strcmp(cls, built[i]);
    json_t *o = keras_object(b->dialect, "keras.layers", cls, cfg);
    if (b->dialect == KERAS_NATIVE && in_shape && has_build)
        json_object_set_new(o, "build_config", json_pack("{s:o}", "input_shape", batch_shape(in_shape)));
    json_array_append_new(layers, o);
}

int keras_input_layer_names(const struct keras_input *in, const char *names[2])
{
    int n = 0;
    if (in->uint8_scaled)
        names[n++] = "rescaling";
    if (in->norm && in->norm->kind == NORMALIZE_STANDARD)
        names[n++] = "normalization";
    return n;
}

static void append_input_layers(json_t *layers, const struct builder *b, const struct keras_input *in,
                                const struct shape *input_shape)
{
    if (in->uint8_scaled) {
        json_t *cfg = layer_base("rescaling");
        json_object_set_new(cfg, "scale", json_real(1.0 / 255.0));
        json_object_set_new(cfg, "offset", json_real(0.0));
        append_layer(layers, b, "Rescaling", cfg, input_shape);
    }
    if (in->norm && in->norm->kind == NORMALIZE_STANDARD) {
        json_t *cfg = layer_base("normalization");
        json_t *mean = json_array(), *variance = json_array();
        for (int64_t j = 0; j < in->norm->cols; j++) {
            json_array_append_new(mean, json_real(in->norm->mean[j]));
            json_array_append_new(variance, json_real(in->norm->std[j] * in->norm->std[j]));
        }
        /* per feature over the flattened sample; for image data that is every pixel and channel */
        json_t *axis = json_array();
        for (int i = 0; i < input_shape->rank; i++)
            json_array_append_new(axis, json_integer(i + 1));
        json_object_set_new(cfg, "axis", input_shape->rank == 1 ? (json_decref(axis), json_integer(-1)) : axis);
        json_object_set_new(cfg, "invert", json_false());
        json_object_set_new(cfg, "mean", mean);
        json_object_set_new(cfg, "variance", variance);
        append_layer(layers, b, "Normalization", cfg, input_shape);
    }
}

void keras_model_name(char *out, size_t len, const char *job_name)
{
    snprintf(out, len, "%s", job_name && *job_name ? job_name : "sequential");
    for (char *c = out; *c; c++)
        if (*c == '/')
            *c = '_';
}

/* Keras 3's learning-rate schedule objects, with their argument names */
static json_t *learning_rate(const struct builder *b, const struct optimizer_config *o)
{
    const struct lr_schedule *s = &o->schedule;
    /* Keras 2's time-based decay of SGD is Keras 3's InverseTimeDecay with one step per decay */
    if (s->kind == LR_CONSTANT && o->decay > 0)
        return keras_object(b->dialect, "keras.optimizers.schedules", "InverseTimeDecay",
                            json_pack("{s:f, s:f, s:f, s:b}", "initial_learning_rate", o->lr, "decay_steps", 1.0,
                                      "decay_rate", o->decay, "staircase", 0));
    if (s->kind == LR_CONSTANT)
        return json_real(o->lr);
    json_t *cfg = json_pack("{s:f}", "initial_learning_rate", s->initial_learning_rate);
    const char *cls = NULL;
    switch (s->kind) {
    case LR_EXPONENTIAL_DECAY:
    case LR_INVERSE_TIME_DECAY:
        cls = s->kind == LR_EXPONENTIAL_DECAY ? "ExponentialDecay" : "InverseTimeDecay";
        json_object_set_new(cfg, "decay_steps", json_real(s->decay_steps));
        json_object_set_new(cfg, "decay_rate", json_real(s->decay_rate));
        json_object_set_new(cfg, "staircase", json_boolean(s->staircase));
        break;
    case LR_PIECEWISE_CONSTANT: {
        cls = "PiecewiseConstantDecay";
        json_object_del(cfg, "initial_learning_rate");
        json_t *bounds = json_array(), *values = json_array();
        for (int i = 0; i < s->nboundaries; i++)
            json_array_append_new(bounds, json_real(s->boundaries[i]));
        for (int i = 0; i <= s->nboundaries; i++)
            json_array_append_new(values, json_real(s->values[i]));
        json_object_set_new(cfg, "boundaries", bounds);
        json_object_set_new(cfg, "values", values);
        break;
    }
    case LR_POLYNOMIAL_DECAY:
        cls = "PolynomialDecay";
        json_object_set_new(cfg, "decay_steps", json_real(s->decay_steps));
        json_object_set_new(cfg, "end_learning_rate", json_real(s->end_learning_rate));
        json_object_set_new(cfg, "power", json_real(s->power));
        json_object_set_new(cfg, "cycle", json_boolean(s->cycle));
        break;
    case LR_COSINE_DECAY:
        cls = "CosineDecay";
        json_object_set_new(cfg, "decay_steps", json_real(s->decay_steps));
        json_object_set_new(cfg, "alpha", json_real(s->alpha));
        json_object_set_new(cfg, "warmup_target", isnan(s->warmup_target) ? json_null() : json_real(s->warmup_target));
        json_object_set_new(cfg, "warmup_steps", json_real(s->warmup_steps));
        break;
    case LR_COSINE_DECAY_RESTARTS:
        cls = "CosineDecayRestarts";
        json_object_set_new(cfg, "first_decay_steps", json_real(s->decay_steps));
        json_object_set_new(cfg, "t_mul", json_real(s->t_mul));
        json_object_set_new(cfg, "m_mul", json_real(s->m_mul));
        json_object_set_new(cfg, "alpha", json_real(s->alpha));
        break;
    default:
        json_decref(cfg);
        return NULL;
    }
    return keras_object(b->dialect, "keras.optimizers.schedules", cls, cfg);
}

static json_t *number_or_null(double v)
{
    return v > 0 ? json_real(v) : json_null();
}

/* The optimizer's Keras object (Keras 3's class names and argument names) */
static json_t *optimizer(const struct builder *b, const struct optimizer_config *o)
{
    static const char *const classes[OPTIMIZER_COUNT] = {
        [OPTIMIZER_SGD] = "SGD",         [OPTIMIZER_ADAM] = "Adam",       [OPTIMIZER_RMSPROP] = "RMSprop",
        [OPTIMIZER_ADAMW] = "AdamW",     [OPTIMIZER_ADAGRAD] = "Adagrad", [OPTIMIZER_NADAM] = "Nadam",
    };
    json_t *lr = learning_rate(b, o);
    if (!lr) {
        refuse(b, "learning-rate schedule %d", (int)o->schedule.kind);
        return NULL;
    }
    char name[32];
    snprintf(name, sizeof name, "%s", optimizer_names[o->kind]);
    json_t *cfg = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:b, s:f, s:n, s:n, s:n}", "name", name,
                            "learning_rate", lr, "weight_decay", number_or_null(o->weight_decay),
                            "clipnorm", number_or_null(o->clipnorm), "global_clipnorm", number_or_null(o->global_clipnorm),
                            "clipvalue", number_or_null(o->clipvalue), "use_ema", 0, "ema_momentum", 0.99,
                            "ema_overwrite_frequency", "loss_scale_factor", "gradient_accumulation_steps");
    switch (o->kind) {
    case OPTIMIZER_SGD:
        json_object_set_new(cfg, "momentum", json_real(o->momentum));
        json_object_set_new(cfg, "nesterov", json_boolean(o->nesterov));
        break;
    case OPTIMIZER_ADAM:
    case OPTIMIZER_ADAMW:
    case OPTIMIZER_NADAM:
        json_object_set_new(cfg, "beta_1", json_real(o->beta1));
        json_object_set_new(cfg, "beta_2", json_real(o->beta2));
        json_object_set_new(cfg, "epsilon", json_real(o->epsilon));
        if (o->kind != OPTIMIZER_NADAM)
            json_object_set_new(cfg, "amsgrad", json_boolean(o->amsgrad));
        break;
    case OPTIMIZER_RMSPROP:
        json_object_set_new(cfg, "rho", json_real(o->rho));
        json_object_set_new(cfg, "momentum", json_real(0.0));
        json_object_set_new(cfg, "epsilon", json_real(o->epsilon));
        json_object_set_new(cfg, "centered", json_false());
        break;
    case OPTIMIZER_ADAGRAD:
        json_object_set_new(cfg, "initial_accumulator_value", json_real(o->initial_accumulator_value));
        json_object_set_new(cfg, "epsilon", json_real(o->epsilon));
        break;
    default:
        break;
    }
    return keras_object(b->dialect, "keras.optimizers", classes[o->kind], cfg);
}

/* loss, loss_weights, metrics, ... as Keras' compile() keeps them */
static json_t *compile_settings(const struct job *job)
{
    json_t *metrics = json_array();
    int sparse = job->fit.loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    if (job->fit.metric == METRIC_TOP_K) /* Keras' sparse variant takes labels; k as configured */
        json_array_append_new(metrics, json_pack("{s:s, s:s, s:{s:s, s:I}, s:n}", "module", "keras.metrics", "class_name",
                                                 sparse ? "SparseTopKCategoricalAccuracy" : "TopKCategoricalAccuracy",
                                                 "config", "name", sparse ? "sparse_top_k_categorical_accuracy"
                                                                          : "top_k_categorical_accuracy",
                                                 "k", (json_int_t)job->fit.metric_k, "registered_name"));
    else if (job->fit.metric != METRIC_NONE)
        json_array_append_new(metrics, json_string(metric_names[job->fit.metric]));
    return json_pack("{s:s, s:n, s:o, s:n, s:b, s:i, s:b}", "loss", loss_names[job->fit.loss], "loss_weights",
                     "metrics", metrics, "weighted_metrics", "run_eagerly", 0, "steps_per_execution", 1,
                     "jit_compile", 0);
}

json_t *keras_training_config(const struct job *job, struct dp_error *err)
{
    struct builder b = {KERAS_LEGACY_H5, job->path, "(optimizer)", err};
    json_t *opt = optimizer(&b, &job->fit.optimizer);
    if (!opt)
        return NULL;
    json_t *t = compile_settings(job);
    json_object_set_new(t, "optimizer_config", opt);
    return t;
}

json_t *keras_model_config(const struct job *job, const struct model *m, const struct keras_input *in,
                           enum keras_dialect dialect, struct dp_error *err)
{
    struct builder b = {dialect, job->path, "", err};
    char name[128];
    keras_model_name(name, sizeof name, job->name);
    json_t *layers = json_array();
    json_t *input = json_pack("{s:o, s:s, s:b, s:b, s:s, s:b}", "batch_shape", batch_shape(&m->input_shape), "dtype",
                              "float32", "sparse", 0, "ragged", 0, "name", "input_layer", "optional", 0);
    append_layer(layers, &b, "InputLayer", input, NULL);
    append_input_layers(layers, &b, in, &m->input_shape);
    for (int i = 0; i < m->nlayers; i++) {
        b.layer = m->layers[i].name;
        const char *cls = NULL;
        json_t *cfg = layer_config(&b, &m->layers[i], &cls);
        if (!cfg) {
            json_decref(layers);
            return NULL;
        }
        append_layer(layers, &b, cls, cfg, &m->layers[i].in_shape);
    }
    json_t *config = json_pack("{s:s, s:b, s:o, s:o, s:o}", "name", name, "trainable", 1, "dtype", float32_policy(),
                               "layers",
                               layers, "build_input_shape", batch_shape(&m->input_shape));
    json_t *model = keras_object(dialect, "keras", "Sequential", config);
    if (dialect == KERAS_NATIVE) {
        json_object_set_new(model, "build_config", json_pack("{s:o}", "input_shape", batch_shape(&m->input_shape)));
        b.layer = "(optimizer)";
        json_t *opt = optimizer(&b, &job->fit.optimizer);
        if (!opt) {
            json_decref(model);
            return NULL;
        }
        json_t *compile = compile_settings(job);
        json_object_set_new(compile, "optimizer", opt);
        json_object_set_new(model, "compile_config", compile);
    }
    return model;
}
