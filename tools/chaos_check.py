#!/usr/bin/env python3
"""chaos_check.py — checks a Keel chaos history for lost, duplicated, misplaced and misread records (DESIGN.md §8).

usage: chaos_check.py HISTORY [--out DIR] [--no-plots]   (normally run as `tools/chaos check`)
Prints a one-screen summary and writes DIR/results.json (DIR defaults to HISTORY's directory)
and, when gnuplot is installed, DIR/latency.png and DIR/throughput.png.
Exit status: 0 valid, 1 invalid, 2 usage error or malformed history (the message names the line).

HISTORY FORMAT: JSON lines, one object per event, blank lines ignored, unknown keys ignored.
Each process's events appear in the order they happened; events of different processes may
interleave in any order ("time" places them on the plots).

Operation events:
  "process"   string. Runs its operations in order; a consumer that seeks or restarts takes a
              new process name (its position is checked per process).
  "type"      "invoke": the operation starts. Each invoke is completed by one later event of
              the same process: "ok" happened, "fail" definitely not applied, "info" outcome
              unknown. An invoke never completed counts as "info" (pending).
  "f"         "send" | "poll" | "final-read"
  "time"      number >= 0, milliseconds since the run started; a completion's >= its invoke's
  "topic"     string
  "partition" integer >= 0
  send events also carry, on the invoke and on its completion:
    "key"     string or integer
    "value"   integer, unique within (topic, partition) over the whole history (a run-wide
              counter gives the issue's unique integers per key). Completions are matched to
              invokes by (process, topic, partition, value), so a producer may pipeline.
    ok only: "offset", integer >= 0, where the broker acknowledged the record.
  poll and final-read completions with "ok" also carry (matched by process, f, topic, partition;
  one outstanding read of a partition per process):
    "from"    integer >= 0, the fetch position the read started at
    "to"      integer >= from, the position after the read (the next offset to fetch)
    "records" [[offset, value], ...] in the order returned, each from <= offset < to
  final-read: after the faults are healed, one process reads the partition from its first
  offset to its end, in one event or in several consecutive ones.

Nemesis events (fault windows, drawn on the plots and counted):
  {"type": "nemesis", "f": "start" | "stop", "fault": string, "time": number, ...}
  A stop closes the earliest open window of the same fault; other keys (e.g. "target") are kept.

ANOMALIES (each counted, with up to MAX_EXAMPLES examples). An *observation* places a value at
an offset of a partition: an ok send's acknowledgement, or a record returned by an ok read.
  lost-write          an ok send whose value a final read of its partition, starting at or
                      before its offset, does not contain; or that no read ever returned though
                      an ok read covered its offset (from <= offset < to)
  duplicate           one value observed at two offsets of its partition
  inconsistent-offset one offset observed with two different values
  nonmonotonic-send   an ok send acknowledged at a lower offset than an earlier-invoked ok send
                      of the same process to the same partition
  nonmonotonic-poll   a read returning offsets out of increasing order, or starting before the
                      position the same process's previous read of the partition reached
  poll-skip           a read passing over offsets that some read returned: within its from..to,
                      or between the previous read's "to" and its "from"
  aborted-read        a read returning a value whose send failed (definitely not applied)
  unseen              an ok send never read, with no read covering its offset and no final read
                      of its partition (the history cannot show it durable)
  phantom-read        a read returning a value never sent to that partition
The history is valid when every count is zero. Sends with outcome info may or may not appear.
"""
import argparse
import bisect
import collections
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile

MAX_EXAMPLES = 10          # examples kept per anomaly
MAX_LINE_BYTES = 64 << 20  # one event (a big final read) fits; anything longer is refused
MAX_SKIPPED_LISTED = 10    # skipped offsets listed in one poll-skip example
GNUPLOT_TIMEOUT_S = 60
LOG_FLOOR_MS = 0.1         # latencies drawn on a log axis are floored here (0 ms has no log)
SUMMARY_WIDTH = 110
ANOMALIES = ("lost-write", "duplicate", "inconsistent-offset", "nonmonotonic-send",
             "nonmonotonic-poll", "poll-skip", "aborted-read", "unseen", "phantom-read")
