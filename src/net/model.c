#include "net/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"

/* Tensors start on 64-float (256-byte) boundaries so that BLAS, cuBLAS and vector loads never see a
 * misaligned view. */
#define ARENA_ALIGN_FLOATS 64

static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

/* Runs of the arena between the tensors that are not learned; padding goes with the run it ends. */
static void find_trainable_runs(struct model *m)
{
    m->trainable_runs = dp_calloc((size_t)(m->nlayers * LAYER_MAX_PARAMS + 1), sizeof *m->trainable_runs, "arena runs");
    size_t start = 0;
    int open = 1;
    for (int i = 0; i < m->nlayers; i++)
        for (int p = 0; p < m->layers[i].nparams; p++) {
            size_t at = m->layers[i].param_offsets[p];
            if (p < m->layers[i].ntrainable) {
                if (!open)
                    start = at, open = 1;
            } else {
                if (open && at > start)
                    m->trainable_runs[m->ntrainable_runs++] = (struct arena_run){start, at - start};
                open = 0;
            }
        }
    if (open)
        m->trainable_runs[m->ntrainable_runs++] = (struct arena_run){start, m->arena_floats - start};
}

int model_build(struct model *m, const struct layer_spec *specs, int nspecs,
                const struct shape *input_shape, const char *file, struct dp_error *err)
{
    memset(m, 0, sizeof *m);
    if (nspecs < 1)
        return dp_error_set(err, DP_EXIT_INPUT, "%s: the model has no layers", file);
    const struct shape *declared = &specs[0].input_shape;
    if (declared->rank > 0 &&
        (declared->rank != input_shape->rank ||
         memcmp(declared->dims, input_shape->dims, (size_t)declared->rank * sizeof declared->dims[0]) != 0)) {
        char want[96], got[96]; /* "(None, 28, 28, 1)" without the batch's "None, " */
        shape_format(want, sizeof want, declared);
        shape_format(got, sizeof got, input_shape);
        memmove(want + 1, want + 7, strlen(want + 7) + 1);
        memmove(got + 1, got + 7, strlen(got + 7) + 1);
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: input_shape %s does not match the data, whose samples are %s",
                            file, specs[0].line, want, got);
    }
    m->nlayers = nspecs;
    m->layers = dp_calloc((size_t)nspecs, sizeof *m->layers, "layers");
    m->input_shape = *input_shape;
    m->input_size = shape_size(input_shape);

    int kind_count[LAYER_KIND_COUNT] = {0};
    struct shape cur = *input_shape;
    size_t offset = 0;
    for (int i = 0; i < nspecs; i++) {
        struct layer *l = &m->layers[i];
        const struct layer_ops *ops = layer_ops_table[specs[i].kind];
        l->spec = specs[i];
        l->index = i;
        int nth = kind_count[specs[i].kind]++;
        if (nth == 0)
            snprintf(l->name, sizeof l->name, "%s", ops->keras_name);
        else
            snprintf(l->name, sizeof l->name, "%s_%d", ops->keras_name, nth);
        l->in_shape = cur;
        if (ops->out_shape(&specs[i], &cur, &l->out_shape, file, err) != 0) {
            model_free(m);
            return -1;
        }
        l->in_size = shape_size(&l->in_shape);
        l->out_size = shape_size(&l->out_shape);
        l->ntrainable = -1;
        ops->declare_params(l);
        if (l->ntrainable < 0)
            l->ntrainable = l->nparams;
        for (int p = 0; p < l->nparams; p++) {
            l->param_offsets[p] = offset;
            size_t count = (size_t)shape_size(&l->param_shapes[p]);
            m->nparams += count;
            offset = align_up(offset + count, ARENA_ALIGN_FLOATS);
        }
        cur = l->out_shape;
    }
    if (m->layers[nspecs - 1].spec.kind != LAYER_KIND_DENSE) {
        int line = m->layers[nspecs - 1].spec.line;
        model_free(m);
        return dp_error_set(err, DP_EXIT_INPUT, "%s:%d: the last layer must be dense (it gives the "
                            "model's outputs)", file, line);
    }
    m->arena_floats = offset ? offset : ARENA_ALIGN_FLOATS;
    find_trainable_runs(m);
    m->output_size = m->layers[nspecs - 1].out_size;
    return 0;
}

