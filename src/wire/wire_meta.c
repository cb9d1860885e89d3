/* wire_meta.c — protobuf-c glue for metadata-log records and controller snapshots (DESIGN.md §3). */
#include "keel/wire_meta.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "keel/err.h"
#include "metadata.pb-c.h"

/* The oneof field number is the record type (metadata.proto). */
_Static_assert((int)WIRE_META_NO_OP == (int)META_REC_NO_OP, "wire and meta record types agree");
_Static_assert((int)KEEL__METADATA__METADATA_RECORD__RECORD_PRODUCER_IDS == (int)META_REC_PRODUCER_IDS,
               "oneof field numbers are the meta record types");

/* Packs any message at the end of out. */
static int pack_into(const ProtobufCMessage *pb, kl_buf_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(pb);
    int rc = kl_buf_reserve(out, n);
    if (rc) return rc;
    size_t packed = protobuf_c_message_pack(pb, out->data + out->len);
    KL_ASSERT(packed == n);
    out->len += n;
    return 0;
}

int wire_meta_encode_noop(kl_buf_t *out)
{
    Keel__Metadata__NoOpRecord noop = KEEL__METADATA__NO_OP_RECORD__INIT;
    Keel__Metadata__MetadataRecord rec = KEEL__METADATA__METADATA_RECORD__INIT;
    rec.record_case = KEEL__METADATA__METADATA_RECORD__RECORD_NO_OP;
    rec.no_op = &noop;
    return pack_into(&rec.base, out);
}

int wire_meta_decode_record(const uint8_t *p, size_t len, wire_meta_record_t *out)
{
    wire_meta_store_t store;
    meta_record_t rec;
    int rc = wire_meta_decode_record_full(p, len, &rec, &store);
    if (rc == 0) out->type = (wire_meta_record_type_t)rec.type;
    return rc;
}

/* ---- full records: encoding --------------------------------------------------- */

/* Everything a MetadataRecord points to while it is packed. protobuf-c's
 * pointers are not const, but packing only reads them: the casts below
 * lend the caller's record to the packer. */
typedef struct enc_scratch {
    Keel__Metadata__MetadataRecord rec;
    union {
        Keel__Metadata__NoOpRecord no_op;
        Keel__Metadata__RegisterBrokerRecord reg;
        Keel__Metadata__BrokerEpochRecord broker;
        Keel__Metadata__TopicRecord topic;
        Keel__Metadata__PartitionRecord part;
        Keel__Metadata__PartitionChangeRecord change;
        Keel__Metadata__RemoveTopicRecord remove;
        Keel__Metadata__ConfigRecord config;
        Keel__Metadata__ProducerIdsRecord pids;
    } m;
    Keel__Metadata__Listener listeners[META_MAX_LISTENERS];
    Keel__Metadata__Listener *listener_ptrs[META_MAX_LISTENERS];
    Keel__Metadata__ConfigEntry configs[META_MAX_CONFIGS];
    Keel__Metadata__ConfigEntry *config_ptrs[META_MAX_CONFIGS];
    Keel__Metadata__BrokerIds isr, replicas;
} enc_scratch_t;

/* The zero uuid (a cluster config's "no topic") travels as empty bytes. */
static ProtobufCBinaryData uuid_arg(const uint8_t u[KL_UUID_LEN])
{
    ProtobufCBinaryData b = {0, NULL};
    for (int i = 0; i < KL_UUID_LEN; i++)
        if (u[i]) return (ProtobufCBinaryData){KL_UUID_LEN, (uint8_t *)u};
    return b;
}

