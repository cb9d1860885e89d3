/* raft_repl.c — replication by pull (KIP-595 Fetch and FetchSnapshot, both sides),
 * group commit of proposals, the high watermark and snapshots (DESIGN.md §2). */
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "raft_internal.h"

/* ---- high watermark: the one place it is computed ------------------------------- */

/* Largest offset held durably by a majority of voters: the leader's own durable
 * end and, for the others, the fetch offset of their last valid fetch in this
 * epoch. Observers never count. */
static int64_t majority_durable_offset(const raft_t *r)
{
    int64_t v[RAFT_MAX_VOTERS];
    for (int i = 0; i < r->cfg.n_voters; i++) v[i] = i == r->self_idx ? r->log.durable_end : r->voters[i].end_offset;
    return raft_majority_value(r, v);
}

/* DESIGN.md §2. Leader: the majority offset, once it passes the leader's own
 * leader-change entry (Raft §5.4.2: only entries of the current epoch commit by
 * counting). Resigned: frozen. Others: what the leader said, bounded by our own
 * durable end. The HW never decreases. */
void raft_update_hw(raft_t *r)
{
    int64_t hw = r->hw;
    switch (r->role) {
    case RAFT_LEADER:
        if (r->cfg.test_bug == RAFT_BUG_COMMIT_WITHOUT_MAJORITY) { /* deliberate breakage (test hook) */
            hw = raft_memlog_end(&r->log);
        } else {
            const int64_t m = majority_durable_offset(r);
            if (m > r->epoch_start) hw = m;
        }
        break;
    case RAFT_RESIGNED:
        return;
    default:
        hw = r->leader_hw < r->log.durable_end ? r->leader_hw : r->log.durable_end;
        break;
    }
    if (hw > r->hw) r->hw = hw;
}

/* ---- leader side: answering fetches ------------------------------------------- */

typedef enum fetch_check { FETCH_VALID, FETCH_SNAPSHOT, FETCH_DIVERGING } fetch_check_t;

/* KIP-595 fetch validation of (fetch offset, last fetched epoch) against our log.
 * Below our log start, or older than our snapshot: fetch the snapshot. Our end
 * offset for that epoch (the start of the next epoch in our log, or our log end)
 * is below the fetch offset, or we do not have that epoch: the fetcher diverged
 * and learns our largest epoch <= its epoch with that epoch's end offset. */
static fetch_check_t check_position(const raft_t *r, int64_t fetch_offset, int32_t last_epoch,
                                    int32_t *div_epoch, int64_t *div_end)
{
    const raft_memlog_t *l = &r->log;
    if (l->start > 0 && (fetch_offset < l->start || last_epoch < l->start_epoch)) return FETCH_SNAPSHOT;
    int32_t found;
    const int64_t end = raft_memlog_epoch_end(l, last_epoch, &found);
    if (found == last_epoch && fetch_offset <= end) return FETCH_VALID;
    KL_ASSERT(found >= 0); /* last_epoch >= the snapshot epoch was checked above */
    *div_epoch = found;
    *div_end = end;
    return FETCH_DIVERGING;
}

static raft_msg_t *new_fetch_resp(raft_t *r, int32_t to, uint64_t rpc_id, int16_t error)
{
    raft_msg_t *m = raft_send_response(r, to, rpc_id, RAFT_MSG_FETCH_RESP, error);
    m->u.fetch_resp.high_watermark = r->hw;
    m->u.fetch_resp.log_start_offset = r->log.start;
    m->u.fetch_resp.diverging_epoch = -1;
    m->u.fetch_resp.diverging_end_offset = -1;
    m->u.fetch_resp.snapshot_id = (raft_snapshot_id_t){-1, -1};
    return m;
}

/* Answers a fetch from the log as it is now: snapshot, divergence, or the
 * durable entries from the fetch offset (at least one, then up to
 * fetch_max_bytes). Entries are served only once durable on the leader. */
