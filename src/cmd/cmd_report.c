/* dptrain report scaling: speed-up and efficiency of a sweep of runs at several rank counts, from
 * their summary.json files, as a table (stdout, Markdown, CSV) and a gnuplot PNG, plus an optional
 * projection to more GPUs from a ring all-reduce model. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>
#include <sys/wait.h>
#include <jansson.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "base/gnuplot.h"
#include "train/history_plot.h"
#include "cmd/cli.h"
#include "base/errors.h"

static const char help[] =
    "usage: dptrain report scaling RUN_DIR|summary.json ... [-o OUT_DIR] [--project P,P,...]\n"
    "                      [--compute-seconds S] [--gpus-per-node G] [--nvlink-gbs B] [--ib-gbs B]\n"
    "                      [--latency-us L] [--mode strong|weak]\n"
    "\n"
    "Reads each run's summary.json (steady-state figures: the first steps are left out, as the file\n"
    "says) and prints ranks, samples/s, speed-up, efficiency and the compute / all-reduce / data-wait\n"
    "shares of step time; writes OUT_DIR/scaling.md, scaling.csv and scaling.png (gnuplot).\n"
    "Strong scaling (same global batch in every run): efficiency = T(1) / (P * T(P)), T the step time.\n"
    "Weak scaling (same per-rank batch): efficiency = X(P) / (P * X(1)), X the samples per second.\n"
    "A 1-rank run is the baseline. Runs of different jobs or models are refused. --mode says which\n"
    "kind a single run (or an ambiguous sweep) is projected as.\n"
    "\n"
    "--project P,...  predicts step time and efficiency at P GPUs: compute T_c (measured on the 1-rank\n"
    "run, or --compute-seconds) split over P ranks (strong) or kept (weak), plus a ring all-reduce of\n"
    "the gradient bytes: 2(P-1)/P * bytes / bandwidth + 2(P-1) * latency, at NVLink bandwidth within a\n"
    "node (P <= G) and InfiniBand bandwidth across nodes. Shown without overlap (T_c + T_ar) and with\n"
    "full overlap of all-reduce and backward (max(T_c, T_ar)). Defaults: G 8, NVLink 150 GB/s, IB\n"
    "(HDR, 200 Gb/s) 20 GB/s of all-reduce bus bandwidth, latency 10 us.\n";

struct run {
    char path[4096];
    char name[256], model[2048], device[32];
    double ranks, global_batch, per_rank_batch, gradient_bytes;
    double step, sps, compute, allreduce, data, skipped;
};

/* Any JSON dptrain wrote, whatever its formatting since (re-indented, reordered). */
static double json_number(json_t *o, const char *key, const char *path)
{
    json_t *v = json_object_get(o, key);
    json_t *steady = json_object_get(o, "steady_steps"), *skipped = json_object_get(o, "steady_steps_skipped");
    if (!json_is_number(v) && !strncmp(key, "steady_", 7) && json_is_integer(steady) && json_integer_value(steady) == 0)
        dp_die(DP_EXIT_INPUT, "%s: the run was too short for steady-state figures: the first %lld steps are left out "
               "and none came after them (train at least %lld steps, e.g. tools/scaling-sweep --steps 50)", path,
               (long long)json_integer_value(skipped), (long long)json_integer_value(skipped) + 20);
    if (!json_is_number(v))
        dp_die(DP_EXIT_INPUT, "%s: no number \"%s\" (a summary.json of dptrain %s or later is needed)", path, key,
               DPTRAIN_VERSION);
    return json_number_value(v);
}

static void json_text(json_t *o, const char *key, char *out, size_t len, const char *path)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        dp_die(DP_EXIT_INPUT, "%s: no string \"%s\"", path, key);
    snprintf(out, len, "%s", json_string_value(v));
}

