/* broker.c — the broker role (DESIGN.md §1, §3): a Raft observer of the metadata log that registers and heartbeats with the active controller, forwards admin requests to it, answers Metadata and InitProducerId, and drives its partitions (bparts.h) with committed metadata. */
#include "keel/broker.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bparts.h"
#include "keel/err.h"
#include "keel/kcfg.h"
#include "keel/log.h"
#include "keel/quorum.h"
#include "keel/uuid.h"
#include "keel/wire_meta.h"

#define MOD "broker"

typedef struct pid_waiter {
    net_conn_id_t conn;
    uint64_t correlation_id;
} pid_waiter_t;

/* One request to the active controller whose answer goes somewhere else: a
 * client (forwarded admin request) or bparts (AlterPartition). */
typedef struct ctl_call {
    broker_t *b;
    net_conn_id_t conn;      /* forward: the client's connection */
    uint64_t correlation_id; /* forward: the client's */
    uint32_t api;
    void (*alter_done)(void *cb_arg, int err, const wire_alter_partition_resp_t *resp);
    void *alter_arg;
} ctl_call_t;

struct broker {
    net_loop_t *loop;
    const kl_config_t *cfg;
    net_tls_t *client_tls;
    char cluster_id[64];
    int32_t id;
    char log_dir[4096];
    kcfg_voter_t voters[RAFT_MAX_VOTERS];
    int n_voters;

    /* metadata observer */
    quorum_t *quorum;
    meta_image_t *image;
    int64_t applied_offset; /* last applied metadata offset, -1 none */
    quorum_snapshot_policy_t snap; /* of the broker's copy of the metadata log */

    /* registration and heartbeats (DESIGN.md §3) */
    uint8_t incarnation[KL_UUID_LEN];
    meta_listener_t listeners[META_MAX_LISTENERS];
    int n_listeners;
    char rack[META_MAX_RACK_LEN + 1];
    int64_t epoch;      /* current broker epoch, -1 while not registered */
    int64_t seen_epoch; /* epoch of our registration as last seen in the image, -1 none */
    int own_state;      /* our meta_broker_state_t in the image as last logged, -1 none */
    int64_t heartbeat_ms;
    bool reg_inflight, hb_inflight;
    bool hb_now; /* heartbeat at once (caught up, reconnected, new controller) */
    int64_t next_reg_ms, next_hb_ms;
    int reg_backoff_ms;
    int last_ctl_err; /* last error logged for the controller channel, to log a repeat quietly */

    /* the controller channel: one persistent connection to the active controller */
    net_peer_t *ctl;
    int32_t ctl_id;
    bool ctl_known;      /* ctl_id came from Raft, not a first guess */
    int32_t hint_leader; /* leader named by a KL_ENOTCONTROLLER answer, RAFT_NO_NODE none */
    bool ctl_up;
    int n_forwards;
    bool pids_inflight;
    int64_t pid_next, pid_end; /* producer ids [next, end) are ours to hand out */
    pid_waiter_t pid_waiters[BROKER_MAX_PID_WAITERS];
    int pid_head, pid_len;

    /* partitions */
    bparts_env_t env;
    bparts_t *bp;
    bool publishing; /* our registration reached the image: bparts hears of every change */

    struct event *housekeeping_ev, *kick_ev;

    /* controlled shutdown */
    bool shutting_down, finished;
    int64_t shutdown_deadline;
    void (*shutdown_done)(void *arg);
    void *shutdown_arg;
};

static void drive(broker_t *b);

/* ---- small helpers ------------------------------------------------------------- */

static void reply(broker_t *b, net_conn_id_t conn, const wire_msg_t *resp)
{
    int rc = net_reply(b->loop, conn, resp);
    if (rc) KL_DEBUG(MOD, "reply to %s: %s", net_conn_addr(b->loop, conn), kl_strerror(rc));
}

