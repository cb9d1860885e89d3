/* meta_broker.c — controller decisions about brokers: registration, heartbeats, controlled shutdown, sessions and fencing (DESIGN.md §3). */
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "meta_internal.h"

static bool same_registration(const meta_broker_t *b, const meta_register_broker_t *r)
{
    if (b->n_listeners != r->n_listeners || strcmp(b->rack, r->rack) != 0) return false;
    for (int i = 0; i < r->n_listeners; i++)
        if (strcmp(b->listeners[i].name, r->listeners[i].name) != 0 ||
            strcmp(b->listeners[i].host, r->listeners[i].host) != 0 || b->listeners[i].port != r->listeners[i].port)
            return false;
    return true;
}

int meta_decide_register(const meta_image_t *img, const meta_register_req_t *req, const meta_ctl_config_t *cfg,
                         meta_decision_t *out)
{
    (void)cfg;
    meta_decision_begin(out);
    meta_record_t r = {.type = META_REC_REGISTER_BROKER};
    meta_register_broker_t *reg = &r.u.reg;
    reg->broker_id = req->broker_id;
    reg->broker_epoch = META_EPOCH_FROM_OFFSET;
    memcpy(reg->incarnation, req->incarnation, KL_UUID_LEN);
    reg->listeners = req->listeners;
    reg->n_listeners = req->n_listeners;
    const char *rack = req->rack ? req->rack : "";
    if (strnlen(rack, META_MAX_RACK_LEN + 1) > META_MAX_RACK_LEN)
        return meta_refuse(out, KL_EINVAL, "broker %d: rack longer than %d", (int)req->broker_id, META_MAX_RACK_LEN);
    meta_copy_str(reg->rack, sizeof reg->rack, rack);
    char why[META_MSG_LEN];
    int rc = meta_record_validate(&r, why, sizeof why);
    if (rc) return meta_refuse(out, rc, "broker %d: %.150s", (int)req->broker_id, why);

    const meta_broker_t *b = meta_image_broker(img, req->broker_id);
    if (b && memcmp(b->incarnation, req->incarnation, KL_UUID_LEN) == 0) {
        if (!same_registration(b, reg))
            return meta_refuse(out, KL_EINVAL, "broker %d: the same incarnation registered other listeners or rack",
                               (int)req->broker_id);
        return 0; /* a retry of a registration that already committed */
    }
    if (b && b->state != META_BROKER_FENCED)
        return meta_refuse(out, KL_EEXIST,
                           "broker %d is registered by another incarnation whose session is live; retry once it expires",
                           (int)req->broker_id);
    if (!b && meta_image_broker_count(img) >= META_MAX_BROKERS)
        return meta_refuse(out, KL_ETOOBIG, "already %d brokers", META_MAX_BROKERS);
    rc = meta_push(out, &r);
    if (rc) return rc;
    meta_note(out, 1, "broker %d registers a new incarnation%s", (int)req->broker_id, b ? " (replacing a fenced one)" : "");
    return 0;
}

/* Records that take broker b out of service: its partitions first (out of
 * ISRs, new leaders), so that any committed prefix leaves no fenced leader. */
static int take_down(const meta_image_t *img, const meta_ctl_config_t *cfg, const int32_t *ids, int n,
                     meta_decision_t *out)
{
    meta_view_t v = {.img = img, .down = ids, .n_down = n, .up = -1};
    return meta_reconcile(&v, cfg, false, out);
}

static int push_state(meta_decision_t *out, meta_record_type_t type, const meta_broker_t *b)
{
    meta_record_t r = {.type = type, .u.broker = {b->id, b->epoch}};
    return meta_push(out, &r);
}

