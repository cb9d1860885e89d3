/* quorum.c — runs the pure Raft core over real disks and sockets, doing what
 * each raft_update_t asks in the order raft.h fixes: persist state, install
 * snapshot, truncate, append + fsync, send, apply (DESIGN.md §2, §6). */
#include "keel/quorum.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "keel/err.h"
#include "keel/kcfg.h"
#include "keel/log.h"
#include "keel/qstate.h"
#include "keel/raftlog.h"
#include "keel/snapfile.h"
#include "keel/uuid.h"

#define MOD "quorum"
#define TICK_MAX_MS 50        /* the core is ticked at least this often */
#define QUEUE_MAX 1024        /* events waiting while a step runs */
#define REDIRECT_MSG_LEN 160
/* Entry bytes handed to one raftlog_append, which refuses more than
 * SEGLOG_MAX_APPEND_BYTES once encoded, while the core may hand over up to
 * 64 MiB of proposals in one update. One entry always fits; framing adds at
 * most 74 bytes an entry (batch header + record), < 5 MiB for the at most
 * 65537 entries of one update (RAFT_MAX_FETCH_ENTRIES, or the leader's
 * pending proposals and its leader-change record). */
#define APPEND_CHUNK_BYTES (32u << 20)
#define APPEND_FRAMING_MAX_BYTES (5u << 20)
_Static_assert(APPEND_CHUNK_BYTES >= RAFT_MAX_ENTRY_BYTES &&
                   APPEND_CHUNK_BYTES + APPEND_FRAMING_MAX_BYTES <= SEGLOG_MAX_APPEND_BYTES,
               "an append chunk holds any one entry and fits one raftlog_append");

typedef struct pending_in {
    bool used;
    int32_t from;
    uint64_t rpc_id;
    uint32_t api;
    uint64_t correlation_id;
    net_conn_id_t conn;
    int64_t since_ms;
} pending_in_t;

typedef struct voter_peer {
    int32_t id;
    char host[KCFG_HOST_LEN];
    int port;
    net_peer_t *peer; /* NULL for ourselves */
    quorum_t *q;
} voter_peer_t;

/* Events that arrive while the core is stepping wait here, so the core is
 * never re-entered from a callback. PERSISTED never waits here: it is fed
 * right after the fsync it reports (see step()), so it cannot be dropped. */
typedef struct queued {
    raft_event_type_t type;
    wire_msg_t *msg; /* RECV: owned */
    int32_t peer;    /* PEER_DOWN */
} queued_t;

struct quorum {
    quorum_options_t opt;
    char cluster_id[64];
    int32_t node_id;
    raft_t *raft;
    raftlog_t *log;
    char dir[4096];
    voter_peer_t voters[RAFT_MAX_VOTERS];
    int n_voters;
    int request_timeout_ms;
    int fetch_max_wait_ms;
    pending_in_t pending[QUORUM_MAX_PENDING_INBOUND];
    queued_t queue[QUEUE_MAX];
    int q_head, q_len;
    bool draining; /* drain() runs: callbacks only queue */
    bool stepping; /* a step and its update run: the core must not be entered */
    bool closing;  /* no core steps from callbacks fired while tearing down */
    struct event *tick_ev;
    int64_t applied_end;
    int64_t bytes_since_snapshot;
    void (*shutdown_done)(void *);
    void *shutdown_arg;
    struct event *shutdown_ev;
    int64_t shutdown_deadline;
    int32_t shutdown_epoch;
};

static void drain(quorum_t *q);

/* Disk errors under Raft are fatal: continuing after a failed fsync could
 * acknowledge what is not durable (DESIGN.md §2 "appended only after fsync"). */
static _Noreturn void fatal(const char *what, int rc)
{
    KL_ERROR(MOD, "fatal: %s: %s; stopping so that nothing undurable is relied on", what,
             kl_strerror(rc));
    exit(1);
}

static bool enqueue(quorum_t *q, const queued_t *e)
{
    if (q->q_len == QUEUE_MAX) {
        /* Dropping is safe: the core retries requests on its timers. */
        const char *what = e->msg ? raft_msg_type_name(e->msg->body.raft.type)
                           : e->type == RAFT_EV_TICK ? "tick" : "peer-down event";
        KL_WARN(MOD, "event queue full (%d); dropping a %s", QUEUE_MAX, what);
        if (e->msg) wire_msg_free(e->msg);
        return false;
    }
    q->queue[(q->q_head + q->q_len) % QUEUE_MAX] = *e;
    q->q_len++;
    return true;
}

/* ---- sending -------------------------------------------------------------- */

static bool is_response(raft_msg_type_t t)
{
    return t == RAFT_MSG_VOTE_RESP || t == RAFT_MSG_BEGIN_EPOCH_RESP ||
           t == RAFT_MSG_END_EPOCH_RESP || t == RAFT_MSG_FETCH_RESP ||
           t == RAFT_MSG_FETCH_SNAPSHOT_RESP;
}

static voter_peer_t *voter(quorum_t *q, int32_t id)
{
    for (int i = 0; i < q->n_voters; i++)
        if (q->voters[i].id == id) return &q->voters[i];
    return NULL;
}

/* Only these APIs carry body.raft; reading it from any other message would
 * read another member of the union. */
