/* chaos_worker.c — the chaos harness's workload process (issue 4, DESIGN.md §8): produces, polls or final-reads through the client library and records every operation as a history line for tools/chaos_check.py. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/kc.h"
#include "keel/meta.h"
#include "keel/wire.h"

#define CW_EXIT_OK 0
#define CW_EXIT_FAIL 1
#define CW_EXIT_USAGE 2
#define CW_MAX_TOPICS 64
#define CW_MAX_NAME_LEN 200               /* --process; restarts append ".N" */
#define CW_PROCESS_LEN (CW_MAX_NAME_LEN + 16)
#define CW_MAX_KEYS 1000000
#define CW_MAX_RATE 1000000               /* records per second */
#define CW_MAX_OUTSTANDING 10000000
#define CW_MAX_TIMEOUT_MS 86400000        /* any timeout or drain: one day */
#define CW_MAX_VALUE_BASE (INT64_C(1) << 62) /* value-base + seq stays far from overflow */
#define CW_LINGER_MS 5
#define CW_META_WAIT_MS 60000             /* topics must be known by then */
#define CW_RETRY_MS 200                   /* between metadata and ListOffsets attempts, consumer restarts */
#define CW_PRODUCE_POLL_MAX_MS 10         /* client loop between sends */
#define CW_CONSUME_POLL_MS 1000           /* one kc_consume */
#define CW_FETCH_MAX_WAIT_MS 500
#define CW_PROGRESS_MS 5000               /* progress line period */
#define CW_WARN_EVERY_MS 1000             /* repeated warnings: at most one a second */
#define CW_DEFAULT_KEYS 8
#define CW_DEFAULT_MAX_OUTSTANDING 2000
#define CW_DEFAULT_REQUEST_TIMEOUT_MS 5000
#define CW_DEFAULT_DELIVERY_TIMEOUT_MS 30000
#define CW_DEFAULT_DRAIN_MS 30000
#define CW_DEFAULT_FINAL_TIMEOUT_MS 120000
#define CW_XORSHIFT_ZERO_SEED UINT64_C(0x9e3779b97f4a7c15) /* xorshift's state must not be 0 */

enum { CW_PRODUCE = 1, CW_CONSUME = 2, CW_FINAL = 4, CW_ALL = 7 };

static volatile sig_atomic_t cw_stop;
static const char *cw_name = "?"; /* --process, for stderr lines */

static void cw_on_signal(int sig)
{
    (void)sig;
    cw_stop = 1;
}

