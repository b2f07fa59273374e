/* dptrain sbatch: a ready batch script for a job file: one rank per GPU (--gres=gpu:T:G with
 * --ntasks-per-node=G, never --gpus-per-task, which hides peer GPUs from NCCL), a signal before
 * the time limit, --requeue, srun (pmix) or mpirun, `fit --resume auto`, and a self-requeue when
 * dptrain exits with status 3 (checkpointed) or 5 (a rank was lost). Every value that reaches the
 * shell is single-quoted; #SBATCH values are restricted to safe characters. With --generic, the script takes the job file
 * as its first argument instead (jobs/dptrain.sbatch). With --sweep, it is a job array with one
 * task per rank count (scaling sweeps, see tools/scaling-sweep). */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "base/file_checks.h"
#include "cmd/cli.h"
#include "base/errors.h"
#include "job/jobfile.h"
#include "slurm/sbatch_site.h"

extern char **environ;

static const char help[] =
    "usage: dptrain sbatch JOB [--site NAME|FILE] [--nodes N] [--gpus-per-node G] [--gpu-type T]\n"
    "                      [--partition P] [--constraint C] [--account A] [--time T] [--cpus-per-task C]\n"
    "                      [--signal USR1|USR2|TERM|INT] [--signal-minutes M] [--launcher srun|mpirun]\n"
    "                      [--mpi TYPE] [--module M] [--cpu [--ranks-per-node R]] [--run-dir DIR]\n"
    "                      [--sweep R1,R2,... [--sweep-mode strong|weak] [--steps N]]\n"
    "                      [--set KEY=VALUE ...] [-o FILE | --submit]\n"
    "       dptrain sbatch --generic [options]      (the script takes JOB as its first argument)\n"
    "\n"
    "Prints a batch script for JOB (or writes it with -o, or pipes it to sbatch with --submit).\n"
    "One rank per GPU: --gres=gpu:T:G with --ntasks-per-node=G (not --gpus-per-task, which hides the\n"
    "peer GPUs from NCCL). The script logs SLURM_RESTART_COUNT, loads the module (--module '' for\n"
    "none), runs `dptrain fit JOB --resume auto` under srun --mpi=TYPE (default pmix) or mpirun, passes\n"
    "the signal Slurm sends M minutes before the limit (USR1 by default; TERM always) on to every rank\n"
    "so each checkpoints at its next step, and requeues itself when dptrain exits with 3 (checkpointed)\n"
    "or 5 (a rank was lost: its node or link went away; at most 5 restarts).\n"
    "The Slurm job name is the job file's name (--set name=... changes it). --time takes Slurm's\n"
    "forms: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS.\n"
    "Sites: generic, uva-gpupod (-p gpu, 8 x a100 per node, -C gpupod), nersc-perlmutter (-C gpu,\n"
    "4 GPUs per node, needs --account), or a site file (see the man page). Requests the site cannot\n"
    "meet (more GPUs per node than it has, ranks not equal to GPUs) are refused.\n"
    "--sweep 1,2,4: a job array, one task per rank count, each into RUN_DIR/ranks-P (for\n"
    "`dptrain report scaling`); strong scaling keeps the global batch, weak keeps the per-rank batch.\n";

struct request {
    const char *job_path; /* NULL: generic, the job comes from $1 */
    const char *job_name, *run_dir, *time_limit, *account, *partition, *gpu_type, *constraint;
    struct sbatch_site site;
    long long nodes, gpus, cpus, ranks_per_node;
    int cpu;
    const char **sets;
    int nsets;
    long long sweep[32];
    int nsweep, sweep_weak;
    long long steps, batch;
};

/* Prints s single-quoted for the shell: nothing inside is expanded. Newlines and carriage returns
 * become $'\n' / $'\r' so no raw line of the script can start with user text. */
static void shell_quote(FILE *f, const char *s)
{
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'')
            fputs("'\\''", f);
        else if (*s == '\n')
            fputs("'$'\\n''", f);
        else if (*s == '\r')
            fputs("'$'\\r''", f);
        else
            fputc(*s, f);
    }
    fputc('\'', f);
}

