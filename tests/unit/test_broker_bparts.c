/* test_broker_bparts.c — two brokers' partition replicas (bparts) in one loop over loopback sockets, with a fake controller committing AlterPartition: produce acks 0/1/all, replication, HW-bounded and long-poll fetches, fencing, min ISR, divergence truncation, restart recovery (the leader-epoch cache rebuilt from the batches), and a follower restarting at and following the leader's log start. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "../../src/broker/bparts_internal.h"
#include "keel/config.h"
#include "keel/crc32c.h"
#include "keel/err.h"
#include "keel/fsutil.h"
#include "keel/kcfg.h"
#include "keel/log.h"
#include "keel/net.h"
#include "keel/recbatch.h"
#include "keel/wire.h"
#include "unit/kl_tmpdir.h"

#define DRIVE_LIMIT_MS 15000 /* a hung test fails instead of hanging */
#define DRIVE_TICK_MS 10
#define REQ_TIMEOUT_MS 20000
#define N_NODES 2
#define TOPIC "t"
#define MAX_ALTERS 64
#define MAX_TOPIC_CFG 4

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}
/* Runs the loop until cond holds (or DRIVE_LIMIT_MS passes, which fails). */
#define DRIVE(cond)                                                                                                \
    do {                                                                                                           \
        struct event_base *b_ = net_loop_base(loop);                                                               \
        struct event *t_ = event_new(b_, -1, EV_PERSIST, tick_cb, NULL);                                           \
        struct timeval tv_ = {0, DRIVE_TICK_MS * 1000};                                                            \
        event_add(t_, &tv_);                                                                                       \
        int64_t dl_ = net_now_ms() + DRIVE_LIMIT_MS;                                                               \
        while (!(cond) && net_now_ms() < dl_) event_base_loop(b_, EVLOOP_ONCE);                                    \
        event_free(t_);                                                                                            \
        ck_assert_msg((cond), "timed out waiting for: %s", #cond);                                                 \
    } while (0)

static const uint8_t topic_id[KL_UUID_LEN] = {0x4b, 0x65, 0x65, 0x6c, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

/* ---- two brokers ---------------------------------------------------------------------------- */

typedef struct node {
    int32_t id;
    char dir[192];
    int port;
    bparts_t *bp;
    bparts_env_t env;
} node_t;

static net_loop_t *loop;
static kl_config_t *cfg;
static node_t nodes[N_NODES];
static net_peer_t *client[N_NODES]; /* a client connection to each broker */
static struct { char key[64], value[64]; } topic_cfg[MAX_TOPIC_CFG];
static int n_topic_cfg;

/* ---- the fake controller: one partition TOPIC-0, committing AlterPartition ----------------- */

typedef struct alter_call {
    wire_alter_partition_req_t req;
    void (*done)(void *cb_arg, int err, const wire_alter_partition_resp_t *resp);
    void *cb_arg;
} alter_call_t;

static meta_partition_t ctl;  /* the committed state */
static unsigned ctl_mask;     /* which nodes (bit i: nodes[i]) follow the metadata */
static alter_call_t alters[MAX_ALTERS];
static int n_alters, n_committed;
static struct event *alter_ev;

static void publish(unsigned mask)
{
    for (int i = 0; i < N_NODES; i++)
        if ((mask & (1u << i)) && nodes[i].bp) bparts_partition_state(nodes[i].bp, TOPIC, &ctl);
}

/* The controller's rule (KIP-497): the leader's view must be current. */
static void on_alters(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    while (n_alters > 0) {
        alter_call_t a = alters[0];
        memmove(alters, alters + 1, (size_t)--n_alters * sizeof *alters);
        if (a.req.leader_epoch != ctl.leader_epoch || a.req.partition_epoch != ctl.partition_epoch ||
            a.req.broker_id != ctl.leader) {
            a.done(a.cb_arg, KL_EFENCED, NULL);
            continue;
        }
        memcpy(ctl.isr, a.req.isr, sizeof ctl.isr);
        ctl.n_isr = a.req.n_isr;
        ctl.partition_epoch++;
        n_committed++;
        wire_alter_partition_resp_t resp = {.leader = ctl.leader,
                                            .leader_epoch = ctl.leader_epoch,
                                            .partition_epoch = ctl.partition_epoch,
                                            .n_isr = ctl.n_isr};
        memcpy(resp.isr, ctl.isr, sizeof resp.isr);
        a.done(a.cb_arg, 0, &resp);
        publish(ctl_mask);
    }
}

static void fake_send_alter(void *arg, const wire_alter_partition_req_t *req,
                            void (*done)(void *cb_arg, int err, const wire_alter_partition_resp_t *resp),
                            void *cb_arg)
{
    (void)arg;
    ck_assert_int_lt(n_alters, MAX_ALTERS);
    alters[n_alters++] = (alter_call_t){*req, done, cb_arg};
    const struct timeval zero = {0, 0};
    evtimer_add(alter_ev, &zero); /* answered from the loop, like a real controller */
}

static int64_t fake_broker_epoch(void *arg) { return 10 + ((node_t *)arg)->id; }

static int fake_broker_addr(void *arg, int32_t id, char *host, size_t hostlen, int *port)
{
    (void)arg;
    for (int i = 0; i < N_NODES; i++)
        if (nodes[i].id == id) {
            snprintf(host, hostlen, "127.0.0.1");
            *port = nodes[i].port;
            return 0;
        }
    return KL_ENOENT;
}

static int fake_topic_config(void *arg, const uint8_t id[KL_UUID_LEN], const char *key, char *out, size_t outlen)
{
    (void)arg;
    if (memcmp(id, topic_id, KL_UUID_LEN) != 0) return KL_ENOENT;
    for (int i = 0; i < n_topic_cfg; i++)
        if (strcmp(topic_cfg[i].key, key) == 0) {
            snprintf(out, outlen, "%s", topic_cfg[i].value);
            return 0;
        }
    return KL_ENOENT;
}

static void set_topic_config(const char *key, const char *value)
{
    ck_assert_int_lt(n_topic_cfg, MAX_TOPIC_CFG);
    snprintf(topic_cfg[n_topic_cfg].key, sizeof topic_cfg[0].key, "%s", key);
    snprintf(topic_cfg[n_topic_cfg++].value, sizeof topic_cfg[0].value, "%s", value);
}

/* ---- listeners --------------------------------------------------------------------------------- */

static void on_request(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg)
{
    node_t *n = arg;
    if (n->bp) {
        bparts_on_request(n->bp, conn, req);
        return;
    }
    wire_msg_t m; /* between a close and a reopen */
    wire_msg_init(&m, req->api, true, req->correlation_id);
    m.error = KL_ESHUTDOWN;
    net_reply(l, conn, &m);
    wire_msg_free(req);
}

static void on_closed(net_loop_t *l, net_conn_id_t conn, void *arg)
{
    (void)l;
    node_t *n = arg;
    if (n->bp) bparts_on_conn_closed(n->bp, conn);
}

static void open_node(node_t *n)
{
    char err[256] = "";
    ck_assert_msg(bparts_open(&n->env, &n->bp, err, sizeof err) == 0, "bparts_open: %s", err);
}

static void close_node(node_t *n)
{
    bparts_close(n->bp);
    n->bp = NULL;
}

/* Both brokers, with the keeld config `overrides` ("k=v" lines) over the defaults. */
static void start(const char *overrides)
{
    char err[KL_CONFIG_ERR_LEN] = "";
    ck_assert_ptr_nonnull(cfg = kl_config_new(kcfg_schema()));
    ck_assert_msg(kl_config_load_string(cfg, "test", overrides, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(loop = net_loop_new(0));
    ck_assert_ptr_nonnull(alter_ev = evtimer_new(net_loop_base(loop), on_alters, NULL));
    n_alters = n_committed = n_topic_cfg = 0;
    for (int i = 0; i < N_NODES; i++) {
        node_t *n = &nodes[i];
        memset(n, 0, sizeof *n);
        n->id = i + 1;
        snprintf(n->dir, sizeof n->dir, "%s/n%d", dir, n->id);
        ck_assert_int_eq(mkdir(n->dir, 0755), 0);
        ck_assert_int_eq(net_listen(loop, "PLAINTEXT://127.0.0.1:0", NULL, on_request, on_closed, n, &n->port), 0);
        n->env = (bparts_env_t){.loop = loop,
                                .cfg = cfg,
                                .broker_id = n->id,
                                .log_dir = n->dir,
                                .cluster_id = "test-cluster",
                                .broker_epoch = fake_broker_epoch,
                                .send_alter = fake_send_alter,
                                .broker_addr = fake_broker_addr,
                                .topic_config = fake_topic_config,
                                .arg = n};
        open_node(n);
        ck_assert_ptr_nonnull(client[i] = net_peer_new(loop, "127.0.0.1", n->port, NULL, NULL, NULL));
    }
}

static void stop(void)
{
    for (int i = 0; i < N_NODES; i++) {
        if (nodes[i].bp) close_node(&nodes[i]);
        net_peer_free(client[i]);
    }
    for (int i = 0; i < n_alters; i++) alters[i].done(alters[i].cb_arg, KL_ECLOSED, NULL); /* after close: only frees */
    n_alters = 0;
    event_free(alter_ev);
    net_loop_free(loop);
    kl_config_free(cfg);
}

/* The committed state of TOPIC-0 (epochs start at 1). */
static void set_state(int32_t leader, int32_t leader_epoch, const int32_t *replicas, int n_replicas,
                      const int32_t *isr, int n_isr)
{
    memset(&ctl, 0, sizeof ctl);
    memcpy(ctl.topic, topic_id, KL_UUID_LEN);
    ctl.leader = leader;
    ctl.leader_epoch = leader_epoch;
    ctl.partition_epoch = leader_epoch;
    memcpy(ctl.replicas, replicas, (size_t)n_replicas * sizeof *replicas);
    ctl.n_replicas = n_replicas;
    memcpy(ctl.isr, isr, (size_t)n_isr * sizeof *isr);
    ctl.n_isr = n_isr;
}

/* A leader change as the controller commits it: both epochs go up. */
static void change_leader(int32_t leader, const int32_t *isr, int n_isr)
{
    ctl.leader = leader;
    ctl.leader_epoch++;
    ctl.partition_epoch++;
    memcpy(ctl.isr, isr, (size_t)n_isr * sizeof *isr);
    ctl.n_isr = n_isr;
}

static const int32_t r12[] = {1, 2}, r1[] = {1}, r2[] = {2};

static bpart_info_t info(int node)
{
    bpart_info_t in;
    ck_assert_int_eq(bparts_partition_info(nodes[node].bp, TOPIC, 0, &in), 0);
    return in;
}

/* ---- client calls ------------------------------------------------------------------------------ */

typedef struct call {
    bool done;
    int err;   /* transport */
    int error; /* the answer's */
    int32_t leader_id, leader_port;
    char leader_host[WIRE_HOST_LEN];
    wire_produce_resp_t produce;
    wire_fetch_resp_t fetch;
    wire_list_offsets_resp_t list;
    uint8_t *payload;
    size_t payload_len;
    int64_t at_ms;
    int snap_node; /* >= 0: record that node's replica state when the answer comes */
    bpart_info_t snap;
} call_t;

static void call_init(call_t *c)
{
    memset(c, 0, sizeof *c);
    c->snap_node = -1;
}

static void on_resp(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    call_t *c = arg;
    c->done = true;
    c->err = err;
    c->at_ms = net_now_ms();
    if (c->snap_node >= 0 && nodes[c->snap_node].bp)
        bparts_partition_info(nodes[c->snap_node].bp, TOPIC, 0, &c->snap);
    if (!resp) return;
    c->error = resp->error;
    c->leader_id = resp->leader_id;
    c->leader_port = resp->leader_port;
    snprintf(c->leader_host, sizeof c->leader_host, "%s", resp->leader_host);
    if (resp->api == WIRE_API_PRODUCE) c->produce = resp->body.produce_resp;
    if (resp->api == WIRE_API_FETCH) c->fetch = resp->body.fetch_resp;
    if (resp->api == WIRE_API_LIST_OFFSETS) c->list = resp->body.list_offsets_resp;
    if (resp->payload_len) {
        c->payload = malloc(resp->payload_len);
        memcpy(c->payload, resp->payload, resp->payload_len);
        c->payload_len = resp->payload_len;
    }
    wire_msg_free(resp);
}

static void call_free(call_t *c)
{
    free(c->payload);
    c->payload = NULL;
}

/* One batch of n records with `value`; pid < 0: not idempotent. */
static void make_batch(kl_buf_t *b, const char *value, int n, int64_t pid, int32_t seq)
{
    kl_buf_init(b, 0);
    recbatch_meta_t m = recbatch_meta(0, 0, 0);
    if (pid >= 0) {
        m.producer_id = pid;
        m.producer_epoch = 0;
        m.base_sequence = seq;
    }
    recbatch_builder_t bb;
    ck_assert_int_eq(recbatch_begin(&bb, b, &m), 0);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(recbatch_add(&bb, i, NULL, -1, value, (int32_t)strlen(value), NULL, 0), 0);
    ck_assert_int_eq(recbatch_finish(&bb), 0);
}

static void send_produce_bytes(call_t *c, int node, int32_t acks, int32_t timeout_ms, int32_t epoch,
                               const uint8_t *data, size_t len)
{
    call_init(c);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_PRODUCE, false, 0);
    snprintf(m.body.produce.topic, sizeof m.body.produce.topic, TOPIC);
    m.body.produce.partition = 0;
    m.body.produce.acks = acks;
    m.body.produce.timeout_ms = timeout_ms;
    m.body.produce.leader_epoch = epoch;
    m.payload = data;
    m.payload_len = len;
    ck_assert_int_eq(net_request(client[node], &m, REQ_TIMEOUT_MS, on_resp, c), 0);
}

static void send_produce(call_t *c, int node, int32_t acks, const char *value)
{
    kl_buf_t b;
    make_batch(&b, value, 1, -1, 0);
    send_produce_bytes(c, node, acks, REQ_TIMEOUT_MS, WIRE_NO_EPOCH, b.data, b.len);
    kl_buf_free(&b);
}

/* Produces and waits for the answer, which must be a success: its base offset. */
static int64_t produce_ok(int node, int32_t acks, const char *value)
{
    call_t c;
    send_produce(&c, node, acks, value);
    DRIVE(c.done);
    ck_assert_int_eq(c.err, 0);
    ck_assert_msg(c.error == 0, "produce: %s", kl_errname(c.error));
    return c.produce.base_offset;
}

static void send_fetch(call_t *c, int node, int64_t offset, int32_t epoch, int32_t max_wait_ms)
{
    call_init(c);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_FETCH, false, 0);
    wire_fetch_req_t *f = &m.body.fetch;
    snprintf(f->topic, sizeof f->topic, TOPIC);
    f->partition = 0;
    f->replica_id = -1;
    f->broker_epoch = -1;
    f->leader_epoch = epoch;
    f->fetch_offset = offset;
    f->last_fetched_epoch = -1;
    f->max_bytes = 1 << 20;
    f->max_wait_ms = max_wait_ms;
    f->min_bytes = 1;
    ck_assert_int_eq(net_request(client[node], &m, REQ_TIMEOUT_MS, on_resp, c), 0);
}

static void send_list_offsets(call_t *c, int node, int64_t timestamp)
{
    call_init(c);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_LIST_OFFSETS, false, 0);
    snprintf(m.body.list_offsets.topic, sizeof m.body.list_offsets.topic, TOPIC);
    m.body.list_offsets.timestamp = timestamp;
    m.body.list_offsets.leader_epoch = WIRE_NO_EPOCH;
    ck_assert_int_eq(net_request(client[node], &m, REQ_TIMEOUT_MS, on_resp, c), 0);
}

/* The batches of a fetch answer: how many, checking each (CRC too) and that
 * they are consecutive; values[i] gets batch i's first record value. */
static int fetched_batches(const call_t *c, int64_t first, char values[][16], int max)
{
    int n = 0;
    int64_t next = first;
    for (size_t off = 0; off < c->payload_len;) {
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_validate(c->payload + off, c->payload_len - off, &h), 0);
        ck_assert_int_eq(h.base_offset, next);
        if (n < max) {
            recbatch_iter_t it;
            recbatch_record_t rec;
            ck_assert_int_eq(recbatch_iter_init(&it, c->payload + off, c->payload_len - off), 0);
            ck_assert_int_eq(recbatch_iter_next(&it, &rec), 0);
            snprintf(values[n], 16, "%.*s", (int)rec.value.len, (const char *)rec.value.data);
        }
        n++;
        next = recbatch_next_offset(&h);
        off += recbatch_total_size(&h);
    }
    return n;
}

