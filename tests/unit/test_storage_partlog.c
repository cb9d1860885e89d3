/* test_storage_partlog.c — partition replica directory: creation, topic-id guard, checkpoints and their recovery, truncation, retention, flush policy, header scans. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/partlog.h"
#include "keel/recbatch.h"
#include "unit/kl_tmpdir.h"

#define TOPIC "orders"
#define PART 3

static const uint8_t topic_a[KL_UUID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t topic_b[KL_UUID_LEN] = {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9};

static partlog_config_t small_config(void)
{
    partlog_config_t c;
    partlog_config_defaults(&c);
    c.seg.segment_bytes = SEGLOG_MIN_SEGMENT_BYTES;
    c.seg.index_interval_bytes = 100;
    return c;
}

static partlog_t *open_pl(const partlog_config_t *c, const uint8_t *id)
{
    partlog_t *pl;
    char err[256];
    int rc = partlog_open(dir, TOPIC, PART, id, c, &pl, err, sizeof err);
    ck_assert_msg(rc == 0, "open: %s (%s)", kl_strerror(rc), err);
    return pl;
}

static void part_file(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s-%d/%s", dir, TOPIC, PART, name);
}

static void seg_file(int64_t base, char *out, size_t cap)
{
    char name[32];
    snprintf(name, sizeof name, "%020lld.log", (long long)base);
    part_file(name, out, cap);
}

static char *slurp(const char *path)
{
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(fsutil_read_file(path, 1u << 24, &data, &len), 0);
    return (char *)data;
}

static void put_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* One batch at base with n records stamped ts (ms), from producer pid (-1: none). */
static void make_batch(kl_buf_t *buf, int64_t base, int n, int64_t ts, int64_t pid, int32_t seq)
{
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(base, 7, 0);
    m.base_timestamp = ts;
    if (pid >= 0) {
        m.producer_id = pid;
        m.producer_epoch = 2;
        m.base_sequence = seq;
    }
    ck_assert_int_eq(recbatch_begin(&b, buf, &m), 0);
    uint8_t v[40];
    for (int i = 0; i < n; i++) {
        memset(v, (int)(base + i), sizeof v);
        ck_assert_int_eq(recbatch_add(&b, 0, NULL, -1, v, (int32_t)sizeof v, NULL, 0), 0);
    }
    ck_assert_int_eq(recbatch_finish(&b), 0);
}

/* Appends count one-record batches, batch i stamped ts0 + i * 1000 (ts0 0: no timestamps). */
static void append_n(partlog_t *pl, int count, int64_t ts0, kl_buf_t *all)
{
    for (int i = 0; i < count; i++) {
        kl_buf_t one;
        kl_buf_init(&one, 0);
        int64_t off = partlog_end_offset(pl);
        make_batch(&one, off, 1, ts0 ? ts0 + off * 1000 : 0, -1, 0);
        ck_assert_int_eq(partlog_append(pl, one.data, one.len, 0), 0);
        if (all) kl_buf_append(all, one.data, one.len);
        kl_buf_free(&one);
    }
}

static void check_reads_equal(partlog_t *pl, const kl_buf_t *all)
{
    kl_buf_t got;
    kl_buf_init(&got, 0);
    ck_assert_int_eq(partlog_read(pl, partlog_start_offset(pl), 1u << 20, &got), 0);
    ck_assert_uint_eq(got.len, all->len);
    ck_assert_mem_eq(got.data, all->data, all->len);
    kl_buf_free(&got);
}

/* Base offsets of the segment files, ascending; returns how many. */
static int list_segments(int64_t *bases, int cap)
{
    int n = 0;
    for (int64_t b = 0; b < 10000 && n < cap; b++) {
        char p[512];
        struct stat st;
        seg_file(b, p, sizeof p);
        if (stat(p, &st) == 0) bases[n++] = b;
    }
    return n;
}

