/* test_storage_qstate.c — quorum-state file: round trips, and every kind of damage reported as corrupt, never as "no vote". */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/qstate.h"
#include "unit/kl_tmpdir.h"

static char path[256];

static void setup(void)
{
    kl_tmpdir_setup();
    snprintf(path, sizeof path, "%s/%s", dir, QSTATE_FILE);
}


static void read_file(uint8_t **data, size_t *len)
{
    ck_assert_int_eq(fsutil_read_file(path, QSTATE_MAX_BYTES, data, len), 0);
}

static void put_file(const void *data, size_t len)
{
    ck_assert_int_eq(fsutil_write_atomic(dir, QSTATE_FILE, data, len), 0);
}

START_TEST(written_state_reads_back_and_later_writes_replace_it)
{
    raft_hard_state_t in = {.epoch = 7, .voted_for = 2, .leader_id = -1}, out;
    ck_assert_int_eq(qstate_write(dir, &in), 0);
    ck_assert_int_eq(qstate_read(dir, &out), 0);
    ck_assert_int_eq(out.epoch, 7);
    ck_assert_int_eq(out.voted_for, 2);
    ck_assert_int_eq(out.leader_id, -1);
    in = (raft_hard_state_t){.epoch = INT32_MAX, .voted_for = -1, .leader_id = 3};
    ck_assert_int_eq(qstate_write(dir, &in), 0);
    ck_assert_int_eq(qstate_read(dir, &out), 0);
    ck_assert_int_eq(out.epoch, INT32_MAX);
    ck_assert_int_eq(out.voted_for, -1);
    ck_assert_int_eq(out.leader_id, 3);
}
END_TEST

START_TEST(a_missing_file_is_not_found)
{
    raft_hard_state_t out;
    ck_assert_int_eq(qstate_read(dir, &out), KL_ENOENT);
}
END_TEST

START_TEST(impossible_states_are_not_written)
{
    raft_hard_state_t bad[] = {{-1, -1, -1}, {0, -2, -1}, {0, -1, -2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(qstate_write(dir, &bad[i]), KL_EINVAL);
    raft_hard_state_t out;
    ck_assert_int_eq(qstate_read(dir, &out), KL_ENOENT);
}
END_TEST

START_TEST(every_single_byte_change_is_detected)
{
    raft_hard_state_t in = {.epoch = 12, .voted_for = 1, .leader_id = 1}, out;
    ck_assert_int_eq(qstate_write(dir, &in), 0);
    uint8_t *orig;
    size_t len;
    read_file(&orig, &len);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *copy = malloc(len);
            memcpy(copy, orig, len);
            copy[i] ^= (uint8_t)(1u << bit);
            put_file(copy, len);
            free(copy);
            ck_assert_msg(qstate_read(dir, &out) == KL_ECORRUPT, "byte %zu bit %d", i, bit);
        }
    }
    free(orig);
}
END_TEST

START_TEST(a_truncated_or_extended_file_is_corrupt_not_absent)
{
    raft_hard_state_t in = {.epoch = 3, .voted_for = -1, .leader_id = 2}, out;
    ck_assert_int_eq(qstate_write(dir, &in), 0);
    uint8_t *orig;
    size_t len;
    read_file(&orig, &len);
    for (size_t cut = 0; cut < len; cut++) {
        put_file(orig, cut);
        ck_assert_msg(qstate_read(dir, &out) == KL_ECORRUPT, "cut %zu", cut);
    }
    uint8_t *longer = malloc(len + 12);
    memcpy(longer, orig, len);
    memcpy(longer + len, "epoch=99999\n", 12);
    put_file(longer, len + 12);
    ck_assert_int_eq(qstate_read(dir, &out), KL_ECORRUPT);
    char big[QSTATE_MAX_BYTES + 1];
    memset(big, '#', sizeof big);
    put_file(big, sizeof big);
    ck_assert_int_eq(qstate_read(dir, &out), KL_ECORRUPT);
    free(longer);
    free(orig);
}
END_TEST

START_TEST(a_hand_edited_file_with_a_plausible_layout_is_refused)
{
    raft_hard_state_t out;
    const char *edited = "# keel quorum-state (do not edit: a CRC protects it)\n"
                         "version=1\nepoch=5\nvoted.id=-1\nleader.id=-1\ncrc32c=00000000\n";
    put_file(edited, strlen(edited));
    ck_assert_int_eq(qstate_read(dir, &out), KL_ECORRUPT);
    const char *nul = "version=1\0epoch=1\n";
    put_file(nul, 18);
    ck_assert_int_eq(qstate_read(dir, &out), KL_ECORRUPT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_qstate");
    TCase *tc = tcase_create("qstate");
    tcase_add_checked_fixture(tc, setup, kl_tmpdir_teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, written_state_reads_back_and_later_writes_replace_it);
    tcase_add_test(tc, a_missing_file_is_not_found);
    tcase_add_test(tc, impossible_states_are_not_written);
    tcase_add_test(tc, every_single_byte_change_is_detected);
    tcase_add_test(tc, a_truncated_or_extended_file_is_corrupt_not_absent);
    tcase_add_test(tc, a_hand_edited_file_with_a_plausible_layout_is_refused);
    suite_add_tcase(s, tc);
    return kl_tmpdir_run(s, "qstate");
}
