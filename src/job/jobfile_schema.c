/* The job schema: which keys exist, their types, ranges and defaults. Every message names the
 * file and line of the offending setting, or the --set that gave it. */
#include "job/jobfile_schema.h"

#include <glob.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const int job_override_marker = 1;

struct schema_ctx {
    const char *file;
    struct dp_error *err;
};

/* "file:line: path" or "--set path" for a setting. */
static void setting_where(char *buf, size_t len, const struct schema_ctx *c, const config_setting_t *s)
{
    char path[256] = "";
    const config_setting_t *chain[16];
    int depth = 0;
    for (const config_setting_t *p = s; p && config_setting_parent(p) && depth < 16; p = config_setting_parent(p))
        chain[depth++] = p;
    size_t used = 0;
    for (int i = depth - 1; i >= 0 && used < sizeof path; i--) {
        const char *name = config_setting_name(chain[i]);
        if (name)
            used += (size_t)snprintf(path + used, sizeof path - used, "%s%s", used ? "." : "", name);
        else
            used += (size_t)snprintf(path + used, sizeof path - used, "%s[%d]", used ? "." : "",
                                     config_setting_index(chain[i]));
    }
    if (config_setting_get_hook(s) == &job_override_marker)
        snprintf(buf, len, "--set %s", path);
    else
        snprintf(buf, len, "%s:%d: %s", c->file, config_setting_source_line(s), path[0] ? path : "(top level)");
}

static int schema_fail(const struct schema_ctx *c, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int schema_fail(const struct schema_ctx *c, const config_setting_t *s, const char *fmt, ...)
{
    char where[320], what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    setting_where(where, sizeof where, c, s);
    return dp_error_set(c->err, DP_EXIT_INPUT, "%s: %s", where, what);
}

static const char *type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group { ... }";
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "true or false";
    case CONFIG_TYPE_ARRAY: return "an array [ ... ]";
    case CONFIG_TYPE_LIST: return "a list ( ... )";
    default: return "a value";
    }
}

/* The keys of the main sections (NULL-terminated). */
static const char *const data_keys[] = {"file", "source", "synthetic", "validation_split", "validation_file",
                                        "validation_group", "shuffle", "normalize", "normalize_from",
                                        "shuffle_buffer_mb", "reader_thread", NULL};
static const char *const fit_keys[] = {"seed", "epochs", "batch_size", "steps_per_epoch", "loss",
                                       "metrics", "optimizer", "checkpoint", "early_stopping",
                                       "threads", "allreduce", "precision", "nccl_timeout", "collective_timeout",
                                       "readback_steps", "allreduce_bucket_mb", "reduce_lr_on_plateau",
                                       "initial_weights", NULL};
static const char *const optimizer_keys[] = {"name", "lr", "learning_rate", "momentum", "nesterov", "decay",
                                             "beta_1", "beta_2", "epsilon", "rho", "weight_decay", "clipvalue",
                                             "clipnorm", "global_clipnorm", "initial_accumulator_value", "amsgrad", NULL};

/* Which main section a key unknown where it stands belongs in, for a hint ("shuffle" under fit, as
 * Keras' fit(shuffle=True) has it, belongs in data); NULL if none. */
static const char *home_of(const char *key)
{
    static const struct { const char *const *keys; const char *section; } sections[] = {
        {data_keys, "data"}, {fit_keys, "fit"}, {optimizer_keys, "fit.optimizer"}};
    for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
        for (const char *const *k = sections[i].keys; *k; k++)
            if (!strcmp(*k, key) && strcmp(key, "name"))
                return sections[i].section;
    return NULL;
}

/* Refuses keys of group that are not in allowed (NULL-terminated). */
static int check_keys(const struct schema_ctx *c, const config_setting_t *group, const char *const *allowed)
{
    int n = config_setting_length(group);
    for (int i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(s);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(*a, name);
        if (!ok) {
            char list[512] = "";
            size_t used = 0;
            for (const char *const *a = allowed; *a && used < sizeof list; a++)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *a);
            const char *home = home_of(name);
            if (home)
                return schema_fail(c, s, "unknown key '%s' here; it belongs in %s (known here: %s)", name, home, list);
            return schema_fail(c, s, "unknown key '%s' (known here: %s)", name, list);
        }
    }
    return 0;
}

static const config_setting_t *member(const config_setting_t *group, const char *name)
{
    return group ? config_setting_get_member(group, name) : NULL;
}

static int get_group(const struct schema_ctx *c, const config_setting_t *parent, const char *name,
                     int required, const config_setting_t **out)
{
    const config_setting_t *s = member(parent, name);
    *out = NULL;
    if (!s) {
        if (required)
            return dp_error_set(c->err, DP_EXIT_INPUT, "%s: missing section '%s'", c->file, name);
        return 0;
    }
    if (!config_setting_is_group(s))
        return schema_fail(c, s, "expected %s, got %s", type_name(CONFIG_TYPE_GROUP),
                           type_name(config_setting_type(s)));
    *out = s;
    return 0;
}

static int get_int(const struct schema_ctx *c, const config_setting_t *g, const char *name, int64_t *out,
                   int64_t def, int64_t min, int64_t max, int required)
{
    const config_setting_t *s = member(g, name);
    if (!s) {
        if (required)
            return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: missing key '%s'", c->file,
                                g ? config_setting_source_line(g) : 0, name);
        *out = def;
        return 0;
    }
    int t = config_setting_type(s);
    if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64)
        return schema_fail(c, s, "expected an integer, got %s", type_name(t));
    long long v = config_setting_get_int64(s);
    if (v < min || v > max)
        return schema_fail(c, s, "%lld is out of range [%lld, %lld]", v, (long long)min, (long long)max);
    *out = v;
    return 0;
}

static int get_float(const struct schema_ctx *c, const config_setting_t *g, const char *name, double *out,
                     double def, double min, double max, int min_exclusive, int max_exclusive)
{
    const config_setting_t *s = member(g, name);
    if (!s) {
        *out = def;
        return 0;
    }
    int t = config_setting_type(s);
    double v;
    if (t == CONFIG_TYPE_FLOAT)
        v = config_setting_get_float(s);
    else if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64)
        v = (double)config_setting_get_int64(s);
    else
        return schema_fail(c, s, "expected a number, got %s", type_name(t));
    if (!isfinite(v))
        return schema_fail(c, s, "%g is not a finite number", v);
    if (v < min || v > max || (min_exclusive && v == min) || (max_exclusive && v == max))
        return schema_fail(c, s, "%g is out of range %s%g, %g%s", v, min_exclusive ? "(" : "[", min, max,
                           max_exclusive ? ")" : "]");
    *out = v;
    return 0;
}

static int get_bool(const struct schema_ctx *c, const config_setting_t *g, const char *name, int *out, int def)
{
    const config_setting_t *s = member(g, name);
    if (!s) {
        *out = def;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_BOOL)
        return schema_fail(c, s, "expected true or false, got %s", type_name(config_setting_type(s)));
    *out = config_setting_get_bool(s);
    return 0;
}

