/* raftlog.h — the Raft metadata log on a seglog: one entry per record, one batch per run of (epoch, control) (DESIGN.md §2). */
#ifndef KEEL_RAFTLOG_H
#define KEEL_RAFTLOG_H

#include <stdint.h>

#include "keel/raft.h"
#include "keel/seglog.h"

#define RAFTLOG_MAX_LOAD_BYTES (512u * 1024u * 1024u) /* log kept between snapshots */
#define RAFTLOG_READ_CHUNK (1024u * 1024u)
/* Written before a truncation inside a batch and removed after it: holds the
 * re-encoded kept prefix so a crash in between cannot lose durable entries. */
#define RAFTLOG_PENDING_FILE "truncate.pending"

typedef struct raftlog raftlog_t;

/* Opens the log in dir (see seglog_open) and finishes an interrupted
 * mid-batch truncation. */
int raftlog_open(const char *dir, const seglog_config_t *cfg, raftlog_t **out);
void raftlog_close(raftlog_t *rl); /* frees loaded entries too */

/* Appends entries, which must continue the log (entries[0].offset = end,
 * consecutive; KL_EINVAL otherwise); KL_ETOOBIG if they encode to more than
 * SEGLOG_MAX_APPEND_BYTES in one call. Not durable until raftlog_sync. */
int raftlog_append(raftlog_t *rl, const raft_entry_t *entries, int n);
int raftlog_sync(raftlog_t *rl);

/* Removes every entry at or after offset, in [start, end] (KL_ERANGE
 * outside). Inside a batch, the kept prefix is re-written as a new batch.
 * Durable on return. */
int raftlog_truncate(raftlog_t *rl, int64_t offset);

/* Every entry from the log start, validated; the array and the data stay
 * owned by rl until raftlog_release_loaded or close (a second load releases
 * the first). KL_ETOOBIG past RAFTLOG_MAX_LOAD_BYTES. */
int raftlog_load(raftlog_t *rl, const raft_entry_t **entries, int *n);
void raftlog_release_loaded(raftlog_t *rl);

/* Deletes whole segments below offset (after a snapshot at offset). */
int raftlog_delete_before(raftlog_t *rl, int64_t offset);
/* Empties the log and restarts it at start (after installing a snapshot). */
int raftlog_reset(raftlog_t *rl, int64_t start);

int64_t raftlog_start_offset(const raftlog_t *rl);
int64_t raftlog_end_offset(const raftlog_t *rl);
/* Epoch of the last entry, 0 when the log is empty (the caller combines it
 * with its snapshot id). */
int32_t raftlog_last_epoch(const raftlog_t *rl);

#endif
