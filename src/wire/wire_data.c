/* wire_data.c — protobuf-c codecs of the broker, admin and data-plane APIs (DESIGN.md §3, §4, §5). */
#include <inttypes.h>
#include <string.h>

#include "keel/err.h"
#include "wire_impl.h"

/* ---- shared pieces ------------------------------------------------------------------ */

/* protobuf-c's pointers are not const, but packing only reads them: the
 * encoders lend the caller's message to the packer. */
static void *lend(const void *p)
{
    return (void *)(uintptr_t)p;
}

static bool uuid_zero(const uint8_t u[KL_UUID_LEN])
{
    static const uint8_t zero[KL_UUID_LEN];
    return memcmp(u, zero, KL_UUID_LEN) == 0;
}

/* The zero uuid ("none") travels as empty bytes. */
static ProtobufCBinaryData uuid_arg(const uint8_t u[KL_UUID_LEN])
{
    return uuid_zero(u) ? (ProtobufCBinaryData){0, NULL} : (ProtobufCBinaryData){KL_UUID_LEN, lend(u)};
}

static int get_uuid(ProtobufCBinaryData b, uint8_t out[KL_UUID_LEN], const char *what)
{
    if (b.len != 0 && b.len != KL_UUID_LEN)
        return wire_fail(KL_EPROTO, "%s is %zu bytes, not %d", what, b.len, KL_UUID_LEN);
    memset(out, 0, KL_UUID_LEN);
    if (b.len) memcpy(out, b.data, KL_UUID_LEN);
    return 0;
}

static bool str_ok(const char *s, size_t cap, bool nonempty, const char *what)
{
    WIRE_CHECK(memchr(s, '\0', cap), "%s not NUL-terminated within %zu bytes", what, cap);
    WIRE_CHECK(!nonempty || s[0], "%s empty", what);
    return true;
}
#define STR_OK(field, nonempty, what) str_ok(field, sizeof(field), nonempty, what)

/* Runs the metadata core's own validation (meta.h) on what a message carries. */
static bool meta_ok(const meta_record_t *rec, const char *what)
{
    char why[META_MSG_LEN];
    WIRE_CHECK(meta_record_validate(rec, why, sizeof why) == 0, "%s: %s", what, why);
    return true;
}

/* Distinct broker ids, 1..META_MAX_REPLICAS of them (an ISR or replica set). */
static bool ids_ok(const int32_t *ids, int n, const char *what)
{
    WIRE_CHECK(n >= 1 && n <= META_MAX_REPLICAS, "%s of %d brokers, outside 1..%d", what, n, META_MAX_REPLICAS);
    for (int i = 0; i < n; i++) {
        WIRE_CHECK(ids[i] >= 0, "%s member %" PRId32 " negative", what, ids[i]);
        for (int j = 0; j < i; j++) WIRE_CHECK(ids[j] != ids[i], "%s names broker %" PRId32 " twice", what, ids[i]);
    }
    return true;
}

static int get_ids(int32_t dst[META_MAX_REPLICAS], int *n_out, const int32_t *src, size_t n, const char *what)
{
    if (n > META_MAX_REPLICAS) return wire_fail(KL_EPROTO, "%s of %zu brokers, over %d", what, n, META_MAX_REPLICAS);
    if (n) memcpy(dst, src, n * sizeof *dst);
    *n_out = (int)n;
    return 0;
}

static Keel__Listener **enc_listeners(const meta_listener_t *l, int n, Keel__Listener *pb, Keel__Listener **ptrs)
{
    for (int i = 0; i < n; i++) {
        keel__listener__init(&pb[i]);
        pb[i].name = lend(l[i].name);
        pb[i].host = lend(l[i].host);
        pb[i].port = l[i].port;
        ptrs[i] = &pb[i];
    }
    return ptrs;
}

static int get_listeners(Keel__Listener *const *pb, size_t n, meta_listener_t out[META_MAX_LISTENERS], int *n_out)
{
    if (n > META_MAX_LISTENERS) return wire_fail(KL_EPROTO, "%zu listeners, over %d", n, META_MAX_LISTENERS);
    for (size_t i = 0; i < n; i++) {
        int rc;
        if ((rc = wire_copy_str(out[i].name, sizeof out[i].name, pb[i]->name, "listener name")) ||
            (rc = wire_copy_str(out[i].host, sizeof out[i].host, pb[i]->host, "listener host")))
            return rc;
        if (pb[i]->port > UINT16_MAX) return wire_fail(KL_EPROTO, "listener port %" PRIu32, pb[i]->port);
        out[i].port = (uint16_t)pb[i]->port;
    }
    *n_out = (int)n;
    return 0;
}

/* Structure only; a registration also gets meta_record_validate's rules. */
static bool listeners_ok(const meta_listener_t *l, int n)
{
    WIRE_CHECK(n >= 1 && n <= META_MAX_LISTENERS, "%d listeners, outside 1..%d", n, META_MAX_LISTENERS);
    for (int i = 0; i < n; i++) {
        if (!STR_OK(l[i].name, true, "listener name") || !STR_OK(l[i].host, true, "listener host")) return false;
        WIRE_CHECK(l[i].port != 0, "listener %s port 0", l[i].name);
    }
    return true;
}

static Keel__ConfigEntry **enc_configs(const meta_config_t *c, int n, Keel__ConfigEntry *pb, Keel__ConfigEntry **ptrs)
{
    for (int i = 0; i < n; i++) {
        keel__config_entry__init(&pb[i]);
        pb[i].key = lend(c[i].key);
        pb[i].value = lend(c[i].value);
        ptrs[i] = &pb[i];
    }
    return ptrs;
}

/* The caller has bounded n by META_MAX_CONFIGS. */
static int get_configs(Keel__ConfigEntry *const *pb, size_t n, meta_config_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int rc;
        if ((rc = wire_copy_str(out[i].key, sizeof out[i].key, pb[i]->key, "config key")) ||
            (rc = wire_copy_str(out[i].value, sizeof out[i].value, pb[i]->value, "config value")))
            return rc;
    }
    return 0;
}

/* Structure only: which keys and values are valid is the controller's call. */
static bool configs_ok(const meta_config_t *c, int n)
{
    WIRE_CHECK(n >= 0 && n <= META_MAX_CONFIGS && (n == 0 || c), "%d configs, outside 0..%d", n, META_MAX_CONFIGS);
    for (int i = 0; i < n; i++)
        if (!STR_OK(c[i].key, true, "config key") || !STR_OK(c[i].value, false, "config value")) return false;
    return true;
}

static bool payload_ok(const wire_msg_t *m)
{
    WIRE_CHECK(m->payload_len == 0 || m->payload, "%zu-byte payload missing", m->payload_len);
    return true;
}

/* PRODUCE requests and FETCH responses: the record batches as they are. */
static int put_raw(const wire_msg_t *m, kl_buf_t *out)
{
    int rc = m->payload_len ? kl_buf_append(out, m->payload, m->payload_len) : 0;
    return rc ? wire_fail(rc, "cannot append a %zu-byte payload: %s", m->payload_len, kl_strerror(rc)) : 0;
}

