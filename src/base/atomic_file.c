#include "base/atomic_file.h"
#include "base/file_checks.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void atomic_file_temp_name(char *tmp, size_t size, const char *path)
{
    snprintf(tmp, size, "%s.tmp.%ld", path, (long)getpid());
}

int atomic_file_is_temp_name(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name || !t[5])
        return 0;
    for (const char *d = t + 5; *d; d++)
        if (*d < '0' || *d > '9')
            return 0;
    return 1;
}

int atomic_file_open(struct atomic_file *a, const char *path, struct dp_error *err)
{
    memset(a, 0, sizeof *a);
    if (file_check_output(path, err) != 0)
        return -1;
    snprintf(a->path, sizeof a->path, "%s", path);
    atomic_file_temp_name(a->tmp, sizeof a->tmp, path);
    a->f = fopen(a->tmp, "w");
    if (!a->f)
        return dp_error_set(err, DP_EXIT_INTERNAL, "%s: cannot write: %s", a->path, strerror(errno));
    dp_temp_file_track(a->tmp);
    return 0;
}

int atomic_file_commit(struct atomic_file *a, struct dp_error *err)
{
    /* A buffered write that failed leaves only the stream's error flag; close and rename set errno. */
    const char *why = ferror(a->f) ? "a write failed" : NULL;
    int e = 0;
    if (fclose(a->f) != 0 && !why)
        e = errno;
    a->f = NULL;
    if (!why && !e && rename(a->tmp, a->path) != 0)
        e = errno;
    if (!why && !e) {
        dp_temp_file_forget(a->tmp);
        return 0;
    }
    unlink(a->tmp);
    dp_temp_file_forget(a->tmp);
    return dp_error_set(err, DP_EXIT_INTERNAL, "%s: cannot write: %s%s", a->path, why ? why : strerror(e),
                        why || e == ENOSPC || e == EDQUOT ? " (disk full?)" : "");
}

void atomic_file_abort(struct atomic_file *a)
{
    if (a->f)
        fclose(a->f);
    a->f = NULL;
    unlink(a->tmp);
    dp_temp_file_forget(a->tmp);
}