static bool is_raft_api(uint32_t api) { return api >= WIRE_API_VOTE && api <= WIRE_API_FETCH_SNAPSHOT; }

static void on_response(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    voter_peer_t *v = arg;
    quorum_t *q = v->q;
    if (q->closing) {
        if (resp) wire_msg_free(resp);
        return;
    }
    if (err) {
        /* Not fatal: the core notices the silence and retries or elects. */
        KL_DEBUG(MOD, "request to %s failed: %s", net_peer_name(p), kl_strerror(err));
        return;
    }
    const char *why = NULL;
    char buf[WIRE_ERRMSG_LEN + 2 * WIRE_HOST_LEN];
    if (resp->error) {
        snprintf(buf, sizeof buf, "%s: %s", kl_errname(resp->error), resp->error_message);
        why = buf;
    } else if (strcmp(resp->cluster_id, q->cluster_id) != 0) {
        snprintf(buf, sizeof buf, "it belongs to cluster '%s', not %s", resp->cluster_id, q->cluster_id);
        why = buf;
    } else if (!is_raft_api(resp->api)) {
        why = "not a Raft response";
    } else if (resp->body.raft.from != v->id) {
        /* The core trusts `from` (votes, fetch state): only voter v may speak for v. */
        snprintf(buf, sizeof buf, "it claims to be node %d, but %s is voter %d in controller.quorum.voters",
                 resp->body.raft.from, net_peer_name(p), v->id);
        why = buf;
    }
    if (why) {
        KL_WARN(MOD, "ignoring %s from %s: %s", wire_api_name(resp->api), net_peer_name(p), why);
        wire_msg_free(resp);
        return;
    }
    enqueue(q, &(queued_t){.type = RAFT_EV_RECV, .msg = resp});
    drain(q);
}

static void send_request(quorum_t *q, const raft_msg_t *m)
{
    voter_peer_t *v = voter(q, m->to);
    if (!v || !v->peer) {
        KL_WARN(MOD, "core sent %s to node %d, which is not another voter", raft_msg_type_name(m->type),
                m->to);
        return;
    }
    wire_msg_t req;
    wire_msg_init(&req, wire_api_for_raft(m->type), false, 0);
    snprintf(req.cluster_id, sizeof req.cluster_id, "%s", q->cluster_id);
    req.body.raft = *m;
    /* A fetch may be long-polled by the leader, so it gets that much longer. */
    int timeout = q->request_timeout_ms + (m->type == RAFT_MSG_FETCH_REQ ? q->fetch_max_wait_ms : 0);
    int rc = net_request(v->peer, &req, timeout, on_response, v);
    if (rc) KL_DEBUG(MOD, "cannot send %s to node %d: %s", raft_msg_type_name(m->type), m->to, kl_strerror(rc));
}

/* A request is known by (sender, rpc id, api): rpc ids restart at 1 when the
 * sender restarts, so the api keeps an answer meant for a request of its
 * previous life from going out under another request's correlation id. */
static pending_in_t *find_pending(quorum_t *q, int32_t from, uint64_t rpc_id, uint32_t api)
{
    for (int i = 0; i < QUORUM_MAX_PENDING_INBOUND; i++) {
        pending_in_t *p = &q->pending[i];
        if (p->used && p->from == from && p->rpc_id == rpc_id && p->api == api) return p;
    }
    return NULL;
}

static void send_response(quorum_t *q, const raft_msg_t *m)
{
    pending_in_t *p = find_pending(q, m->to, m->rpc_id, wire_api_for_raft(m->type));
    if (!p) {
        KL_DEBUG(MOD, "no pending request from node %d rpc %llu for %s (connection gone)", m->to,
                 (unsigned long long)m->rpc_id, raft_msg_type_name(m->type));
        return;
    }
    wire_msg_t resp;
    wire_msg_init(&resp, p->api, true, p->correlation_id);
    snprintf(resp.cluster_id, sizeof resp.cluster_id, "%s", q->cluster_id);
    resp.body.raft = *m;
    int rc = net_reply(q->opt.loop, p->conn, &resp);
    if (rc) KL_DEBUG(MOD, "reply to node %d: %s", m->to, kl_strerror(rc));
    p->used = false;
}

/* ---- applying an update -------------------------------------------------- */

static void log_notes(const raft_update_t *u)
{
    static const kl_log_level_t lv[] = {KL_LOG_DEBUG, KL_LOG_INFO, KL_LOG_WARN, KL_LOG_ERROR};
    for (int i = 0; i < u->n_notes; i++) {
        int l = u->notes[i].level;
        kl_log_write(lv[l < 0 ? 0 : l > 3 ? 3 : l], "raft", "%s", u->notes[i].text);
    }
}

/* raft.h step 2. The snapshot goes into the state machine before anything is
 * stored: one that does not decode must not replace our log on disk, or this
 * node could never start again. Nothing observes the state in between. */
