#include "train/score_pairs.h"

#include <stdlib.h>

#include "dist/comm.h"

void score_pairs_clear(struct score_pairs *s)
{
    s->n = 0;
}

void score_pairs_add(struct score_pairs *s, const float *y, const struct host_batch *b, int64_t rows, int64_t k)
{
    if (s->n + rows > s->cap) {
        s->cap = (s->n + rows) * 2;
        s->p = dp_realloc(s->p, (size_t)s->cap * sizeof *s->p, "AUC scores");
    }
    int64_t col = k == 2 ? 1 : 0;
    for (int64_t i = 0; i < rows; i++) {
        int positive = b->labels ? b->labels[i] == 1 : b->values[i * k + col] > 0.5f;
        s->p[s->n++] = (struct scored){y[i * k + col], (uint8_t)positive};
    }
}

void score_pairs_add_device(struct score_pairs *s, const struct backend *be, const float *y,
                            const struct host_batch *b, int64_t rows, int64_t k)
{
    if (rows * k > s->outputs_cap) {
        s->outputs_cap = rows * k;
        s->outputs = dp_realloc(s->outputs, (size_t)s->outputs_cap * sizeof(float), "outputs");
    }
    be->download(s->outputs, y, (size_t)(rows * k) * sizeof(float));
    score_pairs_add(s, s->outputs, b, rows, k);
}

int score_sink_fn(void *sink, const float *y, const struct host_batch *b, struct dp_error *err)
{
    (void)err;
    const struct score_sink *s = sink;
    score_pairs_add(s->scores, y, b, b->rows, s->k);
    return 0;
}

double score_pairs_auc(const struct score_pairs *s)
{
    size_t bytes = 0;
    struct scored *all = comm_allgatherv_bytes(s->p, (size_t)s->n * sizeof *s->p, &bytes);
    double auc = roc_auc(all, (int64_t)(bytes / sizeof *all));
    free(all);
    return auc;
}

void score_pairs_free(struct score_pairs *s)
{
    free(s->p);
    free(s->outputs);
    *s = (struct score_pairs){0};
}
