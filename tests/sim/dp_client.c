/* dp_client.c — simulated clients: idempotent acks=all producers that pipeline and retry like Kafka's, and consumers that read below the HW. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "dp_cluster.h"
#include "keel/err.h"

#define DP_CLIENT_REFRESH_MS 300 /* metadata refresh even without errors (a zombie leader still answers) */
#define DP_PRODUCER_ID_BASE 1000

/* Metadata from a random running broker's image: it may be stale, as a
 * client's is (MetadataRequest itself is not modelled). Like Kafka's clients
 * (KIP-320) it never goes back to an older leader epoch than it has seen. */
static void refresh(dp_t *s, dp_client_t *c)
{
    c->next_refresh = s->now + DP_CLIENT_REFRESH_MS;
    const int start = (int)dp_rnd(s, 0, s->n_brokers - 1);
    for (int k = 0; k < s->n_brokers; k++) {
        const dp_broker_t *b = &s->brokers[(start + k) % s->n_brokers];
        const meta_partition_t *mp = dp_running(s, b->node) ? dp_broker_partition(s, b, c->part) : NULL;
        if (!mp || mp->leader < 0 || mp->leader_epoch < c->leader_epoch) continue;
        c->leader = mp->leader;
        c->leader_epoch = mp->leader_epoch;
        c->stale = false;
        return;
    }
    c->stale = true;
}

static bool ensure_leader(dp_t *s, dp_client_t *c)
{
    if (c->stale || s->now >= c->next_refresh) refresh(s, c);
    return !c->stale;
}

void dp_client_start(dp_t *s, dp_client_t *c)
{
    s->nodes[c->node].up = true;
    c->stale = true;
    c->pid = DP_PRODUCER_ID_BASE + c->idx;
    dp_timer(s, c->node, DP_T_CLIENT, 0, s->now + dp_rnd(s, 0, c->gap_ms));
}

bool dp_client_idle(const dp_client_t *c)
{
    return !c->producer || (c->stopped && c->n == 0);
}

/* ---- producer ------------------------------------------------------------------------ */

static void pop_acked(dp_client_t *c)
{
    int k = 0;
    while (k < c->n && c->q[k].state == DP_ACKED) k++;
    memmove(c->q, c->q + k, (size_t)(c->n - k) * sizeof *c->q);
    c->n -= k;
}

/* Sends queued batches in sequence order. Kafka's rule for idempotent
 * pipelining: a batch goes out only behind batches in flight on the same
 * connection; after a failure, whatever is still in flight resolves first,
 * then everything unacknowledged is resent from the oldest. */
static void pump(dp_t *s, dp_client_t *c)
{
    if (s->now < c->resend_after) return;
    int first = 0;
    while (first < c->n && c->q[first].state != DP_QUEUED) first++;
    if (first == c->n) return;
    if (!ensure_leader(s, c)) {
        c->resend_after = s->now + DP_RETRY_MS;
        return;
    }
    const int to = dp_broker_node_of(s, c->leader);
    for (int i = 0; i < c->n; i++) {
        const dp_pbatch_t *q = &c->q[i];
        if (q->state != DP_INFLIGHT) continue;
        if (i > first || q->to != to || q->gen != s->view[c->node][to]) return;
    }
    for (int i = first; i < c->n; i++) {
        dp_pbatch_t *q = &c->q[i];
        if (q->state != DP_QUEUED) continue;
        dp_msg_t *m = dp_msg_new(DP_PRODUCE);
        m->part = c->part;
        m->u.produce.leader_epoch = c->leader_epoch;
        m->u.produce.batch = (dp_batch_t){.h = {.last_offset_delta = q->count - 1, .leader_epoch = -1,
                                                .producer_id = c->pid, .producer_epoch = q->epoch,
                                                .base_sequence = q->seq},
                                          .value = q->value};
        q->to = to;
        q->gen = s->view[c->node][to];
        q->state = DP_INFLIGHT;
        q->rpc = dp_call(s, c->node, to, m);
    }
}

static void new_batch(dp_t *s, dp_client_t *c)
{
    dp_pbatch_t *q = &c->q[c->n++];
    q->count = (int32_t)dp_rnd(s, 1, 3);
    q->value = dp_value_new(s, c->idx, c->part, q->count);
    q->seq = c->next_seq;
    q->epoch = c->pepoch;
    q->state = DP_QUEUED;
    c->next_seq += q->count;
}

/* KIP-360: the partition no longer knows our sequence (OUT_OF_ORDER_SEQUENCE
 * on the oldest batch): start a new producer epoch at sequence 0. What was
 * not acknowledged is given up — it may or may not be in the log. */