static void install_snapshot(quorum_t *q, const raft_update_t *u)
{
    const raft_snapshot_id_t id = u->snapshot_id;
    int rc = q->opt.sm.restore(q->opt.sm.arg, id, u->snapshot_data, u->snapshot_len);
    if (rc) {
        KL_ERROR(MOD,
                 "fatal: the snapshot ending at offset %lld (epoch %d) from leader %d does not decode: %s; "
                 "stopping before storing it (the log on disk is unchanged)",
                 (long long)id.end_offset, id.last_epoch, raft_leader(q->raft), kl_strerror(rc));
        exit(1);
    }
    if ((rc = snapfile_write(q->dir, id, u->snapshot_data, u->snapshot_len)) != 0)
        fatal("cannot write the leader's snapshot", rc);
    /* A crash from here until the reset is repaired by load_state(). */
    if ((rc = raftlog_reset(q->log, id.end_offset)) != 0)
        fatal("cannot reset the metadata log after a snapshot", rc);
    if ((rc = snapfile_delete_older(q->dir, id)) != 0)
        KL_WARN(MOD, "cannot delete snapshots older than offset %lld: %s", (long long)id.end_offset,
                kl_strerror(rc));
    q->applied_end = id.end_offset;
    q->bytes_since_snapshot = 0;
    KL_INFO(MOD, "installed snapshot ending at offset %lld (epoch %d)", (long long)id.end_offset,
            id.last_epoch);
}

/* raft.h step 4, in pieces raftlog_append accepts (APPEND_CHUNK_BYTES). */
static void append_entries(quorum_t *q, const raft_entry_t *es, int n)
{
    int rc;
    for (int i = 0, j; i < n; i = j) {
        uint64_t bytes = es[i].len;
        for (j = i + 1; j < n && bytes + es[j].len <= APPEND_CHUNK_BYTES; j++) bytes += es[j].len;
        if ((rc = raftlog_append(q->log, es + i, j - i)) != 0) fatal("cannot append to the metadata log", rc);
        q->bytes_since_snapshot += (int64_t)bytes;
    }
    if ((rc = raftlog_sync(q->log)) != 0) fatal("cannot fsync the metadata log", rc);
}

/* Does what an update asks, in raft.h's order. Returns the log end it made
 * durable, for RAFT_EV_PERSISTED, or -1. */
static int64_t apply_update(quorum_t *q, const raft_update_t *u)
{
    log_notes(u);
    int rc;
    if (u->persist_state && (rc = qstate_write(q->dir, &u->hard_state)) != 0)
        fatal("cannot persist quorum-state", rc);
    if (u->install_snapshot) install_snapshot(q, u);
    if (u->truncate_to >= 0 && (rc = raftlog_truncate(q->log, u->truncate_to)) != 0)
        fatal("cannot truncate the metadata log", rc);
    int64_t synced = -1;
    if (u->n_entries > 0) {
        append_entries(q, u->entries, u->n_entries);
        synced = u->entries[u->n_entries - 1].offset + 1;
    }
    for (int i = 0; i < u->n_msgs; i++) {
        if (is_response(u->msgs[i].type)) send_response(q, &u->msgs[i]);
        else send_request(q, &u->msgs[i]);
    }
    int64_t from = u->apply_from > q->applied_end ? u->apply_from : q->applied_end;
    for (int64_t off = from; off < u->high_watermark; off++) {
        const raft_entry_t *e = raft_entry_at(q->raft, off);
        KL_ASSERT(e != NULL); /* committed entries stay until the next snapshot */
        q->opt.sm.apply(q->opt.sm.arg, e);
        q->applied_end = off + 1;
    }
    if (u->role_changed)
        q->opt.sm.role_changed(q->opt.sm.arg, raft_role(q->raft), raft_epoch(q->raft),
                               raft_leader(q->raft));
    return synced;
}

/* The one way into the core: steps it, does the update, and reports the fsync
 * that update did at once (raft.h step 4; it may bring more to do). On return
 * *u still holds the first update's results, but its pointers are stale. The
 * quorum_sm callbacks run inside; they must not call back in (quorum.h). */
static int step(quorum_t *q, raft_event_t *ev, raft_update_t *u)
{
    KL_ASSERT(!q->stepping); /* raft.h: an update's pointers die with the next step */
    q->stepping = true;
    ev->now_ms = net_now_ms();
    int rc = raft_step(q->raft, ev, u);
    int64_t synced = rc ? -1 : apply_update(q, u);
    while (synced >= 0) {
        raft_event_t pe = {.type = RAFT_EV_PERSISTED, .now_ms = net_now_ms(), .u.persisted_end = synced};
        raft_update_t pu;
        int prc = raft_step(q->raft, &pe, &pu);
        KL_ASSERT(prc == 0); /* the log just synced reaches `synced` */
        synced = apply_update(q, &pu);
    }
    q->stepping = false;
    return rc;
}

static void rearm_tick(quorum_t *q)
{
    int64_t delay = raft_next_deadline(q->raft) - net_now_ms();
    if (delay < 1) delay = 1;
    if (delay > TICK_MAX_MS) delay = TICK_MAX_MS;
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    evtimer_add(q->tick_ev, &tv);
}

static void reply_error(quorum_t *q, net_conn_id_t conn, const wire_msg_t *req, int err, const char *msg)
{
    wire_msg_t resp;
    wire_msg_init(&resp, req->api, true, req->correlation_id);
    resp.error = err;
    snprintf(resp.error_message, sizeof resp.error_message, "%s", msg);
    snprintf(resp.cluster_id, sizeof resp.cluster_id, "%s", q->cluster_id);
    int rc = net_reply(q->opt.loop, conn, &resp);
    if (rc) KL_DEBUG(MOD, "error reply to %s: %s", net_conn_addr(q->opt.loop, conn), kl_strerror(rc));
}

