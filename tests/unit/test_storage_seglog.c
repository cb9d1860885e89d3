/* test_storage_seglog.c — segmented log: recovery of torn and corrupt tails, index lookups over many segments, reads, truncation, retention, segment listing and header scans. */
#include <check.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/recbatch.h"
#include "keel/seglog.h"
#include "unit/kl_tmpdir.h"

/* Every test works in its own directory under root; main removes root, so
 * nothing is left behind even when a test fails midway. */


/* Appends a batch of n records with vlen-byte values derived from base. */
static void make_batch(kl_buf_t *buf, int64_t base, int n, int vlen)
{
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(base, 3, 0);
    ck_assert_int_eq(recbatch_begin(&b, buf, &m), 0);
    uint8_t v[512];
    ck_assert_int_le(vlen, (int)sizeof v);
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < vlen; k++) v[k] = (uint8_t)(base * 7 + i * 3 + k);
        ck_assert_int_eq(recbatch_add(&b, i, NULL, -1, v, vlen, NULL, 0), 0);
    }
    ck_assert_int_eq(recbatch_finish(&b), 0);
}

static seglog_config_t small_config(void)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    c.segment_bytes = SEGLOG_MIN_SEGMENT_BYTES;
    c.index_interval_bytes = 100;
    return c;
}

static seglog_t *open_log(const seglog_config_t *c)
{
    seglog_t *sl;
    ck_assert_int_eq(seglog_open(dir, c, &sl), 0);
    return sl;
}

/* Appends `count` batches of varied shapes; returns them concatenated in all. */
static void append_batches(seglog_t *sl, int count, kl_buf_t *all)
{
    for (int i = 0; i < count; i++) {
        kl_buf_t one;
        kl_buf_init(&one, 0);
        make_batch(&one, seglog_end_offset(sl), 1 + i % 4, 5 + (i * 37) % 90);
        ck_assert_int_eq(seglog_append(sl, one.data, one.len), 0);
        if (all) kl_buf_append(all, one.data, one.len);
        kl_buf_free(&one);
    }
    ck_assert_int_eq(seglog_sync(sl), 0);
}

/* Every batch of the log read one at a time equals `all`, in order. */
static void check_log_equals(seglog_t *sl, const kl_buf_t *all)
{
    kl_buf_t got;
    kl_buf_init(&got, 0);
    int64_t off = seglog_start_offset(sl);
    while (off < seglog_end_offset(sl)) {
        size_t before = got.len;
        ck_assert_int_eq(seglog_read(sl, off, 1, &got), 0);
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_validate(got.data + before, got.len - before, &h), 0);
        ck_assert_uint_eq(recbatch_total_size(&h), got.len - before);
        ck_assert_int_eq(h.base_offset, off);
        off = recbatch_next_offset(&h);
    }
    ck_assert_uint_eq(got.len, all->len);
    if (all->len) ck_assert_mem_eq(got.data, all->data, all->len);
    kl_buf_free(&got);
}

static void seg_file(int64_t base, const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%020lld%s", dir, (long long)base, ext);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

START_TEST(an_empty_directory_opens_as_an_empty_log_at_offset_zero)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    seglog_t *sl = open_log(&c);
    ck_assert_int_eq(seglog_start_offset(sl), 0);
    ck_assert_int_eq(seglog_end_offset(sl), 0);
    ck_assert_int_eq(seglog_segment_count(sl), 1);
    kl_buf_t out;
    kl_buf_init(&out, 0);
    ck_assert_int_eq(seglog_read(sl, 0, 100, &out), 0);
    ck_assert_uint_eq(out.len, 0);
    ck_assert_int_eq(seglog_read(sl, 1, 100, &out), KL_ERANGE);
    seglog_close(sl);
    char p[256];
    seg_file(0, ".log", p, sizeof p);
    ck_assert_int_eq(file_size(p), 0);
    kl_buf_free(&out);
}
END_TEST

START_TEST(appended_batches_read_back_byte_exact_after_reopen)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    seglog_t *sl = open_log(&c);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_batches(sl, 40, &all);
    int64_t end = seglog_end_offset(sl);
    seglog_close(sl);
    sl = open_log(&c);
    ck_assert_int_eq(seglog_end_offset(sl), end);
    check_log_equals(sl, &all);
    kl_buf_t out;
    kl_buf_init(&out, 0);
    ck_assert_int_eq(seglog_read(sl, 0, all.len, &out), 0);
    ck_assert_uint_eq(out.len, all.len);
    seglog_close(sl);
    kl_buf_free(&out);
    kl_buf_free(&all);
}
END_TEST