static void respond_fetch(raft_t *r, raft_peer_t *p, int32_t to, uint64_t rpc_id, int64_t fetch_offset,
                          int32_t last_epoch)
{
    if (!raft_serves_fetches(r)) {
        new_fetch_resp(r, to, rpc_id, RAFT_ERR_NOT_LEADER);
        return;
    }
    raft_msg_t *m = new_fetch_resp(r, to, rpc_id, RAFT_OK);
    p->hw_sent = r->hw;
    int32_t div_epoch;
    int64_t div_end;
    switch (check_position(r, fetch_offset, last_epoch, &div_epoch, &div_end)) {
    case FETCH_SNAPSHOT:
        m->u.fetch_resp.snapshot_id = r->snap;
        return;
    case FETCH_DIVERGING:
        m->u.fetch_resp.diverging_epoch = div_epoch;
        m->u.fetch_resp.diverging_end_offset = div_end;
        return;
    case FETCH_VALID:
        break;
    }
    int n = 0;
    uint64_t bytes = 0;
    for (int64_t off = fetch_offset; off < r->log.durable_end && n < RAFT_MAX_FETCH_ENTRIES; off++, n++) {
        const uint32_t len = raft_memlog_at(&r->log, off)->len;
        if (n > 0 && bytes + len > r->cfg.fetch_max_bytes) break;
        bytes += len;
    }
    raft_attach_entries(r, m, fetch_offset, n);
}

static void respond_held(raft_t *r, raft_peer_t *p)
{
    p->held.active = false;
    respond_fetch(r, p, p->id, p->held.rpc_id, p->held.fetch_offset, p->held.last_fetched_epoch);
}

static raft_peer_t *find_fetcher(raft_t *r, int32_t id)
{
    const int idx = raft_voter_index(r, id);
    if (idx >= 0) return &r->voters[idx];
    for (int i = 0; i < r->n_observers; i++)
        if (r->observers[i].id == id) return &r->observers[i];
    return NULL;
}

/* The peer record of a fetcher; a new observer takes a free slot, or the slot
 * of the observer heard from least recently (its parked fetch is answered). */
static raft_peer_t *fetcher(raft_t *r, int32_t id)
{
    raft_peer_t *p = find_fetcher(r, id);
    if (p) return p;
    if (r->n_observers < RAFT_MAX_OBSERVERS) {
        p = &r->observers[r->n_observers++];
    } else {
        p = &r->observers[0];
        for (int i = 1; i < r->n_observers; i++)
            if (r->observers[i].last_fetch_ms < p->last_fetch_ms) p = &r->observers[i];
        if (p->held.active) respond_held(r, p);
    }
    raft_reset_peer(p, id);
    return p;
}

void raft_on_fetch_req(raft_t *r, const raft_msg_t *m)
{
    const int64_t fetch_offset = m->u.fetch_req.fetch_offset;
    const int32_t last_epoch = m->u.fetch_req.last_fetched_epoch;
    if (m->epoch < r->epoch) { /* the fetcher is behind: it learns our epoch and leader */
        new_fetch_resp(r, m->from, m->rpc_id, RAFT_ERR_FENCED_EPOCH);
        return;
    }
    if (!raft_serves_fetches(r)) {
        new_fetch_resp(r, m->from, m->rpc_id, RAFT_ERR_NOT_LEADER);
        return;
    }
    raft_peer_t *p = fetcher(r, m->from);
    p->last_fetch_ms = r->now;
    p->epoch_acked = true;
    p->held.active = false; /* a new fetch replaces a parked one */
    int32_t div_epoch;
    int64_t div_end;
    const bool valid = check_position(r, fetch_offset, last_epoch, &div_epoch, &div_end) == FETCH_VALID;
    if (valid) {
        /* its log matches ours up to fetch_offset and is durable there */
        p->end_offset = fetch_offset;
        if (fetch_offset >= r->log.durable_end) p->caught_up_ms = r->now;
        raft_update_hw(r);
    }
    if (valid && fetch_offset >= r->log.durable_end && r->hw == p->hw_sent && r->cfg.fetch_max_wait_ms > 0) {
        /* nothing new to tell: park it (long poll) */
        p->held = (raft_held_fetch_t){true, m->rpc_id, fetch_offset, last_epoch, r->now + r->cfg.fetch_max_wait_ms};
        return;
    }
    respond_fetch(r, p, m->from, m->rpc_id, fetch_offset, last_epoch);
}

