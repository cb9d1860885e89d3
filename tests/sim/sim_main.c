/* sim_main.c — the simulator's command line and its Check suite: random-fault seeds split into shards, scripted scenarios, and teeth tests. */
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include "dp.h"
#include "sim.h"

#define SIM_DEFAULT_SEEDS 2000
#define SIM_SHARDS 10          /* Check tests per voter count; each runs a share of the seeds */
#define SIM_SCENARIO_SEEDS 50  /* seeds per scripted scenario test */
#define SIM_HEAL_SEEDS 100
#define SIM_TEETH_SEEDS 300    /* a planted bug must be caught within this many seeds */
#define SIM_MAX_REPORTS 20     /* failing seeds printed in full per test */

static struct {
    const char *argv0;
    uint64_t first;
    uint64_t seeds;
    int voters;    /* 0: the seed decides */
    int observers; /* -1: the seed decides */
} g = {.argv0 = "tests/sim", .first = 1, .seeds = SIM_DEFAULT_SEEDS, .voters = 0, .observers = -1};

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [--seeds N] [--first S] [--voters 3|5] [--observers 0-2]   run the Check suite\n"
            "       %s --seed S [--scenario random|heal|snapshot|divergence] [--bug NAME] [--voters V]\n"
            "            [--observers K] [--verbose]                             replay one seed\n"
            "       %s --dp ...                                                    the data-plane simulator (--dp --help)\n"
            "bugs: none vote-for-shorter-log commit-without-majority truncate-below-hw\n",
            g.argv0, g.argv0, g.argv0);
}

static void replay_command(const sim_params_t *p, char *b, size_t cap)
{
    int k = snprintf(b, cap, "%s --seed %" PRIu64, g.argv0, p->seed);
    if (p->scenario != SIM_SCENARIO_RANDOM)
        k += snprintf(b + k, cap - (size_t)k, " --scenario %s", sim_scenario_name(p->scenario));
    if (p->bug != RAFT_BUG_NONE) k += snprintf(b + k, cap - (size_t)k, " --bug %s", sim_bug_name(p->bug));
    if (p->n_voters) k += snprintf(b + k, cap - (size_t)k, " --voters %d", p->n_voters);
    if (p->n_observers >= 0) k += snprintf(b + k, cap - (size_t)k, " --observers %d", p->n_observers);
    snprintf(b + k, cap - (size_t)k, " --verbose");
}

/* What the runs exercised, summed (in this process: CK_NOFORK). */
static struct {
    uint64_t runs, steps, committed, elections, crashes, truncations, installs;
    int64_t virtual_ms, deepest;
} g_total;

static void add_total(const sim_result_t *r)
{
    g_total.runs++;
    g_total.steps += r->steps;
    g_total.committed += (uint64_t)r->committed;
    g_total.elections += (uint64_t)r->elections;
    g_total.crashes += (uint64_t)r->crashes;
    g_total.truncations += (uint64_t)r->truncations;
    g_total.installs += (uint64_t)r->snapshot_installs;
    g_total.virtual_ms += r->virtual_ms;
    if (r->deepest_truncation > g_total.deepest) g_total.deepest = r->deepest_truncation;
}

/* If the core aborts (KL_ASSERT) or a sanitizer stops the process, say which
 * run it was: the replay command is written from a handler, so pre-formatted. */
static char g_running[400];
static volatile size_t g_running_len;

static void say_running(void)
{
    if (g_running_len) {
        ssize_t w = write(STDERR_FILENO, g_running, g_running_len);
        (void)w;
    }
}

static void on_abort(int sig)
{
    (void)sig;
    say_running(); /* returning lets abort() finish with the default action */
}

static void install_crash_report(void)
{
    signal(SIGABRT, on_abort);
#if defined(__SANITIZE_ADDRESS__)
    __sanitizer_set_death_callback(say_running);
#endif
}

void sim_running_set(const char *text)
{
    g_running_len = 0;
    if (!text) return;
    int k = snprintf(g_running, sizeof g_running, "%s", text);
    g_running_len = k > 0 && (size_t)k < sizeof g_running ? (size_t)k : 0;
}

static void sim_run_reported(const sim_params_t *p, sim_result_t *r)
{
    char cmd[256], text[sizeof g_running];
    replay_command(p, cmd, sizeof cmd);
    snprintf(text, sizeof text, "\nsim: seed %" PRIu64 " died (core assertion or sanitizer)\n  replay: %s\n", p->seed,
             cmd);
    sim_running_set(text);
    sim_run(p, r);
    sim_running_set(NULL);
}

static const char *failure_kind(sim_failure_t f)
{
    return f == SIM_FAIL_SAFETY ? "safety" : f == SIM_FAIL_LIVENESS ? "liveness" : "scenario";
}

