/* cmd_brokers.c — `keelctl brokers list [--json]`: the registered brokers from a
 * Metadata response, with their endpoints, rack, fencing state and epoch (DESIGN.md §3). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define CLI_ENDPOINT_LEN (META_MAX_LISTENER_NAME_LEN + META_MAX_HOST_LEN + 16) /* "NAME://[host]:port" */

/* Kafka's endpoint text: NAME://host:port, an IPv6 host in brackets. */
static void endpoint(const meta_listener_t *l, char *out, size_t len)
{
    bool v6 = strchr(l->host, ':') != NULL;
    snprintf(out, len, "%s://%s%s%s:%u", l->name, v6 ? "[" : "", l->host, v6 ? "]" : "", (unsigned)l->port);
}

static void list_json(const wire_metadata_resp_t *m)
{
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_json_begin_array(&j, NULL);
    for (int i = 0; i < m->n_brokers; i++) {
        const wire_broker_info_t *b = &m->brokers[i];
        cli_json_begin_object(&j, NULL);
        cli_json_int(&j, "node_id", b->id);
        if (b->rack[0]) cli_json_string(&j, "rack", b->rack);
        else cli_json_null(&j, "rack");
        cli_json_begin_array(&j, "endpoints");
        for (int k = 0; k < b->n_listeners; k++) {
            char ep[CLI_ENDPOINT_LEN];
            endpoint(&b->listeners[k], ep, sizeof ep);
            cli_json_string(&j, NULL, ep);
        }
        cli_json_end_array(&j);
        cli_json_bool(&j, "fenced", b->state == META_BROKER_FENCED);
        cli_json_string(&j, "state", meta_broker_state_name(b->state));
        cli_json_int(&j, "broker_epoch", b->epoch);
        cli_json_end_object(&j);
    }
    cli_json_end_array(&j);
    cli_json_finish(&j);
}

/* Columns sized to their widest cell; the endpoints, of any length, last. */
static void list_text(const wire_metadata_resp_t *m)
{
    int rack_w = (int)strlen("Rack"), state_w = (int)strlen("State");
    for (int i = 0; i < m->n_brokers; i++) {
        int r = (int)strlen(m->brokers[i].rack), s = (int)strlen(meta_broker_state_name(m->brokers[i].state));
        if (r > rack_w) rack_w = r;
        if (s > state_w) state_w = s;
    }
    printf("%-8s  %-*s  %-6s  %-*s  %-11s  %s\n", "NodeId", rack_w, "Rack", "Fenced", state_w, "State",
           "BrokerEpoch", "Endpoints");
    for (int i = 0; i < m->n_brokers; i++) {
        const wire_broker_info_t *b = &m->brokers[i];
        printf("%-8" PRId32 "  %-*s  %-6s  %-*s  %-11" PRId64 "  ", b->id, rack_w, b->rack[0] ? b->rack : "-",
               b->state == META_BROKER_FENCED ? "true" : "false", state_w, meta_broker_state_name(b->state),
               b->epoch);
        for (int k = 0; k < b->n_listeners; k++) {
            char ep[CLI_ENDPOINT_LEN];
            endpoint(&b->listeners[k], ep, sizeof ep);
            printf("%s%s", k ? "," : "", ep);
        }
        putchar('\n');
    }
}

int cli_brokers_list(cli_ctx_t *ctx, int argc, char **argv)
{
    bool json = false;
    const cli_opt_t opts[] = {{"--json", CLI_OPT_BOOL, &json, 0, 0, NULL}, {NULL, 0, NULL, 0, 0, NULL}};
    int rc = cli_parse(ctx, argc, argv, "brokers", "list", opts);
    if (rc >= 0) return rc;
    cli_client_t c;
    if ((rc = cli_client_open(ctx, "brokers list", &c)) != CLI_EXIT_OK) return rc;
    wire_msg_t *resp = NULL;
    int err = kc_metadata(c.kc, NULL, 0, ctx->timeout_ms, &resp);
    if (err != 0) {
        rc = cli_client_fail(&c, "fetching metadata", err, resp);
    } else {
        if (json) list_json(&resp->body.metadata_resp);
        else list_text(&resp->body.metadata_resp);
        rc = cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    wire_msg_free(resp);
    cli_client_close(&c);
    return rc;
}
