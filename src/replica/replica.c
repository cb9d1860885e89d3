/* replica.c — the replica core's lifecycle, event dispatch, update building and committed partition state (DESIGN.md §3, §4). */
#include "keel/replica.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "replica_internal.h"

const char *replica_role_name(replica_role_t role)
{
    switch (role) {
    case REPLICA_NONE: return "none";
    case REPLICA_LEADER: return "leader";
    case REPLICA_FOLLOWER: return "follower";
    }
    return "unknown";
}

void replica_config_defaults(replica_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->lag_time_max_ms = 30000;
    cfg->min_insync_replicas = 1;
    cfg->max_pending = 1024;
    cfg->max_producers = 4096;
    cfg->alter_retry_backoff_ms = 100;
}

static bool config_ok(const replica_config_t *c)
{
    return c->broker_id >= 0 && c->lag_time_max_ms >= 1 && c->lag_time_max_ms <= REPLICA_MAX_LAG_MS &&
           c->min_insync_replicas >= 1 && c->min_insync_replicas <= REPLICA_MAX_REPLICAS && c->max_pending >= 1 &&
           c->max_pending <= REPLICA_MAX_PENDING && c->max_producers >= 1 &&
           c->max_producers <= REPLICA_MAX_PRODUCERS && c->alter_retry_backoff_ms >= 0 &&
           c->alter_retry_backoff_ms <= REPLICA_MAX_LAG_MS;
}

void replica_note(replica_t *r, int level, const char *fmt, ...)
{
    replica_update_t *out = r->out;
    if (!out || out->n_notes >= REPLICA_MAX_NOTES) return;
    replica_note_t *n = &out->notes[out->n_notes++];
    n->level = level;
    if (out->n_notes == REPLICA_MAX_NOTES) {
        snprintf(n->text, sizeof n->text, "(further notes of this step dropped)");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->text, sizeof n->text, fmt, ap);
    va_end(ap);
}

/* ---- lifecycle -------------------------------------------------------------------- */

replica_t *replica_new(const replica_config_t *cfg, const replica_restore_t *restore)
{
    if (!cfg || !config_ok(cfg)) return NULL;
    replica_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    r->role = REPLICA_NONE;
    r->st.leader = REPLICA_NO_NODE;
    replica_epochs_init(&r->epochs);
    replica_producers_init(&r->producers, cfg->max_producers);
    if (restore) {
        const replica_restore_t *s = restore;
        if (s->log_start < 0 || s->log_end < s->log_start || s->log_end > REPLICA_MAX_OFFSET ||
            replica_epochs_load(&r->epochs, s->epochs, s->n_epochs) != 0) {
            replica_free(r);
            return NULL;
        }
        r->log_start = s->log_start;
        r->log_end = r->next_offset = s->log_end;
        r->hw = s->high_watermark < s->log_start ? s->log_start
                : s->high_watermark > s->log_end ? s->log_end
                                                 : s->high_watermark;
        /* KIP-101 load: entries past the recovered end describe nothing we hold */
        replica_epochs_truncate_end(&r->epochs, s->log_end);
        replica_epochs_truncate_start(&r->epochs, s->log_start);
        /* A dropped entry must leave the file too, or a later restart reloads
         * it as if it described records appended since (dp sim seed 163). */
        r->epochs_dirty = r->epochs.n != s->n_epochs ||
                          (s->n_epochs > 0 && r->epochs.e[0].start_offset != s->epochs[0].start_offset);
    }
    return r;
}

void replica_free(replica_t *r)
{
    if (!r) return;
    replica_epochs_free(&r->epochs);
    replica_producers_free(&r->producers);
    replica_waitq_free(&r->wait_log);
    replica_waitq_free(&r->wait_hw);
    free(r->done);
    free(r);
}

