#!/usr/bin/env bash
# test_dataplane_tls — the data-plane basics of test_dataplane_basics on a cluster whose every
# listener is mutual TLS: brokers to controllers, followers to leaders, and keelctl to brokers.
T_NAME=test_dataplane_tls T_TLS=1 exec bash "$(dirname "$0")/test_dataplane_basics.sh"
