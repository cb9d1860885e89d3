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

#define NET_MAX_CONNS 1024              /* inbound connections per listener set */
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
void net_loop_free(net_loop_t *l); /* closes everything; runs no callbacks */
struct event_base *net_loop_base(net_loop_t *l); /* for timers and signals */
int net_loop_run(net_loop_t *l);   /* until net_loop_stop */
void net_loop_stop(net_loop_t *l);
int64_t net_now_ms(void);          /* monotonic ms (CLOCK_MONOTONIC) */
int64_t net_wall_ms(void);         /* unix ms */

/* ---- inbound ------------------------------------------------------------ */
/* A decoded request. Ownership of `req` passes to the callback (free with
 * wire_msg_free). Reply later with net_reply using the same conn id; replies
 * may be out of order (long-poll). */
typedef void (*net_request_cb)(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg);
typedef void (*net_conn_closed_cb)(net_loop_t *l, net_conn_id_t conn, void *arg);

/* spec: "PLAINTEXT://host:port" or "SSL://host:port" (host may be an IP or
 * name; port 0 picks a free one). tls required for SSL. Malformed frames,
 * oversized frames, unknown APIs (answered with KL_EUNKNOWNAPI first), TLS
 * handshake failures and plaintext-on-TLS close only that connection, with a
 * WARN log naming the peer address and reason. */
int net_listen(net_loop_t *l, const char *spec, net_tls_t *tls, net_request_cb on_request,
               net_conn_closed_cb on_closed, void *arg, int *bound_port);
/* Encodes and queues a response (resp->correlation_id must be the request's).
 * KL_ECLOSED if the connection is gone, KL_EFULL if its output is over the limit. */
int net_reply(net_loop_t *l, net_conn_id_t conn, const wire_msg_t *resp);
/* Peer address "ip:port" of an inbound connection (for logs), or "?". */
const char *net_conn_addr(net_loop_t *l, net_conn_id_t conn);

/* ---- outbound ----------------------------------------------------------- */
typedef void (*net_response_cb)(net_peer_t *p, int err /* 0, KL_ETIMEOUT, KL_ECLOSED, ... */,
                                wire_msg_t *resp /* owned by callee; NULL on err */, void *arg);
typedef void (*net_peer_state_cb)(net_peer_t *p, bool connected, void *arg);

/* Connects lazily on the first request and again after failures, with
 * jittered exponential backoff in [NET_RECONNECT_MIN_MS, NET_RECONNECT_MAX_MS].
 * tls NULL = plaintext. */
net_peer_t *net_peer_new(net_loop_t *l, const char *host, int port, net_tls_t *tls,
                         net_peer_state_cb on_state, void *arg);
void net_peer_free(net_peer_t *p); /* pending callbacks get KL_ECLOSED first */
/* Sends `req` (correlation id assigned here). The callback runs exactly once:
 * with the response, or an error (timeout, connection lost, connect failed,
 * KL_EFULL when NET_MAX_INFLIGHT are outstanding). */
int net_request(net_peer_t *p, wire_msg_t *req, int timeout_ms, net_response_cb cb, void *arg);
bool net_peer_connected(const net_peer_t *p);
const char *net_peer_name(const net_peer_t *p); /* "host:port" */

/* Blocking one-shot call for CLIs: connect, send, wait (runs a private loop).
 * *resp owned by the caller. */
int net_call(const char *host, int port, net_tls_t *tls, wire_msg_t *req, int timeout_ms,
             wire_msg_t **resp, char *err, size_t errlen);

/* Parses "host:port" (IPv6 as "[::1]:port"); KL_EINVAL on junk. */
int net_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
