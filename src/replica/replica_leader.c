/* replica_leader.c — leader side: produce and acks, serving fetches, HW, ISR proposals (KIP-841), fencing (DESIGN.md §4). */
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "replica_internal.h"

/* ---- waiting produces ----------------------------------------------------------------- */

void replica_waitq_free(replica_waitq_t *q)
{
    free(q->w);
    memset(q, 0, sizeof *q);
}

static int waitq_len(const replica_waitq_t *q) { return q->n - q->head; }
static int n_waiting(const replica_t *r) { return waitq_len(&r->wait_log) + waitq_len(&r->wait_hw); }

/* Room for one more entry in q, and for every waiting produce to be failed at
 * once into `done` (so leadership loss can never drop an answer). */
static int waitq_reserve(replica_t *r, replica_waitq_t *q)
{
    if (q->head > 0 && q->n == q->cap) { /* reuse the space of answered entries */
        memmove(q->w, q->w + q->head, (size_t)waitq_len(q) * sizeof *q->w);
        q->n -= q->head;
        q->head = 0;
    }
    if (q->n < q->cap) return 0;
    const int cap = q->cap ? 2 * q->cap : 16;
    const int total = cap + (q == &r->wait_log ? r->wait_hw.cap : r->wait_log.cap);
    if (total > r->cap_done) {
        replica_completion_t *d = realloc(r->done, (size_t)total * sizeof *d);
        if (!d) return KL_ENOMEM;
        r->done = d;
        r->cap_done = total;
    }
    replica_wait_t *w = realloc(q->w, (size_t)cap * sizeof *w);
    if (!w) return KL_ENOMEM;
    q->w = w;
    q->cap = cap;
    return 0;
}

/* Sorted by last offset; only a duplicate of an older batch lands before the end. */
static void waitq_push(replica_waitq_t *q, uint64_t token, int64_t base, int64_t last)
{
    KL_ASSERT(q->n < q->cap);
    int at = q->n;
    while (at > q->head && q->w[at - 1].last_offset > last) at--;
    memmove(&q->w[at + 1], &q->w[at], (size_t)(q->n - at) * sizeof *q->w);
    q->w[at] = (replica_wait_t){token, base, last};
    q->n++;
}

static void complete(replica_t *r, const replica_wait_t *w, int error)
{
    KL_ASSERT(r->n_done < r->cap_done);
    r->done[r->n_done++] = (replica_completion_t){w->token, error, w->base_offset, w->last_offset};
}

/* Answers the front of q while its last offset is below `end`. */
static void waitq_release(replica_t *r, replica_waitq_t *q, int64_t end, int error)
{
    while (q->head < q->n && q->w[q->head].last_offset < end) complete(r, &q->w[q->head++], error);
    if (q->head == q->n) q->head = q->n = 0;
}

void replica_fail_waiting(replica_t *r, int error)
{
    waitq_release(r, &r->wait_log, REPLICA_NEVER, error);
    waitq_release(r, &r->wait_hw, REPLICA_NEVER, error);
}

/* ---- high watermark (DESIGN.md §4) ----------------------------------------------------- */

/* The ISR the HW is computed over: the committed ISR plus the members an
 * AlterPartition in flight would add (Kafka's "maximal ISR", KIP-497). A
 * proposed addition counts at once: the controller may commit it and then
 * elect that replica, so the HW must not pass what it lacks. A proposed
 * removal still counts until committed, for the same reason. */
static bool in_maximal_isr(const replica_t *r, int32_t id)
{
    if (replica_in_isr(r, id)) return true;
    if (!r->alter.inflight) return false;
    for (int i = 0; i < r->alter.req.n_isr; i++)
        if (r->alter.req.isr[i] == id) return true;
    return false;
}

/* HW = min log end over the (maximal) ISR, leader included; a member that has
 * not fetched in this leadership holds it where it is. It never decreases. */
