/* raft_memlog.h — the raft core's in-memory log: the entries from the snapshot end to the log end. */
#ifndef KEEL_RAFT_MEMLOG_H
#define KEEL_RAFT_MEMLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/raft.h"

/* Entry e[i] has offset start + i; every entry owns a private copy of its data.
 * Epochs never decrease along the log (Raft §5.3 / KIP-595 leader epochs). */
typedef struct raft_memlog {
    raft_entry_t *e;
    size_t n, cap;
    int64_t start;       /* log start = snapshot end offset (0 without snapshot) */
    int32_t start_epoch; /* epoch of entry start-1 (the snapshot's last epoch), 0 if start == 0 */
    int64_t durable_end; /* entries below this are fsynced (DESIGN.md §2); start <= durable_end <= end */
} raft_memlog_t;

int64_t raft_memlog_end(const raft_memlog_t *l);
/* Entry at `off`, NULL outside [start, end). */
const raft_entry_t *raft_memlog_at(const raft_memlog_t *l, int64_t off);
/* Epoch of entry off-1 for off in [start, end]: the snapshot epoch at start, 0 at offset 0. */
int32_t raft_memlog_epoch_before(const raft_memlog_t *l, int64_t off);

/* Makes room for `extra` more entries so that appends cannot fail. */
int raft_memlog_reserve(raft_memlog_t *l, size_t extra);
/* Appends a copy of `src` at the end (its offset is ignored). KL_ENOMEM leaves the log unchanged. */
int raft_memlog_append_copy(raft_memlog_t *l, const raft_entry_t *src);
/* Appends `src` taking ownership of its data; room must have been reserved. */
void raft_memlog_append_owned(raft_memlog_t *l, const raft_entry_t *src);
/* Drops every entry at or after `end` (start <= end <= log end). */
void raft_memlog_truncate(raft_memlog_t *l, int64_t end);
/* Drops every entry below `start` (a snapshot now covers them); start <= log end. */
void raft_memlog_trim(raft_memlog_t *l, int64_t start, int32_t start_epoch);
/* Empties the log so that it starts (and ends) at `start`. */
void raft_memlog_reset(raft_memlog_t *l, int64_t start, int32_t start_epoch);

/* KIP-595 end offset for an epoch (Kafka's endOffsetForEpoch): the largest epoch
 * <= `epoch` that this log knows (entries, else the snapshot's, else 0 on an
 * empty prefix) goes to *found, and its end offset is returned (the offset of
 * the first entry of a later epoch, or the log end). *found is -1 when even the
 * snapshot is newer than `epoch`; the log start is returned then. */
int64_t raft_memlog_epoch_end(const raft_memlog_t *l, int32_t epoch, int32_t *found);

void raft_memlog_free(raft_memlog_t *l);

#endif
