/* test_wire.c — framing and codec: round trips of every API, and refusal of malformed frames. */
#include <check.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "keel.pb-c.h"
#include "keel/err.h"
#include "keel/recbatch.h"
#include "keel/rng.h"
#include "keel/wire.h"
#include "unit/kl_check.h"

#define GARBAGE_FRAMES 4000

/* ---- helpers ----------------------------------------------------------------- */

static void encode_ok(const wire_msg_t *m, kl_buf_t *b)
{
    kl_buf_init(b, 0);
    int rc = wire_encode(m, b);
    ck_assert_msg(rc == 0, "encode: %s (%s)", kl_errname(rc), wire_last_error());
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(c);
    if (n) memcpy(c, p, n);
    return c;
}

/* Decodes a copy of p[0..n): the decoder owns (and frees) what it gets. */
static int decode_copy(const uint8_t *p, size_t n, wire_msg_t **out)
{
    return wire_decode(dup_bytes(p, n), n, out);
}

/* Encodes, checks the frame splits whole, decodes. */
static wire_msg_t *round_trip(const wire_msg_t *in)
{
    kl_buf_t b;
    encode_ok(in, &b);
    size_t flen = 0;
    ck_assert_int_eq(wire_frame_split(b.data, b.len, WIRE_DEFAULT_MAX_FRAME, &flen), 0);
    ck_assert_uint_eq(flen, b.len);
    wire_msg_t *out = NULL;
    int rc = decode_copy(b.data, b.len, &out);
    ck_assert_msg(rc == 0, "decode: %s (%s)", kl_errname(rc), wire_last_error());
    kl_buf_free(&b);
    ck_assert_uint_eq(out->api, in->api);
    ck_assert_uint_eq(out->version, in->version);
    ck_assert_uint_eq(out->correlation_id, in->correlation_id);
    ck_assert(out->response == in->response);
    ck_assert_int_eq(out->error, in->error);
    ck_assert_str_eq(out->error_message, in->error_message);
    ck_assert_int_eq(out->leader_id, in->leader_id);
    ck_assert_str_eq(out->leader_host, in->leader_host);
    ck_assert_int_eq(out->leader_port, in->leader_port);
    ck_assert_str_eq(out->cluster_id, in->cluster_id);
    return out;
}

static void raft_common_eq(const raft_msg_t *a, const raft_msg_t *b)
{
    ck_assert_int_eq(a->type, b->type);
    ck_assert_int_eq(a->from, b->from);
    ck_assert_int_eq(a->to, b->to);
    ck_assert_int_eq(a->epoch, b->epoch);
    ck_assert_int_eq(a->leader_id, b->leader_id);
    ck_assert_uint_eq(a->rpc_id, b->rpc_id);
    ck_assert_int_eq(a->error, b->error);
}

static void raft_init(wire_msg_t *m, raft_msg_type_t t, uint64_t corr)
{
    wire_msg_init(m, wire_api_for_raft(t), t % 2 == 0, corr);
    m->body.raft.from = 1;
    m->body.raft.to = 2;
    m->body.raft.epoch = 7;
    m->body.raft.leader_id = 1;
    m->body.raft.rpc_id = 99 + corr;
    strcpy(m->cluster_id, "clusterA");
}

/* A fetch response from offset 10: epoch 1 x3, a control entry in epoch 2,
 * epoch 2 x2 (one empty), epoch 4 x1 — four batches. */
static const char *const entry_text[] = {"a", "bb", "ccc", "leader-change", "dddd", "", "last"};
#define N_ENTRIES 7
static void fetch_resp_with_entries(wire_msg_t *m, raft_entry_t *e)
{
    static const int32_t epochs[N_ENTRIES] = {1, 1, 1, 2, 2, 2, 4};
    raft_init(m, RAFT_MSG_FETCH_RESP, 5);
    for (int i = 0; i < N_ENTRIES; i++)
        e[i] = (raft_entry_t){.offset = 10 + i, .epoch = epochs[i], .control = i == 3,
                              .len = (uint32_t)strlen(entry_text[i]),
                              .data = (const uint8_t *)entry_text[i]};
    m->body.raft.u.fetch_resp.high_watermark = 12;
    m->body.raft.u.fetch_resp.log_start_offset = 3;
    m->body.raft.u.fetch_resp.entries = e;
    m->body.raft.u.fetch_resp.n_entries = N_ENTRIES;
}

static int count_batches(const uint8_t *p, size_t n)
{
    int batches = 0;
    for (size_t pos = 0; pos < n; batches++) {
        recbatch_header_t h;
        ck_assert_int_eq(recbatch_validate(p + pos, n - pos, &h), 0);
        pos += recbatch_total_size(&h);
    }
    return batches;
}

/* Frame from a hand-built header (to forge what our encoder refuses to make). */
static void frame_from_header(const Keel__Header *h, const void *payload, size_t plen, kl_buf_t *b)
{
    size_t hlen = keel__header__get_packed_size(h);
    kl_buf_init(b, 0);
    ck_assert_int_eq(kl_buf_reserve(b, WIRE_MIN_FRAME + hlen + plen), 0);
    kl_put_be32(b->data, (uint32_t)(WIRE_LEN_PREFIX + hlen + plen));
    kl_put_be32(b->data + WIRE_LEN_PREFIX, (uint32_t)hlen);
    keel__header__pack(h, b->data + WIRE_MIN_FRAME);
    b->len = WIRE_MIN_FRAME + hlen;
    if (plen) ck_assert_int_eq(kl_buf_append(b, payload, plen), 0);
}

static int decode_forged(const Keel__Header *h, const void *payload, size_t plen)
{
    kl_buf_t b;
    frame_from_header(h, payload, plen, &b);
    wire_msg_t *m = NULL;
    int rc = decode_copy(b.data, b.len, &m);
    kl_buf_free(&b);
    wire_msg_free(m);
    return rc;
}

/* Appends raw payload bytes to an encoded frame and fixes its length. */
static void append_payload(kl_buf_t *b, const kl_buf_t *payload)
{
    ck_assert_int_eq(kl_buf_append(b, payload->data, payload->len), 0);
    kl_put_be32(b->data, (uint32_t)(b->len - WIRE_LEN_PREFIX));
}

