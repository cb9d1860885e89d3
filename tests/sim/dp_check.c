/* dp_check.c — the data-plane simulator's invariants (DESIGN.md §3, §4, §8): acknowledged records survive in place and in order, replicas agree below the HW, consumers' HW never goes back, the controller image stays consistent. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_cluster.h"
#include "sim_cluster.h"

void dp_fail(dp_t *s, sim_failure_t kind, const char *invariant, const char *fmt, ...)
{
    if (s->failed) return; /* the first violation is the one that matters */
    s->failed = true;
    dp_result_t *r = s->res;
    r->failure = kind;
    snprintf(r->invariant, sizeof r->invariant, "%s", invariant);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
    r->step = r->steps;
    r->at_ms = s->now;
    dp_trace(s, "FAILED %s: %s", r->invariant, r->detail);
}

void dp_check_init(dp_t *s)
{
    s->values = NULL;
    s->n_values = s->cap_values = 0;
    memset(s->committed, 0, sizeof s->committed);
}

void dp_check_free(dp_t *s)
{
    free(s->values);
    for (int p = 0; p < DP_MAX_PARTS; p++) free(s->committed[p].at);
}

int64_t dp_value_new(dp_t *s, int client, int part, int32_t count)
{
    const int64_t id = ++s->n_values; /* 0 is never a value */
    sim_grow((void **)&s->values, &s->cap_values, id + 1, sizeof *s->values);
    s->values[id] = (dp_value_t){.client = client, .part = part, .count = count, .offset = -1};
    s->res->values_sent++;
    return id;
}

static bool batch_equal(const dp_batch_t *a, const dp_batch_t *b)
{
    return a->value == b->value && a->h.base_offset == b->h.base_offset &&
           a->h.last_offset_delta == b->h.last_offset_delta && a->h.leader_epoch == b->h.leader_epoch &&
           a->h.producer_id == b->h.producer_id && a->h.producer_epoch == b->h.producer_epoch &&
           a->h.base_sequence == b->h.base_sequence;
}

static int fmt_batch(char *out, size_t cap, const dp_batch_t *x)
{
    return snprintf(out, cap, "[%" PRId64 "..%" PRId64 "] e%d value %" PRId64 " (pid %" PRId64 "/%d seq %d)",
                    x->h.base_offset, x->h.base_offset + x->h.last_offset_delta, x->h.leader_epoch, x->value,
                    x->h.producer_id, x->h.producer_epoch, x->h.base_sequence);
}

/* Offset `o` of partition `part` is committed, and `who` holds batch x there. */
static void commit_offset(dp_t *s, int part, int64_t o, const dp_batch_t *x, const char *who)
{
    dp_committed_t *c = &s->committed[part];
    sim_grow((void **)&c->at, &c->cap, o + 1, sizeof *c->at);
    if (o >= c->n) c->n = o + 1;
    dp_slot_t *slot = &c->at[o];
    if (!slot->set) {
        slot->set = true;
        slot->b = *x;
        return;
    }
    if (batch_equal(&slot->b, x)) return;
    char a[160], b[160];
    fmt_batch(a, sizeof a, &slot->b);
    fmt_batch(b, sizeof b, x);
    dp_fail(s, SIM_FAIL_SAFETY, "replicas-agree-below-hw", "p%d offset %" PRId64 ": %s holds %s below its HW, "
            "but %s was committed there", part, o, who, b, a);
}

void dp_check_hw(dp_t *s, dp_broker_t *b, int part)
{
    dp_rep_t *rep = &b->rep[part];
    const dp_disk_t *d = &rep->disk;
    const int64_t hw = replica_high_watermark(rep->r);
    if (hw <= rep->checked_upto) return;
    char who[32];
    snprintf(who, sizeof who, "b%d", (int)b->id);
    for (int64_t i = dp_disk_index(d, rep->checked_upto); i < d->n && !s->failed; i++) {
        const dp_batch_t *x = &d->b[i];
        if (x->h.base_offset >= hw) break;
        const int64_t end = x->h.base_offset + x->h.last_offset_delta + 1;
        for (int64_t o = x->h.base_offset > rep->checked_upto ? x->h.base_offset : rep->checked_upto;
             o < end && o < hw; o++)
            commit_offset(s, part, o, x, who);
    }
    rep->checked_upto = hw;
}

/* A replica may cut only records that differ from the committed ones at
 * their offsets (a divergent suffix, KIP-101): one that is committed stays,
 * even above the replica's own, possibly lagging or restored, HW. Cutting to
 * the own HW instead is exactly the pre-KIP-101 bug. */
