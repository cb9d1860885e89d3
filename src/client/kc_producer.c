/* kc_producer.c — batching producer: RecordBatch v2 accumulators, partitioners, acks, ordered idempotent retries. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "keel/err.h"
#include "keel/log.h"
#include "keel/recbatch.h"
#include "keel/rng.h"

#include "kc_internal.h"

/* Producer fields of the batch header (recbatch.h layout): inside the CRC,
 * so they are written once, when the batch is first sent, before it is
 * finished; every retry then resends the very same bytes (KIP-98). */
#define KC_OFF_PRODUCER_ID 43
#define KC_OFF_PRODUCER_EPOCH 51
#define KC_OFF_BASE_SEQUENCE 53
#define KC_RECORD_OVERHEAD 32 /* a record's framing beyond key and value: length, attributes, deltas, counts */
#define KC_SEQ_MASK 0x7fffffffu /* sequences wrap past INT32_MAX to 0, as Kafka's do */

typedef enum batch_state {
    B_OPEN,     /* the partition's accumulator: takes records */
    B_READY,    /* closed: waiting to be sent (first time or again) */
    B_INFLIGHT, /* a produce request is out */
    B_DONE      /* acknowledged or failed for good; reported once it reaches the head */
} batch_state_t;

typedef struct kc_report {
    kc_delivery_cb cb;
    void *opaque;
} kc_report_t;

typedef struct kc_ppart kc_ppart_t;

typedef struct kc_batch {
    struct kc_batch *next;
    kc_ppart_t *pp;
    batch_state_t state;
    kl_buf_t buf; /* exactly one batch */
    recbatch_builder_t rb;
    kc_report_t *reports; /* one per record, in offset order */
    int n, cap;
    int64_t bytes; /* charged to buffer.memory */
    int64_t created_ms;
    int64_t retry_at;
    bool finished; /* CRC written: the bytes are frozen */
    int64_t pid;
    int16_t pepoch;
    int32_t base_seq; /* RECBATCH_NO_SEQUENCE until first sent */
    int err;          /* B_DONE: the result; else the last retriable failure */
    char *errmsg;     /* B_DONE with err: the text kc_last_error gives with its report */
    int64_t base_offset;
    kc_req_t *req;
    int32_t sent_epoch; /* leader epoch the request in flight was sent for */
} kc_batch_t;

typedef struct kc_ptopic kc_ptopic_t;

/* One partition's queue, oldest first: acknowledged/failed batches wait at
 * the head until everything before them is reported (order per partition). */
struct kc_ppart {
    kc_ptopic_t *pt;
    int32_t partition;
    kc_batch_t *head, *tail;
    int n_inflight;
    uint64_t wait_md; /* send only after this metadata refresh: the leader we knew was stale */
    /* Idempotence state of this partition (KIP-98): the broker tracks
     * (producer id, epoch, sequence) per partition, so each partition may
     * move to a new epoch on its own after a sequence gap. */
    int64_t pid;
    int16_t pepoch;
    int32_t next_seq;
    char errmsg[KC_ERR_LEN]; /* the last failed request's text */
};

struct kc_ptopic {
    kc_topic_t *t;
    kc_ppart_t **parts; /* by partition number, created on first use */
    int n_parts;
    int32_t sticky; /* KIP-480 sticky partition for keyless records; -1: pick anew */
};

struct kc_producer {
    kc_child_t child; /* first: the client hands it back */
    kc_client_t *c;
    kc_producer_config_t cfg;
    kc_ptopic_t **topics;
    int n_topics;
    struct event *pump_ev;  /* activated whenever something changed */
    struct event *timer_ev; /* the next linger, backoff or expiry */
    int64_t buffered;       /* bytes of unreported batches */
    int64_t outstanding;    /* records queued or in flight */
    int flushing;
    int64_t pid; /* from INIT_PRODUCER_ID; -1 until then */
    int16_t pepoch;
    kc_req_t *pid_req;
    int64_t pid_retry_at;
    int pid_err;
    char pid_errmsg[KC_ERR_LEN];
    kl_rng_t rng;
};

