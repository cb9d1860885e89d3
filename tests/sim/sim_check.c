/* sim_check.c — the simulator's invariant checker: Raft safety (DESIGN.md §2, §8) and raft.h's io contract, checked after every step. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_cluster.h"

#define SIM_SM_SEED 0x6b65656c73696d31ull /* state machine before any entry */
#define SIM_SNAP_MAGIC 0x50414e534d49534bull /* "KSIMSNAP" */
#define SIM_SNAP_HEADER 28

void sim_fail(sim_t *s, sim_failure_t kind, const char *invariant, const char *fmt, ...)
{
    if (s->failed) return; /* the first violation is the one that matters */
    s->failed = true;
    sim_result_t *r = s->res;
    r->failure = kind;
    snprintf(r->invariant, sizeof r->invariant, "%s", invariant);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    r->step = r->steps;
    r->at_ms = s->now;
    sim_trace(s, "FAILED %s: %s", r->invariant, r->detail);
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t sim_hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return mix64(h ^ n);
}

uint64_t sim_sm_apply(uint64_t h, const raft_entry_t *e)
{
    h = mix64(h ^ (uint64_t)e->offset);
    h = mix64(h ^ ((uint64_t)(uint32_t)e->epoch << 1 | (e->control ? 1u : 0u)));
    return mix64(h ^ sim_hash_bytes(e->data, e->len));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint8_t pad_byte(uint64_t sm_hash, uint64_t i)
{
    return (uint8_t)mix64(sm_hash + i);
}

/* The same state gives the same bytes on every node, so FetchSnapshot
 * reassembly can be verified byte for byte. */
uint8_t *sim_snapshot_encode(int64_t end, uint64_t sm_hash, uint64_t *len)
{
    uint32_t pad = (uint32_t)(sm_hash % SIM_SNAPSHOT_PAD_MAX);
    *len = SIM_SNAP_HEADER + pad;
    uint8_t *p = sim_xmalloc((size_t)*len);
    put64(p, SIM_SNAP_MAGIC);
    put64(p + 8, (uint64_t)end);
    put64(p + 16, sm_hash);
    for (int i = 0; i < 4; i++) p[24 + i] = (uint8_t)(pad >> (8 * i));
    for (uint32_t i = 0; i < pad; i++) p[SIM_SNAP_HEADER + i] = pad_byte(sm_hash, i);
    return p;
}

int sim_snapshot_decode(const uint8_t *data, uint64_t len, int64_t *end, uint64_t *sm_hash)
{
    if (!data || len < SIM_SNAP_HEADER || get64(data) != SIM_SNAP_MAGIC) return -1;
    uint32_t pad = 0;
    for (int i = 0; i < 4; i++) pad |= (uint32_t)data[24 + i] << (8 * i);
    *end = (int64_t)get64(data + 8);
    *sm_hash = get64(data + 16);
    if (len != SIM_SNAP_HEADER + (uint64_t)pad) return -1;
    for (uint32_t i = 0; i < pad; i++)
        if (data[SIM_SNAP_HEADER + i] != pad_byte(*sm_hash, i)) return -1;
    return 0;
}

uint64_t sim_sm_initial(void)
{
    return SIM_SM_SEED;
}

/* ---- disk views ---------------------------------------------------------- */

int64_t sim_disk_end(const sim_disk_t *d)
{
    return d->snap.end_offset + d->n;
}

const raft_entry_t *sim_disk_entry(const sim_disk_t *d, int64_t offset)
{
    if (offset < d->snap.end_offset || offset >= sim_disk_end(d)) return NULL;
    return &d->log[offset - d->snap.end_offset];
}

void sim_disk_log_at(const sim_disk_t *d, int64_t end, int32_t *last_epoch)
{
    const raft_entry_t *e = sim_disk_entry(d, end - 1);
    *last_epoch = e ? e->epoch : d->snap.last_epoch;
}

/* ---- the committed map: every offset any node ever reported committed ---- */

static sim_committed_t *committed_slot(sim_t *s, int64_t offset)
{
    sim_grow((void **)&s->committed, &s->n_committed, offset + 1, sizeof *s->committed);
    return &s->committed[offset];
}

bool sim_is_committed_as(const sim_t *s, int64_t offset, int32_t epoch, uint64_t hash)
{
    if (offset < 0 || offset >= s->n_committed || !s->committed[offset].set) return false;
    return s->committed[offset].epoch == epoch && s->committed[offset].hash == hash;
}

/* Invariant 2 (and 4 through it): an entry below a node's HW equals the one
 * first reported committed at that offset, whoever reported it. */
static void check_committed_entry(sim_t *s, sim_node_t *n, const raft_entry_t *e)
{
    uint64_t h = sim_hash_bytes(e->data, e->len);
    sim_committed_t *c = committed_slot(s, e->offset);
    if (!c->set) {
        *c = (sim_committed_t){.set = true, .control = e->control, .epoch = e->epoch, .commit_epoch = raft_epoch(n->r),
                               .len = e->len, .hash = h, .first_node = n->id, .first_at = s->now};
        if (e->offset + 1 > s->res->committed) s->res->committed = e->offset + 1;
        return;
    }
    if (c->epoch != e->epoch || c->hash != h || c->len != e->len || c->control != e->control)
        sim_fail(s, SIM_FAIL_SAFETY, "committed-entry-never-changes",
                 "n%d has offset %" PRId64 " below its HW %" PRId64 " as (epoch %d, %u bytes, hash %016" PRIx64
                 "%s) but n%d reported it committed at t=%" PRId64 " as (epoch %d, %u bytes, hash %016" PRIx64 "%s)",
                 n->id, e->offset, n->hw, e->epoch, e->len, h, e->control ? ", control" : "", c->first_node,
                 c->first_at, c->epoch, c->len, c->hash, c->control ? ", control" : "");
}

/* Durable coverage of `offset` on voter v: in its snapshot, or on its fsynced
 * log with the committed entry's epoch and bytes. */
static bool durably_holds(const sim_node_t *v, int64_t offset, const sim_committed_t *c)
{
    if (offset < v->disk.snap.end_offset) return true;
    if (offset >= v->disk.durable_end) return false;
    const raft_entry_t *e = sim_disk_entry(&v->disk, offset);
    return e && e->epoch == c->epoch && sim_hash_bytes(e->data, e->len) == c->hash;
}

/* DESIGN.md §2: the HW is the largest offset held by a majority of voters,
 * and entries count only once fsynced. So whenever any node first reports a
 * HW, a majority of voters must hold entry HW-1 durably right now. */
static void check_durable_majority(sim_t *s, sim_node_t *n, int64_t hw)
{
    int64_t o = hw - 1;
    if (o < 0 || o >= s->n_committed || !s->committed[o].set) return; /* learnt later, checked then */
    int have = 0;
    char who[320] = "";
    size_t k = 0;
    for (int i = 0; i < s->n_nodes; i++) {
        const sim_node_t *v = &s->nodes[i];
        if (!v->voter) continue;
        bool h = durably_holds(v, o, &s->committed[o]);
        have += h;
        k += (size_t)snprintf(who + k, sizeof who - k, " n%d:%s(durable end %" PRId64 ")", v->id,
                              h ? "yes" : "no", v->disk.durable_end);
        if (k >= sizeof who) k = sizeof who - 1;
    }
    if (have * 2 <= s->n_voters)
        sim_fail(s, SIM_FAIL_SAFETY, "commit-needs-durable-majority",
                 "n%d reports HW %" PRId64 " but only %d of %d voters hold offset %" PRId64 " durably:%s", n->id, hw,
                 have, s->n_voters, o, who);
    else
        s->majority_verified = hw;
}

/* ---- checks at the io contract's steps (raft.h raft_update_t) ------------ */

void sim_check_hard_state(sim_t *s, sim_node_t *n, const raft_hard_state_t *hs)
{
    const raft_hard_state_t *old = &n->disk.hs;
    if (hs->epoch < old->epoch)
        sim_fail(s, SIM_FAIL_SAFETY, "epoch-never-goes-back", "n%d persists epoch %d after epoch %d", n->id,
                 hs->epoch, old->epoch);
    else if (hs->epoch == old->epoch && old->voted_for != RAFT_NO_NODE && hs->voted_for != RAFT_NO_NODE &&
             hs->voted_for != old->voted_for)
        sim_fail(s, SIM_FAIL_SAFETY, "one-vote-per-epoch", "n%d persists a vote for n%d in epoch %d after voting n%d",
                 n->id, hs->voted_for, hs->epoch, old->voted_for);
    else if (hs->epoch == old->epoch && old->leader_id != RAFT_NO_NODE && hs->leader_id != RAFT_NO_NODE &&
             hs->leader_id != old->leader_id)
        sim_fail(s, SIM_FAIL_SAFETY, "one-leader-per-epoch", "n%d persists leader n%d in epoch %d after leader n%d",
                 n->id, hs->leader_id, hs->epoch, old->leader_id);
}

/* Invariant 5: DESIGN.md §2 "a follower never truncates below its high
 * watermark". n->hw is the HW the node reported before this step. */
void sim_check_truncate(sim_t *s, sim_node_t *n, int64_t to)
{
    if (to < n->hw)
        sim_fail(s, SIM_FAIL_SAFETY, "no-truncation-below-hw",
                 "n%d (%s, epoch %d) truncates its log to %" PRId64 " below its high watermark %" PRId64, n->id,
                 raft_role_name(raft_role(n->r)), raft_epoch(n->r), to, n->hw);
    else if (to < n->disk.snap.end_offset)
        sim_fail(s, SIM_FAIL_SAFETY, "io-truncate-into-snapshot",
                 "n%d truncates to %" PRId64 " inside its snapshot ending at %" PRId64, n->id, to,
                 n->disk.snap.end_offset);
}

static void check_state_at(sim_t *s, sim_node_t *n, int64_t end, uint64_t sm_hash, const char *how)
{
    sim_grow((void **)&s->state_at, &s->n_state_at, end + 1, sizeof *s->state_at);
    sim_state_at_t *st = &s->state_at[end];
    if (!st->set) {
        st->set = true;
        st->hash = sm_hash;
    } else if (st->hash != sm_hash) {
        sim_fail(s, SIM_FAIL_SAFETY, "state-machines-agree",
                 "n%d %s state %016" PRIx64 " at applied offset %" PRId64 ", another node had %016" PRIx64, n->id, how,
                 sm_hash, end, st->hash);
    }
}

void sim_check_snapshot_install(sim_t *s, sim_node_t *n, raft_snapshot_id_t id, const uint8_t *data, uint64_t len,
                                uint64_t *sm_hash)
{
    int64_t end = 0;
    *sm_hash = SIM_SM_SEED;
    if (id.end_offset < n->hw) {
        sim_fail(s, SIM_FAIL_SAFETY, "no-truncation-below-hw",
                 "n%d installs a snapshot ending at %" PRId64 " below its high watermark %" PRId64
                 " (that drops committed entries)",
                 n->id, id.end_offset, n->hw);
        return;
    }
    if (sim_snapshot_decode(data, len, &end, sm_hash) != 0 || end != id.end_offset) {
        sim_fail(s, SIM_FAIL_SAFETY, "snapshot-bytes-intact",
                 "n%d installs snapshot (end %" PRId64 ", epoch %d) whose %" PRIu64
                 " bytes are not the ones a node wrote (lost, reordered or corrupt chunks)",
                 n->id, id.end_offset, id.last_epoch, len);
        return;
    }
    if (end >= s->n_state_at || !s->state_at[end].set) {
        sim_fail(s, SIM_FAIL_SAFETY, "snapshot-holds-committed-state",
                 "n%d installs a snapshot ending at %" PRId64 " that no node ever applied", n->id, end);
        return;
    }
    check_state_at(s, n, end, *sm_hash, "installs snapshot with");
    const sim_committed_t *c = end - 1 < s->n_committed && end > 0 ? &s->committed[end - 1] : NULL;
    if (c && c->set && c->epoch != id.last_epoch)
        sim_fail(s, SIM_FAIL_SAFETY, "snapshot-id-matches-log",
                 "n%d installs snapshot (end %" PRId64 ", last epoch %d) but offset %" PRId64 " was committed in epoch %d",
                 n->id, end, id.last_epoch, end - 1, c->epoch);
}

void sim_check_append(sim_t *s, sim_node_t *n, const raft_entry_t *e)
{
    int64_t end = sim_disk_end(&n->disk);
    const raft_entry_t *last = sim_disk_entry(&n->disk, end - 1);
    int32_t last_epoch = last ? last->epoch : n->disk.snap.last_epoch;
    if (e->offset != end)
        sim_fail(s, SIM_FAIL_SAFETY, "io-append-contiguous",
                 "n%d asks to append offset %" PRId64 " but its log (after truncation) ends at %" PRId64, n->id,
                 e->offset, end);
    else if (e->epoch < last_epoch)
        sim_fail(s, SIM_FAIL_SAFETY, "log-epochs-never-decrease",
                 "n%d appends offset %" PRId64 " in epoch %d after an entry of epoch %d", n->id, e->offset, e->epoch,
                 last_epoch);
    else if (e->epoch > raft_epoch(n->r))
        sim_fail(s, SIM_FAIL_SAFETY, "log-epochs-known",
                 "n%d appends offset %" PRId64 " of epoch %d while it is in epoch %d", n->id, e->offset, e->epoch,
                 raft_epoch(n->r));
    else if (e->len > 0 && !e->data)
        sim_fail(s, SIM_FAIL_SAFETY, "io-entry-data", "n%d appends offset %" PRId64 " with NULL data", n->id,
                 e->offset);
}

void sim_note_vote_request(sim_t *s, sim_node_t *voter, const raft_msg_t *m)
{
    for (int i = 0; i < s->n_nodes; i++) {
        if (s->nodes[i].id != m->from) continue;
        voter->vote_req[i][m->u.vote_req.pre_vote ? 1 : 0] =
            (sim_vote_req_t){.seen = true, .pre_vote = m->u.vote_req.pre_vote, .epoch = m->epoch,
                             .last_epoch = m->u.vote_req.last_epoch, .end_offset = m->u.vote_req.end_offset};
    }
}

/* A granted (pre-)vote: only to a log at least as long as the voter's durable
 * log, epoch first (DESIGN.md §2), and a real vote only once per epoch and
 * only after the vote is durable. */
static void check_vote_granted(sim_t *s, sim_node_t *n, const raft_msg_t *m)
{
    bool pre = m->u.vote_resp.pre_vote;
    if (!n->voter) {
        sim_fail(s, SIM_FAIL_SAFETY, "observers-never-vote", "observer n%d grants a %s to n%d", n->id,
                 pre ? "pre-vote" : "vote", m->to);
        return;
    }
    int ci = -1;
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].id == m->to) ci = i;
    if (ci < 0) return; /* unknown peer: the send check reports it */
    const sim_vote_req_t *rq = &n->vote_req[ci][pre ? 1 : 0];
    if (!rq->seen) {
        sim_fail(s, SIM_FAIL_SAFETY, "votes-answer-requests", "n%d grants a %s to n%d, which never asked", n->id,
                 pre ? "pre-vote" : "vote", m->to);
        return;
    }
    /* a repeated grant to the same candidate (a duplicated request) is idempotent;
     * the first grant of this epoch was judged against the log of that time */
    bool repeat = !pre && m->epoch >= 0 && m->epoch < n->n_vote_granted && n->vote_granted[m->epoch] == m->to;
    /* durable and known to be so by the core: only such entries were ever
     * acknowledged to a leader (an fsync whose completion is still queued is not) */
    int32_t le;
    int64_t end = raft_durable_end(n->r) < n->disk.durable_end ? raft_durable_end(n->r) : n->disk.durable_end;
    sim_disk_log_at(&n->disk, end, &le);
    if (repeat) le = INT32_MIN;
    if (rq->last_epoch < le || (rq->last_epoch == le && rq->end_offset < end)) {
        sim_fail(s, SIM_FAIL_SAFETY, "vote-only-for-log-at-least-as-long",
                 "n%d grants a %s in epoch %d to n%d whose log (last epoch %d, end %" PRId64
                 ") is shorter than its own durable log (last epoch %d, end %" PRId64 ")",
                 n->id, pre ? "pre-vote" : "vote", m->epoch, m->to, rq->last_epoch, rq->end_offset, le, end);
        return;
    }
    if (pre) return;
    if (n->disk.hs.epoch != m->epoch || n->disk.hs.voted_for != m->to) {
        sim_fail(s, SIM_FAIL_SAFETY, "vote-durable-before-reply",
                 "n%d grants its vote in epoch %d to n%d but its durable quorum state is (epoch %d, voted for %d)",
                 n->id, m->epoch, m->to, n->disk.hs.epoch, n->disk.hs.voted_for);
        return;
    }
    if (m->epoch < 0) return;
    sim_grow((void **)&n->vote_granted, &n->n_vote_granted, (int64_t)m->epoch + 1, sizeof *n->vote_granted);
    int32_t *g = &n->vote_granted[m->epoch];
    if (*g == 0)
        *g = m->to;
    else if (*g != m->to)
        sim_fail(s, SIM_FAIL_SAFETY, "one-vote-per-epoch", "n%d grants votes in epoch %d to both n%d and n%d", n->id,
                 m->epoch, *g, m->to);
}

