/* snapfile.h — metadata snapshot files `<end offset, 20 digits>-<epoch, 10 digits>.checkpoint` (DESIGN.md §2 Snapshots). */
#ifndef KEEL_SNAPFILE_H
#define KEEL_SNAPFILE_H

#include <stddef.h>
#include <stdint.h>

#include "keel/raft.h"

/* File = 36-byte header + data. Header (big-endian): magic u32 "KSNP",
 * version u16 = 1, reserved u16 = 0, end offset i64, last epoch i32,
 * data length u64, CRC-32C of the data u32, CRC-32C of the 32 bytes
 * before it u32. */
#define SNAPFILE_SUFFIX ".checkpoint"
#define SNAPFILE_HEADER_LEN 36
#define SNAPFILE_MAX_DATA (256u * 1024u * 1024u)
_Static_assert(RAFT_MAX_SNAPSHOT_BYTES <= SNAPFILE_MAX_DATA, "a Raft snapshot must fit one snapshot file");
#define SNAPFILE_MAX_FILES 4096 /* snapshot files considered in one directory */
#define SNAPFILE_NAME_LEN 42 /* 20 digits, '-', 10 digits, ".checkpoint" */

/* Name of the file for id; out holds SNAPFILE_NAME_LEN + 1 bytes. */
void snapfile_name(raft_snapshot_id_t id, char *out);

/* Writes the snapshot atomically. KL_EINVAL for a negative offset or epoch,
 * KL_ETOOBIG over SNAPFILE_MAX_DATA. */
int snapfile_write(const char *dir, raft_snapshot_id_t id, const void *data, size_t len);
/* Reads one snapshot; *data is malloc'd (caller frees; NULL when len is 0).
 * KL_ENOENT if absent, KL_ECORRUPT (logged) if the header, CRCs, size or the
 * id in the header disagree with the file. */
int snapfile_read(const char *dir, raft_snapshot_id_t id, uint8_t **data, size_t *len);
/* The newest valid snapshot by (end offset, epoch); corrupt files are skipped
 * with a WARN. KL_ENOENT if there is none. */
int snapfile_latest(const char *dir, raft_snapshot_id_t *id, uint8_t **data, size_t *len);
/* Deletes every snapshot older than keep (and leftover temp files). */
int snapfile_delete_older(const char *dir, raft_snapshot_id_t keep);

#endif
