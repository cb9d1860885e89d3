/* cmd_replicas.c — `keelctl check-replicas --log-dirs D1,D2,...`: compares the
 * replicas of every partition found in more than one log dir record by record
 * at every offset two or more of them hold, reading segment files only
 * (never through seglog/partlog, whose open recovers and so writes), so it is
 * safe on a live cluster (DESIGN.md §4 log matching, §5 Disk). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/quorum.h"
#include "keel/recbatch.h"
#include "keel/seglog.h"
#include "keel/uuid.h"

#include "cli.h"

#define REPL_MAX_LOG_DIRS 64
#define REPL_MAX_DETAILED 100 /* mismatches shown record by record, per partition */
#define REPL_SHOWN_BYTES 256  /* of a key or value in a mismatch report */
#define REPL_NOTE_LEN 512
#define REPL_PARTITION_META "partition.metadata"   /* partlog.h: "version: 0\ntopic_id: <uuid>\n" */
#define REPL_PARTITION_META_MAX 1024
#define REPL_METADATA_TOPIC "__cluster_metadata" /* compared only when asked for by --topic */

/* One <topic>-<partition> dir in one log dir. */
typedef struct entry {
    char topic[META_MAX_TOPIC_NAME_LEN + 1];
    int32_t partition;
    char topic_id[KL_UUID_STR_LEN + 1]; /* "" when partition.metadata is missing or unreadable */
    int dir_index;                      /* into --log-dirs */
} entry_t;

typedef struct entries {
    entry_t *v;
    int n, cap;
} entries_t;

/* A replica read front to back, one record at a time. */
typedef struct replica {
    const char *log_dir;
    char dir[FSUTIL_PATH_MAX - SEGLOG_NAME_LEN - 1]; /* so that dir/<segment> fits FSUTIL_PATH_MAX */
    const char *topic_id;
    int64_t *segs; /* base offsets, sorted */
    int n_segs, seg_i;
    int fd;
    uint64_t pos; /* in the open segment */
    kl_buf_t batch;
    recbatch_iter_t it;
    bool in_batch;
    recbatch_record_t rec;
    bool has_rec;        /* rec is the current record; false once the replica ended */
    int64_t start, next; /* first segment's base; offset after the last whole batch (-1: none yet) */
    char note[REPL_NOTE_LEN]; /* why reading stopped early, "" if at the end of the last segment */
    bool damaged;             /* the note is damage (exit 1), not a live tail */
} replica_t;

/* What comparing one partition found. */
typedef struct verdict {
    int64_t compared, first_compared, mismatches, first_mismatch, last_compared;
    int64_t (*ranges)[2];
    int n_ranges, cap_ranges;
} verdict_t;

typedef struct check {
    bool json;
    cli_json_t j;
    int64_t partitions, bad_partitions, damaged;
} check_t;

/* "<topic>-<partition>" (the partition in plain decimal) -> its parts. */
static bool parse_partition_dir(const char *name, entry_t *e)
{
    const char *dash = strrchr(name, '-');
    if (!dash || dash == name || (size_t)(dash - name) > META_MAX_TOPIC_NAME_LEN) return false;
    const char *d = dash + 1;
    size_t nd = strlen(d);
    if (nd == 0 || nd > 10 || (d[0] == '0' && nd > 1) || strspn(d, "0123456789") != nd) return false;
    long long p = strtoll(d, NULL, 10);
    if (p > INT32_MAX) return false;
    memcpy(e->topic, name, (size_t)(dash - name));
    e->topic[dash - name] = '\0';
    e->partition = (int32_t)p;
    return meta_topic_name_valid(e->topic);
}

/* The topic id from partition.metadata, "" when absent or unreadable. */
static void read_topic_id(const char *dir, char *out)
{
    out[0] = '\0';
    char path[FSUTIL_PATH_MAX], text[REPL_PARTITION_META_MAX];
    if (fsutil_join(path, sizeof path, dir, REPL_PARTITION_META) != 0) return;
    FILE *f = fopen(path, "re");
    if (!f) return;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *p = strstr(text, "topic_id: ");
    if (!p) return;
    p += strlen("topic_id: ");
    size_t len = strcspn(p, "\r\n");
    if (len == KL_UUID_STR_LEN) {
        memcpy(out, p, len);
        out[len] = '\0';
    }
}

