#!/usr/bin/env bash
# test_snapshots — with a snapshot after every new record and 4 KiB log segments, every
# controller writes snapshots and deletes the segments below them; a controller stopped
# while the others snapshot past its log end catches up by FetchSnapshot: its log then
# starts above 0 and its committed entries match the leader's (DESIGN.md §2 Snapshots).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

NODES=(c1 c2 c3)
SEGMENTS_MIN=3 # segment files each node must have rolled through before its pruning is judged
CMP_MIN=50     # committed entries after the snapshot a caught-up node must match
# A snapshot whenever anything was applied, small segments, a no-op every housekeeping round.
SMALL=(metadata.log.max.record.bytes.between.snapshots=1 metadata.log.segment.bytes=4096
  metadata.max.idle.interval.ms=50)
BIG=(metadata.log.max.record.bytes.between.snapshots=1000000000) # no more snapshots

# set_props NODE KEY=VALUE...: sets keys in NODE's server.properties (duplicates are refused).
set_props() {
  local f=$CL_DIR/$1/server.properties kv key
  shift
  for kv in "$@"; do
    key=${kv%%=*}
    sed -i "/^${key//./\\.}=/d" "$f"
    echo "$kv" >>"$f"
  done
}
restart_with() { # NODE KEY=VALUE...
  cluster stop "$1" >/dev/null
  set_props "$@"
  cluster start "$1" >/dev/null
}
mdir() { echo "$CL_DIR/$1/data/__cluster_metadata-0"; }
leader_name() { t_status && echo "c$(cl_json_int "$T_STATUS" leader_id)"; }

