/* net.h — the libevent edge: loop, listeners (TCP or TLS), inbound connections
 * that deliver decoded requests, and outbound peers with request/response
 * correlation, timeouts and jittered reconnect. */
#ifndef KEEL_NET_H
#define KEEL_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/wire.h"

struct event_base;

#define NET_MAX_CONNS 1024              /* inbound connections per loop */
#define NET_MAX_OUTPUT_BYTES (64u << 20) /* a connection whose unsent output exceeds this is closed */
#define NET_MAX_INFLIGHT 128            /* outstanding requests per peer */
#define NET_RECONNECT_MIN_MS 50
#define NET_RECONNECT_MAX_MS 2000

typedef struct net_loop net_loop_t;
typedef struct net_tls net_tls_t;
typedef struct net_peer net_peer_t;
typedef uint64_t net_conn_id_t; /* inbound connection handle; 0 = none */

/* ---- TLS ---------------------------------------------------------------- */
typedef struct net_tls_config {
    const char *cert_file; /* PEM; server: required; client: for mutual TLS */
    const char *key_file;
    const char *ca_file;   /* server: verifies client certs; client: verifies server */
    bool require_client_auth; /* ssl.client.auth=required */
} net_tls_config_t;

int net_tls_server_new(const net_tls_config_t *cfg, net_tls_t **out, char *err, size_t errlen);
int net_tls_client_new(const net_tls_config_t *cfg, net_tls_t **out, char *err, size_t errlen);
void net_tls_free(net_tls_t *t);

/* ---- loop --------------------------------------------------------------- */
net_loop_t *net_loop_new(size_t max_frame /* socket.request.max.bytes; 0 = default */);
/* Closes everything (listeners, connections, peers: do not free those peers
 * again) and runs no callbacks. Not from inside a net callback. */
void net_loop_free(net_loop_t *l);
struct event_base *net_loop_base(net_loop_t *l); /* for timers and signals */
int net_loop_run(net_loop_t *l);   /* until net_loop_stop */
void net_loop_stop(net_loop_t *l);
/* Outgoing connections (peers) bind to this numeric IP address first
 * (socket.source.address): a node on its own 127.0.0.N is then seen as that
 * address by the others, which the chaos harness's partition rules rely on.
 * NULL or "" = the kernel's choice. KL_EINVAL for anything but a numeric
 * IPv4/IPv6 address, KL_ECONFIG for one this host cannot bind. Applies to
 * connection attempts from now on. */
int net_loop_set_source(net_loop_t *l, const char *ip);
int64_t net_now_ms(void);          /* monotonic ms (CLOCK_MONOTONIC) */
int64_t net_wall_ms(void);         /* unix ms */

/* ---- inbound ------------------------------------------------------------ */
/* A decoded request. Ownership of `req` passes to the callback (free with
 * wire_msg_free). Reply later with net_reply using the same conn id; replies
 * may be out of order (long-poll). */
typedef void (*net_request_cb)(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg);
typedef void (*net_conn_closed_cb)(net_loop_t *l, net_conn_id_t conn, void *arg);

/* spec: "PLAINTEXT://host:port" or "SSL://host:port" (host may be an IP or
 * name, empty = all interfaces; port 0 picks a free one, *bound_port tells
 * which). tls (a server context, kept alive by the caller until the loop is
 * freed) is required for SSL. Malformed frames, oversized frames (refused
 * from the length prefix, before buffering), TLS handshake failures and
 * plaintext-on-TLS close only that connection, with a WARN log naming the
 * peer address and reason. An unknown API or unsupported version is answered
 * with an error response (KL_EUNKNOWNAPI / KL_EUNSUPPORTED, same correlation
 * id) and the connection stays open. At most NET_MAX_CONNS connections per
 * loop; more are refused with a WARN. KL_EINVAL for a malformed spec,
 * KL_ECONFIG for SSL without a server tls, KL_EIO when binding fails (the
 * reason is logged). on_closed (may be NULL) runs once per connection, from
 * the loop, never from inside net_reply or net_conn_close. */
int net_listen(net_loop_t *l, const char *spec, net_tls_t *tls, net_request_cb on_request,
               net_conn_closed_cb on_closed, void *arg, int *bound_port);
