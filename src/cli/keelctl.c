/* keelctl.c — keelctl's entry point: global flags (DESIGN.md §7, Kafka's names) and the command table. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/log.h"

#include "cli.h"

static const cli_command_t commands[] = {
    {"storage", "random-uuid", cli_storage_random_uuid, "", "print a new random cluster id", NULL},
    {"storage", "format", cli_storage_format, "--config FILE --cluster-id ID [--ignore-formatted]",
     "write meta.properties into every log dir and the metadata dir of FILE", NULL},
    {"quorum", "describe", cli_quorum_describe, "--status|--replication [--json]",
     "describe the metadata quorum (asks --bootstrap-controller)", NULL},
    {"dump-log", "", cli_dump_log, "--dir DIR [--json]",
     "print the metadata log in DIR (or DIR/__cluster_metadata-0); read-only, safe while keeld runs", NULL},
    {"brokers", "list", cli_brokers_list, "[--json]", "list the registered brokers (asks --bootstrap-server)",
     "  --json   a list of {node_id, rack (null if none), endpoints [\"NAME://host:port\"], fenced,\n"
     "           state (active|fenced|shutting-down), broker_epoch}\n"},
    {"topics", "create", cli_topics_create,
     "--topic T [--partitions N] [--replication-factor R] [--config k=v ...] [--if-not-exists]",
     "create a topic; answered once the controller committed it",
     "  --topic T                 name: 1..249 of [a-zA-Z0-9._-]\n"
     "  --partitions N            partition count (default: the cluster's num.partitions)\n"
     "  --replication-factor R    replicas per partition (default: default.replication.factor)\n"
     "  --config k=v              a topic config, repeatable: min.insync.replicas, retention.ms,\n"
     "                            retention.bytes, unclean.leader.election.enable, segment.bytes,\n"
     "                            segment.ms, max.message.bytes\n"
     "  --if-not-exists           succeed quietly when the topic exists already\n"},
    {"topics", "describe", cli_topics_describe, "[--topic T] [--json]",
     "describe one topic or all: partitions with leader, replicas, ISR, leader epoch (kafka-topics layout)",
     "  --topic T   only this topic (exit 1 if it does not exist)\n"
     "  --json      a list of {topic, topic_id, configs {k: v}, partitions [{partition, leader\n"
     "              (-1 when offline), leader_epoch, replicas, isr}]}\n"},
    {"topics", "list", cli_topics_list, "[--json]", "list topic names, one per line",
     "  --json   a list of names\n"},
    {"topics", "delete", cli_topics_delete, "--topic T [--if-exists]", "delete a topic and all its data",
     "  --topic T     the topic\n"
     "  --if-exists   succeed quietly when there is no such topic\n"},
    {"produce", "", cli_produce,
     "--topic T [--partition P] [--acks 0|1|all] [--key-separator S] [--delivery-timeout-ms N] [--json]",
     "send each line of stdin as one record (its value; key null unless --key-separator)",
     "  --topic T                 the topic\n"
     "  --partition P             this partition; default: by key hash, or sticky batches without keys\n"
     "  --acks 0|1|all            0: no answer, 1: the leader wrote it, all: the ISR has it (default all)\n"
     "  --key-separator S         a line is KEY S VALUE; a line without S fails\n"
     "  --delivery-timeout-ms N   give a record up after N ms, retries included (default --timeout-ms)\n"
     "  --json                    one line per input line, in input order: {value, [key,] partition,\n"
     "                            offset} once acknowledged (offset -1 with acks 0), or {value, [key,]\n"
     "                            error, error_code} when it failed\n"
     "Exit status 1 when any record failed.\n"},
    {"consume", "", cli_consume,
     "--topic T [--partition P] [--from-beginning|--offset N] [--max-messages N] [--timeout-ms N] [--json]",
     "print records (below the high watermark) of every partition of T, or of one",
     "  --topic T           the topic\n"
     "  --partition P       only this partition (default: every partition)\n"
     "  --from-beginning    start at the log start; default: only records produced from now on\n"
     "  --offset N          start at offset N (or earliest|latest); needs --partition\n"
     "  --max-messages N    stop after N records\n"
     "  --timeout-ms N      stop once N ms pass without a new record (default: run until SIGINT)\n"
     "  --json              one line per record: {partition, offset, key, value, timestamp};\n"
     "                      key/value null when null; other text: the value alone\n"},
    {"leader-election", "", cli_leader_election, "--preferred [--topic T] [--json]",
     "move leadership back to the preferred (first) replica where it is in the ISR",
     "  --preferred   the election type (the only one)\n"
     "  --topic T     only this topic (default: every topic)\n"
     "  --json        {partitions_elected, message}\n"},
    {"bench", "produce", cli_bench_produce,
     "[--topic T] [--records N] [--record-size B] [--acks 0|1|all] [--partitions P] [--throughput R]\n"
     "             [--batch-size B] [--linger-ms N] [--json]",
     "producer benchmark (like kafka-producer-perf-test): records/s, MB/s, latency avg/p50/p99/p99.9/max",
     "  --topic T          default keel-bench; created when absent with --partitions partitions and\n"
     "                     replication factor 3, or the number of live brokers if smaller\n"
     "  --records N        records to send (default 100000)\n"
     "  --record-size B    value bytes per record (default 100)\n"
     "  --acks 0|1|all     default all\n"
     "  --partitions P     partitions of a topic it creates (default 3)\n"
     "  --throughput R     target records/s; -1 unthrottled (default)\n"
     "  --batch-size B     producer batch.size (default 65536, as perf-test runs usually set it)\n"
     "  --linger-ms N      producer linger.ms (default: the client's, 5)\n"
     "  --json             one object: {topic, records, errors, record_size, acks, elapsed_ms,\n"
     "                     records_per_sec, mb_per_sec, latency_ms {avg, p50, p99, p999, max}}\n"
     "Latency: from handing the record to the client library to its acknowledgement.\n"
     "Exit status 1 when any record failed.\n"},
    {"bench", "consume", cli_bench_consume, "[--topic T] [--records N] [--timeout-ms N] [--json]",
     "consumer benchmark: reads T from the beginning; records/s, MB/s, end-to-end latency",
     "  --topic T        default keel-bench\n"
     "  --records N      stop after N records (default 100000)\n"
     "  --timeout-ms N   stop once N ms pass without a new record (default 10000)\n"
     "  --json           one object: {topic, records, bytes, elapsed_ms, records_per_sec, mb_per_sec,\n"
     "                   latency_ms {avg, p50, p99, p999, max}}\n"
     "Latency: consume time minus the record's timestamp, so run it beside `bench produce` for\n"
     "end-to-end figures.\n"},
    {"check-replicas", "", cli_check_replicas, "--log-dirs D1,D2,... [--topic T] [--json]",
     "compare the replicas of every partition found in more than one log dir, record by record; read-only",
     "  --log-dirs D1,D2,...   broker log dirs (each holds <topic>-<partition> dirs)\n"
     "  --topic T              only this topic\n"
     "  --json                 a list of {topic, partition, replicas [{log_dir, topic_id,\n"
     "                         log_start_offset, log_end_offset, note}], offsets_compared,\n"
     "                         first_compared_offset, common_prefix_end, mismatch_count,\n"
     "                         mismatch_ranges [[from, to]], mismatches [{offset, records\n"
     "                         [{log_dir, timestamp, key, value}]}] (the first 100; values cut at\n"
     "                         256 bytes)}\n"
     "Records are compared (key, value, timestamp, headers) at every offset two or more replicas\n"
     "hold. Only segment files are read, never written: safe on a live cluster, where the active\n"
     "segment's tail is read up to the last whole batch. Exit status 1 on any mismatch or a damaged\n"
     "segment.\n"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* The space between group and verb; none for a one-word command. */
