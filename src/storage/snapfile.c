/* snapfile.c — snapshot files: atomic writes, CRC-checked reads, newest-valid selection and cleanup. */
#include "keel/snapfile.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/buf.h"
#include "keel/crc32c.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"

#define SNAPFILE_MAGIC 0x4b534e50u /* "KSNP" */
#define SNAPFILE_VERSION 1

void snapfile_name(raft_snapshot_id_t id, char *out)
{
    snprintf(out, SNAPFILE_NAME_LEN + 1, "%020" PRId64 "-%010" PRId32 SNAPFILE_SUFFIX,
             id.end_offset, id.last_epoch);
}

/* Parses a snapshot file name back into its id (strictly: digits, lengths). */
static bool parse_name(const char *name, raft_snapshot_id_t *id)
{
    if (strlen(name) != SNAPFILE_NAME_LEN || name[20] != '-' ||
        strcmp(name + 31, SNAPFILE_SUFFIX) != 0)
        return false;
    int64_t v[2] = {0, 0};
    const int start[2] = {0, 21}, digits[2] = {20, 10};
    for (int f = 0; f < 2; f++) {
        for (int i = 0; i < digits[f]; i++) {
            char c = name[start[f] + i];
            if (c < '0' || c > '9' || v[f] > (INT64_MAX - (c - '0')) / 10) return false;
            v[f] = v[f] * 10 + (c - '0');
        }
    }
    if (v[1] > INT32_MAX) return false;
    id->end_offset = v[0];
    id->last_epoch = (int32_t)v[1];
    return true;
}

static int id_cmp(raft_snapshot_id_t a, raft_snapshot_id_t b)
{
    if (a.end_offset != b.end_offset) return a.end_offset < b.end_offset ? -1 : 1;
    return (a.last_epoch > b.last_epoch) - (a.last_epoch < b.last_epoch);
}

int snapfile_write(const char *dir, raft_snapshot_id_t id, const void *data, size_t len)
{
    if (id.end_offset < 0 || id.last_epoch < 0) return KL_EINVAL;
    if (len > SNAPFILE_MAX_DATA) return KL_ETOOBIG;
    uint8_t *buf = malloc(SNAPFILE_HEADER_LEN + len);
    if (!buf) return KL_ENOMEM;
    kl_put_be32(buf, SNAPFILE_MAGIC);
    kl_put_be16(buf + 4, SNAPFILE_VERSION);
    kl_put_be16(buf + 6, 0);
    kl_put_be64(buf + 8, (uint64_t)id.end_offset);
    kl_put_be32(buf + 16, (uint32_t)id.last_epoch);
    kl_put_be64(buf + 20, len);
    kl_put_be32(buf + 28, kl_crc32c(0, data, len));
    kl_put_be32(buf + 32, kl_crc32c(0, buf, 32));
    if (len) memcpy(buf + SNAPFILE_HEADER_LEN, data, len);
    char name[SNAPFILE_NAME_LEN + 1];
    snapfile_name(id, name);
    int rc = fsutil_write_atomic(dir, name, buf, SNAPFILE_HEADER_LEN + len);
    free(buf);
    return rc;
}

int snapfile_read(const char *dir, raft_snapshot_id_t id, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    char name[SNAPFILE_NAME_LEN + 1], path[FSUTIL_PATH_MAX];
    snapfile_name(id, name);
    int rc = fsutil_join(path, sizeof path, dir, name);
    if (rc < 0) return rc;
    uint8_t *buf;
    size_t n;
    rc = fsutil_read_file(path, SNAPFILE_HEADER_LEN + SNAPFILE_MAX_DATA, &buf, &n);
    if (rc == KL_ETOOBIG) rc = KL_ECORRUPT;
    if (rc < 0) return rc;
    const char *why = NULL;
    if (n < SNAPFILE_HEADER_LEN)
        why = "shorter than its header";
    else if (kl_get_be32(buf) != SNAPFILE_MAGIC)
        why = "bad magic";
    else if (kl_crc32c(0, buf, 32) != kl_get_be32(buf + 32))
        why = "header CRC mismatch";
    else if (kl_get_be16(buf + 4) != SNAPFILE_VERSION)
        why = "unknown version";
    else if ((int64_t)kl_get_be64(buf + 8) != id.end_offset ||
             (int32_t)kl_get_be32(buf + 16) != id.last_epoch)
        why = "header id differs from the file name";
    else if (kl_get_be64(buf + 20) != n - SNAPFILE_HEADER_LEN)
        why = "data length mismatch (truncated?)";
    else if (kl_crc32c(0, buf + SNAPFILE_HEADER_LEN, n - SNAPFILE_HEADER_LEN) !=
             kl_get_be32(buf + 28))
        why = "data CRC mismatch";
    if (why) {
        KL_WARN("storage", "snapshot %s is corrupt: %s", path, why);
        free(buf);
        return KL_ECORRUPT;
    }
    n -= SNAPFILE_HEADER_LEN;
    if (n > 0) {
        memmove(buf, buf + SNAPFILE_HEADER_LEN, n);
        *data = buf;
    } else {
        free(buf);
    }
    *len = n;
    return 0;
}

