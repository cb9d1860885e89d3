/* quorum.h — the Raft io driver: runs the pure core (raft.h) over the real
 * disk (raftlog, quorum-state, snapshots) and network (net.h), in the order
 * raft_update_t demands. Used by controllers (voters) and, later, brokers
 * (observers). */
#ifndef KEEL_QUORUM_H
#define KEEL_QUORUM_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/buf.h"
#include "keel/config.h"
#include "keel/net.h"
#include "keel/raft.h"

#define QUORUM_MAX_PENDING_INBOUND 512 /* Raft requests awaiting the core's answer */
#define QUORUM_MAX_PENDING_PER_CONN 16 /* of those, from one inbound connection */
#define QUORUM_PENDING_MAX_AGE_MS 30000 /* answers the core never gave are dropped after this */
#define QUORUM_SHUTDOWN_WAIT_MS 3000    /* a resigning leader waits this long for a successor */
#define QUORUM_LOG_DIR_NAME "__cluster_metadata-0" /* the metadata log's partition dir, as in KRaft */

typedef struct quorum quorum_t;

/* The state machine above the log. All callbacks run on the loop thread,
 * inside a step of the core: they must not call quorum_propose,
 * quorum_snapshot or quorum_shutdown (KL_ASSERT). */
typedef struct quorum_sm {
    /* A committed entry, in offset order, exactly once per process lifetime
     * (entries below a restored snapshot are never replayed). */
    void (*apply)(void *arg, const raft_entry_t *e);
    /* Replace the whole state with a snapshot (at start and when a leader
     * sends one). Returns 0, or KL_ECORRUPT leaving the state unchanged
     * (a leader's snapshot is restored before it is stored, so one that
     * does not decode stops the process with the disk untouched). */
    int (*restore)(void *arg, raft_snapshot_id_t id, const uint8_t *data, uint64_t len);
    /* Role, epoch or leader changed. */
    void (*role_changed)(void *arg, raft_role_t role, int32_t epoch, int32_t leader_id);
    void *arg;
} quorum_sm_t;

typedef struct quorum_options {
    const kl_config_t *cfg;   /* keeld config (kcfg schema) */
    const char *metadata_dir; /* formatted, verified by the caller */
    const char *cluster_id;
    net_loop_t *loop;
    net_tls_t *client_tls;    /* for connections to other voters; NULL = plaintext */
    quorum_sm_t sm;
} quorum_options_t;

int quorum_open(const quorum_options_t *opt, quorum_t **out, char *err, size_t errlen);
/* Closes files and peers; no callbacks afterwards. */
void quorum_close(quorum_t *q);

/* Handles an inbound Raft request (VOTE, BEGIN/END_QUORUM_EPOCH, FETCH_RAFT,
 * FETCH_SNAPSHOT); takes ownership of req. */
void quorum_on_request(quorum_t *q, net_conn_id_t conn, wire_msg_t *req);
/* The inbound connection closed: forget requests pending on it. */
void quorum_on_conn_closed(quorum_t *q, net_conn_id_t conn);

/* Leader only: append one record; the offset and epoch returned identify it (it is
 * committed when applied with that epoch). KL_ENOTLEADER otherwise. Not from a
 * quorum_sm callback. */
int quorum_propose(quorum_t *q, const uint8_t *data, uint32_t len, int64_t *offset, int32_t *epoch);
/* Records a snapshot of the applied state covering offsets below end_offset
 * (log start < end_offset <= quorum_applied_end, else KL_EINVAL): written
 * durably, then the log segments below it and older snapshots are deleted.
 * Not from a quorum_sm callback. */
int quorum_snapshot(quorum_t *q, int64_t end_offset, const uint8_t *data, uint64_t len);

/* Fills a DescribeQuorum response, or a KL_ENOTLEADER error with the
 * leader's address. */
void quorum_describe(quorum_t *q, wire_msg_t *resp);

/* Graceful stop (DESIGN.md §2): a leader resigns with EndQuorumEpoch and
 * waits (bounded) for a successor; `done` runs once when it may exit (maybe
 * before this returns). Later calls are ignored. */
void quorum_shutdown(quorum_t *q, void (*done)(void *arg), void *arg);

/* When to snapshot the applied state, for controllers and brokers alike
 * (metadata.log.max.record.bytes.between.snapshots,
 * metadata.log.max.snapshot.interval.ms). */
#define QUORUM_SNAPSHOT_RETRY_MS 5000 /* after a failed snapshot (e.g. disk full), wait this long */
typedef struct quorum_snapshot_policy {
    int64_t bytes;       /* snapshot after this many new log bytes */
    int64_t interval_ms; /* and at least this often when anything changed (0 = off) */
    int64_t last_end;    /* end offset of the newest snapshot (also one restored) */
    int64_t last_ms;
    int64_t retry_ms;    /* no attempt before this */
} quorum_snapshot_policy_t;

void quorum_snapshot_policy_init(quorum_snapshot_policy_t *p, const kl_config_t *cfg, int64_t now_ms);
/* When the policy says so, encodes the state applied below
 * quorum_applied_end (encode appends it to out) and records it with
 * quorum_snapshot. 0 when nothing was due or it worked; else the error,
 * logged, and retried after QUORUM_SNAPSHOT_RETRY_MS. Not from a quorum_sm
 * callback. */
int quorum_maybe_snapshot(quorum_t *q, quorum_snapshot_policy_t *p, int64_t now_ms,
                          int (*encode)(void *arg, kl_buf_t *out), void *arg);

const raft_t *quorum_raft(const quorum_t *q);
int64_t quorum_applied_end(const quorum_t *q); /* offsets below it are applied */
int64_t quorum_log_bytes_since_snapshot(const quorum_t *q);

#endif
