#include "train/weights_file.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "base/h5io.h"
#include "base/zip_archive.h"

static const char *const opt_state_names[OPTIMIZER_MAX_STATE][OPTIMIZER_COUNT] = {
    {[OPTIMIZER_SGD] = "velocity", [OPTIMIZER_ADAM] = "m", [OPTIMIZER_RMSPROP] = "velocity", [OPTIMIZER_ADAMW] = "m",
     [OPTIMIZER_ADAGRAD] = "accumulator", [OPTIMIZER_NADAM] = "m"},
    {[OPTIMIZER_SGD] = "", [OPTIMIZER_ADAM] = "v", [OPTIMIZER_RMSPROP] = "", [OPTIMIZER_ADAMW] = "v",
     [OPTIMIZER_ADAGRAD] = "", [OPTIMIZER_NADAM] = "v"},
    {[OPTIMIZER_ADAM] = "vhat", [OPTIMIZER_ADAMW] = "vhat"},
};

/* Writes one arena-layout array as Keras-shaped datasets under loc: <layer>/<layer>/<weight>:0 */
static void write_arena_tensors(hid_t loc, const struct model *m, const float *host, const char *path,
                                int with_weight_names)
{
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        if (!with_weight_names && l->nparams == 0)
            continue;
        hid_t g = h5io_group_create(loc, l->name, path);
        char names[LAYER_MAX_PARAMS][160];
        const char *name_ptrs[LAYER_MAX_PARAMS];
        for (int p = 0; p < l->nparams; p++) {
            snprintf(names[p], sizeof names[p], "%s/%s:0", l->name, l->param_names[p]);
            name_ptrs[p] = names[p];
        }
        if (with_weight_names) {
            if (l->nparams > 0) {
                h5io_attr_strings(g, "weight_names", name_ptrs, l->nparams, path);
            } else {
                /* Keras writes an empty float64 array for weightless layers. */
                hsize_t zero = 0;
                hid_t space = H5Screate_simple(1, &zero, NULL);
                hid_t attr = H5Acreate2(g, "weight_names", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT);
                if (attr < 0)
                    dp_die(DP_EXIT_INTERNAL, "%s: HDF5 failed writing weight_names of %s", path, l->name);
                H5Aclose(attr);
                H5Sclose(space);
            }
        }
        if (l->nparams > 0) {
            hid_t inner = h5io_group_create(g, l->name, path);
            for (int p = 0; p < l->nparams; p++) {
                char ds[96];
                snprintf(ds, sizeof ds, "%s:0", l->param_names[p]);
                h5io_write_f32(inner, ds, l->param_shapes[p].rank, l->param_shapes[p].dims,
                               host + l->param_offsets[p], path);
            }
            H5Gclose(inner);
        }
        H5Gclose(g);
    }
}

static float *download_arena(const struct model *m, const float *arena)
{
    float *host = dp_malloc(m->arena_floats * sizeof(float), "a checkpoint copy");
    m->be->download(host, arena, m->arena_floats * sizeof(float));
    return host;
}

/* The training position's fields as attributes of /dptrain: described once, written and read from
 * this table. */
