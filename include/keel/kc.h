/* kc.h — Keel's C client library (used by keelctl and the tools): bootstrap, metadata, leader routing, retries, batching producer with idempotence, partition consumer. */
#ifndef KEEL_KC_H
#define KEEL_KC_H

/* Threading: none. A client owns a private net loop; every call runs it
 * until its own work is done (or kc_poll for a bounded time), so delivery
 * and record callbacks run from inside kc_* calls, never concurrently.
 * Blocking calls (kc_flush, kc_consume, kc_poll, admin, and kc_produce for a
 * topic whose metadata is not cached) cannot run from inside a callback:
 * they return KL_ESTATE there. Do not free a producer or consumer from its
 * own callbacks.
 *
 * Errors are KL_E* codes. Retriable ones (KL_ENOTLEADER, KL_EFENCED,
 * KL_EUNKNOWNEPOCH, KL_EUNKNOWNPARTITION while metadata catches up,
 * KL_ENOTENOUGHREPLICAS, KL_ETIMEOUT, KL_ECLOSED, KL_ECONNECT,
 * KL_ENOTCONTROLLER, KL_ESHUTDOWN, KL_ENOTAVAILABLE) are retried with retry.backoff.ms after
 * a metadata refresh until delivery.timeout.ms; the rest fail at once. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/meta.h"
#include "keel/net.h"
#include "keel/wire.h"

#define KC_MAX_BOOTSTRAP 16
#define KC_MAX_IN_FLIGHT 5            /* per partition: the idempotence window (REPLICA_PRODUCER_BATCHES) */
#define KC_DEFAULT_BATCH_BYTES 16384  /* batch.size */
#define KC_MAX_BATCH_BYTES (1u << 20) /* batch.size bound */
#define KC_DEFAULT_BUFFER_BYTES (32LL << 20) /* buffer.memory */

#define KC_PARTITION_ANY (-1)  /* produce: by key hash (murmur2 like Kafka) or, without a key, sticky per batch */
#define KC_OFFSET_BEGINNING (-2)
#define KC_OFFSET_END (-1)     /* the high watermark: only records produced from now on */

typedef struct kc_config {
    const char *bootstrap;      /* "host:port[,host:port...]" of brokers */
    net_tls_t *tls;             /* client TLS context or NULL */
    int request_timeout_ms;     /* request.timeout.ms: 30000 */
    int retry_backoff_ms;       /* retry.backoff.ms: 100 */
    int64_t metadata_max_age_ms; /* metadata.max.age.ms: 300000 */
    net_loop_t *loop;           /* NULL: a private loop (the normal case); else run on this one,
                                 * which outlives the client (in-process servers in tests) */
} kc_config_t;

void kc_config_defaults(kc_config_t *cfg);

typedef struct kc_client kc_client_t;

/* Parses the bootstrap list and makes the loop; connects lazily. NULL with err. */
kc_client_t *kc_client_new(const kc_config_t *cfg, char *err, size_t errlen);
void kc_client_free(kc_client_t *c);
/* Runs the loop up to timeout_ms or until something completes (delivery,
 * record, error). 0 or KL_E*. */
int kc_poll(kc_client_t *c, int timeout_ms);
/* Whether err is one of the retriable errors listed at the top of this file:
 * the client retries those itself, so a caller seeing one may just go on. */
bool kc_retriable(int err);
/* The last error's detailed text ("broker 101 at 127.0.0.1:9192: not the leader ..."). */
const char *kc_last_error(const kc_client_t *c);

/* Kafka's Utils.murmur2 (seed 0x9747b28c) of len bytes, as a signed 32-bit value. */
int32_t kc_murmur2(const void *data, size_t len);
/* Kafka's default partitioner for a keyed record: toPositive(murmur2(key)) % n. */
int32_t kc_key_partition(const void *key, size_t key_len, int32_t n_partitions);

/* ---- metadata and admin (blocking, bounded by timeout_ms) ------------------ */

/* A Metadata response for the given topics (NULL/0 = all), from any live
 * bootstrap or known broker; *out is owned by the caller (wire_msg_free)
 * and body.metadata_resp holds it. Also refreshes the client's own view. */
int kc_metadata(kc_client_t *c, const char *const *topics, int n_topics, int timeout_ms, wire_msg_t **out);

/* Admin requests go to any broker, which forwards them to the active
 * controller; answered once their records committed. The result is in
 * *out (owned, wire_msg_free; may be NULL on transport failure); the return
 * is the error (KL_EEXIST for a taken name, ...). */
int kc_create_topic(kc_client_t *c, const wire_create_topic_req_t *req, int timeout_ms, wire_msg_t **out);
int kc_delete_topic(kc_client_t *c, const char *name, int timeout_ms, wire_msg_t **out);
int kc_elect_preferred(kc_client_t *c, const char *topic /* NULL: all */, int timeout_ms, wire_msg_t **out);

