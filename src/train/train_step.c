#include "train/train_step.h"

#include <string.h>

#include "net/model.h"
#include "base/timeutil.h"
#include "train/score_pairs.h"

/* With a profile: the clock once the device has finished what was queued; else 0. */
static double profile_clock(const struct train_step *t) { return t->profile ? backend_clock(t->be) : 0; }

/* Called by backward after each layer with parameters: a bucket may start summing. */
static void bucket_ready(void *arg, size_t first_offset)
{
    grad_allreduce_ready(arg, first_offset);
}

/* Called by synchronized BatchNormalization: per-channel sums over the ranks. */
static void sum_across_ranks(void *arg, double *buf, int64_t n)
{
    grad_allreduce_sum_f64(arg, buf, (size_t)n);
}

/* Gradients of the slice [lo, hi), scaled by the global row count so that summing over ranks
 * averages. Backward writes every gradient (backend.h), so the arena is zeroed only for a slice
 * without rows. */
static void compute(struct train_step *t, const struct host_batch *hb, int64_t lo, int64_t hi, int64_t rows,
                    int64_t iteration)
{
    struct model *m = t->m;
    struct pass_context c = {t->be, hi - lo, 1, t->seed, (uint32_t)iteration, t->db->sample_ids, NULL, NULL};
    if (t->allreduce && t->allreduce->kind != GRAD_ALLREDUCE_NONE) {
        c.sum_across_ranks = sum_across_ranks;
        c.sum_arg = t->allreduce;
        c.global_rows = rows;
    }
    if (t->allreduce) {
        c.grads_final = bucket_ready;
        c.grads_final_arg = t->allreduce;
    }
    if (hi <= lo) {
        /* No rows here (a batch smaller than the ranks): zero gradients, but the same collectives
         * and buckets as every other rank, in the same order, or they would not match. */
        t->be->zero(m->grads, m->arena_floats * sizeof(float));
        model_collectives_without_rows(m, &c);
        return;
    }
    if (t->profile) {
        c.forward_seconds = t->profile->forward;
        c.backward_seconds = t->profile->backward;
    }
    model_forward(m, &c);
    const struct layer *last = &m->layers[m->nlayers - 1];
    double t0 = profile_clock(t);
    t->be->loss_forward_backward(t->db->acc, m->loss_dz, last->z, last->y, device_batch_targets(t->db, hb), hi - lo,
                                 t->k, t->lp, 1.0f / (float)rows);
    if (t->profile)
        t->profile->loss += profile_clock(t) - t0;
    model_backward(m, &c);
}

/* Keras' kernel and bias regularizers: after the all-reduce, the same on every rank */
static void regularize(struct train_step *t, int64_t local_rows)
{
    struct model *m = t->m;
    for (int i = 0; i < m->nlayers; i++) {
        const struct layer *l = &m->layers[i];
        for (int p = 0; p < l->ntrainable; p++) {
            const struct regularizer *r = &l->regularizers[p];
            if (r->l1 == 0.0 && r->l2 == 0.0)
                continue;
            size_t at = l->param_offsets[p];
            t->be->regularize(m->grads + at, m->params + at, (size_t)shape_size(&l->param_shapes[p]), (float)r->l1,
                              (float)r->l2, t->db->acc, (double)local_rows);
        }
    }
}

/* Keras' clipnorm (each tensor) or global_clipnorm (all together), on the summed gradients with
 * the penalties in, the same on every rank */
static void clip_norms(struct train_step *t)
{
    const struct optimizer_config *o = t->optimizer;
    if (o->clipnorm <= 0.0 && o->global_clipnorm <= 0.0)
        return;
    struct model *m = t->m;
    int global = o->global_clipnorm > 0.0;
    for (int pass = global ? 0 : 1; pass < 2; pass++) {
        int first = 1;
        for (int i = 0; i < m->nlayers; i++)
            for (int p = 0; p < m->layers[i].ntrainable; p++) {
                float *g = m->grads + m->layers[i].param_offsets[p];
                size_t n = (size_t)shape_size(&m->layers[i].param_shapes[p]);
                if (!global) {
                    t->be->sum_squares(t->norm_sum, g, n, 0);
                    t->be->clip_by_norm(g, n, t->norm_sum, (float)o->clipnorm);
                } else if (pass == 0) {
                    t->be->sum_squares(t->norm_sum, g, n, !first);
                    first = 0;
                } else {
                    t->be->clip_by_norm(g, n, t->norm_sum, (float)o->global_clipnorm);
                }
            }
    }
}

