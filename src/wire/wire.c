/* wire.c — frame splitting, header encode/decode and the per-API table, with the ApiVersions, Raft and DescribeQuorum codecs (DESIGN.md §5). */
#include "keel/wire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keel/err.h"
#include "keel/recbatch.h"
#include "wire_impl.h"

/* ---- error reasons ----------------------------------------------------------- */

static _Thread_local char last_error[WIRE_ERRMSG_LEN];

const char *wire_last_error(void)
{
    return last_error;
}

static void set_reason(const char *fmt, va_list ap)
{
    vsnprintf(last_error, sizeof last_error, fmt, ap);
}

int wire_fail(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_reason(fmt, ap);
    va_end(ap);
    return code;
}

bool wire_bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_reason(fmt, ap);
    va_end(ap);
    return false;
}

/* ---- framing ------------------------------------------------------------------ */

int wire_frame_split(const uint8_t *data, size_t avail, size_t max_frame, size_t *frame_len)
{
    if (avail < WIRE_LEN_PREFIX) return KL_EAGAIN;
    uint32_t len = kl_get_be32(data);
    if (len < WIRE_MIN_FRAME - WIRE_LEN_PREFIX)
        return wire_fail(KL_EPROTO, "frame length %" PRIu32 " is below the minimum %u", len,
                    WIRE_MIN_FRAME - WIRE_LEN_PREFIX);
    if (len > max_frame)
        return wire_fail(KL_ETOOBIG, "frame length %" PRIu32 " exceeds the maximum %zu", len, max_frame);
    uint64_t whole = (uint64_t)len + WIRE_LEN_PREFIX;
    if (avail < whole) return KL_EAGAIN;
    *frame_len = (size_t)whole;
    return 0;
}

/* ---- the table: one entry per API, one body message per direction ------------- */

static const wire_api_ops_t api_table[WIRE_FIRST_DATA_API];

static const wire_api_ops_t *api_ops(uint32_t api)
{
    if (api == 0 || api >= WIRE_API_MAX_) return NULL;
    return api < WIRE_FIRST_DATA_API ? &api_table[api] : &wire_data_apis[api - WIRE_FIRST_DATA_API];
}

static const wire_body_ops_t *body_ops(uint32_t api, bool response)
{
    const wire_api_ops_t *a = api_ops(api);
    return a ? (response ? &a->resp : &a->req) : NULL;
}

const char *wire_api_name(uint32_t api)
{
    const wire_api_ops_t *a = api_ops(api);
    return a ? a->name : "unknown";
}

/* Every member of the header's body union is a pointer to a message struct,
 * and C11 §6.2.5p28 gives all such pointers one representation, so the body
 * can be read and written generically through ProtobufCMessage *. */
static void body_set(Keel__Header *h, Keel__Header__BodyCase c, ProtobufCMessage *pb)
{
    h->body_case = c;
    memcpy(&h->api_versions_request, &pb, sizeof pb);
}

static const ProtobufCMessage *body_get(const Keel__Header *h)
{
    const ProtobufCMessage *pb;
    memcpy(&pb, &h->api_versions_request, sizeof pb);
    return pb;
}

/* ---- sub-messages -------------------------------------------------------------- */

static Keel__SnapshotId *enc_snapshot_id(const raft_snapshot_id_t *id, wire_scratch_t *s)
{
    keel__snapshot_id__init(&s->snapshot_id);
    s->snapshot_id.end_offset = id->end_offset;
    s->snapshot_id.last_epoch = id->last_epoch;
    return &s->snapshot_id;
}

static int dec_snapshot_id(const Keel__SnapshotId *pb, raft_snapshot_id_t *id)
{
    if (!pb) return wire_fail(KL_EPROTO, "snapshot_id missing");
    id->end_offset = pb->end_offset;
    id->last_epoch = pb->last_epoch;
    return 0;
}

static bool check_snapshot_id(const raft_snapshot_id_t *id, int64_t min_offset)
{
    WIRE_CHECK(id->end_offset >= min_offset, "snapshot end_offset %" PRId64 " below %" PRId64,
          id->end_offset, min_offset);
    WIRE_CHECK(id->last_epoch >= -1, "snapshot last_epoch %" PRId32 " negative", id->last_epoch);
    return true;
}

int wire_copy_str(char *dst, size_t cap, const char *src, const char *what)
{
    size_t n = strlen(src);
    if (n >= cap) return wire_fail(KL_EPROTO, "%s is %zu bytes, over %zu", what, n, cap - 1);
    memcpy(dst, src, n + 1);
    return 0;
}

/* Encoders hand protobuf-c pointers into the caller's const message; pack
 * never writes through them. */
static char *str_arg(const char *s, size_t cap, const char *what, int *rc)
{
    if (strnlen(s, cap) == cap) *rc = wire_fail(KL_EINVAL, "%s is not NUL-terminated within %zu bytes", what, cap);
    return (char *)(uintptr_t)s;
}

/* ---- ApiVersions ------------------------------------------------------------- */

void wire_api_versions_local(wire_api_versions_resp_t *out)
{
    memset(out, 0, sizeof *out);
    for (uint32_t api = 1; api < WIRE_API_MAX_; api++) {
        out->supported[api] = true;
        out->max_version[api] = WIRE_MAX_VERSION;
    }
}

