/* Per-epoch training history: one row per epoch; NaN where a column does not apply. */
#ifndef DPTRAIN_HISTORY_H
#define DPTRAIN_HISTORY_H

#include <stdint.h>

#include "base/errors.h"

enum history_column {
    HISTORY_EPOCH, HISTORY_LOSS, HISTORY_METRIC, HISTORY_VAL_LOSS, HISTORY_VAL_METRIC,
    HISTORY_SECONDS, HISTORY_LR, HISTORY_COLUMNS
};

struct history {
    int64_t rows, cap;
    double *v; /* (rows, HISTORY_COLUMNS) */
};

void history_append(struct history *h, const double row[HISTORY_COLUMNS]);
/* history.csv: epoch,loss,<metric>,val_loss,val_<metric>,seconds,lr (empty where not applicable). */
int history_write_csv(const struct history *h, const char *path, const char *metric, struct dp_error *err);
void history_free(struct history *h);

#endif
