/* test_wire_data.c — codecs of the broker, admin and data-plane APIs: round trips, payload pass-through, refusal of malformed input. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel.pb-c.h"
#include "keel/err.h"
#include "keel/rng.h"
#include "keel/wire.h"
#include "unit/kl_check.h"

#define GARBAGE_FRAMES 3000
#define N_NEW_APIS (WIRE_API_MAX_ - WIRE_API_BROKER_REGISTRATION)

static const uint8_t UUID_A[KL_UUID_LEN] = {0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t UUID_B[KL_UUID_LEN] = {0xb2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
static const uint8_t PAYLOAD[] = {0, 1, 2, 'b', 'a', 't', 'c', 'h', 0, 0xff}; /* opaque to the codec */

/* ---- helpers ------------------------------------------------------------------------- */

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(c);
    if (n) memcpy(c, p, n);
    return c;
}

static int decode_copy(const uint8_t *p, size_t n, wire_msg_t **out)
{
    return wire_decode(dup_bytes(p, n), n, out);
}

static void encode_ok(const wire_msg_t *m, kl_buf_t *b)
{
    kl_buf_init(b, 0);
    int rc = wire_encode(m, b);
    ck_assert_msg(rc == 0, "encode %s: %s (%s)", wire_api_name(m->api), kl_errname(rc), wire_last_error());
}

static wire_msg_t *round_trip(const wire_msg_t *in)
{
    kl_buf_t b;
    encode_ok(in, &b);
    size_t flen = 0;
    ck_assert_int_eq(wire_frame_split(b.data, b.len, WIRE_DEFAULT_MAX_FRAME, &flen), 0);
    ck_assert_uint_eq(flen, b.len);
    wire_msg_t *out = NULL;
    int rc = decode_copy(b.data, b.len, &out);
    ck_assert_msg(rc == 0, "decode %s: %s (%s)", wire_api_name(in->api), kl_errname(rc), wire_last_error());
    kl_buf_free(&b);
    ck_assert_uint_eq(out->api, in->api);
    ck_assert(out->response == in->response);
    ck_assert_uint_eq(out->correlation_id, in->correlation_id);
    ck_assert_int_eq(out->error, in->error);
    ck_assert_uint_eq(out->payload_len, in->payload_len);
    if (in->payload_len) ck_assert_mem_eq(out->payload, in->payload, in->payload_len);
    return out;
}

/* The encoder refuses m with KL_EINVAL, leaving the buffer as it was. */
static void encode_refused(const wire_msg_t *m, const char *reason)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append(&b, "keep", 4), 0);
    int rc = wire_encode(m, &b);
    ck_assert_msg(rc == KL_EINVAL, "%s: encode gave %s", wire_api_name(m->api), kl_errname(rc));
    ck_assert_uint_eq(b.len, 4);
    if (reason) ck_assert_msg(strstr(wire_last_error(), reason), "reason \"%s\" lacks \"%s\"", wire_last_error(), reason);
    kl_buf_free(&b);
}

/* A frame around a hand-built header (to forge what the encoder refuses to make). */
static int decode_forged(const Keel__Header *h, const void *payload, size_t plen)
{
    size_t hlen = keel__header__get_packed_size(h);
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_reserve(&b, WIRE_MIN_FRAME + hlen + plen), 0);
    kl_put_be32(b.data, (uint32_t)(WIRE_LEN_PREFIX + hlen + plen));
    kl_put_be32(b.data + WIRE_LEN_PREFIX, (uint32_t)hlen);
    keel__header__pack(h, b.data + WIRE_MIN_FRAME);
    b.len = WIRE_MIN_FRAME + hlen;
    if (plen) ck_assert_int_eq(kl_buf_append(&b, payload, plen), 0);
    wire_msg_t *m = NULL;
    int rc = decode_copy(b.data, b.len, &m);
    kl_buf_free(&b);
    wire_msg_free(m);
    return rc;
}

static Keel__Header forged(uint32_t api, bool response, Keel__Header__BodyCase c, void *body)
{
    Keel__Header h = KEEL__HEADER__INIT;
    h.api = api;
    h.response = response;
    h.leader_id = -1;
    h.body_case = c;
    h.broker_registration_request = body; /* every oneof member is a message pointer */
    return h;
}

#define REFUSED(h, reason)                                                                              \
    do {                                                                                                \
        ck_assert_int_eq(decode_forged(&(h), NULL, 0), KL_EPROTO);                                      \
        ck_assert_msg(strstr(wire_last_error(), reason), "reason \"%s\" lacks \"%s\"", wire_last_error(), \
                      reason);                                                                          \
    } while (0)

/* ---- samples: one representative message per API and direction --------------------- */

static meta_listener_t listeners[META_MAX_LISTENERS];

static void fill(char *dst, size_t cap, char c)
{
    memset(dst, c, cap - 1);
    dst[cap - 1] = '\0';
}

/* Every field set, at the edges where the API has one (max arrays and
 * strings, -1 "none" values, the extremes of the numbers). */