#define FAST_FOLLOWERS "replica.fetch.wait.max.ms=100\n"

/* ---- tests --------------------------------------------------------------------------------------- */

START_TEST(test_acks1_produce_is_answered_by_the_leader_and_replicated_to_the_follower)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 3;
    publish(ctl_mask);
    ck_assert_int_eq(bparts_leader_count(nodes[0].bp), 1);
    ck_assert_int_eq(bparts_leader_count(nodes[1].bp), 0);
    ck_assert_int_eq(bparts_count(nodes[1].bp), 1);
    ck_assert_int_eq(produce_ok(0, 1, "a"), 0);
    ck_assert_int_eq(produce_ok(0, 1, "b"), 1);
    DRIVE(info(1).log_end == 2);
    DRIVE(info(0).high_watermark == 2);
    ck_assert_int_eq(info(1).latest_epoch, 1);
    ck_assert_int_eq(info(1).role, REPLICA_FOLLOWER);
    stop();
}
END_TEST

START_TEST(test_acks0_produce_gets_no_answer_but_is_appended)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r1, 1, r1, 1);
    ctl_mask = 1;
    publish(ctl_mask);
    call_t c0;
    send_produce(&c0, 0, 0, "zero");
    ck_assert_int_eq(produce_ok(0, 1, "one"), 1); /* same connection, answered after the acks=0 one went in */
    ck_assert(!c0.done);
    ck_assert_int_eq(info(0).log_end, 2);
    stop(); /* c0 fails with KL_ECLOSED as the client goes */
    ck_assert(c0.done && c0.err == KL_ECLOSED);
}
END_TEST

