/* bparts.c — the broker's partition replicas: table, committed state, carrying out the replica core's updates, timers, AlterPartition and housekeeping (DESIGN.md §4). */
#include "bparts.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "bparts_internal.h"
#include "keel/err.h"
#include "keel/log.h"
#include "keel/recbatch.h"

/* An AlterPartition sent through env->send_alter. Its answer is fed to the
 * core from a zero timer, never from inside done: done may run while we are
 * carrying out an update, whose pointers the next step would invalidate. */
struct bpart_alter_ctx {
    bpart_alter_ctx_t *prev, *next;
    bparts_t *bp; /* NULL once bparts_close ran before done: done then only frees */
    struct event *ev;
    bool answered;
    char topic[META_MAX_TOPIC_NAME_LEN + 1];
    int32_t partition;
    uint8_t topic_id[KL_UUID_LEN];
    uint64_t id;
    int err;
    wire_alter_partition_resp_t resp;
};

/* ---- partition table ------------------------------------------------------------------ */

static size_t bucket_of(const char *topic, int32_t partition)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *c = topic; *c; c++) h = (h ^ (uint8_t)*c) * 1099511628211ULL;
    h = (h ^ (uint32_t)partition) * 1099511628211ULL;
    return (size_t)(h & (BPARTS_HASH_BUCKETS - 1));
}

bpart_t *bparts_find(bparts_t *bp, const char *topic, int32_t partition)
{
    for (bpart_t *p = bp->buckets[bucket_of(topic, partition)]; p; p = p->hnext)
        if (p->partition == partition && strcmp(p->topic, topic) == 0) return p;
    return NULL;
}

static void table_insert(bparts_t *bp, bpart_t *p)
{
    bpart_t **b = &bp->buckets[bucket_of(p->topic, p->partition)];
    p->hnext = *b;
    *b = p;
    p->next = bp->all;
    if (bp->all) bp->all->prev = p;
    bp->all = p;
    bp->n_parts++;
}

static void table_remove(bparts_t *bp, bpart_t *p)
{
    for (bpart_t **b = &bp->buckets[bucket_of(p->topic, p->partition)]; *b; b = &(*b)->hnext)
        if (*b == p) {
            *b = p->hnext;
            break;
        }
    if (p->prev) p->prev->next = p->next;
    else bp->all = p->next;
    if (p->next) p->next->prev = p->prev;
    bp->n_parts--;
}

/* ---- answers ---------------------------------------------------------------------------- */

void bparts_reply_error(bparts_t *bp, net_conn_id_t conn, uint32_t api, uint64_t corr, int err, int32_t leader)
{
    wire_msg_t m;
    wire_msg_init(&m, api, true, corr);
    m.error = err;
    snprintf(m.error_message, sizeof m.error_message, "%s", kl_strerror(err));
    if (leader >= 0) {
        m.leader_id = leader;
        int port = 0;
        if (bp->env.broker_addr(bp->env.arg, leader, m.leader_host, sizeof m.leader_host, &port) == 0)
            m.leader_port = port;
        else
            m.leader_host[0] = '\0';
    }
    const int rc = net_reply(bp->env.loop, conn, &m);
    if (rc) KL_DEBUG(BPARTS_LOG, "error answer to %s: %s", net_conn_addr(bp->env.loop, conn), kl_strerror(rc));
}

/* ---- carrying out updates (replica.h "What the service must do, in this order") ---------- */

void bpart_io_failed(bpart_t *p, int rc, const char *what)
{
    if (p->failed) return;
    p->failed = KL_EIO;
    KL_ERROR(BPARTS_LOG, "%s-%d: %s failed: %s; the partition stops here until the broker restarts", p->topic,
             p->partition, what, kl_strerror(rc));
}

static int replay_cb(void *arg, const replica_batch_t *b, int n)
{
    replica_t *r = arg;
    /* The core's log start may be past the files' (a follower moves it with the
     * leader's, DESIGN.md §4); batches below it are not the core's to replay. */
    const int64_t start = replica_log_start(r);
    int i = 0;
    while (i < n && b[i].base_offset < start) i++;
    return replica_replay(r, b + i, n - i);
}

static int replay_log(bpart_t *p) { return partlog_scan_headers(p->log, replay_cb, p->rep); }

/* The leader-epoch cache rebuilt from the batches themselves (KIP-101:
 * Kafka does the same on recovery). A follower appends before it rewrites
 * leader-epoch-checkpoint (replica.h's order), so a crash in between leaves
 * a checkpoint that lacks an epoch the log holds; trusting it would make
 * this replica, once leader, send followers to the wrong divergence point. */
typedef struct epoch_scan {
    replica_epoch_entry_t *e;
    int n, cap;
} epoch_scan_t;