static int enc_api_versions_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__ApiVersionsResponse *r = (Keel__ApiVersionsResponse *)pb;
    const wire_api_versions_resp_t *v = &m->body.api_versions;
    r->apis = s->api_ptrs;
    for (uint32_t api = 1; api < WIRE_API_MAX_; api++) {
        if (!v->supported[api]) continue;
        Keel__ApiVersion *a = &s->apis[r->n_apis];
        keel__api_version__init(a);
        a->api = api;
        a->max_version = v->max_version[api];
        s->api_ptrs[r->n_apis++] = a;
    }
    return 0;
}

static int dec_api_versions_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__ApiVersionsResponse *r = (const Keel__ApiVersionsResponse *)pb;
    for (size_t i = 0; i < r->n_apis; i++) {
        uint32_t api = r->apis[i]->api;
        if (api == 0 || api >= WIRE_API_MAX_) continue; /* a newer peer's API: not ours to use */
        m->body.api_versions.supported[api] = true;
        m->body.api_versions.max_version[api] = r->apis[i]->max_version;
    }
    return 0;
}

/* ---- Raft common fields --------------------------------------------------------- */

static void enc_raft_common(const raft_msg_t *r, Keel__RaftCommon *pb)
{
    keel__raft_common__init(pb);
    pb->from = r->from;
    pb->to = r->to;
    pb->epoch = r->epoch;
    pb->leader_id = r->leader_id;
    pb->rpc_id = r->rpc_id;
    pb->error = r->error;
}

static int dec_raft_common(const Keel__RaftCommon *pb, raft_msg_t *r)
{
    if (!pb) return wire_fail(KL_EPROTO, "Raft fields missing");
    if (pb->error < INT16_MIN || pb->error > INT16_MAX)
        return wire_fail(KL_EPROTO, "Raft error %" PRId32 " out of range", pb->error);
    r->from = pb->from;
    r->to = pb->to;
    r->epoch = pb->epoch;
    r->leader_id = pb->leader_id;
    r->rpc_id = pb->rpc_id;
    r->error = (int16_t)pb->error;
    return 0;
}

static bool check_raft_common(const raft_msg_t *r, bool response)
{
    WIRE_CHECK(r->from >= 0 && r->to >= 0, "Raft node ids from %" PRId32 " to %" PRId32 " negative",
          r->from, r->to);
    WIRE_CHECK(r->epoch >= 0, "Raft epoch %" PRId32 " negative", r->epoch);
    WIRE_CHECK(r->leader_id >= RAFT_NO_NODE, "Raft leader_id %" PRId32 " invalid", r->leader_id);
    WIRE_CHECK(r->error >= RAFT_OK && r->error <= RAFT_ERR_INVALID_REQUEST, "Raft error %d unknown",
          r->error);
    WIRE_CHECK(response || r->error == RAFT_OK, "Raft error %d on a request", r->error);
    return true;
}

/* ---- Vote ------------------------------------------------------------------------ */

static int enc_vote_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__VoteRequest *v = (Keel__VoteRequest *)pb;
    v->pre_vote = m->body.raft.u.vote_req.pre_vote;
    v->last_epoch = m->body.raft.u.vote_req.last_epoch;
    v->end_offset = m->body.raft.u.vote_req.end_offset;
    return 0;
}

static int dec_vote_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__VoteRequest *v = (const Keel__VoteRequest *)pb;
    m->body.raft.u.vote_req.pre_vote = v->pre_vote;
    m->body.raft.u.vote_req.last_epoch = v->last_epoch;
    m->body.raft.u.vote_req.end_offset = v->end_offset;
    return 0;
}

static bool check_vote_req(const wire_msg_t *m)
{
    WIRE_CHECK(m->body.raft.u.vote_req.last_epoch >= 0 && m->body.raft.u.vote_req.end_offset >= 0,
          "vote request log (%" PRId32 ", %" PRId64 ") negative", m->body.raft.u.vote_req.last_epoch,
          m->body.raft.u.vote_req.end_offset);
    return true;
}

static int enc_vote_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__VoteResponse *v = (Keel__VoteResponse *)pb;
    v->pre_vote = m->body.raft.u.vote_resp.pre_vote;
    v->granted = m->body.raft.u.vote_resp.granted;
    return 0;
}

static int dec_vote_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__VoteResponse *v = (const Keel__VoteResponse *)pb;
    m->body.raft.u.vote_resp.pre_vote = v->pre_vote;
    m->body.raft.u.vote_resp.granted = v->granted;
    return 0;
}

/* ---- EndQuorumEpoch ----------------------------------------------------------------- */

static int enc_end_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__EndQuorumEpochRequest *e = (Keel__EndQuorumEpochRequest *)pb;
    e->n_successors = (size_t)m->body.raft.u.end_epoch_req.n_successors;
    e->successors = (int32_t *)(uintptr_t)m->body.raft.u.end_epoch_req.successors;
    return 0;
}

static int dec_end_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__EndQuorumEpochRequest *e = (const Keel__EndQuorumEpochRequest *)pb;
    if (e->n_successors > RAFT_MAX_VOTERS)
        return wire_fail(KL_EPROTO, "%zu successors, over %d", e->n_successors, RAFT_MAX_VOTERS);
    m->body.raft.u.end_epoch_req.n_successors = (int)e->n_successors;
    if (e->n_successors)
        memcpy(m->body.raft.u.end_epoch_req.successors, e->successors,
               e->n_successors * sizeof *e->successors);
    return 0;
}

static bool check_end_req(const wire_msg_t *m)
{
    int n = m->body.raft.u.end_epoch_req.n_successors;
    WIRE_CHECK(n >= 0 && n <= RAFT_MAX_VOTERS, "%d successors, outside 0..%d", n, RAFT_MAX_VOTERS);
    for (int i = 0; i < n; i++)
        WIRE_CHECK(m->body.raft.u.end_epoch_req.successors[i] >= 0, "successor %" PRId32 " negative",
              m->body.raft.u.end_epoch_req.successors[i]);
    return true;
}

