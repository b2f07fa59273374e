#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <sys/stat.h>
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
#include "train/callbacks/callbacks.h"

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
    if (s->have_val_src)
        row_source_close(&s->val_src);
    score_pairs_free(&s->scores);
    score_pairs_free(&s->val_scores);
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
    /* the auc metric's scores of the epoch so far: rank 0 holds them all, the others none, and the
     * epoch's end gathers them with the rest */
    score_pairs_clear(&s->scores);
    if (comm_world.rank == 0 && st.n_epoch_scores > 0) {
        struct scored *p = dp_malloc((size_t)st.n_epoch_scores * sizeof *p, "epoch scores");
        for (int64_t i = 0; i < st.n_epoch_scores; i++)
            p[i] = (struct scored){(float)st.epoch_scores[2 * i], st.epoch_scores[2 * i + 1] != 0};
        score_pairs_free(&s->scores);
        s->scores = (struct score_pairs){st.n_epoch_scores, st.n_epoch_scores, p};
    }
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

/* data.validation_file: its rows in place of a split, with the training data's shapes and types */
static int open_validation_file(struct fit_state *s, const struct job *job, struct dp_error *err)
{
    const struct job_data *d = &job->data;
    char *files[1] = {d->validation_file};
    if (row_source_open_files(&s->val_src, files, 1, d->validation_group, err) != 0)
        return -1;
    s->have_val_src = 1;
    const struct row_source *t = &s->src, *v = &s->val_src;
    if (v->x_cols != t->x_cols || v->x_shape.rank != t->x_shape.rank || v->x_dtype != t->x_dtype ||
        v->y_labels != t->y_labels || v->y_cols != t->y_cols) {
        char ts[64], vs[64];
        shape_format(ts, sizeof ts, &t->x_shape);
        shape_format(vs, sizeof vs, &v->x_shape);
        return dp_error_set(err, DP_EXIT_INPUT, "%s: /%s has samples %s (%s, %s) but the training data %s (%s, %s)",
                            d->validation_file, d->validation_group, vs, v->x_dtype == X_DTYPE_UINT8 ? "uint8" : "float32",
                            v->y_labels ? "labels" : "targets", ts, t->x_dtype == X_DTYPE_UINT8 ? "uint8" : "float32",
                            t->y_labels ? "labels" : "targets");
    }
    s->nval = v->rows;
    return 0;
}

/* The rows (training, then validation: Keras' validation_split takes the last rows), the model on
 * this rank's backend with fresh or restored weights and optimizer state, and the normalization. */
static int setup_model(struct fit_state *s, const struct job *job, const char *resume_path, struct dp_error *err)
{
    const struct job_data *d = &job->data;
    if (job_open_model(job, "train", &s->src, &s->model, &s->tm, err) != 0)
        return -1;
    int64_t n = s->src.rows;
    s->ntrain = (int64_t)floor((double)n * (1.0 - d->validation_split));
    s->nval = n - s->ntrain;
    if (d->validation_file && open_validation_file(s, job, err) != 0)
        return -1;
    if (s->ntrain < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: no training rows (%lld rows, validation_split %g)",
                            job->path, (long long)n, d->validation_split);
    model_allocate(&s->model, s->be, job->fit.batch_size);
    s->precision = s->be->set_precision(precision_code(job->fit.precision));
    if (job->fit.precision != PRECISION_AUTO && job->fit.precision != PRECISION_FP32 && !s->be->is_device &&
        comm_world.rank == 0)
        dp_warn("fit.precision = \"%s\": the CPU backend computes in fp32", precision_names[job->fit.precision]);
    if (grad_allreduce_init(&s->allreduce, s->be, job->fit.allreduce, job->fit.nccl_timeout,
                            job->fit.allreduce_bucket_mb, s->model.arena_floats, err) != 0)
        return -1;
    model_init_weights(&s->model, job->fit.seed);
    /* Fine-tuning: a fresh run starts from weights made elsewhere (a resume has its own) */
    if (job->fit.initial_weights && !resume_path) {
        if (weights_load(&s->model, job->fit.initial_weights, err) != 0)
            return -1;
        if (comm_world.rank == 0)
            printf("Initial weights: %s\n", job->fit.initial_weights);
    }
    s->nopt_state = optimizer_state_arrays(&job->fit.optimizer);
    for (int i = 0; i < s->nopt_state; i++) {
        s->opt_state[i] = s->be->alloc(s->model.arena_floats * sizeof(float), "optimizer state");
        float start = optimizer_state_initial(&job->fit.optimizer, i);
        if (start != 0.0f) { /* adagrad's accumulator (a resume overwrites it) */
            float *host = dp_malloc(s->model.arena_floats * sizeof(float), "optimizer state");
            for (size_t j = 0; j < s->model.arena_floats; j++)
                host[j] = start;
            s->be->upload(s->opt_state[i], host, s->model.arena_floats * sizeof(float));
            free(host);
        }
    }
    normalizer_init_none(&s->norm, s->src.x_cols);
    if (resume_path)
        return fit_restore(s, resume_path, err);
    if (d->normalize == NORMALIZE_STANDARD) {
        normalizer_free(&s->norm);
        return normalizer_fit(&s->norm, &s->src, d->normalize_all_rows ? n : s->ntrain, err);
    }
    return 0;
}

