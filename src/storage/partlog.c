/* partlog.c — one partition replica's directory: segments, topic-id guard, epoch and HW checkpoints, retention and flush policy (DESIGN.md §4, §5). */
#include "keel/partlog.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/log.h"
#include "keel/meta.h"
#include "keel/recbatch.h"
#include "keel/replica_epochs.h"

#define PARTLOG_METADATA_FILE "partition.metadata"
#define PARTLOG_EPOCHS_FILE "leader-epoch-checkpoint"
#define PARTLOG_HW_FILE "high-watermark"
#define PARTLOG_CHECKPOINT_VERSION 0
#define PARTLOG_MAX_METADATA_BYTES 256
#define PARTLOG_MAX_HW_BYTES 64
/* "0\n<n>\n" then at most REPLICA_MAX_EPOCHS lines of "<i32> <i64>\n" (<= 31 bytes). */
#define PARTLOG_MAX_EPOCH_LINE 32
#define PARTLOG_MAX_EPOCHS_BYTES (32u + (size_t)REPLICA_MAX_EPOCHS * PARTLOG_MAX_EPOCH_LINE)
#define PARTLOG_SCAN_BATCHES 1024 /* headers handed to scan_headers' fn per call */
#define PARTLOG_DEFAULT_RETENTION_MS (7LL * 24 * 3600 * 1000) /* Kafka log.retention.ms */
#define PARTLOG_FILE_NAME_ROOM 64 /* longest name partlog or seglog puts in the directory, ".tmp" files included */

struct partlog {
    char dir[FSUTIL_PATH_MAX];
    char parent[FSUTIL_PATH_MAX];
    partlog_config_t cfg;
    seglog_t *sl;
    replica_epoch_entry_t *epochs; /* as last read or written */
    int n_epochs;
    int64_t hw;         /* checkpointed high watermark; -1: none (missing or corrupt file) */
    int64_t unflushed;  /* records appended since the last fsync */
    int64_t unflushed_since_ms;
    int64_t sync_count;
};

void partlog_config_defaults(partlog_config_t *cfg)
{
    seglog_config_defaults(&cfg->seg);
    cfg->retention_ms = PARTLOG_DEFAULT_RETENTION_MS;
    cfg->retention_bytes = PARTLOG_NO_LIMIT;
    cfg->flush_interval_messages = PARTLOG_NO_LIMIT;
    cfg->flush_interval_ms = PARTLOG_NO_LIMIT;
}

/* ---- names ------------------------------------------------------------------- */

/* <log_dir>/<topic>-<partition>; KL_EINVAL for a topic Kafka would refuse, a
 * negative partition or a path too long for the files inside. */
static int partition_dir(const char *log_dir, const char *topic, int32_t partition, char *out)
{
    char name[PARTLOG_MAX_DIR_NAME];
    if (!meta_topic_name_valid(topic) || partition < 0) return KL_EINVAL;
    int n = snprintf(name, sizeof name, "%s-%" PRId32, topic, partition);
    if (n < 0 || (size_t)n >= sizeof name) return KL_EINVAL;
    if (fsutil_join(out, FSUTIL_PATH_MAX - PARTLOG_FILE_NAME_ROOM, log_dir, name) < 0) return KL_EINVAL;
    return 0;
}

/* ---- checkpoint text ---------------------------------------------------------- */

/* Next '\n'-terminated line of *text (NUL-terminated); NULL when none is left
 * or the last one lacks its newline (a file written whole always has it). */
static char *next_line(char **text)
{
    char *nl = strchr(*text, '\n');
    if (!nl) return NULL;
    char *line = *text;
    *nl = '\0';
    *text = nl + 1;
    return line;
}

/* Decimal in [0, max] made of digits only, up to `end` (a NUL or a space). */
static bool parse_num(const char *s, char end, int64_t max, int64_t *out, const char **rest)
{
    int64_t v = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (max - (*p - '0')) / 10) return false;
        v = v * 10 + (*p - '0');
    }
    if (p == s || *p != end) return false;
    *out = v;
    if (rest) *rest = p;
    return true;
}

/* Reads a checkpoint file into a NUL-terminated buffer; NULL with *why set
 * when it is absent or unusable, or a negative code for an I/O failure. */