static void reply_error(broker_t *b, net_conn_id_t conn, uint32_t api, uint64_t corr, int err, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static void reply_error(broker_t *b, net_conn_id_t conn, uint32_t api, uint64_t corr, int err, const char *fmt, ...)
{
    wire_msg_t resp;
    wire_msg_init(&resp, api, true, corr);
    resp.error = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(resp.error_message, sizeof resp.error_message, fmt, ap);
    va_end(ap);
    reply(b, conn, &resp);
}

static bool names_broker(const meta_partition_t *p, int32_t id)
{
    if (!p) return false;
    for (int i = 0; i < p->n_replicas; i++)
        if (p->replicas[i] == id) return true;
    return false;
}

/* Runs drive() from the loop soon, outside whatever callback asks for it
 * (quorum_sm callbacks must not re-enter the quorum, peer callbacks should
 * not free their peer). */
static void kick(broker_t *b)
{
    static const struct timeval now = {0, 0};
    if (b->kick_ev && !b->finished) evtimer_add(b->kick_ev, &now);
}

static int32_t raft_leader_id(const broker_t *b)
{
    return b->quorum ? raft_leader(quorum_raft(b->quorum)) : RAFT_NO_NODE;
}

/* ---- publishing committed metadata to the partitions (bparts.h) -------------- */

/* Tells bparts everything that differs between `old` (NULL: nothing was
 * published yet) and the current image: broker eligibility, removed topics,
 * partitions that name us or did. */
static void publish_image(broker_t *b, const meta_image_t *old)
{
    const meta_image_t *img = b->image;
    for (int i = 0; i < meta_image_broker_count(img); i++) {
        const meta_broker_t *mb = meta_image_broker_at(img, i);
        bparts_eligibility(b->bp, mb->id, mb->state == META_BROKER_ACTIVE);
    }
    for (int i = 0; old && i < meta_image_topic_count(old); i++) {
        const meta_topic_t *was = meta_image_topic_at(old, i);
        const meta_topic_t *now = meta_image_topic_by_uuid(img, was->uuid);
        if (!now) {
            bparts_topic_removed(b->bp, was->uuid);
            continue;
        }
        for (int j = 0; j < was->n_parts && j < now->n_parts; j++)
            if (names_broker(&was->parts[j], b->id) && !names_broker(&now->parts[j], b->id))
                bparts_partition_state(b->bp, now->name, &now->parts[j]);
    }
    for (int i = 0; i < meta_image_topic_count(img); i++) {
        const meta_topic_t *t = meta_image_topic_at(img, i);
        for (int j = 0; j < t->n_parts; j++)
            if (names_broker(&t->parts[j], b->id)) bparts_partition_state(b->bp, t->name, &t->parts[j]);
    }
}

/* Our own entry in the image: takes the broker epoch from the committed
 * registration, heartbeats at once when it first appears (the controller
 * unfences a broker caught up to its registration, §3), logs state changes,
 * and starts publishing — only now, so a restarted broker never acts on the
 * stale partition states it replays before its new registration (bparts.h). */
static void check_own_registration(broker_t *b)
{
    const meta_broker_t *mb = meta_image_broker(b->image, b->id);
    if (!mb || memcmp(mb->incarnation, b->incarnation, KL_UUID_LEN) != 0) return;
    if (mb->epoch != b->seen_epoch) {
        b->seen_epoch = mb->epoch;
        b->epoch = mb->epoch;
        b->own_state = -1;
        b->hb_now = true;
        kick(b);
    }
    if ((int)mb->state != b->own_state) {
        b->own_state = (int)mb->state;
        KL_INFO(MOD, "broker %d (epoch %lld) is %s", b->id, (long long)mb->epoch, meta_broker_state_name(mb->state));
    }
    if (!b->publishing && b->bp) {
        b->publishing = true;
        KL_INFO(MOD, "registration at offset %lld is applied; the partitions follow the metadata log from here",
                (long long)mb->epoch);
        publish_image(b, NULL);
    }
}

static void on_broker_record(broker_t *b, int32_t id)
{
    const meta_broker_t *mb = meta_image_broker(b->image, id);
    if (!mb) return;
    if (b->publishing) bparts_eligibility(b->bp, id, mb->state == META_BROKER_ACTIVE);
    if (id == b->id) {
        if (b->seen_epoch >= 0 && memcmp(mb->incarnation, b->incarnation, KL_UUID_LEN) != 0 &&
            mb->epoch > b->seen_epoch) {
            char inc[KL_UUID_STR_LEN + 1];
            kl_uuid_to_string(mb->incarnation, inc);
            KL_WARN(MOD, "another process (incarnation %s) registered as broker %d with epoch %lld: "
                         "two brokers share node.id?", inc, id, (long long)mb->epoch);
        }
        check_own_registration(b); /* may start publishing, which includes this broker's state */
    }
}

static void publish_partition(broker_t *b, const uint8_t topic[KL_UUID_LEN], int32_t partition, bool named_before)
{
    const meta_partition_t *p = meta_image_partition(b->image, topic, partition);
    const meta_topic_t *t = meta_image_topic_by_uuid(b->image, topic);
    if (p && t && (named_before || names_broker(p, b->id))) bparts_partition_state(b->bp, t->name, p);
}

/* ---- the metadata log's state machine (quorum.h) ----------------------------- */

static void sm_apply(void *arg, const raft_entry_t *e)
{
    broker_t *b = arg;
    meta_record_t rec;
    wire_meta_store_t store;
    bool have = !e->control; /* leader-change records belong to Raft */
    if (have && wire_meta_decode_record_full(e->data, e->len, &rec, &store) != 0) {
        /* Same rule as the controller: skipping a committed record would
         * silently fork our image from everyone else's. */
        KL_ERROR(MOD, "committed metadata record at offset %lld does not decode (%s); stopping",
                 (long long)e->offset, store.why);
        exit(1);
    }
    const meta_image_t *img = b->image;
    bool named_before = false;
    if (have && b->publishing && rec.type == META_REC_PARTITION)
        named_before = names_broker(meta_image_partition(img, rec.u.partition.topic, rec.u.partition.partition), b->id);
    else if (have && b->publishing && rec.type == META_REC_PARTITION_CHANGE)
        named_before = names_broker(meta_image_partition(img, rec.u.change.topic, rec.u.change.partition), b->id);
    char why[META_MSG_LEN];
    int rc = wire_meta_apply_entry(b->image, e, why, sizeof why);
    if (rc) {
        KL_ERROR(MOD, "committed metadata record at offset %lld does not apply (%s: %s); stopping",
                 (long long)e->offset, kl_errname(rc), why);
        exit(1);
    }
    b->applied_offset = e->offset;
    if (!have) return;
    switch (rec.type) {
    case META_REC_REGISTER_BROKER: on_broker_record(b, rec.u.reg.broker_id); break;
    case META_REC_FENCE_BROKER:
    case META_REC_UNFENCE_BROKER:
    case META_REC_SHUTDOWN_BROKER: on_broker_record(b, rec.u.broker.broker_id); break;
    case META_REC_PARTITION:
        if (b->publishing) publish_partition(b, rec.u.partition.topic, rec.u.partition.partition, named_before);
        break;
    case META_REC_PARTITION_CHANGE:
        if (b->publishing) publish_partition(b, rec.u.change.topic, rec.u.change.partition, named_before);
        break;
    case META_REC_REMOVE_TOPIC:
        if (b->publishing) bparts_topic_removed(b->bp, rec.u.remove_topic);
        break;
    default: break; /* topics (their partitions follow), configs (read on demand), producer ids, no-ops */
    }
}

static int sm_restore(void *arg, raft_snapshot_id_t id, const uint8_t *data, uint64_t len)
{
    broker_t *b = arg;
    meta_image_t *img;
    char why[META_MSG_LEN];
    if (wire_meta_decode_snapshot(data, len, &img, why, sizeof why) != 0) {
        KL_ERROR(MOD, "metadata snapshot ending at offset %lld: %s", (long long)id.end_offset, why);
        return KL_ECORRUPT;
    }
    meta_image_t *old = b->image;
    b->image = img;
    b->applied_offset = id.end_offset - 1;
    b->snap.last_end = id.end_offset;
    if (b->publishing) publish_image(b, old);
    meta_image_free(old);
    check_own_registration(b);
    return 0;
}

static void sm_role_changed(void *arg, raft_role_t role, int32_t epoch, int32_t leader)
{
    broker_t *b = arg;
    KL_DEBUG(MOD, "metadata quorum: %s in epoch %d, leader %d", raft_role_name(role), epoch, leader);
    kick(b); /* the controller connection follows the leader (drive) */
}

/* ---- the controller channel ------------------------------------------------------ */

static void ctl_error(broker_t *b, const char *what, int err, const wire_msg_t *resp)
{
    const char *detail = resp && resp->error_message[0] ? resp->error_message
                         : b->ctl && net_peer_last_error(b->ctl)[0] ? net_peer_last_error(b->ctl)
                                                                    : kl_strerror(err);
    if (err == b->last_ctl_err)
        KL_DEBUG(MOD, "%s to controller %d failed: %s (%s)", what, b->ctl_id, kl_errname(err), detail);
    else /* a controller change is routine; anything else deserves a look */
        kl_log_write(err == KL_ENOTCONTROLLER ? KL_LOG_INFO : KL_LOG_WARN, MOD,
                     "%s to controller %d failed: %s (%s); retrying", what, b->ctl_id, kl_errname(err), detail);
    b->last_ctl_err = err;
    /* Raft tells us the leader soon; a controller's redirect may be sooner. */
    if (err == KL_ENOTCONTROLLER && resp && resp->leader_id >= 0 && resp->leader_id != b->ctl_id) {
        b->hint_leader = resp->leader_id;
        kick(b);
    }
}

static void on_ctl_state(net_peer_t *p, bool connected, void *arg)
{
    broker_t *b = arg;
    if (p != b->ctl) return;
    if (connected) {
        KL_INFO(MOD, "connected to controller %d at %s", b->ctl_id, net_peer_name(p));
        b->ctl_up = true;
        /* A broken connection gets us fenced after a short grace unless a
         * heartbeat comes first (§3): send one on the new connection now. */
        b->hb_now = true;
        kick(b);
    } else if (b->ctl_up) {
        KL_INFO(MOD, "lost the connection to controller %d: %s", b->ctl_id, net_peer_last_error(p));
        b->ctl_up = false;
    }
}

static const kcfg_voter_t *find_voter(const broker_t *b, int32_t id)
{
    for (int i = 0; i < b->n_voters; i++)
        if (b->voters[i].id == id) return &b->voters[i];
    return NULL;
}

/* Points the controller connection at voter id. The old peer goes last, so
 * the callbacks it runs (KL_ECLOSED) see that it is no longer ours. */
static int connect_controller(broker_t *b, int32_t id, bool known)
{
    const kcfg_voter_t *v = find_voter(b, id);
    if (!v) {
        KL_WARN(MOD, "the metadata quorum names leader %d, which is not in controller.quorum.voters", id);
        return KL_ENOENT;
    }
    net_peer_t *p = net_peer_new(b->loop, v->host, v->port, b->client_tls, on_ctl_state, b);
    if (!p) return KL_ENOMEM;
    net_peer_t *old = b->ctl;
    b->ctl = p;
    b->ctl_id = id;
    b->ctl_known = known;
    b->ctl_up = false;
    b->reg_inflight = b->hb_inflight = false;
    b->next_reg_ms = 0;
    b->reg_backoff_ms = BROKER_RETRY_MIN_MS;
    b->hb_now = true; /* a new active controller starts our session afresh: tell it at once */
    b->last_ctl_err = 0;
    if (known) KL_INFO(MOD, "active controller is node %d (%s:%d)", id, v->host, v->port);
    net_peer_free(old);
    return 0;
}

/* The connection follows the Raft leader, or while Raft knows none, the
 * leader a controller named; else it stays where it is. */
static void follow_leader(broker_t *b)
{
    int32_t leader = raft_leader_id(b), hint = b->hint_leader;
    b->hint_leader = RAFT_NO_NODE;
    if (leader == RAFT_NO_NODE) {
        if (hint != RAFT_NO_NODE && hint != b->ctl_id) connect_controller(b, hint, false);
        return;
    }
    if (leader == b->ctl_id && b->ctl_known) return;
    if (leader == b->ctl_id) {
        b->ctl_known = true;
        KL_INFO(MOD, "active controller is node %d (%s)", leader, net_peer_name(b->ctl));
        return;
    }
    connect_controller(b, leader, true);
}

static int ctl_request(broker_t *b, wire_msg_t *req, net_response_cb cb, void *arg)
{
    snprintf(req->cluster_id, sizeof req->cluster_id, "%s", b->cluster_id);
    return net_request(b->ctl, req, BROKER_CONTROLLER_TIMEOUT_MS, cb, arg);
}

static int response_error(int err, const wire_msg_t *resp, uint32_t api)
{
    if (err) return err;
    if (resp->error) return resp->error;
    return resp->api == api ? 0 : KL_EPROTO;
}

static void registration_failed(broker_t *b, int err, const wire_msg_t *resp)
{
    ctl_error(b, "registration", err, resp);
    b->next_reg_ms = net_now_ms() + b->reg_backoff_ms;
    b->reg_backoff_ms = b->reg_backoff_ms * 2 > BROKER_RETRY_MAX_MS ? BROKER_RETRY_MAX_MS : b->reg_backoff_ms * 2;
}

static void on_registration(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    broker_t *b = arg;
    if (p == b->ctl) {
        b->reg_inflight = false;
        int e = response_error(err, resp, WIRE_API_BROKER_REGISTRATION);
        if (e) {
            registration_failed(b, e, resp);
        } else {
            int64_t epoch = resp->body.broker_registration_resp.broker_epoch;
            if (epoch != b->epoch)
                KL_INFO(MOD, "registered with controller %d as broker %d, epoch %lld", b->ctl_id, b->id,
                        (long long)epoch);
            b->epoch = epoch;
            b->reg_backoff_ms = BROKER_RETRY_MIN_MS;
            b->last_ctl_err = 0;
            b->next_hb_ms = net_now_ms() + b->heartbeat_ms;
            kick(b);
        }
    }
    if (resp) wire_msg_free(resp);
}

static void send_registration(broker_t *b)
{
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_BROKER_REGISTRATION, false, 0);
    wire_broker_registration_req_t *r = &req.body.broker_registration;
    r->broker_id = b->id;
    memcpy(r->incarnation, b->incarnation, KL_UUID_LEN);
    memcpy(r->listeners, b->listeners, sizeof b->listeners);
    r->n_listeners = b->n_listeners;
    memcpy(r->rack, b->rack, sizeof r->rack);
    int rc = ctl_request(b, &req, on_registration, b);
    if (rc) registration_failed(b, rc, NULL);
    else b->reg_inflight = true;
}

