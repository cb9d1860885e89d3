/* raft.c — the raft core's lifecycle, event dispatch, update building and role
 * transitions: the KIP-595 KRaft state machine with KIP-996 pre-vote (DESIGN.md §2). */
#include "keel/raft.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "raft_internal.h"

#define RAFT_MAX_TIMEOUT_MS 86400000 /* config sanity bound: one day */
#define RAFT_STALL_MARGIN_MS 200     /* default fetch stall = long poll + this: the round trip
                                      * and a leader briefly busy (fsync, scheduling) */

/* ---- names and defaults ------------------------------------------------------ */

const char *raft_role_name(raft_role_t role)
{
    switch (role) {
    case RAFT_UNATTACHED: return "unattached";
    case RAFT_FOLLOWER: return "follower";
    case RAFT_PROSPECTIVE: return "prospective";
    case RAFT_CANDIDATE: return "candidate";
    case RAFT_LEADER: return "leader";
    case RAFT_RESIGNED: return "resigned";
    case RAFT_OBSERVER: return "observer";
    }
    return "unknown";
}

const char *raft_msg_type_name(raft_msg_type_t t)
{
    switch (t) {
    case RAFT_MSG_VOTE_REQ: return "Vote";
    case RAFT_MSG_VOTE_RESP: return "VoteResponse";
    case RAFT_MSG_BEGIN_EPOCH_REQ: return "BeginQuorumEpoch";
    case RAFT_MSG_BEGIN_EPOCH_RESP: return "BeginQuorumEpochResponse";
    case RAFT_MSG_END_EPOCH_REQ: return "EndQuorumEpoch";
    case RAFT_MSG_END_EPOCH_RESP: return "EndQuorumEpochResponse";
    case RAFT_MSG_FETCH_REQ: return "Fetch";
    case RAFT_MSG_FETCH_RESP: return "FetchResponse";
    case RAFT_MSG_FETCH_SNAPSHOT_REQ: return "FetchSnapshot";
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: return "FetchSnapshotResponse";
    }
    return "unknown";
}

void raft_config_defaults(raft_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->election_timeout_ms = 1000;
    cfg->fetch_timeout_ms = 2000;
    cfg->election_backoff_max_ms = 1000;
    cfg->append_linger_ms = 5;
    cfg->fast_election_min_ms = 20;
    cfg->fast_election_max_ms = 120;
    cfg->fetch_max_wait_ms = 500;
    cfg->fetch_stall_ms = cfg->fetch_max_wait_ms + RAFT_STALL_MARGIN_MS;
    cfg->request_timeout_ms = 2500;
    cfg->fetch_max_bytes = 1u << 20;
    cfg->max_batch_entries = 1024;
    cfg->snapshot_chunk_bytes = 64u << 10;
}

/* ---- small shared helpers ---------------------------------------------------- */

int raft_voter_index(const raft_t *r, int32_t id)
{
    for (int i = 0; i < r->cfg.n_voters; i++)
        if (r->cfg.voters[i] == id) return i;
    return -1;
}

/* The largest value that a majority of voters reach (v[i] belongs to voter i):
 * the majority-th largest. Reorders v. */
int64_t raft_majority_value(const raft_t *r, int64_t *v)
{
    for (int i = 0; i < r->majority; i++) /* partial selection sort, descending */
        for (int j = i + 1; j < r->cfg.n_voters; j++)
            if (v[j] > v[i]) {
                const int64_t t = v[i];
                v[i] = v[j];
                v[j] = t;
            }
    return v[r->majority - 1];
}

bool raft_is_voter(const raft_t *r) { return r->self_idx >= 0; }

/* The leader of this epoch, also once it resigned: it still answers fetches so
 * that its successors can catch up (DESIGN.md §2 graceful shutdown). */
bool raft_serves_fetches(const raft_t *r) { return r->role == RAFT_LEADER || r->role == RAFT_RESIGNED; }

bool raft_can_campaign(const raft_t *r) { return raft_is_voter(r) && !r->stopping && r->epoch < INT32_MAX; }

/* Raft §5.2: randomised in [T, 2T) so that candidates rarely collide. */
int64_t raft_election_timeout(raft_t *r)
{
    return kl_rng_range(&r->rng, r->cfg.election_timeout_ms, 2 * (int64_t)r->cfg.election_timeout_ms);
}

/* DESIGN.md §2 fetch timeout, plus jitter. Followers of one leader get its
 * responses at nearly the same moment, so with a fixed timeout they all time
 * out in the same millisecond when it pauses (SIGSTOP), go prospective
 * together, grant each other's pre-votes (a prospective has no live leader),
 * and then split the real vote. A random extra of up to half an election
 * timeout lets the first one finish its pre-vote and election (a few round
 * trips) before the next one wakes. has_live_leader() keeps the plain fetch
 * timeout, so by then the others no longer believe in the leader and grant. */
int64_t raft_fetch_deadline(raft_t *r)
{
    const int64_t jitter = kl_rng_range(&r->rng, 0, r->cfg.election_timeout_ms / RAFT_FETCH_JITTER_DIV + 1);
    return r->now + r->cfg.fetch_timeout_ms + jitter;
}

/* DESIGN.md §2 "faster than KRaft on crashes": the short jittered delay. */
int64_t raft_fast_election_delay(raft_t *r)
{
    return kl_rng_range(&r->rng, r->cfg.fast_election_min_ms, r->cfg.fast_election_max_ms);
}

