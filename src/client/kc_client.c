/* kc_client.c — client core: bootstrap, endpoints, bounded loop runs, requests, metadata view, admin calls. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "keel/err.h"
#include "keel/log.h"

#include "kc_internal.h"

/* ---- configuration and errors ------------------------------------------------- */

void kc_config_defaults(kc_config_t *cfg)
{
    *cfg = (kc_config_t){.request_timeout_ms = 30000, .retry_backoff_ms = 100, .metadata_max_age_ms = 300000};
}

int kc_err(kc_client_t *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return code;
}

const char *kc_last_error(const kc_client_t *c) { return c->err; }

bool kc_retriable(int err)
{
    switch (err) {
    case KL_ENOTLEADER: case KL_EFENCED: case KL_EUNKNOWNEPOCH: case KL_EUNKNOWNPARTITION:
    case KL_ENOTENOUGHREPLICAS: case KL_ETIMEOUT: case KL_ECLOSED: case KL_ECONNECT:
    case KL_ENOTCONTROLLER: case KL_ESHUTDOWN: case KL_ENOTAVAILABLE:
        return true;
    default:
        return false;
    }
}

bool kc_stale_leader(int err)
{
    /* A timeout counts: a stopped leader looks exactly like that (DESIGN.md §4 fencing). */
    return kc_retriable(err) && err != KL_ENOTENOUGHREPLICAS && err != KL_ENOTCONTROLLER;
}

/* ---- Kafka's key partitioner ------------------------------------------------------ */

