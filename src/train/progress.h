/* Keras-style progress: a live bar on a terminal
 *   12/47 [======>.......................] - ETA: 3s - loss: 0.4100 - accuracy: 0.8700
 * and one line per epoch when stdout is not a terminal (a Slurm log):
 *   Epoch 3/300 - 47/47 - 0s 2ms/step - loss: 0.4100 - accuracy: 0.8700 - val_loss: ... */
#ifndef DPTRAIN_PROGRESS_H
#define DPTRAIN_PROGRESS_H

#include <stdint.h>

struct progress {
    int tty;
    int64_t total_steps;
    int64_t epoch, epochs;
    double start, last_draw;
    const char *metric_name; /* NULL: no metric */
    double lr;               /* shown on the epoch's line unless NaN (a rate that changes) */
    double every;            /* lines: a line within the epoch every this many seconds (0: none) */
    char tail[192];          /* appended to the epoch's final line (throughput, GPU figures) */
};

void progress_begin(struct progress *p, int64_t epoch, int64_t epochs, int64_t total_steps,
                    const char *metric_name, int tty);
/* Redraws at most ~10 times a second on a terminal; otherwise a line every `every` seconds (set
 * after progress_begin); loss/metric are the epoch's running means. */
void progress_update(struct progress *p, int64_t step, double loss, double metric);
/* Final line of the epoch; val values NaN when there is no validation set. */
void progress_end(struct progress *p, int64_t steps, double loss, double metric, double val_loss,
                  double val_metric);

#endif
