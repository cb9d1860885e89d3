/* partlog.h — the files of one partition replica on a broker (DESIGN.md §5 Disk): segments, leader-epoch-checkpoint, high-watermark checkpoint, retention and flush policy. */
#ifndef KEEL_PARTLOG_H
#define KEEL_PARTLOG_H

/* A partition is the directory <log dir>/<topic>-<partition> holding
 *   <base offset, 20 digits>.log / .index   segments (seglog.h)
 *   leader-epoch-checkpoint                 Kafka's text format: "0\n<n>\n" then "<epoch> <start offset>\n" per entry
 *   high-watermark                          "0\n<hw>\n": the last checkpointed high watermark
 *   partition.metadata                      "version: 0\ntopic_id: <uuid>\n" (Kafka's): which topic the dir belongs to,
 *                                           so a deleted-and-re-created namesake never adopts old data
 * Checkpoint files are replaced atomically (write tmp, fsync, rename, fsync dir).
 * Segment data is fsynced only by partlog_sync and the flush policy
 * (log.flush.interval.messages / .ms; default never: Kafka relies on
 * replication, and a process crash does not lose the page cache). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/buf.h"
#include "keel/replica.h"
#include "keel/seglog.h"
#include "keel/uuid.h"

#define PARTLOG_NO_LIMIT (-1)
#define PARTLOG_MAX_DIR_NAME 320 /* "<topic>-<partition>" and the log dir around it fit PATH_MAX easily */

typedef struct partlog_config {
    seglog_config_t seg;              /* log.segment.bytes, log.index.interval.bytes */
    int64_t retention_ms;             /* log.retention.ms: segments whose newest record is older go; -1 never (default 7 days) */
    int64_t retention_bytes;          /* log.retention.bytes: oldest segments go while the log is bigger; -1 never (default) */
    int64_t flush_interval_messages;  /* fsync after this many appended records; -1 never (default) */
    int64_t flush_interval_ms;        /* fsync when the oldest unsynced append is this old (checked on append and partlog_tick); -1 never */
} partlog_config_t;

void partlog_config_defaults(partlog_config_t *cfg);

typedef struct partlog partlog_t;

/* Opens or creates <log_dir>/<topic>-<partition>, recovering the segments
 * (torn tail truncated, logged by seglog's caller: the message goes to err
 * only on failure), the epoch and HW checkpoints (a missing or corrupt
 * checkpoint is treated as empty / HW = log start, and said in a WARN log).
 * KL_EEXIST when partition.metadata names another topic id (the caller
 * removes the stale directory with partlog_remove_dir and opens again);
 * KL_EINVAL for a bad name or config; KL_ECORRUPT/KL_EIO/KL_ENOSPACE. */
int partlog_open(const char *log_dir, const char *topic, int32_t partition, const uint8_t topic_id[KL_UUID_LEN],
                 const partlog_config_t *cfg, partlog_t **out, char *err, size_t errlen);
/* Closes files (no fsync: call partlog_sync first when it matters). */
void partlog_close(partlog_t *pl);
/* Closes and deletes the whole directory (topic deleted, replica moved away). */
int partlog_delete(partlog_t *pl);
/* Deletes <log_dir>/<topic>-<partition> if it exists (0 when absent). */
int partlog_remove_dir(const char *log_dir, const char *topic, int32_t partition);

/* What was recovered, for replica_new(): log start/end, checkpointed HW
 * (clamped into [start, end]) and the epoch entries (pointer valid until the
 * next partlog call). */
void partlog_restore_info(const partlog_t *pl, replica_restore_t *out);

/* Appends whole, validated batches continuing the log (seglog_append rules),
 * then applies the flush policy. now_ms: monotonic time for flush.interval.ms. */
int partlog_append(partlog_t *pl, const uint8_t *batches, size_t len, int64_t now_ms);
/* Whole batches from the one containing offset, up to max_bytes (the first
 * always whole). KL_ERANGE outside [start, end]. */
int partlog_read(partlog_t *pl, int64_t offset, size_t max_bytes, kl_buf_t *out);
/* Follower divergence (replica update truncate_to / reset_to). Durable on return. */
int partlog_truncate_to(partlog_t *pl, int64_t offset);
int partlog_reset(partlog_t *pl, int64_t start);
/* Moves the log start up to offset as far as whole segments allow (retention,
 * a follower taking the leader's log start): deletes every segment that lies
 * wholly below offset, never the active one, so the new start is the base of
 * the segment holding offset. The checkpoints follow the files: leader-epoch
 * entries wholly below the new start go and the one covering it starts there
 * (Kafka's truncateFromStart), and a checkpointed HW below it rises to it.
 * KL_EINVAL for a negative offset, KL_ERANGE past the log end. Durable on return. */
int partlog_delete_before(partlog_t *pl, int64_t offset);
/* fsyncs segment data and directory. */
int partlog_sync(partlog_t *pl);
/* Flush policy by time (call every so often). */
int partlog_tick(partlog_t *pl, int64_t now_ms);

/* Rewrites leader-epoch-checkpoint (replica update epochs_changed). */
int partlog_write_epochs(partlog_t *pl, const replica_epoch_entry_t *e, int n);
/* Rewrites the high-watermark checkpoint (skipped when unchanged). */
int partlog_write_hw(partlog_t *pl, int64_t hw);

/* Retention (DESIGN.md §4): deletes whole segments, oldest first, that are
 * past retention.ms (by their newest record's timestamp; file mtime when the
 * segment holds no timestamps) or needed to bring the log under
 * retention.bytes — never a segment holding offsets at or above `hw`, never
 * the active segment — with partlog_delete_before. *new_start gets the log
 * start afterwards (feed REPLICA_EV_LOG_START when it moved). wall_ms is unix time. */
int partlog_apply_retention(partlog_t *pl, int64_t wall_ms, int64_t hw, int64_t *new_start);

/* Calls fn with the headers of every batch in [start, end), in order, in
 * chunks (for replica_replay at open). Stops at fn's first nonzero return. */
int partlog_scan_headers(partlog_t *pl, int (*fn)(void *arg, const replica_batch_t *b, int n), void *arg);

int64_t partlog_start_offset(const partlog_t *pl);
int64_t partlog_end_offset(const partlog_t *pl);
int64_t partlog_size_bytes(const partlog_t *pl);
int64_t partlog_sync_count(const partlog_t *pl); /* fsyncs of appended data so far (partlog_sync and flush policy) */
const char *partlog_dir(const partlog_t *pl); /* for logs */

#endif
