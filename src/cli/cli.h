/* cli.h — keelctl internals shared by its command modules (prefix cli_). */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "keel/kc.h"
#include "keel/wire.h"

/* Exit codes: 0 success, 1 operation failed, 2 usage error. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

#define CLI_DEFAULT_TIMEOUT_MS 5000
#define CLI_MAX_TIMEOUT_MS 3600000
#define CLI_MAX_BOOTSTRAP 16 /* addresses in one --bootstrap-* list */
#define CLI_MAX_REDIRECTS 3  /* leader hints followed per bootstrap address */
#define CLI_ERR_LEN 2048     /* room for one reason per bootstrap address */
#define CLI_POLL_MS 100      /* slice of client-loop time between checks of stdin, signals, deadlines */

/* Global options (DESIGN.md §7); env defaults are applied in main. */
typedef struct cli_ctx {
    const char *bootstrap_controller; /* "h:p,h:p" or NULL */
    const char *bootstrap_server;     /* "h:p,h:p" or NULL: brokers, for the data-plane commands */
    const char *command_config;       /* client properties (TLS) or NULL */
    int timeout_ms;                   /* per request; for produce also per record, retries included */
} cli_ctx_t;

/* A command handler gets the arguments after "<group> <verb>" and returns an
 * exit code. */
typedef int (*cli_handler_t)(cli_ctx_t *ctx, int argc, char **argv);

typedef struct cli_command {
    const char *group;
    const char *verb; /* "" for a one-word command (dump-log) */
    cli_handler_t run;
    const char *usage;   /* arguments after the verb */
    const char *help;    /* one line */
    const char *details; /* flag-by-flag help for `--help`, or NULL */
} cli_command_t;

/* keelctl.c */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Consumes a global flag at argv[*i] (and its value); 1 if consumed, 0 if it
 * is not a global flag, -1 (message printed) if its value is missing/bad. */
int cli_global_flag(cli_ctx_t *ctx, int argc, char **argv, int *i);
/* Prints "usage: keelctl <group> <verb> <usage>" for a command to `out`. */
void cli_command_usage(FILE *out, const char *group, const char *verb);
/* Common handling of an argument a command does not know: global flag, help,
 * or a usage error. Returns -1 to continue parsing, else an exit code. */
int cli_unknown_arg(cli_ctx_t *ctx, int argc, char **argv, int *i, const char *group,
                    const char *verb);
/* Prints "<group> <verb>: <message>" and the command's usage on stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *group, const char *verb, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Table-driven flag parsing for the commands below. */
#define CLI_MAX_MULTI 16 /* values of one repeatable flag (--config: META_MAX_CONFIGS) */
typedef struct cli_multi {
    const char *v[CLI_MAX_MULTI];
    int n;
} cli_multi_t;

typedef enum cli_opt_kind {
    CLI_OPT_BOOL,  /* out: bool *, set to true */
    CLI_OPT_STR,   /* out: const char ** */
    CLI_OPT_INT,   /* out: int64_t *, decimal within [min, max] */
    CLI_OPT_MULTI  /* out: cli_multi_t *, repeatable */
} cli_opt_kind_t;

typedef struct cli_opt {
    const char *name; /* NULL ends the list */
    cli_opt_kind_t kind;
    void *out;
    int64_t min, max; /* CLI_OPT_INT */
    bool *seen;       /* may be NULL: set when the flag is given */
} cli_opt_t;

/* Parses argv against opts (a command's own flags win over global ones of
 * the same name, so `consume --timeout-ms` is consume's idle timeout), then
 * global flags and --help. Returns -1 when everything parsed, else the exit
 * code to return at once (0 after --help; CLI_EXIT_USAGE, message printed). */
int cli_parse(cli_ctx_t *ctx, int argc, char **argv, const char *group, const char *verb,
              const cli_opt_t *opts);

/* conn.c — talking to the controllers. */
/* Sends `api` (a request with an empty body) to the bootstrap controllers in
 * turn, following not-leader hints, until one answers without error.
 * KL_EINVAL: bad or missing --bootstrap-controller (a usage error);
 * KL_ECONNECT: nobody answered (err names every address tried with its
 * reason); other codes: --command-config unusable. */
int cli_controller_call(const cli_ctx_t *ctx, uint32_t api, wire_msg_t **resp, char *err,
                        size_t errlen);

/* client.c — talking to the brokers through the client library (kc.h). */
typedef struct cli_client {
    kc_client_t *kc;
    net_tls_t *tls;
    const char *cmd; /* "topics create", for messages */
    int timeout_ms;
} cli_client_t;

/* Loads --command-config (Kafka's client property names): *tls stays NULL for
 * PLAINTEXT. 0, or KL_ECONFIG/KL_ETLS/KL_ENOMEM with err set. */
int cli_tls_load(const char *path, net_tls_t **tls, char *err, size_t errlen);
/* A client on --bootstrap-server. CLI_EXIT_OK, or an exit code with the
 * message printed (CLI_EXIT_USAGE when no or a malformed bootstrap list). */
