/* test_raft.c — unit tests of the pure Raft core, driving 1-4 cores by hand over a
 * zero-latency in-test network with virtual time (PERSISTED is fed at once). */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/raft.h"
#include "unit/kl_check.h"

#define MAX_NODES 8
#define MAX_COMMITTED 4096
#define DELIVERY_GUARD 200000
#define NOTES_LEN 32768
#define OBSERVER_BASE 100

/* ---- harness ----------------------------------------------------------------- */

typedef struct node {
    raft_t *r;
    int32_t id;
    bool up;
    raft_config_t cfg;
    raft_hard_state_t hs; /* as last persisted */
    int n_installs;
    uint8_t *snap;
    uint64_t snap_len;
    int max_batch; /* most entries appended by one update */
    int n_truncations;
    int64_t last_truncate_to;
    int32_t max_epoch_seen;
    char notes[NOTES_LEN];
    size_t notes_len;
} node_t;

typedef struct cluster {
    node_t n[MAX_NODES];
    int count;
    int64_t now;
    bool cut[MAX_NODES][MAX_NODES];
    bool (*drop)(const raft_msg_t *m); /* optional extra network filter */
    raft_msg_t **q;
    int qh, qt, qcap;
    int32_t committed_epoch[MAX_COMMITTED]; /* 0: not committed anywhere yet */
    uint32_t committed_sum[MAX_COMMITTED];
    int msgs_sent[MAX_NODES][RAFT_MSG_FETCH_SNAPSHOT_RESP + 1];
    int prevotes_refused[MAX_NODES];
    int votes_granted[MAX_NODES]; /* real votes granted by node i */
    int64_t fetch_answered_ms[MAX_NODES]; /* last successful FetchResponse node i sent, -1 none */
} cluster_t;

static int idx_of(const cluster_t *c, int32_t id)
{
    for (int i = 0; i < c->count; i++)
        if (c->n[i].id == id) return i;
    return -1;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(d);
    if (len) memcpy(d, p, len);
    return d;
}

/* Messages leave the core's memory at the next call: the network copies them. */
static raft_msg_t *msg_dup(const raft_msg_t *m)
{
    raft_msg_t *c = malloc(sizeof *c);
    ck_assert_ptr_nonnull(c);
    *c = *m;
    if (m->type == RAFT_MSG_FETCH_RESP && m->u.fetch_resp.n_entries > 0) {
        const int n = m->u.fetch_resp.n_entries;
        raft_entry_t *es = calloc((size_t)n, sizeof *es);
        ck_assert_ptr_nonnull(es);
        for (int i = 0; i < n; i++) {
            es[i] = m->u.fetch_resp.entries[i];
            es[i].data = dup_bytes(es[i].data, es[i].len);
        }
        c->u.fetch_resp.entries = es;
    }
    if (m->type == RAFT_MSG_FETCH_SNAPSHOT_RESP && m->u.fetch_snapshot_resp.chunk_len)
        c->u.fetch_snapshot_resp.chunk = dup_bytes(m->u.fetch_snapshot_resp.chunk, m->u.fetch_snapshot_resp.chunk_len);
    return c;
}

static void msg_free(raft_msg_t *m)
{
    if (m->type == RAFT_MSG_FETCH_RESP && m->u.fetch_resp.n_entries > 0) {
        for (int i = 0; i < m->u.fetch_resp.n_entries; i++) free((void *)m->u.fetch_resp.entries[i].data);
        free((void *)m->u.fetch_resp.entries);
    }
    if (m->type == RAFT_MSG_FETCH_SNAPSHOT_RESP && m->u.fetch_snapshot_resp.chunk_len)
        free((void *)m->u.fetch_snapshot_resp.chunk);
    free(m);
}

static void enqueue(cluster_t *c, raft_msg_t *m)
{
    if (c->qt == c->qcap) {
        if (c->qh > 0) {
            memmove(c->q, c->q + c->qh, (size_t)(c->qt - c->qh) * sizeof *c->q);
            c->qt -= c->qh;
            c->qh = 0;
        } else {
            c->qcap = c->qcap ? 2 * c->qcap : 256;
            c->q = realloc(c->q, (size_t)c->qcap * sizeof *c->q);
            ck_assert_ptr_nonnull(c->q);
        }
    }
    c->q[c->qt++] = m;
}

static uint32_t sum_of(const raft_entry_t *e)
{
    uint32_t s = e->len * 31u + (e->control ? 7u : 0u);
    for (uint32_t i = 0; i < e->len; i++) s = s * 131u + e->data[i];
    return s;
}

static raft_update_t cl_step(cluster_t *c, int i, raft_event_t ev);

/* What the caller of the core does with an update, plus the checks every test
 * gets for free: a granted vote is persisted in the same update, committed
 * entries are the same on every node, the HW never goes back. */
static void handle_update(cluster_t *c, int i, const raft_update_t *u)
{
    node_t *nd = &c->n[i];
    for (int k = 0; k < u->n_notes; k++) {
        int w = snprintf(nd->notes + nd->notes_len, NOTES_LEN - nd->notes_len, "%s\n", u->notes[k].text);
        if (w > 0 && nd->notes_len + (size_t)w < NOTES_LEN) nd->notes_len += (size_t)w;
        if (getenv("RAFT_TEST_VERBOSE")) fprintf(stderr, "[%lld] node %d: %s\n", (long long)c->now, nd->id, u->notes[k].text);
    }
    for (int k = 0; k < u->n_msgs; k++) {
        const raft_msg_t *m = &u->msgs[k];
        if (m->type == RAFT_MSG_VOTE_RESP && m->u.vote_resp.granted && !m->u.vote_resp.pre_vote) {
            ck_assert_msg(u->persist_state, "vote granted without persisting it");
            ck_assert_int_eq(u->hard_state.voted_for, m->to);
            ck_assert_int_eq(u->hard_state.epoch, m->epoch);
            c->votes_granted[i]++;
        }
        if (m->type == RAFT_MSG_VOTE_RESP && m->u.vote_resp.pre_vote && !m->u.vote_resp.granted) c->prevotes_refused[i]++;
        if (m->type == RAFT_MSG_FETCH_RESP && m->error == RAFT_OK) c->fetch_answered_ms[i] = c->now;
        c->msgs_sent[i][m->type]++;
    }
    if (u->persist_state) nd->hs = u->hard_state;
    if (u->hard_state.epoch > nd->max_epoch_seen) nd->max_epoch_seen = u->hard_state.epoch;
    if (u->install_snapshot) {
        nd->n_installs++;
        free(nd->snap);
        nd->snap = dup_bytes(u->snapshot_data, u->snapshot_len);
        nd->snap_len = u->snapshot_len;
    }
    if (u->truncate_to >= 0) {
        nd->n_truncations++;
        nd->last_truncate_to = u->truncate_to;
    }
    if (u->n_entries > nd->max_batch) nd->max_batch = u->n_entries;
    ck_assert_int_le(u->apply_from, u->high_watermark);
    for (int64_t o = u->apply_from; o < u->high_watermark && o < MAX_COMMITTED; o++) {
        const raft_entry_t *e = raft_entry_at(nd->r, o);
        ck_assert_msg(e != NULL, "node %d: committed offset %lld not readable", nd->id, (long long)o);
        if (c->committed_epoch[o] == 0) {
            c->committed_epoch[o] = e->epoch;
            c->committed_sum[o] = sum_of(e);
        }
        ck_assert_msg(c->committed_epoch[o] == e->epoch && c->committed_sum[o] == sum_of(e),
                      "node %d: committed offset %lld differs between nodes", nd->id, (long long)o);
    }
    for (int k = 0; k < u->n_msgs; k++) enqueue(c, msg_dup(&u->msgs[k]));
    if (u->n_entries > 0) /* the "disk": durable at once */
        cl_step(c, i, (raft_event_t){.type = RAFT_EV_PERSISTED, .u.persisted_end = raft_log_end(nd->r)});
}