static int epoch_scan_cb(void *arg, const replica_batch_t *b, int n)
{
    epoch_scan_t *s = arg;
    for (int i = 0; i < n; i++) {
        if (s->n > 0 && b[i].leader_epoch <= s->e[s->n - 1].epoch) {
            if (b[i].leader_epoch < s->e[s->n - 1].epoch) return KL_ECORRUPT; /* epochs never go back in a log */
            continue;
        }
        if (b[i].leader_epoch < 0) return KL_ECORRUPT;
        if (s->n == s->cap) {
            if (s->cap >= REPLICA_MAX_EPOCHS) return KL_EFULL;
            const int cap = s->cap ? 2 * s->cap : 16;
            replica_epoch_entry_t *e = realloc(s->e, (size_t)cap * sizeof *e);
            if (!e) return KL_ENOMEM;
            s->e = e;
            s->cap = cap;
        }
        s->e[s->n++] = (replica_epoch_entry_t){b[i].leader_epoch, b[i].base_offset};
    }
    return 0;
}

static void send_alter(bpart_t *p, const replica_alter_req_t *a);

static void log_notes(const bpart_t *p, const replica_update_t *u)
{
    static const kl_log_level_t lv[] = {KL_LOG_DEBUG, KL_LOG_INFO, KL_LOG_WARN, KL_LOG_ERROR};
    for (int i = 0; i < u->n_notes; i++) {
        const int l = u->notes[i].level < 0 ? 0 : u->notes[i].level > 3 ? 3 : u->notes[i].level;
        kl_log_write(lv[l], BPARTS_LOG, "%s-%d: %s", p->topic, p->partition, u->notes[i].text);
    }
}

static void apply(bpart_t *p, const replica_update_t *u, bpart_io_t *io)
{
    const int64_t now = net_now_ms();
    int rc;
    /* 1. reset / truncate (follower divergence, KIP-279) */
    if (!p->failed && u->reset_to >= 0 && (rc = partlog_reset(p->log, u->reset_to)) != 0)
        bpart_io_failed(p, rc, "log reset");
    if (!p->failed && u->truncate_to >= 0 && (rc = partlog_truncate_to(p->log, u->truncate_to)) != 0)
        bpart_io_failed(p, rc, "log truncation");
    /* 2. append: fetched batches (follower) or the produced one (leader) */
    if (!p->failed && u->n_append > 0) {
        KL_ASSERT(io && io->fetched && u->n_append <= io->n_fetched);
        if ((rc = partlog_append(p->log, io->fetched, io->fetched_end[u->n_append - 1], now)) != 0)
            bpart_io_failed(p, rc, "append");
        p->wake = true;
    }
    if (!p->failed && u->produce.append) {
        KL_ASSERT(io && io->batch);
        /* DESIGN.md §5: the leader stamps offsets and its epoch in place (outside the CRC) */
        recbatch_set_base_offset(io->batch, u->produce.base_offset);
        recbatch_set_leader_epoch(io->batch, u->produce.leader_epoch);
        if ((rc = partlog_append(p->log, io->batch, io->batch_len, now)) != 0) bpart_io_failed(p, rc, "append");
        else io->appended = true;
    }
    /* 3. log start (a follower takes the leader's, DESIGN.md §4): whole segments
     * below it go; the rest of the one holding it stays on disk, unserved by
     * the core, and a restart starts at that segment's base. */
    if (!p->failed && u->log_start_to >= 0 && (rc = partlog_delete_before(p->log, u->log_start_to)) != 0)
        bpart_io_failed(p, rc, "log start");
    /* 4. leader-epoch-checkpoint */
    if (!p->failed && u->epochs_changed) {
        const replica_epochs_t *e = replica_epochs(p->rep);
        if ((rc = partlog_write_epochs(p->log, e->e, e->n)) != 0) bpart_io_failed(p, rc, "leader-epoch-checkpoint");
    }
    /* 5. producer state from the log (DESIGN.md §4: it survives truncation) */
    if (!p->failed && u->rebuild_producers && (rc = replay_log(p)) != 0)
        bpart_io_failed(p, rc, "producer-state rebuild");
    /* 6. HW: checkpointed every BPARTS_HW_CHECKPOINT_MS; parked fetches see it now */
    if (u->hw_changed) p->hw_dirty = p->wake = true;
    if (u->role_changed) p->wake = true;
    /* 7. AlterPartition */
    if (u->send_alter) send_alter(p, &u->alter);
    /* 8. answers */
    if (io && io->waiter) {
        const replica_produce_result_t *r = &u->produce;
        if (r->pending) {
            bpart_link_produce(p, io->waiter, io->acks, io->timeout_ms);
            io->waiter = NULL;
        } else if (io->acks != 0) {
            const int err = r->error ? r->error : r->append && !io->appended ? p->failed : 0;
            bpart_answer_produce(p, io->waiter->conn, io->waiter->corr, err, err ? -1 : r->base_offset);
        }
    }
    bpart_complete(p, u->completions, u->n_completions);
}

int bpart_step(bpart_t *p, replica_event_t *ev, bpart_io_t *io, replica_update_t *u)
{
    bparts_t *bp = p->bp;
    KL_ASSERT(p->rep && !bp->stepping); /* replica.h: an update's pointers die with the next step */
    bp->stepping = true;
    ev->now_ms = net_now_ms();
    const int rc = replica_step(p->rep, ev, u);
    log_notes(p, u);
    if (rc == 0) apply(p, u, io);
    bp->stepping = false;
    return rc;
}