/* s lower-cased without underscores, "pooling" shortened to "pool", Keras' long names of mse and
 * mae shortened: the key under which Keras' spellings of a name (class names like "MaxPooling2D",
 * "RMSprop", "SparseCategoricalCrossentropy", "MeanSquaredError", and function names like
 * "max_pooling2d", "mean_absolute_error") meet ours. */
static void spelling_key(char *key, size_t len, const char *s)
{
    size_t n = 0;
    for (; *s && n + 1 < len; s++)
        if (*s != '_')
            key[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
    key[n] = 0;
    char *pooling = strstr(key, "pooling");
    if (pooling)
        memmove(pooling + 4, pooling + 7, strlen(pooling + 7) + 1);
    if (!strcmp(key, "meansquarederror"))
        snprintf(key, len, "mse");
    else if (!strcmp(key, "meanabsoluteerror"))
        snprintf(key, len, "mae");
}

static int same_spelling(const char *given, const char *choice)
{
    char a[64], b[64];
    spelling_key(a, sizeof a, given);
    spelling_key(b, sizeof b, choice);
    return !strcmp(a, b);
}

/* A string that must be one of choices (NULL-terminated), as written or as Keras spells it; *out
 * is its index. */
static int get_choice(const struct schema_ctx *c, const config_setting_t *g, const char *name, int *out,
                      int def, const char *const *choices, int required)
{
    const config_setting_t *s = member(g, name);
    if (!s) {
        if (required)
            return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: missing key '%s'", c->file,
                                g ? config_setting_source_line(g) : 0, name);
        *out = def;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return schema_fail(c, s, "expected a string, got %s", type_name(config_setting_type(s)));
    const char *v = config_setting_get_string(s);
    for (int i = 0; choices[i]; i++)
        if (!strcmp(choices[i], v)) {
            *out = i;
            return 0;
        }
    for (int i = 0; choices[i]; i++)
        if (same_spelling(v, choices[i])) {
            *out = i;
            return 0;
        }
    char list[512] = "";
    size_t used = 0;
    for (int i = 0; choices[i] && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? ", " : "", choices[i]);
    return schema_fail(c, s, "\"%s\" is not one of %s", v, list);
}

static int get_string(const struct schema_ctx *c, const config_setting_t *g, const char *name, char **out,
                      const char *def)
{
    const config_setting_t *s = member(g, name);
    if (!s) {
        *out = def ? dp_strdup(def) : NULL;
        return 0;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING)
        return schema_fail(c, s, "expected a string, got %s", type_name(config_setting_type(s)));
    *out = dp_strdup(config_setting_get_string(s));
    return 0;
}

/* data.file entries with *, ? or [ are globs, expanded in sorted order; one that matches nothing is
 * an error naming the line. */
static int expand_globs(const struct schema_ctx *c, struct job_data *d, const config_setting_t *file)
{
    char **out = NULL;
    int n = 0;
    for (int i = 0; i < d->nfiles; i++) {
        if (!strpbrk(d->files[i], "*?[")) {
            out = dp_realloc(out, (size_t)(n + 1) * sizeof(char *), "data files");
            out[n++] = d->files[i];
            continue;
        }
        glob_t g;
        int rc = glob(d->files[i], 0, NULL, &g);
        if (rc != 0 || g.gl_pathc == 0) {
            if (rc == 0)
                globfree(&g);
            schema_fail(c, file, "'%s' matches no file", d->files[i]);
            for (int j = i; j < d->nfiles; j++)
                free(d->files[j]);
            d->nfiles = n;
            free(d->files);
            d->files = out;
            return -1;
        }
        for (size_t j = 0; j < g.gl_pathc; j++) {
            out = dp_realloc(out, (size_t)(n + 1) * sizeof(char *), "data files");
            out[n++] = dp_strdup(g.gl_pathv[j]);
        }
        globfree(&g);
        free(d->files[i]);
    }
    free(d->files);
    d->files = out;
    d->nfiles = n;
    return 0;
}

static int read_data(const struct schema_ctx *c, struct job_data *d, const config_setting_t *g)
{
    static const char *const sources[] = {"file", "synthetic", NULL};
    static const char *const normalizers[] = {"none", "standard", NULL};
    if (check_keys(c, g, data_keys))
        return -1;
    const config_setting_t *file = member(g, "file");
    int source, norm;
    if (get_choice(c, g, "source", &source, file ? DATA_SOURCE_FILE : DATA_SOURCE_SYNTHETIC, sources, 0))
        return -1;
    d->source = (enum data_source)source;
    if (file) {
        int t = config_setting_type(file);
        if (t == CONFIG_TYPE_STRING) {
            d->nfiles = 1;
            d->files = dp_calloc(1, sizeof(char *), "data files");
            d->files[0] = dp_strdup(config_setting_get_string(file));
        } else if (t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) {
            d->nfiles = config_setting_length(file);
            if (d->nfiles == 0)
                return schema_fail(c, file, "the list of data files is empty");
            d->files = dp_calloc((size_t)d->nfiles, sizeof(char *), "data files");
            for (int i = 0; i < d->nfiles; i++) {
                const config_setting_t *e = config_setting_get_elem(file, (unsigned)i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING)
                    return schema_fail(c, e, "expected a file name (string)");
                d->files[i] = dp_strdup(config_setting_get_string(e));
            }
        } else {
            return schema_fail(c, file, "expected a file name or a list of file names, got %s",
                               type_name(t));
        }
    }
    if (file && expand_globs(c, d, file) != 0)
        return -1;
    if (d->source == DATA_SOURCE_FILE && !file)
        return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: data: source is \"file\" but no data.file is given",
                            c->file, config_setting_source_line(g));
    if (d->source == DATA_SOURCE_SYNTHETIC && file)
        return schema_fail(c, file, "data.file is given but data.source is \"synthetic\"");

    const config_setting_t *syn = NULL;
    if (get_group(c, g, "synthetic", 0, &syn))
        return -1;
    if (syn) {
        static const char *const skeys[] = {"rows", "features", "targets", "test_rows", NULL};
        if (check_keys(c, syn, skeys))
            return -1;
    }
    if (get_int(c, syn, "rows", &d->synthetic_rows, 32768, 1, INT64_C(1) << 40, 0) ||
        get_int(c, syn, "features", &d->synthetic_features, 10, 1, 1 << 20, 0) ||
        get_int(c, syn, "targets", &d->synthetic_targets, 1, 1, 1 << 20, 0) ||
        get_int(c, syn, "test_rows", &d->synthetic_test_rows, 0, 0, INT64_C(1) << 40, 0))
        return -1;
    if (get_float(c, g, "validation_split", &d->validation_split, 0.0, 0.0, 1.0, 0, 1) ||
        get_bool(c, g, "shuffle", &d->shuffle, 1) ||
        get_choice(c, g, "normalize", &norm, NORMALIZE_NONE, normalizers, 0) ||
        get_int(c, g, "shuffle_buffer_mb", &d->shuffle_buffer_mb, 256, 1, INT64_C(1) << 20, 0) ||
        get_bool(c, g, "reader_thread", &d->reader_thread, 1))
        return -1;
    d->normalize = (enum normalize_kind)norm;
    static const char *const groups[] = {"train", "test", NULL};
    static const char *const from[] = {"training", "all", NULL};
    int group, all;
    if (get_choice(c, g, "validation_group", &group, 0, groups, 0) ||
        get_choice(c, g, "normalize_from", &all, 0, from, 0))
        return -1;
    snprintf(d->validation_group, sizeof d->validation_group, "%s", groups[group]);
    d->normalize_all_rows = all;
    const config_setting_t *vf = member(g, "validation_file");
    if (vf) {
        if (config_setting_type(vf) != CONFIG_TYPE_STRING || !*config_setting_get_string(vf))
            return schema_fail(c, vf, "expected a data file name (string)");
        if (d->validation_split > 0)
            return schema_fail(c, vf, "give validation_split or validation_file, not both");
        if (d->source != DATA_SOURCE_FILE)
            return schema_fail(c, vf, "validation_file needs data.file (synthetic data has its own rows)");
        d->validation_file = dp_strdup(config_setting_get_string(vf));
    } else if (member(g, "validation_group")) {
        return schema_fail(c, member(g, "validation_group"), "validation_group names a group of validation_file");
    }
    return 0;
}