void dp_check_truncate(dp_t *s, dp_broker_t *b, int part, int64_t to)
{
    const dp_disk_t *d = &b->rep[part].disk;
    const dp_committed_t *c = &s->committed[part];
    for (int64_t i = dp_disk_index(d, to); i < d->n; i++) {
        const dp_batch_t *x = &d->b[i];
        for (int64_t o = x->h.base_offset < to ? to : x->h.base_offset;
             o <= x->h.base_offset + x->h.last_offset_delta && o < c->n; o++) {
            if (!c->at[o].set || !batch_equal(&c->at[o].b, x)) continue;
            char a[160];
            fmt_batch(a, sizeof a, x);
            dp_fail(s, SIM_FAIL_SAFETY, "committed-never-truncated", "b%d p%d cuts its log from %" PRId64 " to %"
                    PRId64 ", dropping the committed %s at offset %" PRId64 " (its HW %" PRId64 ", highest %" PRId64
                    ")", (int)b->id, part, dp_disk_end(d), to, a, o,
                    b->rep[part].r ? replica_high_watermark(b->rep[part].r) : -1, b->rep[part].checked_upto);
            return;
        }
    }
}

void dp_check_ack(dp_t *s, int client, int64_t value, int part, int64_t base, int64_t last, int32_t count)
{
    dp_value_t *v = &s->values[value];
    if (v->client != client || v->part != part || last - base + 1 != count || base < 0) {
        dp_fail(s, SIM_FAIL_SAFETY, "ack-matches-batch", "c%d: value %" PRId64 " (%d records, p%d) acknowledged as "
                "p%d [%" PRId64 ", %" PRId64 "]", client, value, count, v->part, part, base, last);
        return;
    }
    if (v->acked && v->offset != base) {
        dp_fail(s, SIM_FAIL_SAFETY, "one-offset-per-value", "value %" PRId64 " acknowledged at offsets %" PRId64
                " and %" PRId64, value, v->offset, base);
        return;
    }
    if (!v->acked) s->res->values_acked++;
    v->acked = true;
    v->offset = base;
    const dp_committed_t *c = &s->committed[part];
    if (base < c->n && c->at[base].set && c->at[base].b.value != value)
        dp_fail(s, SIM_FAIL_SAFETY, "ack-matches-committed", "value %" PRId64 " acknowledged at p%d offset %" PRId64
                ", where value %" PRId64 " is committed", value, part, base, c->at[base].b.value);
}

void dp_check_consumed(dp_t *s, dp_client_t *c, const dp_batch_t *bs, int n, int64_t hw)
{
    if (hw < c->max_hw) {
        dp_fail(s, SIM_FAIL_SAFETY, "consumer-hw-monotonic", "c%d: p%d's HW went back from %" PRId64 " to %" PRId64
                " (leader b%d, leader epoch %d)", c->idx, c->part, c->max_hw, hw, (int)c->leader, c->leader_epoch);
        return;
    }
    c->max_hw = hw;
    char who[32];
    snprintf(who, sizeof who, "consumer c%d", c->idx);
    for (int i = 0; i < n && !s->failed; i++) {
        const dp_batch_t *x = &bs[i];
        const int64_t end = x->h.base_offset + x->h.last_offset_delta + 1;
        if (x->h.base_offset != c->pos || end > hw) {
            dp_fail(s, SIM_FAIL_SAFETY, "consumer-reads-committed", "c%d: p%d read a batch [%" PRId64 ", %" PRId64
                    ") at position %" PRId64 " with HW %" PRId64, c->idx, c->part, x->h.base_offset, end, c->pos, hw);
            return;
        }
        for (int64_t o = x->h.base_offset; o < end; o++) commit_offset(s, c->part, o, x, who);
        c->pos = end;
        s->res->values_consumed++;
    }
}

/* Invariants of every committed prefix (meta_ctl.h orders each decision's
 * records so that any prefix is consistent): a leader is never fenced, and an
 * online partition's ISR holds no fenced broker. */
void dp_check_image(dp_t *s)
{
    const meta_image_t *img = s->ctrl.img;
    for (int part = 0; part < s->n_parts; part++) {
        const meta_partition_t *mp = dp_ctrl_partition(s, part);
        if (!mp || mp->leader < 0) continue;
        for (int i = 0; i < mp->n_isr; i++) {
            const meta_broker_t *b = meta_image_broker(img, mp->isr[i]);
            if (b && b->state != META_BROKER_FENCED) continue;
            dp_fail(s, SIM_FAIL_SAFETY, "image-isr-unfenced", "p%d (leader %d, leader epoch %d) has %s broker %d in "
                    "its ISR at metadata offset %d", part, (int)mp->leader, mp->leader_epoch,
                    b ? "fenced" : "unknown", (int)mp->isr[i], s->ctrl.log.n);
            return;
        }
    }
}

/* ---- the end of a run: everything healed and settled ------------------------------------- */

