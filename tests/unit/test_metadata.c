/* test_metadata.c — metadata records and the image: validation, apply rules, epochs, snapshots as records, equality. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "keel/err.h"
#include "keel/meta.h"
#include "unit/kl_check.h"
#include "unit/test_metadata_fixture.h"

static const int32_t R123[] = {1, 2, 3, -1}, R12[] = {1, 2, -1}, R23[] = {2, 3, -1};

static meta_record_t broker_ref(meta_record_type_t type, int32_t id, int64_t epoch)
{
    meta_record_t r = {.type = type, .u.broker = {id, epoch}};
    return r;
}

static meta_record_t change_of(const meta_topic_t *t, int32_t p)
{
    meta_record_t r = {.type = META_REC_PARTITION_CHANGE};
    memcpy(r.u.change.topic, t->uuid, KL_UUID_LEN);
    r.u.change.partition = p;
    r.u.change.leader = META_LEADER_UNCHANGED;
    r.u.change.n_isr = r.u.change.n_replicas = -1;
    return r;
}

static int validate(const meta_record_t *r)
{
    char why[META_MSG_LEN] = "";
    int rc = meta_record_validate(r, why, sizeof why);
    ck_assert_msg(rc == 0 || why[0], "a refusal must say why");
    return rc;
}

START_TEST(topic_names_follow_kafka_rules)
{
    char longest[META_MAX_TOPIC_NAME_LEN + 2];
    memset(longest, 'a', sizeof longest);
    longest[META_MAX_TOPIC_NAME_LEN] = '\0';
    ck_assert(meta_topic_name_valid(longest));
    longest[META_MAX_TOPIC_NAME_LEN] = 'a';
    longest[META_MAX_TOPIC_NAME_LEN + 1] = '\0';
    ck_assert(!meta_topic_name_valid(longest)); /* 250 chars */
    ck_assert(meta_topic_name_valid("orders.v2_EU-1"));
    ck_assert(meta_topic_name_valid("..."));
    ck_assert(!meta_topic_name_valid(""));
    ck_assert(!meta_topic_name_valid("."));
    ck_assert(!meta_topic_name_valid(".."));
    ck_assert(!meta_topic_name_valid("a b"));
    ck_assert(!meta_topic_name_valid("a/b"));
    ck_assert(!meta_topic_name_valid("caf\xc3\xa9"));
}
END_TEST

START_TEST(config_values_are_validated_and_made_canonical)
{
    char v[META_MAX_CONFIG_VALUE_LEN + 1], why[META_MSG_LEN];
    ck_assert_int_eq(meta_config_canonical(META_CFG_UNCLEAN_ELECTION, "TRUE", v, why, sizeof why), 0);
    ck_assert_str_eq(v, "true");
    ck_assert_int_eq(meta_config_canonical(META_CFG_UNCLEAN_ELECTION, "False", v, why, sizeof why), 0);
    ck_assert_str_eq(v, "false");
    ck_assert_int_eq(meta_config_canonical(META_CFG_UNCLEAN_ELECTION, "yes", v, why, sizeof why), KL_EINVAL);
    ck_assert_int_eq(meta_config_canonical(META_CFG_RETENTION_MS, "-1", v, why, sizeof why), 0);
    ck_assert_str_eq(v, "-1");
    ck_assert_int_eq(meta_config_canonical(META_CFG_RETENTION_MS, "007", v, why, sizeof why), 0);
    ck_assert_str_eq(v, "7");
    ck_assert_int_eq(meta_config_canonical(META_CFG_RETENTION_MS, "-2", v, why, sizeof why), KL_EINVAL);
    ck_assert_int_eq(meta_config_canonical(META_CFG_RETENTION_BYTES, "9223372036854775807", v, why, sizeof why), 0);
    ck_assert_int_eq(meta_config_canonical(META_CFG_RETENTION_BYTES, "9223372036854775808", v, why, sizeof why), KL_EINVAL);
    ck_assert_int_eq(meta_config_canonical(META_CFG_MIN_INSYNC_REPLICAS, "0", v, why, sizeof why), KL_EINVAL);
    ck_assert_int_eq(meta_config_canonical(META_CFG_MIN_INSYNC_REPLICAS, " 2", v, why, sizeof why), KL_EINVAL);
    ck_assert_int_eq(meta_config_canonical(META_CFG_SEGMENT_BYTES, "13", v, why, sizeof why), KL_EINVAL);
    ck_assert_int_eq(meta_config_canonical(META_CFG_SEGMENT_BYTES, "2147483648", v, why, sizeof why), KL_EINVAL);
    ck_assert_int_eq(meta_config_canonical("retention.msec", "1", v, why, sizeof why), KL_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "unknown config"));
}
END_TEST

