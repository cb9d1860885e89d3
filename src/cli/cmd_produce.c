/* cmd_produce.c — `keelctl produce`: each stdin line becomes one record (like
 * kafka-console-producer); with --json one result line per input line, in
 * input order, as soon as it and every line before it are settled. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/err.h"

#include "cli.h"

#define PRODUCE_MAX_RECORD_BYTES KC_MAX_BATCH_BYTES /* a longer line cannot be one record */
_Static_assert(PRODUCE_MAX_RECORD_BYTES == 1u << 20, "the too-long message says 1 MiB");
#define PRODUCE_READ_CHUNK 65536u
#define PRODUCE_BUF_BYTES (PRODUCE_MAX_RECORD_BYTES + 1u + PRODUCE_READ_CHUNK)
#define PRODUCE_SHOWN_BYTES 64 /* of a line too long to send, for the error report */
#define PRODUCE_FLUSH_GRACE_MS 1000 /* past the delivery timeout, for the last reports to arrive */

/* stdin cut into lines without blocking the client loop more than needed. */
typedef struct line_reader {
    char *buf; /* PRODUCE_BUF_BYTES */
    size_t start, len;
    bool eof;
    bool skipping; /* discarding the rest of a line that was too long */
} line_reader_t;

/* One input line from the moment it is read until its result is printed. */
typedef struct rec {
    struct rec *next;
    int64_t line;
    bool done;
    int err;
    const char *why; /* for a line refused before sending; else kl_strerror(err) */
    int32_t partition;
    int64_t offset;
    int32_t key_len; /* -1: no key */
    size_t value_len;
    char data[]; /* key then value */
} rec_t;

typedef struct produce {
    const char *topic;
    int32_t partition;
    const char *sep;
    size_t sep_len;
    bool json;
    cli_client_t c;
    kc_producer_t *p;
    rec_t *head, *tail; /* input order */
    int64_t lines, failed;
} produce_t;

static int reader_fill(line_reader_t *r)
{
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->len);
        r->start = 0;
    }
    ssize_t got = read(STDIN_FILENO, r->buf + r->len, PRODUCE_BUF_BYTES - r->len);
    if (got < 0) return errno == EINTR ? 0 : -errno;
    if (got == 0) r->eof = true;
    r->len += (size_t)got;
    return 0;
}

/* Next whole line (or the unterminated last one): 1 with the line in *line and
 * *len, 0 when more input is needed. *too_long when the line is over the
 * record limit: then *line holds its beginning and the rest is skipped. */
static int reader_next(line_reader_t *r, const char **line, size_t *len, bool *too_long)
{
    for (;;) {
        char *p = r->buf + r->start;
        char *nl = memchr(p, '\n', r->len);
        if (r->skipping) {
            size_t drop = nl ? (size_t)(nl - p) + 1 : r->len;
            r->start += drop;
            r->len -= drop;
            r->skipping = !nl;
            if (!nl) return 0;
            continue;
        }
        *too_long = false;
        if (nl || (r->eof && r->len > 0)) {
            *line = p;
            *len = nl ? (size_t)(nl - p) : r->len;
            r->start += *len + (nl ? 1 : 0);
            r->len -= *len + (nl ? 1 : 0);
            *too_long = *len > PRODUCE_MAX_RECORD_BYTES;
            return 1;
        }
        if (r->len <= PRODUCE_MAX_RECORD_BYTES) return 0;
        *line = p;
        *len = PRODUCE_SHOWN_BYTES;
        *too_long = true;
        r->skipping = true;
        r->start += r->len;
        r->len = 0;
        return 1;
    }
}