OUTCOMES = ("ok", "fail", "info")
FUNCTIONS = ("send", "poll", "final-read")
PERCENTILES = (("p50", 0.50), ("p99", 0.99), ("p99.9", 0.999))
FAULT_COLOURS = ("#f4a582", "#92c5de", "#b8e186", "#fdb863", "#c2a5cf", "#bababa")


class Malformed(Exception):
    def __init__(self, line, msg):
        super().__init__(msg)
        self.line = line


class Op:
    """One operation: its invoke and, once completed, its outcome."""
    __slots__ = ("process", "f", "topic", "partition", "key", "value", "line", "start",
                 "type", "end", "end_line", "offset", "frm", "to", "records")

    def __init__(self, process, f, topic, partition, key, value, line, start):
        self.process, self.f, self.topic, self.partition = process, f, topic, partition
        self.key, self.value, self.line, self.start = key, value, line, start
        self.type, self.end, self.end_line = "info", None, None
        self.offset = self.frm = self.to = None
        self.records = ()

    @property
    def tp(self):
        return (self.topic, self.partition)


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def is_nonneg_int(v):
    return is_int(v) and v >= 0


def is_time(v):
    return (is_int(v) or isinstance(v, float)) and math.isfinite(v) and v >= 0


def field(ev, name, ok, what, line):
    if name not in ev:
        raise Malformed(line, f'missing "{name}"')
    if not ok(ev[name]):
        raise Malformed(line, f'"{name}" must be {what}, got {json.dumps(ev[name])[:60]}')
    return ev[name]


def reject_constant(name):
    raise ValueError(f"{name} is not a number")


DECODER = json.JSONDecoder(parse_constant=reject_constant)  # one decoder: building one per line is slow


def read_events(fh):
    """Yields (line number, event object), bounding each line's length."""
    line = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        line += 1
        if len(raw) > MAX_LINE_BYTES:
            raise Malformed(line, f"line longer than {MAX_LINE_BYTES} bytes")
        if not raw.strip():
            continue
        try:
            ev = DECODER.decode(raw.decode("utf-8"))
        except (ValueError, RecursionError) as e:
            raise Malformed(line, f"not JSON: {e}") from None
        if not isinstance(ev, dict):
            raise Malformed(line, "not a JSON object")
        yield line, ev


def parse_read(op, ev, line):
    op.frm = field(ev, "from", is_nonneg_int, "an integer >= 0", line)
    op.to = field(ev, "to", is_nonneg_int, "an integer >= 0", line)
    if op.to < op.frm:
        raise Malformed(line, f'"to" {op.to} is below "from" {op.frm}')
    recs = field(ev, "records", lambda v: isinstance(v, list), "a list of [offset, value]", line)
    out = []
    for i, r in enumerate(recs):
        if not (isinstance(r, list) and len(r) == 2 and is_nonneg_int(r[0]) and is_int(r[1])):
            raise Malformed(line, f"records[{i}] must be [offset >= 0, integer value], got "
                                  f"{json.dumps(r)[:60]}")
        if not op.frm <= r[0] < op.to:
            raise Malformed(line, f"records[{i}] offset {r[0]} outside from..to [{op.frm}, {op.to})")
        out.append((r[0], r[1]))
    op.records = out


def window(start_event, stop):
    """A fault window from its nemesis start event: the fault, its extra keys, start and stop."""
    w = {k: v for k, v in start_event.items() if k not in ("type", "f", "time")}
    return dict(w, start=start_event["time"], stop=stop)


