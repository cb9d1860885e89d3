/* test_controller.c — the controller service for real: single-voter (and one
 * two-voter) controllers on a net loop over formatted temp dirs, driven by
 * brokers and admin clients over loopback connections. Every wait drives the
 * loop until a condition holds, bounded by DRIVE_LIMIT_MS. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "keel/controller.h"
#include "keel/err.h"
#include "keel/kcfg.h"
#include "keel/metaprops.h"
#include "keel/net.h"
#include "keel/quorum.h"
#include "keel/uuid.h"
#include "unit/kl_tmpdir.h"

#define DRIVE_LIMIT_MS 15000 /* a hung test fails instead of hanging */
#define DRIVE_TICK_MS 10
#define REQ_TIMEOUT_MS 5000
#define GRACE_MS 100         /* broker.session.disconnect.grace.ms in these tests */
#define MAX_NODES 2

/* ---- the loop ----------------------------------------------------------------------- */

static net_loop_t *loop;

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
}

/* Runs the loop until cond holds (or DRIVE_LIMIT_MS passes, which fails). */
#define DRIVE(cond)                                                                               \
    do {                                                                                          \
        struct event_base *b_ = net_loop_base(loop);                                              \
        struct event *t_ = event_new(b_, -1, EV_PERSIST, tick_cb, NULL);                          \
        struct timeval tv_ = {0, DRIVE_TICK_MS * 1000};                                           \
        event_add(t_, &tv_);                                                                      \
        int64_t dl_ = net_now_ms() + DRIVE_LIMIT_MS;                                              \
        while (!(cond) && net_now_ms() < dl_) event_base_loop(b_, EVLOOP_ONCE);                   \
        event_free(t_);                                                                           \
        ck_assert_msg((cond), "timed out waiting for: %s", #cond);                                \
    } while (0)

/* ---- controllers -------------------------------------------------------------------- */

typedef struct node {
    int32_t id;
    int port;
    char dir[192];
    kl_config_t *cfg;
    controller_t *ctl;
} node_t;

static node_t nodes[MAX_NODES];
static char cluster_id[KL_UUID_STR_LEN + 1];

static void on_request(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg)
{
    (void)l;
    node_t *n = arg;
    if (n->ctl) controller_on_request(n->ctl, conn, req);
    else wire_msg_free(req);
}

static void on_closed(net_loop_t *l, net_conn_id_t conn, void *arg)
{
    (void)l;
    node_t *n = arg;
    if (n->ctl) controller_on_conn_closed(n->ctl, conn);
}

static void setup(void)
{
    kl_tmpdir_setup();
    loop = net_loop_new(0);
    ck_assert_ptr_nonnull(loop);
    uint8_t u[KL_UUID_LEN];
    ck_assert_int_eq(kl_uuid_random(u), 0);
    kl_uuid_to_string(u, cluster_id);
    for (int i = 0; i < MAX_NODES; i++) {
        node_t *n = &nodes[i];
        *n = (node_t){.id = i + 1};
        /* the listener comes first: its port goes into controller.quorum.voters */
        ck_assert_int_eq(net_listen(loop, "PLAINTEXT://127.0.0.1:0", NULL, on_request, on_closed, n, &n->port), 0);
        snprintf(n->dir, sizeof n->dir, "%s/n%d", dir, n->id);
        metaprops_t mp = {.node_id = n->id};
        snprintf(mp.cluster_id, sizeof mp.cluster_id, "%s", cluster_id);
        ck_assert_int_eq(kl_uuid_random(mp.directory_id), 0);
        ck_assert_int_eq(metaprops_write(n->dir, &mp), 0);
    }
}

static void stop_node(node_t *n)
{
    controller_close(n->ctl);
    n->ctl = NULL;
    kl_config_free(n->cfg);
    n->cfg = NULL;
}

static void teardown(void)
{
    for (int i = 0; i < MAX_NODES; i++) stop_node(&nodes[i]);
    net_loop_free(loop); /* and the brokers' peers */
    kl_tmpdir_teardown();
}

/* Opens node n as a voter of the first n_voters nodes; extra: "key=value"
 * lines that override the defaults below. Returns controller_open's code;
 * err says why. */
static int open_node(node_t *n, int n_voters, const char *extra, char *err, size_t errlen)
{
    char voters[256] = "", text[2048];
    for (int i = 0; i < n_voters; i++)
        snprintf(voters + strlen(voters), sizeof voters - strlen(voters), "%s%d@127.0.0.1:%d", i ? "," : "",
                 nodes[i].id, nodes[i].port);
    snprintf(text, sizeof text,
             "process.roles=controller\nnode.id=%d\ncontroller.quorum.voters=%s\n"
             "listeners=PLAINTEXT://127.0.0.1:%d\nlog.dirs=%s\n"
             "controller.quorum.election.timeout.ms=100\ncontroller.quorum.fetch.timeout.ms=200\n"
             "metadata.max.idle.interval.ms=0\nbroker.session.timeout.ms=600000\n"
             "broker.session.disconnect.grace.ms=%d\nauto.leader.rebalance.enable=false\n",
             n->id, voters, n->port, n->dir, GRACE_MS);
    n->cfg = kl_config_new(kcfg_schema());
    ck_assert_ptr_nonnull(n->cfg);
    ck_assert_msg(kl_config_load_string(n->cfg, "test", text, err, errlen) == 0, "%s", err);
    char over[256];
    for (const char *p = extra, *e; p && *p; p = *e ? e + 1 : e) {
        e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        snprintf(over, sizeof over, "%.*s", (int)(e - p), p);
        ck_assert_msg(kl_config_set(n->cfg, over, err, errlen) == 0, "%s", err);
    }
    ck_assert_msg(kl_config_validate(n->cfg, err, errlen) == 0, "%s", err);
    int rc = controller_open(loop, n->cfg, n->dir, cluster_id, NULL, &n->ctl, err, errlen);
    if (rc) {
        kl_config_free(n->cfg);
        n->cfg = NULL;
    }
    return rc;
}

/* A single-voter controller (node 1), active and ready to decide. */
static controller_t *start_single(const char *extra)
{
    char err[512];
    int rc = open_node(&nodes[0], 1, extra, err, sizeof err);
    ck_assert_msg(rc == 0, "controller_open: %s (%s)", kl_strerror(rc), err);
    DRIVE(controller_active(nodes[0].ctl));
    return nodes[0].ctl;
}

/* ---- clients -------------------------------------------------------------------- */

typedef struct call {
    bool done;
    int err;
    wire_msg_t *resp;
} call_t;

static void on_response(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    call_t *c = arg;
    c->done = true;
    c->err = err;
    c->resp = resp;
}

static net_peer_t *connect_to(const node_t *n)
{
    net_peer_t *p = net_peer_new(loop, "127.0.0.1", n->port, NULL, NULL, NULL);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Sends req and drives the loop until its answer arrives; the caller frees it. */
static wire_msg_t *call(net_peer_t *p, wire_msg_t *req)
{
    call_t c = {0};
    ck_assert_int_eq(net_request(p, req, REQ_TIMEOUT_MS, on_response, &c), 0);
    DRIVE(c.done);
    ck_assert_msg(c.err == 0, "%s to %s failed: %s", wire_api_name(req->api), net_peer_name(p), kl_strerror(c.err));
    ck_assert_int_eq(c.resp->api, req->api);
    return c.resp;
}

/* Answers that only matter by their error code. */
static int call_rc(net_peer_t *p, wire_msg_t *req)
{
    wire_msg_t *r = call(p, req);
    int rc = r->error;
    wire_msg_free(r);
    return rc;
}

typedef struct broker {
    int32_t id;
    uint8_t incarnation[KL_UUID_LEN];
    int64_t epoch;
    net_peer_t *peer; /* its own connection to the controller */
} broker_t;

static int register_broker(broker_t *b)
{
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_BROKER_REGISTRATION, false, 0);
    wire_broker_registration_req_t *r = &req.body.broker_registration;
    r->broker_id = b->id;
    memcpy(r->incarnation, b->incarnation, KL_UUID_LEN);
    ck_assert_int_eq(meta_listener_set(&r->listeners[0], "PLAINTEXT", "127.0.0.1", 9000 + b->id), 0);
    r->n_listeners = 1;
    wire_msg_t *resp = call(b->peer, &req);
    int rc = resp->error;
    if (rc == 0) b->epoch = resp->body.broker_registration_resp.broker_epoch;
    wire_msg_free(resp);
    return rc;
}

/* Heartbeat; returns the answer's error and fills *out on success. */
static int heartbeat(const broker_t *b, int64_t metadata_offset, bool want_fence, wire_broker_heartbeat_resp_t *out)
{
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_BROKER_HEARTBEAT, false, 0);
    req.body.broker_heartbeat = (wire_broker_heartbeat_req_t){b->id, b->epoch, metadata_offset, want_fence, false};
    wire_msg_t *resp = call(b->peer, &req);
    int rc = resp->error;
    if (rc == 0 && out) *out = resp->body.broker_heartbeat_resp;
    wire_msg_free(resp);
    return rc;
}

