/* Early stopping as Keras': stop when the monitor has not improved by min_delta for `patience`
 * epochs; with restore_best_weights, the best epoch's weights are kept (in checkpoints too) and
 * restored when training ends, stopped early or not (Keras 3). */
#include <stdio.h>
#include <stdlib.h>

#include "train/callbacks/callbacks.h"

static int early_stopping_epoch_end(struct fit_state *s, const double *row, struct dp_error *err)
{
    (void)err;
    const struct job_early_stopping *es = &s->job->fit.early_stopping;
    struct fit_loop *L = &s->loop;
    if (!es->enabled)
        return 0;
    double v = monitor_value(L->es.monitor, row);
    if (monitor_improved(L->es.mode, v, s->pos.es_best, es->min_delta)) {
        s->pos.es_best = v;
        s->pos.wait = 0;
        if (es->restore_best_weights) {
            size_t bytes = s->model.arena_floats * sizeof(float);
            if (!s->es_best_weights)
                s->es_best_weights = dp_malloc(bytes, "best weights");
            s->be->download(s->es_best_weights, s->model.params, bytes);
        }
    } else {
        s->pos.wait++;
    }
    if (s->pos.wait >= es->patience && L->epoch + 1 < s->job->fit.epochs) {
        L->stopped_early = 1;
        printf("Epoch %lld: early stopping (%s did not improve for %lld epochs; best %.4f)\n", (long long)L->epoch + 1,
               L->es.monitor, (long long)s->pos.wait, s->pos.es_best);
    }
    return 0;
}

static int early_stopping_train_end(struct fit_state *s, struct dp_error *err)
{
    (void)err;
    if (!s->es_best_weights)
        return 0;
    s->be->upload(s->model.params, s->es_best_weights, s->model.arena_floats * sizeof(float));
    printf("Restored the weights of the best epoch (%s %.4f)\n", s->loop.es.monitor, s->pos.es_best);
    free(s->es_best_weights);
    s->es_best_weights = NULL;
    s->loop.last_written = -1; /* last.h5 holds other weights now */
    return 0;
}

const struct fit_callback callback_early_stopping = {
    .name = "early stopping",
    .epoch_end = early_stopping_epoch_end,
    .train_end = early_stopping_train_end,
};
