/* tls.c — OpenSSL contexts from PEM files (TLS 1.2+), per-connection SSL
 * objects with hostname/IP verification, and OpenSSL errors as text. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "keel/err.h"

#include "net_impl.h"

#define NET_TLS_MAX_ERRS 8

struct net_tls {
    SSL_CTX *ctx;
    bool server;
};

/* Appends "; "-separated text to buf. */
static void append(char *buf, size_t len, const char *text)
{
    size_t n = strlen(buf);
    if (n + 1 < len) snprintf(buf + n, len - n, "%s%s", n ? "; " : "", text);
}

void net_tls_queue_str(char *buf, size_t len)
{
    buf[0] = '\0';
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[200];
        ERR_error_string_n(e, one, sizeof one);
        append(buf, len, one);
    }
    if (!buf[0]) snprintf(buf, len, "unknown OpenSSL error");
}

void net_tls_reason(struct bufferevent *bev, short what, char *buf, size_t len)
{
    int se = EVUTIL_SOCKET_ERROR(); /* before OpenSSL calls can touch errno */
    buf[0] = '\0';
    /* libevent hands its recorded errors back newest first, mixed with the
     * bare SSL_get_error() code (library 0), which says nothing new. */
    unsigned long errs[NET_TLS_MAX_ERRS];
    int n = 0;
    unsigned long e;
    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        if (ERR_GET_LIB(e) != 0 && n < NET_TLS_MAX_ERRS) errs[n++] = e;
    while (n-- > 0) {
        char one[200];
        ERR_error_string_n(errs[n], one, sizeof one);
        append(buf, len, one);
    }
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        char one[200];
        snprintf(one, sizeof one, "certificate verification: %s", X509_verify_cert_error_string(v));
        append(buf, len, one);
    }
    if (buf[0]) return;
    if (what & BEV_EVENT_TIMEOUT)
        snprintf(buf, len, "timed out");
    else if ((what & BEV_EVENT_EOF) || se == 0)
        snprintf(buf, len, "connection closed by peer");
    else
        snprintf(buf, len, "%s", evutil_socket_error_to_string(se));
}

static int tls_fail(net_tls_t *t, char *err, size_t errlen, const char *what, const char *file)
{
    char why[NET_ERR_LEN];
    net_tls_queue_str(why, sizeof why);
    snprintf(err, errlen, "%s%s%s: %s", what, file ? " " : "", file ? file : "", why);
    SSL_CTX_free(t->ctx);
    free(t);
    return KL_ETLS;
}

static int tls_new(const net_tls_config_t *cfg, bool server, net_tls_t **out, char *err, size_t errlen)
{
    static const unsigned char sid_ctx[] = "keel";
    if (!cfg || !out) return KL_EINVAL;
    *out = NULL;
    if (errlen) err[0] = '\0';
    const char *bad = NULL;
    if (server && (!cfg->cert_file || !cfg->key_file))
        bad = "a TLS listener needs a certificate and a private key";
    else if (!cfg->cert_file != !cfg->key_file)
        bad = "a certificate and its private key must be given together";
    else if (server && cfg->require_client_auth && !cfg->ca_file)
        bad = "requiring client certificates needs a CA file to verify them";
    if (bad) {
        snprintf(err, errlen, "%s", bad);
        return KL_ECONFIG;
    }
    net_tls_t *t = calloc(1, sizeof *t);
    if (!t) return KL_ENOMEM;
    t->server = server;
    ERR_clear_error();
    t->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!t->ctx) return tls_fail(t, err, errlen, "SSL_CTX_new", NULL);
    if (!SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION))
        return tls_fail(t, err, errlen, "cannot require TLS 1.2", NULL);
    /* Frames carry their own lengths, so a peer that closes without
     * close_notify is a plain EOF, not a truncation attack. */
    SSL_CTX_set_options(t->ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (cfg->cert_file) {
        if (SSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != 1)
            return tls_fail(t, err, errlen, "cannot load certificate", cfg->cert_file);
        if (SSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1)
            return tls_fail(t, err, errlen, "cannot load private key", cfg->key_file);
        if (SSL_CTX_check_private_key(t->ctx) != 1)
            return tls_fail(t, err, errlen, "private key does not match certificate", cfg->key_file);
    }
    if (cfg->ca_file && SSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != 1)
        return tls_fail(t, err, errlen, "cannot load CA", cfg->ca_file);
    if (!server) {
        if (!cfg->ca_file && SSL_CTX_set_default_verify_paths(t->ctx) != 1)
            return tls_fail(t, err, errlen, "cannot load the system CA store", NULL);
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER, NULL);
    } else if (cfg->require_client_auth) {
        /* ssl.client.auth=required: no certificate, no connection. The CA
         * names tell clients which certificate to present. */
        SSL_CTX_set_verify(t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca_file);
        if (!names) return tls_fail(t, err, errlen, "cannot read CA names from", cfg->ca_file);
        SSL_CTX_set_client_CA_list(t->ctx, names);
        /* Session resumption with peer verification needs a context id. */
        SSL_CTX_set_session_id_context(t->ctx, sid_ctx, sizeof sid_ctx - 1);
    }
    *out = t;
    return 0;
}

int net_tls_server_new(const net_tls_config_t *cfg, net_tls_t **out, char *err, size_t errlen)
{
    return tls_new(cfg, true, out, err, errlen);
}

int net_tls_client_new(const net_tls_config_t *cfg, net_tls_t **out, char *err, size_t errlen)
{
    return tls_new(cfg, false, out, err, errlen);
}

void net_tls_free(net_tls_t *t)
{
    if (!t) return;
    SSL_CTX_free(t->ctx); /* live SSL objects keep their own reference */
    free(t);
}

bool net_tls_is_server(const net_tls_t *t) { return t->server; }

void net_bev_close(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl && SSL_is_init_finished(ssl)) {
        SSL_shutdown(ssl); /* best effort close_notify; the socket is non-blocking */
        ERR_clear_error();
    }
    bufferevent_free(bev);
}

SSL *net_tls_ssl_new(net_tls_t *t, const char *host, char *err, size_t errlen)
{
    ERR_clear_error();
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) goto fail;
    if (!t->server && host && host[0]) {
        /* The certificate must name the host we dialled: an IP literal is
         * matched against IP SANs, a name against DNS SANs (and sent as SNI). */
        unsigned char ip[sizeof(struct in6_addr)];
        bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
        X509_VERIFY_PARAM *param = SSL_get0_param(ssl);
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
                       : SSL_set1_host(ssl, host) && SSL_set_tlsext_host_name(ssl, host);
        if (!ok) goto fail;
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    }
    return ssl;
fail: {
    char why[NET_ERR_LEN];
    net_tls_queue_str(why, sizeof why);
    snprintf(err, errlen, "cannot set up TLS for %s: %s", host ? host : "?", why);
    SSL_free(ssl);
    return NULL;
}
}