static raft_update_t cl_step(cluster_t *c, int i, raft_event_t ev)
{
    raft_update_t u;
    ev.now_ms = c->now;
    const int64_t hw0 = raft_high_watermark(c->n[i].r);
    ck_assert_int_eq(raft_step(c->n[i].r, &ev, &u), 0);
    ck_assert_int_ge(raft_high_watermark(c->n[i].r), hw0);
    handle_update(c, i, &u);
    return u; /* scalar fields only: pointers died with the next call */
}

static void deliver_all(cluster_t *c)
{
    for (int guard = 0; c->qh < c->qt; guard++) {
        ck_assert_int_lt(guard, DELIVERY_GUARD);
        raft_msg_t *m = c->q[c->qh++];
        const int from = idx_of(c, m->from), to = idx_of(c, m->to);
        if (to >= 0 && c->n[to].up && !c->cut[from][to] && !(c->drop && c->drop(m)))
            cl_step(c, to, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = m});
        msg_free(m);
    }
    c->qh = c->qt = 0;
}

/* Runs the cluster for up to `ms` of virtual time, waking every node exactly at
 * its next deadline; stops early once `stop` holds. */
static bool cl_run(cluster_t *c, int64_t ms, bool (*stop)(const cluster_t *))
{
    const int64_t until = c->now + ms;
    deliver_all(c);
    if (stop && stop(c)) return true;
    for (;;) {
        int64_t next = INT64_MAX;
        for (int i = 0; i < c->count; i++)
            if (c->n[i].up && raft_next_deadline(c->n[i].r) < next) next = raft_next_deadline(c->n[i].r);
        if (next > until) break;
        if (next > c->now) c->now = next;
        for (int i = 0; i < c->count; i++)
            if (c->n[i].up && raft_next_deadline(c->n[i].r) <= c->now) cl_step(c, i, (raft_event_t){.type = RAFT_EV_TICK});
        deliver_all(c);
        if (stop && stop(c)) return true;
    }
    c->now = until;
    return stop ? stop(c) : false;
}

/* n_voters voters with ids 1..n, then observers 100, 101, ...; configs can be
 * edited before cl_start. */
static cluster_t *cl_new(int n_voters, int n_observers)
{
    cluster_t *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->count = n_voters + n_observers;
    c->now = 1000;
    for (int i = 0; i < c->count; i++) {
        node_t *nd = &c->n[i];
        nd->id = i < n_voters ? i + 1 : OBSERVER_BASE + (i - n_voters);
        nd->up = true;
        raft_config_defaults(&nd->cfg);
        nd->cfg.node_id = nd->id;
        nd->cfg.n_voters = n_voters;
        for (int v = 0; v < n_voters; v++) nd->cfg.voters[v] = v + 1;
        nd->cfg.seed = 42 + (uint64_t)i;
        c->fetch_answered_ms[i] = -1;
    }
    return c;
}

/* KRaft's behaviour: followers of a silent leader wait for the fetch timeout
 * (no fetch stall detection), for tests of that path. */
static void cl_without_fetch_stall(cluster_t *c)
{
    for (int i = 0; i < c->count; i++) c->n[i].cfg.fetch_stall_ms = 0;
}

static void cl_start_node(cluster_t *c, int i, const raft_restore_t *rs)
{
    c->n[i].r = raft_new(&c->n[i].cfg, rs, c->now);
    ck_assert_ptr_nonnull(c->n[i].r);
}

static void cl_start(cluster_t *c)
{
    for (int i = 0; i < c->count; i++) cl_start_node(c, i, NULL);
}

static void cl_free(cluster_t *c)
{
    for (int i = c->qh; i < c->qt; i++) msg_free(c->q[i]);
    free(c->q);
    for (int i = 0; i < c->count; i++) {
        raft_free(c->n[i].r);
        free(c->n[i].snap);
    }
    free(c);
}

static void cl_isolate(cluster_t *c, int a, int b, bool cut)
{
    c->cut[a][b] = c->cut[b][a] = cut;
}

/* The up leader of the highest epoch, or -1. */
static int cl_leader(const cluster_t *c)
{
    int best = -1;
    for (int i = 0; i < c->count; i++)
        if (c->n[i].up && raft_role(c->n[i].r) == RAFT_LEADER &&
            (best < 0 || raft_epoch(c->n[i].r) > raft_epoch(c->n[best].r)))
            best = i;
    return best;
}

/* One leader, and every up voter follows it in its epoch. */
static bool settled(const cluster_t *c)
{
    const int l = cl_leader(c);
    if (l < 0 || raft_high_watermark(c->n[l].r) == 0) return false;
    for (int i = 0; i < c->count; i++) {
        if (!c->n[i].up || i == l) continue;
        if (raft_epoch(c->n[i].r) != raft_epoch(c->n[l].r) || raft_leader(c->n[i].r) != c->n[l].id) return false;
    }
    return true;
}

/* Settled, and every up node holds everything the leader committed. */
static bool caught_up(const cluster_t *c)
{
    if (!settled(c)) return false;
    const int64_t hw = raft_high_watermark(c->n[cl_leader(c)].r);
    for (int i = 0; i < c->count; i++)
        if (c->n[i].up && raft_high_watermark(c->n[i].r) != hw) return false;
    return true;
}

static int cl_elect(cluster_t *c)
{
    ck_assert_msg(cl_run(c, 20000, settled), "no stable leader within 20 s");
    return cl_leader(c);
}

static raft_update_t cl_propose(cluster_t *c, int i, const char *text)
{
    const uint8_t *data[1] = {(const uint8_t *)text};
    const uint32_t len[1] = {(uint32_t)strlen(text)};
    return cl_step(c, i, (raft_event_t){.type = RAFT_EV_PROPOSE, .u.propose = {data, len, 1}});
}

static bool has_note(const node_t *nd, const char *needle) { return strstr(nd->notes, needle) != NULL; }

/* A core restored with entries of the given epochs (offsets 0..n-1, data "e<offset>"). */
static void restore_with_epochs(cluster_t *c, int i, int32_t epoch, const int32_t *epochs, int n, int64_t hw)
{
    raft_entry_t es[16];
    char buf[16][16];
    ck_assert_int_le(n, 16);
    for (int k = 0; k < n; k++) {
        snprintf(buf[k], sizeof buf[k], "e%d", k);
        es[k] = (raft_entry_t){.offset = k, .epoch = epochs[k], .len = (uint32_t)strlen(buf[k]), .data = (uint8_t *)buf[k]};
    }
    raft_restore_t rs = {.hard_state = {epoch, RAFT_NO_NODE, RAFT_NO_NODE}, .entries = es, .n_entries = n,
                         .high_watermark_hint = hw};
    cl_start_node(c, i, &rs);
}

/* A lone core receiving hand-made messages. */
static raft_msg_t vote_req(int32_t from, int32_t to, int32_t epoch, bool pre, int32_t last_epoch, int64_t end)
{
    raft_msg_t m = {.type = RAFT_MSG_VOTE_REQ, .from = from, .to = to, .epoch = epoch, .leader_id = RAFT_NO_NODE,
                    .rpc_id = 77};
    m.u.vote_req.pre_vote = pre;
    m.u.vote_req.last_epoch = last_epoch;
    m.u.vote_req.end_offset = end;
    return m;
}

static const raft_msg_t *find_msg(const raft_update_t *u, raft_msg_type_t type, int32_t to)
{
    for (int k = 0; k < u->n_msgs; k++)
        if (u->msgs[k].type == type && u->msgs[k].to == to) return &u->msgs[k];
    return NULL;
}

static void cl_peer_down(cluster_t *c, int i, int32_t peer)
{
    cl_step(c, i, (raft_event_t){.type = RAFT_EV_PEER_DOWN, .u.peer = peer});
}

/* kill -9: the node stops and every other node sees its connection to it break
 * (EOF/RST). A paused node (SIGSTOP) is `up = false` alone: silence, no EOF. */
static void cl_kill(cluster_t *c, int i)
{
    c->n[i].up = false;
    for (int k = 0; k < c->count; k++)
        if (k != i && c->n[k].up) cl_peer_down(c, k, c->n[i].id);
}

/* Starts node i again from what it persisted: its hard state and its log (the
 * test disk makes every entry durable at once; callers take no snapshots). */