/* ---- BrokerRegistration --------------------------------------------------------------- */

static int enc_registration_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__BrokerRegistrationRequest *r = (Keel__BrokerRegistrationRequest *)pb;
    const wire_broker_registration_req_t *b = &m->body.broker_registration;
    r->broker_id = b->broker_id;
    r->incarnation = uuid_arg(b->incarnation);
    r->n_listeners = (size_t)b->n_listeners;
    r->listeners = enc_listeners(b->listeners, b->n_listeners, s->listeners, s->listener_ptrs);
    r->rack = lend(b->rack);
    return 0;
}

static int dec_registration_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__BrokerRegistrationRequest *r = (const Keel__BrokerRegistrationRequest *)pb;
    wire_broker_registration_req_t *b = &m->body.broker_registration;
    b->broker_id = r->broker_id;
    int rc = get_uuid(r->incarnation, b->incarnation, "incarnation");
    if (rc || (rc = get_listeners(r->listeners, r->n_listeners, b->listeners, &b->n_listeners))) return rc;
    return wire_copy_str(b->rack, sizeof b->rack, r->rack, "rack");
}

/* What the controller will append: the registration record (DESIGN.md §3). */
static bool check_registration_req(const wire_msg_t *m)
{
    const wire_broker_registration_req_t *b = &m->body.broker_registration;
    meta_record_t rec = {.type = META_REC_REGISTER_BROKER};
    rec.u.reg.broker_id = b->broker_id;
    rec.u.reg.broker_epoch = META_EPOCH_FROM_OFFSET;
    memcpy(rec.u.reg.incarnation, b->incarnation, KL_UUID_LEN);
    rec.u.reg.listeners = b->listeners;
    rec.u.reg.n_listeners = b->n_listeners;
    memcpy(rec.u.reg.rack, b->rack, sizeof rec.u.reg.rack);
    return meta_ok(&rec, "broker registration");
}

static int enc_registration_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    ((Keel__BrokerRegistrationResponse *)pb)->broker_epoch = m->body.broker_registration_resp.broker_epoch;
    return 0;
}

static int dec_registration_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    m->body.broker_registration_resp.broker_epoch = ((const Keel__BrokerRegistrationResponse *)pb)->broker_epoch;
    return 0;
}

static bool check_registration_resp(const wire_msg_t *m)
{
    WIRE_CHECK(m->body.broker_registration_resp.broker_epoch >= 0, "broker epoch %" PRId64 " negative",
               m->body.broker_registration_resp.broker_epoch);
    return true;
}

/* ---- BrokerHeartbeat -------------------------------------------------------------------- */

static int enc_heartbeat_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__BrokerHeartbeatRequest *r = (Keel__BrokerHeartbeatRequest *)pb;
    const wire_broker_heartbeat_req_t *h = &m->body.broker_heartbeat;
    r->broker_id = h->broker_id;
    r->broker_epoch = h->broker_epoch;
    r->metadata_offset = h->metadata_offset;
    r->want_fence = h->want_fence;
    r->want_shutdown = h->want_shutdown;
    return 0;
}

static int dec_heartbeat_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__BrokerHeartbeatRequest *r = (const Keel__BrokerHeartbeatRequest *)pb;
    wire_broker_heartbeat_req_t *h = &m->body.broker_heartbeat;
    h->broker_id = r->broker_id;
    h->broker_epoch = r->broker_epoch;
    h->metadata_offset = r->metadata_offset;
    h->want_fence = r->want_fence;
    h->want_shutdown = r->want_shutdown;
    return 0;
}

static bool check_heartbeat_req(const wire_msg_t *m)
{
    const wire_broker_heartbeat_req_t *h = &m->body.broker_heartbeat;
    WIRE_CHECK(h->broker_id >= 0 && h->broker_epoch >= 0 && h->metadata_offset >= -1,
               "heartbeat of broker %" PRId32 " epoch %" PRId64 " at metadata offset %" PRId64 " invalid",
               h->broker_id, h->broker_epoch, h->metadata_offset);
    return true;
}

static int enc_heartbeat_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__BrokerHeartbeatResponse *r = (Keel__BrokerHeartbeatResponse *)pb;
    r->fenced = m->body.broker_heartbeat_resp.fenced;
    r->shutting_down = m->body.broker_heartbeat_resp.shutting_down;
    r->shutdown_now = m->body.broker_heartbeat_resp.shutdown_now;
    return 0;
}

static int dec_heartbeat_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__BrokerHeartbeatResponse *r = (const Keel__BrokerHeartbeatResponse *)pb;
    m->body.broker_heartbeat_resp.fenced = r->fenced;
    m->body.broker_heartbeat_resp.shutting_down = r->shutting_down;
    m->body.broker_heartbeat_resp.shutdown_now = r->shutdown_now;
    return 0;
}

/* ---- AlterPartition ------------------------------------------------------------------- */

static int enc_alter_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__AlterPartitionRequest *r = (Keel__AlterPartitionRequest *)pb;
    const wire_alter_partition_req_t *a = &m->body.alter_partition;
    r->broker_id = a->broker_id;
    r->broker_epoch = a->broker_epoch;
    r->topic_id = uuid_arg(a->topic_id);
    r->partition = a->partition;
    r->leader_epoch = a->leader_epoch;
    r->partition_epoch = a->partition_epoch;
    r->n_isr = (size_t)a->n_isr;
    r->isr = lend(a->isr);
    return 0;
}

static int dec_alter_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__AlterPartitionRequest *r = (const Keel__AlterPartitionRequest *)pb;
    wire_alter_partition_req_t *a = &m->body.alter_partition;
    a->broker_id = r->broker_id;
    a->broker_epoch = r->broker_epoch;
    a->partition = r->partition;
    a->leader_epoch = r->leader_epoch;
    a->partition_epoch = r->partition_epoch;
    int rc = get_uuid(r->topic_id, a->topic_id, "topic id");
    return rc ? rc : get_ids(a->isr, &a->n_isr, r->isr, r->n_isr, "isr");
}

static bool check_alter_req(const wire_msg_t *m)
{
    const wire_alter_partition_req_t *a = &m->body.alter_partition;
    WIRE_CHECK(a->broker_id >= 0 && a->broker_epoch >= 0, "broker %" PRId32 " epoch %" PRId64 " invalid",
               a->broker_id, a->broker_epoch);
    WIRE_CHECK(!uuid_zero(a->topic_id), "zero topic id");
    WIRE_CHECK(a->partition >= 0 && a->partition < META_MAX_TOPIC_PARTITIONS, "partition %" PRId32 " out of range",
               a->partition);
    WIRE_CHECK(a->leader_epoch >= 0 && a->partition_epoch >= 0, "negative epoch");
    return ids_ok(a->isr, a->n_isr, "isr");
}

