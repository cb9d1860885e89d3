/* test_storage_recbatch.c — RecordBatch v2: Kafka byte layout, round trips, and malformed input that must be refused without crashing. */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/buf.h"
#include "keel/crc32c.h"
#include "keel/err.h"
#include "keel/recbatch.h"
#include "unit/kl_check.h"

/* Builds a finished batch of n records "k<i>" -> "value-<i>" into buf. */
static void build_batch(kl_buf_t *buf, int64_t base, int32_t epoch, int n)
{
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(base, epoch, 0);
    m.base_timestamp = 1700000000000;
    ck_assert_int_eq(recbatch_begin(&b, buf, &m), 0);
    for (int i = 0; i < n; i++) {
        char k[16], v[32];
        int kl = snprintf(k, sizeof k, "k%d", i), vl = snprintf(v, sizeof v, "value-%d", i);
        ck_assert_int_eq(recbatch_add(&b, i * 10, k, kl, v, vl, NULL, 0), 0);
    }
    ck_assert_int_eq(recbatch_finish(&b), 0);
}

/* Exact-size heap copy, so ASan catches any read past the given length. */
static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(q);
    memcpy(q, p, n);
    return q;
}

static void fix_crc(uint8_t *batch, size_t total)
{
    kl_put_be32(batch + 17, kl_crc32c(0, batch + RECBATCH_CRC_START, total - RECBATCH_CRC_START));
}

static int validate_exact(const uint8_t *p, size_t n)
{
    uint8_t *q = dup_exact(p, n);
    recbatch_header_t h;
    int rc = recbatch_validate(q, n, &h);
    free(q);
    return rc;
}