static void cl_restart(cluster_t *c, int i)
{
    node_t *nd = &c->n[i];
    raft_t *old = nd->r;
    ck_assert_int_eq(raft_log_start(old), 0);
    const int n = (int)raft_durable_end(old);
    raft_entry_t *es = calloc((size_t)n + 1, sizeof *es);
    ck_assert_ptr_nonnull(es);
    for (int k = 0; k < n; k++) es[k] = *raft_entry_at(old, k);
    const raft_restore_t rs = {.hard_state = nd->hs, .entries = es, .n_entries = n,
                               .high_watermark_hint = raft_high_watermark(old)};
    nd->r = raft_new(&nd->cfg, &rs, c->now);
    ck_assert_ptr_nonnull(nd->r);
    raft_free(old);
    free(es);
    nd->up = true;
}

static int g_watch; /* the node that the watched_* predicates look at */
static bool watched_is_prospective(const cluster_t *c) { return raft_role(c->n[g_watch].r) == RAFT_PROSPECTIVE; }
static bool watched_lost_a_prevote(const cluster_t *c)
{
    return raft_role(c->n[g_watch].r) == RAFT_FOLLOWER && has_note(&c->n[g_watch], "timed out)");
}

/* ---- elections ---------------------------------------------------------------- */

START_TEST(test_single_voter_elects_itself_and_commits)
{
    cluster_t *c = cl_new(1, 0);
    cl_start(c);
    cl_run(c, 5, NULL);
    raft_t *r = c->n[0].r;
    ck_assert_int_eq(raft_role(r), RAFT_LEADER);
    ck_assert_int_eq(raft_epoch(r), 1);
    ck_assert_int_eq(c->n[0].hs.leader_id, 1); /* persisted */
    ck_assert_int_eq(raft_high_watermark(r), 1); /* the leader-change record */
    const raft_entry_t *lc = raft_entry_at(r, 0);
    ck_assert(lc->control);
    ck_assert_int_eq(lc->data[0], 1); /* format version byte */
    ck_assert_int_eq(lc->len, 14);    /* version, leader, epoch, n, one voter */

    raft_update_t u = cl_propose(c, 0, "hello");
    ck_assert_int_eq(u.propose_error, 0);
    ck_assert_int_eq(u.propose_first_offset, 1);
    ck_assert_int_eq(u.propose_epoch, 1);
    cl_run(c, 10, NULL);
    ck_assert_int_eq(raft_high_watermark(r), 2);
    ck_assert_int_eq(memcmp(raft_entry_at(r, 1)->data, "hello", 5), 0);
    ck_assert(!raft_entry_at(r, 1)->control);
    cl_free(c);
}
END_TEST

START_TEST(test_three_voters_elect_one_leader_and_commit_a_proposal)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c);
    int leaders = 0;
    for (int i = 0; i < 3; i++) leaders += raft_role(c->n[i].r) == RAFT_LEADER;
    ck_assert_int_eq(leaders, 1);

    raft_update_t u = cl_propose(c, l, "x=1");
    ck_assert_int_eq(u.propose_error, 0);
    cl_run(c, 100, NULL);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_gt(raft_high_watermark(c->n[i].r), u.propose_first_offset);
        const raft_entry_t *e = raft_entry_at(c->n[i].r, u.propose_first_offset);
        ck_assert_int_eq(e->epoch, u.propose_epoch);
        ck_assert_int_eq(memcmp(e->data, "x=1", 3), 0);
    }
    /* a follower refuses proposals */
    u = cl_propose(c, (l + 1) % 3, "nope");
    ck_assert_int_eq(u.propose_error, KL_ENOTLEADER);
    ck_assert_int_eq(u.propose_first_offset, -1);
    cl_free(c);
}
END_TEST

START_TEST(test_prevote_is_refused_while_the_leader_is_alive)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c);
    const int32_t epoch = raft_epoch(c->n[l].r);
    const int a = (l + 1) % 3, b = (l + 2) % 3;
    cl_isolate(c, l, b, true); /* b loses the leader but still reaches a */
    cl_run(c, 10000, NULL);
    ck_assert(has_note(&c->n[b], "pre-vote for epoch"));
    ck_assert_int_gt(c->prevotes_refused[a], 0);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(c->n[i].max_epoch_seen, epoch); /* nobody was disrupted */
    ck_assert_int_eq(raft_role(c->n[l].r), RAFT_LEADER);
    ck_assert_int_gt(c->msgs_sent[b][RAFT_MSG_VOTE_REQ], 0);
    cl_isolate(c, l, b, false);
    ck_assert(cl_run(c, 5000, settled));
    ck_assert_int_eq(raft_leader(c->n[b].r), c->n[l].id);
    cl_free(c);
}
END_TEST

/* KIP-996: only the leader's own answers count as hearing from it. Here node 3,
 * the old leader, restarts and learns of the new leader only from the pre-vote
 * request of that leader's follower, after the new leader died too (kill -9). */
START_TEST(test_a_voter_that_knows_the_leader_only_by_hearsay_grants_prevotes)
{
    cluster_t *c = cl_new(3, 0);
    c->n[2].cfg.election_timeout_ms = 100; /* node 3 leads epoch 1 */
    cl_start(c);
    ck_assert_int_eq(cl_elect(c), 2);
    c->n[2].cfg.election_timeout_ms = 1000;
    cl_kill(c, 2);
    const int l = cl_elect(c), f = 1 - l;
    const int32_t epoch = raft_epoch(c->n[l].r);
    ck_assert_int_eq(epoch, 2);
    cl_restart(c, 2);
    ck_assert_int_eq(raft_role(c->n[2].r), RAFT_UNATTACHED); /* it led epoch 1 */
    ck_assert_int_eq(raft_epoch(c->n[2].r), 1);
    cl_kill(c, l); /* before node 3 heard from it */

    ck_assert(cl_run(c, c->n[f].cfg.fast_election_max_ms + 10, settled));
    ck_assert_int_eq(cl_leader(c), f);
    ck_assert_int_eq(raft_epoch(c->n[f].r), epoch + 1);
    ck_assert(has_note(&c->n[2], "in epoch 2 (Vote from")); /* it did adopt the dead leader */
    ck_assert_int_eq(c->prevotes_refused[2], 0);
    cl_free(c);
}
END_TEST

START_TEST(test_a_voter_restored_as_follower_grants_prevotes_until_the_leader_answers_it)
{
    cluster_t *c = cl_new(3, 0);
    const raft_restore_t rs = {.hard_state = {2, RAFT_NO_NODE, 1}};
    cl_start_node(c, 1, &rs);
    ck_assert_int_eq(raft_role(c->n[1].r), RAFT_FOLLOWER);
    raft_msg_t pv = vote_req(3, 2, 3, true, 0, 0);
    cl_step(c, 1, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &pv});
    ck_assert_int_eq(c->msgs_sent[1][RAFT_MSG_VOTE_RESP], 1);
    ck_assert_int_eq(c->prevotes_refused[1], 0); /* the leader on disk may be long dead */

    const raft_msg_t *fetch = NULL;
    for (int k = c->qh; k < c->qt; k++)
        if (c->q[k]->type == RAFT_MSG_FETCH_REQ && c->q[k]->to == 1) fetch = c->q[k];
    ck_assert_ptr_nonnull(fetch);
    raft_msg_t resp = {.type = RAFT_MSG_FETCH_RESP, .from = 1, .to = 2, .epoch = 2, .leader_id = 1,
                       .rpc_id = fetch->rpc_id};
    resp.u.fetch_resp.diverging_epoch = -1;
    resp.u.fetch_resp.diverging_end_offset = -1;
    resp.u.fetch_resp.snapshot_id = (raft_snapshot_id_t){-1, -1};
    cl_step(c, 1, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &resp});
    cl_step(c, 1, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &pv});
    ck_assert_int_eq(c->prevotes_refused[1], 1); /* now it has heard from the leader */
    cl_free(c);
}
END_TEST

