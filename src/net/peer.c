/* peer.c — outbound peers: lazy connect, TLS handshake, jittered exponential
 * reconnect, request/response correlation, per-request timeouts and the
 * exactly-once completion of every request. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "keel/err.h"
#include "keel/log.h"

#include "net_impl.h"

typedef enum peer_state {
    PEER_IDLE,       /* never tried; the first request schedules a connect */
    PEER_BACKOFF,    /* last attempt failed or connection lost; retry_ev pending */
    PEER_CONNECTING, /* TCP connect in progress on fd */
    PEER_HANDSHAKE,  /* TLS handshake in progress on bev */
    PEER_UP
} peer_state_t;

struct net_pending {
    struct net_pending *prev, *next;
    net_peer_t *p;
    uint64_t corr;
    net_response_cb cb;
    void *arg;
    struct event *timer; /* timeout, or the deferred delivery of a preset error */
    int err;             /* preset failure delivered by the timer at once */
    bool inflight;       /* queued for the wire and counted in n_inflight */
};

struct net_peer {
    net_loop_t *l;
    struct net_peer *prev, *next; /* the loop's peers */
    char host[WIRE_HOST_LEN];
    int port;
    char name[WIRE_HOST_LEN + 16];
    net_tls_t *tls;
    net_peer_state_cb on_state;
    void *arg;
    peer_state_t state;
    struct sockaddr_storage addrs[NET_MAX_ADDRS]; /* this attempt's addresses, tried in turn */
    socklen_t addr_lens[NET_MAX_ADDRS];
    int n_addrs, addr_i;
    evutil_socket_t fd;       /* PEER_CONNECTING */
    struct event *connect_ev; /* PEER_CONNECTING: writable or timed out */
    struct bufferevent *bev;  /* PEER_HANDSHAKE, PEER_UP */
    struct evbuffer *outq;    /* requests written before the connection is up */
    struct event *retry_ev;   /* next connection attempt */
    int failures;             /* consecutive failures: the backoff exponent */
    int64_t last_attempt_ms;  /* when the last connection attempt started */
    uint64_t next_corr;
    struct net_pending *pending, *pending_tail;
    int n_inflight;
    int depth;    /* this peer's callbacks on the stack: free waits for 0 */
    bool freeing; /* net_peer_free called */
    char last_err[NET_ERR_LEN];
};

static void peer_enter(net_peer_t *p) { p->depth++; }
static void peer_destroy(net_peer_t *p);
static void peer_leave(net_peer_t *p)
{
    if (--p->depth == 0 && p->freeing) peer_destroy(p);
}

/* ---- completion ------------------------------------------------------------ */

static void pending_unlink(net_peer_t *p, struct net_pending *q)
{
    if (q->prev) q->prev->next = q->next;
    else p->pending = q->next;
    if (q->next) q->next->prev = q->prev;
    else p->pending_tail = q->prev;
    if (q->inflight) p->n_inflight--;
    event_free(q->timer);
}

/* Runs q's callback (its one and only run) after forgetting q, so the
 * callback may send, free the peer, or anything else. */
static void deliver(net_peer_t *p, struct net_pending *q, int err, wire_msg_t *resp)
{
    net_response_cb cb = q->cb;
    void *arg = q->arg;
    pending_unlink(p, q);
    free(q);
    cb(p, err, resp, arg);
}

static void fail_inflight(net_peer_t *p, int err)
{
    for (;;) {
        if (p->freeing) return; /* net_peer_free has failed the rest */
        struct net_pending *q = p->pending;
        while (q && !q->inflight) q = q->next;
        if (!q) return;
        deliver(p, q, err, NULL);
    }
}

static void pending_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct net_pending *q = arg;
    net_peer_t *p = q->p;
    int err = q->err ? q->err : KL_ETIMEOUT;
    if (err == KL_ETIMEOUT)
        KL_DEBUG(NET_LOG, "request %llu to %s timed out", (unsigned long long)q->corr, p->name);
    peer_enter(p);
    deliver(p, q, err, NULL);
    peer_leave(p);
}

/* ---- connection life cycle --------------------------------------------------- */

static void close_transport(net_peer_t *p)
{
    if (p->connect_ev) {
        event_free(p->connect_ev);
        p->connect_ev = NULL;
    }
    if (p->fd >= 0) {
        evutil_closesocket(p->fd);
        p->fd = -1;
    }
    if (p->bev) {
        net_bev_close(p->bev);
        p->bev = NULL;
    }
    evbuffer_drain(p->outq, evbuffer_get_length(p->outq));
}

/* Exponential in the number of consecutive failures, +-20% jitter so peers
 * that failed together do not retry together, within the configured bounds. */
