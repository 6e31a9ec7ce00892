# The integration suites' runner and helpers. A suite defines functions named
# test_*, sources this file, and calls run_suite; each test runs in a subshell
# in a fresh directory, and the suite prints TAP for meson.
#
# Environment: FASTEN, the binary under test; LOCK_HOLDER, the helper that
# holds fcntl/flock locks as other programs do.

set -u
: "${FASTEN:?FASTEN must name the fasten binary under test}"
: "${LOCK_HOLDER:=}"

# Classic fcntl locks (-Dlock_api=posix) belong to the process, not to the
# open file: some behaviours differ, and the suites say which.
classic_locks() {
  [ "${FASTEN_LOCK_API:-ofd}" = posix ]
}

# Stops the current test with a message.
fail() {
  printf '# %s\n' "$@" >&2
  exit 1
}

# expect_status N COMMAND...: runs COMMAND, which must exit with N.
expect_status() {
  local want=$1 got=0
  shift
  "$@" || got=$?
  [ "$got" -eq "$want" ] || fail "expected status $want, got $got from: $*"
}

# expect_eq WANT GOT [WHAT]
expect_eq() {
  [ "$1" = "$2" ] || fail "${3:-value}: expected '$1', got '$2'"
}

# expect_contains TEXT PART
expect_contains() {
  case "$1" in
  *"$2"*) ;;
  *) fail "expected '$2' in: $1" ;;
  esac
}

