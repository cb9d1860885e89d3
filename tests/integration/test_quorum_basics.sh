#!/usr/bin/env bash
# test_quorum_basics — three controllers elect one leader, the idle leader's no-op records
# advance the high watermark, and the replication view lists every voter (DESIGN.md §2).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

cluster up --controllers 3 --brokers 0 >/dev/null
t_wait "a leader" t_has_leader
t_check "status: want a leader among voters [1,2,3], no observers; got $T_STATUS" \
  test "$(t_eval "$T_STATUS" "d['leader_id'] in (1, 2, 3) and d['voters'] == [1, 2, 3] and d['observers'] == [] and d['leader_epoch'] >= 1 and len(d['cluster_id']) == 22")" == True
leader=$(cl_json_int "$T_STATUS" leader_id)
hw0=$(cl_json_int "$T_STATUS" high_watermark)
t_log "leader c$leader, epoch $(cl_json_int "$T_STATUS" leader_epoch), high watermark $hw0"

# The active controller appends a no-op every metadata.max.idle.interval.ms (500).
hw_grew() { t_status && (($(cl_json_int "$T_STATUS" high_watermark) > hw0)); }
t_wait "the high watermark to pass $hw0 while idle" hw_grew
t_log "high watermark advanced to $(cl_json_int "$T_STATUS" high_watermark)"

t_check "replication view" t_repl
t_check "replication: want 3 voter rows, leader c$leader first, two Followers; got $T_REPL" \
  test "$(t_eval "$T_REPL" "[r['status'] for r in d['replication']] == ['Leader', 'Follower', 'Follower'] and d['replication'][0]['node_id'] == $leader and sorted(r['node_id'] for r in d['replication']) == [1, 2, 3] and d['replication'][0]['lag'] == 0")" == True

# The human-readable forms carry the same facts.
text=$(cl_ctl quorum describe --status)
t_check "text status names leader $leader: $text" grep -Eq "^LeaderId: +$leader$" <<<"$text"
t_check "text status lists the voters: $text" grep -Eq '^CurrentVoters: +\[1,2,3\]$' <<<"$text"
text=$(cl_ctl quorum describe --replication)
t_check "text replication has a header and 3 rows: $text" \
  test "$(grep -c -E '^[0-9]+ +[0-9]+ +[0-9]+ +-?[0-9]+ +-?[0-9]+ +(Leader|Follower)$' <<<"$text")" == 3
t_check "cluster status --json lists 3 alive nodes" \
  test "$(t_eval "$(cluster status --json)" "[n['state'] for n in d['nodes']] == ['alive'] * 3 and d['quorum']['leader_id'] == $leader")" == True

# SIGTERM is a clean shutdown: keeld exits 0 (tools/cluster stop reports it).
follower=$(t_eval "$T_REPL" "d['replication'][1]['node_id']")
out=$(cluster stop "c$follower" 2>&1) || t_fail "stop c$follower: $out"
t_log "$out"
t_pass
