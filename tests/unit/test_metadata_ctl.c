/* test_metadata_ctl.c — controller decisions: brokers, sessions, fencing and elections, topics, configs, AlterPartition, producer ids. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "keel/err.h"
#include "keel/meta.h"
#include "keel/meta_ctl.h"
#include "unit/kl_check.h"
#include "unit/test_metadata_fixture.h"

static const int32_t R123[] = {1, 2, 3, -1}, R312[] = {3, 1, 2, -1}, R213[] = {2, 1, 3, -1}, R234[] = {2, 3, 4, -1},
                     R12[] = {1, 2, -1}, R13[] = {1, 3, -1}, R23[] = {2, 3, -1}, R1[] = {1, -1}, R2[] = {2, -1},
                     R3[] = {3, -1};

static int count_type(const fx_t *f, meta_record_type_t type)
{
    int n = 0;
    for (int i = 0; i < f->d.records.n; i++) n += f->d.records.recs[i].type == type;
    return n;
}

static int refused(const fx_t *f, int rc)
{
    ck_assert_int_eq(f->d.records.n, 0);
    ck_assert_msg(f->d.error[0], "a refusal says why");
    return rc;
}

/* Three active brokers and topic "t" laid out by hand:
 *   t-0 replicas [1,2,3] isr [1,2,3] leader 1
 *   t-1 replicas [3,1,2] isr [1,2]   leader 1
 *   t-2 replicas [2,1,3] isr [2,1,3]... stored in replica order [2,1,3], leader 2
 *   t-3 replicas [2,3,4] isr [2,3]   leader 2   (broker 4 registered, fenced) */
static const meta_topic_t *layout(fx_t *f)
{
    fx_add_brokers(f, 3);
    ck_assert_int_eq(fx_register(f, 4, 4, NULL), 0);
    fx_commit(f);
    const meta_topic_t *t = fx_topic_raw(f, "t", 1);
    fx_partition_raw(f, t, R123, R123, 1);
    fx_partition_raw(f, t, R312, R12, 1);
    fx_partition_raw(f, t, R213, R213, 2);
    fx_partition_raw(f, t, R234, R23, 2);
    return t;
}

/* ---- brokers ------------------------------------------------------------------- */

START_TEST(a_new_incarnation_registers_fenced_with_the_record_offset_as_epoch)
{
    fx_t f;
    fx_init(&f);
    ck_assert_int_eq(fx_register(&f, 5, 1, "r"), 0);
    ck_assert_int_eq(f.d.records.n, 1);
    ck_assert_int_eq(f.d.records.recs[0].type, META_REC_REGISTER_BROKER);
    ck_assert_int_eq(f.d.records.recs[0].u.reg.broker_epoch, META_EPOCH_FROM_OFFSET);
    f.offset = 17;
    fx_commit(&f);
    ck_assert_int_eq(meta_image_broker(f.img, 5)->epoch, 17);
    ck_assert_int_eq(meta_image_broker(f.img, 5)->state, META_BROKER_FENCED);
    fx_free(&f);
}
END_TEST

START_TEST(the_same_incarnation_registering_again_is_a_retry_without_records)
{
    fx_t f;
    fx_init(&f);
    ck_assert_int_eq(fx_register(&f, 5, 1, "r"), 0);
    fx_commit(&f);
    ck_assert_int_eq(fx_register(&f, 5, 1, "r"), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert_int_eq(refused(&f, fx_register(&f, 5, 1, "other-rack")), KL_EINVAL);
    fx_free(&f);
}
END_TEST

START_TEST(another_incarnation_waits_while_the_old_one_is_unfenced)
{
    fx_t f;
    fx_init(&f);
    fx_add_broker(&f, 1, NULL);
    ck_assert_int_eq(refused(&f, fx_register(&f, 1, 2, NULL)), KL_EEXIST);
    ck_assert_int_eq(fx_heartbeat(&f, 1, true, false), 0); /* fenced, e.g. by its session */
    fx_commit(&f);
    ck_assert_int_eq(fx_register(&f, 1, 2, NULL), 0);
    ck_assert_int_eq(f.d.records.n, 1);
    fx_commit(&f);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->epoch, f.offset - 1);
    fx_free(&f);
}
END_TEST

START_TEST(malformed_registrations_are_refused)
{
    fx_t f;
    fx_init(&f);
    meta_listener_t l;
    meta_listener_set(&l, "PLAINTEXT", "h", 1);
    meta_register_req_t req = {.broker_id = 1, .listeners = &l, .n_listeners = 0};
    fx_uuid(req.incarnation, 1);
    ck_assert_int_eq(refused(&f, meta_decide_register(f.img, &req, &f.cfg, &f.d)), KL_EINVAL);
    req.n_listeners = 1;
    req.broker_id = -1;
    ck_assert_int_eq(refused(&f, meta_decide_register(f.img, &req, &f.cfg, &f.d)), KL_EINVAL);
    req.broker_id = 1;
    char rack[META_MAX_RACK_LEN + 2];
    memset(rack, 'r', sizeof rack - 1);
    rack[sizeof rack - 1] = '\0';
    req.rack = rack;
    ck_assert_int_eq(refused(&f, meta_decide_register(f.img, &req, &f.cfg, &f.d)), KL_EINVAL);
    req.rack = NULL;
    memset(req.incarnation, 0, sizeof req.incarnation);
    ck_assert_int_eq(refused(&f, meta_decide_register(f.img, &req, &f.cfg, &f.d)), KL_EINVAL);
    fx_free(&f);
}
END_TEST