static const meta_broker_t *image_broker(int32_t id)
{
    const meta_broker_t *b = meta_image_broker(controller_image(nodes[0].ctl), id);
    ck_assert_ptr_nonnull(b);
    return b;
}

/* A registered broker that has caught up and is unfenced. */
static void start_broker(broker_t *b, int32_t id)
{
    *b = (broker_t){.id = id, .peer = connect_to(&nodes[0])};
    ck_assert_int_eq(kl_uuid_random(b->incarnation), 0);
    ck_assert_int_eq(register_broker(b), 0);
    wire_broker_heartbeat_resp_t hb;
    ck_assert_int_eq(heartbeat(b, b->epoch, false, &hb), 0);
    ck_assert(!hb.fenced);
    ck_assert_int_eq(image_broker(id)->state, META_BROKER_ACTIVE);
}

static int create_topic(net_peer_t *p, const char *name, int32_t partitions, int32_t rf,
                        wire_create_topic_resp_t *out)
{
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_CREATE_TOPIC, false, 0);
    snprintf(req.body.create_topic.name, sizeof req.body.create_topic.name, "%s", name);
    req.body.create_topic.partitions = partitions;
    req.body.create_topic.replication_factor = rf;
    wire_msg_t *resp = call(p, &req);
    int rc = resp->error;
    if (rc == 0 && out) *out = resp->body.create_topic_resp;
    wire_msg_free(resp);
    return rc;
}

