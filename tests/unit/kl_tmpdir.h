/* kl_tmpdir.h — storage tests' fixture: one temp root per binary, a fresh `dir` below it per test, all removed at the end. */
#ifndef KEEL_TEST_KL_TMPDIR_H
#define KEEL_TEST_KL_TMPDIR_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/fsutil.h"
#include "keel/log.h"
#include "unit/kl_check.h"

static char root[64]; /* /tmp/keel-<name>-XXXXXX, made by kl_tmpdir_run */
static char dir[128]; /* this test's own directory below root */

static inline void kl_tmpdir_setup(void)
{
    kl_log_set_level(KL_LOG_OFF); /* expected errors would flood the output */
    snprintf(dir, sizeof dir, "%s/XXXXXX", root);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static inline void kl_tmpdir_teardown(void) { ck_assert_int_eq(fsutil_rm_rf(dir), 0); }

/* Makes the root, runs s (whose test cases use kl_tmpdir_setup/teardown as a checked
 * fixture, or call them from their own), removes the root even when tests failed; 0 when all passed. */
static inline int kl_tmpdir_run(Suite *s, const char *name)
{
    snprintf(root, sizeof root, "/tmp/keel-%s-XXXXXX", name);
    if (!mkdtemp(root)) return 1;
    int rc = kl_check_run(s);
    if (fsutil_rm_rf(root) < 0) rc = 1;
    return rc;
}

#endif