static int backoff_ms(net_peer_t *p)
{
    int64_t base = NET_RECONNECT_MIN_MS;
    for (int i = 1; i < p->failures && base < NET_RECONNECT_MAX_MS; i++) base *= 2;
    int64_t d = kl_rng_range(&p->l->rng, base * 4 / 5, base * 6 / 5 + 1);
    if (d < NET_RECONNECT_MIN_MS) d = NET_RECONNECT_MIN_MS;
    if (d > NET_RECONNECT_MAX_MS) d = NET_RECONNECT_MAX_MS;
    return (int)d;
}

/* A connection attempt failed or an established connection was lost: every
 * request on the wire fails with err, a retry is scheduled, and on_state
 * hears about it (Raft turns that into PEER_DOWN). */
static void peer_down(net_peer_t *p, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void peer_down(net_peer_t *p, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->last_err, sizeof p->last_err, fmt, ap);
    va_end(ap);
    bool was_up = p->state == PEER_UP;
    close_transport(p);
    p->state = PEER_BACKOFF;
    p->failures++;
    int delay = backoff_ms(p);
    struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
    evtimer_add(p->retry_ev, &tv);
    kl_log_write(was_up || p->failures == 1 ? KL_LOG_INFO : KL_LOG_DEBUG, NET_LOG, "%s; retrying in %d ms",
                 p->last_err, delay);
    fail_inflight(p, err);
    if (!p->freeing && p->on_state) p->on_state(p, false, p->arg);
}

static void peer_up(net_peer_t *p)
{
    p->state = PEER_UP;
    p->failures = 0;
    bufferevent_set_timeouts(p->bev, NULL, NULL);
    bufferevent_write_buffer(p->bev, p->outq);
    KL_INFO(NET_LOG, "connected to %s%s", p->name, p->tls ? " (TLS)" : "");
    if (p->on_state) p->on_state(p, true, p->arg);
}

static void peer_read_cb(struct bufferevent *bev, void *arg)
{
    net_peer_t *p = arg;
    peer_enter(p);
    while (p->bev == bev && !p->freeing) {
        uint8_t *frame = NULL;
        size_t flen = 0;
        uint64_t announced = 0;
        int rc = net_frame_pull(bev, p->l->max_resp_frame, &frame, &flen, &announced);
        if (rc == KL_EAGAIN) break;
        if (rc != 0) {
            peer_down(p, KL_ECLOSED, "connection to %s dropped: bad response frame (announced size %llu): %s",
                      p->name, (unsigned long long)announced,
                      rc == KL_ENOMEM ? kl_strerror(rc) : wire_last_error());
            break;
        }
        wire_msg_t *m = NULL;
        rc = wire_decode(frame, flen, &m);
        bool answerable = m && (rc == 0 || rc == KL_EUNKNOWNAPI || rc == KL_EUNSUPPORTED) && m->response;
        if (!answerable) {
            peer_down(p, KL_ECLOSED, "connection to %s dropped: malformed response: %s", p->name,
                      m ? "a request where a response belongs" : wire_last_error());
            wire_msg_free(m);
            break;
        }
        struct net_pending *q = p->pending;
        while (q && !(q->inflight && q->corr == m->correlation_id)) q = q->next;
        if (!q) { /* its request timed out: the caller has moved on */
            KL_DEBUG(NET_LOG, "dropping late response %llu from %s", (unsigned long long)m->correlation_id,
                     p->name);
            wire_msg_free(m);
        } else if (rc != 0) {
            wire_msg_free(m);
            deliver(p, q, rc, NULL);
        } else {
            deliver(p, q, 0, m);
        }
    }
    peer_leave(p);
}

static void peer_event_cb(struct bufferevent *bev, short what, void *arg)
{
    net_peer_t *p = arg;
    peer_enter(p);
    if (what & BEV_EVENT_CONNECTED) {
        peer_up(p);
    } else {
        char why[NET_ERR_LEN];
        net_tls_reason(bev, what, why, sizeof why);
        if (p->state == PEER_HANDSHAKE)
            peer_down(p, KL_ETLS, "TLS handshake with %s failed: %s", p->name, why);
        else
            peer_down(p, KL_ECLOSED, "connection to %s lost: %s", p->name, why);
    }
    peer_leave(p);
}