static void sample(uint32_t api, bool response, wire_msg_t *m)
{
    wire_msg_init(m, api, response, 1000 + api);
    for (int i = 0; i < META_MAX_LISTENERS; i++) {
        char name[16], host[META_MAX_HOST_LEN + 1];
        snprintf(name, sizeof name, "L%d", i);
        if (i == 0) fill(host, sizeof host, 'h');
        else snprintf(host, sizeof host, "broker-%d.example", i);
        ck_assert_int_eq(meta_listener_set(&listeners[i], name, host, i == 0 ? 65535 : 9092 + i), 0);
    }
    switch (response ? -(int)api : (int)api) {
    case WIRE_API_BROKER_REGISTRATION: {
        wire_broker_registration_req_t *r = &m->body.broker_registration;
        r->broker_id = INT32_MAX;
        memcpy(r->incarnation, UUID_A, KL_UUID_LEN);
        memcpy(r->listeners, listeners, sizeof listeners);
        r->n_listeners = META_MAX_LISTENERS;
        fill(r->rack, sizeof r->rack, 'r');
        break;
    }
    case -WIRE_API_BROKER_REGISTRATION:
        m->body.broker_registration_resp.broker_epoch = INT64_MAX;
        break;
    case WIRE_API_BROKER_HEARTBEAT:
        m->body.broker_heartbeat.broker_id = 3;
        m->body.broker_heartbeat.broker_epoch = 42;
        m->body.broker_heartbeat.want_shutdown = true; /* metadata_offset stays -1 */
        break;
    case -WIRE_API_BROKER_HEARTBEAT:
        m->body.broker_heartbeat_resp.shutting_down = true;
        m->body.broker_heartbeat_resp.shutdown_now = true;
        break;
    case WIRE_API_ALTER_PARTITION: {
        wire_alter_partition_req_t *a = &m->body.alter_partition;
        a->broker_id = 7;
        a->broker_epoch = 1234567890123LL;
        memcpy(a->topic_id, UUID_B, KL_UUID_LEN);
        a->partition = META_MAX_TOPIC_PARTITIONS - 1;
        a->leader_epoch = INT32_MAX;
        a->partition_epoch = 0;
        for (int i = 0; i < META_MAX_REPLICAS; i++) a->isr[i] = 100 - i;
        a->n_isr = META_MAX_REPLICAS;
        break;
    }
    case -WIRE_API_ALTER_PARTITION:
        m->body.alter_partition_resp.leader = META_NO_LEADER;
        m->body.alter_partition_resp.leader_epoch = 4;
        m->body.alter_partition_resp.partition_epoch = 9;
        m->body.alter_partition_resp.isr[0] = 5;
        m->body.alter_partition_resp.n_isr = 1;
        break;
    case WIRE_API_ALLOCATE_PRODUCER_IDS:
        m->body.allocate_producer_ids.broker_id = 0;
        m->body.allocate_producer_ids.broker_epoch = 0;
        break;
    case -WIRE_API_ALLOCATE_PRODUCER_IDS:
        m->body.allocate_producer_ids_resp.first_id = INT64_MAX - META_MAX_PRODUCER_ID_BLOCK;
        m->body.allocate_producer_ids_resp.size = META_MAX_PRODUCER_ID_BLOCK;
        break;
    case WIRE_API_CREATE_TOPIC: {
        wire_create_topic_req_t *c = &m->body.create_topic;
        fill(c->name, sizeof c->name, 'n'); /* partitions and replication factor stay -1 */
        for (int i = 0; i < META_MAX_CONFIGS; i++) {
            fill(c->configs[i].key, sizeof c->configs[i].key, (char)('a' + i));
            if (i) fill(c->configs[i].value, sizeof c->configs[i].value, (char)('A' + i)); /* configs[0]: "" */
        }
        c->n_configs = META_MAX_CONFIGS;
        break;
    }
    case -WIRE_API_CREATE_TOPIC:
        memcpy(m->body.create_topic_resp.topic_id, UUID_A, KL_UUID_LEN);
        m->body.create_topic_resp.partitions = META_MAX_TOPIC_PARTITIONS;
        m->body.create_topic_resp.replication_factor = META_MAX_REPLICAS;
        break;
    case WIRE_API_DELETE_TOPIC:
        strcpy(m->body.delete_topic.name, "orders.v2");
        break;
    case -WIRE_API_DELETE_TOPIC:
        memcpy(m->body.delete_topic_resp.topic_id, UUID_B, KL_UUID_LEN);
        break;
    case WIRE_API_ELECT_LEADERS:
        m->body.elect_leaders.preferred = true; /* topic "" = all */
        break;
    case -WIRE_API_ELECT_LEADERS:
        m->body.elect_leaders_resp.partitions_elected = 12;
        fill(m->body.elect_leaders_resp.message, sizeof m->body.elect_leaders_resp.message, 'm');
        break;
    case WIRE_API_METADATA:
    case -WIRE_API_METADATA:
        break; /* arrays: their own tests */
    case WIRE_API_PRODUCE:
        strcpy(m->body.produce.topic, "orders");
        m->body.produce.partition = 3;
        m->body.produce.acks = -1;
        m->body.produce.timeout_ms = 30000; /* leader_epoch stays WIRE_NO_EPOCH */
        m->payload = PAYLOAD;
        m->payload_len = sizeof PAYLOAD;
        break;
    case -WIRE_API_PRODUCE:
        m->body.produce_resp.base_offset = INT64_MAX - 1;
        m->body.produce_resp.log_start_offset = -1;
        m->body.produce_resp.leader_epoch = 5;
        break;
    case WIRE_API_FETCH: { /* a follower's */
        wire_fetch_req_t *f = &m->body.fetch;
        strcpy(f->topic, "t");
        memcpy(f->topic_id, UUID_A, KL_UUID_LEN);
        f->partition = 2;
        f->replica_id = 4;
        f->broker_epoch = 77;
        f->leader_epoch = 6;
        f->fetch_offset = 1LL << 40;
        f->last_fetched_epoch = 5;
        f->max_bytes = INT32_MAX;
        f->max_wait_ms = 500;
        f->min_bytes = 1;
        break;
    }
    case -WIRE_API_FETCH: {
        wire_fetch_resp_t *f = &m->body.fetch_resp;
        f->high_watermark = 10;
        f->log_start_offset = 3;
        f->log_end_offset = 12;
        f->leader_epoch = 8;
        f->diverging_epoch = 6;
        f->diverging_end_offset = 9;
        m->payload = PAYLOAD;
        m->payload_len = sizeof PAYLOAD;
        break;
    }
    case WIRE_API_LIST_OFFSETS:
        strcpy(m->body.list_offsets.topic, "t");
        m->body.list_offsets.partition = 1;
        m->body.list_offsets.timestamp = WIRE_OFFSET_EARLIEST;
        m->body.list_offsets.leader_epoch = 2;
        break;
    case -WIRE_API_LIST_OFFSETS:
        m->body.list_offsets_resp.offset = 0;
        m->body.list_offsets_resp.leader_epoch = -1;
        break;
    case WIRE_API_INIT_PRODUCER_ID:
        break;
    case -WIRE_API_INIT_PRODUCER_ID:
        m->body.init_producer_id_resp.producer_id = INT64_MAX;
        m->body.init_producer_id_resp.producer_epoch = INT16_MAX;
        break;
    default:
        ck_abort_msg("no sample for api %u", api);
    }
}

/* ---- round trips ---------------------------------------------------------------------- */

/* The plain-struct bodies (all but Metadata) come back byte for byte: both
 * sides start from zeroed memory and every field travels. */
START_TEST(every_new_request_and_response_round_trips_field_by_field)
{
    for (uint32_t api = WIRE_API_BROKER_REGISTRATION; api < WIRE_API_MAX_; api++) {
        if (api == WIRE_API_METADATA) continue;
        for (int response = 0; response < 2; response++) {
            wire_msg_t m;
            sample(api, response, &m);
            wire_msg_t *out = round_trip(&m);
            ck_assert_msg(memcmp(&out->body, &m.body, sizeof m.body) == 0, "%s %s body differs", wire_api_name(api),
                          response ? "response" : "request");
            wire_msg_free(out);
        }
    }
}
END_TEST