START_TEST(appends_that_do_not_continue_the_log_are_refused_and_change_nothing)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    seglog_t *sl = open_log(&c);
    append_batches(sl, 2, NULL);
    int64_t end = seglog_end_offset(sl);
    kl_buf_t b;
    kl_buf_init(&b, 0);
    make_batch(&b, end + 1, 1, 10); /* gap */
    ck_assert_int_eq(seglog_append(sl, b.data, b.len), KL_EINVAL);
    kl_buf_reset(&b);
    make_batch(&b, end - 1, 1, 10); /* overlap */
    ck_assert_int_eq(seglog_append(sl, b.data, b.len), KL_EINVAL);
    ck_assert_int_eq(seglog_append(sl, b.data, b.len - 1), KL_EINVAL); /* truncated */
    kl_buf_reset(&b);
    make_batch(&b, end, 2, 10);
    make_batch(&b, end + 3, 1, 10); /* second batch leaves a gap */
    ck_assert_int_eq(seglog_append(sl, b.data, b.len), KL_EINVAL);
    ck_assert_int_eq(seglog_end_offset(sl), end);
    /* Two contiguous batches in one call are fine. */
    kl_buf_reset(&b);
    make_batch(&b, end, 2, 10);
    make_batch(&b, end + 2, 1, 10);
    ck_assert_int_eq(seglog_append(sl, b.data, b.len), 0);
    ck_assert_int_eq(seglog_end_offset(sl), end + 3);
    seglog_close(sl);
    kl_buf_free(&b);
}
END_TEST

/* Writes three batches, damages the last one with `damage`, reopens, and
 * checks that exactly the first two survive and appends continue. */
static void recover_after(void (*damage)(const char *path, off_t last_pos, size_t last_len,
                                         size_t arg),
                          size_t arg)
{
    kl_tmpdir_setup();
    seglog_config_t c;
    seglog_config_defaults(&c);
    seglog_t *sl = open_log(&c);
    kl_buf_t all, last;
    kl_buf_init(&all, 0);
    kl_buf_init(&last, 0);
    append_batches(sl, 2, &all);
    int64_t kept_end = seglog_end_offset(sl);
    make_batch(&last, kept_end, 3, 20);
    ck_assert_int_eq(seglog_append(sl, last.data, last.len), 0);
    ck_assert_int_eq(seglog_sync(sl), 0);
    seglog_close(sl);

    char p[256];
    seg_file(0, ".log", p, sizeof p);
    damage(p, (off_t)all.len, last.len, arg);

    sl = open_log(&c);
    ck_assert_int_eq(seglog_end_offset(sl), kept_end);
    ck_assert_int_eq(file_size(p), (off_t)all.len);
    check_log_equals(sl, &all);
    /* Appends continue at the recovered end and survive another reopen. */
    kl_buf_reset(&last);
    make_batch(&last, kept_end, 2, 7);
    ck_assert_int_eq(seglog_append(sl, last.data, last.len), 0);
    ck_assert_int_eq(seglog_sync(sl), 0);
    kl_buf_append(&all, last.data, last.len);
    seglog_close(sl);
    sl = open_log(&c);
    check_log_equals(sl, &all);
    seglog_close(sl);
    kl_buf_free(&all);
    kl_buf_free(&last);
    kl_tmpdir_teardown();
}

static void cut_at(const char *path, off_t last_pos, size_t last_len, size_t cut)
{
    (void)last_len;
    ck_assert_int_eq(truncate(path, last_pos + (off_t)cut), 0);
}

static void flip_at(const char *path, off_t last_pos, size_t last_len, size_t at)
{
    (void)last_len;
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t byte;
    ck_assert_int_eq(pread(fd, &byte, 1, last_pos + (off_t)at), 1);
    byte ^= 0x10;
    ck_assert_int_eq(pwrite(fd, &byte, 1, last_pos + (off_t)at), 1);
    close(fd);
}