/* A lost pre-vote returns to the old leader without pretending to have heard
 * from it: otherwise two followers of a paused leader (SIGSTOP) refuse each
 * other's pre-votes out of phase, for tens of seconds. Node 3 is made to
 * believe in the paused leader far longer than node 2, so that it refuses node
 * 2's pre-vote; then node 3's connection breaks and it asks node 2, which
 * just came back from its lost round. */
START_TEST(test_a_follower_back_from_a_lost_prevote_has_still_not_heard_from_the_leader)
{
    cluster_t *c = cl_new(3, 0);
    cl_without_fetch_stall(c);
    c->n[0].cfg.election_timeout_ms = 100; /* node 1 leads */
    c->n[2].cfg.fetch_timeout_ms = 10000;
    cl_start(c);
    ck_assert_int_eq(cl_elect(c), 0);
    const int32_t epoch = raft_epoch(c->n[0].r);
    c->n[0].up = false; /* paused: silent, connections stay up */
    g_watch = 1;
    ck_assert(cl_run(c, 10000, watched_lost_a_prevote));
    ck_assert_int_eq(c->prevotes_refused[2], 1);

    cl_peer_down(c, 2, c->n[0].id);
    ck_assert(cl_run(c, c->n[2].cfg.fast_election_max_ms + 10, settled));
    ck_assert_int_eq(cl_leader(c), 2);
    ck_assert_int_eq(raft_epoch(c->n[2].r), epoch + 1);
    ck_assert_int_eq(c->prevotes_refused[1], 0);
    cl_free(c);
}
END_TEST

/* The same, but node 2 lost its connection to the leader just after hearing
 * from it, so only the broken connection says the leader is gone. */
START_TEST(test_a_follower_back_from_a_lost_prevote_still_knows_its_leader_connection_broke)
{
    cluster_t *c = cl_new(3, 0);
    cl_without_fetch_stall(c);
    c->n[0].cfg.election_timeout_ms = 100; /* node 1 leads */
    c->n[1].cfg.election_timeout_ms = 200; /* node 2's pre-vote round ends well within its fetch timeout */
    c->n[2].cfg.fetch_timeout_ms = 10000;
    cl_start(c);
    ck_assert_int_eq(cl_elect(c), 0);
    const int32_t epoch = raft_epoch(c->n[0].r);
    cl_propose(c, 0, "last words");
    cl_run(c, 10, NULL);
    c->n[0].up = false;
    cl_peer_down(c, 1, c->n[0].id);
    g_watch = 1;
    ck_assert(cl_run(c, 1000, watched_lost_a_prevote));
    ck_assert_int_gt(c->prevotes_refused[2], 0);

    cl_peer_down(c, 2, c->n[0].id);
    ck_assert(cl_run(c, c->n[2].cfg.fast_election_max_ms + 10, settled));
    ck_assert_int_eq(cl_leader(c), 2);
    ck_assert_int_eq(raft_epoch(c->n[2].r), epoch + 1);
    ck_assert_int_eq(c->prevotes_refused[1], 0);
    cl_free(c);
}
END_TEST

/* Both followers last heard from the leader in the same millisecond; without
 * jitter on the fetch timeout both go prospective at once, grant each other's
 * pre-vote, and split the real vote (KRaft's path: no fetch stall detection). */
START_TEST(test_followers_of_a_paused_leader_do_not_time_out_together_and_split_the_vote)
{
    cluster_t *c = cl_new(3, 0);
    cl_without_fetch_stall(c);
    c->n[0].cfg.election_timeout_ms = 100; /* node 1 leads */
    cl_start(c);
    ck_assert_int_eq(cl_elect(c), 0);
    const int32_t epoch = raft_epoch(c->n[0].r);
    cl_propose(c, 0, "both followers get this in the same millisecond");
    cl_run(c, 50, NULL);
    c->n[0].up = false; /* paused */
    const int votes = c->votes_granted[1] + c->votes_granted[2];
    const raft_config_t *cfg = &c->n[1].cfg;
    ck_assert(cl_run(c, cfg->fetch_timeout_ms + cfg->election_timeout_ms / 2 + 10, settled));
    ck_assert_int_eq(raft_epoch(c->n[cl_leader(c)].r), epoch + 1);
    ck_assert_int_eq(c->votes_granted[1] + c->votes_granted[2], votes + 1); /* one election, one vote */
    cl_free(c);
}
END_TEST

/* DESIGN.md §2 long poll: a live leader answers every fetch within
 * fetch_max_wait_ms, so a fetch unanswered for fetch_stall_ms means the leader
 * stalled (SIGSTOP: silence, no EOF). The followers elect a new leader well
 * within a second of its last answer instead of waiting out the fetch timeout. */
START_TEST(test_followers_of_a_paused_leader_elect_a_new_one_within_the_stall_time)
{
    for (int64_t pause_after = 0; pause_after < 600; pause_after += 37) {
        cluster_t *c = cl_new(3, 0);
        for (int i = 0; i < 3; i++) c->n[i].cfg.seed += 7 * (uint64_t)pause_after; /* other delays each time */
        cl_start(c);
        const int l = cl_elect(c);
        const int32_t epoch = raft_epoch(c->n[l].r);
        const int votes = c->votes_granted[0] + c->votes_granted[1] + c->votes_granted[2];
        cl_run(c, 3000 + pause_after, NULL); /* idle: only long polls keep the followers fetching */
        c->n[l].up = false;                  /* paused: silent, connections stay up */
        const int64_t paused_at = c->now, answered_at = c->fetch_answered_ms[l];
        ck_assert_int_ge(answered_at, paused_at - c->n[l].cfg.fetch_max_wait_ms);
        ck_assert_msg(cl_run(c, 1000, settled), "no new leader within 1000 ms of the pause (after %lld ms)",
                      (long long)pause_after);
        ck_assert_int_lt(c->now - answered_at, 1000);
        ck_assert_int_eq(raft_epoch(c->n[cl_leader(c)].r), epoch + 1);
        ck_assert_int_eq(c->votes_granted[0] + c->votes_granted[1] + c->votes_granted[2], votes + 1); /* one election */
        cl_free(c);
    }
}
END_TEST

static bool any_node_noted(const cluster_t *c, const char *needle)
{
    for (int i = 0; i < c->count; i++)
        if (has_note(&c->n[i], needle)) return true;
    return false;
}

/* The other side of the stall rule: an idle leader parks every fetch for the
 * whole long poll, a busy one answers at once; neither is ever overdue, so
 * there are no elections and no pre-votes over many virtual seconds. */
START_TEST(test_a_leader_that_answers_within_the_long_poll_is_never_considered_stalled)
{
    cluster_t *c = cl_new(3, 1);
    cl_start(c);
    const int l = cl_elect(c);
    const int32_t epoch = raft_epoch(c->n[l].r);
    int vote_reqs = 0;
    for (int i = 0; i < 3; i++) vote_reqs += c->msgs_sent[i][RAFT_MSG_VOTE_REQ];
    cl_run(c, 30000, NULL); /* idle */
    for (int k = 0; k < 300; k++) { /* busy: a proposal every 100 ms */
        ck_assert_int_eq(cl_propose(c, l, "tick").propose_error, 0);
        cl_run(c, 100, NULL);
    }
    cl_run(c, 30000, NULL);
    ck_assert(caught_up(c));
    for (int i = 0; i < c->count; i++) ck_assert_int_eq(c->n[i].max_epoch_seen, epoch);
    int after = 0;
    for (int i = 0; i < 3; i++) after += c->msgs_sent[i][RAFT_MSG_VOTE_REQ];
    ck_assert_int_eq(after, vote_reqs);
    ck_assert(!any_node_noted(c, "answered no fetch"));
    ck_assert_int_eq(raft_leader(c->n[3].r), c->n[l].id); /* the observer never let go either */
    cl_free(c);
}
END_TEST

/* PEER_DOWN on the leader is about its own connection to a follower (the one
 * BeginQuorumEpoch uses); the follower's fetches arrive over the follower's
 * connection, which may be fine. The leader keeps answering the fetch it
 * holds, so the follower never sees its leader as stalled. */