/* Text in a comment of the script: printable ASCII as it is, any other byte as \xHH, so a newline
 * in a file or site name cannot end the comment and start a command or a directive. */
static void comment_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, f);
        else
            fprintf(f, "\\x%02x", c);
    }
}

/* #SBATCH values: letters, digits and ._-: (anything else becomes _), so no directive can be smuggled in. */
static void safe_value(char *out, size_t len, const char *in)
{
    size_t i = 0;
    for (; *in && i + 1 < len; in++)
        out[i++] = (isalnum((unsigned char)*in) || strchr("._-:", *in)) ? *in : '_';
    out[i] = 0;
}

/* Splits "a:b:c" (digits only) into up to 3 numbers; returns how many, or -1. */
static int colon_fields(const char *t, long long v[3])
{
    int n = 0;
    while (n < 3) {
        if (!isdigit((unsigned char)*t))
            return -1;
        char *end;
        v[n++] = strtoll(t, &end, 10);
        if (!*end)
            return n;
        if (*end != ':')
            return -1;
        t = end + 1;
    }
    return -1;
}

/* Slurm's --time forms (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS); returns seconds, or -1. */
static long long slurm_time_seconds(const char *t)
{
    long long v[3] = {0, 0, 0}, days = 0;
    const char *dash = strchr(t, '-');
    if (dash) {
        char *end;
        if (!isdigit((unsigned char)*t) || (days = strtoll(t, &end, 10), end != dash))
            return -1;
        int n = colon_fields(dash + 1, v);
        if (n < 1 || v[0] > 23 || v[1] > 59 || v[2] > 59)
            return -1;
        return days * 86400 + v[0] * 3600 + v[1] * 60 + v[2];
    }
    int n = colon_fields(t, v);
    if (n == 1)
        return v[0] * 60;
    if (n == 2 && v[1] < 60)
        return v[0] * 60 + v[1];
    if (n == 3 && v[1] < 60 && v[2] < 60)
        return v[0] * 3600 + v[1] * 60 + v[2];
    return -1;
}

static void parse_sweep(struct request *q, const char *list)
{
    char *copy = dp_strdup(list), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (q->nsweep == (int)(sizeof q->sweep / sizeof q->sweep[0]))
            dp_die(DP_EXIT_INPUT, "--sweep %s: at most 32 rank counts", list);
        q->sweep[q->nsweep++] = cli_int64("--sweep", tok, 1, 1 << 20);
    }
    free(copy);
    if (!q->nsweep)
        dp_die(DP_EXIT_INPUT, "--sweep: expected rank counts like 1,2,4");
}

