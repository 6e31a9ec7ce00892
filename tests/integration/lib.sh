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
    fi
    rm -rf "$dir"
  done
  [ "$failed" -eq 0 ]
}
