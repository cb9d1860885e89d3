/* test_wire_meta.c — metadata-log records, image snapshots and log entries round trip into the image; junk is refused. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/rng.h"
#include "keel/wire_meta.h"
#include "unit/kl_check.h"

/* ---- sample records: every type, and the optional parts both ways ------------ */

static const uint8_t UUID_A[KL_UUID_LEN] = {0xa1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t UUID_B[KL_UUID_LEN] = {0xb2, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static meta_listener_t sample_listeners[META_MAX_LISTENERS];
static meta_config_t sample_configs[META_MAX_CONFIGS];

#define N_SAMPLES 17

/* Fills samples[0..N_SAMPLES) (the arrays they point to are the statics above). */
static void make_samples(meta_record_t *r)
{
    memset(r, 0, N_SAMPLES * sizeof *r);
    for (int i = 0; i < META_MAX_LISTENERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "L%d_x-y", i);
        ck_assert_int_eq(meta_listener_set(&sample_listeners[i], name, i ? "broker-1.example.com" : "10.0.0.1",
                                           i ? 9092 + i : 65535), 0);
    }
    for (int i = 0; i < META_MAX_CONFIGS; i++) {
        snprintf(sample_configs[i].key, sizeof sample_configs[i].key, "key.%d", i);
        snprintf(sample_configs[i].value, sizeof sample_configs[i].value, i % 2 ? "%d" : "", i * 1000);
    }
    int k = 0;
    r[k].type = META_REC_NO_OP;
    k++;
    r[k].type = META_REC_REGISTER_BROKER; /* in the log: epoch from offset, no rack, one listener */
    r[k].u.reg = (meta_register_broker_t){.broker_id = 0, .broker_epoch = META_EPOCH_FROM_OFFSET,
                                          .listeners = sample_listeners, .n_listeners = 1};
    memcpy(r[k].u.reg.incarnation, UUID_A, KL_UUID_LEN);
    k++;
    r[k].type = META_REC_REGISTER_BROKER; /* in a snapshot: explicit epoch, rack, every listener */
    r[k].u.reg = (meta_register_broker_t){.broker_id = INT32_MAX, .broker_epoch = INT64_MAX,
                                          .listeners = sample_listeners, .n_listeners = META_MAX_LISTENERS};
    memcpy(r[k].u.reg.incarnation, UUID_B, KL_UUID_LEN);
    memset(r[k].u.reg.rack, 'r', META_MAX_RACK_LEN);
    k++;
    r[k].type = META_REC_FENCE_BROKER;
    r[k++].u.broker = (meta_broker_ref_t){3, 0};
    r[k].type = META_REC_UNFENCE_BROKER;
    r[k++].u.broker = (meta_broker_ref_t){4, 1234567890123LL};
    r[k].type = META_REC_SHUTDOWN_BROKER;
    r[k++].u.broker = (meta_broker_ref_t){5, 77};
    r[k].type = META_REC_TOPIC; /* no configs */
    strcpy(r[k].u.topic.name, "a");
    memcpy(r[k++].u.topic.uuid, UUID_A, KL_UUID_LEN);
    r[k].type = META_REC_TOPIC; /* longest name, every config */
    memset(r[k].u.topic.name, 'n', META_MAX_TOPIC_NAME_LEN);
    memcpy(r[k].u.topic.uuid, UUID_B, KL_UUID_LEN);
    r[k].u.topic.configs = sample_configs;
    r[k++].u.topic.n_configs = META_MAX_CONFIGS;
    r[k].type = META_REC_PARTITION; /* offline */
    r[k].u.partition = (meta_partition_t){.partition = 0, .replicas = {2}, .n_replicas = 1, .isr = {2}, .n_isr = 1,
                                          .leader = META_NO_LEADER};
    memcpy(r[k++].u.partition.topic, UUID_A, KL_UUID_LEN);
    r[k].type = META_REC_PARTITION; /* widest */
    meta_partition_t *p = &r[k].u.partition;
    memcpy(p->topic, UUID_B, KL_UUID_LEN);
    p->partition = META_MAX_TOPIC_PARTITIONS - 1;
    for (int i = 0; i < META_MAX_REPLICAS; i++) p->replicas[i] = p->isr[i] = 1000 + i;
    p->n_replicas = p->n_isr = META_MAX_REPLICAS;
    p->leader = 1005;
    p->leader_epoch = INT32_MAX;
    p->partition_epoch = 9;
    k++;
    r[k].type = META_REC_PARTITION_CHANGE; /* leader only: to offline */
    r[k].u.change = (meta_partition_change_t){.partition = 1, .leader = META_NO_LEADER, .n_isr = -1, .n_replicas = -1};
    memcpy(r[k++].u.change.topic, UUID_A, KL_UUID_LEN);
    r[k].type = META_REC_PARTITION_CHANGE; /* isr only */
    r[k].u.change = (meta_partition_change_t){.partition = 2, .leader = META_LEADER_UNCHANGED, .isr = {7, 8},
                                              .n_isr = 2, .n_replicas = -1};
    memcpy(r[k++].u.change.topic, UUID_A, KL_UUID_LEN);
    r[k].type = META_REC_PARTITION_CHANGE; /* everything */
    r[k].u.change = (meta_partition_change_t){.partition = 3, .leader = 0, .isr = {0}, .n_isr = 1,
                                              .replicas = {9, 0, 1}, .n_replicas = 3};
    memcpy(r[k++].u.change.topic, UUID_B, KL_UUID_LEN);
    r[k].type = META_REC_REMOVE_TOPIC;
    memcpy(r[k++].u.remove_topic, UUID_B, KL_UUID_LEN);
    r[k].type = META_REC_CONFIG; /* cluster-wide set */
    r[k].u.config = (meta_config_record_t){.resource = META_CONFIG_CLUSTER, .key = "retention.ms", .value = "-1"};
    k++;
    r[k].type = META_REC_CONFIG; /* topic delete */
    r[k].u.config = (meta_config_record_t){.resource = META_CONFIG_TOPIC, .key = "min.insync.replicas", .remove = true};
    memcpy(r[k++].u.config.topic, UUID_A, KL_UUID_LEN);
    r[k].type = META_REC_PRODUCER_IDS;
    r[k++].u.producer_ids = (meta_producer_ids_t){6, INT64_MAX - META_MAX_PRODUCER_ID_BLOCK, META_MAX_PRODUCER_ID_BLOCK};
    ck_assert_int_eq(k, N_SAMPLES);
    for (int i = 0; i < N_SAMPLES; i++) ck_assert_int_eq(meta_record_validate(&r[i], NULL, 0), 0);
}

static void assert_ids_eq(const int32_t *a, int na, const int32_t *b, int nb)
{
    ck_assert_int_eq(na, nb);
    for (int i = 0; i < na; i++) ck_assert_int_eq(a[i], b[i]);
}

static void assert_records_eq(const meta_record_t *a, const meta_record_t *b)
{
    ck_assert_int_eq(a->type, b->type);
    switch (a->type) {
    case META_REC_NO_OP:
        break;
    case META_REC_REGISTER_BROKER:
        ck_assert_int_eq(a->u.reg.broker_id, b->u.reg.broker_id);
        ck_assert_int_eq(a->u.reg.broker_epoch, b->u.reg.broker_epoch);
        ck_assert_mem_eq(a->u.reg.incarnation, b->u.reg.incarnation, KL_UUID_LEN);
        ck_assert_str_eq(a->u.reg.rack, b->u.reg.rack);
        ck_assert_int_eq(a->u.reg.n_listeners, b->u.reg.n_listeners);
        for (int i = 0; i < a->u.reg.n_listeners; i++) {
            ck_assert_str_eq(a->u.reg.listeners[i].name, b->u.reg.listeners[i].name);
            ck_assert_str_eq(a->u.reg.listeners[i].host, b->u.reg.listeners[i].host);
            ck_assert_int_eq(a->u.reg.listeners[i].port, b->u.reg.listeners[i].port);
        }
        break;
    case META_REC_FENCE_BROKER:
    case META_REC_UNFENCE_BROKER:
    case META_REC_SHUTDOWN_BROKER:
        ck_assert_int_eq(a->u.broker.broker_id, b->u.broker.broker_id);
        ck_assert_int_eq(a->u.broker.broker_epoch, b->u.broker.broker_epoch);
        break;
    case META_REC_TOPIC:
        ck_assert_str_eq(a->u.topic.name, b->u.topic.name);
        ck_assert_mem_eq(a->u.topic.uuid, b->u.topic.uuid, KL_UUID_LEN);
        ck_assert_int_eq(a->u.topic.n_configs, b->u.topic.n_configs);
        for (int i = 0; i < a->u.topic.n_configs; i++) {
            ck_assert_str_eq(a->u.topic.configs[i].key, b->u.topic.configs[i].key);
            ck_assert_str_eq(a->u.topic.configs[i].value, b->u.topic.configs[i].value);
        }
        break;
    case META_REC_PARTITION: {
        const meta_partition_t *x = &a->u.partition, *y = &b->u.partition;
        ck_assert_mem_eq(x->topic, y->topic, KL_UUID_LEN);
        ck_assert_int_eq(x->partition, y->partition);
        assert_ids_eq(x->replicas, x->n_replicas, y->replicas, y->n_replicas);
        assert_ids_eq(x->isr, x->n_isr, y->isr, y->n_isr);
        ck_assert_int_eq(x->leader, y->leader);
        ck_assert_int_eq(x->leader_epoch, y->leader_epoch);
        ck_assert_int_eq(x->partition_epoch, y->partition_epoch);
        break;
    }
    case META_REC_PARTITION_CHANGE: {
        const meta_partition_change_t *x = &a->u.change, *y = &b->u.change;
        ck_assert_mem_eq(x->topic, y->topic, KL_UUID_LEN);
        ck_assert_int_eq(x->partition, y->partition);
        ck_assert_int_eq(x->leader, y->leader);
        assert_ids_eq(x->isr, x->n_isr, y->isr, y->n_isr);
        assert_ids_eq(x->replicas, x->n_replicas, y->replicas, y->n_replicas);
        break;
    }
    case META_REC_REMOVE_TOPIC:
        ck_assert_mem_eq(a->u.remove_topic, b->u.remove_topic, KL_UUID_LEN);
        break;
    case META_REC_CONFIG:
        ck_assert_int_eq(a->u.config.resource, b->u.config.resource);
        ck_assert_mem_eq(a->u.config.topic, b->u.config.topic, KL_UUID_LEN);
        ck_assert_str_eq(a->u.config.key, b->u.config.key);
        ck_assert_int_eq(a->u.config.remove, b->u.config.remove);
        if (!a->u.config.remove) ck_assert_str_eq(a->u.config.value, b->u.config.value);
        break;
    case META_REC_PRODUCER_IDS:
        ck_assert_int_eq(a->u.producer_ids.broker_id, b->u.producer_ids.broker_id);
        ck_assert_int_eq(a->u.producer_ids.first_id, b->u.producer_ids.first_id);
        ck_assert_int_eq(a->u.producer_ids.size, b->u.producer_ids.size);
        break;
    }
}

/* Hand-forged protobuf: a length-delimited field. */
static void put_ld(kl_buf_t *b, unsigned field, const void *p, size_t n)
{
    ck_assert_int_eq(kl_buf_append_uvarint(b, field << 3 | 2), 0);
    ck_assert_int_eq(kl_buf_append_uvarint(b, n), 0);
    ck_assert_int_eq(kl_buf_append(b, p, n), 0);
}

/* A MetadataRecord holding record field `type` with body inner. */
static int decode_forged(unsigned type, const kl_buf_t *inner, meta_record_t *out, wire_meta_store_t *st)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    put_ld(&b, type, inner->data, inner->len);
    int rc = wire_meta_decode_record_full(b.data, b.len, out, st);
    kl_buf_free(&b);
    return rc;
}

