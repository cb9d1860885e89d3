/* test_replica.c — the partition replica core: HW, ISR via AlterPartition, acks, fencing, epochs, leader changes. */

/* Driven by hand with virtual time; each node keeps an in-test log of batch
 * headers so leader and follower cores can be wired together. */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "keel/err.h"
#include "keel/replica.h"
#include "unit/kl_check.h"

#define LAG 1000
#define MAX_LOG 256
#define PID 900

/* ---- harness --------------------------------------------------------------------- */

typedef struct node {
    replica_t *r;
    int32_t id;
    replica_update_t up; /* of the last step */
    int rc;              /* of the last step */
    replica_batch_t log[MAX_LOG];
    int n_log;
    replica_completion_t done[512]; /* every completion seen, in order */
    int n_done;
} node_t;

static replica_config_t config(int32_t id)
{
    replica_config_t c;
    replica_config_defaults(&c);
    c.broker_id = id;
    c.lag_time_max_ms = LAG;
    return c;
}

static void node_init_cfg(node_t *n, const replica_config_t *c)
{
    memset(n, 0, sizeof *n);
    n->id = c->broker_id;
    n->r = replica_new(c, NULL);
    ck_assert_ptr_nonnull(n->r);
}

static void node_init(node_t *n, int32_t id)
{
    const replica_config_t c = config(id);
    node_init_cfg(n, &c);
}

static void node_init_restore(node_t *n, int32_t id, const replica_restore_t *rs)
{
    memset(n, 0, sizeof *n);
    n->id = id;
    const replica_config_t c = config(id);
    n->r = replica_new(&c, rs);
    ck_assert_ptr_nonnull(n->r);
}

static void node_free(node_t *n) { replica_free(n->r); }

/* Steps the core and carries out what the update says to the in-test log. */
static int step(node_t *n, replica_event_t ev)
{
    n->rc = replica_step(n->r, &ev, &n->up);
    const replica_update_t *u = &n->up;
    if (u->reset_to >= 0) n->n_log = 0;
    if (u->truncate_to >= 0)
        while (n->n_log > 0 && n->log[n->n_log - 1].base_offset >= u->truncate_to) n->n_log--;
    for (int i = 0; i < u->n_completions; i++) {
        ck_assert_int_lt(n->n_done, 512);
        n->done[n->n_done++] = u->completions[i];
    }
    return n->rc;
}

static void tick(node_t *n, int64_t now) { ck_assert_int_eq(step(n, (replica_event_t){REPLICA_EV_TICK, now}), 0); }

/* Partition state with ids written as digit strings: replicas "123", ISR "12". */
static int set_state(node_t *n, int64_t now, int32_t leader, int32_t le, int32_t pe, const char *replicas,
                     const char *isr)
{
    replica_partition_state_t s = {.leader = leader, .leader_epoch = le, .partition_epoch = pe};
    for (const char *p = replicas; *p; p++) s.replicas[s.n_replicas++] = *p - '0';
    for (const char *p = isr; *p; p++) s.isr[s.n_isr++] = *p - '0';
    replica_event_t ev = {REPLICA_EV_PARTITION_STATE, now};
    ev.u.state = &s;
    return step(n, ev);
}

static void appended(node_t *n, int64_t now, int64_t end)
{
    replica_event_t ev = {REPLICA_EV_APPENDED, now};
    ev.u.log_end = end;
    ck_assert_int_eq(step(n, ev), 0);
}

/* Produces `count` records; an appended batch goes to the in-test log, and
 * with `write` the service reports it written at once. */
static replica_produce_result_t produce_full(node_t *n, int64_t now, int32_t le, int acks, uint64_t token,
                                            int64_t pid, int16_t pepoch, int32_t seq, int32_t count, bool write)
{
    replica_produce_req_t req = {.leader_epoch = le, .acks = acks, .token = token};
    req.batch = (replica_batch_t){.last_offset_delta = count - 1, .producer_id = pid, .producer_epoch = pepoch,
                                  .base_sequence = seq};
    replica_event_t ev = {REPLICA_EV_PRODUCE, now};
    ev.u.produce = &req;
    ck_assert_int_eq(step(n, ev), 0);
    const replica_produce_result_t res = n->up.produce;
    if (res.append) {
        ck_assert_int_lt(n->n_log, MAX_LOG);
        replica_batch_t b = req.batch;
        b.base_offset = res.base_offset;
        b.leader_epoch = res.leader_epoch;
        n->log[n->n_log++] = b;
        if (write) appended(n, now, res.last_offset + 1);
    }
    return res;
}

static replica_produce_result_t produce(node_t *n, int64_t now, int acks, uint64_t token, int32_t count)
{
    return produce_full(n, now, replica_leader_epoch(n->r), acks, token, REPLICA_NO_PRODUCER_ID, -1, -1, count,
                        true);
}

static replica_fetch_result_t fetch_full(node_t *n, int64_t now, int32_t replica, int32_t le, int64_t offset,
                                         int32_t last_epoch)
{
    replica_fetch_req_t req = {.replica_id = replica, .broker_epoch = 50 + replica, .leader_epoch = le,
                               .fetch_offset = offset, .last_fetched_epoch = last_epoch};
    replica_event_t ev = {REPLICA_EV_FETCH, now};
    ev.u.fetch = &req;
    ck_assert_int_eq(step(n, ev), 0);
    return n->up.fetch;
}

/* A follower fetch at `offset` whose records so far are all in the current epoch. */
static replica_fetch_result_t fetch(node_t *n, int64_t now, int32_t replica, int64_t offset)
{
    const int32_t le = replica_leader_epoch(n->r);
    return fetch_full(n, now, replica, le, offset, offset > 0 ? le : REPLICA_NO_EPOCH);
}

static int alter_result(node_t *n, int64_t now, uint64_t id, int error, int32_t le, int32_t pe, const char *isr)
{
    int32_t ids[REPLICA_MAX_REPLICAS];
    int k = 0;
    for (const char *p = isr; p && *p; p++) ids[k++] = *p - '0';
    replica_event_t ev = {REPLICA_EV_ALTER_RESULT, now};
    ev.u.alter.id = id;
    ev.u.alter.error = error;
    ev.u.alter.leader_epoch = le;
    ev.u.alter.partition_epoch = pe;
    ev.u.alter.isr = ids;
    ev.u.alter.n_isr = k;
    return step(n, ev);
}

/* The ISR of the AlterPartition just sent, as a digit string. */
static const char *alter_isr(const node_t *n)
{
    static char s[REPLICA_MAX_REPLICAS + 1];
    ck_assert(n->up.send_alter);
    int k = 0;
    for (int i = 0; i < n->up.alter.n_isr; i++) s[k++] = (char)('0' + n->up.alter.isr[i]);
    s[k] = 0;
    return s;
}

static bool completed(const node_t *n, uint64_t token, int *error)
{
    for (int i = 0; i < n->n_done; i++)
        if (n->done[i].token == token) {
            if (error) *error = n->done[i].error;
            return true;
        }
    return false;
}

/* Node 1 leads replicas 1,2,3 in leader epoch 1, all in sync. */
static void leader_of_three(node_t *n)
{
    node_init(n, 1);
    ck_assert_int_eq(set_state(n, 0, 1, 1, 1, "123", "123"), 0);
    ck_assert_int_eq(replica_role(n->r), REPLICA_LEADER);
}

/* ---- high watermark --------------------------------------------------------------- */

START_TEST(hw_is_the_minimum_log_end_over_the_isr_leader_included)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 0);
    fetch(&n, 2, 2, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 0); /* 3 has not fetched in this leadership */
    fetch(&n, 3, 3, 4);
    ck_assert_int_eq(replica_high_watermark(n.r), 4);
    ck_assert(n.up.hw_changed);
    ck_assert_int_eq(n.up.fetch.high_watermark, 4); /* the fetch that moved it already carries it */
    fetch(&n, 4, 3, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    produce(&n, 5, 1, 0, 5); /* the leader's own end is part of the minimum */
    fetch(&n, 6, 2, 15);
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    node_free(&n);
}
END_TEST

