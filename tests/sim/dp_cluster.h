/* dp_cluster.h — the data-plane simulator's internals shared by its event loop, controller, brokers, clients, checker and scenario. */
#ifndef KEEL_DP_CLUSTER_H
#define KEEL_DP_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "dp.h"
#include "keel/meta.h"
#include "keel/meta_ctl.h"
#include "keel/replica.h"
#include "keel/rng.h"

/* ---- shape and limits ------------------------------------------------------- */

#define DP_CTRLS 3              /* controller endpoints; one at a time is active */
#define DP_MAX_BROKERS 5
#define DP_MAX_PARTS 3
#define DP_MAX_PRODUCERS 4
#define DP_MAX_CONSUMERS 2
#define DP_MAX_CLIENTS (DP_MAX_PRODUCERS + DP_MAX_CONSUMERS)
#define DP_MAX_NODES (DP_CTRLS + DP_MAX_BROKERS + DP_MAX_CLIENTS)
#define DP_BROKER_ID_BASE 100   /* brokers are 101.. (DESIGN.md §7) */
#define DP_MAX_CALLS 24         /* outstanding requests per node */
#define DP_WINDOW 5             /* produce batches in flight per producer (REPLICA_PRODUCER_BATCHES) */
#define DP_FETCH_MAX_BATCHES 8  /* batches per fetch response */
#define DP_MAX_STEPS 3000000    /* per run: a loop that never lets time advance is a bug */

/* Timings in virtual ms: Kafka's, scaled down so a seed covers many faults. */
#define DP_RPC_TIMEOUT_MS 400
#define DP_HEARTBEAT_MS 100
#define DP_SESSION_MS 1000
#define DP_DISCONNECT_GRACE_MS 200
#define DP_CTRL_TICK_MS 50
#define DP_RECONCILE_MS 1000
#define DP_REBALANCE_MS 2500
#define DP_RETRY_MS 50

/* ---- records on the simulated disk ---------------------------------------------- */

/* One record batch: the header the replica core reads plus the payload's
 * identity (a value id unique per produced batch; its records are that
 * value's `last_offset_delta + 1` parts). */
typedef struct dp_batch {
    replica_batch_t h;
    int64_t value;
} dp_batch_t;

/* What a broker's log dir holds for one partition. A process crash keeps all
 * of it (the page cache survives kill -9): only the replica core's memory is
 * lost. The HW checkpoint is written periodically, so it may lag. */
typedef struct dp_disk {
    bool exists;
    dp_batch_t *b;
    int64_t n, cap;
    int64_t log_start;
    int64_t hw_ckpt;
    replica_epoch_entry_t *epochs; /* leader-epoch-checkpoint */
    int n_epochs, cap_epochs;
} dp_disk_t;

/* ---- the network ------------------------------------------------------------------ */

typedef enum dp_msg_type {
    DP_REGISTER = 1,
    DP_HEARTBEAT,
    DP_METADATA, /* an observer's fetch of committed metadata records */
    DP_ALTER,
    DP_FETCH,    /* follower or consumer */
    DP_PRODUCE
} dp_msg_type_t;

typedef struct dp_msg {
    dp_msg_type_t type;
    bool resp;
    int from, to;   /* node indexes */
    uint32_t gen;   /* connection it travels on */
    uint64_t rpc;
    int error;      /* responses */
    int part;
    union {
        struct { int32_t broker_id; uint8_t incarnation[KL_UUID_LEN]; int64_t epoch; } reg;
        struct { meta_heartbeat_req_t req; meta_heartbeat_reply_t reply; } hb;
        struct { int64_t from, end; } meta;
        struct {
            int32_t broker_id;
            int64_t broker_epoch;
            uint64_t id;
            int32_t leader_epoch, partition_epoch;
            int32_t isr[REPLICA_MAX_REPLICAS];
            int n_isr;
        } alter;
        struct { replica_fetch_req_t req; replica_fetch_result_t res; } fetch;
        struct {
            int32_t leader_epoch;
            dp_batch_t batch;
            int64_t base_offset, last_offset;
            bool duplicate;
        } produce;
    } u;
    dp_batch_t *batches; /* fetch response */
    int n_batches;
} dp_msg_t;

/* ---- events ----------------------------------------------------------------------- */

