/* test_storage_raftlog.c — Raft log on segments: entry round trips, truncation at any offset (also interrupted by a crash), reset and retention. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/raftlog.h"
#include "keel/recbatch.h"
#include "unit/kl_tmpdir.h"


/* Entry i's payload, distinct per offset and epoch; storage for the data. */
static char payload[4096][32];

static raft_entry_t entry(int64_t off, int32_t epoch, bool control)
{
    char *p = payload[off % 4096];
    int n = snprintf(p, sizeof payload[0], "e%lld@%d", (long long)off, (int)epoch);
    return (raft_entry_t){.offset = off,
                          .epoch = epoch,
                          .control = control,
                          .len = (uint32_t)n,
                          .data = (const uint8_t *)p};
}

/* Appends entries [from, to) of `epoch`; the first is a control entry when asked. */
static void append_range(raftlog_t *rl, int64_t from, int64_t to, int32_t epoch, bool first_control)
{
    raft_entry_t e[512];
    ck_assert_int_le(to - from, 512);
    for (int64_t o = from; o < to; o++) e[o - from] = entry(o, epoch, first_control && o == from);
    ck_assert_int_eq(raftlog_append(rl, e, (int)(to - from)), 0);
}

static raftlog_t *open_rl(const seglog_config_t *c)
{
    raftlog_t *rl;
    ck_assert_int_eq(raftlog_open(dir, c, &rl), 0);
    return rl;
}

static seglog_config_t small(void)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    c.segment_bytes = SEGLOG_MIN_SEGMENT_BYTES;
    c.index_interval_bytes = 64;
    return c;
}

/* Loads and checks offsets [start, end) against the expected epochs. */
static void check_loaded(raftlog_t *rl, int64_t start, int64_t end, const int32_t *epoch_of)
{
    const raft_entry_t *e;
    int n;
    ck_assert_int_eq(raftlog_load(rl, &e, &n), 0);
    ck_assert_int_eq(n, end - start);
    ck_assert_int_eq(raftlog_start_offset(rl), start);
    ck_assert_int_eq(raftlog_end_offset(rl), end);
    for (int i = 0; i < n; i++) {
        int64_t off = start + i;
        raft_entry_t want = entry(off, epoch_of[off], false);
        ck_assert_int_eq(e[i].offset, off);
        ck_assert_int_eq(e[i].epoch, epoch_of[off]);
        ck_assert_uint_eq(e[i].len, want.len);
        ck_assert_mem_eq(e[i].data, want.data, want.len);
    }
    ck_assert_int_eq(raftlog_last_epoch(rl), n ? epoch_of[end - 1] : 0);
    raftlog_release_loaded(rl);
}

START_TEST(entries_survive_reopen_with_epochs_and_control_flags)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    raftlog_t *rl = open_rl(&c);
    ck_assert_int_eq(raftlog_last_epoch(rl), 0);
    append_range(rl, 0, 3, 1, true);
    append_range(rl, 3, 8, 2, true);
    raft_entry_t empty = {.offset = 8, .epoch = 2, .len = 0, .data = NULL};
    ck_assert_int_eq(raftlog_append(rl, &empty, 1), 0);
    ck_assert_int_eq(raftlog_sync(rl), 0);
    ck_assert_int_eq(raftlog_last_epoch(rl), 2);
    raftlog_close(rl);

    rl = open_rl(&c);
    ck_assert_int_eq(raftlog_end_offset(rl), 9);
    ck_assert_int_eq(raftlog_last_epoch(rl), 2);
    const raft_entry_t *e;
    int n;
    ck_assert_int_eq(raftlog_load(rl, &e, &n), 0);
    ck_assert_int_eq(n, 9);
    for (int i = 0; i < 8; i++) {
        raft_entry_t want = entry(i, i < 3 ? 1 : 2, false);
        ck_assert_int_eq(e[i].offset, i);
        ck_assert_int_eq(e[i].epoch, want.epoch);
        ck_assert(e[i].control == (i == 0 || i == 3));
        ck_assert_mem_eq(e[i].data, want.data, want.len);
    }
    ck_assert_uint_eq(e[8].len, 0);
    /* A second load replaces the first. */
    ck_assert_int_eq(raftlog_load(rl, &e, &n), 0);
    ck_assert_int_eq(n, 9);
    raftlog_close(rl); /* frees what is still loaded */
}
END_TEST