/* stderr goes to a file while the log level is WARN, so tests can read what was said. */
static int capture_begin(void)
{
    char p[256];
    snprintf(p, sizeof p, "%s/stderr.txt", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(p, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_eq(dup2(fd, 2), 2);
    close(fd);
    kl_log_set_level(KL_LOG_WARN);
    return saved;
}

static char *capture_end(int saved)
{
    char p[256];
    kl_log_set_level(KL_LOG_OFF);
    ck_assert_int_eq(dup2(saved, 2), 2);
    close(saved);
    snprintf(p, sizeof p, "%s/stderr.txt", dir);
    return slurp(p);
}

START_TEST(opening_creates_the_directory_with_topic_id_and_empty_checkpoints)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    char p[512], want[128], id[KL_UUID_STR_LEN + 1];
    snprintf(p, sizeof p, "%s/%s-%d", dir, TOPIC, PART);
    ck_assert_str_eq(partlog_dir(pl), p);

    kl_uuid_to_string(topic_a, id);
    snprintf(want, sizeof want, "version: 0\ntopic_id: %s\n", id);
    part_file("partition.metadata", p, sizeof p);
    char *text = slurp(p);
    ck_assert_str_eq(text, want);
    free(text);
    part_file("leader-epoch-checkpoint", p, sizeof p);
    text = slurp(p);
    ck_assert_str_eq(text, "0\n0\n");
    free(text);
    part_file("high-watermark", p, sizeof p);
    text = slurp(p);
    ck_assert_str_eq(text, "0\n0\n");
    free(text);
    seg_file(0, p, sizeof p);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);

    replica_restore_t r;
    partlog_restore_info(pl, &r);
    ck_assert_int_eq(r.log_start, 0);
    ck_assert_int_eq(r.log_end, 0);
    ck_assert_int_eq(r.high_watermark, 0);
    ck_assert_int_eq(r.n_epochs, 0);
    ck_assert_int_eq(partlog_size_bytes(pl), 0);
    partlog_close(pl);
}
END_TEST

START_TEST(appended_batches_read_back_byte_exact_across_segment_rolls)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_n(pl, 40, 0, &all);
    ck_assert_int_eq(partlog_end_offset(pl), 40);
    int64_t bases[64];
    ck_assert_int_gt(list_segments(bases, 64), 3);
    ck_assert_int_eq(partlog_size_bytes(pl), (int64_t)all.len);
    check_reads_equal(pl, &all);
    kl_buf_t out;
    kl_buf_init(&out, 0);
    ck_assert_int_eq(partlog_read(pl, 41, 100, &out), KL_ERANGE);
    ck_assert_int_eq(partlog_read(pl, 40, 100, &out), 0);
    ck_assert_uint_eq(out.len, 0);
    /* A batch that does not continue the log is refused. */
    kl_buf_t bad;
    kl_buf_init(&bad, 0);
    make_batch(&bad, 39, 1, 0, -1, 0);
    ck_assert_int_eq(partlog_append(pl, bad.data, bad.len, 0), KL_EINVAL);
    partlog_close(pl);
    kl_buf_free(&bad);
    kl_buf_free(&out);
    kl_buf_free(&all);
}
END_TEST

START_TEST(reopening_recovers_end_offset_epochs_and_high_watermark)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_n(pl, 25, 0, &all);
    replica_epoch_entry_t e[3] = {{0, 0}, {4, 10}, {9, 20}};
    ck_assert_int_eq(partlog_write_epochs(pl, e, 3), 0);
    ck_assert_int_eq(partlog_write_hw(pl, 17), 0);
    ck_assert_int_eq(partlog_sync(pl), 0);
    partlog_close(pl);

    char p[512];
    part_file("leader-epoch-checkpoint", p, sizeof p);
    char *text = slurp(p);
    ck_assert_str_eq(text, "0\n3\n0 0\n4 10\n9 20\n"); /* Kafka's format */
    free(text);
    part_file("high-watermark", p, sizeof p);
    text = slurp(p);
    ck_assert_str_eq(text, "0\n17\n");
    free(text);

    pl = open_pl(&c, topic_a);
    replica_restore_t r;
    partlog_restore_info(pl, &r);
    ck_assert_int_eq(r.log_start, 0);
    ck_assert_int_eq(r.log_end, 25);
    ck_assert_int_eq(r.high_watermark, 17);
    ck_assert_int_eq(r.n_epochs, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(r.epochs[i].epoch, e[i].epoch);
        ck_assert_int_eq(r.epochs[i].start_offset, e[i].start_offset);
    }
    check_reads_equal(pl, &all);
    partlog_close(pl);
    kl_buf_free(&all);
}
END_TEST

