/* sim_scenario.c — what one simulated run does: random faults, harsh faults, snapshot catch-up, deep divergence; always ending in heal + liveness. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "sim_cluster.h"

#define SIM_WAIT_LEADER_MS 15000 /* a scripted step waits this long for an election */
#define SIM_RANDOM_ROUNDS 3      /* fault phase + heal + liveness, this many times per seed */

static const char *const scenario_names[SIM_SCENARIO_COUNT] = {"random", "heal", "snapshot", "divergence"};
static const char *const bug_names[] = {"none", "vote-for-shorter-log", "commit-without-majority",
                                        "truncate-below-hw"};
#define N_BUGS ((int)(sizeof bug_names / sizeof bug_names[0]))

const char *sim_scenario_name(sim_scenario_t s)
{
    return s >= 0 && s < SIM_SCENARIO_COUNT ? scenario_names[s] : "?";
}

int sim_scenario_parse(const char *name, sim_scenario_t *out)
{
    for (int i = 0; i < SIM_SCENARIO_COUNT; i++)
        if (strcmp(name, scenario_names[i]) == 0) {
            *out = (sim_scenario_t)i;
            return 0;
        }
    return -1;
}

const char *sim_bug_name(raft_test_bug_t b)
{
    return (int)b >= 0 && (int)b < N_BUGS ? bug_names[b] : "?";
}

int sim_bug_parse(const char *name, raft_test_bug_t *out)
{
    for (int i = 0; i < N_BUGS; i++)
        if (strcmp(name, bug_names[i]) == 0) {
            *out = (raft_test_bug_t)i;
            return 0;
        }
    return -1;
}

int sim_seed_voters(uint64_t seed, int forced)
{
    return forced ? forced : (seed % 2 ? 5 : 3);
}

int sim_seed_observers(uint64_t seed, int voters, int forced)
{
    if (forced >= 0) return forced;
    return voters == 3 ? (int)((seed / 2) % 3) : 1 + (int)((seed / 2) % 2);
}

/* ---- helpers -------------------------------------------------------------- */

static sim_node_t *random_node(sim_t *s)
{
    return &s->nodes[sim_rnd(s, 0, s->n_nodes - 1)];
}

static void describe_nodes(sim_t *s, char *b, size_t cap)
{
    size_t k = 0;
    b[0] = 0;
    for (int i = 0; i < s->n_nodes && k + 1 < cap; i++) {
        sim_node_t *n = &s->nodes[i];
        if (n->r)
            k += (size_t)snprintf(b + k, cap - k, " n%d:%s/e%d/leader %d/HW %" PRId64 "/end %" PRId64 "%s;", n->id,
                                  raft_role_name(raft_role(n->r)), raft_epoch(n->r), raft_leader(n->r), n->hw,
                                  raft_log_end(n->r), n->paused_until ? "/paused" : "");
        else
            k += (size_t)snprintf(b + k, cap - k, " n%d:down;", n->id);
    }
}

/* A running leader in an epoch above `min_epoch`, waiting up to `bound` ms. */
static sim_node_t *wait_for_leader(sim_t *s, int32_t min_epoch, int64_t bound)
{
    int64_t deadline = s->now + bound;
    while (!s->failed) {
        sim_node_t *l = sim_leader(s);
        if (l && raft_epoch(l->r) > min_epoch) return l;
        if (s->now >= deadline) break;
        sim_run_until(s, s->now + 10);
    }
    if (!s->failed) {
        char b[600];
        describe_nodes(s, b, sizeof b);
        sim_fail(s, SIM_FAIL_LIVENESS, "leader-elected",
                 "no leader above epoch %d within %" PRId64 " ms in a quiet network:%s", min_epoch, bound, b);
    }
    return NULL;
}

static void background_load(sim_t *s, int propose_gap_max_ms, int snapshot_gap_max_ms)
{
    s->propose_gap_max_ms = propose_gap_max_ms;
    s->next_propose_at = propose_gap_max_ms > 0 ? s->now + sim_rnd(s, 1, propose_gap_max_ms) : -1;
    s->snapshot_gap_max_ms = snapshot_gap_max_ms;
    s->next_snapshot_at = snapshot_gap_max_ms > 0 ? s->now + sim_rnd(s, 1, snapshot_gap_max_ms) : -1;
}

