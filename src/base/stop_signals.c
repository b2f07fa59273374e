#include "base/stop_signals.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/errors.h"

/* Stop requests from signals: the first asks for a clean stop at the next step boundary, a second
 * SIGINT ends the process at once (checkpoints are renamed into place, so the last good one stays). */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    if (sig == SIGINT && stop_signal == SIGINT) {
        static const char msg[] = "\ndptrain: second interrupt, exiting now (last.h5 untouched)\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        dp_temp_files_remove(); /* a checkpoint half written */
        _exit(130);
    }
    stop_signal = sig;
}

static long long test_sigterm_step = -1;

void stop_signals_test_point(long long step)
{
    if (step == test_sigterm_step)
        raise(SIGTERM);
}

void stop_signals_install(void)
{
    const char *at = getenv("DPTRAIN_TEST_SIGTERM_AT_STEP");
    char *end;
    test_sigterm_step = at && *at ? strtoll(at, &end, 10) : -1;
    if (at && *at && *end)
        test_sigterm_step = -1;
    stop_signal = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
}

static void on_exit_signal(int sig)
{
    dp_temp_files_remove();
    signal(sig, SIG_DFL);
    raise(sig); /* ends the process with the signal's own status */
}

void stop_signals_remove_temporaries_on_exit(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_exit_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old;
        /* a signal the launcher set to be ignored (nohup, a background job's SIGINT) stays ignored */
        if (sigaction(sigs[i], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
}

const char *stop_signal_name(int sig)
{
    switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    default: return "a signal";
    }
}

int stop_signal_pending(void) { return stop_signal; }

void stop_signal_set(int sig) { stop_signal = sig; }
