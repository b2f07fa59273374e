#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "data/dataset.h"
#include "base/h5io.h"
#include "train/history.h"
#include "train/weights_file.h"

static const char help[] =
    "usage: dptrain inspect FILE.h5\n"
    "\n"
    "Summarizes an HDF5 data set (groups, rows, shapes, types, label range) or a weights file\n"
    "(layers, weight shapes, and dptrain's training state: epoch, step, best metric, job text).\n";

static void inspect_split(const char *path, const char *group)
{
    char *paths[1] = {(char *)path};
    struct row_source s;
    struct dp_error err = {0};
    if (row_source_open_files(&s, paths, 1, group, &err) != 0)
        dp_die_error(&err);
    char shape[64];
    shape_format(shape, sizeof shape, &s.x_shape);
    printf("/%s: %lld rows; x %s %s (chunks of %lld rows); y ", group, (long long)s.rows,
           s.x_dtype == X_DTYPE_UINT8 ? "uint8" : "float32", shape, (long long)s.chunk_rows);
    if (s.y_labels) {
        int64_t chunk = 65536, counts[16] = {0};
        int32_t lo = INT32_MAX, hi = INT32_MIN;
        size_t xb = row_source_x_row_bytes(&s);
        void *x = dp_malloc((size_t)chunk * xb, "rows");
        int32_t *y = dp_malloc((size_t)chunk * sizeof(int32_t), "rows");
        for (int64_t start = 0; start < s.rows; start += chunk) {
            int64_t n = s.rows - start < chunk ? s.rows - start : chunk;
            if (row_source_read(&s, start, n, x, y, &err) != 0)
                dp_die_error(&err);
            for (int64_t i = 0; i < n; i++) {
                lo = y[i] < lo ? y[i] : lo;
                hi = y[i] > hi ? y[i] : hi;
                if (y[i] >= 0 && y[i] < 16)
                    counts[y[i]]++;
            }
        }
        printf("int32 labels %d..%d", lo, hi);
        if (lo >= 0 && hi < 16) {
            printf(" (counts:");
            for (int i = lo; i <= hi; i++)
                printf(" %d: %lld", i, (long long)counts[i]);
            printf(")");
        }
        free(x);
        free(y);
    } else {
        printf("float32 targets (None, %lld)", (long long)s.y_cols);
    }
    printf("\n");
    row_source_close(&s);
}

/* The last row of a checkpoint's history, when it has one. */
static void print_last_epoch(hid_t d, const char *path)
{
    if (H5Lexists(d, "history", H5P_DEFAULT) <= 0)
        return;
    int rank;
    int64_t dims[2];
    if (h5io_dataset_shape(d, "history", &rank, dims, 2, path, NULL) == 0 && rank == 2 && dims[0] > 0 &&
        dims[1] == HISTORY_COLUMNS) {
        double *h = dp_malloc((size_t)(dims[0] * dims[1]) * sizeof(double), "history");
        hid_t ds = H5Dopen2(d, "history", H5P_DEFAULT);
        if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, h) >= 0) {
            const double *r = h + (dims[0] - 1) * HISTORY_COLUMNS;
            printf("  last epoch (%d of %lld in the history): loss %.4f", (int)r[HISTORY_EPOCH],
                   (long long)dims[0], r[HISTORY_LOSS]);
            if (!isnan(r[HISTORY_METRIC]))
                printf(", metric %.4f", r[HISTORY_METRIC]);
            if (!isnan(r[HISTORY_VAL_LOSS]))
                printf(", val_loss %.4f", r[HISTORY_VAL_LOSS]);
            if (!isnan(r[HISTORY_VAL_METRIC]))
                printf(", val_metric %.4f", r[HISTORY_VAL_METRIC]);
            printf("\n");
        }
        H5Dclose(ds);
        free(h);
    }
}

static void print_class_names(const char *path)
{
    char **names = file_class_names(path);
    for (int i = 0; names && names[i]; i++)
        printf("%s%d=%s", i ? " " : "  classes: ", i, names[i]);
    if (names)
        printf("\n");
    h5io_strings_free(names);
}

