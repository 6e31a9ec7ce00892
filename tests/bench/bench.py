#!/usr/bin/python3
"""The benchmark driver behind scripts/bench (which builds what it runs).

    /usr/bin/python3 tests/bench/bench.py --build-dir DIR [--quick] [--json FILE]
                                          [--only FIGURE,...] [--fasten PATH]

Eleven figures, each measured side by side in one run with the contenders
alternated (the order rotates from one repetition to the next, so drift and
position effects fall on all of them alike), and each reported as median and
spread (p10-p90) and as a ratio fasten/peer:

  overhead     uncontended `fasten exclusive L -- /bin/true` vs `flock L /bin/true`
               vs the floor vs bare /bin/true, spawned with posix_spawn and reaped here
  contended    4 processes x 40 lock-and-run loops on one lock: batch wall time
  cmd-handoff  holder's command exits -> waiter's command starts
  lib-handoff  release in one process -> acquire returns in another, the two
               pinned to two CPUs and to one: libfasten vs raw flock(2) vs raw
               OFD fcntl vs Python fasteners, and a freed slot of --slots 2
               (the other one held) vs libfasten's exclusive lock
  many         N processes queue at once, each takes the lock once: time per
               hand-off as N grows, library and command level
  memory       peak RSS (VmHWM) of the wrapper while it holds the lock and
               waits for its command
  writer-wait  how long a writer waits under a stream of readers
  start        `fasten --version` and `fasten --help` vs flock(1)'s
  slots        64 jobs of 50 ms started at once, 4 at a time: `fasten exclusive
               --slots 4` vs a flock(1) scan-then-wait script vs GNU parallel's
               `sem -j 4`: wall time against the ideal, and CPU time used
  slot-wave    64 holders of --slots 64 end together while 64 slot holders
               wait: time until the 64 waiters' commands have all started, vs
               64 `flock -s` waiters released at once by one `flock -x` holder
  slot-threads the threads of one fasten waiting for any of N slots (N = 256
               and 1,024; /proc/PID/status), vs a waiting flock(1)
  etcd         `fasten exclusive etcd://...` vs `etcdctl lock`, on one etcd
               member of its own (tests/bench/bench_etcd.py): wall, CPU and
               peak RSS of one hold, and 2 clients x 25 holds

The floor (tests/bench/floor.c, bench-floor) is the least a lock-and-run
wrapper can do: open, an OFD lock, vfork, exec, wait, linked statically.
Figures 1-3 and 6 measure it beside flock(1) and fasten, so that every run
reports fasten/flock and fasten/floor side by side.

fasten's locks are fcntl (OFD) record locks and flock(1)'s are flock(2) locks:
two kernel lock tables that do not see each other, so every contender has its
own lock file and nothing here makes them contend with each other.

It prints a table for people on stdout and, with --json, writes the same
figures as JSON. Exits 1 if any figure could not be measured.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import bench_etcd

FLOCK = "/usr/bin/flock"
TRUE = "/bin/true"
PYTHON = "/usr/bin/python3"  # Debian's python, the one with python3-fasteners
BASH = "/bin/bash"
SLEEP = "/bin/sleep"
SEM = "/usr/bin/sem"  # GNU parallel's semaphore (Debian's parallel)
HERE = os.path.dirname(os.path.abspath(__file__))
FIGURES = ["overhead", "contended", "cmd-handoff", "lib-handoff", "many", "memory", "writer-wait", "start", "slots", "slot-wave",
           "slot-threads", "etcd"]

# How much of each figure to measure. --quick is a smoke test: seconds, not
# numbers to quote.
FULL = {
    "overhead_rounds": 1000,
    "contended_reps": 7,
    "contended_procs": 4,
    "contended_loops": 40,
    "cmd_handoff_reps": 100,
    "lib_rounds": 5000,
    "fasteners_rounds": 300,
    "lib_chunks": 20,
    "many_counts": [10, 100, 400],
    "many_reps": 3,
    "memory_reps": 5,
    "stream_readers": 24,
    "stream_reps": 2,
    "start_rounds": 500,
    "slots_jobs": 64,
    "slots_count": 4,
    "slots_reps": 5,
    "slots_solo_reps": 5,
    "wave_count": 64,
    "wave_reps": 5,
    "threads_counts": [256, 1024],
    "etcd_reps": 30,
    "etcd_rss_reps": 5,
    "etcd_holds": 25,
    "etcd_batch_reps": 3,
}
QUICK = {
    "overhead_rounds": 30,
    "contended_reps": 2,
    "contended_procs": 4,
    "contended_loops": 5,
    "cmd_handoff_reps": 6,
    "lib_rounds": 200,
    "fasteners_rounds": 20,
    "lib_chunks": 4,
    "many_counts": [5, 20],
    "many_reps": 1,
    "memory_reps": 2,
    "stream_readers": 10,
    "stream_reps": 1,
    "start_rounds": 20,
    "slots_jobs": 8,
    "slots_count": 4,
    "slots_reps": 1,
    "slots_solo_reps": 1,
    "wave_count": 8,
    "wave_reps": 1,
    "threads_counts": [16, 1024],
    "etcd_reps": 3,
    "etcd_rss_reps": 1,
    "etcd_holds": 3,
    "etcd_batch_reps": 1,
}

# Targets from the issue: (figure, ratio key, comparison, bound, wording).
TARGETS = [
    ("overhead", "fasten/flock", "<=", 0.80, "wrapper overhead <= 0.80x flock(1) (median ratio)"),
    ("overhead", "fasten/floor", "<=", 1.30, "wrapper overhead <= 1.30x the floor (median ratio)"),
    ("contended", "fasten/flock", "<=", 0.85, "contended throughput <= 0.85x flock(1) (median wall-time ratio)"),
    ("cmd-handoff", "fasten/flock", "<=", 0.85, "command hand-off <= 0.85x flock(1) (median ratio)"),
    ("lib-handoff", "fasten/flock p50 two CPUs", "<=", 1.2,
     "library hand-off p50 within 1.2x raw flock(2), waiter woken on another CPU"),
    ("lib-handoff", "fasten/flock p50 one CPU", "<=", 1.2,
     "library hand-off p50 within 1.2x raw flock(2), both on one CPU"),
    ("lib-handoff", "fasten/fasteners p50", "<=", 0.05, "library hand-off p50 >= 20x better than fasteners"),
    ("memory", "fasten/flock", "<=", 1.0, "peak RSS <= 1.0x flock(1)"),
    ("start", "fasten/flock --version", "<=", 1.0, "fasten --version <= 1.0x flock --version"),
    ("start", "fasten/flock --help", "<=", 1.0, "fasten --help <= 1.0x flock --help"),
    ("lib-handoff", "slot/fasten p50 two CPUs", "<=", 1.3,
     "a freed slot's hand-off p50 <= 1.3x the exclusive lock's, two CPUs"),
    ("lib-handoff", "slot/fasten p50 one CPU", "<=", 1.3,
     "a freed slot's hand-off p50 <= 1.3x the exclusive lock's, one CPU"),
    ("slot-wave", "fasten/flock", "<=", 1.3,
     "a wave of freed slots admitted within 1.3x 64 flock -s waiters released at once"),
    ("slot-threads", "fasten threads, most", "<=", 2, "threads of a waiter for any of N slots <= 2"),
    ("etcd", "fasten/etcdctl wall", "<=", 0.6, "one etcd hold: wall <= 0.6x etcdctl lock"),
    ("etcd", "fasten/etcdctl CPU", "<=", 0.3, "one etcd hold: CPU <= 0.3x etcdctl lock"),
    ("etcd", "fasten/etcdctl peak RSS", "<=", 0.5, "one etcd hold: peak RSS <= 0.5x etcdctl lock"),
    ("etcd", "fasten/etcdctl batch", "<=", 0.6, "2 clients x 25 etcd holds: wall <= 0.6x etcdctl lock"),
]


def log(message):
    print(message, file=sys.stderr, flush=True)


# --- statistics ----------------------------------------------------------------


def percentile(samples, p):
    """The p-th percentile (0-100), interpolating linearly between ranks."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(samples, scale=1.0, extra=()):
    """Median and p10-p90 (plus any `extra` percentiles) of samples / scale."""
    values = [s / scale for s in samples]
    result = {
        "n": len(values),
        "median": percentile(values, 50),
        "p10": percentile(values, 10),
        "p90": percentile(values, 90),
    }
    for p in extra:
        result[f"p{p}"] = percentile(values, p)
    return result