static void bump_epoch(dp_t *s, dp_client_t *c)
{
    dp_trace(s, "c%d: out-of-order sequence on its oldest batch: producer epoch %d -> %d", c->idx, c->pepoch,
             c->pepoch + 1);
    c->n = 0;
    c->pepoch++;
    c->next_seq = 0;
    s->res->epoch_bumps++;
}

static bool retriable(int error)
{
    switch (error) {
    case KL_ENOTLEADER: case KL_EFENCED: case KL_EUNKNOWNEPOCH: case KL_ENOTENOUGHREPLICAS: case KL_EFULL:
    case KL_ETIMEOUT: case KL_ESHUTDOWN: case KL_ESEQUENCE:
        return true;
    default:
        return false;
    }
}

static void on_produce_response(dp_t *s, dp_client_t *c, const dp_call_t *call, const dp_msg_t *m)
{
    int k = 0;
    while (k < c->n && !(c->q[k].state == DP_INFLIGHT && c->q[k].rpc == call->rpc)) k++;
    if (k == c->n) return; /* given up on, or answered twice */
    dp_pbatch_t *q = &c->q[k];
    const int error = m ? m->error : KL_ETIMEOUT;
    if (error == 0) {
        dp_check_ack(s, c->idx, q->value, c->part, m->u.produce.base_offset, m->u.produce.last_offset, q->count);
        dp_trace(s, "c%d: value %" PRId64 " acked at p%d offset %" PRId64, c->idx, q->value, c->part,
                 m->u.produce.base_offset);
        q->state = DP_ACKED;
        pop_acked(c);
    } else if (error == KL_ESEQUENCE && k == 0) {
        bump_epoch(s, c);
    } else if (retriable(error)) {
        q->state = DP_QUEUED;
        c->stale = true;
        c->resend_after = s->now + dp_rnd(s, 10, 50);
    } else {
        dp_fail(s, SIM_FAIL_SAFETY, "produce-answer", "c%d: produce of value %" PRId64 " to p%d answered %s",
                c->idx, q->value, c->part, kl_errname(error));
    }
}

/* ---- consumer ------------------------------------------------------------------------ */

static void consume(dp_t *s, dp_client_t *c)
{
    if (c->fetching || !ensure_leader(s, c)) return;
    dp_msg_t *m = dp_msg_new(DP_FETCH);
    m->part = c->part;
    m->u.fetch.req = (replica_fetch_req_t){.replica_id = REPLICA_CONSUMER, .broker_epoch = -1,
                                           .leader_epoch = c->leader_epoch, .fetch_offset = c->pos,
                                           .last_fetched_epoch = REPLICA_NO_EPOCH};
    c->fetching = true;
    c->fetch_rpc = dp_call(s, c->node, dp_broker_node_of(s, c->leader), m);
}

static void on_consume_response(dp_t *s, dp_client_t *c, const dp_call_t *call, const dp_msg_t *m)
{
    if (!c->fetching || call->rpc != c->fetch_rpc) return;
    c->fetching = false;
    if (m && m->error == KL_ERANGE) { /* clean elections only: every leader holds what was committed */
        dp_fail(s, SIM_FAIL_SAFETY, "consumer-position-committed", "c%d: leader b%d (epoch %d) says offset %" PRId64
                " of p%d is out of range [%" PRId64 ", %" PRId64 "), yet it was read below a HW", c->idx,
                (int)c->leader, c->leader_epoch, c->pos, c->part, m->u.fetch.res.log_start_offset,
                m->u.fetch.res.log_end_offset);
        return;
    }
    if (!m || m->error) {
        c->stale = true;
        return;
    }
    dp_check_consumed(s, c, m->batches, m->n_batches, m->u.fetch.res.high_watermark);
}

/* ---- both ------------------------------------------------------------------------------ */

void dp_client_timer(dp_t *s, dp_client_t *c)
{
    if (c->producer) {
        if (!c->stopped && c->n < DP_WINDOW) new_batch(s, c);
        pump(s, c);
    } else {
        consume(s, c);
    }
    dp_timer(s, c->node, DP_T_CLIENT, 0, s->now + c->gap_ms);
}

void dp_client_response(dp_t *s, dp_client_t *c, const dp_call_t *call, dp_msg_t *m)
{
    if (!c->producer) {
        on_consume_response(s, c, call, m);
        return;
    }
    on_produce_response(s, c, call, m);
    if (!s->failed) pump(s, c);
}
