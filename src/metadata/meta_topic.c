/* meta_topic.c — controller decisions about topics, configs and producer-id blocks, and the controller's own settings (DESIGN.md §3). */
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

void meta_ctl_config_defaults(meta_ctl_config_t *cfg)
{
    *cfg = (meta_ctl_config_t){
        .broker_session_timeout_ms = 9000,
        .broker_disconnect_grace_ms = 1000,
        .unclean_leader_election_enable = false,
        .auto_leader_rebalance_enable = true,
        .leader_imbalance_per_broker_percentage = 10,
        .num_partitions = 1,
        .default_replication_factor = 1,
        .producer_id_block_size = 1000,
    };
}

int meta_ctl_config_check(const meta_ctl_config_t *cfg, char *why, size_t why_len)
{
    if (cfg->broker_session_timeout_ms < 1 || cfg->broker_disconnect_grace_ms < 0)
        return meta_why(why, why_len, KL_ECONFIG, "broker session timeout must be >= 1 ms and disconnect grace >= 0");
    if (cfg->leader_imbalance_per_broker_percentage < 0 || cfg->leader_imbalance_per_broker_percentage > 100)
        return meta_why(why, why_len, KL_ECONFIG, "leader imbalance percentage must be in [0, 100]");
    if (cfg->num_partitions < 1 || cfg->num_partitions > META_MAX_TOPIC_PARTITIONS)
        return meta_why(why, why_len, KL_ECONFIG, "num.partitions must be in [1, %d]", META_MAX_TOPIC_PARTITIONS);
    if (cfg->default_replication_factor < 1 || cfg->default_replication_factor > META_MAX_REPLICAS)
        return meta_why(why, why_len, KL_ECONFIG, "default.replication.factor must be in [1, %d]", META_MAX_REPLICAS);
    if (cfg->producer_id_block_size < 1 || cfg->producer_id_block_size > META_MAX_PRODUCER_ID_BLOCK)
        return meta_why(why, why_len, KL_ECONFIG, "producer id block size must be in [1, %d]", META_MAX_PRODUCER_ID_BLOCK);
    return 0;
}

/* Kafka refuses names equal up to '.' versus '_': metric names would clash. */
static bool names_collide(const char *a, const char *b)
{
    for (; *a && *b; a++, b++) {
        char x = *a == '.' ? '_' : *a, y = *b == '.' ? '_' : *b;
        if (x != y) return false;
    }
    return *a == *b;
}

static int cmp_config(const void *a, const void *b)
{
    return strcmp(((const meta_config_t *)a)->key, ((const meta_config_t *)b)->key);
}

/* Canonical value of one config for a topic of replication factor rf (0:
 * cluster-wide, no replica bound). */
static int check_config(meta_decision_t *out, const char *key, const char *value, int rf, meta_config_t *c)
{
    if (!key || !value) return meta_refuse(out, KL_EINVAL, "config without a key or value");
    char why[META_MSG_LEN];
    if (meta_config_canonical(key, value, c->value, why, sizeof why)) return meta_refuse(out, KL_EINVAL, "%s", why);
    meta_copy_str(c->key, sizeof c->key, key);
    int64_t min_isr;
    if (rf > 0 && strcmp(key, META_CFG_MIN_INSYNC_REPLICAS) == 0 && meta_parse_int64(c->value, &min_isr) && min_isr > rf)
        return meta_refuse(out, KL_EINVAL, "%s=%s exceeds the replication factor %d: acks=all could never succeed", key,
                           c->value, rf);
    return 0;
}

