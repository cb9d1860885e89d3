/* kcfg.c — keeld's configuration schema and the parsing of its structured values. */
#include "keel/kcfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"

#define I64MAX INT64_MAX

static const kl_config_key_t schema[] = {
    {"process.roles", KL_CFG_LIST, NULL, true, 0, 0, "controller or broker (one role per process)"},
    {"node.id", KL_CFG_INT, NULL, true, 0, 2147483647, "this node's id"},
    {"controller.quorum.voters", KL_CFG_LIST, NULL, true, 0, 0, "id@host:port,... static voter set"},
    {"listeners", KL_CFG_LIST, NULL, true, 0, 0, "PLAINTEXT://host:port or SSL://host:port"},
    {"log.dirs", KL_CFG_LIST, NULL, true, 0, 0, "data directories (formatted by keelctl storage format)"},
    {"metadata.log.dir", KL_CFG_STRING, NULL, false, 0, 0, "metadata log directory (default: first of log.dirs)"},
    {"controller.quorum.election.timeout.ms", KL_CFG_INT, "1000", false, 10, 600000, "election timeout T; candidates wait [T,2T)"},
    {"controller.quorum.fetch.timeout.ms", KL_CFG_INT, "2000", false, 10, 600000, "follower without a successful fetch this long starts an election"},
    {"controller.quorum.election.backoff.max.ms", KL_CFG_INT, "1000", false, 1, 600000, "max backoff after a failed election"},
    {"controller.quorum.append.linger.ms", KL_CFG_INT, "5", false, 0, 10000, "group commit: how long proposals wait to share one fsync"},
    {"controller.quorum.request.timeout.ms", KL_CFG_INT, "2500", false, 10, 600000, "Raft request timeout"},
    {"controller.quorum.fast.election.max.ms", KL_CFG_INT, "120", false, 1, 60000, "after the leader's connection breaks, elect within a jittered delay up to this"},
    {"controller.quorum.fetch.stall.ms", KL_CFG_INT, "700", false, 0, 600000, "a fetch unanswered this long means the leader has stalled (Keel; 0 = wait for controller.quorum.fetch.timeout.ms like KRaft)"},
    {"metadata.max.idle.interval.ms", KL_CFG_INT, "500", false, 0, 86400000, "active controller appends a no-op record when idle this long (0 = off)"},
    {"metadata.log.max.record.bytes.between.snapshots", KL_CFG_INT, "20971520", false, 1, I64MAX, "snapshot after this many new log bytes"},
    {"metadata.log.max.snapshot.interval.ms", KL_CFG_INT, "3600000", false, 0, I64MAX, "snapshot at least this often when anything changed (0 = off)"},
    {"metadata.log.segment.bytes", KL_CFG_INT, "8388608", false, 4096, 1073741824, "metadata log segment size"},
    {"socket.request.max.bytes", KL_CFG_INT, "104857600", false, 1024, 1073741824, "largest accepted frame"},
    {"socket.source.address", KL_CFG_STRING, NULL, false, 0, 0, "local IP address outgoing connections are made from (Keel; default: the kernel's choice)"},
    {"ssl.certificate.location", KL_CFG_STRING, NULL, false, 0, 0, "PEM certificate for SSL listeners and outgoing mutual TLS"},
    {"ssl.key.location", KL_CFG_STRING, NULL, false, 0, 0, "PEM private key"},
    {"ssl.ca.location", KL_CFG_STRING, NULL, false, 0, 0, "PEM CA bundle used to verify peers"},
    {"ssl.client.auth", KL_CFG_STRING, "none", false, 0, 0, "required|none: require client certificates on SSL listeners"},
    {"log.level", KL_CFG_STRING, "info", false, 0, 0, "debug|info|warn|error"},
    /* brokers and the controller's view of them (DESIGN.md §3) */
    {"broker.rack", KL_CFG_STRING, NULL, false, 0, 0, "rack of this broker, for rack-aware replica assignment"},
    {"broker.heartbeat.interval.ms", KL_CFG_INT, "2000", false, 10, 600000, "broker heartbeats to the active controller this often"},
    {"broker.session.timeout.ms", KL_CFG_INT, "9000", false, 100, 3600000, "controller fences a broker silent this long"},
    {"broker.session.disconnect.grace.ms", KL_CFG_INT, "250", false, 0, 3600000, "controller fences a broker whose connection broke and was not re-made this soon (Keel)"},
    {"controlled.shutdown.timeout.ms", KL_CFG_INT, "30000", false, 0, 3600000, "a stopping broker waits this long for its leaderships to move"},
    {"num.partitions", KL_CFG_INT, "1", false, 1, 10000, "partitions of a topic created without a count"},
    {"default.replication.factor", KL_CFG_INT, "1", false, 1, 16, "replication factor of a topic created without one"},
    {"min.insync.replicas", KL_CFG_INT, "1", false, 1, 16, "acks=all needs an ISR at least this big (topic config overrides)"},
    {"unclean.leader.election.enable", KL_CFG_BOOL, "false", false, 0, 0, "elect an out-of-sync replica when no ISR member is live (may lose data)"},
    {"auto.leader.rebalance.enable", KL_CFG_BOOL, "true", false, 0, 0, "move leadership back to preferred replicas periodically"},
    {"leader.imbalance.check.interval.seconds", KL_CFG_INT, "300", false, 1, 86400, "how often the controller checks leader balance"},
    {"leader.imbalance.per.broker.percentage", KL_CFG_INT, "10", false, 0, 100, "imbalance that triggers a preferred election"},
    /* partitions (DESIGN.md §4, §5) */
    {"replica.lag.time.max.ms", KL_CFG_INT, "30000", false, 10, 604800000, "a follower not caught up this long leaves the ISR"},
    {"replica.fetch.wait.max.ms", KL_CFG_INT, "500", false, 0, 60000, "follower fetch long poll"},
    {"replica.fetch.max.bytes", KL_CFG_INT, "1048576", false, 1024, 1073741824, "bytes a follower asks for per fetch"},
    {"replica.fetch.min.bytes", KL_CFG_INT, "1", false, 1, 1073741824, "follower fetch answers once this much is readable"},
    {"message.max.bytes", KL_CFG_INT, "1048588", false, 128, 16777216, "largest record batch a producer may send"},
    {"log.segment.bytes", KL_CFG_INT, "1073741824", false, 512, 1073741824, "partition log segment size"},
    {"log.index.interval.bytes", KL_CFG_INT, "4096", false, 1, 1073741824, "bytes between sparse index entries"},
    {"log.retention.ms", KL_CFG_INT, "604800000", false, -1, I64MAX, "delete segments older than this (-1 never)"},
    {"log.retention.bytes", KL_CFG_INT, "-1", false, -1, I64MAX, "delete oldest segments while a partition is bigger (-1 never)"},
    {"log.flush.interval.messages", KL_CFG_INT, "-1", false, -1, I64MAX, "fsync a partition after this many records (-1: rely on replication)"},
    {"log.flush.interval.ms", KL_CFG_INT, "-1", false, -1, I64MAX, "fsync a partition when unsynced data is this old (-1: rely on replication)"},
#ifdef KL_INJECT_BUGS
    /* Only in keeld-bugs (Makefile): issue 4's teeth, a broker that breaks
     * its own guarantees so that a chaos run must come out invalid. */
    {"debug.inject.bug", KL_CFG_STRING, "none", false, 0, 0, "none|ack-on-append|truncate-to-hw: make the broker lose acknowledged writes (testing only)"},
#endif
    {NULL, 0, NULL, false, 0, 0, NULL},
};

