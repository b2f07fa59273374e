/* Each optimizer's two steps against values computed by hand (double precision, Keras formulas):
 * w0 = [1, -2, 0.5], g1 = [0.1, -0.2, 0.3], g2 = [-0.4, 0.05, 0.2]. */
#include <check.h>
#include <math.h>

#include "net/backend.h"
#include "net/optimizer.h"
#include "base/rng.h"
#include "test_util.h"

static void run_two_steps(struct optimizer_config *c, const double expect[3])
{
    float w[3] = {1.0f, -2.0f, 0.5f};
    const float g[2][3] = {{0.1f, -0.2f, 0.3f}, {-0.4f, 0.05f, 0.2f}};
    float s0[3] = {0}, s1[3] = {0};
    for (int it = 0; it < 2; it++) {
        struct optimizer_step_params p;
        optimizer_step_params_make(&p, c, it);
        backend_cpu.optimizer_step(w, g[it], s0, s1, NULL, 3, p);
    }
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fabs(w[i] - expect[i]) <= 2e-6 * fmax(1.0, fabs(expect[i])),
                      "%s: w[%d] = %.9g, expected %.9g", optimizer_names[c->kind], i, w[i], expect[i]);
}

START_TEST(sgd_plain)
{
    struct optimizer_config c;
    optimizer_config_defaults(&c, OPTIMIZER_SGD);
    c.lr = 0.1;
    /* w - 0.1 g1 - 0.1 g2 */
    const double e[3] = {1.03, -1.985, 0.45};
    run_two_steps(&c, e);
}
END_TEST

START_TEST(sgd_momentum)
{
    struct optimizer_config c;
    optimizer_config_defaults(&c, OPTIMIZER_SGD);
    c.lr = 0.1;
    c.momentum = 0.9;
    /* v1 = -0.1 g1; v2 = 0.9 v1 - 0.1 g2; w = w0 + v1 + v2 */
    const double e[3] = {1.021, -1.967, 0.423};
    run_two_steps(&c, e);
}
END_TEST

START_TEST(sgd_nesterov_decay)
{
    struct optimizer_config c;
    optimizer_config_defaults(&c, OPTIMIZER_SGD);
    c.lr = 0.01;
    c.momentum = 0.9;
    c.nesterov = 1;
    c.decay = 0.5; /* lr_t: 0.01, then 0.01 / 1.5 */
    const double e[3] = {1.0023566666666666, -1.9952133333333333, 0.4893366666666667};
    run_two_steps(&c, e);
}
END_TEST

START_TEST(adam_keras_defaults)
{
    struct optimizer_config c;
    optimizer_config_defaults(&c, OPTIMIZER_ADAM);
    ck_assert(c.lr == 1e-3 && c.beta1 == 0.9 && c.beta2 == 0.999 && c.epsilon == 1e-7);
    const double e[3] = {0.9995595308245253, -1.998530554844524, 0.4980296669261421};
    run_two_steps(&c, e);
}
END_TEST

START_TEST(rmsprop_keras_defaults)
{
    struct optimizer_config c;
    optimizer_config_defaults(&c, OPTIMIZER_RMSPROP);
    ck_assert(c.lr == 1e-3 && c.rho == 0.9 && c.epsilon == 1e-7);
    const double e[3] = {0.9999147944154978, -1.9976435743665573, 0.49501956560281407};
    run_two_steps(&c, e);
}
END_TEST

/* Epsilon where it matters: gradients near sqrt(epsilon), so that Keras' sqrt(v) + eps (Adam) and
 * sqrt(v + eps) (RMSprop) differ from each other, and from no epsilon, by far more than rounding.
 * Fresh random weights and gradients; three steps against a double reference of Keras' formulas. */
