#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "csv.h"
#include "dataset_writer.h"
#include "sklearn_split.h"

static const char help[] =
    "usage: dptrain import csv --x X.csv --y Y.csv -o OUT.h5 [--test-split F] [--seed S]\n"
    "\n"
    "Writes an HDF5 data set: /train/x float32 (rows, features) and /train/y, plus /test when\n"
    "--test-split is given. Y.csv with one integer column becomes int32 class labels; anything\n"
    "else becomes float32 targets (rows, columns). --test-split F moves ceil(F * rows) rows to /test,\n"
    "chosen exactly as scikit-learn's train_test_split(test_size=F, random_state=S) does, so the\n"
    "split matches the Keras tutorials. CSV files have no header; errors name file, line and field.\n";

int cmd_import(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "csv"))
        dp_die(DP_EXIT_INPUT, "import: unknown format '%s' (known: csv)", argv[1]);
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
    printf("%s: /train %lld rows", out, (long long)(xr - ntest));
    if (ntest)
        printf(", /test %lld rows", (long long)ntest);
    printf("; x float32 (%lld features), y %s\n", (long long)xc,
           labels ? "int32 labels" : "float32 targets");
    free(xrow);
    free(yrow);
    free(perm);
    free(x);
    free(y);
    return 0;
}