START_TEST(records_outside_their_limits_are_refused_with_a_reason)
{
    meta_listener_t l[META_MAX_LISTENERS + 1];
    for (int i = 0; i <= META_MAX_LISTENERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "L%d", i);
        ck_assert_int_eq(meta_listener_set(&l[i], name, "h", 1), 0);
    }
    meta_record_t r = {.type = META_REC_REGISTER_BROKER};
    r.u.reg.broker_epoch = META_EPOCH_FROM_OFFSET;
    r.u.reg.listeners = l;
    r.u.reg.n_listeners = 1;
    ck_assert_int_eq(validate(&r), KL_EINVAL); /* zero incarnation */
    fx_uuid(r.u.reg.incarnation, 1);
    ck_assert_int_eq(validate(&r), 0);
    r.u.reg.n_listeners = META_MAX_LISTENERS + 1;
    ck_assert_int_eq(validate(&r), KL_EINVAL);
    r.u.reg.n_listeners = 2;
    l[1] = l[0];
    ck_assert_int_eq(validate(&r), KL_EINVAL); /* duplicate listener name */
    r.u.reg.n_listeners = 1;
    memset(r.u.reg.rack, 'r', sizeof r.u.reg.rack); /* not NUL-terminated */
    ck_assert_int_eq(validate(&r), KL_EINVAL);

    meta_listener_t big;
    char host[META_MAX_HOST_LEN + 2];
    memset(host, 'h', sizeof host);
    host[META_MAX_HOST_LEN + 1] = '\0';
    ck_assert_int_eq(meta_listener_set(&big, "X", host, 1), KL_ETOOBIG);
    ck_assert_int_eq(meta_listener_set(&big, "bad name", "h", 1), KL_EINVAL);
    ck_assert_int_eq(meta_listener_set(&big, "X", "h", 0), KL_EINVAL);
    ck_assert_int_eq(meta_listener_set(&big, "X", "h", 65536), KL_EINVAL);

    meta_record_t t = {.type = META_REC_TOPIC};
    strcpy(t.u.topic.name, "..");
    fx_uuid(t.u.topic.uuid, 1);
    ck_assert_int_eq(validate(&t), KL_EINVAL);

    meta_record_t p = {.type = META_REC_PARTITION};
    fx_uuid(p.u.partition.topic, 1);
    p.u.partition.n_replicas = 2;
    p.u.partition.replicas[0] = 1;
    p.u.partition.replicas[1] = 2;
    p.u.partition.n_isr = 1;
    p.u.partition.isr[0] = 1;
    p.u.partition.leader = 1;
    ck_assert_int_eq(validate(&p), 0);
    p.u.partition.leader = 2; /* not in the ISR */
    ck_assert_int_eq(validate(&p), KL_EINVAL);
    p.u.partition.leader = META_NO_LEADER;
    ck_assert_int_eq(validate(&p), 0);
    p.u.partition.isr[0] = 3; /* not a replica */
    ck_assert_int_eq(validate(&p), KL_EINVAL);
    p.u.partition.n_isr = 2;
    p.u.partition.isr[0] = 2; /* [2,1]: not in replica order */
    p.u.partition.isr[1] = 1;
    ck_assert_int_eq(validate(&p), KL_EINVAL);
    p.u.partition.n_isr = 1;
    p.u.partition.isr[0] = 1;
    p.u.partition.replicas[1] = 1; /* twice */
    ck_assert_int_eq(validate(&p), KL_EINVAL);
    p.u.partition.replicas[1] = 2;
    p.u.partition.n_isr = 0;
    ck_assert_int_eq(validate(&p), KL_EINVAL);
    p.u.partition.n_isr = 1;
    p.u.partition.partition = META_MAX_TOPIC_PARTITIONS;
    ck_assert_int_eq(validate(&p), KL_EINVAL);

    meta_record_t c = {.type = META_REC_PARTITION_CHANGE};
    fx_uuid(c.u.change.topic, 1);
    c.u.change.leader = META_LEADER_UNCHANGED;
    c.u.change.n_isr = c.u.change.n_replicas = -1;
    ck_assert_int_eq(validate(&c), KL_EINVAL); /* changes nothing */
    c.u.change.leader = -3;
    ck_assert_int_eq(validate(&c), KL_EINVAL);

    meta_record_t b = {.type = META_REC_PRODUCER_IDS, .u.producer_ids = {1, INT64_MAX - 5, 10}};
    ck_assert_int_eq(validate(&b), KL_EINVAL);
    b.u.producer_ids.size = META_MAX_PRODUCER_ID_BLOCK + 1;
    b.u.producer_ids.first_id = 0;
    ck_assert_int_eq(validate(&b), KL_EINVAL);

    meta_record_t cfg = {.type = META_REC_CONFIG, .u.config = {.resource = META_CONFIG_CLUSTER}};
    strcpy(cfg.u.config.key, "k");
    ck_assert_int_eq(validate(&cfg), 0);
    fx_uuid(cfg.u.config.topic, 1); /* a cluster config names no topic */
    ck_assert_int_eq(validate(&cfg), KL_EINVAL);

    meta_record_t unknown = {.type = (meta_record_type_t)99};
    ck_assert_int_eq(validate(&unknown), KL_EINVAL);
    ck_assert_str_eq(meta_record_type_name(99), "UNKNOWN");
    ck_assert_str_eq(meta_record_type_name(META_REC_PARTITION_CHANGE), "PARTITION_CHANGE");
}
END_TEST

