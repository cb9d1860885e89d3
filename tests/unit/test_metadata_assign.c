/* test_metadata_assign.c — replica assignment: leaders round-robin, followers shifted, racks distinct first (DESIGN.md §3). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/meta_ctl.h"
#include "unit/kl_check.h"

#define MAX_P 120

static int32_t rows[MAX_P][META_MAX_REPLICAS];

/* Brokers 1..n (racks[i] for broker i+1, NULL: none). */
static void assign(int n, const char *const *racks, int partitions, int rf, uint32_t start, uint32_t shift)
{
    meta_assign_broker_t b[64];
    for (int i = 0; i < n; i++) b[i] = (meta_assign_broker_t){i + 1, racks ? racks[i] : NULL};
    ck_assert_int_eq(meta_assign_replicas(b, n, partitions, rf, start, shift, rows), 0);
}

static const char *rack_of(const char *const *racks, int32_t id)
{
    return racks[id - 1];
}

START_TEST(leaders_spread_evenly_over_3_5_and_6_brokers)
{
    static const int sizes[] = {3, 5, 6};
    for (int s = 0; s < 3; s++) {
        int n = sizes[s];
        for (uint32_t start = 0; start < 7; start++) {
            assign(n, NULL, 4 * n, 3, start, start * 3);
            int leads[8] = {0};
            for (int p = 0; p < 4 * n; p++) leads[rows[p][0]]++;
            for (int b = 1; b <= n; b++) ck_assert_msg(leads[b] == 4, "%d brokers: broker %d leads %d", n, b, leads[b]);
            /* consecutive partitions are led by consecutive brokers (round-robin) */
            for (int p = 1; p < 4 * n; p++) ck_assert_int_eq(rows[p][0], rows[p - 1][0] % n + 1);
        }
        assign(n, NULL, 4 * n + 2, 2, 0, 0); /* not a multiple: counts differ by at most one */
        int leads[8] = {0}, lo = 1000, hi = 0;
        for (int p = 0; p < 4 * n + 2; p++) leads[rows[p][0]]++;
        for (int b = 1; b <= n; b++) lo = leads[b] < lo ? leads[b] : lo, hi = leads[b] > hi ? leads[b] : hi;
        ck_assert_int_le(hi - lo, 1);
    }
}
END_TEST

START_TEST(replicas_are_spread_evenly_and_never_twice_on_one_broker)
{
    for (int n = 1; n <= 9; n++)
        for (int rf = 1; rf <= n && rf <= 4; rf++) {
            assign(n, NULL, 6 * n, rf, (uint32_t)n * 7, (uint32_t)rf * 5);
            int held[10] = {0};
            for (int p = 0; p < 6 * n; p++)
                for (int i = 0; i < rf; i++) {
                    held[rows[p][i]]++;
                    for (int j = 0; j < i; j++) ck_assert_int_ne(rows[p][i], rows[p][j]);
                }
            for (int b = 1; b <= n; b++) ck_assert_int_eq(held[b], 6 * rf);
        }
}
END_TEST

START_TEST(partitions_with_the_same_leader_get_different_followers)
{
    /* The shift grows every n partitions: neighbours in the list do not
     * always follow the same leader, so a failure spreads its load. */
    for (int n = 3; n <= 6; n++) {
        assign(n, NULL, 3 * n, 2, 0, 0);
        for (int p = 0; p + n < 3 * n; p++) {
            ck_assert_int_eq(rows[p][0], rows[p + n][0]);
            ck_assert_int_ne(rows[p][1], rows[p + n][1]);
        }
    }
}
END_TEST

START_TEST(racks_a_b_c_over_6_brokers_give_every_partition_three_racks)
{
    static const char *const grouped[] = {"a", "a", "b", "b", "c", "c"};
    static const char *const striped[] = {"a", "b", "c", "a", "b", "c"};
    const char *const *layouts[] = {grouped, striped};
    for (int l = 0; l < 2; l++)
        for (uint32_t start = 0; start < 6; start++) {
            assign(6, layouts[l], 24, 3, start, start);
            int leads[7] = {0};
            for (int p = 0; p < 24; p++) {
                leads[rows[p][0]]++;
                const char *r0 = rack_of(layouts[l], rows[p][0]), *r1 = rack_of(layouts[l], rows[p][1]),
                           *r2 = rack_of(layouts[l], rows[p][2]);
                ck_assert_msg(strcmp(r0, r1) && strcmp(r0, r2) && strcmp(r1, r2), "layout %d partition %d: racks %s %s %s",
                              l, p, r0, r1, r2);
            }
            for (int b = 1; b <= 6; b++) ck_assert_int_eq(leads[b], 4);
        }
}
END_TEST

