#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/atomic_file.h"
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

static void json_number(FILE *f, const char *key, double v, int comma)
{
    if (isnan(v) || isinf(v))
        fprintf(f, "  \"%s\": null%s\n", key, comma ? "," : "");
    else
        fprintf(f, "  \"%s\": %.9g%s\n", key, v, comma ? "," : "");
}

/* Steps left out of the steady-state figures (warm-up: first touches, caches, thread start). */
#define STEADY_SKIP 5

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
    if (comm_world.rank != 0) {
        free(bindings);
        free(per_rank);
        return 0;
    }
    struct atomic_file out;
    if (atomic_file_open(&out, s->path_summary, err) != 0) {
        free(bindings);
        free(per_rank);
        return -1;
    }
    FILE *f = out.f;
    const char *metric = s->job->fit.metric != METRIC_NONE ? metric_names[s->job->fit.metric] : NULL;
    fprintf(f, "{\n  \"name\": \"%s\",\n", s->job->name);
    fprintf(f, "  \"backend\": \"%s\",\n", s->be->name);
    fprintf(f, "  \"epochs_run\": %lld,\n", (long long)s->pos.epoch);
    fprintf(f, "  \"steps\": %lld,\n", (long long)s->pos.iterations);
    fprintf(f, "  \"stopped_early\": %s,\n", stopped_early ? "true" : "false");
    fprintf(f, "  \"train_rows\": %lld,\n  \"validation_rows\": %lld,\n", (long long)s->ntrain,
            (long long)s->nval);
    json_number(f, "loss", last_row[HISTORY_LOSS], 1);
    json_number(f, "val_loss", last_row[HISTORY_VAL_LOSS], 1);
    if (metric) {
        char key[64];
        json_number(f, metric, last_row[HISTORY_METRIC], 1);
        snprintf(key, sizeof key, "val_%s", metric);
        json_number(f, key, last_row[HISTORY_VAL_METRIC], 1);
    }
    fprintf(f, "  \"best_monitor\": \"%s\",\n", s->job->fit.checkpoint.m.monitor);
    json_number(f, "best_value", s->pos.best, 1);
    fprintf(f, "  \"best_epoch\": %lld,\n", (long long)s->pos.best_epoch);
    double t = s->pos.train_seconds;
    json_number(f, "samples_per_second", t > 0 ? (double)s->pos.samples / t : 0, 1);
    json_number(f, "train_seconds", t, 1);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(f, "  \"ranks\": %d,\n", P);
    fprintf(f, "  \"nodes\": %d,\n", nodes);
    fprintf(f, "  \"device\": \"%s\",\n  \"gpus\": [", s->be->name);
    for (int r = 0, first = 1; r < P; r++)
        if (bindings[r].device >= 0) {
            fprintf(f, "%s\"%s (%s)\"", first ? "" : ", ", bindings[r].gpu, bindings[r].bus_id);
            first = 0;
        }
    fprintf(f, "],\n  \"precision\": \"%s\",\n", s->precision);
    double used = -1, capacity = -1;
    if (s->be->memory_info(&used, &capacity) == 0) {
        json_number(f, "gpu_memory_used_mb", used > s->gpu_memory_peak_mb ? used : s->gpu_memory_peak_mb, 1);
        json_number(f, "gpu_memory_total_mb", capacity, 1);
    }
    fprintf(f, "  \"dptrain_version\": \"%s\",\n", DPTRAIN_VERSION);
    fprintf(f, "  \"global_batch\": %lld,\n", (long long)s->job->fit.batch_size);
    fprintf(f, "  \"per_rank_batch\": %.6g,\n", (double)s->job->fit.batch_size / P);
    fprintf(f, "  \"parameters\": %zu,\n", s->model.nparams);
    fprintf(f, "  \"allreduce_bytes_per_step\": %zu,\n", P > 1 ? s->model.arena_floats * sizeof(float) : 0);
    fprintf(f, "  \"allreduce\": \"%s\",\n", s->allreduce.name);
    fprintf(f, "  \"allreduce_buckets_per_step\": %d,\n", s->allreduce.launches);
    fprintf(f, "  \"gradient_bytes\": %zu,\n", s->model.arena_floats * sizeof(float));
    char sig[2048];
    model_signature(&s->model, sig, sizeof sig);
    fprintf(f, "  \"model\": \"%s\",\n", sig);
    const char *jid = getenv("SLURM_JOB_ID"), *aid = getenv("SLURM_ARRAY_TASK_ID");
    fprintf(f, "  \"slurm_job_id\": \"%s\",\n  \"slurm_array_task_id\": \"%s\",\n", jid ? jid : "", aid ? aid : "");
    fprintf(f, "  \"steady_steps_skipped\": %d,\n", STEADY_SKIP);
    fprintf(f, "  \"steady_steps\": %lld,\n", (long long)s->steady_steps);
    json_number(f, "steady_step_seconds", s->steady_steps ? steady[0] / (double)s->steady_steps : NAN, 1);
    json_number(f, "steady_samples_per_second", steady[0] > 0 ? (double)s->steady_samples / steady[0] : NAN, 1);
    json_number(f, "steady_compute_seconds", steady[1], 1);
    json_number(f, "steady_allreduce_seconds", steady[2], 1);
    json_number(f, "steady_data_seconds", steady[3], 1);
    static const char *const per_rank_keys[4] = {"rows_read_per_rank", "compute_seconds_per_rank",
                                                 "allreduce_seconds_per_rank", "data_wait_seconds_per_rank"};
    for (int k = 0; k < 4; k++) {
        fprintf(f, "  \"%s\": [", per_rank_keys[k]);
        for (int r = 0; r < P; r++)
            fprintf(f, "%s%.6g", r ? ", " : "", per_rank[k * P + r]);
        fprintf(f, "],\n");
    }
    free(bindings);
    free(per_rank);
    json_number(f, "wall_seconds", wall, 1);
    json_number(f, "peak_rss_mb", (double)ru.ru_maxrss / 1024.0, 0);
    fprintf(f, "}\n");
    return atomic_file_commit(&out, err);
}