START_TEST(registration_epoch_is_the_record_offset_and_a_new_incarnation_starts_fenced)
{
    fx_t f;
    fx_init(&f);
    f.offset = 42;
    ck_assert_int_eq(fx_register(&f, 7, 1, "r1"), 0);
    fx_commit(&f);
    const meta_broker_t *b = meta_image_broker(f.img, 7);
    ck_assert_int_eq(b->epoch, 42);
    ck_assert_int_eq(b->state, META_BROKER_FENCED);
    ck_assert_str_eq(b->rack, "r1");
    ck_assert_str_eq(b->listeners[0].host, "localhost");
    ck_assert_int_eq(meta_image_apply(f.img, &(meta_record_t){.type = META_REC_NO_OP}, f.offset++), 0);
    ck_assert_int_eq(fx_register(&f, 7, 2, NULL), 0); /* fenced: a new incarnation may replace it */
    fx_commit(&f);
    b = meta_image_broker(f.img, 7);
    ck_assert_int_eq(b->epoch, 44);
    ck_assert_str_eq(b->rack, "");
    ck_assert_int_eq(meta_image_broker_count(f.img), 1);
    fx_free(&f);
}
END_TEST

START_TEST(broker_state_records_for_another_incarnation_are_refused)
{
    fx_t f;
    fx_init(&f);
    fx_add_broker(&f, 1, NULL);
    int64_t epoch = meta_image_broker(f.img, 1)->epoch;
    meta_record_t r = broker_ref(META_REC_FENCE_BROKER, 1, epoch + 1);
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_EFENCED);
    ck_assert_ptr_nonnull(strstr(meta_image_error(f.img), "broker 1"));
    r = broker_ref(META_REC_FENCE_BROKER, 9, 0);
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_ENOENT);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->state, META_BROKER_ACTIVE);
    fx_free(&f);
}
END_TEST

START_TEST(a_new_incarnation_cannot_replace_an_unfenced_broker)
{
    fx_t f;
    fx_init(&f);
    fx_add_broker(&f, 1, NULL);
    meta_listener_t l;
    meta_listener_set(&l, "PLAINTEXT", "h", 1);
    meta_record_t r = {.type = META_REC_REGISTER_BROKER};
    r.u.reg = (meta_register_broker_t){.broker_id = 1, .broker_epoch = META_EPOCH_FROM_OFFSET, .listeners = &l, .n_listeners = 1};
    fx_uuid(r.u.reg.incarnation, 77);
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_ESTATE);
    meta_record_t fence = broker_ref(META_REC_FENCE_BROKER, 1, meta_image_broker(f.img, 1)->epoch);
    fx_apply(&f, &fence);
    r.u.reg.broker_epoch = 0; /* an epoch older than the current registration */
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_EFENCED);
    r.u.reg.broker_epoch = META_EPOCH_FROM_OFFSET;
    fx_apply(&f, &r);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->epoch, f.offset - 1);
    fx_free(&f);
}
END_TEST

START_TEST(repeating_a_broker_state_change_is_a_no_op_but_impossible_transitions_are_refused)
{
    fx_t f;
    fx_init(&f);
    fx_add_broker(&f, 1, NULL);
    int64_t e = meta_image_broker(f.img, 1)->epoch;
    meta_record_t unfence = broker_ref(META_REC_UNFENCE_BROKER, 1, e), fence = broker_ref(META_REC_FENCE_BROKER, 1, e),
                  shut = broker_ref(META_REC_SHUTDOWN_BROKER, 1, e);
    fx_apply(&f, &unfence);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->state, META_BROKER_ACTIVE);
    fx_apply(&f, &shut);
    fx_apply(&f, &shut);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->state, META_BROKER_SHUTTING_DOWN);
    ck_assert_int_eq(meta_image_apply(f.img, &unfence, f.offset), KL_ESTATE);
    fx_apply(&f, &fence);
    fx_apply(&f, &fence);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->state, META_BROKER_FENCED);
    ck_assert_int_eq(meta_image_apply(f.img, &shut, f.offset), KL_ESTATE);
    fx_free(&f);
}
END_TEST

START_TEST(partition_change_bumps_the_leader_epoch_on_leader_change_and_the_partition_epoch_always)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    const meta_topic_t *t = fx_topic_raw(&f, "t", 1);
    fx_partition_raw(&f, t, R123, R123, 1);
    const meta_partition_t *p = &t->parts[0];
    ck_assert_int_eq(p->leader_epoch, 0);
    ck_assert_int_eq(p->partition_epoch, 0);

    meta_record_t c = change_of(t, 0);
    c.u.change.n_isr = 2;
    memcpy(c.u.change.isr, R12, 2 * sizeof(int32_t));
    fx_apply(&f, &c);
    ck_assert(fx_isr_is(p, R12));
    ck_assert_int_eq(p->leader_epoch, 0);
    ck_assert_int_eq(p->partition_epoch, 1);

    c = change_of(t, 0);
    c.u.change.leader = 2;
    fx_apply(&f, &c);
    ck_assert_int_eq(p->leader, 2);
    ck_assert_int_eq(p->leader_epoch, 1);
    ck_assert_int_eq(p->partition_epoch, 2);

    c.u.change.leader = 2; /* naming the current leader is not a leader change */
    c.u.change.n_isr = 1;
    c.u.change.isr[0] = 2;
    fx_apply(&f, &c);
    ck_assert_int_eq(p->leader_epoch, 1);
    ck_assert_int_eq(p->partition_epoch, 3);

    c = change_of(t, 0);
    c.u.change.n_replicas = 2;
    memcpy(c.u.change.replicas, R23, 2 * sizeof(int32_t));
    fx_apply(&f, &c);
    ck_assert_int_eq(p->n_replicas, 2);
    ck_assert_int_eq(p->partition_epoch, 4);
    fx_free(&f);
}
END_TEST