static const meta_topic_t *image_topic(const char *name)
{
    const meta_topic_t *t = meta_image_topic(controller_image(nodes[0].ctl), name);
    ck_assert_msg(t != NULL, "topic %s is not in the committed image", name);
    return t;
}

static int alter_isr(const broker_t *b, const meta_partition_t *p, int32_t partition_epoch, const int32_t *isr,
                     int n_isr, wire_alter_partition_resp_t *out)
{
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_ALTER_PARTITION, false, 0);
    wire_alter_partition_req_t *r = &req.body.alter_partition;
    r->broker_id = b->id;
    r->broker_epoch = b->epoch;
    memcpy(r->topic_id, p->topic, KL_UUID_LEN);
    r->partition = p->partition;
    r->leader_epoch = p->leader_epoch;
    r->partition_epoch = partition_epoch;
    memcpy(r->isr, isr, (size_t)n_isr * sizeof *isr);
    r->n_isr = n_isr;
    wire_msg_t *resp = call(b->peer, &req);
    int rc = resp->error;
    if (rc == 0 && out) *out = resp->body.alter_partition_resp;
    wire_msg_free(resp);
    return rc;
}

/* ---- brokers ------------------------------------------------------------------------ */

START_TEST(registration_answers_the_offset_of_the_registration_record_as_broker_epoch)
{
    start_single(NULL);
    /* A fresh log holds only the leader-change record at offset 0, and no
     * no-ops are written (idle interval 0): registrations land at 1 and 2. */
    broker_t a = {.id = 1, .peer = connect_to(&nodes[0])}, b = {.id = 2, .peer = connect_to(&nodes[0])};
    ck_assert_int_eq(kl_uuid_random(a.incarnation), 0);
    ck_assert_int_eq(kl_uuid_random(b.incarnation), 0);
    ck_assert_int_eq(register_broker(&a), 0);
    ck_assert_int_eq(a.epoch, 1);
    ck_assert_int_eq(register_broker(&b), 0);
    ck_assert_int_eq(b.epoch, 2);
    /* committed before the answer: the image already holds both, fenced */
    ck_assert_int_eq(image_broker(1)->epoch, 1);
    ck_assert_int_eq(image_broker(2)->state, META_BROKER_FENCED);
    /* the same incarnation again is a retry: the same epoch, no new record */
    ck_assert_int_eq(register_broker(&a), 0);
    ck_assert_int_eq(a.epoch, 1);
    broker_t c = {.id = 3, .peer = a.peer};
    ck_assert_int_eq(kl_uuid_random(c.incarnation), 0);
    ck_assert_int_eq(register_broker(&c), 0);
    ck_assert_int_eq(c.epoch, 3);
}
END_TEST

