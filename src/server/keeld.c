/* keeld.c — the Keel server: reads its config, verifies its log dirs, runs the
 * roles it is configured for, and stops cleanly on SIGTERM/SIGINT. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "keel/broker.h"
#include "keel/controller.h"
#include "keel/err.h"
#include "keel/kcfg.h"
#include "keel/log.h"
#include "keel/metaprops.h"
#include "keel/net.h"

#define MOD "keeld"
#define MAX_OVERRIDES 64
#define KEELD_VERSION "0.1.0"

typedef struct keeld {
    net_loop_t *loop;
    kl_config_t *cfg;
    net_tls_t *server_tls;
    net_tls_t *client_tls;
    controller_t *controller; /* process.roles=controller */
    broker_t *broker;         /* process.roles=broker */
    struct event *sig_term, *sig_int;
    bool stopping;
    char cluster_id[64];
} keeld_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: keeld --config FILE [--override key=value ...]\n"
            "       keeld --help | --version\n"
            "Runs a Keel node in the role process.roles names: controller or broker.\n"
            "The log dirs must be formatted first: keelctl storage format --config FILE --cluster-id ID\n");
}

/* Every dir must be formatted for this node and the same cluster; a foreign
 * or unformatted dir is refused (DESIGN.md §5). */
static int check_dirs(keeld_t *k, const char *metadata_dir)
{
    const char *dirs = kl_config_str(k->cfg, "log.dirs");
    char list[8192];
    if ((size_t)snprintf(list, sizeof list, "%s,%s", metadata_dir, dirs) >= sizeof list) {
        KL_ERROR(MOD, "log.dirs and metadata.log.dir together are longer than %zu bytes", sizeof list - 1);
        return KL_ECONFIG;
    }
    int32_t node_id = (int32_t)kl_config_int(k->cfg, "node.id");
    char *save = NULL;
    for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        while (*d == ' ') d++;
        if (!*d) continue;
        metaprops_t mp;
        char err[512];
        int rc = metaprops_check(d, k->cluster_id[0] ? k->cluster_id : NULL, node_id, &mp, err, sizeof err);
        if (rc) {
            KL_ERROR(MOD, "log dir %s: %s", d, err);
            if (rc == KL_EUNFORMATTED)
                KL_ERROR(MOD, "format it first: keelctl storage format --config FILE --cluster-id ID");
            return rc;
        }
        if (!k->cluster_id[0]) snprintf(k->cluster_id, sizeof k->cluster_id, "%s", mp.cluster_id);
    }
    return 0;
}

/* TLS is used where a listener says SSL, and then also to reach the other
 * voters: the voter set shares one listener protocol, so a node with SSL
 * listeners dials SSL and a plaintext node dials plaintext even when
 * certificate keys are present. */
static int setup_tls(keeld_t *k)
{
    const char *cert = kl_config_str(k->cfg, "ssl.certificate.location");
    const char *key = kl_config_str(k->cfg, "ssl.key.location");
    const char *ca = kl_config_str(k->cfg, "ssl.ca.location");
    kcfg_listener_t ls[KCFG_MAX_LISTENERS];
    int n = 0;
    char lerr[256];
    bool ssl = false;
    if (kcfg_parse_listeners(kl_config_str(k->cfg, "listeners"), ls, KCFG_MAX_LISTENERS, &n, lerr, sizeof lerr) == 0)
        for (int i = 0; i < n; i++) ssl |= ls[i].proto == KCFG_SSL;
    if (!ssl) {
        if (cert || key) KL_WARN(MOD, "ssl.* keys are set but no listener is SSL: TLS is not used");
        return 0;
    }
    char err[512];
    net_tls_config_t sc = {.cert_file = cert, .key_file = key, .ca_file = ca,
                           .require_client_auth = strcmp(kl_config_str(k->cfg, "ssl.client.auth"), "required") == 0};
    int rc = net_tls_server_new(&sc, &k->server_tls, err, sizeof err);
    if (rc) {
        KL_ERROR(MOD, "TLS server setup: %s", err);
        return rc;
    }
    /* Voters talk to each other with the same certificate (mutual TLS). */
    net_tls_config_t cc = {.cert_file = cert, .key_file = key, .ca_file = ca};
    rc = net_tls_client_new(&cc, &k->client_tls, err, sizeof err);
    if (rc) KL_ERROR(MOD, "TLS client setup: %s", err);
    return rc;
}

static void on_request(net_loop_t *l, net_conn_id_t conn, wire_msg_t *req, void *arg)
{
    (void)l;
    keeld_t *k = arg;
    if (k->broker) broker_on_request(k->broker, conn, req);
    else controller_on_request(k->controller, conn, req);
}

static void on_closed(net_loop_t *l, net_conn_id_t conn, void *arg)
{
    (void)l;
    keeld_t *k = arg;
    if (k->controller) controller_on_conn_closed(k->controller, conn);
    if (k->broker) broker_on_conn_closed(k->broker, conn);
}

