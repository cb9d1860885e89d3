/* replica_producers.h — idempotent producer state of one partition (DESIGN.md §4, KIP-98; KIP-360 for forgotten producers): verdicts for new batches and replay from the log. */
#ifndef KEEL_REPLICA_PRODUCERS_H
#define KEEL_REPLICA_PRODUCERS_H

#include <stdbool.h>
#include <stdint.h>

#define REPLICA_NO_PRODUCER_ID (-1)
/* Batches remembered per producer. An idempotent Kafka producer keeps at most
 * 5 requests in flight (max.in.flight.requests.per.connection <= 5), so any
 * retry it can send is one of its last 5 batches: remembering 5 recognises
 * every duplicate (Kafka's NUM_BATCHES_TO_RETAIN). */
#define REPLICA_PRODUCER_BATCHES 5
#define REPLICA_MAX_PRODUCERS (1 << 20) /* hard bound on replica_config_t.max_producers */
#define REPLICA_MAX_OFFSET (INT64_MAX / 4) /* offsets beyond this are malformed input, so sums never overflow */

/* The RecordBatch v2 header fields the replica core reads (recbatch.h has
 * them all; the core sits below wire/, so the service copies these). */
typedef struct replica_batch {
    int64_t base_offset;       /* ignored in a produce: the leader assigns it */
    int32_t last_offset_delta; /* records - 1 (>= 0) */
    int32_t leader_epoch;      /* partitionLeaderEpoch; ignored in a produce: the leader stamps its own */
    int64_t producer_id;       /* REPLICA_NO_PRODUCER_ID: not idempotent, never checked */
    int16_t producer_epoch;
    int32_t base_sequence;
} replica_batch_t;

/* What is remembered of one appended batch: its sequence range and offsets,
 * so a retry gets the original answer back. */
typedef struct replica_producer_batch {
    int32_t first_seq, last_seq; /* last = first + last_offset_delta, wrapping past INT32_MAX to 0 */
    int64_t first_offset, last_offset;
} replica_producer_batch_t;

typedef struct replica_producer {
    int64_t id;
    int16_t epoch;
    replica_producer_batch_t batches[REPLICA_PRODUCER_BATCHES]; /* oldest first */
    int n_batches;                                              /* >= 1 */
} replica_producer_t;

/* Sorted by id. Bounded by `max`: a new producer beyond it evicts the one
 * whose last batch is oldest in the log. Age is the log offset, not a clock,
 * so replaying the same batches evicts the same producers. */
typedef struct replica_producers {
    replica_producer_t *p;
    int n, cap, max;
} replica_producers_t;

/* max in [1, REPLICA_MAX_PRODUCERS] (clamped). */
void replica_producers_init(replica_producers_t *s, int max);
void replica_producers_free(replica_producers_t *s);
void replica_producers_clear(replica_producers_t *s);

/* Verdict for a batch a client wants appended (Kafka's ProducerAppendInfo):
 *   0               append it (also: no producer id; or a producer we do not
 *                   know, which may have been evicted or deleted with old log
 *                   segments, so any sequence is taken — KIP-360);
 *   KL_EDUPLICATE   same epoch and the exact sequence range of a remembered
 *                   batch: a retry; *dup gets the original offsets, so the
 *                   client gets the same answer and nothing is appended twice;
 *   KL_EFENCED      producer epoch older than the one we know (a zombie);
 *   KL_ESEQUENCE    same epoch but the first sequence is not last + 1 (a gap
 *                   or an unremembered old batch), or a newer epoch not
 *                   starting at sequence 0 (an epoch bump restarts at 0);
 *   KL_EINVAL       malformed fields (negative epoch, sequence or delta, id < -1). */
int replica_producers_check(const replica_producers_t *s, const replica_batch_t *b, replica_producer_batch_t *dup);

/* Remembers an appended batch (its base_offset is final). The same call
 * serves the leader after a 0 verdict, a follower appending fetched batches,
 * and a rebuild that replays the log's batch headers in offset order: so the
 * state survives a leader change (DESIGN.md §4). It does not judge sequences
 * (the leader did when it appended): a different epoch starts the producer
 * afresh. KL_EINVAL for malformed fields or a batch not after the producer's
 * last one; KL_ENOMEM. Either way nothing changes. No producer id: 0. */
int replica_producers_record(replica_producers_t *s, const replica_batch_t *b);

/* Retention moved the log start: batches wholly below it are forgotten, and
 * producers left without batches, as a rebuild from the new start would. */
void replica_producers_truncate_start(replica_producers_t *s, int64_t log_start);

const replica_producer_t *replica_producers_find(const replica_producers_t *s, int64_t producer_id);
/* Iteration in id order, i in [0, n): for snapshots and checks. */
const replica_producer_t *replica_producers_at(const replica_producers_t *s, int i);
/* Same producers, epochs and remembered batches (a rebuild check). */
bool replica_producers_equal(const replica_producers_t *a, const replica_producers_t *b);

#endif
