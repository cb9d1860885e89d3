/* replica.h — pure core of one partition replica (DESIGN.md §4): events with the time in, an update of what to do out. */

/* ISR, high watermark, acks, fencing, leader epochs and idempotent producers.
 * No I/O, clocks or libraries: the broker service owns the log, the network
 * and the metadata, and carries out each update (see replica_update_t). */
#ifndef KEEL_REPLICA_H
#define KEEL_REPLICA_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/replica_epochs.h"
#include "keel/replica_producers.h"

#define REPLICA_MAX_REPLICAS 16 /* replication factor bound: replicas and ISR fit fixed arrays */
#define REPLICA_NO_NODE (-1)
#define REPLICA_CONSUMER (-1)  /* replica_id of a fetch from a client rather than a follower */
#define REPLICA_ACKS_ALL (-1)  /* Kafka's acks=-1 */
#define REPLICA_MAX_PENDING 65536 /* hard bound on replica_config_t.max_pending */
#define REPLICA_MAX_LAG_MS (7LL * 24 * 3600 * 1000) /* config sanity bound: a week */
#define REPLICA_NEVER INT64_MAX
#define REPLICA_MAX_NOTES 16
#define REPLICA_NOTE_LEN 200

/* ---- configuration ------------------------------------------------------------ */

typedef struct replica_config {
    int32_t broker_id;           /* this broker (node.id) */
    int64_t lag_time_max_ms;     /* replica.lag.time.max.ms: a follower not caught up for longer leaves the ISR */
    int min_insync_replicas;     /* min.insync.replicas: acks=all needs an ISR at least this big */
    int max_pending;             /* produce answers waiting for the log or the HW; beyond: KL_EFULL */
    int max_producers;           /* idempotent producers remembered; beyond: the oldest is evicted */
    int alter_retry_backoff_ms;  /* wait before re-proposing an ISR change after a failed AlterPartition */
} replica_config_t;

/* Kafka's defaults: lag 30000, min ISR 1; Keel's: 1024 pending, 4096 producers, 100 ms backoff. */
void replica_config_defaults(replica_config_t *cfg);

/* ---- committed partition state --------------------------------------------------- */

/* The partition as the controller last committed it (DESIGN.md §3 partition
 * record with its changes applied). The replica acts only on committed state:
 * it never changes leader or ISR by itself. Leader epoch bumps on every leader
 * change, partition epoch on every leader, ISR or replica change. */
typedef struct replica_partition_state {
    int32_t leader; /* REPLICA_NO_NODE: offline */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t replicas[REPLICA_MAX_REPLICAS];
    int n_replicas;
    int32_t isr[REPLICA_MAX_REPLICAS]; /* a subset of replicas holding the leader */
    int n_isr;
} replica_partition_state_t;

typedef enum replica_role {
    REPLICA_NONE = 0,  /* not told yet, stopped, partition offline, or no longer a replica */
    REPLICA_LEADER,
    REPLICA_FOLLOWER
} replica_role_t;

const char *replica_role_name(replica_role_t role);

/* ---- requests the core answers or builds ------------------------------------------ */

/* A Fetch, from a follower (replica_id = its broker id) or a consumer
 * (REPLICA_CONSUMER). Fencing (DESIGN.md §4 "fencing zombies", KIP-320): the
 * sender says which leader epoch it believes in. */
typedef struct replica_fetch_req {
    int32_t replica_id;
    int64_t broker_epoch;       /* follower's broker epoch (KIP-903), reported back in AlterPartition; -1 unknown */
    int32_t leader_epoch;
    int64_t fetch_offset;       /* a follower's fetch offset is its log end */
    int32_t last_fetched_epoch; /* follower: epoch of its record fetch_offset - 1, REPLICA_NO_EPOCH if none */
} replica_fetch_req_t;

/* The leader's answer. On error nothing is read. With a diverging epoch
 * nothing is read either: the follower truncates first (KIP-595 fetch). */