static void update_hw(replica_t *r)
{
    int64_t hw = r->log_end;
    for (int i = 0; i < r->n_fol; i++) {
        const replica_follower_t *f = &r->fol[i];
        if (!in_maximal_isr(r, f->id)) continue;
        if (f->leo < 0) return;
        if (f->leo < hw) hw = f->leo;
    }
    if (hw > r->hw) r->hw = hw;
}

/* ---- ISR changes (DESIGN.md §4, KIP-841) ------------------------------------------------ */

/* Kafka's isCaughtUp, negated: behind our log end and not caught up for more
 * than replica.lag.time.max.ms. A follower with all we have is in sync however
 * long ago it fetched (a dead one is removed by the controller when its broker
 * is fenced, DESIGN.md §3). */
static bool out_of_sync(const replica_t *r, const replica_follower_t *f)
{
    if (f->leo == r->log_end) return false;
    return f->caught_up_ms < 0 || r->now - f->caught_up_ms > r->cfg.lag_time_max_ms;
}

/* May join the ISR: eligible (KIP-841: not fenced or shutting down), and its
 * log end reached both our HW and the start of this leader epoch. The HW, not
 * our log end, as in Kafka: under steady produce the log end moves on every
 * append, so a follower could chase it forever; the HW suffices because the
 * follower counts towards the HW from the moment it is proposed (maximal ISR),
 * so nothing commits without it. The epoch start guarantees its log was
 * checked against ours in this epoch (its fetches passed divergence checks),
 * so the records it holds below that are ours. */
static bool may_join(const replica_t *r, const replica_follower_t *f)
{
    return f->eligible && f->leo >= 0 && f->leo >= r->hw && f->leo >= r->epoch_start;
}

static void send_alter(replica_t *r)
{
    r->alter.inflight = true;
    r->alter.resend = false;
    r->out->send_alter = true;
    r->out->alter = r->alter.req;
}

/* Proposes the ISR we want when it differs from the committed one; one
 * AlterPartition at a time. The leader never applies it itself: it waits for
 * the committed change (DESIGN.md §4). */
static void propose_isr(replica_t *r)
{
    if (r->alter.inflight) {
        if (r->alter.resend && r->now >= r->alter_retry_ms) {
            replica_note(r, 1, "resending AlterPartition %llu", (unsigned long long)r->alter.req.id);
            send_alter(r);
        }
        return;
    }
    if (r->now < r->alter_retry_ms) return;
    replica_alter_req_t q = {.leader_epoch = r->st.leader_epoch, .partition_epoch = r->st.partition_epoch};
    bool differs = false;
    for (int i = 0; i < r->st.n_replicas; i++) {
        const int32_t id = r->st.replicas[i];
        const replica_follower_t *f = id == r->cfg.broker_id ? NULL : replica_find_follower(r, id);
        const bool in = replica_in_isr(r, id);
        const bool want = !f || (in ? !out_of_sync(r, f) : may_join(r, f));
        if (want != in) differs = true;
        if (!want) continue;
        q.isr[q.n_isr] = id;
        q.isr_broker_epochs[q.n_isr++] = f ? f->broker_epoch : -1;
    }
    if (!differs) return;
    q.id = ++r->next_alter_id;
    r->alter.req = q;
    r->alter.await_state = false;
    replica_note(r, 1, "proposing ISR of %d replicas (was %d) at partition epoch %d", q.n_isr, r->st.n_isr,
                 q.partition_epoch);
    send_alter(r);
}

