/* wire.h — frames and messages on the wire (DESIGN.md §5): the only module that
 * touches protobuf-c. Everything above it sees plain C structs. */
#ifndef KEEL_WIRE_H
#define KEEL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/buf.h"
#include "keel/meta.h"
#include "keel/raft.h"

/* Frame: [u32 BE length of the rest][u32 BE header length H][H bytes protobuf
 * keel.Header][payload: raw bytes, e.g. RecordBatch v2 batches]. */
#define WIRE_LEN_PREFIX 4
#define WIRE_MIN_FRAME 8 /* both length fields */
#define WIRE_DEFAULT_MAX_FRAME (100u * 1024u * 1024u) /* socket.request.max.bytes */
#define WIRE_MAX_HEADER (16u * 1024u * 1024u)         /* protobuf part of a frame (a whole-cluster Metadata answer is the largest) */
#define WIRE_MAX_VERSION 0 /* every API is at version 0 today */
#define WIRE_ERRMSG_LEN 160
#define WIRE_HOST_LEN 256
#define WIRE_MAX_FETCH_ENTRIES RAFT_MAX_FETCH_ENTRIES /* Raft entries in one fetch response */

typedef enum wire_api {
    WIRE_API_API_VERSIONS = 1,
    WIRE_API_VOTE = 2,
    WIRE_API_BEGIN_QUORUM_EPOCH = 3,
    WIRE_API_END_QUORUM_EPOCH = 4,
    WIRE_API_FETCH_RAFT = 5, /* metadata-log fetch (voters and observers) */
    WIRE_API_FETCH_SNAPSHOT = 6,
    WIRE_API_DESCRIBE_QUORUM = 7,
    /* broker -> active controller (DESIGN.md §3) */
    WIRE_API_BROKER_REGISTRATION = 8,
    WIRE_API_BROKER_HEARTBEAT = 9,
    WIRE_API_ALTER_PARTITION = 10,
    WIRE_API_ALLOCATE_PRODUCER_IDS = 11,
    /* admin: client -> any broker, which forwards to the active controller;
     * controllers serve them directly too */
    WIRE_API_CREATE_TOPIC = 12,
    WIRE_API_DELETE_TOPIC = 13,
    WIRE_API_ELECT_LEADERS = 14,
    /* client / follower -> broker (DESIGN.md §4) */
    WIRE_API_METADATA = 15,
    WIRE_API_PRODUCE = 16,          /* payload: exactly one RecordBatch v2 */
    WIRE_API_FETCH = 17,            /* response payload: whole batches */
    WIRE_API_LIST_OFFSETS = 18,
    WIRE_API_INIT_PRODUCER_ID = 19,
    WIRE_API_MAX_ = 20 /* one past the last known API */
} wire_api_t;

const char *wire_api_name(uint32_t api);

typedef struct wire_replica {
    int32_t node_id;
    int64_t log_end_offset;
    int64_t last_fetch_timestamp;      /* unix ms, -1 unknown */
    int64_t last_caught_up_timestamp;  /* unix ms, -1 unknown */
} wire_replica_t;

typedef struct wire_describe_quorum_resp {
    char cluster_id[64];
    int32_t leader_id;
    int32_t leader_epoch;
    int64_t high_watermark;
    wire_replica_t voters[RAFT_MAX_VOTERS];
    int n_voters;
    wire_replica_t observers[RAFT_MAX_OBSERVERS];
    int n_observers;
} wire_describe_quorum_resp_t;

/* ---- broker <-> controller ---------------------------------------------------- */

typedef struct wire_broker_registration_req {
    int32_t broker_id;
    uint8_t incarnation[KL_UUID_LEN]; /* random per process start, never zero */
    meta_listener_t listeners[META_MAX_LISTENERS];
    int n_listeners;                  /* 1..META_MAX_LISTENERS */
    char rack[META_MAX_RACK_LEN + 1]; /* "" = none */
} wire_broker_registration_req_t;

typedef struct wire_broker_registration_resp {
    int64_t broker_epoch; /* offset of the committed registration record */
} wire_broker_registration_resp_t;

typedef struct wire_broker_heartbeat_req {
    int32_t broker_id;
    int64_t broker_epoch;
    int64_t metadata_offset; /* last metadata record applied, -1 none */
    bool want_fence;
    bool want_shutdown;      /* controlled shutdown */
} wire_broker_heartbeat_req_t;

typedef struct wire_broker_heartbeat_resp {
    bool fenced;
    bool shutting_down;
    bool shutdown_now;
} wire_broker_heartbeat_resp_t;

