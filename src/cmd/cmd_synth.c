#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cli.h"
#include "data/dataset.h"
#include "data/dataset_writer.h"
#include "base/timeutil.h"

static const char help[] =
    "usage: dptrain synth --rows N --features F --targets T [--test-rows M] [--seed S] -o OUT.h5\n"
    "\n"
    "Writes a synthetic regression data set like the seed tutorial's: x ~ U(0,1)^F, y ~ U(0,1)^T,\n"
    "as /train (N rows) and /test (M rows, default 0). Row i is the same numbers that a job with\n"
    "data.source = \"synthetic\" and fit.seed = S generates, so both train on identical data.\n"
    "Memory stays bounded: rows are generated and written in chunks.\n";

static void write_split(struct dataset_writer *w, const char *group, int64_t rows, int64_t features,
                        int64_t targets, uint64_t seed, int64_t first_row, const char *out)
{
    struct row_source src;
    row_source_open_synthetic(&src, rows, features, targets, seed, first_row);
    struct split_writer s;
    dataset_writer_split(w, &s, group, rows, &src.x_shape, X_DTYPE_FLOAT32, 0, targets);
    const int64_t chunk = 65536;
    float *x = dp_malloc((size_t)(chunk * features) * sizeof(float), "rows");
    float *y = dp_malloc((size_t)(chunk * targets) * sizeof(float), "rows");
    double t0 = time_now(), last = t0;
    for (int64_t start = 0; start < rows; start += chunk) {
        int64_t n = rows - start < chunk ? rows - start : chunk;
        row_source_read(&src, start, n, x, y, NULL);
        split_writer_append(&s, x, y, n, out);
        if (time_now() - last > 2.0) {
            last = time_now();
            fprintf(stderr, "synth: /%s %lld/%lld rows (%.0f%%)\n", group, (long long)(start + n),
                    (long long)rows, 100.0 * (double)(start + n) / (double)rows);
        }
    }
    split_writer_close(&s);
    free(x);
    free(y);
}

int cmd_synth(int argc, char **argv)
{
    int64_t rows = -1, features = 10, targets = 1, test_rows = 0, seed = 1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--rows")) {
            rows = cli_int64("--rows", cli_value(argc, argv, &i, "--rows"), 1, INT64_C(1) << 40);
        } else if (!strcmp(argv[i], "--features")) {
            features = cli_int64("--features", cli_value(argc, argv, &i, "--features"), 1, 1 << 20);
        } else if (!strcmp(argv[i], "--targets")) {
            targets = cli_int64("--targets", cli_value(argc, argv, &i, "--targets"), 1, 1 << 20);
        } else if (!strcmp(argv[i], "--test-rows")) {
            test_rows = cli_int64("--test-rows", cli_value(argc, argv, &i, "--test-rows"), 0, INT64_C(1) << 40);
        } else if (!strcmp(argv[i], "--seed")) {
            seed = cli_int64("--seed", cli_value(argc, argv, &i, "--seed"), 0, INT64_MAX);
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            out = cli_value(argc, argv, &i, "-o");
        } else {
            cli_unknown("synth", argv[i]);
        }
    }
    if (rows < 0 || !out)
        dp_die(DP_EXIT_INPUT, "synth: needs --rows N and -o OUT.h5 (see 'dptrain synth --help')");
    struct dp_error err = {0};
    struct dataset_writer w;
    if (dataset_writer_open(&w, out, &err) != 0)
        dp_die_error(&err);
    write_split(&w, "train", rows, features, targets, (uint64_t)seed, 0, out);
    if (test_rows > 0)
        write_split(&w, "test", test_rows, features, targets, (uint64_t)seed, rows, out);
    if (dataset_writer_commit(&w, &err) != 0)
        dp_die_error(&err);
    printf("%s: /train %lld rows", out, (long long)rows);
    if (test_rows)
        printf(", /test %lld rows", (long long)test_rows);
    printf(" of %lld features and %lld targets\n", (long long)features, (long long)targets);
    return 0;
}
