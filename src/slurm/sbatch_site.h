/* What a Slurm site looks like to `dptrain sbatch`: partition, GPU type and count per node, node
 * feature, launcher. Built-in presets, or a site file (libconfig), e.g.
 *
 *   name = "mycluster";
 *   partition = "gpu";         # -p
 *   gpu_type = "a100";         # --gres=gpu:a100:N ("" for --gres=gpu:N)
 *   gpus_per_node = 8;         # the most a job may ask for per node
 *   constraint = "gpupod";     # -C ("" for none)
 *   cpus_per_task = 4;
 *   account_required = false;  # refuse to generate without --account
 *   cpu_partition = "cpu";     # used with --cpu ("" keeps partition)
 *   launcher = "srun";         # or "mpirun"
 *   srun_mpi = "pmix";         # srun --mpi=...
 *   module = "dptrain";        # loaded by the script ("" for none)
 *   signal = "USR1";           # sent before the time limit (TERM always works too)
 *   signal_minutes = 5;
 *
 * Every key is optional; missing ones take the "generic" preset's value. */
#ifndef DPTRAIN_SBATCH_SITE_H
#define DPTRAIN_SBATCH_SITE_H

#include "base/errors.h"

struct sbatch_site {
    char name[64], partition[64], gpu_type[64], constraint[128], cpu_partition[64];
    char launcher[16], srun_mpi[32], module[128], signal[8];
    int gpus_per_node, cpus_per_task, account_required, signal_minutes;
};

/* A built-in preset by name, or a site file by path (anything with a '/' or ending in .cfg).
 * Returns 0, or -1 with err set (file:line for a bad site file). */
int sbatch_site_load(struct sbatch_site *site, const char *name_or_path, struct dp_error *err);

/* The built-in preset names, comma separated, for messages. */
const char *sbatch_site_names(void);

#endif