static void check_partition(dp_t *s, int part, int64_t *last_value_of)
{
    const meta_partition_t *mp = dp_ctrl_partition(s, part);
    const dp_broker_t *lb = &s->brokers[mp->leader - DP_BROKER_ID_BASE - 1];
    const dp_disk_t *ld = &lb->rep[part].disk;
    /* all replicas hold the same log */
    for (int i = 0; i < mp->n_replicas && !s->failed; i++) {
        const dp_disk_t *d = &s->brokers[mp->replicas[i] - DP_BROKER_ID_BASE - 1].rep[part].disk;
        bool same = d->n == ld->n;
        for (int64_t k = 0; same && k < d->n; k++) same = batch_equal(&d->b[k], &ld->b[k]);
        if (!same)
            dp_fail(s, SIM_FAIL_SAFETY, "final-logs-agree", "p%d: replica b%d's log (%" PRId64 " batches, end %"
                    PRId64 ") differs from leader b%d's (%" PRId64 " batches, end %" PRId64 ")", part,
                    (int)mp->replicas[i], d->n, dp_disk_end(d), (int)mp->leader, ld->n, dp_disk_end(ld));
    }
    /* what was committed (HW, consumers) is still there */
    const dp_committed_t *c = &s->committed[part];
    for (int64_t i = 0; i < ld->n && !s->failed; i++) {
        const dp_batch_t *x = &ld->b[i];
        for (int64_t o = x->h.base_offset; o <= x->h.base_offset + x->h.last_offset_delta && o < c->n; o++)
            if (c->at[o].set && !batch_equal(&c->at[o].b, x)) {
                char a[160], b[160];
                fmt_batch(a, sizeof a, &c->at[o].b);
                fmt_batch(b, sizeof b, x);
                dp_fail(s, SIM_FAIL_SAFETY, "committed-never-changes", "p%d offset %" PRId64 ": final log holds %s, "
                        "but %s was committed there", part, o, b, a);
                return;
            }
    }
    if (!s->failed && c->n > dp_disk_end(ld))
        dp_fail(s, SIM_FAIL_SAFETY, "committed-never-changes", "p%d: offsets up to %" PRId64 " were committed, "
                "the final log ends at %" PRId64, part, c->n, dp_disk_end(ld));
    /* every value at most once, in its producer's order, acknowledged ones where acknowledged */
    for (int64_t i = 0; i < ld->n && !s->failed; i++) {
        const dp_batch_t *x = &ld->b[i];
        if (x->value <= 0 || x->value > s->n_values) {
            dp_fail(s, SIM_FAIL_SAFETY, "final-log-values", "p%d offset %" PRId64 ": unknown value %" PRId64, part,
                    x->h.base_offset, x->value);
            return;
        }
        const dp_value_t *v = &s->values[x->value];
        if (v->part != part || v->count != x->h.last_offset_delta + 1) {
            dp_fail(s, SIM_FAIL_SAFETY, "final-log-values", "p%d offset %" PRId64 ": value %" PRId64
                    " belongs to p%d with %d records", part, x->h.base_offset, x->value, v->part, v->count);
        } else if (x->value <= last_value_of[v->client]) {
            dp_fail(s, SIM_FAIL_SAFETY, "no-duplicates-in-send-order", "p%d offset %" PRId64 ": producer c%d's value %"
                    PRId64 " follows its value %" PRId64, part, x->h.base_offset, v->client, x->value,
                    last_value_of[v->client]);
        } else if (v->acked && v->offset != x->h.base_offset) {
            dp_fail(s, SIM_FAIL_SAFETY, "acked-at-its-offset", "p%d: value %" PRId64 " acknowledged at offset %" PRId64
                    " is at %" PRId64, part, x->value, v->offset, x->h.base_offset);
        }
        last_value_of[v->client] = x->value;
    }
}

void dp_check_final(dp_t *s)
{
    int64_t last_value_of[DP_MAX_CLIENTS] = {0};
    for (int part = 0; part < s->n_parts && !s->failed; part++) check_partition(s, part, last_value_of);
    /* acknowledged values that the check above did not meet are lost */
    for (int64_t id = 1; id <= s->n_values && !s->failed; id++) {
        const dp_value_t *v = &s->values[id];
        if (!v->acked) continue;
        const dp_disk_t *d = &s->brokers[dp_ctrl_partition(s, v->part)->leader - DP_BROKER_ID_BASE - 1].rep[v->part].disk;
        const int64_t i = dp_disk_index(d, v->offset);
        if (i >= d->n || d->b[i].value != id)
            dp_fail(s, SIM_FAIL_SAFETY, "acked-never-lost", "value %" PRId64 " of c%d, acknowledged (acks=all) at p%d "
                    "offset %" PRId64 ", is not in the final log (which ends at %" PRId64 ")", id, v->client, v->part,
                    v->offset, dp_disk_end(d));
    }
    for (int i = 0; i < s->n_brokers && !s->failed; i++)
        if (!meta_image_equal(s->brokers[i].img, s->ctrl.img))
            dp_fail(s, SIM_FAIL_SAFETY, "broker-image-equal", "b%d's metadata image differs from the controller's "
                    "after applying the same %" PRId64 " records", (int)s->brokers[i].id, s->brokers[i].meta_end);
}
