/* test_net.c — the libevent edge on loopback: round trips, out-of-order and
 * late replies, timeouts, disconnects and reconnects, hostile input, TLS and
 * mutual TLS, and the blocking net_call. Everything binds 127.0.0.1 port 0 and
 * waits by driving the loop until a condition holds. */
#include <check.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "keel/buf.h"
#include "keel/err.h"
#include "keel/net.h"
#include "keel/wire.h"
#include "unit/kl_check.h"

extern char **environ;

#define DRIVE_LIMIT_MS 15000 /* a hung test fails instead of hanging */
#define DRIVE_TICK_MS 20
#define MAX_HELD 16
#define LOG_CAPTURE_MAX 65536
#define REQ_TIMEOUT_MS 5000
#define BIG_CHUNK (3u << 20) /* a response bigger than the read high-water mark */

/* Runs the loop until cond holds (or DRIVE_LIMIT_MS passes, which fails). */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}
#define DRIVE(l, cond)                                                                            \
    do {                                                                                          \
        struct event_base *b_ = net_loop_base(l);                                                 \
        struct event *t_ = event_new(b_, -1, EV_PERSIST, tick_cb, NULL);                          \
        struct timeval tv_ = {0, DRIVE_TICK_MS * 1000};                                           \
        event_add(t_, &tv_);                                                                      \
        int64_t dl_ = net_now_ms() + DRIVE_LIMIT_MS;                                              \
        while (!(cond) && net_now_ms() < dl_) event_base_loop(b_, EVLOOP_ONCE);                   \
        event_free(t_);                                                                           \
        ck_assert_msg((cond), "timed out waiting for: %s", #cond);                                \
    } while (0)

/* ---- throw-away PKI ------------------------------------------------------------ */

static char pki[64];      /* mkdtemp dir: CA, server (SAN IP:127.0.0.1), client (no SAN) */
static char logpath[128]; /* captured stderr */

static void path_in(char *buf, size_t len, const char *name) { snprintf(buf, len, "%s/%s", pki, name); }

static void run_openssl(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawnp(&pid, "openssl", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    ck_assert_msg(rc == 0, "cannot run openssl: %s", strerror(rc));
    int st = 0;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "openssl %s %s failed", argv[1], argv[2]);
}

/* One EC key + certificate; signed by the CA unless it is the CA. */
static void make_cert(const char *name, const char *cn, const char *san)
{
    char key[128], crt[128], ca[128], cakey[128], subj[64], sanext[64];
    snprintf(key, sizeof key, "%s/%s.key", pki, name);
    snprintf(crt, sizeof crt, "%s/%s.pem", pki, name);
    path_in(ca, sizeof ca, "ca.pem");
    path_in(cakey, sizeof cakey, "ca.key");
    snprintf(subj, sizeof subj, "/CN=%s", cn);
    snprintf(sanext, sizeof sanext, "subjectAltName=%s", san ? san : "");
    char *argv[32] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                      "-nodes", "-days", "2", "-subj", subj, "-keyout", key, "-out", crt};
    int n = 16;
    if (strcmp(name, "ca") != 0) {
        char *more[] = {"-CA", ca, "-CAkey", cakey, "-addext", "basicConstraints=critical,CA:FALSE"};
        for (size_t i = 0; i < sizeof more / sizeof more[0]; i++) argv[n++] = more[i];
        if (san) {
            argv[n++] = "-addext";
            argv[n++] = sanext;
        }
    }
    argv[n] = NULL;
    run_openssl(argv);
}

static const char *const pki_files[] = {"ca.key", "ca.pem", "server.key", "server.pem", "client.key",
                                        "client.pem", "log"};