START_TEST(new_apis_have_names_and_are_listed_by_api_versions)
{
    wire_api_versions_resp_t v;
    wire_api_versions_local(&v);
    for (uint32_t api = WIRE_API_BROKER_REGISTRATION; api < WIRE_API_MAX_; api++) {
        ck_assert(v.supported[api]);
        ck_assert_str_ne(wire_api_name(api), "unknown");
        ck_assert_uint_eq(wire_api_for_raft((raft_msg_type_t)0), 0);
    }
    ck_assert_str_eq(wire_api_name(WIRE_API_METADATA), "Metadata");
    ck_assert_str_eq(wire_api_name(WIRE_API_MAX_), "unknown");
}
END_TEST

START_TEST(msg_init_starts_none_fields_at_minus_one)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_FETCH, false, 1);
    ck_assert_int_eq(m.body.fetch.replica_id, -1);
    ck_assert_int_eq(m.body.fetch.broker_epoch, -1);
    ck_assert_int_eq(m.body.fetch.leader_epoch, WIRE_NO_EPOCH);
    ck_assert_int_eq(m.body.fetch.last_fetched_epoch, -1);
    wire_msg_init(&m, WIRE_API_FETCH, true, 1);
    ck_assert_int_eq(m.body.fetch_resp.diverging_epoch, -1);
    ck_assert_int_eq(m.body.fetch_resp.diverging_end_offset, -1);
    wire_msg_init(&m, WIRE_API_METADATA, true, 1);
    ck_assert_int_eq(m.body.metadata_resp.controller_id, -1);
    ck_assert_int_eq(m.body.metadata_resp.metadata_offset, -1);
    wire_msg_init(&m, WIRE_API_CREATE_TOPIC, false, 1);
    ck_assert_int_eq(m.body.create_topic.partitions, -1);
    ck_assert_int_eq(m.body.create_topic.replication_factor, -1);
    wire_msg_init(&m, WIRE_API_PRODUCE, false, 1);
    ck_assert_int_eq(m.body.produce.leader_epoch, WIRE_NO_EPOCH);
    wire_msg_init(&m, WIRE_API_LIST_OFFSETS, false, 1);
    ck_assert_int_eq(m.body.list_offsets.timestamp, WIRE_OFFSET_LATEST);
    wire_msg_init(&m, WIRE_API_BROKER_HEARTBEAT, false, 1);
    ck_assert_int_eq(m.body.broker_heartbeat.metadata_offset, -1);

    /* a consumer fetch straight from init is valid once it names its partition */
    wire_msg_init(&m, WIRE_API_FETCH, false, 1);
    strcpy(m.body.fetch.topic, "t");
    wire_msg_t *out = round_trip(&m);
    ck_assert_int_eq(out->body.fetch.replica_id, -1);
    ck_assert_int_eq(out->body.fetch.broker_epoch, -1);
    wire_msg_free(out);
}
END_TEST

START_TEST(produce_and_fetch_payloads_pass_through_untouched)
{
    static uint8_t big[200000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 31 + 7);
    wire_msg_t m;
    sample(WIRE_API_PRODUCE, false, &m);
    m.payload = big;
    m.payload_len = sizeof big;
    wire_msg_t *out = round_trip(&m); /* compares the bytes */
    ck_assert_ptr_ne(out->payload, big);
    wire_msg_free(out);

    sample(WIRE_API_FETCH, true, &m); /* an empty fetch answer has no payload */
    m.payload = NULL;
    m.payload_len = 0;
    out = round_trip(&m);
    ck_assert_ptr_null(out->payload);
    wire_msg_free(out);

    sample(WIRE_API_FETCH, false, &m); /* a payload where none belongs */
    m.payload = PAYLOAD;
    m.payload_len = sizeof PAYLOAD;
    encode_refused(&m, "carries no payload");
    sample(WIRE_API_PRODUCE, false, &m); /* a length without bytes */
    m.payload = NULL;
    encode_refused(&m, "payload missing");
}
END_TEST

START_TEST(error_responses_of_every_new_api_are_header_only)
{
    for (uint32_t api = WIRE_API_BROKER_REGISTRATION; api < WIRE_API_MAX_; api++) {
        wire_msg_t m;
        sample(api, true, &m); /* a body (and payload) that must not travel */
        m.error = api == WIRE_API_PRODUCE ? KL_ENOTLEADER : KL_ENOTCONTROLLER;
        strcpy(m.error_message, "ask elsewhere");
        m.leader_id = 2;
        strcpy(m.leader_host, "node-2");
        m.leader_port = 9093;
        kl_buf_t b;
        encode_ok(&m, &b);
        Keel__Header *h = keel__header__unpack(NULL, kl_get_be32(b.data + WIRE_LEN_PREFIX), b.data + WIRE_MIN_FRAME);
        ck_assert_ptr_nonnull(h);
        ck_assert_int_eq(h->body_case, KEEL__HEADER__BODY__NOT_SET);
        keel__header__free_unpacked(h, NULL);
        wire_msg_t *out = NULL;
        ck_assert_int_eq(decode_copy(b.data, b.len, &out), 0);
        ck_assert_int_eq(out->error, m.error);
        ck_assert_str_eq(out->error_message, "ask elsewhere");
        ck_assert_int_eq(out->leader_id, 2);
        ck_assert_str_eq(out->leader_host, "node-2");
        ck_assert_int_eq(out->leader_port, 9093);
        ck_assert_uint_eq(out->payload_len, 0);
        ck_assert(!out->error_body);
        wire_msg_free(out);
        kl_buf_free(&b);
    }
}
END_TEST

/* KL_ERANGE from a leader: where its log starts and ends, without records. */
static void erange_sample(wire_msg_t *m)
{
    sample(WIRE_API_FETCH, true, m);
    m->error = KL_ERANGE;
    strcpy(m->error_message, "offset out of range");
    m->error_body = true;
    m->body.fetch_resp.diverging_epoch = -1;
    m->body.fetch_resp.diverging_end_offset = -1;
    m->payload = NULL;
    m->payload_len = 0;
}

