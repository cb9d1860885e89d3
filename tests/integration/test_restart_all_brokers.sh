#!/usr/bin/env bash
# test_restart_all_brokers — 20,000 records produced with acks=all while every broker is killed
# with SIGKILL at once and then started again: the idempotent producer retries across the
# outage, every acknowledged record is read back exactly once in offset order, every partition
# gets a leader and its full ISR back, and the replicas agree record for record (DESIGN.md §4).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

N=20000
RATE=2000         # records/s from the generator: the run lasts about 10 s
DELIVERY_MS=45000 # a record waiting through the outage is retried this long
BROKERS=(b1 b2 b3)

cluster up --controllers 3 --brokers 3 >/dev/null
t_sctl topics create --topic durable --partitions 6 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
t_wait "every partition of durable led with an ISR of 3" t_all_isr durable 3

t_produce_paced "$N" "$RATE" d --topic durable --delivery-timeout-ms "$DELIVERY_MS"
t_wait "the first 5000 acknowledgements" t_acked 5000
for n in "${BROKERS[@]}"; do cluster kill "$n" >/dev/null; done
down_at=$(wc -l <"$T_TMP/produced.jsonl")
t_log "killed every broker after $down_at acknowledgements"
st=$(cluster status --json)
t_check "all three brokers are dead: $st" \
  test "$(t_eval "$st" "[n['state'] for n in d['nodes'] if n['name'].startswith('b')]")" == "['dead', 'dead', 'dead']"
# Restart only once the controller has fenced all three (their connections broke), so that
# every partition went offline and comes back from brokers replacing fenced incarnations.
all_fenced() {
  local n
  for n in "${BROKERS[@]}"; do
    grep -q "broker $(cl_node_id "$n") fenced" "$CL_DIR"/c*/keeld.log || return 1
  done
}
t_wait "the controller to fence every broker" all_fenced
for n in "${BROKERS[@]}"; do cluster start "$n" >/dev/null; done
t_log "restarted every broker once the controller had fenced them"
t_wait "acknowledgements after the restart" t_acked $((down_at + 1000 < N ? down_at + 1000 : N))
wait "$T_PRODUCER" || t_log "producer exited non-zero (some records failed: counted below)"
t_check "the producer reported every input line" test "$(wc -l <"$T_TMP/produced.jsonl")" == "$N"

acked_n=$(grep -vc '"error"' "$T_TMP/produced.jsonl" || true)
t_log "$acked_n of $N acknowledged"
# The outage lasts far less than the delivery timeout: nothing may be given up.
t_check "every record acknowledged despite the outage ($acked_n; first failure: $(grep -m 1 '"error"' "$T_TMP/produced.jsonl" || true))" \
  test "$acked_n" == "$N"
t_wait "every partition of durable led with an ISR of 3 again" t_all_isr durable 3
t_sctl consume --topic durable --from-beginning --timeout-ms 5000 --json >"$T_TMP/consumed.jsonl"
t_verify "$T_TMP/produced.jsonl" "$T_TMP/consumed.jsonl"
t_replicas_agree --topic durable
t_pass