/* An integer or a [h, w] pair of positive integers (kernel_size, strides, pool_size). */
static int get_pair(const struct schema_ctx *c, const config_setting_t *g, const char *name, int64_t out[2],
                    int64_t def, int required)
{
    const config_setting_t *s = member(g, name);
    if (!s) {
        if (required)
            return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: missing key '%s'", c->file,
                                config_setting_source_line(g), name);
        out[0] = out[1] = def;
        return 0;
    }
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        out[0] = out[1] = config_setting_get_int64(s);
    } else if ((t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) && config_setting_length(s) == 2) {
        for (int i = 0; i < 2; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            if (config_setting_type(e) != CONFIG_TYPE_INT && config_setting_type(e) != CONFIG_TYPE_INT64)
                return schema_fail(c, s, "expected an integer or [height, width]");
            out[i] = config_setting_get_int64(e);
        }
    } else {
        return schema_fail(c, s, "expected an integer or [height, width], got %s", type_name(t));
    }
    if (out[0] < 1 || out[1] < 1 || out[0] > 4096 || out[1] > 4096)
        return schema_fail(c, s, "values must be in [1, 4096]");
    return 0;
}

/* The augmentation kind a layer entry names, or -1 */
static int augment_kind_of(const config_setting_t *s)
{
    const config_setting_t *t = config_setting_is_group(s) ? member(s, "type") : NULL;
    const char *v = t && config_setting_type(t) == CONFIG_TYPE_STRING ? config_setting_get_string(t) : NULL;
    for (int k = 0; v && k < AUGMENT_COUNT; k++)
        if (same_spelling(v, augment_kind_names[k]))
            return k;
    return -1;
}

/* Keras' input_shape = [28, 28, 1] (a sample's shape, without the batch): allowed on the first
 * layer only, where model_build checks it against the data. */
static int get_input_shape(const struct schema_ctx *c, const config_setting_t *layer, struct shape *out)
{
    static const char usage[] = "expected the shape of one sample, like [28, 28, 1] or [30] (positive integers)";
    const config_setting_t *s = member(layer, "input_shape");
    out->rank = 0;
    if (!s)
        return 0;
    /* the first entry, or the first layer after the augmentation entries (which take the input) */
    const config_setting_t *list = config_setting_parent(layer);
    for (int i = 0; list && i < config_setting_index(layer); i++)
        if (augment_kind_of(config_setting_get_elem(list, (unsigned)i)) < 0)
            return schema_fail(c, s, "belongs on the first layer only (the others take the shape of the layer before)");
    int t = config_setting_type(s), scalar = t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
    int n = scalar ? 1 : t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST ? config_setting_length(s) : 0;
    if (n < 1 || n > SHAPE_MAX_RANK)
        return schema_fail(c, s, "%s", usage);
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = scalar ? s : config_setting_get_elem(s, (unsigned)i);
        int et = config_setting_type(e);
        int64_t v = et == CONFIG_TYPE_INT || et == CONFIG_TYPE_INT64 ? config_setting_get_int64(e) : 0;
        if (v < 1 || v > (INT64_C(1) << 24))
            return schema_fail(c, s, "%s", usage);
        out->dims[i] = v;
    }
    out->rank = n;
    return 0;
}

/* The readers a layer kind is handed (net/layers.h), over one layer's group of the job file. */
struct group_keys {
    struct layer_keys k;
    const struct schema_ctx *c;
    const config_setting_t *g;
};

static int keys_integer(struct layer_keys *k, const char *key, int64_t *out, int64_t def, int64_t min, int64_t max,
                        int required)
{
    const struct group_keys *gk = (const struct group_keys *)k;
    return get_int(gk->c, gk->g, key, out, def, min, max, required);
}

static int keys_number(struct layer_keys *k, const char *key, double *out, double def, double min, double max,
                       int required)
{
    const struct group_keys *gk = (const struct group_keys *)k;
    if (get_float(gk->c, gk->g, key, out, def, min, max, 0, 1))
        return -1;
    if (required && !member(gk->g, key))
        return dp_error_set(gk->c->err, DP_EXIT_INPUT, "%s:%d: missing key '%s'", gk->c->file,
                            config_setting_source_line(gk->g), key);
    return 0;
}

static int keys_choice(struct layer_keys *k, const char *key, int *out, int def, const char *const *choices)
{
    const struct group_keys *gk = (const struct group_keys *)k;
    return get_choice(gk->c, gk->g, key, out, def, choices, 0);
}

static int keys_pair(struct layer_keys *k, const char *key, int64_t out[2], int64_t def, int required)
{
    const struct group_keys *gk = (const struct group_keys *)k;
    return get_pair(gk->c, gk->g, key, out, def, required);
}

/* A shape like [7, 7, 16] (1 to SHAPE_MAX_RANK positive integers; one may be -1: inferred) */
static int keys_shape(struct layer_keys *k, const char *key, struct shape *out)
{
    static const char usage[] = "expected a shape like [7, 7, 16] (positive integers; one may be -1)";
    const struct group_keys *gk = (const struct group_keys *)k;
    const config_setting_t *s = member(gk->g, key);
    if (!s)
        return dp_error_set(gk->c->err, DP_EXIT_INPUT, "%s:%d: missing key '%s'", gk->c->file,
                            config_setting_source_line(gk->g), key);
    int t = config_setting_type(s);
    int n = t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST ? config_setting_length(s) : 0;
    if (n < 1 || n > SHAPE_MAX_RANK)
        return schema_fail(gk->c, s, "%s", usage);
    int inferred = 0;
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        int et = config_setting_type(e);
        int64_t v = et == CONFIG_TYPE_INT || et == CONFIG_TYPE_INT64 ? config_setting_get_int64(e) : 0;
        if ((v == -1 && inferred++) || v == 0 || v < -1 || v > (INT64_C(1) << 24))
            return schema_fail(gk->c, s, "%s", usage);
        out->dims[i] = v;
    }
    out->rank = n;
    return 0;
}

