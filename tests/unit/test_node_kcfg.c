/* test_node_kcfg.c — keeld's config schema: cross-key rules and structured values. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "keel/err.h"
#include "keel/kcfg.h"
#include "unit/kl_check.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/keel-kcfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes `text` to dir/name and returns the path (static buffer). */
static const char *write_file(const char *name, const char *text)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

#define BASE                                                                                         \
    "process.roles=controller\nnode.id=1\n"                                                          \
    "controller.quorum.voters=1@127.0.0.1:9001,2@127.0.0.1:9002,3@[::1]:9003\n"                      \
    "listeners=PLAINTEXT://127.0.0.1:9001\nlog.dirs=/tmp/a, /tmp/b\n"

static int load(const char *text, const char *const *over, int n, char *err, kl_config_t **out)
{
    return kcfg_load(write_file("s.properties", text), over, n, out, err, KL_CONFIG_ERR_LEN);
}

START_TEST(valid_config_loads_with_kafka_defaults)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    ck_assert_int_eq(load(BASE, NULL, 0, err, &c), 0);
    ck_assert_int_eq(kl_config_int(c, "controller.quorum.election.timeout.ms"), 1000);
    ck_assert_int_eq(kl_config_int(c, "controller.quorum.fetch.timeout.ms"), 2000);
    char md[256];
    ck_assert_int_eq(kcfg_metadata_dir(c, md, sizeof md), 0);
    ck_assert_str_eq(md, "/tmp/a");
    raft_config_t rc;
    ck_assert_int_eq(kcfg_raft_config(c, &rc, err, sizeof err), 0);
    ck_assert_int_eq(rc.node_id, 1);
    ck_assert_int_eq(rc.n_voters, 3);
    ck_assert_int_eq(rc.voters[2], 3);
    ck_assert_int_eq(rc.fetch_timeout_ms, 2000);
    ck_assert_int_eq(rc.fetch_stall_ms, 700); /* Keel: a stalled leader is replaced long before that */
    kl_config_free(c);
}
END_TEST

START_TEST(fetch_stall_can_be_set_or_turned_off_but_not_within_the_long_poll)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    raft_config_t rc;
    const char *over[] = {"controller.quorum.fetch.stall.ms=900"};
    ck_assert_int_eq(load(BASE, over, 1, err, &c), 0);
    ck_assert_int_eq(kcfg_raft_config(c, &rc, err, sizeof err), 0);
    ck_assert_int_eq(rc.fetch_stall_ms, 900);
    kl_config_free(c);

    over[0] = "controller.quorum.fetch.stall.ms=0"; /* KRaft: wait for the fetch timeout */
    ck_assert_int_eq(load(BASE, over, 1, err, &c), 0);
    ck_assert_int_eq(kcfg_raft_config(c, &rc, err, sizeof err), 0);
    ck_assert_int_eq(rc.fetch_stall_ms, 0);
    kl_config_free(c);

    over[0] = "controller.quorum.fetch.stall.ms=500"; /* every idle long poll would look stalled */
    ck_assert_int_eq(load(BASE, over, 1, err, &c), 0);
    ck_assert_int_eq(kcfg_raft_config(c, &rc, err, sizeof err), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "controller.quorum.fetch.stall.ms: 500 must be 0 or above the 500 ms long poll"));
    kl_config_free(c);

    over[0] = "controller.quorum.fetch.stall.ms=-1";
    ck_assert_int_eq(load(BASE, over, 1, err, &c), KL_ECONFIG);
}
END_TEST

START_TEST(override_wins_over_file)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    const char *over[] = {"metadata.log.dir=/tmp/meta", "controller.quorum.fetch.timeout.ms=300"};
    ck_assert_int_eq(load(BASE, over, 2, err, &c), 0);
    char md[256];
    ck_assert_int_eq(kcfg_metadata_dir(c, md, sizeof md), 0);
    ck_assert_str_eq(md, "/tmp/meta");
    ck_assert_int_eq(kl_config_int(c, "controller.quorum.fetch.timeout.ms"), 300);
    kl_config_free(c);
}
END_TEST

START_TEST(request_timeout_must_outlast_the_long_poll)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    raft_config_t rc;
    const char *over[] = {"controller.quorum.request.timeout.ms=400"};
    ck_assert_int_eq(load(BASE, over, 1, err, &c), 0);
    ck_assert_int_eq(kcfg_raft_config(c, &rc, err, sizeof err), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "controller.quorum.request.timeout.ms: 400 must be above the 500 ms long poll"));
    kl_config_free(c);
}
END_TEST