static void enc_register(const meta_register_broker_t *r, enc_scratch_t *s)
{
    Keel__Metadata__RegisterBrokerRecord *pb = &s->m.reg;
    keel__metadata__register_broker_record__init(pb);
    pb->broker_id = r->broker_id;
    pb->broker_epoch = r->broker_epoch;
    pb->incarnation = uuid_arg(r->incarnation);
    for (int i = 0; i < r->n_listeners; i++) {
        Keel__Metadata__Listener *l = &s->listeners[i];
        keel__metadata__listener__init(l);
        l->name = (char *)r->listeners[i].name;
        l->host = (char *)r->listeners[i].host;
        l->port = r->listeners[i].port;
        s->listener_ptrs[i] = l;
    }
    pb->n_listeners = (size_t)r->n_listeners;
    pb->listeners = s->listener_ptrs;
    pb->rack = (char *)r->rack;
    s->rec.register_broker = pb;
}

static Keel__Metadata__BrokerEpochRecord *enc_broker(const meta_broker_ref_t *b, enc_scratch_t *s)
{
    keel__metadata__broker_epoch_record__init(&s->m.broker);
    s->m.broker.broker_id = b->broker_id;
    s->m.broker.broker_epoch = b->broker_epoch;
    return &s->m.broker;
}

static void enc_topic(const meta_topic_record_t *t, enc_scratch_t *s)
{
    Keel__Metadata__TopicRecord *pb = &s->m.topic;
    keel__metadata__topic_record__init(pb);
    pb->name = (char *)t->name;
    pb->uuid = uuid_arg(t->uuid);
    for (int i = 0; i < t->n_configs; i++) {
        Keel__Metadata__ConfigEntry *c = &s->configs[i];
        keel__metadata__config_entry__init(c);
        c->key = (char *)t->configs[i].key;
        c->value = (char *)t->configs[i].value;
        s->config_ptrs[i] = c;
    }
    pb->n_configs = (size_t)t->n_configs;
    pb->configs = s->config_ptrs;
    s->rec.topic = pb;
}

static void enc_partition(const meta_partition_t *p, enc_scratch_t *s)
{
    Keel__Metadata__PartitionRecord *pb = &s->m.part;
    keel__metadata__partition_record__init(pb);
    pb->topic = uuid_arg(p->topic);
    pb->partition = p->partition;
    pb->n_replicas = (size_t)p->n_replicas;
    pb->replicas = (int32_t *)p->replicas;
    pb->n_isr = (size_t)p->n_isr;
    pb->isr = (int32_t *)p->isr;
    pb->leader = p->leader;
    pb->leader_epoch = p->leader_epoch;
    pb->partition_epoch = p->partition_epoch;
    s->rec.partition = pb;
}

/* An unchanged list (n == -1) is an absent message. */
static Keel__Metadata__BrokerIds *ids_arg(const int32_t *ids, int n, Keel__Metadata__BrokerIds *pb)
{
    if (n < 0) return NULL;
    keel__metadata__broker_ids__init(pb);
    pb->n_ids = (size_t)n;
    pb->ids = (int32_t *)ids;
    return pb;
}

static void enc_change(const meta_partition_change_t *c, enc_scratch_t *s)
{
    Keel__Metadata__PartitionChangeRecord *pb = &s->m.change;
    keel__metadata__partition_change_record__init(pb);
    pb->topic = uuid_arg(c->topic);
    pb->partition = c->partition;
    if (c->leader != META_LEADER_UNCHANGED) {
        pb->leader_change_case = KEEL__METADATA__PARTITION_CHANGE_RECORD__LEADER_CHANGE_LEADER;
        pb->leader = c->leader;
    }
    pb->isr = ids_arg(c->isr, c->n_isr, &s->isr);
    pb->replicas = ids_arg(c->replicas, c->n_replicas, &s->replicas);
    s->rec.partition_change = pb;
}

static void enc_config(const meta_config_record_t *c, enc_scratch_t *s)
{
    Keel__Metadata__ConfigRecord *pb = &s->m.config;
    keel__metadata__config_record__init(pb);
    pb->resource = c->resource == META_CONFIG_TOPIC ? KEEL__METADATA__CONFIG_RESOURCE__CONFIG_RESOURCE_TOPIC
                                                    : KEEL__METADATA__CONFIG_RESOURCE__CONFIG_RESOURCE_CLUSTER;
    pb->topic = uuid_arg(c->topic);
    pb->key = (char *)c->key;
    pb->value = (char *)(c->remove ? "" : c->value); /* meta.h: value ignored on delete */
    pb->remove = c->remove;
    s->rec.config = pb;
}

