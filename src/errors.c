#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void (*exit_hook)(int code);
static int hook_rank, hook_size = 1;

void dp_set_exit_hook(void (*hook)(int code), int rank, int size)
{
    exit_hook = hook;
    hook_rank = rank;
    hook_size = size;
}

static void print_prefix(const char *kind)
{
    if (hook_size > 1)
        fprintf(stderr, "dptrain: %s: [rank %d/%d] ", kind, hook_rank, hook_size);
    else
        fprintf(stderr, "dptrain: %s: ", kind);
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

/* The message on one line whatever it quotes (a job file's string may hold a newline): control
 * characters are written as escapes. */
static void print_line(const char *fmt, va_list ap)
{
    char msg[4096];
    vsnprintf(msg, sizeof msg, fmt, ap);
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
        if (*c == '\n')
            fputs("\\n", stderr);
        else if (*c == '\t')
            fputs("\\t", stderr);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(stderr, "\\x%02x", *c);
        else
            fputc(*c, stderr);
    }
    fputc('\n', stderr);
}

void dp_die(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    print_prefix("error");
    va_start(ap, fmt);
    print_line(fmt, ap);
    va_end(ap);
    fflush(stderr);
    if (exit_hook)
        exit_hook(code);
    exit(code);
}

void dp_die_error(const struct dp_error *e)
{
    dp_die(e->code ? e->code : DP_EXIT_INTERNAL, "%s", e->msg);
}

void dp_warn(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    print_prefix("warning");
    va_start(ap, fmt);
    print_line(fmt, ap);
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
