/* broker.h — the broker role of keeld (DESIGN.md §1, §4): an observer of the metadata log that registers with the active controller and serves the partition replicas the committed records give it. */
#ifndef KEEL_BROKER_H
#define KEEL_BROKER_H

#include <stddef.h>

#include "keel/config.h"
#include "keel/net.h"

#define BROKER_HOUSEKEEPING_MS 100        /* session, retention and checkpoint checks run this often */
#define BROKER_CONTROLLER_TIMEOUT_MS 5000 /* a request to the active controller */
#define BROKER_RETRY_MIN_MS 100           /* registration retries back off from this ... */
#define BROKER_RETRY_MAX_MS 2000          /* ... doubling up to this */
#define BROKER_SHUTDOWN_HEARTBEAT_MS 100  /* heartbeat pace during controlled shutdown */
#define BROKER_MAX_FORWARDS 64            /* admin requests forwarded to the controller, outstanding */
#define BROKER_MAX_PID_WAITERS 256        /* InitProducerId requests waiting for a producer-id block */

typedef struct broker broker_t;

/* metadata_dir holds this broker's copy of the metadata log (it is a Raft
 * observer); partitions live in the first entry of log.dirs. */
int broker_open(net_loop_t *loop, const kl_config_t *cfg, const char *metadata_dir, const char *cluster_id,
                net_tls_t *client_tls, broker_t **out, char *err, size_t errlen);
void broker_close(broker_t *b);
/* Every request that reaches a broker listener; owns req. */
void broker_on_request(broker_t *b, net_conn_id_t conn, wire_msg_t *req);
void broker_on_conn_closed(broker_t *b, net_conn_id_t conn);
/* Controlled shutdown (DESIGN.md §3): asks the controller to move this
 * broker's leaderships away, bounded by controlled.shutdown.timeout.ms, then
 * stops the partitions (answering every waiting request) and runs done. */
void broker_shutdown(broker_t *b, void (*done)(void *arg), void *arg);

#endif