static const struct position_field {
    const char *name;
    int is_integer;  /* int64 attribute (else float64) */
    size_t offset;   /* in struct train_position */
    double min, max; /* the values a checkpoint may hold (a NaN double: only where `none` is allowed) */
    int nan_ok;
    int optional;    /* added later: a checkpoint without it reads as `absent` */
    double absent;
} position_fields[] = {
    {"epoch", 1, offsetof(struct train_position, epoch), 0, 1e9, 0},
    {"step_in_epoch", 1, offsetof(struct train_position, step_in_epoch), 0, 0x1p40, 0},
    {"iterations", 1, offsetof(struct train_position, iterations), 0, 0x1p52, 0},
    {"seed", 1, offsetof(struct train_position, seed), -0x1p63, 0x1p63, 0}, /* a uint64_t stored as int64 */
    {"best", 0, offsetof(struct train_position, best), -HUGE_VAL, HUGE_VAL, 1},
    {"best_epoch", 1, offsetof(struct train_position, best_epoch), -1, 1e9, 0},
    {"early_stopping_wait", 1, offsetof(struct train_position, wait), 0, 1e9, 0},
    {"learning_rate", 0, offsetof(struct train_position, lr), 0, 1e6, 0},
    {"early_stopping_best", 0, offsetof(struct train_position, es_best), -HUGE_VAL, HUGE_VAL, 1},
    {"epoch_loss_sum", 0, offsetof(struct train_position, epoch_loss_sum), 0, HUGE_VAL, 0},
    {"epoch_metric_sum", 0, offsetof(struct train_position, epoch_metric_sum), 0, HUGE_VAL, 0},
    {"epoch_rows", 0, offsetof(struct train_position, epoch_rows), 0, 0x1p62, 0},
    {"train_seconds", 0, offsetof(struct train_position, train_seconds), 0, 1e12, 0},
    {"samples", 1, offsetof(struct train_position, samples), 0, 0x1p62, 0},
    {"plateau_learning_rate", 0, offsetof(struct train_position, plateau_lr), 0, 1e6, 1, 1, NAN},
    {"plateau_best", 0, offsetof(struct train_position, plateau_best), -HUGE_VAL, HUGE_VAL, 1, 1, NAN},
    {"plateau_wait", 1, offsetof(struct train_position, plateau_wait), 0, 1e9, 0, 1, 0},
    {"plateau_cooldown", 1, offsetof(struct train_position, plateau_cooldown), 0, 1e9, 0, 1, 0},
    {"epoch_metric_den", 0, offsetof(struct train_position, epoch_metric_den), 0, HUGE_VAL, 0, 1, 0},
};
#define POSITION_FIELDS (sizeof position_fields / sizeof position_fields[0])

static void write_position(hid_t d, const struct train_position *pos, const char *where)
{
    for (size_t i = 0; i < POSITION_FIELDS; i++) {
        const void *at = (const char *)pos + position_fields[i].offset;
        if (position_fields[i].is_integer)
            h5io_attr_i64(d, position_fields[i].name, *(const int64_t *)at, where);
        else
            h5io_attr_f64(d, position_fields[i].name, *(const double *)at, where);
    }
}

/* Reads the position and checks every field against its range: a damaged or hostile checkpoint
 * must not resume at epoch -5 or 2^62 steps. */
static int read_position(hid_t d, struct train_position *pos, const char *path, struct dp_error *err)
{
    for (size_t i = 0; i < POSITION_FIELDS; i++) {
        const struct position_field *pf = &position_fields[i];
        void *at = (char *)pos + pf->offset;
        if (pf->optional && H5Aexists(d, pf->name) <= 0) {
            if (pf->is_integer)
                *(int64_t *)at = (int64_t)pf->absent;
            else
                *(double *)at = pf->absent;
            continue;
        }
        if (pf->is_integer ? h5io_read_attr_i64(d, pf->name, (int64_t *)at, path, err)
                           : h5io_read_attr_f64(d, pf->name, (double *)at, path, err))
            return -1;
        double v = pf->is_integer ? (double)*(int64_t *)at : *(double *)at;
        if (isnan(v) ? !pf->nan_ok : (v < pf->min || v > pf->max || (!pf->nan_ok && !isfinite(v))))
            return dp_error_set(err, DP_EXIT_INPUT, "%s: /dptrain %s = %.17g is impossible (damaged checkpoint?)",
                                path, pf->name, v);
    }
    if (pos->step_in_epoch > 0 && pos->iterations < pos->step_in_epoch)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: /dptrain step_in_epoch %lld exceeds iterations %lld (damaged "
                            "checkpoint?)", path, (long long)pos->step_in_epoch, (long long)pos->iterations);
    return 0;
}

/* /dptrain's groups and datasets beside the position: best weights kept by early stopping, the
 * normalization, the optimizer state, the history. */