static void pki_setup(void)
{
    snprintf(pki, sizeof pki, "/tmp/keel-test-net-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(pki));
    path_in(logpath, sizeof logpath, "log");
    make_cert("ca", "keel-test-ca", NULL);
    make_cert("server", "server", "IP:127.0.0.1");
    make_cert("client", "client", NULL);
}

static void pki_teardown(void)
{
    for (size_t i = 0; i < sizeof pki_files / sizeof pki_files[0]; i++) {
        char p[128];
        path_in(p, sizeof p, pki_files[i]);
        unlink(p);
    }
    rmdir(pki);
}

static net_tls_t *tls_server(const char *cert, bool require_client_auth)
{
    char crt[128], key[128], ca[128];
    snprintf(crt, sizeof crt, "%s/%s.pem", pki, cert);
    snprintf(key, sizeof key, "%s/%s.key", pki, cert);
    path_in(ca, sizeof ca, "ca.pem");
    net_tls_config_t cfg = {.cert_file = crt, .key_file = key, .ca_file = ca,
                            .require_client_auth = require_client_auth};
    net_tls_t *t = NULL;
    char err[256];
    int rc = net_tls_server_new(&cfg, &t, err, sizeof err);
    ck_assert_msg(rc == 0, "server TLS: %s", err);
    return t;
}

static net_tls_t *tls_client(bool with_cert)
{
    char crt[128], key[128], ca[128];
    path_in(crt, sizeof crt, "client.pem");
    path_in(key, sizeof key, "client.key");
    path_in(ca, sizeof ca, "ca.pem");
    net_tls_config_t cfg = {.cert_file = with_cert ? crt : NULL, .key_file = with_cert ? key : NULL,
                            .ca_file = ca};
    net_tls_t *t = NULL;
    char err[256];
    int rc = net_tls_client_new(&cfg, &t, err, sizeof err);
    ck_assert_msg(rc == 0, "client TLS: %s", err);
    return t;
}

/* ---- stderr capture (to check the WARN lines) ---------------------------------- */

static int saved_stderr = -1;

static void capture_begin(void)
{
    int fd = open(logpath, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    saved_stderr = dup(2);
    dup2(fd, 2);
    close(fd);
}

/* Returns what was logged (static buffer) and echoes it to the real stderr. */
static const char *capture_end(void)
{
    static char text[LOG_CAPTURE_MAX];
    dup2(saved_stderr, 2);
    close(saved_stderr);
    int fd = open(logpath, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, text, sizeof text - 1);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    fputs(text, stderr);
    return text;
}

/* ---- a test server -------------------------------------------------------------- */

typedef struct server {
    net_loop_t *l;
    int port;
    bool hold; /* keep requests for the test to answer */
    wire_msg_t *held[MAX_HELD];
    net_conn_id_t held_conn[MAX_HELD];
    int n_held;
    int n_requests;
    int n_closed;
    net_conn_id_t last_conn;
    net_conn_id_t closed_conn;
} server_t;

static uint8_t big_byte(size_t i) { return (uint8_t)(i * 7 + i / 4096); }

/* A FetchSnapshot response with a BIG_CHUNK-byte chunk (*chunk: free it). */
static void big_response(wire_msg_t *resp, uint64_t corr, uint8_t **chunk)
{
    wire_msg_init(resp, WIRE_API_FETCH_SNAPSHOT, true, corr);
    *chunk = malloc(BIG_CHUNK);
    ck_assert_ptr_nonnull(*chunk);
    for (size_t i = 0; i < BIG_CHUNK; i++) (*chunk)[i] = big_byte(i);
    resp->body.raft.u.fetch_snapshot_resp.snapshot_id = (raft_snapshot_id_t){10, 1};
    resp->body.raft.u.fetch_snapshot_resp.size = BIG_CHUNK;
    resp->body.raft.u.fetch_snapshot_resp.chunk = *chunk;
    resp->body.raft.u.fetch_snapshot_resp.chunk_len = BIG_CHUNK;
}

/* Answers req (and frees it); DescribeQuorum carries `tag` as its leader id,
 * FetchSnapshot a BIG_CHUNK-byte chunk. */
static int answer(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, int32_t tag)
{
    wire_msg_t resp;
    wire_msg_init(&resp, req->api, true, req->correlation_id);
    uint8_t *chunk = NULL;
    if (req->api == WIRE_API_FETCH_SNAPSHOT) {
        big_response(&resp, req->correlation_id, &chunk);
    } else if (req->api == WIRE_API_DESCRIBE_QUORUM) {
        wire_describe_quorum_resp_t *q = &resp.body.describe_quorum;
        snprintf(q->cluster_id, sizeof q->cluster_id, "test-cluster");
        q->leader_id = tag;
        q->leader_epoch = 3;
        q->high_watermark = 42;
    } else if (req->api == WIRE_API_API_VERSIONS) {
        wire_api_versions_local(&resp.body.api_versions);
    }
    wire_msg_free(req);
    int rc = net_reply(l, conn, &resp);
    free(chunk);
    return rc;
}

static void srv_request(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg)
{
    server_t *s = arg;
    s->n_requests++;
    s->last_conn = conn;
    if (s->hold) {
        ck_assert_int_lt(s->n_held, MAX_HELD);
        s->held[s->n_held] = req;
        s->held_conn[s->n_held++] = conn;
        return;
    }
    ck_assert_int_eq(answer(l, conn, req, 0), 0);
}

static void srv_closed(net_loop_t *l, net_conn_id_t conn, void *arg)
{
    (void)l;
    server_t *s = arg;
    s->n_closed++;
    s->closed_conn = conn;
}

static void srv_listen(server_t *s, net_loop_t *l, const char *scheme, net_tls_t *tls, int port)
{
    char spec[64];
    snprintf(spec, sizeof spec, "%s://127.0.0.1:%d", scheme, port);
    s->l = l;
    ck_assert_int_eq(net_listen(l, spec, tls, srv_request, srv_closed, s, &s->port), 0);
    ck_assert_int_gt(s->port, 0);
    if (port) ck_assert_int_eq(s->port, port);
}

static void srv_free_held(server_t *s)
{
    for (int i = 0; i < s->n_held; i++) wire_msg_free(s->held[i]);
    s->n_held = 0;
}

/* ---- a test client -------------------------------------------------------------- */

typedef struct call {
    int runs;
    int err;
    wire_msg_t *resp;
    int order; /* completion order among calls */
} call_t;

static int completions;

static void on_resp(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    call_t *c = arg;
    c->runs++;
    c->err = err;
    if (c->resp) wire_msg_free(c->resp);
    c->resp = resp;
    c->order = completions++;
}

static void call_clear(call_t *c)
{
    wire_msg_free(c->resp);
    memset(c, 0, sizeof *c);
}

typedef struct states {
    int up, down;
} states_t;

static void on_state(net_peer_t *p, bool connected, void *arg)
{
    (void)p;
    states_t *s = arg;
    if (connected) s->up++;
    else s->down++;
}

static void send_dq(net_peer_t *p, call_t *c, int timeout_ms)
{
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_DESCRIBE_QUORUM, false, 0);
    ck_assert_int_eq(net_request(p, &req, timeout_ms, on_resp, c), 0);
}

/* One DescribeQuorum round trip that must succeed. */
static void round_trip(net_loop_t *l, net_peer_t *p)
{
    call_t c = {0};
    send_dq(p, &c, REQ_TIMEOUT_MS);
    DRIVE(l, c.runs == 1);
    ck_assert_msg(c.err == 0, "round trip to %s: %s (%s)", net_peer_name(p), kl_errname(c.err),
                  net_peer_last_error(p));
    ck_assert_uint_eq(c.resp->api, WIRE_API_DESCRIBE_QUORUM);
    ck_assert(c.resp->response);
    ck_assert_str_eq(c.resp->body.describe_quorum.cluster_id, "test-cluster");
    call_clear(&c);
}

/* ---- a raw client: bytes in, bytes out, on the same loop ------------------------ */

typedef struct raw {
    struct bufferevent *bev;
    bool connected, closed;
    char local[64]; /* "127.0.0.1:port" as the server sees us */
} raw_t;

static void raw_event(struct bufferevent *bev, short what, void *arg)
{
    raw_t *r = arg;
    if (what & BEV_EVENT_CONNECTED) {
        struct sockaddr_in sin;
        socklen_t len = sizeof sin;
        getsockname(bufferevent_getfd(bev), (struct sockaddr *)&sin, &len);
        snprintf(r->local, sizeof r->local, "127.0.0.1:%d", ntohs(sin.sin_port));
        r->connected = true;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) r->closed = true;
}

static void raw_connect(raw_t *r, net_loop_t *l, int port)
{
    memset(r, 0, sizeof *r);
    r->bev = bufferevent_socket_new(net_loop_base(l), -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(r->bev, NULL, NULL, raw_event, r);
    bufferevent_enable(r->bev, EV_READ);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_int_eq(bufferevent_socket_connect(r->bev, (struct sockaddr *)&sin, sizeof sin), 0);
    DRIVE(l, r->connected);
}

/* Whether r has received a whole frame. */
static bool raw_frame_ready(raw_t *r)
{
    struct evbuffer *in = bufferevent_get_input(r->bev);
    size_t len = 0, avail = evbuffer_get_length(in);
    return avail && wire_frame_split(evbuffer_pullup(in, -1), avail, WIRE_DEFAULT_MAX_FRAME, &len) == 0;
}

/* Takes that frame, decoded; *rc gets wire_decode's result. */
static wire_msg_t *raw_take(raw_t *r, int *rc)
{
    struct evbuffer *in = bufferevent_get_input(r->bev);
    size_t len = 0;
    ck_assert_int_eq(wire_frame_split(evbuffer_pullup(in, -1), evbuffer_get_length(in), WIRE_DEFAULT_MAX_FRAME,
                                      &len), 0);
    uint8_t *f = malloc(len);
    evbuffer_remove(in, f, len);
    wire_msg_t *m = NULL;
    *rc = wire_decode(f, len, &m);
    return m;
}

/* A hand-made frame whose protobuf header holds only api (field 1), version
 * (field 2) and correlation id (field 3), each a one-byte varint. */
static void raw_send_header(raw_t *r, uint8_t api, uint8_t version, uint8_t corr)
{
    uint8_t f[] = {0, 0, 0, 10, 0, 0, 0, 6, 0x08, api, 0x10, version, 0x18, corr};
    bufferevent_write(r->bev, f, sizeof f);
}

static void raw_send_msg(raw_t *r, const wire_msg_t *m)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(wire_encode(m, &b), 0);
    bufferevent_write(r->bev, b.data, b.len);
    kl_buf_free(&b);
}

/* ---- tests: plaintext ---------------------------------------------------------- */

START_TEST(test_request_and_response_round_trip_through_listener_and_peer)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    states_t st = {0};
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, on_state, &st);
    ck_assert(!net_peer_connected(p));

    call_t c = {0};
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_DESCRIBE_QUORUM, false, 0);
    ck_assert_int_eq(net_request(p, &req, REQ_TIMEOUT_MS, on_resp, &c), 0);
    ck_assert_int_eq(c.runs, 0); /* never from inside net_request */
    DRIVE(l, c.runs == 1);
    ck_assert_int_eq(c.err, 0);
    ck_assert_uint_eq(c.resp->correlation_id, req.correlation_id);
    ck_assert_int_eq(c.resp->body.describe_quorum.leader_epoch, 3);
    ck_assert_int_eq(c.resp->body.describe_quorum.high_watermark, 42);
    ck_assert_int_eq(st.up, 1);
    ck_assert_int_eq(st.down, 0);
    ck_assert(net_peer_connected(p));
    char name[32];
    snprintf(name, sizeof name, "127.0.0.1:%d", s.port);
    ck_assert_str_eq(net_peer_name(p), name);
    call_clear(&c);

    wire_msg_init(&req, WIRE_API_API_VERSIONS, false, 0);
    ck_assert_int_eq(net_request(p, &req, REQ_TIMEOUT_MS, on_resp, &c), 0);
    DRIVE(l, c.runs == 1);
    ck_assert_int_eq(c.err, 0);
    ck_assert(c.resp->body.api_versions.supported[WIRE_API_DESCRIBE_QUORUM]);
    ck_assert(strncmp(net_conn_addr(l, s.last_conn), "127.0.0.1:", 10) == 0);
    call_clear(&c);
    ck_assert_int_eq(s.n_requests, 2);
    net_peer_free(p);
    DRIVE(l, s.n_closed == 1); /* the server hears the close */
    ck_assert_str_eq(net_conn_addr(l, s.last_conn), "?");
    net_loop_free(l);
}
END_TEST