static void rearm_tick(bpart_t *p)
{
    const int64_t d = p->rep && !p->failed ? replica_next_deadline(p->rep) : REPLICA_NEVER;
    if (d == REPLICA_NEVER) {
        evtimer_del(p->tick_ev);
        return;
    }
    int64_t delay = d - net_now_ms();
    if (delay < 0) delay = 0;
    struct timeval tv = {.tv_sec = delay / 1000, .tv_usec = (delay % 1000) * 1000};
    evtimer_add(p->tick_ev, &tv);
}

void bpart_finish(bpart_t *p)
{
    replica_update_t u;
    if (p->rep && !p->failed && p->alter_lost) {
        replica_event_t ev = {.type = REPLICA_EV_ALTER_RESULT};
        ev.u.alter.id = p->alter_lost;
        ev.u.alter.error = KL_ENOMEM;
        p->alter_lost = 0;
        bpart_step(p, &ev, NULL, &u);
    }
    if (p->rep && p->failed && !p->stopped) {
        p->stopped = true;
        replica_event_t ev = {.type = REPLICA_EV_STOP, .u.error = p->failed};
        bpart_step(p, &ev, NULL, &u);
        bpart_fail_waiters(p, p->failed);
    }
    for (int pass = 0; p->wake && pass < BPARTS_WAKE_PASSES; pass++) {
        p->wake = false;
        bpart_wake_fetches(p);
    }
    rearm_tick(p);
    bpart_follow(p);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bpart_t *p = arg;
    if (!p->rep || p->failed) return;
    replica_event_t ev = {.type = REPLICA_EV_TICK};
    replica_update_t u;
    bpart_step(p, &ev, NULL, &u);
    bpart_finish(p);
}

/* ---- AlterPartition (DESIGN.md §4, KIP-497) ------------------------------------------------ */

static void alter_unlink_free(bparts_t *bp, bpart_alter_ctx_t *c)
{
    if (bp) {
        if (c->prev) c->prev->next = c->next;
        else bp->alters = c->next;
        if (c->next) c->next->prev = c->prev;
    }
    if (c->ev) event_free(c->ev);
    free(c);
}

static void alter_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bpart_alter_ctx_t *c = arg;
    bparts_t *bp = c->bp;
    bpart_t *p = bparts_find(bp, c->topic, c->partition);
    if (p && p->rep && !p->failed && memcmp(p->topic_id, c->topic_id, KL_UUID_LEN) == 0) {
        replica_event_t ev = {.type = REPLICA_EV_ALTER_RESULT};
        ev.u.alter.id = c->id;
        ev.u.alter.error = c->err;
        if (!c->err) {
            ev.u.alter.leader_epoch = c->resp.leader_epoch;
            ev.u.alter.partition_epoch = c->resp.partition_epoch;
            ev.u.alter.isr = c->resp.isr;
            ev.u.alter.n_isr = c->resp.n_isr;
        }
        replica_update_t u;
        const int rc = bpart_step(p, &ev, NULL, &u);
        if (rc && rc != KL_ESTATE)
            KL_WARN(BPARTS_LOG, "%s-%d: AlterPartition answer refused: %s", p->topic, p->partition, kl_strerror(rc));
        bpart_finish(p);
    }
    alter_unlink_free(bp, c);
}

static void alter_done(void *cb_arg, int err, const wire_alter_partition_resp_t *resp)
{
    bpart_alter_ctx_t *c = cb_arg;
    if (!c->bp) { /* bparts_close came first */
        free(c);
        return;
    }
    KL_ASSERT(!c->answered); /* bparts.h: done runs exactly once */
    c->answered = true;
    c->err = err ? err : resp ? 0 : KL_EPROTO;
    if (!c->err) c->resp = *resp;
    if (c->resp.n_isr < 0 || c->resp.n_isr > META_MAX_REPLICAS) c->err = KL_EPROTO;
    const struct timeval zero = {0, 0};
    evtimer_add(c->ev, &zero);
}

static void send_alter(bpart_t *p, const replica_alter_req_t *a)
{
    bparts_t *bp = p->bp;
    bpart_alter_ctx_t *c = calloc(1, sizeof *c);
    if (c) c->ev = evtimer_new(net_loop_base(bp->env.loop), alter_fire, c);
    if (!c || !c->ev) {
        free(c);
        KL_ERROR(BPARTS_LOG, "%s-%d: no memory for AlterPartition", p->topic, p->partition);
        p->alter_lost = a->id; /* failed at bpart_finish: the core resends after its backoff */
        return;
    }
    c->bp = bp;
    snprintf(c->topic, sizeof c->topic, "%s", p->topic);
    c->partition = p->partition;
    memcpy(c->topic_id, p->topic_id, KL_UUID_LEN);
    c->id = a->id;
    c->next = bp->alters;
    if (bp->alters) bp->alters->prev = c;
    bp->alters = c;

    wire_alter_partition_req_t req = {
        .broker_id = bp->env.broker_id,
        .broker_epoch = bp->env.broker_epoch(bp->env.arg),
        .partition = p->partition,
        .leader_epoch = a->leader_epoch,
        .partition_epoch = a->partition_epoch,
        .n_isr = a->n_isr,
    };
    memcpy(req.topic_id, p->topic_id, KL_UUID_LEN);
    memcpy(req.isr, a->isr, (size_t)a->n_isr * sizeof *a->isr);
    bp->env.send_alter(bp->env.arg, &req, alter_done, c);
}