/* The fast-election delay of a follower whose leader died or stalled. All
 * followers notice at about the same moment (EOF on every connection at once;
 * fetches the leader answered together going overdue together). Two that go
 * prospective within a round trip of each other grant each other's pre-votes
 * and split the real vote, which then costs a whole election timeout. So the
 * range is cut into one slot per possible successor, in voter order without
 * the leader (as EndQuorumEpoch staggers its successors), and each waits a
 * random time within the first half of its own slot: consecutive ones start
 * at least half a slot (25 ms by default with 3 voters) apart. */
static int64_t failover_delay(raft_t *r)
{
    const int64_t min = r->cfg.fast_election_min_ms, slots = r->cfg.n_voters - 1;
    const int64_t slot = slots > 0 ? (r->cfg.fast_election_max_ms - min) / slots : 0;
    int rank = 0;
    for (int i = 0; i < r->self_idx; i++) rank += r->cfg.voters[i] != r->leader_id;
    return min + rank * slot + kl_rng_range(&r->rng, 0, slot / 2 + 1);
}

int32_t raft_durable_last_epoch(const raft_t *r) { return raft_memlog_epoch_before(&r->log, r->log.durable_end); }

void raft_reset_peer(raft_peer_t *p, int32_t id)
{
    memset(p, 0, sizeof *p);
    p->id = id;
    p->end_offset = -1;
    p->last_fetch_ms = -1;
    p->caught_up_ms = -1;
    p->epoch_sent_ms = -1;
    p->hw_sent = -1;
    p->reask_ms = RAFT_NEVER;
}

static void reset_peers(raft_t *r)
{
    for (int i = 0; i < r->cfg.n_voters; i++) raft_reset_peer(&r->voters[i], r->cfg.voters[i]);
    r->n_observers = 0;
}

void raft_note(raft_t *r, int level, const char *fmt, ...)
{
    raft_update_t *out = r->out;
    if (!out || out->n_notes >= RAFT_MAX_NOTES) return;
    raft_note_t *n = &out->notes[out->n_notes++];
    n->level = level;
    if (out->n_notes == RAFT_MAX_NOTES) {
        snprintf(n->text, sizeof n->text, "(further notes of this step dropped)");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->text, sizeof n->text, fmt, ap);
    va_end(ap);
}

/* ---- outgoing messages ---------------------------------------------------------- */

/* A message that cannot be queued for lack of memory is lost, as a network may
 * lose it; every request in the protocol is retried. */
static raft_msg_t *queue_msg(raft_t *r)
{
    if (r->n_msgs == r->cap_msgs) {
        uint32_t cap = r->cap_msgs ? 2 * r->cap_msgs : 16;
        raft_msg_t *m = realloc(r->msgs, cap * sizeof *m);
        if (m) r->msgs = m;
        int64_t *f = m ? realloc(r->msg_entries_from, cap * sizeof *f) : NULL;
        if (f) r->msg_entries_from = f;
        if (!m || !f) {
            r->dropped_msgs++;
            memset(&r->scratch_msg, 0, sizeof r->scratch_msg);
            return &r->scratch_msg;
        }
        r->cap_msgs = cap;
    }
    raft_msg_t *m = &r->msgs[r->n_msgs];
    memset(m, 0, sizeof *m);
    r->msg_entries_from[r->n_msgs++] = -1;
    return m;
}

static raft_msg_t *new_msg(raft_t *r, raft_msg_type_t type, int32_t to)
{
    raft_msg_t *m = queue_msg(r);
    m->type = type;
    m->from = r->cfg.node_id;
    m->to = to;
    m->epoch = r->epoch;
    m->leader_id = r->leader_id;
    return m;
}

raft_msg_t *raft_send_request(raft_t *r, raft_msg_type_t type, int32_t to)
{
    raft_msg_t *m = new_msg(r, type, to);
    m->rpc_id = r->next_rpc++;
    return m;
}

raft_msg_t *raft_send_response(raft_t *r, int32_t to, uint64_t rpc_id, raft_msg_type_t type, int16_t error)
{
    raft_msg_t *m = new_msg(r, type, to);
    m->rpc_id = rpc_id;
    m->error = error;
    return m;
}

/* Entry pointers are resolved when the update is finished: the log array may
 * still move while the step runs. */
void raft_attach_entries(raft_t *r, raft_msg_t *m, int64_t from, int n)
{
    m->u.fetch_resp.n_entries = n;
    if (m != &r->scratch_msg && n > 0) r->msg_entries_from[m - r->msgs] = from;
}

void raft_emit_from(raft_t *r, int64_t offset)
{
    if (r->emit_from < 0) r->emit_from = offset;
}

/* ---- role transitions: the one place role, epoch and leader change -------------- */

static void leave_leadership(raft_t *r)
{
    raft_drop_pending(r);
    raft_answer_held_fetches(r, true); /* now with NOT_LEADER and the new epoch as hints */
    reset_peers(r);
}

static void drop_snapshot_fetch(raft_t *r)
{
    free(r->snapfetch.buf);
    memset(&r->snapfetch, 0, sizeof r->snapfetch);
}

