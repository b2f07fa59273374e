#include "base/errors.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void (*exit_hook)(int code);
static int hook_rank, hook_size = 1;

void dp_set_exit_hook(void (*hook)(int code), int rank, int size)
{
    exit_hook = hook;
    hook_rank = rank;
    hook_size = size;
}

int dp_error_set(struct dp_error *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return -1;
}

/* "dptrain: KIND: [rank r/n] message" on one line whatever the message quotes (a job file's string
 * may hold a newline: control characters become escapes), written with ONE write so that the
 * lines of several ranks sharing a stderr do not interleave. */
static void print_line(const char *kind, const char *fmt, va_list ap)
{
    char msg[4096], line[4096 * 4 + 128];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = hook_size > 1 ? (size_t)snprintf(line, 128, "dptrain: %s: [rank %d/%d] ", kind, hook_rank, hook_size)
                             : (size_t)snprintf(line, 128, "dptrain: %s: ", kind);
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
        if (*c == '\n')
            n += (size_t)snprintf(line + n, 3, "\\n");
        else if (*c == '\t')
            n += (size_t)snprintf(line + n, 3, "\\t");
        else if (*c < 0x20 || *c == 0x7f)
            n += (size_t)snprintf(line + n, 5, "\\x%02x", *c);
        else
            line[n++] = (char)*c;
    }
    line[n++] = '\n';
    fflush(stderr);
    for (size_t done = 0; done < n;) {
        ssize_t w = write(STDERR_FILENO, line + done, n - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
}

/* A few slots are plenty: a process writes one checkpoint or data set at a time. A slot's path is
 * written before it is marked used, so a signal handler never reads half a path. */
enum { TEMP_SLOTS = 8 };
static char temp_paths[TEMP_SLOTS][4200];
static volatile sig_atomic_t temp_used[TEMP_SLOTS];

void dp_temp_file_track(const char *path)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (!temp_used[i]) {
            snprintf(temp_paths[i], sizeof temp_paths[i], "%s", path);
            temp_used[i] = 1;
            return;
        }
}

void dp_temp_file_forget(const char *path)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (temp_used[i] && !strcmp(temp_paths[i], path))
            temp_used[i] = 0;
}

void dp_temp_files_remove(void)
{
    for (int i = 0; i < TEMP_SLOTS; i++)
        if (temp_used[i]) {
            unlink(temp_paths[i]);
            temp_used[i] = 0;
        }
}

void dp_die(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    print_line("error", fmt, ap);
    va_end(ap);
    fflush(stderr);
    dp_temp_files_remove();
    if (exit_hook)
        exit_hook(code);
    exit(code);
}

void dp_die_error(const struct dp_error *e)
{
    dp_die(e->code ? e->code : DP_EXIT_INTERNAL, "%s", e->msg);
}

int dp_env_flag(const char *name, int unset)
{
    const char *v = getenv(name);
    return v ? strcmp(v, "0") != 0 : unset;
}

void dp_warn(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    print_line("warning", fmt, ap);
    va_end(ap);
}

void *dp_malloc(size_t bytes, const char *what)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        dp_die(DP_EXIT_INTERNAL, "out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

void *dp_calloc(size_t count, size_t size, const char *what)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        dp_die(DP_EXIT_INTERNAL, "out of memory allocating %zu x %zu bytes for %s", count, size, what);
    return p;
}

void *dp_realloc(void *p, size_t bytes, const char *what)
{
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q)
        dp_die(DP_EXIT_INTERNAL, "out of memory growing %s to %zu bytes", what, bytes);
    return q;
}

char *dp_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = dp_malloc(n, "a string");
    memcpy(d, s, n);
    return d;
}