/* "name", or a group { name = "..."; NUMBER_KEY = x; ... } (Keras' class config as a group) */
static int keys_named(struct layer_keys *k, const char *key, const char *const *choices, int *index,
                      const char *const *number_keys, double *numbers, int *given)
{
    const struct group_keys *gk = (const struct group_keys *)k;
    const config_setting_t *s = member(gk->g, key);
    for (int i = 0; number_keys[i]; i++)
        given[i] = 0;
    if (!s)
        return 0;
    if (config_setting_type(s) == CONFIG_TYPE_STRING)
        return get_choice(gk->c, gk->g, key, index, *index, choices, 0);
    if (config_setting_type(s) != CONFIG_TYPE_GROUP)
        return schema_fail(gk->c, s, "expected a name or a group { name = \"...\"; ... }, got %s",
                           type_name(config_setting_type(s)));
    const char *allowed[16] = {"name"};
    int n = 1;
    for (int i = 0; number_keys[i] && n < 15; i++)
        allowed[n++] = number_keys[i];
    allowed[n] = NULL;
    if (check_keys(gk->c, s, allowed) || get_choice(gk->c, s, "name", index, 0, choices, 1))
        return -1;
    for (int i = 0; number_keys[i]; i++) {
        given[i] = member(s, number_keys[i]) != NULL;
        if (get_float(gk->c, s, number_keys[i], &numbers[i], numbers[i], -1e30, 1e30, 0, 1))
            return -1;
    }
    return 0;
}

static int keys_boolean(struct layer_keys *k, const char *key, int *out, int def)
{
    const struct group_keys *gk = (const struct group_keys *)k;
    return get_bool(gk->c, gk->g, key, out, def);
}

static int keys_has(struct layer_keys *k, const char *key)
{
    return member(((const struct group_keys *)k)->g, key) != NULL;
}

static int keys_fail(struct layer_keys *k, const char *key, const char *message)
{
    const struct group_keys *gk = (const struct group_keys *)k;
    const config_setting_t *s = member(gk->g, key);
    return schema_fail(gk->c, s ? s : gk->g, "%s", message);
}

/* A layer: its type, Keras' input_shape on the first, and the keys its kind reads. */
static int read_layer(const struct schema_ctx *c, struct layer_spec *l, const config_setting_t *s)
{
    if (!config_setting_is_group(s))
        return schema_fail(c, s, "each layer is a group { type = \"dense\"; ... }");
    l->line = config_setting_source_line(s);
    int kind;
    if (get_choice(c, s, "type", &kind, 0, layer_kind_names, 1) || get_input_shape(c, s, &l->input_shape))
        return -1;
    l->kind = (enum layer_kind)kind;
    const struct layer_ops *ops = layer_ops_table[kind];
    const char *allowed[LAYER_MAX_SETTINGS + 3] = {"type"};
    int n = 1;
    for (const char *const *k = ops->keys; k && *k && n < LAYER_MAX_SETTINGS + 1; k++)
        allowed[n++] = *k;
    allowed[n++] = "input_shape";
    allowed[n] = NULL;
    struct group_keys gk = {{keys_integer, keys_number, keys_choice, keys_pair, keys_boolean, keys_shape, keys_named, keys_has, keys_fail},
                            c, s};
    if (check_keys(c, s, allowed) || (ops->read && ops->read(l, &gk.k)))
        return -1;
    return 0;
}

/* height_factor = 0.1 (that is [-0.1, 0.1]) or [lower, upper] */
static int get_factor(const struct schema_ctx *c, const config_setting_t *g, const char *name, double out[2],
                      double min, double max, int required)
{
    const config_setting_t *s = member(g, name);
    if (!s) {
        if (required)
            return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: missing key '%s'", c->file, config_setting_source_line(g),
                                name);
        out[0] = out[1] = 0;
        return 0;
    }
    int t = config_setting_type(s);
    if (t == CONFIG_TYPE_FLOAT || t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64) {
        double f = config_setting_get_float(s);
        if (t != CONFIG_TYPE_FLOAT)
            f = (double)config_setting_get_int64(s);
        out[0] = -fabs(f), out[1] = fabs(f);
    } else if ((t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST) && config_setting_length(s) == 2) {
        for (int i = 0; i < 2; i++) {
            const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
            int et = config_setting_type(e);
            out[i] = et == CONFIG_TYPE_FLOAT ? config_setting_get_float(e) : (double)config_setting_get_int64(e);
        }
        if (out[0] > out[1])
            return schema_fail(c, s, "[lower, upper] with lower <= upper");
    } else {
        return schema_fail(c, s, "expected a fraction or [lower, upper]");
    }
    if (out[0] < min || out[1] > max)
        return schema_fail(c, s, "fractions between %g and %g", min, max);
    return 0;
}

/* One of Keras' random image layers: keys as Keras names them */
static int read_augment(const struct schema_ctx *c, struct augment_spec *a, enum augment_kind kind,
                        const config_setting_t *s)
{
    static const char *const keys[AUGMENT_COUNT][8] = {
        [AUGMENT_FLIP] = {"type", "mode", "input_shape", NULL},
        [AUGMENT_TRANSLATION] = {"type", "height_factor", "width_factor", "fill_mode", "interpolation", "fill_value",
                                 "input_shape", NULL},
        [AUGMENT_ZOOM] = {"type", "height_factor", "width_factor", "fill_mode", "interpolation", "fill_value",
                          "input_shape", NULL},
        [AUGMENT_ROTATION] = {"type", "factor", "fill_mode", "interpolation", "fill_value", "input_shape", NULL},
    };
    static const char *const modes[] = {"horizontal_and_vertical", "horizontal", "vertical", NULL};
    static const char *const interpolations[] = {"bilinear", "nearest", NULL};
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->line = config_setting_source_line(s);
    if (check_keys(c, s, keys[kind]))
        return -1;
    int mode, fill, nearest;
    double fill_value;
    if (get_choice(c, s, "mode", &mode, 0, modes, 0) ||
        get_choice(c, s, "fill_mode", &fill, AUGMENT_FILL_REFLECT, augment_fill_names, 0) ||
        get_choice(c, s, "interpolation", &nearest, 0, interpolations, 0) ||
        get_float(c, s, "fill_value", &fill_value, 0.0, -1e30, 1e30, 0, 0))
        return -1;
    a->flip_horizontal = mode != 2;
    a->flip_vertical = mode != 1;
    a->fill = (enum augment_fill)fill;
    a->nearest = nearest;
    a->fill_value = (float)fill_value;
    if (kind == AUGMENT_TRANSLATION)
        return get_factor(c, s, "height_factor", a->height, -1, 1, 1) || get_factor(c, s, "width_factor", a->width, -1, 1, 1);
    if (kind == AUGMENT_ZOOM) {
        a->width_given = member(s, "width_factor") != NULL;
        return get_factor(c, s, "height_factor", a->height, -0.999, 10, 1) ||
               get_factor(c, s, "width_factor", a->width, -0.999, 10, 0);
    }
    if (kind == AUGMENT_ROTATION)
        return get_factor(c, s, "factor", a->turn, -1, 1, 1);
    return 0;
}