static int read_checkpoint(const char *path, size_t max, char **text, const char **why)
{
    uint8_t *data;
    size_t len;
    *text = NULL;
    int rc = fsutil_read_file(path, max, &data, &len);
    if (rc == KL_ENOENT) *why = "missing";
    else if (rc == KL_ETOOBIG) *why = "too large";
    else if (rc < 0) return rc;
    else if (memchr(data, '\0', len)) {
        *why = "contains NUL bytes";
        free(data);
    } else {
        *text = (char *)data;
    }
    return 0;
}

/* "0\n<n>\n" + n x "<epoch> <start offset>\n", strictly increasing both ways
 * (replica_epochs_load's rule, so the restore is accepted). KL_ENOMEM, or 0
 * with *why saying what is wrong with the text (NULL: *out, *n_out filled). */
static int parse_epochs(char *text, replica_epoch_entry_t **out, int *n_out, const char **why)
{
    int64_t version, n;
    char *line;
    *why = NULL;
    if (!(line = next_line(&text)) || !parse_num(line, '\0', INT32_MAX, &version, NULL) ||
        version != PARTLOG_CHECKPOINT_VERSION)
        *why = "bad version line";
    else if (!(line = next_line(&text)) || !parse_num(line, '\0', REPLICA_MAX_EPOCHS, &n, NULL))
        *why = "bad entry count";
    if (*why) return 0;
    replica_epoch_entry_t *e = n ? malloc((size_t)n * sizeof *e) : NULL;
    if (n && !e) return KL_ENOMEM;
    for (int i = 0; i < n && !*why; i++) {
        int64_t epoch, start;
        const char *rest;
        if (!(line = next_line(&text)) || !parse_num(line, ' ', INT32_MAX, &epoch, &rest) ||
            !parse_num(rest + 1, '\0', INT64_MAX, &start, NULL) ||
            (i > 0 && (epoch <= e[i - 1].epoch || start <= e[i - 1].start_offset)))
            *why = "bad or out-of-order entry";
        else
            e[i] = (replica_epoch_entry_t){(int32_t)epoch, start};
    }
    if (!*why && *text) *why = "data after the last entry";
    if (*why) {
        free(e);
        return 0;
    }
    *out = e;
    *n_out = (int)n;
    return 0;
}

static int load_epochs(partlog_t *pl, bool fresh)
{
    char path[FSUTIL_PATH_MAX], *text;
    const char *why = NULL;
    int rc = fsutil_join(path, sizeof path, pl->dir, PARTLOG_EPOCHS_FILE);
    if (rc == 0) rc = read_checkpoint(path, PARTLOG_MAX_EPOCHS_BYTES, &text, &why);
    if (rc < 0) return rc;
    if (text) {
        rc = parse_epochs(text, &pl->epochs, &pl->n_epochs, &why);
        free(text);
        if (rc < 0) return rc;
    }
    if (why && !fresh) KL_WARN("storage", "%s: %s; starting with no leader epochs", path, why);
    return 0;
}

static int load_hw(partlog_t *pl, bool fresh)
{
    char path[FSUTIL_PATH_MAX], *text;
    const char *why = NULL;
    int rc = fsutil_join(path, sizeof path, pl->dir, PARTLOG_HW_FILE);
    if (rc == 0) rc = read_checkpoint(path, PARTLOG_MAX_HW_BYTES, &text, &why);
    if (rc < 0) return rc;
    pl->hw = -1;
    if (text) {
        char *p = text, *line;
        int64_t version, hw;
        if (!(line = next_line(&p)) || !parse_num(line, '\0', INT32_MAX, &version, NULL) ||
            version != PARTLOG_CHECKPOINT_VERSION || !(line = next_line(&p)) ||
            !parse_num(line, '\0', INT64_MAX, &hw, NULL) || *p)
            why = "malformed";
        else
            pl->hw = hw;
        free(text);
    }
    if (why && !fresh)
        KL_WARN("storage", "%s: %s; high watermark restarts at the log start", path, why);
    return 0;
}

/* ---- partition.metadata ------------------------------------------------------- */