static void garbage_after(const char *path, off_t last_pos, size_t last_len, size_t n)
{
    /* The whole last batch is replaced by zeros, as after a crash that
     * extended the file but never wrote the data. */
    (void)last_len;
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    uint8_t zeros[256] = {0};
    ck_assert_uint_le(n, sizeof zeros);
    ck_assert_int_eq(ftruncate(fd, last_pos), 0);
    ck_assert_int_eq(pwrite(fd, zeros, n, last_pos), (ssize_t)n);
    close(fd);
}

static size_t last_batch_len(void)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    make_batch(&b, 0, 3, 20);
    size_t n = b.len;
    kl_buf_free(&b);
    return n;
}

START_TEST(cutting_the_active_segment_at_every_byte_of_the_last_batch_recovers_the_rest)
{
    kl_tmpdir_teardown(); /* recover_after makes a fresh directory per cut */
    size_t len = last_batch_len();
    for (size_t cut = 0; cut < len; cut++) recover_after(cut_at, cut);
    kl_tmpdir_setup();
}
END_TEST

START_TEST(flipping_any_checked_byte_of_the_last_batch_recovers_the_rest)
{
    kl_tmpdir_teardown();
    size_t len = last_batch_len();
    for (size_t at = 0; at < len; at++) {
        /* partitionLeaderEpoch (12..15) lies outside the CRC by Kafka's
         * design (the leader rewrites it), so a flip there is not damage. */
        if (at >= 12 && at < 16) continue;
        recover_after(flip_at, at);
    }
    kl_tmpdir_setup();
}
END_TEST

START_TEST(a_zero_filled_tail_is_truncated)
{
    kl_tmpdir_teardown();
    recover_after(garbage_after, 1);
    recover_after(garbage_after, RECBATCH_HEADER_LEN);
    recover_after(garbage_after, 200);
    kl_tmpdir_setup();
}
END_TEST

START_TEST(logs_roll_into_segments_named_by_base_offset_with_index_files)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_batches(sl, 60, &all);
    int nseg = seglog_segment_count(sl);
    ck_assert_int_gt(nseg, 5);
    /* Walk the segments through their names: every older one has a .log no
     * bigger than the limit (they hold several batches each) and a .index. */
    int64_t off = 0;
    int seen = 0;
    kl_buf_t out;
    kl_buf_init(&out, 0);
    while (off < seglog_end_offset(sl)) {
        char p[256];
        seg_file(off, ".log", p, sizeof p);
        if (file_size(p) >= 0) {
            seen++;
            ck_assert_int_le(file_size(p), (off_t)SEGLOG_MIN_SEGMENT_BYTES);
            if (seen < nseg) {
                seg_file(off, ".index", p, sizeof p);
                ck_assert_int_ge(file_size(p), 0);
                ck_assert_int_eq(file_size(p) % 8, 0);
            }
        }
        kl_buf_reset(&out);
        ck_assert_int_eq(seglog_read(sl, off, 1, &out), 0);
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_parse_header(out.data, out.len, &h), 0);
        off = recbatch_next_offset(&h);
    }
    ck_assert_int_eq(seen, nseg);
    seglog_close(sl);
    kl_buf_free(&out);
    kl_buf_free(&all);
}
END_TEST

/* read(offset, 1) returns exactly the batch holding offset, for every offset. */
static void check_every_offset(seglog_t *sl)
{
    kl_buf_t out;
    kl_buf_init(&out, 0);
    for (int64_t off = seglog_start_offset(sl); off < seglog_end_offset(sl); off++) {
        kl_buf_reset(&out);
        ck_assert_int_eq(seglog_read(sl, off, 1, &out), 0);
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_validate(out.data, out.len, &h), 0);
        ck_assert_uint_eq(recbatch_total_size(&h), out.len);
        ck_assert_int_le(h.base_offset, off);
        ck_assert_int_gt(recbatch_next_offset(&h), off);
    }
    kl_buf_free(&out);
}

