/* dptrain sbatch: a ready batch script for a job file: one rank per GPU (--gres=gpu:T:G with
 * --ntasks-per-node=G, never --gpus-per-task, which hides peer GPUs from NCCL), a signal before
 * the time limit, --requeue, srun (pmix) or mpirun, `fit --resume auto`, and a self-requeue when
 * dptrain exits with status 3 (checkpointed). Every value that reaches the shell is single-quoted;
 * #SBATCH values are restricted to safe characters. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "errors.h"
#include "jobfile.h"

static const char help[] =
    "usage: dptrain sbatch JOB [--site uva-gpupod|nersc-perlmutter] [--nodes N] [--gpus-per-node G]\n"
    "                      [--gpu-type T] [--partition P] [--constraint C] [--account A] [--time HH:MM:SS]\n"
    "                      [--cpus-per-task C] [--signal-minutes M] [--launcher srun|mpirun] [--module M]\n"
    "                      [--cpu --ranks-per-node R] [--run-dir DIR] [--set KEY=VALUE ...] [-o FILE] [--submit]\n"
    "\n"
    "Prints a batch script for JOB (or writes it with -o, or pipes it to sbatch with --submit). One rank\n"
    "per GPU: --gres=gpu:T:G and --ntasks-per-node=G. The script logs SLURM_RESTART_COUNT, loads the\n"
    "module, runs `dptrain fit JOB --resume auto` under srun --mpi=pmix (or mpirun), forwards the\n"
    "signal Slurm sends M minutes before the limit (USR1) so every rank checkpoints, and requeues itself\n"
    "when dptrain exits with 3. The Slurm job name is the job file's name (--set name=... changes it).\n"
    "Sites: uva-gpupod (-p gpu, 8 x a100 per node, -C gpupod), nersc-perlmutter (-C gpu, 4 GPUs per\n"
    "node, needs --account). Requests the site cannot meet (more GPUs per node than it has) are refused.\n";

struct site {
    const char *name, *partition, *gpu_type, *constraint;
    int gpus_per_node, cpus_per_task, needs_account;
};

static const struct site sites[] = {
    {"uva-gpupod", "gpu", "a100", "gpupod", 8, 4, 0},
    {"nersc-perlmutter", "", "", "gpu", 4, 32, 1},
    {"generic", "gpu", "", "", 8, 4, 0},
};

/* Prints s single-quoted for the shell: nothing inside is expanded. */
static void shell_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* #SBATCH values: letters, digits and ._-: (anything else becomes _), so no directive can be smuggled in. */
static void safe_value(char *out, size_t len, const char *in)
{
    size_t i = 0;
    for (; *in && i + 1 < len; in++)
        out[i++] = (isalnum((unsigned char)*in) || strchr("._-:", *in)) ? *in : '_';
    out[i] = 0;
}

static int valid_time(const char *t)
{
    int h, m, s;
    char extra;
    return sscanf(t, "%d:%d:%d%c", &h, &m, &s, &extra) == 3 && h >= 0 && m >= 0 && m < 60 && s >= 0 && s < 60;
}

