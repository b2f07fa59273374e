/* Which GPU each rank takes: one rank per GPU by node-local rank, the --gpus-per-task case, ranks
 * sharing a GPU only with the MPI all-reduce, and the node-order fallback for the local rank. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "dist/binding.h"
#include "test_util.h"

/* Rank r on host hosts[r], seeing `visible[r]` (count counts[r]), launcher local rank locals[r]. */
static void make(struct binding *all, int P, const char *const *hosts, const char *const *visible, const int *counts,
                 const int *locals)
{
    memset(all, 0, (size_t)P * sizeof *all);
    for (int r = 0; r < P; r++) {
        all[r].rank = r;
        snprintf(all[r].host, sizeof all[r].host, "%s", hosts[r]);
        snprintf(all[r].visible, sizeof all[r].visible, "%s", visible[r]);
        snprintf(all[r].local_source, sizeof all[r].local_source, "%s", locals[r] < 0 ? "" : "SLURM_LOCALID");
        all[r].visible_count = counts[r];
        all[r].local_rank = locals[r];
    }
}

START_TEST(one_rank_per_gpu_on_two_nodes)
{
    const char *hosts[] = {"a", "a", "b", "b"}, *vis[] = {"0,1", "0,1", "0,1", "0,1"};
    const int counts[] = {2, 2, 2, 2}, locals[] = {0, 1, 0, 1};
    for (int me = 0; me < 4; me++) {
        struct binding all[4];
        struct dp_error err = {0};
        int isolated = -1;
        make(all, 4, hosts, vis, counts, locals);
        ck_assert_int_eq(binding_plan(all, 4, me, 1, ALLREDUCE_AUTO, &isolated, &err), 0);
        ck_assert_int_eq(all[me].device, me % 2);
        ck_assert_int_eq(isolated, 0);
    }
}
END_TEST

START_TEST(more_ranks_than_gpus_needs_mpi_allreduce)
{
    const char *hosts[] = {"n1", "n1", "n1"}, *vis[] = {"0,1", "0,1", "0,1"};
    const int counts[] = {2, 2, 2}, locals[] = {0, 1, 2};
    struct binding all[3];
    struct dp_error err = {0};
    int isolated;
    make(all, 3, hosts, vis, counts, locals);
    ck_assert_int_eq(binding_plan(all, 3, 2, 1, ALLREDUCE_NCCL, &isolated, &err), -1);
    ck_assert_int_eq(err.code, DP_EXIT_INPUT);
    ck_assert_msg(strstr(err.msg, "3 ranks on n1 but 2 visible GPUs") && strstr(err.msg, "fit.allreduce"), "%s",
                  err.msg);
    make(all, 3, hosts, vis, counts, locals);
    ck_assert_int_eq(binding_plan(all, 3, 2, 1, ALLREDUCE_MPI, &isolated, &err), 0);
    ck_assert_int_eq(all[2].device, 0); /* 2 mod 2: shares GPU 0 with rank 0 */
}
END_TEST

START_TEST(gpus_per_task_isolation_is_detected)
{
    const char *hosts[] = {"n1", "n1"}, *vis[] = {"0", "1"};
    const int counts[] = {1, 1}, locals[] = {0, 1};
    struct binding all[2];
    struct dp_error err = {0};
    int isolated = 0;
    make(all, 2, hosts, vis, counts, locals);
    ck_assert_int_eq(binding_plan(all, 2, 1, 1, ALLREDUCE_AUTO, &isolated, &err), 0);
    ck_assert_int_eq(isolated, 1);
    ck_assert_int_eq(all[1].device, 0);
    /* The same single device for both ranks is sharing, not isolation. */
    const char *same[] = {"0", "0"};
    make(all, 2, hosts, same, counts, locals);
    ck_assert_int_eq(binding_plan(all, 2, 1, 1, ALLREDUCE_AUTO, &isolated, &err), -1);
}
END_TEST

START_TEST(local_rank_falls_back_to_node_order)
{
    /* mpirun inside an allocation: no usable launcher local rank (-1), or one out of range. */
    const char *hosts[] = {"a", "b", "a", "b"}, *vis[] = {"unset", "unset", "unset", "unset"};
    const int counts[] = {2, 2, 2, 2}, locals[] = {-1, 7, -1, -1};
    const int want_local[] = {0, 0, 1, 1};
    for (int me = 0; me < 4; me++) {
        struct binding all[4];
        struct dp_error err = {0};
        int isolated;
        make(all, 4, hosts, vis, counts, locals);
        ck_assert_int_eq(binding_plan(all, 4, me, 1, ALLREDUCE_AUTO, &isolated, &err), 0);
        ck_assert_int_eq(all[me].local_rank, want_local[me]);
        ck_assert_str_eq(all[me].local_source, "node order");
        ck_assert_int_eq(all[me].device, want_local[me]);
    }
}
END_TEST

START_TEST(cpu_and_missing_gpu)
{
    const char *hosts[] = {"a"}, *vis[] = {"unset"};
    const int counts[] = {0}, locals[] = {-1};
    struct binding all[1];
    struct dp_error err = {0};
    int isolated;
    make(all, 1, hosts, vis, counts, locals);
    ck_assert_int_eq(binding_plan(all, 1, 0, 0, ALLREDUCE_AUTO, &isolated, &err), 0);
    ck_assert_int_eq(all[0].device, -1);
    ck_assert_int_eq(binding_plan(all, 1, 0, 1, ALLREDUCE_AUTO, &isolated, &err), -1);
    ck_assert_msg(strstr(err.msg, "no CUDA device visible on a"), "%s", err.msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("binding");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, one_rank_per_gpu_on_two_nodes);
    tcase_add_test(tc, more_ranks_than_gpus_needs_mpi_allreduce);
    tcase_add_test(tc, gpus_per_task_isolation_is_detected);
    tcase_add_test(tc, local_rank_falls_back_to_node_order);
    tcase_add_test(tc, cpu_and_missing_gpu);
    suite_add_tcase(s, tc);
    return test_run_suite(s);
}
