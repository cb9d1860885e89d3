/* controller.c — the controller role: a voter of the metadata quorum whose
 * state machine is the metadata image; the Raft leader is the active
 * controller (DESIGN.md §1, §3). It keeps the log alive with no-op records,
 * snapshots the image, and answers DescribeQuorum and ApiVersions. */
#include "keel/controller.h"

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "keel/err.h"
#include "keel/log.h"
#include "keel/quorum.h"
#include "keel/wire_meta.h"

#define MOD "controller"

struct controller {
    net_loop_t *loop;
    quorum_t *quorum;
    wire_meta_image_t image; /* applied metadata state */
    struct event *housekeeping_ev;
    int64_t idle_interval_ms;       /* metadata.max.idle.interval.ms */
    int64_t snapshot_bytes;         /* metadata.log.max.record.bytes.between.snapshots */
    int64_t snapshot_interval_ms;   /* metadata.log.max.snapshot.interval.ms */
    int64_t last_append_ms;         /* last time the active controller wrote a record */
    int64_t last_snapshot_ms;
    int64_t last_snapshot_end;
    int64_t snapshot_retry_ms;      /* no snapshot attempt before this (after a failure) */
    bool active;                    /* we are the Raft leader */
    bool stopping;
};

/* ---- state machine ------------------------------------------------------- */

static void sm_apply(void *arg, const raft_entry_t *e)
{
    controller_t *c = arg;
    c->image.last_applied_offset = e->offset;
    c->image.last_applied_epoch = e->epoch;
    if (e->control) return; /* leader-change records belong to Raft */
    wire_meta_record_t rec;
    int rc = wire_meta_decode_record(e->data, e->len, &rec);
    if (rc) {
        /* A committed record we cannot read means a newer writer or a bug;
         * skipping it would silently fork our image from the others'. */
        KL_ERROR(MOD, "committed record at offset %lld does not decode (%s); stopping",
                 (long long)e->offset, kl_strerror(rc));
        exit(1);
    }
    c->image.records_applied++;
    if (rec.type == WIRE_META_NO_OP) c->image.no_op_count++;
}

static int sm_restore(void *arg, raft_snapshot_id_t id, const uint8_t *data, uint64_t len)
{
    controller_t *c = arg;
    wire_meta_image_t img;
    int rc = wire_meta_decode_image(data, len, &img);
    if (rc) return KL_ECORRUPT;
    if (img.last_applied_offset != id.end_offset - 1) {
        KL_ERROR(MOD, "snapshot ending at %lld claims last applied offset %lld", (long long)id.end_offset,
                 (long long)img.last_applied_offset);
        return KL_ECORRUPT;
    }
    c->image = img;
    c->last_snapshot_end = id.end_offset;
    return 0;
}

static void sm_role_changed(void *arg, raft_role_t role, int32_t epoch, int32_t leader)
{
    controller_t *c = arg;
    bool active = role == RAFT_LEADER;
    if (active && !c->active) {
        KL_INFO(MOD, "node is the active controller in epoch %d", epoch);
        c->last_append_ms = net_now_ms();
    } else if (!active && c->active) {
        KL_INFO(MOD, "no longer the active controller (role %s, epoch %d, leader %d)", raft_role_name(role),
                epoch, leader);
    }
    c->active = active;
}

/* ---- housekeeping: liveness no-ops and snapshots ------------------------- */

static void maybe_noop(controller_t *c, int64_t now)
{
    if (!c->active || c->stopping || c->idle_interval_ms == 0) return;
    if (now - c->last_append_ms < c->idle_interval_ms) return;
    kl_buf_t b;
    kl_buf_init(&b, 0);
    int rc = wire_meta_encode_noop(&b);
    if (rc == 0) rc = quorum_propose(c->quorum, b.data, (uint32_t)b.len, NULL, NULL);
    kl_buf_free(&b);
    if (rc && rc != KL_ENOTLEADER) KL_WARN(MOD, "cannot append a no-op record: %s", kl_strerror(rc));
    c->last_append_ms = now;
}

