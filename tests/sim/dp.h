/* dp.h — deterministic data-plane simulator: controller core, brokers with replica cores, clients, faults and acks=all checks, all driven by one seed. */
#ifndef KEEL_DP_H
#define KEEL_DP_H

#include <stdbool.h>
#include <stdint.h>

#include "sim.h"

/* Deliberate mistakes in the SIMULATOR's use of the cores (the cores stay
 * correct): the checker must catch each within a bounded number of seeds. */
typedef enum dp_bug {
    DP_BUG_NONE = 0,
    DP_BUG_ACK_ON_APPEND,  /* the broker answers acks=all as soon as the leader appended (acks=1 semantics) */
    DP_BUG_TRUNCATE_TO_HW, /* a replica becoming follower cuts its log to its HW (pre-KIP-101 Kafka) */
    DP_BUG_COUNT
} dp_bug_t;

typedef struct dp_params {
    uint64_t seed;
    dp_bug_t bug;
    bool verbose; /* trace messages, faults, decisions and the cores' notes */
} dp_params_t;

typedef struct dp_result {
    sim_failure_t failure;
    char invariant[64];
    char detail[SIM_FAIL_LEN];
    int64_t at_ms;
    uint64_t step; /* core steps when it failed */
    /* what the run exercised */
    uint64_t steps;          /* replica_step + meta_decide_* calls */
    int64_t virtual_ms;
    int n_brokers, n_parts, rf, min_isr;
    int64_t values_sent, values_acked, values_consumed;
    int64_t leader_changes;  /* PARTITION_STATE steps that changed a replica's leader epoch */
    int64_t truncations;     /* follower log truncations */
    int64_t dedups;          /* produces answered as KIP-98 duplicates */
    int64_t epoch_bumps;     /* producers that restarted after an unrecoverable sequence error */
    int crashes, pauses, isolations, failovers, shutdowns;
    int64_t meta_records;    /* committed metadata records */
} dp_result_t;

const char *dp_bug_name(dp_bug_t b);
int dp_bug_parse(const char *name, dp_bug_t *out);

/* Runs one seed start to finish; frees everything before returning. */
void dp_run(const dp_params_t *p, dp_result_t *res);

/* The `--dp` command line (argv as given to the simulator's main). */
int dp_main(int argc, char **argv);

#endif
