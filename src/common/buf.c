/* buf.c — growable byte buffer with a hard size limit, plus big-endian helpers. */
#include "keel/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/varint.h"

/* First allocation; small frames and batches then fit without regrowing. */
#define KL_BUF_MIN_CAP 64u

static size_t buf_limit(const kl_buf_t *b)
{
    return b->limit ? b->limit : KL_BUF_DEFAULT_LIMIT;
}

void kl_buf_init(kl_buf_t *b, size_t limit)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
}

void kl_buf_free(kl_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void kl_buf_reset(kl_buf_t *b)
{
    b->len = 0;
}

int kl_buf_reserve(kl_buf_t *b, size_t extra)
{
    size_t limit = buf_limit(b);
    if (extra > limit || b->len > limit - extra) return KL_ETOOBIG;
    size_t need = b->len + extra;
    if (need <= b->cap) return 0;
    /* Doubling keeps appends amortised O(1); the limit caps the last step. */
    size_t cap = b->cap ? b->cap : KL_BUF_MIN_CAP;
    while (cap < need) cap = cap > limit / 2 ? limit : cap * 2;
    if (cap > limit) cap = limit;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return KL_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int kl_buf_append(kl_buf_t *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    int rc = kl_buf_reserve(b, n);
    if (rc) return rc;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int kl_buf_append_u8(kl_buf_t *b, uint8_t v)
{
    return kl_buf_append(b, &v, 1);
}

int kl_buf_append_be16(kl_buf_t *b, uint16_t v)
{
    uint8_t t[2];
    kl_put_be16(t, v);
    return kl_buf_append(b, t, sizeof t);
}

int kl_buf_append_be32(kl_buf_t *b, uint32_t v)
{
    uint8_t t[4];
    kl_put_be32(t, v);
    return kl_buf_append(b, t, sizeof t);
}

int kl_buf_append_be64(kl_buf_t *b, uint64_t v)
{
    uint8_t t[8];
    kl_put_be64(t, v);
    return kl_buf_append(b, t, sizeof t);
}

int kl_buf_append_varint(kl_buf_t *b, int64_t v)
{
    uint8_t t[KL_VARINT_MAX];
    return kl_buf_append(b, t, kl_varint_encode(t, v));
}

int kl_buf_append_uvarint(kl_buf_t *b, uint64_t v)
{
    uint8_t t[KL_VARINT_MAX];
    return kl_buf_append(b, t, kl_uvarint_encode(t, v));
}

int kl_buf_appendf(kl_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return KL_EINVAL;
    /* +1 for the NUL that stays after len so the text is usable as a C string. */
    int rc = kl_buf_reserve(b, (size_t)n + 1);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void kl_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

void kl_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

void kl_put_be64(uint8_t *p, uint64_t v)
{
    kl_put_be32(p, (uint32_t)(v >> 32));
    kl_put_be32(p + 4, (uint32_t)v);
}

uint16_t kl_get_be16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

uint32_t kl_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t kl_get_be64(const uint8_t *p)
{
    return (uint64_t)kl_get_be32(p) << 32 | kl_get_be32(p + 4);
}

uint8_t *kl_buf_steal(kl_buf_t *b, size_t *len)
{
    uint8_t *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
