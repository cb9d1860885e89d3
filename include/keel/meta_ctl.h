/* meta_ctl.h — the active controller's decisions (DESIGN.md §3): pure functions from (image, request, time, config) to the records to append. */
#ifndef KEEL_META_CTL_H
#define KEEL_META_CTL_H

/* How the controller service uses this (the service owns I/O, Raft, time):
 *
 *   request --decode--> meta_*_req_t --meta_decide_*()--> records
 *   records --propose (one batch, in order)--> Raft --commit--> meta_image_apply()
 *   answer the request once its records have committed (§3: committed before
 *   anyone acts on it or a request is answered).
 *
 * Decisions never mutate the image. They must be computed against an image
 * that already includes every record proposed but not yet committed
 * (committed image + in-flight records applied to a meta_image_clone()),
 * otherwise two decisions can collide (the same topic created twice, the
 * same producer ids handed out twice, which apply() then refuses). A newly
 * active controller decides nothing before it has applied its whole log.
 *
 * Each decision's records are ordered so that every prefix of them leaves a
 * consistent image (a leader that dies mid-batch may commit only a prefix):
 * partitions move away from a broker before the record that fences it, a
 * topic record precedes its partitions. meta_decide_reconcile() repairs
 * whatever such a prefix left undone. */

#include <stdbool.h>
#include <stdint.h>

#include "keel/meta.h"

/* ---- configuration ----------------------------------------------------------- */

typedef struct meta_ctl_config {
    int64_t broker_session_timeout_ms;   /* broker.session.timeout.ms: 9000 */
    int64_t broker_disconnect_grace_ms;  /* fence this soon after a broker's controller connection
                                          * breaks and is not re-made (§3, faster than the session): 1000
                                          * here; keeld's broker.session.disconnect.grace.ms defaults to 250 */
    bool unclean_leader_election_enable; /* static default; cluster and topic configs override: false */
    bool auto_leader_rebalance_enable;   /* auto.leader.rebalance.enable: true */
    int leader_imbalance_per_broker_percentage; /* Kafka's trigger for the periodic rebalance: 10 */
    int32_t num_partitions;              /* num.partitions, used when a create asks for -1: 1 */
    int32_t default_replication_factor;  /* default.replication.factor, likewise: 1 */
    int32_t producer_id_block_size;      /* ids per block: 1000 (Kafka's) */
} meta_ctl_config_t;

void meta_ctl_config_defaults(meta_ctl_config_t *cfg);
/* 0, or KL_ECONFIG with why for out-of-range values. */
int meta_ctl_config_check(const meta_ctl_config_t *cfg, char *why, size_t why_len);

/* ---- decision output -------------------------------------------------------- */

#define META_MAX_NOTES 16

typedef struct meta_note {
    int level; /* 1 info, 2 warn, 3 error (raft notes' scale) */
    char text[META_MSG_LEN];
} meta_note_t;

typedef struct meta_decision {
    meta_records_t records; /* propose these, in this order, as one batch; may be empty */
    bool unclean;           /* an unclean leader election is among them: committed data
                             * may be lost, so the notes say where at level 3 (§3 "loudly") */
    meta_note_t notes[META_MAX_NOTES]; /* what was decided, for the log */
    int n_notes;
    int notes_dropped;      /* notes beyond META_MAX_NOTES */
    char error[META_MSG_LEN]; /* why a decision failed: for the response and the log */
} meta_decision_t;

void meta_decision_init(meta_decision_t *d);
void meta_decision_free(meta_decision_t *d);

/* Every meta_decide_*() first empties `out` (records, notes, error, unclean),
 * then returns 0 with the records to append, or a KL_E* code with out->error
 * set and no records. KL_ENOMEM / KL_ETOOBIG can come from any of them. */

/* ---- brokers -------------------------------------------------------------- */

typedef struct meta_register_req {
    int32_t broker_id;
    uint8_t incarnation[KL_UUID_LEN];  /* random, new at every process start */
    const meta_listener_t *listeners;  /* built with meta_listener_set() */
    int n_listeners;
    const char *rack;                  /* NULL or "" = none */
} meta_register_req_t;

/* RegisterBroker. A new incarnation gets a registration record (the broker
 * epoch will be that record's offset; the broker starts fenced). The same
 * incarnation again, with the same listeners and rack, is a retry: no
 * records. Errors: KL_EINVAL (bad fields, or the same incarnation with other
 * listeners or rack), KL_EEXIST (another incarnation of this id is still
 * unfenced: two processes may share an id by mistake, so the newcomer waits
 * until the old session is fenced — Kafka's DUPLICATE_BROKER_REGISTRATION),
 * KL_ETOOBIG (META_MAX_BROKERS). After commit, answer with the epoch of
 * meta_image_broker(img, id). */
int meta_decide_register(const meta_image_t *img, const meta_register_req_t *req,
                         const meta_ctl_config_t *cfg, meta_decision_t *out);

