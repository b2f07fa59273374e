#include "base/zip_archive.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"

int zip_archive_is_zip(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char sig[4] = {0};
    size_t n = fread(sig, 1, 4, f);
    fclose(f);
    return n == 4 && sig[0] == 'P' && sig[1] == 'K' && sig[2] == 3 && sig[3] == 4;
}

struct zip_stream {
    zip_t *z;
    zip_file_t *f;
    char path[4096], name[256];
    uint64_t size, pos;
    int stored, at_end;
};

static int open_zip(const char *path, zip_t **z, struct dp_error *err)
{
    int code = 0;
    /* ZIP_CHECKCONS: the central directory must agree with the local headers (a cut or spliced
     * file is refused here rather than read half) */
    *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (*z)
        return 0;
    zip_error_t ze;
    zip_error_init_with_code(&ze, code);
    dp_error_set(err, DP_EXIT_INPUT, "%s: not a readable zip archive (%s)", path, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return -1;
}

struct zip_stream *zip_archive_stream_open(const char *path, const char *name, struct dp_error *err)
{
    if (file_check_input(path, err) != 0)
        return NULL;
    struct zip_stream *s = dp_calloc(1, sizeof *s, "a zip member");
    zip_stat_t st;
    snprintf(s->path, sizeof s->path, "%s", path);
    snprintf(s->name, sizeof s->name, "%s", name);
    if (open_zip(path, &s->z, err) != 0) {
        free(s);
        return NULL;
    }
    if (zip_stat(s->z, name, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: the archive holds no %s", path, name);
    } else if (!(s->f = zip_fopen(s->z, name, 0))) {
        dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open member %s (%s)", path, name, zip_strerror(s->z));
    } else {
        s->size = st.size;
        s->stored = (st.valid & ZIP_STAT_COMP_METHOD) && st.comp_method == ZIP_CM_STORE;
        return s;
    }
    zip_discard(s->z);
    free(s);
    return NULL;
}

int64_t zip_archive_stream_read(struct zip_stream *s, void *buf, size_t n, struct dp_error *err)
{
    size_t want = s->size - s->pos < n ? (size_t)(s->size - s->pos) : n, got = 0;
    zip_int64_t r = 0;
    while (got < want && (r = zip_fread(s->f, (char *)buf + got, want - got)) > 0)
        got += (size_t)r;
    s->pos += got;
    char probe;
    /* at the end, one more read lets libzip check the CRC (0: it matched) */
    if (got < want || (s->pos == s->size && !s->at_end && zip_fread(s->f, &probe, 1) != 0))
        return dp_error_set(err, DP_EXIT_INPUT, "%s: member %s is damaged (%s)", s->path, s->name,
                            zip_file_strerror(s->f));
    s->at_end = s->pos == s->size;
    return (int64_t)got;
}

int zip_archive_stream_seekable(const struct zip_stream *s)
{
    return s->stored;
}

int zip_archive_stream_seek(struct zip_stream *s, uint64_t offset, struct dp_error *err)
{
    if (!s->stored || offset > s->size || zip_fseek(s->f, (zip_int64_t)offset, SEEK_SET) != 0)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: member %s cannot be read out of order (%s)", s->path, s->name,
                            s->stored ? zip_file_strerror(s->f) : "it is compressed");
    s->pos = offset;
    s->at_end = 0;
    return 0;
}

void zip_archive_stream_close(struct zip_stream *s)
{
    if (!s)
        return;
    zip_fclose(s->f);
    zip_discard(s->z);
    free(s);
}

void zip_archive_list(const char *path, char *out, size_t len)
{
    out[0] = 0;
    zip_t *z;
    if (open_zip(path, &z, NULL) != 0)
        return;
    size_t n = 0;
    for (zip_int64_t i = 0; i < zip_get_num_entries(z, 0) && n < len; i++)
        n += (size_t)snprintf(out + n, len - n, "%s%s", i ? ", " : "", zip_get_name(z, (zip_uint64_t)i, 0));
    zip_discard(z);
}

int zip_archive_read(const char *path, const char *name, char **data, size_t *len, struct dp_error *err)
{
    *data = NULL;
    *len = 0;
    if (file_check_input(path, err) != 0)
        return -1;
    zip_t *z;
    if (open_zip(path, &z, err) != 0)
        return -1;
    int rc = 0;
    zip_stat_t st;
    zip_file_t *zf = NULL;
    if (zip_stat(z, name, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: the archive holds no %s", path, name);
    } else if (st.size > (zip_uint64_t)1 << 40) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: member %s claims %llu bytes (damaged archive?)", path, name,
                          (unsigned long long)st.size);
    } else if (!(zf = zip_fopen(z, name, 0))) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s: cannot open member %s (%s)", path, name, zip_strerror(z));
    } else {
        char *buf = dp_malloc((size_t)st.size + 1, "a zip member");
        zip_int64_t got = 0, n = 1;
        while ((zip_uint64_t)got < st.size && (n = zip_fread(zf, buf + got, st.size - (zip_uint64_t)got)) > 0)
            got += n;
        /* libzip checks the CRC when the end is reached: one more read finds it (0) or fails */
        char probe;
        if (n >= 0 && (zip_uint64_t)got == st.size)
            n = zip_fread(zf, &probe, 1);
        if (n != 0 || (zip_uint64_t)got != st.size) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s: member %s is damaged (%s)", path, name, zip_file_strerror(zf));
            free(buf);
        } else {
            buf[got] = 0;
            *data = buf;
            *len = (size_t)got;
        }
        zip_fclose(zf);
    }
    zip_discard(z);
    return rc;
}

int zip_archive_write(const char *path, const struct zip_member *members, int n, struct dp_error *err)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!src)
        dp_die(DP_EXIT_INTERNAL, "%s: libzip cannot make a buffer (%s)", path, zip_error_strerror(&ze));
    zip_source_keep(src); /* the archive's bytes stay in src after zip_close */
    zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    if (!z)
        dp_die(DP_EXIT_INTERNAL, "%s: libzip cannot start an archive (%s)", path, zip_error_strerror(&ze));
    for (int i = 0; i < n; i++) {
        zip_source_t *m = zip_source_buffer(z, members[i].data, members[i].len, 0);
        if (!m || zip_file_add(z, members[i].name, m, ZIP_FL_ENC_UTF_8) < 0)
            dp_die(DP_EXIT_INTERNAL, "%s: libzip cannot add %s (%s)", path, members[i].name, zip_strerror(z));
    }
    if (zip_close(z) != 0)
        dp_die(DP_EXIT_INTERNAL, "%s: libzip cannot finish the archive (%s)", path, zip_strerror(z));

    zip_stat_t st;
    if (zip_source_stat(src, &st) != 0 || zip_source_open(src) != 0)
        dp_die(DP_EXIT_INTERNAL, "%s: libzip cannot read back the archive", path);
    char *bytes = dp_malloc(st.size ? (size_t)st.size : 1, "a zip archive");
    zip_int64_t got = zip_source_read(src, bytes, st.size);
    zip_source_close(src);
    zip_source_free(src);
    zip_error_fini(&ze);
    if (got < 0 || (zip_uint64_t)got != st.size)
        dp_die(DP_EXIT_INTERNAL, "%s: libzip read back %lld of %llu bytes", path, (long long)got,
               (unsigned long long)st.size);

    struct atomic_file f;
    int rc = atomic_file_open(&f, path, err);
    if (rc == 0) {
        fwrite(bytes, 1, (size_t)got, f.f);
        rc = atomic_file_commit(&f, err);
    }
    free(bytes);
    return rc;
}