int wire_meta_encode_record(const meta_record_t *rec, kl_buf_t *out)
{
    if (meta_record_validate(rec, NULL, 0)) return KL_EINVAL;
    enc_scratch_t s;
    keel__metadata__metadata_record__init(&s.rec);
    s.rec.record_case = (Keel__Metadata__MetadataRecord__RecordCase)rec->type;
    switch (rec->type) {
    case META_REC_NO_OP:
        keel__metadata__no_op_record__init(&s.m.no_op);
        s.rec.no_op = &s.m.no_op;
        break;
    case META_REC_REGISTER_BROKER:
        enc_register(&rec->u.reg, &s);
        break;
    case META_REC_FENCE_BROKER:
        s.rec.fence_broker = enc_broker(&rec->u.broker, &s);
        break;
    case META_REC_UNFENCE_BROKER:
        s.rec.unfence_broker = enc_broker(&rec->u.broker, &s);
        break;
    case META_REC_SHUTDOWN_BROKER:
        s.rec.shutdown_broker = enc_broker(&rec->u.broker, &s);
        break;
    case META_REC_TOPIC:
        enc_topic(&rec->u.topic, &s);
        break;
    case META_REC_PARTITION:
        enc_partition(&rec->u.partition, &s);
        break;
    case META_REC_PARTITION_CHANGE:
        enc_change(&rec->u.change, &s);
        break;
    case META_REC_REMOVE_TOPIC:
        keel__metadata__remove_topic_record__init(&s.m.remove);
        s.m.remove.topic = uuid_arg(rec->u.remove_topic);
        s.rec.remove_topic = &s.m.remove;
        break;
    case META_REC_CONFIG:
        enc_config(&rec->u.config, &s);
        break;
    case META_REC_PRODUCER_IDS:
        keel__metadata__producer_ids_record__init(&s.m.pids);
        s.m.pids.broker_id = rec->u.producer_ids.broker_id;
        s.m.pids.first_id = rec->u.producer_ids.first_id;
        s.m.pids.size = rec->u.producer_ids.size;
        s.rec.producer_ids = &s.m.pids;
        break;
    }
    return pack_into(&s.rec.base, out);
}

/* ---- full records: decoding --------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static int refuse(wire_meta_store_t *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->why, sizeof st->why, fmt, ap);
    va_end(ap);
    return KL_EPROTO;
}

/* Every replayer must read a committed record the same way, so a field this
 * version does not know (from a newer writer) is refused, not skipped. */
static int known_fields(const ProtobufCMessage *m, wire_meta_store_t *st)
{
    if (m->n_unknown_fields)
        return refuse(st, "%s carries field %u this version does not know", m->descriptor->short_name,
                      (unsigned)m->unknown_fields[0].tag);
    return 0;
}

static int get_uuid(const ProtobufCBinaryData *b, uint8_t out[KL_UUID_LEN], const char *what, wire_meta_store_t *st)
{
    if (b->len == 0) {
        memset(out, 0, KL_UUID_LEN);
        return 0;
    }
    if (b->len != KL_UUID_LEN) return refuse(st, "%s is %zu bytes, not %d", what, b->len, KL_UUID_LEN);
    memcpy(out, b->data, KL_UUID_LEN);
    return 0;
}

/* Copies src (at most cap - 1 chars) into dst, zero padded. */
static int get_str(char *dst, size_t cap, const char *src, const char *what, wire_meta_store_t *st)
{
    if (!src) src = "";
    size_t n = strnlen(src, cap);
    if (n == cap) return refuse(st, "%s longer than %zu", what, cap - 1);
    memset(dst, 0, cap);
    memcpy(dst, src, n);
    return 0;
}