/* socket.source.address: the chaos harness tells nodes apart by source
 * address on loopback, so a peer's connection must come from it. */
START_TEST(test_peers_connect_from_the_configured_source_address)
{
    net_loop_t *l = net_loop_new(0);
    ck_assert_int_eq(net_loop_set_source(l, "not-an-ip"), KL_EINVAL);
    ck_assert_int_eq(net_loop_set_source(l, "192.0.2.1"), KL_ECONFIG); /* TEST-NET-1: not this host's */
    ck_assert_int_eq(net_loop_set_source(l, "127.0.0.9"), 0);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    call_t c = {0};
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_API_VERSIONS, false, 0);
    ck_assert_int_eq(net_request(p, &req, REQ_TIMEOUT_MS, on_resp, &c), 0);
    DRIVE(l, c.runs == 1);
    ck_assert_int_eq(c.err, 0);
    ck_assert_msg(strncmp(net_conn_addr(l, s.last_conn), "127.0.0.9:", 10) == 0, "server saw %s",
                  net_conn_addr(l, s.last_conn));
    call_clear(&c);
    net_peer_free(p);
    ck_assert_int_eq(net_loop_set_source(l, NULL), 0); /* back to the kernel's choice */
    net_loop_free(l);
}
END_TEST

START_TEST(test_replies_may_come_out_of_order_and_later)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {.hold = true};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    call_t c[3] = {{0}};
    for (int i = 0; i < 3; i++) send_dq(p, &c[i], REQ_TIMEOUT_MS);
    DRIVE(l, s.n_held == 3);
    completions = 0;
    for (int i = 2; i >= 0; i--) ck_assert_int_eq(answer(l, s.held_conn[i], s.held[i], 10 + i), 0);
    s.n_held = 0;
    DRIVE(l, c[0].runs && c[1].runs && c[2].runs);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(c[i].runs, 1);
        ck_assert_int_eq(c[i].err, 0);
        ck_assert_int_eq(c[i].resp->body.describe_quorum.leader_id, 10 + i); /* its own answer */
        ck_assert_int_eq(c[i].order, 2 - i);                                /* in reply order */
        call_clear(&c[i]);
    }
    net_peer_free(p);
    net_loop_free(l);
}
END_TEST