/* KIP-595 quorum state: a new epoch forgets the vote; a new role or leader
 * forgets the timers, the fetch in flight and the round; only a new leader or
 * epoch forgets what we knew of the leader's health (KIP-996: a lost pre-vote
 * returns to the same leader, which has not become any more alive meanwhile).
 * Notes are the caller's (it knows why). */
static void set_state(raft_t *r, raft_role_t role, int32_t epoch, int32_t leader)
{
    const bool was_serving = raft_serves_fetches(r);
    const bool leader_changed = epoch != r->epoch || leader != r->leader_id;
    KL_ASSERT(epoch >= r->epoch);
    if (epoch != r->epoch) {
        r->epoch = epoch;
        r->voted_for = RAFT_NO_NODE;
        r->leader_resigned = false;
    }
    r->role = raft_is_voter(r) ? role : RAFT_OBSERVER;
    r->leader_id = leader;
    r->backing_off = false;
    r->timer_ms = RAFT_NEVER;
    r->inflight.active = false; /* its answer would describe the old state */
    r->fetch_ready_ms = r->now;
    if (leader_changed) {
        drop_snapshot_fetch(r);
        r->leader_hw = r->hw;
        r->leader_down = false;
        r->leader_contact_ms = RAFT_NO_CONTACT;
    }
    if (was_serving && !raft_serves_fetches(r)) leave_leadership(r);
}

void raft_become_unattached(raft_t *r, int32_t epoch, const char *why)
{
    set_state(r, RAFT_UNATTACHED, epoch, RAFT_NO_NODE);
    if (raft_can_campaign(r)) r->timer_ms = r->now + raft_election_timeout(r);
    raft_note(r, 1, "%s in epoch %d without a leader (%s)", raft_role_name(r->role), epoch, why);
}

/* Following a leader is not hearing from it: KIP-996 counts only its own
 * successful fetch responses and BeginQuorumEpoch (raft_leader_contact). A
 * leader learnt from another node's message (or from disk) may be dead; until
 * it answers us we grant pre-votes, or its death would cost the others a whole
 * election timeout waiting for our refusal to be outvoted. */
void raft_become_follower(raft_t *r, int32_t epoch, int32_t leader, const char *why)
{
    KL_ASSERT(leader != r->cfg.node_id && raft_voter_index(r, leader) >= 0);
    set_state(r, RAFT_FOLLOWER, epoch, leader);
    /* a voter goes prospective when this expires, an observer forgets the leader */
    if (!r->stopping) r->timer_ms = raft_fetch_deadline(r);
    raft_note(r, 1, "%s of leader %d in epoch %d (%s)", raft_role_name(r->role), leader, epoch, why);
}

void raft_become_prospective(raft_t *r, const char *why)
{
    KL_ASSERT(raft_can_campaign(r));
    /* KIP-996: epoch, vote and last known leader stay; a lost pre-vote returns to that leader */
    set_state(r, RAFT_PROSPECTIVE, r->epoch, r->leader_id);
    raft_start_round(r, why);
}

void raft_become_candidate(raft_t *r, const char *why)
{
    KL_ASSERT(raft_can_campaign(r));
    set_state(r, RAFT_CANDIDATE, r->epoch + 1, RAFT_NO_NODE);
    r->voted_for = r->cfg.node_id; /* persisted in the update that carries the requests */
    raft_start_round(r, why);
}

/* The leader-change control record, format in raft_internal.h. */
static uint32_t encode_leader_change(const raft_t *r, uint8_t *p)
{
    p[0] = RAFT_LEADER_CHANGE_VERSION;
    kl_put_be32(p + 1, (uint32_t)r->cfg.node_id);
    kl_put_be32(p + 5, (uint32_t)r->epoch);
    p[9] = (uint8_t)r->cfg.n_voters;
    for (int i = 0; i < r->cfg.n_voters; i++) kl_put_be32(p + 10 + 4 * i, (uint32_t)r->cfg.voters[i]);
    return 10 + 4 * (uint32_t)r->cfg.n_voters;
}

void raft_become_leader(raft_t *r)
{
    int votes = 0;
    for (int i = 0; i < r->cfg.n_voters; i++) votes += r->voters[i].vote == RAFT_VOTE_GRANTED;

    /* KIP-595: the new leader first appends a leader-change record in its epoch;
     * the HW moves only once that record is committed (DESIGN.md §2). */
    uint8_t rec[RAFT_LEADER_CHANGE_MAX_LEN];
    raft_entry_t e = {.epoch = r->epoch, .control = true, .len = encode_leader_change(r, rec), .data = rec};
    if (raft_memlog_append_copy(&r->log, &e) != 0) {
        raft_note(r, 3, "out of memory appending the leader-change record; staying candidate");
        return;
    }
    set_state(r, RAFT_LEADER, r->epoch, r->cfg.node_id);
    r->epoch_start = raft_memlog_end(&r->log) - 1;
    raft_emit_from(r, r->epoch_start);
    r->leader_since_ms = r->now;
    reset_peers(r);
    for (int i = 0; i < r->cfg.n_voters; i++) {
        if (i == r->self_idx) continue;
        raft_send_request(r, RAFT_MSG_BEGIN_EPOCH_REQ, r->voters[i].id);
        r->voters[i].epoch_sent_ms = r->now;
    }
    raft_note(r, 1, "became leader in epoch %d (votes %d/%d)", r->epoch, votes, r->cfg.n_voters);
    raft_update_hw(r);
}