START_TEST(hw_never_decreases_when_a_follower_fetches_from_an_earlier_offset)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 10);
    fetch(&n, 2, 2, 10);
    fetch(&n, 2, 3, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    fetch(&n, 3, 3, 6); /* e.g. it restarted and lost an unflushed tail */
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    ck_assert(!n.up.hw_changed);
    node_free(&n);
}
END_TEST

START_TEST(hw_ignores_followers_outside_the_isr)
{
    node_t n;
    node_init(&n, 1);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "123", "12"), 0);
    produce(&n, 1, 1, 0, 10);
    fetch(&n, 2, 2, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    node_free(&n);
}
END_TEST

START_TEST(hw_counts_a_follower_proposed_into_the_isr_before_the_change_commits)
{
    node_t n;
    node_init(&n, 1);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "123", "12"), 0);
    produce(&n, 1, 1, 0, 10);
    fetch(&n, 2, 2, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    produce(&n, 3, 1, 0, 10);
    fetch(&n, 4, 3, 10); /* reached the HW: proposed back */
    ck_assert_str_eq(alter_isr(&n), "123");
    fetch(&n, 5, 2, 20);
    /* without 3 the HW would be 20; the controller may commit 3 and elect it */
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    fetch(&n, 6, 3, 20);
    ck_assert_int_eq(replica_high_watermark(n.r), 20);
    node_free(&n);
}
END_TEST

START_TEST(hw_counts_a_follower_proposed_out_of_the_isr_until_the_removal_commits)
{
    node_t n;
    leader_of_three(&n);
    fetch(&n, 1, 3, 0);
    produce(&n, 2, 1, 0, 10);
    fetch(&n, 3, 2, 10);
    tick(&n, 2 + LAG + 1);
    ck_assert_str_eq(alter_isr(&n), "12");
    const uint64_t id = n.up.alter.id;
    fetch(&n, 2 + LAG + 2, 2, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 0); /* 3 still counts */
    ck_assert_int_eq(alter_result(&n, 2 + LAG + 3, id, 0, 1, 2, "12"), 0);
    ck_assert_int_eq(replica_high_watermark(n.r), 10);
    node_free(&n);
}
END_TEST

/* ---- ISR ------------------------------------------------------------------------- */

START_TEST(a_lagging_follower_is_proposed_out_exactly_after_replica_lag_time_max_ms)
{
    node_t n;
    leader_of_three(&n);
    fetch(&n, 100, 2, 0);
    fetch(&n, 100, 3, 0); /* caught up at 100 */
    produce(&n, 200, 1, 0, 5);
    ck_assert_int_eq(replica_next_deadline(n.r), 100 + LAG + 1);
    for (int64_t t = 300; t <= 100 + LAG; t += 100) {
        fetch(&n, t, 2, 5); /* 2 keeps up; 3 is silent */
        ck_assert(!n.up.send_alter);
    }
    tick(&n, 100 + LAG);
    ck_assert(!n.up.send_alter);
    tick(&n, 100 + LAG + 1);
    ck_assert_str_eq(alter_isr(&n), "12");
    ck_assert_int_eq(n.up.alter.leader_epoch, 1);
    ck_assert_int_eq(n.up.alter.partition_epoch, 1);
    node_free(&n);
}
END_TEST

START_TEST(a_follower_holding_all_the_leader_has_stays_in_sync_however_long_ago_it_fetched)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 5);
    fetch(&n, 2, 2, 5);
    fetch(&n, 2, 3, 5);
    ck_assert_int_eq(replica_next_deadline(n.r), REPLICA_NEVER);
    tick(&n, 100 * LAG);
    ck_assert(!n.up.send_alter);
    node_free(&n);
}
END_TEST

START_TEST(a_follower_reaching_the_log_end_of_its_previous_fetch_stays_in_sync_under_steady_produce)
{
    node_t n;
    leader_of_three(&n);
    int64_t prev_end = 0; /* our log end at the followers' previous fetch */
    for (int64_t t = 0; t < 5 * LAG; t += 100) {
        produce(&n, t, 1, 0, 3);
        fetch(&n, t + 1, 2, prev_end); /* always one produce behind the moving end */
        fetch(&n, t + 1, 3, prev_end);
        prev_end = replica_log_end(n.r);
        tick(&n, t + 50);
        ck_assert(!replica_alter_in_flight(n.r));
    }
    node_free(&n);
}
END_TEST

START_TEST(the_leader_applies_an_isr_change_only_once_it_is_committed)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 5);
    tick(&n, LAG + 1); /* both followers silent */
    ck_assert_str_eq(alter_isr(&n), "1");
    int32_t isr[4];
    ck_assert_int_eq(replica_isr(n.r, isr, 4), 3);
    ck_assert(replica_alter_in_flight(n.r));
    ck_assert_int_eq(set_state(&n, LAG + 2, 1, 1, 2, "123", "1"), 0); /* the partition change record */
    ck_assert_int_eq(replica_isr(n.r, isr, 4), 1);
    ck_assert(!replica_alter_in_flight(n.r));
    ck_assert_int_eq(replica_high_watermark(n.r), 5);
    node_free(&n);
}
END_TEST

START_TEST(a_follower_that_caught_up_to_the_hw_is_proposed_back_with_its_broker_epoch)
{
    node_t n;
    node_init(&n, 1);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "123", "12"), 0);
    produce(&n, 1, 1, 0, 10);
    fetch(&n, 2, 2, 10);
    produce(&n, 3, 1, 0, 10); /* HW 10, log end 20 */
    fetch(&n, 4, 3, 9);
    ck_assert(!n.up.send_alter); /* below the HW */
    fetch(&n, 5, 3, 10);
    ck_assert_str_eq(alter_isr(&n), "123");
    ck_assert_int_eq(n.up.alter.isr_broker_epochs[0], -1); /* the leader's own: the service fills it */
    ck_assert_int_eq(n.up.alter.isr_broker_epochs[1], 52);
    ck_assert_int_eq(n.up.alter.isr_broker_epochs[2], 53);
    ck_assert_int_eq(alter_result(&n, 6, n.up.alter.id, 0, 1, 2, "123"), 0);
    ck_assert_int_eq(replica_partition_epoch(n.r), 2);
    int32_t isr[4];
    ck_assert_int_eq(replica_isr(n.r, isr, 4), 3);
    node_free(&n);
}
END_TEST

START_TEST(a_follower_is_not_proposed_back_before_it_reaches_the_start_of_the_leader_epoch)
{
    node_t n;
    /* we become leader with 10 records and a HW of 0; ISR member 2 has not fetched yet */
    const replica_restore_t rs = {.log_start = 0, .log_end = 10, .high_watermark = 0};
    node_init_restore(&n, 1, &rs);
    ck_assert_int_eq(set_state(&n, 0, 1, 3, 5, "123", "12"), 0);
    ck_assert_int_eq(replica_high_watermark(n.r), 0);
    fetch_full(&n, 1, 3, 3, 4, 2); /* at our HW, but its log is only checked from the epoch start (10) */
    ck_assert(!n.up.send_alter);
    fetch_full(&n, 2, 3, 3, 10, 2);
    ck_assert_str_eq(alter_isr(&n), "123");
    node_free(&n);
}
END_TEST

START_TEST(a_replica_fenced_or_shutting_down_is_not_proposed_back)
{
    node_t n;
    node_init(&n, 1);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "123", "12"), 0);
    replica_event_t ev = {REPLICA_EV_ELIGIBILITY, 0};
    ev.u.eligibility.broker_id = 3;
    ev.u.eligibility.eligible = false;
    ck_assert_int_eq(step(&n, ev), 0);
    fetch(&n, 1, 2, 0);
    fetch(&n, 1, 3, 0);
    ck_assert(!n.up.send_alter);
    ev.u.eligibility.eligible = true;
    ck_assert_int_eq(step(&n, ev), 0);
    ck_assert_str_eq(alter_isr(&n), "123");
    node_free(&n);
}
END_TEST