START_TEST(test_request_times_out_and_its_late_response_is_dropped)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {.hold = true};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    call_t slow = {0}, next = {0};
    send_dq(p, &slow, 50);
    DRIVE(l, slow.runs == 1);
    ck_assert_int_eq(slow.err, KL_ETIMEOUT);
    ck_assert_ptr_null(slow.resp);
    ck_assert_int_eq(s.n_held, 1);
    /* The late answer, then a fresh request on the same stream: once the fresh
     * one is answered, the late one has been read and must have been dropped. */
    ck_assert_int_eq(answer(l, s.held_conn[0], s.held[0], 1), 0);
    s.n_held = 0;
    s.hold = false;
    send_dq(p, &next, REQ_TIMEOUT_MS);
    DRIVE(l, next.runs == 1);
    ck_assert_int_eq(next.err, 0);
    ck_assert_int_eq(slow.runs, 1);
    ck_assert(net_peer_connected(p)); /* an unknown correlation id is not a protocol error */
    call_clear(&next);
    net_peer_free(p);
    net_loop_free(l);
}
END_TEST

START_TEST(test_server_close_fails_pending_requests_with_eclosed_and_reports_down)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {.hold = true};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    states_t st = {0};
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, on_state, &st);
    call_t c[2] = {{0}};
    send_dq(p, &c[0], REQ_TIMEOUT_MS);
    send_dq(p, &c[1], 0);
    DRIVE(l, s.n_held == 2);
    net_conn_id_t conn = s.held_conn[0];
    net_conn_close(l, conn);
    ck_assert_int_eq(s.n_closed, 0); /* on_closed comes from the loop, not from inside the call */
    DRIVE(l, c[0].runs && c[1].runs && st.down == 1);
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(c[i].runs, 1);
        ck_assert_int_eq(c[i].err, KL_ECLOSED);
    }
    ck_assert(!net_peer_connected(p));
    ck_assert_ptr_nonnull(strstr(net_peer_last_error(p), "lost"));
    ck_assert_int_eq(s.n_closed, 1);
    ck_assert_uint_eq(s.closed_conn, conn);
    /* A late reply to the closed connection is refused safely. */
    ck_assert_int_eq(answer(l, conn, s.held[0], 0), KL_ECLOSED);
    ck_assert_int_eq(answer(l, conn, s.held[1], 0), KL_ECLOSED);
    s.n_held = 0;
    net_peer_free(p);
    net_loop_free(l);
}
END_TEST

START_TEST(test_peer_reconnects_when_the_server_comes_back)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    int port = s.port;
    states_t st = {0};
    net_peer_t *p = net_peer_new(l, "127.0.0.1", port, NULL, on_state, &st);
    round_trip(l, p);
    ck_assert_int_eq(st.up, 1);

    net_stop_listening(l); /* the server "goes away" */
    net_conn_close(l, s.last_conn);
    DRIVE(l, st.down >= 1);
    call_t c = {0};
    send_dq(p, &c, REQ_TIMEOUT_MS); /* while waiting to reconnect: fails fast */
    DRIVE(l, c.runs == 1);
    ck_assert(c.err == KL_ECONNECT);
    call_clear(&c);

    srv_listen(&s, l, "PLAINTEXT", NULL, port); /* ... and comes back on its port */
    DRIVE(l, st.up == 2);                       /* reconnected by itself, with backoff */
    ck_assert(net_peer_connected(p));
    round_trip(l, p);
    net_peer_free(p);
    net_loop_free(l);
}
END_TEST

/* A bound socket that never listens: connecting to it is refused at once. */
static int refusing_port(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    ck_assert_int_eq(bind(*fd, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t len = sizeof sin;
    getsockname(*fd, (struct sockaddr *)&sin, &len);
    return ntohs(sin.sin_port);
}

START_TEST(test_connect_refused_fails_the_request_and_reports_down)
{
    int fd;
    int port = refusing_port(&fd);
    net_loop_t *l = net_loop_new(0);
    states_t st = {0};
    net_peer_t *p = net_peer_new(l, "127.0.0.1", port, NULL, on_state, &st);
    call_t c = {0};
    send_dq(p, &c, REQ_TIMEOUT_MS);
    DRIVE(l, c.runs == 1 && st.down == 1);
    ck_assert_int_eq(c.err, KL_ECONNECT);
    char want[64];
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d: Connection refused", port);
    ck_assert_str_eq(net_peer_last_error(p), want);
    ck_assert_int_eq(st.up, 0);
    DRIVE(l, st.down == 2); /* it keeps retrying, and says so each time */
    net_peer_free(p);
    net_loop_free(l);
    close(fd);
}
END_TEST

static int total_runs(const call_t *c, int n)
{
    int runs = 0;
    for (int i = 0; i < n; i++) runs += c[i].runs;
    return runs;
}

START_TEST(test_inflight_limit_answers_efull_through_the_callback)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    static call_t c[NET_MAX_INFLIGHT + 1];
    memset(c, 0, sizeof c);
    for (int i = 0; i <= NET_MAX_INFLIGHT; i++) send_dq(p, &c[i], REQ_TIMEOUT_MS);
    ck_assert_int_eq(c[NET_MAX_INFLIGHT].runs, 0);
    DRIVE(l, total_runs(c, NET_MAX_INFLIGHT + 1) == NET_MAX_INFLIGHT + 1);
    ck_assert_int_eq(c[NET_MAX_INFLIGHT].err, KL_EFULL);
    for (int i = 0; i < NET_MAX_INFLIGHT; i++) {
        ck_assert_int_eq(c[i].runs, 1);
        ck_assert_int_eq(c[i].err, 0);
        call_clear(&c[i]);
    }
    net_peer_free(p);
    net_loop_free(l);
}
END_TEST

typedef struct freer {
    net_peer_t *p;
    call_t calls[2];
} freer_t;

static void free_peer_on_resp(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    freer_t *f = arg;
    f->calls[0].runs++;
    f->calls[0].err = err;
    wire_msg_free(resp);
    net_peer_free(p);
    f->p = NULL;
}

START_TEST(test_a_peer_may_be_freed_from_its_own_callback)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {.hold = true};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    freer_t f = {0};
    f.p = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_DESCRIBE_QUORUM, false, 0);
    ck_assert_int_eq(net_request(f.p, &req, REQ_TIMEOUT_MS, free_peer_on_resp, &f), 0);
    send_dq(f.p, &f.calls[1], REQ_TIMEOUT_MS);
    DRIVE(l, s.n_held == 2);
    ck_assert_int_eq(answer(l, s.held_conn[0], s.held[0], 0), 0);
    ck_assert_int_eq(answer(l, s.held_conn[1], s.held[1], 0), 0); /* both answers arrive in one read */
    s.n_held = 0;
    DRIVE(l, f.calls[0].runs == 1 && s.n_closed == 1);
    ck_assert_int_eq(f.calls[0].err, 0);
    ck_assert_int_eq(f.calls[1].runs, 1); /* failed by the free, exactly once */
    ck_assert_int_eq(f.calls[1].err, KL_ECLOSED);
    ck_assert_ptr_null(f.calls[1].resp);
    ck_assert_ptr_null(f.p);
    net_loop_free(l);
}
END_TEST