void raft_resign(raft_t *r, bool shutdown, const char *why)
{
    KL_ASSERT(r->role == RAFT_LEADER);
    raft_flush_pending(r); /* their offsets were handed out in this epoch: keep them, they may still commit */
    set_state(r, RAFT_RESIGNED, r->epoch, r->cfg.node_id);
    r->resigned_check_quorum = !shutdown;
    /* check-quorum: UNATTACHED once every voter acknowledged, or after T */
    if (!shutdown) r->timer_ms = r->now + r->cfg.election_timeout_ms;
    for (int i = 0; i < r->cfg.n_voters; i++) {
        if (i == r->self_idx) continue;
        r->voters[i].epoch_acked = false;
        raft_send_end_epoch(r, i);
    }
    raft_note(r, shutdown ? 1 : 2, "resigned leadership of epoch %d (%s)", r->epoch, why);
}

void raft_forget_leader(raft_t *r, const char *why)
{
    if (r->role != RAFT_OBSERVER || r->leader_id == RAFT_NO_NODE) return;
    const int32_t old = r->leader_id;
    r->rr = (raft_voter_index(r, old) + 1) % r->cfg.n_voters; /* ask the voters in turn, from the next one */
    set_state(r, RAFT_OBSERVER, r->epoch, RAFT_NO_NODE);
    raft_note(r, 1, "observer forgets leader %d of epoch %d (%s)", old, r->epoch, why);
}

/* DESIGN.md §2 "faster than KRaft on crashes": the follower goes prospective
 * after a short jittered delay instead of the whole fetch timeout. */
void raft_leader_lost(raft_t *r, const char *why)
{
    if (r->role != RAFT_FOLLOWER || r->leader_down) return;
    r->leader_down = true;
    if (!raft_can_campaign(r)) return;
    const int64_t at = r->now + failover_delay(r);
    if (at < r->timer_ms) r->timer_ms = at;
    raft_note(r, 1, "%s (leader %d, epoch %d); pre-vote in %lld ms", why, r->leader_id, r->epoch,
              (long long)(r->timer_ms - r->now));
}

/* Our fetch to the leader is overdue (raft_leader_fetch_overdue, DESIGN.md §2
 * long poll bound): the leader stalled (SIGSTOP, hung) without its connection
 * breaking. DESIGN.md §2 "faster than KRaft on crashes": handled like a broken
 * connection, so a paused leader is replaced within about fetch_stall_ms plus
 * a fast-election delay rather than the whole fetch timeout. The fetch stays in
 * flight: if the leader was merely slow, its answer still arrives and counts as
 * contact, which calls the election off. One that is slow for longer than the
 * margin can cost one needless election; votes, logs and the HW are untouched. */
void raft_leader_stalled(raft_t *r)
{
    if (r->role == RAFT_FOLLOWER && r->leader_down) return; /* known already */
    char why[96];
    snprintf(why, sizeof why, "leader answered no fetch for %d ms", r->cfg.fetch_stall_ms);
    if (r->role == RAFT_FOLLOWER) raft_leader_lost(r, why);
    else if (r->role == RAFT_OBSERVER) raft_forget_leader(r, why);
}

/* A successful fetch (or BeginQuorumEpoch) from the leader: it is alive. */
void raft_leader_contact(raft_t *r)
{
    r->leader_contact_ms = r->now;
    r->leader_down = false;
    if (r->stopping) return;
    if (r->role == RAFT_OBSERVER || (r->role == RAFT_FOLLOWER && !r->leader_resigned))
        r->timer_ms = raft_fetch_deadline(r);
}

/* KIP-595: every message carries its sender's epoch and leader. A newer epoch
 * moves us into it at once, as follower if the sender names the leader; a
 * leader of our own epoch that we did not know is adopted. */
static void observe(raft_t *r, const raft_msg_t *m)
{
    /* KIP-996: a pre-vote proposes epoch+1; its sender is still in epoch-1 */
    const int32_t epoch =
        m->type == RAFT_MSG_VOTE_REQ && m->u.vote_req.pre_vote ? m->epoch - 1 : m->epoch;
    const int32_t leader = m->leader_id;
    const bool names_leader = leader != RAFT_NO_NODE && leader != r->cfg.node_id && raft_voter_index(r, leader) >= 0;
    char why[64];
    snprintf(why, sizeof why, "%s from %d", raft_msg_type_name(m->type), m->from);
    if (epoch > r->epoch) {
        if (names_leader) raft_become_follower(r, epoch, leader, why);
        else raft_become_unattached(r, epoch, why);
    } else if (epoch == r->epoch && names_leader && r->leader_id == RAFT_NO_NODE &&
               (r->role == RAFT_UNATTACHED || r->role == RAFT_PROSPECTIVE || r->role == RAFT_CANDIDATE ||
                r->role == RAFT_OBSERVER)) {
        raft_become_follower(r, epoch, leader, why);
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

static bool config_ok(const raft_config_t *c)
{
    if (c->node_id < 0 || c->n_voters < 1 || c->n_voters > RAFT_MAX_VOTERS) return false;
    for (int i = 0; i < c->n_voters; i++) {
        if (c->voters[i] < 0) return false;
        for (int j = 0; j < i; j++)
            if (c->voters[j] == c->voters[i]) return false;
    }
    const int pos[] = {c->election_timeout_ms, c->fetch_timeout_ms, c->request_timeout_ms, c->fast_election_max_ms};
    const int nonneg[] = {c->election_backoff_max_ms, c->append_linger_ms, c->fetch_max_wait_ms,
                          c->fast_election_min_ms, c->fetch_stall_ms};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i] <= 0 || pos[i] > RAFT_MAX_TIMEOUT_MS) return false;
    for (size_t i = 0; i < sizeof nonneg / sizeof nonneg[0]; i++)
        if (nonneg[i] < 0 || nonneg[i] > RAFT_MAX_TIMEOUT_MS) return false;
    /* a healthy leader may park a fetch for the whole long poll: a shorter stall
     * time would call it stalled on every idle fetch */
    if (c->fetch_stall_ms && c->fetch_stall_ms <= c->fetch_max_wait_ms) return false;
    /* likewise a fetch retried before the long poll ends would never be answered */
    if (c->request_timeout_ms <= c->fetch_max_wait_ms) return false;
    if (c->fast_election_min_ms > c->fast_election_max_ms) return false;
    if (!c->fetch_max_bytes || !c->max_batch_entries || !c->snapshot_chunk_bytes) return false;
    return c->test_bug >= RAFT_BUG_NONE && c->test_bug <= RAFT_BUG_TRUNCATE_BELOW_HW;
}