int cmd_sbatch(int argc, char **argv)
{
    const char *job_path = NULL, *out = NULL, *site_name = "generic", *partition = NULL, *gpu_type = NULL;
    const char *constraint = NULL, *account = NULL, *time_limit = "02:00:00", *launcher = "srun", *module = "dptrain";
    const char *run_dir = NULL;
    int64_t nodes = 1, gpus = -1, cpus = -1, signal_minutes = 5, ranks_per_node = 1;
    int cpu = 0, submit = 0;
    const char **sets = NULL;
    int nsets = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(help, stdout);
            return 0;
        } else if (cli_collect_set(argc, argv, &i, &sets, &nsets)) {
        } else if (!strcmp(a, "--site")) site_name = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--nodes")) nodes = cli_int64(a, cli_value(argc, argv, &i, a), 1, 100000);
        else if (!strcmp(a, "--gpus-per-node")) gpus = cli_int64(a, cli_value(argc, argv, &i, a), 1, 64);
        else if (!strcmp(a, "--gpu-type")) gpu_type = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--partition")) partition = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--constraint")) constraint = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--account")) account = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--time")) time_limit = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--cpus-per-task")) cpus = cli_int64(a, cli_value(argc, argv, &i, a), 1, 1024);
        else if (!strcmp(a, "--signal-minutes")) signal_minutes = cli_int64(a, cli_value(argc, argv, &i, a), 1, 600);
        else if (!strcmp(a, "--launcher")) launcher = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--module")) module = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--run-dir")) run_dir = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--ranks-per-node")) ranks_per_node = cli_int64(a, cli_value(argc, argv, &i, a), 1, 1024);
        else if (!strcmp(a, "--cpu")) cpu = 1;
        else if (!strcmp(a, "-o")) out = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--submit")) submit = 1;
        else if (a[0] != '-' && !job_path) job_path = a;
        else cli_unknown("sbatch", a);
    }
    if (!job_path)
        dp_die(DP_EXIT_INPUT, "sbatch: no job file given (see 'dptrain sbatch --help')");
    const struct site *site = NULL;
    for (size_t k = 0; k < sizeof sites / sizeof sites[0]; k++)
        if (!strcmp(sites[k].name, site_name))
            site = &sites[k];
    if (!site)
        dp_die(DP_EXIT_INPUT, "--site %s: unknown site (known: uva-gpupod, nersc-perlmutter, generic)", site_name);
    if (!valid_time(time_limit))
        dp_die(DP_EXIT_INPUT, "--time %s: expected HH:MM:SS", time_limit);
    if (strcmp(launcher, "srun") && strcmp(launcher, "mpirun"))
        dp_die(DP_EXIT_INPUT, "--launcher %s: expected srun or mpirun", launcher);
    if (gpus < 0)
        gpus = site->gpus_per_node;
    if (!cpu && gpus > site->gpus_per_node)
        dp_die(DP_EXIT_INPUT, "--gpus-per-node %lld: site %s has %d GPUs per node", (long long)gpus, site->name,
               site->gpus_per_node);
    if (site->needs_account && !account)
        dp_die(DP_EXIT_INPUT, "site %s needs --account", site->name);
    struct job job; /* loaded to validate it (with the overrides) and for its name */
    struct dp_error err = {0};
    if (job_load(&job, job_path, sets, nsets, &err) != 0)
        dp_die_error(&err);

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    char v[512];
    int64_t tasks_per_node = cpu ? ranks_per_node : gpus;
    fprintf(f, "#!/bin/bash\n# Generated by dptrain %s sbatch for %s (site %s). One script serves the first run and every\n"
               "# requeue: dptrain fit --resume auto continues from RUN_DIR/last.h5 when it exists.\n",
            DPTRAIN_VERSION, job_path, site->name);
    safe_value(v, sizeof v, job.name);
    fprintf(f, "#SBATCH --job-name=%s\n", v);
    safe_value(v, sizeof v, partition ? partition : site->partition);
    if (v[0])
        fprintf(f, "#SBATCH --partition=%s\n", v);
    if (account) {
        safe_value(v, sizeof v, account);
        fprintf(f, "#SBATCH --account=%s\n", v);
    }
    fprintf(f, "#SBATCH --nodes=%lld\n#SBATCH --ntasks-per-node=%lld\n", (long long)nodes, (long long)tasks_per_node);
    if (!cpu) {
        safe_value(v, sizeof v, gpu_type ? gpu_type : site->gpu_type);
        if (v[0])
            fprintf(f, "#SBATCH --gres=gpu:%s:%lld\n", v, (long long)gpus);
        else
            fprintf(f, "#SBATCH --gres=gpu:%lld\n", (long long)gpus);
    }
    safe_value(v, sizeof v, constraint ? constraint : (cpu ? "" : site->constraint));
    if (v[0])
        fprintf(f, "#SBATCH --constraint=%s\n", v);
    fprintf(f, "#SBATCH --cpus-per-task=%lld\n#SBATCH --time=%s\n#SBATCH --signal=B:USR1@%lld\n#SBATCH --requeue\n",
            (long long)(cpus > 0 ? cpus : site->cpus_per_task), time_limit, (long long)signal_minutes * 60);
    fprintf(f, "#SBATCH --output=%%x-%%j.out\n#SBATCH --error=%%x-%%j.err\n\nset -u\n");
    fprintf(f, "JOB=");
    shell_quote(f, job_path);
    fprintf(f, "\nRUN_DIR=");
    char default_dir[1024];
    snprintf(default_dir, sizeof default_dir, "runs/%s", job.name);
    shell_quote(f, run_dir ? run_dir : default_dir);
    fprintf(f, "\nMODULE=");
    shell_quote(f, module);
    fprintf(f, "\nSETS=(");
    for (int i = 0; i < nsets; i++) {
        fprintf(f, "%s--set ", i ? " " : "");
        shell_quote(f, sets[i]);
    }
    fprintf(f, ")\n\n");
    fprintf(f, "echo \"dptrain: Slurm job ${SLURM_JOB_ID:-?} restart ${SLURM_RESTART_COUNT:-0} on ${SLURM_JOB_NODELIST:-?}\"\n"
               "if command -v module >/dev/null 2>&1; then module load \"$MODULE\" || exit 1; fi\n");
    if (!strcmp(launcher, "srun"))
        fprintf(f, "srun --mpi=pmix dptrain fit \"$JOB\" --run-dir \"$RUN_DIR\" --resume auto \"${SETS[@]}\" &\n");
    else
        fprintf(f, "mpirun -np \"$SLURM_NTASKS\" --map-by ppr:%lld:node dptrain fit \"$JOB\" --run-dir \"$RUN_DIR\" "
                   "--resume auto \"${SETS[@]}\" &\n", (long long)tasks_per_node);
    fprintf(f, "pid=$!\n"
               "# The signal before the time limit (and a TERM) goes on to the ranks: each finishes its step,\n"
               "# rank 0 writes last.h5, and dptrain exits 3.\n"
               "trap 'kill -USR1 \"$pid\" 2>/dev/null' USR1 TERM\n"
               "# A trapped signal ends `wait` early (status > 128): wait until dptrain itself has ended.\n"
               "while kill -0 \"$pid\" 2>/dev/null; do wait \"$pid\"; done\n"
               "wait \"$pid\"; rc=$?\n"
               "if [ \"$rc\" -eq 3 ]; then\n"
               "  echo \"dptrain: checkpointed; requeueing job ${SLURM_JOB_ID:-?}\"\n"
               "  scontrol requeue \"$SLURM_JOB_ID\"\n"
               "fi\n"
               "exit \"$rc\"\n");
    fclose(f);
    if (submit) {
        FILE *p = popen("sbatch", "w");
        if (!p)
            dp_die(DP_EXIT_INTERNAL, "cannot run sbatch");
        fwrite(buf, 1, len, p);
        int rc = pclose(p);
        if (rc != 0)
            dp_die(DP_EXIT_INPUT, "sbatch refused the script (exit %d)", WEXITSTATUS(rc));
    } else if (out) {
        FILE *o = fopen(out, "w");
        if (!o || fwrite(buf, 1, len, o) != len || fclose(o) != 0)
            dp_die(DP_EXIT_INPUT, "%s: cannot write", out);
        printf("%s: batch script for %s\n", out, job_path);
    } else {
        fwrite(buf, 1, len, stdout);
    }
    free(buf);
    free(sets);
    job_free(&job);
    return 0;
}