START_TEST(only_one_alter_partition_is_in_flight_at_a_time)
{
    node_t n;
    node_init(&n, 1);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "1234", "123"), 0);
    produce(&n, 1, 1, 0, 5);
    fetch(&n, 1, 2, 5);
    fetch(&n, 1, 4, 5);
    ck_assert_str_eq(alter_isr(&n), "1234"); /* 3 is still within its lag window */
    const uint64_t id = n.up.alter.id;
    tick(&n, LAG + 1); /* now 3 is out of sync too, but the first change is unsettled */
    ck_assert(!n.up.send_alter);
    ck_assert_int_eq(alter_result(&n, LAG + 2, id, 0, 1, 2, "1234"), 0);
    ck_assert_str_eq(alter_isr(&n), "124");
    ck_assert_int_eq(n.up.alter.partition_epoch, 2);
    node_free(&n);
}
END_TEST

START_TEST(a_refused_alter_partition_is_re_evaluated_after_the_backoff)
{
    node_t n;
    node_init(&n, 1);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "123", "12"), 0);
    fetch(&n, 1, 2, 0);
    fetch(&n, 1, 3, 0);
    ck_assert_str_eq(alter_isr(&n), "123");
    ck_assert_int_eq(alter_result(&n, 2, n.up.alter.id, KL_EINVAL, 0, 0, NULL), 0); /* ineligible, applied nothing */
    ck_assert(!replica_alter_in_flight(n.r));
    ck_assert_int_eq(replica_next_deadline(n.r), 2 + 100);
    tick(&n, 101);
    ck_assert(!n.up.send_alter);
    tick(&n, 102);
    ck_assert_str_eq(alter_isr(&n), "123");
    node_free(&n);
}
END_TEST

START_TEST(an_alter_partition_with_an_unknown_outcome_is_resent_unchanged)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 5);
    fetch(&n, 1, 2, 5);
    tick(&n, LAG + 1);
    ck_assert_str_eq(alter_isr(&n), "12");
    const replica_alter_req_t first = n.up.alter;
    ck_assert_int_eq(alter_result(&n, LAG + 2, first.id, KL_ETIMEOUT, 0, 0, NULL), 0);
    ck_assert(replica_alter_in_flight(n.r)); /* it may have committed: still counted */
    tick(&n, LAG + 2 + 99);
    ck_assert(!n.up.send_alter);
    tick(&n, LAG + 2 + 100);
    ck_assert_str_eq(alter_isr(&n), "12");
    ck_assert(n.up.alter.id == first.id);
    ck_assert_int_eq(n.up.alter.partition_epoch, first.partition_epoch);
    node_free(&n);
}
END_TEST

START_TEST(a_stale_alter_partition_waits_for_the_newer_committed_state)
{
    static const int stale[] = {KL_EFENCED, KL_ENOTLEADER, KL_EUNKNOWNPARTITION};
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 5);
    fetch(&n, 1, 2, 5);
    tick(&n, LAG + 1);
    ck_assert_int_eq(alter_result(&n, LAG + 2, n.up.alter.id, stale[_i], 0, 0, NULL), 0);
    ck_assert_int_eq(replica_next_deadline(n.r), REPLICA_NEVER);
    tick(&n, 10 * LAG);
    ck_assert(!n.up.send_alter);
    ck_assert_int_eq(set_state(&n, 10 * LAG, 1, 1, 2, "123", "12"), 0);
    ck_assert(!replica_alter_in_flight(n.r));
    ck_assert(!n.up.send_alter); /* the committed state is what we wanted */
    node_free(&n);
}
END_TEST

START_TEST(an_answer_to_an_alter_partition_no_longer_in_flight_is_ignored)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 5);
    fetch(&n, 1, 2, 5);
    tick(&n, LAG + 1);
    const uint64_t id = n.up.alter.id;
    ck_assert_int_eq(set_state(&n, LAG + 2, 1, 1, 2, "123", "12"), 0);
    ck_assert_int_eq(alter_result(&n, LAG + 3, id, 0, 1, 2, "12"), KL_ESTATE);
    ck_assert_int_eq(alter_result(&n, LAG + 3, id + 7, 0, 1, 3, "1"), KL_ESTATE);
    ck_assert_int_eq(replica_partition_epoch(n.r), 2);
    node_free(&n);
}
END_TEST

/* ---- produce and acks --------------------------------------------------------------- */

START_TEST(produce_assigns_consecutive_offsets_stamped_with_the_leader_epoch)
{
    node_t n;
    leader_of_three(&n);
    replica_produce_result_t a = produce(&n, 1, 1, 0, 3), b = produce(&n, 1, 1, 0, 2);
    ck_assert(a.append && b.append);
    ck_assert_int_eq(a.base_offset, 0);
    ck_assert_int_eq(a.last_offset, 2);
    ck_assert_int_eq(b.base_offset, 3);
    ck_assert_int_eq(b.last_offset, 4);
    ck_assert_int_eq(b.leader_epoch, 1);
    node_free(&n);
}
END_TEST

START_TEST(acks_one_is_answered_once_the_leaders_log_holds_the_batch)
{
    node_t n;
    leader_of_three(&n);
    const replica_produce_result_t p =
        produce_full(&n, 1, 1, 1, 11, REPLICA_NO_PRODUCER_ID, -1, -1, 4, false);
    ck_assert(p.pending);
    ck_assert(!completed(&n, 11, NULL));
    appended(&n, 2, 4);
    int err = -99;
    ck_assert(completed(&n, 11, &err));
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(replica_high_watermark(n.r), 0); /* acks=1 does not wait for followers */
    node_free(&n);
}
END_TEST

START_TEST(acks_all_is_answered_only_when_the_hw_passes_the_batch)
{
    node_t n;
    leader_of_three(&n);
    const replica_produce_result_t p = produce(&n, 1, REPLICA_ACKS_ALL, 21, 5); /* offsets 0..4 */
    ck_assert(p.pending);
    fetch(&n, 2, 2, 5);
    fetch(&n, 2, 3, 4);
    ck_assert_int_eq(replica_high_watermark(n.r), 4);
    ck_assert(!completed(&n, 21, NULL)); /* HW 4 does not cover offset 4 */
    fetch(&n, 3, 3, 5);
    int err = -99;
    ck_assert(completed(&n, 21, &err));
    ck_assert_int_eq(err, 0);
    ck_assert_int_eq(n.n_done, 1);
    node_free(&n);
}
END_TEST

START_TEST(acks_zero_is_never_answered)
{
    node_t n;
    leader_of_three(&n);
    const replica_produce_result_t p = produce(&n, 1, 0, 31, 5);
    ck_assert(p.append && !p.pending && p.error == 0);
    fetch(&n, 2, 2, 5);
    fetch(&n, 2, 3, 5);
    ck_assert_int_eq(n.n_done, 0);
    node_free(&n);
}
END_TEST

START_TEST(acks_all_is_refused_up_front_when_the_isr_is_below_min_insync_replicas)
{
    node_t n;
    replica_config_t c = config(1);
    c.min_insync_replicas = 2;
    node_init_cfg(&n, &c);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "123", "1"), 0);
    const replica_produce_result_t p = produce(&n, 1, REPLICA_ACKS_ALL, 41, 5);
    ck_assert_int_eq(p.error, KL_ENOTENOUGHREPLICAS);
    ck_assert(!p.append && !p.pending);
    ck_assert_int_eq(replica_log_end(n.r), 0);
    ck_assert(produce(&n, 1, 1, 42, 5).append); /* acks=1 is not affected */
    node_free(&n);
}
END_TEST

