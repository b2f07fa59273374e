#include "base/h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"

void h5io_init(void)
{
    H5dont_atexit();
    h5io_init_thread();
}

void h5io_init_thread(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5io_finish(void)
{
    H5close();
}

hid_t h5io_open_read(const char *path, struct dp_error *err)
{
    if (access(path, R_OK) != 0) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (file_check_input(path, err) != 0)
        return -1;
    htri_t is = H5Fis_hdf5(path);
    if (is <= 0) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: not an HDF5 file (or truncated)", path);
        return -1;
    }
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open as HDF5 (truncated or damaged)", path);
    return f;
}

/* File access for new files: the HDF5 1.10 file format checksums all metadata (superblock,
 * object headers, chunk indexes), so a damaged file is refused when opened or read instead of
 * misread; HDF5 1.10 and later (h5py, Keras) read it. */
static hid_t new_file_access(const char *path)
{
#if H5_VERSION_GE(1, 10, 2)
    const H5F_libver_t format = H5F_LIBVER_V110;
#else
    const H5F_libver_t format = H5F_LIBVER_LATEST; /* an HDF5 1.8 site: its own newest format */
#endif
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_libver_bounds(fapl, format, format) < 0)
        dp_die(DP_EXIT_INTERNAL, "%s: HDF5 cannot set the file format version", path);
    return fapl;
}

static hid_t create_file(const char *path)
{
    hid_t fapl = new_file_access(path);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

hid_t h5io_open_image(const void *image, size_t len, const char *name, struct dp_error *err)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_file_image(fapl, (void *)image, len) < 0)
        dp_die(DP_EXIT_INTERNAL, "%s: HDF5 cannot set up an in-memory file", name);
    hid_t f = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0)
        dp_error_set(err, DP_EXIT_INPUT, "%s: not an HDF5 file (or truncated or damaged)", name);
    return f;
}

hid_t h5io_create_in_memory(const char *name)
{
    /* the core driver without a backing store: nothing reaches the disk. In HDF5's default
     * (earliest) format, as h5py and Keras write: an image of a file in the 1.10 format, taken
     * while it is open, fails its superblock checksum when opened. */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0)
        dp_die(DP_EXIT_INTERNAL, "%s: HDF5 cannot set up an in-memory file", name);
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0)
        dp_die(DP_EXIT_INTERNAL, "%s: HDF5 cannot create an in-memory file", name);
    return f;
}

void *h5io_memory_image(hid_t f, size_t *len, const char *name)
{
    ssize_t n = H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    if (n <= 0)
        dp_die(DP_EXIT_INTERNAL, "%s: HDF5 cannot take the in-memory file's image", name);
    void *buf = dp_malloc((size_t)n, "an HDF5 file image");
    if (H5Fget_file_image(f, buf, (size_t)n) != n)
        dp_die(DP_EXIT_INTERNAL, "%s: HDF5 cannot copy the in-memory file's image", name);
    H5Fclose(f);
    *len = (size_t)n;
    return buf;
}

hid_t h5io_create_temp(const char *path, char *tmp, size_t tmp_size, struct dp_error *err)
{
    if (file_check_output(path, err) != 0)
        return -1;
    atomic_file_temp_name(tmp, tmp_size, path);
    hid_t f = create_file(tmp);
    if (f >= 0)
        dp_temp_file_track(tmp);
    else
        dp_error_set(err, DP_EXIT_INPUT, "%s: cannot create (does the directory exist and is it writable?)", path);
    return f;
}

