#!/usr/bin/env bash
# test_bad_input — bad configs, unformatted or foreign log dirs, unreachable controllers,
# bad command lines and garbage on the wire fail cleanly and never disturb a running cluster.
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

RUN_BOUND_S=20 # keeld must refuse a bad setup at once; this only bounds a broken one

# expect NAME WANT_RC PATTERN CMD...: runs CMD (bounded), checks its exit status
# ("nonzero" = any failure that is not a crash) and that its output matches PATTERN.
expect() {
  local name=$1 want=$2 pat=$3 rc=0 out
  shift 3
  out=$(timeout "$RUN_BOUND_S" "$@" 2>&1) || rc=$?
  if [[ $want == nonzero ]]; then
    ((rc != 0 && rc < 124)) || t_fail "$name: want a clean failure, got exit $rc: $out"
  else
    ((rc == want)) || t_fail "$name: want exit $want, got $rc: $out"
  fi
  grep -Eqi -- "$pat" <<<"$out" || t_fail "$name: output does not match /$pat/: $out"
  t_log "$name: ok"
}

read -r p1 p2 <<<"$(cl_free_ports 2)"
# node_cfg FILE NODE_ID PORT LOG_DIRS [EXTRA_LINE]
node_cfg() {
  printf '%s\n' "process.roles=controller" "node.id=$2" "controller.quorum.voters=$2@127.0.0.1:$3" \
    "listeners=PLAINTEXT://127.0.0.1:$3" "log.dirs=$4" "${5:-# nothing more}" >"$1"
}
D=$T_TMP/dirs
mkdir -p "$D/a" "$D/b" "$D/empty"
cid_a=$("$KEELCTL" storage random-uuid)
cid_b=$("$KEELCTL" storage random-uuid)
t_check "random-uuid gives 22-character ids that differ: $cid_a $cid_b" \
  test "${#cid_a}" == 22 -a "${#cid_b}" == 22 -a "$cid_a" != "$cid_b"

# ---- keelctl storage format -----------------------------------------------------------
node_cfg "$D/a.properties" 1 "$p1" "$D/a"
node_cfg "$D/b.properties" 1 "$p1" "$D/b"
expect "format" 0 "Formatting $D/a with cluster.id $cid_a" \
  "$KEELCTL" storage format --config "$D/a.properties" --cluster-id "$cid_a"
t_check "format wrote meta.properties" grep -q "^cluster.id=$cid_a$" "$D/a/meta.properties"
expect "format twice" nonzero "already formatted.*--ignore-formatted" \
  "$KEELCTL" storage format --config "$D/a.properties" --cluster-id "$cid_a"
expect "format twice with --ignore-formatted" 0 "" \
  "$KEELCTL" storage format --config "$D/a.properties" --cluster-id "$cid_a" --ignore-formatted
expect "format for another cluster id with --ignore-formatted" nonzero "$cid_a" \
  "$KEELCTL" storage format --config "$D/a.properties" --cluster-id "$cid_b" --ignore-formatted
expect "format with a malformed cluster id" nonzero "cluster.id|cluster-id" \
  "$KEELCTL" storage format --config "$D/b.properties" --cluster-id not-a-uuid
node_cfg "$D/bad.properties" 1 "$p1" "$D/b" "bogus.key=1"
expect "format with an unknown config key names file:line" nonzero "$D/bad.properties:6" \
  "$KEELCTL" storage format --config "$D/bad.properties" --cluster-id "$cid_a"
t_check "a failed format leaves no meta.properties" test ! -e "$D/b/meta.properties"
expect "format for cluster b" 0 "Formatting" \
  "$KEELCTL" storage format --config "$D/b.properties" --cluster-id "$cid_b"

# ---- keeld refuses bad setups -------------------------------------------------------
expect "keeld with an unknown config key" nonzero "$D/bad.properties:6" "$KEELD" --config "$D/bad.properties"
node_cfg "$D/empty.properties" 1 "$p1" "$D/empty"
expect "keeld on an unformatted dir" nonzero "format" "$KEELD" --config "$D/empty.properties"
node_cfg "$D/mixed.properties" 1 "$p1" "$D/a,$D/b"
expect "keeld on dirs of two different clusters" nonzero "cluster" "$KEELD" --config "$D/mixed.properties"
expect "keeld on a dir formatted for another node id" nonzero "node" \
  "$KEELD" --config "$D/a.properties" --override node.id=2 --override "controller.quorum.voters=2@127.0.0.1:$p1"

# ---- keelctl command lines and unreachable controllers --------------------------------
expect "keelctl --help" 0 "quorum describe.*--status" "$KEELCTL" --help
expect "keelctl without a command" 2 "usage" "$KEELCTL"
expect "keelctl with an unknown command" 2 "unknown command" "$KEELCTL" frobnicate now
expect "keelctl with an unknown flag" 2 "unknown" "$KEELCTL" --frobnicate quorum describe --status
expect "quorum describe without --status/--replication" 2 "exactly one" \
  "$KEELCTL" --bootstrap-controller "127.0.0.1:$p1" quorum describe
expect "quorum describe without a bootstrap controller" 2 "bootstrap-controller" "$KEELCTL" quorum describe --status
expect "no controller reachable" 1 "no controller reachable \(tried 127.0.0.1:$p1: .*, 127.0.0.1:$p2: .*\)" \
  "$KEELCTL" --bootstrap-controller "127.0.0.1:$p1,127.0.0.1:$p2" --timeout-ms 2000 quorum describe --status

# ---- garbage on the wire --------------------------------------------------------------
cluster up --controllers 3 --brokers 0 >/dev/null
t_wait "a leader" t_has_leader
for n in c1 c2 c3; do
  out=$(python3 - "$(cl_port "$n")" <<'PY'
# Each case must make the server close the connection (or reset it), not hang.
import socket, struct, sys
port = int(sys.argv[1])
cases = {
    "oversized length prefix": b"\xff\xff\xff\xff" + b"x" * 16,
    "length below the minimum": struct.pack(">I", 1) + b"x",
    "header length past the frame end": struct.pack(">I", 32) + b"\xff" * 32,
    "undecodable protobuf header": struct.pack(">II", 12, 8) + b"\xff" * 8,
    "an HTTP request": b"GET / HTTP/1.0\r\n\r\n",
}
for name, data in cases.items():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(data)
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        print("NOT CLOSED: " + name)
        sys.exit(1)
    finally:
        s.close()
# A frame cut short by the client going away.
s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.sendall(struct.pack(">I", 100) + b"x" * 10)
s.close()
print("closed on every case")
PY
) || t_fail "garbage to $n: $out"
  t_log "garbage to $n: $out"
done
st=$(cluster status --json)
t_check "all nodes alive after the garbage: $st" \
  test "$(t_eval "$st" "[n['state'] for n in d['nodes']]")" == "['alive', 'alive', 'alive']"
t_wait "describe to work after the garbage" t_has_leader
t_pass