static void answer_held(raft_t *r, raft_peer_t *p, bool all)
{
    const raft_held_fetch_t *h = &p->held;
    if (h->active && (all || r->log.durable_end > h->fetch_offset || r->hw > p->hw_sent || r->now >= h->deadline_ms))
        respond_held(r, p);
}

/* Parked fetches are answered when new entries became durable, the HW moved
 * past what the fetcher knows, or fetch_max_wait_ms passed; `all` answers every
 * one (we stop leading). */
void raft_answer_held_fetches(raft_t *r, bool all)
{
    for (int i = 0; i < r->cfg.n_voters; i++) answer_held(r, &r->voters[i], all);
    for (int i = 0; i < r->n_observers; i++) answer_held(r, &r->observers[i], all);
}

void raft_on_fetch_snapshot_req(raft_t *r, const raft_msg_t *m)
{
    const raft_snapshot_id_t id = m->u.fetch_snapshot_req.snapshot_id;
    const uint64_t pos = m->u.fetch_snapshot_req.position;
    int16_t err = m->epoch < r->epoch ? RAFT_ERR_FENCED_EPOCH
                  : !raft_serves_fetches(r) ? RAFT_ERR_NOT_LEADER
                  : r->snap.end_offset == 0 || id.end_offset != r->snap.end_offset ||
                          id.last_epoch != r->snap.last_epoch
                      ? RAFT_ERR_SNAPSHOT_NOT_FOUND
                  : pos > r->snap_len ? RAFT_ERR_INVALID_REQUEST
                                      : RAFT_OK;
    if (raft_serves_fetches(r) && m->epoch == r->epoch) {
        raft_peer_t *p = fetcher(r, m->from);
        p->last_fetch_ms = r->now;
        p->epoch_acked = true;
    }
    raft_msg_t *resp = raft_send_response(r, m->from, m->rpc_id, RAFT_MSG_FETCH_SNAPSHOT_RESP, err);
    resp->u.fetch_snapshot_resp.snapshot_id = id;
    resp->u.fetch_snapshot_resp.position = pos;
    if (err != RAFT_OK) return;
    const uint64_t left = r->snap_len - pos;
    resp->u.fetch_snapshot_resp.size = r->snap_len;
    resp->u.fetch_snapshot_resp.chunk = r->snap_data + pos;
    resp->u.fetch_snapshot_resp.chunk_len = (uint32_t)(left < r->cfg.snapshot_chunk_bytes ? left : r->cfg.snapshot_chunk_bytes);
}

/* ---- follower/observer side: fetching ------------------------------------------ */

static bool fetching_role(const raft_t *r)
{
    return (r->role == RAFT_FOLLOWER || r->role == RAFT_OBSERVER) && !r->stopping;
}

/* The leader, or for an observer that knows none, the voters in turn. */
static int32_t fetch_target(const raft_t *r)
{
    if (r->leader_id != RAFT_NO_NODE) return r->leader_id;
    return r->role == RAFT_OBSERVER ? r->cfg.voters[r->rr] : RAFT_NO_NODE;
}

static void send_fetch(raft_t *r)
{
    const int32_t to = fetch_target(r);
    if (to == RAFT_NO_NODE) return;
    raft_msg_t *m;
    if (r->snapfetch.active) {
        m = raft_send_request(r, RAFT_MSG_FETCH_SNAPSHOT_REQ, to);
        m->u.fetch_snapshot_req.snapshot_id = r->snapfetch.id;
        m->u.fetch_snapshot_req.position = r->snapfetch.pos;
        r->inflight.kind = RAFT_FETCH_SNAPSHOT;
    } else {
        m = raft_send_request(r, RAFT_MSG_FETCH_REQ, to);
        m->u.fetch_req.fetch_offset = r->log.durable_end;
        m->u.fetch_req.last_fetched_epoch = raft_durable_last_epoch(r);
        r->inflight.kind = RAFT_FETCH_LOG;
    }
    r->inflight.active = true;
    r->inflight.rpc_id = m->rpc_id;
    r->inflight.to = to;
    r->inflight.sent_ms = r->now;
}