/* TCP is up on fd: wrap it (TLS handshake first, if configured). */
static void peer_tcp_up(net_peer_t *p, evutil_socket_t fd)
{
    p->fd = -1;
    struct bufferevent *bev = NULL;
    if (p->tls) {
        char why[NET_ERR_LEN];
        SSL *ssl = net_tls_ssl_new(p->tls, p->host, why, sizeof why);
        if (!ssl) {
            evutil_closesocket(fd);
            peer_down(p, KL_ETLS, "TLS handshake with %s failed: %s", p->name, why);
            return;
        }
        /* With CLOSE_ON_FREE libevent owns ssl and fd from here, even on failure. */
        bev = bufferevent_openssl_socket_new(p->l->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE);
        if (bev) {
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
            struct timeval tv = {NET_CONNECT_TIMEOUT_MS / 1000, (NET_CONNECT_TIMEOUT_MS % 1000) * 1000};
            bufferevent_set_timeouts(bev, &tv, &tv);
        }
    } else {
        bev = bufferevent_socket_new(p->l->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!bev) evutil_closesocket(fd);
    }
    if (!bev) {
        peer_down(p, KL_ENOMEM, "connection to %s: cannot set up a buffer", p->name);
        return;
    }
    p->bev = bev;
    p->state = p->tls ? PEER_HANDSHAKE : PEER_UP;
    bufferevent_setcb(bev, peer_read_cb, NULL, peer_event_cb, p);
    net_bev_setup(bev);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (!p->tls) peer_up(p);
}

static void try_next_addr(net_peer_t *p, const char *why);

static void connect_cb(evutil_socket_t fd, short what, void *arg)
{
    net_peer_t *p = arg;
    peer_enter(p);
    event_free(p->connect_ev);
    p->connect_ev = NULL;
    int e = 0;
    socklen_t elen = sizeof e;
    char why[NET_ERR_LEN] = "";
    if (what & EV_TIMEOUT)
        snprintf(why, sizeof why, "timed out after %d ms", NET_CONNECT_TIMEOUT_MS);
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0 || e != 0)
        snprintf(why, sizeof why, "%s", strerror(e ? e : errno));
    if (why[0]) {
        evutil_closesocket(fd);
        p->fd = -1;
        p->addr_i++;
        try_next_addr(p, why);
    } else {
        peer_tcp_up(p, fd);
    }
    peer_leave(p);
}

/* socket.source.address: port 0, so only the address is fixed, and
 * IP_BIND_ADDRESS_NO_PORT (best effort) lets connect() pick the port per
 * destination instead of reserving one for good at bind(). */
static int bind_source(const net_loop_t *l, evutil_socket_t fd)
{
    const int one = 1;
    (void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    return bind(fd, (const struct sockaddr *)&l->source, l->source_len);
}

/* Non-blocking connect done by hand, so a refusal reports its own errno.
 * Each address of the host is tried in turn (e.g. "localhost" -> ::1, then
 * 127.0.0.1); the attempt fails with the last address's reason. */
static void try_next_addr(net_peer_t *p, const char *why)
{
    char last[NET_ERR_LEN];
    snprintf(last, sizeof last, "%s", why);
    for (; p->addr_i < p->n_addrs; p->addr_i++) {
        struct sockaddr *sa = (struct sockaddr *)&p->addrs[p->addr_i];
        evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            snprintf(last, sizeof last, "%s", strerror(errno));
            continue;
        }
        net_set_nodelay(fd);
        /* A family mismatch (IPv6 peer, IPv4 source) connects unbound. */
        if (p->l->source_len && p->l->source.ss_family == sa->sa_family && bind_source(p->l, fd) != 0) {
            snprintf(last, sizeof last, "cannot bind to socket.source.address: %s", strerror(errno));
            evutil_closesocket(fd);
            continue;
        }
        if (connect(fd, sa, p->addr_lens[p->addr_i]) == 0) {
            peer_tcp_up(p, fd);
            return;
        }
        if (errno == EINPROGRESS) {
            p->connect_ev = event_new(p->l->base, fd, EV_WRITE, connect_cb, p);
            struct timeval tv = {NET_CONNECT_TIMEOUT_MS / 1000, (NET_CONNECT_TIMEOUT_MS % 1000) * 1000};
            if (p->connect_ev && event_add(p->connect_ev, &tv) == 0) {
                p->fd = fd;
                p->state = PEER_CONNECTING;
                return;
            }
            if (p->connect_ev) event_free(p->connect_ev);
            p->connect_ev = NULL;
            snprintf(last, sizeof last, "cannot watch the socket");
        } else {
            snprintf(last, sizeof last, "%s", strerror(errno));
        }
        evutil_closesocket(fd);
    }
    peer_down(p, KL_ECONNECT, "connect to %s: %s", p->name, last);
}

static void peer_connect(net_peer_t *p)
{
    char why[NET_ERR_LEN];
    p->last_attempt_ms = net_now_ms();
    p->addr_i = p->n_addrs = 0;
    if (net_resolve(p->host, p->port, false, p->addrs, p->addr_lens, NET_MAX_ADDRS, &p->n_addrs, why,
                    sizeof why) != 0) {
        peer_down(p, KL_ECONNECT, "connect to %s: %s", p->name, why);
        return;
    }
    try_next_addr(p, "no address");
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    net_peer_t *p = arg;
    peer_enter(p);
    peer_connect(p);
    peer_leave(p);
}