int32_t kc_murmur2(const void *data, size_t len)
{
    /* Kafka's Utils.murmur2: MurmurHash2 32-bit with its fixed seed, little-endian blocks. */
    const uint32_t m = 0x5bd1e995u, seed = 0x9747b28cu;
    const uint8_t *p = data;
    uint32_t h = seed ^ (uint32_t)len;
    size_t blocks = len / 4;
    for (size_t i = 0; i < blocks; i++, p += 4) {
        uint32_t k = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h = h * m ^ k;
    }
    switch (len & 3) {
    case 3: h ^= (uint32_t)p[2] << 16; /* fall through */
    case 2: h ^= (uint32_t)p[1] << 8;  /* fall through */
    case 1: h ^= p[0]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

int32_t kc_key_partition(const void *key, size_t key_len, int32_t n_partitions)
{
    KL_ASSERT(n_partitions > 0);
    /* toPositive masks the sign bit rather than taking abs(), as Kafka does. */
    return (int32_t)(((uint32_t)kc_murmur2(key, key_len) & 0x7fffffffu) % (uint32_t)n_partitions);
}

/* ---- the loop ---------------------------------------------------------------------- */

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg; /* only ends event_base_loop's wait */
}

int kc_run(kc_client_t *c, int64_t deadline, bool (*done)(void *arg), void *arg)
{
    if (c->running) return KL_ESTATE;
    c->running = true;
    int rc = 0;
    bool last_pass = false;
    for (;;) {
        c->wake_at = INT64_MAX;
        if (done(arg)) break;
        int64_t now = net_now_ms();
        int flags = EVLOOP_ONCE;
        if (now >= deadline) {
            if (last_pass) {
                rc = KL_ETIMEOUT;
                break;
            }
            last_pass = true; /* even a zero wait gets one pass over what is ready */
            flags = EVLOOP_NONBLOCK;
        } else {
            int64_t ms = (c->wake_at < deadline ? c->wake_at : deadline) - now;
            if (ms < 0) ms = 0;
            struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
            evtimer_add(c->wake_ev, &tv);
        }
        if (event_base_loop(net_loop_base(c->loop), flags) < 0) {
            rc = KL_EIO;
            break;
        }
    }
    evtimer_del(c->wake_ev);
    c->running = false;
    return rc;
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static void kc_sleep(kc_client_t *c, int64_t until) { kc_run(c, until, never, NULL); }

static int64_t deadline_of(int timeout_ms) { return net_now_ms() + (timeout_ms > 0 ? timeout_ms : 0); }

typedef struct poll_state {
    const kc_client_t *c;
    uint64_t since;
} poll_state_t;

static bool progressed(void *arg)
{
    const poll_state_t *st = arg;
    return st->c->progress != st->since;
}

int kc_poll(kc_client_t *c, int timeout_ms)
{
    poll_state_t st = {c, c->progress};
    int rc = kc_run(c, deadline_of(timeout_ms), progressed, &st);
    if (rc == KL_ESTATE) return kc_err(c, rc, "kc_poll: called from inside a client callback");
    if (rc == KL_EIO) return kc_err(c, rc, "kc_poll: the event loop failed");
    return 0;
}

/* ---- requests ------------------------------------------------------------------------ */

static void req_unlink(kc_client_t *c, kc_req_t *r)
{
    if (r->prev) r->prev->next = r->next;
    else c->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
}

static void req_cb(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    kc_req_t *r = arg;
    req_unlink(r->c, r);
    if (err == 0) r->ep->last_reply_ms = net_now_ms();
    if (r->done) r->done(r, err, resp);
    else wire_msg_free(resp);
    free(r);
}

int kc_send(kc_client_t *c, kc_endpoint_t *ep, wire_msg_t *m, int timeout_ms, kc_done_fn done, void *owner,
            void *item, kc_req_t **out)
{
    kc_req_t *r = calloc(1, sizeof *r);
    if (!r) return KL_ENOMEM;
    *r = (kc_req_t){.c = c, .done = done, .owner = owner, .item = item, .ep = ep, .next = c->reqs,
                    .sent_ms = net_now_ms()};
    if (c->reqs) c->reqs->prev = r;
    c->reqs = r;
    int rc = net_request(ep->peer, m, timeout_ms, req_cb, r);
    if (rc != 0) { /* nothing queued: the callback will not run */
        req_unlink(c, r);
        free(r);
        return rc;
    }
    if (out) *out = r;
    return 0;
}

void kc_req_cancel(kc_req_t *r)
{
    if (r) r->done = NULL;
}

bool kc_endpoint_stuck(const kc_client_t *c, const kc_endpoint_t *ep, int64_t now)
{
    for (const kc_req_t *r = c->reqs; r; r = r->next)
        /* <=: the reply that prompted a request usually lands in its millisecond */
        if (r->ep == ep && r->sent_ms <= now - KC_STUCK_MS && ep->last_reply_ms <= r->sent_ms) return true;
    return false;
}

void kc_ep_name(const kc_client_t *c, const kc_endpoint_t *ep, char *buf, size_t len)
{
    for (int i = 0; i < c->n_brokers; i++)
        if (c->brokers[i].ep == ep) {
            snprintf(buf, len, "broker %" PRId32 " at %s", c->brokers[i].id, net_peer_name(ep->peer));
            return;
        }
    snprintf(buf, len, "%s", net_peer_name(ep->peer));
}

void kc_req_errmsg(const kc_client_t *c, const kc_endpoint_t *ep, const char *what, int err, const wire_msg_t *resp,
                   int timeout_ms, char *buf, size_t len)
{
    char name[WIRE_HOST_LEN + 48];
    kc_ep_name(c, ep, name, sizeof name);
    const char *why = net_peer_last_error(ep->peer);
    if (resp)
        snprintf(buf, len, "%s: %s: %s%s%s", what, name, kl_strerror(err), resp->error_message[0] ? ": " : "",
                 resp->error_message);
    else if (err == KL_ETIMEOUT)
        snprintf(buf, len, "%s: %s: no answer within %d ms", what, name, timeout_ms);
    else if ((err == KL_ECONNECT || err == KL_ECLOSED) && why[0])
        snprintf(buf, len, "%s: %s", what, why);
    else
        snprintf(buf, len, "%s: %s: %s", what, name, kl_strerror(err));
}

static int req_error(kc_client_t *c, kc_endpoint_t *ep, const char *what, int err, const wire_msg_t *resp,
                     int timeout_ms)
{
    kc_req_errmsg(c, ep, what, err, resp, timeout_ms, c->err, sizeof c->err);
    return err;
}

typedef struct call_state {
    bool done;
    int err;
    wire_msg_t *resp;
} call_state_t;

static void call_done(kc_req_t *r, int err, wire_msg_t *resp)
{
    call_state_t *st = r->owner;
    st->done = true;
    st->err = err;
    st->resp = resp;
}

static bool call_finished(void *arg) { return ((call_state_t *)arg)->done; }

int kc_call(kc_client_t *c, kc_endpoint_t *ep, wire_msg_t *m, int64_t deadline, const char *what,
            wire_msg_t **resp)
{
    *resp = NULL;
    if (c->running) return kc_err(c, KL_ESTATE, "%s: a blocking call cannot run inside a client callback", what);
    int64_t left = deadline - net_now_ms();
    if (left <= 0) return kc_err(c, KL_ETIMEOUT, "%s: timed out", what);
    int tmo = left < c->cfg.request_timeout_ms ? (int)left : c->cfg.request_timeout_ms;
    call_state_t st = {0};
    kc_req_t *r = NULL;
    int rc = kc_send(c, ep, m, tmo, call_done, &st, NULL, &r);
    if (rc != 0) return req_error(c, ep, what, rc, NULL, tmo);
    /* The request's own timer ends the wait; the grace only guards the stack. */
    rc = kc_run(c, net_now_ms() + tmo + KC_NET_GRACE_MS, call_finished, &st);
    if (!st.done) {
        kc_req_cancel(r);
        return req_error(c, ep, what, rc ? rc : KL_ETIMEOUT, NULL, tmo);
    }
    if (st.err) return req_error(c, ep, what, st.err, NULL, tmo);
    *resp = st.resp;
    if (st.resp->error) return req_error(c, ep, what, st.resp->error, st.resp, tmo);
    return 0;
}

/* ---- endpoints and children ---------------------------------------------------------------- */

void kc_child_add(kc_client_t *c, kc_child_t *ch)
{
    ch->prev = NULL;
    ch->next = c->children;
    if (c->children) c->children->prev = ch;
    c->children = ch;
}

void kc_child_remove(kc_client_t *c, kc_child_t *ch)
{
    if (ch->prev) ch->prev->next = ch->next;
    else c->children = ch->next;
    if (ch->next) ch->next->prev = ch->prev;
    ch->prev = ch->next = NULL;
}

void kc_wake_children(kc_client_t *c)
{
    for (kc_child_t *ch = c->children; ch; ch = ch->next)
        if (ch->wake) ch->wake(ch);
}

static void peer_state_cb(net_peer_t *p, bool connected, void *arg)
{
    (void)p;
    if (connected) kc_wake_children(arg); /* acks=0 sends wait for a live connection */
}

static kc_endpoint_t *endpoint_get(kc_client_t *c, const char *host, int port)
{
    for (int i = 0; i < c->n_eps; i++)
        if (c->eps[i]->port == port && strcmp(c->eps[i]->host, host) == 0) return c->eps[i];
    if (c->n_eps >= KC_MAX_ENDPOINTS || strlen(host) >= WIRE_HOST_LEN) return NULL;
    kc_endpoint_t **eps = realloc(c->eps, (size_t)(c->n_eps + 1) * sizeof *eps);
    if (!eps) return NULL;
    c->eps = eps;
    kc_endpoint_t *ep = calloc(1, sizeof *ep);
    if (!ep) return NULL;
    snprintf(ep->host, sizeof ep->host, "%s", host);
    ep->port = port;
    ep->peer = net_peer_new(c->loop, host, port, c->cfg.tls, peer_state_cb, c);
    if (!ep->peer) {
        free(ep);
        return NULL;
    }
    c->eps[c->n_eps++] = ep;
    return ep;
}

kc_endpoint_t *kc_any_endpoint(kc_client_t *c)
{
    /* Known brokers first (they are the cluster now), then the bootstrap list. */
    int n = c->n_brokers + c->n_boot;
    int64_t now = net_now_ms();
    for (int k = 0; k < n; k++) {
        int i = (c->md_rot + k) % n;
        kc_endpoint_t *ep = i < c->n_brokers ? c->brokers[i].ep : c->boot[i - c->n_brokers];
        if (!kc_endpoint_stuck(c, ep, now)) return ep;
    }
    int i = c->md_rot % n;
    return i < c->n_brokers ? c->brokers[i].ep : c->boot[i - c->n_brokers];
}

void kc_rotate(kc_client_t *c) { c->md_rot = (c->md_rot + 1) % (c->n_brokers + c->n_boot); }

static void probe_done(kc_req_t *r, int err, wire_msg_t *resp)
{
    (void)err;
    wire_msg_free(resp);
    ((kc_endpoint_t *)r->item)->probe = NULL;
    kc_wake_children(r->c);
}

void kc_probe(kc_client_t *c, kc_endpoint_t *ep)
{
    if (ep->probe || net_peer_connected(ep->peer)) return;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_API_VERSIONS, false, 0);
    kc_send(c, ep, &m, c->cfg.request_timeout_ms, probe_done, c, ep, &ep->probe);
}

/* ---- metadata ------------------------------------------------------------------------------ */

kc_topic_t *kc_topic_track(kc_client_t *c, const char *name, int *err)
{
    for (int i = 0; i < c->n_topics; i++)
        if (strcmp(c->topics[i]->name, name) == 0) return c->topics[i];
    *err = !meta_topic_name_valid(name) ? KL_EINVAL : c->n_topics >= KC_MAX_TOPICS ? KL_EFULL : KL_ENOMEM;
    if (*err != KL_ENOMEM) return NULL;
    kc_topic_t **ts = realloc(c->topics, (size_t)(c->n_topics + 1) * sizeof *ts);
    if (!ts) return NULL;
    c->topics = ts;
    kc_topic_t *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    snprintf(t->name, sizeof t->name, "%s", name);
    c->topics[c->n_topics++] = t;
    *err = 0;
    return t;
}

static int cmp_broker(const void *a, const void *b)
{
    int32_t x = ((const kc_broker_t *)a)->id, y = ((const kc_broker_t *)b)->id;
    return (x > y) - (x < y);
}

static int cmp_topic_info(const void *a, const void *b)
{
    return strcmp((*(const wire_topic_info_t *const *)a)->name, (*(const wire_topic_info_t *const *)b)->name);
}

static void topic_set(kc_topic_t *t, const wire_topic_info_t *ti)
{
    if (ti->error != 0 || ti->n_partitions <= 0) {
        t->state = KC_TOPIC_ABSENT;
        t->n_parts = 0;
        return;
    }
    if (ti->n_partitions > t->n_parts || !t->parts) {
        kc_part_md_t *parts = realloc(t->parts, (size_t)ti->n_partitions * sizeof *parts);
        if (!parts) return; /* keep the old view; the next refresh tries again */
        t->parts = parts;
    }
    memcpy(t->id, ti->topic_id, KL_UUID_LEN);
    t->n_parts = ti->n_partitions;
    for (int i = 0; i < t->n_parts; i++) t->parts[i] = (kc_part_md_t){META_NO_LEADER, -1};
    for (int i = 0; i < ti->n_partitions; i++) {
        const meta_partition_t *p = &ti->partitions[i];
        if (p->partition >= 0 && p->partition < t->n_parts)
            t->parts[p->partition] = (kc_part_md_t){p->leader, p->leader_epoch};
    }
    t->state = KC_TOPIC_EXISTS;
}

/* Folds an answer into the view. all: it lists every topic, so a tracked
 * topic missing from it is gone. */
static void md_merge(kc_client_t *c, const wire_metadata_resp_t *md, bool all)
{
    kc_broker_t *bs = md->n_brokers > 0 ? malloc((size_t)md->n_brokers * sizeof *bs) : NULL;
    if (bs || md->n_brokers == 0) {
        int n = 0;
        for (int i = 0; i < md->n_brokers; i++) {
            const wire_broker_info_t *b = &md->brokers[i];
            kc_endpoint_t *ep = b->n_listeners > 0 ? endpoint_get(c, b->listeners[0].host, b->listeners[0].port) : NULL;
            if (ep) bs[n++] = (kc_broker_t){b->id, ep};
        }
        qsort(bs, (size_t)n, sizeof *bs, cmp_broker);
        free(c->brokers);
        c->brokers = bs;
        c->n_brokers = n;
        c->md_rot = 0; /* the rotation's indices changed meaning */
    }
    c->controller_id = md->controller_id;

    const wire_topic_info_t **byname = md->n_topics > 0 ? malloc((size_t)md->n_topics * sizeof *byname) : NULL;
    if (md->n_topics > 0 && !byname) return;
    for (int i = 0; i < md->n_topics; i++) byname[i] = &md->topics[i];
    if (md->n_topics > 1) qsort(byname, (size_t)md->n_topics, sizeof *byname, cmp_topic_info);
    for (int i = 0; i < c->n_topics; i++) {
        kc_topic_t *t = c->topics[i];
        wire_topic_info_t key = {0};
        snprintf(key.name, sizeof key.name, "%s", t->name);
        const wire_topic_info_t *kp = &key;
        const wire_topic_info_t **hit =
            md->n_topics ? bsearch(&kp, byname, (size_t)md->n_topics, sizeof *byname, cmp_topic_info) : NULL;
        if (hit) {
            topic_set(t, *hit);
        } else if (all) {
            t->state = KC_TOPIC_ABSENT;
            t->n_parts = 0;
        }
    }
    free(byname);
    c->md_time_ms = net_now_ms();
}

static void md_send(kc_client_t *c);

static void md_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    md_send(arg);
}