START_TEST(a_heartbeat_from_a_broker_caught_up_to_its_registration_unfences_it)
{
    start_single(NULL);
    broker_t b = {.id = 7, .peer = connect_to(&nodes[0])};
    ck_assert_int_eq(kl_uuid_random(b.incarnation), 0);
    ck_assert_int_eq(register_broker(&b), 0);
    wire_broker_heartbeat_resp_t hb;
    ck_assert_int_eq(heartbeat(&b, b.epoch - 1, false, &hb), 0);
    ck_assert(hb.fenced);
    ck_assert_int_eq(image_broker(7)->state, META_BROKER_FENCED);
    ck_assert_int_eq(heartbeat(&b, b.epoch, false, &hb), 0);
    ck_assert(!hb.fenced);
    ck_assert_int_eq(image_broker(7)->state, META_BROKER_ACTIVE);
    /* a stale broker epoch must register again */
    broker_t stale = b;
    stale.epoch = b.epoch - 1;
    ck_assert_int_eq(heartbeat(&stale, b.epoch, false, NULL), KL_EFENCED);
}
END_TEST

START_TEST(closing_a_brokers_connection_fences_it_after_the_grace_not_the_session)
{
    start_single(NULL);
    broker_t a, b;
    start_broker(&a, 1);
    start_broker(&b, 2);
    net_peer_t *admin = connect_to(&nodes[0]);
    ck_assert_int_eq(create_topic(admin, "t", 2, 2, NULL), 0);
    int64_t closed_at = net_now_ms();
    net_peer_free(a.peer); /* like kill -9: the connection just breaks */
    DRIVE(image_broker(1)->state == META_BROKER_FENCED);
    ck_assert_int_ge(net_now_ms() - closed_at, GRACE_MS);
    ck_assert_int_eq(image_broker(2)->state, META_BROKER_ACTIVE); /* its connection is open */
    const meta_topic_t *t = image_topic("t");
    for (int i = 0; i < t->n_parts; i++) {
        ck_assert_int_eq(t->parts[i].leader, 2);
        ck_assert_int_eq(t->parts[i].n_isr, 1);
        ck_assert_int_eq(t->parts[i].isr[0], 2);
    }
}
END_TEST

/* After every node restarts, the new controller gives each registered broker a
 * full session (it cannot know who is alive). A restarted broker's new
 * incarnation must not wait that session out (10 minutes here): the old one
 * has no connection to this controller, so it is fenced after the grace. */
