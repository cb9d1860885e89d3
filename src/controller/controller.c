/* controller.c — the controller role: a voter of the metadata quorum whose
 * state machine is the metadata image; the Raft leader is the active
 * controller (DESIGN.md §1, §3). The active controller decides with the pure
 * core (meta_ctl.h) against a pending image, proposes the records, and
 * answers each request once its records have committed; every controller
 * folds committed records into its image and snapshots it. */
#include "keel/controller.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "keel/err.h"
#include "keel/kcfg.h"
#include "keel/log.h"
#include "keel/meta_ctl.h"
#include "keel/quorum.h"
#include "keel/uuid.h"
#include "keel/wire_meta.h"

#define MOD "controller"

/* What a decided request is answered with, once its records commit. */
typedef union answer {
    wire_broker_registration_resp_t reg;
    wire_broker_heartbeat_resp_t hb;
    wire_alter_partition_resp_t alter;
    wire_allocate_producer_ids_resp_t pids;
    wire_create_topic_resp_t create;
    wire_delete_topic_resp_t del;
    wire_elect_leaders_resp_t elect;
} answer_t;

typedef struct waiter {
    net_conn_id_t conn;
    uint32_t api;
    uint64_t correlation_id;
    int64_t offset; /* answer once the entry at this offset has committed in our epoch */
    int32_t error;
    char message[WIRE_ERRMSG_LEN];
    answer_t a;
} waiter_t;

/* The inbound connection a broker last heartbeat on (§3 fast fencing). */
typedef struct broker_conn {
    int32_t broker_id;
    net_conn_id_t conn;
} broker_conn_t;

struct controller {
    net_loop_t *loop;
    quorum_t *quorum;
    int32_t node_id;
    kcfg_voter_t voters[RAFT_MAX_VOTERS]; /* for the leader's address in redirects */
    int n_voters;
    meta_ctl_config_t mcfg;
    int64_t rebalance_interval_ms;  /* leader.imbalance.check.interval.seconds */
    meta_image_t *image;            /* committed records, applied in order */
    int64_t applied_end;            /* offsets below it are in image */

    /* ---- active controller (Raft leader of `epoch`) ---- */
    bool active;
    int32_t epoch;
    int64_t ready_at;       /* decide nothing before this offset is applied (§3) */
    bool fresh_sessions;    /* on ready: every broker gets one full session */
    meta_image_t *pending;  /* image + records proposed but not committed; NULL = not ready */
    int64_t last_proposed;  /* offset of the last entry proposed in `epoch` */
    int64_t config_commit_at; /* a config record's offset: reconcile once it commits; -1 none */
    bool reconcile_due;
    int64_t next_reconcile_ms;
    int64_t next_rebalance_ms;
    meta_sessions_t sessions;
    broker_conn_t conns[META_MAX_BROKERS];
    int n_conns;
    waiter_t *waiting; /* FIFO ring of CONTROLLER_MAX_WAITING; offsets never decrease */
    int wait_head, n_waiting;

    /* ---- housekeeping ---- */
    struct event *housekeeping_ev;
    int64_t idle_interval_ms;       /* metadata.max.idle.interval.ms */
    quorum_snapshot_policy_t snap;
    int64_t last_append_ms;         /* last time the active controller proposed a record */
    bool stopping;
};

/* ---- answers ---------------------------------------------------------------- */

static void send_reply(controller_t *c, net_conn_id_t conn, const wire_msg_t *resp)
{
    int rc = net_reply(c->loop, conn, resp);
    if (rc) KL_DEBUG(MOD, "reply to %s: %s", net_conn_addr(c->loop, conn), kl_strerror(rc));
}

/* KL_ENOTCONTROLLER with the leader to retry with. A leader that resigned
 * still names itself, which would only send the client back here. */
static void set_not_controller(controller_t *c, wire_msg_t *resp)
{
    const raft_t *r = quorum_raft(c->quorum);
    int32_t leader = raft_leader(r);
    bool loading = leader == c->node_id && raft_role(r) == RAFT_LEADER && !c->stopping;
    if (leader == c->node_id && !loading) leader = RAFT_NO_NODE;
    resp->error = KL_ENOTCONTROLLER;
    resp->leader_id = leader;
    for (int i = 0; i < c->n_voters; i++)
        if (c->voters[i].id == leader) {
            snprintf(resp->leader_host, sizeof resp->leader_host, "%s", c->voters[i].host);
            resp->leader_port = c->voters[i].port;
        }
    if (loading)
        snprintf(resp->error_message, sizeof resp->error_message,
                 "node %d was just elected and is still applying the metadata log; retry", c->node_id);
    else
        snprintf(resp->error_message, sizeof resp->error_message,
                 "node %d is not the active controller (leader: %d)", c->node_id, leader);
}

