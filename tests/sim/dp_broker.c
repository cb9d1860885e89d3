/* dp_broker.c — simulated brokers: registration, heartbeats, metadata as an observer, and the io layer that carries out each replica core update in replica.h's order. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_cluster.h"
#include "keel/err.h"
#include "sim_cluster.h"

/* What a step's update may need from the event that caused it. */
typedef struct step_ctx {
    const dp_batch_t *fetched; /* FETCH_RESPONSE: the batches, in the response's order */
    const dp_batch_t *produced; /* PRODUCE: the batch as the client sent it */
} step_ctx_t;

static void sync_partitions(dp_t *s, dp_broker_t *b);

/* ---- the disk ------------------------------------------------------------------------ */

static int64_t batch_end(const dp_batch_t *x)
{
    return x->h.base_offset + x->h.last_offset_delta + 1;
}

int64_t dp_disk_end(const dp_disk_t *d)
{
    return d->n ? batch_end(&d->b[d->n - 1]) : d->log_start;
}

/* Index of the first batch ending after `offset`. */
int64_t dp_disk_index(const dp_disk_t *d, int64_t offset)
{
    int64_t lo = 0, hi = d->n;
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (batch_end(&d->b[mid]) <= offset) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static void disk_append(dp_t *s, dp_broker_t *b, int part, const dp_batch_t *x)
{
    dp_disk_t *d = &b->rep[part].disk;
    if (x->h.base_offset != dp_disk_end(d)) {
        dp_fail(s, SIM_FAIL_SAFETY, "io-contract", "b%d p%d: core asked to write a batch at %" PRId64
                " but the log ends at %" PRId64, (int)b->id, part, x->h.base_offset, dp_disk_end(d));
        return;
    }
    sim_grow((void **)&d->b, &d->cap, d->n + 1, sizeof *d->b);
    d->b[d->n++] = *x;
}

static void disk_truncate(dp_t *s, dp_broker_t *b, int part, int64_t to)
{
    dp_disk_t *d = &b->rep[part].disk;
    const int64_t i = dp_disk_index(d, to);
    if (i < d->n && d->b[i].h.base_offset != to) {
        dp_fail(s, SIM_FAIL_SAFETY, "truncate-at-batch-boundary", "b%d p%d: truncation to %" PRId64
                " falls inside the batch at %" PRId64, (int)b->id, part, to, d->b[i].h.base_offset);
        return;
    }
    d->n = i;
}

static void disk_drop_prefix(dp_disk_t *d, int64_t start)
{
    const int64_t k = dp_disk_index(d, start);
    memmove(d->b, d->b + k, (size_t)(d->n - k) * sizeof *d->b);
    d->n -= k;
    d->log_start = start;
}

static void disk_save_epochs(dp_disk_t *d, const replica_epochs_t *e)
{
    if (e->n > d->cap_epochs) {
        d->epochs = realloc(d->epochs, (size_t)e->n * sizeof *d->epochs);
        KL_ASSERT(d->epochs);
        d->cap_epochs = e->n;
    }
    if (e->n) memcpy(d->epochs, e->e, (size_t)e->n * sizeof *d->epochs);
    d->n_epochs = e->n;
}

/* ---- helpers --------------------------------------------------------------------------- */

const meta_partition_t *dp_broker_partition(const dp_t *s, const dp_broker_t *b, int part)
{
    return b->img ? meta_image_partition(b->img, s->ctrl.topic, part) : NULL;
}

int dp_broker_node_of(const dp_t *s, int32_t id)
{
    const int i = id - DP_BROKER_ID_BASE - 1;
    return i >= 0 && i < s->n_brokers ? dp_broker_node(i) : -1;
}

/* The controller a broker talks to: the active one (the quorum tells observers
 * who leads; discovery is not what this simulator tests), else any voter,
 * which answers NOT_CONTROLLER. */
static int controller_node(const dp_t *s)
{
    return dp_ctrl_node(s->ctrl.active >= 0 ? s->ctrl.active : 0);
}

static bool has_call(const dp_t *s, const dp_broker_t *b, dp_msg_type_t type)
{
    const dp_node_t *n = &s->nodes[b->node];
    for (int i = 0; i < n->n_calls; i++)
        if (n->calls[i].type == type) return true;
    return false;
}

static void trace_notes(dp_t *s, const dp_broker_t *b, int part, const replica_update_t *up)
{
    if (!s->p.verbose) return;
    for (int i = 0; i < up->n_notes; i++)
        dp_trace(s, "b%d p%d: %s", (int)b->id, part, up->notes[i].text);
}

/* ---- stepping the replica core and carrying out its update ------------------------------ */

static void send_alter(dp_t *s, dp_broker_t *b, int part, const replica_alter_req_t *q)
{
    dp_rep_t *rep = &b->rep[part];
    dp_msg_t *m = dp_msg_new(DP_ALTER);
    m->part = part;
    m->u.alter.broker_id = b->id;
    m->u.alter.broker_epoch = b->epoch;
    m->u.alter.id = q->id;
    m->u.alter.leader_epoch = q->leader_epoch;
    m->u.alter.partition_epoch = q->partition_epoch;
    m->u.alter.n_isr = q->n_isr;
    memcpy(m->u.alter.isr, q->isr, sizeof q->isr);
    rep->alter_out = true;
    rep->alter_id = q->id;
    rep->alter_rpc = dp_call(s, b->node, controller_node(s), m);
}

static void answer_produce(dp_t *s, const dp_pending_produce_t *pp, int node, int error, int64_t base, int64_t last)
{
    const dp_msg_t req = {.type = DP_PRODUCE, .from = pp->client, .to = node, .gen = pp->gen, .rpc = pp->rpc,
                          .part = pp->part};
    dp_msg_t *r = dp_msg_new(DP_PRODUCE);
    r->error = error;
    r->u.produce.base_offset = base;
    r->u.produce.last_offset = last;
    dp_reply(s, &req, r);
}

static void complete_produces(dp_t *s, dp_broker_t *b, const replica_update_t *up)
{
    for (int i = 0; i < up->n_completions; i++) {
        const replica_completion_t *c = &up->completions[i];
        for (int j = 0; j < b->n_pp; j++) {
            if (b->pp[j].token != c->token) continue;
            answer_produce(s, &b->pp[j], b->node, c->error, c->base_offset, c->last_offset);
            b->pp[j] = b->pp[--b->n_pp];
            break;
        }
    }
}

/* replica.h's replica_update_t, steps 1-8, in that order. */
static void apply_update(dp_t *s, dp_broker_t *b, int part, const replica_update_t *up, const step_ctx_t *ctx)
{
    dp_rep_t *rep = &b->rep[part];
    dp_disk_t *d = &rep->disk;
    if (up->reset_to >= 0) { /* 1 */
        dp_check_truncate(s, b, part, d->log_start);
        d->n = 0;
        d->log_start = up->reset_to;
    }
    if (up->truncate_to >= 0) {
        dp_check_truncate(s, b, part, up->truncate_to);
        disk_truncate(s, b, part, up->truncate_to);
        s->res->truncations++;
    }
    for (int i = 0; i < up->n_append && !s->failed; i++) disk_append(s, b, part, &ctx->fetched[i]); /* 2 */
    if (up->produce.append && !s->failed) {
        dp_batch_t x = *ctx->produced;
        x.h.base_offset = up->produce.base_offset;
        x.h.leader_epoch = up->produce.leader_epoch;
        disk_append(s, b, part, &x);
        /* the write completes, now and then after a slow disk's while */
        dp_timer(s, b->node, DP_T_APPENDED, part, s->now + (dp_pm(s, 30) ? dp_rnd(s, 20, 120) : dp_rnd(s, 0, 3)));
    }
    if (up->log_start_to >= 0) disk_drop_prefix(d, up->log_start_to); /* 3 */
    if (up->epochs_changed) disk_save_epochs(d, replica_epochs(rep->r)); /* 4 */
    for (int64_t i = 0; up->rebuild_producers && i < d->n && !s->failed; i++) { /* 5 */
        const int rc = replica_replay(rep->r, &d->b[i].h, 1);
        if (rc)
            dp_fail(s, SIM_FAIL_SAFETY, "producer-rebuild", "b%d p%d: replaying the batch at %" PRId64 ": %s",
                    (int)b->id, part, d->b[i].h.base_offset, kl_errname(rc));
    }
    if (up->hw_changed) { /* 6 */
        dp_trace(s, "b%d p%d: HW %" PRId64 " (log end %" PRId64 ", %s)", (int)b->id, part, up->high_watermark,
                 replica_log_end(rep->r), replica_role_name(replica_role(rep->r)));
        dp_check_hw(s, b, part);
    }
    if (up->send_alter) send_alter(s, b, part, &up->alter); /* 7 */
    complete_produces(s, b, up); /* 8 (the step's own produce or fetch answer: the caller) */
}

static void schedule_fetch(dp_t *s, dp_broker_t *b, int part, int64_t delay)
{
    dp_rep_t *rep = &b->rep[part];
    if (rep->fetch_scheduled) return;
    rep->fetch_scheduled = true;
    dp_timer(s, b->node, DP_T_FETCH, part, s->now + delay);
}

static void arm_tick(dp_t *s, dp_broker_t *b, int part)
{
    dp_rep_t *rep = &b->rep[part];
    const int64_t d = replica_next_deadline(rep->r);
    if (d == REPLICA_NEVER || d >= rep->tick_at) return;
    rep->tick_at = d;
    dp_timer(s, b->node, DP_T_TICK, part, d);
}

static bool rep_create(dp_t *s, dp_broker_t *b, int part);

/* DP_BUG_TRUNCATE_TO_HW: what Kafka did before KIP-101 — a new follower cuts
 * its log to its HW, which may be below records the ISR committed. Modelled
 * as the io layer cutting its log and reloading the replica from it. */
static bool bug_truncate_to_hw(dp_t *s, dp_broker_t *b, int part)
{
    dp_rep_t *rep = &b->rep[part];
    const int64_t hw = replica_high_watermark(rep->r);
    if (dp_disk_end(&rep->disk) <= hw) return false;
    dp_trace(s, "b%d p%d: BUG truncating to HW %" PRId64 " on becoming follower", (int)b->id, part, hw);
    dp_check_truncate(s, b, part, hw);
    disk_truncate(s, b, part, hw);
    replica_epochs_t e = {rep->disk.epochs, rep->disk.n_epochs, rep->disk.cap_epochs};
    replica_epochs_truncate_end(&e, hw);
    rep->disk.n_epochs = e.n;
    rep->disk.hw_ckpt = hw;
    replica_free(rep->r);
    rep->r = NULL;
    if (rep_create(s, b, part)) sync_partitions(s, b);
    return true;
}

/* One replica_step and its update. Returns the step's code. */
static int rep_step(dp_t *s, dp_broker_t *b, int part, const replica_event_t *ev, const step_ctx_t *ctx,
                    replica_update_t *up)
{
    dp_rep_t *rep = &b->rep[part];
    const int rc = replica_step(rep->r, ev, up);
    s->res->steps++;
    trace_notes(s, b, part, up);
    if (rc) {
        /* The core refuses, loudly, to cut records below its HW: either the
         * leader lacks committed records or the follower misjudges where it
         * diverged. Both are safety bugs. */
        for (int i = 0; i < up->n_notes && ev->type == REPLICA_EV_FETCH_RESPONSE; i++)
            if (up->notes[i].level >= 3)
                dp_fail(s, SIM_FAIL_SAFETY, "no-truncation-below-hw", "b%d p%d: %s", (int)b->id, part,
                        up->notes[i].text);
        return rc;
    }
    apply_update(s, b, part, up, ctx);
    if (s->failed) return 0;
    const int64_t end = replica_log_end(rep->r), hw = replica_high_watermark(rep->r);
    if (end > dp_disk_end(&rep->disk) || hw > end)
        dp_fail(s, SIM_FAIL_SAFETY, "io-contract", "b%d p%d: core log end %" PRId64 ", HW %" PRId64
                ", disk log end %" PRId64, (int)b->id, part, end, hw, dp_disk_end(&rep->disk));
    if (up->role_changed) {
        if (replica_leader_epoch(rep->r) != rep->seen_epoch) s->res->leader_changes++;
        rep->seen_epoch = replica_leader_epoch(rep->r);
        rep->fetching = false; /* an answer to the old leader is stale now */
        if (s->p.bug == DP_BUG_TRUNCATE_TO_HW && replica_role(rep->r) == REPLICA_FOLLOWER &&
            bug_truncate_to_hw(s, b, part))
            return 0;
    }
    arm_tick(s, b, part);
    /* a new leader to follow: start fetching (on_fetch_response keeps it going) */
    if (up->role_changed && replica_role(rep->r) == REPLICA_FOLLOWER) schedule_fetch(s, b, part, 0);
    return 0;
}

static void step_simple(dp_t *s, dp_broker_t *b, int part, replica_event_t ev)
{
    replica_update_t up;
    ev.now_ms = s->now;
    rep_step(s, b, part, &ev, &(step_ctx_t){0}, &up);
}

/* A replica from what its disk holds (restart), or a new empty one. */
static bool rep_create(dp_t *s, dp_broker_t *b, int part)
{
    dp_rep_t *rep = &b->rep[part];
    dp_disk_t *d = &rep->disk;
    replica_config_t cfg = s->rcfg;
    cfg.broker_id = b->id;
    const replica_restore_t rs = {.log_start = d->log_start, .log_end = dp_disk_end(d), .high_watermark = d->hw_ckpt,
                                  .epochs = d->epochs, .n_epochs = d->n_epochs};
    rep->r = replica_new(&cfg, d->exists ? &rs : NULL);
    if (!rep->r) {
        dp_fail(s, SIM_FAIL_SAFETY, "replica-restore", "b%d p%d: replica_new refused the recovered log [%" PRId64
                ", %" PRId64 ") with HW %" PRId64 " and %d epochs", (int)b->id, part, rs.log_start, rs.log_end,
                rs.high_watermark, rs.n_epochs);
        return false;
    }
    for (int64_t i = 0; i < d->n; i++) {
        const int rc = replica_replay(rep->r, &d->b[i].h, 1);
        if (rc) {
            dp_fail(s, SIM_FAIL_SAFETY, "producer-rebuild", "b%d p%d: replaying the log on restart: %s", (int)b->id,
                    part, kl_errname(rc));
            return false;
        }
    }
    d->exists = true;
    rep->tick_at = INT64_MAX;
    rep->fetch_scheduled = rep->fetching = rep->alter_out = false;
    rep->seen_epoch = -1;
    for (int i = 0; i < DP_MAX_BROKERS; i++) rep->eligible[i] = true; /* replica.h: replicas start eligible */
    return true;
}

/* ---- metadata: brokers observe the committed log and act on it ------------------------- */

static void state_of(const meta_partition_t *mp, replica_partition_state_t *st)
{
    memset(st, 0, sizeof *st);
    st->leader = mp->leader;
    st->leader_epoch = mp->leader_epoch;
    st->partition_epoch = mp->partition_epoch;
    st->n_replicas = mp->n_replicas;
    memcpy(st->replicas, mp->replicas, (size_t)mp->n_replicas * sizeof *mp->replicas);
    st->n_isr = mp->n_isr;
    memcpy(st->isr, mp->isr, (size_t)mp->n_isr * sizeof *mp->isr);
}

static bool is_replica(const meta_partition_t *mp, int32_t id)
{
    for (int i = 0; i < mp->n_replicas; i++)
        if (mp->replicas[i] == id) return true;
    return false;
}

/* Feeds each replica the committed state it has not seen, then the liveness
 * of the other replicas' brokers (KIP-841 eligibility). */
static void sync_partitions(dp_t *s, dp_broker_t *b)
{
    for (int part = 0; part < s->n_parts && !s->failed; part++) {
        const meta_partition_t *mp = dp_broker_partition(s, b, part);
        if (!mp || !is_replica(mp, b->id)) continue;
        dp_rep_t *rep = &b->rep[part];
        if (!rep->r && !rep_create(s, b, part)) return;
        if (replica_role(rep->r) == REPLICA_NONE || replica_leader_epoch(rep->r) < mp->leader_epoch ||
            (replica_leader_epoch(rep->r) == mp->leader_epoch &&
             replica_partition_epoch(rep->r) < mp->partition_epoch)) {
            replica_partition_state_t st;
            state_of(mp, &st);
            step_simple(s, b, part, (replica_event_t){.type = REPLICA_EV_PARTITION_STATE, .u.state = &st});
            if (s->failed || !rep->r) return;
        }
        for (int i = 0; i < mp->n_replicas; i++) {
            const int32_t id = mp->replicas[i];
            const int k = id - DP_BROKER_ID_BASE - 1;
            if (id == b->id || k < 0 || k >= DP_MAX_BROKERS) continue;
            const meta_broker_t *mb = meta_image_broker(b->img, id);
            const bool eligible = mb && mb->state == META_BROKER_ACTIVE;
            if (eligible == rep->eligible[k]) continue;
            rep->eligible[k] = eligible;
            step_simple(s, b, part, (replica_event_t){.type = REPLICA_EV_ELIGIBILITY,
                                                      .u.eligibility = {.broker_id = id, .eligible = eligible}});
            if (s->failed || !rep->r) return;
        }
    }
}

static void apply_metadata(dp_t *s, dp_broker_t *b, int64_t end)
{
    const meta_records_t *log = &s->ctrl.log;
    if (end > log->n) end = log->n;
    for (int64_t off = b->meta_end; off < end; off++) {
        if (meta_image_apply(b->img, &log->recs[off], off) != 0) {
            dp_fail(s, SIM_FAIL_SAFETY, "broker-image-applies", "b%d: committed %s record at %" PRId64
                    " does not apply to its image: %s", (int)b->id, meta_record_type_name(log->recs[off].type), off,
                    meta_image_error(b->img));
            return;
        }
    }
    if (end <= b->meta_end) return;
    b->meta_end = end;
    sync_partitions(s, b);
}

/* ---- lifecycle -------------------------------------------------------------------------- */

void dp_broker_start(dp_t *s, dp_broker_t *b)
{
    dp_node_t *n = &s->nodes[b->node];
    n->up = true;
    n->paused_until = 0;
    for (int i = 0; i < KL_UUID_LEN; i++) b->incarnation[i] = (uint8_t)dp_rnd(s, 0, 255);
    b->incarnation[0] |= 1;
    b->epoch = -1;
    b->img = meta_image_new();
    KL_ASSERT(b->img);
    b->meta_end = 0;
    b->want_shutdown = false;
    b->restart_at = -1;
    b->n_pp = 0;
    for (int part = 0; part < s->n_parts; part++)
        if (b->rep[part].disk.exists && !rep_create(s, b, part)) return;
    dp_trace(s, "b%d: starts (incarnation %u)", (int)b->id, n->inc);
    dp_timer(s, b->node, DP_T_REGISTER, 0, s->now);
    dp_timer(s, b->node, DP_T_METADATA, 0, s->now + dp_rnd(s, 0, b->meta_gap_ms));
    dp_timer(s, b->node, DP_T_CHECKPOINT, 0, s->now + b->ckpt_gap_ms);
}

/* kill -9: the replica cores' memory and the image are gone; the disk stays. */
void dp_broker_crash(dp_t *s, dp_broker_t *b)
{
    for (int part = 0; part < s->n_parts; part++) {
        replica_free(b->rep[part].r);
        b->rep[part].r = NULL;
    }
    meta_image_free(b->img);
    b->img = NULL;
    b->n_pp = 0;
    dp_node_crash(s, b->node);
}

void dp_broker_pause(dp_t *s, dp_broker_t *b, int64_t until)
{
    s->nodes[b->node].paused_until = until;
}

void dp_broker_free(dp_broker_t *b)
{
    for (int part = 0; part < DP_MAX_PARTS; part++) {
        replica_free(b->rep[part].r);
        free(b->rep[part].disk.b);
        free(b->rep[part].disk.epochs);
    }
    meta_image_free(b->img);
    free(b->pp);
    memset(b, 0, sizeof *b);
}

/* Controlled shutdown is over: waiting produces fail, the process exits. */
static void finish_shutdown(dp_t *s, dp_broker_t *b)
{
    dp_trace(s, "b%d: controlled shutdown complete", (int)b->id);
    for (int part = 0; part < s->n_parts && !s->failed; part++)
        if (b->rep[part].r)
            step_simple(s, b, part, (replica_event_t){.type = REPLICA_EV_STOP, .u.error = KL_ESHUTDOWN});
    dp_broker_crash(s, b);
    b->restart_at = s->now + dp_rnd(s, 50, 800);
}

/* ---- timers ----------------------------------------------------------------------------- */

static void follower_fetch(dp_t *s, dp_broker_t *b, int part)
{
    dp_rep_t *rep = &b->rep[part];
    if (!rep->r || rep->fetching || replica_role(rep->r) != REPLICA_FOLLOWER) return;
    replica_fetch_req_t q;
    if (replica_fetch_request(rep->r, &q) != 0) { /* a write of ours still completing */
        schedule_fetch(s, b, part, 2);
        return;
    }
    const int leader = dp_broker_node_of(s, replica_leader(rep->r));
    if (leader < 0) return;
    q.broker_epoch = b->epoch;
    dp_msg_t *m = dp_msg_new(DP_FETCH);
    m->part = part;
    m->u.fetch.req = q;
    rep->fetch_req = q;
    rep->fetching = true;
    rep->fetch_rpc = dp_call(s, b->node, leader, m);
}

void dp_broker_timer(dp_t *s, dp_broker_t *b, dp_timer_t t, int part)
{
    dp_rep_t *rep = &b->rep[part];
    switch (t) {
    case DP_T_REGISTER:
        if (b->epoch < 0 && !has_call(s, b, DP_REGISTER)) {
            dp_msg_t *m = dp_msg_new(DP_REGISTER);
            m->u.reg.broker_id = b->id;
            memcpy(m->u.reg.incarnation, b->incarnation, KL_UUID_LEN);
            dp_call(s, b->node, controller_node(s), m);
        }
        break;
    case DP_T_HEARTBEAT:
        if (b->epoch >= 0 && !has_call(s, b, DP_HEARTBEAT)) {
            dp_msg_t *m = dp_msg_new(DP_HEARTBEAT);
            m->u.hb.req = (meta_heartbeat_req_t){.broker_id = b->id, .broker_epoch = b->epoch,
                                                 .metadata_offset = b->meta_end - 1,
                                                 .want_shutdown = b->want_shutdown};
            dp_call(s, b->node, controller_node(s), m);
        }
        break;
    case DP_T_METADATA:
        if (!has_call(s, b, DP_METADATA)) {
            dp_msg_t *m = dp_msg_new(DP_METADATA);
            m->u.meta.from = b->meta_end;
            dp_call(s, b->node, controller_node(s), m);
        }
        break;
    case DP_T_CHECKPOINT:
        for (int i = 0; i < s->n_parts; i++)
            if (b->rep[i].r) b->rep[i].disk.hw_ckpt = replica_high_watermark(b->rep[i].r);
        dp_timer(s, b->node, DP_T_CHECKPOINT, 0, s->now + b->ckpt_gap_ms);
        break;
    case DP_T_FETCH:
        rep->fetch_scheduled = false;
        follower_fetch(s, b, part);
        break;
    case DP_T_TICK:
        if (rep->r && rep->tick_at <= s->now) {
            rep->tick_at = INT64_MAX;
            step_simple(s, b, part, (replica_event_t){.type = REPLICA_EV_TICK});
        }
        break;
    case DP_T_APPENDED:
        if (rep->r)
            step_simple(s, b, part, (replica_event_t){.type = REPLICA_EV_APPENDED, .u.log_end = dp_disk_end(&rep->disk)});
        break;
    default: break;
    }
}

/* ---- answers to the broker's own requests ------------------------------------------------ */

static void on_fetch_response(dp_t *s, dp_broker_t *b, int part, dp_msg_t *m)
{
    dp_rep_t *rep = &b->rep[part];
    rep->fetching = false;
    if (!rep->r) return;
    replica_fetch_resp_t resp = {.error = m ? m->error : KL_ETIMEOUT,
                                 .leader_epoch = rep->fetch_req.leader_epoch,
                                 .fetch_offset = rep->fetch_req.fetch_offset,
                                 .diverging_epoch = REPLICA_NO_EPOCH,
                                 .diverging_end_offset = REPLICA_NO_OFFSET};
    replica_batch_t hdr[DP_FETCH_MAX_BATCHES];
    if (m && (m->error == 0 || m->error == KL_ERANGE)) {
        const replica_fetch_result_t *r = &m->u.fetch.res;
        resp.high_watermark = r->high_watermark;
        resp.log_start_offset = r->log_start_offset;
        resp.log_end_offset = r->log_end_offset;
        resp.diverging_epoch = r->diverging_epoch;
        resp.diverging_end_offset = r->diverging_end_offset;
        KL_ASSERT(m->n_batches <= DP_FETCH_MAX_BATCHES);
        for (int i = 0; i < m->n_batches; i++) hdr[i] = m->batches[i].h;
        resp.batches = hdr;
        resp.n_batches = m->n_batches;
    }
    replica_update_t up;
    const replica_event_t ev = {.type = REPLICA_EV_FETCH_RESPONSE, .now_ms = s->now, .u.fetch_resp = &resp};
    const step_ctx_t ctx = {.fetched = m ? m->batches : NULL};
    rep_step(s, b, part, &ev, &ctx, &up);
    if (s->failed || !rep->r || replica_role(rep->r) != REPLICA_FOLLOWER) return;
    /* more to read: at once; caught up: poll again soon; an error: back off */
    const int64_t delay = !m || m->error ? DP_RETRY_MS : m->n_batches ? 0 : s->fetch_backoff_ms;
    schedule_fetch(s, b, part, delay);
}

void dp_broker_response(dp_t *s, dp_broker_t *b, const dp_call_t *c, dp_msg_t *m)
{
    const int error = m ? m->error : KL_ETIMEOUT;
    switch (c->type) {
    case DP_REGISTER:
        if (error) {
            dp_timer(s, b->node, DP_T_REGISTER, 0, s->now + DP_RETRY_MS);
        } else if (b->epoch < 0) {
            b->epoch = m->u.reg.epoch;
            dp_trace(s, "b%d: registered with broker epoch %" PRId64, (int)b->id, b->epoch);
            dp_timer(s, b->node, DP_T_HEARTBEAT, 0, s->now);
        }
        break;
    case DP_HEARTBEAT:
        if (error == KL_EFENCED || error == KL_ENOENT) { /* our registration is gone: register again */
            b->epoch = -1;
            dp_timer(s, b->node, DP_T_REGISTER, 0, s->now);
            break;
        }
        if (!error && b->want_shutdown && m->u.hb.reply.shutdown_now) {
            finish_shutdown(s, b);
            break;
        }
        dp_timer(s, b->node, DP_T_HEARTBEAT, 0, s->now + (error ? DP_RETRY_MS : DP_HEARTBEAT_MS));
        break;
    case DP_METADATA:
        if (!error) apply_metadata(s, b, m->u.meta.end);
        if (s->nodes[b->node].up) dp_timer(s, b->node, DP_T_METADATA, 0, s->now + b->meta_gap_ms);
        break;
    case DP_ALTER: {
        dp_rep_t *rep = &b->rep[c->part];
        if (!rep->r || !rep->alter_out || c->rpc != rep->alter_rpc) break;
        rep->alter_out = false;
        replica_event_t ev = {.type = REPLICA_EV_ALTER_RESULT, .u.alter = {.id = rep->alter_id, .error = error}};
        if (!error) {
            ev.u.alter.leader_epoch = m->u.alter.leader_epoch;
            ev.u.alter.partition_epoch = m->u.alter.partition_epoch;
            ev.u.alter.isr = m->u.alter.isr;
            ev.u.alter.n_isr = m->u.alter.n_isr;
        }
        step_simple(s, b, c->part, ev);
        break;
    }
    case DP_FETCH:
        if (b->rep[c->part].fetching && c->rpc == b->rep[c->part].fetch_rpc) on_fetch_response(s, b, c->part, m);
        break;
    default: break;
    }
}

/* ---- requests from followers, consumers and producers ------------------------------------ */

/* Whole batches of the log in [from, end): a fetch offset must start a batch. */
static void read_batches(dp_t *s, const dp_broker_t *b, int part, int64_t from, int64_t end, dp_msg_t *out)
{
    const dp_disk_t *d = &b->rep[part].disk;
    int64_t i = dp_disk_index(d, from);
    if (i < d->n && d->b[i].h.base_offset != from && from < end) {
        dp_fail(s, SIM_FAIL_SAFETY, "fetch-at-batch-boundary", "b%d p%d: a fetch at %" PRId64
                " falls inside the batch at %" PRId64 ": the fetcher's log diverged undetected", (int)b->id, part,
                from, d->b[i].h.base_offset);
        return;
    }
    int n = 0;
    while (i + n < d->n && n < DP_FETCH_MAX_BATCHES && batch_end(&d->b[i + n]) <= end) n++;
    if (n == 0) return;
    out->batches = sim_xmalloc((size_t)n * sizeof *out->batches);
    memcpy(out->batches, &d->b[i], (size_t)n * sizeof *out->batches);
    out->n_batches = n;
}

static void serve_fetch(dp_t *s, dp_broker_t *b, dp_msg_t *m)
{
    const int part = m->part;
    dp_rep_t *rep = &b->rep[part];
    dp_msg_t *r = dp_msg_new(DP_FETCH);
    if (!rep->r) {
        r->error = KL_ENOTLEADER;
        dp_reply(s, m, r);
        return;
    }
    replica_update_t up;
    const replica_event_t ev = {.type = REPLICA_EV_FETCH, .now_ms = s->now, .u.fetch = &m->u.fetch.req};
    if (rep_step(s, b, part, &ev, &(step_ctx_t){0}, &up) != 0) {
        r->error = KL_EINVAL;
    } else {
        r->error = up.fetch.error;
        r->u.fetch.res = up.fetch;
        if (!up.fetch.error && up.fetch.diverging_epoch == REPLICA_NO_EPOCH)
            read_batches(s, b, part, m->u.fetch.req.fetch_offset, up.fetch.read_end, r);
    }
    dp_reply(s, m, r);
}

static void serve_produce(dp_t *s, dp_broker_t *b, dp_msg_t *m)
{
    const int part = m->part;
    dp_rep_t *rep = &b->rep[part];
    dp_pending_produce_t pp = {.token = ++b->next_token, .client = m->from, .gen = m->gen, .rpc = m->rpc,
                               .part = part};
    if (!rep->r) {
        answer_produce(s, &pp, b->node, KL_ENOTLEADER, -1, -1);
        return;
    }
    const replica_produce_req_t req = {.leader_epoch = m->u.produce.leader_epoch, .acks = REPLICA_ACKS_ALL,
                                       .token = pp.token, .batch = m->u.produce.batch.h};
    replica_update_t up;
    const replica_event_t ev = {.type = REPLICA_EV_PRODUCE, .now_ms = s->now, .u.produce = &req};
    const step_ctx_t ctx = {.produced = &m->u.produce.batch};
    if (rep_step(s, b, part, &ev, &ctx, &up) != 0) {
        answer_produce(s, &pp, b->node, KL_EINVAL, -1, -1);
        return;
    }
    const replica_produce_result_t *res = &up.produce;
    if (res->duplicate) s->res->dedups++;
    if (res->error || !res->pending || (s->p.bug == DP_BUG_ACK_ON_APPEND && res->append))
        answer_produce(s, &pp, b->node, res->error, res->base_offset, res->last_offset);
    if (!res->error && res->pending) {
        int64_t cap = b->cap_pp;
        sim_grow((void **)&b->pp, &cap, b->n_pp + 1, sizeof *b->pp);
        b->cap_pp = (int)cap;
        b->pp[b->n_pp++] = pp;
    }
}

void dp_broker_request(dp_t *s, dp_broker_t *b, dp_msg_t *m)
{
    if (m->part < 0 || m->part >= s->n_parts) return;
    if (m->type == DP_FETCH) serve_fetch(s, b, m);
    else if (m->type == DP_PRODUCE) serve_produce(s, b, m);
}
