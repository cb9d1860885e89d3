/* kcfg.h — the keeld configuration schema (Kafka's key names where the concept
 * is the same), shared by keeld and `keelctl storage format`. */
#ifndef KEEL_KCFG_H
#define KEEL_KCFG_H

#include <stddef.h>
#include <stdint.h>

#include "keel/config.h"
#include "keel/raft.h"

#define KCFG_HOST_LEN 256
#define KCFG_MAX_LISTENERS 4

typedef struct kcfg_voter {
    int32_t id;
    char host[KCFG_HOST_LEN];
    int port;
} kcfg_voter_t;

typedef enum kcfg_proto { KCFG_PLAINTEXT = 0, KCFG_SSL = 1 } kcfg_proto_t;

typedef struct kcfg_listener {
    kcfg_proto_t proto;
    char host[KCFG_HOST_LEN];
    int port;
} kcfg_listener_t;

/* NULL-terminated schema of every key keeld accepts. */
const kl_config_key_t *kcfg_schema(void);

/* Loads `path`, applies "k=v" overrides in order, validates required keys and
 * cross-key rules (node.id in voters for a controller, SSL listener needs
 * ssl.certificate.location and ssl.key.location, ...). KL_ECONFIG + message. */
int kcfg_load(const char *path, const char *const *overrides, int n_overrides,
              kl_config_t **out, char *err, size_t errlen);

/* "1@host:port,2@host:port" -> voters; KL_ECONFIG on junk or duplicates. */
int kcfg_parse_voters(const char *s, kcfg_voter_t *out, int max, int *n, char *err,
                      size_t errlen);
/* "PLAINTEXT://h:p,SSL://h:p" -> listeners. */
int kcfg_parse_listeners(const char *s, kcfg_listener_t *out, int max, int *n, char *err,
                         size_t errlen);
/* metadata.log.dir if set, else the first entry of log.dirs. */
int kcfg_metadata_dir(const kl_config_t *c, char *out, size_t outlen);
/* Fills raft timing keys (controller.quorum.*) into cfg (ids and voters too). */
int kcfg_raft_config(const kl_config_t *c, raft_config_t *cfg, char *err, size_t errlen);

#endif
