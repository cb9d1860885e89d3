/* replica_internal.h — state and helpers shared by the replica core's files (not part of the API). */
#ifndef KEEL_REPLICA_INTERNAL_H
#define KEEL_REPLICA_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/replica.h"

/* What the leader knows of another replica (Kafka's ReplicaState). Kept while
 * not leading too, for `eligible`, which comes from metadata. */
typedef struct replica_follower {
    int32_t id;
    bool eligible;            /* KIP-841: not fenced, not in controlled shutdown */
    int64_t broker_epoch;     /* from its last fetch (KIP-903), -1 unknown */
    int64_t leo;              /* fetch offset of its last valid fetch in this leadership, -1 none */
    int64_t last_fetch_ms;    /* -1 none */
    int64_t caught_up_ms;     /* last time it had all we had, -1 never */
    int64_t fetch_leader_end; /* our log end at its last fetch, -1 none */
} replica_follower_t;

/* A produce waiting for its answer; queues are sorted by last_offset. */
typedef struct replica_wait {
    uint64_t token;
    int64_t base_offset, last_offset;
} replica_wait_t;

typedef struct replica_waitq {
    replica_wait_t *w; /* live entries are w[head, n) */
    int head, n, cap;
} replica_waitq_t;

struct replica {
    replica_config_t cfg;
    int64_t now;
    replica_role_t role;
    bool have_state;
    replica_partition_state_t st; /* committed */

    /* the local log: [log_start, log_end) is written; next_offset is the next
     * offset a produce gets (> log_end while the service is still writing) */
    int64_t log_start, log_end, next_offset, hw;
    replica_epochs_t epochs;
    replica_producers_t producers;
    replica_follower_t fol[REPLICA_MAX_REPLICAS]; /* every replica but us */
    int n_fol;

    /* leader */
    int64_t epoch_start; /* our log end when this leader epoch began */
    bool epochs_dirty;   /* the restore dropped checkpoint entries: the next update rewrites the file */
    struct {
        bool inflight;    /* sent, not settled: its ISR counts for the HW (maximal ISR) */
        bool resend;      /* outcome unknown: send the same again at retry_ms */
        bool await_state; /* refused as stale: only newer committed state settles it */
        replica_alter_req_t req;
    } alter;
    int64_t alter_retry_ms; /* no new proposal (or resend) before this */
    uint64_t next_alter_id;
    replica_waitq_t wait_log; /* acks=1: until the log holds it */
    replica_waitq_t wait_hw;  /* acks=all: until the HW passes it */
    replica_completion_t *done; /* capacity >= both queues' capacities, so failing them all fits */
    int n_done, cap_done;

    replica_update_t *out; /* the update being built by the current step */
};

/* replica.c */
void replica_note(replica_t *r, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
replica_follower_t *replica_find_follower(replica_t *r, int32_t id);
bool replica_in_isr(const replica_t *r, int32_t id);
void replica_move_log_start(replica_t *r, int64_t start);

/* replica_leader.c */
int replica_on_produce(replica_t *r, const replica_produce_req_t *req);
int replica_on_fetch(replica_t *r, const replica_fetch_req_t *req);
int replica_on_alter_result(replica_t *r, const replica_event_t *ev);
void replica_begin_leadership(replica_t *r, bool new_leader);
void replica_fail_waiting(replica_t *r, int error);
void replica_leader_settle(replica_t *r);
int64_t replica_leader_deadline(const replica_t *r);
void replica_waitq_free(replica_waitq_t *q);

/* replica_follower.c */
int replica_on_fetch_resp(replica_t *r, const replica_fetch_resp_t *m);

#endif