typedef struct replica_fetch_result {
    int error;             /* 0, KL_ENOTLEADER, KL_EFENCED (stale epoch), KL_EUNKNOWNEPOCH (newer epoch),
                            * KL_ERANGE (offset outside [log start, log end]), KL_EINVAL (not a replica),
                            * KL_ENOTAVAILABLE (consumer: a new leader's HW has not caught up yet; retry) */
    int64_t read_end;      /* send records in [fetch_offset, read_end): log end for followers, HW for consumers */
    int64_t high_watermark;
    int64_t log_start_offset;
    int64_t log_end_offset;
    int32_t diverging_epoch;      /* REPLICA_NO_EPOCH if none */
    int64_t diverging_end_offset; /* REPLICA_NO_OFFSET if none */
    int32_t leader_id;            /* hints for a client refreshing metadata */
    int32_t leader_epoch;
} replica_fetch_result_t;

/* A follower's fetch response as the service decoded it, records reduced to
 * their batch headers (the service checked each batch's CRC first). An error
 * other than KL_ERANGE changes nothing but a note: the service backs off, and
 * after KL_ENOTLEADER, KL_EFENCED or KL_EUNKNOWNEPOCH waits for the metadata
 * to bring the partition state that explains it. */
typedef struct replica_fetch_resp {
    int error;                  /* the leader's error, or a transport error */
    int32_t leader_epoch;       /* of the request answered: a response for an older request is ignored */
    int64_t fetch_offset;       /*   (so is one whose offset is no longer our log end) */
    int64_t high_watermark;
    int64_t log_start_offset;
    int64_t log_end_offset;
    int32_t diverging_epoch;      /* REPLICA_NO_EPOCH if none */
    int64_t diverging_end_offset;
    const replica_batch_t *batches; /* in offset order, from fetch_offset on */
    int n_batches;
} replica_fetch_resp_t;

/* A produce of one batch to this partition. */
typedef struct replica_produce_req {
    int32_t leader_epoch; /* what the client believes (DESIGN.md §4): stale or newer is refused */
    int acks;             /* 0, 1 or REPLICA_ACKS_ALL */
    uint64_t token;       /* the service's handle, echoed in the completion */
    replica_batch_t batch;
} replica_produce_req_t;

/* The core's decision. On error the batch is refused (answer now, acks=0: drop).
 * Otherwise either append it, or it is a retry of a batch already in the log. */
typedef struct replica_produce_result {
    int error;           /* 0, KL_ENOTLEADER, KL_EFENCED, KL_EUNKNOWNEPOCH, KL_ENOTENOUGHREPLICAS,
                          * KL_ESEQUENCE, KL_EFULL, KL_EINVAL, KL_ENOMEM, KL_ETOOBIG (offsets
                          * exhausted); KL_EFENCED also for a zombie producer epoch (KIP-98) */
    bool append;         /* write the batch at base_offset stamped with leader_epoch, then APPENDED */
    bool duplicate;      /* KIP-98 retry: not appended again; offsets are the original's */
    int64_t base_offset; /* offsets of the batch (or of the original for a duplicate) */
    int64_t last_offset;
    int32_t leader_epoch;
    bool pending;        /* the answer comes later as a completion with the request's token;
                          * false and no error: answer now (acks=0: no answer at all) */
} replica_produce_result_t;

/* A produce answered later: acks=1 once the leader's log holds it, acks=all
 * once the HW passes its last offset. KL_ENOTENOUGHREPLICAS: committed, but
 * the ISR had shrunk below min.insync.replicas by then (Kafka's
 * NOT_ENOUGH_REPLICAS_AFTER_APPEND). KL_ENOTLEADER or the STOP error:
 * leadership was lost first, so it is never acknowledged (the client retries;
 * idempotence turns the retry into a duplicate if it did survive). */
typedef struct replica_completion {
    uint64_t token;
    int error;
    int64_t base_offset;
    int64_t last_offset;
} replica_completion_t;

/* AlterPartition (KIP-497, KIP-841): the ISR the leader wants, sent with the
 * epochs it knows so the controller can reject a stale view, and with each
 * member's broker epoch from its fetches (KIP-903) so that a replica that
 * restarted since cannot be added on the strength of its previous life. */
typedef struct replica_alter_req {
    uint64_t id; /* echoed in REPLICA_EV_ALTER_RESULT */
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t isr[REPLICA_MAX_REPLICAS];
    int64_t isr_broker_epochs[REPLICA_MAX_REPLICAS]; /* -1 for the leader itself: the service fills its own */
    int n_isr;
} replica_alter_req_t;

