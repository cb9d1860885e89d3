/* cmd_quorum.c — `keelctl quorum describe --status|--replication [--json]`,
 * laid out like Kafka's kafka-metadata-quorum (KIP-595 DescribeQuorum). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "keel/err.h"
#include "keel/wire.h"

#include "cli.h"

/* The leader's own log end offset: its voter entry, else the largest known. */
static int64_t leader_leo(const wire_describe_quorum_resp_t *q)
{
    int64_t best = 0;
    for (int i = 0; i < q->n_voters; i++) {
        if (q->voters[i].node_id == q->leader_id) return q->voters[i].log_end_offset;
        if (q->voters[i].log_end_offset > best) best = q->voters[i].log_end_offset;
    }
    return best;
}

/* Offsets behind the leader; an unknown end (-1) is behind by the whole log. */
static int64_t lag_of(const wire_describe_quorum_resp_t *q, const wire_replica_t *r)
{
    int64_t l = leader_leo(q) - (r->log_end_offset < 0 ? 0 : r->log_end_offset);
    return l < 0 ? 0 : l;
}

/* "Now" on the leader's clock, read from the response itself so that the
 * client's clock never enters: the leader stamps its own entry when it
 * answers; failing that, the latest timestamp anywhere in the response. */
static int64_t leader_now(const wire_describe_quorum_resp_t *q)
{
    int64_t now = -1;
    for (int i = 0; i < q->n_voters; i++) {
        const wire_replica_t *r = &q->voters[i];
        int64_t t = r->last_fetch_timestamp > r->last_caught_up_timestamp ? r->last_fetch_timestamp
                                                                          : r->last_caught_up_timestamp;
        if (r->node_id == q->leader_id && t > 0) return t;
        if (t > now) now = t;
    }
    for (int i = 0; i < q->n_observers; i++)
        if (q->observers[i].last_fetch_timestamp > now) now = q->observers[i].last_fetch_timestamp;
    return now;
}

static int64_t max_follower_lag(const wire_describe_quorum_resp_t *q)
{
    int64_t m = 0;
    for (int i = 0; i < q->n_voters; i++)
        if (lag_of(q, &q->voters[i]) > m) m = lag_of(q, &q->voters[i]);
    return m;
}

/* Max over lagging voters of (leader now - last caught up); 0 when every voter
 * is caught up, -1 when a lagging voter's catch-up time is unknown. */
static int64_t max_follower_lag_time(const wire_describe_quorum_resp_t *q)
{
    int64_t now = leader_now(q), m = 0;
    for (int i = 0; i < q->n_voters; i++) {
        const wire_replica_t *r = &q->voters[i];
        if (r->node_id == q->leader_id || lag_of(q, r) == 0) continue;
        if (r->last_caught_up_timestamp < 0 || now < 0) return -1;
        int64_t t = now - r->last_caught_up_timestamp;
        if (t > m) m = t;
    }
    return m;
}

static void print_ids(const wire_replica_t *rs, int n)
{
    putchar('[');
    for (int i = 0; i < n; i++) printf("%s%" PRId32, i ? "," : "", rs[i].node_id);
    puts("]");
}

static void status_text(const wire_describe_quorum_resp_t *q)
{
    printf("%-24s%s\n", "ClusterId:", q->cluster_id);
    printf("%-24s%" PRId32 "\n", "LeaderId:", q->leader_id);
    printf("%-24s%" PRId32 "\n", "LeaderEpoch:", q->leader_epoch);
    printf("%-24s%" PRId64 "\n", "HighWatermark:", q->high_watermark);
    printf("%-24s%" PRId64 "\n", "MaxFollowerLag:", max_follower_lag(q));
    printf("%-24s%" PRId64 "\n", "MaxFollowerLagTimeMs:", max_follower_lag_time(q));
    printf("%-24s", "CurrentVoters:");
    print_ids(q->voters, q->n_voters);
    printf("%-24s", "CurrentObservers:");
    print_ids(q->observers, q->n_observers);
}

static void json_ids(cli_json_t *j, const char *key, const wire_replica_t *rs, int n)
{
    cli_json_begin_array(j, key);
    for (int i = 0; i < n; i++) cli_json_int(j, NULL, rs[i].node_id);
    cli_json_end_array(j);
}

static void status_json(const wire_describe_quorum_resp_t *q)
{
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_json_begin_object(&j, NULL);
    cli_json_string(&j, "cluster_id", q->cluster_id);
    cli_json_int(&j, "leader_id", q->leader_id);
    cli_json_int(&j, "leader_epoch", q->leader_epoch);
    cli_json_int(&j, "high_watermark", q->high_watermark);
    cli_json_int(&j, "max_follower_lag", max_follower_lag(q));
    cli_json_int(&j, "max_follower_lag_time_ms", max_follower_lag_time(q));
    json_ids(&j, "voters", q->voters, q->n_voters);
    json_ids(&j, "observers", q->observers, q->n_observers);
    cli_json_end_object(&j);
    cli_json_finish(&j);
}

