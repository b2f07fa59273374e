/* One training step on this rank, as fit and bench run it: the batch slice uploaded (queued in
 * stream order), gradients, ONE all-reduce, the optimizer; and on one GPU the whole step recorded
 * once as a CUDA graph and replayed (the step number and rate come from device scalars). Nothing
 * here waits for the device: read-back points are the caller's. */
#ifndef DPTRAIN_TRAIN_STEP_H
#define DPTRAIN_TRAIN_STEP_H

#include <stdint.h>

#include "net/backend.h"
#include "data/batch_reader.h"
#include "train/evaluator.h"
#include "dist/grad_allreduce.h"
#include "net/loss.h"
#include "net/model.h"
#include "net/optimizer.h"

/* Where a step's time goes (dptrain bench --profile): each part timed alone, the device
 * synchronized before and after it (so no graph and no overlap), seconds summed over `steps`. */
struct step_profile {
    double *forward, *backward; /* per layer */
    double upload, loss, optimizer;
    int64_t steps;
};

struct score_pairs;

struct train_step {
    /* set by the caller */
    const struct backend *be;
    struct model *m;
    struct device_batch *db;
    float *opt_state[OPTIMIZER_MAX_STATE];
    const struct optimizer_config *optimizer;
    struct loss_params lp;
    int64_t k;                    /* target columns */
    uint64_t seed;                /* dropout keys */
    int64_t batch;                /* full global batch */
    struct grad_allreduce *allreduce;
    struct step_profile *profile; /* NULL but in bench --profile */
    struct score_pairs *scores;   /* the auc metric: each step's outputs go here (NULL: not kept) */
    /* kept between steps */
    void *graph;                  /* the recorded step, or NULL */
    int64_t full_steps_run;       /* full batches run as ordinary calls */
    int graphs_off;               /* the backend cannot record one */
    double *norm_sum;             /* backend memory for clipnorm and global_clipnorm */
    double seconds_compute, seconds_allreduce; /* host time spent queuing/waiting, last step */
};

/* Runs step `iteration` on rows [lo, hi) of a global batch of `rows` rows held in hb (host buffer
 * `slot`: 0 or 1, whose fence is recorded after its upload). */
void train_step_run(struct train_step *t, const struct host_batch *hb, int slot, int64_t lo, int64_t hi, int64_t rows,
                    int64_t iteration);
void train_step_free(struct train_step *t);

#endif
