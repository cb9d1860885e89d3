/* qstate.h — the `quorum-state` file (DESIGN.md §2): epoch, vote and leader, durable before a vote is answered. */
#ifndef KEEL_QSTATE_H
#define KEEL_QSTATE_H

#include "keel/raft.h"

#define QSTATE_FILE "quorum-state"
#define QSTATE_MAX_BYTES 1024 /* the file is ~80 bytes; anything bigger is not ours */

/* Replaces dir/quorum-state atomically (temp file, fsync, rename, fsync dir).
 * KL_EINVAL for an impossible state (epoch < 0, ids < -1). */
int qstate_write(const char *dir, const raft_hard_state_t *hs);
/* KL_ENOENT if the file does not exist (a fresh node), KL_ECORRUPT (logged
 * with the reason) if it exists but is not exactly what qstate_write writes
 * or its CRC does not match. A corrupt file is never treated as absent: a
 * voter that forgot its vote could vote twice in one epoch. */
int qstate_read(const char *dir, raft_hard_state_t *hs);

#endif
