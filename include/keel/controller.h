/* controller.h — the controller role of keeld: a Raft voter of the metadata
 * log whose leader is the active controller (DESIGN.md §1, §3). */
#ifndef KEEL_CONTROLLER_H
#define KEEL_CONTROLLER_H

#include <stdbool.h>

#include "keel/config.h"
#include "keel/meta.h"
#include "keel/net.h"

#define CONTROLLER_HOUSEKEEPING_MS 100 /* session expiry, no-op and snapshot checks run this often */
#define CONTROLLER_RECONCILE_MS 1000 /* periodic repair of partitions left without a usable leader */
#define CONTROLLER_MAX_WAITING 1024 /* requests decided but not yet answered (records not committed);
                                     * more are refused with KL_EFULL */

typedef struct controller controller_t;

/* Reads the controller keys of cfg (kcfg schema): broker.session.timeout.ms,
 * broker.session.disconnect.grace.ms (at most the session timeout),
 * unclean.leader.election.enable, auto.leader.rebalance.enable,
 * leader.imbalance.check.interval.seconds, leader.imbalance.per.broker.percentage,
 * num.partitions, default.replication.factor, and the metadata.* snapshot and
 * idle keys. Bad values: KL_ECONFIG with the key named in err. */
int controller_open(net_loop_t *loop, const kl_config_t *cfg, const char *metadata_dir,
                    const char *cluster_id, net_tls_t *client_tls, controller_t **out, char *err,
                    size_t errlen);
void controller_close(controller_t *c);
/* Dispatches every request that reaches a controller listener; owns req.
 * Broker and admin APIs (BROKER_REGISTRATION .. ELECT_LEADERS) are answered
 * once every record proposed up to their decision has committed. A node that
 * is not the active controller, or was just elected and has not yet applied
 * its log up to its own epoch, answers KL_ENOTCONTROLLER with the leader it
 * knows (leader_id, and its address from controller.quorum.voters) to retry
 * with; leader_id -1 when none is known. */
void controller_on_request(controller_t *c, net_conn_id_t conn, wire_msg_t *req);
/* A broker whose heartbeat connection closes is fenced after
 * broker.session.disconnect.grace.ms unless it heartbeats again first. */
void controller_on_conn_closed(controller_t *c, net_conn_id_t conn);
/* Graceful stop; `done` runs once when the process may exit. */
void controller_shutdown(controller_t *c, void (*done)(void *arg), void *arg);

/* The committed metadata image (valid until control returns to the loop). */
const meta_image_t *controller_image(const controller_t *c);
/* Whether this node is the active controller and ready to decide. */
bool controller_active(const controller_t *c);

#endif