/* Builds one batch of n empty-valued records at (offset, epoch). */
static void add_batch(kl_buf_t *b, int64_t offset, int32_t epoch, int n)
{
    recbatch_builder_t bb;
    recbatch_meta_t meta = recbatch_meta(offset, epoch, 0);
    ck_assert_int_eq(recbatch_begin(&bb, b, &meta), 0);
    for (int i = 0; i < n; i++) ck_assert_int_eq(recbatch_add(&bb, 0, NULL, -1, "x", 1, NULL, 0), 0);
    ck_assert_int_eq(recbatch_finish(&bb), 0);
}

/* An encoded fetch response without entries followed by `payload`. */
static int decode_fetch_with_payload(const kl_buf_t *payload)
{
    wire_msg_t m;
    kl_buf_t b;
    raft_init(&m, RAFT_MSG_FETCH_RESP, 1);
    m.body.raft.u.fetch_resp.high_watermark = 0;
    encode_ok(&m, &b);
    append_payload(&b, payload);
    wire_msg_t *out = NULL;
    int rc = decode_copy(b.data, b.len, &out);
    kl_buf_free(&b);
    wire_msg_free(out);
    return rc;
}

/* ---- round trips ----------------------------------------------------------------- */

START_TEST(api_versions_request_and_response_round_trip)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_API_VERSIONS, false, 1);
    wire_msg_t *out = round_trip(&m);
    wire_msg_free(out);

    wire_msg_init(&m, WIRE_API_API_VERSIONS, true, 1);
    wire_api_versions_local(&m.body.api_versions);
    out = round_trip(&m);
    for (uint32_t api = 1; api < WIRE_API_MAX_; api++) {
        ck_assert(out->body.api_versions.supported[api]);
        ck_assert_uint_eq(out->body.api_versions.max_version[api], WIRE_MAX_VERSION);
    }
    ck_assert(!out->body.api_versions.supported[0]);
    wire_msg_free(out);
}
END_TEST

START_TEST(describe_quorum_round_trips_voters_and_observers)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_DESCRIBE_QUORUM, false, 2);
    wire_msg_free(round_trip(&m));

    wire_msg_init(&m, WIRE_API_DESCRIBE_QUORUM, true, 2);
    wire_describe_quorum_resp_t *q = &m.body.describe_quorum;
    strcpy(q->cluster_id, "Ab3_cluster");
    q->leader_id = 2;
    q->leader_epoch = 9;
    q->high_watermark = 1234;
    q->n_voters = RAFT_MAX_VOTERS;
    for (int i = 0; i < q->n_voters; i++)
        q->voters[i] = (wire_replica_t){i + 1, 1000 + i, i ? 1700000000000 + i : -1, i ? 1700000000001 : -1};
    q->n_observers = RAFT_MAX_OBSERVERS;
    for (int i = 0; i < q->n_observers; i++)
        q->observers[i] = (wire_replica_t){101 + i, i, 5, -1};
    wire_msg_t *out = round_trip(&m);
    const wire_describe_quorum_resp_t *d = &out->body.describe_quorum;
    ck_assert_str_eq(d->cluster_id, q->cluster_id);
    ck_assert_int_eq(d->leader_id, 2);
    ck_assert_int_eq(d->leader_epoch, 9);
    ck_assert_int_eq(d->high_watermark, 1234);
    ck_assert_int_eq(d->n_voters, q->n_voters);
    ck_assert_int_eq(d->n_observers, q->n_observers);
    for (int i = 0; i < q->n_voters + q->n_observers; i++) {
        const wire_replica_t *a = i < q->n_voters ? &d->voters[i] : &d->observers[i - q->n_voters];
        const wire_replica_t *x = i < q->n_voters ? &q->voters[i] : &q->observers[i - q->n_voters];
        ck_assert_int_eq(a->node_id, x->node_id);
        ck_assert_int_eq(a->log_end_offset, x->log_end_offset);
        ck_assert_int_eq(a->last_fetch_timestamp, x->last_fetch_timestamp);
        ck_assert_int_eq(a->last_caught_up_timestamp, x->last_caught_up_timestamp);
    }
    wire_msg_free(out);
}
END_TEST

START_TEST(vote_request_and_response_round_trip)
{
    wire_msg_t m;
    raft_init(&m, RAFT_MSG_VOTE_REQ, 3);
    ck_assert_uint_eq(m.api, WIRE_API_VOTE);
    ck_assert(!m.response);
    m.body.raft.u.vote_req.pre_vote = true;
    m.body.raft.u.vote_req.last_epoch = 6;
    m.body.raft.u.vote_req.end_offset = 1LL << 40;
    wire_msg_t *out = round_trip(&m);
    raft_common_eq(&out->body.raft, &m.body.raft);
    ck_assert(out->body.raft.u.vote_req.pre_vote);
    ck_assert_int_eq(out->body.raft.u.vote_req.last_epoch, 6);
    ck_assert_int_eq(out->body.raft.u.vote_req.end_offset, 1LL << 40);
    wire_msg_free(out);

    raft_init(&m, RAFT_MSG_VOTE_RESP, 3);
    ck_assert(m.response);
    m.body.raft.leader_id = RAFT_NO_NODE;
    m.body.raft.error = RAFT_ERR_FENCED_EPOCH;
    m.body.raft.u.vote_resp.granted = true;
    out = round_trip(&m);
    raft_common_eq(&out->body.raft, &m.body.raft);
    ck_assert(out->body.raft.u.vote_resp.granted);
    ck_assert(!out->body.raft.u.vote_resp.pre_vote);
    wire_msg_free(out);
}
END_TEST

START_TEST(begin_and_end_quorum_epoch_round_trip)
{
    static const raft_msg_type_t empty[] = {RAFT_MSG_BEGIN_EPOCH_REQ, RAFT_MSG_BEGIN_EPOCH_RESP,
                                            RAFT_MSG_END_EPOCH_RESP};
    wire_msg_t m;
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++) {
        raft_init(&m, empty[i], 4);
        wire_msg_t *out = round_trip(&m);
        raft_common_eq(&out->body.raft, &m.body.raft);
        wire_msg_free(out);
    }
    raft_init(&m, RAFT_MSG_END_EPOCH_REQ, 4);
    m.body.raft.u.end_epoch_req.n_successors = 3;
    memcpy(m.body.raft.u.end_epoch_req.successors, (int32_t[]){3, 0, 2}, 3 * sizeof(int32_t));
    wire_msg_t *out = round_trip(&m);
    raft_common_eq(&out->body.raft, &m.body.raft);
    ck_assert_int_eq(out->body.raft.u.end_epoch_req.n_successors, 3);
    ck_assert_mem_eq(out->body.raft.u.end_epoch_req.successors, m.body.raft.u.end_epoch_req.successors,
                     3 * sizeof(int32_t));
    wire_msg_free(out);
}
END_TEST