START_TEST(test_acks_all_is_answered_only_once_the_follower_has_the_batch)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 1; /* broker 2 has not heard of the partition yet: nothing fetches */
    publish(ctl_mask);
    call_t all;
    send_produce(&all, 0, REPLICA_ACKS_ALL, "all");
    all.snap_node = 1;
    ck_assert_int_eq(produce_ok(0, 1, "one"), 1);
    ck_assert(!all.done);
    ck_assert_int_eq(info(0).high_watermark, 0);
    ctl_mask = 3;
    publish(ctl_mask); /* broker 2 follows, fetches, and its next fetch moves the HW */
    DRIVE(all.done);
    ck_assert_int_eq(all.error, 0);
    ck_assert_int_eq(all.produce.base_offset, 0);
    ck_assert_int_eq(all.produce.leader_epoch, 1);
    ck_assert_int_ge(all.snap.log_end, 1); /* the follower held it when the answer came */
    stop();
}
END_TEST

START_TEST(test_acks_all_not_covered_by_the_high_watermark_in_time_is_answered_timeout)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 1;
    publish(ctl_mask);
    kl_buf_t b;
    make_batch(&b, "late", 1, -1, 0);
    call_t c;
    send_produce_bytes(&c, 0, REPLICA_ACKS_ALL, 50, WIRE_NO_EPOCH, b.data, b.len);
    kl_buf_free(&b);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ETIMEOUT);
    ck_assert_int_eq(info(0).log_end, 1); /* appended all the same, as in Kafka */
    stop();
}
END_TEST

