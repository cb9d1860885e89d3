/* wire.h — frames and messages on the wire (DESIGN.md §5): the only module that
 * touches protobuf-c. Everything above it sees plain C structs. */
#ifndef KEEL_WIRE_H
#define KEEL_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/buf.h"
#include "keel/raft.h"

/* Frame: [u32 BE length of the rest][u32 BE header length H][H bytes protobuf
 * keel.Header][payload: raw bytes, e.g. RecordBatch v2 batches]. */
#define WIRE_LEN_PREFIX 4
#define WIRE_MIN_FRAME 8 /* both length fields */
#define WIRE_DEFAULT_MAX_FRAME (100u * 1024u * 1024u) /* socket.request.max.bytes */
#define WIRE_MAX_HEADER (1u * 1024u * 1024u)          /* protobuf part of a frame */
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
    WIRE_API_MAX_ = 8 /* one past the last known API */
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

typedef struct wire_api_versions_resp {
    uint32_t max_version[WIRE_API_MAX_]; /* by api number; 0 = unsupported except where listed */
    bool supported[WIRE_API_MAX_];
} wire_api_versions_resp_t;

/* One decoded frame. Requests and responses share the struct: `response`
 * tells which; `error` (a KL_E* code) and `error_message` are set on error
 * responses, `leader_id`/`leader_host`/`leader_port` hint where to retry
 * after KL_ENOTLEADER / KL_ENOTCONTROLLER. */
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
    union {
        raft_msg_t raft; /* VOTE, BEGIN/END_QUORUM_EPOCH, FETCH_RAFT, FETCH_SNAPSHOT */
        wire_describe_quorum_resp_t describe_quorum;
        wire_api_versions_resp_t api_versions;
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
 * the header only, so it may answer an unknown api or version. The message is
 * checked like a decoded one: KL_EINVAL (and wire_last_error) if it would be
 * refused by wire_decode; out is unchanged on failure. */
int wire_encode(const wire_msg_t *m, kl_buf_t *out);

/* Convenience: initialise a message (zeroes, leader_id -1). */
void wire_msg_init(wire_msg_t *m, uint32_t api, bool response, uint64_t correlation_id);

/* Maps a raft message type to its API number (0 for an invalid type); the
 * body of a Raft API message is body.raft with the matching type. */
uint32_t wire_api_for_raft(raft_msg_type_t t);

/* wire_msg_init for the API of r->type (response per the type), body.raft = *r. */
void wire_msg_from_raft(wire_msg_t *m, const raft_msg_t *r, uint64_t correlation_id);

/* The APIs and versions this build serves, for an ApiVersions response. */
void wire_api_versions_local(wire_api_versions_resp_t *out);

#endif
