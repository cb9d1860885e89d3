/* cmd_consume.c — `keelctl consume`: prints the committed records (below the
 * high watermark) of one partition or all of a topic, like
 * kafka-console-consumer, until --max-messages, an idle --timeout-ms, or SIGINT. */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"

#include "cli.h"

typedef struct consume {
    bool json;
    int64_t max; /* -1: no limit */
    int64_t n;
} consume_t;

static void print_record(void *arg, const kc_record_t *r)
{
    consume_t *s = arg;
    if (s->max >= 0 && s->n >= s->max) return; /* fetched along, but past --max-messages */
    s->n++;
    if (s->json) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_begin_object(&j, NULL);
        cli_json_int(&j, "partition", r->partition);
        cli_json_int(&j, "offset", r->offset);
        cli_json_bytes(&j, "key", r->key, r->key_len);
        cli_json_bytes(&j, "value", r->value, r->value_len);
        cli_json_int(&j, "timestamp", r->timestamp);
        cli_json_end_object(&j);
        cli_json_finish(&j);
    } else {
        /* The value as it is, like Kafka's console consumer. */
        if (r->value) fwrite(r->value, 1, (size_t)r->value_len, stdout);
        else fputs("null", stdout);
        putchar('\n');
    }
}

/* --offset: a number, earliest or latest. */
static int parse_offset(const char *s, int64_t *out)
{
    if (strcmp(s, "earliest") == 0) *out = KC_OFFSET_BEGINNING;
    else if (strcmp(s, "latest") == 0) *out = KC_OFFSET_END;
    else {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s || *end || v < 0 || v == LLONG_MAX) return -1;
        *out = v;
    }
    return 0;
}

/* Polls until --max-messages, idle_ms without a record (0: never), a signal,
 * or an error. */
static int run(cli_client_t *c, kc_consumer_t *k, consume_t *s, int64_t idle_ms)
{
    int64_t last = net_now_ms();
    while (!cli_stop && (s->max < 0 || s->n < s->max)) {
        int64_t wait = CLI_POLL_MS * 5;
        if (idle_ms > 0 && idle_ms - (net_now_ms() - last) < wait) wait = idle_ms - (net_now_ms() - last);
        if (wait < 0) wait = 0;
        int got = kc_consume(k, (int)wait, print_record, s);
        if (got < 0) {
            fflush(stdout);
            return cli_client_fail(c, "fetching records", got, NULL);
        }
        if (got > 0) last = net_now_ms();
        if (!cli_stdout_ok()) return CLI_EXIT_FAIL;
        if (idle_ms > 0 && got == 0 && net_now_ms() - last >= idle_ms) break;
    }
    return CLI_EXIT_OK;
}

int cli_consume(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = NULL, *offset_s = NULL;
    int64_t partition = -1, max = -1, idle_ms = 0;
    bool from_beginning = false, json = false;
    const cli_opt_t opts[] = {
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--partition", CLI_OPT_INT, &partition, 0, META_MAX_TOPIC_PARTITIONS - 1, NULL},
        {"--from-beginning", CLI_OPT_BOOL, &from_beginning, 0, 0, NULL},
        {"--offset", CLI_OPT_STR, &offset_s, 0, 0, NULL},
        {"--max-messages", CLI_OPT_INT, &max, 1, INT64_MAX, NULL},
        {"--timeout-ms", CLI_OPT_INT, &idle_ms, 1, CLI_MAX_TIMEOUT_MS, NULL},
        {"--json", CLI_OPT_BOOL, &json, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "consume", "", opts);
    if (rc >= 0) return rc;
    if (!topic) return cli_usage_error("consume", "", "--topic T is required");
    if (!meta_topic_name_valid(topic)) return cli_usage_error("consume", "", "'%s' is not a topic name", topic);
    int64_t start = from_beginning ? KC_OFFSET_BEGINNING : KC_OFFSET_END;
    if (offset_s) {
        if (from_beginning) return cli_usage_error("consume", "", "give --from-beginning or --offset, not both");
        if (partition < 0) return cli_usage_error("consume", "", "--offset needs --partition");
        if (parse_offset(offset_s, &start) != 0)
            return cli_usage_error("consume", "", "--offset: '%s' is not an offset, earliest or latest", offset_s);
    }

    cli_client_t c;
    if ((rc = cli_client_open(ctx, "consume", &c)) != CLI_EXIT_OK) return rc;
    wire_msg_t *md = NULL;
    const wire_topic_info_t *t;
    kc_consumer_t *k = NULL;
    if ((rc = cli_topic_metadata(&c, topic, &md, &t)) != CLI_EXIT_OK) goto out;
    if (partition >= t->n_partitions) {
        cli_errorf("consume: topic '%s' has no partition %" PRId64 " (it has %d)", topic, partition, t->n_partitions);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    kc_consumer_config_t kcfg;
    kc_consumer_config_defaults(&kcfg);
    /* A long poll must end well inside the request timeout. */
    if (kcfg.fetch_max_wait_ms > ctx->timeout_ms / 2) kcfg.fetch_max_wait_ms = ctx->timeout_ms / 2;
    char err[CLI_ERR_LEN] = "";
    if (!(k = kc_consumer_new(c.kc, &kcfg, err, sizeof err))) {
        cli_errorf("consume: %s", err[0] ? err : "cannot make a consumer");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    for (int32_t p = 0; p < t->n_partitions; p++) {
        if (partition >= 0 && p != partition) continue;
        int arc = kc_consumer_assign(k, topic, p, start);
        if (arc != 0) {
            rc = cli_client_fail(&c, "assigning partitions", arc, NULL);
            goto out;
        }
    }
    cli_catch_stop_signals();
    consume_t s = {.json = json, .max = max};
    rc = run(&c, k, &s, idle_ms);
    if (!json) fprintf(stderr, "Processed a total of %" PRId64 " messages\n", s.n);
out:
    if (k) kc_consumer_free(k);
    wire_msg_free(md);
    cli_client_close(&c);
    return rc;
}
