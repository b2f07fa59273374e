#include "train/trainer.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/batch_reader.h"
#include "dist/binding.h"
#include "dist/comm.h"
#include "train/evaluator.h"
#include "train/fit_state.h"
#include "dist/grad_allreduce.h"
#include "base/h5io.h"
#include "train/history.h"
#include "train/progress.h"
#include "train/resume.h"
#include "train/run_dir.h"
#include "base/stop_signals.h"
#include "base/timeutil.h"
#include "train/train_step.h"
#include "train/weights_file.h"

void openblas_set_num_threads(int);

void trainer_set_threads(int64_t threads)
{
    if (threads > 0) {
        openblas_set_num_threads((int)threads);
        omp_set_num_threads((int)threads);
    }
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


static int write_checkpoint(struct fit_state *s, const char *path, struct dp_error *err)
{
    if (comm_world.rank != 0)
        return 0; /* every rank reached this point with identical state; rank 0 writes */
    struct checkpoint_contents c = {
        .model = &s->model, .job_text = s->job->resolved_text, .norm = &s->norm,
        .opt = &s->job->fit.optimizer, .opt_state = s->opt_state, .nopt_state = s->nopt_state,
        .pos = &s->pos, .history = &s->history, .es_best_weights = s->es_best_weights,
    };
    return checkpoint_write(path, &c, err);
}

static int write_last(struct fit_state *s, struct dp_error *err)
{
    if (comm_world.rank == 0)
        run_dir_keep_previous(s->o->run_dir, s->path_last, s->job->fit.checkpoint.keep);
    if (write_checkpoint(s, s->path_last, err) != 0)
        return -1;
    s->last_checkpoint_time = time_now();
    return 0;
}

static void fit_state_free(struct fit_state *s)
{
    for (int i = 0; i < s->nopt_state; i++)
        s->be->free(s->opt_state[i]);
    if (s->db.acc)
        device_batch_free(&s->db, s->be);
    free(s->es_best_weights);
    grad_allreduce_free(&s->allreduce);
    train_step_free(&s->step);
    batch_prefetch_stop(&s->prefetch);
    for (int i = 0; i < 2; i++)
        if (s->hb[i].x)
            host_batch_free_pinned(&s->hb[i], s->be);
    batch_reader_free(&s->train_reader);
    batch_reader_free(&s->val_reader);
    model_free(&s->model);
    normalizer_free(&s->norm);
    row_source_close(&s->src);
    history_free(&s->history);
}

/* Same initial (or restored) weights on every rank: identical by construction, checked once with
 * two checksums (plain and position-weighted) compared by min/max all-reduces. */
static void check_replicas_agree(const struct model *m)
{
    float *host = dp_malloc(m->arena_floats * sizeof(float), "a weight checksum");
    m->be->download(host, m->params, m->arena_floats * sizeof(float));
    double lo[2] = {0, 0};
    for (size_t i = 0; i < m->arena_floats; i++) {
        lo[0] += host[i];
        lo[1] += host[i] * (double)(i % 7 + 1);
    }
    free(host);
    double hi[2] = {lo[0], lo[1]};
    comm_allreduce_min_f64(lo, 2);
    comm_allreduce_max_f64(hi, 2);
    if (lo[0] != hi[0] || lo[1] != hi[1])
        dp_die(DP_EXIT_INTERNAL, "internal: the model replicas start from different weights");
}

/* Restores everything from a checkpoint; the model is built and allocated already. */
static int fit_restore(struct fit_state *s, const char *path, struct dp_error *err)
{
    char *text = NULL;
    if (checkpoint_read_job_text(path, &text, err) != 0)
        return -1;
    int rc = resume_check_job(s->job, text, path, err);
    free(text);
    if (rc != 0 || weights_load(&s->model, path, err) != 0)
        return -1;
    struct checkpoint_state st;
    if (checkpoint_read_state(path, &s->model, &st, err) != 0) {
        checkpoint_state_free(&st);
        return -1;
    }
    if (st.nopt_state < s->nopt_state) {
        checkpoint_state_free(&st);
        return dp_error_set(err, DP_EXIT_INPUT, "%s: optimizer state missing", path);
    }
    for (int i = 0; i < s->nopt_state; i++)
        s->be->upload(s->opt_state[i], st.opt_state[i], s->model.arena_floats * sizeof(float));
    s->pos = st.pos;
    s->pos.seed = s->job->fit.seed;
    s->history = st.history;
    st.history = (struct history){0};
    s->es_best_weights = st.es_best_weights;
    st.es_best_weights = NULL;
    if (s->job->data.normalize == NORMALIZE_STANDARD && st.norm.kind != NORMALIZE_STANDARD) {
        checkpoint_state_free(&st);
        return dp_error_set(err, DP_EXIT_INPUT, "%s holds no normalization statistics but the job asks for "
                            "normalize = \"standard\"", path);
    }
    if (s->job->data.normalize == NORMALIZE_STANDARD) {
        normalizer_free(&s->norm);
        s->norm = st.norm;
        st.norm = (struct normalizer){0};
    }
    checkpoint_state_free(&st);
    if (s->pos.step_in_epoch)
        printf("Resumed from %s: epoch %lld continues at step %lld (%lld optimizer steps done)\n", path,
               (long long)s->pos.epoch + 1, (long long)s->pos.step_in_epoch + 1, (long long)s->pos.iterations);
    else
        printf("Resumed from %s after epoch %lld (%lld optimizer steps done)\n", path, (long long)s->pos.epoch,
               (long long)s->pos.iterations);
    return 0;
}

static int fit_setup(struct fit_state *s, const struct job *job, const struct fit_options *o,
                     const char *resume_path, struct dp_error *err)
{
    const struct job_data *d = &job->data;
    s->job = job;
    s->o = o;
    s->be = binding_select(o->device, job->fit.allreduce, &s->binding, err);
    if (!s->be)
        return -1;
    s->pos.seed = job->fit.seed;
    s->pos.best = s->pos.es_best = NAN;
    s->pos.best_epoch = -1;
    if (job_open_rows(job, "train", &s->src, err) != 0)
        return -1;
    int64_t n = s->src.rows;
    s->ntrain = (int64_t)floor((double)n * (1.0 - d->validation_split));
    s->nval = n - s->ntrain;
    if (s->ntrain < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: no training rows (%lld rows, validation_split %g)",
                            job->path, (long long)n, d->validation_split);
    if (job_build_model(job, &s->src.x_shape, &s->model, err) != 0 ||
        job_target_mode(job, &s->model, &s->src, &s->tm, err) != 0)
        return -1;
    int64_t batch = job->fit.batch_size;
    model_allocate(&s->model, s->be, batch);
    s->precision = s->be->set_precision(precision_code(job->fit.precision));
    if (job->fit.precision != PRECISION_AUTO && job->fit.precision != PRECISION_FP32 && s->be == &backend_cpu &&
        comm_world.rank == 0)
        dp_warn("fit.precision = \"%s\": the CPU backend computes in fp32", precision_names[job->fit.precision]);
    if (grad_allreduce_init(&s->allreduce, s->be, job->fit.allreduce, job->fit.nccl_timeout,
                            job->fit.allreduce_bucket_mb, s->model.arena_floats, err) != 0)
        return -1;
    model_init_weights(&s->model, job->fit.seed);
    s->nopt_state = optimizer_state_arrays(&job->fit.optimizer);
    for (int i = 0; i < s->nopt_state; i++)
        s->opt_state[i] = s->be->alloc(s->model.arena_floats * sizeof(float), "optimizer state");
    normalizer_init_none(&s->norm, s->src.x_cols);
    if (resume_path) {
        if (fit_restore(s, resume_path, err) != 0)
            return -1;
    } else if (d->normalize == NORMALIZE_STANDARD) {
        normalizer_free(&s->norm);
        if (normalizer_fit(&s->norm, &s->src, s->ntrain, err) != 0)
            return -1;
    }
    int shuffle = d->shuffle && !s->src.synthetic; /* synthetic rows are i.i.d. already */
    if (batch_reader_init(&s->train_reader, &s->src, &s->norm, 0, s->ntrain, shuffle, job->fit.seed,
                          d->shuffle_buffer_mb, s->tm.want_labels, s->tm.classes, s->tm.k, err) != 0 ||
        batch_reader_init(&s->val_reader, &s->src, &s->norm, s->ntrain, s->nval, 0, job->fit.seed,
                          d->shuffle_buffer_mb / 4 + 1, s->tm.want_labels, s->tm.classes, s->tm.k, err) != 0)
        return -1;
    batch_reader_set_slice(&s->train_reader, batch, comm_world.rank, comm_world.size);
    batch_reader_set_slice(&s->val_reader, batch, comm_world.rank, comm_world.size);
    for (int i = 0; i < 2; i++) /* two, so the host fills one while the device copies the other */
        host_batch_alloc_pinned(&s->hb[i], s->be, batch, s->src.x_cols, s->tm.k, s->tm.want_labels);
    device_batch_alloc(&s->db, s->be, batch, s->tm.k);
    if (batch_prefetch_start(&s->prefetch, &s->train_reader, s->be, s->hb, d->reader_thread, err) != 0)
        return -1;
    s->step = (struct train_step){
        .be = s->be,
        .m = &s->model,
        .db = &s->db,
        .opt_state = {s->opt_state[0], s->opt_state[1]},
        .optimizer = &job->fit.optimizer,
        .lp = {job->fit.loss, job->fit.metric, s->model.layers[s->model.nlayers - 1].spec.u.dense.activation},
        .k = s->tm.k,
        .seed = job->fit.seed,
        .batch = batch,
        .allreduce = &s->allreduce,
    };
    return 0;
}

/* Where a resume comes from: NULL for a fresh start. Checks happen before anything is written. */
static int resolve_resume(const struct fit_options *o, char *buf, size_t len, const char **out,
                          struct dp_error *err)
{
    *out = NULL;
    if (!o->resume)
        return 0;
    if (!strcmp(o->resume, "auto")) {
        snprintf(buf, len, "%s/last.h5", o->run_dir);
        int exists = access(buf, F_OK) == 0;
        comm_bcast_bytes(&exists, sizeof exists, 0); /* rank 0 decides, so all ranks agree */
        if (exists)
            *out = buf;
        else
            printf("Resume auto: no %s yet, starting fresh\n", buf);
        return 0;
    }
    if (access(o->resume, R_OK) != 0)
        return dp_error_set(err, DP_EXIT_INPUT, "--resume %s: cannot open: %s", o->resume, strerror(errno));
    *out = o->resume;
    return 0;
}

/* A fresh start over an earlier run replaces its checkpoints, as Keras would; say so with the other
 * start-up lines (stderr stays for errors), since a requeued job without --resume auto loses its
 * work this way. */
static void say_if_starting_over(const struct fit_options *o)
{
    char last[4096];
    snprintf(last, sizeof last, "%s/last.h5", o->run_dir);
    if (!o->resume && comm_world.rank == 0 && access(last, F_OK) == 0)
        printf("Starting over: %s holds an earlier run, whose checkpoints this run replaces (--resume auto "
               "continues it)\n", o->run_dir);
}

int trainer_fit(const struct job *job, const struct fit_options *o, struct dp_error *err)
{
    double wall_start = time_now();
    struct fit_state s;
    memset(&s, 0, sizeof s);
    trainer_set_threads(job->fit.threads);
    char resume_buf[4096];
    const char *resume_path;
    /* Two fits on one run dir would overwrite each other's checkpoints (and delete each other's
     * temporaries below). A resumed run may be a requeued job whose predecessor is still ending:
     * it waits five minutes for the run dir: a crashed node's lock on a shared file system
     * lasts until its lease runs out (about 90 s on NFSv4). */
    if (comm_world.rank == 0 &&
        (run_dir_create(o->run_dir, err) != 0 || run_dir_lock(o->run_dir, o->resume ? 300 : 0, err) != 0))
        return -1;
    if (resolve_resume(o, resume_buf, sizeof resume_buf, &resume_path, err) != 0)
        return -1;
    if (fit_setup(&s, job, o, resume_path, err) != 0) {
        if (!s.be)
            s.be = &backend_cpu;
        fit_state_free(&s);
        return -1;
    }
    say_if_starting_over(o);
    if (comm_world.rank == 0)
        run_dir_remove_temporaries(o->run_dir);
    check_replicas_agree(&s.model);
    snprintf(s.path_last, sizeof s.path_last, "%s/last.h5", o->run_dir);
    snprintf(s.path_best, sizeof s.path_best, "%s/best.h5", o->run_dir);
    snprintf(s.path_history, sizeof s.path_history, "%s/history.csv", o->run_dir);
    snprintf(s.path_summary, sizeof s.path_summary, "%s/summary.json", o->run_dir);
    stop_signals_install();

    const struct backend *be = s.be;
    struct model *m = &s.model;
    const struct job_fit *f = &job->fit;
    int64_t batch = f->batch_size;
    int64_t steps = (s.ntrain + batch - 1) / batch;
    /* How often loss sums come back to the host: every step on the CPU (free there), every 50 on a
     * GPU, so it queues steps without waiting (fit.readback_steps overrides). */
    int64_t readback_steps = f->readback_steps > 0 ? f->readback_steps : be == &backend_cpu ? 1 : 50;
    if (f->steps_per_epoch > 0 && f->steps_per_epoch < steps)
        steps = f->steps_per_epoch;
    const char *metric = f->metric != METRIC_NONE ? metric_names[f->metric] : NULL;
    struct loss_params lp = {f->loss, f->metric, m->layers[m->nlayers - 1].spec.u.dense.activation};

    model_print_summary(m, stdout);
    printf("Data: %s, %lld rows for training, %lld for validation; batch %lld, %lld steps per epoch\n",
           s.src.synthetic ? "synthetic" : s.src.parts[0].path, (long long)s.ntrain, (long long)s.nval,
           (long long)batch, (long long)steps);
    if (comm_world.size > 1 || strcmp(s.allreduce.name, "none"))
        printf("Ranks: %d (global batch %lld: %lld-%lld rows per rank); gradient all-reduce: %s, %.1f MB per step\n",
               comm_world.size, (long long)batch, (long long)(batch / comm_world.size),
               (long long)((batch + comm_world.size - 1) / comm_world.size), s.allreduce.name,
               (double)m->arena_floats * sizeof(float) / 1e6);
    int threads = omp_get_max_threads();
    printf("Backend: %s (%s), %d thread%s; optimizer %s (lr %g); loss %s; run dir %s\n", be->name, s.precision,
           threads, threads == 1 ? "" : "s", optimizer_names[f->optimizer.kind], f->optimizer.lr, loss_names[f->loss],
           o->run_dir);
    fflush(stdout);

    /* Monitors that need validation fall back to their training counterparts without it. */
    struct job_monitor ck = f->checkpoint.m, es = f->early_stopping.m;
    if (s.nval == 0) {
        if (!strncmp(ck.monitor, "val_", 4))
            memmove(ck.monitor, ck.monitor + 4, strlen(ck.monitor) - 3);
        if (f->early_stopping.enabled && !strncmp(es.monitor, "val_", 4)) {
            dp_warn("no validation rows: early stopping monitors %s instead of %s", es.monitor + 4, es.monitor);
            memmove(es.monitor, es.monitor + 4, strlen(es.monitor) - 3);
        }
    }
    int stopped_early = 0, rc = 0;
    int64_t last_written = resume_path && s.pos.step_in_epoch == 0 ? s.pos.epoch : -1;
    double last_row[HISTORY_COLUMNS];
    for (int c = 0; c < HISTORY_COLUMNS; c++)
        last_row[c] = s.history.rows ? s.history.v[(s.history.rows - 1) * HISTORY_COLUMNS + c] : NAN;
    s.last_checkpoint_time = time_now();
    if (f->early_stopping.enabled && s.pos.wait >= f->early_stopping.patience && s.pos.epoch > 0 &&
        s.pos.step_in_epoch == 0)
        stopped_early = 1; /* the checkpoint was written after early stopping had decided */

    for (int64_t epoch = s.pos.epoch; epoch < f->epochs && rc == 0 && !stopped_early; epoch++) {
        double epoch_start = time_now();
        double split0[3] = {s.time_compute, s.time_allreduce, s.time_data};
        int64_t first_step = epoch == s.pos.epoch ? s.pos.step_in_epoch : 0;
        struct progress prog;
        progress_begin(&prog, epoch, f->epochs, steps, metric, o->tty);
        batch_reader_begin_epoch(&s.train_reader, epoch);
        double acc[LOSS_ACC_COUNT] = {0};
        int64_t since_readback = 0;
        if (first_step > 0) {
            acc[LOSS_ACC_LOSS] = s.pos.epoch_loss_sum;
            acc[LOSS_ACC_METRIC] = s.pos.epoch_metric_sum;
            acc[LOSS_ACC_ROWS] = s.pos.epoch_rows;
        }
        for (int64_t step = first_step; step < steps; step++) {
            int64_t pos = step * batch;
            int64_t rows = s.ntrain - pos < batch ? s.ntrain - pos : batch;
            /* This rank's slice of the global batch; gradients are scaled by the GLOBAL row count
             * and summed over ranks, so every rank applies the same averaged gradient. */
            int64_t lo, hi;
            batch_slice(rows, comm_world.rank, comm_world.size, &lo, &hi);
            double t0 = time_now();
            struct host_batch *hb = &s.hb[step & 1];
            /* This step's rows were asked for while the last step ran (the reader thread waits for
             * the device's copy from the buffer two steps ago before filling it). */
            if (!batch_prefetch_pending(&s.prefetch))
                batch_prefetch_request(&s.prefetch, (int)(step & 1), pos + lo, hi - lo);
            if (batch_prefetch_wait(&s.prefetch, err) != 0) {
                rc = -1;
                break;
            }
            if (step + 1 < steps) {
                int64_t next_pos = pos + batch, next_lo, next_hi;
                int64_t next_rows = s.ntrain - next_pos < batch ? s.ntrain - next_pos : batch;
                batch_slice(next_rows, comm_world.rank, comm_world.size, &next_lo, &next_hi);
                batch_prefetch_request(&s.prefetch, (int)((step + 1) & 1), next_pos + next_lo, next_hi - next_lo);
            }
            double t1 = time_now();
            if (since_readback == 0)
                be->zero(s.db.acc, LOSS_ACC_COUNT * sizeof(double)); /* sums since the last read-back */
            /* Read-back points (the same steps on every rank): the loss sums come back from the
             * device, ranks agree on them and on stop requests, and only there are NaN checks,
             * progress, checkpoints and signals handled. Between them a GPU runs without host syncs. */
            int readback = since_readback + 1 >= readback_steps || step + 1 == steps ||
                           (f->checkpoint.every_steps > 0 && (s.pos.iterations + 1) % f->checkpoint.every_steps == 0);
            train_step_run(&s.step, hb, (int)(step & 1), lo, hi, rows, s.pos.iterations);
            stop_signals_test_point(s.pos.iterations + 1);
            double t2 = t1 + s.step.seconds_compute, t3 = t2 + s.step.seconds_allreduce;
            if (readback) {
                grad_allreduce_sync(&s.allreduce); /* NCCL's timeout applies to this wait too */
                be->synchronize();
                /* The sums and any stop request, agreed by all ranks in one small reduction. */
                double agreed[LOSS_ACC_COUNT + 1];
                be->download(agreed, s.db.acc, LOSS_ACC_COUNT * sizeof(double));
                agreed[LOSS_ACC_COUNT] = stop_signal_pending();
                comm_allreduce_sum_f64(agreed, LOSS_ACC_COUNT + 1);
                if (agreed[LOSS_ACC_COUNT] > 0 && !stop_signal_pending())
                    stop_signal_set(SIGTERM); /* another rank was signalled */
                for (int a = 0; a < LOSS_ACC_COUNT; a++)
                    acc[a] += agreed[a];
                since_readback = 0;
            } else {
                since_readback++;
            }
            double t4 = time_now();
            s.time_data += t1 - t0;
            s.time_compute += (t2 - t1) + (t4 - t3);
            s.time_allreduce += t3 - t2;
            /* Steady state for scaling reports: the first STEADY_SKIP steps of this process are left out. */
            if (++s.steps_this_run > STEADY_SKIP) {
                s.steady_steps++;
                s.steady_samples += rows;
                s.steady_seconds += t4 - t0;
                s.steady_data += t1 - t0;
                s.steady_compute += (t2 - t1) + (t4 - t3);
                s.steady_allreduce += t3 - t2;
            }
            s.pos.iterations++;
            s.pos.samples += rows;
            if (!readback)
                continue;
            if (!isfinite(acc[LOSS_ACC_LOSS])) {
                if (o->tty)
                    printf("\n");
                int have_last = access(s.path_last, F_OK) == 0;
                rc = dp_error_set(err, DP_EXIT_DIVERGED, "loss became %s at epoch %lld step %lld; training "
                                  "stopped (%s%s). Try a lower learning rate.",
                                  isnan(acc[LOSS_ACC_LOSS]) ? "NaN" : "infinite", (long long)epoch + 1,
                                  (long long)step + 1, have_last ? "the last good checkpoint is intact: " :
                                  "no checkpoint was written yet", have_last ? s.path_last : "");
                break;
            }
            progress_update(&prog, step + 1, acc[LOSS_ACC_LOSS] / acc[LOSS_ACC_ROWS],
                            acc[LOSS_ACC_METRIC] / acc[LOSS_ACC_ROWS]);
            int by_steps = f->checkpoint.every_steps > 0 && s.pos.iterations % f->checkpoint.every_steps == 0;
            int by_time = f->checkpoint.every_seconds > 0 &&
                          time_now() - s.last_checkpoint_time >= f->checkpoint.every_seconds;
            if ((stop_signal_pending() || by_steps || by_time) && step + 1 < steps) {
                s.pos.step_in_epoch = step + 1;
                s.pos.epoch_loss_sum = acc[LOSS_ACC_LOSS];
                s.pos.epoch_metric_sum = acc[LOSS_ACC_METRIC];
                s.pos.epoch_rows = acc[LOSS_ACC_ROWS];
                s.pos.lr = optimizer_current_lr(&f->optimizer, s.pos.iterations);
                s.pos.train_seconds += time_now() - epoch_start;
                epoch_start = time_now();
                batch_prefetch_quiesce(&s.prefetch); /* HDF5 is used by one thread at a time */
                if (write_last(&s, err) != 0) {
                    rc = -1;
                    break;
                }
                if (stop_signal_pending()) {
                    if (o->tty)
                        printf("\n");
                    printf("Stopped by %s at epoch %lld, step %lld/%lld; checkpoint written to %s. Resume "
                           "with: dptrain fit %s --run-dir %s --resume auto\n", stop_signal_name(stop_signal_pending()),
                           (long long)epoch + 1, (long long)step + 1, (long long)steps, s.path_last, job->path,
                           o->run_dir);
                    rc = TRAINER_STOPPED;
                    break;
                }
            }
        }
        if (batch_prefetch_pending(&s.prefetch)) /* the loop stopped early: the read ahead is unused */
            (void)batch_prefetch_wait(&s.prefetch, NULL);
        if (rc != 0)
            break;
        s.pos.train_seconds += time_now() - epoch_start;
        double row[HISTORY_COLUMNS];
        row[HISTORY_EPOCH] = (double)epoch + 1;
        row[HISTORY_LOSS] = acc[LOSS_ACC_LOSS] / acc[LOSS_ACC_ROWS];
        row[HISTORY_METRIC] = metric ? acc[LOSS_ACC_METRIC] / acc[LOSS_ACC_ROWS] : NAN;
        row[HISTORY_VAL_LOSS] = row[HISTORY_VAL_METRIC] = NAN;
        if (s.nval > 0) {
            double vacc[LOSS_ACC_COUNT];
            be->synchronize(); /* no copy from the host batches is still in flight */
            if (evaluate_rows(m, &s.val_reader, s.nval, batch, lp, &s.db, &s.hb[0], vacc, NULL, NULL, NULL, err) != 0) {
                rc = -1;
                break;
            }
            row[HISTORY_VAL_LOSS] = vacc[LOSS_ACC_LOSS] / vacc[LOSS_ACC_ROWS];
            row[HISTORY_VAL_METRIC] = metric ? vacc[LOSS_ACC_METRIC] / vacc[LOSS_ACC_ROWS] : NAN;
        }
        row[HISTORY_SECONDS] = time_now() - epoch_start;
        row[HISTORY_LR] = optimizer_current_lr(&f->optimizer, s.pos.iterations);
        if (be != &backend_cpu || comm_world.size > 1)
            fit_epoch_figures(&s, &prog, split0, (double)(steps - first_step) * (double)batch, row[HISTORY_SECONDS]);
        progress_end(&prog, steps, row[HISTORY_LOSS], row[HISTORY_METRIC], row[HISTORY_VAL_LOSS],
                     row[HISTORY_VAL_METRIC]);
        history_append(&s.history, row);
        memcpy(last_row, row, sizeof row);
        s.pos.epoch = epoch + 1;
        s.pos.step_in_epoch = 0;
        s.pos.epoch_loss_sum = s.pos.epoch_metric_sum = s.pos.epoch_rows = 0;
        s.pos.lr = row[HISTORY_LR];

        double v = monitor_value(ck.monitor, row);
        int better = improved(ck.mode, v, s.pos.best, 0.0);
        if (better) {
            s.pos.best = v;
            s.pos.best_epoch = epoch + 1;
        }
        if (f->early_stopping.enabled) {
            double ev = monitor_value(es.monitor, row);
            if (improved(es.mode, ev, s.pos.es_best, f->early_stopping.min_delta)) {
                s.pos.es_best = ev;
                s.pos.wait = 0;
                if (f->early_stopping.restore_best_weights) {
                    if (!s.es_best_weights)
                        s.es_best_weights = dp_malloc(m->arena_floats * sizeof(float), "best weights");
                    be->download(s.es_best_weights, m->params, m->arena_floats * sizeof(float));
                }
            } else {
                s.pos.wait++;
            }
            if (s.pos.wait >= f->early_stopping.patience && epoch + 1 < f->epochs)
                stopped_early = 1;
        }
        if (comm_world.rank == 0 && history_write_csv(&s.history, s.path_history, metric, err) != 0) {
            rc = -1;
            break;
        }
        if ((better || !f->checkpoint.save_best_only) && write_checkpoint(&s, s.path_best, err) != 0) {
            rc = -1;
            break;
        }
        double any_stop = stop_signal_pending();
        comm_allreduce_max_f64(&any_stop, 1);
        if (any_stop > 0 && !stop_signal_pending())
            stop_signal_set(SIGTERM);
        if ((epoch + 1) % f->checkpoint.every_epochs == 0 || stop_signal_pending() || stopped_early) {
            if (write_last(&s, err) != 0) {
                rc = -1;
                break;
            }
            last_written = s.pos.epoch;
        }
        if (stopped_early)
            printf("Epoch %lld: early stopping (%s did not improve for %lld epochs; best %.4f)\n",
                   (long long)epoch + 1, es.monitor, (long long)s.pos.wait, s.pos.es_best);
        if (stop_signal_pending() && !stopped_early && epoch + 1 < f->epochs) {
            printf("Stopped by %s after epoch %lld; checkpoint written to %s. Resume with: dptrain fit %s "
                   "--run-dir %s --resume auto\n", stop_signal_name(stop_signal_pending()), (long long)epoch + 1, s.path_last,
                   job->path, o->run_dir);
            rc = TRAINER_STOPPED;
        }
    }
    if (rc == 0) {
        if (s.es_best_weights) { /* Keras 3 restores at the end of training, stopped early or not */
            be->upload(m->params, s.es_best_weights, m->arena_floats * sizeof(float));
            printf("Restored the weights of the best epoch (%s %.4f)\n", es.monitor, s.pos.es_best);
            free(s.es_best_weights);
            s.es_best_weights = NULL;
            last_written = -1;
        }
        if (last_written != s.pos.epoch)
            rc = write_last(&s, err);
    }
    if (rc == 0 || rc == TRAINER_STOPPED) {
        struct dp_error serr;
        if (fit_write_summary(&s, last_row, time_now() - wall_start, stopped_early, &serr) != 0 && rc == 0) {
            *err = serr;
            rc = -1;
        }
    }
    if (rc == 0)
        printf("Done: %lld epochs, %.1f s, %.0f samples/s; best %s %.4f (epoch %lld) in %s\n",
               (long long)s.pos.epoch, time_now() - wall_start,
               s.pos.train_seconds > 0 ? (double)s.pos.samples / s.pos.train_seconds : 0.0, ck.monitor,
               s.pos.best, (long long)s.pos.best_epoch, s.path_best);
    fit_state_free(&s);
    return rc;
}
