/* test_common_uuid.c — random uuids and Kafka's base64url text form, parsed strictly. */
#include <check.h>
#include <stdint.h>
#include <string.h>

#include "keel/err.h"
#include "keel/uuid.h"
#include "unit/kl_check.h"

START_TEST(random_uuids_are_version_4_nonzero_and_distinct)
{
    enum { N = 2000 };
    static uint8_t ids[N][KL_UUID_LEN];
    static const uint8_t zero[KL_UUID_LEN];
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(kl_uuid_random(ids[i]), 0);
        ck_assert_int_ne(memcmp(ids[i], zero, KL_UUID_LEN), 0);
        ck_assert_uint_eq(ids[i][6] >> 4, 4);
        ck_assert_uint_eq(ids[i][8] >> 6, 2);
        for (int j = 0; j < i; j++) ck_assert_int_ne(memcmp(ids[i], ids[j], KL_UUID_LEN), 0);
    }
}
END_TEST

START_TEST(random_uuid_text_never_starts_with_a_dash)
{
    for (int i = 0; i < 5000; i++) {
        uint8_t u[KL_UUID_LEN];
        char s[KL_UUID_STR_LEN + 1];
        ck_assert_int_eq(kl_uuid_random(u), 0);
        kl_uuid_to_string(u, s);
        ck_assert_int_ne(s[0], '-');
    }
}
END_TEST

START_TEST(text_form_is_unpadded_base64url)
{
    uint8_t u[KL_UUID_LEN];
    char s[KL_UUID_STR_LEN + 1];
    for (int i = 0; i < KL_UUID_LEN; i++) u[i] = (uint8_t)i;
    kl_uuid_to_string(u, s);
    ck_assert_str_eq(s, "AAECAwQFBgcICQoLDA0ODw");
    memset(u, 0xff, sizeof u);
    kl_uuid_to_string(u, s);
    ck_assert_str_eq(s, "_____________________w");
    memset(u, 0xfb, sizeof u); /* 111110 11... exercises '-' (62) */
    kl_uuid_to_string(u, s);
    ck_assert_uint_eq(strlen(s), KL_UUID_STR_LEN);
    ck_assert_int_eq(s[0], '-');
}
END_TEST

START_TEST(parse_round_trips_the_text_form)
{
    for (int i = 0; i < 1000; i++) {
        uint8_t u[KL_UUID_LEN], back[KL_UUID_LEN];
        char s[KL_UUID_STR_LEN + 1];
        ck_assert_int_eq(kl_uuid_random(u), 0);
        kl_uuid_to_string(u, s);
        ck_assert_int_eq(kl_uuid_parse(s, back), 0);
        ck_assert_mem_eq(u, back, KL_UUID_LEN);
    }
    uint8_t u[KL_UUID_LEN];
    ck_assert_int_eq(kl_uuid_parse("AAECAwQFBgcICQoLDA0ODw", u), 0);
    for (int i = 0; i < KL_UUID_LEN; i++) ck_assert_uint_eq(u[i], i);
}
END_TEST

START_TEST(parse_rejects_anything_but_22_canonical_base64url_chars)
{
    static const char *const bad[] = {
        "",
        "AAECAwQFBgcICQoLDA0OD",   /* 21 chars */
        "AAECAwQFBgcICQoLDA0ODwA", /* 23 chars */
        "AAECAwQFBgcICQoLDA0OD+",  /* standard base64 alphabet */
        "AAECAwQFBgcICQoLDA0OD/",
        "AAECAwQFBgcICQoLDA0OD=",
        "AAECAwQFBgcICQoLDA0ODw==",
        "AAECAwQFBgcICQoLDA0ODx",  /* non-zero padding bits in the last char */
        "AAECAwQFBgcICQoLDA0OD ",
        " AAECAwQFBgcICQoLDA0OD",
        "AAAAAAAAAAAAAAAAAAAAAA",  /* the all-zero uuid is reserved */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t u[KL_UUID_LEN];
        memset(u, 0x5a, sizeof u);
        ck_assert_msg(kl_uuid_parse(bad[i], u) == KL_EINVAL, "accepted '%s'", bad[i]);
        for (int j = 0; j < KL_UUID_LEN; j++) ck_assert_uint_eq(u[j], 0x5a); /* untouched */
    }
    uint8_t u[KL_UUID_LEN];
    ck_assert_int_eq(kl_uuid_parse(NULL, u), KL_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_uuid");
    TCase *tc = tcase_create("uuid");
    tcase_add_test(tc, random_uuids_are_version_4_nonzero_and_distinct);
    tcase_add_test(tc, random_uuid_text_never_starts_with_a_dash);
    tcase_add_test(tc, text_form_is_unpadded_base64url);
    tcase_add_test(tc, parse_round_trips_the_text_form);
    tcase_add_test(tc, parse_rejects_anything_but_22_canonical_base64url_chars);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