START_TEST(single_record_batch_matches_kafka_byte_layout)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(5, 7, RECBATCH_ATTR_CONTROL);
    m.base_timestamp = 0x0102030405060708;
    m.producer_id = 42;
    m.producer_epoch = 3;
    m.base_sequence = 9;
    ck_assert_int_eq(recbatch_begin(&b, &buf, &m), 0);
    ck_assert_int_eq(recbatch_add(&b, 0, "k", 1, "v", 1, NULL, 0), 0);
    ck_assert_int_eq(recbatch_finish(&b), 0);

    /* Expected bytes written out field by field from the Kafka spec. */
    static const uint8_t rec[] = {0x10, 0x00, 0x00, 0x00, 0x02, 'k', 0x02, 'v', 0x00};
    uint8_t want[RECBATCH_HEADER_LEN + sizeof rec];
    memset(want, 0, sizeof want);
    kl_put_be64(want + 0, 5);
    kl_put_be32(want + 8, sizeof want - 12);
    kl_put_be32(want + 12, 7);
    want[16] = 2;
    kl_put_be16(want + 21, 0x20);
    kl_put_be32(want + 23, 0);
    kl_put_be64(want + 27, 0x0102030405060708);
    kl_put_be64(want + 35, 0x0102030405060708);
    kl_put_be64(want + 43, 42);
    kl_put_be16(want + 51, 3);
    kl_put_be32(want + 53, 9);
    kl_put_be32(want + 57, 1);
    memcpy(want + RECBATCH_HEADER_LEN, rec, sizeof rec);
    fix_crc(want, sizeof want);

    ck_assert_uint_eq(buf.len, sizeof want);
    ck_assert_mem_eq(buf.data, want, sizeof want);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(round_trip_preserves_every_field_including_nulls_and_headers)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    kl_buf_append(&buf, "xyz", 3); /* the builder must work after existing bytes */
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(1000, 4, 0);
    m.base_timestamp = 500;
    ck_assert_int_eq(recbatch_begin(&b, &buf, &m), 0);
    recbatch_rec_header_t hdrs[2] = {{{(const uint8_t *)"h1", 2}, {(const uint8_t *)"one", 3}},
                                     {{(const uint8_t *)"h2", 2}, {NULL, -1}}};
    ck_assert_int_eq(recbatch_add(&b, 0, NULL, -1, "a", 1, NULL, 0), 0);
    ck_assert_int_eq(recbatch_add(&b, -5, "", 0, NULL, -1, hdrs, 2), 0);
    ck_assert_int_eq(recbatch_add(&b, 300, "key", 3, "", 0, NULL, 0), 0);
    ck_assert_int_eq(recbatch_finish(&b), 0);

    const uint8_t *p = buf.data + 3;
    size_t n = buf.len - 3;
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_validate(p, n, &h), 0);
    ck_assert_uint_eq(recbatch_total_size(&h), n);
    ck_assert_int_eq(h.base_offset, 1000);
    ck_assert_int_eq(h.leader_epoch, 4);
    ck_assert_int_eq(h.record_count, 3);
    ck_assert_int_eq(h.last_offset_delta, 2);
    ck_assert_int_eq(h.max_timestamp, 800);
    ck_assert_int_eq(h.producer_id, -1);
    ck_assert_int_eq(h.producer_epoch, -1);
    ck_assert_int_eq(h.base_sequence, -1);
    ck_assert_int_eq(recbatch_next_offset(&h), 1003);
    ck_assert(!recbatch_is_control(&h));

    recbatch_iter_t it;
    recbatch_record_t r;
    ck_assert_int_eq(recbatch_iter_init(&it, p, n), 0);
    ck_assert_int_eq(recbatch_iter_next(&it, &r), 0);
    ck_assert_int_eq(r.offset, 1000);
    ck_assert_int_eq(r.timestamp, 500);
    ck_assert_int_eq(r.key.len, -1);
    ck_assert_ptr_null(r.key.data);
    ck_assert_int_eq(r.value.len, 1);
    ck_assert_mem_eq(r.value.data, "a", 1);
    ck_assert_uint_eq(r.header_count, 0);

    ck_assert_int_eq(recbatch_iter_next(&it, &r), 0);
    ck_assert_int_eq(r.offset, 1001);
    ck_assert_int_eq(r.timestamp, 495);
    ck_assert_int_eq(r.key.len, 0);
    ck_assert_int_eq(r.value.len, -1);
    ck_assert_uint_eq(r.header_count, 2);
    const uint8_t *hp = r.headers, *he = r.headers + r.headers_len;
    recbatch_rec_header_t hd;
    ck_assert_int_eq(recbatch_rec_header_next(&hp, he, &hd), 0);
    ck_assert_int_eq(hd.key.len, 2);
    ck_assert_mem_eq(hd.key.data, "h1", 2);
    ck_assert_mem_eq(hd.value.data, "one", 3);
    ck_assert_int_eq(recbatch_rec_header_next(&hp, he, &hd), 0);
    ck_assert_mem_eq(hd.key.data, "h2", 2);
    ck_assert_int_eq(hd.value.len, -1);
    ck_assert_int_eq(recbatch_rec_header_next(&hp, he, &hd), KL_ENOENT);

    ck_assert_int_eq(recbatch_iter_next(&it, &r), 0);
    ck_assert_int_eq(r.offset, 1002);
    ck_assert_int_eq(r.timestamp, 800);
    ck_assert_mem_eq(r.key.data, "key", 3);
    ck_assert_int_eq(r.value.len, 0);
    ck_assert_int_eq(recbatch_iter_next(&it, &r), KL_ENOENT);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(rewriting_base_offset_and_epoch_keeps_the_crc_valid)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 0, 1, 4);
    recbatch_set_base_offset(buf.data, 123456789012);
    recbatch_set_leader_epoch(buf.data, 77);
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_validate(buf.data, buf.len, &h), 0);
    ck_assert_int_eq(h.base_offset, 123456789012);
    ck_assert_int_eq(h.leader_epoch, 77);
    recbatch_iter_t it;
    recbatch_record_t r;
    ck_assert_int_eq(recbatch_iter_init(&it, buf.data, buf.len), 0);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(recbatch_iter_next(&it, &r), 0);
        ck_assert_int_eq(r.offset, 123456789012 + i);
    }
    kl_buf_free(&buf);
}
END_TEST

