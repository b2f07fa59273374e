/* Metrics against references on fresh random inputs: the exact ROC AUC against the O(n^2)
 * definition (every positive-negative pair, ties half), with ties and one-class edge cases; and
 * one row's precision/recall/top-k shares against counting by hand. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

#include "base/rng.h"
#include "net/metric_math.h"
#include "net/roc_auc.h"
#include "test_util.h"

static double auc_by_pairs(const struct scored *p, int64_t n)
{
    double wins = 0, pairs = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            if (p[i].positive && !p[j].positive) {
                pairs++;
                wins += p[i].score > p[j].score ? 1.0 : p[i].score == p[j].score ? 0.5 : 0.0;
            }
    return pairs ? wins / pairs : 0.0;
}

START_TEST(auc_equals_the_pair_count)
{
    uint64_t seed = test_seed();
    for (int trial = 0; trial < 20; trial++) {
        int64_t n = 50 + 37 * trial;
        struct scored *p = malloc((size_t)n * sizeof *p), *q = malloc((size_t)n * sizeof *q);
        float *u = malloc((size_t)n * 2 * sizeof(float));
        rng_uniform_fill(u, (uint64_t)n * 2, seed, 99, (uint32_t)trial, 0);
        for (int64_t i = 0; i < n; i++) {
            /* coarse scores for many ties in half the trials */
            float s = trial % 2 ? floorf(u[2 * i] * 8) / 8 : u[2 * i];
            p[i] = q[i] = (struct scored){s, (uint8_t)(u[2 * i + 1] < 0.3f + 0.4f * s)};
        }
        double want = auc_by_pairs(q, n), got = roc_auc(p, n);
        ck_assert_msg(fabs(got - want) < 1e-12, "trial %d (n %lld): AUC %.15g, pairs say %.15g", trial, (long long)n,
                      got, want);
        free(p), free(q), free(u);
    }
    struct scored one_class[3] = {{0.1f, 1}, {0.5f, 1}, {0.9f, 1}};
    ck_assert(roc_auc(one_class, 3) == 0.0);
    struct scored perfect[4] = {{0.9f, 1}, {0.1f, 0}, {0.8f, 1}, {0.2f, 0}};
    ck_assert(roc_auc(perfect, 4) == 1.0);
}
END_TEST

START_TEST(row_shares_by_hand)
{
    /* 3 classes, label 2; scores 0.6, 0.1, 0.3: the predicted positive (0.6 > 0.5) is wrong */
    const float y[3] = {0.6f, 0.1f, 0.3f};
    const int32_t labels[1] = {2};
    double num = 0, den = 0;
    metric_row(METRIC_PRECISION, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, y, labels, NULL, 0, 3, &num, &den);
    ck_assert(num == 0 && den == 1);
    num = den = 0;
    metric_row(METRIC_RECALL, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 0, y, labels, NULL, 0, 3, &num, &den);
    ck_assert(num == 0 && den == 1);
    num = den = 0; /* the label's 0.3 is second: in the top 2, not the top 1 */
    metric_row(METRIC_TOP_K, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 2, y, labels, NULL, 0, 3, &num, &den);
    ck_assert(num == 1);
    num = 0;
    metric_row(METRIC_TOP_K, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1, y, labels, NULL, 0, 3, &num, &den);
    ck_assert(num == 0);
    const float tied[3] = {0.3f, 0.4f, 0.3f}; /* ties with the label's score count as in */
    num = 0;
    metric_row(METRIC_TOP_K, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 2, tied, labels, NULL, 0, 3, &num, &den);
    ck_assert(num == 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, auc_equals_the_pair_count);
    tcase_add_test(tc, row_shares_by_hand);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