static int read_model(const struct schema_ctx *c, struct job *job, const config_setting_t *root)
{
    const config_setting_t *m = member(root, "model");
    if (!m)
        return dp_error_set(c->err, DP_EXIT_INPUT, "%s: missing section 'model'", c->file);
    if (!config_setting_is_list(m))
        return schema_fail(c, m, "expected a list of layers ( { ... }, { ... } ), got %s",
                           type_name(config_setting_type(m)));
    int n = config_setting_length(m);
    job->layers = dp_calloc((size_t)(n ? n : 1), sizeof *job->layers, "layer specs");
    job->augment = dp_calloc((size_t)(n ? n : 1), sizeof *job->augment, "augmentation");
    job->nlayers = job->naugment = 0;
    struct shape augment_input = {0};
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(m, (unsigned)i);
        int kind = augment_kind_of(e);
        if (kind >= 0) {
            /* they change the input images: before the layers, as Keras' preprocessing */
            if (job->nlayers > 0)
                return schema_fail(c, e, "%s acts on the input images: put it before the model's layers",
                                   augment_kind_names[kind]);
            if (read_augment(c, &job->augment[job->naugment++], (enum augment_kind)kind, e) ||
                (augment_input.rank == 0 && get_input_shape(c, e, &augment_input)))
                return -1;
        } else if (read_layer(c, &job->layers[job->nlayers++], e)) {
            return -1;
        }
    }
    if (job->nlayers == 0)
        return schema_fail(c, m, "the model has no layers");
    if (job->layers[0].input_shape.rank == 0)
        job->layers[0].input_shape = augment_input;
    return 0;
}

static int read_monitor(const struct schema_ctx *c, const config_setting_t *g, struct job_monitor *m,
                        const char *def_monitor)
{
    /* val_loss, loss, and every metric with and without val_ */
    static char names[METRIC_COUNT][2][48];
    static const char *monitors[2 * METRIC_COUNT + 1];
    int nm = 0;
    monitors[nm++] = "val_loss";
    monitors[nm++] = "loss";
    for (int k = METRIC_NONE + 1; k < METRIC_COUNT; k++) {
        snprintf(names[k][0], sizeof names[k][0], "val_%s", metric_names[k]);
        snprintf(names[k][1], sizeof names[k][1], "%s", metric_names[k]);
        monitors[nm++] = names[k][0];
        monitors[nm++] = names[k][1];
    }
    monitors[nm] = NULL;
    static const char *const modes[] = {"auto", "min", "max", NULL};
    int which, mode;
    int def = 0;
    for (int i = 0; monitors[i]; i++)
        if (!strcmp(monitors[i], def_monitor))
            def = i;
    if (get_choice(c, g, "monitor", &which, def, monitors, 0) ||
        get_choice(c, g, "mode", &mode, MONITOR_MODE_AUTO, modes, 0))
        return -1;
    snprintf(m->monitor, sizeof m->monitor, "%s", monitors[which]);
    if (mode == MONITOR_MODE_AUTO) { /* as Keras: a loss or an error falls, the others rise */
        const char *metric = !strncmp(m->monitor, "val_", 4) ? m->monitor + 4 : m->monitor;
        mode = MONITOR_MODE_MIN;
        for (int k = METRIC_NONE + 1; k < METRIC_COUNT; k++)
            if (!strcmp(metric, metric_names[k]) && metric_higher_is_better((enum metric_kind)k))
                mode = MONITOR_MODE_MAX;
    }
    m->mode = (enum monitor_mode)mode;
    return 0;
}

const char *const allreduce_names[] = {"auto", "nccl", "mpi", NULL};
const char *const precision_names[] = {"auto", "fp32", "tf32", "bf16", NULL};

/* fit.metrics: one metric at most, as a list (Keras' compile) or a name; a metric with an argument
 * in a list as a group: ({ name = "top_k_categorical_accuracy"; k = 3; }) */
static int read_metrics(const struct schema_ctx *c, struct job_fit *f, const config_setting_t *g)
{
    static const char *const known =
        "\"accuracy\", \"mae\", \"precision\", \"recall\", \"top_k_categorical_accuracy\", \"auc\"";
    f->metric = METRIC_NONE;
    f->metric_k = 5;
    const config_setting_t *metrics = member(g, "metrics");
    if (!metrics)
        return 0;
    int t = config_setting_type(metrics);
    if (t != CONFIG_TYPE_ARRAY && t != CONFIG_TYPE_LIST && t != CONFIG_TYPE_STRING)
        return schema_fail(c, metrics, "expected a list of metric names like [\"accuracy\"]");
    int n = t == CONFIG_TYPE_STRING ? 1 : config_setting_length(metrics);
    if (n > 1)
        return schema_fail(c, metrics, "one metric at most is supported (%s)", known);
    if (n == 0)
        return 0;
    const config_setting_t *e = t == CONFIG_TYPE_STRING ? metrics : config_setting_get_elem(metrics, 0);
    const config_setting_t *name = e;
    if (config_setting_type(e) == CONFIG_TYPE_GROUP) {
        static const char *const keys[] = {"name", "k", NULL};
        if (check_keys(c, e, keys))
            return -1;
        name = member(e, "name");
        if (!name)
            return schema_fail(c, e, "a metric group needs its name");
    }
    if (config_setting_type(name) != CONFIG_TYPE_STRING)
        return schema_fail(c, name, "expected a metric name (string)");
    const char *v = config_setting_get_string(name);
    if (same_spelling(v, "accuracy") || same_spelling(v, "acc") || same_spelling(v, "sparse_categorical_accuracy") ||
        same_spelling(v, "categorical_accuracy") || same_spelling(v, "binary_accuracy"))
        f->metric = METRIC_ACCURACY;
    else if (same_spelling(v, "mae") || same_spelling(v, "mean_absolute_error"))
        f->metric = METRIC_MAE;
    else if (same_spelling(v, "precision"))
        f->metric = METRIC_PRECISION;
    else if (same_spelling(v, "recall"))
        f->metric = METRIC_RECALL;
    else if (same_spelling(v, "top_k_categorical_accuracy") || same_spelling(v, "sparse_top_k_categorical_accuracy"))
        f->metric = METRIC_TOP_K;
    else if (same_spelling(v, "auc"))
        f->metric = METRIC_AUC;
    else
        return schema_fail(c, name, "unknown metric \"%s\" (known: %s)", v, known);
    if (config_setting_type(e) == CONFIG_TYPE_GROUP && member(e, "k")) {
        if (f->metric != METRIC_TOP_K)
            return schema_fail(c, member(e, "k"), "only top_k_categorical_accuracy takes k");
        if (get_int(c, e, "k", &f->metric_k, 5, 1, 1000000, 0))
            return -1;
    }
    if (f->metric != METRIC_MAE && f->loss == LOSS_MSE)
        return schema_fail(c, name, "\"%s\" needs a classification loss; use \"mae\" with mse", v);
    if (f->metric == METRIC_TOP_K && f->loss == LOSS_BINARY_CROSSENTROPY)
        return schema_fail(c, name, "top_k_categorical_accuracy needs several classes (a softmax output)");
    return 0;
}

