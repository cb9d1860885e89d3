#!/usr/bin/env python3
"""verify_acked.py — checks a produce history against a full read: every
acknowledged record is read back exactly once, at its acknowledged partition
and offset, and each partition is read in strictly increasing offset order.

usage: verify_acked.py PRODUCED.jsonl CONSUMED.jsonl
  PRODUCED: `keelctl produce --json` output (one line per input record:
            value, partition, offset — or value, error)
  CONSUMED: `keelctl consume --json` output (partition, offset, key, value, timestamp)
Values must be unique per run. Prints a summary; exit 1 on any violation."""
import json
import sys


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    produced, consumed = load(sys.argv[1]), load(sys.argv[2])
    acked = {p["value"]: (p["partition"], p["offset"]) for p in produced if "error" not in p}
    failed = sum(1 for p in produced if "error" in p)
    problems = []
    seen, last = {}, {}
    for r in consumed:
        part, off, val = r["partition"], r["offset"], r["value"]
        if part in last and off <= last[part]:
            problems.append(f"partition {part}: offset {off} read after {last[part]}")
        last[part] = off
        if val in seen:
            problems.append(f"value {val!r} read twice: at {seen[val]} and {(part, off)}")
        seen[val] = (part, off)
    lost = [v for v in acked if v not in seen]
    moved = [v for v in acked if v in seen and seen[v] != acked[v]]
    for v in lost[:10]:
        problems.append(f"acknowledged value {v!r} at {acked[v]} was never read")
    for v in moved[:10]:
        problems.append(f"value {v!r} acknowledged at {acked[v]} but read at {seen[v]}")
    print(f"produced {len(produced)} (acked {len(acked)}, failed {failed}), read {len(consumed)}, "
          f"lost {len(lost)}, misplaced {len(moved)}, other problems {len(problems) - min(len(lost), 10) - min(len(moved), 10)}")
    for p in problems[:20]:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
