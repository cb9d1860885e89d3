/* meta_image.c — the metadata image: folding committed records in, lookups, snapshots as records, equality. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

struct meta_image {
    meta_broker_t *brokers; /* sorted by id */
    int n_brokers, cap_brokers;
    meta_topic_t **by_name; /* the same topics twice: sorted by name, and by uuid */
    meta_topic_t **by_uuid;
    int n_topics, cap_topics;
    int n_partitions;
    meta_config_t *cluster; /* sorted by key */
    int n_cluster;
    meta_producer_ids_t last_block; /* valid if has_block */
    bool has_block;
    char error[META_MSG_LEN];
};

meta_image_t *meta_image_new(void)
{
    return calloc(1, sizeof(meta_image_t));
}

static void topic_free(meta_topic_t *t)
{
    free(t->configs);
    free(t->parts);
    free(t);
}

void meta_image_free(meta_image_t *img)
{
    if (!img) return;
    for (int i = 0; i < img->n_topics; i++) topic_free(img->by_name[i]);
    free(img->by_name);
    free(img->by_uuid);
    free(img->brokers);
    free(img->cluster);
    free(img);
}

const char *meta_image_error(const meta_image_t *img)
{
    return img->error;
}

/* ---- searching ------------------------------------------------------------ */

/* Binary searches return the index of the match (*found) or where it would go. */
static int broker_pos(const meta_image_t *img, int32_t id, bool *found)
{
    int lo = 0, hi = img->n_brokers;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (img->brokers[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    *found = lo < img->n_brokers && img->brokers[lo].id == id;
    return lo;
}

static int topic_pos(meta_topic_t *const *arr, int n, const char *name, const uint8_t *uuid, bool *found)
{
    int lo = 0, hi = n, c = 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        c = name ? strcmp(arr[mid]->name, name) : memcmp(arr[mid]->uuid, uuid, KL_UUID_LEN);
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = lo < n && (name ? strcmp(arr[lo]->name, name) : memcmp(arr[lo]->uuid, uuid, KL_UUID_LEN)) == 0;
    return lo;
}

static int config_pos(const meta_config_t *cs, int n, const char *key, bool *found)
{
    int i = 0;
    while (i < n && strcmp(cs[i].key, key) < 0) i++;
    *found = i < n && strcmp(cs[i].key, key) == 0;
    return i;
}

int meta_image_broker_count(const meta_image_t *img)
{
    return img->n_brokers;
}

const meta_broker_t *meta_image_broker_at(const meta_image_t *img, int i)
{
    return i >= 0 && i < img->n_brokers ? &img->brokers[i] : NULL;
}

const meta_broker_t *meta_image_broker(const meta_image_t *img, int32_t id)
{
    bool found;
    int i = broker_pos(img, id, &found);
    return found ? &img->brokers[i] : NULL;
}

int meta_image_topic_count(const meta_image_t *img)
{
    return img->n_topics;
}

const meta_topic_t *meta_image_topic_at(const meta_image_t *img, int i)
{
    return i >= 0 && i < img->n_topics ? img->by_name[i] : NULL;
}

const meta_topic_t *meta_image_topic(const meta_image_t *img, const char *name)
{
    bool found;
    int i = topic_pos(img->by_name, img->n_topics, name, NULL, &found);
    return found ? img->by_name[i] : NULL;
}

const meta_topic_t *meta_image_topic_by_uuid(const meta_image_t *img, const uint8_t uuid[KL_UUID_LEN])
{
    bool found;
    int i = topic_pos(img->by_uuid, img->n_topics, NULL, uuid, &found);
    return found ? img->by_uuid[i] : NULL;
}

const meta_partition_t *meta_image_partition(const meta_image_t *img, const uint8_t topic[KL_UUID_LEN],
                                             int32_t partition)
{
    const meta_topic_t *t = meta_image_topic_by_uuid(img, topic);
    return t && partition >= 0 && partition < t->n_parts ? &t->parts[partition] : NULL;
}

int meta_image_partition_count(const meta_image_t *img)
{
    return img->n_partitions;
}

int meta_image_cluster_config_count(const meta_image_t *img)
{
    return img->n_cluster;
}

const meta_config_t *meta_image_cluster_config_at(const meta_image_t *img, int i)
{
    return i >= 0 && i < img->n_cluster ? &img->cluster[i] : NULL;
}

int64_t meta_image_next_producer_id(const meta_image_t *img)
{
    return img->has_block ? img->last_block.first_id + img->last_block.size : 0;
}

const char *meta_image_config(const meta_image_t *img, const meta_topic_t *topic, const char *key)
{
    bool found;
    int i;
    if (topic && (i = config_pos(topic->configs, topic->n_configs, key, &found), found)) return topic->configs[i].value;
    i = config_pos(img->cluster, img->n_cluster, key, &found);
    return found ? img->cluster[i].value : NULL;
}

/* ---- applying records -------------------------------------------------------- */

/* Sets or removes key in a sorted config array. */
static int config_put(meta_config_t **cs, int *n, const char *key, const char *value, bool remove)
{
    bool found;
    int i = config_pos(*cs, *n, key, &found);
    if (remove) {
        if (found) {
            memmove(&(*cs)[i], &(*cs)[i + 1], (size_t)(*n - i - 1) * sizeof **cs);
            (*n)--;
        }
        return 0;
    }
    if (!found) {
        if (*n >= META_MAX_CONFIGS) return KL_ETOOBIG;
        meta_config_t *grown = realloc(*cs, (size_t)(*n + 1) * sizeof **cs);
        if (!grown) return KL_ENOMEM;
        *cs = grown;
        memmove(&grown[i + 1], &grown[i], (size_t)(*n - i) * sizeof *grown);
        meta_copy_str(grown[i].key, sizeof grown[i].key, key);
        (*n)++;
    }
    meta_copy_str((*cs)[i].value, sizeof (*cs)[i].value, value);
    return 0;
}

static int fail(meta_image_t *img, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(meta_image_t *img, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(img->error, sizeof img->error, fmt, ap);
    va_end(ap);
    return err;
}

static int apply_register(meta_image_t *img, const meta_register_broker_t *r, int64_t offset)
{
    int64_t epoch = r->broker_epoch >= 0 ? r->broker_epoch : offset;
    if (epoch < 0) return fail(img, KL_EINVAL, "registration of broker %d has no epoch and no offset", (int)r->broker_id);
    bool found;
    int i = broker_pos(img, r->broker_id, &found);
    if (found) {
        const meta_broker_t *old = &img->brokers[i];
        if (old->state != META_BROKER_FENCED)
            return fail(img, KL_ESTATE, "broker %d registers a new incarnation while its epoch %lld is %s",
                        (int)r->broker_id, (long long)old->epoch, meta_broker_state_name(old->state));
        if (epoch <= old->epoch)
            return fail(img, KL_EFENCED, "broker %d registration epoch %lld is not after %lld", (int)r->broker_id,
                        (long long)epoch, (long long)old->epoch);
    } else {
        if (img->n_brokers >= META_MAX_BROKERS) return fail(img, KL_ETOOBIG, "more than %d brokers", META_MAX_BROKERS);
        if (img->n_brokers == img->cap_brokers) {
            int cap = img->cap_brokers ? 2 * img->cap_brokers : 8;
            meta_broker_t *grown = realloc(img->brokers, (size_t)cap * sizeof *grown);
            if (!grown) return fail(img, KL_ENOMEM, "out of memory");
            img->brokers = grown;
            img->cap_brokers = cap;
        }
        memmove(&img->brokers[i + 1], &img->brokers[i], (size_t)(img->n_brokers - i) * sizeof *img->brokers);
        img->n_brokers++;
    }
    meta_broker_t *b = &img->brokers[i];
    memset(b, 0, sizeof *b);
    b->id = r->broker_id;
    b->epoch = epoch;
    memcpy(b->incarnation, r->incarnation, KL_UUID_LEN);
    memcpy(b->listeners, r->listeners, (size_t)r->n_listeners * sizeof *b->listeners);
    b->n_listeners = r->n_listeners;
    meta_copy_str(b->rack, sizeof b->rack, r->rack);
    b->state = META_BROKER_FENCED; /* a new incarnation earns eligibility by catching up (§3) */
    return 0;
}

static int apply_broker_state(meta_image_t *img, meta_record_type_t type, const meta_broker_ref_t *ref)
{
    bool found;
    int i = broker_pos(img, ref->broker_id, &found);
    if (!found) return fail(img, KL_ENOENT, "%s: broker %d is not registered", meta_record_type_name(type), (int)ref->broker_id);
    meta_broker_t *b = &img->brokers[i];
    if (b->epoch != ref->broker_epoch)
        return fail(img, KL_EFENCED, "%s: broker %d epoch %lld, registered %lld", meta_record_type_name(type),
                    (int)b->id, (long long)ref->broker_epoch, (long long)b->epoch);
    if (type == META_REC_FENCE_BROKER) {
        b->state = META_BROKER_FENCED;
    } else if (type == META_REC_UNFENCE_BROKER) {
        if (b->state == META_BROKER_SHUTTING_DOWN)
            return fail(img, KL_ESTATE, "broker %d is in controlled shutdown and cannot be unfenced", (int)b->id);
        b->state = META_BROKER_ACTIVE;
    } else {
        if (b->state == META_BROKER_FENCED)
            return fail(img, KL_ESTATE, "broker %d is fenced and cannot start a controlled shutdown", (int)b->id);
        b->state = META_BROKER_SHUTTING_DOWN;
    }
    return 0;
}

static int cmp_config(const void *a, const void *b)
{
    return strcmp(((const meta_config_t *)a)->key, ((const meta_config_t *)b)->key);
}

static int apply_topic(meta_image_t *img, const meta_topic_record_t *r)
{
    bool name_taken, uuid_taken;
    int ni = topic_pos(img->by_name, img->n_topics, r->name, NULL, &name_taken);
    int ui = topic_pos(img->by_uuid, img->n_topics, NULL, r->uuid, &uuid_taken);
    if (name_taken || uuid_taken)
        return fail(img, KL_EEXIST, "topic %s: %s already exists", r->name, name_taken ? "name" : "uuid");
    if (img->n_topics >= META_MAX_TOPICS) return fail(img, KL_ETOOBIG, "more than %d topics", META_MAX_TOPICS);
    if (img->n_topics == img->cap_topics) {
        int cap = img->cap_topics ? 2 * img->cap_topics : 8;
        meta_topic_t **a = realloc(img->by_name, (size_t)cap * sizeof *a);
        if (!a) return fail(img, KL_ENOMEM, "out of memory");
        img->by_name = a;
        meta_topic_t **b = realloc(img->by_uuid, (size_t)cap * sizeof *b);
        if (!b) return fail(img, KL_ENOMEM, "out of memory");
        img->by_uuid = b;
        img->cap_topics = cap;
    }
    meta_topic_t *t = calloc(1, sizeof *t);
    if (!t) return fail(img, KL_ENOMEM, "out of memory");
    if (r->n_configs > 0) {
        t->configs = malloc((size_t)r->n_configs * sizeof *t->configs);
        if (!t->configs) {
            free(t);
            return fail(img, KL_ENOMEM, "out of memory");
        }
        memcpy(t->configs, r->configs, (size_t)r->n_configs * sizeof *t->configs);
        qsort(t->configs, (size_t)r->n_configs, sizeof *t->configs, cmp_config);
        t->n_configs = r->n_configs;
    }
    meta_copy_str(t->name, sizeof t->name, r->name);
    memcpy(t->uuid, r->uuid, KL_UUID_LEN);
    memmove(&img->by_name[ni + 1], &img->by_name[ni], (size_t)(img->n_topics - ni) * sizeof *img->by_name);
    memmove(&img->by_uuid[ui + 1], &img->by_uuid[ui], (size_t)(img->n_topics - ui) * sizeof *img->by_uuid);
    img->by_name[ni] = t;
    img->by_uuid[ui] = t;
    img->n_topics++;
    return 0;
}

static meta_topic_t *topic_by_uuid(meta_image_t *img, const uint8_t uuid[KL_UUID_LEN])
{
    return (meta_topic_t *)meta_image_topic_by_uuid(img, uuid);
}

static int check_replicas_registered(meta_image_t *img, const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++)
        if (!meta_image_broker(img, ids[i])) return fail(img, KL_ENOENT, "replica %d is not a registered broker", (int)ids[i]);
    return 0;
}

static int apply_partition(meta_image_t *img, const meta_partition_t *p)
{
    meta_topic_t *t = topic_by_uuid(img, p->topic);
    if (!t) return fail(img, KL_EUNKNOWNPARTITION, "partition %d of an unknown topic", (int)p->partition);
    if (p->partition != t->n_parts)
        return fail(img, p->partition < t->n_parts ? KL_EEXIST : KL_EINVAL, "%s-%d: the next partition is %d", t->name,
                    (int)p->partition, t->n_parts);
    if (img->n_partitions >= META_MAX_PARTITIONS) return fail(img, KL_ETOOBIG, "more than %d partitions", META_MAX_PARTITIONS);
    int rc = check_replicas_registered(img, p->replicas, p->n_replicas);
    if (rc) return rc;
    /* Partitions only ever append, so capacity is the next power of two. */
    int n = t->n_parts;
    if ((n & (n - 1)) == 0) {
        meta_partition_t *grown = realloc(t->parts, (size_t)(n ? 2 * n : 1) * sizeof *grown);
        if (!grown) return fail(img, KL_ENOMEM, "out of memory");
        t->parts = grown;
    }
    t->parts[n] = *p;
    t->n_parts++;
    img->n_partitions++;
    return 0;
}

static int apply_change(meta_image_t *img, const meta_partition_change_t *c)
{
    meta_topic_t *t = topic_by_uuid(img, c->topic);
    if (!t || c->partition >= t->n_parts)
        return fail(img, KL_EUNKNOWNPARTITION, "change of unknown partition %s-%d", t ? t->name : "?", (int)c->partition);
    meta_partition_t *cur = &t->parts[c->partition], next = *cur;
    if (c->n_replicas != -1) {
        memcpy(next.replicas, c->replicas, (size_t)c->n_replicas * sizeof *c->replicas);
        next.n_replicas = c->n_replicas;
    }
    if (c->n_isr != -1) {
        memcpy(next.isr, c->isr, (size_t)c->n_isr * sizeof *c->isr);
        next.n_isr = c->n_isr;
    }
    if (c->leader != META_LEADER_UNCHANGED) next.leader = c->leader;
    /* §3: every leader change bumps the leader epoch; every change of the
     * partition bumps the partition epoch (the version AlterPartition names). */
    if (next.leader != cur->leader) {
        if (cur->leader_epoch == INT32_MAX) return fail(img, KL_ERANGE, "%s-%d: leader epoch exhausted", t->name, (int)c->partition);
        next.leader_epoch++;
    }
    if (cur->partition_epoch == INT32_MAX) return fail(img, KL_ERANGE, "%s-%d: partition epoch exhausted", t->name, (int)c->partition);
    next.partition_epoch++;
    int rc = meta_partition_check(&next, img->error, sizeof img->error);
    if (rc) return rc;
    if (c->n_replicas != -1 && (rc = check_replicas_registered(img, next.replicas, next.n_replicas))) return rc;
    *cur = next;
    return 0;
}

static int apply_remove_topic(meta_image_t *img, const uint8_t uuid[KL_UUID_LEN])
{
    bool found;
    int ui = topic_pos(img->by_uuid, img->n_topics, NULL, uuid, &found);
    if (!found) return fail(img, KL_EUNKNOWNPARTITION, "removal of an unknown topic");
    meta_topic_t *t = img->by_uuid[ui];
    int ni = topic_pos(img->by_name, img->n_topics, t->name, NULL, &found);
    KL_ASSERT(found && img->by_name[ni] == t);
    memmove(&img->by_uuid[ui], &img->by_uuid[ui + 1], (size_t)(img->n_topics - ui - 1) * sizeof *img->by_uuid);
    memmove(&img->by_name[ni], &img->by_name[ni + 1], (size_t)(img->n_topics - ni - 1) * sizeof *img->by_name);
    img->n_topics--;
    img->n_partitions -= t->n_parts;
    topic_free(t);
    return 0;
}

static int apply_config(meta_image_t *img, const meta_config_record_t *c)
{
    int rc;
    if (c->resource == META_CONFIG_CLUSTER) {
        rc = config_put(&img->cluster, &img->n_cluster, c->key, c->value, c->remove);
    } else {
        meta_topic_t *t = topic_by_uuid(img, c->topic);
        if (!t) return fail(img, KL_EUNKNOWNPARTITION, "config %s of an unknown topic", c->key);
        rc = config_put(&t->configs, &t->n_configs, c->key, c->value, c->remove);
    }
    return rc ? fail(img, rc, "config %s: %s", c->key, rc == KL_ETOOBIG ? "too many configs" : "out of memory") : 0;
}

static int apply_producer_ids(meta_image_t *img, const meta_producer_ids_t *b)
{
    int64_t next = meta_image_next_producer_id(img);
    if (b->first_id < next)
        return fail(img, KL_ESTATE, "producer id block at %lld overlaps ids handed out below %lld", (long long)b->first_id,
                    (long long)next);
    img->last_block = *b;
    img->has_block = true;
    return 0;
}

int meta_image_apply(meta_image_t *img, const meta_record_t *rec, int64_t offset)
{
    img->error[0] = '\0';
    int rc = meta_record_validate(rec, img->error, sizeof img->error);
    if (rc) return rc;
    switch (rec->type) {
    case META_REC_NO_OP:
        return 0;
    case META_REC_REGISTER_BROKER:
        return apply_register(img, &rec->u.reg, offset);
    case META_REC_FENCE_BROKER:
    case META_REC_UNFENCE_BROKER:
    case META_REC_SHUTDOWN_BROKER:
        return apply_broker_state(img, rec->type, &rec->u.broker);
    case META_REC_TOPIC:
        return apply_topic(img, &rec->u.topic);
    case META_REC_PARTITION:
        return apply_partition(img, &rec->u.partition);
    case META_REC_PARTITION_CHANGE:
        return apply_change(img, &rec->u.change);
    case META_REC_REMOVE_TOPIC:
        return apply_remove_topic(img, rec->u.remove_topic);
    case META_REC_CONFIG:
        return apply_config(img, &rec->u.config);
    case META_REC_PRODUCER_IDS:
        return apply_producer_ids(img, &rec->u.producer_ids);
    }
    return fail(img, KL_EINVAL, "unknown record type %d", (int)rec->type); /* validate already refused it */
}

/* ---- snapshots ------------------------------------------------------------------ */

static int push_broker(meta_records_t *out, const meta_broker_t *b)
{
    meta_record_t r = {.type = META_REC_REGISTER_BROKER};
    r.u.reg.broker_id = b->id;
    r.u.reg.broker_epoch = b->epoch;
    memcpy(r.u.reg.incarnation, b->incarnation, KL_UUID_LEN);
    r.u.reg.listeners = b->listeners;
    r.u.reg.n_listeners = b->n_listeners;
    memcpy(r.u.reg.rack, b->rack, sizeof r.u.reg.rack);
    int rc = meta_records_push(out, &r);
    /* A registration starts fenced; the state records replay the rest. */
    meta_record_t s = {.u.broker = {b->id, b->epoch}};
    if (rc == 0 && b->state != META_BROKER_FENCED) {
        s.type = META_REC_UNFENCE_BROKER;
        rc = meta_records_push(out, &s);
    }
    if (rc == 0 && b->state == META_BROKER_SHUTTING_DOWN) {
        s.type = META_REC_SHUTDOWN_BROKER;
        rc = meta_records_push(out, &s);
    }
    return rc;
}

static int push_topic(meta_records_t *out, const meta_topic_t *t)
{
    meta_record_t r = {.type = META_REC_TOPIC};
    memcpy(r.u.topic.name, t->name, sizeof r.u.topic.name);
    memcpy(r.u.topic.uuid, t->uuid, KL_UUID_LEN);
    r.u.topic.configs = t->configs;
    r.u.topic.n_configs = t->n_configs;
    int rc = meta_records_push(out, &r);
    for (int i = 0; rc == 0 && i < t->n_parts; i++) {
        meta_record_t p = {.type = META_REC_PARTITION, .u.partition = t->parts[i]};
        rc = meta_records_push(out, &p);
    }
    return rc;
}

int meta_image_to_records(const meta_image_t *img, meta_records_t *out)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < img->n_brokers; i++) rc = push_broker(out, &img->brokers[i]);
    for (int i = 0; rc == 0 && i < img->n_topics; i++) rc = push_topic(out, img->by_name[i]);
    for (int i = 0; rc == 0 && i < img->n_cluster; i++) {
        meta_record_t r = {.type = META_REC_CONFIG, .u.config = {.resource = META_CONFIG_CLUSTER}};
        memcpy(r.u.config.key, img->cluster[i].key, sizeof r.u.config.key);
        memcpy(r.u.config.value, img->cluster[i].value, sizeof r.u.config.value);
        rc = meta_records_push(out, &r);
    }
    if (rc == 0 && img->has_block) {
        meta_record_t r = {.type = META_REC_PRODUCER_IDS, .u.producer_ids = img->last_block};
        rc = meta_records_push(out, &r);
    }
    return rc;
}

