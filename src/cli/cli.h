/* cli.h — keelctl internals shared by its command modules (prefix cli_). */
#ifndef KEEL_CLI_H
#define KEEL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

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

/* Global options (DESIGN.md §7); env defaults are applied in main. */
typedef struct cli_ctx {
    const char *bootstrap_controller; /* "h:p,h:p" or NULL */
    const char *bootstrap_server;     /* parsed for the data plane; unused so far */
    const char *command_config;       /* client properties (TLS) or NULL */
    int timeout_ms;                   /* per request */
} cli_ctx_t;

/* A command handler gets the arguments after "<group> <verb>" and returns an
 * exit code. */
typedef int (*cli_handler_t)(cli_ctx_t *ctx, int argc, char **argv);

typedef struct cli_command {
    const char *group;
    const char *verb; /* "" for a one-word command (dump-log) */
    cli_handler_t run;
    const char *usage; /* arguments after the verb */
    const char *help;  /* one line */
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

/* conn.c — talking to the controllers. */
/* Sends `api` (a request with an empty body) to the bootstrap controllers in
 * turn, following not-leader hints, until one answers without error.
 * KL_EINVAL: bad or missing --bootstrap-controller (a usage error);
 * KL_ECONNECT: nobody answered (err names every address tried with its
 * reason); other codes: --command-config unusable. */
int cli_controller_call(const cli_ctx_t *ctx, uint32_t api, wire_msg_t **resp, char *err,
                        size_t errlen);

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
void cli_json_string(cli_json_t *j, const char *key, const char *v);
void cli_json_int(cli_json_t *j, const char *key, int64_t v);
void cli_json_bool(cli_json_t *j, const char *key, bool v);
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

/* Command modules. */
int cli_storage_random_uuid(cli_ctx_t *ctx, int argc, char **argv);
int cli_storage_format(cli_ctx_t *ctx, int argc, char **argv);
int cli_quorum_describe(cli_ctx_t *ctx, int argc, char **argv);
int cli_dump_log(cli_ctx_t *ctx, int argc, char **argv); /* group "dump-log", verb "" */

#endif
