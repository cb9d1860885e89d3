/* test_common_config.c — .properties parsing against a schema: syntax, types, every error
 * message with its file:line, defaults, overrides and required keys. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/config.h"
#include "keel/err.h"
#include "unit/kl_check.h"

static const kl_config_key_t schema[] = {
    {"node.id", KL_CFG_INT, NULL, true, 0, 1000, "this node's id"},
    {"log.dirs", KL_CFG_LIST, NULL, false, 0, 0, "data directories"},
    {"listeners", KL_CFG_LIST, "PLAINTEXT://:9092", false, 0, 0, "listeners"},
    {"name", KL_CFG_STRING, NULL, false, 0, 0, "a free-form string"},
    {"timeout.ms", KL_CFG_INT, "1000", false, 10, 600000, "a bounded int"},
    {"offset", KL_CFG_INT, "0", false, INT64_MIN, INT64_MAX, "any int64"},
    {"delta", KL_CFG_INT, "-5", false, -10, 10, "a signed int"},
    {"flag", KL_CFG_BOOL, "false", false, 0, 0, "a boolean"},
    {NULL, 0, NULL, false, 0, 0, NULL},
};

static char tmpdir[64];
static char path[128];
static char err[KL_CONFIG_ERR_LEN];
static char want[KL_CONFIG_ERR_LEN + 256];
static kl_config_t *cfg;

/* The temp dir is made and removed in the runner process (unchecked fixture),
 * so it goes away even when a forked test fails or aborts. */
static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/keel-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) abort();
    snprintf(path, sizeof path, "%s/server.properties", tmpdir);
}

static void remove_tmpdir(void)
{
    unlink(path);
    rmdir(tmpdir);
}

static void new_config(void)
{
    unlink(path); /* each test starts without a file */
    cfg = kl_config_new(schema);
    ck_assert_ptr_nonnull(cfg);
    err[0] = '\0';
}

static void free_config(void)
{
    kl_config_free(cfg);
}

static void write_file(const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static int load(const char *text)
{
    write_file(text, strlen(text));
    return kl_config_load_file(cfg, path, err, sizeof err);
}

/* Loads text and expects KL_ECONFIG with "path:line: reason". */
static void expect_line_error(const char *text, int line, const char *reason)
{
    ck_assert_int_eq(load(text), KL_ECONFIG);
    snprintf(want, sizeof want, "%s:%d: %s", path, line, reason);
    ck_assert_str_eq(err, want);
}

START_TEST(parses_equals_and_colon_separators_and_trims_whitespace)
{
    ck_assert_int_eq(load("node.id=3\n"
                          "  name :  hello world  \n"
                          "\tlog.dirs\t=\t/a, /b\t\n"
                          "listeners:PLAINTEXT://h:1=x\n"),
                     0);
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 3);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "hello world");
    ck_assert_str_eq(kl_config_str(cfg, "log.dirs"), "/a, /b");
    /* Only the first separator splits; the rest belongs to the value. */
    ck_assert_str_eq(kl_config_str(cfg, "listeners"), "PLAINTEXT://h:1=x");
    ck_assert_str_eq(kl_config_str(cfg, "node.id"), "3");
}
END_TEST

START_TEST(skips_hash_and_bang_comments_and_blank_lines)
{
    ck_assert_int_eq(load("# a comment\n"
                          "! another comment\n"
                          "\n"
                          "   \t \n"
                          "   # indented comment with node.id=9\n"
                          "node.id=4\n"
                          "name=a # not a comment\n"),
                     0);
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 4);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "a # not a comment");
}
END_TEST

START_TEST(empty_input_sets_nothing)
{
    ck_assert_int_eq(load(""), 0);
    ck_assert(!kl_config_is_set(cfg, "node.id"));
}
END_TEST

START_TEST(backslash_newline_continues_the_value)
{
    ck_assert_int_eq(load("log.dirs=/data/a,\\\n"
                          "         /data/b,\\\n"
                          "\t/data/c\n"
                          "node.id=1\n"),
                     0);
    ck_assert_str_eq(kl_config_str(cfg, "log.dirs"), "/data/a,/data/b,/data/c");
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 1);
}
END_TEST

