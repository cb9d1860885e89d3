/* seglog.c — segmented batch log: recovery of the active segment, sparse indexes, reads, truncation and retention. */
#include "keel/seglog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/recbatch.h"

#define SEGLOG_SCAN_CHUNK (1024u * 1024u) /* bytes read at a time when scanning a segment */
#define SEGLOG_INDEX_ENTRY 8
#define SEGLOG_REASON_LEN 160
#define SEGLOG_TS_UNKNOWN INT64_MIN /* seg_t.max_ts not read yet */
#define SEGLOG_WRITEBACK_BYTES (1u << 20) /* dirty bytes of the active segment before writeback is started */
#define SEGLOG_READ_CURSORS 4 /* where recent reads ended: a follower's next fetch starts there */

typedef struct seg_index {
    uint32_t *ent; /* pairs: relative offset, position */
    size_t n, cap; /* in entries */
} seg_index_t;

typedef struct seg {
    int64_t base;
    uint64_t size;
    int64_t max_ts; /* newest batch maxTimestamp, SEGLOG_NO_TIMESTAMP, or SEGLOG_TS_UNKNOWN */
} seg_t;

/* A segment with an open fd and its index in memory: the active one, or one
 * of the few older ones cached for reads. */
typedef struct seg_open {
    int64_t base; /* -1: slot unused */
    int fd;
    seg_index_t idx;
    uint64_t last_use;
} seg_open_t;

/* The batch at offset starts at pos in the segment based at base. Found by
 * reads, so a reader that continues where it stopped (every follower, most
 * consumers) skips the index lookup and the header read of locate(). */
typedef struct read_cursor {
    int64_t offset; /* -1: unused */
    int64_t base;
    uint64_t pos;
    uint64_t last_use;
} read_cursor_t;

struct seglog {
    char *dir;
    seglog_config_t cfg;
    seg_t *segs;
    int n, cap;
    int64_t end;
    seg_open_t active; /* segs[n-1] */
    uint64_t active_indexed_pos; /* position of the last index entry, 0 if none */
    uint64_t active_wb_pos;      /* writeback was started for the active segment below here */
    bool active_dirty, dir_dirty;
    int failed; /* sticky: files and memory may disagree after a failed repair */
    seg_open_t cache[SEGLOG_READ_CACHE];
    uint64_t clock;
    read_cursor_t cursors[SEGLOG_READ_CURSORS];
};

void seglog_config_defaults(seglog_config_t *cfg)
{
    cfg->segment_bytes = SEGLOG_DEFAULT_SEGMENT_BYTES;
    cfg->index_interval_bytes = SEGLOG_DEFAULT_INDEX_INTERVAL;
}

/* ---- names and small helpers ------------------------------------------------ */

static int seg_path(const seglog_t *sl, int64_t base, const char *ext, char *out)
{
    char name[64];
    snprintf(name, sizeof name, "%020" PRId64 "%s", base, ext);
    return fsutil_join(out, FSUTIL_PATH_MAX, sl->dir, name);
}

bool seglog_parse_segment_name(const char *name, int64_t *base)
{
    if (strlen(name) != SEGLOG_NAME_DIGITS + 4 || strcmp(name + SEGLOG_NAME_DIGITS, ".log") != 0)
        return false;
    int64_t v = 0;
    for (int i = 0; i < SEGLOG_NAME_DIGITS; i++) {
        if (name[i] < '0' || name[i] > '9') return false;
        if (v > (INT64_MAX - (name[i] - '0')) / 10) return false;
        v = v * 10 + (name[i] - '0');
    }
    *base = v;
    return true;
}

static void open_init(seg_open_t *o)
{
    memset(o, 0, sizeof *o);
    o->base = -1;
    o->fd = -1;
}

static void open_release(seg_open_t *o)
{
    fsutil_close(o->fd);
    free(o->idx.ent);
    open_init(o);
}

/* Called wherever segments go or change below their end (truncation, reset,
 * deletion): cached handles and read cursors are forgotten together. */
static void cache_drop_all(seglog_t *sl)
{
    for (int i = 0; i < SEGLOG_READ_CACHE; i++) open_release(&sl->cache[i]);
    for (int i = 0; i < SEGLOG_READ_CURSORS; i++) sl->cursors[i].offset = -1;
}

/* Opens a segment file that must exist: a missing one is an I/O error here. */
static int open_seg_file(const char *path, int flags, int *fd)
{
    int rc = fsutil_open(path, flags, fd);
    return rc == KL_ENOENT ? fsutil_error("open", path, ENOENT) : rc;
}

static bool index_due(const seglog_t *sl, uint64_t last_indexed, uint64_t pos)
{
    return pos >= last_indexed + sl->cfg.index_interval_bytes;
}

/* ---- sparse index --------------------------------------------------------- */

static int idx_reserve(seg_index_t *x, size_t extra)
{
    if (x->n + extra <= x->cap) return 0;
    size_t cap = x->cap ? x->cap : 64;
    while (cap < x->n + extra) cap *= 2;
    uint32_t *e = realloc(x->ent, cap * 2 * sizeof *e);
    if (!e) return KL_ENOMEM;
    x->ent = e;
    x->cap = cap;
    return 0;
}

static void idx_push(seg_index_t *x, uint32_t rel, uint32_t pos)
{
    KL_ASSERT(x->n < x->cap); /* reserved beforehand */
    x->ent[2 * x->n] = rel;
    x->ent[2 * x->n + 1] = pos;
    x->n++;
}