START_TEST(bad_epoch_checkpoints_are_refused_and_an_unchanged_hw_is_not_rewritten)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    replica_epoch_entry_t same_epoch[2] = {{1, 0}, {1, 5}}, same_offset[2] = {{1, 5}, {2, 5}},
                          negative[1] = {{-1, 0}};
    ck_assert_int_eq(partlog_write_epochs(pl, same_epoch, 2), KL_EINVAL);
    ck_assert_int_eq(partlog_write_epochs(pl, same_offset, 2), KL_EINVAL);
    ck_assert_int_eq(partlog_write_epochs(pl, negative, 1), KL_EINVAL);
    ck_assert_int_eq(partlog_write_epochs(pl, negative, -1), KL_EINVAL);
    ck_assert_int_eq(partlog_write_hw(pl, -1), KL_EINVAL);
    /* An unchanged HW is not rewritten: the file stays gone until the HW moves. */
    char p[512];
    struct stat st;
    part_file("high-watermark", p, sizeof p);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(partlog_write_hw(pl, 0), 0);
    ck_assert_int_eq(stat(p, &st), -1);
    ck_assert_int_eq(partlog_write_hw(pl, 1), 0);
    ck_assert_int_eq(stat(p, &st), 0);
    replica_restore_t r;
    partlog_restore_info(pl, &r);
    ck_assert_int_eq(r.n_epochs, 0);
    partlog_close(pl);
}
END_TEST

START_TEST(a_checkpointed_high_watermark_is_clamped_into_the_log)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 10, 0, NULL);
    ck_assert_int_eq(partlog_write_hw(pl, 1000), 0); /* the tail it covered was never fsynced */
    partlog_close(pl);
    pl = open_pl(&c, topic_a);
    replica_restore_t r;
    partlog_restore_info(pl, &r);
    ck_assert_int_eq(r.high_watermark, 10);
    ck_assert_int_eq(partlog_reset(pl, 500), 0);
    ck_assert_int_eq(partlog_write_hw(pl, 3), 0);
    partlog_close(pl);
    pl = open_pl(&c, topic_a);
    partlog_restore_info(pl, &r);
    ck_assert_int_eq(r.log_start, 500);
    ck_assert_int_eq(r.high_watermark, 500);
    partlog_close(pl);
}
END_TEST

/* Writes bad text into the named checkpoint, reopens, and checks the WARN. */
static void check_bad_checkpoint(const char *name, const char *text, bool remove)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 12, 0, NULL);
    replica_epoch_entry_t e[2] = {{0, 0}, {3, 6}};
    ck_assert_int_eq(partlog_write_epochs(pl, e, 2), 0);
    ck_assert_int_eq(partlog_write_hw(pl, 9), 0);
    partlog_close(pl);
    char p[512];
    part_file(name, p, sizeof p);
    if (remove)
        ck_assert_int_eq(unlink(p), 0);
    else
        put_file(p, text);

    int saved = capture_begin();
    pl = open_pl(&c, topic_a);
    char *said = capture_end(saved);
    ck_assert_msg(strstr(said, " WARN ") && strstr(said, name), "no warning about %s: %s", name,
                  said);
    free(said);
    replica_restore_t r;
    partlog_restore_info(pl, &r);
    ck_assert_int_eq(r.log_end, 12);
    if (strcmp(name, "high-watermark") == 0) {
        ck_assert_int_eq(r.high_watermark, 0);
        ck_assert_int_eq(r.n_epochs, 2);
    } else {
        ck_assert_int_eq(r.n_epochs, 0);
        ck_assert_int_eq(r.high_watermark, 9);
    }
    partlog_close(pl);
    ck_assert_int_eq(fsutil_rm_rf(dir), 0);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
}

START_TEST(missing_truncated_or_corrupt_checkpoints_count_as_empty_with_a_warning)
{
    const char *bad_epochs[] = {"",           "0\n",         "0\n2\n0 0\n",   "0\n2\n0 0\n3 6",
                                "1\n0\n",     "0\n1\n0\n",   "0\n2\n3 6\n0 0\n", "0\n2\n0 0\n3 6\nx\n",
                                "0\n1\n-1 0\n", "0\n65537\n", "0\n1\n0 99999999999999999999\n"};
    for (size_t i = 0; i < sizeof bad_epochs / sizeof *bad_epochs; i++)
        check_bad_checkpoint("leader-epoch-checkpoint", bad_epochs[i], false);
    check_bad_checkpoint("leader-epoch-checkpoint", NULL, true);
    const char *bad_hw[] = {"", "0\n", "0\n9", "0\nx\n", "1\n9\n", "0\n9\n9\n", "0\n-9\n"};
    for (size_t i = 0; i < sizeof bad_hw / sizeof *bad_hw; i++)
        check_bad_checkpoint("high-watermark", bad_hw[i], false);
    check_bad_checkpoint("high-watermark", NULL, true);
}
END_TEST

