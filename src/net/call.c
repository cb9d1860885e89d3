/* call.c — net_call: one blocking request on a private loop, for keelctl. */
#include <stdio.h>

#include "keel/err.h"

#include "net_impl.h"

struct call_state {
    bool done;
    int err;
    wire_msg_t *resp;
};

static void call_done(net_peer_t *p, int err, wire_msg_t *resp, void *arg)
{
    (void)p;
    struct call_state *st = arg;
    st->done = true;
    st->err = err;
    st->resp = resp;
}

int net_call(const char *host, int port, net_tls_t *tls, wire_msg_t *req, int timeout_ms,
             wire_msg_t **resp, char *err, size_t errlen)
{
    if (errlen) err[0] = '\0';
    if (resp) *resp = NULL;
    if (!host || !host[0] || port <= 0 || port > 65535 || !req || !resp || timeout_ms <= 0) {
        snprintf(err, errlen, "bad call to %s:%d (timeout %d ms)", host ? host : "?", port, timeout_ms);
        return KL_EINVAL;
    }
    net_loop_t *l = net_loop_new(0);
    net_peer_t *p = l ? net_peer_new(l, host, port, tls, NULL, NULL) : NULL;
    if (!p) {
        snprintf(err, errlen, "cannot set up a connection to %s:%d%s", host, port,
                 l && tls && net_tls_is_server(tls) ? ": a server TLS context was given" : "");
        net_loop_free(l);
        return l ? KL_EINVAL : KL_ENOMEM;
    }
    struct call_state st = {0};
    int rc = net_request(p, req, timeout_ms, call_done, &st);
    while (rc == 0 && !st.done) /* the request's own timer bounds this */
        if (event_base_loop(l->base, EVLOOP_ONCE) < 0) rc = KL_EIO;
    if (rc == 0) rc = st.err;
    if (rc == 0)
        *resp = st.resp;
    else if (rc == KL_ETIMEOUT)
        snprintf(err, errlen, "request to %s timed out after %d ms", net_peer_name(p), timeout_ms);
    else if (net_peer_last_error(p)[0])
        snprintf(err, errlen, "%s", net_peer_last_error(p));
    else
        snprintf(err, errlen, "request to %s failed: %s", net_peer_name(p), kl_strerror(rc));
    net_peer_free(p); /* if the loop failed, the callback runs now, into st */
    net_loop_free(l);
    return rc;
}