static void write_header(FILE *f, const struct request *q, long long tasks_per_node)
{
    char v[512];
    fprintf(f, "#!/bin/bash\n# Generated by dptrain %s: dptrain sbatch ", DPTRAIN_VERSION);
    comment_text(f, q->job_path ? q->job_path : "--generic");
    fputs(" (site ", f);
    comment_text(f, q->site.name);
    fprintf(f, "). One script serves the first run\n"
               "# and every requeue: dptrain fit --resume auto continues from RUN_DIR/last.h5 when it exists.\n");
    if (!q->job_path)
        fprintf(f, "# Usage: sbatch [-J NAME] [--nodes N ...] dptrain.sbatch JOB.cfg [--set KEY=VALUE ...]\n");
    safe_value(v, sizeof v, q->job_name);
    fprintf(f, "#SBATCH --job-name=%s\n", v);
    const char *partition = q->partition ? q->partition
                            : q->cpu && q->site.cpu_partition[0] ? q->site.cpu_partition
                                                                 : q->site.partition;
    safe_value(v, sizeof v, partition);
    if (v[0])
        fprintf(f, "#SBATCH --partition=%s\n", v);
    if (q->account) {
        safe_value(v, sizeof v, q->account);
        fprintf(f, "#SBATCH --account=%s\n", v);
    }
    fprintf(f, "#SBATCH --nodes=%lld\n#SBATCH --ntasks-per-node=%lld\n", q->nodes, tasks_per_node);
    if (!q->cpu) {
        safe_value(v, sizeof v, q->gpu_type ? q->gpu_type : q->site.gpu_type);
        if (v[0])
            fprintf(f, "#SBATCH --gres=gpu:%s:%lld\n", v, q->gpus);
        else
            fprintf(f, "#SBATCH --gres=gpu:%lld\n", q->gpus);
        safe_value(v, sizeof v, q->constraint ? q->constraint : q->site.constraint);
        if (v[0])
            fprintf(f, "#SBATCH --constraint=%s\n", v);
    } else if (q->constraint) {
        safe_value(v, sizeof v, q->constraint);
        fprintf(f, "#SBATCH --constraint=%s\n", v);
    }
    safe_value(v, sizeof v, q->time_limit);
    fprintf(f, "#SBATCH --cpus-per-task=%lld\n#SBATCH --time=%s\n", q->cpus, v);
    if (q->nsweep) {
        fprintf(f, "#SBATCH --array=0-%d\n#SBATCH --output=%%x-%%A_%%a.out\n#SBATCH --error=%%x-%%A_%%a.err\n",
                q->nsweep - 1);
    } else {
        fprintf(f, "#SBATCH --signal=B:%s@%d\n#SBATCH --requeue\n#SBATCH --open-mode=append\n", q->site.signal,
                q->site.signal_minutes * 60);
        fprintf(f, "#SBATCH --output=%%x-%%j.out\n#SBATCH --error=%%x-%%j.err\n");
    }
}

static void write_variables(FILE *f, const struct request *q)
{
    fprintf(f, "\nset -u\n");
    if (q->job_path) {
        fprintf(f, "JOB=");
        shell_quote(f, q->job_path);
        fprintf(f, "\nRUN_DIR=");
        char dir[1024];
        snprintf(dir, sizeof dir, "runs/%s", q->job_name);
        shell_quote(f, q->run_dir ? q->run_dir : dir);
        fprintf(f, "\nSETS=(");
        for (int i = 0; i < q->nsets; i++) {
            fprintf(f, "%s--set ", i ? " " : "");
            shell_quote(f, q->sets[i]);
        }
        fprintf(f, ")\n");
    } else {
        fprintf(f, "JOB=${1:?usage: sbatch dptrain.sbatch JOB.cfg [--set KEY=VALUE ...]}\nshift\n");
        /* Without a run dir, dptrain picks runs/NAME from the job's name (after any --set name=...). */
        fprintf(f, "RUN_DIR=${DPTRAIN_RUN_DIR:-");
        if (q->run_dir)
            shell_quote(f, q->run_dir);
        fprintf(f, "}\n");
        fprintf(f, "SETS=(\"$@\")\n");
    }
    fprintf(f, "MODULE=");
    shell_quote(f, q->site.module);
    fprintf(f, "\n\n");
}

static void write_prologue(FILE *f)
{
    fprintf(f,
            "echo \"dptrain: Slurm job ${SLURM_JOB_ID:-?} SLURM_RESTART_COUNT=${SLURM_RESTART_COUNT:-0} on "
            "${SLURM_JOB_NODELIST:-?} at $(date -Is)\"\n"
            "if [ -n \"$MODULE\" ] && command -v module >/dev/null 2>&1; then module load \"$MODULE\" || exit 1; fi\n"
            "command -v dptrain >/dev/null || { echo \"dptrain: not on PATH (module '$MODULE' not available?)\" >&2; "
            "exit 2; }\n"
            "echo \"dptrain: $(command -v dptrain) ($(dptrain --version | tr '\\n' ' ' | sed 's/ $//'))\"\n"
            "# Example job files named as in the source tree are also found in the installed one.\n"
            "if [ ! -e \"$JOB\" ] && [ -n \"${DPTRAIN_HOME:-}\" ] && [ -e \"$DPTRAIN_HOME/share/dptrain/$JOB\" ]; then\n"
            "  JOB=$DPTRAIN_HOME/share/dptrain/$JOB\n"
            "fi\n");
}