START_TEST(a_torn_tail_is_truncated_on_reopen_with_a_warning)
{
    partlog_config_t c = small_config();
    c.seg.segment_bytes = 1u << 20;
    partlog_t *pl = open_pl(&c, topic_a);
    kl_buf_t all, extra;
    kl_buf_init(&all, 0);
    kl_buf_init(&extra, 0);
    append_n(pl, 5, 0, &all);
    ck_assert_int_eq(partlog_sync(pl), 0);
    partlog_close(pl);
    /* Half of a sixth batch, as a crash mid-write leaves it. */
    make_batch(&extra, 5, 3, 0, -1, 0);
    char p[512];
    seg_file(0, p, sizeof p);
    FILE *f = fopen(p, "a");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(extra.data, 1, extra.len / 2, f), extra.len / 2);
    ck_assert_int_eq(fclose(f), 0);

    int saved = capture_begin();
    pl = open_pl(&c, topic_a);
    char *said = capture_end(saved);
    ck_assert_msg(strstr(said, " WARN ") && strstr(said, "truncating"), "said: %s", said);
    free(said);
    ck_assert_int_eq(partlog_end_offset(pl), 5);
    check_reads_equal(pl, &all);
    ck_assert_int_eq(partlog_append(pl, extra.data, extra.len, 0), 0);
    ck_assert_int_eq(partlog_end_offset(pl), 8);
    partlog_close(pl);
    kl_buf_free(&all);
    kl_buf_free(&extra);
}
END_TEST

START_TEST(a_directory_of_another_topic_id_is_refused_until_removed)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 8, 0, NULL);
    partlog_close(pl);

    char err[256];
    ck_assert_int_eq(partlog_open(dir, TOPIC, PART, topic_b, &c, &pl, err, sizeof err), KL_EEXIST);
    ck_assert_ptr_null(pl);
    ck_assert_ptr_nonnull(strstr(err, "topic id"));
    pl = open_pl(&c, topic_a); /* the data is untouched */
    ck_assert_int_eq(partlog_end_offset(pl), 8);
    partlog_close(pl);

    ck_assert_int_eq(partlog_remove_dir(dir, TOPIC, PART), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/%s-%d", dir, TOPIC, PART);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), -1);
    ck_assert_int_eq(partlog_remove_dir(dir, TOPIC, PART), 0); /* absent: fine */
    pl = open_pl(&c, topic_b);
    ck_assert_int_eq(partlog_end_offset(pl), 0);
    partlog_close(pl);

    /* A directory without partition.metadata is adopted; a malformed one is corrupt. */
    part_file("partition.metadata", p, sizeof p);
    ck_assert_int_eq(unlink(p), 0);
    pl = open_pl(&c, topic_a);
    partlog_close(pl);
    put_file(p, "version: 0\ntopic_id: nonsense\n");
    ck_assert_int_eq(partlog_open(dir, TOPIC, PART, topic_a, &c, &pl, err, sizeof err), KL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(err, "partition.metadata"));
}
END_TEST

START_TEST(delete_removes_the_whole_directory)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 30, 0, NULL);
    ck_assert_int_eq(partlog_delete(pl), 0);
    char p[512];
    snprintf(p, sizeof p, "%s/%s-%d", dir, TOPIC, PART);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), -1);
}
END_TEST

START_TEST(bad_names_topic_ids_and_configs_are_refused)
{
    partlog_config_t c = small_config();
    partlog_t *pl;
    char err[256], long_topic[300];
    uint8_t zero[KL_UUID_LEN] = {0};
    memset(long_topic, 'x', 250);
    long_topic[250] = '\0';
    const char *topics[] = {"", ".", "..", "a/b", "a b", long_topic};
    for (size_t i = 0; i < sizeof topics / sizeof *topics; i++)
        ck_assert_int_eq(partlog_open(dir, topics[i], 0, topic_a, &c, &pl, err, sizeof err), KL_EINVAL);
    ck_assert_int_eq(partlog_open(dir, TOPIC, -1, topic_a, &c, &pl, err, sizeof err), KL_EINVAL);
    ck_assert_int_eq(partlog_open(dir, TOPIC, 0, zero, &c, &pl, err, sizeof err), KL_EINVAL);
    ck_assert_int_eq(partlog_remove_dir(dir, "..", 0), KL_EINVAL);
    partlog_config_t bad[5];
    for (int i = 0; i < 5; i++) bad[i] = c;
    bad[0].flush_interval_messages = 0;
    bad[1].flush_interval_ms = -2;
    bad[2].retention_ms = -2;
    bad[3].retention_bytes = -5;
    bad[4].seg.segment_bytes = 1;
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(partlog_open(dir, TOPIC, 0, topic_a, &bad[i], &pl, err, sizeof err), KL_EINVAL);
    ck_assert_ptr_null(pl);
}
END_TEST

