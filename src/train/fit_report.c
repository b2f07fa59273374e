#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/atomic_file.h"
#include "base/json_out.h"
#include "dist/comm.h"
#include "train/fit_state.h"
#include "net/layers.h"

/* The epoch line's tail on GPUs and with several ranks: throughput, how a step's time splits on
 * this rank, and device memory. */
void fit_epoch_figures(struct fit_state *s, struct progress *prog, const double split0[3], double samples,
                          double seconds)
{
    double c = s->time_compute - split0[0], a = s->time_allreduce - split0[1], d = s->time_data - split0[2];
    double total = c + a + d > 0 ? c + a + d : 1;
    int n = snprintf(prog->tail, sizeof prog->tail, " - %.0f samples/s - compute %.0f%% all-reduce %.0f%% data %.0f%%",
                     seconds > 0 ? samples / seconds : 0, 100 * c / total, 100 * a / total, 100 * d / total);
    double used, capacity;
    if (s->be->memory_info(&used, &capacity) == 0 && n > 0 && (size_t)n < sizeof prog->tail) {
        n += snprintf(prog->tail + n, sizeof prog->tail - (size_t)n, " - GPU memory %.0f/%.0f MiB", used, capacity);
        if (used > s->gpu_memory_peak_mb)
            s->gpu_memory_peak_mb = used;
        double busy;
        if (s->be->utilization(&busy) == 0 && n > 0 && (size_t)n < sizeof prog->tail)
            snprintf(prog->tail + n, sizeof prog->tail - (size_t)n, ", %.0f%% busy", busy);
    }
}

/* "dense:30:relu|dropout:0.5|..." so reports can refuse to mix runs of different models. */
static void model_signature(const struct model *m, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < m->nlayers && used < len; i++) {
        const struct layer *l = &m->layers[i];
        char shape[64];
        shape_format(shape, sizeof shape, &l->out_shape);
        used += (size_t)snprintf(buf + used, len - used, "%s%s%s", i ? "|" : "", layer_kind_names[l->spec.kind], shape);
    }
}

static int count_nodes(const struct fit_state *s)
{
    double first = s->binding.local_rank == 0;
    comm_allreduce_sum_f64(&first, 1);
    return (int)first;
}

/* What the run did: epochs, steps, the last losses and metrics, the best checkpoint, speed. */
static void summary_training(json_t *o, const struct fit_state *s, const double *last_row, int stopped_early)
{
    const char *metric = s->job->fit.metric != METRIC_NONE ? metric_names[s->job->fit.metric] : NULL;
    json_object_set_new(o, "name", json_str(s->job->name));
    json_object_set_new(o, "backend", json_str(s->be->name));
    json_object_set_new(o, "epochs_run", json_integer(s->pos.epoch));
    json_object_set_new(o, "steps", json_integer(s->pos.iterations));
    json_object_set_new(o, "stopped_early", json_boolean(stopped_early));
    json_object_set_new(o, "train_rows", json_integer(s->ntrain));
    json_object_set_new(o, "validation_rows", json_integer(s->nval));
    json_object_set_new(o, "loss", json_num(last_row[HISTORY_LOSS]));
    json_object_set_new(o, "val_loss", json_num(last_row[HISTORY_VAL_LOSS]));
    if (metric) {
        char key[64];
        json_object_set_new(o, metric, json_num(last_row[HISTORY_METRIC]));
        snprintf(key, sizeof key, "val_%s", metric);
        json_object_set_new(o, key, json_num(last_row[HISTORY_VAL_METRIC]));
    }
    json_object_set_new(o, "best_monitor", json_str(s->job->fit.checkpoint.m.monitor));
    json_object_set_new(o, "best_value", json_num(s->pos.best));
    json_object_set_new(o, "best_epoch", json_integer(s->pos.best_epoch));
    double t = s->pos.train_seconds;
    json_object_set_new(o, "samples_per_second", json_num(t > 0 ? (double)s->pos.samples / t : 0));
    json_object_set_new(o, "train_seconds", json_num(t));
}