int meta_decide_create_topic(const meta_image_t *img, const meta_create_topic_req_t *req, const meta_ctl_config_t *cfg,
                             meta_decision_t *out)
{
    meta_decision_begin(out);
    const char *name = req->name ? req->name : "";
    if (!meta_topic_name_valid(name))
        return meta_refuse(out, KL_EINVAL, "invalid topic name \"%.64s\": 1..%d of [a-zA-Z0-9._-], not \".\" or \"..\"",
                           name, META_MAX_TOPIC_NAME_LEN);
    /* Partition 0 of this name would be the directory of the broker's own
     * copy of the metadata log (KRaft reserves it the same way). */
    if (names_collide(name, META_RESERVED_TOPIC))
        return meta_refuse(out, KL_EINVAL, "topic name %s is reserved for the metadata log", name);
    if (meta_image_topic(img, name)) return meta_refuse(out, KL_EEXIST, "topic %s already exists", name);
    for (int i = 0; i < meta_image_topic_count(img); i++)
        if (names_collide(meta_image_topic_at(img, i)->name, name))
            return meta_refuse(out, KL_EINVAL, "topic %s collides with existing topic %s ('.' and '_' are equivalent)", name,
                               meta_image_topic_at(img, i)->name);
    if (meta_uuid_is_zero(req->uuid)) return meta_refuse(out, KL_EINVAL, "topic %s: zero uuid", name);
    if (meta_image_topic_by_uuid(img, req->uuid)) return meta_refuse(out, KL_EEXIST, "topic %s: uuid already in use", name);
    int32_t partitions = req->partitions == -1 ? cfg->num_partitions : req->partitions;
    int32_t rf = req->replication_factor == -1 ? cfg->default_replication_factor : req->replication_factor;
    if (partitions < 1 || partitions > META_MAX_TOPIC_PARTITIONS)
        return meta_refuse(out, KL_EINVAL, "topic %s: partitions must be in [1, %d], not %d", name, META_MAX_TOPIC_PARTITIONS,
                           (int)partitions);
    if (rf < 1 || rf > META_MAX_REPLICAS)
        return meta_refuse(out, KL_EINVAL, "topic %s: replication factor must be in [1, %d], not %d", name, META_MAX_REPLICAS,
                           (int)rf);
    if (meta_image_topic_count(img) >= META_MAX_TOPICS) return meta_refuse(out, KL_ETOOBIG, "already %d topics", META_MAX_TOPICS);
    if (meta_image_partition_count(img) > META_MAX_PARTITIONS - partitions)
        return meta_refuse(out, KL_ETOOBIG, "topic %s: %d more partitions exceed the cluster's %d", name, (int)partitions,
                           META_MAX_PARTITIONS);

    meta_assign_broker_t active[META_MAX_BROKERS];
    int n_active = 0;
    for (int i = 0; i < meta_image_broker_count(img); i++) {
        const meta_broker_t *b = meta_image_broker_at(img, i);
        if (b->state == META_BROKER_ACTIVE) active[n_active++] = (meta_assign_broker_t){b->id, b->rack};
    }
    if (rf > n_active)
        return meta_refuse(out, KL_EINVAL, "topic %s: replication factor %d exceeds the %d active brokers", name, (int)rf,
                           n_active);

    if (req->n_configs < 0 || req->n_configs > META_MAX_CONFIGS || (req->n_configs > 0 && !req->configs))
        return meta_refuse(out, KL_EINVAL, "topic %s: 0..%d configs, not %d", name, META_MAX_CONFIGS, req->n_configs);
    meta_config_t configs[META_MAX_CONFIGS];
    for (int i = 0; i < req->n_configs; i++) {
        int rc = check_config(out, req->configs[i].key, req->configs[i].value, (int)rf, &configs[i]);
        if (rc) return rc;
        for (int j = 0; j < i; j++)
            if (strcmp(configs[j].key, configs[i].key) == 0)
                return meta_refuse(out, KL_EINVAL, "topic %s: config %s given twice", name, configs[i].key);
    }
    qsort(configs, (size_t)req->n_configs, sizeof *configs, cmp_config);

    int32_t (*rows)[META_MAX_REPLICAS] = malloc((size_t)partitions * sizeof *rows);
    if (!rows) return meta_refuse(out, KL_ENOMEM, "out of memory");
    /* Kafka starts at a random broker so that many topics' leaders spread;
     * the uuid is random already, and keeps this function deterministic. */
    const uint8_t *u = req->uuid;
    uint32_t start = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
    uint32_t shift = (uint32_t)u[4] | (uint32_t)u[5] << 8 | (uint32_t)u[6] << 16 | (uint32_t)u[7] << 24;
    int rc = meta_assign_replicas(active, n_active, partitions, (int)rf, start, shift, rows);
    KL_ASSERT(rc != KL_EINVAL); /* every argument was checked above */
    if (rc) {
        free(rows);
        return meta_refuse(out, rc, "replica assignment: %s", kl_strerror(rc));
    }
    meta_record_t t = {.type = META_REC_TOPIC};
    meta_copy_str(t.u.topic.name, sizeof t.u.topic.name, name);
    memcpy(t.u.topic.uuid, req->uuid, KL_UUID_LEN);
    t.u.topic.configs = configs;
    t.u.topic.n_configs = req->n_configs;
    rc = meta_push(out, &t);
    for (int32_t p = 0; rc == 0 && p < partitions; p++) {
        meta_record_t r = {.type = META_REC_PARTITION};
        meta_partition_t *part = &r.u.partition;
        memcpy(part->topic, req->uuid, KL_UUID_LEN);
        part->partition = p;
        memcpy(part->replicas, rows[p], (size_t)rf * sizeof *part->replicas);
        memcpy(part->isr, rows[p], (size_t)rf * sizeof *part->isr);
        part->n_replicas = part->n_isr = (int)rf;
        part->leader = rows[p][0];
        rc = meta_push(out, &r);
    }
    free(rows);
    if (rc == 0)
        meta_note(out, 1, "topic %s created: %d partitions, replication factor %d", name, (int)partitions, (int)rf);
    return rc;
}

int meta_decide_delete_topic(const meta_image_t *img, const char *name, const meta_ctl_config_t *cfg, meta_decision_t *out)
{
    (void)cfg;
    meta_decision_begin(out);
    const meta_topic_t *t = name ? meta_image_topic(img, name) : NULL;
    if (!t) return meta_refuse(out, KL_EUNKNOWNPARTITION, "unknown topic %.64s", name ? name : "(none)");
    meta_record_t r = {.type = META_REC_REMOVE_TOPIC};
    memcpy(r.u.remove_topic, t->uuid, KL_UUID_LEN);
    int rc = meta_push(out, &r);
    if (rc == 0) meta_note(out, 1, "topic %s deleted (%d partitions)", t->name, t->n_parts);
    return rc;
}

