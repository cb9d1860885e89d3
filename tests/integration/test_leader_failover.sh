#!/usr/bin/env bash
# test_leader_failover — a killed leader is replaced in a higher epoch and rejoins as a
# follower; a paused leader is replaced too and, once resumed, steps down (DESIGN.md §2).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

CATCHUP_SLACK=5 # offsets a rejoined follower may trail by (no-ops keep arriving)
others() { local n; for n in c1 c2 c3; do [[ $n == "c$1" ]] || echo "$n"; done; }

cluster up --controllers 3 --brokers 0 "${T_UP_FLAGS[@]}" >/dev/null
t_wait "a leader" t_has_leader
l1=$(cl_json_int "$T_STATUS" leader_id)
e1=$(cl_json_int "$T_STATUS" leader_epoch)

# kill -9 the leader: the survivors elect a new one in a higher epoch.
mapfile -t rest < <(others "$l1")
t0=$(cl_now_ms)
cluster kill "c$l1" >/dev/null
t_wait "a new leader after kill -9 of c$l1" t_new_leader_among "$e1" "$l1" "${rest[@]}"
l2=$(cl_json_int "$T_STATUS" leader_id)
e2=$(cl_json_int "$T_STATUS" leader_epoch)
t_log "kill -9 c$l1 (epoch $e1) -> c$l2 leads in epoch $e2 after $(($(cl_now_ms) - t0)) ms"

# The old leader comes back as a follower and catches up.
cluster start "c$l1" >/dev/null
t_wait "c$l1 to rejoin as a caught-up follower" t_caught_up "$l1" "$CATCHUP_SLACK"

# SIGSTOP the new leader: its connections stay open, so the others notice by timeout.
mapfile -t rest < <(others "$l2")
t0=$(cl_now_ms)
cluster kill "c$l2" --signal STOP >/dev/null
t_wait "a new leader after SIGSTOP of c$l2" t_new_leader_among "$e2" "$l2" "${rest[@]}"
l3=$(cl_json_int "$T_STATUS" leader_id)
e3=$(cl_json_int "$T_STATUS" leader_epoch)
t_log "SIGSTOP c$l2 (epoch $e2) -> c$l3 leads in epoch $e3 after $(($(cl_now_ms) - t0)) ms"

# SIGCONT: the old leader must step down; every node names c$l3 (or a later leader).
cluster kill "c$l2" --signal CONT >/dev/null
t_wait "all nodes to agree on one leader after SIGCONT of c$l2" cl_views_agree
views=$(cl_leader_views)
t_check "agreed leader is in epoch >= $e3: $views" test "$(awk '{print $3; exit}' <<<"$views")" -ge "$e3"
t_wait "exactly one Leader row" t_one_leader_row
t_wait "c$l2 to catch up as a follower" t_caught_up "$l2" "$CATCHUP_SLACK"
t_pass