const kl_config_key_t *kcfg_schema(void) { return schema; }

/* Splits "host:port" where host may be "[v6]". */
static int split_hostport(const char *s, size_t n, char *host, size_t hostlen, int *port)
{
    const char *colon = NULL;
    for (size_t i = n; i > 0; i--)
        if (s[i - 1] == ':') { colon = s + i - 1; break; }
    if (!colon || colon == s) return KL_EINVAL;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { h++; hl -= 2; }
    if (hl == 0 || hl >= hostlen) return KL_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    const char *ps = colon + 1;
    size_t pl = n - (size_t)(ps - s);
    if (pl == 0 || pl > 5) return KL_EINVAL;
    long p = 0;
    for (size_t i = 0; i < pl; i++) {
        if (!isdigit((unsigned char)ps[i])) return KL_EINVAL;
        p = p * 10 + (ps[i] - '0');
    }
    if (p > 65535) return KL_EINVAL;
    *port = (int)p;
    return 0;
}

/* Iterates comma-separated items with surrounding blanks trimmed. */
static const char *next_item(const char *s, const char **item, size_t *len)
{
    while (*s == ' ' || *s == '\t' || *s == ',') s++;
    if (!*s) return NULL;
    const char *e = strchr(s, ',');
    if (!e) e = s + strlen(s);
    const char *t = e;
    while (t > s && (t[-1] == ' ' || t[-1] == '\t')) t--;
    *item = s;
    *len = (size_t)(t - s);
    return e;
}