typedef struct wire_alter_partition_req {
    int32_t broker_id;
    int64_t broker_epoch;
    uint8_t topic_id[KL_UUID_LEN];
    int32_t partition;
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t isr[META_MAX_REPLICAS];
    int n_isr; /* 1..META_MAX_REPLICAS */
} wire_alter_partition_req_t;

typedef struct wire_alter_partition_resp {
    int32_t leader;
    int32_t leader_epoch;
    int32_t partition_epoch;
    int32_t isr[META_MAX_REPLICAS];
    int n_isr;
} wire_alter_partition_resp_t;

typedef struct wire_allocate_producer_ids_req {
    int32_t broker_id;
    int64_t broker_epoch;
} wire_allocate_producer_ids_req_t;

typedef struct wire_allocate_producer_ids_resp {
    int64_t first_id;
    int32_t size;
} wire_allocate_producer_ids_resp_t;

/* ---- admin ------------------------------------------------------------------------ */

typedef struct wire_create_topic_req {
    char name[META_MAX_TOPIC_NAME_LEN + 1];
    int32_t partitions;         /* -1: num.partitions */
    int32_t replication_factor; /* -1: default.replication.factor */
    meta_config_t configs[META_MAX_CONFIGS];
    int n_configs;
} wire_create_topic_req_t;

typedef struct wire_create_topic_resp {
    uint8_t topic_id[KL_UUID_LEN];
    int32_t partitions;
    int32_t replication_factor;
} wire_create_topic_resp_t;

typedef struct wire_delete_topic_req {
    char name[META_MAX_TOPIC_NAME_LEN + 1];
} wire_delete_topic_req_t;

typedef struct wire_delete_topic_resp {
    uint8_t topic_id[KL_UUID_LEN];
} wire_delete_topic_resp_t;

typedef struct wire_elect_leaders_req {
    char topic[META_MAX_TOPIC_NAME_LEN + 1]; /* "" = every topic */
    bool preferred;                          /* the only kind served today; false is KL_EINVAL */
} wire_elect_leaders_req_t;

typedef struct wire_elect_leaders_resp {
    int32_t partitions_elected;   /* leadership moved to the preferred replica */
    char message[WIRE_ERRMSG_LEN]; /* what was decided, e.g. why some partitions kept their leader */
} wire_elect_leaders_resp_t;

/* ---- data plane -------------------------------------------------------------------- */

#define WIRE_MAX_METADATA_TOPICS 1024 /* names in one Metadata request */

typedef struct wire_metadata_req {
    char (*topics)[META_MAX_TOPIC_NAME_LEN + 1]; /* n_topics names; 0 = every topic */
    int n_topics;
} wire_metadata_req_t;

typedef struct wire_broker_info {
    int32_t id;
    int64_t epoch;
    meta_broker_state_t state;
    char rack[META_MAX_RACK_LEN + 1];
    meta_listener_t listeners[META_MAX_LISTENERS];
    int n_listeners;
} wire_broker_info_t;

typedef struct wire_topic_info {
    char name[META_MAX_TOPIC_NAME_LEN + 1];
    uint8_t topic_id[KL_UUID_LEN];       /* zero when error != 0 */
    int32_t error;                        /* KL_EUNKNOWNPARTITION for a requested name that does not exist */
    const meta_config_t *configs;         /* explicit topic configs */
    int n_configs;
    const meta_partition_t *partitions;   /* partitions[i].partition == i */
    int n_partitions;
} wire_topic_info_t;

/* Pointers are borrowed when encoding; after wire_decode they point into the
 * message's owned memory. */
typedef struct wire_metadata_resp {
    int32_t controller_id;           /* active controller, -1 unknown */
    int64_t metadata_offset;         /* the image the answer comes from, -1 none */
    const wire_broker_info_t *brokers; /* every registered broker, by id */
    int n_brokers;
    const wire_topic_info_t *topics; /* by name */
    int n_topics;
} wire_metadata_resp_t;

#define WIRE_NO_EPOCH (-1) /* leader_epoch -1 in a client request: do not check it */

typedef struct wire_produce_req {
    char topic[META_MAX_TOPIC_NAME_LEN + 1];
    int32_t partition;
    int32_t acks;         /* 0, 1, -1 (all) */
    int32_t timeout_ms;   /* acks=all: answer KL_ETIMEOUT if the HW has not covered the batch by then */
    int32_t leader_epoch; /* the client's belief (KIP-320), WIRE_NO_EPOCH: unchecked */
    /* payload: exactly one RecordBatch v2 (validated by the broker) */
} wire_produce_req_t;

