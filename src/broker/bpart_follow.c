/* bpart_follow.c — the follower side: one fetch in flight per followed partition to its leader, over one connection per leader broker, validated before the core sees it (DESIGN.md §4, KIP-595). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bparts_internal.h"
#include "keel/err.h"
#include "keel/log.h"
#include "keel/recbatch.h"

/* What a fetch in flight stands for; the response is dropped unless the
 * partition still waits for exactly this one. */
typedef struct follow_ctx {
    bparts_t *bp;
    bpeer_t *peer;
    uint64_t gen;
    char topic[META_MAX_TOPIC_NAME_LEN + 1];
    int32_t partition;
    replica_fetch_req_t req;
} follow_ctx_t;

/* ---- connections to leaders ------------------------------------------------------------------ */

static void unqueue(bpart_t *p)
{
    bpeer_t *peer = p->fpeer;
    bpart_t **q = &peer->qhead, *prev = NULL;
    while (*q && *q != p) {
        prev = *q;
        q = &(*q)->qnext;
    }
    if (*q) {
        *q = p->qnext;
        if (peer->qtail == p) peer->qtail = prev;
    }
    p->qnext = NULL;
}

/* The connection to broker `id` at its current address (a broker that
 * re-registered elsewhere gets a new one; fetches on the old fail over). */
static bpeer_t *peer_for(bparts_t *bp, int32_t id)
{
    char host[WIRE_HOST_LEN];
    int port = 0;
    if (bp->env.broker_addr(bp->env.arg, id, host, sizeof host, &port) != 0) return NULL;
    bpeer_t *peer = bp->peers;
    while (peer && peer->broker_id != id) peer = peer->next;
    if (peer && peer->np && peer->port == port && strcmp(peer->host, host) == 0) return peer;
    if (!peer) {
        if (!(peer = calloc(1, sizeof *peer))) return NULL;
        peer->broker_id = id;
        peer->next = bp->peers;
        bp->peers = peer;
    }
    net_peer_t *np = net_peer_new(bp->env.loop, host, port, bp->env.client_tls, NULL, NULL);
    if (!np) return NULL;
    net_peer_t *old = peer->np;
    if (old) KL_INFO(BPARTS_LOG, "broker %d moved from %s to %s:%d", id, net_peer_name(old), host, port);
    snprintf(peer->host, sizeof peer->host, "%s", host);
    peer->port = port;
    peer->np = np;
    /* The old connection's fetches fail with KL_ECLOSED and back off; partitions
     * queued meanwhile already find the new one. */
    if (old) net_peer_free(old);
    return peer;
}

void bparts_free_peers(bparts_t *bp)
{
    while (bp->peers) {
        bpeer_t *peer = bp->peers;
        bp->peers = peer->next;
        if (peer->np) net_peer_free(peer->np); /* callbacks run now and only free (bp->closing) */
        free(peer);
    }
}

/* ---- the fetch loop --------------------------------------------------------------------------- */

static void on_fetch_resp(net_peer_t *np, int err, wire_msg_t *resp, void *arg);

void bpart_follow_stop(bpart_t *p)
{
    if (p->fstate == FOLLOW_QUEUED) unqueue(p);
    if (p->fstate == FOLLOW_BACKOFF) evtimer_del(p->backoff_ev);
    p->fstate = FOLLOW_IDLE; /* a response in flight no longer matches fetch_gen */
    p->fpeer = NULL;
    p->fetch_gen = 0;
}

void bpart_follow_backoff(bpart_t *p)
{
    bpart_follow_stop(p);
    p->fstate = FOLLOW_BACKOFF;
    const struct timeval tv = {BPARTS_FETCH_BACKOFF_MS / 1000, (BPARTS_FETCH_BACKOFF_MS % 1000) * 1000};
    evtimer_add(p->backoff_ev, &tv);
}

void bpart_follow_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bpart_t *p = arg;
    p->fstate = FOLLOW_IDLE;
    bpart_follow(p);
}

