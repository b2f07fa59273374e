/* The per-epoch history, kept in checkpoints and written to history.csv after every epoch. */
#include "train/callbacks/callbacks.h"
#include "dist/comm.h"

static int history_epoch_end(struct fit_state *s, const double *row, struct dp_error *err)
{
    history_append(&s->history, row);
    if (comm_world.rank == 0 && history_write_csv(&s->history, s->path_history, s->loop.metric, err) != 0)
        return -1;
    return 0;
}

const struct fit_callback callback_history = {.name = "history", .epoch_end = history_epoch_end};
