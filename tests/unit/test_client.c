/* test_client.c — the C client against a fake in-process cluster: Kafka's murmur2 partitioner, produce
 * with batching, idempotent retries in order, delivery timeout, stuck leaders, consumers from either end
 * and up to the high watermark, bootstrap fail-over and admin retries. The fake brokers listen on
 * 127.0.0.1 port 0 on the client's own loop, so every step is driven by the client's calls: no threads,
 * no sleeps. */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/kc.h"
#include "keel/log.h"
#include "keel/net.h"
#include "keel/recbatch.h"
#include "keel/wire.h"
#include "unit/kl_check.h"

#include "../../src/client/kc_internal.h" /* KC_STUCK_MS: the stuck-leader tests straddle it */

#define TOPIC "events"
#define F_MAX_BROKERS 3
#define F_MAX_PARTS 4
#define F_MAX_BATCHES 64
#define F_MAX_PIDS 4
#define F_MAX_SENT 64
#define F_MAX_SCRIPT 8
#define F_MAX_PARKED 8
#define F_MAX_HELD 16  /* requests a paused broker holds unanswered */
#define F_UNANSWERED 1 /* fsent_t.result while a paused broker holds the request (codes are <= 0) */
#define F_REMEMBERED 5 /* batches remembered per producer, like the broker's */
#define WAIT_MS 5000   /* bound on any single blocking call; tests finish far sooner */
#define MAX_REPORTS 64
#define LONG_REQUEST_TIMEOUT_MS 20000 /* a stuck leader must be left long before this */

/* ---- the fake cluster ------------------------------------------------------------------ */

typedef struct fbatch {
    uint8_t *data;
    size_t len;
    int64_t base, next;
} fbatch_t;

typedef struct fpid {
    int64_t id;
    int16_t epoch;
    int32_t next_seq;
    struct {
        int32_t first, last;
        int64_t base;
    } last[F_REMEMBERED];
    int n;
} fpid_t;

typedef struct fpart {
    int32_t leader, leader_epoch;
    fbatch_t batches[F_MAX_BATCHES];
    int n_batches;
    int64_t log_start, leo, hw;
    fpid_t pids[F_MAX_PIDS];
    int n_pids;
} fpart_t;

typedef struct fake fake_t;

typedef struct fbroker {
    fake_t *f;
    int32_t id;
    int port;
    bool paused;    /* a stopped process: connections stay open, nothing is answered */
    int n_md_asked; /* metadata requests that reached it, answered or not */
} fbroker_t;

typedef struct fsent { /* one produce request as it arrived */
    int32_t broker, partition, leader_epoch, result;
    uint8_t *data;
    size_t len;
} fsent_t;

typedef struct fscript { /* the next requests of an api fail like this */
    int err;
    int32_t move_leader_to; /* 0: leave the leader alone */
    bool append_anyway;     /* the batch is appended, only the answer says err (a lost answer) */
} fscript_t;

typedef struct fheld { /* a request a paused broker sits on */
    fbroker_t *b;
    net_conn_id_t conn;
    wire_msg_t *req;
    int sent; /* its fk.sent index (produce), else -1 */
} fheld_t;

typedef struct fparked {
    fake_t *f;
    bool used;
    net_conn_id_t conn;
    wire_msg_t *req;
    struct event *ev;
} fparked_t;

struct fake {
    net_loop_t *loop;
    fbroker_t brokers[F_MAX_BROKERS];
    int n_brokers;
    uint8_t topic_id[KL_UUID_LEN];
    fpart_t parts[F_MAX_PARTS];
    int n_parts;
    fsent_t sent[F_MAX_SENT];
    int n_sent;
    fscript_t produce_script[F_MAX_SCRIPT], create_script[F_MAX_SCRIPT];
    int n_produce_script, n_create_script;
    int produce_forever; /* every produce fails with this (0: none) */
    fparked_t parked[F_MAX_PARKED];
    fheld_t held[F_MAX_HELD];
    int n_held;
    int n_metadata, n_init_pid, n_create;
    int64_t next_pid;
};

static fake_t fk;
static kc_client_t *cli;

static fpart_t *fpart(int32_t p) { return p >= 0 && p < fk.n_parts ? &fk.parts[p] : NULL; }

static void reply(net_conn_id_t conn, wire_msg_t *resp) { ck_assert_int_eq(net_reply(fk.loop, conn, resp), 0); }

static void answer_metadata(fbroker_t *b, net_conn_id_t conn, const wire_msg_t *req)
{
    (void)b;
    fk.n_metadata++;
    wire_msg_t resp;
    wire_msg_init(&resp, WIRE_API_METADATA, true, req->correlation_id);
    wire_broker_info_t brokers[F_MAX_BROKERS] = {0};
    for (int i = 0; i < fk.n_brokers; i++) {
        brokers[i].id = fk.brokers[i].id;
        brokers[i].epoch = 10 + i;
        brokers[i].state = META_BROKER_ACTIVE;
        ck_assert_int_eq(meta_listener_set(&brokers[i].listeners[0], "PLAINTEXT", "127.0.0.1", fk.brokers[i].port), 0);
        brokers[i].n_listeners = 1;
    }
    meta_partition_t parts[F_MAX_PARTS] = {0};
    for (int i = 0; i < fk.n_parts; i++) {
        meta_partition_t *p = &parts[i];
        memcpy(p->topic, fk.topic_id, KL_UUID_LEN);
        p->partition = i;
        for (int j = 0; j < fk.n_brokers; j++) p->replicas[j] = p->isr[j] = fk.brokers[j].id;
        p->n_replicas = p->n_isr = fk.n_brokers;
        p->leader = fk.parts[i].leader;
        p->leader_epoch = fk.parts[i].leader_epoch;
    }
    int n = req->body.metadata.n_topics ? req->body.metadata.n_topics : 1;
    wire_topic_info_t *topics = calloc((size_t)n, sizeof *topics);
    ck_assert_ptr_nonnull(topics);
    for (int i = 0; i < n; i++) {
        const char *name = req->body.metadata.n_topics ? req->body.metadata.topics[i] : TOPIC;
        snprintf(topics[i].name, sizeof topics[i].name, "%s", name);
        if (strcmp(name, TOPIC) != 0) {
            topics[i].error = KL_EUNKNOWNPARTITION;
            continue;
        }
        memcpy(topics[i].topic_id, fk.topic_id, KL_UUID_LEN);
        topics[i].partitions = parts;
        topics[i].n_partitions = fk.n_parts;
    }
    resp.body.metadata_resp = (wire_metadata_resp_t){.controller_id = fk.brokers[0].id, .brokers = brokers,
                                                      .n_brokers = fk.n_brokers, .topics = topics, .n_topics = n};
    reply(conn, &resp);
    free(topics);
}

