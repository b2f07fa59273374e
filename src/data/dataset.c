#include "data/dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/h5io.h"
#include "base/rng.h"

/* The stored types of a part's x and y: float32 or uint8 features; integer labels (rows) or
 * float32 targets (rows, k). */
static int part_types(const struct data_part *p, int yrank, const char *xname, const char *yname,
                      enum x_dtype *xdt, int *ylab, struct dp_error *err)
{
    hid_t xt = H5Dget_type(p->x), yt = H5Dget_type(p->y);
    int xok = 1, yok = 1;
    if (H5Tget_class(xt) == H5T_FLOAT && H5Tget_size(xt) == 4)
        *xdt = X_DTYPE_FLOAT32;
    else if (H5Tget_class(xt) == H5T_INTEGER && H5Tget_size(xt) == 1 && H5Tget_sign(xt) == H5T_SGN_NONE)
        *xdt = X_DTYPE_UINT8;
    else
        xok = 0, *xdt = X_DTYPE_FLOAT32;
    if (H5Tget_class(yt) == H5T_INTEGER && yrank == 1)
        *ylab = 1;
    else if (H5Tget_class(yt) == H5T_FLOAT && yrank == 2)
        *ylab = 0;
    else
        yok = 0, *ylab = 0;
    H5Tclose(xt);
    H5Tclose(yt);
    if (!xok)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: %s must be float32 or uint8", p->path, xname);
    if (!yok)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: %s must be integer labels (rows) or float32 "
                            "targets (rows, k)", p->path, yname);
    return 0;
}

/* The first part sets the source's shapes, types and chunk size; the others must match it. */
static int part_joins(const struct data_part *p, const char *group, const char *xname,
                      const struct shape *xs, enum x_dtype xdt, int ylab, int64_t ycols, struct row_source *s,
                      int first, struct dp_error *err)
{
    if (!first) {
        int same = xs->rank == s->x_shape.rank && xdt == s->x_dtype && ylab == s->y_labels && ycols == s->y_cols;
        for (int i = 0; same && i < xs->rank; i++)
            same = xs->dims[i] == s->x_shape.dims[i];
        if (!same)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: /%s does not match the shapes and types of %s",
                                p->path, group, s->parts[0].path);
        return 0;
    }
    s->x_shape = *xs;
    s->x_cols = shape_size(xs);
    s->x_dtype = xdt;
    s->y_labels = ylab;
    s->y_cols = ycols;
    s->chunk_rows = p->chunk_rows > 0 ? p->chunk_rows : 4096;
    /* HDF5 chunks hold under 4 GiB; buffers are sized by them */
    if (s->chunk_rows < 1 || (uint64_t)s->chunk_rows * row_source_x_row_bytes(s) >= (UINT64_C(1) << 32))
        return dp_error_set(err, DP_EXIT_INPUT, "%s: %s claims chunks of %lld rows of %zu bytes (damaged file)",
                            p->path, xname, (long long)s->chunk_rows, row_source_x_row_bytes(s));
    return 0;
}