static void read_run(struct run *r, const char *arg)
{
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
        snprintf(r->path, sizeof r->path, "%s/summary.json", arg);
    else
        snprintf(r->path, sizeof r->path, "%s", arg);
    if (access(r->path, R_OK) != 0) {
        int e = errno;
        /* runs/x/metrics.json and the like: the figures are in summary.json beside it */
        char *dir = dp_strdup(r->path), beside[4200];
        snprintf(beside, sizeof beside, "%s/summary.json", dirname(dir));
        free(dir);
        if (strcmp(beside, r->path) && access(beside, R_OK) == 0)
            dp_die(DP_EXIT_INPUT, "%s: cannot read: %s (a run's figures are in %s: give it, or the run dir)", r->path,
                   strerror(e), beside);
        dp_die(DP_EXIT_INPUT, "%s: cannot read: %s", r->path, strerror(e));
    }
    json_error_t jerr;
    json_t *t = json_load_file(r->path, JSON_REJECT_DUPLICATES, &jerr);
    if (!t)
        dp_die(DP_EXIT_INPUT, "%s:%d: not JSON: %s", r->path, jerr.line, jerr.text);
    if (!json_is_object(t))
        dp_die(DP_EXIT_INPUT, "%s: not a JSON object (a dptrain summary.json)", r->path);
    json_text(t, "name", r->name, sizeof r->name, r->path);
    json_text(t, "model", r->model, sizeof r->model, r->path);
    json_text(t, "device", r->device, sizeof r->device, r->path);
    r->ranks = json_number(t, "ranks", r->path);
    r->global_batch = json_number(t, "global_batch", r->path);
    r->per_rank_batch = json_number(t, "per_rank_batch", r->path);
    r->gradient_bytes = json_number(t, "gradient_bytes", r->path);
    r->step = json_number(t, "steady_step_seconds", r->path);
    r->sps = json_number(t, "steady_samples_per_second", r->path);
    r->compute = json_number(t, "steady_compute_seconds", r->path);
    r->allreduce = json_number(t, "steady_allreduce_seconds", r->path);
    r->data = json_number(t, "steady_data_seconds", r->path);
    r->skipped = json_number(t, "steady_steps_skipped", r->path);
    json_decref(t);
}

static int by_ranks(const void *a, const void *b)
{
    double d = ((const struct run *)a)->ranks - ((const struct run *)b)->ranks;
    return d < 0 ? -1 : d > 0;
}

static double ring_allreduce(double bytes, int p, int per_node, double nvlink, double ib, double latency)
{
    if (p <= 1)
        return 0.0;
    double bw = p <= per_node ? nvlink : ib;
    return 2.0 * (p - 1) / p * bytes / bw + 2.0 * (p - 1) * latency;
}

struct report_options {
    const char *out_dir, *project, *force_mode;
    double compute_override, nvlink, ib, latency;
    int per_node;
    struct run *runs;
    int n;
};

/* The options and the runs; 1 when --help was asked (and printed). */
static int parse_report_options(int argc, char **argv, struct report_options *o)
{
    *o = (struct report_options){"scaling-report", NULL, NULL, 0, 150e9, 20e9, 10e-6, 8, NULL, 0};
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 1;
        } else if (!strcmp(argv[i], "-o")) {
            o->out_dir = cli_value(argc, argv, &i, "-o");
        } else if (!strcmp(argv[i], "--project")) {
            o->project = cli_value(argc, argv, &i, "--project");
        } else if (!strcmp(argv[i], "--mode")) {
            o->force_mode = cli_value(argc, argv, &i, "--mode");
            if (strcmp(o->force_mode, "strong") && strcmp(o->force_mode, "weak"))
                dp_die(DP_EXIT_INPUT, "--mode: expected strong or weak, got '%s'", o->force_mode);
        } else if (!strcmp(argv[i], "--compute-seconds")) {
            o->compute_override = cli_double("--compute-seconds", cli_value(argc, argv, &i, "--compute-seconds"), 1e-9, 1e6);
        } else if (!strcmp(argv[i], "--gpus-per-node")) {
            o->per_node = (int)cli_int64("--gpus-per-node", cli_value(argc, argv, &i, "--gpus-per-node"), 1, 1024);
        } else if (!strcmp(argv[i], "--nvlink-gbs")) {
            o->nvlink = 1e9 * cli_double("--nvlink-gbs", cli_value(argc, argv, &i, "--nvlink-gbs"), 1e-3, 1e6);
        } else if (!strcmp(argv[i], "--ib-gbs")) {
            o->ib = 1e9 * cli_double("--ib-gbs", cli_value(argc, argv, &i, "--ib-gbs"), 1e-3, 1e6);
        } else if (!strcmp(argv[i], "--latency-us")) {
            o->latency = 1e-6 * cli_double("--latency-us", cli_value(argc, argv, &i, "--latency-us"), 0, 1e6);
        } else if (argv[i][0] != '-') {
            o->runs = dp_realloc(o->runs, (size_t)(o->n + 1) * sizeof *o->runs, "runs");
            read_run(&o->runs[o->n++], argv[i]);
        } else {
            cli_unknown("report scaling", argv[i]);
        }
    }
    if (o->n < 1)
        dp_die(DP_EXIT_INPUT, "report scaling: no run dirs given (see 'dptrain report scaling --help')");
    return 0;
}