START_TEST(a_change_that_would_break_partition_invariants_is_refused_and_changes_nothing)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    const meta_topic_t *t = fx_topic_raw(&f, "t", 1);
    fx_partition_raw(&f, t, R123, R123, 1);
    meta_image_t *before;
    ck_assert_int_eq(meta_image_clone(f.img, &before), 0);

    meta_record_t c = change_of(t, 0);
    c.u.change.n_isr = 1;
    c.u.change.isr[0] = 2; /* leader 1 would not be in the ISR */
    ck_assert_int_eq(meta_image_apply(f.img, &c, f.offset), KL_EINVAL);
    c = change_of(t, 0);
    c.u.change.n_replicas = 2;
    memcpy(c.u.change.replicas, R23, 2 * sizeof(int32_t)); /* ISR member 1 would not be a replica */
    ck_assert_int_eq(meta_image_apply(f.img, &c, f.offset), KL_EINVAL);
    c = change_of(t, 0);
    c.u.change.n_replicas = 3;
    c.u.change.replicas[0] = 1, c.u.change.replicas[1] = 2, c.u.change.replicas[2] = 3;
    c.u.change.n_replicas = 4;
    c.u.change.replicas[3] = 99; /* not a registered broker */
    ck_assert_int_eq(meta_image_apply(f.img, &c, f.offset), KL_ENOENT);
    c = change_of(t, 1);
    c.u.change.leader = 2;
    ck_assert_int_eq(meta_image_apply(f.img, &c, f.offset), KL_EUNKNOWNPARTITION);
    ck_assert(meta_image_equal(f.img, before));
    meta_image_free(before);
    fx_free(&f);
}
END_TEST

START_TEST(partitions_are_created_in_order_for_known_topics_on_registered_brokers)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 2);
    const meta_topic_t *t = fx_topic_raw(&f, "t", 1);
    meta_record_t r = {.type = META_REC_PARTITION};
    meta_partition_t *p = &r.u.partition;
    memcpy(p->topic, t->uuid, KL_UUID_LEN);
    p->n_replicas = p->n_isr = 1;
    p->replicas[0] = p->isr[0] = p->leader = 1;
    p->partition = 1; /* gap */
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_EINVAL);
    p->partition = 0;
    p->replicas[0] = p->isr[0] = p->leader = 5; /* unregistered */
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_ENOENT);
    p->replicas[0] = p->isr[0] = p->leader = 2;
    fx_apply(&f, &r);
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_EEXIST);
    fx_uuid(p->topic, 99);
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_EUNKNOWNPARTITION);
    ck_assert_int_eq(meta_image_partition_count(f.img), 1);
    ck_assert_ptr_null(meta_image_partition(f.img, t->uuid, 1));
    fx_free(&f);
}
END_TEST

START_TEST(duplicate_topic_names_or_uuids_are_refused)
{
    fx_t f;
    fx_init(&f);
    fx_topic_raw(&f, "a", 1);
    meta_record_t r = {.type = META_REC_TOPIC};
    strcpy(r.u.topic.name, "a");
    fx_uuid(r.u.topic.uuid, 2);
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_EEXIST);
    strcpy(r.u.topic.name, "b");
    fx_uuid(r.u.topic.uuid, 1);
    ck_assert_int_eq(meta_image_apply(f.img, &r, f.offset), KL_EEXIST);
    ck_assert_int_eq(meta_image_topic_count(f.img), 1);
    fx_free(&f);
}
END_TEST

START_TEST(topic_removal_drops_its_partitions_and_configs_and_frees_the_name)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    fx_create(&f, "keep", 2, 2);
    const meta_topic_t *t = fx_create(&f, "gone", 3, 3);
    meta_record_t cfg = {.type = META_REC_CONFIG, .u.config = {.resource = META_CONFIG_TOPIC}};
    memcpy(cfg.u.config.topic, t->uuid, KL_UUID_LEN);
    strcpy(cfg.u.config.key, META_CFG_RETENTION_MS);
    strcpy(cfg.u.config.value, "1000");
    fx_apply(&f, &cfg);
    ck_assert_int_eq(meta_image_partition_count(f.img), 5);
    meta_record_t rm = {.type = META_REC_REMOVE_TOPIC};
    memcpy(rm.u.remove_topic, t->uuid, KL_UUID_LEN);
    fx_apply(&f, &rm);
    ck_assert_int_eq(meta_image_apply(f.img, &rm, f.offset), KL_EUNKNOWNPARTITION);
    ck_assert_ptr_null(meta_image_topic(f.img, "gone"));
    ck_assert_int_eq(meta_image_partition_count(f.img), 2);
    ck_assert_int_eq(meta_image_topic_count(f.img), 1);
    ck_assert_ptr_nonnull(meta_image_topic(f.img, "keep"));
    t = fx_create(&f, "gone", 1, 1); /* the name is free again, its configs did not survive */
    ck_assert_int_eq(t->n_configs, 0);
    ck_assert_ptr_null(meta_image_config(f.img, t, META_CFG_RETENTION_MS));
    fx_free(&f);
}
END_TEST