static void free_peer_on_state(net_peer_t *p, bool connected, void *arg)
{
    int *downs = arg;
    if (!connected) (*downs)++;
    net_peer_free(p);
}

START_TEST(test_a_peer_may_be_freed_from_its_state_callback)
{
    int fd;
    int port = refusing_port(&fd);
    net_loop_t *l = net_loop_new(0);
    int downs = 0;
    net_peer_t *p = net_peer_new(l, "127.0.0.1", port, NULL, free_peer_on_state, &downs);
    call_t c = {0};
    send_dq(p, &c, REQ_TIMEOUT_MS);
    DRIVE(l, downs == 1);
    ck_assert_int_eq(c.runs, 1);
    ck_assert_int_eq(c.err, KL_ECONNECT);
    net_loop_free(l);
    close(fd);
}
END_TEST

START_TEST(test_oversized_frame_closes_only_that_connection_with_a_warning)
{
    net_loop_t *l = net_loop_new(1024);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    round_trip(l, p);
    raw_t r;
    raw_connect(&r, l, s.port);
    capture_begin();
    uint8_t prefix[] = {0, 0, 0x10, 0}; /* announces 4096 bytes: refused before any are sent */
    bufferevent_write(r.bev, prefix, sizeof prefix);
    DRIVE(l, r.closed && s.n_closed == 1);
    const char *log = capture_end();
    ck_assert_ptr_nonnull(strstr(log, "WARN"));
    ck_assert_ptr_nonnull(strstr(log, r.local));
    ck_assert_ptr_nonnull(strstr(log, "4096"));
    ck_assert_ptr_nonnull(strstr(log, "1024"));
    round_trip(l, p); /* the other connection is untouched */
    ck_assert_int_eq(s.n_closed, 1);
    bufferevent_free(r.bev);
    net_peer_free(p);
    net_loop_free(l);
}
END_TEST

START_TEST(test_garbage_bytes_close_only_that_connection)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    round_trip(l, p);
    /* A header length past the end of the frame; then a length below the minimum. */
    static const uint8_t junk[][12] = {{0, 0, 0, 8, 0, 0, 0, 100, 'j', 'u', 'n', 'k'},
                                       {0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
    for (int i = 0; i < 2; i++) {
        raw_t r;
        raw_connect(&r, l, s.port);
        capture_begin();
        bufferevent_write(r.bev, junk[i], sizeof junk[i]);
        DRIVE(l, r.closed && s.n_closed == i + 1);
        const char *log = capture_end();
        ck_assert_ptr_nonnull(strstr(log, "WARN"));
        ck_assert_ptr_nonnull(strstr(log, r.local));
        bufferevent_free(r.bev);
        round_trip(l, p);
    }
    ck_assert_int_eq(s.n_requests, 3);
    net_peer_free(p);
    net_loop_free(l);
}
END_TEST

START_TEST(test_unknown_api_and_version_are_answered_and_the_connection_stays_open)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    raw_t r;
    raw_connect(&r, l, s.port);
    const struct { uint8_t api, version; int want; } cases[] = {
        {99, 0, KL_EUNKNOWNAPI}, {WIRE_API_DESCRIBE_QUORUM, 5, KL_EUNSUPPORTED}};
    for (int i = 0; i < 2; i++) {
        raw_send_header(&r, cases[i].api, cases[i].version, (uint8_t)(7 + i));
        DRIVE(l, raw_frame_ready(&r));
        int rc;
        wire_msg_t *m = raw_take(&r, &rc);
        ck_assert_ptr_nonnull(m);
        ck_assert(m->response);
        ck_assert_uint_eq(m->api, cases[i].api);
        ck_assert_uint_eq(m->correlation_id, 7 + i);
        ck_assert_int_eq(m->error, cases[i].want);
        /* The answer is readable as far as the client knows the API. */
        ck_assert_int_eq(rc, cases[i].want == KL_EUNKNOWNAPI ? KL_EUNKNOWNAPI : 0);
        if (rc == 0) ck_assert_ptr_nonnull(strstr(m->error_message, "version 5"));
        wire_msg_free(m);
    }
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_API_VERSIONS, false, 9);
    raw_send_msg(&r, &req);
    DRIVE(l, raw_frame_ready(&r));
    int rc;
    wire_msg_t *m = raw_take(&r, &rc);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(m->error, 0);
    ck_assert_uint_eq(m->correlation_id, 9);
    wire_msg_free(m);
    ck_assert(!r.closed);
    ck_assert_int_eq(s.n_closed, 0);
    ck_assert_int_eq(s.n_requests, 1); /* only the known one reached the application */
    bufferevent_free(r.bev);
    net_loop_free(l);
}
END_TEST

