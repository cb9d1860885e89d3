/* test_replica_epochs.c — the leader-epoch cache (KIP-101) and the follower divergence rule (KIP-279). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "keel/err.h"
#include "keel/replica_epochs.h"
#include "unit/kl_check.h"

/* A cache holding epochs 1@0, 3@10, 5@20 (epochs 2 and 4 never wrote here). */
static void cache_1_3_5(replica_epochs_t *c)
{
    replica_epochs_init(c);
    ck_assert_int_eq(replica_epochs_assign(c, 1, 0), 0);
    ck_assert_int_eq(replica_epochs_assign(c, 3, 10), 0);
    ck_assert_int_eq(replica_epochs_assign(c, 5, 20), 0);
}

static void assert_end(const replica_epochs_t *c, int32_t epoch, int64_t log_end, int32_t want_epoch,
                       int64_t want_end)
{
    int32_t e;
    int64_t end;
    replica_epochs_end_offset(c, epoch, log_end, &e, &end);
    ck_assert_int_eq(e, want_epoch);
    ck_assert_int_eq(end, want_end);
}

START_TEST(a_newer_epoch_is_appended_and_the_latest_again_changes_nothing)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    ck_assert_int_eq(c.n, 3);
    ck_assert_int_eq(replica_epochs_assign(&c, 5, 27), 0); /* later batch of the same epoch */
    ck_assert_int_eq(c.n, 3);
    ck_assert_int_eq(c.e[2].start_offset, 20);
    ck_assert_int_eq(replica_epochs_latest(&c), 5);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(assign_refuses_an_older_epoch_or_an_earlier_start)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    ck_assert_int_eq(replica_epochs_assign(&c, 4, 30), KL_EINVAL);
    ck_assert_int_eq(replica_epochs_assign(&c, 6, 19), KL_EINVAL);
    ck_assert_int_eq(replica_epochs_assign(&c, 5, 19), KL_EINVAL);
    ck_assert_int_eq(replica_epochs_assign(&c, -1, 30), KL_EINVAL);
    ck_assert_int_eq(c.n, 3);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(an_epoch_that_wrote_nothing_is_replaced_by_the_next_at_the_same_offset)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    ck_assert_int_eq(replica_epochs_assign(&c, 7, 20), 0);
    ck_assert_int_eq(c.n, 3);
    ck_assert_int_eq(c.e[2].epoch, 7);
    ck_assert_int_eq(replica_epochs_epoch_at(&c, 25), 7);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(end_offset_of_the_latest_epoch_is_the_log_end)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    assert_end(&c, 5, 42, 5, 42);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(end_offset_of_an_older_epoch_is_the_start_of_the_next_one)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    assert_end(&c, 1, 42, 1, 10);
    assert_end(&c, 3, 42, 3, 20);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(end_offset_of_a_missing_epoch_answers_the_largest_epoch_below_it)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    assert_end(&c, 2, 42, 1, 10);
    assert_end(&c, 4, 42, 3, 20);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(end_offset_of_an_epoch_below_every_entry_is_that_epoch_up_to_the_first_start)
{
    replica_epochs_t c;
    replica_epochs_init(&c);
    ck_assert_int_eq(replica_epochs_assign(&c, 4, 100), 0);
    ck_assert_int_eq(replica_epochs_assign(&c, 6, 150), 0);
    assert_end(&c, 2, 200, 2, 100);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(end_offset_of_an_unknown_epoch_or_an_empty_cache_is_undefined)
{
    replica_epochs_t c;
    replica_epochs_init(&c);
    assert_end(&c, 1, 0, REPLICA_NO_EPOCH, REPLICA_NO_OFFSET);
    cache_1_3_5(&c);
    assert_end(&c, 6, 42, REPLICA_NO_EPOCH, REPLICA_NO_OFFSET);
    assert_end(&c, REPLICA_NO_EPOCH, 42, REPLICA_NO_EPOCH, REPLICA_NO_OFFSET);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(epoch_at_an_offset_is_the_entry_covering_it)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    ck_assert_int_eq(replica_epochs_epoch_at(&c, 0), 1);
    ck_assert_int_eq(replica_epochs_epoch_at(&c, 9), 1);
    ck_assert_int_eq(replica_epochs_epoch_at(&c, 10), 3);
    ck_assert_int_eq(replica_epochs_epoch_at(&c, 1000), 5);
    replica_epochs_free(&c);
    replica_epochs_init(&c);
    ck_assert_int_eq(replica_epochs_assign(&c, 2, 5), 0);
    ck_assert_int_eq(replica_epochs_epoch_at(&c, 4), REPLICA_NO_EPOCH);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(truncating_the_end_removes_epochs_starting_at_or_after_it)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    replica_epochs_truncate_end(&c, 21);
    ck_assert_int_eq(c.n, 3);
    replica_epochs_truncate_end(&c, 20);
    ck_assert_int_eq(c.n, 2);
    ck_assert_int_eq(replica_epochs_latest(&c), 3);
    replica_epochs_truncate_end(&c, 0);
    ck_assert_int_eq(c.n, 0);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(truncating_the_start_drops_older_epochs_and_moves_the_covering_one)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    replica_epochs_truncate_start(&c, 15);
    ck_assert_int_eq(c.n, 2);
    ck_assert_int_eq(c.e[0].epoch, 3);
    ck_assert_int_eq(c.e[0].start_offset, 15);
    replica_epochs_truncate_start(&c, 20);
    ck_assert_int_eq(c.n, 1);
    ck_assert_int_eq(c.e[0].epoch, 5);
    ck_assert_int_eq(c.e[0].start_offset, 20);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(loading_refuses_entries_that_do_not_strictly_increase)
{
    replica_epochs_t c;
    replica_epochs_init(&c);
    const replica_epoch_entry_t same_start[] = {{1, 0}, {2, 0}}, older[] = {{2, 0}, {1, 5}},
                                ok[] = {{1, 0}, {2, 5}};
    ck_assert_int_eq(replica_epochs_load(&c, same_start, 2), KL_EINVAL);
    ck_assert_int_eq(replica_epochs_load(&c, older, 2), KL_EINVAL);
    ck_assert_int_eq(replica_epochs_load(&c, ok, 2), 0);
    ck_assert_int_eq(c.n, 2);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(a_full_cache_refuses_another_epoch)
{
    replica_epochs_t c;
    replica_epochs_init(&c);
    for (int i = 0; i < REPLICA_MAX_EPOCHS; i++) ck_assert_int_eq(replica_epochs_assign(&c, i, i), 0);
    ck_assert_int_eq(replica_epochs_assign(&c, REPLICA_MAX_EPOCHS, REPLICA_MAX_EPOCHS), KL_EFULL);
    ck_assert_int_eq(c.n, REPLICA_MAX_EPOCHS);
    replica_epochs_free(&c);
}
END_TEST

/* ---- divergence rule ---- */

START_TEST(divergence_truncates_to_the_leaders_end_of_the_epoch_when_it_is_lower)
{
    replica_epochs_t c;
    cache_1_3_5(&c); /* we hold epoch 5 from 20 up to our end 40 */
    replica_truncation_t t;
    ck_assert_int_eq(replica_epochs_truncation(&c, 40, 18, 5, 30, &t), 0);
    ck_assert_int_eq(t.offset, 30);
    ck_assert(t.complete);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(divergence_truncates_to_our_own_end_of_the_epoch_when_it_is_lower)
{
    replica_epochs_t c;
    cache_1_3_5(&c); /* our epoch 3 ends at 20; the leader's went on to 25 */
    replica_truncation_t t;
    ck_assert_int_eq(replica_epochs_truncation(&c, 40, 12, 3, 25, &t), 0);
    ck_assert_int_eq(t.offset, 20);
    ck_assert(t.complete);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(divergence_on_an_epoch_we_lack_cuts_to_our_older_epochs_end_and_asks_again)
{
    replica_epochs_t c;
    cache_1_3_5(&c); /* the leader's epoch 4 is unknown to us: our 3 ends at 20 */
    replica_truncation_t t;
    ck_assert_int_eq(replica_epochs_truncation(&c, 40, 12, 4, 35, &t), 0);
    ck_assert_int_eq(t.offset, 20);
    ck_assert(!t.complete);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(divergence_never_cuts_past_our_log_end)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    replica_truncation_t t;
    ck_assert_int_eq(replica_epochs_truncation(&c, 24, 10, 5, 90, &t), 0);
    ck_assert_int_eq(t.offset, 24);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(divergence_below_the_high_watermark_is_refused_as_a_bug)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    replica_truncation_t t = {-7, false};
    ck_assert_int_eq(replica_epochs_truncation(&c, 40, 31, 5, 30, &t), KL_ESTATE);
    ck_assert_int_eq(t.offset, -7); /* untouched */
    ck_assert_int_eq(replica_epochs_truncation(&c, 40, 30, 5, 30, &t), 0); /* exactly at the HW is fine */
    ck_assert_int_eq(t.offset, 30);
    replica_epochs_free(&c);
}
END_TEST

START_TEST(divergence_with_a_malformed_answer_is_invalid)
{
    replica_epochs_t c;
    cache_1_3_5(&c);
    replica_truncation_t t;
    ck_assert_int_eq(replica_epochs_truncation(&c, 40, 0, -1, 30, &t), KL_EINVAL);
    ck_assert_int_eq(replica_epochs_truncation(&c, 40, 0, 5, -1, &t), KL_EINVAL);
    replica_epochs_free(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replica_epochs");
    TCase *cache = tcase_create("cache");
    tcase_add_test(cache, a_newer_epoch_is_appended_and_the_latest_again_changes_nothing);
    tcase_add_test(cache, assign_refuses_an_older_epoch_or_an_earlier_start);
    tcase_add_test(cache, an_epoch_that_wrote_nothing_is_replaced_by_the_next_at_the_same_offset);
    tcase_add_test(cache, end_offset_of_the_latest_epoch_is_the_log_end);
    tcase_add_test(cache, end_offset_of_an_older_epoch_is_the_start_of_the_next_one);
    tcase_add_test(cache, end_offset_of_a_missing_epoch_answers_the_largest_epoch_below_it);
    tcase_add_test(cache, end_offset_of_an_epoch_below_every_entry_is_that_epoch_up_to_the_first_start);
    tcase_add_test(cache, end_offset_of_an_unknown_epoch_or_an_empty_cache_is_undefined);
    tcase_add_test(cache, epoch_at_an_offset_is_the_entry_covering_it);
    tcase_add_test(cache, truncating_the_end_removes_epochs_starting_at_or_after_it);
    tcase_add_test(cache, truncating_the_start_drops_older_epochs_and_moves_the_covering_one);
    tcase_add_test(cache, loading_refuses_entries_that_do_not_strictly_increase);
    tcase_add_test(cache, a_full_cache_refuses_another_epoch);
    suite_add_tcase(s, cache);
    TCase *div = tcase_create("divergence");
    tcase_add_test(div, divergence_truncates_to_the_leaders_end_of_the_epoch_when_it_is_lower);
    tcase_add_test(div, divergence_truncates_to_our_own_end_of_the_epoch_when_it_is_lower);
    tcase_add_test(div, divergence_on_an_epoch_we_lack_cuts_to_our_older_epochs_end_and_asks_again);
    tcase_add_test(div, divergence_never_cuts_past_our_log_end);
    tcase_add_test(div, divergence_below_the_high_watermark_is_refused_as_a_bug);
    tcase_add_test(div, divergence_with_a_malformed_answer_is_invalid);
    suite_add_tcase(s, div);
    return kl_check_run(s);
}
