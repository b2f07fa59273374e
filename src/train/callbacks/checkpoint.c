/* Checkpoints: best.h5 when the monitor improves (or every epoch without save_best_only), last.h5
 * every every_epochs epochs, mid-epoch every every_steps steps or every_seconds seconds, before a
 * stop (signal or early stopping), and at the end. Every rank holds the same state; rank 0 writes,
 * always to a temporary file renamed into place. */
#include <stdlib.h>

#include "train/callbacks/callbacks.h"
#include "base/stop_signals.h"
#include "base/timeutil.h"
#include "dist/comm.h"
#include "train/run_dir.h"

/* Mid-epoch with the auc metric: every rank's scores so far (a collective: all ranks call it at
 * the same read-back), as (score, label) rows; NULL otherwise */
static double *gathered_scores(struct fit_state *s, int64_t *n)
{
    *n = 0;
    if (s->job->fit.metric != METRIC_AUC || s->pos.step_in_epoch == 0)
        return NULL;
    size_t bytes = 0;
    struct scored *all = comm_allgatherv_bytes(s->scores.p, (size_t)s->scores.n * sizeof *all, &bytes);
    *n = (int64_t)(bytes / sizeof *all);
    double *rows = dp_malloc((size_t)(*n * 2 + 1) * sizeof(double), "epoch scores");
    for (int64_t i = 0; i < *n; i++) {
        rows[2 * i] = all[i].score;
        rows[2 * i + 1] = all[i].positive;
    }
    free(all);
    return rows;
}

static int write_checkpoint(struct fit_state *s, const char *path, struct dp_error *err)
{
    int64_t nscores;
    double *scores = gathered_scores(s, &nscores);
    if (comm_world.rank != 0) {
        free(scores);
        return 0;
    }
    struct checkpoint_contents c = {
        .model = &s->model, .job_text = s->job->resolved_text, .norm = &s->norm,
        .opt = &s->opt, .opt_state = s->opt_state, .nopt_state = s->nopt_state,
        .pos = &s->pos, .history = &s->history, .es_best_weights = s->es_best_weights,
        .input_uint8 = s->src.x_dtype == X_DTYPE_UINT8, .class_names = s->src.class_names,
        .epoch_scores = scores, .n_epoch_scores = nscores,
    };
    int rc = checkpoint_write(path, &c, err);
    free(scores);
    return rc;
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

/* Mid-epoch: the position within the epoch and its sums go into last.h5, so a resume prints the
 * same epoch line; the reader thread is quiet meanwhile (HDF5 is used by one thread at a time). */
static int checkpoint_readback(struct fit_state *s, int64_t step, struct dp_error *err)
{
    const struct job_checkpoint *ck = &s->job->fit.checkpoint;
    struct fit_loop *L = &s->loop;
    int by_steps = ck->every_steps > 0 && s->pos.iterations % ck->every_steps == 0;
    int by_time = ck->every_seconds > 0 && time_now() - s->last_checkpoint_time >= ck->every_seconds;
    if (!(L->stop || by_steps || by_time) || step + 1 >= L->steps)
        return 0; /* the epoch's end writes its own */
    s->pos.step_in_epoch = step + 1;
    s->pos.epoch_loss_sum = L->acc[LOSS_ACC_LOSS];
    s->pos.epoch_metric_sum = L->acc[LOSS_ACC_METRIC];
    s->pos.epoch_metric_den = L->acc[LOSS_ACC_METRIC_DEN];
    s->pos.epoch_rows = L->acc[LOSS_ACC_ROWS];
    s->pos.lr = optimizer_current_lr(&s->opt, s->pos.iterations);
    s->pos.train_seconds += time_now() - L->epoch_start;
    L->epoch_start = time_now();
    batch_prefetch_quiesce(&s->prefetch);
    return write_last(s, err);
}

static int checkpoint_epoch_end(struct fit_state *s, const double *row, struct dp_error *err)
{
    const struct job_checkpoint *ck = &s->job->fit.checkpoint;
    struct fit_loop *L = &s->loop;
    double v = monitor_value(L->ck.monitor, row);
    int better = monitor_improved(L->ck.mode, v, s->pos.best, 0.0);
    if (better) {
        s->pos.best = v;
        s->pos.best_epoch = L->epoch + 1;
    }
    if ((better || !ck->save_best_only) && write_checkpoint(s, s->path_best, err) != 0)
        return -1;
    if ((L->epoch + 1) % ck->every_epochs == 0 || L->stop || L->stopped_early) {
        if (write_last(s, err) != 0)
            return -1;
        L->last_written = s->pos.epoch;
    }
    return 0;
}

static int checkpoint_train_end(struct fit_state *s, struct dp_error *err)
{
    return s->loop.last_written != s->pos.epoch ? write_last(s, err) : 0;
}

const struct fit_callback callback_checkpoint = {
    .name = "checkpoint",
    .readback = checkpoint_readback,
    .epoch_end = checkpoint_epoch_end,
    .train_end = checkpoint_train_end,
};
