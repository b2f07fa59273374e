#include "net/roc_auc.h"

#include <stdlib.h>

static int by_score(const void *a, const void *b)
{
    float x = ((const struct scored *)a)->score, y = ((const struct scored *)b)->score;
    return (x > y) - (x < y);
}

double roc_auc(struct scored *pairs, int64_t n)
{
    qsort(pairs, (size_t)n, sizeof *pairs, by_score);
    /* sum of the positives' ranks (1-based, ties given their average rank) */
    double rank_sum = 0, positives = 0;
    for (int64_t i = 0; i < n;) {
        int64_t j = i;
        double tied_positives = 0;
        while (j < n && pairs[j].score == pairs[i].score)
            tied_positives += pairs[j++].positive;
        rank_sum += tied_positives * ((double)(i + 1) + (double)j) / 2.0;
        positives += tied_positives;
        i = j;
    }
    double negatives = (double)n - positives;
    if (positives == 0 || negatives == 0)
        return 0.0;
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives);
}
