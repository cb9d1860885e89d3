/* meta_partition.c — controller decisions about partitions: AlterPartition, preferred and periodic leader elections, repair (DESIGN.md §3, §4). */
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

int meta_decide_alter_partition(const meta_image_t *img, const meta_alter_partition_req_t *req, const meta_ctl_config_t *cfg,
                                meta_decision_t *out)
{
    (void)cfg;
    meta_decision_begin(out);
    const meta_broker_t *b = meta_image_broker(img, req->broker_id);
    if (!b || b->epoch != req->broker_epoch)
        return meta_refuse(out, KL_EFENCED, "broker %d epoch %lld is not registered", (int)req->broker_id,
                           (long long)req->broker_epoch);
    const meta_topic_t *t = meta_image_topic_by_uuid(img, req->topic);
    const meta_partition_t *p = meta_image_partition(img, req->topic, req->partition);
    if (!p) return meta_refuse(out, KL_EUNKNOWNPARTITION, "unknown partition %d", (int)req->partition);
    if (p->leader != req->broker_id)
        return meta_refuse(out, KL_ENOTLEADER, "%s-%d: broker %d is not the leader (%d is)", t->name, (int)p->partition,
                           (int)req->broker_id, (int)p->leader);
    /* §4: the leader names the state it knows; anything but the current one
     * means it acts on stale metadata (or, newer, on state we never made). */
    if (req->leader_epoch != p->leader_epoch || req->partition_epoch != p->partition_epoch) {
        bool older = req->leader_epoch < p->leader_epoch ||
                     (req->leader_epoch == p->leader_epoch && req->partition_epoch < p->partition_epoch);
        return meta_refuse(out, older ? KL_EFENCED : KL_EUNKNOWNEPOCH,
                           "%s-%d: leader epoch %d / partition epoch %d, current %d / %d", t->name, (int)p->partition,
                           (int)req->leader_epoch, (int)req->partition_epoch, (int)p->leader_epoch, (int)p->partition_epoch);
    }
    if (req->n_isr < 1 || req->n_isr > p->n_replicas || !req->isr)
        return meta_refuse(out, KL_EINVAL, "%s-%d: an ISR has 1..%d members, not %d", t->name, (int)p->partition,
                           p->n_replicas, req->n_isr);
    meta_view_t v = {.img = img, .up = -1};
    for (int i = 0; i < req->n_isr; i++) {
        int32_t id = req->isr[i];
        if (meta_has_id(req->isr, i, id))
            return meta_refuse(out, KL_EINVAL, "%s-%d: broker %d twice in the ISR", t->name, (int)p->partition, (int)id);
        if (!meta_has_id(p->replicas, p->n_replicas, id))
            return meta_refuse(out, KL_EINVAL, "%s-%d: broker %d is not a replica", t->name, (int)p->partition, (int)id);
        /* KIP-841: fenced or shutting-down brokers may not (re)join an ISR. */
        if (!meta_view_usable(&v, id))
            return meta_refuse(out, KL_EINVAL, "%s-%d: broker %d is not active and cannot be in the ISR", t->name,
                               (int)p->partition, (int)id);
    }
    if (!meta_has_id(req->isr, req->n_isr, p->leader))
        return meta_refuse(out, KL_EINVAL, "%s-%d: the ISR must contain the leader %d", t->name, (int)p->partition,
                           (int)p->leader);
    meta_record_t r = meta_change_record(p);
    meta_partition_change_t *c = &r.u.change;
    c->n_isr = 0;
    for (int i = 0; i < p->n_replicas; i++) /* stored in replica order, whatever order it came in */
        if (meta_has_id(req->isr, req->n_isr, p->replicas[i])) c->isr[c->n_isr++] = p->replicas[i];
    if (c->n_isr == p->n_isr && memcmp(c->isr, p->isr, (size_t)c->n_isr * sizeof *c->isr) == 0) return 0;
    int rc = meta_push(out, &r);
    if (rc == 0)
        meta_note(out, 1, "%s-%d: ISR %s from %d to %d members", t->name, (int)p->partition,
                  c->n_isr < p->n_isr ? "shrinks" : "changes", p->n_isr, c->n_isr);
    return rc;
}