static void finish_shutdown(broker_t *b, const char *why);

static void on_heartbeat(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    broker_t *b = arg;
    if (p != b->ctl) {
        if (resp) wire_msg_free(resp);
        return;
    }
    b->hb_inflight = false;
    int e = response_error(err, resp, WIRE_API_BROKER_HEARTBEAT);
    if (e == KL_EFENCED || e == KL_ENOENT) {
        /* Our registration is stale or unknown to the active controller
         * (e.g. another process took our id meanwhile): register again. */
        KL_INFO(MOD, "controller %d does not accept broker epoch %lld (%s: %s); registering again", b->ctl_id,
                (long long)b->epoch, kl_errname(e), resp ? resp->error_message : "");
        b->epoch = -1;
        b->next_reg_ms = 0;
        kick(b);
    } else if (e) {
        ctl_error(b, "heartbeat", e, resp);
    } else {
        b->last_ctl_err = 0;
        const wire_broker_heartbeat_resp_t *h = &resp->body.broker_heartbeat_resp;
        KL_DEBUG(MOD, "heartbeat: fenced=%d shutting_down=%d shutdown_now=%d", h->fenced, h->shutting_down,
                 h->shutdown_now);
        if (b->shutting_down && h->shutdown_now) {
            wire_msg_free(resp);
            finish_shutdown(b, "the controller has moved our leaderships away");
            return;
        }
    }
    if (resp) wire_msg_free(resp);
    kick(b); /* the next one may be due already (controlled shutdown paces them closely) */
}