int replica_replay(replica_t *r, const replica_batch_t *batches, int n)
{
    if (!r || n < 0 || (n > 0 && !batches)) return KL_EINVAL;
    for (int i = 0; i < n; i++) {
        const replica_batch_t *b = &batches[i];
        if (b->base_offset < r->log_start || b->last_offset_delta < 0 ||
            b->base_offset + b->last_offset_delta >= r->log_end)
            return KL_EINVAL;
        const int rc = replica_producers_record(&r->producers, b);
        if (rc) return rc;
    }
    return 0;
}

/* ---- helpers shared by the files ----------------------------------------------------- */

replica_follower_t *replica_find_follower(replica_t *r, int32_t id)
{
    for (int i = 0; i < r->n_fol; i++)
        if (r->fol[i].id == id) return &r->fol[i];
    return NULL;
}

static bool contains(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

bool replica_in_isr(const replica_t *r, int32_t id) { return contains(r->st.isr, r->st.n_isr, id); }

/* Retention, DeleteRecords or the leader's log start (as a follower) moved our
 * log start; never past the HW, so no uncommitted record is deleted. */
void replica_move_log_start(replica_t *r, int64_t start)
{
    KL_ASSERT(start > r->log_start && start <= r->hw);
    r->log_start = start;
    const int n0 = r->epochs.n;
    const int64_t first0 = n0 ? r->epochs.e[0].start_offset : -1;
    replica_epochs_truncate_start(&r->epochs, start);
    if (r->epochs.n != n0 || (n0 && r->epochs.e[0].start_offset != first0)) r->out->epochs_changed = true;
    replica_producers_truncate_start(&r->producers, start);
}

/* ---- committed partition state (DESIGN.md §3) ------------------------------------------- */

static bool ids_ok(const int32_t *ids, int n, int min)
{
    if (n < min || n > REPLICA_MAX_REPLICAS) return false;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || contains(ids, i, ids[i])) return false;
    return true;
}

static bool state_ok(const replica_partition_state_t *s)
{
    if (s->leader_epoch < 0 || s->partition_epoch < 0 || !ids_ok(s->replicas, s->n_replicas, 1)) return false;
    if (!ids_ok(s->isr, s->n_isr, s->leader == REPLICA_NO_NODE ? 0 : 1)) return false;
    for (int i = 0; i < s->n_isr; i++)
        if (!contains(s->replicas, s->n_replicas, s->isr[i])) return false;
    return s->leader == REPLICA_NO_NODE || contains(s->isr, s->n_isr, s->leader);
}

/* The follower table follows the replica set; what we knew of a replica that
 * stays is kept. */
static void set_followers(replica_t *r)
{
    replica_follower_t old[REPLICA_MAX_REPLICAS];
    const int n_old = r->n_fol;
    memcpy(old, r->fol, sizeof old);
    r->n_fol = 0;
    for (int i = 0; i < r->st.n_replicas; i++) {
        const int32_t id = r->st.replicas[i];
        if (id == r->cfg.broker_id) continue;
        replica_follower_t *f = &r->fol[r->n_fol++];
        *f = (replica_follower_t){id, true, -1, -1, -1, -1, -1};
        for (int j = 0; j < n_old; j++)
            if (old[j].id == id) *f = old[j];
    }
}

static int on_partition_state(replica_t *r, const replica_partition_state_t *s)
{
    if (!s || !state_ok(s)) return KL_EINVAL;
    if (r->have_state) {
        const int32_t le = r->st.leader_epoch, pe = r->st.partition_epoch;
        if (s->leader_epoch < le || (s->leader_epoch == le && s->partition_epoch < pe)) return KL_EFENCED;
        if (s->leader_epoch == le && s->partition_epoch == pe) return 0; /* seen (response and record) */
    }
    const bool was_leader = r->role == REPLICA_LEADER;
    const int32_t old_epoch = r->st.leader_epoch;
    r->st = *s;
    r->have_state = true;
    set_followers(r);
    /* Newer committed state settles any AlterPartition in flight (KIP-841):
     * its answer, if it comes, is for a view that no longer exists. */
    memset(&r->alter, 0, sizeof r->alter);
    r->alter_retry_ms = 0;

    const bool replica = contains(s->replicas, s->n_replicas, r->cfg.broker_id);
    const replica_role_t role = !replica || s->leader == REPLICA_NO_NODE ? REPLICA_NONE
                                : s->leader == r->cfg.broker_id         ? REPLICA_LEADER
                                                                        : REPLICA_FOLLOWER;
    if (was_leader && role != REPLICA_LEADER) replica_fail_waiting(r, KL_ENOTLEADER);
    r->role = role;
    if (role == REPLICA_LEADER && (!was_leader || s->leader_epoch != old_epoch))
        replica_begin_leadership(r, !was_leader);
    if (!replica) replica_note(r, 1, "no longer a replica of this partition");
    return 0;
}

