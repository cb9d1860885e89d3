/* recbatch.c — Kafka RecordBatch v2 codec (DESIGN.md §5); every read is bounds-checked against the caller's length. */
#include "keel/recbatch.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "keel/crc32c.h"
#include "keel/err.h"
#include "keel/varint.h"

/* Field positions inside a batch (see the layout in recbatch.h). */
enum {
    OFF_BASE_OFFSET = 0,
    OFF_BATCH_LENGTH = 8,
    OFF_LEADER_EPOCH = 12,
    OFF_MAGIC = 16,
    OFF_CRC = 17,
    OFF_ATTRIBUTES = 21,
    OFF_LAST_OFFSET_DELTA = 23,
    OFF_BASE_TIMESTAMP = 27,
    OFF_MAX_TIMESTAMP = 35,
    OFF_PRODUCER_ID = 43,
    OFF_PRODUCER_EPOCH = 51,
    OFF_BASE_SEQUENCE = 53,
    OFF_RECORD_COUNT = 57
};

/* Malformed input may carry any deltas: add with wrap-around, never UB. */
static int64_t add_wrap(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

int recbatch_parse_header(const uint8_t *p, size_t len, recbatch_header_t *h)
{
    if (len < RECBATCH_HEADER_LEN) return KL_EAGAIN;
    h->base_offset = (int64_t)kl_get_be64(p + OFF_BASE_OFFSET);
    h->batch_length = (int32_t)kl_get_be32(p + OFF_BATCH_LENGTH);
    h->leader_epoch = (int32_t)kl_get_be32(p + OFF_LEADER_EPOCH);
    h->magic = (int8_t)p[OFF_MAGIC];
    h->crc = kl_get_be32(p + OFF_CRC);
    h->attributes = (int16_t)kl_get_be16(p + OFF_ATTRIBUTES);
    h->last_offset_delta = (int32_t)kl_get_be32(p + OFF_LAST_OFFSET_DELTA);
    h->base_timestamp = (int64_t)kl_get_be64(p + OFF_BASE_TIMESTAMP);
    h->max_timestamp = (int64_t)kl_get_be64(p + OFF_MAX_TIMESTAMP);
    h->producer_id = (int64_t)kl_get_be64(p + OFF_PRODUCER_ID);
    h->producer_epoch = (int16_t)kl_get_be16(p + OFF_PRODUCER_EPOCH);
    h->base_sequence = (int32_t)kl_get_be32(p + OFF_BASE_SEQUENCE);
    h->record_count = (int32_t)kl_get_be32(p + OFF_RECORD_COUNT);

    if (h->magic != RECBATCH_MAGIC) return KL_ECORRUPT;
    if (h->batch_length < RECBATCH_HEADER_LEN - RECBATCH_LOG_OVERHEAD) return KL_ECORRUPT;
    if ((uint32_t)h->batch_length > RECBATCH_MAX_BYTES - RECBATCH_LOG_OVERHEAD) return KL_ETOOBIG;
    if (h->attributes & ~RECBATCH_ATTR_KNOWN) return KL_EUNSUPPORTED;
    if (h->base_offset < 0 || h->last_offset_delta < 0 || h->record_count < 0) return KL_ECORRUPT;
    if (h->base_offset > INT64_MAX - 1 - h->last_offset_delta) return KL_ECORRUPT;
    return 0;
}

void recbatch_set_base_offset(uint8_t *batch, int64_t base_offset)
{
    kl_put_be64(batch + OFF_BASE_OFFSET, (uint64_t)base_offset);
}

void recbatch_set_leader_epoch(uint8_t *batch, int32_t leader_epoch)
{
    kl_put_be32(batch + OFF_LEADER_EPOCH, (uint32_t)leader_epoch);
}

/* ---- reading records ---------------------------------------------------- */

/* A bounded cursor: every getter fails instead of reading past `end`. */
typedef struct cursor {
    const uint8_t *pos, *end;
} cursor_t;

static int cur_varlong(cursor_t *c, int64_t *v)
{
    int n = kl_varint_decode(c->pos, (size_t)(c->end - c->pos), v);
    if (n < 0) return KL_ECORRUPT;
    c->pos += n;
    return 0;
}

/* Kafka's "varint" is a zigzag int32. */
static int cur_varint(cursor_t *c, int32_t *v)
{
    int64_t w;
    if (cur_varlong(c, &w) < 0 || w < INT32_MIN || w > INT32_MAX) return KL_ECORRUPT;
    *v = (int32_t)w;
    return 0;
}

/* Length-prefixed bytes; -1 is null when allowed. */
static int cur_bytes(cursor_t *c, bool nullable, recbatch_bytes_t *out)
{
    int32_t n;
    if (cur_varint(c, &n) < 0) return KL_ECORRUPT;
    if (n == -1 && nullable) {
        out->data = NULL;
        out->len = -1;
        return 0;
    }
    if (n < 0 || (size_t)n > (size_t)(c->end - c->pos)) return KL_ECORRUPT;
    out->data = c->pos;
    out->len = n;
    c->pos += n;
    return 0;
}

int recbatch_rec_header_next(const uint8_t **pos, const uint8_t *end, recbatch_rec_header_t *out)
{
    if (*pos == end) return KL_ENOENT;
    cursor_t c = {*pos, end};
    if (cur_bytes(&c, false, &out->key) < 0 || cur_bytes(&c, true, &out->value) < 0)
        return KL_ECORRUPT;
    *pos = c.pos;
    return 0;
}

int recbatch_iter_init(recbatch_iter_t *it, const uint8_t *p, size_t len)
{
    recbatch_header_t h;
    int rc = recbatch_parse_header(p, len, &h);
    if (rc < 0) return rc;
    if (recbatch_total_size(&h) > len) return KL_EAGAIN;
    it->pos = p + RECBATCH_HEADER_LEN;
    it->end = p + recbatch_total_size(&h);
    it->base_offset = h.base_offset;
    it->base_timestamp = h.base_timestamp;
    it->left = h.record_count;
    return 0;
}

int recbatch_iter_next(recbatch_iter_t *it, recbatch_record_t *rec)
{
    if (it->left == 0) return it->pos == it->end ? KL_ENOENT : KL_ECORRUPT;
    if (it->pos == it->end) return KL_ECORRUPT; /* fewer records than recordCount */

    cursor_t c = {it->pos, it->end};
    int32_t rec_len;
    if (cur_varint(&c, &rec_len) < 0) return KL_ECORRUPT;
    if (rec_len < 1 || (size_t)rec_len > (size_t)(c.end - c.pos)) return KL_ECORRUPT;
    cursor_t r = {c.pos, c.pos + rec_len}; /* the record body, nothing beyond */

    rec->attributes = (int8_t)*r.pos++;
    int32_t n_headers;
    if (cur_varlong(&r, &rec->timestamp_delta) < 0 || cur_varint(&r, &rec->offset_delta) < 0 ||
        cur_bytes(&r, true, &rec->key) < 0 || cur_bytes(&r, true, &rec->value) < 0 ||
        cur_varint(&r, &n_headers) < 0 || n_headers < 0)
        return KL_ECORRUPT;
    rec->header_count = (uint32_t)n_headers;
    rec->headers = r.pos;
    for (int32_t i = 0; i < n_headers; i++) {
        recbatch_rec_header_t hd;
        if (recbatch_rec_header_next(&r.pos, r.end, &hd) < 0) return KL_ECORRUPT;
    }
    if (r.pos != r.end) return KL_ECORRUPT; /* record length disagrees with its fields */
    rec->headers_len = (size_t)(r.pos - rec->headers);
    rec->offset = add_wrap(it->base_offset, rec->offset_delta);
    rec->timestamp = add_wrap(it->base_timestamp, rec->timestamp_delta);
    it->pos = r.end;
    it->left--;
    return 0;
}

int recbatch_validate(const uint8_t *p, size_t len, recbatch_header_t *h)
{
    recbatch_header_t hd;
    int rc = recbatch_parse_header(p, len, &hd);
    if (rc < 0) return rc;
    size_t total = recbatch_total_size(&hd);
    if (total > len) return KL_EAGAIN;
    if (kl_crc32c(0, p + RECBATCH_CRC_START, total - RECBATCH_CRC_START) != hd.crc)
        return KL_ECORRUPT;
    if (hd.record_count == 0 || hd.last_offset_delta != hd.record_count - 1) return KL_ECORRUPT;

    recbatch_iter_t it;
    rc = recbatch_iter_init(&it, p, len);
    if (rc < 0) return rc;
    recbatch_record_t rec;
    int32_t expect = 0;
    while ((rc = recbatch_iter_next(&it, &rec)) == 0) {
        if (rec.offset_delta != expect++) return KL_ECORRUPT;
    }
    if (rc != KL_ENOENT) return rc;
    *h = hd;
    return 0;
}

/* ---- building ------------------------------------------------------------ */

recbatch_meta_t recbatch_meta(int64_t base_offset, int32_t leader_epoch, int16_t attributes)
{
    return (recbatch_meta_t){
        .base_offset = base_offset,
        .leader_epoch = leader_epoch,
        .base_timestamp = 0,
        .attributes = attributes,
        .producer_id = RECBATCH_NO_PRODUCER_ID,
        .producer_epoch = RECBATCH_NO_PRODUCER_EPOCH,
        .base_sequence = RECBATCH_NO_SEQUENCE,
    };
}

int recbatch_begin(recbatch_builder_t *b, kl_buf_t *buf, const recbatch_meta_t *m)
{
    if (m->attributes & ~RECBATCH_ATTR_KNOWN) return KL_EUNSUPPORTED;
    if (m->base_offset < 0) return KL_EINVAL;
    int rc = kl_buf_reserve(buf, RECBATCH_HEADER_LEN);
    if (rc < 0) return rc;
    b->buf = buf;
    b->start = buf->len;
    b->base_timestamp = m->base_timestamp;
    b->max_timestamp = m->base_timestamp;
    b->count = 0;

    uint8_t *p = buf->data + buf->len;
    memset(p, 0, RECBATCH_HEADER_LEN);
    kl_put_be64(p + OFF_BASE_OFFSET, (uint64_t)m->base_offset);
    kl_put_be32(p + OFF_LEADER_EPOCH, (uint32_t)m->leader_epoch);
    p[OFF_MAGIC] = RECBATCH_MAGIC;
    kl_put_be16(p + OFF_ATTRIBUTES, (uint16_t)m->attributes);
    kl_put_be64(p + OFF_BASE_TIMESTAMP, (uint64_t)m->base_timestamp);
    kl_put_be64(p + OFF_PRODUCER_ID, (uint64_t)m->producer_id);
    kl_put_be16(p + OFF_PRODUCER_EPOCH, (uint16_t)m->producer_epoch);
    kl_put_be32(p + OFF_BASE_SEQUENCE, (uint32_t)m->base_sequence);
    buf->len += RECBATCH_HEADER_LEN;
    return 0;
}

size_t recbatch_builder_size(const recbatch_builder_t *b)
{
    return b->buf->len - b->start;
}

/* Encoded size of a nullable length-prefixed field. */
static size_t bytes_size(int32_t len)
{
    return kl_varint_size(len) + (len > 0 ? (size_t)len : 0);
}

static uint8_t *put_bytes(uint8_t *p, const void *data, int32_t len)
{
    p += kl_varint_encode(p, len);
    if (len > 0) {
        memcpy(p, data, (size_t)len);
        p += len;
    }
    return p;
}

int recbatch_add(recbatch_builder_t *b, int64_t timestamp_delta, const void *key, int32_t key_len,
                 const void *value, int32_t value_len, const recbatch_rec_header_t *headers,
                 uint32_t n_headers)
{
    if (key_len < -1 || value_len < -1 || n_headers > INT32_MAX) return KL_EINVAL;
    /* Sizes are summed in 64 bits, so they cannot wrap before the limit check. */
    uint64_t body = 1 + kl_varint_size(timestamp_delta) + kl_varint_size(b->count) +
                    bytes_size(key_len) + bytes_size(value_len) + kl_varint_size(n_headers);
    for (uint32_t i = 0; i < n_headers; i++) {
        if (headers[i].key.len < 0 || headers[i].value.len < -1) return KL_EINVAL;
        body += bytes_size(headers[i].key.len) + bytes_size(headers[i].value.len);
        if (body > RECBATCH_MAX_BYTES) return KL_ETOOBIG;
    }
    if (body > RECBATCH_MAX_BYTES) return KL_ETOOBIG;
    uint64_t rec_size = kl_varint_size((int64_t)body) + body;
    if (recbatch_builder_size(b) + rec_size > RECBATCH_MAX_BYTES) return KL_ETOOBIG;
    int rc = kl_buf_reserve(b->buf, (size_t)rec_size);
    if (rc < 0) return rc;

    uint8_t *p = b->buf->data + b->buf->len;
    p += kl_varint_encode(p, (int64_t)body);
    *p++ = 0; /* record attributes: unused in v2 */
    p += kl_varint_encode(p, timestamp_delta);
    p += kl_varint_encode(p, b->count);
    p = put_bytes(p, key, key_len);
    p = put_bytes(p, value, value_len);
    p += kl_varint_encode(p, n_headers);
    for (uint32_t i = 0; i < n_headers; i++) {
        p = put_bytes(p, headers[i].key.data, headers[i].key.len);
        p = put_bytes(p, headers[i].value.data, headers[i].value.len);
    }
    KL_ASSERT((size_t)(p - (b->buf->data + b->buf->len)) == rec_size);
    b->buf->len += (size_t)rec_size;

    int64_t ts = add_wrap(b->base_timestamp, timestamp_delta);
    if (b->count == 0 || ts > b->max_timestamp) b->max_timestamp = ts;
    b->count++;
    return 0;
}

int recbatch_finish(recbatch_builder_t *b)
{
    if (b->count == 0) return KL_EINVAL;
    uint8_t *p = b->buf->data + b->start;
    size_t total = recbatch_builder_size(b);
    kl_put_be32(p + OFF_BATCH_LENGTH, (uint32_t)(total - RECBATCH_LOG_OVERHEAD));
    kl_put_be32(p + OFF_LAST_OFFSET_DELTA, (uint32_t)(b->count - 1));
    kl_put_be64(p + OFF_MAX_TIMESTAMP, (uint64_t)b->max_timestamp);
    kl_put_be32(p + OFF_RECORD_COUNT, (uint32_t)b->count);
    kl_put_be32(p + OFF_CRC, kl_crc32c(0, p + RECBATCH_CRC_START, total - RECBATCH_CRC_START));
    return 0;
}

void recbatch_abort(recbatch_builder_t *b)
{
    b->buf->len = b->start;
}

/* ---- Raft entries --------------------------------------------------------- */

int recbatch_encode_entries(kl_buf_t *buf, const raft_entry_t *e, int n)
{
    size_t mark = buf->len;
    recbatch_builder_t b;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (i > 0 && e[i].offset != e[i - 1].offset + 1) {
            rc = KL_EINVAL;
            break;
        }
        if (e[i].len > INT32_MAX) {
            rc = KL_ETOOBIG;
            break;
        }
        if (i > 0 && e[i].epoch == e[i - 1].epoch && e[i].control == e[i - 1].control) {
            rc = recbatch_add(&b, 0, NULL, -1, e[i].data, (int32_t)e[i].len, NULL, 0);
            if (rc != KL_ETOOBIG) continue;
            /* The run's batch is full: close it and carry on in a new one. */
        }
        if (i > 0 && (rc = recbatch_finish(&b)) < 0) break;
        recbatch_meta_t m =
            recbatch_meta(e[i].offset, e[i].epoch, e[i].control ? RECBATCH_ATTR_CONTROL : 0);
        rc = recbatch_begin(&b, buf, &m);
        if (rc == 0) rc = recbatch_add(&b, 0, NULL, -1, e[i].data, (int32_t)e[i].len, NULL, 0);
    }
    if (rc == 0 && n > 0) rc = recbatch_finish(&b);
    if (rc < 0) buf->len = mark;
    return rc;
}