static bool restore_ok(const raft_restore_t *rs)
{
    const raft_hard_state_t *hs = &rs->hard_state;
    const raft_snapshot_id_t *s = &rs->snapshot_id;
    if (hs->epoch < 0 || hs->voted_for < RAFT_NO_NODE || hs->leader_id < RAFT_NO_NODE) return false;
    if (s->end_offset < 0 || s->end_offset > RAFT_MAX_OFFSET || s->last_epoch < 0 || s->last_epoch > hs->epoch)
        return false;
    if (s->end_offset == 0 && (s->last_epoch != 0 || rs->snapshot_len != 0)) return false;
    if (rs->snapshot_len > RAFT_MAX_SNAPSHOT_BYTES || (rs->snapshot_len && !rs->snapshot_data)) return false;
    if (rs->n_entries < 0 || (rs->n_entries && !rs->entries)) return false;
    if (s->end_offset + rs->n_entries > RAFT_MAX_OFFSET) return false;
    int32_t prev = s->last_epoch;
    for (int i = 0; i < rs->n_entries; i++) {
        const raft_entry_t *e = &rs->entries[i];
        /* gapless after the snapshot, epochs non-decreasing and never ahead of the quorum state */
        if (e->offset != s->end_offset + i || e->epoch < prev || e->epoch > hs->epoch) return false;
        if (e->len > RAFT_MAX_ENTRY_BYTES || (e->len && !e->data)) return false;
        prev = e->epoch;
    }
    return true;
}

raft_t *raft_new(const raft_config_t *cfg, const raft_restore_t *restore, int64_t now_ms)
{
    static const raft_restore_t fresh;
    if (!restore) restore = &fresh;
    if (!cfg || !config_ok(cfg) || !restore_ok(restore)) return NULL;
    raft_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    kl_rng_seed(&r->rng, cfg->seed ^ ((uint64_t)(uint32_t)cfg->node_id * 0x9E3779B97F4A7C15ull));
    r->now = now_ms;
    r->self_idx = raft_voter_index(r, cfg->node_id);
    r->majority = cfg->n_voters / 2 + 1;
    r->next_rpc = 1;
    r->emit_from = -1;
    r->leader_contact_ms = RAFT_NO_CONTACT; /* a leader read from disk is hearsay too */
    reset_peers(r);

    const raft_snapshot_id_t *s = &restore->snapshot_id;
    r->snap = *s;
    if (s->end_offset > 0) {
        r->snap_data = malloc(restore->snapshot_len ? restore->snapshot_len : 1);
        if (!r->snap_data) goto fail;
        if (restore->snapshot_len) memcpy(r->snap_data, restore->snapshot_data, restore->snapshot_len);
        r->snap_len = restore->snapshot_len;
    }
    raft_memlog_reset(&r->log, s->end_offset, s->last_epoch);
    if (raft_memlog_reserve(&r->log, (size_t)restore->n_entries) != 0) goto fail;
    for (int i = 0; i < restore->n_entries; i++)
        if (raft_memlog_append_copy(&r->log, &restore->entries[i]) != 0) goto fail;
    r->log.durable_end = raft_memlog_end(&r->log); /* restored entries are durable by definition */

    /* the hint is a committed offset; it cannot lie outside what we hold */
    int64_t hw = restore->high_watermark_hint;
    if (hw > r->log.durable_end) hw = r->log.durable_end;
    if (hw < r->log.start) hw = r->log.start;
    r->hw = r->leader_hw = hw;
    r->applied = r->log.start; /* the application restarts from the snapshot */

    const raft_hard_state_t *hs = &restore->hard_state;
    r->hs_disk = *hs;
    r->epoch = hs->epoch;
    r->voted_for = hs->voted_for;
    r->leader_id = raft_voter_index(r, hs->leader_id) >= 0 ? hs->leader_id : RAFT_NO_NODE;
    r->rr = cfg->node_id % cfg->n_voters;
    r->fetch_ready_ms = now_ms;
    r->timer_ms = RAFT_NEVER;
    if (!raft_is_voter(r)) {
        r->role = RAFT_OBSERVER;
        if (r->leader_id != RAFT_NO_NODE) r->timer_ms = now_ms + cfg->fetch_timeout_ms;
    } else if (r->leader_id != RAFT_NO_NODE && r->leader_id != cfg->node_id) {
        r->role = RAFT_FOLLOWER;
        r->timer_ms = raft_fetch_deadline(r);
    } else {
        /* A restarted leader lost its followers' state: it starts over unattached
         * (and, as the only voter, elects itself at once). */
        r->role = RAFT_UNATTACHED;
        r->leader_id = RAFT_NO_NODE;
        r->timer_ms = cfg->n_voters == 1 ? now_ms : now_ms + raft_election_timeout(r);
    }
    return r;
fail:
    raft_free(r);
    return NULL;
}

