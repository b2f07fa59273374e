#include "trainer.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "batch_reader.h"
#include "evaluator.h"
#include "history.h"
#include "progress.h"
#include "timeutil.h"
#include "weights_file.h"

void openblas_set_num_threads(int);

void trainer_set_threads(int64_t threads)
{
    if (threads > 0) {
        openblas_set_num_threads((int)threads);
        omp_set_num_threads((int)threads);
    }
}

static int mkdir_p(const char *path, struct dp_error *err)
{
    char *p = dp_strdup(path);
    for (char *s = p + 1; *s; s++)
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                free(p);
                return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot create directory: %s", path, strerror(errno));
            }
            *s = '/';
        }
    int rc = mkdir(p, 0777) != 0 && errno != EEXIST;
    free(p);
    if (rc)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: cannot create directory: %s", path, strerror(errno));
    return 0;
}

/* Value of a monitor name from one epoch's numbers. */
static double monitor_value(const char *monitor, const double *row)
{
    int val = !strncmp(monitor, "val_", 4);
    int loss = strstr(monitor, "loss") != NULL;
    return row[val ? (loss ? HISTORY_VAL_LOSS : HISTORY_VAL_METRIC) : (loss ? HISTORY_LOSS : HISTORY_METRIC)];
}

static int improved(enum monitor_mode mode, double value, double best, double min_delta)
{
    if (isnan(value))
        return 0;
    if (isnan(best))
        return 1;
    return mode == MONITOR_MODE_MIN ? value < best - min_delta : value > best + min_delta;
}

struct fit_state {
    const struct job *job;
    const struct backend *be;
    struct row_source src;
    struct normalizer norm;
    struct model model;
    struct target_mode tm;
    struct batch_reader train_reader, val_reader;
    struct host_batch hb;
    struct device_batch db;
    float *opt_state[2];
    int nopt_state;
    struct history history;
    struct train_position pos;
    int64_t ntrain, nval;
    char path_last[4096], path_best[4096], path_history[4096], path_summary[4096];
};

static int write_checkpoint(struct fit_state *s, const char *path, struct dp_error *err)
{
    struct checkpoint_contents c = {
        .model = &s->model, .job_text = s->job->resolved_text, .norm = &s->norm,
        .opt = &s->job->fit.optimizer, .opt_state = s->opt_state, .nopt_state = s->nopt_state,
        .pos = &s->pos, .history = &s->history,
    };
    return checkpoint_write(path, &c, err);
}

static void json_number(FILE *f, const char *key, double v, int comma)
{
    if (isnan(v) || isinf(v))
        fprintf(f, "  \"%s\": null%s\n", key, comma ? "," : "");
    else
        fprintf(f, "  \"%s\": %.9g%s\n", key, v, comma ? "," : "");
}

