/* cmd_bench.c — `keelctl bench produce|consume`: throughput and latency in the
 * manner of kafka-producer-perf-test (DESIGN.md §8: performance is measured,
 * never asserted in a test). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"

#include "cli.h"

#define BENCH_DEFAULT_TOPIC "keel-bench"
#define BENCH_DEFAULT_RECORDS 100000
#define BENCH_DEFAULT_RECORD_SIZE 100
#define BENCH_DEFAULT_PARTITIONS 3
#define BENCH_DEFAULT_IDLE_MS 10000
#define BENCH_MAX_RF 3                   /* replication factor of a topic bench creates */
#define BENCH_MAX_RECORDS (1LL << 40)
#define BENCH_MAX_RECORD_SIZE (KC_MAX_BATCH_BYTES - 1024) /* room for batch and record headers */
#define BENCH_MAX_THROUGHPUT 100000000
#define BENCH_MAX_LINGER_MS 60000
/* batch.size of the bench producer (--batch-size): 64 KiB, as perf-test runs
 * usually set it, rather than the client's 16 KiB default: with 1 KiB records
 * a 16 KiB batch makes every produce and replica fetch carry 15 records, and
 * the brokers spend their CPU on requests instead of bytes. */
#define BENCH_DEFAULT_BATCH_BYTES 65536
#define BENCH_MAX_SAMPLES 1000000        /* latencies kept for percentiles: every k-th record beyond */
#define BENCH_WINDOW 65536               /* records in flight at once (send-time slots) */
#define BENCH_POLL_EVERY 64              /* records between non-blocking passes of the client loop */
#define BENCH_REPORT_MS 5000             /* interim report period (text output) */
#define BENCH_FLUSH_GRACE_MS 1000
#define BENCH_MB (1024.0 * 1024.0)

/* Latency statistics: exact count, sum and max; percentiles from samples. */
typedef struct bench_stats {
    int64_t count, bytes, lat_sum_us, lat_max_us;
    int64_t *samples; /* sample_every-th records, by record index */
    int64_t n_samples, cap, sample_every;
    /* the current interim window */
    int64_t win_start_us, win_count, win_bytes, win_lat_sum_us, win_lat_max_us;
} bench_stats_t;

static int stats_init(bench_stats_t *s, int64_t records)
{
    memset(s, 0, sizeof *s);
    s->sample_every = records > BENCH_MAX_SAMPLES ? (records + BENCH_MAX_SAMPLES - 1) / BENCH_MAX_SAMPLES : 1;
    s->cap = (records + s->sample_every - 1) / s->sample_every;
    s->samples = malloc((size_t)(s->cap > 0 ? s->cap : 1) * sizeof *s->samples);
    s->win_start_us = cli_now_us();
    return s->samples ? 0 : KL_ENOMEM;
}