/* ---- FetchRaft ---------------------------------------------------------------------- */

static int enc_fetch_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    (void)s;
    Keel__FetchRaftRequest *f = (Keel__FetchRaftRequest *)pb;
    f->fetch_offset = m->body.raft.u.fetch_req.fetch_offset;
    f->last_fetched_epoch = m->body.raft.u.fetch_req.last_fetched_epoch;
    return 0;
}

static int dec_fetch_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__FetchRaftRequest *f = (const Keel__FetchRaftRequest *)pb;
    m->body.raft.u.fetch_req.fetch_offset = f->fetch_offset;
    m->body.raft.u.fetch_req.last_fetched_epoch = f->last_fetched_epoch;
    return 0;
}

static bool check_fetch_req(const wire_msg_t *m)
{
    WIRE_CHECK(m->body.raft.u.fetch_req.fetch_offset >= 0 && m->body.raft.u.fetch_req.last_fetched_epoch >= 0,
          "fetch position (%" PRId64 ", epoch %" PRId32 ") negative",
          m->body.raft.u.fetch_req.fetch_offset, m->body.raft.u.fetch_req.last_fetched_epoch);
    return true;
}

static int enc_fetch_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__FetchRaftResponse *f = (Keel__FetchRaftResponse *)pb;
    f->high_watermark = m->body.raft.u.fetch_resp.high_watermark;
    f->log_start_offset = m->body.raft.u.fetch_resp.log_start_offset;
    f->diverging_epoch = m->body.raft.u.fetch_resp.diverging_epoch;
    f->diverging_end_offset = m->body.raft.u.fetch_resp.diverging_end_offset;
    f->snapshot_id = enc_snapshot_id(&m->body.raft.u.fetch_resp.snapshot_id, s);
    return 0;
}

/* Entries travel as RecordBatch v2 (DESIGN.md §5), batched by recbatch: one
 * batch per run of equal epoch and control flag, split at RECBATCH_MAX_BYTES. */
static int put_entries(const wire_msg_t *m, kl_buf_t *out)
{
    int rc = recbatch_encode_entries(out, m->body.raft.u.fetch_resp.entries,
                                     m->body.raft.u.fetch_resp.n_entries);
    return rc ? wire_fail(rc, "cannot batch fetch entries: %s", kl_strerror(rc)) : 0;
}

/* The payload's batches become entries pointing into the frame (zero-copy);
 * check_fetch_resp then bounds their count and checks epochs entry by entry. */
static int dec_entries(wire_msg_t *m, raft_entry_t **out, int *n_out)
{
    int rc = recbatch_decode_entries(m->payload, m->payload_len, WIRE_MAX_FETCH_ENTRIES, out, n_out);
    if (rc == KL_ENOMEM) return wire_fail(rc, "no memory for fetch entries");
    if (rc == KL_ETOOBIG)
        return wire_fail(KL_EPROTO, "more than %d fetch entries", WIRE_MAX_FETCH_ENTRIES);
    if (rc == KL_ECORRUPT) /* recbatch does not say which check failed */
        return wire_fail(KL_EPROTO, "fetch response batches corrupt: bad CRC or layout, a record "
                               "Keel does not write, or offsets that do not follow");
    if (rc)
        return wire_fail(KL_EPROTO, "fetch response batches refused: %s",
                    rc == KL_EAGAIN ? "last batch truncated" : kl_strerror(rc));
    return 0;
}

static bool check_fetch_resp(const wire_msg_t *m)
{
    const raft_msg_t *r = &m->body.raft;
    WIRE_CHECK(r->u.fetch_resp.high_watermark >= 0 && r->u.fetch_resp.log_start_offset >= 0,
          "fetch response high watermark %" PRId64 " or log start %" PRId64 " negative",
          r->u.fetch_resp.high_watermark, r->u.fetch_resp.log_start_offset);
    WIRE_CHECK(r->u.fetch_resp.diverging_epoch >= -1 && r->u.fetch_resp.diverging_end_offset >= -1,
          "diverging epoch %" PRId32 " / end offset %" PRId64 " below -1",
          r->u.fetch_resp.diverging_epoch, r->u.fetch_resp.diverging_end_offset);
    if (!check_snapshot_id(&r->u.fetch_resp.snapshot_id, -1)) return false;
    int n = r->u.fetch_resp.n_entries;
    WIRE_CHECK(n >= 0 && n <= WIRE_MAX_FETCH_ENTRIES, "%d fetch entries, outside 0..%d", n,
          WIRE_MAX_FETCH_ENTRIES);
    const raft_entry_t *e = r->u.fetch_resp.entries;
    WIRE_CHECK(n == 0 || e, "fetch entries missing");
    for (int i = 0; i < n; i++) {
        WIRE_CHECK(e[i].offset >= 0 && e[i].epoch >= 0, "fetch entry (%" PRId64 ", epoch %" PRId32 ") negative",
              e[i].offset, e[i].epoch);
        WIRE_CHECK(e[i].len <= INT32_MAX && (e[i].len == 0 || e[i].data), "fetch entry %" PRId64 " data invalid",
              e[i].offset);
        WIRE_CHECK(i == 0 || (e[i - 1].offset < INT64_MAX && e[i].offset == e[i - 1].offset + 1 &&
                         e[i].epoch >= e[i - 1].epoch),
              "fetch entry %d at (%" PRId64 ", epoch %" PRId32 ") does not follow (%" PRId64
              ", epoch %" PRId32 ")",
              i, e[i].offset, e[i].epoch, e[i - 1].offset, e[i - 1].epoch);
    }
    return true;
}

