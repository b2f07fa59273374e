/* dptrain import npy: NumPy arrays (.npy files, or the members of an .npz) into an HDF5 data set,
 * streamed in chunks of rows (data/npy.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file_checks.h"
#include "base/timeutil.h"
#include "cmd/cli.h"
#include "data/dataset_writer.h"
#include "data/npy.h"
#include "data/sklearn_split.h"

const char npy_import_help[] =
    "usage: dptrain import npy --x X.npy --y Y.npy -o OUT.h5 [--test-split F] [--seed S]\n"
    "       dptrain import npy --npz DATA.npz [--x-key K] [--y-key K] -o OUT.h5 [--test-split F] [--seed S]\n"
    "\n"
    "Writes NumPy arrays (numpy.save, numpy.savez) as an HDF5 data set: rows are the first axis. x is\n"
    "any numeric dtype in either byte order (bool, int8-64, uint8-64, float16-64, longdouble), C or\n"
    "Fortran order; uint8 x is kept as uint8 (pixels: dptrain scales them to [0, 1]), any other as\n"
    "float32, and its shape after the rows (28, 28, 1) is kept. y of an integer or bool dtype, one\n"
    "value per row, is class labels (int32, from 0); float y is targets (float32). --test-split F puts\n"
    "the same rows in /test as scikit-learn's train_test_split(test_size=F, random_state=S) (and as\n"
    "'import csv'); without it every row goes to /train. An .npz's arrays are named by --x-key and\n"
    "--y-key (default x and y); one holding x_train, y_train, x_test and y_test (Keras' mnist.npz)\n"
    "gives /train and /test from those. Rows are read in chunks: memory stays bounded, except for a\n"
    "Fortran-order array, or a compressed .npz split by --test-split, which are read whole first.\n";

struct npy_options {
    const char *x, *y, *npz, *x_key, *y_key, *out;
    double test_split;
    int64_t seed;
};

/* x and y of one part of the output, and which of their rows go there in order */
struct npy_part {
    struct npy_array *x, *y;
    const uint64_t *rows; /* NULL: all, in order */
    int64_t count;
    const char *group;
};

struct npy_target {
    int labels;        /* y holds class labels */
    int64_t y_cols;
    enum x_dtype x_dtype;
    struct shape x_shape;
};