START_TEST(truncate_to_and_reset_are_durable_and_appends_continue)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_n(pl, 30, 0, &all);
    ck_assert_int_eq(partlog_truncate_to(pl, 31), KL_ERANGE);
    ck_assert_int_eq(partlog_truncate_to(pl, 12), 0);
    ck_assert_int_eq(partlog_end_offset(pl), 12);
    partlog_close(pl);
    pl = open_pl(&c, topic_a);
    ck_assert_int_eq(partlog_end_offset(pl), 12);
    all.len = 0;
    kl_buf_t tail;
    kl_buf_init(&tail, 0);
    ck_assert_int_eq(partlog_read(pl, 0, 1u << 20, &all), 0);
    append_n(pl, 3, 0, &all);
    check_reads_equal(pl, &all);

    ck_assert_int_eq(partlog_reset(pl, 1000), 0);
    ck_assert_int_eq(partlog_start_offset(pl), 1000);
    ck_assert_int_eq(partlog_end_offset(pl), 1000);
    append_n(pl, 2, 0, &tail);
    partlog_close(pl);
    pl = open_pl(&c, topic_a);
    ck_assert_int_eq(partlog_start_offset(pl), 1000);
    check_reads_equal(pl, &tail);
    kl_buf_t out;
    kl_buf_init(&out, 0);
    ck_assert_int_eq(partlog_read(pl, 999, 100, &out), KL_ERANGE);
    partlog_close(pl);
    kl_buf_free(&out);
    kl_buf_free(&tail);
    kl_buf_free(&all);
}
END_TEST

static void check_file(const char *name, const char *want)
{
    char p[512];
    part_file(name, p, sizeof p);
    char *text = slurp(p);
    ck_assert_str_eq(text, want);
    free(text);
}

START_TEST(delete_before_drops_whole_segments_below_the_offset_and_the_checkpoints_follow)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 40, 0, NULL);
    int64_t bases[64];
    const int n = list_segments(bases, 64);
    ck_assert_int_gt(n, 6);
    const replica_epoch_entry_t e[3] = {{0, 0}, {4, bases[1] + 1}, {9, bases[5]}};
    ck_assert_int_eq(partlog_write_epochs(pl, e, 3), 0);
    ck_assert_int_eq(partlog_write_hw(pl, 2), 0);

    ck_assert_int_eq(partlog_delete_before(pl, -1), KL_EINVAL);
    ck_assert_int_eq(partlog_delete_before(pl, 41), KL_ERANGE);
    ck_assert_int_eq(partlog_delete_before(pl, bases[1] - 1), 0); /* inside the first segment: nothing goes */
    ck_assert_int_eq(partlog_start_offset(pl), 0);
    ck_assert_int_eq(list_segments(bases, 64), n);
    check_file("high-watermark", "0\n2\n");

    /* Inside segment 3: segments 0..2 go, and so does what the checkpoints say below bases[3]. */
    ck_assert_int_eq(partlog_delete_before(pl, bases[3] + 1), 0);
    ck_assert_int_eq(partlog_start_offset(pl), bases[3]);
    ck_assert_int_eq(partlog_end_offset(pl), 40);
    int64_t left[64];
    ck_assert_int_eq(list_segments(left, 64), n - 3);
    ck_assert_int_eq(left[0], bases[3]);
    char want[128];
    snprintf(want, sizeof want, "0\n2\n4 %lld\n9 %lld\n", (long long)bases[3], (long long)bases[5]);
    check_file("leader-epoch-checkpoint", want);
    snprintf(want, sizeof want, "0\n%lld\n", (long long)bases[3]);
    check_file("high-watermark", want);
    kl_buf_t out;
    kl_buf_init(&out, 0);
    ck_assert_int_eq(partlog_read(pl, bases[3] - 1, 100, &out), KL_ERANGE);
    ck_assert_int_eq(partlog_read(pl, bases[3], 100, &out), 0);
    ck_assert_uint_gt(out.len, 0);
    kl_buf_free(&out);

    /* A checkpointed HW above the new start stays; the log end: all but the active segment goes. */
    ck_assert_int_eq(partlog_write_hw(pl, 39), 0);
    ck_assert_int_eq(partlog_delete_before(pl, 40), 0);
    ck_assert_int_eq(partlog_start_offset(pl), bases[n - 1]);
    ck_assert_int_eq(list_segments(left, 64), 1);
    snprintf(want, sizeof want, "0\n1\n9 %lld\n", (long long)bases[n - 1]);
    check_file("leader-epoch-checkpoint", want);
    check_file("high-watermark", "0\n39\n");
    partlog_close(pl);

    pl = open_pl(&c, topic_a); /* a restart finds the same log */
    replica_restore_t r;
    partlog_restore_info(pl, &r);
    ck_assert_int_eq(r.log_start, bases[n - 1]);
    ck_assert_int_eq(r.log_end, 40);
    ck_assert_int_eq(r.high_watermark, 39);
    ck_assert_int_eq(r.n_epochs, 1);
    ck_assert_int_eq(r.epochs[0].epoch, 9);
    ck_assert_int_eq(r.epochs[0].start_offset, bases[n - 1]);
    append_n(pl, 1, 0, NULL);
    ck_assert_int_eq(partlog_end_offset(pl), 41);
    partlog_close(pl);
}
END_TEST

