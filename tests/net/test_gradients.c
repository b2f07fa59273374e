/* Finite-difference gradient checks: every layer, activation and loss.
 * The engine computes gradients in float32 by backpropagation; an independent float64 reference
 * forward pass gives central differences. Inputs, weights and biases are fresh random numbers each
 * run. Near a ReLU kink the difference quotient is meaningless, so a coordinate whose +eps and
 * -eps passes see different ReLU patterns is skipped (and counted). */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "net/backend.h"
#include "net/model.h"
#include "base/rng.h"
#include "test_util.h"

struct grad_case {
    const char *name;
    struct layer_spec layers[7];
    int nlayers;
    struct shape input;
    enum loss_kind loss;
    int labels; /* integer targets */
};

static uint64_t draw_counter;

static double urand(void)
{
    uint32_t w[4];
    rng_block(w, test_seed(), 99, 0, draw_counter++);
    return rng_u32_to_unit_float(w[0]);
}

/* Float64 formulas, written out apart from net/activation_math.h (Keras 3's definitions). */
static double act_ref(enum activation a, double param, double z)
{
    const double selu_alpha = 1.6732632423543772848170429916717, selu_scale = 1.0507009873554804934193349852946;
    switch (a) {
    case ACTIVATION_RELU: return z > 0 ? z : 0;
    case ACTIVATION_SIGMOID: return 1 / (1 + exp(-z));
    case ACTIVATION_TANH: return tanh(z);
    case ACTIVATION_ELU: return z > 0 ? z : param * (exp(z) - 1);
    case ACTIVATION_SELU: return selu_scale * (z > 0 ? z : selu_alpha * (exp(z) - 1));
    case ACTIVATION_LEAKY_RELU: return z > 0 ? z : param * z;
    case ACTIVATION_GELU:
        if (param != 0)
            return 0.5 * z * (1 + tanh(sqrt(2 / M_PI) * (z + 0.044715 * z * z * z)));
        return 0.5 * z * (1 + erf(z / sqrt(2)));
    case ACTIVATION_SILU:
    case ACTIVATION_SWISH: return z / (1 + exp(-z));
    case ACTIVATION_SOFTPLUS: return log(1 + exp(z));
    case ACTIVATION_SOFTSIGN: return z / (1 + fabs(z));
    case ACTIVATION_HARD_SIGMOID: return fmin(fmax(z / 6 + 0.5, 0), 1);
    case ACTIVATION_EXPONENTIAL: return exp(z);
    default: return z;
    }
}

/* Where the activation has a kink (a jump in its slope), which side z is on: a finite difference
 * across it means nothing. */
static char act_side(enum activation a, double z)
{
    switch (a) {
    case ACTIVATION_RELU: case ACTIVATION_LEAKY_RELU: case ACTIVATION_ELU: case ACTIVATION_SELU: return z > 0;
    case ACTIVATION_HARD_SIGMOID: return (char)((z > -3) + (z > 3));
    default: return 0;
    }
}