static int dec_fetch_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__FetchRaftResponse *f = (const Keel__FetchRaftResponse *)pb;
    m->body.raft.u.fetch_resp.high_watermark = f->high_watermark;
    m->body.raft.u.fetch_resp.log_start_offset = f->log_start_offset;
    m->body.raft.u.fetch_resp.diverging_epoch = f->diverging_epoch;
    m->body.raft.u.fetch_resp.diverging_end_offset = f->diverging_end_offset;
    wire_decoded_t *d = m->owned_;
    int rc = dec_entries(m, &d->entries, &m->body.raft.u.fetch_resp.n_entries);
    if (rc) return rc;
    m->body.raft.u.fetch_resp.entries = d->entries;
    return dec_snapshot_id(f->snapshot_id, &m->body.raft.u.fetch_resp.snapshot_id);
}

/* ---- FetchSnapshot ------------------------------------------------------------------ */

static int enc_snap_req(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__FetchSnapshotRequest *f = (Keel__FetchSnapshotRequest *)pb;
    f->snapshot_id = enc_snapshot_id(&m->body.raft.u.fetch_snapshot_req.snapshot_id, s);
    f->position = m->body.raft.u.fetch_snapshot_req.position;
    return 0;
}

static int dec_snap_req(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__FetchSnapshotRequest *f = (const Keel__FetchSnapshotRequest *)pb;
    m->body.raft.u.fetch_snapshot_req.position = f->position;
    return dec_snapshot_id(f->snapshot_id, &m->body.raft.u.fetch_snapshot_req.snapshot_id);
}

static bool check_snap_req(const wire_msg_t *m)
{
    WIRE_CHECK(m->body.raft.u.fetch_snapshot_req.position <= INT64_MAX, "snapshot position %" PRIu64 " too large",
          m->body.raft.u.fetch_snapshot_req.position);
    return check_snapshot_id(&m->body.raft.u.fetch_snapshot_req.snapshot_id, 0);
}

static int enc_snap_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__FetchSnapshotResponse *f = (Keel__FetchSnapshotResponse *)pb;
    f->snapshot_id = enc_snapshot_id(&m->body.raft.u.fetch_snapshot_resp.snapshot_id, s);
    f->position = m->body.raft.u.fetch_snapshot_resp.position;
    f->size = m->body.raft.u.fetch_snapshot_resp.size;
    return 0;
}

/* The chunk is the payload: it points into the frame, like fetch entries. */
static int dec_snap_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__FetchSnapshotResponse *f = (const Keel__FetchSnapshotResponse *)pb;
    m->body.raft.u.fetch_snapshot_resp.position = f->position;
    m->body.raft.u.fetch_snapshot_resp.size = f->size;
    m->body.raft.u.fetch_snapshot_resp.chunk = m->payload_len ? m->payload : NULL;
    m->body.raft.u.fetch_snapshot_resp.chunk_len = (uint32_t)m->payload_len; /* frame length is a u32 */
    return dec_snapshot_id(f->snapshot_id, &m->body.raft.u.fetch_snapshot_resp.snapshot_id);
}

static bool check_snap_resp(const wire_msg_t *m)
{
    const raft_msg_t *r = &m->body.raft;
    uint64_t size = r->u.fetch_snapshot_resp.size, pos = r->u.fetch_snapshot_resp.position;
    WIRE_CHECK(size <= INT64_MAX && pos <= size && r->u.fetch_snapshot_resp.chunk_len <= size - pos,
          "snapshot chunk [%" PRIu64 ", +%" PRIu32 ") outside size %" PRIu64, pos,
          r->u.fetch_snapshot_resp.chunk_len, size);
    WIRE_CHECK(r->u.fetch_snapshot_resp.chunk_len == 0 || r->u.fetch_snapshot_resp.chunk, "snapshot chunk missing");
    return check_snapshot_id(&r->u.fetch_snapshot_resp.snapshot_id, -1);
}

static int put_chunk(const wire_msg_t *m, kl_buf_t *out)
{
    int rc = kl_buf_append(out, m->body.raft.u.fetch_snapshot_resp.chunk,
                           m->body.raft.u.fetch_snapshot_resp.chunk_len);
    return rc ? wire_fail(rc, "cannot append snapshot chunk: %s", kl_strerror(rc)) : 0;
}

/* ---- DescribeQuorum ----------------------------------------------------------------- */

static Keel__ReplicaState **enc_replicas(const wire_replica_t *r, int n, wire_scratch_t *s, size_t *used)
{
    Keel__ReplicaState **ptrs = &s->replica_ptrs[*used];
    for (int i = 0; i < n; i++) {
        Keel__ReplicaState *pb = &s->replicas[*used];
        keel__replica_state__init(pb);
        pb->node_id = r[i].node_id;
        pb->log_end_offset = r[i].log_end_offset;
        pb->last_fetch_timestamp = r[i].last_fetch_timestamp;
        pb->last_caught_up_timestamp = r[i].last_caught_up_timestamp;
        s->replica_ptrs[(*used)++] = pb;
    }
    return ptrs;
}

