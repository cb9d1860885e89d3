#!/usr/bin/env python3
"""chaos_run.py — runs a real Keel cluster under injected faults, records a history and checks it (DESIGN.md §8, issue 4).

usage (normally as `tools/chaos run`):
  chaos_run.py --duration SECS [--faults kill,pause,partition,restart-all,slow] [--seed N] [--out DIR]
               [--inject-bug NAME] [--no-netns] [--keep-data] [workload flags, see --help]

What a run does, in order:
  1. Isolation. As root with `unshare`, the runner re-executes itself in a new network namespace
     (`unshare --net`), brings `lo` up and gives every node its own 127.0.0.N: controllers
     127.0.0.11.., brokers 127.0.0.21..; each node's outgoing connections come from its address
     (socket.source.address), so nftables rules can cut node pairs while clients, on 127.0.0.1,
     still reach everyone. The namespace ends with the last process of the run; children die with
     the runner (PR_SET_PDEATHSIG) and are reaped on every exit path, Ctrl-C included. Without
     root or namespaces it says so and runs only the faults that need neither (kill, pause,
     restart-all).
  2. A cluster of 3 controllers and 3 brokers (real keeld processes; keeld-bugs with
     debug.inject.bug=NAME under --inject-bug), topics with replication factor 3 and
     min.insync.replicas=2.
  3. A workload of keel-chaos-worker processes (tools/chaos_worker.c, on the client library):
     producers (acks=all, idempotent, unique integer values) and consumers, each writing its
     invokes and completions to a history file.
  4. A seeded fault schedule for --duration seconds, one fault at a time with quiet gaps between,
     every requested fault once (in a seeded order) before any is repeated:
       kill        SIGKILL a target, restart it after 2-6 s
       pause       SIGSTOP a target for broker.session.timeout.ms + 1-3 s, then SIGCONT
       partition   nftables DROP between node addresses for 5-10 s; modes: isolate-node (a
                   target, as below, from every other node), isolate-controller (the active
                   one), isolate-leader (a partition leader from the other brokers only: it still
                   reaches the controllers), majorities-ring, halves. Clients reach every node.
       restart-all SIGKILL every node, start them all again after 1-3 s
       slow        tc netem delay + loss on lo for 5-10 s (this kernel may lack netem: then a tbf
                   rate limit on lo plus 2% random loss by nftables, said in the event)
     Targets of kill, pause and isolate-node: a random node, the active controller, a partition's
     leader, or a minority (2 of the 6 nodes; isolate-node takes the first). --targets and
     --partition-modes narrow the choice to replay one scenario. The seed fixes the schedule (faults, modes, targets kinds, hold
     times); which node is "the leader" is whatever the cluster says at that moment.
  5. Heal everything, wait for the cluster to be whole (quorum leader, all brokers unfenced,
     every partition led with an ISR of >= min.insync.replicas), keep the workload running
     RECOVERY_S more seconds and require acknowledged sends in that window (progress), stop the
     workload, read every partition from its start to its end (final read).
  6. Merge the histories into DIR/history.jsonl and run the checker (tools/chaos_check.py):
     DIR/results.json, DIR/latency.png, DIR/throughput.png, and a one-screen summary.
A run is valid when the checker finds no anomaly, no node exited by itself, the workload made
progress after the faults healed and the final read completed. Exit status: 0 valid, 1 invalid,
2 usage error or a run that could not be carried out (the message says why; logs stay in DIR).
"""
import argparse
import ctypes
import datetime
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ALL_FAULTS = ("kill", "pause", "partition", "restart-all", "slow")
NETNS_FAULTS = ("partition", "slow")  # need a private namespace (rules on its own lo)
BUGS = ("ack-on-append", "truncate-to-hw")
PARTITION_MODES = ("isolate-node", "isolate-controller", "isolate-leader", "majorities-ring", "halves")
TARGETS = ("random-node", "active-controller", "partition-leader", "minority")
ENV_IN_NETNS = "KEEL_CHAOS_IN_NETNS"

N_CONTROLLERS = 3
N_BROKERS = 3
BROKER_ID_BASE = 100
NODE_ADDR = "127.0.0.{}"        # controllers .11, .12, ..., brokers .21, .22, ...
CONTROLLER_HOST_BASE = 10
BROKER_HOST_BASE = 20
CLIENT_ADDR = "127.0.0.1"
NS_CONTROLLER_PORT = 9093       # fixed ports are safe inside the run's own namespace
NS_BROKER_PORT = 9092
SESSION_TIMEOUT_MS = 6000       # broker.session.timeout.ms for the run (pause holds past it)
MIN_INSYNC = 2
REPLICATION = 3

QUIET_S = (2.0, 5.0)            # gap between faults
KILL_DOWN_S = (2.0, 6.0)
PAUSE_EXTRA_S = (1.0, 3.0)
PARTITION_S = (5.0, 10.0)
RESTART_ALL_DOWN_S = (1.0, 3.0)
SLOW_S = (5.0, 10.0)
NETEM = "delay 40ms 20ms loss 1%"
TBF = "rate 20mbit burst 32kbit latency 100ms"
SLOW_LOSS_PERCENT = 2