static const char *verb_sep(const char *verb) { return verb[0] ? " " : ""; }

void cli_errorf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("keelctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void usage(FILE *out)
{
    fputs("usage: keelctl [GLOBAL FLAGS] <command> [FLAGS]\n\n"
          "Global flags (accepted before or after the command):\n"
          "  --bootstrap-controller H:P[,H:P..]  controllers to ask (env KEEL_BOOTSTRAP_CONTROLLER)\n"
          "  --bootstrap-server H:P[,H:P..]      brokers to ask (env KEEL_BOOTSTRAP_SERVER)\n"
          "  --command-config FILE               client properties: security.protocol=PLAINTEXT|SSL,\n"
          "                                      ssl.ca.location, ssl.certificate.location,\n"
          "                                      ssl.key.location (env KEEL_COMMAND_CONFIG)\n"
          "  --timeout-ms N                      per-request timeout, and for produce per record with\n"
          "                                      retries (default 5000)\n"
          "  -h, --help                          this help\n"
          "After the command, a flag of the command's own wins over a global one of the same name:\n"
          "`consume --timeout-ms N` is consume's idle timeout.\n"
          "Environment: KEEL_LOG_LEVEL=debug|info|warn|error sets the library log level (default error).\n\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  keelctl %s%s%s%s%s\n      %s\n", commands[i].group, verb_sep(commands[i].verb),
                commands[i].verb, commands[i].usage[0] ? " " : "", commands[i].usage, commands[i].help);
    fputs("\nRun 'keelctl <command> --help' for a command's flags.\n"
          "Exit status: 0 success, 1 failure, 2 usage error.\n",
          out);
}

void cli_command_usage(FILE *out, const char *group, const char *verb)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].group, group) == 0 && strcmp(commands[i].verb, verb) == 0) {
            fprintf(out, "usage: keelctl [GLOBAL FLAGS] %s%s%s%s%s\n  %s\n", group, verb_sep(verb), verb,
                    commands[i].usage[0] ? " " : "", commands[i].usage, commands[i].help);
            /* The details are for someone who asked; an error shows the synopsis. */
            if (out == stdout && commands[i].details) fprintf(out, "\n%s", commands[i].details);
        }
}

