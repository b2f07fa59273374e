#include "data/mnist_idx.h"
#include "base/file_checks.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

int idx_open(struct idx_file *f, const char *dir, const char *name, int expect_dims, struct dp_error *err)
{
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s/%s.gz", dir, name);
    if (access(f->path, R_OK) != 0)
        snprintf(f->path, sizeof f->path, "%s/%s", dir, name);
    if (file_check_input(f->path, err) != 0)
        return -1;
    f->gz = gzopen(f->path, "rb"); /* reads plain files too */
    if (!f->gz)
        return dp_error_set(err, DP_EXIT_INPUT, "%s(.gz): cannot open", f->path);
    unsigned char head[4];
    if (idx_read(f, head, 4, err) != 0)
        return -1;
    int want_magic = expect_dims == 3 ? 0x0803 : 0x0801;
    int magic = (head[2] << 8) | head[3];
    if (head[0] != 0 || head[1] != 0 || magic != want_magic)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: not an MNIST %s file (magic %02x%02x%02x%02x, expected %08x)",
                            f->path, expect_dims == 3 ? "image" : "label", head[0], head[1], head[2], head[3],
                            want_magic);
    f->ndims = expect_dims;
    for (int i = 0; i < expect_dims; i++) {
        unsigned char d[4];
        if (idx_read(f, d, 4, err) != 0)
            return -1;
        f->dims[i] = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
        if (f->dims[i] < 1)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: dimension %d is %lld", f->path, i, (long long)f->dims[i]);
    }
    return 0;
}

int idx_read(struct idx_file *f, void *buf, int64_t bytes, struct dp_error *err)
{
    char *p = buf;
    while (bytes > 0) {
        int chunk = bytes > (1 << 30) ? (1 << 30) : (int)bytes;
        int got = gzread(f->gz, p, (unsigned)chunk);
        if (got <= 0) {
            int zerr;
            const char *msg = gzerror(f->gz, &zerr);
            return dp_error_set(err, DP_EXIT_INPUT, "%s: truncated or damaged (%s)", f->path,
                                got < 0 && msg ? msg : "unexpected end of file");
        }
        p += got;
        bytes -= got;
    }
    return 0;
}

void idx_close(struct idx_file *f)
{
    if (f->gz)
        gzclose(f->gz);
    f->gz = NULL;
}
