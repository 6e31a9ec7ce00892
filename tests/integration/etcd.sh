#!/usr/bin/env bash
# Locks in etcd, against a real etcd that this suite starts on loopback with
# its own data directory and ports, and stops at the end. TTLs are short
# (2 s, grace 1 s) to keep the suite fast.
. "$(dirname "$0")/lib.sh"

require_etcd

etcd_dir=$(mktemp -d "${TMPDIR:-/tmp}/fasten-etcd-XXXXXX")
# Ports below the ephemeral range (free-ports.py): etcd binds the first
# two, and nobody listens on the third.
read -r client_port peer_port dead_port < <(python3 "$(dirname "$0")/../helpers/free-ports.py" 3)
export ETCDCTL_API=3
ENDPOINT=127.0.0.1:$client_port
URL=etcd://$ENDPOINT

etcdctl_() {
  "$ETCDCTL" --endpoints="$ENDPOINT" --dial-timeout=1s --command-timeout=2s "$@"
}

# start_etcd: starts etcd (on the same data directory each time, so a restart
# keeps the leases) and returns once it answers. Its pid is in $etcd_dir/pid.
start_etcd() {
  # In a subshell of its own, so that it is nobody's job: its death (killed
  # on purpose) is not reported on the TAP output.
  (
    "$ETCD" --name fasten-test --data-dir "$etcd_dir/data" \
      --listen-client-urls "http://$ENDPOINT" --advertise-client-urls "http://$ENDPOINT" \
      --listen-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-cluster "fasten-test=http://127.0.0.1:$peer_port" \
      --heartbeat-interval=10 --election-timeout=100 >>"$etcd_dir/log" 2>&1 </dev/null &
    echo $! >"$etcd_dir/pid"
  )
  local deadline=$((SECONDS + 20))
  until etcdctl_ get --prefix nothing >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$(cat "$etcd_dir/pid")" 2>/dev/null; then
      echo "Bail out! etcd did not start:"
      sed 's/^/# /' "$etcd_dir/log"
      exit 1
    fi
    sleep 0.05
  done
}

etcd_pid() {
  cat "$etcd_dir/pid"
}

# kill_etcd [SIGNAL]: stops etcd and waits until it is gone.
kill_etcd() {
  local pid
  pid=$(etcd_pid 2>/dev/null) || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill "-${1:-TERM}" "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    sleep 0.02
  done
}
trap 'kill_etcd; rm -rf "$etcd_dir"' EXIT
start_etcd

# keys NAME: the lock's keys, oldest first.
keys() {
  etcdctl_ get --prefix "$1/" --keys-only --sort-by=CREATE --order=ASCEND | sed '/^$/d'
}