/* ListOffsets on the partition's leader: timestamp WIRE_OFFSET_EARLIEST or
 * WIRE_OFFSET_LATEST (the high watermark). */
int kc_list_offset(kc_client_t *c, const char *topic, int32_t partition, int64_t timestamp, int timeout_ms,
                   int64_t *offset);

/* ---- producer ---------------------------------------------------------------- */

typedef struct kc_producer_config {
    int acks;                    /* 0, 1, -1 (all): -1 */
    bool idempotent;             /* enable.idempotence: true (needs acks=all; forced off otherwise) */
    int linger_ms;               /* linger.ms: 5 */
    int batch_bytes;             /* batch.size: KC_DEFAULT_BATCH_BYTES */
    int max_in_flight;           /* per partition, 1..KC_MAX_IN_FLIGHT: 5 */
    int64_t delivery_timeout_ms; /* delivery.timeout.ms: 120000 */
    int64_t buffer_bytes;        /* buffer.memory: KC_DEFAULT_BUFFER_BYTES; kc_produce says KL_EFULL beyond */
} kc_producer_config_t;

void kc_producer_config_defaults(kc_producer_config_t *cfg);

/* Delivery report: err 0 with the record's partition and offset, or the
 * final error (after retries). Exactly once per accepted kc_produce, in send
 * order per partition. acks=0: reported once written to the socket, offset -1. */
typedef void (*kc_delivery_cb)(void *opaque, int err, int32_t partition, int64_t offset);

typedef struct kc_producer kc_producer_t;

kc_producer_t *kc_producer_new(kc_client_t *c, const kc_producer_config_t *cfg, char *err, size_t errlen);
/* Flushes nothing: pending records are failed with KL_ESHUTDOWN. Call kc_flush first. */
void kc_producer_free(kc_producer_t *p);
/* Queues one record (copied). KL_EFULL when buffer.memory is used up (poll
 * and try again), KL_ETOOBIG for a record over KC_MAX_BATCH_BYTES,
 * KL_EUNKNOWNPARTITION when the topic or partition does not exist (after a
 * metadata refresh, which may block up to request.timeout.ms the first time
 * a topic is used). key NULL = null key; value NULL = null value;
 * timestamp_ms < 0 = now. */
int kc_produce(kc_producer_t *p, const char *topic, int32_t partition, const void *key, int32_t key_len,
               const void *value, int32_t value_len, int64_t timestamp_ms, kc_delivery_cb cb, void *opaque);
/* Runs the loop until every queued record is reported, or timeout_ms
 * (KL_ETIMEOUT). */
int kc_flush(kc_producer_t *p, int timeout_ms);
/* Records queued or in flight. */
int64_t kc_producer_outstanding(const kc_producer_t *p);

/* ---- consumer ----------------------------------------------------------------- */

typedef struct kc_consumer_config {
    int fetch_max_wait_ms;   /* fetch.max.wait.ms: 500 */
    int fetch_min_bytes;     /* fetch.min.bytes: 1 */
    int max_partition_fetch_bytes; /* max.partition.fetch.bytes: 1048576 */
} kc_consumer_config_t;

void kc_consumer_config_defaults(kc_consumer_config_t *cfg);

typedef struct kc_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    const uint8_t *key;   /* NULL when null */
    int32_t key_len;      /* -1 when null */
    const uint8_t *value; /* NULL when null */
    int32_t value_len;
} kc_record_t;

typedef struct kc_consumer kc_consumer_t;

kc_consumer_t *kc_consumer_new(kc_client_t *c, const kc_consumer_config_t *cfg, char *err, size_t errlen);
void kc_consumer_free(kc_consumer_t *k);
/* Adds a partition at offset (>= 0, KC_OFFSET_BEGINNING or KC_OFFSET_END,
 * resolved with ListOffsets on first fetch). KL_EEXIST if already assigned. */
int kc_consumer_assign(kc_consumer_t *k, const char *topic, int32_t partition, int64_t offset);
/* One poll: fetches every assigned partition concurrently from its leader
 * (long poll), waits at most timeout_ms, and calls fn for each record, in
 * offset order per partition, only below the high watermark. Returns the
 * number of records delivered (0 when nothing arrived in time) or a
 * non-retriable error (KL_ERANGE when a position fell out of the log). */
int kc_consume(kc_consumer_t *k, int timeout_ms, void (*fn)(void *arg, const kc_record_t *r), void *arg);
/* Next offset of an assigned partition, -1 if not assigned / not resolved. */
int64_t kc_consumer_position(const kc_consumer_t *k, const char *topic, int32_t partition);

#endif