static int open_listeners(keeld_t *k)
{
    kcfg_listener_t ls[KCFG_MAX_LISTENERS];
    int n;
    char err[512];
    int rc = kcfg_parse_listeners(kl_config_str(k->cfg, "listeners"), ls, KCFG_MAX_LISTENERS, &n, err, sizeof err);
    if (rc) {
        KL_ERROR(MOD, "%s", err);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        char spec[KCFG_HOST_LEN + 32];
        bool v6 = strchr(ls[i].host, ':') != NULL;
        snprintf(spec, sizeof spec, "%s://%s%s%s:%d", ls[i].proto == KCFG_SSL ? "SSL" : "PLAINTEXT",
                 v6 ? "[" : "", ls[i].host, v6 ? "]" : "", ls[i].port);
        int port = 0;
        rc = net_listen(k->loop, spec, ls[i].proto == KCFG_SSL ? k->server_tls : NULL, on_request, on_closed, k,
                        &port);
        if (rc) {
            KL_ERROR(MOD, "cannot listen on %s: %s", spec, kl_strerror(rc));
            return rc;
        }
        KL_INFO(MOD, "listening on %s", spec);
    }
    return 0;
}

static void on_stopped(void *arg)
{
    keeld_t *k = arg;
    net_loop_stop(k->loop);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    keeld_t *k = arg;
    if (k->stopping) {
        KL_WARN(MOD, "second signal %d: stopping now", (int)sig);
        net_loop_stop(k->loop);
        return;
    }
    k->stopping = true;
    if (k->broker) {
        KL_INFO(MOD, "signal %d: shutting down (controlled: leaderships move away first)", (int)sig);
        broker_shutdown(k->broker, on_stopped, k);
    } else {
        KL_INFO(MOD, "signal %d: shutting down (a leader hands over first)", (int)sig);
        controller_shutdown(k->controller, on_stopped, k);
    }
}

static void keeld_free(keeld_t *k)
{
    if (k->sig_term) event_free(k->sig_term);
    if (k->sig_int) event_free(k->sig_int);
    controller_close(k->controller);
    broker_close(k->broker);
    net_loop_free(k->loop);
    net_tls_free(k->server_tls);
    net_tls_free(k->client_tls);
    kl_config_free(k->cfg);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    const char *overrides[MAX_OVERRIDES];
    int n_over = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--override") == 0 && i + 1 < argc) {
            if (n_over == MAX_OVERRIDES) {
                fprintf(stderr, "keeld: more than %d --override flags\n", MAX_OVERRIDES);
                return 2;
            }
            overrides[n_over++] = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("keeld %s\n", KEELD_VERSION);
            return 0;
        } else {
            fprintf(stderr, "keeld: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!config) {
        usage(stderr);
        return 2;
    }
    keeld_t k = {0};
    char err[KL_CONFIG_ERR_LEN];
    if (kcfg_load(config, overrides, n_over, &k.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "keeld: %s\n", err);
        return 1;
    }
    kl_log_level_t lvl;
    if (kl_log_parse_level(kl_config_str(k.cfg, "log.level"), &lvl) != 0) {
        fprintf(stderr, "keeld: %s: log.level must be debug, info, warn or error\n", config);
        kl_config_free(k.cfg);
        return 1;
    }
    kl_log_set_level(lvl);
    kl_log_set_node((int)kl_config_int(k.cfg, "node.id"));

    int rc = 1;
    char mdir[4096];
    if (kcfg_metadata_dir(k.cfg, mdir, sizeof mdir) != 0) {
        KL_ERROR(MOD, "no metadata log dir (set log.dirs or metadata.log.dir)");
        goto out;
    }
    if (check_dirs(&k, mdir) != 0 || setup_tls(&k) != 0) goto out;
    k.loop = net_loop_new((size_t)kl_config_int(k.cfg, "socket.request.max.bytes"));
    if (!k.loop) {
        KL_ERROR(MOD, "cannot create the event loop");
        goto out;
    }
    const char *source = kl_config_str(k.cfg, "socket.source.address");
    const int src_rc = net_loop_set_source(k.loop, source);
    if (src_rc != 0) {
        KL_ERROR(MOD, "socket.source.address=%s: %s", source,
                 src_rc == KL_EINVAL ? "not a numeric IP address" : "not an address of this host");
        goto out;
    }
    /* kcfg_load allows exactly one role per process. */
    bool broker = strstr(kl_config_str(k.cfg, "process.roles"), "broker") != NULL;
    if (broker && broker_open(k.loop, k.cfg, mdir, k.cluster_id, k.client_tls, &k.broker, err, sizeof err) != 0) {
        KL_ERROR(MOD, "cannot start the broker: %s", err);
        goto out;
    }
    if (!broker &&
        controller_open(k.loop, k.cfg, mdir, k.cluster_id, k.client_tls, &k.controller, err, sizeof err) != 0) {
        KL_ERROR(MOD, "cannot start the controller: %s", err);
        goto out;
    }
    if (open_listeners(&k) != 0) goto out;
    k.sig_term = evsignal_new(net_loop_base(k.loop), SIGTERM, on_signal, &k);
    k.sig_int = evsignal_new(net_loop_base(k.loop), SIGINT, on_signal, &k);
    if (!k.sig_term || !k.sig_int || evsignal_add(k.sig_term, NULL) || evsignal_add(k.sig_int, NULL)) {
        KL_ERROR(MOD, "cannot install signal handlers");
        goto out;
    }
    KL_INFO(MOD, "keeld %s node %lld started (cluster %s, metadata dir %s)", KEELD_VERSION,
            (long long)kl_config_int(k.cfg, "node.id"), k.cluster_id, mdir);
    net_loop_run(k.loop);
    KL_INFO(MOD, "stopped cleanly");
    rc = 0;
out:
    keeld_free(&k);
    return rc;
}