typedef struct snap_list {
    raft_snapshot_id_t ids[SNAPFILE_MAX_FILES];
    int n;
    bool truncated;
} snap_list_t;

static int collect(const char *name, void *arg)
{
    snap_list_t *l = arg;
    raft_snapshot_id_t id;
    if (!parse_name(name, &id)) return 0;
    if (l->n == SNAPFILE_MAX_FILES) {
        /* Keep the newest: replace the oldest held if this one is newer. */
        int oldest = 0;
        for (int i = 1; i < l->n; i++)
            if (id_cmp(l->ids[i], l->ids[oldest]) < 0) oldest = i;
        if (id_cmp(id, l->ids[oldest]) > 0) l->ids[oldest] = id;
        l->truncated = true;
        return 0;
    }
    l->ids[l->n++] = id;
    return 0;
}

static int cmp_desc(const void *a, const void *b)
{
    return id_cmp(*(const raft_snapshot_id_t *)b, *(const raft_snapshot_id_t *)a);
}

static int list_snapshots(const char *dir, snap_list_t **out)
{
    snap_list_t *l = calloc(1, sizeof *l);
    if (!l) return KL_ENOMEM;
    int rc = fsutil_list_dir(dir, collect, l);
    if (rc < 0) {
        free(l);
        return rc;
    }
    if (l->truncated)
        KL_WARN("storage", "%s: more than %d snapshot files; considering the newest only", dir,
                SNAPFILE_MAX_FILES);
    qsort(l->ids, (size_t)l->n, sizeof l->ids[0], cmp_desc);
    *out = l;
    return 0;
}

int snapfile_latest(const char *dir, raft_snapshot_id_t *id, uint8_t **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    snap_list_t *l;
    int rc = list_snapshots(dir, &l);
    if (rc < 0) return rc;
    rc = KL_ENOENT;
    for (int i = 0; i < l->n && rc == KL_ENOENT; i++) {
        int r = snapfile_read(dir, l->ids[i], data, len);
        if (r == 0) {
            *id = l->ids[i];
            rc = 0;
        } else if (r != KL_ECORRUPT && r != KL_ENOENT) {
            rc = r; /* I/O trouble: do not silently fall back to an older one */
        }
    }
    free(l);
    return rc;
}

static int remove_temp(const char *name, void *arg)
{
    const char *dir = arg;
    size_t n = strlen(name), suf = strlen(SNAPFILE_SUFFIX FSUTIL_TMP_SUFFIX);
    if (name[0] != '.' || n <= suf ||
        strcmp(name + n - suf, SNAPFILE_SUFFIX FSUTIL_TMP_SUFFIX) != 0)
        return 0;
    char path[FSUTIL_PATH_MAX];
    int rc = fsutil_join(path, sizeof path, dir, name);
    return rc < 0 ? rc : fsutil_unlink(path);
}

int snapfile_delete_older(const char *dir, raft_snapshot_id_t keep)
{
    snap_list_t *l;
    int rc = list_snapshots(dir, &l);
    if (rc < 0) return rc;
    for (int i = 0; i < l->n && rc == 0; i++) {
        if (id_cmp(l->ids[i], keep) >= 0) continue;
        char name[SNAPFILE_NAME_LEN + 1], path[FSUTIL_PATH_MAX];
        snapfile_name(l->ids[i], name);
        rc = fsutil_join(path, sizeof path, dir, name);
        if (rc == 0) rc = fsutil_unlink(path);
    }
    free(l);
    if (rc == 0) rc = fsutil_list_dir(dir, remove_temp, (void *)dir);
    if (rc == 0) rc = fsutil_fsync_dir(dir);
    return rc;
}