/* Sends the core's next fetch (replica.h replica_fetch_request) on peer. */
static void send_fetch(bpart_t *p, bpeer_t *peer)
{
    bparts_t *bp = p->bp;
    replica_fetch_req_t q;
    if (replica_fetch_request(p->rep, &q) != 0) return; /* not a follower with nothing outstanding */
    q.broker_epoch = bp->env.broker_epoch(bp->env.arg);
    follow_ctx_t *c = calloc(1, sizeof *c);
    if (!c) {
        bpart_follow_backoff(p);
        return;
    }
    c->bp = bp;
    c->peer = peer;
    c->gen = ++bp->next_gen;
    snprintf(c->topic, sizeof c->topic, "%s", p->topic);
    c->partition = p->partition;
    c->req = q;

    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_FETCH, false, 0);
    wire_fetch_req_t *f = &m.body.fetch;
    snprintf(f->topic, sizeof f->topic, "%s", p->topic);
    memcpy(f->topic_id, p->topic_id, KL_UUID_LEN);
    f->partition = p->partition;
    f->replica_id = q.replica_id;
    f->broker_epoch = q.broker_epoch;
    f->leader_epoch = q.leader_epoch;
    f->fetch_offset = q.fetch_offset;
    f->last_fetched_epoch = q.last_fetched_epoch;
    f->max_bytes = bp->fetch_max_bytes;
    f->max_wait_ms = bp->fetch_wait_ms;
    f->min_bytes = bp->fetch_min_bytes;
    if (net_request(peer->np, &m, bp->fetch_wait_ms + BPARTS_FETCH_TIMEOUT_MARGIN_MS, on_fetch_resp, c) != 0) {
        free(c);
        bpart_follow_backoff(p);
        return;
    }
    peer->inflight++;
    p->fstate = FOLLOW_INFLIGHT;
    p->fpeer = peer;
    p->fetch_gen = c->gen;
}

void bpart_follow(bpart_t *p)
{
    bparts_t *bp = p->bp;
    if (bp->closing || !p->rep || p->failed || replica_role(p->rep) != REPLICA_FOLLOWER) {
        bpart_follow_stop(p);
        return;
    }
    const int32_t leader = replica_leader(p->rep), epoch = replica_leader_epoch(p->rep);
    const bool same = p->f_leader == leader && p->f_epoch == epoch;
    if (p->fstate == FOLLOW_BACKOFF || ((p->fstate == FOLLOW_INFLIGHT || p->fstate == FOLLOW_QUEUED) && same))
        return;
    bpart_follow_stop(p); /* idle, or standing by an older leader or epoch */
    p->f_leader = leader;
    p->f_epoch = epoch;
    bpeer_t *peer = peer_for(bp, leader);
    if (!peer) {
        KL_DEBUG(BPARTS_LOG, "%s-%d: no address for leader %d yet", p->topic, p->partition, leader);
        bpart_follow_backoff(p);
        return;
    }
    if (peer->inflight >= BPARTS_PEER_MAX_INFLIGHT || peer->qhead) { /* wait for a slot, in order (fair) */
        p->fstate = FOLLOW_QUEUED;
        p->fpeer = peer;
        p->qnext = NULL;
        if (peer->qtail) peer->qtail->qnext = p;
        else peer->qhead = p;
        peer->qtail = p;
        return;
    }
    send_fetch(p, peer);
}

/* Every batch whole and valid (CRC included), consecutive from the fetch
 * offset (DESIGN.md §5: the follower checks what it stores), into bp->fb. */
static int validate_batches(bparts_t *bp, const replica_fetch_req_t *q, const uint8_t *data, size_t len, int *n_out)
{
    int n = 0;
    int64_t next = q->fetch_offset;
    for (size_t off = 0; off < len;) {
        recbatch_header_t h;
        const int rc = recbatch_validate(data + off, len - off, &h);
        if (rc) return rc == KL_EAGAIN ? KL_ECORRUPT : rc;
        if (h.base_offset != next) return KL_ECORRUPT;
        if (n == bp->fcap) {
            const int cap = bp->fcap ? 2 * bp->fcap : 64;
            replica_batch_t *fb = realloc(bp->fb, (size_t)cap * sizeof *fb);
            if (fb) bp->fb = fb;
            size_t *fe = fb ? realloc(bp->fend, (size_t)cap * sizeof *fe) : NULL;
            if (fe) bp->fend = fe;
            if (!fb || !fe) return KL_ENOMEM;
            bp->fcap = cap;
        }
        bp->fb[n] = (replica_batch_t){.base_offset = h.base_offset,
                                      .last_offset_delta = h.last_offset_delta,
                                      .leader_epoch = h.leader_epoch,
                                      .producer_id = h.producer_id,
                                      .producer_epoch = h.producer_epoch,
                                      .base_sequence = h.base_sequence};
        off += recbatch_total_size(&h);
        bp->fend[n++] = off;
        next = recbatch_next_offset(&h);
    }
    *n_out = n;
    return 0;
}

