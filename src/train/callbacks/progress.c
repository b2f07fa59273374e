/* The Keras-style progress bar (or one line per epoch), with the epoch's throughput, time split
 * and GPU memory where there is a device or several ranks. */
#include <math.h>

#include "train/callbacks/callbacks.h"
#include "dist/comm.h"

static int progress_epoch_begin(struct fit_state *s, struct dp_error *err)
{
    (void)err;
    struct fit_loop *L = &s->loop;
    progress_begin(&L->prog, L->epoch, s->job->fit.epochs, L->steps, L->metric, s->o->tty);
    L->prog.every = s->o->progress_every;
    return 0;
}

static int progress_readback(struct fit_state *s, int64_t step, struct dp_error *err)
{
    (void)err;
    const double *acc = s->loop.acc;
    progress_update(&s->loop.prog, step + 1, acc[LOSS_ACC_LOSS] / acc[LOSS_ACC_ROWS],
                    metric_value(s->job->fit.metric, acc));
    return 0;
}

static int progress_epoch_end(struct fit_state *s, const double *row, struct dp_error *err)
{
    (void)err;
    struct fit_loop *L = &s->loop;
    if (s->be->is_device || comm_world.size > 1)
        fit_epoch_figures(s, &L->prog, L->split0, (double)(L->steps - L->first_step) * (double)L->batch,
                          row[HISTORY_SECONDS]);
    const struct job_fit *f = &s->job->fit;
    int rate_changes = f->optimizer.schedule.kind != LR_CONSTANT || f->optimizer.decay > 0 || f->reduce_lr.enabled;
    L->prog.lr = rate_changes ? row[HISTORY_LR] : NAN;
    progress_end(&L->prog, L->steps, row[HISTORY_LOSS], row[HISTORY_METRIC], row[HISTORY_VAL_LOSS],
                 row[HISTORY_VAL_METRIC]);
    return 0;
}

const struct fit_callback callback_progress = {
    .name = "progress",
    .epoch_begin = progress_epoch_begin,
    .readback = progress_readback,
    .epoch_end = progress_epoch_end,
};
