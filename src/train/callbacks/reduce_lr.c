/* ReduceLROnPlateau as Keras': at the end of each epoch, a monitor that has not improved by
 * min_delta for `patience` epochs multiplies the rate by `factor` (not below min_lr), then
 * `cooldown` epochs pass before counting again. Its state is in the position, so a resumed run
 * continues it exactly. */
#include <math.h>
#include <stdio.h>

#include "train/callbacks/callbacks.h"

static int reduce_lr_epoch_end(struct fit_state *s, const double *row, struct dp_error *err)
{
    (void)err;
    const struct job_reduce_lr *r = &s->job->fit.reduce_lr;
    struct train_position *p = &s->pos;
    if (!r->enabled)
        return 0;
    if (p->plateau_cooldown > 0) {
        p->plateau_cooldown--;
        p->plateau_wait = 0;
    }
    double v = monitor_value(s->loop.rl.monitor, row);
    if (monitor_improved(s->loop.rl.mode, v, p->plateau_best, r->min_delta)) {
        p->plateau_best = v;
        p->plateau_wait = 0;
    } else if (p->plateau_cooldown == 0 && ++p->plateau_wait >= r->patience) {
        double old = s->opt.lr;
        if (old > (double)(float)r->min_lr) {
            s->opt.lr = fmax(old * r->factor, r->min_lr);
            p->plateau_lr = s->opt.lr;
            printf("Epoch %lld: ReduceLROnPlateau reducing learning rate to %g (%s did not improve for %lld "
                   "epochs)\n", (long long)s->loop.epoch + 1, s->opt.lr, s->loop.rl.monitor,
                   (long long)p->plateau_wait);
            p->plateau_cooldown = r->cooldown;
            p->plateau_wait = 0;
        }
    }
    return 0;
}

const struct fit_callback callback_reduce_lr = {
    .name = "reduce lr on plateau",
    .epoch_end = reduce_lr_epoch_end,
};