static int open_part(struct data_part *p, const char *path, const char *group, struct row_source *s,
                     int first, struct dp_error *err)
{
    memset(p, 0, sizeof *p);
    p->path = dp_strdup(path);
    p->file = p->x = p->y = -1;
    p->file = h5io_open_read(path, err);
    if (p->file < 0)
        return -1;
    struct stat st;
    p->bytes = stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
    char xname[64], yname[64];
    snprintf(xname, sizeof xname, "/%s/x", group);
    snprintf(yname, sizeof yname, "/%s/y", group);
    if (!h5io_exists(p->file, group))
        return dp_error_set(err, DP_EXIT_INPUT, "%s: no group /%s (expected /%s/x and /%s/y; "
                            "make one with 'dptrain import' or 'dptrain synth')", path, group, group, group);
    int xr, yr;
    int64_t xd[SHAPE_MAX_RANK + 1], yd[3];
    if (h5io_dataset_shape(p->file, xname, &xr, xd, SHAPE_MAX_RANK + 1, path, err) ||
        h5io_dataset_shape(p->file, yname, &yr, yd, 2, path, err))
        return -1;
    if (xr < 2)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: %s must have shape (rows, features...)", path, xname);
    if (yd[0] != xd[0])
        return dp_error_set(err, DP_EXIT_INPUT, "%s: %s has %lld rows but %s has %lld", path, xname,
                            (long long)xd[0], yname, (long long)yd[0]);
    p->x = H5Dopen2(p->file, xname, H5P_DEFAULT);
    p->y = H5Dopen2(p->file, yname, H5P_DEFAULT);
    if (p->x < 0 || p->y < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open %s or %s", path, xname, yname);
    p->rows = xd[0];
    hid_t plist = H5Dget_create_plist(p->x);
    hsize_t chunk[SHAPE_MAX_RANK + 1];
    if (plist >= 0 && H5Pget_layout(plist) == H5D_CHUNKED && H5Pget_chunk(plist, xr, chunk) >= 1)
        p->chunk_rows = (int64_t)chunk[0];
    if (plist >= 0)
        H5Pclose(plist);
    enum x_dtype xdt;
    int ylab;
    if (part_types(p, yr, xname, yname, &xdt, &ylab, err) != 0)
        return -1;
    struct shape xs = {xr - 1, {0}};
    for (int i = 1; i < xr; i++)
        xs.dims[i - 1] = xd[i];
    int64_t ycols = ylab ? 1 : yd[1];
    if (shape_size(&xs) == 0 || ycols == 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: %s has no %s (a dimension of 0)", path, shape_size(&xs) == 0 ?
                            xname : yname, shape_size(&xs) == 0 ? "features" : "targets");
    if (shape_size(&xs) > INT32_MAX || ycols > INT32_MAX)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: /%s has over 2^31 values per row (damaged file?)", path, group);
    return part_joins(p, group, xname, &xs, xdt, ylab, ycols, s, first, err);
}

int row_source_open_files(struct row_source *s, char *const *paths, int npaths, const char *group,
                          struct dp_error *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->group, sizeof s->group, "%s", group);
    s->nparts = npaths;
    s->parts = dp_calloc((size_t)npaths, sizeof *s->parts, "data parts");
    s->part_start = dp_calloc((size_t)npaths + 1, sizeof(int64_t), "data parts");
    for (int i = 0; i < npaths; i++) {
        if (open_part(&s->parts[i], paths[i], group, s, i == 0, err) != 0) {
            s->nparts = i + 1;
            row_source_close(s);
            return -1;
        }
        s->part_start[i + 1] = s->part_start[i] + s->parts[i].rows;
    }
    s->rows = s->part_start[npaths];
    /* the class names an import stored (image folders' names): for reports */
    int n = 0;
    if (H5Aexists(s->parts[0].file, "class_names") > 0 &&
        h5io_read_attr_strings(s->parts[0].file, "class_names", &s->class_names, &n, paths[0], err) != 0) {
        row_source_close(s);
        return -1;
    }
    return 0;
}

int row_source_files_have_group(char *const *paths, int npaths, const char *group)
{
    for (int i = 0; i < npaths; i++) {
        hid_t f = h5io_open_read(paths[i], NULL);
        if (f < 0)
            return 0;
        int has = h5io_exists(f, group);
        H5Fclose(f);
        if (!has)
            return 0;
    }
    return 1;
}

void row_source_open_synthetic(struct row_source *s, int64_t rows, int64_t features, int64_t targets,
                               uint64_t seed, int64_t first_row)
{
    memset(s, 0, sizeof *s);
    s->synthetic = 1;
    s->seed = seed;
    s->first_row = first_row;
    snprintf(s->group, sizeof s->group, "synthetic");
    s->rows = rows;
    s->x_shape = (struct shape){1, {features}};
    s->x_cols = features;
    s->x_dtype = X_DTYPE_FLOAT32;
    s->y_labels = 0;
    s->y_cols = targets;
    s->chunk_rows = 4096;
}

size_t row_source_x_row_bytes(const struct row_source *s)
{
    return (size_t)s->x_cols * (s->x_dtype == X_DTYPE_UINT8 ? 1 : 4);
}

size_t row_source_y_row_bytes(const struct row_source *s)
{
    return s->y_labels ? sizeof(int32_t) : (size_t)s->y_cols * sizeof(float);
}

static int read_rows(hid_t ds, int64_t start, int64_t count, int64_t row_elems, hid_t memtype, void *out)
{
    hid_t space = H5Dget_space(ds);
    int rank = H5Sget_simple_extent_ndims(space);
    hsize_t dims[SHAPE_MAX_RANK + 1], off[SHAPE_MAX_RANK + 1] = {0}, cnt[SHAPE_MAX_RANK + 1];
    H5Sget_simple_extent_dims(space, dims, NULL);
    for (int i = 0; i < rank; i++)
        cnt[i] = dims[i];
    off[0] = (hsize_t)start;
    cnt[0] = (hsize_t)count;
    herr_t rc = H5Sselect_hyperslab(space, H5S_SELECT_SET, off, NULL, cnt, NULL);
    /* The memory space has the selection's own shape: HDF5 then copies whole rows instead of
     * iterating element by element (about 10x faster for wide rows). */
    (void)row_elems;
    hid_t mspace = H5Screate_simple(rank, cnt, NULL);
    if (rc >= 0)
        rc = H5Dread(ds, memtype, mspace, space, H5P_DEFAULT, out);
    H5Sclose(mspace);
    H5Sclose(space);
    return rc < 0 ? -1 : 0;
}

