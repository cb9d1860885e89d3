/* raft.h — pure, deterministic KRaft-style consensus core (DESIGN.md §2):
 * events that carry the time go in, an update saying what to persist, send and
 * apply comes out. No I/O, clocks, sockets or libraries: the caller owns those. */
#ifndef KEEL_RAFT_H
#define KEEL_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RAFT_MAX_VOTERS 7
#define RAFT_MAX_OBSERVERS 64 /* observers tracked by the leader for DescribeQuorum */
#define RAFT_NO_NODE (-1)
#define RAFT_MAX_NOTES 16      /* log lines one update may carry */
#define RAFT_NOTE_LEN 200

/* Limits the core enforces on entries, snapshots and fetch responses. They
 * must stay within what storage and wire can carry, or the core would accept
 * what the io layer then cannot write (static asserts on the storage/wire side
 * check each relation):
 *  - one entry is one record of one RecordBatch v2 (recbatch.h): a batch holds
 *    at most RECBATCH_MAX_BYTES = 16 MiB, minus its 61-byte header and the
 *    13 bytes that frame a record of up to 16 MiB (length varint 4,
 *    attributes 1, timestampDelta 1, offsetDelta 1, null key 1, value length
 *    varint 4, header count 1);
 *  - a snapshot is one snapfile (snapfile.h), at most SNAPFILE_MAX_DATA;
 *  - a fetch response carries at most WIRE_MAX_FETCH_ENTRIES (wire.h), which
 *    is defined as RAFT_MAX_FETCH_ENTRIES. */
#define RAFT_MAX_ENTRY_BYTES (16u * 1024u * 1024u - 61u - 13u)
#define RAFT_MAX_SNAPSHOT_BYTES (256u * 1024u * 1024u)
#define RAFT_MAX_FETCH_ENTRIES 65536

typedef enum raft_role {
    RAFT_UNATTACHED = 0, /* knows an epoch, no leader, has not voted or waits */
    RAFT_FOLLOWER,       /* fetching from a known leader of the current epoch */
    RAFT_PROSPECTIVE,    /* asking for pre-votes, epoch not raised */
    RAFT_CANDIDATE,      /* epoch raised, voted for itself, asking for votes */
    RAFT_LEADER,
    RAFT_RESIGNED,       /* leader that is shutting down or lost check-quorum */
    RAFT_OBSERVER        /* not a voter: fetches only, never votes or campaigns */
} raft_role_t;

const char *raft_role_name(raft_role_t role);

/* One log entry = one Kafka-style offset. `control` marks the leader-change
 * control record the core itself appends on election (not application data). */
typedef struct raft_entry {
    int64_t offset;
    int32_t epoch;
    bool control;
    uint32_t len;
    const uint8_t *data; /* inside the core: owned by it; in events: the caller's */
} raft_entry_t;

/* What must be durable before anything that depends on it is sent (DESIGN.md
 * §2 quorum-state). */
typedef struct raft_hard_state {
    int32_t epoch;
    int32_t voted_for; /* RAFT_NO_NODE if none in this epoch */
    int32_t leader_id; /* RAFT_NO_NODE if unknown */
} raft_hard_state_t;

/* A snapshot covers every offset below end_offset; last_epoch is the epoch of
 * entry end_offset-1. */
typedef struct raft_snapshot_id {
    int64_t end_offset;
    int32_t last_epoch;
} raft_snapshot_id_t;

/* ---- configuration -------------------------------------------------------- */

typedef enum raft_test_bug {
    RAFT_BUG_NONE = 0,
    RAFT_BUG_VOTE_FOR_SHORTER_LOG, /* grant votes ignoring log comparison */
    RAFT_BUG_COMMIT_WITHOUT_MAJORITY, /* leader HW = its own end offset */
    RAFT_BUG_TRUNCATE_BELOW_HW        /* follower truncates to fetch_offset 0 on divergence */
} raft_test_bug_t; /* test hooks only: the simulator proves its checker has teeth */