START_TEST(a_heartbeat_unfences_only_once_caught_up_to_the_registration)
{
    fx_t f;
    fx_init(&f);
    f.offset = 10;
    ck_assert_int_eq(fx_register(&f, 1, 1, NULL), 0);
    fx_commit(&f);
    meta_heartbeat_req_t hb = {.broker_id = 1, .broker_epoch = 10, .metadata_offset = 9};
    ck_assert_int_eq(meta_decide_heartbeat(f.img, &hb, &f.cfg, &f.d, &f.reply), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert(f.reply.fenced);
    hb.metadata_offset = 10;
    hb.want_fence = true; /* not ready yet: stays fenced */
    ck_assert_int_eq(meta_decide_heartbeat(f.img, &hb, &f.cfg, &f.d, &f.reply), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    hb.want_fence = false;
    ck_assert_int_eq(meta_decide_heartbeat(f.img, &hb, &f.cfg, &f.d, &f.reply), 0);
    ck_assert_int_eq(f.d.records.n, 1);
    ck_assert_int_eq(f.d.records.recs[0].type, META_REC_UNFENCE_BROKER);
    ck_assert(!f.reply.fenced);
    fx_commit(&f);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->state, META_BROKER_ACTIVE);
    ck_assert_int_eq(meta_decide_heartbeat(f.img, &hb, &f.cfg, &f.d, &f.reply), 0); /* steady state */
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert(!f.reply.fenced && !f.reply.shutting_down && !f.reply.shutdown_now);
    fx_free(&f);
}
END_TEST

START_TEST(a_heartbeat_from_an_old_epoch_or_unknown_broker_is_refused)
{
    fx_t f;
    fx_init(&f);
    fx_add_broker(&f, 1, NULL);
    meta_heartbeat_req_t hb = {.broker_id = 1, .broker_epoch = meta_image_broker(f.img, 1)->epoch - 1, .metadata_offset = 100};
    ck_assert_int_eq(refused(&f, meta_decide_heartbeat(f.img, &hb, &f.cfg, &f.d, &f.reply)), KL_EFENCED);
    hb.broker_id = 2;
    ck_assert_int_eq(refused(&f, meta_decide_heartbeat(f.img, &hb, &f.cfg, &f.d, &f.reply)), KL_ENOENT);
    fx_free(&f);
}
END_TEST

START_TEST(fencing_removes_the_broker_from_every_isr_and_reelects_in_replica_order)
{
    fx_t f;
    fx_init(&f);
    const meta_topic_t *t = layout(&f);
    static const int32_t R321[] = {3, 2, 1, -1};
    fx_partition_raw(&f, t, R321, R321, 2); /* t-4: led by 2, which is not first in replica order */
    ck_assert_int_eq(fx_heartbeat(&f, 1, true, false), 0);
    ck_assert(f.reply.fenced);
    /* partitions first, the fence last: any committed prefix leaves no fenced leader */
    ck_assert_int_eq(f.d.records.recs[f.d.records.n - 1].type, META_REC_FENCE_BROKER);
    ck_assert_int_eq(count_type(&f, META_REC_PARTITION_CHANGE), 4); /* t-3 does not involve broker 1 */
    fx_commit(&f);
    const meta_partition_t *p = t->parts;
    ck_assert_int_eq(p[0].leader, 2); /* next in replica order */
    ck_assert(fx_isr_is(&p[0], R23));
    ck_assert_int_eq(p[0].leader_epoch, 1);
    ck_assert_int_eq(p[0].partition_epoch, 1);
    ck_assert_int_eq(p[1].leader, 2); /* 3 comes first in the replicas but is not in the ISR */
    ck_assert(fx_isr_is(&p[1], R2));
    ck_assert_int_eq(p[2].leader, 2); /* a follower was fenced: the leader stays, its epoch too */
    ck_assert_int_eq(p[2].leader_epoch, 0);
    ck_assert_int_eq(p[2].partition_epoch, 1);
    ck_assert_int_eq(p[2].n_isr, 2);
    ck_assert_int_eq(p[2].isr[0], 2);
    ck_assert_int_eq(p[2].isr[1], 3);
    ck_assert_int_eq(p[3].partition_epoch, 0);
    ck_assert_int_eq(p[4].leader, 2); /* a usable leader keeps leading */
    ck_assert_int_eq(p[4].leader_epoch, 0);
    ck_assert(fx_noted(&f, "t-0: leader 1 -> 2"));
    fx_free(&f);
}
END_TEST

START_TEST(fencing_the_last_isr_member_leaves_the_partition_offline_without_unclean_election)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 2);
    const meta_topic_t *t = fx_topic_raw(&f, "t", 1);
    fx_partition_raw(&f, t, R12, R1, 1);
    ck_assert_int_eq(fx_heartbeat(&f, 1, true, false), 0);
    ck_assert(!f.d.unclean);
    fx_commit(&f);
    ck_assert_int_eq(t->parts[0].leader, META_NO_LEADER);
    ck_assert(fx_isr_is(&t->parts[0], R1)); /* kept: it holds every committed record */
    ck_assert_int_eq(t->parts[0].leader_epoch, 1);
    ck_assert(fx_noted(&f, "offline"));
    fx_free(&f);
}
END_TEST

/* Fences broker 1, the only ISR member of t-0 (replicas [1,2]); returns the
 * decision's unclean flag after committing it. */
static bool fence_last_isr_member(fx_t *f, const char *topic_unclean, const char *cluster_unclean, bool static_unclean)
{
    fx_add_brokers(f, 2);
    const meta_topic_t *t = fx_topic_raw(f, "t", 1);
    fx_partition_raw(f, t, R12, R1, 1);
    f->cfg.unclean_leader_election_enable = static_unclean;
    meta_config_kv_t kv = {META_CFG_UNCLEAN_ELECTION, NULL};
    meta_alter_configs_req_t req = {.ops = &kv, .n_ops = 1};
    if (cluster_unclean) {
        kv.value = cluster_unclean;
        req.resource = META_CONFIG_CLUSTER;
        ck_assert_int_eq(meta_decide_alter_configs(f->img, &req, &f->cfg, &f->d), 0);
        fx_commit(f);
    }
    if (topic_unclean) {
        kv.value = topic_unclean;
        req.resource = META_CONFIG_TOPIC;
        req.topic = "t";
        ck_assert_int_eq(meta_decide_alter_configs(f->img, &req, &f->cfg, &f->d), 0);
        fx_commit(f);
    }
    ck_assert_int_eq(fx_heartbeat(f, 1, true, false), 0);
    bool unclean = f->d.unclean;
    fx_commit(f);
    return unclean;
}

