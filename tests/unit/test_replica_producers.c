/* test_replica_producers.c — idempotent producer state (KIP-98): verdicts, duplicates, epochs, eviction, replay. */
#include <check.h>
#include <stdint.h>

#include "keel/err.h"
#include "keel/replica_producers.h"
#include "unit/kl_check.h"

#define PID 7000

static replica_batch_t batch(int64_t pid, int16_t epoch, int32_t seq, int32_t count, int64_t offset)
{
    return (replica_batch_t){.base_offset = offset, .last_offset_delta = count - 1, .leader_epoch = 1,
                             .producer_id = pid, .producer_epoch = epoch, .base_sequence = seq};
}

/* Checks a batch as a leader would and records it at `offset` when appended. */
static int offer(replica_producers_t *s, replica_batch_t b, replica_producer_batch_t *dup)
{
    const int v = replica_producers_check(s, &b, dup);
    if (v == 0) ck_assert_int_eq(replica_producers_record(s, &b), 0);
    return v;
}

START_TEST(a_batch_without_a_producer_id_is_never_checked)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    const replica_batch_t b = batch(REPLICA_NO_PRODUCER_ID, -1, -1, 3, 0);
    ck_assert_int_eq(offer(&s, b, NULL), 0);
    ck_assert_int_eq(offer(&s, b, NULL), 0);
    ck_assert_int_eq(s.n, 0);
    replica_producers_free(&s);
}
END_TEST

START_TEST(an_unknown_producer_may_start_at_any_sequence)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 42, 2, 0), NULL), 0);
    const replica_producer_t *p = replica_producers_find(&s, PID);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->batches[0].last_seq, 43);
    replica_producers_free(&s);
}
END_TEST

START_TEST(the_next_sequence_is_appended_and_a_gap_is_out_of_order)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 0, 3, 0), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 3, 2, 3), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 6, 1, 5), NULL), KL_ESEQUENCE); /* 5 is missing */
    ck_assert_int_eq(offer(&s, batch(PID, 0, 4, 2, 5), NULL), KL_ESEQUENCE); /* overlaps, not a retry */
    ck_assert_int_eq(offer(&s, batch(PID, 0, 5, 1, 5), NULL), 0);
    replica_producers_free(&s);
}
END_TEST

START_TEST(a_retry_of_any_of_the_last_five_batches_gets_its_original_offsets)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    for (int i = 0; i < 7; i++) ck_assert_int_eq(offer(&s, batch(PID, 0, 2 * i, 2, 100 + 10 * i), NULL), 0);
    for (int i = 2; i < 7; i++) {
        replica_producer_batch_t dup = {0};
        ck_assert_int_eq(offer(&s, batch(PID, 0, 2 * i, 2, 999), &dup), KL_EDUPLICATE);
        ck_assert_int_eq(dup.first_offset, 100 + 10 * i);
        ck_assert_int_eq(dup.last_offset, 100 + 10 * i + 1);
    }
    /* the sixth most recent is no longer remembered: not provably a retry */
    ck_assert_int_eq(offer(&s, batch(PID, 0, 2, 2, 999), NULL), KL_ESEQUENCE);
    replica_producers_free(&s);
}
END_TEST

START_TEST(an_older_producer_epoch_is_fenced)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    ck_assert_int_eq(offer(&s, batch(PID, 3, 0, 1, 0), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(PID, 2, 1, 1, 1), NULL), KL_EFENCED);
    ck_assert_int_eq(offer(&s, batch(PID, 2, 0, 1, 1), NULL), KL_EFENCED); /* even as a "retry" */
    replica_producers_free(&s);
}
END_TEST