START_TEST(continued_key_and_last_line_backslash_are_handled)
{
    ck_assert_int_eq(load("node.\\\n  id = 2\nname=end\\"), 0);
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 2);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "end");
}
END_TEST

START_TEST(even_backslashes_do_not_continue_and_comments_never_continue)
{
    ck_assert_int_eq(load("# comment ending in a backslash \\\n"
                          "name=C:\\\\\n"
                          "node.id=5\n"),
                     0);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "C:\\\\");
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 5);
}
END_TEST

START_TEST(crlf_line_endings_are_accepted)
{
    ck_assert_int_eq(load("node.id=6\r\nname=x\r\nlog.dirs=/a,\\\r\n /b\r\n"), 0);
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 6);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "x");
    ck_assert_str_eq(kl_config_str(cfg, "log.dirs"), "/a,/b");
}
END_TEST

START_TEST(errors_after_a_continuation_name_the_physical_line)
{
    expect_line_error("name=a\\\n  b\\\n  c\nbogus=1\n", 4, "unknown key 'bogus'");
}
END_TEST

START_TEST(errors_in_a_continued_entry_name_its_first_line)
{
    expect_line_error("\n\nnode.id=1\\\n2x\n", 3, "'node.id' must be an integer, got '12x'");
}
END_TEST

START_TEST(defaults_apply_when_a_key_is_unset)
{
    ck_assert_int_eq(load("node.id=1\n"), 0);
    ck_assert_int_eq(kl_config_int(cfg, "timeout.ms"), 1000);
    ck_assert_int_eq(kl_config_int(cfg, "delta"), -5);
    ck_assert(!kl_config_bool(cfg, "flag"));
    ck_assert_str_eq(kl_config_str(cfg, "listeners"), "PLAINTEXT://:9092");
    ck_assert(!kl_config_is_set(cfg, "timeout.ms"));
    ck_assert(kl_config_is_set(cfg, "node.id"));
    ck_assert_ptr_null(kl_config_str(cfg, "name"));
}
END_TEST

START_TEST(empty_string_values_are_kept)
{
    ck_assert_int_eq(load("name=\nlog.dirs =   \n"), 0);
    ck_assert(kl_config_is_set(cfg, "name"));
    ck_assert_str_eq(kl_config_str(cfg, "name"), "");
    ck_assert_str_eq(kl_config_str(cfg, "log.dirs"), "");
}
END_TEST

START_TEST(unknown_key_is_rejected_with_file_and_line)
{
    expect_line_error("node.id=1\n\nfoo.bar=2\n", 3, "unknown key 'foo.bar'");
}
END_TEST

START_TEST(keys_are_case_sensitive)
{
    expect_line_error("Node.Id=1\n", 1, "unknown key 'Node.Id'");
}
END_TEST

START_TEST(duplicate_key_names_the_first_line)
{
    expect_line_error("node.id=1\n# again\nname=x\nnode.id=2\n", 4,
                      "duplicate key 'node.id' (first set on line 1)");
}
END_TEST

START_TEST(non_integer_values_are_rejected)
{
    static const char *const bad[] = {"abc", "12abc", "1.5", "", "0x10", "- 1", "+", "-", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[64], reason[128];
        snprintf(text, sizeof text, "\nnode.id=%s\n", bad[i]);
        snprintf(reason, sizeof reason, "'node.id' must be an integer, got '%s'", bad[i]);
        expect_line_error(text, 2, reason);
    }
}
END_TEST

START_TEST(integers_accept_signs_and_int64_extremes)
{
    ck_assert_int_eq(load("node.id=+7\ndelta=-10\noffset=-9223372036854775808\n"), 0);
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 7);
    ck_assert_int_eq(kl_config_int(cfg, "delta"), -10);
    ck_assert(kl_config_int(cfg, "offset") == INT64_MIN);
    ck_assert_int_eq(kl_config_set(cfg, "offset=9223372036854775807", err, sizeof err), 0);
    ck_assert(kl_config_int(cfg, "offset") == INT64_MAX);
}
END_TEST