START_TEST(fetch_request_round_trips)
{
    wire_msg_t m;
    raft_init(&m, RAFT_MSG_FETCH_REQ, 5);
    m.body.raft.u.fetch_req.fetch_offset = 77;
    m.body.raft.u.fetch_req.last_fetched_epoch = 3;
    wire_msg_t *out = round_trip(&m);
    raft_common_eq(&out->body.raft, &m.body.raft);
    ck_assert_int_eq(out->body.raft.u.fetch_req.fetch_offset, 77);
    ck_assert_int_eq(out->body.raft.u.fetch_req.last_fetched_epoch, 3);
    ck_assert_ptr_null(out->payload);
    wire_msg_free(out);
}
END_TEST

START_TEST(fetch_response_entries_spanning_epochs_travel_as_batches_in_the_payload)
{
    wire_msg_t m;
    raft_entry_t e[N_ENTRIES];
    fetch_resp_with_entries(&m, e);
    wire_msg_t *out = round_trip(&m);
    const raft_msg_t *r = &out->body.raft;
    raft_common_eq(r, &m.body.raft);
    ck_assert_int_eq(r->u.fetch_resp.high_watermark, 12);
    ck_assert_int_eq(r->u.fetch_resp.log_start_offset, 3);
    ck_assert_int_eq(r->u.fetch_resp.diverging_epoch, -1);
    ck_assert_int_eq(r->u.fetch_resp.diverging_end_offset, -1);
    ck_assert_int_eq(r->u.fetch_resp.snapshot_id.end_offset, -1);
    ck_assert_int_eq(count_batches(out->payload, out->payload_len), 4);
    ck_assert_int_eq(r->u.fetch_resp.n_entries, N_ENTRIES);
    for (int i = 0; i < N_ENTRIES; i++) {
        const raft_entry_t *d = &r->u.fetch_resp.entries[i];
        ck_assert_int_eq(d->offset, e[i].offset);
        ck_assert_int_eq(d->epoch, e[i].epoch);
        ck_assert(d->control == e[i].control);
        ck_assert_uint_eq(d->len, e[i].len);
        if (d->len) {
            ck_assert_mem_eq(d->data, e[i].data, d->len);
            /* zero-copy: entry data lies inside the frame's payload */
            ck_assert(d->data >= out->payload && d->data + d->len <= out->payload + out->payload_len);
        }
    }
    wire_msg_free(out);
}
END_TEST

START_TEST(fetch_response_divergence_and_snapshot_id_round_trip)
{
    wire_msg_t m;
    raft_init(&m, RAFT_MSG_FETCH_RESP, 6);
    m.body.raft.error = RAFT_ERR_NOT_LEADER;
    m.body.raft.u.fetch_resp.high_watermark = 50;
    m.body.raft.u.fetch_resp.diverging_epoch = 4;
    m.body.raft.u.fetch_resp.diverging_end_offset = 44;
    m.body.raft.u.fetch_resp.snapshot_id = (raft_snapshot_id_t){40, 3};
    wire_msg_t *out = round_trip(&m);
    raft_common_eq(&out->body.raft, &m.body.raft);
    ck_assert_int_eq(out->body.raft.u.fetch_resp.diverging_epoch, 4);
    ck_assert_int_eq(out->body.raft.u.fetch_resp.diverging_end_offset, 44);
    ck_assert_int_eq(out->body.raft.u.fetch_resp.snapshot_id.end_offset, 40);
    ck_assert_int_eq(out->body.raft.u.fetch_resp.snapshot_id.last_epoch, 3);
    ck_assert_int_eq(out->body.raft.u.fetch_resp.n_entries, 0);
    ck_assert_uint_eq(out->payload_len, 0);
    wire_msg_free(out);
}
END_TEST

START_TEST(fetch_response_run_over_the_batch_limit_is_split_into_batches)
{
    enum { N = 3, LEN = 6 * 1024 * 1024 };
    uint8_t *big = malloc(LEN);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < LEN; i++) big[i] = (uint8_t)(i * 7);
    raft_entry_t e[N];
    for (int i = 0; i < N; i++) e[i] = (raft_entry_t){.offset = i, .epoch = 1, .len = LEN, .data = big};
    wire_msg_t m;
    raft_init(&m, RAFT_MSG_FETCH_RESP, 7);
    m.body.raft.u.fetch_resp.entries = e;
    m.body.raft.u.fetch_resp.n_entries = N;
    wire_msg_t *out = round_trip(&m);
    ck_assert_int_eq(count_batches(out->payload, out->payload_len), 2);
    ck_assert_int_eq(out->body.raft.u.fetch_resp.n_entries, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(out->body.raft.u.fetch_resp.entries[i].offset, i);
        ck_assert(memcmp(out->body.raft.u.fetch_resp.entries[i].data, big, LEN) == 0);
    }
    wire_msg_free(out);
    free(big);
}
END_TEST

START_TEST(fetch_snapshot_request_and_chunk_round_trip)
{
    wire_msg_t m;
    raft_init(&m, RAFT_MSG_FETCH_SNAPSHOT_REQ, 8);
    m.body.raft.u.fetch_snapshot_req.snapshot_id = (raft_snapshot_id_t){100, 5};
    m.body.raft.u.fetch_snapshot_req.position = 4096;
    wire_msg_t *out = round_trip(&m);
    raft_common_eq(&out->body.raft, &m.body.raft);
    ck_assert_int_eq(out->body.raft.u.fetch_snapshot_req.snapshot_id.end_offset, 100);
    ck_assert_int_eq(out->body.raft.u.fetch_snapshot_req.snapshot_id.last_epoch, 5);
    ck_assert_uint_eq(out->body.raft.u.fetch_snapshot_req.position, 4096);
    wire_msg_free(out);

    static const uint8_t chunk[] = "snapshot bytes \x00\x01\x02 end";
    raft_init(&m, RAFT_MSG_FETCH_SNAPSHOT_RESP, 8);
    m.body.raft.u.fetch_snapshot_resp.snapshot_id = (raft_snapshot_id_t){100, 5};
    m.body.raft.u.fetch_snapshot_resp.position = 4096;
    m.body.raft.u.fetch_snapshot_resp.size = 4096 + sizeof chunk;
    m.body.raft.u.fetch_snapshot_resp.chunk = chunk;
    m.body.raft.u.fetch_snapshot_resp.chunk_len = sizeof chunk;
    out = round_trip(&m);
    const raft_msg_t *r = &out->body.raft;
    raft_common_eq(r, &m.body.raft);
    ck_assert_uint_eq(r->u.fetch_snapshot_resp.size, 4096 + sizeof chunk);
    ck_assert_uint_eq(r->u.fetch_snapshot_resp.position, 4096);
    ck_assert_uint_eq(r->u.fetch_snapshot_resp.chunk_len, sizeof chunk);
    ck_assert_mem_eq(r->u.fetch_snapshot_resp.chunk, chunk, sizeof chunk);
    ck_assert_ptr_eq(r->u.fetch_snapshot_resp.chunk, out->payload);
    wire_msg_free(out);
}
END_TEST

