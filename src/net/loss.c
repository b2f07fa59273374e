#include "net/loss.h"

#include <math.h>

const char *const loss_names[LOSS_COUNT + 1] = {
    [LOSS_MSE] = "mse",
    [LOSS_BINARY_CROSSENTROPY] = "binary_crossentropy",
    [LOSS_CATEGORICAL_CROSSENTROPY] = "categorical_crossentropy",
    [LOSS_SPARSE_CATEGORICAL_CROSSENTROPY] = "sparse_categorical_crossentropy",
    [LOSS_COUNT] = 0,
};

const char *const metric_names[METRIC_COUNT + 1] = {
    [METRIC_NONE] = "none",           [METRIC_ACCURACY] = "accuracy", [METRIC_MAE] = "mae",
    [METRIC_PRECISION] = "precision", [METRIC_RECALL] = "recall",     [METRIC_TOP_K] = "top_k_categorical_accuracy",
    [METRIC_AUC] = "auc",             [METRIC_COUNT] = 0,
};

int metric_higher_is_better(enum metric_kind m)
{
    return m != METRIC_MAE && m != METRIC_NONE;
}

double metric_value(enum metric_kind m, const double *acc)
{
    if (m == METRIC_AUC) /* from the scores, not the sums */
        return NAN;
    if (m == METRIC_PRECISION || m == METRIC_RECALL) /* Keras: 0 when nothing is predicted (or is) positive */
        return acc[LOSS_ACC_METRIC_DEN] > 0 ? acc[LOSS_ACC_METRIC] / acc[LOSS_ACC_METRIC_DEN] : 0.0;
    return acc[LOSS_ACC_METRIC] / acc[LOSS_ACC_ROWS];
}

enum activation loss_required_activation(enum loss_kind loss)
{
    switch (loss) {
    case LOSS_BINARY_CROSSENTROPY: return ACTIVATION_SIGMOID;
    case LOSS_CATEGORICAL_CROSSENTROPY:
    case LOSS_SPARSE_CATEGORICAL_CROSSENTROPY: return ACTIVATION_SOFTMAX;
    default: return ACTIVATION_COUNT;
    }
}

int64_t argmax_f32(const float *v, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

int64_t predicted_class(const float *y, int64_t k)
{
    return k == 1 ? y[0] > 0.5f : argmax_f32(y, k);
}