typedef struct scan_ctx {
    const char *log_dir;
    int dir_index;
    const char *only_topic;
    entries_t *out;
    int rc;
} scan_ctx_t;

static int scan_entry(const char *name, void *arg)
{
    scan_ctx_t *s = arg;
    entry_t e = {.dir_index = s->dir_index};
    if (!parse_partition_dir(name, &e)) return 0;
    if (s->only_topic ? strcmp(e.topic, s->only_topic) != 0 : strcmp(e.topic, REPL_METADATA_TOPIC) == 0) return 0;
    char dir[FSUTIL_PATH_MAX];
    struct stat st;
    if (fsutil_join(dir, sizeof dir, s->log_dir, name) != 0 || stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
    read_topic_id(dir, e.topic_id);
    entries_t *l = s->out;
    if (l->n == l->cap) {
        if (l->n >= META_MAX_PARTITIONS * REPL_MAX_LOG_DIRS) return s->rc = KL_ETOOBIG;
        int cap = l->cap ? 2 * l->cap : 64;
        entry_t *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return s->rc = KL_ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = e;
    return 0;
}

/* Same partition of the same topic incarnation next to each other, log dirs in the order given. */
static int cmp_entry(const void *a, const void *b)
{
    const entry_t *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    if (c == 0) c = (x->partition > y->partition) - (x->partition < y->partition);
    if (c == 0) c = strcmp(x->topic_id, y->topic_id);
    if (c == 0) c = (x->dir_index > y->dir_index) - (x->dir_index < y->dir_index);
    return c;
}

static bool same_partition(const entry_t *a, const entry_t *b)
{
    return a->partition == b->partition && strcmp(a->topic, b->topic) == 0 && strcmp(a->topic_id, b->topic_id) == 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int collect_segment(const char *name, void *arg)
{
    replica_t *r = arg;
    int64_t base;
    if (!seglog_parse_segment_name(name, &base)) return 0;
    if (r->n_segs >= SEGLOG_MAX_SEGMENTS) return KL_ETOOBIG;
    if ((r->n_segs & (r->n_segs - 1)) == 0) { /* grow at powers of two */
        int64_t *s = realloc(r->segs, (size_t)(r->n_segs ? 2 * r->n_segs : 1) * sizeof *s);
        if (!s) return KL_ENOMEM;
        r->segs = s;
    }
    r->segs[r->n_segs++] = base;
    return 0;
}

static void stop(replica_t *r, bool damaged, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void stop(replica_t *r, bool damaged, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->note, sizeof r->note, fmt, ap);
    va_end(ap);
    r->damaged = damaged;
    r->has_rec = false;
    r->in_batch = false;
    r->seg_i = r->n_segs;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
}

static void seg_path(const replica_t *r, int i, char *path)
{
    snprintf(path, FSUTIL_PATH_MAX, "%s/%0*" PRId64 ".log", r->dir, SEGLOG_NAME_DIGITS, r->segs[i]);
}

static int replica_open(replica_t *r, const char *log_dir, const entry_t *e)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->start = r->next = -1;
    r->log_dir = log_dir;
    r->topic_id = e->topic_id;
    kl_buf_init(&r->batch, RECBATCH_MAX_BYTES);
    char name[META_MAX_TOPIC_NAME_LEN + 16];
    snprintf(name, sizeof name, "%s-%" PRId32, e->topic, e->partition);
    int rc = fsutil_join(r->dir, sizeof r->dir, log_dir, name);
    if (rc == 0) rc = fsutil_list_dir(r->dir, collect_segment, r);
    if (rc != 0) return rc;
    qsort(r->segs, (size_t)r->n_segs, sizeof *r->segs, cmp_i64);
    r->has_rec = true; /* until the first read says otherwise */
    return 0;
}

static void replica_close(replica_t *r)
{
    if (r->fd >= 0) close(r->fd);
    free(r->segs);
    kl_buf_free(&r->batch);
}

/* Reads exactly n bytes at pos; the count read (short at end of file), or -errno. */
static ssize_t read_at(int fd, void *buf, size_t n, uint64_t pos)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = pread(fd, (uint8_t *)buf + got, n - got, (off_t)(pos + got));
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -errno;
        if (k == 0) break;
        got += (size_t)k;
    }
    return (ssize_t)got;
}

/* Opens segment seg_i (or the next one still there); false when the replica
 * ended (with a note if early). */
