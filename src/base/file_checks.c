#include "base/file_checks.h"

#include <sys/stat.h>

static const char *file_kind(mode_t m)
{
    return S_ISDIR(m) ? "directory" : S_ISFIFO(m) ? "pipe" : S_ISSOCK(m) ? "socket" : "device";
}

int file_check_input(const char *path, struct dp_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode))
        return 0;
    return dp_error_set(err, DP_EXIT_INPUT, "%s is not a regular file (a %s); give a file", path, file_kind(st.st_mode));
}

int file_check_output(const char *path, struct dp_error *err)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0; /* a new file (a missing directory shows when the temporary is created) */
    if (S_ISLNK(st.st_mode))
        return dp_error_set(err, DP_EXIT_INPUT, "%s is a symbolic link: give the file it points to (the output "
                            "is written whole and renamed into place, which would replace the link)", path);
    if (!S_ISREG(st.st_mode))
        return dp_error_set(err, DP_EXIT_INPUT, "%s exists and is not a regular file (a %s); not replacing it",
                            path, file_kind(st.st_mode));
    return 0;
}

int file_check_not_input(const char *out, const char *const *inputs, int n, struct dp_error *err)
{
    struct stat o, i;
    if (stat(out, &o) != 0)
        return 0;
    for (int k = 0; k < n; k++)
        if (inputs[k] && stat(inputs[k], &i) == 0 && i.st_dev == o.st_dev && i.st_ino == o.st_ino)
            return dp_error_set(err, DP_EXIT_INPUT, "%s: the output is the input %s; writing it would destroy what "
                                "is being read (give another output)", out, inputs[k]);
    return 0;
}

