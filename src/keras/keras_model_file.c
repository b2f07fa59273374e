#include "keras/keras_model_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "base/h5io.h"
#include "base/zip_archive.h"

/* The Keras release whose files these mirror (compared with its own files in tests/e2e/e2e_keras.sh) */
#define KERAS_FORMAT_VERSION "3.16.0"

static float *host_weights(const struct model *m)
{
    float *host = dp_malloc(m->arena_floats * sizeof(float), "the weights");
    m->be->download(host, m->params, m->arena_floats * sizeof(float));
    return host;
}

/* The Sequential model's layers as Keras names them: the input layers first, then dptrain's */
static int keras_layer_names(const struct keras_export *e, const char **names)
{
    int n = keras_input_layer_names(&e->input, names);
    for (int i = 0; i < e->m->nlayers; i++)
        names[n++] = e->m->layers[i].name;
    return n;
}

/* The optimizer's own variables as Keras creates them in its constructor: the iteration count,
 * and the rate unless it is a schedule (a schedule is a function of the count) */
static void write_optimizer_vars(hid_t vars, const struct keras_export *e, const char *path)
{
    const struct optimizer_config *o = &e->job->fit.optimizer;
    h5io_write_scalar(vars, "0", H5T_STD_I64LE, &e->iterations, path);
    if (o->schedule.kind == LR_CONSTANT && o->decay == 0) {
        float lr = (float)optimizer_current_lr(o, e->iterations);
        h5io_write_scalar(vars, "1", H5T_IEEE_F32LE, &lr, path);
    }
}

/* model.weights.h5 of a .keras file, as an image in memory */
static void *native_weights_image(const struct keras_export *e, const char *model_name, size_t *len)
{
    const char *name = "model.weights.h5";
    hid_t f = h5io_create_in_memory(name);
    float *host = host_weights(e->m);
    hid_t layers = h5io_group_create(f, "layers", name);
    const char *extra[2];
    int nextra = keras_input_layer_names(&e->input, extra);
    for (int i = 0; i < nextra + e->m->nlayers; i++) {
        const struct layer *l = i < nextra ? NULL : &e->m->layers[i - nextra];
        const char *lname = l ? l->name : extra[i];
        hid_t g = h5io_group_create(layers, lname, name);
        hid_t vars = h5io_group_create(g, "vars", name);
        h5io_attr_string(vars, "name", lname, name);
        for (int p = 0; l && p < l->nparams; p++) {
            char ds[16];
            snprintf(ds, sizeof ds, "%d", p);
            h5io_write_f32(vars, ds, l->param_shapes[p].rank, l->param_shapes[p].dims, host + l->param_offsets[p], name);
        }
        H5Gclose(vars);
        H5Gclose(g);
    }
    H5Gclose(layers);
    free(host);
    hid_t opt = h5io_group_create(f, "optimizer", name);
    hid_t vars = h5io_group_create(opt, "vars", name);
    h5io_attr_string(vars, "name", optimizer_names[e->job->fit.optimizer.kind], name);
    write_optimizer_vars(vars, e, name);
    H5Gclose(vars);
    H5Gclose(opt);
    vars = h5io_group_create(f, "vars", name); /* the model's own variables: none */
    h5io_attr_string(vars, "name", model_name, name);
    H5Gclose(vars);
    return h5io_memory_image(f, len, name);
}