static void print_rec(const produce_t *pr, const rec_t *r)
{
    const char *key = r->key_len >= 0 ? r->data : NULL;
    const char *value = r->data + (r->key_len > 0 ? r->key_len : 0);
    if (pr->json) {
        cli_json_t j;
        cli_json_init(&j, stdout);
        cli_json_begin_object(&j, NULL);
        cli_json_bytes(&j, "value", value, (int64_t)r->value_len);
        if (pr->sep) cli_json_bytes(&j, "key", key, r->key_len);
        if (r->err == 0) {
            cli_json_int(&j, "partition", r->partition);
            cli_json_int(&j, "offset", r->offset);
        } else {
            cli_json_string(&j, "error", r->why ? r->why : kl_strerror(r->err));
            cli_json_string(&j, "error_code", kl_errname(r->err));
        }
        cli_json_end_object(&j);
        cli_json_finish(&j);
    } else if (r->err != 0) {
        cli_errorf("produce: line %" PRId64 ": %s", r->line, r->why ? r->why : kl_strerror(r->err));
    }
}

/* Prints and frees the settled records at the head of the input order. */
static void print_settled(produce_t *pr)
{
    bool any = false;
    while (pr->head && pr->head->done) {
        rec_t *r = pr->head;
        print_rec(pr, r);
        pr->failed += r->err != 0;
        pr->head = r->next;
        if (!pr->head) pr->tail = NULL;
        free(r);
        any = true;
    }
    if (any) fflush(stdout);
}

static void on_delivery(void *opaque, int err, int32_t partition, int64_t offset)
{
    rec_t *r = opaque;
    r->done = true;
    r->err = err;
    r->partition = partition;
    r->offset = offset;
}

/* Queues one line as a record, or settles it at once with the reason it cannot be sent. */
static int send_line(produce_t *pr, const char *line, size_t len, bool too_long)
{
    if (too_long && len > PRODUCE_SHOWN_BYTES) len = PRODUCE_SHOWN_BYTES;
    const char *sep = pr->sep && !too_long ? memmem(line, len, pr->sep, pr->sep_len) : NULL;
    rec_t *r = calloc(1, sizeof *r + len);
    if (!r) return KL_ENOMEM;
    memcpy(r->data, line, len);
    r->line = ++pr->lines;
    r->key_len = sep ? (int32_t)(sep - line) : -1;
    r->value_len = sep ? len - (size_t)(sep - line) - pr->sep_len : len;
    if (sep) memmove(r->data + r->key_len, sep + pr->sep_len, r->value_len);
    if (pr->tail) pr->tail->next = r;
    else pr->head = r;
    pr->tail = r;
    if (too_long || (pr->sep && !sep)) {
        r->done = true;
        r->err = too_long ? KL_ETOOBIG : KL_EINVAL;
        r->why = too_long ? "line longer than a record may be (1 MiB)"
                          : "no key separator in the line";
        return 0;
    }
    const char *value = r->data + (r->key_len > 0 ? r->key_len : 0);
    for (;;) {
        int rc = kc_produce(pr->p, pr->topic, pr->partition, sep ? r->data : NULL, r->key_len, value,
                            (int32_t)r->value_len, net_wall_ms(), on_delivery, r);
        if (rc == 0) return 0;
        if (rc != KL_EFULL || cli_stop) {
            on_delivery(r, rc, pr->partition, -1);
            return 0;
        }
        kc_poll(pr->c.kc, CLI_POLL_MS); /* buffer.memory used up: let deliveries free it */
        print_settled(pr);
    }
}

/* Reads stdin to its end, sending as it goes; between reads, while no input
 * is ready, runs the client so records go out and results get printed. */
static int pump(produce_t *pr)
{
    line_reader_t r = {.buf = malloc(PRODUCE_BUF_BYTES)};
    if (!r.buf) return KL_ENOMEM;
    int rc = 0;
    while (rc == 0 && !cli_stop) {
        const char *line;
        size_t len;
        bool too_long;
        while (rc == 0 && reader_next(&r, &line, &len, &too_long)) rc = send_line(pr, line, len, too_long);
        if (rc != 0 || r.eof) break;
        kc_poll(pr->c.kc, 0); /* one pass per chunk of input, so full batches leave while input streams in */
        print_settled(pr);
        while (kc_producer_outstanding(pr->p) > 0 && !cli_fd_readable(STDIN_FILENO) && !cli_stop) {
            kc_poll(pr->c.kc, CLI_POLL_MS);
            print_settled(pr);
        }
        print_settled(pr);
        if ((rc = reader_fill(&r)) != 0) cli_errorf("produce: reading stdin: %s", strerror(-rc));
    }
    free(r.buf);
    return rc;
}

