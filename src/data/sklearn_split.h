/* The row permutation of scikit-learn's train_test_split(random_state=seed): numpy's legacy
 * RandomState(seed).permutation(n), i.e. MT19937 seeded by init_genrand and a Fisher-Yates shuffle
 * with rejection-sampled intervals. Reproducing it lets `dptrain import csv --test-split 0.3
 * --seed 7` select exactly the rows the Keras tutorial (and the PyTorch reference) test on. */
#ifndef DPTRAIN_SKLEARN_SPLIT_H
#define DPTRAIN_SKLEARN_SPLIT_H

#include <stdint.h>

/* perm[0..n): the first ceil(test_fraction * n) entries are the test rows, the rest the training
 * rows, in scikit-learn's order. */
void sklearn_permutation(uint64_t *perm, int64_t n, uint32_t seed);

#endif