START_TEST(test_a_leader_losing_its_connection_to_a_follower_still_answers_that_followers_fetch)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c);
    const int f = (l + 1) % 3;
    const int32_t epoch = raft_epoch(c->n[l].r);
    cl_run(c, 1000, NULL); /* idle: f's fetch is parked at the leader */
    int vote_reqs = 0;
    for (int i = 0; i < 3; i++) vote_reqs += c->msgs_sent[i][RAFT_MSG_VOTE_REQ];
    for (int k = 0; k < 5; k++) { /* the leader's outbound connection to f flaps */
        cl_peer_down(c, l, c->n[f].id);
        cl_run(c, 400, NULL);
    }
    cl_run(c, 3000, NULL);
    ck_assert(!any_node_noted(c, "answered no fetch"));
    int after = 0;
    for (int i = 0; i < 3; i++) after += c->msgs_sent[i][RAFT_MSG_VOTE_REQ];
    ck_assert_int_eq(after, vote_reqs);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(c->n[i].max_epoch_seen, epoch);
    cl_free(c);
}
END_TEST

/* The voter's side of the rule, exactly at the boundary: a pre-vote is refused
 * while its own fetch to the leader is younger than fetch_stall_ms and granted
 * from then on, even before its own timers ran. */
START_TEST(test_a_voter_whose_fetch_to_the_leader_is_overdue_grants_prevotes)
{
    cluster_t *c = cl_new(3, 0);
    const raft_restore_t rs = {.hard_state = {2, RAFT_NO_NODE, 1}};
    cl_start_node(c, 1, &rs);
    const int stall = c->n[1].cfg.fetch_stall_ms;
    raft_msg_t resp = {.type = RAFT_MSG_FETCH_RESP, .from = 1, .to = 2, .epoch = 2, .leader_id = 1};
    resp.u.fetch_resp.diverging_epoch = -1;
    resp.u.fetch_resp.diverging_end_offset = -1;
    resp.u.fetch_resp.snapshot_id = (raft_snapshot_id_t){-1, -1};
    cl_step(c, 1, (raft_event_t){.type = RAFT_EV_TICK});
    for (int k = 0; k < 2; k++) { /* the first answer is contact; the second fetch goes unanswered */
        ck_assert_int_eq(c->qt - c->qh, 1);
        raft_msg_t *fetch = c->q[c->qh];
        ck_assert_int_eq(fetch->type, RAFT_MSG_FETCH_REQ);
        resp.rpc_id = fetch->rpc_id;
        c->qh = c->qt = 0;
        msg_free(fetch);
        if (k == 0) cl_step(c, 1, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &resp});
    }
    const int64_t sent = c->now;
    raft_msg_t pv = vote_req(3, 2, 3, true, 0, 0);
    c->now = sent + stall - 1;
    cl_step(c, 1, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &pv});
    ck_assert_int_eq(c->prevotes_refused[1], 1);
    c->now = sent + stall;
    cl_step(c, 1, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &pv});
    ck_assert_int_eq(c->msgs_sent[1][RAFT_MSG_VOTE_RESP], 2);
    ck_assert_int_eq(c->prevotes_refused[1], 1); /* the second one was granted */
    ck_assert(has_note(&c->n[1], "answered no fetch for"));
    ck_assert_int_eq(raft_role(c->n[1].r), RAFT_FOLLOWER); /* pre-vote in a fast-election delay */
    cl_free(c);
}
END_TEST

/* fetch_stall_ms = 0 is KRaft: nothing happens before the fetch timeout. */
START_TEST(test_fetch_stall_of_zero_waits_for_the_fetch_timeout)
{
    cluster_t *c = cl_new(3, 0);
    cl_without_fetch_stall(c);
    cl_start(c);
    const int l = cl_elect(c);
    const int32_t epoch = raft_epoch(c->n[l].r);
    cl_run(c, 3000, NULL);
    c->n[l].up = false; /* paused */
    const int64_t answered_at = c->fetch_answered_ms[l];
    const raft_config_t *cfg = &c->n[0].cfg;
    ck_assert(!cl_run(c, answered_at + cfg->fetch_timeout_ms - c->now, settled));
    for (int i = 0; i < 3; i++) ck_assert_int_eq(c->n[i].max_epoch_seen, epoch);
    ck_assert(!any_node_noted(c, "answered no fetch"));
    ck_assert(cl_run(c, cfg->election_timeout_ms, settled));
    ck_assert_int_eq(raft_epoch(c->n[cl_leader(c)].r), epoch + 1);
    cl_free(c);
}
END_TEST

/* An observer (a broker) handles a stalled leader like a broken connection
 * too: it lets go of it and asks the voters, so it finds the new leader
 * before the fetch timeout would have made it look. */
static bool observer_follows_new_leader(const cluster_t *c)
{
    const int l = cl_leader(c);
    return l >= 0 && raft_leader(c->n[3].r) == c->n[l].id && raft_epoch(c->n[3].r) == raft_epoch(c->n[l].r);
}

START_TEST(test_an_observer_of_a_paused_leader_finds_the_new_one_before_the_fetch_timeout)
{
    cluster_t *c = cl_new(3, 1);
    cl_start(c);
    const int l = cl_elect(c);
    ck_assert(cl_run(c, 1000, caught_up));
    cl_run(c, 1234, NULL);
    c->n[l].up = false; /* paused */
    const int64_t answered_at = c->fetch_answered_ms[l];
    ck_assert(cl_run(c, answered_at + c->n[3].cfg.fetch_timeout_ms - c->now, observer_follows_new_leader));
    ck_assert(has_note(&c->n[3], "answered no fetch"));
    cl_free(c);
}
END_TEST

/* The asker lost its connection to the leader (kill -9), the other follower
 * has not noticed yet and refuses; the leader never answers. The asker asks
 * again after a fast-election delay instead of waiting out its whole round.
 * The other follower's log is shorter, so it cannot win by itself. */
START_TEST(test_prevote_refused_for_a_leader_the_asker_lost_is_asked_again_soon)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c), a = (l + 1) % 3, x = (l + 2) % 3;
    const int32_t epoch = raft_epoch(c->n[l].r);
    cl_isolate(c, l, x, true);
    cl_propose(c, l, "a has this, x does not");
    cl_run(c, 50, NULL);
    ck_assert_int_gt(raft_durable_end(c->n[a].r), raft_durable_end(c->n[x].r));
    cl_isolate(c, l, x, false);

    c->n[l].up = false;
    cl_peer_down(c, a, c->n[l].id); /* x sees its connection break only later */
    g_watch = a;
    ck_assert(cl_run(c, c->n[a].cfg.fast_election_max_ms, watched_is_prospective));
    ck_assert_int_eq(c->prevotes_refused[x], 1);
    cl_peer_down(c, x, c->n[l].id);
    ck_assert(cl_run(c, 2 * c->n[a].cfg.fast_election_max_ms, settled));
    ck_assert_int_eq(cl_leader(c), a);
    ck_assert_int_eq(raft_epoch(c->n[a].r), epoch + 1);
    ck_assert(has_note(&c->n[a], "asking it again"));
    cl_free(c);
}
END_TEST

START_TEST(test_vote_is_refused_to_a_shorter_log_and_granted_to_an_equal_or_longer_one)
{
    cluster_t *c = cl_new(3, 0);
    const int32_t epochs[] = {1, 1, 2, 2, 2};
    restore_with_epochs(c, 0, 2, epochs, 5, 0); /* node 1: (last epoch 2, end 5) */
    raft_msg_t m;

    /* longer by offset but older last epoch: refused */
    m = vote_req(2, 1, 3, false, 1, 10);
    raft_update_t u = cl_step(c, 0, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &m});
    ck_assert_int_eq(c->msgs_sent[0][RAFT_MSG_VOTE_RESP], 1);
    ck_assert_int_eq(c->votes_granted[0], 0);
    ck_assert_int_eq(raft_epoch(c->n[0].r), 3); /* the epoch itself is adopted */
    ck_assert_int_eq(u.hard_state.voted_for, RAFT_NO_NODE);

    /* same epoch, shorter: refused; equal: granted */
    m = vote_req(2, 1, 3, false, 2, 4);
    cl_step(c, 0, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &m});
    ck_assert_int_eq(c->votes_granted[0], 0);
    m = vote_req(3, 1, 3, false, 2, 5);
    cl_step(c, 0, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &m});
    ck_assert_int_eq(c->votes_granted[0], 1);
    ck_assert_int_eq(c->n[0].hs.voted_for, 3);

    /* one vote per epoch: another candidate of epoch 3 is refused even with a longer log */
    m = vote_req(2, 1, 3, false, 3, 9);
    cl_step(c, 0, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &m});
    ck_assert_int_eq(c->votes_granted[0], 1);

    /* longer by epoch in a new epoch: granted */
    m = vote_req(2, 1, 4, false, 3, 1);
    cl_step(c, 0, (raft_event_t){.type = RAFT_EV_RECV, .u.msg = &m});
    ck_assert_int_eq(c->votes_granted[0], 2);
    ck_assert_int_eq(c->n[0].hs.epoch, 4);
    ck_assert_int_eq(c->n[0].hs.voted_for, 2);
    cl_free(c);
}
END_TEST