/* Waits for every outstanding record's report, bounded by the delivery timeout. */
static void drain(produce_t *pr, int64_t delivery_timeout_ms)
{
    int64_t deadline = net_now_ms() + delivery_timeout_ms + PRODUCE_FLUSH_GRACE_MS;
    while (kc_producer_outstanding(pr->p) > 0 && net_now_ms() < deadline) {
        kc_poll(pr->c.kc, CLI_POLL_MS);
        print_settled(pr);
    }
    kc_producer_free(pr->p); /* fails what is left with KL_ESHUTDOWN */
    pr->p = NULL;
    for (rec_t *r = pr->head; r; r = r->next)
        if (!r->done) on_delivery(r, KL_ESHUTDOWN, pr->partition, -1);
    print_settled(pr);
}

int cli_produce(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = NULL, *acks_s = "all", *sep = NULL;
    int64_t partition = KC_PARTITION_ANY, delivery_timeout = ctx->timeout_ms;
    bool json = false;
    const cli_opt_t opts[] = {
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--partition", CLI_OPT_INT, &partition, 0, META_MAX_TOPIC_PARTITIONS - 1, NULL},
        {"--acks", CLI_OPT_STR, &acks_s, 0, 0, NULL},
        {"--key-separator", CLI_OPT_STR, &sep, 0, 0, NULL},
        {"--delivery-timeout-ms", CLI_OPT_INT, &delivery_timeout, 1, CLI_MAX_TIMEOUT_MS, NULL},
        {"--json", CLI_OPT_BOOL, &json, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "produce", "", opts);
    if (rc >= 0) return rc;
    int acks;
    if (!topic) return cli_usage_error("produce", "", "--topic T is required");
    if (!meta_topic_name_valid(topic)) return cli_usage_error("produce", "", "'%s' is not a topic name", topic);
    if (cli_parse_acks("produce", acks_s, &acks) != 0) return CLI_EXIT_USAGE;
    if (sep && !sep[0]) return cli_usage_error("produce", "", "--key-separator must not be empty");

    produce_t pr = {.topic = topic, .partition = (int32_t)partition, .sep = sep, .json = json};
    pr.sep_len = sep ? strlen(sep) : 0;
    if ((rc = cli_client_open(ctx, "produce", &pr.c)) != CLI_EXIT_OK) return rc;
    /* A missing topic or partition is one clear error, not one per line. */
    wire_msg_t *md;
    const wire_topic_info_t *t;
    if ((rc = cli_topic_metadata(&pr.c, topic, &md, &t)) != CLI_EXIT_OK) goto out;
    int n_parts = t->n_partitions;
    wire_msg_free(md);
    if (partition >= n_parts) {
        cli_errorf("produce: topic '%s' has no partition %" PRId64 " (it has %d)", topic, partition, n_parts);
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    kc_producer_config_t pc;
    kc_producer_config_defaults(&pc);
    pc.acks = acks;
    pc.delivery_timeout_ms = delivery_timeout;
    char err[CLI_ERR_LEN] = "";
    if (!(pr.p = kc_producer_new(pr.c.kc, &pc, err, sizeof err))) {
        cli_errorf("produce: %s", err[0] ? err : "cannot make a producer");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    cli_catch_stop_signals();
    int prc = pump(&pr);
    drain(&pr, delivery_timeout);
    if (prc == KL_ENOMEM) cli_errorf("produce: %s", kl_strerror(prc));
    rc = prc == 0 && pr.failed == 0 && cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
    if (pr.failed) cli_errorf("produce: %" PRId64 " of %" PRId64 " records failed", pr.failed, pr.lines);
out:
    cli_client_close(&pr.c);
    return rc;
}