static void write_state(hid_t d, const struct checkpoint_contents *c, const char *tmp)
{
    const struct model *m = c->model;
    if (c->es_best_weights) {
        hid_t g = h5io_group_create(d, "early_stopping_best_weights", tmp);
        write_arena_tensors(g, m, c->es_best_weights, tmp, 0);
        H5Gclose(g);
    }
    if (c->norm && c->norm->kind == NORMALIZE_STANDARD) {
        hid_t g = h5io_group_create(d, "normalization", tmp);
        h5io_attr_string(g, "kind", "standard", tmp);
        h5io_write_f64(g, "mean", 1, &c->norm->cols, c->norm->mean, tmp);
        h5io_write_f64(g, "std", 1, &c->norm->cols, c->norm->std, tmp);
        H5Gclose(g);
    }
    if (c->opt) {
        hid_t g = h5io_group_create(d, "optimizer", tmp);
        h5io_attr_string(g, "name", optimizer_names[c->opt->kind], tmp);
        for (int s = 0; s < c->nopt_state; s++) {
            float *state = download_arena(m, c->opt_state[s]);
            hid_t sg = h5io_group_create(g, opt_state_names[s][c->opt->kind], tmp);
            write_arena_tensors(sg, m, state, tmp, 0);
            H5Gclose(sg);
            free(state);
        }
        H5Gclose(g);
    }
    if (c->epoch_scores) { /* the auc metric's scores so far in this epoch, from every rank: score, label, ... */
        int64_t n = 2 * c->n_epoch_scores;
        h5io_write_f64(d, "epoch_scores", 1, &n, c->epoch_scores, tmp);
    }
    if (c->history && c->history->rows > 0) {
        static const char *const cols[HISTORY_COLUMNS] = {"epoch", "loss", "metric", "val_loss",
                                                          "val_metric", "seconds", "lr"};
        int64_t dims[2] = {c->history->rows, HISTORY_COLUMNS};
        h5io_write_f64(d, "history", 2, dims, c->history->v, tmp);
        hid_t ds = H5Dopen2(d, "history", H5P_DEFAULT);
        h5io_attr_strings(ds, "columns", cols, HISTORY_COLUMNS, tmp);
        H5Dclose(ds);
    }
}

int checkpoint_write(const char *path, const struct checkpoint_contents *c, struct dp_error *err)
{
    const struct model *m = c->model;
    float *weights = download_arena(m, m->params);
    for (int i = 0; i < m->nlayers; i++)
        for (int p = 0; p < m->layers[i].nparams; p++) {
            const float *w = weights + m->layers[i].param_offsets[p];
            int64_t n = shape_size(&m->layers[i].param_shapes[p]);
            for (int64_t j = 0; j < n; j++)
                if (!isfinite(w[j])) {
                    free(weights);
                    return dp_error_set(err, DP_EXIT_INTERNAL, "%s not written: weight %s/%s holds a "
                                        "non-finite value", path, m->layers[i].name,
                                        m->layers[i].param_names[p]);
                }
        }

    char tmp[4200];
    if (file_check_output(path, err) != 0) {
        free(weights);
        return -1;
    }
    hid_t f = h5io_create_temp(path, tmp, sizeof tmp, NULL);
    if (f < 0) {
        free(weights);
        return dp_error_set(err, DP_EXIT_INTERNAL, "%s: cannot create (directory missing or not "
                            "writable?)", tmp);
    }
    const char **layer_names = dp_calloc((size_t)m->nlayers, sizeof(char *), "layer names");
    for (int i = 0; i < m->nlayers; i++)
        layer_names[i] = m->layers[i].name;
    h5io_attr_strings(f, "layer_names", layer_names, m->nlayers, tmp);
    free(layer_names);
    h5io_attr_string(f, "backend", "tensorflow", tmp);
    h5io_attr_string(f, "keras_version", "2.15.0", tmp);
    write_arena_tensors(f, m, weights, tmp, 1);
    free(weights);

    hid_t d = h5io_group_create(f, "dptrain", tmp);
    h5io_attr_string(d, "format", CHECKPOINT_FORMAT, tmp);
    h5io_attr_i64(d, "format_version", CHECKPOINT_FORMAT_VERSION, tmp);
    h5io_attr_string(d, "dptrain_version", DPTRAIN_VERSION, tmp);
    h5io_attr_string(d, "job", c->job_text ? c->job_text : "", tmp);
    if (c->pos)
        write_position(d, c->pos, tmp);
    h5io_write_i64(d, "input_shape", 1, (int64_t[]){m->input_shape.rank}, m->input_shape.dims, tmp);
    h5io_attr_string(d, "input_dtype", c->input_uint8 ? "uint8" : "float32", tmp);
    if (c->class_names && c->class_names[0]) {
        int n = 0;
        while (c->class_names[n])
            n++;
        h5io_attr_strings(d, "class_names", (const char *const *)c->class_names, n, tmp);
    }
    write_state(d, c, tmp);
    H5Gclose(d);
    return h5io_commit_temp(f, tmp, path, 1, err);
}