/* ---- faults --------------------------------------------------------------- */

static void random_net(sim_t *s)
{
    s->net.drop_pm = (uint32_t)(sim_per_mille(s, 300) ? 0 : sim_rnd(s, 1, 100));
    s->net.dup_pm = (uint32_t)(sim_per_mille(s, 500) ? 0 : sim_rnd(s, 1, 50));
    s->net.slow_pm = (uint32_t)(sim_per_mille(s, 500) ? 0 : sim_rnd(s, 1, 20));
    s->net.delay_min_ms = (int)sim_rnd(s, 0, 2);
    s->net.delay_max_ms = s->net.delay_min_ms + (int)sim_rnd(s, 1, 60);
    s->net.slow_max_ms = s->net.delay_max_ms + (int)sim_rnd(s, 50, sim_per_mille(s, 200) ? 4000 : 1000);
    sim_trace(s, "network: drop %u‰, duplicate %u‰, delay %d..%d ms, %u‰ slow up to %d ms", s->net.drop_pm,
              s->net.dup_pm, s->net.delay_min_ms, s->net.delay_max_ms, s->net.slow_pm, s->net.slow_max_ms);
}

static void split_halves(sim_t *s)
{
    int side[SIM_MAX_NODES], n0 = 0;
    for (int i = 0; i < s->n_nodes; i++) n0 += (side[i] = (int)sim_rnd(s, 0, 1)) == 0;
    if (n0 == 0 || n0 == s->n_nodes) side[sim_rnd(s, 0, s->n_nodes - 1)] ^= 1;
    char b[64] = "";
    for (int i = 0, k = 0; i < s->n_nodes; i++)
        if (side[i] == 0) k += snprintf(b + k, sizeof b - (size_t)k, " n%d", s->nodes[i].id);
    sim_trace(s, "network splits:%s | the rest", b);
    for (int i = 0; i < s->n_nodes; i++)
        for (int j = 0; j < s->n_nodes; j++)
            if (side[i] != side[j]) sim_cut(s, i, j, true);
}

static void one_way(sim_t *s)
{
    int i = (int)sim_rnd(s, 0, s->n_nodes - 1), j = (int)sim_rnd(s, 0, s->n_nodes - 2);
    if (j >= i) j++;
    int kind = (int)sim_rnd(s, 0, 2);
    if (kind == 0) {
        sim_trace(s, "one-way: n%d can no longer reach n%d (the reverse works)", s->nodes[i].id, s->nodes[j].id);
        sim_cut(s, i, j, false);
    } else {
        sim_trace(s, "one-way: n%d can %s nobody", s->nodes[i].id, kind == 1 ? "send to" : "receive from");
        for (int k = 0; k < s->n_nodes; k++)
            if (kind == 1)
                sim_cut(s, i, k, false);
            else
                sim_cut(s, k, i, false);
    }
}

static void one_fault(sim_t *s)
{
    int64_t w = sim_rnd(s, 0, 99);
    sim_node_t *n = random_node(s);
    if (w < 14) {
        int64_t down = sim_per_mille(s, 100) ? sim_rnd(s, 8000, 15000) : sim_rnd(s, 100, 6000);
        sim_crash(s, n, s->now + down);
    } else if (w < 19) {
        sim_node_t *l = sim_leader(s);
        if (l && sim_per_mille(s, 700)) n = l;
        int64_t stop = s->now + sim_rnd(s, 5, 300);
        sim_shutdown(s, n, stop, stop + sim_rnd(s, 100, 3000));
    } else if (w < 29) {
        sim_pause(s, n, s->now + sim_rnd(s, 50, 5000));
    } else if (w < 37) {
        sim_isolate(s, n->idx);
    } else if (w < 44) {
        split_halves(s);
    } else if (w < 52) {
        one_way(s);
    } else if (w < 70) {
        sim_heal_links(s);
    } else if (w < 84) {
        random_net(s);
    } else if (w < 88) {
        s->disk_slow = !s->disk_slow;
        sim_trace(s, "disks are %s", s->disk_slow ? "slow" : "fast again");
    } else if (w < 92) {
        if (!n->r) sim_restart(s, n);
    } else if (w < 96) {
        sim_reset_connection(s, n->idx, random_node(s)->idx);
    } else {
        sim_take_snapshot(s, n);
    }
}

