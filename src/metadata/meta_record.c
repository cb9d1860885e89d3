/* meta_record.c — metadata record validation, owned record lists, and the small helpers the core shares. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

int meta_why(char *why, size_t why_len, int err, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return err;
}

bool meta_uuid_is_zero(const uint8_t u[KL_UUID_LEN])
{
    uint8_t acc = 0;
    for (int i = 0; i < KL_UUID_LEN; i++) acc |= u[i];
    return acc == 0;
}

bool meta_cstr_fits(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

void meta_copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    memset(dst + n, 0, cap - n);
}

bool meta_has_id(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

bool meta_parse_int64(const char *s, int64_t *out)
{
    bool neg = *s == '-';
    const char *p = neg ? s + 1 : s;
    if (*p == '\0') return false;
    uint64_t v = 0;
    const uint64_t limit = neg ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return false;
        unsigned d = (unsigned)(*p - '0');
        if (v > (limit - d) / 10u) return false;
        v = v * 10u + d;
    }
    *out = neg ? (v == (uint64_t)INT64_MAX + 1u ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return true;
}

const char *meta_record_type_name(int type)
{
    static const char *const names[] = {
        [META_REC_NO_OP] = "NO_OP",
        [META_REC_REGISTER_BROKER] = "REGISTER_BROKER",
        [META_REC_FENCE_BROKER] = "FENCE_BROKER",
        [META_REC_UNFENCE_BROKER] = "UNFENCE_BROKER",
        [META_REC_SHUTDOWN_BROKER] = "SHUTDOWN_BROKER",
        [META_REC_TOPIC] = "TOPIC",
        [META_REC_PARTITION] = "PARTITION",
        [META_REC_PARTITION_CHANGE] = "PARTITION_CHANGE",
        [META_REC_REMOVE_TOPIC] = "REMOVE_TOPIC",
        [META_REC_CONFIG] = "CONFIG",
        [META_REC_PRODUCER_IDS] = "PRODUCER_IDS",
    };
    return type >= META_REC_NO_OP && type <= META_REC_TYPE_MAX ? names[type] : "UNKNOWN";
}

bool meta_topic_name_valid(const char *name)
{
    size_t n = strnlen(name, META_MAX_TOPIC_NAME_LEN + 1);
    if (n == 0 || n > META_MAX_TOPIC_NAME_LEN) return false;
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                  c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

static bool listener_name_valid(const char *name)
{
    if (!*name) return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

int meta_listener_set(meta_listener_t *l, const char *name, const char *host, int port)
{
    size_t nl = strnlen(name, META_MAX_LISTENER_NAME_LEN + 1), hl = strnlen(host, META_MAX_HOST_LEN + 1);
    if (nl > META_MAX_LISTENER_NAME_LEN || hl > META_MAX_HOST_LEN) return KL_ETOOBIG;
    if (!listener_name_valid(name) || hl == 0 || port < 1 || port > 65535) return KL_EINVAL;
    memset(l, 0, sizeof *l);
    memcpy(l->name, name, nl);
    memcpy(l->host, host, hl);
    l->port = (uint16_t)port;
    return 0;
}

/* ---- validation ------------------------------------------------------------- */

static int check_listeners(const meta_listener_t *ls, int n, char *why, size_t len)
{
    if (n < 1 || n > META_MAX_LISTENERS || !ls)
        return meta_why(why, len, KL_EINVAL, "a broker needs 1..%d listeners, not %d", META_MAX_LISTENERS, n);
    for (int i = 0; i < n; i++) {
        const meta_listener_t *l = &ls[i];
        if (!meta_cstr_fits(l->name, sizeof l->name) || !listener_name_valid(l->name))
            return meta_why(why, len, KL_EINVAL, "listener %d: name must be 1..%d of [A-Za-z0-9_-]", i,
                            META_MAX_LISTENER_NAME_LEN);
        if (!meta_cstr_fits(l->host, sizeof l->host) || !l->host[0])
            return meta_why(why, len, KL_EINVAL, "listener %s: host must be 1..%d chars", l->name, META_MAX_HOST_LEN);
        if (l->port == 0) return meta_why(why, len, KL_EINVAL, "listener %s: port 0", l->name);
        for (int j = 0; j < i; j++)
            if (strcmp(ls[j].name, l->name) == 0)
                return meta_why(why, len, KL_EINVAL, "listener %s given twice", l->name);
    }
    return 0;
}

static int check_configs(const meta_config_t *cs, int n, char *why, size_t len)
{
    if (n < 0 || n > META_MAX_CONFIGS || (n > 0 && !cs))
        return meta_why(why, len, KL_EINVAL, "a topic has 0..%d configs, not %d", META_MAX_CONFIGS, n);
    for (int i = 0; i < n; i++) {
        if (!meta_cstr_fits(cs[i].key, sizeof cs[i].key) || !cs[i].key[0] ||
            !meta_cstr_fits(cs[i].value, sizeof cs[i].value))
            return meta_why(why, len, KL_EINVAL, "config %d: key must be 1..%d chars, value at most %d", i,
                            META_MAX_CONFIG_KEY_LEN, META_MAX_CONFIG_VALUE_LEN);
        for (int j = 0; j < i; j++)
            if (strcmp(cs[j].key, cs[i].key) == 0)
                return meta_why(why, len, KL_EINVAL, "config %s given twice", cs[i].key);
    }
    return 0;
}