typedef struct raft_config {
    int32_t node_id;
    int32_t voters[RAFT_MAX_VOTERS]; /* static voter set; node_id not in it = observer */
    int n_voters;
    int election_timeout_ms;     /* T: candidate gives up after a random time in [T, 2T) */
    int fetch_timeout_ms;        /* follower without a successful fetch this long goes prospective
                                  * (after a further random 0..election_timeout_ms/2, see raft.c) */
    int election_backoff_max_ms; /* max backoff after a failed election */
    int append_linger_ms;        /* group commit: proposals wait at most this long */
    int fast_election_min_ms;    /* jittered delay before candidacy after the leader */
    int fast_election_max_ms;    /*   connection broke (RAFT_EV_PEER_DOWN) or it stalled
                                  *   (fetch_stall_ms); one slot of it per voter rank */
    int fetch_max_wait_ms;       /* leader long-polls an empty fetch up to this (500) */
    int fetch_stall_ms;          /* a fetch to the leader unanswered this long means it stalled
                                  * (paused, hung): treated like a broken connection (fast
                                  * election). 0 = off (wait for fetch_timeout_ms like KRaft);
                                  * else must exceed fetch_max_wait_ms (raft_new refuses it) */
    int request_timeout_ms;      /* requester retries a request unanswered this long */
    uint32_t fetch_max_bytes;    /* cap on entry bytes in one fetch response */
    uint32_t max_batch_entries;  /* group commit: flush when this many are pending */
    uint32_t snapshot_chunk_bytes;
    uint64_t seed; /* for timeouts; same seed + same events = same behaviour */
    raft_test_bug_t test_bug;
} raft_config_t;

/* Fills Kafka's defaults (DESIGN.md §2): election 1000, fetch 2000, backoff
 * 1000, linger 5, fast election 20..120, long poll 500, request timeout 2500;
 * and Keel's fetch stall 700 (long poll + 200). */
void raft_config_defaults(raft_config_t *cfg);

/* ---- messages (the io layer maps them to protobuf frames in wire/) --------- */

typedef enum raft_msg_type {
    RAFT_MSG_VOTE_REQ = 1,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_BEGIN_EPOCH_REQ,
    RAFT_MSG_BEGIN_EPOCH_RESP,
    RAFT_MSG_END_EPOCH_REQ,
    RAFT_MSG_END_EPOCH_RESP,
    RAFT_MSG_FETCH_REQ,
    RAFT_MSG_FETCH_RESP,
    RAFT_MSG_FETCH_SNAPSHOT_REQ,
    RAFT_MSG_FETCH_SNAPSHOT_RESP
} raft_msg_type_t;

const char *raft_msg_type_name(raft_msg_type_t t);

typedef enum raft_msg_error {
    RAFT_OK = 0,
    RAFT_ERR_NOT_LEADER,      /* receiver is not leader; leader_id/epoch are hints */
    RAFT_ERR_FENCED_EPOCH,    /* request epoch older than receiver's */
    RAFT_ERR_UNKNOWN_EPOCH,   /* request epoch newer than receiver's (receiver catches up) */
    RAFT_ERR_SNAPSHOT_NOT_FOUND,
    RAFT_ERR_INVALID_REQUEST
} raft_msg_error_t;