START_TEST(test_vote_is_persisted_in_the_same_update_as_the_grant)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    raft_msg_t m = vote_req(2, 1, 1, false, 0, 0);
    raft_update_t u;
    raft_event_t ev = {.type = RAFT_EV_RECV, .now_ms = c->now, .u.msg = &m};
    ck_assert_int_eq(raft_step(c->n[0].r, &ev, &u), 0);
    const raft_msg_t *resp = find_msg(&u, RAFT_MSG_VOTE_RESP, 2);
    ck_assert_ptr_nonnull(resp);
    ck_assert(resp->u.vote_resp.granted);
    ck_assert(u.persist_state);
    ck_assert_int_eq(u.hard_state.epoch, 1);
    ck_assert_int_eq(u.hard_state.voted_for, 2);

    /* asking again gets the same vote, again persisted with it */
    ck_assert_int_eq(raft_step(c->n[0].r, &ev, &u), 0);
    resp = find_msg(&u, RAFT_MSG_VOTE_RESP, 2);
    ck_assert(resp->u.vote_resp.granted && u.persist_state && u.hard_state.voted_for == 2);

    /* a pre-vote changes nothing and persists nothing */
    raft_msg_t pv = vote_req(3, 1, 2, true, 0, 0);
    ev.u.msg = &pv;
    ck_assert_int_eq(raft_step(c->n[0].r, &ev, &u), 0);
    resp = find_msg(&u, RAFT_MSG_VOTE_RESP, 3);
    ck_assert(resp->u.vote_resp.pre_vote && resp->u.vote_resp.granted);
    ck_assert(!u.persist_state);
    ck_assert_int_eq(raft_epoch(c->n[0].r), 1);
    cl_free(c);
}
END_TEST

/* ---- high watermark and replication -------------------------------------------- */

static bool drop_entries_to_followers(const raft_msg_t *m)
{
    return m->type == RAFT_MSG_FETCH_RESP && m->u.fetch_resp.n_entries > 0;
}

START_TEST(test_hw_waits_until_the_leaders_epoch_start_entry_is_on_a_majority)
{
    cluster_t *c = cl_new(3, 0);
    const int32_t epochs[] = {1, 1, 1, 1, 1};
    c->n[0].cfg.election_timeout_ms = 100; /* node 1 campaigns first */
    for (int i = 0; i < 3; i++) {
        c->n[i].cfg.request_timeout_ms = 300; /* unanswered fetches are retried soon */
        c->n[i].cfg.fetch_max_wait_ms = 100;  /* (a request timeout must outlast the long poll) */
        restore_with_epochs(c, i, 1, epochs, 5, 0);
    }
    c->drop = drop_entries_to_followers; /* followers never receive the leader-change entry */
    cl_run(c, 1000, NULL);
    ck_assert_int_eq(raft_role(c->n[0].r), RAFT_LEADER);
    raft_quorum_info_t qi;
    ck_assert_int_eq(raft_describe(c->n[0].r, c->now, &qi), 0);
    ck_assert_int_eq(qi.n_voters, 3);
    ck_assert_int_eq(qi.voters[1].log_end_offset, 5); /* old entries are on every voter... */
    ck_assert_int_eq(qi.voters[2].log_end_offset, 5);
    ck_assert_int_eq(raft_high_watermark(c->n[0].r), 0); /* ...but not committed by counting */

    c->drop = NULL;
    cl_run(c, 500, NULL);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(raft_high_watermark(c->n[i].r), 6);
    ck_assert_int_eq(raft_role(c->n[0].r), RAFT_LEADER);
    cl_free(c);
}
END_TEST

START_TEST(test_follower_truncates_to_the_leaders_end_of_the_diverging_epoch)
{
    cluster_t *c = cl_new(3, 0);
    const int32_t leader_log[] = {1, 1, 1, 3, 3};
    const int32_t stale_log[] = {1, 1, 1, 2, 2, 2};
    c->n[0].cfg.election_timeout_ms = 100;
    restore_with_epochs(c, 0, 3, leader_log, 5, 3);
    restore_with_epochs(c, 1, 2, stale_log, 6, 3);
    restore_with_epochs(c, 2, 3, leader_log, 5, 3);
    ck_assert_int_eq(cl_elect(c), 0);
    ck_assert_int_eq(c->n[1].n_truncations, 1);
    ck_assert_int_eq(c->n[1].last_truncate_to, 3); /* end of epoch 1, the last one both logs share */
    ck_assert(has_note(&c->n[1], "truncated log from 6 to 3"));
    const int64_t end = raft_log_end(c->n[0].r);
    ck_assert_int_eq(raft_log_end(c->n[1].r), end);
    for (int64_t o = 0; o < end; o++)
        ck_assert_int_eq(raft_entry_at(c->n[1].r, o)->epoch, raft_entry_at(c->n[0].r, o)->epoch);
    cl_free(c);
}
END_TEST

START_TEST(test_group_commit_appends_100_proposals_of_one_linger_window_as_one_update)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c);
    c->n[l].max_batch = 0;
    int64_t first = -1;
    for (int k = 0; k < 100; k++) {
        char text[16];
        snprintf(text, sizeof text, "p%d", k);
        raft_update_t u = cl_propose(c, l, text);
        ck_assert_int_eq(u.propose_error, 0);
        ck_assert_int_eq(u.n_entries, 0); /* waits for the linger window */
        if (k == 0) first = u.propose_first_offset;
        ck_assert_int_eq(u.propose_first_offset, first + k);
    }
    cl_run(c, c->n[l].cfg.append_linger_ms, NULL);
    ck_assert_int_eq(c->n[l].max_batch, 100);
    cl_run(c, 50, NULL);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(raft_high_watermark(c->n[i].r), first + 100);
    cl_free(c);
}
END_TEST

START_TEST(test_snapshot_and_fetch_snapshot_bring_a_far_behind_follower_up)
{
    cluster_t *c = cl_new(3, 0);
    for (int i = 0; i < 3; i++) c->n[i].cfg.snapshot_chunk_bytes = 7;
    cl_start(c);
    const int l = cl_elect(c);
    const int lag = (l + 2) % 3;
    for (int i = 0; i < 3; i++) cl_isolate(c, lag, i, true);
    for (int k = 0; k < 50; k++) cl_propose(c, l, "record");
    cl_run(c, 100, NULL);
    const int64_t hw = raft_high_watermark(c->n[l].r);
    ck_assert_int_ge(hw, 51);

    uint8_t image[100];
    for (int k = 0; k < 100; k++) image[k] = (uint8_t)(k * 7);
    const raft_snapshot_id_t id = {hw, raft_entry_at(c->n[l].r, hw - 1)->epoch};
    for (int i = 0; i < 3; i++) {
        if (i == lag) continue;
        raft_event_t ev = {.type = RAFT_EV_SNAPSHOT, .u.snapshot = {id, image, sizeof image}};
        cl_step(c, i, ev);
        ck_assert_int_eq(raft_log_start(c->n[i].r), hw);
    }
    /* a snapshot beyond the HW is refused */
    raft_update_t u;
    raft_event_t bad = {.type = RAFT_EV_SNAPSHOT, .now_ms = c->now, .u.snapshot = {{hw + 1, id.last_epoch}, image, 1}};
    ck_assert_int_eq(raft_step(c->n[l].r, &bad, &u), KL_EINVAL);

    cl_propose(c, l, "after");
    cl_run(c, 100, NULL);
    for (int i = 0; i < 3; i++) cl_isolate(c, lag, i, false);
    ck_assert(cl_run(c, 10000, caught_up));
    node_t *nd = &c->n[lag];
    ck_assert_int_eq(nd->n_installs, 1);
    ck_assert_int_eq(nd->snap_len, sizeof image);
    ck_assert_int_eq(memcmp(nd->snap, image, sizeof image), 0);
    ck_assert_int_eq(raft_log_start(nd->r), hw);
    ck_assert_int_eq(raft_high_watermark(nd->r), raft_high_watermark(c->n[l].r));
    ck_assert_int_eq(memcmp(raft_entry_at(nd->r, hw)->data, "after", 5), 0);
    ck_assert(has_note(nd, "installed snapshot"));
    cl_free(c);
}
END_TEST