START_TEST(fencing_the_last_isr_member_elects_a_live_replica_with_unclean_election_and_says_so_loudly)
{
    struct { const char *topic, *cluster; bool stat, expect; } cases[] = {
        {"true", NULL, false, true},    {NULL, "true", false, true},  {NULL, NULL, true, true},
        {"false", "true", true, false}, {NULL, "false", true, false}, {NULL, NULL, false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx_t f;
        fx_init(&f);
        bool unclean = fence_last_isr_member(&f, cases[i].topic, cases[i].cluster, cases[i].stat);
        const meta_partition_t *p = fx_part(&f, "t", 0);
        ck_assert_msg(unclean == cases[i].expect, "case %zu", i);
        if (cases[i].expect) {
            ck_assert_int_eq(p->leader, 2);
            ck_assert(fx_isr_is(p, R2));
            ck_assert(fx_noted(&f, "UNCLEAN leader election for t-0"));
            ck_assert_int_eq(f.d.notes[0].level, 3);
        } else {
            ck_assert_int_eq(p->leader, META_NO_LEADER);
        }
        fx_free(&f);
    }
}
END_TEST

START_TEST(an_offline_partition_returns_when_its_isr_member_is_unfenced)
{
    fx_t f;
    fx_init(&f);
    fence_last_isr_member(&f, NULL, NULL, false);
    ck_assert_int_eq(fx_heartbeat(&f, 1, false, false), 0); /* same incarnation, caught up */
    ck_assert_int_eq(f.d.records.recs[0].type, META_REC_UNFENCE_BROKER);
    ck_assert_int_eq(count_type(&f, META_REC_PARTITION_CHANGE), 1);
    fx_commit(&f);
    const meta_partition_t *p = fx_part(&f, "t", 0);
    ck_assert_int_eq(p->leader, 1);
    ck_assert_int_eq(p->leader_epoch, 2);
    ck_assert(fx_isr_is(p, R1));
    /* A restarted broker (new incarnation) is elected the same way. */
    ck_assert_int_eq(fx_heartbeat(&f, 1, true, false), 0);
    fx_commit(&f);
    ck_assert_int_eq(fx_register(&f, 1, 50, NULL), 0);
    fx_commit(&f);
    ck_assert_int_eq(fx_part(&f, "t", 0)->leader, META_NO_LEADER);
    ck_assert_int_eq(fx_heartbeat(&f, 1, false, false), 0);
    fx_commit(&f);
    ck_assert_int_eq(fx_part(&f, "t", 0)->leader, 1);
    fx_free(&f);
}
END_TEST

START_TEST(when_every_isr_member_is_down_the_first_to_return_leads)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    const meta_topic_t *t = fx_topic_raw(&f, "t", 1);
    fx_partition_raw(&f, t, R123, R12, 1);
    meta_sessions_t s;
    meta_sessions_init(&s);
    ck_assert_int_eq(meta_sessions_heartbeat(&s, 3, 0, &f.cfg), 0);
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 1, &f.cfg, &f.d), 0); /* 1 and 2 at once */
    ck_assert_int_eq(count_type(&f, META_REC_FENCE_BROKER), 2);
    fx_commit(&f);
    ck_assert_int_eq(t->parts[0].leader, META_NO_LEADER);
    ck_assert(fx_isr_is(&t->parts[0], R12));
    ck_assert_int_eq(fx_heartbeat(&f, 2, false, false), 0);
    fx_commit(&f);
    ck_assert_int_eq(t->parts[0].leader, 2);
    ck_assert(fx_isr_is(&t->parts[0], R2));
    meta_sessions_free(&s);
    fx_free(&f);
}
END_TEST

START_TEST(every_prefix_of_a_fencing_decision_applies_and_leaves_no_fenced_leader)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 5);
    fx_create(&f, "a", 10, 3);
    fx_create(&f, "b", 7, 2);
    meta_sessions_t s;
    meta_sessions_init(&s);
    for (int32_t id = 1; id <= 5; id += 2) ck_assert_int_eq(meta_sessions_heartbeat(&s, id, 0, &f.cfg), 0);
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 1, &f.cfg, &f.d), 0); /* 2 and 4 expire */
    ck_assert_int_gt(f.d.records.n, 2);
    for (int k = 0; k <= f.d.records.n; k++) {
        meta_image_t *img;
        ck_assert_int_eq(meta_image_clone(f.img, &img), 0);
        for (int i = 0; i < k; i++) ck_assert_int_eq(meta_image_apply(img, &f.d.records.recs[i], 1000 + i), 0);
        for (int ti = 0; ti < meta_image_topic_count(img); ti++) {
            const meta_topic_t *t = meta_image_topic_at(img, ti);
            for (int p = 0; p < t->n_parts; p++) {
                int32_t l = t->parts[p].leader;
                ck_assert(l == META_NO_LEADER || meta_image_broker(img, l)->state == META_BROKER_ACTIVE);
            }
        }
        meta_image_free(img);
    }
    fx_commit(&f);
    ck_assert_int_eq(meta_image_broker(f.img, 2)->state, META_BROKER_FENCED);
    ck_assert_int_eq(meta_image_broker(f.img, 4)->state, META_BROKER_FENCED);
    meta_sessions_free(&s);
    fx_free(&f);
}
END_TEST

START_TEST(controlled_shutdown_moves_leaderships_away_then_fences)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    fx_create(&f, "t", 6, 3);
    fx_create(&f, "solo", 3, 1);
    ck_assert_int_eq(fx_heartbeat(&f, 1, false, true), 0);
    ck_assert(f.reply.shutting_down && !f.reply.shutdown_now && !f.reply.fenced);
    ck_assert_int_eq(f.d.records.recs[0].type, META_REC_SHUTDOWN_BROKER);
    fx_commit(&f);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->state, META_BROKER_SHUTTING_DOWN);
    for (int p = 0; p < 6; p++) {
        const meta_partition_t *part = fx_part(&f, "t", p);
        ck_assert_int_ne(part->leader, 1);
        ck_assert_int_eq(part->n_isr, 2);
        for (int i = 0; i < part->n_isr; i++) ck_assert_int_ne(part->isr[i], 1);
    }
    for (int p = 0; p < 3; p++) /* single-replica partitions it led can only go offline */
        ck_assert_int_ne(fx_part(&f, "solo", p)->leader, 1);
    ck_assert_int_eq(fx_heartbeat(&f, 1, false, true), 0); /* nothing left to move: fence, go */
    ck_assert_int_eq(f.d.records.n, 1);
    ck_assert_int_eq(f.d.records.recs[0].type, META_REC_FENCE_BROKER);
    ck_assert(f.reply.shutdown_now && f.reply.fenced);
    fx_commit(&f);
    ck_assert_int_eq(meta_image_broker(f.img, 1)->state, META_BROKER_FENCED);
    /* A broker in controlled shutdown cannot be chosen for new topics. */
    ck_assert_int_eq(refused(&f, meta_decide_create_topic(f.img, &(meta_create_topic_req_t){.name = "x", .uuid = {9},
                                                                                     .partitions = 1, .replication_factor = 3},
                                                      &f.cfg, &f.d)),
                     KL_EINVAL);
    fx_free(&f);
}
END_TEST