/* The readers of training and validation rows (this rank's slices), the two host batches the
 * reader thread fills in turn, the device batch, and the step. */
static int setup_pipeline(struct fit_state *s, const struct job *job, struct dp_error *err)
{
    const struct job_data *d = &job->data;
    int64_t batch = job->fit.batch_size;
    const struct target_mode *tm = &s->tm;
    int shuffle = d->shuffle && !s->src.synthetic; /* synthetic rows are i.i.d. already */
    if (batch_reader_init(&s->train_reader, &s->src, &s->norm, 0, s->ntrain, shuffle, job->fit.seed,
                          d->shuffle_buffer_mb, tm->want_labels, tm->classes, tm->k, err) != 0 ||
        batch_reader_init(&s->val_reader, s->have_val_src ? &s->val_src : &s->src, &s->norm,
                          s->have_val_src ? 0 : s->ntrain, s->nval, 0, job->fit.seed,
                          d->shuffle_buffer_mb / 4 + 1, tm->want_labels, tm->classes, tm->k, err) != 0)
        return -1;
    batch_reader_set_slice(&s->train_reader, batch, comm_world.rank, comm_world.size);
    batch_reader_set_slice(&s->val_reader, batch, comm_world.rank, comm_world.size);
    for (int i = 0; i < 2; i++) /* two, so the host fills one while the device copies the other */
        host_batch_alloc_pinned(&s->hb[i], s->be, batch, s->src.x_cols, tm->k, tm->want_labels);
    device_batch_alloc(&s->db, s->be, batch, tm->k);
    if (batch_prefetch_start(&s->prefetch, &s->train_reader, s->be, s->hb, d->reader_thread, err) != 0)
        return -1;
    if (job->fit.metric == METRIC_AUC) {
        if (tm->k > 2)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: metric auc needs a binary problem: one sigmoid output or two "
                                "softmax outputs (this model has %lld)", job->path, (long long)tm->k);
    }
    if (job->naugment > 0) {
        if (s->src.x_shape.rank != 3) {
            char shape[64];
            shape_format(shape, sizeof shape, &s->src.x_shape);
            return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: %s needs images, samples of shape (H, W, C); these are %s",
                                job->path, job->augment[0].line, augment_kind_names[job->augment[0].kind], shape);
        }
        batch_prefetch_set_augment(&s->prefetch, job->augment, job->naugment, &s->src.x_shape, job->fit.seed);
    }
    s->step = (struct train_step){
        .be = s->be,
        .m = &s->model,
        .db = &s->db,
        .opt_state = {s->opt_state[0], s->opt_state[1], s->opt_state[2]},
        .optimizer = &s->opt,
        .lp = job_loss_params(job, &s->model),
        .k = tm->k,
        .seed = job->fit.seed,
        .batch = batch,
        .allreduce = &s->allreduce,
        .scores = job->fit.metric == METRIC_AUC ? &s->scores : NULL,
    };
    return 0;
}

