#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cli.h"
#include "job/jobfile.h"
#include "train/trainer.h"

static const char help[] =
    "usage: dptrain fit JOB [--set KEY=VALUE ...] [--run-dir DIR] [--resume auto|PATH] [--dry-run]\n"
    "                      [--device cpu|cuda|auto] [--progress bar|lines] [--progress-every S]\n"
    "\n"
    "Trains the model of job file JOB. Writes DIR/history.csv (one row per epoch),\n"
    "DIR/summary.json (final and best metrics, samples/s, wall time), DIR/best.h5 (best epoch by\n"
    "fit.checkpoint.monitor) and DIR/last.h5 (latest epoch); both load with Keras' load_weights.\n"
    "\n"
    "  --set KEY=VALUE   override a scalar of the job, e.g. --set fit.epochs=3 --set fit.optimizer.lr=0.1\n"
    "                    (list elements: --set model.[0].units=64)\n"
    "  --run-dir DIR     default runs/NAME, NAME from the job's name key; one fit at a time uses it\n"
    "                    (another is refused, naming it; with --resume, waits 5 minutes for it)\n"
    "  --dry-run         print the resolved job (file + overrides), then exit\n"
    "  --progress MODE   bar (live, default on a terminal) or lines (one per epoch, default otherwise,\n"
    "                    and under mpirun or srun, which give rank 0 a terminal of their own)\n"
    "  --progress-every S  lines: also a line within the epoch every S seconds (default 30; 0: none)\n"
    "  --device D        cpu, cuda, or auto (default: cuda when built with CUDA and a GPU is visible)\n"
    "  --resume auto     continue from DIR/last.h5 when it exists, else start fresh (one batch script\n"
    "                    serves the first run and every requeue)\n"
    "  --resume PATH     continue from the checkpoint PATH\n"
    "                    (without --resume, a DIR with checkpoints is started over, and it says so)\n"
    "\n"
    "SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 (what Slurm sends with --signal) finish the step in\n"
    "progress, write DIR/last.h5 and exit with status 3 (\"checkpointed, please requeue\"); a second\n"
    "SIGINT exits at once and leaves the last good checkpoint untouched. Exit status: 0 done, 2 bad\n"
    "input, 3 stopped and checkpointed, 4 the loss became NaN or infinite, 5 a rank was lost (a wait\n"
    "on the other ranks passed fit.collective_timeout; the message names the ranks that no longer\n"
    "answer), 1 internal failure.\n"
    "Several ranks (mpirun, srun): one per GPU; rank 0 prints a binding table (host, local rank,\n"
    "CUDA_VISIBLE_DEVICES, GPU, PCI bus id). fit.allreduce = \"mpi\" lets ranks share a GPU.\n";

int cmd_fit(int argc, char **argv)
{
    const char *job_path = NULL, *run_dir = NULL, *resume = NULL, *device = "auto";
    const char **sets = NULL;
    /* Launchers hand rank 0 a pseudo-terminal of their own and keep its bytes for a log: \r and
     * escape codes would land in that log, so lines unless --progress bar */
    int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") ||
                   getenv("SLURM_STEP_ID");
    int nsets = 0, dry_run = 0, tty = isatty(STDOUT_FILENO) && !launched;
    double progress_every = 30;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(help, stdout);
            return 0;
        } else if (cli_collect_set(argc, argv, &i, &sets, &nsets)) {
        } else if (!strcmp(argv[i], "--run-dir")) {
            run_dir = cli_value(argc, argv, &i, "--run-dir");
        } else if (!strcmp(argv[i], "--device")) {
            device = cli_value(argc, argv, &i, "--device");
        } else if (!strcmp(argv[i], "--resume")) {
            resume = cli_value(argc, argv, &i, "--resume");
        } else if (!strcmp(argv[i], "--dry-run")) {
            dry_run = 1;
        } else if (!strcmp(argv[i], "--progress")) {
            const char *v = cli_value(argc, argv, &i, "--progress");
            if (strcmp(v, "bar") && strcmp(v, "lines"))
                dp_die(DP_EXIT_INPUT, "--progress: expected bar or lines, got '%s'", v);
            tty = !strcmp(v, "bar");
        } else if (!strcmp(argv[i], "--progress-every")) {
            progress_every = cli_double("--progress-every", cli_value(argc, argv, &i, "--progress-every"), 0, 1e9);
        } else if (argv[i][0] != '-' && !job_path) {
            job_path = argv[i];
        } else {
            cli_unknown("fit", argv[i]);
        }
    }
    if (!job_path)
        dp_die(DP_EXIT_INPUT, "fit: no job file given (see 'dptrain fit --help')");
    struct job job;
    struct dp_error err = {0};
    if (job_load(&job, job_path, sets, nsets, &err) != 0)
        dp_die_error(&err);
    free(sets);
    char default_dir[1024];
    if (!run_dir) {
        snprintf(default_dir, sizeof default_dir, "runs/%s", job.name);
        run_dir = default_dir;
    }
    if (dry_run) {
        printf("# resolved job: %s\n%s", job.path, job.resolved_text);
        job_free(&job);
        return 0;
    }
    struct fit_options o = {run_dir, tty, resume, device, progress_every};
    int rc = trainer_fit(&job, &o, &err);
    job_free(&job);
    if (rc == TRAINER_STOPPED)
        return DP_EXIT_REQUEUE;
    if (rc != 0)
        dp_die_error(&err);
    return 0;
}