static void synthetic_rows(const struct row_source *s, int64_t start, int64_t count, float *x, float *y)
{
    /* Each row keyed by its own index: any slice of the data set is the same numbers. */
    uint64_t xblocks = ((uint64_t)s->x_cols + 3) / 4, yblocks = ((uint64_t)s->y_cols + 3) / 4;
#pragma omp parallel for if (count * s->x_cols > 65536)
    for (int64_t r = 0; r < count; r++) {
        uint64_t row = (uint64_t)(s->first_row + start + r);
        rng_uniform_fill(x + r * s->x_cols, (uint64_t)s->x_cols, s->seed, RNG_DOMAIN_SYNTH_X, 0, row * xblocks);
        rng_uniform_fill(y + r * s->y_cols, (uint64_t)s->y_cols, s->seed, RNG_DOMAIN_SYNTH_Y, 0, row * yblocks);
    }
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* HDF5's Fletcher32 checksum of a chunk of zeros is zero, so a chunk zeroed on disk together with
 * its checksum reads without an error, and so does a chunk the file declares but never wrote. Rows
 * whose features and targets are all zero for a whole chunk are rare in real data: say it once
 * per file. rows [local, local + n) of the part were just read into x and y. */
static void warn_zero_chunks(struct data_part *part, const char *group, int64_t local, int64_t n,
                             const unsigned char *x, size_t xb, const unsigned char *y, size_t yb)
{
    int64_t cr = part->chunk_rows;
    if (cr <= 0 || part->warned_zero_chunk)
        return;
    for (int64_t c = (local + cr - 1) / cr; c * cr < local + n; c++) {
        int64_t first = c * cr, end = first + cr < part->rows ? first + cr : part->rows;
        if (end > local + n)
            break;
        if (all_zero(x + (size_t)(first - local) * xb, (size_t)(end - first) * xb) &&
            all_zero(y + (size_t)(first - local) * yb, (size_t)(end - first) * yb)) {
            dp_warn("%s: /%s rows %lld..%lld (one HDF5 chunk) are all zeros, features and targets; a region "
                    "zeroed on disk, or never written, reads like this and passes HDF5's checksums: check the file",
                    part->path, group, (long long)first, (long long)end - 1);
            part->warned_zero_chunk = 1;
            return;
        }
    }
}

int row_source_read(const struct row_source *s, int64_t start, int64_t count, void *x, void *y,
                    struct dp_error *err)
{
    DP_ASSERT(start >= 0 && start + count <= s->rows);
    if (s->synthetic) {
        synthetic_rows(s, start, count, x, y);
        return 0;
    }
    size_t xb = row_source_x_row_bytes(s), yb = row_source_y_row_bytes(s);
    hid_t xmem = s->x_dtype == X_DTYPE_UINT8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_FLOAT;
    hid_t ymem = s->y_labels ? H5T_NATIVE_INT32 : H5T_NATIVE_FLOAT;
    while (count > 0) {
        int p = 0;
        while (start >= s->part_start[p + 1])
            p++;
        int64_t local = start - s->part_start[p];
        int64_t n = s->part_start[p + 1] - start;
        if (n > count)
            n = count;
        struct data_part *part = &s->parts[p];
        /* HDF5 reads what lies beyond a truncated file's end as zeros: training would go on, on zeros */
        struct stat st;
        if (part->bytes >= 0 && (stat(part->path, &st) != 0 || (int64_t)st.st_size < part->bytes))
            return dp_error_set(err, DP_EXIT_INPUT, "%s: the file shrank from %lld to %lld bytes while dptrain read it "
                                "(truncated or replaced?); stopping rather than reading zeros", part->path,
                                (long long)part->bytes, stat(part->path, &st) == 0 ? (long long)st.st_size : -1LL);
        if (read_rows(part->x, local, n, s->x_cols, xmem, x) != 0 ||
            read_rows(part->y, local, n, s->y_labels ? 1 : s->y_cols, ymem, y) != 0)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot read /%s rows %lld..%lld (truncated or "
                                "damaged file)", part->path, s->group, (long long)local,
                                (long long)(local + n - 1));
        warn_zero_chunks(part, s->group, local, n, x, xb, y, yb);
        x = (char *)x + (size_t)n * xb;
        y = (char *)y + (size_t)n * yb;
        start += n;
        count -= n;
    }
    return 0;
}

void row_source_where(const struct row_source *s, int64_t row, char *buf, size_t len)
{
    if (s->synthetic) {
        snprintf(buf, len, "synthetic row %lld", (long long)row);
        return;
    }
    int p = 0;
    while (p + 1 < s->nparts && row >= s->part_start[p + 1])
        p++;
    snprintf(buf, len, "%s /%s row %lld", s->parts[p].path, s->group, (long long)(row - s->part_start[p]));
}

void row_source_close(struct row_source *s)
{
    for (int i = 0; i < s->nparts; i++) {
        struct data_part *p = &s->parts[i];
        if (p->x >= 0) H5Dclose(p->x);
        if (p->y >= 0) H5Dclose(p->y);
        if (p->file >= 0) H5Fclose(p->file);
        free(p->path);
    }
    free(s->parts);
    free(s->part_start);
    h5io_strings_free(s->class_names);
    memset(s, 0, sizeof *s);
}
