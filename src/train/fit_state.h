/* The state of one `fit` run, shared by its lifecycle (trainer.c: open, epochs, finish), the
 * epoch (fit_epoch.c), the callbacks (callbacks/) and what reports on it (fit_report.c: the epoch
 * line's figures and summary.json). Private to training. */
#ifndef DPTRAIN_FIT_STATE_H
#define DPTRAIN_FIT_STATE_H

#include "data/batch_prefetch.h"
#include "data/batch_reader.h"
#include "dist/binding.h"
#include "data/dataset.h"
#include "train/evaluator.h"
#include "dist/grad_allreduce.h"
#include "train/history.h"
#include "net/model.h"
#include "data/normalize.h"
#include "train/score_pairs.h"
#include "train/progress.h"
#include "train/resume.h"
#include "train/train_step.h"
#include "train/trainer.h"
#include "train/weights_file.h"

/* Steps left out of the steady-state figures (warm-up: first touches, caches, thread start). */
#define STEADY_SKIP 5

/* The loop's own state: what it was set to do, the epoch in progress, and what the callbacks
 * decided. */
struct fit_loop {
    int64_t batch, steps, readback_steps; /* steps per epoch; loss sums come back every readback_steps */
    const char *metric;                   /* NULL: none */
    struct job_monitor ck, es, rl;        /* checkpoint, early stopping and plateau monitors (val_ ones
                                             fall back to their training counterparts without validation
                                             rows) */
    int64_t epoch, first_step;            /* the epoch in progress, and the step it began at */
    double epoch_start, split0[3];        /* when the epoch (or its part since a mid-epoch checkpoint) began;
                                             compute/all-reduce/data seconds at its start */
    double acc[LOSS_ACC_COUNT];           /* the epoch's loss sums, agreed by the ranks at read-backs */
    struct progress prog;
    int stopped_early;
    /* A stop signal as the ranks agreed on it at the last read-back or epoch end. Decisions use
     * this, never the live flag: a signal landing on one rank after the agreement would otherwise
     * stop that rank alone, and the others would wait in a collective it never joins. */
    int stop;
    int64_t last_written;                 /* the epoch whose end last.h5 holds (-1: none, or mid-epoch) */
    double last_row[HISTORY_COLUMNS];     /* the last history row (summary.json) */
    double wall_start;
};

struct fit_state {
    const struct job *job;
    struct optimizer_config opt;   /* the job's, with the rate ReduceLROnPlateau set */
    const struct fit_options *o;
    const struct backend *be;
    struct binding binding;
    struct row_source src;
    struct row_source val_src;       /* data.validation_file's rows (src's rows after ntrain otherwise) */
    struct score_pairs scores, val_scores; /* the auc metric's inputs: the epoch's, the validation's */
    int have_val_src;
    struct normalizer norm;
    struct model model;
    struct target_mode tm;
    struct batch_reader train_reader, val_reader;
    struct host_batch hb[2];
    struct batch_prefetch prefetch; /* fills hb[i + 1 & 1] while step i runs */
    struct device_batch db;
    float *opt_state[OPTIMIZER_MAX_STATE];
    int nopt_state;
    float *es_best_weights; /* host */
    struct history history;
    struct train_position pos;
    int64_t ntrain, nval;
    double last_checkpoint_time;
    double time_compute, time_allreduce, time_data; /* seconds, this rank */
    struct grad_allreduce allreduce;
    const char *precision;     /* what the backend computes matrix products in */
    double gpu_memory_peak_mb; /* at the ends of epochs */
    struct train_step step;    /* upload, gradients, all-reduce, optimizer; CUDA graphs on one GPU */
    int64_t steps_this_run, steady_steps, steady_samples;
    double steady_seconds, steady_data, steady_compute, steady_allreduce;
    char path_last[4096], path_best[4096], path_history[4096], path_summary[4096];
    struct fit_loop loop;
};

/* Fills prog->tail with the epoch's samples/s, step-time split and GPU memory. */
void fit_epoch_figures(struct fit_state *s, struct progress *prog, const double split0[3], double samples,
                       double seconds);

/* One epoch from where the run stands: its steps, the read-backs handed to the callbacks,
 * validation, the history row and the epoch_end callbacks. 0, TRAINER_STOPPED, or -1 (err set). */
int fit_epoch(struct fit_state *s, struct dp_error *err);

/* Writes summary.json on rank 0 (collective: every rank calls it). */
int fit_write_summary(struct fit_state *s, const double *last_row, double wall, int stopped_early,
                      struct dp_error *err);

#endif