START_TEST(a_new_producer_epoch_starts_at_sequence_zero_and_forgets_the_old_batches)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 0, 5, 0), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(PID, 1, 5, 1, 5), NULL), KL_ESEQUENCE);
    ck_assert_int_eq(offer(&s, batch(PID, 1, 0, 1, 5), NULL), 0);
    const replica_producer_t *p = replica_producers_find(&s, PID);
    ck_assert_int_eq(p->epoch, 1);
    ck_assert_int_eq(p->n_batches, 1);
    ck_assert_int_eq(offer(&s, batch(PID, 1, 0, 1, 6), NULL), KL_EDUPLICATE);
    ck_assert_int_eq(offer(&s, batch(PID, 1, 1, 1, 6), NULL), 0);
    replica_producers_free(&s);
}
END_TEST

START_TEST(sequences_wrap_from_int32_max_to_zero)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    ck_assert_int_eq(offer(&s, batch(PID, 0, INT32_MAX - 1, 4, 0), NULL), 0);
    ck_assert_int_eq(replica_producers_find(&s, PID)->batches[0].last_seq, 1);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 2, 1, 4), NULL), 0);
    replica_producers_free(&s);
    replica_producers_init(&s, 8);
    ck_assert_int_eq(offer(&s, batch(PID, 0, INT32_MAX, 1, 0), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 0, 1, 1), NULL), 0);
    replica_producers_free(&s);
}
END_TEST

START_TEST(malformed_fields_are_invalid)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    const replica_batch_t bad[] = {batch(PID, -1, 0, 1, 0), batch(PID, 0, -1, 1, 0), batch(PID, 0, 0, 0, 0),
                                   batch(-2, 0, 0, 1, 0)};
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(replica_producers_check(&s, &bad[i], NULL), KL_EINVAL);
        ck_assert_int_eq(replica_producers_record(&s, &bad[i]), KL_EINVAL);
    }
    ck_assert_int_eq(s.n, 0);
    replica_producers_free(&s);
}
END_TEST

START_TEST(recording_a_batch_not_after_the_producers_last_is_refused)
{
    replica_producers_t s;
    replica_producers_init(&s, 8);
    ck_assert_int_eq(offer(&s, batch(PID, 0, 0, 3, 10), NULL), 0);
    const replica_batch_t back = batch(PID, 0, 3, 1, 12);
    ck_assert_int_eq(replica_producers_record(&s, &back), KL_EINVAL);
    ck_assert_int_eq(replica_producers_find(&s, PID)->n_batches, 1);
    replica_producers_free(&s);
}
END_TEST

START_TEST(at_the_bound_the_producer_whose_last_batch_is_oldest_is_evicted)
{
    replica_producers_t s;
    replica_producers_init(&s, 3);
    ck_assert_int_eq(offer(&s, batch(1, 0, 0, 1, 0), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(2, 0, 0, 1, 1), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(3, 0, 0, 1, 2), NULL), 0);
    ck_assert_int_eq(offer(&s, batch(1, 0, 1, 1, 3), NULL), 0); /* producer 2 is now the oldest */
    ck_assert_int_eq(offer(&s, batch(4, 0, 0, 1, 4), NULL), 0);
    ck_assert_int_eq(s.n, 3);
    ck_assert_ptr_null(replica_producers_find(&s, 2));
    ck_assert_ptr_nonnull(replica_producers_find(&s, 1));
    ck_assert_ptr_nonnull(replica_producers_find(&s, 4));
    /* a forgotten producer is taken back at any sequence (KIP-360) */
    ck_assert_int_eq(offer(&s, batch(2, 0, 9, 1, 5), NULL), 0);
    replica_producers_free(&s);
}
END_TEST

/* A deterministic workload: 12 producers over a table of 8, retries, gaps,
 * zombies and epoch bumps; every appended batch goes to `log`. */