def parse(path):
    """Returns (ops in completion order, fault windows, end time); raises Malformed."""
    ops, windows = [], []
    pending, sent = {}, {}
    open_windows = collections.defaultdict(collections.deque)
    end_time = 0
    with open(path, "rb") as fh:
        for line, ev in read_events(fh):
            typ = field(ev, "type", lambda v: v in ("invoke", "nemesis") + OUTCOMES,
                        "invoke, ok, fail, info or nemesis", line)
            t = field(ev, "time", is_time, "a number >= 0 (ms)", line)
            end_time = max(end_time, t)
            if typ == "nemesis":
                f = field(ev, "f", lambda v: v in ("start", "stop"), "start or stop", line)
                fault = field(ev, "fault", lambda v: isinstance(v, str) and v, "a fault name", line)
                if f == "start":
                    open_windows[fault].append(ev)
                elif not open_windows[fault]:
                    raise Malformed(line, f'nemesis stop of "{fault}" without an open start')
                else:
                    windows.append(window(open_windows[fault].popleft(), t))
                continue
            process = field(ev, "process", lambda v: isinstance(v, str), "a string", line)
            f = field(ev, "f", lambda v: v in FUNCTIONS, "send, poll or final-read", line)
            topic = field(ev, "topic", lambda v: isinstance(v, str), "a string", line)
            part = field(ev, "partition", is_nonneg_int, "an integer >= 0", line)
            key = value = None
            match = (process, f, topic, part)
            if f == "send":
                key = field(ev, "key", lambda v: isinstance(v, str) or is_int(v),
                            "a string or integer", line)
                value = field(ev, "value", is_int, "an integer", line)
                match += (value,)
            what = f"{f} of value {value}" if f == "send" else f
            if typ == "invoke":
                if match in pending:
                    raise Malformed(line, f"{process} invokes {what} on {topic}/{part} again while "
                                          f"the invoke at line {pending[match].line} is pending")
                op = Op(process, f, topic, part, key, value, line, t)
                if f == "send":
                    prev = sent.setdefault((topic, part, value), op)
                    if prev is not op:
                        raise Malformed(line, f"value {value} was already sent to {topic}/{part} at "
                                              f"line {prev.line}; values must be unique per partition")
                pending[match] = op
                continue
            op = pending.pop(match, None)
            if op is None:
                raise Malformed(line, f'"{typ}" of {what} on {topic}/{part} by {process} '
                                      "without a pending invoke")
            if t < op.start:
                raise Malformed(line, f"completes at {t} ms, before its invoke at {op.start} ms "
                                      f"(line {op.line})")
            if key != op.key:
                raise Malformed(line, f"key {json.dumps(key)} differs from the invoke's "
                                      f"{json.dumps(op.key)} (line {op.line})")
            op.type, op.end, op.end_line = typ, t, line
            if typ == "ok" and f == "send":
                op.offset = field(ev, "offset", is_nonneg_int, "an integer >= 0", line)
            elif typ == "ok":
                parse_read(op, ev, line)
            ops.append(op)
    ops.extend(pending.values())  # never completed: outcome unknown
    if not ops:
        raise Malformed(None, "no operations in the history")
    for queue in open_windows.values():
        windows.extend(dict(window(ev, end_time), open=True) for ev in queue)
    windows.sort(key=lambda w: w["start"])
    return ops, windows, end_time


def merged(intervals):
    """Sorted disjoint [from, to) intervals covering the same offsets."""
    out = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1]:
            out[-1][1] = max(out[-1][1], hi)
        else:
            out.append([lo, hi])
    return out


def covers(intervals, offset):
    i = bisect.bisect_right(intervals, [offset, math.inf]) - 1
    return i >= 0 and intervals[i][0] <= offset < intervals[i][1]


def between(sorted_offsets, lo, hi):
    return sorted_offsets[bisect.bisect_left(sorted_offsets, lo):bisect.bisect_left(sorted_offsets, hi)]


def tp_name(tp):
    return f"{tp[0]}/{tp[1]}"