void kc_producer_config_defaults(kc_producer_config_t *cfg)
{
    *cfg = (kc_producer_config_t){.acks = -1,
                                  .idempotent = true,
                                  .linger_ms = 5,
                                  .batch_bytes = KC_DEFAULT_BATCH_BYTES,
                                  .max_in_flight = KC_MAX_IN_FLIGHT,
                                  .delivery_timeout_ms = 120000,
                                  .buffer_bytes = KC_DEFAULT_BUFFER_BYTES};
}

static void pump_soon(kc_producer_t *p) { event_active(p->pump_ev, EV_TIMEOUT, 0); }

static void child_wake(kc_child_t *ch) { pump_soon((kc_producer_t *)ch); }
static void child_destroy(kc_child_t *ch) { kc_producer_free((kc_producer_t *)ch); }

/* ---- batches -------------------------------------------------------------------- */

static void batch_free(kc_batch_t *b)
{
    kc_req_cancel(b->req);
    kl_buf_free(&b->buf);
    free(b->reports);
    free(b->errmsg);
    free(b);
}

/* room: batch.size, reserved at once so that filling the batch does not
 * realloc (and copy) it at every doubling. */
static kc_batch_t *batch_new(kc_ppart_t *pp, int64_t ts, size_t room)
{
    kc_batch_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->pp = pp;
    b->created_ms = net_now_ms();
    b->pid = RECBATCH_NO_PRODUCER_ID;
    b->pepoch = RECBATCH_NO_PRODUCER_EPOCH;
    b->base_seq = RECBATCH_NO_SEQUENCE;
    b->base_offset = -1;
    kl_buf_init(&b->buf, 0);
    if (kl_buf_reserve(&b->buf, room) != 0) {
        batch_free(b);
        return NULL;
    }
    recbatch_meta_t m = recbatch_meta(0, -1, 0);
    m.base_timestamp = ts;
    if (recbatch_begin(&b->rb, &b->buf, &m) != 0) {
        batch_free(b);
        return NULL;
    }
    b->bytes = (int64_t)b->buf.len;
    return b;
}

static void seal(kc_batch_t *b)
{
    b->state = B_READY;
    /* KIP-480: keyless records stick to a partition until its batch closes. */
    if (b->pp->pt->sticky == b->pp->partition) b->pp->pt->sticky = -1;
}

static void batch_done(kc_batch_t *b, int err, const char *msg)
{
    b->state = B_DONE;
    b->err = err;
    free(b->errmsg);
    b->errmsg = err ? strdup(msg) : NULL;
}

/* Sequenced batches after `from` can no longer be appended in order (a gap
 * precedes them): they fail, and the partition starts a new producer epoch
 * at sequence 0, which the leader accepts (KIP-360's bump, done locally). */
static void ppart_reset(kc_producer_t *p, kc_ppart_t *pp, kc_batch_t *from)
{
    char msg[KC_ERR_LEN];
    snprintf(msg, sizeof msg, "%s-%" PRId32 ": an earlier batch failed for good (%s); this one cannot follow it",
             pp->pt->t->name, pp->partition, kl_strerror(from->err));
    for (kc_batch_t *x = from->next; x; x = x->next)
        if (x->state == B_READY && x->base_seq != RECBATCH_NO_SEQUENCE) batch_done(x, KL_ESEQUENCE, msg);
    if (pp->pepoch < INT16_MAX) {
        pp->pepoch++;
    } else { /* epochs used up: take a fresh producer id */
        if (p->pid == pp->pid) p->pid = -1;
        pp->pid = -1;
    }
    pp->next_seq = 0;
}

static void batch_fail(kc_producer_t *p, kc_ppart_t *pp, kc_batch_t *b, int err, const char *msg)
{
    batch_done(b, err, msg);
    if (b->base_seq != RECBATCH_NO_SEQUENCE && b->pid == pp->pid && b->pepoch == pp->pepoch) ppart_reset(p, pp, b);
}

