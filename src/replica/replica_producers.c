/* replica_producers.c — idempotent producer state: sequence/epoch verdicts, replay, bounded table (KIP-98, KIP-360, DESIGN.md §4). */
#include "keel/replica_producers.h"

#include <stdlib.h>
#include <string.h>

#include "keel/err.h"

void replica_producers_init(replica_producers_t *s, int max)
{
    memset(s, 0, sizeof *s);
    s->max = max < 1 ? 1 : max > REPLICA_MAX_PRODUCERS ? REPLICA_MAX_PRODUCERS : max;
}

void replica_producers_free(replica_producers_t *s)
{
    free(s->p);
    s->p = NULL;
    s->n = s->cap = 0;
}

void replica_producers_clear(replica_producers_t *s) { s->n = 0; }

/* Sequences are 31-bit and wrap from INT32_MAX to 0 (Kafka's incrementSequence). */
static int32_t seq_add(int32_t seq, int32_t delta)
{
    return seq > INT32_MAX - delta ? delta - (INT32_MAX - seq) - 1 : seq + delta;
}

static bool in_sequence(int32_t last, int32_t next)
{
    return (int64_t)next == (int64_t)last + 1 || (next == 0 && last == INT32_MAX);
}

static bool well_formed(const replica_batch_t *b)
{
    if (b->producer_id == REPLICA_NO_PRODUCER_ID) return true;
    return b->producer_id >= 0 && b->producer_epoch >= 0 && b->base_sequence >= 0 && b->last_offset_delta >= 0;
}

/* Index of producer `id`, or -(insertion point) - 1. */
static int search(const replica_producers_t *s, int64_t id)
{
    int lo = 0, hi = s->n;
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        if (s->p[mid].id == id) return mid;
        if (s->p[mid].id < id) lo = mid + 1;
        else hi = mid;
    }
    return -lo - 1;
}

const replica_producer_t *replica_producers_find(const replica_producers_t *s, int64_t producer_id)
{
    const int i = search(s, producer_id);
    return i >= 0 ? &s->p[i] : NULL;
}

const replica_producer_t *replica_producers_at(const replica_producers_t *s, int i)
{
    return i >= 0 && i < s->n ? &s->p[i] : NULL;
}

static const replica_producer_batch_t *last_batch(const replica_producer_t *p) { return &p->batches[p->n_batches - 1]; }

int replica_producers_check(const replica_producers_t *s, const replica_batch_t *b, replica_producer_batch_t *dup)
{
    if (!well_formed(b)) return KL_EINVAL;
    if (b->producer_id == REPLICA_NO_PRODUCER_ID) return 0;
    const replica_producer_t *p = replica_producers_find(s, b->producer_id);
    if (!p) return 0; /* KIP-360: forgotten or new, any sequence */
    if (b->producer_epoch < p->epoch) return KL_EFENCED;
    if (b->producer_epoch > p->epoch) return b->base_sequence == 0 ? 0 : KL_ESEQUENCE;
    const int32_t last_seq = seq_add(b->base_sequence, b->last_offset_delta);
    for (int i = 0; i < p->n_batches; i++)
        if (p->batches[i].first_seq == b->base_sequence && p->batches[i].last_seq == last_seq) {
            if (dup) *dup = p->batches[i];
            return KL_EDUPLICATE;
        }
    return in_sequence(last_batch(p)->last_seq, b->base_sequence) ? 0 : KL_ESEQUENCE;
}

/* Index of the producer whose last batch is oldest: the one to evict. */
static int oldest(const replica_producers_t *s)
{
    int o = 0;
    for (int i = 1; i < s->n; i++)
        if (last_batch(&s->p[i])->last_offset < last_batch(&s->p[o])->last_offset) o = i;
    return o;
}

static void remove_at(replica_producers_t *s, int i)
{
    memmove(&s->p[i], &s->p[i + 1], (size_t)(s->n - i - 1) * sizeof *s->p);
    s->n--;
}

/* A slot for a new producer `id`, making room by growing or, at the bound, by
 * evicting the oldest. NULL only on allocation failure (nothing changed). */
static replica_producer_t *insert(replica_producers_t *s, int64_t id)
{
    if (s->n == s->max) {
        remove_at(s, oldest(s));
    } else if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        if (cap > s->max) cap = s->max;
        replica_producer_t *p = realloc(s->p, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        s->p = p;
        s->cap = cap;
    }
    const int at = -search(s, id) - 1;
    memmove(&s->p[at + 1], &s->p[at], (size_t)(s->n - at) * sizeof *s->p);
    s->n++;
    memset(&s->p[at], 0, sizeof s->p[at]);
    s->p[at].id = id;
    return &s->p[at];
}

int replica_producers_record(replica_producers_t *s, const replica_batch_t *b)
{
    if (!well_formed(b) || b->base_offset < 0 || b->base_offset > REPLICA_MAX_OFFSET) return KL_EINVAL;
    if (b->producer_id == REPLICA_NO_PRODUCER_ID) return 0;
    const int i = search(s, b->producer_id);
    replica_producer_t *p = i >= 0 ? &s->p[i] : NULL;
    if (p && b->base_offset <= last_batch(p)->last_offset) return KL_EINVAL;
    if (!p && !(p = insert(s, b->producer_id))) return KL_ENOMEM;
    if (p->n_batches == 0 || p->epoch != b->producer_epoch) { /* new producer or epoch: start afresh */
        p->epoch = b->producer_epoch;
        p->n_batches = 0;
    }
    if (p->n_batches == REPLICA_PRODUCER_BATCHES) {
        memmove(&p->batches[0], &p->batches[1], (REPLICA_PRODUCER_BATCHES - 1) * sizeof p->batches[0]);
        p->n_batches--;
    }
    p->batches[p->n_batches++] = (replica_producer_batch_t){
        .first_seq = b->base_sequence,
        .last_seq = seq_add(b->base_sequence, b->last_offset_delta),
        .first_offset = b->base_offset,
        .last_offset = b->base_offset + b->last_offset_delta,
    };
    return 0;
}

void replica_producers_truncate_start(replica_producers_t *s, int64_t log_start)
{
    int kept = 0;
    for (int i = 0; i < s->n; i++) {
        replica_producer_t *p = &s->p[i];
        int drop = 0;
        while (drop < p->n_batches && p->batches[drop].last_offset < log_start) drop++;
        if (drop == p->n_batches) continue;
        memmove(&p->batches[0], &p->batches[drop], (size_t)(p->n_batches - drop) * sizeof p->batches[0]);
        p->n_batches -= drop;
        if (kept != i) s->p[kept] = *p;
        kept++;
    }
    s->n = kept;
}

bool replica_producers_equal(const replica_producers_t *a, const replica_producers_t *b)
{
    if (a->n != b->n) return false;
    for (int i = 0; i < a->n; i++) {
        const replica_producer_t *x = &a->p[i], *y = &b->p[i];
        if (x->id != y->id || x->epoch != y->epoch || x->n_batches != y->n_batches) return false;
        for (int j = 0; j < x->n_batches; j++)
            if (x->batches[j].first_seq != y->batches[j].first_seq ||
                x->batches[j].last_seq != y->batches[j].last_seq ||
                x->batches[j].first_offset != y->batches[j].first_offset ||
                x->batches[j].last_offset != y->batches[j].last_offset)
                return false;
    }
    return true;
}