START_TEST(a_controlled_shutdown_cut_short_after_its_first_record_resumes_moving_leaderships)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    fx_create(&f, "t", 3, 3);
    ck_assert_int_eq(fx_heartbeat(&f, 2, false, true), 0);
    fx_apply(&f, &f.d.records.recs[0]); /* only the SHUTDOWN record committed (leader died mid-batch) */
    ck_assert_int_eq(fx_heartbeat(&f, 2, false, true), 0);
    ck_assert(f.reply.shutting_down && !f.reply.shutdown_now);
    ck_assert_int_eq(count_type(&f, META_REC_FENCE_BROKER), 0);
    ck_assert_int_eq(count_type(&f, META_REC_PARTITION_CHANGE), 3);
    fx_commit(&f);
    ck_assert_int_eq(fx_heartbeat(&f, 2, false, true), 0);
    ck_assert(f.reply.shutdown_now);
    fx_free(&f);
}
END_TEST

START_TEST(a_fenced_broker_asking_to_shut_down_may_go_at_once)
{
    fx_t f;
    fx_init(&f);
    ck_assert_int_eq(fx_register(&f, 1, 1, NULL), 0);
    fx_commit(&f);
    ck_assert_int_eq(fx_heartbeat(&f, 1, false, true), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert(f.reply.shutdown_now && f.reply.fenced);
    fx_free(&f);
}
END_TEST

START_TEST(sessions_expire_after_the_timeout_or_soon_after_a_broken_connection)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    meta_sessions_t s;
    meta_sessions_init(&s);
    ck_assert_int_eq(meta_sessions_start_all(&s, f.img, 1000, &f.cfg), 0); /* one full session each */
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 9999, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert_int_eq(meta_sessions_heartbeat(&s, 2, 5000, &f.cfg), 0);
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 10000, &f.cfg, &f.d), 0);
    ck_assert_int_eq(count_type(&f, META_REC_FENCE_BROKER), 2);
    ck_assert(fx_noted(&f, "broker 1 fenced: session expired"));
    ck_assert(fx_noted(&f, "broker 3 fenced: session expired"));
    fx_commit(&f);
    ck_assert_int_eq(meta_image_broker(f.img, 2)->state, META_BROKER_ACTIVE);
    meta_sessions_disconnected(&s, 2, 10500, &f.cfg);
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 11499, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 11500, &f.cfg, &f.d), 0);
    ck_assert_int_eq(count_type(&f, META_REC_FENCE_BROKER), 1);
    fx_commit(&f);
    /* Fenced brokers do not expire again; a late disconnect cannot extend a deadline. */
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 99999, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    meta_sessions_free(&s);
    fx_free(&f);
}
END_TEST

START_TEST(a_broker_without_a_session_counts_as_expired)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 2);
    meta_sessions_t s;
    meta_sessions_init(&s);
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 0, &f.cfg, &f.d), 0);
    ck_assert_int_eq(count_type(&f, META_REC_FENCE_BROKER), 2);
    meta_sessions_free(&s);
    fx_free(&f);
}
END_TEST

/* ---- topics ------------------------------------------------------------------------ */

START_TEST(create_topic_assigns_active_brokers_and_starts_every_partition_at_epoch_zero)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 4);
    ck_assert_int_eq(fx_heartbeat(&f, 4, true, false), 0);
    fx_commit(&f);
    meta_create_topic_req_t req = {.name = "t", .partitions = 6, .replication_factor = 3};
    fx_uuid(req.uuid, 42);
    ck_assert_int_eq(meta_decide_create_topic(f.img, &req, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 7);
    ck_assert_int_eq(f.d.records.recs[0].type, META_REC_TOPIC);
    for (int i = 1; i < 7; i++) {
        const meta_partition_t *p = &f.d.records.recs[i].u.partition;
        ck_assert_int_eq(f.d.records.recs[i].type, META_REC_PARTITION);
        ck_assert_int_eq(p->partition, i - 1);
        ck_assert_int_eq(p->leader, p->replicas[0]);
        ck_assert_int_eq(p->n_isr, 3);
        ck_assert_int_eq(memcmp(p->isr, p->replicas, 3 * sizeof(int32_t)), 0);
        ck_assert_int_eq(p->leader_epoch, 0);
        ck_assert_int_eq(p->partition_epoch, 0);
        for (int r = 0; r < 3; r++) ck_assert_int_ne(p->replicas[r], 4);
    }
    fx_commit(&f);
    ck_assert_int_eq(meta_image_topic(f.img, "t")->n_parts, 6);
    ck_assert_int_eq(refused(&f, meta_decide_create_topic(f.img, &(meta_create_topic_req_t){.name = "u", .uuid = {7},
                                                                                     .partitions = 1, .replication_factor = 4},
                                                      &f.cfg, &f.d)),
                     KL_EINVAL); /* only 3 active brokers */
    fx_free(&f);
}
END_TEST

