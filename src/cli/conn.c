/* conn.c — keelctl's client side: --command-config (TLS) and asking the
 * bootstrap controllers in turn, following not-leader hints (DESIGN.md §7). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "keel/config.h"
#include "keel/err.h"
#include "keel/net.h"

#include "cli.h"

#define CLI_REASON_LEN 256

typedef struct addr {
    char host[WIRE_HOST_LEN];
    int port;
} addr_t;

/* Appends "bootstrap: reason" to the list of failures, naming the leader it
 * was redirected to if any; a reason that starts by naming that address
 * ("connect to h:p: why") is shortened to "why". */
static void add_reason(char *err, size_t errlen, const addr_t *boot, const addr_t *cur,
                       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add_reason(char *err, size_t errlen, const addr_t *boot, const addr_t *cur,
                       const char *fmt, ...)
{
    char why[CLI_REASON_LEN], name[WIRE_HOST_LEN + 8];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(name, sizeof name, "%s:%d: ", cur->host, cur->port);
    const char *w = strstr(why, name);
    w = w ? w + strlen(name) : why;
    bool redirected = cur->port != boot->port || strcmp(cur->host, boot->host) != 0;
    size_t n = strlen(err);
    if (n + 1 >= errlen) return;
    snprintf(err + n, errlen - n, "%s%s:%d: %s%s%s", n ? ", " : "", boot->host, boot->port,
             redirected ? "redirected to leader " : "", redirected ? name : "", w);
}

/* Asks one bootstrap address, following up to CLI_MAX_REDIRECTS leader hints.
 * Returns 0 with *resp, or an error with a reason appended to `reasons`;
 * *answered tells whether some controller responded at all. */
static int ask(const cli_ctx_t *ctx, net_tls_t *tls, const addr_t *bootstrap, uint32_t api,
               wire_msg_t **resp, bool *answered, char *reasons, size_t rlen)
{
    addr_t a = *bootstrap;
    for (int hop = 0;; hop++) {
        wire_msg_t req;
        wire_msg_init(&req, api, false, 0);
        wire_msg_t *r = NULL;
        char why[CLI_REASON_LEN] = "";
        int rc = net_call(a.host, a.port, tls, &req, ctx->timeout_ms, &r, why, sizeof why);
        if (rc != 0) {
            add_reason(reasons, rlen, bootstrap, &a, "%s", why[0] ? why : kl_strerror(rc));
            return rc;
        }
        *answered = true;
        if (r->error == 0) {
            *resp = r;
            return 0;
        }
        rc = r->error;
        bool hint = (rc == KL_ENOTLEADER || rc == KL_ENOTCONTROLLER) && r->leader_host[0] &&
                    r->leader_port > 0 && r->leader_port <= 65535;
        if (hint && hop < CLI_MAX_REDIRECTS) {
            snprintf(a.host, sizeof a.host, "%s", r->leader_host);
            a.port = r->leader_port;
            wire_msg_free(r);
            continue;
        }
        if (rc == KL_ENOTLEADER && r->leader_id < 0)
            add_reason(reasons, rlen, bootstrap, &a, "not the leader and no leader known (election in progress?)");
        else
            add_reason(reasons, rlen, bootstrap, &a, "%s%s%s", kl_strerror(rc),
                       r->error_message[0] ? ": " : "", r->error_message);
        wire_msg_free(r);
        return rc;
    }
}

int cli_controller_call(const cli_ctx_t *ctx, uint32_t api, wire_msg_t **resp, char *err,
                        size_t errlen)
{
    const char *list = ctx->bootstrap_controller;
    if (!list) {
        snprintf(err, errlen, "no controller given: use --bootstrap-controller H:P[,H:P..] or set "
                              "KEEL_BOOTSTRAP_CONTROLLER");
        return KL_EINVAL;
    }
    addr_t addrs[CLI_MAX_BOOTSTRAP];
    int n = 0;
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, ",");
        char item[WIRE_HOST_LEN + 8];
        if (len == 0 || len >= sizeof item || n >= CLI_MAX_BOOTSTRAP) {
            snprintf(err, errlen, "--bootstrap-controller: bad list '%s' (want H:P[,H:P..], at most %d)",
                     list, CLI_MAX_BOOTSTRAP);
            return KL_EINVAL;
        }
        memcpy(item, s, len);
        item[len] = '\0';
        if (net_parse_hostport(item, addrs[n].host, sizeof addrs[n].host, &addrs[n].port) != 0 ||
            addrs[n].port <= 0) {
            snprintf(err, errlen, "--bootstrap-controller: bad address '%s' (want host:port)", item);
            return KL_EINVAL;
        }
        n++;
        s += len;
        if (*s == ',') s++;
    }
    if (n == 0) {
        snprintf(err, errlen, "--bootstrap-controller: empty list");
        return KL_EINVAL;
    }

    net_tls_t *tls = NULL;
    int rc = cli_tls_load(ctx->command_config, &tls, err, errlen);
    if (rc != 0) return rc == KL_EINVAL ? KL_ECONFIG : rc;
    char reasons[CLI_ERR_LEN] = "";
    bool answered = false;
    for (int i = 0; i < n; i++) {
        rc = ask(ctx, tls, &addrs[i], api, resp, &answered, reasons, sizeof reasons);
        if (rc == 0) break;
    }
    if (tls) net_tls_free(tls);
    if (rc == 0) return 0;
    snprintf(err, errlen, "%s (tried %s)",
             answered ? "no controller could answer" : "no controller reachable", reasons);
    return KL_ECONNECT; /* KL_EINVAL stays reserved for bad arguments */
}
