/* buf.h — growable byte buffer with a hard limit, used for encoding frames and batches. */
#ifndef KEEL_BUF_H
#define KEEL_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct kl_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit; /* 0 = KL_BUF_DEFAULT_LIMIT; growth past it fails with KL_ETOOBIG */
} kl_buf_t;

#define KL_BUF_DEFAULT_LIMIT (256u * 1024u * 1024u)

void kl_buf_init(kl_buf_t *b, size_t limit);
void kl_buf_free(kl_buf_t *b);  /* releases memory; buffer is empty and reusable */
void kl_buf_reset(kl_buf_t *b); /* len = 0, keeps memory */
int kl_buf_reserve(kl_buf_t *b, size_t extra); /* ensure cap >= len + extra */
int kl_buf_append(kl_buf_t *b, const void *p, size_t n);
int kl_buf_append_u8(kl_buf_t *b, uint8_t v);
int kl_buf_append_be16(kl_buf_t *b, uint16_t v);
int kl_buf_append_be32(kl_buf_t *b, uint32_t v);
int kl_buf_append_be64(kl_buf_t *b, uint64_t v);
int kl_buf_append_varint(kl_buf_t *b, int64_t v);   /* zigzag, Kafka style */
int kl_buf_append_uvarint(kl_buf_t *b, uint64_t v);
int kl_buf_appendf(kl_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* text, NUL kept after len */
void kl_put_be16(uint8_t *p, uint16_t v);
void kl_put_be32(uint8_t *p, uint32_t v);
void kl_put_be64(uint8_t *p, uint64_t v);
uint16_t kl_get_be16(const uint8_t *p);
uint32_t kl_get_be32(const uint8_t *p);
uint64_t kl_get_be64(const uint8_t *p);
/* Detach the data (caller frees with free()); buffer becomes empty. */
uint8_t *kl_buf_steal(kl_buf_t *b, size_t *len);

#endif