START_TEST(fetch_error_response_carries_the_leaders_offsets_when_asked)
{
    wire_msg_t m;
    erange_sample(&m);
    kl_buf_t b;
    encode_ok(&m, &b);
    Keel__Header *h = keel__header__unpack(NULL, kl_get_be32(b.data + WIRE_LEN_PREFIX), b.data + WIRE_MIN_FRAME);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(h->body_case, KEEL__HEADER__BODY_FETCH_RESPONSE);
    keel__header__free_unpacked(h, NULL);
    kl_buf_free(&b);
    wire_msg_t *out = round_trip(&m);
    ck_assert(out->error_body);
    ck_assert_str_eq(out->error_message, "offset out of range");
    ck_assert_int_eq(out->body.fetch_resp.log_start_offset, 3);
    ck_assert_int_eq(out->body.fetch_resp.log_end_offset, 12);
    ck_assert_int_eq(out->body.fetch_resp.high_watermark, 10);
    ck_assert_int_eq(out->body.fetch_resp.leader_epoch, 8);
    ck_assert_int_eq(out->body.fetch_resp.diverging_epoch, -1);
    ck_assert_mem_eq(&out->body, &m.body, sizeof m.body);
    wire_msg_free(out);

    m.error_body = false; /* optional: without it the answer is the header alone, as before */
    out = round_trip(&m);
    ck_assert(!out->error_body);
    ck_assert_int_eq(out->body.fetch_resp.log_end_offset, 0);
    wire_msg_free(out);
}
END_TEST

START_TEST(error_bodies_are_refused_where_the_api_has_none_with_a_payload_or_out_of_range)
{
    wire_msg_t m;
    sample(WIRE_API_PRODUCE, true, &m); /* only Fetch answers carry a body with an error */
    m.error = KL_ENOTLEADER;
    m.error_body = true;
    encode_refused(&m, "error response carries no body");
    erange_sample(&m); /* never records with it */
    m.payload = PAYLOAD;
    m.payload_len = sizeof PAYLOAD;
    encode_refused(&m, "carries no payload");
    erange_sample(&m);
    m.body.fetch_resp.log_start_offset = 13; /* past the log end */
    encode_refused(&m, "fetch response log");
    erange_sample(&m);
    m.error = 0; /* a body flagged as an error's without an error */
    encode_refused(&m, "without an error");

    Keel__ProduceResponse produce = KEEL__PRODUCE_RESPONSE__INIT;
    Keel__Header h = forged(WIRE_API_PRODUCE, true, KEEL__HEADER__BODY_PRODUCE_RESPONSE, &produce);
    h.error = KL_ENOTLEADER;
    REFUSED(h, "error response carries a body");
    Keel__FetchResponse fetch = KEEL__FETCH_RESPONSE__INIT;
    fetch.log_end_offset = 5;
    fetch.diverging_epoch = fetch.diverging_end_offset = -1;
    h = forged(WIRE_API_FETCH, true, KEEL__HEADER__BODY_FETCH_RESPONSE, &fetch);
    h.error = KL_ERANGE;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0); /* the control case decodes */
    ck_assert_int_eq(decode_forged(&h, PAYLOAD, sizeof PAYLOAD), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(wire_last_error(), "error response carries a payload"));
    h.body_case = KEEL__HEADER__BODY_PRODUCE_RESPONSE; /* another API's body */
    h.produce_response = &produce;
    REFUSED(h, "error response with body");
    h = forged(WIRE_API_FETCH, true, KEEL__HEADER__BODY_FETCH_RESPONSE, &fetch);
    h.error = KL_ERANGE;
    fetch.log_start_offset = 6; /* past the log end */
    REFUSED(h, "fetch response log");
}
END_TEST

START_TEST(metadata_request_round_trips_every_topic_or_names_up_to_the_bound)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_METADATA, false, 9);
    wire_msg_t *out = round_trip(&m); /* no names: every topic */
    ck_assert_int_eq(out->body.metadata.n_topics, 0);
    wire_msg_free(out);

    static char names[WIRE_MAX_METADATA_TOPICS][META_MAX_TOPIC_NAME_LEN + 1];
    for (int i = 0; i < WIRE_MAX_METADATA_TOPICS; i++) {
        size_t len = i % 2 ? 12 : META_MAX_TOPIC_NAME_LEN; /* odd ones short, even ones the longest name */
        memset(names[i], 'x', len);
        names[i][len] = '\0';
        char num[16];
        memcpy(names[i], num, (size_t)snprintf(num, sizeof num, "%d", i));
    }
    m.body.metadata.topics = names;
    m.body.metadata.n_topics = WIRE_MAX_METADATA_TOPICS;
    out = round_trip(&m);
    ck_assert_int_eq(out->body.metadata.n_topics, WIRE_MAX_METADATA_TOPICS);
    for (int i = 0; i < WIRE_MAX_METADATA_TOPICS; i++) ck_assert_str_eq(out->body.metadata.topics[i], names[i]);
    wire_msg_free(out);

    m.body.metadata.n_topics = WIRE_MAX_METADATA_TOPICS + 1;
    encode_refused(&m, "topics asked for");
    m.body.metadata.n_topics = 2;
    names[1][0] = '\0';
    encode_refused(&m, "topic name empty");
    memset(names[1], 'y', sizeof names[1]);
    encode_refused(&m, "not NUL-terminated");
}
END_TEST

/* Two brokers, a topic with configs and partitions, a topic that does not exist. */
static wire_broker_info_t md_brokers[2];
static meta_config_t md_configs[META_MAX_CONFIGS];
static meta_partition_t md_parts[3];
static wire_topic_info_t md_topics[2];