START_TEST(test_a_reader_too_slow_for_its_output_is_disconnected)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {.hold = true};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    raw_t r;
    raw_connect(&r, l, s.port);
    wire_msg_t req;
    wire_msg_init(&req, WIRE_API_FETCH_SNAPSHOT, false, 1);
    req.body.raft.u.fetch_snapshot_req.snapshot_id = (raft_snapshot_id_t){10, 1};
    raw_send_msg(&r, &req);
    DRIVE(l, s.n_held == 1);
    bufferevent_disable(r.bev, EV_READ); /* and never reads again */
    wire_msg_t resp;
    uint8_t *chunk;
    big_response(&resp, s.held[0]->correlation_id, &chunk);
    srv_free_held(&s);
    capture_begin();
    int rc = 0;
    for (int sent = 0; rc == 0 && sent < 2 * (int)(NET_MAX_OUTPUT_BYTES / BIG_CHUNK); sent++) {
        rc = net_reply(l, s.last_conn, &resp);              /* the same answer, again and again */
        event_base_loop(net_loop_base(l), EVLOOP_NONBLOCK); /* the kernel takes what it will */
    }
    free(chunk);
    ck_assert_int_eq(rc, KL_EFULL);
    DRIVE(l, s.n_closed == 1);
    const char *log = capture_end();
    ck_assert_ptr_nonnull(strstr(log, "WARN"));
    ck_assert_ptr_nonnull(strstr(log, r.local));
    ck_assert_ptr_nonnull(strstr(log, "NET_MAX_OUTPUT_BYTES"));
    wire_msg_init(&resp, WIRE_API_API_VERSIONS, true, 1);
    ck_assert_int_eq(net_reply(l, s.last_conn, &resp), KL_ECLOSED);
    bufferevent_free(r.bev);
    net_loop_free(l);
}
END_TEST

START_TEST(test_a_response_sent_as_a_request_closes_the_connection)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    raw_t r;
    raw_connect(&r, l, s.port);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_API_VERSIONS, true, 1);
    raw_send_msg(&r, &m);
    DRIVE(l, r.closed && s.n_closed == 1);
    ck_assert_int_eq(s.n_requests, 0);
    bufferevent_free(r.bev);
    net_loop_free(l);
}
END_TEST

START_TEST(test_loop_free_closes_everything_without_callbacks)
{
    net_loop_t *l = net_loop_new(0);
    server_t s = {.hold = true};
    srv_listen(&s, l, "PLAINTEXT", NULL, 0);
    states_t st = {0};
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, NULL, on_state, &st);
    call_t c = {0};
    send_dq(p, &c, REQ_TIMEOUT_MS);
    DRIVE(l, s.n_held == 1);
    srv_free_held(&s);
    int ups = st.up;
    net_loop_free(l); /* peer, connection and listener; LSan checks nothing leaks */
    ck_assert_int_eq(c.runs, 0);
    ck_assert_int_eq(s.n_closed, 0);
    ck_assert_int_eq(st.up, ups);
    ck_assert_int_eq(st.down, 0);
}
END_TEST

START_TEST(test_listen_refuses_bad_specs)
{
    net_loop_t *l = net_loop_new(0);
    int port = -1;
    ck_assert_int_eq(net_listen(l, "127.0.0.1:0", NULL, srv_request, NULL, NULL, &port), KL_EINVAL);
    ck_assert_int_eq(net_listen(l, "HTTP://127.0.0.1:0", NULL, srv_request, NULL, NULL, &port), KL_EINVAL);
    ck_assert_int_eq(net_listen(l, "PLAINTEXT://127.0.0.1:99999", NULL, srv_request, NULL, NULL, &port),
                     KL_EINVAL);
    ck_assert_int_eq(net_listen(l, "SSL://127.0.0.1:0", NULL, srv_request, NULL, NULL, &port), KL_ECONFIG);
    ck_assert_int_eq(port, -1);
    net_loop_free(l);
}
END_TEST

START_TEST(test_parse_hostport_accepts_names_ipv4_and_bracketed_ipv6)
{
    char host[64];
    int port = 0;
    ck_assert_int_eq(net_parse_hostport("broker-1.example:9092", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "broker-1.example");
    ck_assert_int_eq(port, 9092);
    ck_assert_int_eq(net_parse_hostport("127.0.0.1:0", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "127.0.0.1");
    ck_assert_int_eq(port, 0);
    ck_assert_int_eq(net_parse_hostport("[::1]:9093", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 9093);
    const char *junk[] = {"", "nocolon", "h:", ":9092", "h:65536", "h:12a", "h:-1", "::1:80", "[::1]9093",
                          "[]:1", "[::1", "h:123456"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        ck_assert_msg(net_parse_hostport(junk[i], host, sizeof host, &port) == KL_EINVAL, "accepted '%s'",
                      junk[i]);
    char tiny[4];
    ck_assert_int_eq(net_parse_hostport("longhost:1", tiny, sizeof tiny, &port), KL_EINVAL);
}
END_TEST

/* ---- tests: TLS ------------------------------------------------------------------ */

START_TEST(test_tls_round_trip)
{
    net_tls_t *st = tls_server("server", false), *ct = tls_client(false);
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "SSL", st, 0);
    states_t ps = {0};
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, ct, on_state, &ps);
    round_trip(l, p);
    round_trip(l, p);
    ck_assert_int_eq(ps.up, 1);
    net_peer_free(p);
    net_loop_free(l);
    net_tls_free(ct);
    net_tls_free(st);
}
END_TEST

START_TEST(test_responses_larger_than_the_read_watermark_arrive_whole)
{
    net_tls_t *st = tls_server("server", false), *ct = tls_client(false);
    net_loop_t *l = net_loop_new(0);
    for (int secure = 0; secure < 2; secure++) {
        server_t s = {0};
        srv_listen(&s, l, secure ? "SSL" : "PLAINTEXT", secure ? st : NULL, 0);
        net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, secure ? ct : NULL, NULL, NULL);
        call_t c = {0};
        wire_msg_t req;
        wire_msg_init(&req, WIRE_API_FETCH_SNAPSHOT, false, 0);
        req.body.raft.u.fetch_snapshot_req.snapshot_id = (raft_snapshot_id_t){10, 1};
        ck_assert_int_eq(net_request(p, &req, REQ_TIMEOUT_MS, on_resp, &c), 0);
        DRIVE(l, c.runs == 1);
        ck_assert_msg(c.err == 0, "%s", kl_errname(c.err));
        const raft_msg_t *r = &c.resp->body.raft;
        ck_assert_uint_eq(r->u.fetch_snapshot_resp.chunk_len, BIG_CHUNK);
        for (size_t i = 0; i < BIG_CHUNK; i++)
            if (r->u.fetch_snapshot_resp.chunk[i] != big_byte(i)) ck_abort_msg("chunk differs at byte %zu", i);
        call_clear(&c);
        net_peer_free(p);
        net_stop_listening(l);
    }
    net_loop_free(l);
    net_tls_free(ct);
    net_tls_free(st);
}
END_TEST

START_TEST(test_mutual_tls_refuses_a_client_without_certificate_and_keeps_serving)
{
    net_tls_t *st = tls_server("server", true), *good = tls_client(true), *bad = tls_client(false);
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "SSL", st, 0);
    net_peer_t *gp = net_peer_new(l, "127.0.0.1", s.port, good, NULL, NULL);
    net_peer_t *bp = net_peer_new(l, "127.0.0.1", s.port, bad, NULL, NULL);
    round_trip(l, gp);
    capture_begin();
    call_t c = {0};
    send_dq(bp, &c, REQ_TIMEOUT_MS);
    DRIVE(l, c.runs == 1 && s.n_closed == 1);
    const char *log = capture_end();
    ck_assert_msg(c.err == KL_ECLOSED || c.err == KL_ETLS, "got %s", kl_errname(c.err));
    ck_assert_ptr_nonnull(strstr(log, "WARN"));
    ck_assert_ptr_nonnull(strstr(log, "TLS handshake failed"));
    ck_assert_ptr_nonnull(strstr(log, "certificate")); /* OpenSSL's reason */
    ck_assert_ptr_nonnull(strstr(log, "127.0.0.1:"));
    ck_assert_int_eq(s.n_requests, 1);
    round_trip(l, gp);
    net_peer_free(bp);
    net_peer_free(gp);
    net_loop_free(l);
    net_tls_free(bad);
    net_tls_free(good);
    net_tls_free(st);
}
END_TEST