/* The core refused a message that fails its checks (malformed, not for us). A
 * refused request is answered with the reason at once: its sender need not
 * wait out a timeout, and its pending slot is free again. */
static void refused(quorum_t *q, const queued_t *e, int rc)
{
    if (e->type != RAFT_EV_RECV) {
        KL_WARN(MOD, "the Raft core refused a %s event: %s", e->type == RAFT_EV_TICK ? "tick" : "peer-down",
                kl_strerror(rc));
        return;
    }
    const wire_msg_t *m = e->msg;
    const raft_msg_t *r = &m->body.raft;
    char msg[REDIRECT_MSG_LEN];
    snprintf(msg, sizeof msg, "node %d refused %s from node %d for node %d in epoch %d: %s", q->node_id,
             raft_msg_type_name(r->type), r->from, r->to, r->epoch, kl_strerror(rc));
    KL_WARN(MOD, "%s", msg);
    pending_in_t *p = m->response ? NULL : find_pending(q, r->from, r->rpc_id, m->api);
    if (!p) return;
    reply_error(q, p->conn, m, rc, msg);
    p->used = false;
}

static void drain(quorum_t *q)
{
    if (q->draining || q->stepping) return; /* whoever runs the core picks the new events up */
    q->draining = true;
    while (q->q_len > 0) {
        queued_t e = q->queue[q->q_head];
        q->q_head = (q->q_head + 1) % QUEUE_MAX;
        q->q_len--;
        raft_event_t ev = {.type = e.type};
        if (e.type == RAFT_EV_RECV) ev.u.msg = &e.msg->body.raft;
        else if (e.type == RAFT_EV_PEER_DOWN) ev.u.peer = e.peer;
        raft_update_t u;
        int rc = step(q, &ev, &u);
        if (rc) refused(q, &e, rc);
        if (e.msg) wire_msg_free(e.msg);
    }
    q->draining = false;
    if (q->tick_ev) rearm_tick(q);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    quorum_t *q = arg;
    enqueue(q, &(queued_t){.type = RAFT_EV_TICK});
    drain(q);
}

static void on_peer_state(net_peer_t *p, bool connected, void *arg)
{
    voter_peer_t *v = arg;
    (void)p;
    if (v->q->closing) return;
    if (connected) {
        KL_INFO(MOD, "connected to voter %d at %s:%d", v->id, v->host, v->port);
        return;
    }
    /* EOF/RST/refused: lets a follower elect quickly instead of waiting out
     * the fetch timeout (DESIGN.md §2 "faster than KRaft on crashes"). */
    enqueue(v->q, &(queued_t){.type = RAFT_EV_PEER_DOWN, .peer = v->id});
    drain(v->q);
}

/* ---- inbound requests ----------------------------------------------------- */

/* A free slot for a request from conn, or NULL when every slot is taken or
 * conn already holds its share: a Raft peer has at most a fetch, a vote and
 * an epoch message outstanding, so one connection cannot crowd out the rest. */
static pending_in_t *alloc_pending(quorum_t *q, int64_t now, net_conn_id_t conn)
{
    pending_in_t *free_slot = NULL;
    int on_conn = 0;
    for (int i = 0; i < QUORUM_MAX_PENDING_INBOUND; i++) {
        pending_in_t *p = &q->pending[i];
        /* A request the core never answered (e.g. a long-poll replaced by a
         * newer fetch) is stale long after its sender gave up. */
        if (p->used && now - p->since_ms > QUORUM_PENDING_MAX_AGE_MS) p->used = false;
        if (p->used && p->conn == conn) on_conn++;
        if (!p->used && !free_slot) free_slot = p;
    }
    return on_conn < QUORUM_MAX_PENDING_PER_CONN ? free_slot : NULL;
}