static void send_heartbeat(broker_t *b, int64_t now)
{
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_BROKER_HEARTBEAT, false, 0);
    req.body.broker_heartbeat = (wire_broker_heartbeat_req_t){
        .broker_id = b->id,
        .broker_epoch = b->epoch,
        .metadata_offset = b->applied_offset,
        .want_fence = false,
        .want_shutdown = b->shutting_down,
    };
    b->hb_now = false;
    b->next_hb_ms = now + (b->shutting_down ? BROKER_SHUTDOWN_HEARTBEAT_MS : b->heartbeat_ms);
    int rc = ctl_request(b, &req, on_heartbeat, b);
    if (rc) ctl_error(b, "heartbeat", rc, NULL);
    else b->hb_inflight = true;
}

/* Registration and heartbeats: what is due now. */
static void drive(broker_t *b)
{
    if (b->finished || !b->ctl) return;
    follow_leader(b);
    if (b->shutting_down && b->epoch < 0) {
        finish_shutdown(b, "not registered with a controller");
        return;
    }
    int64_t now = net_now_ms();
    if (b->epoch < 0) {
        if (!b->reg_inflight && now >= b->next_reg_ms) send_registration(b);
    } else if (!b->hb_inflight && (b->hb_now || now >= b->next_hb_ms)) {
        send_heartbeat(b, now);
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    drive(arg);
}

/* ---- producer ids -------------------------------------------------------------- */

static void answer_pid(broker_t *b, net_conn_id_t conn, uint64_t corr)
{
    wire_msg_t resp;
    wire_msg_init(&resp, WIRE_API_INIT_PRODUCER_ID, true, corr);
    resp.body.init_producer_id_resp.producer_id = b->pid_next++;
    resp.body.init_producer_id_resp.producer_epoch = 0; /* a fresh id starts at epoch 0 */
    reply(b, conn, &resp);
}

static void fail_pid_waiters(broker_t *b, int err, const char *why)
{
    while (b->pid_len > 0) {
        pid_waiter_t *w = &b->pid_waiters[b->pid_head];
        b->pid_head = (b->pid_head + 1) % BROKER_MAX_PID_WAITERS;
        b->pid_len--;
        reply_error(b, w->conn, WIRE_API_INIT_PRODUCER_ID, w->correlation_id, err, "%s", why);
    }
}

static void request_pids(broker_t *b);

static void on_pids(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    broker_t *b = arg;
    b->pids_inflight = false;
    int e = response_error(err, resp, WIRE_API_ALLOCATE_PRODUCER_IDS);
    const wire_allocate_producer_ids_resp_t *r = e ? NULL : &resp->body.allocate_producer_ids_resp;
    if (r && (r->first_id < 0 || r->size < 1 || r->first_id > INT64_MAX - r->size)) e = KL_EPROTO;
    if (e) {
        char why[WIRE_ERRMSG_LEN + 64]; /* reply_error cuts it to WIRE_ERRMSG_LEN */
        snprintf(why, sizeof why, "cannot get producer ids from controller %d: %s", b->ctl_id,
                 resp && resp->error_message[0] ? resp->error_message : kl_strerror(e));
        KL_WARN(MOD, "%s", why);
        /* Retriable for the client unless the controller refused for good
         * (the id space is exhausted). */
        fail_pid_waiters(b, e == KL_ERANGE ? e : KL_ENOTCONTROLLER, why);
    } else {
        b->pid_next = r->first_id;
        b->pid_end = r->first_id + r->size;
        KL_INFO(MOD, "producer ids [%lld, %lld) allocated", (long long)b->pid_next, (long long)b->pid_end);
        while (b->pid_len > 0 && b->pid_next < b->pid_end) {
            pid_waiter_t w = b->pid_waiters[b->pid_head];
            b->pid_head = (b->pid_head + 1) % BROKER_MAX_PID_WAITERS;
            b->pid_len--;
            answer_pid(b, w.conn, w.correlation_id);
        }
        if (b->pid_len > 0) request_pids(b);
    }
    if (resp) wire_msg_free(resp);
}

static void request_pids(broker_t *b)
{
    if (b->pids_inflight) return;
    if (!b->ctl || b->epoch < 0) {
        fail_pid_waiters(b, KL_ENOTCONTROLLER, "the broker is not registered with the active controller");
        return;
    }
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_ALLOCATE_PRODUCER_IDS, false, 0);
    req.body.allocate_producer_ids = (wire_allocate_producer_ids_req_t){b->id, b->epoch};
    int rc = ctl_request(b, &req, on_pids, b);
    if (rc) fail_pid_waiters(b, KL_ENOTCONTROLLER, "cannot reach the active controller");
    else b->pids_inflight = true;
}