static bool open_segment(replica_t *r)
{
    char path[FSUTIL_PATH_MAX];
    for (; r->seg_i < r->n_segs; r->seg_i++) {
        int64_t base = r->segs[r->seg_i];
        seg_path(r, r->seg_i, path);
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0 && errno == ENOENT && r->next < 0) continue; /* retention removed it after listing */
        if (r->fd < 0) {
            bool gone = errno == ENOENT;
            stop(r, !gone, "%s: %s%s", path, strerror(errno), gone ? " (removed while reading: truncated?)" : "");
            return false;
        }
        if (r->next >= 0 && base != r->next) {
            stop(r, true, "%s starts at offset %" PRId64 " but the previous segment ends at %" PRId64, path, base,
                 r->next);
            return false;
        }
        if (r->start < 0) r->start = r->next = base;
        r->pos = 0;
        return true;
    }
    r->has_rec = false;
    return false;
}

/* Loads the next whole, valid batch; false when the replica ended. Only the
 * last segment may end in a partial or unreadable batch (an append in
 * progress or a torn write: seglog.h); anywhere else that is damage. */
static bool load_batch(replica_t *r)
{
    char path[FSUTIL_PATH_MAX];
    for (;;) {
        if (r->fd < 0 && !open_segment(r)) return false;
        seg_path(r, r->seg_i, path);
        bool last = r->seg_i == r->n_segs - 1;
        uint8_t hdr[RECBATCH_HEADER_LEN];
        recbatch_header_t h;
        ssize_t got = read_at(r->fd, hdr, sizeof hdr, r->pos);
        if (got == 0) { /* the end of this segment */
            close(r->fd);
            r->fd = -1;
            r->seg_i++;
            continue;
        }
        size_t size = 0;
        int err = got < 0 ? (int)-got : 0; /* errno of a failed read */
        int rc = err                            ? 0
                 : got < (ssize_t)sizeof hdr ? KL_EAGAIN
                                             : recbatch_parse_header(hdr, sizeof hdr, &h);
        if (!err && rc == 0) {
            size = recbatch_total_size(&h);
            kl_buf_reset(&r->batch);
            rc = kl_buf_reserve(&r->batch, size);
            got = rc == 0 ? read_at(r->fd, r->batch.data, size, r->pos) : 0;
            err = got < 0 ? (int)-got : 0;
            if (!err && rc == 0) rc = (size_t)got < size ? KL_EAGAIN : recbatch_validate(r->batch.data, size, &h);
        }
        if (!err && rc == 0 && h.base_offset != r->next) {
            stop(r, true, "%s, position %" PRIu64 ": batch at offset %" PRId64 " where %" PRId64 " was expected",
                 path, r->pos, h.base_offset, r->next);
            return false;
        }
        if (err || rc != 0) {
            bool tail = last && !err && rc != KL_ENOMEM;
            stop(r, !tail, "%s, position %" PRIu64 " (offset %" PRId64 "): %s%s", path, r->pos, r->next,
                 err ? strerror(err) : rc == KL_EAGAIN ? "incomplete batch" : kl_strerror(rc),
                 tail ? "; read up to there (an append in progress, or a torn write)" : "");
            return false;
        }
        r->pos += size;
        r->next = recbatch_next_offset(&h);
        r->batch.len = size;
        int irc = recbatch_iter_init(&r->it, r->batch.data, size);
        KL_ASSERT(irc == 0); /* validated above */
        return true;
    }
}

/* Moves to the next record; has_rec false when the replica ended. */
static void advance(replica_t *r)
{
    for (;;) {
        if (r->in_batch) {
            int rc = recbatch_iter_next(&r->it, &r->rec);
            if (rc == 0) return;
            r->in_batch = false;
            if (rc != KL_ENOENT) {
                stop(r, true, "%s: malformed record after offset %" PRId64, r->dir, r->rec.offset);
                return;
            }
        }
        if (!load_batch(r)) return;
        r->in_batch = true;
    }
}

static bool bytes_equal(recbatch_bytes_t a, recbatch_bytes_t b)
{
    return a.len == b.len && (a.len <= 0 || memcmp(a.data, b.data, (size_t)a.len) == 0);
}

static bool records_equal(const recbatch_record_t *a, const recbatch_record_t *b)
{
    return a->timestamp == b->timestamp && bytes_equal(a->key, b->key) && bytes_equal(a->value, b->value) &&
           a->header_count == b->header_count && a->headers_len == b->headers_len &&
           (a->headers_len == 0 || memcmp(a->headers, b->headers, a->headers_len) == 0);
}