static int64_t file_size(const char *p)
{
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    return st.st_size;
}

START_TEST(retention_by_bytes_deletes_oldest_segments_while_the_log_stays_over_the_limit)
{
    partlog_config_t c = small_config();
    c.retention_ms = PARTLOG_NO_LIMIT;
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 40, 0, NULL);
    partlog_close(pl);
    int64_t bases[64];
    int n = list_segments(bases, 64);
    ck_assert_int_gt(n, 5);
    char p[512];
    seg_file(bases[0], p, sizeof p);
    int64_t first = file_size(p);
    int64_t end = 40, start;

    pl = open_pl(&c, topic_a);
    int64_t total = partlog_size_bytes(pl);
    partlog_close(pl);
    /* Over the limit by less than the oldest segment: nothing goes. */
    c.retention_bytes = total - first + 1;
    pl = open_pl(&c, topic_a);
    ck_assert_int_eq(partlog_apply_retention(pl, 0, end, &start), 0);
    ck_assert_int_eq(start, 0);
    partlog_close(pl);
    /* Over by exactly the oldest segment: it alone goes. */
    c.retention_bytes = total - first;
    pl = open_pl(&c, topic_a);
    ck_assert_int_eq(partlog_apply_retention(pl, 0, end, &start), 0);
    ck_assert_int_eq(start, bases[1]);
    ck_assert_int_eq(partlog_size_bytes(pl), total - first);

    /* Even with retention.bytes 0, only segments wholly below the HW go. */
    c.retention_bytes = 0;
    partlog_close(pl);
    pl = open_pl(&c, topic_a);
    int64_t hw = bases[4] + 1;
    ck_assert_int_eq(partlog_apply_retention(pl, 0, hw, &start), 0);
    ck_assert_int_eq(start, bases[4]);
    ck_assert_int_eq(partlog_start_offset(pl), bases[4]);
    ck_assert_int_eq(partlog_apply_retention(pl, 0, hw, &start), 0);
    ck_assert_int_eq(start, bases[4]);
    /* With everything committed, all but the active segment goes. */
    ck_assert_int_eq(partlog_apply_retention(pl, 0, end, &start), 0);
    ck_assert_int_eq(start, bases[n - 1]);
    ck_assert_int_eq(list_segments(bases, 64), 1);
    ck_assert_int_eq(partlog_end_offset(pl), end);
    append_n(pl, 2, 0, NULL);
    partlog_close(pl);
    pl = open_pl(&c, topic_a);
    ck_assert_int_eq(partlog_start_offset(pl), start);
    ck_assert_int_eq(partlog_end_offset(pl), end + 2);
    partlog_close(pl);
}
END_TEST

/* Time retention over batches stamped T0 + offset * 1000: every segment whose
 * newest batch is at or below `newest` goes, up to the HW. */
static void check_time_retention(partlog_t *pl, const int64_t *bases, int n, int64_t newest,
                                 int64_t hw)
{
    const int64_t t0 = 1700000000000LL, retention = 60000;
    int64_t start, want = bases[0];
    for (int i = 0; i + 1 < n; i++) /* batch b holds offset b and ts t0 + b * 1000 */
        if (bases[i + 1] - 1 <= newest && bases[i + 1] <= hw) want = bases[i + 1];
    ck_assert_int_eq(partlog_apply_retention(pl, t0 + newest * 1000 + retention + 1, hw, &start), 0);
    ck_assert_int_eq(start, want);
}

