#include "keras/keras_import.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/jobfile.h"

/* The job file being written */
struct text {
    char *s;
    size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (t->len + (size_t)n + 1 > t->cap) {
        t->cap = (t->len + (size_t)n + 1) * 2;
        t->s = dp_realloc(t->s, t->cap, "the job file");
    }
    va_start(ap, fmt);
    vsnprintf(t->s + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* Where a refusal happens: the input and the layer (or section) */
struct place {
    const char *source, *what;
    struct dp_error *err;
};

static int refuse(const struct place *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(const struct place *p, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dp_error_set(p->err, DP_EXIT_INPUT, "%s: %s: %s", p->source, p->what, msg);
}

static int is_set(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return v && !json_is_null(v);
}

/* Keras writes float32 numbers as doubles (0.009999999776482582): 7 digits give the number back */
static void put_number(struct text *t, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        put(t, "%.1f", v);
    else
        put(t, "%.7g", v);
}

/* "GlorotUniform" -> "glorot_uniform" (Keras' class names of initializers, regularizers) */
static void snake_case(char *out, size_t len, const char *camel)
{
    size_t n = 0;
    for (const char *c = camel; *c && n + 2 < len; c++) {
        if (*c >= 'A' && *c <= 'Z') {
            if (n > 0 && out[n - 1] != '_' && !(c[1] >= 'A' && c[1] <= 'Z' && c[-1] >= 'A' && c[-1] <= 'Z'))
                out[n++] = '_';
            out[n++] = (char)(*c - 'A' + 'a');
        } else {
            out[n++] = *c;
        }
    }
    out[n] = 0;
}

/* An option that must keep its default for dptrain to train the layer as Keras would */
static int require(const struct place *p, json_t *cfg, const char *key, const char *want)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v))
        return 0;
    char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    int ok = text && !strcmp(text, want);
    int rc = ok ? 0 : refuse(p, "%s = %s is not supported (dptrain trains %s only)", key, text ? text : "?", want);
    free(text);
    return rc;
}

static int put_activation(struct text *t, const struct place *p, json_t *cfg, const char *key)
{
    json_t *a = json_object_get(cfg, key);
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_string(a))
        return refuse(p, "%s is not a plain activation name (a custom function?)", key);
    const char *name = json_string_value(a);
    if (!strcmp(name, "linear"))
        return 0;
    put(t, " %s = \"%s\";", key, name);
    return 0;
}

/* kernel_initializer = "he_normal"; or = { name = "random_normal"; mean = 0.0; stddev = 0.01; } */
static int put_initializer(struct text *t, const struct place *p, json_t *cfg, const char *key, const char *def)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v))
        return 0;
    const char *cls = json_is_string(v) ? json_string_value(v) : json_string_value(json_object_get(v, "class_name"));
    if (!cls)
        return refuse(p, "%s: not an initializer Keras names", key);
    char name[64];
    snake_case(name, sizeof name, cls);
    if (!strcmp(name, def))
        return 0;
    static const char *const args[] = {"mean", "stddev", "minval", "maxval", "value"};
    json_t *c = json_is_object(v) ? json_object_get(v, "config") : NULL;
    int any = 0;
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        any |= c && json_is_number(json_object_get(c, args[i]));
    if (!any) {
        put(t, " %s = \"%s\";", key, name);
        return 0;
    }
    put(t, " %s = { name = \"%s\";", key, name);
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++)
        if (json_is_number(json_object_get(c, args[i]))) {
            put(t, " %s = ", args[i]);
            put_number(t, json_number_value(json_object_get(c, args[i])));
            put(t, ";");
        }
    put(t, " };");
    return 0;
}

