/* loop.c — the event loop, clocks, address helpers and the frame reader that
 * inbound connections and outbound peers share. */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/log.h"

#include "net_impl.h"

net_loop_t *net_loop_new(size_t max_frame)
{
    /* A peer that vanishes mid-write must surface as EPIPE on that connection,
     * not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    net_loop_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->max_frame = max_frame ? max_frame : WIRE_DEFAULT_MAX_FRAME;
    l->max_resp_frame = l->max_frame > WIRE_DEFAULT_MAX_FRAME ? l->max_frame : WIRE_DEFAULT_MAX_FRAME;
    l->base = event_base_new();
    if (l->base) l->reap_ev = event_new(l->base, -1, 0, net_reap_cb, l);
    if (!l->reap_ev) {
        if (l->base) event_base_free(l->base);
        free(l);
        return NULL;
    }
    kl_rng_seed(&l->rng, (uint64_t)net_now_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)l);
    return l;
}

int net_loop_set_source(net_loop_t *l, const char *ip)
{
    memset(&l->source, 0, sizeof l->source);
    l->source_len = 0;
    if (!ip || !*ip) return 0;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&l->source;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&l->source;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        l->source_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        l->source_len = sizeof *v6;
    } else {
        return KL_EINVAL;
    }
    /* Not an address of this host: every connection would fail with EADDRNOTAVAIL, so say so now. */
    int fd = socket(l->source.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fd >= 0 && bind(fd, (const struct sockaddr *)&l->source, l->source_len) == 0 ? 0 : KL_ECONFIG;
    if (fd >= 0) close(fd);
    if (rc) {
        memset(&l->source, 0, sizeof l->source);
        l->source_len = 0;
    }
    return rc;
}

void net_loop_free(net_loop_t *l)
{
    if (!l) return;
    net_peers_free_all(l);
    net_stop_listening(l);
    net_conns_free_all(l);
    event_free(l->reap_ev);
    event_base_free(l->base);
    free(l);
}

struct event_base *net_loop_base(net_loop_t *l) { return l->base; }

int net_loop_run(net_loop_t *l)
{
    return event_base_loop(l->base, EVLOOP_NO_EXIT_ON_EMPTY) < 0 ? KL_EIO : 0;
}

void net_loop_stop(net_loop_t *l) { event_base_loopbreak(l->base); }

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t net_now_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t net_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

/* ---- frames -------------------------------------------------------------- */

void net_bev_setup(struct bufferevent *bev)
{
    bufferevent_setwatermark(bev, EV_READ, 0, NET_READ_HIGH_WATER);
    /* libevent writes 16 KiB per writable event by default: a 1 MiB fetch
     * answer took 64 trips through the loop. */
    bufferevent_set_max_single_write(bev, NET_MAX_SINGLE_WRITE);
}

/* libevent 2.1 reads at most 4096 bytes per readable event (its
 * EVBUFFER_MAX_READ), each after an FIONREAD ioctl, so a 64 KiB produce took
 * 16 trips through epoll. Once the prefix has told how much of the frame is
 * missing, that much is read straight from the socket into the input buffer
 * (whose end the bufferevent keeps frozen except while it reads, so do we);
 * an empty read (nothing yet, EOF, error) is left for the bufferevent's own
 * read to find. TLS bytes must go through their bufferevent. Returns the
 * bytes added. */
static size_t read_missing(struct bufferevent *bev, struct evbuffer *in, size_t want)
{
    const evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0 || bufferevent_openssl_get_ssl(bev)) return 0;
    evbuffer_unfreeze(in, 0);
    size_t got = 0;
    while (got < want) {
        struct evbuffer_iovec v[2];
        /* in steps: memory grows with what arrives, not with what a frame announces */
        const size_t ask = want - got < NET_READ_HIGH_WATER ? want - got : NET_READ_HIGH_WATER;
        const int n = evbuffer_reserve_space(in, (ev_ssize_t)ask, v, 2);
        if (n <= 0) break;
        struct iovec iov[2];
        int k = 0;
        for (size_t left = ask; k < n && left > 0; k++) {
            iov[k].iov_base = v[k].iov_base;
            iov[k].iov_len = v[k].iov_len < left ? v[k].iov_len : left;
            left -= iov[k].iov_len;
        }
        const ssize_t r = readv(fd, iov, k);
        size_t rem = r > 0 ? (size_t)r : 0;
        int used = 0;
        for (; used < k && rem > 0; used++) {
            v[used].iov_len = iov[used].iov_len < rem ? iov[used].iov_len : rem;
            rem -= v[used].iov_len;
        }
        evbuffer_commit_space(in, v, used);
        if (r <= 0) break;
        got += (size_t)r;
        if ((size_t)r < ask) break; /* the socket is drained for now */
    }
    evbuffer_freeze(in, 0);
    return got;
}

static void set_read_high_water(struct bufferevent *bev, size_t high)
{
    size_t lo = 0, hi = 0;
    bufferevent_getwatermark(bev, EV_READ, &lo, &hi);
    if (hi != high) bufferevent_setwatermark(bev, EV_READ, 0, high);
}