static void check_epsilon(enum optimizer_kind kind)
{
    enum { N = 64, STEPS = 3 };
    struct optimizer_config c;
    optimizer_config_defaults(&c, kind);
    c.lr = 0.01;
    c.epsilon = 1e-4;
    float w[N], g[STEPS][N], s0[N] = {0}, s1[N] = {0};
    double rw[N], rm[N] = {0}, rv[N] = {0};
    rng_uniform_fill(w, N, test_seed(), RNG_DOMAIN_INIT, 7, 0);
    for (int it = 0; it < STEPS; it++) {
        rng_uniform_fill(g[it], N, test_seed(), RNG_DOMAIN_INIT, 8 + it, 0);
        for (int i = 0; i < N; i++)
            g[it][i] = (g[it][i] - 0.5f) * 0.04f; /* |g| < 0.02: g^2 is at most 4 eps */
    }
    for (int i = 0; i < N; i++)
        rw[i] = w[i];
    for (int it = 0; it < STEPS; it++) {
        struct optimizer_step_params p;
        optimizer_step_params_make(&p, &c, it);
        backend_cpu.optimizer_step(w, g[it], s0, s1, NULL, N, p);
        double t = it + 1;
        for (int i = 0; i < N; i++) {
            double gi = g[it][i];
            if (kind == OPTIMIZER_ADAM) {
                double alpha = c.lr * sqrt(1 - pow(c.beta2, t)) / (1 - pow(c.beta1, t));
                rm[i] += (gi - rm[i]) * (1 - c.beta1);
                rv[i] += (gi * gi - rv[i]) * (1 - c.beta2);
                rw[i] -= alpha * rm[i] / (sqrt(rv[i]) + c.epsilon);
            } else {
                rv[i] = c.rho * rv[i] + (1 - c.rho) * gi * gi;
                rw[i] -= c.lr * gi / sqrt(rv[i] + c.epsilon);
            }
        }
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(w[i] - rw[i]) <= 1e-6 * fmax(1.0, fabs(rw[i])), "%s eps: w[%d] = %.9g, expected %.9g",
                      optimizer_names[kind], i, w[i], rw[i]);
}

START_TEST(adam_epsilon_outside_the_root)
{
    check_epsilon(OPTIMIZER_ADAM);
}
END_TEST

START_TEST(rmsprop_epsilon_inside_the_root)
{
    check_epsilon(OPTIMIZER_RMSPROP);
}
END_TEST

START_TEST(decayed_learning_rate_reported)
{
    struct optimizer_config c;
    optimizer_config_defaults(&c, OPTIMIZER_SGD);
    c.lr = 0.01;
    c.decay = 1e-6;
    ck_assert(fabs(optimizer_current_lr(&c, 1000) - 0.01 / 1.001) < 1e-12);
}
END_TEST

/* AdamW, Adagrad, weight decay on SGD and clipvalue: fresh random weights and gradients (some
 * beyond the clip), four steps under a schedule, against a double reference of Keras 3's order:
 * clip, decay by weight_decay * lr (the scheduled rate, before Adam's bias correction), update. */