static int32_t leader_of(const sim_t *s, int32_t epoch)
{
    return epoch >= 0 && epoch < s->n_leader_of ? s->leader_of[epoch] : 0;
}

void sim_check_send(sim_t *s, sim_node_t *n, const raft_msg_t *m)
{
    if (m->from != n->id) {
        sim_fail(s, SIM_FAIL_SAFETY, "io-message-sender", "n%d sends a %s claiming to be from n%d", n->id,
                 raft_msg_type_name(m->type), m->from);
        return;
    }
    if (m->type == RAFT_MSG_VOTE_REQ && !n->voter)
        sim_fail(s, SIM_FAIL_SAFETY, "observers-never-campaign", "observer n%d asks n%d for a %s", n->id, m->to,
                 m->u.vote_req.pre_vote ? "pre-vote" : "vote");
    if (m->type == RAFT_MSG_VOTE_RESP && m->error == RAFT_OK && m->u.vote_resp.granted) check_vote_granted(s, n, m);
    if (m->type == RAFT_MSG_FETCH_RESP && m->u.fetch_resp.n_entries > 0) {
        const raft_entry_t *es = m->u.fetch_resp.entries;
        if (leader_of(s, m->epoch) != n->id) {
            sim_fail(s, SIM_FAIL_SAFETY, "only-the-leader-serves-entries",
                     "n%d (%s) answers a fetch in epoch %d with entries, but the leader of epoch %d is n%d", n->id,
                     raft_role_name(raft_role(n->r)), m->epoch, m->epoch, leader_of(s, m->epoch));
            return;
        }
        for (int i = 1; i < m->u.fetch_resp.n_entries; i++)
            if (es[i].offset != es[i - 1].offset + 1) {
                sim_fail(s, SIM_FAIL_SAFETY, "fetch-entries-consecutive",
                         "n%d answers a fetch with offsets %" PRId64 " then %" PRId64, n->id, es[i - 1].offset,
                         es[i].offset);
                return;
            }
    }
}