static void reply_error(controller_t *c, net_conn_id_t conn, uint32_t api, uint64_t corr, int err,
                        const char *msg)
{
    wire_msg_t resp;
    wire_msg_init(&resp, api, true, corr);
    if (err == KL_ENOTCONTROLLER) {
        set_not_controller(c, &resp);
    } else {
        resp.error = err;
        snprintf(resp.error_message, sizeof resp.error_message, "%s", msg);
    }
    send_reply(c, conn, &resp);
}

static void send_answer(controller_t *c, const waiter_t *w)
{
    if (w->error) {
        reply_error(c, w->conn, w->api, w->correlation_id, w->error, w->message);
        return;
    }
    wire_msg_t resp;
    wire_msg_init(&resp, w->api, true, w->correlation_id);
    switch (w->api) {
    case WIRE_API_BROKER_REGISTRATION: resp.body.broker_registration_resp = w->a.reg; break;
    case WIRE_API_BROKER_HEARTBEAT: resp.body.broker_heartbeat_resp = w->a.hb; break;
    case WIRE_API_ALTER_PARTITION: resp.body.alter_partition_resp = w->a.alter; break;
    case WIRE_API_ALLOCATE_PRODUCER_IDS: resp.body.allocate_producer_ids_resp = w->a.pids; break;
    case WIRE_API_CREATE_TOPIC: resp.body.create_topic_resp = w->a.create; break;
    case WIRE_API_DELETE_TOPIC: resp.body.delete_topic_resp = w->a.del; break;
    case WIRE_API_ELECT_LEADERS: resp.body.elect_leaders_resp = w->a.elect; break;
    default: KL_ASSERT(!"a waiter for an API the controller does not decide");
    }
    send_reply(c, w->conn, &resp);
}

static waiter_t *waiter_head(controller_t *c) { return &c->waiting[c->wait_head]; }

static void waiter_pop(controller_t *c)
{
    c->wait_head = (c->wait_head + 1) % CONTROLLER_MAX_WAITING;
    c->n_waiting--;
}

/* §3: a request is answered only once everything decided up to it has
 * committed. We still lead the epoch the offsets were proposed in (waiters
 * are failed when it ends), so the committed entry there is ours. */
static void answer_committed(controller_t *c)
{
    while (c->n_waiting > 0 && waiter_head(c)->offset < c->applied_end) {
        send_answer(c, waiter_head(c));
        waiter_pop(c);
    }
}

/* ---- becoming and ceasing to be the active controller ------------------------ */

static void log_notes(const meta_decision_t *d)
{
    static const kl_log_level_t lv[] = {KL_LOG_DEBUG, KL_LOG_INFO, KL_LOG_WARN, KL_LOG_ERROR};
    for (int i = 0; i < d->n_notes; i++) {
        int l = d->notes[i].level;
        kl_log_write(lv[l < 0 ? 0 : l > 3 ? 3 : l], MOD, "%s", d->notes[i].text);
    }
    if (d->notes_dropped) KL_INFO(MOD, "(%d more notes on this decision not shown)", d->notes_dropped);
    if (d->unclean)
        KL_ERROR(MOD, "this decision includes an UNCLEAN leader election: committed records may be lost");
}

/* Builds the pending image once the log is applied up to ready_at. */
static void maybe_ready(controller_t *c)
{
    if (!c->active || c->pending || c->applied_end <= c->ready_at) return;
    int rc = meta_image_clone(c->image, &c->pending);
    if (rc) {
        KL_ERROR(MOD, "cannot copy the metadata image to decide with: %s; retrying", kl_strerror(rc));
        c->pending = NULL;
        return;
    }
    int64_t now = net_now_ms();
    if (c->fresh_sessions) {
        /* §3: heartbeats went to the previous controller; nobody is fenced
         * for silence it could not have seen. */
        if ((rc = meta_sessions_start_all(&c->sessions, c->image, now, &c->mcfg)) != 0) {
            KL_ERROR(MOD, "cannot start broker sessions: %s; retrying", kl_strerror(rc));
            meta_image_free(c->pending);
            c->pending = NULL;
            return;
        }
        c->fresh_sessions = false;
        c->next_rebalance_ms = now + c->rebalance_interval_ms;
    }
    c->reconcile_due = true; /* repair whatever a predecessor's unfinished batch left */
    KL_INFO(MOD, "active controller in epoch %d: log applied up to offset %lld, %d brokers, %d topics", c->epoch,
            (long long)c->applied_end - 1, meta_image_broker_count(c->image), meta_image_topic_count(c->image));
}