def ratio_summary(numerators, denominators):
    """Summary of the paired ratios a_i / b_i: pairs measured back to back
    see the same machine state, so their ratio is steadier than a ratio of
    medians."""
    return summary([a / b for a, b in zip(numerators, denominators)])


def rotated(items, k):
    k %= len(items)
    return items[k:] + items[:k]


# --- processes -----------------------------------------------------------------


def now_ns():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def spawn(argv, **kwargs):
    return os.posix_spawn(argv[0], argv, os.environ, **kwargs)


def reap(pid, what):
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{what} failed with status {os.waitstatus_to_exitcode(status)}")


def state(pid):
    """The process state letter from /proc/PID/stat (S: asleep), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return None
    end = text.rindex(b")")
    return chr(text[end + 2])


def wait_until_asleep(pids, timeout=120.0):
    """Waits until every pid sleeps: the waiters here sleep only while they
    wait for the lock (fasten and flock(1) block in the kernel)."""
    deadline = time.monotonic() + timeout
    pending = list(pids)
    while pending:
        pending = [pid for pid in pending if state(pid) != "S"]
        if not pending:
            return
        for pid in pending:
            if state(pid) in (None, "Z"):
                raise RuntimeError(f"process {pid} ended while it should wait for the lock")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} processes never started to wait for the lock")
        time.sleep(0.0005)


class Bench:
    def __init__(self, args, config):
        self.args = args
        self.config = config
        build = os.path.abspath(args.build_dir)
        self.fasten = os.path.abspath(args.fasten or os.path.join(build, "fasten"))
        self.helper = os.path.join(build, "tests", "bench", "bench-helper")
        self.handoff = os.path.join(build, "tests", "bench", "bench-handoff")
        self.floor = os.path.join(build, "tests", "bench", "bench-floor")
        self.fasteners_script = os.path.join(HERE, "handoff_fasteners.py")
        self.slots_script = os.path.join(HERE, "slots_flock.sh")
        for path in (self.fasten, self.helper, self.handoff, self.floor, FLOCK, TRUE, PYTHON):
            if not os.access(path, os.X_OK):
                raise SystemExit(f"bench: {path} is missing or not executable")
        self.dir = tempfile.mkdtemp(prefix="fasten-bench-")
        self.devnull = os.open(os.devnull, os.O_RDWR)

    def close(self):
        os.close(self.devnull)
        shutil.rmtree(self.dir, ignore_errors=True)

    def lock_path(self, name):
        return os.path.join(self.dir, name + ".lock")

    def wrap(self, contender, lock, command):
        """argv that runs `command` under `lock` with a contender."""
        if contender == "fasten":
            return [self.fasten, "exclusive", lock, "--", *command]
        if contender == "flock":
            return [FLOCK, lock, *command]
        if contender == "floor":
            return [self.floor, lock, *command]
        if contender == "none":
            return list(command)
        raise ValueError(contender)

    # --- 1. wrapper overhead -------------------------------------------------

    def overhead(self):
        """Uncontended: spawn, run /bin/true under the lock, reap."""
        contenders = ["none", "floor", "flock", "fasten"]
        argvs = {c: self.wrap(c, self.lock_path("overhead-" + c), [TRUE]) for c in contenders}
        times = {c: [] for c in contenders}
        file_actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0)]
        for r in range(-10, self.config["overhead_rounds"]):  # 10 rounds of warm-up
            for c in rotated(contenders, r):
                argv = argvs[c]
                start = time.perf_counter_ns()
                pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=file_actions)
                _, status = os.waitpid(pid, 0)
                elapsed = time.perf_counter_ns() - start
                if status != 0:
                    raise RuntimeError(f"{' '.join(argv)} failed")
                if r >= 0:
                    times[c].append(elapsed)
        wrappers = ("floor", "flock", "fasten")
        excess = {c: [t - b for t, b in zip(times[c], times["none"])] for c in wrappers}
        return {
            "unit": "us",
            "what": "wall time of one uncontended run, spawn to reap",
            "contenders": {
                "/bin/true": summary(times["none"], 1e3),
                **{c: summary(times[c], 1e3) for c in wrappers},
            },
            "excess over /bin/true": {c: summary(excess[c], 1e3) for c in wrappers},
            "ratios": {
                "fasten/flock": ratio_summary(times["fasten"], times["flock"]),
                "fasten/floor": ratio_summary(times["fasten"], times["floor"]),
                "fasten/flock excess": {
                    "median": percentile(excess["fasten"], 50) / percentile(excess["flock"], 50)
                },
            },
        }

    # --- 2. contended throughput ----------------------------------------------

    def contended(self):
        """procs processes, each running `loops` lock-and-run loops."""
        procs, loops = self.config["contended_procs"], self.config["contended_loops"]
        contenders = ["floor", "flock", "fasten"]
        walls = {c: [] for c in contenders}
        for r in range(self.config["contended_reps"]):
            for c in rotated(contenders, r):
                argv = [self.helper, "loop", str(loops), *self.wrap(c, self.lock_path("contended-" + c), [TRUE])]
                start = now_ns()
                pids = [spawn(argv) for _ in range(procs)]
                for pid in pids:
                    reap(pid, c + " loop")
                walls[c].append(now_ns() - start)
        runs = procs * loops
        return {
            "unit": "ms",
            "what": f"wall time for {procs} processes x {loops} lock-and-run loops ({runs} runs)",
            "contenders": {c: summary(walls[c], 1e6) for c in contenders},
            "runs per second": {c: runs / (percentile(walls[c], 50) / 1e9) for c in contenders},
            "ratios": {
                "fasten/flock": ratio_summary(walls["fasten"], walls["flock"]),
                "fasten/floor": ratio_summary(walls["fasten"], walls["floor"]),
            },
        }

    # --- 3. command hand-off ----------------------------------------------------

    def start_holder(self, contender, lock):
        """A wrapper holding `lock` while `bench-helper clock --wait` runs:
        returns once the command has started. Writing a byte to its stdin
        makes the command print CLOCK_MONOTONIC and exit."""
        holder = subprocess.Popen(
            self.wrap(contender, lock, [self.helper, "clock", "--wait"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        if holder.stdout.readline() != b"ready\n":
            stop(holder)
            raise RuntimeError(f"{contender}: the lock holder did not start")
        return holder

    def command_handoff_once(self, contender):
        lock = self.lock_path("cmd-handoff-" + contender)
        holder = self.start_holder(contender, lock)
        waiter = None
        try:
            waiter = subprocess.Popen(self.wrap(contender, lock, [self.helper, "clock"]), stdout=subprocess.PIPE)
            wait_until_asleep([waiter.pid])
            holder.stdin.write(b"x")
            holder.stdin.close()
            exited = int(holder.stdout.readline())  # the holder's command, just before it exits
            started = int(waiter.stdout.read())  # the waiter's command, as it starts
            if holder.wait() != 0 or waiter.wait() != 0:
                raise RuntimeError(f"{contender}: the holder or the waiter failed")
            return started - exited
        finally:
            stop(holder)
            stop(waiter)

    def cmd_handoff(self):
        contenders = ["floor", "flock", "fasten"]
        latencies = {c: [] for c in contenders}
        for r in range(-2, self.config["cmd_handoff_reps"]):
            for c in rotated(contenders, r):
                latency = self.command_handoff_once(c)
                if r >= 0:
                    latencies[c].append(latency)
        return {
            "unit": "us",
            "what": "holder's command exits -> waiting wrapper's command starts",
            "contenders": {c: summary(latencies[c], 1e3, extra=(99,)) for c in contenders},
            "ratios": {
                "fasten/flock": ratio_summary(latencies["fasten"], latencies["flock"]),
                "fasten/floor": ratio_summary(latencies["fasten"], latencies["floor"]),
            },
        }

    # --- 4. library hand-off ----------------------------------------------------

    def run_samples(self, argv):
        out = subprocess.run(argv, check=True, stdout=subprocess.PIPE, text=True).stdout
        return [int(line) for line in out.split()]

    def lib_handoff(self):
        """Ping-pong between two processes, pinned two ways: on two CPUs,
        so that every hand-off wakes the waiter on the other CPU (the usual
        case; an IPI, which is dear in a VM), and both on one CPU, which
        leaves the lock calls and a context switch: the software path alone.
        Left free, the scheduler flips between the two from run to run."""
        rounds, chunks = self.config["lib_rounds"], self.config["lib_chunks"]
        py_rounds = self.config["fasteners_rounds"]
        cpus = sorted(os.sched_getaffinity(0))
        placements = {"two CPUs": [cpus[-2], cpus[-1]]} if len(cpus) > 1 else {}
        placements["one CPU"] = [cpus[-1], cpus[-1]]
        main = "two CPUs" if "two CPUs" in placements else "one CPU"
        runs = [(k, p) for p in placements for k in ("flock", "ofd", "fasten", "slot")]
        runs.append(("fasteners", main))
        latencies = {run: [] for run in runs}
        for chunk in range(chunks):
            for kind, placement in rotated(runs, chunk):
                where = [str(cpu) for cpu in placements[placement]]
                if kind == "fasteners":
                    n = max(2, py_rounds // chunks)
                    argv = [PYTHON, self.fasteners_script, self.lock_path("lib-fasteners"), str(n), *where]
                else:
                    n = max(2, rounds // chunks)
                    argv = [self.handoff, "pingpong", kind, self.lock_path("lib-" + kind), str(n), *where]
                latencies[(kind, placement)].extend(self.run_samples(argv))
        names = {
            "fasten": "libfasten",
            "slot": "libfasten slot",
            "flock": "raw flock(2)",
            "ofd": "raw OFD fcntl",
            "fasteners": "Python fasteners",
        }
        stats = {f"{names[k]}, {p}": summary(v, 1e3, extra=(99,)) for (k, p), v in latencies.items()}
        ratios = {}
        for (kind, placement) in runs:
            if kind == "slot":
                # A freed slot against the exclusive lock's hand-off.
                for p in ("median", "p99"):
                    name = f"slot/fasten {'p50' if p == 'median' else p} {placement}"
                    ratios[name] = {"median": stats[f"{names['slot']}, {placement}"][p]
                                    / stats[f"libfasten, {placement}"][p]}
            if kind in ("fasten", "slot"):
                continue
            for p in ("median", "p99"):
                name = f"fasten/{kind} {'p50' if p == 'median' else p}"
                if kind != "fasteners":
                    name += " " + placement
                ratios[name] = {"median": stats[f"libfasten, {placement}"][p] / stats[f"{names[kind]}, {placement}"][p]}
        return {
            "unit": "us",
            "what": "release in one process -> acquire returns in the other (ping-pong)",
            "placements": {p: cpus for p, cpus in placements.items()},
            "contenders": stats,
            "ratios": ratios,
        }

    # --- 5. many waiters ----------------------------------------------------------

    def many_command_once(self, contender, count):
        """count wrappers queue behind a holder; per hand-off time from the
        holder's command exit to the last waiter's exit."""
        lock = self.lock_path("many-cmd-" + contender)
        holder = self.start_holder(contender, lock)
        waiters = []
        try:
            argv = self.wrap(contender, lock, [TRUE])
            file_actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0)]
            for _ in range(count):
                waiters.append(os.posix_spawn(argv[0], argv, os.environ, file_actions=file_actions))
            wait_until_asleep(waiters)
            holder.stdin.write(b"x")
            holder.stdin.close()
            released = int(holder.stdout.readline())
            for pid in waiters:
                reap(pid, contender + " waiter")
            done = now_ns()
            waiters = []
            if holder.wait() != 0:
                raise RuntimeError(f"{contender}: the holder failed")
            return (done - released) / count
        finally:
            stop(holder)
            for pid in waiters:
                os.kill(pid, 9)
                os.waitpid(pid, 0)

    def many(self):
        results = {"unit": "us per hand-off", "what": "", "by_n": {}}
        results["what"] = (
            "N processes queue for one lock at once and each takes it once; "
            "(release -> last acquisition) / N. Library: bench-handoff many; "
            "command: N wrappers running /bin/true"
        )
        lib_kinds = ["flock", "ofd", "fasten"]
        cmd_kinds = ["flock", "fasten"]
        for count in self.config["many_counts"]:
            per = {f"lib {k}": [] for k in lib_kinds}
            per.update({f"cmd {k}": [] for k in cmd_kinds})
            gaps = {f"lib {k}": [] for k in lib_kinds}
            for r in range(self.config["many_reps"]):
                for k in rotated(lib_kinds, r):
                    out = subprocess.run(
                        [self.handoff, "many", k, self.lock_path("many-lib-" + k), str(count)],
                        check=True,
                        stdout=subprocess.PIPE,
                        text=True,
                    ).stdout.split("\n")
                    total = int(out[0].split()[1])
                    per[f"lib {k}"].append(total / count)
                    gaps[f"lib {k}"].extend(int(line) for line in out[1:] if line)
                for k in rotated(cmd_kinds, r):
                    per[f"cmd {k}"].append(self.many_command_once(k, count))
            entry = {
                "contenders": {name: summary(values, 1e3) for name, values in per.items()},
                "single hand-off gaps (library)": {name: summary(v, 1e3, extra=(99,)) for name, v in gaps.items()},
                "ratios": {
                    "lib fasten/flock": ratio_summary(per["lib fasten"], per["lib flock"]),
                    "cmd fasten/flock": ratio_summary(per["cmd fasten"], per["cmd flock"]),
                },
            }
            results["by_n"][str(count)] = entry
        return results

    # --- 6. memory ----------------------------------------------------------------

    def memory_once(self, contender):
        holder = self.start_holder(contender, self.lock_path("memory-" + contender))
        try:
            # The command runs: the wrapper holds the lock and waits for it.
            values = read_kb(f"/proc/{holder.pid}/status", ("VmHWM", "VmRSS"))
            values.update(read_kb(f"/proc/{holder.pid}/smaps_rollup", ("Pss", "Private_Dirty")))
            holder.stdin.write(b"x")
            holder.stdin.close()
            holder.stdout.read()
            if holder.wait() != 0:
                raise RuntimeError(f"{contender}: the holder failed")
            return values
        finally:
            stop(holder)

    def memory(self):
        contenders = ["floor", "flock", "fasten"]
        samples = {c: [] for c in contenders}
        for r in range(self.config["memory_reps"]):
            for c in rotated(contenders, r):
                samples[c].append(self.memory_once(c))
        keys = ("VmHWM", "VmRSS", "Pss", "Private_Dirty")
        stats = {c: {k: summary([s[k] for s in samples[c]]) for k in keys} for c in contenders}
        return {
            "unit": "kB",
            "what": "the wrapper process while its command runs (peak RSS = VmHWM; Private_Dirty = the "
            "pages it alone owns: heap, stack, relocated data; PSS and clean pages depend on who else maps "
            "the same libraries)",
            "contenders": {c: stats[c]["VmHWM"] for c in contenders},
            "detail": stats,
            "ratios": {
                "fasten/flock": ratio_summary(
                    [s["VmHWM"] for s in samples["fasten"]], [s["VmHWM"] for s in samples["flock"]]
                ),
                "fasten/floor": ratio_summary(
                    [s["VmHWM"] for s in samples["fasten"]], [s["VmHWM"] for s in samples["floor"]]
                ),
                "fasten/flock Private_Dirty": {
                    "median": stats["fasten"]["Private_Dirty"]["median"] / stats["flock"]["Private_Dirty"]["median"]
                },
            },
        }


    # --- 7. a writer under a stream of readers ----------------------------------

    def writer_wait_once(self, contender):
        """A reader every 0.25 s, each holding the lock 0.6 s, so that they
        always overlap; after 1 s a writer asks for the lock. Returns how long
        the writer waited, in ms (without writer preference: until the stream
        ends)."""
        lock = self.lock_path("stream-" + contender)
        if contender == "fasten":
            reader = [self.fasten, "read", lock, "sleep", "0.6"]
            writer = [self.fasten, "write", lock, TRUE]
        else:
            reader = [FLOCK, "-s", lock, "sleep", "0.6"]
            writer = [FLOCK, "-x", lock, TRUE]
        readers = []
        waited = []
        try:
            start = time.monotonic()
            for i in range(self.config["stream_readers"]):
                readers.append(subprocess.Popen(reader))
                if i == 3:
                    asked = time.monotonic()
                    process = subprocess.Popen(writer)
                    watcher = threading.Thread(
                        target=lambda p=process, t=asked: (p.wait(), waited.append(time.monotonic() - t)))
                    watcher.start()
                time.sleep(max(0.0, start + 0.25 * (i + 1) - time.monotonic()))
            watcher.join()
            if process.returncode != 0:
                raise RuntimeError(f"{contender}: the writer failed")
            for r in readers:
                if r.wait() != 0:
                    raise RuntimeError(f"{contender}: a reader failed")
        finally:
            for r in readers:
                stop(r)
        return waited[0] * 1000

    def writer_wait(self):
        contenders = ["flock", "fasten"]
        samples = {c: [] for c in contenders}
        for r in range(self.config["stream_reps"]):
            for c in rotated(contenders, r):
                samples[c].append(self.writer_wait_once(c))
        return {
            "unit": "ms",
            "what": "how long a writer waits while readers arrive every 0.25 s and hold 0.6 s each "
            f"({self.config['stream_readers']} readers; flock(1) -s/-x against fasten read/write)",
            "contenders": {c: summary(samples[c]) for c in contenders},
            "ratios": {"fasten/flock": ratio_summary(samples["fasten"], samples["flock"])},
        }

    # --- 8. start-up: --version and --help -----------------------------------------

    def start(self):
        """What a program costs before it does anything: --version and --help,
        spawned and reaped, fasten's against flock(1)'s."""
        runs = {
            "fasten --version": [self.fasten, "--version"],
            "flock --version": [FLOCK, "--version"],
            "fasten --help": [self.fasten, "--help"],
            "flock --help": [FLOCK, "--help"],
        }
        names = list(runs)
        times = {name: [] for name in names}
        file_actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 1)]
        for r in range(-10, self.config["start_rounds"]):
            for name in rotated(names, r):
                start = time.perf_counter_ns()
                pid = os.posix_spawn(runs[name][0], runs[name], os.environ, file_actions=file_actions)
                _, status = os.waitpid(pid, 0)
                if status != 0:
                    raise RuntimeError(f"{name} failed")
                if r >= 0:
                    times[name].append(time.perf_counter_ns() - start)
        return {
            "unit": "us",
            "what": "wall time of --version and --help, spawn to reap",
            "contenders": {name: summary(times[name], 1e3) for name in names},
            "ratios": {
                f"fasten/flock {option}": ratio_summary(times[f"fasten {option}"], times[f"flock {option}"])
                for option in ("--version", "--help")
            },
        }

    # --- 9. a counting semaphore: many short jobs, a few at a time -----------------

    def slots_argv(self, contender, slots):
        """argv that runs one 50 ms job in one of `slots` slots."""
        job = [SLEEP, "0.05"]
        if contender == "none":
            return job
        if contender == "fasten":
            # -q: no waiting line, which a waiter on a terminal would draw after a second.
            return [self.fasten, "exclusive", "-q", "--slots", str(slots), self.lock_path("slots-fasten"), "--", *job]
        if contender == "flock":
            return [BASH, self.slots_script, self.slots_dir, str(slots), *job]
        if contender == "sem":
            # --fg: sem waits for its slot, runs the job and exits when it ends,
            # as the others do (without it, sem leaves the job in the background).
            return [SEM, "--will-cite", "--fg", "--id", "bench", "-j", str(slots), *job]
        raise ValueError(contender)

    def slots_batch(self, argv, jobs):
        """Starts `jobs` copies of argv at once and reaps them all. Returns the
        wall time from the first start to the last exit (ns) and the CPU time,
        user + system, of everything they ran (s): getrusage(RUSAGE_CHILDREN)
        counts each child reaped here with every descendant it reaped itself,
        threads included (fasten's waiting threads, sem's forked job, the
        script's flock(1) and the sleeps)."""
        file_actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, self.devnull, 1)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = now_ns()
        pending = []
        try:
            for _ in range(jobs):
                pending.append(os.posix_spawn(argv[0], argv, self.slots_env, file_actions=file_actions))
            while pending:
                reap(pending[0], " ".join(argv))
                pending.pop(0)
        finally:
            for pid in pending:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
        wall = now_ns() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return wall, cpu

    def slots(self):
        """`jobs` jobs of 50 ms started at once, `slots` at a time, under
        `fasten exclusive --slots`, a hand-rolled flock(1) script (try each slot
        file with -n, then block on a random one) and GNU parallel's `sem -j`;
        and the same jobs with no semaphore at all, for what the jobs
        themselves cost. Each contender also runs one job alone, so that the
        CPU of a batch splits into start-up (jobs x one job alone) and waiting
        (the rest)."""
        jobs, slots = self.config["slots_jobs"], self.config["slots_count"]
        self.slots_dir = os.path.join(self.dir, "slots-flock")
        os.makedirs(self.slots_dir, exist_ok=True)
        # sem keeps its semaphores in $PARALLEL_HOME/semaphores: here, not in ~/.parallel.
        self.slots_env = dict(os.environ, PARALLEL_HOME=os.path.join(self.dir, "parallel"))
        contenders = ["none", "fasten", "flock", "sem"]
        skipped = {}
        if not os.access(SEM, os.X_OK):
            if not self.args.quick:
                raise RuntimeError(f"{SEM} is missing: install Debian's parallel (scripts/bench does)")
            contenders.remove("sem")
            skipped["sem"] = f"{SEM} is not installed (the quick run does not install it)"
        argvs = {c: self.slots_argv(c, slots) for c in contenders}
        rounds = (jobs + slots - 1) // slots
        ideal_ns = rounds * 50e6  # every slot busy all the time, nothing lost between jobs
        walls = {c: [] for c in contenders}
        cpus = {c: [] for c in contenders}
        solo = {c: [] for c in contenders}
        for r in range(-1, self.config["slots_solo_reps"]):  # a round of warm-up: perl reads all of sem
            for c in rotated(contenders, r):
                cpu = self.slots_batch(argvs[c], 1)[1]
                if r >= 0:
                    solo[c].append(cpu)
        for r in range(self.config["slots_reps"]):
            for c in rotated(contenders, r):
                wall, cpu = self.slots_batch(argvs[c], jobs)
                walls[c].append(wall)
                cpus[c].append(cpu)
        names = {
            "none": "no semaphore",
            "fasten": f"fasten --slots {slots}",
            "flock": "flock(1) scan script",
            "sem": f"sem -j {slots}",
        }
        contended = [c for c in contenders if c != "none"]
        ratios = {}
        for peer in ("flock", "sem"):
            if peer in contenders:
                ratios[f"fasten/{peer}"] = ratio_summary(walls["fasten"], walls[peer])
                ratios[f"fasten/{peer} CPU"] = ratio_summary(cpus["fasten"], cpus[peer])
        return {
            "unit": "ms",
            "what": f"{jobs} jobs of 50 ms (/bin/sleep 0.05) started at once, {slots} at a time; "
            f"ideal {ideal_ns / 1e6:.0f} ms ({rounds} x 50 ms); CPU = user + system of every "
            "process of the batch (getrusage RUSAGE_CHILDREN), the jobs' own included",
            "ideal_ms": ideal_ns / 1e6,
            "contenders": {names[c]: summary(walls[c], 1e6) for c in contenders},
            "wall/ideal": {names[c]: summary(walls[c], ideal_ns) for c in contended},
            "cpu seconds": {names[c]: summary(cpus[c]) for c in contenders},
            "cpu seconds of one job alone": {names[c]: summary(solo[c]) for c in contenders},
            "cpu seconds waiting": {
                names[c]: percentile(cpus[c], 50) - jobs * percentile(solo[c], 50) for c in contended
            },
            "skipped": skipped,
            "ratios": ratios,
        }

    # --- 10. a wave of freed slots --------------------------------------------------

    def wave_once(self, contender, count):
        """`count` holders end together (their commands read one pipe, whose
        write end the driver closes) while `count` waiters wait: the time from
        that close until the last waiter's command has started. fasten: count
        holders and count waiters of --slots count; flock(1): one `flock -x`
        holder and count `flock -s` waiters, released at once."""
        lock = self.lock_path(f"wave-{contender}")
        if os.path.exists(lock):
            os.unlink(lock)
        if contender == "fasten":
            def wrap(command):
                return [self.fasten, "exclusive", "-q", "--slots", str(count), lock, "--", *command]
            holders, waiter_argv = count, wrap([self.helper, "clock"])
            holder_argv = wrap([self.helper, "clock", "--wait"])
        else:
            holders, waiter_argv = 1, [FLOCK, "-s", lock, self.helper, "clock"]
            holder_argv = [FLOCK, "-x", lock, self.helper, "clock", "--wait"]
        gate_read, gate_write = os.pipe()
        ready_read, ready_write = os.pipe()
        stamps_read, stamps_write = os.pipe()
        pids = []
        try:
            actions = [(os.POSIX_SPAWN_DUP2, gate_read, 0), (os.POSIX_SPAWN_DUP2, ready_write, 1)]
            for _ in range(holders):
                pids.append(os.posix_spawn(holder_argv[0], holder_argv, os.environ, file_actions=actions))
            os.close(ready_write)
            ready_write = -1
            read_lines(ready_read, holders, "ready", contender + " holders")
            actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, stamps_write, 1)]
            waiters = [os.posix_spawn(waiter_argv[0], waiter_argv, os.environ, file_actions=actions)
                       for _ in range(count)]
            pids.extend(waiters)
            os.close(stamps_write)
            stamps_write = -1
            wait_until_asleep(waiters)
            released = now_ns()
            os.close(gate_write)
            gate_write = -1
            stamps = read_lines(stamps_read, count, None, contender + " waiters")
            for pid in pids:
                reap(pid, contender)
            pids = []
            return max(int(stamp) for stamp in stamps) - released
        finally:
            for fd in (gate_read, gate_write, ready_read, ready_write, stamps_read, stamps_write):
                if fd >= 0:
                    os.close(fd)
            for pid in pids:
                os.kill(pid, 9)
                os.waitpid(pid, 0)

    def slot_wave(self):
        count = self.config["wave_count"]
        contenders = ["flock", "fasten"]
        times = {c: [] for c in contenders}
        for r in range(-1, self.config["wave_reps"]):
            for c in rotated(contenders, r):
                elapsed = self.wave_once(c, count)
                if r >= 0:
                    times[c].append(elapsed)
        return {
            "unit": "ms",
            "what": f"{count} holders end together; until {count} waiting holders' commands have all started",
            "count": count,
            "contenders": {f"fasten --slots {count}" if c == "fasten" else f"flock -s x {count}":
                           summary(times[c], 1e6) for c in contenders},
            "ratios": {"fasten/flock": ratio_summary(times["fasten"], times["flock"])},
        }

    # --- 11. threads of a slot waiter -------------------------------------------------

    def waiter_threads(self, argv, lock, count):
        """Threads of `argv` while it waits for `lock`, whose slot bytes (all
        of them, for fasten: 2^62 + 1024 on, `count` bytes) or whole file a
        Python process holds: the most that /proc/PID/status shows once the
        waiter sleeps, read until it has not changed for 0.3 s."""
        holder = subprocess.Popen(
            [PYTHON, "-c", "import fcntl, os, sys\n"
             "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
             "fcntl.lockf(fd, fcntl.LOCK_EX, int(sys.argv[2]), int(sys.argv[3]))\n"
             "print('ready', flush=True)\n"
             "sys.stdin.read()\n", lock, str(count), str(2**62 + 1024 if count else 0)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        waiter = None
        try:
            if holder.stdout.readline() != b"ready\n":
                raise RuntimeError("the slot holder did not start")
            waiter = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            wait_until_asleep([waiter.pid])
            most, last, steady = 0, None, time.monotonic()
            deadline = time.monotonic() + 30
            while time.monotonic() - steady < 0.3:
                threads = read_kb(f"/proc/{waiter.pid}/status", ["Threads"])["Threads"]
                if threads != last:
                    last, steady = threads, time.monotonic()
                most = max(most, threads)
                if time.monotonic() > deadline:
                    raise RuntimeError("the waiter's threads never settled")
                time.sleep(0.01)
            return most
        finally:
            stop(waiter)
            holder.stdin.close()
            holder.wait()

    def slot_threads(self):
        rows = {}
        for n in self.config["threads_counts"]:
            lock = self.lock_path(f"threads-{n}")
            argv = [self.fasten, "exclusive", "-q", "--slots", str(n), lock, "--", TRUE]
            rows[f"fasten --slots {n}"] = self.waiter_threads(argv, lock, n)
        lock = self.lock_path("threads-flock")
        rows["flock"] = self.waiter_threads([FLOCK, lock, TRUE], lock, 0)
        fasten_rows = [v for k, v in rows.items() if k != "flock"]
        return {
            "unit": "threads",
            "what": "threads of one process waiting for any of N slots (/proc/PID/status)",
            "threads": rows,
            "ratios": {"fasten threads, most": {"median": max(fasten_rows)}},
        }


def read_lines(fd, count, expected, what, timeout=120.0):
    """`count` lines from the pipe `fd`, each `expected` if that is given."""
    data, deadline = b"", time.monotonic() + timeout
    while data.count(b"\n") < count:
        got = data.count(b"\n")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: {got} of {count} lines")
        chunk = os.read(fd, 65536)
        if not chunk:
            raise RuntimeError(f"{what}: the pipe closed after {got} of {count} lines")
        data += chunk
    lines = data.decode().split()
    if expected is not None and any(line != expected for line in lines):
        raise RuntimeError(f"{what} said {lines!r}")
    return lines


def stop(process):
    """Kills and reaps a Popen that is still running (after a failure)."""
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


def read_kb(path, keys):
    values = {}
    with open(path) as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in keys:
                values[name] = int(rest.split()[0])
    missing = set(keys) - set(values)
    if missing:
        raise RuntimeError(f"{path} has no {', '.join(sorted(missing))}")
    return values


# --- the machine ----------------------------------------------------------------


def first_line(argv):
    try:
        out = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=10)
        return out.stdout.splitlines()[0].strip() if out.stdout else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def cpu_idle_percent(seconds=1.0):
    """How idle the machine's CPUs were over the next `seconds` (from
    /proc/stat): other work on the machine makes every figure noisier."""

    def sample():
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
        return fields[3] + fields[4], sum(fields[:8])  # idle + iowait, total

    idle0, total0 = sample()
    time.sleep(seconds)
    idle1, total1 = sample()
    return 100.0 * (idle1 - idle0) / max(1, total1 - total0)


def machine(bench, root):
    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = first_line(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    dirty = first_line(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", "src", "meson.build"])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "os": first_line(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "compiler": first_line(["c++", "--version"]),
        "fasten": first_line([bench.fasten, "--version"]),
        "flock": first_line([FLOCK, "--version"]),
        "fasteners": first_line(["dpkg-query", "-W", "-f", "${Version}", "python3-fasteners"]),
        "commit": commit + ("+changes" if dirty else ""),
        "loadavg_before": open("/proc/loadavg").read().split()[:3],
        "cpu_idle_before_percent": round(cpu_idle_percent(), 1),
    }


# --- the report -------------------------------------------------------------------


def fmt(value):
    size = abs(value)
    if size >= 1000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def spread(s):
    return f"{fmt(s['p10'])}–{fmt(s['p90'])}"


def ratio_text(r):
    if "p10" in r:
        return f"{r['median']:.2f}× ({r['p10']:.2f}–{r['p90']:.2f})"
    return f"{r['median']:.3f}×" if r["median"] < 0.1 else f"{r['median']:.2f}×"


def table(results, config):
    lines = []

    def section(title):
        lines.append("")
        lines.append(title)

    def row(name, s, unit, extra=""):
        lines.append(f"  {name:<22} {fmt(s['median']):>10} {unit:<4} p10–p90 {spread(s):<20}{extra}")

    figs = results["figures"]
    if "overhead" in figs:
        f = figs["overhead"]
        section(f"1. Wrapper overhead, uncontended ({config['overhead_rounds']} runs each, spawn to reap)")
        for name, s in f["contenders"].items():
            row(name, s, "µs")
        for name, s in f["excess over /bin/true"].items():
            row(f"{name} − /bin/true", s, "µs")
        lines.append(f"  ratio fasten/flock:        {ratio_text(f['ratios']['fasten/flock'])}"
                     f"   (excess over /bin/true: {ratio_text(f['ratios']['fasten/flock excess'])})")
        lines.append(f"  ratio fasten/floor:        {ratio_text(f['ratios']['fasten/floor'])}")
    if "contended" in figs:
        f = figs["contended"]
        section(f"2. Contended throughput: {f['what']}, {config['contended_reps']} batches each")
        for name, s in f["contenders"].items():
            row(name, s, "ms", f"  {f['runs per second'][name]:.0f} runs/s")
        lines.append(f"  ratio fasten/flock:        {ratio_text(f['ratios']['fasten/flock'])}")
        lines.append(f"  ratio fasten/floor:        {ratio_text(f['ratios']['fasten/floor'])}")
    if "cmd-handoff" in figs:
        f = figs["cmd-handoff"]
        section(f"3. Command hand-off: holder's command exits -> waiter's command starts "
                f"({config['cmd_handoff_reps']} each)")
        for name, s in f["contenders"].items():
            row(name, s, "µs", f"  p99 {fmt(s['p99'])}")
        lines.append(f"  ratio fasten/flock:        {ratio_text(f['ratios']['fasten/flock'])}")
        lines.append(f"  ratio fasten/floor:        {ratio_text(f['ratios']['fasten/floor'])}")
    if "lib-handoff" in figs:
        f = figs["lib-handoff"]
        section("4. Library hand-off: release -> acquire returns in another process")
        for name, s in f["contenders"].items():
            lines.append(f"  {name:<27} {fmt(s['median']):>8} µs  p10–p90 {spread(s):<16} p99 {fmt(s['p99']):>7}  (n={s['n']})")
        r = f["ratios"]
        for placement in f["placements"]:
            lines.append(f"  libfasten/raw flock(2), {placement + ':':<10} p50 {ratio_text(r['fasten/flock p50 ' + placement])}"
                         f"  p99 {ratio_text(r['fasten/flock p99 ' + placement])}")
            lines.append(f"  libfasten/raw OFD fcntl, {placement + ':':<9} p50 {ratio_text(r['fasten/ofd p50 ' + placement])}"
                         f"  p99 {ratio_text(r['fasten/ofd p99 ' + placement])}")
            lines.append(f"  a slot/libfasten, {placement + ':':<16} p50 {ratio_text(r['slot/fasten p50 ' + placement])}"
                         f"  p99 {ratio_text(r['slot/fasten p99 ' + placement])}")
        lines.append(f"  libfasten/fasteners:                p50 {ratio_text(r['fasten/fasteners p50'])}"
                     f"  p99 {ratio_text(r['fasten/fasteners p99'])}"
                     f"  (fasteners is {1 / r['fasten/fasteners p50']['median']:.0f}× slower at p50)")
    if "many" in figs:
        f = figs["many"]
        section(f"5. Many waiters: time per hand-off when N queue at once (median of {config['many_reps']} runs per N)")
        names = list(next(iter(f["by_n"].values()))["contenders"])
        lines.append("  " + f"{'N':>5}  " + "".join(f"{n:>16}" for n in names) + "   lib f/fl  cmd f/fl")
        for count, entry in f["by_n"].items():
            cells = "".join(f"{fmt(entry['contenders'][n]['median']):>13} µs" for n in names)
            rl = entry["ratios"]["lib fasten/flock"]["median"]
            rc = entry["ratios"]["cmd fasten/flock"]["median"]
            lines.append(f"  {count:>5}  {cells}   {rl:>7.2f}×  {rc:>7.2f}×")
    if "memory" in figs:
        f = figs["memory"]
        section(f"6. Memory of the wrapper while its command runs ({config['memory_reps']} each)")
        for name, s in f["detail"].items():
            lines.append(f"  {name:<10} peak RSS (VmHWM) {s['VmHWM']['median']:>7.0f} kB   RSS {s['VmRSS']['median']:>6.0f} kB"
                         f"   PSS {s['Pss']['median']:>6.0f} kB   private dirty {s['Private_Dirty']['median']:>6.0f} kB")
        lines.append(f"  ratio fasten/flock:        peak RSS {ratio_text(f['ratios']['fasten/flock'])}"
                     f"   private dirty {ratio_text(f['ratios']['fasten/flock Private_Dirty'])}")
        lines.append(f"  ratio fasten/floor:        peak RSS {ratio_text(f['ratios']['fasten/floor'])}")
    if "writer-wait" in figs:
        f = figs["writer-wait"]
        section(f"7. A writer under a stream of readers ({config['stream_readers']} readers, every 0.25 s, "
                f"each holding 0.6 s; {config['stream_reps']} each)")
        for name, s in f["contenders"].items():
            row(name, s, "ms")
        lines.append(f"  ratio fasten/flock:        {ratio_text(f['ratios']['fasten/flock'])}")
    if "start" in figs:
        f = figs["start"]
        section(f"8. Start-up: --version and --help ({config['start_rounds']} runs each, spawn to reap)")
        for name, s in f["contenders"].items():
            row(name, s, "µs")
        for key, r in f["ratios"].items():
            lines.append(f"  ratio {key + ':':<20} {ratio_text(r)}")
    if "slots" in figs:
        f = figs["slots"]
        section(f"9. A counting semaphore: {config['slots_jobs']} jobs of 50 ms at once, {config['slots_count']} at a "
                f"time (ideal {fmt(f['ideal_ms'])} ms; {config['slots_reps']} batches each)")
        for name, s in f["contenders"].items():
            c = f["cpu seconds"][name]
            extra = f"  CPU {fmt(c['median'])} s ({spread(c)})"
            if name in f["wall/ideal"]:
                extra = f"  {f['wall/ideal'][name]['median']:.2f}× ideal" + extra
                extra += f", waiting {fmt(f['cpu seconds waiting'][name])} s"
            row(name, s, "ms", extra)
        for name, s in f["cpu seconds of one job alone"].items():
            lines.append(f"  one job alone, {name + ':':<22} CPU {fmt(s['median'] * 1e3)} ms")
        for key, r in f["ratios"].items():
            lines.append(f"  ratio {key + ':':<20} {ratio_text(r)}")
        for name, why in f["skipped"].items():
            lines.append(f"  {name} skipped: {why}")
    if "slot-wave" in figs:
        f = figs["slot-wave"]
        section(f"10. A wave of freed slots: {f['what']} ({config['wave_reps']} each)")
        for name, s in f["contenders"].items():
            row(name, s, "ms")
        lines.append(f"  ratio fasten/flock:        {ratio_text(f['ratios']['fasten/flock'])}")
    if "slot-threads" in figs:
        f = figs["slot-threads"]
        section("11. Threads of one waiter for any of N slots (/proc/PID/status, most seen while it waits)")
        for name, threads in f["threads"].items():
            lines.append(f"  {name:<22} {threads:>10} threads")
    if "etcd" in figs:
        section(f"12. etcd: one hold ({config['etcd_reps']} each) and 2 clients x {config['etcd_holds']} holds "
                f"({config['etcd_batch_reps']} batches each), against etcdctl lock on one local member")
        lines.extend(bench_etcd.table_lines(figs["etcd"], config, fmt, spread, ratio_text))
    if results["targets"]:
        section("Targets (reported, not asserted)")
        for t in results["targets"]:
            mark = "met    " if t["met"] else "NOT met"
            lines.append(f"  [{mark}] {t['target']}: {t['value']:.3g}× (bound {t['comparison']} {t['bound']})")
    if results["errors"]:
        section("Errors")
        for name, error in results["errors"].items():
            lines.append(f"  {name}: {error}")
    return "\n".join(lines).lstrip("\n")


def targets(figures):
    out = []
    for figure, key, comparison, bound, text in TARGETS:
        if figure not in figures or key not in figures[figure]["ratios"]:
            continue
        value = figures[figure]["ratios"][key]["median"]
        met = value <= bound if comparison == "<=" else value >= bound
        out.append({"figure": figure, "target": text, "ratio": key, "value": value,
                    "comparison": comparison, "bound": bound, "met": met})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", required=True, help="the release build that holds fasten and tests/bench")
    parser.add_argument("--fasten", help="measure this fasten binary instead of BUILD_DIR/fasten")
    parser.add_argument("--quick", action="store_true", help="few repetitions, small N: a smoke test")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    parser.add_argument("--only", metavar="FIGURES", help="comma-separated subset of: " + ", ".join(FIGURES))
    args = parser.parse_args()
    config = QUICK if args.quick else FULL
    only = args.only.split(",") if args.only else FIGURES
    unknown = [f for f in only if f not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {', '.join(unknown)}; choose from {', '.join(FIGURES)}")
    selected = [f for f in FIGURES if f in only]

    root = os.path.dirname(os.path.dirname(HERE))
    bench = Bench(args, config)
    results = {"mode": "quick" if args.quick else "full", "config": config,
               "machine": machine(bench, root), "figures": {}, "errors": {}}
    methods = {"overhead": bench.overhead, "contended": bench.contended, "cmd-handoff": bench.cmd_handoff,
               "lib-handoff": bench.lib_handoff, "many": bench.many, "memory": bench.memory,
               "writer-wait": bench.writer_wait, "start": bench.start, "slots": bench.slots,
               "slot-wave": bench.slot_wave, "slot-threads": bench.slot_threads,
               "etcd": lambda: bench_etcd.measure(bench, config, summary, ratio_summary, rotated)}
    started = time.monotonic()
    try:
        for name in selected:
            log(f"bench: {name}...")
            t0 = time.monotonic()
            try:
                results["figures"][name] = methods[name]()
            except Exception as error:  # one figure failing must not hide the others
                results["errors"][name] = f"{type(error).__name__}: {error}"
                log(f"bench: {name} failed: {error}")
            log(f"bench: {name} took {time.monotonic() - t0:.1f} s")
    finally:
        bench.close()
    results["seconds"] = round(time.monotonic() - started, 1)
    results["machine"]["loadavg_after"] = open("/proc/loadavg").read().split()[:3]
    results["targets"] = targets(results["figures"])
    missing = [f for f in selected if f not in results["figures"]]
    results["complete"] = not missing

    m = results["machine"]
    print(f"fasten benchmarks ({results['mode']}): {m['fasten']} at {m['commit']}; {m['flock']}; "
          f"fasteners {m['fasteners']}")
    print(f"{m['nproc']} × {m['cpu']}, Linux {m['kernel']}, {m['compiler']}; "
          f"CPUs {m['cpu_idle_before_percent']:.0f}% idle just before; "
          f"load {' '.join(m['loadavg_before'])} before, {' '.join(m['loadavg_after'])} after; "
          f"{results['seconds']} s")
    if m["cpu_idle_before_percent"] < 80:
        print("warning: the machine was busy when the run started: expect noisy figures")
    print()
    print(table(results, config))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
    if missing:
        log(f"bench: no figure for {', '.join(missing)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