START_TEST(topic_configs_override_cluster_configs_and_deletes_of_absent_keys_are_no_ops)
{
    fx_t f;
    fx_init(&f);
    const meta_topic_t *t = fx_topic_raw(&f, "t", 1);
    meta_record_t c = {.type = META_REC_CONFIG, .u.config = {.resource = META_CONFIG_CLUSTER}};
    strcpy(c.u.config.key, META_CFG_UNCLEAN_ELECTION);
    strcpy(c.u.config.value, "true");
    fx_apply(&f, &c);
    ck_assert(meta_image_config_bool(f.img, t, META_CFG_UNCLEAN_ELECTION, false));
    c.u.config.resource = META_CONFIG_TOPIC;
    memcpy(c.u.config.topic, t->uuid, KL_UUID_LEN);
    strcpy(c.u.config.value, "false");
    fx_apply(&f, &c);
    ck_assert(!meta_image_config_bool(f.img, t, META_CFG_UNCLEAN_ELECTION, true));
    ck_assert(meta_image_config_bool(f.img, NULL, META_CFG_UNCLEAN_ELECTION, false));
    c.u.config.remove = true;
    fx_apply(&f, &c);
    fx_apply(&f, &c);
    ck_assert(meta_image_config_bool(f.img, t, META_CFG_UNCLEAN_ELECTION, false));
    ck_assert_int_eq(meta_image_config_int(f.img, t, META_CFG_RETENTION_MS, 604800000), 604800000);
    fx_uuid(c.u.config.topic, 99);
    ck_assert_int_eq(meta_image_apply(f.img, &c, f.offset), KL_EUNKNOWNPARTITION);
    fx_free(&f);
}
END_TEST

START_TEST(config_count_is_bounded)
{
    fx_t f;
    fx_init(&f);
    meta_record_t c = {.type = META_REC_CONFIG, .u.config = {.resource = META_CONFIG_CLUSTER}};
    for (int i = 0; i < META_MAX_CONFIGS; i++) {
        snprintf(c.u.config.key, sizeof c.u.config.key, "k%02d", i);
        fx_apply(&f, &c);
    }
    strcpy(c.u.config.key, "one.too.many");
    ck_assert_int_eq(meta_image_apply(f.img, &c, f.offset), KL_ETOOBIG);
    strcpy(c.u.config.key, "k03"); /* replacing needs no room */
    strcpy(c.u.config.value, "x");
    fx_apply(&f, &c);
    ck_assert_int_eq(meta_image_cluster_config_count(f.img), META_MAX_CONFIGS);
    ck_assert_str_eq(meta_image_cluster_config_at(f.img, 3)->value, "x");
    fx_free(&f);
}
END_TEST

START_TEST(producer_id_blocks_may_not_overlap)
{
    fx_t f;
    fx_init(&f);
    ck_assert_int_eq(meta_image_next_producer_id(f.img), 0);
    meta_record_t b = {.type = META_REC_PRODUCER_IDS, .u.producer_ids = {1, 0, 1000}};
    fx_apply(&f, &b);
    ck_assert_int_eq(meta_image_next_producer_id(f.img), 1000);
    b.u.producer_ids.first_id = 999;
    ck_assert_int_eq(meta_image_apply(f.img, &b, f.offset), KL_ESTATE);
    b.u.producer_ids.first_id = 5000; /* gaps are harmless */
    fx_apply(&f, &b);
    ck_assert_int_eq(meta_image_next_producer_id(f.img), 6000);
    fx_free(&f);
}
END_TEST

/* An image with every kind of state: brokers in each state with racks and
 * several listeners, topics with configs and moved partitions, cluster
 * configs, a producer-id block. */
static void build_rich_image(fx_t *f)
{
    for (int i = 1; i <= 4; i++) fx_add_broker(f, i * 10, i % 2 ? "rack-a" : "rack-b");
    meta_listener_t ls[2];
    meta_listener_set(&ls[0], "PLAINTEXT", "b5.example", 9092);
    meta_listener_set(&ls[1], "SSL", "b5.example", 9093);
    meta_register_req_t req = {.broker_id = 50, .listeners = ls, .n_listeners = 2, .rack = "rack-c"};
    fx_uuid(req.incarnation, 5);
    ck_assert_int_eq(meta_decide_register(f->img, &req, &f->cfg, &f->d), 0);
    fx_commit(f); /* stays fenced */
    fx_create(f, "orders", 6, 3);
    meta_config_kv_t kv[] = {{META_CFG_RETENTION_MS, "60000"}, {META_CFG_MIN_INSYNC_REPLICAS, "2"}};
    meta_create_topic_req_t ct = {.name = "audit.log", .partitions = 2, .replication_factor = 2, .configs = kv, .n_configs = 2};
    fx_uuid(ct.uuid, 777);
    ck_assert_int_eq(meta_decide_create_topic(f->img, &ct, &f->cfg, &f->d), 0);
    fx_commit(f);
    ck_assert_int_eq(fx_heartbeat(f, 30, false, true), 0); /* broker 30: controlled shutdown begins */
    fx_commit(f);
    ck_assert_int_eq(fx_heartbeat(f, 20, true, false), 0); /* broker 20 fenced on request */
    fx_commit(f);
    meta_config_kv_t cl[] = {{META_CFG_UNCLEAN_ELECTION, "true"}};
    meta_alter_configs_req_t ac = {.resource = META_CONFIG_CLUSTER, .ops = cl, .n_ops = 1};
    ck_assert_int_eq(meta_decide_alter_configs(f->img, &ac, &f->cfg, &f->d), 0);
    fx_commit(f);
    ck_assert_int_eq(meta_decide_producer_ids(f->img, 10, meta_image_broker(f->img, 10)->epoch, &f->cfg, &f->d), 0);
    fx_commit(f);
    ck_assert_int_eq(meta_image_broker(f->img, 30)->state, META_BROKER_SHUTTING_DOWN);
    ck_assert_int_eq(meta_image_broker(f->img, 20)->state, META_BROKER_FENCED);
}

