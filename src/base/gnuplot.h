/* gnuplot as a child process, without a shell (nothing in a directory's or run's name is ever
 * interpreted): commands go down a pipe, the data inline as datablocks, so no data files are
 * written; its messages go to gnuplot.log in its directory, removed when it succeeds. */
#ifndef DPTRAIN_GNUPLOT_H
#define DPTRAIN_GNUPLOT_H

#include <stdio.h>
#include <sys/types.h>

/* gnuplot started in dir; a stream for its commands, or NULL (no gnuplot, or dir unusable). */
FILE *gnuplot_start(const char *dir, pid_t *pid);
/* Closes the commands and waits: 0 when gnuplot exited 0 (then dir/gnuplot.log is removed). */
int gnuplot_finish(FILE *gp, pid_t pid, const char *dir);
/* s without quotes and control characters, for a title inside gnuplot's single quotes */
void gnuplot_title(char *out, size_t len, const char *s);

#endif