START_TEST(test_observer_never_votes_and_never_counts_for_the_hw)
{
    cluster_t *c = cl_new(3, 1);
    cl_start(c);
    const int l = cl_elect(c);
    node_t *obs = &c->n[3];
    ck_assert_int_eq(raft_role(obs->r), RAFT_OBSERVER);
    ck_assert_int_eq(raft_leader(obs->r), c->n[l].id);
    raft_update_t u = cl_propose(c, l, "seen by all");
    cl_run(c, 100, NULL);
    ck_assert_int_gt(raft_high_watermark(obs->r), u.propose_first_offset);

    /* the followers lose the leader; the observer alone holds the next entry */
    for (int i = 0; i < 3; i++)
        if (i != l) cl_isolate(c, l, i, true);
    const int64_t hw = raft_high_watermark(c->n[l].r);
    u = cl_propose(c, l, "observer only");
    cl_run(c, 1000, NULL);
    ck_assert_int_gt(raft_durable_end(obs->r), u.propose_first_offset);
    ck_assert_int_eq(raft_high_watermark(c->n[l].r), hw);
    raft_quorum_info_t qi;
    ck_assert_int_eq(raft_describe(c->n[l].r, c->now, &qi), 0);
    ck_assert_int_eq(qi.n_observers, 1);
    ck_assert_int_eq(qi.observers[0].node_id, OBSERVER_BASE);

    cl_run(c, 10000, NULL); /* elections come and go: the observer stays out of them */
    ck_assert_int_eq(raft_role(obs->r), RAFT_OBSERVER);
    ck_assert_int_eq(c->msgs_sent[3][RAFT_MSG_VOTE_REQ], 0);
    ck_assert_int_eq(c->votes_granted[3], 0);
    cl_free(c);
}
END_TEST

/* ---- failures, resignation and shutdown ---------------------------------------------- */

START_TEST(test_fast_election_after_peer_down_happens_within_fast_election_max)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c);
    const int32_t epoch = raft_epoch(c->n[l].r);
    c->n[l].up = false; /* kill -9 */
    const int64_t t0 = c->now;
    for (int i = 0; i < 3; i++)
        if (i != l) cl_step(c, i, (raft_event_t){.type = RAFT_EV_PEER_DOWN, .u.peer = c->n[l].id});
    ck_assert(cl_run(c, c->n[0].cfg.fast_election_max_ms, settled));
    ck_assert_int_le(c->now - t0, c->n[0].cfg.fast_election_max_ms);
    ck_assert_int_ge(c->now - t0, c->n[0].cfg.fast_election_min_ms);
    ck_assert_int_eq(raft_epoch(c->n[cl_leader(c)].r), epoch + 1);
    cl_free(c);
}
END_TEST

/* The delay announced in node i's last "pre-vote in N ms" note, -1 if none. */
static int64_t announced_delay(const node_t *nd)
{
    const char *last = NULL;
    for (const char *p = nd->notes; (p = strstr(p, "pre-vote in ")) != NULL; p++) last = p;
    long long ms;
    return last && sscanf(last, "pre-vote in %lld ms", &ms) == 1 ? ms : -1;
}

/* The survivors of a dead leader all notice at once; each waits in its own
 * slot of the fast-election range, by voter order, so none collide and split
 * the vote: the first survivor wins the one election. */
START_TEST(test_followers_of_a_lost_leader_take_turns_by_voter_order)
{
    for (uint64_t seed = 0; seed < 20; seed++) {
        cluster_t *c = cl_new(5, 0);
        for (int i = 0; i < 5; i++) c->n[i].cfg.seed += 10 * seed;
        cl_start(c);
        const int l = cl_elect(c);
        const int32_t epoch = raft_epoch(c->n[l].r);
        cl_kill(c, l);
        const raft_config_t *cfg = &c->n[0].cfg;
        const int64_t slot = (cfg->fast_election_max_ms - cfg->fast_election_min_ms) / 4;
        int rank = 0, first = -1;
        for (int i = 0; i < 5; i++) {
            if (i == l) continue;
            const int64_t d = announced_delay(&c->n[i]), from = cfg->fast_election_min_ms + rank * slot;
            ck_assert_int_ge(d, from);
            ck_assert_int_le(d, from + slot / 2);
            if (first < 0) first = i;
            rank++;
        }
        ck_assert(cl_run(c, cfg->fast_election_max_ms, settled));
        ck_assert_int_eq(cl_leader(c), first);
        ck_assert_int_eq(raft_epoch(c->n[first].r), epoch + 1);
        cl_free(c);
    }
}
END_TEST

START_TEST(test_check_quorum_makes_a_cut_off_leader_resign)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c);
    for (int i = 0; i < 3; i++) cl_isolate(c, l, i, i != l);
    const int window = c->n[l].cfg.fetch_timeout_ms * 3 / 2;
    cl_run(c, c->n[l].cfg.fetch_timeout_ms, NULL);
    ck_assert_int_eq(raft_role(c->n[l].r), RAFT_LEADER);
    cl_run(c, window - c->n[l].cfg.fetch_timeout_ms + 1, NULL);
    ck_assert_int_ne(raft_role(c->n[l].r), RAFT_LEADER);
    ck_assert(has_note(&c->n[l], "check-quorum"));
    raft_update_t u = cl_propose(c, l, "too late");
    ck_assert_int_eq(u.propose_error, KL_ENOTLEADER);
    /* the others elected someone else meanwhile; healing brings the old leader in */
    for (int i = 0; i < 3; i++) cl_isolate(c, l, i, false);
    ck_assert(cl_run(c, 10000, settled));
    ck_assert_int_ne(cl_leader(c), l);
    cl_free(c);
}
END_TEST

START_TEST(test_end_epoch_makes_the_first_successor_a_candidate_at_once)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    const int l = cl_elect(c);
    const int32_t epoch = raft_epoch(c->n[l].r);
    cl_step(c, l, (raft_event_t){.type = RAFT_EV_SHUTDOWN});
    ck_assert_int_eq(raft_role(c->n[l].r), RAFT_RESIGNED);
    ck_assert_int_eq(c->qt - c->qh, 2);
    const raft_msg_t *end = c->q[c->qh];
    ck_assert_int_eq(end->type, RAFT_MSG_END_EPOCH_REQ);
    ck_assert_int_eq(end->u.end_epoch_req.n_successors, 2);
    const int32_t first = end->u.end_epoch_req.successors[0];
    ck_assert_int_eq(cl_propose(c, l, "no").propose_error, KL_ENOTLEADER);
    const int64_t t0 = c->now;
    deliver_all(c); /* no time passes */
    ck_assert_int_eq(c->now, t0);
    const int s = idx_of(c, first);
    ck_assert_int_eq(raft_role(c->n[s].r), RAFT_LEADER);
    ck_assert_int_eq(raft_epoch(c->n[s].r), epoch + 1);
    ck_assert(has_note(&c->n[s], "preferred successor"));
    cl_free(c);
}
END_TEST

/* ---- input checking ---------------------------------------------------------------- */