/* Where it ran: ranks, nodes, GPUs, precision, memory, batch, the all-reduce and the model. */
static void summary_placement(json_t *o, const struct fit_state *s, const struct binding *bindings, int nodes)
{
    int P = comm_world.size;
    json_object_set_new(o, "ranks", json_integer(P));
    json_object_set_new(o, "nodes", json_integer(nodes));
    json_t *hosts = json_array(); /* each rank's node, in rank order */
    for (int r = 0; r < P; r++)
        json_array_append_new(hosts, json_str(bindings[r].host));
    json_object_set_new(o, "hosts", hosts);
    json_object_set_new(o, "device", json_str(s->be->name));
    json_t *gpus = json_array();
    for (int r = 0; r < P; r++)
        if (bindings[r].device >= 0) {
            char gpu[512];
            snprintf(gpu, sizeof gpu, "%s (%s)", bindings[r].gpu, bindings[r].bus_id);
            json_array_append_new(gpus, json_str(gpu));
        }
    json_object_set_new(o, "gpus", gpus);
    json_object_set_new(o, "precision", json_str(s->precision));
    double used = -1, capacity = -1;
    if (s->be->memory_info(&used, &capacity) == 0) {
        json_object_set_new(o, "gpu_memory_used_mb", json_num(used > s->gpu_memory_peak_mb ? used : s->gpu_memory_peak_mb));
        json_object_set_new(o, "gpu_memory_total_mb", json_num(capacity));
    }
    json_object_set_new(o, "dptrain_version", json_str(DPTRAIN_VERSION));
    json_object_set_new(o, "global_batch", json_integer(s->job->fit.batch_size));
    json_object_set_new(o, "per_rank_batch", json_num((double)s->job->fit.batch_size / P));
    json_object_set_new(o, "parameters", json_integer((json_int_t)s->model.nparams));
    json_int_t gradient_bytes = (json_int_t)(s->model.arena_floats * sizeof(float));
    json_object_set_new(o, "allreduce_bytes_per_step", json_integer(P > 1 ? gradient_bytes : 0));
    json_object_set_new(o, "allreduce", json_str(s->allreduce.name));
    json_object_set_new(o, "allreduce_buckets_per_step", json_integer(s->allreduce.launches));
    json_object_set_new(o, "gradient_bytes", json_integer(gradient_bytes));
    char sig[2048];
    model_signature(&s->model, sig, sizeof sig);
    json_object_set_new(o, "model", json_str(sig));
    const char *jid = getenv("SLURM_JOB_ID"), *aid = getenv("SLURM_ARRAY_TASK_ID");
    json_object_set_new(o, "slurm_job_id", json_str(jid ? jid : ""));
    json_object_set_new(o, "slurm_array_task_id", json_str(aid ? aid : ""));
}

/* The steady-state figures of scaling reports (the slowest rank's) and each rank's own. */
static void summary_steady(json_t *o, const struct fit_state *s, const double steady[4], const double *per_rank)
{
    int P = comm_world.size;
    json_object_set_new(o, "steady_steps_skipped", json_integer(STEADY_SKIP));
    json_object_set_new(o, "steady_steps", json_integer(s->steady_steps));
    json_object_set_new(o, "steady_step_seconds", json_num(s->steady_steps ? steady[0] / (double)s->steady_steps : NAN));
    json_object_set_new(o, "steady_samples_per_second",
                        json_num(steady[0] > 0 ? (double)s->steady_samples / steady[0] : NAN));
    json_object_set_new(o, "steady_compute_seconds", json_num(steady[1]));
    json_object_set_new(o, "steady_allreduce_seconds", json_num(steady[2]));
    json_object_set_new(o, "steady_data_seconds", json_num(steady[3]));
    static const char *const per_rank_keys[4] = {"rows_read_per_rank", "compute_seconds_per_rank",
                                                 "allreduce_seconds_per_rank", "data_wait_seconds_per_rank"};
    for (int k = 0; k < 4; k++) {
        json_t *a = json_array();
        for (int r = 0; r < P; r++)
            json_array_append_new(a, k == 0 ? json_integer((json_int_t)per_rank[r]) : json_num(per_rank[k * P + r]));
        json_object_set_new(o, per_rank_keys[k], a);
    }
}

int fit_write_summary(struct fit_state *s, const double *last_row, double wall, int stopped_early,
                      struct dp_error *err)
{
    /* Per-rank figures, gathered by a sum over slots (called by every rank). */
    int P = comm_world.size;
    double *per_rank = dp_calloc((size_t)P * 4, sizeof(double), "per-rank figures");
    per_rank[comm_world.rank] = (double)(s->train_reader.rows_read + s->val_reader.rows_read);
    per_rank[P + comm_world.rank] = s->time_compute;
    per_rank[2 * P + comm_world.rank] = s->time_allreduce;
    per_rank[3 * P + comm_world.rank] = s->time_data;
    comm_allreduce_sum_f64(per_rank, (size_t)P * 4);
    /* Steady state: the slowest rank sets the pace, so take the max of each time over ranks. */
    double steady[4] = {s->steady_seconds, s->steady_compute, s->steady_allreduce, s->steady_data};
    comm_allreduce_max_f64(steady, 4);
    int nodes = count_nodes(s);
    struct binding *bindings = dp_malloc((size_t)P * sizeof *bindings, "the binding table");
    comm_allgather_bytes(&s->binding, bindings, sizeof *bindings);
    int rc = 0;
    struct atomic_file out;
    if (comm_world.rank == 0 && (rc = atomic_file_open(&out, s->path_summary, err)) == 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        json_t *o = json_object();
        summary_training(o, s, last_row, stopped_early);
        summary_placement(o, s, bindings, nodes);
        summary_steady(o, s, steady, per_rank);
        json_object_set_new(o, "wall_seconds", json_num(wall));
        json_object_set_new(o, "peak_rss_mb", json_num((double)ru.ru_maxrss / 1024.0));
        json_write_object(out.f, o, 1); /* a write error shows at the commit */
        json_decref(o);
        rc = atomic_file_commit(&out, err);
    }
    free(bindings);
    free(per_rank);
    return rc;
}