START_TEST(integers_outside_the_bounds_are_rejected)
{
    expect_line_error("timeout.ms=9\n", 1, "'timeout.ms' must be between 10 and 600000, got 9");
    expect_line_error("timeout.ms=600001\n", 1,
                      "'timeout.ms' must be between 10 and 600000, got 600001");
    expect_line_error("delta=-11\n", 1, "'delta' must be between -10 and 10, got -11");
}
END_TEST

START_TEST(integer_overflow_is_detected)
{
    expect_line_error("offset=9223372036854775808\n", 1,
                      "'offset' must be between -9223372036854775808 and 9223372036854775807, "
                      "got 9223372036854775808");
    expect_line_error("offset=-9223372036854775809\n", 1,
                      "'offset' must be between -9223372036854775808 and 9223372036854775807, "
                      "got -9223372036854775809");
    expect_line_error("node.id=99999999999999999999999\n", 1,
                      "'node.id' must be between 0 and 1000, got 99999999999999999999999");
}
END_TEST

START_TEST(booleans_are_true_or_false)
{
    ck_assert_int_eq(load("flag=true\n"), 0);
    ck_assert(kl_config_bool(cfg, "flag"));
    ck_assert_int_eq(kl_config_set(cfg, "flag=FALSE", err, sizeof err), 0);
    ck_assert(!kl_config_bool(cfg, "flag"));
    expect_line_error("flag=yes\n", 1, "'flag' must be true or false");
    expect_line_error("flag=\n", 1, "'flag' must be true or false");
    expect_line_error("flag=1\n", 1, "'flag' must be true or false");
}
END_TEST

START_TEST(a_line_without_separator_is_rejected)
{
    expect_line_error("node.id=1\nname hello\n", 2, "missing '=' or ':' after key");
    expect_line_error("node.id\n", 1, "missing '=' or ':' after key");
}
END_TEST

START_TEST(a_separator_without_key_is_rejected)
{
    expect_line_error("  = 5\n", 1, "missing key before '='");
    expect_line_error(":5\n", 1, "missing key before ':'");
}
END_TEST