/* InitProducerId (DESIGN.md §4): ids come from blocks the controller hands
 * this broker; requests wait (bounded) while the next block is fetched. */
static void init_producer_id(broker_t *b, net_conn_id_t conn, const wire_msg_t *req)
{
    if (b->pid_len == 0 && b->pid_next < b->pid_end) {
        answer_pid(b, conn, req->correlation_id);
        return;
    }
    if (b->pid_len == BROKER_MAX_PID_WAITERS) {
        reply_error(b, conn, req->api, req->correlation_id, KL_EFULL, "%d producer id requests are waiting already",
                    BROKER_MAX_PID_WAITERS);
        return;
    }
    b->pid_waiters[(b->pid_head + b->pid_len) % BROKER_MAX_PID_WAITERS] = (pid_waiter_t){conn, req->correlation_id};
    b->pid_len++;
    request_pids(b);
}

/* ---- admin forwarding ------------------------------------------------------------ */

static void on_forward(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    ctl_call_t *c = arg;
    broker_t *b = c->b;
    b->n_forwards--;
    if (!err && resp->api != c->api) err = KL_EPROTO;
    if (err) {
        /* Whether it was done is unknown; the client retries (and learns). */
        reply_error(b, c->conn, c->api, c->correlation_id, KL_ENOTCONTROLLER,
                    "the active controller (node %d) did not answer: %s", c->b->ctl_id, kl_strerror(err));
    } else {
        if (resp->error == KL_ENOTCONTROLLER && resp->leader_id >= 0 && resp->leader_id != b->ctl_id) {
            b->hint_leader = resp->leader_id; /* the client retries; so should we, there */
            kick(b);
        }
        resp->correlation_id = c->correlation_id;
        reply(b, c->conn, resp);
    }
    if (resp) wire_msg_free(resp);
    free(c);
}

static void forward(broker_t *b, net_conn_id_t conn, wire_msg_t *req)
{
    uint64_t corr = req->correlation_id;
    if (!b->ctl || b->finished) {
        reply_error(b, conn, req->api, corr, KL_ESHUTDOWN, "broker %d is shutting down", b->id);
        return;
    }
    if (b->n_forwards >= BROKER_MAX_FORWARDS) {
        reply_error(b, conn, req->api, corr, KL_EFULL, "%d admin requests are waiting for the controller already",
                    BROKER_MAX_FORWARDS);
        return;
    }
    ctl_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        reply_error(b, conn, req->api, corr, KL_ENOMEM, "out of memory");
        return;
    }
    *c = (ctl_call_t){.b = b, .conn = conn, .correlation_id = corr, .api = req->api};
    int rc = ctl_request(b, req, on_forward, c); /* sets req's correlation id to the controller link's */
    if (rc) {
        free(c);
        reply_error(b, conn, req->api, corr, KL_ENOTCONTROLLER, "cannot reach the active controller: %s",
                    kl_strerror(rc));
        return;
    }
    b->n_forwards++;
}

/* ---- bparts environment ------------------------------------------------------------ */

static int64_t env_broker_epoch(void *arg) { return ((broker_t *)arg)->epoch; }

static void on_alter(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    ctl_call_t *c = arg;
    int e = response_error(err, resp, WIRE_API_ALTER_PARTITION);
    c->alter_done(c->alter_arg, e, e ? NULL : &resp->body.alter_partition_resp);
    if (resp) wire_msg_free(resp);
    free(c);
}

/* While the broker stops (no controller channel any more) done runs at once
 * with KL_ESHUTDOWN. */
static void env_send_alter(void *arg, const wire_alter_partition_req_t *r,
                           void (*done)(void *cb_arg, int err, const wire_alter_partition_resp_t *resp), void *cb_arg)
{
    broker_t *b = arg;
    if (!b->ctl) {
        done(cb_arg, KL_ESHUTDOWN, NULL);
        return;
    }
    ctl_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        done(cb_arg, KL_ENOMEM, NULL);
        return;
    }
    *c = (ctl_call_t){.b = b, .api = WIRE_API_ALTER_PARTITION, .alter_done = done, .alter_arg = cb_arg};
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_ALTER_PARTITION, false, 0);
    req.body.alter_partition = *r;
    req.body.alter_partition.broker_id = b->id;
    req.body.alter_partition.broker_epoch = b->epoch;
    int rc = ctl_request(b, &req, on_alter, c);
    if (rc) {
        free(c);
        done(cb_arg, rc, NULL);
    }
}