int replica_on_alter_result(replica_t *r, const replica_event_t *ev)
{
    if (r->role != REPLICA_LEADER || !r->alter.inflight || ev->u.alter.id != r->alter.req.id) return KL_ESTATE;
    const int error = ev->u.alter.error;
    if (error == 0) {
        const int n = ev->u.alter.n_isr;
        const int32_t *isr = ev->u.alter.isr;
        if (ev->u.alter.leader_epoch != r->st.leader_epoch || n < 1 || n > REPLICA_MAX_REPLICAS || !isr)
            return KL_EINVAL;
        bool has_self = false;
        for (int i = 0; i < n; i++) {
            bool in_replicas = false;
            for (int j = 0; j < r->st.n_replicas; j++) in_replicas |= r->st.replicas[j] == isr[i];
            for (int j = 0; j < i; j++) in_replicas &= isr[j] != isr[i];
            if (!in_replicas) return KL_EINVAL;
            has_self |= isr[i] == r->cfg.broker_id;
        }
        if (!has_self) return KL_EINVAL;
        memset(&r->alter, 0, sizeof r->alter);
        if (ev->u.alter.partition_epoch > r->st.partition_epoch) { /* committed: act on it (DESIGN.md §4) */
            r->st.partition_epoch = ev->u.alter.partition_epoch;
            memcpy(r->st.isr, isr, (size_t)n * sizeof *isr);
            r->st.n_isr = n;
            replica_note(r, 1, "ISR is now %d replicas at partition epoch %d", n, r->st.partition_epoch);
        }
        return 0;
    }
    if (error == KL_EFENCED || error == KL_ENOTLEADER || error == KL_EUNKNOWNPARTITION) {
        /* Our view is stale; an earlier attempt may even have committed. Keep
         * counting its ISR until the newer state arrives (Kafka does the same
         * for FENCED_LEADER_EPOCH and INVALID_UPDATE_VERSION). */
        r->alter.await_state = true;
        replica_note(r, 1, "AlterPartition refused as stale; waiting for the committed partition state");
    } else if (error == KL_EINVAL) {
        /* The controller applied nothing (KIP-841 ineligible replica): back
         * off, then propose what the state calls for by then. */
        memset(&r->alter, 0, sizeof r->alter);
        r->alter_retry_ms = r->now + r->cfg.alter_retry_backoff_ms;
        replica_note(r, 2, "AlterPartition refused by the controller; re-evaluating in %d ms",
                     r->cfg.alter_retry_backoff_ms);
    } else {
        /* Lost, timed out, or the controller moved: it may or may not have
         * committed, so the same request goes again (a commit shows up as a
         * stale-epoch refusal or as the newer state). */
        r->alter.resend = true;
        r->alter_retry_ms = r->now + r->cfg.alter_retry_backoff_ms;
        replica_note(r, 2, "AlterPartition failed (%s); resending in %d ms", kl_errname(error),
                     r->cfg.alter_retry_backoff_ms);
    }
    return 0;
}

/* ---- leadership ------------------------------------------------------------------------ */

/* KIP-101: a new leader epoch starts at our log end. A new leader also starts
 * afresh on its followers: their log ends are unknown until they fetch, and
 * those in the ISR get a full lag window from now to do so (Kafka's
 * resetReplicaState). The HW stays where it was until they have. */
void replica_begin_leadership(replica_t *r, bool new_leader)
{
    const int rc = replica_epochs_assign(&r->epochs, r->st.leader_epoch, r->next_offset);
    if (rc != 0) { /* cannot record the epoch, so cannot stamp batches with it: do not lead */
        replica_note(r, 3, "cannot lead in epoch %d: leader-epoch cache: %s", r->st.leader_epoch, kl_errname(rc));
        replica_fail_waiting(r, KL_ENOTLEADER);
        r->role = REPLICA_NONE;
        return;
    }
    r->out->epochs_changed = true;
    r->epoch_start = r->next_offset;
    if (!new_leader) return;
    for (int i = 0; i < r->n_fol; i++) {
        replica_follower_t *f = &r->fol[i];
        f->leo = f->last_fetch_ms = f->fetch_leader_end = -1;
        f->caught_up_ms = replica_in_isr(r, f->id) ? r->now : -1;
    }
}

/* End of every leader step: HW, answers it releases, ISR proposals. */
void replica_leader_settle(replica_t *r)
{
    update_hw(r);
    waitq_release(r, &r->wait_log, r->log_end, 0);
    /* KL_ENOTENOUGHREPLICAS: committed, but by fewer replicas than required */
    waitq_release(r, &r->wait_hw, r->hw, r->st.n_isr < r->cfg.min_insync_replicas ? KL_ENOTENOUGHREPLICAS : 0);
    propose_isr(r);
}