int meta_decide_heartbeat(const meta_image_t *img, const meta_heartbeat_req_t *req, const meta_ctl_config_t *cfg,
                          meta_decision_t *out, meta_heartbeat_reply_t *reply)
{
    meta_decision_begin(out);
    memset(reply, 0, sizeof *reply);
    const meta_broker_t *b = meta_image_broker(img, req->broker_id);
    if (!b) return meta_refuse(out, KL_ENOENT, "broker %d is not registered", (int)req->broker_id);
    if (req->broker_epoch != b->epoch)
        return meta_refuse(out, KL_EFENCED, "broker %d: epoch %lld is not the registered %lld; register again",
                           (int)b->id, (long long)req->broker_epoch, (long long)b->epoch);
    int rc = 0;
    switch (b->state) {
    case META_BROKER_FENCED:
        reply->fenced = true;
        if (req->want_shutdown) {
            reply->shutdown_now = true; /* nothing to move: a fenced broker leads nothing */
            break;
        }
        if (req->want_fence || req->metadata_offset < b->epoch) break; /* not caught up to its registration */
        {
            meta_view_t v = {.img = img, .up = b->id};
            rc = push_state(out, META_REC_UNFENCE_BROKER, b);
            if (rc == 0) rc = meta_reconcile(&v, cfg, false, out); /* offline partitions it can lead */
        }
        if (rc == 0) meta_note(out, 1, "broker %d unfenced: caught up to offset %lld", (int)b->id, (long long)b->epoch);
        reply->fenced = false;
        break;
    case META_BROKER_ACTIVE:
        if (req->want_shutdown) {
            rc = push_state(out, META_REC_SHUTDOWN_BROKER, b);
            if (rc == 0) rc = take_down(img, cfg, &b->id, 1, out);
            if (rc == 0) meta_note(out, 1, "broker %d begins controlled shutdown", (int)b->id);
            reply->shutting_down = true;
        } else if (req->want_fence) {
            rc = take_down(img, cfg, &b->id, 1, out);
            if (rc == 0) rc = push_state(out, META_REC_FENCE_BROKER, b);
            if (rc == 0) meta_note(out, 1, "broker %d fenced at its own request", (int)b->id);
            reply->fenced = true;
        }
        break;
    case META_BROKER_SHUTTING_DOWN:
        /* Whatever the first step (or a prefix of it) left leading or in
         * an ISR moves now; once nothing is left, fence it and let it go. */
        rc = take_down(img, cfg, &b->id, 1, out);
        if (rc == 0 && out->records.n == 0) {
            rc = push_state(out, META_REC_FENCE_BROKER, b);
            if (rc == 0) meta_note(out, 1, "broker %d finished controlled shutdown", (int)b->id);
            reply->fenced = reply->shutdown_now = true;
        } else {
            reply->shutting_down = true;
        }
        break;
    }
    if (rc) memset(reply, 0, sizeof *reply);
    return rc;
}

/* ---- sessions -------------------------------------------------------------------- */

void meta_sessions_init(meta_sessions_t *s)
{
    memset(s, 0, sizeof *s);
}

void meta_sessions_free(meta_sessions_t *s)
{
    free(s->s);
    meta_sessions_init(s);
}

static meta_session_t *session_find(const meta_sessions_t *s, int32_t id, int *pos)
{
    int lo = 0, hi = s->n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->s[mid].broker_id < id) lo = mid + 1;
        else hi = mid;
    }
    *pos = lo;
    return lo < s->n && s->s[lo].broker_id == id ? &s->s[lo] : NULL;
}

static int session_set(meta_sessions_t *s, int32_t id, int64_t deadline)
{
    int pos;
    meta_session_t *e = session_find(s, id, &pos);
    if (!e) {
        if (s->n >= META_MAX_BROKERS) return KL_ETOOBIG;
        if (s->n == s->cap) {
            int cap = s->cap ? 2 * s->cap : 8;
            meta_session_t *grown = realloc(s->s, (size_t)cap * sizeof *grown);
            if (!grown) return KL_ENOMEM;
            s->s = grown;
            s->cap = cap;
        }
        memmove(&s->s[pos + 1], &s->s[pos], (size_t)(s->n - pos) * sizeof *s->s);
        s->n++;
        e = &s->s[pos];
        e->broker_id = id;
    }
    e->deadline_ms = deadline;
    return 0;
}

int meta_sessions_start_all(meta_sessions_t *s, const meta_image_t *img, int64_t now_ms, const meta_ctl_config_t *cfg)
{
    s->n = 0;
    for (int i = 0; i < meta_image_broker_count(img); i++) {
        int rc = session_set(s, meta_image_broker_at(img, i)->id, now_ms + cfg->broker_session_timeout_ms);
        if (rc) return rc;
    }
    return 0;
}

int meta_sessions_heartbeat(meta_sessions_t *s, int32_t broker_id, int64_t now_ms, const meta_ctl_config_t *cfg)
{
    return session_set(s, broker_id, now_ms + cfg->broker_session_timeout_ms);
}

void meta_sessions_disconnected(meta_sessions_t *s, int32_t broker_id, int64_t now_ms, const meta_ctl_config_t *cfg)
{
    int pos;
    meta_session_t *e = session_find(s, broker_id, &pos);
    int64_t soon = now_ms + cfg->broker_disconnect_grace_ms;
    if (e && soon < e->deadline_ms) e->deadline_ms = soon;
}

int meta_decide_expire_sessions(const meta_image_t *img, const meta_sessions_t *s, int64_t now_ms,
                                const meta_ctl_config_t *cfg, meta_decision_t *out)
{
    meta_decision_begin(out);
    int32_t expired[META_MAX_BROKERS]; /* sorted: brokers come in id order */
    int n = 0;
    for (int i = 0; i < meta_image_broker_count(img); i++) {
        const meta_broker_t *b = meta_image_broker_at(img, i);
        int pos;
        const meta_session_t *e = session_find(s, b->id, &pos);
        if (b->state != META_BROKER_FENCED && (!e || now_ms >= e->deadline_ms)) expired[n++] = b->id;
    }
    if (n == 0) return 0;
    int rc = take_down(img, cfg, expired, n, out);
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = push_state(out, META_REC_FENCE_BROKER, meta_image_broker(img, expired[i]));
        if (rc == 0) meta_note(out, 2, "broker %d fenced: session expired", (int)expired[i]);
    }
    return rc;
}
