/* replica_follower.c — follower side: fetch responses, divergence truncation (KIP-279), appends, HW (DESIGN.md §4). */
#include "keel/err.h"
#include "replica_internal.h"

/* Cuts the log to end at `to` (>= HW, checked by the caller). Producer state
 * may hold batches past the cut, and what they replaced (older batches, other
 * producers evicted for them) is gone from memory: it is rebuilt from the log. */
static void truncate_log(replica_t *r, int64_t to)
{
    KL_ASSERT(to >= r->hw && to < r->log_end);
    replica_note(r, 2, "truncating log from %lld to %lld", (long long)r->log_end, (long long)to);
    r->log_end = r->next_offset = to;
    replica_epochs_truncate_end(&r->epochs, to);
    replica_producers_clear(&r->producers);
    r->out->truncate_to = to;
    r->out->epochs_changed = true;
    r->out->rebuild_producers = true;
}

static int on_diverging(replica_t *r, const replica_fetch_resp_t *m)
{
    if (m->n_batches != 0) return KL_EINVAL;
    replica_truncation_t t;
    const int rc = replica_epochs_truncation(&r->epochs, r->log_end, r->hw, m->diverging_epoch,
                                             m->diverging_end_offset, &t);
    if (rc == KL_ESTATE) /* DESIGN.md §2/§4: never below the HW — a bug somewhere, so say it loudly */
        replica_note(r, 3, "leader %d says we diverged at epoch %d, offset %lld: below our HW %lld; not truncating",
                     r->st.leader, m->diverging_epoch, (long long)m->diverging_end_offset, (long long)r->hw);
    if (rc) return rc;
    if (t.offset < r->log_end) truncate_log(r, t.offset);
    if (!t.complete) replica_note(r, 1, "we lack leader epoch %d: cut to our older epoch's end, asking again",
                                  m->diverging_epoch);
    return 0;
}

/* KL_ERANGE from the leader: our fetch offset is outside its log. Below its
 * log start: retention deleted everything we lack, so our whole log goes and
 * we start empty at its log start (Kafka's truncateFullyAndStartAt). Past its
 * log end (only after an unclean election, since the divergence check runs
 * first): cut to its end, never below our HW. */
static int on_out_of_range(replica_t *r, const replica_fetch_resp_t *m)
{
    if (r->log_end < m->log_start_offset) {
        KL_ASSERT(r->hw <= r->log_end);
        replica_note(r, 2, "behind the leader's log start %lld: restarting our log there",
                     (long long)m->log_start_offset);
        r->log_start = r->log_end = r->next_offset = r->hw = m->log_start_offset;
        r->epochs.n = 0;
        replica_producers_clear(&r->producers);
        r->out->reset_to = m->log_start_offset;
        r->out->epochs_changed = true;
        return 0;
    }
    if (r->log_end > m->log_end_offset) {
        if (m->log_end_offset < r->hw) {
            replica_note(r, 3, "leader %d ends at %lld, below our HW %lld: committed records are missing there",
                         r->st.leader, (long long)m->log_end_offset, (long long)r->hw);
            return KL_ESTATE;
        }
        truncate_log(r, m->log_end_offset);
        return 0;
    }
    replica_note(r, 2, "leader %d refused fetch offset %lld as out of range [%lld, %lld]", r->st.leader,
                 (long long)r->log_end, (long long)m->log_start_offset, (long long)m->log_end_offset);
    return 0;
}

/* The batches must extend our log exactly, in epochs that never go back and
 * never pass the leader's. */
static bool batches_ok(const replica_t *r, const replica_fetch_resp_t *m)
{
    if (m->n_batches < 0 || (m->n_batches > 0 && !m->batches)) return false;
    int64_t next = r->log_end;
    int32_t epoch = r->log_end > 0 ? replica_epochs_epoch_at(&r->epochs, r->log_end - 1) : REPLICA_NO_EPOCH;
    for (int i = 0; i < m->n_batches; i++) {
        const replica_batch_t *b = &m->batches[i];
        if (b->base_offset != next || b->last_offset_delta < 0 || b->leader_epoch < epoch ||
            b->leader_epoch > r->st.leader_epoch || b->base_offset + b->last_offset_delta >= REPLICA_MAX_OFFSET)
            return false;
        next = b->base_offset + b->last_offset_delta + 1;
        epoch = b->leader_epoch;
    }
    return true;
}

/* Appends the leader's batches: leader epochs (KIP-101: a follower records
 * each batch's epoch at its base offset) and producer state (so it survives
 * our becoming leader). Entries starting at our log end describe epochs that
 * wrote nothing here (our own past leadership): they go first. */
static void append_batches(replica_t *r, const replica_fetch_resp_t *m)
{
    if (m->n_batches == 0) return;
    const int n0 = r->epochs.n;
    replica_epochs_truncate_end(&r->epochs, r->log_end);
    if (r->epochs.n != n0) r->out->epochs_changed = true;
    int i = 0;
    for (; i < m->n_batches; i++) {
        const replica_batch_t *b = &m->batches[i];
        const int n = r->epochs.n;
        int rc = replica_epochs_assign(&r->epochs, b->leader_epoch, b->base_offset);
        if (r->epochs.n != n) r->out->epochs_changed = true;
        if (rc == 0) rc = replica_producers_record(&r->producers, b);
        if (rc) {
            replica_note(r, 3, "appended %d of %d fetched batches: %s", i, m->n_batches, kl_errname(rc));
            break;
        }
        r->log_end = r->next_offset = b->base_offset + b->last_offset_delta + 1;
    }
    r->out->n_append = i;
}

int replica_on_fetch_resp(replica_t *r, const replica_fetch_resp_t *m)
{
    if (r->role != REPLICA_FOLLOWER || m->leader_epoch != r->st.leader_epoch || m->fetch_offset != r->log_end ||
        r->next_offset != r->log_end)
        return KL_ESTATE; /* answers a request we no longer stand by */
    if (m->error && m->error != KL_ERANGE) {
        replica_note(r, 1, "fetch from leader %d failed: %s", r->st.leader, kl_errname(m->error));
        return 0;
    }
    if (m->high_watermark < 0 || m->log_start_offset < 0 || m->log_end_offset < m->log_start_offset ||
        m->log_end_offset > REPLICA_MAX_OFFSET)
        return KL_EINVAL;
    if (m->error == KL_ERANGE) return on_out_of_range(r, m);
    if (m->diverging_epoch != REPLICA_NO_EPOCH) return on_diverging(r, m);
    if (!batches_ok(r, m)) return KL_EINVAL;
    append_batches(r, m);
    /* Followers learn the HW from the leader, bounded by what they hold. It
     * never goes back: a new leader may know a lower one than its predecessor,
     * but what was committed stays committed. */
    const int64_t hw = m->high_watermark < r->log_end ? m->high_watermark : r->log_end;
    if (hw > r->hw) r->hw = hw;
    /* The leader's retention applies to us too, below what we know is committed. */
    const int64_t start = m->log_start_offset < r->hw ? m->log_start_offset : r->hw;
    if (start > r->log_start) {
        replica_move_log_start(r, start);
        r->out->log_start_to = start;
    }
    return 0;
}