static int write_native(const char *path, const struct keras_export *e, struct dp_error *err)
{
    json_t *config = keras_model_config(e->job, e->m, &e->input, KERAS_NATIVE, err);
    if (!config)
        return -1;
    char model_name[128];
    keras_model_name(model_name, sizeof model_name, e->job->name);
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d@%H:%M:%S", localtime(&now));
    json_t *meta = json_pack("{s:s, s:s, s:s}", "keras_version", KERAS_FORMAT_VERSION, "date_saved", date,
                             "dptrain_version", DPTRAIN_VERSION);
    char *config_text = json_dumps(config, JSON_COMPACT | JSON_REAL_PRECISION(17));
    char *meta_text = json_dumps(meta, 0);
    json_decref(config);
    json_decref(meta);
    if (!config_text || !meta_text)
        dp_die(DP_EXIT_INTERNAL, "%s: jansson cannot write the model's configuration", path);
    size_t wlen = 0;
    void *weights = native_weights_image(e, model_name, &wlen);
    struct zip_member members[] = {
        {"metadata.json", meta_text, strlen(meta_text)},
        {"config.json", config_text, strlen(config_text)},
        {"model.weights.h5", weights, wlen},
    };
    int rc = zip_archive_write(path, members, 3, err);
    free(config_text);
    free(meta_text);
    free(weights);
    return rc;
}