/* The runs sorted by ranks, of one job and model, from a 1-rank baseline, keeping the global
 * batch (strong scaling: returns 1) or the per-rank batch (weak: 0) fixed. */
static int check_runs(const struct report_options *o)
{
    struct run *runs = o->runs;
    int n = o->n;
    qsort(runs, (size_t)n, sizeof *runs, by_ranks);
    for (int i = 1; i < n; i++) {
        if (strcmp(runs[i].name, runs[0].name) || strcmp(runs[i].model, runs[0].model) ||
            runs[i].gradient_bytes != runs[0].gradient_bytes)
            dp_die(DP_EXIT_INPUT, "%s and %s are runs of different jobs or models (%s: %s vs %s: %s); not mixing them",
                   runs[0].path, runs[i].path, runs[0].name, runs[0].model, runs[i].name, runs[i].model);
        if (runs[i].ranks == runs[i - 1].ranks)
            dp_die(DP_EXIT_INPUT, "%s and %s both ran on %g ranks", runs[i - 1].path, runs[i].path, runs[i].ranks);
    }
    int strong = 1, weak = 1;
    for (int i = 1; i < n; i++) {
        strong &= runs[i].global_batch == runs[0].global_batch;
        weak &= fabs(runs[i].per_rank_batch - runs[0].per_rank_batch) < 1e-9;
    }
    if (n > 1 && !strong && !weak)
        dp_die(DP_EXIT_INPUT, "the runs keep neither the global batch (strong scaling) nor the per-rank batch (weak "
               "scaling) fixed");
    if (runs[0].ranks != 1)
        dp_die(DP_EXIT_INPUT, "the sweep needs a 1-rank run as its baseline (smallest here: %g ranks in %s)",
               runs[0].ranks, runs[0].path);
    if (!o->force_mode)
        return strong;
    int want_strong = !strcmp(o->force_mode, "strong");
    if (n > 1 && !(want_strong ? strong : weak))
        dp_die(DP_EXIT_INPUT, "--mode %s: these runs do not keep the %s batch fixed", o->force_mode,
               want_strong ? "global" : "per-rank");
    return want_strong;
}

/* The measured table: stdout, scaling.md, scaling.csv, and scaling.dat for the plot. */
static void write_table(const struct report_options *o, int strong, FILE *csv, FILE *md, FILE *dat)
{
    const struct run *runs = o->runs;
    fprintf(csv, "ranks,samples_per_second,step_seconds,speedup,efficiency,compute_share,allreduce_share,data_share\n");
    char head[512];
    snprintf(head, sizeof head, "%s scaling of %s (%s; global batch %g%s; steady state, first %g steps left out)",
             strong ? "strong" : "weak", runs[0].name, runs[0].device, runs[0].global_batch, strong ? "" : " at 1 rank",
             runs[0].skipped);
    printf("%s\n", head);
    fprintf(md, "%s\n\n", head);
    const char *cols = "| ranks | samples/s | step ms | speed-up | efficiency | compute | all-reduce | data wait |";
    printf("%s\n", cols);
    fprintf(md, "%s\n|------:|----------:|--------:|---------:|-----------:|--------:|-----------:|----------:|\n", cols);
    for (int i = 0; i < o->n; i++) {
        const struct run *r = &runs[i];
        double speedup = strong ? runs[0].step / r->step : r->sps / runs[0].sps;
        double eff = strong ? runs[0].step / (r->ranks * r->step) : r->sps / (r->ranks * runs[0].sps);
        double total = r->compute + r->allreduce + r->data;
        double sc = total > 0 ? r->compute / total : 0, sa = total > 0 ? r->allreduce / total : 0,
               sd = total > 0 ? r->data / total : 0;
        char line[512];
        snprintf(line, sizeof line, "| %5g | %9.0f | %7.3f | %7.2fx | %9.1f%% | %6.1f%% | %9.1f%% | %8.1f%% |", r->ranks,
                 r->sps, r->step * 1e3, speedup, 100 * eff, 100 * sc, 100 * sa, 100 * sd);
        printf("%s\n", line);
        fprintf(md, "%s\n", line);
        fprintf(csv, "%g,%.17g,%.17g,%.17g,%.17g,%.6f,%.6f,%.6f\n", r->ranks, r->sps, r->step, speedup, eff, sc, sa, sd);
        fprintf(dat, "%g %.9g %.9g\n", r->ranks, speedup, eff);
    }
}

