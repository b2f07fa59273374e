#include "data/normalize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void normalizer_init_none(struct normalizer *n, int64_t cols)
{
    memset(n, 0, sizeof *n);
    n->kind = NORMALIZE_NONE;
    n->cols = cols;
}

static inline float stored_value(const void *stored, enum x_dtype dtype, int64_t i)
{
    return dtype == X_DTYPE_UINT8 ? (float)((const uint8_t *)stored)[i] * (1.0f / 255.0f)
                                  : ((const float *)stored)[i];
}

int normalizer_fit(struct normalizer *n, const struct row_source *s, int64_t rows, struct dp_error *err)
{
    memset(n, 0, sizeof *n);
    n->kind = NORMALIZE_STANDARD;
    n->cols = s->x_cols;
    n->mean = dp_calloc((size_t)s->x_cols, sizeof(double), "normalization");
    n->std = dp_calloc((size_t)s->x_cols, sizeof(double), "normalization");
    if (rows < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "no training rows to compute normalization from");
    int64_t chunk = s->chunk_rows > 0 ? s->chunk_rows : 4096;
    void *x = dp_malloc((size_t)chunk * row_source_x_row_bytes(s), "normalization rows");
    void *y = dp_malloc((size_t)chunk * row_source_y_row_bytes(s), "normalization rows");
    double *shift = dp_calloc((size_t)s->x_cols, sizeof(double), "normalization");
    double *sum = dp_calloc((size_t)s->x_cols, sizeof(double), "normalization");
    double *sumsq = dp_calloc((size_t)s->x_cols, sizeof(double), "normalization");
    int rc = 0;
    for (int64_t start = 0; start < rows && rc == 0; start += chunk) {
        int64_t count = rows - start < chunk ? rows - start : chunk;
        if (row_source_read(s, start, count, x, y, err) != 0) {
            rc = -1;
            break;
        }
        if (start == 0)
            for (int64_t j = 0; j < s->x_cols; j++)
                shift[j] = stored_value(x, s->x_dtype, j); /* shifted sums: no cancellation */
        for (int64_t r = 0; r < count; r++)
            for (int64_t j = 0; j < s->x_cols; j++) {
                double d = stored_value(x, s->x_dtype, r * s->x_cols + j) - shift[j];
                sum[j] += d;
                sumsq[j] += d * d;
            }
    }
    for (int64_t j = 0; j < s->x_cols && rc == 0; j++) {
        double m = sum[j] / (double)rows;
        double var = sumsq[j] / (double)rows - m * m;
        n->mean[j] = shift[j] + m;
        n->std[j] = var > 1e-24 ? sqrt(var) : 1.0;
    }
    free(x);
    free(y);
    free(shift);
    free(sum);
    free(sumsq);
    return rc;
}

void normalizer_apply(const struct normalizer *n, float *out, const void *stored, enum x_dtype dtype,
                      int64_t count)
{
    int64_t cols = n->cols;
    if (n->kind == NORMALIZE_NONE) {
        if (dtype == X_DTYPE_FLOAT32) {
            memmove(out, stored, (size_t)(count * cols) * sizeof(float));
        } else {
            for (int64_t i = 0; i < count * cols; i++)
                out[i] = stored_value(stored, dtype, i);
        }
        return;
    }
    for (int64_t r = 0; r < count; r++)
        for (int64_t j = 0; j < cols; j++) {
            int64_t i = r * cols + j;
            out[i] = (float)((stored_value(stored, dtype, i) - n->mean[j]) / n->std[j]);
        }
}

void normalizer_free(struct normalizer *n)
{
    free(n->mean);
    free(n->std);
    memset(n, 0, sizeof *n);
}
