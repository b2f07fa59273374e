/* Learning-rate schedules with Keras 3's names and formulas, as pure functions of the optimizer
 * step (Keras' optimizer.iterations: the updates applied before this one), so a resumed run gets
 * the same rates without any stored state:
 *   exponential_decay   lr0 * rate ^ (step / decay_steps)                 (floor the power: staircase)
 *   inverse_time_decay  lr0 / (1 + rate * step / decay_steps)             (staircase likewise)
 *   piecewise_constant  values[i] for boundaries[i-1] < step <= boundaries[i]
 *   polynomial_decay    (lr0 - end) * (1 - min(step, D) / D) ^ power + end (cycle: D grows by D)
 *   cosine_decay        warm-up from lr0 to warmup_target over warmup_steps, then
 *                       from_lr * ((1 - alpha) * 0.5 * (1 + cos(pi * min(s, D) / D)) + alpha)
 *   cosine_decay_restarts  periods D, D * t_mul, ...; each restart scaled by m_mul */
#ifndef DPTRAIN_LR_SCHEDULE_H
#define DPTRAIN_LR_SCHEDULE_H

#include <stdint.h>

enum lr_schedule_kind {
    LR_CONSTANT,
    LR_EXPONENTIAL_DECAY,
    LR_PIECEWISE_CONSTANT,
    LR_INVERSE_TIME_DECAY,
    LR_POLYNOMIAL_DECAY,
    LR_COSINE_DECAY,
    LR_COSINE_DECAY_RESTARTS,
    LR_SCHEDULE_COUNT
};

extern const char *const lr_schedule_names[LR_SCHEDULE_COUNT + 1]; /* NULL-terminated */

#define LR_MAX_BOUNDARIES 32

struct lr_schedule {
    enum lr_schedule_kind kind;
    double initial_learning_rate;
    double decay_steps, decay_rate;      /* exponential, inverse time, polynomial, cosine (first_decay_steps) */
    int staircase, cycle;
    double end_learning_rate, power;     /* polynomial */
    double alpha;                        /* cosine */
    double warmup_target, warmup_steps;  /* cosine: NaN target, no warm-up (Keras' None) */
    double t_mul, m_mul;                 /* cosine restarts */
    int nboundaries;                     /* piecewise: values has one more */
    double boundaries[LR_MAX_BOUNDARIES], values[LR_MAX_BOUNDARIES + 1];
};

/* The rate at optimizer step `step`; `constant` when the kind is LR_CONSTANT. */
double lr_schedule_at(const struct lr_schedule *s, double constant, int64_t step);

#endif