START_TEST(consecutive_batches_in_one_buffer_are_walked_by_total_size)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 0, 1, 3);
    build_batch(&buf, 3, 1, 1);
    build_batch(&buf, 4, 2, 5);
    size_t pos = 0;
    int64_t next = 0;
    int batches = 0;
    while (pos < buf.len) {
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_validate(buf.data + pos, buf.len - pos, &h), 0);
        ck_assert_int_eq(h.base_offset, next);
        next = recbatch_next_offset(&h);
        pos += recbatch_total_size(&h);
        batches++;
    }
    ck_assert_int_eq(batches, 3);
    ck_assert_int_eq(next, 9);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(batch_truncated_at_every_length_is_incomplete_never_valid)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 10, 2, 6);
    for (size_t n = 0; n < buf.len; n++) {
        ck_assert_int_eq(validate_exact(buf.data, n), KL_EAGAIN);
        uint8_t *q = dup_exact(buf.data, n);
        recbatch_iter_t it;
        ck_assert_int_eq(recbatch_iter_init(&it, q, n), KL_EAGAIN);
        free(q);
    }
    ck_assert_int_eq(validate_exact(buf.data, buf.len), 0);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(any_flipped_byte_under_the_crc_is_detected)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 10, 2, 3);
    for (size_t i = RECBATCH_CRC_START; i < buf.len; i++) {
        buf.data[i] ^= 0x40;
        int rc = validate_exact(buf.data, buf.len);
        ck_assert_msg(rc == KL_ECORRUPT || rc == KL_EUNSUPPORTED, "byte %zu: rc %d", i, rc);
        buf.data[i] ^= 0x40;
    }
    for (size_t i = 17; i < RECBATCH_CRC_START; i++) { /* the CRC field itself */
        buf.data[i] ^= 0x01;
        ck_assert_int_eq(validate_exact(buf.data, buf.len), KL_ECORRUPT);
        buf.data[i] ^= 0x01;
    }
    kl_buf_free(&buf);
}
END_TEST

START_TEST(bad_header_fields_are_refused_with_specific_codes)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 10, 2, 2);
    uint8_t *b = dup_exact(buf.data, buf.len);
    size_t n = buf.len;
    recbatch_header_t h;

    b[16] = 1; /* magic v1 */
    ck_assert_int_eq(recbatch_parse_header(b, n, &h), KL_ECORRUPT);
    b[16] = 2;

    kl_put_be32(b + 8, RECBATCH_HEADER_LEN - RECBATCH_LOG_OVERHEAD - 1);
    ck_assert_int_eq(recbatch_parse_header(b, n, &h), KL_ECORRUPT);
    kl_put_be32(b + 8, 0xffffffffu); /* negative length */
    ck_assert_int_eq(recbatch_parse_header(b, n, &h), KL_ECORRUPT);
    kl_put_be32(b + 8, RECBATCH_MAX_BYTES);
    ck_assert_int_eq(recbatch_parse_header(b, n, &h), KL_ETOOBIG);
    kl_put_be32(b + 8, (uint32_t)(n - RECBATCH_LOG_OVERHEAD));

    kl_put_be16(b + 21, 0x0001); /* gzip */
    fix_crc(b, n);
    ck_assert_int_eq(recbatch_validate(b, n, &h), KL_EUNSUPPORTED);
    kl_put_be16(b + 21, 0x0040); /* a bit Keel does not know */
    fix_crc(b, n);
    ck_assert_int_eq(recbatch_validate(b, n, &h), KL_EUNSUPPORTED);
    kl_put_be16(b + 21, RECBATCH_ATTR_TRANSACTIONAL | RECBATCH_ATTR_CONTROL);
    fix_crc(b, n);
    ck_assert_int_eq(recbatch_validate(b, n, &h), 0);
    ck_assert(recbatch_is_control(&h));

    kl_put_be64(b, (uint64_t)-1); /* negative base offset */
    ck_assert_int_eq(recbatch_parse_header(b, n, &h), KL_ECORRUPT);
    kl_put_be64(b, (uint64_t)INT64_MAX); /* base + lastOffsetDelta overflows */
    ck_assert_int_eq(recbatch_parse_header(b, n, &h), KL_ECORRUPT);
    free(b);
    kl_buf_free(&buf);
}
END_TEST

/* Corrupts a field under the CRC, fixes the CRC, and expects validate to fail. */
static void expect_corrupt_after(void (*mutate)(uint8_t *b, size_t n))
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 0, 1, 3);
    uint8_t *b = dup_exact(buf.data, buf.len);
    mutate(b, buf.len);
    fix_crc(b, buf.len);
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_validate(b, buf.len, &h), KL_ECORRUPT);
    free(b);
    kl_buf_free(&buf);
}

