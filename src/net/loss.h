/* Losses and metrics.
 *
 * Reductions follow Keras: a row's loss is the mean over its outputs for mse and binary
 * cross-entropy and the sum over classes for categorical cross-entropy; a batch's loss is the mean
 * over rows. The backend accumulates SUMS (loss sum, metric sum, row count) so that batches and,
 * later, ranks combine exactly; means are taken only when printed.
 * Softmax + categorical cross-entropy and sigmoid + binary cross-entropy are fused: the gradient
 * is taken with respect to the logits z (p - t), never through 1/p. */
#ifndef DPTRAIN_LOSS_H
#define DPTRAIN_LOSS_H

#include <stdint.h>

#include "net/activation.h"

enum loss_kind {
    LOSS_MSE,
    LOSS_BINARY_CROSSENTROPY,
    LOSS_CATEGORICAL_CROSSENTROPY,
    LOSS_SPARSE_CATEGORICAL_CROSSENTROPY,
    LOSS_COUNT
};
extern const char *const loss_names[LOSS_COUNT + 1];

/* Metrics, with Keras' names and semantics:
 *   accuracy   the predicted class (argmax; > 0.5 for one sigmoid output) is the label
 *   mae        mean absolute error
 *   precision  Keras' Precision(): every output thresholded at 0.5 against its 0/1 target (the
 *              one-hot row for labels): true positives / predicted positives (0 when none)
 *   recall     likewise, true positives / actual positives
 *   top_k_categorical_accuracy  the label's score is among the k highest (ties count as in, as
 *              TensorFlow's in_top_k); k = 5 unless given
 *   auc        binary problems: the exact area under the ROC curve of the positive class's score
 *              (train/score_pairs.h; not from these sums)
 * Each but auc is a ratio of sums over rows (numerator in LOSS_ACC_METRIC, denominator in
 * LOSS_ACC_METRIC_DEN or the row count), so batches and ranks combine exactly. */
enum metric_kind { METRIC_NONE, METRIC_ACCURACY, METRIC_MAE, METRIC_PRECISION, METRIC_RECALL, METRIC_TOP_K,
                   METRIC_AUC, METRIC_COUNT };
extern const char *const metric_names[METRIC_COUNT + 1];
/* 1 when a larger value is better (accuracy, precision, recall, top-k); 0 for mae */
int metric_higher_is_better(enum metric_kind m);

/* Slots of the accumulator array (doubles, in backend memory). */
enum loss_acc { LOSS_ACC_LOSS, LOSS_ACC_METRIC, LOSS_ACC_ROWS, LOSS_ACC_METRIC_DEN, LOSS_ACC_COUNT };
/* The metric's value from accumulated sums */
double metric_value(enum metric_kind m, const double *acc);

/* Targets of one batch: integer labels (rows) or float targets (rows, k); one of them is set. */
struct loss_targets {
    const int32_t *labels;  /* (rows) class index, or 0/1 for binary */
    const float *values;    /* (rows, k) */
};

struct loss_params {
    enum loss_kind loss;
    enum metric_kind metric;
    int metric_k;                      /* top_k_categorical_accuracy's k */
    enum activation output_activation; /* of the last layer */
};

/* The output activation the fused path expects for a loss (ACTIVATION_COUNT: any). */
enum activation loss_required_activation(enum loss_kind loss);

/* Index of the largest of v[0..k) (the first on ties): the predicted class. */
int64_t argmax_f32(const float *v, int64_t k);

/* The class a row of k outputs predicts: argmax, or output > 0.5 for a single sigmoid output. */
int64_t predicted_class(const float *y, int64_t k);

#endif