/* Weights read from a file are all finite, or the file is refused (a NaN would train or evaluate
 * into nonsense without a word). */
static int check_finite(const struct model *m, const float *host, const char *path, struct dp_error *err)
{
    for (int i = 0; i < m->nlayers; i++)
        for (int p = 0; p < m->layers[i].nparams; p++) {
            const float *w = host + m->layers[i].param_offsets[p];
            for (int64_t j = 0; j < shape_size(&m->layers[i].param_shapes[p]); j++)
                if (!isfinite(w[j]))
                    return dp_error_set(err, DP_EXIT_INPUT, "%s: weight %s/%s holds a non-finite value (damaged "
                                        "file?)", path, m->layers[i].name, m->layers[i].param_names[p]);
        }
    return 0;
}

/* Keras 3's weights layout (model.save_weights("x.weights.h5"), and model.weights.h5 inside a
 * .keras file): /layers/<layer name>/vars/<i>, each layer's weights in its own order. Layers are
 * matched by name (Keras' names, which dptrain gives its layers too); the count of layers with
 * weights must agree both ways. */
static herr_t count_weighted_layer(hid_t group, const char *name, const H5L_info_t *info, void *count)
{
    (void)info;
    char vars[512];
    snprintf(vars, sizeof vars, "%s/vars", name);
    H5G_info_t gi;
    if (H5Lexists(group, name, H5P_DEFAULT) > 0 && H5Lexists(group, vars, H5P_DEFAULT) > 0 &&
        H5Gget_info_by_name(group, vars, &gi, H5P_DEFAULT) >= 0 && gi.nlinks > 0)
        ++*(int *)count;
    return 0;
}

static int read_keras3_weights(hid_t f, const struct model *m, float *host, const char *path, struct dp_error *err)
{
    int want = 0, have = 0;
    hid_t layers = H5Gopen2(f, "layers", H5P_DEFAULT);
    if (layers < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open /layers", path);
    H5Literate(layers, H5_INDEX_NAME, H5_ITER_INC, NULL, count_weighted_layer, &have);
    int rc = 0;
    for (int i = 0; i < m->nlayers && rc == 0; i++) {
        const struct layer *l = &m->layers[i];
        if (l->nparams == 0)
            continue;
        want++;
        char vars[300], where[700];
        snprintf(vars, sizeof vars, "%s/vars", l->name);
        H5G_info_t gi;
        if (H5Lexists(layers, l->name, H5P_DEFAULT) <= 0 || H5Lexists(layers, vars, H5P_DEFAULT) <= 0 ||
            H5Gget_info_by_name(layers, vars, &gi, H5P_DEFAULT) < 0) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s: no weights for layer %s (Keras 3 weights: no /layers/%s/vars)",
                              path, l->name, l->name);
            break;
        }
        if ((int)gi.nlinks != l->nparams) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s: layer %s has %d weights in the file but %d in the model", path,
                              l->name, (int)gi.nlinks, l->nparams);
            break;
        }
        snprintf(where, sizeof where, "%s (layer %s)", path, l->name);
        for (int p = 0; p < l->nparams && rc == 0; p++) {
            char name[320];
            snprintf(name, sizeof name, "%s/vars/%d", l->name, p);
            rc = h5io_read_f32_exact(layers, name, l->param_shapes[p].rank, l->param_shapes[p].dims,
                                     host + l->param_offsets[p], where, err);
        }
    }
    H5Gclose(layers);
    if (rc == 0 && have != want)
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: the file holds weights for %d layers but the model has %d layers "
                          "with weights", path, have, want);
    return rc;
}

