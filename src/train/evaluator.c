#include "train/evaluator.h"

#include "base/zip_archive.h"
#include "dist/comm.h"
#include "keras/keras_model_file.h"
#include "train/weights_file.h"

#include <stdlib.h>
#include <string.h>

int job_open_model(const struct job *job, const char *group, struct row_source *src, struct model *m,
                   struct target_mode *tm, struct dp_error *err)
{
    if (job_open_rows(job, group, src, err) != 0)
        return -1;
    return job_build_model(job, &src->x_shape, m, err) != 0 || job_target_mode(job, m, src, tm, err) != 0 ? -1 : 0;
}

struct loss_params job_loss_params(const struct job *job, const struct model *m)
{
    return (struct loss_params){job->fit.loss, job->fit.metric, (int)job->fit.metric_k,
                                layer_activation(&m->layers[m->nlayers - 1].spec)};
}

int job_load_checkpoint(const struct job *job, struct model *m, const struct backend *be, int64_t batch,
                        const char *weights, int64_t x_cols, struct normalizer *norm, struct dp_error *err)
{
    model_allocate(m, be, batch);
    /* a .keras file keeps the normalization in its Normalization layer, a checkpoint in /dptrain */
    int (*read_normalizer)(const char *, struct normalizer *, int64_t, struct dp_error *) =
        zip_archive_is_zip(weights) ? keras_file_read_normalizer : checkpoint_read_normalizer;
    if (weights_load(m, weights, err) != 0 || read_normalizer(weights, norm, x_cols, err) != 0)
        return -1;
    if (job->data.normalize == NORMALIZE_STANDARD && norm->kind == NORMALIZE_NONE)
        dp_warn("%s holds no normalization statistics but the job asks for normalize = \"standard\"; "
                "using unnormalized features", weights);
    return 0;
}

int job_open_rows(const struct job *job, const char *group, struct row_source *s, struct dp_error *err)
{
    const struct job_data *d = &job->data;
    if (d->source == DATA_SOURCE_SYNTHETIC) {
        int train = !strcmp(group, "train");
        int64_t rows = train ? d->synthetic_rows : d->synthetic_test_rows;
        if (rows == 0)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: the synthetic data set has no %s rows (set "
                                "data.synthetic.test_rows)", job->path, group);
        row_source_open_synthetic(s, rows, d->synthetic_features, d->synthetic_targets, job->fit.seed,
                                  train ? 0 : d->synthetic_rows);
        return 0;
    }
    return row_source_open_files(s, d->files, d->nfiles, group, err);
}

int job_build_model(const struct job *job, const struct shape *input, struct model *m, struct dp_error *err)
{
    if (model_build(m, job->layers, job->nlayers, input, job->path, err) != 0)
        return -1;
    model_set_loss(m, job->fit.loss);
    return 0;
}

int job_target_mode(const struct job *job, const struct model *m, const struct row_source *s,
                    struct target_mode *t, struct dp_error *err)
{
    enum loss_kind loss = job->fit.loss;
    t->k = m->output_size;
    t->want_labels = s->y_labels && (loss == LOSS_CATEGORICAL_CROSSENTROPY ||
                                     loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY);
    const char *file = s->nparts ? s->parts[0].path : "synthetic data";
    if (loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY && !s->y_labels)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: sparse_categorical_crossentropy needs integer labels "
                            "in /%s/y", file, s->group);
    if (s->y_labels) {
        if (loss == LOSS_CATEGORICAL_CROSSENTROPY || loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) {
            if (t->k < 2)
                return dp_error_set(err, DP_EXIT_INPUT, "%s: %s needs at least 2 output units",
                                    job->path, loss_names[loss]);
            t->classes = t->k;
        } else if (t->k == 1) {
            t->classes = loss == LOSS_BINARY_CROSSENTROPY ? 2 : INT32_MAX;
        } else {
            return dp_error_set(err, DP_EXIT_INPUT, "%s: /%s/y holds one label per row but the model has "
                                "%lld outputs and loss %s", file, s->group, (long long)t->k, loss_names[loss]);
        }
    } else {
        t->classes = 0;
        if (s->y_cols != t->k)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: /%s/y has %lld columns but the model's last layer "
                                "has %lld units", file, s->group, (long long)s->y_cols, (long long)t->k);
    }
    return 0;
}

void device_batch_alloc(struct device_batch *d, const struct backend *be, int64_t rows, int64_t k)
{
    d->labels = be->alloc((size_t)rows * sizeof(int32_t), "batch labels");
    d->values = be->alloc((size_t)(rows * k) * sizeof(float), "batch targets");
    d->sample_ids = be->alloc((size_t)rows * sizeof(int64_t), "batch sample ids");
    d->acc = be->alloc(LOSS_ACC_COUNT * sizeof(double), "loss accumulators");
}

