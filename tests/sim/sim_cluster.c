/* sim_cluster.c — the simulated cluster: a virtual-time event loop, the io layer of raft.h's update contract, a lossy network and crashable disks. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "sim_cluster.h"

/* ---- small utilities ------------------------------------------------------- */

void *sim_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    return p;
}

void sim_grow(void **arr, int64_t *cap, int64_t need, size_t elem)
{
    if (need <= *cap) return;
    int64_t nc = *cap ? *cap : 64;
    while (nc < need) nc *= 2;
    void *p = realloc(*arr, (size_t)nc * elem);
    if (!p) {
        fprintf(stderr, "sim: out of memory\n");
        abort();
    }
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
    *arr = p;
    *cap = nc;
}

void sim_trace(sim_t *s, const char *fmt, ...)
{
    if (!s->p.verbose) return;
    va_list ap;
    va_start(ap, fmt);
    printf("[%8" PRId64 " ms] ", s->now);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

int64_t sim_rnd(sim_t *s, int64_t lo, int64_t hi_incl)
{
    return kl_rng_range(&s->rng, lo, hi_incl + 1);
}

bool sim_per_mille(sim_t *s, uint32_t pm)
{
    return kl_rng_chance(&s->rng, pm, 1000);
}

bool sim_node_running(const sim_node_t *n)
{
    return n->r && n->paused_until == 0;
}

static sim_node_t *node_by_id(sim_t *s, int32_t id)
{
    for (int i = 0; i < s->n_nodes; i++)
        if (s->nodes[i].id == id) return &s->nodes[i];
    return NULL;
}

sim_node_t *sim_leader(sim_t *s)
{
    sim_node_t *best = NULL;
    for (int i = 0; i < s->n_nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        if (sim_node_running(n) && raft_role(n->r) == RAFT_LEADER && (!best || raft_epoch(n->r) > raft_epoch(best->r)))
            best = n;
    }
    return best;
}

static void msg_str(const raft_msg_t *m, char *b, size_t cap)
{
    int k = snprintf(b, cap, "%s e%d rpc%" PRIu64, raft_msg_type_name(m->type), m->epoch, m->rpc_id);
    if (m->error) k += snprintf(b + k, cap - (size_t)k, " err=%d", m->error);
    switch (m->type) {
    case RAFT_MSG_VOTE_REQ:
        snprintf(b + k, cap - (size_t)k, "%s log(e%d, %" PRId64 ")", m->u.vote_req.pre_vote ? " pre" : "",
                 m->u.vote_req.last_epoch, m->u.vote_req.end_offset);
        break;
    case RAFT_MSG_VOTE_RESP:
        snprintf(b + k, cap - (size_t)k, "%s %s", m->u.vote_resp.pre_vote ? " pre" : "",
                 m->u.vote_resp.granted ? "granted" : "refused");
        break;
    case RAFT_MSG_FETCH_REQ:
        snprintf(b + k, cap - (size_t)k, " offset %" PRId64 " last epoch %d", m->u.fetch_req.fetch_offset,
                 m->u.fetch_req.last_fetched_epoch);
        break;
    case RAFT_MSG_FETCH_RESP: {
        int ne = m->u.fetch_resp.n_entries;
        const raft_entry_t *es = m->u.fetch_resp.entries;
        k += snprintf(b + k, cap - (size_t)k, " hw %" PRId64 " start %" PRId64, m->u.fetch_resp.high_watermark,
                      m->u.fetch_resp.log_start_offset);
        if (m->u.fetch_resp.diverging_epoch >= 0)
            k += snprintf(b + k, cap - (size_t)k, " diverging(e%d, %" PRId64 ")", m->u.fetch_resp.diverging_epoch,
                          m->u.fetch_resp.diverging_end_offset);
        if (m->u.fetch_resp.snapshot_id.end_offset >= 0)
            k += snprintf(b + k, cap - (size_t)k, " snapshot(%" PRId64 ", e%d)",
                          m->u.fetch_resp.snapshot_id.end_offset, m->u.fetch_resp.snapshot_id.last_epoch);
        if (ne > 0)
            snprintf(b + k, cap - (size_t)k, " entries [%" PRId64 ", %" PRId64 "] e%d..e%d", es[0].offset,
                     es[ne - 1].offset, es[0].epoch, es[ne - 1].epoch);
        break;
    }
    case RAFT_MSG_FETCH_SNAPSHOT_REQ:
        snprintf(b + k, cap - (size_t)k, " snapshot(%" PRId64 ", e%d) at %" PRIu64,
                 m->u.fetch_snapshot_req.snapshot_id.end_offset, m->u.fetch_snapshot_req.snapshot_id.last_epoch,
                 m->u.fetch_snapshot_req.position);
        break;
    case RAFT_MSG_FETCH_SNAPSHOT_RESP:
        snprintf(b + k, cap - (size_t)k, " snapshot(%" PRId64 ") bytes [%" PRIu64 ", +%u) of %" PRIu64,
                 m->u.fetch_snapshot_resp.snapshot_id.end_offset, m->u.fetch_snapshot_resp.position,
                 m->u.fetch_snapshot_resp.chunk_len, m->u.fetch_snapshot_resp.size);
        break;
    case RAFT_MSG_END_EPOCH_REQ:
        k += snprintf(b + k, cap - (size_t)k, " successors");
        for (int i = 0; i < m->u.end_epoch_req.n_successors && i < RAFT_MAX_VOTERS && k < (int)cap; i++)
            k += snprintf(b + k, cap - (size_t)k, " n%d", m->u.end_epoch_req.successors[i]);
        break;
    default:
        break;
    }
}

/* ---- event heap: ordered by (time, sequence) so equal times stay FIFO ----- */

static bool ev_before(const sim_ev_t *a, const sim_ev_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(sim_t *s, sim_ev_t ev)
{
    int64_t cap = s->cap_heap;
    sim_grow((void **)&s->heap, &cap, (int64_t)s->n_heap + 1, sizeof *s->heap);
    s->cap_heap = (int)cap;
    ev.seq = s->seq++;
    int i = s->n_heap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!ev_before(&ev, &s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = ev;
}

static sim_ev_t heap_pop(sim_t *s)
{
    sim_ev_t top = s->heap[0];
    sim_ev_t last = s->heap[--s->n_heap];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= s->n_heap) break;
        if (c + 1 < s->n_heap && ev_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!ev_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap > 0) s->heap[i] = last;
    return top;
}

static void msg_free(sim_msg_t *m)
{
    if (!m) return;
    free(m->blob);
    free(m);
}

/* ---- the disk ------------------------------------------------------------- */

static void disk_free_from(sim_disk_t *d, int64_t idx)
{
    for (int64_t i = idx; i < d->n; i++) free((void *)d->log[i].data);
    if (idx < d->n) d->n = idx;
}

static void disk_append(sim_disk_t *d, const raft_entry_t *e)
{
    sim_grow((void **)&d->log, &d->cap, d->n + 1, sizeof *d->log);
    uint8_t *copy = sim_xmalloc(e->len);
    if (e->len) memcpy(copy, e->data, e->len);
    d->log[d->n] = *e;
    d->log[d->n].data = copy;
    d->n++;
}

/* After a snapshot the io layer deletes the log before it (DESIGN.md §2). */
static void disk_drop_prefix(sim_disk_t *d, int64_t end)
{
    int64_t k = end - d->snap.end_offset;
    if (k > d->n) k = d->n;
    if (k <= 0) return;
    for (int64_t i = 0; i < k; i++) free((void *)d->log[i].data);
    memmove(d->log, d->log + k, (size_t)(d->n - k) * sizeof *d->log);
    d->n -= k;
}

static void disk_free(sim_disk_t *d)
{
    disk_free_from(d, 0);
    free(d->log);
    free(d->snap_data);
    memset(d, 0, sizeof *d);
}

static void schedule_fsync(sim_t *s, sim_node_t *n)
{
    if (n->disk.fsync_pending) {
        /* group commit: sometimes the pending fsync has not really started yet */
        if (sim_per_mille(s, 500)) n->disk.fsync_covers = sim_disk_end(&n->disk);
        return;
    }
    n->disk.fsync_pending = true;
    n->disk.fsync_covers = sim_disk_end(&n->disk);
    int64_t delay;
    if (s->disk_slow || sim_per_mille(s, 20))
        delay = sim_rnd(s, 50, 300);
    else if (sim_per_mille(s, 300))
        delay = 0;
    else
        delay = sim_rnd(s, 1, 15);
    heap_push(s, (sim_ev_t){.at = s->now + delay, .kind = SIM_EV_FSYNC, .node = n->idx, .inc = n->incarnation});
}

/* ---- the network ---------------------------------------------------------- */

static sim_msg_t *msg_copy(const raft_msg_t *m)
{
    size_t sz = 0;
    int ne = 0;
    if (m->type == RAFT_MSG_FETCH_RESP) {
        ne = m->u.fetch_resp.n_entries;
        sz = (size_t)ne * sizeof(raft_entry_t);
        for (int i = 0; i < ne; i++) sz += m->u.fetch_resp.entries[i].len;
    } else if (m->type == RAFT_MSG_FETCH_SNAPSHOT_RESP) {
        sz = m->u.fetch_snapshot_resp.chunk_len;
    }
    sim_msg_t *c = sim_xmalloc(sizeof *c);
    c->m = *m;
    c->blob = sz ? sim_xmalloc(sz) : NULL;
    if (m->type == RAFT_MSG_FETCH_RESP) {
        raft_entry_t *es = c->blob;
        uint8_t *p = (uint8_t *)(es + ne);
        for (int i = 0; i < ne; i++) {
            es[i] = m->u.fetch_resp.entries[i];
            if (es[i].len) memcpy(p, es[i].data, es[i].len);
            es[i].data = p;
            p += es[i].len;
        }
        c->m.u.fetch_resp.entries = ne ? es : NULL;
    } else if (m->type == RAFT_MSG_FETCH_SNAPSHOT_RESP) {
        if (sz) memcpy(c->blob, m->u.fetch_snapshot_resp.chunk, sz);
        c->m.u.fetch_snapshot_resp.chunk = c->blob;
    }
    return c;
}

static bool msg_well_formed(sim_t *s, sim_node_t *from, const raft_msg_t *m)
{
    if (m->type == RAFT_MSG_FETCH_RESP &&
        (m->u.fetch_resp.n_entries < 0 || (m->u.fetch_resp.n_entries > 0 && !m->u.fetch_resp.entries))) {
        sim_fail(s, SIM_FAIL_SAFETY, "io-message-well-formed", "n%d sends a fetch response with %d entries at %p",
                 from->id, m->u.fetch_resp.n_entries, (const void *)m->u.fetch_resp.entries);
        return false;
    }
    if (m->type == RAFT_MSG_FETCH_SNAPSHOT_RESP && m->u.fetch_snapshot_resp.chunk_len > 0 &&
        !m->u.fetch_snapshot_resp.chunk) {
        sim_fail(s, SIM_FAIL_SAFETY, "io-message-well-formed", "n%d sends a snapshot chunk with NULL bytes",
                 from->id);
        return false;
    }
    return true;
}

static void net_send(sim_t *s, sim_node_t *from, const raft_msg_t *m)
{
    sim_node_t *to = node_by_id(s, m->to);
    if (!to || to == from) {
        sim_fail(s, SIM_FAIL_SAFETY, "io-message-addressee", "n%d sends a %s to unknown node %d", from->id,
                 raft_msg_type_name(m->type), m->to);
        return;
    }
    if (!msg_well_formed(s, from, m)) return;
    if (!s->link[from->idx][to->idx] || sim_per_mille(s, s->net.drop_pm)) return;
    int copies = 1 + sim_per_mille(s, s->net.dup_pm);
    for (int c = 0; c < copies; c++) {
        int64_t delay = sim_per_mille(s, s->net.slow_pm) ? sim_rnd(s, s->net.delay_max_ms, s->net.slow_max_ms)
                                                     : sim_rnd(s, s->net.delay_min_ms, s->net.delay_max_ms);
        sim_msg_t *cm = msg_copy(m);
        cm->from_inc = from->incarnation;
        cm->to_inc = to->incarnation;
        heap_push(s, (sim_ev_t){.at = s->now + delay, .kind = SIM_EV_DELIVER, .node = to->idx,
                                .inc = to->incarnation, .msg = cm});
    }
}

static void queue_peer_down(sim_t *s, sim_node_t *a, sim_node_t *peer)
{
    if (!a->r) return;
    heap_push(s, (sim_ev_t){.at = s->now, .kind = SIM_EV_PEER_DOWN, .node = a->idx, .inc = a->incarnation,
                            .peer = peer->id});
}

/* A broken connection is seen by both ends (EOF/RST), DESIGN.md §2. */
static void break_conn(sim_t *s, sim_node_t *a, sim_node_t *b)
{
    if (!s->conn[a->idx][b->idx]) return;
    s->conn[a->idx][b->idx] = s->conn[b->idx][a->idx] = false;
    queue_peer_down(s, a, b);
    queue_peer_down(s, b, a);
}

/* ---- one core step and the io layer (raft.h raft_update_t, steps 1-6) ----- */

static void schedule_tick(sim_t *s, sim_node_t *n)
{
    int64_t t = s->now + s->tick_gap_ms, d = raft_next_deadline(n->r);
    if (d < t) t = d;
    if (t <= s->now) t = s->now + 1;
    n->next_tick = t + sim_rnd(s, 0, SIM_TICK_JITTER_MS);
}

static void io_apply(sim_t *s, sim_node_t *n, const raft_update_t *up)
{
    sim_disk_t *d = &n->disk;
    if (up->persist_state) { /* 1 */
        sim_check_hard_state(s, n, &up->hard_state);
        d->hs = up->hard_state;
    }
    if (up->install_snapshot) { /* 2 */
        uint64_t h;
        sim_check_snapshot_install(s, n, up->snapshot_id, up->snapshot_data, up->snapshot_len, &h);
        sim_trace(s, "n%d installs snapshot (end %" PRId64 ", epoch %d, %" PRIu64 " bytes)", n->id,
                  up->snapshot_id.end_offset, up->snapshot_id.last_epoch, up->snapshot_len);
        uint8_t *copy = sim_xmalloc(up->snapshot_len);
        if (up->snapshot_len) memcpy(copy, up->snapshot_data, up->snapshot_len);
        disk_free_from(d, 0);
        free(d->snap_data);
        d->snap_data = copy;
        d->snap_len = up->snapshot_len;
        d->snap = up->snapshot_id;
        d->durable_end = up->snapshot_id.end_offset;
        d->fsync_covers = up->snapshot_id.end_offset;
        n->applied = up->snapshot_id.end_offset;
        n->sm_hash = h;
        n->checked_upto = up->snapshot_id.end_offset;
        n->snapshot_installs++;
        s->res->snapshot_installs++;
    }
    if (up->truncate_to >= 0 && up->truncate_to < sim_disk_end(d)) { /* 3 */
        int64_t removed = sim_disk_end(d) - up->truncate_to;
        sim_check_truncate(s, n, up->truncate_to);
        sim_trace(s, "n%d truncates its log to %" PRId64 " (%" PRId64 " entries)", n->id, up->truncate_to, removed);
        if (up->truncate_to >= d->snap.end_offset) disk_free_from(d, up->truncate_to - d->snap.end_offset);
        if (d->durable_end > up->truncate_to) d->durable_end = up->truncate_to;
        if (d->fsync_covers > up->truncate_to) d->fsync_covers = up->truncate_to;
        if (n->checked_upto > up->truncate_to) n->checked_upto = up->truncate_to;
        n->truncated_entries += removed;
        s->res->truncations++;
        if (removed > s->res->deepest_truncation) s->res->deepest_truncation = removed;
    }
    for (int i = 0; i < up->n_entries && !s->failed; i++) { /* 4 */
        sim_check_append(s, n, &up->entries[i]);
        if (!s->failed) disk_append(d, &up->entries[i]);
    }
    if (up->n_entries > 0) schedule_fsync(s, n);
    for (int i = 0; i < up->n_msgs && !s->failed; i++) { /* 5 */
        sim_check_send(s, n, &up->msgs[i]);
        net_send(s, n, &up->msgs[i]);
    }
    if (up->high_watermark > n->applied && !s->failed) { /* 6 */
        if (up->apply_from != n->applied) {
            sim_fail(s, SIM_FAIL_SAFETY, "apply-exactly-once",
                     "n%d is told to apply from %" PRId64 " but has applied everything below %" PRId64, n->id,
                     up->apply_from, n->applied);
            return;
        }
        for (int64_t o = n->applied; o < up->high_watermark; o++) {
            const raft_entry_t *e = raft_entry_at(n->r, o);
            if (!e) {
                sim_fail(s, SIM_FAIL_SAFETY, "committed-entries-readable",
                         "n%d reports HW %" PRId64 " but raft_entry_at(%" PRId64 ") is NULL (log [%" PRId64
                         ", %" PRId64 "))",
                         n->id, up->high_watermark, o, raft_log_start(n->r), raft_log_end(n->r));
                return;
            }
            n->sm_hash = sim_sm_apply(n->sm_hash, e);
            sim_check_applied(s, n, o + 1, n->sm_hash);
        }
        n->applied = up->high_watermark;
        if (sim_per_mille(s, 250)) d->hw_checkpoint = n->applied; /* the io layer checkpoints the HW now and then */
    }
}

/* Feeds one event to a node's core, runs the io layer on the update, checks. */
static int node_step(sim_t *s, sim_node_t *n, const raft_event_t *ev, raft_update_t *up)
{
    int rc = raft_step(n->r, ev, up);
    s->res->steps++;
    for (int i = 0; i < up->n_notes && i < RAFT_MAX_NOTES; i++)
        sim_trace(s, "n%d note[%d]: %.*s", n->id, up->notes[i].level, RAFT_NOTE_LEN, up->notes[i].text);
    if (rc < 0 && ev->type != RAFT_EV_PROPOSE) {
        sim_fail(s, SIM_FAIL_SAFETY, "core-accepts-valid-events", "n%d's core rejected a valid event (type %d): %s",
                 n->id, ev->type, kl_errname(rc));
        return rc;
    }
    io_apply(s, n, up);
    if (!s->failed) sim_check_after_step(s, n);
    schedule_tick(s, n);
    if (s->res->steps > SIM_MAX_STEPS)
        sim_fail(s, SIM_FAIL_LIVENESS, "bounded-work",
                 "more than %d core steps in one run: the cluster never lets virtual time advance", SIM_MAX_STEPS);
    return rc;
}

static void step_simple(sim_t *s, sim_node_t *n, raft_event_t ev)
{
    raft_update_t up;
    ev.now_ms = s->now;
    node_step(s, n, &ev, &up);
}

/* ---- node lifecycle --------------------------------------------------------- */

static void node_start(sim_t *s, sim_node_t *n)
{
    raft_config_t cfg = s->base_cfg;
    cfg.node_id = n->id;
    cfg.seed = kl_rng_next(&s->rng);
    cfg.test_bug = s->p.bug;
    sim_disk_t *d = &n->disk;
    raft_restore_t rs = {.hard_state = d->hs, .snapshot_id = d->snap, .snapshot_data = d->snap_data,
                         .snapshot_len = d->snap_len, .entries = d->log, .n_entries = (int)d->n};
    rs.high_watermark_hint = d->hw_checkpoint < d->durable_end ? d->hw_checkpoint : d->durable_end;
    n->r = raft_new(&cfg, &rs, s->now);
    if (!n->r) {
        sim_fail(s, SIM_FAIL_SAFETY, "core-starts", "raft_new failed for n%d (log [%" PRId64 ", %" PRId64 "))", n->id,
                 d->snap.end_offset, sim_disk_end(d));
        return;
    }
    n->applied = d->snap.end_offset;
    n->sm_hash = sim_sm_initial();
    if (d->snap.end_offset > 0) {
        int64_t end;
        sim_snapshot_decode(d->snap_data, d->snap_len, &end, &n->sm_hash);
    }
    n->hw = raft_high_watermark(n->r);
    n->checked_upto = d->snap.end_offset;
    n->role = raft_role(n->r);
    n->epoch = raft_epoch(n->r);
    n->leader = raft_leader(n->r);
    n->paused_until = 0;
    n->restart_at = -1;
    n->stop_at = -1;
    sim_trace(s, "n%d starts: %s epoch %d, voted %d, log [%" PRId64 ", %" PRId64 "), HW %" PRId64, n->id,
              raft_role_name(n->role), n->epoch, d->hs.voted_for, d->snap.end_offset, sim_disk_end(d), n->hw);
    sim_check_after_step(s, n);
    n->next_tick = s->now;
}

void sim_crash(sim_t *s, sim_node_t *n, int64_t restart_at)
{
    if (!n->r) return;
    sim_trace(s, "n%d crashes (loses log above durable end %" PRId64 ")%s", n->id, n->disk.durable_end,
              restart_at >= 0 ? "" : ", stays down");
    raft_free(n->r);
    n->r = NULL;
    n->incarnation++;
    int64_t keep = n->disk.durable_end - n->disk.snap.end_offset;
    disk_free_from(&n->disk, keep > 0 ? keep : 0);
    n->disk.fsync_pending = false;
    for (int64_t i = 0; i < n->n_held; i++) msg_free(n->held[i].msg);
    n->n_held = 0;
    n->paused_until = 0;
    n->stop_at = -1;
    n->restart_at = restart_at;
    for (int i = 0; i < s->n_nodes; i++) break_conn(s, &s->nodes[i], n);
    s->res->crashes++;
}

void sim_restart(sim_t *s, sim_node_t *n)
{
    if (n->r) return;
    node_start(s, n);
}

void sim_pause(sim_t *s, sim_node_t *n, int64_t until)
{
    if (!n->r || until <= s->now) return;
    sim_trace(s, "n%d pauses until %" PRId64, n->id, until);
    if (until > n->paused_until) n->paused_until = until;
}

void sim_shutdown(sim_t *s, sim_node_t *n, int64_t stop_at, int64_t restart_at)
{
    if (!sim_node_running(n)) return;
    sim_trace(s, "n%d shuts down gracefully, stops at %" PRId64, n->id, stop_at);
    step_simple(s, n, (raft_event_t){.type = RAFT_EV_SHUTDOWN});
    n->stop_at = stop_at;
    n->restart_at = restart_at;
}

void sim_cut(sim_t *s, int i, int j, bool symmetric)
{
    if (i == j) return;
    s->link[i][j] = false;
    if (symmetric) {
        s->link[j][i] = false;
        break_conn(s, &s->nodes[i], &s->nodes[j]);
    }
}

void sim_reset_connection(sim_t *s, int i, int j)
{
    if (i == j || !s->conn[i][j]) return;
    sim_trace(s, "connection n%d-n%d resets", s->nodes[i].id, s->nodes[j].id);
    break_conn(s, &s->nodes[i], &s->nodes[j]);
}

void sim_isolate(sim_t *s, int i)
{
    sim_trace(s, "n%d is isolated", s->nodes[i].id);
    for (int j = 0; j < s->n_nodes; j++) sim_cut(s, i, j, true);
}

void sim_heal_links(sim_t *s)
{
    sim_trace(s, "network heals");
    for (int i = 0; i < s->n_nodes; i++)
        for (int j = 0; j < s->n_nodes; j++) s->link[i][j] = true;
}

void sim_heal_all(sim_t *s)
{
    sim_heal_links(s);
    s->net = (sim_net_t){.drop_pm = 0, .dup_pm = s->net.dup_pm, .slow_pm = 0, .delay_min_ms = 1,
                         .delay_max_ms = 20, .slow_max_ms = 20};
    s->disk_slow = false;
    for (int i = 0; i < s->n_nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        if (n->r && n->stop_at >= 0) sim_crash(s, n, s->now); /* finish a graceful stop now */
        if (!n->r) sim_restart(s, n);
        if (n->r && n->paused_until) n->paused_until = s->now; /* resumes in the loop */
    }
}

/* ---- application actions -------------------------------------------------- */

int64_t sim_propose(sim_t *s, sim_node_t *n, int count, uint64_t *first_hash, int32_t *epoch_out)
{
    if (!sim_node_running(n) || count < 1 || count > SIM_PROPOSE_MAX) return -1;
    uint8_t bufs[SIM_PROPOSE_MAX][SIM_PAYLOAD_MAX];
    const uint8_t *ptrs[SIM_PROPOSE_MAX];
    uint32_t lens[SIM_PROPOSE_MAX];
    uint64_t hashes[SIM_PROPOSE_MAX];
    for (int i = 0; i < count; i++) {
        uint64_t id = ++s->payload_counter;
        lens[i] = (uint32_t)sim_rnd(s, 8, SIM_PAYLOAD_MAX);
        memcpy(bufs[i], &id, sizeof id);
        for (uint32_t k = 8; k < lens[i]; k++) bufs[i][k] = (uint8_t)kl_rng_next(&s->rng);
        ptrs[i] = bufs[i];
        hashes[i] = sim_hash_bytes(bufs[i], lens[i]);
    }
    bool was_leader = raft_role(n->r) == RAFT_LEADER;
    int32_t epoch = raft_epoch(n->r);
    raft_event_t ev = {.type = RAFT_EV_PROPOSE, .now_ms = s->now};
    ev.u.propose.data = ptrs;
    ev.u.propose.len = lens;
    ev.u.propose.n = count;
    raft_update_t up;
    int rc = node_step(s, n, &ev, &up);
    if (s->failed) return -1;
    if (!was_leader) {
        if (up.propose_first_offset != -1 || (up.propose_error != KL_ENOTLEADER && rc != KL_ENOTLEADER))
            sim_fail(s, SIM_FAIL_SAFETY, "only-leaders-accept-proposals",
                     "n%d (%s, epoch %d) answered a proposal with offset %" PRId64 ", error %s", n->id,
                     raft_role_name(n->role), epoch, up.propose_first_offset, kl_errname(up.propose_error));
        return -1;
    }
    if (up.propose_first_offset < 0) {
        if (up.propose_error != KL_EFULL && rc != KL_EFULL)
            sim_fail(s, SIM_FAIL_SAFETY, "leaders-accept-proposals",
                     "leader n%d refused a proposal with %s (only KL_EFULL is a reason)", n->id,
                     kl_errname(up.propose_error ? up.propose_error : rc));
        return -1;
    }
    if (up.propose_epoch != epoch) {
        sim_fail(s, SIM_FAIL_SAFETY, "proposal-epoch", "leader n%d of epoch %d assigned a proposal to epoch %d", n->id,
                 epoch, up.propose_epoch);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        sim_grow((void **)&s->promises, &s->cap_promises, s->n_promises + 1, sizeof *s->promises);
        s->promises[s->n_promises++] =
            (sim_promise_t){.offset = up.propose_first_offset + i, .epoch = epoch, .hash = hashes[i]};
    }
    sim_trace(s, "n%d accepts %d proposal(s) at offset %" PRId64 " in epoch %d", n->id, count,
              up.propose_first_offset, epoch);
    if (first_hash) *first_hash = hashes[0];
    if (epoch_out) *epoch_out = epoch;
    return up.propose_first_offset;
}

/* The application snapshots its state at the applied offset (<= HW). */
void sim_take_snapshot(sim_t *s, sim_node_t *n)
{
    sim_disk_t *d = &n->disk;
    if (!sim_node_running(n) || n->applied <= d->snap.end_offset) return;
    const raft_entry_t *last = sim_disk_entry(d, n->applied - 1);
    if (!last) {
        sim_fail(s, SIM_FAIL_SAFETY, "io-applied-entries-on-disk",
                 "n%d applied up to %" PRId64 " but its disk log is [%" PRId64 ", %" PRId64 ")", n->id, n->applied,
                 d->snap.end_offset, sim_disk_end(d));
        return;
    }
    raft_snapshot_id_t id = {.end_offset = n->applied, .last_epoch = last->epoch};
    uint64_t len;
    uint8_t *data = sim_snapshot_encode(id.end_offset, n->sm_hash, &len);
    sim_trace(s, "n%d snapshots at %" PRId64 " (epoch %d, %" PRIu64 " bytes)", n->id, id.end_offset, id.last_epoch,
              len);
    /* durable first; the previous bytes stay alive until the core has moved on */
    uint8_t *old = d->snap_data;
    disk_drop_prefix(d, id.end_offset);
    d->snap = id;
    d->snap_data = data;
    d->snap_len = len;
    if (d->durable_end < id.end_offset) d->durable_end = id.end_offset;
    raft_event_t ev = {.type = RAFT_EV_SNAPSHOT};
    ev.u.snapshot.id = id;
    ev.u.snapshot.data = data;
    ev.u.snapshot.len = len;
    step_simple(s, n, ev);
    free(old);
}

/* ---- the event loop --------------------------------------------------------- */

/* SIGCONT: the next tick comes at once, with the jump in time. */
static void node_resume(sim_t *s, sim_node_t *n)
{
    sim_trace(s, "n%d resumes", n->id);
    n->paused_until = 0;
    n->next_tick = s->now;
    for (int64_t i = 0; i < n->n_held; i++) { /* in arrival order, right now */
        n->held[i].at = s->now;
        heap_push(s, n->held[i]);
    }
    n->n_held = 0;
}

static void dispatch(sim_t *s, sim_ev_t ev)
{
    sim_node_t *n = &s->nodes[ev.node];
    if (!n->r || ev.inc != n->incarnation) { /* the node crashed since: lost */
        msg_free(ev.msg);
        return;
    }
    if (n->paused_until > s->now) { /* a stopped process sees it after it resumes */
        int64_t cap = n->cap_held;
        sim_grow((void **)&n->held, &cap, n->n_held + 1, sizeof *n->held);
        n->cap_held = cap;
        n->held[n->n_held++] = ev;
        return;
    }
    if (n->paused_until) node_resume(s, n);
    raft_event_t rev = {.now_ms = s->now};
    switch (ev.kind) {
    case SIM_EV_DELIVER: {
        const raft_msg_t *m = &ev.msg->m;
        sim_node_t *from = node_by_id(s, m->from);
        if (!from || !from->r || from->incarnation != ev.msg->from_inc || !s->link[from->idx][n->idx]) {
            msg_free(ev.msg);
            return;
        }
        s->conn[from->idx][n->idx] = s->conn[n->idx][from->idx] = true;
        if (s->p.verbose) {
            char b[256];
            msg_str(m, b, sizeof b);
            sim_trace(s, "n%d <- n%d %s", n->id, from->id, b);
        }
        if (m->type == RAFT_MSG_VOTE_REQ) sim_note_vote_request(s, n, m);
        rev.type = RAFT_EV_RECV;
        rev.u.msg = m;
        step_simple(s, n, rev);
        msg_free(ev.msg);
        return;
    }
    case SIM_EV_FSYNC:
        n->disk.fsync_pending = false;
        if (n->disk.fsync_covers > n->disk.durable_end) n->disk.durable_end = n->disk.fsync_covers;
        sim_trace(s, "n%d fsync done: durable below %" PRId64, n->id, n->disk.durable_end);
        if (sim_per_mille(s, 100)) {
            heap_push(s, (sim_ev_t){.at = s->now + sim_rnd(s, 1, 30), .kind = SIM_EV_PERSISTED, .node = n->idx,
                                    .inc = n->incarnation, .persisted = n->disk.durable_end});
        } else {
            rev.type = RAFT_EV_PERSISTED;
            rev.u.persisted_end = n->disk.durable_end;
            step_simple(s, n, rev);
        }
        if (n->r && sim_disk_end(&n->disk) > n->disk.durable_end) schedule_fsync(s, n); /* written meanwhile */
        return;
    case SIM_EV_PERSISTED:
        /* a truncation since may have shrunk what that fsync made durable */
        rev.type = RAFT_EV_PERSISTED;
        rev.u.persisted_end = ev.persisted < n->disk.durable_end ? ev.persisted : n->disk.durable_end;
        step_simple(s, n, rev);
        return;
    case SIM_EV_PEER_DOWN:
        sim_trace(s, "n%d sees its connection to n%d break", n->id, ev.peer);
        rev.type = RAFT_EV_PEER_DOWN;
        rev.u.peer = ev.peer;
        step_simple(s, n, rev);
        return;
    }
}

static void background_propose(sim_t *s)
{
    s->next_propose_at = s->now + sim_rnd(s, 1, s->propose_gap_max_ms);
    sim_node_t *target = NULL;
    if (sim_per_mille(s, 800)) target = sim_leader(s);
    /* like a real client, stop adding while too much is uncommitted */
    if (target && raft_log_end(target->r) - target->hw > SIM_MAX_UNCOMMITTED) return;
    if (!target) {
        sim_node_t *n = &s->nodes[sim_rnd(s, 0, s->n_nodes - 1)];
        if (sim_node_running(n)) target = n;
    }
    if (target) sim_propose(s, target, (int)sim_rnd(s, 1, 3), NULL, NULL);
}

static void background_snapshot(sim_t *s)
{
    s->next_snapshot_at = s->now + sim_rnd(s, s->snapshot_gap_max_ms / 4, s->snapshot_gap_max_ms);
    sim_take_snapshot(s, &s->nodes[sim_rnd(s, 0, s->n_nodes - 1)]);
}

typedef enum { DO_NONE, DO_EVENT, DO_TICK, DO_RESTART, DO_RESUME, DO_STOP, DO_PROPOSE, DO_SNAPSHOT } sim_do_t;

void sim_run_until(sim_t *s, int64_t until)
{
    while (!s->failed) {
        int64_t t = INT64_MAX;
        sim_do_t what = DO_NONE;
        int who = -1;
#define CONSIDER(when, act, idx)                                                                                       \
    do {                                                                                                               \
        if ((when) >= 0 && (when) < t) {                                                                               \
            t = (when);                                                                                                \
            what = (act);                                                                                              \
            who = (idx);                                                                                               \
        }                                                                                                              \
    } while (0)
        if (s->n_heap) CONSIDER(s->heap[0].at, DO_EVENT, -1);
        for (int i = 0; i < s->n_nodes; i++) {
            sim_node_t *n = &s->nodes[i];
            if (!n->r) {
                CONSIDER(n->restart_at, DO_RESTART, i);
            } else if (n->paused_until) {
                CONSIDER(n->paused_until, DO_RESUME, i);
            } else {
                CONSIDER(n->stop_at, DO_STOP, i);
                CONSIDER(n->next_tick, DO_TICK, i);
            }
        }
        CONSIDER(s->next_propose_at, DO_PROPOSE, -1);
        CONSIDER(s->next_snapshot_at, DO_SNAPSHOT, -1);
#undef CONSIDER
        if (what == DO_NONE || t > until) break;
        if (t > s->now) s->now = t;
        sim_node_t *n = who >= 0 ? &s->nodes[who] : NULL;
        switch (what) {
        case DO_EVENT: dispatch(s, heap_pop(s)); break;
        case DO_TICK: step_simple(s, n, (raft_event_t){.type = RAFT_EV_TICK}); break;
        case DO_RESTART: sim_restart(s, n); break;
        case DO_RESUME: node_resume(s, n); break;
        case DO_STOP: sim_crash(s, n, n->restart_at); break;
        case DO_PROPOSE: background_propose(s); break;
        case DO_SNAPSHOT: background_snapshot(s); break;
        case DO_NONE: break;
        }
    }
    if (until > s->now && !s->failed) s->now = until;
}

/* ---- setup and teardown ---------------------------------------------------- */

void sim_init(sim_t *s, const sim_params_t *p, sim_result_t *res)
{
    memset(s, 0, sizeof *s);
    memset(res, 0, sizeof *res);
    s->p = *p;
    s->res = res;
    kl_rng_seed(&s->rng, p->seed);
    s->n_voters = sim_seed_voters(p->seed, p->n_voters);
    int n_obs = sim_seed_observers(p->seed, s->n_voters, p->n_observers);
    s->n_nodes = s->n_voters + n_obs;

    raft_config_t *c = &s->base_cfg;
    raft_config_defaults(c);
    for (int i = 0; i < s->n_voters; i++) s->voter_ids[i] = c->voters[i] = i + 1;
    c->n_voters = s->n_voters;
    /* small limits so that fetches, batches and snapshot chunks get split */
    static const uint32_t fetch_bytes[] = {256, 1024, 4096, 1u << 20};
    c->fetch_max_bytes = fetch_bytes[sim_rnd(s, 0, 3)];
    c->max_batch_entries = (uint32_t)sim_rnd(s, 1, 64);
    c->snapshot_chunk_bytes = (uint32_t)sim_rnd(s, 16, 256);
    c->append_linger_ms = (int)sim_rnd(s, 0, 10);
    if (sim_per_mille(s, 500)) { /* fast timers: more elections and races per virtual second */
        c->election_timeout_ms = (int)sim_rnd(s, 100, 500);
        c->fetch_timeout_ms = 2 * c->election_timeout_ms;
        c->election_backoff_max_ms = c->election_timeout_ms;
        c->fetch_max_wait_ms = (int)sim_rnd(s, 20, c->fetch_timeout_ms / 2);
        c->request_timeout_ms = c->fetch_timeout_ms + c->fetch_timeout_ms / 4;
    }
    static const int tick_gaps[] = {10, 20, SIM_TICK_MAX_GAP_MS, 1000};
    s->tick_gap_ms = tick_gaps[sim_rnd(s, 0, 3)];

    for (int i = 0; i < s->n_nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        n->idx = i;
        n->voter = i < s->n_voters;
        n->id = n->voter ? i + 1 : SIM_OBSERVER_ID_BASE + (i - s->n_voters);
        n->disk.hs = (raft_hard_state_t){.epoch = 0, .voted_for = RAFT_NO_NODE, .leader_id = RAFT_NO_NODE};
        n->restart_at = -1;
        n->stop_at = -1;
    }
    for (int i = 0; i < s->n_nodes; i++)
        for (int j = 0; j < s->n_nodes; j++) s->link[i][j] = true;
    s->net = (sim_net_t){.drop_pm = 0, .dup_pm = 0, .slow_pm = 0, .delay_min_ms = 1, .delay_max_ms = 10,
                         .slow_max_ms = 10};
    s->next_propose_at = -1;
    s->next_snapshot_at = -1;
    s->propose_gap_max_ms = 200;
    s->snapshot_gap_max_ms = 3000;
    sim_trace(s, "seed %" PRIu64 ": %d voters, %d observers, election/fetch timeout %d/%d ms, long poll %d ms, "
              "ticks at most %d ms apart, fetch_max_bytes %u, max_batch_entries %u, snapshot chunk %u, linger %d ms, "
              "bug %s", p->seed, s->n_voters, n_obs, c->election_timeout_ms, c->fetch_timeout_ms,
              c->fetch_max_wait_ms, s->tick_gap_ms, c->fetch_max_bytes, c->max_batch_entries, c->snapshot_chunk_bytes,
              c->append_linger_ms, sim_bug_name(p->bug));
    for (int i = 0; i < s->n_nodes && !s->failed; i++) node_start(s, &s->nodes[i]);
}

void sim_destroy(sim_t *s)
{
    for (int i = 0; i < s->n_nodes; i++) {
        sim_node_t *n = &s->nodes[i];
        if (n->r) raft_free(n->r);
        disk_free(&n->disk);
        free(n->vote_granted);
        for (int64_t k = 0; k < n->n_held; k++) msg_free(n->held[k].msg);
        free(n->held);
    }
    while (s->n_heap) msg_free(heap_pop(s).msg);
    free(s->heap);
    free(s->committed);
    free(s->state_at);
    free(s->leader_of);
    free(s->promises);
    s->res->virtual_ms = s->now;
    memset(s, 0, sizeof *s);
}