/* `keelctl topics --help`: every verb of a group. */
static bool group_usage(FILE *out, const char *group)
{
    bool any = false;
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].group, group) == 0 && commands[i].verb[0]) {
            fprintf(out, "%s  keelctl %s %s %s\n      %s\n", any ? "" : "usage:\n", group, commands[i].verb,
                    commands[i].usage, commands[i].help);
            any = true;
        }
    if (any) fprintf(out, "Run 'keelctl %s <verb> --help' for a verb's flags.\n", group);
    return any;
}

int cli_usage_error(const char *group, const char *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "keelctl: %s%s%s: ", group, verb_sep(verb), verb);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    cli_command_usage(stderr, group, verb);
    return CLI_EXIT_USAGE;
}

static int parse_timeout(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > CLI_MAX_TIMEOUT_MS) return -1;
    *out = (int)v;
    return 0;
}

int cli_global_flag(cli_ctx_t *ctx, int argc, char **argv, int *i)
{
    static const char *const names[] = {"--bootstrap-controller", "--bootstrap-server",
                                        "--command-config", "--timeout-ms"};
    int which = -1;
    for (int k = 0; k < 4; k++)
        if (strcmp(argv[*i], names[k]) == 0) which = k;
    if (which < 0) return 0;
    if (*i + 1 >= argc) {
        cli_errorf("%s needs a value", argv[*i]);
        return -1;
    }
    const char *v = argv[++*i];
    switch (which) {
    case 0: ctx->bootstrap_controller = v; break;
    case 1: ctx->bootstrap_server = v; break;
    case 2: ctx->command_config = v; break;
    default:
        if (parse_timeout(v, &ctx->timeout_ms) != 0) {
            cli_errorf("--timeout-ms: '%s' is not a number of ms in [1, %d]", v, CLI_MAX_TIMEOUT_MS);
            return -1;
        }
    }
    return 1;
}

int cli_unknown_arg(cli_ctx_t *ctx, int argc, char **argv, int *i, const char *group,
                    const char *verb)
{
    if (strcmp(argv[*i], "--help") == 0 || strcmp(argv[*i], "-h") == 0) {
        cli_command_usage(stdout, group, verb);
        return CLI_EXIT_OK;
    }
    int g = cli_global_flag(ctx, argc, argv, i);
    if (g == 1) return -1;
    if (g == 0) cli_errorf("%s%s%s: unknown argument '%s'", group, verb_sep(verb), verb, argv[*i]);
    cli_command_usage(stderr, group, verb);
    return CLI_EXIT_USAGE;
}