/* Freezes the batch for sending: producer id, epoch and sequence (assigned
 * now, in send order), then the CRC. false while the producer id is unknown. */
static bool batch_prepare(kc_producer_t *p, kc_ppart_t *pp, kc_batch_t *b, bool *need_pid)
{
    if (b->finished) return true;
    if (p->cfg.idempotent) {
        if (pp->pid < 0) {
            if (p->pid < 0) {
                *need_pid = true;
                return false;
            }
            pp->pid = p->pid;
            pp->pepoch = p->pepoch;
            pp->next_seq = 0;
        }
        b->pid = pp->pid;
        b->pepoch = pp->pepoch;
        b->base_seq = pp->next_seq;
        pp->next_seq = (int32_t)(((uint32_t)pp->next_seq + (uint32_t)b->n) & KC_SEQ_MASK);
        kl_put_be64(b->buf.data + KC_OFF_PRODUCER_ID, (uint64_t)b->pid);
        kl_put_be16(b->buf.data + KC_OFF_PRODUCER_EPOCH, (uint16_t)b->pepoch);
        kl_put_be32(b->buf.data + KC_OFF_BASE_SEQUENCE, (uint32_t)b->base_seq);
    }
    KL_ASSERT(recbatch_finish(&b->rb) == 0); /* a queued batch holds at least one record */
    b->finished = true;
    return true;
}

/* ---- sending ------------------------------------------------------------------------ */

static bool earlier_unacked(const kc_ppart_t *pp, const kc_batch_t *b)
{
    for (const kc_batch_t *x = pp->head; x && x != b; x = x->next)
        if (x->state != B_DONE || x->err != 0) return true;
    return false;
}

static void produce_done(kc_req_t *r, int err, wire_msg_t *resp)
{
    kc_producer_t *p = r->owner;
    kc_batch_t *b = r->item;
    kc_ppart_t *pp = b->pp;
    kc_client_t *c = p->c;
    b->req = NULL;
    pp->n_inflight--;
    int e = err ? err : resp->error;
    if (p->cfg.acks == 0 && err == KL_ETIMEOUT) e = 0; /* acks=0: written is delivered; no answer comes */
    if (e == 0 || e == KL_EDUPLICATE) {
        /* A duplicate is a retry of a batch the leader already has: success
         * (the leader answers with the original offsets when it can). */
        batch_done(b, 0, NULL);
        b->base_offset = p->cfg.acks == 0 || e != 0 ? -1 : resp->body.produce_resp.base_offset;
    } else {
        char what[META_MAX_TOPIC_NAME_LEN + 48];
        snprintf(what, sizeof what, "produce to %s-%" PRId32, pp->pt->t->name, pp->partition);
        kc_req_errmsg(c, r->ep, what, e, err ? NULL : resp, c->cfg.request_timeout_ms, pp->errmsg, sizeof pp->errmsg);
        /* A batch from before a sequence reset cannot be retried in order any more. */
        bool stale_seq = b->base_seq != RECBATCH_NO_SEQUENCE && (b->pid != pp->pid || b->pepoch != pp->pepoch);
        /* KL_ESEQUENCE behind an unacknowledged batch is that batch's gap: resend
         * in order once it went again. At the head it is a real gap: fatal. */
        bool retry = !stale_seq && (kc_retriable(e) || (err == KL_EFULL) ||
                                    (e == KL_ESEQUENCE && earlier_unacked(pp, b)));
        if (retry) {
            b->state = B_READY;
            b->err = e;
            b->retry_at = net_now_ms() + c->cfg.retry_backoff_ms;
            if (kc_stale_leader(e)) pp->wait_md = kc_md_refresh(c);
            KL_DEBUG(KC_LOG, "%s; retrying", pp->errmsg);
        } else {
            batch_fail(p, pp, b, e, pp->errmsg);
        }
    }
    wire_msg_free(resp);
    pump_soon(p);
}