void model_allocate(struct model *m, const struct backend *be, int64_t max_rows)
{
    m->be = be;
    m->max_rows = max_rows;
    m->params = be->alloc(m->arena_floats * sizeof(float), "the parameter arena");
    m->grads = be->alloc(m->arena_floats * sizeof(float), "the gradient arena");
    m->input = be->alloc((size_t)max_rows * (size_t)m->input_size * sizeof(float), "the input batch");

    const float *prev_y = m->input;
    float *prev_dy = NULL;
    for (int i = 0; i < m->nlayers; i++) {
        struct layer *l = &m->layers[i];
        const struct layer_ops *ops = layer_ops_table[l->spec.kind];
        if (l->nparams > 0) {
            l->w = m->params + l->param_offsets[0];
            l->dw = m->grads + l->param_offsets[0];
        }
        if (l->nparams > 1) {
            l->b = m->params + l->param_offsets[1];
            l->db = m->grads + l->param_offsets[1];
        } else if (l->zero_bias) {
            size_t channels = (size_t)l->out_shape.dims[l->out_shape.rank - 1];
            l->b = be->alloc(channels * sizeof(float), "zero biases");
            l->db = be->alloc(channels * sizeof(float), "unused bias gradients");
        }
        l->x = prev_y;
        l->dx = prev_dy;
        l->below = i > 0 ? &m->layers[i - 1] : NULL;
        size_t bytes = (size_t)max_rows * (size_t)l->out_size * sizeof(float);
        if (ops->owns_buffers) {
            l->y = be->alloc(bytes, "layer outputs");
            l->dy = be->alloc(bytes, "layer gradients");
            /* Pre-activations are kept where a layer with weights applies its activation in a pass
             * of its own: not for linear and relu, which the product applies in place (backward
             * needs only y). Activation layers take their input as the pre-activation. */
            enum activation act = layer_activation(&l->spec);
            int has_z = l->nparams > 0 && act != ACTIVATION_LINEAR && act != ACTIVATION_RELU;
            l->z = has_z ? be->alloc(bytes, "pre-activations") : l->y;
            int dense_above = i + 1 < m->nlayers && m->layers[i + 1].spec.kind == LAYER_KIND_DENSE;
            if (l->spec.kind == LAYER_KIND_DENSE && act == ACTIVATION_RELU && dense_above && be->relu_mask_bytes &&
                be->relu_mask_bytes(max_rows, l->out_size) > 0)
                l->relu_mask = be->alloc(be->relu_mask_bytes(max_rows, l->out_size), "relu masks");
            if (ops->allocate)
                ops->allocate(l, be, max_rows);
        } else {
            /* Aliasing layer (flatten): same memory as its input. */
            l->y = (float *)prev_y;
            l->z = l->y;
            l->dy = prev_dy;
        }
        prev_y = l->y;
        prev_dy = l->dy;
    }
    m->loss_dz = m->layers[m->nlayers - 1].dy;
}

void model_init_weights(struct model *m, uint64_t seed)
{
    float *host = dp_calloc(m->arena_floats, sizeof(float), "initial weights");
    for (int i = 0; i < m->nlayers; i++)
        layer_ops_table[m->layers[i].spec.kind]->init_params(&m->layers[i], host, seed);
    m->be->upload(m->params, host, m->arena_floats * sizeof(float));
    free(host);
}

void model_set_loss(struct model *m, enum loss_kind loss)
{
    struct layer *last = &m->layers[m->nlayers - 1];
    last->loss_fused = loss != LOSS_MSE && last->spec.kind == LAYER_KIND_DENSE;
}

void model_forward(struct model *m, const struct pass_context *c)
{
    for (int i = 0; i < m->nlayers; i++) {
        double t = c->forward_seconds ? backend_clock(c->be) : 0;
        layer_ops_table[m->layers[i].spec.kind]->forward(&m->layers[i], c);
        if (c->forward_seconds)
            c->forward_seconds[i] += backend_clock(c->be) - t;
    }
}

double model_penalty(const struct model *m)
{
    double penalty = 0.0;
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        for (int p = 0; p < l->ntrainable; p++) {
            const double l1 = (float)l->regularizers[p].l1, l2 = (float)l->regularizers[p].l2;
            if (l1 == 0.0 && l2 == 0.0)
                continue;
            size_t n = (size_t)shape_size(&l->param_shapes[p]);
            float *host = dp_malloc(n * sizeof(float), "weights for the penalty");
            m->be->download(host, m->params + l->param_offsets[p], n * sizeof(float));
            for (size_t j = 0; j < n; j++)
                penalty += l1 * fabs((double)host[j]) + l2 * (double)host[j] * (double)host[j];
            free(host);
        }
    }
    return penalty;
}