/* kernel_regularizer = { name = "l1_l2"; l1 = ...; l2 = ...; } */
static int put_regularizer(struct text *t, const struct place *p, json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (!v || json_is_null(v))
        return 0;
    json_t *c = json_object_get(v, "config");
    const char *cls = json_string_value(json_object_get(v, "class_name"));
    if (!cls || !c || (strcmp(cls, "L1") && strcmp(cls, "L2") && strcmp(cls, "L1L2")))
        return refuse(p, "%s: only L1, L2 and L1L2 regularizers are supported", key);
    json_t *l1 = json_object_get(c, "l1"), *l2 = json_object_get(c, "l2");
    put(t, " %s = { name = \"l1_l2\"; l1 = ", key);
    put_number(t, json_is_number(l1) ? json_number_value(l1) : 0.0);
    put(t, "; l2 = ");
    put_number(t, json_is_number(l2) ? json_number_value(l2) : 0.0);
    put(t, "; };");
    return 0;
}

/* [a, b] or a, as a pair */
static void put_pair(struct text *t, const char *key, json_t *v)
{
    if (json_is_array(v) && json_array_size(v) == 2)
        put(t, " %s = [%lld, %lld];", key, (long long)json_integer_value(json_array_get(v, 0)),
            (long long)json_integer_value(json_array_get(v, 1)));
    else if (json_is_integer(v))
        put(t, " %s = %lld;", key, (long long)json_integer_value(v));
}