START_TEST(error_response_is_header_only_with_leader_hint)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_DESCRIBE_QUORUM, true, 9);
    m.error = KL_ENOTLEADER;
    strcpy(m.error_message, "not the leader; try node 3");
    m.leader_id = 3;
    strcpy(m.leader_host, "controller-3.example");
    m.leader_port = 9093;
    wire_msg_t *out = round_trip(&m);
    ck_assert_uint_eq(out->payload_len, 0);
    wire_msg_free(out);

    raft_init(&m, RAFT_MSG_FETCH_RESP, 9); /* Raft APIs too: the body is dropped */
    m.error = KL_ECLUSTERID;
    out = round_trip(&m);
    ck_assert_int_eq(out->body.raft.type, RAFT_MSG_FETCH_RESP);
    ck_assert_int_eq(out->body.raft.u.fetch_resp.n_entries, 0);
    wire_msg_free(out);
}
END_TEST

START_TEST(api_for_raft_maps_every_message_type_both_ways)
{
    for (int t = RAFT_MSG_VOTE_REQ; t <= RAFT_MSG_FETCH_SNAPSHOT_RESP; t++) {
        uint32_t api = wire_api_for_raft((raft_msg_type_t)t);
        ck_assert_uint_ge(api, WIRE_API_VOTE);
        ck_assert_uint_le(api, WIRE_API_FETCH_SNAPSHOT);
        wire_msg_t m;
        raft_msg_t r = {.type = (raft_msg_type_t)t, .from = 3, .epoch = 2, .rpc_id = 8};
        wire_msg_from_raft(&m, &r, 1);
        ck_assert_uint_eq(m.api, api);
        ck_assert(m.response == (t % 2 == 0)); /* responses follow their requests */
        raft_common_eq(&m.body.raft, &r);
        ck_assert_str_ne(wire_api_name(api), "unknown");
    }
    ck_assert_uint_eq(wire_api_for_raft((raft_msg_type_t)0), 0);
    ck_assert_uint_eq(wire_api_for_raft((raft_msg_type_t)99), 0);
    ck_assert_str_eq(wire_api_name(0), "unknown");
    ck_assert_str_eq(wire_api_name(WIRE_API_MAX_), "unknown");
}
END_TEST

/* ---- framing --------------------------------------------------------------------- */

START_TEST(frame_split_waits_for_every_partial_length)
{
    wire_msg_t m;
    raft_entry_t e[N_ENTRIES];
    fetch_resp_with_entries(&m, e);
    kl_buf_t b;
    encode_ok(&m, &b);
    size_t first = b.len;
    ck_assert_int_eq(wire_encode(&m, &b), 0); /* two frames back to back */
    for (size_t avail = 0; avail < first; avail++) {
        size_t flen = 12345;
        ck_assert_int_eq(wire_frame_split(b.data, avail, WIRE_DEFAULT_MAX_FRAME, &flen), KL_EAGAIN);
        ck_assert_uint_eq(flen, 12345);
    }
    for (size_t avail = first; avail <= b.len; avail++) {
        size_t flen = 0;
        ck_assert_int_eq(wire_frame_split(b.data, avail, WIRE_DEFAULT_MAX_FRAME, &flen), 0);
        ck_assert_uint_eq(flen, first);
    }
    kl_buf_free(&b);
}
END_TEST

START_TEST(frame_split_refuses_announced_lengths_out_of_bounds)
{
    uint8_t p[WIRE_LEN_PREFIX];
    size_t flen;
    kl_put_be32(p, 1001);
    ck_assert_int_eq(wire_frame_split(p, sizeof p, 1000, &flen), KL_ETOOBIG);
    ck_assert_str_ne(wire_last_error(), "");
    kl_put_be32(p, UINT32_MAX);
    ck_assert_int_eq(wire_frame_split(p, sizeof p, WIRE_DEFAULT_MAX_FRAME, &flen), KL_ETOOBIG);
    kl_put_be32(p, 1000);
    ck_assert_int_eq(wire_frame_split(p, sizeof p, 1000, &flen), KL_EAGAIN);
    for (uint32_t len = 0; len < WIRE_MIN_FRAME - WIRE_LEN_PREFIX; len++) {
        kl_put_be32(p, len);
        ck_assert_int_eq(wire_frame_split(p, sizeof p, WIRE_DEFAULT_MAX_FRAME, &flen), KL_EPROTO);
    }
}
END_TEST

/* ---- malformed frames ------------------------------------------------------------ */