static void count_plus_one(uint8_t *b, size_t n)
{
    (void)n;
    kl_put_be32(b + 57, 4);
    kl_put_be32(b + 23, 3);
}
static void count_minus_one(uint8_t *b, size_t n)
{
    (void)n;
    kl_put_be32(b + 57, 2);
    kl_put_be32(b + 23, 1);
}
static void last_delta_mismatch(uint8_t *b, size_t n)
{
    (void)n;
    kl_put_be32(b + 23, 5);
}
static void count_zero(uint8_t *b, size_t n)
{
    (void)n;
    kl_put_be32(b + 57, 0);
}
static void first_record_longer(uint8_t *b, size_t n)
{
    (void)n;
    b[RECBATCH_HEADER_LEN] += 2; /* zigzag +1 */
}
static void first_record_shorter(uint8_t *b, size_t n)
{
    (void)n;
    b[RECBATCH_HEADER_LEN] -= 2;
}
static void record_length_negative(uint8_t *b, size_t n)
{
    (void)n;
    b[RECBATCH_HEADER_LEN] = 0x01; /* zigzag -1 */
}
static void endless_varint(uint8_t *b, size_t n)
{
    for (size_t i = RECBATCH_HEADER_LEN; i < n; i++) b[i] = 0xff;
}
static void key_length_past_record(uint8_t *b, size_t n)
{
    (void)n;
    b[RECBATCH_HEADER_LEN + 4] = 0x7e; /* first record's key length: 63 */
}
static void offset_delta_out_of_order(uint8_t *b, size_t n)
{
    (void)n;
    b[RECBATCH_HEADER_LEN + 3] = 0x02; /* first record claims offsetDelta 1 */
}

START_TEST(structural_corruption_with_a_correct_crc_is_refused)
{
    expect_corrupt_after(count_plus_one);
    expect_corrupt_after(count_minus_one);
    expect_corrupt_after(last_delta_mismatch);
    expect_corrupt_after(count_zero);
    expect_corrupt_after(first_record_longer);
    expect_corrupt_after(first_record_shorter);
    expect_corrupt_after(record_length_negative);
    expect_corrupt_after(endless_varint);
    expect_corrupt_after(key_length_past_record);
    expect_corrupt_after(offset_delta_out_of_order);
}
END_TEST

START_TEST(trailing_bytes_inside_the_batch_are_refused)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 0, 1, 2);
    kl_buf_append_u8(&buf, 0);
    kl_put_be32(buf.data + 8, (uint32_t)(buf.len - RECBATCH_LOG_OVERHEAD));
    fix_crc(buf.data, buf.len);
    ck_assert_int_eq(validate_exact(buf.data, buf.len), KL_ECORRUPT);
    kl_buf_free(&buf);
}
END_TEST

/* Deterministic xorshift so failures replay. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

START_TEST(random_mutations_with_a_fixed_crc_never_crash_and_valid_means_iterable)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 0, 1, 5);
    uint64_t seed = 0x9e3779b97f4a7c15u;
    for (int round = 0; round < 20000; round++) {
        uint8_t *b = dup_exact(buf.data, buf.len);
        int flips = 1 + (int)(rnd(&seed) % 4);
        for (int f = 0; f < flips; f++)
            b[rnd(&seed) % buf.len] = (uint8_t)rnd(&seed); /* lengths and counts too */
        fix_crc(b, buf.len);
        recbatch_header_t h;
        if (recbatch_validate(b, buf.len, &h) == 0) {
            recbatch_iter_t it;
            recbatch_record_t r;
            ck_assert_int_eq(recbatch_iter_init(&it, b, buf.len), 0);
            int n = 0, rc;
            while ((rc = recbatch_iter_next(&it, &r)) == 0) n++;
            ck_assert_int_eq(rc, KL_ENOENT);
            ck_assert_int_eq(n, h.record_count);
        }
        free(b);
    }
    kl_buf_free(&buf);
}
END_TEST