/* One layer group of the legacy layout into the model's layer l: its weight_names, in order */
static int read_legacy_layer(hid_t g, const char *group, char **wn, int nw, const struct layer *l, int index,
                             float *host, const char *path, struct dp_error *err)
{
    if (nw != l->nparams)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: layer '%s' has %d weights but the model's layer %d (%s) has %d",
                            path, group, nw, index + 1, l->name, l->nparams);
    char where[600];
    snprintf(where, sizeof where, "%s (layer %s, model layer %s)", path, group, l->name);
    for (int p = 0; p < nw; p++)
        if (h5io_read_f32_exact(g, wn[p], l->param_shapes[p].rank, l->param_shapes[p].dims, host + l->param_offsets[p],
                                where, err) != 0)
            return -1;
    return 0;
}

/* The legacy layout (Keras 2's save_weights, dptrain's checkpoints) under root: the layers that
 * hold weights, in order, as Keras' loader takes them. */
static int read_legacy_weights(hid_t root, const struct model *m, float *host, const char *path, struct dp_error *err)
{
    char **names = NULL;
    int n = 0;
    if (h5io_read_attr_strings(root, "layer_names", &names, &n, path, err) != 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: not a weights file (no layer_names attribute)", path);
    int want = 0, have = 0, li = 0, rc = 0;
    for (int i = 0; i < m->nlayers; i++)
        want += m->layers[i].nparams > 0;
    for (int i = 0; i < n && rc == 0; i++) {
        hid_t g = H5Gopen2(root, names[i], H5P_DEFAULT);
        if (g < 0) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s: layer_names lists '%s' but there is no such group", path, names[i]);
            break;
        }
        char **wn = NULL;
        int nw = 0;
        rc = h5io_read_attr_strings(g, "weight_names", &wn, &nw, path, err);
        if (rc == 0 && nw > 0) {
            have++;
            while (li < m->nlayers && m->layers[li].nparams == 0)
                li++;
            if (li < m->nlayers) { /* beyond the model's: counted, reported below */
                rc = read_legacy_layer(g, names[i], wn, nw, &m->layers[li], li, host, path, err);
                li++;
            }
        }
        h5io_strings_free(wn);
        H5Gclose(g);
    }
    h5io_strings_free(names);
    if (rc == 0 && have != want)
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: the file holds weights for %d layers but the model has %d layers "
                          "with weights", path, have, want);
    return rc;
}

/* An HDF5 weights file, or the model.weights.h5 inside a .keras zip (read into memory: *image,
 * freed by the caller after H5Fclose) */
static hid_t open_weights(const char *path, void **image, struct dp_error *err)
{
    *image = NULL;
    if (!zip_archive_is_zip(path))
        return h5io_open_read(path, err);
    size_t len = 0;
    char *data = NULL;
    if (zip_archive_read(path, "model.weights.h5", &data, &len, err) != 0)
        return -1;
    char name[4200];
    snprintf(name, sizeof name, "%s (model.weights.h5)", path);
    hid_t f = h5io_open_image(data, len, name, err);
    if (f < 0)
        free(data);
    else
        *image = data;
    return f;
}

int weights_load(struct model *m, const char *path, struct dp_error *err)
{
    void *image;
    hid_t f = open_weights(path, &image, err);
    if (f < 0)
        return -1;
    float *host = dp_calloc(m->arena_floats, sizeof(float), "loaded weights");
    int rc;
    if (H5Aexists(f, "layer_names") > 0) {
        rc = read_legacy_weights(f, m, host, path, err);
    } else if (H5Lexists(f, "layers", H5P_DEFAULT) > 0) {
        rc = read_keras3_weights(f, m, host, path, err);
    } else if (H5Lexists(f, "model_weights", H5P_DEFAULT) > 0) {
        /* Keras' whole-model legacy file (model.save("x.h5")) keeps the weights under /model_weights */
        hid_t root = H5Gopen2(f, "model_weights", H5P_DEFAULT);
        rc = root < 0 ? dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open /model_weights", path)
                      : read_legacy_weights(root, m, host, path, err);
        if (root >= 0)
            H5Gclose(root);
    } else {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: not a weights file (no layer_names attribute, /layers or "
                          "/model_weights)", path);
    }
    if (rc == 0)
        rc = check_finite(m, host, path, err);
    if (rc == 0)
        m->be->upload(m->params, host, m->arena_floats * sizeof(float));
    free(host);
    H5Fclose(f);
    free(image);
    return rc;
}

