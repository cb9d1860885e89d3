/* raft_elect.c — elections: Vote with KIP-996 pre-vote, Begin/EndQuorumEpoch and
 * check-quorum (KIP-595, Raft §5.2/§5.4.1, DESIGN.md §2). */
#include <stdio.h>

#include "keel/err.h"
#include "raft_internal.h"

/* Raft §5.4.1 / KIP-595: a candidate's log is at least as long as ours when its
 * last epoch is newer, or the same with an end offset at least ours. Both sides
 * use their durable log: only durable entries ever count toward a commit. */
static bool candidate_log_ok(const raft_t *r, int32_t last_epoch, int64_t end_offset)
{
    if (r->cfg.test_bug == RAFT_BUG_VOTE_FOR_SHORTER_LOG) return true; /* deliberate breakage (test hook) */
    const int32_t mine = raft_durable_last_epoch(r);
    if (last_epoch != mine) return last_epoch > mine;
    return end_offset >= r->log.durable_end;
}

/* KIP-996: a voter refuses pre-votes while it hears from a live leader: it is
 * the leader, or it fetched successfully from the leader itself within the
 * fetch timeout and neither lost the connection nor was told the leader
 * resigned. A leader known only by hearsay (another node's message, the disk)
 * is not live. Nor is one that leaves our own fetch unanswered past
 * fetch_stall_ms (DESIGN.md §2 long poll bound, raft_leader_fetch_overdue):
 * the asker applied the same rule to its own fetch. Followers that the leader
 * answered together agree within a few ms; one whose fetch went out later
 * refuses until its own is overdue too (at most the long poll later), which
 * the asker's re-asks (refused_for_our_leader) and its own round bridge. */
static bool has_live_leader(const raft_t *r)
{
    if (r->role == RAFT_LEADER) return true;
    return r->role == RAFT_FOLLOWER && !r->leader_down && !r->leader_resigned &&
           r->leader_contact_ms != RAFT_NO_CONTACT && r->now - r->leader_contact_ms < r->cfg.fetch_timeout_ms &&
           !raft_leader_fetch_overdue(r);
}

/* ---- our own round (prospective or candidate) ------------------------------------ */

static void tally(raft_t *r)
{
    int granted = 0, rejected = 0;
    for (int i = 0; i < r->cfg.n_voters; i++) {
        granted += r->voters[i].vote == RAFT_VOTE_GRANTED;
        rejected += r->voters[i].vote == RAFT_VOTE_REJECTED;
    }
    char why[64];
    if (granted >= r->majority) {
        if (r->role == RAFT_PROSPECTIVE) {
            snprintf(why, sizeof why, "pre-vote won %d/%d", granted, r->cfg.n_voters);
            raft_become_candidate(r, why);
        } else {
            raft_become_leader(r);
        }
    } else if (rejected > r->cfg.n_voters - r->majority) {
        snprintf(why, sizeof why, "rejected by %d of %d voters", rejected, r->cfg.n_voters);
        raft_round_lost(r, why);
    }
}

/* A prospective asks for a pre-vote on epoch+1 (its epoch unchanged), a
 * candidate for a real vote on its (already raised) epoch. Both offer the
 * durable log (its end and the epoch of the entry before it). */
static void ask_vote(raft_t *r, raft_peer_t *p)
{
    const bool pre = r->role == RAFT_PROSPECTIVE;
    raft_msg_t *m = raft_send_request(r, RAFT_MSG_VOTE_REQ, p->id);
    m->epoch = r->epoch + (pre ? 1 : 0);
    m->u.vote_req.pre_vote = pre;
    m->u.vote_req.last_epoch = raft_durable_last_epoch(r);
    m->u.vote_req.end_offset = r->log.durable_end;
    p->vote_rpc = m->rpc_id;
}

/* Asks every other voter. */
void raft_start_round(raft_t *r, const char *why)
{
    const bool pre = r->role == RAFT_PROSPECTIVE;
    r->backing_off = false;
    r->timer_ms = r->now + raft_election_timeout(r);
    raft_note(r, 1, "%s for epoch %d started (%s)", pre ? "pre-vote" : "election", r->epoch + (pre ? 1 : 0), why);
    for (int i = 0; i < r->cfg.n_voters; i++) {
        raft_peer_t *p = &r->voters[i];
        p->vote = i == r->self_idx ? RAFT_VOTE_GRANTED : RAFT_VOTE_NONE;
        p->vote_rpc = 0;
        p->reask_ms = RAFT_NEVER;
        p->reasks = 0;
        if (i != r->self_idx) ask_vote(r, p);
    }
    tally(r); /* a single voter wins at once */
}

