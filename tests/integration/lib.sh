# lib.sh — sourced by every tests/integration/test_*.sh: a private cluster dir,
# cleanup on any exit, PASS/FAIL reporting and bounded polling helpers.
# shellcheck shell=bash disable=SC2317 # functions run through t_wait/t_check
set -Eeuo pipefail

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T_NAME=${T_NAME:-$(basename "${BASH_SOURCE[1]:-$0}" .sh)}
# T_TLS=1 runs a test's cluster with --tls (mutual TLS on every listener).
T_TLS=${T_TLS:-0}
# shellcheck disable=SC2034 # used by the tests that source this file
if ((T_TLS)); then T_UP_FLAGS=(--tls); else T_UP_FLAGS=(); fi
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD=$T_ROOT/$BUILD
export KEEL_BIN=$BUILD/bin
# Tests talk to their own cluster only.
unset KEEL_BOOTSTRAP_CONTROLLER KEEL_BOOTSTRAP_SERVER KEEL_COMMAND_CONFIG KEEL_CLUSTER_DIR

# shellcheck source=tools/cluster
source "$T_ROOT/tools/cluster"
cl_bins

T_WAIT_S=60 # generous: a loaded 2-core machine must not make a test flaky
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/keel-it-$T_NAME.XXXXXX")
CL_DIR=$T_TMP/cluster
T_DONE=0
T_ERR=""

t_cleanup() {
  local rc=$?
  set +e
  if ((rc != 0 && T_DONE == 0)); then
    echo "FAIL $T_NAME: exit status $rc${T_ERR:+ at $T_ERR}"
    t_show_logs
  fi
  [[ -e $CL_DIR ]] && "$T_ROOT/tools/cluster" down --dir "$CL_DIR" >/dev/null 2>&1
  rm -rf "$T_TMP"
  exit "$rc"
}
trap t_cleanup EXIT
trap 'exit 143' TERM INT
trap 'T_ERR="line $LINENO: $BASH_COMMAND"' ERR

t_show_logs() {
  local f
  for f in "$CL_DIR"/[cb]*/keeld.log; do
    [[ -f $f ]] || continue
    echo "--- tail of $f"
    tail -n 15 "$f"
  done
}

t_fail() {
  T_DONE=1
  echo "FAIL $T_NAME: $*"
  t_show_logs
  exit 1
}

t_pass() {
  T_DONE=1
  echo "PASS $T_NAME"
  exit 0
}

t_log() { echo "  $T_NAME: $*"; }

# The cluster tool on this test's dir.
cluster() { "$T_ROOT/tools/cluster" "$1" --dir "$CL_DIR" "${@:2}"; }

# t_wait DESCRIPTION CMD...: polls CMD until it succeeds, failing the test after T_WAIT_S.
t_wait() {
  local what=$1
  shift
  cl_wait_until "$T_WAIT_S" "$@" || t_fail "timed out after ${T_WAIT_S}s waiting for: $what"
}

# t_check DESCRIPTION CMD...: fails the test unless CMD succeeds.
t_check() {
  local what=$1
  shift
  "$@" || t_fail "$what"
}

# JSON of `quorum describe --status` / `--replication` into T_STATUS / T_REPL.
t_status() { T_STATUS=$(cl_ctl --timeout-ms 2000 quorum describe --status --json 2>/dev/null); }
t_repl() { T_REPL=$(cl_ctl --timeout-ms 2000 quorum describe --replication --json 2>/dev/null); }
t_has_leader() { t_status && (($(cl_json_int "$T_STATUS" leader_id) >= 0)); }

# t_eval JSON PYTHON_EXPR -> value (d is the parsed JSON)
t_eval() { cl_json_eval "$1" "$2"; }