/* Float64 forward + loss (mean over rows). relu_signs records the ReLU pattern. */
static double ref_loss(const struct model *m, const double *params, const double *x, const int32_t *labels,
                       const double *values, int64_t rows, const uint8_t *const *masks, char *relu_signs,
                       enum loss_kind loss)
{
    int64_t width = m->input_size;
    double *cur = malloc(sizeof(double) * (size_t)(rows * 4096));
    double *next = malloc(sizeof(double) * (size_t)(rows * 4096));
    memcpy(cur, x, sizeof(double) * (size_t)(rows * width));
    int sign_pos = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        if (l->spec.kind == LAYER_KIND_DENSE) {
            const double *w = params + l->param_offsets[0], *b = l->nparams > 1 ? params + l->param_offsets[1] : NULL;
            int64_t out = l->out_size;
            for (int64_t r = 0; r < rows; r++) {
                for (int64_t j = 0; j < out; j++) {
                    double z = b ? b[j] : 0;
                    for (int64_t k = 0; k < width; k++)
                        z += cur[r * width + k] * w[k * out + j];
                    next[r * out + j] = z;
                }
                enum activation a = l->spec.u.dense.activation;
                double param = l->spec.u.dense.activation_param;
                int last = i == m->nlayers - 1;
                if (a == ACTIVATION_SOFTMAX && !last) {
                    double mx = -1e300, s = 0;
                    for (int64_t j = 0; j < out; j++)
                        mx = fmax(mx, next[r * out + j]);
                    for (int64_t j = 0; j < out; j++)
                        s += exp(next[r * out + j] - mx);
                    for (int64_t j = 0; j < out; j++)
                        next[r * out + j] = exp(next[r * out + j] - mx) / s;
                } else if (!(last && loss != LOSS_MSE)) { /* last layer of a CE loss: keep logits */
                    for (int64_t j = 0; j < out; j++) {
                        relu_signs[sign_pos++] = act_side(a, next[r * out + j]);
                        next[r * out + j] = act_ref(a, param, next[r * out + j]);
                    }
                }
            }
            width = out;
        } else if (l->spec.kind == LAYER_KIND_CONV2D) {
            /* direct convolution, NHWC, kernel (kh, kw, in, out) */
            const struct conv_geometry *g = &l->geom;
            const double *w = params + l->param_offsets[0], *b = l->nparams > 1 ? params + l->param_offsets[1] : NULL;
            enum activation a = l->spec.u.conv2d.activation;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t oh = 0; oh < g->out_h; oh++)
                    for (int64_t ow = 0; ow < g->out_w; ow++)
                        for (int64_t co = 0; co < g->out_c; co++) {
                            double z = b ? b[co] : 0;
                            for (int64_t kh = 0; kh < g->k_h; kh++)
                                for (int64_t kw = 0; kw < g->k_w; kw++) {
                                    int64_t ih = oh * g->stride_h + kh - g->pad_top, iw = ow * g->stride_w + kw - g->pad_left;
                                    if (ih < 0 || ih >= g->in_h || iw < 0 || iw >= g->in_w)
                                        continue;
                                    for (int64_t ci = 0; ci < g->in_c; ci++)
                                        z += cur[r * width + (ih * g->in_w + iw) * g->in_c + ci] *
                                             w[((kh * g->k_w + kw) * g->in_c + ci) * g->out_c + co];
                                }
                            relu_signs[sign_pos++] = act_side(a, z);
                            next[r * l->out_size + (oh * g->out_w + ow) * g->out_c + co] =
                                act_ref(a, l->spec.u.conv2d.activation_param, z);
                        }
            width = l->out_size;
        } else if (l->spec.kind == LAYER_KIND_MAXPOOL2D || l->spec.kind == LAYER_KIND_GLOBAL_MAXPOOL2D) {
            const struct conv_geometry *g = &l->geom;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t oh = 0; oh < g->out_h; oh++)
                    for (int64_t ow = 0; ow < g->out_w; ow++)
                        for (int64_t c = 0; c < g->in_c; c++) {
                            double best = -1e300;
                            int where = -1;
                            for (int64_t kh = 0; kh < g->k_h; kh++)
                                for (int64_t kw = 0; kw < g->k_w; kw++) {
                                    int64_t ih = oh * g->stride_h + kh - g->pad_top, iw = ow * g->stride_w + kw - g->pad_left;
                                    if (ih < 0 || ih >= g->in_h || iw < 0 || iw >= g->in_w)
                                        continue;
                                    double v = cur[r * width + (ih * g->in_w + iw) * g->in_c + c];
                                    if (where < 0 || v > best) {
                                        best = v;
                                        where = (int)(kh * g->k_w + kw);
                                    }
                                }
                            relu_signs[sign_pos++] = (char)where; /* a changed winner is a kink too */
                            next[r * l->out_size + (oh * g->out_w + ow) * g->out_c + c] = best;
                        }
            width = l->out_size;
        } else if (l->spec.kind == LAYER_KIND_AVGPOOL2D || l->spec.kind == LAYER_KIND_GLOBAL_AVGPOOL2D) {
            const struct conv_geometry *g = &l->geom;
            for (int64_t r = 0; r < rows; r++)
                for (int64_t oh = 0; oh < g->out_h; oh++)
                    for (int64_t ow = 0; ow < g->out_w; ow++)
                        for (int64_t c = 0; c < g->in_c; c++) {
                            double sum = 0;
                            int cells = 0;
                            for (int64_t kh = 0; kh < g->k_h; kh++)
                                for (int64_t kw = 0; kw < g->k_w; kw++) {
                                    int64_t ih = oh * g->stride_h + kh - g->pad_top, iw = ow * g->stride_w + kw - g->pad_left;
                                    if (ih < 0 || ih >= g->in_h || iw < 0 || iw >= g->in_w)
                                        continue;
                                    sum += cur[r * width + (ih * g->in_w + iw) * g->in_c + c];
                                    cells++;
                                }
                            next[r * l->out_size + (oh * g->out_w + ow) * g->out_c + c] = sum / cells;
                        }
            width = l->out_size;
        } else if (l->spec.kind == LAYER_KIND_ACTIVATION || l->spec.kind == LAYER_KIND_LEAKY_RELU ||
                   l->spec.kind == LAYER_KIND_ELU) {
            enum activation a = l->spec.u.activation.activation;
            int64_t cols = l->out_shape.dims[l->out_shape.rank - 1];
            for (int64_t row = 0; row < rows * width / cols; row++) {
                const double *in = cur + row * cols;
                double *o = next + row * cols;
                if (a == ACTIVATION_SOFTMAX) {
                    double mx = -1e300, sum = 0;
                    for (int64_t j = 0; j < cols; j++)
                        mx = fmax(mx, in[j]);
                    for (int64_t j = 0; j < cols; j++)
                        sum += exp(in[j] - mx);
                    for (int64_t j = 0; j < cols; j++)
                        o[j] = exp(in[j] - mx) / sum;
                } else {
                    for (int64_t j = 0; j < cols; j++) {
                        relu_signs[sign_pos++] = act_side(a, in[j]);
                        o[j] = act_ref(a, l->spec.u.activation.param, in[j]);
                    }
                }
            }
        } else if (l->spec.kind == LAYER_KIND_BATCHNORM) {
            /* training mode: the batch's statistics per channel, over rows (and height, width) */
            int64_t ch = l->out_shape.dims[l->out_shape.rank - 1], n = rows * width / ch;
            int p = 0;
            const double *gamma = l->spec.u.batchnorm.scale ? params + l->param_offsets[p++] : NULL;
            const double *beta = l->spec.u.batchnorm.center ? params + l->param_offsets[p++] : NULL;
            for (int64_t j = 0; j < ch; j++) {
                double mean = 0, var = 0;
                for (int64_t i = 0; i < n; i++)
                    mean += cur[i * ch + j] / (double)n;
                for (int64_t i = 0; i < n; i++)
                    var += (cur[i * ch + j] - mean) * (cur[i * ch + j] - mean) / (double)n;
                for (int64_t i = 0; i < n; i++)
                    next[i * ch + j] = (gamma ? gamma[j] : 1) * (cur[i * ch + j] - mean) /
                                       sqrt(var + l->spec.u.batchnorm.epsilon) + (beta ? beta[j] : 0);
            }
        } else if (l->spec.kind == LAYER_KIND_DROPOUT) {
            double scale = 1 / (1 - l->spec.u.dropout.rate);
            for (int64_t e = 0; e < rows * width; e++)
                next[e] = masks[i][e] ? cur[e] * scale : 0;
        } else {
            memcpy(next, cur, sizeof(double) * (size_t)(rows * width));
        }
        double *t = cur;
        cur = next;
        next = t;
    }
    int64_t k = width;
    double total = 0;
    for (int64_t r = 0; r < rows; r++) {
        const double *z = cur + r * k;
        double row = 0;
        for (int64_t j = 0; j < k; j++) {
            double t = labels ? (k == 1 ? labels[r] : labels[r] == j) : values[r * k + j];
            if (loss == LOSS_MSE) {
                row += (z[j] - t) * (z[j] - t) / (double)k;
            } else if (loss == LOSS_BINARY_CROSSENTROPY) {
                double p = 1 / (1 + exp(-z[j]));
                row += -(t * log(p) + (1 - t) * log(1 - p)) / (double)k;
            }
        }
        if (loss == LOSS_CATEGORICAL_CROSSENTROPY || loss == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) {
            double mx = -1e300, s = 0;
            for (int64_t j = 0; j < k; j++)
                mx = fmax(mx, z[j]);
            for (int64_t j = 0; j < k; j++)
                s += exp(z[j] - mx);
            for (int64_t j = 0; j < k; j++) {
                double t = labels ? (labels[r] == j) : values[r * k + j];
                row += t * (mx + log(s) - z[j]);
            }
        }
        total += row;
    }
    free(cur);
    free(next);
    return total / (double)rows;
}