START_TEST(test_plaintext_client_on_a_tls_port_is_refused_and_the_server_keeps_serving)
{
    net_tls_t *st = tls_server("server", false), *ct = tls_client(false);
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "SSL", st, 0);
    net_peer_t *plain = net_peer_new(l, "127.0.0.1", s.port, NULL, NULL, NULL);
    net_peer_t *tls = net_peer_new(l, "127.0.0.1", s.port, ct, NULL, NULL);
    capture_begin();
    call_t c = {0};
    send_dq(plain, &c, REQ_TIMEOUT_MS);
    DRIVE(l, c.runs == 1 && s.n_closed == 1);
    const char *log = capture_end();
    ck_assert_int_eq(c.err, KL_ECLOSED);
    ck_assert_ptr_nonnull(strstr(log, "WARN"));
    ck_assert_ptr_nonnull(strstr(log, "TLS handshake failed"));
    round_trip(l, tls);
    net_peer_free(plain);
    net_peer_free(tls);
    net_loop_free(l);
    net_tls_free(ct);
    net_tls_free(st);
}
END_TEST

START_TEST(test_tls_client_refuses_a_server_certificate_that_does_not_name_the_host)
{
    net_tls_t *st = tls_server("client", false), *ct = tls_client(false); /* no IP SAN */
    net_loop_t *l = net_loop_new(0);
    server_t s = {0};
    srv_listen(&s, l, "SSL", st, 0);
    states_t ps = {0};
    net_peer_t *p = net_peer_new(l, "127.0.0.1", s.port, ct, on_state, &ps);
    call_t c = {0};
    send_dq(p, &c, REQ_TIMEOUT_MS);
    DRIVE(l, c.runs == 1 && ps.down == 1);
    ck_assert_int_eq(c.err, KL_ETLS);
    ck_assert_int_eq(ps.up, 0);
    const char *why = net_peer_last_error(p);
    ck_assert_msg(strstr(why, "TLS handshake with 127.0.0.1:") && strstr(why, "IP address mismatch"), "%s", why);
    ck_assert_int_eq(s.n_requests, 0);
    net_peer_free(p);
    net_loop_free(l);
    net_tls_free(ct);
    net_tls_free(st);
}
END_TEST

START_TEST(test_tls_configuration_errors_are_reported)
{
    net_tls_t *t = NULL;
    char err[256];
    net_tls_config_t no_key = {.cert_file = "x.pem"};
    ck_assert_int_eq(net_tls_server_new(&no_key, &t, err, sizeof err), KL_ECONFIG);
    ck_assert(err[0]);
    net_tls_config_t auth_without_ca = {.cert_file = "x.pem", .key_file = "x.key", .require_client_auth = true};
    ck_assert_int_eq(net_tls_server_new(&auth_without_ca, &t, err, sizeof err), KL_ECONFIG);
    char missing[160];
    path_in(missing, sizeof missing, "missing.pem");
    net_tls_config_t absent = {.cert_file = missing, .key_file = missing};
    ck_assert_int_eq(net_tls_server_new(&absent, &t, err, sizeof err), KL_ETLS);
    ck_assert_ptr_nonnull(strstr(err, "missing.pem"));
    ck_assert_ptr_nonnull(strstr(err, "error:")); /* ERR_error_string_n text */
    char crt[128], key[128];
    path_in(crt, sizeof crt, "server.pem");
    path_in(key, sizeof key, "client.key");
    net_tls_config_t mismatch = {.cert_file = crt, .key_file = key};
    ck_assert_int_eq(net_tls_client_new(&mismatch, &t, err, sizeof err), KL_ETLS);
    ck_assert_ptr_null(t);
}
END_TEST

/* ---- tests: net_call (the server runs in a child process) ------------------------ */

/* Forks a server on 127.0.0.1:0; returns its pid, *port the bound port. */
static pid_t spawn_server(const char *scheme, net_tls_t *tls, bool hold, int *port)
{
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        net_loop_t *l = net_loop_new(0);
        static server_t s;
        s.hold = hold;
        char spec[64];
        snprintf(spec, sizeof spec, "%s://127.0.0.1:0", scheme);
        if (net_listen(l, spec, tls, srv_request, srv_closed, &s, &s.port) != 0) _exit(1);
        if (write(fds[1], &s.port, sizeof s.port) != sizeof s.port) _exit(1);
        net_loop_run(l);
        _exit(0);
    }
    close(fds[1]);
    ck_assert_int_eq(read(fds[0], port, sizeof *port), (ssize_t)sizeof *port);
    close(fds[0]);
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGKILL);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
}

