#!/usr/bin/env bash
# fasten status: free, shared, exclusive, who holds it, how many wait, and
# the JSON form. It never blocks, never takes the lock, never creates the file.
. "$(dirname "$0")/lib.sh"
: "${LOCK_HOLDER:?LOCK_HOLDER must name tests/helpers/lock-holder}"

# check_json FILE STATE HOLDERS WAITING: FILE holds one JSON object of the
# documented schema with those values.
check_json() {
  python3 - "$@" <<'PY' || fail "bad JSON: $(cat "$1")"
import json, sys
path, state, holders, waiting = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(path).read()
assert text.count("\n") == 1, "not one line"
status = json.loads(text)
assert set(status) == {"path", "state", "holders", "waiting"}, status
assert status["path"] == "lock", status
assert status["state"] == state, status
assert isinstance(status["waiting"], int) and status["waiting"] == waiting, status
assert isinstance(status["holders"], list) and len(status["holders"]) == holders, status
for holder in status["holders"]:
    assert set(holder) == {"pid", "command"}, holder
    assert holder["pid"] is None or isinstance(holder["pid"], int), holder
    assert holder["command"] is None or isinstance(holder["command"], str), holder
PY
}

test_a_free_lock_is_free_with_status_0() {
  touch lock
  expect_eq "lock: free" "$("$FASTEN" status lock)"
  expect_status 0 "$FASTEN" status lock
  "$FASTEN" status --json lock >out
  check_json out free 0 0
}

test_a_missing_lock_file_exits_66_and_is_not_created() {
  expect_status 66 "$FASTEN" status lock 2>err
  expect_contains "$(cat err)" "fasten: cannot read lock file: lock: No such file or directory"
  [ ! -e lock ] || fail "status created the lock file"
}

test_an_exclusive_holder_is_named_with_its_command_line() {
  hold holder exclusive lock -o
  local out
  out=$("$FASTEN" status lock) || true
  expect_status 1 "$FASTEN" status lock
  expect_contains "$out" "lock: exclusive, held by pid $holder_pid ("
  expect_contains "$out" "exclusive -o lock sh -c"
  "$FASTEN" status --json lock >out || true
  check_json out exclusive 1 0
  release holder
}

test_the_command_that_inherited_the_lock_is_named_too_where_it_holds_it() {
  "$FASTEN" exclusive lock sh -c 'echo $$ > child; exec sleep 5' &
  local fasten_pid=$!
  wait_for_file child
  sleep 0.1
  local out
  out=$("$FASTEN" status lock) || true
  expect_contains "$out" "pid $fasten_pid ("
  if classic_locks; then
    # The lock is fasten's alone: the command did not inherit it.
    case "$out" in *"(sleep 5)"*) fail "the command is named as a holder: $out" ;; esac
  else
    expect_contains "$out" "pid $(cat child) (sleep 5)"
  fi
  kill "$(cat child)"
  wait "$fasten_pid" || true
}

test_readers_are_counted() {
  hold one read lock -o
  hold two read lock -o
  local out
  out=$("$FASTEN" status lock) || true
  expect_contains "$out" "lock: shared by 2, held by pid "
  expect_contains "$out" "pid $one_pid"
  expect_contains "$out" "pid $two_pid"
  "$FASTEN" status --json lock >out || true
  check_json out shared 2 0
  release one
  release two
}

test_waiting_processes_are_counted() {
  hold holder exclusive lock -o
  "$FASTEN" write lock true &
  "$FASTEN" read lock true &
  sleep 0.3
  local out
  out=$("$FASTEN" status lock) || true
  expect_contains "$out" "; 2 waiting"
  "$FASTEN" status --json lock >out || true
  check_json out exclusive 1 2
  release holder
  wait
}

test_a_foreign_fcntl_holder_is_named() {
  mkfifo stay
  "$LOCK_HOLDER" classic exclusive lock <stay >held &
  local pid=$!
  exec 7>stay
  wait_for_file held
  until grep -q locked held; do sleep 0.01; done
  local out
  out=$("$FASTEN" status lock) || true
  expect_contains "$out" "lock: exclusive, held by pid $pid ($LOCK_HOLDER classic exclusive lock)"
  exec 7>&-
  wait "$pid"
  expect_eq "lock: free" "$("$FASTEN" status lock)"
}

test_a_holder_that_cannot_be_seen_has_a_null_pid() {
  command -v setpriv >/dev/null || fail "setpriv (util-linux) is needed"
  chmod 755 .
  touch lock
  chmod 644 lock
  hold holder exclusive lock
  local as_nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  local out
  if classic_locks; then
    # A classic lock names its process in /proc/locks, for every user to see.
    out=$("${as_nobody[@]}" "$FASTEN" status lock) || true
    expect_contains "$out" "lock: exclusive, held by pid $holder_pid"
  else
    out=$("${as_nobody[@]}" "$FASTEN" status lock) || true
    expect_eq "lock: exclusive, held by a process that cannot be seen" "$out"
    "${as_nobody[@]}" "$FASTEN" status --json lock >out || true
    check_json out exclusive 1 0
    expect_contains "$(cat out)" '{"pid": null, "command": null}'
  fi
  release holder
}

test_status_never_blocks_nor_takes_the_lock() {
  hold holder exclusive lock -o
  expect_status 1 timeout 5 "$FASTEN" status lock
  release holder
  hold reader read lock -o
  "$FASTEN" status lock >/dev/null || true
  # Had status taken a lock, it would be gone with it; the reader's remains.
  expect_status 75 "$FASTEN" write -n lock true
  release reader
}

test_verbose_says_whom_it_waits_for() {
  hold holder exclusive lock -o
  ( sleep 0.3; release holder ) &
  "$FASTEN" read -v lock true 2>err
  wait
  expect_contains "$(cat err)" "fasten: waiting to lock lock (read); it is exclusive, held by pid $holder_pid"
  expect_contains "$(cat err)" "fasten: locked lock (read) after "
  expect_contains "$(cat err)" "fasten: unlocked lock (read) after holding it "
}

run_suite
