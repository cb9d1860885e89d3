/* wire_meta.h — metadata-log record values and controller snapshots (proto/metadata.proto) as plain C. */
#ifndef KEEL_WIRE_META_H
#define KEEL_WIRE_META_H

#include <stddef.h>
#include <stdint.h>

#include "keel/buf.h"

/* Record types (DESIGN.md §3); the data-plane records join this list. */
typedef enum wire_meta_record_type {
    WIRE_META_NO_OP = 1 /* leader liveness */
} wire_meta_record_type_t;

typedef struct wire_meta_record {
    wire_meta_record_type_t type;
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
int wire_meta_encode_image(const wire_meta_image_t *img, kl_buf_t *out);
int wire_meta_decode_image(const uint8_t *p, size_t len, wire_meta_image_t *out);

#endif