/* Position of the last indexed batch starting at or below rel (0: segment start). */
static uint64_t idx_lookup(const seg_index_t *x, uint32_t rel)
{
    size_t lo = 0, hi = x->n; /* first entry with relative offset > rel */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (x->ent[2 * mid] <= rel)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : x->ent[2 * (lo - 1) + 1];
}

static void idx_trim(seg_index_t *x, uint64_t size)
{
    while (x->n > 0 && x->ent[2 * (x->n - 1) + 1] >= size) x->n--;
}

static uint64_t idx_last_pos(const seg_index_t *x)
{
    return x->n ? x->ent[2 * (x->n - 1) + 1] : 0;
}

static int idx_write(const seglog_t *sl, int64_t base, const seg_index_t *x)
{
    uint8_t *buf = malloc(x->n * SEGLOG_INDEX_ENTRY + 1);
    if (!buf) return KL_ENOMEM;
    for (size_t i = 0; i < x->n; i++) {
        kl_put_be32(buf + i * SEGLOG_INDEX_ENTRY, x->ent[2 * i]);
        kl_put_be32(buf + i * SEGLOG_INDEX_ENTRY + 4, x->ent[2 * i + 1]);
    }
    char name[64];
    snprintf(name, sizeof name, "%020" PRId64 ".index", base);
    int rc = fsutil_write_atomic(sl->dir, name, buf, x->n * SEGLOG_INDEX_ENTRY);
    free(buf);
    return rc;
}

/* ---- reading batch headers ------------------------------------------------- */

static int read_header(int fd, const char *path, uint64_t pos, uint64_t seg_size,
                       recbatch_header_t *h)
{
    uint8_t hb[RECBATCH_HEADER_LEN];
    if (seg_size - pos < RECBATCH_HEADER_LEN) return KL_ECORRUPT;
    int rc = fsutil_pread_all(fd, hb, sizeof hb, pos, path);
    if (rc < 0) return rc;
    rc = recbatch_parse_header(hb, sizeof hb, h);
    if (rc == 0 && recbatch_total_size(h) > seg_size - pos) rc = KL_ECORRUPT;
    return rc < 0 && rc != KL_EIO ? KL_ECORRUPT : rc;
}

/* Loads a segment's index file and checks it against the segment: whole
 * entries, strictly increasing, inside the file, and the last entry pointing
 * at a batch with the offset it claims. KL_ECORRUPT (or KL_ENOENT) means
 * "rebuild". */
static int idx_load(const seglog_t *sl, const seg_t *s, int fd, const char *log_path,
                    seg_index_t *x)
{
    char path[FSUTIL_PATH_MAX];
    int rc = seg_path(sl, s->base, ".index", path);
    if (rc < 0) return rc;
    uint8_t *data;
    size_t len;
    rc = fsutil_read_file(path, (size_t)(s->size / RECBATCH_HEADER_LEN + 1) * SEGLOG_INDEX_ENTRY,
                          &data, &len);
    if (rc == KL_ETOOBIG) return KL_ECORRUPT;
    if (rc < 0) return rc;
    size_t n = len / SEGLOG_INDEX_ENTRY;
    rc = len % SEGLOG_INDEX_ENTRY ? KL_ECORRUPT : idx_reserve(x, n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint32_t rel = kl_get_be32(data + i * SEGLOG_INDEX_ENTRY);
        uint32_t pos = kl_get_be32(data + i * SEGLOG_INDEX_ENTRY + 4);
        if (pos >= s->size ||
            (i > 0 && (rel <= x->ent[2 * (i - 1)] || pos <= x->ent[2 * (i - 1) + 1])))
            rc = KL_ECORRUPT;
        else
            idx_push(x, rel, pos);
    }
    free(data);
    if (rc == 0 && x->n > 0) {
        recbatch_header_t h;
        rc = read_header(fd, log_path, idx_last_pos(x), s->size, &h);
        if (rc == 0 && h.base_offset != s->base + x->ent[2 * (x->n - 1)]) rc = KL_ECORRUPT;
    }
    if (rc < 0) x->n = 0;
    return rc;
}

/* Reads a segment from the start, fully validating each batch (CRC, records,
 * offsets continuing from the base) and indexing it. Stops at the first bad
 * batch: *valid is the length of the good prefix, *next the offset after it,
 * and `why` says what stopped it (empty if the whole file is good). Returns
 * a negative code only for I/O or memory failures. */