static int fsync_path(const char *path, int directory)
{
    int fd = open(path, directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int h5io_commit_temp(hid_t f, const char *tmp, const char *path, int durable, struct dp_error *err)
{
    /* Closed even when the flush failed, so HDF5 lets go of the file before it is deleted. */
    herr_t flushed = H5Fflush(f, H5F_SCOPE_GLOBAL);
    int rc = 0;
    if (H5Fclose(f) < 0 || flushed < 0)
        rc = dp_error_set(err, DP_EXIT_INTERNAL, "%s not written: HDF5 failed to flush it (disk full?)", path);
    else if ((durable && fsync_path(tmp, 0) != 0) || rename(tmp, path) != 0)
        rc = dp_error_set(err, DP_EXIT_INTERNAL, "%s not written: cannot move it into place: %s", path, strerror(errno));
    if (rc)
        unlink(tmp);
    dp_temp_file_forget(tmp);
    if (!rc && durable) {
        char *dir = dp_strdup(path);
        fsync_path(dirname(dir), 1); /* best effort: makes the rename durable */
        free(dir);
    }
    return rc;
}

void h5io_discard_temp(hid_t f, const char *tmp)
{
    H5Fclose(f);
    unlink(tmp);
    dp_temp_file_forget(tmp);
}

int h5io_exists(hid_t loc, const char *name)
{
    return H5Lexists(loc, name, H5P_DEFAULT) > 0;
}

#define H5_WRITE_CHECK(expr, path, what)                                                         \
    do {                                                                                         \
        if ((expr) < 0)                                                                          \
            dp_die(DP_EXIT_INTERNAL, "%s: HDF5 failed writing %s (%s at %s:%d)", path, what, #expr, \
                   __FILE__, __LINE__);                                                          \
    } while (0)

/* Chunks of checksummed datasets stay far below HDF5's 4 GiB limit. */
#define MAX_CHUNK_BYTES (UINT64_C(4) << 20)

/* Chunks (the whole extent, or as many rows as fit in MAX_CHUNK_BYTES) and the checksum filter on
 * a dataset creation list, for a dataset of shape dims. */
static void checksummed_chunks(hid_t dcpl, int rank, const hsize_t *dims, size_t elem_bytes, const char *path)
{
    hsize_t chunk[16];
    uint64_t row_bytes = elem_bytes;
    for (int i = 0; i < rank; i++) {
        if (dims[i] == 0)
            return; /* empty: nothing to checksum, and chunks cannot have size 0 */
        chunk[i] = dims[i];
        if (i > 0)
            row_bytes *= dims[i];
    }
    if (rank < 1 || row_bytes > MAX_CHUNK_BYTES)
        return; /* a single row over the chunk limit stays contiguous, unchecked */
    if (chunk[0] * row_bytes > MAX_CHUNK_BYTES)
        chunk[0] = MAX_CHUNK_BYTES / row_bytes;
    H5_WRITE_CHECK(H5Pset_chunk(dcpl, rank, chunk), path, "chunk layout");
    H5_WRITE_CHECK(H5Pset_fletcher32(dcpl), path, "checksums");
}

static void write_dataset(hid_t loc, const char *name, int rank, const int64_t *dims, hid_t type,
                          const void *data, const char *path)
{
    hsize_t hd[8];
    for (int i = 0; i < rank; i++)
        hd[i] = (hsize_t)dims[i];
    hid_t space = H5Screate_simple(rank, hd, NULL);
    H5_WRITE_CHECK(space, path, name);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5_WRITE_CHECK(dcpl, path, name);
    checksummed_chunks(dcpl, rank, hd, H5Tget_size(type), path);
    hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5_WRITE_CHECK(ds, path, name);
    H5_WRITE_CHECK(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path, name);
    H5Dclose(ds);
    H5Pclose(dcpl);
    H5Sclose(space);
}


void h5io_write_scalar(hid_t loc, const char *name, hid_t type, const void *value, const char *path)
{
    hid_t space = H5Screate(H5S_SCALAR);
    H5_WRITE_CHECK(space, path, name);
    hid_t ds = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_WRITE_CHECK(ds, path, name);
    H5_WRITE_CHECK(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, value), path, name);
    H5Dclose(ds);
    H5Sclose(space);
}

void h5io_write_f32(hid_t loc, const char *name, int rank, const int64_t *dims, const float *data,
                    const char *path)
{
    write_dataset(loc, name, rank, dims, H5T_IEEE_F32LE, data, path);
}

void h5io_write_f64(hid_t loc, const char *name, int rank, const int64_t *dims, const double *data,
                    const char *path)
{
    write_dataset(loc, name, rank, dims, H5T_IEEE_F64LE, data, path);
}

void h5io_write_i64(hid_t loc, const char *name, int rank, const int64_t *dims, const int64_t *data,
                    const char *path)
{
    write_dataset(loc, name, rank, dims, H5T_STD_I64LE, data, path);
}

void h5io_attr_strings(hid_t loc, const char *name, const char *const *strs, int n, const char *path)
{
    size_t width = 1;
    for (int i = 0; i < n; i++)
        if (strlen(strs[i]) + 1 > width)
            width = strlen(strs[i]) + 1;
    char *buf = dp_calloc((size_t)(n ? n : 1), width, "string attribute");
    for (int i = 0; i < n; i++)
        memcpy(buf + (size_t)i * width, strs[i], strlen(strs[i]));
    hid_t type = H5Tcopy(H5T_C_S1);
    H5_WRITE_CHECK(type, path, name);
    H5_WRITE_CHECK(H5Tset_size(type, width), path, name);
    H5_WRITE_CHECK(H5Tset_strpad(type, H5T_STR_NULLPAD), path, name);
    hsize_t dim = (hsize_t)n;
    hid_t space = H5Screate_simple(1, &dim, NULL);
    H5_WRITE_CHECK(space, path, name);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_WRITE_CHECK(attr, path, name);
    H5_WRITE_CHECK(H5Awrite(attr, type, buf), path, name);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
    free(buf);
}

void h5io_attr_string(hid_t loc, const char *name, const char *value, const char *path)
{
    hid_t type = H5Tcopy(H5T_C_S1);
    H5_WRITE_CHECK(type, path, name);
    H5_WRITE_CHECK(H5Tset_size(type, strlen(value) + 1), path, name);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_WRITE_CHECK(attr, path, name);
    H5_WRITE_CHECK(H5Awrite(attr, type, value), path, name);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
}

static void attr_scalar(hid_t loc, const char *name, hid_t type, const void *v, const char *path)
{
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    H5_WRITE_CHECK(attr, path, name);
    H5_WRITE_CHECK(H5Awrite(attr, type, v), path, name);
    H5Aclose(attr);
    H5Sclose(space);
}

void h5io_attr_i64(hid_t loc, const char *name, int64_t value, const char *path)
{
    attr_scalar(loc, name, H5T_NATIVE_INT64, &value, path);
}

void h5io_attr_f64(hid_t loc, const char *name, double value, const char *path)
{
    attr_scalar(loc, name, H5T_NATIVE_DOUBLE, &value, path);
}

hid_t h5io_group_create(hid_t loc, const char *name, const char *path)
{
    hid_t g = H5Gcreate2(loc, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5_WRITE_CHECK(g, path, name);
    return g;
}

int h5io_read_attr_strings(hid_t loc, const char *name, char ***out, int *n, const char *path,
                           struct dp_error *err)
{
    *out = NULL;
    *n = 0;
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    if (attr < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: missing attribute '%s'", path, name);
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    int rc = -1;
    hssize_t count = H5Sget_simple_extent_npoints(space);
    if (H5Tget_class(type) != H5T_STRING) {
        if (count == 0) { /* Keras writes an empty float array for weightless layers */
            *out = dp_calloc(1, sizeof(char *), "strings");
            rc = 0;
        } else {
            dp_error_set(err, DP_EXIT_INPUT, "%s: attribute '%s' is not a string list", path, name);
        }
        goto done;
    }
    char **strs = dp_calloc((size_t)count + 1, sizeof(char *), "strings");
    if (H5Tis_variable_str(type) > 0) {
        char **tmp = dp_calloc((size_t)count + 1, sizeof(char *), "strings");
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        if (H5Aread(attr, mem, tmp) < 0) {
            dp_error_set(err, DP_EXIT_INPUT, "%s: cannot read attribute '%s'", path, name);
            free(tmp);
            free(strs);
            H5Tclose(mem);
            goto done;
        }
        for (hssize_t i = 0; i < count; i++)
            strs[i] = dp_strdup(tmp[i] ? tmp[i] : "");
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, tmp);
        free(tmp);
        H5Tclose(mem);
    } else {
        size_t width = H5Tget_size(type);
        char *buf = dp_calloc((size_t)count, width + 1, "strings");
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, width);
        if (H5Aread(attr, mem, buf) < 0) {
            dp_error_set(err, DP_EXIT_INPUT, "%s: cannot read attribute '%s'", path, name);
            free(buf);
            free(strs);
            H5Tclose(mem);
            goto done;
        }
        for (hssize_t i = 0; i < count; i++) {
            strs[i] = dp_calloc(width + 1, 1, "string");
            memcpy(strs[i], buf + (size_t)i * width, width);
        }
        free(buf);
        H5Tclose(mem);
    }
    *out = strs;
    *n = (int)count;
    rc = 0;
done:
    H5Tclose(type);
    H5Sclose(space);
    H5Aclose(attr);
    return rc;
}

int h5io_read_attr_string(hid_t loc, const char *name, char **out, const char *path, struct dp_error *err)
{
    char **strs;
    int n;
    if (h5io_read_attr_strings(loc, name, &strs, &n, path, err) != 0)
        return -1;
    if (n < 1) {
        h5io_strings_free(strs);
        return dp_error_set(err, DP_EXIT_INPUT, "%s: attribute '%s' is empty", path, name);
    }
    *out = strs[0];
    for (int i = 1; i < n; i++)
        free(strs[i]);
    free(strs);
    return 0;
}

static int read_attr_scalar(hid_t loc, const char *name, hid_t type, void *out, const char *path,
                            struct dp_error *err)
{
    hid_t attr = H5Aopen(loc, name, H5P_DEFAULT);
    if (attr < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: missing attribute '%s'", path, name);
    herr_t rc = H5Aread(attr, type, out);
    H5Aclose(attr);
    if (rc < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot read attribute '%s'", path, name);
    return 0;
}

int h5io_read_attr_i64(hid_t loc, const char *name, int64_t *out, const char *path, struct dp_error *err)
{
    return read_attr_scalar(loc, name, H5T_NATIVE_INT64, out, path, err);
}

int h5io_read_attr_f64(hid_t loc, const char *name, double *out, const char *path, struct dp_error *err)
{
    return read_attr_scalar(loc, name, H5T_NATIVE_DOUBLE, out, path, err);
}

int h5io_dataset_shape(hid_t loc, const char *name, int *rank, int64_t *dims, int max_rank,
                       const char *path, struct dp_error *err)
{
    if (!h5io_exists(loc, name))
        return dp_error_set(err, DP_EXIT_INPUT, "%s: missing dataset '%s'", path, name);
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    if (ds < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open dataset '%s'", path, name);
    /* Values kept in other files (external storage, virtual datasets) would let a file make dptrain
     * read any file on the machine; only values stored in the file itself are read (as Keras 3). */
    hid_t dcpl = H5Dget_create_plist(ds);
    int elsewhere = dcpl < 0 || H5Pget_external_count(dcpl) != 0 || H5Pget_layout(dcpl) == H5D_VIRTUAL;
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (elsewhere) {
        H5Dclose(ds);
        return dp_error_set(err, DP_EXIT_INPUT, "%s: dataset '%s' keeps its values in other files (HDF5 external "
                            "storage or a virtual dataset); dptrain reads only values stored in the file itself",
                            path, name);
    }
    hid_t space = H5Dget_space(ds);
    int r = H5Sget_simple_extent_ndims(space);
    int rc = 0;
    if (r < 0 || r > max_rank) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: dataset '%s' has %d dimensions (at most %d expected)",
                          path, name, r, max_rank);
    } else {
        /* A damaged header can claim any size: extents beyond their maximum or more than 2^50
         * elements in all are refused here, before anyone sizes a buffer by them. */
        hsize_t hd[16], hm[16];
        H5Sget_simple_extent_dims(space, hd, hm);
        uint64_t total = 1;
        int plausible = 1;
        for (int i = 0; i < r; i++) {
            if (hm[i] != H5S_UNLIMITED && hd[i] > hm[i])
                plausible = 0;
            if (hd[i] > 0 && total > (UINT64_C(1) << 50) / hd[i])
                plausible = 0;
            else
                total *= hd[i];
            dims[i] = (int64_t)hd[i];
        }
        *rank = r;
        if (!plausible)
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s: dataset '%s' claims an impossible size (damaged file)", path,
                              name);
    }
    H5Sclose(space);
    H5Dclose(ds);
    return rc;
}

static int read_exact(hid_t loc, const char *name, int rank, const int64_t *dims, hid_t memtype,
                      void *out, const char *path, struct dp_error *err)
{
    int r;
    int64_t got[8];
    if (h5io_dataset_shape(loc, name, &r, got, 8, path, err) != 0)
        return -1;
    int same = r == rank;
    for (int i = 0; same && i < rank; i++)
        same = got[i] == dims[i];
    if (!same) {
        char want[128] = "", have[128] = "";
        size_t a = 0, b = 0;
        for (int i = 0; i < rank; i++)
            a += (size_t)snprintf(want + a, sizeof want - a, "%s%lld", i ? ", " : "", (long long)dims[i]);
        for (int i = 0; i < r; i++)
            b += (size_t)snprintf(have + b, sizeof have - b, "%s%lld", i ? ", " : "", (long long)got[i]);
        return dp_error_set(err, DP_EXIT_INPUT, "%s: dataset '%s' has shape (%s), expected (%s)", path,
                            name, have, want);
    }
    hid_t ds = H5Dopen2(loc, name, H5P_DEFAULT);
    herr_t rc = H5Dread(ds, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, out);
    H5Dclose(ds);
    if (rc < 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot read dataset '%s' (damaged file?)", path, name);
    return 0;
}

int h5io_read_f32_exact(hid_t loc, const char *name, int rank, const int64_t *dims, float *out,
                        const char *path, struct dp_error *err)
{
    return read_exact(loc, name, rank, dims, H5T_NATIVE_FLOAT, out, path, err);
}

int h5io_read_f64_exact(hid_t loc, const char *name, int64_t count, double *out, const char *path,
                        struct dp_error *err)
{
    return read_exact(loc, name, 1, &count, H5T_NATIVE_DOUBLE, out, path, err);
}

int h5io_read_i64_exact(hid_t loc, const char *name, int64_t count, int64_t *out, const char *path,
                        struct dp_error *err)
{
    return read_exact(loc, name, 1, &count, H5T_NATIVE_INT64, out, path, err);
}

void h5io_strings_free(char **strs)
{
    if (!strs)
        return;
    for (char **p = strs; *p; p++)
        free(*p);
    free(strs);
}
