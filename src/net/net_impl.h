/* net_impl.h — private to src/net: the loop's shared state and the helpers the
 * listener, peer, TLS and call files share. Nothing outside src/net includes it. */
#ifndef KEEL_NET_IMPL_H
#define KEEL_NET_IMPL_H

#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "keel/net.h"
#include "keel/rng.h"

#define NET_LOG "net"
/* Input buffered per connection, unless a bigger (already length-checked)
 * frame is being assembled. */
#define NET_READ_HIGH_WATER (1u << 20)
#define NET_MAX_SINGLE_WRITE (1u << 20) /* bytes one writable event may send (libevent's default is 16 KiB) */
#define NET_CONNECT_TIMEOUT_MS 10000   /* TCP connect, and the TLS handshake after it */
#define NET_ACCEPT_RETRY_MS 100        /* pause after accept() fails (e.g. EMFILE) instead of spinning */
#define NET_ADDR_LEN 64                /* "[v6 address]:port" */
#define NET_ERR_LEN 256
#define NET_SPEC_LEN (WIRE_HOST_LEN + 32)
#define NET_MAX_ADDRS 8 /* addresses of one host tried in turn per connection attempt */

struct net_conn;
struct net_listener;

struct net_loop {
    struct event_base *base;
    size_t max_frame;        /* inbound requests (socket.request.max.bytes) */
    size_t max_resp_frame;   /* responses read by peers: never below the wire default */
    kl_rng_t rng;            /* reconnect jitter */
    struct sockaddr_storage source; /* socket.source.address; ss_family AF_UNSPEC = none */
    socklen_t source_len;
    uint64_t conn_seq;       /* conn id = seq * NET_MAX_CONNS + slot: never reused */
    struct net_conn *conns[NET_MAX_CONNS];
    size_t n_conns;
    size_t slot_hint;
    struct net_conn *doomed; /* closed, waiting for the reaper to run on_closed and free */
    struct event *reap_ev;
    struct net_listener *listeners;
    struct net_peer *peers;
};

/* loop.c */
/* Buffering limits every connection gets, inbound or outbound. */
void net_bev_setup(struct bufferevent *bev);
/* Takes the next whole frame (malloc'd) out of bev's input: 0, or KL_EAGAIN
 * when more bytes are needed (the read high-watermark is then raised to fit
 * the announced frame, which was already checked against max_frame), or
 * KL_ETOOBIG / KL_EPROTO for a bad announced length. *announced is the
 * length field (the frame size after the prefix, the quantity max_frame
 * bounds). Nothing of a bad frame is buffered. */
int net_frame_pull(struct bufferevent *bev, size_t max_frame, uint8_t **frame, size_t *frame_len,
                   uint64_t *announced);
/* Encodes m and queues it on out (bev's output, or a buffer of a connection
 * not up yet: bev NULL) without copying; on a plaintext bev with nothing
 * queued, what the socket takes at once is sent right away. */
int net_send_msg(struct bufferevent *bev, struct evbuffer *out, const wire_msg_t *m);
/* Resolves host:port (host "" = any address when passive) into at most max
 * addresses, in getaddrinfo's order; *n gets how many. */
int net_resolve(const char *host, int port, bool passive, struct sockaddr_storage *ss, socklen_t *lens,
                int max, int *n, char *err, size_t errlen);
void net_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);
/* net_parse_hostport that also accepts an empty host (listeners: all interfaces). */
int net_parse_hostport_any(const char *s, char *host, size_t hostlen, int *port);
void net_set_nodelay(evutil_socket_t fd);

/* listen.c */
void net_reap_cb(evutil_socket_t fd, short what, void *arg); /* closes doomed connections */
void net_conns_free_all(net_loop_t *l); /* runs no callbacks */

/* peer.c */
void net_peers_free_all(net_loop_t *l); /* runs no callbacks */

/* tls.c */
/* A new SSL for one connection; the client side verifies `host` (a name or an
 * IP literal) against the server certificate's subjectAltName. */
SSL *net_tls_ssl_new(net_tls_t *t, const char *host, char *err, size_t errlen);
bool net_tls_is_server(const net_tls_t *t);
/* Why a connection (TLS or plain) failed, given the BEV_EVENT_* flags: the
 * OpenSSL errors recorded on bev and a failed certificate verification, else
 * "timed out", "connection closed by peer" or the socket errno. */
void net_tls_reason(struct bufferevent *bev, short what, char *buf, size_t len);
/* Frees a connection's bufferevent, saying close_notify first on TLS. */
void net_bev_close(struct bufferevent *bev);
/* The OpenSSL error queue as text (ERR_error_string_n), cleared afterwards. */
void net_tls_queue_str(char *buf, size_t len);
#endif