static int enc_alter_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__AlterPartitionResponse *r = (Keel__AlterPartitionResponse *)pb;
    const wire_alter_partition_resp_t *a = &m->body.alter_partition_resp;
    r->leader = a->leader;
    r->leader_epoch = a->leader_epoch;
    r->partition_epoch = a->partition_epoch;
    r->n_isr = (size_t)a->n_isr;
    r->isr = lend(a->isr);
    return 0;
}

static int dec_alter_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__AlterPartitionResponse *r = (const Keel__AlterPartitionResponse *)pb;
    wire_alter_partition_resp_t *a = &m->body.alter_partition_resp;
    a->leader = r->leader;
    a->leader_epoch = r->leader_epoch;
    a->partition_epoch = r->partition_epoch;
    return get_ids(a->isr, &a->n_isr, r->isr, r->n_isr, "isr");
}

/* The partition's state after the change keeps meta.h's invariants. */
static bool check_alter_resp(const wire_msg_t *m)
{
    const wire_alter_partition_resp_t *a = &m->body.alter_partition_resp;
    WIRE_CHECK(a->leader_epoch >= 0 && a->partition_epoch >= 0, "negative epoch");
    if (!ids_ok(a->isr, a->n_isr, "isr")) return false;
    bool in_isr = false;
    for (int i = 0; i < a->n_isr; i++) in_isr |= a->isr[i] == a->leader;
    WIRE_CHECK(a->leader == META_NO_LEADER || in_isr, "leader %" PRId32 " not in the isr", a->leader);
    return true;
}

/* ---- AllocateProducerIds ------------------------------------------------------------- */

static int enc_pids_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__AllocateProducerIdsRequest *r = (Keel__AllocateProducerIdsRequest *)pb;
    r->broker_id = m->body.allocate_producer_ids.broker_id;
    r->broker_epoch = m->body.allocate_producer_ids.broker_epoch;
    return 0;
}

static int dec_pids_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__AllocateProducerIdsRequest *r = (const Keel__AllocateProducerIdsRequest *)pb;
    m->body.allocate_producer_ids.broker_id = r->broker_id;
    m->body.allocate_producer_ids.broker_epoch = r->broker_epoch;
    return 0;
}

static bool check_pids_req(const wire_msg_t *m)
{
    const wire_allocate_producer_ids_req_t *a = &m->body.allocate_producer_ids;
    WIRE_CHECK(a->broker_id >= 0 && a->broker_epoch >= 0, "broker %" PRId32 " epoch %" PRId64 " invalid",
               a->broker_id, a->broker_epoch);
    return true;
}

static int enc_pids_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__AllocateProducerIdsResponse *r = (Keel__AllocateProducerIdsResponse *)pb;
    r->first_id = m->body.allocate_producer_ids_resp.first_id;
    r->size = m->body.allocate_producer_ids_resp.size;
    return 0;
}

static int dec_pids_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__AllocateProducerIdsResponse *r = (const Keel__AllocateProducerIdsResponse *)pb;
    m->body.allocate_producer_ids_resp.first_id = r->first_id;
    m->body.allocate_producer_ids_resp.size = r->size;
    return 0;
}

static bool check_pids_resp(const wire_msg_t *m)
{
    const wire_allocate_producer_ids_resp_t *a = &m->body.allocate_producer_ids_resp;
    WIRE_CHECK(a->first_id >= 0 && a->size >= 1 && a->size <= META_MAX_PRODUCER_ID_BLOCK &&
                   a->first_id <= INT64_MAX - a->size,
               "producer id block %" PRId64 "+%" PRId32 " invalid", a->first_id, a->size);
    return true;
}

/* ---- CreateTopic / DeleteTopic / ElectLeaders -------------------------------------- */

static int enc_create_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__CreateTopicRequest *r = (Keel__CreateTopicRequest *)pb;
    const wire_create_topic_req_t *c = &m->body.create_topic;
    r->name = lend(c->name);
    r->partitions = c->partitions;
    r->replication_factor = c->replication_factor;
    r->n_configs = (size_t)c->n_configs;
    r->configs = enc_configs(c->configs, c->n_configs, s->configs, s->config_ptrs);
    return 0;
}

static int dec_create_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__CreateTopicRequest *r = (const Keel__CreateTopicRequest *)pb;
    wire_create_topic_req_t *c = &m->body.create_topic;
    c->partitions = r->partitions;
    c->replication_factor = r->replication_factor;
    if (r->n_configs > META_MAX_CONFIGS)
        return wire_fail(KL_EPROTO, "%zu configs, over %d", r->n_configs, META_MAX_CONFIGS);
    c->n_configs = (int)r->n_configs;
    int rc = wire_copy_str(c->name, sizeof c->name, r->name, "topic name");
    return rc ? rc : get_configs(r->configs, r->n_configs, c->configs);
}

/* Structure and bounds; the name's and the configs' validity are the
 * controller's to judge, so the client gets its reason in an error response. */
static bool check_create_req(const wire_msg_t *m)
{
    const wire_create_topic_req_t *c = &m->body.create_topic;
    WIRE_CHECK(c->partitions == -1 || (c->partitions >= 1 && c->partitions <= META_MAX_TOPIC_PARTITIONS),
               "%" PRId32 " partitions, neither -1 nor 1..%d", c->partitions, META_MAX_TOPIC_PARTITIONS);
    WIRE_CHECK(c->replication_factor == -1 || (c->replication_factor >= 1 && c->replication_factor <= META_MAX_REPLICAS),
               "replication factor %" PRId32 ", neither -1 nor 1..%d", c->replication_factor, META_MAX_REPLICAS);
    return STR_OK(c->name, true, "topic name") && configs_ok(c->configs, c->n_configs);
}

static int enc_create_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__CreateTopicResponse *r = (Keel__CreateTopicResponse *)pb;
    r->topic_id = uuid_arg(m->body.create_topic_resp.topic_id);
    r->partitions = m->body.create_topic_resp.partitions;
    r->replication_factor = m->body.create_topic_resp.replication_factor;
    return 0;
}

static int dec_create_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__CreateTopicResponse *r = (const Keel__CreateTopicResponse *)pb;
    m->body.create_topic_resp.partitions = r->partitions;
    m->body.create_topic_resp.replication_factor = r->replication_factor;
    return get_uuid(r->topic_id, m->body.create_topic_resp.topic_id, "topic id");
}

static bool check_create_resp(const wire_msg_t *m)
{
    const wire_create_topic_resp_t *c = &m->body.create_topic_resp;
    WIRE_CHECK(!uuid_zero(c->topic_id), "zero topic id");
    WIRE_CHECK(c->partitions >= 1 && c->partitions <= META_MAX_TOPIC_PARTITIONS && c->replication_factor >= 1 &&
                   c->replication_factor <= META_MAX_REPLICAS,
               "%" PRId32 " partitions with replication factor %" PRId32 " out of range", c->partitions,
               c->replication_factor);
    return true;
}

static int enc_delete_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    ((Keel__DeleteTopicRequest *)pb)->name = lend(m->body.delete_topic.name);
    return 0;
}

