/* wire_meta.c — protobuf-c glue for metadata-log records and controller snapshots (DESIGN.md §3). */
#include "keel/wire_meta.h"

#include <stdbool.h>

#include "keel/err.h"
#include "metadata.pb-c.h"

/* Packs any message at the end of out. */
static int pack_into(const ProtobufCMessage *pb, kl_buf_t *out)
{
    size_t n = protobuf_c_message_get_packed_size(pb);
    int rc = kl_buf_reserve(out, n);
    if (rc) return rc;
    size_t packed = protobuf_c_message_pack(pb, out->data + out->len);
    KL_ASSERT(packed == n);
    out->len += n;
    return 0;
}

int wire_meta_encode_noop(kl_buf_t *out)
{
    Keel__Metadata__NoOpRecord noop = KEEL__METADATA__NO_OP_RECORD__INIT;
    Keel__Metadata__MetadataRecord rec = KEEL__METADATA__METADATA_RECORD__INIT;
    rec.record_case = KEEL__METADATA__METADATA_RECORD__RECORD_NO_OP;
    rec.no_op = &noop;
    return pack_into(&rec.base, out);
}

int wire_meta_decode_record(const uint8_t *p, size_t len, wire_meta_record_t *out)
{
    Keel__Metadata__MetadataRecord *rec = keel__metadata__metadata_record__unpack(NULL, len, p);
    if (!rec) return KL_EPROTO;
    int rc = 0;
    switch (rec->record_case) {
    case KEEL__METADATA__METADATA_RECORD__RECORD_NO_OP:
        out->type = WIRE_META_NO_OP;
        break;
    default: /* missing, or a record type from a newer version: never guess */
        rc = KL_EPROTO;
    }
    keel__metadata__metadata_record__free_unpacked(rec, NULL);
    return rc;
}

static bool image_valid(const wire_meta_image_t *img)
{
    return img->records_applied >= 0 && img->no_op_count >= 0 &&
           img->no_op_count <= img->records_applied && img->last_applied_offset >= -1 &&
           img->last_applied_epoch >= -1;
}

int wire_meta_encode_image(const wire_meta_image_t *img, kl_buf_t *out)
{
    if (!image_valid(img)) return KL_EINVAL;
    Keel__Metadata__MetadataImage pb = KEEL__METADATA__METADATA_IMAGE__INIT;
    pb.records_applied = img->records_applied;
    pb.no_op_count = img->no_op_count;
    pb.last_applied_offset = img->last_applied_offset;
    pb.last_applied_epoch = img->last_applied_epoch;
    return pack_into(&pb.base, out);
}

int wire_meta_decode_image(const uint8_t *p, size_t len, wire_meta_image_t *out)
{
    Keel__Metadata__MetadataImage *pb = keel__metadata__metadata_image__unpack(NULL, len, p);
    if (!pb) return KL_EPROTO;
    wire_meta_image_t img = {pb->records_applied, pb->no_op_count, pb->last_applied_offset,
                             pb->last_applied_epoch};
    keel__metadata__metadata_image__free_unpacked(pb, NULL);
    if (!image_valid(&img)) return KL_EPROTO;
    *out = img;
    return 0;
}