/* ---- public ---------------------------------------------------------------- */

net_peer_t *net_peer_new(net_loop_t *l, const char *host, int port, net_tls_t *tls,
                         net_peer_state_cb on_state, void *arg)
{
    if (!l || !host || !host[0] || strlen(host) >= WIRE_HOST_LEN || port <= 0 || port > 65535) return NULL;
    if (tls && net_tls_is_server(tls)) return NULL;
    net_peer_t *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->l = l;
    snprintf(p->host, sizeof p->host, "%s", host);
    p->port = port;
    snprintf(p->name, sizeof p->name, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
    p->tls = tls;
    p->on_state = on_state;
    p->arg = arg;
    p->fd = -1;
    p->outq = evbuffer_new();
    p->retry_ev = evtimer_new(l->base, retry_cb, p);
    if (!p->outq || !p->retry_ev) {
        if (p->outq) evbuffer_free(p->outq);
        if (p->retry_ev) event_free(p->retry_ev);
        free(p);
        return NULL;
    }
    p->next = l->peers;
    if (l->peers) l->peers->prev = p;
    l->peers = p;
    return p;
}

static void peer_destroy(net_peer_t *p)
{
    close_transport(p);
    while (p->pending) { /* only on net_loop_free: no callbacks */
        struct net_pending *q = p->pending;
        pending_unlink(p, q);
        free(q);
    }
    event_free(p->retry_ev);
    evbuffer_free(p->outq);
    if (p->prev) p->prev->next = p->next;
    else p->l->peers = p->next;
    if (p->next) p->next->prev = p->prev;
    free(p);
}

void net_peer_free(net_peer_t *p)
{
    if (!p || p->freeing) return;
    p->freeing = true;
    peer_enter(p);
    while (p->pending) deliver(p, p->pending, p->pending->err ? p->pending->err : KL_ECLOSED, NULL);
    peer_leave(p); /* destroys now, or when the outermost callback returns */
}

void net_peers_free_all(net_loop_t *l)
{
    while (l->peers) peer_destroy(l->peers);
}

int net_request(net_peer_t *p, wire_msg_t *req, int timeout_ms, net_response_cb cb, void *arg)
{
    KL_ASSERT(p && req && cb);
    KL_ASSERT(!p->freeing); /* a peer being freed takes no more requests */
    struct net_pending *q = calloc(1, sizeof *q);
    if (!q) return KL_ENOMEM;
    q->timer = evtimer_new(p->l->base, pending_timer_cb, q);
    if (!q->timer) {
        free(q);
        return KL_ENOMEM;
    }
    q->p = p;
    q->cb = cb;
    q->arg = arg;
    q->corr = ++p->next_corr;
    q->prev = p->pending_tail;
    if (p->pending_tail) p->pending_tail->next = q;
    else p->pending = q;
    p->pending_tail = q;

    int err = 0;
    if (p->n_inflight >= NET_MAX_INFLIGHT) {
        err = KL_EFULL;
    } else if (p->state == PEER_BACKOFF && net_now_ms() - p->last_attempt_ms < NET_RECONNECT_MIN_MS) {
        err = KL_ECONNECT; /* just failed: fail fast; net_peer_last_error says why */
    } else {
        /* A request is evidence the peer is wanted now: a node that restarted
         * must be reachable for the next election at once, not after a backoff
         * grown while it was down. Attempts stay at most one per
         * NET_RECONNECT_MIN_MS, and callers pace their requests anyway. */
        if (p->state == PEER_BACKOFF) {
            evtimer_del(p->retry_ev);
            p->state = PEER_IDLE;
        }
        req->correlation_id = q->corr;
        struct bufferevent *bev = p->state == PEER_UP ? p->bev : NULL;
        struct evbuffer *out = bev ? bufferevent_get_output(bev) : p->outq;
        err = evbuffer_get_length(out) > NET_MAX_OUTPUT_BYTES ? KL_EFULL : net_send_msg(bev, out, req);
    }
    if (err) {
        q->err = err;
        struct timeval now = {0, 0};
        evtimer_add(q->timer, &now);
        return 0;
    }
    q->inflight = true;
    p->n_inflight++;
    if (timeout_ms > 0) {
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        evtimer_add(q->timer, &tv);
    }
    if (p->state == PEER_IDLE && !evtimer_pending(p->retry_ev, NULL)) {
        struct timeval now = {0, 0};
        evtimer_add(p->retry_ev, &now); /* lazy connect, outside the caller's stack */
    }
    return 0;
}

bool net_peer_connected(const net_peer_t *p) { return p->state == PEER_UP && !p->freeing; }
const char *net_peer_name(const net_peer_t *p) { return p->name; }
const char *net_peer_last_error(const net_peer_t *p) { return p->last_err; }