START_TEST(builder_refuses_records_past_the_size_limit_and_stays_usable)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    size_t big = RECBATCH_MAX_BYTES / 2;
    uint8_t *v = calloc(1, big);
    ck_assert_ptr_nonnull(v);
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(0, 0, 0);
    ck_assert_int_eq(recbatch_begin(&b, &buf, &m), 0);
    ck_assert_int_eq(recbatch_add(&b, 0, NULL, -1, v, (int32_t)big, NULL, 0), 0);
    size_t before = recbatch_builder_size(&b);
    ck_assert_int_eq(recbatch_add(&b, 0, NULL, -1, v, (int32_t)big, NULL, 0), KL_ETOOBIG);
    ck_assert_uint_eq(recbatch_builder_size(&b), before);
    ck_assert_int_eq(recbatch_add(&b, 0, NULL, -2, v, 1, NULL, 0), KL_EINVAL);
    ck_assert_int_eq(recbatch_finish(&b), 0);
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_validate(buf.data, buf.len, &h), 0);
    ck_assert_int_eq(h.record_count, 1);
    free(v);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(empty_batch_cannot_be_finished_and_abort_restores_the_buffer)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    kl_buf_append(&buf, "ab", 2);
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(0, 0, 0);
    ck_assert_int_eq(recbatch_begin(&b, &buf, &m), 0);
    ck_assert_int_eq(recbatch_finish(&b), KL_EINVAL);
    ck_assert_int_eq(recbatch_add(&b, 0, "k", 1, "v", 1, NULL, 0), 0);
    recbatch_abort(&b);
    ck_assert_uint_eq(buf.len, 2);
    m.attributes = 0x0002;
    ck_assert_int_eq(recbatch_begin(&b, &buf, &m), KL_EUNSUPPORTED);
    ck_assert_uint_eq(buf.len, 2);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(raft_entries_pack_one_batch_per_epoch_and_control_run_and_decode_back)
{
    const char *vals[] = {"a", "bb", "", "dddd", "e", "ff"};
    raft_entry_t in[6];
    int32_t epochs[] = {1, 1, 2, 2, 2, 3};
    bool control[] = {false, false, true, false, false, false};
    for (int i = 0; i < 6; i++)
        in[i] = (raft_entry_t){.offset = 40 + i,
                               .epoch = epochs[i],
                               .control = control[i],
                               .len = (uint32_t)strlen(vals[i]),
                               .data = (const uint8_t *)vals[i]};
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    ck_assert_int_eq(recbatch_encode_entries(&buf, in, 6), 0);

    /* Runs: [1,1] [2c] [2,2] [3] */
    int64_t want_base[] = {40, 42, 43, 45};
    int want_count[] = {2, 1, 2, 1};
    size_t pos = 0;
    for (int bi = 0; bi < 4; bi++) {
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_validate(buf.data + pos, buf.len - pos, &h), 0);
        ck_assert_int_eq(h.base_offset, want_base[bi]);
        ck_assert_int_eq(h.record_count, want_count[bi]);
        ck_assert(recbatch_is_control(&h) == (bi == 1));
        pos += recbatch_total_size(&h);
    }
    ck_assert_uint_eq(pos, buf.len);

    raft_entry_t *out;
    int n;
    ck_assert_int_eq(recbatch_decode_entries(buf.data, buf.len, INT_MAX, &out, &n), 0);
    ck_assert_int_eq(n, 6);
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(out[i].offset, 40 + i);
        ck_assert_int_eq(out[i].epoch, epochs[i]);
        ck_assert(out[i].control == control[i]);
        ck_assert_uint_eq(out[i].len, strlen(vals[i]));
        ck_assert_mem_eq(out[i].data, vals[i], out[i].len);
    }
    free(out);
    ck_assert_int_eq(recbatch_decode_entries(buf.data, 0, INT_MAX, &out, &n), 0);
    ck_assert_int_eq(n, 0);
    ck_assert_ptr_null(out);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(raft_entry_encoding_refuses_gaps_and_leaves_the_buffer_untouched)
{
    raft_entry_t in[2] = {{.offset = 1, .epoch = 1, .len = 1, .data = (const uint8_t *)"x"},
                          {.offset = 3, .epoch = 1, .len = 1, .data = (const uint8_t *)"y"}};
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    kl_buf_append(&buf, "pre", 3);
    ck_assert_int_eq(recbatch_encode_entries(&buf, in, 2), KL_EINVAL);
    ck_assert_uint_eq(buf.len, 3);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(a_long_run_is_split_where_a_batch_would_pass_the_size_limit)
{
    size_t big = RECBATCH_MAX_BYTES / 3;
    uint8_t *v = calloc(1, big);
    ck_assert_ptr_nonnull(v);
    raft_entry_t in[4];
    for (int i = 0; i < 4; i++)
        in[i] = (raft_entry_t){.offset = i, .epoch = 5, .len = (uint32_t)big, .data = v};
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    ck_assert_int_eq(recbatch_encode_entries(&buf, in, 4), 0);
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_validate(buf.data, buf.len, &h), 0);
    ck_assert_int_eq(h.record_count, 2);
    raft_entry_t *out;
    int n;
    ck_assert_int_eq(recbatch_decode_entries(buf.data, buf.len, INT_MAX, &out, &n), 0);
    ck_assert_int_eq(n, 4);
    ck_assert_int_eq(out[3].offset, 3);
    free(out);

    in[0].len = RECBATCH_MAX_BYTES; /* cannot fit in any batch */
    kl_buf_reset(&buf);
    ck_assert_int_eq(recbatch_encode_entries(&buf, in, 1), KL_ETOOBIG);
    ck_assert_uint_eq(buf.len, 0);
    free(v);
    kl_buf_free(&buf);
}
END_TEST

