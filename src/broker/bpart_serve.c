/* bpart_serve.c — the leader's service: PRODUCE (acks 0/1/all), FETCH with long polls, LIST_OFFSETS, and the requests that wait (DESIGN.md §4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bparts_internal.h"
#include "keel/err.h"
#include "keel/log.h"
#include "keel/recbatch.h"

static int32_t leader_hint(const bpart_t *p) { return p->rep ? replica_leader(p->rep) : p->state.leader; }

/* Errors after which a client refreshes its metadata: tell it where to go. */
static bool wants_hint(int err) { return err == KL_ENOTLEADER || err == KL_EFENCED || err == KL_EUNKNOWNEPOCH; }

/* WIRE_NO_EPOCH from a client means "do not check" (wire.h). */
static int32_t client_epoch(const bpart_t *p, int32_t e)
{
    return e == WIRE_NO_EPOCH ? replica_leader_epoch(p->rep) : e;
}

/* ---- produce -------------------------------------------------------------------------------- */

void bpart_answer_produce(bpart_t *p, net_conn_id_t conn, uint64_t corr, int err, int64_t base_offset)
{
    bparts_t *bp = p->bp;
    if (err) {
        bparts_reply_error(bp, conn, WIRE_API_PRODUCE, corr, err, wants_hint(err) ? leader_hint(p) : -1);
        return;
    }
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_PRODUCE, true, corr);
    m.body.produce_resp.base_offset = base_offset;
    m.body.produce_resp.log_start_offset = replica_log_start(p->rep);
    m.body.produce_resp.leader_epoch = replica_leader_epoch(p->rep);
    const int rc = net_reply(bp->env.loop, conn, &m);
    if (rc) KL_DEBUG(BPARTS_LOG, "produce answer to %s: %s", net_conn_addr(bp->env.loop, conn), kl_strerror(rc));
}

static void produce_unlink_free(bpart_produce_t *w)
{
    bpart_t *p = w->part;
    if (w->prev) w->prev->next = w->next;
    else p->prod_head = w->next;
    if (w->next) w->next->prev = w->prev;
    else p->prod_tail = w->prev;
    if (w->timer) event_free(w->timer);
    free(w);
}

/* acks=all not covered by the HW within the request's timeout_ms. The core
 * still holds the token; its completion later finds no waiter. */
static void on_produce_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bpart_produce_t *w = arg;
    bpart_answer_produce(w->part, w->conn, w->corr, KL_ETIMEOUT, -1);
    produce_unlink_free(w);
}

void bpart_link_produce(bpart_t *p, bpart_produce_t *w, int acks, int32_t timeout_ms)
{
    w->part = p;
    w->prev = p->prod_tail;
    w->next = NULL;
    if (p->prod_tail) p->prod_tail->next = w;
    else p->prod_head = w;
    p->prod_tail = w;
    if (acks != REPLICA_ACKS_ALL) return;
    /* No memory for the timer: the answer still comes with the HW or the stop. */
    if (!(w->timer = evtimer_new(net_loop_base(p->bp->env.loop), on_produce_timeout, w))) return;
    const int32_t t = timeout_ms < 0 ? 0 : timeout_ms;
    const struct timeval tv = {t / 1000, (t % 1000) * 1000};
    evtimer_add(w->timer, &tv);
}

void bpart_complete(bpart_t *p, const replica_completion_t *c, int n)
{
    for (int i = 0; i < n; i++) {
        bpart_produce_t *w = p->prod_head; /* completions come mostly oldest first */
        while (w && w->token != c[i].token) w = w->next;
        if (!w) continue; /* timed out, or its connection closed */
        bpart_answer_produce(p, w->conn, w->corr, c[i].error, c[i].base_offset);
        produce_unlink_free(w);
    }
}

