#!/usr/bin/env bash
# test_min_insync — with the ISR reduced below min.insync.replicas, acks=all fails with
# not-enough-replicas and nothing is acknowledged, while acks=1 still works; once the
# replicas return, acks=all works again (DESIGN.md §4).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

cluster up --controllers 3 --brokers 3 >/dev/null
# One partition, so the other two brokers are its followers.
t_sctl topics create --topic strict --partitions 1 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
t_wait "strict led with an ISR of 3" t_all_isr strict 3
leader=$(t_leader_of strict 0)
others=()
for n in $(cl_brokers); do [[ $(cl_node_id "$n") == "$leader" ]] || others+=("$n"); done
t_log "leader $leader; killing followers ${others[*]}"
for n in "${others[@]}"; do cluster kill "$n" >/dev/null; done
isr_one() { t_topic strict && [[ $(t_eval "$T_TOPIC" "d[0]['partitions'][0]['isr'] == [$leader] and d[0]['partitions'][0]['leader'] == $leader") == True ]]; }
t_wait "the ISR to shrink to the leader alone" isr_one

set +e
t_values 5 strict-all | t_sctl --timeout-ms 5000 produce --topic strict --acks all --json >"$T_TMP/all.jsonl" 2>"$T_TMP/all.err"
rc=$?
set -e
t_check "acks=all with ISR 1 < min.insync 2 must fail (exit $rc): $(cat "$T_TMP/all.jsonl" "$T_TMP/all.err")" test "$rc" -ne 0
t_check "no acks=all record acknowledged: $(cat "$T_TMP/all.jsonl")" test "$(grep -c '"offset"' "$T_TMP/all.jsonl" || true)" == 0
t_check "the error says not enough replicas: $(head -n 2 "$T_TMP/all.jsonl")" grep -qi 'replicas' "$T_TMP/all.jsonl"

t_values 5 strict-one | t_sctl produce --topic strict --acks 1 --json >"$T_TMP/one.jsonl"
t_check "acks=1 still works: $(cat "$T_TMP/one.jsonl")" test "$(grep -c '"offset"' "$T_TMP/one.jsonl")" == 5

for n in "${others[@]}"; do cluster start "$n" >/dev/null; done
t_wait "the ISR to grow back to 3" t_all_isr strict 3
t_values 5 strict-again | t_sctl produce --topic strict --acks all --json >"$T_TMP/again.jsonl"
t_check "acks=all works again: $(cat "$T_TMP/again.jsonl")" test "$(grep -c '"offset"' "$T_TMP/again.jsonl")" == 5
t_sctl consume --topic strict --from-beginning --timeout-ms 3000 --json >"$T_TMP/consumed.jsonl"
cat "$T_TMP/one.jsonl" "$T_TMP/again.jsonl" >"$T_TMP/acked.jsonl"
t_verify "$T_TMP/acked.jsonl" "$T_TMP/consumed.jsonl"
t_check "no refused acks=all record was ever written" test "$(grep -c strict-all "$T_TMP/consumed.jsonl" || true)" == 0
t_replicas_agree --topic strict
t_pass
