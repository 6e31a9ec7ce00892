#!/usr/bin/python3
"""The soak behind scripts/soak (which builds what it runs).

    /usr/bin/python3 tests/soak/soak.py --build-dir DIR [--duration SECONDS]
                                        [--seed N] [--keep] [--self-test-overlap]
    /usr/bin/python3 tests/soak/soak.py --check LOG

For --duration seconds, workers take four locks over and over while faults
are injected at random, then everything is drained and checked:

  file-rw     a lock file: exclusive, read and write (some with -o, so that
              the command runs under fasten's keeper)
  file-slots  a lock file: exclusive --slots 3
  etcd-rw     etcd://.../soak/rw: exclusive, read and write
  etcd-slots  etcd://.../soak/slots: exclusive --slots 2

on a 3-member etcd cluster started here on loopback. The faults: SIGKILL or
SIGSTOP (SIGCONT later) of a holder's command, of a waiting fasten, of a
holding fasten, and of an etcd member (at most one member at a time; a
killed member is restarted on its data).

Every command (COMMAND below, bash) and the soak itself append one line per
event to one log, each line a single write(2) to a file opened O_APPEND: the
order of the lines is the order in which the events happened, whatever the
clocks say. The soak writes a fault's line (`fault stop-member m0`) just
before it sends the signal and a `cont` line just before SIGCONT: the
process stopped after its fault line and ran again only after its `cont`
line. A command writes `start` once it runs (with its slot, fencing
token and pid), `tick` every TICK seconds while it runs, and `end` (or
`term`, on SIGTERM) last. The checks, from the log alone (`--check LOG`
repeats them on a kept log):

  overlap     a command counts as running from its `start` line to its last
              line; two commands of one lock that ran at once (one's start
              line falls between the other's start line and last line) must
              be compatible: read with read, or slot holders of different
              slots, at most N of them. Anything else is an overlap.
  ended       every command that started was seen gone: each holds the write
              end of a FIFO of its own (its descendants inherit it), and the
              soak logs `gone` when the read end reports that every process
              of the command has closed it. A command that ended without an
              `end` or `term` line must have been killed: by the soak, by
              the keeper after the soak killed its fasten, or by fasten
              after a lost lease (status 76).
  keeper      a command whose fasten the soak killed with SIGKILL, where the
              command runs under the keeper (-o, or etcd), must not write
              `end` afterwards and must be gone within KEEPER_LIMIT seconds.
  statuses    fasten ends with 0, the command's 3 (its SIGTERM), 69, 76,
              137, or by the SIGKILL the soak sent; anything else (a crash,
              a usage or system error) is a violation.
  leftovers   no process of a command or of fasten is left once the soak
              has drained; the lock files hold the bytes they were given;
              no key is left under soak/ in etcd once the leases have run out
              and one last writer on each etcd lock has waited out the
              holders that vanished (and deleted their keys' marks).

The longest stall is the longest time during which a lock had a running (not
stopped) waiter and no holder: a waiter counts from its `spawn` line until
its command's `start` line or its fasten's `exit` line; a holder from its
`start` line until its `end` or `term` line, or, for a command killed
without one, until its fasten's `exit` or its `gone` line, whichever the
soak saw first; a waiter stopped by the soak does not count between its
`stop-*` and `cont` lines. It is a figure, not a check (etcd member faults
and stopped holders make stalls on purpose).

With --self-test-overlap, one pair of commands per lock runs without any
lock, the second started once the first has written `start`: the run passes
only if the checker reports an overlap for every such pair and no other
violation (a checker that cannot fail would pass anything).

Timestamps are bash's $EPOCHREALTIME and Python's time.time(), one clock
(CLOCK_REALTIME, microseconds, no fork per line); they serve durations only
(stalls, the keeper's delay), and the soak warns if that clock stepped
against CLOCK_MONOTONIC during the run.
"""

import argparse
import collections
import hashlib
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TICK = 0.05
TTL = 3
GRACE = 1
KEEPER_LIMIT = 10.0
ALLOWED_STATUSES = {0, 3, 69, 76, 137}

# The command every fasten runs: $1 log, $2 id, $3 ticks, $4 FIFO directory,
# $5 tick seconds, $6 how long its silent child lives at most. $gone is the
# write end of its own FIFO (the soak's death detector), $never a FIFO nobody
# writes, on which `read -t` sleeps without a fork; bash picks their numbers
# among the free ones, so that the lock's descriptor the command inherited
# stays open. The child is a
# descendant that does nothing but hold fd 3: the command is gone only once
# it is gone too. It is started before the TERM trap, so that SIGTERM kills it.
COMMAND = r'''
exec {gone}>"$4/$2.fifo" {never}<>"$4/never.fifo"
say() { echo "$EPOCHREALTIME $1 $2${3:+ $3}" >>"$L"; }
L=$1
ID=$2
( read -r -t "$6" -u "$never" || : ) &
child=$!
trap 'say term "$ID"; kill "$child" 2>/dev/null; exit 3' TERM
say start "$ID" "${FASTEN_SLOT:--} ${FASTEN_FENCING_TOKEN:--} $$ ${ETCD_LOCK_KEY:--}"
i=0
while [ "$i" -lt "$3" ]; do
  say tick "$ID"
  read -r -t "$5" -u "$never" || :
  i=$((i + 1))
done
kill "$child" 2>/dev/null
wait "$child" 2>/dev/null
say end "$ID"
'''


