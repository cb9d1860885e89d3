/* raft_internal.h — state and helpers shared by the raft core's files (not part of the API). */
#ifndef KEEL_RAFT_INTERNAL_H
#define KEEL_RAFT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/raft.h"
#include "keel/rng.h"
#include "raft_memlog.h"

/* ---- limits ---------------------------------------------------------------- */
#define RAFT_MAX_PENDING_ENTRIES 65536u          /* proposals buffered for group commit */
#define RAFT_MAX_PENDING_BYTES (64u << 20)
#define RAFT_MAX_OFFSET (INT64_MAX / 4)          /* offsets beyond this are malformed input */
#define RAFT_RETRY_BACKOFF_MS 50                 /* before re-fetching after an error or a broken connection */
#define RAFT_CHECK_QUORUM_PERCENT 150            /* check-quorum window: 1.5 x fetch timeout (DESIGN.md §2) */
#define RAFT_OBSERVER_WINDOW_TIMEOUTS 3          /* describe lists observers seen within 3 fetch timeouts */
#define RAFT_IDLE_TICK_MS 1000                   /* raft_next_deadline is never further away than this */
#define RAFT_NEVER INT64_MAX
#define RAFT_NO_CONTACT INT64_MIN                /* leader_contact_ms: not heard from this leader itself */
#define RAFT_FETCH_JITTER_DIV 2                  /* follower fetch timeout + up to election timeout / 2 */
#define RAFT_PREVOTE_REASKS 4                    /* re-asks per voter per pre-vote round, see raft_elect.c */

/* Leader-change control record (KIP-595 LeaderChangeMessage, reduced), big-endian:
 *   u8 version (1) | i32 leader id | i32 epoch | u8 n | n x i32 voter ids */
#define RAFT_LEADER_CHANGE_VERSION 1
#define RAFT_LEADER_CHANGE_MAX_LEN (10 + 4 * RAFT_MAX_VOTERS)

enum { RAFT_VOTE_NONE = 0, RAFT_VOTE_GRANTED, RAFT_VOTE_REJECTED };

/* A fetch the leader parks until there is something to say (long poll, DESIGN.md §2). */
typedef struct raft_held_fetch {
    bool active;
    uint64_t rpc_id;
    int64_t fetch_offset;
    int32_t last_fetched_epoch;
    int64_t deadline_ms; /* fetch_max_wait_ms after arrival */
} raft_held_fetch_t;

/* What this node tracks about another node: as leader, its replication state
 * (HW, check-quorum, DescribeQuorum, long polls, Begin/EndQuorumEpoch
 * delivery); as prospective/candidate, its answer in the current round. */
typedef struct raft_peer {
    int32_t id;
    int64_t end_offset;     /* fetch offset of its last valid fetch in this epoch, -1 none */
    int64_t last_fetch_ms;  /* -1: none in this epoch */
    int64_t caught_up_ms;   /* -1: never reached the leader's durable end */
    int64_t hw_sent;        /* HW in our last fetch response to it, -1 none */
    raft_held_fetch_t held;
    bool epoch_acked;       /* acknowledged Begin/EndQuorumEpoch, or fetched, in this epoch */
    int64_t epoch_sent_ms;  /* last Begin/EndQuorumEpoch sent to it, -1 none */
    uint64_t vote_rpc;      /* rpc id of this round's Vote request to it */
    int vote;               /* RAFT_VOTE_* */
    int64_t reask_ms;       /* pre-vote: ask it again at this time (RAFT_NEVER: no) */
    int reasks;             /* pre-vote: times asked again in this round */
} raft_peer_t;

typedef enum raft_fetch_kind { RAFT_FETCH_LOG, RAFT_FETCH_SNAPSHOT } raft_fetch_kind_t;

struct raft {
    raft_config_t cfg;
    kl_rng_t rng;
    int64_t now;
    int self_idx; /* index in cfg.voters, -1 for an observer */
    int majority;

    /* hard state (DESIGN.md §2 quorum-state) and what the caller last persisted */
    int32_t epoch, voted_for, leader_id;
    raft_hard_state_t hs_disk;

    raft_role_t role;
    int64_t timer_ms;           /* the role's timer; see run_timers() in raft.c */
    bool backing_off;           /* prospective/candidate between rounds */
    bool resigned_check_quorum; /* RESIGNED by check-quorum (turns UNATTACHED) rather than shutdown */
    bool stopping;              /* RAFT_EV_SHUTDOWN seen: never campaign or fetch again */
    /* What we know of leader_id's health: kept across a pre-vote round (the
     * leader stays), forgotten when the leader or the epoch changes. */
    bool leader_down;           /* connection to the leader broke, or it disowned the epoch */
    bool leader_resigned;       /* EndQuorumEpoch from the leader of this epoch */
    int64_t leader_contact_ms;  /* last successful fetch from (or BeginQuorumEpoch of) the
                                 * leader itself; RAFT_NO_CONTACT if we only heard of it */

    /* log, high watermark, snapshot */
    raft_memlog_t log;
    int64_t hw;
    int64_t applied;   /* first committed offset not yet reported in an update */
    int64_t leader_hw; /* follower/observer: HW in the last valid fetch response */
    raft_snapshot_id_t snap; /* latest snapshot (end_offset 0: none) */
    uint8_t *snap_data;
    uint64_t snap_len;