typedef enum dp_ev_kind { DP_EV_DELIVER = 1, DP_EV_TIMER, DP_EV_TIMEOUT, DP_EV_RESET } dp_ev_kind_t;

typedef enum dp_timer {
    DP_T_CTRL_TICK = 1, /* active controller: sessions, reconcile, rebalance */
    DP_T_CTRL_COMMIT,   /* the head of the in-flight metadata batches commits */
    DP_T_CTRL_ELECT,    /* a new active controller takes over */
    DP_T_REGISTER,
    DP_T_HEARTBEAT,
    DP_T_METADATA,
    DP_T_CHECKPOINT,    /* HW checkpoint of every replica */
    DP_T_FETCH,         /* follower fetch loop of one partition */
    DP_T_TICK,          /* replica core deadline */
    DP_T_APPENDED,      /* the leader's write reached the log */
    DP_T_CLIENT         /* client loop */
} dp_timer_t;

typedef struct dp_ev {
    int64_t at;
    uint64_t seq;
    dp_ev_kind_t kind;
    int node;
    uint32_t inc;    /* target incarnation when queued: a crash kills its events */
    dp_timer_t timer;
    int part;
    uint64_t rpc;    /* TIMEOUT */
    int peer;        /* RESET */
    uint32_t gen;    /* RESET: the connection that broke */
    dp_msg_t *msg;   /* DELIVER */
} dp_ev_t;

/* A request waiting for its answer. */
typedef struct dp_call {
    uint64_t rpc;
    int peer;
    uint32_t gen;
    dp_msg_type_t type;
    int part;
} dp_call_t;

typedef struct dp_node {
    bool up;
    uint32_t inc;
    int64_t paused_until; /* 0: running */
    dp_call_t calls[DP_MAX_CALLS];
    int n_calls;
} dp_node_t;

/* ---- controller ------------------------------------------------------------------- */

typedef enum dp_reply { DP_REPLY_NONE = 0, DP_REPLY_REGISTER, DP_REPLY_HEARTBEAT, DP_REPLY_ALTER } dp_reply_t;

/* Records proposed together, and the answer that waits for their commit (§3). */
typedef struct dp_pending {
    meta_records_t recs;
    int64_t commit_at;
    dp_reply_t reply;
    dp_msg_t *answer; /* completed from the committed image, then sent */
} dp_pending_t;

/* The metadata quorum is modelled as ONE linearizable log with a commit
 * delay: Raft itself (elections, truncation, fsync, snapshots) is covered by
 * the Raft simulator in this directory, so here it is the controller core and
 * the data plane under it that meet faults. The active controller can still
 * fail over: its uncommitted records then commit only as a prefix, its
 * answers are lost, and the next one restarts every session. */
typedef struct dp_ctrl {
    meta_records_t log;     /* committed, in offset order */
    meta_image_t *img;      /* the committed image */
    int active;             /* controller index, -1 during an election */
    meta_image_t *decide;   /* committed + in-flight: what decisions see */
    int64_t next_offset;    /* offset the next proposed record gets */
    meta_sessions_t sessions;
    dp_pending_t *pend;
    int n_pend, cap_pend;
    int64_t next_reconcile, next_rebalance;
    meta_ctl_config_t cfg;
    uint8_t topic[KL_UUID_LEN];
} dp_ctrl_t;

/* ---- brokers ---------------------------------------------------------------------- */

typedef struct dp_pending_produce {
    uint64_t token;
    int client;
    uint32_t gen;
    uint64_t rpc;
    int part;
} dp_pending_produce_t;

/* One partition on one broker: the replica core, its disk, and the io state
 * that carries out the core's updates. */
typedef struct dp_rep {
    replica_t *r;            /* NULL while the broker is down or before it learns it is a replica */
    dp_disk_t disk;
    int64_t tick_at;         /* scheduled DP_T_TICK, INT64_MAX none */
    bool fetch_scheduled;
    bool fetching;
    uint64_t fetch_rpc;
    replica_fetch_req_t fetch_req; /* the one outstanding */
    bool alter_out;
    uint64_t alter_rpc, alter_id;
    bool eligible[DP_MAX_BROKERS]; /* as last reported to the core */
    /* checker */
    int64_t checked_upto;    /* log below this was matched against the committed map (its highest HW) */
    int32_t seen_epoch;      /* leader epoch last reported by the core */
} dp_rep_t;