static int enc_describe_resp(const wire_msg_t *m, ProtobufCMessage *pb, wire_scratch_t *s)
{
    Keel__DescribeQuorumResponse *d = (Keel__DescribeQuorumResponse *)pb;
    const wire_describe_quorum_resp_t *q = &m->body.describe_quorum;
    size_t used = 0;
    d->cluster_id = (char *)(uintptr_t)q->cluster_id; /* NUL within bounds: checked */
    d->leader_id = q->leader_id;
    d->leader_epoch = q->leader_epoch;
    d->high_watermark = q->high_watermark;
    d->n_voters = (size_t)q->n_voters;
    d->voters = enc_replicas(q->voters, q->n_voters, s, &used);
    d->n_observers = (size_t)q->n_observers;
    d->observers = enc_replicas(q->observers, q->n_observers, s, &used);
    return 0;
}

static void dec_replicas(Keel__ReplicaState *const *pb, size_t n, wire_replica_t *r)
{
    for (size_t i = 0; i < n; i++) {
        r[i].node_id = pb[i]->node_id;
        r[i].log_end_offset = pb[i]->log_end_offset;
        r[i].last_fetch_timestamp = pb[i]->last_fetch_timestamp;
        r[i].last_caught_up_timestamp = pb[i]->last_caught_up_timestamp;
    }
}

static int dec_describe_resp(const ProtobufCMessage *pb, wire_msg_t *m)
{
    const Keel__DescribeQuorumResponse *d = (const Keel__DescribeQuorumResponse *)pb;
    wire_describe_quorum_resp_t *q = &m->body.describe_quorum;
    if (d->n_voters > RAFT_MAX_VOTERS || d->n_observers > RAFT_MAX_OBSERVERS)
        return wire_fail(KL_EPROTO, "%zu voters / %zu observers, over %d / %d", d->n_voters, d->n_observers,
                    RAFT_MAX_VOTERS, RAFT_MAX_OBSERVERS);
    int rc = wire_copy_str(q->cluster_id, sizeof q->cluster_id, d->cluster_id, "quorum cluster_id");
    if (rc) return rc;
    q->leader_id = d->leader_id;
    q->leader_epoch = d->leader_epoch;
    q->high_watermark = d->high_watermark;
    q->n_voters = (int)d->n_voters;
    dec_replicas(d->voters, d->n_voters, q->voters);
    q->n_observers = (int)d->n_observers;
    dec_replicas(d->observers, d->n_observers, q->observers);
    return 0;
}

static bool check_replicas(const wire_replica_t *r, int n, int max, const char *what)
{
    WIRE_CHECK(n >= 0 && n <= max, "%d %s, outside 0..%d", n, what, max);
    for (int i = 0; i < n; i++)
        WIRE_CHECK(r[i].node_id >= 0 && r[i].log_end_offset >= -1 && r[i].last_fetch_timestamp >= -1 &&
                  r[i].last_caught_up_timestamp >= -1,
              "%s entry %d (node %" PRId32 ") has a negative field", what, i, r[i].node_id);
    return true;
}

static bool check_describe_resp(const wire_msg_t *m)
{
    const wire_describe_quorum_resp_t *q = &m->body.describe_quorum;
    WIRE_CHECK(strnlen(q->cluster_id, sizeof q->cluster_id) < sizeof q->cluster_id,
          "quorum cluster_id not NUL-terminated");
    WIRE_CHECK(q->leader_id >= -1 && q->leader_epoch >= 0 && q->high_watermark >= -1,
          "quorum leader %" PRId32 " epoch %" PRId32 " high watermark %" PRId64 " invalid", q->leader_id,
          q->leader_epoch, q->high_watermark);
    return check_replicas(q->voters, q->n_voters, RAFT_MAX_VOTERS, "voters") &&
           check_replicas(q->observers, q->n_observers, RAFT_MAX_OBSERVERS, "observers");
}

/* ---- the table ---------------------------------------------------------------------- */

static const wire_api_ops_t api_table[WIRE_FIRST_DATA_API] = {
    [WIRE_API_API_VERSIONS] = {"ApiVersions",
        WIRE_BODY(API_VERSIONS_REQUEST, api_versions_request, 0, NULL, NULL, NULL, NULL),
        WIRE_BODY(API_VERSIONS_RESPONSE, api_versions_response, 0, enc_api_versions_resp,
             dec_api_versions_resp, NULL, NULL)},
    [WIRE_API_VOTE] = {"Vote",
        WIRE_BODY(VOTE_REQUEST, vote_request, RAFT_MSG_VOTE_REQ, enc_vote_req, dec_vote_req,
             check_vote_req, NULL),
        WIRE_BODY(VOTE_RESPONSE, vote_response, RAFT_MSG_VOTE_RESP, enc_vote_resp, dec_vote_resp, NULL,
             NULL)},
    [WIRE_API_BEGIN_QUORUM_EPOCH] = {"BeginQuorumEpoch",
        WIRE_BODY(BEGIN_QUORUM_EPOCH_REQUEST, begin_quorum_epoch_request, RAFT_MSG_BEGIN_EPOCH_REQ, NULL,
             NULL, NULL, NULL),
        WIRE_BODY(BEGIN_QUORUM_EPOCH_RESPONSE, begin_quorum_epoch_response, RAFT_MSG_BEGIN_EPOCH_RESP,
             NULL, NULL, NULL, NULL)},
    [WIRE_API_END_QUORUM_EPOCH] = {"EndQuorumEpoch",
        WIRE_BODY(END_QUORUM_EPOCH_REQUEST, end_quorum_epoch_request, RAFT_MSG_END_EPOCH_REQ, enc_end_req,
             dec_end_req, check_end_req, NULL),
        WIRE_BODY(END_QUORUM_EPOCH_RESPONSE, end_quorum_epoch_response, RAFT_MSG_END_EPOCH_RESP, NULL,
             NULL, NULL, NULL)},
    [WIRE_API_FETCH_RAFT] = {"FetchRaft",
        WIRE_BODY(FETCH_RAFT_REQUEST, fetch_raft_request, RAFT_MSG_FETCH_REQ, enc_fetch_req, dec_fetch_req,
             check_fetch_req, NULL),
        WIRE_BODY(FETCH_RAFT_RESPONSE, fetch_raft_response, RAFT_MSG_FETCH_RESP, enc_fetch_resp,
             dec_fetch_resp, check_fetch_resp, put_entries)},
    [WIRE_API_FETCH_SNAPSHOT] = {"FetchSnapshot",
        WIRE_BODY(FETCH_SNAPSHOT_REQUEST, fetch_snapshot_request, RAFT_MSG_FETCH_SNAPSHOT_REQ,
             enc_snap_req, dec_snap_req, check_snap_req, NULL),
        WIRE_BODY(FETCH_SNAPSHOT_RESPONSE, fetch_snapshot_response, RAFT_MSG_FETCH_SNAPSHOT_RESP,
             enc_snap_resp, dec_snap_resp, check_snap_resp, put_chunk)},
    [WIRE_API_DESCRIBE_QUORUM] = {"DescribeQuorum",
        WIRE_BODY(DESCRIBE_QUORUM_REQUEST, describe_quorum_request, 0, NULL, NULL, NULL, NULL),
        WIRE_BODY(DESCRIBE_QUORUM_RESPONSE, describe_quorum_response, 0, enc_describe_resp,
             dec_describe_resp, check_describe_resp, NULL)},
};