static int dec_delete_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    return wire_copy_str(m->body.delete_topic.name, sizeof m->body.delete_topic.name,
                         ((const Keel__DeleteTopicRequest *)pb)->name, "topic name");
}

static bool check_delete_req(const wire_msg_t *m)
{
    return STR_OK(m->body.delete_topic.name, true, "topic name");
}

static int enc_delete_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    ((Keel__DeleteTopicResponse *)pb)->topic_id = uuid_arg(m->body.delete_topic_resp.topic_id);
    return 0;
}

static int dec_delete_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    return get_uuid(((const Keel__DeleteTopicResponse *)pb)->topic_id, m->body.delete_topic_resp.topic_id, "topic id");
}

static bool check_delete_resp(const wire_msg_t *m)
{
    WIRE_CHECK(!uuid_zero(m->body.delete_topic_resp.topic_id), "zero topic id");
    return true;
}

static int enc_elect_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__ElectLeadersRequest *r = (Keel__ElectLeadersRequest *)pb;
    r->topic = lend(m->body.elect_leaders.topic);
    r->preferred = m->body.elect_leaders.preferred;
    return 0;
}

static int dec_elect_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__ElectLeadersRequest *r = (const Keel__ElectLeadersRequest *)pb;
    m->body.elect_leaders.preferred = r->preferred;
    return wire_copy_str(m->body.elect_leaders.topic, sizeof m->body.elect_leaders.topic, r->topic, "topic name");
}

static bool check_elect_req(const wire_msg_t *m)
{
    return STR_OK(m->body.elect_leaders.topic, false, "topic name");
}

static int enc_elect_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__ElectLeadersResponse *r = (Keel__ElectLeadersResponse *)pb;
    r->partitions_elected = m->body.elect_leaders_resp.partitions_elected;
    r->message = lend(m->body.elect_leaders_resp.message);
    return 0;
}

static int dec_elect_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__ElectLeadersResponse *r = (const Keel__ElectLeadersResponse *)pb;
    m->body.elect_leaders_resp.partitions_elected = r->partitions_elected;
    return wire_copy_str(m->body.elect_leaders_resp.message, sizeof m->body.elect_leaders_resp.message, r->message,
                         "election message");
}

static bool check_elect_resp(const wire_msg_t *m)
{
    WIRE_CHECK(m->body.elect_leaders_resp.partitions_elected >= 0, "%" PRId32 " partitions elected",
               m->body.elect_leaders_resp.partitions_elected);
    return STR_OK(m->body.elect_leaders_resp.message, false, "election message");
}

/* ---- Metadata ---------------------------------------------------------------------------- */

static int enc_metadata_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__MetadataRequest *r = (Keel__MetadataRequest *)pb;
    const wire_metadata_req_t *q = &m->body.metadata;
    if (q->n_topics == 0) return 0;
    if (!(r->topics = wire_scratch_alloc(s, (size_t)q->n_topics, sizeof *r->topics))) return KL_ENOMEM;
    for (int i = 0; i < q->n_topics; i++) r->topics[i] = lend(q->topics[i]);
    r->n_topics = (size_t)q->n_topics;
    return 0;
}

static int dec_metadata_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__MetadataRequest *r = (const Keel__MetadataRequest *)pb;
    wire_metadata_req_t *q = &m->body.metadata;
    if (r->n_topics > WIRE_MAX_METADATA_TOPICS)
        return wire_fail(KL_EPROTO, "%zu topics asked for, over %d", r->n_topics, WIRE_MAX_METADATA_TOPICS);
    if (r->n_topics == 0) return 0;
    if (!(q->topics = wire_owned_alloc(m, r->n_topics, sizeof *q->topics))) return KL_ENOMEM;
    q->n_topics = (int)r->n_topics;
    for (size_t i = 0; i < r->n_topics; i++) {
        int rc = wire_copy_str(q->topics[i], sizeof q->topics[i], r->topics[i], "topic name");
        if (rc) return rc;
    }
    return 0;
}

static bool check_metadata_req(const wire_msg_t *m)
{
    const wire_metadata_req_t *q = &m->body.metadata;
    WIRE_CHECK(q->n_topics >= 0 && q->n_topics <= WIRE_MAX_METADATA_TOPICS && (q->n_topics == 0 || q->topics),
               "%d topics asked for, outside 0..%d", q->n_topics, WIRE_MAX_METADATA_TOPICS);
    for (int i = 0; i < q->n_topics; i++)
        if (!STR_OK(q->topics[i], true, "topic name")) return false;
    return true;
}

/* Every protobuf array of a Metadata response, in scratch (encode). */
typedef struct metadata_arrays {
    Keel__BrokerInfo *brokers, **broker_ptrs;
    Keel__Listener *listeners, **listener_ptrs;
    Keel__TopicInfo *topics, **topic_ptrs;
    Keel__ConfigEntry *configs, **config_ptrs;
    Keel__PartitionInfo *parts, **part_ptrs;
} metadata_arrays_t;

static int metadata_arrays(const wire_metadata_resp_t *r, wire_scratch_t *s, metadata_arrays_t *a)
{
    size_t n_listeners = 0, n_configs = 0, n_parts = 0;
    for (int i = 0; i < r->n_brokers; i++) n_listeners += (size_t)r->brokers[i].n_listeners;
    for (int i = 0; i < r->n_topics; i++) {
        n_configs += (size_t)r->topics[i].n_configs;
        n_parts += (size_t)r->topics[i].n_partitions;
    }
    size_t nb = (size_t)r->n_brokers, nt = (size_t)r->n_topics;
    bool ok = (a->brokers = wire_scratch_alloc(s, nb, sizeof *a->brokers)) &&
              (a->broker_ptrs = wire_scratch_alloc(s, nb, sizeof *a->broker_ptrs)) &&
              (a->listeners = wire_scratch_alloc(s, n_listeners, sizeof *a->listeners)) &&
              (a->listener_ptrs = wire_scratch_alloc(s, n_listeners, sizeof *a->listener_ptrs)) &&
              (a->topics = wire_scratch_alloc(s, nt, sizeof *a->topics)) &&
              (a->topic_ptrs = wire_scratch_alloc(s, nt, sizeof *a->topic_ptrs)) &&
              (a->configs = wire_scratch_alloc(s, n_configs, sizeof *a->configs)) &&
              (a->config_ptrs = wire_scratch_alloc(s, n_configs, sizeof *a->config_ptrs)) &&
              (a->parts = wire_scratch_alloc(s, n_parts, sizeof *a->parts)) &&
              (a->part_ptrs = wire_scratch_alloc(s, n_parts, sizeof *a->part_ptrs));
    return ok ? 0 : KL_ENOMEM;
}