/* dptrain's own state in a checkpoint: position, version, history, normalization, the job. */
static void inspect_state(const char *path, hid_t f)
{
    if (H5Lexists(f, "dptrain", H5P_DEFAULT) <= 0)
        return;
    hid_t d = H5Gopen2(f, "dptrain", H5P_DEFAULT);
    int64_t epoch = 0, step = 0, iters = 0, fv = 0;
    double best = NAN, lr = NAN;
    char *version = NULL, *job = NULL;
    h5io_read_attr_i64(d, "format_version", &fv, path, NULL);
    h5io_read_attr_string(d, "dptrain_version", &version, path, NULL);
    h5io_read_attr_i64(d, "epoch", &epoch, path, NULL);
    h5io_read_attr_i64(d, "step_in_epoch", &step, path, NULL);
    h5io_read_attr_i64(d, "iterations", &iters, path, NULL);
    h5io_read_attr_f64(d, "best", &best, path, NULL);
    h5io_read_attr_f64(d, "learning_rate", &lr, path, NULL);
    printf("dptrain state (format %lld, written by dptrain %s): epoch %lld, step %lld in epoch, %lld "
           "optimizer steps, learning rate %g, best monitored value %g\n",
           (long long)fv, version ? version : "?", (long long)epoch, (long long)step, (long long)iters,
           lr, best);
    print_last_epoch(d, path);
    print_class_names(path);
    if (H5Lexists(d, "normalization", H5P_DEFAULT) > 0)
        printf("  normalization: standard (mean and std stored)\n");
    if (h5io_read_attr_string(d, "job", &job, path, NULL) == 0 && job[0])
        printf("job:\n%s", job);
    free(version);
    free(job);
    H5Gclose(d);
}

static void inspect_weights(const char *path, hid_t f)
{
    struct dp_error err = {0};
    char **names;
    int n;
    if (h5io_read_attr_strings(f, "layer_names", &names, &n, path, &err) != 0)
        dp_die_error(&err);
    printf("%s: weights in Keras' legacy HDF5 layout, %d layers\n", path, n);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        hid_t g = H5Gopen2(f, names[i], H5P_DEFAULT);
        char **wn;
        int nw;
        if (g < 0 || h5io_read_attr_strings(g, "weight_names", &wn, &nw, path, &err) != 0)
            dp_die(DP_EXIT_INPUT, "%s: layer group '%s' is missing or has no weight_names", path, names[i]);
        printf("  %-16s", names[i]);
        if (nw == 0)
            printf(" (no weights)");
        for (int p = 0; p < nw; p++) {
            int rank;
            int64_t dims[8];
            if (h5io_dataset_shape(g, wn[p], &rank, dims, 8, path, &err) != 0)
                dp_die_error(&err);
            int64_t count = 1;
            printf(" %s (", wn[p]);
            for (int d = 0; d < rank; d++) {
                printf("%s%lld", d ? ", " : "", (long long)dims[d]);
                count *= dims[d];
            }
            printf(")");
            total += count;
        }
        printf("\n");
        h5io_strings_free(wn);
        H5Gclose(g);
    }
    printf("  total parameters: %lld\n", (long long)total);
    h5io_strings_free(names);
    inspect_state(path, f);
}

int cmd_inspect(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (argv[i][0] != '-' && !path) {
            path = argv[i];
        } else {
            cli_unknown("inspect", argv[i]);
        }
    }
    if (!path)
        dp_die(DP_EXIT_INPUT, "inspect: no file given");
    struct dp_error err = {0};
    hid_t f = h5io_open_read(path, &err);
    if (f < 0)
        dp_die_error(&err);
    if (H5Aexists(f, "layer_names") > 0) {
        inspect_weights(path, f);
    } else if (h5io_exists(f, "train") || h5io_exists(f, "test")) {
        printf("%s: data set\n", path);
        print_class_names(path);
        if (h5io_exists(f, "train"))
            inspect_split(path, "train");
        if (h5io_exists(f, "test"))
            inspect_split(path, "test");
    } else {
        H5Fclose(f);
        dp_die(DP_EXIT_INPUT, "%s: neither a dptrain data set (/train, /test) nor a weights file (layer_names)", path);
    }
    H5Fclose(f);
    return 0;
}