static void fake_append_batch(fpart_t *p, const uint8_t *batch, size_t len)
{
    ck_assert_int_lt(p->n_batches, F_MAX_BATCHES);
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_validate(batch, len, &h), 0);
    fbatch_t *fb = &p->batches[p->n_batches++];
    fb->data = malloc(len);
    ck_assert_ptr_nonnull(fb->data);
    memcpy(fb->data, batch, len);
    fb->len = len;
    fb->base = p->leo;
    fb->next = p->leo + h.last_offset_delta + 1;
    recbatch_set_base_offset(fb->data, fb->base);
    recbatch_set_leader_epoch(fb->data, p->leader_epoch);
    p->leo = fb->next;
}

/* The leader's idempotence check (KIP-98), strict about a producer it does
 * not know: it must start at sequence 0. 0 = append, 1 = duplicate (*dup). */
static int producer_check(fpart_t *p, const recbatch_header_t *h, int64_t *dup)
{
    if (h->producer_id < 0) return 0;
    fpid_t *s = NULL;
    for (int i = 0; i < p->n_pids; i++)
        if (p->pids[i].id == h->producer_id) s = &p->pids[i];
    int32_t last = h->base_sequence + h->last_offset_delta;
    if (!s || h->producer_epoch > s->epoch) return h->base_sequence == 0 ? 0 : KL_ESEQUENCE;
    if (h->producer_epoch < s->epoch) return KL_EFENCED;
    for (int i = 0; i < s->n; i++)
        if (s->last[i].first == h->base_sequence && s->last[i].last == last) {
            *dup = s->last[i].base;
            return 1;
        }
    return h->base_sequence == s->next_seq ? 0 : KL_ESEQUENCE;
}

static void producer_record(fpart_t *p, const recbatch_header_t *h, int64_t base)
{
    if (h->producer_id < 0) return;
    fpid_t *s = NULL;
    for (int i = 0; i < p->n_pids; i++)
        if (p->pids[i].id == h->producer_id) s = &p->pids[i];
    if (!s) {
        ck_assert_int_lt(p->n_pids, F_MAX_PIDS);
        s = &p->pids[p->n_pids++];
        s->id = h->producer_id;
        s->n = 0;
    }
    if (h->producer_epoch != s->epoch) s->n = 0;
    s->epoch = h->producer_epoch;
    if (s->n == F_REMEMBERED) memmove(&s->last[0], &s->last[1], (F_REMEMBERED - 1) * sizeof s->last[0]), s->n--;
    s->last[s->n].first = h->base_sequence;
    s->last[s->n].last = h->base_sequence + h->last_offset_delta;
    s->last[s->n++].base = base;
    s->next_seq = h->base_sequence + h->last_offset_delta + 1;
}

static void answer_parked(fparked_t *pk, bool timed_out);

/* Wakes parked fetches of p once it has something below the high watermark. */
static void wake_parked(void)
{
    for (int i = 0; i < F_MAX_PARKED; i++)
        if (fk.parked[i].used) answer_parked(&fk.parked[i], false);
}

/* Records a produce request as it arrives; returns its fk.sent index. */
static int record_produce(const fbroker_t *b, const wire_msg_t *req)
{
    const wire_produce_req_t *q = &req->body.produce;
    ck_assert_int_lt(fk.n_sent, F_MAX_SENT);
    fsent_t *s = &fk.sent[fk.n_sent];
    *s = (fsent_t){.broker = b->id, .partition = q->partition, .leader_epoch = q->leader_epoch,
                   .result = F_UNANSWERED, .data = malloc(req->payload_len), .len = req->payload_len};
    ck_assert_ptr_nonnull(s->data);
    memcpy(s->data, req->payload, req->payload_len);
    return fk.n_sent++;
}

static void answer_produce(fbroker_t *b, net_conn_id_t conn, const wire_msg_t *req, fsent_t *s)
{
    const wire_produce_req_t *q = &req->body.produce;
    fpart_t *p = fpart(q->partition);
    ck_assert_ptr_nonnull(p);
    wire_msg_t resp;
    wire_msg_init(&resp, WIRE_API_PRODUCE, true, req->correlation_id);
    resp.body.produce_resp.base_offset = -1;
    recbatch_header_t h;
    int64_t dup = -1;
    int verdict = 0;
    fscript_t sc = {0};
    if (fk.n_produce_script > 0) {
        sc = fk.produce_script[0];
        memmove(&fk.produce_script[0], &fk.produce_script[1], (size_t)--fk.n_produce_script * sizeof sc);
        if (sc.move_leader_to) {
            p->leader = sc.move_leader_to;
            p->leader_epoch++;
        }
    }
    if (sc.err && !sc.append_anyway) {
        resp.error = sc.err;
    } else if (fk.produce_forever) {
        resp.error = fk.produce_forever;
    } else if (p->leader != b->id) {
        resp.error = KL_ENOTLEADER;
    } else if (q->leader_epoch != WIRE_NO_EPOCH && q->leader_epoch != p->leader_epoch) {
        resp.error = KL_EFENCED;
    } else if (recbatch_validate(req->payload, req->payload_len, &h) != 0 ||
               recbatch_total_size(&h) != req->payload_len) {
        resp.error = KL_ECORRUPT;
    } else if ((verdict = producer_check(p, &h, &dup)) < 0) {
        resp.error = verdict;
    } else if (verdict == 1) {
        resp.body.produce_resp.base_offset = dup; /* a retry: the original answer */
    } else {
        resp.body.produce_resp.base_offset = p->leo;
        producer_record(p, &h, p->leo);
        fake_append_batch(p, req->payload, req->payload_len);
        p->hw = p->leo;
        wake_parked();
        resp.error = sc.err;
    }
    s->result = resp.error;
    if (resp.error) snprintf(resp.error_message, sizeof resp.error_message, "scripted by the fake broker %d", b->id);
    if (q->acks != 0) reply(conn, &resp);
}

/* Whole batches from the one holding the offset, up to the log end (on
 * purpose past the high watermark: the client must stop there itself). */
static void fetch_payload(const fpart_t *p, int64_t offset, int32_t max_bytes, kl_buf_t *out)
{
    for (int i = 0; i < p->n_batches; i++) {
        const fbatch_t *fb = &p->batches[i];
        if (fb->next <= offset) continue;
        if (out->len > 0 && out->len + fb->len > (size_t)max_bytes) break;
        ck_assert_int_eq(kl_buf_append(out, fb->data, fb->len), 0);
    }
}

static void answer_fetch_now(net_conn_id_t conn, const wire_msg_t *req)
{
    const wire_fetch_req_t *q = &req->body.fetch;
    fpart_t *p = fpart(q->partition);
    wire_msg_t resp;
    wire_msg_init(&resp, WIRE_API_FETCH, true, req->correlation_id);
    kl_buf_t payload;
    kl_buf_init(&payload, 0);
    resp.body.fetch_resp.high_watermark = p->hw;
    resp.body.fetch_resp.log_start_offset = p->log_start;
    resp.body.fetch_resp.log_end_offset = p->leo;
    resp.body.fetch_resp.leader_epoch = p->leader_epoch;
    if (q->fetch_offset < p->hw) fetch_payload(p, q->fetch_offset, q->max_bytes, &payload);
    resp.payload = payload.data;
    resp.payload_len = payload.len;
    reply(conn, &resp);
    kl_buf_free(&payload);
}

