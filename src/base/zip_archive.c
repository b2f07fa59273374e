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

int zip_archive_read(const char *path, const char *name, char **data, size_t *len, struct dp_error *err)
{
    *data = NULL;
    *len = 0;
    if (file_check_input(path, err) != 0)
        return -1;
    int code = 0;
    /* ZIP_CHECKCONS: the central directory must agree with the local headers (a cut or spliced
     * file is refused here rather than read half) */
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, code);
        int rc = dp_error_set(err, DP_EXIT_INPUT, "%s: not a readable zip archive (%s)", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return rc;
    }
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
