/* metaprops.c — writes and strictly parses meta.properties so keeld never starts on a foreign or unformatted directory. */
#include "keel/metaprops.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/fsutil.h"

enum { KEY_VERSION, KEY_CLUSTER_ID, KEY_NODE_ID, KEY_DIRECTORY_ID, KEY_COUNT };
static const char *const key_names[KEY_COUNT] = {"version", "cluster.id", "node.id",
                                                 "directory.id"};

int metaprops_write(const char *dir, const metaprops_t *mp)
{
    uint8_t cid[KL_UUID_LEN], zero[KL_UUID_LEN] = {0};
    if (kl_uuid_parse(mp->cluster_id, cid) < 0 || mp->node_id < 0 ||
        memcmp(mp->directory_id, zero, KL_UUID_LEN) == 0)
        return KL_EINVAL;
    char dir_id[KL_UUID_STR_LEN + 1];
    kl_uuid_to_string(mp->directory_id, dir_id);
    char text[METAPROPS_MAX_BYTES];
    int n = snprintf(text, sizeof text,
                     "#\n# written by keelctl storage format; do not edit\n"
                     "version=%d\ncluster.id=%s\nnode.id=%d\ndirectory.id=%s\n",
                     METAPROPS_VERSION, mp->cluster_id, (int)mp->node_id, dir_id);
    KL_ASSERT(n > 0 && (size_t)n < sizeof text);
    int rc = fsutil_mkdirs(dir);
    if (rc < 0) return rc;
    return fsutil_write_atomic(dir, METAPROPS_FILE, text, (size_t)n);
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) s[--n] = '\0';
    return s;
}

/* Checks one key's value and stores it; NULL or the reason it is bad. */
static const char *set_value(metaprops_t *mp, int key, const char *v)
{
    char *end;
    long long x;
    switch (key) {
    case KEY_VERSION:
        return strcmp(v, "1") == 0 ? NULL : "unsupported version (expected 1)";
    case KEY_CLUSTER_ID: {
        uint8_t u[KL_UUID_LEN];
        if (kl_uuid_parse(v, u) < 0) return "cluster.id is not a uuid";
        memcpy(mp->cluster_id, v, KL_UUID_STR_LEN + 1);
        return NULL;
    }
    case KEY_NODE_ID:
        errno = 0;
        x = strtoll(v, &end, 10);
        if (errno || end == v || *end || x < 0 || x > INT32_MAX || (v[0] == '0' && v[1]))
            return "node.id is not a non-negative integer";
        mp->node_id = (int32_t)x;
        return NULL;
    default:
        return kl_uuid_parse(v, mp->directory_id) < 0 ? "directory.id is not a uuid" : NULL;
    }
}

static int parse(char *text, const char *path, metaprops_t *mp, char *err, size_t errlen)
{
    bool seen[KEY_COUNT] = {false};
    int line_no = 0;
    for (char *line = text, *next; line; line = next) {
        line_no++;
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        char *l = trim(line);
        if (*l == '\0' || *l == '#' || *l == '!') continue;
        char *eq = strchr(l, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected key=value", path, line_no);
            return KL_ECORRUPT;
        }
        *eq = '\0';
        char *k = trim(l), *v = trim(eq + 1);
        int key = 0;
        while (key < KEY_COUNT && strcmp(k, key_names[key]) != 0) key++;
        const char *why = key == KEY_COUNT ? "unknown key"
                          : seen[key]      ? "duplicate key"
                                           : set_value(mp, key, v);
        if (why) {
            snprintf(err, errlen, "%s:%d: %s: %s", path, line_no, k, why);
            return KL_ECORRUPT;
        }
        seen[key] = true;
    }
    for (int key = 0; key < KEY_COUNT; key++) {
        if (!seen[key]) {
            snprintf(err, errlen, "%s: missing %s", path, key_names[key]);
            return KL_ECORRUPT;
        }
    }
    return 0;
}

int metaprops_read(const char *dir, metaprops_t *mp, char *err, size_t errlen)
{
    err[0] = '\0';
    char path[FSUTIL_PATH_MAX];
    int rc = fsutil_join(path, sizeof path, dir, METAPROPS_FILE);
    if (rc < 0) {
        snprintf(err, errlen, "%s: path too long", dir);
        return rc;
    }
    uint8_t *data;
    size_t len;
    rc = fsutil_read_file(path, METAPROPS_MAX_BYTES, &data, &len);
    if (rc == KL_ENOENT) {
        snprintf(err, errlen, "%s is not formatted (no %s): run keelctl storage format", dir,
                 METAPROPS_FILE);
        return KL_EUNFORMATTED;
    }
    if (rc == KL_ETOOBIG) {
        snprintf(err, errlen, "%s: larger than %d bytes", path, METAPROPS_MAX_BYTES);
        return KL_ECORRUPT;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, kl_strerror(rc));
        return rc;
    }
    metaprops_t m;
    memset(&m, 0, sizeof m);
    if (memchr(data, '\0', len)) {
        snprintf(err, errlen, "%s: contains NUL bytes", path);
        rc = KL_ECORRUPT;
    } else {
        rc = parse((char *)data, path, &m, err, errlen);
    }
    free(data);
    if (rc == 0) *mp = m;
    return rc;
}

int metaprops_check(const char *dir, const char *expected_cluster_id, int32_t node_id,
                    metaprops_t *out, char *err, size_t errlen)
{
    metaprops_t m;
    int rc = metaprops_read(dir, &m, err, errlen);
    if (rc < 0) return rc;
    if (expected_cluster_id && strcmp(expected_cluster_id, m.cluster_id) != 0) {
        snprintf(err, errlen, "%s belongs to cluster %s, not %s", dir, m.cluster_id,
                 expected_cluster_id);
        return KL_ECLUSTERID;
    }
    if (m.node_id != node_id) {
        snprintf(err, errlen, "%s belongs to node.id %d, but this node is %d", dir, (int)m.node_id,
                 (int)node_id);
        return KL_ENODEID;
    }
    if (out) *out = m;
    return 0;
}