/* A list of numbers (each finite); n set to its length. */
static int get_numbers(const struct schema_ctx *c, const config_setting_t *g, const char *name, double *out, int max,
                       int *n)
{
    const config_setting_t *s = member(g, name);
    int t = s ? config_setting_type(s) : CONFIG_TYPE_NONE;
    *n = t == CONFIG_TYPE_ARRAY || t == CONFIG_TYPE_LIST ? config_setting_length(s) : -1;
    if (!s)
        return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: missing key '%s'", c->file, config_setting_source_line(g),
                            name);
    if (*n < 1 || *n > max)
        return schema_fail(c, s, "expected a list of 1 to %d numbers", max);
    for (int i = 0; i < *n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        int et = config_setting_type(e);
        if (et != CONFIG_TYPE_FLOAT && et != CONFIG_TYPE_INT && et != CONFIG_TYPE_INT64)
            return schema_fail(c, s, "expected a list of numbers");
        out[i] = et == CONFIG_TYPE_FLOAT ? config_setting_get_float(e) : (double)config_setting_get_int64(e);
        if (!isfinite(out[i]))
            return schema_fail(c, s, "%g is not a finite number", out[i]);
    }
    return 0;
}

/* learning_rate = { name = "cosine_decay"; initial_learning_rate = ...; ... }: a Keras schedule
 * (net/lr_schedule.h) with Keras' argument names and defaults. */
static int read_lr_schedule(const struct schema_ctx *c, const config_setting_t *g, struct lr_schedule *sc)
{
    static const char *const keys[] = {"name", "initial_learning_rate", "decay_steps", "first_decay_steps",
                                       "decay_rate", "staircase", "boundaries", "values", "end_learning_rate",
                                       "power", "cycle", "alpha", "warmup_target", "warmup_steps", "t_mul",
                                       "m_mul", NULL};
    int kind;
    if (check_keys(c, g, keys) || get_choice(c, g, "name", &kind, 0, lr_schedule_names, 1))
        return -1;
    memset(sc, 0, sizeof *sc);
    sc->kind = (enum lr_schedule_kind)kind;
    sc->warmup_target = NAN;
    /* the keys each schedule takes (name aside) */
    static const char *const takes[LR_SCHEDULE_COUNT][8] = {
        [LR_EXPONENTIAL_DECAY] = {"initial_learning_rate", "decay_steps", "decay_rate", "staircase"},
        [LR_INVERSE_TIME_DECAY] = {"initial_learning_rate", "decay_steps", "decay_rate", "staircase"},
        [LR_PIECEWISE_CONSTANT] = {"boundaries", "values"},
        [LR_POLYNOMIAL_DECAY] = {"initial_learning_rate", "decay_steps", "end_learning_rate", "power", "cycle"},
        [LR_COSINE_DECAY] = {"initial_learning_rate", "decay_steps", "alpha", "warmup_target", "warmup_steps"},
        [LR_COSINE_DECAY_RESTARTS] = {"initial_learning_rate", "first_decay_steps", "t_mul", "m_mul", "alpha"},
    };
    if (kind == LR_CONSTANT)
        return schema_fail(c, member(g, "name"), "a constant rate is a number: learning_rate = 0.001");
    for (int i = 1; keys[i]; i++) {
        int ok = 0;
        for (int j = 0; takes[kind][j]; j++)
            ok |= !strcmp(takes[kind][j], keys[i]);
        if (!ok && member(g, keys[i]))
            return schema_fail(c, member(g, keys[i]), "%s does not take '%s'", lr_schedule_names[kind], keys[i]);
    }
    const char *steps_key = kind == LR_COSINE_DECAY_RESTARTS ? "first_decay_steps" : "decay_steps";
    if (kind == LR_PIECEWISE_CONSTANT) {
        int nb, nv;
        if (get_numbers(c, g, "boundaries", sc->boundaries, LR_MAX_BOUNDARIES, &nb) ||
            get_numbers(c, g, "values", sc->values, LR_MAX_BOUNDARIES + 1, &nv))
            return -1;
        if (nv != nb + 1)
            return schema_fail(c, member(g, "values"), "needs one value more than boundaries (%d), got %d", nb, nv);
        for (int i = 0; i < nb; i++)
            if (i > 0 && !(sc->boundaries[i] > sc->boundaries[i - 1]))
                return schema_fail(c, member(g, "boundaries"), "boundaries must increase");
        for (int i = 0; i < nv; i++)
            if (sc->values[i] < 0)
                return schema_fail(c, member(g, "values"), "a learning rate cannot be negative (%g)", sc->values[i]);
        sc->nboundaries = nb;
        return 0;
    }
    if (get_float(c, g, "initial_learning_rate", &sc->initial_learning_rate, 0, 0.0, 1e6, 0, 0) ||
        get_float(c, g, steps_key, &sc->decay_steps, 0, 0.0, 1e15, 1, 0) ||
        get_float(c, g, "decay_rate", &sc->decay_rate, 0, 0.0, 1e6, 0, 0) ||
        get_bool(c, g, "staircase", &sc->staircase, 0) || get_bool(c, g, "cycle", &sc->cycle, 0) ||
        get_float(c, g, "end_learning_rate", &sc->end_learning_rate, 0.0001, 0.0, 1e6, 0, 0) ||
        get_float(c, g, "power", &sc->power, 1.0, 0.0, 1e3, 0, 0) ||
        get_float(c, g, "alpha", &sc->alpha, 0.0, 0.0, 1.0, 0, 0) ||
        get_float(c, g, "warmup_steps", &sc->warmup_steps, 0.0, 0.0, 1e15, 0, 0) ||
        get_float(c, g, "t_mul", &sc->t_mul, 2.0, 0.0, 1e3, 1, 0) ||
        get_float(c, g, "m_mul", &sc->m_mul, 1.0, 0.0, 1e3, 0, 0))
        return -1;
    static const char *const required[] = {"initial_learning_rate", "decay_rate"};
    for (int i = 0; i < 2; i++)
        if (!member(g, required[i]) && (i == 0 || kind == LR_EXPONENTIAL_DECAY || kind == LR_INVERSE_TIME_DECAY))
            return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: %s needs '%s'", c->file, config_setting_source_line(g),
                                lr_schedule_names[kind], required[i]);
    if (!member(g, steps_key))
        return dp_error_set(c->err, DP_EXIT_INPUT, "%s:%d: %s needs '%s'", c->file, config_setting_source_line(g),
                            lr_schedule_names[kind], steps_key);
    if (member(g, "warmup_target")) {
        double target;
        if (get_float(c, g, "warmup_target", &target, 0, 0.0, 1e6, 0, 0))
            return -1;
        sc->warmup_target = target;
    } else if (member(g, "warmup_steps")) {
        return schema_fail(c, member(g, "warmup_steps"), "warmup_steps needs warmup_target (the rate the warm-up "
                           "reaches)");
    }
    if (sc->warmup_steps > sc->decay_steps)
        return schema_fail(c, member(g, "warmup_steps"), "a warm-up of %g steps is longer than the decay's %g",
                           sc->warmup_steps, sc->decay_steps);
    return 0;
}