START_TEST(snapshot_records_rebuild_an_equal_image)
{
    fx_t f;
    fx_init(&f);
    build_rich_image(&f);
    meta_records_t recs;
    meta_records_init(&recs);
    ck_assert_int_eq(meta_image_to_records(f.img, &recs), 0);
    meta_image_t *copy = meta_image_new();
    for (int i = 0; i < recs.n; i++) /* offsets unrelated to the originals: epochs travel in the records */
        ck_assert_int_eq(meta_image_apply(copy, &recs.recs[i], 1000000 + i), 0);
    ck_assert(meta_image_equal(f.img, copy));
    ck_assert(meta_image_equal(copy, f.img));
    ck_assert_int_eq(meta_image_broker(copy, 50)->n_listeners, 2);
    ck_assert_str_eq(meta_image_config(copy, meta_image_topic(copy, "audit.log"), META_CFG_MIN_INSYNC_REPLICAS), "2");
    ck_assert_int_eq(meta_image_next_producer_id(copy), 1000);

    /* The snapshot of the rebuilt image is the same record list. */
    meta_records_t again;
    meta_records_init(&again);
    ck_assert_int_eq(meta_image_to_records(copy, &again), 0);
    ck_assert_int_eq(again.n, recs.n);
    for (int i = 0; i < recs.n; i++) ck_assert_int_eq(again.recs[i].type, recs.recs[i].type);
    meta_records_free(&again);
    meta_records_free(&recs);
    meta_image_free(copy);

    meta_image_t *clone;
    ck_assert_int_eq(meta_image_clone(f.img, &clone), 0);
    ck_assert(meta_image_equal(f.img, clone));
    meta_image_free(clone);
    fx_free(&f);
}
END_TEST

START_TEST(an_empty_image_snapshots_to_no_records)
{
    meta_image_t *img = meta_image_new();
    meta_records_t recs;
    meta_records_init(&recs);
    ck_assert_int_eq(meta_image_to_records(img, &recs), 0);
    ck_assert_int_eq(recs.n, 0);
    meta_records_free(&recs);
    meta_image_free(img);
}
END_TEST

START_TEST(equality_notices_any_difference)
{
    fx_t f;
    fx_init(&f);
    build_rich_image(&f);
    const meta_topic_t *orders = meta_image_topic(f.img, "orders");
    const meta_partition_t *p0 = &orders->parts[0];
    meta_record_t diffs[6];
    int n = 0;
    diffs[n] = change_of(orders, 0); /* leader moves to another ISR member */
    diffs[n++].u.change.leader = p0->isr[p0->n_isr - 1] != p0->leader ? p0->isr[p0->n_isr - 1] : p0->isr[0];
    diffs[n++] = broker_ref(META_REC_FENCE_BROKER, 10, meta_image_broker(f.img, 10)->epoch);
    diffs[n] = (meta_record_t){.type = META_REC_CONFIG, .u.config = {.resource = META_CONFIG_CLUSTER}};
    strcpy(diffs[n].u.config.key, META_CFG_RETENTION_MS), strcpy(diffs[n++].u.config.value, "5");
    diffs[n] = (meta_record_t){.type = META_REC_CONFIG, .u.config = {.resource = META_CONFIG_TOPIC, .remove = true}};
    memcpy(diffs[n].u.config.topic, meta_image_topic(f.img, "audit.log")->uuid, KL_UUID_LEN);
    strcpy(diffs[n++].u.config.key, META_CFG_MIN_INSYNC_REPLICAS);
    diffs[n++] = (meta_record_t){.type = META_REC_PRODUCER_IDS, .u.producer_ids = {10, 1000, 1000}};
    diffs[n] = (meta_record_t){.type = META_REC_REMOVE_TOPIC};
    memcpy(diffs[n++].u.remove_topic, orders->uuid, KL_UUID_LEN);
    for (int i = 0; i < n; i++) {
        meta_image_t *other;
        ck_assert_int_eq(meta_image_clone(f.img, &other), 0);
        ck_assert(meta_image_equal(f.img, other));
        ck_assert_int_eq(meta_image_apply(other, &diffs[i], f.offset), 0);
        ck_assert_msg(!meta_image_equal(f.img, other), "difference %d (%s) unnoticed", i,
                      meta_record_type_name(diffs[i].type));
        meta_image_free(other);
    }
    fx_free(&f);
}
END_TEST

