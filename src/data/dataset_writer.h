/* Writing HDF5 data sets (/train and /test groups, see dataset.h) in chunks, atomically: the file
 * appears under its name only when complete. */
#ifndef DPTRAIN_DATASET_WRITER_H
#define DPTRAIN_DATASET_WRITER_H

#include <hdf5.h>
#include <stdint.h>

#include "data/dataset.h"

struct dataset_writer {
    char *path, *tmp_path;
    hid_t file;
};

struct split_writer {
    hid_t group, x, y;
    int64_t rows, written, x_cols, y_cols;
    int y_labels;
    enum x_dtype x_dtype;
};

int dataset_writer_open(struct dataset_writer *w, const char *path, struct dp_error *err);
/* Creates /group with x (rows, x_shape...) and y (rows) int32 or (rows, y_cols) float32. */
void dataset_writer_split(struct dataset_writer *w, struct split_writer *s, const char *group, int64_t rows,
                          const struct shape *x_shape, enum x_dtype x_dtype, int y_labels, int64_t y_cols);
/* Appends count rows (x in the split's dtype; y int32 or float32). */
void split_writer_append(struct split_writer *s, const void *x, const void *y, int64_t count,
                         const char *path);
/* Ends the split at rows (>= the rows written) when fewer than announced came (images left out). */
void split_writer_shrink(struct split_writer *s, int64_t rows, const char *path);
void split_writer_close(struct split_writer *s);
/* Renames the finished file into place. */
int dataset_writer_commit(struct dataset_writer *w, struct dp_error *err);
void dataset_writer_abort(struct dataset_writer *w);

#endif