static int get_ids(int32_t dst[META_MAX_REPLICAS], int *n_out, const int32_t *src, size_t n, const char *what,
                   wire_meta_store_t *st)
{
    if (n > META_MAX_REPLICAS) return refuse(st, "%s: %zu brokers, at most %d", what, n, META_MAX_REPLICAS);
    if (n) memcpy(dst, src, n * sizeof *dst);
    *n_out = (int)n;
    return 0;
}

static int dec_register(const Keel__Metadata__RegisterBrokerRecord *pb, meta_register_broker_t *r,
                        wire_meta_store_t *st)
{
    int rc = known_fields(&pb->base, st);
    if (rc) return rc;
    r->broker_id = pb->broker_id;
    r->broker_epoch = pb->broker_epoch;
    if ((rc = get_uuid(&pb->incarnation, r->incarnation, "incarnation", st))) return rc;
    if ((rc = get_str(r->rack, sizeof r->rack, pb->rack, "rack", st))) return rc;
    if (pb->n_listeners > META_MAX_LISTENERS)
        return refuse(st, "%zu listeners, at most %d", pb->n_listeners, META_MAX_LISTENERS);
    for (size_t i = 0; i < pb->n_listeners; i++) {
        const Keel__Metadata__Listener *l = pb->listeners[i];
        meta_listener_t *d = &st->u.listeners[i];
        if ((rc = known_fields(&l->base, st))) return rc;
        if ((rc = get_str(d->name, sizeof d->name, l->name, "listener name", st))) return rc;
        if ((rc = get_str(d->host, sizeof d->host, l->host, "listener host", st))) return rc;
        if (l->port > UINT16_MAX) return refuse(st, "listener port %u", (unsigned)l->port);
        d->port = (uint16_t)l->port;
    }
    r->listeners = st->u.listeners;
    r->n_listeners = (int)pb->n_listeners;
    return 0;
}

static int dec_broker(const Keel__Metadata__BrokerEpochRecord *pb, meta_broker_ref_t *b, wire_meta_store_t *st)
{
    b->broker_id = pb->broker_id;
    b->broker_epoch = pb->broker_epoch;
    return known_fields(&pb->base, st);
}

static int dec_topic(const Keel__Metadata__TopicRecord *pb, meta_topic_record_t *t, wire_meta_store_t *st)
{
    int rc = known_fields(&pb->base, st);
    if (rc || (rc = get_str(t->name, sizeof t->name, pb->name, "topic name", st)) ||
        (rc = get_uuid(&pb->uuid, t->uuid, "topic uuid", st)))
        return rc;
    if (pb->n_configs > META_MAX_CONFIGS) return refuse(st, "%zu configs, at most %d", pb->n_configs, META_MAX_CONFIGS);
    for (size_t i = 0; i < pb->n_configs; i++) {
        const Keel__Metadata__ConfigEntry *c = pb->configs[i];
        meta_config_t *d = &st->u.configs[i];
        if ((rc = known_fields(&c->base, st)) || (rc = get_str(d->key, sizeof d->key, c->key, "config key", st)) ||
            (rc = get_str(d->value, sizeof d->value, c->value, "config value", st)))
            return rc;
    }
    t->configs = st->u.configs;
    t->n_configs = (int)pb->n_configs;
    return 0;
}

static int dec_partition(const Keel__Metadata__PartitionRecord *pb, meta_partition_t *p, wire_meta_store_t *st)
{
    int rc = known_fields(&pb->base, st);
    if (rc || (rc = get_uuid(&pb->topic, p->topic, "topic uuid", st)) ||
        (rc = get_ids(p->replicas, &p->n_replicas, pb->replicas, pb->n_replicas, "replicas", st)) ||
        (rc = get_ids(p->isr, &p->n_isr, pb->isr, pb->n_isr, "isr", st)))
        return rc;
    p->partition = pb->partition;
    p->leader = pb->leader;
    p->leader_epoch = pb->leader_epoch;
    p->partition_epoch = pb->partition_epoch;
    return 0;
}