/* ---- configuration --------------------------------------------------------------------- */

/* The topic's value of topic_key (topic config over cluster config), else the
 * keeld config's cfg_key; clamped into [min, max]. */
static int64_t topic_int(bparts_t *bp, const uint8_t id[KL_UUID_LEN], const char *topic_key, const char *cfg_key,
                         int64_t min, int64_t max)
{
    int64_t v = kl_config_int(bp->env.cfg, cfg_key);
    char s[META_MAX_CONFIG_VALUE_LEN + 1];
    if (bp->env.topic_config && bp->env.topic_config(bp->env.arg, id, topic_key, s, sizeof s) == 0) {
        char *end;
        errno = 0;
        const long long t = strtoll(s, &end, 10);
        if (errno || end == s || *end)
            KL_WARN(BPARTS_LOG, "topic config %s=%s is not a number; using %" PRId64, topic_key, s, v);
        else
            v = t;
    }
    return v < min ? min : v > max ? max : v;
}

static void partlog_cfg(bparts_t *bp, const uint8_t id[KL_UUID_LEN], partlog_config_t *c)
{
    partlog_config_defaults(c);
    c->seg.segment_bytes = (uint32_t)topic_int(bp, id, META_CFG_SEGMENT_BYTES, "log.segment.bytes",
                                               SEGLOG_MIN_SEGMENT_BYTES, SEGLOG_MAX_SEGMENT_BYTES);
    c->seg.index_interval_bytes =
        (uint32_t)topic_int(bp, id, "index.interval.bytes", "log.index.interval.bytes", 1, INT32_MAX);
    c->retention_ms = topic_int(bp, id, META_CFG_RETENTION_MS, "log.retention.ms", -1, INT64_MAX);
    c->retention_bytes = topic_int(bp, id, META_CFG_RETENTION_BYTES, "log.retention.bytes", -1, INT64_MAX);
    c->flush_interval_messages = topic_int(bp, id, "flush.messages", "log.flush.interval.messages", -1, INT64_MAX);
    c->flush_interval_ms = topic_int(bp, id, "flush.ms", "log.flush.interval.ms", -1, INT64_MAX);
}

/* ---- partitions come and go ------------------------------------------------------------------- */

/* p->rep from what p->log holds: config, leader-epoch cache, producer state. */
static int load_replica(bparts_t *bp, bpart_t *p, char *err, size_t errlen)
{
    int rc;
    replica_config_t rc_cfg;
    replica_config_defaults(&rc_cfg);
    rc_cfg.broker_id = bp->env.broker_id;
    rc_cfg.lag_time_max_ms = bp->lag_time_max_ms;
    rc_cfg.min_insync_replicas =
        (int)topic_int(bp, p->topic_id, META_CFG_MIN_INSYNC_REPLICAS, "min.insync.replicas", 1, REPLICA_MAX_REPLICAS);
    p->max_message_bytes =
        topic_int(bp, p->topic_id, META_CFG_MAX_MESSAGE_BYTES, "message.max.bytes", 0, RECBATCH_MAX_BYTES);
    replica_restore_t rs;
    partlog_restore_info(p->log, &rs);
    epoch_scan_t es = {0};
    if ((rc = partlog_scan_headers(p->log, epoch_scan_cb, &es)) != 0) {
        free(es.e);
        snprintf(err, errlen, "rebuilding the leader-epoch cache from the log: %s", kl_strerror(rc));
        return rc;
    }
    /* What the checkpoint says about the records we hold (replica_new drops
     * the rest: a new leader's entry at the log end, entries below the start). */
    int n_ck = 0;
    for (int i = 0; i < rs.n_epochs; i++) n_ck += rs.epochs[i].start_offset < rs.log_end;
    bool stale = es.n != n_ck;
    for (int i = 0; !stale && i < es.n; i++)
        stale = es.e[i].epoch != rs.epochs[i].epoch ||
                (i > 0 ? es.e[i].start_offset != rs.epochs[i].start_offset
                       : (rs.epochs[0].start_offset > rs.log_start ? rs.epochs[0].start_offset : rs.log_start) !=
                             es.e[0].start_offset);
    if (stale) {
        KL_WARN(BPARTS_LOG, "%s-%d: leader-epoch-checkpoint (%d entries) disagrees with the log (%d epochs); "
                "rebuilt from the batches", p->topic, p->partition, rs.n_epochs, es.n);
        rs.epochs = es.e;
        rs.n_epochs = es.n;
    }
    p->rep = replica_new(&rc_cfg, &rs);
    if (p->rep && stale && (rc = partlog_write_epochs(p->log, es.e, es.n)) != 0)
        KL_WARN(BPARTS_LOG, "%s-%d: rewriting leader-epoch-checkpoint: %s (rebuilt again at the next open)",
                p->topic, p->partition, kl_strerror(rc));
    free(es.e);
    if (!p->rep) {
        snprintf(err, errlen, "recovered state is inconsistent (log [%" PRId64 ", %" PRId64 "), HW %" PRId64
                 ", %d epochs)", rs.log_start, rs.log_end, rs.high_watermark, rs.n_epochs);
        return KL_ECORRUPT;
    }
    if ((rc = replay_log(p)) != 0) {
        snprintf(err, errlen, "producer-state replay: %s", kl_strerror(rc));
        return rc;
    }
    return 0;
}