/* Feeds the leader's answer to the core and carries it out: true when the
 * next fetch may go at once. */
static bool take_response(bpart_t *p, const replica_fetch_req_t *q, int err, const wire_msg_t *resp)
{
    bparts_t *bp = p->bp;
    replica_fetch_resp_t fr = {.error = err ? err : resp->error,
                               .leader_epoch = q->leader_epoch,
                               .fetch_offset = q->fetch_offset,
                               .diverging_epoch = REPLICA_NO_EPOCH,
                               .diverging_end_offset = REPLICA_NO_OFFSET};
    bpart_io_t io = {0};
    if (!err) {
        const wire_fetch_resp_t *f = &resp->body.fetch_resp;
        fr.high_watermark = f->high_watermark;
        fr.log_start_offset = f->log_start_offset;
        fr.log_end_offset = f->log_end_offset;
        /* KL_ERANGE makes the core restart or cut our log at the leader's
         * offsets (replica_follower.c); they come in the answer's body (wire.h).
         * One without a body would read as a log [0, 0): not acted on. */
        if (fr.error == KL_ERANGE && !resp->error_body) {
            KL_WARN(BPARTS_LOG, "%s-%d: leader %d: fetch offset %lld out of range, but its log offsets did not come "
                    "with the answer", p->topic, p->partition, replica_leader(p->rep), (long long)q->fetch_offset);
            fr.error = KL_EPROTO;
        }
        if (!fr.error) {
            fr.diverging_epoch = f->diverging_epoch;
            fr.diverging_end_offset = f->diverging_end_offset;
            int n = 0;
            const int vrc = validate_batches(bp, q, resp->payload, resp->payload_len, &n);
            if (vrc) {
                KL_WARN(BPARTS_LOG, "%s-%d: fetch response from leader %d refused: %s", p->topic, p->partition,
                        replica_leader(p->rep), kl_strerror(vrc));
                fr.error = vrc;
            } else {
                fr.batches = bp->fb;
                fr.n_batches = n;
                io.fetched = resp->payload;
                io.fetched_end = bp->fend;
                io.n_fetched = n;
            }
        }
    }
    replica_event_t ev = {.type = REPLICA_EV_FETCH_RESPONSE, .u.fetch_resp = &fr};
    replica_update_t u;
    const int rc = bpart_step(p, &ev, fr.error ? NULL : &io, &u);
    if (rc && rc != KL_ESTATE)
        KL_WARN(BPARTS_LOG, "%s-%d: fetch response from leader %d not taken: %s", p->topic, p->partition,
                replica_leader(p->rep), kl_strerror(rc));
    /* out of range and our log restarted or cut to fit the leader's: fetch again at once */
    const bool refit = fr.error == KL_ERANGE && (u.reset_to >= 0 || u.truncate_to >= 0);
    return rc == 0 && (fr.error == 0 || refit);
}

static void on_fetch_resp(net_peer_t *np, int err, wire_msg_t *resp, void *arg)
{
    (void)np;
    follow_ctx_t *c = arg;
    bparts_t *bp = c->bp;
    bpeer_t *peer = c->peer;
    peer->inflight--;
    bpart_t *p = bp->closing ? NULL : bparts_find(bp, c->topic, c->partition);
    if (p && p->fstate == FOLLOW_INFLIGHT && p->fetch_gen == c->gen) {
        p->fstate = FOLLOW_IDLE;
        p->fpeer = NULL;
        if (!p->failed && !take_response(p, &c->req, err, resp)) bpart_follow_backoff(p);
        bpart_finish(p); /* sends the next fetch at once (continuous replication) */
    }
    wire_msg_free(resp);
    free(c);
    /* a slot is free on this connection: the next partition waiting for one */
    while (!bp->closing && peer->qhead && peer->inflight < BPARTS_PEER_MAX_INFLIGHT) {
        bpart_t *q = peer->qhead;
        peer->qhead = q->qnext;
        if (!peer->qhead) peer->qtail = NULL;
        q->qnext = NULL;
        q->fstate = FOLLOW_IDLE;
        q->fpeer = NULL;
        send_fetch(q, peer);
    }
}
