#include "data/batch_reader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

/* Window permutations use counters above this offset, block permutations below it. */
#define WINDOW_COUNTER_STRIDE (UINT64_C(1) << 40)

void host_batch_alloc(struct host_batch *b, int64_t rows, int64_t x_cols, int64_t k, int want_labels)
{
    memset(b, 0, sizeof *b);
    b->x = dp_malloc((size_t)(rows * x_cols) * sizeof(float), "the input batch");
    if (want_labels)
        b->labels = dp_malloc((size_t)rows * sizeof(int32_t), "batch labels");
    else
        b->values = dp_malloc((size_t)(rows * k) * sizeof(float), "batch targets");
    b->sample_ids = dp_malloc((size_t)rows * sizeof(int64_t), "batch sample ids");
}

void host_batch_free(struct host_batch *b)
{
    free(b->x);
    free(b->labels);
    free(b->values);
    free(b->sample_ids);
    memset(b, 0, sizeof *b);
}

int batch_reader_init(struct batch_reader *r, const struct row_source *src, const struct normalizer *norm,
                      int64_t first_row, int64_t nrows, int shuffle, uint64_t seed, int64_t buffer_mb,
                      int want_labels, int64_t classes, int64_t k, struct dp_error *err)
{
    memset(r, 0, sizeof *r);
    r->src = src;
    r->norm = norm;
    r->first_row = first_row;
    r->nrows = nrows;
    r->shuffle = shuffle;
    r->seed = seed;
    r->want_labels = want_labels;
    r->classes = classes;
    r->k = k;
    if (want_labels && !src->y_labels)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: the loss needs integer class labels but /%s/y holds "
                            "float targets", src->nparts ? src->parts[0].path : "data", src->group);
    if (!src->y_labels && src->y_cols != k)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: /%s/y has %lld columns but the model's last layer "
                            "has %lld units", src->nparts ? src->parts[0].path : "data", src->group,
                            (long long)src->y_cols, (long long)k);

    int64_t chunk = src->chunk_rows > 0 ? src->chunk_rows : 4096;
    r->block_rows = chunk * (chunk < 1024 ? (1024 + chunk - 1) / chunk : 1);
    r->nblocks = (nrows + r->block_rows - 1) / r->block_rows;
    size_t row_bytes = row_source_x_row_bytes(src) + row_source_y_row_bytes(src) + 16;
    int64_t budget_rows = (int64_t)((size_t)buffer_mb * 1048576 / row_bytes);
    r->window_blocks = budget_rows / r->block_rows;
    if (r->window_blocks < 1)
        r->window_blocks = 1;
    if (r->window_blocks > r->nblocks)
        r->window_blocks = r->nblocks ? r->nblocks : 1;
    r->nwindows = (r->nblocks + r->window_blocks - 1) / r->window_blocks;
    int64_t cap = r->window_blocks * r->block_rows;
    if (cap > nrows)
        cap = nrows;
    r->wx = dp_malloc((size_t)(cap ? cap : 1) * row_source_x_row_bytes(src), "the read window");
    r->wy = dp_malloc((size_t)(cap ? cap : 1) * row_source_y_row_bytes(src), "the read window");
    r->wrow = dp_malloc((size_t)(cap ? cap : 1) * sizeof(int64_t), "the read window");
    r->wperm = dp_malloc((size_t)(cap ? cap : 1) * sizeof(uint64_t), "the read window");
    r->wneeded = dp_malloc((size_t)(cap ? cap : 1), "the read window");
    r->slice_size = 1;
    r->cur_window = -1;
    r->cur_window_epoch = -1;
    r->epoch = 0;
    batch_reader_begin_epoch(r, 0);
    return 0;
}

static int64_t block_size(const struct batch_reader *r, uint64_t block)
{
    int64_t start = (int64_t)block * r->block_rows;
    return r->nrows - start < r->block_rows ? r->nrows - start : r->block_rows;
}

