/* dptrain: data-parallel training of Keras-style Sequential models. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "dist/backend_select.h"
#include "cmd/cli.h"
#include "dist/comm.h"
#include "base/errors.h"
#include "base/h5io.h"
#include "base/stop_signals.h"

static const char usage[] =
    "usage: dptrain COMMAND [ARGS]\n"
    "\n"
    "Train Keras-style Sequential models from a job file on CPU (CBLAS) or NVIDIA GPUs (CUDA),\n"
    "data-parallel over MPI ranks (one per GPU). man dptrain for job files, Slurm and site files.\n"
    "\n"
    "commands:\n"
    "  fit JOB        train; writes history.csv, summary.json, best.h5, last.h5, model.keras in\n"
    "                 the run dir\n"
    "  evaluate JOB   loss, metrics and confusion matrix of saved weights on the test rows\n"
    "  predict JOB    write predictions of saved weights for a data file (HDF5 or CSV)\n"
    "  import csv     turn feature and target CSV files into an HDF5 data set\n"
    "  import npy     the same from NumPy arrays (.npy, .npz)\n"
    "  import images  the same from a folder of class folders of PNG and JPEG images\n"
    "  import keras   write the job file of a Keras model (.keras, config.json, whole-model .h5)\n"
    "  export CKPT    write a checkpoint's model as a Keras file (.keras, .h5) for load_model\n"
    "  synth          write a synthetic HDF5 data set (x, y ~ U(0,1), like the seed tutorial)\n"
    "  inspect FILE   summarize a data set or weights file\n"
    "  shard IN.h5    split a data set into K shard files (data.file takes a list or a glob)\n"
    "  report scaling RUN_DIR...  speed-up and efficiency of a rank sweep (table, Markdown, CSV, PNG)\n"
    "  sbatch JOB     print (or write, or submit) a Slurm batch script for JOB\n"
    "  bench JOB      time training steps on random in-memory data (samples/s)\n"
    "  augment JOB    the job's augmentation applied to a few training rows, for a look\n"
    "  mpirun ARGS    run a command under mpirun; a SIGTERM then still ends it with status 3\n"
    "\n"
    "options: --help (also after any command), --version\n"
    "exit status: 0 success, 1 internal failure, 2 bad input (job file, data, command line),\n"
    "             3 stopped by a signal after writing last.h5 (requeue and --resume auto),\n"
    "             4 the loss became NaN or infinite,\n"
    "             5 a rank was lost (its process, node or link; requeue and --resume auto)\n";

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
    {"fit", cmd_fit},         {"evaluate", cmd_evaluate}, {"predict", cmd_predict},
    {"import", cmd_import},   {"synth", cmd_synth},       {"inspect", cmd_inspect},
    {"bench", cmd_bench},     {"shard", cmd_shard},       {"report", cmd_report},
    {"sbatch", cmd_sbatch},   {"mpirun", cmd_mpirun},     {"export", cmd_export},
    {"augment", cmd_augment},
};

int cli_is_command(const char *word)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(word, commands[i].name))
            return 1;
    return 0;
}

/* OpenBLAS (pthreads) and our OpenMP loops share the cores, and the idle threads of each spin by
 * default, starving the other's: libgomp's spin made MNIST steps take 36 ms instead of 19 ms on 2
 * cores. OpenBLAS's threads yield for 2^28 cycles after each GEMM; 2^20 (well under a millisecond)
 * still keeps them awake between the GEMMs of one step. Medians of 3, 2 cores, 2026-11-23, ms a
 * step at 2^28 / 2^20 / 2^4: MNIST batch 32 18.3 / 15.3 / 15.2, batch 1024 448 / 405 / 413,
 * cancer_mlp 0.91 / 0.89 / 1.26 (woken for every small GEMM). Both libraries read these settings
 * when they load, so set them and start again (once; a user's own settings win). */
static void ensure_idle_threads_sleep(char **argv)
{
    static const char *const defaults[][2] = {{"OMP_WAIT_POLICY", "PASSIVE"}, {"OPENBLAS_THREAD_TIMEOUT", "20"}};
    int changed = 0;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (!getenv(defaults[i][0])) {
            setenv(defaults[i][0], defaults[i][1], 1);
            changed = 1;
        }
    if (changed)
        execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with spinning threads */
}

int main(int argc, char **argv)
{
    ensure_idle_threads_sleep(argv);
    h5io_init();
    stop_signals_remove_temporaries_on_exit();
    comm_init(&argc, &argv);
    if (argc < 2) {
        fputs(usage, stderr);
        return DP_EXIT_INPUT;
    }
    const char *cmd = argv[1];
    if (cli_is_help(cmd)) {
        fputs(usage, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("dptrain %s\nbackends: %s\n", DPTRAIN_VERSION, backend_build_info());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name)) {
            /* Only fit is data-parallel; under mpirun the other commands run on rank 0 alone. */
            int rc = comm_world.rank == 0 || commands[i].fn == cmd_fit ? commands[i].fn(argc - 1, argv + 1) : 0;
            comm_finalize();
            h5io_finish();
            return rc;
        }
    dp_die(DP_EXIT_INPUT, "unknown command '%s' (see 'dptrain --help')", cmd);
}
