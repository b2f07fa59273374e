/* Output files that appear whole or not at all: written under a temporary name beside the target,
 * then renamed into place. A write that fails (a full disk) leaves the earlier file as it was and
 * no temporary behind: the failing call removes it, and so does dp_die for any still open. */
#ifndef DPTRAIN_ATOMIC_FILE_H
#define DPTRAIN_ATOMIC_FILE_H

#include <stdio.h>

#include "base/errors.h"

struct atomic_file {
    FILE *f;          /* write to this */
    char path[4096];  /* where it goes */
    char tmp[4200];   /* where it is written */
};

/* Opens path's temporary for writing; -1 (err: path, why) when path may not be written
 * (file_check_output) or its temporary cannot be created. */
int atomic_file_open(struct atomic_file *a, const char *path, struct dp_error *err);

/* Closes the temporary and renames it to path; -1 (err names path) if any write, the close or the
 * rename failed, and then the temporary is gone and path untouched. */
int atomic_file_commit(struct atomic_file *a, struct dp_error *err);

/* Closes and removes the temporary; path is untouched. */
void atomic_file_abort(struct atomic_file *a);

/* The name of a temporary for path, unique to this process (path.tmp.PID). */
void atomic_file_temp_name(char *tmp, size_t size, const char *path);

/* 1 when a file name is such a temporary (NAME.tmp.DIGITS): left by a killed writer, never valid. */
int atomic_file_is_temp_name(const char *name);

#endif