typedef struct wire_produce_resp {
    int64_t base_offset;     /* -1 on error */
    int64_t log_start_offset;
    int32_t leader_epoch;    /* the leader's current epoch */
} wire_produce_resp_t;

typedef struct wire_fetch_req {
    char topic[META_MAX_TOPIC_NAME_LEN + 1];
    uint8_t topic_id[KL_UUID_LEN]; /* zero: any; else must match (a re-created namesake is another topic) */
    int32_t partition;
    int32_t replica_id;         /* follower broker id, or -1 for a consumer */
    int64_t broker_epoch;       /* follower's broker epoch (KIP-903), -1 for consumers */
    int32_t leader_epoch;       /* KIP-320; WIRE_NO_EPOCH: unchecked (consumers only) */
    int64_t fetch_offset;
    int32_t last_fetched_epoch; /* follower: epoch of fetch_offset - 1, -1 none (KIP-595 divergence check) */
    int32_t max_bytes;          /* first batch is always whole even when larger */
    int32_t max_wait_ms;        /* long poll: fetch.max.wait.ms / replica.fetch.wait.max.ms */
    int32_t min_bytes;          /* answer early once this many bytes are readable */
} wire_fetch_req_t;

typedef struct wire_fetch_resp {
    int64_t high_watermark;
    int64_t log_start_offset;
    int64_t log_end_offset;
    int32_t leader_epoch;
    int32_t diverging_epoch;      /* -1 if none */
    int64_t diverging_end_offset; /* -1 if none */
    /* payload: whole batches from the batch containing fetch_offset */
} wire_fetch_resp_t;

#define WIRE_OFFSET_LATEST (-1)   /* ListOffsets timestamp: the high watermark (Kafka) */
#define WIRE_OFFSET_EARLIEST (-2) /* the log start offset */

typedef struct wire_list_offsets_req {
    char topic[META_MAX_TOPIC_NAME_LEN + 1];
    int32_t partition;
    int64_t timestamp;    /* WIRE_OFFSET_LATEST or WIRE_OFFSET_EARLIEST */
    int32_t leader_epoch; /* WIRE_NO_EPOCH: unchecked */
} wire_list_offsets_req_t;

typedef struct wire_list_offsets_resp {
    int64_t offset;
    int32_t leader_epoch;
} wire_list_offsets_resp_t;

typedef struct wire_init_producer_id_resp {
    int64_t producer_id;
    int16_t producer_epoch;
} wire_init_producer_id_resp_t;

typedef struct wire_api_versions_resp {
    uint32_t max_version[WIRE_API_MAX_]; /* by api number; 0 = unsupported except where listed */
    bool supported[WIRE_API_MAX_];
} wire_api_versions_resp_t;

/* One decoded frame. Requests and responses share the struct: `response`
 * tells which; `error` (a KL_E* code) and `error_message` are set on error
 * responses, `leader_id`/`leader_host`/`leader_port` hint where to retry
 * after KL_ENOTLEADER / KL_ENOTCONTROLLER. `error_body`: an error response
 * carries its body too (FETCH only, see wire_encode). */
typedef struct wire_msg {
    uint32_t api;
    uint32_t version;
    uint64_t correlation_id;
    bool response;
    int32_t error;
    char error_message[WIRE_ERRMSG_LEN];
    int32_t leader_id;
    char leader_host[WIRE_HOST_LEN];
    int32_t leader_port;
    char cluster_id[64]; /* sender's cluster id on Raft requests; receivers refuse a mismatch */
    bool error_body;     /* error response with its body (never a payload); set by wire_decode when one came */
    union {
        raft_msg_t raft; /* VOTE, BEGIN/END_QUORUM_EPOCH, FETCH_RAFT, FETCH_SNAPSHOT */
        wire_describe_quorum_resp_t describe_quorum;
        wire_api_versions_resp_t api_versions;
        wire_broker_registration_req_t broker_registration;
        wire_broker_registration_resp_t broker_registration_resp;
        wire_broker_heartbeat_req_t broker_heartbeat;
        wire_broker_heartbeat_resp_t broker_heartbeat_resp;
        wire_alter_partition_req_t alter_partition;
        wire_alter_partition_resp_t alter_partition_resp;
        wire_allocate_producer_ids_req_t allocate_producer_ids;
        wire_allocate_producer_ids_resp_t allocate_producer_ids_resp;
        wire_create_topic_req_t create_topic;
        wire_create_topic_resp_t create_topic_resp;
        wire_delete_topic_req_t delete_topic;
        wire_delete_topic_resp_t delete_topic_resp;
        wire_elect_leaders_req_t elect_leaders;
        wire_elect_leaders_resp_t elect_leaders_resp;
        wire_metadata_req_t metadata;
        wire_metadata_resp_t metadata_resp;
        wire_produce_req_t produce;
        wire_produce_resp_t produce_resp;
        wire_fetch_req_t fetch;
        wire_fetch_resp_t fetch_resp;
        wire_list_offsets_req_t list_offsets;
        wire_list_offsets_resp_t list_offsets_resp;
        wire_init_producer_id_resp_t init_producer_id_resp; /* the request has no body */
    } body;
    const uint8_t *payload; /* raw bytes after the header, inside the frame */
    size_t payload_len;
    void *owned_; /* decoder-owned memory (frame buffer, entry arrays) */
} wire_msg_t;

