/* meta.h — metadata-log records and the metadata image they build (DESIGN.md §3), as plain C values: pure, no I/O. */
#ifndef KEEL_META_H
#define KEEL_META_H

/* The metadata log is the cluster's only source of truth: every change is a
 * record, and every controller and broker folds the committed records, in
 * log order, into the same image with meta_image_apply(). The image is
 * therefore a pure function of the record sequence (plus the offsets of
 * broker registrations, which become broker epochs), which is what makes
 * snapshots, replay and the simulator work.
 *
 * Records are plain values. Two kinds of field are variable-length arrays
 * passed by pointer (broker listeners, topic configs) so that the record
 * union stays small: a snapshot of a large cluster is a list of mostly
 * partition records. A record handed to apply() is borrowed for the call; a
 * meta_records_t list deep-copies what it holds. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/uuid.h"

/* ---- limits (everything variable-size is bounded) ------------------------- */

#define META_MAX_BROKERS 1024
#define META_MAX_LISTENERS 8           /* per broker */
#define META_MAX_LISTENER_NAME_LEN 32  /* "PLAINTEXT", "INTERNAL_SSL", ... */
#define META_MAX_HOST_LEN 255          /* a DNS name is at most 253 */
#define META_MAX_RACK_LEN 64
#define META_MAX_TOPICS 65536
#define META_MAX_TOPIC_NAME_LEN 249    /* Kafka's limit (file names carry a suffix) */
#define META_MAX_TOPIC_PARTITIONS 10000
#define META_MAX_PARTITIONS 200000     /* whole cluster */
#define META_MAX_REPLICAS 16           /* replication factor */
#define META_MAX_CONFIGS 16            /* per topic, and cluster-wide */
#define META_MAX_CONFIG_KEY_LEN 64
#define META_MAX_CONFIG_VALUE_LEN 255
#define META_MAX_PRODUCER_ID_BLOCK 1000000
/* A snapshot is the largest record list there is: per broker a registration
 * and a state record, per topic a topic record and its partitions, the
 * cluster configs and the last producer-id block. */
#define META_MAX_RECORDS (2 * META_MAX_BROKERS + META_MAX_TOPICS + META_MAX_PARTITIONS + META_MAX_CONFIGS + 1)
#define META_MSG_LEN 200               /* error and note texts */
#define META_RESERVED_TOPIC "__cluster_metadata" /* the metadata log's name: no topic may take it */

#define META_NO_LEADER (-1)        /* partition offline */
#define META_LEADER_UNCHANGED (-2) /* in a partition change: leader not part of the delta (Kafka's -2) */
#define META_EPOCH_FROM_OFFSET (-1) /* registration: broker epoch = offset of this record */

/* ---- record types ---------------------------------------------------------- */

typedef enum meta_record_type {
    META_REC_NO_OP = 1,         /* leader liveness: changes nothing */
    META_REC_REGISTER_BROKER,   /* a broker incarnation; starts fenced */
    META_REC_FENCE_BROKER,      /* broker may not lead or be in an ISR */
    META_REC_UNFENCE_BROKER,    /* broker caught up: eligible again */
    META_REC_SHUTDOWN_BROKER,   /* broker in controlled shutdown (still unfenced, not eligible) */
    META_REC_TOPIC,             /* topic created, with its initial configs */
    META_REC_PARTITION,         /* full partition state (creation, snapshots) */
    META_REC_PARTITION_CHANGE,  /* delta of a partition; bumps its epochs */
    META_REC_REMOVE_TOPIC,      /* topic, its partitions and configs gone */
    META_REC_CONFIG,            /* set or delete one topic or cluster config */
    META_REC_PRODUCER_IDS       /* a block of producer ids handed to a broker */
} meta_record_type_t;

#define META_REC_TYPE_MAX META_REC_PRODUCER_IDS

/* Name for logs ("PARTITION_CHANGE"); "UNKNOWN" for anything else. */
const char *meta_record_type_name(int type);

typedef struct meta_listener {
    char name[META_MAX_LISTENER_NAME_LEN + 1]; /* [A-Za-z0-9_-]+, unique per broker */
    char host[META_MAX_HOST_LEN + 1];          /* non-empty */
    uint16_t port;                             /* 1..65535 */
} meta_listener_t;