START_TEST(create_topic_validates_name_counts_uuid_and_replication_factor)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    fx_create(&f, "taken", 1, 1);
    fx_create(&f, "a.b", 1, 1);
    char long_name[META_MAX_TOPIC_NAME_LEN + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    struct { const char *name; int seed, parts, rf, err; } cases[] = {
        {".", 1, 1, 1, KL_EINVAL},     {"..", 1, 1, 1, KL_EINVAL},     {"a b", 1, 1, 1, KL_EINVAL},
        {long_name, 1, 1, 1, KL_EINVAL}, {"", 1, 1, 1, KL_EINVAL},     {"taken", 1, 1, 1, KL_EEXIST},
        {"a_b", 1, 1, 1, KL_EINVAL},   {"new", 0, 1, 1, KL_EINVAL},    {"new", 1, 0, 1, KL_EINVAL},
        {"new", 1, META_MAX_TOPIC_PARTITIONS + 1, 1, KL_EINVAL},       {"new", 1, 1, 0, KL_EINVAL},
        {"new", 1, 1, META_MAX_REPLICAS + 1, KL_EINVAL},               {"new", 1, 1, 4, KL_EINVAL},
        {"__cluster_metadata", 1, 1, 1, KL_EINVAL},                    {"__cluster.metadata", 1, 1, 1, KL_EINVAL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        meta_create_topic_req_t req = {.name = cases[i].name, .partitions = cases[i].parts, .replication_factor = cases[i].rf};
        if (cases[i].seed) fx_uuid(req.uuid, cases[i].seed);
        ck_assert_msg(meta_decide_create_topic(f.img, &req, &f.cfg, &f.d) == cases[i].err, "case %zu: %s", i, f.d.error);
        refused(&f, cases[i].err);
    }
    meta_create_topic_req_t req = {.name = "new", .partitions = 1, .replication_factor = 1};
    memcpy(req.uuid, meta_image_topic(f.img, "taken")->uuid, KL_UUID_LEN);
    ck_assert_int_eq(refused(&f, meta_decide_create_topic(f.img, &req, &f.cfg, &f.d)), KL_EEXIST);
    /* -1 asks for the defaults */
    f.cfg.num_partitions = 5;
    f.cfg.default_replication_factor = 2;
    req = (meta_create_topic_req_t){.name = "defaults", .partitions = -1, .replication_factor = -1};
    fx_uuid(req.uuid, 321);
    ck_assert_int_eq(meta_decide_create_topic(f.img, &req, &f.cfg, &f.d), 0);
    ck_assert_int_eq(count_type(&f, META_REC_PARTITION), 5);
    ck_assert_int_eq(f.d.records.recs[1].u.partition.n_replicas, 2);
    fx_free(&f);
}
END_TEST

START_TEST(create_topic_validates_and_canonicalises_configs)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    meta_config_kv_t good[] = {{META_CFG_UNCLEAN_ELECTION, "TRUE"}, {META_CFG_MIN_INSYNC_REPLICAS, "2"}, {META_CFG_RETENTION_BYTES, "-1"}};
    meta_create_topic_req_t req = {.name = "t", .partitions = 1, .replication_factor = 3, .configs = good, .n_configs = 3};
    fx_uuid(req.uuid, 1);
    ck_assert_int_eq(meta_decide_create_topic(f.img, &req, &f.cfg, &f.d), 0);
    const meta_topic_record_t *t = &f.d.records.recs[0].u.topic;
    ck_assert_int_eq(t->n_configs, 3);
    ck_assert_str_eq(t->configs[0].key, META_CFG_MIN_INSYNC_REPLICAS); /* sorted by key */
    ck_assert_str_eq(t->configs[2].key, META_CFG_UNCLEAN_ELECTION);
    ck_assert_str_eq(t->configs[2].value, "true");
    meta_config_kv_t bad[][2] = {
        {{META_CFG_MIN_INSYNC_REPLICAS, "4"}, {NULL, NULL}}, /* above the replication factor */
        {{"retention.hours", "1"}, {NULL, NULL}},
        {{META_CFG_RETENTION_MS, "soon"}, {NULL, NULL}},
        {{META_CFG_RETENTION_MS, "1"}, {META_CFG_RETENTION_MS, "2"}},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        req.configs = bad[i];
        req.n_configs = bad[i][1].key ? 2 : 1;
        ck_assert_msg(meta_decide_create_topic(f.img, &req, &f.cfg, &f.d) == KL_EINVAL, "case %zu", i);
        refused(&f, KL_EINVAL);
    }
    fx_free(&f);
}
END_TEST

START_TEST(delete_topic_appends_one_removal)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 1);
    fx_create(&f, "t", 3, 1);
    ck_assert_int_eq(meta_decide_delete_topic(f.img, "t", &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 1);
    ck_assert_int_eq(f.d.records.recs[0].type, META_REC_REMOVE_TOPIC);
    fx_commit(&f);
    ck_assert_ptr_null(meta_image_topic(f.img, "t"));
    ck_assert_int_eq(refused(&f, meta_decide_delete_topic(f.img, "t", &f.cfg, &f.d)), KL_EUNKNOWNPARTITION);
    ck_assert_int_eq(refused(&f, meta_decide_delete_topic(f.img, NULL, &f.cfg, &f.d)), KL_EUNKNOWNPARTITION);
    fx_free(&f);
}
END_TEST