START_TIMEOUT_S = 60            # cluster up at the start
HEAL_TIMEOUT_S = 120            # cluster whole again after the last fault
RECOVERY_S = 10                 # workload kept running after the heal; needs ok sends
DRAIN_S = 30                    # producers' flush on stop
WORKER_STOP_S = DRAIN_S + 15
FINAL_READ_TIMEOUT_S = 120
CTL_TIMEOUT_S = 10
POLL_S = 0.2
LOG_TAIL_LINES = 15
STOP_TIMEOUT_S = 10             # SIGTERM to exit, at the end of a run

NFT_TABLE = "keel_chaos"
PR_SET_PDEATHSIG = 1


class RunError(Exception):
    """The run could not be carried out (not a verdict on Keel)."""


def now_ms():
    return time.time() * 1000.0


def wall(ms):
    """A wall-clock time in ms as the nodes' logs print it (UTC, ms)."""
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def say(msg):
    print(f"chaos: {msg}", flush=True)


_libc = None


def die_with_parent():
    """preexec_fn: the child gets SIGKILL when the runner dies, however it dies."""
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setpgid(0, 0)  # the terminal's Ctrl-C reaches only the runner, which stops everything in order


def nft_load(rules):
    """Loads nft commands as one transaction (all or nothing)."""
    try:
        r = subprocess.run(["nft", "-f", "-"], input="\n".join(rules) + "\n", capture_output=True, text=True,
                           timeout=CTL_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise RunError(f"nft did not finish within {CTL_TIMEOUT_S} s") from None
    if r.returncode != 0:
        raise RunError(f"nft: {r.stderr.strip()}")


def sh(args, check=True, timeout=CTL_TIMEOUT_S):
    """Runs a short command; returns CompletedProcess (stdout/stderr text)."""
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        if check:
            raise RunError(f"{' '.join(args)}: no answer within {timeout} s")
        return subprocess.CompletedProcess(args, 124, "", "timeout")
    if check and r.returncode != 0:
        raise RunError(f"{' '.join(args)} failed ({r.returncode}): {r.stderr.strip()[-300:]}")
    return r


# ---- the cluster ------------------------------------------------------------------------------


class Node:
    def __init__(self, run, name, role, node_id, addr, port):
        self.run, self.name, self.role, self.id = run, name, role, node_id
        self.addr, self.port = addr, port
        self.dir = os.path.join(run.out, "nodes", name)
        self.cfg = os.path.join(self.dir, "server.properties")
        self.log = os.path.join(self.dir, "keeld.log")
        self.proc = None
        self.paused = False
        self.expected_down = False  # killed or stopped by the run, not by itself

    @property
    def endpoint(self):
        return f"{self.addr}:{self.port}"

    def write_config(self, voters):
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=True)
        lines = ["# written by tools/chaos run",
                 f"process.roles={self.role}",
                 f"node.id={self.id}",
                 f"controller.quorum.voters={voters}",
                 f"listeners=PLAINTEXT://{self.endpoint}",
                 f"socket.source.address={self.addr}",
                 f"log.dirs={os.path.join(self.dir, 'data')}",
                 "log.level=info",
                 f"broker.session.timeout.ms={SESSION_TIMEOUT_MS}"]
        with open(self.cfg, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        assert not self.alive()
        argv = [self.run.keeld, "--config", self.cfg]
        if self.role == "broker" and self.run.args.inject_bug:
            # an override, not a config line: keelctl (no KL_INJECT_BUGS) must still read the file
            argv = [self.run.keeld_bugs, "--config", self.cfg, "--override", f"debug.inject.bug={self.run.args.inject_bug}"]
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, preexec_fn=die_with_parent)
        self.paused = False

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        if self.alive():
            self.signal(signal.SIGKILL)
            self.proc.wait()
        self.paused = False

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout_s):
        """SIGTERM (a broker's controlled shutdown), bounded, then SIGKILL. The exit status of a
        process that exited on SIGTERM (0 is clean), None if it was not running or had to be killed."""
        if not self.alive():
            return None
        self.resume()
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            say(f"{self.name} did not stop within {timeout_s} s of SIGTERM; SIGKILL")
            self.kill()
            return None

    def log_tail(self):
        try:
            with open(self.log, errors="replace") as fh:
                return "".join(fh.readlines()[-LOG_TAIL_LINES:])
        except OSError:
            return ""


# ---- network faults (inside the run's namespace only) -------------------------------------------