START_TEST(test_malformed_events_are_refused_with_an_empty_update)
{
    cluster_t *c = cl_new(3, 0);
    cl_start(c);
    raft_t *r = c->n[0].r;
    raft_update_t u;
    raft_msg_t m = {.type = RAFT_MSG_FETCH_RESP, .from = 2, .to = 1, .epoch = 1, .leader_id = 2};
    raft_entry_t es[2] = {{.offset = 0, .epoch = 1}, {.offset = 5, .epoch = 1}}; /* gap */
    m.u.fetch_resp.entries = es;
    m.u.fetch_resp.n_entries = 2;
    m.u.fetch_resp.diverging_epoch = -1;
    m.u.fetch_resp.diverging_end_offset = -1;
    m.u.fetch_resp.snapshot_id.end_offset = -1;
    raft_event_t ev = {.type = RAFT_EV_RECV, .now_ms = c->now, .u.msg = &m};
    ck_assert_int_eq(raft_step(r, &ev, &u), KL_EPROTO);
    ck_assert_int_eq(u.n_msgs + u.n_entries + u.persist_state, 0);
    ck_assert_int_eq(raft_epoch(r), 0);

    m.to = 9; /* not for us */
    m.u.fetch_resp.n_entries = 0;
    ck_assert_int_eq(raft_step(r, &ev, &u), KL_EINVAL);
    raft_event_t p = {.type = RAFT_EV_PERSISTED, .now_ms = c->now, .u.persisted_end = 1};
    ck_assert_int_eq(raft_step(r, &p, &u), KL_EINVAL); /* beyond the log end */
    raft_config_t bad = c->n[0].cfg;
    bad.n_voters = 0;
    ck_assert_ptr_null(raft_new(&bad, NULL, 0));
    bad = c->n[0].cfg;
    bad.fetch_stall_ms = bad.fetch_max_wait_ms; /* every idle long poll would look stalled */
    ck_assert_ptr_null(raft_new(&bad, NULL, 0));
    bad.fetch_stall_ms = -1;
    ck_assert_ptr_null(raft_new(&bad, NULL, 0));
    cl_free(c);
}
END_TEST

/* The limits in raft.h are what storage and wire can carry (static asserts on
 * their side); the core refuses anything bigger before it gets that far. */
START_TEST(test_entries_snapshots_and_fetch_responses_over_the_public_limits_are_refused)
{
    cluster_t *c = cl_new(1, 0);
    cl_start(c);
    cl_run(c, 5, NULL);
    raft_t *r = c->n[0].r;
    ck_assert_int_eq(raft_role(r), RAFT_LEADER);
    raft_update_t u;
    uint8_t *big = calloc(1, RAFT_MAX_ENTRY_BYTES);
    ck_assert_ptr_nonnull(big);
    const uint8_t *data[1] = {big};
    uint32_t len[1] = {RAFT_MAX_ENTRY_BYTES};
    ck_assert_int_eq(cl_step(c, 0, (raft_event_t){.type = RAFT_EV_PROPOSE, .u.propose = {data, len, 1}}).propose_error, 0);
    len[0] = RAFT_MAX_ENTRY_BYTES + 1; /* refused on its length, before anything is read */
    raft_event_t ev = {.type = RAFT_EV_PROPOSE, .now_ms = c->now, .u.propose = {data, len, 1}};
    ck_assert_int_eq(raft_step(r, &ev, &u), KL_EINVAL);
    cl_run(c, 10, NULL);
    ck_assert_int_eq(raft_high_watermark(r), 2);

    const raft_snapshot_id_t id = {2, raft_epoch(r)};
    ev = (raft_event_t){.type = RAFT_EV_SNAPSHOT, .now_ms = c->now, .u.snapshot = {id, big, RAFT_MAX_SNAPSHOT_BYTES + 1ull}};
    ck_assert_int_eq(raft_step(r, &ev, &u), KL_EINVAL);
    free(big);

    raft_msg_t m = {.type = RAFT_MSG_FETCH_RESP, .from = 2, .to = 1, .epoch = 1, .leader_id = 1};
    raft_entry_t e = {.offset = 0, .epoch = 1};
    m.u.fetch_resp.entries = &e;
    m.u.fetch_resp.n_entries = RAFT_MAX_FETCH_ENTRIES + 1; /* refused on the count, before reading */
    m.u.fetch_resp.diverging_epoch = -1;
    m.u.fetch_resp.diverging_end_offset = -1;
    m.u.fetch_resp.snapshot_id = (raft_snapshot_id_t){-1, -1};
    ev = (raft_event_t){.type = RAFT_EV_RECV, .now_ms = c->now, .u.msg = &m};
    ck_assert_int_eq(raft_step(r, &ev, &u), KL_EPROTO);
    cl_free(c);
}
END_TEST

static Suite *raft_suite(void)
{
    Suite *s = suite_create("raft");
    TCase *e = tcase_create("elections");
    tcase_add_test(e, test_single_voter_elects_itself_and_commits);
    tcase_add_test(e, test_three_voters_elect_one_leader_and_commit_a_proposal);
    tcase_add_test(e, test_prevote_is_refused_while_the_leader_is_alive);
    tcase_add_test(e, test_a_voter_that_knows_the_leader_only_by_hearsay_grants_prevotes);
    tcase_add_test(e, test_a_voter_restored_as_follower_grants_prevotes_until_the_leader_answers_it);
    tcase_add_test(e, test_a_follower_back_from_a_lost_prevote_has_still_not_heard_from_the_leader);
    tcase_add_test(e, test_a_follower_back_from_a_lost_prevote_still_knows_its_leader_connection_broke);
    tcase_add_test(e, test_followers_of_a_paused_leader_do_not_time_out_together_and_split_the_vote);
    tcase_add_test(e, test_followers_of_a_paused_leader_elect_a_new_one_within_the_stall_time);
    tcase_add_test(e, test_a_leader_that_answers_within_the_long_poll_is_never_considered_stalled);
    tcase_add_test(e, test_a_leader_losing_its_connection_to_a_follower_still_answers_that_followers_fetch);
    tcase_add_test(e, test_a_voter_whose_fetch_to_the_leader_is_overdue_grants_prevotes);
    tcase_add_test(e, test_fetch_stall_of_zero_waits_for_the_fetch_timeout);
    tcase_add_test(e, test_an_observer_of_a_paused_leader_finds_the_new_one_before_the_fetch_timeout);
    tcase_add_test(e, test_prevote_refused_for_a_leader_the_asker_lost_is_asked_again_soon);
    tcase_add_test(e, test_vote_is_refused_to_a_shorter_log_and_granted_to_an_equal_or_longer_one);
    tcase_add_test(e, test_vote_is_persisted_in_the_same_update_as_the_grant);
    suite_add_tcase(s, e);
    TCase *rep = tcase_create("replication");
    tcase_add_test(rep, test_hw_waits_until_the_leaders_epoch_start_entry_is_on_a_majority);
    tcase_add_test(rep, test_follower_truncates_to_the_leaders_end_of_the_diverging_epoch);
    tcase_add_test(rep, test_group_commit_appends_100_proposals_of_one_linger_window_as_one_update);
    tcase_add_test(rep, test_snapshot_and_fetch_snapshot_bring_a_far_behind_follower_up);
    tcase_add_test(rep, test_observer_never_votes_and_never_counts_for_the_hw);
    suite_add_tcase(s, rep);
    TCase *f = tcase_create("failures");
    tcase_add_test(f, test_fast_election_after_peer_down_happens_within_fast_election_max);
    tcase_add_test(f, test_followers_of_a_lost_leader_take_turns_by_voter_order);
    tcase_add_test(f, test_check_quorum_makes_a_cut_off_leader_resign);
    tcase_add_test(f, test_end_epoch_makes_the_first_successor_a_candidate_at_once);
    tcase_add_test(f, test_malformed_events_are_refused_with_an_empty_update);
    tcase_add_test(f, test_entries_snapshots_and_fetch_responses_over_the_public_limits_are_refused);
    suite_add_tcase(s, f);
    return s;
}

int main(void)
{
    return kl_check_run(raft_suite());
}