void batch_reader_begin_epoch(struct batch_reader *r, int64_t epoch)
{
    r->epoch = epoch;
    /* With one window the block order cannot matter, and keeping it fixed lets the data stay loaded. */
    r->blocks_shuffled = r->shuffle && r->nwindows > 1;
    if (r->blocks_shuffled)
        keyed_permutation_init(&r->block_order, (uint64_t)r->nblocks, r->seed, RNG_DOMAIN_SHUFFLE,
                               (uint32_t)epoch, 0);
    int64_t last = r->nblocks - 1;
    if (r->nblocks == 0 || block_size(r, (uint64_t)last) == r->block_rows)
        r->short_block_slot = -1;
    else
        r->short_block_slot = r->blocks_shuffled ? (int64_t)keyed_permutation_inverse(&r->block_order, (uint64_t)last)
                                                 : last;
}

static uint64_t block_at_slot(const struct batch_reader *r, int64_t slot)
{
    return r->blocks_shuffled ? keyed_permutation_forward(&r->block_order, (uint64_t)slot) : (uint64_t)slot;
}

int64_t batch_reader_window_start(const struct batch_reader *r, int64_t w)
{
    if (w >= r->nwindows)
        return r->nrows;
    int64_t first_slot = w * r->window_blocks;
    int64_t start = first_slot * r->block_rows;
    if (r->short_block_slot >= 0 && r->short_block_slot < first_slot)
        start -= r->block_rows - block_size(r, (uint64_t)(r->nblocks - 1));
    return start;
}

/* The window holding epoch position p: windows are window_blocks full blocks, except the one with
 * the short block, so the estimate from full windows is off by at most one. */
static int64_t window_of(const struct batch_reader *r, int64_t p)
{
    int64_t w = p / (r->window_blocks * r->block_rows);
    if (w >= r->nwindows)
        w = r->nwindows - 1;
    while (w > 0 && batch_reader_window_start(r, w) > p)
        w--;
    while (w + 1 < r->nwindows && batch_reader_window_start(r, w + 1) <= p)
        w++;
    return w;
}

void batch_reader_set_slice(struct batch_reader *r, int64_t batch, int rank, int size)
{
    r->slice_batch = batch;
    r->slice_rank = rank;
    r->slice_size = size;
    r->cur_window = -1;
}

static int check_rows(const struct batch_reader *r, int64_t n, struct dp_error *err)
{
    const struct row_source *s = r->src;
    char where[512];
    if (s->x_dtype == X_DTYPE_FLOAT32) {
        const float *x = (const float *)r->wx;
        for (int64_t i = 0; i < n * s->x_cols; i++)
            if (r->wneeded[i / s->x_cols] && !isfinite(x[i])) {
                row_source_where(s, r->first_row + r->wrow[i / s->x_cols], where, sizeof where);
                return dp_error_set(err, DP_EXIT_INPUT, "%s: feature %lld is %s", where,
                                    (long long)(i % s->x_cols), isnan(x[i]) ? "NaN" : "infinite");
            }
    }
    if (s->y_labels) {
        const int32_t *y = (const int32_t *)r->wy;
        for (int64_t i = 0; i < n; i++)
            if (r->wneeded[i] && (y[i] < 0 || y[i] >= r->classes)) {
                row_source_where(s, r->first_row + r->wrow[i], where, sizeof where);
                return dp_error_set(err, DP_EXIT_INPUT, "%s: label %d is out of range for the output "
                                    "layer (expected 0..%lld: classes count from 0; give the last layer %d units, or "
                                    "relabel the data from 0)", where, y[i], (long long)r->classes - 1, y[i] + 1);
            }
    } else {
        const float *y = (const float *)r->wy;
        for (int64_t i = 0; i < n * s->y_cols; i++)
            if (r->wneeded[i / s->y_cols] && !isfinite(y[i])) {
                row_source_where(s, r->first_row + r->wrow[i / s->y_cols], where, sizeof where);
                return dp_error_set(err, DP_EXIT_INPUT, "%s: target %lld is not finite", where,
                                    (long long)(i % s->y_cols));
            }
    }
    return 0;
}

static void window_permutation(struct batch_reader *r, int64_t w, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        r->wperm[i] = (uint64_t)i;
    if (r->shuffle)
        rng_shuffle_u64(r->wperm, (uint64_t)n, r->seed, RNG_DOMAIN_SHUFFLE, (uint32_t)r->epoch,
                        WINDOW_COUNTER_STRIDE * (uint64_t)(w + 1));
}