START_TEST(every_offset_is_found_across_many_segments_even_with_damaged_indexes)
{
    seglog_config_t c = small_config();
    c.index_interval_bytes = 1; /* an entry per batch */
    seglog_t *sl = open_log(&c);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_batches(sl, 300, &all);
    check_every_offset(sl);
    seglog_close(sl);

    /* Lose one index, scramble another, make a third stale (claims an offset
     * its batch does not have); reopen must rebuild all three. */
    char p[256];
    seg_file(0, ".index", p, sizeof p);
    ck_assert_int_eq(unlink(p), 0);
    sl = open_log(&c);
    kl_buf_t one;
    kl_buf_init(&one, 0);
    ck_assert_int_eq(seglog_read(sl, 0, 1, &one), 0);
    seglog_close(sl);
    ck_assert_int_gt(file_size(p), 0); /* rebuilt and written back */

    /* Find the second and third segments' bases via a read at their start. */
    int64_t bases[3] = {0, -1, -1};
    int found = 1;
    int64_t off = 0;
    while (found < 3) {
        kl_buf_reset(&one);
        sl = open_log(&c);
        ck_assert_int_eq(seglog_read(sl, off, 1, &one), 0);
        seglog_close(sl);
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_parse_header(one.data, one.len, &h), 0);
        off = recbatch_next_offset(&h);
        char q[256];
        seg_file(off, ".log", q, sizeof q);
        if (file_size(q) >= 0) bases[found++] = off;
    }
    seg_file(bases[1], ".index", p, sizeof p);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("garbage", f);
    fclose(f);
    seg_file(bases[2], ".index", p, sizeof p);
    uint8_t stale[8];
    kl_put_be32(stale, 1000);
    kl_put_be32(stale + 4, 0);
    f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fwrite(stale, 1, 8, f);
    fclose(f);

    c.index_interval_bytes = 150; /* rebuilt indexes follow the current setting */
    sl = open_log(&c);
    check_every_offset(sl);
    check_log_equals(sl, &all);
    seglog_close(sl);
    ck_assert_int_eq(file_size(p) % 8, 0);
    kl_buf_free(&one);
    kl_buf_free(&all);
}
END_TEST

START_TEST(reads_stop_at_max_bytes_but_always_return_one_whole_batch)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    kl_buf_t all, out;
    kl_buf_init(&all, 0);
    kl_buf_init(&out, 0);
    append_batches(sl, 50, &all);

    /* Sizes of the first batches, from the concatenation. */
    size_t sizes[4], pos = 0;
    for (int i = 0; i < 4; i++) {
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_parse_header(all.data + pos, all.len - pos, &h), 0);
        sizes[i] = recbatch_total_size(&h);
        pos += sizes[i];
    }
    ck_assert_int_eq(seglog_read(sl, 0, 0, &out), 0);
    ck_assert_uint_eq(out.len, sizes[0]);
    kl_buf_reset(&out);
    ck_assert_int_eq(seglog_read(sl, 0, sizes[0] + sizes[1] + sizes[2] - 1, &out), 0);
    ck_assert_uint_eq(out.len, sizes[0] + sizes[1]);
    ck_assert_mem_eq(out.data, all.data, out.len);

    /* Large reads cross segment boundaries and stay contiguous. */
    for (size_t max = 100; max < all.len + 100; max += 333) {
        kl_buf_reset(&out);
        ck_assert_int_eq(seglog_read(sl, 0, max, &out), 0);
        ck_assert_uint_le(out.len, max > sizes[0] ? max : sizes[0]);
        ck_assert_mem_eq(out.data, all.data, out.len);
        ck_assert(out.len + 512 > max || out.len == all.len); /* no early stop: batches < 512 */
    }
    /* Reading mid-batch starts at that batch's beginning. */
    kl_buf_reset(&out);
    ck_assert_int_eq(seglog_read(sl, 2, 1, &out), 0); /* batch 1 holds offsets 1 and 2 */
    ck_assert_uint_eq(out.len, sizes[1]);
    ck_assert_mem_eq(out.data, all.data + sizes[0], sizes[1]);
    ck_assert_int_eq(seglog_read(sl, -1, 1, &out), KL_ERANGE);
    ck_assert_int_eq(seglog_read(sl, seglog_end_offset(sl) + 1, 1, &out), KL_ERANGE);
    seglog_close(sl);
    kl_buf_free(&out);
    kl_buf_free(&all);
}
END_TEST