static int batch_send(kc_producer_t *p, kc_ppart_t *pp, kc_batch_t *b, kc_endpoint_t *ep, int32_t epoch)
{
    kc_client_t *c = p->c;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_PRODUCE, false, 0);
    snprintf(m.body.produce.topic, sizeof m.body.produce.topic, "%s", pp->pt->t->name);
    m.body.produce.partition = pp->partition;
    m.body.produce.acks = p->cfg.acks;
    m.body.produce.timeout_ms = c->cfg.request_timeout_ms;
    m.body.produce.leader_epoch = epoch;
    m.payload = b->buf.data;
    m.payload_len = b->buf.len;
    /* acks=0 has no answer: the shortest timer completes it once written. */
    int tmo = p->cfg.acks == 0 ? 1 : c->cfg.request_timeout_ms + KC_NET_GRACE_MS;
    int rc = kc_send(c, ep, &m, tmo, produce_done, p, b, &b->req);
    if (rc != 0) return rc;
    b->sent_epoch = epoch;
    b->state = B_INFLIGHT;
    pp->n_inflight++;
    return 0;
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* A leader that stopped answering (paused, cut off) would hold the batches
 * in flight until request.timeout.ms. Once one of them is stuck, ask for
 * metadata (from another broker, kc_any_endpoint); when it names a newer
 * leader epoch, give up the requests sent for older epochs and resend those
 * batches, byte for byte and in order, to the new leader: if the old leader
 * had committed one, the new leader knows it as a duplicate (KIP-98). */
static void abandon_stuck(kc_producer_t *p, kc_ppart_t *pp, int64_t now, int64_t *next)
{
    kc_client_t *c = p->c;
    bool stuck = false;
    for (kc_batch_t *b = pp->head; b; b = b->next)
        if (b->state == B_INFLIGHT && b->req) {
            if (now - b->req->sent_ms >= KC_STUCK_MS) stuck = true;
            else *next = min64(*next, b->req->sent_ms + KC_STUCK_MS);
        }
    if (!stuck || p->cfg.acks == 0) return;
    int32_t epoch = WIRE_NO_EPOCH;
    if (!kc_leader(c, pp->pt->t, pp->partition, &epoch)) return;
    bool moved = false;
    for (kc_batch_t *b = pp->head; b; b = b->next) {
        if (b->state != B_INFLIGHT || !b->req || b->sent_epoch >= epoch) continue;
        kc_req_cancel(b->req);
        b->req = NULL;
        pp->n_inflight--;
        b->state = B_READY;
        b->err = KL_ENOTLEADER;
        b->retry_at = now;
        moved = true;
    }
    if (moved) {
        snprintf(pp->errmsg, sizeof pp->errmsg,
                 "produce to %s-%" PRId32 ": the leader stopped answering; leader epoch %" PRId32 " is elsewhere",
                 pp->pt->t->name, pp->partition, epoch);
        KL_DEBUG(KC_LOG, "%s; resending", pp->errmsg);
    } else {
        kc_md_refresh(c); /* at most one per retry.backoff.ms */
        *next = min64(*next, now + c->cfg.retry_backoff_ms);
    }
}

