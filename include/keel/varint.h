/* varint.h — Kafka/protobuf varints: unsigned LEB128 and zigzag-signed. */
#ifndef KEEL_VARINT_H
#define KEEL_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define KL_VARINT_MAX 10

/* Encode into p (at least KL_VARINT_MAX bytes); returns bytes written. */
size_t kl_uvarint_encode(uint8_t *p, uint64_t v);
size_t kl_varint_encode(uint8_t *p, int64_t v);
/* Decode from p[0..len); returns bytes consumed, or a negative KL_E* code:
 * KL_EAGAIN if truncated, KL_ECORRUPT if longer than 10 bytes / overflows. */
int kl_uvarint_decode(const uint8_t *p, size_t len, uint64_t *v);
int kl_varint_decode(const uint8_t *p, size_t len, int64_t *v);
size_t kl_varint_size(int64_t v);
size_t kl_uvarint_size(uint64_t v);

#endif