static int workload(replica_producers_t *s, replica_batch_t *log, int max_log)
{
    uint64_t x = 88172645463325252ull;
    int32_t next_seq[12] = {0};
    int16_t epoch[12] = {0};
    int n = 0;
    int64_t offset = 0;
    for (int step = 0; step < 4000 && n < max_log; step++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        const int p = (int)(x % 12), what = (int)((x >> 8) % 10), count = 1 + (int)((x >> 16) % 4);
        int32_t seq = next_seq[p];
        int16_t e = epoch[p];
        if (what == 0 && seq >= count) seq -= count; /* a retry (or an overlap) */
        if (what == 1) seq += 1;                      /* a gap */
        if (what == 2 && e > 0) e--;                  /* a zombie */
        if (what == 3) e++, seq = 0;                  /* an epoch bump */
        const replica_batch_t b = batch(100 + p, e, seq, count, offset);
        if (offer(s, b, NULL) != 0) continue;
        log[n++] = b;
        offset += count;
        next_seq[p] = seq + count;
        epoch[p] = e;
    }
    return n;
}

START_TEST(replaying_the_log_rebuilds_exactly_the_live_state)
{
    enum { MAX_LOG = 4000 };
    static replica_batch_t log[MAX_LOG];
    replica_producers_t live, rebuilt;
    replica_producers_init(&live, 8);
    replica_producers_init(&rebuilt, 8);
    const int n = workload(&live, log, MAX_LOG);
    ck_assert_int_gt(n, 1000);
    ck_assert_int_eq(live.n, 8); /* evictions happened */
    for (int i = 0; i < n; i++) ck_assert_int_eq(replica_producers_record(&rebuilt, &log[i]), 0);
    ck_assert(replica_producers_equal(&live, &rebuilt));
    replica_producers_free(&live);
    replica_producers_free(&rebuilt);
}
END_TEST

START_TEST(moving_the_log_start_forgets_batches_and_producers_wholly_below_it)
{
    replica_producers_t s, rebuilt;
    replica_producers_init(&s, 8);
    replica_producers_init(&rebuilt, 8);
    const replica_batch_t log[] = {batch(1, 0, 0, 2, 0), batch(2, 0, 0, 2, 2), batch(1, 0, 2, 2, 4),
                                   batch(3, 0, 0, 2, 6)};
    for (int i = 0; i < 4; i++) ck_assert_int_eq(offer(&s, log[i], NULL), 0);
    replica_producers_truncate_start(&s, 5); /* mid-batch: the batch at 4..5 stays */
    ck_assert_int_eq(s.n, 2);
    ck_assert_ptr_null(replica_producers_find(&s, 2));
    ck_assert_int_eq(replica_producers_find(&s, 1)->n_batches, 1);
    for (int i = 2; i < 4; i++) ck_assert_int_eq(replica_producers_record(&rebuilt, &log[i]), 0);
    ck_assert(replica_producers_equal(&s, &rebuilt));
    replica_producers_free(&s);
    replica_producers_free(&rebuilt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replica_producers");
    TCase *tc = tcase_create("producers");
    tcase_add_test(tc, a_batch_without_a_producer_id_is_never_checked);
    tcase_add_test(tc, an_unknown_producer_may_start_at_any_sequence);
    tcase_add_test(tc, the_next_sequence_is_appended_and_a_gap_is_out_of_order);
    tcase_add_test(tc, a_retry_of_any_of_the_last_five_batches_gets_its_original_offsets);
    tcase_add_test(tc, an_older_producer_epoch_is_fenced);
    tcase_add_test(tc, a_new_producer_epoch_starts_at_sequence_zero_and_forgets_the_old_batches);
    tcase_add_test(tc, sequences_wrap_from_int32_max_to_zero);
    tcase_add_test(tc, malformed_fields_are_invalid);
    tcase_add_test(tc, recording_a_batch_not_after_the_producers_last_is_refused);
    tcase_add_test(tc, at_the_bound_the_producer_whose_last_batch_is_oldest_is_evicted);
    tcase_add_test(tc, replaying_the_log_rebuilds_exactly_the_live_state);
    tcase_add_test(tc, moving_the_log_start_forgets_batches_and_producers_wholly_below_it);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
