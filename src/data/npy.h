/* NumPy's .npy arrays (numpy.save), alone or as members of an .npz (numpy.savez, a zip), read row
 * by row: the header (format versions 1 to 3: magic, the dict of descr, fortran_order and shape)
 * is parsed here, as NumPy's format document describes it; the bytes come from the file or the zip
 * member (base/zip_archive.h).
 *
 * Every numeric dtype numpy.save writes is read, in either byte order: bool, int8 to int64, uint8
 * to uint64, float16, float32, float64 and x86's 80-bit long double (float128 on disk); complex,
 * strings, objects and structured dtypes are refused with one line. Rows are the first axis.
 * A C-order array in a file (or an uncompressed .npz, numpy.savez's default) is read in place with
 * bounded memory, in any row order; a Fortran-order array, or one in a compressed .npz read out of
 * order, is read into memory first (its own size) and converted. */
#ifndef DPTRAIN_NPY_H
#define DPTRAIN_NPY_H

#include <stdint.h>
#include <stdio.h>

#include "base/errors.h"

#define NPY_MAX_RANK 8

enum npy_kind { NPY_KIND_BOOL, NPY_KIND_INT, NPY_KIND_UINT, NPY_KIND_FLOAT };

struct npy_array {
    char where[4400];          /* "x.npy", or "d.npz (x.npy)", for messages */
    char descr[16];            /* as the header says: "<f8" */
    enum npy_kind kind;
    int itemsize;
    int swap;                  /* stored in the other byte order than this machine's */
    int fortran;
    int rank;
    int64_t shape[NPY_MAX_RANK];
    int64_t rows, row_items;   /* shape[0] (1 for a scalar), and the product of the rest */

    FILE *file;
    struct zip_stream *zip;
    uint64_t data_offset;      /* where the data starts in the stream */
    int64_t next_row;          /* the stream's position, in rows */
    unsigned char *memory;     /* the whole data, when it is read into memory */
};

/* Opens path (a .npy) or, with member non-NULL, the member "member.npy" (or "member") of the
 * .npz at path. Bad input: -1 with err (DP_EXIT_INPUT) naming the file, member and problem. */
int npy_open(struct npy_array *a, const char *path, const char *member, struct dp_error *err);

/* Rows will be read out of order: reads the array into memory when it cannot seek. */
int npy_prepare_random(struct npy_array *a, struct dp_error *err);

/* Reads rows [first, first + count) into out (count * row_items doubles, each row in C order).
 * A file shorter than its header says: -1 with err. */
int npy_read_rows(struct npy_array *a, int64_t first, int64_t count, double *out, struct dp_error *err);

void npy_close(struct npy_array *a);

/* "float32 (1000, 28, 28)" */
void npy_describe(const struct npy_array *a, char *out, size_t len);

#endif
