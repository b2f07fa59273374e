/* dptrain augment JOB -o OUT.h5: the job's augmentation applied to its first training rows, as
 * one epoch of fit would, written beside the originals for a look (data/augment.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file_checks.h"
#include "base/h5io.h"
#include "cmd/cli.h"
#include "data/batch_reader.h"
#include "train/evaluator.h"

static const char help[] =
    "usage: dptrain augment JOB -o OUT.h5 [--rows N] [--epoch E] [--set KEY=VALUE ...]\n"
    "\n"
    "Applies the job's augmentation layers (random_flip, random_translation, random_zoom,\n"
    "random_rotation) to the first N training rows (default 16) as fit does in epoch E (default 1),\n"
    "and writes OUT.h5 with /original and /augmented, (N, H, W, C) float32 (uint8 pixels scaled to\n"
    "[0, 1], without data.normalize), for a look at what the model will see.\n";

int cmd_augment(int argc, char **argv)
{
    const char *job_path = NULL, *out = NULL;
    const char **sets = NULL;
    int nsets = 0;
    int64_t rows = 16, epoch = 1;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (cli_collect_set(argc, argv, &i, &sets, &nsets)) {
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            out = cli_value(argc, argv, &i, "-o");
        } else if (!strcmp(argv[i], "--rows")) {
            rows = cli_int64("--rows", cli_value(argc, argv, &i, "--rows"), 1, 100000);
        } else if (!strcmp(argv[i], "--epoch")) {
            epoch = cli_int64("--epoch", cli_value(argc, argv, &i, "--epoch"), 1, 1000000000);
        } else if (argv[i][0] != '-' && !job_path) {
            job_path = argv[i];
        } else {
            cli_unknown("augment", argv[i]);
        }
    }
    if (!job_path || !out)
        dp_die(DP_EXIT_INPUT, "augment: needs JOB and -o OUT.h5 (see 'dptrain augment --help')");
    struct job job;
    cli_load_job(job_path, sets, nsets, &job);
    struct dp_error err = {0};
    if (job.naugment == 0)
        dp_die(DP_EXIT_INPUT, "%s: the model has no augmentation layers (random_flip, random_translation, "
               "random_zoom, random_rotation)", job_path);
    struct row_source src;
    if (job_open_rows(&job, "train", &src, &err) != 0)
        dp_die_error(&err);
    if (src.x_shape.rank != 3)
        dp_die(DP_EXIT_INPUT, "%s: augmentation needs images, samples of shape (H, W, C)", job_path);
    rows = rows < src.rows ? rows : src.rows;
    struct normalizer none;
    normalizer_init_none(&none, src.x_cols);
    struct batch_reader r;
    struct host_batch b;
    if (batch_reader_init(&r, &src, &none, 0, rows, 0, job.fit.seed, 64, src.y_labels, 1 << 30, src.y_cols, &err) != 0)
        dp_die_error(&err);
    batch_reader_begin_epoch(&r, epoch - 1);
    host_batch_alloc(&b, rows, src.x_cols, src.y_cols, src.y_labels);
    if (batch_reader_read(&r, 0, rows, &b, &err) != 0)
        dp_die_error(&err);
    int64_t n = rows * src.x_cols;
    float *augmented = dp_malloc((size_t)n * sizeof(float), "augmented rows");
    float *scratch = dp_malloc((size_t)src.x_cols * sizeof(float), "an image");
    memcpy(augmented, b.x, (size_t)n * sizeof(float));
    augment_batch(job.augment, job.naugment, &src.x_shape, augmented, rows, b.sample_ids, job.fit.seed, epoch - 1,
                  scratch);
    const char *inputs[1] = {job_path};
    if (file_check_not_input(out, inputs, 1, &err) != 0)
        dp_die_error(&err);
    char tmp[4200];
    hid_t f = h5io_create_temp(out, tmp, sizeof tmp, &err);
    if (f < 0)
        dp_die_error(&err);
    int64_t dims[4] = {rows, src.x_shape.dims[0], src.x_shape.dims[1], src.x_shape.dims[2]};
    h5io_write_f32(f, "original", 4, dims, b.x, out);
    h5io_write_f32(f, "augmented", 4, dims, augmented, out);
    if (h5io_commit_temp(f, tmp, out, 0, &err) != 0)
        dp_die_error(&err);
    printf("%s: %lld rows, /original and /augmented (epoch %lld)\n", out, (long long)rows, (long long)epoch);
    free(augmented);
    free(scratch);
    host_batch_free(&b);
    batch_reader_free(&r);
    row_source_close(&src);
    job_free(&job);
    return 0;
}
