/* test_storage_snapfile.c — snapshot files: round trips, damage detection, newest-valid selection and cleanup. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/snapfile.h"
#include "unit/kl_tmpdir.h"


static raft_snapshot_id_t sid(int64_t end, int32_t epoch)
{
    return (raft_snapshot_id_t){.end_offset = end, .last_epoch = epoch};
}

static void snap_path(raft_snapshot_id_t id, char *out, size_t cap)
{
    char name[SNAPFILE_NAME_LEN + 1];
    snapfile_name(id, name);
    snprintf(out, cap, "%s/%s", dir, name);
}

static bool exists(raft_snapshot_id_t id)
{
    char p[256];
    snap_path(id, p, sizeof p);
    struct stat st;
    return stat(p, &st) == 0;
}

START_TEST(a_snapshot_reads_back_under_its_kafka_style_name)
{
    char name[SNAPFILE_NAME_LEN + 1];
    snapfile_name(sid(1234, 7), name);
    ck_assert_str_eq(name, "00000000000000001234-0000000007.checkpoint");
    ck_assert_int_eq(snapfile_write(dir, sid(1234, 7), "image bytes", 11), 0);
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(snapfile_read(dir, sid(1234, 7), &data, &len), 0);
    ck_assert_uint_eq(len, 11);
    ck_assert_mem_eq(data, "image bytes", 11);
    free(data);
    ck_assert_int_eq(snapfile_read(dir, sid(1234, 8), &data, &len), KL_ENOENT);
    ck_assert_int_eq(snapfile_write(dir, sid(5, 1), "", 0), 0);
    ck_assert_int_eq(snapfile_read(dir, sid(5, 1), &data, &len), 0);
    ck_assert_uint_eq(len, 0);
    ck_assert_ptr_null(data);
    ck_assert_int_eq(snapfile_write(dir, sid(-1, 1), "x", 1), KL_EINVAL);
    ck_assert_int_eq(snapfile_write(dir, sid(1, -1), "x", 1), KL_EINVAL);
}
END_TEST

START_TEST(any_damage_to_a_snapshot_file_is_detected)
{
    ck_assert_int_eq(snapfile_write(dir, sid(100, 3), "0123456789abcdef", 16), 0);
    char p[256];
    snap_path(sid(100, 3), p, sizeof p);
    uint8_t *orig, *data;
    size_t len, n;
    ck_assert_int_eq(fsutil_read_file(p, 1 << 20, &orig, &len), 0);
    char name[SNAPFILE_NAME_LEN + 1];
    snapfile_name(sid(100, 3), name);
    for (size_t i = 0; i < len; i++) { /* flip each byte */
        orig[i] ^= 0x01;
        ck_assert_int_eq(fsutil_write_atomic(dir, name, orig, len), 0);
        ck_assert_msg(snapfile_read(dir, sid(100, 3), &data, &n) == KL_ECORRUPT, "byte %zu", i);
        orig[i] ^= 0x01;
    }
    for (size_t cut = 0; cut < len; cut++) { /* cut at each length */
        ck_assert_int_eq(fsutil_write_atomic(dir, name, orig, cut), 0);
        ck_assert_msg(snapfile_read(dir, sid(100, 3), &data, &n) == KL_ECORRUPT, "cut %zu", cut);
    }
    /* A valid file under another snapshot's name is refused too. */
    snapfile_name(sid(200, 3), name);
    ck_assert_int_eq(fsutil_write_atomic(dir, name, orig, len), 0);
    ck_assert_int_eq(snapfile_read(dir, sid(200, 3), &data, &n), KL_ECORRUPT);
    free(orig);
}
END_TEST

START_TEST(latest_picks_the_newest_valid_snapshot)
{
    raft_snapshot_id_t id;
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(snapfile_latest(dir, &id, &data, &len), KL_ENOENT);
    ck_assert_int_eq(snapfile_write(dir, sid(50, 2), "fifty", 5), 0);
    ck_assert_int_eq(snapfile_write(dir, sid(100, 2), "hundred-2", 9), 0);
    ck_assert_int_eq(snapfile_write(dir, sid(100, 3), "hundred-3", 9), 0);
    ck_assert_int_eq(snapfile_write(dir, sid(9, 9), "nine", 4), 0);
    ck_assert_int_eq(fsutil_write_atomic(dir, "unrelated.txt", "x", 1), 0);
    ck_assert_int_eq(snapfile_latest(dir, &id, &data, &len), 0);
    ck_assert_int_eq(id.end_offset, 100);
    ck_assert_int_eq(id.last_epoch, 3);
    ck_assert_mem_eq(data, "hundred-3", 9);
    free(data);

    /* Damage the newest: the next one wins. */
    char name[SNAPFILE_NAME_LEN + 1];
    snapfile_name(sid(100, 3), name);
    ck_assert_int_eq(fsutil_write_atomic(dir, name, "garbage", 7), 0);
    ck_assert_int_eq(snapfile_latest(dir, &id, &data, &len), 0);
    ck_assert_int_eq(id.end_offset, 100);
    ck_assert_int_eq(id.last_epoch, 2);
    free(data);

    /* All damaged: none. */
    raft_snapshot_id_t all[] = {sid(50, 2), sid(100, 2), sid(9, 9)};
    for (int i = 0; i < 3; i++) {
        snapfile_name(all[i], name);
        ck_assert_int_eq(fsutil_write_atomic(dir, name, "", 0), 0);
    }
    ck_assert_int_eq(snapfile_latest(dir, &id, &data, &len), KL_ENOENT);
    ck_assert_ptr_null(data);
    char missing[256];
    snprintf(missing, sizeof missing, "%s/none", dir);
    ck_assert_int_eq(snapfile_latest(missing, &id, &data, &len), KL_ENOENT);
}
END_TEST

START_TEST(delete_older_keeps_the_given_snapshot_and_newer_ones)
{
    raft_snapshot_id_t ids[] = {sid(10, 1), sid(20, 1), sid(20, 2), sid(30, 2), sid(40, 3)};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(snapfile_write(dir, ids[i], "s", 1), 0);
    ck_assert_int_eq(
        fsutil_write_atomic(dir, ".00000000000000000050-0000000003.checkpoint.tmp", "t", 1), 0);
    ck_assert_int_eq(fsutil_write_atomic(dir, "keep-me", "k", 1), 0);
    ck_assert_int_eq(snapfile_delete_older(dir, sid(20, 2)), 0);
    ck_assert(!exists(ids[0]));
    ck_assert(!exists(ids[1]));
    ck_assert(exists(ids[2]));
    ck_assert(exists(ids[3]));
    ck_assert(exists(ids[4]));
    struct stat st;
    char p[256];
    snprintf(p, sizeof p, "%s/.00000000000000000050-0000000003.checkpoint.tmp", dir);
    ck_assert_int_ne(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/keep-me", dir);
    ck_assert_int_eq(stat(p, &st), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_snapfile");
    TCase *tc = tcase_create("snapfile");
    tcase_add_checked_fixture(tc, kl_tmpdir_setup, kl_tmpdir_teardown);
    tcase_add_test(tc, a_snapshot_reads_back_under_its_kafka_style_name);
    tcase_add_test(tc, any_damage_to_a_snapshot_file_is_detected);
    tcase_add_test(tc, latest_picks_the_newest_valid_snapshot);
    tcase_add_test(tc, delete_older_keeps_the_given_snapshot_and_newer_ones);
    suite_add_tcase(s, tc);
    return kl_tmpdir_run(s, "snapfile");
}
