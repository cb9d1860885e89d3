/* replica_epochs.c — the leader-epoch cache and the follower divergence rule (KIP-101, KIP-279, DESIGN.md §4). */
#include "keel/replica_epochs.h"

#include <stdlib.h>
#include <string.h>

#include "keel/err.h"

void replica_epochs_init(replica_epochs_t *c) { memset(c, 0, sizeof *c); }

void replica_epochs_free(replica_epochs_t *c)
{
    free(c->e);
    memset(c, 0, sizeof *c);
}

static int reserve(replica_epochs_t *c, int n)
{
    if (n > REPLICA_MAX_EPOCHS) return KL_EFULL;
    if (n <= c->cap) return 0;
    int cap = c->cap ? c->cap : 8;
    while (cap < n) cap *= 2;
    if (cap > REPLICA_MAX_EPOCHS) cap = REPLICA_MAX_EPOCHS;
    replica_epoch_entry_t *e = realloc(c->e, (size_t)cap * sizeof *e);
    if (!e) return KL_ENOMEM;
    c->e = e;
    c->cap = cap;
    return 0;
}

int replica_epochs_load(replica_epochs_t *c, const replica_epoch_entry_t *e, int n)
{
    if (n < 0 || (n > 0 && !e)) return KL_EINVAL;
    for (int i = 0; i < n; i++)
        if (e[i].epoch < 0 || e[i].start_offset < 0 ||
            (i > 0 && (e[i].epoch <= e[i - 1].epoch || e[i].start_offset <= e[i - 1].start_offset)))
            return KL_EINVAL;
    const int rc = reserve(c, n);
    if (rc) return rc;
    if (n > 0) memcpy(c->e, e, (size_t)n * sizeof *e);
    c->n = n;
    return 0;
}

int replica_epochs_assign(replica_epochs_t *c, int32_t epoch, int64_t start_offset)
{
    if (epoch < 0 || start_offset < 0) return KL_EINVAL;
    if (c->n == 0) {
        const int rc = reserve(c, 1);
        if (rc) return rc;
        c->e[c->n++] = (replica_epoch_entry_t){epoch, start_offset};
        return 0;
    }
    const replica_epoch_entry_t *last = &c->e[c->n - 1];
    if (epoch == last->epoch) return start_offset >= last->start_offset ? 0 : KL_EINVAL;
    if (epoch < last->epoch || start_offset < last->start_offset) return KL_EINVAL;
    if (start_offset == last->start_offset) { /* the latest epoch wrote nothing: the new one replaces it */
        c->e[c->n - 1].epoch = epoch;
        return 0;
    }
    const int rc = reserve(c, c->n + 1);
    if (rc) return rc;
    c->e[c->n++] = (replica_epoch_entry_t){epoch, start_offset};
    return 0;
}

int32_t replica_epochs_latest(const replica_epochs_t *c) { return c->n ? c->e[c->n - 1].epoch : REPLICA_NO_EPOCH; }

/* Index of the last entry whose start is <= offset, -1 if none (binary search). */
static int floor_by_offset(const replica_epochs_t *c, int64_t offset)
{
    int lo = 0, hi = c->n; /* answer in [lo-1, hi-1] */
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (c->e[mid].start_offset <= offset) lo = mid + 1;
        else hi = mid;
    }
    return lo - 1;
}

/* Index of the last entry whose epoch is <= epoch, -1 if none. */
static int floor_by_epoch(const replica_epochs_t *c, int32_t epoch)
{
    int lo = 0, hi = c->n;
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (c->e[mid].epoch <= epoch) lo = mid + 1;
        else hi = mid;
    }
    return lo - 1;
}

int32_t replica_epochs_epoch_at(const replica_epochs_t *c, int64_t offset)
{
    const int i = floor_by_offset(c, offset);
    return i >= 0 ? c->e[i].epoch : REPLICA_NO_EPOCH;
}

void replica_epochs_end_offset(const replica_epochs_t *c, int32_t epoch, int64_t log_end, int32_t *out_epoch,
                               int64_t *out_end)
{
    *out_epoch = REPLICA_NO_EPOCH;
    *out_end = REPLICA_NO_OFFSET;
    if (epoch < 0 || c->n == 0 || epoch > c->e[c->n - 1].epoch) return;
    if (epoch == c->e[c->n - 1].epoch) {
        *out_epoch = epoch;
        *out_end = log_end;
        return;
    }
    const int f = floor_by_epoch(c, epoch); /* f + 1 exists: epoch is below the latest */
    *out_epoch = f >= 0 ? c->e[f].epoch : epoch;
    *out_end = c->e[f + 1].start_offset;
}

void replica_epochs_truncate_end(replica_epochs_t *c, int64_t end)
{
    while (c->n > 0 && c->e[c->n - 1].start_offset >= end) c->n--;
}

void replica_epochs_truncate_start(replica_epochs_t *c, int64_t start)
{
    const int f = floor_by_offset(c, start);
    if (f < 0) return; /* every entry starts above it */
    memmove(c->e, c->e + f, (size_t)(c->n - f) * sizeof *c->e);
    c->n -= f;
    c->e[0].start_offset = start;
}

int replica_epochs_truncation(const replica_epochs_t *own, int64_t own_log_end, int64_t own_hw,
                              int32_t leader_epoch, int64_t leader_end_offset, replica_truncation_t *out)
{
    if (leader_epoch < 0 || leader_end_offset < 0 || own_log_end < 0 || own_hw < 0) return KL_EINVAL;
    int32_t our_epoch;
    int64_t our_end;
    replica_epochs_end_offset(own, leader_epoch, own_log_end, &our_epoch, &our_end);
    int64_t to = own_log_end;
    bool complete = true;
    if (our_epoch != REPLICA_NO_EPOCH) { /* none: we hold no epoch <= the leader's, so its end offset decides */
        if (our_end < to) to = our_end;
        complete = our_epoch == leader_epoch;
    }
    if (leader_end_offset < to) to = leader_end_offset;
    if (to < own_hw) return KL_ESTATE;
    out->offset = to;
    out->complete = complete;
    return 0;
}
