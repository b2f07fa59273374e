/* Helpers shared by the unit tests. */
#ifndef DPTRAIN_TEST_UTIL_H
#define DPTRAIN_TEST_UTIL_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static char test_tmpdir_path[256];

/* The test directory holds plain files only. */
static inline void test_tmpdir_remove(void)
{
    DIR *d = opendir(test_tmpdir_path);
    if (!d)
        return;
    struct dirent *e;
    char path[512];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", test_tmpdir_path, e->d_name);
            remove(path);
        }
    closedir(d);
    rmdir(test_tmpdir_path);
}

/* A temporary directory for files the test writes, removed when the process that made it exits
 * (Check runs each test in a process of its own, so each test has its own). */
static inline const char *test_tmpdir(void)
{
    if (!test_tmpdir_path[0]) {
        snprintf(test_tmpdir_path, sizeof test_tmpdir_path, "/tmp/dptrain-test-XXXXXX");
        if (!mkdtemp(test_tmpdir_path)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(test_tmpdir_remove);
    }
    return test_tmpdir_path;
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