START_TEST(frame_truncated_at_every_byte_is_refused)
{
    wire_msg_t m;
    raft_entry_t e[N_ENTRIES];
    fetch_resp_with_entries(&m, e);
    kl_buf_t b;
    encode_ok(&m, &b);
    uint32_t hlen = kl_get_be32(b.data + WIRE_LEN_PREFIX);
    for (size_t k = 0; k < b.len; k++) {
        wire_msg_t *out = NULL;
        /* as cut: the length prefix disagrees */
        ck_assert_int_eq(decode_copy(b.data, k, &out), KL_EPROTO);
        ck_assert_ptr_null(out);
        if (k < WIRE_MIN_FRAME) continue;
        uint8_t *c = dup_bytes(b.data, k);
        kl_put_be32(c, (uint32_t)(k - WIRE_LEN_PREFIX));
        size_t hdr_end = WIRE_MIN_FRAME + hlen;
        if (k < hdr_end) {
            /* protobuf cut short, and also announced as shorter */
            uint8_t *c2 = dup_bytes(c, k);
            kl_put_be32(c2 + WIRE_LEN_PREFIX, (uint32_t)(k - WIRE_MIN_FRAME));
            int rc = wire_decode(c2, k, &out);
            if (k == WIRE_MIN_FRAME) { /* an empty header names api 0 */
                ck_assert_int_eq(rc, KL_EUNKNOWNAPI);
                wire_msg_free(out);
            } else {
                ck_assert_int_eq(rc, KL_EPROTO);
            }
            ck_assert_int_eq(wire_decode(c, k, &out), KL_EPROTO);
            continue;
        }
        /* payload cut: only a cut on a batch boundary decodes, to fewer entries */
        int rc = wire_decode(c, k, &out);
        if (rc == 0) {
            ck_assert_int_lt(out->body.raft.u.fetch_resp.n_entries, N_ENTRIES);
            ck_assert_int_eq(count_batches(out->payload, out->payload_len) < 4, 1);
            wire_msg_free(out);
        } else {
            ck_assert_int_eq(rc, KL_EPROTO);
            ck_assert_ptr_null(out);
        }
    }
    kl_buf_free(&b);
}
END_TEST

START_TEST(header_length_past_the_frame_or_over_the_limit_is_refused)
{
    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_DESCRIBE_QUORUM, false, 1);
    kl_buf_t b;
    encode_ok(&m, &b);
    wire_msg_t *out = NULL;
    kl_put_be32(b.data + WIRE_LEN_PREFIX, (uint32_t)(b.len - WIRE_MIN_FRAME + 1));
    ck_assert_int_eq(decode_copy(b.data, b.len, &out), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(wire_last_error(), "past the frame end"));
    kl_put_be32(b.data + WIRE_LEN_PREFIX, WIRE_MAX_HEADER + 1);
    ck_assert_int_eq(decode_copy(b.data, b.len, &out), KL_EPROTO);
    kl_put_be32(b.data + WIRE_LEN_PREFIX, UINT32_MAX);
    ck_assert_int_eq(decode_copy(b.data, b.len, &out), KL_EPROTO);
    ck_assert_ptr_null(out);
    kl_buf_free(&b);
}
END_TEST

START_TEST(header_that_is_not_protobuf_is_refused)
{
    uint8_t f[WIRE_MIN_FRAME + 6];
    kl_put_be32(f, sizeof f - WIRE_LEN_PREFIX);
    kl_put_be32(f + WIRE_LEN_PREFIX, 6);
    memset(f + WIRE_MIN_FRAME, 0xff, 6);
    wire_msg_t *out = NULL;
    ck_assert_int_eq(decode_copy(f, sizeof f, &out), KL_EPROTO);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(unknown_api_is_reported_with_its_correlation_id)
{
    Keel__Header h = KEEL__HEADER__INIT;
    h.api = 99;
    h.correlation_id = 4242;
    kl_buf_t b;
    frame_from_header(&h, NULL, 0, &b);
    wire_msg_t *out = NULL;
    ck_assert_int_eq(decode_copy(b.data, b.len, &out), KL_EUNKNOWNAPI);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out->api, 99);
    ck_assert_uint_eq(out->correlation_id, 4242);
    kl_buf_free(&b);

    /* ... so that the caller can answer with an error response */
    wire_msg_t resp;
    wire_msg_init(&resp, out->api, true, out->correlation_id);
    resp.error = KL_EUNKNOWNAPI;
    wire_msg_free(out);
    encode_ok(&resp, &b);
    Keel__Header *d = keel__header__unpack(NULL, kl_get_be32(b.data + WIRE_LEN_PREFIX), b.data + WIRE_MIN_FRAME);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(d->api, 99);
    ck_assert_uint_eq(d->correlation_id, 4242);
    ck_assert_int_eq(d->error, KL_EUNKNOWNAPI);
    ck_assert_int_eq(d->body_case, KEEL__HEADER__BODY__NOT_SET);
    keel__header__free_unpacked(d, NULL);
    kl_buf_free(&b);

    h.api = 0; /* zero is not an API either */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EUNKNOWNAPI);
}
END_TEST

/* A newer peer may answer with an error for an api or version we do not
 * know; its text and leader hint must still reach the caller. */