START_TEST(appends_must_continue_the_log)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    raftlog_t *rl = open_rl(&c);
    append_range(rl, 0, 2, 1, false);
    raft_entry_t e[2] = {entry(3, 1, false), entry(4, 1, false)};
    ck_assert_int_eq(raftlog_append(rl, e, 2), KL_EINVAL);
    e[0] = entry(2, 1, false);
    ck_assert_int_eq(raftlog_append(rl, e, 2), KL_EINVAL); /* 2 then 4 */
    ck_assert_int_eq(raftlog_end_offset(rl), 2);
    ck_assert_int_eq(raftlog_append(rl, e, 0), 0);
    raftlog_close(rl);
}
END_TEST

START_TEST(truncating_at_every_offset_keeps_exactly_the_prefix_and_appends_continue)
{
    int32_t epochs[40];
    for (int i = 0; i < 40; i++) epochs[i] = i < 6 ? 1 : i < 16 ? 2 : 3;
    for (int64_t cut = 0; cut <= 16; cut++) {
        kl_tmpdir_setup();
        seglog_config_t c;
        seglog_config_defaults(&c);
        raftlog_t *rl = open_rl(&c);
        append_range(rl, 0, 6, 1, false); /* batch [0,6) */
        append_range(rl, 6, 16, 2, false); /* batch [6,16) */
        ck_assert_int_eq(raftlog_sync(rl), 0);
        ck_assert_int_eq(raftlog_truncate(rl, cut), 0);
        ck_assert_int_eq(raftlog_end_offset(rl), cut);
        check_loaded(rl, 0, cut, epochs);
        raftlog_close(rl);

        /* The truncation is durable, and the log continues from it. */
        rl = open_rl(&c);
        check_loaded(rl, 0, cut, epochs);
        int32_t after[40];
        memcpy(after, epochs, sizeof after);
        for (int i = (int)cut; i < 40; i++) after[i] = 3;
        append_range(rl, cut, cut + 5, 3, false);
        ck_assert_int_eq(raftlog_sync(rl), 0);
        raftlog_close(rl);
        rl = open_rl(&c);
        check_loaded(rl, 0, cut + 5, after);
        raftlog_close(rl);
        char pending[256];
        snprintf(pending, sizeof pending, "%s/%s", dir, RAFTLOG_PENDING_FILE);
        struct stat st;
        ck_assert_int_ne(stat(pending, &st), 0);
        kl_tmpdir_teardown();
    }
}
END_TEST

START_TEST(truncating_inside_a_batch_in_an_older_segment_works)
{
    seglog_config_t c = small();
    raftlog_t *rl = open_rl(&c);
    int32_t epochs[400];
    for (int64_t o = 0; o < 400; o += 20) {
        int32_t ep = 1 + (int32_t)(o / 100);
        append_range(rl, o, o + 20, ep, false);
        for (int64_t k = o; k < o + 20; k++) epochs[k] = ep;
    }
    ck_assert_int_eq(raftlog_sync(rl), 0);
    ck_assert_int_eq(raftlog_truncate(rl, 133), 0);
    check_loaded(rl, 0, 133, epochs);
    ck_assert_int_eq(raftlog_truncate(rl, 500), KL_ERANGE);
    ck_assert_int_eq(raftlog_truncate(rl, 133), 0); /* at the end: nothing to do */
    raftlog_close(rl);
    rl = open_rl(&c);
    check_loaded(rl, 0, 133, epochs);
    raftlog_close(rl);
}
END_TEST

/* Writes the pending file exactly as a truncation to `cut` inside the batch
 * [base, ...) of `epoch` would, then "crashes" (closes). */
static void write_pending(int64_t base, int64_t cut, int32_t epoch)
{
    raft_entry_t e[64];
    for (int64_t o = base; o < cut; o++) e[o - base] = entry(o, epoch, false);
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(recbatch_encode_entries(&b, e, (int)(cut - base)), 0);
    ck_assert_int_eq(fsutil_write_atomic(dir, RAFTLOG_PENDING_FILE, b.data, b.len), 0);
    kl_buf_free(&b);
}