uint32_t wire_api_for_raft(raft_msg_type_t t)
{
    for (uint32_t api = 1; api < WIRE_API_MAX_; api++)
        if (t != 0 && (api_ops(api)->req.raft_type == t || api_ops(api)->resp.raft_type == t))
            return api;
    return 0;
}

/* Fields whose "none" is -1 start as none, like leader_id. */
static void init_request_nones(wire_msg_t *m)
{
    switch (m->api) {
    case WIRE_API_BROKER_HEARTBEAT:
        m->body.broker_heartbeat.metadata_offset = -1;
        break;
    case WIRE_API_CREATE_TOPIC:
        m->body.create_topic.partitions = -1;
        m->body.create_topic.replication_factor = -1;
        break;
    case WIRE_API_PRODUCE:
        m->body.produce.leader_epoch = WIRE_NO_EPOCH;
        break;
    case WIRE_API_FETCH:
        m->body.fetch.replica_id = -1;
        m->body.fetch.broker_epoch = -1;
        m->body.fetch.leader_epoch = WIRE_NO_EPOCH;
        m->body.fetch.last_fetched_epoch = -1;
        break;
    case WIRE_API_LIST_OFFSETS:
        m->body.list_offsets.timestamp = WIRE_OFFSET_LATEST;
        m->body.list_offsets.leader_epoch = WIRE_NO_EPOCH;
        break;
    }
}

static void init_response_nones(wire_msg_t *m)
{
    switch (m->api) {
    case WIRE_API_DESCRIBE_QUORUM:
        m->body.describe_quorum.leader_id = -1;
        break;
    case WIRE_API_METADATA:
        m->body.metadata_resp.controller_id = -1;
        m->body.metadata_resp.metadata_offset = -1;
        break;
    case WIRE_API_FETCH:
        m->body.fetch_resp.diverging_epoch = -1;
        m->body.fetch_resp.diverging_end_offset = -1;
        break;
    }
}

void wire_msg_init(wire_msg_t *m, uint32_t api, bool response, uint64_t correlation_id)
{
    memset(m, 0, sizeof *m);
    m->api = api;
    m->response = response;
    m->correlation_id = correlation_id;
    m->leader_id = -1;
    const wire_body_ops_t *ops = body_ops(api, response);
    if (ops && ops->raft_type) {
        raft_msg_t *r = &m->body.raft;
        r->type = ops->raft_type;
        r->leader_id = RAFT_NO_NODE;
        if (r->type == RAFT_MSG_FETCH_RESP) {
            r->u.fetch_resp.diverging_epoch = -1;
            r->u.fetch_resp.diverging_end_offset = -1;
            r->u.fetch_resp.snapshot_id = (raft_snapshot_id_t){-1, -1};
        }
        return;
    }
    if (response) init_response_nones(m);
    else init_request_nones(m);
}

void wire_msg_from_raft(wire_msg_t *m, const raft_msg_t *r, uint64_t correlation_id)
{
    uint32_t api = wire_api_for_raft(r->type);
    wire_msg_init(m, api, api && api_ops(api)->resp.raft_type == r->type, correlation_id);
    m->body.raft = *r;
}

/* Checks a message whose body the table describes (encoder and decoder). */
static bool check_body(const wire_msg_t *m, const wire_body_ops_t *ops)
{
    if (ops->raft_type) {
        WIRE_CHECK(m->body.raft.type == ops->raft_type, "Raft message %d does not belong to %s %s",
              m->body.raft.type, wire_api_name(m->api), m->response ? "response" : "request");
        if (!check_raft_common(&m->body.raft, m->response)) return false;
    }
    return !ops->check || ops->check(m);
}

