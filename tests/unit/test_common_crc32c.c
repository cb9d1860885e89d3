/* test_common_crc32c.c — CRC-32C known vectors, incremental use, and hardware == software. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keel/crc32c.h"
#include "keel/rng.h"
#include "unit/kl_check.h"

START_TEST(check_value_of_123456789_is_e3069283)
{
    ck_assert_uint_eq(kl_crc32c(0, "123456789", 9), 0xE3069283u);
    ck_assert_uint_eq(kl_crc32c_sw(0, "123456789", 9), 0xE3069283u);
}
END_TEST

START_TEST(empty_input_leaves_the_crc_unchanged)
{
    ck_assert_uint_eq(kl_crc32c(0, NULL, 0), 0);
    ck_assert_uint_eq(kl_crc32c(0xE3069283u, "", 0), 0xE3069283u);
    ck_assert_uint_eq(kl_crc32c_sw(0, NULL, 0), 0);
}
END_TEST

/* RFC 3720 (iSCSI) appendix B.4 test vectors. */
START_TEST(rfc3720_vectors_match)
{
    uint8_t buf[32];
    memset(buf, 0, sizeof buf);
    ck_assert_uint_eq(kl_crc32c(0, buf, 32), 0x8A9136AAu);
    ck_assert_uint_eq(kl_crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof buf);
    ck_assert_uint_eq(kl_crc32c(0, buf, 32), 0x62A8AB43u);
    ck_assert_uint_eq(kl_crc32c_sw(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    ck_assert_uint_eq(kl_crc32c(0, buf, 32), 0x46DD794Eu);
    ck_assert_uint_eq(kl_crc32c_sw(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    ck_assert_uint_eq(kl_crc32c(0, buf, 32), 0x113FDB5Cu);
    ck_assert_uint_eq(kl_crc32c_sw(0, buf, 32), 0x113FDB5Cu);
}
END_TEST

START_TEST(incremental_equals_one_shot_at_every_split)
{
    uint8_t buf[200];
    kl_rng_t r;
    kl_rng_seed(&r, 1);
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)kl_rng_next(&r);
    uint32_t whole = kl_crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++) {
        ck_assert_uint_eq(kl_crc32c(kl_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
        ck_assert_uint_eq(kl_crc32c_sw(kl_crc32c_sw(0, buf, cut), buf + cut, sizeof buf - cut),
                          whole);
    }
}
END_TEST

START_TEST(hardware_and_software_agree_on_every_length_and_alignment)
{
    enum { MAXLEN = 1 << 20, SLACK = 16 };
    uint8_t *buf = malloc(MAXLEN + SLACK);
    ck_assert_ptr_nonnull(buf);
    kl_rng_t r;
    kl_rng_seed(&r, 2);
    for (size_t i = 0; i < MAXLEN + SLACK; i++) buf[i] = (uint8_t)kl_rng_next(&r);
    for (size_t off = 0; off < SLACK; off++)
        for (size_t len = 0; len <= 300; len++) {
            uint32_t seed = (uint32_t)kl_rng_next(&r);
            ck_assert_uint_eq(kl_crc32c(seed, buf + off, len), kl_crc32c_sw(seed, buf + off, len));
        }
    for (int i = 0; i < 20; i++) {
        size_t off = (size_t)kl_rng_range(&r, 0, SLACK);
        size_t len = (size_t)kl_rng_range(&r, 0, MAXLEN + 1);
        ck_assert_uint_eq(kl_crc32c(0, buf + off, len), kl_crc32c_sw(0, buf + off, len));
    }
    free(buf);
}
END_TEST

START_TEST(hardware_path_is_used_when_the_cpu_has_it)
{
#if defined(__x86_64__)
    ck_assert_int_eq(kl_crc32c_hw_available(), __builtin_cpu_supports("sse4.2") != 0);
#else
    ck_assert_int_eq(kl_crc32c_hw_available(), 0);
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_crc32c");
    TCase *tc = tcase_create("crc32c");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, check_value_of_123456789_is_e3069283);
    tcase_add_test(tc, empty_input_leaves_the_crc_unchanged);
    tcase_add_test(tc, rfc3720_vectors_match);
    tcase_add_test(tc, incremental_equals_one_shot_at_every_split);
    tcase_add_test(tc, hardware_and_software_agree_on_every_length_and_alignment);
    tcase_add_test(tc, hardware_path_is_used_when_the_cpu_has_it);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