void sim_check_applied(sim_t *s, sim_node_t *n, int64_t offset_end, uint64_t sm_hash)
{
    check_state_at(s, n, offset_end, sm_hash, "has");
}

/* ---- after every step ------------------------------------------------------ */

/* Entries of n below min(HW, log end) not yet matched against the committed map. */
static void check_new_committed(sim_t *s, sim_node_t *n)
{
    int64_t lim = sim_disk_end(&n->disk);
    if (n->hw < lim) lim = n->hw;
    if (n->checked_upto < n->disk.snap.end_offset) n->checked_upto = n->disk.snap.end_offset;
    for (int64_t o = n->checked_upto; o < lim && !s->failed; o++) check_committed_entry(s, n, sim_disk_entry(&n->disk, o));
    if (lim > n->checked_upto) n->checked_upto = lim;
}

static void trace_role(sim_t *s, sim_node_t *n, raft_role_t role, int32_t epoch, int32_t leader)
{
    if (role == n->role && epoch == n->epoch && leader == n->leader) return;
    if (role != n->role || epoch != n->epoch)
        sim_trace(s, "n%d is %s in epoch %d (leader %d, log [%" PRId64 ", %" PRId64 "), HW %" PRId64 ")", n->id,
                  raft_role_name(role), epoch, leader, raft_log_start(n->r), raft_log_end(n->r),
                  raft_high_watermark(n->r));
    else
        sim_trace(s, "n%d learns leader %d of epoch %d", n->id, leader, epoch);
    n->role = role;
    n->epoch = epoch;
    n->leader = leader;
}