static void cw_vlog(const char *fmt, va_list ap)
{
    fprintf(stderr, "chaos-worker %s: ", cw_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void cw_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void cw_log(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cw_vlog(fmt, ap);
    va_end(ap);
}

/* A warning that may repeat thousands of times (every record of a failed
 * batch): printed at most once per CW_WARN_EVERY_MS, counting the rest. */
typedef struct cw_limiter {
    int64_t next_ms;
    int64_t suppressed;
} cw_limiter_t;

static void cw_warn_limited(cw_limiter_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cw_warn_limited(cw_limiter_t *l, const char *fmt, ...)
{
    int64_t now = net_now_ms();
    if (now < l->next_ms) {
        l->suppressed++;
        return;
    }
    if (l->suppressed) cw_log("(%" PRId64 " similar messages suppressed)", l->suppressed);
    l->suppressed = 0;
    l->next_ms = now + CW_WARN_EVERY_MS;
    va_list ap;
    va_start(ap, fmt);
    cw_vlog(fmt, ap);
    va_end(ap);
}

static int64_t cw_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cw_min_ms(int64_t a, int64_t b)
{
    int64_t m = a < b ? a : b;
    return m < 0 ? 0 : (int)m;
}

/* ---- command line ------------------------------------------------------------------ */

typedef struct cw_args {
    int mode;
    const char *bootstrap, *process, *topics_arg, *history, *t0_arg;
    double t0_ms;
    int64_t value_base, rate, keys, seed, max_outstanding;
    int64_t request_timeout_ms, delivery_timeout_ms, drain_ms, timeout_ms;
    bool seed_given;
    char *topic_buf; /* topics_arg split in place; topics[] point into it */
    const char *topics[CW_MAX_TOPICS];
    int n_topics;
} cw_args_t;

typedef struct cw_opt {
    const char *name;
    int modes, required; /* the modes that accept it / need it */
    const char **str;    /* a string, or */
    int64_t *num;        /* an integer within [min, max] */
    int64_t min, max;
    bool *given;
} cw_opt_t;

static void cw_usage(FILE *f)
{
    fputs("usage: keel-chaos-worker produce    --bootstrap H:P[,H:P..] --process NAME --topics T1[,T2..]\n"
          "                                    --history FILE --t0-ms MS --value-base N --rate PER_SEC\n"
          "                                    [--keys K=8] [--seed S=value-base] [--max-outstanding N=2000]\n"
          "                                    [--request-timeout-ms 5000] [--delivery-timeout-ms 30000]\n"
          "                                    [--drain-ms 30000]\n"
          "       keel-chaos-worker consume    --bootstrap .. --process NAME --topics T1[,..] --history FILE\n"
          "                                    --t0-ms MS [--request-timeout-ms 5000]\n"
          "       keel-chaos-worker final-read --bootstrap .. --process NAME --topics T1[,..] --history FILE\n"
          "                                    --t0-ms MS [--timeout-ms 120000]\n"
          "Appends JSON-lines events (format: tools/chaos_check.py) to FILE; times are ms since --t0-ms.\n"
          "Stops on SIGTERM/SIGINT (final-read: when every partition is read to its end).\n",
          f);
}

static int cw_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int cw_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("keel-chaos-worker: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs("run 'keel-chaos-worker --help' for usage\n", stderr);
    return CW_EXIT_USAGE;
}

static bool cw_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

/* Splits --topics in place: 1..CW_MAX_TOPICS distinct valid topic names. */
static int cw_split_topics(cw_args_t *a)
{
    if (!(a->topic_buf = strdup(a->topics_arg))) return cw_usage_error("out of memory");
    char *save = NULL;
    for (char *t = strtok_r(a->topic_buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!meta_topic_name_valid(t)) return cw_usage_error("--topics: '%s' is not a topic name", t);
        for (int i = 0; i < a->n_topics; i++)
            if (strcmp(a->topics[i], t) == 0) return cw_usage_error("--topics: '%s' is given twice", t);
        if (a->n_topics == CW_MAX_TOPICS) return cw_usage_error("--topics: at most %d topics", CW_MAX_TOPICS);
        a->topics[a->n_topics++] = t;
    }
    return a->n_topics ? 0 : cw_usage_error("--topics: no topic given");
}

/* 0, or the exit status (usage: CW_EXIT_USAGE; --help: CW_EXIT_OK). */
static int cw_parse_args(int argc, char **argv, cw_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->keys = CW_DEFAULT_KEYS;
    a->max_outstanding = CW_DEFAULT_MAX_OUTSTANDING;
    a->request_timeout_ms = CW_DEFAULT_REQUEST_TIMEOUT_MS;
    a->delivery_timeout_ms = CW_DEFAULT_DELIVERY_TIMEOUT_MS;
    a->drain_ms = CW_DEFAULT_DRAIN_MS;
    a->timeout_ms = CW_DEFAULT_FINAL_TIMEOUT_MS;
    const cw_opt_t opts[] = {
        {"--bootstrap", CW_ALL, CW_ALL, &a->bootstrap, NULL, 0, 0, NULL},
        {"--process", CW_ALL, CW_ALL, &a->process, NULL, 0, 0, NULL},
        {"--topics", CW_ALL, CW_ALL, &a->topics_arg, NULL, 0, 0, NULL},
        {"--history", CW_ALL, CW_ALL, &a->history, NULL, 0, 0, NULL},
        {"--t0-ms", CW_ALL, CW_ALL, &a->t0_arg, NULL, 0, 0, NULL},
        {"--value-base", CW_PRODUCE, CW_PRODUCE, NULL, &a->value_base, 0, CW_MAX_VALUE_BASE, NULL},
        {"--rate", CW_PRODUCE, CW_PRODUCE, NULL, &a->rate, 1, CW_MAX_RATE, NULL},
        {"--keys", CW_PRODUCE, 0, NULL, &a->keys, 1, CW_MAX_KEYS, NULL},
        {"--seed", CW_PRODUCE, 0, NULL, &a->seed, INT64_MIN, INT64_MAX, &a->seed_given},
        {"--max-outstanding", CW_PRODUCE, 0, NULL, &a->max_outstanding, 1, CW_MAX_OUTSTANDING, NULL},
        {"--request-timeout-ms", CW_PRODUCE | CW_CONSUME, 0, NULL, &a->request_timeout_ms, 1, CW_MAX_TIMEOUT_MS, NULL},
        {"--delivery-timeout-ms", CW_PRODUCE, 0, NULL, &a->delivery_timeout_ms, CW_LINGER_MS, CW_MAX_TIMEOUT_MS, NULL},
        {"--drain-ms", CW_PRODUCE, 0, NULL, &a->drain_ms, 0, CW_MAX_TIMEOUT_MS, NULL},
        {"--timeout-ms", CW_FINAL, 0, NULL, &a->timeout_ms, 1, CW_MAX_TIMEOUT_MS, NULL},
    };
    enum { N_OPTS = sizeof opts / sizeof opts[0] };
    bool seen[N_OPTS] = {false};
    if (argc < 2) return cw_usage_error("no command: produce, consume or final-read");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        cw_usage(stdout);
        return CW_EXIT_OK;
    }
    a->mode = strcmp(cmd, "produce") == 0 ? CW_PRODUCE
              : strcmp(cmd, "consume") == 0 ? CW_CONSUME
              : strcmp(cmd, "final-read") == 0 ? CW_FINAL : 0;
    if (!a->mode) return cw_usage_error("unknown command '%s' (produce, consume or final-read)", cmd);
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int o = 0;
        while (o < N_OPTS && !(strlen(opts[o].name) == len && strncmp(opts[o].name, arg, len) == 0)) o++;
        if (o == N_OPTS || !(opts[o].modes & a->mode)) return cw_usage_error("%s: unknown option '%s'", cmd, arg);
        if (seen[o]) return cw_usage_error("%s is given twice", opts[o].name);
        const char *val = eq ? eq + 1 : i + 1 < argc ? argv[++i] : NULL;
        if (!val) return cw_usage_error("%s needs a value", opts[o].name);
        seen[o] = true;
        if (opts[o].given) *opts[o].given = true;
        if (opts[o].str) {
            if (!val[0]) return cw_usage_error("%s must not be empty", opts[o].name);
            *opts[o].str = val;
        } else if (!cw_parse_int(val, opts[o].min, opts[o].max, opts[o].num)) {
            return cw_usage_error("%s: '%s' is not an integer in [%" PRId64 ", %" PRId64 "]", opts[o].name, val,
                                  opts[o].min, opts[o].max);
        }
    }
    for (int o = 0; o < N_OPTS; o++)
        if ((opts[o].required & a->mode) && !seen[o]) return cw_usage_error("%s: %s is required", cmd, opts[o].name);
    if (strlen(a->process) > CW_MAX_NAME_LEN)
        return cw_usage_error("--process: at most %d characters", CW_MAX_NAME_LEN);
    char *end;
    a->t0_ms = strtod(a->t0_arg, &end);
    if (end == a->t0_arg || *end || !(a->t0_ms >= 0 && a->t0_ms < 1e15))
        return cw_usage_error("--t0-ms: '%s' is not a time in ms", a->t0_arg);
    if (!a->seed_given) a->seed = a->value_base;
    return cw_split_topics(a);
}

/* ---- history ------------------------------------------------------------------------- */

/* The history file and the event being built. err: the first failure, after
 * which nothing more may be written (a send must never go out unrecorded). */
typedef struct cw_hist {
    FILE *f;
    char process[CW_PROCESS_LEN];
    double t0_ms, last_ms;
    kl_buf_t line;
    int err;
} cw_hist_t;

static void cw_check(cw_hist_t *h, int rc)
{
    if (rc != 0 && h->err == 0) h->err = rc;
}

/* ms since --t0-ms, never below 0 nor below the previous reading: a wall
 * clock step must not put a completion before its invoke. */
static double cw_time(cw_hist_t *h)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6 - h->t0_ms;
    if (t < h->last_ms) t = h->last_ms;
    return h->last_ms = t;
}

