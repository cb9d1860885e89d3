#!/usr/bin/env python3
"""pace.py N RATE PREFIX — writes N lines "PREFIX-i" to stdout at about RATE lines/s (flushed
every 10 ms), so a producer reading stdin keeps producing while a test injects faults."""
import sys
import time

n, rate, prefix = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
start = time.monotonic()
i = 0
while i < n:
    due = min(n, int((time.monotonic() - start) * rate) + 1)
    if due > i:
        sys.stdout.write("".join(f"{prefix}-{j}\n" for j in range(i + 1, due + 1)))
        sys.stdout.flush()
        i = due
    time.sleep(0.01)
