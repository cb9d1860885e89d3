#!/usr/bin/env bash
# test_tls — a TLS cluster (client auth required) serves keelctl over TLS, and plaintext or
# unauthenticated clients fail cleanly without disturbing it (DESIGN.md §5 Wire).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

CTL_BOUND_S=30 # hard bound on any single keelctl run

cluster up --controllers 3 --brokers 0 --tls >/dev/null
t_check "cluster.env points at the client config" grep -q "^export KEEL_COMMAND_CONFIG=$CL_DIR/client.properties$" "$CL_DIR/cluster.env"
t_wait "a leader, asked over TLS" t_has_leader
t_check "status over TLS: $T_STATUS" test "$(t_eval "$T_STATUS" "d['voters'] == [1, 2, 3]")" == True

# expect_refused WHAT KEELCTL_ARGS...: keelctl must fail with exit 1 and the
# no-controller message, not hang and not crash.
expect_refused() {
  local what=$1 rc=0 out
  shift
  out=$(KEEL_COMMAND_CONFIG='' timeout "$CTL_BOUND_S" "$KEELCTL" --timeout-ms 3000 "$@" quorum describe --status 2>&1) || rc=$?
  ((rc == 1)) || t_fail "$what: want exit 1, got $rc: $out"
  grep -q "no controller" <<<"$out" || t_fail "$what: want a 'no controller ...' message, got: $out"
  t_log "$what: refused ($out)"
}

boot=$(cl_bootstrap)
expect_refused "plaintext DescribeQuorum to the TLS ports" --bootstrap-controller "$boot"

printf '%s\n' "security.protocol=SSL" "ssl.ca.location=$CL_DIR/tls/ca.pem" >"$T_TMP/nocert.properties"
expect_refused "TLS without a client certificate" --bootstrap-controller "$boot" --command-config "$T_TMP/nocert.properties"

# A client that trusts another CA must not accept the servers' certificates.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=other-ca \
  -keyout "$T_TMP/other.key" -out "$T_TMP/other.pem" 2>/dev/null
printf '%s\n' "security.protocol=SSL" "ssl.ca.location=$T_TMP/other.pem" \
  "ssl.certificate.location=$CL_DIR/tls/keelctl.pem" "ssl.key.location=$CL_DIR/tls/keelctl.key" >"$T_TMP/otherca.properties"
expect_refused "TLS trusting a foreign CA" --bootstrap-controller "$boot" --command-config "$T_TMP/otherca.properties"

# The cluster is undisturbed: every node still runs and TLS clients are served.
st=$(cluster status --json)
t_check "all nodes alive: $st" test "$(t_eval "$st" "[n['state'] for n in d['nodes']]")" == "['alive', 'alive', 'alive']"
answers() { CL_BOOT=$(cl_bootstrap_of "$1") cl_ctl --timeout-ms 5000 quorum describe --status --json >/dev/null; }
for n in c1 c2 c3; do t_check "$n answers over TLS" answers "$n"; done
t_wait "a leader, asked over TLS again" t_has_leader
t_pass
