#!/usr/bin/env bash
# etcd locks under faults, against a 3-member etcd cluster started here on
# loopback: 8 clients take the same lock 6 times each while the leader is
# killed and restarted, or paused and resumed, or the member every client
# talks to first is paused. Every command logs its start,
# its end (and a SIGTERM) with its fencing token; a checker fails on two
# holders' commands that overlap (unless the first was stopped, and then
# never after its SIGTERM) and on a fencing token that does not grow in start
# order. The figures (acquisitions, overlaps, longest stall, failures and
# their statuses) go to the end of the TAP output.
. "$(dirname "$0")/lib.sh"

require_etcd

cluster_dir=$(mktemp -d "${TMPDIR:-/tmp}/fasten-etcd-faults-XXXXXX")
read -r -a ports < <(python3 "$(dirname "$0")/../helpers/free-ports.py" 6)
export ETCDCTL_API=3
names=(m0 m1 m2)
initial=""
for i in 0 1 2; do
  initial+="${initial:+,}${names[$i]}=http://127.0.0.1:${ports[$((i + 3))]}"
done
ENDPOINTS="127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"

# start_member I: starts member I (on its own data directory, kept across
# restarts); its pid is in $cluster_dir/mI.pid.
start_member() {
  local i=$1 state=${2:-new}
  (
    "$ETCD" --name "${names[$i]}" --data-dir "$cluster_dir/${names[$i]}" \
      --listen-client-urls "http://127.0.0.1:${ports[$i]}" --advertise-client-urls "http://127.0.0.1:${ports[$i]}" \
      --listen-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${ports[$((i + 3))]}" \
      --initial-cluster "$initial" --initial-cluster-state "$state" \
      --heartbeat-interval=50 --election-timeout=500 >>"$cluster_dir/${names[$i]}.log" 2>&1 </dev/null &
    echo $! >"$cluster_dir/${names[$i]}.pid"
  )
}

ctl() {
  "$ETCDCTL" --endpoints="$ENDPOINTS" --dial-timeout=1s --command-timeout=3s "$@"
}

# wait_for_healthy_cluster: until every member answers and one leads; a
# member that a test killed and left dead is started again first.
wait_for_healthy_cluster() {
  local deadline=$((SECONDS + 60)) i
  for i in 0 1 2; do
    kill -0 "$(member_pid "$i")" 2>/dev/null || start_member "$i" existing
  done
  until [ -n "$(leader 2>/dev/null)" ] && ctl endpoint health >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] ||
      fail "the cluster is not healthy: $(ctl endpoint health 2>&1)" "the ends of its members' logs:" \
        "$(tail -n 5 "$cluster_dir"/m*.log)"
    sleep 0.1
  done
}

# leader: the index of the member that leads now (empty if none).
leader() {
  ctl endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["leader"] == s["Status"]["header"]["member_id"]:
        print(["'"${ports[0]}"'", "'"${ports[1]}"'", "'"${ports[2]}"'"].index(s["Endpoint"].rsplit(":", 1)[1]))
        break
'
}

member_pid() {
  cat "$cluster_dir/${names[$1]}.pid"
}

# member_id I: member I's id, in hexadecimal as etcdctl move-leader takes it.
member_id() {
  "$ETCDCTL" --endpoints="127.0.0.1:${ports[$1]}" --dial-timeout=1s --command-timeout=3s \
    endpoint status -w json | python3 -c 'import json, sys
print(format(json.load(sys.stdin)[0]["Status"]["header"]["member_id"], "x"))'
}

# lead_elsewhere I: until member I does not lead, moving the leadership to
# the next member (etcdctl move-leader, asked of member I).
lead_elsewhere() {
  local deadline=$((SECONDS + 30)) next=$((($1 + 1) % 3))
  while [ "$(leader)" = "$1" ]; do
    "$ETCDCTL" --endpoints="127.0.0.1:${ports[$1]}" --dial-timeout=1s --command-timeout=3s \
      move-leader "$(member_id "$next")" >/dev/null 2>&1 || true
    [ "$SECONDS" -lt "$deadline" ] || fail "member $1 still leads"
    sleep 0.1
  done
}

stop_cluster() {
  local i pid
  for i in 0 1 2; do
    pid=$(member_pid "$i" 2>/dev/null) || continue
    kill -CONT "$pid" 2>/dev/null || true
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.02; done
  done
  rm -rf "$cluster_dir"
}
trap stop_cluster EXIT
for i in 0 1 2; do
  start_member "$i"
