/* wire_impl.h — private to src/wire: the per-API codec table entries, encoder
 * scratch, decoder-owned memory and error reasons that wire.c (framing, Raft
 * APIs) and wire_data.c (broker, admin and data-plane APIs) share. */
#ifndef KEEL_WIRE_IMPL_H
#define KEEL_WIRE_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "keel.pb-c.h"
#include "keel/wire.h"

#define WIRE_REPLICAS_MAX (RAFT_MAX_VOTERS + RAFT_MAX_OBSERVERS)
#define WIRE_FIRST_DATA_API WIRE_API_BROKER_REGISTRATION /* wire_data.c serves this one and above */
#define WIRE_SCRATCH_BLOCKS 10 /* heap arrays one encode may need (a Metadata response's) */
#define WIRE_DECODED_BLOCKS 4  /* heap arrays one decoded message may own (likewise) */

/* Encoder scratch: the body message and sub-messages live here until packed;
 * variable-size arrays come from wire_scratch_alloc. */
typedef struct wire_scratch {
    union {
        ProtobufCMessage base;
        Keel__ApiVersionsRequest api_versions_req;
        Keel__ApiVersionsResponse api_versions_resp;
        Keel__VoteRequest vote_req;
        Keel__VoteResponse vote_resp;
        Keel__BeginQuorumEpochRequest begin_req;
        Keel__BeginQuorumEpochResponse begin_resp;
        Keel__EndQuorumEpochRequest end_req;
        Keel__EndQuorumEpochResponse end_resp;
        Keel__FetchRaftRequest fetch_raft_req;
        Keel__FetchRaftResponse fetch_raft_resp;
        Keel__FetchSnapshotRequest snap_req;
        Keel__FetchSnapshotResponse snap_resp;
        Keel__DescribeQuorumRequest describe_req;
        Keel__DescribeQuorumResponse describe_resp;
        Keel__BrokerRegistrationRequest registration_req;
        Keel__BrokerRegistrationResponse registration_resp;
        Keel__BrokerHeartbeatRequest heartbeat_req;
        Keel__BrokerHeartbeatResponse heartbeat_resp;
        Keel__AlterPartitionRequest alter_req;
        Keel__AlterPartitionResponse alter_resp;
        Keel__AllocateProducerIdsRequest pids_req;
        Keel__AllocateProducerIdsResponse pids_resp;
        Keel__CreateTopicRequest create_req;
        Keel__CreateTopicResponse create_resp;
        Keel__DeleteTopicRequest delete_req;
        Keel__DeleteTopicResponse delete_resp;
        Keel__ElectLeadersRequest elect_req;
        Keel__ElectLeadersResponse elect_resp;
        Keel__MetadataRequest metadata_req;
        Keel__MetadataResponse metadata_resp;
        Keel__ProduceRequest produce_req;
        Keel__ProduceResponse produce_resp;
        Keel__FetchRequest fetch_req;
        Keel__FetchResponse fetch_resp;
        Keel__ListOffsetsRequest list_offsets_req;
        Keel__ListOffsetsResponse list_offsets_resp;
        Keel__InitProducerIdRequest init_pid_req;
        Keel__InitProducerIdResponse init_pid_resp;
    } body;
    Keel__RaftCommon raft;
    Keel__SnapshotId snapshot_id;
    Keel__ApiVersion apis[WIRE_API_MAX_];
    Keel__ApiVersion *api_ptrs[WIRE_API_MAX_];
    Keel__ReplicaState replicas[WIRE_REPLICAS_MAX];
    Keel__ReplicaState *replica_ptrs[WIRE_REPLICAS_MAX];
    Keel__Listener listeners[META_MAX_LISTENERS];
    Keel__Listener *listener_ptrs[META_MAX_LISTENERS];
    Keel__ConfigEntry configs[META_MAX_CONFIGS];
    Keel__ConfigEntry *config_ptrs[META_MAX_CONFIGS];
    void *heap[WIRE_SCRATCH_BLOCKS]; /* NULL or owned; freed by wire_encode */
} wire_scratch_t;

/* A decoded message and everything it points into, freed together. */
typedef struct wire_decoded {
    wire_msg_t msg; /* first: wire_msg_free gets &msg */
    uint8_t *frame;
    raft_entry_t *entries;
    void *blocks[WIRE_DECODED_BLOCKS];
} wire_decoded_t;

typedef struct wire_body_ops {
    Keel__Header__BodyCase body_case;
    const ProtobufCMessageDescriptor *desc;
    raft_msg_type_t raft_type; /* 0: not a Raft message */
    /* C -> protobuf fields beyond the message's init (NULL: empty message);
     * runs after check, so counts are in bounds. 0 or KL_ENOMEM. */
    int (*enc)(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s);
    /* protobuf -> C; may read the payload and own memory via wire_owned_alloc.
     * 0 or KL_EPROTO/KL_ENOMEM. */
    int (*dec)(const ProtobufCMessage *pb, wire_msg_t *m);
    /* Range checks shared by encoder and decoder (NULL: nothing to check). */
    bool (*check)(const wire_msg_t *m);
    /* Appends the payload the body implies; NULL: the message has none. */
    int (*put_payload)(const wire_msg_t *m, kl_buf_t *out);
    /* An error response may carry this body too (wire_msg_t.error_body), never a payload. */
    bool on_error;
} wire_body_ops_t;

typedef struct wire_api_ops {
    const char *name;
    wire_body_ops_t req, resp;
} wire_api_ops_t;

#define WIRE_BODY(CASE, desc, raft, enc, dec, check, payload)                              \
    { KEEL__HEADER__BODY_##CASE, &keel__##desc##__descriptor, raft, enc, dec, check, payload, false }
/* A response body that may also travel with an error (see on_error). */
#define WIRE_BODY_ON_ERROR(CASE, desc, enc, dec, check, payload)                           \
    { KEEL__HEADER__BODY_##CASE, &keel__##desc##__descriptor, 0, enc, dec, check, payload, true }

/* APIs WIRE_FIRST_DATA_API .. WIRE_API_MAX_ - 1, indexed from the first. */
extern const wire_api_ops_t wire_data_apis[WIRE_API_MAX_ - WIRE_FIRST_DATA_API];

/* Sets wire_last_error and returns code. */
int wire_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* For the checks shared by encoder (KL_EINVAL) and decoder (KL_EPROTO):
 * sets wire_last_error and returns false. */
bool wire_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define WIRE_CHECK(cond, ...)                                                            \
    do {                                                                                 \
        if (!(cond)) return wire_bad(__VA_ARGS__);                                       \
    } while (0)

/* Decoding: copies src into dst[cap]; KL_EPROTO if it does not fit with its NUL. */
int wire_copy_str(char *dst, size_t cap, const char *src, const char *what);
/* Zeroed n * size bytes freed with the scratch (encoder) or the message
 * (decoder); NULL (with wire_last_error) on overflow or no memory. n may be 0. */
void *wire_scratch_alloc(wire_scratch_t *s, size_t n, size_t size);
void *wire_owned_alloc(wire_msg_t *m, size_t n, size_t size);

#endif
