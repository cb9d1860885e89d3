/* meta_assign.c — replica assignment for new topics: Kafka's round-robin with a shift, rack-aware when racks are set (DESIGN.md §3). */
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

static int cmp_by_id(const void *a, const void *b)
{
    int32_t x = ((const meta_assign_broker_t *)a)->id, y = ((const meta_assign_broker_t *)b)->id;
    return (x > y) - (x < y);
}

static int cmp_by_rack_then_id(const void *a, const void *b)
{
    const meta_assign_broker_t *x = a, *y = b;
    int c = strcmp(x->rack, y->rack);
    return c ? c : cmp_by_id(a, b);
}

/* Kafka's getRackAlternatedBrokerList: one broker from each rack in rack
 * order, round after round, so neighbours in the list sit on different racks
 * for as long as racks last. `sorted` is ordered by (rack, id). */
static int rack_alternate(const meta_assign_broker_t *sorted, int n, meta_assign_broker_t *out)
{
    int first[META_MAX_BROKERS], count[META_MAX_BROKERS], n_racks = 0;
    for (int i = 0; i < n; i++) {
        if (i == 0 || strcmp(sorted[i].rack, sorted[i - 1].rack) != 0) {
            first[n_racks] = i;
            count[n_racks++] = 0;
        }
        count[n_racks - 1]++;
    }
    int k = 0;
    for (int round = 0; k < n; round++)
        for (int r = 0; r < n_racks; r++)
            if (round < count[r]) out[k++] = sorted[first[r] + round];
    return n_racks;
}

/* The j-th follower of the partition led by list[first]: the brokers after
 * it, rotated by shift, never first itself (Kafka's replicaIndex). */
static int replica_index(int first, uint32_t shift, uint32_t j, int n)
{
    return (first + 1 + (int)((shift + j) % (uint32_t)(n - 1))) % n;
}

int meta_assign_replicas(const meta_assign_broker_t *brokers, int n, int32_t n_partitions, int rf, uint32_t start,
                         uint32_t shift, int32_t (*out)[META_MAX_REPLICAS])
{
    if (n < 1 || n > META_MAX_BROKERS || rf < 1 || rf > n || rf > META_MAX_REPLICAS || n_partitions < 1 ||
        n_partitions > META_MAX_TOPIC_PARTITIONS)
        return KL_EINVAL;
    meta_assign_broker_t *list = malloc(2 * (size_t)n * sizeof *list);
    if (!list) return KL_ENOMEM;
    meta_assign_broker_t *sorted = list + n;
    bool racked = true;
    for (int i = 0; i < n; i++) {
        sorted[i] = brokers[i];
        if (!sorted[i].rack) sorted[i].rack = "";
        racked = racked && sorted[i].rack[0];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_by_id);
    for (int i = 1; i < n; i++)
        if (sorted[i].id == sorted[i - 1].id) {
            free(list);
            return KL_EINVAL;
        }
    /* Racks only count when every broker has one: with some missing, "a
     * distinct rack" means nothing for those (Kafka refuses to assign then;
     * we fall back to the rack-unaware spread). */
    if (racked) qsort(sorted, (size_t)n, sizeof *sorted, cmp_by_rack_then_id);
    int n_racks = 1;
    if (racked) n_racks = rack_alternate(sorted, n, list);
    else memcpy(list, sorted, (size_t)n * sizeof *list);

    start %= (uint32_t)n;
    shift %= (uint32_t)n;
    for (int32_t p = 0; p < n_partitions; p++) {
        if (p > 0 && p % n == 0) shift++; /* next round: other followers for the same leader */
        int first = (int)(((uint32_t)p + start) % (uint32_t)n);
        int32_t *row = out[p];
        row[0] = list[first].id;
        int used = 1;
        const char *racks_used[META_MAX_REPLICAS] = {list[first].rack};
        int n_racks_used = 1;
        for (uint32_t k = 0; used < rf; k++) {
            KL_ASSERT(k < 2u * (uint32_t)n); /* every other broker comes up within n-1 steps */
            const meta_assign_broker_t *c = &list[replica_index(first, racked ? shift * (uint32_t)n_racks : shift, k, n)];
            if (meta_has_id(row, used, c->id)) continue;
            if (racked && n_racks_used < n_racks) {
                bool rack_used = false;
                for (int r = 0; r < n_racks_used; r++) rack_used = rack_used || strcmp(racks_used[r], c->rack) == 0;
                if (rack_used) continue; /* distinct racks first */
                racks_used[n_racks_used++] = c->rack;
            }
            row[used++] = c->id;
        }
    }
    free(list);
    return 0;
}
