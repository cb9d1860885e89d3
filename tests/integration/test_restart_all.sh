#!/usr/bin/env bash
# test_restart_all — kill -9 every controller and start them again: a leader is elected and
# neither the epoch nor the committed high watermark goes back (DESIGN.md §2, §5).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

cluster up --controllers 3 --brokers 0 >/dev/null
t_wait "a leader" t_has_leader
hw_above_zero() { t_status && (($(cl_json_int "$T_STATUS" high_watermark) > 0)); }
t_wait "a committed record" hw_above_zero
hw0=$(cl_json_int "$T_STATUS" high_watermark)
e0=$(cl_json_int "$T_STATUS" leader_epoch)

for n in c1 c2 c3; do cluster kill "$n" >/dev/null; done
st=$(cluster status --json)
t_check "all three are dead: $st" test "$(t_eval "$st" "[n['state'] for n in d['nodes']]")" == "['dead', 'dead', 'dead']"
for n in c1 c2 c3; do cluster start "$n" >/dev/null; done

t_wait "a leader after restarting all" t_has_leader
# A new leader reports its high watermark only once a record of its own epoch
# commits (DESIGN.md §2), so poll for it to reach the old one.
recovered() { t_status && (($(cl_json_int "$T_STATUS" high_watermark) >= hw0)); }
t_wait "the high watermark to reach $hw0 again" recovered
e1=$(cl_json_int "$T_STATUS" leader_epoch)
t_check "epoch went back: $e0 -> $e1" test "$e1" -ge "$e0"
t_log "before: epoch $e0 hw $hw0; after: epoch $e1 hw $(cl_json_int "$T_STATUS" high_watermark)"
t_pass
