/* kc_consumer.c — partition consumer: ListOffsets, one long-poll FETCH per partition, delivery below the HW. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/log.h"
#include "keel/recbatch.h"

#include "kc_internal.h"

#define KC_MAX_ASSIGNED 65536 /* partitions one consumer reads */

typedef struct kc_cpart {
    kc_topic_t *t;
    int32_t partition;
    int64_t position; /* next offset to deliver; -1 until resolved */
    int64_t start;    /* KC_OFFSET_BEGINNING / KC_OFFSET_END until resolved */
    kc_req_t *req;    /* FETCH or LIST_OFFSETS in flight */
    wire_msg_t *data; /* a fetch answer not delivered yet */
    int64_t retry_at;
    uint64_t wait_md; /* the leader we knew was stale: wait for this refresh */
    int err;          /* a non-retriable failure for the next kc_consume to return */
    char errmsg[KC_ERR_LEN];
} kc_cpart_t;

struct kc_consumer {
    kc_child_t child; /* first: the client hands it back */
    kc_client_t *c;
    kc_consumer_config_t cfg;
    kc_cpart_t **parts;
    int n_parts;
    int64_t deadline; /* of the kc_consume running, for the long-poll wait */
};

void kc_consumer_config_defaults(kc_consumer_config_t *cfg)
{
    *cfg = (kc_consumer_config_t){.fetch_max_wait_ms = 500, .fetch_min_bytes = 1,
                                  .max_partition_fetch_bytes = 1048576};
}

static void child_destroy(kc_child_t *ch) { kc_consumer_free((kc_consumer_t *)ch); }

kc_consumer_t *kc_consumer_new(kc_client_t *c, const kc_consumer_config_t *cfg, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    if (!c || !cfg || cfg->fetch_max_wait_ms < 0 || cfg->fetch_min_bytes < 0 || cfg->max_partition_fetch_bytes <= 0) {
        snprintf(err, errlen, "bad consumer config: fetch.max.wait.ms and fetch.min.bytes must be >= 0, "
                              "max.partition.fetch.bytes > 0");
        return NULL;
    }
    kc_consumer_t *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    k->c = c;
    k->cfg = *cfg;
    k->child.destroy = child_destroy; /* kc_consume re-checks its partitions itself: no wake needed */
    kc_child_add(c, &k->child);
    return k;
}

void kc_consumer_free(kc_consumer_t *k)
{
    if (!k) return;
    kc_child_remove(k->c, &k->child);
    for (int i = 0; i < k->n_parts; i++) {
        kc_req_cancel(k->parts[i]->req);
        wire_msg_free(k->parts[i]->data);
        free(k->parts[i]);
    }
    free(k->parts);
    free(k);
}

static kc_cpart_t *cpart_find(const kc_consumer_t *k, const char *topic, int32_t partition)
{
    for (int i = 0; i < k->n_parts; i++)
        if (k->parts[i]->partition == partition && strcmp(k->parts[i]->t->name, topic) == 0) return k->parts[i];
    return NULL;
}

int kc_consumer_assign(kc_consumer_t *k, const char *topic, int32_t partition, int64_t offset)
{
    kc_client_t *c = k->c;
    if (!topic || partition < 0 || offset < KC_OFFSET_BEGINNING)
        return kc_err(c, KL_EINVAL, "assign: bad partition %" PRId32 " or offset %" PRId64, partition, offset);
    if (cpart_find(k, topic, partition))
        return kc_err(c, KL_EEXIST, "assign: %s-%" PRId32 " is already assigned", topic, partition);
    if (k->n_parts >= KC_MAX_ASSIGNED)
        return kc_err(c, KL_EFULL, "assign: at most %d partitions per consumer", KC_MAX_ASSIGNED);
    int rc = 0;
    kc_topic_t *t = kc_topic_track(c, topic, &rc);
    if (!t) return kc_err(c, rc, "assign: cannot track topic '%s': %s", topic, kl_strerror(rc));
    kc_cpart_t **ps = realloc(k->parts, (size_t)(k->n_parts + 1) * sizeof *ps);
    if (!ps) return kc_err(c, KL_ENOMEM, "assign: out of memory");
    k->parts = ps;
    kc_cpart_t *cp = calloc(1, sizeof *cp);
    if (!cp) return kc_err(c, KL_ENOMEM, "assign: out of memory");
    cp->t = t;
    cp->partition = partition;
    cp->position = offset >= 0 ? offset : -1;
    cp->start = offset;
    k->parts[k->n_parts++] = cp;
    return 0;
}

