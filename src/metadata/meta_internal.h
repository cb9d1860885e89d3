/* meta_internal.h — helpers shared by the metadata core's files; not part of the API. */
#ifndef KEEL_META_INTERNAL_H
#define KEEL_META_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "keel/meta.h"
#include "keel/meta_ctl.h"

/* Writes the formatted reason to why (if non-NULL) and returns err, so that
 * a check reads `return meta_why(why, len, KL_EINVAL, "...")`. */
int meta_why(char *why, size_t why_len, int err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

bool meta_uuid_is_zero(const uint8_t u[KL_UUID_LEN]);
/* s holds a NUL within its cap bytes (fixed-size fields from the wire). */
bool meta_cstr_fits(const char *s, size_t cap);
/* Copies src (NUL-terminated, validated to fit) into dst[cap], zero-filling the rest. */
void meta_copy_str(char *dst, size_t cap, const char *src);
bool meta_has_id(const int32_t *ids, int n, int32_t id);
/* Strict decimal int64 ("-1", "604800000"): no spaces, no '+', no overflow. */
bool meta_parse_int64(const char *s, int64_t *out);

/* key is one of the META_CFG_* names. */
bool meta_config_known(const char *key);

/* The partition invariants of meta.h: 0 or KL_EINVAL with why. */
int meta_partition_check(const meta_partition_t *p, char *why, size_t why_len);

/* Broker liveness as a decision sees it: the image's states, except for the
 * brokers the records being decided take down (fence, controlled shutdown)
 * or bring up (unfence). A broker is usable — may lead, may be in an ISR —
 * when it is ACTIVE after those overrides. */
typedef struct meta_view {
    const meta_image_t *img;
    const int32_t *down; /* sorted */
    int n_down;
    int32_t up;          /* -1: none */
} meta_view_t;

bool meta_view_usable(const meta_view_t *v, int32_t id);

/* The state partition p should have under v (§3 leader election): ISR =
 * its usable members (kept whole if none is usable: each of them holds
 * every committed record, so whichever returns first can lead cleanly);
 * the leader stays if usable, else the first usable replica in replica
 * order that is in the ISR, else — only if `unclean` — the first usable
 * replica at all (ISR becomes just it; *was_unclean set), else none.
 * Returns true and fills chg when that differs from p. */
bool meta_partition_target(const meta_view_t *v, const meta_partition_t *p, bool unclean,
                           meta_partition_change_t *chg, bool *was_unclean);

/* ---- decision plumbing (every meta_decide_* uses these) ---- */

/* Empties d for a new decision. */
void meta_decision_begin(meta_decision_t *d);
/* Fails the decision: no records, the formatted reason in d->error; returns err. */
int meta_refuse(meta_decision_t *d, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Appends a record; on failure refuses the decision and returns the code. */
int meta_push(meta_decision_t *d, const meta_record_t *rec);
/* Appends a note (dropped past META_MAX_NOTES). */
void meta_note(meta_decision_t *d, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Appends a change for every partition whose target under v differs from
 * its state: all partitions, or (all = false) those with a replica that v
 * takes down or brings up. Unclean elections follow each topic's effective
 * unclean.leader.election.enable and are noted at level 3. */
int meta_reconcile(const meta_view_t *v, const meta_ctl_config_t *cfg, bool all, meta_decision_t *d);

/* A partition-change record with only the identity filled (nothing changed yet). */
meta_record_t meta_change_record(const meta_partition_t *p);

#endif