/* ---- events ------------------------------------------------------------------- */

typedef enum replica_event_type {
    REPLICA_EV_TICK = 1,         /* time passed: ISR shrink, AlterPartition retry (see replica_next_deadline) */
    REPLICA_EV_PARTITION_STATE,  /* committed state from the metadata log; older than the known one: KL_EFENCED */
    REPLICA_EV_ALTER_RESULT,     /* the controller's answer to (or the failure of) an AlterPartition */
    REPLICA_EV_ELIGIBILITY,      /* KIP-841: a replica's broker is fenced / in controlled shutdown, or not */
    REPLICA_EV_PRODUCE,          /* leader: a batch; decision in update.produce */
    REPLICA_EV_APPENDED,         /* the log now holds every assigned offset below log_end */
    REPLICA_EV_FETCH,            /* leader: a fetch; answer in update.fetch */
    REPLICA_EV_FETCH_RESPONSE,   /* follower: the leader answered our fetch */
    REPLICA_EV_LOG_START,        /* retention or DeleteRecords moved the log start (<= HW) */
    REPLICA_EV_STOP              /* shutdown or storage failure: fail every waiting produce with `error` */
} replica_event_type_t;

typedef struct replica_event {
    replica_event_type_t type;
    int64_t now_ms; /* monotonic; earlier than the last event's is taken as that one */
    union {
        const replica_partition_state_t *state; /* PARTITION_STATE */
        struct {
            uint64_t id;
            int error; /* 0: committed, with the state below. Our view is stale — KL_EFENCED (leader
                        * or partition epoch; an earlier attempt may have committed), KL_ENOTLEADER,
                        * KL_EUNKNOWNPARTITION: wait for the metadata to bring the newer state.
                        * KL_EINVAL: the controller refused and applied nothing (ineligible
                        * replica, invalid ISR): back off and re-evaluate. Any other (timeout,
                        * connection, not controller, KL_EUNKNOWNEPOCH from a controller still
                        * catching up): outcome unknown: send the same again after the backoff.
                        * (meta_decide_alter_partition answers with exactly these codes.) */
            int32_t leader_epoch;
            int32_t partition_epoch;
            const int32_t *isr;
            int n_isr;
        } alter; /* ALTER_RESULT */
        struct {
            int32_t broker_id;
            bool eligible; /* replicas start eligible; the service reports changes from its image */
        } eligibility;
        const replica_produce_req_t *produce;
        int64_t log_end; /* APPENDED: in [current log end, next assigned offset] */
        const replica_fetch_req_t *fetch;
        const replica_fetch_resp_t *fetch_resp;
        int64_t log_start; /* LOG_START */
        int error;         /* STOP: KL_ESHUTDOWN, KL_EIO, ... */
    } u;
} replica_event_t;

/* ---- updates ------------------------------------------------------------------ */

typedef struct replica_note {
    int level; /* 0 debug, 1 info, 2 warn, 3 error */
    char text[REPLICA_NOTE_LEN];
} replica_note_t;

/* What the service must do, in this order:
 *  1. reset_to >= 0: delete the whole log and restart it empty at that offset;
 *     truncate_to >= 0: truncate the log to end there;
 *  2. append the first n_append batches of the fetch response (follower), or
 *     the produced batch if produce.append (leader, then feed APPENDED once it
 *     is written, and fsynced if the broker counts only fsynced data);
 *  3. log_start_to >= 0: delete the log below it;
 *  4. epochs_changed: rewrite leader-epoch-checkpoint from replica_epochs();
 *  5. rebuild_producers: the producer state was dropped; replay every batch
 *     header of the log, in order, with replica_replay() before the next step;
 *  6. hw_changed: checkpoint the HW and wake fetches waiting for it;
 *  7. send_alter: send AlterPartition to the controller;
 *  8. answer produce, fetch and completions.
 * Pointers are valid until the next call into the core. */