static int open_replica(bparts_t *bp, bpart_t *p, char *err, size_t errlen)
{
    partlog_config_t lc;
    partlog_cfg(bp, p->topic_id, &lc);
    int rc = partlog_open(bp->log_dir, p->topic, p->partition, p->topic_id, &lc, &p->log, err, errlen);
    if (rc == KL_EEXIST) { /* a deleted namesake's directory (partlog.h) */
        KL_WARN(BPARTS_LOG, "%s-%d: directory belongs to an older topic of that name; removing it", p->topic,
                p->partition);
        if ((rc = partlog_remove_dir(bp->log_dir, p->topic, p->partition)) != 0) {
            snprintf(err, errlen, "cannot remove the stale directory: %s", kl_strerror(rc));
            return rc;
        }
        rc = partlog_open(bp->log_dir, p->topic, p->partition, p->topic_id, &lc, &p->log, err, errlen);
    }
    if (rc) return rc;
    if ((rc = load_replica(bp, p, err, errlen)) != 0) return rc;
    KL_INFO(BPARTS_LOG, "%s-%d: opened, log [%" PRId64 ", %" PRId64 "), HW %" PRId64, p->topic, p->partition,
            replica_log_start(p->rep), replica_log_end(p->rep), replica_high_watermark(p->rep));
    return 0;
}

#ifdef KL_INJECT_BUGS
/* debug.inject.bug=truncate-to-hw (issue 4's teeth) breaks KIP-101: a replica
 * that becomes a follower (or follows a new leader epoch, or restarts) cuts its
 * log to its own HW instead of finding where it diverged by leader epoch
 * (KIP-279), losing records the ISR committed above that HW — pre-KIP-101
 * Kafka. As tests/sim/dp_broker.c's bug_truncate_to_hw: the files are cut and
 * the replica is reloaded from them. True when it was: the new core needs the
 * partition state again. A disk error fails p. */
static bool bug_truncate_to_hw(bpart_t *p)
{
    const int64_t hw = replica_high_watermark(p->rep), end = replica_log_end(p->rep);
    if (p->bp->bug != BPARTS_BUG_TRUNCATE_TO_HW || replica_role(p->rep) != REPLICA_FOLLOWER || end <= hw)
        return false;
    KL_WARN(BPARTS_LOG, "%s-%d: debug.inject.bug=truncate-to-hw: cutting log end %" PRId64 " to the HW %" PRId64
            " on becoming follower", p->topic, p->partition, end, hw);
    char err[256] = "";
    int rc = partlog_truncate_to(p->log, hw);
    if (rc == 0) rc = partlog_write_hw(p->log, hw); /* the reloaded core starts at this HW, as the old one was */
    replica_t *old = p->rep;
    p->rep = NULL;
    if (rc == 0 && (rc = load_replica(p->bp, p, err, sizeof err)) == 0) {
        const replica_epochs_t *e = replica_epochs(p->rep); /* without the entries past the cut */
        rc = partlog_write_epochs(p->log, e->e, e->n);
    }
    if (rc == 0) {
        replica_free(old);
        return true;
    }
    replica_free(p->rep); /* the old core stops with p */
    p->rep = old;
    bpart_io_failed(p, rc, err[0] ? err : "truncate-to-hw");
    return false;
}
#endif

static bpart_t *create(bparts_t *bp, const char *topic, const meta_partition_t *mp)
{
    if (!meta_topic_name_valid(topic) || mp->partition < 0) {
        KL_ERROR(BPARTS_LOG, "partition state for invalid name %.*s-%d ignored", META_MAX_TOPIC_NAME_LEN, topic,
                 mp->partition);
        return NULL;
    }
    if (bp->n_parts >= BPARTS_MAX_PARTITIONS) {
        KL_ERROR(BPARTS_LOG, "%s-%d: this broker already holds %d partitions; not opening it", topic, mp->partition,
                 BPARTS_MAX_PARTITIONS);
        return NULL;
    }
    bpart_t *p = calloc(1, sizeof *p);
    if (!p) goto nomem;
    p->bp = bp;
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    memcpy(p->topic_id, mp->topic, KL_UUID_LEN);
    p->partition = mp->partition;
    p->f_leader = p->f_epoch = -1;
    struct event_base *base = net_loop_base(bp->env.loop);
    p->tick_ev = evtimer_new(base, on_tick, p);
    p->backoff_ev = evtimer_new(base, bpart_follow_backoff_cb, p);
    if (!p->tick_ev || !p->backoff_ev) goto nomem;
    char err[256] = "";
    const int rc = open_replica(bp, p, err, sizeof err);
    if (rc) {
        KL_ERROR(BPARTS_LOG, "%s-%d: cannot open the replica: %s (%s); answering KL_EIO", topic, mp->partition,
                 err, kl_strerror(rc));
        replica_free(p->rep);
        p->rep = NULL;
        if (p->log) partlog_close(p->log);
        p->log = NULL;
        p->failed = KL_EIO;
    }
    table_insert(bp, p);
    return p;
nomem:
    KL_ERROR(BPARTS_LOG, "%s-%d: no memory for the replica", topic, mp->partition);
    if (p && p->tick_ev) event_free(p->tick_ev);
    if (p && p->backoff_ev) event_free(p->backoff_ev);
    free(p);
    return NULL;
}