/* Linger, expiry, sends in order, then the reports the head allows. */
static void ppart_service(kc_producer_t *p, kc_ppart_t *pp, int64_t now, int64_t *next, bool *need_pid)
{
    kc_client_t *c = p->c;
    kc_batch_t *open = pp->tail;
    if (open && open->state == B_OPEN) {
        int64_t due = open->created_ms + p->cfg.linger_ms;
        if (p->flushing || now >= due) seal(open);
        else *next = min64(*next, due);
    }
    /* Batches queue in creation order, so the first ready one that has not
     * expired ends the scan: a pump costs O(in flight), not O(queued), which
     * matters with thousands of batches in buffer.memory. */
    for (kc_batch_t *b = pp->head; b; b = b->next) {
        if (b->state != B_READY) continue;
        int64_t expiry = b->created_ms + p->cfg.delivery_timeout_ms;
        if (now < expiry) {
            *next = min64(*next, expiry);
            break;
        }
        int e = b->err ? b->err
                : pp->pt->t->state == KC_TOPIC_ABSENT ? KL_EUNKNOWNPARTITION
                : p->pid_err && b->base_seq == RECBATCH_NO_SEQUENCE && p->cfg.idempotent ? p->pid_err
                : KL_ETIMEOUT;
        char msg[2 * KC_ERR_LEN];
        snprintf(msg, sizeof msg, "delivery to %s-%" PRId32 " timed out after %" PRId64 " ms; last error: %s",
                 pp->pt->t->name, pp->partition, p->cfg.delivery_timeout_ms,
                 b->err ? pp->errmsg : e == p->pid_err ? p->pid_errmsg : "no leader to send to");
        batch_fail(p, pp, b, e, msg);
    }
    abandon_stuck(p, pp, now, next);
    if (!pp->wait_md || kc_md_has(c, pp->wait_md)) {
        pp->wait_md = 0;
        int32_t epoch = WIRE_NO_EPOCH;
        kc_endpoint_t *ep = kc_leader(c, pp->pt->t, pp->partition, &epoch);
        /* Strict order: a batch goes only when everything before it is out or done. */
        for (kc_batch_t *b = pp->head; b && ep; b = b->next) {
            if (b->state == B_INFLIGHT || b->state == B_DONE) continue;
            if (b->state == B_OPEN || pp->n_inflight >= p->cfg.max_in_flight) break;
            if (b->retry_at > now) {
                *next = min64(*next, b->retry_at);
                break;
            }
            if (p->cfg.acks == 0 && !net_peer_connected(ep->peer)) {
                kc_probe(c, ep); /* woken when the connection is up */
                break;
            }
            if (!batch_prepare(p, pp, b, need_pid)) break;
            if (batch_send(p, pp, b, ep, epoch) != 0) {
                b->retry_at = now + c->cfg.retry_backoff_ms;
                *next = min64(*next, b->retry_at);
                break;
            }
            *next = min64(*next, now + KC_STUCK_MS); /* look again if it goes unanswered */
        }
    }
    /* Reports, oldest first; a callback may produce more (appended behind). */
    kc_batch_t *b;
    while ((b = pp->head) && b->state == B_DONE) {
        pp->head = b->next;
        if (!pp->head) pp->tail = NULL;
        p->buffered -= b->bytes;
        p->outstanding -= b->n;
        if (b->err) kc_err(c, b->err, "%s", b->errmsg ? b->errmsg : kl_strerror(b->err));
        for (int i = 0; i < b->n; i++)
            if (b->reports[i].cb)
                b->reports[i].cb(b->reports[i].opaque, b->err, pp->partition,
                                 b->err || b->base_offset < 0 ? -1 : b->base_offset + i);
        c->progress++;
        batch_free(b);
    }
}

static void pid_done(kc_req_t *r, int err, wire_msg_t *resp)
{
    kc_producer_t *p = r->owner;
    p->pid_req = NULL;
    int e = err ? err : resp->error;
    if (e == 0) {
        p->pid = resp->body.init_producer_id_resp.producer_id;
        p->pepoch = resp->body.init_producer_id_resp.producer_epoch;
        p->pid_err = 0;
    } else {
        kc_req_errmsg(p->c, r->ep, "init producer id", e, err ? NULL : resp, p->c->cfg.request_timeout_ms,
                      p->pid_errmsg, sizeof p->pid_errmsg);
        p->pid_err = e;
        p->pid_retry_at = net_now_ms() + p->c->cfg.retry_backoff_ms;
        kc_rotate(p->c);
    }
    wire_msg_free(resp);
    pump_soon(p);
}