/* A round failed (majority rejected or time ran out). KIP-996: a prospective
 * that knew a leader, not known to have resigned, follows it again; anyone else
 * backs off for a random time and then runs a new pre-vote. Following the same
 * leader again keeps what we knew of it (set_state): the time we last heard
 * from it and whether its connection is broken. Starting that clock afresh
 * would make us refuse the other voters' pre-votes for a whole fetch timeout
 * although the leader has been silent all along, and two followers of a paused
 * leader could keep refusing each other out of phase for a long time. */
void raft_round_lost(raft_t *r, const char *why)
{
    const bool pre = r->role == RAFT_PROSPECTIVE;
    const int32_t epoch = r->epoch + (pre ? 1 : 0);
    char buf[128];
    if (pre && r->leader_id != RAFT_NO_NODE && !r->leader_resigned) {
        snprintf(buf, sizeof buf, "pre-vote for epoch %d %s", epoch, why);
        raft_become_follower(r, r->epoch, r->leader_id, buf);
        return;
    }
    r->backing_off = true;
    const int64_t backoff = kl_rng_range(&r->rng, 0, (int64_t)r->cfg.election_backoff_max_ms + 1);
    r->timer_ms = r->now + backoff;
    raft_note(r, 1, "%s for epoch %d %s; retrying in %lld ms", pre ? "pre-vote" : "election", epoch, why,
              (long long)backoff);
}

/* A pre-vote refusal from a voter that follows our own leader in our epoch,
 * while our connection to that leader is broken (RAFT_EV_PEER_DOWN, or it
 * disowned the epoch). The voter most likely refused because it still
 * believes in the leader: its own connection has not broken yet, or it broke
 * and the news is still on its way. Counting that refusal as final would make
 * us wait out the whole round (an election timeout) when the leader is really
 * dead and its vote never comes, so we ask that voter again after another
 * fast-election delay, at most RAFT_PREVOTE_REASKS times per round (after that
 * the refusal counts). This cannot disrupt a healthy leader: pre-votes never
 * change epochs, a voter that hears from the leader keeps refusing, and the
 * leader itself refuses (its own refusal is never re-asked). The price is a
 * few extra Vote requests. (The response does not say why it refused; a
 * refusal for a shorter log looks the same and is just re-asked in vain.) */
static bool refused_for_our_leader(const raft_t *r, const raft_msg_t *m)
{
    return r->leader_down && r->leader_id != RAFT_NO_NODE && m->from != r->leader_id && m->error == RAFT_OK &&
           m->epoch == r->epoch && m->leader_id == r->leader_id;
}

void raft_on_vote_resp(raft_t *r, const raft_msg_t *m)
{
    if ((r->role != RAFT_PROSPECTIVE && r->role != RAFT_CANDIDATE) || r->backing_off || r->stopping) return;
    const bool pre = r->role == RAFT_PROSPECTIVE;
    const int idx = raft_voter_index(r, m->from);
    if (idx < 0 || m->u.vote_resp.pre_vote != pre) return;
    raft_peer_t *p = &r->voters[idx];
    if (p->vote_rpc != m->rpc_id || p->vote != RAFT_VOTE_NONE) return; /* stale or duplicate */
    if (!pre && m->epoch != r->epoch) return;
    const bool granted = m->error == RAFT_OK && m->u.vote_resp.granted;
    if (pre && !granted && p->reasks < RAFT_PREVOTE_REASKS && refused_for_our_leader(r, m)) {
        p->vote_rpc = 0; /* this answer is spent: a duplicate of it must not count */
        p->reasks++;
        p->reask_ms = r->now + raft_fast_election_delay(r);
        raft_note(r, 1, "pre-vote refused by %d, which still follows leader %d; asking it again in %lld ms",
                  m->from, r->leader_id, (long long)(p->reask_ms - r->now));
        return;
    }
    p->vote = granted ? RAFT_VOTE_GRANTED : RAFT_VOTE_REJECTED;
    tally(r);
}

/* ---- answering votes ------------------------------------------------------------- */

