/* meta_elect.c — leader election and ISR repair under broker liveness (DESIGN.md §3), and the plumbing every decision shares. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

static int cmp_id(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

bool meta_view_usable(const meta_view_t *v, int32_t id)
{
    if (id < 0) return false;
    if (id == v->up) return true;
    if (v->n_down > 0 && bsearch(&id, v->down, (size_t)v->n_down, sizeof *v->down, cmp_id)) return false;
    const meta_broker_t *b = meta_image_broker(v->img, id);
    return b && b->state == META_BROKER_ACTIVE;
}

static bool view_involves(const meta_view_t *v, const meta_partition_t *p)
{
    for (int i = 0; i < p->n_replicas; i++) {
        int32_t r = p->replicas[i];
        if (r == v->up || (v->n_down > 0 && bsearch(&r, v->down, (size_t)v->n_down, sizeof *v->down, cmp_id)))
            return true;
    }
    return false;
}

meta_record_t meta_change_record(const meta_partition_t *p)
{
    meta_record_t r = {.type = META_REC_PARTITION_CHANGE};
    memcpy(r.u.change.topic, p->topic, KL_UUID_LEN);
    r.u.change.partition = p->partition;
    r.u.change.leader = META_LEADER_UNCHANGED;
    r.u.change.n_isr = -1;
    r.u.change.n_replicas = -1;
    return r;
}

bool meta_partition_target(const meta_view_t *v, const meta_partition_t *p, bool unclean,
                           meta_partition_change_t *chg, bool *was_unclean)
{
    int32_t isr[META_MAX_REPLICAS];
    int n_isr = 0;
    for (int i = 0; i < p->n_isr; i++)
        if (meta_view_usable(v, p->isr[i])) isr[n_isr++] = p->isr[i];
    if (n_isr == 0) { /* nobody usable: keep them all, each holds every committed record */
        memcpy(isr, p->isr, (size_t)p->n_isr * sizeof *isr);
        n_isr = p->n_isr;
    }
    int32_t leader = META_NO_LEADER;
    if (p->leader != META_NO_LEADER && meta_view_usable(v, p->leader)) leader = p->leader;
    for (int i = 0; leader == META_NO_LEADER && i < p->n_replicas; i++)
        if (meta_view_usable(v, p->replicas[i]) && meta_has_id(isr, n_isr, p->replicas[i])) leader = p->replicas[i];
    *was_unclean = false;
    for (int i = 0; unclean && leader == META_NO_LEADER && i < p->n_replicas; i++)
        if (meta_view_usable(v, p->replicas[i])) {
            leader = isr[0] = p->replicas[i];
            n_isr = 1;
            *was_unclean = true;
        }
    bool isr_changed = n_isr != p->n_isr || memcmp(isr, p->isr, (size_t)n_isr * sizeof *isr) != 0;
    if (leader == p->leader && !isr_changed) return false;
    *chg = meta_change_record(p).u.change;
    if (leader != p->leader) chg->leader = leader;
    if (isr_changed) {
        memcpy(chg->isr, isr, (size_t)n_isr * sizeof *isr);
        chg->n_isr = n_isr;
    }
    return true;
}

/* ---- decision plumbing ------------------------------------------------------- */

void meta_decision_init(meta_decision_t *d)
{
    memset(d, 0, sizeof *d);
    meta_records_init(&d->records);
}

void meta_decision_free(meta_decision_t *d)
{
    meta_records_free(&d->records);
    meta_decision_init(d);
}

void meta_decision_begin(meta_decision_t *d)
{
    meta_records_clear(&d->records);
    d->unclean = false;
    d->n_notes = 0;
    d->notes_dropped = 0;
    d->error[0] = '\0';
}

int meta_refuse(meta_decision_t *d, int err, const char *fmt, ...)
{
    meta_records_clear(&d->records);
    d->unclean = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
    return err;
}

int meta_push(meta_decision_t *d, const meta_record_t *rec)
{
    int rc = meta_records_push(&d->records, rec);
    return rc ? meta_refuse(d, rc, "cannot hold %d more records: %s", d->records.n + 1, kl_strerror(rc)) : 0;
}

void meta_note(meta_decision_t *d, int level, const char *fmt, ...)
{
    if (d->n_notes == META_MAX_NOTES) {
        d->notes_dropped++;
        return;
    }
    meta_note_t *n = &d->notes[d->n_notes++];
    n->level = level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->text, sizeof n->text, fmt, ap);
    va_end(ap);
}

static void format_ids(char *out, size_t len, const int32_t *ids, int n)
{
    size_t at = (size_t)snprintf(out, len, "[");
    for (int i = 0; i < n && at < len; i++) at += (size_t)snprintf(out + at, len - at, i ? ",%d" : "%d", (int)ids[i]);
    if (at < len) snprintf(out + at, len - at, "]");
}

int meta_reconcile(const meta_view_t *v, const meta_ctl_config_t *cfg, bool all, meta_decision_t *d)
{
    for (int t = 0; t < meta_image_topic_count(v->img); t++) {
        const meta_topic_t *topic = meta_image_topic_at(v->img, t);
        bool unclean =
            meta_image_config_bool(v->img, topic, META_CFG_UNCLEAN_ELECTION, cfg->unclean_leader_election_enable);
        for (int i = 0; i < topic->n_parts; i++) {
            const meta_partition_t *p = &topic->parts[i];
            meta_record_t r = {.type = META_REC_PARTITION_CHANGE};
            bool was_unclean;
            if ((!all && !view_involves(v, p)) || !meta_partition_target(v, p, unclean, &r.u.change, &was_unclean))
                continue;
            int rc = meta_push(d, &r);
            if (rc) return rc;
            const meta_partition_change_t *c = &r.u.change;
            char before[64], after[64];
            format_ids(before, sizeof before, p->isr, p->n_isr);
            format_ids(after, sizeof after, c->n_isr >= 0 ? c->isr : p->isr, c->n_isr >= 0 ? c->n_isr : p->n_isr);
            int32_t leader = c->leader == META_LEADER_UNCHANGED ? p->leader : c->leader;
            if (was_unclean) {
                d->unclean = true;
                meta_note(d, 3, "UNCLEAN leader election for %s-%d: broker %d was not in the ISR %s; records it lacks are lost",
                          topic->name, (int)p->partition, (int)leader, before);
            } else {
                meta_note(d, leader == META_NO_LEADER ? 2 : 1, "%s-%d: leader %d -> %d%s, isr %s -> %s", topic->name,
                          (int)p->partition, (int)p->leader, (int)leader, leader == META_NO_LEADER ? " (offline)" : "",
                          before, after);
            }
        }
    }
    return 0;
}
