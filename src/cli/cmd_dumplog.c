/* cmd_dumplog.c — `keelctl dump-log --dir DIR [--json]`: prints the entries of a metadata log
 * (like Kafka's kafka-dump-log.sh) without changing anything, even under a running keeld. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/crc32c.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/quorum.h"
#include "keel/raftlog.h"
#include "keel/recbatch.h"
#include "keel/seglog.h"
#include "keel/snapfile.h"

#include "cli.h"

/* seglog_open/raftlog_open create a first segment, cut a torn tail, rebuild
 * indexes and finish a truncate.pending: all writes. A dump must never race a
 * live keeld that way, so this file scans the *.log segments itself, read-only,
 * with recbatch.h alone. */

#define DUMPLOG_READ_CHUNK (1024u * 1024u)
/* One whole batch plus read-ahead; +1 so that "is anything after this batch"
 * can be asked of the largest batch too. */
#define DUMPLOG_BUF_BYTES (RECBATCH_MAX_BYTES + DUMPLOG_READ_CHUNK + 1u)

typedef struct seg_list {
    int64_t *base;
    int n, cap;
    int rc; /* KL_ETOOBIG past SEGLOG_MAX_SEGMENTS, KL_ENOMEM */
} seg_list_t;

/* A segment file read front to back: buf[start, start+len) is unconsumed and
 * starts at file position pos. The file may grow or shrink meanwhile. */
typedef struct seg_reader {
    int fd;
    uint8_t *buf;
    size_t start, len;
    uint64_t pos;
    bool eof;
} seg_reader_t;

typedef struct dumplog {
    const char *arg; /* --dir as given */
    char dir[FSUTIL_PATH_MAX]; /* the partition dir */
    bool json;
    int64_t next; /* offset the next batch must start at; -1 before the first */
    uint8_t *buf; /* DUMPLOG_BUF_BYTES, shared by the segment readers */
} dumplog_t;

/* How a segment scan ended. */
enum { SCAN_DONE, SCAN_TAIL, SCAN_DAMAGE };

/* "<20 digits>.log" -> base offset (the names seglog.c writes, strictly). */
static int collect_segment(const char *name, void *arg)
{
    seg_list_t *l = arg;
    int64_t base;
    if (!seglog_parse_segment_name(name, &base)) return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        if (l->n >= SEGLOG_MAX_SEGMENTS) return l->rc = KL_ETOOBIG;
        int64_t *b = realloc(l->base, (size_t)cap * sizeof *b);
        if (!b) return l->rc = KL_ENOMEM;
        l->base = b;
        l->cap = cap;
    }
    l->base[l->n++] = base;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* --dir is a metadata log dir holding __cluster_metadata-0, or that
 * partition dir itself. */
static int resolve_dir(dumplog_t *d)
{
    struct stat st;
    if (stat(d->arg, &st) != 0) {
        cli_errorf("dump-log: %s: %s", d->arg, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_errorf("dump-log: %s: not a directory", d->arg);
        return -1;
    }
    char sub[FSUTIL_PATH_MAX];
    bool nested = fsutil_join(sub, sizeof sub, d->arg, QUORUM_LOG_DIR_NAME) == 0 &&
                  stat(sub, &st) == 0 && S_ISDIR(st.st_mode);
    if (snprintf(d->dir, sizeof d->dir, "%s", nested ? sub : d->arg) >= (int)sizeof d->dir) {
        cli_errorf("dump-log: %s: path too long", d->arg);
        return -1;
    }
    return 0;
}

/* Reads until `need` bytes are buffered or the file ends; 0 or an errno. */
static int fill(seg_reader_t *r, size_t need)
{
    KL_ASSERT(need <= DUMPLOG_BUF_BYTES);
    if (r->start + need > DUMPLOG_BUF_BYTES) {
        memmove(r->buf, r->buf + r->start, r->len);
        r->start = 0;
    }
    while (r->len < need && !r->eof) {
        size_t room = DUMPLOG_BUF_BYTES - r->start - r->len;
        ssize_t got = read(r->fd, r->buf + r->start + r->len,
                           room < DUMPLOG_READ_CHUNK ? room : DUMPLOG_READ_CHUNK);
        if (got < 0 && errno != EINTR) return errno;
        if (got == 0) r->eof = true;
        if (got > 0) r->len += (size_t)got;
    }
    return 0;
}

/* After a bad batch of `size` bytes (0 if even its header does not parse):
 * is it the file's tail as a torn write leaves it, or does data follow
 * (damage)? A torn write leaves a batch that reaches the end of the file, or
 * zeros where the file grew but its data never reached the disk. */
static bool bad_batch_is_tail(seg_reader_t *r, size_t size)
{
    if (size > 0) return fill(r, size + 1) == 0 && r->len <= size;
    if (fill(r, DUMPLOG_BUF_BYTES) != 0 || !r->eof) return false;
    for (size_t i = 0; i < r->len; i++)
        if (r->buf[r->start + i] != 0) return false;
    return true;
}

static void print_entry(const dumplog_t *d, const raft_entry_t *e)
{
    uint32_t crc = kl_crc32c(0, e->data, e->len);
    char hex[9];
    snprintf(hex, sizeof hex, "%08" PRIx32, crc);
    if (d->json) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_begin_object(&j, NULL);
        cli_json_int(&j, "offset", e->offset);
        cli_json_int(&j, "epoch", e->epoch);
        cli_json_bool(&j, "control", e->control);
        cli_json_int(&j, "len", e->len);
        cli_json_string(&j, "crc32c", hex);
        cli_json_end_object(&j);
        cli_json_finish(&j);
    } else {
        printf("offset: %" PRId64 " epoch: %" PRId32 " control: %s len: %" PRIu32 " crc32c: %s\n", e->offset,
               e->epoch, e->control ? "yes" : "no", e->len, hex);
    }
}