START_TEST(acks_all_committed_after_the_isr_shrank_below_min_insync_reports_not_enough_replicas)
{
    node_t n;
    replica_config_t c = config(1);
    c.min_insync_replicas = 2;
    node_init_cfg(&n, &c);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "12", "12"), 0);
    ck_assert(produce(&n, 1, REPLICA_ACKS_ALL, 51, 5).pending);
    tick(&n, LAG + 1);
    ck_assert_str_eq(alter_isr(&n), "1");
    ck_assert_int_eq(alter_result(&n, LAG + 2, n.up.alter.id, 0, 1, 2, "1"), 0);
    int err = 0;
    ck_assert(completed(&n, 51, &err)); /* committed, by the leader alone */
    ck_assert_int_eq(err, KL_ENOTENOUGHREPLICAS);
    node_free(&n);
}
END_TEST

START_TEST(waiting_produces_fail_with_not_leader_when_leadership_moves_and_are_never_acknowledged)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, REPLICA_ACKS_ALL, 61, 5);
    produce_full(&n, 1, 1, 1, 62, REPLICA_NO_PRODUCER_ID, -1, -1, 5, false);
    fetch(&n, 2, 2, 5);
    ck_assert_int_eq(set_state(&n, 3, 2, 2, 2, "123", "123"), 0);
    ck_assert_int_eq(replica_role(n.r), REPLICA_FOLLOWER);
    ck_assert(n.up.role_changed);
    int err = 0;
    ck_assert(completed(&n, 61, &err));
    ck_assert_int_eq(err, KL_ENOTLEADER);
    ck_assert(completed(&n, 62, &err));
    ck_assert_int_eq(err, KL_ENOTLEADER);
    ck_assert_int_eq(n.n_done, 2);
    for (int i = 0; i < n.n_done; i++) ck_assert_int_ne(n.done[i].error, 0);
    node_free(&n);
}
END_TEST

START_TEST(waiting_produces_survive_a_new_leader_epoch_that_keeps_us_leader)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, REPLICA_ACKS_ALL, 71, 5);
    ck_assert_int_eq(set_state(&n, 2, 1, 2, 2, "123", "123"), 0);
    ck_assert_int_eq(n.n_done, 0);
    ck_assert_int_eq(replica_epochs_latest(replica_epochs(n.r)), 2);
    fetch_full(&n, 3, 2, 2, 5, 1);
    fetch_full(&n, 3, 3, 2, 5, 1);
    int err = -99;
    ck_assert(completed(&n, 71, &err));
    ck_assert_int_eq(err, 0);
    node_free(&n);
}
END_TEST

START_TEST(stop_fails_every_waiting_produce_with_its_error)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, REPLICA_ACKS_ALL, 81, 5);
    replica_event_t ev = {REPLICA_EV_STOP, 2};
    ev.u.error = KL_EIO;
    ck_assert_int_eq(step(&n, ev), 0);
    int err = 0;
    ck_assert(completed(&n, 81, &err));
    ck_assert_int_eq(err, KL_EIO);
    ck_assert_int_eq(replica_role(n.r), REPLICA_NONE);
    node_free(&n);
}
END_TEST

START_TEST(the_queue_of_waiting_produces_is_bounded)
{
    node_t n;
    replica_config_t c = config(1);
    c.max_pending = 40;
    node_init_cfg(&n, &c);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "12", "12"), 0);
    for (int i = 0; i < 40; i++) ck_assert(produce(&n, 1, REPLICA_ACKS_ALL, (uint64_t)i, 1).pending);
    const replica_produce_result_t p = produce(&n, 1, REPLICA_ACKS_ALL, 40, 1);
    ck_assert_int_eq(p.error, KL_EFULL);
    ck_assert(!p.append);
    ck_assert(produce(&n, 1, 0, 41, 1).append); /* acks=0 waits for nothing */
    fetch(&n, 2, 2, 41);
    ck_assert_int_eq(n.n_done, 40);
    ck_assert(produce(&n, 3, REPLICA_ACKS_ALL, 42, 1).pending);
    node_free(&n);
}
END_TEST

/* ---- idempotence through the leader --------------------------------------------------- */

START_TEST(a_retried_batch_gets_its_original_offsets_and_is_not_appended_again)
{
    node_t n;
    leader_of_three(&n);
    const replica_produce_result_t a = produce_full(&n, 1, 1, REPLICA_ACKS_ALL, 1, PID, 0, 0, 3, true);
    produce_full(&n, 1, 1, 0, 2, PID, 0, 3, 2, true);
    const replica_produce_result_t d = produce_full(&n, 2, 1, REPLICA_ACKS_ALL, 3, PID, 0, 0, 3, true);
    ck_assert(d.duplicate && !d.append);
    ck_assert_int_eq(d.base_offset, a.base_offset);
    ck_assert_int_eq(d.last_offset, a.last_offset);
    ck_assert(d.pending); /* answered like the original: once the HW covers it */
    ck_assert_int_eq(replica_log_end(n.r), 5);
    fetch(&n, 3, 2, 5);
    fetch(&n, 3, 3, 5);
    int err = -99;
    ck_assert(completed(&n, 1, &err) && err == 0);
    ck_assert(completed(&n, 3, &err) && err == 0);
    const replica_produce_result_t late = produce_full(&n, 4, 1, REPLICA_ACKS_ALL, 4, PID, 0, 0, 3, true);
    ck_assert(late.duplicate && !late.pending && late.error == 0); /* already committed: answer now */
    node_free(&n);
}
END_TEST

START_TEST(a_sequence_gap_is_refused_and_a_zombie_producer_epoch_is_fenced)
{
    node_t n;
    leader_of_three(&n);
    ck_assert(produce_full(&n, 1, 1, 1, 1, PID, 2, 0, 3, true).append);
    ck_assert_int_eq(produce_full(&n, 1, 1, 1, 2, PID, 2, 4, 1, true).error, KL_ESEQUENCE);
    ck_assert_int_eq(produce_full(&n, 1, 1, 1, 3, PID, 1, 3, 1, true).error, KL_EFENCED);
    ck_assert_int_eq(replica_log_end(n.r), 3);
    ck_assert(produce_full(&n, 1, 1, 1, 4, PID, 3, 0, 1, true).append); /* an epoch bump restarts at 0 */
    node_free(&n);
}
END_TEST

/* ---- fencing ----------------------------------------------------------------------- */

START_TEST(requests_with_a_stale_leader_epoch_are_fenced_and_with_a_newer_one_unknown)
{
    node_t n;
    node_init(&n, 1);
    ck_assert_int_eq(set_state(&n, 0, 1, 5, 5, "123", "123"), 0);
    ck_assert_int_eq(produce_full(&n, 1, 4, 1, 1, REPLICA_NO_PRODUCER_ID, -1, -1, 1, true).error, KL_EFENCED);
    ck_assert_int_eq(produce_full(&n, 1, 6, 1, 1, REPLICA_NO_PRODUCER_ID, -1, -1, 1, true).error,
                     KL_EUNKNOWNEPOCH);
    ck_assert_int_eq(fetch_full(&n, 1, 2, 4, 0, -1).error, KL_EFENCED);
    ck_assert_int_eq(fetch_full(&n, 1, REPLICA_CONSUMER, 6, 0, -1).error, KL_EUNKNOWNEPOCH);
    ck_assert_int_eq(n.up.fetch.leader_epoch, 5); /* the hint to refresh with */
    ck_assert_int_eq(n.up.fetch.leader_id, 1);
    ck_assert_int_eq(replica_log_end(n.r), 0);
    node_free(&n);
}
END_TEST