START_TEST(error_response_for_unknown_api_or_version_keeps_its_message_and_leader_hint)
{
    static const struct { uint32_t api, version; int rc; } cases[] = {
        {99, 0, KL_EUNKNOWNAPI},
        {WIRE_API_DESCRIBE_QUORUM, WIRE_MAX_VERSION + 1, KL_EUNSUPPORTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wire_msg_t m;
        wire_msg_init(&m, cases[i].api, true, 31);
        m.version = cases[i].version;
        m.error = KL_ENOTCONTROLLER;
        strcpy(m.error_message, "ask the active controller");
        m.leader_id = 4;
        strcpy(m.leader_host, "ctl-4.example");
        m.leader_port = 9094;
        kl_buf_t b;
        encode_ok(&m, &b);
        wire_msg_t *out = NULL;
        ck_assert_int_eq(decode_copy(b.data, b.len, &out), cases[i].rc);
        kl_buf_free(&b);
        ck_assert_ptr_nonnull(out);
        ck_assert_uint_eq(out->correlation_id, 31);
        ck_assert_int_eq(out->error, KL_ENOTCONTROLLER);
        ck_assert_str_eq(out->error_message, "ask the active controller");
        ck_assert_int_eq(out->leader_id, 4);
        ck_assert_str_eq(out->leader_host, "ctl-4.example");
        ck_assert_int_eq(out->leader_port, 9094);
        wire_msg_free(out);
    }
}
END_TEST

START_TEST(too_new_version_is_reported_with_its_correlation_id)
{
    Keel__Header h = KEEL__HEADER__INIT;
    Keel__DescribeQuorumRequest body = KEEL__DESCRIBE_QUORUM_REQUEST__INIT;
    h.api = WIRE_API_DESCRIBE_QUORUM;
    h.version = WIRE_MAX_VERSION + 1;
    h.correlation_id = 17;
    h.body_case = KEEL__HEADER__BODY_DESCRIBE_QUORUM_REQUEST;
    h.describe_quorum_request = &body;
    kl_buf_t b;
    frame_from_header(&h, NULL, 0, &b);
    wire_msg_t *out = NULL;
    ck_assert_int_eq(decode_copy(b.data, b.len, &out), KL_EUNSUPPORTED);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(out->api, WIRE_API_DESCRIBE_QUORUM);
    ck_assert_uint_eq(out->version, WIRE_MAX_VERSION + 1);
    ck_assert_uint_eq(out->correlation_id, 17);
    wire_msg_free(out);
    kl_buf_free(&b);

    wire_msg_t m;
    wire_msg_init(&m, WIRE_API_DESCRIBE_QUORUM, false, 1);
    m.version = WIRE_MAX_VERSION + 1;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL); /* we never send what we cannot read */
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(body_that_does_not_match_api_or_direction_is_refused)
{
    Keel__Header h = KEEL__HEADER__INIT;
    Keel__RaftCommon common = KEEL__RAFT_COMMON__INIT;
    Keel__VoteRequest vote = KEEL__VOTE_REQUEST__INIT;
    Keel__FetchRaftRequest fetch = KEEL__FETCH_RAFT_REQUEST__INIT;
    common.from = 1;
    common.to = 2;
    common.leader_id = -1;
    h.api = WIRE_API_VOTE;
    h.raft = &common;
    h.body_case = KEEL__HEADER__BODY_VOTE_REQUEST;
    h.vote_request = &vote;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0); /* the control case decodes */

    h.response = true; /* a request body on a response */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.response = false;
    h.body_case = KEEL__HEADER__BODY_FETCH_RAFT_REQUEST; /* another API's body */
    h.fetch_raft_request = &fetch;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.body_case = KEEL__HEADER__BODY__NOT_SET; /* no body at all */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.body_case = KEEL__HEADER__BODY_VOTE_REQUEST;
    h.vote_request = &vote;
    h.raft = NULL; /* Raft body without Raft fields */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.raft = &common;
    ck_assert_int_eq(decode_forged(&h, "xyz", 3), KL_EPROTO); /* payload where none belongs */
    h.error = KL_EIO; /* an error on a request */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.response = true; /* an error response with a body */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.error = 0;

    Keel__DescribeQuorumRequest dq = KEEL__DESCRIBE_QUORUM_REQUEST__INIT;
    h.api = WIRE_API_DESCRIBE_QUORUM; /* Raft fields on a non-Raft API */
    h.response = false;
    h.body_case = KEEL__HEADER__BODY_DESCRIBE_QUORUM_REQUEST;
    h.describe_quorum_request = &dq;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
}
END_TEST

START_TEST(numbers_out_of_range_are_refused)
{
    Keel__Header h = KEEL__HEADER__INIT;
    Keel__RaftCommon common = KEEL__RAFT_COMMON__INIT;
    Keel__FetchRaftRequest fetch = KEEL__FETCH_RAFT_REQUEST__INIT;
    common.from = 1;
    common.to = 2;
    h.api = WIRE_API_FETCH_RAFT;
    h.raft = &common;
    h.body_case = KEEL__HEADER__BODY_FETCH_RAFT_REQUEST;
    h.fetch_raft_request = &fetch;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0);

    fetch.fetch_offset = -1;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(wire_last_error(), "negative"));
    fetch.fetch_offset = 0;
    common.epoch = -3;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    common.epoch = 0;
    common.error = RAFT_ERR_NOT_LEADER; /* Raft error on a request */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    common.error = 0;
    common.leader_id = -2;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    common.leader_id = -1;
    h.leader_port = 70000;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.leader_port = 0;
    h.cluster_id = (char *)"0123456789012345678901234567890123456789012345678901234567890123"; /* 64 */
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    h.cluster_id = (char *)protobuf_c_empty_string;

    /* too many successors */
    Keel__EndQuorumEpochRequest end = KEEL__END_QUORUM_EPOCH_REQUEST__INIT;
    int32_t succ[RAFT_MAX_VOTERS + 1] = {0};
    end.successors = succ;
    end.n_successors = RAFT_MAX_VOTERS + 1;
    h.api = WIRE_API_END_QUORUM_EPOCH;
    h.body_case = KEEL__HEADER__BODY_END_QUORUM_EPOCH_REQUEST;
    h.end_quorum_epoch_request = &end;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    end.n_successors = RAFT_MAX_VOTERS;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0);

    /* a snapshot chunk past the snapshot's size */
    Keel__FetchSnapshotResponse snap = KEEL__FETCH_SNAPSHOT_RESPONSE__INIT;
    Keel__SnapshotId sid = KEEL__SNAPSHOT_ID__INIT;
    sid.end_offset = 10;
    snap.snapshot_id = &sid;
    snap.size = 10;
    snap.position = 8;
    h.api = WIRE_API_FETCH_SNAPSHOT;
    h.response = true;
    h.body_case = KEEL__HEADER__BODY_FETCH_SNAPSHOT_RESPONSE;
    h.fetch_snapshot_response = &snap;
    ck_assert_int_eq(decode_forged(&h, "ab", 2), 0);
    ck_assert_int_eq(decode_forged(&h, "abc", 3), KL_EPROTO);
    snap.position = UINT64_MAX;
    ck_assert_int_eq(decode_forged(&h, "ab", 2), KL_EPROTO);
    snap.snapshot_id = NULL;
    snap.position = 0;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);

    /* too many observers */
    Keel__DescribeQuorumResponse dq = KEEL__DESCRIBE_QUORUM_RESPONSE__INIT;
    Keel__ReplicaState rs = KEEL__REPLICA_STATE__INIT;
    Keel__ReplicaState *obs[RAFT_MAX_OBSERVERS + 1];
    for (int i = 0; i <= RAFT_MAX_OBSERVERS; i++) obs[i] = &rs;
    dq.observers = obs;
    dq.n_observers = RAFT_MAX_OBSERVERS + 1;
    h.api = WIRE_API_DESCRIBE_QUORUM;
    h.raft = NULL;
    h.body_case = KEEL__HEADER__BODY_DESCRIBE_QUORUM_RESPONSE;
    h.describe_quorum_response = &dq;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
    dq.n_observers = RAFT_MAX_OBSERVERS;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), 0);
    rs.node_id = -5;
    ck_assert_int_eq(decode_forged(&h, NULL, 0), KL_EPROTO);
}
END_TEST