/* An absent list is unchanged (n = -1). */
static int dec_ids_change(const Keel__Metadata__BrokerIds *pb, int32_t dst[META_MAX_REPLICAS], int *n_out,
                          const char *what, wire_meta_store_t *st)
{
    if (!pb) {
        *n_out = -1;
        return 0;
    }
    int rc = known_fields(&pb->base, st);
    return rc ? rc : get_ids(dst, n_out, pb->ids, pb->n_ids, what, st);
}

static int dec_change(const Keel__Metadata__PartitionChangeRecord *pb, meta_partition_change_t *c,
                      wire_meta_store_t *st)
{
    int rc = known_fields(&pb->base, st);
    if (rc || (rc = get_uuid(&pb->topic, c->topic, "topic uuid", st)) ||
        (rc = dec_ids_change(pb->isr, c->isr, &c->n_isr, "isr", st)) ||
        (rc = dec_ids_change(pb->replicas, c->replicas, &c->n_replicas, "replicas", st)))
        return rc;
    c->partition = pb->partition;
    c->leader = META_LEADER_UNCHANGED;
    if (pb->leader_change_case == KEEL__METADATA__PARTITION_CHANGE_RECORD__LEADER_CHANGE_LEADER) {
        /* "unchanged" is the field's absence, never a value */
        if (pb->leader < META_NO_LEADER) return refuse(st, "partition change to leader %d", (int)pb->leader);
        c->leader = pb->leader;
    }
    return 0;
}

static int dec_config(const Keel__Metadata__ConfigRecord *pb, meta_config_record_t *c, wire_meta_store_t *st)
{
    int rc = known_fields(&pb->base, st);
    if (rc) return rc;
    switch (pb->resource) {
    case KEEL__METADATA__CONFIG_RESOURCE__CONFIG_RESOURCE_CLUSTER:
        c->resource = META_CONFIG_CLUSTER;
        break;
    case KEEL__METADATA__CONFIG_RESOURCE__CONFIG_RESOURCE_TOPIC:
        c->resource = META_CONFIG_TOPIC;
        break;
    default:
        return refuse(st, "config resource %d", (int)pb->resource);
    }
    c->remove = pb->remove;
    if ((rc = get_uuid(&pb->topic, c->topic, "config topic uuid", st)) ||
        (rc = get_str(c->key, sizeof c->key, pb->key, "config key", st)))
        return rc;
    if (c->remove && pb->value && pb->value[0]) return refuse(st, "config delete carries a value");
    return get_str(c->value, sizeof c->value, pb->value, "config value", st);
}

static int dec_pids(const Keel__Metadata__ProducerIdsRecord *pb, meta_producer_ids_t *b, wire_meta_store_t *st)
{
    b->broker_id = pb->broker_id;
    b->first_id = pb->first_id;
    b->size = pb->size;
    return known_fields(&pb->base, st);
}