static int scan_segment(const seglog_t *sl, int fd, const char *path, const seg_t *s,
                        seg_index_t *x, uint64_t *valid, int64_t *next, int64_t *max_ts, char *why)
{
    *max_ts = SEGLOG_NO_TIMESTAMP;
    kl_buf_t buf;
    kl_buf_init(&buf, RECBATCH_MAX_BYTES + SEGLOG_SCAN_CHUNK);
    uint64_t buf_pos = 0, pos = 0, last_indexed = 0; /* buf.data[0] is file position buf_pos */
    int64_t expect = s->base;
    int rc = 0;
    why[0] = '\0';
    x->n = 0;
    while (pos < s->size) {
        size_t off = (size_t)(pos - buf_pos);
        recbatch_header_t h;
        int vrc = buf.len - off < RECBATCH_HEADER_LEN
                      ? KL_EAGAIN
                      : recbatch_validate(buf.data + off, buf.len - off, &h);
        if (vrc == KL_EAGAIN && buf_pos + buf.len < s->size) {
            /* Slide the unread tail to the front and read enough for the next batch. */
            size_t avail = buf.len - off;
            if (avail) memmove(buf.data, buf.data + off, avail);
            buf.len = avail;
            buf_pos = pos;
            size_t want = SEGLOG_SCAN_CHUNK;
            if (avail >= RECBATCH_HEADER_LEN && recbatch_parse_header(buf.data, avail, &h) == 0 &&
                recbatch_total_size(&h) - avail > want)
                want = recbatch_total_size(&h) - avail;
            if (want > s->size - (buf_pos + buf.len))
                want = (size_t)(s->size - (buf_pos + buf.len));
            if ((rc = kl_buf_reserve(&buf, want)) < 0) break;
            if ((rc = fsutil_pread_all(fd, buf.data + buf.len, want, buf_pos + buf.len, path)) < 0)
                break;
            buf.len += want;
            continue;
        }
        if (vrc == KL_EAGAIN) {
            snprintf(why, SEGLOG_REASON_LEN, "incomplete batch (torn write)");
        } else if (vrc < 0) {
            snprintf(why, SEGLOG_REASON_LEN, "bad batch: %s", kl_strerror(vrc));
        } else if (h.base_offset != expect) {
            snprintf(why, SEGLOG_REASON_LEN,
                     "batch at offset %" PRId64 " where %" PRId64 " was expected", h.base_offset,
                     expect);
        } else if (recbatch_next_offset(&h) - s->base > UINT32_MAX) {
            snprintf(why, SEGLOG_REASON_LEN, "offsets too far from the segment base");
        }
        if (why[0]) break;
        if (index_due(sl, last_indexed, pos)) {
            if ((rc = idx_reserve(x, 1)) < 0) break;
            idx_push(x, (uint32_t)(h.base_offset - s->base), (uint32_t)pos);
            last_indexed = pos;
        }
        pos += recbatch_total_size(&h);
        expect = recbatch_next_offset(&h);
        if (h.max_timestamp > *max_ts) *max_ts = h.max_timestamp;
    }
    kl_buf_free(&buf);
    *valid = pos;
    *next = expect;
    return rc;
}

/* Index of an older (complete) segment: from its file, or rebuilt from the
 * data and written back when missing or inconsistent. */
static int old_segment_index(seglog_t *sl, int i, int fd, const char *log_path, seg_index_t *x)
{
    const seg_t *s = &sl->segs[i];
    int rc = idx_load(sl, s, fd, log_path, x);
    if (rc != KL_ECORRUPT && rc != KL_ENOENT) return rc;
    KL_WARN("storage", "%s: index %s, rebuilding it", log_path,
            rc == KL_ENOENT ? "missing" : "inconsistent");
    uint64_t valid;
    int64_t next, max_ts;
    char why[SEGLOG_REASON_LEN];
    rc = scan_segment(sl, fd, log_path, s, x, &valid, &next, &max_ts, why);
    if (rc < 0) return rc;
    /* Older segments were fsynced before their successor existed, so damage
     * here is not a torn write we may cut off: report it, keep what is good. */
    if (why[0])
        KL_ERROR("storage", "%s: corrupt at position %" PRIu64 ": %s", log_path, valid, why);
    else if (i + 1 < sl->n && next != sl->segs[i + 1].base)
        KL_ERROR("storage",
                 "%s: ends at offset %" PRId64 " but the next segment starts at %" PRId64, log_path,
                 next, sl->segs[i + 1].base);
    return idx_write(sl, s->base, x);
}

/* ---- segments -------------------------------------------------------------- */

static int push_seg(seglog_t *sl, int64_t base, uint64_t size)
{
    if (sl->n == SEGLOG_MAX_SEGMENTS) {
        KL_ERROR("storage", "%s: more than %d segments", sl->dir, SEGLOG_MAX_SEGMENTS);
        return KL_ETOOBIG;
    }
    if (sl->n == sl->cap) {
        int cap = sl->cap ? sl->cap * 2 : 16;
        seg_t *s = realloc(sl->segs, (size_t)cap * sizeof *s);
        if (!s) return KL_ENOMEM;
        sl->segs = s;
        sl->cap = cap;
    }
    sl->segs[sl->n++] = (seg_t){base, size, SEGLOG_TS_UNKNOWN};
    return 0;
}

/* Starts a new empty active segment at base (the previous one is closed). */
static int create_segment(seglog_t *sl, int64_t base)
{
    char path[FSUTIL_PATH_MAX], ipath[FSUTIL_PATH_MAX];
    int rc = seg_path(sl, base, ".log", path);
    if (rc == 0) rc = seg_path(sl, base, ".index", ipath);
    if (rc == 0) rc = fsutil_unlink(ipath); /* a leftover from an earlier life of this base */
    if (rc < 0) return rc;
    int fd;
    rc = open_seg_file(path, O_RDWR | O_CREAT | O_TRUNC, &fd);
    if (rc < 0) return rc;
    if ((rc = push_seg(sl, base, 0)) < 0) {
        fsutil_close(fd);
        (void)fsutil_unlink(path);
        return rc;
    }
    sl->segs[sl->n - 1].max_ts = SEGLOG_NO_TIMESTAMP;
    open_release(&sl->active);
    sl->active.base = base;
    sl->active.fd = fd;
    sl->active_indexed_pos = 0;
    sl->active_wb_pos = 0;
    sl->active_dirty = false;
    sl->dir_dirty = true;
    sl->end = base;
    return 0;
}