START_TEST(a_new_incarnation_after_a_controller_restart_waits_the_grace_not_the_session)
{
    start_single(NULL);
    broker_t old;
    start_broker(&old, 1);
    net_peer_free(old.peer); /* the whole cluster is killed */
    stop_node(&nodes[0]);
    start_single(NULL);
    ck_assert_int_eq(image_broker(1)->state, META_BROKER_ACTIVE);

    broker_t b = {.id = 1, .peer = connect_to(&nodes[0])};
    ck_assert_int_eq(kl_uuid_random(b.incarnation), 0);
    ck_assert_int_eq(register_broker(&b), KL_EEXIST); /* Kafka's DUPLICATE_BROKER_REGISTRATION, for now */
    DRIVE(image_broker(1)->state == META_BROKER_FENCED);
    ck_assert_int_eq(register_broker(&b), 0);
    ck_assert_int_gt(b.epoch, old.epoch);
}
END_TEST

/* ...but an old incarnation that heartbeats to this controller is alive: a
 * second process with its id keeps being refused (two brokers, one id). */
START_TEST(a_new_incarnation_is_refused_while_the_old_one_heartbeats_here)
{
    start_single(NULL);
    broker_t old;
    start_broker(&old, 1);
    stop_node(&nodes[0]);
    start_single(NULL);
    ck_assert_int_eq(heartbeat(&old, old.epoch, false, NULL), 0); /* reconnected to the new controller */

    broker_t b = {.id = 1, .peer = connect_to(&nodes[0])};
    ck_assert_int_eq(kl_uuid_random(b.incarnation), 0);
    ck_assert_int_eq(register_broker(&b), KL_EEXIST);
    const int64_t until = net_now_ms() + 3 * GRACE_MS;
    DRIVE(net_now_ms() >= until);
    ck_assert_int_eq(image_broker(1)->state, META_BROKER_ACTIVE);
    ck_assert_int_eq(image_broker(1)->epoch, old.epoch);
    ck_assert_int_eq(register_broker(&b), KL_EEXIST);
}
END_TEST

/* ---- topics and partitions ----------------------------------------------------------- */

START_TEST(a_topic_with_replication_factor_one_is_led_by_the_only_broker)
{
    start_single(NULL);
    broker_t b;
    start_broker(&b, 5);
    net_peer_t *admin = connect_to(&nodes[0]);
    wire_create_topic_resp_t cr;
    ck_assert_int_eq(create_topic(admin, "orders", 3, 1, &cr), 0);
    ck_assert_int_eq(cr.partitions, 3);
    ck_assert_int_eq(cr.replication_factor, 1);
    const meta_topic_t *t = image_topic("orders");
    ck_assert_mem_eq(t->uuid, cr.topic_id, KL_UUID_LEN);
    ck_assert_int_eq(t->n_parts, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(t->parts[i].leader, 5);
        ck_assert_int_eq(t->parts[i].n_replicas, 1);
        ck_assert_int_eq(t->parts[i].n_isr, 1);
        ck_assert_int_eq(t->parts[i].isr[0], 5);
    }
    ck_assert_int_eq(create_topic(admin, "orders", 1, 1, NULL), KL_EEXIST);
    ck_assert_int_eq(create_topic(admin, "wide", 1, 2, NULL), KL_EINVAL); /* one active broker */
    ck_assert_ptr_null(meta_image_topic(controller_image(nodes[0].ctl), "wide"));
}
END_TEST

START_TEST(a_deleted_topic_is_gone_and_deleting_it_again_is_unknown)
{
    start_single(NULL);
    broker_t b;
    start_broker(&b, 1);
    net_peer_t *admin = connect_to(&nodes[0]);
    wire_create_topic_resp_t cr;
    ck_assert_int_eq(create_topic(admin, "gone", 2, 1, &cr), 0);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_DELETE_TOPIC, false, 0);
    snprintf(req.body.delete_topic.name, sizeof req.body.delete_topic.name, "gone");
    wire_msg_t *resp = call(admin, &req);
    ck_assert_int_eq(resp->error, 0);
    ck_assert_mem_eq(resp->body.delete_topic_resp.topic_id, cr.topic_id, KL_UUID_LEN);
    wire_msg_free(resp);
    ck_assert_ptr_null(meta_image_topic(controller_image(nodes[0].ctl), "gone"));
    ck_assert_int_eq(call_rc(admin, &req), KL_EUNKNOWNPARTITION);
}
END_TEST