static void random_faults(sim_t *s, int64_t until)
{
    while (!s->failed && s->now < until) {
        int64_t next = s->now + sim_rnd(s, 50, 1500);
        sim_run_until(s, next < until ? next : until);
        if (!s->failed && s->now < until) one_fault(s);
    }
}

/* ---- liveness: heal everything, then a leader and a fresh commit ---------- */

static bool caught_up(sim_t *s, bool voters, int64_t offset)
{
    for (int i = 0; i < s->n_nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        if (n->voter == voters && (!n->r || n->hw <= offset)) return false;
    }
    return true;
}

static void heal_and_require_liveness(sim_t *s)
{
    if (s->failed) return;
    sim_trace(s, "== heal everything; a leader and a commit on every node within %d ms", SIM_LIVENESS_MS);
    sim_heal_all(s);
    s->next_propose_at = -1; /* only the marker proposal from here on */
    int64_t start = s->now, deadline = s->now + SIM_LIVENESS_MS, leader_at = -1, marker = -1;
    int32_t m_epoch = 0;
    uint64_t m_hash = 0;
    bool voters_done = false;
    while (!s->failed && s->now < deadline) {
        sim_run_until(s, s->now + 10);
        sim_node_t *l = sim_leader(s);
        if (l && leader_at < 0) leader_at = s->now;
        if (marker >= 0 && sim_is_committed_as(s, marker, m_epoch, m_hash)) {
            voters_done = voters_done || caught_up(s, true, marker);
            if (voters_done && caught_up(s, false, marker)) {
                sim_trace(s, "== live: marker at offset %" PRId64 " (epoch %d) committed everywhere after %" PRId64
                             " ms", marker, m_epoch, s->now - start);
                return;
            }
        }
        if (l && (marker < 0 || raft_epoch(l->r) != m_epoch)) {
            uint64_t h;
            int32_t e;
            int64_t off = sim_propose(s, l, 1, &h, &e);
            if (off >= 0) {
                marker = off;
                m_epoch = e;
                m_hash = h;
            }
        }
    }
    if (s->failed) return;
    char b[600];
    describe_nodes(s, b, sizeof b);
    if (leader_at < 0)
        sim_fail(s, SIM_FAIL_LIVENESS, "leader-elected-after-heal",
                 "bound hit: no leader within %d ms after healing at t=%" PRId64 ":%s", SIM_LIVENESS_MS, start, b);
    else if (!voters_done)
        sim_fail(s, SIM_FAIL_LIVENESS, "commit-after-heal",
                 "bound hit: a leader existed %" PRId64 " ms after healing, but the proposal at offset %" PRId64
                 " (epoch %d) was not committed on every voter within %d ms:%s",
                 leader_at - start, marker, m_epoch, SIM_LIVENESS_MS, b);
    else
        sim_fail(s, SIM_FAIL_LIVENESS, "observers-catch-up-after-heal",
                 "bound hit: voters committed offset %" PRId64 " but an observer did not reach it within %d ms:%s",
                 marker, SIM_LIVENESS_MS, b);
}

/* ---- scenarios ------------------------------------------------------------ */

static void run_random(sim_t *s)
{
    for (int round = 0; round < SIM_RANDOM_ROUNDS && !s->failed; round++) {
        background_load(s, (int)sim_rnd(s, 5, 300), (int)sim_rnd(s, 500, 5000));
        random_net(s);
        random_faults(s, s->now + sim_rnd(s, 8000, 20000));
        heal_and_require_liveness(s);
    }
}