static int write_metadata(const char *dir, const uint8_t topic_id[KL_UUID_LEN])
{
    char id[KL_UUID_STR_LEN + 1], text[PARTLOG_MAX_METADATA_BYTES];
    kl_uuid_to_string(topic_id, id);
    int n = snprintf(text, sizeof text, "version: 0\ntopic_id: %s\n", id);
    KL_ASSERT(n > 0 && (size_t)n < sizeof text);
    return fsutil_write_atomic(dir, PARTLOG_METADATA_FILE, text, (size_t)n);
}

/* Checks that dir belongs to topic_id (Kafka's partition.metadata), adopting
 * a directory that has no such file yet. *fresh: the file had to be written. */
static int check_metadata(const char *dir, const uint8_t topic_id[KL_UUID_LEN], bool *fresh,
                          char *err, size_t errlen)
{
    char path[FSUTIL_PATH_MAX];
    uint8_t *data;
    size_t len;
    int rc = fsutil_join(path, sizeof path, dir, PARTLOG_METADATA_FILE);
    if (rc == 0) rc = fsutil_read_file(path, PARTLOG_MAX_METADATA_BYTES, &data, &len);
    *fresh = rc == KL_ENOENT;
    if (*fresh) return write_metadata(dir, topic_id);
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, kl_strerror(rc));
        return rc == KL_ETOOBIG ? KL_ECORRUPT : rc;
    }
    char *text = (char *)data, *line;
    const char *prefix = "topic_id: ";
    uint8_t found[KL_UUID_LEN];
    bool ok = !memchr(data, '\0', len) && (line = next_line(&text)) &&
              strcmp(line, "version: 0") == 0 && (line = next_line(&text)) &&
              strncmp(line, prefix, strlen(prefix)) == 0 &&
              kl_uuid_parse(line + strlen(prefix), found) == 0 && *text == '\0';
    free(data);
    if (!ok) {
        snprintf(err, errlen, "%s: malformed", path);
        return KL_ECORRUPT;
    }
    if (memcmp(found, topic_id, KL_UUID_LEN) != 0) {
        char have[KL_UUID_STR_LEN + 1], want[KL_UUID_STR_LEN + 1];
        kl_uuid_to_string(found, have);
        kl_uuid_to_string(topic_id, want);
        snprintf(err, errlen, "%s holds topic id %s, not %s (a deleted namesake)", dir, have, want);
        return KL_EEXIST;
    }
    return 0;
}

/* ---- open / close / delete ------------------------------------------------------ */

static bool config_valid(const partlog_config_t *c)
{
    return c->retention_ms >= PARTLOG_NO_LIMIT && c->retention_bytes >= PARTLOG_NO_LIMIT &&
           (c->flush_interval_messages == PARTLOG_NO_LIMIT || c->flush_interval_messages >= 1) &&
           c->flush_interval_ms >= PARTLOG_NO_LIMIT;
}

int partlog_open(const char *log_dir, const char *topic, int32_t partition,
                 const uint8_t topic_id[KL_UUID_LEN], const partlog_config_t *cfg, partlog_t **out,
                 char *err, size_t errlen)
{
    *out = NULL;
    err[0] = '\0';
    static const uint8_t zero_id[KL_UUID_LEN];
    partlog_t *pl = calloc(1, sizeof *pl);
    if (!pl) return KL_ENOMEM;
    int rc = partition_dir(log_dir, topic, partition, pl->dir);
    if (rc < 0 || !config_valid(cfg) || memcmp(topic_id, zero_id, KL_UUID_LEN) == 0) {
        snprintf(err, errlen, "bad partition %s-%" PRId32 ", topic id or config", topic, partition);
        free(pl);
        return KL_EINVAL;
    }
    snprintf(pl->parent, sizeof pl->parent, "%s", log_dir);
    pl->cfg = *cfg;
    bool fresh = false;
    rc = fsutil_mkdirs(pl->dir);
    if (rc == 0) rc = check_metadata(pl->dir, topic_id, &fresh, err, errlen);
    if (rc == 0 && fresh) rc = fsutil_fsync_dir(log_dir); /* the new directory's entry */
    if (rc == 0) rc = seglog_open(pl->dir, &cfg->seg, &pl->sl);
    if (rc == 0) rc = load_epochs(pl, fresh);
    if (rc == 0) rc = load_hw(pl, fresh);
    if (rc == 0 && fresh) rc = partlog_write_epochs(pl, NULL, 0);
    if (rc == 0 && fresh) rc = partlog_write_hw(pl, partlog_start_offset(pl));
    if (rc < 0) {
        if (!err[0]) snprintf(err, errlen, "%s: %s", pl->dir, kl_strerror(rc));
        partlog_close(pl);
        return rc;
    }
    *out = pl;
    return 0;
}

