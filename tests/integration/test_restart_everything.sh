#!/usr/bin/env bash
# test_restart_everything — every node, controllers and brokers, killed with SIGKILL at once and
# started again: the brokers register again and are unfenced without waiting out their sessions
# (which are 2 minutes here, longer than any wait of this test), every acknowledged record is still
# there, and new ones are acknowledged (DESIGN.md §3, docs/design.md: the registration grace).
# Found by the chaos harness (tools/chaos run, restart-all): after a full restart the new active
# controller gave every broker a full session, and the restarted brokers were refused until it ran out.
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

N=3000
SESSION_MS=120000 # > T_WAIT_S: a broker refused until its old session expires fails the wait below

cluster up --controllers 3 --brokers 3 --config broker.session.timeout.ms=$SESSION_MS >/dev/null
t_sctl topics create --topic everything --partitions 6 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
t_wait "every partition of everything led with an ISR of 3" t_all_isr everything 3
t_values "$N" before | t_sctl produce --topic everything --acks all --json >"$T_TMP/produced.jsonl"
t_check "every record before the restart acknowledged" test "$(grep -vc '"error"' "$T_TMP/produced.jsonl")" == "$N"

epochs() { t_sctl --timeout-ms 2000 brokers list --json 2>/dev/null; }
before=$(epochs)
# Every broker unfenced under a registration newer than before the restart (the old ones look
# unfenced too until the controller fences them).
reregistered() {
  local now
  now=$(epochs) || return 1
  [[ $(t_eval "{\"now\": $now, \"before\": $before}" "sum(1 for b in d['now'] if not b['fenced'] and
        b['broker_epoch'] > {x['node_id']: x['broker_epoch'] for x in d['before']}[b['node_id']])") == 3 ]]
}
# One kill(1) for all six: one by one, a new controller would be elected between two kills and
# would see the brokers' connections break, which is the case the grace always handled.
pids=()
for n in $(cl_nodes); do pids+=("$(cl_pid "$n")"); done
kill -KILL "${pids[@]}"
t_wait "every node dead" cl_none_running
for n in $(cl_controllers) $(cl_brokers); do cluster start "$n" >/dev/null; done
t_log "killed and restarted all $(cl_nodes | wc -l) nodes"
t_wait "every broker registered again and unfenced (sessions are ${SESSION_MS} ms)" reregistered
t_check "the controller fenced the old incarnations after the grace" \
  grep -q "a new incarnation asks to register while the registered one has no connection" "$CL_DIR"/c*/keeld.log
t_wait "every partition of everything led with an ISR of 3 again" t_all_isr everything 3

t_values "$N" after | t_sctl produce --topic everything --acks all --json >>"$T_TMP/produced.jsonl"
t_check "every record after the restart acknowledged" \
  test "$(grep -vc '"error"' "$T_TMP/produced.jsonl")" == "$((2 * N))"
t_sctl consume --topic everything --from-beginning --timeout-ms 5000 --json >"$T_TMP/consumed.jsonl"
t_verify "$T_TMP/produced.jsonl" "$T_TMP/consumed.jsonl"
t_replicas_agree --topic everything
t_pass