/* ---- step ------------------------------------------------------------------------- */

static void begin_update(replica_t *r, replica_update_t *out)
{
    memset(out, 0, sizeof *out);
    out->produce = (replica_produce_result_t){.base_offset = -1, .last_offset = -1, .leader_epoch = -1};
    out->fetch = (replica_fetch_result_t){.read_end = -1,
                                          .diverging_epoch = REPLICA_NO_EPOCH,
                                          .diverging_end_offset = REPLICA_NO_OFFSET,
                                          .leader_id = REPLICA_NO_NODE,
                                          .leader_epoch = -1};
    out->reset_to = out->truncate_to = out->log_start_to = -1;
    r->out = out;
    r->n_done = 0;
}

static int on_appended(replica_t *r, int64_t end)
{
    if (end < r->log_end || end > r->next_offset) return KL_EINVAL;
    r->log_end = end;
    return 0;
}

static int on_log_start(replica_t *r, int64_t start)
{
    if (start < r->log_start || start > r->hw) return KL_EINVAL;
    if (start > r->log_start) replica_move_log_start(r, start);
    return 0;
}

static int on_eligibility(replica_t *r, int32_t id, bool eligible)
{
    replica_follower_t *f = replica_find_follower(r, id);
    if (f) f->eligible = eligible;
    return 0;
}

static int on_stop(replica_t *r, int error)
{
    if (error >= 0) return KL_EINVAL;
    replica_fail_waiting(r, error);
    memset(&r->alter, 0, sizeof r->alter);
    r->role = REPLICA_NONE;
    return 0;
}

static int dispatch(replica_t *r, const replica_event_t *ev)
{
    switch (ev->type) {
    case REPLICA_EV_TICK: return 0;
    case REPLICA_EV_PARTITION_STATE: return on_partition_state(r, ev->u.state);
    case REPLICA_EV_ALTER_RESULT: return replica_on_alter_result(r, ev);
    case REPLICA_EV_ELIGIBILITY: return on_eligibility(r, ev->u.eligibility.broker_id, ev->u.eligibility.eligible);
    case REPLICA_EV_PRODUCE: return ev->u.produce ? replica_on_produce(r, ev->u.produce) : KL_EINVAL;
    case REPLICA_EV_APPENDED: return on_appended(r, ev->u.log_end);
    case REPLICA_EV_FETCH: return ev->u.fetch ? replica_on_fetch(r, ev->u.fetch) : KL_EINVAL;
    case REPLICA_EV_FETCH_RESPONSE: return ev->u.fetch_resp ? replica_on_fetch_resp(r, ev->u.fetch_resp) : KL_EINVAL;
    case REPLICA_EV_LOG_START: return on_log_start(r, ev->u.log_start);
    case REPLICA_EV_STOP: return on_stop(r, ev->u.error);
    }
    return KL_EINVAL;
}

