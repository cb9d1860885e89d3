/* test_broker.c — the broker's node half against a scripted fake controller on loopback: registration, heartbeats, controlled shutdown, admin forwarding, producer-id blocks, local answers, listener config. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "keel/broker.h"
#include "keel/err.h"
#include "keel/kcfg.h"
#include "unit/kl_tmpdir.h"

#define GUARD_MS 10000 /* a scenario that has not finished by then has failed */

typedef struct fx fx_t;
/* How the fake controller answers one broker request (Raft traffic is dropped,
 * so the broker's Raft core never learns a leader and its image stays empty). */
typedef void (*script_fn)(net_conn_id_t conn, const wire_msg_t *req);

struct fx {
    net_loop_t *loop;
    kl_config_t *cfg;
    broker_t *broker;
    int ctl_port, broker_port;
    net_peer_t *client; /* a client of the broker's listener */
    script_fn script;
    struct event *guard;
    bool timed_out;
    /* what the fake controller saw */
    int regs, hbs, shutdown_hbs, creates, allocs, answers;
    uint8_t incarnation[KL_UUID_LEN];
    int64_t pids[3];
    bool shutdown_done;
};

static fx_t fx;

static void ctl_reply(net_conn_id_t conn, wire_msg_t *resp) { ck_assert_int_eq(net_reply(fx.loop, conn, resp), 0); }

static void on_ctl_request(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg)
{
    (void)l, (void)arg;
    if (req->api < WIRE_API_VOTE || req->api > WIRE_API_FETCH_SNAPSHOT) fx.script(conn, req);
    wire_msg_free(req);
}

static void on_broker_request(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg)
{
    (void)l, (void)arg;
    broker_on_request(fx.broker, conn, req);
}

static void on_broker_conn_closed(net_loop_t *l, net_conn_id_t conn, void *arg)
{
    (void)l, (void)arg;
    if (fx.broker) broker_on_conn_closed(fx.broker, conn);
}

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    fx.timed_out = true;
    net_loop_stop(fx.loop);
}

