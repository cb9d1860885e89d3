#!/usr/bin/env bash
# test_zombie_leader — the leader of a partition is paused (SIGSTOP) past its session while
# acks=all records keep coming: the controller fences it and elects an in-sync follower; when
# the paused broker resumes it still holds requests sent to it before the pause and believes
# it leads, but it cannot acknowledge an acks=all write the new leader does not have. Every
# acknowledged record is read back exactly once and the replicas agree (DESIGN.md §4
# "Fencing zombies").
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

N=30000
RATE=3000
cluster up --controllers 3 --brokers 3 --config broker.session.timeout.ms=3000 >/dev/null
t_sctl topics create --topic ledger --partitions 3 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
t_wait "every partition of ledger led with an ISR of 3" t_all_isr ledger 3
zid=$(t_leader_of ledger 0)
zombie=$(cl_resolve "$zid")

t_produce_paced "$N" "$RATE" z --topic ledger
t_wait "the first 3000 acknowledgements" t_acked 3000
paused_at=$(cl_now_ms)
cluster kill "$zombie" --signal STOP >/dev/null
# keelctl asks the first bootstrap broker first, and a paused one takes its whole --timeout-ms:
# while the zombie is paused, ask the others.
CL_SBOOT=$(cl_bootstrap_of $(cl_brokers | grep -vx "$zombie"))
t_wait "partition 0 led by another in-sync replica" t_partition_ok ledger 0 "$zid" 2
moved_ms=$(($(cl_now_ms) - paused_at))
t_log "$zombie paused; partition 0 moved to $(t_eval "$T_TOPIC" "d[0]['partitions'][0]['leader']") after $moved_ms ms"
before=$(wc -l <"$T_TMP/produced.jsonl")
t_wait "acknowledgements from the new leader" t_acked $((before + 3000 < N ? before + 3000 : N))
cluster kill "$zombie" --signal CONT >/dev/null
CL_SBOOT=""
t_log "$zombie resumed"
wait "$T_PRODUCER" || t_log "producer exited non-zero (some records failed: counted below)"
t_check "the producer reported every input line" test "$(wc -l <"$T_TMP/produced.jsonl")" == "$N"

t_sctl consume --topic ledger --from-beginning --timeout-ms 5000 --json >"$T_TMP/consumed.jsonl"
t_verify "$T_TMP/produced.jsonl" "$T_TMP/consumed.jsonl"
t_wait "$zombie back in every ISR" t_all_isr ledger 3
t_replicas_agree --topic ledger
grep -q -i 'fenc' "$CL_DIR/$zombie/keeld.log" || t_log "note: $zombie's log does not mention fencing"
t_pass
