#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "cmd/cli.h"
#include "data/csv.h"
#include "data/dataset_writer.h"
#include "data/mnist_idx.h"
#include "data/sklearn_split.h"

static const char help[] =
    "usage: dptrain import csv --x X.csv --y Y.csv -o OUT.h5 [--test-split F] [--seed S]\n"
    "\n"
    "Writes an HDF5 data set: /train/x float32 (rows, features) and /train/y, plus /test when\n"
    "--test-split is given. Y.csv with one integer column becomes int32 class labels; anything\n"
    "else becomes float32 targets (rows, columns). --test-split F moves ceil(F * rows) rows to /test,\n"
    "chosen exactly as scikit-learn's train_test_split(test_size=F, random_state=S) does, so the\n"
    "split matches the Keras tutorials. CSV files have no header; errors name file, line and field.\n";

static const char mnist_help[] =
    "usage: dptrain import mnist DIR -o OUT.h5\n"
    "\n"
    "Reads the four MNIST IDX files in DIR (train-images-idx3-ubyte, train-labels-idx1-ubyte,\n"
    "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; gzip-compressed (.gz) or not), checks their magic\n"
    "numbers, counts and sizes, and writes /train and /test: x uint8 (N, 28, 28, 1) images, channels\n"
    "last as Keras has them (scaled to [0, 1] when read), and y int32 labels.\n";

static int import_mnist(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(mnist_help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            out = cli_value(argc, argv, &i, "-o");
        } else if (argv[i][0] != '-' && !dir) {
            dir = argv[i];
        } else {
            cli_unknown("import mnist", argv[i]);
        }
    }
    if (!dir || !out)
        dp_die(DP_EXIT_INPUT, "import mnist: needs DIR and -o OUT.h5 (see 'dptrain import mnist --help')");
    static const char *const names[2][2] = {{"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
                                            {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}};
    struct dp_error err = {0};
    struct idx_file img[2], lab[2];
    for (int s = 0; s < 2; s++) {
        if (idx_open(&img[s], dir, names[s][0], 3, &err) != 0 || idx_open(&lab[s], dir, names[s][1], 1, &err) != 0)
            dp_die_error(&err);
        if (img[s].dims[0] != lab[s].dims[0])
            dp_die(DP_EXIT_INPUT, "%s has %lld images but %s has %lld labels", img[s].path, (long long)img[s].dims[0],
                   lab[s].path, (long long)lab[s].dims[0]);
        if (s == 1 && (img[1].dims[1] != img[0].dims[1] || img[1].dims[2] != img[0].dims[2]))
            dp_die(DP_EXIT_INPUT, "%s: images are %lldx%lld but the training images are %lldx%lld", img[1].path,
                   (long long)img[1].dims[1], (long long)img[1].dims[2], (long long)img[0].dims[1],
                   (long long)img[0].dims[2]);
    }
    const char *inputs[4] = {img[0].path, lab[0].path, img[1].path, lab[1].path};
    struct dataset_writer w;
    if (file_check_not_input(out, inputs, 4, &err) != 0 || dataset_writer_open(&w, out, &err) != 0)
        dp_die_error(&err);
    for (int s = 0; s < 2; s++) {
        int64_t n = img[s].dims[0], pix = img[s].dims[1] * img[s].dims[2];
        struct shape shape = {3, {img[s].dims[1], img[s].dims[2], 1}};
        struct split_writer sw;
        dataset_writer_split(&w, &sw, s == 0 ? "train" : "test", n, &shape, X_DTYPE_UINT8, 1, 1);
        const int64_t chunk = 10000;
        uint8_t *x = dp_malloc((size_t)(chunk * pix), "images"), *l8 = dp_malloc((size_t)chunk, "labels");
        int32_t *y = dp_malloc((size_t)chunk * sizeof(int32_t), "labels");
        for (int64_t done = 0; done < n; done += chunk) {
            int64_t k = n - done < chunk ? n - done : chunk;
            if (idx_read(&img[s], x, k * pix, &err) != 0 || idx_read(&lab[s], l8, k, &err) != 0) {
                dataset_writer_abort(&w);
                dp_die_error(&err);
            }
            for (int64_t i = 0; i < k; i++) {
                if (l8[i] > 9) {
                    dataset_writer_abort(&w);
                    dp_die(DP_EXIT_INPUT, "%s: label %d of item %lld is not a digit", lab[s].path, l8[i],
                           (long long)(done + i));
                }
                y[i] = l8[i];
            }
            split_writer_append(&sw, x, y, k, out);
        }
        split_writer_close(&sw);
        free(x);
        free(l8);
        free(y);
        idx_close(&img[s]);
        idx_close(&lab[s]);
        printf("%s: /%s %lld images of %lldx%lld, labels 0..9\n", out, s == 0 ? "train" : "test",
               (long long)n, (long long)img[s].dims[1], (long long)img[s].dims[2]);
    }
    if (dataset_writer_commit(&w, &err) != 0)
        dp_die_error(&err);
    return 0;
}

/* The CSV rows into OUT's /train and /test (sklearn: test = perm[:ntest], train = perm[ntest:]),
 * labels as int32 when y is one column of whole non-negative numbers. */