START_TEST(a_replica_that_is_not_leader_refuses_produce_and_fetch_as_not_leader)
{
    node_t n;
    node_init(&n, 2);
    ck_assert_int_eq(produce_full(&n, 0, 0, 1, 1, REPLICA_NO_PRODUCER_ID, -1, -1, 1, true).error, KL_ENOTLEADER);
    ck_assert_int_eq(set_state(&n, 0, 1, 1, 1, "123", "123"), 0);
    ck_assert_int_eq(produce_full(&n, 1, 1, 1, 1, REPLICA_NO_PRODUCER_ID, -1, -1, 1, true).error, KL_ENOTLEADER);
    ck_assert_int_eq(fetch_full(&n, 1, REPLICA_CONSUMER, 1, 0, -1).error, KL_ENOTLEADER);
    ck_assert_int_eq(n.up.fetch.leader_id, 1);
    node_free(&n);
}
END_TEST

START_TEST(fetch_offsets_outside_the_log_are_out_of_range)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 10);
    fetch(&n, 2, 2, 10);
    fetch(&n, 2, 3, 10);
    replica_event_t ev = {REPLICA_EV_LOG_START, 3};
    ev.u.log_start = 4;
    ck_assert_int_eq(step(&n, ev), 0);
    ck_assert_int_eq(fetch_full(&n, 4, REPLICA_CONSUMER, 1, 3, -1).error, KL_ERANGE);
    ck_assert_int_eq(n.up.fetch.log_start_offset, 4);
    ck_assert_int_eq(fetch_full(&n, 4, REPLICA_CONSUMER, 1, 11, -1).error, KL_ERANGE);
    ck_assert_int_eq(fetch_full(&n, 4, 2, 1, 11, REPLICA_NO_EPOCH).error, KL_ERANGE);
    ck_assert_int_eq(fetch_full(&n, 4, REPLICA_CONSUMER, 1, 4, -1).error, 0);
    ck_assert_int_eq(fetch_full(&n, 4, REPLICA_CONSUMER, 1, 10, -1).error, 0);
    node_free(&n);
}
END_TEST

START_TEST(a_consumer_reads_only_below_the_hw_and_a_follower_up_to_the_log_end)
{
    node_t n;
    leader_of_three(&n);
    produce(&n, 1, 1, 0, 10);
    fetch(&n, 2, 2, 6);
    fetch(&n, 2, 3, 6);
    ck_assert_int_eq(replica_high_watermark(n.r), 6);
    ck_assert_int_eq(fetch_full(&n, 3, REPLICA_CONSUMER, 1, 2, -1).read_end, 6);
    ck_assert_int_eq(fetch_full(&n, 3, REPLICA_CONSUMER, 1, 8, -1).read_end, 8); /* nothing yet, not an error */
    ck_assert_int_eq(n.up.fetch.error, 0);
    ck_assert_int_eq(fetch(&n, 3, 2, 6).read_end, 10);
    node_free(&n);
}
END_TEST

START_TEST(a_fetch_from_a_broker_that_is_not_a_replica_is_invalid)
{
    node_t n;
    leader_of_three(&n);
    ck_assert_int_eq(fetch(&n, 1, 7, 0).error, KL_EINVAL);
    ck_assert_int_eq(fetch(&n, 1, 1, 0).error, KL_EINVAL); /* nor from ourselves */
    node_free(&n);
}
END_TEST

START_TEST(a_fetch_whose_last_epoch_diverged_learns_the_diverging_epoch_and_end_offset)
{
    node_t n;
    const replica_epoch_entry_t ep[] = {{1, 0}, {3, 10}};
    const replica_restore_t rs = {.log_start = 0, .log_end = 20, .high_watermark = 8, .epochs = ep, .n_epochs = 2};
    node_init_restore(&n, 1, &rs);
    ck_assert_int_eq(set_state(&n, 0, 1, 4, 4, "12", "12"), 0);
    /* the follower wrote epoch 2 (which we never had) up to 15 */
    replica_fetch_result_t f = fetch_full(&n, 1, 2, 4, 15, 2);
    ck_assert_int_eq(f.error, 0);
    ck_assert_int_eq(f.diverging_epoch, 1);
    ck_assert_int_eq(f.diverging_end_offset, 10);
    ck_assert_int_eq(replica_high_watermark(n.r), 8); /* a diverged fetch does not count */
    /* the follower holds epoch 1 past where ours ended */
    f = fetch_full(&n, 1, 2, 4, 12, 1);
    ck_assert_int_eq(f.diverging_epoch, 1);
    ck_assert_int_eq(f.diverging_end_offset, 10);
    /* consistent: epoch 3 up to 20 */
    f = fetch_full(&n, 1, 2, 4, 20, 3);
    ck_assert_int_eq(f.diverging_epoch, REPLICA_NO_EPOCH);
    ck_assert_int_eq(replica_high_watermark(n.r), 20);
    node_free(&n);
}
END_TEST

START_TEST(partition_state_older_than_the_known_one_is_ignored)
{
    node_t n;
    leader_of_three(&n);
    ck_assert_int_eq(set_state(&n, 1, 1, 2, 3, "123", "123"), 0);
    ck_assert_int_eq(set_state(&n, 2, 2, 1, 9, "123", "123"), KL_EFENCED);
    ck_assert_int_eq(set_state(&n, 2, 2, 2, 2, "123", "123"), KL_EFENCED);
    ck_assert_int_eq(set_state(&n, 2, 1, 2, 3, "123", "123"), 0); /* the same again: nothing to do */
    ck_assert_int_eq(replica_role(n.r), REPLICA_LEADER);
    ck_assert_int_eq(set_state(&n, 2, 1, 3, 4, "123", "23"), KL_EINVAL); /* leader outside the ISR */
    ck_assert_int_eq(set_state(&n, 2, 1, 3, 4, "123", "14"), KL_EINVAL); /* ISR outside the replicas */
    ck_assert_int_eq(set_state(&n, 2, 1, 3, 4, "113", "1"), KL_EINVAL);  /* repeated replica */
    node_free(&n);
}
END_TEST

/* ---- leader epochs and the follower --------------------------------------------------- */

START_TEST(becoming_leader_records_the_new_epoch_at_the_log_end)
{
    node_t n;
    const replica_epoch_entry_t ep[] = {{2, 0}};
    const replica_restore_t rs = {.log_start = 0, .log_end = 7, .high_watermark = 7, .epochs = ep, .n_epochs = 1};
    node_init_restore(&n, 1, &rs);
    ck_assert_int_eq(set_state(&n, 0, 1, 5, 5, "12", "12"), 0);
    ck_assert(n.up.epochs_changed);
    const replica_epochs_t *e = replica_epochs(n.r);
    ck_assert_int_eq(e->n, 2);
    ck_assert_int_eq(e->e[1].epoch, 5);
    ck_assert_int_eq(e->e[1].start_offset, 7);
    ck_assert_int_eq(produce(&n, 1, 1, 0, 1).leader_epoch, 5);
    node_free(&n);
}
END_TEST

/* Serves one fetch of follower `f` from leader `l`: the request f builds, l's
 * answer, and the batches of l's in-test log in range. */
static int replicate(node_t *l, node_t *f, int64_t now)
{
    replica_fetch_req_t req;
    ck_assert_int_eq(replica_fetch_request(f->r, &req), 0);
    req.broker_epoch = 50 + f->id;
    replica_event_t ev = {REPLICA_EV_FETCH, now};
    ev.u.fetch = &req;
    ck_assert_int_eq(step(l, ev), 0);
    const replica_fetch_result_t res = l->up.fetch;
    replica_batch_t batches[MAX_LOG];
    int nb = 0;
    for (int i = 0; res.error == 0 && i < l->n_log; i++)
        if (l->log[i].base_offset >= req.fetch_offset && l->log[i].base_offset < res.read_end)
            batches[nb++] = l->log[i];
    const replica_fetch_resp_t resp = {.error = res.error, .leader_epoch = req.leader_epoch,
                                       .fetch_offset = req.fetch_offset, .high_watermark = res.high_watermark,
                                       .log_start_offset = res.log_start_offset, .log_end_offset = res.log_end_offset,
                                       .diverging_epoch = res.diverging_epoch,
                                       .diverging_end_offset = res.diverging_end_offset, .batches = batches,
                                       .n_batches = nb};
    replica_event_t rev = {REPLICA_EV_FETCH_RESPONSE, now};
    rev.u.fetch_resp = &resp;
    const int rc = step(f, rev);
    for (int i = 0; i < f->up.n_append; i++) f->log[f->n_log++] = batches[i];
    if (f->up.rebuild_producers) ck_assert_int_eq(replica_replay(f->r, f->log, f->n_log), 0);
    return rc;
}