static int check_pair(const struct npy_array *x, const struct npy_array *y, struct npy_target *t, struct dp_error *err)
{
    if (x->rows != y->rows)
        return dp_error_set(err, DP_EXIT_INPUT, "%s has %lld rows but %s has %lld", x->where, (long long)x->rows, y->where,
                            (long long)y->rows);
    if (x->rank < 1 || x->rank > SHAPE_MAX_RANK + 1 || x->row_items < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: x needs rows and at most %d more axes (its shape has %d)", x->where,
                            SHAPE_MAX_RANK, x->rank);
    if (y->rank < 1 || y->rank > 2 || y->row_items < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: y needs the shape (rows,) or (rows, k)", y->where);
    t->x_shape = x->rank == 1 ? (struct shape){1, {1}} : (struct shape){x->rank - 1, {0}};
    for (int i = 1; i < x->rank; i++)
        t->x_shape.dims[i - 1] = x->shape[i];
    t->x_dtype = x->kind == NPY_KIND_UINT && x->itemsize == 1 ? X_DTYPE_UINT8 : X_DTYPE_FLOAT32;
    t->labels = y->kind != NPY_KIND_FLOAT && y->row_items == 1;
    t->y_cols = y->row_items;
    if (y->kind != NPY_KIND_FLOAT && y->row_items > 1)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: integer y with %lld values per row: labels are one per row (for "
                            "one-hot rows, save y.argmax(1); for targets, a float dtype)", y->where,
                            (long long)y->row_items);
    return 0;
}

/* The values of one chunk of rows into the writer's types; bad values are named */
static int convert_chunk(const struct npy_part *p, const struct npy_target *t, int64_t done, int64_t n,
                         const double *xd, const double *yd, void *xo, void *yo, struct dp_error *err)
{
    int64_t xi = p->x->row_items;
    for (int64_t r = 0; r < n; r++) {
        int64_t src_row = p->rows ? (int64_t)p->rows[done + r] : done + r;
        for (int64_t j = 0; j < xi; j++) {
            double v = xd[r * xi + j];
            if (!isfinite(v))
                return dp_error_set(err, DP_EXIT_INPUT, "%s: row %lld holds %s (clean or drop it first)", p->x->where,
                                    (long long)src_row, isnan(v) ? "NaN" : "an infinity");
            if (t->x_dtype == X_DTYPE_UINT8)
                ((uint8_t *)xo)[r * xi + j] = (uint8_t)v;
            else
                ((float *)xo)[r * xi + j] = (float)v;
        }
        for (int64_t j = 0; j < t->y_cols; j++) {
            double v = yd[r * t->y_cols + j];
            if (!isfinite(v))
                return dp_error_set(err, DP_EXIT_INPUT, "%s: row %lld holds %s", p->y->where, (long long)src_row,
                                    isnan(v) ? "NaN" : "an infinity");
            if (t->labels && (v < 0 || v > 2147483647.0))
                return dp_error_set(err, DP_EXIT_INPUT, "%s: row %lld holds label %.0f: labels count from 0 (as in "
                                    "Keras)", p->y->where, (long long)src_row, v);
            if (t->labels)
                ((int32_t *)yo)[r] = (int32_t)v;
            else
                ((float *)yo)[r * t->y_cols + j] = (float)v;
        }
    }
    return 0;
}

/* Reads rows [done, done + n) of the part (runs of consecutive source rows read at once) */
static int read_part_rows(const struct npy_part *p, int64_t done, int64_t n, double *xd, double *yd,
                          struct dp_error *err)
{
    for (int64_t r = 0; r < n;) {
        int64_t first = p->rows ? (int64_t)p->rows[done + r] : done + r, run = 1;
        while (r + run < n && (!p->rows || (int64_t)p->rows[done + r + run] == first + run))
            run++;
        if (npy_read_rows(p->x, first, run, xd + r * p->x->row_items, err) != 0 ||
            npy_read_rows(p->y, first, run, yd + r * p->y->row_items, err) != 0)
            return -1;
        r += run;
    }
    return 0;
}

static int write_part(struct dataset_writer *w, const struct npy_part *p, const struct npy_target *t,
                      int64_t *labels_range, struct dp_error *err)
{
    struct split_writer s;
    dataset_writer_split(w, &s, p->group, p->count, &t->x_shape, t->x_dtype, t->labels, t->y_cols);
    int64_t xi = p->x->row_items;
    int64_t chunk = (16 << 20) / (8 * (xi + t->y_cols));
    chunk = chunk < 1 ? 1 : chunk;
    double *xd = dp_malloc((size_t)(chunk * xi) * sizeof(double), "rows");
    double *yd = dp_malloc((size_t)(chunk * t->y_cols) * sizeof(double), "rows");
    void *xo = dp_malloc((size_t)(chunk * xi) * 4, "rows");
    void *yo = dp_malloc((size_t)(chunk * t->y_cols) * 4, "rows");
    double last_report = time_now();
    int rc = 0;
    for (int64_t done = 0; done < p->count && rc == 0; done += chunk) {
        int64_t n = p->count - done < chunk ? p->count - done : chunk;
        rc = read_part_rows(p, done, n, xd, yd, err);
        if (rc == 0)
            rc = convert_chunk(p, t, done, n, xd, yd, xo, yo, err);
        if (rc == 0) {
            split_writer_append(&s, xo, yo, n, w->path);
            for (int64_t r = 0; t->labels && r < n; r++) {
                int32_t v = ((int32_t *)yo)[r];
                labels_range[0] = v < labels_range[0] ? v : labels_range[0];
                labels_range[1] = v > labels_range[1] ? v : labels_range[1];
            }
        }
        if (time_now() - last_report > 10) {
            fprintf(stderr, "import npy: /%s %lld of %lld rows\n", p->group, (long long)(done + n), (long long)p->count);
            last_report = time_now();
        }
    }
    split_writer_close(&s);
    free(xd);
    free(yd);
    free(xo);
    free(yo);
    return rc;
}

static void parse(int argc, char **argv, struct npy_options *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(npy_import_help, stdout);
            exit(0);
        } else if (!strcmp(argv[i], "--x")) {
            o->x = cli_value(argc, argv, &i, "--x");
        } else if (!strcmp(argv[i], "--y")) {
            o->y = cli_value(argc, argv, &i, "--y");
        } else if (!strcmp(argv[i], "--npz")) {
            o->npz = cli_value(argc, argv, &i, "--npz");
        } else if (!strcmp(argv[i], "--x-key")) {
            o->x_key = cli_value(argc, argv, &i, "--x-key");
        } else if (!strcmp(argv[i], "--y-key")) {
            o->y_key = cli_value(argc, argv, &i, "--y-key");
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            o->out = cli_value(argc, argv, &i, "-o");
        } else if (!strcmp(argv[i], "--test-split")) {
            o->test_split = cli_double("--test-split", cli_value(argc, argv, &i, "--test-split"), 0.0, 0.99);
        } else if (!strcmp(argv[i], "--seed")) {
            o->seed = cli_int64("--seed", cli_value(argc, argv, &i, "--seed"), 0, UINT32_MAX);
        } else {
            cli_unknown("import npy", argv[i]);
        }
    }
    if (!o->out || (o->npz ? (o->x || o->y) : (!o->x || !o->y)))
        dp_die(DP_EXIT_INPUT, "import npy: needs --x X.npy --y Y.npy, or --npz DATA.npz, and -o OUT.h5 (see 'dptrain "
               "import npy --help')");
    if (!o->npz && (o->x_key || o->y_key))
        dp_die(DP_EXIT_INPUT, "import npy: --x-key and --y-key name arrays of an --npz file");
}