int64_t weights_dense_input_width(const char *path, const char *layer)
{
    struct dp_error err;
    void *image;
    hid_t f = open_weights(path, &image, &err);
    if (f < 0)
        return 0;
    char name[600];
    snprintf(name, sizeof name, "layers/%s/vars/0", layer); /* Keras 3 */
    if (H5Lexists(f, "layers", H5P_DEFAULT) <= 0)
        snprintf(name, sizeof name, "%s%s/%s/kernel:0", H5Lexists(f, "model_weights", H5P_DEFAULT) > 0 ? "model_weights/" : "",
                 layer, layer); /* the legacy layout as dptrain and Keras 2 write it */
    int rank = 0;
    int64_t dims[4] = {0};
    H5E_BEGIN_TRY
    {
        if (H5Lexists(f, name, H5P_DEFAULT) <= 0 || h5io_dataset_shape(f, name, &rank, dims, 4, path, &err) != 0)
            rank = 0;
    }
    H5E_END_TRY
    H5Fclose(f);
    free(image);
    return rank == 2 ? dims[0] : 0;
}

int checkpoint_read_input(const char *path, struct checkpoint_input *in, struct dp_error *err)
{
    memset(in, 0, sizeof *in);
    hid_t f = h5io_open_read(path, err);
    if (f < 0)
        return -1;
    int rc = 0;
    hid_t d = H5Lexists(f, "dptrain", H5P_DEFAULT) > 0 ? H5Gopen2(f, "dptrain", H5P_DEFAULT) : -1;
    if (d < 0) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: not a dptrain checkpoint (no /dptrain group)", path);
    } else {
        if (h5io_exists(d, "input_shape")) {
            int rank = 0;
            int64_t n[1];
            rc = h5io_dataset_shape(d, "input_shape", &rank, n, 1, path, err);
            if (rc == 0 && (rank != 1 || n[0] < 1 || n[0] > SHAPE_MAX_RANK))
                rc = dp_error_set(err, DP_EXIT_INPUT, "%s: /dptrain/input_shape is not a shape (damaged?)", path);
            if (rc == 0)
                rc = h5io_read_i64_exact(d, "input_shape", n[0], in->shape.dims, path, err);
            in->shape.rank = (int)n[0];
            for (int i = 0; rc == 0 && i < in->shape.rank; i++)
                if (in->shape.dims[i] < 1 || in->shape.dims[i] > ((int64_t)1 << 31))
                    rc = dp_error_set(err, DP_EXIT_INPUT, "%s: /dptrain/input_shape holds %lld (damaged?)", path,
                                      (long long)in->shape.dims[i]);
            in->has_shape = rc == 0;
        }
        char *dtype = NULL;
        if (rc == 0 && H5Aexists(d, "input_dtype") > 0 && h5io_read_attr_string(d, "input_dtype", &dtype, path, err) == 0)
            in->uint8 = !strcmp(dtype, "uint8");
        free(dtype);
        if (rc == 0 && H5Aexists(d, "iterations") > 0)
            rc = h5io_read_attr_i64(d, "iterations", &in->iterations, path, err);
        H5Gclose(d);
    }
    H5Fclose(f);
    return rc;
}

char **file_class_names(const char *path)
{
    if (zip_archive_is_zip(path) || H5Fis_hdf5(path) <= 0)
        return NULL;
    struct dp_error err;
    hid_t f = h5io_open_read(path, &err);
    if (f < 0)
        return NULL;
    char **names = NULL;
    int n = 0;
    /* a checkpoint keeps them under /dptrain, a data set at its root */
    hid_t loc = H5Lexists(f, "dptrain", H5P_DEFAULT) > 0 ? H5Gopen2(f, "dptrain", H5P_DEFAULT) : f;
    if (H5Aexists(loc, "class_names") > 0 && h5io_read_attr_strings(loc, "class_names", &names, &n, path, &err) != 0)
        names = NULL;
    if (loc != f)
        H5Gclose(loc);
    H5Fclose(f);
    return names;
}

