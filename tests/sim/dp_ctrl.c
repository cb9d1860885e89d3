/* dp_ctrl.c — the simulated controller: the pure controller core (meta_decide_*, meta_sessions) over one linearizable committed metadata log, with failover. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_cluster.h"
#include "keel/err.h"
#include "sim_cluster.h"

static void trace_decision(dp_t *s, const char *what, const meta_decision_t *d)
{
    if (!s->p.verbose) return;
    for (int i = 0; i < d->n_notes; i++) dp_trace(s, "ctrl %s: %s", what, d->notes[i].text);
}

void dp_ctrl_init(dp_t *s)
{
    dp_ctrl_t *c = &s->ctrl;
    memset(c, 0, sizeof *c);
    meta_records_init(&c->log);
    c->img = meta_image_new();
    KL_ASSERT(c->img);
    c->active = -1;
    meta_sessions_init(&c->sessions);
    meta_ctl_config_defaults(&c->cfg);
    c->cfg.broker_session_timeout_ms = DP_SESSION_MS;
    c->cfg.broker_disconnect_grace_ms = DP_DISCONNECT_GRACE_MS;
    c->cfg.auto_leader_rebalance_enable = dp_pm(s, 700);
    for (int i = 0; i < KL_UUID_LEN; i++) c->topic[i] = (uint8_t)dp_rnd(s, 0, 255);
    c->topic[0] |= 1; /* never the zero uuid */
}

static void drop_pending(dp_ctrl_t *c)
{
    for (int i = 0; i < c->n_pend; i++) {
        meta_records_free(&c->pend[i].recs);
        dp_msg_free(c->pend[i].answer);
    }
    c->n_pend = 0;
}

void dp_ctrl_free(dp_t *s)
{
    dp_ctrl_t *c = &s->ctrl;
    drop_pending(c);
    free(c->pend);
    meta_records_free(&c->log);
    meta_image_free(c->img);
    meta_image_free(c->decide);
    meta_sessions_free(&c->sessions);
}

const meta_partition_t *dp_ctrl_partition(const dp_t *s, int part)
{
    return meta_image_partition(s->ctrl.img, s->ctrl.topic, part);
}

/* ---- the committed log ------------------------------------------------------------- */

static void commit_record(dp_t *s, const meta_record_t *rec)
{
    dp_ctrl_t *c = &s->ctrl;
    const int64_t offset = c->log.n;
    int rc = meta_records_push(&c->log, rec);
    KL_ASSERT(rc == 0);
    rc = meta_image_apply(c->img, rec, offset);
    if (rc)
        dp_fail(s, SIM_FAIL_SAFETY, "committed-record-applies", "committed %s record at offset %" PRId64
                " does not apply to the controller image: %s", meta_record_type_name(rec->type), offset,
                meta_image_error(c->img));
    s->res->meta_records = c->log.n;
}

/* The answer a request gets once its records are committed (§3). */
static void complete_answer(dp_t *s, dp_pending_t *p)
{
    dp_msg_t *a = p->answer;
    p->answer = NULL;
    if (!a) return;
    if (p->reply == DP_REPLY_REGISTER) {
        const meta_broker_t *b = meta_image_broker(s->ctrl.img, a->u.reg.broker_id);
        if (b && memcmp(b->incarnation, a->u.reg.incarnation, KL_UUID_LEN) == 0) a->u.reg.epoch = b->epoch;
        else a->error = KL_EEXIST;
    } else if (p->reply == DP_REPLY_ALTER) {
        const meta_partition_t *mp = dp_ctrl_partition(s, a->part);
        a->u.alter.leader_epoch = mp->leader_epoch;
        a->u.alter.partition_epoch = mp->partition_epoch;
        a->u.alter.n_isr = mp->n_isr;
        memcpy(a->u.alter.isr, mp->isr, sizeof mp->isr);
    }
    dp_send(s, a);
}