START_TEST(entry_decoding_refuses_foreign_records_gaps_and_torn_batches)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    build_batch(&buf, 0, 1, 2); /* records with keys: not Raft entries */
    raft_entry_t *out;
    int n;
    ck_assert_int_eq(recbatch_decode_entries(buf.data, buf.len, INT_MAX, &out, &n), KL_ECORRUPT);
    ck_assert_ptr_null(out);

    raft_entry_t e[2] = {{.offset = 0, .epoch = 1, .len = 1, .data = (const uint8_t *)"x"},
                         {.offset = 1, .epoch = 2, .len = 1, .data = (const uint8_t *)"y"}};
    kl_buf_reset(&buf);
    ck_assert_int_eq(recbatch_encode_entries(&buf, e, 2), 0);
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_parse_header(buf.data, buf.len, &h), 0);
    for (size_t cut = 1; cut < buf.len; cut++) {
        uint8_t *q = dup_exact(buf.data, cut);
        int rc = recbatch_decode_entries(q, cut, INT_MAX, &out, &n);
        if (cut == recbatch_total_size(&h)) { /* a batch boundary: the first entry alone */
            ck_assert_int_eq(rc, 0);
            ck_assert_int_eq(n, 1);
            free(out);
        } else {
            ck_assert_msg(rc == KL_EAGAIN, "cut %zu rc %d", cut, rc);
        }
        free(q);
    }
    recbatch_set_base_offset(buf.data + recbatch_total_size(&h), 7); /* gap after offset 0 */
    ck_assert_int_eq(recbatch_decode_entries(buf.data, buf.len, INT_MAX, &out, &n), KL_ECORRUPT);
    kl_buf_free(&buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_recbatch");
    TCase *tc = tcase_create("recbatch");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, single_record_batch_matches_kafka_byte_layout);
    tcase_add_test(tc, round_trip_preserves_every_field_including_nulls_and_headers);
    tcase_add_test(tc, rewriting_base_offset_and_epoch_keeps_the_crc_valid);
    tcase_add_test(tc, consecutive_batches_in_one_buffer_are_walked_by_total_size);
    tcase_add_test(tc, batch_truncated_at_every_length_is_incomplete_never_valid);
    tcase_add_test(tc, any_flipped_byte_under_the_crc_is_detected);
    tcase_add_test(tc, bad_header_fields_are_refused_with_specific_codes);
    tcase_add_test(tc, structural_corruption_with_a_correct_crc_is_refused);
    tcase_add_test(tc, trailing_bytes_inside_the_batch_are_refused);
    tcase_add_test(tc, random_mutations_with_a_fixed_crc_never_crash_and_valid_means_iterable);
    tcase_add_test(tc, builder_refuses_records_past_the_size_limit_and_stays_usable);
    tcase_add_test(tc, empty_batch_cannot_be_finished_and_abort_restores_the_buffer);
    tcase_add_test(tc, raft_entries_pack_one_batch_per_epoch_and_control_run_and_decode_back);
    tcase_add_test(tc, raft_entry_encoding_refuses_gaps_and_leaves_the_buffer_untouched);
    tcase_add_test(tc, a_long_run_is_split_where_a_batch_would_pass_the_size_limit);
    tcase_add_test(tc, entry_decoding_refuses_foreign_records_gaps_and_torn_batches);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
