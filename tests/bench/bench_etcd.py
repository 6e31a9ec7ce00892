"""The etcd figure of tests/bench/bench.py: fasten's etcd locks against
etcdctl's own (`etcdctl lock NAME COMMAND`, Go and gRPC), on one etcd member
of its own on loopback, started here and stopped at the end.

  one hold     `fasten exclusive etcd://127.0.0.1:PORT/x true` vs
               `etcdctl lock x true`, spawned and reaped here: wall time, CPU
               time (user + system of the process and what it waited for) and
               peak RSS (GNU time's %M), each as a ratio fasten/etcdctl
  two clients  2 processes x 25 holds of one lock, one after the other in each:
               wall time for all 50

Skipped, with the reason, where etcd, etcdctl or fasten-etcd is missing.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
TIME = "/usr/bin/time"  # GNU time (Debian's time), for peak RSS


def free_ports(count):
    """`count` free loopback ports, below the ephemeral ones (tests/helpers/free-ports.py)."""
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers", "free-ports.py")
    return [int(port) for port in subprocess.check_output([sys.executable, helper, str(count)]).split()]


class Member:
    """One etcd member on loopback, in a directory of its own."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="fasten-bench-etcd-")
        client, peer = free_ports(2)
        self.endpoint = f"127.0.0.1:{client}"
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.process = subprocess.Popen(
            [ETCD, "--name", "bench", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", f"http://{self.endpoint}", "--advertise-client-urls", f"http://{self.endpoint}",
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"bench=http://127.0.0.1:{peer}"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.env = dict(os.environ, ETCDCTL_API="3", ETCDCTL_ENDPOINTS=self.endpoint)
        for name in ("ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY", "ETCDCTL_USER", "ETCDCTL_PASSWORD"):
            self.env.pop(name, None)
        deadline = time.monotonic() + 30
        while subprocess.run([ETCDCTL, "get", "nothing"], env=self.env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise RuntimeError("etcd did not start")
            time.sleep(0.05)

    def close(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_once(argv, env, devnull):
    """Wall ns, CPU s and peak RSS kB of one run, spawn to reap."""
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                                             (os.POSIX_SPAWN_DUP2, devnull, 1)])
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter_ns() - start
    if status != 0:
        raise RuntimeError(f"{' '.join(argv)} failed with {status}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def peak_rss(argv, env, devnull):
    """Peak RSS in kB of one run of argv, from GNU time."""
    with tempfile.NamedTemporaryFile("r") as out:
        run_once([TIME, "-f", "%M", "-o", out.name, *argv], env, devnull)
        return int(out.read().split()[-1])


def measure(bench, config, summary, ratio_summary, rotated):
    fasten_etcd = os.path.join(os.path.dirname(bench.fasten), "fasten-etcd")
    for path, why in ((ETCD, "etcd is not installed (etcd-server)"),
                      (ETCDCTL, "etcdctl is not installed (etcd-client)"),
                      (fasten_etcd, "this build has no fasten-etcd (-Detcd=disabled)")):
        if not os.access(path, os.X_OK):
            return {"unit": "ms", "what": "skipped", "skipped": why, "contenders": {}, "ratios": {}}
    member = Member()
    try:
        return measure_on(member, bench, config, summary, ratio_summary, rotated)
    finally:
        member.close()


def measure_on(member, bench, config, summary, ratio_summary, rotated):
    argvs = {
        "fasten": [bench.fasten, "exclusive", f"etcd://{member.endpoint}/bench-one", "/bin/true"],
        "etcdctl": [ETCDCTL, "lock", "bench-one-etcdctl", "/bin/true"],
    }
    contenders = list(argvs)
    samples = {c: [] for c in contenders}
    for r in range(-3, config["etcd_reps"]):  # 3 rounds of warm-up
        for c in rotated(contenders, r):
            sample = run_once(argvs[c], member.env, bench.devnull)
            if r >= 0:
                samples[c].append(sample)
    walls = {c: [s[0] for s in samples[c]] for c in contenders}
    cpus = {c: [s[1] * 1e9 for s in samples[c]] for c in contenders}
    # Peak RSS through GNU time: a child spawned from this Python starts with
    # Python's own peak RSS in its rusage, one that time forks with time's.
    rss = {c: [] for c in contenders}
    for r in range(config["etcd_rss_reps"] if os.access(TIME, os.X_OK) else 0):
        for c in rotated(contenders, r):
            rss[c].append(peak_rss(argvs[c], member.env, bench.devnull))
    holds, clients = config["etcd_holds"], 2
    batches = {c: [] for c in contenders}
    for r in range(config["etcd_batch_reps"]):
        for c in rotated(contenders, r):
            argv = [bench.helper, "loop", str(holds), *argvs[c][:-2], argvs[c][-2] + "-batch", "/bin/true"]
            start = time.perf_counter_ns()
            pids = [os.posix_spawn(argv[0], argv, member.env,
                                   file_actions=[(os.POSIX_SPAWN_DUP2, bench.devnull, 1)])
                    for _ in range(clients)]
            for pid in pids:
                _, status = os.waitpid(pid, 0)
                if status != 0:
                    raise RuntimeError(f"{c}: a client of the batch failed")
            batches[c].append(time.perf_counter_ns() - start)
    return {
        "unit": "ms",
        "what": "one hold of an etcd lock around /bin/true, one local member",
        "contenders": {c: summary(walls[c], 1e6) for c in contenders},
        "cpu ms": {c: summary(cpus[c], 1e6) for c in contenders},
        "peak RSS kB": {c: summary(rss[c]) for c in contenders if rss[c]},
        "batch ms": {c: summary(batches[c], 1e6) for c in contenders},
        "batch": f"{clients} clients x {holds} holds",
        "ratios": {
            "fasten/etcdctl wall": ratio_summary(walls["fasten"], walls["etcdctl"]),
            "fasten/etcdctl CPU": ratio_summary(cpus["fasten"], cpus["etcdctl"]),
            **({"fasten/etcdctl peak RSS": ratio_summary(rss["fasten"], rss["etcdctl"])} if rss["fasten"] else {}),
            "fasten/etcdctl batch": ratio_summary(batches["fasten"], batches["etcdctl"]),
        },
    }


def table_lines(f, config, fmt, spread, ratio_text):
    if "skipped" in f:
        return [f"  skipped: {f['skipped']}"]
    lines = []
    for name in f["contenders"]:
        w, c = f["contenders"][name], f["cpu ms"][name]
        m = f["peak RSS kB"].get(name)
        rss = f"   peak RSS {m['median']:>7.0f} kB" if m else "   peak RSS: no /usr/bin/time"
        lines.append(f"  {name:<10} wall {fmt(w['median']):>7} ms ({spread(w)})   CPU {fmt(c['median']):>6} ms"
                     f" ({spread(c)}){rss}")
    for name, s in f["batch ms"].items():
        lines.append(f"  {name:<10} {f['batch']}: {fmt(s['median'])} ms ({spread(s)})")
    for key, r in f["ratios"].items():
        lines.append(f"  ratio {key + ':':<26} {ratio_text(r)}")
    return lines