typedef struct dp_broker {
    int32_t id;
    int node;
    uint8_t incarnation[KL_UUID_LEN];
    int64_t epoch;           /* broker epoch, -1 until registered */
    meta_image_t *img;       /* its metadata image */
    int64_t meta_end;        /* records applied */
    bool want_shutdown;      /* controlled shutdown in progress */
    int64_t restart_at;      /* after a stop, -1 none */
    dp_rep_t rep[DP_MAX_PARTS];
    dp_pending_produce_t *pp;
    int n_pp, cap_pp;
    uint64_t next_token;
    int meta_gap_ms;         /* how often it fetches metadata: some brokers lag */
    int ckpt_gap_ms;
} dp_broker_t;

/* ---- clients ---------------------------------------------------------------------- */

typedef enum dp_pstate { DP_QUEUED = 0, DP_INFLIGHT, DP_ACKED } dp_pstate_t;

typedef struct dp_pbatch {
    int64_t value;
    int32_t seq, count;
    int16_t epoch;
    dp_pstate_t state;
    uint64_t rpc;
    int to;
    uint32_t gen;
} dp_pbatch_t;

typedef struct dp_client {
    int idx, node;
    bool producer;
    int part;
    int gap_ms;              /* loop period */
    int32_t leader, leader_epoch; /* its metadata view */
    bool stale;
    int64_t next_refresh;
    /* producer: an idempotent producer with acks=all (KIP-98) */
    int64_t pid;
    int16_t pepoch;
    int32_t next_seq;
    dp_pbatch_t q[DP_WINDOW]; /* unacknowledged, in send order */
    int n;
    int64_t resend_after;
    bool stopped;
    /* consumer: reads below the HW from the leader */
    bool fetching;
    uint64_t fetch_rpc;
    int64_t pos, max_hw;
} dp_client_t;

/* ---- checker state ------------------------------------------------------------------ */

/* A produced batch's payload. Ids grow in creation order, which for one
 * producer is its send (sequence) order. */
typedef struct dp_value {
    int client;
    int part;
    int32_t count;     /* records */
    bool acked;
    int64_t offset;    /* acknowledged base offset */
} dp_value_t;

/* The batch any replica (or consumer) first held below a HW at each offset. */
typedef struct dp_slot {
    bool set;
    dp_batch_t b;
} dp_slot_t;

typedef struct dp_committed {
    dp_slot_t *at; /* indexed by offset */
    int64_t n, cap;
} dp_committed_t;

/* ---- the simulation ------------------------------------------------------------------ */

typedef struct dp {
    dp_params_t p;
    dp_result_t *res;
    kl_rng_t rng;
    int64_t now;
    uint64_t seq;
    bool failed;

    dp_ev_t *heap;
    int64_t n_heap, cap_heap;

    int n_nodes, n_brokers, n_parts, rf, min_isr, n_clients;
    dp_node_t nodes[DP_MAX_NODES];
    bool link[DP_MAX_NODES][DP_MAX_NODES];     /* symmetric */
    uint32_t gen[DP_MAX_NODES][DP_MAX_NODES];  /* connection generation, symmetric */
    uint32_t view[DP_MAX_NODES][DP_MAX_NODES]; /* the connection i believes it has to j */
    int64_t fifo[DP_MAX_NODES][DP_MAX_NODES];  /* last delivery time i -> j: TCP keeps order */
    uint32_t drop_pm, slow_pm;
    int delay_max_ms;
    uint64_t next_rpc;

    dp_ctrl_t ctrl;
    dp_broker_t brokers[DP_MAX_BROKERS];
    dp_client_t clients[DP_MAX_CLIENTS];
    replica_config_t rcfg;
    int fetch_backoff_ms;

    dp_value_t *values; /* by value id (1..) */
    int64_t n_values, cap_values;
    dp_committed_t committed[DP_MAX_PARTS];
} dp_t;

/* Node layout: controllers, then brokers, then clients. */
static inline int dp_ctrl_node(int i) { return i; }
static inline int dp_broker_node(int i) { return DP_CTRLS + i; }
static inline int dp_client_node(const dp_t *s, int i) { return DP_CTRLS + s->n_brokers + i; }