START_TEST(truncating_to_a_batch_boundary_drops_later_segments_and_appends_continue)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_batches(sl, 60, &all);
    int nseg = seglog_segment_count(sl);

    /* Cut at the first boundary a third into the log that starts a batch
     * of several records (so cut + 1 lies inside it). */
    size_t pos = 0;
    int64_t cut = 0;
    for (;;) {
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_parse_header(all.data + pos, all.len - pos, &h), 0);
        if (pos >= all.len / 3 && h.record_count > 1) break;
        pos += recbatch_total_size(&h);
        cut = recbatch_next_offset(&h);
    }
    ck_assert_int_eq(seglog_truncate_to(sl, cut + 1), KL_EINVAL); /* inside a batch */
    ck_assert_int_eq(seglog_truncate_to(sl, seglog_end_offset(sl) + 1), KL_ERANGE);
    ck_assert_int_eq(seglog_truncate_to(sl, cut), 0);
    ck_assert_int_eq(seglog_end_offset(sl), cut);
    ck_assert_int_lt(seglog_segment_count(sl), nseg);
    all.len = pos;
    check_log_equals(sl, &all);

    append_batches(sl, 20, &all);
    check_log_equals(sl, &all);
    seglog_close(sl);
    sl = open_log(&c);
    check_log_equals(sl, &all);
    check_every_offset(sl);

    ck_assert_int_eq(seglog_truncate_to(sl, 0), 0);
    ck_assert_int_eq(seglog_end_offset(sl), 0);
    ck_assert_int_eq(seglog_segment_count(sl), 1);
    seglog_close(sl);
    sl = open_log(&c);
    ck_assert_int_eq(seglog_end_offset(sl), 0);
    seglog_close(sl);
    kl_buf_free(&all);
}
END_TEST

/* A read that continues where the last one stopped may skip the index
 * lookup; after a truncation and new appends at the same offsets it must
 * find the new batches, not the old positions. */
START_TEST(a_read_continuing_where_the_last_stopped_sees_batches_rewritten_after_truncation)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    append_batches(sl, 30, NULL);
    /* Walk forward batch by batch past the middle: the log now remembers
     * where the last read ended (x), which began at `cut`. */
    int64_t off = 0, cut = 0;
    while (off <= seglog_end_offset(sl) / 2) {
        kl_buf_t out;
        kl_buf_init(&out, 0);
        ck_assert_int_eq(seglog_read(sl, off, 1, &out), 0);
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_parse_header(out.data, out.len, &h), 0);
        cut = off;
        off = recbatch_next_offset(&h);
        kl_buf_free(&out);
    }
    const int64_t x = off;
    ck_assert_int_eq(seglog_truncate_to(sl, cut), 0);
    /* Other shapes at the same offsets: 2 records of 200 bytes each. */
    kl_buf_t fresh;
    kl_buf_init(&fresh, 0);
    size_t at_x = 0, len_x = 0;
    while (seglog_end_offset(sl) <= x + 4) {
        kl_buf_t one;
        kl_buf_init(&one, 0);
        const int64_t base = seglog_end_offset(sl);
        make_batch(&one, base, 2, 200);
        ck_assert_int_eq(seglog_append(sl, one.data, one.len), 0);
        if (base <= x && x < base + 2) at_x = fresh.len, len_x = one.len;
        kl_buf_append(&fresh, one.data, one.len);
        kl_buf_free(&one);
    }
    ck_assert_uint_gt(len_x, 0);
    kl_buf_t got;
    kl_buf_init(&got, 0);
    ck_assert_int_eq(seglog_read(sl, x, 1, &got), 0); /* where the last read stopped */
    ck_assert_uint_eq(got.len, len_x);
    ck_assert_mem_eq(got.data, fresh.data + at_x, len_x);
    got.len = 0;
    ck_assert_int_eq(seglog_read(sl, cut, fresh.len, &got), 0);
    ck_assert_uint_eq(got.len, fresh.len);
    ck_assert_mem_eq(got.data, fresh.data, fresh.len);
    kl_buf_free(&got);
    kl_buf_free(&fresh);
    seglog_close(sl);
}
END_TEST