# Status JSON from the given nodes only, once they report a leader other than
# EXCLUDE_ID in an epoch above MIN_EPOCH (sets T_STATUS).
t_new_leader_among() { # MIN_EPOCH EXCLUDE_ID NODE...
  local min=$1 ex=$2 out id
  shift 2
  out=$(CL_BOOT=$(cl_bootstrap_of "$@") cl_ctl --timeout-ms 500 quorum describe --status --json 2>/dev/null) || return 1
  id=$(cl_json_int "$out" leader_id) || return 1
  ((id >= 0 && id != ex && $(cl_json_int "$out" leader_epoch) > min)) || return 1
  T_STATUS=$out
}

# Replication shows NODE_ID as a Follower within SLACK offsets of the leader.
t_caught_up() { # NODE_ID SLACK
  t_repl || return 1
  [[ $(t_eval "$T_REPL" "any(r['node_id'] == $1 and r['status'] == 'Follower' and 0 <= r['lag'] <= $2 for r in d['replication'])") == True ]]
}

t_one_leader_row() {
  t_repl || return 1
  [[ $(t_eval "$T_REPL" "sum(r['status'] == 'Leader' for r in d['replication'])") == 1 ]]
}

# ---- data plane -----------------------------------------------------------------

# keelctl against this test's brokers.
t_sctl() { cl_sctl "$@"; }

# Log dirs of every broker (for keelctl check-replicas).
t_broker_dirs() { local n out=""; for n in $(cl_brokers); do out+=${out:+,}$CL_DIR/$n/data; done; echo "$out"; }

# JSON of `topics describe --topic T --json` into T_TOPIC.
t_topic() { T_TOPIC=$(t_sctl --timeout-ms 2000 topics describe --topic "$1" --json 2>/dev/null); }

# Partition P of topic T has a leader other than EXCLUDE (-1: any) and an ISR of at least N.
t_partition_ok() { # TOPIC P EXCLUDE MIN_ISR
  t_topic "$1" || return 1
  [[ $(t_eval "$T_TOPIC" "[p for p in d[0]['partitions'] if p['partition'] == $2 and p['leader'] >= 0 and p['leader'] != $3 and len(p['isr']) >= $4] != []") == True ]]
}
# Every partition of TOPIC has a leader and an ISR of N.
t_all_isr() { # TOPIC N
  t_topic "$1" || return 1
  [[ $(t_eval "$T_TOPIC" "all(p['leader'] >= 0 and len(p['isr']) == $2 for p in d[0]['partitions'])") == True ]]
}
# Leader id of TOPIC's partition P.
t_leader_of() { t_topic "$1" && t_eval "$T_TOPIC" "[p['leader'] for p in d[0]['partitions'] if p['partition'] == $2][0]"; }

# Writes N unique lines "PREFIX-i" to stdout.
t_values() { seq -f "$2-%.0f" 1 "$1"; }

# t_produce_paced N RATE PREFIX PRODUCE_ARGS...: N records (PREFIX-1..) at RATE/s, produced with
# acks=all in the background into $T_TMP/produced.jsonl; T_PRODUCER is the job's pid.
t_produce_paced() {
  local n=$1 rate=$2 prefix=$3
  shift 3
  python3 "$T_ROOT/tests/integration/pace.py" "$n" "$rate" "$prefix" |
    t_sctl produce "$@" --acks all --json >"$T_TMP/produced.jsonl" &
  T_PRODUCER=$!
}
# t_acked N: at least N records of t_produce_paced answered so far.
t_acked() { (($(wc -l <"$T_TMP/produced.jsonl") >= $1)); }

# t_verify PRODUCED CONSUMED: every acknowledged record read back exactly once, in order.
t_verify() {
  local out
  out=$(python3 "$T_ROOT/tests/integration/verify_acked.py" "$1" "$2") || t_fail "acknowledged records: $out"
  t_log "$out"
}

# No offset holds two different records on two replicas.
t_replicas_agree() {
  local out
  out=$("$KEELCTL" check-replicas --log-dirs "$(t_broker_dirs)" "$@" 2>&1) || t_fail "replicas differ: $out"
  t_log "replicas agree: $(tail -n 1 <<<"$out")"
}