static int dec_record(const Keel__Metadata__MetadataRecord *pb, meta_record_t *out, wire_meta_store_t *st)
{
    int rc = known_fields(&pb->base, st);
    if (rc) return rc;
    memset(out, 0, sizeof *out);
    out->type = (meta_record_type_t)pb->record_case;
    switch (pb->record_case) {
    case KEEL__METADATA__METADATA_RECORD__RECORD_NO_OP:
        return known_fields(&pb->no_op->base, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_REGISTER_BROKER:
        return dec_register(pb->register_broker, &out->u.reg, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_FENCE_BROKER:
        return dec_broker(pb->fence_broker, &out->u.broker, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_UNFENCE_BROKER:
        return dec_broker(pb->unfence_broker, &out->u.broker, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_SHUTDOWN_BROKER:
        return dec_broker(pb->shutdown_broker, &out->u.broker, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_TOPIC:
        return dec_topic(pb->topic, &out->u.topic, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_PARTITION:
        return dec_partition(pb->partition, &out->u.partition, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_PARTITION_CHANGE:
        return dec_change(pb->partition_change, &out->u.change, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_REMOVE_TOPIC:
        if ((rc = known_fields(&pb->remove_topic->base, st))) return rc;
        return get_uuid(&pb->remove_topic->topic, out->u.remove_topic, "topic uuid", st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_CONFIG:
        return dec_config(pb->config, &out->u.config, st);
    case KEEL__METADATA__METADATA_RECORD__RECORD_PRODUCER_IDS:
        return dec_pids(pb->producer_ids, &out->u.producer_ids, st);
    default: /* missing, or a record type from a newer version: never guess */
        return refuse(st, "missing or unknown record type %d", (int)pb->record_case);
    }
}

int wire_meta_decode_record_full(const uint8_t *p, size_t len, meta_record_t *out, wire_meta_store_t *store)
{
    store->why[0] = '\0';
    Keel__Metadata__MetadataRecord *pb = keel__metadata__metadata_record__unpack(NULL, len, p);
    if (!pb) return refuse(store, "not a MetadataRecord (%zu bytes)", len);
    int rc = dec_record(pb, out, store);
    keel__metadata__metadata_record__free_unpacked(pb, NULL);
    if (rc) return rc;
    char why[META_MSG_LEN];
    if (meta_record_validate(out, why, sizeof why))
        return refuse(store, "%s record: %s", meta_record_type_name((int)out->type), why);
    return 0;
}

static bool image_valid(const wire_meta_image_t *img)
{
    return img->records_applied >= 0 && img->no_op_count >= 0 &&
           img->no_op_count <= img->records_applied && img->last_applied_offset >= -1 &&
           img->last_applied_epoch >= -1;
}

int wire_meta_encode_image(const wire_meta_image_t *img, kl_buf_t *out)
{
    if (!image_valid(img)) return KL_EINVAL;
    Keel__Metadata__MetadataImage pb = KEEL__METADATA__METADATA_IMAGE__INIT;
    pb.records_applied = img->records_applied;
    pb.no_op_count = img->no_op_count;
    pb.last_applied_offset = img->last_applied_offset;
    pb.last_applied_epoch = img->last_applied_epoch;
    return pack_into(&pb.base, out);
}

int wire_meta_decode_image(const uint8_t *p, size_t len, wire_meta_image_t *out)
{
    Keel__Metadata__MetadataImage *pb = keel__metadata__metadata_image__unpack(NULL, len, p);
    if (!pb) return KL_EPROTO;
    wire_meta_image_t img = {pb->records_applied, pb->no_op_count, pb->last_applied_offset,
                             pb->last_applied_epoch};
    keel__metadata__metadata_image__free_unpacked(pb, NULL);
    if (!image_valid(&img)) return KL_EPROTO;
    *out = img;
    return 0;
}

/* ---- the metadata image over the log ------------------------------------------- */

/* Snapshot payload: "KMIS", u32 BE version, u32 BE record count, then per
 * record a u32 BE length and the MetadataRecord. The count makes a cut-off
 * snapshot detectable even at a record boundary. */
#define WIRE_META_SNAPSHOT_MAGIC "KMIS"
#define WIRE_META_SNAPSHOT_VERSION 1u
#define WIRE_META_SNAPSHOT_HEAD 12u
#define WIRE_META_MAX_RECORD_BYTES (64u * 1024u) /* the largest record (16 configs) is ~6 KiB */

__attribute__((format(printf, 4, 5))) static int say(int code, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

int wire_meta_apply_entry(meta_image_t *img, const raft_entry_t *e, char *why, size_t why_len)
{
    if (e->control) return 0; /* a leader-change marker of the Raft log, not a record */
    wire_meta_store_t store;
    meta_record_t rec;
    if (wire_meta_decode_record_full(e->data, e->len, &rec, &store))
        return say(KL_ECORRUPT, why, why_len, "metadata entry at offset %lld: %s", (long long)e->offset, store.why);
    if (rec.type == META_REC_NO_OP) return 0;
    int rc = meta_image_apply(img, &rec, e->offset);
    if (rc)
        return say(rc, why, why_len, "%s record at offset %lld does not apply: %s", meta_record_type_name((int)rec.type),
                   (long long)e->offset, meta_image_error(img));
    return 0;
}

int wire_meta_encode_snapshot(const meta_image_t *img, kl_buf_t *out)
{
    meta_records_t recs;
    meta_records_init(&recs);
    size_t start = out->len;
    int rc = meta_image_to_records(img, &recs);
    if (rc == 0) rc = kl_buf_append(out, WIRE_META_SNAPSHOT_MAGIC, 4);
    if (rc == 0) rc = kl_buf_append_be32(out, WIRE_META_SNAPSHOT_VERSION);
    if (rc == 0) rc = kl_buf_append_be32(out, (uint32_t)recs.n);
    for (int i = 0; rc == 0 && i < recs.n; i++) {
        size_t at = out->len;
        if ((rc = kl_buf_append_be32(out, 0)) || (rc = wire_meta_encode_record(&recs.recs[i], out))) break;
        size_t n = out->len - at - 4;
        if (n > WIRE_META_MAX_RECORD_BYTES) rc = KL_EINVAL; /* the decoder would refuse it */
        else kl_put_be32(out->data + at, (uint32_t)n);
    }
    meta_records_free(&recs);
    if (rc) out->len = start;
    return rc;
}

int wire_meta_decode_snapshot(const uint8_t *p, size_t len, meta_image_t **out, char *why, size_t why_len)
{
    *out = NULL;
    if (len < WIRE_META_SNAPSHOT_HEAD || memcmp(p, WIRE_META_SNAPSHOT_MAGIC, 4) != 0)
        return say(KL_ECORRUPT, why, why_len, "not a metadata snapshot (%zu bytes)", len);
    uint32_t version = kl_get_be32(p + 4), count = kl_get_be32(p + 8);
    if (version != WIRE_META_SNAPSHOT_VERSION)
        return say(KL_ECORRUPT, why, why_len, "metadata snapshot version %u, this build reads %u", (unsigned)version,
                   WIRE_META_SNAPSHOT_VERSION);
    if (count > META_MAX_RECORDS)
        return say(KL_ECORRUPT, why, why_len, "metadata snapshot of %u records, over %d", (unsigned)count,
                   META_MAX_RECORDS);
    meta_image_t *img = meta_image_new();
    if (!img) return say(KL_ENOMEM, why, why_len, "no memory for a metadata image");
    size_t pos = WIRE_META_SNAPSHOT_HEAD;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < count; i++) {
        uint32_t n = len - pos >= 4 ? kl_get_be32(p + pos) : UINT32_MAX;
        if (n > WIRE_META_MAX_RECORD_BYTES || n > len - pos - 4) {
            rc = say(KL_ECORRUPT, why, why_len, "snapshot record %u of %u truncated or oversized", (unsigned)i,
                     (unsigned)count);
            break;
        }
        wire_meta_store_t store;
        meta_record_t rec;
        if (wire_meta_decode_record_full(p + pos + 4, n, &rec, &store))
            rc = say(KL_ECORRUPT, why, why_len, "snapshot record %u: %s", (unsigned)i, store.why);
        else if (rec.type == META_REC_REGISTER_BROKER && rec.u.reg.broker_epoch < 0)
            rc = say(KL_ECORRUPT, why, why_len, "snapshot record %u: registration without its epoch", (unsigned)i);
        else if ((rc = meta_image_apply(img, &rec, (int64_t)i)) != 0)
            rc = say(rc == KL_ENOMEM ? rc : KL_ECORRUPT, why, why_len, "snapshot record %u (%s) does not apply: %s", (unsigned)i,
                     meta_record_type_name((int)rec.type), meta_image_error(img));
        pos += 4 + (size_t)n;
    }
    if (rc == 0 && pos != len)
        rc = say(KL_ECORRUPT, why, why_len, "%zu bytes after the last snapshot record", len - pos);
    if (rc) {
        meta_image_free(img);
        return rc;
    }
    *out = img;
    return 0;
}
