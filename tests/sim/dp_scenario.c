/* dp_scenario.c — what one data-plane run does: a cluster shaped by the seed starts, takes random faults under produce and consume load, heals, settles, and is checked. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_cluster.h"
#include "keel/err.h"

#define DP_SLICE_MS 10           /* the driver looks at restarts and healing this often */
#define DP_STARTUP_MS 8000       /* brokers registered and unfenced, the topic online */
#define DP_SETTLE_MS 30000       /* after healing: everything caught up, every produce answered */
#define DP_MAX_CUTS 64
#define DP_STOP_PRODUCING_MS 500 /* after healing, producers add values this much longer */
#define DP_ROUNDS 2              /* faults, heal, settle and check, this many times per seed */
#define DP_FAULTS_MIN_MS 5000    /* a fault phase lasts this long ... */
#define DP_FAULTS_MAX_MS 15000   /* ... to this long */

static const char *const bug_names[DP_BUG_COUNT] = {"none", "ack-on-append", "truncate-to-hw"};

const char *dp_bug_name(dp_bug_t b)
{
    return (int)b >= 0 && b < DP_BUG_COUNT ? bug_names[b] : "?";
}

int dp_bug_parse(const char *name, dp_bug_t *out)
{
    for (int i = 0; i < DP_BUG_COUNT; i++)
        if (strcmp(name, bug_names[i]) == 0) {
            *out = (dp_bug_t)i;
            return 0;
        }
    return -1;
}

/* Network cuts that heal by themselves. */
typedef struct cut {
    int a, b;
    int64_t heal_at;
} cut_t;

typedef struct driver {
    dp_t *s;
    cut_t cuts[DP_MAX_CUTS];
    int n_cuts;
} driver_t;

/* ---- setup ---------------------------------------------------------------------------- */

static void setup(dp_t *s, const dp_params_t *p, dp_result_t *res)
{
    memset(s, 0, sizeof *s);
    memset(res, 0, sizeof *res);
    s->p = *p;
    s->res = res;
    kl_rng_seed(&s->rng, p->seed);
    s->n_brokers = (int)dp_rnd(s, 3, DP_MAX_BROKERS);
    s->rf = dp_pm(s, 200) ? 2 : 3;
    s->min_isr = (int)dp_rnd(s, 1, s->rf);
    s->n_parts = (int)dp_rnd(s, 1, DP_MAX_PARTS);
    const int producers = (int)dp_rnd(s, 2, DP_MAX_PRODUCERS), consumers = (int)dp_rnd(s, 1, DP_MAX_CONSUMERS);
    s->n_clients = producers + consumers;
    s->n_nodes = DP_CTRLS + s->n_brokers + s->n_clients;
    for (int i = 0; i < s->n_nodes; i++)
        for (int j = 0; j < s->n_nodes; j++) s->link[i][j] = i != j;
    s->drop_pm = dp_pm(s, 500) ? (uint32_t)dp_rnd(s, 1, 6) : 0;
    s->slow_pm = (uint32_t)dp_rnd(s, 0, 30);
    s->delay_max_ms = (int)dp_rnd(s, 1, 8);
    s->fetch_backoff_ms = (int)dp_rnd(s, 10, 40);
    replica_config_defaults(&s->rcfg);
    s->rcfg.lag_time_max_ms = dp_rnd(s, 300, 1500);
    s->rcfg.min_insync_replicas = s->min_isr; /* min.insync.replicas is also the topic's config */
    res->n_brokers = s->n_brokers;
    res->n_parts = s->n_parts;
    res->rf = s->rf;
    res->min_isr = s->min_isr;
    dp_check_init(s);
    dp_ctrl_init(s);
    for (int i = 0; i < DP_CTRLS; i++) s->nodes[dp_ctrl_node(i)].up = true;
    for (int i = 0; i < s->n_brokers; i++) {
        dp_broker_t *b = &s->brokers[i];
        b->id = DP_BROKER_ID_BASE + 1 + i;
        b->node = dp_broker_node(i);
        b->restart_at = -1;
        b->meta_gap_ms = (int)(dp_pm(s, 300) ? dp_rnd(s, 50, 300) : dp_rnd(s, 5, 30)); /* some observers lag */
        b->ckpt_gap_ms = (int)dp_rnd(s, 50, 1000);
    }
    for (int i = 0; i < s->n_clients; i++) {
        dp_client_t *c = &s->clients[i];
        c->idx = i;
        c->node = dp_client_node(s, i);
        c->producer = i < producers;
        c->part = c->producer ? i % s->n_parts : (int)dp_rnd(s, 0, s->n_parts - 1);
        c->gap_ms = (int)(c->producer ? dp_rnd(s, 5, 40) : dp_rnd(s, 10, 50));
    }
}