static int fit_setup(struct fit_state *s, const struct job *job, const struct fit_options *o,
                     const char *resume_path, struct dp_error *err)
{
    s->job = job;
    s->o = o;
    s->be = binding_select(o->device, job->fit.allreduce, &s->binding, err);
    if (!s->be)
        return -1;
    s->pos.seed = job->fit.seed;
    s->pos.best = s->pos.es_best = s->pos.plateau_best = s->pos.plateau_lr = NAN;
    s->pos.best_epoch = -1;
    s->opt = job->fit.optimizer;
    if (setup_model(s, job, resume_path, err) != 0)
        return -1;
    if (!isnan(s->pos.plateau_lr)) /* ReduceLROnPlateau had lowered the rate before the stop */
        s->opt.lr = s->pos.plateau_lr;
    return setup_pipeline(s, job, err) != 0 ? -1 : 0;
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

/* The start-up lines: the model, the data, the ranks and the backend. */
static void print_header(const struct fit_state *s)
{
    const struct fit_loop *L = &s->loop;
    const struct job_fit *f = &s->job->fit;
    model_print_summary(&s->model, stdout);
    printf("Data: %s, %lld rows for training, %lld for validation", s->src.synthetic ? "synthetic" : s->src.parts[0].path,
           (long long)s->ntrain, (long long)s->nval);
    if (s->have_val_src)
        printf(" (%s /%s)", s->job->data.validation_file, s->job->data.validation_group);
    printf("; batch %lld, %lld steps per epoch\n", (long long)L->batch, (long long)L->steps);
    for (int i = 0; i < s->job->naugment; i++)
        printf("%s%s", i ? ", " : "Augmentation (training rows only): ", augment_kind_names[s->job->augment[i].kind]);
    if (s->job->naugment)
        printf("\n");
    if (comm_world.size > 1 || s->allreduce.kind != GRAD_ALLREDUCE_NONE)
        printf("Ranks: %d (global batch %lld: %lld-%lld rows per rank); gradient all-reduce: %s, %.1f MB per step\n",
               comm_world.size, (long long)L->batch, (long long)(L->batch / comm_world.size),
               (long long)((L->batch + comm_world.size - 1) / comm_world.size), s->allreduce.name,
               (double)s->model.arena_floats * sizeof(float) / 1e6);
    int threads = omp_get_max_threads();
    printf("Backend: %s (%s), %d thread%s; optimizer %s (lr %g); loss %s; run dir %s\n", s->be->name, s->precision,
           threads, threads == 1 ? "" : "s", optimizer_names[f->optimizer.kind], f->optimizer.lr, loss_names[f->loss],
           s->o->run_dir);
    for (int i = 0; i < s->model.nlayers; i++) {
        const struct layer *l = &s->model.layers[i];
        if (l->spec.kind == LAYER_KIND_BATCHNORM && l->spec.u.batchnorm.per_rank)
            printf("Note: %s (%s:%d) has synchronized = false: its batch statistics are each rank's own, so "
                   "results depend on the number of ranks\n", l->name, s->job->path, l->spec.line);
    }
    fflush(stdout);
}

/* What the loop runs by: steps per epoch, read-back interval, the monitors; and where a resumed run
 * stands (an early stop already decided, the epoch last.h5 holds). */
static void loop_init(struct fit_state *s, const char *resume_path)
{
    struct fit_loop *L = &s->loop;
    const struct job_fit *f = &s->job->fit;
    L->batch = f->batch_size;
    L->steps = (s->ntrain + L->batch - 1) / L->batch;
    if (f->steps_per_epoch > 0 && f->steps_per_epoch < L->steps)
        L->steps = f->steps_per_epoch;
    /* Loss sums come back to the host every step on the CPU (free there), every 50 on a GPU, so it
     * queues steps without waiting (fit.readback_steps overrides). */
    L->readback_steps = f->readback_steps > 0 ? f->readback_steps : s->be->is_device ? 50 : 1;
    L->metric = f->metric != METRIC_NONE ? metric_names[f->metric] : NULL;
    L->ck = f->checkpoint.m;
    L->es = f->early_stopping.m;
    L->rl = f->reduce_lr.m;
    /* Monitors that need validation fall back to their training counterparts without it. */
    if (s->nval == 0) {
        if (!strncmp(L->ck.monitor, "val_", 4))
            memmove(L->ck.monitor, L->ck.monitor + 4, strlen(L->ck.monitor) - 3);
        if (f->early_stopping.enabled && !strncmp(L->es.monitor, "val_", 4)) {
            dp_warn("no validation rows: early stopping monitors %s instead of %s", L->es.monitor + 4, L->es.monitor);
            memmove(L->es.monitor, L->es.monitor + 4, strlen(L->es.monitor) - 3);
        }
        if (f->reduce_lr.enabled && !strncmp(L->rl.monitor, "val_", 4)) {
            dp_warn("no validation rows: reduce_lr_on_plateau monitors %s instead of %s", L->rl.monitor + 4,
                    L->rl.monitor);
            memmove(L->rl.monitor, L->rl.monitor + 4, strlen(L->rl.monitor) - 3);
        }
    }
    L->last_written = resume_path && s->pos.step_in_epoch == 0 ? s->pos.epoch : -1;
    for (int c = 0; c < HISTORY_COLUMNS; c++)
        L->last_row[c] = s->history.rows ? s->history.v[(s->history.rows - 1) * HISTORY_COLUMNS + c] : NAN;
    s->last_checkpoint_time = time_now();
    /* a checkpoint written after early stopping had decided */
    L->stopped_early = f->early_stopping.enabled && s->pos.wait >= f->early_stopping.patience && s->pos.epoch > 0 &&
                       s->pos.step_in_epoch == 0;
}

/* Opening a fit: the run dir (locked), where a resume comes from, the set-up, and the start-up
 * lines. Two fits on one run dir would overwrite each other's checkpoints (and delete each other's
 * temporaries); a resumed run may be a requeued job whose predecessor is still ending: it waits
 * five minutes for the run dir, as a crashed node's lock on a shared file system lasts until its
 * lease runs out (about 90 s on NFSv4). */
static int fit_open(struct fit_state *s, const struct job *job, const struct fit_options *o, struct dp_error *err)
{
    s->loop.wall_start = time_now();
    backend_set_threads(job->fit.threads);
    char resume_buf[4096];
    const char *resume_path;
    struct stat before;
    int created = comm_world.rank == 0 && stat(o->run_dir, &before) != 0;
    if (comm_world.rank == 0 &&
        (run_dir_create(o->run_dir, err) != 0 || run_dir_lock(o->run_dir, o->resume ? 300 : 0, err) != 0))
        return -1;
    /* from here, a rank that stops or hangs ends the job within the timeout (the run dir's lock,
     * which may take minutes, is behind us) */
    comm_set_collective_timeout(job->fit.collective_timeout);
    if (resolve_resume(o, resume_buf, sizeof resume_buf, &resume_path, err) != 0 ||
        fit_setup(s, job, o, resume_path, err) != 0) {
        if (created) /* refused before anything was written: nothing is left behind */
            run_dir_remove_if_unused(o->run_dir);
        return -1;
    }
    say_if_starting_over(o);
    if (comm_world.rank == 0)
        run_dir_remove_temporaries(o->run_dir);
    check_replicas_agree(&s->model);
    snprintf(s->path_last, sizeof s->path_last, "%s/last.h5", o->run_dir);
    snprintf(s->path_best, sizeof s->path_best, "%s/best.h5", o->run_dir);
    snprintf(s->path_history, sizeof s->path_history, "%s/history.csv", o->run_dir);
    snprintf(s->path_summary, sizeof s->path_summary, "%s/summary.json", o->run_dir);
    stop_signals_install();
    loop_init(s, resume_path);
    print_header(s);
    return 0;
}

/* After the last epoch (or a stop): the train_end callbacks, summary.json, the closing line. */
static int fit_finish(struct fit_state *s, int rc, struct dp_error *err)
{
    if (rc == 0)
        rc = fit_callbacks_run(s, FIT_TRAIN_END, 0, NULL, err);
    if (rc == 0 || rc == TRAINER_STOPPED) {
        struct dp_error serr;
        if (fit_write_summary(s, s->loop.last_row, time_now() - s->loop.wall_start, s->loop.stopped_early, &serr) != 0 &&
            rc == 0) {
            *err = serr;
            rc = -1;
        }
    }
    if (rc == 0)
        printf("Done: %lld epochs, %.1f s, %.0f samples/s; best %s %.4f (epoch %lld) in %s\n",
               (long long)s->pos.epoch, time_now() - s->loop.wall_start,
               s->pos.train_seconds > 0 ? (double)s->pos.samples / s->pos.train_seconds : 0.0, s->loop.ck.monitor,
               s->pos.best, (long long)s->pos.best_epoch, s->path_best);
    return rc;
}

int trainer_fit(const struct job *job, const struct fit_options *o, struct dp_error *err)
{
    struct fit_state s;
    memset(&s, 0, sizeof s);
    int rc = fit_open(&s, job, o, err);
    if (rc != 0) {
        if (!s.be)
            s.be = &backend_cpu;
        fit_state_free(&s);
        return rc;
    }
    while (rc == 0 && s.pos.epoch < job->fit.epochs && !s.loop.stopped_early)
        rc = fit_epoch(&s, err);
    rc = fit_finish(&s, rc, err);
    fit_state_free(&s);
    return rc;
}
