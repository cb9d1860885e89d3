/* listen.c — listeners and inbound connections: accept (bounded), TLS
 * handshake, frame reading with limits, request dispatch and replies. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>

#include "keel/err.h"
#include "keel/log.h"

#include "net_impl.h"

#define NET_LISTEN_BACKLOG 511

struct net_listener {
    net_loop_t *l;
    struct net_listener *next;
    struct evconnlistener *evl;
    struct event *retry_ev; /* re-enables accepting after an accept error */
    net_tls_t *tls;
    net_request_cb on_request;
    net_conn_closed_cb on_closed;
    void *arg;
    char spec[NET_SPEC_LEN];
};

/* The callbacks are copied from the listener so a connection outlives
 * net_stop_listening. */
struct net_conn {
    net_loop_t *l;
    net_conn_id_t id;
    struct bufferevent *bev;
    net_request_cb on_request;
    net_conn_closed_cb on_closed;
    void *arg;
    bool tls;
    bool handshaken;
    bool doomed; /* closed: out of the table, waiting for the reaper */
    struct net_conn *next_doomed;
    char addr[NET_ADDR_LEN];
};

static struct net_conn *conn_find(net_loop_t *l, net_conn_id_t id)
{
    struct net_conn *c = l->conns[id % NET_MAX_CONNS];
    return c && c->id == id ? c : NULL;
}

/* Takes c out of service now; on_closed and the memory go from the reaper
 * event, so no caller (read loop, net_reply's caller) sees c vanish under it. */
