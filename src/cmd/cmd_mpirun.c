/* dptrain mpirun: launch dptrain under mpirun and keep dptrain's exit status when a signal comes.
 *
 * Open MPI's mpirun (4.1), given a SIGTERM, passes it to the ranks, kills them about a second later
 * (odls_base_sigkill_timeout) and exits 1 whatever the ranks did, so a script that requeues on
 * exit status 3 never sees it. SIGUSR1, which mpirun forwards and then waits for, makes the ranks
 * finish their step, write last.h5 and exit 3, and mpirun exits with that. This wrapper turns the
 * stop signals a scheduler or a user sends into SIGUSR1 for mpirun. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/errors.h"
#include "cmd/cli.h"

static const char help[] =
    "usage: dptrain mpirun [MPIRUN OPTIONS] [--] COMMAND [ARGS]\n"
    "\n"
    "Runs 'mpirun MPIRUN OPTIONS DPTRAIN COMMAND ARGS' with this dptrain binary (mpirun from PATH,\n"
    "or $DPTRAIN_MPIRUN) and keeps dptrain's exit status when the job is stopped: SIGTERM, SIGHUP,\n"
    "SIGINT and SIGUSR1 sent to this process reach the ranks as SIGUSR1, so they finish their step,\n"
    "write last.h5 and the job exits 3 (requeue and --resume auto). A second SIGINT is passed on as\n"
    "SIGINT (stop at once). Open MPI's mpirun given a SIGTERM itself kills the ranks about a second\n"
    "later and exits 1. COMMAND is the first argument that names a dptrain command (or the one after\n"
    "'--'). stdin is not forwarded to the ranks.\n"
    "\n"
    "example: dptrain mpirun -np 4 fit jobs/cancer_mlp.cfg\n"
    "exit status: mpirun's (dptrain's, see dptrain --help); 2 when mpirun cannot be started.\n";

static volatile sig_atomic_t launcher_pid;
static volatile sig_atomic_t interrupts;

static void forward_stop(int sig)
{
    static const char said[] = "dptrain mpirun: stop signal received; the ranks finish their step and write last.h5\n";
    int saved = errno;
    if (sig == SIGINT && ++interrupts > 1) {
        kill((pid_t)launcher_pid, SIGINT);
    } else {
        kill((pid_t)launcher_pid, sig == SIGUSR2 ? SIGUSR2 : SIGUSR1);
        if (write(STDERR_FILENO, said, sizeof said - 1) < 0) {
            /* stderr gone: the ranks still stop */
        }
    }
    errno = saved;
}

/* The index of COMMAND in argv, or dies. */
static int find_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--")) {
            if (i + 1 >= argc)
                dp_die(DP_EXIT_INPUT, "mpirun: no dptrain command after '--' (see 'dptrain mpirun --help')");
            return i + 1;
        }
        if (cli_is_command(argv[i]) && strcmp(argv[i], "mpirun") != 0)
            return i;
    }
    dp_die(DP_EXIT_INPUT, "mpirun: no dptrain command (fit, evaluate, ...) among the arguments "
           "(see 'dptrain mpirun --help')");
}

/* In the child: its own process group (a terminal's Ctrl-C reaches only this wrapper), no stdin,
 * ended with the wrapper. Reports a failed exec through the close-on-exec pipe. */
static void exec_launcher(const char *mpirun, char **args, int report_fd)
{
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGUSR1);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
        dup2(devnull, STDIN_FILENO);
        close(devnull);
    }
    execvp(mpirun, args);
    int e = errno;
    if (write(report_fd, &e, sizeof e) < 0) {
        /* nothing more to say: the parent sees an empty report and the exit status */
    }
    _exit(127);
}

int cmd_mpirun(int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        fputs(help, argc < 2 ? stderr : stdout);
        return argc < 2 ? DP_EXIT_INPUT : 0;
    }
    int command = find_command(argc, argv);
    int options_end = command > 1 && !strcmp(argv[command - 1], "--") ? command - 1 : command;
    const char *mpirun = getenv("DPTRAIN_MPIRUN") && *getenv("DPTRAIN_MPIRUN") ? getenv("DPTRAIN_MPIRUN") : "mpirun";
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        dp_die(DP_EXIT_INTERNAL, "mpirun: cannot find this dptrain binary (/proc/self/exe): %s", strerror(errno));
    self[len] = '\0';

    /* mpirun OPTIONS... SELF COMMAND ARGS... NULL */
    int n = 0;
    char **args = dp_calloc((size_t)argc + 2, sizeof *args, "mpirun arguments");
    args[n++] = (char *)mpirun;
    for (int i = 1; i < options_end; i++)
        args[n++] = argv[i];
    args[n++] = self;
    for (int i = command; i < argc; i++)
        args[n++] = argv[i];
    args[n] = NULL;

    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0)
        dp_die(DP_EXIT_INTERNAL, "mpirun: pipe: %s", strerror(errno));
    /* Block the stop signals until the handlers know the child. */
    sigset_t stops, old;
    sigemptyset(&stops);
    int forwarded[] = {SIGTERM, SIGHUP, SIGINT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&stops, forwarded[i]);
    sigprocmask(SIG_BLOCK, &stops, &old);
    pid_t pid = fork();
    if (pid < 0)
        dp_die(DP_EXIT_INTERNAL, "mpirun: fork: %s", strerror(errno));
    if (pid == 0) {
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
            signal(forwarded[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(report[0]);
        exec_launcher(mpirun, args, report[1]);
    }
    close(report[1]);
    launcher_pid = pid;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_stop;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);

    int exec_errno = 0;
    ssize_t got;
    while ((got = read(report[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR) {
    }
    close(report[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            dp_die(DP_EXIT_INTERNAL, "mpirun: waiting for %s: %s", mpirun, strerror(errno));
    free(args);
    if (got == (ssize_t)sizeof exec_errno)
        dp_die(DP_EXIT_INPUT, "mpirun: cannot run '%s': %s (set DPTRAIN_MPIRUN or put mpirun on PATH)", mpirun,
               strerror(exec_errno));
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