void partlog_close(partlog_t *pl)
{
    if (!pl) return;
    seglog_close(pl->sl);
    free(pl->epochs);
    free(pl);
}

static int remove_except_metadata(const char *name, void *arg)
{
    char path[FSUTIL_PATH_MAX];
    if (strcmp(name, PARTLOG_METADATA_FILE) == 0) return 0;
    int rc = fsutil_join(path, sizeof path, arg, name);
    return rc < 0 ? rc : fsutil_rm_rf(path);
}

/* partition.metadata goes last: a crash midway leaves a directory that still
 * names the old topic id, which a new namesake refuses (KL_EEXIST) rather
 * than adopting its remains. */
static int remove_partition_dir(const char *dir, const char *parent)
{
    char path[FSUTIL_PATH_MAX];
    int rc = fsutil_list_dir(dir, remove_except_metadata, (void *)dir);
    if (rc == KL_ENOENT) return 0;
    if (rc == 0) rc = fsutil_join(path, sizeof path, dir, PARTLOG_METADATA_FILE);
    if (rc == 0) rc = fsutil_unlink(path);
    if (rc == 0) rc = fsutil_rm_rf(dir);
    if (rc == 0) rc = fsutil_fsync_dir(parent);
    return rc;
}

int partlog_delete(partlog_t *pl)
{
    char dir[FSUTIL_PATH_MAX], parent[FSUTIL_PATH_MAX];
    memcpy(dir, pl->dir, sizeof dir);
    memcpy(parent, pl->parent, sizeof parent);
    partlog_close(pl);
    return remove_partition_dir(dir, parent);
}

int partlog_remove_dir(const char *log_dir, const char *topic, int32_t partition)
{
    char dir[FSUTIL_PATH_MAX];
    int rc = partition_dir(log_dir, topic, partition, dir);
    return rc < 0 ? rc : remove_partition_dir(dir, log_dir);
}

void partlog_restore_info(const partlog_t *pl, replica_restore_t *out)
{
    int64_t start = partlog_start_offset(pl), end = partlog_end_offset(pl);
    int64_t hw = pl->hw < start ? start : pl->hw > end ? end : pl->hw;
    *out = (replica_restore_t){.log_start = start, .log_end = end, .high_watermark = hw,
                               .epochs = pl->epochs, .n_epochs = pl->n_epochs};
}

/* ---- data --------------------------------------------------------------------- */

int partlog_sync(partlog_t *pl)
{
    int rc = seglog_sync(pl->sl);
    if (rc < 0) return rc;
    pl->unflushed = 0;
    pl->sync_count++;
    return 0;
}

/* log.flush.interval.ms: the oldest unsynced append is old enough. */
static bool flush_due_by_time(const partlog_t *pl, int64_t now_ms)
{
    return pl->unflushed > 0 && pl->cfg.flush_interval_ms != PARTLOG_NO_LIMIT &&
           now_ms - pl->unflushed_since_ms >= pl->cfg.flush_interval_ms;
}

int partlog_append(partlog_t *pl, const uint8_t *batches, size_t len, int64_t now_ms)
{
    int64_t before = seglog_end_offset(pl->sl);
    int rc = seglog_append(pl->sl, batches, len);
    if (rc < 0) return rc;
    if (pl->unflushed == 0) pl->unflushed_since_ms = now_ms;
    pl->unflushed += seglog_end_offset(pl->sl) - before;
    if ((pl->cfg.flush_interval_messages != PARTLOG_NO_LIMIT &&
         pl->unflushed >= pl->cfg.flush_interval_messages) ||
        flush_due_by_time(pl, now_ms))
        return partlog_sync(pl);
    return 0;
}

int partlog_tick(partlog_t *pl, int64_t now_ms)
{
    return flush_due_by_time(pl, now_ms) ? partlog_sync(pl) : 0;
}

int partlog_read(partlog_t *pl, int64_t offset, size_t max_bytes, kl_buf_t *out)
{
    return seglog_read(pl->sl, offset, max_bytes, out);
}