static void retry_later(raft_t *r) { r->fetch_ready_ms = r->now + RAFT_RETRY_BACKOFF_MS; }

static bool take_inflight(raft_t *r, const raft_msg_t *m, raft_fetch_kind_t kind)
{
    if (!r->inflight.active || r->inflight.kind != kind || r->inflight.rpc_id != m->rpc_id ||
        r->inflight.to != m->from)
        return false; /* stale, duplicate, or for a state we left */
    r->inflight.active = false;
    return true;
}

/* An error answer that taught us nothing new (new epochs and leaders were
 * adopted by observe() already, which also dropped this fetch). */
static void fetch_failed(raft_t *r, const raft_msg_t *m)
{
    if (m->from == r->leader_id) { /* our leader no longer leads this epoch (restarted or resigned) */
        if (r->role == RAFT_FOLLOWER) raft_leader_lost(r, "leader disowned the epoch");
        else raft_forget_leader(r, "it disowned the epoch");
    } else if (r->role == RAFT_OBSERVER && r->leader_id == RAFT_NO_NODE) {
        r->rr = (r->rr + 1) % r->cfg.n_voters;
    }
    retry_later(r);
}

static void start_snapshot_fetch(raft_t *r, int32_t leader, raft_snapshot_id_t id)
{
    free(r->snapfetch.buf);
    memset(&r->snapfetch, 0, sizeof r->snapfetch);
    r->snapfetch.active = true;
    r->snapfetch.id = id;
    raft_note(r, 1, "leader %d has only a snapshot at offset %lld for us; fetching it", leader,
              (long long)id.end_offset);
}

/* KIP-595 divergence: truncate to min(leader's end of that epoch, our own end
 * of it), then fetch again. Never below the HW: committed entries never change. */
static void truncate_diverged(raft_t *r, int32_t leader, int32_t epoch, int64_t leader_end)
{
    int32_t found;
    const int64_t own_end = raft_memlog_epoch_end(&r->log, epoch, &found);
    int64_t to = leader_end < own_end ? leader_end : own_end;
    if (r->cfg.test_bug == RAFT_BUG_TRUNCATE_BELOW_HW) to = r->log.start; /* deliberate breakage (test hook) */
    else KL_ASSERT(to >= r->hw);
    const int64_t end = raft_memlog_end(&r->log);
    if (to >= end) {
        raft_note(r, 2, "leader %d reports divergence at epoch %d, offset %lld, but our log ends at %lld", leader,
                  epoch, (long long)leader_end, (long long)end);
        retry_later(r);
        return;
    }
    KL_ASSERT(r->emit_from < 0);
    raft_memlog_truncate(&r->log, to);
    if (r->out->truncate_to < 0 || to < r->out->truncate_to) r->out->truncate_to = to;
    raft_note(r, 2, "truncated log from %lld to %lld (diverged from leader %d at epoch %d)", (long long)end,
              (long long)to, leader, epoch);
}

/* Appends what the leader sent: it must extend our log exactly (it starts at
 * our end, which was the fetch offset) with epochs that never decrease. */
static void append_fetched(raft_t *r, const raft_msg_t *m)
{
    const raft_entry_t *es = m->u.fetch_resp.entries;
    const int n = m->u.fetch_resp.n_entries;
    const int64_t end = raft_memlog_end(&r->log);
    if (n > 0) {
        if (es[0].offset != end || es[0].epoch < raft_memlog_epoch_before(&r->log, end) ||
            es[n - 1].epoch > m->epoch) {
            raft_note(r, 2, "ignored fetch response from %d: entries at %lld do not extend our log at %lld", m->from,
                      (long long)es[0].offset, (long long)end);
            retry_later(r);
            return;
        }
        int i = 0;
        if (raft_memlog_reserve(&r->log, (size_t)n) == 0)
            while (i < n && raft_memlog_append_copy(&r->log, &es[i]) == 0) i++;
        if (i < n) raft_note(r, 3, "out of memory: appended %d of %d fetched entries", i, n);
        if (i > 0) raft_emit_from(r, end);
    }
    r->leader_hw = m->u.fetch_resp.high_watermark;
    raft_update_hw(r);
}

