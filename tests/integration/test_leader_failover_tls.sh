#!/usr/bin/env bash
# test_leader_failover_tls — the failover scenario of test_leader_failover on a cluster
# whose every listener, and every voter-to-voter connection, is mutual TLS.
T_NAME=test_leader_failover_tls T_TLS=1 exec bash "$(dirname "$0")/test_leader_failover.sh"