int64_t kc_consumer_position(const kc_consumer_t *k, const char *topic, int32_t partition)
{
    const kc_cpart_t *cp = topic ? cpart_find(k, topic, partition) : NULL;
    return cp ? cp->position : -1;
}

/* ---- requests -------------------------------------------------------------------- */

/* A failed fetch or list-offsets: retriable ones come back after a metadata
 * refresh (when the leader looks stale) and the backoff; the rest wait for
 * kc_consume to return them. */
static void cpart_failed(kc_consumer_t *k, kc_cpart_t *cp, kc_req_t *r, const char *what, int err,
                         const wire_msg_t *resp)
{
    kc_client_t *c = k->c;
    kc_req_errmsg(c, r->ep, what, err, resp, c->cfg.request_timeout_ms, cp->errmsg, sizeof cp->errmsg);
    if (kc_retriable(err)) {
        if (kc_stale_leader(err)) cp->wait_md = kc_md_refresh(c);
        cp->retry_at = net_now_ms() + c->cfg.retry_backoff_ms;
        KL_DEBUG(KC_LOG, "%s; retrying", cp->errmsg);
    } else {
        cp->err = err;
    }
}

static void list_done(kc_req_t *r, int err, wire_msg_t *resp)
{
    kc_cpart_t *cp = r->item;
    cp->req = NULL;
    int e = err ? err : resp->error;
    if (e == 0) cp->position = resp->body.list_offsets_resp.offset;
    else cpart_failed(r->owner, cp, r, "list offsets", e, err ? NULL : resp);
    wire_msg_free(resp);
}

static void fetch_done(kc_req_t *r, int err, wire_msg_t *resp)
{
    kc_consumer_t *k = r->owner;
    kc_cpart_t *cp = r->item;
    cp->req = NULL;
    int e = err ? err : resp->error;
    if (e == KL_ERANGE) {
        kc_req_errmsg(k->c, r->ep, "fetch", e, resp, 0, cp->errmsg, sizeof cp->errmsg);
        snprintf(cp->errmsg + strlen(cp->errmsg), sizeof cp->errmsg - strlen(cp->errmsg),
                 " (%s-%" PRId32 " position %" PRId64 ")", cp->t->name, cp->partition, cp->position);
        cp->err = e;
    } else if (e != 0) {
        cpart_failed(k, cp, r, "fetch", e, err ? NULL : resp);
    } else if (resp->payload_len > 0) {
        cp->data = resp;
        return;
    }
    wire_msg_free(resp); /* an empty long poll: the next step asks again */
}

/* Sends what cp needs next (ListOffsets to resolve, else a fetch). */
static void cpart_request(kc_consumer_t *k, kc_cpart_t *cp, int64_t now)
{
    kc_client_t *c = k->c;
    if (cp->wait_md && !kc_md_has(c, cp->wait_md)) return; /* woken by kc_run's next pass */
    cp->wait_md = 0;
    int32_t epoch = WIRE_NO_EPOCH;
    kc_endpoint_t *ep = kc_leader(c, cp->t, cp->partition, &epoch);
    if (!ep) {
        snprintf(cp->errmsg, sizeof cp->errmsg, "%s-%" PRId32 ": no leader known", cp->t->name, cp->partition);
        return;
    }
    wire_msg_t m;
    int tmo = c->cfg.request_timeout_ms;
    if (cp->position < 0) {
        wire_msg_init(&m, WIRE_API_LIST_OFFSETS, false, 0);
        snprintf(m.body.list_offsets.topic, sizeof m.body.list_offsets.topic, "%s", cp->t->name);
        m.body.list_offsets.partition = cp->partition;
        m.body.list_offsets.timestamp = cp->start == KC_OFFSET_BEGINNING ? WIRE_OFFSET_EARLIEST : WIRE_OFFSET_LATEST;
        m.body.list_offsets.leader_epoch = epoch;
        if (kc_send(c, ep, &m, tmo, list_done, k, cp, &cp->req) != 0) cp->retry_at = now + c->cfg.retry_backoff_ms;
        return;
    }
    /* Long poll no longer than the caller waits; the answer is kept for the next poll anyway. */
    int64_t left = k->deadline - now;
    int wait = left < k->cfg.fetch_max_wait_ms ? (int)(left > 0 ? left : 0) : k->cfg.fetch_max_wait_ms;
    wire_msg_init(&m, WIRE_API_FETCH, false, 0);
    wire_fetch_req_t *f = &m.body.fetch;
    snprintf(f->topic, sizeof f->topic, "%s", cp->t->name);
    memcpy(f->topic_id, cp->t->id, KL_UUID_LEN);
    f->partition = cp->partition;
    f->leader_epoch = epoch;
    f->fetch_offset = cp->position;
    f->max_bytes = k->cfg.max_partition_fetch_bytes;
    f->max_wait_ms = wait;
    f->min_bytes = k->cfg.fetch_min_bytes;
    if (kc_send(c, ep, &m, tmo + wait, fetch_done, k, cp, &cp->req) != 0) cp->retry_at = now + c->cfg.retry_backoff_ms;
}