static void assert_same_log(const node_t *a, const node_t *b)
{
    ck_assert_int_eq(a->n_log, b->n_log);
    ck_assert_int_eq(replica_log_end(a->r), replica_log_end(b->r));
    for (int i = 0; i < a->n_log; i++) {
        ck_assert_int_eq(a->log[i].base_offset, b->log[i].base_offset);
        ck_assert_int_eq(a->log[i].leader_epoch, b->log[i].leader_epoch);
    }
}

START_TEST(a_follower_appends_fetched_batches_records_their_epochs_and_learns_the_hw)
{
    node_t l, f;
    node_init(&l, 1);
    node_init(&f, 2);
    ck_assert_int_eq(set_state(&l, 0, 1, 3, 3, "12", "12"), 0);
    ck_assert_int_eq(set_state(&f, 0, 1, 3, 3, "12", "12"), 0);
    ck_assert_int_eq(replica_role(f.r), REPLICA_FOLLOWER);
    produce(&l, 1, 1, 0, 4);
    produce(&l, 1, 1, 0, 2);
    ck_assert_int_eq(replicate(&l, &f, 2), 0);
    ck_assert_int_eq(f.up.n_append, 2);
    ck_assert(f.up.epochs_changed);
    ck_assert_int_eq(replica_log_end(f.r), 6);
    ck_assert_int_eq(replica_epochs_epoch_at(replica_epochs(f.r), 5), 3);
    ck_assert_int_eq(replica_high_watermark(f.r), 0); /* the leader learns our end on the next fetch */
    ck_assert_int_eq(replicate(&l, &f, 3), 0);
    ck_assert_int_eq(replica_high_watermark(l.r), 6);
    ck_assert_int_eq(replica_high_watermark(f.r), 6);
    ck_assert(f.up.hw_changed);
    assert_same_log(&l, &f);
    node_free(&l);
    node_free(&f);
}
END_TEST

START_TEST(a_deposed_leader_truncates_its_uncommitted_suffix_to_the_new_leaders_epoch_end)
{
    node_t a, b;
    node_init(&a, 1);
    node_init(&b, 2);
    ck_assert_int_eq(set_state(&a, 0, 1, 1, 1, "12", "12"), 0);
    ck_assert_int_eq(set_state(&b, 0, 1, 1, 1, "12", "12"), 0);
    produce_full(&a, 1, 1, 0, 0, PID, 0, 0, 5, true);
    ck_assert_int_eq(replicate(&a, &b, 2), 0);
    ck_assert_int_eq(replicate(&a, &b, 3), 0); /* both hold 0..4, HW 5 */
    produce_full(&a, 4, 1, 0, 0, PID, 0, 5, 3, true); /* 5..7 never reach b */
    /* b becomes leader in epoch 2 and writes 5..6 */
    ck_assert_int_eq(set_state(&b, 5, 2, 2, 2, "12", "12"), 0);
    ck_assert_int_eq(set_state(&a, 5, 2, 2, 2, "12", "12"), 0);
    produce_full(&b, 6, 2, 0, 0, PID + 1, 0, 0, 2, true);
    ck_assert_int_eq(replica_high_watermark(a.r), 5);
    ck_assert_int_eq(replicate(&b, &a, 7), 0);
    ck_assert_int_eq(a.up.truncate_to, 5); /* min(b's end of epoch 1 = 5, our end of it = 8) */
    ck_assert(a.up.rebuild_producers);
    ck_assert_int_eq(replica_log_end(a.r), 5);
    ck_assert_int_eq(replica_epochs_latest(replica_epochs(a.r)), 1);
    ck_assert_int_eq(replicate(&b, &a, 8), 0);
    assert_same_log(&a, &b);
    ck_assert_int_eq(replica_epochs_latest(replica_epochs(a.r)), 2);
    /* the producer state a rebuilt and extended equals the leader's */
    ck_assert(replica_producers_equal(replica_producers(a.r), replica_producers(b.r)));
    node_free(&a);
    node_free(&b);
}
END_TEST

START_TEST(a_former_leader_that_wrote_nothing_accepts_the_new_leaders_older_epoch_records)
{
    node_t a, b;
    node_init(&a, 1);
    node_init(&b, 2);
    ck_assert_int_eq(set_state(&b, 0, 2, 1, 1, "12", "12"), 0);
    ck_assert_int_eq(set_state(&a, 0, 2, 1, 1, "12", "12"), 0);
    produce(&b, 1, 1, 0, 5);
    ck_assert_int_eq(replicate(&b, &a, 2), 0);
    produce(&b, 3, 1, 0, 5); /* 5..9 in epoch 1 never reach a */
    /* a leads epoch 2 from offset 5 but writes nothing; b, cut off, never hears of it */
    ck_assert_int_eq(set_state(&a, 4, 1, 2, 2, "12", "12"), 0);
    ck_assert_int_eq(replica_epochs_latest(replica_epochs(a.r)), 2);
    ck_assert_int_eq(set_state(&a, 5, 2, 3, 3, "12", "12"), 0);
    ck_assert_int_eq(set_state(&b, 5, 2, 3, 3, "12", "12"), 0);
    /* b's epoch-1 records 5..9 agree with a's log (a has nothing there) */
    ck_assert_int_eq(replicate(&b, &a, 6), 0);
    ck_assert_int_eq(a.up.truncate_to, -1);
    ck_assert_int_eq(a.up.n_append, 1);
    ck_assert_int_eq(replica_epochs(a.r)->n, 1); /* the empty epoch 2 is gone */
    produce(&b, 7, 1, 0, 2);
    ck_assert_int_eq(replicate(&b, &a, 8), 0);
    assert_same_log(&a, &b);
    ck_assert_int_eq(replica_epochs_epoch_at(replica_epochs(a.r), 10), 3);
    node_free(&a);
    node_free(&b);
}
END_TEST

START_TEST(producer_state_survives_a_leader_change_so_a_retry_gets_the_original_offsets)
{
    node_t a, b;
    node_init(&a, 1);
    node_init(&b, 2);
    ck_assert_int_eq(set_state(&a, 0, 1, 1, 1, "12", "12"), 0);
    ck_assert_int_eq(set_state(&b, 0, 1, 1, 1, "12", "12"), 0);
    produce(&a, 1, 1, 0, 3);
    const replica_produce_result_t orig = produce_full(&a, 1, 1, REPLICA_ACKS_ALL, 9, PID, 4, 0, 2, true);
    ck_assert_int_eq(replicate(&a, &b, 2), 0);
    /* a dies before answering; b takes over */
    ck_assert_int_eq(set_state(&b, 3, 2, 2, 2, "12", "2"), 0);
    const replica_produce_result_t retry = produce_full(&b, 4, 2, 1, 10, PID, 4, 0, 2, true);
    ck_assert(retry.duplicate && !retry.append);
    ck_assert_int_eq(retry.base_offset, orig.base_offset);
    ck_assert_int_eq(retry.last_offset, orig.last_offset);
    node_free(&a);
    node_free(&b);
}
END_TEST