static void check_keras3_extras(enum optimizer_kind kind, double weight_decay, double clipvalue, int amsgrad)
{
    enum { N = 50, STEPS = 4 };
    struct optimizer_config c;
    optimizer_config_defaults(&c, kind);
    c.amsgrad = amsgrad;
    c.weight_decay = weight_decay;
    c.clipvalue = clipvalue;
    c.schedule = (struct lr_schedule){.kind = LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.05, .decay_steps = 2,
                                      .decay_rate = 0.5};
    float w[N], g[STEPS][N], s0[N], s1[N] = {0}, s2[N] = {0};
    double rw[N], ra[N], rm[N] = {0}, rvhat[N] = {0}, u_product = 1;
    rng_uniform_fill(w, N, test_seed(), RNG_DOMAIN_INIT, 21, 0);
    for (int i = 0; i < N; i++) {
        w[i] = 4 * w[i] - 2;
        rw[i] = w[i];
        s0[i] = optimizer_state_initial(&c, 0);
        ra[i] = kind == OPTIMIZER_ADAGRAD ? c.initial_accumulator_value : 0;
    }
    for (int it = 0; it < STEPS; it++) {
        rng_uniform_fill(g[it], N, test_seed(), RNG_DOMAIN_INIT, 22 + it, 0);
        for (int i = 0; i < N; i++)
            g[it][i] = (g[it][i] - 0.5f) * 2;
    }
    for (int it = 0; it < STEPS; it++) {
        struct optimizer_step_params p;
        optimizer_step_params_make(&p, &c, it);
        backend_cpu.optimizer_step(w, g[it], s0, s1, s2, N, p);
        double lr = 0.05 * pow(0.5, it / 2.0), t = it + 1;
        /* Keras 3's Nadam: u_product updated before the step, u_t and u_{t+1} from 0.96^t */
        double u_t = c.beta1 * (1 - 0.5 * pow(0.96, t)), u_next = c.beta1 * (1 - 0.5 * pow(0.96, t + 1));
        u_product *= u_t;
        for (int i = 0; i < N; i++) {
            double gi = clipvalue > 0 ? fmin(fmax(g[it][i], -clipvalue), clipvalue) : g[it][i];
            rw[i] -= rw[i] * weight_decay * lr;
            if (kind == OPTIMIZER_ADAMW) {
                double alpha = lr * sqrt(1 - pow(c.beta2, t)) / (1 - pow(c.beta1, t));
                rm[i] += (gi - rm[i]) * (1 - c.beta1);
                ra[i] += (gi * gi - ra[i]) * (1 - c.beta2);
                rvhat[i] = fmax(rvhat[i], ra[i]); /* Keras: v_hat = max(v_hat, v), used when amsgrad */
                rw[i] -= alpha * rm[i] / (sqrt(amsgrad ? rvhat[i] : ra[i]) + c.epsilon);
            } else if (kind == OPTIMIZER_NADAM) {
                rm[i] += (gi - rm[i]) * (1 - c.beta1);
                ra[i] += (gi * gi - ra[i]) * (1 - c.beta2);
                double m_hat = u_next * rm[i] / (1 - u_product * u_next) + (1 - u_t) * gi / (1 - u_product);
                double v_hat = ra[i] / (1 - pow(c.beta2, t));
                rw[i] -= m_hat * lr / (sqrt(v_hat) + c.epsilon);
            } else if (kind == OPTIMIZER_ADAGRAD) {
                ra[i] += gi * gi;
                rw[i] -= lr * gi / sqrt(ra[i] + c.epsilon);
            } else {
                rw[i] -= lr * gi;
            }
        }
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(fabs(w[i] - rw[i]) <= 1e-6 * fmax(1.0, fabs(rw[i])), "%s (wd %g, clip %g): w[%d] = %.9g, expected %.9g",
                      optimizer_names[kind], weight_decay, clipvalue, i, w[i], rw[i]);
}

START_TEST(adamw_adagrad_nadam_weight_decay_clipvalue)
{
    struct optimizer_config c;
    optimizer_config_defaults(&c, OPTIMIZER_ADAMW);
    ck_assert(c.weight_decay == 0.004 && c.lr == 1e-3 && c.epsilon == 1e-7);
    optimizer_config_defaults(&c, OPTIMIZER_ADAGRAD);
    ck_assert(c.initial_accumulator_value == 0.1 && c.weight_decay == 0 && optimizer_state_arrays(&c) == 1);
    check_keras3_extras(OPTIMIZER_ADAMW, 0.004, 0, 0);
    check_keras3_extras(OPTIMIZER_ADAMW, 0.1, 0.3, 0);
    check_keras3_extras(OPTIMIZER_ADAMW, 0.004, 0, 1);
    check_keras3_extras(OPTIMIZER_ADAGRAD, 0, 0, 0);
    check_keras3_extras(OPTIMIZER_ADAGRAD, 0.01, 0.5, 0);
    check_keras3_extras(OPTIMIZER_SGD, 0.05, 0.2, 0);
    check_keras3_extras(OPTIMIZER_NADAM, 0, 0, 0);
    check_keras3_extras(OPTIMIZER_NADAM, 0.01, 0.4, 0);
}
END_TEST

/* Keras' L1/L2 penalty: its gradient added to the gradient (sign(0) = 0), and rows times its value
 * added to the loss sum, on fresh random weights with some exactly zero. */
START_TEST(regularizer_penalty_and_gradient)
{
    enum { N = 40 };
    float w[N], g[N], g0[N];
    rng_uniform_fill(w, N, test_seed(), RNG_DOMAIN_INIT, 31, 0);
    rng_uniform_fill(g, N, test_seed(), RNG_DOMAIN_INIT, 32, 0);
    for (int i = 0; i < N; i++) {
        w[i] = i % 7 == 0 ? 0.0f : 2 * w[i] - 1;
        g0[i] = g[i];
    }
    double acc[LOSS_ACC_COUNT] = {1.0, 0.0, 0.0};
    const float l1 = 0.003f, l2 = 0.02f;
    backend_cpu.regularize(g, w, N, l1, l2, acc, 5.0);
    double penalty = 0;
    for (int i = 0; i < N; i++) {
        double sign = w[i] > 0 ? 1 : w[i] < 0 ? -1 : 0;
        double want = g0[i] + (double)l1 * sign + 2 * (double)l2 * w[i];
        ck_assert_msg(fabs(g[i] - want) <= 1e-6, "g[%d] = %.9g, expected %.9g", i, g[i], want);
        penalty += (double)l1 * fabs(w[i]) + (double)l2 * w[i] * w[i];
    }
    ck_assert_msg(fabs(acc[LOSS_ACC_LOSS] - (1.0 + 5.0 * penalty)) <= 1e-12, "loss sum %.17g, expected %.17g",
                  acc[LOSS_ACC_LOSS], 1.0 + 5.0 * penalty);
}
END_TEST

/* Every schedule at a list of steps against Keras 3's formulas, evaluated apart (in Python, from
 * keras/src/optimizers/schedules/learning_rate_schedule.py) and written out here. */
START_TEST(schedules_match_keras)
{
    static const int64_t steps[9] = {0, 1, 7, 50, 99, 100, 101, 250, 1000};
    struct schedule_case {
        const char *name;
        struct lr_schedule s;
        double want[9];
    };
    static const struct schedule_case cases[] = {
        {"exponential_decay", {.kind = LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 100, .decay_rate = 0.5},
         {0.10000000000000001, 0.099309249543703598, 0.095263799804393742, 0.070710678118654766, 0.05034777750283595,
          0.050000000000000003, 0.049654624771851799, 0.017677669529663691, 9.7656250000000005e-05}},
        {"exponential_decay, staircase", {.kind = LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 100,
                                          .decay_rate = 0.5, .staircase = 1},
         {0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 9.7656250000000005e-05}},
        {"inverse_time_decay", {.kind = LR_INVERSE_TIME_DECAY, .initial_learning_rate = 0.1, .decay_steps = 100, .decay_rate = 0.5},
         {0.1, 0.099502487562189074, 0.096618357487922718, 0.08, 0.066889632107023408, 0.066666666666666666,
          0.066445182724252497, 0.044444444444444446, 0.016666666666666666}},
        {"inverse_time_decay, staircase", {.kind = LR_INVERSE_TIME_DECAY, .initial_learning_rate = 0.1, .decay_steps = 100,
                                           .decay_rate = 0.5, .staircase = 1},
         {0.1, 0.1, 0.1, 0.1, 0.1, 0.066666666666666666, 0.066666666666666666, 0.05, 0.016666666666666666}},
        {"piecewise_constant_decay", {.kind = LR_PIECEWISE_CONSTANT, .nboundaries = 2, .boundaries = {7, 100},
                                      .values = {1.0, 0.5, 0.1}},
         {1, 1, 1, 0.5, 0.5, 0.5, 0.1, 0.1, 0.1}},
        {"polynomial_decay, power 2", {.kind = LR_POLYNOMIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 100,
                                       .end_learning_rate = 0.001, .power = 2},
         {0.1, 0.0980299, 0.0866251, 0.02575, 0.0010099, 0.001, 0.001, 0.001, 0.001}},
        {"polynomial_decay, cycle", {.kind = LR_POLYNOMIAL_DECAY, .initial_learning_rate = 0.1, .decay_steps = 100,
                                     .end_learning_rate = 0.001, .power = 1, .cycle = 1},
         {0.1, 0.09901, 0.09307, 0.0505, 0.00199, 0.001, 0.050005, 0.0175, 0.001}},
        {"cosine_decay, alpha 0.1", {.kind = LR_COSINE_DECAY, .initial_learning_rate = 0.1, .decay_steps = 200, .alpha = 0.1,
                                     .warmup_target = NAN},
         {0.1, 0.099994448461674726, 0.099728242995483107, 0.086819805153394644, 0.055706829279031936, 0.055,
          0.054293170720968079, 0.01, 0.01}},
        {"cosine_decay with warm-up", {.kind = LR_COSINE_DECAY, .initial_learning_rate = 0, .decay_steps = 200,
                                       .warmup_target = 0.2, .warmup_steps = 100},
         {0, 0.002, 0.014, 0.1, 0.198, 0.2, 0.19998766324816608, 0.029289321881345254, 0}},
        {"cosine_decay_restarts", {.kind = LR_COSINE_DECAY_RESTARTS, .initial_learning_rate = 0.1, .decay_steps = 40,
                                   .t_mul = 2, .m_mul = 0.5, .alpha = 0.05},
         {0.1, 0.099853573352323588, 0.093000407806819382, 0.050692138897143059, 0.012628482293592633,
          0.011956213946819498, 0.011309840400902474, 0.0070012983539072746, 0.0068326585601661402}},
        {"cosine_decay_restarts, t_mul 1", {.kind = LR_COSINE_DECAY_RESTARTS, .initial_learning_rate = 0.1,
                                            .decay_steps = 40, .t_mul = 1, .m_mul = 1},
         {0.1, 0.099845866686656404, 0.09263200821770462, 0.085355339059327379, 0.053922954786392245, 0.05,
          0.046077045213607767, 0.085355339059327379, 0.1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int i = 0; i < 9; i++) {
            double got = lr_schedule_at(&cases[c].s, 123.0, steps[i]), want = cases[c].want[i];
            ck_assert_msg(fabs(got - want) <= 1e-12 * fabs(want) + 1e-15, "%s at step %lld: %.17g, Keras %.17g",
                          cases[c].name, (long long)steps[i], got, want);
        }
    /* constant: the optimizer's own rate; and Adam's step takes the schedule's rate */
    struct lr_schedule constant = {.kind = LR_CONSTANT};
    ck_assert(lr_schedule_at(&constant, 0.003, 77) == 0.003);
    struct optimizer_config adam;
    optimizer_config_defaults(&adam, OPTIMIZER_ADAM);
    adam.schedule = cases[0].s;
    ck_assert(fabs(optimizer_current_lr(&adam, 50) - cases[0].want[3]) < 1e-15);
    struct optimizer_step_params p;
    optimizer_step_params_make(&p, &adam, 50);
    double t = 51, corrected = cases[0].want[3] * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t));
    ck_assert(fabs(p.lr - corrected) <= 1e-6 * corrected);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("optimizers");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, sgd_plain);
    tcase_add_test(tc, sgd_momentum);
    tcase_add_test(tc, sgd_nesterov_decay);
    tcase_add_test(tc, adam_keras_defaults);
    tcase_add_test(tc, rmsprop_keras_defaults);
    tcase_add_test(tc, adam_epsilon_outside_the_root);
    tcase_add_test(tc, rmsprop_epsilon_inside_the_root);
    tcase_add_test(tc, decayed_learning_rate_reported);
    tcase_add_test(tc, schedules_match_keras);
    tcase_add_test(tc, adamw_adagrad_nadam_weight_decay_clipvalue);
    tcase_add_test(tc, regularizer_penalty_and_gradient);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
