#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_out.h"
#include "cmd/cli.h"
#include "dist/backend_select.h"
#include "train/train_step.h"
#include "train/evaluator.h"
#include "base/rng.h"
#include "base/timeutil.h"
#include "train/trainer.h"

static const char help[] =
    "usage: dptrain bench JOB [--steps N] [--warmup-seconds S] [--device cpu|cuda|auto] [--profile]\n"
    "                         [--set KEY=VALUE ...]\n"
    "\n"
    "Times full training steps (forward, loss, backward, optimizer) of JOB's model at\n"
    "fit.batch_size on random data already in memory, after a warm-up, the way\n"
    "torch_reference.py speed measures PyTorch. Prints one JSON line with ms_per_step and\n"
    "samples_per_s. The input shape comes from the job's data (file or synthetic).\n"
    "\n"
    "  --profile   then run the steps again (at most 50) with each part timed alone: every\n"
    "              layer's forward and backward, the input upload, the loss, the optimizer,\n"
    "              the device synchronized around each (no CUDA graph, no overlap), and print\n"
    "              a table of milliseconds per step after the JSON line\n";

/* Milliseconds per step of each part; `step` is the step as timed without the profile (seconds). */
static void print_profile(const struct step_profile *p, const struct model *m, double step)
{
    const double per = 1e3 / (double)p->steps;
    double sum = p->upload + p->loss + p->optimizer;
    printf("Where a step's time goes (%lld steps, each part alone: the device synchronized around it)\n",
           (long long)p->steps);
    printf("%-32s %12s %12s\n", "part", "forward ms", "backward ms");
    for (int i = 0; i < m->nlayers; i++) {
        printf("%-32s %12.4f %12.4f\n", m->layers[i].name, p->forward[i] * per, p->backward[i] * per);
        sum += p->forward[i] + p->backward[i];
    }
    printf("%-32s %12.4f\n", "input upload", p->upload * per);
    printf("%-32s %12.4f\n", "loss (forward and gradient)", p->loss * per);
    printf("%-32s %12.4f\n", "optimizer", p->optimizer * per);
    printf("%-32s %12.4f   (the step timed as it runs: %.4f ms)\n", "sum of the parts", sum * per, step * 1e3);
}

struct bench_options {
    const char *job_path, *device;
    const char **sets;
    int nsets, profile;
    int64_t steps;
    double warmup;
};

/* 1 when --help was asked (and printed) */
static int parse_bench_options(int argc, char **argv, struct bench_options *o)
{
    *o = (struct bench_options){NULL, "auto", NULL, 0, 0, 50, 2.0};
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 1;
        } else if (cli_collect_set(argc, argv, &i, &o->sets, &o->nsets)) {
        } else if (!strcmp(argv[i], "--device")) {
            o->device = cli_value(argc, argv, &i, "--device");
        } else if (!strcmp(argv[i], "--steps")) {
            o->steps = cli_int64("--steps", cli_value(argc, argv, &i, "--steps"), 1, 1000000);
        } else if (!strcmp(argv[i], "--profile")) {
            o->profile = 1;
        } else if (!strcmp(argv[i], "--warmup-seconds")) {
            o->warmup = cli_double("--warmup-seconds", cli_value(argc, argv, &i, "--warmup-seconds"), 0, 3600);
        } else if (argv[i][0] != '-' && !o->job_path) {
            o->job_path = argv[i];
        } else {
            cli_unknown("bench", argv[i]);
        }
    }
    if (!o->job_path)
        dp_die(DP_EXIT_INPUT, "bench: no job file given");
    return 0;
}

/* A pool of random batches, as the PyTorch reference uses. */
enum { POOL = 8 };
static void fill_pool(struct host_batch pool[POOL], const struct backend *be, const struct model *m,
                      const struct target_mode *tm, int64_t batch)
{
    int64_t k = tm->k;
    for (int p = 0; p < POOL; p++) {
        host_batch_alloc_pinned(&pool[p], be, batch, m->input_size, k, tm->want_labels);
        pool[p].rows = batch;
        rng_uniform_fill(pool[p].x, (uint64_t)(batch * m->input_size), 99, RNG_DOMAIN_SYNTH_X, (uint32_t)p, 0);
        for (int64_t r = 0; r < batch; r++) {
            pool[p].sample_ids[r] = p * batch + r;
            uint32_t w[4];
            rng_block(w, 99, RNG_DOMAIN_SYNTH_Y, (uint32_t)p, (uint64_t)r);
            if (tm->want_labels)
                pool[p].labels[r] = (int32_t)(w[0] % (uint32_t)k);
            else
                for (int64_t j = 0; j < k; j++)
                    pool[p].values[r * k + j] = tm->classes ? (float)(w[j & 3] % 2) : rng_u32_to_unit_float(w[j & 3]);
        }
    }
}

/* Seconds per step: the steps run exactly as fit runs them (train_step: queued uploads, no waiting
 * between steps, CUDA graphs on a GPU), timed after the warm-up, until the device has finished.
 * *iteration counts every step run. */