START_TEST(a_follower_refuses_to_truncate_below_its_hw)
{
    node_t f;
    const replica_epoch_entry_t ep[] = {{1, 0}};
    const replica_restore_t rs = {.log_start = 0, .log_end = 10, .high_watermark = 8, .epochs = ep, .n_epochs = 1};
    node_init_restore(&f, 2, &rs);
    ck_assert_int_eq(set_state(&f, 0, 1, 2, 2, "12", "12"), 0);
    const replica_fetch_resp_t resp = {.leader_epoch = 2, .fetch_offset = 10, .high_watermark = 8,
                                       .log_end_offset = 12, .diverging_epoch = 1, .diverging_end_offset = 6};
    replica_event_t ev = {REPLICA_EV_FETCH_RESPONSE, 1};
    ev.u.fetch_resp = &resp;
    ck_assert_int_eq(step(&f, ev), KL_ESTATE);
    ck_assert_int_eq(f.up.truncate_to, -1);
    ck_assert_int_gt(f.up.n_notes, 0);
    ck_assert_int_eq(f.up.notes[0].level, 3);
    ck_assert_int_eq(replica_log_end(f.r), 10);
    node_free(&f);
}
END_TEST

START_TEST(a_follower_behind_the_leaders_log_start_restarts_its_log_there)
{
    node_t f;
    const replica_epoch_entry_t ep[] = {{1, 0}};
    const replica_restore_t rs = {.log_start = 0, .log_end = 10, .high_watermark = 10, .epochs = ep, .n_epochs = 1};
    node_init_restore(&f, 2, &rs);
    ck_assert_int_eq(set_state(&f, 0, 1, 2, 2, "12", "12"), 0);
    const replica_fetch_resp_t resp = {.error = KL_ERANGE, .leader_epoch = 2, .fetch_offset = 10,
                                       .high_watermark = 60, .log_start_offset = 50, .log_end_offset = 70};
    replica_event_t ev = {REPLICA_EV_FETCH_RESPONSE, 1};
    ev.u.fetch_resp = &resp;
    ck_assert_int_eq(step(&f, ev), 0);
    ck_assert_int_eq(f.up.reset_to, 50);
    ck_assert_int_eq(replica_log_start(f.r), 50);
    ck_assert_int_eq(replica_log_end(f.r), 50);
    ck_assert_int_eq(replica_epochs(f.r)->n, 0);
    replica_fetch_req_t req;
    ck_assert_int_eq(replica_fetch_request(f.r, &req), 0);
    ck_assert_int_eq(req.fetch_offset, 50);
    ck_assert_int_eq(req.last_fetched_epoch, REPLICA_NO_EPOCH);
    node_free(&f);
}
END_TEST

START_TEST(a_follower_ignores_the_answer_to_a_request_it_no_longer_stands_by)
{
    node_t l, f;
    node_init(&l, 1);
    node_init(&f, 2);
    ck_assert_int_eq(set_state(&l, 0, 1, 1, 1, "12", "12"), 0);
    ck_assert_int_eq(set_state(&f, 0, 1, 1, 1, "12", "12"), 0);
    produce(&l, 1, 1, 0, 3);
    ck_assert_int_eq(replicate(&l, &f, 2), 0);
    const replica_fetch_resp_t old = {.leader_epoch = 1, .fetch_offset = 0, .high_watermark = 3,
                                      .log_end_offset = 3, .diverging_epoch = REPLICA_NO_EPOCH};
    replica_event_t ev = {REPLICA_EV_FETCH_RESPONSE, 3};
    ev.u.fetch_resp = &old;
    ck_assert_int_eq(step(&f, ev), KL_ESTATE);
    const replica_fetch_resp_t other_epoch = {.leader_epoch = 0, .fetch_offset = 3, .high_watermark = 3,
                                              .log_end_offset = 3, .diverging_epoch = REPLICA_NO_EPOCH};
    ev.u.fetch_resp = &other_epoch;
    ck_assert_int_eq(step(&f, ev), KL_ESTATE);
    ck_assert_int_eq(replica_log_end(f.r), 3);
    node_free(&l);
    node_free(&f);
}
END_TEST

START_TEST(a_follower_rejects_batches_that_do_not_extend_its_log)
{
    node_t f;
    node_init(&f, 2);
    ck_assert_int_eq(set_state(&f, 0, 1, 2, 2, "12", "12"), 0);
    const replica_batch_t gap[] = {{.base_offset = 1, .leader_epoch = 2, .producer_id = -1}};
    const replica_batch_t future[] = {{.base_offset = 0, .leader_epoch = 3, .producer_id = -1}};
    const replica_batch_t back[] = {{.base_offset = 0, .leader_epoch = 2, .producer_id = -1},
                                    {.base_offset = 1, .leader_epoch = 1, .producer_id = -1}};
    const replica_batch_t *bad[] = {gap, future, back};
    const int nb[] = {1, 1, 2};
    for (int i = 0; i < 3; i++) {
        const replica_fetch_resp_t resp = {.leader_epoch = 2, .fetch_offset = 0, .high_watermark = 0,
                                           .log_end_offset = 5, .diverging_epoch = REPLICA_NO_EPOCH,
                                           .batches = bad[i], .n_batches = nb[i]};
        replica_event_t ev = {REPLICA_EV_FETCH_RESPONSE, 1};
        ev.u.fetch_resp = &resp;
        ck_assert_int_eq(step(&f, ev), KL_EINVAL);
        ck_assert_int_eq(f.up.n_append, 0);
    }
    ck_assert_int_eq(replica_log_end(f.r), 0);
    node_free(&f);
}
END_TEST

START_TEST(a_follower_follows_the_leaders_log_start_up_to_its_own_hw)
{
    node_t l, f;
    node_init(&l, 1);
    node_init(&f, 2);
    ck_assert_int_eq(set_state(&l, 0, 1, 1, 1, "12", "12"), 0);
    ck_assert_int_eq(set_state(&f, 0, 1, 1, 1, "12", "12"), 0);
    produce(&l, 1, 1, 0, 10);
    ck_assert_int_eq(replicate(&l, &f, 2), 0);
    ck_assert_int_eq(replicate(&l, &f, 3), 0);
    replica_event_t ev = {REPLICA_EV_LOG_START, 4};
    ev.u.log_start = 11;
    ck_assert_int_eq(step(&l, ev), KL_EINVAL); /* never past the HW */
    ev.u.log_start = 6;
    ck_assert_int_eq(step(&l, ev), 0);
    ck_assert(l.up.epochs_changed);
    ck_assert_int_eq(replica_epochs(l.r)->e[0].start_offset, 6);
    ck_assert_int_eq(replicate(&l, &f, 5), 0);
    ck_assert_int_eq(f.up.log_start_to, 6);
    ck_assert_int_eq(replica_log_start(f.r), 6);
    node_free(&l);
    node_free(&f);
}
END_TEST

/* ---- lifecycle ------------------------------------------------------------------------- */

START_TEST(an_inconsistent_restore_or_config_is_refused)
{
    const replica_config_t c = config(1);
    const replica_epoch_entry_t bad[] = {{3, 0}, {2, 5}};
    const replica_restore_t backwards = {.log_start = 5, .log_end = 4};
    const replica_restore_t bad_epochs = {.log_end = 10, .epochs = bad, .n_epochs = 2};
    ck_assert_ptr_null(replica_new(&c, &backwards));
    ck_assert_ptr_null(replica_new(&c, &bad_epochs));
    replica_config_t z = c;
    z.lag_time_max_ms = 0;
    ck_assert_ptr_null(replica_new(&z, NULL));
    z = c;
    z.min_insync_replicas = REPLICA_MAX_REPLICAS + 1;
    ck_assert_ptr_null(replica_new(&z, NULL));
}
END_TEST