static void write_csv_splits(const char *out, const double *x, const double *y, int64_t xr, int64_t xc, int64_t yc,
                             int labels, const uint64_t *perm, int64_t ntest)
{
    struct dp_error err = {0};
    struct dataset_writer w;
    if (dataset_writer_open(&w, out, &err) != 0)
        dp_die_error(&err);
    float *xrow = dp_malloc((size_t)xc * sizeof(float), "a row");
    float *yrow = dp_malloc((size_t)yc * sizeof(float), "a row");
    struct shape xs = {1, {xc}};
    /* sklearn: test = perm[:ntest], train = perm[ntest:] */
    for (int part = 0; part < 2; part++) {
        int64_t first = part == 0 ? ntest : 0, count = part == 0 ? xr - ntest : ntest;
        if (count == 0)
            continue;
        struct split_writer s;
        dataset_writer_split(&w, &s, part == 0 ? "train" : "test", count, &xs, X_DTYPE_FLOAT32, labels, yc);
        for (int64_t i = 0; i < count; i++) {
            int64_t r = (int64_t)perm[first + i];
            for (int64_t j = 0; j < xc; j++)
                xrow[j] = (float)x[r * xc + j];
            if (labels) {
                int32_t label = (int32_t)y[r];
                split_writer_append(&s, xrow, &label, 1, out);
            } else {
                for (int64_t j = 0; j < yc; j++)
                    yrow[j] = (float)y[r * yc + j];
                split_writer_append(&s, xrow, yrow, 1, out);
            }
        }
        split_writer_close(&s);
    }
    if (dataset_writer_commit(&w, &err) != 0)
        dp_die_error(&err);
    free(xrow);
    free(yrow);
}

static int import_csv(int argc, char **argv)
{
    const char *xpath = NULL, *ypath = NULL, *out = NULL;
    double test_split = 0.0;
    int64_t seed = 0;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--x")) {
            xpath = cli_value(argc, argv, &i, "--x");
        } else if (!strcmp(argv[i], "--y")) {
            ypath = cli_value(argc, argv, &i, "--y");
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            out = cli_value(argc, argv, &i, "-o");
        } else if (!strcmp(argv[i], "--test-split")) {
            test_split = cli_double("--test-split", cli_value(argc, argv, &i, "--test-split"), 0.0, 0.99);
        } else if (!strcmp(argv[i], "--seed")) {
            seed = cli_int64("--seed", cli_value(argc, argv, &i, "--seed"), 0, UINT32_MAX);
        } else {
            cli_unknown("import csv", argv[i]);
        }
    }
    if (!xpath || !ypath || !out)
        dp_die(DP_EXIT_INPUT, "import csv: needs --x X.csv --y Y.csv -o OUT.h5");
    struct dp_error err = {0};
    const char *inputs[2] = {xpath, ypath};
    if (file_check_not_input(out, inputs, 2, &err) != 0 || file_check_output(out, &err) != 0)
        dp_die_error(&err);
    double *x, *y;
    int64_t xr, xc, yr, yc;
    if (csv_read(xpath, &x, &xr, &xc, &err) != 0 || csv_read(ypath, &y, &yr, &yc, &err) != 0)
        dp_die_error(&err);
    if (xr != yr)
        dp_die(DP_EXIT_INPUT, "%s has %lld rows but %s has %lld", xpath, (long long)xr, ypath, (long long)yr);
    int labels = yc == 1;
    for (int64_t i = 0; labels && i < yr; i++)
        labels = y[i] == floor(y[i]) && y[i] >= 0 && y[i] < 2147483647.0;
    int64_t ntest = (int64_t)ceil(test_split * (double)xr);
    if (test_split > 0 && (ntest < 1 || ntest >= xr))
        dp_die(DP_EXIT_INPUT, "--test-split %g leaves no training or no test rows of %lld", test_split, (long long)xr);
    uint64_t *perm = dp_malloc((size_t)xr * sizeof(uint64_t), "row order");
    if (test_split > 0) {
        sklearn_permutation(perm, xr, (uint32_t)seed);
    } else {
        for (int64_t i = 0; i < xr; i++)
            perm[i] = (uint64_t)i;
    }
    write_csv_splits(out, x, y, xr, xc, yc, labels, perm, ntest);
    printf("%s: /train %lld rows", out, (long long)(xr - ntest));
    if (ntest)
        printf(", /test %lld rows", (long long)ntest);
    printf("; x float32 (%lld features), y %s", (long long)xc, labels ? "int32 labels" : "float32 targets");
    if (labels) {
        double lo = y[0], hi = y[0];
        for (int64_t i = 1; i < yr; i++)
            lo = y[i] < lo ? y[i] : lo, hi = y[i] > hi ? y[i] : hi;
        printf(" %.0f..%.0f", lo, hi);
        if (lo > 0)
            printf(" (classes count from 0, as in Keras: a model for these needs %.0f outputs, or subtract %.0f)", hi + 1,
                   lo);
    }
    printf("\n");
    free(perm);
    free(x);
    free(y);
    return 0;
}

int cmd_import(int argc, char **argv)
{
    if (argc < 2)
        dp_die(DP_EXIT_INPUT, "import: which format? (known: csv, mnist, npy, images, keras; see 'dptrain import --help')");
    if (cli_is_help(argv[1])) {
        fputs(help, stdout);
        fputs("\n", stdout);
        fputs(mnist_help, stdout);
        fputs("\n", stdout);
        fputs(keras_import_help, stdout);
        fputs("\n", stdout);
        fputs(npy_import_help, stdout);
        fputs("\n", stdout);
        fputs(images_import_help, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "mnist"))
        return import_mnist(argc, argv);
    if (!strcmp(argv[1], "keras"))
        return cmd_import_keras(argc, argv);
    if (!strcmp(argv[1], "npy"))
        return cmd_import_npy(argc, argv);
    if (!strcmp(argv[1], "images"))
        return cmd_import_images(argc, argv);
    if (strcmp(argv[1], "csv"))
        dp_die(DP_EXIT_INPUT, "import: unknown format '%s' (known: csv, mnist, npy, images, keras)", argv[1]);
    return import_csv(argc, argv);
}