static recbatch_bytes_t shown(recbatch_bytes_t b)
{
    if (b.len > REPL_SHOWN_BYTES) b.len = REPL_SHOWN_BYTES;
    return b;
}

static void print_bytes_text(const char *name, recbatch_bytes_t b)
{
    printf(" %s=", name);
    if (!b.data || b.len < 0) {
        fputs("null", stdout);
        return;
    }
    recbatch_bytes_t s = shown(b);
    putchar('"');
    cli_print_escaped(stdout, s.data, (size_t)s.len);
    printf("\"%s", s.len < b.len ? "..." : "");
}

/* The records at one offset on the replicas in g (n of them), side by side. */
static void print_mismatch(check_t *ck, const char *label, replica_t **g, int n)
{
    int64_t off = g[0]->rec.offset;
    if (ck->json) {
        cli_json_begin_object(&ck->j, NULL);
        cli_json_int(&ck->j, "offset", off);
        cli_json_begin_array(&ck->j, "records");
        for (int i = 0; i < n; i++) {
            recbatch_bytes_t k = shown(g[i]->rec.key), v = shown(g[i]->rec.value);
            cli_json_begin_object(&ck->j, NULL);
            cli_json_string(&ck->j, "log_dir", g[i]->log_dir);
            cli_json_int(&ck->j, "timestamp", g[i]->rec.timestamp);
            cli_json_bytes(&ck->j, "key", k.data, k.len);
            cli_json_bytes(&ck->j, "value", v.data, v.len);
            cli_json_end_object(&ck->j);
        }
        cli_json_end_array(&ck->j);
        cli_json_end_object(&ck->j);
        return;
    }
    printf("%s: mismatch at offset %" PRId64 ":", label, off);
    for (int i = 0; i < n; i++) {
        printf("%s %s: timestamp=%" PRId64, i ? " |" : "", g[i]->log_dir, g[i]->rec.timestamp);
        print_bytes_text("key", g[i]->rec.key);
        print_bytes_text("value", g[i]->rec.value);
    }
    putchar('\n');
}

static int note_mismatch(verdict_t *v, int64_t off)
{
    if (v->mismatches++ == 0) v->first_mismatch = off;
    if (v->n_ranges > 0 && v->ranges[v->n_ranges - 1][1] == off - 1) {
        v->ranges[v->n_ranges - 1][1] = off;
        return 0;
    }
    if (v->n_ranges == v->cap_ranges) {
        int cap = v->cap_ranges ? 2 * v->cap_ranges : 8;
        int64_t(*r)[2] = realloc(v->ranges, (size_t)cap * sizeof *r);
        if (!r) return KL_ENOMEM;
        v->ranges = r;
        v->cap_ranges = cap;
    }
    v->ranges[v->n_ranges][0] = v->ranges[v->n_ranges][1] = off;
    v->n_ranges++;
    return 0;
}

/* Walks the replicas side by side in offset order: at each offset held by two
 * or more of them, their records must be equal. */
static int compare(check_t *ck, const char *label, replica_t *reps, int n, verdict_t *v)
{
    replica_t *g[REPL_MAX_LOG_DIRS];
    for (int i = 0; i < n; i++) advance(&reps[i]);
    for (;;) {
        int active = 0, k = 0;
        int64_t low = INT64_MAX;
        for (int i = 0; i < n; i++)
            if (reps[i].has_rec) {
                active++;
                if (reps[i].rec.offset < low) low = reps[i].rec.offset;
            }
        if (active < 2) break;
        for (int i = 0; i < n; i++)
            if (reps[i].has_rec && reps[i].rec.offset == low) g[k++] = &reps[i];
        if (k >= 2) {
            if (v->compared++ == 0) v->first_compared = low;
            v->last_compared = low;
            bool same = true;
            for (int i = 1; i < k; i++) same &= records_equal(&g[0]->rec, &g[i]->rec);
            if (!same) {
                if (v->mismatches < REPL_MAX_DETAILED) print_mismatch(ck, label, g, k);
                if (note_mismatch(v, low) != 0) return KL_ENOMEM;
            }
        }
        for (int i = 0; i < k; i++) advance(g[i]);
    }
    for (int i = 0; i < n; i++) /* read the rest too: log ends and damage are reported */
        while (reps[i].has_rec) advance(&reps[i]);
    return 0;
}