static void md_schedule(kc_client_t *c, int64_t delay_ms)
{
    struct timeval tv = {(time_t)(delay_ms / 1000), (suseconds_t)(delay_ms % 1000) * 1000};
    evtimer_add(c->md_retry_ev, &tv);
}

static void md_done(kc_req_t *r, int err, wire_msg_t *resp)
{
    kc_client_t *c = r->c;
    kc_endpoint_t *ep = r->ep;
    c->md_req = NULL;
    int e = err ? err : resp->error;
    if (e == 0) {
        md_merge(c, &resp->body.metadata_resp, c->md_all);
        wire_msg_free(resp);
        c->md_done_seq = c->md_seq;
        c->md_fails = 0;
        c->md_err = 0;
        if (c->md_again) {
            int64_t wait = c->md_sent_ms + c->cfg.retry_backoff_ms - net_now_ms();
            md_schedule(c, wait > 0 ? wait : 0);
        }
        kc_wake_children(c);
        return;
    }
    /* A background failure is kept aside: the user's last error stays theirs. */
    kc_req_errmsg(c, ep, "metadata", e, resp, c->cfg.request_timeout_ms, c->md_errmsg, sizeof c->md_errmsg);
    c->md_err = e;
    wire_msg_free(resp);
    KL_DEBUG(KC_LOG, "%s", c->md_errmsg);
    /* Try the next endpoint at once; after a whole round of failures, back off. */
    kc_rotate(c);
    int n = c->n_brokers + c->n_boot;
    int64_t delay = 0;
    if (++c->md_fails % n == 0) {
        delay = c->cfg.retry_backoff_ms;
        for (int i = n; i < c->md_fails && delay < KC_MD_BACKOFF_MAX_MS; i += n) delay *= 2;
        if (delay > KC_MD_BACKOFF_MAX_MS) delay = KC_MD_BACKOFF_MAX_MS;
    }
    md_schedule(c, delay);
}

