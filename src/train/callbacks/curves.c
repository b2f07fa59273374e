/* At the end of training, RUN_DIR/curves.png: the run's learning curves (train/history_plot.h),
 * drawn by rank 0 when gnuplot is there; without it, one note and nothing else. */
#include <stdio.h>

#include "dist/comm.h"
#include "train/callbacks/callbacks.h"
#include "train/history_plot.h"

static int curves_train_end(struct fit_state *s, struct dp_error *err)
{
    (void)err;
    if (comm_world.rank != 0 || s->history.rows == 0)
        return 0;
    char png[4200];
    snprintf(png, sizeof png, "%s/curves.png", s->o->run_dir);
    char *dirs[1] = {(char *)s->o->run_dir};
    struct dp_error e = {0};
    int rc = history_plot(dirs, 1, png, &e);
    if (rc < 0)
        dp_warn("%s not drawn: %s", png, e.msg);
    else if (rc > 0)
        dp_warn("%s not drawn: gnuplot failed or is missing (Debian: gnuplot-nox)", png);
    return 0;
}

const struct fit_callback callback_curves = {.name = "curves", .train_end = curves_train_end};