/* Raft §5.4 leader completeness: the leader of an epoch holds every entry
 * committed in earlier epochs. (A leader elected late, by delayed votes, may
 * lack entries that later epochs committed.) */
static void check_leader_complete(sim_t *s, sim_node_t *n, int32_t epoch)
{
    for (int64_t o = n->disk.snap.end_offset; o < s->res->committed && !s->failed; o++) {
        const raft_entry_t *e = sim_disk_entry(&n->disk, o);
        const sim_committed_t *c = &s->committed[o];
        if (!c->set || c->commit_epoch >= epoch) continue;
        if (!e)
            sim_fail(s, SIM_FAIL_SAFETY, "leader-has-every-committed-entry",
                     "n%d became leader of epoch %d with its log ending at %" PRId64 ", but offset %" PRId64
                     " was committed in epoch %d",
                     n->id, epoch, sim_disk_end(&n->disk), o, c->commit_epoch);
        else if (c->epoch != e->epoch || c->hash != sim_hash_bytes(e->data, e->len))
            sim_fail(s, SIM_FAIL_SAFETY, "leader-has-every-committed-entry",
                     "n%d became leader of epoch %d holding (epoch %d) at offset %" PRId64
                     ", where an entry of epoch %d was committed in epoch %d",
                     n->id, epoch, e->epoch, o, c->epoch, c->commit_epoch);
    }
}