static void md_send(kc_client_t *c)
{
    evtimer_del(c->md_retry_ev);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_METADATA, false, 0);
    char(*names)[META_MAX_TOPIC_NAME_LEN + 1] = NULL;
    if (c->n_topics > 0 && (names = malloc((size_t)c->n_topics * sizeof *names)) != NULL) {
        for (int i = 0; i < c->n_topics; i++) memcpy(names[i], c->topics[i]->name, sizeof names[i]);
        m.body.metadata.topics = names;
        m.body.metadata.n_topics = c->n_topics;
    }
    c->md_all = names == NULL; /* no tracked topic (or no memory for names): ask for all */
    c->md_again = false;
    c->md_seq++;
    c->md_sent_ms = net_now_ms();
    kc_endpoint_t *ep = kc_any_endpoint(c);
    int rc = kc_send(c, ep, &m, c->cfg.request_timeout_ms, md_done, c, NULL, &c->md_req);
    free(names);
    if (rc != 0) {
        c->md_err = rc;
        snprintf(c->md_errmsg, sizeof c->md_errmsg, "metadata: cannot send: %s", kl_strerror(rc));
        md_schedule(c, c->cfg.retry_backoff_ms);
    }
}

uint64_t kc_md_refresh(kc_client_t *c)
{
    if (c->md_req && kc_endpoint_stuck(c, c->md_req->ep, net_now_ms())) {
        /* It went to a broker that stopped answering: waiting out the request
         * timeout would delay every failover behind it. Ask another. */
        kc_req_cancel(c->md_req);
        c->md_req = NULL;
        kc_rotate(c);
    }
    uint64_t target = c->md_seq + 1;
    if (c->md_req) {
        c->md_again = true;
    } else if (!evtimer_pending(c->md_retry_ev, NULL)) {
        /* At most one refresh per retry.backoff.ms, however many ask. */
        int64_t wait = c->md_seq ? c->md_sent_ms + c->cfg.retry_backoff_ms - net_now_ms() : 0;
        if (wait > 0) md_schedule(c, wait);
        else md_send(c);
    }
    return target;
}