static void fail_waiting(controller_t *c)
{
    while (c->n_waiting > 0) {
        waiter_t *w = waiter_head(c);
        w->error = KL_ENOTCONTROLLER;
        send_answer(c, w);
        waiter_pop(c);
    }
}

static void deactivate(controller_t *c)
{
    c->active = false;
    meta_image_free(c->pending);
    c->pending = NULL;
    meta_sessions_free(&c->sessions);
    c->n_conns = 0;
    fail_waiting(c);
}

/* The pending image no longer matches what was proposed (out of memory
 * while applying to it): decide nothing until the log has caught up with
 * every proposal, then copy the committed image again. */
static void resync(controller_t *c)
{
    meta_image_free(c->pending);
    c->pending = NULL;
    c->ready_at = c->last_proposed;
    maybe_ready(c);
}

/* ---- state machine ----------------------------------------------------------- */

static void sm_apply(void *arg, const raft_entry_t *e)
{
    controller_t *c = arg;
    char why[META_MSG_LEN];
    int rc = wire_meta_apply_entry(c->image, e, why, sizeof why);
    if (rc) {
        /* Skipping it would silently fork our image from the others'. */
        KL_ERROR(MOD, "committed record at offset %lld (epoch %d) does not apply (%s: %s); stopping",
                 (long long)e->offset, e->epoch, kl_strerror(rc), why);
        exit(1);
    }
    c->applied_end = e->offset + 1;
    if (!c->active) return;
    if (c->config_commit_at >= 0 && e->offset >= c->config_commit_at) {
        c->config_commit_at = -1;
        c->reconcile_due = true; /* meta_ctl.h: e.g. unclean election enabled */
    }
    maybe_ready(c);
    answer_committed(c);
}

static int sm_restore(void *arg, raft_snapshot_id_t id, const uint8_t *data, uint64_t len)
{
    controller_t *c = arg;
    KL_ASSERT(!c->active); /* a Raft leader never installs a snapshot */
    meta_image_t *img;
    char why[META_MSG_LEN];
    int rc = wire_meta_decode_snapshot(data, len, &img, why, sizeof why);
    if (rc) {
        KL_ERROR(MOD, "snapshot ending at offset %lld: %s", (long long)id.end_offset, why);
        return KL_ECORRUPT;
    }
    meta_image_free(c->image);
    c->image = img;
    c->applied_end = id.end_offset;
    c->snap.last_end = id.end_offset;
    return 0;
}

static void sm_role_changed(void *arg, raft_role_t role, int32_t epoch, int32_t leader)
{
    controller_t *c = arg;
    bool leading = role == RAFT_LEADER;
    if (c->active && (!leading || epoch != c->epoch)) {
        KL_INFO(MOD, "no longer the active controller (role %s, epoch %d, leader %d); %d waiting requests redirected",
                raft_role_name(role), epoch, leader, c->n_waiting);
        deactivate(c);
    }
    if (leading && !c->active) {
        /* The leader-change record just appended is the first entry of our
         * epoch: once it is applied, so is everything before it. */
        c->active = true;
        c->epoch = epoch;
        c->ready_at = raft_log_end(quorum_raft(c->quorum)) - 1;
        c->last_proposed = c->ready_at;
        c->fresh_sessions = true;
        c->config_commit_at = -1;
        c->last_append_ms = net_now_ms();
        KL_INFO(MOD, "elected in epoch %d; deciding once the log is applied to offset %lld", epoch,
                (long long)c->ready_at);
        maybe_ready(c);
    }
}

/* ---- proposing decisions ------------------------------------------------------ */

/* Proposes d's records in order, each also applied to the pending image at
 * its offset. 0, or an error with why: KL_ENOTCONTROLLER (leadership lost),
 * KL_EFULL (Raft's proposal queue is full) or another append failure; records
 * proposed before the failure stay (every prefix of a decision is
 * consistent, meta_ctl.h). Not from a quorum_sm callback. */