/* Both fsync what stays, so nothing is left unflushed. */
int partlog_truncate_to(partlog_t *pl, int64_t offset)
{
    int rc = seglog_truncate_to(pl->sl, offset);
    if (rc == 0) pl->unflushed = 0;
    return rc;
}

int partlog_reset(partlog_t *pl, int64_t start)
{
    int rc = seglog_reset(pl->sl, start);
    if (rc == 0) pl->unflushed = 0;
    return rc;
}

/* ---- checkpoints ----------------------------------------------------------------- */

/* After the log start moved to start: epoch entries wholly below it go and the
 * one covering it starts there (the rule replica_new applies at restore), and a
 * checkpointed HW below it rises to it. */
static int checkpoints_from(partlog_t *pl, int64_t start)
{
    replica_epochs_t c;
    replica_epochs_init(&c);
    int rc = replica_epochs_load(&c, pl->epochs, pl->n_epochs);
    if (rc == 0) {
        replica_epochs_truncate_start(&c, start);
        if (c.n != pl->n_epochs || (c.n > 0 && c.e[0].start_offset != pl->epochs[0].start_offset))
            rc = partlog_write_epochs(pl, c.e, c.n);
    }
    replica_epochs_free(&c);
    if (rc == 0 && pl->hw >= 0 && pl->hw < start) rc = partlog_write_hw(pl, start);
    return rc;
}

int partlog_write_epochs(partlog_t *pl, const replica_epoch_entry_t *e, int n)
{
    if (n < 0 || n > REPLICA_MAX_EPOCHS) return KL_EINVAL;
    for (int i = 0; i < n; i++)
        if (e[i].epoch < 0 || e[i].start_offset < 0 ||
            (i > 0 && (e[i].epoch <= e[i - 1].epoch || e[i].start_offset <= e[i - 1].start_offset)))
            return KL_EINVAL;
    kl_buf_t text;
    kl_buf_init(&text, PARTLOG_MAX_EPOCHS_BYTES);
    replica_epoch_entry_t *copy = n ? malloc((size_t)n * sizeof *copy) : NULL;
    int rc = n && !copy ? KL_ENOMEM : kl_buf_appendf(&text, "%d\n%d\n", PARTLOG_CHECKPOINT_VERSION, n);
    for (int i = 0; rc == 0 && i < n; i++)
        rc = kl_buf_appendf(&text, "%" PRId32 " %" PRId64 "\n", e[i].epoch, e[i].start_offset);
    if (rc == 0) rc = fsutil_write_atomic(pl->dir, PARTLOG_EPOCHS_FILE, text.data, text.len);
    kl_buf_free(&text);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    if (n) memcpy(copy, e, (size_t)n * sizeof *copy);
    free(pl->epochs);
    pl->epochs = copy;
    pl->n_epochs = n;
    return 0;
}

int partlog_write_hw(partlog_t *pl, int64_t hw)
{
    if (hw < 0) return KL_EINVAL;
    if (hw == pl->hw) return 0;
    char text[PARTLOG_MAX_HW_BYTES];
    int n = snprintf(text, sizeof text, "%d\n%" PRId64 "\n", PARTLOG_CHECKPOINT_VERSION, hw);
    KL_ASSERT(n > 0 && (size_t)n < sizeof text);
    int rc = fsutil_write_atomic(pl->dir, PARTLOG_HW_FILE, text, (size_t)n);
    if (rc == 0) pl->hw = hw;
    return rc;
}

/* ---- log start and retention ------------------------------------------------------ */

int partlog_delete_before(partlog_t *pl, int64_t offset)
{
    if (offset < 0) return KL_EINVAL;
    if (offset > partlog_end_offset(pl)) return KL_ERANGE;
    const int64_t before = partlog_start_offset(pl);
    int rc = seglog_delete_before(pl->sl, offset);
    /* On a failure midway the checkpoints still describe more than is left,
     * which a restore clamps; they only ever follow the files. */
    if (rc == 0 && partlog_start_offset(pl) != before) rc = checkpoints_from(pl, partlog_start_offset(pl));
    return rc;
}

/* Whether segment i is past retention.ms. Kafka's NO_TIMESTAMP (-1) means the
 * segment holds no timestamps; 0 is treated the same, because it is what a
 * producer that never set one writes, and dating such data to 1970 would
 * delete it on the spot. Then the file's mtime stands in (Kafka's rule). */