/* Says on stderr why the scan stops at r's position (rc from parsing or
 * decoding the batch there, h its header when it parsed) and whether that is
 * a tail a live append or a torn write leaves (SCAN_TAIL) or damage. */
static int report_stop(const dumplog_t *d, seg_reader_t *r, const char *path, bool last, int rc,
                       const recbatch_header_t *h, size_t size)
{
    char what[CLI_ERR_LEN];
    if (rc == KL_ERANGE)
        snprintf(what, sizeof what, "batch of offsets %" PRId64 "..%" PRId64 " where %" PRId64 " was expected",
                 h->base_offset, recbatch_next_offset(h) - 1, d->next);
    else
        snprintf(what, sizeof what, "%s", rc == KL_EAGAIN ? "incomplete batch" : kl_strerror(rc));
    /* Older segments were complete and durable before the next one began
     * (seglog.h), so only the last one may end early. */
    bool tail = last && (rc == KL_EAGAIN || bad_batch_is_tail(r, size));
    const char *why = !last            ? "in a complete older segment: corruption"
                      : rc == KL_EAGAIN ? "an append in progress, or a torn write"
                      : tail            ? "the log's tail: a torn write"
                                        : "not a torn tail: corruption";
    cli_errorf("dump-log: %s, position %" PRIu64 " (offset %" PRId64 "): %s; stopping there (%s)", path,
               r->pos, d->next, what, why);
    return tail ? SCAN_TAIL : SCAN_DAMAGE;
}

/* Prints one segment's entries, checking each batch whole (header, CRC,
 * records) and that offsets continue. Stops at the first batch that does not
 * pass. */
static int scan_segment(dumplog_t *d, const char *path, int64_t base, bool last)
{
    seg_reader_t r = {.fd = -1, .buf = d->buf};
    if ((r.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        if (errno == ENOENT) {
            /* Deleted after listing, by a snapshot's cleanup: the gap check
             * at the next segment tells whether entries went missing. */
            cli_errorf("dump-log: %s: gone while reading (deleted after a snapshot?)", path);
            return SCAN_DONE;
        }
        cli_errorf("dump-log: %s: %s", path, strerror(errno));
        return SCAN_DAMAGE;
    }
    int result = SCAN_DONE;
    if (d->next >= 0 && base != d->next) {
        cli_errorf("dump-log: %s starts at offset %" PRId64 " but the previous segment ends at %" PRId64
                   "; stopping at the gap",
                   path, base, d->next);
        result = SCAN_DAMAGE;
    }
    if (result == SCAN_DONE) d->next = base;
    while (result == SCAN_DONE) {
        int err = fill(&r, RECBATCH_HEADER_LEN);
        recbatch_header_t h;
        int rc = r.len < RECBATCH_HEADER_LEN ? KL_EAGAIN
                                             : recbatch_parse_header(r.buf + r.start, r.len, &h);
        size_t size = rc == 0 ? recbatch_total_size(&h) : 0;
        if (!err && rc == 0) err = fill(&r, size);
        if (!err && rc == 0 && r.len < size) rc = KL_EAGAIN;
        raft_entry_t *e = NULL;
        int n = 0;
        /* Validation bounds the count by the batch's size (RECBATCH_MAX_BYTES). */
        if (!err && rc == 0) rc = recbatch_decode_entries(r.buf + r.start, size, INT_MAX, &e, &n);
        if (!err && rc == 0 && h.base_offset != d->next) rc = KL_ERANGE;
        if (err) {
            cli_errorf("dump-log: reading %s at position %" PRIu64 ": %s", path, r.pos, strerror(err));
            result = SCAN_DAMAGE;
        } else if (rc == KL_EAGAIN && r.len == 0) {
            break; /* the end of the segment */
        } else if (rc < 0) {
            result = report_stop(d, &r, path, last, rc, &h, size);
        } else {
            for (int i = 0; i < n; i++) print_entry(d, &e[i]);
            d->next = recbatch_next_offset(&h);
            r.start += size;
            r.len -= size;
            r.pos += size;
        }
        free(e);
    }
    fsutil_close(r.fd);
    return result;
}

static void print_snapshot(const dumplog_t *d)
{
    raft_snapshot_id_t id;
    uint8_t *data;
    size_t len;
    int rc = snapfile_latest(d->dir, &id, &data, &len);
    free(data);
    if (rc == KL_ENOENT) return;
    if (rc < 0) {
        cli_errorf("dump-log: %s: cannot read snapshots: %s", d->dir, kl_strerror(rc));
        return;
    }
    if (d->json) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_begin_object(&j, NULL);
        cli_json_begin_object(&j, "snapshot");
        cli_json_int(&j, "end_offset", id.end_offset);
        cli_json_int(&j, "epoch", id.last_epoch);
        cli_json_end_object(&j);
        cli_json_end_object(&j);
        cli_json_finish(&j);
    } else
        printf("snapshot: end_offset: %" PRId64 " epoch: %" PRId32 "\n", id.end_offset, id.last_epoch);
}

