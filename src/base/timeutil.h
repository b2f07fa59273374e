#ifndef DPTRAIN_TIMEUTIL_H
#define DPTRAIN_TIMEUTIL_H

/* Monotonic seconds, for durations. */
double time_now(void);

#endif