void raft_on_fetch_resp(raft_t *r, const raft_msg_t *m)
{
    if (!take_inflight(r, m, RAFT_FETCH_LOG)) return;
    if (m->error != RAFT_OK) {
        fetch_failed(r, m);
        return;
    }
    if (m->epoch != r->epoch || m->from != r->leader_id) {
        retry_later(r);
        return;
    }
    raft_leader_contact(r);
    if (m->u.fetch_resp.snapshot_id.end_offset >= 0)
        start_snapshot_fetch(r, m->from, m->u.fetch_resp.snapshot_id);
    else if (m->u.fetch_resp.diverging_epoch >= 0)
        truncate_diverged(r, m->from, m->u.fetch_resp.diverging_epoch, m->u.fetch_resp.diverging_end_offset);
    else
        append_fetched(r, m);
    /* the pump sends the next fetch once appended entries are durable */
}

static void install_snapshot(raft_t *r, int32_t leader)
{
    const raft_snapshot_id_t id = r->snapfetch.id;
    /* The leader sends a snapshot only for offsets it no longer has, which
     * are above anything this follower has committed; a snapshot below our
     * HW would move applied state backwards (as a truncation below HW would). */
    KL_ASSERT(id.end_offset >= r->hw);
    free(r->snap_data);
    r->snap = id;
    r->snap_data = r->snapfetch.buf;
    r->snap_len = r->snapfetch.size;
    memset(&r->snapfetch, 0, sizeof r->snapfetch);
    KL_ASSERT(r->emit_from < 0);
    raft_memlog_reset(&r->log, id.end_offset, id.last_epoch);
    if (r->applied < id.end_offset) r->applied = id.end_offset; /* the snapshot replaces the applied state */
    if (r->leader_hw < id.end_offset) r->leader_hw = id.end_offset; /* a snapshot is committed */
    raft_update_hw(r);
    r->out->install_snapshot = true;
    r->out->snapshot_id = id;
    r->out->snapshot_data = r->snap_data;
    r->out->snapshot_len = r->snap_len;
    raft_note(r, 1, "installed snapshot at offset %lld (epoch %d, %llu bytes) from leader %d",
              (long long)id.end_offset, id.last_epoch, (unsigned long long)r->snap_len, leader);
}

void raft_on_fetch_snapshot_resp(raft_t *r, const raft_msg_t *m)
{
    if (!take_inflight(r, m, RAFT_FETCH_SNAPSHOT)) return;
    if (m->error == RAFT_ERR_SNAPSHOT_NOT_FOUND) { /* the leader moved on: a fetch tells us its new snapshot */
        free(r->snapfetch.buf);
        memset(&r->snapfetch, 0, sizeof r->snapfetch);
        return;
    }
    if (m->error != RAFT_OK) {
        fetch_failed(r, m);
        return;
    }
    if (m->epoch != r->epoch || m->from != r->leader_id) {
        retry_later(r);
        return;
    }
    raft_leader_contact(r);
    const raft_snapshot_id_t id = m->u.fetch_snapshot_resp.snapshot_id;
    const uint64_t size = m->u.fetch_snapshot_resp.size;
    const uint32_t len = m->u.fetch_snapshot_resp.chunk_len;
    if (!r->snapfetch.active || id.end_offset != r->snapfetch.id.end_offset ||
        id.last_epoch != r->snapfetch.id.last_epoch || m->u.fetch_snapshot_resp.position != r->snapfetch.pos ||
        (r->snapfetch.buf && size != r->snapfetch.size) || (len == 0 && r->snapfetch.pos < size)) {
        raft_note(r, 2, "ignored unexpected snapshot chunk from %d", m->from);
        retry_later(r);
        return;
    }
    if (!r->snapfetch.buf) {
        r->snapfetch.buf = malloc(size ? size : 1);
        if (!r->snapfetch.buf) {
            raft_note(r, 3, "out of memory for a %llu-byte snapshot", (unsigned long long)size);
            retry_later(r);
            return;
        }
        r->snapfetch.size = size;
    }
    if (len) memcpy(r->snapfetch.buf + r->snapfetch.pos, m->u.fetch_snapshot_resp.chunk, len);
    r->snapfetch.pos += len;
    if (r->snapfetch.pos == r->snapfetch.size) install_snapshot(r, m->from);
}

