/* Helpers shared by the unit tests. */
#ifndef DPTRAIN_TEST_UTIL_H
#define DPTRAIN_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Fresh random inputs every run; the seed is printed so a failure can be replayed with
 * DPTRAIN_TEST_SEED=<seed>. */
static inline uint64_t test_seed(void)
{
    static uint64_t seed;
    if (!seed) {
        const char *env = getenv("DPTRAIN_TEST_SEED");
        seed = env ? strtoull(env, NULL, 10) : ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
        fprintf(stderr, "test seed: %llu (replay with DPTRAIN_TEST_SEED)\n", (unsigned long long)seed);
    }
    return seed;
}

/* A temporary directory for files the test writes. */
static inline const char *test_tmpdir(void)
{
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/dptrain-test-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return dir;
}

/* Runs a suite and turns its result into an exit status. */
#ifdef CHECK_H
static inline int test_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
#endif

#endif