static int propose(controller_t *c, const meta_decision_t *d, char *why, size_t why_len)
{
    log_notes(d);
    for (int i = 0; i < d->records.n; i++) {
        const meta_record_t *rec = &d->records.recs[i];
        kl_buf_t b;
        kl_buf_init(&b, 0);
        int64_t off = -1;
        int32_t epoch = -1;
        int rc = wire_meta_encode_record(rec, &b);
        if (rc == 0) rc = quorum_propose(c->quorum, b.data, (uint32_t)b.len, &off, &epoch);
        kl_buf_free(&b);
        if (rc == 0 && (!c->pending || epoch != c->epoch)) rc = KL_ENOTLEADER;
        if (rc) {
            snprintf(why, why_len, "cannot append a %s record: %s", meta_record_type_name(rec->type),
                     kl_strerror(rc));
            KL_WARN(MOD, "%s", why);
            return rc == KL_ENOTLEADER ? KL_ENOTCONTROLLER : rc;
        }
        c->last_proposed = off;
        c->last_append_ms = net_now_ms();
        if (rec->type == META_REC_CONFIG) c->config_commit_at = off;
        if ((rc = meta_image_apply(c->pending, rec, off)) != 0) {
            snprintf(why, why_len, "the decided %s record does not apply to the pending image: %s",
                     meta_record_type_name(rec->type), meta_image_error(c->pending));
            KL_ERROR(MOD, "%s; rebuilding it from the log", why);
            resync(c);
            return rc;
        }
    }
    return 0;
}

/* A decision of the controller's own (housekeeping): no requester to answer. */
static void decide_own(controller_t *c, const char *what, int rc, meta_decision_t *d)
{
    char why[META_MSG_LEN];
    if (rc == 0 && d->records.n == 0 && d->n_notes == 0) return;
    if (rc == 0) rc = propose(c, d, why, sizeof why);
    else snprintf(why, sizeof why, "%s", d->error);
    if (rc) KL_WARN(MOD, "%s: %s", what, why);
}

/* ---- requests ----------------------------------------------------------------- */

/* Whether an incarnation of broker_id heartbeats (or registered) over a connection still open. */
static bool broker_connected(const controller_t *c, int32_t broker_id)
{
    for (int i = 0; i < c->n_conns; i++)
        if (c->conns[i].broker_id == broker_id) return true;
    return false;
}

static void touch_session(controller_t *c, int32_t broker_id, net_conn_id_t conn)
{
    int rc = meta_sessions_heartbeat(&c->sessions, broker_id, net_now_ms(), &c->mcfg);
    if (rc) KL_WARN(MOD, "cannot record broker %d's session: %s", broker_id, kl_strerror(rc));
    for (int i = 0; i < c->n_conns; i++)
        if (c->conns[i].broker_id == broker_id) {
            c->conns[i].conn = conn;
            return;
        }
    if (c->n_conns < META_MAX_BROKERS) c->conns[c->n_conns++] = (broker_conn_t){broker_id, conn};
}

/* Each handler decides against the pending image, proposes, and fills the
 * answer; on error d->error or why says why. */
typedef int (*handler_fn)(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d,
                          answer_t *a, char *why, size_t why_len);

static int h_register(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d, answer_t *a,
                      char *why, size_t why_len)
{
    const wire_broker_registration_req_t *r = &req->body.broker_registration;
    meta_register_req_t mr = {.broker_id = r->broker_id, .listeners = r->listeners,
                              .n_listeners = r->n_listeners, .rack = r->rack};
    memcpy(mr.incarnation, r->incarnation, KL_UUID_LEN);
    int rc = meta_decide_register(c->pending, &mr, &c->mcfg, d);
    if (rc == KL_EEXIST && !broker_connected(c, r->broker_id)) {
        /* §3's short grace, for the registered incarnation that never connected to this
         * controller: after a restart of every node (or a controller failover and a broker
         * restart) it got a full session at election (meta_sessions_start_all), and the
         * restarted broker would wait that whole session to register again. A live old
         * incarnation heartbeats within the grace and keeps its registration (two processes
         * with one id: the newcomer keeps being refused). */
        KL_INFO(MOD, "broker %d: a new incarnation asks to register while the registered one has no connection "
                "here; fencing the old one in %lld ms unless it heartbeats", r->broker_id,
                (long long)c->mcfg.broker_disconnect_grace_ms);
        meta_sessions_disconnected(&c->sessions, r->broker_id, net_now_ms(), &c->mcfg);
    }
    if (rc == 0) rc = propose(c, d, why, why_len);
    if (rc) return rc;
    a->reg.broker_epoch = meta_image_broker(c->pending, r->broker_id)->epoch;
    touch_session(c, r->broker_id, conn);
    return 0;
}