/* An .npz with x_train, y_train, x_test, y_test and no keys asked for: its own split */
static int npz_has_split(const struct npy_options *o)
{
    if (!o->npz || o->x_key || o->y_key)
        return 0;
    struct npy_array a;
    struct dp_error e = {0};
    if (npy_open(&a, o->npz, "x", &e) == 0) {
        npy_close(&a);
        return 0;
    }
    if (npy_open(&a, o->npz, "x_train", &e) != 0)
        return 0;
    npy_close(&a);
    return 1;
}

int cmd_import_npy(int argc, char **argv)
{
    struct npy_options o;
    parse(argc, argv, &o);
    struct dp_error err = {0};
    const char *inputs[3] = {o.npz ? o.npz : o.x, o.y ? o.y : o.npz, o.npz};
    if (file_check_not_input(o.out, inputs, 3, &err) != 0 || file_check_output(o.out, &err) != 0)
        dp_die_error(&err);
    int given_split = npz_has_split(&o);
    if (given_split && o.test_split > 0)
        dp_die(DP_EXIT_INPUT, "import npy: %s holds its own split (x_train, x_test): --test-split would split again",
               o.npz);
    struct npy_array arrays[4];
    int narrays = given_split ? 4 : 2;
    static const char *const split_keys[4] = {"x_train", "y_train", "x_test", "y_test"};
    for (int i = 0; i < narrays; i++) {
        const char *key = given_split ? split_keys[i] : i == 0 ? (o.x_key ? o.x_key : "x") : (o.y_key ? o.y_key : "y");
        if (npy_open(&arrays[i], o.npz ? o.npz : i == 0 ? o.x : o.y, o.npz ? key : NULL, &err) != 0)
            dp_die_error(&err);
    }
    struct npy_target t, t_test;
    if (check_pair(&arrays[0], &arrays[1], &t, &err) != 0 ||
        (given_split && check_pair(&arrays[2], &arrays[3], &t_test, &err) != 0))
        dp_die_error(&err);
    if (given_split && (t_test.x_dtype != t.x_dtype || t_test.labels != t.labels || t_test.y_cols != t.y_cols ||
                        memcmp(&t_test.x_shape, &t.x_shape, sizeof t.x_shape)))
        dp_die(DP_EXIT_INPUT, "%s: x_test and y_test do not match x_train and y_train in shape or dtype", o.npz);

    struct npy_part parts[2];
    int nparts = 0;
    uint64_t *perm = NULL;
    int64_t rows = arrays[0].rows, ntest = 0;
    if (given_split) {
        parts[nparts++] = (struct npy_part){&arrays[0], &arrays[1], NULL, arrays[0].rows, "train"};
        if (arrays[2].rows > 0)
            parts[nparts++] = (struct npy_part){&arrays[2], &arrays[3], NULL, arrays[2].rows, "test"};
        ntest = arrays[2].rows;
    } else if (o.test_split > 0) {
        ntest = (int64_t)ceil(o.test_split * (double)rows);
        if (ntest < 1 || ntest >= rows)
            dp_die(DP_EXIT_INPUT, "--test-split %g leaves no training or no test rows of %lld", o.test_split,
                   (long long)rows);
        perm = dp_malloc((size_t)rows * sizeof(uint64_t), "row order");
        sklearn_permutation(perm, rows, (uint32_t)o.seed);
        for (int i = 0; i < 2; i++)
            if (npy_prepare_random(&arrays[i], &err) != 0)
                dp_die_error(&err);
        /* scikit-learn: test = perm[:ntest], train = perm[ntest:] */
        parts[nparts++] = (struct npy_part){&arrays[0], &arrays[1], perm + ntest, rows - ntest, "train"};
        parts[nparts++] = (struct npy_part){&arrays[0], &arrays[1], perm, ntest, "test"};
    } else {
        parts[nparts++] = (struct npy_part){&arrays[0], &arrays[1], NULL, rows, "train"};
    }
    if (parts[0].count == 0)
        dp_die(DP_EXIT_INPUT, "%s: no rows", arrays[0].where);

    struct dataset_writer w;
    if (dataset_writer_open(&w, o.out, &err) != 0)
        dp_die_error(&err);
    int64_t range[2] = {INT64_MAX, INT64_MIN};
    for (int i = 0; i < nparts; i++)
        if (write_part(&w, &parts[i], &t, range, &err) != 0) {
            dataset_writer_abort(&w);
            dp_die_error(&err);
        }
    if (dataset_writer_commit(&w, &err) != 0)
        dp_die_error(&err);

    char xd[200], yd[200];
    npy_describe(&arrays[0], xd, sizeof xd);
    npy_describe(&arrays[1], yd, sizeof yd);
    printf("%s: /train %lld rows", o.out, (long long)parts[0].count);
    if (ntest)
        printf(", /test %lld rows", (long long)ntest);
    printf("; x %s from %s, y %s from %s", t.x_dtype == X_DTYPE_UINT8 ? "uint8" : "float32", xd,
           t.labels ? "int32 labels" : "float32 targets", yd);
    if (t.labels)
        printf(" %lld..%lld", (long long)range[0], (long long)range[1]);
    printf("\n");
    for (int i = 0; i < narrays; i++)
        npy_close(&arrays[i]);
    free(perm);
    return 0;
}
