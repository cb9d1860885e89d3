/* test_storage_metaprops.c — meta.properties: round trip, strict parsing, and keeld's start-up check results. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/metaprops.h"
#include "unit/kl_tmpdir.h"

static char cluster[KL_UUID_STR_LEN + 1], other[KL_UUID_STR_LEN + 1], dirid[KL_UUID_STR_LEN + 1];

static void setup(void)
{
    kl_tmpdir_setup();
    uint8_t u[KL_UUID_LEN];
    ck_assert_int_eq(kl_uuid_random(u), 0);
    kl_uuid_to_string(u, cluster);
    ck_assert_int_eq(kl_uuid_random(u), 0);
    kl_uuid_to_string(u, other);
    ck_assert_int_eq(kl_uuid_random(u), 0);
    kl_uuid_to_string(u, dirid);
}


static metaprops_t sample(int32_t node)
{
    metaprops_t m;
    memset(&m, 0, sizeof m);
    memcpy(m.cluster_id, cluster, sizeof m.cluster_id);
    m.node_id = node;
    ck_assert_int_eq(kl_uuid_parse(dirid, m.directory_id), 0);
    return m;
}

/* Writes text as meta.properties and returns metaprops_read's code. */
static int read_text(const char *text, char *err)
{
    ck_assert_int_eq(fsutil_write_atomic(dir, METAPROPS_FILE, text, strlen(text)), 0);
    metaprops_t m;
    return metaprops_read(dir, &m, err, METAPROPS_ERR_LEN);
}

START_TEST(written_properties_read_back_in_a_new_subdirectory)
{
    char sub[256];
    snprintf(sub, sizeof sub, "%s/logs/meta", dir);
    metaprops_t in = sample(3), out;
    ck_assert_int_eq(metaprops_write(sub, &in), 0);
    char err[METAPROPS_ERR_LEN];
    ck_assert_int_eq(metaprops_read(sub, &out, err, sizeof err), 0);
    ck_assert_str_eq(out.cluster_id, cluster);
    ck_assert_int_eq(out.node_id, 3);
    ck_assert_mem_eq(out.directory_id, in.directory_id, KL_UUID_LEN);
    /* The file uses Kafka's key names. */
    char path[300];
    snprintf(path, sizeof path, "%s/%s", sub, METAPROPS_FILE);
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(fsutil_read_file(path, 4096, &data, &len), 0);
    ck_assert_ptr_nonnull(strstr((char *)data, "\nversion=1\n"));
    ck_assert_ptr_nonnull(strstr((char *)data, "\nnode.id=3\n"));
    ck_assert_ptr_nonnull(strstr((char *)data, "cluster.id="));
    ck_assert_ptr_nonnull(strstr((char *)data, "directory.id="));
    free(data);
}
END_TEST

START_TEST(the_start_up_check_names_each_mismatch)
{
    char err[METAPROPS_ERR_LEN];
    metaprops_t out;
    ck_assert_int_eq(metaprops_check(dir, cluster, 1, &out, err, sizeof err), KL_EUNFORMATTED);
    ck_assert_ptr_nonnull(strstr(err, "not formatted"));
    metaprops_t in = sample(1);
    ck_assert_int_eq(metaprops_write(dir, &in), 0);
    ck_assert_int_eq(metaprops_check(dir, cluster, 1, &out, err, sizeof err), 0);
    ck_assert_int_eq(out.node_id, 1);
    ck_assert_int_eq(metaprops_check(dir, NULL, 1, NULL, err, sizeof err), 0);
    ck_assert_int_eq(metaprops_check(dir, other, 1, &out, err, sizeof err), KL_ECLUSTERID);
    ck_assert_ptr_nonnull(strstr(err, cluster));
    ck_assert_ptr_nonnull(strstr(err, other));
    ck_assert_int_eq(metaprops_check(dir, cluster, 2, &out, err, sizeof err), KL_ENODEID);
    ck_assert_ptr_nonnull(strstr(err, "node.id 1"));
}
END_TEST