void quorum_on_request(quorum_t *q, net_conn_id_t conn, wire_msg_t *req)
{
    char msg[REDIRECT_MSG_LEN];
    if (!is_raft_api(req->api)) {
        snprintf(msg, sizeof msg, "%s is not a Raft request", wire_api_name(req->api));
        reply_error(q, conn, req, KL_EUNKNOWNAPI, msg);
        wire_msg_free(req);
        return;
    }
    /* Raft traffic always names its cluster: a voter of another cluster
     * pointed at us by a config mistake must never vote or replicate here. */
    if (strcmp(req->cluster_id, q->cluster_id) != 0) {
        KL_WARN(MOD, "refusing %s from %s: cluster id '%s' is not ours (%s)", wire_api_name(req->api),
                net_conn_addr(q->opt.loop, conn), req->cluster_id, q->cluster_id);
        snprintf(msg, sizeof msg, "cluster id '%s' does not match %s", req->cluster_id, q->cluster_id);
        reply_error(q, conn, req, KL_ECLUSTERID, msg);
        wire_msg_free(req);
        return;
    }
    if (req->body.raft.to != q->node_id) {
        snprintf(msg, sizeof msg, "request for node %d reached node %d", req->body.raft.to, q->node_id);
        KL_WARN(MOD, "%s (from %s)", msg, net_conn_addr(q->opt.loop, conn));
        reply_error(q, conn, req, KL_ENODEID, msg);
        wire_msg_free(req);
        return;
    }
    int64_t now = net_now_ms();
    pending_in_t *p = find_pending(q, req->body.raft.from, req->body.raft.rpc_id, req->api);
    if (!p) {
        /* A Raft sender keeps at most one request of each kind in flight, so
         * a new one means it gave up on the older (e.g. a long-polled fetch
         * that timed out): its slot would only wait out its age otherwise. */
        for (int i = 0; i < QUORUM_MAX_PENDING_INBOUND; i++) {
            pending_in_t *old = &q->pending[i];
            if (old->used && old->from == req->body.raft.from && old->api == req->api) old->used = false;
        }
        p = alloc_pending(q, now, conn);
    }
    if (!p) {
        KL_WARN(MOD, "Raft requests pending (limits: %d in all, %d a connection); refusing one from %s",
                QUORUM_MAX_PENDING_INBOUND, QUORUM_MAX_PENDING_PER_CONN, net_conn_addr(q->opt.loop, conn));
        reply_error(q, conn, req, KL_EFULL, "too many pending Raft requests");
        wire_msg_free(req);
        return;
    }
    *p = (pending_in_t){.used = true, .from = req->body.raft.from, .rpc_id = req->body.raft.rpc_id,
                        .api = req->api, .correlation_id = req->correlation_id, .conn = conn,
                        .since_ms = now};
    if (!enqueue(q, &(queued_t){.type = RAFT_EV_RECV, .msg = req})) p->used = false;
    drain(q);
}

void quorum_on_conn_closed(quorum_t *q, net_conn_id_t conn)
{
    for (int i = 0; i < QUORUM_MAX_PENDING_INBOUND; i++)
        if (q->pending[i].used && q->pending[i].conn == conn) q->pending[i].used = false;
}

/* ---- application interface ---------------------------------------------- */

int quorum_propose(quorum_t *q, const uint8_t *data, uint32_t len, int64_t *offset, int32_t *epoch)
{
    const uint8_t *const datas[1] = {data};
    const uint32_t lens[1] = {len};
    raft_event_t ev = {.type = RAFT_EV_PROPOSE};
    ev.u.propose.data = datas;
    ev.u.propose.len = lens;
    ev.u.propose.n = 1;
    raft_update_t u;
    /* Called from the loop outside any step (step() asserts it), so nothing is
     * queued that should have gone first. */
    int rc = step(q, &ev, &u);
    drain(q); /* and re-arms the tick: a proposal sets the linger deadline */
    if (rc) return rc;
    if (u.propose_error) return u.propose_error;
    if (offset) *offset = u.propose_first_offset;
    if (epoch) *epoch = u.propose_epoch;
    return 0;
}

int quorum_snapshot(quorum_t *q, int64_t end_offset, const uint8_t *data, uint64_t len)
{
    if (end_offset <= raft_log_start(q->raft) || end_offset > q->applied_end) return KL_EINVAL;
    const raft_entry_t *last = raft_entry_at(q->raft, end_offset - 1);
    if (!last) return KL_EINVAL;
    raft_snapshot_id_t id = {.end_offset = end_offset, .last_epoch = last->epoch};
    /* Durable before the core hears of it (RAFT_EV_SNAPSHOT). Should the core
     * refuse it, the file is still a true snapshot of applied, so committed,
     * state, and load_state() may use it. */
    int rc = snapfile_write(q->dir, id, data, len);
    if (rc) {
        KL_ERROR(MOD, "cannot write snapshot at %lld: %s", (long long)end_offset, kl_strerror(rc));
        return rc;
    }
    raft_event_t ev = {.type = RAFT_EV_SNAPSHOT};
    ev.u.snapshot.id = id;
    ev.u.snapshot.data = data;
    ev.u.snapshot.len = len;
    raft_update_t u;
    rc = step(q, &ev, &u);
    if (rc == 0) {
        /* Only now is the log below the snapshot redundant; older snapshots go
         * last, so a crash anywhere leaves a snapshot that the log continues. */
        int drc = raftlog_delete_before(q->log, end_offset);
        if (drc)
            KL_WARN(MOD, "cannot delete log segments below %lld: %s", (long long)end_offset, kl_strerror(drc));
        if ((drc = snapfile_delete_older(q->dir, id)) != 0)
            KL_WARN(MOD, "cannot delete snapshots older than offset %lld: %s", (long long)end_offset,
                    kl_strerror(drc));
        q->bytes_since_snapshot = 0;
        KL_INFO(MOD, "snapshot at offset %lld (epoch %d, %llu bytes); metadata log now starts at %lld",
                (long long)end_offset, id.last_epoch, (unsigned long long)len,
                (long long)raftlog_start_offset(q->log));
    } else {
        KL_ERROR(MOD, "the Raft core refused the snapshot at offset %lld: %s", (long long)end_offset,
                 kl_strerror(rc));
    }
    drain(q);
    return rc;
}