static void parked_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    answer_parked(arg, true);
}

static void answer_parked(fparked_t *pk, bool timed_out)
{
    const fpart_t *p = fpart(pk->req->body.fetch.partition);
    if (!timed_out && pk->req->body.fetch.fetch_offset >= p->hw) return; /* still nothing to give */
    answer_fetch_now(pk->conn, pk->req);
    wire_msg_free(pk->req);
    event_free(pk->ev);
    *pk = (fparked_t){0};
}

static void answer_fetch(fbroker_t *b, net_conn_id_t conn, wire_msg_t *req)
{
    const wire_fetch_req_t *q = &req->body.fetch;
    fpart_t *p = fpart(q->partition);
    wire_msg_t resp;
    wire_msg_init(&resp, WIRE_API_FETCH, true, req->correlation_id);
    if (!p || p->leader != b->id) resp.error = KL_ENOTLEADER;
    else if (q->leader_epoch != WIRE_NO_EPOCH && q->leader_epoch != p->leader_epoch) resp.error = KL_EFENCED;
    else if (q->fetch_offset < p->log_start || q->fetch_offset > p->leo) resp.error = KL_ERANGE;
    if (resp.error) {
        reply(conn, &resp);
        wire_msg_free(req);
        return;
    }
    if (q->fetch_offset < p->hw || q->max_wait_ms == 0) {
        answer_fetch_now(conn, req);
        wire_msg_free(req);
        return;
    }
    /* Long poll: answered when data arrives or max_wait_ms passes. */
    for (int i = 0; i < F_MAX_PARKED; i++)
        if (!fk.parked[i].used) {
            fparked_t *pk = &fk.parked[i];
            *pk = (fparked_t){.f = &fk, .used = true, .conn = conn, .req = req};
            pk->ev = evtimer_new(net_loop_base(fk.loop), parked_timeout_cb, pk);
            struct timeval tv = {q->max_wait_ms / 1000, (q->max_wait_ms % 1000) * 1000};
            evtimer_add(pk->ev, &tv);
            return;
        }
    ck_abort_msg("too many parked fetches");
}

/* Answers req (taken over); sent: its fk.sent index for a produce. */
static void serve(fbroker_t *b, net_conn_id_t conn, wire_msg_t *req, int sent)
{
    wire_msg_t resp;
    wire_msg_init(&resp, req->api, true, req->correlation_id);
    switch (req->api) {
    case WIRE_API_METADATA:
        answer_metadata(b, conn, req);
        break;
    case WIRE_API_PRODUCE:
        answer_produce(b, conn, req, &fk.sent[sent]);
        break;
    case WIRE_API_FETCH:
        answer_fetch(b, conn, req);
        return; /* owns req */
    case WIRE_API_INIT_PRODUCER_ID:
        fk.n_init_pid++;
        resp.body.init_producer_id_resp.producer_id = fk.next_pid++;
        reply(conn, &resp);
        break;
    case WIRE_API_LIST_OFFSETS: {
        const fpart_t *p = fpart(req->body.list_offsets.partition);
        if (!p || p->leader != b->id) resp.error = KL_ENOTLEADER;
        else resp.body.list_offsets_resp.offset =
                 req->body.list_offsets.timestamp == WIRE_OFFSET_EARLIEST ? p->log_start : p->hw;
        reply(conn, &resp);
        break;
    }
    case WIRE_API_CREATE_TOPIC:
        fk.n_create++;
        if (fk.n_create_script > 0) {
            resp.error = fk.create_script[0].err;
            fk.n_create_script--;
            memmove(&fk.create_script[0], &fk.create_script[1], (size_t)fk.n_create_script * sizeof(fscript_t));
        } else {
            resp.body.create_topic_resp.partitions = req->body.create_topic.partitions;
            resp.body.create_topic_resp.replication_factor = req->body.create_topic.replication_factor;
            memcpy(resp.body.create_topic_resp.topic_id, fk.topic_id, KL_UUID_LEN);
        }
        reply(conn, &resp);
        break;
    case WIRE_API_API_VERSIONS:
        wire_api_versions_local(&resp.body.api_versions);
        reply(conn, &resp);
        break;
    default:
        resp.error = KL_EUNKNOWNAPI;
        reply(conn, &resp);
    }
    wire_msg_free(req);
}

static void on_request(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg)
{
    (void)l;
    fbroker_t *b = arg;
    if (req->api == WIRE_API_METADATA) b->n_md_asked++;
    int sent = req->api == WIRE_API_PRODUCE ? record_produce(b, req) : -1;
    if (!b->paused) {
        serve(b, conn, req, sent);
        return;
    }
    ck_assert_int_lt(fk.n_held, F_MAX_HELD);
    fk.held[fk.n_held++] = (fheld_t){b, conn, req, sent};
}

/* The paused broker b carries on: what it held is answered now, late, in arrival order. */
static void fake_resume(fbroker_t *b)
{
    fheld_t held[F_MAX_HELD];
    int n = fk.n_held;
    memcpy(held, fk.held, (size_t)n * sizeof held[0]);
    fk.n_held = 0;
    b->paused = false;
    for (int i = 0; i < n; i++) {
        if (held[i].b == b) serve(b, held[i].conn, held[i].req, held[i].sent);
        else fk.held[fk.n_held++] = held[i];
    }
}

/* n brokers (ids 1..n), n_parts partitions led by broker 1; the client
 * bootstraps from `prefix` (may be "") followed by broker 1. */
static void fake_start(int n, int n_parts, const char *prefix, int request_timeout_ms)
{
    memset(&fk, 0, sizeof fk);
    fk.loop = net_loop_new(0);
    ck_assert_ptr_nonnull(fk.loop);
    for (int i = 0; i < 16; i++) fk.topic_id[i] = (uint8_t)(0xA0 + i);
    fk.next_pid = 1000;
    fk.n_brokers = n;
    for (int i = 0; i < n; i++) {
        fbroker_t *b = &fk.brokers[i];
        *b = (fbroker_t){.f = &fk, .id = i + 1};
        ck_assert_int_eq(net_listen(fk.loop, "PLAINTEXT://127.0.0.1:0", NULL, on_request, NULL, b, &b->port), 0);
    }
    fk.n_parts = n_parts;
    for (int i = 0; i < n_parts; i++) fk.parts[i] = (fpart_t){.leader = 1, .leader_epoch = 3};
    char boot[128];
    snprintf(boot, sizeof boot, "%s127.0.0.1:%d", prefix, fk.brokers[0].port);
    kc_config_t cfg;
    kc_config_defaults(&cfg);
    cfg.bootstrap = boot;
    cfg.loop = fk.loop;
    cfg.request_timeout_ms = request_timeout_ms;
    cfg.retry_backoff_ms = 10;
    char err[256];
    cli = kc_client_new(&cfg, err, sizeof err);
    ck_assert_msg(cli != NULL, "kc_client_new: %s", err);
}

