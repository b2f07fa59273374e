/* The reader thread: batch i+1 is read, checked and normalized into the other host buffer while
 * step i runs, so reading (HDF5, synthetic rows, uint8 scaling) is off the step's critical path.
 *
 * One request at a time: request() hands rows [pos, pos + count) and a buffer slot (0 or 1) to the
 * thread and returns at once; wait() returns when they are in the buffer. Before writing into a
 * buffer the thread waits for that buffer's fence (the device's copy from it two steps ago).
 * Results are the same as reading on the calling thread (the reader's order depends on positions
 * only); `data.reader_thread = false` does exactly that.
 *
 * The thread is the only user of the batch reader between request() and wait(). Anything else
 * that uses HDF5 (checkpoints, validation) first calls quiesce(), so no two threads are ever in
 * HDF5 at once, whether or not the site's HDF5 was built thread-safe. */
#ifndef DPTRAIN_BATCH_PREFETCH_H
#define DPTRAIN_BATCH_PREFETCH_H

#include <pthread.h>
#include <stdint.h>

#include "net/backend.h"
#include "data/augment.h"
#include "data/batch_reader.h"
#include "base/errors.h"

struct batch_prefetch {
    struct batch_reader *reader;
    const struct backend *be;
    struct host_batch *hb;     /* two buffers */
    int threaded;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    int requested;             /* a request is outstanding (queued, being read, or read) */
    int busy;                  /* the thread has it and has not finished */
    int quit;
    int slot;
    int64_t pos, count;
    int rc;
    struct dp_error err;
    /* training-time augmentation of every batch read (batch_prefetch_set_augment) */
    const struct augment_spec *augment;
    int naugment;
    struct shape shape;
    uint64_t seed;
    float *scratch;
};

/* threaded 0: every request is read at once on the calling thread. */
int batch_prefetch_start(struct batch_prefetch *p, struct batch_reader *reader, const struct backend *be,
                         struct host_batch hb[2], int threaded, struct dp_error *err);
/* Every batch read from now on is augmented by specs (they stay the caller's) on the reader thread,
 * keyed by seed, the reader's epoch and each row's sample id; shape: one sample's (H, W, C). */
void batch_prefetch_set_augment(struct batch_prefetch *p, const struct augment_spec *specs, int n,
                                const struct shape *shape, uint64_t seed);
/* Asks for epoch positions [pos, pos + count) (count may be 0: only the fence) into hb[slot]. */
void batch_prefetch_request(struct batch_prefetch *p, int slot, int64_t pos, int64_t count);
/* 1 while a request is outstanding (made and not yet collected by wait). */
int batch_prefetch_pending(struct batch_prefetch *p);
/* Collects the outstanding request: 0 when hb[slot] holds the rows, -1 with err set. */
int batch_prefetch_wait(struct batch_prefetch *p, struct dp_error *err);
/* Returns when the thread is idle (an outstanding request stays outstanding, read). */
void batch_prefetch_quiesce(struct batch_prefetch *p);
/* Ends the thread (after the read in progress, if any). */
void batch_prefetch_stop(struct batch_prefetch *p);

#endif