/* A leftover truncate.pending means keeld rewrites the tail on its next start. */
static void note_pending(const dumplog_t *d)
{
    char path[FSUTIL_PATH_MAX];
    if (fsutil_join(path, sizeof path, d->dir, RAFTLOG_PENDING_FILE) == 0 && access(path, F_OK) == 0)
        cli_errorf("dump-log: %s exists: a truncation was interrupted; keeld finishes it on its "
                   "next start, which may change the tail shown here",
                   path);
}

static int dump(dumplog_t *d)
{
    seg_list_t segs = {0};
    int rc = fsutil_list_dir(d->dir, collect_segment, &segs);
    if (rc == 0 && segs.n == 0) {
        cli_errorf("dump-log: no metadata log in %s: %s holds no <20 digits>.log segment", d->arg,
                   d->dir);
        free(segs.base);
        return CLI_EXIT_FAIL;
    }
    if (rc < 0) {
        cli_errorf("dump-log: listing %s: %s", d->dir,
                   rc == KL_ETOOBIG ? "more segments than any Keel log has" : kl_strerror(rc));
        free(segs.base);
        return CLI_EXIT_FAIL;
    }
    qsort(segs.base, (size_t)segs.n, sizeof *segs.base, cmp_i64);
    note_pending(d);
    print_snapshot(d);
    int result = SCAN_DONE;
    for (int i = 0; i < segs.n && result == SCAN_DONE; i++) {
        char name[SEGLOG_NAME_LEN + 1], path[FSUTIL_PATH_MAX];
        snprintf(name, sizeof name, "%0*" PRId64 ".log", SEGLOG_NAME_DIGITS, segs.base[i]);
        if (fsutil_join(path, sizeof path, d->dir, name) < 0) {
            cli_errorf("dump-log: %s: path too long", d->dir);
            result = SCAN_DAMAGE;
        } else {
            result = scan_segment(d, path, segs.base[i], i == segs.n - 1);
        }
    }
    free(segs.base);
    if (fflush(stdout) != 0) {
        cli_errorf("dump-log: writing output failed");
        return CLI_EXIT_FAIL;
    }
    return result == SCAN_DAMAGE ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_dump_log(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *dir = NULL;
    bool json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0) {
            if (i + 1 == argc) {
                cli_errorf("dump-log: --dir needs a value");
                return CLI_EXIT_USAGE;
            }
            dir = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else {
            int rc = cli_unknown_arg(ctx, argc, argv, &i, "dump-log", "");
            if (rc >= 0) return rc;
        }
    }
    if (!dir) {
        cli_errorf("dump-log: --dir DIR is required");
        cli_command_usage(stderr, "dump-log", "");
        return CLI_EXIT_USAGE;
    }
    dumplog_t *d = calloc(1, sizeof *d);
    if (!d || !(d->buf = malloc(DUMPLOG_BUF_BYTES))) {
        free(d);
        cli_errorf("dump-log: %s", kl_strerror(KL_ENOMEM));
        return CLI_EXIT_FAIL;
    }
    d->arg = dir;
    d->json = json;
    d->next = -1;
    int rc = resolve_dir(d) == 0 ? dump(d) : CLI_EXIT_FAIL;
    free(d->buf);
    free(d);
    return rc;
}