/* ---- proposals and group commit ---------------------------------------------- */

int raft_validate_propose(const raft_event_t *ev)
{
    const int n = ev->u.propose.n;
    if (n < 1 || (uint32_t)n > RAFT_MAX_PENDING_ENTRIES || !ev->u.propose.data || !ev->u.propose.len)
        return KL_EINVAL;
    for (int i = 0; i < n; i++)
        if (ev->u.propose.len[i] > RAFT_MAX_ENTRY_BYTES || (ev->u.propose.len[i] && !ev->u.propose.data[i]))
            return KL_EINVAL;
    return 0;
}

/* Leader only. Offsets are assigned now; the entries wait (at most
 * append_linger_ms, or until max_batch_entries are pending) to be appended as
 * one batch: one append and one fsync for many proposals. */
void raft_on_propose(raft_t *r, const raft_event_t *ev)
{
    raft_update_t *out = r->out;
    if (r->role != RAFT_LEADER) {
        out->propose_error = KL_ENOTLEADER;
        return;
    }
    const uint32_t n = (uint32_t)ev->u.propose.n;
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) bytes += ev->u.propose.len[i];
    if (r->n_pending + n > RAFT_MAX_PENDING_ENTRIES || r->pending_bytes + bytes > RAFT_MAX_PENDING_BYTES) {
        out->propose_error = KL_EFULL;
        return;
    }
    /* room for the batch in the log too, so that the flush cannot fail */
    if (r->n_pending + n > r->cap_pending) {
        uint32_t cap = r->cap_pending ? r->cap_pending : 64;
        while (cap < r->n_pending + n) cap *= 2;
        raft_entry_t *p = realloc(r->pending, cap * sizeof *p);
        if (!p) goto nomem;
        r->pending = p;
        r->cap_pending = cap;
    }
    if (raft_memlog_reserve(&r->log, r->n_pending + n) != 0) goto nomem;
    const int64_t first = raft_memlog_end(&r->log) + r->n_pending;
    for (uint32_t i = 0; i < n; i++) {
        const uint32_t len = ev->u.propose.len[i];
        uint8_t *data = malloc(len ? len : 1);
        if (!data) {
            for (uint32_t j = 0; j < i; j++) free((void *)r->pending[r->n_pending + j].data);
            goto nomem;
        }
        if (len) memcpy(data, ev->u.propose.data[i], len);
        r->pending[r->n_pending + i] = (raft_entry_t){first + i, r->epoch, false, len, data};
    }
    if (r->n_pending == 0) r->pending_since_ms = r->now;
    r->n_pending += n;
    r->pending_bytes += bytes;
    out->propose_first_offset = first;
    out->propose_epoch = r->epoch;
    if (r->n_pending >= r->cfg.max_batch_entries || r->cfg.append_linger_ms == 0) raft_flush_pending(r);
    return;
nomem:
    out->propose_error = KL_ENOMEM;
}

void raft_flush_pending(raft_t *r)
{
    if (r->n_pending == 0) return;
    const int64_t first = raft_memlog_end(&r->log);
    KL_ASSERT(r->pending[0].offset == first);
    if (raft_memlog_reserve(&r->log, r->n_pending) != 0) { /* reserved at propose time; defensive */
        raft_drop_pending(r);
        return;
    }
    for (uint32_t i = 0; i < r->n_pending; i++) raft_memlog_append_owned(&r->log, &r->pending[i]);
    r->n_pending = 0;
    r->pending_bytes = 0;
    raft_emit_from(r, first);
}

