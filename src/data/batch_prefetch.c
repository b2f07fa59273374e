#include "data/batch_prefetch.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/h5io.h"

/* Reads the request into its buffer; the device's copy from that buffer must be done first. */
static int read_request(struct batch_prefetch *p, int slot, int64_t pos, int64_t count, struct dp_error *err)
{
    p->be->host_fence_wait(slot);
    if (count <= 0)
        return 0;
    if (batch_reader_read(p->reader, pos, count, &p->hb[slot], err) != 0)
        return -1;
    if (p->naugment > 0)
        augment_batch(p->augment, p->naugment, &p->shape, p->hb[slot].x, p->hb[slot].rows, p->hb[slot].sample_ids,
                      p->seed, p->reader->epoch, p->scratch);
    return 0;
}

void batch_prefetch_set_augment(struct batch_prefetch *p, const struct augment_spec *specs, int n,
                                const struct shape *shape, uint64_t seed)
{
    batch_prefetch_quiesce(p);
    p->augment = specs;
    p->naugment = n;
    p->shape = *shape;
    p->seed = seed;
    free(p->scratch);
    p->scratch = dp_malloc((size_t)shape_size(shape) * sizeof(float), "an augmented image");
}

static void *reader_thread(void *arg)
{
    struct batch_prefetch *p = arg;
    p->be->bind_thread();
    h5io_init_thread(); /* HDF5's error printing is off per thread: this one reads too */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && !p->busy)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->quit)
            break;
        int slot = p->slot;
        int64_t pos = p->pos, count = p->count;
        pthread_mutex_unlock(&p->mu);
        struct dp_error err = {0};
        int rc = read_request(p, slot, pos, count, &err);
        pthread_mutex_lock(&p->mu);
        p->rc = rc;
        p->err = err;
        p->busy = 0;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int batch_prefetch_start(struct batch_prefetch *p, struct batch_reader *reader, const struct backend *be,
                         struct host_batch hb[2], int threaded, struct dp_error *err)
{
    (void)err;
    memset(p, 0, sizeof *p);
    p->reader = reader;
    p->be = be;
    p->hb = hb;
    if (!threaded)
        return 0;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    /* Signals (SIGTERM, SIGUSR1 before the time limit) go to the training thread, never into the
     * middle of a read here: the thread starts with all of them blocked. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = pthread_create(&p->thread, NULL, reader_thread, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        dp_warn("cannot start the batch reader thread (%s); reading on the training thread", strerror(rc));
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        return 0;
    }
    p->threaded = 1;
    return 0;
}

void batch_prefetch_request(struct batch_prefetch *p, int slot, int64_t pos, int64_t count)
{
    DP_ASSERT(!p->requested && (slot == 0 || slot == 1));
    if (!p->threaded) {
        memset(&p->err, 0, sizeof p->err);
        p->rc = read_request(p, slot, pos, count, &p->err);
        p->requested = 1;
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->slot = slot;
    p->pos = pos;
    p->count = count;
    p->requested = 1;
    p->busy = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int batch_prefetch_pending(struct batch_prefetch *p)
{
    return p->requested; /* only the calling thread changes it */
}

int batch_prefetch_wait(struct batch_prefetch *p, struct dp_error *err)
{
    DP_ASSERT(p->requested);
    if (p->threaded) {
        pthread_mutex_lock(&p->mu);
        while (p->busy)
            pthread_cond_wait(&p->cv, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
    p->requested = 0;
    if (p->rc != 0 && err)
        *err = p->err;
    return p->rc;
}

void batch_prefetch_quiesce(struct batch_prefetch *p)
{
    if (!p->threaded)
        return;
    pthread_mutex_lock(&p->mu);
    while (p->busy)
        pthread_cond_wait(&p->cv, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void batch_prefetch_stop(struct batch_prefetch *p)
{
    if (p->threaded) {
        pthread_mutex_lock(&p->mu);
        p->quit = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->thread, NULL);
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
    }
    free(p->scratch);
    memset(p, 0, sizeof *p);
}