static void check_case(const struct grad_case *gc)
{
    const struct backend *be = &backend_cpu;
    const int64_t rows = 5;
    struct model m;
    struct dp_error err = {0};
    ck_assert_msg(model_build(&m, gc->layers, gc->nlayers, &gc->input, "test", &err) == 0, "%s", err.msg);
    model_set_loss(&m, gc->loss);
    model_allocate(&m, be, rows);
    model_init_weights(&m, test_seed());
    /* Random biases too, so bias gradients are not checked at a special point; BatchNormalization's
     * gamma and beta likewise. */
    for (int i = 0; i < m.nlayers; i++) {
        struct layer *l = &m.layers[i];
        if (l->spec.kind == LAYER_KIND_BATCHNORM) {
            for (int p = 0; p < l->ntrainable; p++)
                for (int64_t j = 0; j < shape_size(&l->param_shapes[p]); j++)
                    m.params[l->param_offsets[p] + (size_t)j] = (float)(urand() + (p == 0 && l->spec.u.batchnorm.scale ? 0.5 : -0.5));
        } else if (l->nparams > 1) {
            for (int64_t j = 0; j < l->out_size; j++)
                l->b[j] = (float)(urand() - 0.5);
        }
    }
    int64_t k = m.output_size;
    double *x = malloc(sizeof(double) * (size_t)(rows * m.input_size));
    for (int64_t i = 0; i < rows * m.input_size; i++) {
        x[i] = 2 * urand() - 1;
        m.input[i] = (float)x[i];
    }
    int32_t labels[5];
    double values[5 * 16];
    float fvalues[5 * 16];
    int64_t ids[5] = {11, 3, 7, 100, 42};
    for (int64_t r = 0; r < rows; r++) {
        labels[r] = (int32_t)(urand() * (k == 1 ? 2 : (double)k)) % (int32_t)(k == 1 ? 2 : k);
        double sum = 0;
        for (int64_t j = 0; j < k; j++) {
            values[r * k + j] = gc->loss == LOSS_MSE ? 2 * urand() - 1 : urand();
            sum += values[r * k + j];
        }
        if (gc->loss == LOSS_CATEGORICAL_CROSSENTROPY) /* a distribution, not only one-hot */
            for (int64_t j = 0; j < k; j++)
                values[r * k + j] /= sum;
        for (int64_t j = 0; j < k; j++)
            fvalues[r * k + j] = (float)values[r * k + j];
    }
    /* Engine: forward, loss, backward. */
    double acc[LOSS_ACC_COUNT] = {0};
    struct pass_context c = {be, rows, 1, test_seed(), 7, ids};
    /* Stale values from a "previous step": backward must write every gradient, not add to it. */
    for (size_t i = 0; i < m.arena_floats; i++)
        m.grads[i] = 1000.0f;
    model_forward(&m, &c);
    const struct layer *last = &m.layers[m.nlayers - 1];
    struct loss_targets t = {gc->labels ? labels : NULL, gc->labels ? NULL : fvalues};
    struct loss_params lp = {.loss = gc->loss, .metric = METRIC_NONE, .output_activation = last->spec.u.dense.activation};
    be->loss_forward_backward(acc, m.loss_dz, last->z, last->y, t, rows, k, lp, 1.0f / (float)rows);
    model_backward(&m, &c);

    const uint8_t *masks[8] = {0};
    for (int i = 0; i < m.nlayers; i++)
        masks[i] = m.layers[i].mask;
    double *params = malloc(sizeof(double) * m.arena_floats);
    for (size_t i = 0; i < m.arena_floats; i++)
        params[i] = m.params[i];
    char *s0 = calloc(1 << 16, 1), *s1 = calloc(1 << 16, 1), *s2 = calloc(1 << 16, 1);
    double l0 = ref_loss(&m, params, x, gc->labels ? labels : NULL, values, rows, masks, s0, gc->loss);
    ck_assert_msg(fabs(l0 - acc[LOSS_ACC_LOSS] / rows) <= 1e-5 * fmax(1, fabs(l0)),
                  "%s: engine loss %.9g, float64 reference %.9g", gc->name, acc[LOSS_ACC_LOSS] / rows, l0);

    int checked = 0, skipped = 0;
    double worst = 0;
    const double eps = 1e-5;
    for (int i = 0; i < m.nlayers; i++) {
        const struct layer *l = &m.layers[i];
        for (int p = 0; p < l->nparams; p++) {
            int64_t n = shape_size(&l->param_shapes[p]);
            for (int64_t j = 0; j < n; j++) {
                size_t idx = l->param_offsets[p] + (size_t)j;
                double keep = params[idx];
                params[idx] = keep + eps;
                double lp1 = ref_loss(&m, params, x, gc->labels ? labels : NULL, values, rows, masks, s1, gc->loss);
                params[idx] = keep - eps;
                double lm1 = ref_loss(&m, params, x, gc->labels ? labels : NULL, values, rows, masks, s2, gc->loss);
                params[idx] = keep;
                if (memcmp(s1, s2, 1 << 16) != 0) {
                    skipped++;
                    continue;
                }
                double numeric = (lp1 - lm1) / (2 * eps);
                double analytic = m.grads[idx];
                double errv = fabs(numeric - analytic) / (fabs(numeric) + 1e-3);
                worst = fmax(worst, errv);
                ck_assert_msg(fabs(numeric - analytic) <= 2e-3 * fabs(numeric) + 2e-5,
                              "%s: %s/%s[%lld]: backprop %.8g, finite difference %.8g", gc->name, l->name,
                              l->param_names[p], (long long)j, analytic, numeric);
                checked++;
            }
        }
    }
    ck_assert_msg(checked > 0 && skipped < checked / 10 + 2, "%s: checked %d, skipped %d at kinks", gc->name,
                  checked, skipped);
    free(params);
    free(x);
    free(s0);
    free(s1);
    free(s2);
    model_free(&m);
}

