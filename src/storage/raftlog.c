/* raftlog.c — Raft entries stored as RecordBatch v2 in a seglog, with crash-safe truncation at any offset. */
#include "keel/raftlog.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/recbatch.h"

struct raftlog {
    char *dir;
    seglog_t *sl;
    int32_t last_epoch;
    kl_buf_t scratch; /* encoding area, reused */
    kl_buf_t loaded; /* bytes the loaded entries point into */
    raft_entry_t *entries;
    int n_entries;
};

/* Reads the one batch that holds offset into rl->scratch. */
static int read_batch_at(raftlog_t *rl, int64_t offset, recbatch_header_t *h)
{
    kl_buf_reset(&rl->scratch);
    int rc = seglog_read(rl->sl, offset, 1, &rl->scratch);
    if (rc < 0) return rc;
    return recbatch_validate(rl->scratch.data, rl->scratch.len, h);
}

static int refresh_last_epoch(raftlog_t *rl)
{
    rl->last_epoch = 0;
    int64_t end = seglog_end_offset(rl->sl);
    if (end == seglog_start_offset(rl->sl)) return 0;
    recbatch_header_t h;
    int rc = read_batch_at(rl, end - 1, &h);
    if (rc == 0) rl->last_epoch = h.leader_epoch;
    return rc;
}

/* Replaces the log from batch's base offset on with `batch` and makes that
 * durable; the caller has made the pending file durable first. */
static int replace_tail(raftlog_t *rl, const uint8_t *batch, size_t len, int64_t base)
{
    int rc = seglog_truncate_to(rl->sl, base);
    if (rc == 0) rc = seglog_append(rl->sl, batch, len);
    if (rc == 0) rc = seglog_sync(rl->sl);
    return rc;
}

static int remove_pending(raftlog_t *rl)
{
    char path[FSUTIL_PATH_MAX];
    int rc = fsutil_join(path, sizeof path, rl->dir, RAFTLOG_PENDING_FILE);
    if (rc == 0) rc = fsutil_unlink(path);
    /* Durable before anything is appended: a resurrected pending file would
     * cut off entries written after it. */
    if (rc == 0) rc = fsutil_fsync_dir(rl->dir);
    return rc;
}

/* Finishes a mid-batch truncation that a crash interrupted. */
static int recover_pending(raftlog_t *rl)
{
    char path[FSUTIL_PATH_MAX];
    int rc = fsutil_join(path, sizeof path, rl->dir, RAFTLOG_PENDING_FILE);
    if (rc < 0) return rc;
    uint8_t *data;
    size_t len;
    rc = fsutil_read_file(path, RECBATCH_MAX_BYTES, &data, &len);
    if (rc == KL_ENOENT) return 0;
    if (rc < 0) return rc;
    recbatch_header_t h;
    /* The file was written atomically, so anything but one valid batch is damage. */
    rc = recbatch_validate(data, len, &h);
    if (rc < 0 || recbatch_total_size(&h) != len) {
        KL_ERROR("storage", "%s: not a valid batch; cannot finish the interrupted truncation",
                 path);
        free(data);
        return KL_ECORRUPT;
    }
    int64_t start = seglog_start_offset(rl->sl), end = seglog_end_offset(rl->sl);
    if (h.base_offset < start || h.base_offset > end) {
        /* The log no longer reaches the batch: it was never durable, or a
         * reset replaced the log. Nothing to restore. */
        KL_WARN("storage", "%s: log is now [%lld, %lld), dropping the pending batch at %lld", path,
                (long long)start, (long long)end, (long long)h.base_offset);
    } else {
        KL_WARN("storage", "%s: finishing the truncation interrupted at offset %lld", path,
                (long long)h.base_offset);
        rc = replace_tail(rl, data, len, h.base_offset);
        if (rc == KL_EINVAL) rc = KL_ECORRUPT; /* the log has no batch boundary there */
    }
    free(data);
    return rc < 0 ? rc : remove_pending(rl);
}

int raftlog_open(const char *dir, const seglog_config_t *cfg, raftlog_t **out)
{
    *out = NULL;
    raftlog_t *rl = calloc(1, sizeof *rl);
    if (!rl || !(rl->dir = strdup(dir))) {
        free(rl);
        return KL_ENOMEM;
    }
    kl_buf_init(&rl->scratch, SEGLOG_MAX_APPEND_BYTES);
    kl_buf_init(&rl->loaded, RAFTLOG_MAX_LOAD_BYTES);
    int rc = seglog_open(dir, cfg, &rl->sl);
    if (rc == 0) rc = recover_pending(rl);
    if (rc == 0) rc = refresh_last_epoch(rl);
    if (rc < 0) {
        raftlog_close(rl);
        return rc;
    }
    *out = rl;
    return 0;
}

void raftlog_release_loaded(raftlog_t *rl)
{
    free(rl->entries);
    rl->entries = NULL;
    rl->n_entries = 0;
    kl_buf_free(&rl->loaded);
}