static void schedule_commit(dp_t *s)
{
    if (s->ctrl.n_pend > 0) dp_timer(s, s->ctrl.active, DP_T_CTRL_COMMIT, 0, s->ctrl.pend[0].commit_at);
}

static void commit_head(dp_t *s)
{
    dp_ctrl_t *c = &s->ctrl;
    if (c->n_pend == 0 || c->pend[0].commit_at > s->now) return;
    dp_pending_t p = c->pend[0];
    memmove(c->pend, c->pend + 1, (size_t)(--c->n_pend) * sizeof *c->pend);
    for (int i = 0; i < p.recs.n && !s->failed; i++) commit_record(s, &p.recs.recs[i]);
    meta_records_free(&p.recs);
    if (!s->failed) dp_check_image(s);
    complete_answer(s, &p);
    schedule_commit(s);
}

/* Proposes a decision's records as one batch; `answer` (may be NULL) goes out
 * when they commit. Decisions see committed + in-flight records (meta_ctl.h). */
static void propose(dp_t *s, meta_decision_t *d, dp_reply_t reply, dp_msg_t *answer)
{
    dp_ctrl_t *c = &s->ctrl;
    if (d->unclean)
        dp_fail(s, SIM_FAIL_SAFETY, "no-unclean-election", "controller decided an unclean election with "
                "unclean.leader.election.enable=false: %s", d->n_notes ? d->notes[0].text : "");
    for (int i = 0; i < d->records.n && !s->failed; i++) {
        const meta_record_t *rec = &d->records.recs[i];
        if (meta_image_apply(c->decide, rec, c->next_offset) != 0)
            dp_fail(s, SIM_FAIL_SAFETY, "decision-applies", "the controller decided a %s record that does not "
                    "apply to its committed + in-flight image: %s", meta_record_type_name(rec->type),
                    meta_image_error(c->decide));
        c->next_offset++;
    }
    if (s->failed || (d->records.n == 0 && !answer)) {
        dp_msg_free(answer);
        return;
    }
    int64_t cap = c->cap_pend;
    sim_grow((void **)&c->pend, &cap, c->n_pend + 1, sizeof *c->pend);
    c->cap_pend = (int)cap;
    const int64_t prev = c->n_pend ? c->pend[c->n_pend - 1].commit_at : s->now;
    const int64_t at = s->now + dp_rnd(s, 1, 12);
    dp_pending_t *p = &c->pend[c->n_pend++];
    *p = (dp_pending_t){.recs = d->records, .commit_at = at > prev ? at : prev, .reply = reply, .answer = answer};
    meta_records_init(&d->records); /* moved into the pending batch */
    if (c->n_pend == 1) schedule_commit(s);
}

/* ---- failover ---------------------------------------------------------------------- */

static void take_over(dp_t *s, int node)
{
    dp_ctrl_t *c = &s->ctrl;
    c->active = node;
    meta_image_free(c->decide);
    c->decide = NULL;
    int rc = meta_image_clone(c->img, &c->decide);
    KL_ASSERT(rc == 0);
    c->next_offset = c->log.n;
    /* §3: every broker gets one full session from the new controller */
    rc = meta_sessions_start_all(&c->sessions, c->img, s->now, &c->cfg);
    KL_ASSERT(rc == 0);
    c->next_reconcile = s->now;
    c->next_rebalance = s->now + DP_REBALANCE_MS;
    dp_trace(s, "ctrl: c%d is the active controller at metadata offset %d", node + 1, c->log.n);
    dp_timer(s, node, DP_T_CTRL_TICK, 0, s->now + DP_CTRL_TICK_MS);
}

