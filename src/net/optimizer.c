#include "net/optimizer.h"

#include <math.h>

const char *const optimizer_names[OPTIMIZER_COUNT + 1] = {
    [OPTIMIZER_SGD] = "sgd", [OPTIMIZER_ADAM] = "adam", [OPTIMIZER_RMSPROP] = "rmsprop",
    [OPTIMIZER_ADAMW] = "adamw", [OPTIMIZER_ADAGRAD] = "adagrad", [OPTIMIZER_NADAM] = "nadam",
    [OPTIMIZER_COUNT] = 0,
};

void optimizer_config_defaults(struct optimizer_config *c, enum optimizer_kind kind)
{
    c->kind = kind;
    c->lr = kind == OPTIMIZER_SGD ? 0.01 : 0.001;
    c->momentum = 0.0;
    c->nesterov = 0;
    c->decay = 0.0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->epsilon = 1e-7;
    c->rho = 0.9;
    c->initial_accumulator_value = 0.1;
    c->amsgrad = 0;
    c->clipnorm = c->global_clipnorm = 0.0;
    c->weight_decay = kind == OPTIMIZER_ADAMW ? 0.004 : 0.0;
    c->clipvalue = 0.0;
    c->schedule.kind = LR_CONSTANT;
}

int optimizer_state_arrays(const struct optimizer_config *c)
{
    switch (c->kind) {
    case OPTIMIZER_SGD: return c->momentum > 0.0 ? 1 : 0;
    case OPTIMIZER_ADAM:
    case OPTIMIZER_ADAMW: return c->amsgrad ? 3 : 2;
    case OPTIMIZER_NADAM: return 2;
    case OPTIMIZER_RMSPROP:
    case OPTIMIZER_ADAGRAD: return 1;
    default: return 0;
    }
}

float optimizer_state_initial(const struct optimizer_config *c, int i)
{
    return c->kind == OPTIMIZER_ADAGRAD && i == 0 ? (float)c->initial_accumulator_value : 0.0f;
}

double optimizer_current_lr(const struct optimizer_config *c, int64_t iterations)
{
    double lr = lr_schedule_at(&c->schedule, c->lr, iterations);
    if (c->kind == OPTIMIZER_SGD)
        return lr / (1.0 + c->decay * (double)iterations);
    return lr;
}

/* Nadam's u_k and the product U_t = u_1 ... u_t, multiplied in order from k = 1 (as Keras keeps
 * it, one factor per step), so a resumed run gets the same number; the last product is kept, so
 * consecutive steps cost one factor each. */
static double nadam_u(double beta1, double k) { return beta1 * (1.0 - 0.5 * pow(0.96, k)); }

static double nadam_product(double beta1, int64_t t)
{
    static double cached_beta1 = -1, cached = 1;
    static int64_t cached_t = 0;
    if (beta1 != cached_beta1 || t < cached_t) {
        cached_beta1 = beta1, cached = 1, cached_t = 0;
    }
    for (; cached_t < t; cached_t++)
        cached *= nadam_u(beta1, (double)(cached_t + 1));
    return cached;
}

void optimizer_step_params_make(struct optimizer_step_params *p, const struct optimizer_config *c,
                                int64_t iterations)
{
    p->kind = c->kind;
    p->momentum = (float)c->momentum;
    p->nesterov = c->nesterov;
    p->beta1 = (float)c->beta1;
    p->beta2 = (float)c->beta2;
    p->epsilon = (float)c->epsilon;
    p->rho = (float)c->rho;
    double lr = optimizer_current_lr(c, iterations);
    if (c->kind == OPTIMIZER_ADAM || c->kind == OPTIMIZER_ADAMW) {
        double t = (double)iterations + 1.0;
        p->lr = (float)(lr * sqrt(1.0 - pow(c->beta2, t)) / (1.0 - pow(c->beta1, t)));
    } else {
        p->lr = (float)lr;
    }
    if (c->kind == OPTIMIZER_NADAM) {
        int64_t t = iterations + 1;
        double u_t = nadam_u(c->beta1, (double)t), u_next = nadam_u(c->beta1, (double)t + 1);
        double product = nadam_product(c->beta1, t);
        p->nadam_m = (float)(u_next / (1.0 - product * u_next));
        p->nadam_g = (float)((1.0 - u_t) / (1.0 - product));
        p->nadam_v = (float)(1.0 / (1.0 - pow(c->beta2, (double)t)));
    }
    p->decay = (float)(c->weight_decay * lr);
    p->amsgrad = c->amsgrad;
    p->clipvalue = (float)c->clipvalue;
}
