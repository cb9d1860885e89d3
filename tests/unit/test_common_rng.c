/* test_common_rng.c — seeded PRNG: reproducible sequences, range bounds, uniformity, chance. */
#include <check.h>
#include <stdint.h>

#include "keel/rng.h"
#include "unit/kl_check.h"

START_TEST(same_seed_gives_the_same_sequence)
{
    kl_rng_t a, b;
    kl_rng_seed(&a, 12345);
    kl_rng_seed(&b, 12345);
    for (int i = 0; i < 10000; i++) ck_assert(kl_rng_next(&a) == kl_rng_next(&b));
}
END_TEST

START_TEST(different_seeds_give_different_sequences)
{
    kl_rng_t a, b;
    kl_rng_seed(&a, 1);
    kl_rng_seed(&b, 2);
    int same = 0;
    for (int i = 0; i < 1000; i++) same += kl_rng_next(&a) == kl_rng_next(&b);
    ck_assert_int_eq(same, 0);
}
END_TEST

START_TEST(seed_zero_still_produces_varied_output)
{
    kl_rng_t r;
    kl_rng_seed(&r, 0);
    ck_assert(r.s[0] | r.s[1] | r.s[2] | r.s[3]);
    uint64_t first = kl_rng_next(&r);
    int differs = 0;
    for (int i = 0; i < 100; i++) differs += kl_rng_next(&r) != first;
    ck_assert_int_eq(differs, 100);
}
END_TEST

START_TEST(range_stays_within_lo_inclusive_hi_exclusive_and_hits_every_value)
{
    kl_rng_t r;
    kl_rng_seed(&r, 9);
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        int64_t v = kl_rng_range(&r, -5, 5);
        ck_assert_int_ge(v, -5);
        ck_assert_int_lt(v, 5);
        seen[v + 5]++;
    }
    for (int i = 0; i < 10; i++) ck_assert_int_gt(seen[i], 0);
}
END_TEST

START_TEST(empty_or_inverted_range_returns_lo)
{
    kl_rng_t r;
    kl_rng_seed(&r, 4);
    ck_assert_int_eq(kl_rng_range(&r, 7, 7), 7);
    ck_assert_int_eq(kl_rng_range(&r, 7, 3), 7);
    ck_assert_int_eq(kl_rng_range(&r, 7, 8), 7);
}
END_TEST

START_TEST(full_int64_range_works_without_overflow)
{
    kl_rng_t r;
    kl_rng_seed(&r, 5);
    int neg = 0, pos = 0;
    for (int i = 0; i < 1000; i++) {
        int64_t v = kl_rng_range(&r, INT64_MIN, INT64_MAX);
        ck_assert(v < INT64_MAX);
        neg += v < 0;
        pos += v >= 0;
    }
    ck_assert_int_gt(neg, 400);
    ck_assert_int_gt(pos, 400);
    int64_t top = kl_rng_range(&r, INT64_MAX - 1, INT64_MAX);
    ck_assert(top == INT64_MAX - 1);
}
END_TEST

START_TEST(range_is_close_to_uniform)
{
    /* A span that is not a power of two would show modulo bias if it existed. */
    kl_rng_t r;
    kl_rng_seed(&r, 6);
    enum { N = 3, DRAWS = 300000 };
    int counts[N] = {0};
    for (int i = 0; i < DRAWS; i++) counts[kl_rng_range(&r, 0, N)]++;
    for (int i = 0; i < N; i++) {
        ck_assert_int_gt(counts[i], DRAWS / N - 2000);
        ck_assert_int_lt(counts[i], DRAWS / N + 2000);
    }
}
END_TEST

START_TEST(chance_follows_its_probability_and_edges)
{
    kl_rng_t r;
    kl_rng_seed(&r, 8);
    int hits = 0;
    for (int i = 0; i < 100000; i++) hits += kl_rng_chance(&r, 1, 4);
    ck_assert_int_gt(hits, 24000);
    ck_assert_int_lt(hits, 26000);
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(kl_rng_chance(&r, 0, 5), 0);
        ck_assert_int_eq(kl_rng_chance(&r, 5, 5), 1);
        ck_assert_int_eq(kl_rng_chance(&r, 9, 5), 1);
        ck_assert_int_eq(kl_rng_chance(&r, 3, 0), 0);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_rng");
    TCase *tc = tcase_create("rng");
    tcase_add_test(tc, same_seed_gives_the_same_sequence);
    tcase_add_test(tc, different_seeds_give_different_sequences);
    tcase_add_test(tc, seed_zero_still_produces_varied_output);
    tcase_add_test(tc, range_stays_within_lo_inclusive_hi_exclusive_and_hits_every_value);
    tcase_add_test(tc, empty_or_inverted_range_returns_lo);
    tcase_add_test(tc, full_int64_range_works_without_overflow);
    tcase_add_test(tc, range_is_close_to_uniform);
    tcase_add_test(tc, chance_follows_its_probability_and_edges);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
