#include "train/history.h"

#include "base/atomic_file.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void history_append(struct history *h, const double row[HISTORY_COLUMNS])
{
    if (h->rows == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->v = dp_realloc(h->v, (size_t)h->cap * HISTORY_COLUMNS * sizeof(double), "history");
    }
    memcpy(h->v + h->rows * HISTORY_COLUMNS, row, HISTORY_COLUMNS * sizeof(double));
    h->rows++;
}

int history_write_csv(const struct history *h, const char *path, const char *metric, struct dp_error *err)
{
    struct atomic_file out;
    if (atomic_file_open(&out, path, err) != 0)
        return -1;
    FILE *f = out.f;
    if (metric)
        fprintf(f, "epoch,loss,%s,val_loss,val_%s,seconds,lr\n", metric, metric);
    else
        fprintf(f, "epoch,loss,val_loss,seconds,lr\n");
    for (int64_t r = 0; r < h->rows; r++) {
        const double *v = h->v + r * HISTORY_COLUMNS;
        for (int c = 0; c < HISTORY_COLUMNS; c++) {
            if (!metric && (c == HISTORY_METRIC || c == HISTORY_VAL_METRIC))
                continue;
            if (c > 0)
                fputc(',', f);
            if (c == HISTORY_EPOCH)
                fprintf(f, "%d", (int)v[c]);
            else if (!isnan(v[c]))
                fprintf(f, "%.9g", v[c]);
        }
        fputc('\n', f);
    }
    return atomic_file_commit(&out, err);
}

void history_free(struct history *h)
{
    free(h->v);
    memset(h, 0, sizeof *h);
}
