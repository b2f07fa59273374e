/* The set-up fit, evaluate, predict and bench share: from a job (and a checkpoint) to the rows,
 * the model built for them and allocated on a backend, the targets' form and the loss parameters;
 * moving batches to the backend; and evaluation passes. */
#ifndef DPTRAIN_EVALUATOR_H
#define DPTRAIN_EVALUATOR_H

#include <stdint.h>

#include "data/batch_reader.h"
#include "data/dataset.h"
#include "job/jobfile.h"
#include "net/model.h"

/* group "train" or "test"; the synthetic source places test rows after the training rows. */
int job_open_rows(const struct job *job, const char *group, struct row_source *s, struct dp_error *err);

int job_build_model(const struct job *job, const struct shape *input, struct model *m, struct dp_error *err);

/* How targets reach the loss: labels or float values, and the label range. */
struct target_mode {
    int want_labels;
    int64_t classes;
    int64_t k;
};
int job_target_mode(const struct job *job, const struct model *m, const struct row_source *s,
                    struct target_mode *t, struct dp_error *err);

/* The job's rows of `group` ("train" or "test"), its model built for their sample shape, and the
 * targets' form. */
int job_open_model(const struct job *job, const char *group, struct row_source *src, struct model *m,
                   struct target_mode *tm, struct dp_error *err);
/* The loss parameters the model trains and evaluates with: the job's loss and metric, the output
 * layer's activation. */
struct loss_params job_loss_params(const struct job *job, const struct model *m);
/* The model allocated on `be` for batches of `batch` rows, with the weights and the normalization
 * (of x_cols features) stored in the checkpoint `weights`; warns when the job asks for
 * standardized features and the checkpoint holds no statistics. */
int job_load_checkpoint(const struct job *job, struct model *m, const struct backend *be, int64_t batch,
                        const char *weights, int64_t x_cols, struct normalizer *norm, struct dp_error *err);

/* Batch buffers in backend memory; x is the model's input buffer. */
struct device_batch {
    int32_t *labels;
    float *values;
    int64_t *sample_ids;
    double *acc;       /* LOSS_ACC_COUNT accumulators */
};
void device_batch_alloc(struct device_batch *d, const struct backend *be, int64_t rows, int64_t k);
void device_batch_upload(struct device_batch *d, struct model *m, const struct host_batch *h, int64_t k);
void device_batch_free(struct device_batch *d, const struct backend *be);
/* The training input pipeline: a host batch in the backend's host memory (pinned on GPUs), and its
 * upload from host slot `slot`, which the kernels queued after it see (the host must not refill h
 * until the backend's fence for the slot has passed: see host_fence_wait). */
void host_batch_alloc_pinned(struct host_batch *h, const struct backend *be, int64_t rows, int64_t x_cols,
                             int64_t k, int want_labels);
void host_batch_free_pinned(struct host_batch *h, const struct backend *be);
void device_batch_upload_async(struct device_batch *d, struct model *m, const struct host_batch *h, int64_t k,
                               int slot);
struct loss_targets device_batch_targets(const struct device_batch *d, const struct host_batch *h);

/* Called with each evaluated batch's outputs (host copy, rows x k). */
typedef int (*eval_batch_fn)(void *ctx, const float *y, const struct host_batch *b, struct dp_error *err);

/* Forward passes (no dropout) over epoch positions [0, nrows) of r. acc receives sums
 * (LOSS_ACC_COUNT); confusion (k x k, or 2 x 2 for one sigmoid output) is filled when not NULL. */
int evaluate_rows(struct model *m, struct batch_reader *r, int64_t nrows, int64_t batch,
                  struct loss_params lp, struct device_batch *d, struct host_batch *h, double *acc,
                  int64_t *confusion, eval_batch_fn fn, void *ctx, struct dp_error *err);

#endif
