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
        backend_cpu.optimizer_step(w, g[it], s0, s1, 3, p);
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
        backend_cpu.optimizer_step(w, g[it], s0, s1, N, p);
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
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