static int h_heartbeat(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d,
                       answer_t *a, char *why, size_t why_len)
{
    const wire_broker_heartbeat_req_t *r = &req->body.broker_heartbeat;
    meta_heartbeat_req_t hb = {.broker_id = r->broker_id, .broker_epoch = r->broker_epoch,
                               .metadata_offset = r->metadata_offset, .want_fence = r->want_fence,
                               .want_shutdown = r->want_shutdown};
    meta_heartbeat_reply_t reply;
    int rc = meta_decide_heartbeat(c->pending, &hb, &c->mcfg, d, &reply);
    if (rc) return rc;
    touch_session(c, r->broker_id, conn); /* meta_ctl.h: only for an accepted heartbeat */
    if ((rc = propose(c, d, why, why_len)) != 0) return rc;
    a->hb = (wire_broker_heartbeat_resp_t){reply.fenced, reply.shutting_down, reply.shutdown_now};
    return 0;
}

static int h_alter_partition(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d,
                             answer_t *a, char *why, size_t why_len)
{
    (void)conn;
    const wire_alter_partition_req_t *r = &req->body.alter_partition;
    meta_alter_partition_req_t ar = {.broker_id = r->broker_id, .broker_epoch = r->broker_epoch,
                                     .partition = r->partition, .leader_epoch = r->leader_epoch,
                                     .partition_epoch = r->partition_epoch, .isr = r->isr, .n_isr = r->n_isr};
    memcpy(ar.topic, r->topic_id, KL_UUID_LEN);
    int rc = meta_decide_alter_partition(c->pending, &ar, &c->mcfg, d);
    if (rc == 0) rc = propose(c, d, why, why_len);
    if (rc) return rc;
    const meta_partition_t *p = meta_image_partition(c->pending, r->topic_id, r->partition);
    a->alter.leader = p->leader;
    a->alter.leader_epoch = p->leader_epoch;
    a->alter.partition_epoch = p->partition_epoch;
    memcpy(a->alter.isr, p->isr, sizeof p->isr);
    a->alter.n_isr = p->n_isr;
    return 0;
}

static int h_producer_ids(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d,
                          answer_t *a, char *why, size_t why_len)
{
    (void)conn;
    const wire_allocate_producer_ids_req_t *r = &req->body.allocate_producer_ids;
    int rc = meta_decide_producer_ids(c->pending, r->broker_id, r->broker_epoch, &c->mcfg, d);
    if (rc == 0) rc = propose(c, d, why, why_len);
    if (rc) return rc;
    KL_ASSERT(d->records.n == 1 && d->records.recs[0].type == META_REC_PRODUCER_IDS);
    const meta_producer_ids_t *b = &d->records.recs[0].u.producer_ids;
    a->pids = (wire_allocate_producer_ids_resp_t){b->first_id, b->size};
    return 0;
}

static int h_create_topic(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d,
                          answer_t *a, char *why, size_t why_len)
{
    (void)conn;
    const wire_create_topic_req_t *r = &req->body.create_topic;
    meta_config_kv_t kv[META_MAX_CONFIGS];
    KL_ASSERT(r->n_configs >= 0 && r->n_configs <= META_MAX_CONFIGS); /* wire_decode bounds it */
    for (int i = 0; i < r->n_configs; i++) kv[i] = (meta_config_kv_t){r->configs[i].key, r->configs[i].value};
    meta_create_topic_req_t cr = {.name = r->name, .partitions = r->partitions,
                                  .replication_factor = r->replication_factor, .configs = kv,
                                  .n_configs = r->n_configs};
    int rc = kl_uuid_random(cr.uuid);
    if (rc) {
        snprintf(why, why_len, "cannot make a topic id: %s", kl_strerror(rc));
        return rc;
    }
    rc = meta_decide_create_topic(c->pending, &cr, &c->mcfg, d);
    if (rc == 0) rc = propose(c, d, why, why_len);
    if (rc) return rc;
    const meta_topic_t *t = meta_image_topic_by_uuid(c->pending, cr.uuid);
    memcpy(a->create.topic_id, cr.uuid, KL_UUID_LEN);
    a->create.partitions = t->n_parts;
    a->create.replication_factor = t->parts[0].n_replicas;
    return 0;
}

static int h_delete_topic(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d,
                          answer_t *a, char *why, size_t why_len)
{
    (void)conn;
    const meta_topic_t *t = meta_image_topic(c->pending, req->body.delete_topic.name);
    if (t) memcpy(a->del.topic_id, t->uuid, KL_UUID_LEN);
    int rc = meta_decide_delete_topic(c->pending, req->body.delete_topic.name, &c->mcfg, d);
    if (rc == 0) rc = propose(c, d, why, why_len);
    return rc;
}