/* The batch's inputs, targets and sample ids into the model's input and d. */
enum { BATCH_COPIES = 3 };
static void batch_copies(struct host_copy c[BATCH_COPIES], struct device_batch *d, struct model *m,
                         const struct host_batch *h, int64_t k)
{
    c[0] = (struct host_copy){m->input, h->x, (size_t)(h->rows * m->input_size) * sizeof(float)};
    if (h->labels)
        c[1] = (struct host_copy){d->labels, h->labels, (size_t)h->rows * sizeof(int32_t)};
    else
        c[1] = (struct host_copy){d->values, h->values, (size_t)(h->rows * k) * sizeof(float)};
    c[2] = (struct host_copy){d->sample_ids, h->sample_ids, (size_t)h->rows * sizeof(int64_t)};
}

void device_batch_upload(struct device_batch *d, struct model *m, const struct host_batch *h, int64_t k)
{
    struct host_copy c[BATCH_COPIES];
    batch_copies(c, d, m, h, k);
    for (int i = 0; i < BATCH_COPIES; i++)
        m->be->upload(c[i].dst, c[i].src, c[i].bytes);
}

void host_batch_alloc_pinned(struct host_batch *h, const struct backend *be, int64_t rows, int64_t x_cols,
                             int64_t k, int want_labels)
{
    memset(h, 0, sizeof *h);
    h->x = be->host_alloc((size_t)(rows * x_cols) * sizeof(float), "the input batch");
    if (want_labels)
        h->labels = be->host_alloc((size_t)rows * sizeof(int32_t), "batch labels");
    else
        h->values = be->host_alloc((size_t)(rows * k) * sizeof(float), "batch targets");
    h->sample_ids = be->host_alloc((size_t)rows * sizeof(int64_t), "batch sample ids");
}

void host_batch_free_pinned(struct host_batch *h, const struct backend *be)
{
    be->host_free(h->x);
    be->host_free(h->labels);
    be->host_free(h->values);
    be->host_free(h->sample_ids);
    memset(h, 0, sizeof *h);
}

void device_batch_upload_async(struct device_batch *d, struct model *m, const struct host_batch *h, int64_t k,
                               int slot)
{
    struct host_copy c[BATCH_COPIES];
    batch_copies(c, d, m, h, k);
    m->be->upload_batch_async(slot, c, BATCH_COPIES);
}

struct loss_targets device_batch_targets(const struct device_batch *d, const struct host_batch *h)
{
    struct loss_targets t = {h->labels ? d->labels : NULL, h->labels ? NULL : d->values};
    return t;
}

void device_batch_free(struct device_batch *d, const struct backend *be)
{
    be->free(d->labels);
    be->free(d->values);
    be->free(d->sample_ids);
    be->free(d->acc);
    memset(d, 0, sizeof *d);
}

int evaluate_rows(struct model *m, struct batch_reader *r, int64_t nrows, int64_t batch,
                  struct loss_params lp, struct device_batch *d, struct host_batch *h, double *acc,
                  int64_t *confusion, eval_batch_fn fn, void *ctx, struct dp_error *err)
{
    const struct backend *be = m->be;
    int64_t k = m->output_size;
    const struct layer *last = &m->layers[m->nlayers - 1];
    float *y = (confusion || fn) ? dp_malloc((size_t)(batch * k) * sizeof(float), "predictions") : NULL;
    be->zero(d->acc, LOSS_ACC_COUNT * sizeof(double));
    batch_reader_begin_epoch(r, 0);
    int rc = 0;
    for (int64_t gpos = 0; gpos < nrows; gpos += batch) {
        /* Each rank evaluates its slice of every batch; sums are reduced at the end. */
        int64_t lo, hi;
        batch_slice(nrows - gpos < batch ? nrows - gpos : batch, comm_world.rank, comm_world.size, &lo, &hi);
        int64_t pos = gpos + lo, rows = hi - lo;
        if (rows == 0)
            continue;
        if (batch_reader_read(r, pos, rows, h, err) != 0) {
            rc = -1;
            break;
        }
        device_batch_upload(d, m, h, k);
        struct pass_context c = {be, rows, 0, 0, 0, d->sample_ids};
        model_forward(m, &c);
        be->loss_forward_backward(d->acc, NULL, last->z, last->y, device_batch_targets(d, h), rows, k, lp, 1.0f);
        if (y) {
            be->download(y, last->y, (size_t)(rows * k) * sizeof(float));
            if (confusion) {
                for (int64_t i = 0; i < rows; i++) {
                    int64_t truth = h->labels ? h->labels[i] : predicted_class(h->values + i * k, k);
                    int64_t pred = predicted_class(y + i * k, k);
                    int64_t dim = k == 1 ? 2 : k;
                    if (truth >= 0 && truth < dim)
                        confusion[truth * dim + pred]++;
                }
            }
            if (fn && fn(ctx, y, h, err) != 0) {
                rc = -1;
                break;
            }
        }
    }
    be->download(acc, d->acc, LOSS_ACC_COUNT * sizeof(double));
    if (rc == 0) {
        comm_allreduce_sum_f64(acc, LOSS_ACC_COUNT);
        acc[LOSS_ACC_LOSS] += model_penalty(m) * acc[LOSS_ACC_ROWS];
    }
    free(y);
    return rc;
}
