/* Optimizers over the flat parameter arena: one pass over all n parameters per step.
 *
 * Formulas are Keras':
 *   sgd      lr_t = lr / (1 + decay * iterations)            (Keras 2 time-based decay)
 *            v = momentum * v - lr_t * g
 *            w += nesterov ? momentum * v - lr_t * g : v       (momentum 0: w -= lr_t * g)
 *   adam     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  t = iterations + 1
 *            w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon)
 *   rmsprop  v = rho v + (1-rho) g^2;  w -= lr * g / sqrt(v + epsilon)   (momentum 0)
 *            with amsgrad, vhat = max(vhat, v) stands for v under the root
 *   adamw    adam with weight_decay 0.004 by default
 *   adagrad  a += g^2 (a starts at initial_accumulator_value);  w -= lr * g / sqrt(a + epsilon)
 *   nadam    u_k = b1 (1 - 0.5 * 0.96^k), U_t = u_1 ... u_t (t = iterations + 1);  m and v as adam;
 *            w -= lr * (u_{t+1} m / (1 - U_t u_{t+1}) + (1 - u_t) g / (1 - U_t)) / (sqrt(v / (1 - b2^t)) + epsilon)
 * Keras 3's extras, on every optimizer (one clipping at most, as Keras allows): clipnorm scales each
 * tensor's gradient to a norm of at most clipnorm, global_clipnorm all of them together to a joint
 * norm of at most global_clipnorm (the trainer does both, before the step), clipvalue clips each
 * gradient to [-clipvalue, clipvalue] first; weight_decay (decoupled) takes w -= w * weight_decay * lr (lr the rate in force, before
 * Adam's bias correction) before the update. Only trainable weights are updated: the model hands
 * the optimizer the runs of the arena that hold them (not BatchNormalization's moving statistics).
 * `iterations` counts the updates already applied (Keras' optimizer.iterations). With a schedule
 * (net/lr_schedule.h), lr is the schedule's rate at `iterations`. */
#ifndef DPTRAIN_OPTIMIZER_H
#define DPTRAIN_OPTIMIZER_H

#include <stddef.h>
#include <stdint.h>

#include "net/lr_schedule.h"

enum optimizer_kind { OPTIMIZER_SGD, OPTIMIZER_ADAM, OPTIMIZER_RMSPROP, OPTIMIZER_ADAMW, OPTIMIZER_ADAGRAD,
                      OPTIMIZER_NADAM, OPTIMIZER_COUNT };
extern const char *const optimizer_names[OPTIMIZER_COUNT + 1];

struct optimizer_config {
    enum optimizer_kind kind;
    double lr;
    double momentum; /* sgd */
    int nesterov;    /* sgd */
    double decay;    /* sgd, time-based */
    double beta1, beta2, epsilon; /* adam (epsilon also rmsprop) */
    int amsgrad;     /* adam, adamw */
    double rho;      /* rmsprop */
    double initial_accumulator_value; /* adagrad */
    double weight_decay, clipvalue;   /* every optimizer; 0: none */
    double clipnorm, global_clipnorm; /* every optimizer; 0: none */
    struct lr_schedule schedule; /* learning_rate as a schedule (LR_CONSTANT: lr) */
};

/* Fills the Keras defaults for kind. */
void optimizer_config_defaults(struct optimizer_config *c, enum optimizer_kind kind);

/* Number of state arrays of n floats each (same layout as the parameters): sgd 1 (velocity, when
 * momentum > 0, else 0), adam and adamw 2 (m, v; 3 with amsgrad: vhat), nadam 2, rmsprop 1,
 * adagrad 1 (the accumulator). */
#define OPTIMIZER_MAX_STATE 3
int optimizer_state_arrays(const struct optimizer_config *c);
/* What state array i holds at the start (adagrad's accumulator: initial_accumulator_value) */
float optimizer_state_initial(const struct optimizer_config *c, int i);

/* The scalars one step needs, computed on the host in double (so every backend agrees). */
struct optimizer_step_params {
    enum optimizer_kind kind;
    float lr;           /* effective rate for this step (decayed or bias-corrected) */
    float momentum;
    int nesterov;
    float beta1, beta2, epsilon, rho;
    float decay;     /* weight_decay * lr: w -= w * decay before the update (0: none) */
    int amsgrad;
    float nadam_m, nadam_g, nadam_v; /* nadam: the coefficients of m, of g, and of v under the root */
    float clipvalue; /* gradients clipped to [-clipvalue, clipvalue] first (0: none) */
};

void optimizer_step_params_make(struct optimizer_step_params *p, const struct optimizer_config *c,
                                int64_t iterations);

/* Learning rate in effect at `iterations` (what the epoch line and checkpoints report). */
double optimizer_current_lr(const struct optimizer_config *c, int64_t iterations);

#endif
