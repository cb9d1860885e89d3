/* wire_meta.h — metadata-log record values and controller snapshots (proto/metadata.proto) as plain C. */
#ifndef KEEL_WIRE_META_H
#define KEEL_WIRE_META_H

#include <stddef.h>
#include <stdint.h>

#include "keel/buf.h"
#include "keel/meta.h"
#include "keel/raft.h"

/* Record types (DESIGN.md §3). The values are meta_record_type_t's, which
 * wire_meta_decode_record() also returns for the data-plane records. */
typedef enum wire_meta_record_type {
    WIRE_META_NO_OP = 1 /* leader liveness (META_REC_NO_OP) */
} wire_meta_record_type_t;

typedef struct wire_meta_record {
    wire_meta_record_type_t type; /* holds any meta_record_type_t value */
} wire_meta_record_t;

/* The controller's metadata image as stored in a snapshot. */
typedef struct wire_meta_image {
    int64_t records_applied;     /* >= 0 */
    int64_t no_op_count;         /* 0..records_applied */
    int64_t last_applied_offset; /* -1 none */
    int32_t last_applied_epoch;  /* -1 none */
} wire_meta_image_t;

/* Encoders append to out: 0, KL_ETOOBIG/KL_ENOMEM from the buffer, KL_EINVAL
 * for an image the decoder would refuse. Decoders: 0, or KL_EPROTO for bytes
 * that do not unpack, an unknown or missing record type, or out-of-range
 * fields. */
int wire_meta_encode_noop(kl_buf_t *out);
int wire_meta_decode_record(const uint8_t *p, size_t len, wire_meta_record_t *out);

/* ---- full records (meta.h) ---------------------------------------------------- */

/* The caller-owned home of a decoded record's arrays: the listeners or the
 * configs it points to live here, so they stay valid as long as the store
 * lives and is not passed to another decode. Fixed size (a record has at
 * most META_MAX_LISTENERS or META_MAX_CONFIGS), so there is nothing to free. */
typedef struct wire_meta_store {
    union {
        meta_listener_t listeners[META_MAX_LISTENERS];
        meta_config_t configs[META_MAX_CONFIGS];
    } u;
    char why[META_MSG_LEN]; /* after a failed decode: the reason */
} wire_meta_store_t;

/* Appends rec as a MetadataRecord: 0, KL_EINVAL for a record that
 * meta_record_validate() refuses, KL_ETOOBIG/KL_ENOMEM from the buffer. */
int wire_meta_encode_record(const meta_record_t *rec, kl_buf_t *out);
/* Decodes any record type strictly: 0 with *out filled (its arrays in
 * store), or KL_EPROTO for bytes that do not unpack, an unknown or missing
 * type, wrong-size uuids, over-long strings or arrays, or a record
 * meta_record_validate() refuses; store->why then says why and *out is
 * unspecified. Never allocates beyond protobuf-c's own, freed, unpacking. */
int wire_meta_decode_record_full(const uint8_t *p, size_t len, meta_record_t *out, wire_meta_store_t *store);

int wire_meta_encode_image(const wire_meta_image_t *img, kl_buf_t *out);
int wire_meta_decode_image(const uint8_t *p, size_t len, wire_meta_image_t *out);

/* ---- the metadata image over the log (shared by controllers and brokers) ---- */

/* Folds one committed metadata-log entry into img: control entries and
 * NO_OP records change nothing; anything else is decoded and applied with
 * meta_image_apply(img, rec, e->offset). KL_ECORRUPT (undecodable) or the
 * apply error, with the reason in why: a committed entry that does not
 * apply means a newer writer or a bug, and the caller stops rather than
 * fork its image from the others'. */
int wire_meta_apply_entry(meta_image_t *img, const raft_entry_t *e, char *why, size_t why_len);

/* Snapshot payload (DESIGN.md §2 snapshots of the image): a magic, a version
 * and then meta_image_to_records(img) as length-prefixed encoded records.
 * decode builds a fresh image (*out, meta_image_free) by applying them in
 * order; KL_ECORRUPT with why for anything malformed, truncated or that does
 * not apply, with *out NULL. */
int wire_meta_encode_snapshot(const meta_image_t *img, kl_buf_t *out);
int wire_meta_decode_snapshot(const uint8_t *p, size_t len, meta_image_t **out, char *why, size_t why_len);

#endif