/* Marks the window rows this rank's batch slices use. */
static void mark_needed(struct batch_reader *r, int64_t n)
{
    if (r->slice_size <= 1) {
        memset(r->wneeded, 1, (size_t)n);
        return;
    }
    memset(r->wneeded, 0, (size_t)n);
    for (int64_t p = r->cur_start; p < r->cur_end; p++) {
        int64_t b = p / r->slice_batch, i = p - b * r->slice_batch;
        int64_t rows = r->nrows - b * r->slice_batch < r->slice_batch ? r->nrows - b * r->slice_batch : r->slice_batch;
        int64_t lo, hi;
        batch_slice(rows, r->slice_rank, r->slice_size, &lo, &hi);
        if (i >= lo && i < hi)
            r->wneeded[r->wperm[p - r->cur_start]] = 1;
    }
}

static int load_window(struct batch_reader *r, int64_t w, struct dp_error *err)
{
    int all = r->slice_size <= 1;
    if (r->cur_window == w && r->cur_window_epoch == r->epoch)
        return 0;
    if (all && r->cur_window == w && r->nwindows == 1) {
        /* Same rows, new epoch: only the permutation changes. */
        window_permutation(r, w, r->window_rows);
        r->cur_window_epoch = r->epoch;
        return 0;
    }
    size_t xb = row_source_x_row_bytes(r->src), yb = row_source_y_row_bytes(r->src);
    int64_t n = 0;
    for (int64_t b = w * r->window_blocks; b < (w + 1) * r->window_blocks && b < r->nblocks; b++) {
        uint64_t blk = block_at_slot(r, b);
        int64_t start = (int64_t)blk * r->block_rows, count = block_size(r, blk);
        for (int64_t i = 0; i < count; i++)
            r->wrow[n + i] = start + i;
        n += count;
    }
    r->window_rows = n;
    r->cur_start = batch_reader_window_start(r, w);
    r->cur_end = batch_reader_window_start(r, w + 1);
    window_permutation(r, w, n);
    mark_needed(r, n);
    /* Read runs of needed rows; each run is consecutive in storage. */
    for (int64_t i = 0; i < n;) {
        if (!r->wneeded[i]) {
            i++;
            continue;
        }
        int64_t j = i + 1;
        while (j < n && r->wneeded[j] && r->wrow[j] == r->wrow[j - 1] + 1)
            j++;
        if (row_source_read(r->src, r->first_row + r->wrow[i], j - i, r->wx + (size_t)i * xb, r->wy + (size_t)i * yb,
                            err) != 0)
            return -1;
        r->rows_read += j - i;
        i = j;
    }
    r->cur_window = w;
    r->cur_window_epoch = r->epoch;
    return check_rows(r, n, err);
}

int batch_reader_read(struct batch_reader *r, int64_t pos, int64_t count, struct host_batch *b,
                      struct dp_error *err)
{
    const struct row_source *s = r->src;
    size_t xb = row_source_x_row_bytes(s);
    int64_t done = 0;
    b->rows = count;
    while (done < count) {
        int64_t p = pos + done;
        int in_loaded = r->cur_window >= 0 && r->cur_window_epoch == r->epoch && p >= r->cur_start && p < r->cur_end;
        int64_t w = in_loaded ? r->cur_window : window_of(r, p);
        if (load_window(r, w, err) != 0)
            return -1;
        int64_t end = r->cur_end - p;
        int64_t n = count - done < end ? count - done : end;
        for (int64_t i = 0; i < n; i++) {
            int64_t local = (int64_t)r->wperm[p - r->cur_start + i];
            int64_t row = done + i;
            normalizer_apply(r->norm, b->x + row * s->x_cols, r->wx + (size_t)local * xb, s->x_dtype, 1);
            b->sample_ids[row] = r->first_row + r->wrow[local];
            if (s->y_labels) {
                int32_t label = ((const int32_t *)r->wy)[local];
                if (r->want_labels)
                    b->labels[row] = label;
                else
                    for (int64_t j = 0; j < r->k; j++)
                        b->values[row * r->k + j] = r->k == 1 ? (float)label : (float)(label == j);
            } else {
                memcpy(b->values + row * r->k, (const float *)r->wy + local * s->y_cols,
                       (size_t)s->y_cols * sizeof(float));
            }
        }
        done += n;
    }
    return 0;
}

void batch_reader_free(struct batch_reader *r)
{
    free(r->wx);
    free(r->wy);
    free(r->wrow);
    free(r->wperm);
    free(r->wneeded);
    memset(r, 0, sizeof *r);
}