START_TEST(delete_before_removes_whole_older_segments_only)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    append_batches(sl, 60, NULL);
    int nseg = seglog_segment_count(sl);
    int64_t end = seglog_end_offset(sl);

    ck_assert_int_eq(seglog_delete_before(sl, 0), 0);
    ck_assert_int_eq(seglog_segment_count(sl), nseg);
    ck_assert_int_eq(seglog_delete_before(sl, end / 2), 0);
    int64_t start = seglog_start_offset(sl);
    ck_assert_int_gt(start, 0);
    ck_assert_int_le(start, end / 2);
    ck_assert_int_lt(seglog_segment_count(sl), nseg);
    kl_buf_t out;
    kl_buf_init(&out, 0);
    ck_assert_int_eq(seglog_read(sl, start - 1, 1, &out), KL_ERANGE);
    char p[256];
    seg_file(0, ".log", p, sizeof p);
    ck_assert_int_eq(file_size(p), -1);
    check_every_offset(sl);

    /* Past the end, everything but the active segment goes. */
    ck_assert_int_eq(seglog_delete_before(sl, end + 100), 0);
    ck_assert_int_eq(seglog_segment_count(sl), 1);
    ck_assert_int_eq(seglog_end_offset(sl), end);
    seglog_close(sl);
    sl = open_log(&c);
    ck_assert_int_eq(seglog_end_offset(sl), end);
    ck_assert_int_eq(seglog_segment_count(sl), 1);
    check_every_offset(sl);
    seglog_close(sl);
    kl_buf_free(&out);
}
END_TEST

START_TEST(reset_drops_everything_and_restarts_at_the_new_offset)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    append_batches(sl, 30, NULL);
    ck_assert_int_eq(seglog_reset(sl, 5000), 0);
    ck_assert_int_eq(seglog_start_offset(sl), 5000);
    ck_assert_int_eq(seglog_end_offset(sl), 5000);
    ck_assert_int_eq(seglog_segment_count(sl), 1);
    kl_buf_t all;
    kl_buf_init(&all, 0);
    append_batches(sl, 5, &all);
    seglog_close(sl);
    sl = open_log(&c);
    ck_assert_int_eq(seglog_start_offset(sl), 5000);
    check_log_equals(sl, &all);
    ck_assert_int_eq(seglog_reset(sl, -1), KL_EINVAL);
    seglog_close(sl);
    kl_buf_free(&all);
}
END_TEST

START_TEST(segment_info_lists_contiguous_segments_whose_sizes_match_their_files)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    append_batches(sl, 60, NULL);
    int n = seglog_segment_count(sl);
    ck_assert_int_gt(n, 5);
    int64_t next = seglog_start_offset(sl);
    for (int i = 0; i < n; i++) {
        seglog_segment_info_t s;
        seglog_segment_info(sl, i, &s);
        ck_assert_int_eq(s.base, next);
        ck_assert_int_gt(s.end, s.base);
        char p[256];
        seg_file(s.base, ".log", p, sizeof p);
        ck_assert_int_eq((off_t)s.size, file_size(p));
        next = s.end;
    }
    ck_assert_int_eq(next, seglog_end_offset(sl));
    seglog_close(sl);
}
END_TEST

#define TS_BATCHES 50

/* Batch i: 3 records at offset i*3, timestamps t(i) + {0, 700, 300}; returns its maxTimestamp. */
static int64_t append_ts_batch(seglog_t *sl, int i)
{
    int64_t t = 1700000000000LL + ((i * 7919) % 100) * 1000; /* not in order */
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(seglog_end_offset(sl), 1, 0);
    m.base_timestamp = t;
    ck_assert_int_eq(recbatch_begin(&b, &buf, &m), 0);
    const int64_t deltas[3] = {0, 700, 300};
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(recbatch_add(&b, deltas[k], NULL, -1, "value-value", 11, NULL, 0), 0);
    ck_assert_int_eq(recbatch_finish(&b), 0);
    ck_assert_int_eq(seglog_append(sl, buf.data, buf.len), 0);
    kl_buf_free(&buf);
    return t + 700;
}