void dp_ctrl_fail_over(dp_t *s)
{
    dp_ctrl_t *c = &s->ctrl;
    if (c->active < 0) return;
    const int old = c->active;
    /* The dying leader's log reaches the next one only as a prefix (meta_ctl.h). */
    int total = 0;
    for (int i = 0; i < c->n_pend; i++) total += c->pend[i].recs.n;
    int keep = (int)dp_rnd(s, 0, total);
    const int kept = keep;
    for (int i = 0; i < c->n_pend && keep > 0 && !s->failed; i++)
        for (int j = 0; j < c->pend[i].recs.n && keep > 0 && !s->failed; j++, keep--)
            commit_record(s, &c->pend[i].recs.recs[j]);
    if (!s->failed && kept) dp_check_image(s);
    drop_pending(c);
    c->active = -1;
    meta_image_free(c->decide);
    c->decide = NULL;
    dp_node_crash(s, dp_ctrl_node(old));
    s->nodes[dp_ctrl_node(old)].up = true; /* a voter again, maybe the next leader */
    s->res->failovers++;
    const int next = (int)dp_rnd(s, 0, DP_CTRLS - 1);
    dp_trace(s, "ctrl: c%d loses leadership (%d of %d in-flight records commit); c%d takes over", old + 1, kept,
             total, next + 1);
    dp_timer(s, dp_ctrl_node(next), DP_T_CTRL_ELECT, 0, s->now + dp_rnd(s, 100, 600));
}

/* ---- periodic work ------------------------------------------------------------------- */

static void decide_periodic(dp_t *s, const char *what, int rc, meta_decision_t *d)
{
    s->res->steps++;
    if (rc) {
        dp_fail(s, SIM_FAIL_SAFETY, "controller-decision", "%s failed: %s (%s)", what, kl_errname(rc), d->error);
        return;
    }
    trace_decision(s, what, d);
    propose(s, d, DP_REPLY_NONE, NULL);
}

static void tick(dp_t *s)
{
    dp_ctrl_t *c = &s->ctrl;
    meta_decision_t d;
    meta_decision_init(&d);
    decide_periodic(s, "expire", meta_decide_expire_sessions(c->decide, &c->sessions, s->now, &c->cfg, &d), &d);
    if (s->now >= c->next_reconcile) {
        c->next_reconcile = s->now + DP_RECONCILE_MS;
        decide_periodic(s, "reconcile", meta_decide_reconcile(c->decide, &c->cfg, &d), &d);
    }
    if (s->now >= c->next_rebalance) {
        c->next_rebalance = s->now + DP_REBALANCE_MS;
        decide_periodic(s, "rebalance", meta_decide_auto_rebalance(c->decide, &c->cfg, &d), &d);
    }
    meta_decision_free(&d);
    dp_timer(s, c->active, DP_T_CTRL_TICK, 0, s->now + DP_CTRL_TICK_MS);
}

void dp_ctrl_timer(dp_t *s, int node, dp_timer_t t)
{
    if (t == DP_T_CTRL_ELECT) {
        if (s->ctrl.active < 0) take_over(s, node);
        return;
    }
    if (s->ctrl.active != node) return;
    if (t == DP_T_CTRL_TICK) tick(s);
    else if (t == DP_T_CTRL_COMMIT) commit_head(s);
}

void dp_ctrl_conn_reset(dp_t *s, int peer)
{
    const int b = peer - DP_CTRLS;
    if (b >= 0 && b < s->n_brokers)
        meta_sessions_disconnected(&s->ctrl.sessions, s->brokers[b].id, s->now, &s->ctrl.cfg);
}

/* ---- requests ---------------------------------------------------------------------- */

static void on_register(dp_t *s, const dp_msg_t *m, meta_decision_t *d, dp_msg_t *a)
{
    dp_ctrl_t *c = &s->ctrl;
    char host[16];
    snprintf(host, sizeof host, "b%d", (int)m->u.reg.broker_id);
    meta_listener_t l;
    KL_ASSERT(meta_listener_set(&l, "PLAINTEXT", host, 9092) == 0);
    meta_register_req_t req = {.broker_id = m->u.reg.broker_id, .listeners = &l, .n_listeners = 1};
    memcpy(req.incarnation, m->u.reg.incarnation, KL_UUID_LEN);
    a->u.reg = m->u.reg;
    a->error = meta_decide_register(c->decide, &req, &c->cfg, d);
    if (a->error) return;
    meta_sessions_heartbeat(&c->sessions, req.broker_id, s->now, &c->cfg);
    trace_decision(s, "register", d);
    propose(s, d, DP_REPLY_REGISTER, a);
}