# ---------------------------------------------------------------- the checker

class Hold:
    def __init__(self, ident):
        self.id = ident
        self.group = self.mode = None
        self.slots = 1
        self.keeper = False
        self.unlocked = False
        self.spawn_ts = None
        self.first = self.last = None  # positions of its first and last command line
        self.start_ts = self.end_ts = None
        self.slot = None
        self.ended = self.termed = False
        self.exit_ts = self.status = None
        self.exit_pos = None
        self.end_pos = None
        self.gone_ts = None
        self.faults = []  # (kind, position, ts)


def parse_log(path):
    """Returns (holds by id, member faults, harness notes) from the log."""
    holds = collections.OrderedDict()
    member_faults = collections.Counter()
    notes = {}

    def hold(ident):
        return holds.setdefault(ident, Hold(ident))

    with open(path, errors="replace") as f:
        for pos, line in enumerate(f):
            words = line.split()
            if len(words) < 2:
                continue
            try:
                ts = float(words[0])
            except ValueError:
                continue
            event, rest = words[1], words[2:]
            if event in ("spawn", "unlocked") and len(rest) >= 5:
                h = hold(rest[0])
                h.group, h.mode, h.slots = rest[1], rest[2], int(rest[3])
                h.keeper = rest[4] == "keeper"
                h.unlocked = event == "unlocked"
                h.spawn_ts = ts
            elif event in ("start", "tick", "end", "term") and rest:
                h = hold(rest[0])
                if h.first is None:
                    h.first = pos
                    h.start_ts = ts
                h.last = pos
                if event == "start" and len(rest) >= 2:
                    h.slot = rest[1]
                if event in ("end", "term"):
                    h.end_ts, h.end_pos = ts, pos
                    h.ended |= event == "end"
                    h.termed |= event == "term"
            elif event == "exit" and len(rest) >= 2:
                h = hold(rest[0])
                h.exit_ts, h.status, h.exit_pos = ts, rest[1], pos
            elif event == "gone" and rest:
                hold(rest[0]).gone_ts = ts
            elif event == "fault" and len(rest) >= 2:
                kind, target = rest[0], rest[1]
                if kind.endswith("member"):
                    member_faults[kind] += 1
                else:
                    hold(target).faults.append((kind, pos, ts))
            elif event == "cont" and rest:
                if rest[0] in holds:
                    holds[rest[0]].faults.append(("cont", pos, ts))
            elif event == "note" and len(rest) >= 2:
                notes[rest[0]] = " ".join(rest[1:])
    return holds, member_faults, notes


def compatible(a, b):
    """Whether two commands of one lock may run at once (slots checked apart)."""
    if a.slots > 1 and b.slots > 1:
        return True
    return a.mode == "read" and b.mode == "read"


def find_overlaps(holds):
    """Overlaps and over-held slots, by log position: a list of (the holds
    involved, why), the earlier ones first and the one that started last last."""
    problems = []
    by_group = collections.defaultdict(list)
    for h in holds.values():
        if h.first is not None and h.group:
            by_group[h.group].append(h)
    for runs in by_group.values():
        runs.sort(key=lambda h: h.first)
        active = []
        for b in runs:
            active = [a for a in active if a.last > b.first]
            for a in active:
                if not compatible(a, b):
                    problems.append(([a, b], f"{a.mode} {a.id} and {b.mode} {b.id} ran at once"))
                elif b.slots > 1 and a.slot == b.slot:
                    problems.append(([a, b], f"slot {b.slot} held by {a.id} and {b.id} at once"))
            if b.slots > 1 and len(active) + 1 > b.slots:
                problems.append((active + [b], f"{len(active) + 1} holders of {b.slots} slots at once "
                                 f"({', '.join(a.id for a in active + [b])})"))
            active.append(b)
    return problems


def fault_kinds(h):
    return [k for k, _, _ in h.faults]


def killed_by_fault(h):
    """Why a command that wrote no end or term line may have died, or None."""
    kinds = fault_kinds(h)
    if "kill-command" in kinds:
        return "the soak killed it"
    if ("kill-fasten" in kinds or "kill-waiter" in kinds) and h.keeper:
        return "the keeper killed it"
    if h.status == "76":
        return "fasten stopped it (lost lock)"
    return None