static int h_elect_leaders(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, meta_decision_t *d,
                           answer_t *a, char *why, size_t why_len)
{
    (void)conn;
    const wire_elect_leaders_req_t *r = &req->body.elect_leaders;
    if (!r->preferred) {
        snprintf(why, why_len, "only preferred leader elections are served");
        return KL_EINVAL;
    }
    int rc = meta_decide_elect_preferred(c->pending, r->topic[0] ? r->topic : NULL, &c->mcfg, d);
    if (rc == 0) rc = propose(c, d, why, why_len);
    if (rc) return rc;
    for (int i = 0; i < d->records.n; i++)
        a->elect.partitions_elected += d->records.recs[i].type == META_REC_PARTITION_CHANGE;
    /* the summary comes last: how many moved and why the others did not */
    if (d->n_notes > 0)
        snprintf(a->elect.message, sizeof a->elect.message, "%s", d->notes[d->n_notes - 1].text);
    return 0;
}

static handler_fn handler_for(uint32_t api)
{
    switch (api) {
    case WIRE_API_BROKER_REGISTRATION: return h_register;
    case WIRE_API_BROKER_HEARTBEAT: return h_heartbeat;
    case WIRE_API_ALTER_PARTITION: return h_alter_partition;
    case WIRE_API_ALLOCATE_PRODUCER_IDS: return h_producer_ids;
    case WIRE_API_CREATE_TOPIC: return h_create_topic;
    case WIRE_API_DELETE_TOPIC: return h_delete_topic;
    case WIRE_API_ELECT_LEADERS: return h_elect_leaders;
    default: return NULL;
    }
}

/* Decides one broker or admin request. Its answer, success or refusal, waits
 * for every record proposed up to now to commit (a refusal may rest on
 * records in flight, e.g. a topic being created); failures to propose are
 * answered at once. */
static void serve(controller_t *c, net_conn_id_t conn, const wire_msg_t *req, handler_fn h)
{
    if (!c->pending || c->stopping) {
        reply_error(c, conn, req->api, req->correlation_id, KL_ENOTCONTROLLER, NULL);
        return;
    }
    if (c->n_waiting == CONTROLLER_MAX_WAITING) {
        char msg[WIRE_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%d requests are waiting for their records to commit; retry",
                 CONTROLLER_MAX_WAITING);
        reply_error(c, conn, req->api, req->correlation_id, KL_EFULL, msg);
        return;
    }
    waiter_t w = {.conn = conn, .api = req->api, .correlation_id = req->correlation_id};
    meta_decision_t d;
    meta_decision_init(&d);
    int rc = h(c, conn, req, &d, &w.a, w.message, sizeof w.message);
    bool decided = rc == 0 || d.error[0] != '\0'; /* proposed whole, or refused by the core */
    if (rc) {
        w.error = rc;
        const char *why = d.error[0] ? d.error : kl_strerror(rc);
        if (!w.message[0]) /* a long reason is cut to fit the response */
            snprintf(w.message, sizeof w.message, "%.*s", (int)sizeof w.message - 1, why);
        KL_DEBUG(MOD, "%s from %s refused: %s: %s", wire_api_name(req->api), net_conn_addr(c->loop, conn),
                 kl_errname(rc), w.message);
    }
    meta_decision_free(&d);
    if (!decided || !c->pending) {
        send_answer(c, &w);
        return;
    }
    w.offset = c->last_proposed;
    c->waiting[(c->wait_head + c->n_waiting) % CONTROLLER_MAX_WAITING] = w;
    c->n_waiting++;
    answer_committed(c);
}

void controller_on_request(controller_t *c, net_conn_id_t conn, wire_msg_t *req)
{
    wire_msg_t resp;
    handler_fn h = handler_for(req->api);
    if (h) {
        serve(c, conn, req, h);
        wire_msg_free(req);
        return;
    }
    switch (req->api) {
    case WIRE_API_VOTE:
    case WIRE_API_BEGIN_QUORUM_EPOCH:
    case WIRE_API_END_QUORUM_EPOCH:
    case WIRE_API_FETCH_RAFT:
    case WIRE_API_FETCH_SNAPSHOT:
        quorum_on_request(c->quorum, conn, req);
        return;
    case WIRE_API_DESCRIBE_QUORUM:
        wire_msg_init(&resp, req->api, true, req->correlation_id);
        quorum_describe(c->quorum, &resp);
        send_reply(c, conn, &resp);
        break;
    case WIRE_API_API_VERSIONS:
        wire_msg_init(&resp, req->api, true, req->correlation_id);
        wire_api_versions_local(&resp.body.api_versions);
        send_reply(c, conn, &resp);
        break;
    default: {
        char msg[WIRE_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "a controller does not serve %s", wire_api_name(req->api));
        reply_error(c, conn, req->api, req->correlation_id, KL_EUNKNOWNAPI, msg);
        break;
    }
    }
    wire_msg_free(req);
}