static void enc_partition(const meta_partition_t *p, Keel__PartitionInfo *pb)
{
    keel__partition_info__init(pb);
    pb->n_replicas = (size_t)p->n_replicas;
    pb->replicas = lend(p->replicas);
    pb->n_isr = (size_t)p->n_isr;
    pb->isr = lend(p->isr);
    pb->leader = p->leader;
    pb->leader_epoch = p->leader_epoch;
    pb->partition_epoch = p->partition_epoch;
}

static int enc_metadata_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__MetadataResponse *r = (Keel__MetadataResponse *)pb;
    const wire_metadata_resp_t *q = &m->body.metadata_resp;
    metadata_arrays_t a;
    int rc = metadata_arrays(q, s, &a);
    if (rc) return rc;
    r->controller_id = q->controller_id;
    r->metadata_offset = q->metadata_offset;
    size_t nl = 0, nc = 0, np = 0;
    for (int i = 0; i < q->n_brokers; i++) {
        const wire_broker_info_t *b = &q->brokers[i];
        Keel__BrokerInfo *bp = &a.brokers[i];
        keel__broker_info__init(bp);
        bp->id = b->id;
        bp->epoch = b->epoch;
        bp->state = (uint32_t)b->state;
        bp->rack = lend(b->rack);
        bp->n_listeners = (size_t)b->n_listeners;
        bp->listeners = enc_listeners(b->listeners, b->n_listeners, &a.listeners[nl], &a.listener_ptrs[nl]);
        nl += bp->n_listeners;
        a.broker_ptrs[i] = bp;
    }
    r->n_brokers = (size_t)q->n_brokers;
    r->brokers = a.broker_ptrs;
    for (int i = 0; i < q->n_topics; i++) {
        const wire_topic_info_t *t = &q->topics[i];
        Keel__TopicInfo *tp = &a.topics[i];
        keel__topic_info__init(tp);
        tp->name = lend(t->name);
        tp->topic_id = uuid_arg(t->topic_id);
        tp->error = t->error;
        tp->n_configs = (size_t)t->n_configs;
        tp->configs = enc_configs(t->configs, t->n_configs, &a.configs[nc], &a.config_ptrs[nc]);
        nc += tp->n_configs;
        tp->n_partitions = (size_t)t->n_partitions;
        tp->partitions = &a.part_ptrs[np];
        for (int j = 0; j < t->n_partitions; j++, np++) {
            enc_partition(&t->partitions[j], &a.parts[np]);
            a.part_ptrs[np] = &a.parts[np];
        }
        a.topic_ptrs[i] = tp;
    }
    r->n_topics = (size_t)q->n_topics;
    r->topics = a.topic_ptrs;
    return 0;
}

static int dec_broker_info(const Keel__BrokerInfo *pb, wire_broker_info_t *b)
{
    b->id = pb->id;
    b->epoch = pb->epoch;
    if (pb->state > META_BROKER_SHUTTING_DOWN) return wire_fail(KL_EPROTO, "broker state %" PRIu32, pb->state);
    b->state = (meta_broker_state_t)pb->state;
    int rc = wire_copy_str(b->rack, sizeof b->rack, pb->rack, "rack");
    return rc ? rc : get_listeners(pb->listeners, pb->n_listeners, b->listeners, &b->n_listeners);
}

/* The topic's partitions are parts[0..n): their topic and index are implied. */
static int dec_topic_info(const Keel__TopicInfo *pb, wire_topic_info_t *t, meta_config_t *configs,
                          meta_partition_t *parts)
{
    int rc = wire_copy_str(t->name, sizeof t->name, pb->name, "topic name");
    if (rc || (rc = get_uuid(pb->topic_id, t->topic_id, "topic id")) ||
        (rc = get_configs(pb->configs, pb->n_configs, configs)))
        return rc;
    t->error = pb->error;
    t->configs = configs;
    t->n_configs = (int)pb->n_configs;
    t->partitions = parts;
    t->n_partitions = (int)pb->n_partitions;
    for (size_t i = 0; i < pb->n_partitions; i++) {
        const Keel__PartitionInfo *pp = pb->partitions[i];
        meta_partition_t *p = &parts[i];
        memcpy(p->topic, t->topic_id, KL_UUID_LEN);
        p->partition = (int32_t)i;
        p->leader = pp->leader;
        p->leader_epoch = pp->leader_epoch;
        p->partition_epoch = pp->partition_epoch;
        if ((rc = get_ids(p->replicas, &p->n_replicas, pp->replicas, pp->n_replicas, "replicas")) ||
            (rc = get_ids(p->isr, &p->n_isr, pp->isr, pp->n_isr, "isr")))
            return rc;
    }
    return 0;
}

static int dec_metadata_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__MetadataResponse *r = (const Keel__MetadataResponse *)pb;
    wire_metadata_resp_t *q = &m->body.metadata_resp;
    q->controller_id = r->controller_id;
    q->metadata_offset = r->metadata_offset;
    if (r->n_brokers > META_MAX_BROKERS || r->n_topics > META_MAX_TOPICS)
        return wire_fail(KL_EPROTO, "%zu brokers / %zu topics, over %d / %d", r->n_brokers, r->n_topics,
                         META_MAX_BROKERS, META_MAX_TOPICS);
    size_t n_configs = 0, n_parts = 0;
    for (size_t i = 0; i < r->n_topics; i++) {
        const Keel__TopicInfo *t = r->topics[i];
        if (t->n_configs > META_MAX_CONFIGS || t->n_partitions > META_MAX_TOPIC_PARTITIONS)
            return wire_fail(KL_EPROTO, "topic %zu: %zu configs / %zu partitions, over %d / %d", i, t->n_configs,
                             t->n_partitions, META_MAX_CONFIGS, META_MAX_TOPIC_PARTITIONS);
        n_configs += t->n_configs;
        n_parts += t->n_partitions;
    }
    if (n_parts > META_MAX_PARTITIONS)
        return wire_fail(KL_EPROTO, "%zu partitions, over %d", n_parts, META_MAX_PARTITIONS);
    wire_broker_info_t *brokers = wire_owned_alloc(m, r->n_brokers, sizeof *brokers);
    wire_topic_info_t *topics = brokers ? wire_owned_alloc(m, r->n_topics, sizeof *topics) : NULL;
    meta_config_t *configs = topics ? wire_owned_alloc(m, n_configs, sizeof *configs) : NULL;
    meta_partition_t *parts = configs ? wire_owned_alloc(m, n_parts, sizeof *parts) : NULL;
    if (!parts) return KL_ENOMEM;
    int rc;
    for (size_t i = 0; i < r->n_brokers; i++)
        if ((rc = dec_broker_info(r->brokers[i], &brokers[i]))) return rc;
    for (size_t i = 0; i < r->n_topics; i++) {
        if ((rc = dec_topic_info(r->topics[i], &topics[i], configs, parts))) return rc;
        configs += r->topics[i]->n_configs;
        parts += r->topics[i]->n_partitions;
    }
    q->brokers = brokers;
    q->n_brokers = (int)r->n_brokers;
    q->topics = topics;
    q->n_topics = (int)r->n_topics;
    return 0;
}

