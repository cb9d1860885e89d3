/* test_common_log.c — log line format, level filtering, node tag, truncation and safety. */
#include <check.h>
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "keel/err.h"
#include "keel/log.h"
#include "unit/kl_check.h"

static int pipe_fds[2];
static int saved_stderr;
static char out[4 * KL_LOG_LINE_MAX];

/* Sends stderr into a pipe; every test writes far less than a pipe holds. */
static void setup(void)
{
    ck_assert_int_eq(pipe(pipe_fds), 0);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_eq(dup2(pipe_fds[1], STDERR_FILENO), STDERR_FILENO);
    close(pipe_fds[1]);
    kl_log_set_level(KL_LOG_INFO);
    kl_log_set_node(-1);
}

static void teardown(void)
{
    close(pipe_fds[0]);
}

/* Restores stderr and returns everything logged since setup. */
static const char *captured(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    size_t len = 0;
    ssize_t got;
    while (len < sizeof out - 1 && (got = read(pipe_fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    return out;
}

static int matches(const char *s, const char *pattern)
{
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    int ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

#define TS "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z"

START_TEST(line_has_utc_time_level_module_and_text)
{
    /* The log reads CLOCK_REALTIME; time() may use the coarse clock, which
     * lags it by up to a tick, so read the same clock here. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t before = ts.tv_sec;
    kl_log_write(KL_LOG_INFO, "raft", "elected in term %d", 42);
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t after = ts.tv_sec;
    const char *s = captured();
    ck_assert_msg(matches(s, "^" TS " INFO  raft: elected in term 42\n$"), "got '%s'", s);
    struct tm tm = {0};
    ck_assert_ptr_nonnull(strptime(s, "%Y-%m-%dT%H:%M:%S", &tm));
    time_t t = timegm(&tm);
    ck_assert_int_ge(t, before);
    ck_assert_int_le(t, after);
}
END_TEST

START_TEST(node_tag_appears_once_set_and_goes_away_with_minus_one)
{
    kl_log_set_node(1);
    KL_WARN("net", "a");
    kl_log_set_node(-1);
    KL_ERROR("net", "b");
    const char *s = captured();
    ck_assert_msg(matches(s, "^" TS " WARN  \\[node 1\\] net: a\n" TS " ERROR net: b\n$"),
                  "got '%s'", s);
}
END_TEST

START_TEST(messages_below_the_level_are_dropped)
{
    KL_DEBUG("m", "hidden");
    kl_log_set_level(KL_LOG_ERROR);
    KL_INFO("m", "hidden");
    KL_WARN("m", "hidden");
    KL_ERROR("m", "shown1");
    kl_log_set_level(KL_LOG_DEBUG);
    KL_DEBUG("m", "shown2");
    kl_log_set_level(KL_LOG_OFF);
    KL_ERROR("m", "hidden");
    kl_log_write(KL_LOG_OFF, "m", "hidden");
    ck_assert_int_eq(kl_log_get_level(), KL_LOG_OFF);
    const char *s = captured();
    ck_assert_msg(matches(s, "^" TS " ERROR m: shown1\n" TS " DEBUG m: shown2\n$"), "got '%s'", s);
}
END_TEST

START_TEST(null_module_prints_a_dash)
{
    kl_log_write(KL_LOG_INFO, NULL, "x");
    const char *s = captured();
    ck_assert_msg(matches(s, "^" TS " INFO  -: x\n$"), "got '%s'", s);
}
END_TEST

START_TEST(long_lines_are_cut_at_4k_and_end_with_dots)
{
    char *big = malloc(3 * KL_LOG_LINE_MAX);
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', 3 * KL_LOG_LINE_MAX - 1);
    big[3 * KL_LOG_LINE_MAX - 1] = '\0';
    KL_INFO("m", "%s", big);
    KL_INFO("m", "next");
    free(big);
    const char *s = captured();
    const char *nl = strchr(s, '\n');
    ck_assert_ptr_nonnull(nl);
    ck_assert_int_eq(nl - s + 1, KL_LOG_LINE_MAX);
    ck_assert_int_eq(strncmp(nl - 4, "a...", 4), 0);
    ck_assert_msg(matches(nl + 1, "^" TS " INFO  m: next\n$"), "got '%s'", nl + 1);
}
END_TEST

START_TEST(embedded_newlines_cannot_forge_extra_lines)
{
    KL_INFO("m", "one\ntwo\r\n");
    const char *s = captured();
    ck_assert_msg(matches(s, "^" TS " INFO  m: one two\n$"), "got '%s'", s);
}
END_TEST

START_TEST(logging_preserves_errno)
{
    errno = ENOSPC;
    KL_ERROR("m", "disk");
    ck_assert_int_eq(errno, ENOSPC);
    captured();
}
END_TEST

START_TEST(parse_level_is_case_insensitive_and_strict)
{
    kl_log_level_t l;
    ck_assert_int_eq(kl_log_parse_level("debug", &l), 0);
    ck_assert_int_eq(l, KL_LOG_DEBUG);
    ck_assert_int_eq(kl_log_parse_level("INFO", &l), 0);
    ck_assert_int_eq(l, KL_LOG_INFO);
    ck_assert_int_eq(kl_log_parse_level("Warn", &l), 0);
    ck_assert_int_eq(l, KL_LOG_WARN);
    ck_assert_int_eq(kl_log_parse_level("error", &l), 0);
    ck_assert_int_eq(l, KL_LOG_ERROR);
    ck_assert_int_eq(kl_log_parse_level("off", &l), 0);
    ck_assert_int_eq(l, KL_LOG_OFF);
    l = KL_LOG_WARN;
    ck_assert_int_eq(kl_log_parse_level("warning", &l), KL_EINVAL);
    ck_assert_int_eq(kl_log_parse_level("", &l), KL_EINVAL);
    ck_assert_int_eq(kl_log_parse_level(" info", &l), KL_EINVAL);
    ck_assert_int_eq(kl_log_parse_level(NULL, &l), KL_EINVAL);
    ck_assert_int_eq(l, KL_LOG_WARN);
    captured();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_log");
    TCase *tc = tcase_create("log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, line_has_utc_time_level_module_and_text);
    tcase_add_test(tc, node_tag_appears_once_set_and_goes_away_with_minus_one);
    tcase_add_test(tc, messages_below_the_level_are_dropped);
    tcase_add_test(tc, null_module_prints_a_dash);
    tcase_add_test(tc, long_lines_are_cut_at_4k_and_end_with_dots);
    tcase_add_test(tc, embedded_newlines_cannot_forge_extra_lines);
    tcase_add_test(tc, logging_preserves_errno);
    tcase_add_test(tc, parse_level_is_case_insensitive_and_strict);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