START_TEST(every_record_type_round_trips_field_by_field)
{
    meta_record_t samples[N_SAMPLES];
    make_samples(samples);
    bool seen[META_REC_TYPE_MAX + 1] = {false};
    for (int i = 0; i < N_SAMPLES; i++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_record(&samples[i], &b), 0);
        wire_meta_store_t st;
        meta_record_t out;
        memset(&out, 0x5a, sizeof out);
        ck_assert_msg(wire_meta_decode_record_full(b.data, b.len, &out, &st) == 0, "sample %d: %s", i, st.why);
        assert_records_eq(&samples[i], &out);
        seen[samples[i].type] = true;
        wire_meta_record_t brief;
        ck_assert_int_eq(wire_meta_decode_record(b.data, b.len, &brief), 0); /* the short form names the type */
        ck_assert_int_eq((int)brief.type, (int)samples[i].type);
        kl_buf_free(&b);
    }
    for (int t = META_REC_NO_OP; t <= META_REC_TYPE_MAX; t++) ck_assert_msg(seen[t], "type %d not covered", t);
}
END_TEST

START_TEST(noop_from_the_old_encoder_decodes_as_a_full_record)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(wire_meta_encode_noop(&b), 0);
    static const uint8_t on_disk[] = {0x0a, 0x00}; /* what running clusters hold */
    ck_assert_uint_eq(b.len, sizeof on_disk);
    ck_assert_mem_eq(b.data, on_disk, sizeof on_disk);
    meta_record_t out;
    wire_meta_store_t st;
    ck_assert_int_eq(wire_meta_decode_record_full(on_disk, sizeof on_disk, &out, &st), 0);
    ck_assert_int_eq(out.type, META_REC_NO_OP);
    meta_record_t noop = {.type = META_REC_NO_OP};
    kl_buf_reset(&b);
    ck_assert_int_eq(wire_meta_encode_record(&noop, &b), 0); /* and the new encoder writes the same bytes */
    ck_assert_mem_eq(b.data, on_disk, sizeof on_disk);
    kl_buf_free(&b);
}
END_TEST