static void write_launch(FILE *f, const struct request *q, long long tasks_per_node)
{
    /* --progress lines: the output goes to a file, but mpirun hands rank 0 a terminal of its own */
    const char *fit = q->job_path
                          ? "dptrain fit \"$JOB\" --run-dir \"$RUN_DIR\" --resume auto --progress lines \"${SETS[@]}\""
                          : "dptrain fit \"$JOB\" ${RUN_DIR:+--run-dir \"$RUN_DIR\"} --resume auto --progress lines "
                            "\"${SETS[@]}\"";
    /* The trap goes in before the launch: a signal in between would otherwise end this shell. */
    fprintf(f,
            "# The signal before the time limit (and a TERM) goes on to the ranks as USR1 (srun and mpirun\n"
            "# both forward it; a TERM would make mpirun kill the ranks): each finishes its step, rank 0\n"
            "# writes last.h5, and dptrain exits 3. One that comes before the launch is passed on after it.\n"
            "pid=\n"
            "signalled=0\n"
            "trap 'echo \"dptrain: signal received at $(date -Is); checkpointing\"; signalled=1; "
            "[ -z \"$pid\" ] || kill -USR1 \"$pid\" 2>/dev/null' %s%s\n",
            q->site.signal, strcmp(q->site.signal, "TERM") ? " TERM" : "");
    if (q->nsweep) {
        fprintf(f, "# One array task per rank count; every task has the largest allocation and uses P ranks of it.\n"
                   "RANKS=(");
        for (int i = 0; i < q->nsweep; i++)
            fprintf(f, "%s%lld", i ? " " : "", q->sweep[i]);
        fprintf(f, ")\nP=${RANKS[$SLURM_ARRAY_TASK_ID]}\nNODES=$(( (P + %lld - 1) / %lld ))\n", tasks_per_node,
                tasks_per_node);
        fprintf(f, "RUN_DIR=$RUN_DIR/ranks-$P\nSETS+=(--set fit.steps_per_epoch=%lld --set fit.epochs=1)\n", q->steps);
        if (q->sweep_weak)
            fprintf(f, "SETS+=(--set fit.batch_size=$(( %lld * P )))   # weak scaling: %lld rows per rank\n",
                    q->batch, q->batch);
        fprintf(f, "rm -rf \"$RUN_DIR\"\n");
        if (!strcmp(q->site.launcher, "srun"))
            fprintf(f, "srun --mpi=%s --kill-on-bad-exit=1 --nodes=\"$NODES\" --ntasks=\"$P\" %s &\n", q->site.srun_mpi,
                    fit);
        else
            fprintf(f, "mpirun -np \"$P\" --map-by ppr:%lld:node %s &\n", tasks_per_node, fit);
    } else if (!strcmp(q->site.launcher, "srun")) {
        /* --kill-on-bad-exit: a rank that dies takes the step down, instead of leaving the others
         * waiting in a collective until the time limit. */
        fprintf(f, "srun --mpi=%s --kill-on-bad-exit=1 %s &\n", q->site.srun_mpi, fit);
    } else {
        fprintf(f, "mpirun -np \"$SLURM_NTASKS\" --map-by ppr:%lld:node %s &\n", tasks_per_node, fit);
    }
    fprintf(f,
            "pid=$!\n"
            "[ \"$signalled\" -eq 0 ] || kill -USR1 \"$pid\" 2>/dev/null\n"
            "# A trapped signal ends `wait` early (status 128+signal): wait again until dptrain itself has\n"
            "# ended, then once more for its own exit status.\n"
            "while kill -0 \"$pid\" 2>/dev/null; do wait \"$pid\"; done\n"
            "wait \"$pid\"\n"
            "rc=$?\n"
            "echo \"dptrain: exit status $rc at $(date -Is)\"\n"
            "# 3: checkpointed after a signal. 5: a rank was lost (its process, node or link went away and a\n"
            "# wait on it timed out): resume from last.h5 on healthy nodes, at most 5 restarts in all, so a\n"
            "# rank that is lost again and again does not keep the job in the queue. While a node of the job\n"
            "# does not respond, Slurm may set it DOWN (after SlurmdTimeout) and requeue the job itself;\n"
            "# requeueing before that would race with it (Slurm 22.05 then loses track of the job's GPUs),\n"
            "# so the script waits until every node responds again or Slurm has acted.\n"
            "requeue=0\n"
            "if [ \"$rc\" -eq 3 ]; then\n"
            "  echo \"dptrain: checkpointed; requeueing job ${SLURM_JOB_ID:-?}\"\n"
            "  requeue=1\n"
            "elif [ \"$rc\" -eq 5 ] && [ \"${SLURM_RESTART_COUNT:-0}\" -lt 5 ]; then\n"
            "  limit=$(scontrol show config 2>/dev/null | awk '$1 == \"SlurmdTimeout\" { print $3 + 30 }')\n"
            "  limit=${limit:-330}\n"
            "  waited=0\n"
            "  while [ \"$waited\" -lt \"$limit\" ] && sinfo -h -N -n \"$SLURM_JOB_NODELIST\" -o %%T 2>/dev/null | grep -q '[*]$'; do\n"
            "    [ \"$waited\" -gt 0 ] || echo \"dptrain: a node of the job does not respond; waiting for Slurm (at most $limit s)\"\n"
            "    sleep 5\n"
            "    waited=$((waited + 5))\n"
            "  done\n"
            "  echo \"dptrain: a rank was lost; requeueing job ${SLURM_JOB_ID:-?} to resume from last.h5\"\n"
            "  requeue=1\n"
            "fi\n"
            "if [ \"$requeue\" -eq 1 ]; then\n"
            "  scontrol requeue \"$SLURM_JOB_ID\" || echo \"dptrain: scontrol requeue failed; submit this script again "
            "to continue from last.h5\" >&2\n"
            "fi\n"
            "exit \"$rc\"\n");
}