int net_frame_pull(struct bufferevent *bev, size_t max_frame, uint8_t **frame, size_t *frame_len,
                   uint64_t *announced)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t avail = evbuffer_get_length(in);
    uint8_t prefix[WIRE_LEN_PREFIX];
    if (avail < sizeof prefix) {
        set_read_high_water(bev, NET_READ_HIGH_WATER);
        return KL_EAGAIN;
    }
    evbuffer_copyout(in, prefix, sizeof prefix);
    *announced = kl_get_be32(prefix);
    /* Judge the announced length from the prefix alone, before buffering the
     * body: an oversized frame is refused without reading it. */
    size_t need = 0;
    int rc = wire_frame_split(prefix, sizeof prefix, max_frame, &need);
    if (rc != KL_EAGAIN) return rc == 0 ? KL_EPROTO : rc;
    need = (size_t)*announced + WIRE_LEN_PREFIX;
    if (avail < need) avail += read_missing(bev, in, need - avail);
    if (avail < need) {
        set_read_high_water(bev, need > NET_READ_HIGH_WATER ? need : NET_READ_HIGH_WATER);
        return KL_EAGAIN;
    }
    uint8_t *f = malloc(need);
    if (!f) return KL_ENOMEM;
    evbuffer_remove(in, f, need);
    size_t len = 0;
    rc = wire_frame_split(f, need, max_frame, &len);
    KL_ASSERT(rc == 0 && len == need); /* same prefix as judged above */
    *frame = f;
    *frame_len = len;
    return 0;
}

static void free_ref(const void *data, size_t len, void *base)
{
    (void)data;
    (void)len;
    free(base);
}

/* Bytes of a frame sent at once, when nothing is queued before it on a
 * plaintext connection: the answer leaves now instead of on the next loop
 * turn, and the bufferevent need not watch for writability (two epoll_ctl
 * and one epoll_wait per answer otherwise). Errors are left for the
 * bufferevent to find on the bytes then queued. */
static size_t send_now(struct bufferevent *bev, struct evbuffer *out, const uint8_t *data, size_t len)
{
    if (!bev || evbuffer_get_length(out) > 0 || bufferevent_openssl_get_ssl(bev)) return 0;
    const evutil_socket_t fd = bufferevent_getfd(bev);
    const ssize_t n = fd < 0 ? -1 : send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n > 0 ? (size_t)n : 0;
}

int net_send_msg(struct bufferevent *bev, struct evbuffer *out, const wire_msg_t *m)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    int rc = wire_encode(m, &b);
    if (rc != 0) {
        kl_buf_free(&b);
        return rc;
    }
    size_t len = 0;
    uint8_t *data = kl_buf_steal(&b, &len);
    const size_t sent = send_now(bev, out, data, len);
    if (sent == len) {
        free(data);
        return 0;
    }
    if (evbuffer_add_reference(out, data + sent, len - sent, free_ref, data) != 0) {
        free(data);
        return KL_ENOMEM;
    }
    return 0;
}

/* ---- addresses ----------------------------------------------------------- */

int net_resolve(const char *host, int port, bool passive, struct sockaddr_storage *ss, socklen_t *lens,
                int max, int *n, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo *res = NULL;
    int g = getaddrinfo(host[0] ? host : NULL, service, &hints, &res);
    if (g != 0 || !res) {
        snprintf(err, errlen, "cannot resolve '%s': %s", host, g ? gai_strerror(g) : "no address");
        return KL_ECONNECT;
    }
    *n = 0;
    for (struct addrinfo *a = res; a && *n < max; a = a->ai_next) {
        KL_ASSERT(a->ai_addrlen <= sizeof *ss);
        memcpy(&ss[*n], a->ai_addr, a->ai_addrlen);
        lens[(*n)++] = a->ai_addrlen;
    }
    freeaddrinfo(res);
    return 0;
}

void net_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%d", ip, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%d", ip, ntohs(s6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

void net_set_nodelay(evutil_socket_t fd)
{
    /* Request/response traffic: a small frame must not wait for Nagle. */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int net_parse_hostport_any(const char *s, char *host, size_t hostlen, int *port)
{
    if (!s || !host || hostlen == 0 || !port) return KL_EINVAL;
    const char *h = s, *colon;
    size_t hlen;
    if (s[0] == '[') { /* "[v6]:port" */
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return KL_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0) return KL_EINVAL;
    } else {
        colon = strrchr(s, ':');
        if (!colon) return KL_EINVAL;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen)) return KL_EINVAL; /* bare IPv6 needs brackets */
    }
    const char *p = colon + 1;
    if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p)) return KL_EINVAL;
    int v = atoi(p);
    if (v > 65535 || hlen >= hostlen) return KL_EINVAL;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = v;
    return 0;
}

int net_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    int rc = net_parse_hostport_any(s, host, hostlen, port);
    if (rc == 0 && !host[0]) return KL_EINVAL;
    return rc;
}