void raft_free(raft_t *r)
{
    if (!r) return;
    raft_memlog_free(&r->log);
    for (uint32_t i = 0; i < r->n_pending; i++) free((void *)r->pending[i].data);
    free(r->pending);
    free(r->snap_data);
    free(r->snapfetch.buf);
    free(r->msgs);
    free(r->msg_entries_from);
    free(r);
}

/* ---- validation of events and messages (before anything changes) ------------- */

static bool is_response(raft_msg_type_t t) { return t % 2 == 0; }

static int validate_msg(const raft_t *r, const raft_msg_t *m)
{
    if (!m) return KL_EINVAL;
    if (m->type < RAFT_MSG_VOTE_REQ || m->type > RAFT_MSG_FETCH_SNAPSHOT_RESP) return KL_EPROTO;
    if (m->to != r->cfg.node_id || m->from < 0 || m->from == r->cfg.node_id) return KL_EINVAL;
    if (m->epoch < 0 || m->leader_id < RAFT_NO_NODE) return KL_EPROTO;
    if (is_response(m->type) && (m->error < RAFT_OK || m->error > RAFT_ERR_INVALID_REQUEST)) return KL_EPROTO;
    switch (m->type) {
    case RAFT_MSG_VOTE_REQ:
        if (m->u.vote_req.pre_vote && m->epoch < 1) return KL_EPROTO;
        if (m->u.vote_req.last_epoch < 0 || m->u.vote_req.end_offset < 0 ||
            m->u.vote_req.end_offset > RAFT_MAX_OFFSET)
            return KL_EPROTO;
        return 0;
    case RAFT_MSG_BEGIN_EPOCH_REQ:
        return m->leader_id == m->from ? 0 : KL_EPROTO;
    case RAFT_MSG_END_EPOCH_REQ:
        if (m->u.end_epoch_req.n_successors < 0 || m->u.end_epoch_req.n_successors > RAFT_MAX_VOTERS)
            return KL_EPROTO;
        return 0;
    case RAFT_MSG_FETCH_REQ:
        if (m->u.fetch_req.fetch_offset < 0 || m->u.fetch_req.fetch_offset > RAFT_MAX_OFFSET ||
            m->u.fetch_req.last_fetched_epoch < 0)
            return KL_EPROTO;
        return 0;
    case RAFT_MSG_FETCH_RESP:
        return m->error == RAFT_OK ? raft_validate_fetch_resp(m) : 0;
    case RAFT_MSG_FETCH_SNAPSHOT_REQ: {
        const raft_snapshot_id_t *id = &m->u.fetch_snapshot_req.snapshot_id;
        if (id->end_offset <= 0 || id->end_offset > RAFT_MAX_OFFSET || id->last_epoch < 0 ||
            m->u.fetch_snapshot_req.position > RAFT_MAX_SNAPSHOT_BYTES)
            return KL_EPROTO;
        return 0;
    }
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: {
        if (m->error != RAFT_OK) return 0;
        const __typeof__(m->u.fetch_snapshot_resp) *s = &m->u.fetch_snapshot_resp;
        if (s->size > RAFT_MAX_SNAPSHOT_BYTES || s->position > s->size || s->chunk_len > s->size - s->position ||
            (s->chunk_len && !s->chunk))
            return KL_EPROTO;
        return 0;
    }
    default:
        return 0;
    }
}

static int validate_event(const raft_t *r, const raft_event_t *ev)
{
    switch (ev->type) {
    case RAFT_EV_TICK:
    case RAFT_EV_SHUTDOWN: return 0;
    case RAFT_EV_RECV: return validate_msg(r, ev->u.msg);
    case RAFT_EV_PERSISTED:
        return ev->u.persisted_end < 0 || ev->u.persisted_end > raft_memlog_end(&r->log) ? KL_EINVAL : 0;
    case RAFT_EV_PROPOSE: return raft_validate_propose(ev);
    case RAFT_EV_PEER_DOWN: return ev->u.peer < 0 ? KL_EINVAL : 0;
    case RAFT_EV_SNAPSHOT: return raft_validate_snapshot(r, ev);
    }
    return KL_EINVAL;
}

/* ---- event handlers ------------------------------------------------------------- */

