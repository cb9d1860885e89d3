/* metaprops.h — `meta.properties` of a log directory (DESIGN.md §5 Disk): which cluster and node it belongs to. */
#ifndef KEEL_METAPROPS_H
#define KEEL_METAPROPS_H

#include <stddef.h>
#include <stdint.h>

#include "keel/uuid.h"

#define METAPROPS_FILE "meta.properties"
#define METAPROPS_VERSION 1
#define METAPROPS_MAX_BYTES 4096
#define METAPROPS_ERR_LEN 256 /* a good size for the callers' message buffers */

/* Kafka's keys: version=1, cluster.id=<uuid>, node.id=<int>, directory.id=<uuid>. */
typedef struct metaprops {
    char cluster_id[KL_UUID_STR_LEN +
                    1]; /* Kafka-style uuid text, as keelctl storage random-uuid prints */
    int32_t node_id; /* >= 0 */
    uint8_t directory_id[KL_UUID_LEN];
} metaprops_t;

/* Creates dir if needed and writes dir/meta.properties atomically. KL_EINVAL
 * for a cluster id that is not a uuid, a negative node id or an all-zero
 * directory id. */
int metaprops_write(const char *dir, const metaprops_t *mp);

/* Parses strictly: `#`/`!` comments and blank lines allowed, every key
 * exactly once, unknown keys refused. KL_EUNFORMATTED if the file is absent,
 * KL_ECORRUPT if it is malformed; err explains either way. */
int metaprops_read(const char *dir, metaprops_t *mp, char *err, size_t errlen);

/* keeld's start-up check: metaprops_read, then KL_ECLUSTERID when
 * expected_cluster_id is not NULL and differs, KL_ENODEID when node.id is not
 * node_id. Fills *out (may be NULL) on success; err says what is wrong. */
int metaprops_check(const char *dir, const char *expected_cluster_id, int32_t node_id,
                    metaprops_t *out, char *err, size_t errlen);

#endif
