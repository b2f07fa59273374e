/* The fit loop: epochs of shuffled batches, validation, history, checkpoints, early stopping. */
#ifndef DPTRAIN_TRAINER_H
#define DPTRAIN_TRAINER_H

#include "base/errors.h"
#include "job/jobfile.h"

struct fit_options {
    const char *run_dir; /* where history.csv, summary.json, best.h5, last.h5 go */
    int tty;             /* 1: live progress bar; 0: one line per epoch */
    const char *resume;  /* NULL: start fresh; "auto": RUN_DIR/last.h5 when it exists; else a path */
    const char *device;  /* "cpu", "cuda" or "auto" (NULL: auto) */
    double progress_every; /* lines: a line within an epoch every this many seconds (0: none) */
};

/* Exit status for a loss that became NaN or infinite (training stopped, last good files intact). */
#define DP_EXIT_DIVERGED 4

/* trainer_fit returns this (> 0) when a signal (SIGTERM, SIGINT, SIGUSR1) stopped training after
 * last.h5 was written: the job should be requeued and resumed with --resume auto. */
#define TRAINER_STOPPED DP_EXIT_REQUEUE

/* 0 when training ran to the end, TRAINER_STOPPED after a stop signal, -1 on error (err set). */
int trainer_fit(const struct job *job, const struct fit_options *o, struct dp_error *err);

#endif
