/* test_common_err.c — the error table: names, messages, unknown codes, and KL_ASSERT. */
#include <check.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "keel/err.h"
#include "unit/kl_check.h"

START_TEST(every_code_has_a_message_and_its_own_name)
{
    int n = 0;
#define CHECK_CODE(name, value, msg)                                    \
    ck_assert_str_eq(kl_strerror(value), msg);                          \
    ck_assert_str_ne(kl_strerror(value), "unknown error");              \
    ck_assert_uint_gt(strlen(kl_strerror(value)), 0);                   \
    ck_assert_str_eq(kl_errname(value), #name);                         \
    ck_assert_int_le(value, 0);                                         \
    n++;
    KL_ERROR_TABLE(CHECK_CODE)
#undef CHECK_CODE
    ck_assert_int_gt(n, 1);
    ck_assert_str_eq(kl_errname(KL_ENOTLEADER), "KL_ENOTLEADER");
    ck_assert_str_eq(kl_strerror(KL_OK), "success");
}
END_TEST

START_TEST(codes_are_distinct)
{
    static const int codes[] = {
#define LIST_CODE(name, value, msg) value,
        KL_ERROR_TABLE(LIST_CODE)
#undef LIST_CODE
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) ck_assert_int_ne(codes[i], codes[j]);
}
END_TEST

START_TEST(unknown_code_gives_unknown_error_never_null)
{
    const int unknown[] = {1, 42, -34, -1000, 0x7fffffff, -0x7fffffff - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ck_assert_str_eq(kl_strerror(unknown[i]), "unknown error");
        ck_assert_str_eq(kl_errname(unknown[i]), "KL_EUNKNOWN");
    }
}
END_TEST

START_TEST(assert_failure_prints_expression_and_location_then_aborts)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        dup2(fds[1], STDERR_FILENO);
        close(fds[0]);
        int answer = 41;
        KL_ASSERT(answer == 42);
        _exit(0); /* not reached when the assertion works */
    }
    close(fds[1]);
    char out[512];
    size_t len = 0;
    ssize_t got;
    while (len < sizeof out - 1 && (got = read(fds[0], out + len, sizeof out - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status));
    ck_assert_int_eq(WTERMSIG(status), SIGABRT);
    ck_assert_ptr_nonnull(strstr(out, "keel: assertion failed: answer == 42 (" __FILE__ ":"));
}
END_TEST

START_TEST(assert_that_holds_does_nothing)
{
    int x = 1;
    KL_ASSERT(x == 1);
    ck_assert_int_eq(x, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_err");
    TCase *tc = tcase_create("err");
    tcase_add_test(tc, every_code_has_a_message_and_its_own_name);
    tcase_add_test(tc, codes_are_distinct);
    tcase_add_test(tc, unknown_code_gives_unknown_error_never_null);
    tcase_add_test(tc, assert_failure_prints_expression_and_location_then_aborts);
    tcase_add_test(tc, assert_that_holds_does_nothing);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
