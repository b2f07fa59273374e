/* Learning curves: the history.csv of one or more run directories drawn by gnuplot into a PNG:
 * loss and val_loss, the metric and its val_ form against the epoch, and the learning rate (log
 * scale) when it changed; one colour per run, validation dashed. The data goes to gnuplot inline;
 * the PNG is written under a temporary name and renamed into place. */
#ifndef DPTRAIN_HISTORY_PLOT_H
#define DPTRAIN_HISTORY_PLOT_H

#include "base/errors.h"

/* 0: png written; 1: gnuplot is missing or failed (its messages in gnuplot.log beside png);
 * -1 with err: a run directory without a readable history.csv. */
int history_plot(char *const *run_dirs, int nruns, const char *png, struct dp_error *err);

#endif