def held_until(h):
    """When a hold ended, for the stall figure (see the module's docstring)."""
    if h.end_ts is not None:
        return h.end_ts
    ends = [t for t in (h.exit_ts, h.gone_ts) if t is not None]
    return min(ends) if ends else None


def longest_stall(holds):
    """(seconds, group, at) of the longest time with a running waiter and no holder."""
    best = (0.0, "-", 0.0)
    events = collections.defaultdict(list)  # group -> [(ts, dwaiters, dholders)]
    for h in holds.values():
        if not h.group or h.unlocked or h.spawn_ts is None:
            continue
        e = events[h.group]
        waited_until = h.start_ts if h.start_ts is not None else h.exit_ts
        if waited_until is not None:
            e.append((h.spawn_ts, 1, 0))
            e.append((waited_until, -1, 0))
            # Stopped while waiting: not a waiter between stop and cont.
            stopped = None
            for kind, _, ts in h.faults:
                if kind in ("stop-waiter",) and ts < waited_until:
                    stopped = ts
                elif kind == "cont" and stopped is not None:
                    until = min(ts, waited_until)
                    e.append((stopped, -1, 0))
                    e.append((until, 1, 0))
                    stopped = None
            if stopped is not None:
                e.append((stopped, -1, 0))
                e.append((waited_until, 1, 0))
        if h.start_ts is not None:
            until = held_until(h)
            if until is not None:
                e.append((h.start_ts, 0, 1))
                e.append((until, 0, -1))
    for group, e in events.items():
        # At one instant, count arrivals before departures of holders and
        # departures before arrivals of waiters: a hand-off is no stall.
        e.sort(key=lambda x: (x[0], -x[2], x[1]))
        waiters = holders = 0
        since = None
        for ts, dw, dh in e:
            waiters += dw
            holders += dh
            if waiters > 0 and holders == 0:
                if since is None:
                    since = ts
            elif since is not None:
                if ts - since > best[0]:
                    best = (ts - since, group, since)
                since = None
    return best


def status_name(status):
    if status is None:
        return "none"
    if status.startswith("-"):
        return f"killed by {signal.Signals(-int(status)).name}"
    return status


def check(path):
    """Runs every check of the log; returns (violations, figures, expected overlaps)."""
    holds, member_faults, notes = parse_log(path)
    violations = []
    expected = []
    for involved, why in find_overlaps(holds):
        if any(h.unlocked for h in involved):
            expected.append(({h.id for h in involved}, why))
        else:
            violations.append(f"overlap: {why}")
    keeper_delays = []
    for h in holds.values():
        if h.first is None:
            continue
        if h.gone_ts is None:
            violations.append(f"not ended: the command of {h.id} ({h.group}) was never seen gone")
        if not h.ended and not h.termed and not h.unlocked and killed_by_fault(h) is None:
            violations.append(f"unexplained end: the command of {h.id} ({h.group}) wrote no end line, "
                              f"and nobody killed it (fasten's status {status_name(h.status)})")
        kill = next((pos for k, pos, _ in h.faults if k in ("kill-fasten", "kill-waiter") and pos > h.first),
                    None)
        if kill is not None and h.keeper:
            if h.ended and h.end_pos > kill:
                violations.append(f"keeper: the command of {h.id} ({h.group}) ran to its end after its "
                                  f"fasten was killed")
            if h.gone_ts is not None and h.exit_ts is not None:
                keeper_delays.append(h.gone_ts - h.exit_ts)
                if h.gone_ts - h.exit_ts > KEEPER_LIMIT:
                    violations.append(f"keeper: the command of {h.id} was gone only "
                                      f"{h.gone_ts - h.exit_ts:.1f} s after its fasten was killed")
    statuses = collections.Counter()
    for h in holds.values():
        if h.unlocked or h.spawn_ts is None:
            continue
        statuses[status_name(h.status)] += 1
        if h.status is None:
            violations.append(f"status: fasten of {h.id} has no exit line")
            continue
        code = int(h.status)
        soak_killed = "kill-fasten" in fault_kinds(h) or "kill-waiter" in fault_kinds(h)
        if code == -9 and (soak_killed or "kill-command" in fault_kinds(h)):
            continue
        if code not in ALLOWED_STATUSES:
            violations.append(f"status: fasten of {h.id} ({h.group}) ended with {status_name(h.status)}")
    for key, value in notes.items():
        if key.startswith("violation"):
            violations.append(value)
    faults = collections.Counter(member_faults)
    for h in holds.values():
        for kind, _, _ in h.faults:
            if kind != "cont":
                faults[kind] += 1
    stall = longest_stall(holds)
    started = [h for h in holds.values() if h.first is not None and not h.unlocked]
    figures = {
        "holds": len(started),
        "holds_by_lock": dict(collections.Counter(h.group for h in started)),
        "invocations": sum(1 for h in holds.values() if h.spawn_ts is not None and not h.unlocked),
        "faults": dict(sorted(faults.items())),
        "overlaps": sum(1 for v in violations if v.startswith("overlap")),
        "longest_stall": {"seconds": round(stall[0], 3), "lock": stall[1]},
        "statuses": dict(statuses.most_common()),
        "keeper_kills": len(keeper_delays),
        "keeper_slowest_seconds": round(max(keeper_delays), 3) if keeper_delays else None,
        "notes": {k: v for k, v in notes.items() if not k.startswith("violation")},
    }
    return violations, figures, expected