/* The legacy layout under /model_weights, with Keras 3's weight names (<model>/<layer>/<weight>) */
static void write_legacy_weights(hid_t root, const struct keras_export *e, const char *model_name, const char *path)
{
    const char **names = dp_calloc((size_t)e->m->nlayers + 2, sizeof(char *), "layer names");
    int n = keras_layer_names(e, names);
    h5io_attr_string(root, "backend", "tensorflow", path);
    h5io_attr_string(root, "keras_version", KERAS_FORMAT_VERSION, path);
    h5io_attr_strings(root, "layer_names", names, n, path);
    float *host = host_weights(e->m);
    int nextra = n - e->m->nlayers;
    for (int i = 0; i < n; i++) {
        const struct layer *l = i < nextra ? NULL : &e->m->layers[i - nextra];
        hid_t g = h5io_group_create(root, names[i], path);
        int np = l ? l->nparams : 0;
        if (np == 0) { /* Keras writes an empty float64 array for weightless layers */
            hsize_t zero = 0;
            hid_t space = H5Screate_simple(1, &zero, NULL);
            hid_t a = space < 0 ? -1 : H5Acreate2(g, "weight_names", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
            if (a < 0)
                dp_die(DP_EXIT_INTERNAL, "%s: HDF5 failed writing weight_names of %s", path, names[i]);
            H5Aclose(a);
            H5Sclose(space);
        } else {
            char full[LAYER_MAX_PARAMS][400];
            const char *ptrs[LAYER_MAX_PARAMS];
            hid_t outer = h5io_group_create(g, model_name, path);
            hid_t inner = h5io_group_create(outer, l->name, path);
            for (int p = 0; p < np; p++) {
                snprintf(full[p], sizeof full[p], "%s/%s/%s", model_name, l->name, l->param_names[p]);
                ptrs[p] = full[p];
                h5io_write_f32(inner, l->param_names[p], l->param_shapes[p].rank, l->param_shapes[p].dims,
                               host + l->param_offsets[p], path);
            }
            h5io_attr_strings(g, "weight_names", ptrs, np, path);
            H5Gclose(inner);
            H5Gclose(outer);
        }
        H5Gclose(g);
    }
    free(host);
    free(names);
    /* the Sequential model's own weights: none, as Keras 3 records */
    hid_t top = h5io_group_create(root, "top_level_model_weights", path);
    hsize_t zero = 0;
    hid_t space = H5Screate_simple(1, &zero, NULL);
    hid_t a = space < 0 ? -1 : H5Acreate2(top, "weight_names", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        dp_die(DP_EXIT_INTERNAL, "%s: HDF5 failed writing top_level_model_weights", path);
    H5Aclose(a);
    H5Sclose(space);
    H5Gclose(top);
}

static int write_legacy(const char *path, const struct keras_export *e, struct dp_error *err)
{
    json_t *config = keras_model_config(e->job, e->m, &e->input, KERAS_LEGACY_H5, err);
    json_t *training = config ? keras_training_config(e->job, err) : NULL;
    if (!training) {
        json_decref(config);
        return -1;
    }
    char *config_text = json_dumps(config, JSON_REAL_PRECISION(17));
    char *training_text = json_dumps(training, JSON_REAL_PRECISION(17));
    json_decref(config);
    json_decref(training);
    if (!config_text || !training_text)
        dp_die(DP_EXIT_INTERNAL, "%s: jansson cannot write the model's configuration", path);
    char model_name[128];
    keras_model_name(model_name, sizeof model_name, e->job->name);
    char tmp[4200];
    hid_t f = h5io_create_temp(path, tmp, sizeof tmp, err);
    int rc = -1;
    if (f >= 0) {
        h5io_attr_string(f, "backend", "tensorflow", tmp);
        h5io_attr_string(f, "keras_version", KERAS_FORMAT_VERSION, tmp);
        h5io_attr_string(f, "model_config", config_text, tmp);
        h5io_attr_string(f, "training_config", training_text, tmp);
        hid_t root = h5io_group_create(f, "model_weights", tmp);
        write_legacy_weights(root, e, model_name, tmp);
        H5Gclose(root);
        rc = h5io_commit_temp(f, tmp, path, 0, err);
    }
    free(config_text);
    free(training_text);
    return rc;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcmp(s + n - k, suffix);
}

int keras_model_write(const char *path, const struct keras_export *e, struct dp_error *err)
{
    if (file_check_output(path, err) != 0)
        return -1;
    if (has_suffix(path, ".keras"))
        return write_native(path, e, err);
    if (has_suffix(path, ".h5") && !has_suffix(path, ".weights.h5"))
        return write_legacy(path, e, err);
    return dp_error_set(err, DP_EXIT_INPUT, "%s: a Keras model file ends in .keras (Keras 3) or .h5 (the legacy "
                        "whole-model format)", path);
}

int keras_file_read_normalizer(const char *path, struct normalizer *n, int64_t cols, struct dp_error *err)
{
    normalizer_init_none(n, cols);
    char *text = NULL;
    size_t len = 0;
    if (zip_archive_read(path, "config.json", &text, &len, err) != 0)
        return -1;
    json_error_t je;
    json_t *config = json_loads(text, 0, &je);
    free(text);
    if (!config)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: config.json is not JSON (line %d: %s)", path, je.line, je.text);
    json_t *layers = json_object_get(json_object_get(config, "config"), "layers");
    int rc = 0;
    for (size_t i = 0; i < json_array_size(layers) && i < 3; i++) { /* InputLayer, Rescaling, Normalization */
        json_t *l = json_array_get(layers, i), *cfg = json_object_get(l, "config");
        if (strcmp(json_string_value(json_object_get(l, "class_name")) ?: "", "Normalization"))
            continue;
        json_t *mean = json_object_get(cfg, "mean"), *var = json_object_get(cfg, "variance");
        if ((int64_t)json_array_size(mean) != cols || (int64_t)json_array_size(var) != cols) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s: the Normalization layer holds %zu means and %zu variances "
                              "for %lld features (only per-feature statistics given as lists are read)", path,
                              json_array_size(mean), json_array_size(var), (long long)cols);
            break;
        }
        n->kind = NORMALIZE_STANDARD;
        n->mean = dp_calloc((size_t)cols, sizeof(double), "normalization");
        n->std = dp_calloc((size_t)cols, sizeof(double), "normalization");
        for (int64_t j = 0; j < cols && rc == 0; j++) {
            double m = json_number_value(json_array_get(mean, (size_t)j));
            double v = json_number_value(json_array_get(var, (size_t)j));
            if (!json_is_number(json_array_get(var, (size_t)j)) || !(v >= 0) || !isfinite(m) || !isfinite(v))
                rc = dp_error_set(err, DP_EXIT_INPUT, "%s: the Normalization layer's statistics of feature %lld are "
                                  "not numbers >= 0", path, (long long)j + 1);
            n->mean[j] = m;
            /* Keras divides by max(sqrt(variance), 1e-7) */
            n->std[j] = fmax(sqrt(v), 1e-7);
        }
        break;
    }
    json_decref(config);
    return rc;
}
