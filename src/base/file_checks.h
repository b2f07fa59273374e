/* Which paths dptrain reads and writes: inputs must be regular files (a FIFO or /dev/zero would
 * hang a reader), outputs absent or regular files and never one of the inputs. Each returns 0, or
 * -1 with err set (exit 2) saying what the path is. */
#ifndef DPTRAIN_FILE_CHECKS_H
#define DPTRAIN_FILE_CHECKS_H

#include "base/errors.h"

/* An input: a regular file (following links). A missing one passes: opening it says so. */
int file_check_input(const char *path, struct dp_error *err);

/* Whether path may be written: absent, or a regular file. A device, directory, pipe or socket is
 * refused (renaming a file onto /dev/full would replace the device node), and so is a symbolic
 * link (renaming onto it would replace the link). 0, or -1 with err set (exit 2). */
int file_check_output(const char *path, struct dp_error *err);

/* Refuses (-1, exit 2) an output that is one of the inputs (the same file by device and inode,
 * whatever the names): writing it would destroy what is being read. NULL inputs are skipped. */
int file_check_not_input(const char *out, const char *const *inputs, int n, struct dp_error *err);

#endif
