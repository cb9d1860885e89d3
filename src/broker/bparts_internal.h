/* bparts_internal.h — state shared by the broker's partition files (bparts.c, bpart_serve.c, bpart_follow.c); not an API beyond src/broker and its tests. */
#ifndef KEEL_BPARTS_INTERNAL_H
#define KEEL_BPARTS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bparts.h"
#include "keel/buf.h"
#include "keel/partlog.h"
#include "keel/replica.h"

#include <event2/util.h>

struct event;

#define BPARTS_LOG "bparts"
#define BPARTS_HASH_BUCKETS 16384          /* power of two; BPARTS_MAX_PARTITIONS fit with short chains */
#define BPARTS_HOUSEKEEP_MS 1000           /* flush policy check; HW checkpoint and retention on their own intervals */
#define BPARTS_MAX_FETCH_BYTES (32u << 20) /* records in one fetch answer, whatever max_bytes asks */
#define BPARTS_MAX_FETCH_WAIT_MS 60000     /* long-poll bound, whatever max_wait_ms asks */
#define BPARTS_FETCH_TIMEOUT_MARGIN_MS 10000 /* follower: a fetch unanswered this long past its max wait failed */
#define BPARTS_PEER_MAX_INFLIGHT (NET_MAX_INFLIGHT / 2) /* follower fetches in flight to one leader; more queue */
#define BPARTS_WAKE_PASSES 4               /* re-evaluations of parked fetches per event (each pass converges) */

typedef struct bpart bpart_t;
typedef struct bpeer bpeer_t;

/* A produce whose answer comes as a completion (acks=1 until appended,
 * acks=all until the HW covers it, or the request's timeout). */
typedef struct bpart_produce {
    struct bpart_produce *prev, *next; /* the partition's, oldest first */
    bpart_t *part;
    uint64_t token;
    net_conn_id_t conn;
    uint64_t corr;
    struct event *timer; /* acks=all: KL_ETIMEOUT at timeout_ms */
} bpart_produce_t;

/* A fetch parked for a long poll (DESIGN.md §4: consumers wait for the HW,
 * followers for the log end). */
typedef struct bpart_wait {
    struct bpart_wait *prev, *next;   /* every parked fetch, oldest first (the bound) */
    struct bpart_wait *pprev, *pnext; /* this partition's */
    bpart_t *part;
    net_conn_id_t conn;
    uint64_t corr;
    wire_fetch_req_t req;
    struct event *timer; /* max_wait_ms */
} bpart_wait_t;

typedef enum bpart_follow_state {
    FOLLOW_IDLE = 0,
    FOLLOW_INFLIGHT, /* one fetch to the leader outstanding */
    FOLLOW_QUEUED,   /* waiting for a slot on the leader's connection */
    FOLLOW_BACKOFF   /* after an error, BPARTS_FETCH_BACKOFF_MS */
} bpart_follow_state_t;

/* One connection to a leader broker, shared by the partitions we follow there. */
struct bpeer {
    bpeer_t *next;
    int32_t broker_id;
    char host[WIRE_HOST_LEN];
    int port;
    net_peer_t *np;
    int inflight;            /* our fetches on np (<= BPARTS_PEER_MAX_INFLIGHT) */
    bpart_t *qhead, *qtail;  /* FOLLOW_QUEUED partitions, in order */
};

struct bpart {
    bpart_t *hnext;           /* hash chain */
    bpart_t *prev, *next;     /* every partition */
    bparts_t *bp;
    char topic[META_MAX_TOPIC_NAME_LEN + 1];
    uint8_t topic_id[KL_UUID_LEN];
    int32_t partition;
    meta_partition_t state;   /* last committed state given */
    partlog_t *log;           /* NULL if opening failed */
    replica_t *rep;           /* NULL if opening failed */
    int failed;               /* 0, or KL_EIO once a disk error stopped it (DESIGN.md: never crash) */
    bool stopped;             /* the core got REPLICA_EV_STOP */
    bool hw_dirty;            /* HW moved since the last checkpoint */
    bool wake;                /* re-evaluate parked fetches: log end, HW or role moved */
    uint64_t alter_lost;      /* AlterPartition id that could not be sent (no memory): fail it */
    int64_t max_message_bytes;
    struct event *tick_ev;    /* replica_next_deadline */
    bpart_produce_t *prod_head, *prod_tail;
    bpart_wait_t *wait_head, *wait_tail;
    /* follower */
    bpart_follow_state_t fstate;
    bpeer_t *fpeer;           /* where the fetch is in flight or queued */
    bpart_t *qnext;           /* in fpeer's queue */
    uint64_t fetch_gen;       /* of the fetch we stand by; a response for another is dropped */
    int32_t f_leader, f_epoch;
    struct event *backoff_ev;
};

typedef struct bpart_alter_ctx bpart_alter_ctx_t;

#ifdef KL_INJECT_BUGS
/* debug.inject.bug, in keeld-bugs only (issue 4's teeth): a broker that breaks
 * its own guarantees, so that a chaos run against it must come out invalid.
 * Mirrors the data-plane simulator's planted bugs (tests/sim/dp_broker.c). */
