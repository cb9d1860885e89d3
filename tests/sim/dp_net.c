/* dp_net.c — the data-plane simulator's virtual-time event loop and its network: TCP-like connections with delay, loss, partitions and request timeouts. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp_cluster.h"
#include "keel/err.h"
#include "sim_cluster.h"

void dp_trace(dp_t *s, const char *fmt, ...)
{
    if (!s->p.verbose) return;
    va_list ap;
    va_start(ap, fmt);
    printf("[%8" PRId64 " ms] ", s->now);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
}

int64_t dp_rnd(dp_t *s, int64_t lo, int64_t hi_incl)
{
    return kl_rng_range(&s->rng, lo, hi_incl + 1);
}

bool dp_pm(dp_t *s, uint32_t per_mille)
{
    return kl_rng_chance(&s->rng, per_mille, 1000);
}

/* ---- event heap: (time, sequence) order, so equal times stay FIFO ------------------- */

static bool ev_before(const dp_ev_t *a, const dp_ev_t *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void push(dp_t *s, dp_ev_t ev)
{
    sim_grow((void **)&s->heap, &s->cap_heap, s->n_heap + 1, sizeof *s->heap);
    ev.seq = s->seq++;
    int64_t i = s->n_heap++;
    while (i > 0) {
        int64_t up = (i - 1) / 2;
        if (!ev_before(&ev, &s->heap[up])) break;
        s->heap[i] = s->heap[up];
        i = up;
    }
    s->heap[i] = ev;
}

static dp_ev_t pop(dp_t *s)
{
    dp_ev_t top = s->heap[0], last = s->heap[--s->n_heap];
    int64_t i = 0;
    for (;;) {
        int64_t c = 2 * i + 1;
        if (c >= s->n_heap) break;
        if (c + 1 < s->n_heap && ev_before(&s->heap[c + 1], &s->heap[c])) c++;
        if (!ev_before(&s->heap[c], &last)) break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_heap > 0) s->heap[i] = last;
    return top;
}

void dp_timer(dp_t *s, int node, dp_timer_t t, int part, int64_t at)
{
    push(s, (dp_ev_t){.at = at < s->now ? s->now : at, .kind = DP_EV_TIMER, .node = node,
                      .inc = s->nodes[node].inc, .timer = t, .part = part});
}

/* ---- messages ----------------------------------------------------------------------- */

dp_msg_t *dp_msg_new(dp_msg_type_t type)
{
    dp_msg_t *m = sim_xmalloc(sizeof *m);
    memset(m, 0, sizeof *m);
    m->type = type;
    return m;
}

void dp_msg_free(dp_msg_t *m)
{
    if (!m) return;
    free(m->batches);
    free(m);
}

bool dp_running(const dp_t *s, int node)
{
    return s->nodes[node].up && s->nodes[node].paused_until <= s->now;
}

/* A message travels on the connection it names; a broken connection (reset,
 * cut, peer crash) loses everything on it, and TCP delivers the rest in
 * order — so a producer's pipelined batches are never reordered in flight. */
static void transmit(dp_t *s, dp_msg_t *m)
{
    const int a = m->from, b = m->to;
    if (!s->link[a][b] || m->gen != s->gen[a][b]) {
        dp_msg_free(m);
        return;
    }
    if (dp_pm(s, s->drop_pm)) {
        dp_trace(s, "net: connection %d-%d resets", a, b);
        dp_reset_conn(s, a, b);
        dp_msg_free(m);
        return;
    }
    int64_t at = s->now + (dp_pm(s, s->slow_pm) ? dp_rnd(s, 20, 250) : dp_rnd(s, 0, s->delay_max_ms));
    if (at < s->fifo[a][b]) at = s->fifo[a][b];
    s->fifo[a][b] = at;
    push(s, (dp_ev_t){.at = at, .kind = DP_EV_DELIVER, .node = b, .inc = s->nodes[b].inc, .msg = m});
}

uint64_t dp_call(dp_t *s, int from, int to, dp_msg_t *m)
{
    dp_node_t *n = &s->nodes[from];
    KL_ASSERT(n->n_calls < DP_MAX_CALLS);
    m->rpc = ++s->next_rpc;
    m->from = from;
    m->to = to;
    m->gen = s->view[from][to];
    m->resp = false;
    n->calls[n->n_calls++] = (dp_call_t){m->rpc, to, m->gen, m->type, m->part};
    push(s, (dp_ev_t){.at = s->now + DP_RPC_TIMEOUT_MS, .kind = DP_EV_TIMEOUT, .node = from, .inc = n->inc,
                      .rpc = m->rpc});
    const uint64_t rpc = m->rpc;
    transmit(s, m);
    return rpc;
}

void dp_reply_to(const dp_msg_t *req, dp_msg_t *resp)
{
    resp->type = req->type;
    resp->resp = true;
    resp->from = req->to;
    resp->to = req->from;
    resp->gen = req->gen;
    resp->rpc = req->rpc;
    resp->part = req->part;
}

void dp_send(dp_t *s, dp_msg_t *m)
{
    transmit(s, m);
}

void dp_reply(dp_t *s, const dp_msg_t *req, dp_msg_t *resp)
{
    dp_reply_to(req, resp);
    transmit(s, resp);
}

/* ---- connections ------------------------------------------------------------------- */

static void break_conn(dp_t *s, int a, int b, bool notify)
{
    const uint32_t old = s->gen[a][b];
    s->gen[a][b] = s->gen[b][a] = old + 1;
    if (!notify) return;
    for (int k = 0; k < 2; k++) {
        const int at = k ? b : a, peer = k ? a : b;
        if (!s->nodes[at].up) continue;
        push(s, (dp_ev_t){.at = s->now + dp_rnd(s, 1, 5), .kind = DP_EV_RESET, .node = at, .inc = s->nodes[at].inc,
                          .peer = peer, .gen = old});
    }
}

void dp_reset_conn(dp_t *s, int a, int b)
{
    break_conn(s, a, b, true);
}

/* A partition is silent: nobody is told, requests time out. */
void dp_cut(dp_t *s, int a, int b)
{
    if (a == b || !s->link[a][b]) return;
    s->link[a][b] = s->link[b][a] = false;
    break_conn(s, a, b, false);
}

void dp_link_up(dp_t *s, int a, int b)
{
    if (a != b) s->link[a][b] = s->link[b][a] = true;
}

/* kill -9: its sockets close (peers see a reset), its timers die. */
void dp_node_crash(dp_t *s, int node)
{
    dp_node_t *n = &s->nodes[node];
    n->up = false;
    n->inc++;
    n->n_calls = 0;
    n->paused_until = 0;
    for (int j = 0; j < s->n_nodes; j++)
        if (j != node) break_conn(s, node, j, true);
    for (int j = 0; j < s->n_nodes; j++) s->view[node][j] = s->gen[node][j];
}

/* ---- dispatch ---------------------------------------------------------------------- */

static bool is_ctrl(int node) { return node < DP_CTRLS; }
static dp_broker_t *broker_of(dp_t *s, int node)
{
    return node >= DP_CTRLS && node < DP_CTRLS + s->n_brokers ? &s->brokers[node - DP_CTRLS] : NULL;
}
static dp_client_t *client_of(dp_t *s, int node)
{
    const int i = node - DP_CTRLS - s->n_brokers;
    return i >= 0 && i < s->n_clients ? &s->clients[i] : NULL;
}

static bool take_call(dp_t *s, int node, uint64_t rpc, dp_call_t *out)
{
    dp_node_t *n = &s->nodes[node];
    for (int i = 0; i < n->n_calls; i++)
        if (n->calls[i].rpc == rpc) {
            *out = n->calls[i];
            n->calls[i] = n->calls[--n->n_calls];
            return true;
        }
    return false;
}

static void complete(dp_t *s, int node, const dp_call_t *c, dp_msg_t *m)
{
    dp_broker_t *b = broker_of(s, node);
    dp_client_t *cl = client_of(s, node);
    if (b) dp_broker_response(s, b, c, m);
    else if (cl) dp_client_response(s, cl, c, m);
}

/* Every call on connection (node, peer, gen) fails: the connection is gone. */
static void fail_calls(dp_t *s, int node, int peer, uint32_t gen)
{
    dp_node_t *n = &s->nodes[node];
    for (int i = 0; i < n->n_calls;) {
        if (n->calls[i].peer != peer || n->calls[i].gen != gen) {
            i++;
            continue;
        }
        dp_call_t c = n->calls[i];
        n->calls[i] = n->calls[--n->n_calls];
        complete(s, node, &c, NULL);
        if (!s->nodes[node].up) return;
    }
}

static void deliver(dp_t *s, dp_msg_t *m)
{
    const int to = m->to;
    if (!s->link[m->from][to] || m->gen != s->gen[m->from][to]) return; /* broke while in flight */
    if (m->resp) {
        dp_call_t c;
        if (take_call(s, to, m->rpc, &c)) complete(s, to, &c, m);
        return;
    }
    if (is_ctrl(to)) {
        if (s->ctrl.active == to) {
            dp_ctrl_request(s, m);
        } else {
            dp_msg_t *r = dp_msg_new(m->type);
            r->error = KL_ENOTCONTROLLER;
            dp_reply(s, m, r);
        }
        return;
    }
    dp_broker_t *b = broker_of(s, to);
    if (b) dp_broker_request(s, b, m);
}

static void on_timeout(dp_t *s, int node, uint64_t rpc)
{
    dp_call_t c;
    if (!take_call(s, node, rpc, &c)) return;
    /* A client closes a connection whose request timed out (Kafka does): what
     * is still queued on it is lost, and the next request uses a new one. */
    if (c.gen == s->gen[node][c.peer]) break_conn(s, node, c.peer, true);
    s->view[node][c.peer] = s->gen[node][c.peer];
    complete(s, node, &c, NULL);
    if (s->nodes[node].up) fail_calls(s, node, c.peer, c.gen);
}

static void on_reset(dp_t *s, int node, int peer, uint32_t gen)
{
    if (s->view[node][peer] == gen) s->view[node][peer] = s->gen[node][peer];
    fail_calls(s, node, peer, gen);
    if (is_ctrl(node) && s->ctrl.active == node) dp_ctrl_conn_reset(s, peer);
}

static void dispatch(dp_t *s, dp_ev_t *ev)
{
    dp_node_t *n = &s->nodes[ev->node];
    if (ev->kind != DP_EV_DELIVER && ev->inc != n->inc) return; /* for a previous life */
    if (!n->up) return;
    if (n->paused_until > s->now) { /* a stopped process: everything waits for SIGCONT */
        dp_ev_t again = *ev;
        again.at = n->paused_until;
        push(s, again);
        ev->msg = NULL;
        return;
    }
    switch (ev->kind) {
    case DP_EV_DELIVER: deliver(s, ev->msg); break;
    case DP_EV_TIMEOUT: on_timeout(s, ev->node, ev->rpc); break;
    case DP_EV_RESET: on_reset(s, ev->node, ev->peer, ev->gen); break;
    case DP_EV_TIMER: {
        dp_broker_t *b = broker_of(s, ev->node);
        dp_client_t *c = client_of(s, ev->node);
        if (is_ctrl(ev->node)) dp_ctrl_timer(s, ev->node, ev->timer);
        else if (b) dp_broker_timer(s, b, ev->timer, ev->part);
        else if (c) dp_client_timer(s, c);
        break;
    }
    }
}

void dp_run_until(dp_t *s, int64_t until)
{
    while (!s->failed && s->n_heap > 0 && s->heap[0].at <= until) {
        dp_ev_t ev = pop(s);
        s->now = ev.at;
        dispatch(s, &ev);
        dp_msg_free(ev.msg);
        if (s->res->steps > DP_MAX_STEPS)
            dp_fail(s, SIM_FAIL_LIVENESS, "step-budget", "more than %d core steps: something never settles",
                    DP_MAX_STEPS);
    }
    if (!s->failed && until > s->now) s->now = until;
}
