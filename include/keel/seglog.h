/* seglog.h — append-only log of RecordBatch v2 batches in segment files with sparse offset indexes (DESIGN.md §5 Disk). */
#ifndef KEEL_SEGLOG_H
#define KEEL_SEGLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/buf.h"

struct recbatch_header; /* keel/recbatch.h */

/* Files in the log directory:
 *   <base offset, 20 digits>.log    batches, offsets contiguous from the base
 *   <base offset, 20 digits>.index  (relative offset u32 BE, position u32 BE)
 *                                   for the first batch after every
 *                                   index_interval_bytes; written when the
 *                                   segment is rolled, rebuilt when missing or
 *                                   inconsistent.
 * Only the last (active) segment is written. A segment is fsynced before the
 * next one is created, so every older segment is complete and durable; open
 * therefore validates the active segment alone and truncates a torn or
 * corrupt tail there. */
#define SEGLOG_DEFAULT_SEGMENT_BYTES (1024u * 1024u * 1024u) /* Kafka log.segment.bytes */
#define SEGLOG_MIN_SEGMENT_BYTES 512u
#define SEGLOG_MAX_SEGMENT_BYTES (1024u * 1024u * 1024u)
#define SEGLOG_DEFAULT_INDEX_INTERVAL 4096u /* Kafka log.index.interval.bytes */
#define SEGLOG_MAX_APPEND_BYTES (64u * 1024u * 1024u) /* one append call */
#define SEGLOG_MAX_SEGMENTS 100000 /* per log directory */
#define SEGLOG_READ_CACHE 4 /* older segments kept open (fd + index) for reads */
#define SEGLOG_NAME_DIGITS 20
#define SEGLOG_NAME_LEN (SEGLOG_NAME_DIGITS + 4) /* "<20 digits>.log" */

typedef struct seglog_config {
    uint32_t segment_bytes; /* roll before an append would pass this */
    uint32_t index_interval_bytes; /* bytes between index entries, >= 1 */
} seglog_config_t;

void seglog_config_defaults(seglog_config_t *cfg);

typedef struct seglog seglog_t;

/* Opens (creating the directory and a first segment at offset 0 if needed)
 * and recovers the log as described above. KL_EINVAL for a config out of
 * bounds, KL_ECORRUPT when segment files are inconsistent in a way truncating
 * the tail cannot fix (e.g. a segment starting below its predecessor's
 * index), KL_EIO/KL_ENOSPACE for I/O. */
int seglog_open(const char *dir, const seglog_config_t *cfg, seglog_t **out);
/* Closes files; does not fsync (call seglog_sync first for durability). */
void seglog_close(seglog_t *sl);

/* Appends one or more whole batches (the caller has validated their CRCs)
 * whose offsets continue the log: the first base offset must equal the end
 * offset and each next batch continue the previous (KL_EINVAL otherwise).
 * Rolls to a new segment first when the active one would pass
 * segment_bytes. On an I/O failure the partial write is cut off again; if
 * even that fails, or an fsync ever fails, every later call returns the
 * error until the log is reopened (which recovers it from disk). */
int seglog_append(seglog_t *sl, const uint8_t *batches, size_t len);
/* Makes everything appended so far durable (segment data and directory). */
int seglog_sync(seglog_t *sl);

/* Appends to out whole batches starting with the one that contains offset,
 * continuing across segments while the total stays within max_bytes; the
 * first batch is always returned whole even when larger. Nothing when offset
 * is the end offset; KL_ERANGE outside [start, end]. */
int seglog_read(seglog_t *sl, int64_t offset, size_t max_bytes, kl_buf_t *out);

/* Removes every batch at or after offset, which must be a batch boundary in
 * [start, end] (KL_EINVAL if it falls inside a batch, KL_ERANGE outside).
 * Durable on return. */
int seglog_truncate_to(seglog_t *sl, int64_t offset);
/* Deletes whole segments, lowest first, while the next segment starts at or
 * below offset (retention, snapshots); the active segment always stays. */
int seglog_delete_before(seglog_t *sl, int64_t offset);
/* Drops everything and starts empty at start (e.g. after installing a
 * snapshot). Durable on return. */
int seglog_reset(seglog_t *sl, int64_t start);

/* ---- segment listing and header scans (retention, producer-state replay) ---- */

#define SEGLOG_NO_TIMESTAMP (-1) /* Kafka's RecordBatch.NO_TIMESTAMP */

typedef struct seglog_segment_info {
    int64_t base;  /* first offset */
    int64_t end;   /* offset after it: the next segment's base, or the end offset */
    uint64_t size; /* bytes in its .log file */
} seglog_segment_info_t;

/* Segment i in [0, seglog_segment_count()), oldest first. */
void seglog_segment_info(const seglog_t *sl, int i, seglog_segment_info_t *out);
/* The newest batch maxTimestamp in segment i (SEGLOG_NO_TIMESTAMP when it
 * holds none) and its .log file's mtime (unix ms). The timestamp is known
 * for the active segment and read from the batch headers the first time it
 * is asked of another one (then kept: a sealed segment never changes). */
int seglog_segment_times(seglog_t *sl, int i, int64_t *max_timestamp, int64_t *mtime_ms);
/* Calls fn with the header of every batch in [start, end), in offset order,
 * reading headers only. fn must not call into sl. Stops at fn's first nonzero
 * return, which is returned; KL_ECORRUPT for a bad header or an offset gap. */
int seglog_scan_headers(seglog_t *sl, int (*fn)(void *arg, const struct recbatch_header *h),
                        void *arg);

int64_t seglog_start_offset(const seglog_t *sl); /* base of the first segment */
int64_t seglog_end_offset(const seglog_t *sl); /* offset the next append must have */
int seglog_segment_count(const seglog_t *sl);

/* "<20 digits>.log" -> its base offset; false for any other name (for
 * read-only tools that walk a log directory themselves). */
bool seglog_parse_segment_name(const char *name, int64_t *base);
#endif