/* Exactly one valid RecordBatch v2 that a producer may send (DESIGN.md §5). */
static int check_batch(const bpart_t *p, const wire_msg_t *req, recbatch_header_t *h)
{
    if ((int64_t)req->payload_len > p->max_message_bytes) return KL_ETOOBIG;
    const int rc = recbatch_validate(req->payload, req->payload_len, h);
    if (rc == KL_EAGAIN) return KL_ECORRUPT; /* truncated */
    if (rc) return rc;                       /* KL_ECORRUPT, KL_ETOOBIG, KL_EUNSUPPORTED (compression) */
    if (recbatch_total_size(h) != req->payload_len) return KL_EINVAL; /* one batch, nothing after it */
    if (recbatch_is_control(h)) return KL_EINVAL;                     /* control batches are the broker's */
    if (h->attributes & RECBATCH_ATTR_TRANSACTIONAL) return KL_EUNSUPPORTED;
    return 0;
}

void bparts_serve_produce(bparts_t *bp, net_conn_id_t conn, wire_msg_t *req)
{
    const wire_produce_req_t *pr = &req->body.produce;
    const uint64_t corr = req->correlation_id;
    const bool answer = pr->acks != 0;
    bpart_t *p = bparts_find(bp, pr->topic, pr->partition);
    int err = !p ? KL_EUNKNOWNPARTITION : p->failed ? p->failed : 0;
    recbatch_header_t h;
    if (!err) err = check_batch(p, req, &h);
    bpart_produce_t *w = err ? NULL : calloc(1, sizeof *w);
    if (!err && !w) err = KL_ENOMEM;
    if (err) {
        if (err != KL_EUNKNOWNPARTITION && err != KL_EIO)
            KL_DEBUG(BPARTS_LOG, "produce to %s-%d from %s refused: %s", pr->topic, pr->partition,
                     net_conn_addr(bp->env.loop, conn), kl_strerror(err));
        if (answer) bparts_reply_error(bp, conn, WIRE_API_PRODUCE, corr, err, -1);
        return;
    }
    w->token = ++bp->next_token;
    w->conn = conn;
    w->corr = corr;
    int acks = pr->acks;
#ifdef KL_INJECT_BUGS
    /* debug.inject.bug=ack-on-append (issue 4's teeth) breaks Kafka's acks=all
     * contract — acknowledged once every ISR member holds it, refused while the
     * ISR is below min.insync.replicas: the core takes it as acks=1, so it is
     * answered as soon as our own log holds it, whatever the ISR. */
    if (bp->bug == BPARTS_BUG_ACK_ON_APPEND && acks == REPLICA_ACKS_ALL) acks = 1;
#endif
    replica_produce_req_t q = {
        .leader_epoch = client_epoch(p, pr->leader_epoch),
        .acks = acks,
        .token = w->token,
        .batch = {.base_offset = h.base_offset,
                  .last_offset_delta = h.last_offset_delta,
                  .leader_epoch = h.leader_epoch,
                  .producer_id = h.producer_id,
                  .producer_epoch = h.producer_epoch,
                  .base_sequence = h.base_sequence},
    };
    /* the payload lives in the request's frame, which we own (bparts.h) */
    bpart_io_t io = {.batch = (uint8_t *)req->payload,
                     .batch_len = req->payload_len,
                     .waiter = w,
                     .acks = acks,
                     .timeout_ms = pr->timeout_ms};
    replica_event_t ev = {.type = REPLICA_EV_PRODUCE, .u.produce = &q};
    replica_update_t u;
    const int rc = bpart_step(p, &ev, &io, &u);
    if (rc && answer) bparts_reply_error(bp, conn, WIRE_API_PRODUCE, corr, rc, -1);
    free(io.waiter); /* not taken: answered or refused */
    if (rc == 0 && io.appended) {
        /* written (the flush policy decides fsyncs, partlog.h): the core may count it */
        replica_event_t ap = {.type = REPLICA_EV_APPENDED, .u.log_end = u.produce.last_offset + 1};
        bpart_step(p, &ap, NULL, &u);
        p->wake = true;
    }
    bpart_finish(p);
}

/* ---- fetch ---------------------------------------------------------------------------------- */

/* Whole batches of the log in [offset's batch, read_end), up to max_bytes
 * (the first one always whole), into bp->rbuf: never a batch that extends past
 * read_end, so consumers see only what is below the HW (DESIGN.md §4). */