typedef struct meta_heartbeat_req {
    int32_t broker_id;
    int64_t broker_epoch;
    int64_t metadata_offset; /* offset of the last record the broker has applied, -1 none (Kafka's) */
    bool want_fence;         /* broker is not ready to serve (e.g. recovering logs) */
    bool want_shutdown;      /* controlled shutdown requested */
} meta_heartbeat_req_t;

/* The broker's standing once the decision's records have committed. */
typedef struct meta_heartbeat_reply {
    bool fenced;
    bool shutting_down; /* controlled shutdown in progress: keep heartbeating */
    bool shutdown_now;  /* leaderships are gone and the broker is fenced: exit */
} meta_heartbeat_reply_t;

/* BrokerHeartbeat (§3). A fenced broker is unfenced once it has caught up
 * to its own registration (metadata_offset >= broker epoch) unless it wants
 * to stay fenced; then it is elected for offline partitions it can lead.
 * A shutdown request from an active broker puts it in controlled shutdown
 * and moves its leaderships away (and takes it out of ISRs, since it will
 * stop fetching); the heartbeat after that finds nothing left to move,
 * fences it and answers shutdown_now. Errors: KL_ENOENT (not registered),
 * KL_EFENCED (stale broker epoch: the broker must re-register). Touch the
 * broker's session (meta_sessions_heartbeat) only when this returns 0. */
int meta_decide_heartbeat(const meta_image_t *img, const meta_heartbeat_req_t *req,
                          const meta_ctl_config_t *cfg, meta_decision_t *out, meta_heartbeat_reply_t *reply);

/* Session deadlines of unfenced brokers, kept by the active controller only:
 * they are liveness, not state, so they are never in the log. */
typedef struct meta_session {
    int32_t broker_id;
    int64_t deadline_ms; /* fence when now >= this */
} meta_session_t;

typedef struct meta_sessions {
    meta_session_t *s; /* sorted by broker id */
    int n;
    int cap;
} meta_sessions_t;

void meta_sessions_init(meta_sessions_t *s);
void meta_sessions_free(meta_sessions_t *s);
/* On becoming the active controller: forget everything and give every
 * broker one full session from now (§3), since its heartbeats went to the
 * previous controller. 0 or KL_ENOMEM. */
int meta_sessions_start_all(meta_sessions_t *s, const meta_image_t *img, int64_t now_ms,
                            const meta_ctl_config_t *cfg);
/* A heartbeat or registration was accepted: deadline = now + session timeout. */
int meta_sessions_heartbeat(meta_sessions_t *s, int32_t broker_id, int64_t now_ms,
                            const meta_ctl_config_t *cfg);
/* The broker's connection to this controller broke: deadline moves up to
 * now + disconnect grace, unless a heartbeat comes first (§3). */
void meta_sessions_disconnected(meta_sessions_t *s, int32_t broker_id, int64_t now_ms,
                                const meta_ctl_config_t *cfg);

/* Fences every unfenced broker (active or shutting down) whose deadline has
 * passed, or that has no session at all (a controller that called
 * meta_sessions_start_all has one for each; fencing too eagerly costs a
 * blip, never fencing would leave its partitions stuck): partition changes
 * first (out of ISRs, new leaders), then the fence records. */
int meta_decide_expire_sessions(const meta_image_t *img, const meta_sessions_t *s, int64_t now_ms,
                                const meta_ctl_config_t *cfg, meta_decision_t *out);

/* ---- topics ------------------------------------------------------------------ */

typedef struct meta_config_kv {
    const char *key;
    const char *value; /* alter: NULL deletes the key */
} meta_config_kv_t;

typedef struct meta_create_topic_req {
    const char *name;
    uint8_t uuid[KL_UUID_LEN];   /* fresh random id from the caller (the core has no randomness) */
    int32_t partitions;          /* -1: cfg->num_partitions */
    int32_t replication_factor;  /* -1: cfg->default_replication_factor */
    const meta_config_kv_t *configs;
    int n_configs;
} meta_create_topic_req_t;

/* CreateTopics: a topic record (configs canonical, sorted) and one partition
 * record per partition (leader = first replica, ISR = replicas, epochs 0).
 * Replicas go to active brokers only, by meta_assign_replicas() started at
 * a point derived from the topic uuid (Kafka starts at a random broker, so
 * leaders of many topics spread). Errors: KL_EINVAL (bad name, name that
 * collides with another when '.' and '_' are equated — Kafka refuses those
 * since metric names would clash — counts out of range, replication factor
 * above the number of active brokers, bad configs, min.insync.replicas above
 * the replication factor), KL_EEXIST (name or uuid taken), KL_ETOOBIG. */
int meta_decide_create_topic(const meta_image_t *img, const meta_create_topic_req_t *req,
                             const meta_ctl_config_t *cfg, meta_decision_t *out);

/* DeleteTopics: one removal record. KL_EUNKNOWNPARTITION if absent. */
int meta_decide_delete_topic(const meta_image_t *img, const char *name, const meta_ctl_config_t *cfg,
                             meta_decision_t *out);

