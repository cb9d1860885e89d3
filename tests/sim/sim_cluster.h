/* sim_cluster.h — the simulated cluster's internals shared by the event loop, the invariant checker and the scenarios. */
#ifndef KEEL_SIM_CLUSTER_H
#define KEEL_SIM_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

#define SIM_TICK_MAX_GAP_MS 50     /* raft.h: TICK at least every 10-50 ms (some seeds tick only at
                                      raft_next_deadline, which the core keeps within 1 s) ... */
#define SIM_TICK_JITTER_MS 3       /* ... and timers fire a little late, never early */
#define SIM_FULL_SCAN_STEPS 20000  /* whole-log consistency scan this often */
#define SIM_PAYLOAD_MAX 48
#define SIM_MAX_UNCOMMITTED 300    /* background proposals pause while the leader has this many uncommitted */
#define SIM_SNAPSHOT_PAD_MAX 400   /* snapshot bytes beyond the header: forces chunking */

/* The simulated disk of one node: what survives a crash is hs, the snapshot
 * and log[0 .. durable_end - start). Truncation is durable at once (the
 * storage layer truncates and fsyncs before returning); appends only after a
 * simulated fsync, which covers what was written before it started (and,
 * sometimes, appends that arrive before it really begins: group commit). */
typedef struct sim_disk {
    raft_hard_state_t hs;
    raft_snapshot_id_t snap; /* end_offset 0: none */
    uint8_t *snap_data;
    uint64_t snap_len;
    raft_entry_t *log;       /* log[i].offset == snap.end_offset + i; data owned */
    int64_t n, cap;
    int64_t durable_end;
    bool fsync_pending;
    int64_t fsync_covers;    /* the pending fsync makes the log below this durable */
    int64_t hw_checkpoint;   /* last HW the io layer made durable (restart hint) */
} sim_disk_t;

/* What the harness last saw a voter ask for, to judge the vote it gets back. */
typedef struct sim_vote_req {
    bool seen;
    bool pre_vote;
    int32_t epoch;
    int32_t last_epoch;
    int64_t end_offset;
} sim_vote_req_t;

typedef struct sim_node {
    int32_t id;
    int idx;
    bool voter;
    raft_t *r;                /* NULL while down */
    uint32_t incarnation;     /* bumped on crash: stale events and messages die */
    int64_t next_tick;
    int64_t paused_until;     /* 0: running */
    struct sim_ev *held;      /* events that arrived while paused, delivered on resume */
    int64_t n_held, cap_held;
    int64_t restart_at;       /* -1: none (while down) */
    int64_t stop_at;          /* -1: none; graceful shutdown ends in a stop */
    sim_disk_t disk;
    /* toy state machine: running hash of every applied entry */
    int64_t applied;
    uint64_t sm_hash;
    /* checker state */
    int64_t hw;               /* last high watermark reported while up */
    int64_t checked_upto;     /* log below this was matched against the committed map */
    raft_role_t role;
    int32_t epoch;
    int32_t leader;
    int32_t *vote_granted;    /* epoch -> candidate granted a real vote, 0 none */
    int64_t n_vote_granted;
    sim_vote_req_t vote_req[SIM_MAX_NODES][2]; /* by candidate index, pre-vote */
    int snapshot_installs;
    int64_t truncated_entries; /* total removed by truncations */
} sim_node_t;

typedef struct sim_msg {
    raft_msg_t m;          /* pointers point into blob */
    uint32_t from_inc, to_inc;
    void *blob;
} sim_msg_t;

/* FSYNC makes the log durable; PERSISTED tells the core, usually at once but
 * sometimes later (an io thread's completion still queued when the process dies). */
typedef enum sim_ev_kind { SIM_EV_DELIVER = 1, SIM_EV_FSYNC, SIM_EV_PERSISTED, SIM_EV_PEER_DOWN } sim_ev_kind_t;

struct sim_ev {
    int64_t at;
    uint64_t seq;
    sim_ev_kind_t kind;
    int node;           /* target index */
    uint32_t inc;       /* target incarnation when queued */
    int32_t peer;       /* PEER_DOWN */
    int64_t persisted;  /* PERSISTED */
    sim_msg_t *msg;     /* DELIVER */
};
typedef struct sim_ev sim_ev_t;

/* One committed offset as first reported by any node: must never change. */
typedef struct sim_committed {
    bool set;
    bool control;
    int32_t epoch;
    int32_t commit_epoch; /* epoch of the node that first reported it committed */
    uint32_t len;
    uint64_t hash;
    int32_t first_node;
    int64_t first_at;
} sim_committed_t;

typedef struct sim_state_at {
    bool set;
    uint64_t hash; /* state machine after applying every entry below the offset */
} sim_state_at_t;

typedef struct sim_promise {
    int64_t offset;
    int32_t epoch;
    uint64_t hash;
} sim_promise_t;

typedef struct sim_net {
    uint32_t drop_pm, dup_pm, slow_pm; /* per mille */
    int delay_min_ms, delay_max_ms, slow_max_ms;
} sim_net_t;