def print_summary(violations, figures, expected, self_test, out=sys.stdout):
    p = lambda *a: print(*a, file=out)
    p(f"holds: {figures['holds']} of {figures['invocations']} invocations "
      f"({', '.join(f'{k} {v}' for k, v in sorted(figures['holds_by_lock'].items()))})")
    p("faults injected: " + (", ".join(f"{k} {v}" for k, v in figures["faults"].items()) or "none"))
    p(f"overlaps: {figures['overlaps']}")
    s = figures["longest_stall"]
    p(f"longest stall: {s['seconds']:.2f} s ({s['lock']})")
    p("fasten statuses: " + ", ".join(f"{k} x{v}" for k, v in figures["statuses"].items()))
    if figures["keeper_kills"]:
        p(f"keeper: {figures['keeper_kills']} holding fastens killed, their commands gone at most "
          f"{figures['keeper_slowest_seconds']:.2f} s after")
    for k, v in figures["notes"].items():
        p(f"{k.replace('-', ' ')}: {v}")
    if self_test:
        p(f"self-test: {len(expected)} overlaps of unlocked commands reported")
    p(f"violations: {len(violations)}")
    for v in violations[:50]:
        p(f"  {v}")
    if len(violations) > 50:
        p(f"  ... and {len(violations) - 50} more")


# ------------------------------------------------------------- the harness

class Log:
    """The one log: each line one write(2) to a file opened O_APPEND."""

    def __init__(self, path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, event, *fields):
        line = f"{time.time():.6f} {event} " + " ".join(str(x) for x in fields) + "\n"
        os.write(self.fd, line.encode())


class Invocation:
    def __init__(self, ident, group, mode, ticks, keeper):
        self.id = ident
        self.group = group
        self.mode = mode
        self.ticks = ticks
        self.keeper = keeper
        self.proc = None
        self.lock = threading.Lock()  # held while signalling; `exited` set under it
        self.exited = False
        self.start = None  # (time.time() of its start line, command pid)
        self.done = False  # end or term line seen