/* A JSON string. Bytes outside printable ASCII are \u-escaped one by one,
 * so the line is valid UTF-8 JSON whatever the input bytes are. */
static void cw_str(cw_hist_t *h, const char *s)
{
    cw_check(h, kl_buf_append_u8(&h->line, '"'));
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') cw_check(h, kl_buf_appendf(&h->line, "\\%c", *p));
        else if (*p < 0x20 || *p >= 0x7f) cw_check(h, kl_buf_appendf(&h->line, "\\u%04x", *p));
        else cw_check(h, kl_buf_append_u8(&h->line, *p));
    }
    cw_check(h, kl_buf_append_u8(&h->line, '"'));
}

static void cw_ev_begin(cw_hist_t *h, const char *type, const char *f, double t, const char *topic, int32_t partition)
{
    kl_buf_reset(&h->line);
    cw_check(h, kl_buf_appendf(&h->line, "{\"process\":"));
    cw_str(h, h->process);
    cw_check(h, kl_buf_appendf(&h->line, ",\"type\":\"%s\",\"f\":\"%s\",\"time\":%.3f,\"topic\":", type, f, t));
    cw_str(h, topic);
    cw_check(h, kl_buf_appendf(&h->line, ",\"partition\":%" PRId32, partition));
}

static void cw_ev_error(cw_hist_t *h, const char *why)
{
    cw_check(h, kl_buf_appendf(&h->line, ",\"error\":"));
    cw_str(h, why);
}

/* Writes the event with one fprintf; 0 or the history's error. */
static int cw_ev_end(cw_hist_t *h)
{
    cw_check(h, kl_buf_append_u8(&h->line, '}'));
    if (h->err == 0 && fprintf(h->f, "%.*s\n", (int)h->line.len, (const char *)h->line.data) < 0) h->err = KL_EIO;
    return h->err;
}

static int cw_hist_flush(cw_hist_t *h)
{
    if (fflush(h->f) != 0) cw_check(h, KL_EIO);
    return h->err;
}

/* ---- metadata ---------------------------------------------------------------------------- */

/* Asks until every topic is known with at least one partition (n_parts[i]:
 * topics[i]'s count), every CW_RETRY_MS until the deadline or a stop signal. */