    /* leader */
    int64_t epoch_start;     /* offset of this leader's leader-change entry */
    int64_t leader_since_ms;
    raft_peer_t voters[RAFT_MAX_VOTERS];
    raft_peer_t observers[RAFT_MAX_OBSERVERS];
    int n_observers;
    raft_entry_t *pending; /* proposals with offsets assigned, not yet appended */
    uint32_t n_pending, cap_pending;
    uint64_t pending_bytes;
    int64_t pending_since_ms;

    /* follower/observer: one fetch (or snapshot fetch) in flight at a time */
    struct {
        bool active;
        raft_fetch_kind_t kind;
        uint64_t rpc_id;
        int32_t to;
        int64_t sent_ms;
    } inflight;
    int64_t fetch_ready_ms; /* no fetch before this (backoff) */
    int rr;                 /* observer without a leader: voter index asked next */
    struct {
        bool active;
        raft_snapshot_id_t id;
        uint8_t *buf;
        uint64_t size, pos;
    } snapfetch;

    uint64_t next_rpc;

    /* the update being built by the current raft_step */
    raft_update_t *out;
    raft_msg_t *msgs;
    int64_t *msg_entries_from; /* fetch responses: offset of the first entry, patched in at the end */
    uint32_t n_msgs, cap_msgs;
    uint32_t dropped_msgs;
    raft_msg_t scratch_msg; /* target of messages that could not be queued (lost like on a network) */
    int64_t emit_from;      /* first offset appended in this step, -1 none */
    bool force_persist;
};

/* raft.c: update building, role transitions, shared helpers */
void raft_note(raft_t *r, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
raft_msg_t *raft_send_request(raft_t *r, raft_msg_type_t type, int32_t to);
raft_msg_t *raft_send_response(raft_t *r, int32_t to, uint64_t rpc_id, raft_msg_type_t type, int16_t error);
void raft_attach_entries(raft_t *r, raft_msg_t *m, int64_t from, int n);
void raft_emit_from(raft_t *r, int64_t offset);
void raft_reset_peer(raft_peer_t *p, int32_t id);
int raft_voter_index(const raft_t *r, int32_t id);
int64_t raft_majority_value(const raft_t *r, int64_t *v);
bool raft_is_voter(const raft_t *r);
bool raft_serves_fetches(const raft_t *r);
bool raft_can_campaign(const raft_t *r);
void raft_leader_contact(raft_t *r);
int64_t raft_election_timeout(raft_t *r);
int64_t raft_fetch_deadline(raft_t *r);
int64_t raft_fast_election_delay(raft_t *r);
int32_t raft_durable_last_epoch(const raft_t *r);

void raft_become_unattached(raft_t *r, int32_t epoch, const char *why);
void raft_become_follower(raft_t *r, int32_t epoch, int32_t leader, const char *why);
void raft_become_prospective(raft_t *r, const char *why);
void raft_become_candidate(raft_t *r, const char *why);
void raft_become_leader(raft_t *r);
void raft_resign(raft_t *r, bool shutdown, const char *why);
void raft_forget_leader(raft_t *r, const char *why);
void raft_leader_lost(raft_t *r, const char *why);
void raft_leader_stalled(raft_t *r);

/* raft_elect.c: Vote (with KIP-996 pre-vote), Begin/EndQuorumEpoch, check-quorum */
void raft_start_round(raft_t *r, const char *why);
void raft_round_lost(raft_t *r, const char *why);
void raft_on_vote_req(raft_t *r, const raft_msg_t *m);
void raft_on_vote_resp(raft_t *r, const raft_msg_t *m);
void raft_on_begin_epoch_req(raft_t *r, const raft_msg_t *m);
void raft_on_begin_epoch_resp(raft_t *r, const raft_msg_t *m);
void raft_on_end_epoch_req(raft_t *r, const raft_msg_t *m);
void raft_on_end_epoch_resp(raft_t *r, const raft_msg_t *m);
void raft_send_end_epoch(raft_t *r, int idx);
void raft_elect_timers(raft_t *r);
int64_t raft_elect_deadline(const raft_t *r);

/* raft_repl.c: Fetch/FetchSnapshot (both sides), proposals, HW, snapshots */
void raft_update_hw(raft_t *r);
void raft_on_fetch_req(raft_t *r, const raft_msg_t *m);
void raft_on_fetch_resp(raft_t *r, const raft_msg_t *m);
void raft_on_fetch_snapshot_req(raft_t *r, const raft_msg_t *m);
void raft_on_fetch_snapshot_resp(raft_t *r, const raft_msg_t *m);
void raft_on_propose(raft_t *r, const raft_event_t *ev);
void raft_on_persisted(raft_t *r, int64_t persisted_end);
int raft_on_snapshot(raft_t *r, const raft_event_t *ev);
void raft_on_peer_down_repl(raft_t *r, int32_t peer);
void raft_flush_pending(raft_t *r);
void raft_drop_pending(raft_t *r);
void raft_answer_held_fetches(raft_t *r, bool all);
bool raft_leader_fetch_overdue(const raft_t *r);
void raft_repl_timers(raft_t *r);
void raft_repl_pump(raft_t *r);
int64_t raft_repl_deadline(const raft_t *r);
int raft_validate_propose(const raft_event_t *ev);
int raft_validate_snapshot(const raft_t *r, const raft_event_t *ev);
int raft_validate_fetch_resp(const raft_msg_t *m);

#endif
