#include "data/npy.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/file_checks.h"
#include "base/zip_archive.h"

static int little_endian_machine(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

/* The next n bytes of the stream; -1 with err when it ends first */
static int read_exact(struct npy_array *a, void *buf, size_t n, struct dp_error *err)
{
    if (a->zip) {
        int64_t got = zip_archive_stream_read(a->zip, buf, n, err);
        if (got < 0)
            return -1;
        if ((size_t)got == n)
            return 0;
    } else if (fread(buf, 1, n, a->file) == n) {
        return 0;
    } else if (ferror(a->file)) {
        return dp_error_set(err, DP_EXIT_INPUT, "%s: read failed: %s", a->where, strerror(errno));
    }
    return dp_error_set(err, DP_EXIT_INPUT, "%s: truncated: the header promises %lld rows of %lld %s values, the "
                        "file ends before", a->where, (long long)a->rows, (long long)a->row_items, a->descr);
}

static int seek_to(struct npy_array *a, uint64_t offset, struct dp_error *err)
{
    if (a->zip)
        return zip_archive_stream_seek(a->zip, offset, err);
    if (fseeko(a->file, (off_t)offset, SEEK_SET) != 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot seek: %s", a->where, strerror(errno));
    return 0;
}

/* The value of 'key': in the header's dict, or NULL */
static const char *header_value(const char *header, const char *key)
{
    char quoted[40];
    for (int q = 0; q < 2; q++) {
        snprintf(quoted, sizeof quoted, q ? "\"%s\"" : "'%s'", key);
        const char *at = strstr(header, quoted);
        if (at) {
            at += strlen(quoted);
            while (*at == ' ' || *at == ':')
                at++;
            return at;
        }
    }
    return NULL;
}

/* descr "<f8": byte order, kind, size */
static int parse_descr(struct npy_array *a, const char *v, struct dp_error *err)
{
    if (*v != '\'' && *v != '"')
        return dp_error_set(err, DP_EXIT_INPUT, "%s: a structured dtype (fields): only plain numbers are supported",
                            a->where);
    char quote = *v++;
    size_t n = 0;
    while (v[n] && v[n] != quote && n + 1 < sizeof a->descr)
        n++;
    memcpy(a->descr, v, n);
    a->descr[n] = 0;
    const char *d = a->descr;
    char order = *d;
    if (order == '<' || order == '>' || order == '|' || order == '=')
        d++;
    else
        order = '=';
    char kind = *d++;
    char *end;
    long size = strtol(d, &end, 10);
    if (*end || size <= 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: dtype '%s' is not a plain number type", a->where, a->descr);
    a->itemsize = (int)size;
    int big = order == '>' || (order == '=' && !little_endian_machine());
    a->swap = size > 1 && big == little_endian_machine();
    int ok;
    switch (kind) {
    case 'b': a->kind = NPY_KIND_BOOL; ok = size == 1; break;
    case 'i': a->kind = NPY_KIND_INT; ok = size == 1 || size == 2 || size == 4 || size == 8; break;
    case 'u': a->kind = NPY_KIND_UINT; ok = size == 1 || size == 2 || size == 4 || size == 8; break;
    case 'f':
        a->kind = NPY_KIND_FLOAT;
        /* 16: x86's 80-bit extended precision padded to 16 bytes (numpy's longdouble there) */
        ok = size == 2 || size == 4 || size == 8 || (size == 16 && LDBL_MANT_DIG == 64 && sizeof(long double) == 16);
        break;
    case 'c':
        return dp_error_set(err, DP_EXIT_INPUT, "%s: complex numbers (dtype '%s') cannot be features or targets: save "
                            "the real part (x.real) or both parts as columns", a->where, a->descr);
    default:
        return dp_error_set(err, DP_EXIT_INPUT, "%s: dtype '%s' holds no numbers dptrain reads (strings, objects, "
                            "dates?): save numbers (x.astype(np.float32))", a->where, a->descr);
    }
    if (!ok)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: dtype '%s' is not supported on this machine", a->where, a->descr);
    return 0;
}

/* shape (a, b, ...) */
static int parse_shape(struct npy_array *a, const char *v, struct dp_error *err)
{
    if (*v != '(')
        return dp_error_set(err, DP_EXIT_INPUT, "%s: the header's shape is not a tuple", a->where);
    v++;
    a->rank = 0;
    for (;;) {
        while (*v == ' ' || *v == ',')
            v++;
        if (*v == ')')
            break;
        char *end;
        errno = 0;
        long long d = strtoll(v, &end, 10);
        if (end == v || d < 0 || errno || a->rank == NPY_MAX_RANK)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: the header's shape is not a tuple of at most %d sizes",
                                a->where, NPY_MAX_RANK);
        a->shape[a->rank++] = d;
        v = end;
    }
    a->rows = a->rank ? a->shape[0] : 1;
    a->row_items = 1;
    for (int i = 1; i < a->rank; i++) {
        if (a->shape[i] > 0 && a->row_items > INT64_MAX / 16 / a->shape[i])
            return dp_error_set(err, DP_EXIT_INPUT, "%s: the shape is too large", a->where);
        a->row_items *= a->shape[i];
    }
    if (a->rows > 0 && a->row_items > 0 && a->rows > INT64_MAX / 16 / a->row_items)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: the shape is too large", a->where);
    return 0;
}

static int read_header(struct npy_array *a, struct dp_error *err)
{
    unsigned char magic[8];
    if (read_exact(a, magic, 8, err) != 0 || memcmp(magic, "\x93NUMPY", 6) != 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: not a NumPy .npy array (no \\x93NUMPY magic)", a->where);
    int major = magic[6];
    if (major < 1 || major > 3)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: .npy format version %d.%d is not known", a->where, major, magic[7]);
    unsigned char len_bytes[4] = {0};
    if (read_exact(a, len_bytes, major == 1 ? 2 : 4, err) != 0)
        return -1;
    uint32_t len = len_bytes[0] | (uint32_t)len_bytes[1] << 8 | (uint32_t)len_bytes[2] << 16 | (uint32_t)len_bytes[3] << 24;
    if (len > (1u << 20))
        return dp_error_set(err, DP_EXIT_INPUT, "%s: a header of %u bytes (damaged file?)", a->where, len);
    char *header = dp_malloc((size_t)len + 1, "an .npy header");
    int rc = read_exact(a, header, len, err);
    header[len] = 0;
    a->data_offset = 8 + (major == 1 ? 2u : 4u) + len;
    const char *descr = header_value(header, "descr"), *fortran = header_value(header, "fortran_order"),
               *shape = header_value(header, "shape");
    if (rc == 0 && (!descr || !fortran || !shape))
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: the header lacks descr, fortran_order or shape", a->where);
    if (rc == 0)
        rc = parse_descr(a, descr, err);
    if (rc == 0)
        rc = parse_shape(a, shape, err);
    a->fortran = rc == 0 && !strncmp(fortran, "True", 4) && a->rank > 1;
    free(header);
    return rc;
}

int npy_open(struct npy_array *a, const char *path, const char *member, struct dp_error *err)
{
    memset(a, 0, sizeof *a);
    if (member) {
        /* numpy.savez names the members KEY.npy */
        char name[256];
        snprintf(name, sizeof name, "%s.npy", member);
        snprintf(a->where, sizeof a->where, "%s (%s)", path, name);
        struct dp_error probe = {0};
        a->zip = zip_archive_stream_open(path, name, &probe);
        if (!a->zip && probe.msg[0] && strstr(probe.msg, "holds no")) {
            snprintf(a->where, sizeof a->where, "%s (%s)", path, member);
            a->zip = zip_archive_stream_open(path, member, &probe);
        }
        if (!a->zip) {
            char members[600];
            zip_archive_list(path, members, sizeof members);
            if (strstr(probe.msg, "holds no"))
                return dp_error_set(err, DP_EXIT_INPUT, "%s: no array '%s' (it holds %s)", path, member, members);
            *err = probe;
            return -1;
        }
    } else {
        snprintf(a->where, sizeof a->where, "%s", path);
        if (file_check_input(path, err) != 0)
            return -1;
        a->file = fopen(path, "rb");
        if (!a->file)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open: %s", path, strerror(errno));
    }
    if (read_header(a, err) != 0) {
        npy_close(a);
        return -1;
    }
    if (a->fortran)
        return npy_prepare_random(a, err);
    return 0;
}

int npy_prepare_random(struct npy_array *a, struct dp_error *err)
{
    if (a->memory || (!a->fortran && (!a->zip || zip_archive_stream_seekable(a->zip))))
        return 0;
    size_t bytes = (size_t)(a->rows * a->row_items) * (size_t)a->itemsize;
    if (a->next_row != 0) /* the stream is just past the header until a row is read */
        return dp_error_set(err, DP_EXIT_INTERNAL, "%s: read into memory after rows were read", a->where);
    a->memory = dp_malloc(bytes ? bytes : 1, "an array read into memory");
    if (read_exact(a, a->memory, bytes, err) != 0) {
        free(a->memory);
        a->memory = NULL;
        return -1;
    }
    a->next_row = a->rows;
    return 0;
}

/* One stored value as a double */
static double value_at(const struct npy_array *a, const unsigned char *p)
{
    unsigned char b[16];
    if (a->swap) {
        for (int i = 0; i < a->itemsize; i++)
            b[i] = p[a->itemsize - 1 - i];
        p = b;
    }
    switch (a->kind) {
    case NPY_KIND_BOOL:
        return *p != 0;
    case NPY_KIND_INT:
        switch (a->itemsize) {
        case 1: return *(const int8_t *)p;
        case 2: { int16_t v; memcpy(&v, p, 2); return v; }
        case 4: { int32_t v; memcpy(&v, p, 4); return v; }
        default: { int64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    case NPY_KIND_UINT:
        switch (a->itemsize) {
        case 1: return *p;
        case 2: { uint16_t v; memcpy(&v, p, 2); return v; }
        case 4: { uint32_t v; memcpy(&v, p, 4); return v; }
        default: { uint64_t v; memcpy(&v, p, 8); return (double)v; }
        }
    case NPY_KIND_FLOAT:
        switch (a->itemsize) {
        case 2: { /* IEEE half: sign, 5 exponent bits, 10 mantissa bits */
            uint16_t h;
            memcpy(&h, p, 2);
            int e = (h >> 10) & 31, m = h & 1023;
            double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(m + 1024, e - 25);
            return h & 0x8000 ? -v : v;
        }
        case 4: { float v; memcpy(&v, p, 4); return v; }
        case 8: { double v; memcpy(&v, p, 8); return v; }
        default: { long double v; memcpy(&v, p, sizeof v); return (double)v; }
        }
    }
    return NAN;
}

/* The offset, in items, of item j (C order within the row) of row r in a Fortran-order array */
static int64_t fortran_index(const struct npy_array *a, int64_t r, int64_t j)
{
    int64_t idx[NPY_MAX_RANK];
    for (int d = a->rank - 1; d >= 1; d--) {
        idx[d] = j % a->shape[d];
        j /= a->shape[d];
    }
    int64_t off = 0;
    for (int d = a->rank - 1; d >= 1; d--)
        off = off * a->shape[d] + idx[d];
    return r + a->rows * off;
}

int npy_read_rows(struct npy_array *a, int64_t first, int64_t count, double *out, struct dp_error *err)
{
    DP_ASSERT(first >= 0 && first + count <= a->rows);
    size_t isz = (size_t)a->itemsize, row_bytes = (size_t)a->row_items * isz;
    if (a->memory) {
        for (int64_t r = 0; r < count; r++)
            for (int64_t j = 0; j < a->row_items; j++) {
                int64_t k = a->fortran ? fortran_index(a, first + r, j) : (first + r) * a->row_items + j;
                out[r * a->row_items + j] = value_at(a, a->memory + (size_t)k * isz);
            }
        return 0;
    }
    if (first != a->next_row && seek_to(a, a->data_offset + (uint64_t)first * row_bytes, err) != 0)
        return -1;
    unsigned char *raw = dp_malloc(row_bytes * (size_t)count + 1, "rows");
    int rc = read_exact(a, raw, row_bytes * (size_t)count, err);
    for (int64_t i = 0; rc == 0 && i < count * a->row_items; i++)
        out[i] = value_at(a, raw + (size_t)i * isz);
    free(raw);
    a->next_row = first + count;
    return rc;
}

void npy_close(struct npy_array *a)
{
    if (a->file)
        fclose(a->file);
    zip_archive_stream_close(a->zip);
    free(a->memory);
    a->file = NULL;
    a->zip = NULL;
    a->memory = NULL;
}

void npy_describe(const struct npy_array *a, char *out, size_t len)
{
    static const char *const kinds[] = {"bool", "int", "uint", "float"};
    size_t n = a->kind == NPY_KIND_BOOL ? (size_t)snprintf(out, len, "bool (")
                                        : (size_t)snprintf(out, len, "%s%d (", kinds[a->kind], a->itemsize * 8);
    for (int i = 0; i < a->rank && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%lld", i ? ", " : "", (long long)a->shape[i]);
    if (n < len)
        snprintf(out + n, len - n, ")%s", a->fortran ? ", Fortran order" : "");
}