class Index:
    """What the history observed, indexed for the checks (an observation places a value at an
    offset: an ok send's acknowledgement or a record an ok read returned)."""

    def __init__(self, ops):
        self.sends = {(op.topic, op.partition, op.value): op for op in ops if op.f == "send"}
        self.ok_sends = [op for op in ops if op.f == "send" and op.type == "ok"]
        self.reads = [op for op in ops if op.f != "send" and op.type == "ok"]  # completion order
        self.at_offset = collections.defaultdict(dict)  # (topic, partition, offset) -> {value: where}
        self.at_value = collections.defaultdict(dict)   # (topic, partition, value) -> {offset: where}
        self.read_values = collections.defaultdict(dict)  # (topic, partition) -> {value: where}
        self.finals = collections.defaultdict(dict)  # (topic, partition) -> {process: [from, values]}
        read_offsets = collections.defaultdict(set)
        spans = collections.defaultdict(list)
        for op in self.ok_sends:
            self.observe(op.tp, op.offset, op.value, f"ack to {op.process} at line {op.end_line}")
        for op in self.reads:
            where = f"{op.f} by {op.process} at line {op.end_line}"
            for off, val in op.records:
                self.observe(op.tp, off, val, where)
                self.read_values[op.tp].setdefault(val, where)
                read_offsets[op.tp].add(off)
            spans[op.tp].append((op.frm, op.to))
            if op.f == "final-read":
                fin = self.finals[op.tp].setdefault(op.process, [op.frm, set()])
                fin[0] = min(fin[0], op.frm)
                fin[1].update(val for _, val in op.records)
        self.spans = {tp: merged(iv) for tp, iv in spans.items()}  # offsets some ok read covered
        self.existing = {tp: sorted(offs) for tp, offs in read_offsets.items()}  # offsets read

    def observe(self, tp, off, val, where):
        self.at_offset[tp + (off,)].setdefault(val, where)
        self.at_value[tp + (val,)].setdefault(off, where)


def check_placement(ix, found):
    """inconsistent-offset and duplicate: each offset holds one value, each value one offset."""
    for (topic, part, off), vals in sorted(ix.at_offset.items()):
        if len(vals) > 1:
            seen = ", ".join(f"{v} ({w})" for v, w in vals.items())
            found["inconsistent-offset"].append({
                "topic": topic, "partition": part, "offset": off,
                "values": [{"value": v, "seen": w} for v, w in vals.items()],
                "what": f"{topic}/{part} offset {off} holds {len(vals)} values: {seen}"})
    for (topic, part, val), offs in sorted(ix.at_value.items()):
        if len(offs) > 1:
            seen = ", ".join(f"{o} ({w})" for o, w in offs.items())
            found["duplicate"].append({
                "topic": topic, "partition": part, "value": val,
                "offsets": [{"offset": o, "seen": w} for o, w in offs.items()],
                "what": f"{topic}/{part} value {val} at offsets {seen}"})


def check_read_origins(ix, found):
    """phantom-read and aborted-read: every value read was sent there, by a send not failed."""
    for tp, vals in sorted(ix.read_values.items()):
        for val, where in vals.items():
            op = ix.sends.get(tp + (val,))
            example = {"topic": tp[0], "partition": tp[1], "value": val, "read": where}
            if op is None:
                found["phantom-read"].append(dict(example,
                    what=f"{tp_name(tp)} value {val}, never sent there, returned by {where}"))
            elif op.type == "fail":
                found["aborted-read"].append(dict(example, send_line=op.end_line,
                    what=f"{tp_name(tp)} value {val} returned by {where}, though its send by "
                         f"{op.process} failed (line {op.end_line})"))


def check_durability(ix, found):
    """lost-write and unseen: every ok send is read, and is in the final read."""
    for op in ix.ok_sends:
        kind, why = "lost-write", None
        for proc, (first, vals) in ix.finals.get(op.tp, {}).items():
            if first <= op.offset and op.value not in vals:
                why = f"the final read by {proc} from offset {first} does not contain it"
                break
        if why is None and op.value not in ix.read_values.get(op.tp, {}):
            if covers(ix.spans.get(op.tp, []), op.offset):
                why = f"reads covered offset {op.offset} and never returned it"
            else:
                kind, why = "unseen", "no read covered its offset and no final read of the partition"
        if why is not None:
            found[kind].append({
                "topic": op.topic, "partition": op.partition, "key": op.key, "value": op.value,
                "offset": op.offset, "process": op.process, "line": op.end_line,
                "what": f"{tp_name(op.tp)} value {op.value} acked at offset {op.offset} to "
                        f"{op.process} (line {op.end_line}): {why}"})


