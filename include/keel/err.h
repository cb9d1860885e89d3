/* err.h — the one error table: every Keel function returns 0 or a negative KL_E* code. */
#ifndef KEEL_ERR_H
#define KEEL_ERR_H

/* X(name, value, message). Values are stable: they travel in responses and
 * logs, so append new codes at the end and never renumber. */
#define KL_ERROR_TABLE(X)                                                        \
    X(KL_OK, 0, "success")                                                       \
    X(KL_ENOMEM, -1, "out of memory")                                            \
    X(KL_EINVAL, -2, "invalid argument")                                         \
    X(KL_EIO, -3, "I/O error")                                                   \
    X(KL_ECORRUPT, -4, "corrupt data (CRC or structure mismatch)")               \
    X(KL_ETOOBIG, -5, "size limit exceeded")                                     \
    X(KL_ENOENT, -6, "not found")                                                \
    X(KL_EEXIST, -7, "already exists")                                           \
    X(KL_ECONFIG, -8, "bad configuration")                                       \
    X(KL_EPROTO, -9, "malformed or unexpected message")                          \
    X(KL_ETIMEOUT, -10, "timed out")                                             \
    X(KL_ECLOSED, -11, "connection closed")                                      \
    X(KL_ENOTLEADER, -12, "not the leader")                                      \
    X(KL_EFENCED, -13, "fenced: stale epoch")                                    \
    X(KL_ECLUSTERID, -14, "cluster id mismatch")                                 \
    X(KL_EUNFORMATTED, -15, "log directory is not formatted")                    \
    X(KL_EAGAIN, -16, "try again: incomplete input or resource busy")            \
    X(KL_ETLS, -17, "TLS error")                                                 \
    X(KL_EUNSUPPORTED, -18, "unsupported API or version")                        \
    X(KL_ESTATE, -19, "operation not valid in the current state")                \
    X(KL_EFULL, -20, "queue or buffer full")                                     \
    X(KL_ERANGE, -21, "offset out of range")                                     \
    X(KL_ECONNECT, -22, "connection failed")                                     \
    X(KL_ENOSPACE, -23, "no space left on device")                               \
    X(KL_ESHUTDOWN, -24, "shutting down")                                        \
    X(KL_ENODEID, -25, "node id mismatch")                                       \
    X(KL_EUNKNOWNAPI, -26, "unknown API")                                        \
    X(KL_ENOTCONTROLLER, -27, "not the active controller")                       \
    X(KL_ENOTENOUGHREPLICAS, -28, "not enough in-sync replicas")                 \
    X(KL_EUNKNOWNPARTITION, -29, "unknown topic or partition")                   \
    X(KL_EDUPLICATE, -30, "duplicate sequence number")                           \
    X(KL_ESEQUENCE, -31, "out-of-order sequence number")                         \
    X(KL_EUNKNOWNEPOCH, -32, "unknown leader epoch")                               \
    X(KL_ENOTAVAILABLE, -33, "not available yet: catching up (a new leader's high watermark, a starting broker's metadata)")

enum kl_err {
#define KL_ERR_ENUM(name, value, msg) name = (value),
    KL_ERROR_TABLE(KL_ERR_ENUM)
#undef KL_ERR_ENUM
};

/* Message for a code; unknown codes give "unknown error" (never NULL). */
const char *kl_strerror(int err);
/* Symbolic name ("KL_ENOTLEADER") for logs and --json output. */
const char *kl_errname(int err);

/* Invariant check that stays on in release builds (NDEBUG does not remove it):
 * a failure is a bug, so we print where and abort. */
#define KL_ASSERT(cond)                                                          \
    do {                                                                         \
        if (!(cond)) kl_assert_fail(#cond, __FILE__, __LINE__);                  \
    } while (0)
_Noreturn void kl_assert_fail(const char *expr, const char *file, int line);

#endif
