/* keelctl.c — keelctl's entry point: global flags (DESIGN.md §7, Kafka's names) and the command table. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/log.h"

#include "cli.h"

static const cli_command_t commands[] = {
    {"storage", "random-uuid", cli_storage_random_uuid, "", "print a new random cluster id"},
    {"storage", "format", cli_storage_format, "--config FILE --cluster-id ID [--ignore-formatted]",
     "write meta.properties into every log dir and the metadata dir of FILE"},
    {"quorum", "describe", cli_quorum_describe, "--status|--replication [--json]",
     "describe the metadata quorum (asks --bootstrap-controller)"},
    {"dump-log", "", cli_dump_log, "--dir DIR [--json]",
     "print the metadata log in DIR (or DIR/__cluster_metadata-0); read-only, safe while keeld runs"},
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
          "  --bootstrap-server H:P[,H:P..]      brokers to ask (env KEEL_BOOTSTRAP_SERVER; data plane)\n"
          "  --command-config FILE               client properties: security.protocol=PLAINTEXT|SSL,\n"
          "                                      ssl.ca.location, ssl.certificate.location,\n"
          "                                      ssl.key.location (env KEEL_COMMAND_CONFIG)\n"
          "  --timeout-ms N                      per-request timeout (default 5000)\n"
          "  -h, --help                          this help\n"
          "Environment: KEEL_LOG_LEVEL=debug|info|warn|error sets the library log level (default error).\n\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(out, "  keelctl %s%s%s%s%s\n      %s\n", commands[i].group, verb_sep(commands[i].verb),
                commands[i].verb, commands[i].usage[0] ? " " : "", commands[i].usage, commands[i].help);
    fputs("\nExit status: 0 success, 1 failure, 2 usage error.\n", out);
}

void cli_command_usage(FILE *out, const char *group, const char *verb)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].group, group) == 0 && strcmp(commands[i].verb, verb) == 0)
            fprintf(out, "usage: keelctl [GLOBAL FLAGS] %s%s%s%s%s\n  %s\n", group, verb_sep(verb), verb,
                    commands[i].usage[0] ? " " : "", commands[i].usage, commands[i].help);
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
    if (i + 1 >= argc) {
        if (i < argc) cli_errorf("'%s' needs a subcommand", argv[i]);
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