START_TEST(encoder_refuses_what_validate_refuses)
{
    meta_record_t samples[N_SAMPLES];
    make_samples(samples);
    meta_record_t bad[5];
    bad[0] = samples[1];
    bad[0].u.reg.n_listeners = META_MAX_LISTENERS + 1;
    bad[1] = samples[7];
    bad[1].u.topic.n_configs = META_MAX_CONFIGS + 1;
    bad[2] = samples[9];
    bad[2].u.partition.n_replicas = META_MAX_REPLICAS + 1;
    bad[3] = samples[10];
    bad[3].u.change.n_isr = 0;
    bad[4] = (meta_record_t){.type = (meta_record_type_t)(META_REC_TYPE_MAX + 1)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_record(&bad[i], &b), KL_EINVAL);
        ck_assert_uint_eq(b.len, 0);
        kl_buf_free(&b);
    }
}
END_TEST

/* A prefix may happen to be a whole valid record (fields are optional), but
 * every decode either fails cleanly or yields a record that validates. */
static void assert_decodes_safely(const uint8_t *p, size_t len)
{
    meta_record_t out;
    wire_meta_store_t st;
    int rc = wire_meta_decode_record_full(p, len, &out, &st);
    ck_assert_msg(rc == 0 || rc == KL_EPROTO, "rc %d", rc);
    if (rc == 0) {
        ck_assert_int_eq(meta_record_validate(&out, NULL, 0), 0);
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_record(&out, &b), 0);
        kl_buf_free(&b);
    } else {
        ck_assert_str_ne(st.why, "");
    }
}

START_TEST(every_truncation_fails_cleanly_or_yields_a_valid_record)
{
    meta_record_t samples[N_SAMPLES];
    make_samples(samples);
    int refused = 0, cuts = 0;
    for (int i = 0; i < N_SAMPLES; i++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_record(&samples[i], &b), 0);
        for (size_t cut = 0; cut < b.len; cut++, cuts++) {
            /* a heap copy of exactly cut bytes, so ASan sees any over-read */
            uint8_t *p = malloc(cut ? cut : 1);
            ck_assert_ptr_nonnull(p);
            memcpy(p, b.data, cut);
            meta_record_t out;
            wire_meta_store_t st;
            if (wire_meta_decode_record_full(p, cut, &out, &st) != 0) refused++;
            assert_decodes_safely(p, cut);
            free(p);
        }
        kl_buf_free(&b);
    }
    /* the outer length prefix covers the whole body, so every cut is refused */
    ck_assert_int_eq(refused, cuts);
}
END_TEST