/* Stops p (answering what waits with err) and frees it; its files are deleted
 * (no longer a replica here, DESIGN.md §3) or synced and kept (shutdown). */
static void destroy(bpart_t *p, int err, bool delete_files)
{
    bparts_t *bp = p->bp;
    if (p->rep && !p->failed) {
        replica_event_t ev = {.type = REPLICA_EV_STOP, .u.error = err};
        replica_update_t u;
        bpart_step(p, &ev, NULL, &u);
    }
    bpart_fail_waiters(p, err);
    bpart_follow_stop(p);
    table_remove(bp, p);
    int rc = 0;
    if (delete_files) {
        rc = p->log ? partlog_delete(p->log) : partlog_remove_dir(bp->log_dir, p->topic, p->partition);
        if (rc) KL_ERROR(BPARTS_LOG, "%s-%d: deleting its directory: %s", p->topic, p->partition, kl_strerror(rc));
        else KL_INFO(BPARTS_LOG, "%s-%d: deleted", p->topic, p->partition);
    } else if (p->log) {
        if (!p->failed) {
            if ((rc = partlog_write_hw(p->log, replica_high_watermark(p->rep))) == 0) rc = partlog_sync(p->log);
            if (rc) KL_ERROR(BPARTS_LOG, "%s-%d: final sync: %s", p->topic, p->partition, kl_strerror(rc));
        }
        partlog_close(p->log);
    }
    replica_free(p->rep);
    event_free(p->tick_ev);
    event_free(p->backoff_ev);
    free(p);
}

static bool contains(const int32_t *ids, int n, int32_t id)
{
    for (int i = 0; i < n; i++)
        if (ids[i] == id) return true;
    return false;
}

void bparts_partition_state(bparts_t *bp, const char *topic, const meta_partition_t *mp)
{
    KL_ASSERT(!bp->stepping);
    bpart_t *p = bparts_find(bp, topic, mp->partition);
    if (p && memcmp(p->topic_id, mp->topic, KL_UUID_LEN) != 0) { /* re-created namesake: another topic */
        destroy(p, KL_EUNKNOWNPARTITION, true);
        p = NULL;
    }
    if (!contains(mp->replicas, mp->n_replicas, bp->env.broker_id)) {
        if (p) destroy(p, KL_ENOTLEADER, true);
        return;
    }
    if (p && !p->rep) { /* opening failed earlier: try again with the new state */
        destroy(p, KL_EIO, false);
        p = NULL;
    }
    if (!p && !(p = create(bp, topic, mp))) return;
    if (p->failed) {
        p->state = *mp; /* for the leader hint */
        return;
    }

    replica_partition_state_t st = {.leader = mp->leader,
                                    .leader_epoch = mp->leader_epoch,
                                    .partition_epoch = mp->partition_epoch,
                                    .n_replicas = mp->n_replicas,
                                    .n_isr = mp->n_isr};
    memcpy(st.replicas, mp->replicas, sizeof st.replicas);
    memcpy(st.isr, mp->isr, sizeof st.isr);
    replica_event_t ev = {.type = REPLICA_EV_PARTITION_STATE, .u.state = &st};
    replica_update_t u;
    int rc = bpart_step(p, &ev, NULL, &u);
#ifdef KL_INJECT_BUGS
    if (rc == 0 && u.role_changed && bug_truncate_to_hw(p)) rc = bpart_step(p, &ev, NULL, &u);
#endif
    if (rc == 0) p->state = *mp;
    else if (rc == KL_EFENCED)
        KL_DEBUG(BPARTS_LOG, "%s-%d: older state (leader epoch %d) ignored", topic, mp->partition, mp->leader_epoch);
    else if (rc)
        KL_ERROR(BPARTS_LOG, "%s-%d: committed state refused: %s", topic, mp->partition, kl_strerror(rc));
    /* KIP-841: new followers start eligible; tell the core which are not */
    for (int i = 0; rc == 0 && i < mp->n_replicas && !p->failed; i++) {
        if (!contains(bp->ineligible, bp->n_ineligible, mp->replicas[i])) continue;
        replica_event_t e = {.type = REPLICA_EV_ELIGIBILITY};
        e.u.eligibility.broker_id = mp->replicas[i];
        e.u.eligibility.eligible = false;
        bpart_step(p, &e, NULL, &u);
    }
    bpart_finish(p);
}

void bparts_topic_removed(bparts_t *bp, const uint8_t topic_id[KL_UUID_LEN])
{
    KL_ASSERT(!bp->stepping);
    for (bpart_t *p = bp->all, *next; p; p = next) {
        next = p->next;
        if (memcmp(p->topic_id, topic_id, KL_UUID_LEN) == 0) destroy(p, KL_EUNKNOWNPARTITION, true);
    }
}