# wait_for_keys NAME COUNT: until the lock has COUNT keys (holders and waiters).
wait_for_keys() {
  local deadline=$((SECONDS + 20))
  while [ "$(keys "$1" | wc -l)" -ne "$2" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $2 keys under $1/: $(keys "$1")"
    sleep 0.02
  done
}

# watchers: how many watches etcd serves now (its own gauge, on /metrics),
# over bash's /dev/tcp: quicker to start than any client on a loaded machine.
watchers() {
  local line
  exec 3<>"/dev/tcp/127.0.0.1/$client_port"
  printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$ENDPOINT" >&3
  while IFS= read -r line <&3; do
    case "$line" in
    "etcd_debugging_mvcc_watcher_total "*) line=${line#* } && echo "${line%%[.e]*}" ;;
    esac
  done
  exec 3<&-
}

# wait_for_watchers COUNT: until etcd serves exactly COUNT watches: the
# readiness probe for "a client that watches is waiting now".
wait_for_watchers() {
  local deadline=$((SECONDS + 20))
  until [ "$(watchers)" -eq "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $1 watches on etcd ($(watchers))"
    sleep 0.02
  done
}

# wait_for_renewal LEASE: until etcd has seen LEASE renewed: its time to live
# went up between two looks.
wait_for_renewal() {
  local deadline=$((SECONDS + 20)) least="" left
  while :; do
    left=$(etcdctl_ lease timetolive "$1" | sed -n 's/.*remaining(\(-\{0,1\}[0-9]*\)s).*/\1/p')
    [ -n "$left" ] || fail "no lease $1"
    if [ -n "$least" ] && [ "$left" -gt "$least" ]; then
      return 0
    fi
    [ -n "$least" ] && [ "$least" -le "$left" ] || least=$left
    [ "$SECONDS" -lt "$deadline" ] || fail "lease $1 was not renewed (time to live $left s)"
    sleep 0.05
  done
}

# A command that records when it starts and when it gets SIGTERM (in
# nanoseconds), and runs for a long time otherwise.
LONG_COMMAND='trap "date +%s%N > \"$1/termed\"; exit 3" TERM; date +%s%N > "$1/started"; sleep 30 & wait'
now() { date +%s%N; }

# measured WHAT: a measurement for the summary at the end of the TAP output.
measured() {
  echo "# $*" >>"$etcd_dir/measurements"
}

PROXY=$(dirname "$0")/../helpers/freezing-proxy.py

# start_proxy NAME [OPTION]: a freezing proxy to etcd
# (tests/helpers/freezing-proxy.py) with its files in the directory NAME;
# returns once it listens. Its pid is in $NAME_pid, its port in NAME/port.
# `kill -USR1` freezes it.
start_proxy() {
  mkdir "$1"
  python3 "$PROXY" "$ENDPOINT" "$PWD/$1" ${2:+"$2"} </dev/null >/dev/null 2>"$1/err" &
  local pid=$! deadline=$((SECONDS + 30))
  eval "${1}_pid=$pid"
  until [ -e "$1/port" ]; do
    kill -0 "$pid" 2>/dev/null || fail "the proxy $1 died: $(cat "$1/err")"
    [ "$SECONDS" -lt "$deadline" ] || fail "the proxy $1 did not start: $(cat "$1/err")"
    sleep 0.01
  done
}

# a_cut_off_holder_is_stopped_before_the_next_one_starts N [TTL [SLOTS]]: a
# holder whose URL lists N endpoints, each of them a proxy to the one etcd,
# loses all of them at once (the proxies freeze: connections stay open,
# nothing answers), while a waiter that talks to etcd directly is queued.
# etcd lets the lease run out and the waiter gets the lock; the holder must
# have sent its command SIGTERM before that, whatever N. With SLOTS, they
# are slot holders, and holders that talk to etcd directly fill the other
# slots.
a_cut_off_holder_is_stopped_before_the_next_one_starts() {
  local n=$1 ttl=${2:-3} slots=${3:-} i endpoints="" lock="cut-off-$1${3:+-slots}"
  for i in $(seq "$n"); do
    start_proxy "proxy$i"
    endpoints+="${endpoints:+,}127.0.0.1:$(cat "proxy$i/port")"
  done
  "$FASTEN" exclusive ${slots:+--slots "$slots"} --ttl "$ttl" --grace 1 "etcd://$endpoints/$lock" \
    sh -c "$LONG_COMMAND" sh "$PWD" 2>err &
  local holder=$!
  wait_for_file started
  for i in $(seq 2 "${slots:-1}"); do
    hold "other$i" exclusive "$URL/$lock" --slots "$slots" --ttl 5
  done
  "$FASTEN" exclusive ${slots:+--slots "$slots"} --ttl 2 "$URL/$lock" sh -c 'date +%s%N >"$1/next-started"' sh "$PWD" &
  local waiter=$!
  wait_for_waiters "$URL/$lock" 1
  local frozen
  frozen=$(now)
  for i in $(seq "$n"); do
    kill -USR1 "$(eval echo "\$proxy${i}_pid")"
  done
  for i in $(seq "$n"); do
    wait_for_file "proxy$i/frozen"
  done
  wait_for_exit "$holder" $((ttl * 2 + 10))
  expect_status 76 wait "$holder"
  expect_status 0 wait "$waiter"
  for i in $(seq "$n"); do
    kill "$(eval echo "\$proxy${i}_pid")"
  done
  [ -e termed ] || fail "the holder's command did not get SIGTERM"
  local termed next margin
  termed=$(cat termed)
  next=$(cat next-started)
  margin=$(((next - termed) / 1000000))
  measured "$n endpoint(s) frozen, --ttl $ttl: SIGTERM $(((termed - frozen) / 1000000)) ms after the freeze," \
    "the next holder started $margin ms after that SIGTERM"
  [ "$next" -gt "$termed" ] ||
    fail "the next holder started $((-margin)) ms before the cut-off holder's command got SIGTERM"
  expect_contains "$(cat err)" "fasten: lost the lock etcd://$endpoints/$lock: its lease was not renewed"
  for i in $(seq 2 "${slots:-1}"); do
    release "other$i"
  done
}

test_a_holder_cut_off_from_its_1_endpoint_is_stopped_before_the_next_holder_starts() {
  a_cut_off_holder_is_stopped_before_the_next_one_starts 1
}

test_a_holder_cut_off_from_its_2_endpoints_is_stopped_before_the_next_holder_starts() {
  a_cut_off_holder_is_stopped_before_the_next_one_starts 2
}

test_a_holder_cut_off_from_its_3_endpoints_is_stopped_before_the_next_holder_starts() {
  a_cut_off_holder_is_stopped_before_the_next_one_starts 3
}

test_a_slot_holder_cut_off_from_its_2_endpoints_is_stopped_before_a_waiter_takes_its_slot() {
  a_cut_off_holder_is_stopped_before_the_next_one_starts 2 3 3
}

test_a_holder_keeps_the_lock_when_one_of_its_two_endpoints_goes_silent() {
  start_proxy proxy
  hold holder exclusive "etcd://127.0.0.1:$(cat proxy/port),$ENDPOINT/one-silent" --ttl 3 --grace 1
  kill -USR1 "$proxy_pid"
  wait_for_file proxy/frozen
  # Longer than the TTL: the renewals that go to the silent endpoint first
  # leave time for the other one.
  expect_status 75 "$FASTEN" exclusive -w 4 "$URL/one-silent" true
  release holder
  kill "$proxy_pid"
  expect_eq "" "$(cat holder.err)" "the holder's stderr"
  expect_status 0 "$FASTEN" exclusive -n "$URL/one-silent" true
}

test_w_bounds_the_requests_to_an_etcd_that_does_not_answer_too() {
  # The endpoint accepts connections and never answers: 69 by the end of
  # -w, not of the requests' own timeout (five seconds).
  start_proxy proxy
  kill -USR1 "$proxy_pid"
  wait_for_file proxy/frozen
  local start took
  start=$(now_ms)
  expect_status 69 "$FASTEN" exclusive -w 1 "etcd://127.0.0.1:$(cat proxy/port)/silent-w" touch ran 2>err
  took=$(($(now_ms) - start))
  kill "$proxy_pid"
  [ "$took" -lt 4000 ] || fail "-w 1 took $took ms"
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "fasten: cannot reach etcd: 127.0.0.1:$(cat proxy/port): "
  expect_eq 1 "$(wc -l <err)" "lines on stderr: $(cat err)"
}

test_a_ttl_3_lock_is_acquired_though_the_first_endpoint_hangs() {
  # The first endpoint accepts connections and never answers: the grant
  # waits out that endpoint's share of the request's time before the second
  # endpoint answers. The lease's time counts from the try that got it.
  start_proxy proxy
  kill -USR1 "$proxy_pid"
  wait_for_file proxy/frozen
  local start
  start=$(now_ms)
  local code=0
  "$FASTEN" exclusive --ttl 3 "etcd://127.0.0.1:$(cat proxy/port),$ENDPOINT/first-hangs" touch ran 2>err || code=$?
  expect_eq 0 "$code" "status (stderr: $(cat err))"
  measured "first of 2 endpoints hung, --ttl 3: acquired and ran in $(($(now_ms) - start)) ms"
  kill "$proxy_pid"
  [ -e ran ] || fail "the command did not run"
  expect_eq "" "$(keys first-hangs)" "keys left behind"
}

test_a_lease_lost_while_the_key_is_created_queues_again_and_an_etcd_gone_silent_is_69() {
  # The proxy lets the grant through and freezes at the next request, the
  # key's creation: the lease is not renewed while that request hangs. The
  # waiter, which holds nothing, queues again; etcd answers no new grant.
  start_proxy proxy --freeze-at-second-request
  local start
  start=$(now_ms)
  local code=0
  "$FASTEN" exclusive -v --ttl 2 "etcd://127.0.0.1:$(cat proxy/port)/created" touch ran 2>err || code=$?
  expect_eq 69 "$code" "status (stderr: $(cat err))"
  measured "lease lost while the key was created, --ttl 2: exit 69 after $(($(now_ms) - start)) ms"
  kill "$proxy_pid"
  [ -e proxy/frozen ] || fail "the proxy did not freeze"
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "fasten: lost its place in the queue for etcd://127.0.0.1:$(cat proxy/port)/created (exclusive): its lease was not renewed"
  expect_contains "$(tail -1 err)" "fasten: cannot reach etcd: 127.0.0.1:$(cat proxy/port): "
}

# a_signalled_waiter_leaves_the_queue_at_once SIGNAL: a waiter queued between a
# holder and another waiter gets SIGNAL: it revokes its lease before it dies
# by the signal, so that the waiter behind it starts as soon as the holder
# releases, not once the signalled waiter's lease has run out.
a_signalled_waiter_leaves_the_queue_at_once() {
  local lock="signalled-$1"
  hold holder exclusive "$URL/$lock" --ttl 2
  # env --default-signal: a background job of a script starts with INT
  # ignored. Background processes here keep off the test's stdout, which the
  # runner reads to its end.
  env --default-signal "$FASTEN" exclusive --ttl 20 "$URL/$lock" touch signalled-ran 2>signalled.err >/dev/null &
  local signalled=$!
  wait_for_keys "$lock" 2
  "$FASTEN" exclusive --ttl 2 "$URL/$lock" sh -c 'date +%s%N >"$1/next-started"' sh "$PWD" >/dev/null 2>next.err &
  local next=$!
  wait_for_keys "$lock" 3
  local sent
  sent=$(now)
  kill "-$1" "$signalled"
  local code=0
  wait "$signalled" || code=$?
  expect_eq $((128 + $(kill -l "$1"))) "$code" "the signalled waiter's status"
  local gone=$((($(now) - sent) / 1000000))
  expect_eq 2 "$(keys "$lock" | wc -l)" "keys once the signalled waiter is gone: $(keys "$lock")"
  local released
  released=$(now)
  release holder
  wait_for_exit "$next" 10
  expect_status 0 wait "$next"
  local started=$((($(cat next-started) - released) / 1000000))
  measured "waiter ended by SIG$1 (--ttl 20): gone with its key in $gone ms; the next waiter started $started ms after the release"
  [ ! -e signalled-ran ] || fail "the signalled waiter ran its command"
  expect_eq "" "$(cat signalled.err)" "the signalled waiter's stderr"
  [ "$started" -lt 5000 ] || fail "the next waiter started $started ms after the release"
}

test_a_waiter_ended_by_sigterm_revokes_its_lease_and_dies_by_the_signal() {
  a_signalled_waiter_leaves_the_queue_at_once TERM
}

test_a_waiter_ended_by_sigint_revokes_its_lease_and_dies_by_the_signal() {
  a_signalled_waiter_leaves_the_queue_at_once INT
}

test_a_waiter_ended_by_sighup_revokes_its_lease_and_dies_by_the_signal() {
  a_signalled_waiter_leaves_the_queue_at_once HUP
}

test_a_holder_ended_by_sigterm_releases_before_it_exits() {
  "$FASTEN" exclusive --ttl 20 "$URL/signalled-holder" sh -c "$LONG_COMMAND" sh "$PWD" >/dev/null 2>holder.err &
  local holder=$!
  wait_for_file started
  "$FASTEN" exclusive --ttl 2 "$URL/signalled-holder" sh -c 'date +%s%N >"$1/next-started"' sh "$PWD" >/dev/null 2>next.err &
  local next=$!
  wait_for_keys signalled-holder 2
  local sent
  sent=$(now)
  kill -TERM "$holder"
  expect_status 3 wait "$holder"
  wait_for_exit "$next" 10
  expect_status 0 wait "$next"
  local started=$((($(cat next-started) - sent) / 1000000))
  measured "holder ended by SIGTERM (--ttl 20): the next waiter started $started ms after the signal"
  [ "$started" -lt 5000 ] || fail "the next waiter started $started ms after the signal"
}

test_nothing_the_command_started_outlives_a_killed_fasten() {
  # A grandchild in a session of its own, and an orphan: once fasten is
  # killed, its lease runs out and another may take the lock, so they must
  # be gone first.
  "$FASTEN" exclusive --ttl 20 "$URL/killed-holder" bash -c '
    setsid sleep 60 & echo $! >escaped
    (sleep 60 & echo $! >orphan) &
    wait' >/dev/null 2>&1 &
  local holder=$! process deadline
  wait_for_file escaped
  wait_for_file orphan
  kill -KILL "$holder"
  for process in escaped orphan; do
    deadline=$((SECONDS + 20))
    while kill -0 "$(cat $process)" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$(cat $process)/stat" 2>/dev/null)" != Z ]; do
      [ "$SECONDS" -lt "$deadline" ] || fail "the $process process went on running once fasten was killed"
      sleep 0.01
    done
  done
}

test_eight_concurrent_holders_never_overlap_and_tokens_increase_in_holding_order() {
  local i pids=()
  for i in 1 2 3 4 5 6 7 8; do
    "$FASTEN" exclusive --ttl 2 "$URL/mutex" sh -c '
      mkdir "$1/inside" 2>/dev/null || echo "overlap in $2" >>"$1/errors"
      echo "$FASTEN_FENCING_TOKEN $ETCD_LOCK_REV $ETCD_LOCK_KEY" >>"$1/tokens"
      sleep 0.05
      rmdir "$1/inside"' sh "$PWD" "$i" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do
    wait "$i" || fail "a holder failed"
  done
  [ ! -e errors ] || fail "$(cat errors)"
  expect_eq 8 "$(wc -l <tokens)" "holders"
  awk 'NR > 1 && $1 <= last { exit 1 } { last = $1 }' tokens || fail "tokens do not increase: $(cat tokens)"
  awk '$1 != $2 || $3 !~ /^mutex\/[0-9a-f]+$/ { exit 1 }' tokens || fail "bad ETCD_LOCK_*: $(cat tokens)"
  expect_eq "" "$(keys mutex)" "keys left behind"
}

test_readers_share_and_a_writer_waits_for_them() {
  hold one read "$URL/rw" --ttl 2
  hold two read "$URL/rw" --ttl 2
  expect_status 75 "$FASTEN" write -w 0.3 "$URL/rw" true
  expect_status 75 "$FASTEN" exclusive -n "$URL/rw" true
  release one
  release two
  expect_status 0 "$FASTEN" write -n "$URL/rw" true
}

test_a_writer_excludes_readers() {
  hold w write "$URL/wr" --ttl 2
  expect_status 75 "$FASTEN" read -w 0.3 "$URL/wr" true
  release w
  expect_status 0 "$FASTEN" read -n "$URL/wr" true
}

# FASTEN_ETCD_RECHECK=0.05: the first waiter's watches end every 50 ms,
# and each look at the queue again keeps its place ahead of a later waiter.
test_a_waiter_that_looks_again_every_50_ms_keeps_its_place() {
  hold holder exclusive "$URL/recheck" --ttl 2
  FASTEN_ETCD_RECHECK=0.05 "$FASTEN" exclusive --ttl 2 "$URL/recheck" sh -c 'echo first >>order' 2>first.err &
  local first=$!
  wait_for_waiters "$URL/recheck" 1
  "$FASTEN" exclusive --ttl 2 "$URL/recheck" sh -c 'echo second >>order' 2>second.err &
  local second=$!
  wait_for_waiters "$URL/recheck" 2
  release holder
  wait "$first" || fail "the first waiter failed: $(cat first.err)"
  wait "$second" || fail "the second waiter failed: $(cat second.err)"
  expect_eq "first second" "$(paste -sd ' ' order)" "the order the waiters ran in"
}

test_a_queued_writer_is_not_starved_by_a_stream_of_readers() {
  hold first read "$URL/fair" --ttl 2
  "$FASTEN" write --ttl 2 "$URL/fair" sh -c 'echo writer >>"$1/order"' sh "$PWD" &
  local writer=$!
  wait_for_keys fair 2
  # Readers that come after the writer queue behind it, though a reader holds.
  local readers=()
  for i in 1 2 3; do
    "$FASTEN" read -v --ttl 2 "$URL/fair" sh -c 'echo reader >>"$1/order"' sh "$PWD" 2>"reader$i.err" &
    readers+=($!)
  done
  # -v says so once a reader has looked at the queue and decided to wait.
  for i in 1 2 3; do
    wait_for_line "reader$i.err" "waiting to lock"
  done
  [ ! -e order ] || fail "got in while the first reader held: $(cat order)"
  release first
  wait "$writer"
  for i in "${readers[@]}"; do
    wait "$i"
  done
  expect_eq "writer reader reader reader" "$(echo $(cat order))" "order"
}

test_a_timeout_exits_with_the_conflict_status_and_leaves_no_key() {
  hold holder exclusive "$URL/timeout" --ttl 2
  local start
  start=$(now_ms)
  expect_status 75 "$FASTEN" exclusive -w 0.5 "$URL/timeout" true
  local took=$(($(now_ms) - start))
  [ "$took" -ge 450 ] && [ "$took" -lt 3000 ] || fail "-w 0.5 took $took ms"
  expect_status 9 "$FASTEN" write -n -E 9 "$URL/timeout" true
  expect_status 75 "$FASTEN" read -w 0.2 "$URL/timeout" true
  expect_eq 1 "$(keys timeout | wc -l)" "keys while one holds"
  release holder
  expect_eq "" "$(keys timeout)" "keys left behind"
}

test_fasten_paused_past_the_ttl_has_its_command_stopped_before_another_holder_starts_and_exits_76() {
  "$FASTEN" exclusive --ttl 2 --grace 1 "$URL/paused" sh -c "$LONG_COMMAND" sh "$PWD" 2>err &
  local pid=$!
  wait_for_file started
  # A failure must not leave it stopped, holding the runner's output open.
  trap "kill -CONT $pid 2>/dev/null || true" EXIT
  kill -STOP "$pid"
  # The lease runs out on etcd's side, and another holder gets the lock; the
  # stopped fasten cannot stop its command, so its keeper must have done so.
  expect_status 0 "$FASTEN" exclusive -w 8 "$URL/paused" \
    sh -c '[ -e termed ] || echo "it ran while the paused holder'"'"'s command still ran" >overlap; touch other'
  [ ! -e overlap ] || fail "the other holder: $(cat overlap)"
  kill -CONT "$pid"
  expect_status 76 wait "$pid"
  [ -e other ] || fail "the other holder did not run"
  expect_contains "$(cat err)" "fasten: lost the lock $URL/paused: "
  expect_eq 1 "$(wc -l <err)" "lines on stderr: $(cat err)"
}

test_etcd_paused_past_the_ttl_stops_the_command_and_exits_76() {
  "$FASTEN" exclusive --ttl 2 --grace 1 "$URL/etcd-paused" sh -c "$LONG_COMMAND" sh "$PWD" 2>err &
  local pid=$!
  wait_for_file started
  trap 'kill -CONT "$(etcd_pid)"' EXIT
  local paused
  paused=$(now)
  kill -STOP "$(etcd_pid)"
  wait_for_exit "$pid" 8
  kill -CONT "$(etcd_pid)"
  expect_status 76 wait "$pid"
  [ -e termed ] || fail "the command did not get SIGTERM"
  expect_contains "$(cat err)" "fasten: lost the lock $URL/etcd-paused: its lease was not renewed"
  measured "etcd paused: the command got SIGTERM $((($(cat termed) - paused) / 1000000)) ms after (TTL 2 s)"
}

test_a_lease_revoked_while_held_stops_the_command_and_exits_76() {
  "$FASTEN" exclusive --ttl 2 --grace 1 "$URL/revoked" sh -c "$LONG_COMMAND" sh "$PWD" 2>err &
  local pid=$!
  wait_for_file started
  local key revoked
  key=$(keys revoked)
  revoked=$(now)
  etcdctl_ lease revoke "${key##*/}" >/dev/null
  wait_for_exit "$pid" 5
  expect_status 76 wait "$pid"
  [ -e termed ] || fail "the command did not get SIGTERM"
  expect_contains "$(cat err)" "fasten: lost the lock $URL/revoked: "
  measured "lease revoked: the command got SIGTERM $((($(cat termed) - revoked) / 1000000)) ms after (TTL 2 s)"
}

# A lease revoked under a holder whose command runs: what a deposed etcd
# leader that resumes does to leases its own clock ran out while the new
# leader renewed them (etcd issue 15247), and `etcdctl lease revoke` does
# on purpose. fasten itself is stopped, so only its keeper stops the command,
# at its deadline: anyone who went in when the key went would overlap it.
# revoke_under_stopped_holder NAME [TTL [MODE]]: starts that holder (TTL 3 s
# and exclusive unless given) and revokes its lease; its pid is in $holder,
# its key in $key.
revoke_under_stopped_holder() {
  "$FASTEN" "${3:-exclusive}" --ttl "${2:-3}" --grace 1 "$URL/$1" sh -c "$LONG_COMMAND" sh "$PWD" 2>holder-err &
  holder=$!
  wait_for_file started
  trap "kill -CONT $holder 2>/dev/null || true" EXIT
  key=$(keys "$1" | head -1)
  kill -STOP "$holder"
  etcdctl_ lease revoke "${key##*/}" >/dev/null
}

# after_holder: the command of the next holder, which notes an overlap.
after_holder='[ -e termed ] || echo "it ran while the vanished holder'"'"'s command still ran" >overlap; touch other'

test_a_waiter_goes_in_only_once_a_holder_whose_lease_was_revoked_under_it_has_stopped() {
  "$FASTEN" exclusive --ttl 3 --grace 1 "$URL/vanished" sh -c "$LONG_COMMAND" sh "$PWD" 2>holder-err &
  holder=$!
  wait_for_file started
  trap "kill -CONT $holder 2>/dev/null || true" EXIT
  "$FASTEN" exclusive -v -w 20 "$URL/vanished" sh -c "$after_holder" 2>err &
  local waiter=$! key
  wait_for_keys vanished 2
  key=$(keys vanished | head -1)
  kill -STOP "$holder"
  etcdctl_ lease revoke "${key##*/}" >/dev/null
  expect_status 0 wait "$waiter"
  [ ! -e overlap ] || fail "the waiter: $(cat overlap)"
  expect_contains "$(cat err)" "fasten: a holder of $URL/vanished (exclusive) vanished without letting go (its key $key is gone): waiting its TTL of 3 s"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
  # The waiter deleted the vanished holder's mark, and its own.
  expect_eq "" "$(etcdctl_ get --prefix "vanished~fasten-marks/" --keys-only)" "marks left behind"
}

test_a_newcomer_goes_in_only_once_a_holder_whose_lease_was_revoked_under_it_has_stopped() {
  revoke_under_stopped_holder vanished-new
  # The wait for the vanished holder's TTL (3 s) counts against -w.
  expect_status 75 "$FASTEN" read -w 0.5 "$URL/vanished-new" sh -c "$after_holder"
  expect_status 0 "$FASTEN" read -w 20 "$URL/vanished-new" sh -c "$after_holder"
  [ ! -e overlap ] || fail "the newcomer: $(cat overlap)"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
}

test_a_slot_goes_to_another_only_once_a_holder_whose_lease_was_revoked_under_it_has_stopped() {
  "$FASTEN" exclusive --slots 2 --ttl 3 --grace 1 "$URL/vanished-slot" sh -c "$LONG_COMMAND" sh "$PWD" 2>holder-err &
  holder=$!
  wait_for_file started
  trap "kill -CONT $holder 2>/dev/null || true" EXIT
  # The other slot is held throughout: the newcomer's turn comes at once,
  # and only the vanished holder's slot is free.
  hold other_slot exclusive "$URL/vanished-slot" --slots 2
  local key
  key=$(keys vanished-slot | grep /slot/ | head -1)
  kill -STOP "$holder"
  etcdctl_ lease revoke "${key##*/}" >/dev/null
  expect_status 0 "$FASTEN" exclusive --slots 2 -w 20 "$URL/vanished-slot" sh -c "$after_holder"
  [ ! -e overlap ] || fail "the slot's next holder: $(cat overlap)"
  release other_slot
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
}

# NAME/ holds an etcd lock's keys and NAME~fasten-marks/ its marks: a name
# that would share either with another lock is refused, as a usage error.
test_an_etcd_name_that_would_share_keys_with_another_lock_is_a_usage_error() {
  local name
  for name in x/ 'x~fasten-marks' 'a/x~fasten-marks/b'; do
    expect_status 64 "$FASTEN" exclusive "$URL/$name" touch ran 2>err
    expect_eq 1 "$(wc -l <err)" "lines on stderr for '$name'"
    expect_contains "$(cat err)" "fasten: bad etcd lock: $URL/$name: NAME must not"
  done
  [ ! -e ran ] || fail "a usage error ran the command"
}

# marks_of NAME: the keys of lock NAME's marks.
marks_of() {
  etcdctl_ get --prefix "$1~fasten-marks/" --keys-only | sed '/^$/d'
}

# wait_for_no_marks NAME: until lock NAME has no mark left.
wait_for_no_marks() {
  local deadline=$((SECONDS + 30))
  while [ -n "$(marks_of "$1")" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "a mark is still there: $(marks_of "$1")"
    sleep 0.05
  done
}

test_a_vanished_holders_mark_goes_by_itself_once_a_single_try_has_found_it() {
  revoke_under_stopped_holder vanished-try
  local mark
  mark=$(marks_of vanished-try)
  # -n cannot wait the vanished holder out; it puts the mark on a lease of
  # the holder's TTL, which nobody renews.
  expect_status 75 "$FASTEN" exclusive -n -v "$URL/vanished-try" sh -c "$after_holder" 2>err
  expect_contains "$(cat err)" "fasten: a holder of $URL/vanished-try (exclusive) vanished without letting go (its key vanished-try/${mark##*/} is gone): its mark goes by itself after its TTL of 3 s"
  expect_eq "$mark" "$(marks_of vanished-try)" "the mark after the first try"
  etcdctl_ get "$mark" -w json | grep -q '"lease":[1-9]' ||
    fail "the first try left the mark on no lease: no one would ever delete it"
  # etcd deletes it when that lease runs out, and the next try gets in.
  wait_for_no_marks vanished-try
  expect_status 0 "$FASTEN" exclusive -n "$URL/vanished-try" sh -c "$after_holder"
  [ ! -e overlap ] || fail "the next try: $(cat overlap)"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
}

test_a_vanished_readers_mark_goes_by_itself_where_only_readers_come() {
  revoke_under_stopped_holder vanished-reader 3 read
  local mark
  mark=$(marks_of vanished-reader)
  # A reader does not wait out another, and no writer may ever come to: the
  # next reader puts the mark on a lease of its TTL, which nobody renews.
  expect_status 0 "$FASTEN" read -n "$URL/vanished-reader" true
  etcdctl_ get "$mark" -w json | grep -q '"lease":[1-9]' ||
    fail "the next reader left the vanished reader's mark on no lease: it stays until a writer comes"
  wait_for_no_marks vanished-reader
  expect_eq "$URL/vanished-reader: free" "$("$FASTEN" status "$URL/vanished-reader")"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
}

test_a_waiter_goes_on_once_a_vanished_holders_mark_has_gone_before_its_ttl() {
  # A TTL longer than the waiter's -w: it gets in only by seeing the mark go.
  local key
  revoke_under_stopped_holder vanished-early 20
  "$FASTEN" exclusive -v -w 10 "$URL/vanished-early" touch ran 2>err &
  local waiter=$!
  wait_for_line err "(its key $key is gone): waiting its TTL of 20 s"
  # What the vanished holder does once its command has ended, or another
  # waiter once it has waited the TTL out.
  etcdctl_ del "vanished-early~fasten-marks/${key##*/}" >/dev/null
  expect_status 0 wait "$waiter"
  [ -e ran ] || fail "the waiter did not run its command"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
}

test_a_wait_shorter_than_the_ttl_leaves_a_vanished_holders_mark_to_go_by_itself() {
  revoke_under_stopped_holder vanished-short
  expect_status 75 "$FASTEN" read -w 0.5 "$URL/vanished-short" true
  wait_for_no_marks vanished-short
  expect_status 0 "$FASTEN" read -n "$URL/vanished-short" sh -c "$after_holder"
  [ ! -e overlap ] || fail "the next try: $(cat overlap)"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
}

# vanished_json FILE KIND TTL WAITING: FILE (status --json) says a free lock,
# WAITING waiting, and one vanished holder of KIND with TTL.
vanished_json() {
  python3 - "$@" <<'PY' || fail "bad JSON: $(cat "$1")"
import json, sys
status = json.load(open(sys.argv[1]))
assert status["state"] == "free" and status["holders"] == [] and status["waiting"] == int(sys.argv[4]), status
assert status["vanished"] == [{"kind": sys.argv[2], "ttl": int(sys.argv[3])}], status
PY
}

test_status_shows_a_holder_that_vanished_and_a_waiter_waiting_it_out() {
  # A TTL long enough that the waiter below is still waiting it out when
  # status looks, on a loaded machine too.
  local key
  revoke_under_stopped_holder vanished-status 20
  local vanished="1 holder vanished without letting go (a writer): whoever it excludes waits out its TTL (20 s) before going in"
  # The state and the exit status are the live holders': free, 0.
  expect_eq "$URL/vanished-status: free; $vanished" "$("$FASTEN" status "$URL/vanished-status")"
  expect_status 0 "$FASTEN" status "$URL/vanished-status"
  "$FASTEN" status --json "$URL/vanished-status" >json
  vanished_json json writer 20 0
  # A waiter whose turn has come waits it out: it waits, it does not hold.
  "$FASTEN" exclusive -v -w 60 "$URL/vanished-status" touch ran 2>err &
  local waiter=$!
  wait_for_line err "vanished without letting go (its key $key is gone): waiting its TTL of 20 s"
  expect_eq "$URL/vanished-status: free; 1 waiting; $vanished" "$("$FASTEN" status "$URL/vanished-status")"
  "$FASTEN" status --json "$URL/vanished-status" >json
  vanished_json json writer 20 1
  kill -TERM "$waiter"
  expect_status 143 wait "$waiter"
  [ ! -e ran ] || fail "the waiter ran its command"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
}

test_status_shows_no_vanished_holder_once_waited_out_or_after_an_orderly_release() {
  revoke_under_stopped_holder vanished-gone
  expect_contains "$("$FASTEN" status "$URL/vanished-gone")" \
    "$URL/vanished-gone: free; 1 holder vanished without letting go (a writer): whoever it excludes waits out its TTL (3 s) before going in"
  # -v's lines say it too.
  expect_status 75 "$FASTEN" read -v -w 0.5 "$URL/vanished-gone" true 2>err
  expect_contains "$(cat err)" "; 1 holder vanished without letting go (a writer): whoever it excludes waits out its TTL (3 s)"
  # A reader waits it out and deletes its mark.
  expect_status 0 "$FASTEN" read -w 20 "$URL/vanished-gone" sh -c "$after_holder"
  [ ! -e overlap ] || fail "the reader: $(cat overlap)"
  kill -CONT "$holder"
  expect_status 76 wait "$holder"
  expect_eq "$URL/vanished-gone: free" "$("$FASTEN" status "$URL/vanished-gone")"
  # A holder that leaves in order leaves no vanished holder behind.
  hold reader read "$URL/vanished-gone" --ttl 30
  local out
  out=$("$FASTEN" status "$URL/vanished-gone") || true
  expect_contains "$out" "$URL/vanished-gone: shared by 1, held by pid $reader_pid on $(hostname) (sh -c "
  [[ $out != *"vanished without"* ]] || fail "status: $out"
  release reader
  expect_eq "$URL/vanished-gone: free" "$("$FASTEN" status "$URL/vanished-gone")"
  "$FASTEN" status --json "$URL/vanished-gone" >json
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); assert "vanished" not in s, s' json ||
    fail "JSON: $(cat json)"
}

test_leaving_in_order_keeps_no_one_waiting_and_leaves_no_mark() {
  # A release, a timeout and a signal each delete the mark with the key:
  # the next holder goes in at once, and no mark is left.
  hold first exclusive "$URL/orderly" --ttl 30
  expect_status 75 "$FASTEN" exclusive -w 0.2 --ttl 30 "$URL/orderly" true
  "$FASTEN" exclusive --ttl 30 "$URL/orderly" true &
  local waiter=$!
  wait_for_keys orderly 2
  kill -TERM "$waiter"
  expect_status 143 wait "$waiter"
  release first
  expect_status 0 "$FASTEN" exclusive -v -w 5 --ttl 30 "$URL/orderly" true 2>err
  ! grep -q vanished err || fail "the next holder waited: $(cat err)"
  expect_eq "" "$(etcdctl_ get --prefix "orderly~fasten-marks/" --keys-only)" "marks left behind"
}

test_a_lost_lock_stops_what_the_command_started_in_a_session_of_its_own_too() {
  "$FASTEN" exclusive --ttl 2 --grace 1 "$URL/revoked-escaped" bash -c '
    setsid sleep 60 & echo $! >escaped
    touch started
    wait' >/dev/null 2>err &
  local pid=$! key
  wait_for_file started
  key=$(keys revoked-escaped)
  etcdctl_ lease revoke "${key##*/}" >/dev/null
  wait_for_exit "$pid" 10
  expect_status 76 wait "$pid"
  # fasten has ended: what its command started must be gone by now.
  if kill -0 "$(cat escaped)" 2>/dev/null && [ "$(awk '{ print $3 }' "/proc/$(cat escaped)/stat")" != Z ]; then
    kill "$(cat escaped)"
    fail "a process the command started in a session of its own outlived the lost lock"
  fi
}

test_a_command_that_ignores_sigterm_is_killed_after_the_grace_period() {
  "$FASTEN" exclusive --ttl 2 --grace 0.5 "$URL/grace" \
    sh -c 'trap "date +%s%N > \"$1/termed\"" TERM; touch "$1/started"; while :; do sleep 0.05; done' sh "$PWD" 2>err &
  local pid=$!
  wait_for_file started
  local key
  key=$(keys grace)
  etcdctl_ lease revoke "${key##*/}" >/dev/null
  wait_for_exit "$pid" 5
  expect_status 76 wait "$pid"
  [ -e termed ] || fail "the command did not get SIGTERM"
  local after=$((($(now) - $(cat termed)) / 1000000))
  [ "$after" -ge 400 ] || fail "killed $after ms after SIGTERM, before the grace period"
}

test_the_lock_survives_etcd_restarting_within_the_ttl() {
  mkfifo go
  "$FASTEN" exclusive --ttl 5 --grace 1 "$URL/restart" sh -c 'read -r _ <go; echo done' >out 2>err &
  local pid=$!
  wait_for_keys restart 1
  local key
  key=$(keys restart)
  kill_etcd KILL
  start_etcd
  # Held until the restarted etcd has answered a renewal.
  wait_for_renewal "${key##*/}"
  echo >go
  expect_status 0 wait "$pid"
  expect_eq done "$(cat out)" "the command's output"
  expect_eq "" "$(cat err)" "stderr"
}

test_etcd_down_at_start_exits_69_at_once_naming_the_endpoint() {
  local start took
  start=$(now_ms)
  expect_status 69 "$FASTEN" exclusive "etcd://127.0.0.1:$dead_port/down" touch ran 2>err
  took=$(($(now_ms) - start))
  [ "$took" -lt 3000 ] || fail "took $took ms"
  [ ! -e ran ] || fail "the command ran"
  expect_contains "$(cat err)" "fasten: cannot reach etcd: 127.0.0.1:$dead_port: "
  expect_eq 1 "$(wc -l <err)" "lines on stderr"
  expect_status 69 "$FASTEN" status "etcd://127.0.0.1:$dead_port/down" 2>/dev/null
  # The next endpoint is tried when the first one does not answer.
  expect_status 0 "$FASTEN" exclusive "etcd://127.0.0.1:$dead_port,$ENDPOINT/down" true
  FASTEN_ETCD_ENDPOINTS="127.0.0.1:$dead_port,http://$ENDPOINT" expect_status 0 "$FASTEN" read etcd:///down true
}

test_a_waiter_whose_lease_is_revoked_queues_again_and_runs_after_the_holder() {
  # A waiter holds nothing: a lease lost while it waits costs it its place,
  # not its run. It takes a new lease and key, says so with -v, and runs once
  # the holder releases.
  hold holder exclusive "$URL/queue" --ttl 2
  "$FASTEN" exclusive -v --ttl 2 "$URL/queue" touch ran 2>err &
  local waiter=$!
  wait_for_keys queue 2
  local old_key
  old_key=$(keys queue | tail -1)
  etcdctl_ lease revoke "${old_key##*/}" >/dev/null
  wait_for_line err "queueing again"
  wait_for_keys queue 2
  local new_key
  new_key=$(keys queue | tail -1)
  [ "$new_key" != "$old_key" ] || fail "the waiter's key is still $old_key"
  release holder
  wait_for_exit "$waiter" 20
  expect_status 0 wait "$waiter"
  [ -e ran ] || fail "the waiter did not run its command: $(cat err)"
  expect_contains "$(cat err)" "fasten: lost its place in the queue for $URL/queue (exclusive): etcd says its lease has expired or was revoked; queueing again"
  expect_eq "" "$(keys queue)" "keys left behind"
}

test_a_waiter_queued_again_still_gives_up_at_its_own_timeout() {
  hold holder exclusive "$URL/queue-w" --ttl 2
  local start
  start=$(now_ms)
  "$FASTEN" exclusive -v -w 8 --ttl 2 "$URL/queue-w" touch ran 2>err &
  local waiter=$!
  wait_for_keys queue-w 2
  local old_key
  old_key=$(keys queue-w | tail -1)
  # The revoke comes 3 s into the 8 s wait: a wait counted from the start
  # ends about 5 s after it, one counted again from the second queueing 8 s
  # after it or later. The 3 s between are wide enough for a loaded machine,
  # with the line drawn halfway: drawn at 8 s, it leaves the second kind
  # only the time the waiter takes to queue again.
  while [ $(($(now_ms) - start)) -lt 3000 ]; do sleep 0.05; done
  etcdctl_ lease revoke "${old_key##*/}" >/dev/null
  local revoked
  revoked=$(now_ms)
  wait_for_line err "queueing again"
  wait_for_exit "$waiter" 20
  expect_status 75 wait "$waiter"
  local ended
  ended=$(now_ms)
  release holder
  [ ! -e ran ] || fail "the waiter ran its command"
  [ "$ended" -lt $((revoked + 6500)) ] ||
    fail "gave up $((ended - start)) ms after the start, $((ended - revoked)) ms after the revoke"
  expect_eq "" "$(keys queue-w)" "keys left behind"
}

test_etcdctl_lock_and_fasten_exclusive_exclude_each_other() {
  # etcdctl's lock first: fasten waits for it.
  # etcdctl's lock first, held until ctl.fifo is written: fasten waits for it.
  mkfifo ctl.fifo
  etcdctl_ lock --ttl=2 ctl -- sh -c 'touch "$1/ctl-held"; read -r _ <"$1/ctl.fifo"; rm "$1/ctl-held"' sh "$PWD" >/dev/null &
  local ctl=$!
  wait_for_file ctl-held
  expect_status 75 "$FASTEN" exclusive -w 0.3 "$URL/ctl" true
  expect_status 75 "$FASTEN" read -w 0.3 "$URL/ctl" true
  "$FASTEN" exclusive -v -w 20 "$URL/ctl" sh -c '[ ! -e ctl-held ]' 2>fasten.err &
  local waiter=$!
  wait_for_line fasten.err "waiting"
  echo >ctl.fifo
  expect_status 0 wait "$waiter"
  wait "$ctl"
  # fasten's first: etcdctl waits for it, for exclusive, write and read.
  local mode
  for mode in exclusive write read; do
    hold "holder_$mode" "$mode" "$URL/ctl" --ttl 2
    wait_for_watchers 0
    etcdctl_ lock --ttl=2 ctl touch "$PWD/ctl-ran" >/dev/null &
    ctl=$!
    wait_for_keys ctl 2
    # etcdctl lock watches the key before its own once it has decided to wait.
    wait_for_watchers 1
    [ ! -e ctl-ran ] || fail "etcdctl lock got in while fasten held $mode"
    release "holder_$mode"
    wait "$ctl"
    [ -e ctl-ran ] || fail "etcdctl lock did not run after fasten released $mode"
    rm ctl-ran
  done
}

test_fd_and_no_fork_cannot_take_an_etcd_lock() {
  expect_status 64 "$FASTEN" exclusive --fd 9 "$URL/usage" 2>err 9>file
  expect_contains "$(cat err)" "--fd"
  expect_status 64 "$FASTEN" exclusive -F "$URL/usage" true 2>err
  expect_contains "$(cat err)" "-F (--no-fork) cannot hold an etcd lock"
  expect_status 64 "$FASTEN" exclusive --ttl 0 "$URL/usage" true 2>/dev/null
  expect_status 64 "$FASTEN" exclusive --grace x "$URL/usage" true 2>/dev/null
  expect_status 64 "$FASTEN" exclusive --ttl 5 lockfile true 2>/dev/null
  expect_status 64 "$FASTEN" exclusive "etcd://$ENDPOINT/" true 2>/dev/null
  expect_status 64 "$FASTEN" exclusive "etcd://$ENDPOINT:99999/x" true 2>/dev/null
  FASTEN_ETCD_ENDPOINTS='' expect_status 64 "$FASTEN" exclusive "etcd:///x" true 2>err
  expect_contains "$(cat err)" "FASTEN_ETCD_ENDPOINTS"
  expect_eq "" "$(keys usage)" "keys"
}

test_status_shows_holders_and_waiting() {
  expect_eq "$URL/st: free" "$("$FASTEN" status "$URL/st")"
  hold holder exclusive "$URL/st" --ttl 2
  "$FASTEN" exclusive --ttl 2 "$URL/st" true &
  local waiter=$!
  wait_for_keys st 2
  local out
  out=$("$FASTEN" status "$URL/st") || true
  expect_status 1 "$FASTEN" status "$URL/st"
  expect_contains "$out" "$URL/st: exclusive, held by pid $holder_pid on $(hostname) (sh -c "
  expect_contains "$out" "; 1 waiting"
  "$FASTEN" status --json "$URL/st" >json || true
  python3 - json "$holder_pid" <<'PY' || fail "bad JSON: $(cat json)"
import json, socket, sys
status = json.load(open(sys.argv[1]))
assert status["state"] == "exclusive" and status["waiting"] == 1, status
[holder] = status["holders"]
assert holder["pid"] == int(sys.argv[2]) and holder["host"] == socket.gethostname(), holder
assert holder["command"].startswith("sh -c "), holder
PY
  release holder
  wait "$waiter"
  hold one read "$URL/st" --ttl 2
  hold two read "$URL/st" --ttl 2
  out=$("$FASTEN" status "$URL/st") || true
  expect_contains "$out" "$URL/st: shared by 2, held by pid $one_pid"
  release one
  release two
  expect_status 0 "$FASTEN" status "$URL/st"
}

test_signals_to_fasten_reach_the_command_and_its_status_is_fasten_s() {
  "$FASTEN" exclusive --ttl 2 "$URL/signals" sh -c "$LONG_COMMAND" sh "$PWD" &
  local pid=$!
  wait_for_file started
  kill -TERM "$pid"
  expect_status 3 wait "$pid"
  [ -e termed ] || fail "the command did not get SIGTERM"
  expect_eq "" "$(keys signals)" "keys left behind"
}

test_hand_off_between_waiters_is_quick() {
  # 21 holders queue up; each command stamps its start and its end. The gap
  # from one command's end to the next one's start is the hand-off: fasten
  # revoking its lease, the next waiter's watch firing, and its command
  # starting.
  local i pids=()
  for i in $(seq 21); do
    "$FASTEN" exclusive --ttl 2 "$URL/handoff" sh -c 'echo "start $(date +%s%N)" >>"$1/stamps"; sleep 0.02; echo "end $(date +%s%N)" >>"$1/stamps"' sh "$PWD" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do
    wait "$i"
  done
  local median
  median=$(awk '$1 == "end" { end = $2 } $1 == "start" && end { print ($2 - end) / 1e6 }' stamps | sort -n |
    awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
  measured "hand-off from one holder's command to the next one's: median $median ms over 20"
  awk -v m="$median" 'BEGIN { exit !(m < 1000) }' || fail "hand-off median $median ms"
}

# Counting semaphores in etcd: the holders are the N oldest slot keys.
test_slots_in_etcd_one_slot_lets_one_holder_in_at_a_time() {
  at_most_n_hold_at_once "$URL/slots-1" 1 --ttl 5
  expect_eq "" "$(keys slots-1)" "keys left behind"
}

test_slots_in_etcd_three_slots_let_three_holders_in_at_once_and_no_more() {
  at_most_n_hold_at_once "$URL/slots-3" 3 --ttl 5
  expect_eq "" "$(keys slots-3)" "keys left behind"
}

test_slots_in_etcd_many_slots_let_as_many_holders_in_at_once_and_no_more() {
  # 64 slots (three times as many fastens at once); 8 under the sanitizers,
  # where each fasten-etcd takes about a third of a CPU second to start.
  local slots=64
  [ "${FASTEN_SANITIZE:-none}" = none ] || slots=8
  at_most_n_hold_at_once "$URL/slots-many" "$slots" --ttl 30
  expect_eq "" "$(keys slots-many)" "keys left behind"
}

test_slots_in_etcd_give_the_command_its_slot_and_a_fencing_token_and_time_out_leaving_no_key() {
  hold first exclusive "$URL/given" --slots 2 --ttl 5
  local got
  got=$("$FASTEN" write --slots 2 --ttl 5 "$URL/given" sh -c 'echo $FASTEN_SLOT $FASTEN_MODE $ETCD_LOCK_KEY $FASTEN_FENCING_TOKEN')
  expect_eq "1 write given/slot/" "$(echo "$got" | sed 's/slot\/[0-9a-f]* [0-9]*$/slot\//')" "slot, mode and key"
  hold second exclusive "$URL/given" --slots 2 --ttl 5
  expect_status 75 "$FASTEN" exclusive --slots 2 -n --ttl 5 "$URL/given" true
  expect_status 3 "$FASTEN" exclusive --slots 2 -w 0.5 -E 3 --ttl 5 "$URL/given" true
  expect_eq 4 "$(keys given | wc -l)" "keys (two slot keys and their claims)"
  release first
  release second
  expect_eq "" "$(keys given)" "keys left behind"
  expect_eq 0 "$("$FASTEN" exclusive --slots 1 --ttl 5 "$URL/given" sh -c 'echo $FASTEN_SLOT')"
  expect_eq unset "$(FASTEN_SLOT=5 "$FASTEN" exclusive --ttl 5 "$URL/given" sh -c 'echo ${FASTEN_SLOT-unset}')"
  expect_contains "$("$FASTEN" exclusive -v --slots 4 --ttl 5 "$URL/given" true 2>&1)" ", slot 0 of 4)"
}

test_slots_in_etcd_a_plain_write_waits_for_the_slot_holders_and_keeps_new_ones_out() {
  hold first exclusive "$URL/drain" --slots 3 --ttl 5
  hold second exclusive "$URL/drain" --slots 3 --ttl 5
  "$FASTEN" write --ttl 5 "$URL/drain" sh -c 'echo writer >>order' &
  local writer=$!
  wait_for_waiters "$URL/drain" 1
  # A slot is free, but the writer waits: a new slot holder queues behind it.
  expect_status 75 "$FASTEN" exclusive --slots 3 -n --ttl 5 "$URL/drain" true
  "$FASTEN" exclusive --slots 3 --ttl 5 "$URL/drain" sh -c 'echo slot >>order' &
  local late=$!
  wait_for_waiters "$URL/drain" 2
  release first
  [ ! -e order ] || fail "the writer ran while a slot was held: $(cat order)"
  release second
  wait "$writer" "$late"
  expect_eq "writer slot" "$(echo $(cat order))" "the order they ran in"
}

test_slots_in_etcd_wait_while_a_writer_holds_and_share_the_lock_with_readers() {
  hold writer write "$URL/mixed" --ttl 5
  "$FASTEN" exclusive --slots 2 --ttl 5 "$URL/mixed" touch ran &
  local holder=$!
  wait_for_waiters "$URL/mixed" 1
  expect_status 75 "$FASTEN" exclusive --slots 2 -n --ttl 5 "$URL/mixed" true
  [ ! -e ran ] || fail "a slot holder ran while the writer held the lock"
  release writer
  wait "$holder"
  hold slot exclusive "$URL/mixed" --slots 2 --ttl 5
  expect_status 0 "$FASTEN" read -n --ttl 5 "$URL/mixed" true
  hold reader read "$URL/mixed" --ttl 5
  expect_status 0 "$FASTEN" exclusive --slots 2 -n --ttl 5 "$URL/mixed" true
  expect_contains "$("$FASTEN" status "$URL/mixed")" "1 of 2 slots held and shared by 1"
  release reader
  release slot
}

test_slots_in_etcd_a_killed_holders_slot_goes_to_a_waiter_once_its_lease_runs_out() {
  hold first exclusive "$URL/killed" --slots 2 --ttl 5
  hold second exclusive "$URL/killed" --slots 2 --ttl 2
  "$FASTEN" exclusive --slots 2 --ttl 5 "$URL/killed" sh -c 'echo "$FASTEN_SLOT" >got' &
  local waiter=$!
  wait_for_waiters "$URL/killed" 1
  # fasten and its command both: nobody revokes the lease, which etcd ends.
  pkill -KILL -P "$second_pid"
  kill -KILL "$second_pid"
  wait "$waiter"
  expect_eq 1 "$(cat got)" "the slot the waiter got"
  release first
}

test_slots_in_etcd_the_first_waiter_gets_the_first_slot_freed_and_the_next_one_waits() {
  first_waiter_gets_the_first_slot_freed "$URL/order" --ttl 5
}

test_slots_in_etcd_status_says_how_many_slots_are_held_by_whom_and_how_many_wait() {
  hold first exclusive "$URL/sst" --slots 2 --ttl 5
  hold second exclusive "$URL/sst" --slots 2 --ttl 5
  "$FASTEN" exclusive --slots 2 --ttl 5 "$URL/sst" true &
  local waiter=$! text json
  wait_for_waiters "$URL/sst" 1
  text=$("$FASTEN" status "$URL/sst" || true)
  expect_contains "$text" "$URL/sst: 2 of 2 slots held by pid $first_pid on $(hostname) ("
  expect_contains "$text" ") in slot 0"
  expect_contains "$text" ") in slot 1"
  expect_contains "$text" "; 1 waiting"
  json=$(status_json "$URL/sst")
  expect_contains "$json" '"state": "shared", "holds": 2'
  expect_contains "$json" '"slots": 2, "slots_held": 2'
  expect_contains "$json" '"slot": 1}'
  release first
  wait "$waiter"
  release second
}

test_slots_in_etcd_holders_that_disagree_on_the_count_each_go_by_their_own() {
  hold first exclusive "$URL/disagree" --slots 2 --ttl 5
  hold second exclusive "$URL/disagree" --slots 2 --ttl 5
  expect_status 75 "$FASTEN" exclusive --slots 2 -n --ttl 5 "$URL/disagree" true
  expect_eq 2 "$("$FASTEN" exclusive --slots 3 -n --ttl 5 "$URL/disagree" sh -c 'echo $FASTEN_SLOT')"
  hold third exclusive "$URL/disagree" --slots 3 --ttl 5
  expect_contains "$("$FASTEN" status "$URL/disagree")" "3 of 3 slots held"
  release first
  release second
  release third
}

# One that gets in by the count while holders with a larger count have
# claimed every slot below its own waits for one of those slots. X, Y and Z
# (3 slots) hold 0, 1 and 2; W and B (2 slots) queue behind them. X goes:
# C (9 slots) gets in and claims 0. Y goes: W gets in with 1. Z goes: B is
# in by the count (one older slot key, W's) but both its slots are claimed,
# until C goes.
test_slots_in_etcd_a_holder_whose_slots_are_claimed_by_larger_counts_waits_for_one() {
  local lock="$URL/claimed"
  hold x exclusive "$lock" --slots 3 --ttl 5
  hold y exclusive "$lock" --slots 3 --ttl 5
  hold z exclusive "$lock" --slots 3 --ttl 5
  mkfifo w.fifo b.fifo
  "$FASTEN" exclusive --slots 2 --ttl 5 "$lock" sh -c 'echo "w $FASTEN_SLOT" >>log; read -r _ <w.fifo' &
  local w=$!
  wait_for_waiters "$lock" 1
  "$FASTEN" exclusive --slots 2 --ttl 5 "$lock" sh -c 'echo "b $FASTEN_SLOT" >>log; read -r _ <b.fifo' &
  local b=$!
  wait_for_waiters "$lock" 2
  release x
  mkfifo c.fifo
  "$FASTEN" exclusive --slots 9 --ttl 5 "$lock" sh -c 'echo "c $FASTEN_SLOT" >>log; read -r _ <c.fifo; echo "c end" >>log' &
  local c=$!
  wait_for_line log "c "
  release y
  wait_for_line log "w "
  release z
  echo >c.fifo
  wait "$c"
  wait_for_line log "b "
  expect_eq "c 0|w 1|c end|b 0" "$(paste -sd '|' log)" "who got which slot, in order"
  expect_contains "$("$FASTEN" status "$lock")" "2 of 2 slots held"
  echo >w.fifo
  echo >b.fifo
  wait "$w" "$b"
  expect_eq "" "$(keys claimed)" "keys left behind"
}

# Several locks (--also): names in one etcd, and a lock file, together.
test_several_locks_in_etcd_and_a_file_are_held_together_each_in_its_mode() {
  hold both write "$URL/several-target" --ttl 5 --also read "$URL/several-db" --also exclusive file.lock
  expect_status 75 "$FASTEN" exclusive -n --ttl 5 "$URL/several-target" true
  expect_status 75 "$FASTEN" write -n --ttl 5 "$URL/several-db" true
  expect_status 0 "$FASTEN" read -n --ttl 5 "$URL/several-db" true
  expect_status 75 "$FASTEN" exclusive -n file.lock true
  expect_eq 1 "$(keys several-target | wc -l)" "keys of the target"
  expect_contains "$(keys several-db)" "several-db/read/"
  release both
  expect_eq "" "$(keys several-target)$(keys several-db)" "keys left behind"
  local got
  got=$("$FASTEN" write --ttl 5 --also read "$URL/several-db" --also exclusive file.lock "$URL/several-target" \
    sh -c 'echo "$FASTEN_LOCKS"; echo "token $FASTEN_FENCING_TOKEN $ETCD_LOCK_KEY"')
  expect_eq "write N $URL/several-target|read N $URL/several-db|exclusive - file.lock|token N several-target/L" \
    "$(echo "$got" | sed -E 's/ [0-9]+ / N /; s/ [0-9]+$/ N/; s/token [0-9]+ /token N /; s/several-target\/[0-9a-f]+$/several-target\/L/' |
      paste -sd '|')" "FASTEN_LOCKS, and the first lock's token and key"
}

test_several_locks_in_etcd_let_go_of_the_first_when_the_second_is_taken() {
  hold other exclusive "$URL/several-b" --ttl 5
  local status=0
  "$FASTEN" exclusive -n --ttl 5 --also exclusive "$URL/several-b" "$URL/several-a" touch ran 2>err || status=$?
  expect_eq 75 "$status" "exit status"
  expect_contains "$(cat err)" "$URL/several-b (exclusive) was not free in time (lock 2 of 2"
  [ ! -e ran ] || fail "the command ran without every lock"
  expect_eq "" "$(keys several-a)" "keys of the first lock left behind"
  expect_eq "" "$(etcdctl_ get --prefix "several-a~fasten-marks/" --keys-only)" "marks of the first lock left behind"
  release other
}

test_several_locks_in_etcd_a_signal_while_waiting_for_the_second_revokes_the_first_at_once() {
  hold other exclusive "$URL/several-sb" --ttl 5
  "$FASTEN" exclusive --ttl 60 --also exclusive "$URL/several-sb" "$URL/several-sa" touch ran &
  local waiter=$! status=0
  wait_for_keys several-sb 2
  expect_eq 1 "$(keys several-sa | wc -l)" "keys of the first lock while it waits for the second"
  kill -TERM "$waiter"
  wait "$waiter" || status=$?
  expect_eq 143 "$status" "exit status after SIGTERM"
  # With a TTL of 60 s, a key still there would be one left to run out.
  expect_eq "" "$(keys several-sa)" "keys of the first lock after the signal"
  # Its mark went first: the next holder does not wait out a vanished one.
  expect_eq "" "$(etcdctl_ get --prefix "several-sa~fasten-marks/" --keys-only)" "marks of the first lock after the signal"
  release other
  [ ! -e ran ] || fail "the command ran after the signal"
}

test_several_locks_in_etcd_taken_in_opposite_orders_never_deadlock() {
  # 20 rounds each; 5 under the sanitizers.
  local rounds=20 i
  [ "${FASTEN_SANITIZE:-none}" = none ] || rounds=5
  local first second
  for pair in "several-x several-y" "several-y several-x"; do
    read -r first second <<<"$pair"
    for i in $(seq "$rounds"); do
      "$FASTEN" exclusive -w 120 --ttl 5 --also exclusive "$URL/$second" "$URL/$first" \
        sh -c 'echo "start $1" >>log; echo "end $1" >>log' sh "$first$i" || echo "failed $first$i" >>log
    done &
  done
  wait
  expect_eq "" "$(grep failed log)" "rounds that failed or timed out"
  expect_eq "$((rounds * 2)) rounds;" "$(awk '
    $1 == "start" { if (inside != "") { bad = bad " " $2 " inside " inside ";" } inside = $2; n++ }
    $1 == "end" { inside = "" }
    END { printf "%d rounds;%s", n, bad }' log)" "the log of both loops"
}

status=0
run_suite || status=$?
cat "$etcd_dir/measurements" 2>/dev/null || true
exit "$status"