typedef struct meta_alter_configs_req {
    meta_config_resource_t resource;
    const char *topic; /* TOPIC: its name */
    const meta_config_kv_t *ops; /* applied in order; a key at most once */
    int n_ops;
} meta_alter_configs_req_t;

/* IncrementalAlterConfigs: one config record per changed key (setting a key
 * to its current value or deleting an unset one adds nothing). All ops are
 * validated before any record is made. Once they commit, run
 * meta_decide_reconcile(): enabling unclean election may bring offline
 * partitions back. Errors: KL_EINVAL, KL_EUNKNOWNPARTITION, KL_ETOOBIG. */
int meta_decide_alter_configs(const meta_image_t *img, const meta_alter_configs_req_t *req,
                              const meta_ctl_config_t *cfg, meta_decision_t *out);

/* ---- partitions --------------------------------------------------------------- */

typedef struct meta_alter_partition_req {
    int32_t broker_id;    /* the leader asking */
    int64_t broker_epoch;
    uint8_t topic[KL_UUID_LEN];
    int32_t partition;
    int32_t leader_epoch;    /* as the leader knows them */
    int32_t partition_epoch;
    const int32_t *isr;      /* the ISR it wants */
    int n_isr;
} meta_alter_partition_req_t;

/* AlterPartition (§4: ISR shrink/expand by the leader). Refused: unknown
 * or stale broker epoch (KL_EFENCED), unknown partition
 * (KL_EUNKNOWNPARTITION), asker not the leader (KL_ENOTLEADER), leader or
 * partition epoch older than the controller's (KL_EFENCED) or newer
 * (KL_EUNKNOWNEPOCH), an ISR that is empty, lacks the leader, has
 * duplicates or non-replicas, or names a broker that is not active (fenced,
 * shutting down, unknown) (KL_EINVAL). The requested ISR is stored in
 * replica order. An unchanged ISR gives no records. After commit, answer with
 * the partition's state from the image. */
int meta_decide_alter_partition(const meta_image_t *img, const meta_alter_partition_req_t *req,
                                const meta_ctl_config_t *cfg, meta_decision_t *out);

/* Preferred leader election for one topic (name) or all (NULL): leadership
 * returns to replicas[0] wherever it is active and in the ISR, and the
 * others are left as they are (notes say how many and why). KL_EUNKNOWNPARTITION
 * for an unknown topic. */
int meta_decide_elect_preferred(const meta_image_t *img, const char *topic, const meta_ctl_config_t *cfg,
                                meta_decision_t *out);

/* The periodic rebalance check (if cfg->auto_leader_rebalance_enable):
 * Kafka's rule — for each broker, among the partitions it is preferred
 * leader of, the share it does not lead; above
 * leader_imbalance_per_broker_percentage, elect it for those it can lead. */
int meta_decide_auto_rebalance(const meta_image_t *img, const meta_ctl_config_t *cfg, meta_decision_t *out);

/* Brings every partition in line with broker liveness: unusable brokers
 * leave ISRs, partitions without a usable leader get one (an offline one
 * comes back when an ISR member returns, or uncleanly once unclean election
 * is enabled). With invariants intact it only touches offline partitions;
 * run it periodically and after config changes. */
int meta_decide_reconcile(const meta_image_t *img, const meta_ctl_config_t *cfg, meta_decision_t *out);

/* ---- producer ids ------------------------------------------------------------- */

/* AllocateProducerIds: the next block of cfg->producer_id_block_size ids.
 * KL_ENOENT / KL_EFENCED for an unknown broker or stale epoch, KL_ERANGE
 * when the id space is exhausted. Answer with the block in out->records. */
int meta_decide_producer_ids(const meta_image_t *img, int32_t broker_id, int64_t broker_epoch,
                             const meta_ctl_config_t *cfg, meta_decision_t *out);

/* ---- replica assignment ------------------------------------------------------ */

typedef struct meta_assign_broker {
    int32_t id;
    const char *rack; /* NULL or "" = none */
} meta_assign_broker_t;

/* Kafka's assignment (§3): brokers sorted by id (or, when every broker has
 * a rack, interleaved rack by rack); partition p's leader is broker
 * (start + p) mod n, so leaders go round-robin; its followers are the next
 * brokers after a shift that grows by one every n partitions, so the
 * partitions a broker leads do not all share the same followers; with racks,
 * a follower is skipped while its rack already holds a replica and some rack
 * does not. No broker appears twice in a partition. Fills out[p][0..rf-1]
 * for p < n_partitions. KL_EINVAL unless 1 <= rf <= n_brokers <=
 * META_MAX_BROKERS, rf <= META_MAX_REPLICAS, broker ids distinct and
 * n_partitions in 1..META_MAX_TOPIC_PARTITIONS. */
int meta_assign_replicas(const meta_assign_broker_t *brokers, int n_brokers, int32_t n_partitions, int rf,
                         uint32_t start, uint32_t shift, int32_t (*out)[META_MAX_REPLICAS]);

#endif
