/* The area under the ROC curve of scores against 0/1 labels, exactly (scikit-learn's
 * roc_auc_score): the probability that a positive scores above a negative, ties counting half,
 * from the ranks of the sorted scores (Mann-Whitney U). 0 when one of the classes is absent. */
#ifndef DPTRAIN_ROC_AUC_H
#define DPTRAIN_ROC_AUC_H

#include <stdint.h>

struct scored {
    float score;
    uint8_t positive;
};

/* Sorts pairs (n of them) by score in place and returns the AUC. */
double roc_auc(struct scored *pairs, int64_t n);

#endif