static void stats_add(bench_stats_t *s, int64_t index, int64_t lat_us, int64_t bytes)
{
    if (lat_us < 0) lat_us = 0;
    s->count++;
    s->bytes += bytes;
    s->lat_sum_us += lat_us;
    if (lat_us > s->lat_max_us) s->lat_max_us = lat_us;
    if (index % s->sample_every == 0 && s->n_samples < s->cap) s->samples[s->n_samples++] = lat_us;
    s->win_count++;
    s->win_bytes += bytes;
    s->win_lat_sum_us += lat_us;
    if (lat_us > s->win_lat_max_us) s->win_lat_max_us = lat_us;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least permille/1000 of the
 * samples at or below it (v sorted). */
static int64_t percentile(const int64_t *v, int64_t n, int64_t permille)
{
    if (n == 0) return 0;
    int64_t rank = (permille * n + 999) / 1000;
    return v[(rank < 1 ? 1 : rank > n ? n : rank) - 1];
}

static double per_sec(double v, int64_t us) { return us > 0 ? v * 1e6 / (double)us : 0.0; }
static double ms(int64_t us) { return (double)us / 1000.0; }

/* Kafka's interim line, every BENCH_REPORT_MS (now: cli_now_us()). */
static void stats_window(bench_stats_t *s, const char *verb, int64_t now)
{
    int64_t us = now - s->win_start_us;
    if (us < BENCH_REPORT_MS * 1000LL) return;
    printf("%" PRId64 " records %s, %.1f records/sec (%.2f MB/sec), %.1f ms avg latency, %.1f ms max latency.\n",
           s->win_count, verb, per_sec((double)s->win_count, us), per_sec((double)s->win_bytes / BENCH_MB, us),
           s->win_count ? ms(s->win_lat_sum_us / s->win_count) : 0.0, ms(s->win_lat_max_us));
    fflush(stdout);
    s->win_start_us = now;
    s->win_count = s->win_bytes = s->win_lat_sum_us = s->win_lat_max_us = 0;
}

/* The final summary, text or JSON; `extra` (may be NULL) adds command-specific JSON fields. */
static void stats_report(bench_stats_t *s, const char *verb, int64_t elapsed_us, bool json, const char *topic,
                         void (*extra)(cli_json_t *j, const void *arg), const void *arg)
{
    qsort(s->samples, (size_t)s->n_samples, sizeof *s->samples, cmp_i64);
    double avg = s->count ? ms(s->lat_sum_us / s->count) : 0.0;
    double p50 = ms(percentile(s->samples, s->n_samples, 500)), p99 = ms(percentile(s->samples, s->n_samples, 990)),
           p999 = ms(percentile(s->samples, s->n_samples, 999)), max = ms(s->lat_max_us);
    double rps = per_sec((double)s->count, elapsed_us), mbps = per_sec((double)s->bytes / BENCH_MB, elapsed_us);
    if (!json) {
        printf("%" PRId64 " records %s, %.1f records/sec (%.2f MB/sec), %.2f ms avg latency, %.2f ms max latency, "
               "%.2f ms 50th, %.2f ms 99th, %.2f ms 99.9th.\n",
               s->count, verb, rps, mbps, avg, max, p50, p99, p999);
        return;
    }
    cli_json_t j;
    cli_json_init(&j, stdout);
    cli_json_begin_object(&j, NULL);
    cli_json_string(&j, "topic", topic);
    cli_json_int(&j, "records", s->count);
    cli_json_int(&j, "bytes", s->bytes);
    cli_json_int(&j, "elapsed_ms", elapsed_us / 1000);
    cli_json_double(&j, "records_per_sec", rps);
    cli_json_double(&j, "mb_per_sec", mbps);
    cli_json_begin_object(&j, "latency_ms");
    cli_json_double(&j, "avg", avg);
    cli_json_double(&j, "p50", p50);
    cli_json_double(&j, "p99", p99);
    cli_json_double(&j, "p999", p999);
    cli_json_double(&j, "max", max);
    cli_json_end_object(&j);
    if (extra) extra(&j, arg);
    cli_json_end_object(&j);
    cli_json_finish(&j);
}

/* ---- bench produce ---------------------------------------------------------------- */

typedef struct bench_produce bench_produce_t;

/* A record in flight: its send time, so the delivery report can tell its latency. */
typedef struct slot {
    bench_produce_t *b;
    int64_t index, sent_us;
    bool busy;
} slot_t;

struct bench_produce {
    const char *topic;
    int64_t records, record_size, throughput, batch_size;
    int acks, partitions, rf;
    bool created;
    bench_stats_t st;
    int64_t errors;
    int first_error;
    slot_t *slots; /* BENCH_WINDOW */
};

static void on_delivery(void *opaque, int err, int32_t partition, int64_t offset)
{
    (void)partition;
    (void)offset;
    slot_t *s = opaque;
    bench_produce_t *b = s->b;
    if (err) {
        if (b->errors++ == 0) b->first_error = err;
    } else {
        stats_add(&b->st, s->index, cli_now_us() - s->sent_us, b->record_size);
    }
    s->busy = false;
}

static int live_brokers(const wire_metadata_resp_t *m)
{
    int n = 0;
    for (int i = 0; i < m->n_brokers; i++) n += m->brokers[i].state == META_BROKER_ACTIVE;
    return n;
}

/* Whether every partition of the topic in m has a leader. */
static const wire_topic_info_t *find_topic(const wire_metadata_resp_t *m, const char *topic, bool *ready)
{
    for (int i = 0; i < m->n_topics; i++) {
        const wire_topic_info_t *t = &m->topics[i];
        if (t->error != 0 || strcmp(t->name, topic) != 0) continue;
        *ready = t->n_partitions > 0;
        for (int p = 0; p < t->n_partitions; p++) *ready &= t->partitions[p].leader != META_NO_LEADER;
        return t;
    }
    return NULL;
}

/* Uses the topic, or creates it (--partitions, rf min(3, live brokers)); then
 * waits, within the timeout, until every partition has a leader. Says which on stderr. */
static int ensure_topic(cli_client_t *c, bench_produce_t *b, bool partitions_given)
{
    const char *names[1] = {b->topic};
    int64_t deadline = net_now_ms() + c->timeout_ms;
    bool tried_create = false;
    for (;;) {
        wire_msg_t *md = NULL;
        int rc = kc_metadata(c->kc, names, 1, c->timeout_ms, &md);
        if (rc != 0) {
            cli_client_fail(c, "fetching metadata", rc, md);
            wire_msg_free(md);
            return CLI_EXIT_FAIL;
        }
        bool ready = false, late = net_now_ms() >= deadline;
        const wire_topic_info_t *t = find_topic(&md->body.metadata_resp, b->topic, &ready);
        if (t && (ready || late)) {
            bool other = !b->created && partitions_given && t->n_partitions != b->partitions;
            b->partitions = t->n_partitions;
            b->rf = t->n_partitions ? t->partitions[0].n_replicas : 0;
            fprintf(stderr, "bench: %s topic %s (%d partitions%s, replication factor %d)\n",
                    b->created ? "created" : "using existing", b->topic, b->partitions,
                    other ? ", not the --partitions asked for" : "", b->rf);
            if (!ready) fprintf(stderr, "bench: not every partition of %s has a leader yet\n", b->topic);
            wire_msg_free(md);
            return CLI_EXIT_OK;
        }
        if (!t && !tried_create) {
            int live = live_brokers(&md->body.metadata_resp);
            wire_create_topic_req_t req;
            memset(&req, 0, sizeof req);
            snprintf(req.name, sizeof req.name, "%s", b->topic);
            req.partitions = b->partitions;
            req.replication_factor = live >= BENCH_MAX_RF ? BENCH_MAX_RF : live > 0 ? live : 1;
            wire_msg_t *resp = NULL;
            rc = kc_create_topic(c->kc, &req, c->timeout_ms, &resp);
            if (rc != 0 && rc != KL_EEXIST) cli_client_fail(c, "creating the bench topic", rc, resp);
            wire_msg_free(resp);
            if (rc != 0 && rc != KL_EEXIST) {
                wire_msg_free(md);
                return CLI_EXIT_FAIL;
            }
            b->created = rc == 0; /* KL_EEXIST: someone else just made it */
            tried_create = true;
        } else if (late) {
            cli_errorf("bench produce: topic %s was created but no broker knows it after %d ms", b->topic,
                       c->timeout_ms);
            wire_msg_free(md);
            return CLI_EXIT_FAIL;
        }
        wire_msg_free(md);
        kc_poll(c->kc, CLI_POLL_MS); /* metadata reaches the brokers shortly after the commit */
    }
}

/* Waits for the slot's previous record, then stamps it for the next with
 * the time (now, unless it had to wait). The clock is read once per record
 * where it can be: in a VM a read costs as much as a good part of a send. */
static slot_t *take_slot(cli_client_t *c, bench_produce_t *b, int64_t i, int64_t now)
{
    slot_t *s = &b->slots[i % BENCH_WINDOW];
    if (s->busy) {
        while (s->busy) kc_poll(c->kc, CLI_POLL_MS);
        now = cli_now_us();
    }
    s->busy = true;
    s->index = i;
    s->sent_us = now;
    return s;
}

/* Kafka's throughput throttle: stay on the schedule of `throughput` records/s.
 * Returns the time it is (now, unless it waited). */
static int64_t throttle(cli_client_t *c, const bench_produce_t *b, int64_t start_us, int64_t i, int64_t now)
{
    if (b->throughput <= 0) return now;
    int64_t due = start_us + (int64_t)((double)i * 1e6 / (double)b->throughput);
    for (int64_t ahead; !cli_stop && (ahead = due - now) >= 1000; now = cli_now_us())
        kc_poll(c->kc, (int)(ahead / 1000));
    return now;
}

static void produce_extra(cli_json_t *j, const void *arg)
{
    const bench_produce_t *b = arg;
    cli_json_int(j, "errors", b->errors);
    cli_json_int(j, "record_size", b->record_size);
    cli_json_int(j, "batch_size", b->batch_size);
    cli_json_string(j, "acks", b->acks < 0 ? "all" : b->acks ? "1" : "0");
    cli_json_int(j, "partitions", b->partitions);
    cli_json_int(j, "replication_factor", b->rf);
    cli_json_bool(j, "topic_created", b->created);
}

/* Sends, drains and reports; frees p. */
static int run_produce(cli_client_t *c, kc_producer_t *p, bench_produce_t *b, const uint8_t *payload, bool json,
                       int64_t delivery_timeout_ms)
{
    const int64_t start = cli_now_us(), start_wall_ms = net_wall_ms();
    for (int64_t i = 0; i < b->records && !cli_stop; i++) {
        slot_t *s = take_slot(c, b, i, throttle(c, b, start, i, cli_now_us()));
        /* the record's timestamp (wall clock) from the same reading */
        const int64_t ts = start_wall_ms + (s->sent_us - start) / 1000;
        int rc;
        while ((rc = kc_produce(p, b->topic, KC_PARTITION_ANY, NULL, -1, payload, (int32_t)b->record_size, ts,
                                on_delivery, s)) == KL_EFULL &&
               !cli_stop)
            kc_poll(c->kc, CLI_POLL_MS);
        if (rc != 0) on_delivery(s, rc, -1, -1);
        if (i % BENCH_POLL_EVERY == 0) kc_poll(c->kc, 0); /* let full batches leave */
        if (!json) stats_window(&b->st, "sent", s->sent_us);
    }
    int64_t deadline = net_now_ms() + delivery_timeout_ms + BENCH_FLUSH_GRACE_MS;
    while (kc_producer_outstanding(p) > 0 && net_now_ms() < deadline) {
        kc_poll(c->kc, CLI_POLL_MS);
        if (!json) stats_window(&b->st, "sent", cli_now_us());
    }
    int64_t elapsed = cli_now_us() - start;
    kc_producer_free(p); /* fails what is still outstanding, through on_delivery */
    stats_report(&b->st, "sent", elapsed, json, b->topic, produce_extra, b);
    if (b->errors)
        cli_errorf("bench produce: %" PRId64 " records failed (first: %s)", b->errors, kl_strerror(b->first_error));
    return b->errors == 0 && cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

int cli_bench_produce(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = BENCH_DEFAULT_TOPIC, *acks_s = "all";
    int64_t records = BENCH_DEFAULT_RECORDS, size = BENCH_DEFAULT_RECORD_SIZE, partitions = BENCH_DEFAULT_PARTITIONS,
            throughput = -1, batch_size = BENCH_DEFAULT_BATCH_BYTES, linger_ms = -1;
    bool json = false, partitions_given = false;
    const cli_opt_t opts[] = {
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--records", CLI_OPT_INT, &records, 1, BENCH_MAX_RECORDS, NULL},
        {"--record-size", CLI_OPT_INT, &size, 1, BENCH_MAX_RECORD_SIZE, NULL},
        {"--acks", CLI_OPT_STR, &acks_s, 0, 0, NULL},
        {"--partitions", CLI_OPT_INT, &partitions, 1, META_MAX_TOPIC_PARTITIONS, &partitions_given},
        {"--throughput", CLI_OPT_INT, &throughput, -1, BENCH_MAX_THROUGHPUT, NULL},
        {"--batch-size", CLI_OPT_INT, &batch_size, 1, KC_MAX_BATCH_BYTES, NULL},
        {"--linger-ms", CLI_OPT_INT, &linger_ms, 0, BENCH_MAX_LINGER_MS, NULL},
        {"--json", CLI_OPT_BOOL, &json, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "bench", "produce", opts);
    if (rc >= 0) return rc;
    bench_produce_t b = {.topic = topic, .records = records, .record_size = size, .throughput = throughput,
                         .batch_size = batch_size, .partitions = (int)partitions};
    if (!meta_topic_name_valid(topic)) return cli_usage_error("bench", "produce", "'%s' is not a topic name", topic);
    if (cli_parse_acks("bench produce", acks_s, &b.acks) != 0) return CLI_EXIT_USAGE;
    if (throughput == 0) return cli_usage_error("bench", "produce", "--throughput must be -1 (unthrottled) or > 0");

    cli_client_t c;
    if ((rc = cli_client_open(ctx, "bench produce", &c)) != CLI_EXIT_OK) return rc;
    uint8_t *payload = malloc((size_t)size);
    b.slots = calloc(BENCH_WINDOW, sizeof *b.slots);
    kc_producer_t *p = NULL;
    rc = CLI_EXIT_FAIL;
    if (!payload || !b.slots || stats_init(&b.st, records) != 0) {
        cli_errorf("bench produce: %s", kl_strerror(KL_ENOMEM));
        goto out;
    }
    for (int64_t i = 0; i < size; i++) payload[i] = (uint8_t)('A' + i % 26); /* Kafka's perf test sends letters */
    for (int i = 0; i < BENCH_WINDOW; i++) b.slots[i].b = &b;
    if ((rc = ensure_topic(&c, &b, partitions_given)) != CLI_EXIT_OK) goto out;
    kc_producer_config_t pc;
    kc_producer_config_defaults(&pc);
    pc.acks = b.acks;
    pc.batch_bytes = (int)batch_size;
    if (linger_ms >= 0) pc.linger_ms = (int)linger_ms;
    char err[CLI_ERR_LEN] = "";
    if (!(p = kc_producer_new(c.kc, &pc, err, sizeof err))) {
        cli_errorf("bench produce: %s", err[0] ? err : "cannot make a producer");
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    cli_catch_stop_signals();
    rc = run_produce(&c, p, &b, payload, json, pc.delivery_timeout_ms);
out:
    free(b.st.samples);
    free(b.slots);
    free(payload);
    cli_client_close(&c);
    return rc;
}

/* ---- bench consume ---------------------------------------------------------------- */

typedef struct bench_consume {
    int64_t records;
    bench_stats_t st;
} bench_consume_t;

/* End-to-end latency: now minus the record's (producer) timestamp. */
static void on_record(void *arg, const kc_record_t *r)
{
    bench_consume_t *b = arg;
    if (b->st.count >= b->records) return;
    int64_t bytes = (r->key_len > 0 ? r->key_len : 0) + (r->value_len > 0 ? r->value_len : 0);
    stats_add(&b->st, b->st.count, (net_wall_ms() - r->timestamp) * 1000, bytes);
}

int cli_bench_consume(cli_ctx_t *ctx, int argc, char **argv)
{
    const char *topic = BENCH_DEFAULT_TOPIC;
    int64_t records = BENCH_DEFAULT_RECORDS, idle_ms = BENCH_DEFAULT_IDLE_MS;
    bool json = false;
    const cli_opt_t opts[] = {
        {"--topic", CLI_OPT_STR, &topic, 0, 0, NULL},
        {"--records", CLI_OPT_INT, &records, 1, BENCH_MAX_RECORDS, NULL},
        {"--timeout-ms", CLI_OPT_INT, &idle_ms, 1, CLI_MAX_TIMEOUT_MS, NULL},
        {"--json", CLI_OPT_BOOL, &json, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse(ctx, argc, argv, "bench", "consume", opts);
    if (rc >= 0) return rc;
    if (!meta_topic_name_valid(topic)) return cli_usage_error("bench", "consume", "'%s' is not a topic name", topic);
    cli_client_t c;
    if ((rc = cli_client_open(ctx, "bench consume", &c)) != CLI_EXIT_OK) return rc;
    bench_consume_t b = {.records = records};
    wire_msg_t *md = NULL;
    kc_consumer_t *k = NULL;
    const wire_topic_info_t *t;
    if (stats_init(&b.st, records) != 0) {
        cli_errorf("bench consume: %s", kl_strerror(KL_ENOMEM));
        rc = CLI_EXIT_FAIL;
        goto out;
    }
    if ((rc = cli_topic_metadata(&c, topic, &md, &t)) != CLI_EXIT_OK) goto out;
    kc_consumer_config_t kcfg;
    kc_consumer_config_defaults(&kcfg);
    if (kcfg.fetch_max_wait_ms > ctx->timeout_ms / 2) kcfg.fetch_max_wait_ms = ctx->timeout_ms / 2;
    char err[CLI_ERR_LEN] = "";
    rc = CLI_EXIT_FAIL;
    if (!(k = kc_consumer_new(c.kc, &kcfg, err, sizeof err))) {
        cli_errorf("bench consume: %s", err[0] ? err : "cannot make a consumer");
        goto out;
    }
    for (int32_t p = 0; p < t->n_partitions; p++) {
        int arc = kc_consumer_assign(k, topic, p, KC_OFFSET_BEGINNING);
        if (arc != 0) {
            cli_client_fail(&c, "assigning partitions", arc, NULL);
            goto out;
        }
    }
    cli_catch_stop_signals();
    int64_t start = cli_now_us(), last = start;
    while (!cli_stop && b.st.count < records && cli_now_us() - last < idle_ms * 1000) {
        int got = kc_consume(k, CLI_POLL_MS, on_record, &b);
        if (got < 0) {
            cli_client_fail(&c, "fetching records", got, NULL);
            goto out;
        }
        if (got > 0) last = cli_now_us();
        if (!json) stats_window(&b.st, "received", cli_now_us());
    }
    if (b.st.count < records)
        fprintf(stderr, "bench consume: stopped after %" PRId64 " of %" PRId64 " records: %s\n", b.st.count, records,
                cli_stop ? "interrupted" : "nothing new within --timeout-ms");
    stats_report(&b.st, "received", last - start, json, topic, NULL, NULL);
    rc = cli_stdout_ok() ? CLI_EXIT_OK : CLI_EXIT_FAIL;
out:
    if (k) kc_consumer_free(k);
    wire_msg_free(md);
    free(b.st.samples);
    cli_client_close(&c);
    return rc;
}