/* Heavy faults right up to the heal: a majority down, a paused node, a split. */
static void run_heal(sim_t *s)
{
    background_load(s, (int)sim_rnd(s, 20, 200), (int)sim_rnd(s, 500, 3000));
    random_net(s);
    random_faults(s, s->now + sim_rnd(s, 5000, 12000));
    if (s->failed) return;
    int crash = s->n_voters / 2 + 1, crashed = 0;
    while (crashed < crash) {
        sim_node_t *n = &s->nodes[sim_rnd(s, 0, s->n_voters - 1)];
        if (n->r) sim_crash(s, n, -1);
        crashed = 0;
        for (int i = 0; i < s->n_voters; i++) crashed += !s->nodes[i].r;
    }
    sim_pause(s, random_node(s), s->now + 60000);
    split_halves(s);
    sim_run_until(s, s->now + sim_rnd(s, 500, 4000));
    heal_and_require_liveness(s);
}

/* A follower misses so much that the leader's log starts after its end: it
 * must catch up through FetchSnapshot (DESIGN.md §2 Snapshots). */
static void run_snapshot(sim_t *s)
{
    background_load(s, 30, 800);
    sim_node_t *l = wait_for_leader(s, 0, SIM_WAIT_LEADER_MS);
    if (!l) return;
    sim_run_until(s, s->now + 1000);
    l = sim_leader(s);
    if (!l) return;
    sim_node_t *f = &s->nodes[(l->idx + 1 + sim_rnd(s, 0, s->n_voters - 2)) % s->n_voters];
    bool crash = s->p.seed % 2;
    if (crash)
        sim_crash(s, f, -1);
    else
        sim_isolate(s, f->idx);
    sim_run_until(s, s->now + 6000);
    for (int64_t until = s->now + SIM_WAIT_LEADER_MS; !s->failed && s->now < until; sim_run_until(s, s->now + 100)) {
        for (int i = 0; i < s->n_nodes; i++) sim_take_snapshot(s, &s->nodes[i]);
        l = sim_leader(s);
        if (l && raft_log_start(l->r) > sim_disk_end(&f->disk)) break;
    }
    if (s->failed) return;
    if (!l || raft_log_start(l->r) <= sim_disk_end(&f->disk)) {
        sim_fail(s, SIM_FAIL_SCENARIO, "scenario-snapshot-ahead",
                 "the leader's log does not start past n%d's end %" PRId64 " (leader %d, log start %" PRId64 ")",
                 f->id, sim_disk_end(&f->disk), l ? l->id : -1, l ? raft_log_start(l->r) : -1);
        return;
    }
    int installs = f->snapshot_installs;
    int64_t target = raft_high_watermark(l->r), deadline = s->now + SIM_LIVENESS_MS;
    sim_trace(s, "== n%d rejoins %" PRId64 " entries behind the leader's snapshot at %" PRId64, f->id,
              raft_log_start(l->r) - sim_disk_end(&f->disk), raft_log_start(l->r));
    sim_heal_all(s);
    while (!s->failed && (!f->r || f->hw < target) && s->now < deadline) sim_run_until(s, s->now + 10);
    if (s->failed) return;
    if (!f->r || f->hw < target)
        sim_fail(s, SIM_FAIL_LIVENESS, "far-behind-follower-catches-up",
                 "bound hit: n%d reached HW %" PRId64 " of %" PRId64 " within %d ms", f->id, f->hw, target,
                 SIM_LIVENESS_MS);
    else if (f->snapshot_installs == installs)
        sim_fail(s, SIM_FAIL_SCENARIO, "catch-up-uses-snapshot",
                 "n%d caught up from below the leader's log start without installing a snapshot", f->id);
    heal_and_require_liveness(s);
}

/* The old leader (with a follower, in a 5-voter cluster) is cut off holding
 * uncommitted entries of its epoch while the majority elects a new leader and
 * commits more entries at the same offsets; after healing the old side must
 * truncate them (DESIGN.md §2: diverging epoch and end offset). */