START_TEST(alter_partition_with_a_stale_partition_epoch_is_fenced)
{
    start_single(NULL);
    broker_t br[2];
    start_broker(&br[0], 1);
    start_broker(&br[1], 2);
    ck_assert_int_eq(create_topic(br[0].peer, "isr", 1, 2, NULL), 0);
    meta_partition_t p = image_topic("isr")->parts[0];
    ck_assert_int_eq(p.n_isr, 2);
    const broker_t *leader = &br[p.leader == 1 ? 0 : 1];
    int32_t shrunk[] = {p.leader};
    wire_alter_partition_resp_t ar;
    ck_assert_int_eq(alter_isr(leader, &p, p.partition_epoch, shrunk, 1, &ar), 0);
    ck_assert_int_eq(ar.n_isr, 1);
    ck_assert_int_eq(ar.isr[0], p.leader);
    ck_assert_int_eq(ar.partition_epoch, p.partition_epoch + 1);
    ck_assert_int_eq(ar.leader_epoch, p.leader_epoch);
    /* the same leader again with the epoch it had before: stale */
    ck_assert_int_eq(alter_isr(leader, &p, p.partition_epoch, p.isr, p.n_isr, NULL), KL_EFENCED);
    const meta_partition_t *now = &image_topic("isr")->parts[0];
    ck_assert_int_eq(now->n_isr, 1);
    ck_assert_int_eq(now->partition_epoch, p.partition_epoch + 1);
}
END_TEST

START_TEST(a_preferred_election_moves_leadership_back_to_the_first_replica)
{
    start_single(NULL);
    broker_t br[2];
    start_broker(&br[0], 1);
    start_broker(&br[1], 2);
    ck_assert_int_eq(create_topic(br[0].peer, "pref", 1, 2, NULL), 0);
    meta_partition_t p = image_topic("pref")->parts[0];
    broker_t *pref = &br[p.replicas[0] == 1 ? 0 : 1], *other = &br[p.replicas[0] == 1 ? 1 : 0];
    ck_assert_int_eq(p.leader, pref->id);
    /* the preferred broker steps out and comes back: the other keeps the lead */
    wire_broker_heartbeat_resp_t hb;
    ck_assert_int_eq(heartbeat(pref, pref->epoch, true, &hb), 0);
    ck_assert(hb.fenced);
    ck_assert_int_eq(heartbeat(pref, pref->epoch, false, &hb), 0);
    ck_assert(!hb.fenced);
    p = image_topic("pref")->parts[0];
    ck_assert_int_eq(p.leader, other->id);
    int32_t both[] = {p.replicas[0], p.replicas[1]};
    ck_assert_int_eq(alter_isr(other, &p, p.partition_epoch, both, 2, NULL), 0);

    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_ELECT_LEADERS, false, 0);
    snprintf(req.body.elect_leaders.topic, sizeof req.body.elect_leaders.topic, "pref");
    req.body.elect_leaders.preferred = true;
    wire_msg_t *resp = call(other->peer, &req);
    ck_assert_int_eq(resp->error, 0);
    ck_assert_int_eq(resp->body.elect_leaders_resp.partitions_elected, 1);
    ck_assert_msg(resp->body.elect_leaders_resp.message[0], "the answer says what was decided");
    wire_msg_free(resp);
    ck_assert_int_eq(image_topic("pref")->parts[0].leader, pref->id);
    resp = call(other->peer, &req);
    ck_assert_int_eq(resp->error, 0);
    ck_assert_int_eq(resp->body.elect_leaders_resp.partitions_elected, 0);
    wire_msg_free(resp);
    req.body.elect_leaders.preferred = false;
    ck_assert_int_eq(call_rc(other->peer, &req), KL_EINVAL);
}
END_TEST

/* ---- producer ids --------------------------------------------------------------------- */

