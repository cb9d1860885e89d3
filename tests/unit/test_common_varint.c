/* test_common_varint.c — LEB128 and zigzag varints: encodings, round trips, malformed input. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "keel/err.h"
#include "keel/rng.h"
#include "keel/varint.h"
#include "unit/kl_check.h"

static void assert_uenc(uint64_t v, const char *hex_bytes, size_t n)
{
    uint8_t out[KL_VARINT_MAX];
    ck_assert_uint_eq(kl_uvarint_encode(out, v), n);
    ck_assert_uint_eq(kl_uvarint_size(v), n);
    ck_assert_mem_eq(out, hex_bytes, n);
}

START_TEST(unsigned_encodings_match_protobuf)
{
    assert_uenc(0, "\x00", 1);
    assert_uenc(1, "\x01", 1);
    assert_uenc(127, "\x7f", 1);
    assert_uenc(128, "\x80\x01", 2);
    assert_uenc(300, "\xac\x02", 2);
    assert_uenc(16383, "\xff\x7f", 2);
    assert_uenc(16384, "\x80\x80\x01", 3);
    assert_uenc(UINT64_MAX, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10);
}
END_TEST

START_TEST(signed_values_use_zigzag_like_kafka)
{
    const struct {
        int64_t v;
        uint8_t first;
        size_t n;
    } cases[] = {{0, 0x00, 1}, {-1, 0x01, 1}, {1, 0x02, 1}, {-2, 0x03, 1},
                 {63, 0x7e, 1}, {-64, 0x7f, 1}, {64, 0x80, 2}, {INT64_MAX, 0xfe, 10},
                 {INT64_MIN, 0xff, 10}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t out[KL_VARINT_MAX];
        ck_assert_uint_eq(kl_varint_encode(out, cases[i].v), cases[i].n);
        ck_assert_uint_eq(kl_varint_size(cases[i].v), cases[i].n);
        ck_assert_uint_eq(out[0], cases[i].first);
        int64_t back;
        ck_assert_int_eq(kl_varint_decode(out, cases[i].n, &back), (int)cases[i].n);
        ck_assert(back == cases[i].v);
    }
}
END_TEST

START_TEST(random_values_round_trip_and_consume_exactly_their_bytes)
{
    kl_rng_t r;
    kl_rng_seed(&r, 7);
    for (int i = 0; i < 100000; i++) {
        /* Vary the magnitude so every encoded length is exercised. */
        uint64_t u = kl_rng_next(&r) >> (kl_rng_next(&r) % 64);
        uint8_t buf[KL_VARINT_MAX + 3] = {0};
        size_t n = kl_uvarint_encode(buf, u);
        ck_assert_uint_eq(n, kl_uvarint_size(u));
        buf[n] = 0xff; /* trailing bytes must not be consumed */
        uint64_t ub;
        ck_assert_int_eq(kl_uvarint_decode(buf, sizeof buf, &ub), (int)n);
        ck_assert(ub == u);

        int64_t s = (int64_t)u * ((i & 1) ? -1 : 1);
        n = kl_varint_encode(buf, s);
        ck_assert_uint_eq(n, kl_varint_size(s));
        int64_t sb;
        ck_assert_int_eq(kl_varint_decode(buf, n, &sb), (int)n);
        ck_assert(sb == s);
    }
}
END_TEST

START_TEST(truncated_input_asks_for_more)
{
    uint8_t buf[KL_VARINT_MAX];
    size_t n = kl_uvarint_encode(buf, UINT64_MAX);
    uint64_t u;
    int64_t s;
    for (size_t len = 0; len < n; len++) {
        ck_assert_int_eq(kl_uvarint_decode(buf, len, &u), KL_EAGAIN);
        ck_assert_int_eq(kl_varint_decode(buf, len, &s), KL_EAGAIN);
    }
    ck_assert_int_eq(kl_uvarint_decode(NULL, 0, &u), KL_EAGAIN);
}
END_TEST

START_TEST(more_than_ten_bytes_is_corrupt)
{
    uint8_t buf[12];
    memset(buf, 0x80, sizeof buf);
    buf[11] = 0x00;
    uint64_t u;
    ck_assert_int_eq(kl_uvarint_decode(buf, sizeof buf, &u), KL_ECORRUPT);
    /* Even when the input is cut right after the 10th byte, it is already invalid. */
    ck_assert_int_eq(kl_uvarint_decode(buf, 10, &u), KL_ECORRUPT);
    int64_t s;
    ck_assert_int_eq(kl_varint_decode(buf, sizeof buf, &s), KL_ECORRUPT);
}
END_TEST

START_TEST(tenth_byte_overflowing_64_bits_is_corrupt)
{
    uint8_t buf[10];
    memset(buf, 0xff, 9);
    uint64_t u;
    buf[9] = 0x02;
    ck_assert_int_eq(kl_uvarint_decode(buf, sizeof buf, &u), KL_ECORRUPT);
    buf[9] = 0x7f;
    ck_assert_int_eq(kl_uvarint_decode(buf, sizeof buf, &u), KL_ECORRUPT);
    buf[9] = 0x01;
    ck_assert_int_eq(kl_uvarint_decode(buf, sizeof buf, &u), 10);
    ck_assert(u == UINT64_MAX);
}
END_TEST

START_TEST(non_minimal_encodings_decode_to_their_value)
{
    uint64_t u;
    ck_assert_int_eq(kl_uvarint_decode((const uint8_t *)"\x80\x00", 2, &u), 2);
    ck_assert_uint_eq(u, 0);
    ck_assert_int_eq(kl_uvarint_decode((const uint8_t *)"\x81\x80\x00", 3, &u), 3);
    ck_assert_uint_eq(u, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_varint");
    TCase *tc = tcase_create("varint");
    tcase_add_test(tc, unsigned_encodings_match_protobuf);
    tcase_add_test(tc, signed_values_use_zigzag_like_kafka);
    tcase_add_test(tc, random_values_round_trip_and_consume_exactly_their_bytes);
    tcase_add_test(tc, truncated_input_asks_for_more);
    tcase_add_test(tc, more_than_ten_bytes_is_corrupt);
    tcase_add_test(tc, tenth_byte_overflowing_64_bits_is_corrupt);
    tcase_add_test(tc, non_minimal_encodings_decode_to_their_value);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