/* Pipes the script to sbatch, started directly rather than through /bin/sh: a POSIX shell drops
 * exported bash functions from the environment (Lmod's `module` among them), and sbatch passes
 * the environment on to the job, whose script needs `module`. */
static void submit_script(const char *script, size_t len)
{
    int fds[2];
    if (pipe(fds) != 0)
        dp_die(DP_EXIT_INTERNAL, "cannot make a pipe for sbatch: %s", strerror(errno));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[0], STDIN_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    char *args[] = {"sbatch", NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, "sbatch", &actions, NULL, args, environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[0]);
    if (e != 0)
        dp_die(DP_EXIT_INPUT, "--submit: cannot run sbatch: %s (is Slurm's client installed and on PATH?)",
               strerror(e));
    signal(SIGPIPE, SIG_IGN); /* sbatch exiting early is reported by its status, below */
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fds[1], script + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    close(fds[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        dp_die(DP_EXIT_INPUT, "sbatch refused the script (exit %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void check_request(struct request *q)
{
    if (strcmp(q->site.launcher, "srun") && strcmp(q->site.launcher, "mpirun"))
        dp_die(DP_EXIT_INPUT, "launcher %s: expected srun or mpirun", q->site.launcher);
    static const char *const signals[] = {"USR1", "USR2", "TERM", "INT", NULL};
    int ok = 0;
    for (int i = 0; signals[i]; i++)
        ok |= !strcmp(signals[i], q->site.signal);
    if (!ok)
        dp_die(DP_EXIT_INPUT, "signal %s: expected USR1, USR2, TERM or INT (dptrain checkpoints on these)",
               q->site.signal);
    for (const char *c = q->site.srun_mpi; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            dp_die(DP_EXIT_INPUT, "--mpi %s: expected a plugin name like pmix or pmix_v4", q->site.srun_mpi);
    long long limit = slurm_time_seconds(q->time_limit);
    if (limit <= 0)
        dp_die(DP_EXIT_INPUT, "--time %s: expected MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS", q->time_limit);
    if (!q->nsweep && q->site.signal_minutes * 60LL >= limit)
        dp_die(DP_EXIT_INPUT, "--signal-minutes %d: the signal would come before the job starts (--time %s)",
               q->site.signal_minutes, q->time_limit);
    if (q->gpus < 0)
        q->gpus = q->site.gpus_per_node;
    if (!q->cpu && q->gpus > q->site.gpus_per_node)
        dp_die(DP_EXIT_INPUT, "--gpus-per-node %lld: site %s has %d GPUs per node", q->gpus, q->site.name,
               q->site.gpus_per_node);
    if (q->cpu && q->ranks_per_node < 0)
        q->ranks_per_node = 1;
    if (!q->cpu && q->ranks_per_node >= 0 && q->ranks_per_node != q->gpus)
        dp_die(DP_EXIT_INPUT, "--ranks-per-node %lld with --gpus-per-node %lld: dptrain runs one rank per GPU "
                              "(use --cpu for CPU ranks)", q->ranks_per_node, q->gpus);
    if (q->site.account_required && !q->account)
        dp_die(DP_EXIT_INPUT, "site %s needs --account", q->site.name);
    if (q->cpus < 0)
        q->cpus = q->site.cpus_per_task;
    long long per_node = q->cpu ? q->ranks_per_node : q->gpus;
    for (int i = 0; i < q->nsweep; i++)
        if (q->sweep[i] > q->nodes * per_node)
            dp_die(DP_EXIT_INPUT, "--sweep: %lld ranks do not fit in %lld node%s x %lld %s", q->sweep[i], q->nodes,
                   q->nodes == 1 ? "" : "s", per_node, q->cpu ? "ranks" : "GPUs");
}

/* What the command line gives beside the request: the site and what overrides its preset. */
struct sbatch_options {
    const char *site_name, *out, *launcher, *mpi, *module, *signal;
    long long signal_minutes;
    int submit, generic;
};

/* 1 when --help was asked (and printed) */
static int parse_sbatch_options(int argc, char **argv, struct request *rq, struct sbatch_options *opt)
{
    struct request q = *rq;
    const char *site_name = "generic", *out = NULL, *launcher = NULL, *mpi = NULL, *module = NULL, *signal = NULL;
    long long signal_minutes = -1;
    int submit = 0, generic = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            fputs(help, stdout);
            return 1;
        } else if (cli_collect_set(argc, argv, &i, &q.sets, &q.nsets)) {
        } else if (!strcmp(a, "--site")) site_name = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--nodes")) q.nodes = cli_int64(a, cli_value(argc, argv, &i, a), 1, 100000);
        else if (!strcmp(a, "--gpus-per-node")) q.gpus = cli_int64(a, cli_value(argc, argv, &i, a), 1, 64);
        else if (!strcmp(a, "--gpu-type")) q.gpu_type = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--partition")) q.partition = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--constraint")) q.constraint = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--account")) q.account = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--time")) q.time_limit = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--cpus-per-task")) q.cpus = cli_int64(a, cli_value(argc, argv, &i, a), 1, 1024);
        else if (!strcmp(a, "--signal")) signal = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--signal-minutes")) signal_minutes = cli_int64(a, cli_value(argc, argv, &i, a), 1, 600);
        else if (!strcmp(a, "--launcher")) launcher = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--mpi")) mpi = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--module")) module = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--run-dir")) q.run_dir = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--ranks-per-node")) q.ranks_per_node = cli_int64(a, cli_value(argc, argv, &i, a), 1, 1024);
        else if (!strcmp(a, "--cpu")) q.cpu = 1;
        else if (!strcmp(a, "--generic")) generic = 1;
        else if (!strcmp(a, "--sweep")) parse_sweep(&q, cli_value(argc, argv, &i, a));
        else if (!strcmp(a, "--sweep-mode")) {
            const char *m = cli_value(argc, argv, &i, a);
            if (strcmp(m, "strong") && strcmp(m, "weak"))
                dp_die(DP_EXIT_INPUT, "--sweep-mode %s: expected strong or weak", m);
            q.sweep_weak = !strcmp(m, "weak");
        } else if (!strcmp(a, "--steps")) q.steps = cli_int64(a, cli_value(argc, argv, &i, a), 1, 1000000000);
        else if (!strcmp(a, "-o")) out = cli_value(argc, argv, &i, a);
        else if (!strcmp(a, "--submit")) submit = 1;
        else if (a[0] != '-' && !q.job_path && !generic) q.job_path = a;
        else cli_unknown("sbatch", a);
    }
    if (!q.job_path && !generic)
        dp_die(DP_EXIT_INPUT, "sbatch: no job file given (see 'dptrain sbatch --help')");
    if (q.job_path && generic)
        dp_die(DP_EXIT_INPUT, "sbatch: --generic takes no job file (the script gets it as its argument)");
    if (generic && (q.nsets || q.nsweep))
        dp_die(DP_EXIT_INPUT, "sbatch --generic: --set and --sweep need a job file");
    *rq = q;
    *opt = (struct sbatch_options){site_name, out, launcher, mpi, module, signal, signal_minutes, submit, generic};
    return 0;
}

