#ifndef DPTRAIN_STOP_SIGNALS_H
#define DPTRAIN_STOP_SIGNALS_H

/* SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 ask training to stop cleanly at the next step boundary; a
 * second SIGINT exits at once (130). Install clears any earlier request. */
void stop_signals_install(void);
/* Until a command installs its own handling (fit: the above), SIGTERM, SIGINT and SIGHUP end the
 * process as usual, but first delete the temporaries of files being written (errors.h), so an
 * interrupted import or predict leaves no half-written file behind. */
void stop_signals_remove_temporaries_on_exit(void);
/* The signal that asked to stop, or 0. */
int stop_signal_pending(void);
/* Records a stop request (another rank was signalled). */
void stop_signal_set(int sig);
const char *stop_signal_name(int sig);
/* For tests, so that a stop lands at a known step whatever the machine's speed: with
 * DPTRAIN_TEST_SIGTERM_AT_STEP=N in the environment, the process sends itself SIGTERM when its
 * optimizer step N (counted over the whole run, resumes included) has been computed. */
void stop_signals_test_point(long long step);

#endif