static void conn_doom(struct net_conn *c, kl_log_level_t lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void conn_doom(struct net_conn *c, kl_log_level_t lvl, const char *fmt, ...)
{
    if (c->doomed) return;
    char why[NET_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    kl_log_write(lvl, NET_LOG, "closing connection from %s: %s", c->addr, why);
    net_loop_t *l = c->l;
    l->conns[c->id % NET_MAX_CONNS] = NULL;
    l->n_conns--;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    c->doomed = true;
    c->next_doomed = l->doomed;
    l->doomed = c;
    event_active(l->reap_ev, 0, 0);
}

void net_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    net_loop_t *l = arg;
    while (l->doomed) { /* on_closed may doom more: take them too */
        struct net_conn *c = l->doomed;
        l->doomed = c->next_doomed;
        net_bev_close(c->bev);
        if (c->on_closed) c->on_closed(l, c->id, c->arg);
        free(c);
    }
}

/* Unknown API or version: the client gets a clear answer and may go on. */
static void answer_unsupported(struct net_conn *c, wire_msg_t *m, int err)
{
    wire_msg_t resp;
    wire_msg_init(&resp, m->api, true, m->correlation_id); /* version 0: one we speak */
    resp.error = err;
    if (err == KL_EUNKNOWNAPI)
        snprintf(resp.error_message, sizeof resp.error_message, "unknown API %u", m->api);
    else
        snprintf(resp.error_message, sizeof resp.error_message, "%s version %u not supported (max %u)",
                 wire_api_name(m->api), m->version, WIRE_MAX_VERSION);
    KL_INFO(NET_LOG, "answering a request from %s with %s: %s", c->addr, kl_errname(err), resp.error_message);
    wire_msg_free(m);
    int rc = net_reply(c->l, c->id, &resp);
    if (rc != 0 && rc != KL_ECLOSED && rc != KL_EFULL)
        conn_doom(c, KL_LOG_WARN, "cannot encode an error response: %s", kl_strerror(rc));
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct net_conn *c = arg;
    net_loop_t *l = c->l;
    while (!c->doomed) { /* a callback may close c (e.g. net_reply over the limit) */
        uint8_t *frame = NULL;
        size_t flen = 0;
        uint64_t announced = 0;
        int rc = net_frame_pull(bev, l->max_frame, &frame, &flen, &announced);
        if (rc == KL_EAGAIN) return;
        if (rc == KL_ETOOBIG) {
            conn_doom(c, KL_LOG_WARN, "announced frame size %llu exceeds socket.request.max.bytes (%zu)",
                      (unsigned long long)announced, l->max_frame);
            return;
        }
        if (rc != 0) {
            conn_doom(c, KL_LOG_WARN, "bad frame (announced size %llu): %s", (unsigned long long)announced,
                      rc == KL_EPROTO ? wire_last_error() : kl_strerror(rc));
            return;
        }
        wire_msg_t *m = NULL;
        rc = wire_decode(frame, flen, &m);
        if ((rc == KL_EUNKNOWNAPI || rc == KL_EUNSUPPORTED) && m) {
            answer_unsupported(c, m, rc);
            continue;
        }
        if (rc == 0 && m->response) rc = KL_EPROTO;
        if (rc != 0) {
            conn_doom(c, KL_LOG_WARN, "malformed %zu-byte frame: %s", flen,
                      m ? "a response where a request belongs" : wire_last_error());
            wire_msg_free(m);
            return;
        }
        c->on_request(l, c->id, m, c->arg);
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct net_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done */
        c->handshaken = true;
        bufferevent_set_timeouts(bev, NULL, NULL);
        KL_DEBUG(NET_LOG, "TLS connection from %s established", c->addr);
        return;
    }
    char why[NET_ERR_LEN];
    net_tls_reason(bev, what, why, sizeof why);
    if (c->tls && !c->handshaken)
        conn_doom(c, KL_LOG_WARN, "TLS handshake failed: %s", why);
    else
        conn_doom(c, (what & BEV_EVENT_EOF) ? KL_LOG_DEBUG : KL_LOG_INFO, "%s", why);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
                      void *arg)
{
    (void)evl;
    (void)salen;
    struct net_listener *lst = arg;
    net_loop_t *l = lst->l;
    char addr[NET_ADDR_LEN];
    net_sockaddr_str(sa, addr, sizeof addr);
    if (l->n_conns >= NET_MAX_CONNS) {
        KL_WARN(NET_LOG, "refusing connection from %s on %s: %d connections open (NET_MAX_CONNS)", addr,
                lst->spec, NET_MAX_CONNS);
        evutil_closesocket(fd);
        return;
    }
    size_t slot = l->slot_hint;
    while (l->conns[slot]) slot = (slot + 1) % NET_MAX_CONNS;
    l->slot_hint = (slot + 1) % NET_MAX_CONNS;

    struct net_conn *c = calloc(1, sizeof *c);
    if (!c) {
        KL_WARN(NET_LOG, "refusing connection from %s: out of memory", addr);
        evutil_closesocket(fd);
        return;
    }
    net_set_nodelay(fd);
    if (lst->tls) {
        char why[NET_ERR_LEN];
        SSL *ssl = net_tls_ssl_new(lst->tls, NULL, why, sizeof why);
        /* On failure with CLOSE_ON_FREE, libevent frees ssl and the socket. */
        if (ssl) c->bev = bufferevent_openssl_socket_new(l->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                         BEV_OPT_CLOSE_ON_FREE);
        else
            evutil_closesocket(fd);
        if (c->bev) {
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
            struct timeval tv = {NET_CONNECT_TIMEOUT_MS / 1000, (NET_CONNECT_TIMEOUT_MS % 1000) * 1000};
            bufferevent_set_timeouts(c->bev, &tv, &tv); /* a silent client cannot hold a slot */
        }
    } else {
        c->bev = bufferevent_socket_new(l->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) evutil_closesocket(fd);
    }
    if (!c->bev) {
        KL_WARN(NET_LOG, "refusing connection from %s: cannot set up the connection", addr);
        free(c);
        return;
    }
    c->l = l;
    c->id = ++l->conn_seq * NET_MAX_CONNS + slot;
    c->on_request = lst->on_request;
    c->on_closed = lst->on_closed;
    c->arg = lst->arg;
    c->tls = lst->tls != NULL;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    l->conns[slot] = c;
    l->n_conns++;
    bufferevent_setcb(c->bev, conn_read_cb, NULL, conn_event_cb, c);
    net_bev_setup(c->bev);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    KL_DEBUG(NET_LOG, "accepted connection %llu from %s on %s", (unsigned long long)c->id, addr, lst->spec);
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct net_listener *lst = arg;
    int e = EVUTIL_SOCKET_ERROR();
    KL_WARN(NET_LOG, "accept on %s failed: %s; pausing for %d ms", lst->spec, evutil_socket_error_to_string(e),
            NET_ACCEPT_RETRY_MS);
    evconnlistener_disable(evl);
    struct timeval tv = {0, NET_ACCEPT_RETRY_MS * 1000};
    evtimer_add(lst->retry_ev, &tv);
}

static void accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct net_listener *lst = arg;
    evconnlistener_enable(lst->evl);
}

