/* err.c — messages and names for the KL_E* error table, and the always-on assertion. */
#include "keel/err.h"

#include <stdio.h>
#include <stdlib.h>

const char *kl_strerror(int err)
{
    switch (err) {
#define KL_ERR_MSG(name, value, msg) \
    case value: return msg;
        KL_ERROR_TABLE(KL_ERR_MSG)
#undef KL_ERR_MSG
    }
    return "unknown error";
}

const char *kl_errname(int err)
{
    switch (err) {
#define KL_ERR_NAME(name, value, msg) \
    case value: return #name;
        KL_ERROR_TABLE(KL_ERR_NAME)
#undef KL_ERR_NAME
    }
    return "KL_EUNKNOWN";
}

_Noreturn void kl_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "keel: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}