typedef struct raft_msg {
    raft_msg_type_t type;
    int32_t from;
    int32_t to;
    int32_t epoch;     /* sender's current epoch; for VOTE_REQ the epoch campaigned for */
    int32_t leader_id; /* sender's known leader of `epoch`, RAFT_NO_NODE if none */
    uint64_t rpc_id;   /* chosen by the requester, echoed in the response */
    int16_t error;     /* raft_msg_error_t, responses only */
    union {
        struct {
            bool pre_vote;
            int32_t last_epoch; /* candidate's log: (last epoch, end offset) */
            int64_t end_offset;
        } vote_req;
        struct {
            bool pre_vote;
            bool granted;
        } vote_resp;
        struct {
            int32_t successors[RAFT_MAX_VOTERS]; /* by log end, best first */
            int n_successors;
        } end_epoch_req;
        struct {
            int64_t fetch_offset;       /* = requester's durable log end */
            int32_t last_fetched_epoch; /* epoch of entry fetch_offset-1, 0 if none */
        } fetch_req;
        struct {
            int64_t high_watermark;
            int64_t log_start_offset;
            /* divergence (DESIGN.md §2): truncate to min(end, own end of that epoch) */
            int32_t diverging_epoch;        /* -1 if none */
            int64_t diverging_end_offset;   /* -1 if none */
            raft_snapshot_id_t snapshot_id; /* end_offset -1 if none: fetch the snapshot */
            const raft_entry_t *entries;    /* consecutive, starting at fetch_offset */
            int n_entries;
        } fetch_resp;
        struct {
            raft_snapshot_id_t snapshot_id;
            uint64_t position;
        } fetch_snapshot_req;
        struct {
            raft_snapshot_id_t snapshot_id;
            uint64_t position;
            uint64_t size; /* whole snapshot */
            const uint8_t *chunk;
            uint32_t chunk_len;
        } fetch_snapshot_resp;
    } u;
} raft_msg_t;

/* ---- events --------------------------------------------------------------- */

typedef enum raft_event_type {
    RAFT_EV_TICK = 1,  /* time passed; call at least every 10-50 ms */
    RAFT_EV_RECV,      /* a message arrived */
    RAFT_EV_PERSISTED, /* log below `persisted_end` is now durable (fsynced); beyond the log
                        * end: KL_EINVAL. Never report an fsync that began before a
                        * truncation (update.truncate_to): it may cover entries since replaced. */
    RAFT_EV_PROPOSE,   /* leader only: append application entries */
    RAFT_EV_PEER_DOWN, /* the connection to `peer` broke (EOF/RST/refused) */
    RAFT_EV_SNAPSHOT,  /* the application made a snapshot at snapshot_id (durable) */
    RAFT_EV_SHUTDOWN   /* graceful stop: a leader resigns with EndQuorumEpoch */
} raft_event_type_t;

typedef struct raft_event {
    raft_event_type_t type;
    int64_t now_ms; /* monotonic milliseconds; a time earlier than the last event's is taken as that one */
    union {
        const raft_msg_t *msg; /* RECV: valid during the call only */
        int64_t persisted_end; /* PERSISTED */
        struct {
            const uint8_t *const *data; /* PROPOSE: n payloads, copied by the core */
            const uint32_t *len;
            int n;
        } propose;
        int32_t peer; /* PEER_DOWN */
        struct {
            raft_snapshot_id_t id; /* SNAPSHOT: the core keeps `data` to serve FetchSnapshot */
            const uint8_t *data;
            uint64_t len;
        } snapshot;
    } u;
} raft_event_t;

/* ---- updates -------------------------------------------------------------- */

typedef struct raft_note {
    int level; /* 0 debug, 1 info, 2 warn, 3 error */
    char text[RAFT_NOTE_LEN];
} raft_note_t;

/* What the caller must do, in this order:
 *  1. if persist_state: write hard_state atomically and fsync it;
 *  2. if install_snapshot: make the snapshot durable and replace the
 *     application's state with it (the log is then empty from its end_offset);
 *  3. if truncate_to >= 0: truncate the log to end at that offset;
 *  4. append `entries` and fsync them, then feed RAFT_EV_PERSISTED (now or
 *     later; group commit falls out of doing one fsync for many entries);
 *  5. send `msgs`;
 *  6. apply committed entries in [apply_from, high_watermark) using
 *     raft_entry_at(); they stay readable until the next RAFT_EV_SNAPSHOT.
 * Pointers in the update are valid until the next call into the core. */