void raft_on_vote_req(raft_t *r, const raft_msg_t *m)
{
    const bool pre = m->u.vote_req.pre_vote;
    const bool log_ok = candidate_log_ok(r, m->u.vote_req.last_epoch, m->u.vote_req.end_offset);
    bool grant = false;
    if (!raft_is_voter(r) || raft_voter_index(r, m->from) < 0) {
        grant = false; /* observers never vote; non-voters never get a vote */
    } else if (pre) {
        /* KIP-996: answer without changing state. The proposed epoch must be
         * newer than ours (a candidate asking for our own epoch or an older
         * one learns our epoch from the answer and catches up). */
        grant = m->epoch > r->epoch && log_ok && !has_live_leader(r);
    } else if (m->epoch == r->epoch) {
        if (r->voted_for == m->from) {
            grant = true; /* the candidate asks again: same answer, at most one vote per epoch */
        } else if (r->voted_for == RAFT_NO_NODE && r->leader_id == RAFT_NO_NODE && log_ok &&
                   (r->role == RAFT_UNATTACHED || r->role == RAFT_PROSPECTIVE)) {
            /* KIP-996: a prospective that votes gives up its own round */
            if (r->role == RAFT_PROSPECTIVE) raft_become_unattached(r, r->epoch, "voting");
            else if (raft_can_campaign(r)) r->timer_ms = r->now + raft_election_timeout(r);
            r->voted_for = m->from;
            grant = true;
            raft_note(r, 1, "voted for %d in epoch %d", m->from, r->epoch);
        }
    }
    /* DESIGN.md §2: a real vote is durable before its answer leaves (same update) */
    if (grant && !pre) r->force_persist = true;
    raft_msg_t *resp = raft_send_response(r, m->from, m->rpc_id, RAFT_MSG_VOTE_RESP, RAFT_OK);
    resp->u.vote_resp.pre_vote = pre;
    resp->u.vote_resp.granted = grant;
}

/* ---- BeginQuorumEpoch ---------------------------------------------------------------- */

void raft_on_begin_epoch_req(raft_t *r, const raft_msg_t *m)
{
    int16_t err = RAFT_OK;
    if (m->epoch < r->epoch) {
        err = RAFT_ERR_FENCED_EPOCH;
    } else if (r->leader_id != m->from) {
        err = RAFT_ERR_INVALID_REQUEST; /* a second leader of our epoch: impossible, refuse */
    } else if (r->role == RAFT_FOLLOWER || r->role == RAFT_OBSERVER) {
        raft_leader_contact(r);
    } else if (r->role == RAFT_PROSPECTIVE && !r->leader_resigned) {
        raft_become_follower(r, r->epoch, m->from, "BeginQuorumEpoch");
        raft_leader_contact(r); /* from the leader itself */
    }
    raft_send_response(r, m->from, m->rpc_id, RAFT_MSG_BEGIN_EPOCH_RESP, err);
}

void raft_on_begin_epoch_resp(raft_t *r, const raft_msg_t *m)
{
    const int idx = raft_voter_index(r, m->from);
    if (r->role == RAFT_LEADER && m->epoch == r->epoch && m->error == RAFT_OK && idx >= 0)
        r->voters[idx].epoch_acked = true;
}

/* ---- EndQuorumEpoch ------------------------------------------------------------------ */

/* KIP-595: preferred successors, the voters with the longest known log first. */
static int successors(const raft_t *r, int32_t *out)
{
    int idx[RAFT_MAX_VOTERS], n = 0;
    for (int i = 0; i < r->cfg.n_voters; i++) {
        if (i == r->self_idx) continue;
        int j = n++;
        for (; j > 0 && r->voters[idx[j - 1]].end_offset < r->voters[i].end_offset; j--) idx[j] = idx[j - 1];
        idx[j] = i;
    }
    for (int i = 0; i < n; i++) out[i] = r->voters[idx[i]].id;
    return n;
}

void raft_send_end_epoch(raft_t *r, int idx)
{
    raft_msg_t *m = raft_send_request(r, RAFT_MSG_END_EPOCH_REQ, r->voters[idx].id);
    m->u.end_epoch_req.n_successors = successors(r, m->u.end_epoch_req.successors);
    r->voters[idx].epoch_sent_ms = r->now;
}

void raft_on_end_epoch_req(raft_t *r, const raft_msg_t *m)
{
    if (m->epoch < r->epoch) {
        raft_send_response(r, m->from, m->rpc_id, RAFT_MSG_END_EPOCH_RESP, RAFT_ERR_FENCED_EPOCH);
        return;
    }
    raft_send_response(r, m->from, m->rpc_id, RAFT_MSG_END_EPOCH_RESP, RAFT_OK);
    if (!raft_is_voter(r) || r->leader_id != m->from || raft_serves_fetches(r)) return;

    int pos = m->u.end_epoch_req.n_successors;
    for (int i = 0; i < m->u.end_epoch_req.n_successors; i++)
        if (m->u.end_epoch_req.successors[i] == r->cfg.node_id) pos = i;
    const bool first_time = !r->leader_resigned;
    r->leader_resigned = true;
    if (!raft_can_campaign(r)) return;
    if (pos == 0 && r->role != RAFT_CANDIDATE) {
        /* the leader chose us: elect ourselves at once, no pre-vote needed */
        char why[64];
        snprintf(why, sizeof why, "preferred successor of resigned leader %d", m->from);
        raft_become_candidate(r, why);
    } else if (r->role == RAFT_FOLLOWER) {
        /* later successors wait a little longer each, to let the earlier ones win */
        const int64_t step = r->cfg.fast_election_max_ms;
        const int64_t at = r->now + kl_rng_range(&r->rng, pos * step, (pos + 1) * step);
        if (at < r->timer_ms) r->timer_ms = at;
        if (first_time)
            raft_note(r, 1, "leader %d resigned epoch %d; successor #%d, pre-vote in %lld ms", m->from, r->epoch,
                      pos + 1, (long long)(r->timer_ms - r->now));
    }
}