void controller_on_conn_closed(controller_t *c, net_conn_id_t conn)
{
    quorum_on_conn_closed(c->quorum, conn);
    int64_t now = net_now_ms();
    for (int i = 0; i < c->n_conns;) {
        if (c->conns[i].conn != conn) {
            i++;
            continue;
        }
        /* §3: kill -9 of a broker shows up here long before its session ends. */
        KL_INFO(MOD, "broker %d's connection closed; fencing it in %lld ms unless it heartbeats again",
                c->conns[i].broker_id, (long long)c->mcfg.broker_disconnect_grace_ms);
        meta_sessions_disconnected(&c->sessions, c->conns[i].broker_id, now, &c->mcfg);
        c->conns[i] = c->conns[--c->n_conns];
    }
}

void controller_shutdown(controller_t *c, void (*done)(void *arg), void *arg)
{
    c->stopping = true;
    quorum_shutdown(c->quorum, done, arg);
}

const meta_image_t *controller_image(const controller_t *c) { return c->image; }
bool controller_active(const controller_t *c) { return c->pending != NULL && !c->stopping; }

/* ---- housekeeping: sessions, repairs, rebalance, no-ops, snapshots ------------ */

static void decide_periodic(controller_t *c, int64_t now)
{
    if (!c->pending || c->stopping) return;
    meta_decision_t d;
    meta_decision_init(&d);
    decide_own(c, "fencing expired sessions",
               meta_decide_expire_sessions(c->pending, &c->sessions, now, &c->mcfg, &d), &d);
    if (c->pending && (c->reconcile_due || now >= c->next_reconcile_ms)) {
        c->reconcile_due = false;
        c->next_reconcile_ms = now + CONTROLLER_RECONCILE_MS;
        decide_own(c, "reconciling partitions", meta_decide_reconcile(c->pending, &c->mcfg, &d), &d);
    }
    if (c->pending && c->mcfg.auto_leader_rebalance_enable && now >= c->next_rebalance_ms) {
        c->next_rebalance_ms = now + c->rebalance_interval_ms;
        decide_own(c, "leader rebalance", meta_decide_auto_rebalance(c->pending, &c->mcfg, &d), &d);
    }
    meta_decision_free(&d);
}

static void maybe_noop(controller_t *c, int64_t now)
{
    if (!c->active || c->stopping || c->idle_interval_ms == 0) return;
    if (now - c->last_append_ms < c->idle_interval_ms) return;
    kl_buf_t b;
    kl_buf_init(&b, 0);
    int64_t off = -1;
    int32_t epoch = -1;
    int rc = wire_meta_encode_noop(&b);
    if (rc == 0) rc = quorum_propose(c->quorum, b.data, (uint32_t)b.len, &off, &epoch);
    kl_buf_free(&b);
    if (rc == 0 && c->active && epoch == c->epoch) c->last_proposed = off;
    if (rc && rc != KL_ENOTLEADER) KL_WARN(MOD, "cannot append a no-op record: %s", kl_strerror(rc));
    c->last_append_ms = now;
}

static int encode_image(void *arg, kl_buf_t *out)
{
    controller_t *c = arg;
    KL_ASSERT(quorum_applied_end(c->quorum) == c->applied_end); /* the image is the state below it */
    return wire_meta_encode_snapshot(c->image, out);
}

static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    controller_t *c = arg;
    int64_t now = net_now_ms();
    maybe_ready(c); /* after an allocation failure */
    decide_periodic(c, now);
    maybe_noop(c, now);
    quorum_maybe_snapshot(c->quorum, &c->snap, now, encode_image, c);
}

/* ---- lifecycle ------------------------------------------------------------ */

static int int_key(const kl_config_t *cfg, const char *key, int64_t min, int64_t max, int64_t *out, char *err,
                   size_t errlen)
{
    int64_t v = kl_config_int(cfg, key);
    if (v < min || v > max) {
        snprintf(err, errlen, "%s=%lld is out of range [%lld, %lld]", key, (long long)v, (long long)min,
                 (long long)max);
        return KL_ECONFIG;
    }
    *out = v;
    return 0;
}