/* When the next TICK has work: a resend, the end of a backoff, or the first
 * moment an ISR member lagging behind our log end is out of sync (exactly
 * replica.lag.time.max.ms after it was last caught up, plus 1 ms since Kafka
 * allows a lag of exactly that much). An AlterPartition in flight waits for
 * its answer, which is an event. */
int64_t replica_leader_deadline(const replica_t *r)
{
    if (r->alter.inflight) return r->alter.resend ? r->alter_retry_ms : REPLICA_NEVER;
    int64_t d = REPLICA_NEVER;
    for (int i = 0; i < r->n_fol; i++) {
        const replica_follower_t *f = &r->fol[i];
        if (!replica_in_isr(r, f->id) || f->leo == r->log_end) continue;
        const int64_t t = f->caught_up_ms < 0 ? r->now : f->caught_up_ms + r->cfg.lag_time_max_ms + 1;
        if (t < d) d = t;
    }
    if (r->alter_retry_ms > r->now) d = r->alter_retry_ms; /* nothing is proposed before it; then re-evaluate */
    return d;
}

/* ---- fencing (DESIGN.md §4 "fencing zombies", KIP-320) -------------------------------------- */

static int check_leader_epoch(const replica_t *r, int32_t epoch)
{
    if (r->role != REPLICA_LEADER) return KL_ENOTLEADER;
    if (epoch < r->st.leader_epoch) return KL_EFENCED;
    if (epoch > r->st.leader_epoch) return KL_EUNKNOWNEPOCH;
    return 0;
}

/* ---- produce ---------------------------------------------------------------------------- */

static void decide_produce(replica_t *r, const replica_produce_req_t *req, replica_produce_result_t *res)
{
    res->error = check_leader_epoch(r, req->leader_epoch);
    if (res->error) return;
    const replica_batch_t *b = &req->batch;
    const int acks = req->acks;
    if ((acks != 0 && acks != 1 && acks != REPLICA_ACKS_ALL) || b->last_offset_delta < 0) {
        res->error = KL_EINVAL;
        return;
    }
    /* Refused up front, before anything is written (DESIGN.md §4). */
    if (acks == REPLICA_ACKS_ALL && r->st.n_isr < r->cfg.min_insync_replicas) {
        res->error = KL_ENOTENOUGHREPLICAS;
        return;
    }
    replica_producer_batch_t dup;
    const int verdict = replica_producers_check(&r->producers, b, &dup);
    if (verdict != 0 && verdict != KL_EDUPLICATE) {
        res->error = verdict;
        return;
    }
    replica_waitq_t *q = acks == 1 ? &r->wait_log : acks == REPLICA_ACKS_ALL ? &r->wait_hw : NULL;
    if (q && n_waiting(r) >= r->cfg.max_pending) {
        res->error = KL_EFULL;
        return;
    }
    if (q && (res->error = waitq_reserve(r, q)) != 0) return;

    if (verdict == KL_EDUPLICATE) { /* KIP-98: the original's answer, once it is as durable as asked */
        res->duplicate = true;
        res->base_offset = dup.first_offset;
        res->last_offset = dup.last_offset;
    } else {
        replica_batch_t a = *b;
        a.base_offset = r->next_offset;
        a.leader_epoch = r->st.leader_epoch;
        if (a.base_offset + a.last_offset_delta > REPLICA_MAX_OFFSET) {
            res->error = KL_ETOOBIG;
            return;
        }
        if ((res->error = replica_producers_record(&r->producers, &a)) != 0) return;
        r->next_offset = a.base_offset + a.last_offset_delta + 1;
        res->append = true;
        res->base_offset = a.base_offset;
        res->last_offset = r->next_offset - 1;
    }
    const int64_t reached = acks == 1 ? r->log_end : r->hw;
    if (q && res->last_offset >= reached) {
        waitq_push(q, req->token, res->base_offset, res->last_offset);
        res->pending = true;
    }
}