def check_send_order(ix, found):
    """nonmonotonic-send: a process's ok sends to a partition get increasing offsets in invoke order."""
    highest = {}  # (process, topic, partition) -> the ok send with the highest offset so far
    for op in sorted(ix.ok_sends, key=lambda o: o.line):
        k = (op.process,) + op.tp
        top = highest.get(k)
        if top is not None and op.offset < top.offset:
            found["nonmonotonic-send"].append({
                "process": op.process, "topic": op.topic, "partition": op.partition,
                "earlier": {"value": top.value, "offset": top.offset, "line": top.line},
                "later": {"value": op.value, "offset": op.offset, "line": op.line},
                "what": f"{op.process} on {tp_name(op.tp)}: value {op.value} (line {op.line}) acked "
                        f"at offset {op.offset}, below earlier value {top.value} at {top.offset}"})
        elif top is None or op.offset > top.offset:
            highest[k] = op


def check_read_order(ix, found):
    """nonmonotonic-poll and poll-skip: each process reads a partition forwards, missing nothing."""
    last = {}  # (process, f, topic, partition) -> previous ok read
    for op in ix.reads:
        k = (op.process, op.f) + op.tp
        base = {"process": op.process, "f": op.f, "topic": op.topic, "partition": op.partition,
                "line": op.end_line}
        who = f"{op.f} by {op.process} of {tp_name(op.tp)} (line {op.end_line})"
        for (a, _), (b, _) in zip(op.records, op.records[1:]):
            if b <= a:
                found["nonmonotonic-poll"].append(dict(base, after=a, offset=b,
                    what=f"{who} returned offset {b} after {a}"))
                break
        spans = [(op.frm, op.to, f"read [{op.frm}, {op.to})")]
        prev = last.get(k)
        if prev is not None and op.frm < prev.to:
            found["nonmonotonic-poll"].append(dict(base, after=prev.to, offset=op.frm,
                what=f"{who} started at {op.frm}, though line {prev.end_line} had reached {prev.to}"))
        elif prev is not None and op.frm > prev.to:
            spans.insert(0, (prev.to, op.frm, f"jumped from {prev.to} (line {prev.end_line}) to {op.frm}"))
        returned = {off for off, _ in op.records}
        for lo, hi, how in spans:
            missed = [o for o in between(ix.existing.get(op.tp, []), lo, hi) if o not in returned]
            if missed:
                found["poll-skip"].append(dict(base, skipped=missed[:MAX_SKIPPED_LISTED],
                    skipped_count=len(missed),
                    what=f"{who} {how}, passing over {len(missed)} offset(s) that exist, "
                         f"first {missed[0]}"))
        last[k] = op


def analyse(ops):
    """Returns {anomaly: [example, ...]} with every instance (the caller keeps MAX_EXAMPLES)."""
    ix = Index(ops)
    found = {name: [] for name in ANOMALIES}
    for check in (check_placement, check_read_origins, check_durability, check_send_order,
                  check_read_order):
        check(ix, found)
    return found


def percentile(sorted_values, q):
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def operation_counts(ops):
    counts = {f: {"invoked": 0, "ok": 0, "fail": 0, "info": 0, "pending": 0} for f in FUNCTIONS}
    for op in ops:
        c = counts[op.f]
        c["invoked"] += 1
        c[op.type] += 1
        c["pending"] += op.end is None
    counts["records_read"] = sum(len(op.records) for op in ops)
    return counts


