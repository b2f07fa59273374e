#include "train/resume.h"

#include <stdio.h>
#include <string.h>

int resume_check_job(const struct job *now, const char *text, const char *path, struct dp_error *err)
{
    struct job then;
    if (job_load_text(&then, path, text, err) != 0)
        return -1;
    int rc = 0;
    char what[256];
    if (then.nlayers != now->nlayers) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s was written for a model of %d layers; %s has %d", path,
                          then.nlayers, now->path, now->nlayers);
        goto done;
    }
    for (int i = 0; i < now->nlayers; i++)
        if (layer_settings_differ(&then.layers[i], &now->layers[i], what, sizeof what)) {
            rc = dp_error_set(err, DP_EXIT_INPUT, "%s does not fit %s: layer %d (%s:%d) %s", path, now->path,
                              i + 1, now->path, now->layers[i].line, what);
            goto done;
        }
    if (then.fit.optimizer.kind != now->fit.optimizer.kind) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s was trained with %s but %s asks for %s; optimizer state "
                          "cannot carry over (start a new run dir instead)", path,
                          optimizer_names[then.fit.optimizer.kind], now->path, optimizer_names[now->fit.optimizer.kind]);
        goto done;
    }
    if (then.fit.loss != now->fit.loss) {
        rc = dp_error_set(err, DP_EXIT_INPUT, "%s was trained with loss %s but %s uses %s", path,
                          loss_names[then.fit.loss], now->path, loss_names[now->fit.loss]);
        goto done;
    }
    if (then.fit.epochs != now->fit.epochs)
        printf("Resume: epochs changed from %lld to %lld\n", (long long)then.fit.epochs, (long long)now->fit.epochs);
    if (then.fit.optimizer.lr != now->fit.optimizer.lr)
        printf("Resume: learning rate changed from %g to %g\n", then.fit.optimizer.lr, now->fit.optimizer.lr);
    struct { const char *name; int differs; } others[] = {
        {"fit.batch_size", then.fit.batch_size != now->fit.batch_size},
        {"fit.seed", then.fit.seed != now->fit.seed},
        {"fit.steps_per_epoch", then.fit.steps_per_epoch != now->fit.steps_per_epoch},
        {"data.validation_split", then.data.validation_split != now->data.validation_split},
        {"data.shuffle", then.data.shuffle != now->data.shuffle},
        {"data.normalize", then.data.normalize != now->data.normalize},
        {"data.source", then.data.source != now->data.source},
        {"data.synthetic", then.data.synthetic_rows != now->data.synthetic_rows ||
                           then.data.synthetic_features != now->data.synthetic_features},
        {"fit.optimizer.learning_rate schedule",
         memcmp(&then.fit.optimizer.schedule, &now->fit.optimizer.schedule, sizeof then.fit.optimizer.schedule) != 0},
        {"fit.optimizer", then.fit.optimizer.momentum != now->fit.optimizer.momentum ||
                          then.fit.optimizer.nesterov != now->fit.optimizer.nesterov ||
                          then.fit.optimizer.decay != now->fit.optimizer.decay ||
                          then.fit.optimizer.beta1 != now->fit.optimizer.beta1 ||
                          then.fit.optimizer.beta2 != now->fit.optimizer.beta2 ||
                          then.fit.optimizer.epsilon != now->fit.optimizer.epsilon ||
                          then.fit.optimizer.rho != now->fit.optimizer.rho},
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (others[i].differs)
            dp_warn("resuming with a different %s than %s was written with: the run will not match an "
                    "uninterrupted one", others[i].name, path);
done:
    job_free(&then);
    return rc;
}