static void set_config(const char *listeners)
{
    char text[1024];
    snprintf(text, sizeof text,
             "process.roles=broker\nnode.id=101\ncontroller.quorum.voters=1@127.0.0.1:%d\nlisteners=%s\n"
             "log.dirs=%s\nbroker.rack=r1\nbroker.heartbeat.interval.ms=20\n",
             fx.ctl_port, listeners, dir);
    char err[512];
    kl_config_free(fx.cfg);
    fx.cfg = kl_config_new(kcfg_schema());
    ck_assert_ptr_nonnull(fx.cfg);
    ck_assert_msg(kl_config_load_string(fx.cfg, "test", text, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(kl_config_validate(fx.cfg, err, sizeof err) == 0, "%s", err);
}

static void setup(void)
{
    kl_tmpdir_setup();
    memset(&fx, 0, sizeof fx);
    fx.loop = net_loop_new(0);
    ck_assert_ptr_nonnull(fx.loop);
    ck_assert_int_eq(net_listen(fx.loop, "PLAINTEXT://127.0.0.1:0", NULL, on_ctl_request, NULL, NULL, &fx.ctl_port), 0);
    ck_assert_int_eq(net_listen(fx.loop, "PLAINTEXT://127.0.0.1:0", NULL, on_broker_request, on_broker_conn_closed,
                                NULL, &fx.broker_port),
                     0);
    fx.guard = evtimer_new(net_loop_base(fx.loop), on_guard, NULL);
    struct timeval tv = {GUARD_MS / 1000, 0};
    evtimer_add(fx.guard, &tv);
}

static void teardown(void)
{
    broker_close(fx.broker);
    fx.broker = NULL;
    if (fx.client) net_peer_free(fx.client);
    event_free(fx.guard);
    net_loop_free(fx.loop);
    kl_config_free(fx.cfg);
    kl_tmpdir_teardown();
}

/* Opens the broker advertising its test listener, with the fake controller as voter 1. */
static void open_broker(script_fn script)
{
    char listeners[64], err[512];
    snprintf(listeners, sizeof listeners, "PLAINTEXT://127.0.0.1:%d", fx.broker_port);
    set_config(listeners);
    fx.script = script;
    ck_assert_msg(broker_open(fx.loop, fx.cfg, dir, "test-cluster", NULL, &fx.broker, err, sizeof err) == 0, "%s", err);
}

static void run(void)
{
    net_loop_run(fx.loop);
    ck_assert_msg(!fx.timed_out, "the scenario did not finish within %d ms", GUARD_MS);
}

static void client_send(uint32_t api, wire_msg_t *req, net_response_cb cb)
{
    if (!fx.client) fx.client = net_peer_new(fx.loop, "127.0.0.1", fx.broker_port, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(fx.client);
    req->api = api;
    ck_assert_int_eq(net_request(fx.client, req, 5000, cb, NULL), 0);
}

static void answer_registration(net_conn_id_t conn, const wire_msg_t *req, int64_t epoch)
{
    wire_msg_t resp;
    wire_msg_init(&resp, req->api, true, req->correlation_id);
    resp.body.broker_registration_resp.broker_epoch = epoch;
    ctl_reply(conn, &resp);
}

static void answer_heartbeat(net_conn_id_t conn, const wire_msg_t *req, int err, bool shutting_down, bool now)
{
    wire_msg_t resp;
    wire_msg_init(&resp, req->api, true, req->correlation_id);
    resp.error = err;
    resp.body.broker_heartbeat_resp = (wire_broker_heartbeat_resp_t){true, shutting_down, now};
    ctl_reply(conn, &resp);
}

/* ---- registration and heartbeats ------------------------------------------------ */

static void script_reregister(net_conn_id_t conn, const wire_msg_t *req)
{
    if (req->api == WIRE_API_BROKER_REGISTRATION) {
        const wire_broker_registration_req_t *r = &req->body.broker_registration;
        ck_assert_int_eq(r->broker_id, 101);
        ck_assert_int_eq(r->n_listeners, 1);
        ck_assert_str_eq(r->listeners[0].name, "PLAINTEXT");
        ck_assert_str_eq(r->listeners[0].host, "127.0.0.1");
        ck_assert_int_eq(r->listeners[0].port, fx.broker_port);
        ck_assert_str_eq(r->rack, "r1");
        static const uint8_t zero[KL_UUID_LEN];
        ck_assert_mem_ne(r->incarnation, zero, KL_UUID_LEN);
        if (fx.regs++ == 0) memcpy(fx.incarnation, r->incarnation, KL_UUID_LEN);
        else ck_assert_mem_eq(r->incarnation, fx.incarnation, KL_UUID_LEN); /* one incarnation per process */
        answer_registration(conn, req, fx.regs == 1 ? 7 : 9);
    } else if (req->api == WIRE_API_BROKER_HEARTBEAT) {
        const wire_broker_heartbeat_req_t *h = &req->body.broker_heartbeat;
        ck_assert_int_eq(h->broker_id, 101);
        ck_assert_int_eq(h->metadata_offset, -1); /* nothing applied: the fake serves no metadata log */
        ck_assert(!h->want_shutdown);
        fx.hbs++;
        if (h->broker_epoch == 7) {
            answer_heartbeat(conn, req, KL_EFENCED, false, false); /* stale: register again */
        } else {
            ck_assert_int_eq(h->broker_epoch, 9);
            answer_heartbeat(conn, req, 0, false, false);
            net_loop_stop(fx.loop);
        }
    }
}

START_TEST(test_a_broker_registers_heartbeats_and_registers_again_when_its_epoch_is_refused)
{
    open_broker(script_reregister);
    run();
    ck_assert_int_eq(fx.regs, 2);
    ck_assert_int_eq(fx.hbs, 2);
}
END_TEST

static void on_shutdown_done(void *arg)
{
    (void)arg;
    fx.shutdown_done = true;
    net_loop_stop(fx.loop);
}

static void script_shutdown(net_conn_id_t conn, const wire_msg_t *req)
{
    if (req->api == WIRE_API_BROKER_REGISTRATION) {
        fx.regs++;
        answer_registration(conn, req, 3);
        return;
    }
    ck_assert_int_eq(req->api, WIRE_API_BROKER_HEARTBEAT);
    ck_assert_msg(!fx.shutdown_done, "a heartbeat after the shutdown finished");
    const wire_broker_heartbeat_req_t *h = &req->body.broker_heartbeat;
    ck_assert_int_eq(h->broker_epoch, 3);
    if (!h->want_shutdown) {
        ck_assert_int_eq(fx.shutdown_hbs, 0);
        answer_heartbeat(conn, req, 0, false, false);
        if (fx.hbs++ == 0) broker_shutdown(fx.broker, on_shutdown_done, NULL);
        return;
    }
    /* the first asks to move leaderships, the next finds them moved */
    fx.shutdown_hbs++;
    answer_heartbeat(conn, req, 0, true, fx.shutdown_hbs == 2);
}

START_TEST(test_controlled_shutdown_heartbeats_with_want_shutdown_until_the_controller_says_shutdown_now)
{
    open_broker(script_shutdown);
    run();
    ck_assert(fx.shutdown_done);
    ck_assert_int_eq(fx.shutdown_hbs, 2);
}
END_TEST

START_TEST(test_an_unregistered_broker_shuts_down_at_once)
{
    open_broker(script_shutdown);
    broker_shutdown(fx.broker, on_shutdown_done, NULL);
    ck_assert(fx.shutdown_done);
    ck_assert_int_eq(fx.regs, 0);
}
END_TEST

/* ---- admin forwarding ---------------------------------------------------------------- */

static void script_create(net_conn_id_t conn, const wire_msg_t *req)
{
    if (req->api != WIRE_API_CREATE_TOPIC) return; /* registration stays unanswered */
    const wire_create_topic_req_t *r = &req->body.create_topic;
    ck_assert_str_eq(r->name, "orders");
    ck_assert_int_eq(r->partitions, 3);
    ck_assert_int_eq(r->replication_factor, 2);
    ck_assert_int_eq(r->n_configs, 1);
    ck_assert_str_eq(r->configs[0].key, "retention.ms");
    fx.creates++;
    wire_msg_t resp;
    wire_msg_init(&resp, req->api, true, req->correlation_id);
    memset(resp.body.create_topic_resp.topic_id, 0x42, KL_UUID_LEN);
    resp.body.create_topic_resp.partitions = 3;
    resp.body.create_topic_resp.replication_factor = 2;
    ctl_reply(conn, &resp);
}

static void on_created(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p, (void)arg;
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(resp->error, 0);
    ck_assert_int_eq(resp->api, WIRE_API_CREATE_TOPIC);
    ck_assert_int_eq(resp->body.create_topic_resp.partitions, 3);
    ck_assert_int_eq(resp->body.create_topic_resp.topic_id[0], 0x42);
    fx.answers++;
    wire_msg_free(resp);
    net_loop_stop(fx.loop);
}

START_TEST(test_admin_requests_are_forwarded_to_the_controller_and_its_answer_relayed)
{
    open_broker(script_create);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_CREATE_TOPIC, false, 0);
    snprintf(req.body.create_topic.name, sizeof req.body.create_topic.name, "orders");
    req.body.create_topic.partitions = 3;
    req.body.create_topic.replication_factor = 2;
    req.body.create_topic.n_configs = 1;
    snprintf(req.body.create_topic.configs[0].key, sizeof req.body.create_topic.configs[0].key, "retention.ms");
    snprintf(req.body.create_topic.configs[0].value, sizeof req.body.create_topic.configs[0].value, "1000");
    client_send(WIRE_API_CREATE_TOPIC, &req, on_created);
    run();
    ck_assert_int_eq(fx.creates, 1);
    ck_assert_int_eq(fx.answers, 1);
}
END_TEST

/* ---- producer ids ------------------------------------------------------------------- */

static void on_pid(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p, (void)arg;
    ck_assert_int_eq(err, 0);
    ck_assert_msg(resp->error == 0, "%s: %s", kl_errname(resp->error), resp->error_message);
    ck_assert_int_eq(resp->body.init_producer_id_resp.producer_epoch, 0);
    fx.pids[fx.answers++] = resp->body.init_producer_id_resp.producer_id;
    wire_msg_free(resp);
    if (fx.answers == 3) net_loop_stop(fx.loop);
}

static void script_pids(net_conn_id_t conn, const wire_msg_t *req)
{
    wire_msg_t resp;
    wire_msg_init(&resp, req->api, true, req->correlation_id);
    switch (req->api) {
    case WIRE_API_BROKER_REGISTRATION: answer_registration(conn, req, 5); return;
    case WIRE_API_BROKER_HEARTBEAT:
        /* registered: now three producers ask, and a block holds two ids */
        if (fx.hbs++ == 0)
            for (int i = 0; i < 3; i++) {
                wire_msg_t ip;
                wire_msg_init(&ip, WIRE_API_INIT_PRODUCER_ID, false, 0);
                client_send(WIRE_API_INIT_PRODUCER_ID, &ip, on_pid);
            }
        answer_heartbeat(conn, req, 0, false, false);
        return;
    case WIRE_API_ALLOCATE_PRODUCER_IDS:
        ck_assert_int_eq(req->body.allocate_producer_ids.broker_id, 101);
        ck_assert_int_eq(req->body.allocate_producer_ids.broker_epoch, 5);
        resp.body.allocate_producer_ids_resp.first_id = fx.allocs++ == 0 ? 1000 : 5000;
        resp.body.allocate_producer_ids_resp.size = 2;
        ctl_reply(conn, &resp);
        return;
    default: ck_abort_msg("unexpected %s", wire_api_name(req->api));
    }
}

START_TEST(test_producer_ids_come_from_blocks_and_the_next_block_is_fetched_when_one_runs_out)
{
    open_broker(script_pids);
    run();
    ck_assert_int_eq(fx.allocs, 2);
    ck_assert_int_eq(fx.pids[0], 1000);
    ck_assert_int_eq(fx.pids[1], 1001);
    ck_assert_int_eq(fx.pids[2], 5000);
}
END_TEST

/* ---- answers from the broker itself -------------------------------------------------- */

static void script_silent(net_conn_id_t conn, const wire_msg_t *req) { (void)conn, (void)req; }

static void on_local_answer(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p, (void)arg;
    ck_assert_int_eq(err, 0);
    switch (resp->api) {
    case WIRE_API_METADATA:
        /* not registered, so nothing of the metadata log applied: not "no such topic" */
        ck_assert_int_eq(resp->error, KL_ENOTAVAILABLE);
        break;
    case WIRE_API_API_VERSIONS:
        ck_assert_int_eq(resp->error, 0);
        ck_assert(resp->body.api_versions.supported[WIRE_API_METADATA]);
        break;
    case WIRE_API_DESCRIBE_QUORUM: ck_assert_int_eq(resp->error, KL_EUNSUPPORTED); break;
    case WIRE_API_INIT_PRODUCER_ID: ck_assert_int_eq(resp->error, KL_ENOTCONTROLLER); break; /* not registered */
    default: ck_abort_msg("unexpected %s", wire_api_name(resp->api));
    }
    wire_msg_free(resp);
    if (++fx.answers == 4) net_loop_stop(fx.loop);
}

START_TEST(test_versions_and_refusals_are_answered_by_the_broker_itself_metadata_only_once_caught_up)
{
    open_broker(script_silent);
    char names[1][META_MAX_TOPIC_NAME_LEN + 1] = {"nope"};
    static const uint32_t apis[] = {WIRE_API_METADATA, WIRE_API_API_VERSIONS, WIRE_API_DESCRIBE_QUORUM,
                                    WIRE_API_INIT_PRODUCER_ID};
    for (int i = 0; i < 4; i++) {
        wire_msg_t req;
        wire_msg_init(&req, apis[i], false, 0);
        if (apis[i] == WIRE_API_METADATA) {
            req.body.metadata.topics = names;
            req.body.metadata.n_topics = 1;
        }
        client_send(apis[i], &req, on_local_answer);
    }
    run();
    ck_assert_int_eq(fx.answers, 4);
}
END_TEST

/* ---- listener config ------------------------------------------------------------------ */

static void assert_refused(const char *listeners, const char *why)
{
    set_config(listeners);
    char err[512] = "";
    broker_t *b = NULL;
    ck_assert_int_eq(broker_open(fx.loop, fx.cfg, dir, "test-cluster", NULL, &b, err, sizeof err), KL_ECONFIG);
    ck_assert_ptr_null(b);
    ck_assert_msg(strstr(err, why) != NULL, "'%s' does not say '%s'", err, why);
}

START_TEST(test_a_broker_refuses_listeners_it_cannot_advertise)
{
    assert_refused("PLAINTEXT://0.0.0.0:9092", "wildcard");
    assert_refused("PLAINTEXT://[::]:9092", "wildcard");
    assert_refused("PLAINTEXT://127.0.0.1:0", "port 0");
    assert_refused("PLAINTEXT://127.0.0.1:9092,PLAINTEXT://127.0.0.2:9093", "more than one PLAINTEXT");
}
END_TEST

static Suite *broker_suite(void)
{
    Suite *s = suite_create("broker");
    TCase *tc = tcase_create("node");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_a_broker_registers_heartbeats_and_registers_again_when_its_epoch_is_refused);
    tcase_add_test(tc, test_controlled_shutdown_heartbeats_with_want_shutdown_until_the_controller_says_shutdown_now);
    tcase_add_test(tc, test_an_unregistered_broker_shuts_down_at_once);
    tcase_add_test(tc, test_admin_requests_are_forwarded_to_the_controller_and_its_answer_relayed);
    tcase_add_test(tc, test_producer_ids_come_from_blocks_and_the_next_block_is_fetched_when_one_runs_out);
    tcase_add_test(tc, test_versions_and_refusals_are_answered_by_the_broker_itself_metadata_only_once_caught_up);
    tcase_add_test(tc, test_a_broker_refuses_listeners_it_cannot_advertise);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kl_tmpdir_run(broker_suite(), "broker"); }