void bparts_eligibility(bparts_t *bp, int32_t broker_id, bool eligible)
{
    KL_ASSERT(!bp->stepping);
    const bool was = !contains(bp->ineligible, bp->n_ineligible, broker_id);
    if (was == eligible) return;
    if (eligible) {
        for (int i = 0; i < bp->n_ineligible; i++)
            if (bp->ineligible[i] == broker_id) bp->ineligible[i] = bp->ineligible[--bp->n_ineligible];
    } else {
        if (bp->n_ineligible >= META_MAX_BROKERS) return; /* more brokers than a cluster holds */
        bp->ineligible[bp->n_ineligible++] = broker_id;
    }
    for (bpart_t *p = bp->all; p; p = p->next) {
        if (!p->rep || p->failed || !contains(p->state.replicas, p->state.n_replicas, broker_id)) continue;
        replica_event_t ev = {.type = REPLICA_EV_ELIGIBILITY};
        ev.u.eligibility.broker_id = broker_id;
        ev.u.eligibility.eligible = eligible;
        replica_update_t u;
        bpart_step(p, &ev, NULL, &u);
        bpart_finish(p);
    }
}

/* ---- housekeeping: flush policy, HW checkpoints, retention ------------------------------------ */

static void housekeep_one(bpart_t *p, int64_t now, bool hw, bool retention)
{
    int rc;
    if ((rc = partlog_tick(p->log, now)) != 0) bpart_io_failed(p, rc, "flush");
    if (!p->failed && hw && p->hw_dirty) {
        if ((rc = partlog_write_hw(p->log, replica_high_watermark(p->rep))) != 0)
            bpart_io_failed(p, rc, "high-watermark checkpoint");
        else p->hw_dirty = false;
    }
    if (!p->failed && retention) {
        int64_t start = -1;
        if ((rc = partlog_apply_retention(p->log, net_wall_ms(), replica_high_watermark(p->rep), &start)) != 0) {
            bpart_io_failed(p, rc, "retention");
        } else if (start > replica_log_start(p->rep)) {
            replica_event_t ev = {.type = REPLICA_EV_LOG_START, .u.log_start = start};
            replica_update_t u;
            const int src = bpart_step(p, &ev, NULL, &u);
            if (src) KL_WARN(BPARTS_LOG, "%s-%d: log start %" PRId64 " refused: %s", p->topic, p->partition, start,
                             kl_strerror(src));
            else KL_INFO(BPARTS_LOG, "%s-%d: retention moved the log start to %" PRId64, p->topic, p->partition,
                         start);
        }
    }
    bpart_finish(p);
}

static void arm_housekeep(bparts_t *bp)
{
    const struct timeval tv = {BPARTS_HOUSEKEEP_MS / 1000, (BPARTS_HOUSEKEEP_MS % 1000) * 1000};
    evtimer_add(bp->housekeep_ev, &tv);
}

static void on_housekeep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bparts_t *bp = arg;
    const int64_t now = net_now_ms();
    const bool hw = now >= bp->next_hw_ms, retention = now >= bp->next_retention_ms;
    if (hw) bp->next_hw_ms = now + BPARTS_HW_CHECKPOINT_MS;
    if (retention) bp->next_retention_ms = now + BPARTS_RETENTION_CHECK_MS;
    for (bpart_t *p = bp->all; p; p = p->next)
        if (p->rep && !p->failed) housekeep_one(p, now, hw, retention);
    arm_housekeep(bp);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

#ifdef KL_INJECT_BUGS
/* debug.inject.bug (keeld-bugs only): which planted bug, announced once. */
static int parse_bug(bparts_t *bp, char *err, size_t errlen)
{
    static const char *const name[] = {[BPARTS_BUG_NONE] = "none",
                                       [BPARTS_BUG_ACK_ON_APPEND] = "ack-on-append",
                                       [BPARTS_BUG_TRUNCATE_TO_HW] = "truncate-to-hw"};
    static const char *const does[] = {
        [BPARTS_BUG_ACK_ON_APPEND] = "acknowledges acks=all writes before they are replicated",
        [BPARTS_BUG_TRUNCATE_TO_HW] = "truncates its log to its high watermark on becoming a follower, "
                                      "losing committed writes"};
    const char *v = kl_config_str(bp->env.cfg, "debug.inject.bug");
    if (!v) v = name[BPARTS_BUG_NONE];
    for (size_t i = 0; i < sizeof name / sizeof *name; i++) {
        if (strcmp(v, name[i]) != 0) continue;
        bp->bug = (bparts_bug_t)i;
        if (does[i]) KL_WARN(BPARTS_LOG, "debug.inject.bug=%s: this broker %s (testing only)", v, does[i]);
        return 0;
    }
    snprintf(err, errlen, "debug.inject.bug: unknown bug '%s' (none, ack-on-append, truncate-to-hw)", v);
    return KL_ECONFIG;
}
#endif