static int read_records(bpart_t *p, int64_t offset, int64_t read_end, int32_t max_bytes)
{
    kl_buf_t *b = &p->bp->rbuf;
    kl_buf_reset(b);
    if (read_end <= offset) return 0;
    const size_t max = max_bytes < 0 ? 0 : (size_t)max_bytes > BPARTS_MAX_FETCH_BYTES ? BPARTS_MAX_FETCH_BYTES
                                                                                      : (size_t)max_bytes;
    const int rc = partlog_read(p->log, offset, max, b);
    if (rc) return rc;
    size_t keep = 0;
    while (keep < b->len) {
        recbatch_header_t h;
        if (recbatch_parse_header(b->data + keep, b->len - keep, &h) != 0 || recbatch_next_offset(&h) > read_end ||
            recbatch_total_size(&h) > b->len - keep)
            break;
        keep += recbatch_total_size(&h);
    }
    b->len = keep;
    return 0;
}

static void reply_fetch(bpart_t *p, net_conn_id_t conn, uint64_t corr, const replica_fetch_result_t *r,
                        const kl_buf_t *records)
{
    bparts_t *bp = p->bp;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_FETCH, true, corr);
    m.error = r->error;
    if (r->error) {
        snprintf(m.error_message, sizeof m.error_message, "%s", kl_strerror(r->error));
        if (wants_hint(r->error) && r->leader_id >= 0) {
            int port = 0;
            m.leader_id = r->leader_id;
            if (bp->env.broker_addr(bp->env.arg, r->leader_id, m.leader_host, sizeof m.leader_host, &port) == 0)
                m.leader_port = port;
            else
                m.leader_host[0] = '\0';
        }
    }
    /* the body also travels with KL_ERANGE (wire.h): a follower below our log
     * start restarts there, a consumer learns where the log starts */
    m.error_body = r->error == KL_ERANGE;
    wire_fetch_resp_t *f = &m.body.fetch_resp;
    f->high_watermark = r->high_watermark;
    f->log_start_offset = r->log_start_offset;
    f->log_end_offset = r->log_end_offset;
    f->leader_epoch = r->leader_epoch;
    f->diverging_epoch = r->diverging_epoch;
    f->diverging_end_offset = r->diverging_end_offset;
    if (records && records->len) {
        m.payload = records->data;
        m.payload_len = records->len;
    }
    const int rc = net_reply(bp->env.loop, conn, &m);
    if (rc) KL_DEBUG(BPARTS_LOG, "fetch answer to %s: %s", net_conn_addr(bp->env.loop, conn), kl_strerror(rc));
}

/* Steps FETCH and answers it, unless may_wait and nothing (or less than
 * min_bytes) is readable yet: then false, and the caller parks it. */
static bool try_fetch(bpart_t *p, net_conn_id_t conn, uint64_t corr, const wire_fetch_req_t *fr, bool may_wait)
{
    bparts_t *bp = p->bp;
    static const uint8_t zero_id[KL_UUID_LEN];
    int err = p->failed;
    if (!err && memcmp(fr->topic_id, zero_id, KL_UUID_LEN) != 0 && memcmp(fr->topic_id, p->topic_id, KL_UUID_LEN) != 0)
        err = KL_EUNKNOWNPARTITION; /* a re-created namesake is another topic (wire.h) */
    if (!err && fr->replica_id < REPLICA_CONSUMER) err = KL_EINVAL;
    if (err) {
        bparts_reply_error(bp, conn, WIRE_API_FETCH, corr, err, -1);
        return true;
    }
    const bool consumer = fr->replica_id == REPLICA_CONSUMER;
    replica_fetch_req_t q = {
        .replica_id = fr->replica_id,
        .broker_epoch = fr->broker_epoch,
        .leader_epoch = consumer ? client_epoch(p, fr->leader_epoch) : fr->leader_epoch,
        .fetch_offset = fr->fetch_offset,
        .last_fetched_epoch = fr->last_fetched_epoch,
    };
    replica_event_t ev = {.type = REPLICA_EV_FETCH, .u.fetch = &q};
    replica_update_t u;
    const int rc = bpart_step(p, &ev, NULL, &u);
    replica_fetch_result_t r = u.fetch;
    if (rc || p->failed) {
        bparts_reply_error(bp, conn, WIRE_API_FETCH, corr, p->failed ? p->failed : rc, -1);
        return true;
    }
    if (r.error || r.diverging_epoch != REPLICA_NO_EPOCH) {
        reply_fetch(p, conn, corr, &r, NULL);
        return true;
    }
    const int rrc = read_records(p, fr->fetch_offset, r.read_end, fr->max_bytes);
    if (rrc) {
        if (rrc != KL_ERANGE) bpart_io_failed(p, rrc, "read");
        bparts_reply_error(bp, conn, WIRE_API_FETCH, corr, rrc == KL_ERANGE ? rrc : KL_EIO, -1);
        return true;
    }
    const size_t min_bytes = fr->min_bytes < 1 ? 1 : (size_t)fr->min_bytes;
    if (may_wait && fr->max_wait_ms > 0 && bp->rbuf.len < min_bytes) return false;
    reply_fetch(p, conn, corr, &r, &bp->rbuf);
    return true;
}

