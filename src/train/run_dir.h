#ifndef DPTRAIN_RUN_DIR_H
#define DPTRAIN_RUN_DIR_H

#include <stdint.h>

#include "base/errors.h"

/* Creates path and its missing parents (mkdir -p); an input error naming it when it cannot, or
 * when it is not a directory dptrain can write in. */
int run_dir_create(const char *path, struct dp_error *err);
/* Makes this process the run dir's only user for as long as it lives (an flock on
 * RUN_DIR/.dptrain.lock): another fit on the same run dir waits up to wait_seconds for it, then is
 * an input error naming the holder (pid, host, Slurm job). Where the file system has no locks,
 * nothing is guarded. */
int run_dir_lock(const char *run_dir, int wait_seconds, struct dp_error *err);
/* Before last.h5 is replaced: links it as last-eEEEEEE-sSSSSSSSS.h5 and keeps the newest `keep`. */
/* A fit refused at set-up takes back the run dir it created: its lock file, and the directory if
 * nothing else is in it. */
void run_dir_remove_if_unused(const char *run_dir);
void run_dir_keep_previous(const char *run_dir, const char *path_last, int64_t keep);
/* Removes the temporaries of a killed writer (NAME.tmp.PID, atomic_file.h). */
void run_dir_remove_temporaries(const char *run_dir);

#endif