static const char *own_config(const meta_topic_t *t, const char *key)
{
    for (int i = 0; i < t->n_configs; i++)
        if (strcmp(t->configs[i].key, key) == 0) return t->configs[i].value;
    return NULL;
}

int meta_decide_alter_configs(const meta_image_t *img, const meta_alter_configs_req_t *req, const meta_ctl_config_t *cfg,
                              meta_decision_t *out)
{
    (void)cfg;
    meta_decision_begin(out);
    const meta_topic_t *t = NULL;
    if (req->resource == META_CONFIG_TOPIC) {
        t = req->topic ? meta_image_topic(img, req->topic) : NULL;
        if (!t) return meta_refuse(out, KL_EUNKNOWNPARTITION, "unknown topic %.64s", req->topic ? req->topic : "(none)");
    } else if (req->resource != META_CONFIG_CLUSTER) {
        return meta_refuse(out, KL_EINVAL, "config resource %d", (int)req->resource);
    }
    if (req->n_ops < 0 || req->n_ops > META_MAX_CONFIGS || (req->n_ops > 0 && !req->ops))
        return meta_refuse(out, KL_EINVAL, "0..%d config changes at once, not %d", META_MAX_CONFIGS, req->n_ops);
    int rf = t && t->n_parts > 0 ? t->parts[0].n_replicas : 0;
    int n_configs = t ? t->n_configs : meta_image_cluster_config_count(img);
    meta_config_record_t recs[META_MAX_CONFIGS];
    int n_recs = 0;
    for (int i = 0; i < req->n_ops; i++) {
        const meta_config_kv_t *op = &req->ops[i];
        meta_config_t c;
        if (!op->key) return meta_refuse(out, KL_EINVAL, "config change without a key");
        if (op->value) {
            int rc = check_config(out, op->key, op->value, rf, &c);
            if (rc) return rc;
        } else if (!meta_config_known(op->key)) {
            return meta_refuse(out, KL_EINVAL, "unknown config %.*s", META_MAX_CONFIG_KEY_LEN, op->key);
        } else {
            meta_copy_str(c.key, sizeof c.key, op->key);
        }
        for (int j = 0; j < i; j++)
            if (strcmp(req->ops[j].key, op->key) == 0) return meta_refuse(out, KL_EINVAL, "config %s changed twice", op->key);
        /* Only the resource's own value counts: a topic inheriting the
         * cluster's value still gets its own record when set explicitly. */
        const char *cur = t ? own_config(t, c.key) : meta_image_config(img, NULL, c.key);
        if (op->value ? (cur && strcmp(cur, c.value) == 0) : !cur) continue; /* no change */
        n_configs += op->value ? (cur ? 0 : 1) : -1;
        meta_config_record_t *r = &recs[n_recs++];
        memset(r, 0, sizeof *r);
        r->resource = req->resource;
        if (t) memcpy(r->topic, t->uuid, KL_UUID_LEN);
        r->remove = !op->value;
        meta_copy_str(r->key, sizeof r->key, c.key);
        if (op->value) meta_copy_str(r->value, sizeof r->value, c.value);
    }
    if (n_configs > META_MAX_CONFIGS) return meta_refuse(out, KL_ETOOBIG, "more than %d configs", META_MAX_CONFIGS);
    for (int i = 0; i < n_recs; i++) {
        meta_record_t r = {.type = META_REC_CONFIG, .u.config = recs[i]};
        int rc = meta_push(out, &r);
        if (rc) return rc;
        meta_note(out, 1, "%s%s config %s %s%s", t ? "topic " : "cluster", t ? t->name : "", recs[i].key,
                  recs[i].remove ? "deleted" : "= ", recs[i].remove ? "" : recs[i].value);
    }
    return 0;
}

int meta_decide_producer_ids(const meta_image_t *img, int32_t broker_id, int64_t broker_epoch, const meta_ctl_config_t *cfg,
                             meta_decision_t *out)
{
    meta_decision_begin(out);
    const meta_broker_t *b = meta_image_broker(img, broker_id);
    if (!b) return meta_refuse(out, KL_ENOENT, "broker %d is not registered", (int)broker_id);
    if (b->epoch != broker_epoch)
        return meta_refuse(out, KL_EFENCED, "broker %d: epoch %lld is not the registered %lld", (int)broker_id,
                           (long long)broker_epoch, (long long)b->epoch);
    int64_t first = meta_image_next_producer_id(img);
    if (first > INT64_MAX - cfg->producer_id_block_size)
        return meta_refuse(out, KL_ERANGE, "producer ids exhausted at %lld", (long long)first);
    meta_record_t r = {.type = META_REC_PRODUCER_IDS, .u.producer_ids = {broker_id, first, cfg->producer_id_block_size}};
    return meta_push(out, &r);
}