static void report(const sim_params_t *p, const sim_result_t *r)
{
    char cmd[256];
    replay_command(p, cmd, sizeof cmd);
    int v = sim_seed_voters(p->seed, p->n_voters);
    fprintf(stderr,
            "sim: seed %" PRIu64 " FAILED (%s scenario, %d voters, %d observers, bug %s)\n"
            "  %s invariant %s: %s\n"
            "  at step %" PRIu64 ", t=%" PRId64 " ms\n"
            "  replay: %s\n",
            p->seed, sim_scenario_name(p->scenario), v, sim_seed_observers(p->seed, v, p->n_observers),
            sim_bug_name(p->bug), failure_kind(r->failure), r->invariant, r->detail, r->step, r->at_ms, cmd);
}

static sim_params_t params_for(uint64_t seed, sim_scenario_t scenario, raft_test_bug_t bug)
{
    return (sim_params_t){.seed = seed, .scenario = scenario, .n_voters = g.voters, .n_observers = g.observers,
                          .bug = bug};
}

/* Seeds [first, first+count) whose scenario has `voters` voters (0: any),
 * every `shards`-th of them starting at `shard`. */
typedef struct seed_set {
    uint64_t first, count;
    int voters;
    int shard, shards;
} seed_set_t;

/* Runs a seed set; fails the Check test naming the first failing seed. Every
 * run frees its memory before the assertion can leave the test (CK_NOFORK). */
static void run_seeds(const seed_set_t *set, sim_scenario_t scenario)
{
    int failed = 0, ran = 0, idx = 0;
    uint64_t first_bad = 0;
    char first_what[96] = "";
    for (uint64_t seed = set->first; seed < set->first + set->count; seed++) {
        if (set->voters && sim_seed_voters(seed, g.voters) != set->voters) continue;
        if (idx++ % set->shards != set->shard) continue;
        sim_params_t p = params_for(seed, scenario, RAFT_BUG_NONE);
        sim_result_t r;
        sim_run_reported(&p, &r);
        add_total(&r);
        ran++;
        if (r.failure == SIM_OK) continue;
        if (failed++ < SIM_MAX_REPORTS) report(&p, &r);
        if (failed == 1) {
            first_bad = p.seed;
            snprintf(first_what, sizeof first_what, "%s", r.invariant);
        }
    }
    ck_assert_msg(failed == 0, "%d of %d seeds failed; first: seed %" PRIu64 " (%s), replay command above", failed,
                  ran, first_bad, first_what);
}

static void run_random_shard(int voters, int shard)
{
    seed_set_t set = {.first = g.first, .count = g.seeds, .voters = voters, .shard = shard, .shards = SIM_SHARDS};
    run_seeds(&set, SIM_SCENARIO_RANDOM);
}

START_TEST(three_voters_survive_random_faults)
{
    run_random_shard(3, _i);
}
END_TEST

START_TEST(five_voters_with_observers_survive_random_faults)
{
    run_random_shard(5, _i);
}
END_TEST

static void run_scenario(sim_scenario_t scenario, int count)
{
    seed_set_t set = {.first = g.first, .count = (uint64_t)count, .voters = 0, .shard = 0, .shards = 1};
    run_seeds(&set, scenario);
}

START_TEST(recovers_after_heal)
{
    run_scenario(SIM_SCENARIO_HEAL, SIM_HEAL_SEEDS);
}
END_TEST

START_TEST(snapshot_catch_up_of_far_behind_follower)
{
    run_scenario(SIM_SCENARIO_SNAPSHOT, SIM_SCENARIO_SEEDS);
}
END_TEST

START_TEST(old_leader_truncates_uncommitted_entries_after_partition)
{
    run_scenario(SIM_SCENARIO_DIVERGENCE, SIM_SCENARIO_SEEDS);
}
END_TEST

/* The checker has teeth: with a planted core bug some early seed must trip a
 * safety invariant (not merely a liveness bound). */
static void require_caught(raft_test_bug_t bug)
{
    for (uint64_t seed = g.first; seed < g.first + SIM_TEETH_SEEDS; seed++) {
        sim_params_t p = params_for(seed, SIM_SCENARIO_RANDOM, bug);
        sim_result_t r;
        sim_run_reported(&p, &r);
        if (r.failure == SIM_FAIL_SAFETY) {
            char cmd[256];
            replay_command(&p, cmd, sizeof cmd);
            printf("sim: planted bug %s caught by seed %" PRIu64 " (%s) at t=%" PRId64 " ms: %s\n",
                   sim_bug_name(bug), seed, r.invariant, r.at_ms, cmd);
            return;
        }
    }
    ck_abort_msg("planted bug %s was not caught by any of %d seeds from %" PRIu64, sim_bug_name(bug),
                 SIM_TEETH_SEEDS, g.first);
}

START_TEST(checker_catches_vote_granted_to_shorter_log)
{
    require_caught(RAFT_BUG_VOTE_FOR_SHORTER_LOG);
}
END_TEST

START_TEST(checker_catches_commit_without_majority)
{
    require_caught(RAFT_BUG_COMMIT_WITHOUT_MAJORITY);
}
END_TEST

START_TEST(checker_catches_truncation_below_hw)
{
    require_caught(RAFT_BUG_TRUNCATE_BELOW_HW);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 1800); /* runs are bounded in virtual time; this only guards a hang */
    return tc;
}