START_TEST(seeded_random_mutations_never_crash_or_leak)
{
    meta_record_t samples[N_SAMPLES];
    make_samples(samples);
    kl_rng_t rng;
    kl_rng_seed(&rng, 20261121);
    for (int round = 0; round < 5000; round++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_record(&samples[round % N_SAMPLES], &b), 0);
        int edits = (int)kl_rng_range(&rng, 1, 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)kl_rng_range(&rng, 0, (int64_t)b.len);
            switch (kl_rng_range(&rng, 0, 3)) {
            case 0: b.data[at] ^= (uint8_t)(1u << kl_rng_range(&rng, 0, 8)); break;
            case 1: b.data[at] = (uint8_t)kl_rng_next(&rng); break;
            default: b.len = at; break; /* truncate */
            }
        }
        uint8_t *p = malloc(b.len ? b.len : 1);
        ck_assert_ptr_nonnull(p);
        memcpy(p, b.data, b.len);
        assert_decodes_safely(p, b.len);
        free(p);
        kl_buf_free(&b);
    }
}
END_TEST

START_TEST(oversized_arrays_and_strings_are_refused)
{
    meta_record_t out;
    wire_meta_store_t st;
    kl_buf_t inner, sub;
    kl_buf_init(&inner, 0);
    kl_buf_init(&sub, 0);

    /* partition with META_MAX_REPLICAS + 1 replicas (packed field 3) */
    uint8_t ids[META_MAX_REPLICAS + 1];
    for (int i = 0; i <= META_MAX_REPLICAS; i++) ids[i] = (uint8_t)i;
    put_ld(&inner, 1, UUID_A, KL_UUID_LEN);
    put_ld(&inner, 3, ids, sizeof ids);
    put_ld(&inner, 4, ids, 1);
    ck_assert_int_eq(decode_forged(META_REC_PARTITION, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "replicas"));

    /* registration with META_MAX_LISTENERS + 1 listeners */
    kl_buf_reset(&inner);
    put_ld(&inner, 3, UUID_A, KL_UUID_LEN);
    put_ld(&sub, 1, "PLAIN", 5);
    put_ld(&sub, 2, "h", 1);
    for (int i = 0; i <= META_MAX_LISTENERS; i++) put_ld(&inner, 4, sub.data, sub.len);
    ck_assert_int_eq(decode_forged(META_REC_REGISTER_BROKER, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "listeners"));

    /* topic with META_MAX_CONFIGS + 1 configs */
    kl_buf_reset(&inner);
    put_ld(&inner, 1, "t", 1);
    put_ld(&inner, 2, UUID_A, KL_UUID_LEN);
    kl_buf_reset(&sub);
    put_ld(&sub, 1, "k", 1);
    for (int i = 0; i <= META_MAX_CONFIGS; i++) put_ld(&inner, 3, sub.data, sub.len);
    ck_assert_int_eq(decode_forged(META_REC_TOPIC, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "configs"));

    /* topic name one past the limit */
    char name[META_MAX_TOPIC_NAME_LEN + 1];
    memset(name, 'n', sizeof name);
    kl_buf_reset(&inner);
    put_ld(&inner, 1, name, sizeof name);
    put_ld(&inner, 2, UUID_A, KL_UUID_LEN);
    ck_assert_int_eq(decode_forged(META_REC_TOPIC, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "topic name"));

    kl_buf_free(&sub);
    kl_buf_free(&inner);
}
END_TEST

START_TEST(malformed_fields_are_refused_with_a_reason)
{
    meta_record_t out;
    wire_meta_store_t st;
    kl_buf_t inner;
    kl_buf_init(&inner, 0);

    put_ld(&inner, 1, UUID_A, KL_UUID_LEN - 1); /* a 15-byte uuid */
    ck_assert_int_eq(decode_forged(META_REC_REMOVE_TOPIC, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "15 bytes"));

    kl_buf_reset(&inner); /* "unchanged" (-2) written out as a leader, beside a valid isr */
    put_ld(&inner, 1, UUID_A, KL_UUID_LEN);
    static const uint8_t isr_1[] = {0x0a, 0x01, 0x01};
    put_ld(&inner, 4, isr_1, sizeof isr_1);
    ck_assert_int_eq(decode_forged(META_REC_PARTITION_CHANGE, &inner, &out, &st), 0);
    ck_assert_int_eq(out.u.change.leader, META_LEADER_UNCHANGED);
    static const uint8_t leader_m2[] = {0x18, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    ck_assert_int_eq(kl_buf_append(&inner, leader_m2, sizeof leader_m2), 0);
    ck_assert_int_eq(decode_forged(META_REC_PARTITION_CHANGE, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "leader -2"));

    kl_buf_reset(&inner); /* a change that changes nothing fails validation */
    put_ld(&inner, 1, UUID_A, KL_UUID_LEN);
    ck_assert_int_eq(decode_forged(META_REC_PARTITION_CHANGE, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "PARTITION_CHANGE"));

    kl_buf_reset(&inner); /* a field from a newer writer */
    static const uint8_t fence_plus[] = {0x08, 0x01, 0x10, 0x02, 0xf8, 0x01, 0x01}; /* + field 31 */
    ck_assert_int_eq(kl_buf_append(&inner, fence_plus, sizeof fence_plus), 0);
    ck_assert_int_eq(decode_forged(META_REC_FENCE_BROKER, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "field 31"));
    ck_assert_int_eq(decode_forged(META_REC_FENCE_BROKER, &(kl_buf_t){.data = inner.data, .len = 4}, &out, &st), 0);
    ck_assert_int_eq(out.u.broker.broker_epoch, 2);

    kl_buf_reset(&inner); /* config without a resource, and a port past 16 bits */
    put_ld(&inner, 3, "k", 1);
    ck_assert_int_eq(decode_forged(META_REC_CONFIG, &inner, &out, &st), KL_EPROTO);
    kl_buf_t sub;
    kl_buf_init(&sub, 0);
    put_ld(&sub, 1, "P", 1);
    put_ld(&sub, 2, "h", 1);
    static const uint8_t port_70000[] = {0x18, 0xf0, 0xa2, 0x04};
    ck_assert_int_eq(kl_buf_append(&sub, port_70000, sizeof port_70000), 0);
    kl_buf_reset(&inner);
    put_ld(&inner, 3, UUID_A, KL_UUID_LEN);
    put_ld(&inner, 4, sub.data, sub.len);
    ck_assert_int_eq(decode_forged(META_REC_REGISTER_BROKER, &inner, &out, &st), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(st.why, "port 70000"));

    kl_buf_free(&sub);
    kl_buf_free(&inner);
}
END_TEST

START_TEST(noop_record_round_trips)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append(&b, "xy", 2), 0); /* appends after what is there */
    ck_assert_int_eq(wire_meta_encode_noop(&b), 0);
    ck_assert_uint_gt(b.len, 2);
    wire_meta_record_t r = {0};
    ck_assert_int_eq(wire_meta_decode_record(b.data + 2, b.len - 2, &r), 0);
    ck_assert_int_eq(r.type, WIRE_META_NO_OP);
    kl_buf_free(&b);
}
END_TEST

