/* kc_internal.h — private to src/client: the client state and helpers the producer and consumer build on. */
#ifndef KEEL_KC_INTERNAL_H
#define KEEL_KC_INTERNAL_H

#include <stdarg.h>

#include "keel/kc.h"

struct event;

#define KC_LOG "client"
#define KC_ERR_LEN 512
#define KC_MAX_TOPICS WIRE_MAX_METADATA_TOPICS /* topics one client tracks: metadata names them all */
#define KC_MAX_ENDPOINTS (KC_MAX_BOOTSTRAP + META_MAX_BROKERS)
#define KC_MD_BACKOFF_MAX_MS 2000 /* failed metadata rounds back off exponentially up to this */
#define KC_NET_GRACE_MS 1000      /* a broker-side timeout's answer may take this long to arrive */
/* A request unanswered this long, with nothing heard from its endpoint since
 * it was sent, marks the endpoint as stuck (a paused or cut-off broker):
 * metadata is then asked elsewhere, and a producer resends to a newer leader
 * instead of waiting out request.timeout.ms. */
#define KC_STUCK_MS 1000

typedef enum kc_topic_state {
    KC_TOPIC_UNKNOWN = 0, /* no metadata answer has covered it yet */
    KC_TOPIC_EXISTS,
    KC_TOPIC_ABSENT
} kc_topic_state_t;

typedef struct kc_part_md {
    int32_t leader; /* broker id or META_NO_LEADER */
    int32_t leader_epoch;
} kc_part_md_t;

/* A topic the client tracks; the pointer stays valid for the client's life. */
typedef struct kc_topic {
    char name[META_MAX_TOPIC_NAME_LEN + 1];
    uint8_t id[KL_UUID_LEN];
    kc_topic_state_t state;
    int32_t n_parts;
    kc_part_md_t *parts;
} kc_topic_t;

typedef struct kc_req kc_req_t;

/* One host:port with its persistent connection; lives as long as the client. */
typedef struct kc_endpoint {
    char host[WIRE_HOST_LEN];
    int port;
    net_peer_t *peer;
    kc_req_t *probe; /* connection probe in flight (acks=0 sends wait for a live connection) */
    int64_t last_reply_ms; /* last response of any kind from it (monotonic ms), 0 never */
} kc_endpoint_t;

typedef struct kc_broker {
    int32_t id;
    kc_endpoint_t *ep; /* its first listener */
} kc_broker_t;

/* err: transport error or resp->error folded in by the caller; resp is owned by the callee. */
typedef void (*kc_done_fn)(kc_req_t *r, int err, wire_msg_t *resp);

/* A request in flight. Owners cancel instead of freeing, so a late answer
 * finds the request, not freed memory. */
struct kc_req {
    kc_req_t *prev, *next;
    kc_client_t *c;
    kc_done_fn done; /* NULL once cancelled */
    void *owner, *item;
    kc_endpoint_t *ep;
    int64_t sent_ms;
};

/* A producer or consumer: woken when metadata or a connection changes, and
 * destroyed with the client if the user did not free it first. */
typedef struct kc_child {
    struct kc_child *prev, *next;
    void (*wake)(struct kc_child *);
    void (*destroy)(struct kc_child *);
} kc_child_t;

struct kc_client {
    kc_config_t cfg;
    net_loop_t *loop;
    bool own_loop;
    struct event *wake_ev; /* bounds one run of the loop */
    bool running;          /* inside kc_run: blocking calls would nest the loop */
    int64_t wake_at;       /* a kc_run predicate's wish to be re-checked by then */
    uint64_t progress;     /* bumped on every delivery report (kc_poll returns on it) */
    kc_endpoint_t **eps;
    int n_eps;
    kc_endpoint_t *boot[KC_MAX_BOOTSTRAP];
    int n_boot;
    kc_broker_t *brokers; /* sorted by id */
    int n_brokers;
    int32_t controller_id;
    kc_topic_t **topics;
    int n_topics;
    /* metadata refresh: one request at a time; md_seq numbers the sends and
     * md_done_seq is the last send whose answer was merged */
    kc_req_t *md_req;
    struct event *md_retry_ev;
    uint64_t md_seq, md_done_seq;
    bool md_again; /* someone wants a refresh newer than the one in flight */
    int md_fails;  /* consecutive failed attempts */
    int md_rot;    /* rotation over brokers then bootstrap */
    int64_t md_time_ms;   /* last merged answer */
    int64_t md_sent_ms;   /* last send: refreshes are at most one per retry.backoff.ms */
    bool md_all;          /* the request in flight asks for every topic */
    int md_err;
    char md_errmsg[KC_ERR_LEN];
    kc_req_t *reqs; /* every request in flight */
    kc_child_t *children;
    char err[KC_ERR_LEN];
};