static int env_broker_addr(void *arg, int32_t broker_id, char *host, size_t hostlen, int *port)
{
    broker_t *b = arg;
    const meta_broker_t *mb = meta_image_broker(b->image, broker_id);
    if (!mb || mb->n_listeners < 1) return KL_ENOENT;
    if ((size_t)snprintf(host, hostlen, "%s", mb->listeners[0].host) >= hostlen) return KL_ETOOBIG;
    *port = mb->listeners[0].port;
    return 0;
}

/* Kafka's broker-wide names for the topic configs whose names differ. */
static const struct {
    const char *topic_key, *server_key;
} config_synonyms[] = {
    {META_CFG_RETENTION_MS, "log.retention.ms"},
    {META_CFG_RETENTION_BYTES, "log.retention.bytes"},
    {META_CFG_SEGMENT_BYTES, "log.segment.bytes"},
    {META_CFG_MAX_MESSAGE_BYTES, "message.max.bytes"},
};

static bool in_schema(const char *key)
{
    for (const kl_config_key_t *k = kcfg_schema(); k->name; k++)
        if (strcmp(k->name, key) == 0) return true;
    return false;
}

/* Topic config, else the cluster-wide config record, else keeld's own value
 * of that key (under its broker-wide name), else KL_ENOENT. */
static int env_topic_config(void *arg, const uint8_t topic_id[KL_UUID_LEN], const char *key, char *out, size_t outlen)
{
    broker_t *b = arg;
    const char *v = meta_image_config(b->image, meta_image_topic_by_uuid(b->image, topic_id), key);
    if (!v) {
        const char *server_key = key;
        for (size_t i = 0; i < sizeof config_synonyms / sizeof config_synonyms[0]; i++)
            if (strcmp(config_synonyms[i].topic_key, key) == 0) server_key = config_synonyms[i].server_key;
        if (in_schema(server_key)) v = kl_config_str(b->cfg, server_key);
    }
    if (!v) return KL_ENOENT;
    return (size_t)snprintf(out, outlen, "%s", v) < outlen ? 0 : KL_ETOOBIG;
}

/* ---- Metadata ------------------------------------------------------------------------ */

static void fill_topic(wire_topic_info_t *ti, const meta_topic_t *t)
{
    snprintf(ti->name, sizeof ti->name, "%s", t->name);
    memcpy(ti->topic_id, t->uuid, KL_UUID_LEN);
    ti->configs = t->configs;
    ti->n_configs = t->n_configs;
    ti->partitions = t->parts;
    ti->n_partitions = t->n_parts;
}

/* Metadata from the committed image (DESIGN.md §4): every registered broker,
 * the requested topics (or all), unknown names with KL_EUNKNOWNPARTITION.
 * Not before this incarnation's registration is applied: until then the
 * image may be empty or old (a restarted broker replaying its log), and a
 * client told "no such topic" would give up on one that exists (found by
 * tools/chaos run after restart-all). Like a Kafka broker, which serves only
 * once it has caught up; the retriable KL_ENOTAVAILABLE sends the client to
 * another broker. */
static void answer_metadata(broker_t *b, net_conn_id_t conn, const wire_msg_t *req)
{
    if (!b->publishing) {
        reply_error(b, conn, req->api, req->correlation_id, KL_ENOTAVAILABLE,
                    "broker %d has not caught up with the metadata log yet", b->id);
        return;
    }
    const meta_image_t *img = b->image;
    const wire_metadata_req_t *mr = &req->body.metadata;
    int nb = meta_image_broker_count(img);
    int nt = mr->n_topics > 0 ? mr->n_topics : meta_image_topic_count(img);
    wire_broker_info_t *brokers = calloc(nb > 0 ? (size_t)nb : 1, sizeof *brokers);
    wire_topic_info_t *topics = calloc(nt > 0 ? (size_t)nt : 1, sizeof *topics);
    if (!brokers || !topics) {
        reply_error(b, conn, req->api, req->correlation_id, KL_ENOMEM, "out of memory for a metadata answer");
        goto out;
    }
    for (int i = 0; i < nb; i++) {
        const meta_broker_t *mb = meta_image_broker_at(img, i);
        wire_broker_info_t *bi = &brokers[i];
        bi->id = mb->id;
        bi->epoch = mb->epoch;
        bi->state = mb->state;
        memcpy(bi->rack, mb->rack, sizeof bi->rack);
        memcpy(bi->listeners, mb->listeners, sizeof bi->listeners);
        bi->n_listeners = mb->n_listeners;
    }
    for (int i = 0; i < nt; i++) {
        if (mr->n_topics == 0) {
            fill_topic(&topics[i], meta_image_topic_at(img, i));
            continue;
        }
        const meta_topic_t *t = meta_image_topic(img, mr->topics[i]);
        if (t) {
            fill_topic(&topics[i], t);
        } else {
            snprintf(topics[i].name, sizeof topics[i].name, "%s", mr->topics[i]);
            topics[i].error = KL_EUNKNOWNPARTITION;
        }
    }
    wire_msg_t resp;
    wire_msg_init(&resp, WIRE_API_METADATA, true, req->correlation_id);
    resp.body.metadata_resp = (wire_metadata_resp_t){
        .controller_id = raft_leader_id(b),
        .metadata_offset = b->applied_offset,
        .brokers = brokers,
        .n_brokers = nb,
        .topics = topics,
        .n_topics = nt,
    };
    reply(b, conn, &resp);
out:
    free(brokers);
    free(topics);
}