static void fake_up(int n, int n_parts, const char *prefix) { fake_start(n, n_parts, prefix, WAIT_MS); }

static void fake_down(void)
{
    kc_client_free(cli);
    cli = NULL;
    for (int i = 0; i < F_MAX_PARKED; i++)
        if (fk.parked[i].used) {
            wire_msg_free(fk.parked[i].req);
            event_free(fk.parked[i].ev);
        }
    for (int i = 0; i < fk.n_held; i++) wire_msg_free(fk.held[i].req);
    for (int i = 0; i < fk.n_parts; i++)
        for (int j = 0; j < fk.parts[i].n_batches; j++) free(fk.parts[i].batches[j].data);
    for (int i = 0; i < fk.n_sent; i++) free(fk.sent[i].data);
    net_loop_free(fk.loop);
}

/* Appends a batch of n records "v<first>".."v<first+n-1>" straight into the fake log. */
static void fake_put(int32_t partition, int first, int n)
{
    kl_buf_t buf;
    kl_buf_init(&buf, 0);
    recbatch_builder_t b;
    recbatch_meta_t m = recbatch_meta(0, 0, 0);
    m.base_timestamp = 1000;
    ck_assert_int_eq(recbatch_begin(&b, &buf, &m), 0);
    for (int i = 0; i < n; i++) {
        char v[16];
        int len = snprintf(v, sizeof v, "v%d", first + i);
        ck_assert_int_eq(recbatch_add(&b, i, NULL, -1, v, len, NULL, 0), 0);
    }
    ck_assert_int_eq(recbatch_finish(&b), 0);
    fake_append_batch(fpart(partition), buf.data, buf.len);
    kl_buf_free(&buf);
}

/* ---- what a test observes ------------------------------------------------------------- */

typedef struct report {
    int err;
    int32_t partition;
    int64_t offset;
    int64_t at_ms;
} report_t;

static report_t reports[MAX_REPORTS];
static int n_reports;

static void on_delivery(void *opaque, int err, int32_t partition, int64_t offset)
{
    (void)opaque;
    ck_assert_int_lt(n_reports, MAX_REPORTS);
    reports[n_reports++] = (report_t){err, partition, offset, net_now_ms()};
}

static kc_producer_t *producer(void (*tweak)(kc_producer_config_t *))
{
    n_reports = 0;
    kc_producer_config_t pc;
    kc_producer_config_defaults(&pc);
    if (tweak) tweak(&pc);
    char err[256];
    kc_producer_t *p = kc_producer_new(cli, &pc, err, sizeof err);
    ck_assert_msg(p != NULL, "kc_producer_new: %s", err);
    return p;
}

static void produce(kc_producer_t *p, int32_t partition, const char *key, const char *value)
{
    int rc = kc_produce(p, TOPIC, partition, key, key ? (int32_t)strlen(key) : -1, value, (int32_t)strlen(value),
                        -1, on_delivery, NULL);
    ck_assert_msg(rc == 0, "kc_produce: %s", kc_last_error(cli));
}

static recbatch_header_t sent_header(int i)
{
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_validate(fk.sent[i].data, fk.sent[i].len, &h), 0);
    return h;
}

/* The value of the record at offset in the fake log of partition. */
static void fake_value_at(int32_t partition, int64_t offset, char *out, size_t len)
{
    const fpart_t *p = fpart(partition);
    for (int i = 0; i < p->n_batches; i++) {
        if (offset < p->batches[i].base || offset >= p->batches[i].next) continue;
        recbatch_iter_t it;
        recbatch_record_t r;
        ck_assert_int_eq(recbatch_iter_init(&it, p->batches[i].data, p->batches[i].len), 0);
        while (recbatch_iter_next(&it, &r) == 0)
            if (r.offset == offset) {
                snprintf(out, len, "%.*s", (int)r.value.len, (const char *)r.value.data);
                return;
            }
    }
    ck_abort_msg("offset %lld not in the fake log", (long long)offset);
}

typedef struct consumed {
    int n;
    int64_t offsets[MAX_REPORTS];
    char values[MAX_REPORTS][16];
} consumed_t;

static void on_record(void *arg, const kc_record_t *r)
{
    consumed_t *c = arg;
    ck_assert_int_lt(c->n, MAX_REPORTS);
    ck_assert_str_eq(r->topic, TOPIC);
    c->offsets[c->n] = r->offset;
    snprintf(c->values[c->n], sizeof c->values[c->n], "%.*s", (int)r->value_len, (const char *)r->value);
    c->n++;
}

static kc_consumer_t *consumer(void)
{
    kc_consumer_config_t cc;
    kc_consumer_config_defaults(&cc);
    cc.fetch_max_wait_ms = 100;
    char err[256];
    kc_consumer_t *k = kc_consumer_new(cli, &cc, err, sizeof err);
    ck_assert_msg(k != NULL, "kc_consumer_new: %s", err);
    return k;
}

/* Polls until `want` records arrived in all (each poll bounded; the whole by WAIT_MS). */
static void consume_until(kc_consumer_t *k, consumed_t *c, int want)
{
    int64_t deadline = net_now_ms() + WAIT_MS;
    while (c->n < want && net_now_ms() < deadline) {
        int rc = kc_consume(k, 500, on_record, c);
        ck_assert_msg(rc >= 0, "kc_consume: %s", kc_last_error(cli));
    }
    ck_assert_int_eq(c->n, want);
}

/* ---- tests ---------------------------------------------------------------------------------- */