#define DENSE(units_, a) {.kind = LAYER_KIND_DENSE, .line = 1, .u.dense = {units_, ACTIVATION_##a, 0}}
#define DENSE_P(units_, a, p) {.kind = LAYER_KIND_DENSE, .line = 1, .u.dense = {units_, ACTIVATION_##a, p}}
#define DROPOUT(r) {.kind = LAYER_KIND_DROPOUT, .line = 1, .u.dropout = {r}}
#define FLATTEN {.kind = LAYER_KIND_FLATTEN, .line = 1}
#define DENSE_NB(units_, a) {.kind = LAYER_KIND_DENSE, .line = 1, .u.dense = {units_, ACTIVATION_##a, 0, {.no_bias = 1}}}
#define CONV_NB(f, kh, kw, sh, sw, same_, a) {.kind = LAYER_KIND_CONV2D, .line = 1, \
    .u.conv2d = {f, {kh, kw}, {sh, sw}, same_, ACTIVATION_##a, 0, {.no_bias = 1}}}
#define ACT(kind_, a, p) {.kind = LAYER_KIND_##kind_, .line = 1, .u.activation = {ACTIVATION_##a, p}}
#define CONV(f, kh, kw, sh, sw, same_, a) {.kind = LAYER_KIND_CONV2D, .line = 1, \
    .u.conv2d = {f, {kh, kw}, {sh, sw}, same_, ACTIVATION_##a, 0}}
#define CONV_P(f, kh, kw, sh, sw, same_, a, p) {.kind = LAYER_KIND_CONV2D, .line = 1, \
    .u.conv2d = {f, {kh, kw}, {sh, sw}, same_, ACTIVATION_##a, p}}
#define POOL(ph, pw, sh, sw, same_) {.kind = LAYER_KIND_MAXPOOL2D, .line = 1, .u.pool2d = {{ph, pw}, {sh, sw}, same_}}
#define AVGPOOL(ph, pw, sh, sw, same_) {.kind = LAYER_KIND_AVGPOOL2D, .line = 1, .u.pool2d = {{ph, pw}, {sh, sw}, same_}}
#define GLOBAL(kind_, keep) {.kind = LAYER_KIND_GLOBAL_##kind_, .line = 1, .u.global_pool2d = {keep}}
#define RESHAPE(...) {.kind = LAYER_KIND_RESHAPE, .line = 1, .u.reshape = __VA_ARGS__}
#define BN(center_, scale_) {.kind = LAYER_KIND_BATCHNORM, .line = 1, .u.batchnorm = {0.99, 1e-3, center_, scale_, 0, -1}}

static const struct grad_case cases[] = {
    {"linear+mse", {DENSE(4, LINEAR), DENSE(3, LINEAR)}, 2, {1, {6}}, LOSS_MSE, 0},
    {"relu+mse", {DENSE(7, RELU), DENSE(2, LINEAR)}, 2, {1, {5}}, LOSS_MSE, 0},
    {"sigmoid+mse", {DENSE(6, SIGMOID), DENSE(1, SIGMOID)}, 2, {1, {4}}, LOSS_MSE, 0},
    {"tanh+mse", {DENSE(6, TANH), DENSE(2, TANH)}, 2, {1, {4}}, LOSS_MSE, 0},
    {"hidden softmax+mse", {DENSE(5, SOFTMAX), DENSE(2, LINEAR)}, 2, {1, {3}}, LOSS_MSE, 0},
    {"mse on float labels", {DENSE(4, TANH), DENSE(1, LINEAR)}, 2, {1, {3}}, LOSS_MSE, 1},
    {"binary crossentropy", {DENSE(6, TANH), DENSE(1, SIGMOID)}, 2, {1, {4}}, LOSS_BINARY_CROSSENTROPY, 1},
    {"binary crossentropy, 3 outputs", {DENSE(6, RELU), DENSE(3, SIGMOID)}, 2, {1, {4}}, LOSS_BINARY_CROSSENTROPY, 0},
    {"categorical crossentropy", {DENSE(8, RELU), DENSE(4, SOFTMAX)}, 2, {1, {5}}, LOSS_CATEGORICAL_CROSSENTROPY, 0},
    {"categorical crossentropy on labels", {DENSE(8, TANH), DENSE(3, SOFTMAX)}, 2, {1, {5}},
     LOSS_CATEGORICAL_CROSSENTROPY, 1},
    {"sparse categorical crossentropy", {DENSE(8, SIGMOID), DENSE(5, SOFTMAX)}, 2, {1, {4}},
     LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1},
    {"dropout", {DENSE(16, RELU), DROPOUT(0.5), DENSE(8, TANH), DROPOUT(0.25), DENSE(3, SOFTMAX)}, 5, {1, {4}},
     LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1},
    {"flatten", {FLATTEN, DENSE(6, TANH), DENSE(2, LINEAR)}, 3, {3, {2, 3, 2}}, LOSS_MSE, 0},
    {"conv2d valid stride 1", {CONV(3, 3, 3, 1, 1, 0, TANH), FLATTEN, DENSE(2, LINEAR)}, 3, {3, {5, 6, 2}}, LOSS_MSE, 0},
    {"conv2d same stride 2, odd sizes", {CONV(4, 3, 2, 2, 2, 1, RELU), FLATTEN, DENSE(3, SOFTMAX)}, 3, {3, {7, 5, 3}},
     LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1},
    {"conv2d valid stride 2 + maxpool valid", {CONV(3, 3, 3, 2, 2, 0, SIGMOID), POOL(2, 2, 2, 2, 0), FLATTEN,
     DENSE(2, LINEAR)}, 4, {3, {9, 9, 1}}, LOSS_MSE, 0},
    {"maxpool same stride 1, odd sizes", {CONV(2, 2, 2, 1, 1, 1, TANH), POOL(3, 3, 1, 1, 1), FLATTEN, DENSE(2, LINEAR)}, 4,
     {3, {5, 7, 2}}, LOSS_MSE, 0},
    {"maxpool same stride 2", {CONV(3, 3, 3, 1, 1, 0, LINEAR), POOL(2, 2, 2, 2, 1), FLATTEN, DENSE(4, SOFTMAX)}, 4,
     {3, {7, 7, 2}}, LOSS_CATEGORICAL_CROSSENTROPY, 0},
    {"mnist_cnn shape (small)", {CONV(4, 3, 3, 1, 1, 0, RELU), POOL(2, 2, 2, 2, 0), CONV(6, 3, 3, 1, 1, 0, RELU),
     POOL(2, 2, 2, 2, 0), FLATTEN, DENSE(10, SOFTMAX)}, 6, {3, {12, 12, 1}}, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1},
    {"elu and selu", {DENSE_P(6, ELU, 0.7f), DENSE(5, SELU), DENSE(2, LINEAR)}, 3, {1, {4}}, LOSS_MSE, 0},
    {"leaky_relu and gelu", {DENSE_P(6, LEAKY_RELU, 0.1f), DENSE(5, GELU), DENSE(2, LINEAR)}, 3, {1, {4}}, LOSS_MSE, 0},
    {"gelu (tanh) and silu", {DENSE_P(6, GELU, 1.0f), DENSE(5, SILU), DENSE(2, SWISH)}, 3, {1, {4}}, LOSS_MSE, 0},
    {"softplus and softsign", {DENSE(6, SOFTPLUS), DENSE(5, SOFTSIGN), DENSE(2, LINEAR)}, 3, {1, {4}}, LOSS_MSE, 0},
    {"hard_sigmoid and exponential", {DENSE(6, HARD_SIGMOID), DENSE(5, TANH), DENSE(2, EXPONENTIAL)}, 3, {1, {4}},
     LOSS_MSE, 0},
    {"conv2d elu, selu output", {CONV_P(3, 3, 3, 1, 1, 1, ELU, 1.3f), FLATTEN, DENSE(2, SELU)}, 3, {3, {4, 5, 2}},
     LOSS_MSE, 0},
    {"conv2d gelu", {CONV(3, 2, 2, 1, 1, 0, GELU), FLATTEN, DENSE(3, SOFTMAX)}, 3, {3, {4, 4, 2}},
     LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1},
    {"activation layers", {DENSE(6, LINEAR), ACT(ACTIVATION, SELU, 0), DENSE(5, LINEAR), ACT(LEAKY_RELU, LEAKY_RELU, 0.3f),
     DENSE(4, LINEAR), ACT(ACTIVATION, SOFTMAX, 0), DENSE(2, LINEAR)}, 7, {1, {4}}, LOSS_MSE, 0},
    {"activation layers on conv2d", {CONV(3, 3, 3, 1, 1, 1, LINEAR), ACT(ELU, ELU, 0.5f), ACT(ACTIVATION, SOFTMAX, 0),
     FLATTEN, DENSE(3, SOFTMAX)}, 5, {3, {4, 5, 2}}, LOSS_CATEGORICAL_CROSSENTROPY, 0},
    {"average pooling valid and same, odd sizes", {CONV(3, 2, 2, 1, 1, 0, TANH), AVGPOOL(2, 3, 2, 2, 0),
     AVGPOOL(3, 3, 2, 1, 1), FLATTEN, DENSE(2, LINEAR)}, 5, {3, {7, 8, 2}}, LOSS_MSE, 0},
    {"global average pooling", {CONV(4, 3, 3, 1, 1, 1, RELU), GLOBAL(AVGPOOL2D, 0), DENSE(3, SOFTMAX)}, 3,
     {3, {5, 4, 2}}, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1},
    {"global max pooling, keepdims", {CONV(4, 2, 2, 1, 1, 0, TANH), GLOBAL(MAXPOOL2D, 1), FLATTEN, DENSE(2, LINEAR)},
     4, {3, {4, 5, 3}}, LOSS_MSE, 0},
    {"reshape", {DENSE(12, TANH), RESHAPE({3, {2, -1, 3}}), CONV(2, 2, 1, 1, 1, 0, SIGMOID), FLATTEN, DENSE(2, LINEAR)},
     5, {1, {5}}, LOSS_MSE, 0},
    {"batch normalization after dense", {DENSE_NB(6, LINEAR), BN(1, 1), ACT(ACTIVATION, GELU, 0), DENSE(3, LINEAR)}, 4,
     {1, {4}}, LOSS_MSE, 0},
    {"batch normalization after conv2d, no scale", {CONV_NB(3, 2, 2, 1, 1, 0, LINEAR), BN(1, 0), ACT(ACTIVATION, RELU, 0),
     FLATTEN, DENSE(3, SOFTMAX)}, 5, {3, {3, 4, 2}}, LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, 1},
    {"batch normalization, no center, twice", {DENSE(5, TANH), BN(0, 1), DENSE(4, LINEAR), BN(1, 1), DENSE(2, LINEAR)}, 5,
     {1, {3}}, LOSS_MSE, 0},
    {"use_bias = false", {CONV_NB(3, 2, 2, 1, 1, 0, TANH), FLATTEN, DENSE_NB(4, RELU), DENSE(2, LINEAR)}, 4,
     {3, {4, 4, 2}}, LOSS_MSE, 0},
    {"cancer_mlp shape", {DENSE(30, RELU), DROPOUT(0.5), DENSE(60, RELU), DROPOUT(0.5), DENSE(2, SOFTMAX)}, 5,
     {1, {30}}, LOSS_CATEGORICAL_CROSSENTROPY, 1},
};

START_TEST(finite_differences)
{
    check_case(&cases[_i]);
}
END_TEST

/* Inverted dropout: kept fraction near 1 - rate, kept values scaled, and the mask depends on
 * the global sample index only (not on the row position in the batch). */
START_TEST(dropout_mask_keyed_by_sample)
{
    const struct backend *be = &backend_cpu;
    enum { ROWS = 64, COLS = 257 };
    static float x[ROWS * COLS], y[ROWS * COLS], y2[ROWS * COLS];
    static uint8_t mask[ROWS * COLS], mask2[ROWS * COLS];
    int64_t ids[ROWS], rev[ROWS];
    for (int i = 0; i < ROWS * COLS; i++)
        x[i] = (float)(urand() + 0.1);
    for (int r = 0; r < ROWS; r++)
        ids[r] = 1000 + r;
    struct dropout_key key = {test_seed(), 2, 9};
    be->dropout_forward(y, mask, x, ids, ROWS, COLS, 0.3f, key);
    int kept = 0;
    for (int i = 0; i < ROWS * COLS; i++) {
        kept += mask[i];
        ck_assert(mask[i] ? fabsf(y[i] - x[i] / 0.7f) < 1e-6f : y[i] == 0.0f);
    }
    double frac = (double)kept / (ROWS * COLS);
    ck_assert_msg(frac > 0.67 && frac < 0.73, "kept fraction %g", frac);
    /* Same samples in reverse order: same masks per sample. */
    static float xr[ROWS * COLS];
    for (int r = 0; r < ROWS; r++) {
        rev[r] = ids[ROWS - 1 - r];
        memcpy(xr + r * COLS, x + (ROWS - 1 - r) * COLS, COLS * sizeof(float));
    }
    be->dropout_forward(y2, mask2, xr, rev, ROWS, COLS, 0.3f, key);
    for (int r = 0; r < ROWS; r++)
        ck_assert(memcmp(mask2 + r * COLS, mask + (ROWS - 1 - r) * COLS, COLS) == 0);
    /* Another step: other masks. */
    key.step = 10;
    be->dropout_forward(y2, mask2, x, ids, ROWS, COLS, 0.3f, key);
    ck_assert(memcmp(mask, mask2, sizeof mask) != 0);
}
END_TEST

/* glorot_uniform: within +-sqrt(6/(in+out)), spread over the range, biases zero. */
START_TEST(glorot_uniform_init)
{
    struct layer_spec spec[1] = {DENSE(300, RELU)};
    struct shape in = {1, {200}};
    struct model m;
    struct dp_error err;
    ck_assert(model_build(&m, spec, 1, &in, "test", &err) == 0);
    model_allocate(&m, &backend_cpu, 1);
    model_init_weights(&m, test_seed());
    double limit = sqrt(6.0 / 500.0), mx = 0, mean = 0;
    for (int i = 0; i < 200 * 300; i++) {
        ck_assert(fabsf(m.layers[0].w[i]) <= limit);
        mx = fmax(mx, fabs(m.layers[0].w[i]));
        mean += m.layers[0].w[i];
    }
    ck_assert(mx > 0.99 * limit);
    ck_assert(fabs(mean / 60000) < 0.01 * limit);
    for (int i = 0; i < 300; i++)
        ck_assert(m.layers[0].b[i] == 0.0f);
    model_free(&m);
}
END_TEST

/* Every initializer against its distribution: a (200, 300) dense kernel (and a (3, 3, 20, 30) conv2d
 * kernel for the fans), its mean, its spread and its bounds; the bias initializer too. */
START_TEST(initializers_match_keras)
{
    const double fan_in = 200, fan_out = 300;
    for (int kind = INIT_GLOROT_UNIFORM; kind < INIT_COUNT; kind++) {
        struct layer_spec spec[1] = {DENSE(300, LINEAR)};
        struct initializer init = initializer_default((enum initializer_kind)kind);
        if (kind == INIT_CONSTANT)
            init.a = 0.25;
        if (kind == INIT_RANDOM_NORMAL || kind == INIT_TRUNCATED_NORMAL)
            init.a = 0.5, init.b = 0.2;
        spec[0].u.dense.weights.kernel = init;
        spec[0].u.dense.weights.bias = (struct initializer){INIT_CONSTANT, -1.5, 0};
        struct shape in = {1, {200}};
        struct model m;
        struct dp_error err;
        ck_assert(model_build(&m, spec, 1, &in, "test", &err) == 0);
        model_allocate(&m, &backend_cpu, 1);
        model_init_weights(&m, test_seed());
        const int n = 200 * 300;
        double mean = 0, var = 0, lo = 1e30, hi = -1e30;
        for (int i = 0; i < n; i++) {
            mean += m.layers[0].w[i] / n;
            lo = fmin(lo, m.layers[0].w[i]);
            hi = fmax(hi, m.layers[0].w[i]);
        }
        for (int i = 0; i < n; i++)
            var += (m.layers[0].w[i] - mean) * (m.layers[0].w[i] - mean) / n;
        /* expected mean, variance and bounds */
        double scale = kind == INIT_HE_UNIFORM || kind == INIT_HE_NORMAL ? 2 : 1;
        double fan = kind == INIT_GLOROT_UNIFORM || kind == INIT_GLOROT_NORMAL ? (fan_in + fan_out) / 2 : fan_in;
        double want_mean = 0, want_var = scale / fan, bound = 1e30;
        int uniform = kind == INIT_GLOROT_UNIFORM || kind == INIT_HE_UNIFORM || kind == INIT_LECUN_UNIFORM;
        int truncated = kind == INIT_GLOROT_NORMAL || kind == INIT_HE_NORMAL || kind == INIT_LECUN_NORMAL;
        if (uniform)
            bound = sqrt(3 * scale / fan);
        if (truncated)
            bound = 2 * sqrt(scale / fan) / 0.87962566103423978;
        if (kind == INIT_RANDOM_NORMAL)
            want_mean = 0.5, want_var = 0.04;
        if (kind == INIT_TRUNCATED_NORMAL)
            want_mean = 0.5, want_var = 0.04 * 0.87962566103423978 * 0.87962566103423978, bound = 0.4;
        if (kind == INIT_RANDOM_UNIFORM)
            want_var = 0.1 * 0.1 / 12, bound = 0.05;
        if (kind == INIT_ZEROS || kind == INIT_ONES || kind == INIT_CONSTANT) {
            want_mean = kind == INIT_ZEROS ? 0 : kind == INIT_ONES ? 1 : 0.25;
            ck_assert_msg(lo == want_mean && hi == want_mean, "%s: %g..%g", initializer_names[kind], lo, hi);
        } else {
            double sd = sqrt(want_var);
            ck_assert_msg(fabs(mean - want_mean) < 0.02 * sd + 1e-9 && fabs(var / want_var - 1) < 0.03,
                          "%s: mean %g (want %g), variance %g (want %g)", initializer_names[kind], mean, want_mean,
                          var, want_var);
            ck_assert_msg(hi <= want_mean + bound + 1e-6 && lo >= want_mean - bound - 1e-6,
                          "%s: %g..%g outside +-%g", initializer_names[kind], lo, hi, bound);
            if (bound < 1e30)  /* the range is used up to its ends */
                ck_assert_msg(hi > want_mean + 0.9 * bound && lo < want_mean - 0.9 * bound, "%s: %g..%g of +-%g",
                              initializer_names[kind], lo, hi, bound);
        }
        for (int i = 0; i < 300; i++)
            ck_assert(m.layers[0].b[i] == -1.5f);
        model_free(&m);
    }
}
END_TEST

/* The optimizer's runs of the arena cover every learned tensor and none of BatchNormalization's
 * moving statistics (weight decay must not shrink them); without BatchNormalization, one run over
 * the whole arena. */
START_TEST(optimizer_runs_skip_moving_statistics)
{
    struct layer_spec plain[2] = {DENSE(5, RELU), DENSE(2, LINEAR)};
    struct layer_spec with_bn[5] = {DENSE(5, LINEAR), BN(1, 1), DENSE(4, LINEAR), BN(0, 1), DENSE(2, LINEAR)};
    struct shape in = {1, {3}};
    struct model m;
    struct dp_error err;
    ck_assert(model_build(&m, plain, 2, &in, "test", &err) == 0);
    ck_assert(m.ntrainable_runs == 1 && m.trainable_runs[0].offset == 0 && m.trainable_runs[0].floats == m.arena_floats);
    model_free(&m);
    ck_assert(model_build(&m, with_bn, 5, &in, "test", &err) == 0);
    for (int i = 0; i < m.nlayers; i++)
        for (int p = 0; p < m.layers[i].nparams; p++) {
            size_t lo = m.layers[i].param_offsets[p], hi = lo + (size_t)shape_size(&m.layers[i].param_shapes[p]);
            int covered = 0;
            for (int r = 0; r < m.ntrainable_runs; r++) {
                size_t a = m.trainable_runs[r].offset, b = a + m.trainable_runs[r].floats;
                covered |= lo < b && a < hi;
                if (p < m.layers[i].ntrainable)
                    ck_assert(!(lo < b && a < hi) || (a <= lo && hi <= b));
            }
            ck_assert_msg(covered == (p < m.layers[i].ntrainable), "%s/%s: covered %d", m.layers[i].name,
                          m.layers[i].param_names[p], covered);
        }
    ck_assert_int_eq(m.layers[1].ntrainable, 2);
    ck_assert_int_eq(m.layers[3].ntrainable, 1);
    model_free(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gradients");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, finite_differences, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, dropout_mask_keyed_by_sample);
    tcase_add_test(tc, glorot_uniform_init);
    tcase_add_test(tc, initializers_match_keras);
    tcase_add_test(tc, optimizer_runs_skip_moving_statistics);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