START_TEST(controller_missing_from_voters_is_refused)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    const char *over[] = {"node.id=7"};
    ck_assert_int_eq(load(BASE, over, 1, err, &c), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "node.id 7 is a controller but not in controller.quorum.voters"));
}
END_TEST

START_TEST(missing_required_key_names_the_file)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    ck_assert_int_eq(load("process.roles=controller\n", NULL, 0, err, &c), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "s.properties: "));
    ck_assert_ptr_nonnull(strstr(err, "missing required key"));
}
END_TEST

START_TEST(ssl_listener_requires_certificate_and_key)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    const char *over[] = {"listeners=SSL://127.0.0.1:9001"};
    ck_assert_int_eq(load(BASE, over, 1, err, &c), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "ssl.certificate.location"));
}
END_TEST

START_TEST(client_auth_required_needs_a_ca)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    const char *over[] = {"ssl.client.auth=required"};
    ck_assert_int_eq(load(BASE, over, 1, err, &c), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "ssl.ca.location"));
    const char *bad[] = {"ssl.client.auth=maybe"};
    ck_assert_int_eq(load(BASE, bad, 1, err, &c), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "required or none"));
}
END_TEST

START_TEST(unknown_role_is_refused)
{
    char err[KL_CONFIG_ERR_LEN];
    kl_config_t *c;
    const char *over[] = {"process.roles=controller,zookeeper"};
    ck_assert_int_eq(load(BASE, over, 1, err, &c), KL_ECONFIG);
    ck_assert_ptr_nonnull(strstr(err, "'zookeeper'"));
}
END_TEST

START_TEST(voter_list_rejects_junk_and_duplicates)
{
    kcfg_voter_t v[RAFT_MAX_VOTERS];
    int n;
    char err[256];
    ck_assert_int_eq(kcfg_parse_voters("1@h:1,2@[::1]:65535", v, RAFT_MAX_VOTERS, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(v[1].host, "::1");
    ck_assert_int_eq(v[1].port, 65535);
    const char *bad[] = {"", "1@h", "x@h:1", "1@h:0", "1@h:65536", "1@:5", "1@h:1,1@h:2", "-1@h:1",
                         "1@h:1a", "1@h:1,2@h:2,3@h:3,4@h:4,5@h:5,6@h:6,7@h:7,8@h:8"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(kcfg_parse_voters(bad[i], v, RAFT_MAX_VOTERS, &n, err, sizeof err) == KL_ECONFIG,
                      "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(listener_list_parses_protocols)
{
    kcfg_listener_t l[KCFG_MAX_LISTENERS];
    int n;
    char err[256];
    ck_assert_int_eq(kcfg_parse_listeners("PLAINTEXT://0.0.0.0:1, SSL://[::1]:2", l, KCFG_MAX_LISTENERS, &n,
                                          err, sizeof err), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(l[1].proto, KCFG_SSL);
    ck_assert_str_eq(l[1].host, "::1");
    const char *bad[] = {"HTTP://h:1", "PLAINTEXT://h", "SSL://:1", "PLAINTEXT://h:99999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(kcfg_parse_listeners(bad[i], l, KCFG_MAX_LISTENERS, &n, err, sizeof err) == KL_ECONFIG,
                      "accepted '%s'", bad[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("node_kcfg");
    TCase *tc = tcase_create("kcfg");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, valid_config_loads_with_kafka_defaults);
    tcase_add_test(tc, override_wins_over_file);
    tcase_add_test(tc, fetch_stall_can_be_set_or_turned_off_but_not_within_the_long_poll);
    tcase_add_test(tc, request_timeout_must_outlast_the_long_poll);
    tcase_add_test(tc, controller_missing_from_voters_is_refused);
    tcase_add_test(tc, missing_required_key_names_the_file);
    tcase_add_test(tc, ssl_listener_requires_certificate_and_key);
    tcase_add_test(tc, client_auth_required_needs_a_ca);
    tcase_add_test(tc, unknown_role_is_refused);
    tcase_add_test(tc, voter_list_rejects_junk_and_duplicates);
    tcase_add_test(tc, listener_list_parses_protocols);
    suite_add_tcase(s, tc);
    return kl_check_run(s);
}
