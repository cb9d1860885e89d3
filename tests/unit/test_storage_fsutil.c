/* test_storage_fsutil.c — durable file helpers: atomic replace, bounded reads, mkdir -p, rm -rf, error mapping. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "unit/kl_tmpdir.h"


static int count_entry(const char *name, void *arg)
{
    (void)name;
    (*(int *)arg)++;
    return 0;
}

static int stop_at_first(const char *name, void *arg)
{
    (void)name;
    (void)arg;
    return 42;
}

START_TEST(write_atomic_replaces_the_file_and_leaves_no_temp_file)
{
    ck_assert_int_eq(fsutil_write_atomic(dir, "f", "first version", 13), 0);
    ck_assert_int_eq(fsutil_write_atomic(dir, "f", "second", 6), 0);
    char path[256];
    snprintf(path, sizeof path, "%s/f", dir);
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(fsutil_read_file(path, 100, &data, &len), 0);
    ck_assert_uint_eq(len, 6);
    ck_assert_str_eq((char *)data, "second"); /* NUL-terminated */
    free(data);
    int n = 0;
    ck_assert_int_eq(fsutil_list_dir(dir, count_entry, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(fsutil_write_atomic(dir, "empty", "", 0), 0);
    snprintf(path, sizeof path, "%s/empty", dir);
    ck_assert_int_eq(fsutil_read_file(path, 100, &data, &len), 0);
    ck_assert_uint_eq(len, 0);
    free(data);
}
END_TEST

START_TEST(read_file_reports_missing_and_oversized_files)
{
    char path[256];
    snprintf(path, sizeof path, "%s/nope", dir);
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(fsutil_read_file(path, 100, &data, &len), KL_ENOENT);
    ck_assert_ptr_null(data);
    ck_assert_int_eq(fsutil_write_atomic(dir, "big", "0123456789", 10), 0);
    snprintf(path, sizeof path, "%s/big", dir);
    ck_assert_int_eq(fsutil_read_file(path, 9, &data, &len), KL_ETOOBIG);
    ck_assert_int_eq(fsutil_read_file(path, 10, &data, &len), 0);
    free(data);
}
END_TEST

START_TEST(write_atomic_into_a_missing_directory_fails_cleanly)
{
    char sub[256];
    snprintf(sub, sizeof sub, "%s/missing", dir);
    ck_assert_int_eq(fsutil_write_atomic(sub, "f", "x", 1), KL_EIO);
}
END_TEST

START_TEST(mkdirs_creates_nested_directories_and_is_idempotent)
{
    char p[256];
    snprintf(p, sizeof p, "%s/a/b/c", dir);
    ck_assert_int_eq(fsutil_mkdirs(p), 0);
    ck_assert_int_eq(fsutil_mkdirs(p), 0);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    char f[256];
    snprintf(f, sizeof f, "%s/a", dir);
    ck_assert_int_eq(fsutil_write_atomic(f, "file", "x", 1), 0);
    snprintf(p, sizeof p, "%s/a/file/sub", dir);
    ck_assert_int_eq(fsutil_mkdirs(p), KL_EIO); /* a file is in the way */
    snprintf(p, sizeof p, "%s/a/file", dir);
    ck_assert_int_eq(fsutil_mkdirs(p), KL_EIO);
    ck_assert_int_eq(fsutil_mkdirs(""), KL_EINVAL);
}
END_TEST

START_TEST(rm_rf_removes_a_tree_and_accepts_a_missing_path)
{
    char p[256];
    snprintf(p, sizeof p, "%s/t/u/v", dir);
    ck_assert_int_eq(fsutil_mkdirs(p), 0);
    ck_assert_int_eq(fsutil_write_atomic(p, "f", "x", 1), 0);
    snprintf(p, sizeof p, "%s/t", dir);
    ck_assert_int_eq(fsutil_write_atomic(p, "g", "y", 1), 0);
    ck_assert_int_eq(fsutil_rm_rf(p), 0);
    struct stat st;
    ck_assert_int_ne(stat(p, &st), 0);
    ck_assert_int_eq(fsutil_rm_rf(p), 0);
}
END_TEST

START_TEST(list_dir_stops_when_the_callback_says_so)
{
    ck_assert_int_eq(fsutil_write_atomic(dir, "a", "x", 1), 0);
    ck_assert_int_eq(fsutil_write_atomic(dir, "b", "x", 1), 0);
    ck_assert_int_eq(fsutil_list_dir(dir, stop_at_first, NULL), 42);
    char p[256];
    snprintf(p, sizeof p, "%s/none", dir);
    int n = 0;
    ck_assert_int_eq(fsutil_list_dir(p, count_entry, &n), KL_ENOENT);
}
END_TEST

START_TEST(full_transfers_and_early_end_of_file)
{
    char p[256];
    snprintf(p, sizeof p, "%s/data", dir);
    int fd;
    ck_assert_int_eq(fsutil_open(p, O_RDWR | O_CREAT, &fd), 0);
    ck_assert_int_eq(fsutil_pwrite_all(fd, "hello world", 11, 5, p), 0);
    uint64_t size;
    ck_assert_int_eq(fsutil_size(fd, p, &size), 0);
    ck_assert_uint_eq(size, 16);
    char buf[16];
    ck_assert_int_eq(fsutil_pread_all(fd, buf, 11, 5, p), 0);
    ck_assert_mem_eq(buf, "hello world", 11);
    ck_assert_int_eq(fsutil_pread_all(fd, buf, 12, 5, p), KL_EIO);
    ck_assert_int_eq(fsutil_truncate(fd, 3, p), 0);
    ck_assert_int_eq(fsutil_fsync(fd, p), 0);
    ck_assert_int_eq(fsutil_size(fd, p, &size), 0);
    ck_assert_uint_eq(size, 3);
    fsutil_close(fd);
    ck_assert_int_eq(fsutil_unlink(p), 0);
    ck_assert_int_eq(fsutil_unlink(p), 0); /* already gone is fine */
    ck_assert_int_eq(fsutil_open(p, O_RDONLY, &fd), KL_ENOENT);
}
END_TEST

START_TEST(a_full_disk_is_reported_as_no_space)
{
    int fd;
    ck_assert_int_eq(fsutil_open("/dev/full", O_WRONLY, &fd), 0);
    ck_assert_int_eq(fsutil_pwrite_all(fd, "x", 1, 0, "/dev/full"), KL_ENOSPACE);
    fsutil_close(fd);
    ck_assert_int_eq(fsutil_error("op", "path", EDQUOT), KL_ENOSPACE);
    ck_assert_int_eq(fsutil_error("op", "path", EACCES), KL_EIO);
}
END_TEST

START_TEST(over_long_paths_are_refused)
{
    char longname[FSUTIL_PATH_MAX + 10];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    char out[FSUTIL_PATH_MAX];
    ck_assert_int_eq(fsutil_join(out, sizeof out, dir, longname), KL_ETOOBIG);
    ck_assert_int_eq(fsutil_write_atomic(dir, longname, "x", 1), KL_ETOOBIG);
    ck_assert_int_eq(fsutil_mkdirs(longname), KL_ETOOBIG);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_fsutil");
    TCase *tc = tcase_create("fsutil");
    tcase_add_checked_fixture(tc, kl_tmpdir_setup, kl_tmpdir_teardown);
    tcase_add_test(tc, write_atomic_replaces_the_file_and_leaves_no_temp_file);
    tcase_add_test(tc, read_file_reports_missing_and_oversized_files);
    tcase_add_test(tc, write_atomic_into_a_missing_directory_fails_cleanly);
    tcase_add_test(tc, mkdirs_creates_nested_directories_and_is_idempotent);
    tcase_add_test(tc, rm_rf_removes_a_tree_and_accepts_a_missing_path);
    tcase_add_test(tc, list_dir_stops_when_the_callback_says_so);
    tcase_add_test(tc, full_transfers_and_early_end_of_file);
    tcase_add_test(tc, a_full_disk_is_reported_as_no_space);
    tcase_add_test(tc, over_long_paths_are_refused);
    suite_add_tcase(s, tc);
    return kl_tmpdir_run(s, "fsutil");
}