typedef struct row {
    const wire_replica_t *r;
    const char *status;
} row_t;

/* Leader first, then the other voters, then observers (Kafka's order). */
static int replication_rows(const wire_describe_quorum_resp_t *q, row_t *rows)
{
    int n = 0;
    for (int i = 0; i < q->n_voters; i++)
        if (q->voters[i].node_id == q->leader_id) rows[n++] = (row_t){&q->voters[i], "Leader"};
    for (int i = 0; i < q->n_voters; i++)
        if (q->voters[i].node_id != q->leader_id) rows[n++] = (row_t){&q->voters[i], "Follower"};
    for (int i = 0; i < q->n_observers; i++) rows[n++] = (row_t){&q->observers[i], "Observer"};
    return n;
}

static void replication_text(const wire_describe_quorum_resp_t *q)
{
    static const char *const header[] = {"NodeId", "LogEndOffset", "Lag", "LastFetchTimestamp",
                                         "LastCaughtUpTimestamp", "Status"};
    static cli_table_t t; /* large; one per process */
    row_t rows[RAFT_MAX_VOTERS + RAFT_MAX_OBSERVERS];
    int n = replication_rows(q, rows);
    cli_table_init(&t, 6, header);
    for (int i = 0; i < n; i++) {
        char(*c)[CLI_TABLE_CELL_LEN] = cli_table_row(&t);
        KL_ASSERT(c != NULL); /* CLI_TABLE_MAX_ROWS covers every voter and observer */
        const wire_replica_t *r = rows[i].r;
        snprintf(c[0], CLI_TABLE_CELL_LEN, "%" PRId32, r->node_id);
        snprintf(c[1], CLI_TABLE_CELL_LEN, "%" PRId64, r->log_end_offset);
        snprintf(c[2], CLI_TABLE_CELL_LEN, "%" PRId64, lag_of(q, r));
        snprintf(c[3], CLI_TABLE_CELL_LEN, "%" PRId64, r->last_fetch_timestamp);
        snprintf(c[4], CLI_TABLE_CELL_LEN, "%" PRId64, r->last_caught_up_timestamp);
        snprintf(c[5], CLI_TABLE_CELL_LEN, "%s", rows[i].status);
    }
    cli_table_print(&t, stdout);
}

static void replication_json(const wire_describe_quorum_resp_t *q)
{
    row_t rows[RAFT_MAX_VOTERS + RAFT_MAX_OBSERVERS];
    int n = replication_rows(q, rows);
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_json_begin_object(&j, NULL);
    cli_json_begin_array(&j, "replication");
    for (int i = 0; i < n; i++) {
        const wire_replica_t *r = rows[i].r;
        cli_json_begin_object(&j, NULL);
        cli_json_int(&j, "node_id", r->node_id);
        cli_json_int(&j, "log_end_offset", r->log_end_offset);
        cli_json_int(&j, "lag", lag_of(q, r));
        cli_json_int(&j, "last_fetch_timestamp", r->last_fetch_timestamp);
        cli_json_int(&j, "last_caught_up_timestamp", r->last_caught_up_timestamp);
        cli_json_string(&j, "status", rows[i].status);
        cli_json_end_object(&j);
    }
    cli_json_end_array(&j);
    cli_json_end_object(&j);
    cli_json_finish(&j);
}

int cli_quorum_describe(cli_ctx_t *ctx, int argc, char **argv)
{
    bool status = false, replication = false, json = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--status") == 0) status = true;
        else if (strcmp(argv[i], "--replication") == 0) replication = true;
        else if (strcmp(argv[i], "--json") == 0) json = true;
        else {
            int rc = cli_unknown_arg(ctx, argc, argv, &i, "quorum", "describe");
            if (rc >= 0) return rc;
        }
    }
    if (status == replication) {
        cli_errorf("quorum describe: give exactly one of --status and --replication");
        cli_command_usage(stderr, "quorum", "describe");
        return CLI_EXIT_USAGE;
    }
    wire_msg_t *resp = NULL;
    char err[CLI_ERR_LEN];
    int rc = cli_controller_call(ctx, WIRE_API_DESCRIBE_QUORUM, &resp, err, sizeof err);
    if (rc != 0) {
        cli_errorf("%s", err);
        return rc == KL_EINVAL ? CLI_EXIT_USAGE : CLI_EXIT_FAIL;
    }
    const wire_describe_quorum_resp_t *q = &resp->body.describe_quorum;
    if (status && json) status_json(q);
    else if (status) status_text(q);
    else if (json) replication_json(q);
    else replication_text(q);
    wire_msg_free(resp);
    if (fflush(stdout) != 0) {
        cli_errorf("writing output failed");
        return CLI_EXIT_FAIL;
    }
    return CLI_EXIT_OK;
}