static void metadata_sample(wire_msg_t *m)
{
    wire_msg_init(m, WIRE_API_METADATA, true, 77);
    memset(md_brokers, 0, sizeof md_brokers);
    memset(md_parts, 0, sizeof md_parts);
    memset(md_topics, 0, sizeof md_topics);
    for (int i = 0; i < 2; i++) {
        wire_broker_info_t *b = &md_brokers[i];
        b->id = i ? INT32_MAX : 0;
        b->epoch = i ? INT64_MAX : 0;
        b->state = i ? META_BROKER_SHUTTING_DOWN : META_BROKER_ACTIVE;
        if (i) fill(b->rack, sizeof b->rack, 'r');
        b->n_listeners = i ? META_MAX_LISTENERS : 1;
        ck_assert_int_eq(meta_listener_set(&b->listeners[0], "PLAINTEXT", "localhost", 9092), 0);
        for (int j = 1; j < b->n_listeners; j++) {
            char name[16];
            snprintf(name, sizeof name, "L%d", j);
            ck_assert_int_eq(meta_listener_set(&b->listeners[j], name, "10.0.0.1", 10000 + j), 0);
        }
    }
    for (int i = 0; i < META_MAX_CONFIGS; i++) {
        snprintf(md_configs[i].key, sizeof md_configs[i].key, "key.%02d", i);
        snprintf(md_configs[i].value, sizeof md_configs[i].value, "%d", i * 1000);
    }
    for (int i = 0; i < 3; i++) {
        meta_partition_t *p = &md_parts[i];
        memcpy(p->topic, UUID_A, KL_UUID_LEN);
        p->partition = i;
        p->replicas[0] = 0;
        p->replicas[1] = INT32_MAX;
        p->n_replicas = 2;
        p->isr[0] = i == 1 ? INT32_MAX : 0;
        p->n_isr = 1;
        p->leader = i == 2 ? META_NO_LEADER : p->isr[0];
        p->leader_epoch = i;
        p->partition_epoch = 10 + i;
    }
    strcpy(md_topics[0].name, "orders");
    memcpy(md_topics[0].topic_id, UUID_A, KL_UUID_LEN);
    md_topics[0].configs = md_configs;
    md_topics[0].n_configs = META_MAX_CONFIGS;
    md_topics[0].partitions = md_parts;
    md_topics[0].n_partitions = 3;
    strcpy(md_topics[1].name, "no such topic!"); /* a requested name need not even be valid */
    md_topics[1].error = KL_EUNKNOWNPARTITION;
    wire_metadata_resp_t *r = &m->body.metadata_resp;
    r->controller_id = 3;
    r->metadata_offset = 12345;
    r->brokers = md_brokers;
    r->n_brokers = 2;
    r->topics = md_topics;
    r->n_topics = 2;
}

START_TEST(metadata_response_round_trips_brokers_topics_configs_and_partitions)
{
    wire_msg_t m;
    metadata_sample(&m);
    wire_msg_t *out = round_trip(&m);
    const wire_metadata_resp_t *r = &out->body.metadata_resp;
    ck_assert_int_eq(r->controller_id, 3);
    ck_assert_int_eq(r->metadata_offset, 12345);
    ck_assert_int_eq(r->n_brokers, 2);
    for (int i = 0; i < 2; i++) ck_assert_mem_eq(&r->brokers[i], &md_brokers[i], sizeof md_brokers[i]);
    ck_assert_int_eq(r->n_topics, 2);
    const wire_topic_info_t *t = &r->topics[0];
    ck_assert_str_eq(t->name, "orders");
    ck_assert_mem_eq(t->topic_id, UUID_A, KL_UUID_LEN);
    ck_assert_int_eq(t->error, 0);
    ck_assert_int_eq(t->n_configs, META_MAX_CONFIGS);
    ck_assert_mem_eq(t->configs, md_configs, sizeof md_configs);
    ck_assert_int_eq(t->n_partitions, 3);
    for (int i = 0; i < 3; i++) ck_assert_mem_eq(&t->partitions[i], &md_parts[i], sizeof md_parts[i]);
    t = &r->topics[1];
    ck_assert_str_eq(t->name, "no such topic!");
    ck_assert_int_eq(t->error, KL_EUNKNOWNPARTITION);
    ck_assert_int_eq(t->n_configs + t->n_partitions, 0);
    wire_msg_free(out);

    wire_msg_init(&m, WIRE_API_METADATA, true, 78); /* an empty cluster, nothing known */
    out = round_trip(&m);
    ck_assert_int_eq(out->body.metadata_resp.controller_id, -1);
    ck_assert_int_eq(out->body.metadata_resp.metadata_offset, -1);
    ck_assert_int_eq(out->body.metadata_resp.n_brokers + out->body.metadata_resp.n_topics, 0);
    wire_msg_free(out);
}
END_TEST

START_TEST(metadata_response_at_the_per_topic_partition_bound_round_trips)
{
    meta_partition_t *parts = calloc(META_MAX_TOPIC_PARTITIONS, sizeof *parts);
    ck_assert_ptr_nonnull(parts);
    for (int i = 0; i < META_MAX_TOPIC_PARTITIONS; i++) {
        memcpy(parts[i].topic, UUID_B, KL_UUID_LEN);
        parts[i].partition = i;
        parts[i].replicas[0] = parts[i].isr[0] = parts[i].leader = i % 5;
        parts[i].n_replicas = parts[i].n_isr = 1;
    }
    wire_topic_info_t t = {.name = "wide", .partitions = parts, .n_partitions = META_MAX_TOPIC_PARTITIONS};
    memcpy(t.topic_id, UUID_B, KL_UUID_LEN);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_METADATA, true, 1);
    m.body.metadata_resp.topics = &t;
    m.body.metadata_resp.n_topics = 1;
    wire_msg_t *out = round_trip(&m);
    ck_assert_int_eq(out->body.metadata_resp.topics[0].n_partitions, META_MAX_TOPIC_PARTITIONS);
    ck_assert_mem_eq(out->body.metadata_resp.topics[0].partitions, parts, META_MAX_TOPIC_PARTITIONS * sizeof *parts);
    wire_msg_free(out);

    t.n_partitions = META_MAX_TOPIC_PARTITIONS + 1; /* one over: refused before reading the array */
    encode_refused(&m, "partitions");
    free(parts);
}
END_TEST

/* ---- refusals --------------------------------------------------------------------------- */