int kcfg_parse_voters(const char *s, kcfg_voter_t *out, int max, int *n, char *err, size_t errlen)
{
    *n = 0;
    const char *item;
    size_t len;
    while ((s = next_item(s, &item, &len)) != NULL) {
        const char *at = memchr(item, '@', len);
        if (!at) goto bad;
        char idbuf[16];
        size_t il = (size_t)(at - item);
        if (il == 0 || il >= sizeof idbuf) goto bad;
        memcpy(idbuf, item, il);
        idbuf[il] = '\0';
        char *end;
        errno = 0;
        long id = strtol(idbuf, &end, 10);
        if (*end || errno || id < 0 || id > 2147483647) goto bad;
        if (*n >= max) {
            snprintf(err, errlen, "controller.quorum.voters: more than %d voters", max);
            return KL_ECONFIG;
        }
        kcfg_voter_t *v = &out[*n];
        v->id = (int32_t)id;
        if (split_hostport(at + 1, len - il - 1, v->host, sizeof v->host, &v->port) != 0 || v->port == 0)
            goto bad;
        for (int i = 0; i < *n; i++)
            if (out[i].id == v->id) {
                snprintf(err, errlen, "controller.quorum.voters: node id %d listed twice", v->id);
                return KL_ECONFIG;
            }
        (*n)++;
        continue;
    bad:
        snprintf(err, errlen, "controller.quorum.voters: bad entry '%.*s' (want id@host:port)",
                 (int)len, item);
        return KL_ECONFIG;
    }
    if (*n == 0) {
        snprintf(err, errlen, "controller.quorum.voters: empty");
        return KL_ECONFIG;
    }
    return 0;
}

int kcfg_parse_listeners(const char *s, kcfg_listener_t *out, int max, int *n, char *err,
                         size_t errlen)
{
    *n = 0;
    const char *item;
    size_t len;
    while ((s = next_item(s, &item, &len)) != NULL) {
        kcfg_listener_t l;
        const char *rest;
        if (len > 13 && strncmp(item, "PLAINTEXT://", 12) == 0) {
            l.proto = KCFG_PLAINTEXT;
            rest = item + 12;
        } else if (len > 7 && strncmp(item, "SSL://", 6) == 0) {
            l.proto = KCFG_SSL;
            rest = item + 6;
        } else {
            snprintf(err, errlen, "listeners: '%.*s' must start with PLAINTEXT:// or SSL://",
                     (int)len, item);
            return KL_ECONFIG;
        }
        if (split_hostport(rest, len - (size_t)(rest - item), l.host, sizeof l.host, &l.port) != 0) {
            snprintf(err, errlen, "listeners: bad address in '%.*s' (want host:port)", (int)len, item);
            return KL_ECONFIG;
        }
        if (*n >= max) {
            snprintf(err, errlen, "listeners: more than %d listeners", max);
            return KL_ECONFIG;
        }
        out[(*n)++] = l;
    }
    if (*n == 0) {
        snprintf(err, errlen, "listeners: empty");
        return KL_ECONFIG;
    }
    return 0;
}

