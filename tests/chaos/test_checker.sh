#!/usr/bin/env bash
# test_checker.sh — proves `tools/chaos check` has teeth: each hand-made history with an anomaly is found invalid
# with exactly that anomaly counted once, valid ones pass, malformed ones are refused (exit 2) naming the line.
# histories/: ANOMALY[.VARIANT].jsonl holds one instance of ANOMALY and nothing else; valid-*.jsonl hold none;
# malformed-*[-lineN].jsonl must be refused at line N. Ends with "N passed, M failed"; exit 1 on any failure.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CHAOS=$ROOT/tools/chaos
PY=$(python3 -c 'import sys; print(sys.executable)') # the interpreter itself: a version-manager shim costs ~0.2 s a run
HISTORIES=$ROOT/tests/chaos/histories
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1: $2"; }

# start NAME VIA HISTORY [ARGS...]: runs the checker (VIA "entry": `tools/chaos check`; "direct": $PY on
# chaos_check.py) in the background, all runs at once to keep this fast; its exit status goes to
# $TMP/NAME.rc, its output to $TMP/NAME.{stdout,stderr}, its results to $TMP/NAME/.
start() {
  local name=$1 history=$3 cmd=("$PY" "$ROOT/tools/chaos_check.py")
  [[ $2 == entry ]] && cmd=("$CHAOS" check)
  shift 3
  (
    rc=0
    "${cmd[@]}" "$history" --out "$TMP/$name" "$@" >"$TMP/$name.stdout" 2>"$TMP/$name.stderr" || rc=$?
    echo "$rc" >"$TMP/$name.rc"
  ) &
}

# expect NAME STATUS [EXPR]: the run exited with STATUS; EXPR (Python over the parsed results.json `r` and
# `counts`, anomaly -> count) is queued for verify_all, which checks every EXPR in one Python process.
expect() {
  local name=$1 want=$2 expr=${3:-} rc
  rc=$(cat "$TMP/$name.rc")
  if ((rc != want)); then
    fail "$name" "exit status $rc, expected $want; $(tail -n 3 "$TMP/$name.stderr" "$TMP/$name.stdout" | tr '\n' ' ')"
  elif [[ -n $expr ]]; then
    printf '%s\t%s\t%s\n' "$name" "$TMP/$name/results.json" "${expr//$'\n'/ }" >>"$TMP/expectations"
  else
    pass "$name"
  fi
}

verify_all() {
  local line
  while IFS= read -r line; do
    case $line in ok\ *) pass "${line#ok }" ;; *) fail "${line%%: *}" "${line#*: }" ;; esac
  done < <("$PY" - "$TMP/expectations" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    name, results, expr = line.rstrip("\n").split("\t", 2)
    try:
        r = json.load(open(results))
        counts = {k: a["count"] for k, a in r["anomalies"].items()}
        held = eval("(" + expr + ")", {"r": r, "counts": counts})
        why = f"valid={r['valid']} counts={counts}"
    except (OSError, ValueError, KeyError, TypeError) as e:
        held, why = False, repr(e)
    print(f"ok {name}" if held else f"{name}: expected {' '.join(expr.split())}; {why}")
PY
  )
}

# Many anomalies: 15 acknowledged sends, and a final read that finds the partition empty.
for v in $(seq 0 14); do
  printf '{"type":"%s","f":"send","process":"p","time":%d,"topic":"t","partition":0,"key":"k","value":%d%s}\n' \
    invoke "$v" "$v" "" ok "$v" "$v" ",\"offset\":$v"
done >"$TMP/many-lost.jsonl"
printf '{"type":"%s","f":"final-read","process":"r","time":20,"topic":"t","partition":0%s}\n' \
  invoke "" ok ',"from":0,"to":0,"records":[]' >>"$TMP/many-lost.jsonl"

for h in "$HISTORIES"/*.jsonl; do start "$(basename "$h" .jsonl)" direct "$h" --no-plots; done
start many-lost-writes direct "$TMP/many-lost.jsonl" --no-plots
start plots entry "$HISTORIES/valid-basic.jsonl"
wait

for h in "$HISTORIES"/*.jsonl; do
  name=$(basename "$h" .jsonl)
  case $name in
    valid-*) expect "$name" 0 'r["valid"] and not any(counts.values())' ;;
    malformed-*)
      expect "$name" 2
      if [[ $name =~ -line([0-9]+)$ ]] && ! grep -q ":${BASH_REMATCH[1]}: malformed history" "$TMP/$name.stderr"; then
        fail "$name names line ${BASH_REMATCH[1]}" "stderr: $(cat "$TMP/$name.stderr")"
      fi ;;
    *) expect "$name" 1 "not r['valid'] and counts.get('${name%%.*}') == 1 and sum(counts.values()) == 1" ;;
  esac
done

# Metrics of valid-basic, worked out by hand: ok latencies 2 4 4 5 20 ms; no ok send between 9 and 2610 ms.
expect valid-basic 0 \
  'r["latency_ms"] == {"count": 5, "p50": 4, "p99": 20, "p99.9": 20, "max": 20} and
   r["availability"]["longest_gap_ms"] == {"ms": 2601, "from": 9, "to": 2610} and
   (r["availability"]["sends"], r["availability"]["ok"]) == (8, 5) and
   r["operations"]["send"]["pending"] == 1 and r["faults"] == {"kill": 1}'

# The count is exact and the examples stop at 10.
expect many-lost-writes 1 'counts["lost-write"] == 15 and sum(counts.values()) == 15 and
                           len(r["anomalies"]["lost-write"]["examples"]) == 10'

# The PNGs are drawn when gnuplot is installed; without it the summary says they were skipped.
if command -v gnuplot >/dev/null; then
  expect plots 0 'r["plots"] == {"files": ["'"$TMP"'/plots/latency.png", "'"$TMP"'/plots/throughput.png"]}'
  if [[ -s $TMP/plots/latency.png && -s $TMP/plots/throughput.png ]]; then pass "plots are PNG files"; else
    fail "plots are PNG files" "$(ls -l "$TMP/plots")"; fi
else
  expect plots 0 '"gnuplot is not installed" in r["plots"]["skipped"]'
  if grep -q "plots: skipped, gnuplot is not installed" "$TMP/plots.stdout"; then pass "summary says plots skipped"; else
    fail "summary says plots skipped" "$(cat "$TMP/plots.stdout")"; fi
fi

# The entry point: usage errors exit 2, also the runner's, which refuses bad flags before it starts anything.
for args in "" "check" "bogus" "check $TMP/no-such-history.jsonl" "run" "run --duration 0" \
  "run --duration 5 --faults kill,bogus" "run --duration 5 --targets nobody" "run --duration 5 --out $HISTORIES"; do
  rc=0
  read -ra argv <<<"$args"
  "$CHAOS" "${argv[@]}" >"$TMP/entry.stdout" 2>"$TMP/entry.stderr" || rc=$?
  if ((rc == 2)) && [[ -s $TMP/entry.stderr ]]; then pass "chaos ${args:-(no args)} exits 2 with a message"
  else fail "chaos ${args:-(no args)}" "exit status $rc: $(cat "$TMP/entry.stderr")"; fi
done

verify_all
echo "$passed passed, $failed failed"
((failed == 0))
