/* dp_main.c — the `--dp` command line and Check suite: data-plane seeds under random faults, one-seed replay, and teeth tests with planted bugs. */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dp.h"

#define DP_DEFAULT_SEEDS 300
#define DP_SHARDS 4          /* Check tests the seeds are split over */
#define DP_TEETH_SEEDS 100   /* a planted bug must be caught within this many seeds */
#define DP_MAX_REPORTS 20    /* failing seeds printed in full per test */

static struct {
    const char *argv0;
    uint64_t first, seeds;
} g = {.argv0 = "tests/sim", .first = 1, .seeds = DP_DEFAULT_SEEDS};

static struct {
    uint64_t runs, steps, sent, acked, consumed, leader_changes, truncations, dedups, bumps, meta_records;
    int64_t virtual_ms;
    int crashes, pauses, isolations, failovers, shutdowns;
} g_total;

static void add_total(const dp_result_t *r)
{
    g_total.runs++;
    g_total.steps += r->steps;
    g_total.virtual_ms += r->virtual_ms;
    g_total.sent += (uint64_t)r->values_sent;
    g_total.acked += (uint64_t)r->values_acked;
    g_total.consumed += (uint64_t)r->values_consumed;
    g_total.leader_changes += (uint64_t)r->leader_changes;
    g_total.truncations += (uint64_t)r->truncations;
    g_total.dedups += (uint64_t)r->dedups;
    g_total.bumps += (uint64_t)r->epoch_bumps;
    g_total.meta_records += (uint64_t)r->meta_records;
    g_total.crashes += r->crashes;
    g_total.pauses += r->pauses;
    g_total.isolations += r->isolations;
    g_total.failovers += r->failovers;
    g_total.shutdowns += r->shutdowns;
}

static void replay_command(const dp_params_t *p, char *b, size_t cap)
{
    int k = snprintf(b, cap, "%s --dp --seed %" PRIu64, g.argv0, p->seed);
    if (p->bug != DP_BUG_NONE) k += snprintf(b + k, cap - (size_t)k, " --bug %s", dp_bug_name(p->bug));
    snprintf(b + k, cap - (size_t)k, " --verbose");
}

static const char *failure_kind(sim_failure_t f)
{
    return f == SIM_FAIL_SAFETY ? "safety" : f == SIM_FAIL_LIVENESS ? "liveness" : "scenario";
}

static void report(const dp_params_t *p, const dp_result_t *r)
{
    char cmd[256];
    replay_command(p, cmd, sizeof cmd);
    fprintf(stderr,
            "sim --dp: seed %" PRIu64 " FAILED (%d brokers, %d partitions, rf %d, min.insync %d, bug %s)\n"
            "  %s invariant %s: %s\n"
            "  at t=%" PRId64 " ms after %" PRIu64 " core steps\n"
            "  replay: %s\n",
            p->seed, r->n_brokers, r->n_parts, r->rf, r->min_isr, dp_bug_name(p->bug), failure_kind(r->failure),
            r->invariant, r->detail, r->at_ms, r->step, cmd);
}

/* An abort (core assertion) or sanitizer death names the run it happened in. */
static void dp_run_reported(const dp_params_t *p, dp_result_t *r)
{
    char cmd[256], text[400];
    replay_command(p, cmd, sizeof cmd);
    snprintf(text, sizeof text, "\nsim --dp: seed %" PRIu64 " died (core assertion or sanitizer)\n  replay: %s\n",
             p->seed, cmd);
    sim_running_set(text);
    dp_run(p, r);
    sim_running_set(NULL);
}

START_TEST(acknowledged_records_survive_random_faults)
{
    int failed = 0, ran = 0;
    uint64_t first_bad = 0;
    char first_what[64] = "";
    for (uint64_t seed = g.first + (uint64_t)_i; seed < g.first + g.seeds; seed += DP_SHARDS) {
        const dp_params_t p = {.seed = seed};
        dp_result_t r;
        dp_run_reported(&p, &r);
        add_total(&r);
        ran++;
        if (r.failure == SIM_OK) continue;
        if (failed++ < DP_MAX_REPORTS) report(&p, &r);
        if (failed == 1) {
            first_bad = seed;
            snprintf(first_what, sizeof first_what, "%s", r.invariant);
        }
    }
    ck_assert_msg(failed == 0, "%d of %d seeds failed; first: seed %" PRIu64 " (%s), replay command above", failed,
                  ran, first_bad, first_what);
}
END_TEST

/* The checker has teeth: with a planted bug in the simulator's use of the
 * cores, an early seed must trip a safety invariant — one that the same seed
 * without the bug passes, so that it is the planted bug being caught. */