int meta_image_clone(const meta_image_t *img, meta_image_t **out)
{
    *out = NULL;
    meta_records_t recs;
    meta_records_init(&recs);
    meta_image_t *copy = meta_image_new();
    int rc = copy ? meta_image_to_records(img, &recs) : KL_ENOMEM;
    /* Snapshot records carry their epochs, so the offset is never used. */
    for (int i = 0; rc == 0 && i < recs.n; i++) rc = meta_image_apply(copy, &recs.recs[i], -1);
    meta_records_free(&recs);
    if (rc) {
        meta_image_free(copy);
        return rc;
    }
    *out = copy;
    return 0;
}

/* ---- equality ---------------------------------------------------------------------- */

static bool ids_equal(const int32_t *a, int na, const int32_t *b, int nb)
{
    return na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0;
}

static bool configs_equal(const meta_config_t *a, int na, const meta_config_t *b, int nb)
{
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (strcmp(a[i].key, b[i].key) != 0 || strcmp(a[i].value, b[i].value) != 0) return false;
    return true;
}

static bool broker_equal(const meta_broker_t *a, const meta_broker_t *b)
{
    if (a->id != b->id || a->epoch != b->epoch || a->state != b->state || strcmp(a->rack, b->rack) != 0 ||
        memcmp(a->incarnation, b->incarnation, KL_UUID_LEN) != 0 || a->n_listeners != b->n_listeners)
        return false;
    for (int i = 0; i < a->n_listeners; i++) {
        const meta_listener_t *x = &a->listeners[i], *y = &b->listeners[i];
        if (strcmp(x->name, y->name) != 0 || strcmp(x->host, y->host) != 0 || x->port != y->port) return false;
    }
    return true;
}