/* Removes a segment's files (log first: a segment without its log is gone). */
static int remove_segment_files(const seglog_t *sl, int64_t base)
{
    char path[FSUTIL_PATH_MAX];
    int rc = seg_path(sl, base, ".log", path);
    if (rc == 0) rc = fsutil_unlink(path);
    if (rc == 0) rc = seg_path(sl, base, ".index", path);
    if (rc == 0) rc = fsutil_unlink(path);
    return rc;
}

/* Opens segment i for reading: the active one, or a cached older one. */
static int segment_handle(seglog_t *sl, int i, seg_open_t **out)
{
    if (i == sl->n - 1) {
        *out = &sl->active;
        return 0;
    }
    int64_t base = sl->segs[i].base;
    seg_open_t *victim = &sl->cache[0];
    for (int k = 0; k < SEGLOG_READ_CACHE; k++) {
        seg_open_t *c = &sl->cache[k];
        if (c->base == base) {
            c->last_use = ++sl->clock;
            *out = c;
            return 0;
        }
        if (c->last_use < victim->last_use) victim = c;
    }
    open_release(victim);
    char path[FSUTIL_PATH_MAX];
    int rc = seg_path(sl, base, ".log", path);
    int fd = -1;
    if (rc == 0) rc = open_seg_file(path, O_RDONLY, &fd);
    if (rc < 0) return rc;
    victim->fd = fd;
    if ((rc = old_segment_index(sl, i, fd, path, &victim->idx)) < 0) {
        open_release(victim);
        return rc;
    }
    victim->base = base;
    victim->last_use = ++sl->clock;
    *out = victim;
    return 0;
}