/* fit.optimizer = { name = "sgd"; lr = ...; }, or as in Keras' compile(optimizer="adam") the name
 * alone, with that optimizer's defaults. */
static int read_optimizer(const struct schema_ctx *c, struct job_fit *f, const config_setting_t *g)
{
    const config_setting_t *opt = NULL, *given = member(g, "optimizer");
    int kind = OPTIMIZER_ADAM;
    if (given && config_setting_type(given) == CONFIG_TYPE_STRING) {
        if (get_choice(c, g, "optimizer", &kind, OPTIMIZER_ADAM, optimizer_names, 1))
            return -1;
    } else if (given && !config_setting_is_group(given)) {
        return schema_fail(c, given, "expected an optimizer name like \"adam\" or a group { name = ...; lr = ...; }");
    } else {
        opt = given;
    }
    if (opt) {
        if (check_keys(c, opt, optimizer_keys) || get_choice(c, opt, "name", &kind, OPTIMIZER_ADAM, optimizer_names, 1))
            return -1;
    }
    struct optimizer_config *o = &f->optimizer;
    optimizer_config_defaults(o, (enum optimizer_kind)kind);
    if (opt) {
        /* Keras 2.3 and later call lr learning_rate: either name, not both, except that a --set of
         * one overrides the other written in the file. */
        const config_setting_t *lr = member(opt, "lr"), *learning_rate = member(opt, "learning_rate");
        const char *lr_key = learning_rate ? "learning_rate" : "lr";
        if (lr && learning_rate) {
            int lr_set = config_setting_get_hook(lr) == &job_override_marker;
            if (lr_set == (config_setting_get_hook(learning_rate) == &job_override_marker))
                return schema_fail(c, learning_rate, "give lr or learning_rate, not both");
            lr_key = lr_set ? "lr" : "learning_rate";
        }
        const config_setting_t *rate = member(opt, lr_key);
        if (rate && config_setting_is_group(rate)) {
            if (read_lr_schedule(c, rate, &o->schedule))
                return -1;
            o->lr = lr_schedule_at(&o->schedule, 0.0, 0);
            if (member(opt, "decay"))
                return schema_fail(c, member(opt, "decay"), "give a learning-rate schedule or decay, not both");
        } else if (get_float(c, opt, lr_key, &o->lr, o->lr, 0.0, 1e6, 1, 0)) {
            return -1;
        }
        if (get_float(c, opt, "momentum", &o->momentum, o->momentum, 0.0, 1.0, 0, 1) ||
            get_bool(c, opt, "nesterov", &o->nesterov, 0) || get_bool(c, opt, "amsgrad", &o->amsgrad, 0) ||
            get_float(c, opt, "decay", &o->decay, 0.0, 0.0, 1e6, 0, 0) ||
            get_float(c, opt, "beta_1", &o->beta1, o->beta1, 0.0, 1.0, 0, 1) ||
            get_float(c, opt, "beta_2", &o->beta2, o->beta2, 0.0, 1.0, 0, 1) ||
            get_float(c, opt, "epsilon", &o->epsilon, o->epsilon, 0.0, 1.0, 1, 0) ||
            get_float(c, opt, "rho", &o->rho, o->rho, 0.0, 1.0, 0, 1) ||
            get_float(c, opt, "weight_decay", &o->weight_decay, o->weight_decay, 0.0, 1.0, 0, 1) ||
            get_float(c, opt, "clipvalue", &o->clipvalue, 0.0, 0.0, 1e30, 1, 0) ||
            get_float(c, opt, "clipnorm", &o->clipnorm, 0.0, 0.0, 1e30, 1, 0) ||
            get_float(c, opt, "global_clipnorm", &o->global_clipnorm, 0.0, 0.0, 1e30, 1, 0) ||
            get_float(c, opt, "initial_accumulator_value", &o->initial_accumulator_value,
                      o->initial_accumulator_value, 0.0, 1e6, 0, 0))
            return -1;
        static const struct { const char *key; int kinds; } only[] = {
            {"beta_1", 1 << OPTIMIZER_ADAM | 1 << OPTIMIZER_ADAMW | 1 << OPTIMIZER_NADAM},
            {"beta_2", 1 << OPTIMIZER_ADAM | 1 << OPTIMIZER_ADAMW | 1 << OPTIMIZER_NADAM},
            {"rho", 1 << OPTIMIZER_RMSPROP}, {"initial_accumulator_value", 1 << OPTIMIZER_ADAGRAD},
            {"amsgrad", 1 << OPTIMIZER_ADAM | 1 << OPTIMIZER_ADAMW},
            {"epsilon", ~(1 << OPTIMIZER_SGD)},
        };
        const char *clips[] = {"clipvalue", "clipnorm", "global_clipnorm"};
        for (int i = 0; i < 3; i++)
            for (int j = i + 1; j < 3; j++)
                if (member(opt, clips[i]) && member(opt, clips[j]))
                    return schema_fail(c, member(opt, clips[j]), "give one of clipvalue, clipnorm and global_clipnorm "
                                       "(as Keras), not %s and %s", clips[i], clips[j]);
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (!(only[i].kinds & 1 << kind) && member(opt, only[i].key))
                return schema_fail(c, member(opt, only[i].key), "%s does not take '%s'", optimizer_names[kind],
                                   only[i].key);
        const char *sgd_only[] = {"momentum", "nesterov", "decay"};
        for (int i = 0; i < 3; i++)
            if (kind != OPTIMIZER_SGD && member(opt, sgd_only[i]))
                return schema_fail(c, member(opt, sgd_only[i]), "'%s' applies to sgd only", sgd_only[i]);
        if (o->nesterov && o->momentum == 0.0)
            return schema_fail(c, member(opt, "nesterov"), "nesterov needs momentum > 0");
    }
    return 0;
}