/* A decimal int64 and nothing else. */
static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return -1;
    *out = v;
    return 0;
}

static int parse_opt(const cli_opt_t *o, const char *group, const char *verb, int argc, char **argv, int *i)
{
    if (o->kind == CLI_OPT_BOOL) {
        *(bool *)o->out = true;
        return 0;
    }
    if (*i + 1 >= argc) return cli_usage_error(group, verb, "%s needs a value", o->name);
    const char *v = argv[++*i];
    switch (o->kind) {
    case CLI_OPT_STR: *(const char **)o->out = v; break;
    case CLI_OPT_INT: {
        int64_t n;
        if (parse_i64(v, &n) != 0 || n < o->min || n > o->max)
            return cli_usage_error(group, verb, "%s: '%s' is not a number in [%lld, %lld]", o->name, v,
                                   (long long)o->min, (long long)o->max);
        *(int64_t *)o->out = n;
        break;
    }
    default: {
        cli_multi_t *m = o->out;
        if (m->n >= CLI_MAX_MULTI)
            return cli_usage_error(group, verb, "%s given more than %d times", o->name, CLI_MAX_MULTI);
        m->v[m->n++] = v;
    }
    }
    return 0;
}

int cli_parse(cli_ctx_t *ctx, int argc, char **argv, const char *group, const char *verb,
              const cli_opt_t *opts)
{
    for (int i = 0; i < argc; i++) {
        const cli_opt_t *o = opts;
        while (o->name && strcmp(o->name, argv[i]) != 0) o++;
        if (!o->name) {
            int rc = cli_unknown_arg(ctx, argc, argv, &i, group, verb);
            if (rc >= 0) return rc;
            continue;
        }
        if (parse_opt(o, group, verb, argc, argv, &i) != 0) return CLI_EXIT_USAGE;
        if (o->seen) *o->seen = true;
    }
    return -1;
}

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

int main(int argc, char **argv)
{
    cli_ctx_t ctx = {
        .bootstrap_controller = env_or_null("KEEL_BOOTSTRAP_CONTROLLER"),
        .bootstrap_server = env_or_null("KEEL_BOOTSTRAP_SERVER"),
        .command_config = env_or_null("KEEL_COMMAND_CONFIG"),
        .timeout_ms = CLI_DEFAULT_TIMEOUT_MS,
    };
    /* keelctl reports failures itself; library logs only on request. */
    kl_log_level_t lvl = KL_LOG_ERROR;
    const char *env_lvl = env_or_null("KEEL_LOG_LEVEL");
    if (env_lvl && kl_log_parse_level(env_lvl, &lvl) != 0) cli_errorf("ignoring KEEL_LOG_LEVEL=%s", env_lvl);
    kl_log_set_level(lvl);
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return CLI_EXIT_OK;
        }
        int g = cli_global_flag(&ctx, argc, argv, &i);
        if (g == 0) cli_errorf("unknown flag '%s'", argv[i]);
        if (g != 1) {
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    for (size_t k = 0; i < argc && k < N_COMMANDS; k++)
        if (!commands[k].verb[0] && strcmp(commands[k].group, argv[i]) == 0)
            return commands[k].run(&ctx, argc - i - 1, argv + i + 1);
    if (i + 1 < argc && (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0) &&
        group_usage(stdout, argv[i]))
        return CLI_EXIT_OK;
    if (i + 1 >= argc) {
        if (i < argc) cli_errorf("'%s' needs a subcommand", argv[i]);
        if (i < argc && group_usage(stderr, argv[i])) return CLI_EXIT_USAGE;
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    for (size_t k = 0; k < N_COMMANDS; k++)
        if (strcmp(commands[k].group, argv[i]) == 0 && strcmp(commands[k].verb, argv[i + 1]) == 0)
            return commands[k].run(&ctx, argc - i - 2, argv + i + 2);
    cli_errorf("unknown command '%s %s'", argv[i], argv[i + 1]);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