START_TEST(fetch_entries_that_are_not_consecutive_or_go_back_in_epoch_are_refused)
{
    kl_buf_t p;
    kl_buf_init(&p, 0);
    add_batch(&p, 10, 1, 2);
    add_batch(&p, 12, 2, 3);
    ck_assert_int_eq(decode_fetch_with_payload(&p), 0);
    add_batch(&p, 16, 2, 1); /* gap: 15 is missing */
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);
    ck_assert_ptr_nonnull(strstr(wire_last_error(), "offsets that do not follow"));

    kl_buf_reset(&p);
    add_batch(&p, 10, 3, 2);
    add_batch(&p, 12, 2, 1); /* epoch goes back */
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);

    kl_buf_reset(&p);
    add_batch(&p, 10, 3, 2);
    add_batch(&p, 11, 3, 1); /* overlap */
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);

    kl_buf_reset(&p);
    add_batch(&p, 0, 1, 1);
    recbatch_set_base_offset(p.data, -5); /* negative offset (outside the CRC) */
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);
    recbatch_set_base_offset(p.data, 0);
    recbatch_set_leader_epoch(p.data, -3); /* negative epoch (outside the CRC) */
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);

    kl_buf_reset(&p);
    add_batch(&p, INT64_MAX - 1, 1, 3); /* offsets would overflow */
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);

    kl_buf_reset(&p);
    ck_assert_int_eq(kl_buf_append(&p, "junk", 4), 0); /* not a batch at all */
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);
    kl_buf_free(&p);
}
END_TEST

START_TEST(fetch_response_with_too_many_entries_is_refused)
{
    kl_buf_t p;
    kl_buf_init(&p, 0);
    add_batch(&p, 0, 1, WIRE_MAX_FETCH_ENTRIES);
    ck_assert_int_eq(decode_fetch_with_payload(&p), 0);
    add_batch(&p, WIRE_MAX_FETCH_ENTRIES, 1, 1);
    ck_assert_int_eq(decode_fetch_with_payload(&p), KL_EPROTO);
    char want[64];
    snprintf(want, sizeof want, "more than %d fetch entries", WIRE_MAX_FETCH_ENTRIES);
    ck_assert_ptr_nonnull(strstr(wire_last_error(), want));
    kl_buf_free(&p);
}
END_TEST

/* Every byte a flip can corrupt without detection would be a silent data
 * change; only partitionLeaderEpoch lies outside the CRC (the leader stamps it
 * in place), and there only the epoch order can catch it. */
START_TEST(flipped_bytes_inside_embedded_batches_are_refused)
{
    wire_msg_t m;
    raft_entry_t e[N_ENTRIES];
    fetch_resp_with_entries(&m, e);
    kl_buf_t b;
    encode_ok(&m, &b);
    size_t pstart = WIRE_MIN_FRAME + kl_get_be32(b.data + WIRE_LEN_PREFIX);
    size_t batch_start = pstart;
    recbatch_header_t h;
    ck_assert_int_eq(recbatch_parse_header(b.data + batch_start, b.len - batch_start, &h), 0);
    int refused = 0;
    for (size_t i = pstart; i < b.len; i++) {
        if (i >= batch_start + recbatch_total_size(&h)) {
            batch_start = i;
            ck_assert_int_eq(recbatch_parse_header(b.data + batch_start, b.len - batch_start, &h), 0);
        }
        size_t in_batch = i - batch_start;
        for (int bit = 0; bit < 8; bit++) {
            uint8_t *c = dup_bytes(b.data, b.len);
            c[i] ^= (uint8_t)(1u << bit);
            wire_msg_t *out = NULL;
            int rc = wire_decode(c, b.len, &out);
            if (in_batch >= 12 && in_batch < 16) { /* partitionLeaderEpoch */
                ck_assert(rc == 0 || rc == KL_EPROTO);
            } else {
                ck_assert_msg(rc == KL_EPROTO, "flip of bit %d at payload byte %zu decoded", bit, i - pstart);
                refused++;
            }
            wire_msg_free(out);
        }
    }
    ck_assert_int_gt(refused, 8 * 100);
    kl_buf_free(&b);
}
END_TEST

static void garbage_round(kl_rng_t *rng, const kl_buf_t *valid, int n_valid)
{
    kl_buf_t f;
    kl_buf_init(&f, 0);
    if (kl_rng_chance(rng, 1, 2)) {
        /* a valid frame of some type with a few random bytes changed */
        const kl_buf_t *v = &valid[kl_rng_range(rng, 0, n_valid)];
        ck_assert_int_eq(kl_buf_append(&f, v->data, v->len), 0);
        int flips = (int)kl_rng_range(rng, 1, 6);
        for (int i = 0; i < flips; i++)
            f.data[kl_rng_range(rng, WIRE_LEN_PREFIX, (int64_t)f.len)] = (uint8_t)kl_rng_next(rng);
    } else {
        /* random bytes under a consistent length prefix, header length mostly plausible */
        size_t len = (size_t)kl_rng_range(rng, WIRE_MIN_FRAME, 300);
        ck_assert_int_eq(kl_buf_reserve(&f, len), 0);
        f.len = len;
        for (size_t i = 0; i < len; i++) f.data[i] = (uint8_t)kl_rng_next(rng);
        kl_put_be32(f.data, (uint32_t)(len - WIRE_LEN_PREFIX));
        if (kl_rng_chance(rng, 3, 4))
            kl_put_be32(f.data + WIRE_LEN_PREFIX, (uint32_t)kl_rng_range(rng, 0, (int64_t)len - 7));
    }
    wire_msg_t *out = NULL;
    size_t flen;
    int rc = wire_frame_split(f.data, f.len, WIRE_DEFAULT_MAX_FRAME, &flen);
    ck_assert(rc == 0 || rc == KL_EPROTO);
    rc = decode_copy(f.data, f.len, &out);
    ck_assert_msg(rc == 0 || rc == KL_EPROTO || rc == KL_EUNKNOWNAPI || rc == KL_EUNSUPPORTED,
                  "unexpected %s", kl_errname(rc));
    ck_assert((out != NULL) == (rc != KL_EPROTO));
    if (rc == 0) { /* whatever decodes must re-encode: it passed the same checks */
        kl_buf_t again;
        kl_buf_init(&again, 0);
        int erc = wire_encode(out, &again);
        ck_assert_msg(erc == 0, "decoded frame does not re-encode: %s", wire_last_error());
        kl_buf_free(&again);
    }
    wire_msg_free(out);
    kl_buf_free(&f);
}