/* Every segment's max timestamp is the newest of the batches it holds (by offset / 3). */
static void check_segment_times(seglog_t *sl, const int64_t *batch_ts)
{
    for (int i = 0; i < seglog_segment_count(sl); i++) {
        seglog_segment_info_t s;
        seglog_segment_info(sl, i, &s);
        int64_t want = SEGLOG_NO_TIMESTAMP, max_ts, mtime;
        for (int64_t off = s.base; off < s.end; off += 3)
            if (batch_ts[off / 3] > want) want = batch_ts[off / 3];
        ck_assert_int_eq(seglog_segment_times(sl, i, &max_ts, &mtime), 0);
        ck_assert_int_eq(max_ts, want);
        char p[256];
        struct stat st;
        seg_file(s.base, ".log", p, sizeof p);
        ck_assert_int_eq(stat(p, &st), 0);
        ck_assert_int_eq(mtime, (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000);
    }
}

START_TEST(segment_times_give_the_newest_batch_timestamp_after_appends_reopen_and_truncation)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    int64_t batch_ts[TS_BATCHES];
    int64_t max_ts, mtime;
    ck_assert_int_eq(seglog_segment_times(sl, 0, &max_ts, &mtime), 0);
    ck_assert_int_eq(max_ts, SEGLOG_NO_TIMESTAMP);
    for (int i = 0; i < TS_BATCHES; i++) batch_ts[i] = append_ts_batch(sl, i);
    ck_assert_int_gt(seglog_segment_count(sl), 5);
    check_segment_times(sl, batch_ts);
    seglog_close(sl);
    sl = open_log(&c); /* sealed segments: read back from the headers */
    check_segment_times(sl, batch_ts);
    /* Cut off a sealed segment's last batch where that batch was its newest. */
    seglog_segment_info_t s;
    int i = 0;
    for (;; i++) {
        ck_assert_int_lt(i, seglog_segment_count(sl) - 1);
        seglog_segment_info(sl, i, &s);
        bool newest = s.end - s.base > 3;
        for (int64_t off = s.base; off < s.end - 3; off += 3)
            newest = newest && batch_ts[off / 3] < batch_ts[(s.end - 3) / 3];
        if (newest) break;
    }
    ck_assert_int_eq(seglog_truncate_to(sl, s.end - 3), 0);
    check_segment_times(sl, batch_ts);
    ck_assert_int_eq(seglog_truncate_to(sl, s.base), 0);
    ck_assert_int_eq(seglog_segment_times(sl, i, &max_ts, &mtime), 0);
    ck_assert_int_eq(max_ts, SEGLOG_NO_TIMESTAMP);
    seglog_close(sl);
}
END_TEST

typedef struct hdr_seen {
    int64_t next;
    int n, stop_at;
} hdr_seen_t;

static int count_header(void *arg, const recbatch_header_t *h)
{
    hdr_seen_t *s = arg;
    ck_assert_int_eq(h->base_offset, s->next);
    s->next = recbatch_next_offset(h);
    return ++s->n == s->stop_at ? 42 : 0;
}

/* Appends one batch of exactly `size` bytes. */
static void append_batch_of_size(seglog_t *sl, size_t size)
{
    kl_buf_t one;
    kl_buf_init(&one, 0);
    for (int v = 0; v <= 512; v++) {
        kl_buf_reset(&one);
        make_batch(&one, seglog_end_offset(sl), 1, v);
        if (one.len == size) {
            ck_assert_int_eq(seglog_append(sl, one.data, one.len), 0);
            kl_buf_free(&one);
            return;
        }
    }
    ck_abort_msg("no batch of %zu bytes", size);
}

START_TEST(scan_headers_visits_every_batch_in_offset_order)
{
    seglog_config_t c;
    seglog_config_defaults(&c); /* one segment larger than the scan's read chunk */
    seglog_t *sl = open_log(&c);
    /* Batches up to a header that straddles the first 1 MiB read. */
    const uint64_t mib = 1024u * 1024u;
    seglog_segment_info_t s;
    int count = 0;
    for (;; count++) {
        seglog_segment_info(sl, 0, &s);
        if (mib - 30 - s.size <= 500) break;
        kl_buf_t one;
        kl_buf_init(&one, 0);
        make_batch(&one, seglog_end_offset(sl), mib - 30 - s.size > 3000 ? 4 : 1, 100);
        ck_assert_int_eq(seglog_append(sl, one.data, one.len), 0);
        kl_buf_free(&one);
    }
    append_batch_of_size(sl, (size_t)(mib - 30 - s.size));
    for (int i = 0; i < 100; i++, count++) append_batch_of_size(sl, 150 + (size_t)(i * 37) % 400);
    count++;
    seglog_segment_info(sl, 0, &s);
    ck_assert_uint_gt(s.size, mib);
    hdr_seen_t seen = {0, 0, 0};
    ck_assert_int_eq(seglog_scan_headers(sl, count_header, &seen), 0);
    ck_assert_int_eq(seen.n, count);
    ck_assert_int_eq(seen.next, seglog_end_offset(sl));
    hdr_seen_t stop = {0, 0, 10};
    ck_assert_int_eq(seglog_scan_headers(sl, count_header, &stop), 42);
    ck_assert_int_eq(stop.n, 10);
    seglog_close(sl);

    /* Many segments, after some went to retention. */
    ck_assert_int_eq(fsutil_rm_rf(dir), 0);
    c = small_config();
    sl = open_log(&c);
    append_batches(sl, 60, NULL);
    ck_assert_int_eq(seglog_delete_before(sl, 30), 0);
    seen = (hdr_seen_t){seglog_start_offset(sl), 0, 0};
    ck_assert_int_gt(seen.next, 0);
    ck_assert_int_eq(seglog_scan_headers(sl, count_header, &seen), 0);
    ck_assert_int_eq(seen.next, seglog_end_offset(sl));
    seglog_close(sl);
}
END_TEST