void quorum_describe(quorum_t *q, wire_msg_t *resp)
{
    raft_quorum_info_t info;
    int64_t now = net_now_ms(), wall = net_wall_ms();
    int rc = raft_describe(q->raft, now, &info);
    snprintf(resp->cluster_id, sizeof resp->cluster_id, "%s", q->cluster_id);
    if (rc) {
        /* The address of the leader, from controller.quorum.voters, so the
         * client retries there; a leader that resigned (shutting down) still
         * names itself, which would only send the client back here. */
        int32_t leader = info.leader_id == q->node_id ? RAFT_NO_NODE : info.leader_id;
        resp->error = KL_ENOTLEADER;
        resp->leader_id = leader;
        voter_peer_t *v = voter(q, leader);
        if (v) {
            snprintf(resp->leader_host, sizeof resp->leader_host, "%s", v->host);
            resp->leader_port = v->port;
        }
        snprintf(resp->error_message, sizeof resp->error_message,
                 "node %d is not the active controller (leader: %d)", q->node_id, leader);
        return;
    }
    wire_describe_quorum_resp_t *d = &resp->body.describe_quorum;
    snprintf(d->cluster_id, sizeof d->cluster_id, "%s", q->cluster_id);
    d->leader_id = info.leader_id;
    d->leader_epoch = info.epoch;
    d->high_watermark = info.high_watermark;
    /* The core keeps monotonic times; operators want wall-clock ones. */
#define TO_WALL(t) ((t) < 0 ? -1 : wall - (now - (t)))
    for (int i = 0; i < info.n_voters; i++)
        d->voters[i] = (wire_replica_t){info.voters[i].node_id, info.voters[i].log_end_offset,
                                        TO_WALL(info.voters[i].last_fetch_ms),
                                        TO_WALL(info.voters[i].last_caught_up_ms)};
    d->n_voters = info.n_voters;
    for (int i = 0; i < info.n_observers; i++)
        d->observers[i] = (wire_replica_t){info.observers[i].node_id, info.observers[i].log_end_offset,
                                           TO_WALL(info.observers[i].last_fetch_ms),
                                           TO_WALL(info.observers[i].last_caught_up_ms)};
    d->n_observers = info.n_observers;
#undef TO_WALL
}

/* ---- shutdown ------------------------------------------------------------- */

static void on_shutdown_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    quorum_t *q = arg;
    bool successor = raft_epoch(q->raft) > q->shutdown_epoch;
    if (successor || net_now_ms() >= q->shutdown_deadline) {
        if (successor)
            KL_INFO(MOD, "epoch %d began (leader %d); the resigned leader may exit", raft_epoch(q->raft),
                    raft_leader(q->raft));
        else
            KL_WARN(MOD, "no successor within %d ms; exiting anyway", QUORUM_SHUTDOWN_WAIT_MS);
        q->shutdown_done(q->shutdown_arg);
        return;
    }
    struct timeval tv = {0, 20 * 1000};
    evtimer_add(q->shutdown_ev, &tv);
}

void quorum_shutdown(quorum_t *q, void (*done)(void *arg), void *arg)
{
    if (q->shutdown_done) return; /* under way: the first `done` runs */
    bool was_leader = raft_role(q->raft) == RAFT_LEADER;
    q->shutdown_done = done;
    q->shutdown_arg = arg;
    q->shutdown_epoch = raft_epoch(q->raft);
    raft_event_t ev = {.type = RAFT_EV_SHUTDOWN};
    raft_update_t u;
    step(q, &ev, &u);
    drain(q);
    /* A lone voter has nobody to hand over to. */
    if (!was_leader || q->n_voters == 1) {
        done(arg);
        return;
    }
    /* Keep serving fetches so the successors catch up, until one wins. */
    q->shutdown_deadline = net_now_ms() + QUORUM_SHUTDOWN_WAIT_MS;
    q->shutdown_ev = evtimer_new(net_loop_base(q->opt.loop), on_shutdown_poll, q);
    if (!q->shutdown_ev) {
        KL_WARN(MOD, "out of memory for the hand-over timer; exiting without waiting for a successor");
        done(arg);
        return;
    }
    struct timeval tv = {0, 20 * 1000};
    evtimer_add(q->shutdown_ev, &tv);
}

/* ---- open / close --------------------------------------------------------- */

/* Whether the loaded log continues the snapshot: the entry just below its end
 * (if still there) has the snapshot's epoch, and the entries after it do not
 * go back in epoch. Not so after a crash between storing a leader's snapshot
 * and resetting the log (install_snapshot()): the log then holds a history the
 * committed snapshot replaced, none of which can be committed. */
static bool log_continues(const raft_entry_t *es, int n, raft_snapshot_id_t snap)
{
    for (int i = 0; i < n; i++) {
        if (es[i].offset == snap.end_offset - 1 && es[i].epoch != snap.last_epoch) return false;
        if (es[i].offset >= snap.end_offset) return es[i].epoch >= snap.last_epoch;
    }
    return true;
}

