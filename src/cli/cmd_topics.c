/* cmd_topics.c — `keelctl topics create|describe|list|delete`, with Kafka's
 * kafka-topics.sh flags and describe layout (DESIGN.md §7). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "keel/err.h"
#include "keel/uuid.h"

#include "cli.h"

/* --config k=v ... into canonical, distinct topic configs; usage error otherwise. */
static int parse_configs(const cli_multi_t *m, wire_create_topic_req_t *req)
{
    for (int i = 0; i < m->n; i++) {
        const char *eq = strchr(m->v[i], '=');
        size_t klen = eq ? (size_t)(eq - m->v[i]) : 0;
        if (!eq || klen == 0 || klen > META_MAX_CONFIG_KEY_LEN)
            return cli_usage_error("topics", "create", "--config '%s': want key=value", m->v[i]);
        meta_config_t *c = &req->configs[req->n_configs];
        memcpy(c->key, m->v[i], klen);
        c->key[klen] = '\0';
        char why[META_MSG_LEN] = "";
        if (meta_config_canonical(c->key, eq + 1, c->value, why, sizeof why) != 0)
            return cli_usage_error("topics", "create", "--config %s: %s", m->v[i], why);
        for (int k = 0; k < req->n_configs; k++)
            if (strcmp(req->configs[k].key, c->key) == 0)
                return cli_usage_error("topics", "create", "--config %s given twice", c->key);
        req->n_configs++;
    }
    return 0;
}

static int check_name(const char *verb, const char *topic)
{
    if (!topic) return cli_usage_error("topics", verb, "--topic T is required");
    if (!meta_topic_name_valid(topic))
        return cli_usage_error("topics", verb, "'%s' is not a topic name (1..%d of [a-zA-Z0-9._-], not . or ..)",
                               topic, META_MAX_TOPIC_NAME_LEN);
    return 0;
}