static void teardown(dp_t *s)
{
    for (int64_t i = 0; i < s->n_heap; i++) dp_msg_free(s->heap[i].msg);
    free(s->heap);
    for (int i = 0; i < s->n_brokers; i++) dp_broker_free(&s->brokers[i]);
    dp_ctrl_free(s);
    dp_check_free(s);
}

/* ---- driving time -------------------------------------------------------------------------- */

static bool cut_active(const driver_t *d, int a, int b)
{
    for (int i = 0; i < d->n_cuts; i++)
        if ((d->cuts[i].a == a && d->cuts[i].b == b) || (d->cuts[i].a == b && d->cuts[i].b == a)) return true;
    return false;
}

static void heal_cuts(driver_t *d, bool all)
{
    for (int i = 0; i < d->n_cuts;) {
        if (!all && d->cuts[i].heal_at > d->s->now) {
            i++;
            continue;
        }
        const cut_t c = d->cuts[i];
        d->cuts[i] = d->cuts[--d->n_cuts];
        if (!cut_active(d, c.a, c.b)) dp_link_up(d->s, c.a, c.b);
    }
}

static void advance(driver_t *d, int64_t until)
{
    dp_t *s = d->s;
    while (!s->failed && s->now < until) {
        const int64_t t = s->now + DP_SLICE_MS < until ? s->now + DP_SLICE_MS : until;
        dp_run_until(s, t);
        heal_cuts(d, false);
        for (int i = 0; i < s->n_brokers && !s->failed; i++) {
            dp_broker_t *b = &s->brokers[i];
            if (!s->nodes[b->node].up && b->restart_at >= 0 && s->now >= b->restart_at) dp_broker_start(s, b);
        }
    }
}

static bool wait_for(driver_t *d, int64_t bound, bool (*cond)(dp_t *, char *, size_t), char *why, size_t len)
{
    const int64_t end = d->s->now + bound;
    while (!d->s->failed) {
        if (cond(d->s, why, len)) return true;
        if (d->s->now >= end) return false;
        advance(d, d->s->now + DP_SLICE_MS);
    }
    return false;
}

/* ---- conditions ---------------------------------------------------------------------------- */

static bool brokers_active(dp_t *s, char *why, size_t len)
{
    for (int i = 0; i < s->n_brokers; i++) {
        const meta_broker_t *b = meta_image_broker(s->ctrl.img, s->brokers[i].id);
        if (!b || b->state != META_BROKER_ACTIVE) {
            snprintf(why, len, "broker b%d is %s", (int)s->brokers[i].id, b ? meta_broker_state_name(b->state)
                                                                             : "not registered");
            return false;
        }
    }
    return true;
}

/* Everything healed has caught up: one active controller with nothing in
 * flight, every broker up to date and unfenced, every replica in the ISR at
 * the leader's log end and HW, every produce answered. */