int checkpoint_read_normalizer(const char *path, struct normalizer *n, int64_t cols, struct dp_error *err)
{
    normalizer_init_none(n, cols);
    hid_t f = h5io_open_read(path, err);
    if (f < 0)
        return -1;
    int rc = 0;
    if (H5Lexists(f, "/dptrain", H5P_DEFAULT) > 0 && H5Lexists(f, "/dptrain/normalization", H5P_DEFAULT) > 0) {
        n->kind = NORMALIZE_STANDARD;
        n->mean = dp_calloc((size_t)cols, sizeof(double), "normalization");
        n->std = dp_calloc((size_t)cols, sizeof(double), "normalization");
        hid_t g = H5Gopen2(f, "/dptrain/normalization", H5P_DEFAULT);
        rc = h5io_read_f64_exact(g, "mean", cols, n->mean, path, err);
        if (rc == 0)
            rc = h5io_read_f64_exact(g, "std", cols, n->std, path, err);
        H5Gclose(g);
    }
    H5Fclose(f);
    return rc;
}

/* Reads datasets written by write_arena_tensors(with_weight_names = 0) into a host arena. */
static int read_arena_tensors(hid_t loc, const struct model *m, float *host, const char *where,
                              struct dp_error *err)
{
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        for (int p = 0; p < l->nparams; p++) {
            char name[256];
            snprintf(name, sizeof name, "%s/%s/%s:0", l->name, l->name, l->param_names[p]);
            if (H5Lexists(loc, l->name, H5P_DEFAULT) <= 0)
                return dp_error_set(err, DP_EXIT_INPUT, "%s: no state for layer %s", where, l->name);
            if (h5io_read_f32_exact(loc, name, l->param_shapes[p].rank, l->param_shapes[p].dims,
                                    host + l->param_offsets[p], where, err) != 0)
                return -1;
        }
    }
    return 0;
}

int checkpoint_read_job_text(const char *path, char **text, struct dp_error *err)
{
    *text = NULL;
    hid_t f = h5io_open_read(path, err);
    if (f < 0)
        return -1;
    int rc = 0;
    char *format = NULL;
    if (H5Lexists(f, "dptrain", H5P_DEFAULT) <= 0) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: not a dptrain checkpoint (no /dptrain group)", path);
    } else {
        hid_t d = H5Gopen2(f, "dptrain", H5P_DEFAULT);
        if (h5io_read_attr_string(d, "format", &format, path, err) != 0 || strcmp(format, CHECKPOINT_FORMAT))
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s: not a dptrain checkpoint (format attribute)", path);
        else
            rc = h5io_read_attr_string(d, "job", text, path, err);
        H5Gclose(d);
    }
    free(format);
    H5Fclose(f);
    return rc;
}

/* The history: one row per epoch completed (max_rows), never more. */
static int read_history(hid_t d, struct history *h, int64_t max_rows, const char *path, struct dp_error *err)
{
    if (H5Lexists(d, "history", H5P_DEFAULT) <= 0)
        return 0;
    int rank;
    int64_t dims[2];
    if (h5io_dataset_shape(d, "history", &rank, dims, 2, path, err) != 0)
        return -1;
    if (rank != 2 || dims[1] != HISTORY_COLUMNS || dims[0] > max_rows)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: /dptrain/history has an unexpected shape (%lld rows for %lld "
                            "epochs)", path, (long long)dims[0], (long long)max_rows);
    h->rows = h->cap = dims[0];
    h->v = dp_malloc((size_t)(dims[0] * HISTORY_COLUMNS) * sizeof(double), "history");
    hid_t ds = H5Dopen2(d, "history", H5P_DEFAULT);
    herr_t r = H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, h->v);
    H5Dclose(ds);
    return r < 0 ? dp_error_set(err, DP_EXIT_INPUT, "%s: cannot read /dptrain/history", path) : 0;
}