static bool check_broker_info(const wire_broker_info_t *b, const wire_broker_info_t *prev)
{
    WIRE_CHECK(b->id >= 0 && b->epoch >= 0, "broker %" PRId32 " epoch %" PRId64 " invalid", b->id, b->epoch);
    WIRE_CHECK(!prev || prev->id < b->id, "broker %" PRId32 " after %" PRId32 ": not by id", b->id, prev->id);
    WIRE_CHECK(b->state >= META_BROKER_FENCED && b->state <= META_BROKER_SHUTTING_DOWN, "broker %" PRId32 " state %d",
               b->id, (int)b->state);
    return STR_OK(b->rack, false, "rack") && listeners_ok(b->listeners, b->n_listeners);
}

/* A topic that exists is described as the image holds it (meta.h invariants);
 * a requested name that does not carries only its error. */
static bool check_topic_info(const wire_topic_info_t *t)
{
    if (!STR_OK(t->name, true, "topic name")) return false;
    WIRE_CHECK(t->error <= 0, "topic %s error %" PRId32 " positive", t->name, t->error);
    if (t->error != 0) {
        WIRE_CHECK(uuid_zero(t->topic_id) && t->n_configs == 0 && t->n_partitions == 0,
                   "topic %s with error %" PRId32 " carries an id, configs or partitions", t->name, t->error);
        return true;
    }
    WIRE_CHECK(t->n_partitions >= 1 && t->n_partitions <= META_MAX_TOPIC_PARTITIONS && t->partitions,
               "topic %s: %d partitions, outside 1..%d", t->name, t->n_partitions, META_MAX_TOPIC_PARTITIONS);
    if (!configs_ok(t->configs, t->n_configs)) return false;
    meta_record_t rec = {.type = META_REC_TOPIC};
    memcpy(rec.u.topic.name, t->name, sizeof rec.u.topic.name);
    memcpy(rec.u.topic.uuid, t->topic_id, KL_UUID_LEN);
    rec.u.topic.configs = t->configs;
    rec.u.topic.n_configs = t->n_configs;
    if (!meta_ok(&rec, t->name)) return false;
    rec.type = META_REC_PARTITION;
    for (int i = 0; i < t->n_partitions; i++) {
        const meta_partition_t *p = &t->partitions[i];
        WIRE_CHECK(p->partition == i && memcmp(p->topic, t->topic_id, KL_UUID_LEN) == 0,
                   "topic %s: partition %d is %" PRId32 " or of another topic", t->name, i, p->partition);
        rec.u.partition = *p;
        if (!meta_ok(&rec, t->name)) return false;
    }
    return true;
}

static bool check_metadata_resp(const wire_msg_t *m)
{
    const wire_metadata_resp_t *q = &m->body.metadata_resp;
    WIRE_CHECK(q->controller_id >= -1 && q->metadata_offset >= -1, "controller %" PRId32 " / offset %" PRId64 " invalid",
               q->controller_id, q->metadata_offset);
    WIRE_CHECK(q->n_brokers >= 0 && q->n_brokers <= META_MAX_BROKERS && (q->n_brokers == 0 || q->brokers),
               "%d brokers, outside 0..%d", q->n_brokers, META_MAX_BROKERS);
    WIRE_CHECK(q->n_topics >= 0 && q->n_topics <= META_MAX_TOPICS && (q->n_topics == 0 || q->topics),
               "%d topics, outside 0..%d", q->n_topics, META_MAX_TOPICS);
    for (int i = 0; i < q->n_brokers; i++)
        if (!check_broker_info(&q->brokers[i], i ? &q->brokers[i - 1] : NULL)) return false;
    int64_t n_parts = 0;
    for (int i = 0; i < q->n_topics; i++) {
        if (!check_topic_info(&q->topics[i])) return false;
        n_parts += q->topics[i].n_partitions;
    }
    WIRE_CHECK(n_parts <= META_MAX_PARTITIONS, "%" PRId64 " partitions, over %d", n_parts, META_MAX_PARTITIONS);
    return true;
}

/* ---- Produce ---------------------------------------------------------------------------- */

static int enc_produce_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__ProduceRequest *r = (Keel__ProduceRequest *)pb;
    const wire_produce_req_t *p = &m->body.produce;
    r->topic = lend(p->topic);
    r->partition = p->partition;
    r->acks = p->acks;
    r->timeout_ms = p->timeout_ms;
    r->leader_epoch = p->leader_epoch;
    return 0;
}

static int dec_produce_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__ProduceRequest *r = (const Keel__ProduceRequest *)pb;
    wire_produce_req_t *p = &m->body.produce;
    p->partition = r->partition;
    p->acks = r->acks;
    p->timeout_ms = r->timeout_ms;
    p->leader_epoch = r->leader_epoch;
    return wire_copy_str(p->topic, sizeof p->topic, r->topic, "topic name");
}

static bool check_produce_req(const wire_msg_t *m)
{
    const wire_produce_req_t *p = &m->body.produce;
    WIRE_CHECK(p->partition >= 0, "partition %" PRId32 " negative", p->partition);
    WIRE_CHECK(p->acks == 0 || p->acks == 1 || p->acks == -1, "acks %" PRId32 " not 0, 1 or -1", p->acks);
    WIRE_CHECK(p->timeout_ms >= 0 && p->leader_epoch >= WIRE_NO_EPOCH, "timeout %" PRId32 " / leader epoch %" PRId32
               " invalid", p->timeout_ms, p->leader_epoch);
    return STR_OK(p->topic, true, "topic name") && payload_ok(m);
}

static int enc_produce_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__ProduceResponse *r = (Keel__ProduceResponse *)pb;
    r->base_offset = m->body.produce_resp.base_offset;
    r->log_start_offset = m->body.produce_resp.log_start_offset;
    r->leader_epoch = m->body.produce_resp.leader_epoch;
    return 0;
}

static int dec_produce_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__ProduceResponse *r = (const Keel__ProduceResponse *)pb;
    m->body.produce_resp.base_offset = r->base_offset;
    m->body.produce_resp.log_start_offset = r->log_start_offset;
    m->body.produce_resp.leader_epoch = r->leader_epoch;
    return 0;
}

static bool check_produce_resp(const wire_msg_t *m)
{
    const wire_produce_resp_t *p = &m->body.produce_resp;
    WIRE_CHECK(p->base_offset >= -1 && p->log_start_offset >= -1 && p->leader_epoch >= -1,
               "produce response (%" PRId64 ", %" PRId64 ", epoch %" PRId32 ") below -1", p->base_offset,
               p->log_start_offset, p->leader_epoch);
    return true;
}

/* ---- Fetch ------------------------------------------------------------------------------ */

static int enc_fetch_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__FetchRequest *r = (Keel__FetchRequest *)pb;
    const wire_fetch_req_t *f = &m->body.fetch;
    r->topic = lend(f->topic);
    r->topic_id = uuid_arg(f->topic_id);
    r->partition = f->partition;
    r->replica_id = f->replica_id;
    r->broker_epoch = f->broker_epoch;
    r->leader_epoch = f->leader_epoch;
    r->fetch_offset = f->fetch_offset;
    r->last_fetched_epoch = f->last_fetched_epoch;
    r->max_bytes = f->max_bytes;
    r->max_wait_ms = f->max_wait_ms;
    r->min_bytes = f->min_bytes;
    return 0;
}