/* Last segment whose base is at or below offset. */
static int find_segment(const seglog_t *sl, int64_t offset)
{
    int lo = 0, hi = sl->n; /* first segment with base > offset */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (sl->segs[mid].base <= offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    KL_ASSERT(lo > 0);
    return lo - 1;
}

/* Finds the batch containing offset (start <= offset < end): segment index,
 * its handle, the batch position and header. */
static int locate(seglog_t *sl, int64_t offset, int *seg, seg_open_t **ho, uint64_t *pos,
                  recbatch_header_t *h)
{
    int i = find_segment(sl, offset);
    const seg_t *s = &sl->segs[i];
    int rc = segment_handle(sl, i, ho);
    if (rc < 0) return rc;
    char path[FSUTIL_PATH_MAX];
    if ((rc = seg_path(sl, s->base, ".log", path)) < 0) return rc;
    uint64_t p = idx_lookup(&(*ho)->idx, (uint32_t)(offset - s->base));
    while (p < s->size) {
        if ((rc = read_header((*ho)->fd, path, p, s->size, h)) < 0) break;
        if (recbatch_next_offset(h) > offset) {
            if (h->base_offset > offset) break; /* offsets not contiguous */
            *seg = i;
            *pos = p;
            return 0;
        }
        p += recbatch_total_size(h);
    }
    if (rc == KL_EIO) return rc;
    KL_ERROR("storage", "%s: no valid batch holds offset %" PRId64 " (position %" PRIu64 ")", path,
             offset, p);
    return KL_ECORRUPT;
}

/* ---- open / close ---------------------------------------------------------- */

static int collect_segment(const char *name, void *arg)
{
    seglog_t *sl = arg;
    int64_t base;
    return seglog_parse_segment_name(name, &base) ? push_seg(sl, base, 0) : 0;
}

static int cmp_seg(const void *a, const void *b)
{
    int64_t x = ((const seg_t *)a)->base, y = ((const seg_t *)b)->base;
    return (x > y) - (x < y);
}

/* Size of a segment file; positions must fit the index's u32. */
static int segment_size(int fd, const char *path, uint64_t *size)
{
    int rc = fsutil_size(fd, path, size);
    if (rc == 0 && *size > (uint64_t)SEGLOG_MAX_SEGMENT_BYTES + SEGLOG_MAX_APPEND_BYTES) {
        KL_ERROR("storage", "%s: %" PRIu64 " bytes is larger than any segment Keel writes", path,
                 *size);
        rc = KL_ECORRUPT;
    }
    return rc;
}

/* Recovers the last segment: validate every batch, cut off a bad tail. */
static int recover_active(seglog_t *sl)
{
    seg_t *s = &sl->segs[sl->n - 1];
    char path[FSUTIL_PATH_MAX];
    int rc = seg_path(sl, s->base, ".log", path);
    int fd = -1;
    if (rc == 0) rc = open_seg_file(path, O_RDWR, &fd);
    if (rc < 0) return rc;
    sl->active.base = s->base;
    sl->active.fd = fd;
    if ((rc = segment_size(fd, path, &s->size)) < 0) return rc;
    uint64_t valid;
    char why[SEGLOG_REASON_LEN];
    if ((rc = scan_segment(sl, fd, path, s, &sl->active.idx, &valid, &sl->end, &s->max_ts, why)) < 0)
        return rc;
    if (valid < s->size) {
        /* A torn write leaves one incomplete or bad batch at the very end.
         * Anything after the first bad batch means the disk damaged data
         * that was once durable: still cut (the log must be a prefix), but
         * say so loudly, because this replica lost acknowledged entries. */
        uint8_t hdr[RECBATCH_HEADER_LEN];
        recbatch_header_t h;
        bool tail_only = s->size - valid < RECBATCH_HEADER_LEN ||
                         fsutil_pread_all(fd, hdr, sizeof hdr, valid, path) < 0 ||
                         recbatch_parse_header(hdr, sizeof hdr, &h) < 0 ||
                         valid + recbatch_total_size(&h) >= s->size;
        kl_log_write(tail_only ? KL_LOG_WARN : KL_LOG_ERROR, "storage",
                     "%s: truncating %" PRIu64 " bytes at position %" PRIu64 ": %s%s", path,
                     s->size - valid, valid, why,
                     tail_only ? "" : " (data follows the bad batch: disk corruption, not a torn write; "
                                      "this replica lost entries it had made durable)");
        if ((rc = fsutil_truncate(fd, valid, path)) < 0 || (rc = fsutil_fsync(fd, path)) < 0)
            return rc;
        s->size = valid;
    }
    sl->active_indexed_pos = idx_last_pos(&sl->active.idx);
    sl->active_wb_pos = s->size;
    return 0;
}

int seglog_open(const char *dir, const seglog_config_t *cfg, seglog_t **out)
{
    *out = NULL;
    if (cfg->segment_bytes < SEGLOG_MIN_SEGMENT_BYTES ||
        cfg->segment_bytes > SEGLOG_MAX_SEGMENT_BYTES || cfg->index_interval_bytes < 1)
        return KL_EINVAL;
    int rc = fsutil_mkdirs(dir);
    if (rc < 0) return rc;
    seglog_t *sl = calloc(1, sizeof *sl);
    if (!sl || !(sl->dir = strdup(dir))) {
        free(sl);
        return KL_ENOMEM;
    }
    sl->cfg = *cfg;
    open_init(&sl->active);
    for (int i = 0; i < SEGLOG_READ_CACHE; i++) open_init(&sl->cache[i]);
    for (int i = 0; i < SEGLOG_READ_CURSORS; i++) sl->cursors[i].offset = -1;

    rc = fsutil_list_dir(dir, collect_segment, sl);
    if (rc == 0 && sl->n == 0) {
        rc = create_segment(sl, 0);
        if (rc == 0) rc = seglog_sync(sl);
    } else if (rc == 0) {
        qsort(sl->segs, (size_t)sl->n, sizeof *sl->segs, cmp_seg);
        /* Older segments: sizes, and an index that is present and sane. */
        for (int i = 0; rc == 0 && i < sl->n - 1; i++) {
            char path[FSUTIL_PATH_MAX];
            int fd = -1;
            seg_index_t x = {0};
            rc = seg_path(sl, sl->segs[i].base, ".log", path);
            if (rc == 0) rc = open_seg_file(path, O_RDONLY, &fd);
            if (rc == 0) rc = segment_size(fd, path, &sl->segs[i].size);
            if (rc == 0) rc = old_segment_index(sl, i, fd, path, &x);
            free(x.ent);
            fsutil_close(fd);
        }
        if (rc == 0) rc = recover_active(sl);
    }
    if (rc < 0) {
        seglog_close(sl);
        return rc;
    }
    *out = sl;
    return 0;
}

void seglog_close(seglog_t *sl)
{
    if (!sl) return;
    cache_drop_all(sl);
    open_release(&sl->active);
    free(sl->segs);
    free(sl->dir);
    free(sl);
}

/* ---- writing --------------------------------------------------------------- */

/* A failed fsync may have dropped dirty pages while a retry would report
 * success, so nothing written since the last good sync can be trusted: the
 * log refuses further work until it is reopened (and recovered). */
static int fail_fsync(seglog_t *sl, int rc)
{
    KL_ERROR("storage", "%s: fsync failed; log closed until restart", sl->dir);
    sl->failed = rc;
    return rc;
}

/* Seals the active segment (durable data, index file) and opens the next. */
static int roll(seglog_t *sl)
{
    seg_t *s = &sl->segs[sl->n - 1];
    char path[FSUTIL_PATH_MAX];
    int rc = seg_path(sl, s->base, ".log", path);
    if (rc < 0) return rc;
    if (sl->active_dirty) {
        if ((rc = fsutil_fsync(sl->active.fd, path)) < 0) return fail_fsync(sl, rc);
        sl->active_dirty = false;
    }
    if ((rc = idx_write(sl, s->base, &sl->active.idx)) < 0) return rc;
    return create_segment(sl, sl->end);
}

/* Starts writeback (no wait) of the active segment's data once
 * SEGLOG_WRITEBACK_BYTES are dirty, as RocksDB's bytes_per_sync does. Left to
 * the kernel, gigabytes go dirty and its flusher then allocates and writes
 * them behind our back, holding the inode's lock that every append needs:
 * appends (on the broker's only thread) stalled for tens of milliseconds
 * under a steady 100 MB/s. Only a hint: durability is still fsync's job, so
 * its errors are left for fsync to report. */
static void start_writeback(seglog_t *sl, uint64_t size)
{
    if (size - sl->active_wb_pos < SEGLOG_WRITEBACK_BYTES) return;
    (void)sync_file_range(sl->active.fd, (off_t)sl->active_wb_pos, (off_t)(size - sl->active_wb_pos),
                          SYNC_FILE_RANGE_WRITE);
    sl->active_wb_pos = size;
}

int seglog_append(seglog_t *sl, const uint8_t *data, size_t len)
{
    if (sl->failed) return sl->failed;
    if (len == 0) return KL_EINVAL;
    if (len > SEGLOG_MAX_APPEND_BYTES) return KL_ETOOBIG;
    int64_t next = sl->end;
    size_t n_batches = 0;
    recbatch_header_t h;
    for (size_t off = 0; off < len; off += recbatch_total_size(&h), n_batches++) {
        int rc = recbatch_parse_header(data + off, len - off, &h);
        if (rc < 0) return rc == KL_EAGAIN ? KL_EINVAL : rc;
        if (recbatch_total_size(&h) > len - off || h.base_offset != next) return KL_EINVAL;
        next = recbatch_next_offset(&h);
    }
    seg_t *s = &sl->segs[sl->n - 1];
    bool too_far = next - s->base > UINT32_MAX;
    if (s->size > 0 && (s->size + len > sl->cfg.segment_bytes || too_far)) {
        int rc = roll(sl);
        if (rc < 0) return rc;
        s = &sl->segs[sl->n - 1];
        too_far = next - s->base > UINT32_MAX;
    }
    if (too_far) return KL_EINVAL;
    int rc = idx_reserve(&sl->active.idx, n_batches);
    if (rc < 0) return rc;

    char path[FSUTIL_PATH_MAX];
    if ((rc = seg_path(sl, s->base, ".log", path)) < 0) return rc;
    if ((rc = fsutil_pwrite_all(sl->active.fd, data, len, s->size, path)) < 0) {
        /* Cut the partial write off so the next append starts at a boundary. */
        if (fsutil_truncate(sl->active.fd, s->size, path) < 0) {
            KL_ERROR("storage", "%s: cannot undo a failed append; log closed for writes", path);
            sl->failed = KL_EIO;
        }
        return rc;
    }
    sl->active_dirty = true;
    for (size_t off = 0; off < len; off += recbatch_total_size(&h)) {
        (void)recbatch_parse_header(data + off, len - off, &h); /* checked above */
        uint64_t pos = s->size + off;
        if (index_due(sl, sl->active_indexed_pos, pos)) {
            idx_push(&sl->active.idx, (uint32_t)(h.base_offset - s->base), (uint32_t)pos);
            sl->active_indexed_pos = pos;
        }
        if (s->max_ts != SEGLOG_TS_UNKNOWN && h.max_timestamp > s->max_ts) s->max_ts = h.max_timestamp;
    }
    s->size += len;
    sl->end = next;
    start_writeback(sl, s->size);
    return 0;
}

int seglog_sync(seglog_t *sl)
{
    if (sl->failed) return sl->failed;
    int rc = 0;
    if (sl->active_dirty) {
        char path[FSUTIL_PATH_MAX];
        if ((rc = seg_path(sl, sl->active.base, ".log", path)) < 0) return rc;
        if ((rc = fsutil_fsync(sl->active.fd, path)) < 0) return fail_fsync(sl, rc);
        sl->active_dirty = false;
    }
    if (rc == 0 && sl->dir_dirty) {
        if ((rc = fsutil_fsync_dir(sl->dir)) < 0) return fail_fsync(sl, rc);
        sl->dir_dirty = false;
    }
    return rc;
}

/* ---- reading --------------------------------------------------------------- */

/* Segment index and position of the batch at offset, from a cursor. */
static bool cursor_find(seglog_t *sl, int64_t offset, int *seg, uint64_t *pos)
{
    for (int k = 0; k < SEGLOG_READ_CURSORS; k++) {
        read_cursor_t *c = &sl->cursors[k];
        if (c->offset != offset) continue;
        const int i = find_segment(sl, c->base);
        if (sl->segs[i].base != c->base || c->pos > sl->segs[i].size) return false;
        c->last_use = ++sl->clock;
        *seg = i;
        *pos = c->pos;
        return true;
    }
    return false;
}

static void cursor_note(seglog_t *sl, int64_t offset, int64_t base, uint64_t pos)
{
    read_cursor_t *victim = &sl->cursors[0];
    for (int k = 0; k < SEGLOG_READ_CURSORS; k++) {
        read_cursor_t *c = &sl->cursors[k];
        if (c->offset == offset) {
            victim = c;
            break;
        }
        if (c->last_use < victim->last_use) victim = c;
    }
    *victim = (read_cursor_t){offset, base, pos, ++sl->clock};
}

int seglog_read(seglog_t *sl, int64_t offset, size_t max_bytes, kl_buf_t *out)
{
    if (sl->failed) return sl->failed;
    if (offset < seglog_start_offset(sl) || offset > sl->end) return KL_ERANGE;
    if (offset == sl->end) return 0;
    int i;
    seg_open_t *ho;
    uint64_t pos;
    recbatch_header_t h;
    int rc = cursor_find(sl, offset, &i, &pos) ? segment_handle(sl, i, &ho) : locate(sl, offset, &i, &ho, &pos, &h);
    if (rc < 0) return rc;
    int64_t next = offset; /* offset of the batch at pos */

    size_t mark = out->len, added = 0;
    char path[FSUTIL_PATH_MAX];
    rc = seg_path(sl, sl->segs[i].base, ".log", path);
    while (rc == 0) {
        uint64_t rem = sl->segs[i].size - pos;
        if (rem == 0) {
            if (i == sl->n - 1) break;
            i++;
            pos = 0;
            if ((rc = segment_handle(sl, i, &ho)) < 0) break;
            rc = seg_path(sl, sl->segs[i].base, ".log", path);
            continue;
        }
        size_t room = max_bytes > added ? max_bytes - added : 0;
        size_t chunk = rem < room ? (size_t)rem : room;
        if (added == 0 && chunk < RECBATCH_HEADER_LEN)
            chunk = rem < RECBATCH_HEADER_LEN ? (size_t)rem : RECBATCH_HEADER_LEN;
        if (chunk < RECBATCH_HEADER_LEN) break; /* no room left for another batch */
        if ((rc = kl_buf_reserve(out, chunk)) < 0) break;
        uint8_t *p = out->data + out->len;
        if ((rc = fsutil_pread_all(ho->fd, p, chunk, pos, path)) < 0) break;
        /* Keep the whole batches the chunk holds; the first must hold offset. */
        size_t keep = 0;
        while (chunk - keep >= RECBATCH_HEADER_LEN) {
            if (recbatch_parse_header(p + keep, chunk - keep, &h) < 0 ||
                recbatch_total_size(&h) > rem - keep || h.base_offset > next || recbatch_next_offset(&h) <= next) {
                KL_ERROR("storage", "%s: bad batch header at position %" PRIu64 " (offset %" PRId64 " expected)",
                         path, pos + keep, next);
                rc = KL_ECORRUPT;
                break;
            }
            if (recbatch_total_size(&h) > chunk - keep) break;
            keep += recbatch_total_size(&h);
            next = recbatch_next_offset(&h);
        }
        if (rc < 0) break;
        if (keep == 0 && added == 0) {
            /* The first batch alone is larger than max_bytes: return it whole. */
            keep = recbatch_total_size(&h);
            if ((rc = kl_buf_reserve(out, keep)) < 0) break;
            p = out->data + out->len;
            if ((rc = fsutil_pread_all(ho->fd, p + chunk, keep - chunk, pos + chunk, path)) < 0)
                break;
            next = recbatch_next_offset(&h);
        }
        out->len += keep;
        added += keep;
        pos += keep;
        if (keep < chunk || keep == 0) break;
    }
    if (rc < 0) out->len = mark;
    else if (added > 0) cursor_note(sl, next, sl->segs[i].base, pos);
    return rc;
}

/* ---- truncation and retention ------------------------------------------------ */

/* Deletes segments from the last down to keep (exclusive), closing the active. */
static int drop_segments_after(seglog_t *sl, int keep)
{
    cache_drop_all(sl);
    while (sl->n - 1 > keep) {
        if (sl->active.base == sl->segs[sl->n - 1].base) open_release(&sl->active);
        int rc = remove_segment_files(sl, sl->segs[sl->n - 1].base);
        if (rc < 0) return rc;
        sl->n--;
    }
    return 0;
}

int seglog_truncate_to(seglog_t *sl, int64_t offset)
{
    if (sl->failed) return sl->failed;
    if (offset < seglog_start_offset(sl) || offset > sl->end) return KL_ERANGE;
    if (offset == sl->end) return 0;
    int i;
    seg_open_t *ho;
    uint64_t pos;
    recbatch_header_t h;
    int rc = locate(sl, offset, &i, &ho, &pos, &h);
    if (rc < 0) return rc;
    if (h.base_offset != offset) return KL_EINVAL; /* inside a batch */

    /* From here a failure leaves files and memory out of step: fail closed. */
    seg_index_t kept = {0};
    if (i < sl->n - 1) { /* take over the older segment's index before dropping the cache */
        kept = ho->idx;
        ho->idx = (seg_index_t){0};
    }
    rc = drop_segments_after(sl, i);
    seg_t *s = &sl->segs[i];
    char path[FSUTIL_PATH_MAX];
    if (rc == 0) rc = seg_path(sl, s->base, ".log", path);
    if (rc == 0 && sl->active.fd < 0) { /* segment i becomes the active one again */
        char ipath[FSUTIL_PATH_MAX];
        int fd;
        rc = open_seg_file(path, O_RDWR, &fd);
        if (rc == 0) {
            sl->active.base = s->base;
            sl->active.fd = fd;
            sl->active.idx = kept;
            kept = (seg_index_t){0};
            rc = seg_path(sl, s->base, ".index", ipath);
        }
        if (rc == 0) rc = fsutil_unlink(ipath); /* rewritten when it is rolled again */
    }
    free(kept.ent);
    if (rc == 0) rc = fsutil_truncate(sl->active.fd, pos, path);
    if (rc == 0) rc = fsutil_fsync(sl->active.fd, path);
    if (rc == 0) rc = fsutil_fsync_dir(sl->dir);
    if (rc < 0) {
        sl->failed = rc == KL_ENOSPACE ? KL_ENOSPACE : KL_EIO;
        return rc;
    }
    s->size = pos;
    s->max_ts = pos ? SEGLOG_TS_UNKNOWN : SEGLOG_NO_TIMESTAMP; /* its newest batch may be gone */
    idx_trim(&sl->active.idx, pos);
    sl->active_indexed_pos = idx_last_pos(&sl->active.idx);
    sl->active_wb_pos = pos; /* fsynced above */
    sl->active_dirty = false;
    sl->dir_dirty = false;
    sl->end = offset;
    return 0;
}

int seglog_delete_before(seglog_t *sl, int64_t offset)
{
    if (sl->failed) return sl->failed;
    int k = 0;
    while (k < sl->n - 1 && sl->segs[k + 1].base <= offset) k++;
    if (k == 0) return 0;
    cache_drop_all(sl);
    int rc = 0, done = 0;
    while (done < k && (rc = remove_segment_files(sl, sl->segs[done].base)) == 0) done++;
    memmove(sl->segs, sl->segs + done, (size_t)(sl->n - done) * sizeof *sl->segs);
    sl->n -= done;
    if (rc == 0) rc = fsutil_fsync_dir(sl->dir);
    return rc;
}

int seglog_reset(seglog_t *sl, int64_t start)
{
    if (sl->failed) return sl->failed;
    if (start < 0) return KL_EINVAL;
    int rc = drop_segments_after(sl, 0);
    if (rc == 0) {
        open_release(&sl->active);
        rc = remove_segment_files(sl, sl->segs[0].base);
    }
    if (rc == 0) {
        sl->n = 0;
        rc = create_segment(sl, start);
    }
    if (rc == 0) rc = seglog_sync(sl);
    if (rc < 0) sl->failed = rc == KL_ENOSPACE ? KL_ENOSPACE : KL_EIO;
    return rc;
}

/* ---- listing and header scans ------------------------------------------------ */

void seglog_segment_info(const seglog_t *sl, int i, seglog_segment_info_t *out)
{
    KL_ASSERT(i >= 0 && i < sl->n);
    out->base = sl->segs[i].base;
    out->end = i + 1 < sl->n ? sl->segs[i + 1].base : sl->end;
    out->size = sl->segs[i].size;
}

typedef int (*header_fn_t)(void *arg, const recbatch_header_t *h);

/* Calls fn for each batch header of segment i, reading the file a chunk at a
 * time and skipping batch bodies; offsets must continue from *expect. */
static int walk_headers(seglog_t *sl, int i, uint8_t *chunk, int64_t *expect, header_fn_t fn,
                        void *arg)
{
    seg_open_t *ho;
    char path[FSUTIL_PATH_MAX];
    int rc = segment_handle(sl, i, &ho);
    if (rc == 0) rc = seg_path(sl, sl->segs[i].base, ".log", path);
    if (rc < 0) return rc;
    uint64_t size = sl->segs[i].size, pos = 0, buf_pos = 0, buf_len = 0;
    while (pos < size) {
        recbatch_header_t h;
        if (size - pos < RECBATCH_HEADER_LEN) {
            rc = KL_ECORRUPT;
        } else if (pos + RECBATCH_HEADER_LEN > buf_pos + buf_len) {
            buf_pos = pos;
            buf_len = size - pos < SEGLOG_SCAN_CHUNK ? size - pos : SEGLOG_SCAN_CHUNK;
            if ((rc = fsutil_pread_all(ho->fd, chunk, (size_t)buf_len, pos, path)) < 0) return rc;
        }
        if (rc == 0) rc = recbatch_parse_header(chunk + (pos - buf_pos), RECBATCH_HEADER_LEN, &h);
        if (rc == 0 && (recbatch_total_size(&h) > size - pos || h.base_offset != *expect))
            rc = KL_ECORRUPT;
        if (rc < 0) {
            KL_ERROR("storage", "%s: bad batch header at position %" PRIu64 " (offset %" PRId64 " expected)",
                     path, pos, *expect);
            return KL_ECORRUPT;
        }
        if ((rc = fn(arg, &h)) != 0) return rc;
        *expect = recbatch_next_offset(&h);
        pos += recbatch_total_size(&h);
    }
    return 0;
}

static int max_timestamp_fn(void *arg, const recbatch_header_t *h)
{
    int64_t *max_ts = arg;
    if (h->max_timestamp > *max_ts) *max_ts = h->max_timestamp;
    return 0;
}

int seglog_segment_times(seglog_t *sl, int i, int64_t *max_timestamp, int64_t *mtime_ms)
{
    KL_ASSERT(i >= 0 && i < sl->n);
    if (sl->failed) return sl->failed;
    char path[FSUTIL_PATH_MAX];
    int rc = seg_path(sl, sl->segs[i].base, ".log", path);
    if (rc < 0) return rc;
    struct stat st;
    if (stat(path, &st) < 0) return fsutil_error("stat", path, errno);
    if (sl->segs[i].max_ts == SEGLOG_TS_UNKNOWN) {
        uint8_t *chunk = malloc(SEGLOG_SCAN_CHUNK);
        if (!chunk) return KL_ENOMEM;
        int64_t max_ts = SEGLOG_NO_TIMESTAMP, expect = sl->segs[i].base;
        rc = walk_headers(sl, i, chunk, &expect, max_timestamp_fn, &max_ts);
        free(chunk);
        /* Damage in a sealed segment was logged at open and kept (see
         * old_segment_index): the batches before it still date the segment. */
        if (rc < 0 && rc != KL_ECORRUPT) return rc;
        sl->segs[i].max_ts = max_ts;
    }
    *max_timestamp = sl->segs[i].max_ts;
    *mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return 0;
}

int seglog_scan_headers(seglog_t *sl, header_fn_t fn, void *arg)
{
    if (sl->failed) return sl->failed;
    uint8_t *chunk = malloc(SEGLOG_SCAN_CHUNK);
    if (!chunk) return KL_ENOMEM;
    int64_t expect = sl->segs[0].base;
    int rc = 0;
    for (int i = 0; rc == 0 && i < sl->n; i++) {
        if (sl->segs[i].base != expect) {
            KL_ERROR("storage", "%s: segment %" PRId64 " follows a segment ending at offset %" PRId64,
                     sl->dir, sl->segs[i].base, expect);
            rc = KL_ECORRUPT;
        } else {
            rc = walk_headers(sl, i, chunk, &expect, fn, arg);
        }
    }
    free(chunk);
    return rc;
}

int64_t seglog_start_offset(const seglog_t *sl)
{
    return sl->segs[0].base;
}

int64_t seglog_end_offset(const seglog_t *sl)
{
    return sl->end;
}

int seglog_segment_count(const seglog_t *sl)
{
    return sl->n;
}