static int cw_await_topics(const cw_args_t *a, kc_client_t *c, int64_t deadline, int32_t *n_parts)
{
    cw_limiter_t warn = {0};
    for (;;) {
        wire_msg_t *md = NULL;
        int rc = kc_metadata(c, a->topics, a->n_topics, cw_min_ms(a->request_timeout_ms, deadline - net_now_ms()), &md);
        const char *missing = NULL;
        for (int i = 0; rc == 0 && i < a->n_topics && !missing; i++) {
            const wire_metadata_resp_t *m = &md->body.metadata_resp;
            n_parts[i] = 0;
            for (int j = 0; j < m->n_topics; j++)
                if (m->topics[j].error == 0 && strcmp(m->topics[j].name, a->topics[i]) == 0)
                    n_parts[i] = m->topics[j].n_partitions;
            if (n_parts[i] < 1) missing = a->topics[i];
        }
        wire_msg_free(md);
        if (rc == 0 && !missing) return 0;
        char why[600];
        if (rc != 0) snprintf(why, sizeof why, "metadata: %s", kc_last_error(c));
        else snprintf(why, sizeof why, "topic '%s' is not known yet", missing);
        if (cw_stop) return KL_ESHUTDOWN;
        if (net_now_ms() + CW_RETRY_MS >= deadline) {
            cw_log("giving up waiting for the topics: %s", why);
            return rc ? rc : KL_EUNKNOWNPARTITION;
        }
        cw_warn_limited(&warn, "waiting for the topics: %s", why);
        kc_poll(c, CW_RETRY_MS); /* nothing else is running: a sleep that keeps the loop serviced */
    }
}

/* ---- produce ---------------------------------------------------------------------------------- */

typedef struct cw_prod {
    const cw_args_t *a;
    cw_hist_t *h;
    kc_client_t *c;
    int32_t n_parts[CW_MAX_TOPICS];
    uint64_t rng; /* xorshift64 state */
    int64_t seq;
    int64_t invoked, ok, fail, info, skipped, lagged;
    cw_limiter_t warn;
} cw_prod_t;

/* One record from its invoke until its completion (freed by the delivery report). */
typedef struct cw_send {
    cw_prod_t *w;
    int topic, key;
    int32_t partition;
    int64_t value;
} cw_send_t;