static void run_divergence(sim_t *s)
{
    background_load(s, 100, 0);
    sim_node_t *l1 = wait_for_leader(s, 0, SIM_WAIT_LEADER_MS);
    if (!l1) return;
    sim_run_until(s, s->now + 1500);
    s->next_propose_at = -1;
    sim_run_until(s, s->now + 300);
    l1 = sim_leader(s);
    if (!l1) return;
    int32_t e1 = raft_epoch(l1->r);
    bool minority[SIM_MAX_NODES] = {false};
    minority[l1->idx] = true;
    if (s->n_voters == 5) minority[(l1->idx + 1) % s->n_voters] = true;
    for (int i = s->n_voters; i < s->n_nodes; i++) minority[i] = sim_per_mille(s, 500);
    sim_trace(s, "== old leader n%d of epoch %d is cut off with a minority", l1->id, e1);
    for (int i = 0; i < s->n_nodes; i++)
        for (int j = 0; j < s->n_nodes; j++)
            if (minority[i] != minority[j]) sim_cut(s, i, j, true);
    int want = (int)sim_rnd(s, 20, 60), got = 0;
    while (got < want && !s->failed && sim_node_running(l1) && raft_role(l1->r) == RAFT_LEADER) {
        if (sim_propose(s, l1, SIM_PROPOSE_MAX, NULL, NULL) >= 0) got += SIM_PROPOSE_MAX;
        sim_run_until(s, s->now + 5);
    }
    sim_run_until(s, s->now + 20); /* the last proposals leave the linger buffer */
    int64_t stray_end = l1->r ? raft_log_end(l1->r) : 0;
    if (s->failed) return;
    if (got == 0) {
        sim_fail(s, SIM_FAIL_SCENARIO, "scenario-stray-entries", "the cut-off leader n%d accepted no proposals",
                 l1->id);
        return;
    }
    /* the majority side (re-)elects leaders and commits past the stray entries */
    int64_t deadline = s->now + SIM_WAIT_LEADER_MS, hw = 0;
    int32_t l2 = -1;
    while (!s->failed && s->now < deadline && hw < stray_end + 10) {
        for (int i = 0; i < s->n_voters; i++) {
            sim_node_t *n = &s->nodes[i];
            if (minority[i] || !sim_node_running(n)) continue;
            if (n->hw > hw) hw = n->hw;
            if (raft_role(n->r) == RAFT_LEADER && raft_epoch(n->r) > e1) {
                l2 = n->id;
                sim_propose(s, n, SIM_PROPOSE_MAX, NULL, NULL);
            }
        }
        sim_run_until(s, s->now + 20);
    }
    if (s->failed) return;
    if (hw < stray_end + 10) {
        sim_fail(s, SIM_FAIL_LIVENESS, "majority-commits",
                 "bound hit: within %d ms the majority side (last leader %d) committed only up to %" PRId64
                 " (needed %" PRId64 ")",
                 SIM_WAIT_LEADER_MS, l2, hw, stray_end + 10);
        return;
    }
    int64_t truncated = l1->truncated_entries;
    sim_trace(s, "== old leader n%d holds stray entries up to %" PRId64 "; the majority committed to %" PRId64, l1->id,
              stray_end, hw);
    heal_and_require_liveness(s);
    if (!s->failed && l1->truncated_entries == truncated)
        sim_fail(s, SIM_FAIL_SCENARIO, "old-leader-truncates-stray-entries",
                 "old leader n%d never truncated the uncommitted entries it appended in epoch %d", l1->id, e1);
}

void sim_run(const sim_params_t *p, sim_result_t *res)
{
    sim_t s;
    sim_init(&s, p, res);
    if (!s.failed) {
        switch (p->scenario) {
        case SIM_SCENARIO_RANDOM: run_random(&s); break;
        case SIM_SCENARIO_HEAL: run_heal(&s); break;
        case SIM_SCENARIO_SNAPSHOT: run_snapshot(&s); break;
        case SIM_SCENARIO_DIVERGENCE: run_divergence(&s); break;
        case SIM_SCENARIO_COUNT: break;
        }
    }
    if (!s.failed) sim_check_full_scan(&s);
    sim_destroy(&s);
}