/* The site's preset, with what the command line overrides. */
static void load_site(struct request *q, const struct sbatch_options *o)
{
    struct dp_error err = {0};
    if (sbatch_site_load(&q->site, o->site_name, &err) != 0)
        dp_die_error(&err);
    if (o->launcher)
        snprintf(q->site.launcher, sizeof q->site.launcher, "%s", o->launcher);
    if (o->mpi)
        snprintf(q->site.srun_mpi, sizeof q->site.srun_mpi, "%s", o->mpi);
    if (o->module)
        snprintf(q->site.module, sizeof q->site.module, "%s", o->module);
    if (o->signal)
        snprintf(q->site.signal, sizeof q->site.signal, "%s", o->signal);
    if (o->signal_minutes > 0)
        q->site.signal_minutes = (int)o->signal_minutes;
}

/* The script goes to sbatch (--submit), to a file written whole (-o), or to stdout. */
static void emit_script(const struct request *q, const struct sbatch_options *o, const char *buf, size_t len)
{
    if (o->submit) {
        submit_script(buf, len);
    } else if (o->out) {
        struct atomic_file f;
        struct dp_error err = {0};
        const char *inputs[1] = {q->job_path};
        if (file_check_not_input(o->out, inputs, 1, &err) != 0 || atomic_file_open(&f, o->out, &err) != 0)
            dp_die(DP_EXIT_INPUT, "%s", err.msg);
        fwrite(buf, 1, len, f.f);
        if (atomic_file_commit(&f, &err) != 0)
            dp_die_error(&err);
        printf("%s: batch script for %s\n", o->out, q->job_path ? q->job_path : "any job file (--generic)");
    } else {
        fwrite(buf, 1, len, stdout);
    }
}

