/* replica_epochs.h — the leader-epoch cache of one partition replica (DESIGN.md §4 "Leader epochs", KIP-101, KIP-279): epoch -> start offset, and the truncation rule built on it. */
#ifndef KEEL_REPLICA_EPOCHS_H
#define KEEL_REPLICA_EPOCHS_H

#include <stdbool.h>
#include <stdint.h>

#define REPLICA_NO_EPOCH (-1)
#define REPLICA_NO_OFFSET (-1)
/* Entries one cache may hold. Each is a leader change that wrote to this
 * partition and whose data retention has not yet deleted; dropping the oldest
 * to make room would make end-offset answers for old epochs wrong (a follower
 * could then keep a diverged suffix), so a full cache refuses (KL_EFULL). */
#define REPLICA_MAX_EPOCHS 65536

/* Why it exists (KIP-101): a follower that truncated to its high watermark
 * after a leader change could lose committed data or keep a diverged suffix.
 * Every batch carries the leader epoch that appended it; each replica keeps
 * where each epoch starts, so the leader can tell a follower exactly where
 * their logs stop agreeing. This is the `leader-epoch-checkpoint` file
 * (DESIGN.md §5) in memory. */
typedef struct replica_epoch_entry {
    int32_t epoch;
    int64_t start_offset; /* first offset written in this epoch */
} replica_epoch_entry_t;

/* Invariant: epochs strictly increase and start offsets strictly increase
 * (an epoch that wrote nothing is dropped when the next one starts at the same
 * offset, as Kafka's LeaderEpochFileCache.assign does). */
typedef struct replica_epochs {
    replica_epoch_entry_t *e;
    int n, cap;
} replica_epochs_t;

void replica_epochs_init(replica_epochs_t *c);
void replica_epochs_free(replica_epochs_t *c);
/* Replaces the contents with n entries read from the checkpoint. KL_EINVAL
 * (contents unchanged) unless epochs and start offsets are >= 0 and strictly
 * increase; KL_EFULL beyond REPLICA_MAX_EPOCHS; KL_ENOMEM. */
int replica_epochs_load(replica_epochs_t *c, const replica_epoch_entry_t *e, int n);

/* Records that `epoch` starts at `start_offset` (a new leader at its log end;
 * a follower at the base offset of every appended batch). The latest epoch
 * again: no change. A newer epoch: appended, after dropping a latest entry
 * that starts at the same offset (that epoch wrote nothing). An older epoch
 * or a start before the latest entry's: KL_EINVAL (the caller truncates
 * first). KL_EFULL, KL_ENOMEM: unchanged. */
int replica_epochs_assign(replica_epochs_t *c, int32_t epoch, int64_t start_offset);

/* Latest epoch, REPLICA_NO_EPOCH when empty. */
int32_t replica_epochs_latest(const replica_epochs_t *c);
/* Epoch of the record at `offset`: the entry with the largest start <= offset;
 * REPLICA_NO_EPOCH if none. A follower sends epoch_at(log end - 1) as its last
 * fetched epoch. */
int32_t replica_epochs_epoch_at(const replica_epochs_t *c, int64_t offset);

/* Kafka's OffsetsForLeaderEpoch / KIP-595 diverging-epoch answer for a log
 * ending at log_end: the largest epoch <= `epoch` that we have, and where it
 * ends (the start of our next epoch, or log_end for our latest epoch).
 *   epoch == latest             -> (latest, log_end)
 *   floor <= epoch < next entry -> (floor, next entry's start)
 *   epoch below every entry     -> (epoch, first entry's start): retention
 *                                  removed it, so the asker drops all of it
 *   epoch < 0, above the latest, or an empty cache -> (-1, -1) */
void replica_epochs_end_offset(const replica_epochs_t *c, int32_t epoch, int64_t log_end, int32_t *out_epoch,
                               int64_t *out_end);

/* The log was truncated to end at `end` (exclusive): entries starting at or
 * after it go. Call only for a real truncation (end < log end): a new leader's
 * entry starts at its log end and must survive a no-op. */
void replica_epochs_truncate_end(replica_epochs_t *c, int64_t end);
/* The log start moved to `start` (retention): entries wholly below it go, and
 * the entry covering it now starts there (Kafka's truncateFromStart). */
void replica_epochs_truncate_start(replica_epochs_t *c, int64_t start);

/* ---- follower divergence rule (KIP-279, DESIGN.md §4) ----------------------- */

typedef struct replica_truncation {
    int64_t offset; /* truncate the log to end here (may equal the log end: nothing to cut) */
    bool complete;  /* we hold the leader's epoch, so the logs agree below `offset`; false: we
                     * lack that epoch, cut to the end of our own older one and fetch again
                     * (the leader then answers for our new last epoch) */
} replica_truncation_t;

/* The leader answered a fetch with (diverging epoch, its end offset for it).
 * Truncation offset = min(leader's end offset, our own end offset for that
 * epoch, our log end) — never blindly our HW (DESIGN.md §4). KL_EINVAL for a
 * malformed answer (negative epoch or offset). KL_ESTATE if the result is
 * below our HW: committed records never change, so a leader telling us to cut
 * them is a bug to surface, not to hide. */
int replica_epochs_truncation(const replica_epochs_t *own, int64_t own_log_end, int64_t own_hw,
                              int32_t leader_epoch, int64_t leader_end_offset, replica_truncation_t *out);

#endif
