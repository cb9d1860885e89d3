/* raft_memlog.c — the raft core's in-memory log: growable array of entries with owned data. */
#include "raft_memlog.h"

#include <stdlib.h>
#include <string.h>

#include "keel/err.h"

#define MEMLOG_MIN_CAP 64

int64_t raft_memlog_end(const raft_memlog_t *l) { return l->start + (int64_t)l->n; }

const raft_entry_t *raft_memlog_at(const raft_memlog_t *l, int64_t off)
{
    if (off < l->start || off >= raft_memlog_end(l)) return NULL;
    return &l->e[off - l->start];
}

int32_t raft_memlog_epoch_before(const raft_memlog_t *l, int64_t off)
{
    KL_ASSERT(off >= l->start && off <= raft_memlog_end(l));
    return off == l->start ? l->start_epoch : l->e[off - l->start - 1].epoch;
}

int raft_memlog_reserve(raft_memlog_t *l, size_t extra)
{
    if (l->n + extra <= l->cap) return 0;
    size_t cap = l->cap ? l->cap : MEMLOG_MIN_CAP;
    while (cap < l->n + extra) cap *= 2;
    raft_entry_t *e = realloc(l->e, cap * sizeof *e);
    if (!e) return KL_ENOMEM;
    l->e = e;
    l->cap = cap;
    return 0;
}

void raft_memlog_append_owned(raft_memlog_t *l, const raft_entry_t *src)
{
    KL_ASSERT(l->n < l->cap);
    KL_ASSERT(l->n == 0 ? src->epoch >= l->start_epoch : src->epoch >= l->e[l->n - 1].epoch);
    raft_entry_t *d = &l->e[l->n];
    *d = *src;
    d->offset = raft_memlog_end(l);
    l->n++;
}

int raft_memlog_append_copy(raft_memlog_t *l, const raft_entry_t *src)
{
    if (raft_memlog_reserve(l, 1) != 0) return KL_ENOMEM;
    uint8_t *data = malloc(src->len ? src->len : 1);
    if (!data) return KL_ENOMEM;
    if (src->len) memcpy(data, src->data, src->len);
    raft_entry_t e = *src;
    e.data = data;
    raft_memlog_append_owned(l, &e);
    return 0;
}

static void free_range(raft_memlog_t *l, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) free((void *)l->e[i].data);
}

void raft_memlog_truncate(raft_memlog_t *l, int64_t end)
{
    KL_ASSERT(end >= l->start && end <= raft_memlog_end(l));
    size_t keep = (size_t)(end - l->start);
    free_range(l, keep, l->n);
    l->n = keep;
    if (l->durable_end > end) l->durable_end = end;
}

void raft_memlog_trim(raft_memlog_t *l, int64_t start, int32_t start_epoch)
{
    KL_ASSERT(start >= l->start && start <= raft_memlog_end(l));
    size_t drop = (size_t)(start - l->start);
    free_range(l, 0, drop);
    memmove(l->e, l->e + drop, (l->n - drop) * sizeof *l->e);
    l->n -= drop;
    l->start = start;
    l->start_epoch = start_epoch;
    if (l->durable_end < start) l->durable_end = start;
}

void raft_memlog_reset(raft_memlog_t *l, int64_t start, int32_t start_epoch)
{
    free_range(l, 0, l->n);
    l->n = 0;
    l->start = start;
    l->start_epoch = start_epoch;
    l->durable_end = start;
}

int64_t raft_memlog_epoch_end(const raft_memlog_t *l, int32_t epoch, int32_t *found)
{
    /* Epochs are non-decreasing: binary search the first entry newer than `epoch`. */
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->e[mid].epoch > epoch) hi = mid;
        else lo = mid + 1;
    }
    if (lo > 0) {
        *found = l->e[lo - 1].epoch;
        return l->start + (int64_t)lo;
    }
    *found = l->start_epoch <= epoch ? l->start_epoch : -1;
    return l->start;
}

void raft_memlog_free(raft_memlog_t *l)
{
    free_range(l, 0, l->n);
    free(l->e);
    memset(l, 0, sizeof *l);
}