int recbatch_decode_entries(const uint8_t *p, size_t len, int max_entries, raft_entry_t **entries, int *n)
{
    *entries = NULL;
    *n = 0;
    /* Pass 1 validates everything and counts, so pass 2 cannot fail halfway
     * on structure and the array is allocated once. */
    int64_t count = 0, next = -1;
    recbatch_header_t h;
    for (size_t pos = 0; pos < len; pos += recbatch_total_size(&h)) {
        int rc = recbatch_validate(p + pos, len - pos, &h);
        if (rc < 0) return rc;
        if (next >= 0 && h.base_offset != next) return KL_ECORRUPT;
        next = recbatch_next_offset(&h);
        count += h.record_count;
        if (count > max_entries) return KL_ETOOBIG;
    }
    if (count == 0) return 0;
    raft_entry_t *e = calloc((size_t)count, sizeof *e);
    if (!e) return KL_ENOMEM;
    int i = 0;
    for (size_t pos = 0; pos < len; pos += recbatch_total_size(&h)) {
        recbatch_iter_t it;
        recbatch_record_t r;
        int rc = recbatch_parse_header(p + pos, len - pos, &h);
        if (rc == 0) rc = recbatch_iter_init(&it, p + pos, len - pos);
        KL_ASSERT(rc == 0); /* validated in pass 1 */
        while (recbatch_iter_next(&it, &r) == 0) {
            if (r.key.len != -1 || r.header_count != 0 || r.value.len < 0) {
                free(e);
                return KL_ECORRUPT; /* not a record Keel's Raft log writes */
            }
            e[i++] = (raft_entry_t){.offset = r.offset,
                                    .epoch = h.leader_epoch,
                                    .control = recbatch_is_control(&h),
                                    .len = (uint32_t)r.value.len,
                                    .data = r.value.data};
        }
    }
    KL_ASSERT(i == count);
    *entries = e;
    *n = i;
    return 0;
}