int kcfg_metadata_dir(const kl_config_t *c, char *out, size_t outlen)
{
    const char *m = kl_config_str(c, "metadata.log.dir");
    if (m && *m) {
        if (strlen(m) >= outlen) return KL_ETOOBIG;
        strcpy(out, m);
        return 0;
    }
    const char *dirs = kl_config_str(c, "log.dirs");
    const char *item;
    size_t len;
    if (!dirs || !next_item(dirs, &item, &len)) return KL_ECONFIG;
    if (len >= outlen) return KL_ETOOBIG;
    memcpy(out, item, len);
    out[len] = '\0';
    return 0;
}

static bool has_role(const char *roles, const char *role)
{
    const char *item;
    size_t len;
    while ((roles = next_item(roles, &item, &len)) != NULL)
        if (len == strlen(role) && strncmp(item, role, len) == 0) return true;
    return false;
}

int kcfg_load(const char *path, const char *const *overrides, int n_overrides,
              kl_config_t **out, char *err, size_t errlen)
{
    kl_config_t *c = kl_config_new(schema);
    if (!c) return KL_ENOMEM;
    int rc = kl_config_load_file(c, path, err, errlen);
    for (int i = 0; rc == 0 && i < n_overrides; i++) rc = kl_config_set(c, overrides[i], err, errlen);
    if (rc != 0) goto fail;
    char sub[KL_CONFIG_ERR_LEN];
    if ((rc = kl_config_validate(c, sub, sizeof sub)) != 0) {
        snprintf(err, errlen, "%s: %s", path, sub);
        goto fail;
    }

    const char *roles = kl_config_str(c, "process.roles");
    const char *item;
    size_t len;
    for (const char *s = roles; (s = next_item(s, &item, &len)) != NULL;) {
        if (!(len == 10 && strncmp(item, "controller", 10) == 0) && !(len == 6 && strncmp(item, "broker", 6) == 0)) {
            snprintf(err, errlen, "%s: process.roles: unknown role '%.*s' (want controller or broker)", path,
                     (int)len, item);
            rc = KL_ECONFIG;
            goto fail;
        }
    }
    if (has_role(roles, "controller") && has_role(roles, "broker")) {
        snprintf(err, errlen, "%s: process.roles: run controller and broker as separate processes", path);
        rc = KL_ECONFIG;
        goto fail;
    }
    kcfg_voter_t voters[RAFT_MAX_VOTERS];
    int nv;
    if ((rc = kcfg_parse_voters(kl_config_str(c, "controller.quorum.voters"), voters,
                                RAFT_MAX_VOTERS, &nv, sub, sizeof sub)) != 0) {
        snprintf(err, errlen, "%s: %s", path, sub);
        goto fail;
    }
    int64_t id = kl_config_int(c, "node.id");
    bool in_voters = false;
    for (int i = 0; i < nv; i++) in_voters |= voters[i].id == id;
    if (has_role(roles, "broker") && in_voters) {
        snprintf(err, errlen, "%s: node.id %lld is a broker but also in controller.quorum.voters", path,
                 (long long)id);
        rc = KL_ECONFIG;
        goto fail;
    }
    if (has_role(roles, "controller") && !in_voters) {
        snprintf(err, errlen, "%s: node.id %lld is a controller but not in controller.quorum.voters",
                 path, (long long)id);
        rc = KL_ECONFIG;
        goto fail;
    }
    kcfg_listener_t ls[KCFG_MAX_LISTENERS];
    int nl;
    if ((rc = kcfg_parse_listeners(kl_config_str(c, "listeners"), ls, KCFG_MAX_LISTENERS, &nl, sub,
                                   sizeof sub)) != 0) {
        snprintf(err, errlen, "%s: %s", path, sub);
        goto fail;
    }
    bool ssl = false;
    for (int i = 0; i < nl; i++) ssl |= ls[i].proto == KCFG_SSL;
    if (ssl && (!kl_config_str(c, "ssl.certificate.location") || !kl_config_str(c, "ssl.key.location"))) {
        snprintf(err, errlen, "%s: an SSL listener needs ssl.certificate.location and ssl.key.location", path);
        rc = KL_ECONFIG;
        goto fail;
    }
    const char *ca = kl_config_str(c, "ssl.client.auth");
    if (strcmp(ca, "required") != 0 && strcmp(ca, "none") != 0) {
        snprintf(err, errlen, "%s: ssl.client.auth must be required or none, not '%s'", path, ca);
        rc = KL_ECONFIG;
        goto fail;
    }
    if (strcmp(ca, "required") == 0 && !kl_config_str(c, "ssl.ca.location")) {
        snprintf(err, errlen, "%s: ssl.client.auth=required needs ssl.ca.location", path);
        rc = KL_ECONFIG;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    kl_config_free(c);
    return rc ? rc : KL_ECONFIG;
}

int kcfg_raft_config(const kl_config_t *c, raft_config_t *cfg, char *err, size_t errlen)
{
    raft_config_defaults(cfg);
    kcfg_voter_t voters[RAFT_MAX_VOTERS];
    int nv;
    int rc = kcfg_parse_voters(kl_config_str(c, "controller.quorum.voters"), voters, RAFT_MAX_VOTERS,
                               &nv, err, errlen);
    if (rc) return rc;
    cfg->node_id = (int32_t)kl_config_int(c, "node.id");
    cfg->n_voters = nv;
    for (int i = 0; i < nv; i++) cfg->voters[i] = voters[i].id;
    cfg->election_timeout_ms = (int)kl_config_int(c, "controller.quorum.election.timeout.ms");
    cfg->fetch_timeout_ms = (int)kl_config_int(c, "controller.quorum.fetch.timeout.ms");
    cfg->election_backoff_max_ms = (int)kl_config_int(c, "controller.quorum.election.backoff.max.ms");
    cfg->append_linger_ms = (int)kl_config_int(c, "controller.quorum.append.linger.ms");
    cfg->request_timeout_ms = (int)kl_config_int(c, "controller.quorum.request.timeout.ms");
    cfg->fast_election_max_ms = (int)kl_config_int(c, "controller.quorum.fast.election.max.ms");
    if (cfg->fast_election_min_ms > cfg->fast_election_max_ms)
        cfg->fast_election_min_ms = cfg->fast_election_max_ms / 2;
    if (cfg->request_timeout_ms <= cfg->fetch_max_wait_ms) {
        snprintf(err, errlen, "controller.quorum.request.timeout.ms: %d must be above the %d ms long poll",
                 cfg->request_timeout_ms, cfg->fetch_max_wait_ms);
        return KL_ECONFIG;
    }
    cfg->fetch_stall_ms = (int)kl_config_int(c, "controller.quorum.fetch.stall.ms");
    /* a healthy leader parks an empty fetch for the whole long poll (raft.h) */
    if (cfg->fetch_stall_ms && cfg->fetch_stall_ms <= cfg->fetch_max_wait_ms) {
        snprintf(err, errlen, "controller.quorum.fetch.stall.ms: %d must be 0 or above the %d ms long poll",
                 cfg->fetch_stall_ms, cfg->fetch_max_wait_ms);
        return KL_ECONFIG;
    }
    return 0;
}