static Suite *sim_suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase("random_faults");
    if (g.voters == 0 || g.voters == 3) tcase_add_loop_test(tc, three_voters_survive_random_faults, 0, SIM_SHARDS);
    if (g.voters == 0 || g.voters == 5)
        tcase_add_loop_test(tc, five_voters_with_observers_survive_random_faults, 0, SIM_SHARDS);
    suite_add_tcase(s, tc);
    tc = tcase("scenarios");
    tcase_add_test(tc, recovers_after_heal);
    tcase_add_test(tc, snapshot_catch_up_of_far_behind_follower);
    tcase_add_test(tc, old_leader_truncates_uncommitted_entries_after_partition);
    suite_add_tcase(s, tc);
    return s;
}

/* Planted bugs may also trip the core's own assertions: run them forked so
 * such an abort fails one test instead of the whole binary. */
static Suite *teeth_suite(void)
{
    Suite *s = suite_create("sim_teeth");
    TCase *tc = tcase("teeth");
    tcase_add_test(tc, checker_catches_vote_granted_to_shorter_log);
    tcase_add_test(tc, checker_catches_commit_without_majority);
    tcase_add_test(tc, checker_catches_truncation_below_hw);
    suite_add_tcase(s, tc);
    return s;
}

static int run_suites(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("sim: seeds %" PRIu64 "..%" PRIu64 ", voters %s\n", g.first, g.first + g.seeds - 1,
           g.voters ? (g.voters == 3 ? "3" : "5") : "3/5 alternating");
    SRunner *sr = srunner_create(sim_suite());
    /* one process for speed; CK_FORK=yes isolates shards if a core assertion aborts */
    srunner_set_fork_status(sr, getenv("CK_FORK") ? CK_FORK_GETENV : CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sr = srunner_create(teeth_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed += srunner_ntests_failed(sr);
    srunner_free(sr);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (g_total.runs)
        printf("sim: %" PRIu64 " runs, %.0f virtual s, %" PRIu64 " core steps: %" PRIu64 " entries committed, %" PRIu64
               " leader epochs, %" PRIu64 " crashes, %" PRIu64 " truncations (deepest %" PRId64 "), %" PRIu64
               " snapshot installs\n",
               g_total.runs, (double)g_total.virtual_ms / 1000.0, g_total.steps, g_total.committed, g_total.elections,
               g_total.crashes, g_total.truncations, g_total.deepest, g_total.installs);
    printf("sim: %s in %.1f s\n", failed ? "FAILED" : "passed",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return failed == 0 ? 0 : 1;
}

static int replay(const sim_params_t *p)
{
    sim_result_t r;
    if (p->verbose) setvbuf(stdout, NULL, _IOLBF, 0); /* the trace survives an abort */
    sim_run_reported(p, &r);
    fflush(stdout);
    if (r.failure != SIM_OK) {
        report(p, &r);
        return 1;
    }
    int v = sim_seed_voters(p->seed, p->n_voters);
    printf("sim: seed %" PRIu64 " ok (%s scenario, %d voters, %d observers): %" PRIu64 " steps, %.1f virtual s, "
           "%" PRId64 " entries committed, %d elections, %d crashes, %d truncations (deepest %" PRId64
           "), %d snapshot installs\n",
           p->seed, sim_scenario_name(p->scenario), v, sim_seed_observers(p->seed, v, p->n_observers), r.steps,
           (double)r.virtual_ms / 1000.0, r.committed, r.elections, r.crashes, r.truncations, r.deepest_truncation,
           r.snapshot_installs);
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !*s) return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    g.argv0 = argv[0];
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--dp") == 0) { /* the data-plane simulator (dp_main.c) */
            install_crash_report();
            return dp_main(argc, argv);
        }
    sim_params_t one = {.n_observers = -1};
    bool single = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        bool takes = true;
        if (strcmp(a, "--verbose") == 0) {
            one.verbose = true;
            takes = false;
        } else if (strcmp(a, "--seed") == 0 && parse_u64(v, &one.seed) == 0) {
            single = true;
        } else if (strcmp(a, "--seeds") == 0 && parse_u64(v, &n) == 0 && n > 0) {
            g.seeds = n;
        } else if (strcmp(a, "--first") == 0 && parse_u64(v, &n) == 0) {
            g.first = n;
        } else if (strcmp(a, "--voters") == 0 && parse_u64(v, &n) == 0 && (n == 3 || n == 5)) {
            g.voters = one.n_voters = (int)n;
        } else if (strcmp(a, "--observers") == 0 && parse_u64(v, &n) == 0 && n <= SIM_MAX_OBSERVERS) {
            g.observers = one.n_observers = (int)n;
        } else if (strcmp(a, "--scenario") == 0 && v && sim_scenario_parse(v, &one.scenario) == 0) {
        } else if (strcmp(a, "--bug") == 0 && v && sim_bug_parse(v, &one.bug) == 0) {
        } else {
            usage();
            return 2;
        }
        if (takes) i++;
    }
    install_crash_report();
    if (single) return replay(&one);
    return run_suites();
}
