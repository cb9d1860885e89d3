/* client.c — keelctl's data-plane side: a kc client on --bootstrap-server with
 * --command-config TLS, error reporting, and what long-running commands share
 * (stop signals, clocks, stdin readiness). */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "keel/config.h"
#include "keel/err.h"

#include "cli.h"

volatile sig_atomic_t cli_stop;

/* Kafka's client property names, restricted to what keelctl uses. */
static const kl_config_key_t client_schema[] = {
    {"security.protocol", KL_CFG_STRING, "PLAINTEXT", false, 0, 0, "PLAINTEXT|SSL"},
    {"ssl.ca.location", KL_CFG_STRING, NULL, false, 0, 0, "PEM CA bundle that verifies the server"},
    {"ssl.certificate.location", KL_CFG_STRING, NULL, false, 0, 0, "PEM client certificate (mutual TLS)"},
    {"ssl.key.location", KL_CFG_STRING, NULL, false, 0, 0, "PEM client private key"},
    {NULL, 0, NULL, false, 0, 0, NULL},
};

int cli_tls_load(const char *path, net_tls_t **tls, char *err, size_t errlen)
{
    *tls = NULL;
    if (!path) return 0;
    kl_config_t *c = kl_config_new(client_schema);
    if (!c) return KL_ENOMEM;
    char why[KL_CONFIG_ERR_LEN] = "";
    int rc = kl_config_load_file(c, path, why, sizeof why);
    if (rc == 0) rc = kl_config_validate(c, why, sizeof why);
    if (rc != 0) {
        snprintf(err, errlen, "--command-config: %s", why);
        rc = KL_ECONFIG;
        goto out;
    }
    const char *proto = kl_config_str(c, "security.protocol");
    if (strcmp(proto, "PLAINTEXT") == 0) goto out;
    if (strcmp(proto, "SSL") != 0) {
        snprintf(err, errlen, "%s: security.protocol must be PLAINTEXT or SSL, not '%s'", path, proto);
        rc = KL_ECONFIG;
        goto out;
    }
    net_tls_config_t tc = {
        .cert_file = kl_config_str(c, "ssl.certificate.location"),
        .key_file = kl_config_str(c, "ssl.key.location"),
        .ca_file = kl_config_str(c, "ssl.ca.location"),
    };
    rc = net_tls_client_new(&tc, tls, why, sizeof why);
    if (rc != 0) snprintf(err, errlen, "%s: TLS setup failed: %s", path, why[0] ? why : kl_strerror(rc));
out:
    kl_config_free(c);
    return rc;
}

int cli_client_open(const cli_ctx_t *ctx, const char *cmd, cli_client_t *c)
{
    memset(c, 0, sizeof *c);
    c->cmd = cmd;
    c->timeout_ms = ctx->timeout_ms;
    if (!ctx->bootstrap_server) {
        cli_errorf("%s: no broker given: use --bootstrap-server H:P[,H:P..] or set KEEL_BOOTSTRAP_SERVER", cmd);
        return CLI_EXIT_USAGE;
    }
    char err[CLI_ERR_LEN] = "";
    if (cli_tls_load(ctx->command_config, &c->tls, err, sizeof err) != 0) {
        cli_errorf("%s: %s", cmd, err);
        return CLI_EXIT_FAIL;
    }
    kc_config_t cfg;
    kc_config_defaults(&cfg);
    cfg.bootstrap = ctx->bootstrap_server;
    cfg.tls = c->tls;
    cfg.request_timeout_ms = ctx->timeout_ms;
    c->kc = kc_client_new(&cfg, err, sizeof err);
    if (!c->kc) {
        cli_errorf("%s: --bootstrap-server %s: %s", cmd, ctx->bootstrap_server, err[0] ? err : "unusable");
        cli_client_close(c);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

void cli_client_close(cli_client_t *c)
{
    if (c->kc) kc_client_free(c->kc);
    if (c->tls) net_tls_free(c->tls);
    c->kc = NULL;
    c->tls = NULL;
}

int cli_client_fail(const cli_client_t *c, const char *what, int rc, const wire_msg_t *resp)
{
    const char *last = c->kc ? kc_last_error(c->kc) : "";
    if (resp && resp->error && resp->error_message[0])
        cli_errorf("%s: %s: %s: %s", c->cmd, what, kl_strerror(resp->error), resp->error_message);
    else if (last && last[0])
        cli_errorf("%s: %s: %s", c->cmd, what, last);
    else
        cli_errorf("%s: %s: %s", c->cmd, what, kl_strerror(rc));
    return CLI_EXIT_FAIL;
}

int cli_topic_metadata(cli_client_t *c, const char *topic, wire_msg_t **resp, const wire_topic_info_t **t)
{
    const char *names[1] = {topic};
    *resp = NULL;
    int rc = kc_metadata(c->kc, names, 1, c->timeout_ms, resp);
    if (rc != 0) {
        cli_client_fail(c, "fetching metadata", rc, *resp);
        wire_msg_free(*resp);
        *resp = NULL;
        return CLI_EXIT_FAIL;
    }
    const wire_metadata_resp_t *m = &(*resp)->body.metadata_resp;
    int terr = KL_EUNKNOWNPARTITION;
    for (int i = 0; i < m->n_topics; i++) {
        if (strcmp(m->topics[i].name, topic) != 0) continue;
        if ((terr = m->topics[i].error) == 0) {
            *t = &m->topics[i];
            return CLI_EXIT_OK;
        }
    }
    if (terr == KL_EUNKNOWNPARTITION) cli_errorf("%s: topic '%s' does not exist", c->cmd, topic);
    else cli_errorf("%s: topic '%s': %s", c->cmd, topic, kl_strerror(terr));
    wire_msg_free(*resp);
    *resp = NULL;
    return CLI_EXIT_FAIL;
}

int cli_parse_acks(const char *cmd, const char *s, int *acks)
{
    if (strcmp(s, "all") == 0 || strcmp(s, "-1") == 0) *acks = -1;
    else if (strcmp(s, "0") == 0) *acks = 0;
    else if (strcmp(s, "1") == 0) *acks = 1;
    else {
        cli_errorf("%s: --acks must be 0, 1 or all, not '%s'", cmd, s);
        return -1;
    }
    return 0;
}

static void on_stop_signal(int sig)
{
    (void)sig;
    cli_stop = 1;
}

void cli_catch_stop_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int64_t cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool cli_fd_readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) != 0;
}