void model_collectives_without_rows(struct model *m, const struct pass_context *c)
{
    for (int i = 0; i < m->nlayers; i++)
        if (layer_ops_table[m->layers[i].spec.kind]->collectives_without_rows)
            layer_ops_table[m->layers[i].spec.kind]->collectives_without_rows(&m->layers[i], c, 0);
    for (int i = m->nlayers - 1; i >= 0; i--) {
        if (layer_ops_table[m->layers[i].spec.kind]->collectives_without_rows)
            layer_ops_table[m->layers[i].spec.kind]->collectives_without_rows(&m->layers[i], c, 1);
        if (c->grads_final && m->layers[i].nparams > 0)
            c->grads_final(c->grads_final_arg, m->layers[i].param_offsets[0]);
    }
}

void model_backward(struct model *m, const struct pass_context *c)
{
    for (int i = m->nlayers - 1; i >= 0; i--) {
        double t = c->backward_seconds ? backend_clock(c->be) : 0;
        layer_ops_table[m->layers[i].spec.kind]->backward(&m->layers[i], c);
        if (c->backward_seconds)
            c->backward_seconds[i] += backend_clock(c->be) - t;
        if (c->grads_final && m->layers[i].nparams > 0)
            c->grads_final(c->grads_final_arg, m->layers[i].param_offsets[0]);
    }
}

static void layer_label(const struct layer *l, char *label, size_t len)
{
    snprintf(label, len, "%s (%s)", l->name, layer_ops_table[l->spec.kind]->keras_class);
}

void model_print_summary(const struct model *m, FILE *out)
{
    char shape[64], label[96];
    int width = 28; /* the first column fits the longest "name (Class)" */
    for (int i = 0; i < m->nlayers; i++) {
        layer_label(&m->layers[i], label, sizeof label);
        width = (int)strlen(label) > width ? (int)strlen(label) : width;
    }
    char rule[160];
    int rule_len = width + 37 < (int)sizeof rule - 1 ? width + 37 : (int)sizeof rule - 1;
    memset(rule, '=', (size_t)rule_len);
    rule[rule_len] = '\0';
    fprintf(out, "Model: \"sequential\"\n");
    fprintf(out, "%-*s %-22s %12s\n", width, "Layer (type)", "Output Shape", "Param #");
    fprintf(out, "%s\n", rule);
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        int64_t count = 0;
        for (int p = 0; p < l->nparams; p++)
            count += shape_size(&l->param_shapes[p]);
        layer_label(l, label, sizeof label);
        shape_format(shape, sizeof shape, &l->out_shape);
        fprintf(out, "%-*s %-22s %12lld\n", width, label, shape, (long long)count);
    }
    size_t frozen = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int p = m->layers[i].ntrainable; p < m->layers[i].nparams; p++)
            frozen += (size_t)shape_size(&m->layers[i].param_shapes[p]);
    fprintf(out, "%s\n", rule);
    fprintf(out, "Total params: %zu\n", m->nparams);
    fprintf(out, "Trainable params: %zu\n", m->nparams - frozen);
    fprintf(out, "Non-trainable params: %zu\n", frozen);
}

void model_free(struct model *m)
{
    if (m->be) {
        for (int i = 0; i < m->nlayers; i++) {
            struct layer *l = &m->layers[i];
            if (!layer_ops_table[l->spec.kind]->owns_buffers)
                continue;
            if (l->z != l->y)
                m->be->free(l->z);
            m->be->free(l->y);
            m->be->free(l->dy);
            if (l->relu_mask)
                m->be->free(l->relu_mask);
            if (l->zero_bias) {
                m->be->free(l->b);
                m->be->free(l->db);
            }
            if (layer_ops_table[l->spec.kind]->release)
                layer_ops_table[l->spec.kind]->release(l, m->be);
        }
        m->be->free(m->params);
        m->be->free(m->grads);
        m->be->free(m->input);
    }
    free(m->layers);
    free(m->trainable_runs);
    memset(m, 0, sizeof *m);
}