START_TEST(record_junk_missing_or_unknown_type_is_refused)
{
    wire_meta_record_t r;
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    static const uint8_t unknown[] = {0x12, 0x00};    /* field 2: a record type from the future */
    static const uint8_t truncated[] = {0x0a, 0x05}; /* no_op announcing 5 bytes, none follow */
    ck_assert_int_eq(wire_meta_decode_record(junk, sizeof junk, &r), KL_EPROTO);
    ck_assert_int_eq(wire_meta_decode_record(unknown, sizeof unknown, &r), KL_EPROTO);
    ck_assert_int_eq(wire_meta_decode_record(truncated, sizeof truncated, &r), KL_EPROTO);
    ck_assert_int_eq(wire_meta_decode_record(junk, 0, &r), KL_EPROTO); /* no record at all */
}
END_TEST

START_TEST(image_round_trips_including_negative_none_values)
{
    const wire_meta_image_t cases[] = {{0, 0, -1, -1}, {1000, 37, 999, 12}, {INT64_MAX, INT64_MAX, INT64_MAX - 1, INT32_MAX}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_image(&cases[i], &b), 0);
        wire_meta_image_t out;
        memset(&out, 0x5a, sizeof out);
        ck_assert_int_eq(wire_meta_decode_image(b.data, b.len, &out), 0);
        ck_assert_int_eq(out.records_applied, cases[i].records_applied);
        ck_assert_int_eq(out.no_op_count, cases[i].no_op_count);
        ck_assert_int_eq(out.last_applied_offset, cases[i].last_applied_offset);
        ck_assert_int_eq(out.last_applied_epoch, cases[i].last_applied_epoch);
        kl_buf_free(&b);
    }
}
END_TEST

