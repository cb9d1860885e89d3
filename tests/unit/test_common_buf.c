/* test_common_buf.c — growable buffer: appends, growth, the hard limit, text, steal, endianness. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/rng.h"
#include "keel/varint.h"
#include "unit/kl_check.h"

/* Lets a huge allocation fail with NULL under ASan instead of aborting the test. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "allocator_may_return_null=1";
}

START_TEST(fixed_width_integers_are_big_endian)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append_u8(&b, 0xab), 0);
    ck_assert_int_eq(kl_buf_append_be16(&b, 0x0102), 0);
    ck_assert_int_eq(kl_buf_append_be32(&b, 0x03040506u), 0);
    ck_assert_int_eq(kl_buf_append_be64(&b, 0x0708090a0b0c0d0eull), 0);
    ck_assert_uint_eq(b.len, 15);
    ck_assert_mem_eq(b.data, "\xab\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e", 15);
    ck_assert_uint_eq(kl_get_be16(b.data + 1), 0x0102);
    ck_assert_uint_eq(kl_get_be32(b.data + 3), 0x03040506u);
    ck_assert(kl_get_be64(b.data + 7) == 0x0708090a0b0c0d0eull);
    kl_buf_free(&b);
}
END_TEST

START_TEST(put_and_get_round_trip_extreme_values)
{
    uint8_t p[8];
    kl_put_be16(p, 0xffff);
    ck_assert_uint_eq(kl_get_be16(p), 0xffff);
    kl_put_be32(p, 0x80000001u);
    ck_assert_uint_eq(kl_get_be32(p), 0x80000001u);
    ck_assert_uint_eq(p[0], 0x80);
    kl_put_be64(p, UINT64_MAX - 1);
    ck_assert(kl_get_be64(p) == UINT64_MAX - 1);
    ck_assert_uint_eq(p[7], 0xfe);
}
END_TEST

START_TEST(varints_are_appended_in_their_encoded_form)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append_varint(&b, -1), 0);
    ck_assert_int_eq(kl_buf_append_uvarint(&b, 300), 0);
    ck_assert_int_eq(kl_buf_append_varint(&b, INT64_MIN), 0);
    uint8_t want[1 + 2 + KL_VARINT_MAX] = {0x01, 0xac, 0x02};
    size_t n = 3 + kl_varint_encode(want + 3, INT64_MIN);
    ck_assert_uint_eq(b.len, n);
    ck_assert_mem_eq(b.data, want, n);
    kl_buf_free(&b);
}
END_TEST

START_TEST(growth_preserves_contents)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    kl_rng_t r;
    kl_rng_seed(&r, 3);
    enum { TOTAL = 1 << 20 };
    uint8_t *want = malloc(TOTAL);
    ck_assert_ptr_nonnull(want);
    for (size_t i = 0; i < TOTAL; i++) want[i] = (uint8_t)kl_rng_next(&r);
    size_t off = 0;
    while (off < TOTAL) {
        size_t n = (size_t)kl_rng_range(&r, 0, 5000);
        if (n > TOTAL - off) n = TOTAL - off;
        ck_assert_int_eq(kl_buf_append(&b, want + off, n), 0);
        off += n;
        ck_assert_uint_ge(b.cap, b.len);
    }
    ck_assert_uint_eq(b.len, TOTAL);
    ck_assert_int_eq(memcmp(b.data, want, TOTAL), 0);
    /* Doubling: capacity stays within a factor of two of what is used. */
    ck_assert_uint_le(b.cap, 2 * (size_t)TOTAL);
    free(want);
    kl_buf_free(&b);
}
END_TEST

START_TEST(growth_past_the_limit_fails_and_keeps_the_data)
{
    kl_buf_t b;
    kl_buf_init(&b, 100);
    uint8_t chunk[100];
    memset(chunk, 'x', sizeof chunk);
    ck_assert_int_eq(kl_buf_append(&b, chunk, 60), 0);
    ck_assert_int_eq(kl_buf_append(&b, chunk, 41), KL_ETOOBIG);
    ck_assert_uint_eq(b.len, 60);
    ck_assert_int_eq(kl_buf_append(&b, chunk, 40), 0);
    ck_assert_uint_eq(b.len, 100);
    ck_assert_uint_le(b.cap, 100);
    ck_assert_int_eq(kl_buf_append_u8(&b, 1), KL_ETOOBIG);
    ck_assert_int_eq(kl_buf_append_be64(&b, 1), KL_ETOOBIG);
    ck_assert_int_eq(kl_buf_append(&b, chunk, 0), 0);
    ck_assert_uint_eq(b.len, 100);
    kl_buf_free(&b);
}
END_TEST