typedef struct sim {
    sim_params_t p;
    sim_result_t *res;
    kl_rng_t rng;
    int64_t now;
    uint64_t seq;
    sim_node_t nodes[SIM_MAX_NODES];
    int n_nodes, n_voters;
    int32_t voter_ids[SIM_MAX_VOTERS];
    raft_config_t base_cfg;

    sim_ev_t *heap;
    int n_heap, cap_heap;
    bool link[SIM_MAX_NODES][SIM_MAX_NODES]; /* i can send to j */
    bool conn[SIM_MAX_NODES][SIM_MAX_NODES]; /* a connection exists (PEER_DOWN on break) */
    sim_net_t net;
    bool disk_slow;
    int tick_gap_ms; /* per seed: TICK at the core's deadline or after this, whichever is first */

    /* background load */
    int64_t next_propose_at, next_snapshot_at; /* -1: off */
    int propose_gap_max_ms, snapshot_gap_max_ms;
    uint64_t payload_counter;

    /* checker */
    sim_committed_t *committed;
    int64_t n_committed;
    sim_state_at_t *state_at;
    int64_t n_state_at;
    int32_t *leader_of;          /* epoch -> leader id, 0 none */
    int64_t n_leader_of;
    int64_t majority_verified;   /* a durable majority was shown for every HW up to this */
    sim_promise_t *promises;
    int64_t n_promises, cap_promises;
    uint64_t last_full_scan;
    bool failed;
} sim_t;

/* ---- sim_cluster.c: lifecycle, event loop, io layer ---------------------- */
void sim_init(sim_t *s, const sim_params_t *p, sim_result_t *res);
void sim_destroy(sim_t *s);
/* Processes everything due up to and including `until` (stops early on failure). */
void sim_run_until(sim_t *s, int64_t until);
void sim_trace(sim_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t sim_rnd(sim_t *s, int64_t lo, int64_t hi_incl); /* uniform, both ends included */
bool sim_per_mille(sim_t *s, uint32_t pm);

void sim_crash(sim_t *s, sim_node_t *n, int64_t restart_at);
void sim_restart(sim_t *s, sim_node_t *n);
void sim_pause(sim_t *s, sim_node_t *n, int64_t until);
void sim_shutdown(sim_t *s, sim_node_t *n, int64_t stop_at, int64_t restart_at);
/* Cuts i->j (and j->i if symmetric); symmetric cuts break connections (PEER_DOWN). */
void sim_cut(sim_t *s, int i, int j, bool symmetric);
/* The TCP connection between i and j resets (both see PEER_DOWN); links stay up. */
void sim_reset_connection(sim_t *s, int i, int j);
void sim_isolate(sim_t *s, int i);
void sim_heal_links(sim_t *s);
/* Everything up, running, connected, lossless: the start of the liveness check. */
void sim_heal_all(sim_t *s);
/* Proposes n payloads on node; returns the assigned first offset or -1. */
int64_t sim_propose(sim_t *s, sim_node_t *n, int count, uint64_t *first_hash, int32_t *epoch);
void sim_take_snapshot(sim_t *s, sim_node_t *n);

bool sim_node_running(const sim_node_t *n);
sim_node_t *sim_leader(sim_t *s); /* running leader of the highest epoch, or NULL */

#define SIM_PROPOSE_MAX 4

void sim_grow(void **arr, int64_t *cap, int64_t need, size_t elem);
void *sim_xmalloc(size_t n);

/* ---- sim_check.c: invariants --------------------------------------------- */
void sim_fail(sim_t *s, sim_failure_t kind, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
uint64_t sim_hash_bytes(const uint8_t *p, size_t n);
uint64_t sim_sm_initial(void);
uint64_t sim_sm_apply(uint64_t h, const raft_entry_t *e);
/* Called by the io layer at the points named in raft.h's raft_update_t. */
void sim_check_hard_state(sim_t *s, sim_node_t *n, const raft_hard_state_t *hs);
void sim_check_truncate(sim_t *s, sim_node_t *n, int64_t to);
void sim_check_snapshot_install(sim_t *s, sim_node_t *n, raft_snapshot_id_t id, const uint8_t *data,
                                uint64_t len, uint64_t *sm_hash);
void sim_check_append(sim_t *s, sim_node_t *n, const raft_entry_t *e);
void sim_check_send(sim_t *s, sim_node_t *n, const raft_msg_t *m);
void sim_check_applied(sim_t *s, sim_node_t *n, int64_t offset_end, uint64_t sm_hash);
void sim_check_after_step(sim_t *s, sim_node_t *n);
void sim_check_full_scan(sim_t *s);
void sim_check_promises(sim_t *s);
void sim_note_vote_request(sim_t *s, sim_node_t *voter, const raft_msg_t *m);
bool sim_is_committed_as(const sim_t *s, int64_t offset, int32_t epoch, uint64_t hash);
const raft_entry_t *sim_disk_entry(const sim_disk_t *d, int64_t offset);
int64_t sim_disk_end(const sim_disk_t *d);
/* Epoch of the entry before `end` (the snapshot's at the log start). */
void sim_disk_log_at(const sim_disk_t *d, int64_t end, int32_t *last_epoch);
/* Snapshot bytes: a header with (end, state hash) and deterministic padding. */
uint8_t *sim_snapshot_encode(int64_t end, uint64_t sm_hash, uint64_t *len);
int sim_snapshot_decode(const uint8_t *data, uint64_t len, int64_t *end, uint64_t *sm_hash);

#endif