static bool partition_equal(const meta_partition_t *a, const meta_partition_t *b)
{
    return memcmp(a->topic, b->topic, KL_UUID_LEN) == 0 && a->partition == b->partition &&
           ids_equal(a->replicas, a->n_replicas, b->replicas, b->n_replicas) &&
           ids_equal(a->isr, a->n_isr, b->isr, b->n_isr) && a->leader == b->leader &&
           a->leader_epoch == b->leader_epoch && a->partition_epoch == b->partition_epoch;
}

static bool topic_equal(const meta_topic_t *a, const meta_topic_t *b)
{
    if (strcmp(a->name, b->name) != 0 || memcmp(a->uuid, b->uuid, KL_UUID_LEN) != 0 || a->n_parts != b->n_parts ||
        !configs_equal(a->configs, a->n_configs, b->configs, b->n_configs))
        return false;
    for (int i = 0; i < a->n_parts; i++)
        if (!partition_equal(&a->parts[i], &b->parts[i])) return false;
    return true;
}

bool meta_image_equal(const meta_image_t *a, const meta_image_t *b)
{
    if (a->n_brokers != b->n_brokers || a->n_topics != b->n_topics || a->n_partitions != b->n_partitions ||
        a->has_block != b->has_block || !configs_equal(a->cluster, a->n_cluster, b->cluster, b->n_cluster))
        return false;
    if (a->has_block && (a->last_block.broker_id != b->last_block.broker_id ||
                         a->last_block.first_id != b->last_block.first_id || a->last_block.size != b->last_block.size))
        return false;
    for (int i = 0; i < a->n_brokers; i++)
        if (!broker_equal(&a->brokers[i], &b->brokers[i])) return false;
    for (int i = 0; i < a->n_topics; i++)
        if (!topic_equal(a->by_name[i], b->by_name[i])) return false;
    return true;
}

const char *meta_broker_state_name(meta_broker_state_t s)
{
    switch (s) {
    case META_BROKER_FENCED: return "fenced";
    case META_BROKER_ACTIVE: return "active";
    case META_BROKER_SHUTTING_DOWN: return "shutting-down";
    }
    return "unknown";
}