/* Offsets handed out in an epoch we no longer lead never commit with that epoch. */
void raft_drop_pending(raft_t *r)
{
    if (r->n_pending == 0) return;
    raft_note(r, 2, "dropped %u proposals not yet appended (offsets from %lld, epoch %d)", r->n_pending,
              (long long)r->pending[0].offset, r->pending[0].epoch);
    for (uint32_t i = 0; i < r->n_pending; i++) free((void *)r->pending[i].data);
    r->n_pending = 0;
    r->pending_bytes = 0;
}

/* ---- persistence and snapshots ------------------------------------------------ */

void raft_on_persisted(raft_t *r, int64_t persisted_end)
{
    if (persisted_end <= r->log.durable_end) return;
    r->log.durable_end = persisted_end;
    raft_update_hw(r);
}

int raft_validate_snapshot(const raft_t *r, const raft_event_t *ev)
{
    const raft_snapshot_id_t id = ev->u.snapshot.id;
    /* only committed state may be snapshotted, and the log below it is then dropped */
    if (id.end_offset <= 0 || id.end_offset < r->log.start || id.end_offset > r->hw ||
        id.end_offset > raft_memlog_end(&r->log))
        return KL_EINVAL;
    if (id.last_epoch != raft_memlog_epoch_before(&r->log, id.end_offset)) return KL_EINVAL;
    if (ev->u.snapshot.len > RAFT_MAX_SNAPSHOT_BYTES || (ev->u.snapshot.len && !ev->u.snapshot.data))
        return KL_EINVAL;
    return 0;
}

int raft_on_snapshot(raft_t *r, const raft_event_t *ev)
{
    const uint64_t len = ev->u.snapshot.len;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) return KL_ENOMEM;
    if (len) memcpy(copy, ev->u.snapshot.data, len);
    free(r->snap_data);
    r->snap = ev->u.snapshot.id;
    r->snap_data = copy;
    r->snap_len = len;
    raft_memlog_trim(&r->log, r->snap.end_offset, r->snap.last_epoch);
    return 0;
}

/* ---- timers and the pump ------------------------------------------------------ */

void raft_on_peer_down_repl(raft_t *r, int32_t peer)
{
    if (r->inflight.active && r->inflight.to == peer) {
        r->inflight.active = false; /* retried shortly: the connection may come back */
        retry_later(r);
        if (r->role == RAFT_OBSERVER && r->leader_id == RAFT_NO_NODE) r->rr = (r->rr + 1) % r->cfg.n_voters;
    }
    /* A fetch this node holds for `peer` stays held: PEER_DOWN is about our
     * connection to it, while its fetch came over its own connection, which
     * may be fine. Dropping the fetch would leave it unanswered until the
     * follower thinks we stalled; an answer nobody can read is dropped by
     * the io layer instead. */
}

/* When our fetch in flight to the leader becomes overdue, RAFT_NEVER if it cannot. */
static int64_t stall_deadline(const raft_t *r)
{
    if (!r->cfg.fetch_stall_ms || !r->inflight.active || r->leader_id == RAFT_NO_NODE ||
        r->inflight.to != r->leader_id)
        return RAFT_NEVER;
    return r->inflight.sent_ms + r->cfg.fetch_stall_ms;
}

/* DESIGN.md §2 long poll bound: a live leader answers every fetch within
 * fetch_max_wait_ms (it parks an empty one at most that long, and the active
 * controller's no-ops end the wait sooner) and a FetchSnapshot at once. So a
 * fetch to the leader still unanswered after fetch_stall_ms, which leaves room
 * for the round trip, means the leader has stalled even though its connection
 * has not broken (SIGSTOP, a hung process). Our own fsyncs do not count: no
 * fetch is in flight while we wait for them. */
bool raft_leader_fetch_overdue(const raft_t *r) { return r->now >= stall_deadline(r); }