START_TEST(image_out_of_range_is_refused_both_ways)
{
    const wire_meta_image_t bad[] = {{-1, 0, -1, -1}, {5, 6, 4, 1}, {5, -1, 4, 1}, {5, 1, -2, 1}, {5, 1, 4, -2}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kl_buf_t b;
        kl_buf_init(&b, 0);
        ck_assert_int_eq(wire_meta_encode_image(&bad[i], &b), KL_EINVAL);
        ck_assert_uint_eq(b.len, 0);
        kl_buf_free(&b);
    }
    /* records_applied = -1 forged by hand: field 1, varint of -1 (10 bytes) */
    static const uint8_t neg[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    wire_meta_image_t out = {7, 7, 7, 7};
    ck_assert_int_eq(wire_meta_decode_image(neg, sizeof neg, &out), KL_EPROTO);
    ck_assert_int_eq(out.records_applied, 7); /* untouched on failure */
    static const uint8_t junk[] = {0x08};
    ck_assert_int_eq(wire_meta_decode_image(junk, sizeof junk, &out), KL_EPROTO);
}
END_TEST

/* ---- the image over the log: apply_entry and snapshots ------------------------- */

/* Encodes rec as the committed entry at offset (the buffer owns the bytes). */
static raft_entry_t entry_of(const meta_record_t *rec, int64_t offset, kl_buf_t *b)
{
    kl_buf_init(b, 0);
    ck_assert_int_eq(wire_meta_encode_record(rec, b), 0);
    return (raft_entry_t){.offset = offset, .epoch = 1, .len = (uint32_t)b->len, .data = b->data};
}

static void apply_ok(meta_image_t *img, const meta_record_t *rec, int64_t offset)
{
    kl_buf_t b;
    raft_entry_t e = entry_of(rec, offset, &b);
    char why[META_MSG_LEN] = "";
    int rc = wire_meta_apply_entry(img, &e, why, sizeof why);
    ck_assert_msg(rc == 0, "apply %s: %s (%s)", meta_record_type_name((int)rec->type), kl_errname(rc), why);
    kl_buf_free(&b);
}

static meta_listener_t img_listeners[2];
static meta_config_t img_configs[2];

/* Brokers (active, shutting down), a topic with configs and partitions
 * (one changed to offline), a topic without configs, a cluster config and a
 * producer-id block, all folded in through wire_meta_apply_entry. */
static meta_image_t *sample_image(void)
{
    meta_image_t *img = meta_image_new();
    ck_assert_ptr_nonnull(img);
    ck_assert_int_eq(meta_listener_set(&img_listeners[0], "PLAINTEXT", "broker-1", 9092), 0);
    ck_assert_int_eq(meta_listener_set(&img_listeners[1], "INTERNAL", "10.0.0.2", 9093), 0);
    strcpy(img_configs[0].key, META_CFG_RETENTION_MS);
    strcpy(img_configs[0].value, "86400000");
    strcpy(img_configs[1].key, META_CFG_MIN_INSYNC_REPLICAS);
    strcpy(img_configs[1].value, "1");
    int64_t off = 10;
    meta_record_t r;
    for (int32_t id = 1; id <= 2; id++) {
        memset(&r, 0, sizeof r);
        r.type = META_REC_REGISTER_BROKER;
        r.u.reg = (meta_register_broker_t){.broker_id = id, .broker_epoch = META_EPOCH_FROM_OFFSET,
                                           .listeners = img_listeners, .n_listeners = id};
        memcpy(r.u.reg.incarnation, id == 1 ? UUID_A : UUID_B, KL_UUID_LEN);
        if (id == 2) strcpy(r.u.reg.rack, "rack-b");
        apply_ok(img, &r, off++);
    }
    memset(&r, 0, sizeof r);
    r.type = META_REC_UNFENCE_BROKER;
    r.u.broker = (meta_broker_ref_t){1, 10};
    apply_ok(img, &r, off++);
    r.u.broker = (meta_broker_ref_t){2, 11};
    apply_ok(img, &r, off++);
    r.type = META_REC_SHUTDOWN_BROKER;
    apply_ok(img, &r, off++);
    memset(&r, 0, sizeof r);
    r.type = META_REC_TOPIC;
    strcpy(r.u.topic.name, "orders");
    memcpy(r.u.topic.uuid, UUID_A, KL_UUID_LEN);
    r.u.topic.configs = img_configs;
    r.u.topic.n_configs = 2;
    apply_ok(img, &r, off++);
    strcpy(r.u.topic.name, "logs");
    memcpy(r.u.topic.uuid, UUID_B, KL_UUID_LEN);
    r.u.topic.n_configs = 0;
    apply_ok(img, &r, off++);
    for (int i = 0; i < 3; i++) {
        memset(&r, 0, sizeof r);
        r.type = META_REC_PARTITION;
        meta_partition_t *p = &r.u.partition;
        memcpy(p->topic, i < 2 ? UUID_A : UUID_B, KL_UUID_LEN);
        p->partition = i < 2 ? i : 0;
        p->replicas[0] = p->isr[0] = p->leader = i == 1 ? 2 : 1;
        p->replicas[1] = p->isr[1] = i == 1 ? 1 : 2;
        p->n_replicas = p->n_isr = 2;
        apply_ok(img, &r, off++);
    }
    memset(&r, 0, sizeof r);
    r.type = META_REC_PARTITION_CHANGE;
    r.u.change = (meta_partition_change_t){.partition = 1, .leader = META_NO_LEADER, .n_isr = -1, .n_replicas = -1};
    memcpy(r.u.change.topic, UUID_A, KL_UUID_LEN);
    apply_ok(img, &r, off++);
    memset(&r, 0, sizeof r);
    r.type = META_REC_CONFIG;
    r.u.config.resource = META_CONFIG_CLUSTER;
    strcpy(r.u.config.key, META_CFG_SEGMENT_BYTES);
    strcpy(r.u.config.value, "1048576");
    apply_ok(img, &r, off++);
    memset(&r, 0, sizeof r);
    r.type = META_REC_PRODUCER_IDS;
    r.u.producer_ids = (meta_producer_ids_t){.broker_id = 1, .first_id = 0, .size = 1000};
    apply_ok(img, &r, off++);
    ck_assert_int_eq(meta_image_broker_count(img), 2);
    ck_assert_int_eq(meta_image_topic_count(img), 2);
    return img;
}

static void snapshot_of(const meta_image_t *img, kl_buf_t *b)
{
    kl_buf_init(b, 0);
    int rc = wire_meta_encode_snapshot(img, b);
    ck_assert_msg(rc == 0, "encode snapshot: %s", kl_errname(rc));
}

/* Record lists equal record by record, compared through their encodings. */
static void records_equal(const meta_image_t *a, const meta_image_t *b)
{
    meta_records_t ra, rb;
    meta_records_init(&ra);
    meta_records_init(&rb);
    ck_assert_int_eq(meta_image_to_records(a, &ra), 0);
    ck_assert_int_eq(meta_image_to_records(b, &rb), 0);
    ck_assert_int_eq(ra.n, rb.n);
    for (int i = 0; i < ra.n; i++) {
        kl_buf_t x, y;
        kl_buf_init(&x, 0);
        kl_buf_init(&y, 0);
        ck_assert_int_eq(wire_meta_encode_record(&ra.recs[i], &x), 0);
        ck_assert_int_eq(wire_meta_encode_record(&rb.recs[i], &y), 0);
        ck_assert_msg(x.len == y.len && memcmp(x.data, y.data, x.len) == 0, "record %d (%s) differs", i,
                      meta_record_type_name((int)ra.recs[i].type));
        kl_buf_free(&x);
        kl_buf_free(&y);
    }
    meta_records_free(&ra);
    meta_records_free(&rb);
}

START_TEST(snapshot_round_trips_brokers_topics_configs_partitions_and_producer_ids)
{
    meta_image_t *img = sample_image();
    kl_buf_t b;
    snapshot_of(img, &b);
    meta_image_t *out = NULL;
    char why[META_MSG_LEN] = "";
    int rc = wire_meta_decode_snapshot(b.data, b.len, &out, why, sizeof why);
    ck_assert_msg(rc == 0, "decode snapshot: %s (%s)", kl_errname(rc), why);
    ck_assert(meta_image_equal(img, out));
    records_equal(img, out);
    ck_assert_int_eq(meta_image_broker(out, 2)->epoch, 11); /* explicit epochs, not the replay's offsets */
    ck_assert_int_eq(meta_image_next_producer_id(out), 1000);
    ck_assert_int_eq(meta_image_cluster_config_count(out), 1);
    kl_buf_t again; /* and the decoded image snapshots to the same bytes */
    snapshot_of(out, &again);
    ck_assert_uint_eq(again.len, b.len);
    ck_assert_mem_eq(again.data, b.data, b.len);
    kl_buf_free(&again);
    meta_image_free(out);
    meta_image_free(img);
    kl_buf_free(&b);

    img = meta_image_new(); /* the empty image too */
    ck_assert_ptr_nonnull(img);
    snapshot_of(img, &b);
    ck_assert_int_eq(wire_meta_decode_snapshot(b.data, b.len, &out, NULL, 0), 0);
    ck_assert(meta_image_equal(img, out));
    ck_assert_int_eq(meta_image_broker_count(out), 0);
    meta_image_free(out);
    meta_image_free(img);
    kl_buf_free(&b);
}
END_TEST

static void snapshot_refused(const uint8_t *p, size_t len, const char *reason)
{
    meta_image_t *stale = meta_image_new(), *out = stale; /* must come back NULL */
    ck_assert_ptr_nonnull(stale);
    char why[META_MSG_LEN] = "";
    ck_assert_int_eq(wire_meta_decode_snapshot(p, len, &out, why, sizeof why), KL_ECORRUPT);
    ck_assert_ptr_null(out);
    meta_image_free(stale);
    ck_assert_msg(why[0], "no reason given");
    if (reason) ck_assert_msg(strstr(why, reason), "reason \"%s\" lacks \"%s\"", why, reason);
}

START_TEST(corrupt_truncated_or_foreign_snapshots_are_refused)
{
    meta_image_t *img = sample_image();
    kl_buf_t b;
    snapshot_of(img, &b);
    meta_image_free(img);
    for (size_t k = 0; k < b.len; k++) snapshot_refused(b.data, k, NULL); /* every truncation */

    uint8_t *c = malloc(b.len + 1);
    ck_assert_ptr_nonnull(c);
    memcpy(c, b.data, b.len);
    c[b.len] = 0;
    snapshot_refused(c, b.len + 1, "after the last"); /* a trailing byte */
    c[0] = 'X';
    snapshot_refused(c, b.len, "not a metadata snapshot");
    c[0] = b.data[0];
    kl_put_be32(c + 4, 2);
    snapshot_refused(c, b.len, "version 2");
    kl_put_be32(c + 4, 1);
    kl_put_be32(c + 8, META_MAX_RECORDS + 1);
    snapshot_refused(c, b.len, "records, over");
    kl_put_be32(c + 8, kl_get_be32(b.data + 8) - 1); /* one record fewer announced */
    snapshot_refused(c, b.len, "after the last");
    memcpy(c, b.data, b.len);
    kl_put_be32(c + 12, 1u << 20); /* first record announced oversized */
    snapshot_refused(c, b.len, "truncated or oversized");

    /* flipped bytes: refused, or (inside a value) another valid image */
    kl_rng_t rng;
    kl_rng_seed(&rng, 424242);
    for (int i = 0; i < 500; i++) {
        memcpy(c, b.data, b.len);
        c[kl_rng_range(&rng, 0, (int64_t)b.len)] ^= (uint8_t)kl_rng_range(&rng, 1, 256);
        meta_image_t *out = NULL;
        int rc = wire_meta_decode_snapshot(c, b.len, &out, NULL, 0);
        ck_assert(rc == 0 || rc == KL_ECORRUPT);
        ck_assert((rc == 0) == (out != NULL));
        meta_image_free(out);
    }
    free(c);
    kl_buf_free(&b);
}
END_TEST

/* Hand-built snapshot: the header, then the given records. */
static void snapshot_from(const meta_record_t *recs, int n, kl_buf_t *b)
{
    kl_buf_init(b, 0);
    ck_assert_int_eq(kl_buf_append(b, "KMIS", 4), 0);
    ck_assert_int_eq(kl_buf_append_be32(b, 1), 0);
    ck_assert_int_eq(kl_buf_append_be32(b, (uint32_t)n), 0);
    for (int i = 0; i < n; i++) {
        size_t at = b->len;
        ck_assert_int_eq(kl_buf_append_be32(b, 0), 0);
        ck_assert_int_eq(wire_meta_encode_record(&recs[i], b), 0);
        kl_put_be32(b->data + at, (uint32_t)(b->len - at - 4));
    }
}

START_TEST(snapshot_records_that_do_not_apply_or_lack_an_epoch_are_refused)
{
    meta_record_t r[2];
    memset(r, 0, sizeof r);
    r[0].type = META_REC_PARTITION; /* of a topic that does not exist */
    memcpy(r[0].u.partition.topic, UUID_A, KL_UUID_LEN);
    r[0].u.partition.replicas[0] = r[0].u.partition.isr[0] = 1;
    r[0].u.partition.n_replicas = r[0].u.partition.n_isr = 1;
    r[0].u.partition.leader = META_NO_LEADER;
    kl_buf_t b;
    snapshot_from(r, 1, &b);
    snapshot_refused(b.data, b.len, "does not apply");
    kl_buf_free(&b);

    ck_assert_int_eq(meta_listener_set(&img_listeners[0], "PLAINTEXT", "h", 1), 0);
    r[1].type = META_REC_REGISTER_BROKER; /* a log registration: its epoch would be made up */
    r[1].u.reg = (meta_register_broker_t){.broker_id = 1, .broker_epoch = META_EPOCH_FROM_OFFSET,
                                          .listeners = img_listeners, .n_listeners = 1};
    memcpy(r[1].u.reg.incarnation, UUID_A, KL_UUID_LEN);
    snapshot_from(&r[1], 1, &b);
    snapshot_refused(b.data, b.len, "without its epoch");
    kl_buf_free(&b);
    r[1].u.reg.broker_epoch = 5; /* the control case */
    snapshot_from(&r[1], 1, &b);
    meta_image_t *out = NULL;
    ck_assert_int_eq(wire_meta_decode_snapshot(b.data, b.len, &out, NULL, 0), 0);
    ck_assert_int_eq(meta_image_broker(out, 1)->epoch, 5);
    meta_image_free(out);
    kl_buf_free(&b);
}
END_TEST

START_TEST(apply_entry_skips_control_and_noop_entries_and_applies_records_at_their_offset)
{
    meta_image_t *img = meta_image_new(), *empty = meta_image_new();
    ck_assert_ptr_nonnull(img);
    ck_assert_ptr_nonnull(empty);
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    raft_entry_t control = {.offset = 1, .epoch = 1, .control = true, .len = sizeof junk, .data = junk};
    ck_assert_int_eq(wire_meta_apply_entry(img, &control, NULL, 0), 0); /* never decoded */
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(wire_meta_encode_noop(&b), 0);
    raft_entry_t noop = {.offset = 2, .epoch = 1, .len = (uint32_t)b.len, .data = b.data};
    ck_assert_int_eq(wire_meta_apply_entry(img, &noop, NULL, 0), 0);
    kl_buf_free(&b);
    ck_assert(meta_image_equal(img, empty));

    meta_record_t r;
    memset(&r, 0, sizeof r);
    ck_assert_int_eq(meta_listener_set(&img_listeners[0], "PLAINTEXT", "h", 9092), 0);
    r.type = META_REC_REGISTER_BROKER;
    r.u.reg = (meta_register_broker_t){.broker_id = 4, .broker_epoch = META_EPOCH_FROM_OFFSET,
                                       .listeners = img_listeners, .n_listeners = 1};
    memcpy(r.u.reg.incarnation, UUID_B, KL_UUID_LEN);
    apply_ok(img, &r, 37);
    ck_assert_ptr_nonnull(meta_image_broker(img, 4));
    ck_assert_int_eq(meta_image_broker(img, 4)->epoch, 37); /* DESIGN.md §3: epoch = offset */
    meta_image_free(img);
    meta_image_free(empty);
}
END_TEST

START_TEST(apply_entry_reports_undecodable_and_inapplicable_entries)
{
    meta_image_t *img = meta_image_new(), *empty = meta_image_new();
    ck_assert_ptr_nonnull(img);
    ck_assert_ptr_nonnull(empty);
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    raft_entry_t e = {.offset = 99, .epoch = 3, .len = sizeof junk, .data = junk};
    char why[META_MSG_LEN] = "";
    ck_assert_int_eq(wire_meta_apply_entry(img, &e, why, sizeof why), KL_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "offset 99"));
    e.len = 0; /* an empty entry is no record either */
    e.data = NULL;
    ck_assert_int_eq(wire_meta_apply_entry(img, &e, NULL, 0), KL_ECORRUPT);

    meta_record_t r;
    memset(&r, 0, sizeof r);
    r.type = META_REC_UNFENCE_BROKER; /* a broker nobody registered */
    r.u.broker = (meta_broker_ref_t){9, 1};
    kl_buf_t b;
    e = entry_of(&r, 100, &b);
    ck_assert_int_eq(wire_meta_apply_entry(img, &e, why, sizeof why), KL_ENOENT);
    ck_assert_ptr_nonnull(strstr(why, "not registered"));
    kl_buf_free(&b);
    ck_assert(meta_image_equal(img, empty)); /* nothing changed */
    meta_image_free(img);
    meta_image_free(empty);
}
END_TEST

