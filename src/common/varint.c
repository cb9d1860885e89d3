/* varint.c — unsigned LEB128 and zigzag varints as used by Kafka RecordBatch v2 and protobuf. */
#include "keel/varint.h"

#include "keel/err.h"

size_t kl_uvarint_encode(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static uint64_t zigzag(int64_t v)
{
    /* Shift the unsigned value so no signed overflow can occur. */
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

size_t kl_varint_encode(uint8_t *p, int64_t v)
{
    return kl_uvarint_encode(p, zigzag(v));
}

int kl_uvarint_decode(const uint8_t *p, size_t len, uint64_t *v)
{
    uint64_t x = 0;
    for (size_t i = 0; i < KL_VARINT_MAX; i++) {
        if (i == len) return KL_EAGAIN;
        uint8_t c = p[i];
        /* The 10th byte holds bit 63 only: any higher bit or a continuation overflows. */
        if (i == KL_VARINT_MAX - 1 && c > 1) return KL_ECORRUPT;
        x |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = x;
            return (int)i + 1;
        }
    }
    return KL_ECORRUPT;
}

int kl_varint_decode(const uint8_t *p, size_t len, int64_t *v)
{
    uint64_t u;
    int n = kl_uvarint_decode(p, len, &u);
    if (n < 0) return n;
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return n;
}

size_t kl_uvarint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t kl_varint_size(int64_t v)
{
    return kl_uvarint_size(zigzag(v));
}