START_TEST(uneven_racks_still_put_replicas_on_distinct_racks_first)
{
    static const char *const racks[] = {"a", "a", "a", "b", "b"};
    assign(5, racks, 20, 2, 1, 3);
    for (int p = 0; p < 20; p++) ck_assert_str_ne(rack_of(racks, rows[p][0]), rack_of(racks, rows[p][1]));
    /* With more replicas than racks, every rack is used and no broker twice. */
    assign(5, racks, 20, 4, 2, 0);
    for (int p = 0; p < 20; p++) {
        int in_a = 0;
        for (int i = 0; i < 4; i++) {
            in_a += rack_of(racks, rows[p][i])[0] == 'a';
            for (int j = 0; j < i; j++) ck_assert_int_ne(rows[p][i], rows[p][j]);
        }
        ck_assert(in_a >= 1 && in_a <= 3);
    }
}
END_TEST

START_TEST(brokers_without_racks_make_the_assignment_rack_unaware)
{
    static const char *const some[] = {"a", "a", NULL, "b"};
    assign(4, some, 8, 2, 0, 0);
    int32_t with_some[8][2];
    for (int p = 0; p < 8; p++) memcpy(with_some[p], rows[p], sizeof with_some[p]);
    assign(4, NULL, 8, 2, 0, 0);
    for (int p = 0; p < 8; p++) ck_assert_int_eq(memcmp(with_some[p], rows[p], sizeof with_some[p]), 0);
}
END_TEST

START_TEST(the_start_point_rotates_leadership_and_broker_order_does_not_matter)
{
    meta_assign_broker_t b[4] = {{30, NULL}, {10, NULL}, {40, NULL}, {20, NULL}};
    ck_assert_int_eq(meta_assign_replicas(b, 4, 4, 1, 2, 0, rows), 0);
    ck_assert_int_eq(rows[0][0], 30); /* sorted 10,20,30,40; start 2 */
    ck_assert_int_eq(rows[1][0], 40);
    ck_assert_int_eq(rows[2][0], 10);
    ck_assert_int_eq(rows[3][0], 20);
}
END_TEST

START_TEST(impossible_assignments_are_refused)
{
    meta_assign_broker_t b[3] = {{1, NULL}, {2, NULL}, {2, NULL}};
    ck_assert_int_eq(meta_assign_replicas(b, 3, 1, 1, 0, 0, rows), KL_EINVAL); /* duplicate id */
    ck_assert_int_eq(meta_assign_replicas(b, 2, 1, 3, 0, 0, rows), KL_EINVAL); /* rf > brokers */
    ck_assert_int_eq(meta_assign_replicas(b, 2, 0, 1, 0, 0, rows), KL_EINVAL);
    ck_assert_int_eq(meta_assign_replicas(b, 2, 1, 0, 0, 0, rows), KL_EINVAL);
    ck_assert_int_eq(meta_assign_replicas(b, 0, 1, 1, 0, 0, rows), KL_EINVAL);
}
END_TEST

static Suite *assign_suite(void)
{
    Suite *s = suite_create("metadata-assign");
    TCase *tc = tcase_create("assign");
    tcase_add_test(tc, leaders_spread_evenly_over_3_5_and_6_brokers);
    tcase_add_test(tc, replicas_are_spread_evenly_and_never_twice_on_one_broker);
    tcase_add_test(tc, partitions_with_the_same_leader_get_different_followers);
    tcase_add_test(tc, racks_a_b_c_over_6_brokers_give_every_partition_three_racks);
    tcase_add_test(tc, uneven_racks_still_put_replicas_on_distinct_racks_first);
    tcase_add_test(tc, brokers_without_racks_make_the_assignment_rack_unaware);
    tcase_add_test(tc, the_start_point_rotates_leadership_and_broker_order_does_not_matter);
    tcase_add_test(tc, impossible_assignments_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kl_check_run(assign_suite());
}