/* One pass: requests for idle partitions; true once something is ready to return. */
static bool consume_step(void *arg)
{
    kc_consumer_t *k = arg;
    kc_client_t *c = k->c;
    int64_t now = net_now_ms();
    bool ready = false;
    for (int i = 0; i < k->n_parts; i++) {
        kc_cpart_t *cp = k->parts[i];
        if (cp->data || cp->err) {
            ready = true;
            continue;
        }
        if (cp->req) continue;
        if (cp->retry_at > now) {
            if (cp->retry_at < c->wake_at) c->wake_at = cp->retry_at;
            continue;
        }
        cpart_request(k, cp, now);
    }
    return ready;
}

/* ---- delivery --------------------------------------------------------------------------- */

/* Delivers cp's buffered answer from its position up to the high watermark. */
static int cpart_deliver(kc_consumer_t *k, kc_cpart_t *cp, void (*fn)(void *, const kc_record_t *), void *arg)
{
    wire_msg_t *resp = cp->data;
    cp->data = NULL;
    int64_t hw = resp->body.fetch_resp.high_watermark;
    const uint8_t *p = resp->payload, *end = p + resp->payload_len;
    int n = 0, rc = 0;
    while (p < end && cp->position < hw) {
        recbatch_header_t h;
        rc = recbatch_validate(p, (size_t)(end - p), &h);
        if (rc == KL_EAGAIN) { /* a batch cut at max_bytes: fetched whole next time */
            rc = 0;
            break;
        }
        if (rc != 0) {
            rc = kc_err(k->c, rc, "fetch from %s-%" PRId32 " at offset %" PRId64 ": bad record batch: %s",
                        cp->t->name, cp->partition, cp->position, kl_strerror(rc));
            break;
        }
        if (!recbatch_is_control(&h) && recbatch_next_offset(&h) > cp->position) {
            recbatch_iter_t it;
            recbatch_record_t r;
            recbatch_iter_init(&it, p, recbatch_total_size(&h));
            while (recbatch_iter_next(&it, &r) == 0 && r.offset < hw) {
                if (r.offset < cp->position) continue; /* the batch began before our position */
                kc_record_t rec = {cp->t->name, cp->partition, r.offset, r.timestamp, r.key.data, r.key.len,
                                   r.value.data, r.value.len};
                fn(arg, &rec);
                cp->position = r.offset + 1;
                n++;
            }
        }
        /* Past control batches and gaps too, but only below the high watermark. */
        int64_t next = recbatch_next_offset(&h);
        if (next <= hw && next > cp->position) cp->position = next;
        p += recbatch_total_size(&h);
    }
    wire_msg_free(resp);
    return rc ? rc : n;
}

int kc_consume(kc_consumer_t *k, int timeout_ms, void (*fn)(void *arg, const kc_record_t *r), void *arg)
{
    kc_client_t *c = k->c;
    if (!fn) return kc_err(c, KL_EINVAL, "consume: no record callback");
    k->deadline = net_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int rc = kc_run(c, k->deadline, consume_step, k);
        if (rc == KL_ESTATE) return kc_err(c, rc, "consume: called from inside a client callback");
        if (rc == KL_EIO) return kc_err(c, rc, "consume: the event loop failed");
        for (int i = 0; i < k->n_parts; i++) {
            kc_cpart_t *cp = k->parts[i];
            if (cp->err) {
                int e = cp->err;
                cp->err = 0;
                cp->retry_at = net_now_ms() + c->cfg.retry_backoff_ms;
                return kc_err(c, e, "%s", cp->errmsg);
            }
        }
        int total = 0;
        for (int i = 0; i < k->n_parts; i++) {
            kc_cpart_t *cp = k->parts[i];
            if (!cp->data) continue;
            int n = cpart_deliver(k, cp, fn, arg);
            if (n < 0) return n;
            total += n;
        }
        /* An answer may hold nothing new (all below the position): wait on. */
        if (total > 0 || rc == KL_ETIMEOUT || net_now_ms() >= k->deadline) return total;
    }
}