class Net:
    def __init__(self, enabled):
        self.enabled = enabled
        self.nft = enabled and shutil.which("nft") is not None
        self.netem = False
        if enabled:
            sh(["ip", "link", "set", "lo", "up"])
            self.netem = sh(["tc", "qdisc", "add", "dev", "lo", "root", "netem"] + NETEM.split(), check=False) \
                .returncode == 0
            sh(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
            if not self.nft and shutil.which("iptables") is None:
                raise RunError("neither nft nor iptables is installed (make deps installs nftables)")

    def cut(self, pairs):
        """DROP every packet between the two addresses of each pair, both ways."""
        if self.nft:
            rules = [f"add table inet {NFT_TABLE}",
                     f"add chain inet {NFT_TABLE} in {{ type filter hook input priority 0; }}"]
            for a, b in pairs:
                rules += [f"add rule inet {NFT_TABLE} in ip saddr {a} ip daddr {b} drop",
                          f"add rule inet {NFT_TABLE} in ip saddr {b} ip daddr {a} drop"]
            nft_load(rules)
        else:
            for a, b in pairs:
                sh(["iptables", "-A", "INPUT", "-s", a, "-d", b, "-j", "DROP"])
                sh(["iptables", "-A", "INPUT", "-s", b, "-d", a, "-j", "DROP"])

    def slow(self):
        """Delay and loss on lo; returns how (for the history)."""
        if self.netem:
            sh(["tc", "qdisc", "replace", "dev", "lo", "root", "netem"] + NETEM.split())
            return f"netem {NETEM}"
        sh(["tc", "qdisc", "replace", "dev", "lo", "root", "tbf"] + TBF.split())
        if self.nft:
            rules = [f"add table inet {NFT_TABLE}",
                     f"add chain inet {NFT_TABLE} in {{ type filter hook input priority 0; }}",
                     f"add rule inet {NFT_TABLE} in numgen random mod 100 < {SLOW_LOSS_PERCENT} drop"]
            nft_load(rules)
            return f"tbf {TBF} + {SLOW_LOSS_PERCENT}% loss (no netem in this kernel)"
        return f"tbf {TBF} (no netem in this kernel)"

    def heal(self):
        """Removes every rule and qdisc of the run, and checks that they are gone: the final read
        must not run through a fault."""
        if not self.enabled:
            return
        if self.nft:
            sh(["nft", "delete", "table", "inet", NFT_TABLE], check=False)
            if sh(["nft", "list", "table", "inet", NFT_TABLE], check=False).returncode == 0:
                raise RunError(f"nft table {NFT_TABLE} is still there after deleting it")
        else:
            sh(["iptables", "-F", "INPUT"], check=False)  # the namespace's own INPUT chain
            if "DROP" in sh(["iptables", "-S", "INPUT"], check=False).stdout:
                raise RunError("iptables INPUT still drops after flushing it")
        sh(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
        left = sh(["tc", "qdisc", "show", "dev", "lo"], check=False).stdout
        if "netem" in left or "tbf" in left:
            raise RunError(f"lo still has a qdisc after deleting it: {left.strip()}")


# ---- the run ----------------------------------------------------------------------------------


class Run:
    def __init__(self, args, netns):
        self.args, self.netns = args, netns
        self.rng = random.Random(args.seed)
        # choices made only when the cluster cannot name a target: drawn from their own generator
        # so that they do not shift the rest of the seed's schedule
        self.fallback_rng = random.Random(args.seed ^ 0x5EED)
        self.out = os.path.abspath(args.out)
        bindir = os.environ.get("KEEL_BIN") or os.path.join(ROOT, "build", "bin")
        self.keeld, self.keelctl = os.path.join(bindir, "keeld"), os.path.join(bindir, "keelctl")
        self.worker, self.keeld_bugs = os.path.join(bindir, "keel-chaos-worker"), os.path.join(bindir, "keeld-bugs")
        need = [self.keeld, self.keelctl, self.worker] + ([self.keeld_bugs] if args.inject_bug else [])
        for exe in need:
            if not os.access(exe, os.X_OK):
                raise RunError(f"{exe} not found (run make{' build/bin/keeld-bugs' if exe == self.keeld_bugs else ''}"
                               f", or set KEEL_BIN)")
        self.faults = list(args.faults)
        self.skipped_faults = []
        if not netns:
            self.skipped_faults = [f for f in self.faults if f in NETNS_FAULTS]
            self.faults = [f for f in self.faults if f not in NETNS_FAULTS]
        self.net = Net(netns)
        self.nodes = []
        self.workers = []     # (name, Popen, history path, log path)
        self.events = []      # nemesis events
        self.last_event_ms = 0.0
        self.t0 = None
        self.unexpected_exits = []
        self.shutdown_exits = []  # a node that exited non-zero (or crashed) on SIGTERM at the end
        self.fault_counts = {}
        self.topics = [f"chaos-{i}" for i in range(args.topics)]

    # -- layout

    def free_ports(self, addrs):
        """A free port on each address (on the host's loopback, shared with everything else)."""
        socks = []
        for a in addrs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((a, 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
        return ports

    def layout(self):
        caddrs = [NODE_ADDR.format(CONTROLLER_HOST_BASE + i) for i in range(1, N_CONTROLLERS + 1)]
        baddrs = [NODE_ADDR.format(BROKER_HOST_BASE + i) for i in range(1, N_BROKERS + 1)]
        free = None if self.netns else self.free_ports(caddrs + baddrs)
        for i, a in enumerate(caddrs):
            self.nodes.append(Node(self, f"c{i + 1}", "controller", i + 1, a,
                                   free[i] if free else NS_CONTROLLER_PORT))
        for i, a in enumerate(baddrs):
            self.nodes.append(Node(self, f"b{i + 1}", "broker", BROKER_ID_BASE + i + 1, a,
                                   free[N_CONTROLLERS + i] if free else NS_BROKER_PORT))
        voters = ",".join(f"{n.id}@{n.endpoint}" for n in self.controllers)
        for n in self.nodes:
            n.write_config(voters)
        cid = sh([self.keelctl, "storage", "random-uuid"]).stdout.strip()
        for n in self.nodes:
            sh([self.keelctl, "storage", "format", "--config", n.cfg, "--cluster-id", cid])

    @property
    def controllers(self):
        return [n for n in self.nodes if n.role == "controller"]

    @property
    def brokers(self):
        return [n for n in self.nodes if n.role == "broker"]

    def by_id(self, node_id):
        return next((n for n in self.nodes if n.id == node_id), None)

    # -- keelctl

    def ctl_run(self, *args, server=True, timeout_s=CTL_TIMEOUT_S):
        boot = ",".join(n.endpoint for n in (self.brokers if server else self.controllers))
        flag = "--bootstrap-server" if server else "--bootstrap-controller"
        return sh([self.keelctl, flag, boot, "--timeout-ms", str(min(timeout_s, 5) * 1000)] + list(args),
                  check=False, timeout=timeout_s)

    def ctl(self, *args, server=True):
        """keelctl ... --json: the parsed answer, or None when it failed."""
        r = self.ctl_run(*args, server=server)
        if r.returncode != 0:
            return None
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def active_controller(self):
        d = self.ctl("quorum", "describe", "--status", "--json", server=False)
        return self.by_id(d["leader_id"]) if d and d.get("leader_id", -1) >= 0 else None

    def describe(self):
        return self.ctl("topics", "describe", "--json") or []

    def partition_leader(self):
        topic, part = self.rng.choice(self.topics), self.rng.randrange(self.args.partitions)
        for t in self.describe():
            if t.get("topic") == topic:
                for p in t.get("partitions", []):
                    if p.get("partition") == part and p.get("leader", -1) >= 0:
                        return self.by_id(p["leader"]), f"{topic}/{part}"
        return None, f"{topic}/{part}"

    def cluster_whole(self):
        if not self.active_controller():
            return False
        bl = self.ctl("brokers", "list", "--json")
        if not bl or sum(1 for b in bl if not b.get("fenced")) != N_BROKERS:
            return False
        desc = [t for t in self.describe() if t.get("topic") in self.topics]
        if len(desc) != len(self.topics):
            return False
        return all(p.get("leader", -1) >= 0 and len(p.get("isr", [])) >= MIN_INSYNC
                   for t in desc for p in t.get("partitions", []))

    def wait_until(self, what, pred, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.watch_nodes()
            if pred():
                return
            time.sleep(POLL_S)
        raise RunError(f"{what} not within {timeout_s} s")

    def watch_nodes(self):
        """A node that exits without being told to is a bug the run found: recorded, restarted."""
        for n in self.nodes:
            if n.proc is not None and n.proc.poll() is not None and not n.expected_down:
                status = n.proc.returncode
                self.unexpected_exits.append({"node": n.name, "status": status,
                                              "time": round(now_ms() - (self.t0 or now_ms()), 3)})
                say(f"{n.name} exited by itself (status {status}); restarting it. Last lines of its log:\n"
                    + n.log_tail())
                n.start()

    def start_cluster(self):
        for n in self.controllers:
            n.start()
        self.wait_until("a quorum leader", lambda: self.active_controller() is not None, START_TIMEOUT_S)
        for n in self.brokers:
            n.start()
        self.wait_until("every broker unfenced", lambda: sum(
            1 for b in (self.ctl("brokers", "list", "--json") or []) if not b.get("fenced")) == N_BROKERS,
            START_TIMEOUT_S)
        for t in self.topics:
            self.wait_until(f"topic {t} created", lambda t=t: self.ctl_run(
                "topics", "create", "--topic", t, "--partitions", str(self.args.partitions),
                "--replication-factor", str(REPLICATION), "--config", f"min.insync.replicas={MIN_INSYNC}",
                "--if-not-exists").returncode == 0, START_TIMEOUT_S)
        self.wait_until("every partition led by a full ISR", self.cluster_whole, START_TIMEOUT_S)

    # -- workload

    def spawn_worker(self, name, mode, extra):
        hist = os.path.join(self.out, "workers", f"{name}.jsonl")
        log = os.path.join(self.out, "workers", f"{name}.log")
        boot = ",".join(n.endpoint for n in self.brokers)
        argv = [self.worker, mode, "--bootstrap", boot, "--process", name, "--topics", ",".join(self.topics),
                "--history", hist, "--t0-ms", f"{self.t0:.0f}"] + extra
        with open(log, "a") as fh:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fh, stderr=subprocess.STDOUT,
                                 preexec_fn=die_with_parent)
        self.workers.append((name, p, hist, log))
        return p

    def start_workload(self):
        os.makedirs(os.path.join(self.out, "workers"), exist_ok=True)
        for i in range(1, self.args.producers + 1):
            self.spawn_worker(f"p{i}", "produce", ["--value-base", str(i * 1_000_000_000), "--rate",
                                                   str(self.args.rate), "--seed", str(self.args.seed * 100 + i),
                                                   "--drain-ms", str(DRAIN_S * 1000)])
        for i in range(1, self.args.consumers + 1):
            self.spawn_worker(f"r{i}", "consume", [])

    def stop_workers(self, names_prefix):
        procs = [(n, p) for n, p, _, _ in self.workers if n.startswith(names_prefix) and p.poll() is None]
        for _, p in procs:
            p.send_signal(signal.SIGTERM)
        for n, p in procs:
            try:
                p.wait(timeout=WORKER_STOP_S)
            except subprocess.TimeoutExpired:
                say(f"worker {n} did not stop within {WORKER_STOP_S} s; SIGKILL")
                p.kill()
                p.wait()

    # -- nemesis

    def event(self, f, fault, **kw):
        t = now_ms()
        # never before the previous event, whatever the wall clock does (the workers clamp too);
        # "wall": the nodes' log time (UTC), to find the fault in their logs
        self.last_event_ms = max(self.last_event_ms, round(t - self.t0, 3))
        ev = {"type": "nemesis", "f": f, "fault": fault, "time": self.last_event_ms, "wall": wall(t)}
        ev.update(kw)
        self.events.append(ev)
        if f == "start":
            what = " ".join(str(v) if not isinstance(v, list) else ",".join(map(str, v))
                            for k, v in kw.items() if k in ("target", "mode", "nodes", "how"))
            say(f"t={ev['time'] / 1000:.1f}s ({ev['wall'][11:23]}) {fault} {what}")
        return ev

    def hold(self, lo_hi):
        """Waits out a fault, watching for nodes that die by themselves meanwhile."""
        end = time.monotonic() + self.rng.uniform(*lo_hi)
        while time.monotonic() < end:
            self.watch_nodes()
            time.sleep(min(POLL_S, max(0.0, end - time.monotonic())))

    def pick_targets(self):
        kind = self.rng.choice(self.args.targets)
        if kind == "active-controller":
            c = self.active_controller()
            return kind, [c] if c else [self.fallback_rng.choice(self.controllers)]
        if kind == "partition-leader":
            b, _ = self.partition_leader()
            return kind, [b] if b else [self.fallback_rng.choice(self.brokers)]
        if kind == "minority":
            return kind, self.rng.sample(self.nodes, (len(self.nodes) - 1) // 2)
        return kind, [self.rng.choice(self.nodes)]

    def fault_kill(self):
        kind, targets = self.pick_targets()
        self.watch_nodes()  # one that died by itself while the targets were looked up is its own story
        names = [n.name for n in targets]
        self.event("start", "kill", target=kind, nodes=names)
        for n in targets:
            n.expected_down = True
            n.kill()
        self.hold(KILL_DOWN_S)
        for n in targets:
            n.start()
            n.expected_down = False
        self.event("stop", "kill", nodes=names)

    def fault_pause(self):
        kind, targets = self.pick_targets()
        names = [n.name for n in targets]
        self.event("start", "pause", target=kind, nodes=names)
        for n in targets:
            n.pause()
        extra = self.rng.uniform(*PAUSE_EXTRA_S)
        self.hold((SESSION_TIMEOUT_MS / 1000 + extra,) * 2)
        for n in targets:
            n.resume()
        self.event("stop", "pause", nodes=names)

    def partition_pairs(self, mode):
        nodes = list(self.nodes)
        if mode == "isolate-node":
            # from every other node, clients still reach it: an isolated partition leader is a
            # zombie that clients keep producing to until the controller fences it (DESIGN.md §4)
            kind, targets = self.pick_targets()
            x = targets[0]
            return [x.name, kind], [(x.addr, o.addr) for o in nodes if o is not x]
        if mode == "isolate-controller":
            x = self.active_controller() or self.fallback_rng.choice(self.controllers)
            return [x.name], [(x.addr, o.addr) for o in nodes if o is not x]
        if mode == "isolate-leader":
            # from its followers only: it still reaches the controllers and the clients
            x, _ = self.partition_leader()
            x = x or self.fallback_rng.choice(self.brokers)
            return [x.name], [(x.addr, o.addr) for o in self.brokers if o is not x]
        self.rng.shuffle(nodes)
        n = len(nodes)
        if mode == "halves":
            a, b = nodes[:n // 2], nodes[n // 2:]
            return [f"{'+'.join(x.name for x in a)} | {'+'.join(x.name for x in b)}"], \
                [(x.addr, y.addr) for x in a for y in b]
        # majorities-ring (Jepsen's): nodes on a ring, each linked to just enough of the others to
        # see a bare majority, and no two seeing the same one. Each keeps its ring neighbours
        # within distance k, and with an even count the node opposite too: for 6 nodes, i-1, i+1
        # and i+3, so every node sees 4 of 6 and the distance-2 links are cut.
        need = n // 2                      # others a node must see: with itself, n // 2 + 1
        k = need // 2
        opposite = need % 2 == 1 and n % 2 == 0

        def linked(i, j):
            dist = min(abs(i - j), n - abs(i - j))
            return dist <= k or (opposite and dist == n // 2)
        cut = [(nodes[i], nodes[j]) for i in range(n) for j in range(i + 1, n) if not linked(i, j)]
        if n == 3:  # every node already sees a majority with one link: a bridge (the middle sees both)
            cut = [(nodes[0], nodes[2])]
        return [" ".join(x.name for x in nodes)], [(x.addr, y.addr) for x, y in cut]

    def fault_partition(self):
        mode = self.rng.choice(self.args.partition_modes)
        desc, pairs = self.partition_pairs(mode)
        self.event("start", "partition", mode=mode, nodes=desc,
                   cut=sorted(f"{a}-{b}" for a, b in pairs))
        self.net.cut(pairs)
        self.hold(PARTITION_S)
        self.net.heal()
        self.event("stop", "partition", mode=mode)

    def fault_restart_all(self):
        self.event("start", "restart-all", nodes=[n.name for n in self.nodes])
        for n in self.nodes:
            n.expected_down = True
            n.kill()
        self.hold(RESTART_ALL_DOWN_S)
        for n in self.controllers + self.brokers:
            n.start()
            n.expected_down = False
        self.event("stop", "restart-all")

    def fault_slow(self):
        how = self.net.slow()
        self.event("start", "slow", how=how)
        self.hold(SLOW_S)
        self.net.heal()
        self.event("stop", "slow")

    def nemesis(self):
        deadline = time.monotonic() + self.args.duration
        act = {"kill": self.fault_kill, "pause": self.fault_pause, "partition": self.fault_partition,
               "restart-all": self.fault_restart_all, "slow": self.fault_slow}
        # every requested fault once, in a seeded order, before any repeats: a short mixed run
        # still has each of them
        first_round = self.rng.sample(self.faults, len(self.faults))
        while True:
            self.hold(QUIET_S)
            if time.monotonic() >= deadline or not self.faults:
                if not self.faults:
                    self.hold((max(0.0, deadline - time.monotonic()),) * 2)
                break
            fault = first_round.pop(0) if first_round else self.rng.choice(self.faults)
            self.fault_counts[fault] = self.fault_counts.get(fault, 0) + 1
            act[fault]()

    def heal_all(self):
        self.watch_nodes()
        self.net.heal()
        for n in self.nodes:
            if n.paused:
                n.resume()
            if not n.alive():
                n.start()
            n.expected_down = False

    # -- end

    def stop_all(self):
        """Every path out: network healed, workers killed, brokers then controllers stopped;
        everything reaped. A second Ctrl-C cannot cut this short (PDEATHSIG covers a SIGKILL)."""
        old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            try:
                self.net.heal()
            except RunError as e:
                say(f"while stopping: {e}")
            for _, p, _, _ in self.workers:
                if p.poll() is None:
                    p.kill()
                p.wait()
            for n in self.nodes:
                if n.paused:
                    n.resume()
            for n in self.brokers + self.controllers:
                was_running = n.alive() and not n.expected_down
                n.expected_down = True
                status = n.stop(STOP_TIMEOUT_S)
                if was_running and status is not None and status != 0:
                    self.shutdown_exits.append({"node": n.name, "status": status})
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)

    def merge_history(self):
        path = os.path.join(self.out, "history.jsonl")
        with open(path, "w") as out:
            for ev in self.events:
                out.write(json.dumps(ev) + "\n")
            for _, _, hist, _ in self.workers:
                if os.path.exists(hist):
                    with open(hist) as fh:
                        for line in fh:
                            if line.endswith("\n"):  # a killed worker's torn last line is not an event
                                out.write(line)
        return path

    def ok_sends_between(self, lo_ms, hi_ms):
        """Sends acknowledged in [lo_ms, hi_ms) of the history's clock."""
        n = 0
        for name, _, hist, _ in self.workers:
            if not name.startswith("p") or not os.path.exists(hist):
                continue
            with open(hist) as fh:
                for line in fh:
                    if '"ok"' in line and '"send"' in line:
                        try:
                            ev = json.loads(line)
                        except ValueError:
                            continue
                        if ev.get("type") == "ok" and lo_ms <= ev.get("time", -1) < hi_ms:
                            n += 1
        return n


def run(args, netns):
    """The run; returns the exit status (0 valid, 1 invalid, 2 not carried out)."""
    os.makedirs(args.out, exist_ok=True)
    problems, failed, r = [], None, None
    try:
        r = Run(args, netns)
        if not netns:
            why = "--no-netns" if args.no_netns else "no network namespace of its own (needs root and `unshare --net`)"
            say(f"{why}: running on the host's loopback"
                + (f" without the {', '.join(r.skipped_faults)} faults" if r.skipped_faults else ""))
        else:
            say(f"network namespace of pid {os.getpid()} (enter with: nsenter -t {os.getpid()} -n); "
                f"slow uses {'netem' if r.net.netem else 'tbf + nft loss (no netem in this kernel)'}")
        say(f"seed {args.seed}, {args.duration} s, faults {','.join(r.faults) or 'none'}"
            + (f", injected broker bug {args.inject_bug}" if args.inject_bug else "") + f", out {r.out}")
        r.layout()
        r.start_cluster()
        r.t0 = now_ms()
        r.start_workload()
        r.nemesis()
        say("healing every fault")
        r.heal_all()
        r.wait_until("the cluster whole again (quorum, brokers unfenced, partitions led by ISR >= 2)",
                     r.cluster_whole, HEAL_TIMEOUT_S)
        healed_at = now_ms() - r.t0
        r.hold((RECOVERY_S, RECOVERY_S))
        progress = r.ok_sends_between(healed_at, healed_at + RECOVERY_S * 1000)
        r.stop_workers("p")
        r.stop_workers("r")
        if progress == 0:
            problems.append(f"no progress: no send was acknowledged in the {RECOVERY_S} s after the heal")
        say(f"final read of every partition ({progress} sends acknowledged in the {RECOVERY_S} s after the heal)")
        fr = r.spawn_worker("final", "final-read", ["--timeout-ms", str(FINAL_READ_TIMEOUT_S * 1000)])
        try:
            fr.wait(timeout=FINAL_READ_TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            fr.kill()
            fr.wait()
        if fr.returncode != 0:
            problems.append(f"the final read did not complete (status {fr.returncode}, see workers/final.log)")
        r.watch_nodes()
    except RunError as e:
        failed = str(e)
    except (OSError, ValueError, TypeError, KeyError, subprocess.SubprocessError) as e:
        failed = f"{type(e).__name__}: {e}"  # a harness bug or a broken tool, not a verdict on Keel
    finally:
        if r is not None:
            r.stop_all()
    if failed:
        say(f"cannot carry out the run: {failed}")
        for n in (r.nodes if r else []):
            tail = n.log_tail()
            if tail and not n.alive():
                say(f"last lines of {n.name}'s log:\n{tail}")
    if r is None or r.t0 is None:
        return 2
    hist = r.merge_history()
    chk = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "chaos_check.py"), hist, "--out", r.out]
                         + (["--no-plots"] if args.no_plots else []))
    for e in r.unexpected_exits:
        problems.append(f"node {e['node']} exited by itself at t={e['time'] / 1000:.1f}s (status {e['status']})")
    for e in r.shutdown_exits:
        problems.append(f"node {e['node']} exited with status {e['status']} on SIGTERM at the end")
    summary = {"seed": args.seed, "duration_s": args.duration, "t0_wall": wall(r.t0),
               "faults_requested": list(args.faults), "faults_run": r.fault_counts,
               "faults_skipped": r.skipped_faults, "netns": netns,
               "slow_method": ("netem" if r.net.netem else "tbf+nft") if netns else None,
               "inject_bug": args.inject_bug, "unexpected_exits": r.unexpected_exits,
               "shutdown_exits": r.shutdown_exits, "problems": problems, "not_carried_out": failed,
               "checker_status": chk.returncode, "replay": replay_command(args, netns)}
    res_path = os.path.join(r.out, "results.json")
    try:
        with open(res_path) as fh:
            res = json.load(fh)
    except (OSError, ValueError):
        res = None
    print(f"run: seed {args.seed}, faults run: "
          + (", ".join(f"{k} x{v}" for k, v in sorted(r.fault_counts.items())) or "none")
          + (f", injected bug {args.inject_bug}" if args.inject_bug else ""))
    for p in problems:
        print(f"run problem: {p}")
    print("replay: " + summary["replay"])
    if res is None or chk.returncode not in (0, 1) or failed:
        print(f"run: NOT CARRIED OUT ({failed or f'the checker failed with status {chk.returncode}'})")
        if res is not None:
            res.update(run=summary, run_valid=False)
            write_json(res_path, res)
        return 2
    valid = chk.returncode == 0 and not problems
    res.update(run=summary, run_valid=valid)
    write_json(res_path, res)
    if valid and not args.keep_data:
        for n in r.nodes:
            shutil.rmtree(os.path.join(n.dir, "data"), ignore_errors=True)
    print("run: VALID" if valid else "run: INVALID")
    return 0 if valid else 1


def write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=1)
        fh.write("\n")


def replay_command(a, netns):
    cmd = f"tools/chaos run --duration {a.duration} --faults {','.join(a.faults) or 'none'} --seed {a.seed}"
    if a.targets != list(TARGETS):
        cmd += f" --targets {','.join(a.targets)}"
    if a.partition_modes != list(PARTITION_MODES):
        cmd += f" --partition-modes {','.join(a.partition_modes)}"
    for k, default in (("topics", 2), ("partitions", 3), ("producers", 3), ("consumers", 2), ("rate", 300)):
        if getattr(a, k) != default:
            cmd += f" --{k} {getattr(a, k)}"
    if not netns:
        cmd += " --no-netns"
    return cmd + (f" --inject-bug {a.inject_bug}" if a.inject_bug else "")


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="chaos run", description="Runs a Keel cluster under faults and checks "
                                 "the history (see the top of tools/chaos_run.py).")
    ap.add_argument("--duration", type=int, required=True, help="seconds of faults")
    ap.add_argument("--faults", default="kill,pause,partition",
                    help=f"comma list of {','.join(ALL_FAULTS)} (default kill,pause,partition); 'none' for none")
    ap.add_argument("--seed", type=int, help="fault schedule seed (default: random, printed)")
    ap.add_argument("--out", help="output dir, must be empty or new (default build/chaos/<time>-<seed>)")
    ap.add_argument("--inject-bug", choices=BUGS, help="brokers run keeld-bugs with debug.inject.bug=NAME")
    ap.add_argument("--targets", default=",".join(TARGETS),
                    help=f"what kill, pause and isolate-node pick from: {','.join(TARGETS)} (default all)")
    ap.add_argument("--partition-modes", default=",".join(PARTITION_MODES),
                    help=f"what partition picks from: {','.join(PARTITION_MODES)} (default all)")
    ap.add_argument("--topics", type=int, default=2)
    ap.add_argument("--partitions", type=int, default=3)
    ap.add_argument("--producers", type=int, default=3)
    ap.add_argument("--consumers", type=int, default=2)
    ap.add_argument("--rate", type=int, default=300, help="records per second per producer")
    ap.add_argument("--no-netns", action="store_true", help="run on the host's loopback (no partition, slow)")
    ap.add_argument("--no-plots", action="store_true")
    ap.add_argument("--keep-data", action="store_true", help="keep the nodes' data dirs of a valid run")
    a = ap.parse_args(argv)
    if a.duration < 1:
        ap.error("--duration must be >= 1")
    a.faults = [] if a.faults == "none" else [f for f in a.faults.split(",") if f]
    bad = [f for f in a.faults if f not in ALL_FAULTS]
    if bad:
        ap.error(f"unknown fault(s) {','.join(bad)}; choose from {','.join(ALL_FAULTS)}")
    for k, allowed in (("targets", TARGETS), ("partition_modes", PARTITION_MODES)):
        v = [x for x in getattr(a, k).split(",") if x]
        bad = [x for x in v if x not in allowed]
        if bad or not v:
            ap.error(f"--{k.replace('_', '-')}: choose from {','.join(allowed)}")
        setattr(a, k, v)
    for k in ("topics", "partitions", "producers", "consumers", "rate"):
        if getattr(a, k) < 1:
            ap.error(f"--{k} must be >= 1")
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "big")
    if a.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        a.out = os.path.join(ROOT, "build", "chaos", f"{stamp}-seed{a.seed}")
    if os.path.exists(a.out) and os.listdir(a.out):
        ap.error(f"--out {a.out} is not empty")
    return a


def netns_id():
    """This process's network namespace (the inode of /proc/self/ns/net), or None."""
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


def own_netns():
    """True when this process runs in a namespace other than the one the runner was started in
    (recorded in the environment before the re-exec; init's cannot always be read)."""
    started_in, now = os.environ.get(ENV_IN_NETNS, ""), netns_id()
    return started_in.isdigit() and now is not None and int(started_in) != now


def can_unshare():
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


def main():
    argv = sys.argv[1:]
    args = parse_args(argv)
    if not os.environ.get(ENV_IN_NETNS) and not args.no_netns and can_unshare() and netns_id() is not None:
        # Re-run this script in a fresh network namespace; the seed and out dir are fixed first
        # so that the re-run uses the same ones.
        os.environ[ENV_IN_NETNS] = str(netns_id())
        fixed = argv + ["--seed", str(args.seed), "--out", args.out]
        os.execvp("unshare", ["unshare", "--net", "--", sys.executable, os.path.abspath(__file__)] + fixed)
    # The variable only says the re-exec happened; the namespace itself is checked, so that a
    # leaked variable can never let the run put rules on the host's own network.
    netns = not args.no_netns and own_netns()

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupted)
    try:
        return run(args, netns)
    except KeyboardInterrupt as e:
        say(f"interrupted ({e or 'SIGINT'}); every process stopped, logs kept in {args.out}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