START_TEST(test_consumer_fetch_sees_only_records_below_the_high_watermark)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 1; /* broker 2 does not fetch yet */
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, 1, "a"), 0);
    call_t f;
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(f.done);
    ck_assert_int_eq(f.error, 0);
    ck_assert_int_eq(f.payload_len, 0);
    ck_assert_int_eq(f.fetch.high_watermark, 0);
    ck_assert_int_eq(f.fetch.log_end_offset, 1);
    ctl_mask = 3;
    publish(ctl_mask);
    DRIVE(info(0).high_watermark == 1);
    close_node(&nodes[1]); /* broker 2 stops fetching: "b" stays above the HW */
    ck_assert_int_eq(produce_ok(0, 1, "b"), 1);
    char v[4][16];
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(f.done);
    ck_assert_int_eq(fetched_batches(&f, 0, v, 4), 1);
    ck_assert_str_eq(v[0], "a");
    ck_assert_int_eq(f.fetch.high_watermark, 1);
    call_free(&f);
    open_node(&nodes[1]);
    publish(ctl_mask);
    DRIVE(info(0).high_watermark == 2);
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(f.done);
    ck_assert_int_eq(fetched_batches(&f, 0, v, 4), 2);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "b");
    ck_assert_int_eq(f.fetch.high_watermark, 2);
    call_free(&f);
    /* LIST_OFFSETS: earliest is the log start, latest the HW */
    call_t lo;
    send_list_offsets(&lo, 0, WIRE_OFFSET_EARLIEST);
    DRIVE(lo.done);
    ck_assert_int_eq(lo.list.offset, 0);
    send_list_offsets(&lo, 0, WIRE_OFFSET_LATEST);
    DRIVE(lo.done);
    ck_assert_int_eq(lo.list.offset, 2);
    ck_assert_int_eq(lo.list.leader_epoch, 1);
    stop();
}
END_TEST

START_TEST(test_long_poll_fetch_is_answered_when_data_arrives)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r1, 1, r1, 1);
    ctl_mask = 1;
    publish(ctl_mask);
    call_t f, lo;
    const int64_t t0 = net_now_ms();
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 10000);
    send_list_offsets(&lo, 0, WIRE_OFFSET_LATEST); /* answered while the fetch waits */
    DRIVE(lo.done);
    ck_assert(!f.done);
    ck_assert_int_eq(produce_ok(0, 1, "wake"), 0);
    DRIVE(f.done);
    ck_assert_int_lt(f.at_ms - t0, 10000);
    char v[1][16];
    ck_assert_int_eq(fetched_batches(&f, 0, v, 1), 1);
    ck_assert_str_eq(v[0], "wake");
    call_free(&f);
    /* nothing arrives: answered empty at max_wait */
    const int64_t t1 = net_now_ms();
    send_fetch(&f, 0, 1, WIRE_NO_EPOCH, 100);
    DRIVE(f.done);
    ck_assert_int_eq(f.error, 0);
    ck_assert_int_eq(f.payload_len, 0);
    ck_assert_int_ge(f.at_ms - t1, 50); /* it waited (libevent may fire a ms early) */
    stop();
}
END_TEST