static double timed_steps(struct train_step *ts, struct host_batch pool[POOL], const struct bench_options *o,
                          int64_t *iteration)
{
    const struct backend *be = ts->be;
    int graph_reported = 0;
    double t0 = 0, t_start = time_now();
    int64_t measured = -1;
    for (;;) {
        if (measured < 0 && (time_now() - t_start >= o->warmup && *iteration >= 3)) {
            be->synchronize();
            measured = 0;
            t0 = time_now();
        }
        if (measured >= o->steps)
            break;
        int slot = (int)(*iteration & 1);
        be->host_fence_wait(slot); /* the step scalars staged two steps ago have been copied */
        be->zero(ts->db->acc, LOSS_ACC_COUNT * sizeof(double));
        train_step_run(ts, &pool[*iteration % POOL], slot, 0, ts->batch, ts->batch, *iteration);
        if (!graph_reported && ts->graph) {
            fprintf(stderr, "dptrain bench: the step is replayed as a CUDA graph from step %lld\n", (long long)*iteration);
            graph_reported = 1;
        }
        ++*iteration;
        if (measured >= 0)
            measured++;
    }
    be->synchronize();
    return (time_now() - t0) / (double)o->steps;
}

static void print_result(const struct job *job, const struct backend *be, const char *precision, int64_t batch,
                         int64_t steps, double dt)
{
    json_t *o = json_object();
    json_object_set_new(o, "mode", json_str("speed"));
    json_object_set_new(o, "workload", json_str(job->name));
    json_object_set_new(o, "tool", json_str("dptrain"));
    json_object_set_new(o, "device", json_str(be->name));
    json_object_set_new(o, "precision", json_str(precision));
    json_object_set_new(o, "batch", json_integer(batch));
    json_object_set_new(o, "threads", json_integer(omp_get_max_threads()));
    json_object_set_new(o, "steps", json_integer(steps));
    json_object_set_new(o, "ms_per_step", json_num(dt * 1e3));
    json_object_set_new(o, "samples_per_s", json_num((double)batch / dt));
    if (!be->is_device) {
        char libs[600];
        backend_cpu_libraries(libs, sizeof libs);
        json_object_set_new(o, "libraries", json_str(libs));
    }
    json_write_object(stdout, o, 0);
    json_decref(o);
}

/* --profile: up to 50 more steps, each layer's forward and backward timed alone. */
static void profile_steps(struct train_step *ts, struct host_batch pool[POOL], int64_t steps, int64_t iteration,
                          double dt)
{
    struct model *m = ts->m;
    struct step_profile prof = {dp_calloc((size_t)m->nlayers, sizeof(double), "a profile"),
                                dp_calloc((size_t)m->nlayers, sizeof(double), "a profile")};
    ts->profile = &prof;
    for (int64_t s = 0; s < (steps < 50 ? steps : 50); s++, iteration++) {
        ts->be->zero(ts->db->acc, LOSS_ACC_COUNT * sizeof(double));
        train_step_run(ts, &pool[iteration % POOL], (int)(iteration & 1), 0, ts->batch, ts->batch, iteration);
    }
    ts->be->synchronize();
    print_profile(&prof, m, dt);
    ts->profile = NULL;
    free(prof.forward);
    free(prof.backward);
}

int cmd_bench(int argc, char **argv)
{
    struct bench_options o;
    if (parse_bench_options(argc, argv, &o))
        return 0;
    struct job job;
    struct dp_error err = {0};
    cli_load_job(o.job_path, o.sets, o.nsets, &job);
    struct row_source src;
    struct model m;
    struct target_mode tm;
    if (job_open_model(&job, "train", &src, &m, &tm, &err) != 0)
        dp_die_error(&err);
    const struct backend *be = backend_select(o.device, 0, &err);
    if (!be)
        dp_die_error(&err);
    const char *precision = be->set_precision(precision_code(job.fit.precision));
    int64_t batch = job.fit.batch_size;
    model_allocate(&m, be, batch);
    model_init_weights(&m, job.fit.seed);
    struct host_batch pool[POOL];
    fill_pool(pool, be, &m, &tm, batch);
    struct device_batch db;
    device_batch_alloc(&db, be, batch, tm.k);
    int nstate = optimizer_state_arrays(&job.fit.optimizer);
    float *state[OPTIMIZER_MAX_STATE] = {NULL, NULL, NULL};
    for (int i = 0; i < nstate; i++)
        state[i] = be->alloc(m.arena_floats * sizeof(float), "optimizer state");
    struct train_step ts = {.be = be, .m = &m, .db = &db, .opt_state = {state[0], state[1], state[2]},
                            .optimizer = &job.fit.optimizer, .lp = job_loss_params(&job, &m), .k = tm.k,
                            .seed = job.fit.seed, .batch = batch, .allreduce = NULL};
    int64_t iteration = 0;
    double dt = timed_steps(&ts, pool, &o, &iteration);
    print_result(&job, be, precision, batch, o.steps, dt);
    if (o.profile)
        profile_steps(&ts, pool, o.steps, iteration, dt);
    train_step_free(&ts);
    for (int p = 0; p < POOL; p++)
        host_batch_free_pinned(&pool[p], be);
    for (int i = 0; i < nstate; i++)
        be->free(state[i]);
    device_batch_free(&db, be);
    model_free(&m);
    row_source_close(&src);
    job_free(&job);
    return 0;
}