static void on_recv(raft_t *r, const raft_msg_t *m)
{
    observe(r, m);
    switch (m->type) {
    case RAFT_MSG_VOTE_REQ: raft_on_vote_req(r, m); break;
    case RAFT_MSG_VOTE_RESP: raft_on_vote_resp(r, m); break;
    case RAFT_MSG_BEGIN_EPOCH_REQ: raft_on_begin_epoch_req(r, m); break;
    case RAFT_MSG_BEGIN_EPOCH_RESP: raft_on_begin_epoch_resp(r, m); break;
    case RAFT_MSG_END_EPOCH_REQ: raft_on_end_epoch_req(r, m); break;
    case RAFT_MSG_END_EPOCH_RESP: raft_on_end_epoch_resp(r, m); break;
    case RAFT_MSG_FETCH_REQ: raft_on_fetch_req(r, m); break;
    case RAFT_MSG_FETCH_RESP: raft_on_fetch_resp(r, m); break;
    case RAFT_MSG_FETCH_SNAPSHOT_REQ: raft_on_fetch_snapshot_req(r, m); break;
    case RAFT_MSG_FETCH_SNAPSHOT_RESP: raft_on_fetch_snapshot_resp(r, m); break;
    }
}

static void on_peer_down(raft_t *r, int32_t peer)
{
    raft_on_peer_down_repl(r, peer);
    if (peer != r->leader_id) return; /* other peers: their requests are simply retried */
    if (r->role == RAFT_FOLLOWER) raft_leader_lost(r, "connection to the leader broke");
    else if (r->role == RAFT_OBSERVER) raft_forget_leader(r, "connection broke");
    else if (r->role == RAFT_PROSPECTIVE) r->leader_down = true; /* kept if the pre-vote is lost */
}

/* A leader resigns with EndQuorumEpoch; anyone else just stops initiating. */
static void on_shutdown(raft_t *r)
{
    if (r->stopping) return;
    r->stopping = true;
    if (r->role == RAFT_LEADER) {
        raft_resign(r, true, "shutdown");
        return;
    }
    r->timer_ms = RAFT_NEVER;
    r->inflight.active = false;
    raft_note(r, 1, "stopping as %s in epoch %d", raft_role_name(r->role), r->epoch);
}

static int dispatch(raft_t *r, const raft_event_t *ev)
{
    switch (ev->type) {
    case RAFT_EV_TICK: return 0;
    case RAFT_EV_RECV: on_recv(r, ev->u.msg); return 0;
    case RAFT_EV_PERSISTED: raft_on_persisted(r, ev->u.persisted_end); return 0;
    case RAFT_EV_PROPOSE: raft_on_propose(r, ev); return 0;
    case RAFT_EV_PEER_DOWN: on_peer_down(r, ev->u.peer); return 0;
    case RAFT_EV_SNAPSHOT: return raft_on_snapshot(r, ev);
    case RAFT_EV_SHUTDOWN: on_shutdown(r); return 0;
    }
    return KL_EINVAL;
}

static const char *follower_timeout_why(const raft_t *r, char *buf, size_t len)
{
    if (r->leader_resigned) snprintf(buf, len, "leader %d resigned", r->leader_id);
    else if (r->leader_down) snprintf(buf, len, "leader %d unreachable", r->leader_id);
    else snprintf(buf, len, "no fetch from leader %d for %d ms", r->leader_id, r->cfg.fetch_timeout_ms);
    return buf;
}

/* The role timer (r->timer_ms) means: unattached — election timeout; follower —
 * fetch timeout, fast election or successor delay; prospective/candidate — end
 * of the round or of the backoff; resigned by check-quorum — become unattached;
 * observer — forget a silent leader. */
static void run_timers(raft_t *r)
{
    raft_repl_timers(r);
    raft_elect_timers(r);
    if (r->now < r->timer_ms) return;
    r->timer_ms = RAFT_NEVER;
    char why[96];
    switch (r->role) {
    case RAFT_UNATTACHED:
        if (raft_can_campaign(r)) raft_become_prospective(r, "election timeout");
        break;
    case RAFT_FOLLOWER:
        if (raft_can_campaign(r)) raft_become_prospective(r, follower_timeout_why(r, why, sizeof why));
        break;
    case RAFT_PROSPECTIVE:
    case RAFT_CANDIDATE:
        if (r->backing_off) raft_become_prospective(r, "backoff over");
        else raft_round_lost(r, "timed out");
        break;
    case RAFT_RESIGNED:
        if (r->resigned_check_quorum) raft_become_unattached(r, r->epoch, "resignation done");
        break;
    case RAFT_OBSERVER:
        snprintf(why, sizeof why, "no successful fetch for %d ms", r->cfg.fetch_timeout_ms);
        raft_forget_leader(r, why);
        break;
    case RAFT_LEADER:
        break;
    }
}

/* ---- the step --------------------------------------------------------------------- */

static void begin_update(raft_t *r, raft_update_t *out)
{
    memset(out, 0, sizeof *out);
    out->truncate_to = -1;
    out->propose_first_offset = -1;
    out->hard_state = (raft_hard_state_t){r->epoch, r->voted_for, r->leader_id};
    out->apply_from = r->applied;
    out->high_watermark = r->hw;
    r->out = out;
    r->n_msgs = 0;
    r->dropped_msgs = 0;
    r->emit_from = -1;
    r->force_persist = false;
}