int net_listen(net_loop_t *l, const char *spec, net_tls_t *tls, net_request_cb on_request,
               net_conn_closed_cb on_closed, void *arg, int *bound_port)
{
    if (!l || !spec || !on_request) return KL_EINVAL;
    static const char plain[] = "PLAINTEXT://", ssl[] = "SSL://";
    bool is_ssl = strncmp(spec, ssl, sizeof ssl - 1) == 0;
    const char *hp = is_ssl ? spec + sizeof ssl - 1
                            : strncmp(spec, plain, sizeof plain - 1) == 0 ? spec + sizeof plain - 1 : NULL;
    char host[WIRE_HOST_LEN];
    int port = 0;
    if (!hp || net_parse_hostport_any(hp, host, sizeof host, &port) != 0) {
        KL_ERROR(NET_LOG, "bad listener '%s' (want PLAINTEXT://host:port or SSL://host:port)", spec);
        return KL_EINVAL;
    }
    if (is_ssl && (!tls || !net_tls_is_server(tls))) {
        KL_ERROR(NET_LOG, "listener '%s' needs a server TLS configuration", spec);
        return KL_ECONFIG;
    }
    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    int n_addrs = 0;
    char why[NET_ERR_LEN];
    if (net_resolve(host, port, true, &ss, &sslen, 1, &n_addrs, why, sizeof why) != 0) {
        KL_ERROR(NET_LOG, "cannot listen on %s: %s", spec, why);
        return KL_EIO;
    }
    struct net_listener *lst = calloc(1, sizeof *lst);
    if (!lst) return KL_ENOMEM;
    lst->l = l;
    lst->tls = is_ssl ? tls : NULL;
    lst->on_request = on_request;
    lst->on_closed = on_closed;
    lst->arg = arg;
    snprintf(lst->spec, sizeof lst->spec, "%s", spec);
    lst->retry_ev = evtimer_new(l->base, accept_retry_cb, lst);
    lst->evl = lst->retry_ev ? evconnlistener_new_bind(l->base, accept_cb, lst,
                                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                                           LEV_OPT_CLOSE_ON_EXEC,
                                                       NET_LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)sslen)
                             : NULL;
    if (!lst->evl) {
        KL_ERROR(NET_LOG, "cannot listen on %s: %s", spec,
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        if (lst->retry_ev) event_free(lst->retry_ev);
        free(lst);
        return KL_EIO;
    }
    evconnlistener_set_error_cb(lst->evl, accept_error_cb);
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(evconnlistener_get_fd(lst->evl), (struct sockaddr *)&bound, &blen);
    char baddr[NET_ADDR_LEN];
    net_sockaddr_str((struct sockaddr *)&bound, baddr, sizeof baddr);
    const char *colon = strrchr(baddr, ':');
    if (bound_port) *bound_port = colon ? atoi(colon + 1) : port;
    lst->next = l->listeners;
    l->listeners = lst;
    KL_INFO(NET_LOG, "listening on %s (%s)", baddr, is_ssl ? "SSL" : "PLAINTEXT");
    return 0;
}

void net_stop_listening(net_loop_t *l)
{
    while (l->listeners) {
        struct net_listener *lst = l->listeners;
        l->listeners = lst->next;
        evconnlistener_free(lst->evl);
        event_free(lst->retry_ev);
        free(lst);
    }
}

int net_reply(net_loop_t *l, net_conn_id_t conn, const wire_msg_t *resp)
{
    struct net_conn *c = conn_find(l, conn);
    if (!c) return KL_ECLOSED;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    int rc = net_send_msg(c->bev, out, resp);
    if (rc != 0) return rc;
    size_t unsent = evbuffer_get_length(out);
    if (unsent > NET_MAX_OUTPUT_BYTES) {
        conn_doom(c, KL_LOG_WARN, "%zu bytes of unsent output exceed %u (NET_MAX_OUTPUT_BYTES): too slow a reader",
                  unsent, NET_MAX_OUTPUT_BYTES);
        return KL_EFULL;
    }
    return 0;
}

void net_conn_close(net_loop_t *l, net_conn_id_t conn)
{
    struct net_conn *c = conn_find(l, conn);
    if (c) conn_doom(c, KL_LOG_DEBUG, "closed by this side");
}

const char *net_conn_addr(net_loop_t *l, net_conn_id_t conn)
{
    struct net_conn *c = conn_find(l, conn);
    return c ? c->addr : "?";
}

void net_conns_free_all(net_loop_t *l)
{
    for (size_t i = 0; i < NET_MAX_CONNS; i++) {
        struct net_conn *c = l->conns[i];
        if (!c) continue;
        net_bev_close(c->bev);
        free(c);
        l->conns[i] = NULL;
    }
    l->n_conns = 0;
    while (l->doomed) {
        struct net_conn *c = l->doomed;
        l->doomed = c->next_doomed;
        net_bev_close(c->bev);
        free(c);
    }
}