typedef struct replica_update {
    replica_produce_result_t produce; /* PRODUCE */
    replica_fetch_result_t fetch;     /* FETCH */

    int64_t reset_to;    /* -1: none */
    int64_t truncate_to; /* -1: none */
    int n_append;
    int64_t log_start_to; /* -1: none */
    bool epochs_changed;
    bool rebuild_producers;

    int64_t high_watermark;
    bool hw_changed;

    bool send_alter;
    replica_alter_req_t alter;

    const replica_completion_t *completions;
    int n_completions;

    bool role_changed; /* role, leader or leader epoch changed */
    replica_note_t notes[REPLICA_MAX_NOTES];
    int n_notes;
} replica_update_t;

/* ---- lifecycle ------------------------------------------------------------------ */

/* What the service recovered from disk. */
typedef struct replica_restore {
    int64_t log_start;      /* first offset still in the log */
    int64_t log_end;        /* after tail recovery */
    int64_t high_watermark; /* last checkpointed; clamped into [log_start, log_end] */
    const replica_epoch_entry_t *epochs; /* leader-epoch-checkpoint; entries at or past log_end are dropped */
    int n_epochs;
} replica_restore_t;

typedef struct replica replica_t;

/* `restore` NULL: a new empty replica. Starts REPLICA_NONE until the first
 * PARTITION_STATE; the producer state starts empty: replay the log with
 * replica_replay() before the first step. NULL on bad config, an inconsistent
 * restore or allocation failure. */
replica_t *replica_new(const replica_config_t *cfg, const replica_restore_t *restore);
void replica_free(replica_t *r);

/* The one way state changes. Returns 0, or a negative KL_E* for an event that
 * is malformed (KL_EINVAL), stale (KL_EFENCED, KL_ESTATE: ignored harmlessly)
 * or refused by a bug check (KL_ESTATE for a truncation below the HW); the
 * update then carries only notes. Refusals of produce and fetch requests are
 * answers, in update.produce.error and update.fetch.error, with a return of 0. */
int replica_step(replica_t *r, const replica_event_t *ev, replica_update_t *out);

/* Rebuilds idempotent producer state from the log (DESIGN.md §4: it survives
 * a leader change): the headers of batches in [log start, log end), in offset
 * order, over as many calls as convenient. KL_EINVAL for a batch outside the
 * log or out of order; KL_ENOMEM. */
int replica_replay(replica_t *r, const replica_batch_t *batches, int n);

/* Follower: the next fetch to send to the leader (broker_epoch -1: the service
 * fills its own). KL_ESTATE unless a follower of a known leader with no
 * appends outstanding. */
int replica_fetch_request(const replica_t *r, replica_fetch_req_t *req);

/* Earliest time the next TICK is needed for ISR shrink and retries to happen
 * exactly on time; REPLICA_NEVER when nothing is timed. */
int64_t replica_next_deadline(const replica_t *r);

/* ---- queries ----------------------------------------------------------------------- */

replica_role_t replica_role(const replica_t *r);
int32_t replica_leader(const replica_t *r);
int32_t replica_leader_epoch(const replica_t *r);
int32_t replica_partition_epoch(const replica_t *r);
int64_t replica_log_start(const replica_t *r);
int64_t replica_log_end(const replica_t *r);
int64_t replica_high_watermark(const replica_t *r);
/* False while a leader's HW is below the start of its epoch: it may then be
 * lower than what the previous leader reported, so consumers (Fetch and
 * ListOffsets latest) get KL_ENOTAVAILABLE rather than an HW that goes back. */
bool replica_hw_settled(const replica_t *r);
/* Committed ISR (the one min.insync.replicas is checked against): copies up
 * to max ids, returns the ISR size. */
int replica_isr(const replica_t *r, int32_t *out, int max);
const replica_epochs_t *replica_epochs(const replica_t *r);
const replica_producers_t *replica_producers(const replica_t *r);
bool replica_alter_in_flight(const replica_t *r);

/* Leader's view of one follower (DescribePartition / keelctl); -1 where unknown. */
typedef struct replica_follower_info {
    int32_t id;
    int64_t log_end_offset;
    int64_t last_fetch_ms;
    int64_t last_caught_up_ms;
    bool in_isr;
    bool eligible;
} replica_follower_info_t;

/* Fills up to max followers (not the leader); returns how many, or
 * KL_ENOTLEADER. */
int replica_followers(const replica_t *r, replica_follower_info_t *out, int max);

#endif