static bool settled(dp_t *s, char *why, size_t len)
{
    if (s->ctrl.active < 0 || s->ctrl.n_pend > 0) {
        snprintf(why, len, "controller: %s", s->ctrl.active < 0 ? "none active" : "records in flight");
        return false;
    }
    if (!brokers_active(s, why, len)) return false;
    for (int i = 0; i < s->n_brokers; i++) {
        const dp_broker_t *b = &s->brokers[i];
        if (!dp_running(s, b->node) || b->epoch < 0 || b->meta_end != s->ctrl.log.n) {
            snprintf(why, len, "b%d: %s", (int)b->id, !dp_running(s, b->node) ? "not running"
                                                      : b->epoch < 0       ? "not registered"
                                                                           : "metadata behind");
            return false;
        }
    }
    for (int i = 0; i < s->n_clients; i++)
        if (!dp_client_idle(&s->clients[i])) {
            snprintf(why, len, "producer c%d has %d unacknowledged batches (leader b%d epoch %d)", i,
                     s->clients[i].n, (int)s->clients[i].leader, s->clients[i].leader_epoch);
            return false;
        }
    for (int part = 0; part < s->n_parts; part++) {
        const meta_partition_t *mp = dp_ctrl_partition(s, part);
        if (mp->leader < 0 || mp->n_isr != mp->n_replicas) {
            snprintf(why, len, "p%d: leader %d, ISR %d of %d replicas", part, (int)mp->leader, mp->n_isr,
                     mp->n_replicas);
            return false;
        }
        const replica_t *lr = s->brokers[mp->leader - DP_BROKER_ID_BASE - 1].rep[part].r;
        const int64_t end = replica_log_end(lr);
        for (int k = 0; k < mp->n_replicas; k++) {
            const dp_broker_t *b = &s->brokers[mp->replicas[k] - DP_BROKER_ID_BASE - 1];
            const replica_t *r = b->rep[part].r;
            if (!r || replica_leader_epoch(r) != mp->leader_epoch || replica_log_end(r) != end ||
                replica_high_watermark(r) != end || dp_disk_end(&b->rep[part].disk) != end) {
                snprintf(why, len, "p%d: replica b%d %s (leader b%d ends at %" PRId64 ")", part, (int)b->id,
                         !r ? "absent" : replica_leader_epoch(r) != mp->leader_epoch ? "in an old leader epoch"
                                                                                    : "behind",
                         (int)mp->leader, end);
                return false;
            }
        }
    }
    return true;
}

static bool topic_online(dp_t *s, char *why, size_t len)
{
    for (int part = 0; part < s->n_parts; part++) {
        const meta_partition_t *mp = dp_ctrl_partition(s, part);
        if (!mp || mp->leader < 0) {
            snprintf(why, len, "p%d has no leader", part);
            return false;
        }
        const replica_t *r = s->brokers[mp->leader - DP_BROKER_ID_BASE - 1].rep[part].r;
        if (!r || replica_role(r) != REPLICA_LEADER) {
            snprintf(why, len, "p%d: leader b%d does not lead yet", part, (int)mp->leader);
            return false;
        }
    }
    return true;
}

/* ---- faults ------------------------------------------------------------------------------- */

static dp_broker_t *random_broker(dp_t *s, bool running)
{
    const int start = (int)dp_rnd(s, 0, s->n_brokers - 1);
    for (int k = 0; k < s->n_brokers; k++) {
        dp_broker_t *b = &s->brokers[(start + k) % s->n_brokers];
        if (!running || dp_running(s, b->node)) return b;
    }
    return NULL;
}

static void cut(driver_t *d, int a, int b, int64_t heal_at)
{
    if (d->n_cuts == DP_MAX_CUTS || a == b) return;
    d->cuts[d->n_cuts++] = (cut_t){a, b, heal_at};
    dp_cut(d->s, a, b);
}

/* Cuts a broker off from the controllers, one other broker, all other
 * brokers, the clients, or everyone. */
static void isolate(driver_t *d, dp_broker_t *b)
{
    dp_t *s = d->s;
    static const char *const what[] = {"controllers", "one broker", "brokers", "clients", "everyone"};
    const int kind = (int)dp_rnd(s, 0, 4);
    const int one = dp_broker_node((int)dp_rnd(s, 0, s->n_brokers - 1));
    const int64_t heal_at = s->now + dp_rnd(s, 100, 2000);
    dp_trace(s, "fault: b%d cut off from %s until %" PRId64, (int)b->id, what[kind], heal_at);
    for (int j = 0; j < s->n_nodes; j++) {
        const bool ctrl = j < DP_CTRLS, broker = !ctrl && j < DP_CTRLS + s->n_brokers;
        if ((kind == 0 && ctrl) || (kind == 1 && j == one) || (kind == 2 && broker) ||
            (kind == 3 && !ctrl && !broker) || kind == 4)
            cut(d, b->node, j, heal_at);
    }
    s->res->isolations++;
}

