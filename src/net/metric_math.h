/* One row's share of a metric (net/loss.h's definitions), shared by the CPU backend and the CUDA
 * loss kernel (compiled there as device code), so both count the same way. */
#ifndef DPTRAIN_METRIC_MATH_H
#define DPTRAIN_METRIC_MATH_H

#include <math.h>
#include <stdint.h>

#include "net/loss.h"

#ifdef __CUDACC__
#define METRIC_FN static __host__ __device__ inline
#else
#define METRIC_FN static inline
#endif

/* Target t[j] of row r: from labels (one-hot, or 0/1 for one output) or from values */
METRIC_FN float metric_target(const int32_t *labels, const float *values, int64_t r, int64_t j, int64_t k)
{
    if (labels)
        return k == 1 ? (float)labels[r] : (labels[r] == j ? 1.0f : 0.0f);
    return values[r * k + j];
}

METRIC_FN int64_t metric_argmax(const float *v, int64_t k)
{
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

/* Adds row r's numerator and denominator (rows' metrics: the denominator is the row count, added
 * by the caller). yr: the row's outputs. */
METRIC_FN void metric_row(int metric, int loss, int top_k, const float *yr, const int32_t *labels, const float *values,
                          int64_t r, int64_t k, double *num, double *den)
{
    if (metric == METRIC_ACCURACY) {
        int correct;
        if (k == 1) {
            float pred = loss == LOSS_BINARY_CROSSENTROPY ? (yr[0] > 0.5f) : yr[0];
            correct = pred == metric_target(labels, values, r, 0, 1);
        } else {
            correct = metric_argmax(yr, k) == (labels ? labels[r] : metric_argmax(values + r * k, k));
        }
        *num += correct;
    } else if (metric == METRIC_MAE) {
        double s = 0.0;
        for (int64_t j = 0; j < k; j++)
            s += fabs((double)yr[j] - metric_target(labels, values, r, j, k));
        *num += s / (double)k;
    } else if (metric == METRIC_PRECISION || metric == METRIC_RECALL) {
        for (int64_t j = 0; j < k; j++) {
            int predicted = yr[j] > 0.5f, actual = metric_target(labels, values, r, j, k) > 0.5f;
            *num += predicted && actual;
            *den += metric == METRIC_PRECISION ? predicted : actual;
        }
    } else if (metric == METRIC_TOP_K) {
        int64_t label = labels ? labels[r] : metric_argmax(values + r * k, k), above = 0;
        for (int64_t j = 0; j < k; j++)
            above += yr[j] > yr[label];
        *num += above < top_k;
    }
}

#endif