# wait_for_file PATH [SECONDS]: polls (tests may; fasten may not) until PATH exists.
wait_for_file() {
  local deadline=$((SECONDS + ${2:-10}))
  while [ ! -e "$1" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $1"
    sleep 0.01
  done
}

# wait_for_line FILE TEXT [SECONDS]: until FILE has a line that contains TEXT.
wait_for_line() {
  local deadline=$((SECONDS + ${3:-20}))
  until grep -qF -- "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for '$2' in $1: $(cat "$1" 2>/dev/null)"
    sleep 0.02
  done
}

# status_json LOCK: fasten status --json LOCK, on one line.
status_json() {
  "$FASTEN" status --json "$1" 2>/dev/null | tr -d '\n' || true
}

# wait_for_waiters LOCK N [SECONDS]: polls `fasten status` until at least N
# processes wait for LOCK: the readiness probe for "it is blocked now".
wait_for_waiters() {
  local deadline=$((SECONDS + ${3:-20})) waiting
  while :; do
    waiting=$(status_json "$1" | sed -n 's/.*"waiting": *\([0-9]*\).*/\1/p')
    [ "${waiting:-0}" -lt "$2" ] || return 0
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $2 waiters on $1 (${waiting:-none})"
    sleep 0.01
  done
}

# wait_for_state LOCK STATE [SECONDS]: polls `fasten status` until LOCK is
# free, shared or exclusive.
wait_for_state() {
  local deadline=$((SECONDS + ${3:-20}))
  until status_json "$1" | grep -q "\"state\": *\"$2\""; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for $1 to be $2"
    sleep 0.01
  done
}

# wait_for_command PID COMMAND [SECONDS]: polls /proc/PID/cmdline until
# process PID runs COMMAND (its words joined by spaces): it has exec'd.
wait_for_command() {
  local deadline=$((SECONDS + ${3:-20}))
  until [ "$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" = "$2 " ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "timed out waiting for process $1 to run $2"
    sleep 0.01
  done
}

# now_ms: a monotonic-enough clock in milliseconds, for generous windows.
now_ms() {
  local t
  t=$(date +%s%N)
  echo $((t / 1000000))
}

# wait_for_exit PID SECONDS: fails if PID is still there after SECONDS.
wait_for_exit() {
  local deadline=$(($(now_ms) + $2 * 1000))
  while kill -0 "$1" 2>/dev/null; do
    [ "$(now_ms)" -lt "$deadline" ] || fail "pid $1 still runs after $2 s"
    sleep 0.02
  done
}

# hold NAME MODE LOCK [FASTEN_OPTIONS...]: starts a fasten that holds LOCK
# in MODE until `release NAME`; returns once the lock is held. Its pid is in
# $NAME_pid.
hold() {
  local name=$1 mode=$2 lock=$3
  shift 3
  mkfifo "$name.fifo"
  # Not on the test's stdout: the runner reads that to its end, and a holder
  # that a failed test left behind must not keep it open.
  "$FASTEN" "$mode" "$@" "$lock" sh -c 'touch "$1.held"; read -r _ < "$1.fifo"' sh "$PWD/$name" \
    >/dev/null 2>"$name.err" &
  eval "${name}_pid=$!"
  wait_for_file "$name.held"
}

# release NAME: lets a holder started with `hold` end, and waits for it.
release() {
  echo >"$1.fifo"
  wait "$(eval echo "\$${1}_pid")"
}

# require_etcd: sets ETCD and ETCDCTL, or ends the whole suite as skipped
# (TAP's "1..0 # SKIP") where they are not installed.
require_etcd() {
  ETCD=${ETCD:-etcd}
  ETCDCTL=${ETCDCTL:-etcdctl}
  if ! command -v "$ETCD" >/dev/null || ! command -v "$ETCDCTL" >/dev/null; then
    echo "1..0 # SKIP etcd and etcdctl are not installed (apt-get install etcd-server etcd-client)"
    exit 0
  fi
}

# skip REASON: ends the test here, reported as skipped (TAP's "# SKIP").
skip() {
  echo "$*" >.skipped
  exit 0
}

# Counting semaphores' holders, in slots.sh and etcd.sh.

# close_gate: a flock(1) lock on `gate` that holders wait for with `flock -s`,
# in the kernel, until open_gate. It keeps holders in their slots without
# sleeping on a clock.
close_gate() {
  mkfifo gate.fifo
  # By absolute path and not on the test's output, so that the runner's
  # clean-up finds it after a failure (lib.sh's hold says why).
  flock "$PWD/gate" sh -c 'touch gate.held; read -r _ <gate.fifo' >/dev/null 2>&1 &
  gate_pid=$!
  wait_for_file gate.held
}

open_gate() {
  echo >gate.fifo
  wait "$gate_pid"
}

# start_holders LOCK COUNT SLOTS [OPTION...]: COUNT fastens with --slots
# SLOTS, each logging "start SLOT" once it holds its slot and "end SLOT"
# before it lets go, and waiting at the gate in between.
start_holders() {
  local lock=$1 count=$2 slots=$3 i
  shift 3
  for i in $(seq "$count"); do
    "$FASTEN" exclusive --slots "$slots" "$@" "$lock" sh -c \
      'echo "start $FASTEN_SLOT" >>log; flock -s "$1" true; echo "end $FASTEN_SLOT" >>log' sh "$PWD/gate" \
      >/dev/null 2>>holders.err &
  done
}

# check_log SLOTS COUNT: the log of COUNT holders of SLOTS slots shows at
# most SLOTS at once, SLOTS at once at some point, each slot in 0..SLOTS-1
# held by one at a time, and every holder run.
check_log() {
  local verdict
  verdict=$(awk -v slots="$1" '
    $1 == "start" {
      if ($2 !~ /^[0-9]+$/ || $2 >= slots) { bad = bad " slot \"" $2 "\" out of range;" }
      if (busy[$2]) { bad = bad " slot " $2 " held twice;" }
      busy[$2] = 1; inside++; started++
      if (inside > most) { most = inside }
    }
    $1 == "end" { busy[$2] = 0; inside-- }
    END { printf "%d at most, %d started;%s", most, started, bad }' log)
  expect_eq "$1 at most, $2 started;" "$verdict" "the log of $2 holders of $1 slots"
}

# at_most_n_hold_at_once LOCK SLOTS [OPTION...]: 3N holders of N slots: N get
# in and the other 2N wait (for a lock file, the first of them on every slot
# at once, which status counts once); then all run through. Once 2N wait,
# the N inside have their slots: the loop waits only for their commands to
# have logged it.
at_most_n_hold_at_once() {
  local lock=$1 slots=$2 count=$(($2 * 3)) deadline=$((SECONDS + 60))
  shift 2
  close_gate
  start_holders "$lock" "$count" "$slots" "$@"
  wait_for_waiters "$lock" $((count - slots)) 120
  until [ "$(grep -c start log 2>/dev/null)" -ge "$slots" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "only $(grep -c start log) of $slots holders started"
    sleep 0.01
  done
  expect_eq "$slots" "$(grep -c start log)" "holders inside while $((count - slots)) wait"
  if [ "$slots" -gt 1 ]; then
    expect_contains "$("$FASTEN" status "$lock")" "$slots of $slots slots held"
  fi
  open_gate
  wait
  check_log "$slots" "$count"
}

# first_waiter_gets_the_first_slot_freed LOCK [OPTION...]: of two waiters
# for two held slots, the first gets the first slot freed while the later
# one waits on.
first_waiter_gets_the_first_slot_freed() {
  local lock=$1
  shift
  hold first exclusive "$lock" --slots 2 "$@"
  hold second exclusive "$lock" --slots 2 "$@"
  mkfifo early.fifo
  "$FASTEN" exclusive --slots 2 "$@" "$lock" sh -c 'touch early.ran; read -r _ <early.fifo' &
  local early=$!
  wait_for_waiters "$lock" 1
  "$FASTEN" exclusive --slots 2 "$@" "$lock" touch late.ran &
  local late=$!
  wait_for_waiters "$lock" 2
  release first
  wait_for_file early.ran
  [ ! -e late.ran ] || fail "the later waiter got the slot freed for the first"
  release second
  wait "$late"
  echo >early.fifo
  wait "$early"
}

# a_replaced_lock_is_waited_for_again HOW "A" "B" "C": a fasten with options
# A holds `lock`; one with B waits for it; `lock` is replaced (HOW: mv) or
# removed (HOW: rm), and one with C takes the new file. Once A ends, B must
# wait again on the file `lock` names now and run only after C ends, not
# beside C on the old file's lock. (The options are split on spaces.)
a_replaced_lock_is_waited_for_again() {
  local how=$1 waiter deadline=$((SECONDS + 20))
  # shellcheck disable=SC2086
  hold first $2 lock
  # shellcheck disable=SC2086
  "$FASTEN" $3 -v lock sh -c 'echo ran >waiter.ran' 2>waiter.err &
  waiter=$!
  wait_for_waiters lock 1
  case $how in
  mv) : >new && mv new lock ;;
  rm) rm lock ;;
  esac
  # shellcheck disable=SC2086
  hold second $4 lock
  release first
  # Either the waiter runs now (beside the new file's holder) or it waits again.
  until [ -e waiter.ran ] || [ "$(status_json lock | sed -n 's/.*"waiting": *\([0-9]*\).*/\1/p')" = 1 ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the waiter neither ran nor waited again"
    sleep 0.01
  done
  [ ! -e waiter.ran ] || fail "the waiter ran beside the holder of the new lock file ($how)"
  release second
  wait "$waiter" || fail "the waiter failed: $(cat waiter.err)"
  [ -e waiter.ran ] || fail "the waiter did not run"
  expect_contains "$(cat waiter.err)" "lock was replaced or removed while waiting; waiting again"
}

run_suite() {
  local tests number=0 failed=0 name output status
  # FASTEN_TESTS (an extended regular expression) picks some tests by name.
  tests=$(declare -F | awk '$3 ~ /^test_/ { print $3 }' | grep -E -- "${FASTEN_TESTS:-.}")
  echo "1..$(echo "$tests" | wc -w)"
  for name in $tests; do
    number=$((number + 1))
    local dir
    dir=$(mktemp -d "${TMPDIR:-/tmp}/fasten-it-XXXXXX")
    status=0
    output=$(cd "$dir" && (set -e; "$name") 2>&1) || status=$?
    # Background holders a failed test left behind must not outlive it.
    pkill -KILL -f "$dir" 2>/dev/null || true
    if [ "$status" -eq 0 ] && [ -f "$dir/.skipped" ]; then
      echo "ok $number - ${name#test_} # SKIP $(cat "$dir/.skipped")"
    elif [ "$status" -eq 0 ]; then
      echo "ok $number - ${name#test_}"
    else
      failed=$((failed + 1))
      echo "not ok $number - ${name#test_}"
      printf '%s\n' "$output" | sed 's/^/# /'
      # A failed test's files (logs, transcripts, lock files) stay for a look.
      echo "# its files are kept in $dir"
      continue
    fi
    rm -rf "$dir"
  done
  [ "$failed" -eq 0 ]
}