START_TEST(record_lists_hold_deep_copies)
{
    meta_listener_t l[2];
    meta_listener_set(&l[0], "A", "host-a", 1);
    meta_listener_set(&l[1], "B", "host-b", 2);
    meta_config_t c = {"retention.ms", "5"};
    meta_record_t reg = {.type = META_REC_REGISTER_BROKER, .u.reg = {.broker_id = 1, .listeners = l, .n_listeners = 2}};
    meta_record_t top = {.type = META_REC_TOPIC, .u.topic = {.name = "t", .configs = &c, .n_configs = 1}};
    meta_records_t list;
    meta_records_init(&list);
    ck_assert_int_eq(meta_records_push(&list, &reg), 0);
    ck_assert_int_eq(meta_records_push(&list, &top), 0);
    strcpy(l[1].host, "changed");
    strcpy(c.value, "changed");
    ck_assert_str_eq(list.recs[0].u.reg.listeners[1].host, "host-b");
    ck_assert_str_eq(list.recs[1].u.topic.configs[0].value, "5");
    ck_assert_ptr_ne(list.recs[0].u.reg.listeners, l);
    /* A malformed count copies no array, so the list never frees the caller's. */
    reg.u.reg.n_listeners = META_MAX_LISTENERS + 5;
    ck_assert_int_eq(meta_records_push(&list, &reg), 0);
    ck_assert_ptr_null(list.recs[2].u.reg.listeners);
    meta_records_clear(&list);
    ck_assert_int_eq(list.n, 0);
    ck_assert_int_eq(meta_records_push(&list, &top), 0);
    meta_records_free(&list);
}
END_TEST

