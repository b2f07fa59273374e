/* Row sources: the rows of one split (/train or /test) of a data set, from one HDF5 file, a list
 * of shard files (rows concatenated in order), or generated on the fly (synthetic).
 *
 * HDF5 data layout: group /train (and optionally /test) with
 *   x  float32 or uint8, shape (N, ...)   features; uint8 is scaled to [0, 1] when read
 *   y  int32 (N) class labels, or float32 (N, k) targets
 * Rows are read by hyperslab in ranges; nothing reads a whole dataset at once. */
#ifndef DPTRAIN_DATASET_H
#define DPTRAIN_DATASET_H

#include <hdf5.h>
#include <stdint.h>

#include "base/errors.h"
#include "net/layers.h"

enum x_dtype { X_DTYPE_FLOAT32, X_DTYPE_UINT8 };

struct data_part {
    char *path;
    hid_t file, x, y;
    int64_t rows;
    int64_t bytes;  /* the file's size when opened: one that shrinks later was truncated under us */
    int64_t chunk_rows;      /* rows per HDF5 chunk of x; 0 when not chunked */
    int warned_zero_chunk;   /* said once that a whole chunk read as zeros */
};

struct row_source {
    int synthetic;
    /* synthetic rows: x ~ U(0,1)^features, y ~ U(0,1)^targets, row i keyed by (seed, first_row + i) */
    uint64_t seed;
    int64_t first_row;

    int nparts;
    struct data_part *parts;
    int64_t *part_start;  /* (nparts + 1) cumulative rows */

    char group[16];       /* "train" or "test" */
    int64_t rows;
    struct shape x_shape; /* per sample */
    int64_t x_cols;       /* features per sample */
    enum x_dtype x_dtype;
    int y_labels;         /* 1: int32 labels (rows); 0: float32 (rows, y_cols) */
    int64_t y_cols;
    int64_t chunk_rows;   /* natural read size (HDF5 chunk rows) */
    char **class_names;   /* the first file's class_names attribute (NULL-terminated), or NULL */
};

/* Opens group of each file; all parts must agree on shapes and types. */
int row_source_open_files(struct row_source *s, char *const *paths, int npaths, const char *group,
                          struct dp_error *err);
void row_source_open_synthetic(struct row_source *s, int64_t rows, int64_t features, int64_t targets,
                               uint64_t seed, int64_t first_row);
/* 1 when every file has the group. */
int row_source_files_have_group(char *const *paths, int npaths, const char *group);

size_t row_source_x_row_bytes(const struct row_source *s);
size_t row_source_y_row_bytes(const struct row_source *s);

/* Reads rows [start, start + count) in their stored types into x (count * x_row_bytes) and y. */
int row_source_read(const struct row_source *s, int64_t start, int64_t count, void *x, void *y,
                    struct dp_error *err);

/* Describes where a row lives ("cancer.h5 /train row 12") for messages. */
void row_source_where(const struct row_source *s, int64_t row, char *buf, size_t len);

void row_source_close(struct row_source *s);

#endif