static int read_config(controller_t *c, const kl_config_t *cfg, char *err, size_t errlen)
{
    meta_ctl_config_t *m = &c->mcfg;
    meta_ctl_config_defaults(m);
    int64_t session, grace, pct, parts, rf, interval_s;
    int rc = int_key(cfg, "broker.session.timeout.ms", 1, INT32_MAX, &session, err, errlen);
    if (rc == 0) rc = int_key(cfg, "broker.session.disconnect.grace.ms", 0, INT32_MAX, &grace, err, errlen);
    if (rc == 0 && grace > session) {
        /* the grace makes fencing faster than the session, never slower (§3) */
        snprintf(err, errlen, "broker.session.disconnect.grace.ms=%lld exceeds broker.session.timeout.ms=%lld",
                 (long long)grace, (long long)session);
        return KL_ECONFIG;
    }
    if (rc == 0) rc = int_key(cfg, "leader.imbalance.per.broker.percentage", 0, 100, &pct, err, errlen);
    if (rc == 0) rc = int_key(cfg, "num.partitions", 1, META_MAX_TOPIC_PARTITIONS, &parts, err, errlen);
    if (rc == 0) rc = int_key(cfg, "default.replication.factor", 1, META_MAX_REPLICAS, &rf, err, errlen);
    if (rc == 0) rc = int_key(cfg, "leader.imbalance.check.interval.seconds", 1, 86400, &interval_s, err, errlen);
    if (rc) return rc;
    m->broker_session_timeout_ms = session;
    m->broker_disconnect_grace_ms = grace;
    m->unclean_leader_election_enable = kl_config_bool(cfg, "unclean.leader.election.enable");
    m->auto_leader_rebalance_enable = kl_config_bool(cfg, "auto.leader.rebalance.enable");
    m->leader_imbalance_per_broker_percentage = (int)pct;
    m->num_partitions = (int32_t)parts;
    m->default_replication_factor = (int32_t)rf;
    c->rebalance_interval_ms = interval_s * 1000;
    char why[META_MSG_LEN];
    if (meta_ctl_config_check(m, why, sizeof why) != 0) {
        snprintf(err, errlen, "controller settings: %s", why);
        return KL_ECONFIG;
    }
    c->node_id = (int32_t)kl_config_int(cfg, "node.id");
    c->idle_interval_ms = kl_config_int(cfg, "metadata.max.idle.interval.ms");
    return kcfg_parse_voters(kl_config_str(cfg, "controller.quorum.voters"), c->voters, RAFT_MAX_VOTERS,
                             &c->n_voters, err, errlen);
}

int controller_open(net_loop_t *loop, const kl_config_t *cfg, const char *metadata_dir,
                    const char *cluster_id, net_tls_t *client_tls, controller_t **out, char *err,
                    size_t errlen)
{
    controller_t *c = calloc(1, sizeof *c);
    if (!c) return KL_ENOMEM;
    c->loop = loop;
    c->config_commit_at = -1;
    meta_sessions_init(&c->sessions);
    int rc = read_config(c, cfg, err, errlen);
    if (rc) {
        free(c);
        return rc;
    }
    c->image = meta_image_new();
    c->waiting = calloc(CONTROLLER_MAX_WAITING, sizeof *c->waiting);
    if (!c->image || !c->waiting) {
        snprintf(err, errlen, "out of memory");
        controller_close(c);
        return KL_ENOMEM;
    }
    quorum_snapshot_policy_init(&c->snap, cfg, net_now_ms());
    quorum_options_t qo = {
        .cfg = cfg,
        .metadata_dir = metadata_dir,
        .cluster_id = cluster_id,
        .loop = loop,
        .client_tls = client_tls,
        .sm = {.apply = sm_apply, .restore = sm_restore, .role_changed = sm_role_changed, .arg = c},
    };
    if ((rc = quorum_open(&qo, &c->quorum, err, errlen)) != 0) {
        controller_close(c);
        return rc;
    }
    c->housekeeping_ev = event_new(net_loop_base(loop), -1, EV_PERSIST, on_housekeeping, c);
    if (!c->housekeeping_ev) {
        snprintf(err, errlen, "out of memory");
        controller_close(c);
        return KL_ENOMEM;
    }
    struct timeval tv = {0, CONTROLLER_HOUSEKEEPING_MS * 1000};
    event_add(c->housekeeping_ev, &tv);
    *out = c;
    return 0;
}

void controller_close(controller_t *c)
{
    if (!c) return;
    if (c->housekeeping_ev) event_free(c->housekeeping_ev);
    quorum_close(c->quorum); /* no callbacks after this */
    meta_image_free(c->pending);
    meta_image_free(c->image);
    meta_sessions_free(&c->sessions);
    free(c->waiting);
    free(c);
}