START_TEST(comments_blank_lines_and_spaces_are_accepted)
{
    char text[512], err[METAPROPS_ERR_LEN];
    snprintf(text, sizeof text,
             "#\n# a comment\n! another\n\n  version = 1\ncluster.id=%s\r\nnode.id=100\n"
             "directory.id=%s",
             cluster, dirid); /* no final newline either */
    ck_assert_int_eq(read_text(text, err), 0);
}
END_TEST

START_TEST(malformed_files_are_corrupt_with_a_reason)
{
    struct {
        const char *fmt; /* %1$s cluster, %2$s directory id */
        const char *reason;
    } cases[] = {
        {"version=1\ncluster.id=%1$s\nnode.id=1\ndirectory.id=%2$s\nextra=1\n", "unknown key"},
        {"version=1\ncluster.id=%1$s\nnode.id=1\nnode.id=2\ndirectory.id=%2$s\n", "duplicate key"},
        {"version=1\ncluster.id=%1$s\nnode.id=1\n", "missing directory.id"},
        {"version=2\ncluster.id=%1$s\nnode.id=1\ndirectory.id=%2$s\n", "version"},
        {"# %1$s\nversion=1\ncluster.id=not-a-uuid\nnode.id=1\ndirectory.id=%2$s\n", "cluster.id"},
        {"version=1\ncluster.id=%1$s\nnode.id=-1\ndirectory.id=%2$s\n", "node.id"},
        {"version=1\ncluster.id=%1$s\nnode.id=01\ndirectory.id=%2$s\n", "node.id"},
        {"version=1\ncluster.id=%1$s\nnode.id=9999999999\ndirectory.id=%2$s\n", "node.id"},
        {"version=1\ncluster.id=%1$s\nnode.id=1x\ndirectory.id=%2$s\n", "node.id"},
        {"version=1\ncluster.id=%1$s\nnode.id=1\ndirectory.id=AAAAAAAAAAAAAAAAAAAAAA\n",
         "directory.id"},
        {"version=1\ncluster.id=%1$s\nnode.id\ndirectory.id=%2$s\n", "key=value"},
        {"", "missing version"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512], err[METAPROPS_ERR_LEN] = "";
        snprintf(text, sizeof text, cases[i].fmt, cluster, dirid);
        ck_assert_msg(read_text(text, err) == KL_ECORRUPT, "case %zu", i);
        ck_assert_msg(strstr(err, cases[i].reason) != NULL, "case %zu: %s", i, err);
    }
}
END_TEST

START_TEST(invalid_properties_are_not_written)
{
    metaprops_t m = sample(1);
    strcpy(m.cluster_id, "short");
    ck_assert_int_eq(metaprops_write(dir, &m), KL_EINVAL);
    m = sample(-1);
    ck_assert_int_eq(metaprops_write(dir, &m), KL_EINVAL);
    m = sample(1);
    memset(m.directory_id, 0, KL_UUID_LEN);
    ck_assert_int_eq(metaprops_write(dir, &m), KL_EINVAL);
    char err[METAPROPS_ERR_LEN];
    ck_assert_int_eq(metaprops_read(dir, &m, err, sizeof err), KL_EUNFORMATTED);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage_metaprops");
    TCase *tc = tcase_create("metaprops");
    tcase_add_checked_fixture(tc, setup, kl_tmpdir_teardown);
    tcase_add_test(tc, written_properties_read_back_in_a_new_subdirectory);
    tcase_add_test(tc, the_start_up_check_names_each_mismatch);
    tcase_add_test(tc, comments_blank_lines_and_spaces_are_accepted);
    tcase_add_test(tc, malformed_files_are_corrupt_with_a_reason);
    tcase_add_test(tc, invalid_properties_are_not_written);
    suite_add_tcase(s, tc);
    return kl_tmpdir_run(s, "metaprops");
}