/* Distinct broker ids, 1..META_MAX_REPLICAS of them. */
static int check_ids(const char *what, const int32_t *ids, int n, char *why, size_t len)
{
    if (n < 1 || n > META_MAX_REPLICAS)
        return meta_why(why, len, KL_EINVAL, "%s: 1..%d brokers, not %d", what, META_MAX_REPLICAS, n);
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0) return meta_why(why, len, KL_EINVAL, "%s: broker id %d", what, (int)ids[i]);
        if (meta_has_id(ids, i, ids[i]))
            return meta_why(why, len, KL_EINVAL, "%s: broker %d twice", what, (int)ids[i]);
    }
    return 0;
}

static int check_partition_ref(const uint8_t topic[KL_UUID_LEN], int32_t partition, char *why, size_t len)
{
    if (meta_uuid_is_zero(topic)) return meta_why(why, len, KL_EINVAL, "zero topic uuid");
    if (partition < 0 || partition >= META_MAX_TOPIC_PARTITIONS)
        return meta_why(why, len, KL_EINVAL, "partition %d out of 0..%d", (int)partition, META_MAX_TOPIC_PARTITIONS - 1);
    return 0;
}

/* The partition invariants (meta.h): apply checks the state a change leads
 * to with this too. */
static int check_partition(const meta_partition_t *p, char *why, size_t len)
{
    int rc = check_partition_ref(p->topic, p->partition, why, len);
    if (rc == 0) rc = check_ids("replicas", p->replicas, p->n_replicas, why, len);
    if (rc == 0) rc = check_ids("isr", p->isr, p->n_isr, why, len);
    if (rc) return rc;
    /* The ISR is kept in replica order, so "the first ISR member in replica
     * order" and "the first ISR member" are the same thing everywhere. */
    for (int i = 0, r = 0; i < p->n_isr; i++, r++) {
        while (r < p->n_replicas && p->replicas[r] != p->isr[i]) r++;
        if (r == p->n_replicas)
            return meta_why(why, len, KL_EINVAL, "isr member %d is not a replica, or the isr is not in replica order",
                            (int)p->isr[i]);
    }
    if (p->leader != META_NO_LEADER && !meta_has_id(p->isr, p->n_isr, p->leader))
        return meta_why(why, len, KL_EINVAL, "leader %d is not in the isr", (int)p->leader);
    if (p->leader_epoch < 0 || p->partition_epoch < 0)
        return meta_why(why, len, KL_EINVAL, "negative epoch");
    return 0;
}

int meta_partition_check(const meta_partition_t *p, char *why, size_t why_len)
{
    return check_partition(p, why, why_len);
}

static int check_change(const meta_partition_change_t *c, char *why, size_t len)
{
    int rc = check_partition_ref(c->topic, c->partition, why, len);
    if (rc) return rc;
    if (c->leader < META_LEADER_UNCHANGED) return meta_why(why, len, KL_EINVAL, "leader %d", (int)c->leader);
    if (c->n_isr != -1 && (rc = check_ids("isr", c->isr, c->n_isr, why, len))) return rc;
    if (c->n_replicas != -1 && (rc = check_ids("replicas", c->replicas, c->n_replicas, why, len))) return rc;
    if (c->leader == META_LEADER_UNCHANGED && c->n_isr == -1 && c->n_replicas == -1)
        return meta_why(why, len, KL_EINVAL, "partition change changes nothing");
    return 0;
}

