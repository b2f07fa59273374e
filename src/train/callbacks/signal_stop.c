/* Stops on SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 (a Slurm time limit, scancel, Ctrl-C) once the
 * checkpoint callback has written last.h5, mid-epoch or at the epoch's end, and says how to
 * resume. Training then ends with TRAINER_STOPPED (exit 3: requeue). */
#include <stdio.h>

#include "train/callbacks/callbacks.h"
#include "base/stop_signals.h"

static int signal_stop_readback(struct fit_state *s, int64_t step, struct dp_error *err)
{
    (void)err;
    const struct fit_loop *L = &s->loop;
    if (!L->stop || step + 1 >= L->steps)
        return 0;
    if (s->o->tty)
        printf("\n");
    printf("Stopped by %s at epoch %lld, step %lld/%lld; checkpoint written to %s. Resume with: dptrain fit %s "
           "--run-dir %s --resume auto\n", stop_signal_name(stop_signal_pending()), (long long)L->epoch + 1,
           (long long)step + 1, (long long)L->steps, s->path_last, s->job->path, s->o->run_dir);
    return TRAINER_STOPPED;
}

static int signal_stop_epoch_end(struct fit_state *s, const double *row, struct dp_error *err)
{
    (void)row, (void)err;
    const struct fit_loop *L = &s->loop;
    if (!L->stop || L->stopped_early || L->epoch + 1 >= s->job->fit.epochs)
        return 0;
    printf("Stopped by %s after epoch %lld; checkpoint written to %s. Resume with: dptrain fit %s --run-dir %s "
           "--resume auto\n", stop_signal_name(stop_signal_pending()), (long long)L->epoch + 1, s->path_last,
           s->job->path, s->o->run_dir);
    return TRAINER_STOPPED;
}

const struct fit_callback callback_signal_stop = {
    .name = "signal stop",
    .readback = signal_stop_readback,
    .epoch_end = signal_stop_epoch_end,
};