START_TEST(test_net_call_returns_the_response)
{
    int port;
    pid_t pid = spawn_server("PLAINTEXT", NULL, false, &port);
    wire_msg_t req, *resp = NULL;
    wire_msg_init(&req, WIRE_API_DESCRIBE_QUORUM, false, 0);
    char err[256];
    int rc = net_call("127.0.0.1", port, NULL, &req, REQ_TIMEOUT_MS, &resp, err, sizeof err);
    reap(pid);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_str_eq(resp->body.describe_quorum.cluster_id, "test-cluster");
    wire_msg_free(resp);
}
END_TEST

START_TEST(test_net_call_over_tls_and_its_error_messages)
{
    net_tls_t *good = tls_server("server", false), *nameless = tls_server("client", false);
    net_tls_t *ct = tls_client(false);
    int port, port2;
    pid_t pid = spawn_server("SSL", good, false, &port);
    pid_t pid2 = spawn_server("SSL", nameless, false, &port2); /* its certificate has no IP SAN */
    wire_msg_t req, *resp = NULL, *resp2 = NULL;
    char err[256], err2[256];
    wire_msg_init(&req, WIRE_API_API_VERSIONS, false, 0);
    int rc = net_call("127.0.0.1", port, ct, &req, REQ_TIMEOUT_MS, &resp, err, sizeof err);
    int rc2 = net_call("127.0.0.1", port2, ct, &req, REQ_TIMEOUT_MS, &resp2, err2, sizeof err2);
    reap(pid);
    reap(pid2);
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert(resp->body.api_versions.supported[WIRE_API_API_VERSIONS]);
    wire_msg_free(resp);
    ck_assert_int_eq(rc2, KL_ETLS);
    ck_assert_ptr_null(resp2);
    char want[64];
    snprintf(want, sizeof want, "TLS handshake with 127.0.0.1:%d failed: ", port2);
    ck_assert_msg(strncmp(err2, want, strlen(want)) == 0, "%s", err2);
    ck_assert_msg(strstr(err2, "certificate verify failed") && strstr(err2, "IP address mismatch"), "%s", err2);
    net_tls_free(ct);
    net_tls_free(nameless);
    net_tls_free(good);
}
END_TEST

START_TEST(test_net_call_reports_refused_and_timed_out)
{
    int fd;
    int port = refusing_port(&fd);
    wire_msg_t req, *resp = NULL;
    char err[256], want[96];
    wire_msg_init(&req, WIRE_API_DESCRIBE_QUORUM, false, 0);
    ck_assert_int_eq(net_call("127.0.0.1", port, NULL, &req, REQ_TIMEOUT_MS, &resp, err, sizeof err), KL_ECONNECT);
    snprintf(want, sizeof want, "connect to 127.0.0.1:%d: Connection refused", port);
    ck_assert_str_eq(err, want);
    close(fd);

    pid_t pid = spawn_server("PLAINTEXT", NULL, true, &port); /* never answers */
    int rc = net_call("127.0.0.1", port, NULL, &req, 100, &resp, err, sizeof err);
    reap(pid);
    ck_assert_int_eq(rc, KL_ETIMEOUT);
    snprintf(want, sizeof want, "request to 127.0.0.1:%d timed out after 100 ms", port);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_null(resp);
    ck_assert_int_eq(net_call("127.0.0.1", 0, NULL, &req, 100, &resp, err, sizeof err), KL_EINVAL);
}
END_TEST

static Suite *net_suite(void)
{
    Suite *s = suite_create("net");
    TCase *tc = tcase_create("net");
    tcase_set_timeout(tc, 60);
    tcase_add_unchecked_fixture(tc, pki_setup, pki_teardown);
    tcase_add_test(tc, test_request_and_response_round_trip_through_listener_and_peer);
    tcase_add_test(tc, test_peers_connect_from_the_configured_source_address);
    tcase_add_test(tc, test_replies_may_come_out_of_order_and_later);
    tcase_add_test(tc, test_request_times_out_and_its_late_response_is_dropped);
    tcase_add_test(tc, test_server_close_fails_pending_requests_with_eclosed_and_reports_down);
    tcase_add_test(tc, test_peer_reconnects_when_the_server_comes_back);
    tcase_add_test(tc, test_connect_refused_fails_the_request_and_reports_down);
    tcase_add_test(tc, test_inflight_limit_answers_efull_through_the_callback);
    tcase_add_test(tc, test_a_peer_may_be_freed_from_its_own_callback);
    tcase_add_test(tc, test_a_peer_may_be_freed_from_its_state_callback);
    tcase_add_test(tc, test_oversized_frame_closes_only_that_connection_with_a_warning);
    tcase_add_test(tc, test_garbage_bytes_close_only_that_connection);
    tcase_add_test(tc, test_unknown_api_and_version_are_answered_and_the_connection_stays_open);
    tcase_add_test(tc, test_a_reader_too_slow_for_its_output_is_disconnected);
    tcase_add_test(tc, test_a_response_sent_as_a_request_closes_the_connection);
    tcase_add_test(tc, test_loop_free_closes_everything_without_callbacks);
    tcase_add_test(tc, test_listen_refuses_bad_specs);
    tcase_add_test(tc, test_parse_hostport_accepts_names_ipv4_and_bracketed_ipv6);
    tcase_add_test(tc, test_tls_round_trip);
    tcase_add_test(tc, test_responses_larger_than_the_read_watermark_arrive_whole);
    tcase_add_test(tc, test_mutual_tls_refuses_a_client_without_certificate_and_keeps_serving);
    tcase_add_test(tc, test_plaintext_client_on_a_tls_port_is_refused_and_the_server_keeps_serving);
    tcase_add_test(tc, test_tls_client_refuses_a_server_certificate_that_does_not_name_the_host);
    tcase_add_test(tc, test_tls_configuration_errors_are_reported);
    tcase_add_test(tc, test_net_call_returns_the_response);
    tcase_add_test(tc, test_net_call_over_tls_and_its_error_messages);
    tcase_add_test(tc, test_net_call_reports_refused_and_timed_out);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return kl_check_run(net_suite());
}