# Polled: NODE has a snapshot, exactly one segment starts at or below its end (the
# segments wholly below it are gone), the oldest starts above 0, and NODE went through
# SEGMENTS_MIN segment files meanwhile (SEEN collects every one seen, across polls).
declare -A SEEN
snapshotted_and_pruned() {
  local n=$1 f name b snap=0 below=0 oldest=-1
  local files=("$(mdir "$n")"/*) # one listing for segments and snapshots alike
  for f in "${files[@]}"; do
    name=${f##*/}
    if [[ $name =~ ^([0-9]{20})-[0-9]{10}\.checkpoint$ ]]; then
      b=$((10#${BASH_REMATCH[1]}))
      if ((b > snap)); then snap=$b; fi
    fi
  done
  for f in "${files[@]}"; do
    name=${f##*/}
    [[ $name =~ ^([0-9]{20})\.log$ ]] || continue
    b=$((10#${BASH_REMATCH[1]}))
    [[ " ${SEEN[$n]:-} " == *" $b "* ]] || SEEN[$n]+=" $b"
    if ((b <= snap)); then below=$((below + 1)); fi
    if ((oldest < 0 || b < oldest)); then oldest=$b; fi
  done
  local seen
  read -r -a seen <<<"${SEEN[$n]:-}"
  ((snap > 0 && below == 1 && oldest > 0 && ${#seen[@]} >= SEGMENTS_MIN))
}

# log_range NODE: "START END SNAPSHOT_END" of NODE's metadata log, read with dump-log
# (read-only, fine on a live node).
log_range() {
  "$KEELCTL" dump-log --dir "$CL_DIR/$1/data" --json | python3 -c '
import json, sys
offs, snap = [], 0
for line in sys.stdin:
    e = json.loads(line)
    if "snapshot" in e:
        snap = max(snap, e["snapshot"]["end_offset"])
    else:
        offs.append(e["offset"])
print(offs[0] if offs else snap, offs[-1] + 1 if offs else snap, snap)'
}
# entries NODE LO HI: "offset epoch control len crc32c" of NODE's entries in [LO, HI).
entries() {
  "$KEELCTL" dump-log --dir "$CL_DIR/$1/data" --json | python3 -c '
import json, sys
lo, hi = int(sys.argv[1]), int(sys.argv[2])
for line in sys.stdin:
    e = json.loads(line)
    if "snapshot" not in e and lo <= e["offset"] < hi:
        print(e["offset"], e["epoch"], e["control"], e["len"], e["crc32c"])' "$2" "$3"
}
end_at_least() { local r; read -r -a r <<<"$(log_range "$1")" && ((r[1] >= $2)); }
installs() { grep -c "installed snapshot ending at offset" "$CL_DIR/$1/keeld.log" || true; }

# ---- every node snapshots and prunes its log --------------------------------------------
cluster up --controllers 3 --brokers 0 >/dev/null
for n in "${NODES[@]}"; do restart_with "$n" "${SMALL[@]}"; done
t_wait "a leader with small snapshots" t_has_leader
for n in "${NODES[@]}"; do
  t_wait "$n to snapshot and delete the segments below its snapshot" snapshotted_and_pruned "$n"
  t_log "$n: went through segments${SEEN[$n]}; now holds $(cd "$(mdir "$n")" && echo *.log *.checkpoint)"
done

# ---- a stopped node falls behind the others' snapshots, then catches up by one -----------
L=$(leader_name) || t_fail "no leader to ask"
F=""
for n in "${NODES[@]}"; do [[ $n == "$L" ]] || { F=$n; break; }; done
OTHERS=()
for n in "${NODES[@]}"; do [[ $n == "$F" ]] || OTHERS+=("$n"); done
cluster stop "$F" >/dev/null
read -r _ f_end _ <<<"$(log_range "$F")"
t_log "stopped $F (leader $L); its log ends at $f_end"
oldest_above() { # NODE OFFSET: NODE's oldest segment starts above OFFSET
  local segs=("$(mdir "$1")"/*.log) # sorted: 20-digit names
  [[ -e ${segs[0]} ]] && ((10#$(basename "${segs[0]}" .log) > $2))
}
for n in "${OTHERS[@]}"; do t_wait "$n to delete the segments holding offset $f_end" oldest_above "$n" "$f_end"; done
# No more snapshots from here on: the leader's log keeps every entry it now holds, so the
# comparison below is exact, and the snapshot the others restart with is what F must fetch.
for n in "${OTHERS[@]}"; do restart_with "$n" "${BIG[@]}"; done
set_props "$F" "${BIG[@]}"
t_wait "a leader among ${OTHERS[*]}" t_has_leader
installs0=$(installs "$F")
cluster start "$F" >/dev/null
f_installed() { (($(installs "$F") > installs0)); }
t_wait "$F to install a snapshot from the leader" f_installed
snap_at=$(grep -o "installed snapshot ending at offset [0-9]*" "$CL_DIR/$F/keeld.log" | tail -n 1 | grep -o '[0-9]*$')
t_check "$F installed a snapshot at $snap_at, not above its old log end $f_end" test "$snap_at" -gt "$f_end"

hw_past() { t_status && (($(cl_json_int "$T_STATUS" high_watermark) >= $1)); }
t_wait "the high watermark to pass $((snap_at + CMP_MIN))" hw_past $((snap_at + CMP_MIN))
L=$(leader_name)
hw=$(cl_json_int "$T_STATUS" high_watermark)
t_wait "$F to hold the entries below the high watermark $hw" end_at_least "$F" "$hw"
read -r f_start f_end2 f_snap <<<"$(log_range "$F")"
t_log "$F: snapshot $f_snap, log [$f_start, $f_end2); leader $L; high watermark $hw"
t_check "$F's log starts at 0 after catching up" test "$f_start" -gt 0
t_check "$F's log starts below its snapshot ($f_start < $f_snap)" test "$f_start" -ge "$f_snap"
# Every entry F holds below the high watermark must be the one the others hold there. The
# others stopped snapshotting, so the one F fetched its snapshot from still holds all of them
# (the leader, unless leadership moved since).
entries "$F" "$f_start" "$hw" >"$T_TMP/f.entries"
t_check "$F lacks entries in [$f_start, $hw)" test "$(wc -l <"$T_TMP/f.entries")" -eq $((hw - f_start))
covered=0
for n in "${OTHERS[@]}"; do
  read -r o_start _ _ <<<"$(log_range "$n")"
  lo=$((o_start > f_start ? o_start : f_start))
  ((lo < hw)) || t_fail "$n's log starts at $o_start, at or above the high watermark $hw"
  entries "$F" "$lo" "$hw" >"$T_TMP/f.part"
  entries "$n" "$lo" "$hw" >"$T_TMP/o.part"
  t_check "$n lacks entries in [$lo, $hw)" test "$(wc -l <"$T_TMP/o.part")" -eq $((hw - lo))
  t_check "$F's committed entries differ from $n's: $(diff "$T_TMP/f.part" "$T_TMP/o.part" | head -n 6)" \
    cmp -s "$T_TMP/f.part" "$T_TMP/o.part"
  t_log "$F matches $n on [$lo, $hw)$([[ $n == "$L" ]] && echo " (the leader)")"
  if ((o_start <= f_start)); then covered=1; fi
done
t_check "no other node holds $F's first entry $f_start any more" test "$covered" == 1
t_pass