/* What dense and conv2d share: bias, initializers, regularizers, and the options dptrain refuses */
static int put_weight_options(struct text *t, const struct place *p, json_t *cfg)
{
    if (json_is_false(json_object_get(cfg, "use_bias")))
        put(t, " use_bias = false;");
    static const char *const unsupported[] = {"activity_regularizer", "kernel_constraint", "bias_constraint",
                                              "lora_rank"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (is_set(cfg, unsupported[i]) && !(json_is_integer(json_object_get(cfg, unsupported[i])) &&
                                              json_integer_value(json_object_get(cfg, unsupported[i])) == 0))
            return refuse(p, "%s is not supported", unsupported[i]);
    return put_initializer(t, p, cfg, "kernel_initializer", "glorot_uniform") ||
           put_initializer(t, p, cfg, "bias_initializer", "zeros") || put_regularizer(t, p, cfg, "kernel_regularizer") ||
           put_regularizer(t, p, cfg, "bias_regularizer");
}

static int put_pooling(struct text *t, json_t *cfg)
{
    put_pair(t, "pool_size", json_object_get(cfg, "pool_size"));
    put_pair(t, "strides", json_object_get(cfg, "strides"));
    const char *padding = json_string_value(json_object_get(cfg, "padding"));
    if (padding && strcmp(padding, "valid"))
        put(t, " padding = \"%s\";", padding);
    return 0;
}

/* One layer's line, from its class name and config */
static int put_layer(struct text *t, const struct place *p, const char *cls, json_t *cfg, const char *input_shape)
{
    if (require(p, cfg, "data_format", "\"channels_last\""))
        return -1;
    if (!strcmp(cls, "Dense")) {
        put(t, "  { type = \"dense\"; units = %lld;%s", (long long)json_integer_value(json_object_get(cfg, "units")),
            input_shape);
        if (put_activation(t, p, cfg, "activation") || put_weight_options(t, p, cfg))
            return -1;
    } else if (!strcmp(cls, "Conv2D")) {
        if (require(p, cfg, "dilation_rate", "[1,1]") || require(p, cfg, "groups", "1"))
            return -1;
        put(t, "  { type = \"conv2d\"; filters = %lld;%s", (long long)json_integer_value(json_object_get(cfg, "filters")),
            input_shape);
        put_pair(t, "kernel_size", json_object_get(cfg, "kernel_size"));
        put_pair(t, "strides", json_object_get(cfg, "strides"));
        const char *padding = json_string_value(json_object_get(cfg, "padding"));
        if (padding && strcmp(padding, "valid"))
            put(t, " padding = \"%s\";", padding);
        if (put_activation(t, p, cfg, "activation") || put_weight_options(t, p, cfg))
            return -1;
    } else if (!strcmp(cls, "MaxPooling2D") || !strcmp(cls, "AveragePooling2D")) {
        put(t, "  { type = \"%s\";%s", cls[0] == 'M' ? "maxpool2d" : "average_pooling2d", input_shape);
        put_pooling(t, cfg);
    } else if (!strcmp(cls, "GlobalAveragePooling2D") || !strcmp(cls, "GlobalMaxPooling2D")) {
        put(t, "  { type = \"%s\";%s", cls[6] == 'A' ? "global_average_pooling2d" : "global_max_pooling2d", input_shape);
        if (json_is_true(json_object_get(cfg, "keepdims")))
            put(t, " keepdims = true;");
    } else if (!strcmp(cls, "Dropout")) {
        if (require(p, cfg, "noise_shape", "null"))
            return -1;
        put(t, "  { type = \"dropout\"; rate = ");
        put_number(t, json_number_value(json_object_get(cfg, "rate")));
        put(t, ";%s", input_shape);
    } else if (!strcmp(cls, "Flatten")) {
        put(t, "  { type = \"flatten\";%s", input_shape);
    } else if (!strcmp(cls, "Activation")) {
        put(t, "  { type = \"activation\";%s", input_shape);
        if (put_activation(t, p, cfg, "activation"))
            return -1;
        if (!strcmp(json_string_value(json_object_get(cfg, "activation")) ?: "", "linear"))
            put(t, " activation = \"linear\";");
    } else if (!strcmp(cls, "LeakyReLU") || !strcmp(cls, "ELU")) {
        const char *key = cls[0] == 'L' ? "negative_slope" : "alpha";
        put(t, "  { type = \"%s\";%s %s = ", cls[0] == 'L' ? "leaky_relu" : "elu", input_shape, key);
        json_t *v = json_object_get(cfg, key);
        put_number(t, json_is_number(v) ? json_number_value(v) : cls[0] == 'L' ? 0.3 : 1.0);
        put(t, ";");
    } else if (!strcmp(cls, "Reshape")) {
        json_t *shape = json_object_get(cfg, "target_shape");
        put(t, "  { type = \"reshape\";%s target_shape = [", input_shape);
        for (size_t i = 0; i < json_array_size(shape); i++)
            put(t, "%s%lld", i ? ", " : "", (long long)json_integer_value(json_array_get(shape, i)));
        put(t, "];");
    } else if (!strcmp(cls, "BatchNormalization")) {
        if (require(p, cfg, "renorm", "false") || require(p, cfg, "gamma_constraint", "null") ||
            require(p, cfg, "beta_constraint", "null"))
            return -1;
        put(t, "  { type = \"batch_normalization\";%s", input_shape);
        static const char *const numbers[] = {"axis", "momentum", "epsilon"};
        for (size_t i = 0; i < 3; i++) {
            json_t *v = json_object_get(cfg, numbers[i]);
            if (json_is_integer(v))
                put(t, " %s = %lld;", numbers[i], (long long)json_integer_value(v));
            else if (json_is_number(v)) {
                put(t, " %s = ", numbers[i]);
                put_number(t, json_number_value(v));
                put(t, ";");
            }
        }
        /* not Keras' synchronized: on one device it changes nothing, and across ranks dptrain's
         * default (the global batch's statistics) is what keeps results independent of the rank count */
        static const char *const flags[] = {"center", "scale"};
        for (size_t i = 0; i < 2; i++)
            if (json_is_boolean(json_object_get(cfg, flags[i])))
                put(t, " %s = %s;", flags[i], json_is_true(json_object_get(cfg, flags[i])) ? "true" : "false");
    } else if (!strcmp(cls, "RandomFlip") || !strcmp(cls, "RandomTranslation") || !strcmp(cls, "RandomZoom") ||
               !strcmp(cls, "RandomRotation")) {
        /* training-time augmentation: the job's leading entries (data/augment.h) */
        char type[32];
        snake_case(type, sizeof type, cls);
        put(t, "  { type = \"%s\";%s", type, input_shape);
        static const char *const keys[] = {"mode", "height_factor", "width_factor", "factor", "fill_mode",
                                           "interpolation", "fill_value"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            json_t *v = json_object_get(cfg, keys[i]);
            if (json_is_string(v)) {
                put(t, " %s = \"%s\";", keys[i], json_string_value(v));
            } else if (json_is_number(v)) {
                put(t, " %s = ", keys[i]);
                put_number(t, json_number_value(v));
                put(t, ";");
            } else if (json_is_array(v) && json_array_size(v) == 2) {
                put(t, " %s = [", keys[i]);
                put_number(t, json_number_value(json_array_get(v, 0)));
                put(t, ", ");
                put_number(t, json_number_value(json_array_get(v, 1)));
                put(t, "];");
            }
        }
    } else {
        return refuse(p, "dptrain has no %s layer (it trains Dense, Conv2D, pooling, Dropout, Flatten, Reshape, "
                      "Activation, LeakyReLU, ELU and BatchNormalization, after Keras' RandomFlip, "
                      "RandomTranslation, RandomZoom and RandomRotation)", cls);
    }
    put(t, " },\n");
    return 0;
}

/* "[28, 28, 1]" from a batch shape [null, 28, 28, 1] */
static void shape_text(char *out, size_t len, json_t *batch_shape)
{
    out[0] = 0;
    if (!json_is_array(batch_shape) || json_array_size(batch_shape) < 2)
        return;
    size_t n = (size_t)snprintf(out, len, " input_shape = [");
    for (size_t i = 1; i < json_array_size(batch_shape) && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%lld", i > 1 ? ", " : "",
                              (long long)json_integer_value(json_array_get(batch_shape, i)));
    if (n < len)
        snprintf(out + n, len - n, "];");
}

/* A model that starts with Rescaling(1/255) and Normalization(mean, variance) layers (as dptrain
 * export writes them) takes what dptrain does to the data on its own: uint8 features scaled to
 * [0, 1], and data.normalize = "standard" (statistics computed from the training rows). Other
 * input transforms it cannot train. */
static int input_layer_check(const struct place *p, const char *cls, json_t *cfg)
{
    if (!strcmp(cls, "Rescaling")) {
        json_t *scale = json_object_get(cfg, "scale"), *offset = json_object_get(cfg, "offset");
        if (!json_is_number(scale) || fabs(json_number_value(scale) * 255.0 - 1.0) > 1e-6 ||
            (offset && json_number_value(offset) != 0.0))
            return refuse(p, "only scale = 1/255 with offset 0 is supported (dptrain's scaling of uint8 data)");
        return 0;
    }
    if (json_is_true(json_object_get(cfg, "invert")))
        return refuse(p, "invert = true is not supported");
    return 0;
}

/* 1 when the layers before the first trained one include a Normalization */
static int input_normalized(json_t *config)
{
    json_t *layers = json_object_get(config, "layers");
    for (size_t i = 0; i < json_array_size(layers); i++) {
        const char *cls = json_string_value(json_object_get(json_array_get(layers, i), "class_name"));
        if (!cls || (strcmp(cls, "InputLayer") && strcmp(cls, "Rescaling") && strcmp(cls, "Normalization")))
            return 0;
        if (!strcmp(cls, "Normalization"))
            return 1;
    }
    return 0;
}

static int put_layers(struct text *t, json_t *config, const char *source, struct dp_error *err)
{
    json_t *layers = json_object_get(config, "layers");
    char input[128] = "";
    shape_text(input, sizeof input, json_object_get(config, "build_input_shape"));
    put(t, "model = (\n");
    int written = 0;
    for (size_t i = 0; i < json_array_size(layers); i++) {
        json_t *l = json_array_get(layers, i), *cfg = json_object_get(l, "config");
        const char *cls = json_string_value(json_object_get(l, "class_name"));
        const char *name = json_string_value(json_object_get(cfg, "name"));
        char what[160];
        snprintf(what, sizeof what, "layer %zu (%s %s)", i + 1, cls ? cls : "?", name ? name : "");
        struct place p = {source, what, err};
        if (!cls || !json_is_object(cfg))
            return refuse(&p, "not a layer Keras wrote (no class_name or config)");
        if (!strcmp(cls, "InputLayer")) {
            shape_text(input, sizeof input, json_object_get(cfg, json_object_get(cfg, "batch_shape") ? "batch_shape"
                                                                                                    : "batch_input_shape"));
            continue;
        }
        if (!written && (!strcmp(cls, "Rescaling") || !strcmp(cls, "Normalization"))) {
            if (input_layer_check(&p, cls, cfg) != 0)
                return -1;
            continue; /* what dptrain does to the data itself (input_layer_check) */
        }
        if (!written && !input[0])
            shape_text(input, sizeof input, json_object_get(cfg, "batch_input_shape"));
        if (put_layer(t, &p, cls, cfg, written ? "" : input) != 0)
            return -1;
        written++;
    }
    if (!written)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: the model has no layers", source);
    t->len -= 2; /* the last ",\n" */
    put(t, "\n);\n");
    return 0;
}

/* learning_rate = 0.001; or = { name = "CosineDecay"; ... } */
static int put_learning_rate(struct text *t, const struct place *p, json_t *lr)
{
    if (json_is_number(lr)) {
        put(t, " learning_rate = ");
        put_number(t, json_number_value(lr));
        put(t, ";");
        return 0;
    }
    const char *cls = json_string_value(json_object_get(lr, "class_name"));
    json_t *cfg = json_object_get(lr, "config");
    if (!cls || !json_is_object(cfg))
        return refuse(p, "learning_rate is neither a number nor a schedule Keras wrote");
    put(t, " learning_rate = { name = \"%s\";", cls);
    const char *key;
    json_t *v;
    json_object_foreach(cfg, key, v) {
        if (!strcmp(key, "name") || json_is_null(v))
            continue;
        if (json_is_boolean(v)) {
            put(t, " %s = %s;", key, json_is_true(v) ? "true" : "false");
        } else if (json_is_number(v)) {
            put(t, " %s = ", key);
            put_number(t, json_number_value(v));
            put(t, ";");
        } else if (json_is_array(v)) {
            put(t, " %s = [", key);
            for (size_t i = 0; i < json_array_size(v); i++) {
                put(t, "%s", i ? ", " : "");
                put_number(t, json_number_value(json_array_get(v, i)));
            }
            put(t, "];");
        } else {
            return refuse(p, "learning_rate's %s is not a number", key);
        }
    }
    put(t, " };");
    return 0;
}

static int put_optimizer(struct text *t, json_t *opt, const char *source, struct dp_error *err)
{
    struct place p = {source, "optimizer", err};
    const char *cls = json_string_value(json_object_get(opt, "class_name"));
    json_t *cfg = json_object_get(opt, "config");
    if (!cls || !json_is_object(cfg))
        return refuse(&p, "not an optimizer Keras wrote");
    if (json_is_true(json_object_get(cfg, "use_ema")) || is_set(cfg, "gradient_accumulation_steps") ||
        json_is_true(json_object_get(cfg, "centered")))
        return refuse(&p, "use_ema, gradient_accumulation_steps and RMSprop's centered are not supported");
    if (json_is_number(json_object_get(cfg, "momentum")) && json_number_value(json_object_get(cfg, "momentum")) > 0 &&
        strcmp(cls, "SGD"))
        return refuse(&p, "%s with momentum is not supported", cls);
    put(t, "  optimizer = { name = \"%s\";", cls);
    if (put_learning_rate(t, &p, json_object_get(cfg, "learning_rate")))
        return -1;
    static const char *const keys[] = {"beta_1", "beta_2", "epsilon", "rho", "initial_accumulator_value", "weight_decay",
                                       "clipnorm", "global_clipnorm", "clipvalue"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(cfg, keys[i]);
        if (json_is_number(v)) {
            put(t, " %s = ", keys[i]);
            put_number(t, json_number_value(v));
            put(t, ";");
        }
    }
    if (!strcmp(cls, "SGD") && json_is_number(json_object_get(cfg, "momentum"))) {
        put(t, " momentum = ");
        put_number(t, json_number_value(json_object_get(cfg, "momentum")));
        put(t, "; nesterov = %s;", json_is_true(json_object_get(cfg, "nesterov")) ? "true" : "false");
    }
    if (json_is_true(json_object_get(cfg, "amsgrad")))
        put(t, " amsgrad = true;");
    put(t, " };\n");
    return 0;
}

static int put_fit(struct text *t, json_t *compile, const char *source, struct dp_error *err)
{
    struct place p = {source, "compile configuration", err};
    json_t *loss = json_object_get(compile, "loss"), *metrics = json_object_get(compile, "metrics");
    const char *loss_name = json_is_string(loss) ? json_string_value(loss)
                                                 : json_string_value(json_object_get(loss, "class_name"));
    if (!loss_name)
        return refuse(&p, "no loss dptrain knows (one loss, named)");
    if (json_is_object(loss) && json_is_true(json_object_get(json_object_get(loss, "config"), "from_logits")))
        return refuse(&p, "from_logits = true is not supported: end the model with softmax or sigmoid");
    put(t, "fit = {\n  epochs = 1;\n  batch_size = 32;\n  loss = \"%s\";\n", loss_name);
    if (json_array_size(metrics) > 0) {
        json_t *m = json_array_get(metrics, 0);
        const char *name = json_is_string(m) ? json_string_value(m) : json_string_value(json_object_get(m, "class_name"));
        if (!name)
            return refuse(&p, "a metric dptrain does not know");
        char snake[64];
        snake_case(snake, sizeof snake, name);
        json_t *k = json_object_get(json_object_get(m, "config"), "k");
        if (json_is_integer(k))
            put(t, "  metrics = ({ name = \"%s\"; k = %lld; });\n", snake, (long long)json_integer_value(k));
        else
            put(t, "  metrics = [\"%s\"];\n", !strcmp(snake, "acc") ? "accuracy" : snake);
    }
    json_t *opt = json_object_get(compile, "optimizer");
    if (!opt)
        opt = json_object_get(compile, "optimizer_config");
    if (opt && put_optimizer(t, opt, source, err))
        return -1;
    put(t, "};\n");
    return 0;
}

static json_t *parse(const char *text, const char *source, const char *what, struct dp_error *err)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    if (!v || !json_is_object(v)) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: %s is not a JSON object (line %d: %s)", source, what, je.line, je.text);
        json_decref(v);
        return NULL;
    }
    return v;
}