def availability(sends):
    """Share of sends ok per second (by invoke) and the longest stretch without an ok send."""
    if not sends:
        return None
    per_second = collections.defaultdict(lambda: [0, 0])
    for op in sends:
        bucket = per_second[int(op.start // 1000)]
        bucket[0] += 1
        bucket[1] += op.type == "ok"
    series = []
    for s in range(min(per_second), max(per_second) + 1):
        n, ok = per_second.get(s, (0, 0))
        series.append({"second": s, "sends": n, "ok": ok, "share": round(ok / n, 4) if n else None})
    rated = [p for p in series if p["sends"]]
    worst = min(rated, key=lambda p: p["share"])
    begin = min(op.start for op in sends)
    finish = max(op.end if op.end is not None else op.start for op in sends)
    gap, prev = {"ms": 0, "from": begin, "to": begin}, begin
    for t in sorted(op.end for op in sends if op.type == "ok") + [finish]:
        if t - prev > gap["ms"]:
            gap = {"ms": t - prev, "from": prev, "to": t}
        prev = max(prev, t)
    ok = sum(op.type == "ok" for op in sends)
    return {"sends": len(sends), "ok": ok, "share": round(ok / len(sends), 4),
            "worst_second": worst, "longest_gap_ms": gap, "per_second": series}


def latency(sends):
    lat = sorted(op.end - op.start for op in sends if op.type == "ok")
    if not lat:
        return {"count": 0}
    out = {"count": len(lat)}
    out.update((label, percentile(lat, q)) for label, q in PERCENTILES)
    out["max"] = lat[-1]
    return out


def gp_str(s):
    return "'" + str(s).replace("'", "''") + "'"


def plot(sends, windows, outdir):
    """Draws latency.png and throughput.png with gnuplot; returns what happened."""
    if shutil.which("gnuplot") is None:
        return {"skipped": "gnuplot is not installed (Debian package gnuplot-nox)"}
    done = [op for op in sends if op.end is not None]
    if not done:
        return {"skipped": "no completed sends to draw"}
    colours = {}
    for w in windows:
        colours.setdefault(w["fault"], FAULT_COLOURS[len(colours) % len(FAULT_COLOURS)])
    shading = "".join(
        f"set object rect from {w['start'] / 1000}, graph 0 to {w['stop'] / 1000}, graph 1 behind "
        f"fillcolor rgb '{colours[w['fault']]}' fillstyle solid 0.4 noborder\n" for w in windows)
    legend = "".join(f", keyentry with boxes fillcolor rgb '{c}' fillstyle solid 0.4 "
                     f"title {gp_str('fault: ' + fault)}" for fault, c in colours.items())
    files = [os.path.join(outdir, "latency.png"), os.path.join(outdir, "throughput.png")]
    with tempfile.TemporaryDirectory(prefix="chaos-plot-") as tmp:
        series = []
        for outcome, style in (("ok", "points pointtype 7 pointsize 0.3 linecolor rgb '#2166ac'"),
                               ("fail", "points pointtype 2 pointsize 0.8 linecolor rgb '#b2182b'"),
                               ("info", "points pointtype 6 pointsize 0.6 linecolor rgb '#e08214'")):
            rows = [f"{op.start / 1000} {max(op.end - op.start, LOG_FLOOR_MS)}\n"
                    for op in done if op.type == outcome]
            if rows:
                path = os.path.join(tmp, f"latency-{outcome}.dat")
                with open(path, "w") as fh:
                    fh.writelines(rows)
                series.append(f"{gp_str(path)} using 1:2 with {style} title 'send {outcome}'")
        per_second = collections.defaultdict(lambda: [0, 0, 0])
        for op in done:
            per_second[int(op.end // 1000)][OUTCOMES.index(op.type)] += 1
        tput = os.path.join(tmp, "throughput.dat")
        with open(tput, "w") as fh:
            last = max(per_second) + 1  # a closing row, so that steps draw the last second too
            for s in range(min(per_second), last + 1):
                fh.write(f"{s} {' '.join(map(str, per_second.get(s, (0, 0, 0))))}\n")
        script = os.path.join(tmp, "plot.gp")
        with open(script, "w") as fh:
            fh.write(f"""\
if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {{ set terminal pngcairo size 1200,500 noenhanced }} \
else {{ set terminal png size 1200,500 }}
set grid
set key outside right top
set xlabel 'time since start (s)'
set xrange [0:*]
{shading}
set output {gp_str(files[0])}
set title 'send latency, invoke to completion (shaded: fault windows)'
set ylabel 'latency (ms, log scale)'
set logscale y
plot {', '.join(series)}{legend}
unset logscale y
set output {gp_str(files[1])}
set title 'sends completed per second (shaded: fault windows)'
set ylabel 'sends / s'
set yrange [0:*]
set offsets 0, 0, graph 0.05, 0
plot {gp_str(tput)} using 1:2 with steps linewidth 2 linecolor rgb '#2166ac' title 'ok', \
     '' using 1:3 with steps linecolor rgb '#b2182b' title 'fail', \
     '' using 1:4 with steps linecolor rgb '#e08214' title 'info'{legend}
""")
        try:
            run = subprocess.run(["gnuplot", script], capture_output=True, text=True,
                                 timeout=GNUPLOT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return {"error": f"gnuplot did not finish within {GNUPLOT_TIMEOUT_S} s"}
    if run.returncode != 0:
        return {"error": "gnuplot failed: " + " | ".join(run.stderr.strip().splitlines()[-3:])}
    return {"files": files}


def fmt_s(ms):
    return f"{ms / 1000:.1f}"


def summary(res, outdir):
    ops, an = res["operations"], res["anomalies"]
    bad = sum(a["count"] for a in an.values())
    send = ops["send"]
    pending = f" ({send['pending']} never completed)" if send["pending"] else ""
    lines = [f"chaos check: {res['history']}: " + ("VALID" if res["valid"] else f"INVALID, anomalies: {bad}"),
             f"operations: sends {send['invoked']} (ok {send['ok']}, fail {send['fail']}, info "
             f"{send['info']}{pending}), polls {ops['poll']['ok']} ok of {ops['poll']['invoked']}, "
             f"final reads {ops['final-read']['ok']}, records read {ops['records_read']}",
             "faults: " + (", ".join(f"{k} x{n}" for k, n in res["faults"].items()) or "none")]
    av, lat = res["availability"], res["latency_ms"]
    if av:
        gap, worst = av["longest_gap_ms"], av["worst_second"]
        lines.append(f"availability: {av['share']:.1%} of sends ok; worst second t={worst['second']} s "
                     f"({worst['share']:.1%}); longest gap without an ok send {fmt_s(gap['ms'])} s "
                     f"(t={fmt_s(gap['from'])}..{fmt_s(gap['to'])} s)")
    if lat["count"]:
        lines.append("latency of ok sends (ms): " +
                     "  ".join(f"{k} {lat[k]:.4g}" for k, _ in PERCENTILES + (("max", 0),)))
    lines.append("anomalies (count, first example; all examples in results.json):")
    for name in ANOMALIES:
        a = an[name]
        lines.append(f"  {name:<20} {a['count']:>6}")
        if a["examples"]:
            eg = "      e.g. " + a["examples"][0]["what"]
            lines.append(eg if len(eg) <= SUMMARY_WIDTH else eg[:SUMMARY_WIDTH - 3] + "...")
    lines.append(f"results: {os.path.join(outdir, 'results.json')}")
    p = res["plots"]
    lines.append("plots: " + (" ".join(p["files"]) if "files" in p else
                              f"skipped, {p['skipped']}" if "skipped" in p else p["error"]))
    return "\n".join(lines)


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| head` ends the summary quietly
    ap = argparse.ArgumentParser(prog="chaos check", description="Checks a chaos history "
                                 "(format: see the top of tools/chaos_check.py).")
    ap.add_argument("history")
    ap.add_argument("--out", help="where results.json and the PNGs go (default: HISTORY's directory)")
    ap.add_argument("--no-plots", action="store_true", help="do not draw the PNGs")
    args = ap.parse_args()
    try:
        ops, windows, end_time = parse(args.history)
    except OSError as e:
        print(f"chaos check: {e}", file=sys.stderr)
        return 2
    except Malformed as e:
        where = f"{args.history}:{e.line}" if e.line else args.history
        print(f"chaos check: {where}: malformed history: {e}", file=sys.stderr)
        return 2
    outdir = args.out or os.path.dirname(os.path.abspath(args.history))
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as e:
        print(f"chaos check: cannot create {outdir}: {e}", file=sys.stderr)
        return 2
    found = analyse(ops)
    sends = [op for op in ops if op.f == "send"]
    res = {
        "history": args.history,
        "valid": not any(found.values()),
        "anomalies": {k: {"count": len(v), "examples": v[:MAX_EXAMPLES]} for k, v in found.items()},
        "operations": operation_counts(ops),
        "availability": availability(sends),
        "latency_ms": latency(sends),
        "faults": dict(collections.Counter(w["fault"] for w in windows)),
        "fault_windows": windows,
        "end_ms": end_time,
        "plots": {"skipped": "--no-plots"} if args.no_plots else plot(sends, windows, outdir),
    }
    with open(os.path.join(outdir, "results.json"), "w") as fh:
        json.dump(res, fh, indent=1)
        fh.write("\n")
    print(summary(res, outdir))
    return 0 if res["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