/* DESIGN.md §2 (Raft §5.4.2): a leader's HW moves only past the start of its
 * own epoch; counting replicas of older entries alone is unsafe. */
static void check_own_epoch_commit(sim_t *s, sim_node_t *n, int32_t epoch, int64_t hw)
{
    const sim_disk_t *d = &n->disk;
    int64_t lo = 0, hi = d->n; /* first index with epoch >= `epoch` (epochs never decrease) */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (d->log[mid].epoch < epoch)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == d->n) return; /* nothing of its epoch in the log: its snapshot covers its start */
    int64_t first = d->snap.end_offset + lo;
    if (hw <= first)
        sim_fail(s, SIM_FAIL_SAFETY, "leader-commits-through-own-epoch",
                 "leader n%d of epoch %d moved its HW to %" PRId64 ", not past %" PRId64
                 ", the first entry of its own epoch",
                 n->id, epoch, hw, first);
}

void sim_check_after_step(sim_t *s, sim_node_t *n)
{
    raft_t *r = n->r;
    raft_role_t role = raft_role(r);
    int32_t epoch = raft_epoch(r);
    trace_role(s, n, role, epoch, raft_leader(r));
    if (n->voter == (role == RAFT_OBSERVER)) {
        sim_fail(s, SIM_FAIL_SAFETY, "observer-role", "n%d (%s) is in role %s", n->id,
                 n->voter ? "voter" : "observer", raft_role_name(role));
        return;
    }
    if (role == RAFT_LEADER) { /* invariant 1: at most one leader per epoch, ever */
        sim_grow((void **)&s->leader_of, &s->n_leader_of, (int64_t)epoch + 1, sizeof *s->leader_of);
        if (s->leader_of[epoch] == 0) {
            s->leader_of[epoch] = n->id;
            s->res->elections++;
            check_leader_complete(s, n, epoch);
            if (s->failed) return;
        } else if (s->leader_of[epoch] != n->id) {
            sim_fail(s, SIM_FAIL_SAFETY, "one-leader-per-epoch", "n%d and n%d were both leader of epoch %d",
                     s->leader_of[epoch], n->id, epoch);
            return;
        }
    }
    if (n->voter && n->disk.hs.epoch != epoch) {
        sim_fail(s, SIM_FAIL_SAFETY, "epoch-durable-before-use",
                 "n%d acts in epoch %d but its durable quorum state says epoch %d", n->id, epoch, n->disk.hs.epoch);
        return;
    }
    /* the core's log and the simulated disk must describe the same log */
    int64_t dend = sim_disk_end(&n->disk);
    if (raft_log_end(r) != dend || raft_log_start(r) != n->disk.snap.end_offset ||
        raft_durable_end(r) > n->disk.durable_end) {
        sim_fail(s, SIM_FAIL_SAFETY, "io-log-matches-disk",
                 "n%d says log [%" PRId64 ", %" PRId64 ") durable to %" PRId64 "; the updates it emitted give [%" PRId64
                 ", %" PRId64 ") durable to %" PRId64,
                 n->id, raft_log_start(r), raft_log_end(r), raft_durable_end(r), n->disk.snap.end_offset, dend,
                 n->disk.durable_end);
        return;
    }
    int64_t hw = raft_high_watermark(r);
    if (hw < n->hw) { /* invariant 3 */
        sim_fail(s, SIM_FAIL_SAFETY, "hw-never-decreases", "n%d's high watermark went from %" PRId64 " to %" PRId64,
                 n->id, n->hw, hw);
        return;
    }
    if (hw > n->hw && role == RAFT_LEADER) check_own_epoch_commit(s, n, epoch, hw);
    n->hw = hw;
    check_new_committed(s, n);
    if (hw > s->majority_verified && !s->failed) check_durable_majority(s, n, hw);
    if (s->res->steps - s->last_full_scan >= SIM_FULL_SCAN_STEPS) sim_check_full_scan(s);
}