void raft_repl_timers(raft_t *r)
{
    if (raft_leader_fetch_overdue(r)) raft_leader_stalled(r);
    if (r->inflight.active && r->now >= r->inflight.sent_ms + r->cfg.request_timeout_ms) {
        r->inflight.active = false; /* unanswered: ask again (an observer without a leader asks the next voter) */
        if (r->role == RAFT_OBSERVER && r->leader_id == RAFT_NO_NODE) r->rr = (r->rr + 1) % r->cfg.n_voters;
    }
    if (r->role == RAFT_LEADER && r->n_pending && r->now >= r->pending_since_ms + r->cfg.append_linger_ms)
        raft_flush_pending(r);
}

/* Runs at the end of every step. A follower sends its next fetch once the
 * previous one was answered and everything it appended is durable (DESIGN.md
 * §2: entries count only after fsync); the leader answers due parked fetches. */
void raft_repl_pump(raft_t *r)
{
    if (raft_serves_fetches(r)) {
        raft_answer_held_fetches(r, false);
        return;
    }
    if (fetching_role(r) && !r->inflight.active && r->now >= r->fetch_ready_ms &&
        r->log.durable_end == raft_memlog_end(&r->log))
        send_fetch(r);
}

int64_t raft_repl_deadline(const raft_t *r)
{
    int64_t d = RAFT_NEVER;
    if (r->inflight.active) {
        d = r->inflight.sent_ms + r->cfg.request_timeout_ms;
        const int64_t stall = stall_deadline(r);
        if (stall > r->now && stall < d) d = stall; /* one that passed was acted on then */
    } else if (fetching_role(r) && r->fetch_ready_ms > r->now && fetch_target(r) != RAFT_NO_NODE &&
               r->log.durable_end == raft_memlog_end(&r->log)) {
        d = r->fetch_ready_ms;
    }
    if (r->role == RAFT_LEADER && r->n_pending) {
        const int64_t at = r->pending_since_ms + r->cfg.append_linger_ms;
        if (at < d) d = at;
    }
    if (raft_serves_fetches(r)) {
        for (int i = 0; i < r->cfg.n_voters + r->n_observers; i++) {
            const raft_peer_t *p = i < r->cfg.n_voters ? &r->voters[i] : &r->observers[i - r->cfg.n_voters];
            if (p->held.active && p->held.deadline_ms < d) d = p->held.deadline_ms;
        }
    }
    return d;
}

/* Structure of a successful FetchResponse: bounded, offsets consecutive, epochs
 * non-decreasing. Whether it fits our log is checked when it is used. */
int raft_validate_fetch_resp(const raft_msg_t *m)
{
    const raft_entry_t *es = m->u.fetch_resp.entries;
    const int n = m->u.fetch_resp.n_entries;
    const raft_snapshot_id_t s = m->u.fetch_resp.snapshot_id;
    if (m->u.fetch_resp.high_watermark < 0 || m->u.fetch_resp.high_watermark > RAFT_MAX_OFFSET ||
        m->u.fetch_resp.log_start_offset < 0)
        return KL_EPROTO;
    if (s.end_offset < -1 || s.end_offset == 0 || s.end_offset > RAFT_MAX_OFFSET ||
        (s.end_offset > 0 && s.last_epoch < 0))
        return KL_EPROTO;
    if (m->u.fetch_resp.diverging_epoch < -1 ||
        (m->u.fetch_resp.diverging_epoch >= 0 &&
         (m->u.fetch_resp.diverging_end_offset < 0 || m->u.fetch_resp.diverging_end_offset > RAFT_MAX_OFFSET)))
        return KL_EPROTO;
    if (n < 0 || n > RAFT_MAX_FETCH_ENTRIES || (n && !es)) return KL_EPROTO;
    if (n && (es[0].offset < 0 || es[0].offset > RAFT_MAX_OFFSET)) return KL_EPROTO;
    for (int i = 0; i < n; i++) {
        if (es[i].offset != es[0].offset + i || es[i].epoch < 0 || (i && es[i].epoch < es[i - 1].epoch))
            return KL_EPROTO;
        if (es[i].len > RAFT_MAX_ENTRY_BYTES || (es[i].len && !es[i].data)) return KL_EPROTO;
    }
    return 0;
}