START_TEST(alter_configs_records_only_real_changes_and_all_or_nothing)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 2);
    fx_create(&f, "t", 1, 2);
    meta_config_kv_t set[] = {{META_CFG_RETENTION_MS, "1000"}, {META_CFG_MIN_INSYNC_REPLICAS, "2"}};
    meta_alter_configs_req_t req = {.resource = META_CONFIG_TOPIC, .topic = "t", .ops = set, .n_ops = 2};
    ck_assert_int_eq(meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d), 0);
    ck_assert_int_eq(count_type(&f, META_REC_CONFIG), 2);
    fx_commit(&f);
    ck_assert_int_eq(meta_image_config_int(f.img, meta_image_topic(f.img, "t"), META_CFG_RETENTION_MS, 0), 1000);
    ck_assert_int_eq(meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d), 0); /* same values again */
    ck_assert_int_eq(f.d.records.n, 0);

    meta_config_kv_t del[] = {{META_CFG_RETENTION_MS, NULL}, {META_CFG_SEGMENT_MS, NULL}};
    req.ops = del;
    ck_assert_int_eq(meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 1); /* segment.ms was never set */
    ck_assert(f.d.records.recs[0].u.config.remove);
    fx_commit(&f);
    ck_assert_ptr_null(meta_image_config(f.img, meta_image_topic(f.img, "t"), META_CFG_RETENTION_MS));

    meta_config_kv_t mixed[] = {{META_CFG_RETENTION_MS, "5"}, {META_CFG_MIN_INSYNC_REPLICAS, "3"}};
    req.ops = mixed; /* min.insync.replicas 3 > replication factor 2: nothing at all */
    ck_assert_int_eq(refused(&f, meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d)), KL_EINVAL);
    meta_config_kv_t unknown[] = {{"no.such.config", NULL}};
    req.ops = unknown;
    req.n_ops = 1;
    ck_assert_int_eq(refused(&f, meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d)), KL_EINVAL);
    meta_config_kv_t twice[] = {{META_CFG_RETENTION_MS, "5"}, {META_CFG_RETENTION_MS, NULL}};
    req.ops = twice;
    req.n_ops = 2;
    ck_assert_int_eq(refused(&f, meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d)), KL_EINVAL);
    req.topic = "nope";
    ck_assert_int_eq(refused(&f, meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d)), KL_EUNKNOWNPARTITION);

    /* Cluster-wide: no replication factor bound; a topic's own value still wins. */
    meta_config_kv_t cl[] = {{META_CFG_MIN_INSYNC_REPLICAS, "3"}};
    req = (meta_alter_configs_req_t){.resource = META_CONFIG_CLUSTER, .ops = cl, .n_ops = 1};
    ck_assert_int_eq(meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d), 0);
    fx_commit(&f);
    ck_assert_int_eq(meta_image_config_int(f.img, meta_image_topic(f.img, "t"), META_CFG_MIN_INSYNC_REPLICAS, 1), 2);
    ck_assert_int_eq(meta_image_config_int(f.img, NULL, META_CFG_MIN_INSYNC_REPLICAS, 1), 3);
    fx_free(&f);
}
END_TEST