static Suite *wire_meta_suite(void)
{
    Suite *s = suite_create("wire_meta");
    TCase *t = tcase_create("records");
    tcase_add_test(t, noop_record_round_trips);
    tcase_add_test(t, record_junk_missing_or_unknown_type_is_refused);
    tcase_add_test(t, every_record_type_round_trips_field_by_field);
    tcase_add_test(t, noop_from_the_old_encoder_decodes_as_a_full_record);
    tcase_add_test(t, encoder_refuses_what_validate_refuses);
    tcase_add_test(t, oversized_arrays_and_strings_are_refused);
    tcase_add_test(t, malformed_fields_are_refused_with_a_reason);
    suite_add_tcase(s, t);
    t = tcase_create("robustness");
    tcase_set_timeout(t, 60);
    tcase_add_test(t, every_truncation_fails_cleanly_or_yields_a_valid_record);
    tcase_add_test(t, seeded_random_mutations_never_crash_or_leak);
    suite_add_tcase(s, t);
    t = tcase_create("image");
    tcase_add_test(t, image_round_trips_including_negative_none_values);
    tcase_add_test(t, image_out_of_range_is_refused_both_ways);
    suite_add_tcase(s, t);
    t = tcase_create("snapshot");
    tcase_add_test(t, snapshot_round_trips_brokers_topics_configs_partitions_and_producer_ids);
    tcase_add_test(t, corrupt_truncated_or_foreign_snapshots_are_refused);
    tcase_add_test(t, snapshot_records_that_do_not_apply_or_lack_an_epoch_are_refused);
    tcase_add_test(t, apply_entry_skips_control_and_noop_entries_and_applies_records_at_their_offset);
    tcase_add_test(t, apply_entry_reports_undecodable_and_inapplicable_entries);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kl_check_run(wire_meta_suite());
}