/* Deterministic xorshift for the random-record test. */
static uint32_t rnd(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

/* Fields mostly in a small range (so records often apply), sometimes anything. */
static int32_t small(uint32_t *x)
{
    return rnd(x) % 8 == 0 ? (int32_t)rnd(x) : (int32_t)(rnd(x) % 6) - 1;
}

START_TEST(random_records_never_break_apply_or_the_snapshot_round_trip)
{
    uint32_t x = 2463534242u;
    meta_image_t *img = meta_image_new();
    meta_listener_t ls[META_MAX_LISTENERS];
    meta_config_t cs[META_MAX_CONFIGS];
    int applied[META_REC_TYPE_MAX + 2] = {0};
    for (int i = 0; i < 20000; i++) {
        meta_record_t r;
        uint8_t *raw = (uint8_t *)&r;
        for (size_t k = 0; k < sizeof r; k++) raw[k] = rnd(&x) % 4 ? (uint8_t)(rnd(&x) % 3) : (uint8_t)rnd(&x);
        r.type = (meta_record_type_t)(rnd(&x) % (META_REC_TYPE_MAX + 2));
        for (size_t k = 0; k < sizeof ls; k++) ((uint8_t *)ls)[k] = rnd(&x) % 3 ? 'a' : (uint8_t)rnd(&x);
        for (size_t k = 0; k < sizeof cs; k++) ((uint8_t *)cs)[k] = rnd(&x) % 3 ? 'k' : (uint8_t)rnd(&x);
        for (int k = 0; k < META_MAX_LISTENERS; k++) { /* terminated most of the time */
            ls[k].host[rnd(&x) % (rnd(&x) % 8 ? 4 : sizeof ls[k].host)] = '\0';
            snprintf(ls[k].name, sizeof ls[k].name, "L%d", k);
        }
        for (int k = 0; k < META_MAX_CONFIGS; k++) {
            cs[k].key[rnd(&x) % (rnd(&x) % 8 ? 4 : sizeof cs[k].key)] = '\0';
            cs[k].value[rnd(&x) % (rnd(&x) % 8 ? 4 : sizeof cs[k].value)] = '\0';
        }
        uint8_t uuid[KL_UUID_LEN];
        fx_uuid(uuid, (int)(rnd(&x) % 3) + 1);
        switch (r.type) {
        case META_REC_REGISTER_BROKER:
            r.u.reg.listeners = ls;
            r.u.reg.n_listeners = small(&x);
            r.u.reg.broker_id = small(&x);
            r.u.reg.broker_epoch = small(&x);
            break;
        case META_REC_FENCE_BROKER: case META_REC_UNFENCE_BROKER: case META_REC_SHUTDOWN_BROKER:
            r.u.broker.broker_id = small(&x);
            r.u.broker.broker_epoch = small(&x);
            if (meta_image_broker(img, r.u.broker.broker_id) && rnd(&x) % 2) /* often the current incarnation */
                r.u.broker.broker_epoch = meta_image_broker(img, r.u.broker.broker_id)->epoch;
            break;
        case META_REC_TOPIC:
            r.u.topic.configs = cs;
            r.u.topic.n_configs = small(&x);
            memcpy(r.u.topic.uuid, uuid, KL_UUID_LEN);
            snprintf(r.u.topic.name, sizeof r.u.topic.name, "t%d", (int)(rnd(&x) % 4));
            break;
        case META_REC_PARTITION:
            for (int k = 0; k < META_MAX_REPLICAS; k++) {
                r.u.partition.replicas[k] = (int32_t)(rnd(&x) % 5);
                r.u.partition.isr[k] = (int32_t)(rnd(&x) % 5);
            }
            r.u.partition.leader_epoch = r.u.partition.partition_epoch = 0;
            memcpy(r.u.partition.topic, uuid, KL_UUID_LEN);
            r.u.partition.partition = rnd(&x) % 2 ? (int32_t)(rnd(&x) % 3) : small(&x);
            r.u.partition.n_replicas = small(&x);
            r.u.partition.n_isr = small(&x);
            r.u.partition.leader = small(&x);
            if (rnd(&x) % 4) { /* mostly a well-formed ISR: a prefix of the replicas, led by its first */
                memcpy(r.u.partition.isr, r.u.partition.replicas, sizeof r.u.partition.isr);
                r.u.partition.leader = rnd(&x) % 2 ? r.u.partition.isr[0] : META_NO_LEADER;
            }
            break;
        case META_REC_PARTITION_CHANGE:
            for (int k = 0; k < META_MAX_REPLICAS; k++) {
                r.u.change.replicas[k] = (int32_t)(rnd(&x) % 5);
                r.u.change.isr[k] = (int32_t)(rnd(&x) % 5);
            }
            memcpy(r.u.change.topic, uuid, KL_UUID_LEN);
            r.u.change.partition = rnd(&x) % 2 ? (int32_t)(rnd(&x) % 3) : small(&x);
            r.u.change.n_replicas = small(&x);
            r.u.change.n_isr = small(&x);
            r.u.change.leader = small(&x) - 1;
            const meta_partition_t *cur = meta_image_partition(img, uuid, r.u.change.partition);
            if (cur && rnd(&x) % 2) { /* mostly a change that can apply: ISR down to one replica */
                r.u.change.n_replicas = -1;
                r.u.change.n_isr = 1;
                r.u.change.isr[0] = cur->replicas[rnd(&x) % (uint32_t)cur->n_replicas];
                r.u.change.leader = rnd(&x) % 2 ? r.u.change.isr[0] : META_NO_LEADER;
            }
            break;
        case META_REC_REMOVE_TOPIC:
            memcpy(r.u.remove_topic, uuid, KL_UUID_LEN);
            break;
        case META_REC_CONFIG:
            r.u.config.resource = (meta_config_resource_t)(rnd(&x) % 3);
            if (r.u.config.resource == META_CONFIG_TOPIC) memcpy(r.u.config.topic, uuid, KL_UUID_LEN);
            if (r.u.config.resource == META_CONFIG_CLUSTER) memset(r.u.config.topic, 0, KL_UUID_LEN);
            snprintf(r.u.config.key, sizeof r.u.config.key, "k%d", (int)(rnd(&x) % 20));
            r.u.config.remove = rnd(&x) % 4 == 0;
            break;
        case META_REC_PRODUCER_IDS:
            r.u.producer_ids.size = small(&x);
            break;
        default:
            break;
        }
        if (meta_image_apply(img, &r, i) == 0) applied[r.type]++;
        if (i % 500 == 0) {
            meta_image_t *copy;
            ck_assert_int_eq(meta_image_clone(img, &copy), 0);
            ck_assert(meta_image_equal(img, copy));
            meta_image_free(copy);
        }
    }
    /* Every kind of record got through sometimes, so the invariants were exercised. */
    for (int t = META_REC_NO_OP; t <= META_REC_TYPE_MAX; t++)
        ck_assert_msg(applied[t] > 0, "no %s record ever applied", meta_record_type_name(t));
    meta_image_free(img);
}
END_TEST

static Suite *metadata_suite(void)
{
    Suite *s = suite_create("metadata");
    TCase *tc = tcase_create("image");
    tcase_add_test(tc, topic_names_follow_kafka_rules);
    tcase_add_test(tc, config_values_are_validated_and_made_canonical);
    tcase_add_test(tc, records_outside_their_limits_are_refused_with_a_reason);
    tcase_add_test(tc, registration_epoch_is_the_record_offset_and_a_new_incarnation_starts_fenced);
    tcase_add_test(tc, broker_state_records_for_another_incarnation_are_refused);
    tcase_add_test(tc, a_new_incarnation_cannot_replace_an_unfenced_broker);
    tcase_add_test(tc, repeating_a_broker_state_change_is_a_no_op_but_impossible_transitions_are_refused);
    tcase_add_test(tc, partition_change_bumps_the_leader_epoch_on_leader_change_and_the_partition_epoch_always);
    tcase_add_test(tc, a_change_that_would_break_partition_invariants_is_refused_and_changes_nothing);
    tcase_add_test(tc, partitions_are_created_in_order_for_known_topics_on_registered_brokers);
    tcase_add_test(tc, duplicate_topic_names_or_uuids_are_refused);
    tcase_add_test(tc, topic_removal_drops_its_partitions_and_configs_and_frees_the_name);
    tcase_add_test(tc, topic_configs_override_cluster_configs_and_deletes_of_absent_keys_are_no_ops);
    tcase_add_test(tc, config_count_is_bounded);
    tcase_add_test(tc, producer_id_blocks_may_not_overlap);
    tcase_add_test(tc, snapshot_records_rebuild_an_equal_image);
    tcase_add_test(tc, an_empty_image_snapshots_to_no_records);
    tcase_add_test(tc, equality_notices_any_difference);
    tcase_add_test(tc, record_lists_hold_deep_copies);
    tcase_add_test(tc, random_records_never_break_apply_or_the_snapshot_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kl_check_run(metadata_suite());
}