START_TEST(producer_id_blocks_never_overlap)
{
    start_single(NULL);
    broker_t b;
    start_broker(&b, 1);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_ALLOCATE_PRODUCER_IDS, false, 0);
    req.body.allocate_producer_ids = (wire_allocate_producer_ids_req_t){b.id, b.epoch};
    wire_allocate_producer_ids_resp_t blk[2];
    for (int i = 0; i < 2; i++) {
        wire_msg_t *resp = call(b.peer, &req);
        ck_assert_int_eq(resp->error, 0);
        blk[i] = resp->body.allocate_producer_ids_resp;
        wire_msg_free(resp);
        ck_assert_int_gt(blk[i].size, 0);
    }
    ck_assert_int_ge(blk[1].first_id, blk[0].first_id + blk[0].size);
    req.body.allocate_producer_ids.broker_epoch = b.epoch - 1;
    ck_assert_int_eq(call_rc(b.peer, &req), KL_EFENCED);
}
END_TEST

/* ---- who answers ------------------------------------------------------------------------ */

START_TEST(a_controller_that_is_not_active_redirects_to_the_leader)
{
    char err[512];
    for (int i = 0; i < 2; i++) ck_assert_msg(open_node(&nodes[i], 2, NULL, err, sizeof err) == 0, "%s", err);
    DRIVE(controller_active(nodes[0].ctl) || controller_active(nodes[1].ctl));
    int li = controller_active(nodes[0].ctl) ? 0 : 1;
    broker_t b = {.id = 1, .peer = connect_to(&nodes[1 - li])};
    ck_assert_int_eq(kl_uuid_random(b.incarnation), 0);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_BROKER_REGISTRATION, false, 0);
    req.body.broker_registration.broker_id = 1;
    memcpy(req.body.broker_registration.incarnation, b.incarnation, KL_UUID_LEN);
    ck_assert_int_eq(meta_listener_set(&req.body.broker_registration.listeners[0], "PLAINTEXT", "127.0.0.1", 9001), 0);
    req.body.broker_registration.n_listeners = 1;
    wire_msg_t *resp = call(b.peer, &req);
    ck_assert_int_eq(resp->error, KL_ENOTCONTROLLER);
    ck_assert_int_eq(resp->leader_id, nodes[li].id);
    ck_assert_str_eq(resp->leader_host, "127.0.0.1");
    ck_assert_int_eq(resp->leader_port, nodes[li].port);
    wire_msg_free(resp);
    /* where the hint points, the request is served */
    net_peer_t *to_leader = connect_to(&nodes[li]);
    ck_assert_int_eq(call_rc(to_leader, &req), 0);
}
END_TEST

static void on_stopped(void *arg) { *(bool *)arg = true; }

START_TEST(a_stopping_controller_refuses_with_no_leader_to_retry_with)
{
    controller_t *c = start_single(NULL);
    bool stopped = false;
    controller_shutdown(c, on_stopped, &stopped);
    DRIVE(stopped);
    ck_assert(!controller_active(c));
    net_peer_t *admin = connect_to(&nodes[0]);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_CREATE_TOPIC, false, 0);
    snprintf(req.body.create_topic.name, sizeof req.body.create_topic.name, "late");
    wire_msg_t *resp = call(admin, &req);
    ck_assert_int_eq(resp->error, KL_ENOTCONTROLLER);
    ck_assert_int_eq(resp->leader_id, -1);
    wire_msg_free(resp);
}
END_TEST

/* ---- configuration and restarts ------------------------------------------------------ */

START_TEST(a_disconnect_grace_longer_than_the_session_is_refused_at_open)
{
    char err[512] = "";
    int rc = open_node(&nodes[0], 1, "broker.session.timeout.ms=1000\nbroker.session.disconnect.grace.ms=5000", err,
                       sizeof err);
    ck_assert_int_eq(rc, KL_ECONFIG);
    ck_assert_ptr_null(nodes[0].ctl);
    ck_assert_msg(strstr(err, "broker.session.disconnect.grace.ms") != NULL, "the error names the key: %s", err);
}
END_TEST