static void wait_unlink_global(bpart_wait_t *w)
{
    bparts_t *bp = w->part->bp;
    if (w->prev) w->prev->next = w->next;
    else bp->wait_head = w->next;
    if (w->next) w->next->prev = w->prev;
    else bp->wait_tail = w->prev;
    bp->n_waiting--;
}

static void wait_unlink(bpart_wait_t *w)
{
    bpart_t *p = w->part;
    if (w->pprev) w->pprev->pnext = w->pnext;
    else p->wait_head = w->pnext;
    if (w->pnext) w->pnext->pprev = w->pprev;
    else p->wait_tail = w->pprev;
    wait_unlink_global(w);
}

static void wait_free(bpart_wait_t *w)
{
    event_free(w->timer);
    free(w);
}

/* Appends w to the partition's list (the global one keeps its place). */
static void wait_link_part(bpart_t *p, bpart_wait_t *w)
{
    w->pprev = p->wait_tail;
    w->pnext = NULL;
    if (p->wait_tail) p->wait_tail->pnext = w;
    else p->wait_head = w;
    p->wait_tail = w;
}

/* max_wait_ms passed: answer with whatever is readable (maybe nothing). */
static void on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bpart_wait_t *w = arg;
    bpart_t *p = w->part;
    wait_unlink(w);
    try_fetch(p, w->conn, w->corr, &w->req, false);
    wait_free(w);
    bpart_finish(p);
}

static void park(bpart_t *p, net_conn_id_t conn, uint64_t corr, const wire_fetch_req_t *fr)
{
    bparts_t *bp = p->bp;
    if (bp->n_waiting >= BPARTS_MAX_WAITING_FETCHES) { /* bounded: the oldest is answered as it stands */
        bpart_wait_t *old = bp->wait_head;
        bpart_t *op = old->part;
        wait_unlink(old);
        try_fetch(op, old->conn, old->corr, &old->req, false);
        wait_free(old);
        if (op != p) bpart_finish(op);
    }
    bpart_wait_t *w = calloc(1, sizeof *w);
    if (w) w->timer = evtimer_new(net_loop_base(bp->env.loop), on_wait_timeout, w);
    if (!w || !w->timer) { /* cannot wait: answer empty now */
        free(w);
        try_fetch(p, conn, corr, fr, false);
        return;
    }
    w->part = p;
    w->conn = conn;
    w->corr = corr;
    w->req = *fr;
    w->prev = bp->wait_tail;
    if (bp->wait_tail) bp->wait_tail->next = w;
    else bp->wait_head = w;
    bp->wait_tail = w;
    wait_link_part(p, w);
    bp->n_waiting++;
    const int32_t t = fr->max_wait_ms > BPARTS_MAX_FETCH_WAIT_MS ? BPARTS_MAX_FETCH_WAIT_MS : fr->max_wait_ms;
    const struct timeval tv = {t / 1000, (t % 1000) * 1000};
    evtimer_add(w->timer, &tv);
}

/* The log end, HW or role moved: every parked fetch of p is tried again (one
 * pass over the fetches parked when it starts). */
