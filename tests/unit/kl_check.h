/* kl_check.h — the one way a unit test binary runs its Check suite and turns the result into an exit status. */
#ifndef KEEL_TEST_KL_CHECK_H
#define KEEL_TEST_KL_CHECK_H

#include <check.h>

/* Runs s (and frees it); 0 when every test passed, else 1. */
static inline int kl_check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

#endif