static void update(struct train_step *t, const struct optimizer_step_params *sp)
{
    struct model *m = t->m;
    double t0 = profile_clock(t);
    for (int r = 0; r < m->ntrainable_runs; r++) {
        size_t at = m->trainable_runs[r].offset;
        float *state[OPTIMIZER_MAX_STATE];
        for (int i = 0; i < OPTIMIZER_MAX_STATE; i++)
            state[i] = t->opt_state[i] ? t->opt_state[i] + at : NULL;
        t->be->optimizer_step(m->params + at, m->grads + at, state[0], state[1], state[2], m->trainable_runs[r].floats,
                              *sp);
    }
    if (t->profile)
        t->profile->optimizer += profile_clock(t) - t0;
}

/* Graphs: one rank (nothing to all-reduce), a backend that records them, a full batch of a shape
 * already run once (so every buffer and GEMM plan exists before recording), not while profiling.
 * DPTRAIN_CUDA_GRAPHS=0 turns them off. */
static int graph_usable(const struct train_step *t, int64_t rows)
{
    if (rows != t->batch || t->profile || t->scores) /* auc reads every step's outputs back */
        return 0;
    if (t->graph)
        return 1;
    return t->be->is_device && !t->graphs_off && (!t->allreduce || t->allreduce->kind == GRAD_ALLREDUCE_NONE) &&
           t->full_steps_run > 0 && dp_env_flag("DPTRAIN_CUDA_GRAPHS", 1);
}

void train_step_run(struct train_step *t, const struct host_batch *hb, int slot, int64_t lo, int64_t hi, int64_t rows,
                    int64_t iteration)
{
    const struct backend *be = t->be;
    struct optimizer_step_params sp;
    optimizer_step_params_make(&sp, t->optimizer, iteration);
    double t_upload = profile_clock(t);
    if (!t->norm_sum && (t->optimizer->clipnorm > 0.0 || t->optimizer->global_clipnorm > 0.0))
        t->norm_sum = be->alloc(sizeof(double), "gradient norm"); /* before any step is recorded */
    if (hi > lo)
        device_batch_upload_async(t->db, t->m, hb, t->k, slot);
    if (t->profile) {
        t->profile->upload += profile_clock(t) - t_upload;
        t->profile->steps++;
    }
    be->set_step_scalars((uint32_t)iteration, &sp, slot);
    be->host_fence_record(slot);
    double t0 = time_now();
    int replay = graph_usable(t, rows);
    if (replay && !t->graph) {
        if (be->graph_begin() == 0) {
            compute(t, hb, lo, hi, rows, iteration);
            regularize(t, hi - lo);
            clip_norms(t);
            update(t, &sp);
            t->graph = be->graph_end();
        } else {
            t->graphs_off = 1;
            replay = 0;
        }
    }
    if (replay) {
        be->graph_launch(t->graph);
        t->seconds_compute = time_now() - t0;
        t->seconds_allreduce = 0;
        return;
    }
    if (t->allreduce)
        grad_allreduce_begin(t->allreduce, t->m->grads);
    compute(t, hb, lo, hi, rows, iteration);
    if (t->scores && hi > lo)
        score_pairs_add_device(t->scores, be, t->m->layers[t->m->nlayers - 1].y, hb, hi - lo, t->k);
    double t1 = time_now();
    /* ONE all-reduce over the flat gradient arena after backward (MPI, or NCCL on GPUs), or the
     * buckets not started during backward. */
    if (t->allreduce)
        grad_allreduce_finish(t->allreduce);
    double t2 = time_now();
    regularize(t, hi - lo);
    clip_norms(t);
    update(t, &sp);
    if (rows == t->batch)
        t->full_steps_run++;
    t->seconds_compute = (t1 - t0) + (time_now() - t2);
    t->seconds_allreduce = t2 - t1;
}

void train_step_free(struct train_step *t)
{
    if (t->graph)
        t->be->graph_free(t->graph);
    t->graph = NULL;
    if (t->norm_sum)
        t->be->free(t->norm_sum);
    t->norm_sum = NULL;
}