char *keras_config_to_job(const char *model_json, const char *training_json, const char *source,
                          struct dp_error *err)
{
    json_t *model = parse(model_json, source, "the model configuration", err);
    json_t *training = training_json ? parse(training_json, source, "the training configuration", err) : NULL;
    struct text t = {0};
    int rc = -1;
    if (!model || (training_json && !training))
        goto done;
    const char *cls = json_string_value(json_object_get(model, "class_name"));
    json_t *config = json_object_get(model, "config");
    if (!cls || strcmp(cls, "Sequential") || !json_is_object(config)) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: a %s model: dptrain trains Sequential models (a list of layers) only",
                     source, cls ? cls : "non-Keras");
        goto done;
    }
    json_t *compile = training ? training : json_object_get(model, "compile_config");
    const char *name = json_string_value(json_object_get(config, "name"));
    put(&t, "# Imported from %s by dptrain import keras. Set the data file; epochs and batch_size are\n"
            "# Keras' fit() arguments, not part of the model: choose them here.\n", source);
    put(&t, "name = \"%s\";\n\ndata = { file = \"data.h5\";%s };  # your data: dptrain import csv|mnist ... -o data.h5\n\n",
        name && *name ? name : "keras_model", input_normalized(config) ? " normalize = \"standard\";" : "");
    if (put_layers(&t, config, source, err) != 0)
        goto done;
    put(&t, "\n");
    if (!compile || json_is_null(compile)) {
        put(&t, "fit = { epochs = 1; batch_size = 32; loss = \"mse\"; };  # the model was not compiled: choose a loss\n");
    } else if (put_fit(&t, compile, source, err) != 0) {
        goto done;
    }
    rc = 0;
done:
    json_decref(model);
    json_decref(training);
    if (rc != 0) {
        free(t.s);
        return NULL;
    }
    return t.s;
}