static void finish_update(raft_t *r, raft_role_t role0, int32_t epoch0, int32_t leader0)
{
    raft_update_t *out = r->out;
    const raft_hard_state_t hs = {r->epoch, r->voted_for, r->leader_id};
    out->hard_state = hs;
    /* DESIGN.md §2: the caller persists this before sending the messages */
    if (r->force_persist || hs.epoch != r->hs_disk.epoch || hs.voted_for != r->hs_disk.voted_for ||
        hs.leader_id != r->hs_disk.leader_id) {
        out->persist_state = true;
        r->hs_disk = hs;
    }
    const int64_t end = raft_memlog_end(&r->log);
    if (r->emit_from >= 0 && r->emit_from < end) {
        KL_ASSERT(r->emit_from >= r->log.start);
        out->entries = raft_memlog_at(&r->log, r->emit_from);
        out->n_entries = (int)(end - r->emit_from);
    }
    for (uint32_t i = 0; i < r->n_msgs; i++) {
        if (r->msg_entries_from[i] < 0) continue;
        raft_msg_t *m = &r->msgs[i];
        m->u.fetch_resp.entries = raft_memlog_at(&r->log, r->msg_entries_from[i]);
        KL_ASSERT(m->u.fetch_resp.entries && r->msg_entries_from[i] + m->u.fetch_resp.n_entries <= end);
    }
    out->msgs = r->n_msgs ? r->msgs : NULL;
    out->n_msgs = (int)r->n_msgs;
    if (r->dropped_msgs) raft_note(r, 3, "out of memory: %u outgoing messages dropped", r->dropped_msgs);
    out->apply_from = r->applied;
    out->high_watermark = r->hw;
    if (r->hw > r->applied) r->applied = r->hw;
    out->role_changed = r->role != role0 || r->epoch != epoch0 || r->leader_id != leader0;
    r->out = NULL;
}

int raft_step(raft_t *r, const raft_event_t *ev, raft_update_t *out)
{
    if (!r || !ev || !out) return KL_EINVAL;
    const raft_role_t role0 = r->role;
    const int32_t epoch0 = r->epoch, leader0 = r->leader_id;
    begin_update(r, out);
    int rc = validate_event(r, ev);
    if (rc == 0) {
        if (ev->now_ms > r->now) r->now = ev->now_ms; /* time never goes back */
        rc = dispatch(r, ev);
    }
    if (rc != 0) { /* nothing changed: hand back an empty update */
        begin_update(r, out);
        r->out = NULL;
        return rc;
    }
    run_timers(r);
    raft_repl_pump(r);
    finish_update(r, role0, epoch0, leader0);
    return 0;
}

/* ---- queries ---------------------------------------------------------------------- */

raft_role_t raft_role(const raft_t *r) { return r->role; }
int32_t raft_epoch(const raft_t *r) { return r->epoch; }
int32_t raft_leader(const raft_t *r) { return r->leader_id; }
int32_t raft_node_id(const raft_t *r) { return r->cfg.node_id; }
int64_t raft_log_start(const raft_t *r) { return r->log.start; }
int64_t raft_log_end(const raft_t *r) { return raft_memlog_end(&r->log); }
int64_t raft_durable_end(const raft_t *r) { return r->log.durable_end; }
int64_t raft_high_watermark(const raft_t *r) { return r->hw; }
int32_t raft_last_epoch(const raft_t *r) { return raft_memlog_epoch_before(&r->log, raft_memlog_end(&r->log)); }
const raft_entry_t *raft_entry_at(const raft_t *r, int64_t offset) { return raft_memlog_at(&r->log, offset); }

int64_t raft_next_deadline(const raft_t *r)
{
    int64_t d = r->timer_ms;
    const int64_t repl = raft_repl_deadline(r), elect = raft_elect_deadline(r);
    if (repl < d) d = repl;
    if (elect < d) d = elect;
    if (d > r->now + RAFT_IDLE_TICK_MS) d = r->now + RAFT_IDLE_TICK_MS;
    return d > r->now ? d : r->now + 1; /* every due timer ran in the last step */
}

static void describe_peer(const raft_peer_t *p, raft_replica_state_t *s)
{
    s->node_id = p->id;
    s->log_end_offset = p->end_offset;
    s->last_fetch_ms = p->last_fetch_ms;
    s->last_caught_up_ms = p->caught_up_ms;
}

int raft_describe(const raft_t *r, int64_t now_ms, raft_quorum_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->leader_id = r->leader_id;
    out->epoch = r->epoch;
    out->high_watermark = r->hw;
    if (r->role != RAFT_LEADER) return KL_ENOTLEADER;
    for (int i = 0; i < r->cfg.n_voters; i++) {
        raft_replica_state_t *s = &out->voters[out->n_voters++];
        if (i == r->self_idx) {
            *s = (raft_replica_state_t){r->cfg.node_id, raft_memlog_end(&r->log), now_ms, now_ms};
        } else {
            describe_peer(&r->voters[i], s);
        }
    }
    const int64_t window = (int64_t)RAFT_OBSERVER_WINDOW_TIMEOUTS * r->cfg.fetch_timeout_ms;
    for (int i = 0; i < r->n_observers; i++)
        if (r->observers[i].last_fetch_ms >= now_ms - window)
            describe_peer(&r->observers[i], &out->observers[out->n_observers++]);
    return 0;
}