static void require_caught(dp_bug_t bug)
{
    for (uint64_t seed = g.first; seed < g.first + DP_TEETH_SEEDS; seed++) {
        const dp_params_t p = {.seed = seed, .bug = bug}, clean = {.seed = seed};
        dp_result_t r, rc;
        dp_run_reported(&p, &r);
        if (r.failure != SIM_FAIL_SAFETY) continue;
        dp_run_reported(&clean, &rc);
        if (rc.failure == SIM_OK) {
            char cmd[256];
            replay_command(&p, cmd, sizeof cmd);
            printf("sim --dp: planted bug %s caught by seed %" PRIu64 " (%s) at t=%" PRId64 " ms: %s\n",
                   dp_bug_name(bug), seed, r.invariant, r.at_ms, cmd);
            return;
        }
    }
    ck_abort_msg("planted bug %s was not caught by any of %d seeds from %" PRIu64, dp_bug_name(bug), DP_TEETH_SEEDS,
                 g.first);
}

START_TEST(checker_catches_acks_all_answered_at_append)
{
    require_caught(DP_BUG_ACK_ON_APPEND);
}
END_TEST

START_TEST(checker_catches_follower_truncating_to_its_hw)
{
    require_caught(DP_BUG_TRUNCATE_TO_HW);
}
END_TEST

static TCase *tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 1800); /* runs are bounded in virtual time; this only guards a hang */
    return tc;
}

static int run_suites(void)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    printf("sim --dp: seeds %" PRIu64 "..%" PRIu64 "\n", g.first, g.first + g.seeds - 1);
    Suite *s = suite_create("dp");
    TCase *tc = tcase("random_faults");
    tcase_add_loop_test(tc, acknowledged_records_survive_random_faults, 0, DP_SHARDS);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, getenv("CK_FORK") ? CK_FORK_GETENV : CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* planted bugs may trip a core's assertion: forked, an abort fails one test */
    s = suite_create("dp_teeth");
    tc = tcase("teeth");
    tcase_add_test(tc, checker_catches_acks_all_answered_at_append);
    tcase_add_test(tc, checker_catches_follower_truncating_to_its_hw);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    failed += srunner_ntests_failed(sr);
    srunner_free(sr);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("sim --dp: %" PRIu64 " runs, %.0f virtual s, %" PRIu64 " core steps, %" PRIu64 " metadata records: %" PRIu64
           " batches sent, %" PRIu64 " acked, %" PRIu64 " consumed, %" PRIu64 " dedups, %" PRIu64
           " producer epoch bumps; %" PRIu64 " leader changes, %" PRIu64 " truncations; faults: %d crashes, %d pauses, "
           "%d isolations, %d failovers, %d controlled shutdowns\n",
           g_total.runs, (double)g_total.virtual_ms / 1000.0, g_total.steps, g_total.meta_records, g_total.sent,
           g_total.acked, g_total.consumed, g_total.dedups, g_total.bumps, g_total.leader_changes, g_total.truncations,
           g_total.crashes, g_total.pauses, g_total.isolations, g_total.failovers, g_total.shutdowns);
    printf("sim --dp: %s in %.1f s\n", failed ? "FAILED" : "passed",
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return failed == 0 ? 0 : 1;
}

static int replay(const dp_params_t *p)
{
    dp_result_t r;
    if (p->verbose) setvbuf(stdout, NULL, _IOLBF, 0); /* the trace survives an abort */
    dp_run_reported(p, &r);
    fflush(stdout);
    if (r.failure != SIM_OK) {
        report(p, &r);
        return 1;
    }
    printf("sim --dp: seed %" PRIu64 " ok (%d brokers, %d partitions, rf %d, min.insync %d): %" PRIu64
           " core steps, %.1f virtual s, %" PRId64 " of %" PRId64 " batches acked, %" PRId64 " consumed, %" PRId64
           " leader changes, %" PRId64 " truncations, %" PRId64 " dedups; %d crashes, %d pauses, %d isolations, "
           "%d failovers, %d controlled shutdowns\n",
           p->seed, r.n_brokers, r.n_parts, r.rf, r.min_isr, r.steps, (double)r.virtual_ms / 1000.0, r.values_acked,
           r.values_sent, r.values_consumed, r.leader_changes, r.truncations, r.dedups, r.crashes, r.pauses,
           r.isolations, r.failovers, r.shutdowns);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: %s --dp [--seeds N] [--first S]                    run the data-plane Check suite\n"
            "       %s --dp --seed S [--bug NAME] [--verbose]          replay one seed\n"
            "bugs: none ack-on-append truncate-to-hw\n",
            g.argv0, g.argv0);
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

int dp_main(int argc, char **argv)
{
    g.argv0 = argv[0];
    dp_params_t one = {0};
    bool single = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n = 0;
        if (strcmp(a, "--dp") == 0) continue;
        if (strcmp(a, "--verbose") == 0) {
            one.verbose = true;
            continue;
        }
        if (strcmp(a, "--seed") == 0 && parse_u64(v, &one.seed) == 0) single = true;
        else if (strcmp(a, "--seeds") == 0 && parse_u64(v, &n) == 0 && n > 0) g.seeds = n;
        else if (strcmp(a, "--first") == 0 && parse_u64(v, &n) == 0) g.first = n;
        else if (!(strcmp(a, "--bug") == 0 && v && dp_bug_parse(v, &one.bug) == 0)) {
            usage();
            return 2;
        }
        i++;
    }
    return single ? replay(&one) : run_suites();
}
