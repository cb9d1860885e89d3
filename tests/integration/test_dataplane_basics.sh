#!/usr/bin/env bash
# test_dataplane_basics — brokers register and are unfenced; a topic with 6 partitions and
# replication factor 3 is created, described, written with acks=all, read back in full,
# and its three replicas hold the same records (DESIGN.md §3, §4, §7).
# shellcheck source=tests/integration/lib.sh disable=SC2317 # helpers run through t_wait/t_check
source "$(dirname "$0")/lib.sh"

cluster up --controllers 3 --brokers 3 --racks r1,r2,r3 "${T_UP_FLAGS[@]}" >/dev/null

brokers=$(t_sctl brokers list --json)
t_check "brokers list: want 101..103 unfenced with racks r1..r3 and an endpoint each; got $brokers" \
  test "$(t_eval "$brokers" "sorted((b['node_id'], b['rack'], b['fenced']) for b in d) == [(101, 'r1', False), (102, 'r2', False), (103, 'r3', False)] and all(len(b['endpoints']) == 1 and b['broker_epoch'] >= 0 for b in d)")" == True

t_sctl topics create --topic orders --partitions 6 --replication-factor 3 --config min.insync.replicas=2 >/dev/null
out=$(t_sctl topics create --topic orders --partitions 6 --replication-factor 3 2>&1) &&
  t_fail "creating orders twice succeeded: $out"
t_log "second create refused: $out"
t_wait "every partition of orders led with an ISR of 3" t_all_isr orders 3
t_check "describe --json: want 6 partitions of 3 distinct replicas, leader first in ISR, min.insync.replicas=2; got $T_TOPIC" \
  test "$(t_eval "$T_TOPIC" "len(d) == 1 and d[0]['topic'] == 'orders' and len(d[0]['topic_id']) > 0 and d[0]['configs'].get('min.insync.replicas') == '2' and [p['partition'] for p in d[0]['partitions']] == list(range(6)) and all(len(set(p['replicas'])) == 3 and p['leader'] in p['replicas'] and p['leader_epoch'] >= 0 for p in d[0]['partitions'])")" == True
t_check "leaders are spread over the three brokers: $T_TOPIC" \
  test "$(t_eval "$T_TOPIC" "len({p['leader'] for p in d[0]['partitions']})")" == 3
text=$(t_sctl topics describe --topic orders)
t_check "text describe has the Kafka layout: $text" grep -Eq $'^Topic: orders\tTopicId: .*\tPartitionCount: 6\tReplicationFactor: 3' <<<"$text"
t_check "text describe has 6 partition rows: $text" test "$(grep -c -E 'Partition: [0-5]'$'\t''Leader: 10[1-3]' <<<"$text")" == 6
t_check "topics list names orders" grep -qx orders <(t_sctl topics list)

t_values 2000 v | t_sctl produce --topic orders --acks all --json >"$T_TMP/produced.jsonl"
t_check "all 2000 records acknowledged" test "$(grep -vc '"error"' "$T_TMP/produced.jsonl")" == 2000
t_sctl consume --topic orders --from-beginning --max-messages 2000 --timeout-ms 10000 --json >"$T_TMP/consumed.jsonl"
t_verify "$T_TMP/produced.jsonl" "$T_TMP/consumed.jsonl"

# Keys pick partitions: the same key always lands in the same partition.
printf 'k1:a\nk1:b\nk2:c\nk1:d\n' | t_sctl produce --topic orders --key-separator : --json >"$T_TMP/keyed.jsonl"
t_check "records with key k1 share a partition: $(cat "$T_TMP/keyed.jsonl")" \
  test "$(python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print(len({r[i]["partition"] for i in (0,1,3)}))' "$T_TMP/keyed.jsonl")" == 1

# Followers replicate everything: the three copies agree record for record.
t_wait "the high watermark of every partition to cover the log" t_all_isr orders 3
t_replicas_agree --topic orders

# Preferred leader election is accepted (leaders are preferred already: nothing moves).
t_check "leader-election --preferred" t_sctl leader-election --preferred --topic orders

t_sctl topics delete --topic orders >/dev/null
gone() { ! t_sctl topics list | grep -qx orders; }
t_wait "orders to disappear from topics list" gone
t_pass
