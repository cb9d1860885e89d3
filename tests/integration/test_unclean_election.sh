#!/usr/bin/env bash
# test_unclean_election — two brokers, two topics of replication factor 2: "risky" with
# unclean.leader.election.enable=true, "safe" without it. The follower dies, the ISR shrinks to
# the leader, records land on the leader alone, then the leader dies and the old follower comes
# back: risky's partitions are led by it (an unclean election, logged at ERROR by the
# controller; the records it lacked are lost) and take records again, while safe's stay offline
# (leader -1) until the old leader returns with every record. Once both are back the replicas
# agree: the old leader dropped its records the unclean leader never had (DESIGN.md §3).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

TOPICS=(risky safe)
cluster up --controllers 3 --brokers 2 >/dev/null
t_sctl topics create --topic risky --partitions 2 --replication-factor 2 \
  --config min.insync.replicas=1 --config unclean.leader.election.enable=true >/dev/null
t_sctl topics create --topic safe --partitions 2 --replication-factor 2 --config min.insync.replicas=1 >/dev/null
for t in "${TOPICS[@]}"; do t_wait "every partition of $t led with an ISR of 2" t_all_isr "$t" 2; done
t_topic risky
t_check "risky has unclean.leader.election.enable=true: $T_TOPIC" \
  test "$(t_eval "$T_TOPIC" "d[0]['configs'].get('unclean.leader.election.enable')")" == true
old=b1 new=b2 # b1 ends up the only ISR member; b2 comes back out of sync
old_id=$(cl_node_id $old) new_id=$(cl_node_id $new)

# produce TOPIC PREFIX N: N records with acks=1, every one acknowledged, into $T_TMP/TOPIC-PREFIX.jsonl.
produce() {
  local f=$T_TMP/$1-$2.jsonl
  t_values "$3" "$1-$2" | t_sctl produce --topic "$1" --acks 1 --json >"$f" || t_fail "producing $2 to $1: $(grep -m 1 error "$f")"
  t_check "$3 records of $2 acknowledged by $1" test "$(grep -c '"offset"' "$f")" == "$3"
}
# count_read TOPIC: the number of records a full read of TOPIC returns.
count_read() { t_sctl consume --topic "$1" --from-beginning --timeout-ms 1000 --json | wc -l; }
all_read() { (($(count_read "$1") == $2)); }

for t in "${TOPICS[@]}"; do
  produce "$t" before 200
  # Readable means below the high watermark: the follower holds them too.
  t_wait "the first records of $t replicated to both brokers" all_read "$t" 200
done

cluster kill $new >/dev/null
isr_only_old() {
  t_topic "$1" && [[ $(t_eval "$T_TOPIC" "all(p['leader'] == $old_id and p['isr'] == [$old_id] for p in d[0]['partitions'])") == True ]]
}
for t in "${TOPICS[@]}"; do
  t_wait "every ISR of $t shrunk to $old alone" isr_only_old "$t"
  produce "$t" only-on-$old 100
done

cluster kill $old >/dev/null
fenced() { grep -q "broker $1 fenced" "$CL_DIR"/c*/keeld.log; }
t_wait "the controller to fence $old" fenced "$old_id"
cluster start $new >/dev/null
led_by_new() {
  t_topic risky && [[ $(t_eval "$T_TOPIC" "all(p['leader'] == $new_id and p['isr'] == [$new_id] for p in d[0]['partitions'])") == True ]]
}
t_wait "every partition of risky led by $new (unclean election)" led_by_new
t_log "risky after the unclean election: $(t_eval "$T_TOPIC" "[(p['leader'], p['isr']) for p in d[0]['partitions']]")"
t_check "the controller logged the unclean election at ERROR level" \
  grep -q -i -E ' ERROR .*unclean leader election for risky' "$CL_DIR"/c*/keeld.log
offline() { t_topic safe && [[ $(t_eval "$T_TOPIC" "all(p['leader'] == -1 for p in d[0]['partitions'])") == True ]]; }
safe_now() { t_sctl --timeout-ms 2000 topics describe --topic safe --json 2>&1 || true; }
# The election that made $new lead risky found no eligible leader for safe.
t_check "safe stays offline without unclean election: $(safe_now)" offline

produce risky after 100
set +e
t_values 5 safe-refused | t_sctl --timeout-ms 2000 produce --topic safe --acks 1 --json >"$T_TMP/refused.jsonl" 2>&1
rc=$?
set -e
t_check "producing to the offline safe must fail (exit $rc): $(head -n 2 "$T_TMP/refused.jsonl")" test "$rc" -ne 0
t_check "no record acknowledged by the offline safe" test "$(grep -c '"offset"' "$T_TMP/refused.jsonl" || true)" == 0
t_check "safe is still offline after risky took records again: $(safe_now)" offline
t_check "no unclean election for safe" bash -c "! grep -q -i 'unclean leader election for safe' $CL_DIR/c*/keeld.log"

t_sctl consume --topic risky --from-beginning --timeout-ms 3000 --json >"$T_TMP/risky-read.jsonl"
cat "$T_TMP/risky-before.jsonl" "$T_TMP/risky-after.jsonl" >"$T_TMP/risky-kept.jsonl"
t_verify "$T_TMP/risky-kept.jsonl" "$T_TMP/risky-read.jsonl"
t_check "the records only $old had are gone from risky" test "$(grep -c "only-on-$old" "$T_TMP/risky-read.jsonl" || true)" == 0

cluster start $old >/dev/null
for t in "${TOPICS[@]}"; do t_wait "every partition of $t led with an ISR of 2 again" t_all_isr "$t" 2; done
t_sctl consume --topic safe --from-beginning --timeout-ms 3000 --json >"$T_TMP/safe-read.jsonl"
cat "$T_TMP/safe-before.jsonl" "$T_TMP/safe-only-on-$old.jsonl" >"$T_TMP/safe-acked.jsonl"
t_verify "$T_TMP/safe-acked.jsonl" "$T_TMP/safe-read.jsonl"
produce safe again 5
for t in "${TOPICS[@]}"; do t_replicas_agree --topic "$t"; done
t_pass
