/* bparts.h — inside the broker: the partition replicas it holds (replica core + partition log + produce/fetch service + follower fetchers), driven by broker.c with committed metadata. */
#ifndef KEEL_BPARTS_H
#define KEEL_BPARTS_H

/* Split of work (both files are src/broker/):
 *   broker.c  — config, metadata observer (quorum.h as a Raft observer),
 *               registration, heartbeats, the controller channel, admin
 *               forwarding, Metadata and InitProducerId answers, controlled
 *               shutdown, request dispatch.
 *   bparts.c  — everything per partition, behind this interface.
 * broker.c calls bparts_* only with committed metadata and only once this
 * broker's own current registration is in its image (so a restarted broker
 * does not act on the stale states it replays, DESIGN.md §1). */

#include <stdbool.h>
#include <stdint.h>

#include "keel/config.h"
#include "keel/meta.h"
#include "keel/net.h"
#include "keel/wire.h"

#define BPARTS_MAX_PARTITIONS 10000    /* replicas one broker holds */
#define BPARTS_MAX_WAITING_FETCHES 4096 /* parked long-poll fetches, all partitions */
#define BPARTS_HW_CHECKPOINT_MS 5000   /* Kafka's replica.high.watermark.checkpoint.interval.ms */
#define BPARTS_RETENTION_CHECK_MS 30000 /* how often retention runs (Kafka's log.retention.check.interval.ms is 300000) */
#define BPARTS_FETCH_BACKOFF_MS 100     /* follower: after a failed fetch (replica.fetch.backoff.ms, Kafka 1000) */

typedef struct bparts bparts_t;

/* Callbacks into broker.c. */
typedef struct bparts_env {
    net_loop_t *loop;
    const kl_config_t *cfg; /* keeld config: replica.*, log.*, min.insync.replicas, ... */
    int32_t broker_id;
    const char *log_dir;    /* partition directories live here */
    net_tls_t *client_tls;  /* for fetching from leaders; NULL = plaintext */
    const char *cluster_id;
    /* Current broker epoch (-1 before registration). */
    int64_t (*broker_epoch)(void *arg);
    /* Sends AlterPartition to the active controller; done runs exactly once
     * (err 0 with the response, or a KL_E* code incl. the response's error). */
    void (*send_alter)(void *arg, const wire_alter_partition_req_t *req,
                       void (*done)(void *cb_arg, int err, const wire_alter_partition_resp_t *resp), void *cb_arg);
    /* Where to fetch from: the broker's first listener (host, port). KL_ENOENT if unknown. */
    int (*broker_addr)(void *arg, int32_t broker_id, char *host, size_t hostlen, int *port);
    /* The partition's effective config by Kafka's TOPIC key name
     * (min.insync.replicas, retention.ms, retention.bytes, segment.bytes,
     * max.message.bytes, unclean.leader.election.enable): the topic config,
     * else the cluster config record, else the keeld key it defaults from
     * (log.retention.ms, log.retention.bytes, log.segment.bytes,
     * message.max.bytes; the same name for the other two). Value copied into
     * out; KL_ENOENT if nowhere set. */
    int (*topic_config)(void *arg, const uint8_t topic_id[KL_UUID_LEN], const char *key, char *out, size_t outlen);
    void *arg;
} bparts_env_t;

int bparts_open(const bparts_env_t *env, bparts_t **out, char *err, size_t errlen);
/* Stops fetchers, fails waiting requests with KL_ESHUTDOWN, checkpoints HWs,
 * syncs and closes every log. */
void bparts_close(bparts_t *bp);

/* Committed state of one partition that names this broker as a replica —
 * or no longer does (then the replica stops and its directory is deleted).
 * Called for every change and once for every partition when publishing
 * starts. topic is the topic's name (the directory name). */
void bparts_partition_state(bparts_t *bp, const char *topic, const meta_partition_t *p);
/* The topic was deleted: stop and delete each of its partitions here. */
void bparts_topic_removed(bparts_t *bp, const uint8_t topic_id[KL_UUID_LEN]);
/* A broker became (in)eligible for ISRs and leadership (fenced, controlled
 * shutdown, unfenced): KIP-841 for the leaders here. */
void bparts_eligibility(bparts_t *bp, int32_t broker_id, bool eligible);

/* Requests for partitions (PRODUCE, FETCH, LIST_OFFSETS); owns req. Answers
 * with net_reply, maybe later (acks=all, long poll). */
void bparts_on_request(bparts_t *bp, net_conn_id_t conn, wire_msg_t *req);
/* Waiting requests from this connection are dropped. */
void bparts_on_conn_closed(bparts_t *bp, net_conn_id_t conn);

/* For keeld logs and controlled shutdown. */
int bparts_count(const bparts_t *bp);
int bparts_leader_count(const bparts_t *bp);

#endif