static int load_state(quorum_t *q, raft_restore_t *rs, uint8_t **snap, char *err, size_t errlen)
{
    int rc = qstate_read(q->dir, &rs->hard_state);
    if (rc == KL_ENOENT) {
        rs->hard_state = (raft_hard_state_t){0, RAFT_NO_NODE, RAFT_NO_NODE};
    } else if (rc) {
        snprintf(err, errlen, "%s/quorum-state: %s (refusing to start: a voter that forgets its vote could vote twice)",
                 q->dir, kl_strerror(rc));
        return rc;
    }
    size_t snap_len = 0;
    rc = snapfile_latest(q->dir, &rs->snapshot_id, snap, &snap_len);
    rs->snapshot_len = snap_len;
    if (rc == KL_ENOENT) {
        rs->snapshot_id = (raft_snapshot_id_t){0, 0};
    } else if (rc) {
        snprintf(err, errlen, "%s: cannot read snapshots: %s", q->dir, kl_strerror(rc));
        return rc;
    }
    rs->snapshot_data = *snap;
    const int64_t snap_end = rs->snapshot_id.end_offset;
    seglog_config_t sc;
    seglog_config_defaults(&sc);
    sc.segment_bytes = (uint32_t)kl_config_int(q->opt.cfg, "metadata.log.segment.bytes");
    rc = raftlog_open(q->dir, &sc, &q->log);
    if (rc) {
        snprintf(err, errlen, "%s: cannot open the metadata log: %s", q->dir, kl_strerror(rc));
        return rc;
    }
    if (raftlog_start_offset(q->log) > snap_end) {
        snprintf(err, errlen,
                 "%s: the metadata log starts at offset %lld but the newest valid snapshot ends at %lld: "
                 "the entries in between are gone (a snapshot file deleted or corrupt?)",
                 q->dir, (long long)raftlog_start_offset(q->log), (long long)snap_end);
        return KL_ECORRUPT;
    }
    /* A log that ends below the snapshot is wholly covered by it. */
    if (raftlog_end_offset(q->log) < snap_end && (rc = raftlog_reset(q->log, snap_end)) != 0) {
        snprintf(err, errlen, "%s: cannot reset the log to the snapshot: %s", q->dir, kl_strerror(rc));
        return rc;
    }
    const raft_entry_t *entries;
    int n;
    if ((rc = raftlog_load(q->log, &entries, &n)) != 0) {
        snprintf(err, errlen, "%s: cannot load the metadata log: %s", q->dir, kl_strerror(rc));
        return rc;
    }
    if (!log_continues(entries, n, rs->snapshot_id)) {
        KL_WARN(MOD, "%s: the log [%lld, %lld) does not continue the snapshot ending at %lld (epoch %d); "
                     "its entries from there on were never committed: restarting the log at the snapshot",
                 q->dir, (long long)raftlog_start_offset(q->log), (long long)raftlog_end_offset(q->log),
                 (long long)snap_end, rs->snapshot_id.last_epoch);
        raftlog_release_loaded(q->log);
        entries = NULL;
        n = 0;
        if ((rc = raftlog_reset(q->log, snap_end)) != 0) {
            snprintf(err, errlen, "%s: cannot reset the log to the snapshot: %s", q->dir, kl_strerror(rc));
            return rc;
        }
    }
    int skip = 0;
    while (skip < n && entries[skip].offset < snap_end) skip++;
    rs->entries = entries + skip;
    rs->n_entries = n - skip;
    rs->high_watermark_hint = snap_end;
    /* the snapshot policy counts log bytes since the snapshot, restarts included */
    for (int i = skip; i < n; i++) q->bytes_since_snapshot += entries[i].len;
    if (snap_end > 0) {
        rc = q->opt.sm.restore(q->opt.sm.arg, rs->snapshot_id, rs->snapshot_data, rs->snapshot_len);
        if (rc) {
            char name[SNAPFILE_NAME_LEN + 1];
            snapfile_name(rs->snapshot_id, name);
            snprintf(err, errlen, "%s/%s: the snapshot does not decode: %s", q->dir, name, kl_strerror(rc));
            return rc;
        }
    }
    q->applied_end = snap_end;
    KL_INFO(MOD, "loaded epoch %d voted_for %d, snapshot end %lld, log [%lld, %lld)",
            rs->hard_state.epoch, rs->hard_state.voted_for, (long long)snap_end,
            (long long)raftlog_start_offset(q->log), (long long)raftlog_end_offset(q->log));
    return 0;
}