typedef struct meta_config {
    char key[META_MAX_CONFIG_KEY_LEN + 1];
    char value[META_MAX_CONFIG_VALUE_LEN + 1];
} meta_config_t;

typedef struct meta_register_broker {
    int32_t broker_id;                  /* >= 0 */
    int64_t broker_epoch;               /* META_EPOCH_FROM_OFFSET in the log (§3: epoch =
                                         * record offset); explicit only in snapshots, which
                                         * replay a registration made at an older offset */
    uint8_t incarnation[KL_UUID_LEN];   /* random per broker process start; never zero */
    const meta_listener_t *listeners;   /* 1..META_MAX_LISTENERS */
    int n_listeners;
    char rack[META_MAX_RACK_LEN + 1];   /* "" = no rack */
} meta_register_broker_t;

/* FENCE / UNFENCE / SHUTDOWN name the incarnation by its epoch, so a record
 * decided for an old incarnation can never change a newer one. */
typedef struct meta_broker_ref {
    int32_t broker_id;
    int64_t broker_epoch;
} meta_broker_ref_t;

typedef struct meta_topic_record {
    char name[META_MAX_TOPIC_NAME_LEN + 1];
    uint8_t uuid[KL_UUID_LEN];     /* never zero; a re-created name gets a new uuid */
    const meta_config_t *configs;  /* 0..META_MAX_CONFIGS, distinct keys */
    int n_configs;
} meta_topic_record_t;

/* One partition's whole state. The record and the image share this type.
 * Invariants (checked on apply): replicas distinct, ISR a non-empty subset of
 * the replicas in replica order, leader in the ISR or META_NO_LEADER. */
typedef struct meta_partition {
    uint8_t topic[KL_UUID_LEN];
    int32_t partition;                 /* 0..n-1, created in order */
    int32_t replicas[META_MAX_REPLICAS]; /* replicas[0] is the preferred leader */
    int n_replicas;
    int32_t isr[META_MAX_REPLICAS];    /* in sync replicas, in replica order */
    int n_isr;
    int32_t leader;                    /* broker id or META_NO_LEADER */
    int32_t leader_epoch;              /* +1 on every leader change (§3) */
    int32_t partition_epoch;           /* +1 on every change of this partition (§3) */
} meta_partition_t;

/* A delta of one partition. Applying it bumps the partition epoch, and the
 * leader epoch when the leader differs from the current one (§3): the
 * epochs are derived on apply, never carried, so every replayer agrees. */
typedef struct meta_partition_change {
    uint8_t topic[KL_UUID_LEN];
    int32_t partition;
    int32_t leader;                     /* META_LEADER_UNCHANGED, META_NO_LEADER or a broker */
    int32_t isr[META_MAX_REPLICAS];
    int n_isr;                          /* -1: ISR unchanged */
    int32_t replicas[META_MAX_REPLICAS];
    int n_replicas;                     /* -1: replicas unchanged */
} meta_partition_change_t;

typedef enum meta_config_resource {
    META_CONFIG_CLUSTER = 1, /* default for every topic (same keys as topics) */
    META_CONFIG_TOPIC
} meta_config_resource_t;

typedef struct meta_config_record {
    meta_config_resource_t resource;
    uint8_t topic[KL_UUID_LEN];  /* TOPIC: its uuid, so a re-created namesake starts clean; CLUSTER: zero */
    char key[META_MAX_CONFIG_KEY_LEN + 1];
    char value[META_MAX_CONFIG_VALUE_LEN + 1];
    bool remove;                 /* delete the key (value ignored) */
} meta_config_record_t;

/* Producer ids [first_id, first_id + size) belong to broker_id. Blocks only
 * grow upwards, so no id is ever handed out twice. */
typedef struct meta_producer_ids {
    int32_t broker_id;
    int64_t first_id;
    int32_t size; /* 1..META_MAX_PRODUCER_ID_BLOCK */
} meta_producer_ids_t;