static bool all_acked(const raft_t *r)
{
    for (int i = 0; i < r->cfg.n_voters; i++)
        if (i != r->self_idx && !r->voters[i].epoch_acked) return false;
    return true;
}

void raft_on_end_epoch_resp(raft_t *r, const raft_msg_t *m)
{
    const int idx = raft_voter_index(r, m->from);
    if (r->role != RAFT_RESIGNED || m->epoch != r->epoch || m->error != RAFT_OK || idx < 0) return;
    r->voters[idx].epoch_acked = true;
    if (r->resigned_check_quorum && all_acked(r)) raft_become_unattached(r, r->epoch, "voters acknowledged resignation");
}

/* ---- leader timers: check-quorum and Begin/EndQuorumEpoch resends ----------------- */

/* DESIGN.md §2 check-quorum: the leader resigns when it has not been fetched
 * from by a majority (itself included) within 1.5 x fetch timeout. Returns when
 * that happens unless more fetches arrive. The window opens at the election. */
static int64_t quorum_deadline(const raft_t *r)
{
    int64_t contact[RAFT_MAX_VOTERS];
    for (int i = 0; i < r->cfg.n_voters; i++) {
        const int64_t f = r->voters[i].last_fetch_ms;
        contact[i] = i == r->self_idx ? RAFT_NEVER : f > r->leader_since_ms ? f : r->leader_since_ms;
    }
    const int64_t c = raft_majority_value(r, contact); /* the majority-th most recent contact */
    if (c == RAFT_NEVER) return RAFT_NEVER;
    return c + (int64_t)r->cfg.fetch_timeout_ms * RAFT_CHECK_QUORUM_PERCENT / 100 + 1;
}

static int64_t resend_deadline(const raft_t *r)
{
    int64_t d = RAFT_NEVER;
    for (int i = 0; i < r->cfg.n_voters; i++) {
        const raft_peer_t *p = &r->voters[i];
        if (i == r->self_idx || p->epoch_acked) continue;
        const int64_t at = p->epoch_sent_ms + r->cfg.request_timeout_ms;
        if (at < d) d = at;
    }
    return d;
}

/* Pre-vote re-asks due (see refused_for_our_leader). */
static void reask_timers(raft_t *r)
{
    if (r->role != RAFT_PROSPECTIVE || r->backing_off) return;
    for (int i = 0; i < r->cfg.n_voters; i++) {
        raft_peer_t *p = &r->voters[i];
        if (r->now < p->reask_ms) continue;
        p->reask_ms = RAFT_NEVER;
        ask_vote(r, p);
    }
}

static int64_t reask_deadline(const raft_t *r)
{
    int64_t d = RAFT_NEVER;
    if (r->role != RAFT_PROSPECTIVE || r->backing_off) return d;
    for (int i = 0; i < r->cfg.n_voters; i++)
        if (r->voters[i].reask_ms < d) d = r->voters[i].reask_ms;
    return d;
}

void raft_elect_timers(raft_t *r)
{
    reask_timers(r);
    if (r->role == RAFT_LEADER && r->now >= quorum_deadline(r)) {
        char why[96];
        snprintf(why, sizeof why, "check-quorum: no fetch from a majority for %lld ms",
                 (long long)r->cfg.fetch_timeout_ms * RAFT_CHECK_QUORUM_PERCENT / 100);
        raft_resign(r, false, why);
    }
    if (!raft_serves_fetches(r)) return;
    /* KIP-595: repeat Begin (leader) / End (resigned) QuorumEpoch to voters that
     * have neither acknowledged it nor fetched in this epoch */
    for (int i = 0; i < r->cfg.n_voters; i++) {
        raft_peer_t *p = &r->voters[i];
        if (i == r->self_idx || p->epoch_acked || r->now < p->epoch_sent_ms + r->cfg.request_timeout_ms) continue;
        if (r->role == RAFT_RESIGNED) {
            raft_send_end_epoch(r, i);
        } else {
            raft_send_request(r, RAFT_MSG_BEGIN_EPOCH_REQ, p->id);
            p->epoch_sent_ms = r->now;
        }
    }
}

int64_t raft_elect_deadline(const raft_t *r)
{
    if (!raft_serves_fetches(r)) return reask_deadline(r);
    int64_t d = resend_deadline(r);
    if (r->role == RAFT_LEADER) {
        const int64_t q = quorum_deadline(r);
        if (q < d) d = q;
    }
    return d;
}