/* ---- dp_net.c: event loop, network, rpc bookkeeping --------------------------------- */
void dp_trace(dp_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t dp_rnd(dp_t *s, int64_t lo, int64_t hi_incl);
bool dp_pm(dp_t *s, uint32_t per_mille);
void dp_timer(dp_t *s, int node, dp_timer_t t, int part, int64_t at);
dp_msg_t *dp_msg_new(dp_msg_type_t type);
void dp_msg_free(dp_msg_t *m);
/* Sends a request from node `from` on its current connection to `to`; the
 * call is remembered and times out. Returns the rpc id. */
uint64_t dp_call(dp_t *s, int from, int to, dp_msg_t *m);
/* Addresses `resp` as the answer to `req`, on the connection it came in on. */
void dp_reply_to(const dp_msg_t *req, dp_msg_t *resp);
void dp_send(dp_t *s, dp_msg_t *m); /* takes m */
void dp_reply(dp_t *s, const dp_msg_t *req, dp_msg_t *resp); /* both of the above */
bool dp_running(const dp_t *s, int node);
void dp_cut(dp_t *s, int a, int b);
void dp_link_up(dp_t *s, int a, int b);
void dp_reset_conn(dp_t *s, int a, int b); /* both ends see the connection break */
void dp_node_crash(dp_t *s, int node);     /* kills its events and connections */
void dp_run_until(dp_t *s, int64_t until);

/* ---- dp_ctrl.c: the controller over the committed metadata log ---------------------- */
void dp_ctrl_init(dp_t *s);
void dp_ctrl_free(dp_t *s);
void dp_ctrl_fail_over(dp_t *s);           /* the active controller dies; another one later */
void dp_ctrl_timer(dp_t *s, int node, dp_timer_t t);
void dp_ctrl_request(dp_t *s, dp_msg_t *m);
void dp_ctrl_conn_reset(dp_t *s, int peer);
int dp_ctrl_create_topic(dp_t *s);         /* 0 once the topic is proposed */
const meta_partition_t *dp_ctrl_partition(const dp_t *s, int part);

/* ---- dp_broker.c: brokers and the replica io layer ---------------------------------- */
void dp_broker_start(dp_t *s, dp_broker_t *b);
void dp_broker_crash(dp_t *s, dp_broker_t *b);
void dp_broker_pause(dp_t *s, dp_broker_t *b, int64_t until);
void dp_broker_timer(dp_t *s, dp_broker_t *b, dp_timer_t t, int part);
void dp_broker_request(dp_t *s, dp_broker_t *b, dp_msg_t *m);
void dp_broker_response(dp_t *s, dp_broker_t *b, const dp_call_t *c, dp_msg_t *m); /* m NULL: the call failed */
void dp_broker_free(dp_broker_t *b);
int64_t dp_disk_end(const dp_disk_t *d);
int64_t dp_disk_index(const dp_disk_t *d, int64_t offset); /* first batch ending after offset */
int dp_broker_node_of(const dp_t *s, int32_t id);          /* -1: no such broker */
const meta_partition_t *dp_broker_partition(const dp_t *s, const dp_broker_t *b, int part);

/* ---- dp_client.c: idempotent producers and consumers -------------------------------- */
void dp_client_start(dp_t *s, dp_client_t *c);
void dp_client_timer(dp_t *s, dp_client_t *c);
void dp_client_response(dp_t *s, dp_client_t *c, const dp_call_t *call, dp_msg_t *m); /* m NULL: failed */
bool dp_client_idle(const dp_client_t *c);

/* ---- dp_check.c: invariants ---------------------------------------------------------- */
void dp_fail(dp_t *s, sim_failure_t kind, const char *invariant, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void dp_check_init(dp_t *s);
void dp_check_free(dp_t *s);
int64_t dp_value_new(dp_t *s, int client, int part, int32_t count);
void dp_check_ack(dp_t *s, int client, int64_t value, int part, int64_t base, int64_t last, int32_t count);
/* A replica's HW reached hw: its log below must match every other replica's. */
void dp_check_hw(dp_t *s, dp_broker_t *b, int part);
/* A replica cuts its log to end at `to`: never a committed record. */
void dp_check_truncate(dp_t *s, dp_broker_t *b, int part, int64_t to);
void dp_check_consumed(dp_t *s, dp_client_t *c, const dp_batch_t *bs, int n, int64_t hw);
void dp_check_image(dp_t *s);              /* after every committed metadata batch */
void dp_check_final(dp_t *s);              /* after healing and settling */

#endif
