/* sim.h — deterministic Raft cluster simulator: pure cores, a virtual disk and network, faults and invariant checks, all driven by one seed. */
#ifndef KEEL_SIM_H
#define KEEL_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "keel/raft.h"
#include "keel/rng.h"

#define SIM_MAX_VOTERS 5
#define SIM_MAX_OBSERVERS 2
#define SIM_MAX_NODES (SIM_MAX_VOTERS + SIM_MAX_OBSERVERS)
#define SIM_OBSERVER_ID_BASE 101 /* observers are 101, 102 (brokers are 100+i, DESIGN.md §7) */
#define SIM_FAIL_LEN 1024
#define SIM_LIVENESS_MS 30000    /* after healing, a leader and a fresh commit within this */
#define SIM_MAX_STEPS 4000000    /* per run: a core that never lets time advance is a bug */

/* What one run does; everything else follows from the seed. */
typedef enum sim_scenario {
    SIM_SCENARIO_RANDOM = 0, /* random faults, then heal and require liveness */
    SIM_SCENARIO_HEAL,       /* harsh faults (majority down, partitions) right up to the heal */
    SIM_SCENARIO_SNAPSHOT,   /* a follower falls behind the leader's snapshot and catches up */
    SIM_SCENARIO_DIVERGENCE, /* partitioned old leader with uncommitted entries truncates */
    SIM_SCENARIO_COUNT
} sim_scenario_t;

typedef struct sim_params {
    uint64_t seed;
    sim_scenario_t scenario;
    int n_voters;    /* 0: from the seed (alternating 3 and 5) */
    int n_observers; /* -1: from the seed */
    raft_test_bug_t bug;
    bool verbose; /* trace every event except ticks, plus the core's notes */
} sim_params_t;

/* Which check failed; the teeth tests ask for a safety failure. */
typedef enum sim_failure {
    SIM_OK = 0,
    SIM_FAIL_SAFETY,   /* an invariant of the Raft contract or of the io contract */
    SIM_FAIL_LIVENESS, /* no leader / no commit within the bound after healing */
    SIM_FAIL_SCENARIO  /* a scripted scenario did not reach the situation it tests */
} sim_failure_t;

typedef struct sim_result {
    sim_failure_t failure;
    char invariant[64];         /* short name of what failed */
    char detail[SIM_FAIL_LEN];  /* the evidence */
    uint64_t step;              /* raft_step calls so far when it failed */
    int64_t at_ms;              /* virtual time when it failed */
    /* statistics, also used by the scenario tests to prove they did something */
    uint64_t steps;
    int64_t virtual_ms;
    int64_t committed;          /* highest offset committed anywhere */
    int elections;              /* distinct leader epochs */
    int snapshot_installs;
    int truncations;
    int crashes;
    int64_t deepest_truncation; /* entries removed by one truncation, max */
} sim_result_t;

/* Scenario helpers shared by sim_scenario.c and sim_cluster.c. */
const char *sim_scenario_name(sim_scenario_t s);
int sim_scenario_parse(const char *name, sim_scenario_t *out);
const char *sim_bug_name(raft_test_bug_t b);
int sim_bug_parse(const char *name, raft_test_bug_t *out);

/* Voter and observer counts a seed gets unless forced (the default scenario mix). */
int sim_seed_voters(uint64_t seed, int forced);
int sim_seed_observers(uint64_t seed, int voters, int forced);

/* Runs one seed start to finish; frees everything before returning. */
void sim_run(const sim_params_t *p, sim_result_t *res);

/* What an abort (core assertion) or a sanitizer death prints: the run in
 * progress and its replay command. NULL: no run in progress. */
void sim_running_set(const char *text);

#endif