START_TEST(seeded_random_garbage_never_crashes_or_leaks)
{
    enum { N_VALID = 6 };
    kl_buf_t valid[N_VALID];
    wire_msg_t m;
    raft_entry_t e[N_ENTRIES];
    fetch_resp_with_entries(&m, e);
    encode_ok(&m, &valid[0]);
    raft_init(&m, RAFT_MSG_VOTE_REQ, 1);
    encode_ok(&m, &valid[1]);
    wire_msg_init(&m, WIRE_API_DESCRIBE_QUORUM, true, 2);
    m.body.describe_quorum.n_voters = 3;
    encode_ok(&m, &valid[2]);
    wire_msg_init(&m, WIRE_API_API_VERSIONS, true, 3);
    wire_api_versions_local(&m.body.api_versions);
    encode_ok(&m, &valid[3]);
    raft_init(&m, RAFT_MSG_END_EPOCH_REQ, 4);
    m.body.raft.u.end_epoch_req.n_successors = 2;
    encode_ok(&m, &valid[4]);
    raft_init(&m, RAFT_MSG_FETCH_SNAPSHOT_RESP, 5);
    m.body.raft.u.fetch_snapshot_resp.size = 4;
    m.body.raft.u.fetch_snapshot_resp.chunk = (const uint8_t *)"abcd";
    m.body.raft.u.fetch_snapshot_resp.chunk_len = 4;
    encode_ok(&m, &valid[5]);

    kl_rng_t rng;
    kl_rng_seed(&rng, 20240611);
    for (int i = 0; i < GARBAGE_FRAMES; i++) garbage_round(&rng, valid, N_VALID);
    for (int i = 0; i < N_VALID; i++) kl_buf_free(&valid[i]);
}
END_TEST

START_TEST(encoder_refuses_what_the_decoder_would_refuse)
{
    kl_buf_t b;
    kl_buf_init(&b, 0);
    ck_assert_int_eq(kl_buf_append(&b, "keep", 4), 0);
    wire_msg_t m;

    wire_msg_init(&m, 99, false, 1); /* unknown API */
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);

    raft_init(&m, RAFT_MSG_VOTE_REQ, 1); /* body type of another API */
    m.body.raft.type = RAFT_MSG_FETCH_REQ;
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);

    raft_init(&m, RAFT_MSG_FETCH_REQ, 1);
    m.body.raft.u.fetch_req.fetch_offset = -1;
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);

    raft_entry_t e[N_ENTRIES];
    fetch_resp_with_entries(&m, e);
    e[4].offset = 20; /* gap */
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);
    ck_assert_ptr_nonnull(strstr(wire_last_error(), "does not follow"));
    fetch_resp_with_entries(&m, e);
    e[5].epoch = 1; /* epoch goes back */
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);
    fetch_resp_with_entries(&m, e);
    e[0].epoch = -1; /* negative epoch */
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);

    wire_msg_init(&m, WIRE_API_DESCRIBE_QUORUM, false, 1);
    memset(m.cluster_id, 'x', sizeof m.cluster_id); /* no terminator */
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);

    wire_msg_init(&m, WIRE_API_VOTE, false, 1);
    m.error = KL_EIO; /* error on a request */
    ck_assert_int_eq(wire_encode(&m, &b), KL_EINVAL);

    ck_assert_uint_eq(b.len, 4); /* nothing half-written */
    ck_assert_mem_eq(b.data, "keep", 4);

    kl_buf_t small; /* the buffer limit surfaces as KL_ETOOBIG, buffer unchanged */
    kl_buf_init(&small, 64);
    fetch_resp_with_entries(&m, e);
    ck_assert_int_eq(wire_encode(&m, &small), KL_ETOOBIG);
    ck_assert_uint_eq(small.len, 0);
    kl_buf_free(&small);
    kl_buf_free(&b);
}
END_TEST

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *t = tcase_create("round_trip");
    tcase_add_test(t, api_versions_request_and_response_round_trip);
    tcase_add_test(t, describe_quorum_round_trips_voters_and_observers);
    tcase_add_test(t, vote_request_and_response_round_trip);
    tcase_add_test(t, begin_and_end_quorum_epoch_round_trip);
    tcase_add_test(t, fetch_request_round_trips);
    tcase_add_test(t, fetch_response_entries_spanning_epochs_travel_as_batches_in_the_payload);
    tcase_add_test(t, fetch_response_divergence_and_snapshot_id_round_trip);
    tcase_add_test(t, fetch_response_run_over_the_batch_limit_is_split_into_batches);
    tcase_add_test(t, fetch_snapshot_request_and_chunk_round_trip);
    tcase_add_test(t, error_response_is_header_only_with_leader_hint);
    tcase_add_test(t, api_for_raft_maps_every_message_type_both_ways);
    suite_add_tcase(s, t);

    t = tcase_create("framing");
    tcase_add_test(t, frame_split_waits_for_every_partial_length);
    tcase_add_test(t, frame_split_refuses_announced_lengths_out_of_bounds);
    suite_add_tcase(s, t);

    t = tcase_create("malformed");
    tcase_set_timeout(t, 120); /* the exhaustive loops run under ASan */
    tcase_add_test(t, frame_truncated_at_every_byte_is_refused);
    tcase_add_test(t, header_length_past_the_frame_or_over_the_limit_is_refused);
    tcase_add_test(t, header_that_is_not_protobuf_is_refused);
    tcase_add_test(t, unknown_api_is_reported_with_its_correlation_id);
    tcase_add_test(t, too_new_version_is_reported_with_its_correlation_id);
    tcase_add_test(t, error_response_for_unknown_api_or_version_keeps_its_message_and_leader_hint);
    tcase_add_test(t, body_that_does_not_match_api_or_direction_is_refused);
    tcase_add_test(t, numbers_out_of_range_are_refused);
    tcase_add_test(t, fetch_entries_that_are_not_consecutive_or_go_back_in_epoch_are_refused);
    tcase_add_test(t, fetch_response_with_too_many_entries_is_refused);
    tcase_add_test(t, flipped_bytes_inside_embedded_batches_are_refused);
    tcase_add_test(t, seeded_random_garbage_never_crashes_or_leaks);
    tcase_add_test(t, encoder_refuses_what_the_decoder_would_refuse);
    suite_add_tcase(s, t);
    return s;
}

int main(void)
{
    return kl_check_run(wire_suite());
}
