#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "cmd/cli.h"
#include "data/dataset.h"
#include "data/dataset_writer.h"
#include "base/h5io.h"

static const char help[] =
    "usage: dptrain shard IN.h5 -n K [-o PREFIX]\n"
    "\n"
    "Splits the data set IN.h5 into K files PREFIX-00000-of-0000K.h5 ... (default PREFIX: IN without\n"
    ".h5). /train and /test are each cut into K runs of consecutive rows (sizes differ by at most one),\n"
    "so a job with data.file = [the shards in order] (or a glob) sees exactly the rows of IN.h5 in\n"
    "the same order and trains identically. Rows are copied in chunks; memory stays bounded.\n";

static void copy_rows(const struct row_source *src, struct split_writer *w, int64_t start, int64_t count,
                      const char *out)
{
    const int64_t chunk = 65536;
    size_t xb = row_source_x_row_bytes(src), yb = row_source_y_row_bytes(src);
    void *x = dp_malloc((size_t)chunk * xb, "rows"), *y = dp_malloc((size_t)chunk * yb, "rows");
    struct dp_error err;
    for (int64_t done = 0; done < count; done += chunk) {
        int64_t n = count - done < chunk ? count - done : chunk;
        if (row_source_read(src, start + done, n, x, y, &err) != 0)
            dp_die_error(&err);
        split_writer_append(w, x, y, n, out);
    }
    free(x);
    free(y);
}

int cmd_shard(int argc, char **argv)
{
    const char *in = NULL, *prefix = NULL;
    int64_t k = 0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "-n")) {
            k = cli_int64("-n", cli_value(argc, argv, &i, "-n"), 1, 100000);
        } else if (!strcmp(argv[i], "-o")) {
            prefix = cli_value(argc, argv, &i, "-o");
        } else if (argv[i][0] != '-' && !in) {
            in = argv[i];
        } else {
            cli_unknown("shard", argv[i]);
        }
    }
    if (!in || k < 1)
        dp_die(DP_EXIT_INPUT, "shard: needs IN.h5 and -n K (see 'dptrain shard --help')");
    char base[4096];
    snprintf(base, sizeof base, "%s", prefix ? prefix : in);
    size_t len = strlen(base);
    if (!prefix && len > 3 && !strcmp(base + len - 3, ".h5"))
        base[len - 3] = 0;
    char *paths[1] = {(char *)in};
    const char *groups[2] = {"train", "test"};
    struct row_source src[2];
    int have[2];
    struct dp_error err;
    for (int g = 0; g < 2; g++) {
        have[g] = row_source_files_have_group(paths, 1, groups[g]);
        if (g == 0 && !have[g]) {
            hid_t f = h5io_open_read(in, &err); /* names the actual problem when the file is bad */
            if (f < 0)
                dp_die_error(&err);
            H5Fclose(f);
            dp_die(DP_EXIT_INPUT, "%s: no /train group to shard", in);
        }
        if (have[g] && row_source_open_files(&src[g], paths, 1, groups[g], &err) != 0)
            dp_die_error(&err);
    }
    for (int64_t s = 0; s < k; s++) {
        char out[4200];
        snprintf(out, sizeof out, "%s-%05lld-of-%05lld.h5", base, (long long)s, (long long)k);
        struct dataset_writer w;
        const char *inputs[1] = {in};
        if (file_check_not_input(out, inputs, 1, &err) != 0 || dataset_writer_open(&w, out, &err) != 0)
            dp_die_error(&err);
        for (int g = 0; g < 2; g++) {
            if (!have[g])
                continue;
            int64_t lo = src[g].rows * s / k, hi = src[g].rows * (s + 1) / k;
            struct split_writer sw;
            dataset_writer_split(&w, &sw, groups[g], hi - lo, &src[g].x_shape, src[g].x_dtype, src[g].y_labels,
                                 src[g].y_cols);
            copy_rows(&src[g], &sw, lo, hi - lo, out);
            split_writer_close(&sw);
        }
        if (dataset_writer_commit(&w, &err) != 0)
            dp_die_error(&err);
        printf("%s: /train rows %lld..%lld\n", out, (long long)(src[0].rows * s / k),
               (long long)(src[0].rows * (s + 1) / k - 1));
    }
    for (int g = 0; g < 2; g++)
        if (have[g])
            row_source_close(&src[g]);
    return 0;
}