typedef struct meta_record {
    meta_record_type_t type;
    union {
        meta_register_broker_t reg;      /* REGISTER_BROKER */
        meta_broker_ref_t broker;        /* FENCE / UNFENCE / SHUTDOWN_BROKER */
        meta_topic_record_t topic;       /* TOPIC */
        meta_partition_t partition;      /* PARTITION */
        meta_partition_change_t change;  /* PARTITION_CHANGE */
        uint8_t remove_topic[KL_UUID_LEN]; /* REMOVE_TOPIC: the topic's uuid */
        meta_config_record_t config;     /* CONFIG */
        meta_producer_ids_t producer_ids; /* PRODUCER_IDS */
    } u;
} meta_record_t;

/* Checks what a record says on its own (lengths, NUL termination, ranges,
 * duplicates, the partition invariants): 0, or KL_EINVAL with the reason in
 * why (may be NULL). apply() runs it first; the wire decoder may run it too
 * to refuse a malformed record with a precise message. */
int meta_record_validate(const meta_record_t *rec, char *why, size_t why_len);

/* Kafka's topic name rules: 1..249 of [a-zA-Z0-9._-], not "." or "..". */
bool meta_topic_name_valid(const char *name);
/* Copies name/host into l: KL_ETOOBIG past the limits, KL_EINVAL for an empty
 * or badly formed name or host or port 0. For the service to build requests. */
int meta_listener_set(meta_listener_t *l, const char *name, const char *host, int port);

/* ---- record lists ---------------------------------------------------------- */

/* An owned, ordered list of records (a decision's output, a snapshot). */
typedef struct meta_records {
    meta_record_t *recs;
    int n;
    int cap;
} meta_records_t;

void meta_records_init(meta_records_t *l);
/* Appends a deep copy of rec (its listener/config arrays too): 0, KL_ENOMEM,
 * or KL_ETOOBIG past META_MAX_RECORDS. */
int meta_records_push(meta_records_t *l, const meta_record_t *rec);
void meta_records_clear(meta_records_t *l); /* empty, keeps capacity */
void meta_records_free(meta_records_t *l);

/* ---- the image ----------------------------------------------------------- */

typedef enum meta_broker_state {
    META_BROKER_FENCED = 0,   /* registered but not eligible (new, expired, or shut down) */
    META_BROKER_ACTIVE,       /* unfenced: may lead and be in ISRs */
    META_BROKER_SHUTTING_DOWN /* controlled shutdown: unfenced but no longer eligible */
} meta_broker_state_t;

const char *meta_broker_state_name(meta_broker_state_t s);

typedef struct meta_broker {
    int32_t id;
    int64_t epoch; /* offset of its registration record */
    uint8_t incarnation[KL_UUID_LEN];
    meta_listener_t listeners[META_MAX_LISTENERS];
    int n_listeners;
    char rack[META_MAX_RACK_LEN + 1];
    meta_broker_state_t state;
} meta_broker_t;

typedef struct meta_topic {
    char name[META_MAX_TOPIC_NAME_LEN + 1];
    uint8_t uuid[KL_UUID_LEN];
    meta_config_t *configs; /* sorted by key */
    int n_configs;
    meta_partition_t *parts; /* parts[i].partition == i */
    int n_parts;
} meta_topic_t;

typedef struct meta_image meta_image_t;

meta_image_t *meta_image_new(void); /* empty; NULL on allocation failure */
void meta_image_free(meta_image_t *img);

/* Folds one committed record in. offset is the record's log offset (it
 * becomes the broker epoch of a registration; otherwise unused). Returns 0,
 * or KL_E* when the record cannot apply — the image is then unchanged and
 * meta_image_error() says why. Committed records must apply, so the caller
 * treats an error as fatal. Records are rejected only when applying them
 * would break the image's invariants: malformed (KL_EINVAL), naming an
 * unknown broker (KL_ENOENT) or topic/partition (KL_EUNKNOWNPARTITION), an
 * older broker incarnation (KL_EFENCED), a duplicate topic (KL_EEXIST),
 * over a limit (KL_ETOOBIG), or a state change that does not exist: a new
 * incarnation over an unfenced one, unfencing a broker in controlled shutdown,
 * an overlapping producer-id block (KL_ESTATE). Repeating a broker state
 * change (fencing a fenced broker) or deleting an absent config is a no-op:
 * harmless, and refusing it would stop every replayer of the log for good. */