START_TEST(encoder_refuses_out_of_range_values_of_every_new_api)
{
    wire_msg_t m;
#define BAD(api, resp, stmt, reason) \
    do {                             \
        sample(api, resp, &m);       \
        stmt;                        \
        encode_refused(&m, reason);  \
    } while (0)
    BAD(WIRE_API_BROKER_REGISTRATION, false, m.body.broker_registration.n_listeners = 0, "listeners");
    BAD(WIRE_API_BROKER_REGISTRATION, false, memset(m.body.broker_registration.incarnation, 0, KL_UUID_LEN),
        "incarnation");
    BAD(WIRE_API_BROKER_REGISTRATION, false, m.body.broker_registration.listeners[1].port = 0, "port");
    BAD(WIRE_API_BROKER_REGISTRATION, false, strcpy(m.body.broker_registration.listeners[2].name, "L0"), "twice");
    BAD(WIRE_API_BROKER_REGISTRATION, false, memset(m.body.broker_registration.rack, 'r', META_MAX_RACK_LEN + 1),
        "rack");
    BAD(WIRE_API_BROKER_REGISTRATION, true, m.body.broker_registration_resp.broker_epoch = -1, "epoch");
    BAD(WIRE_API_BROKER_HEARTBEAT, false, m.body.broker_heartbeat.metadata_offset = -2, "heartbeat");
    BAD(WIRE_API_BROKER_HEARTBEAT, false, m.body.broker_heartbeat.broker_id = -1, "heartbeat");
    BAD(WIRE_API_ALTER_PARTITION, false, m.body.alter_partition.n_isr = META_MAX_REPLICAS + 1, "isr");
    BAD(WIRE_API_ALTER_PARTITION, false, m.body.alter_partition.n_isr = 0, "isr");
    BAD(WIRE_API_ALTER_PARTITION, false, m.body.alter_partition.isr[3] = m.body.alter_partition.isr[0], "twice");
    BAD(WIRE_API_ALTER_PARTITION, false, memset(m.body.alter_partition.topic_id, 0, KL_UUID_LEN), "zero topic id");
    BAD(WIRE_API_ALTER_PARTITION, false, m.body.alter_partition.partition = META_MAX_TOPIC_PARTITIONS, "partition");
    BAD(WIRE_API_ALTER_PARTITION, true, m.body.alter_partition_resp.leader = 6, "not in the isr");
    BAD(WIRE_API_ALLOCATE_PRODUCER_IDS, false, m.body.allocate_producer_ids.broker_epoch = -1, "epoch");
    BAD(WIRE_API_ALLOCATE_PRODUCER_IDS, true, m.body.allocate_producer_ids_resp.first_id++, "producer id block");
    BAD(WIRE_API_ALLOCATE_PRODUCER_IDS, true, m.body.allocate_producer_ids_resp.size = 0, "producer id block");
    BAD(WIRE_API_CREATE_TOPIC, false, m.body.create_topic.partitions = 0, "partitions");
    BAD(WIRE_API_CREATE_TOPIC, false, m.body.create_topic.replication_factor = META_MAX_REPLICAS + 1, "replication");
    BAD(WIRE_API_CREATE_TOPIC, false, m.body.create_topic.n_configs = META_MAX_CONFIGS + 1, "configs");
    BAD(WIRE_API_CREATE_TOPIC, false, m.body.create_topic.configs[2].key[0] = '\0', "config key empty");
    BAD(WIRE_API_CREATE_TOPIC, false, memset(m.body.create_topic.name, 'n', sizeof m.body.create_topic.name),
        "not NUL-terminated");
    BAD(WIRE_API_CREATE_TOPIC, true, m.body.create_topic_resp.partitions = 0, "partitions");
    BAD(WIRE_API_DELETE_TOPIC, false, m.body.delete_topic.name[0] = '\0', "topic name empty");
    BAD(WIRE_API_DELETE_TOPIC, true, memset(m.body.delete_topic_resp.topic_id, 0, KL_UUID_LEN), "zero topic id");
    BAD(WIRE_API_ELECT_LEADERS, true, m.body.elect_leaders_resp.partitions_elected = -1, "elected");
    BAD(WIRE_API_ELECT_LEADERS, true,
        memset(m.body.elect_leaders_resp.message, 'm', sizeof m.body.elect_leaders_resp.message), "message");
    BAD(WIRE_API_PRODUCE, false, m.body.produce.acks = 2, "acks");
    BAD(WIRE_API_PRODUCE, false, m.body.produce.leader_epoch = -2, "leader epoch");
    BAD(WIRE_API_PRODUCE, false, m.body.produce.topic[0] = '\0', "topic name empty");
    BAD(WIRE_API_PRODUCE, true, m.body.produce_resp.base_offset = -2, "produce response");
    BAD(WIRE_API_FETCH, false, m.body.fetch.broker_epoch = -1, "broker epoch"); /* a follower without one */
    BAD(WIRE_API_FETCH, false, m.body.fetch.leader_epoch = WIRE_NO_EPOCH, "leader epoch");
    BAD(WIRE_API_FETCH, false, (m.body.fetch.replica_id = -1, m.body.fetch.broker_epoch = 5), "broker epoch");
    BAD(WIRE_API_FETCH, false, m.body.fetch.fetch_offset = -1, "fetch of partition");
    BAD(WIRE_API_FETCH, false, m.body.fetch.min_bytes = -1, "min_bytes");
    BAD(WIRE_API_FETCH, true, m.body.fetch_resp.high_watermark = 13, "high watermark");
    BAD(WIRE_API_FETCH, true, m.body.fetch_resp.diverging_end_offset = -1, "diverging");
    BAD(WIRE_API_LIST_OFFSETS, false, m.body.list_offsets.timestamp = 1700000000000LL, "timestamp");
    BAD(WIRE_API_LIST_OFFSETS, true, m.body.list_offsets_resp.offset = -1, "offset");
    BAD(WIRE_API_INIT_PRODUCER_ID, true, m.body.init_producer_id_resp.producer_epoch = -1, "producer id");
#undef BAD
}
END_TEST

START_TEST(metadata_response_that_breaks_its_invariants_is_refused)
{
    wire_msg_t m;
#define BAD(stmt, reason)           \
    do {                            \
        metadata_sample(&m);        \
        stmt;                       \
        encode_refused(&m, reason); \
    } while (0)
    BAD(md_brokers[1].id = 0, "not by id");
    BAD(md_brokers[0].state = (meta_broker_state_t)3, "state");
    BAD(md_brokers[0].n_listeners = 0, "listeners");
    BAD(md_brokers[1].listeners[3].host[0] = '\0', "host empty");
    BAD(md_parts[1].partition = 2, "partition 1");
    BAD(md_parts[2].topic[0] ^= 1, "another topic");
    BAD(md_parts[0].leader = INT32_MAX, "not in the isr");
    BAD(md_parts[0].leader_epoch = -1, "negative epoch");
    BAD(md_topics[0].n_partitions = 0, "partitions");
    BAD(memset(md_topics[0].topic_id, 0, KL_UUID_LEN), "zero topic uuid");
    BAD(strcpy(md_configs[5].key, "key.04"), "twice");
    BAD(strcpy(md_topics[0].name, "bad name"), "invalid topic name");
    BAD(md_topics[1].n_partitions = 1, "carries");
    BAD(md_topics[1].error = 1, "positive");
    BAD(m.body.metadata_resp.controller_id = -2, "controller");
    BAD(m.body.metadata_resp.n_brokers = META_MAX_BROKERS + 1, "brokers");
#undef BAD
}
END_TEST

