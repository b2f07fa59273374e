/* Turning stored rows into model input: uint8 scaled to [0, 1], then optionally standardized with
 * per-feature mean and standard deviation (population, as scikit-learn's StandardScaler) computed
 * from the training rows only. The statistics travel in checkpoints so evaluate and predict apply
 * the same transform. */
#ifndef DPTRAIN_NORMALIZE_H
#define DPTRAIN_NORMALIZE_H

#include <stdint.h>

#include "data/dataset.h"

enum normalize_kind { NORMALIZE_NONE, NORMALIZE_STANDARD };

struct normalizer {
    enum normalize_kind kind;
    int64_t cols;
    double *mean; /* (cols) */
    double *std;  /* (cols); features with zero spread get 1 */
};

/* Streams rows [0, rows) of s once. */
int normalizer_fit(struct normalizer *n, const struct row_source *s, int64_t rows, struct dp_error *err);
void normalizer_init_none(struct normalizer *n, int64_t cols);
/* Converts count stored rows (x_dtype) into floats, in place semantics: out (count, cols). */
void normalizer_apply(const struct normalizer *n, float *out, const void *stored, enum x_dtype dtype,
                      int64_t count);
void normalizer_free(struct normalizer *n);

#endif