START_TEST(test_requests_to_a_follower_are_refused_with_the_leader_hint)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 3;
    publish(ctl_mask);
    call_t c;
    send_produce(&c, 1, 1, "x");
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ENOTLEADER);
    ck_assert_int_eq(c.leader_id, 1);
    ck_assert_str_eq(c.leader_host, "127.0.0.1");
    ck_assert_int_eq(c.leader_port, nodes[0].port);
    send_fetch(&c, 1, 0, WIRE_NO_EPOCH, 0);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ENOTLEADER);
    ck_assert_int_eq(c.leader_port, nodes[0].port);
    send_list_offsets(&c, 1, WIRE_OFFSET_LATEST);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ENOTLEADER);
    /* a partition nobody told it about */
    call_t u;
    call_init(&u);
    wire_msg_t m;
    kl_buf_t b;
    make_batch(&b, "x", 1, -1, 0);
    wire_msg_init(&m, WIRE_API_PRODUCE, false, 0);
    snprintf(m.body.produce.topic, sizeof m.body.produce.topic, "other");
    m.body.produce.acks = 1;
    m.body.produce.leader_epoch = WIRE_NO_EPOCH;
    m.payload = b.data;
    m.payload_len = b.len;
    ck_assert_int_eq(net_request(client[0], &m, REQ_TIMEOUT_MS, on_resp, &u), 0);
    kl_buf_free(&b);
    DRIVE(u.done);
    ck_assert_int_eq(u.error, KL_EUNKNOWNPARTITION);
    stop();
}
END_TEST

START_TEST(test_stale_and_future_leader_epochs_are_refused)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r1, 1, r1, 1);
    ctl_mask = 1;
    publish(ctl_mask);
    change_leader(1, r1, 1); /* a new epoch of the same leader */
    publish(ctl_mask);
    ck_assert_int_eq(info(0).leader_epoch, 2);
    kl_buf_t b;
    make_batch(&b, "z", 1, -1, 0);
    call_t c;
    send_produce_bytes(&c, 0, 1, 1000, 1, b.data, b.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EFENCED);
    send_produce_bytes(&c, 0, 1, 1000, 3, b.data, b.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EUNKNOWNEPOCH);
    send_produce_bytes(&c, 0, 1, 1000, 2, b.data, b.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, 0);
    ck_assert_int_eq(c.produce.leader_epoch, 2);
    kl_buf_free(&b);
    send_fetch(&c, 0, 0, 1, 0);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EFENCED);
    ck_assert_int_eq(info(0).log_end, 1);
    stop();
}
END_TEST

START_TEST(test_acks_all_needs_min_insync_replicas_while_acks1_still_works)
{
    start(FAST_FOLLOWERS);
    set_topic_config("min.insync.replicas", "2");
    set_state(1, 1, r12, 2, r1, 1);
    ctl_mask = 1;
    publish(ctl_mask);
    call_t c;
    send_produce(&c, 0, REPLICA_ACKS_ALL, "all");
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ENOTENOUGHREPLICAS);
    ck_assert_int_eq(info(0).log_end, 0); /* refused before anything was written */
    ck_assert_int_eq(produce_ok(0, 1, "one"), 0);
    stop();
}
END_TEST

START_TEST(test_a_caught_up_follower_joins_the_isr_through_the_controller)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r1, 1);
    ctl_mask = 3;
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, 1, "a"), 0);
    DRIVE(ctl.n_isr == 2 && info(0).n_isr == 2 && info(1).n_isr == 2);
    ck_assert_int_eq(ctl.partition_epoch, 2);
    ck_assert_int_eq(info(0).partition_epoch, 2);
    ck_assert_int_eq(n_committed, 1);
    stop();
}
END_TEST

START_TEST(test_a_lagging_follower_leaves_the_isr_through_the_controller)
{
    start(FAST_FOLLOWERS "replica.lag.time.max.ms=200\n");
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 3;
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, 1, "a"), 0);
    DRIVE(info(1).log_end == 1);
    close_node(&nodes[1]); /* broker 2 stops fetching */
    ctl_mask = 1;
    ck_assert_int_eq(produce_ok(0, 1, "b"), 1);
    DRIVE(ctl.n_isr == 1 && info(0).n_isr == 1);
    ck_assert_int_eq(ctl.isr[0], 1);
    stop();
}
END_TEST

START_TEST(test_a_follower_truncates_its_diverged_suffix_on_a_leader_change)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 3;
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, REPLICA_ACKS_ALL, "a"), 0);
    DRIVE(info(1).log_end == 1);
    /* broker 2 hears of epoch 2 (leader gone) while broker 1 does not yet: a
     * zombie leader 1 appends "b" at offset 1 that broker 2 never gets */
    change_leader(-1, r12, 2);
    publish(2);
    ck_assert_int_eq(info(1).role, REPLICA_NONE);
    ck_assert_int_eq(produce_ok(0, 1, "b"), 1);
    ck_assert_int_eq(info(0).log_end, 2);
    /* broker 2 leads epoch 3 and writes "c" at offset 1 */
    change_leader(2, r2, 1);
    ctl_mask = 3;
    publish(ctl_mask);
    ck_assert_int_eq(info(1).role, REPLICA_LEADER);
    ck_assert_int_eq(produce_ok(1, 1, "c"), 1);
    /* broker 1 follows: its "b" (epoch 1) diverges at offset 1, goes, and "c" replaces it */
    DRIVE(info(0).log_end == 2 && info(0).latest_epoch == 3);
    /* back to broker 1 as leader: what it serves is "a", "c" */
    DRIVE(ctl.n_isr == 2); /* broker 1 caught up and rejoined the ISR */
    change_leader(1, r12, 2);
    publish(ctl_mask);
    DRIVE(info(0).high_watermark == 2);
    call_t f;
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(f.done);
    char v[4][16];
    ck_assert_int_eq(fetched_batches(&f, 0, v, 4), 2);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[1], "c");
    call_free(&f);
    stop();
}
END_TEST