/* Moves leadership of p to its preferred replica if that one is active and
 * in the ISR. Returns 1 if moved, 0 if not eligible, <0 on error. */
static int elect_preferred(const meta_view_t *v, const meta_partition_t *p, meta_decision_t *out)
{
    int32_t pref = p->replicas[0];
    if (!meta_view_usable(v, pref) || !meta_has_id(p->isr, p->n_isr, pref)) return 0;
    meta_record_t r = meta_change_record(p);
    r.u.change.leader = pref;
    int rc = meta_push(out, &r);
    return rc ? rc : 1;
}

int meta_decide_elect_preferred(const meta_image_t *img, const char *topic, const meta_ctl_config_t *cfg,
                                meta_decision_t *out)
{
    (void)cfg;
    meta_decision_begin(out);
    const meta_topic_t *only = NULL;
    if (topic && !(only = meta_image_topic(img, topic)))
        return meta_refuse(out, KL_EUNKNOWNPARTITION, "unknown topic %.64s", topic);
    meta_view_t v = {.img = img, .up = -1};
    int moved = 0, already = 0, ineligible = 0;
    for (int i = 0; i < meta_image_topic_count(img); i++) {
        const meta_topic_t *t = meta_image_topic_at(img, i);
        if (only && t != only) continue;
        for (int j = 0; j < t->n_parts; j++) {
            const meta_partition_t *p = &t->parts[j];
            if (p->leader == p->replicas[0]) {
                already++;
                continue;
            }
            int rc = elect_preferred(&v, p, out);
            if (rc < 0) return rc;
            moved += rc;
            ineligible += rc == 0;
        }
    }
    meta_note(out, 1, "preferred leader election: %d moved, %d already led by their preferred replica, %d not eligible"
              " (preferred replica not active or not in the ISR)", moved, already, ineligible);
    return 0;
}

static int broker_index(const meta_image_t *img, int32_t id)
{
    int lo = 0, hi = meta_image_broker_count(img);
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (meta_image_broker_at(img, mid)->id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

int meta_decide_auto_rebalance(const meta_image_t *img, const meta_ctl_config_t *cfg, meta_decision_t *out)
{
    meta_decision_begin(out);
    if (!cfg->auto_leader_rebalance_enable) return 0;
    int n = meta_image_broker_count(img);
    int preferred[META_MAX_BROKERS] = {0}, not_leading[META_MAX_BROKERS] = {0};
    for (int i = 0; i < meta_image_topic_count(img); i++) {
        const meta_topic_t *t = meta_image_topic_at(img, i);
        for (int j = 0; j < t->n_parts; j++) {
            const meta_partition_t *p = &t->parts[j];
            int k = broker_index(img, p->replicas[0]); /* replicas are registered brokers (apply checks) */
            KL_ASSERT(k < n);
            preferred[k]++;
            not_leading[k] += p->leader != p->replicas[0];
        }
    }
    meta_view_t v = {.img = img, .up = -1};
    int moved = 0;
    for (int i = 0; i < meta_image_topic_count(img); i++) {
        const meta_topic_t *t = meta_image_topic_at(img, i);
        for (int j = 0; j < t->n_parts; j++) {
            const meta_partition_t *p = &t->parts[j];
            int k = broker_index(img, p->replicas[0]);
            /* Kafka's trigger: the share of its preferred partitions the broker
             * does not lead exceeds leader.imbalance.per.broker.percentage. */
            if (p->leader == p->replicas[0] ||
                (int64_t)not_leading[k] * 100 <= (int64_t)cfg->leader_imbalance_per_broker_percentage * preferred[k])
                continue;
            int rc = elect_preferred(&v, p, out);
            if (rc < 0) return rc;
            moved += rc;
        }
    }
    if (moved) meta_note(out, 1, "leader rebalance: %d partitions back to their preferred leader", moved);
    return 0;
}

int meta_decide_reconcile(const meta_image_t *img, const meta_ctl_config_t *cfg, meta_decision_t *out)
{
    meta_decision_begin(out);
    meta_view_t v = {.img = img, .up = -1};
    return meta_reconcile(&v, cfg, true, out);
}