START_TEST(decoder_refuses_arrays_strings_and_numbers_over_their_bounds)
{
    Keel__Header h;
    char long_name[META_MAX_TOPIC_NAME_LEN + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    int32_t ids[META_MAX_REPLICAS + 1];
    for (int i = 0; i <= META_MAX_REPLICAS; i++) ids[i] = i;
    Keel__AlterPartitionRequest alter = KEEL__ALTER_PARTITION_REQUEST__INIT;
    alter.topic_id = (ProtobufCBinaryData){KL_UUID_LEN, (uint8_t *)UUID_A};
    alter.isr = ids;
    alter.n_isr = META_MAX_REPLICAS;
    h = forged(WIRE_API_ALTER_PARTITION, false, KEEL__HEADER__BODY_ALTER_PARTITION_REQUEST, &alter);
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0); /* the control case decodes */
    alter.n_isr = META_MAX_REPLICAS + 1;
    REFUSED(h, "isr of 17 brokers");
    alter.n_isr = 1;
    alter.topic_id.len = KL_UUID_LEN - 1;
    REFUSED(h, "topic id is 15 bytes");

    Keel__Listener l = KEEL__LISTENER__INIT, *lp[META_MAX_LISTENERS + 1];
    l.name = "PLAINTEXT";
    l.host = "h";
    l.port = 9092;
    for (int i = 0; i <= META_MAX_LISTENERS; i++) lp[i] = &l;
    Keel__BrokerRegistrationRequest reg = KEEL__BROKER_REGISTRATION_REQUEST__INIT;
    reg.incarnation = (ProtobufCBinaryData){KL_UUID_LEN, (uint8_t *)UUID_B};
    reg.listeners = lp;
    reg.n_listeners = 1;
    h = forged(WIRE_API_BROKER_REGISTRATION, false, KEEL__HEADER__BODY_BROKER_REGISTRATION_REQUEST, &reg);
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0);
    reg.n_listeners = META_MAX_LISTENERS + 1;
    REFUSED(h, "9 listeners");
    reg.n_listeners = 2;
    REFUSED(h, "given twice"); /* meta.h's rules, like the controller's */
    reg.n_listeners = 1;
    l.port = 65536;
    REFUSED(h, "port 65536");
    l.port = 9092;
    char long_rack[META_MAX_RACK_LEN + 2];
    memset(long_rack, 'r', sizeof long_rack - 1);
    long_rack[sizeof long_rack - 1] = '\0';
    reg.rack = long_rack;
    REFUSED(h, "rack is 65 bytes");

    Keel__ConfigEntry c = KEEL__CONFIG_ENTRY__INIT, *cp[META_MAX_CONFIGS + 1];
    c.key = "k";
    c.value = "v";
    for (int i = 0; i <= META_MAX_CONFIGS; i++) cp[i] = &c;
    Keel__CreateTopicRequest create = KEEL__CREATE_TOPIC_REQUEST__INIT;
    create.name = "t";
    create.partitions = create.replication_factor = -1;
    create.configs = cp;
    create.n_configs = META_MAX_CONFIGS + 1;
    h = forged(WIRE_API_CREATE_TOPIC, false, KEEL__HEADER__BODY_CREATE_TOPIC_REQUEST, &create);
    REFUSED(h, "17 configs");
    create.n_configs = 0;
    create.name = long_name;
    REFUSED(h, "topic name is 250 bytes");

    char *names[WIRE_MAX_METADATA_TOPICS + 1];
    for (int i = 0; i <= WIRE_MAX_METADATA_TOPICS; i++) names[i] = "t";
    Keel__MetadataRequest mreq = KEEL__METADATA_REQUEST__INIT;
    mreq.topics = names;
    mreq.n_topics = WIRE_MAX_METADATA_TOPICS + 1;
    h = forged(WIRE_API_METADATA, false, KEEL__HEADER__BODY_METADATA_REQUEST, &mreq);
    REFUSED(h, "1025 topics");
    mreq.n_topics = 1;
    names[0] = long_name;
    REFUSED(h, "topic name");

    Keel__BrokerInfo bi = KEEL__BROKER_INFO__INIT, *bp = &bi;
    bi.listeners = lp;
    bi.n_listeners = 1;
    bi.state = META_BROKER_SHUTTING_DOWN + 1;
    Keel__MetadataResponse mresp = KEEL__METADATA_RESPONSE__INIT;
    mresp.controller_id = -1;
    mresp.metadata_offset = -1;
    mresp.brokers = &bp;
    mresp.n_brokers = 1;
    h = forged(WIRE_API_METADATA, true, KEEL__HEADER__BODY_METADATA_RESPONSE, &mresp);
    REFUSED(h, "broker state 3");
    bi.state = META_BROKER_FENCED;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0);

    /* per-topic partitions over the bound: empty sub-messages make it cheap */
    Keel__PartitionInfo pi = KEEL__PARTITION_INFO__INIT;
    Keel__PartitionInfo **pp = malloc((META_MAX_TOPIC_PARTITIONS + 1) * sizeof *pp);
    ck_assert_ptr_nonnull(pp);
    for (int i = 0; i <= META_MAX_TOPIC_PARTITIONS; i++) pp[i] = &pi;
    Keel__TopicInfo ti = KEEL__TOPIC_INFO__INIT, *tp = &ti;
    ti.name = "t";
    ti.topic_id = (ProtobufCBinaryData){KL_UUID_LEN, (uint8_t *)UUID_A};
    ti.partitions = pp;
    ti.n_partitions = META_MAX_TOPIC_PARTITIONS + 1;
    mresp.n_brokers = 0;
    mresp.topics = &tp;
    mresp.n_topics = 1;
    REFUSED(h, "10001 partitions");
    ti.n_partitions = 1; /* an empty partition breaks the image's invariants */
    REFUSED(h, "replicas");
    int32_t rep = 1;
    pi.replicas = pi.isr = &rep;
    pi.n_replicas = pi.n_isr = 1;
    pi.leader = 1;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0);
    ti.error = KL_EUNKNOWNPARTITION; /* an error topic with partitions */
    REFUSED(h, "carries");
    free(pp);

    Keel__InitProducerIdResponse pid = KEEL__INIT_PRODUCER_ID_RESPONSE__INIT;
    pid.producer_epoch = INT16_MAX + 1;
    h = forged(WIRE_API_INIT_PRODUCER_ID, true, KEEL__HEADER__BODY_INIT_PRODUCER_ID_RESPONSE, &pid);
    REFUSED(h, "producer epoch 32768");

    Keel__FetchRequest fetch = KEEL__FETCH_REQUEST__INIT;
    fetch.topic = "t";
    fetch.replica_id = fetch.broker_epoch = fetch.leader_epoch = fetch.last_fetched_epoch = -1;
    h = forged(WIRE_API_FETCH, false, KEEL__HEADER__BODY_FETCH_REQUEST, &fetch);
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0);
    ck_assert_int_eq(decode_forged(&h, "x", 1), KL_EPROTO); /* a payload on a fetch request */
    fetch.fetch_offset = -5;
    REFUSED(h, "fetch of partition");
}
END_TEST