static int dec_fetch_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__FetchRequest *r = (const Keel__FetchRequest *)pb;
    wire_fetch_req_t *f = &m->body.fetch;
    f->partition = r->partition;
    f->replica_id = r->replica_id;
    f->broker_epoch = r->broker_epoch;
    f->leader_epoch = r->leader_epoch;
    f->fetch_offset = r->fetch_offset;
    f->last_fetched_epoch = r->last_fetched_epoch;
    f->max_bytes = r->max_bytes;
    f->max_wait_ms = r->max_wait_ms;
    f->min_bytes = r->min_bytes;
    int rc = wire_copy_str(f->topic, sizeof f->topic, r->topic, "topic name");
    return rc ? rc : get_uuid(r->topic_id, f->topic_id, "topic id");
}

/* A follower names itself with its broker epoch (KIP-903) and always checks
 * the leader epoch (KIP-320); a consumer (-1) has no broker epoch. */
static bool check_fetch_req(const wire_msg_t *m)
{
    const wire_fetch_req_t *f = &m->body.fetch;
    WIRE_CHECK(f->partition >= 0 && f->fetch_offset >= 0 && f->last_fetched_epoch >= -1,
               "fetch of partition %" PRId32 " at (%" PRId64 ", epoch %" PRId32 ") invalid", f->partition,
               f->fetch_offset, f->last_fetched_epoch);
    WIRE_CHECK(f->replica_id >= -1 && f->leader_epoch >= WIRE_NO_EPOCH, "replica %" PRId32 " / leader epoch %" PRId32
               " invalid", f->replica_id, f->leader_epoch);
    WIRE_CHECK(f->replica_id < 0 ? f->broker_epoch == -1 : (f->broker_epoch >= 0 && f->leader_epoch >= 0),
               "replica %" PRId32 " with broker epoch %" PRId64 " and leader epoch %" PRId32, f->replica_id,
               f->broker_epoch, f->leader_epoch);
    WIRE_CHECK(f->max_bytes >= 0 && f->max_wait_ms >= 0 && f->min_bytes >= 0,
               "max_bytes %" PRId32 " / max_wait_ms %" PRId32 " / min_bytes %" PRId32 " negative", f->max_bytes,
               f->max_wait_ms, f->min_bytes);
    return STR_OK(f->topic, true, "topic name");
}

static int enc_fetch_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__FetchResponse *r = (Keel__FetchResponse *)pb;
    const wire_fetch_resp_t *f = &m->body.fetch_resp;
    r->high_watermark = f->high_watermark;
    r->log_start_offset = f->log_start_offset;
    r->log_end_offset = f->log_end_offset;
    r->leader_epoch = f->leader_epoch;
    r->diverging_epoch = f->diverging_epoch;
    r->diverging_end_offset = f->diverging_end_offset;
    return 0;
}

static int dec_fetch_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__FetchResponse *r = (const Keel__FetchResponse *)pb;
    wire_fetch_resp_t *f = &m->body.fetch_resp;
    f->high_watermark = r->high_watermark;
    f->log_start_offset = r->log_start_offset;
    f->log_end_offset = r->log_end_offset;
    f->leader_epoch = r->leader_epoch;
    f->diverging_epoch = r->diverging_epoch;
    f->diverging_end_offset = r->diverging_end_offset;
    return 0;
}

/* The leader's offsets: its log start and high watermark never pass its log end. */
static bool check_fetch_resp(const wire_msg_t *m)
{
    const wire_fetch_resp_t *f = &m->body.fetch_resp;
    WIRE_CHECK(f->log_start_offset >= 0 && f->high_watermark >= 0 && f->log_start_offset <= f->log_end_offset &&
                   f->high_watermark <= f->log_end_offset,
               "fetch response log [%" PRId64 ", %" PRId64 ") with high watermark %" PRId64 " invalid",
               f->log_start_offset, f->log_end_offset, f->high_watermark);
    WIRE_CHECK(f->leader_epoch >= 0, "leader epoch %" PRId32 " negative", f->leader_epoch);
    WIRE_CHECK((f->diverging_epoch == -1 && f->diverging_end_offset == -1) ||
                   (f->diverging_epoch >= 0 && f->diverging_end_offset >= 0),
               "diverging epoch %" PRId32 " / end offset %" PRId64 " invalid", f->diverging_epoch,
               f->diverging_end_offset);
    return payload_ok(m);
}

/* ---- ListOffsets / InitProducerId ------------------------------------------------------- */

static int enc_list_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__ListOffsetsRequest *r = (Keel__ListOffsetsRequest *)pb;
    r->topic = lend(m->body.list_offsets.topic);
    r->partition = m->body.list_offsets.partition;
    r->timestamp = m->body.list_offsets.timestamp;
    r->leader_epoch = m->body.list_offsets.leader_epoch;
    return 0;
}

static int dec_list_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__ListOffsetsRequest *r = (const Keel__ListOffsetsRequest *)pb;
    wire_list_offsets_req_t *l = &m->body.list_offsets;
    l->partition = r->partition;
    l->timestamp = r->timestamp;
    l->leader_epoch = r->leader_epoch;
    return wire_copy_str(l->topic, sizeof l->topic, r->topic, "topic name");
}

static bool check_list_req(const wire_msg_t *m)
{
    const wire_list_offsets_req_t *l = &m->body.list_offsets;
    WIRE_CHECK(l->partition >= 0 && l->leader_epoch >= WIRE_NO_EPOCH, "partition %" PRId32 " / leader epoch %" PRId32
               " invalid", l->partition, l->leader_epoch);
    WIRE_CHECK(l->timestamp == WIRE_OFFSET_LATEST || l->timestamp == WIRE_OFFSET_EARLIEST,
               "timestamp %" PRId64 " is neither latest (-1) nor earliest (-2)", l->timestamp);
    return STR_OK(l->topic, true, "topic name");
}

static int enc_list_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__ListOffsetsResponse *r = (Keel__ListOffsetsResponse *)pb;
    r->offset = m->body.list_offsets_resp.offset;
    r->leader_epoch = m->body.list_offsets_resp.leader_epoch;
    return 0;
}

static int dec_list_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__ListOffsetsResponse *r = (const Keel__ListOffsetsResponse *)pb;
    m->body.list_offsets_resp.offset = r->offset;
    m->body.list_offsets_resp.leader_epoch = r->leader_epoch;
    return 0;
}

static bool check_list_resp(const wire_msg_t *m)
{
    WIRE_CHECK(m->body.list_offsets_resp.offset >= 0 && m->body.list_offsets_resp.leader_epoch >= -1,
               "offset %" PRId64 " / leader epoch %" PRId32 " invalid", m->body.list_offsets_resp.offset,
               m->body.list_offsets_resp.leader_epoch);
    return true;
}

