/* recbatch.h — Kafka RecordBatch v2 (DESIGN.md §5): build, check, iterate, and stamp offsets in place. */
#ifndef KEEL_RECBATCH_H
#define KEEL_RECBATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/buf.h"
#include "keel/raft.h"

/* Layout, byte-exact with Kafka (all big-endian):
 *   0 baseOffset i64 | 8 batchLength i32 (bytes after this field)
 *  12 partitionLeaderEpoch i32 | 16 magic i8 = 2 | 17 crc u32 (CRC-32C of 21..end)
 *  21 attributes i16 | 23 lastOffsetDelta i32 | 27 baseTimestamp i64
 *  35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
 *  53 baseSequence i32 | 57 recordCount i32 | 61 records...
 * Record: length varint, attributes i8, timestampDelta varlong, offsetDelta
 * varint, keyLength varint (-1 = null), key, valueLength varint (-1 = null),
 * value, headerCount varint, headers (keyLength varint, key, valueLength
 * varint (-1 = null), value). */
#define RECBATCH_MAGIC 2
#define RECBATCH_HEADER_LEN 61
#define RECBATCH_LOG_OVERHEAD 12 /* baseOffset + batchLength: not counted in batchLength */
#define RECBATCH_CRC_START 21 /* CRC covers attributes..end */
#define RECBATCH_MAX_BYTES (16u * 1024u * 1024u) /* one whole batch, header included */
/* A Raft entry of RAFT_MAX_ENTRY_BYTES must fit one batch as its only record:
 * header + 13 bytes of record framing + data (computed in raft.h). */
_Static_assert(RECBATCH_HEADER_LEN + 13u + RAFT_MAX_ENTRY_BYTES <= RECBATCH_MAX_BYTES,
               "RAFT_MAX_ENTRY_BYTES exceeds what one RecordBatch holds");

#define RECBATCH_ATTR_COMPRESSION_MASK 0x07 /* Keel stores uncompressed batches only */
#define RECBATCH_ATTR_LOG_APPEND_TIME 0x08
#define RECBATCH_ATTR_TRANSACTIONAL 0x10
#define RECBATCH_ATTR_CONTROL 0x20
#define RECBATCH_ATTR_KNOWN                                                                        \
    (RECBATCH_ATTR_LOG_APPEND_TIME | RECBATCH_ATTR_TRANSACTIONAL | RECBATCH_ATTR_CONTROL)

#define RECBATCH_NO_PRODUCER_ID (-1)
#define RECBATCH_NO_PRODUCER_EPOCH (-1)
#define RECBATCH_NO_SEQUENCE (-1)

typedef struct recbatch_header {
    int64_t base_offset;
    int32_t batch_length;
    int32_t leader_epoch; /* partitionLeaderEpoch */
    int8_t magic;
    uint32_t crc;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
} recbatch_header_t;

/* Whole batch size in bytes (header included). */
static inline size_t recbatch_total_size(const recbatch_header_t *h)
{
    return RECBATCH_LOG_OVERHEAD + (size_t)(uint32_t)h->batch_length;
}
/* Offset after the batch's last record. */
static inline int64_t recbatch_next_offset(const recbatch_header_t *h)
{
    return h->base_offset + h->last_offset_delta + 1;
}
static inline bool recbatch_is_control(const recbatch_header_t *h)
{
    return (h->attributes & RECBATCH_ATTR_CONTROL) != 0;
}

/* Decodes the fixed header from p[0..len) and checks what it alone can tell:
 * magic, batchLength within [header, RECBATCH_MAX_BYTES], attributes, counts
 * and deltas not negative. The records themselves may lie beyond len.
 * KL_EAGAIN if len < RECBATCH_HEADER_LEN, KL_ECORRUPT for a bad field,
 * KL_ETOOBIG for an oversized batch, KL_EUNSUPPORTED for compression or
 * unknown attribute bits. Never reads past len, never checks the CRC. */
int recbatch_parse_header(const uint8_t *p, size_t len, recbatch_header_t *h);

/* Full check of the batch at p (len = bytes available, may be more than the
 * batch): the header as above, KL_EAGAIN if the batch extends past len, then
 * CRC, and every record well-formed, lying inside the batch, with offset
 * deltas 0..recordCount-1 in order, lastOffsetDelta = recordCount-1 and
 * nothing left over (KL_ECORRUPT otherwise). Fills *h on success. Advance
 * by recbatch_total_size(h) to the next batch. */
int recbatch_validate(const uint8_t *p, size_t len, recbatch_header_t *h);

/* In-place rewrites of fields outside the CRC, so no recomputation: the
 * leader stamps offsets and its epoch into a received batch (DESIGN.md §5). */
void recbatch_set_base_offset(uint8_t *batch, int64_t base_offset);
void recbatch_set_leader_epoch(uint8_t *batch, int32_t leader_epoch);

/* ---- records --------------------------------------------------------------- */

/* Byte string that may be null (len -1, data NULL). */
typedef struct recbatch_bytes {
    const uint8_t *data;
    int32_t len;
} recbatch_bytes_t;