START_TEST(enabling_unclean_election_lets_reconcile_bring_an_offline_partition_back)
{
    fx_t f;
    fx_init(&f);
    fence_last_isr_member(&f, NULL, NULL, false);
    ck_assert_int_eq(meta_decide_reconcile(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0); /* still offline: nothing clean to do */
    meta_config_kv_t kv = {META_CFG_UNCLEAN_ELECTION, "true"};
    meta_alter_configs_req_t req = {.resource = META_CONFIG_TOPIC, .topic = "t", .ops = &kv, .n_ops = 1};
    ck_assert_int_eq(meta_decide_alter_configs(f.img, &req, &f.cfg, &f.d), 0);
    fx_commit(&f);
    ck_assert_int_eq(meta_decide_reconcile(f.img, &f.cfg, &f.d), 0);
    ck_assert(f.d.unclean);
    fx_commit(&f);
    ck_assert_int_eq(fx_part(&f, "t", 0)->leader, 2);
    ck_assert_int_eq(meta_decide_reconcile(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    fx_free(&f);
}
END_TEST

/* ---- partitions ------------------------------------------------------------------------ */

static int alter(fx_t *f, int32_t broker, int32_t partition, int32_t leader_epoch, int32_t partition_epoch,
                 const int32_t *isr)
{
    int n = 0;
    while (isr[n] >= 0) n++;
    const meta_broker_t *b = meta_image_broker(f->img, broker);
    meta_alter_partition_req_t req = {.broker_id = broker, .broker_epoch = b ? b->epoch : 0, .partition = partition,
                                      .leader_epoch = leader_epoch, .partition_epoch = partition_epoch, .isr = isr, .n_isr = n};
    memcpy(req.topic, meta_image_topic(f->img, "t")->uuid, KL_UUID_LEN);
    return meta_decide_alter_partition(f->img, &req, &f->cfg, &f->d);
}

START_TEST(alter_partition_from_the_leader_commits_the_new_isr_in_replica_order)
{
    fx_t f;
    fx_init(&f);
    const meta_topic_t *t = layout(&f);
    ck_assert_int_eq(alter(&f, 1, 0, 0, 0, R13), 0);
    ck_assert_int_eq(f.d.records.n, 1);
    fx_commit(&f);
    ck_assert(fx_isr_is(&t->parts[0], R13));
    ck_assert_int_eq(t->parts[0].leader_epoch, 0);
    ck_assert_int_eq(t->parts[0].partition_epoch, 1);
    static const int32_t unordered[] = {3, 2, 1, -1};
    ck_assert_int_eq(alter(&f, 1, 0, 0, 1, unordered), 0);
    fx_commit(&f);
    ck_assert(fx_isr_is(&t->parts[0], R123));
    ck_assert_int_eq(alter(&f, 1, 0, 0, 2, R123), 0); /* unchanged: nothing to commit */
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert(!f.d.error[0]);
    fx_free(&f);
}
END_TEST

START_TEST(stale_or_invalid_alter_partition_is_rejected)
{
    fx_t f;
    fx_init(&f);
    layout(&f);
    ck_assert_int_eq(alter(&f, 1, 0, 0, 0, R12), 0);
    fx_commit(&f); /* t-0 now at partition epoch 1 */
    static const int32_t R14[] = {1, 4, -1}, R11[] = {1, 1, -1}, none[] = {-1};
    struct { int32_t broker, part, le, pe; const int32_t *isr; int err; } cases[] = {
        {1, 0, 0, 0, R1, KL_EFENCED},         /* stale partition epoch */
        {1, 0, -1, 1, R1, KL_EFENCED},        /* stale leader epoch */
        {1, 0, 1, 1, R1, KL_EUNKNOWNEPOCH},   /* newer than the controller's */
        {1, 0, 0, 2, R1, KL_EUNKNOWNEPOCH},
        {2, 0, 0, 1, R2, KL_ENOTLEADER},
        {1, 9, 0, 0, R1, KL_EUNKNOWNPARTITION},
        {9, 0, 0, 1, R1, KL_EFENCED},         /* unknown broker */
        {1, 0, 0, 1, R23, KL_EINVAL},         /* without the leader */
        {1, 0, 0, 1, R11, KL_EINVAL},
        {1, 0, 0, 1, none, KL_EINVAL},
        {1, 1, 0, 0, R3, KL_EINVAL},          /* t-1: leader 1 missing */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = alter(&f, cases[i].broker, cases[i].part, cases[i].le, cases[i].pe, cases[i].isr);
        ck_assert_msg(rc == cases[i].err, "case %zu: %s (%s)", i, kl_errname(rc), f.d.error);
        refused(&f, rc);
    }
    /* t-3 has replica 4, which is registered but fenced. */
    ck_assert_int_eq(alter(&f, 2, 3, 0, 0, R234), KL_EINVAL);
    ck_assert_ptr_nonnull(strstr(f.d.error, "not active"));
    /* A non-replica. */
    ck_assert_int_eq(alter(&f, 1, 0, 0, 1, R14), KL_EINVAL);
    /* A stale broker epoch. */
    meta_alter_partition_req_t req = {.broker_id = 1, .broker_epoch = meta_image_broker(f.img, 1)->epoch + 1,
                                      .partition_epoch = 1, .isr = R1, .n_isr = 1};
    memcpy(req.topic, meta_image_topic(f.img, "t")->uuid, KL_UUID_LEN);
    ck_assert_int_eq(refused(&f, meta_decide_alter_partition(f.img, &req, &f.cfg, &f.d)), KL_EFENCED);
    /* A broker in controlled shutdown may not rejoin. */
    ck_assert_int_eq(fx_heartbeat(&f, 3, false, true), 0);
    fx_commit(&f);
    const meta_partition_t *p0 = fx_part(&f, "t", 0);
    ck_assert_int_eq(alter(&f, 1, 0, p0->leader_epoch, p0->partition_epoch, R13), KL_EINVAL);
    fx_free(&f);
}
END_TEST

START_TEST(preferred_election_moves_leadership_back_only_when_the_preferred_replica_is_in_the_isr)
{
    fx_t f;
    fx_init(&f);
    const meta_topic_t *t = layout(&f);
    ck_assert_int_eq(fx_heartbeat(&f, 1, true, false), 0);
    fx_commit(&f);
    ck_assert_int_eq(fx_heartbeat(&f, 1, false, false), 0); /* back, but out of every ISR */
    fx_commit(&f);
    ck_assert_int_eq(t->parts[0].leader, 2);
    ck_assert_int_eq(meta_decide_elect_preferred(f.img, "t", &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    ck_assert(fx_noted(&f, "0 moved"));
    ck_assert_int_eq(alter(&f, 2, 0, t->parts[0].leader_epoch, t->parts[0].partition_epoch, R123), 0); /* 1 caught up */
    fx_commit(&f);
    int32_t le = t->parts[0].leader_epoch;
    ck_assert_int_eq(meta_decide_elect_preferred(f.img, NULL, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 1);
    fx_commit(&f);
    ck_assert_int_eq(t->parts[0].leader, 1);
    ck_assert_int_eq(t->parts[0].leader_epoch, le + 1);
    ck_assert_int_eq(t->parts[1].leader, 2); /* preferred replica 3 is not in its ISR */
    ck_assert_int_eq(refused(&f, meta_decide_elect_preferred(f.img, "nope", &f.cfg, &f.d)), KL_EUNKNOWNPARTITION);
    fx_free(&f);
}
END_TEST

START_TEST(auto_rebalance_acts_only_above_the_imbalance_threshold)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 2);
    const meta_topic_t *t = fx_topic_raw(&f, "t", 1);
    for (int p = 0; p < 10; p++) fx_partition_raw(&f, t, R12, R12, p == 0 ? 2 : 1); /* 1 of 10 not led by 1 */
    ck_assert_int_eq(meta_decide_auto_rebalance(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0); /* 10% is not above 10% */
    fx_partition_raw(&f, t, R12, R12, 2); /* 2 of 11 */
    ck_assert_int_eq(meta_decide_auto_rebalance(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 2);
    f.cfg.auto_leader_rebalance_enable = false;
    ck_assert_int_eq(meta_decide_auto_rebalance(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    fx_free(&f);
}
END_TEST

START_TEST(reconcile_changes_nothing_while_invariants_hold)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 3);
    fx_create(&f, "a", 5, 3);
    fx_create(&f, "b", 5, 2);
    ck_assert_int_eq(meta_decide_reconcile(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(f.d.records.n, 0);
    fx_free(&f);
}
END_TEST

/* ---- producer ids, purity, config --------------------------------------------------- */

START_TEST(producer_id_blocks_never_overlap)
{
    fx_t f;
    fx_init(&f);
    fx_add_brokers(&f, 2);
    int64_t expect = 0;
    for (int i = 0; i < 5; i++) {
        int32_t b = 1 + i % 2;
        ck_assert_int_eq(meta_decide_producer_ids(f.img, b, meta_image_broker(f.img, b)->epoch, &f.cfg, &f.d), 0);
        const meta_producer_ids_t *blk = &f.d.records.recs[0].u.producer_ids;
        ck_assert_int_eq(blk->first_id, expect);
        ck_assert_int_eq(blk->size, 1000);
        ck_assert_int_eq(blk->broker_id, b);
        expect += blk->size;
        fx_commit(&f);
    }
    int64_t stale = meta_image_broker(f.img, 1)->epoch + 1;
    ck_assert_int_eq(refused(&f, meta_decide_producer_ids(f.img, 1, stale, &f.cfg, &f.d)), KL_EFENCED);
    ck_assert_int_eq(refused(&f, meta_decide_producer_ids(f.img, 7, 0, &f.cfg, &f.d)), KL_ENOENT);
    meta_record_t last = {.type = META_REC_PRODUCER_IDS, .u.producer_ids = {1, INT64_MAX - 1500, 1000}};
    fx_apply(&f, &last);
    ck_assert_int_eq(refused(&f, meta_decide_producer_ids(f.img, 1, meta_image_broker(f.img, 1)->epoch, &f.cfg, &f.d)),
                     KL_ERANGE);
    fx_free(&f);
}
END_TEST

START_TEST(decisions_never_change_the_image)
{
    fx_t f;
    fx_init(&f);
    layout(&f);
    meta_image_t *before;
    ck_assert_int_eq(meta_image_clone(f.img, &before), 0);
    meta_sessions_t s;
    meta_sessions_init(&s);
    meta_create_topic_req_t ct = {.name = "x", .partitions = 3, .replication_factor = 2};
    fx_uuid(ct.uuid, 99);
    meta_config_kv_t kv = {META_CFG_UNCLEAN_ELECTION, "true"};
    meta_alter_configs_req_t ac = {.resource = META_CONFIG_CLUSTER, .ops = &kv, .n_ops = 1};
    ck_assert_int_eq(fx_register(&f, 9, 9, NULL), 0);
    ck_assert_int_eq(fx_heartbeat(&f, 1, false, true), 0);
    ck_assert_int_eq(fx_heartbeat(&f, 2, true, false), 0);
    ck_assert_int_eq(fx_heartbeat(&f, 4, false, false), 0);
    ck_assert_int_eq(meta_decide_expire_sessions(f.img, &s, 0, &f.cfg, &f.d), 0);
    ck_assert_int_eq(meta_decide_create_topic(f.img, &ct, &f.cfg, &f.d), 0);
    ck_assert_int_eq(meta_decide_alter_configs(f.img, &ac, &f.cfg, &f.d), 0);
    ck_assert_int_eq(alter(&f, 1, 0, 0, 0, R12), 0);
    ck_assert_int_eq(meta_decide_elect_preferred(f.img, NULL, &f.cfg, &f.d), 0);
    ck_assert_int_eq(meta_decide_auto_rebalance(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(meta_decide_reconcile(f.img, &f.cfg, &f.d), 0);
    ck_assert_int_eq(meta_decide_delete_topic(f.img, "t", &f.cfg, &f.d), 0);
    ck_assert_int_eq(meta_decide_producer_ids(f.img, 1, meta_image_broker(f.img, 1)->epoch, &f.cfg, &f.d), 0);
    ck_assert(meta_image_equal(f.img, before));
    meta_sessions_free(&s);
    meta_image_free(before);
    fx_free(&f);
}
END_TEST

START_TEST(controller_settings_out_of_range_are_refused)
{
    meta_ctl_config_t cfg;
    char why[META_MSG_LEN];
    meta_ctl_config_defaults(&cfg);
    ck_assert_int_eq(meta_ctl_config_check(&cfg, why, sizeof why), 0);
    ck_assert_int_eq(cfg.broker_session_timeout_ms, 9000);
    cfg.default_replication_factor = META_MAX_REPLICAS + 1;
    ck_assert_int_eq(meta_ctl_config_check(&cfg, why, sizeof why), KL_ECONFIG);
    meta_ctl_config_defaults(&cfg);
    cfg.producer_id_block_size = 0;
    ck_assert_int_eq(meta_ctl_config_check(&cfg, why, sizeof why), KL_ECONFIG);
    meta_ctl_config_defaults(&cfg);
    cfg.leader_imbalance_per_broker_percentage = 101;
    ck_assert_int_eq(meta_ctl_config_check(&cfg, why, sizeof why), KL_ECONFIG);
}
END_TEST

static Suite *ctl_suite(void)
{
    Suite *s = suite_create("metadata-ctl");
    TCase *b = tcase_create("brokers");
    tcase_add_test(b, a_new_incarnation_registers_fenced_with_the_record_offset_as_epoch);
    tcase_add_test(b, the_same_incarnation_registering_again_is_a_retry_without_records);
    tcase_add_test(b, another_incarnation_waits_while_the_old_one_is_unfenced);
    tcase_add_test(b, malformed_registrations_are_refused);
    tcase_add_test(b, a_heartbeat_unfences_only_once_caught_up_to_the_registration);
    tcase_add_test(b, a_heartbeat_from_an_old_epoch_or_unknown_broker_is_refused);
    tcase_add_test(b, fencing_removes_the_broker_from_every_isr_and_reelects_in_replica_order);
    tcase_add_test(b, fencing_the_last_isr_member_leaves_the_partition_offline_without_unclean_election);
    tcase_add_test(b, fencing_the_last_isr_member_elects_a_live_replica_with_unclean_election_and_says_so_loudly);
    tcase_add_test(b, an_offline_partition_returns_when_its_isr_member_is_unfenced);
    tcase_add_test(b, when_every_isr_member_is_down_the_first_to_return_leads);
    tcase_add_test(b, every_prefix_of_a_fencing_decision_applies_and_leaves_no_fenced_leader);
    tcase_add_test(b, controlled_shutdown_moves_leaderships_away_then_fences);
    tcase_add_test(b, a_controlled_shutdown_cut_short_after_its_first_record_resumes_moving_leaderships);
    tcase_add_test(b, a_fenced_broker_asking_to_shut_down_may_go_at_once);
    tcase_add_test(b, sessions_expire_after_the_timeout_or_soon_after_a_broken_connection);
    tcase_add_test(b, a_broker_without_a_session_counts_as_expired);
    suite_add_tcase(s, b);
    TCase *t = tcase_create("topics");
    tcase_add_test(t, create_topic_assigns_active_brokers_and_starts_every_partition_at_epoch_zero);
    tcase_add_test(t, create_topic_validates_name_counts_uuid_and_replication_factor);
    tcase_add_test(t, create_topic_validates_and_canonicalises_configs);
    tcase_add_test(t, delete_topic_appends_one_removal);
    tcase_add_test(t, alter_configs_records_only_real_changes_and_all_or_nothing);
    tcase_add_test(t, enabling_unclean_election_lets_reconcile_bring_an_offline_partition_back);
    suite_add_tcase(s, t);
    TCase *p = tcase_create("partitions");
    tcase_add_test(p, alter_partition_from_the_leader_commits_the_new_isr_in_replica_order);
    tcase_add_test(p, stale_or_invalid_alter_partition_is_rejected);
    tcase_add_test(p, preferred_election_moves_leadership_back_only_when_the_preferred_replica_is_in_the_isr);
    tcase_add_test(p, auto_rebalance_acts_only_above_the_imbalance_threshold);
    tcase_add_test(p, reconcile_changes_nothing_while_invariants_hold);
    tcase_add_test(p, producer_id_blocks_never_overlap);
    tcase_add_test(p, decisions_never_change_the_image);
    tcase_add_test(p, controller_settings_out_of_range_are_refused);
    suite_add_tcase(s, p);
    return s;
}

int main(void)
{
    return kl_check_run(ctl_suite());
}