START_TEST(a_restore_clamps_the_hw_into_the_log_and_drops_epochs_past_its_end)
{
    const replica_config_t c = config(1);
    const replica_epoch_entry_t ep[] = {{1, 0}, {2, 8}, {4, 12}};
    const replica_restore_t rs = {.log_start = 2, .log_end = 12, .high_watermark = 40, .epochs = ep, .n_epochs = 3};
    replica_t *r = replica_new(&c, &rs);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(replica_high_watermark(r), 12);
    const replica_epochs_t *e = replica_epochs(r);
    ck_assert_int_eq(e->n, 2);
    ck_assert_int_eq(e->e[0].start_offset, 2);
    ck_assert_int_eq(replica_epochs_latest(e), 2);
    replica_free(r);
}
END_TEST

START_TEST(rebuilding_producer_state_from_the_log_equals_the_live_state)
{
    node_t n;
    leader_of_three(&n);
    for (int i = 0; i < 40; i++) {
        const int64_t pid = PID + i % 3;
        const replica_producer_t *p = replica_producers_find(replica_producers(n.r), pid);
        const int32_t seq = p ? p->batches[p->n_batches - 1].last_seq + 1 : 0;
        ck_assert(produce_full(&n, 1, 1, 0, 0, pid, 0, seq, 1 + i % 4, true).append);
        if (i % 7 == 0) produce(&n, 1, 0, 0, 2); /* non-idempotent batches in between */
    }
    const replica_restore_t rs = {.log_start = 0, .log_end = replica_log_end(n.r)};
    const replica_config_t c = config(1);
    replica_t *again = replica_new(&c, &rs);
    ck_assert_ptr_nonnull(again);
    ck_assert_int_eq(replica_replay(again, n.log, n.n_log / 2), 0); /* over several calls */
    ck_assert_int_eq(replica_replay(again, n.log + n.n_log / 2, n.n_log - n.n_log / 2), 0);
    ck_assert(replica_producers_equal(replica_producers(n.r), replica_producers(again)));
    const replica_batch_t outside = {.base_offset = replica_log_end(n.r), .producer_id = PID};
    ck_assert_int_eq(replica_replay(again, &outside, 1), KL_EINVAL);
    replica_free(again);
    node_free(&n);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("replica");
    TCase *hw = tcase_create("high_watermark");
    tcase_add_test(hw, hw_is_the_minimum_log_end_over_the_isr_leader_included);
    tcase_add_test(hw, hw_never_decreases_when_a_follower_fetches_from_an_earlier_offset);
    tcase_add_test(hw, hw_ignores_followers_outside_the_isr);
    tcase_add_test(hw, hw_counts_a_follower_proposed_into_the_isr_before_the_change_commits);
    tcase_add_test(hw, hw_counts_a_follower_proposed_out_of_the_isr_until_the_removal_commits);
    suite_add_tcase(s, hw);
    TCase *isr = tcase_create("isr");
    tcase_add_test(isr, a_lagging_follower_is_proposed_out_exactly_after_replica_lag_time_max_ms);
    tcase_add_test(isr, a_follower_holding_all_the_leader_has_stays_in_sync_however_long_ago_it_fetched);
    tcase_add_test(isr, a_follower_reaching_the_log_end_of_its_previous_fetch_stays_in_sync_under_steady_produce);
    tcase_add_test(isr, the_leader_applies_an_isr_change_only_once_it_is_committed);
    tcase_add_test(isr, a_follower_that_caught_up_to_the_hw_is_proposed_back_with_its_broker_epoch);
    tcase_add_test(isr, a_follower_is_not_proposed_back_before_it_reaches_the_start_of_the_leader_epoch);
    tcase_add_test(isr, a_replica_fenced_or_shutting_down_is_not_proposed_back);
    tcase_add_test(isr, only_one_alter_partition_is_in_flight_at_a_time);
    tcase_add_test(isr, a_refused_alter_partition_is_re_evaluated_after_the_backoff);
    tcase_add_test(isr, an_alter_partition_with_an_unknown_outcome_is_resent_unchanged);
    tcase_add_loop_test(isr, a_stale_alter_partition_waits_for_the_newer_committed_state, 0, 3);
    tcase_add_test(isr, an_answer_to_an_alter_partition_no_longer_in_flight_is_ignored);
    suite_add_tcase(s, isr);
    TCase *acks = tcase_create("produce");
    tcase_add_test(acks, produce_assigns_consecutive_offsets_stamped_with_the_leader_epoch);
    tcase_add_test(acks, acks_one_is_answered_once_the_leaders_log_holds_the_batch);
    tcase_add_test(acks, acks_all_is_answered_only_when_the_hw_passes_the_batch);
    tcase_add_test(acks, acks_zero_is_never_answered);
    tcase_add_test(acks, acks_all_is_refused_up_front_when_the_isr_is_below_min_insync_replicas);
    tcase_add_test(acks, acks_all_committed_after_the_isr_shrank_below_min_insync_reports_not_enough_replicas);
    tcase_add_test(acks, waiting_produces_fail_with_not_leader_when_leadership_moves_and_are_never_acknowledged);
    tcase_add_test(acks, waiting_produces_survive_a_new_leader_epoch_that_keeps_us_leader);
    tcase_add_test(acks, stop_fails_every_waiting_produce_with_its_error);
    tcase_add_test(acks, the_queue_of_waiting_produces_is_bounded);
    tcase_add_test(acks, a_retried_batch_gets_its_original_offsets_and_is_not_appended_again);
    tcase_add_test(acks, a_sequence_gap_is_refused_and_a_zombie_producer_epoch_is_fenced);
    suite_add_tcase(s, acks);
    TCase *fence = tcase_create("fencing");
    tcase_add_test(fence, requests_with_a_stale_leader_epoch_are_fenced_and_with_a_newer_one_unknown);
    tcase_add_test(fence, a_replica_that_is_not_leader_refuses_produce_and_fetch_as_not_leader);
    tcase_add_test(fence, fetch_offsets_outside_the_log_are_out_of_range);
    tcase_add_test(fence, a_consumer_reads_only_below_the_hw_and_a_follower_up_to_the_log_end);
    tcase_add_test(fence, a_fetch_from_a_broker_that_is_not_a_replica_is_invalid);
    tcase_add_test(fence, a_fetch_whose_last_epoch_diverged_learns_the_diverging_epoch_and_end_offset);
    tcase_add_test(fence, partition_state_older_than_the_known_one_is_ignored);
    suite_add_tcase(s, fence);
    TCase *fol = tcase_create("follower");
    tcase_add_test(fol, becoming_leader_records_the_new_epoch_at_the_log_end);
    tcase_add_test(fol, a_follower_appends_fetched_batches_records_their_epochs_and_learns_the_hw);
    tcase_add_test(fol, a_deposed_leader_truncates_its_uncommitted_suffix_to_the_new_leaders_epoch_end);
    tcase_add_test(fol, a_former_leader_that_wrote_nothing_accepts_the_new_leaders_older_epoch_records);
    tcase_add_test(fol, producer_state_survives_a_leader_change_so_a_retry_gets_the_original_offsets);
    tcase_add_test(fol, a_follower_refuses_to_truncate_below_its_hw);
    tcase_add_test(fol, a_follower_behind_the_leaders_log_start_restarts_its_log_there);
    tcase_add_test(fol, a_follower_ignores_the_answer_to_a_request_it_no_longer_stands_by);
    tcase_add_test(fol, a_follower_rejects_batches_that_do_not_extend_its_log);
    tcase_add_test(fol, a_follower_follows_the_leaders_log_start_up_to_its_own_hw);
    suite_add_tcase(s, fol);
    TCase *life = tcase_create("lifecycle");
    tcase_add_test(life, an_inconsistent_restore_or_config_is_refused);
    tcase_add_test(life, a_restore_clamps_the_hw_into_the_log_and_drops_epochs_past_its_end);
    tcase_add_test(life, rebuilding_producer_state_from_the_log_equals_the_live_state);
    suite_add_tcase(s, life);
    return kl_check_run(s);
}