static int read_optimizer_state(hid_t d, const struct model *m, struct checkpoint_state *st, const char *path,
                                struct dp_error *err)
{
    if (H5Lexists(d, "optimizer", H5P_DEFAULT) <= 0)
        return 0;
    hid_t g = H5Gopen2(d, "optimizer", H5P_DEFAULT);
    int bad = h5io_read_attr_string(g, "name", &st->optimizer, path, err) != 0;
    for (int k = 0; !bad && k < OPTIMIZER_COUNT; k++) {
        if (strcmp(st->optimizer, optimizer_names[k]))
            continue;
        for (int s = 0; s < OPTIMIZER_MAX_STATE && !bad; s++) {
            const char *name = opt_state_names[s][k];
            if (!name || !name[0] || H5Lexists(g, name, H5P_DEFAULT) <= 0)
                continue;
            hid_t sg = H5Gopen2(g, name, H5P_DEFAULT);
            st->opt_state[s] = dp_calloc(m->arena_floats, sizeof(float), "optimizer state");
            st->nopt_state = s + 1;
            bad = read_arena_tensors(sg, m, st->opt_state[s], path, err) != 0;
            H5Gclose(sg);
        }
    }
    H5Gclose(g);
    return bad ? -1 : 0;
}

int checkpoint_read_state(const char *path, const struct model *m, struct checkpoint_state *st,
                          struct dp_error *err)
{
    memset(st, 0, sizeof *st);
    normalizer_init_none(&st->norm, m->input_size);
    if (checkpoint_read_job_text(path, &st->job_text, err) != 0)
        return -1;
    hid_t f = h5io_open_read(path, err);
    if (f < 0)
        return -1;
    hid_t d = H5Gopen2(f, "dptrain", H5P_DEFAULT);
    int rc = -1;
    int64_t version = 0;
    struct train_position *p = &st->pos;
    if (h5io_read_attr_i64(d, "format_version", &version, path, err) != 0)
        goto done;
    if (version != CHECKPOINT_FORMAT_VERSION) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: checkpoint format version %lld; this dptrain reads version %d",
                     path, (long long)version, CHECKPOINT_FORMAT_VERSION);
        goto done;
    }
    if (read_position(d, p, path, err) != 0)
        goto done;
    if (read_history(d, &st->history, p->epoch, path, err) != 0 || read_optimizer_state(d, m, st, path, err) != 0)
        goto done;
    if (H5Lexists(d, "epoch_scores", H5P_DEFAULT) > 0) {
        int rank = 0;
        int64_t n = 0;
        if (h5io_dataset_shape(d, "epoch_scores", &rank, &n, 1, path, err) != 0)
            goto done;
        if (rank != 1 || n % 2 || n / 2 > p->epoch_rows) {
            dp_error_set(err, DP_EXIT_INPUT, "%s: /dptrain/epoch_scores does not fit the epoch (damaged checkpoint?)", path);
            goto done;
        }
        st->n_epoch_scores = n / 2;
        st->epoch_scores = dp_malloc((size_t)(n + 1) * sizeof(double), "epoch scores");
        if (h5io_read_f64_exact(d, "epoch_scores", n, st->epoch_scores, path, err) != 0)
            goto done;
    }
    if (H5Lexists(d, "early_stopping_best_weights", H5P_DEFAULT) > 0) {
        hid_t g = H5Gopen2(d, "early_stopping_best_weights", H5P_DEFAULT);
        st->es_best_weights = dp_calloc(m->arena_floats, sizeof(float), "best weights");
        int bad = read_arena_tensors(g, m, st->es_best_weights, path, err) != 0;
        H5Gclose(g);
        if (bad)
            goto done;
    }
    H5Gclose(d);
    d = -1;
    H5Fclose(f);
    f = -1;
    rc = checkpoint_read_normalizer(path, &st->norm, m->input_size, err);
done:
    if (d >= 0)
        H5Gclose(d);
    if (f >= 0)
        H5Fclose(f);
    return rc;
}

void checkpoint_state_free(struct checkpoint_state *st)
{
    history_free(&st->history);
    free(st->job_text);
    free(st->optimizer);
    for (int i = 0; i < OPTIMIZER_MAX_STATE; i++)
        free(st->opt_state[i]);
    free(st->es_best_weights);
    free(st->epoch_scores);
    normalizer_free(&st->norm);
    memset(st, 0, sizeof *st);
}