/* --project: step time and efficiency at P GPUs from the 1-rank compute time and a ring all-reduce. */
static void write_projection(const struct report_options *o, int strong, FILE *md)
{
    const struct run *runs = o->runs;
    double tc = o->compute_override > 0 ? o->compute_override : runs[0].step;
    double bytes = runs[0].gradient_bytes;
    char head[512];
    snprintf(head, sizeof head, "\nprojection (%s scaling): T_c %.4g ms per step at 1 GPU%s, %.3g MB of gradients, "
             "%d GPUs per node, NVLink %.0f GB/s, InfiniBand %.0f GB/s, latency %.0f us",
             strong ? "strong" : "weak", tc * 1e3, o->compute_override > 0 ? " (given)" : " (measured)", bytes / 1e6,
             o->per_node, o->nvlink / 1e9, o->ib / 1e9, o->latency * 1e6);
    printf("%s\n", head);
    fprintf(md, "%s\n\n", head);
    const char *pcols = "| GPUs | all-reduce ms | step ms (no overlap) | efficiency | step ms (overlap) | efficiency | measured |";
    printf("%s\n", pcols);
    fprintf(md, "%s\n|-----:|--------------:|---------------------:|-----------:|------------------:|-----------:|---------:|\n", pcols);
    char *list = dp_strdup(o->project);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int p = (int)cli_int64("--project", tok, 1, 1 << 20);
        double ar = ring_allreduce(bytes, p, o->per_node, o->nvlink, o->ib, o->latency);
        double comp = strong ? tc / p : tc;
        double t0 = comp + ar, t1 = fmax(comp, ar);
        double e0 = strong ? tc / (p * t0) : tc / t0, e1 = strong ? tc / (p * t1) : tc / t1;
        char measured[32] = "";
        for (int i = 0; i < o->n; i++)
            if (runs[i].ranks == p)
                snprintf(measured, sizeof measured, "%.1f%%",
                         100 * (strong ? runs[0].step / (p * runs[i].step) : runs[i].sps / (p * runs[0].sps)));
        char line[512];
        snprintf(line, sizeof line, "| %4d | %13.3f | %20.3f | %9.1f%% | %17.3f | %9.1f%% | %8s |", p, ar * 1e3,
                 t0 * 1e3, 100 * e0, t1 * 1e3, 100 * e1, measured);
        printf("%s\n", line);
        fprintf(md, "%s\n", line);
    }
    free(list);
}

/* The plot: speed-up and efficiency against ranks, with the ideal lines (gnuplot, when there). */
static void plot(const char *out_dir, const char *mode, const char *name)
{
    pid_t pid = -1;
    FILE *gp = gnuplot_start(out_dir, &pid);
    int ok = 0;
    if (gp) {
        char title[256];
        gnuplot_title(title, sizeof title, name);
        fprintf(gp, "set terminal pngcairo size 900,420 noenhanced\nset output 'scaling.png'\n"
                    "set multiplot layout 1,2 title '%s scaling: %s'\nset grid\nset key left top\n"
                    "set xlabel 'ranks'\nset ylabel 'speed-up'\n"
                    "plot 'scaling.dat' using 1:2 with linespoints lw 2 pt 7 title 'measured', x with lines dt 2 title 'ideal'\n"
                    "set ylabel 'efficiency'\nset yrange [0:1.2]\nset key right top\n"
                    "plot 'scaling.dat' using 1:3 with linespoints lw 2 pt 7 title 'measured', 1 with lines dt 2 title 'ideal'\n"
                    "unset multiplot\n", mode, title);
        ok = gnuplot_finish(gp, pid, out_dir) == 0;
    }
    if (ok)
        printf("wrote %s/scaling.md, scaling.csv, scaling.png\n", out_dir);
    else
        dp_warn("gnuplot failed or is missing (Debian: gnuplot-nox); wrote %s/scaling.md and scaling.csv, no PNG "
                "(see %s/gnuplot.log)", out_dir, out_dir);
}

