/* Epoch order and batches over a range of rows of a row source, with bounded memory.
 *
 * Order (shuffle on): rows are grouped in blocks of whole HDF5 chunks; the block order is permuted
 * from (seed, epoch); consecutive permuted blocks form windows that fit data.shuffle_buffer_mb; the
 * rows of each window are permuted from (seed, epoch, window). When everything fits in one window
 * (cancer, MNIST) this is a uniform permutation of all rows and the data is read once per run.
 * The order depends on seed, epoch, data and buffer size only, never on ranks.
 * Memory is the window (at most the buffer) and O(1) in the row count: the block order is a keyed
 * bijection computed per block (base/keyed_permutation.h), and window boundaries are arithmetic.
 * Stored rows are checked when loaded: NaN or Inf features, and labels outside [0, classes), stop
 * with a message naming the file and row. */
#ifndef DPTRAIN_BATCH_READER_H
#define DPTRAIN_BATCH_READER_H

#include <stdint.h>

#include "base/keyed_permutation.h"
#include "data/dataset.h"
#include "data/normalize.h"

struct host_batch {
    int64_t rows;
    float *x;            /* (rows, x_cols) model input */
    int32_t *labels;     /* (rows) when the loss takes labels, else NULL */
    float *values;       /* (rows, k) when the loss takes float targets, else NULL */
    int64_t *sample_ids; /* (rows) global row index, for dropout keys */
};

struct batch_reader {
    const struct row_source *src;
    const struct normalizer *norm;
    int64_t first_row, nrows;  /* the range [first_row, first_row + nrows) of src */
    int shuffle;
    uint64_t seed;
    int want_labels;           /* produce labels (else float values) */
    int64_t classes;           /* labels must be < classes (2 for a single sigmoid output) */
    int64_t k;                 /* target columns the model produces */

    int64_t block_rows, nblocks, window_blocks, nwindows;
    /* The epoch's block order: slot s of the epoch holds block block_order(s) when shuffled across
     * windows, block s otherwise. Only the last block can be shorter than block_rows. */
    int blocks_shuffled;
    struct keyed_permutation block_order;
    int64_t short_block_slot;  /* the slot of the shorter last block; -1 when every block is full */
    int64_t epoch;

    /* The loaded window: epoch positions [cur_start, cur_end) */
    int64_t cur_window, cur_window_epoch, cur_start, cur_end;
    int64_t window_rows;
    uint8_t *wx, *wy;          /* stored rows */
    int64_t *wrow;             /* (window rows) row index within the range */
    uint64_t *wperm;           /* (window rows) position -> local index */
    int64_t rows_read;         /* rows loaded from storage so far */

    /* Sharded reading: batches of slice_batch consecutive positions are split over slice_size
     * ranks (batch_slice); this reader loads only the rows of slice_rank's slices. */
    int64_t slice_batch;
    int slice_rank, slice_size;
    uint8_t *wneeded;          /* (window rows) 1 when this rank reads the row */
};

/* Rows [lo, hi) of a batch of `rows` rows that `rank` of `size` takes: contiguous, sizes differ by at
 * most one, independent of anything else. */
static inline void batch_slice(int64_t rows, int rank, int size, int64_t *lo, int64_t *hi)
{
    *lo = rows * rank / size;
    *hi = rows * (rank + 1) / size;
}

int batch_reader_init(struct batch_reader *r, const struct row_source *src, const struct normalizer *norm,
                      int64_t first_row, int64_t nrows, int shuffle, uint64_t seed, int64_t buffer_mb,
                      int want_labels, int64_t classes, int64_t k, struct dp_error *err);
void batch_reader_begin_epoch(struct batch_reader *r, int64_t epoch);
/* The first epoch position of window w (w == nwindows: nrows). */
int64_t batch_reader_window_start(const struct batch_reader *r, int64_t w);
/* Read only the rows that `rank` of `size` uses when positions are consumed in batches of `batch`
 * (size 1: everything). Call before the first read. */
void batch_reader_set_slice(struct batch_reader *r, int64_t batch, int rank, int size);
/* Fills b with the rows at epoch positions [pos, pos + count). */
int batch_reader_read(struct batch_reader *r, int64_t pos, int64_t count, struct host_batch *b,
                      struct dp_error *err);
void batch_reader_free(struct batch_reader *r);

void host_batch_alloc(struct host_batch *b, int64_t rows, int64_t x_cols, int64_t k, int want_labels);
void host_batch_free(struct host_batch *b);

#endif