typedef enum bparts_bug {
    BPARTS_BUG_NONE = 0,
    BPARTS_BUG_ACK_ON_APPEND, /* acks=all answered once in the leader's log (DP_BUG_ACK_ON_APPEND) */
    BPARTS_BUG_TRUNCATE_TO_HW /* a new follower cuts its log to its HW (DP_BUG_TRUNCATE_TO_HW) */
} bparts_bug_t;
#endif

struct bparts {
    bparts_env_t env;
    char log_dir[PARTLOG_MAX_DIR_NAME + 4096];
    bpart_t *buckets[BPARTS_HASH_BUCKETS];
    bpart_t *all;             /* every partition */
    int n_parts;
    bool closing;
    bool stepping;            /* a core update is being carried out: no re-entry */
    uint64_t next_token;      /* produce tokens */
    uint64_t next_gen;        /* follower fetch generations */
    bpart_wait_t *wait_head, *wait_tail;
    int n_waiting;
    bpeer_t *peers;
    bpart_alter_ctx_t *alters; /* AlterPartition calls not yet settled */
    int32_t *ineligible;      /* brokers fenced or shutting down (KIP-841) */
    int n_ineligible;
    struct event *housekeep_ev;
    int64_t next_hw_ms, next_retention_ms;
    kl_buf_t rbuf;            /* fetch answers are read into it */
    replica_batch_t *fb;      /* a follower fetch response's batch headers */
    size_t *fend;             /* and where each ends in its payload */
    int fcap;
    /* configuration read once (keeld cfg) */
    int64_t lag_time_max_ms;
    int32_t fetch_max_bytes, fetch_wait_ms, fetch_min_bytes;
#ifdef KL_INJECT_BUGS
    bparts_bug_t bug;
#endif
};

/* What carrying out an update needs besides the update. */
typedef struct bpart_io {
    /* PRODUCE: the request's batch (stamped in place), its answer and waiter */
    uint8_t *batch;
    size_t batch_len;
    bpart_produce_t *waiter; /* taken (linked) when the answer is pending */
    int acks;
    int32_t timeout_ms;
    bool appended;
    /* FETCH_RESPONSE: the payload and where each validated batch ends */
    const uint8_t *fetched;
    const size_t *fetched_end;
    int n_fetched;
} bpart_io_t;

/* bparts.c */
bpart_t *bparts_find(bparts_t *bp, const char *topic, int32_t partition);
/* Steps the core and carries out the update (replica.h order); notes logged. */
int bpart_step(bpart_t *p, replica_event_t *ev, bpart_io_t *io, replica_update_t *u);
/* End of every event on p: stop after a disk error, wake parked fetches,
 * re-arm the tick, keep the follower fetching. */
void bpart_finish(bpart_t *p);
/* Records a disk error: the partition stops at the next bpart_finish. */
void bpart_io_failed(bpart_t *p, int rc, const char *what);
/* Error answer with the leader hint (KL_ENOTLEADER & co.) when leader >= 0. */
void bparts_reply_error(bparts_t *bp, net_conn_id_t conn, uint32_t api, uint64_t corr, int err, int32_t leader);

/* bpart_serve.c */
void bpart_answer_produce(bpart_t *p, net_conn_id_t conn, uint64_t corr, int err, int64_t base_offset);
/* Completions of the update: answers their waiting produces. */
void bpart_complete(bpart_t *p, const replica_completion_t *c, int n);
void bpart_link_produce(bpart_t *p, bpart_produce_t *w, int acks, int32_t timeout_ms);
/* Answers every parked fetch and waiting produce of p with err (removal, shutdown). */
void bpart_fail_waiters(bpart_t *p, int err);
void bpart_wake_fetches(bpart_t *p);
void bparts_serve_produce(bparts_t *bp, net_conn_id_t conn, wire_msg_t *req);
void bparts_serve_fetch(bparts_t *bp, net_conn_id_t conn, const wire_msg_t *req);
void bparts_serve_list_offsets(bparts_t *bp, net_conn_id_t conn, const wire_msg_t *req);
void bparts_drop_conn(bparts_t *bp, net_conn_id_t conn);

/* bpart_follow.c */
/* Keeps one fetch in flight to the leader while p is a follower; stops otherwise. */
void bpart_follow(bpart_t *p);
void bpart_follow_stop(bpart_t *p);
void bpart_follow_backoff(bpart_t *p);
void bpart_follow_backoff_cb(evutil_socket_t fd, short what, void *arg); /* p->backoff_ev */
void bparts_free_peers(bparts_t *bp);

/* For logs and tests: a replica's state here. KL_EUNKNOWNPARTITION if not held. */
typedef struct bpart_info {
    replica_role_t role;
    int failed;
    int32_t leader, leader_epoch, partition_epoch;
    int64_t log_start, log_end, high_watermark;
    int32_t latest_epoch; /* leader-epoch cache, REPLICA_NO_EPOCH if empty */
    int n_isr;
    int32_t isr[REPLICA_MAX_REPLICAS];
} bpart_info_t;
int bparts_partition_info(bparts_t *bp, const char *topic, int32_t partition, bpart_info_t *out);

#endif