START_TEST(a_nul_byte_is_rejected)
{
    write_file("node.id=1\nna\0me=x\n", 18);
    ck_assert_int_eq(kl_config_load_file(cfg, path, err, sizeof err), KL_ECONFIG);
    snprintf(want, sizeof want, "%s:2: contains a NUL byte", path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(missing_file_reports_cannot_read)
{
    ck_assert_int_eq(kl_config_load_file(cfg, path, err, sizeof err), KL_ECONFIG);
    snprintf(want, sizeof want, "%s: cannot read: %s", path, strerror(ENOENT));
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(a_directory_reports_cannot_read)
{
    ck_assert_int_eq(kl_config_load_file(cfg, tmpdir, err, sizeof err), KL_ECONFIG);
    snprintf(want, sizeof want, "%s: cannot read: %s", tmpdir, strerror(EISDIR));
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(files_up_to_the_limit_load_and_larger_ones_are_too_big)
{
    size_t n = KL_CONFIG_MAX_FILE_BYTES;
    char *text = malloc(n + 2);
    ck_assert_ptr_nonnull(text);
    memset(text, '#', n + 1);
    text[n - 1] = '\n';
    text[n + 1] = '\0';
    write_file(text, n);
    ck_assert_int_eq(kl_config_load_file(cfg, path, err, sizeof err), 0);
    write_file(text, n + 1);
    ck_assert_int_eq(kl_config_load_file(cfg, path, err, sizeof err), KL_ETOOBIG);
    snprintf(want, sizeof want, "%s: larger than %u bytes", path, KL_CONFIG_MAX_FILE_BYTES);
    ck_assert_str_eq(err, want);
    ck_assert_int_eq(kl_config_load_string(cfg, "big", text, err, sizeof err), KL_ETOOBIG);
    ck_assert_str_eq(err, "big: larger than 1048576 bytes");
    free(text);
}
END_TEST

START_TEST(a_rejected_file_leaves_the_config_unchanged)
{
    ck_assert_int_eq(load("node.id=1\nname=first\n"), 0);
    ck_assert_int_eq(load("name=second\ntimeout.ms=50\nbogus=1\n"), KL_ECONFIG);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "first");
    ck_assert_int_eq(kl_config_int(cfg, "timeout.ms"), 1000);
    ck_assert(!kl_config_is_set(cfg, "timeout.ms"));
}
END_TEST

START_TEST(load_string_uses_its_name_in_messages)
{
    ck_assert_int_eq(kl_config_load_string(cfg, "inline", "node.id=2\nname=s\n", err, sizeof err),
                     0);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "s");
    ck_assert_int_eq(kl_config_load_string(cfg, "inline", "\n\nx=1", err, sizeof err), KL_ECONFIG);
    ck_assert_str_eq(err, "inline:3: unknown key 'x'");
}
END_TEST

START_TEST(overrides_win_over_the_file)
{
    ck_assert_int_eq(load("node.id=1\nname=file\n"), 0);
    ck_assert_int_eq(kl_config_set(cfg, "name=override", err, sizeof err), 0);
    ck_assert_int_eq(kl_config_set(cfg, " node.id = 9 ", err, sizeof err), 0);
    ck_assert_int_eq(kl_config_set(cfg, "timeout.ms:20", err, sizeof err), 0);
    ck_assert_str_eq(kl_config_str(cfg, "name"), "override");
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 9);
    ck_assert_int_eq(kl_config_int(cfg, "timeout.ms"), 20);
    ck_assert(kl_config_is_set(cfg, "timeout.ms"));
    /* A later override of the same key wins too. */
    ck_assert_int_eq(kl_config_set(cfg, "node.id=10", err, sizeof err), 0);
    ck_assert_int_eq(kl_config_int(cfg, "node.id"), 10);
}
END_TEST

START_TEST(override_errors_are_named_override)
{
    ck_assert_int_eq(kl_config_set(cfg, "foo.bar=1", err, sizeof err), KL_ECONFIG);
    ck_assert_str_eq(err, "--override: unknown key 'foo.bar'");
    ck_assert_int_eq(kl_config_set(cfg, "node.id=abc", err, sizeof err), KL_ECONFIG);
    ck_assert_str_eq(err, "--override: 'node.id' must be an integer, got 'abc'");
    ck_assert_int_eq(kl_config_set(cfg, "node.id", err, sizeof err), KL_ECONFIG);
    ck_assert_str_eq(err, "--override: missing '=' or ':' after key");
    ck_assert_int_eq(kl_config_set(cfg, "timeout.ms=1", err, sizeof err), KL_ECONFIG);
    ck_assert_str_eq(err, "--override: 'timeout.ms' must be between 10 and 600000, got 1");
    ck_assert(!kl_config_is_set(cfg, "node.id"));
}
END_TEST

START_TEST(validate_reports_a_missing_required_key)
{
    ck_assert_int_eq(load("name=x\n"), 0);
    ck_assert_int_eq(kl_config_validate(cfg, err, sizeof err), KL_ECONFIG);
    ck_assert_str_eq(err, "missing required key 'node.id'");
}
END_TEST

START_TEST(validate_accepts_a_required_key_set_by_override)
{
    ck_assert_int_eq(load("name=x\n"), 0);
    ck_assert_int_eq(kl_config_set(cfg, "node.id=3", err, sizeof err), 0);
    ck_assert_int_eq(kl_config_validate(cfg, err, sizeof err), 0);
}
END_TEST

START_TEST(a_small_error_buffer_is_truncated_safely)
{
    char tiny[8];
    ck_assert_int_eq(kl_config_set(cfg, "foo=1", tiny, sizeof tiny), KL_ECONFIG);
    ck_assert_str_eq(tiny, "--overr");
    ck_assert_int_eq(kl_config_set(cfg, "foo=1", NULL, 0), KL_ECONFIG);
}
END_TEST

/* The abort tests have no temp-dir fixture: an aborted test never runs its teardown. */
START_TEST(reading_a_key_outside_the_schema_aborts)
{
    kl_config_t *c = kl_config_new(schema);
    ck_assert_ptr_nonnull(c);
    kl_config_str(c, "no.such.key");
}
END_TEST

START_TEST(reading_an_int_key_as_bool_aborts)
{
    kl_config_t *c = kl_config_new(schema);
    ck_assert_ptr_nonnull(c);
    kl_config_bool(c, "timeout.ms");
}
END_TEST

START_TEST(reading_an_unset_int_without_default_aborts)
{
    kl_config_t *c = kl_config_new(schema);
    ck_assert_ptr_nonnull(c);
    kl_config_int(c, "node.id");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_config");
    TCase *tc = tcase_create("config");
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_checked_fixture(tc, new_config, free_config);
    tcase_add_test(tc, parses_equals_and_colon_separators_and_trims_whitespace);
    tcase_add_test(tc, skips_hash_and_bang_comments_and_blank_lines);
    tcase_add_test(tc, empty_input_sets_nothing);
    tcase_add_test(tc, backslash_newline_continues_the_value);
    tcase_add_test(tc, continued_key_and_last_line_backslash_are_handled);
    tcase_add_test(tc, even_backslashes_do_not_continue_and_comments_never_continue);
    tcase_add_test(tc, crlf_line_endings_are_accepted);
    tcase_add_test(tc, errors_after_a_continuation_name_the_physical_line);
    tcase_add_test(tc, errors_in_a_continued_entry_name_its_first_line);
    tcase_add_test(tc, defaults_apply_when_a_key_is_unset);
    tcase_add_test(tc, empty_string_values_are_kept);
    tcase_add_test(tc, unknown_key_is_rejected_with_file_and_line);
    tcase_add_test(tc, keys_are_case_sensitive);
    tcase_add_test(tc, duplicate_key_names_the_first_line);
    tcase_add_test(tc, non_integer_values_are_rejected);
    tcase_add_test(tc, integers_accept_signs_and_int64_extremes);
    tcase_add_test(tc, integers_outside_the_bounds_are_rejected);
    tcase_add_test(tc, integer_overflow_is_detected);
    tcase_add_test(tc, booleans_are_true_or_false);
    tcase_add_test(tc, a_line_without_separator_is_rejected);
    tcase_add_test(tc, a_separator_without_key_is_rejected);
    tcase_add_test(tc, a_nul_byte_is_rejected);
    tcase_add_test(tc, missing_file_reports_cannot_read);
    tcase_add_test(tc, a_directory_reports_cannot_read);
    tcase_add_test(tc, files_up_to_the_limit_load_and_larger_ones_are_too_big);
    tcase_add_test(tc, a_rejected_file_leaves_the_config_unchanged);
    tcase_add_test(tc, load_string_uses_its_name_in_messages);
    tcase_add_test(tc, overrides_win_over_the_file);
    tcase_add_test(tc, override_errors_are_named_override);
    tcase_add_test(tc, validate_reports_a_missing_required_key);
    tcase_add_test(tc, validate_accepts_a_required_key_set_by_override);
    tcase_add_test(tc, a_small_error_buffer_is_truncated_safely);
    suite_add_tcase(s, tc);
    TCase *bugs = tcase_create("misuse");
    tcase_add_test_raise_signal(bugs, reading_a_key_outside_the_schema_aborts, SIGABRT);
    tcase_add_test_raise_signal(bugs, reading_an_int_key_as_bool_aborts, SIGABRT);
    tcase_add_test_raise_signal(bugs, reading_an_unset_int_without_default_aborts, SIGABRT);
    suite_add_tcase(s, bugs);
    return kl_check_run(s);
}