typedef struct md_wait {
    kc_client_t *c;
    uint64_t target;
} md_wait_t;

static bool md_arrived(void *arg)
{
    md_wait_t *w = arg;
    return kc_md_has(w->c, w->target);
}

int kc_md_wait(kc_client_t *c, int64_t deadline)
{
    if (c->running) return kc_err(c, KL_ESTATE, "metadata: cannot wait for it inside a client callback");
    md_wait_t w = {c, kc_md_refresh(c)};
    int64_t start = net_now_ms();
    int rc = kc_run(c, deadline, md_arrived, &w);
    if (rc == 0) return 0;
    if (rc != KL_ETIMEOUT) return kc_err(c, rc, "metadata: event loop failed");
    if (c->md_err)
        return kc_err(c, c->md_err, "no metadata within %" PRId64 " ms; last failure: %s", net_now_ms() - start,
                      c->md_errmsg);
    return kc_err(c, KL_ETIMEOUT, "no metadata within %" PRId64 " ms", net_now_ms() - start);
}

int kc_topic_ready(kc_client_t *c, kc_topic_t *t, int32_t partition, int64_t deadline)
{
    for (bool fresh = false;; fresh = true) {
        if (t->state == KC_TOPIC_EXISTS && partition >= 0 && partition < t->n_parts) return 0;
        if (fresh && t->state == KC_TOPIC_EXISTS)
            return kc_err(c, KL_EUNKNOWNPARTITION, "topic '%s' has %" PRId32 " partitions, not partition %" PRId32,
                          t->name, t->n_parts, partition);
        if (fresh && t->state == KC_TOPIC_ABSENT)
            return kc_err(c, KL_EUNKNOWNPARTITION, "topic '%s' does not exist", t->name);
        int rc = kc_md_wait(c, deadline);
        if (rc != 0) return rc;
    }
}

