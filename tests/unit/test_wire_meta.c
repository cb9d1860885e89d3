/* test_wire_meta.c — metadata-log record values and controller snapshot images round trip; junk is refused. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/wire_meta.h"
#include "unit/kl_check.h"

START_TEST(noop_record_round_trips)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append(&b, "xy", 2), 0); /* appends after what is there */
    ck_assert_int_eq(wire_meta_encode_noop(&b), 0);
    ck_assert_uint_gt(b.len, 2);
    wire_meta_record_t r = {0};
    ck_assert_int_eq(wire_meta_decode_record(b.data + 2, b.len - 2, &r), 0);
    ck_assert_int_eq(r.type, WIRE_META_NO_OP);
    kl_buf_free(&b);
}
END_TEST

START_TEST(record_junk_missing_or_unknown_type_is_refused)
{
    wire_meta_record_t r;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t unknown[] = {0x12, 0x00};    /* field 2: a record type from the future */
    static const uint8_t truncated[] = {0x0a, 0x05}; /* no_op announcing 5 bytes, none follow */
    ck_assert_int_eq(wire_meta_decode_record(junk, sizeof junk, &r), KL_EPROTO);
    ck_assert_int_eq(wire_meta_decode_record(unknown, sizeof unknown, &r), KL_EPROTO);
    ck_assert_int_eq(wire_meta_decode_record(truncated, sizeof truncated, &r), KL_EPROTO);
    ck_assert_int_eq(wire_meta_decode_record(junk, 0, &r), KL_EPROTO); /* no record at all */
}
END_TEST

START_TEST(image_round_trips_including_negative_none_values)
{
    const wire_meta_image_t cases[] = {{0, 0, -1, -1}, {1000, 37, 999, 12}, {INT64_MAX, INT64_MAX, INT64_MAX - 1, INT32_MAX}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_image(&cases[i], &b), 0);
        wire_meta_image_t out;
        memset(&out, 0x5a, sizeof out);
        ck_assert_int_eq(wire_meta_decode_image(b.data, b.len, &out), 0);
        ck_assert_int_eq(out.records_applied, cases[i].records_applied);
        ck_assert_int_eq(out.no_op_count, cases[i].no_op_count);
        ck_assert_int_eq(out.last_applied_offset, cases[i].last_applied_offset);
        ck_assert_int_eq(out.last_applied_epoch, cases[i].last_applied_epoch);
        kl_buf_free(&b);
    }
}
END_TEST

START_TEST(image_out_of_range_is_refused_both_ways)
{
    const wire_meta_image_t bad[] = {{-1, 0, -1, -1}, {5, 6, 4, 1}, {5, -1, 4, 1}, {5, 1, -2, 1}, {5, 1, 4, -2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_image(&bad[i], &b), KL_EINVAL);
        ck_assert_uint_eq(b.len, 0);
        kl_buf_free(&b);
    }
    /* records_applied = -1 forged by hand: field 1, varint of -1 (10 bytes) */
    static const uint8_t neg[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    wire_meta_image_t out = {7, 7, 7, 7};
    ck_assert_int_eq(wire_meta_decode_image(neg, sizeof neg, &out), KL_EPROTO);
    ck_assert_int_eq(out.records_applied, 7); /* untouched on failure */
    static const uint8_t junk[] = {0x08};
    ck_assert_int_eq(wire_meta_decode_image(junk, sizeof junk, &out), KL_EPROTO);
}
END_TEST

static Suite *wire_meta_suite(void)
{
    Suite *s = suite_create("wire_meta");
    TCase *t = tcase_create("records");
    tcase_add_test(t, noop_record_round_trips);
    tcase_add_test(t, record_junk_missing_or_unknown_type_is_refused);
    suite_add_tcase(s, t);
    t = tcase_create("image");
    tcase_add_test(t, image_round_trips_including_negative_none_values);
    tcase_add_test(t, image_out_of_range_is_refused_both_ways);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kl_check_run(wire_meta_suite());
}
