/* MNIST IDX files (gzip-compressed or not): big-endian header, magic 0x0803 (images, uint8,
 * 3 dimensions) or 0x0801 (labels, uint8, 1 dimension). */
#ifndef DPTRAIN_MNIST_IDX_H
#define DPTRAIN_MNIST_IDX_H

#include <stdint.h>
#include <zlib.h>

#include "base/errors.h"

struct idx_file {
    char path[4096];
    gzFile gz;
    int ndims;
    int64_t dims[3];
};

/* Opens DIR/NAME or DIR/NAME.gz and checks the header: expect_dims 3 (images) or 1 (labels). */
int idx_open(struct idx_file *f, const char *dir, const char *name, int expect_dims, struct dp_error *err);
/* Reads exactly bytes; a short file is an error naming it. */
int idx_read(struct idx_file *f, void *buf, int64_t bytes, struct dp_error *err);
void idx_close(struct idx_file *f);

#endif
