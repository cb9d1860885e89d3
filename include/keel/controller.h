/* controller.h — the controller role of keeld: a Raft voter of the metadata
 * log whose leader is the active controller (DESIGN.md §1, §3). */
#ifndef KEEL_CONTROLLER_H
#define KEEL_CONTROLLER_H

#include "keel/config.h"
#include "keel/net.h"

#define CONTROLLER_HOUSEKEEPING_MS 100 /* no-op and snapshot checks run this often */
#define CONTROLLER_SNAPSHOT_RETRY_MS 5000 /* after a failed snapshot (e.g. disk full), wait this long */

typedef struct controller controller_t;

int controller_open(net_loop_t *loop, const kl_config_t *cfg, const char *metadata_dir,
                    const char *cluster_id, net_tls_t *client_tls, controller_t **out, char *err,
                    size_t errlen);
void controller_close(controller_t *c);
/* Dispatches every request that reaches a controller listener; owns req. */
void controller_on_request(controller_t *c, net_conn_id_t conn, wire_msg_t *req);
void controller_on_conn_closed(controller_t *c, net_conn_id_t conn);
/* Graceful stop; `done` runs once when the process may exit. */
void controller_shutdown(controller_t *c, void (*done)(void *arg), void *arg);

#endif