/* ---- requests ------------------------------------------------------------------------- */

void broker_on_request(broker_t *b, net_conn_id_t conn, wire_msg_t *req)
{
    wire_msg_t resp;
    switch (req->api) {
    case WIRE_API_PRODUCE:
    case WIRE_API_FETCH:
    case WIRE_API_LIST_OFFSETS:
        if (b->bp) {
            bparts_on_request(b->bp, conn, req);
            return;
        }
        reply_error(b, conn, req->api, req->correlation_id, KL_ESHUTDOWN, "broker %d is shutting down", b->id);
        break;
    case WIRE_API_CREATE_TOPIC:
    case WIRE_API_DELETE_TOPIC:
    case WIRE_API_ELECT_LEADERS: forward(b, conn, req); break;
    case WIRE_API_METADATA: answer_metadata(b, conn, req); break;
    case WIRE_API_INIT_PRODUCER_ID: init_producer_id(b, conn, req); break;
    case WIRE_API_API_VERSIONS:
        wire_msg_init(&resp, req->api, true, req->correlation_id);
        wire_api_versions_local(&resp.body.api_versions);
        reply(b, conn, &resp);
        break;
    default:
        reply_error(b, conn, req->api, req->correlation_id, KL_EUNSUPPORTED, "a broker does not serve %s",
                    wire_api_name(req->api));
        break;
    }
    wire_msg_free(req);
}

void broker_on_conn_closed(broker_t *b, net_conn_id_t conn)
{
    if (b->bp) bparts_on_conn_closed(b->bp, conn);
}

/* ---- housekeeping: snapshots, heartbeats, shutdown deadline -------------------------- */

/* The broker's copy of the metadata log stays bounded like the controllers'
 * (DESIGN.md §2 snapshots): same keys, same policy. */
static int encode_image(void *arg, kl_buf_t *out) { return wire_meta_encode_snapshot(((broker_t *)arg)->image, out); }

static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    broker_t *b = arg;
    if (b->finished) return;
    int64_t now = net_now_ms();
    if (b->shutting_down && now >= b->shutdown_deadline) {
        finish_shutdown(b, "controlled.shutdown.timeout.ms elapsed; leaderships move when the session expires");
        return;
    }
    quorum_maybe_snapshot(b->quorum, &b->snap, now, encode_image, b);
    drive(b);
}

/* ---- controlled shutdown ------------------------------------------------------------------ */

/* Fails every request waiting on the controller (KL_ECLOSED reaches bparts
 * and clients), while bparts is still open to hear it. */
static void stop_controller_channel(broker_t *b)
{
    net_peer_t *p = b->ctl;
    b->ctl = NULL;
    net_peer_free(p);
    fail_pid_waiters(b, KL_ESHUTDOWN, "the broker is shutting down");
}

static void finish_shutdown(broker_t *b, const char *why)
{
    if (b->finished) return;
    b->finished = true;
    KL_INFO(MOD, "controlled shutdown: %s; stopping the partitions", why);
    stop_controller_channel(b);
    if (b->bp) bparts_close(b->bp);
    b->bp = NULL;
    b->publishing = false;
    quorum_close(b->quorum);
    b->quorum = NULL;
    b->shutdown_done(b->shutdown_arg);
}

void broker_shutdown(broker_t *b, void (*done)(void *arg), void *arg)
{
    if (b->shutdown_done) return; /* under way: the first `done` runs */
    b->shutdown_done = done;
    b->shutdown_arg = arg;
    int64_t timeout = kl_config_int(b->cfg, "controlled.shutdown.timeout.ms");
    b->shutdown_deadline = net_now_ms() + timeout;
    b->shutting_down = true;
    if (b->epoch < 0 || timeout == 0 || !b->ctl) {
        finish_shutdown(b, b->epoch < 0 ? "not registered" : "controlled.shutdown.timeout.ms is 0");
        return;
    }
    KL_INFO(MOD, "controlled shutdown: asking controller %d to move %d leaderships away (at most %lld ms)",
            b->ctl_id, b->bp ? bparts_leader_count(b->bp) : 0, (long long)timeout);
    b->hb_now = true;
    kick(b);
}

/* ---- configuration -------------------------------------------------------------------------- */

static bool wildcard_host(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return a4.s_addr == htonl(INADDR_ANY);
    if (inet_pton(AF_INET6, host, &a6) == 1) return IN6_IS_ADDR_UNSPECIFIED(&a6);
    return false;
}

/* The listeners this broker advertises in its registration: one per
 * protocol, named after it, each with a host and port others can dial. */
static int read_listeners(broker_t *b, char *err, size_t errlen)
{
    kcfg_listener_t ls[KCFG_MAX_LISTENERS];
    int n;
    int rc = kcfg_parse_listeners(kl_config_str(b->cfg, "listeners"), ls, KCFG_MAX_LISTENERS, &n, err, errlen);
    if (rc) return rc;
    _Static_assert(KCFG_MAX_LISTENERS <= META_MAX_LISTENERS, "every configured listener can be advertised");
    for (int i = 0; i < n; i++) {
        const char *name = ls[i].proto == KCFG_SSL ? "SSL" : "PLAINTEXT";
        if (wildcard_host(ls[i].host) || ls[i].port == 0) {
            snprintf(err, errlen,
                     "listeners: %s://%s:%d: a broker advertises its listeners to clients and other brokers, "
                     "so each needs a host they can reach and a fixed port (not a wildcard address or port 0)",
                     name, ls[i].host, ls[i].port);
            return KL_ECONFIG;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(b->listeners[j].name, name) == 0) {
                snprintf(err, errlen, "listeners: more than one %s listener (a broker advertises one per protocol)",
                         name);
                return KL_ECONFIG;
            }
        if (meta_listener_set(&b->listeners[i], name, ls[i].host, ls[i].port) != 0) {
            snprintf(err, errlen, "listeners: cannot advertise %s://%s:%d", name, ls[i].host, ls[i].port);
            return KL_ECONFIG;
        }
    }
    b->n_listeners = n;
    return 0;
}