START_TEST(retention_by_time_goes_by_the_newest_record_timestamp_and_stops_at_the_hw)
{
    const int64_t t0 = 1700000000000LL;
    partlog_config_t c = small_config();
    c.retention_ms = 60000;
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 40, t0, NULL);
    int64_t bases[64];
    int n = list_segments(bases, 64);
    ck_assert_int_gt(n, 8);
    /* Timestamps tracked while appending. */
    check_time_retention(pl, bases, n, 3, 40);
    ck_assert_int_gt(partlog_start_offset(pl), 0);
    partlog_close(pl);
    /* After a reopen they are read back from the batch headers. */
    pl = open_pl(&c, topic_a);
    check_time_retention(pl, bases, n, 25, bases[4]);
    ck_assert_int_eq(partlog_start_offset(pl), bases[4]);
    check_time_retention(pl, bases, n, 25, 40);
    ck_assert_int_gt(partlog_start_offset(pl), bases[4]);
    /* Far in the future: only the active segment stays. */
    int64_t start;
    ck_assert_int_eq(partlog_apply_retention(pl, INT64_MAX / 2, 40, &start), 0);
    ck_assert_int_eq(start, bases[n - 1]);
    partlog_close(pl);
}
END_TEST

START_TEST(retention_by_time_falls_back_to_the_file_mtime_without_timestamps)
{
    partlog_config_t c = small_config();
    c.retention_ms = 3600 * 1000;
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 30, 0, NULL);
    int64_t bases[64];
    int n = list_segments(bases, 64);
    ck_assert_int_gt(n, 4);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t wall = (int64_t)now.tv_sec * 1000;
    int64_t start;
    ck_assert_int_eq(partlog_apply_retention(pl, wall, 30, &start), 0);
    ck_assert_int_eq(start, 0); /* all just written */
    /* The first three segments were last written two hours ago. */
    for (int i = 0; i < 3; i++) {
        char p[512];
        seg_file(bases[i], p, sizeof p);
        struct timespec ts[2] = {{now.tv_sec - 7200, 0}, {now.tv_sec - 7200, 0}};
        ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
    }
    ck_assert_int_eq(partlog_apply_retention(pl, wall, bases[2], &start), 0);
    ck_assert_int_eq(start, bases[2]); /* the third reaches the HW */
    ck_assert_int_eq(partlog_apply_retention(pl, wall, 30, &start), 0);
    ck_assert_int_eq(start, bases[3]);
    partlog_close(pl);
}
END_TEST

START_TEST(flush_policy_fsyncs_after_n_messages_or_after_the_interval_and_never_by_default)
{
    partlog_config_t c = small_config();
    partlog_t *pl = open_pl(&c, topic_a);
    append_n(pl, 50, 0, NULL);
    ck_assert_int_eq(partlog_tick(pl, INT64_MAX / 2), 0);
    ck_assert_int_eq(partlog_sync_count(pl), 0);
    ck_assert_int_eq(partlog_sync(pl), 0);
    ck_assert_int_eq(partlog_sync_count(pl), 1);
    partlog_close(pl);

    c.flush_interval_messages = 3;
    pl = open_pl(&c, topic_a);
    append_n(pl, 7, 0, NULL); /* one record each */
    ck_assert_int_eq(partlog_sync_count(pl), 2);
    kl_buf_t b;
    kl_buf_init(&b, 0);
    make_batch(&b, partlog_end_offset(pl), 5, 0, -1, 0); /* 1 + 5 records pending */
    ck_assert_int_eq(partlog_append(pl, b.data, b.len, 0), 0);
    ck_assert_int_eq(partlog_sync_count(pl), 3);
    partlog_close(pl);

    c.flush_interval_messages = PARTLOG_NO_LIMIT;
    c.flush_interval_ms = 100;
    pl = open_pl(&c, topic_a);
    ck_assert_int_eq(partlog_tick(pl, 1000), 0); /* nothing unsynced */
    b.len = 0;
    make_batch(&b, partlog_end_offset(pl), 1, 0, -1, 0);
    ck_assert_int_eq(partlog_append(pl, b.data, b.len, 1000), 0);
    ck_assert_int_eq(partlog_tick(pl, 1099), 0);
    ck_assert_int_eq(partlog_sync_count(pl), 0);
    ck_assert_int_eq(partlog_tick(pl, 1100), 0);
    ck_assert_int_eq(partlog_sync_count(pl), 1);
    for (int64_t t = 2000; t <= 2150; t += 50) {
        b.len = 0;
        make_batch(&b, partlog_end_offset(pl), 1, 0, -1, 0);
        ck_assert_int_eq(partlog_append(pl, b.data, b.len, t), 0);
    }
    ck_assert_int_eq(partlog_sync_count(pl), 2); /* at 2100, on append */
    partlog_close(pl);
    kl_buf_free(&b);
}
END_TEST