int cmd_sbatch(int argc, char **argv)
{
    struct request q = {.time_limit = "02:00:00", .nodes = 1, .gpus = -1, .cpus = -1, .ranks_per_node = -1,
                        .steps = 50};
    struct sbatch_options o;
    if (parse_sbatch_options(argc, argv, &q, &o))
        return 0;
    load_site(&q, &o);
    check_request(&q);
    struct dp_error err = {0};
    struct job job = {0}; /* loaded to validate it (with the overrides), for its name and batch */
    if (q.job_path) {
        if (job_load(&job, q.job_path, q.sets, q.nsets, &err) != 0)
            dp_die_error(&err);
        q.job_name = job.name;
        q.batch = job.fit.batch_size;
    } else {
        q.job_name = "dptrain";
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        dp_die(DP_EXIT_INTERNAL, "out of memory writing the batch script");
    long long tasks_per_node = q.cpu ? q.ranks_per_node : q.gpus;
    write_header(f, &q, tasks_per_node);
    write_variables(f, &q);
    write_prologue(f);
    write_launch(f, &q, tasks_per_node);
    if (fclose(f) != 0)
        dp_die(DP_EXIT_INTERNAL, "out of memory writing the batch script");
    emit_script(&q, &o, buf, len);
    free(buf);
    free(q.sets);
    if (q.job_path)
        job_free(&job);
    return 0;
}
