#include "base/gnuplot.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* SIGPIPE ignored while commands are written: a gnuplot that is missing or quits early makes the
 * writes fail, not the process die; gnuplot_finish restores the disposition */
static struct sigaction saved_sigpipe;

FILE *gnuplot_start(const char *dir, pid_t *pid)
{
    int fds[2];
    if (pipe(fds) != 0)
        return NULL;
    struct sigaction ignore = {.sa_handler = SIG_IGN};
    sigaction(SIGPIPE, &ignore, &saved_sigpipe);
    fflush(NULL); /* the child must not write our buffered output again */
    *pid = fork();
    if (*pid < 0) {
        close(fds[0]);
        close(fds[1]);
        sigaction(SIGPIPE, &saved_sigpipe, NULL);
        return NULL;
    }
    if (*pid == 0) {
        int log = chdir(dir) == 0 ? open("gnuplot.log", O_WRONLY | O_CREAT | O_TRUNC, 0666) : -1;
        if (log < 0 || dup2(fds[0], 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        close(fds[1]);
        execlp("gnuplot", "gnuplot", (char *)NULL);
        _exit(127);
    }
    close(fds[0]);
    FILE *f = fdopen(fds[1], "w");
    if (!f) {
        close(fds[1]);
        sigaction(SIGPIPE, &saved_sigpipe, NULL);
    }
    return f;
}

int gnuplot_finish(FILE *gp, pid_t pid, const char *dir)
{
    fclose(gp);
    sigaction(SIGPIPE, &saved_sigpipe, NULL);
    int status;
    int ok = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
        char log[4200];
        snprintf(log, sizeof log, "%s/gnuplot.log", dir);
        unlink(log);
    }
    return ok ? 0 : -1;
}

void gnuplot_title(char *out, size_t len, const char *s)
{
    size_t n = 0;
    for (; *s && n + 1 < len; s++)
        if (*s != '\'' && *s != '\\' && (unsigned char)*s >= 0x20)
            out[n++] = *s;
    out[n] = 0;
}