START_TEST(a_truncation_interrupted_before_the_cut_is_finished_on_open)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    raftlog_t *rl = open_rl(&c);
    append_range(rl, 0, 4, 1, false);
    append_range(rl, 4, 12, 2, false);
    ck_assert_int_eq(raftlog_sync(rl), 0);
    raftlog_close(rl);
    write_pending(4, 9, 2);
    rl = open_rl(&c);
    int32_t epochs[12] = {1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2};
    check_loaded(rl, 0, 9, epochs);
    raftlog_close(rl);
}
END_TEST

START_TEST(a_truncation_interrupted_after_the_cut_restores_the_kept_prefix)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    raftlog_t *rl = open_rl(&c);
    append_range(rl, 0, 4, 1, false);
    append_range(rl, 4, 12, 2, false);
    ck_assert_int_eq(raftlog_sync(rl), 0);
    ck_assert_int_eq(raftlog_truncate(rl, 4), 0); /* the cut happened, the re-append did not */
    raftlog_close(rl);
    write_pending(4, 7, 2);
    rl = open_rl(&c);
    int32_t epochs[12] = {1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2};
    check_loaded(rl, 0, 7, epochs);
    raftlog_close(rl);
}
END_TEST

START_TEST(a_pending_batch_beyond_the_log_end_is_dropped_and_a_corrupt_one_is_refused)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    raftlog_t *rl = open_rl(&c);
    append_range(rl, 0, 4, 1, false);
    ck_assert_int_eq(raftlog_sync(rl), 0);
    raftlog_close(rl);
    write_pending(6, 8, 1); /* the batch it came from never became durable */
    rl = open_rl(&c);
    int32_t epochs[4] = {1, 1, 1, 1};
    check_loaded(rl, 0, 4, epochs);
    raftlog_close(rl);

    ck_assert_int_eq(fsutil_write_atomic(dir, RAFTLOG_PENDING_FILE, "junk", 4), 0);
    ck_assert_int_eq(raftlog_open(dir, &c, &rl), KL_ECORRUPT);
}
END_TEST

START_TEST(reset_and_delete_before_move_the_log_start)
{
    seglog_config_t c = small();
    raftlog_t *rl = open_rl(&c);
    int32_t epochs[1200];
    for (int i = 0; i < 1200; i++) epochs[i] = 4;
    for (int64_t o = 0; o < 300; o += 30) append_range(rl, o, o + 30, 4, false);
    ck_assert_int_eq(raftlog_sync(rl), 0);
    ck_assert_int_eq(raftlog_delete_before(rl, 150), 0);
    int64_t start = raftlog_start_offset(rl);
    ck_assert_int_gt(start, 0);
    ck_assert_int_le(start, 150);
    check_loaded(rl, start, 300, epochs);
    ck_assert_int_eq(raftlog_truncate(rl, start - 1), KL_ERANGE);

    ck_assert_int_eq(raftlog_reset(rl, 1000), 0);
    ck_assert_int_eq(raftlog_last_epoch(rl), 0);
    check_loaded(rl, 1000, 1000, epochs);
    append_range(rl, 1000, 1010, 4, false);
    ck_assert_int_eq(raftlog_sync(rl), 0);
    raftlog_close(rl);
    rl = open_rl(&c);
    check_loaded(rl, 1000, 1010, epochs);
    raftlog_close(rl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_raftlog");
    TCase *tc = tcase_create("raftlog");
    tcase_add_checked_fixture(tc, kl_tmpdir_setup, kl_tmpdir_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, entries_survive_reopen_with_epochs_and_control_flags);
    tcase_add_test(tc, appends_must_continue_the_log);
    tcase_add_test(tc, truncating_inside_a_batch_in_an_older_segment_works);
    tcase_add_test(tc, a_truncation_interrupted_before_the_cut_is_finished_on_open);
    tcase_add_test(tc, a_truncation_interrupted_after_the_cut_restores_the_kept_prefix);
    tcase_add_test(tc, a_pending_batch_beyond_the_log_end_is_dropped_and_a_corrupt_one_is_refused);
    tcase_add_test(tc, reset_and_delete_before_move_the_log_start);
    suite_add_tcase(s, tc);
    /* This one makes a fresh directory per cut itself. */
    TCase *tc2 = tcase_create("raftlog_truncate_everywhere");
    tcase_set_timeout(tc2, 120);
    tcase_add_test(tc2, truncating_at_every_offset_keeps_exactly_the_prefix_and_appends_continue);
    suite_add_tcase(s, tc2);
    return kl_tmpdir_run(s, "raftlog");
}