static const kc_broker_t *broker_find(const kc_client_t *c, int32_t id)
{
    kc_broker_t key = {id, NULL};
    return c->n_brokers ? bsearch(&key, c->brokers, (size_t)c->n_brokers, sizeof key, cmp_broker) : NULL;
}

kc_endpoint_t *kc_leader(kc_client_t *c, const kc_topic_t *t, int32_t partition, int32_t *leader_epoch)
{
    if (net_now_ms() - c->md_time_ms > c->cfg.metadata_max_age_ms && !c->md_req &&
        !evtimer_pending(c->md_retry_ev, NULL))
        kc_md_refresh(c);
    if (t->state != KC_TOPIC_EXISTS || partition < 0 || partition >= t->n_parts) {
        kc_md_refresh(c);
        return NULL;
    }
    const kc_broker_t *b = broker_find(c, t->parts[partition].leader);
    if (!b) { /* offline partition, or a leader we have not heard of yet */
        kc_md_refresh(c);
        return NULL;
    }
    *leader_epoch = t->parts[partition].leader_epoch;
    return b->ep;
}

/* ---- client ------------------------------------------------------------------------------------ */

static int parse_bootstrap(kc_client_t *c, const char *list, char *err, size_t errlen)
{
    if (!list || !list[0]) {
        snprintf(err, errlen, "no bootstrap servers given");
        return KL_EINVAL;
    }
    const char *s = list;
    while (*s) {
        size_t n = strcspn(s, ",");
        char item[WIRE_HOST_LEN + 16], host[WIRE_HOST_LEN];
        int port = 0;
        const char *a = s, *b = s + n;
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if ((size_t)(b - a) >= sizeof item) {
            snprintf(err, errlen, "bootstrap server '%.*s...' is too long", 32, a);
            return KL_EINVAL;
        }
        memcpy(item, a, (size_t)(b - a));
        item[b - a] = '\0';
        if (net_parse_hostport(item, host, sizeof host, &port) != 0 || port == 0) {
            snprintf(err, errlen, "bad bootstrap server '%s' (want host:port)", item);
            return KL_EINVAL;
        }
        if (c->n_boot >= KC_MAX_BOOTSTRAP) {
            snprintf(err, errlen, "more than %d bootstrap servers", KC_MAX_BOOTSTRAP);
            return KL_EINVAL;
        }
        kc_endpoint_t *ep = endpoint_get(c, host, port);
        if (!ep) {
            snprintf(err, errlen, "cannot set up a connection to %s", item);
            return KL_ENOMEM;
        }
        c->boot[c->n_boot++] = ep;
        s += n;
        if (*s == ',') s++;
    }
    if (c->n_boot == 0) {
        snprintf(err, errlen, "no bootstrap servers given");
        return KL_EINVAL;
    }
    return 0;
}