START_TEST(reserve_rejects_sizes_that_would_overflow)
{
    kl_buf_t b;
    kl_buf_init(&b, SIZE_MAX);
    ck_assert_int_eq(kl_buf_append_u8(&b, 1), 0);
    ck_assert_int_eq(kl_buf_reserve(&b, SIZE_MAX), KL_ETOOBIG);
    ck_assert_uint_eq(b.len, 1);
    kl_buf_free(&b);
}
END_TEST

START_TEST(zero_limit_means_the_default_limit)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_reserve(&b, KL_BUF_DEFAULT_LIMIT + 1), KL_ETOOBIG);
    ck_assert_uint_eq(b.cap, 0);
    kl_buf_free(&b);
}
END_TEST

START_TEST(failed_allocation_reports_enomem_and_keeps_the_data)
{
    kl_buf_t b;
    kl_buf_init(&b, SIZE_MAX);
    ck_assert_int_eq(kl_buf_append(&b, "abc", 3), 0);
    ck_assert_int_eq(kl_buf_reserve(&b, (size_t)1 << 62), KL_ENOMEM);
    ck_assert_uint_eq(b.len, 3);
    ck_assert_mem_eq(b.data, "abc", 3);
    kl_buf_free(&b);
}
END_TEST

START_TEST(appendf_formats_text_with_a_nul_after_len)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_appendf(&b, "node %d", 7), 0);
    ck_assert_uint_eq(b.len, 6);
    ck_assert_uint_eq(b.data[b.len], '\0');
    ck_assert_int_eq(kl_buf_appendf(&b, ", %s", "leader"), 0);
    ck_assert_str_eq((const char *)b.data, "node 7, leader");
    ck_assert_uint_eq(b.len, strlen("node 7, leader"));
    ck_assert_int_eq(kl_buf_appendf(&b, "%s", ""), 0);
    ck_assert_uint_eq(b.len, strlen("node 7, leader"));
    kl_buf_free(&b);
}
END_TEST

START_TEST(appendf_respects_the_limit_including_its_nul)
{
    kl_buf_t b;
    kl_buf_init(&b, 8);
    ck_assert_int_eq(kl_buf_appendf(&b, "%s", "1234567"), 0);
    ck_assert_int_eq(kl_buf_appendf(&b, "%s", "8"), KL_ETOOBIG);
    ck_assert_str_eq((const char *)b.data, "1234567");
    kl_buf_free(&b);
}
END_TEST

START_TEST(reset_keeps_memory_and_free_leaves_a_reusable_buffer)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append(&b, "hello", 5), 0);
    size_t cap = b.cap;
    uint8_t *data = b.data;
    kl_buf_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_ptr_eq(b.data, data);
    kl_buf_free(&b);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    ck_assert_int_eq(kl_buf_append(&b, "again", 5), 0);
    ck_assert_mem_eq(b.data, "again", 5);
    kl_buf_free(&b);
    kl_buf_free(&b); /* freeing twice is harmless */
}
END_TEST

START_TEST(steal_detaches_the_data_and_empties_the_buffer)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append(&b, "frame", 5), 0);
    size_t len = 0;
    uint8_t *p = kl_buf_steal(&b, &len);
    ck_assert_uint_eq(len, 5);
    ck_assert_mem_eq(p, "frame", 5);
    ck_assert_ptr_null(b.data);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
    free(p);
    ck_assert_int_eq(kl_buf_append(&b, "x", 1), 0);
    kl_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_buf");
    TCase *tc = tcase_create("buf");
    tcase_add_test(tc, fixed_width_integers_are_big_endian);
    tcase_add_test(tc, put_and_get_round_trip_extreme_values);
    tcase_add_test(tc, varints_are_appended_in_their_encoded_form);
    tcase_add_test(tc, growth_preserves_contents);
    tcase_add_test(tc, growth_past_the_limit_fails_and_keeps_the_data);
    tcase_add_test(tc, reserve_rejects_sizes_that_would_overflow);
    tcase_add_test(tc, zero_limit_means_the_default_limit);
    tcase_add_test(tc, failed_allocation_reports_enomem_and_keeps_the_data);
    tcase_add_test(tc, appendf_formats_text_with_a_nul_after_len);
    tcase_add_test(tc, appendf_respects_the_limit_including_its_nul);
    tcase_add_test(tc, reset_keeps_memory_and_free_leaves_a_reusable_buffer);
    tcase_add_test(tc, steal_detaches_the_data_and_empties_the_buffer);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