int bparts_open(const bparts_env_t *env, bparts_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!env || !env->loop || !env->cfg || !env->log_dir || env->broker_id < 0 || !env->broker_epoch ||
        !env->send_alter || !env->broker_addr) {
        snprintf(err, errlen, "bparts: loop, cfg, log dir, broker id and the broker callbacks are required");
        return KL_EINVAL;
    }
    bparts_t *bp = calloc(1, sizeof *bp);
    if (!bp) goto nomem;
    bp->env = *env;
    if (snprintf(bp->log_dir, sizeof bp->log_dir, "%s", env->log_dir) >= (int)sizeof bp->log_dir) {
        free(bp);
        snprintf(err, errlen, "bparts: log dir path too long");
        return KL_EINVAL;
    }
    bp->env.log_dir = bp->log_dir;
#ifdef KL_INJECT_BUGS
    const int brc = parse_bug(bp, err, errlen);
    if (brc) {
        free(bp);
        return brc;
    }
#endif
    bp->lag_time_max_ms = kl_config_int(env->cfg, "replica.lag.time.max.ms");
    bp->fetch_max_bytes = (int32_t)kl_config_int(env->cfg, "replica.fetch.max.bytes");
    bp->fetch_wait_ms = (int32_t)kl_config_int(env->cfg, "replica.fetch.wait.max.ms");
    bp->fetch_min_bytes = (int32_t)kl_config_int(env->cfg, "replica.fetch.min.bytes");
    kl_buf_init(&bp->rbuf, BPARTS_MAX_FETCH_BYTES + RECBATCH_MAX_BYTES);
    bp->ineligible = calloc(META_MAX_BROKERS, sizeof *bp->ineligible);
    bp->housekeep_ev = evtimer_new(net_loop_base(env->loop), on_housekeep, bp);
    if (!bp->ineligible || !bp->housekeep_ev) goto nomem;
    const int64_t now = net_now_ms();
    bp->next_hw_ms = now + BPARTS_HW_CHECKPOINT_MS;
    bp->next_retention_ms = now + BPARTS_RETENTION_CHECK_MS;
    arm_housekeep(bp);
    *out = bp;
    return 0;
nomem:
    if (bp) {
        if (bp->housekeep_ev) event_free(bp->housekeep_ev);
        free(bp->ineligible);
        free(bp);
    }
    snprintf(err, errlen, "bparts: out of memory");
    return KL_ENOMEM;
}

void bparts_close(bparts_t *bp)
{
    if (!bp) return;
    KL_ASSERT(!bp->stepping);
    bp->closing = true; /* follower callbacks run by the peers' teardown only free */
    while (bp->all) destroy(bp->all, KL_ESHUTDOWN, false);
    bparts_free_peers(bp);
    for (bpart_alter_ctx_t *c = bp->alters, *next; c; c = next) {
        next = c->next;
        event_free(c->ev);
        c->ev = NULL;
        if (c->answered) {
            free(c);
        } else { /* done still owes its call: it frees c then */
            c->bp = NULL;
            c->prev = c->next = NULL;
        }
    }
    event_free(bp->housekeep_ev);
    kl_buf_free(&bp->rbuf);
    free(bp->fb);
    free(bp->fend);
    free(bp->ineligible);
    free(bp);
}

void bparts_on_request(bparts_t *bp, net_conn_id_t conn, wire_msg_t *req)
{
    KL_ASSERT(!bp->stepping);
    switch (req->api) {
    case WIRE_API_PRODUCE: bparts_serve_produce(bp, conn, req); break;
    case WIRE_API_FETCH: bparts_serve_fetch(bp, conn, req); break;
    case WIRE_API_LIST_OFFSETS: bparts_serve_list_offsets(bp, conn, req); break;
    default: bparts_reply_error(bp, conn, req->api, req->correlation_id, KL_EUNKNOWNAPI, -1); break;
    }
    wire_msg_free(req);
}

void bparts_on_conn_closed(bparts_t *bp, net_conn_id_t conn) { bparts_drop_conn(bp, conn); }

int bparts_count(const bparts_t *bp) { return bp->n_parts; }

int bparts_leader_count(const bparts_t *bp)
{
    int n = 0;
    for (const bpart_t *p = bp->all; p; p = p->next)
        if (p->rep && !p->failed && replica_role(p->rep) == REPLICA_LEADER) n++;
    return n;
}

int bparts_partition_info(bparts_t *bp, const char *topic, int32_t partition, bpart_info_t *out)
{
    const bpart_t *p = bparts_find(bp, topic, partition);
    if (!p) return KL_EUNKNOWNPARTITION;
    memset(out, 0, sizeof *out);
    out->failed = p->failed;
    out->leader = p->state.leader;
    out->latest_epoch = REPLICA_NO_EPOCH;
    if (!p->rep) return 0;
    out->role = p->failed ? REPLICA_NONE : replica_role(p->rep);
    out->leader = replica_leader(p->rep);
    out->leader_epoch = replica_leader_epoch(p->rep);
    out->partition_epoch = replica_partition_epoch(p->rep);
    out->log_start = replica_log_start(p->rep);
    out->log_end = replica_log_end(p->rep);
    out->high_watermark = replica_high_watermark(p->rep);
    out->latest_epoch = replica_epochs_latest(replica_epochs(p->rep));
    out->n_isr = replica_isr(p->rep, out->isr, REPLICA_MAX_REPLICAS);
    return 0;
}