/* fit.checkpoint and fit.early_stopping */
static int read_fit_callbacks(const struct schema_ctx *c, struct job_fit *f, const config_setting_t *g)
{
    const config_setting_t *ck = NULL, *es = NULL;
    if (get_group(c, g, "checkpoint", 0, &ck) || get_group(c, g, "early_stopping", 0, &es))
        return -1;
    if (ck) {
        static const char *const ckeys[] = {"monitor", "mode", "save_best_only", "every_epochs",
                                            "every_steps", "every_seconds", "keep", NULL};
        if (check_keys(c, ck, ckeys))
            return -1;
    }
    if (read_monitor(c, ck, &f->checkpoint.m, "val_loss") ||
        get_bool(c, ck, "save_best_only", &f->checkpoint.save_best_only, 1) ||
        get_int(c, ck, "every_epochs", &f->checkpoint.every_epochs, 1, 1, 1000000000, 0) ||
        get_int(c, ck, "every_steps", &f->checkpoint.every_steps, 0, 0, INT64_C(1) << 40, 0) ||
        get_float(c, ck, "every_seconds", &f->checkpoint.every_seconds, 0.0, 0.0, 1e9, 0, 0) ||
        get_int(c, ck, "keep", &f->checkpoint.keep, 0, 0, 1000000, 0))
        return -1;
    f->early_stopping.enabled = es != NULL;
    if (es) {
        static const char *const ekeys[] = {"monitor", "mode", "patience", "min_delta",
                                            "restore_best_weights", NULL};
        if (check_keys(c, es, ekeys))
            return -1;
    }
    if (read_monitor(c, es, &f->early_stopping.m, "val_loss") ||
        get_int(c, es, "patience", &f->early_stopping.patience, 0, 0, 1000000000, 0) ||
        get_float(c, es, "min_delta", &f->early_stopping.min_delta, 0.0, 0.0, 1e30, 0, 0) ||
        get_bool(c, es, "restore_best_weights", &f->early_stopping.restore_best_weights, 0))
        return -1;
    const config_setting_t *rl = NULL;
    if (get_group(c, g, "reduce_lr_on_plateau", 0, &rl))
        return -1;
    struct job_reduce_lr *r = &f->reduce_lr;
    r->enabled = rl != NULL;
    if (rl) {
        static const char *const rkeys[] = {"monitor", "mode", "factor", "patience", "min_delta", "cooldown",
                                            "min_lr", NULL};
        if (check_keys(c, rl, rkeys))
            return -1;
        if (f->optimizer.schedule.kind != LR_CONSTANT)
            return schema_fail(c, rl, "reduce_lr_on_plateau needs a constant learning rate, not a schedule "
                               "(as in Keras)");
    }
    if (read_monitor(c, rl, &r->m, "val_loss") || get_float(c, rl, "factor", &r->factor, 0.1, 0.0, 1.0, 1, 1) ||
        get_int(c, rl, "patience", &r->patience, 10, 0, 1000000000, 0) ||
        get_float(c, rl, "min_delta", &r->min_delta, 1e-4, 0.0, 1e30, 0, 0) ||
        get_int(c, rl, "cooldown", &r->cooldown, 0, 0, 1000000000, 0) ||
        get_float(c, rl, "min_lr", &r->min_lr, 0.0, 0.0, 1e6, 0, 0))
        return -1;
    return 0;
}

static int read_fit(const struct schema_ctx *c, struct job_fit *f, const config_setting_t *g)
{
    if (check_keys(c, g, fit_keys))
        return -1;
    int64_t seed;
    int loss, allreduce, precision;
    if (get_int(c, g, "seed", &seed, 1, 0, INT64_MAX, 0) ||
        get_int(c, g, "epochs", &f->epochs, 1, 1, 1000000000, 0) ||
        get_int(c, g, "batch_size", &f->batch_size, 32, 1, INT64_C(1) << 24, 0) ||
        get_int(c, g, "steps_per_epoch", &f->steps_per_epoch, 0, 0, INT64_C(1) << 40, 0) ||
        get_int(c, g, "threads", &f->threads, 0, 0, 4096, 0) ||
        get_int(c, g, "readback_steps", &f->readback_steps, 0, 0, INT64_C(1) << 30, 0) ||
        get_choice(c, g, "loss", &loss, 0, loss_names, 1) ||
        get_choice(c, g, "allreduce", &allreduce, ALLREDUCE_AUTO, allreduce_names, 0) ||
        get_choice(c, g, "precision", &precision, PRECISION_AUTO, precision_names, 0) ||
        get_float(c, g, "nccl_timeout", &f->nccl_timeout, 600, 1, 1e6, 0, 0) ||
        get_float(c, g, "collective_timeout", &f->collective_timeout, f->nccl_timeout, 1, 1e6, 0, 0) ||
        get_float(c, g, "allreduce_bucket_mb", &f->allreduce_bucket_mb, 0, 0, 1e6, 0, 0) ||
        get_string(c, g, "initial_weights", &f->initial_weights, NULL))
        return -1;
    /* collective_timeout bounds every wait on other ranks, NCCL's included unless nccl_timeout is given */
    if (member(g, "collective_timeout") && !member(g, "nccl_timeout"))
        f->nccl_timeout = f->collective_timeout;
    f->allreduce = (enum allreduce_kind)allreduce;
    f->precision = (enum precision_kind)precision;
    f->seed = (uint64_t)seed;
    f->loss = (enum loss_kind)loss;
    return read_metrics(c, f, g) || read_optimizer(c, f, g) || read_fit_callbacks(c, f, g) ? -1 : 0;
}

/* Checks that need several sections at once. */
static int cross_check(const struct schema_ctx *c, struct job *job, config_t *cfg)
{
    const struct layer_spec *last = &job->layers[job->nlayers - 1];
    enum activation need = loss_required_activation(job->fit.loss);
    const config_setting_t *loss = config_lookup(cfg, "fit.loss");
    if (last->kind == LAYER_KIND_DENSE && need != ACTIVATION_COUNT && last->u.dense.activation != need)
        return schema_fail(c, loss, "%s needs a %s output layer, but the last layer (line %d) is %s",
                           loss_names[job->fit.loss], activation_names[need], last->line,
                           activation_names[last->u.dense.activation]);
    const char *monitors[2] = {job->fit.checkpoint.m.monitor,
                               job->fit.early_stopping.enabled ? job->fit.early_stopping.m.monitor : ""};
    for (int i = 0; i < 2; i++) {
        const char *mon = monitors[i];
        if (!mon[0])
            continue;
        const char *metric_part = !strncmp(mon, "val_", 4) ? mon + 4 : mon;
        if (strcmp(metric_part, "loss") && strcmp(metric_part, metric_names[job->fit.metric])) {
            const config_setting_t *s = config_lookup(cfg, i ? "fit.early_stopping.monitor" : "fit.checkpoint.monitor");
            return schema_fail(c, s ? s : loss, "monitors \"%s\" but fit.metrics does not compute it", mon);
        }
    }
    return 0;
}

/* A name that stays one directory under runs/: not empty, not . or .., no /. */
static int plain_name(const char *s)
{
    return s[0] && strcmp(s, ".") && strcmp(s, "..") && !strchr(s, '/');
}

int job_schema_read(struct job *job, config_t *cfg, const char *path, struct dp_error *err)
{
    struct schema_ctx c = {path, err};
    const config_setting_t *root = config_root_setting(cfg);
    static const char *const keys[] = {"name", "data", "model", "fit", NULL};
    if (check_keys(&c, root, keys))
        return -1;
    if (get_string(&c, root, "name", &job->name, NULL))
        return -1;
    if (job->name && !plain_name(job->name))
        return schema_fail(&c, member(root, "name"), "\"%s\" is not a plain name: it names the run dir (runs/NAME), so "
                           "it may not be empty, '.' or '..', or hold '/'", job->name);
    if (!job->name) {
        /* Default name: the job file's base name without extension. */
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        job->name = dp_strdup(base);
        char *dot = strrchr(job->name, '.');
        if (dot && dot != job->name)
            *dot = 0;
    }
    const config_setting_t *data, *fit;
    if (get_group(&c, root, "data", 1, &data) || read_data(&c, &job->data, data))
        return -1;
    if (read_model(&c, job, root))
        return -1;
    if (get_group(&c, root, "fit", 1, &fit) || read_fit(&c, &job->fit, fit))
        return -1;
    return cross_check(&c, job, cfg);
}