static bool check_header(const wire_msg_t *m)
{
    WIRE_CHECK(m->error <= 0, "error code %" PRId32 " positive", m->error);
    WIRE_CHECK(m->response || m->error == 0, "error code %" PRId32 " on a request", m->error);
    WIRE_CHECK(!m->error_body || m->error != 0, "error_body on a %s without an error",
               m->response ? "response" : "request");
    WIRE_CHECK(m->leader_id >= -1 && m->leader_port >= 0 && m->leader_port <= 65535,
          "leader hint %" PRId32 " port %" PRId32 " invalid", m->leader_id, m->leader_port);
    return true;
}

/* ---- encode ----------------------------------------------------------------------------- */

static int encode_into(const wire_msg_t *m, kl_buf_t *out, wire_scratch_t *s)
{
    Keel__Header h = KEEL__HEADER__INIT;
    /* An error response is the header alone, so it can answer any api/version,
     * unless it asks for its body and the API allows one (wire.h). */
    const bool error = m->response && m->error != 0, with_body = !error || m->error_body;
    const wire_body_ops_t *ops = body_ops(m->api, m->response);
    if (!check_header(m)) return KL_EINVAL;
    if (with_body) {
        if (!ops) return wire_fail(KL_EINVAL, "cannot encode unknown api %" PRIu32, m->api);
        if (m->version > WIRE_MAX_VERSION)
            return wire_fail(KL_EINVAL, "cannot encode %s version %" PRIu32, wire_api_name(m->api), m->version);
        if (error && !ops->on_error)
            return wire_fail(KL_EINVAL, "%s error response carries no body", wire_api_name(m->api));
        if (!check_body(m, ops)) return KL_EINVAL;
        if (m->payload_len && (error || !ops->put_payload))
            return wire_fail(KL_EINVAL, "%s %scarries no payload", wire_api_name(m->api), error ? "error response " : "");
    }
    int rc = 0;
    h.api = m->api;
    h.version = m->version;
    h.correlation_id = m->correlation_id;
    h.response = m->response;
    h.error = m->error;
    h.error_message = str_arg(m->error_message, sizeof m->error_message, "error_message", &rc);
    h.leader_id = m->leader_id;
    h.leader_host = str_arg(m->leader_host, sizeof m->leader_host, "leader_host", &rc);
    h.leader_port = m->leader_port;
    h.cluster_id = str_arg(m->cluster_id, sizeof m->cluster_id, "cluster_id", &rc);
    if (rc) return rc;
    if (with_body) {
        protobuf_c_message_init(ops->desc, &s->body);
        if (ops->enc && (rc = ops->enc(m, &s->body.base, s)) != 0) return rc;
        body_set(&h, ops->body_case, &s->body.base);
        if (ops->raft_type) {
            enc_raft_common(&m->body.raft, &s->raft);
            h.raft = &s->raft;
        }
    }

    size_t hlen = keel__header__get_packed_size(&h), start = out->len;
    if (hlen > WIRE_MAX_HEADER) return wire_fail(KL_ETOOBIG, "header of %zu bytes over %u", hlen, WIRE_MAX_HEADER);
    if ((rc = kl_buf_reserve(out, WIRE_MIN_FRAME + hlen)) != 0)
        return wire_fail(rc, "cannot buffer a %zu-byte header: %s", hlen, kl_strerror(rc));
    size_t packed = keel__header__pack(&h, out->data + start + WIRE_MIN_FRAME);
    KL_ASSERT(packed == hlen);
    kl_put_be32(out->data + start + WIRE_LEN_PREFIX, (uint32_t)hlen);
    out->len = start + WIRE_MIN_FRAME + hlen;
    if (with_body && !error && ops->put_payload && (rc = ops->put_payload(m, out)) != 0) {
        out->len = start;
        return rc;
    }
    if (out->len - start - WIRE_LEN_PREFIX > UINT32_MAX) {
        out->len = start;
        return wire_fail(KL_ETOOBIG, "frame over 4 GiB");
    }
    kl_put_be32(out->data + start, (uint32_t)(out->len - start - WIRE_LEN_PREFIX));
    return 0;
}

int wire_encode(const wire_msg_t *m, kl_buf_t *out)
{
    wire_scratch_t *s = malloc(sizeof *s); /* ~10 KiB: too much for a libevent callback's stack */
    if (!s) return wire_fail(KL_ENOMEM, "no memory to encode");
    memset(s->heap, 0, sizeof s->heap);
    int rc = encode_into(m, out, s);
    for (int i = 0; i < WIRE_SCRATCH_BLOCKS; i++) free(s->heap[i]);
    free(s);
    return rc;
}

/* A zeroed array in the first free slot; NULL on overflow or no memory. The
 * slot counts are sized for the largest message, so running out is a bug. */
static void *alloc_block(void **slots, int n_slots, size_t n, size_t size, const char *who)
{
    int i = 0;
    while (i < n_slots && slots[i]) i++;
    KL_ASSERT(i < n_slots);
    if (size && n > SIZE_MAX / size) slots[i] = NULL;
    else slots[i] = calloc(n ? n : 1, size ? size : 1);
    if (!slots[i]) wire_fail(KL_ENOMEM, "no memory for %zu %s elements", n, who);
    return slots[i];
}

void *wire_scratch_alloc(wire_scratch_t *s, size_t n, size_t size)
{
    return alloc_block(s->heap, WIRE_SCRATCH_BLOCKS, n, size, "encoder");
}

void *wire_owned_alloc(wire_msg_t *m, size_t n, size_t size)
{
    wire_decoded_t *d = m->owned_;
    return alloc_block(d->blocks, WIRE_DECODED_BLOCKS, n, size, "decoded");
}

