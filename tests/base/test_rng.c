#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "base/keyed_permutation.h"
#include "base/rng.h"
#include "data/sklearn_split.h"
#include "test_util.h"

/* Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors). */
START_TEST(philox_known_answers)
{
    static const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
        uint32_t out[4];
        philox4x32_10(out, kat[i].ctr, kat[i].key);
        for (int j = 0; j < 4; j++)
            ck_assert_msg(out[j] == kat[i].out[j], "vector %zu word %d: %08x != %08x", i, j, out[j], kat[i].out[j]);
    }
}
END_TEST

START_TEST(uniform_in_range_and_keyed)
{
    enum { N = 10001 };
    float *a = malloc(N * sizeof(float)), *b = malloc(N * sizeof(float));
    rng_uniform_fill(a, N, 42, RNG_DOMAIN_INIT, 3, 0);
    rng_uniform_fill(b, N, 42, RNG_DOMAIN_INIT, 3, 0);
    double mean = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(a[i] >= 0.0f && a[i] < 1.0f);
        ck_assert(a[i] == b[i]);
        mean += a[i];
    }
    mean /= N;
    ck_assert_msg(mean > 0.48 && mean < 0.52, "mean %g", mean);
    /* A slice starting mid-stream is the same numbers (block-aligned offsets). */
    rng_uniform_fill(b, 400, 42, RNG_DOMAIN_INIT, 3, 25);
    ck_assert(memcmp(a + 100, b, 400 * sizeof(float)) == 0);
    rng_uniform_fill(b, N, 43, RNG_DOMAIN_INIT, 3, 0);
    ck_assert(memcmp(a, b, N * sizeof(float)) != 0);
    free(a);
    free(b);
}
END_TEST

START_TEST(shuffle_is_a_permutation)
{
    enum { N = 1000 };
    uint64_t p[N], q[N];
    int seen[N] = {0};
    for (int i = 0; i < N; i++)
        p[i] = q[i] = (uint64_t)i;
    rng_shuffle_u64(p, N, 5, RNG_DOMAIN_SHUFFLE, 1, 0);
    rng_shuffle_u64(q, N, 5, RNG_DOMAIN_SHUFFLE, 2, 0);
    int fixed = 0, same = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(p[i] < N);
        seen[p[i]]++;
        fixed += p[i] == (uint64_t)i;
        same += p[i] == q[i];
    }
    for (int i = 0; i < N; i++)
        ck_assert(seen[i] == 1);
    ck_assert_msg(fixed < 20 && same < 20, "fixed %d same %d", fixed, same);
}
END_TEST

/* Every n, small and awkward (a power of two, one past it): each position maps into [0, n), no two
 * to the same element, and the inverse undoes the forward map; another key, another order. */
START_TEST(keyed_permutation_is_a_bijection)
{
    uint64_t seed = test_seed();
    uint64_t sizes[] = {1, 2, 3, 4, 5, 17, 1000, 65536, 65537, 1 + seed % 50000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t n = sizes[k];
        struct keyed_permutation p, q;
        keyed_permutation_init(&p, n, seed, RNG_DOMAIN_SHUFFLE, 3, 0);
        keyed_permutation_init(&q, n, seed, RNG_DOMAIN_SHUFFLE, 4, 0);
        char *seen = calloc(n, 1);
        uint64_t fixed = 0, same = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t v = keyed_permutation_forward(&p, i);
            ck_assert_msg(v < n && !seen[v], "n %llu: position %llu gives %llu", (unsigned long long)n,
                          (unsigned long long)i, (unsigned long long)v);
            seen[v] = 1;
            ck_assert(keyed_permutation_inverse(&p, v) == i);
            fixed += v == i;
            same += v == keyed_permutation_forward(&q, i);
        }
        free(seen);
        if (n >= 1000)
            ck_assert_msg(fixed < n / 100 + 10 && same < n / 100 + 10, "n %llu: %llu fixed points, %llu alike",
                          (unsigned long long)n, (unsigned long long)fixed, (unsigned long long)same);
    }
}
END_TEST

/* Row counts no array could hold: random positions map into range and back. */
START_TEST(keyed_permutation_of_huge_ranges)
{
    uint64_t seed = test_seed();
    uint64_t sizes[] = {UINT64_C(1000000000000), (UINT64_C(1) << 62) + 3, UINT64_MAX};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct keyed_permutation p;
        keyed_permutation_init(&p, sizes[k], seed, RNG_DOMAIN_SHUFFLE, 1, 0);
        uint32_t w[4];
        for (uint64_t d = 0; d < 2000; d++) {
            rng_block(w, seed, RNG_DOMAIN_SPLIT, 9, d);
            uint64_t i = ((((uint64_t)w[0] << 32) | w[1]) % sizes[k]);
            uint64_t v = keyed_permutation_forward(&p, i);
            ck_assert(v < sizes[k]);
            ck_assert(keyed_permutation_inverse(&p, v) == i);
        }
    }
}
END_TEST

/* Over many keys, element 0 lands at each of 10 positions about equally often (each count is
 * 2000 +- 42 for a uniform shuffle; the bound is 7 standard deviations). */
START_TEST(keyed_permutation_positions_are_uniform)
{
    enum { N = 10, KEYS = 20000 };
    int count[N] = {0};
    for (uint32_t key = 0; key < KEYS; key++) {
        struct keyed_permutation p;
        keyed_permutation_init(&p, N, test_seed(), RNG_DOMAIN_SHUFFLE, key, 0);
        count[keyed_permutation_inverse(&p, 0)]++;
    }
    for (int i = 0; i < N; i++)
        ck_assert_msg(count[i] > 1700 && count[i] < 2300, "position %d: %d of %d", i, count[i], KEYS);
}
END_TEST

/* numpy.random.RandomState(7).permutation(569)[:12] and [-3:], as scikit-learn's split uses. */
START_TEST(sklearn_permutation_matches_numpy)
{
    static const uint64_t head[12] = {350, 259, 115, 60, 275, 53, 221, 284, 146, 480, 283, 516};
    static const uint64_t tail[3] = {537, 196, 175};
    uint64_t p[569];
    sklearn_permutation(p, 569, 7);
    for (int i = 0; i < 12; i++)
        ck_assert_msg(p[i] == head[i], "position %d: %llu != %llu", i, (unsigned long long)p[i],
                      (unsigned long long)head[i]);
    for (int i = 0; i < 3; i++)
        ck_assert(p[566 + i] == tail[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rng");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60); /* the bijection checks take seconds under the sanitizers */
    tcase_add_test(tc, philox_known_answers);
    tcase_add_test(tc, uniform_in_range_and_keyed);
    tcase_add_test(tc, shuffle_is_a_permutation);
    tcase_add_test(tc, keyed_permutation_is_a_bijection);
    tcase_add_test(tc, keyed_permutation_of_huge_ranges);
    tcase_add_test(tc, keyed_permutation_positions_are_uniform);
    tcase_add_test(tc, sklearn_permutation_matches_numpy);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