START_TEST(scan_headers_reports_a_missing_middle_segment_as_corruption)
{
    seglog_config_t c = small_config();
    seglog_t *sl = open_log(&c);
    append_batches(sl, 60, NULL);
    seglog_segment_info_t s;
    seglog_segment_info(sl, 2, &s);
    seglog_close(sl);
    char p[256];
    seg_file(s.base, ".log", p, sizeof p);
    ck_assert_int_eq(unlink(p), 0);
    sl = open_log(&c);
    hdr_seen_t seen = {0, 0, 0};
    ck_assert_int_eq(seglog_scan_headers(sl, count_header, &seen), KL_ECORRUPT);
    ck_assert_int_eq(seen.next, s.base);
    seglog_close(sl);
}
END_TEST

START_TEST(configs_out_of_bounds_are_refused)
{
    seglog_config_t c;
    seglog_config_defaults(&c);
    seglog_t *sl;
    c.segment_bytes = SEGLOG_MIN_SEGMENT_BYTES - 1;
    ck_assert_int_eq(seglog_open(dir, &c, &sl), KL_EINVAL);
    seglog_config_defaults(&c);
    c.index_interval_bytes = 0;
    ck_assert_int_eq(seglog_open(dir, &c, &sl), KL_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_seglog");
    TCase *tc = tcase_create("seglog");
    tcase_add_checked_fixture(tc, kl_tmpdir_setup, kl_tmpdir_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, an_empty_directory_opens_as_an_empty_log_at_offset_zero);
    tcase_add_test(tc, appended_batches_read_back_byte_exact_after_reopen);
    tcase_add_test(tc, appends_that_do_not_continue_the_log_are_refused_and_change_nothing);
    tcase_add_test(tc,
                   cutting_the_active_segment_at_every_byte_of_the_last_batch_recovers_the_rest);
    tcase_add_test(tc, flipping_any_checked_byte_of_the_last_batch_recovers_the_rest);
    tcase_add_test(tc, a_zero_filled_tail_is_truncated);
    tcase_add_test(tc, logs_roll_into_segments_named_by_base_offset_with_index_files);
    tcase_add_test(tc, every_offset_is_found_across_many_segments_even_with_damaged_indexes);
    tcase_add_test(tc, reads_stop_at_max_bytes_but_always_return_one_whole_batch);
    tcase_add_test(tc, truncating_to_a_batch_boundary_drops_later_segments_and_appends_continue);
    tcase_add_test(tc, delete_before_removes_whole_older_segments_only);
    tcase_add_test(tc, reset_drops_everything_and_restarts_at_the_new_offset);
    tcase_add_test(tc, segment_info_lists_contiguous_segments_whose_sizes_match_their_files);
    tcase_add_test(tc,
                   segment_times_give_the_newest_batch_timestamp_after_appends_reopen_and_truncation);
    tcase_add_test(tc, scan_headers_visits_every_batch_in_offset_order);
    tcase_add_test(tc, scan_headers_reports_a_missing_middle_segment_as_corruption);
    tcase_add_test(tc, configs_out_of_bounds_are_refused);
    tcase_add_test(tc, a_read_continuing_where_the_last_stopped_sees_batches_rewritten_after_truncation);
    suite_add_tcase(s, tc);
    return kl_tmpdir_run(s, "seglog");
}
