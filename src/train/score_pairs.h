/* The AUC metric's inputs: each rank's (score, label) of the rows it computed in an epoch (or a
 * validation or evaluate pass), gathered from all ranks at the end for the exact AUC
 * (net/roc_auc.h). Binary problems: one sigmoid output, or two softmax outputs (class 1's score). */
#ifndef DPTRAIN_SCORE_PAIRS_H
#define DPTRAIN_SCORE_PAIRS_H

#include <stdint.h>

#include "data/batch_reader.h"
#include "net/backend.h"
#include "net/roc_auc.h"

struct score_pairs {
    int64_t n, cap;
    struct scored *p;
    float *outputs;         /* a step's outputs copied from the backend (score_pairs_add_device), kept */
    int64_t outputs_cap;
};

void score_pairs_clear(struct score_pairs *s);
/* The positive class's score of each of rows outputs y (rows x k, k 1 or 2) and its target in b */
void score_pairs_add(struct score_pairs *s, const float *y, const struct host_batch *b, int64_t rows, int64_t k);
/* The same from outputs y in backend memory (a training step's last layer) */
void score_pairs_add_device(struct score_pairs *s, const struct backend *be, const float *y,
                            const struct host_batch *b, int64_t rows, int64_t k);

/* Where a pass's outputs go (an eval_batch_fn's context) */
struct score_sink {
    struct score_pairs *scores;
    int64_t k;
};

/* An eval_batch_fn (train/evaluator.h) adding a batch's scores to a score_sink */
int score_sink_fn(void *sink, const float *y, const struct host_batch *b, struct dp_error *err);

/* Collective: the AUC over every rank's pairs */
double score_pairs_auc(const struct score_pairs *s);
void score_pairs_free(struct score_pairs *s);

#endif