kc_client_t *kc_client_new(const kc_config_t *cfg, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    if (!cfg || cfg->request_timeout_ms <= 0 || cfg->retry_backoff_ms < 0 || cfg->metadata_max_age_ms <= 0) {
        snprintf(err, errlen, "bad client config: request.timeout.ms must be > 0, retry.backoff.ms >= 0, "
                              "metadata.max.age.ms > 0");
        return NULL;
    }
    kc_client_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->cfg = *cfg;
    c->cfg.bootstrap = NULL; /* the caller's string; the endpoints keep what matters */
    c->controller_id = -1;
    c->own_loop = cfg->loop == NULL;
    c->loop = c->own_loop ? net_loop_new(0) : cfg->loop;
    if (c->loop) {
        c->wake_ev = evtimer_new(net_loop_base(c->loop), wake_cb, c);
        c->md_retry_ev = evtimer_new(net_loop_base(c->loop), md_retry_cb, c);
    }
    if (!c->wake_ev || !c->md_retry_ev) {
        snprintf(err, errlen, "cannot create the event loop");
        kc_client_free(c);
        return NULL;
    }
    if (parse_bootstrap(c, cfg->bootstrap, err, errlen) != 0) {
        kc_client_free(c);
        return NULL;
    }
    return c;
}

void kc_client_free(kc_client_t *c)
{
    if (!c) return;
    while (c->children) c->children->destroy(c->children); /* each removes itself */
    for (kc_req_t *r = c->reqs; r; r = r->next) kc_req_cancel(r);
    if (c->wake_ev) event_free(c->wake_ev);
    if (c->md_retry_ev) event_free(c->md_retry_ev);
    if (c->own_loop) {
        net_loop_free(c->loop); /* frees the peers; runs no callbacks */
    } else {
        for (int i = 0; i < c->n_eps; i++) net_peer_free(c->eps[i]->peer); /* cancelled requests complete now */
    }
    while (c->reqs) {
        kc_req_t *r = c->reqs;
        c->reqs = r->next;
        free(r);
    }
    for (int i = 0; i < c->n_eps; i++) free(c->eps[i]);
    free(c->eps);
    for (int i = 0; i < c->n_topics; i++) {
        free(c->topics[i]->parts);
        free(c->topics[i]);
    }
    free(c->topics);
    free(c->brokers);
    free(c);
}

/* ---- metadata and admin calls (any broker; it forwards admin to the controller) --------------- */

/* Asks any broker, rotating on transport failures and retrying retriable
 * errors with backoff until the deadline. Returns like kc_call. */
static int call_any(kc_client_t *c, wire_msg_t *m, int64_t deadline, const char *what, wire_msg_t **out)
{
    *out = NULL;
    for (int fails = 1;; fails++) {
        wire_msg_t *resp = NULL;
        int rc = kc_call(c, kc_any_endpoint(c), m, deadline, what, &resp);
        if (rc == 0 || !kc_retriable(rc)) {
            *out = resp;
            return rc;
        }
        bool app_error = resp != NULL;
        wire_msg_free(resp);
        kc_rotate(c);
        /* Another endpoint at once after a transport failure; after a round, or
         * an answer saying "not now" (no controller yet), back off. */
        int64_t pause = !app_error && fails % (c->n_brokers + c->n_boot) != 0 ? 0 : c->cfg.retry_backoff_ms;
        if (net_now_ms() + pause >= deadline) return rc;
        if (pause) kc_sleep(c, net_now_ms() + pause);
    }
}

int kc_metadata(kc_client_t *c, const char *const *topics, int n_topics, int timeout_ms, wire_msg_t **out)
{
    *out = NULL;
    if (n_topics < 0 || n_topics > WIRE_MAX_METADATA_TOPICS || (n_topics > 0 && !topics))
        return kc_err(c, KL_EINVAL, "metadata: %d topic names (at most %d)", n_topics, WIRE_MAX_METADATA_TOPICS);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_METADATA, false, 0);
    char(*names)[META_MAX_TOPIC_NAME_LEN + 1] = NULL;
    if (n_topics > 0) {
        names = calloc((size_t)n_topics, sizeof *names);
        if (!names) return kc_err(c, KL_ENOMEM, "metadata: out of memory");
        for (int i = 0; i < n_topics; i++) {
            if (strlen(topics[i]) > META_MAX_TOPIC_NAME_LEN) {
                free(names);
                return kc_err(c, KL_EINVAL, "metadata: topic name '%.40s...' is too long", topics[i]);
            }
            snprintf(names[i], sizeof names[i], "%s", topics[i]);
        }
        m.body.metadata.topics = names;
        m.body.metadata.n_topics = n_topics;
    }
    int rc = call_any(c, &m, deadline_of(timeout_ms), "metadata", out);
    free(names);
    if (rc == 0) md_merge(c, &(*out)->body.metadata_resp, n_topics == 0);
    return rc;
}