int replica_on_produce(replica_t *r, const replica_produce_req_t *req)
{
    replica_produce_result_t *res = &r->out->produce;
    decide_produce(r, req, res);
    res->leader_epoch = r->st.leader_epoch;
    return 0;
}

/* ---- serving fetches --------------------------------------------------------------------- */

/* Kafka's Replica.updateFetchState: a fetch at our log end means caught up
 * now; a fetch at or past our log end as of its previous fetch means it was
 * caught up then (under steady produce it can never equal the moving end). */
static void follower_fetched(replica_t *r, replica_follower_t *f, const replica_fetch_req_t *req)
{
    if (req->fetch_offset >= r->log_end) {
        if (r->now > f->caught_up_ms) f->caught_up_ms = r->now;
    } else if (f->fetch_leader_end >= 0 && req->fetch_offset >= f->fetch_leader_end) {
        if (f->last_fetch_ms > f->caught_up_ms) f->caught_up_ms = f->last_fetch_ms;
    }
    f->fetch_leader_end = r->log_end;
    f->last_fetch_ms = r->now;
    f->leo = req->fetch_offset;
    f->broker_epoch = req->broker_epoch;
}

static void serve_fetch(replica_t *r, const replica_fetch_req_t *req, replica_fetch_result_t *res)
{
    res->error = check_leader_epoch(r, req->leader_epoch);
    if (res->error) return;
    replica_follower_t *f = NULL;
    if (req->replica_id != REPLICA_CONSUMER) {
        f = replica_find_follower(r, req->replica_id);
        if (!f || req->last_fetched_epoch > r->st.leader_epoch || req->last_fetched_epoch < REPLICA_NO_EPOCH) {
            res->error = KL_EINVAL; /* not a follower of ours, or claims an epoch that cannot exist yet */
            return;
        }
    }
    if (f && req->last_fetched_epoch != REPLICA_NO_EPOCH) {
        /* KIP-595 fetch validation: our end for its last epoch is below its
         * fetch offset, or we lack that epoch: it diverged, and learns where. */
        int32_t e;
        int64_t end;
        replica_epochs_end_offset(&r->epochs, req->last_fetched_epoch, r->log_end, &e, &end);
        if (e < req->last_fetched_epoch || end < req->fetch_offset) {
            res->diverging_epoch = e;
            res->diverging_end_offset = end;
            res->read_end = req->fetch_offset;
            return; /* its log end is unknown until it truncates: not recorded */
        }
    }
    if (req->fetch_offset < r->log_start || req->fetch_offset > r->log_end) {
        res->error = KL_ERANGE;
        return;
    }
    if (f) {
        follower_fetched(r, f, req);
        update_hw(r); /* so the answer already carries the HW this fetch moved */
        res->read_end = r->log_end;
    } else if (!replica_hw_settled(r)) {
        /* A new leader's HW may trail what the previous leader reported until
         * its followers fetch (KAFKA-2334); answering with it would let a
         * consumer see the HW go back. Once it reaches the start of our epoch
         * it covers everything any earlier leader committed (KIP-207). */
        res->error = KL_ENOTAVAILABLE;
    } else { /* consumers read committed records only (DESIGN.md §4) */
        res->read_end = r->hw > req->fetch_offset ? r->hw : req->fetch_offset;
    }
}

int replica_on_fetch(replica_t *r, const replica_fetch_req_t *req)
{
    replica_fetch_result_t *res = &r->out->fetch;
    serve_fetch(r, req, res);
    res->high_watermark = r->hw;
    res->log_start_offset = r->log_start;
    res->log_end_offset = r->log_end;
    res->leader_id = r->st.leader;
    res->leader_epoch = r->st.leader_epoch;
    if (res->error) res->read_end = -1;
    return 0;
}