int meta_image_apply(meta_image_t *img, const meta_record_t *rec, int64_t offset);
const char *meta_image_error(const meta_image_t *img); /* "" after success */

/* Snapshot: appends records (brokers by id, each registration with its
 * explicit epoch then its state; topics by name, each followed by its
 * partitions; cluster configs; the last producer-id block) that rebuild an
 * equal image when applied in order to an empty one, at any offsets.
 * 0, KL_ENOMEM or KL_ETOOBIG. */
int meta_image_to_records(const meta_image_t *img, meta_records_t *out);
/* Deep copy (via to_records, so it also exercises the snapshot path). For a
 * controller that decides against committed + in-flight records. */
int meta_image_clone(const meta_image_t *img, meta_image_t **out);
/* Same brokers, topics, partitions, configs and producer-id state. */
bool meta_image_equal(const meta_image_t *a, const meta_image_t *b);

/* ---- lookups (pointers valid until the next apply or free) ---------------- */

int meta_image_broker_count(const meta_image_t *img);
const meta_broker_t *meta_image_broker_at(const meta_image_t *img, int i); /* by id */
const meta_broker_t *meta_image_broker(const meta_image_t *img, int32_t id);
int meta_image_topic_count(const meta_image_t *img);
const meta_topic_t *meta_image_topic_at(const meta_image_t *img, int i); /* by name */
const meta_topic_t *meta_image_topic(const meta_image_t *img, const char *name);
const meta_topic_t *meta_image_topic_by_uuid(const meta_image_t *img, const uint8_t uuid[KL_UUID_LEN]);
const meta_partition_t *meta_image_partition(const meta_image_t *img, const uint8_t topic[KL_UUID_LEN],
                                             int32_t partition);
int meta_image_partition_count(const meta_image_t *img); /* whole cluster */
/* Cluster-wide configs, sorted by key. */
int meta_image_cluster_config_count(const meta_image_t *img);
const meta_config_t *meta_image_cluster_config_at(const meta_image_t *img, int i);
/* First producer id not yet handed out. */
int64_t meta_image_next_producer_id(const meta_image_t *img);

/* ---- configs ---------------------------------------------------------------- */

/* Effective dynamic config: the topic's value, else the cluster-wide value,
 * else NULL (the reader then uses its static default). topic may be NULL. */
const char *meta_image_config(const meta_image_t *img, const meta_topic_t *topic, const char *key);
/* Typed views of meta_image_config(); dflt when unset. Values in the image
 * were validated by the controller, so they parse. */
bool meta_image_config_bool(const meta_image_t *img, const meta_topic_t *topic, const char *key, bool dflt);
int64_t meta_image_config_int(const meta_image_t *img, const meta_topic_t *topic, const char *key,
                              int64_t dflt);

/* The topic configs Keel knows. Kafka refuses unknown names rather than
 * store typos that silently do nothing; so do we. */
#define META_CFG_MIN_INSYNC_REPLICAS "min.insync.replicas"           /* int >= 1 (<= replication factor) */
#define META_CFG_RETENTION_MS "retention.ms"                         /* long >= -1 (-1: forever) */
#define META_CFG_RETENTION_BYTES "retention.bytes"                   /* long >= -1 */
#define META_CFG_UNCLEAN_ELECTION "unclean.leader.election.enable"   /* bool */
#define META_CFG_SEGMENT_BYTES "segment.bytes"                       /* int >= 14 */
#define META_CFG_SEGMENT_MS "segment.ms"                             /* long >= 1 */
#define META_CFG_MAX_MESSAGE_BYTES "max.message.bytes"               /* int >= 0 */

/* Validates key=value and writes its canonical text to out (booleans
 * "true"/"false" whatever the case given, integers in plain decimal):
 * 0, or KL_EINVAL (unknown key, unparsable or out-of-range value) with why. */
int meta_config_canonical(const char *key, const char *value, char out[META_MAX_CONFIG_VALUE_LEN + 1],
                          char *why, size_t why_len);

#endif