static void maybe_snapshot(controller_t *c, int64_t now)
{
    int64_t end = quorum_applied_end(c->quorum);
    if (end <= c->last_snapshot_end || now < c->snapshot_retry_ms) return;
    bool by_bytes = quorum_log_bytes_since_snapshot(c->quorum) >= c->snapshot_bytes;
    bool by_time = c->snapshot_interval_ms > 0 && now - c->last_snapshot_ms >= c->snapshot_interval_ms;
    if (!by_bytes && !by_time) return;
    kl_buf_t b;
    kl_buf_init(&b, 0);
    int rc = wire_meta_encode_image(&c->image, &b);
    if (rc == 0) rc = quorum_snapshot(c->quorum, end, b.data, b.len);
    kl_buf_free(&b);
    if (rc) {
        KL_WARN(MOD, "snapshot at %lld failed: %s; retrying in %d ms", (long long)end, kl_strerror(rc),
                CONTROLLER_SNAPSHOT_RETRY_MS);
        c->snapshot_retry_ms = now + CONTROLLER_SNAPSHOT_RETRY_MS;
        return;
    }
    c->last_snapshot_end = end;
    c->last_snapshot_ms = now;
}

static void on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    controller_t *c = arg;
    int64_t now = net_now_ms();
    maybe_noop(c, now);
    maybe_snapshot(c, now);
}

/* ---- requests ------------------------------------------------------------ */

static void reply(controller_t *c, net_conn_id_t conn, wire_msg_t *resp)
{
    int rc = net_reply(c->loop, conn, resp);
    if (rc) KL_DEBUG(MOD, "reply to %s: %s", net_conn_addr(c->loop, conn), kl_strerror(rc));
}

void controller_on_request(controller_t *c, net_conn_id_t conn, wire_msg_t *req)
{
    wire_msg_t resp;
    switch (req->api) {
    case WIRE_API_VOTE:
    case WIRE_API_BEGIN_QUORUM_EPOCH:
    case WIRE_API_END_QUORUM_EPOCH:
    case WIRE_API_FETCH_RAFT:
    case WIRE_API_FETCH_SNAPSHOT:
        quorum_on_request(c->quorum, conn, req);
        return;
    case WIRE_API_DESCRIBE_QUORUM:
        wire_msg_init(&resp, req->api, true, req->correlation_id);
        quorum_describe(c->quorum, &resp);
        reply(c, conn, &resp);
        break;
    case WIRE_API_API_VERSIONS:
        wire_msg_init(&resp, req->api, true, req->correlation_id);
        wire_api_versions_local(&resp.body.api_versions);
        reply(c, conn, &resp);
        break;
    default:
        wire_msg_init(&resp, req->api, true, req->correlation_id);
        resp.error = KL_EUNKNOWNAPI;
        snprintf(resp.error_message, sizeof resp.error_message, "a controller does not serve %s",
                 wire_api_name(req->api));
        reply(c, conn, &resp);
        break;
    }
    wire_msg_free(req);
}

void controller_on_conn_closed(controller_t *c, net_conn_id_t conn) { quorum_on_conn_closed(c->quorum, conn); }

void controller_shutdown(controller_t *c, void (*done)(void *arg), void *arg)
{
    c->stopping = true;
    quorum_shutdown(c->quorum, done, arg);
}

/* ---- lifecycle ------------------------------------------------------------ */

int controller_open(net_loop_t *loop, const kl_config_t *cfg, const char *metadata_dir,
                    const char *cluster_id, net_tls_t *client_tls, controller_t **out, char *err,
                    size_t errlen)
{
    controller_t *c = calloc(1, sizeof *c);
    if (!c) return KL_ENOMEM;
    c->loop = loop;
    c->image = (wire_meta_image_t){0, 0, -1, -1};
    c->idle_interval_ms = kl_config_int(cfg, "metadata.max.idle.interval.ms");
    c->snapshot_bytes = kl_config_int(cfg, "metadata.log.max.record.bytes.between.snapshots");
    c->snapshot_interval_ms = kl_config_int(cfg, "metadata.log.max.snapshot.interval.ms");
    c->last_snapshot_ms = net_now_ms();
    quorum_options_t qo = {
        .cfg = cfg,
        .metadata_dir = metadata_dir,
        .cluster_id = cluster_id,
        .loop = loop,
        .client_tls = client_tls,
        .sm = {.apply = sm_apply, .restore = sm_restore, .role_changed = sm_role_changed, .arg = c},
    };
    int rc = quorum_open(&qo, &c->quorum, err, errlen);
    if (rc) {
        free(c);
        return rc;
    }
    c->housekeeping_ev = event_new(net_loop_base(loop), -1, EV_PERSIST, on_housekeeping, c);
    if (!c->housekeeping_ev) {
        controller_close(c);
        return KL_ENOMEM;
    }
    struct timeval tv = {0, CONTROLLER_HOUSEKEEPING_MS * 1000};
    event_add(c->housekeeping_ev, &tv);
    *out = c;
    return 0;
}

void controller_close(controller_t *c)
{
    if (!c) return;
    if (c->housekeeping_ev) event_free(c->housekeeping_ev);
    quorum_close(c->quorum);
    free(c);
}