int cli_topics_create(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = NULL;
    int64_t partitions = -1, rf = -1;
    cli_multi_t configs = {.n = 0};
    bool if_not_exists = false;
    const cli_opt_t opts[] = {
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--partitions", CLI_OPT_INT, &partitions, 1, META_MAX_TOPIC_PARTITIONS, NULL},
        {"--replication-factor", CLI_OPT_INT, &rf, 1, META_MAX_REPLICAS, NULL},
        {"--config", CLI_OPT_MULTI, &configs, 0, 0, NULL},
        {"--if-not-exists", CLI_OPT_BOOL, &if_not_exists, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "topics", "create", opts);
    if (rc >= 0) return rc;
    if (check_name("create", topic) != 0) return CLI_EXIT_USAGE;
    wire_create_topic_req_t req;
    memset(&req, 0, sizeof req);
    snprintf(req.name, sizeof req.name, "%s", topic);
    req.partitions = (int32_t)partitions;
    req.replication_factor = (int32_t)rf;
    if (parse_configs(&configs, &req) != 0) return CLI_EXIT_USAGE;

    cli_client_t c;
    if ((rc = cli_client_open(ctx, "topics create", &c)) != CLI_EXIT_OK) return rc;
    wire_msg_t *resp = NULL;
    int err = kc_create_topic(c.kc, &req, ctx->timeout_ms, &resp);
    if (err == 0) {
        printf("Created topic %s.\n", topic);
        rc = cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    } else if (err == KL_EEXIST) {
        if (!if_not_exists) cli_errorf("topics create: topic '%s' already exists", topic);
        rc = if_not_exists ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    } else {
        char what[META_MAX_TOPIC_NAME_LEN + 32];
        snprintf(what, sizeof what, "creating topic '%s'", topic);
        rc = cli_client_fail(&c, what, err, resp);
    }
    wire_msg_free(resp);
    cli_client_close(&c);
    return rc;
}

static void ids_text(const int32_t *ids, int n)
{
    for (int i = 0; i < n; i++) printf("%s%" PRId32, i ? "," : "", ids[i]);
}

static void ids_json(cli_json_t *j, const char *key, const int32_t *ids, int n)
{
    cli_json_begin_array(j, key);
    for (int i = 0; i < n; i++) cli_json_int(j, NULL, ids[i]);
    cli_json_end_array(j);
}

static int replication_factor(const wire_topic_info_t *t) { return t->n_partitions ? t->partitions[0].n_replicas : 0; }

/* kafka-topics.sh --describe: a topic line, then one tab-indented line per partition. */
static void describe_text(const wire_topic_info_t *t)
{
    char id[KL_UUID_STR_LEN + 1];
    kl_uuid_to_string(t->topic_id, id);
    printf("Topic: %s\tTopicId: %s\tPartitionCount: %d\tReplicationFactor: %d\tConfigs: ", t->name, id,
           t->n_partitions, replication_factor(t));
    for (int i = 0; i < t->n_configs; i++) printf("%s%s=%s", i ? "," : "", t->configs[i].key, t->configs[i].value);
    putchar('\n');
    for (int i = 0; i < t->n_partitions; i++) {
        const meta_partition_t *p = &t->partitions[i];
        printf("\tTopic: %s\tPartition: %" PRId32 "\tLeader: ", t->name, p->partition);
        if (p->leader == META_NO_LEADER) fputs("none", stdout);
        else printf("%" PRId32, p->leader);
        fputs("\tReplicas: ", stdout);
        ids_text(p->replicas, p->n_replicas);
        fputs("\tIsr: ", stdout);
        ids_text(p->isr, p->n_isr);
        printf("\tLeaderEpoch: %" PRId32 "\n", p->leader_epoch);
    }
}

static void describe_json(cli_json_t *j, const wire_topic_info_t *t)
{
    char id[KL_UUID_STR_LEN + 1];
    kl_uuid_to_string(t->topic_id, id);
    cli_json_begin_object(j, NULL);
    cli_json_string(j, "topic", t->name);
    cli_json_string(j, "topic_id", id);
    cli_json_begin_object(j, "configs");
    for (int i = 0; i < t->n_configs; i++) cli_json_string(j, t->configs[i].key, t->configs[i].value);
    cli_json_end_object(j);
    cli_json_begin_array(j, "partitions");
    for (int i = 0; i < t->n_partitions; i++) {
        const meta_partition_t *p = &t->partitions[i];
        cli_json_begin_object(j, NULL);
        cli_json_int(j, "partition", p->partition);
        cli_json_int(j, "leader", p->leader);
        cli_json_int(j, "leader_epoch", p->leader_epoch);
        ids_json(j, "replicas", p->replicas, p->n_replicas);
        ids_json(j, "isr", p->isr, p->n_isr);
        cli_json_end_object(j);
    }
    cli_json_end_array(j);
    cli_json_end_object(j);
}

/* describe and list: the Metadata of one topic (which must exist) or all. */
static int read_topics(cli_ctx_t *ctx, const char *cmd, const char *topic, cli_client_t *c, wire_msg_t **resp)
{
    int rc = cli_client_open(ctx, cmd, c);
    if (rc != CLI_EXIT_OK) return rc;
    if (topic) {
        const wire_topic_info_t *t;
        rc = cli_topic_metadata(c, topic, resp, &t);
    } else {
        int err = kc_metadata(c->kc, NULL, 0, ctx->timeout_ms, resp);
        rc = err == 0 ? CLI_EXIT_OK : cli_client_fail(c, "fetching metadata", err, *resp);
    }
    if (rc != CLI_EXIT_OK) cli_client_close(c);
    return rc;
}

/* describe and list: the same read, one printer per topic. */
static int show_topics(cli_ctx_t *ctx, const char *cmd, const char *topic, bool json,
                       void (*show)(cli_json_t *j, bool json, const wire_topic_info_t *t))
{
    cli_client_t c;
    wire_msg_t *resp = NULL;
    int rc = read_topics(ctx, cmd, topic, &c, &resp);
    if (rc != CLI_EXIT_OK) return rc;
    const wire_metadata_resp_t *m = &resp->body.metadata_resp;
    cli_json_t j;
    cli_json_init(&j, stdout);
    if (json) cli_json_begin_array(&j, NULL);
    for (int i = 0; i < m->n_topics; i++) {
        const wire_topic_info_t *t = &m->topics[i];
        if (t->error != 0 || (topic && strcmp(t->name, topic) != 0)) continue;
        show(&j, json, t);
    }
    if (json) {
        cli_json_end_array(&j);
        cli_json_finish(&j);
    }
    rc = cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    wire_msg_free(resp);
    cli_client_close(&c);
    return rc;
}

static void show_described(cli_json_t *j, bool json, const wire_topic_info_t *t)
{
    if (json) describe_json(j, t);
    else describe_text(t);
}

static void show_name(cli_json_t *j, bool json, const wire_topic_info_t *t)
{
    if (json) cli_json_string(j, NULL, t->name);
    else puts(t->name);
}

int cli_topics_describe(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = NULL;
    bool json = false;
    const cli_opt_t opts[] = {
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--json", CLI_OPT_BOOL, &json, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "topics", "describe", opts);
    if (rc >= 0) return rc;
    if (topic && check_name("describe", topic) != 0) return CLI_EXIT_USAGE;
    return show_topics(ctx, "topics describe", topic, json, show_described);
}

int cli_topics_list(cli_ctx_t *ctx, int argc, char **argv)
{
    bool json = false;
    const cli_opt_t opts[] = {{"--json", CLI_OPT_BOOL, &json, 0, 0, NULL}, {NULL, 0, NULL, 0, 0, NULL}};
    int rc = cli_parse(ctx, argc, argv, "topics", "list", opts);
    if (rc >= 0) return rc;
    return show_topics(ctx, "topics list", NULL, json, show_name);
}

int cli_topics_delete(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = NULL;
    bool if_exists = false;
    const cli_opt_t opts[] = {
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--if-exists", CLI_OPT_BOOL, &if_exists, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "topics", "delete", opts);
    if (rc >= 0) return rc;
    if (check_name("delete", topic) != 0) return CLI_EXIT_USAGE;
    cli_client_t c;
    if ((rc = cli_client_open(ctx, "topics delete", &c)) != CLI_EXIT_OK) return rc;
    wire_msg_t *resp = NULL;
    int err = kc_delete_topic(c.kc, topic, ctx->timeout_ms, &resp);
    if (err == 0) {
        printf("Deleted topic %s.\n", topic);
        rc = cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    } else if (err == KL_EUNKNOWNPARTITION || err == KL_ENOENT) {
        if (!if_exists) cli_errorf("topics delete: topic '%s' does not exist", topic);
        rc = if_exists ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    } else {
        char what[META_MAX_TOPIC_NAME_LEN + 32];
        snprintf(what, sizeof what, "deleting topic '%s'", topic);
        rc = cli_client_fail(&c, what, err, resp);
    }
    wire_msg_free(resp);
    cli_client_close(&c);
    return rc;
}