int replica_step(replica_t *r, const replica_event_t *ev, replica_update_t *out)
{
    if (!r || !ev || !out) return KL_EINVAL;
    const replica_role_t role0 = r->role;
    const int32_t leader0 = r->st.leader, epoch0 = r->st.leader_epoch;
    const int64_t hw0 = r->hw;
    begin_update(r, out);
    if (ev->now_ms > r->now) r->now = ev->now_ms; /* time never goes back */
    const int rc = dispatch(r, ev);
    if (rc != 0) { /* nothing changed: only the notes explain why */
        const int n_notes = out->n_notes;
        replica_note_t notes[REPLICA_MAX_NOTES];
        memcpy(notes, out->notes, sizeof notes);
        begin_update(r, out);
        memcpy(out->notes, notes, sizeof notes);
        out->n_notes = n_notes;
        out->high_watermark = r->hw;
        r->out = NULL;
        return rc;
    }
    if (r->role == REPLICA_LEADER) replica_leader_settle(r);
    if (r->epochs_dirty) {
        out->epochs_changed = true;
        r->epochs_dirty = false;
    }
    out->high_watermark = r->hw;
    out->hw_changed = r->hw != hw0;
    out->completions = r->done;
    out->n_completions = r->n_done;
    out->role_changed = r->role != role0 || r->st.leader != leader0 || r->st.leader_epoch != epoch0;
    if (out->role_changed)
        replica_note(r, 1, "%s in leader epoch %d (leader %d, partition epoch %d)", replica_role_name(r->role),
                     r->st.leader_epoch, r->st.leader, r->st.partition_epoch);
    r->out = NULL;
    return 0;
}

/* ---- queries ----------------------------------------------------------------------- */

bool replica_hw_settled(const replica_t *r) { return r->role != REPLICA_LEADER || r->hw >= r->epoch_start; }

int replica_fetch_request(const replica_t *r, replica_fetch_req_t *req)
{
    if (!r || !req) return KL_EINVAL;
    if (r->role != REPLICA_FOLLOWER || r->next_offset != r->log_end) return KL_ESTATE;
    *req = (replica_fetch_req_t){
        .replica_id = r->cfg.broker_id,
        .broker_epoch = -1,
        .leader_epoch = r->st.leader_epoch,
        .fetch_offset = r->log_end,
        .last_fetched_epoch = r->log_end > 0 ? replica_epochs_epoch_at(&r->epochs, r->log_end - 1) : REPLICA_NO_EPOCH,
    };
    return 0;
}

int64_t replica_next_deadline(const replica_t *r)
{
    if (r->role != REPLICA_LEADER) return REPLICA_NEVER;
    const int64_t d = replica_leader_deadline(r);
    return d == REPLICA_NEVER || d > r->now ? d : r->now + 1;
}

replica_role_t replica_role(const replica_t *r) { return r->role; }
int32_t replica_leader(const replica_t *r) { return r->st.leader; }
int32_t replica_leader_epoch(const replica_t *r) { return r->st.leader_epoch; }
int32_t replica_partition_epoch(const replica_t *r) { return r->st.partition_epoch; }
int64_t replica_log_start(const replica_t *r) { return r->log_start; }
int64_t replica_log_end(const replica_t *r) { return r->log_end; }
int64_t replica_high_watermark(const replica_t *r) { return r->hw; }
const replica_epochs_t *replica_epochs(const replica_t *r) { return &r->epochs; }
const replica_producers_t *replica_producers(const replica_t *r) { return &r->producers; }
bool replica_alter_in_flight(const replica_t *r) { return r->alter.inflight; }

int replica_isr(const replica_t *r, int32_t *out, int max)
{
    const int n = r->st.n_isr < max ? r->st.n_isr : max;
    if (n > 0) memcpy(out, r->st.isr, (size_t)n * sizeof *out);
    return r->st.n_isr;
}

int replica_followers(const replica_t *r, replica_follower_info_t *out, int max)
{
    if (r->role != REPLICA_LEADER) return KL_ENOTLEADER;
    int n = 0;
    for (int i = 0; i < r->n_fol && n < max; i++, n++) {
        const replica_follower_t *f = &r->fol[i];
        out[n] = (replica_follower_info_t){f->id, f->leo, f->last_fetch_ms, f->caught_up_ms,
                                           replica_in_isr(r, f->id), f->eligible};
    }
    return n;
}
