/* Errors and exit codes.
 *
 * Exit status: 0 success, 1 internal failure, 2 bad input (job file, data, command line),
 * 3 stopped by a signal after writing last.h5 (requeue), 4 the loss became NaN or infinite, 5 a rank
 * was lost (a collective timed out: its process, node or link is gone; requeue to resume).
 * Library-style functions report through struct dp_error and return -1; commands decide how to
 * end. Fatal helpers print one line and end the process (the whole MPI job under mpirun). */
#ifndef DPTRAIN_ERRORS_H
#define DPTRAIN_ERRORS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum dp_exit {
    DP_EXIT_OK = 0,
    DP_EXIT_INTERNAL = 1,
    DP_EXIT_INPUT = 2,
    DP_EXIT_REQUEUE = 3,
    /* 4: the loss became NaN or infinite (train/trainer.h) */
    DP_EXIT_RANK_LOST = 5, /* a wait on the other ranks timed out: a rank, its node or its link is gone */
};

struct dp_error {
    int code;        /* an enum dp_exit value; 0 while no error */
    char msg[1024];
};

/* Sets e (when not NULL) and returns -1, so callers can write `return dp_error_set(...)`. */
int dp_error_set(struct dp_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prints "dptrain: error: MSG" and exits with code. */
void dp_die(int code, const char *fmt, ...) __attribute__((__noreturn__, format(printf, 2, 3)));
void dp_die_error(const struct dp_error *e) __attribute__((__noreturn__));

/* Installed by the MPI layer: how to end the process (MPI_Abort for several ranks) and which rank
 * this is, for message prefixes. */
void dp_set_exit_hook(void (*hook)(int code), int rank, int size);

/* Temporary files being written (a checkpoint or data set before its rename into place): dp_die,
 * and a second Ctrl-C, delete those still tracked, so a failed run leaves no partial file behind. */
void dp_temp_file_track(const char *path);
void dp_temp_file_forget(const char *path);
/* Deletes the tracked files; safe in a signal handler. */
void dp_temp_files_remove(void);

/* Warnings go to stderr, prefixed. */
void dp_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Allocation that never returns NULL: out of memory is an internal failure with the size. */
void *dp_malloc(size_t bytes, const char *what);
void *dp_calloc(size_t count, size_t size, const char *what);
void *dp_realloc(void *p, size_t bytes, const char *what);
char *dp_strdup(const char *s);

/* A switch in the environment (DPTRAIN_CUDA_GRAPHS=0, DPTRAIN_CUDA_SYNC=1, ...): `unset` when the
 * variable is absent, else 0 for "0" and 1 for anything else. */
int dp_env_flag(const char *name, int unset);

/* Internal invariant: a bug if it fails, reported with the location. */
#define DP_ASSERT(cond)                                                                    \
    do {                                                                                   \
        if (!(cond))                                                                       \
            dp_die(DP_EXIT_INTERNAL, "internal: assertion '%s' failed in %s (%s:%d)", #cond, \
                   __func__, __FILE__, __LINE__);                                          \
    } while (0)

#ifdef __cplusplus
}
#endif

#endif