static int write_summary(struct fit_state *s, const double *last_row, double wall, double train_seconds,
                         int64_t samples, int stopped_early, struct dp_error *err)
{
    FILE *f = fopen(s->path_summary, "w");
    if (!f)
        return dp_error_set(err, DP_EXIT_INTERNAL, "%s: cannot write: %s", s->path_summary, strerror(errno));
    const char *metric = s->job->fit.metric != METRIC_NONE ? metric_names[s->job->fit.metric] : NULL;
    fprintf(f, "{\n  \"name\": \"%s\",\n", s->job->name);
    fprintf(f, "  \"backend\": \"%s\",\n", s->be->name);
    fprintf(f, "  \"epochs_run\": %lld,\n", (long long)s->pos.epoch);
    fprintf(f, "  \"steps\": %lld,\n", (long long)s->pos.iterations);
    fprintf(f, "  \"stopped_early\": %s,\n", stopped_early ? "true" : "false");
    fprintf(f, "  \"train_rows\": %lld,\n  \"validation_rows\": %lld,\n", (long long)s->ntrain,
            (long long)s->nval);
    json_number(f, "loss", last_row[HISTORY_LOSS], 1);
    json_number(f, "val_loss", last_row[HISTORY_VAL_LOSS], 1);
    if (metric) {
        char key[64];
        json_number(f, metric, last_row[HISTORY_METRIC], 1);
        snprintf(key, sizeof key, "val_%s", metric);
        json_number(f, key, last_row[HISTORY_VAL_METRIC], 1);
    }
    fprintf(f, "  \"best_monitor\": \"%s\",\n", s->job->fit.checkpoint.m.monitor);
    json_number(f, "best_value", s->pos.best, 1);
    fprintf(f, "  \"best_epoch\": %lld,\n", (long long)s->pos.best_epoch);
    json_number(f, "samples_per_second", train_seconds > 0 ? (double)samples / train_seconds : 0, 1);
    json_number(f, "train_seconds", train_seconds, 1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    json_number(f, "wall_seconds", wall, 1);
    json_number(f, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0, 0);
    fprintf(f, "}\n");
    if (fclose(f) != 0)
        return dp_error_set(err, DP_EXIT_INTERNAL, "%s: cannot write", s->path_summary);
    return 0;
}

static void fit_state_free(struct fit_state *s)
{
    for (int i = 0; i < s->nopt_state; i++)
        s->be->free(s->opt_state[i]);
    if (s->db.acc)
        device_batch_free(&s->db, s->be);
    host_batch_free(&s->hb);
    batch_reader_free(&s->train_reader);
    batch_reader_free(&s->val_reader);
    model_free(&s->model);
    normalizer_free(&s->norm);
    row_source_close(&s->src);
    history_free(&s->history);
}

static int fit_setup(struct fit_state *s, const struct job *job, const struct fit_options *o,
                     struct dp_error *err)
{
    const struct job_data *d = &job->data;
    s->job = job;
    s->be = &backend_cpu;
    if (job_open_rows(job, "train", &s->src, err) != 0)
        return -1;
    int64_t n = s->src.rows;
    s->ntrain = (int64_t)floor((double)n * (1.0 - d->validation_split));
    s->nval = n - s->ntrain;
    if (s->ntrain < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: no training rows (%lld rows, validation_split %g)",
                            job->path, (long long)n, d->validation_split);
    if (d->normalize == NORMALIZE_STANDARD) {
        if (normalizer_fit(&s->norm, &s->src, s->ntrain, err) != 0)
            return -1;
    } else {
        normalizer_init_none(&s->norm, s->src.x_cols);
    }
    if (job_build_model(job, &s->src.x_shape, &s->model, err) != 0 ||
        job_target_mode(job, &s->model, &s->src, &s->tm, err) != 0)
        return -1;
    int64_t batch = job->fit.batch_size;
    model_allocate(&s->model, s->be, batch);
    model_init_weights(&s->model, job->fit.seed);
    int shuffle = d->shuffle && !s->src.synthetic; /* synthetic rows are i.i.d. already */
    if (batch_reader_init(&s->train_reader, &s->src, &s->norm, 0, s->ntrain, shuffle, job->fit.seed,
                          d->shuffle_buffer_mb, s->tm.want_labels, s->tm.classes, s->tm.k, err) != 0 ||
        batch_reader_init(&s->val_reader, &s->src, &s->norm, s->ntrain, s->nval, 0, job->fit.seed,
                          d->shuffle_buffer_mb / 4 + 1, s->tm.want_labels, s->tm.classes, s->tm.k, err) != 0)
        return -1;
    host_batch_alloc(&s->hb, batch, s->src.x_cols, s->tm.k, s->tm.want_labels);
    device_batch_alloc(&s->db, s->be, batch, s->tm.k);
    s->nopt_state = optimizer_state_arrays(&job->fit.optimizer);
    for (int i = 0; i < s->nopt_state; i++)
        s->opt_state[i] = s->be->alloc(s->model.arena_floats * sizeof(float), "optimizer state");
    if (mkdir_p(o->run_dir, err) != 0)
        return -1;
    snprintf(s->path_last, sizeof s->path_last, "%s/last.h5", o->run_dir);
    snprintf(s->path_best, sizeof s->path_best, "%s/best.h5", o->run_dir);
    snprintf(s->path_history, sizeof s->path_history, "%s/history.csv", o->run_dir);
    snprintf(s->path_summary, sizeof s->path_summary, "%s/summary.json", o->run_dir);
    s->pos.seed = job->fit.seed;
    s->pos.best = NAN;
    s->pos.best_epoch = -1;
    return 0;
}

int trainer_fit(const struct job *job, const struct fit_options *o, struct dp_error *err)
{
    double wall_start = time_now();
    struct fit_state s;
    memset(&s, 0, sizeof s);
    trainer_set_threads(job->fit.threads);
    if (fit_setup(&s, job, o, err) != 0) {
        fit_state_free(&s);
        return -1;
    }
    const struct backend *be = s.be;
    struct model *m = &s.model;
    const struct job_fit *f = &job->fit;
    int64_t batch = f->batch_size;
    int64_t steps = (s.ntrain + batch - 1) / batch;
    if (f->steps_per_epoch > 0 && f->steps_per_epoch < steps)
        steps = f->steps_per_epoch;
    const char *metric = f->metric != METRIC_NONE ? metric_names[f->metric] : NULL;
    struct loss_params lp = {f->loss, f->metric, m->layers[m->nlayers - 1].spec.u.dense.activation};

    model_print_summary(m, stdout);
    printf("Data: %s, %lld rows for training, %lld for validation; batch %lld, %lld steps per epoch\n",
           s.src.synthetic ? "synthetic" : s.src.parts[0].path, (long long)s.ntrain, (long long)s.nval,
           (long long)batch, (long long)steps);
    printf("Backend: %s, %d threads; optimizer %s (lr %g); loss %s; run dir %s\n", be->name,
           omp_get_max_threads(), optimizer_names[f->optimizer.kind], f->optimizer.lr, loss_names[f->loss],
           o->run_dir);
    fflush(stdout);

    /* Monitors that need validation fall back to their training counterparts without it. */
    struct job_monitor ck = f->checkpoint.m, es = f->early_stopping.m;
    if (s.nval == 0) {
        if (!strncmp(ck.monitor, "val_", 4)) {
            memmove(ck.monitor, ck.monitor + 4, strlen(ck.monitor) - 3);
        }
        if (f->early_stopping.enabled && !strncmp(es.monitor, "val_", 4)) {
            dp_warn("no validation rows: early stopping monitors %s instead of %s", es.monitor + 4, es.monitor);
            memmove(es.monitor, es.monitor + 4, strlen(es.monitor) - 3);
        }
    }
    double es_best = NAN;
    int64_t es_wait = 0, last_written = -1;
    float *es_best_weights = NULL;
    int stopped_early = 0, rc = 0;
    double train_seconds = 0.0;
    int64_t samples = 0;
    double last_row[HISTORY_COLUMNS];
    for (int c = 0; c < HISTORY_COLUMNS; c++)
        last_row[c] = NAN;

    for (int64_t epoch = 0; epoch < f->epochs && rc == 0; epoch++) {
        double epoch_start = time_now();
        struct progress prog;
        progress_begin(&prog, epoch, f->epochs, steps, metric, o->tty);
        batch_reader_begin_epoch(&s.train_reader, epoch);
        be->zero(s.db.acc, LOSS_ACC_COUNT * sizeof(double));
        double acc[LOSS_ACC_COUNT] = {0};
        for (int64_t step = 0; step < steps; step++) {
            int64_t pos = step * batch;
            int64_t rows = s.ntrain - pos < batch ? s.ntrain - pos : batch;
            if (batch_reader_read(&s.train_reader, pos, rows, &s.hb, err) != 0) {
                rc = -1;
                break;
            }
            device_batch_upload(&s.db, m, &s.hb, s.tm.k);
            be->zero(m->grads, m->arena_floats * sizeof(float));
            struct pass_context c = {be, rows, 1, f->seed, (uint32_t)s.pos.iterations, s.db.sample_ids};
            model_forward(m, &c);
            const struct layer *last = &m->layers[m->nlayers - 1];
            be->loss_forward_backward(s.db.acc, m->loss_dz, last->z, last->y,
                                      device_batch_targets(&s.db, &s.hb), rows, s.tm.k, lp,
                                      1.0f / (float)rows);
            model_backward(m, &c);
            struct optimizer_step_params sp;
            optimizer_step_params_make(&sp, &f->optimizer, s.pos.iterations);
            be->optimizer_step(m->params, m->grads, s.opt_state[0], s.opt_state[1], m->arena_floats, sp);
            s.pos.iterations++;
            samples += rows;
            be->download(acc, s.db.acc, sizeof acc);
            if (!isfinite(acc[LOSS_ACC_LOSS])) {
                if (o->tty)
                    printf("\n");
                rc = dp_error_set(err, DP_EXIT_DIVERGED, "loss became %s at epoch %lld step %lld; training "
                                  "stopped (the last good checkpoint, %s, is intact). Try a lower learning "
                                  "rate.", isnan(acc[LOSS_ACC_LOSS]) ? "NaN" : "infinite",
                                  (long long)epoch + 1, (long long)step + 1, s.path_last);
                break;
            }
            progress_update(&prog, step + 1, acc[LOSS_ACC_LOSS] / acc[LOSS_ACC_ROWS],
                            acc[LOSS_ACC_METRIC] / acc[LOSS_ACC_ROWS]);
        }
        if (rc != 0)
            break;
        train_seconds += time_now() - epoch_start;
        double row[HISTORY_COLUMNS];
        row[HISTORY_EPOCH] = (double)epoch + 1;
        row[HISTORY_LOSS] = acc[LOSS_ACC_LOSS] / acc[LOSS_ACC_ROWS];
        row[HISTORY_METRIC] = metric ? acc[LOSS_ACC_METRIC] / acc[LOSS_ACC_ROWS] : NAN;
        row[HISTORY_VAL_LOSS] = row[HISTORY_VAL_METRIC] = NAN;
        if (s.nval > 0) {
            double vacc[LOSS_ACC_COUNT];
            if (evaluate_rows(m, &s.val_reader, s.nval, batch, lp, &s.db, &s.hb, vacc, NULL, NULL, NULL, err) != 0) {
                rc = -1;
                break;
            }
            row[HISTORY_VAL_LOSS] = vacc[LOSS_ACC_LOSS] / vacc[LOSS_ACC_ROWS];
            row[HISTORY_VAL_METRIC] = metric ? vacc[LOSS_ACC_METRIC] / vacc[LOSS_ACC_ROWS] : NAN;
        }
        row[HISTORY_SECONDS] = time_now() - epoch_start;
        row[HISTORY_LR] = optimizer_current_lr(&f->optimizer, s.pos.iterations);
        progress_end(&prog, steps, row[HISTORY_LOSS], row[HISTORY_METRIC], row[HISTORY_VAL_LOSS],
                     row[HISTORY_VAL_METRIC]);
        history_append(&s.history, row);
        memcpy(last_row, row, sizeof row);
        s.pos.epoch = epoch + 1;
        s.pos.step_in_epoch = 0;
        s.pos.lr = row[HISTORY_LR];

        double v = monitor_value(ck.monitor, row);
        int better = improved(ck.mode, v, s.pos.best, 0.0);
        if (better) {
            s.pos.best = v;
            s.pos.best_epoch = epoch + 1;
        }
        if (f->early_stopping.enabled) {
            double ev = monitor_value(es.monitor, row);
            if (improved(es.mode, ev, es_best, f->early_stopping.min_delta)) {
                es_best = ev;
                es_wait = 0;
                if (f->early_stopping.restore_best_weights) {
                    if (!es_best_weights)
                        es_best_weights = dp_malloc(m->arena_floats * sizeof(float), "best weights");
                    be->download(es_best_weights, m->params, m->arena_floats * sizeof(float));
                }
            } else {
                es_wait++;
            }
            s.pos.wait = es_wait;
        }
        if (history_write_csv(&s.history, s.path_history, metric, err) != 0) {
            rc = -1;
            break;
        }
        if ((better || !f->checkpoint.save_best_only) && write_checkpoint(&s, s.path_best, err) != 0) {
            rc = -1;
            break;
        }
        if ((epoch + 1) % f->checkpoint.every_epochs == 0) {
            if (write_checkpoint(&s, s.path_last, err) != 0) {
                rc = -1;
                break;
            }
            last_written = s.pos.epoch;
        }
        if (f->early_stopping.enabled && es_wait >= f->early_stopping.patience && epoch + 1 < f->epochs) {
            stopped_early = 1;
            printf("Epoch %lld: early stopping (%s did not improve for %lld epochs; best %.4f)\n",
                   (long long)epoch + 1, es.monitor, (long long)es_wait, es_best);
            break;
        }
    }
    if (rc == 0) {
        if (es_best_weights) { /* Keras 3 restores at the end of training, stopped early or not */
            be->upload(m->params, es_best_weights, m->arena_floats * sizeof(float));
            printf("Restored the weights of the best epoch (%s %.4f)\n", es.monitor, es_best);
            last_written = -1;
        }
        if (last_written != s.pos.epoch)
            rc = write_checkpoint(&s, s.path_last, err);
    }
    if (rc == 0)
        rc = write_summary(&s, last_row, time_now() - wall_start, train_seconds, samples, stopped_early, err);
    if (rc == 0)
        printf("Done: %lld epochs, %.1f s, %.0f samples/s; best %s %.4f (epoch %lld) in %s\n",
               (long long)s.pos.epoch, time_now() - wall_start,
               train_seconds > 0 ? (double)samples / train_seconds : 0.0, ck.monitor, s.pos.best,
               (long long)s.pos.best_epoch, s.path_best);
    free(es_best_weights);
    fit_state_free(&s);
    return rc;
}