done

CLIENTS=8
HOLDS=6
# The command: logs start and end, and a SIGTERM, each with the time in ns
# and the fencing token.
COMMAND='trap "echo term \$(date +%s%N) \$FASTEN_FENCING_TOKEN $1 >>\"$2/log\"; exit 3" TERM
echo start $(date +%s%N) $FASTEN_FENCING_TOKEN $1 >>"$2/log"
sleep 0.05
echo end $(date +%s%N) $FASTEN_FENCING_TOKEN $1 >>"$2/log"'
# The same, for a command that runs until it is stopped.
LONG_COMMAND='trap "echo term \$(date +%s%N) \$FASTEN_FENCING_TOKEN $1 >>\"$2/log\"; exit 3" TERM
echo start $(date +%s%N) $FASTEN_FENCING_TOKEN $1 >>"$2/log"
sleep 60 & wait'

# start_workload: CLIENTS clients, each taking the lock HOLDS times in a row
# with a TTL of WORKLOAD_TTL seconds (3 unless set); each invocation's
# status goes to statuses.
start_workload() {
  local c
  workers=()
  for c in $(seq "$CLIENTS"); do
    (
      for _ in $(seq "$HOLDS"); do
        code=0
        "$FASTEN" exclusive --ttl "${WORKLOAD_TTL:-3}" --grace 1 "etcd://$ENDPOINTS/faults" sh -c "$COMMAND" sh "$c" "$PWD" \
          >/dev/null 2>>errors || code=$?
        echo "$code" >>statuses
      done
    ) &
    workers+=($!)
  done
}

finish_workload() {
  local w
  for w in "${workers[@]}"; do
    wait "$w"
  done
}

