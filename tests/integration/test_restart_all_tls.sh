#!/usr/bin/env bash
# test_restart_all_tls — test_restart_all on a cluster whose every listener, and every
# voter-to-voter connection, is mutual TLS.
T_NAME=test_restart_all_tls T_TLS=1 exec bash "$(dirname "$0")/test_restart_all.sh"