/* Invariant 4 in full, plus the core's entries against the disk, byte for byte. */
void sim_check_full_scan(sim_t *s)
{
    s->last_full_scan = s->res->steps;
    for (int i = 0; i < s->n_nodes && !s->failed; i++) {
        sim_node_t *n = &s->nodes[i];
        if (!n->r) continue;
        int64_t end = sim_disk_end(&n->disk);
        for (int64_t o = n->disk.snap.end_offset; o < end && !s->failed; o++) {
            const raft_entry_t *d = sim_disk_entry(&n->disk, o), *c = raft_entry_at(n->r, o);
            if (!c || c->offset != o || c->epoch != d->epoch || c->control != d->control || c->len != d->len ||
                (d->len && memcmp(c->data, d->data, d->len) != 0))
                sim_fail(s, SIM_FAIL_SAFETY, "io-log-matches-disk",
                         "n%d's entry at offset %" PRId64 " differs from what its updates wrote to disk", n->id, o);
            else if (o < n->hw)
                check_committed_entry(s, n, d);
        }
    }
    sim_check_promises(s);
}

/* raft.h PROPOSE: an entry is committed at its assigned offset exactly when
 * the committed entry there has the propose epoch, and then it is our data. */
void sim_check_promises(sim_t *s)
{
    for (int64_t i = 0; i < s->n_promises && !s->failed; i++) {
        const sim_promise_t *p = &s->promises[i];
        if (p->offset >= s->n_committed || !s->committed[p->offset].set) continue;
        const sim_committed_t *c = &s->committed[p->offset];
        if (c->epoch == p->epoch && (c->hash != p->hash || c->control))
            sim_fail(s, SIM_FAIL_SAFETY, "proposal-committed-as-assigned",
                     "a proposal was assigned offset %" PRId64 " in epoch %d, but a different entry of that epoch "
                     "was committed there",
                     p->offset, p->epoch);
    }
}