static int64_t prefix_end(const verdict_t *v)
{
    return v->compared == 0 ? -1 : v->mismatches ? v->first_mismatch : v->last_compared + 1;
}

static void report_json(check_t *ck, const entry_t *e, const replica_t *reps, int n, const verdict_t *v)
{
    cli_json_t *j = &ck->j;
    cli_json_int(j, "mismatch_count", v->mismatches);
    cli_json_begin_array(j, "mismatch_ranges");
    for (int i = 0; i < v->n_ranges; i++) {
        cli_json_begin_array(j, NULL);
        cli_json_int(j, NULL, v->ranges[i][0]);
        cli_json_int(j, NULL, v->ranges[i][1]);
        cli_json_end_array(j);
    }
    cli_json_end_array(j);
    cli_json_int(j, "offsets_compared", v->compared);
    cli_json_int(j, "first_compared_offset", v->compared ? v->first_compared : -1);
    cli_json_int(j, "common_prefix_end", prefix_end(v));
    cli_json_string(j, "topic_id", e->topic_id);
    cli_json_begin_array(j, "replicas");
    for (int i = 0; i < n; i++) {
        cli_json_begin_object(j, NULL);
        cli_json_string(j, "log_dir", reps[i].log_dir);
        cli_json_int(j, "log_start_offset", reps[i].start);
        cli_json_int(j, "log_end_offset", reps[i].next);
        if (reps[i].note[0]) cli_json_string(j, "note", reps[i].note);
        cli_json_bool(j, "damaged", reps[i].damaged);
        cli_json_end_object(j);
    }
    cli_json_end_array(j);
    cli_json_end_object(j);
}

static void report_text(const char *label, const replica_t *reps, int n, const verdict_t *v)
{
    for (int i = 0; i < n; i++)
        if (reps[i].note[0])
            printf("%s: %s: %s: %s\n", label, reps[i].log_dir, reps[i].damaged ? "DAMAGED" : "note", reps[i].note);
    printf("%s: %d replicas (", label, n);
    for (int i = 0; i < n; i++)
        printf("%s%s [%" PRId64 ", %" PRId64 ")", i ? ", " : "", reps[i].log_dir, reps[i].start, reps[i].next);
    printf("); %" PRId64 " offsets compared", v->compared);
    if (v->compared) printf(" from %" PRId64 "; common prefix up to %" PRId64, v->first_compared, prefix_end(v));
    if (!v->mismatches) {
        puts("; no mismatch");
        return;
    }
    printf("; %" PRId64 " MISMATCHES at", v->mismatches);
    for (int i = 0; i < v->n_ranges; i++) {
        printf("%s %" PRId64, i ? "," : "", v->ranges[i][0]);
        if (v->ranges[i][1] != v->ranges[i][0]) printf("-%" PRId64, v->ranges[i][1]);
    }
    putchar('\n');
}

/* Compares the n replicas of one partition (entries e[0..n)). */
static int check_partition(check_t *ck, char **dirs, const entry_t *e, int n)
{
    replica_t reps[REPL_MAX_LOG_DIRS];
    verdict_t v = {.first_mismatch = -1};
    char label[META_MAX_TOPIC_NAME_LEN + 16];
    snprintf(label, sizeof label, "%s-%" PRId32, e->topic, e->partition);
    int rc = 0, opened = 0;
    for (; opened < n && rc == 0; opened++) rc = replica_open(&reps[opened], dirs[e[opened].dir_index], &e[opened]);
    if (rc != 0) {
        /* A dir gone since the scan is a topic being deleted: nothing to vouch for. */
        cli_errorf("check-replicas: %s: %s", reps[opened - 1].dir,
                   rc == KL_ENOENT ? "removed while checking (topic deleted?); skipped" : kl_strerror(rc));
        ck->damaged += rc != KL_ENOENT;
        rc = rc == KL_ENOENT ? 0 : rc;
    } else {
        if (ck->json) {
            cli_json_begin_object(&ck->j, NULL);
            cli_json_string(&ck->j, "topic", e->topic);
            cli_json_int(&ck->j, "partition", e->partition);
            cli_json_begin_array(&ck->j, "mismatches");
        }
        rc = compare(ck, label, reps, n, &v);
        if (ck->json) cli_json_end_array(&ck->j);
        if (ck->json) report_json(ck, e, reps, n, &v);
        else report_text(label, reps, n, &v);
        ck->partitions++;
        ck->bad_partitions += v.mismatches > 0;
        for (int i = 0; i < n; i++) ck->damaged += reps[i].damaged;
        if (rc != 0) cli_errorf("check-replicas: %s: %s", label, kl_strerror(rc));
    }
    for (int i = 0; i < opened; i++) replica_close(&reps[i]);
    free(v.ranges);
    return rc;
}