void bpart_wake_fetches(bpart_t *p)
{
    bpart_wait_t *w = p->wait_head;
    p->wait_head = p->wait_tail = NULL; /* still parked ones are linked again */
    while (w) {
        bpart_wait_t *next = w->pnext;
        if (try_fetch(p, w->conn, w->corr, &w->req, true)) {
            wait_unlink_global(w);
            wait_free(w);
        } else {
            wait_link_part(p, w);
        }
        w = next;
    }
}

void bparts_serve_fetch(bparts_t *bp, net_conn_id_t conn, const wire_msg_t *req)
{
    const wire_fetch_req_t *fr = &req->body.fetch;
    bpart_t *p = bparts_find(bp, fr->topic, fr->partition);
    if (!p) {
        bparts_reply_error(bp, conn, WIRE_API_FETCH, req->correlation_id, KL_EUNKNOWNPARTITION, -1);
        return;
    }
    if (!try_fetch(p, conn, req->correlation_id, fr, true)) park(p, conn, req->correlation_id, fr);
    bpart_finish(p);
}

/* ---- list offsets ------------------------------------------------------------------------- */

void bparts_serve_list_offsets(bparts_t *bp, net_conn_id_t conn, const wire_msg_t *req)
{
    const wire_list_offsets_req_t *lr = &req->body.list_offsets;
    const uint64_t corr = req->correlation_id;
    bpart_t *p = bparts_find(bp, lr->topic, lr->partition);
    int err = !p ? KL_EUNKNOWNPARTITION : p->failed ? p->failed : 0;
    if (!err && replica_role(p->rep) != REPLICA_LEADER) err = KL_ENOTLEADER;
    if (!err) {
        const int32_t e = client_epoch(p, lr->leader_epoch), mine = replica_leader_epoch(p->rep);
        err = e < mine ? KL_EFENCED : e > mine ? KL_EUNKNOWNEPOCH : 0;
    }
    if (!err && lr->timestamp != WIRE_OFFSET_LATEST && lr->timestamp != WIRE_OFFSET_EARLIEST) err = KL_EUNSUPPORTED;
    if (!err && lr->timestamp == WIRE_OFFSET_LATEST && !replica_hw_settled(p->rep)) err = KL_ENOTAVAILABLE;
    if (err) {
        bparts_reply_error(bp, conn, WIRE_API_LIST_OFFSETS, corr, err, p && wants_hint(err) ? leader_hint(p) : -1);
        return;
    }
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_LIST_OFFSETS, true, corr);
    m.body.list_offsets_resp.offset =
        lr->timestamp == WIRE_OFFSET_EARLIEST ? replica_log_start(p->rep) : replica_high_watermark(p->rep);
    m.body.list_offsets_resp.leader_epoch = replica_leader_epoch(p->rep);
    const int rc = net_reply(bp->env.loop, conn, &m);
    if (rc) KL_DEBUG(BPARTS_LOG, "list-offsets answer to %s: %s", net_conn_addr(bp->env.loop, conn), kl_strerror(rc));
}

/* ---- requests that wait ------------------------------------------------------------------- */

void bpart_fail_waiters(bpart_t *p, int err)
{
    bparts_t *bp = p->bp;
    const int32_t hint = wants_hint(err) ? leader_hint(p) : -1;
    while (p->wait_head) {
        bpart_wait_t *w = p->wait_head;
        bparts_reply_error(bp, w->conn, WIRE_API_FETCH, w->corr, err, hint);
        wait_unlink(w);
        wait_free(w);
    }
    while (p->prod_head) {
        bpart_produce_t *w = p->prod_head;
        bparts_reply_error(bp, w->conn, WIRE_API_PRODUCE, w->corr, err, hint);
        produce_unlink_free(w);
    }
}

void bparts_drop_conn(bparts_t *bp, net_conn_id_t conn)
{
    for (bpart_wait_t *w = bp->wait_head, *next; w; w = next) {
        next = w->next;
        if (w->conn != conn) continue;
        wait_unlink(w);
        wait_free(w);
    }
    for (bpart_t *p = bp->all; p; p = p->next)
        for (bpart_produce_t *w = p->prod_head, *next; w; w = next) {
            next = w->next;
            if (w->conn == conn) produce_unlink_free(w);
        }
}