# starts_reach N SECONDS: whether N commands have started within SECONDS.
starts_reach() {
  local deadline=$((SECONDS + $2))
  until [ "$(grep -c '^start' log 2>/dev/null || echo 0)" -ge "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# wait_for_starts N: until N commands have started.
wait_for_starts() {
  starts_reach "$1" 60 || fail "only $(grep -c '^start' log) commands started"
}

# check FAULT: the checker; prints the figures.
check() {
  python3 - "$1" log statuses <<'PY' >>"$cluster_dir/measurements"
import collections, sys
fault, log, statuses = sys.argv[1:]
holds = collections.OrderedDict()
for line in open(log):
    kind, ns, token, client = line.split()
    h = holds.setdefault((token, client), {"token": int(token)})
    h[kind] = int(ns)
runs = sorted(holds.values(), key=lambda h: h["start"])
problems = []
for a, b in zip(runs, runs[1:]):
    if b["token"] <= a["token"]:
        problems.append(f"token {b['token']} started after token {a['token']}")
# Every earlier command, not only the one before: one that ran long may
# overlap several.
for j, b in enumerate(runs):
    for a in runs[:j]:
        a_end = a.get("end", a.get("term"))
        if (a_end is None or b["start"] < a_end) and ("term" not in a or b["start"] < a["term"]):
            # The times of the earlier hold, from the later one's start, so
            # that a failure tells a late SIGTERM from a command never stopped.
            since = {k: f"{(a[k] - b['start']) / 1e6:+.0f} ms" for k in ("start", "end", "term") if k in a}
            problems.append(f"token {b['token']} started while token {a['token']} ran ({since})")
gaps = [(b["start"] - a.get("end", a.get("term", b["start"]))) / 1e6 for a, b in zip(runs, runs[1:])]
codes = collections.Counter(l.strip() for l in open(statuses))
failed = {c: n for c, n in codes.items() if c != "0"}
print(f"# {fault}: {len(runs)} acquisitions, {len(problems)} overlaps or token inversions, "
      f"longest stall {max(gaps):.0f} ms, failed invocations {sum(failed.values())} {dict(failed)}")
if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
PY
}

test_a_killed_and_restarted_leader_breaks_no_exclusion_and_no_token_order() {
  wait_for_healthy_cluster
  start_workload
  wait_for_starts 8
  local l
  l=$(leader)
  kill -KILL "$(member_pid "$l")"
  wait_for_starts 16
  start_member "$l" existing
  finish_workload
  check "leader SIGKILLed and restarted" 2>check.err || fail "$(cat check.err)"
  # A waiter holds nothing: a lease that may have run out during the
  # election costs it its place in the queue, which it takes again.
  if grep -q "lost its place in the queue" errors; then
    fail "waiters gave up: $(grep "lost its place in the queue" errors)"
  fi
}

# The leader paused for 2 s, with leases of 6 s: a new leader takes over,
# and requests on the paused one hang. The pause stays shorter than any
# lease has left on the paused leader's clock (at least 4 s, renewed every
# 2 s): etcd 3.4.23 (Debian 12's) has the bug of etcd issue 15247, where a
# leader resumed after its leases ran out on its own clock can revoke them
# while they live on the new one, and delete the keys of holders whose
# commands still run. No client can keep its lock through that; the tests
# do not provoke it (see the manual's "Distributed locks and fencing tokens").
test_a_paused_leader_breaks_no_exclusion_and_no_token_order() {
  wait_for_healthy_cluster
  WORKLOAD_TTL=6 start_workload
  wait_for_starts 8
  local l pid
  l=$(leader)
  pid=$(member_pid "$l")
  kill -STOP "$pid"
  # The pause is the fault.
  sleep 2
  kill -CONT "$pid"
  finish_workload
  check "leader paused 2 s (TTL 6 s)" 2>check.err || fail "$(cat check.err)"
}

test_the_queue_moves_on_while_the_member_every_client_talks_to_is_paused() {
  wait_for_healthy_cluster
  start_workload
  wait_for_starts 8
  # Member 0, the first endpoint of every client (and so the member its
  # watches are on), paused for up to 10 s: commands must go on starting
  # on the two members left, not wait for it to come back. A follower: a
  # leader paused for longer than a TTL meets etcd issue 15247 (see the
  # paused leader's test).
  local pid started moved=true
  lead_elsewhere 0
  pid=$(member_pid 0)
  kill -STOP "$pid"
  started=$(grep -c '^start' log)
  starts_reach $((started + 3)) 10 || moved=false
  kill -CONT "$pid"
  finish_workload
  $moved || fail "no 3 commands started in the 10 s that member 0 was paused"
  check "first endpoint paused while the queue moves" 2>check.err || fail "$(cat check.err)"
}

test_a_waiter_killed_while_queued_breaks_no_exclusion_and_no_token_order() {
  wait_for_healthy_cluster
  start_workload
  wait_for_starts 8
  # One more waiter, killed with SIGKILL once queued: it cannot revoke its
  # lease, which etcd lets go after its TTL. Its command would hold on, so
  # that its key stays to be seen even if the queue reaches it first (a
  # command that ended at once could come and go between two looks).
  "$FASTEN" exclusive --ttl 3 "etcd://$ENDPOINTS/faults" sleep 600 >/dev/null 2>&1 &
  local killed=$!
  local deadline=$((SECONDS + 30))
  # Queued: its key, which names its pid, is there.
  until ctl get --prefix faults/ --print-value-only | grep -qF "\"pid\":$killed}"; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the extra waiter did not queue"
    sleep 0.05
  done
  kill -KILL "$killed"
  finish_workload
  wait "$killed" || true
  check "a waiter SIGKILLed while queued" 2>check.err || fail "$(cat check.err)"
}

# watchers_on I: how many watches member I serves (its metrics).
watchers_on() {
  python3 - "${ports[$1]}" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=5).read().decode()
print(next(int(float(l.split()[1])) for l in text.splitlines() if l.startswith("etcd_debugging_mvcc_watcher_total ")))
PY
}

# ttl_left LEASE: the seconds lease LEASE (hexadecimal) has left, as the
# members other than member 0 say (-1 once it has gone).
ttl_left() {
  "$ETCDCTL" --endpoints="127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}" --dial-timeout=1s --command-timeout=3s \
    lease timetolive "$1" -w json | python3 -c 'import json, sys; print(json.load(sys.stdin)["ttl"])'
}

# wait_for_renewals LEASE N: until the time LEASE has left has gone up N
# times (a renewal each), failing if the lease goes first.
wait_for_renewals() {
  local deadline=$((SECONDS + 60)) seen=0 last=-1 left
  while [ "$seen" -lt "$2" ]; do
    left=$(ttl_left "$1") || left=$last
    [ "$left" != -1 ] || fail "lease $1 ran out after $seen renewals"
    [ "$last" = -1 ] || [ "$left" -le "$last" ] || seen=$((seen + 1))
    last=$left
    [ "$SECONDS" -lt "$deadline" ] || fail "lease $1 was renewed $seen times in 60 s"
    sleep 0.05
  done
}

# Member 0, every client's first endpoint, killed while a waiter watches
# through it and a holder renews through it. A follower, so that a leader
# and a quorum remain: the holder keeps its lock, and renews it on the two
# members left. The waiter's watches last up to 600 s (FASTEN_ETCD_RECHECK):
# it gets the lock once the holder lets go only because the broken watch
# made it look again at once, through a member that answers, and watch
# there; a waiter that noticed only at the re-check would wait 600 s.
test_a_member_that_dies_moves_the_waiter_s_watch_and_the_holder_s_renewals_on_at_once() {
  wait_for_healthy_cluster
  lead_elsewhere 0
  local lock="etcd://$ENDPOINTS/relook" watchers code=0
  mkfifo holder.fifo
  "$FASTEN" exclusive --ttl 6 "$lock" sh -c 'echo "$ETCD_LOCK_KEY" >key.tmp; mv key.tmp key; read -r _ <holder.fifo' \
    >/dev/null 2>holder.err &
  local holder=$!
  wait_for_file key 60
  watchers=$(watchers_on 0)
  FASTEN_ETCD_RECHECK=600 "$FASTEN" exclusive --ttl 6 "$lock" sh -c 'echo got it >waiter.out' \
    >/dev/null 2>waiter.err &
  local waiter=$!
  # Its watch is on member 0: one more watcher there.
  local deadline=$((SECONDS + 60))
  until [ "$(watchers_on 0)" -gt "$watchers" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "no watch on member 0 ($(cat waiter.err))"
    sleep 0.05
  done
  kill -KILL "$(member_pid 0)"
  # The holder's renewals go on elsewhere: the lease's time left goes up
  # twice, as the two members left see it (a keeper stuck on member 0 would
  # lose the lock within the TTL, and its command would be stopped).
  wait_for_renewals "$(sed 's|.*/||' key)" 2
  echo >holder.fifo
  wait "$holder" || code=$?
  expect_eq 0 "$code" "the holder's status ($(cat holder.err))"
  wait_for_line waiter.out "got it" 60
  code=0
  wait "$waiter" || code=$?
  expect_eq 0 "$code" "the waiter's status ($(cat waiter.err))"
  expect_eq "" "$(cat holder.err waiter.err)" "stderr of the holder and the waiter"
}

test_a_client_cut_off_by_a_frozen_proxy_is_stopped_before_the_next_holder_starts() {
  wait_for_healthy_cluster
  # One more client, whose only endpoint is a proxy to a member; the proxy
  # freezes while the workload runs (connections stay open, nothing moves).
  mkdir proxy
  python3 "$(dirname "$0")/../helpers/freezing-proxy.py" "127.0.0.1:${ports[0]}" "$PWD/proxy" \
    </dev/null >/dev/null 2>proxy/err &
  local proxy=$! deadline=$((SECONDS + 30))
  until [ -e proxy/port ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the proxy did not start: $(cat proxy/err)"
    sleep 0.02
  done
  start_workload
  # Its command runs until it is stopped.
  "$FASTEN" exclusive --ttl 3 --grace 1 "etcd://127.0.0.1:$(cat proxy/port)/faults" \
    sh -c "$LONG_COMMAND" sh cut "$PWD" >/dev/null 2>cut-errors &
  local cut=$!
  # Frozen while the cut-off client holds the lock.
  deadline=$((SECONDS + 60))
  until grep -q '^start .* cut$' log 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the client behind the proxy never got the lock"
    sleep 0.02
  done
  kill -USR1 "$proxy"
  finish_workload
  local code=0
  wait "$cut" || code=$?
  kill "$proxy"
  echo "$code" >>statuses
  expect_eq 76 "$code" "the cut-off client's status ($(cat cut-errors))"
  grep -q '^term .* cut$' log || fail "the cut-off client's command got no SIGTERM"
  check "one client cut off by a frozen proxy while it holds" 2>check.err || fail "$(cat check.err)"
}

status=0
run_suite || status=$?
cat "$cluster_dir/measurements" 2>/dev/null || true
exit "$status"