START_TEST(test_a_restarted_broker_recovers_its_log_and_high_watermark)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r1, 1, r1, 1);
    ctl_mask = 1;
    publish(ctl_mask);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(produce_ok(0, REPLICA_ACKS_ALL, i == 0 ? "x" : i == 1 ? "y" : "z"), i);
    close_node(&nodes[0]);
    open_node(&nodes[0]);
    ck_assert_int_eq(bparts_count(nodes[0].bp), 0);
    publish(ctl_mask);
    const bpart_info_t in = info(0);
    ck_assert_int_eq(in.log_end, 3);
    ck_assert_int_eq(in.high_watermark, 3);
    ck_assert_int_eq(in.latest_epoch, 1);
    call_t f;
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(f.done);
    char v[4][16];
    ck_assert_int_eq(fetched_batches(&f, 0, v, 4), 3);
    ck_assert_str_eq(v[2], "z");
    call_free(&f);
    ck_assert_int_eq(produce_ok(0, 1, "after"), 3);
    stop();
}
END_TEST

/* The leader-epoch-checkpoint of node's replica, whole, into out. */
static void read_epochs_file(int node, char *out, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/" TOPIC "-0/leader-epoch-checkpoint", nodes[node].dir);
    uint8_t *data;
    size_t len;
    ck_assert_int_eq(fsutil_read_file(path, cap - 1, &data, &len), 0);
    memcpy(out, data, len + 1); /* with its NUL */
    free(data);
}

START_TEST(test_a_checkpoint_missing_an_epoch_the_log_holds_is_rebuilt_from_the_batches)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 3;
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, REPLICA_ACKS_ALL, "a"), 0);
    change_leader(1, r12, 2); /* epoch 2, same leader */
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, REPLICA_ACKS_ALL, "b"), 1);
    DRIVE(info(1).high_watermark == 2); /* "b" (epoch 2) is committed on broker 2 too */
    char text[64];
    read_epochs_file(0, text, sizeof text);
    ck_assert_str_eq(text, "0\n2\n1 0\n2 1\n");

    /* broker 1 crashed between appending epoch 2's first batch and rewriting
     * its checkpoint (replica.h's order): the file lacks epoch 2 */
    close_node(&nodes[0]);
    char pdir[256];
    snprintf(pdir, sizeof pdir, "%s/" TOPIC "-0", nodes[0].dir);
    const char stale[] = "0\n1\n1 0\n";
    ck_assert_int_eq(fsutil_write_atomic(pdir, "leader-epoch-checkpoint", stale, strlen(stale)), 0);
    open_node(&nodes[0]);
    publish(1);
    const bpart_t *p = bparts_find(nodes[0].bp, TOPIC, 0);
    ck_assert_ptr_nonnull(p);
    const replica_epochs_t *e = replica_epochs(p->rep);
    ck_assert_int_eq(e->n, 2);
    ck_assert_int_eq(e->e[0].epoch, 1);
    ck_assert_int_eq(e->e[0].start_offset, 0);
    ck_assert_int_eq(e->e[1].epoch, 2);
    ck_assert_int_eq(e->e[1].start_offset, 1);
    read_epochs_file(0, text, sizeof text);
    ck_assert_str_eq(text, "0\n2\n1 0\n2 1\n");

    /* broker 1 leads epoch 3; broker 2 fetches with last fetched epoch 2 at
     * offset 2. With epoch 2 lost, broker 1 would answer "diverged: epoch 1
     * ends at 2", cutting broker 2 below its HW (it refuses and is stuck). */
    change_leader(1, r12, 2);
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, REPLICA_ACKS_ALL, "c"), 2);
    DRIVE(info(1).log_end == 3 && info(1).high_watermark == 3);
    ck_assert_int_eq(info(1).latest_epoch, 3);
    call_t f;
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(f.done);
    char v[4][16];
    ck_assert_int_eq(fetched_batches(&f, 0, v, 4), 3);
    ck_assert_str_eq(v[1], "b");
    ck_assert_str_eq(v[2], "c");
    call_free(&f);
    stop();
}
END_TEST

START_TEST(test_idempotent_retry_gets_the_original_offsets_after_a_restart)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r1, 1, r1, 1);
    ctl_mask = 1;
    publish(ctl_mask);
    kl_buf_t b0, b1;
    make_batch(&b0, "p0", 2, 7, 0);
    make_batch(&b1, "p1", 1, 7, 2);
    call_t c;
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b0.data, b0.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.produce.base_offset, 0);
    close_node(&nodes[0]); /* the producer state is rebuilt from the log */
    open_node(&nodes[0]);
    publish(ctl_mask);
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b0.data, b0.len); /* a retry */
    DRIVE(c.done);
    ck_assert_int_eq(c.error, 0);
    ck_assert_int_eq(c.produce.base_offset, 0);
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b1.data, b1.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.produce.base_offset, 2);
    ck_assert_int_eq(info(0).log_end, 3);
    kl_buf_free(&b0);
    kl_buf_free(&b1);
    stop();
}
END_TEST

START_TEST(test_malformed_or_oversized_batches_are_refused)
{
    start(FAST_FOLLOWERS);
    set_topic_config("max.message.bytes", "200");
    set_state(1, 1, r1, 1, r1, 1);
    ctl_mask = 1;
    publish(ctl_mask);
    kl_buf_t b;
    make_batch(&b, "ok", 1, -1, 0);
    call_t c;
    b.data[b.len - 1] ^= 1; /* CRC no longer matches */
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b.data, b.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ECORRUPT);
    b.data[b.len - 1] ^= 1;
    const size_t one = b.len;
    ck_assert_int_eq(kl_buf_reserve(&b, one), 0);
    ck_assert_int_eq(kl_buf_append(&b, b.data, one), 0); /* two batches */
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b.data, b.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EINVAL);
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b.data, one - 3); /* truncated */
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ECORRUPT);
    b.data[22] |= 1; /* gzip: compression is not supported (CRC made right again) */
    kl_put_be32(b.data + 17, kl_crc32c(0, b.data + RECBATCH_CRC_START, one - RECBATCH_CRC_START));
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b.data, one);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EUNSUPPORTED);
    kl_buf_free(&b);
    make_batch(&b, "0123456789012345678901234567890123456789", 5, -1, 0); /* > max.message.bytes */
    send_produce_bytes(&c, 0, 1, 1000, WIRE_NO_EPOCH, b.data, b.len);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_ETOOBIG);
    kl_buf_free(&b);
    ck_assert_int_eq(info(0).log_end, 0);
    stop();
}
END_TEST