typedef struct raft_update {
    bool persist_state;
    raft_hard_state_t hard_state;

    bool install_snapshot;
    raft_snapshot_id_t snapshot_id;
    const uint8_t *snapshot_data;
    uint64_t snapshot_len;

    int64_t truncate_to; /* -1: none */
    const raft_entry_t *entries;
    int n_entries;

    const raft_msg_t *msgs;
    int n_msgs;

    int64_t apply_from;     /* first not-yet-reported committed offset */
    int64_t high_watermark; /* commit index: offsets below it are committed */

    /* PROPOSE result: offsets assigned to the proposed entries, all in
     * propose_epoch; an entry is committed only if the committed entry at that
     * offset still has that epoch. first_offset -1 when rejected. */
    int64_t propose_first_offset;
    int32_t propose_epoch;
    int propose_error; /* 0 or KL_ENOTLEADER / KL_EFULL / KL_ENOMEM */

    bool role_changed; /* role, epoch or leader changed in this step */

    raft_note_t notes[RAFT_MAX_NOTES];
    int n_notes;
} raft_update_t;

/* ---- lifecycle and queries ------------------------------------------------ */

/* State recovered from disk at start. Entries follow the snapshot (if any)
 * without gaps; the core copies everything. */
typedef struct raft_restore {
    raft_hard_state_t hard_state;
    raft_snapshot_id_t snapshot_id; /* end_offset 0 if none */
    const uint8_t *snapshot_data;
    uint64_t snapshot_len;
    const raft_entry_t *entries;
    int n_entries;
    int64_t high_watermark_hint; /* highest HW known durable-committed before restart, or 0 */
} raft_restore_t;

typedef struct raft raft_t;

/* `restore` NULL is a fresh node (epoch 0, no vote, empty log). Returns NULL on
 * bad config, allocation failure or an inconsistent restore: entries with gaps
 * or not starting at the snapshot end, decreasing epochs, entries or snapshot
 * newer than the stored epoch, oversized data. Restored entries are durable by
 * definition; the HW hint is clamped into [log start, restored log end]. A node
 * whose stored leader_id is itself comes back UNATTACHED (its followers' state
 * is gone); one that stored another voter as leader comes back its FOLLOWER but
 * has not heard from it yet, so it grants pre-votes until a fetch succeeds. */
raft_t *raft_new(const raft_config_t *cfg, const raft_restore_t *restore, int64_t now_ms);
void raft_free(raft_t *r);

/* The one way state changes. Returns 0, or a negative KL_E* code for an
 * invalid event (the event is then ignored and `out` is an empty update). */
int raft_step(raft_t *r, const raft_event_t *ev, raft_update_t *out);

raft_role_t raft_role(const raft_t *r);
int32_t raft_epoch(const raft_t *r);
int32_t raft_leader(const raft_t *r);
int32_t raft_node_id(const raft_t *r);
int64_t raft_log_start(const raft_t *r);   /* snapshot end offset, or 0 */
int64_t raft_log_end(const raft_t *r);     /* end offset including non-durable */
int64_t raft_durable_end(const raft_t *r);
int64_t raft_high_watermark(const raft_t *r);
int32_t raft_last_epoch(const raft_t *r);  /* epoch of the last entry (or snapshot) */
/* Entry at offset in [log_start, log_end), else NULL. */
const raft_entry_t *raft_entry_at(const raft_t *r, int64_t offset);
/* Earliest time the caller must send the next TICK for timers to be exact:
 * always > the last event's time and <= that time + 1000 ms. */
int64_t raft_next_deadline(const raft_t *r);

/* DescribeQuorum (leader's view; fields are -1 where unknown). */
typedef struct raft_replica_state {
    int32_t node_id;
    int64_t log_end_offset;
    int64_t last_fetch_ms;      /* -1 never */
    int64_t last_caught_up_ms;  /* -1 never: last time its end reached the leader's end at fetch time */
} raft_replica_state_t;

typedef struct raft_quorum_info {
    int32_t leader_id;
    int32_t epoch;
    int64_t high_watermark;
    raft_replica_state_t voters[RAFT_MAX_VOTERS];
    int n_voters;
    raft_replica_state_t observers[RAFT_MAX_OBSERVERS];
    int n_observers;
} raft_quorum_info_t;

/* Fills `out`; returns KL_ENOTLEADER (and fills leader_id/epoch) when this
 * node is not the leader. */
int raft_describe(const raft_t *r, int64_t now_ms, raft_quorum_info_t *out);

#endif
