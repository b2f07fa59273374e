#include "data/dataset_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/h5io.h"

#define WRITE_CHECK(expr, path)                                                                     \
    do {                                                                                            \
        if ((expr) < 0)                                                                             \
            dp_die(DP_EXIT_INTERNAL, "%s: HDF5 write failed (%s at %s:%d); disk full?", path, #expr, \
                   __FILE__, __LINE__);                                                             \
    } while (0)

int dataset_writer_open(struct dataset_writer *w, const char *path, struct dp_error *err)
{
    memset(w, 0, sizeof *w);
    w->path = dp_strdup(path);
    size_t n = strlen(path) + 32;
    w->tmp_path = dp_malloc(n, "a path");
    w->file = h5io_create_temp(path, w->tmp_path, n, err);
    if (w->file < 0) {
        free(w->path);
        free(w->tmp_path);
        return -1;
    }
    return 0;
}

static hid_t create_chunked(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                            size_t row_bytes, const char *path)
{
    hsize_t chunk[SHAPE_MAX_RANK + 1];
    for (int i = 0; i < rank; i++)
        chunk[i] = dims[i];
    /* About 1 MiB per chunk: whole-chunk reads stay cheap and shuffling blocks stay small. */
    hsize_t rows = (hsize_t)(1048576 / (row_bytes ? row_bytes : 1));
    chunk[0] = rows < 1 ? 1 : rows;
    if (chunk[0] > dims[0])
        chunk[0] = dims[0] ? dims[0] : 1;
    /* rows extendible, so a writer that leaves some out can shrink to what it wrote */
    hsize_t maxdims[SHAPE_MAX_RANK + 1];
    for (int i = 0; i < rank; i++)
        maxdims[i] = i == 0 ? H5S_UNLIMITED : dims[i];
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t plist = H5Pcreate(H5P_DATASET_CREATE);
    WRITE_CHECK(H5Pset_chunk(plist, rank, chunk), path);
    WRITE_CHECK(H5Pset_fletcher32(plist), path); /* a damaged sample is an error, not a silent wrong row */
    hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, plist, H5P_DEFAULT);
    WRITE_CHECK(ds, path);
    H5Pclose(plist);
    H5Sclose(space);
    return ds;
}

void dataset_writer_split(struct dataset_writer *w, struct split_writer *s, const char *group, int64_t rows,
                          const struct shape *x_shape, enum x_dtype x_dtype, int y_labels, int64_t y_cols)
{
    memset(s, 0, sizeof *s);
    s->rows = rows;
    s->x_cols = shape_size(x_shape);
    s->y_cols = y_labels ? 1 : y_cols;
    s->y_labels = y_labels;
    s->x_dtype = x_dtype;
    s->group = H5Gcreate2(w->file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    WRITE_CHECK(s->group, w->path);
    hsize_t xd[SHAPE_MAX_RANK + 1] = {(hsize_t)rows};
    for (int i = 0; i < x_shape->rank; i++)
        xd[i + 1] = (hsize_t)x_shape->dims[i];
    size_t xb = (size_t)s->x_cols * (x_dtype == X_DTYPE_UINT8 ? 1 : 4);
    s->x = create_chunked(s->group, "x", x_dtype == X_DTYPE_UINT8 ? H5T_STD_U8LE : H5T_IEEE_F32LE,
                          x_shape->rank + 1, xd, xb, w->path);
    hsize_t yd[2] = {(hsize_t)rows, (hsize_t)y_cols};
    s->y = create_chunked(s->group, "y", y_labels ? H5T_STD_I32LE : H5T_IEEE_F32LE, y_labels ? 1 : 2, yd,
                          y_labels ? 4 : (size_t)y_cols * 4, w->path);
}

static void append_rows(hid_t ds, int64_t start, int64_t count, int64_t row_elems, hid_t memtype,
                        const void *data, const char *path)
{
    hid_t space = H5Dget_space(ds);
    hsize_t dims[SHAPE_MAX_RANK + 1], off[SHAPE_MAX_RANK + 1] = {0};
    H5Sget_simple_extent_dims(space, dims, NULL);
    off[0] = (hsize_t)start;
    dims[0] = (hsize_t)count;
    WRITE_CHECK(H5Sselect_hyperslab(space, H5S_SELECT_SET, off, NULL, dims, NULL), path);
    (void)row_elems; /* memory space shaped like the selection: whole-row copies */
    hid_t mspace = H5Screate_simple(H5Sget_simple_extent_ndims(space), dims, NULL);
    WRITE_CHECK(H5Dwrite(ds, memtype, mspace, space, H5P_DEFAULT, data), path);
    H5Sclose(mspace);
    H5Sclose(space);
}

void split_writer_append(struct split_writer *s, const void *x, const void *y, int64_t count, const char *path)
{
    DP_ASSERT(s->written + count <= s->rows);
    if (count == 0)
        return;
    append_rows(s->x, s->written, count, s->x_cols, s->x_dtype == X_DTYPE_UINT8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT,
                x, path);
    append_rows(s->y, s->written, count, s->y_cols, s->y_labels ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT, y, path);
    s->written += count;
}

static void set_rows(hid_t ds, int64_t rows, const char *path)
{
    hid_t space = H5Dget_space(ds);
    hsize_t dims[SHAPE_MAX_RANK + 1];
    WRITE_CHECK(H5Sget_simple_extent_dims(space, dims, NULL), path);
    H5Sclose(space);
    dims[0] = (hsize_t)rows;
    WRITE_CHECK(H5Dset_extent(ds, dims), path);
}

void split_writer_shrink(struct split_writer *s, int64_t rows, const char *path)
{
    DP_ASSERT(rows <= s->rows && rows >= s->written);
    if (rows == s->rows)
        return;
    set_rows(s->x, rows, path);
    set_rows(s->y, rows, path);
    s->rows = rows;
}

void split_writer_close(struct split_writer *s)
{
    H5Dclose(s->x);
    H5Dclose(s->y);
    H5Gclose(s->group);
}

int dataset_writer_commit(struct dataset_writer *w, struct dp_error *err)
{
    int rc = h5io_commit_temp(w->file, w->tmp_path, w->path, 0, err);
    free(w->path);
    free(w->tmp_path);
    return rc;
}

void dataset_writer_abort(struct dataset_writer *w)
{
    h5io_discard_temp(w->file, w->tmp_path);
    free(w->path);
    free(w->tmp_path);
}