/* "D1,D2,..." split in place into dirs; usage error for an empty item or a repeat. */
static int split_dirs(char *list, char **dirs, int *n)
{
    *n = 0;
    for (char *save = NULL, *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        if (*n >= REPL_MAX_LOG_DIRS)
            return cli_usage_error("check-replicas", "", "more than %d log dirs", REPL_MAX_LOG_DIRS);
        for (int i = 0; i < *n; i++)
            if (strcmp(dirs[i], d) == 0) return cli_usage_error("check-replicas", "", "log dir %s given twice", d);
        dirs[(*n)++] = d;
    }
    return *n ? 0 : cli_usage_error("check-replicas", "", "--log-dirs lists no dir");
}

int cli_check_replicas(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *list = NULL, *topic = NULL;
    bool json = false;
    const cli_opt_t opts[] = {
        {"--log-dirs", CLI_OPT_STR, &list, 0, 0, NULL},
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--json", CLI_OPT_BOOL, &json, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "check-replicas", "", opts);
    if (rc >= 0) return rc;
    if (!list) return cli_usage_error("check-replicas", "", "--log-dirs D1,D2,... is required");
    if (topic && !meta_topic_name_valid(topic))
        return cli_usage_error("check-replicas", "", "'%s' is not a topic name", topic);
    char *copy = strdup(list);
    char *dirs[REPL_MAX_LOG_DIRS];
    int n_dirs = 0;
    if (!copy) {
        cli_errorf("check-replicas: %s", kl_strerror(KL_ENOMEM));
        return CLI_EXIT_FAIL;
    }
    if (split_dirs(copy, dirs, &n_dirs) != 0) {
        free(copy);
        return CLI_EXIT_USAGE;
    }
    entries_t all = {0};
    rc = CLI_EXIT_OK;
    for (int i = 0; i < n_dirs && rc == CLI_EXIT_OK; i++) {
        scan_ctx_t s = {.log_dir = dirs[i], .dir_index = i, .only_topic = topic, .out = &all};
        int lrc = fsutil_list_dir(dirs[i], scan_entry, &s);
        if (lrc != 0) {
            cli_errorf("check-replicas: listing log dir %s: %s", dirs[i],
                       lrc == KL_ENOENT ? "no such directory" : kl_strerror(lrc));
            rc = CLI_EXIT_FAIL;
        }
    }
    if (rc != CLI_EXIT_OK) goto out;
    qsort(all.v, (size_t)all.n, sizeof *all.v, cmp_entry);
    check_t ck = {.json = json};
    cli_json_init(&ck.j, stdout);
    if (json) cli_json_begin_array(&ck.j, NULL);
    for (int i = 0, k; i < all.n; i = k) {
        for (k = i + 1; k < all.n && same_partition(&all.v[i], &all.v[k]); k++)
            ;
        if (k - i >= 2 && check_partition(&ck, dirs, &all.v[i], k - i) != 0) rc = CLI_EXIT_FAIL;
    }
    if (json) {
        cli_json_end_array(&ck.j);
        cli_json_finish(&ck.j);
    } else if (ck.partitions == 0 && all.n > 0) {
        printf("no partition%s%s is in more than one of the %d log dirs: nothing to compare\n",
               topic ? " of topic " : "", topic ? topic : "", n_dirs);
    } else {
        printf("checked %" PRId64 " partitions in %d log dirs: %s\n", ck.partitions, n_dirs,
               ck.bad_partitions ? "MISMATCHES found" : ck.damaged ? "records agree, but DAMAGED segments"
                                                                   : "all replicas agree");
    }
    if (topic && all.n == 0) {
        cli_errorf("check-replicas: no partition of topic '%s' in any of the log dirs", topic);
        rc = CLI_EXIT_FAIL;
    }
    if (ck.bad_partitions || ck.damaged || !cli_stdout_ok()) rc = CLI_EXIT_FAIL;
out:
    free(all.v);
    free(copy);
    return rc;
}