class Cluster:
    """Three etcd members on loopback, on data directories that survive a restart."""

    def __init__(self, etcd, etcdctl, directory):
        self.etcd, self.etcdctl, self.dir = etcd, etcdctl, directory
        # Below the ephemeral ports: a restarted member binds its own again.
        free_ports = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers", "free-ports.py")
        self.ports = [int(port) for port in subprocess.check_output([sys.executable, free_ports, "6"]).split()]
        self.names = ["m0", "m1", "m2"]
        self.initial = ",".join(f"{self.names[i]}=http://127.0.0.1:{self.ports[i + 3]}" for i in range(3))
        self.endpoints = ",".join(f"127.0.0.1:{self.ports[i]}" for i in range(3))
        self.procs = [None] * 3
        self.lock = threading.Lock()

    def start(self, i):
        client, peer = self.ports[i], self.ports[i + 3]
        log = open(os.path.join(self.dir, f"{self.names[i]}.log"), "ab")
        self.procs[i] = subprocess.Popen(
            [self.etcd, "--name", self.names[i], "--data-dir", os.path.join(self.dir, self.names[i]),
             "--listen-client-urls", f"http://127.0.0.1:{client}",
             "--advertise-client-urls", f"http://127.0.0.1:{client}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", self.initial, "--initial-cluster-state", "new",
             "--heartbeat-interval=50", "--election-timeout=500"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()

    def ctl(self, *args, timeout=10):
        return subprocess.run([self.etcdctl, f"--endpoints={self.endpoints}", "--dial-timeout=1s",
                               "--command-timeout=3s", *args], capture_output=True, text=True,
                              timeout=timeout, env=dict(os.environ, ETCDCTL_API="3"))

    def wait_healthy(self, limit=60):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                r = self.ctl("endpoint", "health")
                if r.returncode == 0:
                    return True
            except subprocess.TimeoutExpired:
                pass
            time.sleep(0.2)
        return False

    def keys(self, prefix):
        r = self.ctl("get", "--prefix", prefix, "--keys-only")
        if r.returncode != 0:
            return None
        return [k for k in r.stdout.split("\n") if k]

    def stop(self):
        for p in self.procs:
            if p is not None and p.poll() is None:
                try:
                    p.send_signal(signal.SIGCONT)
                    p.kill()
                except ProcessLookupError:
                    pass
                p.wait()


class Soak:
    def __init__(self, args, run_dir):
        self.args = args
        self.run = run_dir
        self.work = os.path.join(run_dir, "work")  # the marker in every command line
        self.fifos = os.path.join(self.work, "fifo")
        os.makedirs(self.fifos)
        os.mkfifo(os.path.join(self.fifos, "never.fifo"))
        self.log = Log(os.path.join(self.work, "log"))
        self.errors = os.open(os.path.join(run_dir, "fasten.err"), os.O_WRONLY | os.O_APPEND | os.O_CREAT,
                              0o644)
        self.fasten = os.path.join(args.build_dir, "fasten")
        self.random = random.Random(args.seed)
        self.rlock = threading.Lock()
        self.counter = 0
        self.invocations = {}
        self.stopping = threading.Event()
        self.pending = {}  # key -> (due, action): SIGCONTs and restarts to come
        self.pending_lock = threading.Lock()
        self.epoll = select.epoll()
        self.watched = {}  # fd -> id
        self.watch_lock = threading.Lock()
        self.log_pos = 0
        self.state_lock = threading.Lock()
        self.member_faulted = None
        etcd_dir = os.path.join(run_dir, "etcd")
        os.makedirs(etcd_dir)
        self.cluster = Cluster(shutil.which("etcd"), shutil.which("etcdctl"), etcd_dir)
        self.lock_files = {}
        for name in ("rw.lock", "slots.lock"):
            path = os.path.join(self.work, name)
            with open(path, "wb") as f:
                f.write(os.urandom(4096))
            self.lock_files[path] = self.digest(path)
        url = f"etcd://{self.cluster.endpoints}/soak"
        etcd_options = ["--ttl", str(TTL), "--grace", str(GRACE)]
        # group -> (lock, modes, slots, options, workers)
        self.groups = {
            "file-rw": (os.path.join(self.work, "rw.lock"), ["exclusive", "read", "read", "write"], 1, [], 4),
            "file-slots": (os.path.join(self.work, "slots.lock"), ["exclusive"], 3, [], 4),
            "etcd-rw": (f"{url}/rw", ["exclusive", "read", "read", "write"], 1, etcd_options, 3),
            "etcd-slots": (f"{url}/slots", ["exclusive"], 2, etcd_options, 3),
        }

    @staticmethod
    def digest(path):
        with open(path, "rb") as f:
            data = f.read()
        return (len(data), hashlib.sha256(data).hexdigest())

    def rand(self, fn, *a):
        with self.rlock:
            return getattr(self.random, fn)(*a)

    def next_id(self, group):
        with self.rlock:
            self.counter += 1
            return f"{group[0]}{group.split('-')[1][0]}{self.counter}"

    # -- the commands' deaths

    def watch(self, ident):
        path = os.path.join(self.fifos, f"{ident}.fifo")
        os.mkfifo(path)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with self.watch_lock:
            self.watched[fd] = ident
        self.epoll.register(fd, select.EPOLLIN | select.EPOLLHUP)

    def watcher(self):
        while not (self.watcher_done.is_set() and not self.watched):
            for fd, _ in self.epoll.poll(0.1):
                with self.watch_lock:
                    ident = self.watched.pop(fd, None)
                if ident is None:
                    continue
                self.log.write("gone", ident)
                self.epoll.unregister(fd)
                os.close(fd)
                os.unlink(os.path.join(self.fifos, f"{ident}.fifo"))
            if self.watcher_done.is_set():
                break

    # -- what the log says now

    def read_log(self):
        """Brings the invocations' start and done up to date from the log."""
        with self.state_lock:
            with open(self.log.path, "rb") as f:
                f.seek(self.log_pos)
                data = f.read()
            cut = data.rfind(b"\n") + 1
            self.log_pos += cut
            for line in data[:cut].decode(errors="replace").splitlines():
                w = line.split()
                if len(w) < 3 or w[2] not in self.invocations:
                    continue
                inv = self.invocations[w[2]]
                if w[1] == "start" and len(w) >= 6:
                    inv.start = (float(w[0]), int(w[5]))
                elif w[1] in ("end", "term"):
                    inv.done = True

    # -- the workers

    def invoke(self, group):
        lock, modes, slots, options, _ = self.groups[group]
        ident = self.next_id(group)
        mode = self.rand("choice", modes)
        # Mostly short holds; one in ten outlasts an etcd lease's TTL, so that
        # a holding fasten-etcd stopped past its TTL still has a command running.
        ticks = self.rand("randint", 1, 30) if self.rand("random") < 0.9 else self.rand("randint", 30, 120)
        keeper = lock.startswith("etcd://") or self.rand("random") < 0.3
        opts = list(options)
        if slots > 1:
            opts += ["--slots", str(slots)]
        if keeper and not lock.startswith("etcd://"):
            opts.append("-o")
        inv = Invocation(ident, group, mode, ticks, keeper)
        self.watch(ident)
        child_lives = int(ticks * TICK + 2)
        self.log.write("spawn", ident, group, mode, slots, "keeper" if keeper else "-", f"ticks={ticks}",
                       f"child-lives={child_lives}", *opts)
        argv = [self.fasten, mode, *opts, lock, "bash", "-c", COMMAND, "soak-command", self.log.path, ident,
                str(ticks), self.fifos, str(TICK), str(child_lives)]
        inv.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=self.errors, env=dict(os.environ, LC_ALL="C"))
        with self.state_lock:
            self.invocations[ident] = inv
        # Waits without reaping, so that the pid stays fasten's while the
        # injector may signal it; then reaps under the invocation's lock.
        os.waitid(os.P_PID, inv.proc.pid, os.WEXITED | os.WNOWAIT)
        with inv.lock:
            inv.exited = True
            status = inv.proc.wait()
        self.log.write("exit", ident, status)

    def worker(self, group):
        while not self.stopping.is_set():
            self.invoke(group)
            self.stopping.wait(self.rand("uniform", 0, 0.1))

    def unlocked_pair(self, group):
        """Self-test: two commands of GROUP run at once without any lock."""
        _, modes, slots, _, _ = self.groups[group]
        procs = []
        for n in range(2):
            ident = self.next_id(group)
            self.watch(ident)
            self.log.write("unlocked", ident, group, "exclusive", slots, "-")
            env = dict(os.environ, LC_ALL="C", FASTEN_SLOT="0")
            procs.append((ident, subprocess.Popen(
                ["bash", "-c", COMMAND, "soak-command", self.log.path, ident, "20", self.fifos, str(TICK), "3"],
                stdin=subprocess.DEVNULL, env=env)))
            if n == 0:
                self.wait_for_line(f" start {ident} ")
        for ident, p in procs:
            self.log.write("exit", ident, p.wait())

    def wait_for_line(self, text, limit=30):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            with open(self.log.path) as f:
                if text in f.read():
                    return
            time.sleep(0.02)

    # -- the faults

    def later(self, key, delay, action):
        with self.pending_lock:
            self.pending[key] = (time.monotonic() + delay, action)

    def run_pending(self, everything=False):
        now = time.monotonic()
        with self.pending_lock:
            due = [k for k, (t, _) in self.pending.items() if everything or t <= now]
            actions = [self.pending.pop(k)[1] for k in due]
        for action in actions:
            action()

    def signal_fasten(self, inv, kind, sig):
        with inv.lock:
            if inv.exited:
                return False
            self.log.write("fault", kind, inv.id)
            # os.kill, not Popen.send_signal, which would reap a fasten that
            # has ended under the worker that waits for it.
            os.kill(inv.proc.pid, sig)
        return True

    def cont_fasten(self, inv):
        with inv.lock:
            if not inv.exited:
                self.log.write("cont", inv.id)
                os.kill(inv.proc.pid, signal.SIGCONT)

    def command_alive(self, inv, pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                words = f.read().split(b"\0")
        except OSError:
            return False
        return inv.id.encode() in words and self.log.path.encode() in words

    def signal_command(self, inv, kind, sig):
        pid = inv.start[1]
        if inv.done or not self.command_alive(inv, pid):
            return False
        self.log.write("fault", kind, inv.id)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        return True

    def cont_command(self, inv):
        pid = inv.start[1]
        if self.command_alive(inv, pid):
            self.log.write("cont", inv.id)
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def candidates(self, holding, keeper_time=False):
        self.read_log()
        now = time.time()
        with self.state_lock:
            found = []
            for inv in self.invocations.values():
                if inv.exited or inv.done:
                    continue
                if holding and inv.start is not None:
                    # A holder killed with fasten must have time left to run,
                    # so that running to its end shows a keeper that failed.
                    left = inv.start[0] + inv.ticks * TICK - now
                    if not keeper_time or left > 0.7:
                        found.append(inv)
                elif not holding and inv.start is None:
                    found.append(inv)
        return found

    def fault(self):
        kinds = ["kill-command", "stop-command", "kill-waiter", "stop-waiter", "kill-fasten", "stop-fasten",
                 "kill-member", "stop-member"]
        kind = self.rand("choice", kinds)
        if kind.endswith("member"):
            return self.member_fault(kind)
        holding = kind.endswith("command") or kind.endswith("fasten")
        found = self.candidates(holding, keeper_time=kind == "kill-fasten")
        if not found:
            return
        inv = self.rand("choice", sorted(found, key=lambda i: i.id))
        etcd = inv.group.startswith("etcd")
        if kind == "kill-command":
            self.signal_command(inv, kind, signal.SIGKILL)
        elif kind == "stop-command":
            if self.signal_command(inv, kind, signal.SIGSTOP):
                self.later(("command", inv.id), self.rand("uniform", 0.1, 2), lambda: self.cont_command(inv))
        elif kind in ("kill-waiter", "kill-fasten"):
            self.signal_fasten(inv, kind, signal.SIGKILL)
        else:
            # A stopped etcd holder may stay stopped past its lease's TTL
            # (up to --etcd-holder-stop seconds).
            longest = self.args.etcd_holder_stop if etcd and kind == "stop-fasten" else 3
            if self.signal_fasten(inv, kind, signal.SIGSTOP):
                self.later(("fasten", inv.id), self.rand("uniform", 0.1, longest), lambda: self.cont_fasten(inv))

    def member_fault(self, kind):
        if self.member_faulted is not None:
            return
        i = self.rand("randrange", 3)
        proc = self.cluster.procs[i]
        self.member_faulted = i
        self.log.write("fault", kind, f"m{i}")
        if kind == "kill-member":
            proc.kill()
            proc.wait()
            self.later(("member", i), self.rand("uniform", 1, 5), lambda: self.restart_member(i))
        else:
            proc.send_signal(signal.SIGSTOP)
            self.later(("member", i), self.rand("uniform", 0.5, self.args.member_stop), lambda: self.cont_member(i))

    def restart_member(self, i):
        self.cluster.start(i)
        self.log.write("cont", f"m{i}")
        self.member_faulted = None

    def cont_member(self, i):
        self.log.write("cont", f"m{i}")
        self.cluster.procs[i].send_signal(signal.SIGCONT)
        self.member_faulted = None

    def injector(self, end):
        self_test_at = time.monotonic() + (end - time.monotonic()) / 2 if self.args.self_test_overlap else None
        while time.monotonic() < end:
            self.stopping.wait(self.rand("expovariate", 1 / self.args.fault_interval))
            self.run_pending()
            if time.monotonic() >= end:
                break
            if self_test_at is not None and time.monotonic() >= self_test_at:
                self_test_at = None
                for group in self.groups:
                    threading.Thread(target=self.unlocked_pair, args=(group,), daemon=True).start()
            self.fault()
        self.run_pending(everything=True)

    # -- the whole run

    def marked_processes(self):
        """Processes whose command line names the work directory: fastens,
        keepers and commands (etcd's members live elsewhere)."""
        found = []
        marker = self.work.encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker in f.read():
                        found.append(int(entry))
            except OSError:
                pass
        return found

    def note(self, key, text):
        self.log.write("note", key, text)

    def drain(self, workers):
        deadline = time.monotonic() + self.args.drain_limit
        for t in workers:
            t.join(max(0, deadline - time.monotonic()))
        hung = [inv for inv in self.invocations.values() if not inv.exited]
        for inv in hung:
            self.note(f"violation-hang-{inv.id}", f"hang: fasten {inv.id} ({inv.group}) still ran "
                      f"{self.args.drain_limit:.0f} s after the faults stopped")
            with inv.lock:
                if not inv.exited:
                    os.kill(inv.proc.pid, signal.SIGKILL)
        for t in workers:
            t.join()
        # Every command that started must be gone: its child lives at most
        # its ticks and 2 s more.
        self.read_log()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with self.watch_lock:
                waiting = [i for i in self.watched.values() if self.invocations.get(i) is None
                           or self.invocations[i].start is not None]
            if not waiting:
                break
            time.sleep(0.1)
            self.read_log()
        self.watcher_done.set()
        left = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = self.marked_processes()
            if not left:
                break
            time.sleep(0.1)
        if left:
            described = []
            for pid in left:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        described.append(f"{pid}: " + f.read().replace(b"\0", b" ")[:120].decode(errors="replace"))
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            self.note("violation-orphans", f"orphans: {len(left)} processes left running: " + "; ".join(described))

    def check_leftovers(self):
        changed = [p for p, d in self.lock_files.items() if self.digest(p) != d]
        self.note("lock-files", "changed: " + " ".join(changed) if changed else "unchanged")
        if changed:
            self.note("violation-lock-files", f"lock files changed: {' '.join(changed)}")
        if not self.cluster.wait_healthy():
            self.note("violation-cluster", "the etcd cluster was not healthy again after the faults")
        start = time.monotonic()
        limit = 3 * TTL + 15
        # A holder that vanished (its fasten SIGKILLed, its lease revoked)
        # leaves its key's mark, which the next holder waits out and deletes:
        # one more writer on each etcd lock is that next holder.
        for group, (lock, _, _, options, _) in self.groups.items():
            if lock.startswith("etcd://"):
                done = subprocess.run([self.fasten, "exclusive", *options, "-w", str(limit), lock, "true"],
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True)
                if done.returncode != 0:
                    self.note("violation-etcd-keys", f"the last {group} holder exited {done.returncode}: "
                              f"{done.stderr.strip()}")
        keys = None
        while time.monotonic() - start < limit:
            keys = self.cluster.keys("soak/")
            if keys == []:
                break
            time.sleep(0.5)
        if keys == []:
            self.note("etcd-keys-left", f"none ({time.monotonic() - start:.1f} s after the last fasten ended)")
        else:
            self.note("etcd-keys-left", f"{'unknown' if keys is None else len(keys)}")
            self.note("violation-etcd-keys", f"etcd keys left {limit} s after the last fasten ended: {keys}")

    def main(self):
        for i in range(3):
            self.cluster.start(i)
        try:
            return self.soak()
        except BaseException:
            # Nothing of the run's may outlive it, stopped or not.
            self.stopping.set()
            self.run_pending(everything=True)
            for pid in self.marked_processes():
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            raise
        finally:
            self.cluster.stop()

    def soak(self):
        if not self.cluster.wait_healthy():
            print("soak: the etcd cluster did not become healthy", file=sys.stderr)
            return 2
        self.watcher_done = threading.Event()
        watcher = threading.Thread(target=self.watcher, daemon=True)
        watcher.start()
        self.note("settings", f"seed {self.args.seed}, faults every {self.args.fault_interval} s on average, "
                  f"fasten-etcd holders stopped up to {self.args.etcd_holder_stop} s (lease TTL {TTL} s), "
                  f"members up to {self.args.member_stop} s")
        offset = time.time() - time.monotonic()
        began = time.monotonic()
        end = began + self.args.duration
        workers = []
        for group, (_, _, _, _, count) in self.groups.items():
            for _ in range(count):
                t = threading.Thread(target=self.worker, args=(group,), daemon=True)
                t.start()
                workers.append(t)
        self.injector(end)
        self.stopping.set()
        self.run_pending(everything=True)
        self.drain(workers)
        watcher.join()
        self.check_leftovers()
        step = (time.time() - time.monotonic()) - offset
        if abs(step) > 0.05:
            self.note("clock", f"the realtime clock moved {step:+.3f} s against the monotonic one: "
                      "durations may be off by that much")
        self.note("ran", f"{time.monotonic() - began:.0f} s ({self.args.duration:.0f} s of faults)")
        return 0


def report(log, self_test, json_path=None):
    violations, figures, expected = check(log)
    if self_test:
        # Every unlocked pair must have been caught with each other.
        holds, _, _ = parse_log(log)
        unlocked = collections.defaultdict(list)
        for h in holds.values():
            if h.unlocked:
                unlocked[h.group].append(h.id)
        caught = [ids for ids, _ in expected]
        for group, ids in unlocked.items():
            for i in range(0, len(ids) - 1, 2):
                if not any(set(ids[i:i + 2]) <= found for found in caught):
                    violations.append(f"self-test: the unlocked commands {' and '.join(ids[i:i + 2])} of "
                                      f"{group} ran at once and the checker missed it")
        if not unlocked:
            violations.append("self-test: no unlocked pair ran")
    print_summary(violations, figures, expected, self_test)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(dict(figures, violations=violations), f, indent=2)
    return 1 if violations else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build-dir")
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--fault-interval", type=float, default=0.5, help="mean seconds between faults")
    parser.add_argument("--drain-limit", type=float, default=60)
    parser.add_argument("--member-stop", type=float, default=5,
                        help="the longest SIGSTOP of an etcd member (default 5 s)")
    parser.add_argument("--etcd-holder-stop", type=float, default=2 * TTL,
                        help="the longest SIGSTOP of a fasten-etcd that holds its lock (default: twice the TTL)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--keep", action="store_true", help="keep the run's directory")
    parser.add_argument("--json")
    parser.add_argument("--check", metavar="LOG")
    parser.add_argument("--self-test-overlap", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check:
        return report(args.check, args.self_test_overlap, args.json)
    if args.seed is None:
        args.seed = random.randrange(1 << 30)
    # The kernel sends SIGHUP to a process group that has stopped members
    # (the soak stops some) once it loses its last parent elsewhere in its
    # session, as when the shell that started the soak in the background
    # ends: ignored, as nohup does, by the soak and so by what it starts.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    run_dir = tempfile.mkdtemp(prefix="fasten-soak-")
    print(f"soak: {args.duration:.0f} s, seed {args.seed}, files in {run_dir}", file=sys.stderr)
    status = Soak(args, run_dir).main()
    if status:
        return status
    status = report(os.path.join(run_dir, "work", "log"), args.self_test_overlap, args.json)
    if status == 0 and not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        print(f"soak: the run's files (log, fasten.err, etcd/) are kept in {run_dir}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
