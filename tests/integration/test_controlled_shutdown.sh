#!/usr/bin/env bash
# test_controlled_shutdown — the broker leading partition 0 is stopped with SIGTERM while acks=all
# records keep coming: it asks the controller to move its leaderships to other ISR members
# first, then exits 0; no record fails and every acknowledged one is read back exactly once.
# Started again, it rejoins every ISR, and a preferred leader election moves leadership of the
# partitions it is the first replica of back to it (DESIGN.md §3 "Controlled shutdown",
# "Preferred leader election").
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

N=20000
RATE=2000 # records/s from the generator: the run lasts about 10 s

# No periodic rebalance: only the on-demand election below may move leaders back.
cluster up --controllers 3 --brokers 3 --config auto.leader.rebalance.enable=false >/dev/null
t_sctl topics create --topic orders --partitions 6 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
t_wait "every partition of orders led with an ISR of 3" t_all_isr orders 3
vid=$(t_leader_of orders 0)
victim=$(cl_resolve "$vid")
# The partitions the victim is the preferred (first) replica of; a new topic is led by them.
preferred=$(t_eval "$T_TOPIC" "sorted(p['partition'] for p in d[0]['partitions'] if p['replicas'][0] == $vid)")
t_check "$victim leads exactly the partitions it is preferred for: $T_TOPIC" \
  test "$(t_eval "$T_TOPIC" "sorted(p['partition'] for p in d[0]['partitions'] if p['leader'] == $vid)")" == "$preferred"
t_log "partition 0 is led by $victim ($vid), preferred leader of partitions $preferred"

t_produce_paced "$N" "$RATE" o --topic orders
t_wait "the first 4000 acknowledgements" t_acked 4000
# cluster stop fails unless keeld exits with status 0.
t_check "$victim stops cleanly on SIGTERM" cluster stop "$victim" >/dev/null
t_log "stopped $victim after $(wc -l <"$T_TMP/produced.jsonl") acknowledgements"
t_check "$victim exited because its leaderships had moved, not on a timeout: $(grep -i 'controlled shutdown' "$CL_DIR/$victim/keeld.log")" \
  grep -q 'controlled shutdown: the controller has moved our leaderships away' "$CL_DIR/$victim/keeld.log"
t_check "a controller logged the controlled shutdown of $vid" \
  grep -q "broker $vid begins controlled shutdown" "$CL_DIR"/c*/keeld.log
# The session of a broker that shut down properly never expires: it was not fenced for silence.
t_check "$vid was fenced for silence instead" \
  bash -c "! grep -q 'broker $vid fenced: session expired' $CL_DIR/c*/keeld.log"
none_led_by_victim() {
  t_topic orders && [[ $(t_eval "$T_TOPIC" "all(p['leader'] >= 0 and p['leader'] != $vid and $vid not in p['isr'] for p in d[0]['partitions'])") == True ]]
}
t_wait "every partition led by another broker, $victim out of every ISR" none_led_by_victim
t_log "leaders after the shutdown: $(t_eval "$T_TOPIC" "[p['leader'] for p in d[0]['partitions']]")"

t_wait "acknowledgements from the new leaders" t_acked 12000
cluster start "$victim" >/dev/null
wait "$T_PRODUCER" || t_log "producer exited non-zero (some records failed: counted below)"
t_check "the producer reported every input line" test "$(wc -l <"$T_TMP/produced.jsonl")" == "$N"
acked_n=$(grep -vc '"error"' "$T_TMP/produced.jsonl" || true)
# The leaderships moved before the broker went away: producing never had to fail.
t_check "every record acknowledged across the controlled shutdown ($acked_n of $N; first failure: $(grep -m 1 '"error"' "$T_TMP/produced.jsonl" || true))" \
  test "$acked_n" == "$N"
t_sctl consume --topic orders --from-beginning --timeout-ms 5000 --json >"$T_TMP/consumed.jsonl"
t_verify "$T_TMP/produced.jsonl" "$T_TMP/consumed.jsonl"

t_wait "$victim back in every ISR" t_all_isr orders 3
t_check "$victim does not lead partition 0 before the election" test "$(t_leader_of orders 0)" != "$vid"
out=$(t_sctl leader-election --preferred --topic orders --json)
t_log "leader-election: $out"
t_check "the election moved the $preferred partitions preferring $vid: $out" \
  test "$(t_eval "$out" "d['partitions_elected']")" == "$(t_eval "$preferred" "len(d)")"
led_by_preferred() {
  t_topic orders && [[ $(t_eval "$T_TOPIC" "all(p['leader'] == p['replicas'][0] for p in d[0]['partitions'])") == True ]]
}
t_wait "every partition led by its preferred replica again, partition 0 by $victim" led_by_preferred
t_check "partition 0 led by $victim" test "$(t_leader_of orders 0)" == "$vid"
t_replicas_agree --topic orders
t_pass