static int enc_init_pid_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__InitProducerIdResponse *r = (Keel__InitProducerIdResponse *)pb;
    r->producer_id = m->body.init_producer_id_resp.producer_id;
    r->producer_epoch = m->body.init_producer_id_resp.producer_epoch;
    return 0;
}

static int dec_init_pid_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__InitProducerIdResponse *r = (const Keel__InitProducerIdResponse *)pb;
    if (r->producer_epoch < 0 || r->producer_epoch > INT16_MAX)
        return wire_fail(KL_EPROTO, "producer epoch %" PRId32 " outside 0..%d", r->producer_epoch, INT16_MAX);
    m->body.init_producer_id_resp.producer_id = r->producer_id;
    m->body.init_producer_id_resp.producer_epoch = (int16_t)r->producer_epoch;
    return 0;
}

static bool check_init_pid_resp(const wire_msg_t *m)
{
    WIRE_CHECK(m->body.init_producer_id_resp.producer_id >= 0 && m->body.init_producer_id_resp.producer_epoch >= 0,
               "producer id %" PRId64 " epoch %d negative", m->body.init_producer_id_resp.producer_id,
               m->body.init_producer_id_resp.producer_epoch);
    return true;
}

/* ---- the table ------------------------------------------------------------------------ */

#define AT(api) [(api) - WIRE_FIRST_DATA_API]

const wire_api_ops_t wire_data_apis[WIRE_API_MAX_ - WIRE_FIRST_DATA_API] = {
    AT(WIRE_API_BROKER_REGISTRATION) = {"BrokerRegistration",
        WIRE_BODY(BROKER_REGISTRATION_REQUEST, broker_registration_request, 0, enc_registration_req,
                  dec_registration_req, check_registration_req, NULL),
        WIRE_BODY(BROKER_REGISTRATION_RESPONSE, broker_registration_response, 0, enc_registration_resp,
                  dec_registration_resp, check_registration_resp, NULL)},
    AT(WIRE_API_BROKER_HEARTBEAT) = {"BrokerHeartbeat",
        WIRE_BODY(BROKER_HEARTBEAT_REQUEST, broker_heartbeat_request, 0, enc_heartbeat_req, dec_heartbeat_req,
                  check_heartbeat_req, NULL),
        WIRE_BODY(BROKER_HEARTBEAT_RESPONSE, broker_heartbeat_response, 0, enc_heartbeat_resp, dec_heartbeat_resp,
                  NULL, NULL)},
    AT(WIRE_API_ALTER_PARTITION) = {"AlterPartition",
        WIRE_BODY(ALTER_PARTITION_REQUEST, alter_partition_request, 0, enc_alter_req, dec_alter_req,
                  check_alter_req, NULL),
        WIRE_BODY(ALTER_PARTITION_RESPONSE, alter_partition_response, 0, enc_alter_resp, dec_alter_resp,
                  check_alter_resp, NULL)},
    AT(WIRE_API_ALLOCATE_PRODUCER_IDS) = {"AllocateProducerIds",
        WIRE_BODY(ALLOCATE_PRODUCER_IDS_REQUEST, allocate_producer_ids_request, 0, enc_pids_req, dec_pids_req,
                  check_pids_req, NULL),
        WIRE_BODY(ALLOCATE_PRODUCER_IDS_RESPONSE, allocate_producer_ids_response, 0, enc_pids_resp, dec_pids_resp,
                  check_pids_resp, NULL)},
    AT(WIRE_API_CREATE_TOPIC) = {"CreateTopic",
        WIRE_BODY(CREATE_TOPIC_REQUEST, create_topic_request, 0, enc_create_req, dec_create_req, check_create_req,
                  NULL),
        WIRE_BODY(CREATE_TOPIC_RESPONSE, create_topic_response, 0, enc_create_resp, dec_create_resp,
                  check_create_resp, NULL)},
    AT(WIRE_API_DELETE_TOPIC) = {"DeleteTopic",
        WIRE_BODY(DELETE_TOPIC_REQUEST, delete_topic_request, 0, enc_delete_req, dec_delete_req, check_delete_req,
                  NULL),
        WIRE_BODY(DELETE_TOPIC_RESPONSE, delete_topic_response, 0, enc_delete_resp, dec_delete_resp,
                  check_delete_resp, NULL)},
    AT(WIRE_API_ELECT_LEADERS) = {"ElectLeaders",
        WIRE_BODY(ELECT_LEADERS_REQUEST, elect_leaders_request, 0, enc_elect_req, dec_elect_req, check_elect_req,
                  NULL),
        WIRE_BODY(ELECT_LEADERS_RESPONSE, elect_leaders_response, 0, enc_elect_resp, dec_elect_resp,
                  check_elect_resp, NULL)},
    AT(WIRE_API_METADATA) = {"Metadata",
        WIRE_BODY(METADATA_REQUEST, metadata_request, 0, enc_metadata_req, dec_metadata_req, check_metadata_req,
                  NULL),
        WIRE_BODY(METADATA_RESPONSE, metadata_response, 0, enc_metadata_resp, dec_metadata_resp,
                  check_metadata_resp, NULL)},
    AT(WIRE_API_PRODUCE) = {"Produce",
        WIRE_BODY(PRODUCE_REQUEST, produce_request, 0, enc_produce_req, dec_produce_req, check_produce_req, put_raw),
        WIRE_BODY(PRODUCE_RESPONSE, produce_response, 0, enc_produce_resp, dec_produce_resp, check_produce_resp,
                  NULL)},
    AT(WIRE_API_FETCH) = {"Fetch",
        WIRE_BODY(FETCH_REQUEST, fetch_request, 0, enc_fetch_req, dec_fetch_req, check_fetch_req, NULL),
        /* KL_ERANGE carries the leader's offsets: a follower below its log start restarts there */
        WIRE_BODY_ON_ERROR(FETCH_RESPONSE, fetch_response, enc_fetch_resp, dec_fetch_resp, check_fetch_resp,
                           put_raw)},
    AT(WIRE_API_LIST_OFFSETS) = {"ListOffsets",
        WIRE_BODY(LIST_OFFSETS_REQUEST, list_offsets_request, 0, enc_list_req, dec_list_req, check_list_req, NULL),
        WIRE_BODY(LIST_OFFSETS_RESPONSE, list_offsets_response, 0, enc_list_resp, dec_list_resp, check_list_resp,
                  NULL)},
    AT(WIRE_API_INIT_PRODUCER_ID) = {"InitProducerId",
        WIRE_BODY(INIT_PRODUCER_ID_REQUEST, init_producer_id_request, 0, NULL, NULL, NULL, NULL),
        WIRE_BODY(INIT_PRODUCER_ID_RESPONSE, init_producer_id_response, 0, enc_init_pid_resp, dec_init_pid_resp,
                  check_init_pid_resp, NULL)},
};