START_TEST(test_a_partition_no_longer_assigned_here_is_deleted)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 3;
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, 1, "a"), 0);
    DRIVE(info(1).log_end == 1);
    char pdir[256];
    snprintf(pdir, sizeof pdir, "%s/" TOPIC "-0", nodes[1].dir);
    struct stat st;
    ck_assert_int_eq(stat(pdir, &st), 0);
    /* reassigned to broker 1 alone */
    ctl.n_replicas = 1;
    ctl.n_isr = 1;
    ctl.partition_epoch++;
    publish(ctl_mask);
    ck_assert_int_eq(bparts_count(nodes[1].bp), 0);
    ck_assert_int_ne(stat(pdir, &st), 0);
    /* the topic is deleted: a parked fetch is answered */
    call_t f, lo;
    send_fetch(&f, 0, 1, WIRE_NO_EPOCH, 10000);
    send_list_offsets(&lo, 0, WIRE_OFFSET_LATEST); /* answered after the fetch was parked */
    DRIVE(lo.done);
    ck_assert(!f.done);
    bparts_topic_removed(nodes[0].bp, topic_id);
    ck_assert_int_eq(bparts_count(nodes[0].bp), 0);
    DRIVE(f.done);
    ck_assert_int_eq(f.error, KL_EUNKNOWNPARTITION);
    call_t c;
    send_produce(&c, 0, 1, "gone");
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EUNKNOWNPARTITION);
    stop();
}
END_TEST

START_TEST(test_a_disk_error_stops_the_partition_and_answers_eio)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    ctl_mask = 1; /* no follower: an acks=all produce waits */
    publish(ctl_mask);
    call_t all;
    send_produce(&all, 0, REPLICA_ACKS_ALL, "w");
    DRIVE(info(0).log_end == 1);
    ck_assert(!all.done);
    char pdir[256];
    snprintf(pdir, sizeof pdir, "%s/" TOPIC "-0", nodes[0].dir);
    ck_assert_int_eq(fsutil_rm_rf(pdir), 0);
    change_leader(1, r12, 2); /* a new epoch: its checkpoint cannot be written */
    publish(ctl_mask);
    ck_assert_int_eq(info(0).failed, KL_EIO);
    DRIVE(all.done);
    ck_assert_int_eq(all.error, KL_EIO);
    call_t c;
    send_produce(&c, 0, 1, "x");
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EIO);
    send_fetch(&c, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(c.done);
    ck_assert_int_eq(c.error, KL_EIO);
    ck_assert_int_eq(bparts_leader_count(nodes[0].bp), 0);
    stop();
}
END_TEST

START_TEST(test_an_ineligible_follower_is_not_proposed_for_the_isr_until_eligible)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r1, 1);
    ctl_mask = 3;
    bparts_eligibility(nodes[0].bp, 2, false); /* KIP-841: broker 2 fenced or shutting down */
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, 1, "a"), 0);
    DRIVE(info(1).high_watermark == 1); /* caught up, and fetched again since */
    ck_assert_int_eq(n_alters + n_committed, 0);
    bparts_eligibility(nodes[0].bp, 2, true);
    DRIVE(ctl.n_isr == 2 && info(0).n_isr == 2);
    stop();
}
END_TEST

/* The start of a replica's files (the core's log start may be past it). */
static int64_t files_start(int node)
{
    bpart_t *p = bparts_find(nodes[node].bp, TOPIC, 0);
    ck_assert_ptr_nonnull(p);
    return partlog_start_offset(p->log);
}

/* Retention runs every BPARTS_RETENTION_CHECK_MS; the next housekeeping pass runs it now. */
static void retention_now(int node) { nodes[node].bp->next_retention_ms = 0; }

START_TEST(test_a_follower_behind_the_leaders_log_start_restarts_there_and_follows_its_retention)
{
    start(FAST_FOLLOWERS);
    set_topic_config(META_CFG_SEGMENT_BYTES, "512"); /* SEGLOG_MIN_SEGMENT_BYTES: a few batches each */
    set_topic_config(META_CFG_RETENTION_BYTES, "0"); /* every sealed segment below the HW goes */
    set_state(1, 1, r12, 2, r1, 1);
    ctl_mask = 3;
    bparts_eligibility(nodes[0].bp, 2, false); /* broker 2 stays out of the ISR: the HW is broker 1's log end */
    publish(ctl_mask);
    ck_assert_int_eq(produce_ok(0, 1, "first"), 0);
    DRIVE(info(1).log_end == 1);
    close_node(&nodes[1]); /* broker 2 is away while broker 1's retention deletes what it lacks */
    ctl_mask = 1;
    for (int i = 1; i < 30; i++) ck_assert_int_eq(produce_ok(0, 1, "while-away"), i);
    retention_now(0);
    DRIVE(info(0).log_start > 1);
    const int64_t start1 = info(0).log_start;
    ck_assert_int_eq(files_start(0), start1);

    /* a consumer below the log start learns where it is */
    call_t f;
    send_fetch(&f, 0, 0, WIRE_NO_EPOCH, 0);
    DRIVE(f.done);
    ck_assert_int_eq(f.error, KL_ERANGE);
    ck_assert_int_eq(f.fetch.log_start_offset, start1);
    ck_assert_int_eq(f.fetch.log_end_offset, 30);
    ck_assert_int_eq(f.fetch.high_watermark, 30);
    ck_assert_int_eq(f.payload_len, 0);

    /* broker 2 comes back at offset 1: KL_ERANGE, it restarts its log at the leader's start and catches up */
    open_node(&nodes[1]);
    ctl_mask = 3;
    publish(ctl_mask);
    DRIVE(info(1).log_end == 30);
    ck_assert_int_eq(info(1).log_start, start1);
    ck_assert_int_eq(files_start(1), start1);
    ck_assert_int_eq(info(1).latest_epoch, 1);
    DRIVE(info(1).high_watermark == 30);

    /* the leader's retention moves its start again: the follower deletes its own segments below it */
    for (int i = 30; i < 60; i++) ck_assert_int_eq(produce_ok(0, 1, "later"), i);
    retention_now(0);
    DRIVE(info(0).log_start > 30);
    const int64_t start2 = info(0).log_start;
    DRIVE(info(1).log_end == 60 && info(1).log_start == start2);
    ck_assert_int_gt(files_start(1), start1); /* whole segments only: at most up to the start */
    ck_assert_int_le(files_start(1), start2);
    stop();
}
END_TEST

