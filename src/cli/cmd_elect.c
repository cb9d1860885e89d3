/* cmd_elect.c — `keelctl leader-election --preferred [--topic T]`: asks the
 * controller to move leadership back to each partition's first replica where
 * it is in the ISR (DESIGN.md §3 "Preferred leader election"). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "keel/err.h"

#include "cli.h"

int cli_leader_election(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = NULL;
    bool preferred = false, json = false;
    const cli_opt_t opts[] = {
        {"--preferred", CLI_OPT_BOOL, &preferred, 0, 0, NULL},
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--json", CLI_OPT_BOOL, &json, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "leader-election", "", opts);
    if (rc >= 0) return rc;
    if (!preferred) return cli_usage_error("leader-election", "", "--preferred is required (the only election type)");
    if (topic && !meta_topic_name_valid(topic))
        return cli_usage_error("leader-election", "", "'%s' is not a topic name", topic);
    cli_client_t c;
    if ((rc = cli_client_open(ctx, "leader-election", &c)) != CLI_EXIT_OK) return rc;
    wire_msg_t *resp = NULL;
    int err = kc_elect_preferred(c.kc, topic, ctx->timeout_ms, &resp);
    if (err == KL_EUNKNOWNPARTITION && topic) {
        cli_errorf("leader-election: topic '%s' does not exist", topic);
        rc = CLI_EXIT_FAIL;
    } else if (err != 0 || !resp) {
        rc = cli_client_fail(&c, "preferred leader election", err ? err : KL_EPROTO, resp);
    } else {
        const wire_elect_leaders_resp_t *r = &resp->body.elect_leaders_resp;
        if (json) {
            cli_json_t j;
            cli_json_init(&j, stdout);
            cli_json_begin_object(&j, NULL);
            cli_json_int(&j, "partitions_elected", r->partitions_elected);
            cli_json_string(&j, "message", r->message);
            cli_json_end_object(&j);
            cli_json_finish(&j);
        } else {
            printf("Successfully completed preferred leader election%s%s: %" PRId32
                   " partition(s) moved to their preferred replica.\n",
                   topic ? " for topic " : "", topic ? topic : "", r->partitions_elected);
            if (r->message[0]) printf("%s\n", r->message);
        }
        rc = cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    }
    wire_msg_free(resp);
    cli_client_close(&c);
    return rc;
}
