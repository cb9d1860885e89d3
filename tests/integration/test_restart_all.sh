#!/usr/bin/env bash
# test_restart_all — kill -9 every controller and start them again: a leader is elected, the
# epoch rises, the high watermark comes back, and the committed prefix of every node's
# metadata log (read from disk with keelctl dump-log) is identical and unchanged (DESIGN.md §2).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

HW_MIN=10 # committed entries before the crash; a no-op commits every 500 ms
NODES=(c1 c2 c3)

cluster up --controllers 3 --brokers 0 "${T_UP_FLAGS[@]}" >/dev/null
t_wait "a leader" t_has_leader
hw_at_least() { t_status && (($(cl_json_int "$T_STATUS" high_watermark) >= $1)); }
t_wait "the high watermark to reach $HW_MIN" hw_at_least "$HW_MIN"
hw0=$(cl_json_int "$T_STATUS" high_watermark)
e0=$(cl_json_int "$T_STATUS" leader_epoch)
# The high watermark needs a majority only; wait until every voter holds the
# entries below it, so that all three dumps must show the whole prefix.
all_hold_hw0() {
  t_repl && [[ $(t_eval "$T_REPL" "sum(r['status'] != 'Observer' and r['log_end_offset'] >= $hw0 for r in d['replication'])") == 3 ]]
}
t_wait "every voter to hold the entries below $hw0" all_hold_hw0

# committed_prefix NODE FILE: writes "offset epoch control len crc32c" of NODE's
# entries below hw0 to FILE, read from its log with dump-log (read-only, so
# fine on a live node). Fails unless they are the consecutive run ending at
# hw0 - 1 and epochs never decrease along the whole log.
committed_prefix() {
  local out
  out=$("$KEELCTL" dump-log --dir "$CL_DIR/$1/data" --json 2>"$T_TMP/dump.err") ||
    { echo "dump-log --dir $CL_DIR/$1/data failed: $(cat "$T_TMP/dump.err")"; return 1; }
  python3 -c '
import json, sys
hw, rows, epoch = int(sys.argv[1]), [], 0
for line in sys.stdin:
    e = json.loads(line)
    if "snapshot" in e:
        continue
    if e["epoch"] < epoch:
        sys.exit("epoch goes back at offset %d: %d -> %d" % (e["offset"], epoch, e["epoch"]))
    epoch = e["epoch"]
    if e["offset"] < hw:
        rows.append(e)
offs = [e["offset"] for e in rows]
if not offs or offs != list(range(offs[0], hw)):
    sys.exit("entries below %d are not a consecutive run ending at %d: %s" % (hw, hw - 1, offs[-5:]))
for e in rows:
    print(e["offset"], e["epoch"], e["control"], e["len"], e["crc32c"])
' "$hw0" <<<"$out" >"$2" || { echo "$1: bad committed prefix"; return 1; }
}

for n in "${NODES[@]}"; do cluster kill "$n" >/dev/null; done
st=$(cluster status --json)
t_check "all three are dead: $st" test "$(t_eval "$st" "[n['state'] for n in d['nodes']]")" == "['dead', 'dead', 'dead']"
for n in "${NODES[@]}"; do t_check "reading $n's log after kill -9" committed_prefix "$n" "$T_TMP/$n.before"; done
for n in c2 c3; do
  t_check "the committed prefixes of c1 and $n differ: $(diff "$T_TMP/c1.before" "$T_TMP/$n.before" | head -n 6)" \
    cmp -s "$T_TMP/c1.before" "$T_TMP/$n.before"
done
n_committed=$(wc -l <"$T_TMP/c1.before")

for n in "${NODES[@]}"; do cluster start "$n" >/dev/null; done
t_wait "a leader after restarting all" t_has_leader
# A new leader reports its high watermark only once a record of its own epoch
# commits (DESIGN.md §2), so poll for it to reach the old one.
t_wait "the high watermark to reach $hw0 again" hw_at_least "$hw0"
e1=$(cl_json_int "$T_STATUS" leader_epoch)
# Nobody leads epoch e0 after a restart (a restarted leader starts unattached),
# so the epoch must rise, not merely stay.
t_check "the epoch did not rise: $e0 -> $e1" test "$e1" -gt "$e0"
for n in "${NODES[@]}"; do
  t_check "reading $n's live log" committed_prefix "$n" "$T_TMP/$n.after"
  t_check "$n's committed prefix changed across the restart: $(diff "$T_TMP/$n.before" "$T_TMP/$n.after" | head -n 6)" \
    cmp -s "$T_TMP/$n.before" "$T_TMP/$n.after"
done
t_log "before: epoch $e0 hw $hw0; after: epoch $e1 hw $(cl_json_int "$T_STATUS" high_watermark)"
t_log "compared $n_committed committed entries on ${#NODES[@]} nodes before and after"
t_pass