void raftlog_close(raftlog_t *rl)
{
    if (!rl) return;
    raftlog_release_loaded(rl);
    kl_buf_free(&rl->scratch);
    seglog_close(rl->sl);
    free(rl->dir);
    free(rl);
}

int raftlog_append(raftlog_t *rl, const raft_entry_t *entries, int n)
{
    if (n <= 0) return n == 0 ? 0 : KL_EINVAL;
    if (entries[0].offset != seglog_end_offset(rl->sl)) return KL_EINVAL;
    kl_buf_reset(&rl->scratch);
    int rc = recbatch_encode_entries(&rl->scratch, entries, n);
    if (rc < 0) return rc;
    /* One seglog append per batch, so segments can roll between them. */
    recbatch_header_t h;
    for (size_t pos = 0; pos < rl->scratch.len; pos += recbatch_total_size(&h)) {
        rc = recbatch_parse_header(rl->scratch.data + pos, rl->scratch.len - pos, &h);
        if (rc == 0) rc = seglog_append(rl->sl, rl->scratch.data + pos, recbatch_total_size(&h));
        if (rc < 0) return rc;
        rl->last_epoch = h.leader_epoch;
    }
    return 0;
}

int raftlog_sync(raftlog_t *rl)
{
    return seglog_sync(rl->sl);
}

int raftlog_truncate(raftlog_t *rl, int64_t offset)
{
    if (offset < seglog_start_offset(rl->sl) || offset > seglog_end_offset(rl->sl))
        return KL_ERANGE;
    if (offset == seglog_end_offset(rl->sl)) return 0;
    recbatch_header_t h;
    int rc = read_batch_at(rl, offset, &h);
    if (rc < 0) return rc;
    if (h.base_offset == offset) {
        rc = seglog_truncate_to(rl->sl, offset);
    } else {
        /* Keep [base, offset) of the batch: re-encode it, make it durable on
         * the side, then swap it in (see RAFTLOG_PENDING_FILE). */
        raft_entry_t *e;
        int n;
        rc = recbatch_decode_entries(rl->scratch.data, rl->scratch.len, INT_MAX, &e, &n);
        if (rc < 0) return rc;
        kl_buf_t prefix;
        kl_buf_init(&prefix, RECBATCH_MAX_BYTES);
        rc = recbatch_encode_entries(&prefix, e, (int)(offset - h.base_offset));
        free(e);
        if (rc == 0)
            rc = fsutil_write_atomic(rl->dir, RAFTLOG_PENDING_FILE, prefix.data, prefix.len);
        if (rc == 0) rc = replace_tail(rl, prefix.data, prefix.len, h.base_offset);
        if (rc == 0) rc = remove_pending(rl);
        kl_buf_free(&prefix);
    }
    if (rc == 0) rc = refresh_last_epoch(rl);
    return rc;
}

int raftlog_load(raftlog_t *rl, const raft_entry_t **entries, int *n)
{
    raftlog_release_loaded(rl);
    int64_t off = seglog_start_offset(rl->sl), end = seglog_end_offset(rl->sl);
    int rc = 0;
    while (rc == 0 && off < end) {
        size_t before = rl->loaded.len;
        rc = seglog_read(rl->sl, off, RAFTLOG_READ_CHUNK, &rl->loaded);
        if (rc == 0 && rl->loaded.len == before) rc = KL_ECORRUPT; /* no progress */
        /* The last batch read tells where the next read starts. */
        recbatch_header_t h;
        for (size_t pos = before; rc == 0 && pos < rl->loaded.len; pos += recbatch_total_size(&h)) {
            rc = recbatch_parse_header(rl->loaded.data + pos, rl->loaded.len - pos, &h);
            off = recbatch_next_offset(&h);
        }
    }
    raft_entry_t *e = NULL;
    int count = 0;
    if (rc == 0) rc = recbatch_decode_entries(rl->loaded.data, rl->loaded.len, INT_MAX, &e, &count);
    if (rc == 0 && count > 0 && e[0].offset != seglog_start_offset(rl->sl)) rc = KL_ECORRUPT;
    if (rc < 0) {
        KL_ERROR("storage", "%s: cannot load the Raft log: %s", rl->dir, kl_strerror(rc));
        free(e);
        raftlog_release_loaded(rl);
        return rc;
    }
    rl->entries = e;
    rl->n_entries = count;
    *entries = e;
    *n = count;
    return 0;
}

int raftlog_delete_before(raftlog_t *rl, int64_t offset)
{
    return seglog_delete_before(rl->sl, offset);
}

int raftlog_reset(raftlog_t *rl, int64_t start)
{
    int rc = seglog_reset(rl->sl, start);
    if (rc == 0) rl->last_epoch = 0;
    return rc;
}

int64_t raftlog_start_offset(const raftlog_t *rl)
{
    return seglog_start_offset(rl->sl);
}

int64_t raftlog_end_offset(const raftlog_t *rl)
{
    return seglog_end_offset(rl->sl);
}

int32_t raftlog_last_epoch(const raftlog_t *rl)
{
    return rl->last_epoch;
}
