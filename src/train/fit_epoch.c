/* One epoch of the fit loop: the steps from where the run stands (a resumed run starts mid-epoch),
 * the loss sums agreed by the ranks at read-back points and handed to the callbacks, then
 * validation, the history row and the epoch_end callbacks. */
#include <math.h>
#include <signal.h>
#include <string.h>

#include "base/stop_signals.h"
#include "base/timeutil.h"
#include "dist/comm.h"
#include "train/callbacks/callbacks.h"
#include "train/fit_state.h"

/* Asks the reader for the rows this rank takes of the batch at `step` into host slot step & 1. */
static void request_batch(struct fit_state *s, int64_t step)
{
    int64_t pos = step * s->loop.batch, lo, hi;
    int64_t rows = s->ntrain - pos < s->loop.batch ? s->ntrain - pos : s->loop.batch;
    batch_slice(rows, comm_world.rank, comm_world.size, &lo, &hi);
    batch_prefetch_request(&s->prefetch, (int)(step & 1), pos + lo, hi - lo);
}

/* At a read-back point (the same steps on every rank): the loss sums come back from the device,
 * and the ranks agree on them and on stop requests in one small reduction. Between these points a
 * GPU runs without host syncs. */
static void read_back(struct fit_state *s, int64_t step)
{
    comm_set_position(s->loop.epoch + 1, step + 1);
    grad_allreduce_sync(&s->allreduce); /* NCCL's timeout applies to this wait too */
    s->be->synchronize();
    double agreed[LOSS_ACC_COUNT + 1];
    s->be->download(agreed, s->db.acc, LOSS_ACC_COUNT * sizeof(double));
    agreed[LOSS_ACC_COUNT] = stop_signal_pending();
    comm_allreduce_sum_f64(agreed, LOSS_ACC_COUNT + 1);
    if (agreed[LOSS_ACC_COUNT] > 0 && !stop_signal_pending())
        stop_signal_set(SIGTERM); /* another rank was signalled */
    s->loop.stop = agreed[LOSS_ACC_COUNT] > 0;
    for (int a = 0; a < LOSS_ACC_COUNT; a++)
        s->loop.acc[a] += agreed[a];
}

/* Seconds of one step by where they went; the first STEADY_SKIP steps of this process are left out
 * of the steady-state figures (scaling reports). */
static void account_step(struct fit_state *s, int64_t rows, double t0, double t1, double t4)
{
    double t2 = t1 + s->step.seconds_compute, t3 = t2 + s->step.seconds_allreduce;
    s->time_data += t1 - t0;
    s->time_compute += (t2 - t1) + (t4 - t3);
    s->time_allreduce += t3 - t2;
    if (++s->steps_this_run > STEADY_SKIP) {
        s->steady_steps++;
        s->steady_samples += rows;
        s->steady_seconds += t4 - t0;
        s->steady_data += t1 - t0;
        s->steady_compute += (t2 - t1) + (t4 - t3);
        s->steady_allreduce += t3 - t2;
    }
    s->pos.iterations++;
    s->pos.samples += rows;
}

/* The epoch's steps. Gradients are scaled by the GLOBAL row count and summed over ranks, so every
 * rank applies the same averaged gradient. */