int cli_client_open(const cli_ctx_t *ctx, const char *cmd, cli_client_t *c);
void cli_client_close(cli_client_t *c);
/* Prints "<cmd>: <what>: <reason>" for a failed call: the response's own
 * message, else the client's last error, else the code's text. Returns
 * CLI_EXIT_FAIL. resp may be NULL. */
int cli_client_fail(const cli_client_t *c, const char *what, int rc, const wire_msg_t *resp);
/* Metadata of one topic: 0 with *resp (caller frees) and *t pointing into it;
 * else the exit code, message printed ("topic 'x' does not exist"). */
int cli_topic_metadata(cli_client_t *c, const char *topic, wire_msg_t **resp, const wire_topic_info_t **t);
/* "0", "1", "all" or "-1" into 0, 1 or -1; -1 (message printed) otherwise. */
int cli_parse_acks(const char *cmd, const char *s, int *acks);
/* SIGINT/SIGTERM set cli_stop so that long-running commands finish cleanly. */
extern volatile sig_atomic_t cli_stop;
void cli_catch_stop_signals(void);
int64_t cli_now_us(void); /* monotonic microseconds */
/* Whether fd has input ready (or EOF/error) right now. */
bool cli_fd_readable(int fd);

/* output.c — JSON and aligned tables on stdout. */
#define CLI_JSON_MAX_DEPTH 16
typedef struct cli_json {
    FILE *f;
    int depth;
    bool need_comma[CLI_JSON_MAX_DEPTH];
} cli_json_t;

void cli_json_init(cli_json_t *j, FILE *f);
/* key is NULL for array elements and the top-level value. */
void cli_json_begin_object(cli_json_t *j, const char *key);
void cli_json_end_object(cli_json_t *j);
void cli_json_begin_array(cli_json_t *j, const char *key);
void cli_json_end_array(cli_json_t *j);
/* Strings are written as UTF-8; a byte that is not part of a valid UTF-8
 * sequence becomes U+FFFD, so the output is always valid JSON. */
void cli_json_string(cli_json_t *j, const char *key, const char *v);
/* A byte string that may hold NULs; data NULL (or len < 0) writes null. */
void cli_json_bytes(cli_json_t *j, const char *key, const void *data, int64_t len);
void cli_json_int(cli_json_t *j, const char *key, int64_t v);
void cli_json_double(cli_json_t *j, const char *key, double v); /* 3 decimals; null if not finite */
void cli_json_bool(cli_json_t *j, const char *key, bool v);
void cli_json_null(cli_json_t *j, const char *key);
void cli_json_finish(cli_json_t *j); /* newline after the top-level value */

#define CLI_TABLE_MAX_COLS 8
#define CLI_TABLE_MAX_ROWS (1 + RAFT_MAX_VOTERS + RAFT_MAX_OBSERVERS) /* header + every replica */
#define CLI_TABLE_CELL_LEN 32
typedef struct cli_table {
    int n_cols, n_rows;
    char cells[CLI_TABLE_MAX_ROWS][CLI_TABLE_MAX_COLS][CLI_TABLE_CELL_LEN];
} cli_table_t;

/* Starts a table with its header row (n_cols names). */
void cli_table_init(cli_table_t *t, int n_cols, const char *const *header);
/* Appends a row; returns its cells to fill with snprintf; NULL when full. */
char (*cli_table_row(cli_table_t *t))[CLI_TABLE_CELL_LEN];
void cli_table_print(const cli_table_t *t, FILE *f);

/* Writes bytes as text: printable ASCII as is, other bytes as \xNN (so a
 * record shows on one line whatever it holds). */
void cli_print_escaped(FILE *f, const void *data, size_t len);
/* stdout flushed and without error; else a message and false. */
bool cli_stdout_ok(void);

/* Command modules. */
int cli_storage_random_uuid(cli_ctx_t *ctx, int argc, char **argv);
int cli_storage_format(cli_ctx_t *ctx, int argc, char **argv);
int cli_quorum_describe(cli_ctx_t *ctx, int argc, char **argv);
int cli_dump_log(cli_ctx_t *ctx, int argc, char **argv); /* group "dump-log", verb "" */
int cli_brokers_list(cli_ctx_t *ctx, int argc, char **argv);
int cli_topics_create(cli_ctx_t *ctx, int argc, char **argv);
int cli_topics_describe(cli_ctx_t *ctx, int argc, char **argv);
int cli_topics_list(cli_ctx_t *ctx, int argc, char **argv);
int cli_topics_delete(cli_ctx_t *ctx, int argc, char **argv);
int cli_produce(cli_ctx_t *ctx, int argc, char **argv);
int cli_consume(cli_ctx_t *ctx, int argc, char **argv);
int cli_leader_election(cli_ctx_t *ctx, int argc, char **argv);
int cli_bench_produce(cli_ctx_t *ctx, int argc, char **argv);
int cli_bench_consume(cli_ctx_t *ctx, int argc, char **argv);
int cli_check_replicas(cli_ctx_t *ctx, int argc, char **argv);

#endif