int quorum_open(const quorum_options_t *opt, quorum_t **out, char *err, size_t errlen)
{
    quorum_t *q = calloc(1, sizeof *q);
    if (!q) return KL_ENOMEM;
    q->opt = *opt;
    snprintf(q->cluster_id, sizeof q->cluster_id, "%s", opt->cluster_id);
    /* The metadata log is partition 0 of __cluster_metadata, as in KRaft;
     * its quorum-state and snapshots live beside its segments. */
    snprintf(q->dir, sizeof q->dir, "%s/%s", opt->metadata_dir, QUORUM_LOG_DIR_NAME);
    raft_config_t rc_cfg;
    int rc = kcfg_raft_config(opt->cfg, &rc_cfg, err, errlen);
    if (rc) goto fail;
    /* Timeouts must differ between nodes; the seed only has to be random. */
    uint8_t seed_bytes[KL_UUID_LEN];
    if (kl_uuid_random(seed_bytes) == 0) memcpy(&rc_cfg.seed, seed_bytes, sizeof rc_cfg.seed);
    q->node_id = rc_cfg.node_id;
    q->request_timeout_ms = rc_cfg.request_timeout_ms;
    q->fetch_max_wait_ms = rc_cfg.fetch_max_wait_ms;

    kcfg_voter_t vs[RAFT_MAX_VOTERS];
    int nv;
    if ((rc = kcfg_parse_voters(kl_config_str(opt->cfg, "controller.quorum.voters"), vs, RAFT_MAX_VOTERS,
                                &nv, err, errlen)) != 0)
        goto fail;

    raft_restore_t rs = {0};
    uint8_t *snap = NULL;
    rc = load_state(q, &rs, &snap, err, errlen);
    if (rc == 0) {
        q->raft = raft_new(&rc_cfg, &rs, net_now_ms());
        if (!q->raft) {
            int32_t last_epoch =
                rs.n_entries ? rs.entries[rs.n_entries - 1].epoch : rs.snapshot_id.last_epoch;
            snprintf(err, errlen,
                     "the Raft core refused to start: out of memory, controller.quorum.* timeouts that do not "
                     "fit together, or stored state that does not (%s: quorum-state epoch %d, snapshot ending at "
                     "%lld in epoch %d, %d log entries after it ending in epoch %d)",
                     q->dir, rs.hard_state.epoch, (long long)rs.snapshot_id.end_offset,
                     rs.snapshot_id.last_epoch, rs.n_entries, last_epoch);
            rc = KL_ECONFIG;
        }
    }
    free(snap);
    if (q->log) raftlog_release_loaded(q->log);
    if (rc) goto fail;

    for (int i = 0; i < nv; i++) {
        voter_peer_t *v = &q->voters[q->n_voters++];
        v->id = vs[i].id;
        snprintf(v->host, sizeof v->host, "%s", vs[i].host);
        v->port = vs[i].port;
        v->q = q;
        if (v->id == q->node_id) continue;
        v->peer = net_peer_new(opt->loop, v->host, v->port, opt->client_tls, on_peer_state, v);
        if (!v->peer) {
            snprintf(err, errlen, "cannot create a connection to voter %d", v->id);
            rc = KL_ENOMEM;
            goto fail;
        }
    }
    q->tick_ev = evtimer_new(net_loop_base(opt->loop), on_tick, q);
    if (!q->tick_ev) {
        rc = KL_ENOMEM;
        goto fail;
    }
    rearm_tick(q);
    *out = q;
    return 0;
fail:
    quorum_close(q);
    return rc;
}

void quorum_close(quorum_t *q)
{
    if (!q) return;
    q->closing = true;
    if (q->tick_ev) event_free(q->tick_ev);
    if (q->shutdown_ev) event_free(q->shutdown_ev);
    for (int i = 0; i < q->n_voters; i++)
        if (q->voters[i].peer) net_peer_free(q->voters[i].peer);
    while (q->q_len > 0) {
        queued_t *e = &q->queue[q->q_head];
        if (e->msg) wire_msg_free(e->msg);
        q->q_head = (q->q_head + 1) % QUEUE_MAX;
        q->q_len--;
    }
    if (q->log) {
        int rc = raftlog_sync(q->log);
        if (rc) KL_ERROR(MOD, "final fsync of the metadata log failed: %s", kl_strerror(rc));
        raftlog_close(q->log);
    }
    raft_free(q->raft);
    free(q);
}

const raft_t *quorum_raft(const quorum_t *q) { return q->raft; }
int64_t quorum_applied_end(const quorum_t *q) { return q->applied_end; }
int64_t quorum_log_bytes_since_snapshot(const quorum_t *q) { return q->bytes_since_snapshot; }

/* ---- snapshot policy ----------------------------------------------------------- */

void quorum_snapshot_policy_init(quorum_snapshot_policy_t *p, const kl_config_t *cfg, int64_t now_ms)
{
    *p = (quorum_snapshot_policy_t){
        .bytes = kl_config_int(cfg, "metadata.log.max.record.bytes.between.snapshots"),
        .interval_ms = kl_config_int(cfg, "metadata.log.max.snapshot.interval.ms"),
        .last_ms = now_ms,
    };
}

int quorum_maybe_snapshot(quorum_t *q, quorum_snapshot_policy_t *p, int64_t now_ms,
                          int (*encode)(void *arg, kl_buf_t *out), void *arg)
{
    const int64_t end = quorum_applied_end(q);
    if (end <= p->last_end || now_ms < p->retry_ms) return 0;
    const bool by_bytes = quorum_log_bytes_since_snapshot(q) >= p->bytes;
    const bool by_time = p->interval_ms > 0 && now_ms - p->last_ms >= p->interval_ms;
    if (!by_bytes && !by_time) return 0;
    kl_buf_t buf;
    kl_buf_init(&buf, RAFT_MAX_SNAPSHOT_BYTES);
    int rc = encode(arg, &buf);
    if (rc == 0) rc = quorum_snapshot(q, end, buf.data, buf.len);
    kl_buf_free(&buf);
    if (rc) {
        KL_WARN(MOD, "metadata snapshot at %lld failed: %s; retrying in %d ms", (long long)end, kl_strerror(rc),
                QUORUM_SNAPSHOT_RETRY_MS);
        p->retry_ms = now_ms + QUORUM_SNAPSHOT_RETRY_MS;
        return rc;
    }
    p->last_end = end;
    p->last_ms = now_ms;
    return 0;
}