/* ---- decode ---------------------------------------------------------------------------- */

static int from_header(const Keel__Header *h, wire_msg_t *m)
{
    m->api = h->api;
    m->version = h->version;
    m->correlation_id = h->correlation_id;
    m->response = h->response;
    m->error = h->error;
    m->leader_id = h->leader_id;
    m->leader_port = h->leader_port;
    /* The strings come first: an error response for an api or version we do
     * not know still carries its text and leader hint to the caller. */
    int rc;
    if ((rc = wire_copy_str(m->error_message, sizeof m->error_message, h->error_message, "error_message")) ||
        (rc = wire_copy_str(m->leader_host, sizeof m->leader_host, h->leader_host, "leader_host")) ||
        (rc = wire_copy_str(m->cluster_id, sizeof m->cluster_id, h->cluster_id, "cluster_id")))
        return rc;
    const wire_body_ops_t *ops = body_ops(m->api, m->response);
    if (!ops)
        return wire_fail(KL_EUNKNOWNAPI, "unknown api %" PRIu32 " (correlation id %" PRIu64 ")", m->api,
                    m->correlation_id);
    if (m->version > WIRE_MAX_VERSION)
        return wire_fail(KL_EUNSUPPORTED, "%s version %" PRIu32 " above %d (correlation id %" PRIu64 ")",
                    wire_api_name(m->api), m->version, WIRE_MAX_VERSION, m->correlation_id);
    if (!check_header(m)) return KL_EPROTO;
    if (ops->raft_type) m->body.raft.type = ops->raft_type;

    const char *dir = m->response ? "response" : "request";
    if (m->response && m->error != 0) { /* the header alone, or with a body where the API allows one */
        if (h->body_case == KEEL__HEADER__BODY__NOT_SET && !h->raft && !m->payload_len) return 0;
        if (!ops->on_error || m->payload_len)
            return wire_fail(KL_EPROTO, "%s error response carries a %s", wire_api_name(m->api),
                             ops->on_error ? "payload" : "body");
        m->error_body = true;
        dir = "error response";
    }
    if (h->body_case != ops->body_case)
        return wire_fail(KL_EPROTO, "%s %s with body %d, expected %d", wire_api_name(m->api), dir,
                    (int)h->body_case, (int)ops->body_case);
    if (!ops->raft_type != !h->raft)
        return wire_fail(KL_EPROTO, "%s %s %s Raft fields", wire_api_name(m->api), dir,
                    h->raft ? "with unexpected" : "without");
    if (m->payload_len && !ops->put_payload)
        return wire_fail(KL_EPROTO, "%s %s with a %zu-byte payload", wire_api_name(m->api), dir, m->payload_len);
    if (ops->raft_type && (rc = dec_raft_common(h->raft, &m->body.raft)) != 0) return rc;
    if (ops->dec && (rc = ops->dec(body_get(h), m)) != 0) return rc;
    return check_body(m, ops) ? 0 : KL_EPROTO;
}

static int decode(wire_decoded_t *d, size_t frame_len)
{
    const uint8_t *f = d->frame;
    if (frame_len < WIRE_MIN_FRAME) return wire_fail(KL_EPROTO, "frame of %zu bytes is too short", frame_len);
    if (kl_get_be32(f) != frame_len - WIRE_LEN_PREFIX)
        return wire_fail(KL_EPROTO, "frame announces %" PRIu32 " bytes, has %zu", kl_get_be32(f),
                    frame_len - WIRE_LEN_PREFIX);
    uint32_t hlen = kl_get_be32(f + WIRE_LEN_PREFIX);
    if (hlen > WIRE_MAX_HEADER) return wire_fail(KL_EPROTO, "header length %" PRIu32 " over %u", hlen, WIRE_MAX_HEADER);
    if (hlen > frame_len - WIRE_MIN_FRAME)
        return wire_fail(KL_EPROTO, "header length %" PRIu32 " past the frame end (%zu bytes left)", hlen,
                    frame_len - WIRE_MIN_FRAME);
    d->msg.payload_len = frame_len - WIRE_MIN_FRAME - hlen;
    d->msg.payload = d->msg.payload_len ? f + WIRE_MIN_FRAME + hlen : NULL;
    Keel__Header *h = keel__header__unpack(NULL, hlen, f + WIRE_MIN_FRAME);
    if (!h) return wire_fail(KL_EPROTO, "header of %" PRIu32 " bytes is not a valid protobuf", hlen);
    int rc = from_header(h, &d->msg);
    keel__header__free_unpacked(h, NULL);
    return rc;
}

int wire_decode(uint8_t *frame, size_t frame_len, wire_msg_t **out)
{
    *out = NULL;
    wire_decoded_t *d = calloc(1, sizeof *d);
    if (!d) {
        free(frame);
        return wire_fail(KL_ENOMEM, "no memory to decode");
    }
    d->frame = frame;
    d->msg.owned_ = d;
    int rc = decode(d, frame_len);
    if (rc == 0 || rc == KL_EUNKNOWNAPI || rc == KL_EUNSUPPORTED) {
        *out = &d->msg;
        return rc;
    }
    wire_msg_free(&d->msg);
    return rc;
}

void wire_msg_free(wire_msg_t *m)
{
    if (!m) return;
    wire_decoded_t *d = m->owned_;
    KL_ASSERT(d && &d->msg == m); /* only messages from wire_decode */
    free(d->frame);
    free(d->entries);
    for (int i = 0; i < WIRE_DECODED_BLOCKS; i++) free(d->blocks[i]);
    free(d);
}