static int run_steps(struct fit_state *s, struct dp_error *err)
{
    struct fit_loop *L = &s->loop;
    const struct job_checkpoint *ck = &s->job->fit.checkpoint;
    int64_t since_readback = 0;
    for (int64_t step = L->first_step; step < L->steps; step++) {
        int64_t rows = s->ntrain - step * L->batch < L->batch ? s->ntrain - step * L->batch : L->batch, lo, hi;
        batch_slice(rows, comm_world.rank, comm_world.size, &lo, &hi);
        double t0 = time_now();
        /* This step's rows were asked for while the last step ran (the reader thread waits for the
         * device's copy from the buffer two steps ago before filling it). */
        if (!batch_prefetch_pending(&s->prefetch))
            request_batch(s, step);
        if (batch_prefetch_wait(&s->prefetch, err) != 0)
            return -1;
        if (step + 1 < L->steps)
            request_batch(s, step + 1);
        double t1 = time_now();
        if (since_readback == 0)
            s->be->zero(s->db.acc, LOSS_ACC_COUNT * sizeof(double)); /* sums since the last read-back */
        int readback = since_readback + 1 >= L->readback_steps || step + 1 == L->steps ||
                       (ck->every_steps > 0 && (s->pos.iterations + 1) % ck->every_steps == 0);
        train_step_run(&s->step, &s->hb[step & 1], (int)(step & 1), lo, hi, rows, s->pos.iterations);
        stop_signals_test_point(s->pos.iterations + 1);
        if (readback)
            read_back(s, step);
        since_readback = readback ? 0 : since_readback + 1;
        account_step(s, rows, t0, t1, time_now());
        int rc = readback ? fit_callbacks_run(s, FIT_READBACK, step, NULL, err) : 0;
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The epoch's history row: training loss and metric, then validation on the rows after them. */
static int epoch_row(struct fit_state *s, double *row, struct dp_error *err)
{
    struct fit_loop *L = &s->loop;
    row[HISTORY_EPOCH] = (double)L->epoch + 1;
    row[HISTORY_LOSS] = L->acc[LOSS_ACC_LOSS] / L->acc[LOSS_ACC_ROWS];
    int auc = s->job->fit.metric == METRIC_AUC;
    row[HISTORY_METRIC] = !L->metric ? NAN : auc ? score_pairs_auc(&s->scores) : metric_value(s->job->fit.metric, L->acc);
    row[HISTORY_VAL_LOSS] = row[HISTORY_VAL_METRIC] = NAN;
    if (s->nval > 0) {
        double vacc[LOSS_ACC_COUNT];
        s->be->synchronize(); /* no copy from the host batches is still in flight */
        score_pairs_clear(&s->val_scores);
        if (evaluate_rows(&s->model, &s->val_reader, s->nval, L->batch, s->step.lp, &s->db, &s->hb[0], vacc, NULL,
                          auc ? score_sink_fn : NULL, &(struct score_sink){&s->val_scores, s->tm.k}, err) != 0)
            return -1;
        row[HISTORY_VAL_LOSS] = vacc[LOSS_ACC_LOSS] / vacc[LOSS_ACC_ROWS];
        row[HISTORY_VAL_METRIC] = !L->metric ? NAN : auc ? score_pairs_auc(&s->val_scores) : metric_value(s->job->fit.metric, vacc);
    }
    row[HISTORY_SECONDS] = time_now() - L->epoch_start;
    row[HISTORY_LR] = optimizer_current_lr(&s->opt, s->pos.iterations);
    return 0;
}

int fit_epoch(struct fit_state *s, struct dp_error *err)
{
    struct fit_loop *L = &s->loop;
    L->epoch = s->pos.epoch;
    L->first_step = s->pos.step_in_epoch; /* 0 but in the epoch a resumed run continues */
    L->epoch_start = time_now();
    L->split0[0] = s->time_compute, L->split0[1] = s->time_allreduce, L->split0[2] = s->time_data;
    L->acc[LOSS_ACC_LOSS] = L->first_step ? s->pos.epoch_loss_sum : 0;
    L->acc[LOSS_ACC_METRIC] = L->first_step ? s->pos.epoch_metric_sum : 0;
    L->acc[LOSS_ACC_ROWS] = L->first_step ? s->pos.epoch_rows : 0;
    L->acc[LOSS_ACC_METRIC_DEN] = L->first_step ? s->pos.epoch_metric_den : 0;
    if (!L->first_step) /* a resumed epoch keeps the scores its checkpoint brought back */
        score_pairs_clear(&s->scores);
    batch_reader_begin_epoch(&s->train_reader, L->epoch);
    int rc = fit_callbacks_run(s, FIT_EPOCH_BEGIN, 0, NULL, err);
    if (rc == 0)
        rc = run_steps(s, err);
    if (batch_prefetch_pending(&s->prefetch)) /* stopped early: the read ahead is unused */
        (void)batch_prefetch_wait(&s->prefetch, NULL);
    if (rc != 0)
        return rc;
    s->pos.train_seconds += time_now() - L->epoch_start;
    double row[HISTORY_COLUMNS];
    if (epoch_row(s, row, err) != 0)
        return -1;
    memcpy(L->last_row, row, sizeof row);
    s->pos.epoch = L->epoch + 1;
    s->pos.step_in_epoch = 0;
    s->pos.epoch_loss_sum = s->pos.epoch_metric_sum = s->pos.epoch_metric_den = s->pos.epoch_rows = 0;
    s->pos.lr = row[HISTORY_LR];
    /* A signal that came during validation: all ranks agree before deciding to stop. */
    double any_stop = stop_signal_pending();
    comm_allreduce_max_f64(&any_stop, 1);
    if (any_stop > 0 && !stop_signal_pending())
        stop_signal_set(SIGTERM);
    L->stop = any_stop > 0;
    return fit_callbacks_run(s, FIT_EPOCH_END, 0, row, err);
}