static int n_ok(const call_t *c, int n)
{
    int ok = 0;
    for (int i = 0; i < n; i++) ok += c[i].done && c[i].err == 0 && c[i].error == 0;
    return ok;
}

#define MANY_PARTITIONS (BPARTS_PEER_MAX_INFLIGHT + 8) /* more than one connection carries at once */

START_TEST(test_many_partitions_replicate_over_one_connection_per_leader)
{
    start(FAST_FOLLOWERS);
    set_state(1, 1, r12, 2, r12, 2);
    for (int i = 0; i < MANY_PARTITIONS; i++) {
        meta_partition_t mp = ctl;
        mp.partition = i;
        bparts_partition_state(nodes[0].bp, TOPIC, &mp);
        bparts_partition_state(nodes[1].bp, TOPIC, &mp);
    }
    ck_assert_int_eq(bparts_count(nodes[1].bp), MANY_PARTITIONS);
    ck_assert_int_eq(bparts_leader_count(nodes[0].bp), MANY_PARTITIONS);
    static call_t calls[MANY_PARTITIONS];
    kl_buf_t b;
    make_batch(&b, "m", 1, -1, 0);
    for (int i = 0; i < MANY_PARTITIONS; i++) {
        call_init(&calls[i]);
        wire_msg_t m;
        wire_msg_init(&m, WIRE_API_PRODUCE, false, 0);
        snprintf(m.body.produce.topic, sizeof m.body.produce.topic, TOPIC);
        m.body.produce.partition = i;
        m.body.produce.acks = REPLICA_ACKS_ALL;
        m.body.produce.timeout_ms = REQ_TIMEOUT_MS;
        m.body.produce.leader_epoch = WIRE_NO_EPOCH;
        m.payload = b.data;
        m.payload_len = b.len;
        ck_assert_int_eq(net_request(client[0], &m, REQ_TIMEOUT_MS, on_resp, &calls[i]), 0);
    }
    kl_buf_free(&b);
    DRIVE(n_ok(calls, MANY_PARTITIONS) == MANY_PARTITIONS);
    bpart_info_t in;
    for (int i = 0; i < MANY_PARTITIONS; i++) {
        ck_assert_int_eq(bparts_partition_info(nodes[1].bp, TOPIC, i, &in), 0);
        ck_assert_int_eq(in.log_end, 1);
    }
    ck_assert_int_eq(n_alters + n_committed, 0);
    stop();
}
END_TEST

/* KEEL_TEST_LOG=debug|info|... shows the brokers' logs (off by default). */
static void setup(void)
{
    kl_tmpdir_setup();
    kl_log_level_t lvl;
    const char *env = getenv("KEEL_TEST_LOG");
    if (env && kl_log_parse_level(env, &lvl) == 0) kl_log_set_level(lvl);
}

static Suite *suite(void)
{
    Suite *s = suite_create("broker_bparts");
    TCase *tc = tcase_create("bparts");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, kl_tmpdir_teardown);
    tcase_add_test(tc, test_acks1_produce_is_answered_by_the_leader_and_replicated_to_the_follower);
    tcase_add_test(tc, test_acks0_produce_gets_no_answer_but_is_appended);
    tcase_add_test(tc, test_acks_all_is_answered_only_once_the_follower_has_the_batch);
    tcase_add_test(tc, test_acks_all_not_covered_by_the_high_watermark_in_time_is_answered_timeout);
    tcase_add_test(tc, test_consumer_fetch_sees_only_records_below_the_high_watermark);
    tcase_add_test(tc, test_long_poll_fetch_is_answered_when_data_arrives);
    tcase_add_test(tc, test_requests_to_a_follower_are_refused_with_the_leader_hint);
    tcase_add_test(tc, test_stale_and_future_leader_epochs_are_refused);
    tcase_add_test(tc, test_acks_all_needs_min_insync_replicas_while_acks1_still_works);
    tcase_add_test(tc, test_a_caught_up_follower_joins_the_isr_through_the_controller);
    tcase_add_test(tc, test_a_lagging_follower_leaves_the_isr_through_the_controller);
    tcase_add_test(tc, test_a_follower_truncates_its_diverged_suffix_on_a_leader_change);
    tcase_add_test(tc, test_a_restarted_broker_recovers_its_log_and_high_watermark);
    tcase_add_test(tc, test_a_checkpoint_missing_an_epoch_the_log_holds_is_rebuilt_from_the_batches);
    tcase_add_test(tc, test_idempotent_retry_gets_the_original_offsets_after_a_restart);
    tcase_add_test(tc, test_malformed_or_oversized_batches_are_refused);
    tcase_add_test(tc, test_a_partition_no_longer_assigned_here_is_deleted);
    tcase_add_test(tc, test_a_disk_error_stops_the_partition_and_answers_eio);
    tcase_add_test(tc, test_an_ineligible_follower_is_not_proposed_for_the_isr_until_eligible);
    tcase_add_test(tc, test_many_partitions_replicate_over_one_connection_per_leader);
    tcase_add_test(tc, test_a_follower_behind_the_leaders_log_start_restarts_there_and_follows_its_retention);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kl_tmpdir_run(suite(), "bparts");
}