/* Sets the last error text; returns code. */
int kc_err(kc_client_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Errors that mean the client's idea of the leader (or connection) is stale. */
bool kc_stale_leader(int err);

/* Runs the loop until done(arg) or the deadline: 0, KL_ETIMEOUT, KL_EIO, or
 * KL_ESTATE when called from inside a callback (the loop cannot nest).
 * done may set c->wake_at to be asked again by then. */
int kc_run(kc_client_t *c, int64_t deadline, bool (*done)(void *arg), void *arg);

/* Sends m to ep; done runs once, later, from the loop (never if cancelled).
 * 0 or KL_ENOMEM. */
int kc_send(kc_client_t *c, kc_endpoint_t *ep, wire_msg_t *m, int timeout_ms, kc_done_fn done, void *owner,
            void *item, kc_req_t **out);
void kc_req_cancel(kc_req_t *r);
/* See KC_STUCK_MS. */
bool kc_endpoint_stuck(const kc_client_t *c, const kc_endpoint_t *ep, int64_t now);
/* "<what>: <endpoint>: <reason>" for a failed request (resp: its application error). */
void kc_req_errmsg(const kc_client_t *c, const kc_endpoint_t *ep, const char *what, int err, const wire_msg_t *resp,
                   int timeout_ms, char *buf, size_t len);
/* Blocking request bounded by the deadline (and request.timeout.ms): 0 with
 * *resp whose error is 0; an application error with *resp kept; or a
 * transport error. The last error text names the endpoint. */
int kc_call(kc_client_t *c, kc_endpoint_t *ep, wire_msg_t *m, int64_t deadline, const char *what,
            wire_msg_t **resp);

/* The tracked topic named name (tracking it from now on): NULL with *err
 * KL_EINVAL for a bad name, KL_EFULL past KC_MAX_TOPICS, KL_ENOMEM. */
kc_topic_t *kc_topic_track(kc_client_t *c, const char *name, int *err);
/* Asks for metadata newer than now; returns the refresh number that will
 * carry it (kc_md_has(c, n) once merged). */
uint64_t kc_md_refresh(kc_client_t *c);
static inline bool kc_md_has(const kc_client_t *c, uint64_t n) { return c->md_done_seq >= n; }
/* Blocks until a refresh asked now is merged: 0, or the last metadata error. */
int kc_md_wait(kc_client_t *c, int64_t deadline);
/* Makes sure t exists with this partition, refreshing metadata (bounded by
 * the deadline) when the cache does not know it or says it is absent:
 * 0, KL_EUNKNOWNPARTITION once a fresh answer says so, or the metadata error. */
int kc_topic_ready(kc_client_t *c, kc_topic_t *t, int32_t partition, int64_t deadline);
/* Leader endpoint of t/partition and its epoch from the cached metadata
 * (refreshing it when older than metadata.max.age.ms): NULL when unknown,
 * after asking for a refresh. */
kc_endpoint_t *kc_leader(kc_client_t *c, const kc_topic_t *t, int32_t partition, int32_t *leader_epoch);
/* Makes sure ep is connecting (a cheap probe request); children are woken when it is up. */
void kc_probe(kc_client_t *c, kc_endpoint_t *ep);
/* An endpoint for a request any broker can answer, by rotation, passing over
 * stuck ones while another is left; kc_rotate moves on. */
kc_endpoint_t *kc_any_endpoint(kc_client_t *c);
void kc_rotate(kc_client_t *c);
/* "broker 101 at 127.0.0.1:9192" or "127.0.0.1:9192". */
void kc_ep_name(const kc_client_t *c, const kc_endpoint_t *ep, char *buf, size_t len);

void kc_child_add(kc_client_t *c, kc_child_t *ch);
void kc_child_remove(kc_client_t *c, kc_child_t *ch);
void kc_wake_children(kc_client_t *c);

#endif