START_TEST(murmur2_matches_kafkas_test_vectors)
{
    static const struct {
        const char *key;
        int32_t hash;
    } v[] = {{"21", -973932308},
             {"foobar", -790332482},
             {"a-little-bit-long-string", -985981536},
             {"a-little-bit-longer-string", -1486304829},
             {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
             {"abc", 479470107}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        ck_assert_int_eq(kc_murmur2(v[i].key, strlen(v[i].key)), v[i].hash);
    /* toPositive masks the sign bit: -790332482 & 0x7fffffff = 1357151166. */
    ck_assert_int_eq(kc_key_partition("foobar", 6, 7), 1357151166 % 7);
    ck_assert_int_eq(kc_key_partition("abc", 3, 10), 479470107 % 10);
}
END_TEST

static void acks_all(kc_producer_config_t *pc) { pc->linger_ms = 0; }

START_TEST(produce_reports_each_record_with_its_offset_in_order)
{
    fake_up(1, 2, "");
    kc_producer_t *p = producer(acks_all);
    produce(p, 0, NULL, "a");
    produce(p, 0, NULL, "b");
    produce(p, 1, NULL, "c");
    produce(p, 0, NULL, "d");
    produce(p, KC_PARTITION_ANY, "foobar", "keyed");
    ck_assert_int_eq(kc_producer_outstanding(p), 5);
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(kc_producer_outstanding(p), 0);
    ck_assert_int_eq(n_reports, 5);
    int32_t keyed = kc_key_partition("foobar", 6, 2);
    int64_t next[2] = {0, 0};
    for (int i = 0; i < n_reports; i++) { /* offsets count up per partition, in send order */
        ck_assert_int_eq(reports[i].err, 0);
        ck_assert_int_eq(reports[i].offset, next[reports[i].partition]++);
    }
    ck_assert_int_eq(next[0] + next[1], 5);
    ck_assert_int_eq(next[keyed], keyed == 0 ? 4 : 2);
    char v[16];
    fake_value_at(0, 2, v, sizeof v);
    ck_assert_str_eq(v, "d");
    fake_value_at(1, 0, v, sizeof v);
    ck_assert_str_eq(v, "c");
    /* Idempotent by default: one producer id, sequences from 0 per partition. */
    ck_assert_int_eq(fk.n_init_pid, 1);
    recbatch_header_t h = sent_header(0);
    ck_assert_int_eq(h.producer_id, 1000);
    ck_assert_int_eq(h.base_sequence, 0);
    kc_producer_free(p);
    fake_down();
}
END_TEST

static void small_batches(kc_producer_config_t *pc)
{
    pc->linger_ms = 60000; /* only size or flush closes a batch */
    pc->delivery_timeout_ms = 120000;
    pc->batch_bytes = 200;
}

START_TEST(batches_close_at_batch_size)
{
    fake_up(1, 1, "");
    kc_producer_t *p = producer(small_batches);
    char value[51];
    memset(value, 'x', 50);
    value[50] = '\0';
    for (int i = 0; i < 10; i++) produce(p, 0, NULL, value);
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(n_reports, 10);
    for (int i = 0; i < 10; i++) ck_assert_int_eq(reports[i].offset, i);
    ck_assert_int_gt(fk.n_sent, 2);
    int records = 0;
    for (int i = 0; i < fk.n_sent; i++) {
        ck_assert_uint_le(fk.sent[i].len, 200);
        records += sent_header(i).record_count;
    }
    ck_assert_int_eq(records, 10);
    kc_producer_free(p);
    fake_down();
}
END_TEST

static void lingering(kc_producer_config_t *pc) { pc->linger_ms = 40; }

START_TEST(a_batch_closes_after_linger_without_a_flush)
{
    fake_up(1, 1, "");
    kc_producer_t *p = producer(lingering);
    int64_t start = net_now_ms();
    for (int i = 0; i < 3; i++) produce(p, 0, NULL, "lingering");
    int64_t deadline = start + WAIT_MS;
    while (n_reports < 3 && net_now_ms() < deadline) ck_assert_int_eq(kc_poll(cli, 1000), 0);
    ck_assert_int_eq(n_reports, 3);
    ck_assert_int_ge(reports[0].at_ms - start, 40); /* not before linger.ms */
    ck_assert_int_eq(fk.n_sent, 1);                 /* all three in one batch */
    ck_assert_int_eq(sent_header(0).record_count, 3);
    kc_producer_free(p);
    fake_down();
}
END_TEST

START_TEST(not_leader_retries_on_the_new_leader_with_the_same_bytes)
{
    fake_up(2, 1, "");
    fk.produce_script[fk.n_produce_script++] = (fscript_t){KL_ENOTLEADER, 2}; /* leadership moves to 2 */
    kc_producer_t *p = producer(acks_all);
    produce(p, 0, NULL, "moved");
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(n_reports, 1);
    ck_assert_int_eq(reports[0].err, 0);
    ck_assert_int_eq(reports[0].offset, 0);
    ck_assert_int_eq(fk.n_sent, 2);
    ck_assert_int_eq(fk.sent[0].broker, 1);
    ck_assert_int_eq(fk.sent[0].result, KL_ENOTLEADER);
    ck_assert_int_eq(fk.sent[1].broker, 2);
    ck_assert_int_eq(fk.sent[1].leader_epoch, 4); /* learnt from the refreshed metadata */
    ck_assert_int_eq(fk.sent[1].len, fk.sent[0].len);
    ck_assert_mem_eq(fk.sent[1].data, fk.sent[0].data, fk.sent[0].len);
    ck_assert_int_eq(sent_header(1).base_sequence, 0);
    ck_assert_int_ge(fk.n_metadata, 2);
    kc_producer_free(p);
    fake_down();
}
END_TEST

static void one_record_batches(kc_producer_config_t *pc)
{
    pc->linger_ms = 0;
    pc->batch_bytes = 1; /* every record closes the batch before it */
}

START_TEST(sequence_errors_behind_a_failed_batch_are_retried_in_order)
{
    fake_up(1, 1, "");
    fk.produce_script[fk.n_produce_script++] = (fscript_t){KL_ENOTENOUGHREPLICAS, 0};
    kc_producer_t *p = producer(one_record_batches);
    produce(p, 0, NULL, "s0");
    produce(p, 0, NULL, "s1");
    produce(p, 0, NULL, "s2");
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(n_reports, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(reports[i].err, 0);
        ck_assert_int_eq(reports[i].offset, i);
    }
    /* First round: seq 0 refused, 1 and 2 out of order behind it. */
    ck_assert_int_ge(fk.n_sent, 6);
    ck_assert_int_eq(sent_header(0).base_sequence, 0);
    ck_assert_int_eq(fk.sent[0].result, KL_ENOTENOUGHREPLICAS);
    ck_assert_int_eq(sent_header(1).base_sequence, 1);
    ck_assert_int_eq(fk.sent[1].result, KL_ESEQUENCE);
    ck_assert_int_eq(sent_header(2).base_sequence, 2);
    ck_assert_int_eq(fk.sent[2].result, KL_ESEQUENCE);
    /* Then each is resent byte-identical, in sequence order. */
    int32_t want = 0;
    for (int i = 3; i < fk.n_sent; i++) {
        recbatch_header_t h = sent_header(i);
        if (fk.sent[i].result != 0) continue;
        ck_assert_int_eq(h.base_sequence, want);
        ck_assert_int_eq(fk.sent[i].len, fk.sent[want].len);
        ck_assert_mem_eq(fk.sent[i].data, fk.sent[want].data, fk.sent[want].len);
        want++;
    }
    ck_assert_int_eq(want, 3);
    char v[16];
    for (int i = 0; i < 3; i++) {
        char exp[16];
        snprintf(exp, sizeof exp, "s%d", i);
        fake_value_at(0, i, v, sizeof v);
        ck_assert_str_eq(v, exp);
    }
    kc_producer_free(p);
    fake_down();
}
END_TEST

static void short_delivery(kc_producer_config_t *pc)
{
    pc->linger_ms = 0;
    pc->delivery_timeout_ms = 150;
}

START_TEST(delivery_times_out_with_the_last_error)
{
    fake_up(1, 1, "");
    fk.produce_forever = KL_ENOTENOUGHREPLICAS;
    kc_producer_t *p = producer(short_delivery);
    int64_t start = net_now_ms();
    produce(p, 0, NULL, "doomed");
    ck_assert_int_eq(kc_flush(p, WAIT_MS), 0);
    ck_assert_int_eq(n_reports, 1);
    ck_assert_int_eq(reports[0].err, KL_ENOTENOUGHREPLICAS);
    ck_assert_int_eq(reports[0].offset, -1);
    ck_assert_int_ge(reports[0].at_ms - start, 150);
    ck_assert_int_ge(fk.n_sent, 2); /* retried meanwhile */
    ck_assert_ptr_nonnull(strstr(kc_last_error(cli), "timed out after 150 ms"));
    ck_assert_ptr_nonnull(strstr(kc_last_error(cli), "not enough in-sync replicas"));
    kc_producer_free(p);
    fake_down();
}
END_TEST

START_TEST(a_retry_of_an_appended_batch_gets_the_original_offset)
{
    fake_up(1, 1, "");
    fk.produce_script[fk.n_produce_script++] = (fscript_t){KL_ETIMEOUT, 0, true};
    kc_producer_t *p = producer(acks_all);
    produce(p, 0, NULL, "once");
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(n_reports, 1);
    ck_assert_int_eq(reports[0].err, 0);
    ck_assert_int_eq(reports[0].offset, 0);
    ck_assert_int_eq(fk.n_sent, 2);
    ck_assert_mem_eq(fk.sent[1].data, fk.sent[0].data, fk.sent[0].len);
    ck_assert_int_eq(fk.parts[0].leo, 1); /* appended once */
    kc_producer_free(p);
    fake_down();
}
END_TEST

START_TEST(a_batch_failing_for_good_restarts_the_sequence_in_a_new_epoch)
{
    fake_up(1, 1, "");
    fk.produce_script[fk.n_produce_script++] = (fscript_t){KL_ECORRUPT, 0, false};
    kc_producer_t *p = producer(one_record_batches);
    produce(p, 0, NULL, "bad");
    produce(p, 0, NULL, "behind");
    ck_assert_int_eq(kc_flush(p, WAIT_MS), 0);
    ck_assert_int_eq(n_reports, 2);
    ck_assert_int_eq(reports[0].err, KL_ECORRUPT);
    ck_assert_int_eq(reports[1].err, KL_ESEQUENCE); /* it can never follow the gap */
    produce(p, 0, NULL, "after");
    ck_assert_int_eq(kc_flush(p, WAIT_MS), 0);
    ck_assert_int_eq(n_reports, 3);
    ck_assert_int_eq(reports[2].err, 0);
    ck_assert_int_eq(reports[2].offset, 0);
    recbatch_header_t h = sent_header(fk.n_sent - 1);
    ck_assert_int_eq(h.producer_epoch, 1);
    ck_assert_int_eq(h.base_sequence, 0);
    ck_assert_int_eq(fk.n_init_pid, 1);
    kc_producer_free(p);
    fake_down();
}
END_TEST

static void fire_and_forget(kc_producer_config_t *pc)
{
    pc->acks = 0;
    pc->linger_ms = 0;
}

START_TEST(acks_zero_reports_once_written_without_an_offset)
{
    fake_up(1, 1, "");
    kc_producer_t *p = producer(fire_and_forget);
    produce(p, 0, NULL, "x");
    produce(p, 0, NULL, "y");
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(n_reports, 2);
    ck_assert_int_eq(reports[0].err, 0);
    ck_assert_int_eq(reports[0].offset, -1);
    ck_assert_int_eq(fk.n_init_pid, 0); /* idempotence needs acks=all */
    /* Written means on the connection: the broker has it by the next round
     * trip (not yet when flush returns: it may still be in the socket). */
    int64_t off = -1;
    ck_assert_int_eq(kc_list_offset(cli, TOPIC, 0, WIRE_OFFSET_LATEST, WAIT_MS, &off), 0);
    ck_assert_int_eq(off, 2);
    ck_assert_int_eq(sent_header(0).producer_id, -1);
    kc_producer_free(p);
    fake_down();
}
END_TEST

static void tiny_buffer(kc_producer_config_t *pc)
{
    pc->linger_ms = 60000;
    pc->buffer_bytes = 200;
}

START_TEST(a_full_buffer_refuses_and_closing_fails_what_is_pending)
{
    fake_up(1, 1, "");
    kc_producer_t *p = producer(tiny_buffer);
    char value[60];
    memset(value, 'x', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    produce(p, 0, NULL, value);
    ck_assert_int_eq(kc_produce(p, TOPIC, 0, NULL, -1, value, 59, -1, on_delivery, NULL), KL_EFULL);
    ck_assert_ptr_nonnull(strstr(kc_last_error(cli), "buffer.memory"));
    char *huge = calloc(1, KC_MAX_BATCH_BYTES);
    ck_assert_ptr_nonnull(huge);
    ck_assert_int_eq(kc_produce(p, TOPIC, 0, NULL, -1, huge, (int32_t)KC_MAX_BATCH_BYTES, -1, on_delivery, NULL),
                     KL_ETOOBIG);
    free(huge);
    ck_assert_int_eq(kc_producer_outstanding(p), 1);
    kc_producer_free(p); /* no flush: the record is failed, not lost silently */
    ck_assert_int_eq(n_reports, 1);
    ck_assert_int_eq(reports[0].err, KL_ESHUTDOWN);
    fake_down();
}
END_TEST

START_TEST(producing_to_a_missing_topic_or_partition_is_refused)
{
    fake_up(1, 2, "");
    kc_producer_t *p = producer(acks_all);
    ck_assert_int_eq(kc_produce(p, "nosuch", 0, NULL, -1, "x", 1, -1, on_delivery, NULL), KL_EUNKNOWNPARTITION);
    ck_assert_ptr_nonnull(strstr(kc_last_error(cli), "does not exist"));
    ck_assert_int_eq(kc_produce(p, TOPIC, 2, NULL, -1, "x", 1, -1, on_delivery, NULL), KL_EUNKNOWNPARTITION);
    ck_assert_int_eq(kc_producer_outstanding(p), 0);
    kc_producer_free(p);
    fake_down();
}
END_TEST

START_TEST(consumer_reads_from_the_beginning_and_from_the_end)
{
    fake_up(1, 1, "");
    fake_put(0, 0, 3);
    fake_put(0, 3, 2);
    fk.parts[0].hw = fk.parts[0].leo;
    kc_consumer_t *from_start = consumer(), *from_end = consumer();
    ck_assert_int_eq(kc_consumer_assign(from_start, TOPIC, 0, KC_OFFSET_BEGINNING), 0);
    ck_assert_int_eq(kc_consumer_assign(from_start, TOPIC, 0, 0), KL_EEXIST);
    ck_assert_int_eq(kc_consumer_assign(from_end, TOPIC, 0, KC_OFFSET_END), 0);
    ck_assert_int_eq(kc_consumer_position(from_end, TOPIC, 0), -1);

    consumed_t a = {0};
    consume_until(from_start, &a, 5);
    for (int i = 0; i < 5; i++) {
        char exp[16];
        snprintf(exp, sizeof exp, "v%d", i);
        ck_assert_int_eq(a.offsets[i], i);
        ck_assert_str_eq(a.values[i], exp);
    }
    ck_assert_int_eq(kc_consumer_position(from_start, TOPIC, 0), 5);

    consumed_t b = {0};
    ck_assert_int_eq(kc_consume(from_end, 50, on_record, &b), 0); /* resolves the end; nothing new */
    ck_assert_int_eq(kc_consumer_position(from_end, TOPIC, 0), 5);
    fake_put(0, 5, 2);
    fk.parts[0].hw = fk.parts[0].leo;
    wake_parked();
    consume_until(from_end, &b, 2);
    ck_assert_int_eq(b.offsets[0], 5);
    ck_assert_str_eq(b.values[1], "v6");
    ck_assert_int_eq(kc_consumer_position(from_end, TOPIC, 0), 7);
    kc_consumer_free(from_start);
    kc_consumer_free(from_end);
    fake_down();
}
END_TEST

START_TEST(consumer_stops_at_the_high_watermark)
{
    fake_up(1, 1, "");
    fake_put(0, 0, 3);
    fake_put(0, 3, 2);
    fk.parts[0].hw = 2; /* inside the first batch; the fake serves whole batches past it */
    kc_consumer_t *k = consumer();
    ck_assert_int_eq(kc_consumer_assign(k, TOPIC, 0, KC_OFFSET_BEGINNING), 0);
    consumed_t c = {0};
    consume_until(k, &c, 2);
    ck_assert_int_eq(c.offsets[1], 1);
    ck_assert_int_eq(kc_consume(k, 100, on_record, &c), 0);
    ck_assert_int_eq(c.n, 2);
    ck_assert_int_eq(kc_consumer_position(k, TOPIC, 0), 2);
    fk.parts[0].hw = 5;
    wake_parked();
    consume_until(k, &c, 5);
    for (int i = 0; i < 5; i++) ck_assert_int_eq(c.offsets[i], i);
    kc_consumer_free(k);
    fake_down();
}
END_TEST

START_TEST(consumer_returns_out_of_range)
{
    fake_up(1, 1, "");
    fake_put(0, 0, 2);
    fk.parts[0].hw = 2;
    kc_consumer_t *k = consumer();
    ck_assert_int_eq(kc_consumer_assign(k, TOPIC, 0, 100), 0);
    consumed_t c = {0};
    ck_assert_int_eq(kc_consume(k, WAIT_MS, on_record, &c), KL_ERANGE);
    ck_assert_ptr_nonnull(strstr(kc_last_error(cli), "position 100"));
    ck_assert_int_eq(kc_consumer_position(k, TOPIC, 0), 100);
    kc_consumer_free(k);
    fake_down();
}
END_TEST

START_TEST(bootstrap_falls_over_from_a_dead_address_to_the_next)
{
    /* A bound socket that does not listen refuses connections: a dead address without a fixed port. */
    int dead = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(dead, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(dead, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(dead, (struct sockaddr *)&sa, &len), 0);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "127.0.0.1:%d, ", ntohs(sa.sin_port));
    fake_up(1, 2, prefix);
    wire_msg_t *md = NULL;
    ck_assert_msg(kc_metadata(cli, NULL, 0, WAIT_MS, &md) == 0, "metadata: %s", kc_last_error(cli));
    ck_assert_int_eq(md->body.metadata_resp.n_brokers, 1);
    ck_assert_int_eq(md->body.metadata_resp.n_topics, 1);
    ck_assert_str_eq(md->body.metadata_resp.topics[0].name, TOPIC);
    wire_msg_free(md);
    int64_t off = -1;
    ck_assert_int_eq(kc_list_offset(cli, TOPIC, 1, WIRE_OFFSET_LATEST, WAIT_MS, &off), 0);
    ck_assert_int_eq(off, 0);
    fake_down();
    close(dead);
}
END_TEST

START_TEST(create_topic_retries_while_there_is_no_controller)
{
    fake_up(1, 1, "");
    fk.create_script[fk.n_create_script++] = (fscript_t){KL_ENOTCONTROLLER, 0};
    wire_create_topic_req_t req = {.partitions = 3, .replication_factor = 1};
    snprintf(req.name, sizeof req.name, "fresh");
    wire_msg_t *out = NULL;
    ck_assert_msg(kc_create_topic(cli, &req, WAIT_MS, &out) == 0, "create: %s", kc_last_error(cli));
    ck_assert_int_eq(out->body.create_topic_resp.partitions, 3);
    ck_assert_int_eq(fk.n_create, 2);
    wire_msg_free(out);
    fk.create_script[fk.n_create_script++] = (fscript_t){KL_EEXIST, 0};
    ck_assert_int_eq(kc_create_topic(cli, &req, WAIT_MS, &out), KL_EEXIST);
    ck_assert_ptr_nonnull(out);
    ck_assert_ptr_nonnull(strstr(kc_last_error(cli), "already exists"));
    wire_msg_free(out);
    fake_down();
}
END_TEST

/* Runs the client's loop in short polls until *counter reaches want (the whole bounded by WAIT_MS). */
static void poll_until(const int *counter, int want, const char *what)
{
    int64_t deadline = net_now_ms() + WAIT_MS;
    while (*counter < want && net_now_ms() < deadline) ck_assert_int_eq(kc_poll(cli, 20), 0);
    ck_assert_msg(*counter >= want, "%s: %d, not %d, within %d ms", what, *counter, want, WAIT_MS);
}

/* Broker 1 leads partition 0 in leader epoch 0 and acknowledges "r0"; then it
 * stops (a paused process) with "r1" and "r2" in flight to it. *sent_from: a
 * time no later than their sending. */
static kc_producer_t *stuck_leader_with_two_batches(int request_timeout_ms, int64_t *sent_from)
{
    fake_start(2, 1, "", request_timeout_ms);
    fk.parts[0].leader_epoch = 0;
    kc_producer_t *p = producer(one_record_batches);
    produce(p, 0, NULL, "r0");
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    fk.brokers[0].paused = true;
    *sent_from = net_now_ms();
    produce(p, 0, NULL, "r1");
    produce(p, 0, NULL, "r2");
    poll_until(&fk.n_held, 2, "requests broker 1 holds");
    ck_assert_int_eq(fk.n_sent, 3);
    return p;
}

START_TEST(a_leader_that_stops_answering_is_abandoned_once_metadata_names_a_newer_leader)
{
    int64_t t0;
    kc_producer_t *p = stuck_leader_with_two_batches(LONG_REQUEST_TIMEOUT_MS, &t0);
    int asked_a = fk.brokers[0].n_md_asked;
    /* Once stuck, metadata comes from broker 2; it still names broker 1 in epoch 0, so nothing moves yet. */
    poll_until(&fk.brokers[1].n_md_asked, 1, "metadata requests to broker 2");
    ck_assert_int_ge(net_now_ms() - t0, KC_STUCK_MS);
    ck_assert_int_eq(fk.n_sent, 3);
    ck_assert_int_eq(n_reports, 1);
    fk.parts[0].leader = 2; /* the controller moves leadership away from the stopped broker */
    fk.parts[0].leader_epoch = 1;
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(n_reports, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(reports[i].err, 0);
        ck_assert_int_eq(reports[i].offset, i);
    }
    ck_assert_int_ge(reports[1].at_ms - t0, KC_STUCK_MS);
    ck_assert_int_lt(reports[2].at_ms - t0, LONG_REQUEST_TIMEOUT_MS);
    /* Resent to broker 2 byte for byte (same producer id, epoch and sequences), in order (KIP-98). */
    ck_assert_int_eq(fk.n_sent, 5);
    recbatch_header_t first = sent_header(0);
    for (int i = 1; i <= 2; i++) {
        const fsent_t *old = &fk.sent[i], *again = &fk.sent[i + 2];
        ck_assert_int_eq(old->broker, 1);
        ck_assert_int_eq(old->leader_epoch, 0);
        ck_assert_int_eq(old->result, F_UNANSWERED);
        ck_assert_int_eq(again->broker, 2);
        ck_assert_int_eq(again->leader_epoch, 1);
        ck_assert_int_eq(again->result, 0);
        ck_assert_int_eq(again->len, old->len);
        ck_assert_mem_eq(again->data, old->data, old->len);
        recbatch_header_t h = sent_header(i + 2);
        ck_assert_int_eq(h.producer_id, first.producer_id);
        ck_assert_int_eq(h.producer_epoch, first.producer_epoch);
        ck_assert_int_eq(h.base_sequence, i);
    }
    ck_assert_int_eq(fk.brokers[0].n_md_asked, asked_a); /* the stopped broker was never asked */
    char v[16];
    fake_value_at(0, 2, v, sizeof v);
    ck_assert_str_eq(v, "r2");
    kc_producer_free(p);
    fake_down();
}
END_TEST

START_TEST(metadata_is_not_asked_from_a_stuck_broker)
{
    fake_up(2, 1, "");
    kc_consumer_t *k = consumer();
    ck_assert_int_eq(kc_consumer_assign(k, TOPIC, 0, 0), 0);
    wire_msg_t *md = NULL;
    ck_assert_msg(kc_metadata(cli, NULL, 0, WAIT_MS, &md) == 0, "metadata: %s", kc_last_error(cli));
    wire_msg_free(md);
    ck_assert_int_eq(fk.brokers[0].n_md_asked, 1); /* broker 1 comes first in the rotation */
    /* Broker 1 stops with the consumer's fetch in flight, which then outlives KC_STUCK_MS. */
    fk.brokers[0].paused = true;
    consumed_t got = {0};
    int64_t deadline = net_now_ms() + WAIT_MS;
    while (fk.n_held < 1 && net_now_ms() < deadline) ck_assert_int_eq(kc_consume(k, 20, on_record, &got), 0);
    ck_assert_int_eq(fk.n_held, 1);
    ck_assert_int_eq(kc_consume(k, KC_STUCK_MS, on_record, &got), 0);
    ck_assert_int_eq(got.n, 0);
    /* Both the background refresh and a metadata call go to broker 2, answered at once. */
    int64_t start = net_now_ms();
    ck_assert_msg(kc_md_wait(cli, start + WAIT_MS) == 0, "refresh: %s", kc_last_error(cli));
    ck_assert_msg(kc_metadata(cli, NULL, 0, WAIT_MS, &md) == 0, "metadata: %s", kc_last_error(cli));
    wire_msg_free(md);
    ck_assert_int_lt(net_now_ms() - start, KC_STUCK_MS);
    ck_assert_int_eq(fk.brokers[0].n_md_asked, 1);
    ck_assert_int_eq(fk.brokers[1].n_md_asked, 2);
    kc_consumer_free(k);
    fake_down();
}
END_TEST

START_TEST(nothing_is_abandoned_while_metadata_still_names_the_same_leader_epoch)
{
    int64_t t0;
    kc_producer_t *p = stuck_leader_with_two_batches(WAIT_MS, &t0);
    /* Refresh after refresh still names broker 1 in epoch 0: the requests stay where they are. */
    poll_until(&fk.brokers[1].n_md_asked, 3, "metadata requests to broker 2");
    ck_assert_int_ge(net_now_ms() - t0, KC_STUCK_MS);
    ck_assert_int_eq(fk.n_sent, 3);
    ck_assert_int_eq(n_reports, 1);
    fake_resume(&fk.brokers[0]); /* it carries on: the late answers are accepted */
    ck_assert_msg(kc_flush(p, WAIT_MS) == 0, "flush: %s", kc_last_error(cli));
    ck_assert_int_eq(n_reports, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(reports[i].err, 0);
        ck_assert_int_eq(reports[i].offset, i);
    }
    ck_assert_int_eq(fk.n_sent, 3); /* nothing was sent twice */
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(fk.sent[i].broker, 1);
        ck_assert_int_eq(fk.sent[i].result, 0);
    }
    ck_assert_int_eq(fk.parts[0].leo, 3);
    kc_producer_free(p);
    fake_down();
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *t = tcase_create("core");
    tcase_set_timeout(t, 30);
    tcase_add_test(t, murmur2_matches_kafkas_test_vectors);
    tcase_add_test(t, produce_reports_each_record_with_its_offset_in_order);
    tcase_add_test(t, batches_close_at_batch_size);
    tcase_add_test(t, a_batch_closes_after_linger_without_a_flush);
    tcase_add_test(t, not_leader_retries_on_the_new_leader_with_the_same_bytes);
    tcase_add_test(t, sequence_errors_behind_a_failed_batch_are_retried_in_order);
    tcase_add_test(t, delivery_times_out_with_the_last_error);
    tcase_add_test(t, a_retry_of_an_appended_batch_gets_the_original_offset);
    tcase_add_test(t, a_batch_failing_for_good_restarts_the_sequence_in_a_new_epoch);
    tcase_add_test(t, acks_zero_reports_once_written_without_an_offset);
    tcase_add_test(t, a_full_buffer_refuses_and_closing_fails_what_is_pending);
    tcase_add_test(t, producing_to_a_missing_topic_or_partition_is_refused);
    tcase_add_test(t, consumer_reads_from_the_beginning_and_from_the_end);
    tcase_add_test(t, consumer_stops_at_the_high_watermark);
    tcase_add_test(t, consumer_returns_out_of_range);
    tcase_add_test(t, bootstrap_falls_over_from_a_dead_address_to_the_next);
    tcase_add_test(t, create_topic_retries_while_there_is_no_controller);
    tcase_add_test(t, a_leader_that_stops_answering_is_abandoned_once_metadata_names_a_newer_leader);
    tcase_add_test(t, metadata_is_not_asked_from_a_stuck_broker);
    tcase_add_test(t, nothing_is_abandoned_while_metadata_still_names_the_same_leader_epoch);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    kl_log_set_level(KL_LOG_WARN);
    return kl_check_run(client_suite());
}