/* Why the last wire_frame_split / wire_decode / wire_encode on this thread
 * failed, for the log line that closes the connection ("" if none yet). */
const char *wire_last_error(void);

/* Splits a stream: with `avail` bytes buffered, returns 0 and sets *frame_len
 * (including the 4-byte prefix) when a whole frame is present, KL_EAGAIN when
 * more bytes are needed, KL_ETOOBIG when the announced length exceeds
 * max_frame, KL_EPROTO when it is below WIRE_MIN_FRAME - WIRE_LEN_PREFIX. */
int wire_frame_split(const uint8_t *data, size_t avail, size_t max_frame, size_t *frame_len);

/* Decodes one whole frame (as cut by wire_frame_split). Takes ownership of
 * `frame` (malloc'd) on success and on failure. KL_EPROTO for anything
 * malformed (header length past the end, undecodable protobuf, body not
 * matching api, bad record batch CRC), KL_EUNKNOWNAPI for an unknown api
 * (in that case *out is still filled with api and correlation id so the
 * caller can answer with an error response), KL_EUNSUPPORTED for a version
 * above WIRE_MAX_VERSION (likewise filled). *out is NULL on any other error.
 * Fetch-response entries are checked to be consecutive among themselves; that
 * the first one is at the request's fetch_offset is the requester's check.
 * wire_msg_free is only for messages from wire_decode. */
int wire_decode(uint8_t *frame, size_t frame_len, wire_msg_t **out);
void wire_msg_free(wire_msg_t *m);

/* Appends one whole frame (prefix included) to out. Raft fetch-response
 * entries go into the payload as RecordBatch v2 batches (one batch per run of
 * entries with the same epoch and control flag); a snapshot chunk is the
 * payload of a FetchSnapshot response. An error response (error != 0) carries
 * the header only, so it may answer an unknown api or version; except that a
 * FETCH error response with error_body set carries its body as well (no
 * payload): KL_ERANGE tells the leader's log start, end and high watermark, so
 * a follower below the log start restarts there and a consumer can say where
 * the log starts. The body stays optional: one without it still decodes
 * (error_body false, body zeroed). The message is
 * checked like a decoded one: KL_EINVAL (and wire_last_error) if it would be
 * refused by wire_decode; out is unchanged on failure. */
/* PRODUCE requests and FETCH responses carry m->payload (payload_len bytes)
 * after the header as it is: wire_encode appends it, wire_decode points into
 * the frame without looking inside (the broker validates a produced batch,
 * a follower or consumer each fetched batch, with recbatch_validate).
 * METADATA arrays are bounded by META_MAX_BROKERS, META_MAX_TOPICS,
 * META_MAX_TOPIC_PARTITIONS, META_MAX_CONFIGS; strings by their fields;
 * decoding anything over a bound or not NUL-terminable is KL_EPROTO. */
int wire_encode(const wire_msg_t *m, kl_buf_t *out);

/* Convenience: initialise a message: zeroes, except leader_id and the
 * body fields that mean "none" at -1 (fetch epochs and replica id, metadata
 * controller and offset, create-topic counts, produce/list-offsets epochs,
 * heartbeat metadata offset); list-offsets timestamp starts at LATEST. */
void wire_msg_init(wire_msg_t *m, uint32_t api, bool response, uint64_t correlation_id);

/* Maps a raft message type to its API number (0 for an invalid type); the
 * body of a Raft API message is body.raft with the matching type. */
uint32_t wire_api_for_raft(raft_msg_type_t t);

/* wire_msg_init for the API of r->type (response per the type), body.raft = *r. */
void wire_msg_from_raft(wire_msg_t *m, const raft_msg_t *r, uint64_t correlation_id);

/* The APIs and versions this build serves, for an ApiVersions response. */
void wire_api_versions_local(wire_api_versions_resp_t *out);

#endif