static void one_fault(driver_t *d)
{
    dp_t *s = d->s;
    dp_broker_t *b = random_broker(s, true);
    const int64_t r = dp_rnd(s, 0, 99);
    if (r < 20 && b) {
        b->restart_at = s->now + dp_rnd(s, 50, 2000);
        dp_trace(s, "fault: b%d crashes, restarts at %" PRId64, (int)b->id, b->restart_at);
        dp_broker_crash(s, b);
        s->res->crashes++;
    } else if (r < 35 && b) {
        const int64_t until = s->now + dp_rnd(s, 50, 1500);
        dp_trace(s, "fault: b%d paused until %" PRId64, (int)b->id, until);
        dp_broker_pause(s, b, until);
        s->res->pauses++;
    } else if (r < 60 && b) {
        isolate(d, b);
    } else if (r < 70) {
        dp_trace(s, "fault: controller failover");
        dp_ctrl_fail_over(s);
    } else if (r < 78 && b && !b->want_shutdown) {
        dp_trace(s, "fault: b%d begins a controlled shutdown", (int)b->id);
        b->want_shutdown = true;
        s->res->shutdowns++;
    } else if (r < 90) {
        const int x = (int)dp_rnd(s, DP_CTRLS, s->n_nodes - 1), y = (int)dp_rnd(s, DP_CTRLS, s->n_nodes - 1);
        if (x != y) {
            dp_trace(s, "fault: connection %d-%d resets", x, y);
            dp_reset_conn(s, x, y);
        }
    } /* else: a quiet spell */
}

static void heal(driver_t *d)
{
    dp_t *s = d->s;
    dp_trace(s, "== heal: links up, lossless, crashed brokers restart");
    heal_cuts(d, true);
    s->drop_pm = s->slow_pm = 0;
    for (int i = 0; i < s->n_brokers; i++)
        if (!s->nodes[s->brokers[i].node].up) s->brokers[i].restart_at = s->now;
}

/* ---- the run -------------------------------------------------------------------------------- */

/* Controllers, brokers registered and unfenced, the topic online, clients on. */
static bool start(driver_t *d)
{
    dp_t *s = d->s;
    char why[200] = "";
    dp_timer(s, dp_ctrl_node(0), DP_T_CTRL_ELECT, 0, 0);
    for (int i = 0; i < s->n_brokers; i++) dp_broker_start(s, &s->brokers[i]);
    bool ok = wait_for(d, DP_STARTUP_MS, brokers_active, why, sizeof why);
    while (ok && !s->failed && dp_ctrl_create_topic(s) != 0) advance(d, s->now + DP_RETRY_MS);
    ok = ok && wait_for(d, DP_STARTUP_MS, topic_online, why, sizeof why);
    if (!ok) {
        if (!s->failed) dp_fail(s, SIM_FAIL_SCENARIO, "startup", "cluster did not start: %s", why);
        return false;
    }
    for (int i = 0; i < s->n_clients; i++) dp_client_start(s, &s->clients[i]);
    return true;
}

/* Faults under load, heal, settle, check: the checks are cumulative. */
static void round_of_faults(driver_t *d, int round)
{
    dp_t *s = d->s;
    char why[200] = "";
    for (int i = 0; i < s->n_clients; i++) s->clients[i].stopped = false;
    const int64_t faults_end = s->now + dp_rnd(s, DP_FAULTS_MIN_MS, DP_FAULTS_MAX_MS);
    while (!s->failed && s->now < faults_end) {
        advance(d, s->now + dp_rnd(s, 50, 600));
        if (!s->failed) one_fault(d);
    }
    heal(d);
    advance(d, s->now + DP_STOP_PRODUCING_MS);
    for (int i = 0; i < s->n_clients; i++) s->clients[i].stopped = true;
    if (wait_for(d, DP_SETTLE_MS, settled, why, sizeof why)) dp_check_final(s);
    else if (!s->failed)
        dp_fail(s, SIM_FAIL_LIVENESS, "settles-after-heal", "round %d: not settled %d ms after healing: %s", round + 1,
                DP_SETTLE_MS, why);
}

void dp_run(const dp_params_t *p, dp_result_t *res)
{
    dp_t *s = malloc(sizeof *s);
    KL_ASSERT(s);
    setup(s, p, res);
    driver_t d = {.s = s};
    if (start(&d))
        for (int round = 0; round < DP_ROUNDS && !s->failed; round++) round_of_faults(&d, round);
    res->virtual_ms = s->now;
    teardown(s);
    free(s);
}