int kc_create_topic(kc_client_t *c, const wire_create_topic_req_t *req, int timeout_ms, wire_msg_t **out)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_CREATE_TOPIC, false, 0);
    m.body.create_topic = *req;
    char what[META_MAX_TOPIC_NAME_LEN + 32];
    snprintf(what, sizeof what, "create topic '%s'", req->name);
    return call_any(c, &m, deadline_of(timeout_ms), what, out);
}

int kc_delete_topic(kc_client_t *c, const char *name, int timeout_ms, wire_msg_t **out)
{
    *out = NULL;
    if (!name || strlen(name) > META_MAX_TOPIC_NAME_LEN)
        return kc_err(c, KL_EINVAL, "delete topic: bad topic name");
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_DELETE_TOPIC, false, 0);
    snprintf(m.body.delete_topic.name, sizeof m.body.delete_topic.name, "%s", name);
    char what[META_MAX_TOPIC_NAME_LEN + 32];
    snprintf(what, sizeof what, "delete topic '%s'", name);
    return call_any(c, &m, deadline_of(timeout_ms), what, out);
}

int kc_elect_preferred(kc_client_t *c, const char *topic, int timeout_ms, wire_msg_t **out)
{
    *out = NULL;
    if (topic && strlen(topic) > META_MAX_TOPIC_NAME_LEN)
        return kc_err(c, KL_EINVAL, "leader election: bad topic name");
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_ELECT_LEADERS, false, 0);
    snprintf(m.body.elect_leaders.topic, sizeof m.body.elect_leaders.topic, "%s", topic ? topic : "");
    m.body.elect_leaders.preferred = true;
    return call_any(c, &m, deadline_of(timeout_ms), "preferred leader election", out);
}

int kc_list_offset(kc_client_t *c, const char *topic, int32_t partition, int64_t timestamp, int timeout_ms,
                   int64_t *offset)
{
    int rc = 0;
    kc_topic_t *t = topic ? kc_topic_track(c, topic, &rc) : NULL;
    if (!t) return kc_err(c, topic ? rc : KL_EINVAL, "list offsets: cannot track topic '%s'", topic ? topic : "");
    if (timestamp != WIRE_OFFSET_EARLIEST && timestamp != WIRE_OFFSET_LATEST)
        return kc_err(c, KL_EINVAL, "list offsets: timestamp %" PRId64 " (want earliest or latest)", timestamp);
    int64_t deadline = deadline_of(timeout_ms);
    char what[META_MAX_TOPIC_NAME_LEN + 48];
    snprintf(what, sizeof what, "list offsets of %s-%" PRId32, topic, partition);
    for (;;) {
        if ((rc = kc_topic_ready(c, t, partition, deadline)) != 0) return rc;
        int32_t epoch = WIRE_NO_EPOCH;
        kc_endpoint_t *ep = kc_leader(c, t, partition, &epoch);
        if (ep) {
            wire_msg_t m, *resp = NULL;
            wire_msg_init(&m, WIRE_API_LIST_OFFSETS, false, 0);
            snprintf(m.body.list_offsets.topic, sizeof m.body.list_offsets.topic, "%s", topic);
            m.body.list_offsets.partition = partition;
            m.body.list_offsets.timestamp = timestamp;
            m.body.list_offsets.leader_epoch = epoch;
            rc = kc_call(c, ep, &m, deadline, what, &resp);
            if (rc == 0) *offset = resp->body.list_offsets_resp.offset;
            wire_msg_free(resp);
            if (rc == 0 || !kc_retriable(rc)) return rc;
            if (kc_stale_leader(rc)) kc_md_refresh(c);
        } else {
            rc = kc_err(c, KL_ENOTLEADER, "%s: the partition has no leader", what);
        }
        if (net_now_ms() + c->cfg.retry_backoff_ms >= deadline) return rc;
        kc_sleep(c, net_now_ms() + c->cfg.retry_backoff_ms);
    }
}