static int expired_by_time(partlog_t *pl, int i, int64_t wall_ms, bool *expired)
{
    int64_t max_ts, mtime_ms;
    int rc = seglog_segment_times(pl->sl, i, &max_ts, &mtime_ms);
    if (rc < 0) return rc;
    int64_t newest = max_ts > 0 ? max_ts : mtime_ms;
    *expired = wall_ms - newest > pl->cfg.retention_ms;
    return 0;
}

int partlog_apply_retention(partlog_t *pl, int64_t wall_ms, int64_t hw, int64_t *new_start)
{
    int n = seglog_segment_count(pl->sl);
    int64_t excess = pl->cfg.retention_bytes == PARTLOG_NO_LIMIT
                         ? 0
                         : partlog_size_bytes(pl) - pl->cfg.retention_bytes;
    int64_t keep_from = seglog_start_offset(pl->sl);
    int rc = 0;
    /* A prefix of whole sealed segments below the HW, oldest first (Kafka's
     * deletableSegments): stop at the first that must stay. */
    for (int i = 0; i < n - 1; i++) {
        seglog_segment_info_t s;
        seglog_segment_info(pl->sl, i, &s);
        if (s.end > hw) break;
        bool by_size = excess >= (int64_t)s.size, by_time = false;
        if (!by_size && pl->cfg.retention_ms != PARTLOG_NO_LIMIT &&
            (rc = expired_by_time(pl, i, wall_ms, &by_time)) < 0)
            break;
        if (!by_size && !by_time) break;
        excess -= (int64_t)s.size;
        keep_from = s.end;
    }
    if (rc == 0 && keep_from > seglog_start_offset(pl->sl)) {
        KL_INFO("storage", "%s: retention deletes offsets [%" PRId64 ", %" PRId64 ")", pl->dir,
                seglog_start_offset(pl->sl), keep_from);
        rc = partlog_delete_before(pl, keep_from);
    }
    *new_start = seglog_start_offset(pl->sl);
    return rc;
}

/* ---- header scan ----------------------------------------------------------------- */

typedef struct scan_ctx {
    replica_batch_t b[PARTLOG_SCAN_BATCHES];
    int n;
    int (*fn)(void *arg, const replica_batch_t *b, int n);
    void *arg;
} scan_ctx_t;

static int scan_one(void *arg, const recbatch_header_t *h)
{
    scan_ctx_t *c = arg;
    c->b[c->n++] = (replica_batch_t){.base_offset = h->base_offset,
                                     .last_offset_delta = h->last_offset_delta,
                                     .leader_epoch = h->leader_epoch,
                                     .producer_id = h->producer_id,
                                     .producer_epoch = h->producer_epoch,
                                     .base_sequence = h->base_sequence};
    if (c->n < PARTLOG_SCAN_BATCHES) return 0;
    c->n = 0;
    return c->fn(c->arg, c->b, PARTLOG_SCAN_BATCHES);
}

int partlog_scan_headers(partlog_t *pl, int (*fn)(void *arg, const replica_batch_t *b, int n),
                         void *arg)
{
    scan_ctx_t *c = malloc(sizeof *c);
    if (!c) return KL_ENOMEM;
    c->n = 0;
    c->fn = fn;
    c->arg = arg;
    int rc = seglog_scan_headers(pl->sl, scan_one, c);
    if (rc == 0 && c->n > 0) rc = fn(arg, c->b, c->n);
    free(c);
    return rc;
}

/* ---- queries --------------------------------------------------------------------- */

int64_t partlog_start_offset(const partlog_t *pl)
{
    return seglog_start_offset(pl->sl);
}

int64_t partlog_end_offset(const partlog_t *pl)
{
    return seglog_end_offset(pl->sl);
}

int64_t partlog_size_bytes(const partlog_t *pl)
{
    int64_t total = 0;
    for (int i = 0; i < seglog_segment_count(pl->sl); i++) {
        seglog_segment_info_t s;
        seglog_segment_info(pl->sl, i, &s);
        total += (int64_t)s.size;
    }
    return total;
}

int64_t partlog_sync_count(const partlog_t *pl)
{
    return pl->sync_count;
}

const char *partlog_dir(const partlog_t *pl)
{
    return pl->dir;
}