static int read_config(broker_t *b, char *err, size_t errlen)
{
    const kl_config_t *cfg = b->cfg;
    b->id = (int32_t)kl_config_int(cfg, "node.id");
    int rc = read_listeners(b, err, errlen);
    if (rc) return rc;
    const char *rack = kl_config_str(cfg, "broker.rack");
    if (rack && (size_t)snprintf(b->rack, sizeof b->rack, "%s", rack) >= sizeof b->rack) {
        snprintf(err, errlen, "broker.rack: longer than %d characters", META_MAX_RACK_LEN);
        return KL_ECONFIG;
    }
    rc = kcfg_parse_voters(kl_config_str(cfg, "controller.quorum.voters"), b->voters, RAFT_MAX_VOTERS, &b->n_voters,
                           err, errlen);
    if (rc) return rc;
    /* Partitions live in the first of log.dirs (broker.h). */
    const char *dirs = kl_config_str(cfg, "log.dirs");
    size_t start = strspn(dirs, " \t,");
    size_t len = strcspn(dirs + start, ",");
    while (len > 0 && (dirs[start + len - 1] == ' ' || dirs[start + len - 1] == '\t')) len--;
    if (len == 0 || len >= sizeof b->log_dir) {
        snprintf(err, errlen, "log.dirs: %s", len ? "first entry too long" : "empty");
        return KL_ECONFIG;
    }
    memcpy(b->log_dir, dirs + start, len);
    b->log_dir[len] = '\0';
    b->heartbeat_ms = kl_config_int(cfg, "broker.heartbeat.interval.ms");
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int broker_open(net_loop_t *loop, const kl_config_t *cfg, const char *metadata_dir, const char *cluster_id,
                net_tls_t *client_tls, broker_t **out, char *err, size_t errlen)
{
    broker_t *b = calloc(1, sizeof *b);
    if (!b) return KL_ENOMEM;
    b->loop = loop;
    b->cfg = cfg;
    b->client_tls = client_tls;
    snprintf(b->cluster_id, sizeof b->cluster_id, "%s", cluster_id);
    b->applied_offset = -1;
    b->epoch = b->seen_epoch = -1;
    b->own_state = -1;
    b->ctl_id = b->hint_leader = RAFT_NO_NODE;
    b->reg_backoff_ms = BROKER_RETRY_MIN_MS;
    quorum_snapshot_policy_init(&b->snap, cfg, net_now_ms());
    int rc = read_config(b, err, errlen);
    if (rc) goto fail;
    if ((rc = kl_uuid_random(b->incarnation)) != 0) {
        snprintf(err, errlen, "cannot draw a random incarnation id: %s", kl_strerror(rc));
        goto fail;
    }
    b->image = meta_image_new();
    int64_t period = b->heartbeat_ms < BROKER_HOUSEKEEPING_MS ? b->heartbeat_ms : BROKER_HOUSEKEEPING_MS;
    b->housekeeping_ev = event_new(net_loop_base(loop), -1, EV_PERSIST, on_housekeeping, b);
    b->kick_ev = evtimer_new(net_loop_base(loop), on_kick, b);
    if (!b->image || !b->housekeeping_ev || !b->kick_ev) {
        snprintf(err, errlen, "out of memory");
        rc = KL_ENOMEM;
        goto fail;
    }
    b->env = (bparts_env_t){
        .loop = loop,
        .cfg = cfg,
        .broker_id = b->id,
        .log_dir = b->log_dir,
        .client_tls = client_tls,
        .cluster_id = b->cluster_id,
        .broker_epoch = env_broker_epoch,
        .send_alter = env_send_alter,
        .broker_addr = env_broker_addr,
        .topic_config = env_topic_config,
        .arg = b,
    };
    if ((rc = bparts_open(&b->env, &b->bp, err, errlen)) != 0) goto fail;
    quorum_options_t qo = {
        .cfg = cfg,
        .metadata_dir = metadata_dir,
        .cluster_id = cluster_id,
        .loop = loop,
        .client_tls = client_tls,
        .sm = {.apply = sm_apply, .restore = sm_restore, .role_changed = sm_role_changed, .arg = b},
    };
    if ((rc = quorum_open(&qo, &b->quorum, err, errlen)) != 0) goto fail;
    /* Until Raft names the leader, the first voter is as good a guess as any:
     * it answers KL_ENOTCONTROLLER and Raft soon tells us better. */
    int32_t leader = raft_leader_id(b);
    if ((rc = connect_controller(b, leader != RAFT_NO_NODE ? leader : b->voters[0].id, leader != RAFT_NO_NODE)) != 0) {
        snprintf(err, errlen, "cannot create the connection to the controller: %s", kl_strerror(rc));
        goto fail;
    }
    struct timeval tv = {period / 1000, (period % 1000) * 1000};
    event_add(b->housekeeping_ev, &tv);
    char inc[KL_UUID_STR_LEN + 1];
    kl_uuid_to_string(b->incarnation, inc);
    KL_INFO(MOD, "broker %d starting (incarnation %s, %d listeners, rack '%s', partitions in %s)", b->id, inc,
            b->n_listeners, b->rack, b->log_dir);
    kick(b);
    *out = b;
    return 0;
fail:
    broker_close(b);
    return rc;
}

void broker_close(broker_t *b)
{
    if (!b) return;
    b->finished = true; /* no more controller traffic from callbacks */
    stop_controller_channel(b);
    if (b->housekeeping_ev) event_free(b->housekeeping_ev);
    if (b->kick_ev) event_free(b->kick_ev);
    if (b->bp) bparts_close(b->bp);
    quorum_close(b->quorum);
    meta_image_free(b->image);
    free(b);
}