static void pump(kc_producer_t *p)
{
    int64_t now = net_now_ms(), next = INT64_MAX;
    bool need_pid = false;
    /* Indices, re-read each step: a delivery callback may add topics and partitions. */
    for (int i = 0; i < p->n_topics; i++)
        for (int j = 0; j < p->topics[i]->n_parts; j++) {
            kc_ppart_t *pp = p->topics[i]->parts[j];
            if (pp && pp->head) ppart_service(p, pp, now, &next, &need_pid);
        }
    if (need_pid && !p->pid_req) {
        if (now >= p->pid_retry_at) {
            wire_msg_t m;
            wire_msg_init(&m, WIRE_API_INIT_PRODUCER_ID, false, 0);
            if (kc_send(p->c, kc_any_endpoint(p->c), &m, p->c->cfg.request_timeout_ms, pid_done, p, NULL,
                        &p->pid_req) != 0)
                p->pid_retry_at = now + p->c->cfg.retry_backoff_ms;
        }
        if (!p->pid_req) next = min64(next, p->pid_retry_at);
    }
    if (next == INT64_MAX) {
        evtimer_del(p->timer_ev);
    } else {
        int64_t ms = next > now ? next - now : 0;
        struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(p->timer_ev, &tv);
    }
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

/* ---- public ------------------------------------------------------------------------- */

kc_producer_t *kc_producer_new(kc_client_t *c, const kc_producer_config_t *cfg, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    const char *bad = !cfg ? "no config"
                      : cfg->acks != 0 && cfg->acks != 1 && cfg->acks != -1 ? "acks must be 0, 1 or -1 (all)"
                      : cfg->linger_ms < 0 ? "linger.ms must be >= 0"
                      : cfg->batch_bytes < 1 || (unsigned)cfg->batch_bytes > KC_MAX_BATCH_BYTES
                          ? "batch.size out of range"
                      : cfg->max_in_flight < 1 || cfg->max_in_flight > KC_MAX_IN_FLIGHT ? "max.in.flight out of 1..5"
                      : cfg->delivery_timeout_ms < cfg->linger_ms || cfg->delivery_timeout_ms <= 0
                          ? "delivery.timeout.ms must be > 0 and >= linger.ms"
                      : cfg->buffer_bytes <= 0 ? "buffer.memory must be > 0"
                                               : NULL;
    if (!c || bad) {
        snprintf(err, errlen, "bad producer config: %s", bad ? bad : "no client");
        return NULL;
    }
    kc_producer_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->c = c;
    p->cfg = *cfg;
    if (p->cfg.acks != -1) p->cfg.idempotent = false; /* idempotence needs acks=all */
    p->pid = -1;
    kl_rng_seed(&p->rng, (uint64_t)net_now_ms() ^ (uint64_t)(uintptr_t)p);
    p->pump_ev = event_new(net_loop_base(c->loop), -1, 0, pump_cb, p);
    p->timer_ev = evtimer_new(net_loop_base(c->loop), pump_cb, p);
    if (!p->pump_ev || !p->timer_ev) {
        snprintf(err, errlen, "cannot create producer events");
        if (p->pump_ev) event_free(p->pump_ev);
        if (p->timer_ev) event_free(p->timer_ev);
        free(p);
        return NULL;
    }
    p->child.wake = child_wake;
    p->child.destroy = child_destroy;
    kc_child_add(c, &p->child);
    return p;
}

void kc_producer_free(kc_producer_t *p)
{
    if (!p) return;
    kc_client_t *c = p->c;
    kc_child_remove(c, &p->child);
    event_free(p->pump_ev);
    event_free(p->timer_ev);
    kc_req_cancel(p->pid_req);
    if (p->outstanding) kc_err(c, KL_ESHUTDOWN, "producer closed with %" PRId64 " records undelivered", p->outstanding);
    for (int i = 0; i < p->n_topics; i++) {
        kc_ptopic_t *pt = p->topics[i];
        for (int j = 0; j < pt->n_parts; j++) {
            kc_ppart_t *pp = pt->parts[j];
            while (pp && pp->head) {
                kc_batch_t *b = pp->head;
                pp->head = b->next;
                for (int k = 0; k < b->n; k++) {
                    bool acked = b->state == B_DONE && b->err == 0;
                    if (b->reports[k].cb)
                        b->reports[k].cb(b->reports[k].opaque, acked ? 0 : b->state == B_DONE ? b->err : KL_ESHUTDOWN,
                                         pp->partition, acked && b->base_offset >= 0 ? b->base_offset + k : -1);
                }
                batch_free(b);
            }
            free(pp);
        }
        free(pt->parts);
        free(pt);
    }
    free(p->topics);
    free(p);
}

static kc_ptopic_t *ptopic_get(kc_producer_t *p, kc_topic_t *t)
{
    for (int i = 0; i < p->n_topics; i++)
        if (p->topics[i]->t == t) return p->topics[i];
    kc_ptopic_t **ts = realloc(p->topics, (size_t)(p->n_topics + 1) * sizeof *ts);
    if (!ts) return NULL;
    p->topics = ts;
    kc_ptopic_t *pt = calloc(1, sizeof *pt);
    if (!pt) return NULL;
    pt->t = t;
    pt->sticky = -1;
    p->topics[p->n_topics++] = pt;
    return pt;
}

static kc_ppart_t *ppart_get(kc_ptopic_t *pt, int32_t partition)
{
    if (partition >= pt->n_parts) {
        kc_ppart_t **ps = realloc(pt->parts, (size_t)(partition + 1) * sizeof *ps);
        if (!ps) return NULL;
        memset(ps + pt->n_parts, 0, (size_t)(partition + 1 - pt->n_parts) * sizeof *ps);
        pt->parts = ps;
        pt->n_parts = partition + 1;
    }
    if (!pt->parts[partition]) {
        kc_ppart_t *pp = calloc(1, sizeof *pp);
        if (!pp) return NULL;
        pp->pt = pt;
        pp->partition = partition;
        pp->pid = -1;
        pt->parts[partition] = pp;
    }
    return pt->parts[partition];
}

/* KIP-480: a random partition with a leader (any, if none has one), kept until its batch closes. */
static int32_t sticky_partition(kc_producer_t *p, kc_ptopic_t *pt)
{
    const kc_topic_t *t = pt->t;
    if (pt->sticky >= 0 && pt->sticky < t->n_parts) return pt->sticky;
    int32_t pick = (int32_t)kl_rng_range(&p->rng, 0, t->n_parts);
    for (int32_t i = 0; i < t->n_parts; i++) {
        int32_t q = (pick + i) % t->n_parts;
        if (t->parts[q].leader != META_NO_LEADER) {
            pick = q;
            break;
        }
    }
    return pt->sticky = pick;
}

int kc_produce(kc_producer_t *p, const char *topic, int32_t partition, const void *key, int32_t key_len,
               const void *value, int32_t value_len, int64_t timestamp_ms, kc_delivery_cb cb, void *opaque)
{
    kc_client_t *c = p->c;
    if (!key) key_len = -1;
    if (!value) value_len = -1;
    if (!topic || key_len < -1 || value_len < -1 || partition < KC_PARTITION_ANY)
        return kc_err(c, KL_EINVAL, "produce: bad arguments (topic %s, partition %" PRId32 ", key %" PRId32
                                    " bytes, value %" PRId32 " bytes)",
                      topic ? topic : "NULL", partition, key_len, value_len);
    int64_t rec = (int64_t)(key_len > 0 ? key_len : 0) + (value_len > 0 ? value_len : 0) + KC_RECORD_OVERHEAD;
    if (RECBATCH_HEADER_LEN + rec > (int64_t)KC_MAX_BATCH_BYTES)
        return kc_err(c, KL_ETOOBIG, "produce: a %" PRId64 "-byte record exceeds the %u-byte batch limit", rec,
                      KC_MAX_BATCH_BYTES);
    if (p->buffered + rec + RECBATCH_HEADER_LEN > p->cfg.buffer_bytes)
        return kc_err(c, KL_EFULL, "produce: buffer.memory (%" PRId64 " bytes) is in use; poll and try again",
                      p->cfg.buffer_bytes);
    int rc = 0;
    kc_topic_t *t = kc_topic_track(c, topic, &rc);
    if (!t) return kc_err(c, rc, "produce: cannot track topic '%s': %s", topic, kl_strerror(rc));
    const int32_t want = partition == KC_PARTITION_ANY ? 0 : partition;
    /* The usual case, a partition the metadata knows, needs no deadline (nor
     * the clock read it costs, per record). */
    if (!(t->state == KC_TOPIC_EXISTS && want < t->n_parts) &&
        (rc = kc_topic_ready(c, t, want, net_now_ms() + c->cfg.request_timeout_ms)) != 0)
        return rc;
    kc_ptopic_t *pt = ptopic_get(p, t);
    if (!pt) return kc_err(c, KL_ENOMEM, "produce: out of memory");
    if (partition == KC_PARTITION_ANY)
        partition = key_len >= 0 ? kc_key_partition(key, (size_t)key_len, t->n_parts) : sticky_partition(p, pt);
    kc_ppart_t *pp = ppart_get(pt, partition);
    if (!pp) return kc_err(c, KL_ENOMEM, "produce: out of memory");
    if (timestamp_ms < 0) timestamp_ms = net_wall_ms();

    kc_batch_t *b = pp->tail && pp->tail->state == B_OPEN ? pp->tail : NULL;
    if (b && (int64_t)recbatch_builder_size(&b->rb) + rec > p->cfg.batch_bytes) {
        seal(b); /* full: a record never splits, the next batch starts with it */
        b = NULL;
        pump_soon(p);
    }
    bool fresh = b == NULL;
    if (fresh && !(b = batch_new(pp, timestamp_ms, (size_t)p->cfg.batch_bytes)))
        return kc_err(c, KL_ENOMEM, "produce: out of memory");
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 8;
        kc_report_t *rs = realloc(b->reports, (size_t)cap * sizeof *rs);
        if (!rs) {
            if (fresh) batch_free(b);
            return kc_err(c, KL_ENOMEM, "produce: out of memory");
        }
        b->reports = rs;
        b->cap = cap;
    }
    size_t before = b->buf.len;
    rc = recbatch_add(&b->rb, timestamp_ms - b->rb.base_timestamp, key, key_len, value, value_len, NULL, 0);
    if (rc != 0) {
        if (fresh) batch_free(b);
        return kc_err(c, rc, "produce: cannot add the record to a batch: %s", kl_strerror(rc));
    }
    b->reports[b->n++] = (kc_report_t){cb, opaque};
    int64_t grew = (int64_t)(b->buf.len - before);
    b->bytes += grew;
    p->buffered += fresh ? b->bytes : grew;
    p->outstanding++;
    if (fresh) {
        if (pp->tail) pp->tail->next = b;
        else pp->head = b;
        pp->tail = b;
        pump_soon(p); /* arms the linger timer */
    }
    return 0;
}

static bool flushed(void *arg) { return ((kc_producer_t *)arg)->outstanding == 0; }

int kc_flush(kc_producer_t *p, int timeout_ms)
{
    kc_client_t *c = p->c;
    p->flushing++; /* linger no longer applies: everything queued goes now */
    pump_soon(p);
    int rc = kc_run(c, net_now_ms() + (timeout_ms > 0 ? timeout_ms : 0), flushed, p);
    p->flushing--;
    if (rc == KL_ETIMEOUT)
        return kc_err(c, rc, "flush: %" PRId64 " records still undelivered after %d ms", p->outstanding, timeout_ms);
    if (rc == KL_ESTATE) return kc_err(c, rc, "flush: called from inside a client callback");
    if (rc != 0) return kc_err(c, rc, "flush: the event loop failed");
    return 0;
}

int64_t kc_producer_outstanding(const kc_producer_t *p) { return p->outstanding; }
