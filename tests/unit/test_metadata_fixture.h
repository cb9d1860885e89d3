/* test_metadata_fixture.h — a metadata image driven like the controller service would: decide, then apply the records as if committed. */
#ifndef KEEL_TEST_METADATA_FIXTURE_H
#define KEEL_TEST_METADATA_FIXTURE_H

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "keel/err.h"
#include "keel/meta.h"
#include "keel/meta_ctl.h"

typedef struct fx {
    meta_image_t *img;
    int64_t offset; /* next log offset */
    meta_ctl_config_t cfg;
    meta_decision_t d;
    meta_heartbeat_reply_t reply;
} fx_t;

static inline void fx_init(fx_t *f)
{
    memset(f, 0, sizeof *f);
    f->img = meta_image_new();
    ck_assert_ptr_nonnull(f->img);
    meta_ctl_config_defaults(&f->cfg);
    meta_decision_init(&f->d);
}

static inline void fx_free(fx_t *f)
{
    meta_decision_free(&f->d);
    meta_image_free(f->img);
}

/* A distinct, deterministic, non-zero uuid per seed. */
static inline void fx_uuid(uint8_t u[KL_UUID_LEN], int seed)
{
    for (int i = 0; i < KL_UUID_LEN; i++) u[i] = (uint8_t)(i < 4 ? (uint32_t)seed >> (8 * i) : 0xa0u + (unsigned)i);
}

static inline void fx_apply(fx_t *f, const meta_record_t *r)
{
    int rc = meta_image_apply(f->img, r, f->offset++);
    ck_assert_msg(rc == 0, "apply %s: %s (%s)", meta_record_type_name(r->type), kl_errname(rc), meta_image_error(f->img));
}

/* The last decision's records commit. */
static inline void fx_commit(fx_t *f)
{
    for (int i = 0; i < f->d.records.n; i++) fx_apply(f, &f->d.records.recs[i]);
}

static inline int fx_register(fx_t *f, int32_t id, int incarnation, const char *rack)
{
    meta_listener_t l;
    ck_assert_int_eq(meta_listener_set(&l, "PLAINTEXT", "localhost", 9000 + id), 0);
    meta_register_req_t req = {.broker_id = id, .listeners = &l, .n_listeners = 1, .rack = rack};
    fx_uuid(req.incarnation, 1000 + incarnation);
    return meta_decide_register(f->img, &req, &f->cfg, &f->d);
}

static inline int fx_heartbeat(fx_t *f, int32_t id, bool want_fence, bool want_shutdown)
{
    const meta_broker_t *b = meta_image_broker(f->img, id);
    meta_heartbeat_req_t req = {.broker_id = id, .broker_epoch = b ? b->epoch : 0, .metadata_offset = f->offset - 1,
                                .want_fence = want_fence, .want_shutdown = want_shutdown};
    return meta_decide_heartbeat(f->img, &req, &f->cfg, &f->d, &f->reply);
}

/* Registers broker id and unfences it, committing both steps. */
static inline void fx_add_broker(fx_t *f, int32_t id, const char *rack)
{
    ck_assert_int_eq(fx_register(f, id, id, rack), 0);
    fx_commit(f);
    ck_assert_int_eq(fx_heartbeat(f, id, false, false), 0);
    fx_commit(f);
    ck_assert_int_eq(meta_image_broker(f->img, id)->state, META_BROKER_ACTIVE);
}

static inline void fx_add_brokers(fx_t *f, int n)
{
    for (int i = 1; i <= n; i++) fx_add_broker(f, i, NULL);
}

static inline const meta_topic_t *fx_create(fx_t *f, const char *name, int partitions, int rf)
{
    meta_create_topic_req_t req = {.name = name, .partitions = partitions, .replication_factor = rf};
    uint32_t h = 2166136261u; /* FNV-1a: a uuid per name */
    for (const char *c = name; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    fx_uuid(req.uuid, (int)(h % 100000u) + 5000);
    int rc = meta_decide_create_topic(f->img, &req, &f->cfg, &f->d);
    ck_assert_msg(rc == 0, "create %s: %s", name, f->d.error);
    fx_commit(f);
    return meta_image_topic(f->img, name);
}

/* A topic whose partitions are laid out by hand, applied as raw records. */
static inline const meta_topic_t *fx_topic_raw(fx_t *f, const char *name, int seed)
{
    meta_record_t r = {.type = META_REC_TOPIC};
    strcpy(r.u.topic.name, name);
    fx_uuid(r.u.topic.uuid, seed);
    fx_apply(f, &r);
    return meta_image_topic(f->img, name);
}

/* ids: replicas then isr, each terminated by -1. */
static inline void fx_partition_raw(fx_t *f, const meta_topic_t *t, const int32_t *replicas, const int32_t *isr,
                                    int32_t leader)
{
    meta_record_t r = {.type = META_REC_PARTITION};
    meta_partition_t *p = &r.u.partition;
    memcpy(p->topic, t->uuid, KL_UUID_LEN);
    p->partition = t->n_parts;
    while (replicas[p->n_replicas] >= 0) p->replicas[p->n_replicas] = replicas[p->n_replicas], p->n_replicas++;
    while (isr[p->n_isr] >= 0) p->isr[p->n_isr] = isr[p->n_isr], p->n_isr++;
    p->leader = leader;
    fx_apply(f, &r);
}

static inline const meta_partition_t *fx_part(const fx_t *f, const char *topic, int32_t p)
{
    const meta_topic_t *t = meta_image_topic(f->img, topic);
    ck_assert_ptr_nonnull(t);
    return meta_image_partition(f->img, t->uuid, p);
}

/* p's ISR equals the -1-terminated list. */
static inline bool fx_isr_is(const meta_partition_t *p, const int32_t *ids)
{
    int n = 0;
    while (ids[n] >= 0) n++;
    return p->n_isr == n && memcmp(p->isr, ids, (size_t)n * sizeof *ids) == 0;
}

/* The decision contains a note containing s. */
static inline bool fx_noted(const fx_t *f, const char *s)
{
    for (int i = 0; i < f->d.n_notes; i++)
        if (strstr(f->d.notes[i].text, s)) return true;
    return false;
}

#endif