static uint64_t cw_rand(cw_prod_t *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

static void cw_send_event(cw_prod_t *w, const cw_send_t *s, const char *type)
{
    cw_ev_begin(w->h, type, "send", cw_time(w->h), w->a->topics[s->topic], s->partition);
    cw_check(w->h, kl_buf_appendf(&w->h->line, ",\"key\":\"k%d\",\"value\":%" PRId64, s->key, s->value));
}

/* ok only for an acknowledgement of the record's own partition with an
 * offset; anything else the record may or may not be in the log: info. */
static void cw_on_delivery(void *opaque, int err, int32_t partition, int64_t offset)
{
    cw_send_t *s = opaque;
    cw_prod_t *w = s->w;
    const char *topic = w->a->topics[s->topic];
    bool ok = err == 0 && partition == s->partition && offset >= 0;
    cw_send_event(w, s, ok ? "ok" : "info");
    if (ok) {
        cw_check(w->h, kl_buf_appendf(&w->h->line, ",\"offset\":%" PRId64, offset));
        w->ok++;
    } else {
        char why[128];
        if (err != 0) {
            snprintf(why, sizeof why, "%s", kl_strerror(err));
            cw_warn_limited(&w->warn, "send of %" PRId64 " to %s/%" PRId32 ": %s", s->value, topic, s->partition,
                            kc_last_error(w->c));
        } else if (partition != s->partition) {
            snprintf(why, sizeof why, "acknowledged on partition %" PRId32 " instead", partition);
            cw_log("WARNING: value %" PRId64 " sent to %s/%" PRId32 " was acknowledged on partition %" PRId32,
                   s->value, topic, s->partition, partition);
        } else {
            snprintf(why, sizeof why, "acknowledged without an offset");
            cw_warn_limited(&w->warn, "value %" PRId64 " to %s/%" PRId32 " acknowledged without an offset", s->value,
                            topic, s->partition);
        }
        cw_ev_error(w->h, why);
        w->info++;
    }
    cw_ev_end(w->h);
    free(s);
}

/* One record: the invoke is on its way to the file before kc_produce sees
 * the record, and a synchronous refusal (the record never left) is a fail. */
static void cw_send_one(cw_prod_t *w, kc_producer_t *p)
{
    const cw_args_t *a = w->a;
    cw_send_t *s = malloc(sizeof *s);
    if (!s) {
        cw_check(w->h, KL_ENOMEM);
        return;
    }
    s->w = w;
    s->topic = (int)(cw_rand(w) % (uint64_t)a->n_topics);
    s->key = (int)(cw_rand(w) % (uint64_t)a->keys);
    s->value = a->value_base + w->seq++;
    char key[16], value[24];
    int key_len = snprintf(key, sizeof key, "k%d", s->key);
    int value_len = snprintf(value, sizeof value, "%" PRId64, s->value);
    s->partition = kc_key_partition(key, (size_t)key_len, w->n_parts[s->topic]);
    cw_send_event(w, s, "invoke");
    if (cw_ev_end(w->h) != 0) {
        free(s);
        return;
    }
    w->invoked++;
    int rc = kc_produce(p, a->topics[s->topic], s->partition, key, key_len, value, value_len, -1, cw_on_delivery, s);
    if (rc == 0) return;
    cw_warn_limited(&w->warn, "send of %" PRId64 " refused: %s", s->value, kc_last_error(w->c));
    cw_send_event(w, s, "fail");
    cw_ev_error(w->h, kl_strerror(rc));
    cw_ev_end(w->h);
    w->fail++;
    free(s);
}

static void cw_prod_summary(const cw_prod_t *w, kc_producer_t *p, const char *what)
{
    cw_log("%s: invoked %" PRId64 ", ok %" PRId64 ", fail %" PRId64 ", info %" PRId64 ", outstanding %" PRId64
           ", skipped %" PRId64 " (outstanding bound), %" PRId64 " (behind schedule)",
           what, w->invoked, w->ok, w->fail, w->info, p ? kc_producer_outstanding(p) : 0, w->skipped, w->lagged);
}

/* Paces --rate records/s on a schedule from the start (a tick that comes
 * late is made up, unless more than a second's worth is due: then the
 * schedule skips ahead instead of bursting). */
static int cw_produce_loop(cw_prod_t *w, kc_producer_t *p)
{
    const int64_t rate = w->a->rate, start = cw_mono_us();
    int64_t ticks = 0, next_progress = net_now_ms() + CW_PROGRESS_MS;
    while (!cw_stop && w->h->err == 0) {
        int64_t due = (cw_mono_us() - start) * rate / 1000000;
        if (due - ticks > rate) {
            w->lagged += due - 1 - ticks;
            ticks = due - 1;
        }
        while (ticks < due && !cw_stop && w->h->err == 0) {
            ticks++;
            if (kc_producer_outstanding(p) >= w->a->max_outstanding) w->skipped++;
            else cw_send_one(w, p);
        }
        if (cw_hist_flush(w->h) != 0) break;
        if (net_now_ms() >= next_progress) {
            cw_prod_summary(w, p, "progress");
            next_progress += CW_PROGRESS_MS;
        }
        int64_t next_us = start + (ticks + 1) * 1000000 / rate;
        int rc = kc_poll(w->c, cw_min_ms((next_us - cw_mono_us() + 999) / 1000, CW_PRODUCE_POLL_MAX_MS));
        if (rc != 0) {
            cw_log("client loop failed: %s", kc_last_error(w->c));
            return rc;
        }
    }
    return w->h->err;
}

static int cw_produce(const cw_args_t *a, cw_hist_t *h, kc_client_t *c)
{
    cw_prod_t w = {.a = a, .h = h, .c = c, .rng = (uint64_t)a->seed ? (uint64_t)a->seed : CW_XORSHIFT_ZERO_SEED};
    if (cw_await_topics(a, c, net_now_ms() + CW_META_WAIT_MS, w.n_parts) != 0) return CW_EXIT_FAIL;
    kc_producer_config_t pc;
    kc_producer_config_defaults(&pc);
    pc.acks = -1;
    pc.idempotent = true;
    pc.linger_ms = CW_LINGER_MS;
    pc.max_in_flight = KC_MAX_IN_FLIGHT;
    pc.delivery_timeout_ms = a->delivery_timeout_ms;
    char err[256] = "";
    kc_producer_t *p = kc_producer_new(c, &pc, err, sizeof err);
    if (!p) {
        cw_log("cannot make a producer: %s", err);
        return CW_EXIT_FAIL;
    }
    int rc = cw_produce_loop(&w, p);
    if (kc_flush(p, (int)a->drain_ms) != 0) cw_log("drain: %s", kc_last_error(c));
    cw_prod_summary(&w, p, "stopped");
    kc_producer_free(p); /* reports what is left (info: shutting down) through cw_on_delivery, which frees it */
    cw_hist_flush(h);
    cw_prod_summary(&w, NULL, "done");
    if (h->err) cw_log("writing the history: %s", kl_strerror(h->err));
    return rc == 0 && h->err == 0 ? CW_EXIT_OK : CW_EXIT_FAIL;
}

/* ---- reading: consume and final-read ------------------------------------------------------------- */

typedef struct cw_rec {
    int64_t offset, value;
} cw_rec_t;

/* One partition read: what the last kc_consume returned for it. */
typedef struct cw_rpart {
    const char *topic;
    int32_t partition;
    int64_t from; /* position before the poll */
    cw_rec_t *recs;
    size_t n, cap;
    int64_t total, earliest, latest;
    bool complete;
} cw_rpart_t;

typedef struct cw_reader {
    const cw_args_t *a;
    cw_hist_t *h;
    kc_client_t *c;
    cw_rpart_t *parts; /* every partition of every topic, topic by topic */
    int n_parts;
    int first[CW_MAX_TOPICS]; /* index of topics[i]'s partition 0 */
    int32_t n_topic_parts[CW_MAX_TOPICS];
    int err; /* a failure inside the record callback: the chunk is not whole, so it is not written */
    bool warned_value;
    int64_t polls, records;
    cw_limiter_t warn;
} cw_reader_t;

static int cw_reader_init(cw_reader_t *rd, const cw_args_t *a, cw_hist_t *h, kc_client_t *c, int64_t deadline)
{
    memset(rd, 0, sizeof *rd);
    rd->a = a;
    rd->h = h;
    rd->c = c;
    int rc = cw_await_topics(a, c, deadline, rd->n_topic_parts);
    if (rc != 0) return rc;
    for (int i = 0; i < a->n_topics; i++) {
        rd->first[i] = rd->n_parts;
        rd->n_parts += rd->n_topic_parts[i];
    }
    if (!(rd->parts = calloc((size_t)rd->n_parts, sizeof *rd->parts))) return KL_ENOMEM;
    for (int i = 0; i < a->n_topics; i++)
        for (int32_t p = 0; p < rd->n_topic_parts[i]; p++)
            rd->parts[rd->first[i] + p] = (cw_rpart_t){.topic = a->topics[i], .partition = p, .earliest = -1,
                                                       .latest = -1};
    return 0;
}

static void cw_reader_free(cw_reader_t *rd)
{
    for (int i = 0; i < rd->n_parts; i++) free(rd->parts[i].recs);
    free(rd->parts);
}

/* The record's value as the decimal integer the producers write; -1 (which
 * the checker reports as a phantom read) for anything else. */
static int64_t cw_value(cw_reader_t *rd, const kc_record_t *r)
{
    const uint8_t *v = r->value;
    int32_t n = r->value_len, i = v && n > 0 && v[0] == '-' ? 1 : 0;
    bool ok = v && n > i;
    int64_t x = 0;
    for (; ok && i < n; i++) {
        int d = v[i] - '0';
        ok = d >= 0 && d <= 9 && x <= (INT64_MAX - d) / 10;
        x = x * 10 + (ok ? d : 0);
    }
    if (ok) return v[0] == '-' ? -x : x;
    if (!rd->warned_value) {
        rd->warned_value = true;
        cw_log("WARNING: %s/%" PRId32 " offset %" PRId64 " holds a value that is not a decimal integer "
               "(recorded as -1; reported once)", r->topic, r->partition, r->offset);
    }
    return -1;
}

static void cw_on_record(void *arg, const kc_record_t *r)
{
    cw_reader_t *rd = arg;
    cw_rpart_t *cp = NULL;
    for (int i = 0; i < rd->a->n_topics && !cp; i++)
        if (strcmp(rd->a->topics[i], r->topic) == 0 && r->partition >= 0 && r->partition < rd->n_topic_parts[i])
            cp = &rd->parts[rd->first[i] + r->partition];
    if (!cp) {
        cw_log("WARNING: a record of %s/%" PRId32 ", which is not assigned", r->topic, r->partition);
        rd->err = KL_EPROTO;
        return;
    }
    if (cp->n == cp->cap) {
        size_t cap = cp->cap ? 2 * cp->cap : 256;
        cw_rec_t *recs = realloc(cp->recs, cap * sizeof *recs);
        if (!recs) {
            rd->err = KL_ENOMEM;
            return;
        }
        cp->recs = recs;
        cp->cap = cap;
    }
    cp->recs[cp->n++] = (cw_rec_t){r->offset, cw_value(rd, r)};
}

/* Writes one read of cp (invoke at t_inv, then ok with from..to and the
 * records) when it returned records or moved the position. Records outside
 * [from, to) would be a client bug: said loudly, and the range widened so
 * the history stays well-formed and the checker judges the records. */
static void cw_write_read(cw_reader_t *rd, cw_rpart_t *cp, const char *f, double t_inv, int64_t to)
{
    if (cp->n == 0 && to == cp->from) return;
    int64_t from = cp->from;
    for (size_t i = 0; i < cp->n; i++) {
        int64_t off = cp->recs[i].offset;
        if (off >= from && off < to && (i == 0 || off > cp->recs[i - 1].offset)) continue;
        cw_log("WARNING: %s of %s/%" PRId32 " from %" PRId64 " to %" PRId64 " returned offset %" PRId64
               " out of place (record %zu of %zu)", f, cp->topic, cp->partition, cp->from, to, off, i, cp->n);
        if (off < from) from = off;
        if (off >= to) to = off + 1;
    }
    cw_hist_t *h = rd->h;
    cw_ev_begin(h, "invoke", f, t_inv, cp->topic, cp->partition);
    cw_ev_end(h);
    cw_ev_begin(h, "ok", f, cw_time(h), cp->topic, cp->partition);
    cw_check(h, kl_buf_appendf(&h->line, ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"records\":[", from, to));
    for (size_t i = 0; i < cp->n; i++)
        cw_check(h, kl_buf_appendf(&h->line, "%s[%" PRId64 ",%" PRId64 "]", i ? "," : "", cp->recs[i].offset,
                                   cp->recs[i].value));
    cw_check(h, kl_buf_append_u8(&h->line, ']'));
    cw_ev_end(h);
    cp->total += (int64_t)cp->n;
    rd->records += (int64_t)cp->n;
}

/* One kc_consume over parts[lo, hi) of k, each read written as f. */
static int cw_read_once(cw_reader_t *rd, kc_consumer_t *k, int lo, int hi, const char *f, int timeout_ms)
{
    for (int i = lo; i < hi; i++) {
        rd->parts[i].n = 0;
        rd->parts[i].from = kc_consumer_position(k, rd->parts[i].topic, rd->parts[i].partition);
    }
    double t_inv = cw_time(rd->h);
    int rc = kc_consume(k, timeout_ms, cw_on_record, rd);
    rd->polls++;
    if (rd->err) return rd->err;
    for (int i = lo; i < hi; i++) {
        cw_rpart_t *cp = &rd->parts[i];
        /* Delivered records count even when an error ended the poll: they moved the position. */
        cw_write_read(rd, cp, f, t_inv, kc_consumer_position(k, cp->topic, cp->partition));
    }
    cw_hist_flush(rd->h);
    return rc < 0 ? rc : 0;
}

/* A consumer on parts[lo, hi), each assigned at offset at. */
static kc_consumer_t *cw_consumer(cw_reader_t *rd, int lo, int hi, int64_t at)
{
    kc_consumer_config_t cfg;
    kc_consumer_config_defaults(&cfg);
    cfg.fetch_max_wait_ms = CW_FETCH_MAX_WAIT_MS;
    char err[256] = "";
    kc_consumer_t *k = kc_consumer_new(rd->c, &cfg, err, sizeof err);
    if (!k) {
        cw_log("cannot make a consumer: %s", err);
        return NULL;
    }
    for (int i = lo; i < hi; i++) {
        if (kc_consumer_assign(k, rd->parts[i].topic, rd->parts[i].partition, at) != 0) {
            cw_log("assigning %s/%" PRId32 ": %s", rd->parts[i].topic, rd->parts[i].partition, kc_last_error(rd->c));
            kc_consumer_free(k);
            return NULL;
        }
    }
    return k;
}

/* Polls every partition from offset 0 until stopped. A poll error that the
 * client does not retry itself (KL_ERANGE: the position fell out of the log)
 * restarts from 0 under a new process name NAME.1, NAME.2, ..., since the
 * checker tracks each process's positions. */
static int cw_consume(const cw_args_t *a, cw_hist_t *h, kc_client_t *c)
{
    cw_reader_t rd;
    int rc = cw_reader_init(&rd, a, h, c, net_now_ms() + CW_META_WAIT_MS);
    kc_consumer_t *k = NULL;
    int64_t restarts = 0, errors = 0, next_progress = net_now_ms() + CW_PROGRESS_MS;
    while (rc == 0 && !cw_stop && h->err == 0) {
        if (!k && !(k = cw_consumer(&rd, 0, rd.n_parts, 0))) {
            rc = KL_ENOMEM;
            break;
        }
        int prc = cw_read_once(&rd, k, 0, rd.n_parts, "poll", CW_CONSUME_POLL_MS);
        if (rd.err) {
            cw_log("reading records: %s", kl_strerror(rd.err));
            rc = rd.err;
        } else if (prc != 0) {
            errors++;
            bool restart = prc == KL_ERANGE || !kc_retriable(prc);
            cw_warn_limited(&rd.warn, "poll: %s%s", kc_last_error(c), restart ? "; restarting from offset 0" : "");
            if (restart) {
                kc_consumer_free(k);
                k = NULL;
                snprintf(h->process, sizeof h->process, "%s.%" PRId64, a->process, ++restarts);
                kc_poll(c, CW_RETRY_MS);
            }
        }
        if (net_now_ms() >= next_progress) {
            cw_log("progress: polls %" PRId64 ", records %" PRId64 ", errors %" PRId64 ", restarts %" PRId64,
                   rd.polls, rd.records, errors, restarts);
            next_progress += CW_PROGRESS_MS;
        }
    }
    if (k) kc_consumer_free(k);
    cw_log("done: polls %" PRId64 ", records %" PRId64 ", errors %" PRId64 ", restarts %" PRId64 "%s%s", rd.polls,
           rd.records, errors, restarts, h->err ? "; writing the history failed: " : "",
           h->err ? kl_strerror(h->err) : "");
    cw_reader_free(&rd);
    return rc == 0 && h->err == 0 ? CW_EXIT_OK : CW_EXIT_FAIL;
}

/* ListOffsets until it answers, every CW_RETRY_MS, within the deadline. */
static int cw_list_offset(cw_reader_t *rd, const cw_rpart_t *cp, int64_t which, int64_t deadline, int64_t *out)
{
    for (;;) {
        int64_t left = deadline - net_now_ms();
        if (left <= 0 || cw_stop) return KL_ETIMEOUT;
        int rc = kc_list_offset(rd->c, cp->topic, cp->partition, which, cw_min_ms(rd->a->request_timeout_ms, left), out);
        if (rc == 0) return 0;
        cw_warn_limited(&rd->warn, "list offsets of %s/%" PRId32 ": %s", cp->topic, cp->partition,
                        kc_last_error(rd->c));
        kc_poll(rd->c, cw_min_ms(CW_RETRY_MS, deadline - net_now_ms()));
    }
}

/* Reads parts[i] from its earliest to its latest offset (as they were when
 * it began), chunk by chunk, within the deadline. */
static void cw_final_part(cw_reader_t *rd, int i, int64_t deadline)
{
    cw_rpart_t *cp = &rd->parts[i];
    if (cw_list_offset(rd, cp, WIRE_OFFSET_EARLIEST, deadline, &cp->earliest) != 0 ||
        cw_list_offset(rd, cp, WIRE_OFFSET_LATEST, deadline, &cp->latest) != 0)
        return;
    if (cp->latest <= cp->earliest) {
        if (cp->latest < cp->earliest)
            cw_log("WARNING: %s/%" PRId32 " latest offset %" PRId64 " is below its earliest %" PRId64, cp->topic,
                   cp->partition, cp->latest, cp->earliest);
        /* Nothing to read: say so, so the checker knows the partition was read to its end. */
        double t = cw_time(rd->h);
        cp->n = 0;
        cp->from = cp->earliest;
        cw_ev_begin(rd->h, "invoke", "final-read", t, cp->topic, cp->partition);
        cw_ev_end(rd->h);
        cw_ev_begin(rd->h, "ok", "final-read", cw_time(rd->h), cp->topic, cp->partition);
        cw_check(rd->h, kl_buf_appendf(&rd->h->line, ",\"from\":%" PRId64 ",\"to\":%" PRId64 ",\"records\":[]",
                                       cp->earliest, cp->earliest));
        cp->complete = cw_ev_end(rd->h) == 0 && cw_hist_flush(rd->h) == 0;
        return;
    }
    kc_consumer_t *k = cw_consumer(rd, i, i + 1, cp->earliest);
    if (!k) return;
    int64_t pos = cp->earliest;
    while (pos < cp->latest && !cw_stop && rd->h->err == 0 && rd->err == 0 && net_now_ms() < deadline) {
        int rc = cw_read_once(rd, k, i, i + 1, "final-read", cw_min_ms(CW_CONSUME_POLL_MS, deadline - net_now_ms()));
        if (rc != 0 && rd->err == 0)
            cw_warn_limited(&rd->warn, "final read of %s/%" PRId32 " at %" PRId64 ": %s", cp->topic, cp->partition,
                            kc_consumer_position(k, cp->topic, cp->partition), kc_last_error(rd->c));
        pos = kc_consumer_position(k, cp->topic, cp->partition);
    }
    kc_consumer_free(k);
    cp->complete = pos >= cp->latest && rd->h->err == 0 && rd->err == 0;
}

/* Reads every partition to its end; exit 1 if any is not read whole by --timeout-ms. */
static int cw_final_read(const cw_args_t *a, cw_hist_t *h, kc_client_t *c)
{
    int64_t deadline = net_now_ms() + a->timeout_ms;
    cw_reader_t rd;
    if (cw_reader_init(&rd, a, h, c, deadline) != 0) {
        cw_reader_free(&rd);
        return CW_EXIT_FAIL;
    }
    for (int i = 0; i < rd.n_parts && !cw_stop && h->err == 0 && rd.err == 0; i++) cw_final_part(&rd, i, deadline);
    int incomplete = 0;
    for (int i = 0; i < rd.n_parts; i++) {
        const cw_rpart_t *cp = &rd.parts[i];
        incomplete += !cp->complete;
        cw_log("final read of %s/%" PRId32 ": offsets %" PRId64 "..%" PRId64 ", %" PRId64 " records%s", cp->topic,
               cp->partition, cp->earliest, cp->latest, cp->total, cp->complete ? "" : " INCOMPLETE");
    }
    if (h->err) cw_log("writing the history: %s", kl_strerror(h->err));
    if (rd.err) cw_log("reading records: %s", kl_strerror(rd.err));
    if (incomplete)
        cw_log("%d of %d partitions not read to their end%s", incomplete, rd.n_parts,
               cw_stop ? " (stopped)" : net_now_ms() >= deadline ? " within --timeout-ms" : "");
    else cw_log("done: %d partitions, %" PRId64 " records", rd.n_parts, rd.records);
    cw_reader_free(&rd);
    return incomplete == 0 ? CW_EXIT_OK : CW_EXIT_FAIL;
}

/* ---- main ------------------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    cw_args_t a;
    int rc = cw_parse_args(argc, argv, &a);
    if (rc != 0 || a.mode == 0) {
        free(a.topic_buf);
        return rc;
    }
    cw_name = a.process;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cw_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    cw_hist_t h = {.t0_ms = a.t0_ms};
    snprintf(h.process, sizeof h.process, "%s", a.process);
    kl_buf_init(&h.line, 0);
    if (!(h.f = fopen(a.history, "a"))) {
        rc = cw_usage_error("--history: cannot open '%s' for appending: %s", a.history, strerror(errno));
        goto out;
    }
    kc_config_t cfg;
    kc_config_defaults(&cfg);
    cfg.bootstrap = a.bootstrap;
    cfg.request_timeout_ms = (int)a.request_timeout_ms;
    char err[256] = "";
    kc_client_t *c = kc_client_new(&cfg, err, sizeof err);
    if (!c) {
        rc = cw_usage_error("--bootstrap %s: %s", a.bootstrap, err[0] ? err : "unusable");
        goto out;
    }
    rc = a.mode == CW_PRODUCE ? cw_produce(&a, &h, c) : a.mode == CW_CONSUME ? cw_consume(&a, &h, c)
                                                                            : cw_final_read(&a, &h, c);
    kc_client_free(c);
out:
    if (h.f && fclose(h.f) != 0 && rc == CW_EXIT_OK) {
        cw_log("closing the history: %s", strerror(errno));
        rc = CW_EXIT_FAIL;
    }
    kl_buf_free(&h.line);
    free(a.topic_buf);
    return rc;
}