typedef struct recbatch_rec_header {
    recbatch_bytes_t key; /* never null in a valid record */
    recbatch_bytes_t value;
} recbatch_rec_header_t;

typedef struct recbatch_record {
    int64_t offset; /* base_offset + offset_delta */
    int64_t timestamp; /* base_timestamp + timestamp_delta */
    int32_t offset_delta;
    int64_t timestamp_delta;
    int8_t attributes;
    recbatch_bytes_t key;
    recbatch_bytes_t value;
    uint32_t header_count;
    const uint8_t
        *headers; /* header_count encoded headers; walk them with recbatch_rec_header_next */
    size_t headers_len;
} recbatch_record_t;

typedef struct recbatch_iter {
    const uint8_t *pos, *end;
    int64_t base_offset;
    int64_t base_timestamp;
    int32_t left; /* records not yet returned, per recordCount */
} recbatch_iter_t;

/* Starts iterating the batch at p (which must lie whole within len: KL_EAGAIN
 * otherwise). Checks the header, not the CRC: use recbatch_validate first on
 * untrusted bytes. */
int recbatch_iter_init(recbatch_iter_t *it, const uint8_t *p, size_t len);
/* 0 with *rec filled, KL_ENOENT after the last record, KL_ECORRUPT if the
 * next record is malformed or the batch holds more or fewer records than
 * recordCount says. Pointers in *rec point into the batch. */
int recbatch_iter_next(recbatch_iter_t *it, recbatch_record_t *rec);
/* Walks a record's headers: *pos starts at rec->headers, end is
 * rec->headers + rec->headers_len. 0 with *out, KL_ENOENT at end, KL_ECORRUPT. */
int recbatch_rec_header_next(const uint8_t **pos, const uint8_t *end, recbatch_rec_header_t *out);

/* ---- building ---------------------------------------------------------------- */

typedef struct recbatch_meta {
    int64_t base_offset;
    int32_t leader_epoch;
    int64_t base_timestamp;
    int16_t attributes; /* RECBATCH_ATTR_KNOWN bits only */
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
} recbatch_meta_t;

/* Meta for a plain batch: timestamp 0, no producer id, epoch or sequence. */
recbatch_meta_t recbatch_meta(int64_t base_offset, int32_t leader_epoch, int16_t attributes);

typedef struct recbatch_builder {
    kl_buf_t *buf;
    size_t start; /* where the batch begins in buf */
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t count;
} recbatch_builder_t;

/* Appends a batch header to buf (which may already hold other bytes).
 * KL_EUNSUPPORTED for attribute bits outside RECBATCH_ATTR_KNOWN. */
int recbatch_begin(recbatch_builder_t *b, kl_buf_t *buf, const recbatch_meta_t *meta);
/* Appends one record with offsetDelta = records so far. key/value lengths
 * -1 mean null. headers may be NULL when n_headers is 0. KL_ETOOBIG when the
 * batch would exceed RECBATCH_MAX_BYTES (or the buffer's limit); the batch is
 * then unchanged and can still be finished. KL_EINVAL for a length < -1. */
int recbatch_add(recbatch_builder_t *b, int64_t timestamp_delta, const void *key, int32_t key_len,
                 const void *value, int32_t value_len, const recbatch_rec_header_t *headers,
                 uint32_t n_headers);
/* Bytes the batch occupies so far (to decide when to start another). */
size_t recbatch_builder_size(const recbatch_builder_t *b);
/* Fills batchLength, lastOffsetDelta, maxTimestamp, recordCount and the CRC.
 * KL_EINVAL for a batch without records (Keel never writes empty batches). */
int recbatch_finish(recbatch_builder_t *b);
/* Drops the unfinished batch from the buffer. */
void recbatch_abort(recbatch_builder_t *b);

/* ---- Raft entries (DESIGN.md §2: the metadata log is RecordBatch v2 too) ----- */

/* One entry = one record (key null, value = data, no headers); each run of
 * consecutive entries with equal (epoch, control) becomes one batch with
 * partitionLeaderEpoch = epoch and the control bit as the entry's flag, split
 * further only where a batch would pass RECBATCH_MAX_BYTES. Offsets must be
 * consecutive (KL_EINVAL); an entry too big for any batch is KL_ETOOBIG.
 * On error buf is left as it was. */
int recbatch_encode_entries(kl_buf_t *buf, const raft_entry_t *entries, int n);

/* Validates the batches filling p[0..len) exactly (recbatch_validate each;
 * KL_ECORRUPT also for a record with a key, headers or a null value, or
 * offsets not consecutive across batches, KL_EAGAIN for a truncated last
 * batch) and returns *n entries in a malloc'd *entries (NULL when n is 0;
 * caller frees) whose data point into p. More than max_entries records is
 * KL_ETOOBIG, found before anything is allocated. */
int recbatch_decode_entries(const uint8_t *p, size_t len, int max_entries, raft_entry_t **entries, int *n);

#endif