START_TEST(bodies_of_another_api_or_direction_are_refused)
{
    Keel__ProduceRequest produce = KEEL__PRODUCE_REQUEST__INIT;
    produce.topic = "t";
    Keel__Header h = forged(WIRE_API_PRODUCE, false, KEEL__HEADER__BODY_PRODUCE_REQUEST, &produce);
    ck_assert_int_eq(decode_forged(&h, PAYLOAD, sizeof PAYLOAD), 0);
    h.api = WIRE_API_FETCH; /* another API's body */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.api = WIRE_API_PRODUCE;
    h.response = true; /* a request body on a response */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.response = false;
    h.body_case = KEEL__HEADER__BODY__NOT_SET; /* no body */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    Keel__RaftCommon raft = KEEL__RAFT_COMMON__INIT;
    h.body_case = KEEL__HEADER__BODY_PRODUCE_REQUEST;
    h.raft = &raft; /* Raft fields on a data-plane API */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
}
END_TEST

START_TEST(frames_of_new_apis_cut_short_are_refused)
{
    for (uint32_t api = WIRE_API_BROKER_REGISTRATION; api < WIRE_API_MAX_; api++) {
        for (int response = 0; response < 2; response++) {
            wire_msg_t m;
            if (api == WIRE_API_METADATA && response) metadata_sample(&m);
            else sample(api, response, &m);
            kl_buf_t b;
            encode_ok(&m, &b);
            size_t hdr_end = WIRE_MIN_FRAME + kl_get_be32(b.data + WIRE_LEN_PREFIX);
            for (size_t k = 0; k < b.len; k++) {
                wire_msg_t *out = NULL;
                ck_assert_int_eq(decode_copy(b.data, k, &out), KL_EPROTO); /* the length prefix disagrees */
                ck_assert_ptr_null(out);
                if (k < WIRE_MIN_FRAME || k >= hdr_end) continue;
                uint8_t *c = dup_bytes(b.data, k); /* consistent lengths, protobuf cut short */
                kl_put_be32(c, (uint32_t)(k - WIRE_LEN_PREFIX));
                kl_put_be32(c + WIRE_LEN_PREFIX, (uint32_t)(k - WIRE_MIN_FRAME));
                int rc = wire_decode(c, k, &out);
                /* a cut between fields can still parse, but never as this message */
                ck_assert_msg(rc != 0 || out->api != api || out->response != (bool)response ||
                                  memcmp(&out->body, &m.body, sizeof out->body) != 0 || api == WIRE_API_METADATA,
                              "%s cut at %zu decoded whole", wire_api_name(api), k);
                wire_msg_free(out);
            }
            kl_buf_free(&b);
        }
    }
}
END_TEST

START_TEST(seeded_random_mutations_of_new_api_frames_never_crash_or_leak)
{
    enum { N_VALID = 2 * N_NEW_APIS + 1 };
    kl_buf_t valid[N_VALID];
    int n = 0;
    wire_msg_t m;
    for (uint32_t api = WIRE_API_BROKER_REGISTRATION; api < WIRE_API_MAX_; api++)
        for (int response = 0; response < 2; response++) {
            if (api == WIRE_API_METADATA && response) metadata_sample(&m);
            else sample(api, response, &m);
            encode_ok(&m, &valid[n++]);
        }
    erange_sample(&m); /* an error response with its body */
    encode_ok(&m, &valid[n++]);
    kl_rng_t rng;
    kl_rng_seed(&rng, 20250117);
    for (int i = 0; i < GARBAGE_FRAMES; i++) {
        const kl_buf_t *v = &valid[kl_rng_range(&rng, 0, n)];
        uint8_t *f = dup_bytes(v->data, v->len);
        int flips = (int)kl_rng_range(&rng, 1, 6);
        for (int j = 0; j < flips; j++)
            f[kl_rng_range(&rng, WIRE_MIN_FRAME, (int64_t)v->len)] = (uint8_t)kl_rng_next(&rng);
        wire_msg_t *out = NULL;
        int rc = wire_decode(f, v->len, &out);
        ck_assert_msg(rc == 0 || rc == KL_EPROTO || rc == KL_EUNKNOWNAPI || rc == KL_EUNSUPPORTED, "unexpected %s",
                      kl_errname(rc));
        if (rc == 0) { /* whatever decodes passed the encoder's checks too */
            kl_buf_t again;
            kl_buf_init(&again, 0);
            ck_assert_msg(wire_encode(out, &again) == 0, "decoded %s does not re-encode: %s", wire_api_name(out->api),
                          wire_last_error());
            kl_buf_free(&again);
        }
        wire_msg_free(out);
    }
    for (int i = 0; i < n; i++) kl_buf_free(&valid[i]);
}
END_TEST

static Suite *wire_data_suite(void)
{
    Suite *s = suite_create("wire_data");
    TCase *t = tcase_create("round_trip");
    tcase_add_test(t, every_new_request_and_response_round_trips_field_by_field);
    tcase_add_test(t, new_apis_have_names_and_are_listed_by_api_versions);
    tcase_add_test(t, msg_init_starts_none_fields_at_minus_one);
    tcase_add_test(t, produce_and_fetch_payloads_pass_through_untouched);
    tcase_add_test(t, error_responses_of_every_new_api_are_header_only);
    tcase_add_test(t, fetch_error_response_carries_the_leaders_offsets_when_asked);
    tcase_add_test(t, metadata_request_round_trips_every_topic_or_names_up_to_the_bound);
    tcase_add_test(t, metadata_response_round_trips_brokers_topics_configs_and_partitions);
    tcase_add_test(t, metadata_response_at_the_per_topic_partition_bound_round_trips);
    suite_add_tcase(s, t);

    t = tcase_create("malformed");
    tcase_set_timeout(t, 120); /* the exhaustive loops run under ASan */
    tcase_add_test(t, encoder_refuses_out_of_range_values_of_every_new_api);
    tcase_add_test(t, metadata_response_that_breaks_its_invariants_is_refused);
    tcase_add_test(t, decoder_refuses_arrays_strings_and_numbers_over_their_bounds);
    tcase_add_test(t, bodies_of_another_api_or_direction_are_refused);
    tcase_add_test(t, error_bodies_are_refused_where_the_api_has_none_with_a_payload_or_out_of_range);
    tcase_add_test(t, frames_of_new_apis_cut_short_are_refused);
    tcase_add_test(t, seeded_random_mutations_of_new_api_frames_never_crash_or_leak);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kl_check_run(wire_data_suite());
}