typedef struct scan_seen {
    replica_batch_t *b;
    int n, calls, stop_after;
} scan_seen_t;

static int collect(void *arg, const replica_batch_t *b, int n)
{
    scan_seen_t *s = arg;
    ck_assert_int_gt(n, 0);
    memcpy(s->b + s->n, b, (size_t)n * sizeof *b);
    s->n += n;
    s->calls++;
    return s->calls == s->stop_after ? 7 : 0;
}

START_TEST(scan_headers_returns_every_batch_in_order_across_segments)
{
    enum { N = 2600 };
    partlog_config_t c = small_config();
    c.seg.segment_bytes = 64 * 1024;
    partlog_t *pl = open_pl(&c, topic_a);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    for (int i = 0; i < N; i++) {
        size_t before = all.len;
        make_batch(&all, partlog_end_offset(pl), 1 + i % 3, 0, i % 2 ? 40 + i % 5 : -1, i);
        ck_assert_int_eq(partlog_append(pl, all.data + before, all.len - before, 0), 0);
    }
    partlog_close(pl);
    pl = open_pl(&c, topic_a);

    scan_seen_t s = {calloc(N, sizeof(replica_batch_t)), 0, 0, 0};
    ck_assert_int_eq(partlog_scan_headers(pl, collect, &s), 0);
    ck_assert_int_eq(s.n, N);
    ck_assert_int_gt(s.calls, 1);
    int64_t off = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(s.b[i].base_offset, off);
        ck_assert_int_eq(s.b[i].last_offset_delta, i % 3);
        ck_assert_int_eq(s.b[i].leader_epoch, 7);
        ck_assert_int_eq(s.b[i].producer_id, i % 2 ? 40 + i % 5 : -1);
        if (i % 2) {
            ck_assert_int_eq(s.b[i].producer_epoch, 2);
            ck_assert_int_eq(s.b[i].base_sequence, i);
        }
        off += 1 + i % 3;
    }
    ck_assert_int_eq(off, partlog_end_offset(pl));

    scan_seen_t stop = {s.b, 0, 0, 1};
    ck_assert_int_eq(partlog_scan_headers(pl, collect, &stop), 7);
    ck_assert_int_eq(stop.calls, 1);
    free(s.b);

    ck_assert_int_eq(partlog_reset(pl, 77), 0);
    scan_seen_t none = {NULL, 0, 0, 0};
    ck_assert_int_eq(partlog_scan_headers(pl, collect, &none), 0);
    ck_assert_int_eq(none.calls, 0);
    partlog_close(pl);
    kl_buf_free(&all);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_partlog");
    TCase *tc = tcase_create("partlog");
    tcase_add_checked_fixture(tc, kl_tmpdir_setup, kl_tmpdir_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, opening_creates_the_directory_with_topic_id_and_empty_checkpoints);
    tcase_add_test(tc, appended_batches_read_back_byte_exact_across_segment_rolls);
    tcase_add_test(tc, reopening_recovers_end_offset_epochs_and_high_watermark);
    tcase_add_test(tc, bad_epoch_checkpoints_are_refused_and_an_unchanged_hw_is_not_rewritten);
    tcase_add_test(tc, a_checkpointed_high_watermark_is_clamped_into_the_log);
    tcase_add_test(tc, missing_truncated_or_corrupt_checkpoints_count_as_empty_with_a_warning);
    tcase_add_test(tc, a_torn_tail_is_truncated_on_reopen_with_a_warning);
    tcase_add_test(tc, a_directory_of_another_topic_id_is_refused_until_removed);
    tcase_add_test(tc, delete_removes_the_whole_directory);
    tcase_add_test(tc, bad_names_topic_ids_and_configs_are_refused);
    tcase_add_test(tc, truncate_to_and_reset_are_durable_and_appends_continue);
    tcase_add_test(tc, delete_before_drops_whole_segments_below_the_offset_and_the_checkpoints_follow);
    tcase_add_test(tc, retention_by_bytes_deletes_oldest_segments_while_the_log_stays_over_the_limit);
    tcase_add_test(tc, retention_by_time_goes_by_the_newest_record_timestamp_and_stops_at_the_hw);
    tcase_add_test(tc, retention_by_time_falls_back_to_the_file_mtime_without_timestamps);
    tcase_add_test(tc, flush_policy_fsyncs_after_n_messages_or_after_the_interval_and_never_by_default);
    tcase_add_test(tc, scan_headers_returns_every_batch_in_order_across_segments);
    suite_add_tcase(s, tc);
    return kl_tmpdir_run(s, "partlog");
}