int meta_record_validate(const meta_record_t *rec, char *why, size_t len)
{
    switch (rec->type) {
    case META_REC_NO_OP:
        return 0;
    case META_REC_REGISTER_BROKER: {
        const meta_register_broker_t *r = &rec->u.reg;
        if (r->broker_id < 0) return meta_why(why, len, KL_EINVAL, "broker id %d", (int)r->broker_id);
        if (r->broker_epoch < META_EPOCH_FROM_OFFSET)
            return meta_why(why, len, KL_EINVAL, "broker epoch %lld", (long long)r->broker_epoch);
        if (meta_uuid_is_zero(r->incarnation)) return meta_why(why, len, KL_EINVAL, "zero incarnation id");
        if (!meta_cstr_fits(r->rack, sizeof r->rack))
            return meta_why(why, len, KL_EINVAL, "rack longer than %d", META_MAX_RACK_LEN);
        return check_listeners(r->listeners, r->n_listeners, why, len);
    }
    case META_REC_FENCE_BROKER:
    case META_REC_UNFENCE_BROKER:
    case META_REC_SHUTDOWN_BROKER:
        if (rec->u.broker.broker_id < 0 || rec->u.broker.broker_epoch < 0)
            return meta_why(why, len, KL_EINVAL, "broker %d epoch %lld", (int)rec->u.broker.broker_id,
                            (long long)rec->u.broker.broker_epoch);
        return 0;
    case META_REC_TOPIC: {
        const meta_topic_record_t *t = &rec->u.topic;
        if (!meta_cstr_fits(t->name, sizeof t->name) || !meta_topic_name_valid(t->name))
            return meta_why(why, len, KL_EINVAL, "invalid topic name");
        if (meta_uuid_is_zero(t->uuid)) return meta_why(why, len, KL_EINVAL, "zero topic uuid");
        return check_configs(t->configs, t->n_configs, why, len);
    }
    case META_REC_PARTITION:
        return check_partition(&rec->u.partition, why, len);
    case META_REC_PARTITION_CHANGE:
        return check_change(&rec->u.change, why, len);
    case META_REC_REMOVE_TOPIC:
        return meta_uuid_is_zero(rec->u.remove_topic) ? meta_why(why, len, KL_EINVAL, "zero topic uuid") : 0;
    case META_REC_CONFIG: {
        const meta_config_record_t *c = &rec->u.config;
        if (c->resource != META_CONFIG_CLUSTER && c->resource != META_CONFIG_TOPIC)
            return meta_why(why, len, KL_EINVAL, "config resource %d", (int)c->resource);
        if ((c->resource == META_CONFIG_TOPIC) == meta_uuid_is_zero(c->topic))
            return meta_why(why, len, KL_EINVAL, "a topic config names its topic's uuid, a cluster config none");
        if (!meta_cstr_fits(c->key, sizeof c->key) || !c->key[0] || !meta_cstr_fits(c->value, sizeof c->value))
            return meta_why(why, len, KL_EINVAL, "config key must be 1..%d chars, value at most %d",
                            META_MAX_CONFIG_KEY_LEN, META_MAX_CONFIG_VALUE_LEN);
        return 0;
    }
    case META_REC_PRODUCER_IDS: {
        const meta_producer_ids_t *b = &rec->u.producer_ids;
        if (b->broker_id < 0 || b->first_id < 0 || b->size < 1 || b->size > META_MAX_PRODUCER_ID_BLOCK ||
            b->first_id > INT64_MAX - b->size)
            return meta_why(why, len, KL_EINVAL, "producer id block %lld+%d for broker %d", (long long)b->first_id,
                            (int)b->size, (int)b->broker_id);
        return 0;
    }
    }
    return meta_why(why, len, KL_EINVAL, "unknown record type %d", (int)rec->type);
}

/* ---- record lists ----------------------------------------------------------- */

void meta_records_init(meta_records_t *l)
{
    memset(l, 0, sizeof *l);
}

static void *dup_array(const void *p, size_t n, size_t size)
{
    if (n == 0) return NULL;
    void *d = malloc(n * size);
    if (d) memcpy(d, p, n * size);
    return d;
}

/* The arrays a record points to; only records in a list own them. */
static void release(meta_record_t *r)
{
    if (r->type == META_REC_REGISTER_BROKER) free((void *)r->u.reg.listeners);
    if (r->type == META_REC_TOPIC) free((void *)r->u.topic.configs);
}

int meta_records_push(meta_records_t *l, const meta_record_t *rec)
{
    if (l->n >= META_MAX_RECORDS) return KL_ETOOBIG;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        if (cap > META_MAX_RECORDS) cap = META_MAX_RECORDS;
        meta_record_t *recs = realloc(l->recs, (size_t)cap * sizeof *recs);
        if (!recs) return KL_ENOMEM;
        l->recs = recs;
        l->cap = cap;
    }
    /* The copy owns its arrays. A malformed count copies no array (and
     * validate refuses the record later), so the list never frees memory it
     * does not own. */
    meta_record_t copy = *rec;
    if (rec->type == META_REC_REGISTER_BROKER) {
        int n = rec->u.reg.n_listeners;
        copy.u.reg.listeners = NULL;
        if (rec->u.reg.listeners && n > 0 && n <= META_MAX_LISTENERS &&
            !(copy.u.reg.listeners = dup_array(rec->u.reg.listeners, (size_t)n, sizeof(meta_listener_t))))
            return KL_ENOMEM;
    }
    if (rec->type == META_REC_TOPIC) {
        int n = rec->u.topic.n_configs;
        copy.u.topic.configs = NULL;
        if (rec->u.topic.configs && n > 0 && n <= META_MAX_CONFIGS &&
            !(copy.u.topic.configs = dup_array(rec->u.topic.configs, (size_t)n, sizeof(meta_config_t))))
            return KL_ENOMEM;
    }
    l->recs[l->n++] = copy;
    return 0;
}

void meta_records_clear(meta_records_t *l)
{
    for (int i = 0; i < l->n; i++) release(&l->recs[i]);
    l->n = 0;
}

void meta_records_free(meta_records_t *l)
{
    meta_records_clear(l);
    free(l->recs);
    meta_records_init(l);
}