/* The end offset of the newest snapshot in node 1's metadata log dir, 0 if none. */
static int64_t newest_snapshot_end(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", nodes[0].dir, QUORUM_LOG_DIR_NAME);
    DIR *d = opendir(path);
    if (!d) return 0;
    int64_t best = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        long long end;
        int epoch, used = 0;
        if (sscanf(e->d_name, "%20lld-%10d.checkpoint%n", &end, &epoch, &used) == 2 && e->d_name[used] == '\0' &&
            end > best)
            best = end;
    }
    closedir(d);
    return best;
}

START_TEST(a_restarted_controller_rebuilds_its_image_from_snapshot_and_log)
{
    /* a snapshot after every change... */
    start_single("metadata.log.max.record.bytes.between.snapshots=1");
    broker_t b;
    start_broker(&b, 1);
    ck_assert_int_eq(create_topic(b.peer, "before", 2, 1, NULL), 0);
    /* registration at epoch, unfence, topic, two partitions: the last at epoch + 4 */
    DRIVE(newest_snapshot_end() >= b.epoch + 5);
    stop_node(&nodes[0]);

    /* ...then none: what follows is only in the log */
    start_single(NULL);
    ck_assert_ptr_nonnull(meta_image_topic(controller_image(nodes[0].ctl), "before"));
    ck_assert_int_eq(create_topic(b.peer, "after", 1, 1, NULL), 0);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_ALLOCATE_PRODUCER_IDS, false, 0);
    req.body.allocate_producer_ids = (wire_allocate_producer_ids_req_t){b.id, b.epoch};
    ck_assert_int_eq(call_rc(b.peer, &req), 0);
    meta_image_t *was;
    ck_assert_int_eq(meta_image_clone(controller_image(nodes[0].ctl), &was), 0);
    int64_t snap = newest_snapshot_end();
    stop_node(&nodes[0]);

    start_single(NULL);
    const meta_image_t *img = controller_image(nodes[0].ctl);
    bool equal = meta_image_equal(was, img);
    meta_image_free(was);
    ck_assert_msg(equal, "the image after the restart differs from the one before");
    ck_assert_int_eq(newest_snapshot_end(), snap); /* it came from the snapshot and the log after it */
    ck_assert_int_eq(meta_image_topic_count(img), 2);
    ck_assert_int_eq(meta_image_broker(img, 1)->epoch, b.epoch);
    ck_assert_int_eq(meta_image_broker(img, 1)->state, META_BROKER_ACTIVE);
    ck_assert_int_eq(create_topic(b.peer, "after", 1, 1, NULL), KL_EEXIST);
}
END_TEST

static Suite *controller_suite(void)
{
    Suite *s = suite_create("controller");
    TCase *tc = tcase_create("service");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, registration_answers_the_offset_of_the_registration_record_as_broker_epoch);
    tcase_add_test(tc, a_heartbeat_from_a_broker_caught_up_to_its_registration_unfences_it);
    tcase_add_test(tc, closing_a_brokers_connection_fences_it_after_the_grace_not_the_session);
    tcase_add_test(tc, a_new_incarnation_after_a_controller_restart_waits_the_grace_not_the_session);
    tcase_add_test(tc, a_new_incarnation_is_refused_while_the_old_one_heartbeats_here);
    tcase_add_test(tc, a_topic_with_replication_factor_one_is_led_by_the_only_broker);
    tcase_add_test(tc, a_deleted_topic_is_gone_and_deleting_it_again_is_unknown);
    tcase_add_test(tc, alter_partition_with_a_stale_partition_epoch_is_fenced);
    tcase_add_test(tc, a_preferred_election_moves_leadership_back_to_the_first_replica);
    tcase_add_test(tc, producer_id_blocks_never_overlap);
    tcase_add_test(tc, a_controller_that_is_not_active_redirects_to_the_leader);
    tcase_add_test(tc, a_stopping_controller_refuses_with_no_leader_to_retry_with);
    tcase_add_test(tc, a_disconnect_grace_longer_than_the_session_is_refused_at_open);
    tcase_add_test(tc, a_restarted_controller_rebuilds_its_image_from_snapshot_and_log);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return kl_tmpdir_run(controller_suite(), "controller"); }