static int report_scaling(int argc, char **argv)
{
    struct report_options o;
    if (parse_report_options(argc, argv, &o))
        return 0;
    int strong = check_runs(&o);
    if (mkdir(o.out_dir, 0777) != 0 && errno != EEXIST)
        dp_die(DP_EXIT_INPUT, "%s: cannot create: %s", o.out_dir, strerror(errno));
    static const char *const names[] = {"scaling.csv", "scaling.md", "scaling.dat"};
    struct atomic_file files[3];
    struct dp_error err = {0};
    for (int i = 0; i < 3; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", o.out_dir, names[i]);
        if (atomic_file_open(&files[i], path, &err) != 0)
            dp_die(DP_EXIT_INPUT, "%s", err.msg);
    }
    write_table(&o, strong, files[0].f, files[1].f, files[2].f);
    if (o.project)
        write_projection(&o, strong, files[1].f);
    for (int i = 0; i < 3; i++)
        if (atomic_file_commit(&files[i], &err) != 0)
            dp_die_error(&err);
    plot(o.out_dir, strong ? "strong" : "weak", o.runs[0].name);
    free(o.runs);
    return 0;
}

static const char history_help[] =
    "usage: dptrain report history RUN_DIR... [-o FILE.png]\n"
    "\n"
    "Draws the learning curves of one or more runs from their history.csv: loss and val_loss, the\n"
    "metric and its val_ counterpart against the epoch, and the learning rate when it changed (one\n"
    "colour per run; validation dashed). Writes FILE.png (default: RUN_DIR/curves.png for one run,\n"
    "curves.png here for several) with gnuplot (Debian: gnuplot-nox). fit draws RUN_DIR/curves.png\n"
    "at the end itself.\n";

static int report_history(int argc, char **argv)
{
    const char *out = NULL;
    char **runs = dp_calloc((size_t)argc, sizeof(char *), "run directories");
    int nruns = 0;
    for (int i = 2; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(history_help, stdout);
            free(runs);
            return 0;
        } else if (!strcmp(argv[i], "-o") || !strcmp(argv[i], "--output")) {
            out = cli_value(argc, argv, &i, "-o");
        } else if (argv[i][0] != '-') {
            runs[nruns++] = argv[i];
        } else {
            cli_unknown("report history", argv[i]);
        }
    }
    if (nruns == 0)
        dp_die(DP_EXIT_INPUT, "report history: needs one or more RUN_DIRs (see 'dptrain report history --help')");
    char png[4200];
    snprintf(png, sizeof png, "%s", out ? out : "");
    if (!out && nruns == 1)
        snprintf(png, sizeof png, "%s/curves.png", runs[0]);
    else if (!out)
        snprintf(png, sizeof png, "curves.png");
    struct dp_error err = {0};
    if (strlen(png) < 5 || strcmp(png + strlen(png) - 4, ".png"))
        dp_die(DP_EXIT_INPUT, "report history: -o %s: the plot is a PNG (name it FILE.png)", png);
    if (file_check_output(png, &err) != 0)
        dp_die_error(&err);
    int rc = history_plot(runs, nruns, png, &err);
    if (rc < 0)
        dp_die_error(&err);
    free(runs);
    if (rc > 0)
        dp_die(DP_EXIT_INTERNAL, "report history: gnuplot failed or is missing (Debian: gnuplot-nox; see gnuplot.log "
               "beside %s)", png);
    printf("wrote %s\n", png);
    return 0;
}

int cmd_report(int argc, char **argv)
{
    if (argc < 2)
        dp_die(DP_EXIT_INPUT, "report: which report? (known: scaling, history; see 'dptrain report --help')");
    if (cli_is_help(argv[1])) {
        fputs(help, stdout);
        fputs("\n", stdout);
        fputs(history_help, stdout);
        return 0;
    }
    if (!strcmp(argv[1], "history"))
        return report_history(argc, argv);
    if (strcmp(argv[1], "scaling"))
        dp_die(DP_EXIT_INPUT, "report: unknown report '%s' (known: scaling, history)", argv[1]);
    return report_scaling(argc, argv);
}
