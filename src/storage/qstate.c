/* qstate.c — reads and writes the quorum-state file, refusing anything it did not write itself.
 *
 * Format (text, exactly these lines in this order, "\n" line ends):
 *   # keel quorum-state (do not edit: a CRC protects it)
 *   version=1
 *   epoch=<int32 >= 0>
 *   voted.id=<int32 >= -1>
 *   leader.id=<int32 >= -1>
 *   crc32c=<8 lowercase hex digits: CRC-32C of every byte before this line>
 * Reading parses the values and then requires the file to equal, byte for
 * byte, what qstate_write would write for them: no extra keys, spaces or
 * leading zeros slip through. */
#include "keel/qstate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/crc32c.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"

#define QSTATE_VERSION 1

static int qstate_format(const raft_hard_state_t *hs, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "# keel quorum-state (do not edit: a CRC protects it)\n"
                     "version=%d\nepoch=%d\nvoted.id=%d\nleader.id=%d\n",
                     QSTATE_VERSION, (int)hs->epoch, (int)hs->voted_for, (int)hs->leader_id);
    KL_ASSERT(n > 0 && (size_t)n < cap);
    uint32_t crc = kl_crc32c(0, out, (size_t)n);
    int m = snprintf(out + n, cap - (size_t)n, "crc32c=%08x\n", crc);
    KL_ASSERT(m > 0 && (size_t)(n + m) < cap);
    return n + m;
}

static bool qstate_valid(const raft_hard_state_t *hs)
{
    return hs->epoch >= 0 && hs->voted_for >= -1 && hs->leader_id >= -1;
}

int qstate_write(const char *dir, const raft_hard_state_t *hs)
{
    if (!qstate_valid(hs)) return KL_EINVAL;
    char text[QSTATE_MAX_BYTES];
    int n = qstate_format(hs, text, sizeof text);
    return fsutil_write_atomic(dir, QSTATE_FILE, text, (size_t)n);
}

/* Value of "\n<key>=" as an int32; false if missing or not a number. */
static bool find_int(const char *text, const char *key, int32_t *v)
{
    char pat[32];
    snprintf(pat, sizeof pat, "\n%s=", key);
    const char *p = strstr(text, pat);
    if (!p) return false;
    p += strlen(pat);
    char *end;
    errno = 0;
    long long x = strtoll(p, &end, 10);
    if (errno || end == p || *end != '\n' || x < INT32_MIN || x > INT32_MAX) return false;
    *v = (int32_t)x;
    return true;
}

int qstate_read(const char *dir, raft_hard_state_t *hs)
{
    char path[FSUTIL_PATH_MAX];
    int rc = fsutil_join(path, sizeof path, dir, QSTATE_FILE);
    if (rc < 0) return rc;
    uint8_t *data;
    size_t len;
    rc = fsutil_read_file(path, QSTATE_MAX_BYTES, &data, &len);
    if (rc == KL_ETOOBIG) rc = KL_ECORRUPT;
    if (rc < 0) {
        if (rc == KL_ECORRUPT)
            KL_ERROR("storage", "%s: larger than any quorum-state Keel writes", path);
        return rc;
    }
    const char *text = (const char *)data; /* NUL-terminated by fsutil_read_file */
    const char *why = NULL;
    raft_hard_state_t st;
    int32_t version;
    char want[QSTATE_MAX_BYTES];
    if (memchr(data, '\0', len))
        why = "contains NUL bytes";
    else if (!find_int(text, "version", &version) || version != QSTATE_VERSION)
        why = "missing or unknown version";
    else if (!find_int(text, "epoch", &st.epoch) || !find_int(text, "voted.id", &st.voted_for) ||
             !find_int(text, "leader.id", &st.leader_id) || !qstate_valid(&st))
        why = "missing or invalid epoch, voted.id or leader.id";
    else {
        int n = qstate_format(&st, want, sizeof want);
        const char *crc_line = strstr(want, "crc32c=");
        size_t body = (size_t)(crc_line - want);
        if (len < body || memcmp(text, want, body) != 0)
            why = "unexpected content (not written by Keel?)";
        else if ((size_t)n != len || memcmp(text, want, len) != 0)
            why = "CRC mismatch (torn or edited file)";
    }
    free(data);
    if (why) {
        KL_ERROR("storage",
                 "%s is corrupt: %s (not using it: a forgotten vote could be cast twice)", path,
                 why);
        return KL_ECORRUPT;
    }
    *hs = st;
    return 0;
}