/* Encodes and queues a response (resp->correlation_id must be the request's).
 * KL_ECLOSED if the connection is gone (ids are never reused, so a late reply
 * is safe), KL_EFULL if its unsent output went over NET_MAX_OUTPUT_BYTES (the
 * connection is then closed: a reader that slow cannot hold our memory). */
int net_reply(net_loop_t *l, net_conn_id_t conn, const wire_msg_t *resp);
/* Closes one inbound connection (no-op if it is gone); on_closed follows. */
void net_conn_close(net_loop_t *l, net_conn_id_t conn);
/* Closes every listening socket (existing connections stay), e.g. on shutdown. */
void net_stop_listening(net_loop_t *l);
/* Peer address "ip:port" of an open inbound connection (for logs), or "?".
 * The string lives as long as the connection. */
const char *net_conn_addr(net_loop_t *l, net_conn_id_t conn);

/* ---- outbound ----------------------------------------------------------- */
typedef void (*net_response_cb)(net_peer_t *p, int err /* 0, KL_ETIMEOUT, KL_ECLOSED, ... */,
                                wire_msg_t *resp /* owned by callee; NULL on err */, void *arg);
typedef void (*net_peer_state_cb)(net_peer_t *p, bool connected, void *arg);

/* Connects lazily on the first request and again after failures (by itself,
 * request or not), with jittered exponential backoff in
 * [NET_RECONNECT_MIN_MS, NET_RECONNECT_MAX_MS]; every address the host
 * resolves to is tried in turn. tls NULL = plaintext, else a client context
 * that outlives the peer; the host (name or IP) is what the server
 * certificate's subjectAltName must name. on_state (may be NULL) runs with
 * connected=true once the connection (and TLS handshake) is up, and with
 * connected=false after every failed attempt (refused, unreachable, handshake
 * failed) and every lost connection (EOF, RST), right after the pending
 * requests were failed. NULL on bad arguments. */
net_peer_t *net_peer_new(net_loop_t *l, const char *host, int port, net_tls_t *tls,
                         net_peer_state_cb on_state, void *arg);
/* Pending callbacks get KL_ECLOSED first. Safe from inside any of this peer's
 * callbacks (the memory goes when the callback returns). */
void net_peer_free(net_peer_t *p);
/* Sends `req` (not taken over; its correlation_id is set here). Returns 0 and
 * the callback then runs exactly once, later, never from inside net_request:
 * with the response (err 0; an application error is in resp->error), or
 * KL_ETIMEOUT (timeout_ms elapsed, 0 = none; a late response is dropped),
 * KL_ECLOSED (connection lost, or the peer freed), KL_ECONNECT (connect
 * failed, or asked while waiting to reconnect), KL_ETLS (handshake failed),
 * KL_EFULL (NET_MAX_INFLIGHT outstanding, or unsent output over
 * NET_MAX_OUTPUT_BYTES), an encoding error, or KL_EUNKNOWNAPI /
 * KL_EUNSUPPORTED for a response this build cannot read. KL_ENOMEM: nothing
 * was queued and the callback will not run. */
int net_request(net_peer_t *p, wire_msg_t *req, int timeout_ms, net_response_cb cb, void *arg);
bool net_peer_connected(const net_peer_t *p);
const char *net_peer_name(const net_peer_t *p); /* "host:port" */
/* Why the last attempt or connection failed, e.g. "connect to 10.0.0.2:9093:
 * Connection refused"; "" if nothing failed yet. */
const char *net_peer_last_error(const net_peer_t *p);

/* Blocking one-shot call for CLIs: connect, send, wait at most timeout_ms
 * (> 0) in all (runs a private loop). 0 with *resp (owned by the caller; an
 * application error is in (*resp)->error), or the net_request error code with
 * err saying why: "connect to 127.0.0.1:9093: Connection refused", "request
 * to 127.0.0.1:9093 timed out after 5000 ms", "TLS handshake with
 * 127.0.0.1:9093 failed: <OpenSSL reason>", ... */
int net_call(const char *host, int port, net_tls_t *tls, wire_msg_t *req, int timeout_ms,
             wire_msg_t **resp, char *err, size_t errlen);

/* Parses "host:port" (IPv6 as "[::1]:port"); KL_EINVAL on junk. */
int net_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
