#include "net/lr_schedule.h"

#include <math.h>
#include <stddef.h>

const char *const lr_schedule_names[LR_SCHEDULE_COUNT + 1] = {
    [LR_CONSTANT] = "constant",
    [LR_EXPONENTIAL_DECAY] = "exponential_decay",
    [LR_PIECEWISE_CONSTANT] = "piecewise_constant_decay",
    [LR_INVERSE_TIME_DECAY] = "inverse_time_decay",
    [LR_POLYNOMIAL_DECAY] = "polynomial_decay",
    [LR_COSINE_DECAY] = "cosine_decay",
    [LR_COSINE_DECAY_RESTARTS] = "cosine_decay_restarts",
    [LR_SCHEDULE_COUNT] = NULL,
};

static double cosine_decay(const struct lr_schedule *s, double step, double from)
{
    double fraction = step / s->decay_steps;
    double cosine = 0.5 * (1.0 + cos(M_PI * fraction));
    return from * ((1.0 - s->alpha) * cosine + s->alpha);
}

static double cosine_restarts(const struct lr_schedule *s, double step)
{
    double fraction = step / s->decay_steps, restart;
    if (s->t_mul == 1.0) {
        restart = floor(fraction);
        fraction -= restart;
    } else {
        restart = floor(log(1.0 - fraction * (1.0 - s->t_mul)) / log(s->t_mul));
        double done = (1.0 - pow(s->t_mul, restart)) / (1.0 - s->t_mul);
        fraction = (fraction - done) / pow(s->t_mul, restart);
    }
    double cosine = 0.5 * pow(s->m_mul, restart) * (1.0 + cos(M_PI * fraction));
    return s->initial_learning_rate * ((1.0 - s->alpha) * cosine + s->alpha);
}

double lr_schedule_at(const struct lr_schedule *s, double constant, int64_t step_count)
{
    double step = (double)step_count, lr0 = s->initial_learning_rate;
    switch (s->kind) {
    case LR_EXPONENTIAL_DECAY: {
        double p = step / s->decay_steps;
        return lr0 * pow(s->decay_rate, s->staircase ? floor(p) : p);
    }
    case LR_INVERSE_TIME_DECAY: {
        double p = step / s->decay_steps;
        return lr0 / (1.0 + s->decay_rate * (s->staircase ? floor(p) : p));
    }
    case LR_PIECEWISE_CONSTANT:
        for (int i = 0; i < s->nboundaries; i++)
            if (step <= s->boundaries[i])
                return s->values[i];
        return s->values[s->nboundaries];
    case LR_POLYNOMIAL_DECAY: {
        double d = s->decay_steps;
        if (s->cycle)
            d *= step == 0.0 ? 1.0 : ceil(step / s->decay_steps);
        else
            step = fmin(step, d);
        return (lr0 - s->end_learning_rate) * pow(1.0 - step / d, s->power) + s->end_learning_rate;
    }
    case LR_COSINE_DECAY:
        if (isnan(s->warmup_target))
            return cosine_decay(s, fmin(step, s->decay_steps), lr0);
        step = fmin(step, s->decay_steps + s->warmup_steps);
        if (step < s->warmup_steps)
            return (s->warmup_target - lr0) * (step / s->warmup_steps) + lr0;
        return cosine_decay(s, step - s->warmup_steps, s->warmup_target);
    case LR_COSINE_DECAY_RESTARTS: return cosine_restarts(s, step);
    default: return constant;
    }
}