static void on_heartbeat(dp_t *s, const dp_msg_t *m, meta_decision_t *d, dp_msg_t *a)
{
    dp_ctrl_t *c = &s->ctrl;
    a->error = meta_decide_heartbeat(c->decide, &m->u.hb.req, &c->cfg, d, &a->u.hb.reply);
    if (a->error) return;
    meta_sessions_heartbeat(&c->sessions, m->u.hb.req.broker_id, s->now, &c->cfg);
    trace_decision(s, "heartbeat", d);
    propose(s, d, DP_REPLY_HEARTBEAT, a);
}

static void on_alter(dp_t *s, const dp_msg_t *m, meta_decision_t *d, dp_msg_t *a)
{
    dp_ctrl_t *c = &s->ctrl;
    meta_alter_partition_req_t req = {.broker_id = m->u.alter.broker_id,
                                      .broker_epoch = m->u.alter.broker_epoch,
                                      .partition = m->part,
                                      .leader_epoch = m->u.alter.leader_epoch,
                                      .partition_epoch = m->u.alter.partition_epoch,
                                      .isr = m->u.alter.isr,
                                      .n_isr = m->u.alter.n_isr};
    memcpy(req.topic, c->topic, KL_UUID_LEN);
    a->u.alter.id = m->u.alter.id;
    a->error = meta_decide_alter_partition(c->decide, &req, &c->cfg, d);
    if (a->error) {
        dp_trace(s, "ctrl: AlterPartition from b%d refused: %s", (int)req.broker_id, d->error);
        return;
    }
    trace_decision(s, "alter", d);
    propose(s, d, DP_REPLY_ALTER, a);
}

void dp_ctrl_request(dp_t *s, dp_msg_t *m)
{
    dp_msg_t *a = dp_msg_new(m->type);
    dp_reply_to(m, a);
    if (m->type == DP_METADATA) {
        a->u.meta.from = m->u.meta.from;
        a->u.meta.end = s->ctrl.log.n;
        dp_send(s, a);
        return;
    }
    meta_decision_t d;
    meta_decision_init(&d);
    s->res->steps++;
    switch (m->type) {
    case DP_REGISTER: on_register(s, m, &d, a); break;
    case DP_HEARTBEAT: on_heartbeat(s, m, &d, a); break;
    case DP_ALTER: on_alter(s, m, &d, a); break;
    default: a->error = KL_EUNKNOWNAPI; break;
    }
    if (a->error) dp_send(s, a); /* refusals answer at once; accepted ones when committed */
    meta_decision_free(&d);
}

int dp_ctrl_create_topic(dp_t *s)
{
    dp_ctrl_t *c = &s->ctrl;
    if (c->active < 0) return KL_ENOTCONTROLLER;
    char min_isr[8];
    snprintf(min_isr, sizeof min_isr, "%d", s->min_isr);
    const meta_config_kv_t kv = {META_CFG_MIN_INSYNC_REPLICAS, min_isr};
    meta_create_topic_req_t req = {.name = "dp", .partitions = s->n_parts, .replication_factor = s->rf,
                                   .configs = &kv, .n_configs = 1};
    memcpy(req.uuid, c->topic, KL_UUID_LEN);
    meta_decision_t d;
    meta_decision_init(&d);
    int rc = meta_decide_create_topic(c->decide, &req, &c->cfg, &d);
    s->res->steps++;
    if (rc == 0) {
        trace_decision(s, "create", &d);
        propose(s, &d, DP_REPLY_NONE, NULL);
    }
    meta_decision_free(&d);
    return rc;
}
